package e2e

import (
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/trustack/trustack/internal/pgtest"
)

// TestOpenStackCLI is the identity session of the issue, with the Debian
// OpenStack client against `trustack up`.
func TestOpenStackCLI(t *testing.T) {
	need(t, "openstack")
	c := startUp(t)
	admin := c.openrc("openrc")

	if out := must(t, admin, "token", "issue", "-f", "value", "-c", "id"); !strings.HasPrefix(out, "gAAAAA") {
		t.Errorf("token issue: got %q, want a Fernet token", out)
	}
	if out := must(t, admin, "catalog", "list", "-f", "value", "-c", "Type"); !strings.Contains(out, "identity") {
		t.Errorf("catalog list: got %q, want the identity service", out)
	}
	must(t, admin, "project", "create", "p1")
	must(t, admin, "user", "create", "--project", "p1", "--password", "pw", "u1")
	must(t, admin, "role", "add", "--user", "u1", "--project", "p1", "member")

	u1 := maps.Clone(admin)
	u1["OS_USERNAME"], u1["OS_PASSWORD"], u1["OS_PROJECT_NAME"] = "u1", "pw", "p1"
	tok := must(t, u1, "token", "issue", "-f", "value", "-c", "id")
	out, err := openstack(t, u1, "user", "list")
	if err == nil || !strings.Contains(out, "HTTP 403") {
		t.Errorf("user list as a member: got %v %q, want refused with 403", err, out)
	}
	adminToken := token(t, admin)
	if !validates(t, admin, adminToken, tok) {
		t.Fatal("u1's token does not validate")
	}
	must(t, admin, "token", "revoke", tok)
	if validates(t, admin, adminToken, tok) {
		t.Error("a revoked token still validates")
	}

	// u1 makes EC2 credentials for itself; the admin keeps a credential
	// for u1. u1 sees both as its credentials, with their blobs.
	p1 := must(t, admin, "project", "show", "p1", "-f", "value", "-c", "id")
	access := must(t, u1, "ec2", "credentials", "create", "-f", "value", "-c", "access")
	if out := must(t, u1, "ec2", "credentials", "show", access, "-f", "value", "-c", "project_id"); len(access) != 32 || out != p1 {
		t.Errorf("ec2 credentials create: access %q, project %q; want 32 hex digits on p1 (%s)", access, out, p1)
	}
	if out := must(t, u1, "ec2", "credentials", "list", "-f", "value", "-c", "Access"); out != access {
		t.Errorf("ec2 credentials list: got %q, want %q", out, access)
	}
	const blob = `{"access": "u1-key", "secret": "u1-secret"}`
	id := must(t, admin, "credential", "create", "--type", "ec2", "--project", "p1", "u1", blob, "-f", "value", "-c", "id")
	if out := must(t, u1, "credential", "show", id, "-f", "value", "-c", "blob"); out != blob {
		t.Errorf("credential show: blob %q, want %q", out, blob)
	}
	if out := strings.Fields(must(t, u1, "credential", "list", "--type", "ec2", "-f", "value", "-c", "ID")); len(out) != 2 || !slices.Contains(out, id) {
		t.Errorf("credential list: got %v, want %s and the EC2 credential", out, id)
	}
	must(t, admin, "credential", "delete", id)
	must(t, u1, "ec2", "credentials", "delete", access)
	if out := must(t, u1, "credential", "list", "-f", "value"); out != "" {
		t.Errorf("credential list after deleting both: got %q, want nothing", out)
	}

	// The demo account is a member of the demo project.
	demo := c.openrc("demo-openrc")
	if out := must(t, demo, "project", "list", "--my-projects", "-f", "value", "-c", "Name"); out != "demo" {
		t.Errorf("demo's projects: got %q, want demo", out)
	}
}

// TestRestartKeepsEverything kills trustack without warning and starts it
// again: what it acknowledged survives, tokens issued before still
// validate, and revoked ones stay revoked.
func TestRestartKeepsEverything(t *testing.T) {
	need(t, "openstack")
	c := startUp(t)
	admin := c.openrc("openrc")
	must(t, admin, "project", "create", "p1")
	must(t, admin, "user", "create", "--project", "p1", "--password", "pw", "u1")
	must(t, admin, "role", "add", "--user", "u1", "--project", "p1", "member")
	u1 := maps.Clone(admin)
	u1["OS_USERNAME"], u1["OS_PASSWORD"], u1["OS_PROJECT_NAME"] = "u1", "pw", "p1"
	kept, revoked := token(t, u1), token(t, u1)
	adminToken := token(t, admin)
	must(t, admin, "token", "revoke", revoked)

	c.restart(syscall.SIGKILL)

	if got := c.openrc("openrc"); got["OS_PASSWORD"] != admin["OS_PASSWORD"] {
		t.Error("the admin password changed across the restart")
	}
	if !validates(t, admin, adminToken, kept) {
		t.Error("a token issued before the restart does not validate")
	}
	if validates(t, admin, adminToken, revoked) {
		t.Error("a token revoked before the restart validates again")
	}
	out := must(t, admin, "role", "assignment", "list", "--user", "u1", "--project", "p1", "--names", "-f", "value", "-c", "Role")
	if out != "member" {
		t.Errorf("u1's roles on p1 after the restart: %q, want member", out)
	}
	must(t, u1, "token", "issue")

	// A graceful stop keeps it all too.
	c.restart(syscall.SIGTERM)
	must(t, u1, "token", "issue")
}

// TestServerOnPostgreSQL runs the controller alone against PostgreSQL, as
// an operator would: `trustack manage bootstrap` makes the admin, `trustack
// server` serves, and `trustack manage fernet rotate` rotates the keys
// under it without invalidating a live token.
func TestServerOnPostgreSQL(t *testing.T) {
	need(t, "openstack")
	dir := t.TempDir()
	addr := freeAddr(t)
	conf := filepath.Join(dir, "trustack.conf")
	err := os.WriteFile(conf, []byte(testConfig+
		"[DEFAULT]\ndata_dir = "+filepath.Join(dir, "data")+"\n"+
		"[database]\nconnection = "+pgtest.DSN(t)+"\n"+
		"[api]\nlisten = "+addr+"\n"), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	manage := func(args ...string) string {
		t.Helper()
		out, err := runTrustack(append(args, "--config", conf)...)
		if err != nil {
			t.Fatalf("trustack %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	manage("manage", "bootstrap", "--admin-password", "s3cret")
	c := &cloud{t: t, dir: dir, addr: addr, args: []string{"server", "--config", conf}}
	c.start("trustack server ready")
	admin := map[string]string{
		"OS_AUTH_URL": "http://" + addr + "/identity/v3", "OS_USERNAME": "admin", "OS_PASSWORD": "s3cret",
		"OS_PROJECT_NAME": "admin", "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default",
		"OS_IDENTITY_API_VERSION": "3",
	}
	if out := must(t, admin, "user", "list", "-f", "value", "-c", "Name"); out != "admin" {
		t.Errorf("user list: %q, want admin", out)
	}
	before := token(t, admin)
	if out := manage("manage", "fernet", "rotate"); !strings.Contains(out, "key 2 is now the primary") {
		t.Errorf("rotate: %q", out)
	}
	after := token(t, admin)
	for name, tok := range map[string]string{"before": before, "after": after} {
		if !validates(t, admin, after, tok) {
			t.Errorf("the token made %s the rotation does not validate", name)
		}
	}
}

// runTrustack runs the binary to completion.
func runTrustack(args ...string) (string, error) {
	out, err := exec.Command(binary, args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}
