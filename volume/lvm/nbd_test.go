package lvm

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trustack/trustack/agent"
	"github.com/trustack/trustack/internal/qmp"
	"github.com/trustack/trustack/internal/testimage"
	"github.com/trustack/trustack/volume/nbd"
	"github.com/trustack/trustack/wire"
)

// A volume of this backend is a disk of a real guest, as a compute host
// opens it: TestGuestWritesToAVolumeOverNBD boots the storage host guest
// with a NIC on QEMU's user networking, where TestServeAVolumeOverNBD
// serves a new volume over NBD with TLS; the host forwards a port to the
// export, and the QEMU hypervisor driver spawns the test guest
// (scripts/build-test-image) and plugs the volume into it over that
// port. The guest writes a marker at the start of the volume, which the
// storage host reads from the logical volume's device.

// The storage host's side, given on its test program's command line by
// TestGuestWritesToAVolumeOverNBD: without -nbd-marker,
// TestServeAVolumeOverNBD does not run.
var (
	nbdKey    = flag.String("nbd-key", "", "`identity:secret`: serve volumes over NBD to the holder of this key (TestServeAVolumeOverNBD and TestServeVolumesOnRequest, in the storage host guest)")
	nbdMarker = flag.String("nbd-marker", "", "what the guest writes at the start of the volume served by TestServeAVolumeOverNBD")
)

const (
	// nbdVolume is the ID of the volume served, and its export's name.
	nbdVolume = "8d2f6c1a-4b7e-4e59-a0c3-91f5d7e2b640"
	// guestAddress is the storage host guest's address on QEMU's user
	// networking, which its /init gives its NIC.
	guestAddress = "10.0.2.15"
	// The lines the storage host's side prints: the port it serves on,
	// and what the volume begins with once the guest wrote the marker.
	servingLine = "trustack-lvm-nbd: serving on port "
	readLine    = "trustack-lvm-nbd: the logical volume begins with "
	// markerTimeout bounds the storage host's wait for the marker.
	markerTimeout = 4 * time.Minute
)

