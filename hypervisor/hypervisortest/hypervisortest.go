// Package hypervisortest is the conformance suite of agent.Hypervisor:
// every driver (the fake, QEMU) runs the same tests, so that the agent and
// the controllers can count on the same behaviour from each. A real driver
// boots guests, which takes seconds, so the suite boots few of them: one
// server goes through every power operation in turn.
package hypervisortest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"golang.org/x/crypto/ssh"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/agent"
	"github.com/trustack/trustack/wire"
)

// Options tune the suite for a driver; zero values take the defaults.
type Options struct {
	// BootTimeout bounds each operation that boots a guest: spawn, start
	// and the reboots (default 3 minutes).
	BootTimeout time.Duration
	// OpTimeout bounds every other operation (default 2 minutes).
	OpTimeout time.Duration
	// Image is the image the servers boot from, and Kernel and Ramdisk
	// those of a direct kernel boot; the fake needs none. The guest must
	// be trustack's test guest (scripts/build-test-image), whose console
	// the suite reads.
	Image           wire.ImageRef
	Kernel, Ramdisk *wire.ImageRef
	// ImageToken is the token the images are downloaded with.
	ImageToken string
	// VCPUs, MemoryMB and DiskGB size the servers (defaults 1, 256 and 1).
	VCPUs, MemoryMB, DiskGB int
	// MeasuresDisks says the driver's diagnostics report its servers'
	// disks.
	MeasuresDisks bool
}

// Run runs the suite. newDriver returns a driver for one test, on a host
// with room for at least one server of the size in opts; the suite
// destroys the servers it spawns.
//
// What it holds drivers to, beyond the interface's doc: Spawn and Power
// return once the operation is done, so that State reports the new power
// state at once (the agent reads it right after, and tells the
// controller); an operation the power state does not allow gives
// ECONFLICT and changes nothing; Spawn of a server that exists leaves it
// as it is, whatever its state. The suite boots a guest five times
// (spawn, soft reboot, start and two hard reboots, one of them from
// shutdown).
func Run(t *testing.T, newDriver func(t *testing.T) agent.Hypervisor, opts Options) {
	if opts.BootTimeout == 0 {
		opts.BootTimeout = 3 * time.Minute
	}
	if opts.OpTimeout == 0 {
		opts.OpTimeout = 2 * time.Minute
	}
	if opts.VCPUs == 0 {
		opts.VCPUs = 1
	}
	if opts.MemoryMB == 0 {
		opts.MemoryMB = 256
	}
	if opts.DiskGB == 0 {
		opts.DiskGB = 1
	}
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s *suite)
	}{
		{"Describe", testDescribe},
		{"MissingServer", testMissingServer},
		{"Lifecycle", testLifecycle},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, &suite{hv: newDriver(t), opts: opts})
		})
	}
}

// suite is one test's driver and options.
type suite struct {
	hv   agent.Hypervisor
	opts Options
}

