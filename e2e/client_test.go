package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// trustackRun runs the trustack binary with env, as a user at a shell would, and
// returns its standard output and error and its exit status.
func trustackRun(t testing.TB, env map[string]string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = environ(env)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("trustack %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errOut.String(), code
}

// trustackOK runs a trustack client command and fails the test unless it
// succeeds; it returns the standard output.
func trustackOK(t testing.TB, env map[string]string, args ...string) string {
	t.Helper()
	out, errOut, code := trustackRun(t, env, args...)
	if code != 0 {
		t.Fatalf("trustack %s: exit status %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// trustackJSON runs a trustack client command with -f json and decodes its
// output into v.
func trustackJSON(t testing.TB, env map[string]string, v any, args ...string) {
	t.Helper()
	out := trustackOK(t, env, append(args, "-f", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("trustack %s -f json: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// clientServer and clientImage are the fields of `server show` and `image
// show` the test reads.
type clientServer struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Status     string `json:"status"`
	PowerState string `json:"power_state"`
	KeyName    string `json:"key_name"`
	Flavor     struct{ ID, Name string }
	Image      struct{ ID, Name string }
	Properties map[string]string
}

type clientImage struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Status     string            `json:"status"`
	Size       int               `json:"size"`
	Properties map[string]string `json:"properties"`
}

// TestClient is the client session of the issue: a member of the demo
// project uploads an image, makes a keypair, boots a server from them,
// drives it through its power states, reads its console, snapshots it
// and deletes it, with trustack's own client commands against
// `trustack up`; and mistakes get a clear message and exit status 1.
func TestClient(t *testing.T) {
	c := startUp(t)
	demo := c.openrc("demo-openrc")
	path, data := imageFile(t, 3<<20)

	// The upload streams the file and, as stderr is not a terminal, ends
	// with one line of progress.
	var img clientImage
	out, errOut, code := trustackRun(t, demo, "image", "upload", path, "--name", "cirros", "--property", "os_distro=cirros", "-f", "json")
	if code != 0 {
		t.Fatalf("image upload: exit status %d\n%s%s", code, out, errOut)
	}
	if err := json.Unmarshal([]byte(out), &img); err != nil {
		t.Fatalf("image upload -f json: %v\n%s", err, out)
	}
	if img.Status != "active" || img.Size != len(data) || img.Properties["os_distro"] != "cirros" {
		t.Errorf("image upload: got %+v, want active, %d bytes, os_distro=cirros", img, len(data))
	}
	if lines := strings.Split(strings.TrimSpace(errOut), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "uploaded 3.0 MiB") {
		t.Errorf("image upload progress off a terminal: got %q, want one line \"uploaded 3.0 MiB in ...\"", errOut)
	}
	var shown clientImage
	trustackJSON(t, demo, &shown, "image", "show", "cirros")
	if shown.ID != img.ID || shown.Size != len(data) {
		t.Errorf("image show cirros: got %+v, want image %s of %d bytes", shown, img.ID, len(data))
	}
	download := filepath.Join(t.TempDir(), "copy.img")
	trustackOK(t, demo, "image", "download", img.ID, "-o", download)
	if got, err := os.ReadFile(download); err != nil || !bytes.Equal(got, data) {
		t.Errorf("image download: the bytes differ from those uploaded (%v)", err)
	}
	if out := trustackOK(t, demo, "image", "list"); !strings.Contains(out, img.ID) || !strings.Contains(out, "cirros") {
		t.Errorf("image list:\n%s", out)
	}

	// Without a public key, the cloud makes the keypair and the client
	// prints its private key, the only copy.
	if out := trustackOK(t, demo, "keypair", "create", "k1"); !strings.HasPrefix(out, "-----BEGIN") || !strings.Contains(out, "PRIVATE KEY-----") {
		t.Errorf("keypair create: got %q, want a private key", out)
	}
	if out := trustackOK(t, demo, "keypair", "list"); !strings.Contains(out, "k1") {
		t.Errorf("keypair list:\n%s", out)
	}
	if out := trustackOK(t, demo, "flavor", "list"); !strings.Contains(out, "m1.tiny") {
		t.Errorf("flavor list:\n%s", out)
	}

	var vm clientServer
	trustackJSON(t, demo, &vm, "server", "create", "vm1", "--image", "cirros", "--flavor", "m1.tiny", "--key-name", "k1",
		"--property", "role=web", "--wait")
	if vm.Status != "ACTIVE" || vm.PowerState != "Running" || vm.KeyName != "k1" || vm.Flavor.Name != "m1.tiny" ||
		vm.Image.ID != img.ID || vm.Properties["role"] != "web" {
		t.Fatalf("server create --wait: got %+v, want ACTIVE and Running, from cirros and m1.tiny, with k1 and role=web", vm)
	}
	if out := trustackOK(t, demo, "server", "list"); !strings.Contains(out, vm.ID) || !strings.Contains(out, "ACTIVE") {
		t.Errorf("server list:\n%s", out)
	}

	for _, step := range []struct{ action, status, power string }{
		{"pause", "PAUSED", "Paused"},
		{"unpause", "ACTIVE", "Running"},
		{"stop", "SHUTOFF", "Shutdown"},
		{"start", "ACTIVE", "Running"},
	} {
		trustackOK(t, demo, "server", step.action, "vm1", "--wait")
		var got clientServer
		trustackJSON(t, demo, &got, "server", "show", "vm1")
		if got.Status != step.status || got.PowerState != step.power {
			t.Errorf("server show after server %s: got %s and %s, want %s and %s", step.action, got.Status, got.PowerState, step.status, step.power)
		}
	}

	if out := trustackOK(t, demo, "server", "console", "vm1"); !strings.Contains(out, "trustack-guest ready") {
		t.Errorf("server console: got %q, want the guest's ready line", out)
	}
	if out := trustackOK(t, demo, "server", "console", "vm1", "--lines", "2"); strings.Count(out, "\n") != 2 {
		t.Errorf("server console --lines 2: got %q", out)
	}

	var snap clientImage
	trustackJSON(t, demo, &snap, "server", "image", "vm1", "vm1-snap", "--wait")
	if snap.Name != "vm1-snap" || snap.Status != "active" || snap.Properties["image_type"] != "snapshot" {
		t.Errorf("server image --wait: got %+v, want the active snapshot vm1-snap", snap)
	}
	trustackJSON(t, demo, &shown, "image", "show", "vm1-snap")
	if shown.ID != snap.ID || shown.Status != "active" {
		t.Errorf("image show vm1-snap: got %+v, want active image %s", shown, snap.ID)
	}

	trustackOK(t, demo, "server", "delete", "vm1", "--wait")
	if _, errOut, code := trustackRun(t, demo, "server", "show", vm.ID); code != 1 || !strings.Contains(errOut, "No server with a name or ID of") {
		t.Errorf("server show of the deleted server: exit status %d, %q; want 1 and not found", code, errOut)
	}
	var servers []map[string]any
	trustackJSON(t, demo, &servers, "server", "list")
	if len(servers) != 0 {
		t.Errorf("server list after the delete: got %v, want none", servers)
	}

	// Mistakes: each exits with status 1, says what is wrong on stderr and
	// leaves nothing behind.
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"unknown flavor", demo, []string{"server", "create", "x", "--image", "cirros", "--flavor", "m9.huge"}, "No flavor with a name or ID of 'm9.huge' exists."},
		{"unknown image", demo, []string{"server", "create", "x", "--image", "nope", "--flavor", "m1.tiny"}, "No image with a name or ID of 'nope' exists."},
		{"missing file", demo, []string{"image", "upload", filepath.Join(t.TempDir(), "missing.img"), "--name", "x"}, "missing.img: no such file or directory"},
		{"unknown server", demo, []string{"server", "pause", "nope"}, "No server with a name or ID of 'nope' exists."},
		{"API refusal", demo, []string{"keypair", "create", "k1"}, "Key pair 'k1' already exists. (HTTP 409)"},
		{"no credentials", nil, []string{"server", "list"}, "OS_AUTH_URL is not set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := trustackRun(t, tc.env, tc.args...)
			if code != 1 || !strings.Contains(errOut, tc.want) || out != "" {
				t.Errorf("trustack %s: exit status %d, stdout %q, stderr %q; want 1, nothing, and %q",
					strings.Join(tc.args, " "), code, out, errOut, tc.want)
			}
		})
	}
	for _, list := range [][]string{{"server", "list"}, {"image", "list"}} {
		var rows []struct{ Name string }
		trustackJSON(t, demo, &rows, list...)
		for _, r := range rows {
			if r.Name == "x" {
				t.Errorf("trustack %s after the mistakes: got a resource x, want none", strings.Join(list, " "))
			}
		}
	}
}
