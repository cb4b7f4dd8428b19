package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestVolumeCLI is block storage as users and operators meet it with the
// Debian clients (python-openstackclient 6.0, cinderclient 9.1) against
// `trustack up`, whose first host keeps volumes as files: a volume made,
// listed, grown, renamed and deleted, its file on the storage host
// following; a snapshot and a volume made from it; an operator's volume
// type choosing the backend; the quota refusing what is past it, with
// nothing made.
func TestVolumeCLI(t *testing.T) {
	need(t, "openstack", "cinder")
	c := startUp(t, "--nodes", "2", "--attestation", "no")
	t.Cleanup(func() { killQEMUs(t, c.dir) }) // the storage daemons of a failed test's servers
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

	// Cinder's later microversions through its own client: the summary
	// (3.12), a message saying why a volume went to error (3.3), and the
	// controller's log level read and set (3.32).
	cinder := func(env map[string]string, args ...string) string {
		t.Helper()
		out, stderr, err := run(t, env, t.TempDir(), nil, "cinder", args...)
		if err != nil {
			t.Fatalf("cinder %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
		}
		return out
	}
	if out := cinder(demo, "--os-volume-api-version", "3.12", "summary"); !regexp.MustCompile(`total_count\s*\|\s*1\s`).MatchString(out) ||
		!regexp.MustCompile(`total_size\s*\|\s*2\s`).MatchString(out) {
		t.Errorf("cinder summary: want 1 volume of 2 GiB\n%s", out)
	}
	must(t, admin, "volume", "type", "create", "--property", "volume_backend_name=nowhere", "nowhere")
	must(t, demo, "volume", "create", "--size", "1", "--type", "nowhere", "lost")
	waitVolume(t, demo, "lost", "error")
	if out := cinder(demo, "--os-volume-api-version", "3.3", "message-list"); !strings.Contains(out, "VOLUME_VOLUME_001_003") {
		t.Errorf("cinder message-list after a volume found no backend: want VOLUME_VOLUME_001_003\n%s", out)
	}
	must(t, demo, "volume", "delete", "lost")
	eventually(t, time.Minute, func() (bool, string) {
		v, err := sdkOf(t, demo).volume("lost")
		return err != nil, fmt.Sprint(v)
	}, "the volume in error deleted")
	must(t, admin, "volume", "type", "delete", "nowhere")
	cinder(admin, "--os-volume-api-version", "3.32", "service-set-log", "debug")
	if out := cinder(admin, "--os-volume-api-version", "3.32", "service-get-log", "--binary", "cinder-api"); !strings.Contains(out, "DEBUG") {
		t.Errorf("cinder service-get-log after service-set-log debug:\n%s", out)
	}
	cinder(admin, "--os-volume-api-version", "3.32", "service-set-log", "info")

	// A snapshot, and a larger volume made from it.
	must(t, demo, "volume", "snapshot", "create", "--volume", "data", "snap1")
	eventually(t, time.Minute, func() (bool, string) {
		status := sdkOf(t, demo).snapshotStatus("snap1")
		return status == "available", status
	}, "snapshot snap1 available")
	must(t, demo, "volume", "create", "--snapshot", "snap1", "--size", "3", "fromsnap")
	waitVolume(t, demo, "fromsnap", "available")
	if out, err := openstack(t, demo, "volume", "delete", "data"); err == nil {
		t.Errorf("a volume with a snapshot deleted: %s", out)
	}
	must(t, demo, "volume", "delete", "fromsnap")
	must(t, demo, "volume", "snapshot", "delete", "snap1")
	eventually(t, time.Minute, func() (bool, string) {
		out := must(t, demo, "volume", "snapshot", "list", "-f", "value", "-c", "Name")
		return out == "", out
	}, "the snapshot deleted")

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

	// Servers booted from volumes made from an image: the one asked to
	// keep its volume (openstack's --boot-from-volume) keeps it, the one
	// asked not to (nova's shutdown=remove) takes it with it.
	path, _ := imageFile(t, 1<<20)
	disk := must(t, admin, "image", "create", "--public", "--disk-format", "raw", "--container-format", "bare", "--file", path, "-f", "value", "-c", "id", "disk")
	var kept struct{ ID, Image string }
	showJSON(t, demo, &kept, "server", "create", "--flavor", "m1.tiny", "--image", "disk", "--boot-from-volume", "1", "--wait", "kept")
	if kept.Image != "N/A (booted from volume)" {
		t.Errorf("the image of a server booted from a volume: %q", kept.Image)
	}
	if out, errOut, err := run(t, demo, t.TempDir(), nil, "nova", "boot", "--flavor", "m1.tiny", "--poll",
		"--block-device", "source=image,id="+disk+",dest=volume,size=1,shutdown=remove,bootindex=0", "gone"); err != nil {
		t.Fatalf("nova boot --block-device ...: %v\n%s%s", err, out, errOut)
	}
	gone := must(t, demo, "server", "show", "gone", "-f", "value", "-c", "id")
	type listed struct {
		ID, Status string
		Attached   []struct {
			ServerID string `json:"server_id"`
			Device   string
		} `json:"Attached to"`
	}
	var vols []listed
	showJSON(t, demo, &vols, "volume", "list")
	var keptVolume string
	for _, v := range vols {
		on := func(server string) bool {
			return v.Status == "in-use" && len(v.Attached) == 1 && v.Attached[0].ServerID == server && v.Attached[0].Device == "/dev/vda"
		}
		switch {
		case on(kept.ID):
			keptVolume = v.ID
		case on(gone):
		case v.Status != "available":
			t.Errorf("volume %+v: want available", v)
		}
	}
	if len(vols) != 4 || keptVolume == "" {
		t.Errorf("volumes with the two servers: %+v, want data, v-gold and a root volume in use by each", vols)
	}
	must(t, demo, "server", "delete", "--wait", "kept", "gone")
	eventually(t, time.Minute, func() (bool, string) {
		showJSON(t, demo, &vols, "volume", "list")
		return len(vols) == 3 && !slices.ContainsFunc(vols, func(v listed) bool { return v.Status != "available" }), fmt.Sprint(vols)
	}, "kept's volume available, gone's deleted")

	// An image made of kept's volume has the data of the image the volume
	// was made from (and zeros after).
	must(t, demo, "image", "create", "--volume", keptVolume, "--disk-format", "qcow2", "kept-image")
	eventually(t, time.Minute, func() (bool, string) {
		status := sdkOf(t, demo).imageStatus("kept-image")
		return status == "active", status
	}, "the image of kept's volume active")
	waitVolume(t, demo, keptVolume, "available")
	saved := filepath.Join(t.TempDir(), "kept.img")
	must(t, demo, "image", "save", "--file", saved, "kept-image")
	if out, _, err := run(t, nil, t.TempDir(), nil, "qemu-img", "compare", "-f", "qcow2", "-F", "raw", saved, path); err != nil {
		t.Errorf("the image of kept's volume against the image it was made from: %v\n%s", err, out)
	}
	must(t, demo, "image", "delete", "kept-image")
	must(t, demo, "volume", "delete", keptVolume)

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

// watchSize ends a guest script on a volume ($dev): it says the volume's
// size, in 512-byte sectors, and again each time it changes, while the
// volume is there.
const watchSize = `
s=
while [ -e /sys/block/${dev##*/} ]; do
  n=$(cat /sys/block/${dev##*/}/size); [ "$n" != "$s" ] && echo "volume size $n"; s=$n; sleep 0.5
done`

// waitVolume waits for a volume to reach a status.
func waitVolume(t testing.TB, env map[string]string, name, status string) {
	t.Helper()
	eventually(t, time.Minute, func() (bool, string) {
		got := sdkOf(t, env).volumeStatus(name)
		return got == status, got
	}, "volume %s %s", name, status)
}

// TestTempestVolume runs Tempest 33's volume API tests, and its compute
// tests of volume attachments and of servers booted from volumes,
// against `trustack up` with dynamic credentials, at the microversions
// trustack serves, with servers of an image of its own where tests
// attach volumes to them; testdata/tempest-volume-exclude.txt names,
// with reasons, those of what trustack does not have yet or does not
// offer.
func TestTempestVolume(t *testing.T) {
	need(t, "tempest", "openstack")
	c := startUp(t, "--attestation", "no")
	t.Cleanup(func() { killQEMUs(t, c.dir) }) // the storage daemons of attachments
	admin := c.openrc("openrc")
	path, _ := imageFile(t, 1<<20)
	// Raw: volumes are made from it, which needs a valid disk.
	image := must(t, admin, "image", "create", "--public", "--disk-format", "raw", "--container-format", "bare", "--file", path, "-f", "value", "-c", "id", "cirros")
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
`, admin["OS_PASSWORD"], image, image) + neutronConf(t, admin)
	ws := tempestWorkspace(t, admin["OS_AUTH_URL"], "", extra)
	exclude, err := filepath.Abs("testdata/tempest-volume-exclude.txt")
	if err != nil {
		t.Fatal(err)
	}
	tempest(t, ws, "--regex", `^tempest\.api\.(volume\.|compute\.volumes\.test_attach_volume|compute\.servers\.test_create_server\.ServersTestBootFromVolume|`+
		`compute\.servers\.test_servers_negative\.ServersNegativeTestJSON\.test_create_server_(invalid_bdm_in_2nd_dict|from_non_bootable_volume))`,
		"--exclude-list", exclude)
}

// TestVolumeOnRealGuests is the seed's volume session with QEMU guests on
// the two hosts of `trustack up --driver qemu`, the first of which keeps
// the volumes: a guest, attached with `nova volume-attach` as the seed
// does, writes a marker on the volume (its user data finds the disk by
// the volume's serial); the volume, refused deletion while attached, is
// detached and attached with `openstack server add volume` to a guest on
// the other host, which reads the marker, again after a stop and start.
// One of the two guests opens the volume on its own host, the other over
// NBD; each sees the volume grow when it is extended while attached
// (Cinder's 3.42). The servers deleted, the volume and its data remain, and a
// volume made from its snapshot has them too; a volume made from the
// guest's image boots a server.
func TestVolumeOnRealGuests(t *testing.T) {
	need(t, "openstack", "nova", "qemu-system-x86_64", "qemu-storage-daemon")
	c := startUp(t, "--nodes", "2", "--driver", "qemu", "--attestation", "no", "--test-image", testImage(t))
	t.Cleanup(func() { killQEMUs(t, c.dir) })
	demo, admin := c.openrc("demo-openrc"), c.openrc("openrc")

	vol := must(t, demo, "volume", "create", "--size", "1", "-f", "value", "-c", "id", "vol1")
	waitVolume(t, demo, "vol1", "available")
	vm1 := boot(t, demo, "vm1", "--user-data", onVolume(t, vol, `echo "marker-42" | dd of=$dev bs=512 count=1 conv=sync,fsync 2>/dev/null && echo "marker written"`+watchSize))
	// Attached once the guest has its root: a disk that comes while its
	// kernel still probes may take the name vda (names follow the order
	// disks come in; the serial is what stays).
	waitConsole(t, demo, "vm1", "trustack-guest ready")
	if out, errOut, err := run(t, demo, t.TempDir(), nil, "nova", "volume-attach", "vm1", vol); err != nil {
		t.Fatalf("nova volume-attach vm1 %s: %v\n%s%s", vol, err, out, errOut)
	}
	waitConsole(t, demo, "vm1", "trustack-guest script: marker written")
	// Extended while attached, the guest sees its disk grow (in 512-byte
	// sectors), and the server records the extension.
	waitConsole(t, demo, "vm1", "trustack-guest script: volume size 2097152")
	must(t, demo, "--os-volume-api-version", "3.42", "volume", "set", "--size", "2", "vol1")
	waitVolume(t, demo, "vol1", "in-use")
	waitConsole(t, demo, "vm1", "trustack-guest script: volume size 4194304")
	if events := must(t, demo, "server", "event", "list", "vm1", "-f", "value", "-c", "Action"); !strings.Contains(events, "extend_volume") {
		t.Errorf("vm1's events after its volume grew:\n%s", events)
	}
	if list := must(t, demo, "volume", "list"); !strings.Contains(list, "in-use") || !strings.Contains(list, "Attached to vm1 on /dev/vd") {
		t.Errorf("volume list while attached:\n%s", list)
	}
	if out, err := openstack(t, demo, "volume", "delete", "vol1"); err == nil || !strings.Contains(out, "400") {
		t.Errorf("an attached volume deleted: %v\n%s", err, out)
	}

	must(t, demo, "server", "remove", "volume", "vm1", "vol1")
	waitVolume(t, demo, "vol1", "available")
	vm2 := boot(t, demo, "vm2", "--hint", "different_host="+vm1, "--user-data", onVolume(t, vol, `echo "read $(head -c 9 $dev)"`+watchSize))
	if hostOf(t, admin, vm1) == hostOf(t, admin, vm2) {
		t.Fatalf("vm1 and vm2 on one host, %s; want two, one of them the storage host", hostOf(t, admin, vm1))
	}
	waitConsole(t, demo, "vm2", "trustack-guest ready")
	must(t, demo, "server", "add", "volume", "vm2", "vol1")
	waitConsole(t, demo, "vm2", "trustack-guest script: read marker-42")
	if out := must(t, demo, "server", "show", "vm2", "-f", "value", "-c", "volumes_attached"); !strings.Contains(out, vol) {
		t.Errorf("vm2's volumes_attached: %s", out)
	}
	waitConsole(t, demo, "vm2", "trustack-guest script: volume size 4194304")
	if out, errOut, err := run(t, demo, t.TempDir(), nil, "cinder", "--os-volume-api-version", "3.42", "extend", "vol1", "3"); err != nil {
		t.Fatalf("cinder extend vol1 3: %v\n%s%s", err, out, errOut)
	}
	waitVolume(t, demo, "vol1", "in-use")
	waitConsole(t, demo, "vm2", "trustack-guest script: volume size 6291456")

	// A stopped and started guest has its volume again.
	boots := strings.Count(must(t, demo, "console", "log", "show", "vm2"), "trustack-guest ready")
	must(t, demo, "server", "stop", "vm2")
	eventually(t, 2*time.Minute, func() (bool, string) {
		status := sdkOf(t, demo).serverStatus("vm2")
		return status == "SHUTOFF", status
	}, "vm2 stopped")
	must(t, demo, "server", "start", "vm2")
	eventually(t, 2*time.Minute, func() (bool, string) {
		out := sdkOf(t, demo).consoleLog("vm2")
		boot := out[max(strings.LastIndex(out, "trustack-guest ready"), 0):]
		return strings.Count(out, "trustack-guest ready") > boots && strings.Contains(boot, "trustack-guest script: read marker-42"), out
	}, "vm2 reads the marker in its boot after the start")

	// Detached and attached again at the same device, on the running
	// guest.
	must(t, demo, "server", "remove", "volume", "vm2", "vol1")
	waitVolume(t, demo, "vol1", "available")
	must(t, demo, "server", "add", "volume", "vm2", "vol1")
	waitVolume(t, demo, "vol1", "in-use")

	must(t, demo, "server", "delete", "--wait", "vm1", "vm2")
	waitVolume(t, demo, "vol1", "available")
	file := filepath.Join(c.dir, "data", "hosts", "compute-1", "volumes", "volume-"+vol+".qcow2")
	if out, _, err := run(t, nil, t.TempDir(), nil, "qemu-io", "-f", "qcow2", "-r", "-c", "read -v 0 9", file); err != nil || !strings.Contains(out, "6d 61 72 6b 65 72 2d 34 32") { // marker-42
		t.Errorf("the volume's data after its servers went: %v\n%s", err, out)
	}
	if exports, _ := os.ReadDir(filepath.Join(c.dir, "data", "hosts", "compute-1", "exports")); len(exports) != 0 {
		t.Errorf("exports left after the servers went: %v", exports)
	}

	// A volume made from the guest's image is bootable and has the
	// image's kernel and ramdisk in its image metadata.
	must(t, demo, "volume", "create", "--image", "tiny", "--size", "1", "vimg")
	waitVolume(t, demo, "vimg", "available")
	var vimg struct {
		Bootable string
		Image    map[string]string `json:"volume_image_metadata"`
	}
	showJSON(t, demo, &vimg, "volume", "show", "vimg")
	if vimg.Bootable != "true" || vimg.Image["image_name"] != "tiny" || vimg.Image["kernel_id"] == "" {
		t.Errorf("the volume from the image: %+v", vimg)
	}
	// A server booted from it boots the guest from the volume, with the
	// kernel its image metadata names; the volume stays when it goes.
	must(t, demo, "server", "create", "--volume", "vimg", "--flavor", "m1.tiny", "--wait", "bfv")
	waitConsole(t, demo, "bfv", "trustack-guest ready")
	if out, err := openstack(t, demo, "server", "remove", "volume", "bfv", "vimg"); err == nil {
		t.Errorf("the root volume detached: %s", out)
	}
	must(t, demo, "server", "delete", "--wait", "bfv")
	waitVolume(t, demo, "vimg", "available")

	// A snapshot of the volume gives a new volume with the same data.
	must(t, demo, "volume", "snapshot", "create", "--volume", "vol1", "snap1")
	eventually(t, time.Minute, func() (bool, string) {
		status := sdkOf(t, demo).snapshotStatus("snap1")
		return status == "available", status
	}, "snapshot snap1 available")
	vol2 := must(t, demo, "volume", "create", "--snapshot", "snap1", "--size", "3", "-f", "value", "-c", "id", "vol2")
	waitVolume(t, demo, "vol2", "available")
	file2 := filepath.Join(c.dir, "data", "hosts", "compute-1", "volumes", "volume-"+vol2+".qcow2")
	if out, _, err := run(t, nil, t.TempDir(), nil, "qemu-io", "-f", "qcow2", "-r", "-c", "read -v 0 9", file2); err != nil || !strings.Contains(out, "6d 61 72 6b 65 72 2d 34 32") {
		t.Errorf("the volume made from the snapshot: %v\n%s", err, out)
	}
}
