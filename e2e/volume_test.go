package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestVolumeCLI is block storage as users and operators meet it with the
// Debian clients (python-openstackclient 6.0, cinderclient 9.1) against
// `trustack up`, whose first host keeps volumes as files: a volume made,
// listed, grown, renamed and deleted, its file on the storage host
// following; an operator's volume type choosing the backend; the quota
// refusing what is past it, with nothing made.
func TestVolumeCLI(t *testing.T) {
	need(t, "openstack", "cinder")
	c := startUp(t, "--nodes", "2", "--attestation", "no")
	demo, admin := c.openrc("demo-openrc"), c.openrc("openrc")

	var vol1 struct{ ID, Status, Type string }
	showJSON(t, demo, &vol1, "volume", "create", "--size", "1", "vol1")
	if vol1.Status != "creating" || vol1.Type != "__DEFAULT__" {
		t.Errorf("vol1 created: %+v, want creating, of __DEFAULT__", vol1)
	}
	waitVolume(t, demo, "vol1", "available")
	file := filepath.Join(c.dir, "data", "hosts", "compute-1", "volumes", "volume-"+vol1.ID+".qcow2")
	if _, err := os.Stat(file); err != nil {
		t.Errorf("vol1's file on the storage host: %v", err)
	}
	if list := must(t, demo, "volume", "list", "-f", "value", "-c", "Name", "-c", "Status", "-c", "Size"); list != "vol1 available 1" {
		t.Errorf("volume list: %q", list)
	}

	must(t, demo, "volume", "set", "--size", "2", "--name", "data", "--property", "tier=gold", "vol1")
	waitVolume(t, demo, "data", "available")
	var data struct {
		Size       int
		Properties map[string]string
	}
	showJSON(t, demo, &data, "volume", "show", "data")
	if data.Size != 2 || data.Properties["tier"] != "gold" {
		t.Errorf("data after set: %+v", data)
	}
	if out, _, err := run(t, nil, t.TempDir(), nil, "qemu-img", "info", file); err != nil || !strings.Contains(out, "virtual size: 2 GiB") {
		t.Errorf("the grown volume's file: %v\n%s", err, out)
	}

	// The cinder CLI negotiates its version down to what trustack serves.
	if out, stderr, err := run(t, demo, t.TempDir(), nil, "cinder", "list"); err != nil || !strings.Contains(out, "data") {
		t.Errorf("cinder list: %v\n%s%s", err, out, stderr)
	}

	// An operator's type names the backend its volumes go to.
	must(t, admin, "volume", "type", "create", "--property", "volume_backend_name=file", "gold")
	var gold struct{ Type, Status string }
	showJSON(t, demo, &gold, "volume", "create", "--size", "1", "--type", "gold", "v-gold")
	if gold.Type != "gold" {
		t.Errorf("v-gold's type: %q", gold.Type)
	}
	waitVolume(t, demo, "v-gold", "available")
	if out, err := openstack(t, admin, "volume", "type", "delete", "gold"); err == nil {
		t.Errorf("a type in use deleted: %s", out)
	}
	if services := must(t, admin, "volume", "service", "list", "-f", "value", "-c", "Binary", "-c", "Host", "-c", "State"); services != "cinder-volume compute-1@file up" {
		t.Errorf("volume service list: %q", services)
	}

	// Past the quota: refused, nothing made.
	must(t, admin, "quota", "set", "--gigabytes", "4", "demo")
	if out, err := openstack(t, demo, "volume", "create", "--size", "2", "too-big"); err == nil || !strings.Contains(out, "413") {
		t.Errorf("a volume past the quota: %v\n%s", err, out)
	}
	if out, err := openstack(t, demo, "volume", "show", "too-big"); err == nil {
		t.Errorf("the refused volume exists: %s", out)
	}

	must(t, demo, "volume", "delete", "data", "v-gold")
	eventually(t, time.Minute, func() (bool, string) {
		out := must(t, demo, "volume", "list", "-f", "value", "-c", "Name")
		return out == "", out
	}, "the volumes deleted")
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Errorf("the deleted volume's file: %v", err)
	}
}

// waitVolume waits for a volume to reach a status.
func waitVolume(t testing.TB, env map[string]string, name, status string) {
	t.Helper()
	eventually(t, time.Minute, func() (bool, string) {
		out, _ := openstack(t, env, "volume", "show", name, "-f", "value", "-c", "status")
		return out == status, out
	}, "volume %s %s", name, status)
}

// TestTempestVolume runs Tempest 33's volume API tests against `trustack
// up` with dynamic credentials, at the microversions trustack serves, with
// servers of an image of its own where tests attach volumes to them;
// testdata/tempest-volume-exclude.txt names, with reasons, those of what
// trustack does not have yet or does not offer.
func TestTempestVolume(t *testing.T) {
	need(t, "tempest", "openstack")
	c := startUp(t, "--attestation", "no")
	admin := c.openrc("openrc")
	path, _ := imageFile(t, 1<<20)
	image := must(t, admin, "image", "create", "--public", "--disk-format", "qcow2", "--container-format", "bare", "--file", path, "-f", "value", "-c", "id", "cirros")
	extra := fmt.Sprintf(`[auth]
use_dynamic_credentials = true
admin_username = admin
admin_password = %s
admin_project_name = admin
admin_domain_name = Default

[compute]
image_ref = %s
image_ref_alt = %s

[compute-feature-enabled]
# trustack's servers are made with an administrator password, as Nova's
enable_instance_password = true

[volume-feature-enabled]
snapshot = false
`, admin["OS_PASSWORD"], image, image) + neutronConf(t, admin)
	ws := tempestWorkspace(t, admin["OS_AUTH_URL"], "", extra)
	exclude, err := filepath.Abs("testdata/tempest-volume-exclude.txt")
	if err != nil {
		t.Fatal(err)
	}
	tempest(t, ws, "--regex", `^tempest\.api\.volume\.`, "--exclude-list", exclude)
}