// TestServeAVolumeOverNBD is the storage host's side of
// TestGuestWritesToAVolumeOverNBD, which runs it in the storage host
// guest: it makes a volume, serves it on guestAddress to the holder of
// -nbd-key, says on which port, and passes once the first sector of the
// volume's logical volume begins with -nbd-marker, within markerTimeout.
func TestServeAVolumeOverNBD(t *testing.T) {
	if !inGuest() || *nbdMarker == "" {
		t.Skip("the storage host's side of TestGuestWritesToAVolumeOverNBD, which runs it in the storage host guest")
	}
	key := keyFlag(t)
	b := open(t)
	exporter, err := nbd.NewExporter(t.TempDir(), guestAddress)
	if err != nil {
		t.Fatal(err)
	}
	path, volume, err := makeAndExport(t.Context(), b, exporter, nbdVolume, key)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := exporter.Unexport(context.Background(), nbdVolume); err != nil {
			t.Error(err)
		}
	})
	fmt.Printf("%s%d\n", servingLine, volume.Port)

	deadline := time.Now().Add(markerTimeout)
	for {
		first, err := firstSector(path)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.HasPrefix(first, []byte(*nbdMarker)) {
			fmt.Printf("%s%s\n", readLine, first[:len(*nbdMarker)])
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the logical volume %s begins with %q after %v, want the guest's marker %q", path, bytes.TrimRight(first, "\x00"), markerTimeout, *nbdMarker)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// keyFlag returns the key that -nbd-key gives; it fails the test if
// there is none.
func keyFlag(t testing.TB) nbd.Key {
	t.Helper()
	identity, secret, ok := strings.Cut(*nbdKey, ":")
	if !ok {
		t.Fatalf("-nbd-key %q: want identity:secret", *nbdKey)
	}
	return nbd.Key{Identity: identity, Secret: secret}
}

// makeAndExport makes the volume id, of 1 GiB, and exports it to the
// holder of key, as the volume service has a storage host do for a
// volume attached to a server on another host; it returns the path of
// the volume's device, and the export's port with how long each step
// took.
func makeAndExport(ctx context.Context, b *Backend, exporter *nbd.Exporter, id string, key nbd.Key) (string, madeVolume, error) {
	start := time.Now()
	if err := b.Create(ctx, id, 1); err != nil {
		return "", madeVolume{}, err
	}
	path, format, err := b.Locate(ctx, id)
	if err != nil {
		return "", madeVolume{}, err
	}
	made := time.Now()
	ex, err := exporter.Export(ctx, id, path, format, key)
	return path, madeVolume{Port: ex.Port, Made: made.Sub(start), Exported: time.Since(made)}, err
}

// madeVolume is a volume that makeAndExport made and exported: the port
// of its export on guestAddress, how long the backend took to make it,
// and how long the export's daemon took to serve it.
type madeVolume struct {
	Port     int           `json:"port"`
	Made     time.Duration `json:"made"`
	Exported time.Duration `json:"exported"`
}

// firstSector reads the first 512 bytes of the device at path.
func firstSector(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, 512)
	if _, err := f.ReadAt(b, 0); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return b, nil
}

// TestGuestWritesToAVolumeOverNBD: a guest that a compute host's QEMU
// driver runs, given an LVM volume served by its storage host over NBD,
// writes to the volume's logical volume. The storage host is the storage
// host guest (TestServeAVolumeOverNBD), reached through a port that
// QEMU's user networking forwards; both guests boot at once, and the
// volume is plugged into the running test guest once it is served.
func TestGuestWritesToAVolumeOverNBD(t *testing.T) {
	if inGuest() {
		t.Skip("in the guest already")
	}
	kernel, initrd := storageHostGuest(t)
	key := nbd.NewKey("lvm-nbd-test")
	marker := "trustack-lvm-marker-" + rand.Text()

	ctx, cancel := context.WithTimeout(t.Context(), 6*time.Minute)
	defer cancel()
	start := time.Now()
	storage := startStorageHost(t, kernel, initrd,
		"-test.v", "-test.run=^TestServeAVolumeOverNBD$", "-test.timeout=5m",
		"-nbd-key="+key.Identity+":"+key.Secret, "-nbd-marker="+marker)

	guest := testimage.Spawn(t, "../..", 256, "#!/bin/sh\n"+fmt.Sprintf(`
i=0; dev=
while [ $i -lt 480 ]; do
  for d in /sys/block/vd*; do [ "$(cat $d/serial 2>/dev/null)" = "%s" ] && dev=/dev/${d##*/}; done
  [ -n "$dev" ] && break; sleep 0.5; i=$((i+1))
done
echo "volume at $dev"
printf '%%s' '%s' | dd of="$dev" bs=512 count=1 conv=sync,fsync 2>/dev/null && echo "wrote the marker"
`, nbdVolume[:20], marker))
	failf := withConsoles(t, storage, guest)

	guestPort, err := storage.waitForPort(ctx, servingLine)
	if err != nil {
		failf("the storage host did not serve the volume: %v", err)
	}
	hostPort, err := forward(ctx, storage.dir, guestPort)
	if err != nil {
		failf("forward a port to the export: %v", err)
	}
	disk := agent.Disk{VolumeID: nbdVolume, Device: "vdc", NBD: &wire.NBDExport{Host: "127.0.0.1", Port: hostPort, Name: nbdVolume,
		Key: wire.PSK{Identity: key.Identity, Secret: key.Secret}}}
	if err := guest.Driver.AttachVolume(ctx, guest.ID, disk); err != nil {
		failf("AttachVolume of the volume served at 127.0.0.1:%d: %v", hostPort, err)
	}

	select {
	case <-storage.exited:
	case <-ctx.Done():
		failf("the storage host guest did not end within 6 minutes")
	}
	console := storage.console.String()
	if want := readLine + marker; !strings.Contains(console, want) {
		failf("the storage host guest did not say %q", want)
	}
	if !strings.Contains(console, guestPass) {
		failf("the storage host's side failed")
	}
	t.Logf("the guest wrote to the logical volume over NBD %s after the storage host guest started", time.Since(start).Round(100*time.Millisecond))
}

// storageHost is a storage host guest that runs.
type storageHost struct {
	dir     string   // its QMP socket's directory
	console *console // what it prints
	exited  chan struct{}
}

// startStorageHost boots the storage host guest with a NIC on QEMU's
// user networking (netdev net0) and a QMP socket, running the test
// program with args; it is killed when the test ends.
func startStorageHost(t testing.TB, kernel, initrd string, args ...string) *storageHost {
	t.Helper()
	h := &storageHost{dir: t.TempDir(), console: &console{}, exited: make(chan struct{})}
	cmd := exec.Command("qemu-system-x86_64", "-accel", "tcg", "-smp", "2", "-m", "1024",
		"-nodefaults", "-display", "none", "-serial", "stdio", "-no-reboot",
		"-netdev", "user,id=net0", "-device", "virtio-net-pci,netdev=net0,romfile=",
		// Relative to its directory: socket paths are short.
		"-qmp", "unix:qmp.sock,server=on,wait=off",
		"-kernel", kernel, "-initrd", initrd,
		"-append", "console=ttyS0 loglevel=3 "+guestFlag+" -- "+strings.Join(args, " "))
	cmd.Dir = h.dir
	cmd.Stdout, cmd.Stderr = h.console, h.console
	if err := cmd.Start(); err != nil {
		t.Fatalf("start QEMU: %v", err)
	}
	go func() {
		cmd.Wait()
		close(h.exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-h.exited
	})
	return h
}

// waitForPort waits until the storage host guest prints a line of
// prefix followed by a port, and returns the port; it gives up when ctx
// ends or the guest does.
func (h *storageHost) waitForPort(ctx context.Context, prefix string) (int, error) {
	line, err := h.console.waitFor(ctx, regexp.MustCompile(regexp.QuoteMeta(prefix)+`(\d+)`), h.exited)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(line[1])
}

// forward has the storage host guest's user networking forward a free
// port of this host's loopback address to port of the guest's, and
// returns it.
func forward(ctx context.Context, dir string, port int) (int, error) {
	mon, err := qmp.Dial(ctx, dir, "qmp.sock")
	if err != nil {
		return 0, err
	}
	defer mon.Close()
	var last error
	for range 5 { // a port found free may be taken before QEMU binds it
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		hostPort := l.Addr().(*net.TCPAddr).Port
		l.Close()
		out, err := mon.Run(ctx, "human-monitor-command", map[string]any{
			"command-line": fmt.Sprintf("hostfwd_add net0 tcp:127.0.0.1:%d-%s:%d", hostPort, guestAddress, port)})
		if err != nil {
			return 0, err
		}
		// HMP says nothing when it succeeds.
		var said string
		if err := json.Unmarshal(out, &said); err != nil {
			return 0, err
		}
		if strings.TrimSpace(said) == "" {
			return hostPort, nil
		}
		last = fmt.Errorf("hostfwd_add: %s", strings.TrimSpace(said))
	}
	return 0, last
}

// withConsoles returns what fails the test with a message followed by
// what both guests printed: the storage host guest's console, and the
// end of the test guest's.
func withConsoles(t testing.TB, storage *storageHost, guest testimage.Guest) (fatalf func(format string, args ...any)) {
	return func(format string, args ...any) {
		t.Helper()
		console, err := guest.Driver.Console(context.Background(), guest.ID, 40)
		if err != nil {
			console = err.Error()
		}
		t.Fatalf("%s\nthe storage host guest's console:\n%s\nthe test guest's console ends:\n%s", fmt.Sprintf(format, args...), storage.console.String(), console)
	}
}

// console is a guest's serial console as it comes. It is safe for
// concurrent use.
type console struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *console) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Write(p)
}

func (c *console) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

// waitFor waits until the console has a match of re, and returns it and
// its submatches; it gives up when ctx ends or exited is closed.
func (c *console) waitFor(ctx context.Context, re *regexp.Regexp, exited <-chan struct{}) ([]string, error) {
	for {
		if m := re.FindStringSubmatch(c.String()); m != nil {
			return m, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no line matching %q: %w", re, ctx.Err())
		case <-exited:
			if m := re.FindStringSubmatch(c.String()); m != nil {
				return m, nil
			}
			return nil, fmt.Errorf("no line matching %q before QEMU exited", re)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
