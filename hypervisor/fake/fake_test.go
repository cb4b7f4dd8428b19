package fake_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/agent"
	"github.com/trustack/trustack/hypervisor/fake"
	"github.com/trustack/trustack/hypervisor/hypervisortest"
	"github.com/trustack/trustack/wire"
)

var ctx = context.Background()

var noon = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func newDriver(t testing.TB, opts fake.Options) *fake.Driver {
	t.Helper()
	if opts.Now == nil {
		opts.Now = func() time.Time { return noon }
	}
	d, err := fake.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func spec(id string, memoryMB int) wire.Spec {
	return wire.Spec{ServerID: id, Name: "server " + id, Hostname: "server-" + id, VCPUs: 1, MemoryMB: memoryMB, DiskGB: 1,
		Image: wire.ImageRef{ID: "img-1", DiskFormat: "raw", ContainerFormat: "bare"}, ProjectID: "p"}
}

func spawn(t testing.TB, d *fake.Driver, id string, memoryMB int) {
	t.Helper()
	if err := d.Spawn(ctx, spec(id, memoryMB), nil); err != nil {
		t.Fatalf("spawn %s: %v", id, err)
	}
}

func wantCode(t testing.TB, err error, code string) {
	t.Helper()
	if got := trustack.ErrorCode(err); got != code {
		t.Fatalf("got error %v (code %q), want code %q", err, got, code)
	}
}

func wantState(t testing.TB, d *fake.Driver, id string, want trustack.PowerState) {
	t.Helper()
	got, err := d.State(ctx, id)
	if err != nil {
		t.Fatalf("state of %s: %v", id, err)
	}
	if got != want {
		t.Fatalf("state of %s: got %d, want %d", id, got, want)
	}
}

func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts func(t *testing.T) fake.Options
	}{
		{"InMemory", func(*testing.T) fake.Options { return fake.Options{} }},
		{"WithStateFile", func(t *testing.T) fake.Options {
			return fake.Options{StateFile: filepath.Join(t.TempDir(), "fake", "state.json")}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hypervisortest.Run(t, func(t *testing.T) agent.Hypervisor { return newDriver(t, tc.opts(t)) },
				hypervisortest.Options{BootTimeout: 10 * time.Second, OpTimeout: 10 * time.Second})
		})
	}
}

