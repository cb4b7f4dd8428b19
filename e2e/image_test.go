package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// glance runs the glance CLI with env, with its schema cache in home, and
// stdin as its standard input (nil for none), and returns its output.
func glance(t testing.TB, env map[string]string, home string, stdin *os.File, args ...string) string {
	t.Helper()
	cmd := exec.Command("glance", args...)
	cmd.Env = append(environ(env), "HOME="+home)
	cmd.Stdin = stdin
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("glance %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

// imageFile writes size random bytes to a new file.
func imageFile(t testing.TB, size int) (string, []byte) {
	t.Helper()
	data := make([]byte, size)
	rand.Read(data)
	path := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, data
}

// field returns a field of glance's property table ("| name | value |").
func field(table, name string) string {
	for _, line := range strings.Split(table, "\n") {
		cols := strings.Split(line, "|")
		if len(cols) > 2 && strings.TrimSpace(cols[1]) == name {
			return strings.TrimSpace(cols[2])
		}
	}
	return ""
}

// TestImageCLI is the image session of the issue, with the Debian glance
// and openstack clients against `trustack up`: uploads from a file and
// from standard input, lists, downloads of the same bytes, properties
// and deletion.
func TestImageCLI(t *testing.T) {
	need(t, "glance", "openstack")
	// The images are kept in the object store, images over 1 MiB as
	// segments; the file store has the other tests.
	c := startUpWith(t, "[image]\nstore = object\nobject_store_chunk_size = 1048576\n")
	admin := c.openrc("openrc")
	home := t.TempDir()
	path, data := imageFile(t, 3<<20)

	// glance, from a file and from standard input; chunked uploads both.
	out := glance(t, admin, home, nil, "image-create", "--name", "cirros", "--disk-format", "qcow2", "--container-format", "ovf",
		"--visibility", "public", "--file", path)
	id := field(out, "id")
	if field(out, "status") != "active" || field(out, "size") != "3145728" || field(out, "visibility") != "public" {
		t.Fatalf("glance image-create --file:\n%s", out)
	}
	stdin, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	out = glance(t, admin, home, stdin, "image-create", "--name", "from-stdin", "--disk-format", "raw", "--container-format", "bare")
	stdinID := field(out, "id")
	if field(out, "status") != "active" || field(out, "checksum") != field(glance(t, admin, home, nil, "image-show", id), "checksum") {
		t.Fatalf("glance image-create < file:\n%s", out)
	}
	if out := glance(t, admin, home, nil, "image-list"); !strings.Contains(out, "cirros") || !strings.Contains(out, "from-stdin") {
		t.Errorf("glance image-list:\n%s", out)
	}
	download := filepath.Join(t.TempDir(), "download.img")
	glance(t, admin, home, nil, "image-download", "--file", download, id)
	if got, err := os.ReadFile(download); err != nil || !bytes.Equal(got, data) {
		t.Errorf("glance image-download: the bytes differ from those uploaded (%v)", err)
	}

	// openstack, as the demo member.
	demo := c.openrc("demo-openrc")
	must(t, demo, "image", "create", "--disk-format", "qcow2", "--container-format", "bare", "--file", path, "mine")
	if out := must(t, demo, "image", "list", "-f", "value", "-c", "Name"); out != "cirros\nmine" {
		t.Errorf("openstack image list: got %q, want the public image and the member's own", out)
	}
	must(t, demo, "image", "set", "--property", "os_distro=debian", "--property", "k=v", "mine")
	var img struct {
		ID, Status, Checksum string
		Size                 int
		Properties           map[string]any
	}
	if err := json.Unmarshal([]byte(must(t, demo, "image", "show", "mine", "-f", "json")), &img); err != nil {
		t.Fatal(err)
	}
	if img.Status != "active" || img.Size != len(data) || img.Properties["k"] != "v" || img.Properties["os_distro"] != "debian" {
		t.Errorf("openstack image show: %+v", img)
	}
	download = filepath.Join(t.TempDir(), "mine.img")
	must(t, demo, "image", "save", "--file", download, "mine")
	if got, err := os.ReadFile(download); err != nil || !bytes.Equal(got, data) {
		t.Errorf("openstack image save: the bytes differ from those uploaded (%v)", err)
	}
	// The member may neither change nor delete the admin's public image.
	if out, err := openstack(t, demo, "image", "delete", "cirros"); err == nil || !strings.Contains(out, "403") {
		t.Errorf("openstack image delete of another project's image: %v %s", err, out)
	}
	must(t, demo, "image", "delete", "mine")
	if out := must(t, demo, "image", "list", "-f", "value", "-c", "Name"); out != "cirros" {
		t.Errorf("openstack image list after the delete: %q", out)
	}
	// The admin project's account holds the two images left, each as a
	// manifest and three segments of 1 MiB.
	objects := func(container string) []string {
		return strings.Fields(must(t, admin, "object", "list", container, "-f", "value", "-c", "Name"))
	}
	if got := objects("glance"); !slices.Equal(got, slices.Sorted(slices.Values([]string{id, stdinID}))) {
		t.Errorf("openstack object list glance: got %q, want the images %s and %s", got, id, stdinID)
	}
	if got := objects("glance_segments"); len(got) != 6 {
		t.Errorf("openstack object list glance_segments: got %q, want three segments of each image", got)
	}
}

// TestTempestImage runs Tempest 33's image v2 tests against `trustack up`
// with dynamic credentials, except those of Glance features trustack does
// not serve, listed with reasons in testdata/tempest-image-exclude.txt.
func TestTempestImage(t *testing.T) {
	need(t, "tempest")
	c := startUp(t)
	admin := c.openrc("openrc")
	dynamic := "[auth]\nuse_dynamic_credentials = true\nadmin_username = admin\nadmin_password = " + admin["OS_PASSWORD"] +
		"\nadmin_project_name = admin\nadmin_domain_name = Default\n" +
		"[image-feature-enabled]\nos_glance_reserved = true\n" // trustack reserves os_glance_* as Glance does
	ws := tempestWorkspace(t, admin["OS_AUTH_URL"], "", dynamic)
	exclude, err := filepath.Abs("testdata/tempest-image-exclude.txt")
	if err != nil {
		t.Fatal(err)
	}
	tempest(t, ws, "--regex", `^tempest\.api\.image\.v2\.`, "--exclude-list", exclude)
}