// op returns a context for an operation, bounded by the boot timeout if
// boot says it boots a guest, and by the operation timeout otherwise.
func (s *suite) op(t *testing.T, boot bool) context.Context {
	d := s.opts.OpTimeout
	if boot {
		d = s.opts.BootTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// publicKey is the key the suite's servers are given.
const publicKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFjXgS6qUz5bPBKVvl3QAHhDWXbmZvRm4I0vfCQ0nJ3n hypervisortest"

// spec returns the spec of a new server with a random ID.
func (s *suite) spec(name string) wire.Spec {
	return wire.Spec{ServerID: uuid.NewString(), Name: "hypervisortest " + name, Hostname: "hypervisortest-" + name,
		VCPUs: s.opts.VCPUs, MemoryMB: s.opts.MemoryMB, DiskGB: s.opts.DiskGB, Image: s.opts.Image, Kernel: s.opts.Kernel, Ramdisk: s.opts.Ramdisk,
		ImageToken: s.opts.ImageToken, KeyName: "k", KeyData: publicKey, ProjectID: "hypervisortest"}
}

// guestReady is what the test guest prints once it has booted.
const guestReady = "trustack-guest ready"

// boots returns how often the server's guest has said it was ready.
func (s *suite) boots(t *testing.T, id string) int {
	t.Helper()
	out, err := s.hv.Console(s.op(t, false), id, 0)
	if err != nil {
		t.Fatalf("Console: %v", err)
	}
	return strings.Count(out, guestReady)
}

// waitBoots waits until the server's guest has said it was ready more
// than n times, as long as a boot may take, and returns the count.
func (s *suite) waitBoots(t *testing.T, id string, n int) int {
	t.Helper()
	deadline := time.Now().Add(s.opts.BootTimeout)
	for {
		if got := s.boots(t, id); got > n {
			return got
		}
		if time.Now().After(deadline) {
			out, _ := s.hv.Console(s.op(t, false), id, 20)
			t.Fatalf("the guest did not say %q a %s time within %v; the console ends:\n%s", guestReady, ordinal(n+1), s.opts.BootTimeout, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func ordinal(n int) string {
	switch n {
	case 1:
		return "first"
	case 2:
		return "second"
	}
	return fmt.Sprintf("%dth", n)
}

// wantCode fails the test unless err has the code.
func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := trustack.ErrorCode(err); got != code {
		t.Fatalf("%s: got error %v (code %q), want code %q", what, err, got, code)
	}
}

// wantState fails the test unless the server's power state is want, as
// State and List report it.
func (s *suite) wantState(t *testing.T, id string, want trustack.PowerState) {
	t.Helper()
	got, err := s.hv.State(s.op(t, false), id)
	if err != nil {
		t.Fatalf("State: %v", err)
	}
	if got != want {
		t.Fatalf("State: got power state %s, want %s", stateName(got), stateName(want))
	}
	list, err := s.hv.List(s.op(t, false))
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if got, ok := list[id]; !ok || got != want {
		t.Fatalf("List: got %s (listed: %v), want %s", stateName(got), ok, stateName(want))
	}
}

func stateName(p trustack.PowerState) string {
	switch p {
	case trustack.PowerNoState:
		return "0 (no state)"
	case trustack.PowerRunning:
		return "1 (running)"
	case trustack.PowerPaused:
		return "3 (paused)"
	case trustack.PowerShutdown:
		return "4 (shutdown)"
	case trustack.PowerCrashed:
		return "6 (crashed)"
	case trustack.PowerSuspended:
		return "7 (suspended)"
	}
	return fmt.Sprintf("%d (unknown)", p)
}

var allOps = []wire.PowerOp{wire.OpPause, wire.OpUnpause, wire.OpSuspend, wire.OpResume, wire.OpStop, wire.OpStart, wire.OpRebootSoft, wire.OpRebootHard, wire.OpCrashDump}

func testDescribe(t *testing.T, s *suite) {
	r, err := s.hv.Describe(s.op(t, false))
	if err != nil {
		t.Fatal(err)
	}
	if r.VCPUs <= 0 || r.MemoryMB <= 0 || r.DiskGB <= 0 {
		t.Errorf("capacity %d vCPUs, %d MiB, %d GiB: want all positive", r.VCPUs, r.MemoryMB, r.DiskGB)
	}
	if r.HypervisorType == "" || r.HypervisorHostname == "" {
		t.Errorf("hypervisor type %q on %q: want both named", r.HypervisorType, r.HypervisorHostname)
	}
}

func testMissingServer(t *testing.T, s *suite) {
	id := uuid.NewString()
	_, err := s.hv.State(s.op(t, false), id)
	wantCode(t, "State", err, trustack.ENOTFOUND)
	for _, op := range allOps {
		wantCode(t, fmt.Sprintf("Power %s", op), s.hv.Power(s.op(t, false), id, op), trustack.ENOTFOUND)
	}
	_, err = s.hv.Console(s.op(t, false), id, 0)
	wantCode(t, "Console", err, trustack.ENOTFOUND)
	var w countingWriter
	wantCode(t, "Snapshot", s.hv.Snapshot(s.op(t, false), id, &w), trustack.ENOTFOUND)
	_, err = s.hv.Diagnostics(s.op(t, false), id)
	wantCode(t, "Diagnostics", err, trustack.ENOTFOUND)
	wantCode(t, "GrowVolume", s.hv.GrowVolume(s.op(t, false), id, "vdc", 2<<30), trustack.ENOTFOUND)
	if err := s.hv.Destroy(s.op(t, false), id); err != nil {
		t.Errorf("Destroy of a missing server: %v, want no error", err)
	}
	list, err := s.hv.List(s.op(t, false))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := list[id]; ok {
		t.Errorf("List holds the missing server %s", id)
	}
}

// wrongFrom are power operations that each power state does not allow.
var wrongFrom = map[trustack.PowerState][]wire.PowerOp{
	trustack.PowerRunning:   {wire.OpUnpause, wire.OpResume, wire.OpStart},
	trustack.PowerPaused:    {wire.OpPause, wire.OpSuspend, wire.OpResume, wire.OpStart, wire.OpRebootSoft, wire.OpCrashDump},
	trustack.PowerSuspended: {wire.OpPause, wire.OpSuspend, wire.OpUnpause, wire.OpStart, wire.OpRebootSoft, wire.OpCrashDump},
	trustack.PowerShutdown:  {wire.OpPause, wire.OpSuspend, wire.OpUnpause, wire.OpResume, wire.OpRebootSoft, wire.OpCrashDump},
}

// testLifecycle takes one server through every operation in turn; a step
// that fails ends the test, as the next ones depend on it.
func testLifecycle(t *testing.T, s *suite) {
	spec := s.spec("lifecycle")
	id := spec.ServerID
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.OpTimeout)
		defer cancel()
		if err := s.hv.Destroy(ctx, id); err != nil {
			t.Errorf("clean up: destroy %s: %v", id, err)
		}
	})
	before, err := s.hv.List(s.op(t, false))
	if err != nil {
		t.Fatal(err)
	}
	booted := 0 // how often the guest has said it was ready

	// power returns a step that carries out op and checks the state it
	// leaves, then that the operations the new state does not allow give
	// ECONFLICT and change nothing.
	power := func(op wire.PowerOp, want trustack.PowerState) func(t *testing.T) {
		return func(t *testing.T) {
			boot := op == wire.OpStart || op == wire.OpRebootSoft || op == wire.OpRebootHard
			if err := s.hv.Power(s.op(t, boot), id, op); err != nil {
				t.Fatalf("Power %s: %v", op, err)
			}
			s.wantState(t, id, want)
			for _, wrong := range wrongFrom[want] {
				err := s.hv.Power(s.op(t, false), id, wrong)
				wantCode(t, fmt.Sprintf("Power %s in state %s", wrong, stateName(want)), err, trustack.ECONFLICT)
				s.wantState(t, id, want)
			}
		}
	}
	steps := []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"Spawn", func(t *testing.T) {
			if err := s.hv.Spawn(s.op(t, true), spec, nil); err != nil {
				t.Fatalf("Spawn: %v", err)
			}
			s.wantState(t, id, trustack.PowerRunning)
			for _, wrong := range wrongFrom[trustack.PowerRunning] {
				wantCode(t, fmt.Sprintf("Power %s of a running server", wrong), s.hv.Power(s.op(t, false), id, wrong), trustack.ECONFLICT)
				s.wantState(t, id, trustack.PowerRunning)
			}
		}},
		{"SpawnAgainIsIdempotent", func(t *testing.T) {
			if err := s.hv.Spawn(s.op(t, true), spec, nil); err != nil {
				t.Fatalf("Spawn of a server that runs: %v, want no error", err)
			}
			s.wantState(t, id, trustack.PowerRunning)
			after, err := s.hv.List(s.op(t, false))
			if err != nil {
				t.Fatal(err)
			}
			if len(after) != len(before)+1 {
				t.Errorf("List: %d servers after spawning one twice, want %d", len(after), len(before)+1)
			}
		}},
		{"Console", func(t *testing.T) {
			booted = s.waitBoots(t, id, 0)
			// The guest read its hostname and key from what the driver
			// gave it, and says so after it is ready.
			key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(publicKey))
			if err != nil {
				t.Fatal(err)
			}
			want := []string{"trustack-guest hostname: " + spec.Hostname, "trustack-guest key k: " + ssh.FingerprintLegacyMD5(key)}
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
				all, err := s.hv.Console(s.op(t, false), id, 0)
				if err != nil {
					t.Fatalf("Console: %v", err)
				}
				if strings.Contains(all, want[0]) && strings.Contains(all, want[1]) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("Console: want lines %q in\n%s", want, all)
				}
			}
			// The tail is the end of the whole output, which may have
			// grown meanwhile.
			tail, err := s.hv.Console(s.op(t, false), id, 2)
			if err != nil {
				t.Fatalf("Console with 2 lines: %v", err)
			}
			all, err := s.hv.Console(s.op(t, false), id, 0)
			if err != nil {
				t.Fatalf("Console: %v", err)
			}
			lines := strings.Split(strings.TrimRight(tail, "\n"), "\n")
			if n := len(lines); n < 1 || n > 2 || strings.TrimSpace(tail) == "" {
				t.Errorf("Console with 2 lines: got %d lines %q, want 1 or 2", n, tail)
			}
			if !strings.Contains(all, strings.TrimRight(tail, "\n")) {
				t.Errorf("Console with 2 lines gave %q, which is not in the whole output %q", tail, all)
			}
		}},
		{"Diagnostics", func(t *testing.T) {
			d, err := s.hv.Diagnostics(s.op(t, false), id)
			if err != nil {
				t.Fatalf("Diagnostics: %v", err)
			}
			if d["memory"] != int64(spec.MemoryMB)*1024 {
				t.Errorf("Diagnostics: memory %d KiB, want the %d MiB the server was given", d["memory"], spec.MemoryMB)
			}
			if d["cpu0_time"] <= 0 {
				t.Errorf("Diagnostics: CPU time %d ns of a guest that booted, want some", d["cpu0_time"])
			}
			// A driver that measures disks names them as the guest does:
			// the guest booted reading its own disk, vda, and has its
			// config drive, vdb.
			if _, ok := d["vdb_read"]; s.opts.MeasuresDisks && (d["vda_read"] <= 0 || !ok) {
				t.Errorf("Diagnostics: %d bytes read from vda, the disk the guest booted from, and vdb's reported %v; want some, and vdb's: %v", d["vda_read"], ok, d)
			}
		}},
		{"Pause", power(wire.OpPause, trustack.PowerPaused)},
		{"SpawnAgainLeavesItAsItIs", func(t *testing.T) {
			// The agent spawns again after a controller restart; that must
			// not boot a server that exists already.
			if err := s.hv.Spawn(s.op(t, true), spec, nil); err != nil {
				t.Fatalf("Spawn of a paused server: %v, want no error", err)
			}
			s.wantState(t, id, trustack.PowerPaused)
		}},
		{"Unpause", power(wire.OpUnpause, trustack.PowerRunning)},
		{"Suspend", power(wire.OpSuspend, trustack.PowerSuspended)},
		{"Resume", power(wire.OpResume, trustack.PowerRunning)},
		{"ResumeDidNotBootAgain", func(t *testing.T) {
			if got := s.boots(t, id); got != booted {
				t.Errorf("the guest said %q %d times after resume, want %d as before suspend: it booted again", guestReady, got, booted)
			}
		}},
		{"Snapshot", func(t *testing.T) {
			var w countingWriter
			if err := s.hv.Snapshot(s.op(t, false), id, &w); err != nil {
				t.Fatalf("Snapshot: %v", err)
			}
			if w.n == 0 {
				t.Error("Snapshot wrote no data")
			}
			s.wantState(t, id, trustack.PowerRunning)
		}},
		{"RebootSoft", power(wire.OpRebootSoft, trustack.PowerRunning)},
		{"RebootSoftBootedAgain", func(t *testing.T) { booted = s.waitBoots(t, id, booted) }},
		{"Stop", power(wire.OpStop, trustack.PowerShutdown)},
		{"Start", power(wire.OpStart, trustack.PowerRunning)},
		{"StartBooted", func(t *testing.T) { booted = s.waitBoots(t, id, booted) }},
		{"CrashDump", power(wire.OpCrashDump, trustack.PowerRunning)},
		{"RebootHard", power(wire.OpRebootHard, trustack.PowerRunning)},
		{"RebootHardBootedAgain", func(t *testing.T) { booted = s.waitBoots(t, id, booted) }},
		{"StopAgain", power(wire.OpStop, trustack.PowerShutdown)},
		{"RebootHardFromShutdown", power(wire.OpRebootHard, trustack.PowerRunning)},
		{"Destroy", func(t *testing.T) {
			if err := s.hv.Destroy(s.op(t, false), id); err != nil {
				t.Fatalf("Destroy: %v", err)
			}
			_, err := s.hv.State(s.op(t, false), id)
			wantCode(t, "State after Destroy", err, trustack.ENOTFOUND)
			list, err := s.hv.List(s.op(t, false))
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := list[id]; ok {
				t.Error("List holds the server after Destroy")
			}
			if len(list) != len(before) {
				t.Errorf("List: %d servers after Destroy, want %d as before Spawn", len(list), len(before))
			}
			if err := s.hv.Destroy(s.op(t, false), id); err != nil {
				t.Errorf("Destroy again: %v, want no error", err)
			}
		}},
	}
	for _, st := range steps {
		if !t.Run(st.name, st.fn) {
			t.Fatalf("step %s failed; the steps after it depend on it", st.name)
		}
	}
}

// countingWriter counts what is written to it, so that a snapshot of a
// real disk is not kept in memory.
type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}
