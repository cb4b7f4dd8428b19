package qemu_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/agent"
	"github.com/trustack/trustack/hypervisor/hypervisortest"
	"github.com/trustack/trustack/hypervisor/qemu"
	"github.com/trustack/trustack/internal/testimage"
	"github.com/trustack/trustack/wire"
)

// testImageDir is where scripts/build-test-image puts the test guest;
// make test builds it first.
const testImageDir = "../../build/test-image"

// newDriver returns a driver under TCG, in a directory of the test's
// unless opts names one, and
// checks, when the test ends, that no QEMU of it runs and no instance
// file is left.
func newDriver(t *testing.T, opts qemu.Options) *qemu.Driver {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	opts.Accel = "tcg"
	if opts.MemoryMB == 0 {
		opts.VCPUs, opts.MemoryMB, opts.DiskGB = 4, 4096, 20
	}
	if opts.PowerOffTimeout == 0 {
		opts.PowerOffTimeout = 30 * time.Second
	}
	d, err := qemu.New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if pids := qemuProcesses(t, opts.Dir); len(pids) > 0 {
			t.Errorf("QEMU processes left running: %v", pids)
		}
		left, _ := filepath.Glob(filepath.Join(opts.Dir, "instances", "*"))
		if len(left) > 0 {
			t.Errorf("instance files left: %v", left)
		}
	})
	return d
}

// qemuProcesses returns the PIDs of QEMU processes whose command line
// names dir (their kernel is in its image cache), killing them.
func qemuProcesses(t *testing.T, dir string) []string {
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	var pids []string
	for _, path := range cmdlines {
		b, err := os.ReadFile(path)
		if err != nil || !strings.Contains(string(b), "qemu-system") || !strings.Contains(string(b), dir) {
			continue
		}
		pid := filepath.Base(filepath.Dir(path))
		pids = append(pids, pid)
		if n, err := strconv.Atoi(pid); err == nil {
			syscall.Kill(n, syscall.SIGKILL)
		}
	}
	return pids
}

func TestConformance(t *testing.T) {
	disk, kernel, ramdisk := testimage.Serve(t, testImageDir, "token")
	hypervisortest.Run(t, func(t *testing.T) agent.Hypervisor {
		return newDriver(t, qemu.Options{})
	}, hypervisortest.Options{BootTimeout: 2 * time.Minute, Image: disk, Kernel: kernel, Ramdisk: ramdisk, ImageToken: "token", MeasuresDisks: true})
}

func TestSpawnRefusesToOvercommitMemory(t *testing.T) {
	disk, kernel, ramdisk := testimage.Serve(t, testImageDir, "token")
	d := newDriver(t, qemu.Options{VCPUs: 4, MemoryMB: 1024, DiskGB: 20, RAMAllocationRatio: 1.0})
	ctx := context.Background()
	spec := func(id string, mb int) wire.Spec {
		return wire.Spec{ServerID: id, Name: id, Hostname: id, VCPUs: 1, MemoryMB: mb, DiskGB: 1, Image: disk, Kernel: kernel, Ramdisk: ramdisk, ImageToken: "token"}
	}
	if err := d.Spawn(ctx, spec("big", 768), nil); err != nil {
		t.Fatal(err)
	}
	defer d.Destroy(ctx, "big")
	err := d.Spawn(ctx, spec("over", 512), nil)
	if trustack.ErrorCode(err) != trustack.EOVERQUOTA {
		t.Fatalf("Spawn beyond the host's memory: %v, want EOVERQUOTA", err)
	}
	if _, err := d.State(ctx, "over"); trustack.ErrorCode(err) != trustack.ENOTFOUND {
		t.Errorf("State of the refused server: %v, want ENOTFOUND", err)
	}
}

func TestSpawnRefusesAnImageWithTheWrongChecksum(t *testing.T) {
	disk, kernel, ramdisk := testimage.Serve(t, testImageDir, "token")
	d := newDriver(t, qemu.Options{})
	ctx := context.Background()
	disk.Checksum = strings.Repeat("0", 32)
	err := d.Spawn(ctx, wire.Spec{ServerID: "bad", Name: "bad", Hostname: "bad", VCPUs: 1, MemoryMB: 256, Image: disk, Kernel: kernel, Ramdisk: ramdisk, ImageToken: "token"}, nil)
	if err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("Spawn from an image whose data does not match its checksum: %v, want a mismatch", err)
	}
	if err := d.Destroy(ctx, "bad"); err != nil {
		t.Fatal(err)
	}
}

// bootedServer spawns a server on d and waits for its guest to be ready.
func bootedServer(t *testing.T, d *qemu.Driver, id string) {
	t.Helper()
	disk, kernel, ramdisk := testimage.Serve(t, testImageDir, "token")
	ctx := context.Background()
	err := d.Spawn(ctx, wire.Spec{ServerID: id, Name: id, Hostname: id, VCPUs: 1, MemoryMB: 256, DiskGB: 1, Image: disk, Kernel: kernel, Ramdisk: ramdisk, ImageToken: "token"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		out, err := d.Console(ctx, id, 0)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out, "trustack-guest ready") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the guest is not ready after 2 minutes:\n%s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestARestartedDriverFindsItsServersRunning(t *testing.T) {
	dir := t.TempDir()
	first := newDriver(t, qemu.Options{Dir: dir})
	bootedServer(t, first, "s1")
	// The agent restarts: its QEMU processes live on, and the new driver
	// finds them, with their consoles.
	first.Close()
	second := newDriver(t, qemu.Options{Dir: dir})
	ctx := context.Background()
	if state, err := second.State(ctx, "s1"); err != nil || state != trustack.PowerRunning {
		t.Fatalf("State after the restart: %v, %v; want running", state, err)
	}
	if err := second.Power(ctx, "s1", wire.OpPause); err != nil {
		t.Fatal(err)
	}
	if state, _ := second.State(ctx, "s1"); state != trustack.PowerPaused {
		t.Errorf("State after pause: %v, want paused", state)
	}
	if err := second.Destroy(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
}

func TestAQEMUThatDiesLeavesItsServerShutOff(t *testing.T) {
	dir := t.TempDir()
	d := newDriver(t, qemu.Options{Dir: dir})
	bootedServer(t, d, "s1")
	if pids := qemuProcesses(t, dir); len(pids) != 1 {
		t.Fatalf("QEMU processes of the driver: %v, want one (now killed)", pids)
	}
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	for {
		state, err := d.State(ctx, "s1")
		if err != nil {
			t.Fatal(err)
		}
		if state == trustack.PowerShutdown {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("State after QEMU was killed: %v, want shut down", state)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// It starts again.
	if err := d.Power(ctx, "s1", wire.OpStart); err != nil {
		t.Fatal(err)
	}
	if state, _ := d.State(ctx, "s1"); state != trustack.PowerRunning {
		t.Errorf("State after start: %v, want running", state)
	}
	if err := d.Destroy(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
}