func TestDescribe(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts fake.Options
		want agent.Resources
	}{
		{"defaults", fake.Options{}, agent.Resources{VCPUs: 8, MemoryMB: 16384, DiskGB: 200, HypervisorType: "fake", HypervisorVersion: 1000, HypervisorHostname: "fake-host"}},
		{"as told", fake.Options{Hostname: "h1", VCPUs: 2, MemoryMB: 1024, DiskGB: 10}, agent.Resources{VCPUs: 2, MemoryMB: 1024, DiskGB: 10, HypervisorType: "fake", HypervisorVersion: 1000, HypervisorHostname: "h1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := newDriver(t, tc.opts).Describe(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestFailFailsTheNextCallsOfOneOperation(t *testing.T) {
	for _, tc := range []struct {
		op string
		// call carries out the operation on server "s", which runs.
		call func(d *fake.Driver) error
		// unchanged fails unless the failed call left "s" as it was.
		unchanged func(t *testing.T, d *fake.Driver)
	}{
		{"spawn", func(d *fake.Driver) error { return d.Spawn(ctx, spec("new", 256), nil) }, func(t *testing.T, d *fake.Driver) {
			_, err := d.State(ctx, "new")
			wantCode(t, err, trustack.ENOTFOUND)
		}},
		{"destroy", func(d *fake.Driver) error { return d.Destroy(ctx, "s") }, func(t *testing.T, d *fake.Driver) {
			wantState(t, d, "s", trustack.PowerRunning)
		}},
		{"power", func(d *fake.Driver) error { return d.Power(ctx, "s", wire.OpStop) }, func(t *testing.T, d *fake.Driver) {
			wantState(t, d, "s", trustack.PowerRunning)
		}},
		{"console", func(d *fake.Driver) error { _, err := d.Console(ctx, "s", 0); return err }, func(t *testing.T, d *fake.Driver) {}},
		{"snapshot", func(d *fake.Driver) error {
			var b bytes.Buffer
			err := d.Snapshot(ctx, "s", &b)
			if err != nil && b.Len() > 0 {
				return errors.New("a failed snapshot wrote data")
			}
			return err
		}, func(t *testing.T, d *fake.Driver) {}},
	} {
		t.Run(tc.op, func(t *testing.T) {
			d := newDriver(t, fake.Options{})
			spawn(t, d, "s", 256)
			first, second := trustack.Errorf(trustack.EUNAVAILABLE, "first"), trustack.Errorf(trustack.EINTERNAL, "second")
			d.Fail(tc.op, first)
			d.Fail(tc.op, second)
			// Another operation's failure does not touch this one.
			other := "console"
			if tc.op == "console" {
				other = "spawn"
			}
			d.Fail(other, errors.New("not this one"))

			if err := tc.call(d); err != first {
				t.Fatalf("first call: got %v, want %v", err, first)
			}
			tc.unchanged(t, d)
			if err := tc.call(d); err != second {
				t.Fatalf("second call: got %v, want %v", err, second)
			}
			tc.unchanged(t, d)
			if err := tc.call(d); err != nil {
				t.Fatalf("third call: got %v, want success once the failures are used up", err)
			}
		})
	}
}

func TestSetDelaySlowsEveryOperation(t *testing.T) {
	const delay = 50 * time.Millisecond
	d := newDriver(t, fake.Options{})
	d.SetDelay(delay)
	start := time.Now()
	spawn(t, d, "s", 256)
	if err := d.Power(ctx, "s", wire.OpPause); err != nil {
		t.Fatal(err)
	}
	if elapsed := time.Since(start); elapsed < 2*delay {
		t.Errorf("spawn and pause took %v, want at least %v", elapsed, 2*delay)
	}

	// A caller that gives up while the operation waits gets EUNAVAILABLE,
	// and the operation does not happen.
	cut, cancel := context.WithTimeout(ctx, time.Millisecond)
	defer cancel()
	wantCode(t, d.Spawn(cut, spec("late", 256), nil), trustack.EUNAVAILABLE)
	wantCode(t, d.Power(cut, "s", wire.OpUnpause), trustack.EUNAVAILABLE)
	wantState(t, d, "s", trustack.PowerPaused)
	_, err := d.State(ctx, "late")
	wantCode(t, err, trustack.ENOTFOUND)

	d.SetDelay(0)
	if err := d.Power(ctx, "s", wire.OpUnpause); err != nil {
		t.Fatal(err)
	}
	wantState(t, d, "s", trustack.PowerRunning)
}

func TestCrashStopsTheServer(t *testing.T) {
	d := newDriver(t, fake.Options{})
	spawn(t, d, "s", 256)
	spawn(t, d, "other", 256)
	d.Crash("s")
	wantState(t, d, "s", trustack.PowerShutdown)
	wantState(t, d, "other", trustack.PowerRunning)
	out, err := d.Console(ctx, "s", 1)
	if err != nil {
		t.Fatal(err)
	}
	if want := "[12:00:00.000] Kernel panic - not syncing: simulated crash\n"; out != want {
		t.Errorf("console after the crash: got %q, want %q", out, want)
	}
	// The crashed server can be started again; crashing a missing one does
	// nothing.
	if err := d.Power(ctx, "s", wire.OpStart); err != nil {
		t.Fatalf("start after a crash: %v", err)
	}
	wantState(t, d, "s", trustack.PowerRunning)
	d.Crash("missing")
	list, err := d.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 {
		t.Errorf("after crashing a missing server: %v, want the two servers only", list)
	}
}

func TestStateFileSurvivesANewDriver(t *testing.T) {
	file := filepath.Join(t.TempDir(), "host", "state.json")
	first := newDriver(t, fake.Options{StateFile: file})
	spawn(t, first, "a", 256)
	spawn(t, first, "b", 256)
	spawn(t, first, "c", 256)
	if err := first.Power(ctx, "b", wire.OpPause); err != nil {
		t.Fatal(err)
	}
	first.Crash("c")
	console, err := first.Console(ctx, "a", 0)
	if err != nil {
		t.Fatal(err)
	}

	second := newDriver(t, fake.Options{StateFile: file})
	got, err := second.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]trustack.PowerState{"a": trustack.PowerRunning, "b": trustack.PowerPaused, "c": trustack.PowerShutdown}
	if !maps.Equal(got, want) {
		t.Errorf("servers after a restart: got %v, want %v", got, want)
	}
	if again, err := second.Console(ctx, "a", 0); err != nil || again != console {
		t.Errorf("console after a restart: got %q (%v), want %q", again, err, console)
	}
	// Spawning a server the host has already does not boot it again.
	if err := second.Spawn(ctx, spec("b", 256), nil); err != nil {
		t.Fatal(err)
	}
	wantState(t, second, "b", trustack.PowerPaused)
	if err := second.Destroy(ctx, "a"); err != nil {
		t.Fatal(err)
	}

	third := newDriver(t, fake.Options{StateFile: file})
	if got, _ := third.List(ctx); !maps.Equal(got, map[string]trustack.PowerState{"b": trustack.PowerPaused, "c": trustack.PowerShutdown}) {
		t.Errorf("servers after destroying a and restarting: got %v, want b paused and c shut down", got)
	}
}

func TestStateFileThatCannotBeReadIsAnError(t *testing.T) {
	file := filepath.Join(t.TempDir(), "state.json")
	if err := os.WriteFile(file, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := fake.New(fake.Options{StateFile: file}); err == nil {
		t.Error("New with a corrupt state file succeeded, want an error")
	}
}

func TestMemoryOvercommitIsRefusedBeyondTheRatio(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ratio   float64
		spawns  []int // MiB
		refused int   // index of the first spawn refused, -1 for none
	}{
		{"default ratio 1: fits exactly", 0, []int{512, 512}, -1},
		{"default ratio 1: one MiB more", 0, []int{512, 512, 1}, 2},
		{"too big for an empty host", 1, []int{1025}, 0},
		{"ratio 1.5", 1.5, []int{512, 512, 512, 1}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDriver(t, fake.Options{MemoryMB: 1024, RAMAllocationRatio: tc.ratio})
			for i, mb := range tc.spawns {
				id := string(rune('a' + i))
				err := d.Spawn(ctx, spec(id, mb), nil)
				if i != tc.refused {
					if err != nil {
						t.Fatalf("spawn %d of %d MiB: %v", i, mb, err)
					}
					continue
				}
				wantCode(t, err, trustack.EOVERQUOTA)
				if _, err := d.State(ctx, id); trustack.ErrorCode(err) != trustack.ENOTFOUND {
					t.Errorf("the refused server is on the host: %v", err)
				}
				// Room comes back when a server goes.
				if i > 0 {
					if err := d.Destroy(ctx, "a"); err != nil {
						t.Fatal(err)
					}
					if err := d.Spawn(ctx, spec(id, mb), nil); err != nil {
						t.Errorf("spawn after destroying a server: %v", err)
					}
				}
			}
		})
	}
}

