package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestTempestIdentity runs Tempest 33 against `trustack up`: first the
// issue's tests with pre-provisioned accounts, then every identity test
// with dynamic credentials (Tempest makes its own projects and users
// through the API), except those of Keystone features trustack does not
// implement, listed with reasons in testdata/tempest-identity-exclude.txt.
func TestTempestIdentity(t *testing.T) {
	need(t, "tempest")
	c := startUp(t)
	admin := c.openrc("openrc")
	adminToken := token(t, admin)

	// Pre-provisioned accounts: an admin and four members, each in a project
	// of its own.
	var accounts strings.Builder
	for i, role := range []string{"admin", "member", "member", "member", "member"} {
		user, project := fmt.Sprintf("tempest_user%d", i), fmt.Sprintf("tempest_project%d", i)
		makeAccount(t, admin["OS_AUTH_URL"], adminToken, user, project, role)
		fmt.Fprintf(&accounts, "- username: '%s'\n  project_name: '%s'\n  password: 'secret'\n  domain_name: 'Default'\n  roles: ['%s']\n", user, project, role)
	}
	ws := tempestWorkspace(t, admin["OS_AUTH_URL"], accounts.String(), "")
	tempest(t, ws, "--regex", `^tempest\.api\.identity\.v3\.(test_api_discovery|test_domains\.DefaultDomainTestJSON)`)

	dynamic := "[auth]\nuse_dynamic_credentials = true\nadmin_username = admin\nadmin_password = " + admin["OS_PASSWORD"] +
		"\nadmin_project_name = admin\nadmin_domain_name = Default\n"
	ws = tempestWorkspace(t, admin["OS_AUTH_URL"], "", dynamic)
	exclude, err := filepath.Abs("testdata/tempest-identity-exclude.txt")
	if err != nil {
		t.Fatal(err)
	}
	tempest(t, ws, "--regex", `^tempest\.api\.identity\.`, "--exclude-list", exclude)
}

// makeAccount creates a project and a user with a role on it.
func makeAccount(t testing.TB, authURL, adminToken, user, project, role string) {
	t.Helper()
	var p struct{ Project struct{ ID string } }
	if resp := api(t, "POST", authURL+"/projects", adminToken, map[string]any{"project": map[string]any{"name": project}}, &p); resp.StatusCode != 201 {
		t.Fatalf("create project %s: %d", project, resp.StatusCode)
	}
	var u struct{ User struct{ ID string } }
	if resp := api(t, "POST", authURL+"/users", adminToken, map[string]any{"user": map[string]any{"name": user, "password": "secret", "default_project_id": p.Project.ID}}, &u); resp.StatusCode != 201 {
		t.Fatalf("create user %s: %d", user, resp.StatusCode)
	}
	var roles struct{ Roles []struct{ ID string } }
	api(t, "GET", authURL+"/roles?name="+role, adminToken, nil, &roles)
	if len(roles.Roles) != 1 {
		t.Fatalf("role %s not found", role)
	}
	if resp := api(t, "PUT", authURL+"/projects/"+p.Project.ID+"/users/"+u.User.ID+"/roles/"+roles.Roles[0].ID, adminToken, nil, nil); resp.StatusCode != 204 {
		t.Fatalf("grant %s: %d", role, resp.StatusCode)
	}
}

// tempestWorkspace makes a Tempest workspace whose configuration is
// testdata/tempest.conf for this cloud, with extra appended (a later
// section overrides an earlier one's options in oslo.config).
func tempestWorkspace(t testing.TB, authURL, accounts, extra string) string {
	t.Helper()
	dir := t.TempDir()
	ws := filepath.Join(dir, "tempest")
	// A registry of its own, so that workspaces of earlier runs do not clash.
	init := exec.Command("tempest", "init", "--workspace-path", filepath.Join(dir, "workspace.yaml"), ws)
	init.Dir = dir // tempest writes a log where it runs
	if out, err := init.CombinedOutput(); err != nil {
		t.Fatalf("tempest init: %v\n%s", err, out)
	}
	conf, err := os.ReadFile("testdata/tempest.conf")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.NewReplacer("@WS@", ws, "@AUTH_URL@", authURL).Replace(string(conf))
	if err := os.WriteFile(filepath.Join(ws, "etc", "tempest.conf"), []byte(text+"\n"+extra), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ws, "etc", "accounts.yaml"), []byte(accounts), 0o600); err != nil {
		t.Fatal(err)
	}
	return ws
}

