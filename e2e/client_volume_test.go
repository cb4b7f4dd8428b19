package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The fields of the volume commands' JSON that the test reads.
type (
	clientVolume struct {
		ID, Name, Status string
		Size             int
		Bootable         bool
		Image            struct{ ID, Name string }
		SnapshotID       string `json:"snapshot_id"`
		ImageBytesCopied int64  `json:"image_bytes_copied"`
		Attachments      []struct {
			Server struct{ ID, Name string }
			Device string
		}
	}
	clientSnapshot struct {
		ID, Name, Status string
		Size             int
		Volume           struct{ ID, Name string }
	}
)

// TestClientVolume is the volume session of the issue: a member of the
// demo project makes volumes with trustack's own client against
// `trustack up` (an empty one; one from an image, with a progress bar of
// the image's copy on a terminal; one from a snapshot), attaches one to a
// server and detaches it, and deletes them all. A volume attached, or
// with a snapshot, cannot go; mistakes get a clear message and exit
// status 1, and leave nothing behind.
func TestClientVolume(t *testing.T) {
	need(t, "script", "qemu-img")
	c := startUp(t) // with attestation where swtpm is: hosts reach the controllers only by their grants
	demo := c.openrc("demo-openrc")
	path, data := imageFile(t, 3<<20)
	trustackOK(t, demo, "image", "upload", path, "--name", "disk", "--disk-format", "raw")
	fileOf := func(id string) string {
		return filepath.Join(c.dir, "data", "hosts", "compute-1", "volumes", "volume-"+id+".qcow2")
	}

	var vol clientVolume
	trustackJSON(t, demo, &vol, "volume", "create", "data", "--size", "1", "--wait")
	if vol.Name != "data" || vol.Status != "available" || vol.Size != 1 || vol.Bootable {
		t.Errorf("volume create --size 1 --wait: got %+v, want data, available, 1 GiB, not bootable", vol)
	}
	if _, err := os.Stat(fileOf(vol.ID)); err != nil {
		t.Errorf("the volume's file on the storage host: %v", err)
	}

	// On a terminal, --wait draws the copy of the image as the storage
	// host reports it, to the last byte.
	screen := trustackOnTerminal(t, demo, "volume", "create", "boot", "--image", "disk", "--wait")
	if bars := bar.FindAllString(screen, -1); len(bars) == 0 || !strings.HasPrefix(bars[len(bars)-1], "[==============================] 3.0 MiB / 3.0 MiB 100% ") {
		t.Errorf("volume create --image disk --wait on a terminal: bars drawn %q, want the last full at 3.0 MiB, 100%%; the terminal showed\n%q", bars, screen)
	}
	var boot clientVolume
	trustackJSON(t, demo, &boot, "volume", "show", "boot")
	if boot.Status != "available" || !boot.Bootable || boot.Image.Name != "disk" || boot.Size != 1 || boot.ImageBytesCopied != int64(len(data)) {
		t.Errorf("volume show boot: got %+v, want available, bootable, 1 GiB, from disk, all %d bytes of it copied", boot, len(data))
	}
	if out, errOut, err := run(t, nil, t.TempDir(), nil, "qemu-img", "compare", "-f", "raw", "-F", "qcow2", path, fileOf(boot.ID)); err != nil {
		t.Errorf("boot's data against the image's: %v\n%s%s", err, out, errOut)
	}
	// Off a terminal, one line at the end.
	_, errOut, code := trustackRun(t, demo, "volume", "create", "boot2", "--image", "disk", "--wait")
	if lines := strings.Split(strings.TrimSpace(errOut), "\n"); code != 0 || len(lines) != 1 || !strings.HasPrefix(lines[0], "copied 3.0 MiB in ") {
		t.Errorf("volume create --image --wait off a terminal: exit status %d, progress %q; want 0, one line \"copied 3.0 MiB in ...\"", code, errOut)
	}
	if out := trustackOK(t, demo, "volume", "list"); !strings.Contains(out, "data") || !strings.Contains(out, "boot2") {
		t.Errorf("volume list:\n%s", out)
	}

	var vm clientServer
	trustackJSON(t, demo, &vm, "server", "create", "vm1", "--image", "disk", "--flavor", "m1.tiny", "--wait")
	var attached clientVolume
	trustackJSON(t, demo, &attached, "volume", "attach", "vm1", "data")
	if attached.Status != "in-use" || len(attached.Attachments) != 1 || attached.Attachments[0].Server.ID != vm.ID ||
		attached.Attachments[0].Server.Name != "vm1" || !strings.HasPrefix(attached.Attachments[0].Device, "/dev/vd") {
		t.Fatalf("volume attach vm1 data: got %+v, want in-use, attached to vm1 (%s) at a /dev/vd* device", attached, vm.ID)
	}
	if out := trustackOK(t, demo, "volume", "list"); !strings.Contains(out, "vm1 ("+vm.ID+") on "+attached.Attachments[0].Device) {
		t.Errorf("volume list while data is attached:\n%s", out)
	}
	if _, errOut, code := trustackRun(t, demo, "volume", "delete", "data"); code != 1 || !strings.Contains(errOut, "must not be migrating, attached") {
		t.Errorf("volume delete of an attached volume: exit status %d, %q; want 1, and Cinder's refusal of an attached volume", code, errOut)
	}
	trustackOK(t, demo, "volume", "detach", "vm1", "data")
	trustackJSON(t, demo, &vol, "volume", "show", vol.ID)
	if vol.Status != "available" || len(vol.Attachments) != 0 {
		t.Errorf("volume show after the detach: got %+v, want available, attached to nothing", vol)
	}

	var snap clientSnapshot
	trustackJSON(t, demo, &snap, "volume", "snapshot", "create", "s1", "--volume", "data", "--wait")
	if snap.Name != "s1" || snap.Status != "available" || snap.Size != 1 || snap.Volume.ID != vol.ID || snap.Volume.Name != "data" {
		t.Errorf("volume snapshot create --wait: got %+v, want s1, available, 1 GiB, of data (%s)", snap, vol.ID)
	}
	if out := trustackOK(t, demo, "volume", "snapshot", "list"); !strings.Contains(out, snap.ID) || !strings.Contains(out, "data") {
		t.Errorf("volume snapshot list:\n%s", out)
	}
	var copied clientVolume
	trustackJSON(t, demo, &copied, "volume", "create", "copy", "--snapshot", "s1", "--wait")
	if copied.Status != "available" || copied.Size != 1 || copied.SnapshotID != snap.ID {
		t.Errorf("volume create --snapshot s1 --wait: got %+v, want available, 1 GiB, from %s", copied, snap.ID)
	}
	if _, errOut, code := trustackRun(t, demo, "volume", "delete", "data"); code != 1 || !strings.Contains(errOut, "dependent snapshots") {
		t.Errorf("volume delete of a volume with a snapshot: exit status %d, %q; want 1, and its dependent snapshots", code, errOut)
	}

	trustackOK(t, demo, "volume", "delete", "copy", "--wait")
	trustackOK(t, demo, "volume", "snapshot", "delete", "s1", "--wait")
	var snaps []clientSnapshot
	trustackJSON(t, demo, &snaps, "volume", "snapshot", "list")
	if len(snaps) != 0 {
		t.Errorf("volume snapshot list after the delete --wait: got %+v, want none", snaps)
	}
	trustackOK(t, demo, "volume", "delete", "data", "boot", "boot2", "--wait")
	if _, errOut, code := trustackRun(t, demo, "volume", "show", vol.ID); code != 1 || !strings.Contains(errOut, "No volume with a name or ID of") {
		t.Errorf("volume show of the deleted volume: exit status %d, %q; want 1 and not found", code, errOut)
	}
	if _, err := os.Stat(fileOf(vol.ID)); !os.IsNotExist(err) {
		t.Errorf("the deleted volume's file: %v, want it gone", err)
	}
	trustackOK(t, demo, "server", "delete", "vm1", "--wait")

	// Mistakes: each exits with status 1, says what is wrong on stderr and
	// leaves nothing behind.
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown volume", []string{"volume", "show", "nope"}, "No volume with a name or ID of 'nope' exists."},
		{"unknown image", []string{"volume", "create", "x", "--image", "nope"}, "No image with a name or ID of 'nope' exists."},
		{"unknown snapshot", []string{"volume", "create", "x", "--snapshot", "nope"}, "No snapshot with a name or ID of 'nope' exists."},
		{"no size", []string{"volume", "create", "x"}, "an empty volume needs --size"},
		{"image and snapshot", []string{"volume", "create", "x", "--image", "disk", "--snapshot", "s1"}, "[image snapshot]"},
		{"unknown server", []string{"volume", "attach", "nope", "x"}, "No server with a name or ID of 'nope' exists."},
		{"snapshot of no volume", []string{"volume", "snapshot", "create", "x", "--volume", "nope"}, "No volume with a name or ID of 'nope' exists."},
		{"API refusal", []string{"volume", "create", "x", "--size", "1", "--type", "gold"}, "Volume type with name gold could not be found. (HTTP 404)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := trustackRun(t, demo, tc.args...)
			if code != 1 || !strings.Contains(errOut, tc.want) || out != "" {
				t.Errorf("trustack %s: exit status %d, stdout %q, stderr %q; want 1, nothing, and %q",
					strings.Join(tc.args, " "), code, out, errOut, tc.want)
			}
		})
	}
	var vols []clientVolume
	trustackJSON(t, demo, &vols, "volume", "list")
	if len(vols) != 0 {
		t.Errorf("volume list after the mistakes: got %+v, want none", vols)
	}
}

// trustackOnTerminal runs a trustack client command as trustackOK does,
// but on a terminal (script(1) gives it one), and returns what the
// terminal showed: its output and its progress bars.
func trustackOnTerminal(t testing.TB, env map[string]string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	words := []string{quote(binary)}
	for _, a := range args {
		words = append(words, quote(a))
	}
	cmd := exec.CommandContext(ctx, "script", "--quiet", "--return", "--command", strings.Join(words, " "), "/dev/null")
	cmd.Env = environ(env)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("trustack %s on a terminal: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// bar is a progress bar drawn on a terminal.
var bar = regexp.MustCompile(`\[[=> ]{30}\] [^\r\x1b]*`)

// quote quotes s for the shell.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