func TestConsoleTellsWhatAGuestWould(t *testing.T) {
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	sshKey, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	d := newDriver(t, fake.Options{})
	s := spec("s", 256)
	s.KeyName = "alice"
	s.KeyData = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshKey))) + " alice@example"
	if err := d.Spawn(ctx, s, nil); err != nil {
		t.Fatal(err)
	}
	out, err := d.Console(ctx, "s", 2)
	if err != nil {
		t.Fatal(err)
	}
	want := "[12:00:00.000] trustack-guest hostname: server-s\n[12:00:00.000] trustack-guest key alice: " + ssh.FingerprintLegacyMD5(sshKey) + "\n"
	if out != want {
		t.Errorf("last two console lines:\n got %q\nwant %q", out, want)
	}
	all, err := d.Console(ctx, "s", 0)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(all, "\n"); n != 5 {
		t.Errorf("whole console: %d lines, want 5:\n%s", n, all)
	}
}

func TestSnapshotNamesTheServer(t *testing.T) {
	d := newDriver(t, fake.Options{SnapshotTime: time.Hour})
	spawn(t, d, "s", 256)
	// A snapshot cut off writes nothing.
	cut, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	var b bytes.Buffer
	wantCode(t, d.Snapshot(cut, "s", &b), trustack.EUNAVAILABLE)
	if b.Len() != 0 {
		t.Errorf("a snapshot cut off wrote %q", b.String())
	}

	d = newDriver(t, fake.Options{})
	spawn(t, d, "s", 256)
	if err := d.Snapshot(ctx, "s", &b); err != nil {
		t.Fatal(err)
	}
	if got, want := b.String(), "trustack fake disk of server s (server s), from image img-1, taken at 2026-05-01T12:00:00Z\n"; got != want {
		t.Errorf("snapshot data: got %q, want %q", got, want)
	}
}

func TestUnknownPowerOperation(t *testing.T) {
	d := newDriver(t, fake.Options{})
	spawn(t, d, "s", 256)
	wantCode(t, d.Power(ctx, "s", wire.PowerOp("hibernate")), trustack.EINVALID)
	wantState(t, d, "s", trustack.PowerRunning)
}