// neutronConf returns the part of Tempest's configuration that only the
// running cloud knows: the ID of its external network, public, where
// floating IPs and routers' gateways come from, and the exact list of the
// extensions its network API advertises (Tempest's default, all, would
// have tests use extensions trustack lacks).
func neutronConf(t testing.TB, admin map[string]string) string {
	t.Helper()
	tok := token(t, admin)
	base := strings.TrimSuffix(admin["OS_AUTH_URL"], "/identity/v3") + "/network/v2.0"
	var nets struct{ Networks []struct{ ID string } }
	if resp := api(t, "GET", base+"/networks?name=public", tok, nil, &nets); resp.StatusCode != 200 || len(nets.Networks) != 1 {
		t.Fatalf("the external network public: status %d, %v", resp.StatusCode, nets.Networks)
	}
	var exts struct{ Extensions []struct{ Alias string } }
	if resp := api(t, "GET", base+"/extensions", tok, nil, &exts); resp.StatusCode != 200 || len(exts.Extensions) == 0 {
		t.Fatalf("the network API's extensions: status %d, %v", resp.StatusCode, exts.Extensions)
	}
	aliases := make([]string, len(exts.Extensions))
	for i, e := range exts.Extensions {
		aliases[i] = e.Alias
	}
	return fmt.Sprintf("[network]\npublic_network_id = %s\n\n[network-feature-enabled]\napi_extensions = %s\n",
		nets.Networks[0].ID, strings.Join(aliases, ","))
}

var tempestTotals = regexp.MustCompile(`(?m)^ - (Passed|Skipped|Failed): (\d+)`)

// tempest runs `tempest run` in the workspace, with two workers unless
// args say --concurrency, and fails the test if any Tempest test fails or
// none passes.
func tempest(t testing.TB, ws string, args ...string) {
	t.Helper()
	if !slices.Contains(args, "--concurrency") {
		args = append([]string{"--concurrency", "2"}, args...)
	}
	cmd := exec.Command("tempest", append([]string{"run"}, args...)...)
	cmd.Dir = ws
	// Without Tempest's ten seconds before each subnet delete, which
	// trustack does not need (see testdata/tempest-nosleep).
	nosleep, err := filepath.Abs("testdata/tempest-nosleep")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Env = append(os.Environ(), "PYTHONPATH="+strings.Join(append([]string{nosleep}, filepath.SplitList(os.Getenv("PYTHONPATH"))...), string(filepath.ListSeparator)))
	start := time.Now()
	out, err := cmd.CombinedOutput()
	totals := map[string]string{}
	for _, m := range tempestTotals.FindAllStringSubmatch(string(out), -1) {
		totals[m[1]] = m[2]
	}
	t.Logf("tempest %s: passed %s, skipped %s, failed %s in %v", strings.Join(args, " "), totals["Passed"], totals["Skipped"], totals["Failed"],
		time.Since(start).Round(time.Second))
	if err != nil || totals["Failed"] != "0" || totals["Passed"] == "" || totals["Passed"] == "0" {
		t.Fatalf("tempest run %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestTempestObjectStorage runs Tempest 33's object storage tests
// against `trustack up`'s object store with dynamic credentials, except
// those of Swift features trustack does not implement, listed with
// reasons in testdata/tempest-object-storage-exclude.txt.
func TestTempestObjectStorage(t *testing.T) {
	need(t, "tempest")
	c := startUp(t)
	admin := c.openrc("openrc")
	api(t, "POST", admin["OS_AUTH_URL"]+"/roles", token(t, admin), map[string]any{"role": map[string]any{"name": "ResellerAdmin"}}, nil)
	conf := "[auth]\nuse_dynamic_credentials = true\nadmin_username = admin\nadmin_password = " + admin["OS_PASSWORD"] +
		"\nadmin_project_name = admin\nadmin_domain_name = Default\n" +
		"[service_available]\nswift = true\n" +
		"[object-storage]\ncatalog_type = object-store\nregion = RegionOne\noperator_role = member\nreseller_admin_role = ResellerAdmin\n" +
		"[object-storage-feature-enabled]\ndiscoverability = true\ncontainer_sync = false\nobject_versioning = false\ntempurl_digest_hashlib = sha256\n" +
		"discoverable_apis = slo,dlo,tempurl,bulk_delete,bulk_upload,container_quotas,account_quotas\n"
	ws := tempestWorkspace(t, admin["OS_AUTH_URL"], "", conf)
	exclude, err := filepath.Abs("testdata/tempest-object-storage-exclude.txt")
	if err != nil {
		t.Fatal(err)
	}
	tempest(t, ws, "--regex", `^tempest\.api\.object_storage\.`, "--exclude-list", exclude)
}
