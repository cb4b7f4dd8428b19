// Package backendtest is the conformance suite of volume backends: each
// passes the same tests, so that what a volume does holds whichever
// backend keeps it.
// It reads and writes volumes' blocks with qemu-io, as QEMU would.
package backendtest

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/agent"
)

var ctx = context.Background()

// Run runs the suite; open returns a new, empty backend for each test.
func Run(t *testing.T, open func(t testing.TB) agent.VolumeBackend) {
	if _, err := exec.LookPath("qemu-io"); err != nil {
		t.Fatal("the volume backends' tests need qemu-io (qemu-utils)")
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, b agent.VolumeBackend)
	}{
		{"CreateIsIdempotent", testCreate},
		{"ExtendKeepsTheData", testExtend},
		{"DeleteRemovesTheData", testDelete},
		{"BadInput", testBadInput},
		{"ConcurrentCreations", testConcurrentCreations},
		{"Capacity", testCapacity},
		{"SnapshotsKeepTheirData", testSnapshots},
		{"ConcurrentSnapshots", testConcurrentSnapshots},
		{"VolumesFromImages", testFromImage},
		{"SnapshotsOfMissingThings", testMissingSnapshots},
		{"RevertToASnapshot", testRevert},
		{"RevertToMissingThings", testRevertMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open(t)) })
	}
}

const id = "6f1d2c3b-0a9e-4d8f-b7c6-5e4d3c2b1a00"

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func code(t testing.TB, err error, want string) {
	t.Helper()
	if got := trustack.ErrorCode(err); got != want {
		t.Fatalf("got error %v (code %q), want code %q", err, got, want)
	}
}

func sizes(t testing.TB, b agent.VolumeBackend) map[string]int {
	t.Helper()
	got, err := b.Volumes(ctx)
	must(t, err)
	return got
}

// io runs a qemu-io command on a volume, as a guest's reads and writes,
// and reports whether it succeeded (a read with -P fails on data other
// than the pattern).
func io(t testing.TB, b agent.VolumeBackend, volume, command string) bool {
	t.Helper()
	path, format, err := b.Locate(ctx, volume)
	must(t, err)
	return exec.Command("qemu-io", "-f", format, "-c", command, path).Run() == nil
}

// testCreate: a volume is made empty (zeros) of its size; made again of
// the size it is left as it is, of another size refused.
func testCreate(t *testing.T, b agent.VolumeBackend) {
	must(t, b.Create(ctx, id, 1))
	if got := sizes(t, b); len(got) != 1 || got[id] != 1 {
		t.Fatalf("volumes %v, want %s of 1 GiB", got, id)
	}
	if !io(t, b, id, "read -P 0 0 1M") {
		t.Errorf("a new volume does not read as zeros")
	}
	if !io(t, b, id, "write -P 0xab 1023M 1M") {
		t.Fatalf("cannot write the last MiB of a 1 GiB volume")
	}
	if io(t, b, id, "write -P 0xab 1G 1M") {
		t.Errorf("a 1 GiB volume takes a write past its end")
	}
	must(t, b.Create(ctx, id, 1))
	if !io(t, b, id, "read -P 0xab 1023M 1M") {
		t.Errorf("creating a volume that exists changed its data")
	}
	code(t, b.Create(ctx, id, 2), trustack.ECONFLICT)
}

// testExtend: a volume grows with its data; it never shrinks.
func testExtend(t *testing.T, b agent.VolumeBackend) {
	must(t, b.Create(ctx, id, 1))
	if !io(t, b, id, "write -P 0xcd 0 1M") {
		t.Fatal("cannot write a new volume")
	}
	must(t, b.Extend(ctx, id, 3))
	if got := sizes(t, b)[id]; got != 3 {
		t.Errorf("extended to 3 GiB, the volume has %d", got)
	}
	if !io(t, b, id, "read -P 0xcd 0 1M") {
		t.Errorf("extending a volume lost its data")
	}
	if !io(t, b, id, "write -P 0xef 3071M 1M") {
		t.Errorf("cannot write the last MiB of the extended volume")
	}
	must(t, b.Extend(ctx, id, 3))
	code(t, b.Extend(ctx, id, 2), trustack.EINVALID)
	code(t, b.Extend(ctx, "00000000-0000-4000-8000-000000000000", 5), trustack.ENOTFOUND)
}

// testDelete: a deleted volume is gone with its data, and one made again
// of its ID is empty; deleting what is not there is no error.
func testDelete(t *testing.T, b agent.VolumeBackend) {
	must(t, b.Create(ctx, id, 1))
	if !io(t, b, id, "write -P 0x5a 0 1M") {
		t.Fatal("cannot write a new volume")
	}
	must(t, b.Delete(ctx, id))
	if got := sizes(t, b); len(got) != 0 {
		t.Errorf("volumes %v after the delete, want none", got)
	}
	_, _, err := b.Locate(ctx, id)
	code(t, err, trustack.ENOTFOUND)
	must(t, b.Delete(ctx, id))
	must(t, b.Create(ctx, id, 1))
	if !io(t, b, id, "read -P 0 0 1M") {
		t.Errorf("a volume made again with a deleted one's ID has its data")
	}
}

// testBadInput: IDs that are no names, and sizes under 1 GiB, are
// refused.
func testBadInput(t *testing.T, b agent.VolumeBackend) {
	for _, bad := range []string{"", "../etc", "a/b", ".hidden", "-x"} {
		code(t, b.Create(ctx, bad, 1), trustack.EINVALID)
		code(t, b.Delete(ctx, bad), trustack.EINVALID)
	}
	code(t, b.Create(ctx, id, 0), trustack.EINVALID)
	if got := sizes(t, b); len(got) != 0 {
		t.Errorf("volumes %v after bad input, want none", got)
	}
}

// testConcurrentCreations: volumes made at once are all there, whole.
func testConcurrentCreations(t *testing.T, b agent.VolumeBackend) {
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = b.Create(ctx, fmt.Sprintf("vol-%d", i), 1+i%2)
		}()
	}
	wg.Wait()
	got := sizes(t, b)
	for i, err := range errs {
		must(t, err)
		if want := 1 + i%2; got[fmt.Sprintf("vol-%d", i)] != want {
			t.Errorf("vol-%d: %d GiB, want %d", i, got[fmt.Sprintf("vol-%d", i)], want)
		}
	}
}

// testCapacity: the backend says what it has and what is free.
func testCapacity(t *testing.T, b agent.VolumeBackend) {
	total, free, err := b.Capacity(ctx)
	must(t, err)
	if total <= 0 || free < 0 || free > total {
		t.Errorf("capacity %d GiB, %d free: want 0 ≤ free ≤ total, total > 0", total, free)
	}
}

// testSnapshots: a snapshot keeps a volume's data as it was, while the
// volume goes on; volumes made from it have that data, of a size at least
// its own; a chain of snapshots keeps each one's; deleting snapshots
// changes no volume's data.
func testSnapshots(t *testing.T, b agent.VolumeBackend) {
	const (
		s1, s2 = "5a1d2c3b-0a9e-4d8f-b7c6-5e4d3c2b1a01", "5a1d2c3b-0a9e-4d8f-b7c6-5e4d3c2b1a02"
		c1, c2 = "7c1d2c3b-0a9e-4d8f-b7c6-5e4d3c2b1a01", "7c1d2c3b-0a9e-4d8f-b7c6-5e4d3c2b1a02"
	)
	must(t, b.Create(ctx, id, 1))
	if !io(t, b, id, "write -P 0x11 0 1M") {
		t.Fatal("cannot write a new volume")
	}
	must(t, b.Snapshot(ctx, id, s1))
	must(t, b.Snapshot(ctx, id, s1)) // again: nothing changes
	if !io(t, b, id, "write -P 0x22 0 1M") {
		t.Fatal("cannot write a volume after its snapshot")
	}
	must(t, b.Snapshot(ctx, id, s2))
	if !io(t, b, id, "write -P 0x33 0 1M") {
		t.Fatal("cannot write a volume after its second snapshot")
	}
	code(t, b.CreateFromSnapshot(ctx, c1, s1, 0), trustack.EINVALID)
	must(t, b.CreateFromSnapshot(ctx, c1, s1, 2))
	must(t, b.CreateFromSnapshot(ctx, c2, s2, 1))
	for v, pattern := range map[string]string{id: "0x33", c1: "0x11", c2: "0x22"} {
		if !io(t, b, v, "read -P "+pattern+" 0 1M") {
			t.Errorf("volume %s does not read %s", v, pattern)
		}
	}
	if got := sizes(t, b); got[id] != 1 || got[c1] != 2 || got[c2] != 1 || len(got) != 3 {
		t.Errorf("volumes %v, want %s of 1 GiB, %s of 2, %s of 1", got, id, c1, c2)
	}
	if !io(t, b, c1, "write -P 0x44 2047M 1M") {
		t.Errorf("cannot write the last MiB of a 2 GiB volume made from a snapshot")
	}
	// Each volume keeps its data as the snapshots go, oldest first.
	must(t, b.DeleteSnapshot(ctx, s1))
	must(t, b.DeleteSnapshot(ctx, s1))
	must(t, b.DeleteSnapshot(ctx, s2))
	for v, pattern := range map[string]string{id: "0x33", c1: "0x11", c2: "0x22"} {
		if !io(t, b, v, "read -P "+pattern+" 0 1M") {
			t.Errorf("volume %s does not read %s once the snapshots are gone", v, pattern)
		}
	}
	code(t, b.CreateFromSnapshot(ctx, "7c1d2c3b-0a9e-4d8f-b7c6-5e4d3c2b1a03", s1, 1), trustack.ENOTFOUND)
	for _, v := range []string{id, c1, c2} {
		must(t, b.Delete(ctx, v))
	}
	if got := sizes(t, b); len(got) != 0 {
		t.Errorf("volumes %v after deleting them all", got)
	}
}

// testConcurrentSnapshots: a volume's snapshot taken while the one
// before is deleted, and other volumes are deleted, as a controller asks
// them when users do (or when it takes over another's): all succeed, and
// the volumes made from the snapshots keep their data.
func testConcurrentSnapshots(t *testing.T, b agent.VolumeBackend) {
	const rounds = 4
	snap := func(i int) string { return fmt.Sprintf("5a1d2c3b-0a9e-4d8f-b7c6-5e4d3c2b1a%02d", i) }
	clone := func(i int) string { return fmt.Sprintf("7c1d2c3b-0a9e-4d8f-b7c6-5e4d3c2b1a%02d", i) }
	other := func(i int) string { return fmt.Sprintf("8d1d2c3b-0a9e-4d8f-b7c6-5e4d3c2b1a%02d", i) }
	must(t, b.Create(ctx, id, 1))
	for i := range rounds {
		if !io(t, b, id, fmt.Sprintf("write -P %d 0 1M", 0x10+i)) {
			t.Fatal("cannot write the volume")
		}
		const others = 12
		for j := range others {
			must(t, b.Create(ctx, other(j), 1))
		}
		var wg sync.WaitGroup
		errs := make([]error, 2+others)
		wg.Go(func() { errs[0] = b.Snapshot(ctx, id, snap(i)) })
		if i > 0 {
			wg.Go(func() { errs[1] = b.DeleteSnapshot(ctx, snap(i-1)) })
		}
		wg.Go(func() { // one after the other, as the others look at them
			for j := range others {
				errs[2+j] = b.Delete(ctx, other(j))
				time.Sleep(5 * time.Millisecond)
			}
		})
		wg.Wait()
		for _, err := range errs {
			must(t, err)
		}
		must(t, b.CreateFromSnapshot(ctx, clone(i), snap(i), 1))
	}
	for i := range rounds {
		if !io(t, b, clone(i), fmt.Sprintf("read -P %d 0 1M", 0x10+i)) {
			t.Errorf("volume %s, of snapshot %s, does not read %#x", clone(i), snap(i), 0x10+i)
		}
	}
}

// testMissingSnapshots: a snapshot of a missing volume, and a volume of a
// missing snapshot, are ENOTFOUND; bad IDs EINVALID.
func testMissingSnapshots(t *testing.T, b agent.VolumeBackend) {
	code(t, b.Snapshot(ctx, id, "5a1d2c3b-0a9e-4d8f-b7c6-5e4d3c2b1a09"), trustack.ENOTFOUND)
	code(t, b.CreateFromSnapshot(ctx, id, "5a1d2c3b-0a9e-4d8f-b7c6-5e4d3c2b1a09", 1), trustack.ENOTFOUND)
	code(t, b.Snapshot(ctx, id, "../x"), trustack.EINVALID)
	code(t, b.DeleteSnapshot(ctx, "a/b"), trustack.EINVALID)
}

// testFromImage: a volume made from a qcow2 image has its data, at the
// volume's size; an image larger than the volume is refused.
func testFromImage(t *testing.T, b agent.VolumeBackend) {
	dir := t.TempDir()
	image := filepath.Join(dir, "image.qcow2")
	big := filepath.Join(dir, "big.qcow2")
	for path, size := range map[string]string{image: "64M", big: "2G"} {
		if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", path, size).CombinedOutput(); err != nil {
			t.Fatalf("qemu-img create: %v: %s", err, out)
		}
	}
	if out, err := exec.Command("qemu-io", "-f", "qcow2", "-c", "write -P 0x99 1M 64k", image).CombinedOutput(); err != nil {
		t.Fatalf("write the image: %v: %s", err, out)
	}
	must(t, b.CreateFromImage(ctx, id, 1, image, "qcow2"))
	if !io(t, b, id, "read -P 0x99 1M 64k") || !io(t, b, id, "read -P 0 2M 64k") {
		t.Errorf("the volume does not have the image's data")
	}
	if got := sizes(t, b)[id]; got != 1 {
		t.Errorf("the volume has %d GiB, want 1", got)
	}
	code(t, b.CreateFromImage(ctx, "7c1d2c3b-0a9e-4d8f-b7c6-5e4d3c2b1a05", 1, big, "qcow2"), trustack.EINVALID)
	if got := sizes(t, b); len(got) != 1 {
		t.Errorf("volumes %v after a refused image, want only %s", got, id)
	}
}

// testRevert: a volume reverted to a snapshot reads what it read when
// the snapshot was taken, everywhere, at its own size; reverting again
// changes nothing; the snapshots keep their data, the volume can be
// written, and it keeps its data as the snapshots go.
func testRevert(t *testing.T, b agent.VolumeBackend) {
	const (
		s1, s2 = "5a1d2c3b-0a9e-4d8f-b7c6-5e4d3c2b1a11", "5a1d2c3b-0a9e-4d8f-b7c6-5e4d3c2b1a12"
		c1     = "7c1d2c3b-0a9e-4d8f-b7c6-5e4d3c2b1a11"
	)
	reads := func(when string, patterns map[string]string) {
		t.Helper()
		for where, pattern := range patterns {
			if !io(t, b, id, "read -P "+pattern+" "+where+" 1M") {
				t.Errorf("%s: the volume does not read %s at %s", when, pattern, where)
			}
		}
	}
	must(t, b.Create(ctx, id, 1))
	if !io(t, b, id, "write -P 0x11 0 1M") {
		t.Fatal("cannot write a new volume")
	}
	must(t, b.Snapshot(ctx, id, s1))
	if !io(t, b, id, "write -P 0x22 0 1M") || !io(t, b, id, "write -P 0x23 512M 1M") {
		t.Fatal("cannot write a volume after its snapshot")
	}
	must(t, b.Snapshot(ctx, id, s2))
	if !io(t, b, id, "write -P 0x33 0 1M") || !io(t, b, id, "write -P 0x34 1023M 1M") {
		t.Fatal("cannot write a volume after its second snapshot")
	}

	must(t, b.Revert(ctx, id, s2))
	reads("reverted to the latest snapshot", map[string]string{"0": "0x22", "512M": "0x23", "1023M": "0"})
	must(t, b.Revert(ctx, id, s2)) // again: the same data
	reads("reverted again", map[string]string{"0": "0x22", "512M": "0x23", "1023M": "0"})

	// A volume grown since the snapshot keeps its size, and reads zeros
	// past the snapshot's.
	must(t, b.Extend(ctx, id, 2))
	if !io(t, b, id, "write -P 0x35 1536M 1M") {
		t.Fatal("cannot write the extended volume")
	}
	must(t, b.Revert(ctx, id, s1))
	reads("reverted to the first snapshot", map[string]string{"0": "0x11", "512M": "0", "1536M": "0"})
	if got := sizes(t, b); len(got) != 1 || got[id] != 2 {
		t.Errorf("volumes %v after the revert, want %s of 2 GiB", got, id)
	}
	if !io(t, b, id, "write -P 0x44 2047M 1M") {
		t.Errorf("cannot write the last MiB of the reverted volume")
	}

	// The snapshots keep their data, and the volume its own as they go.
	must(t, b.CreateFromSnapshot(ctx, c1, s2, 1))
	if !io(t, b, c1, "read -P 0x22 0 1M") {
		t.Errorf("the snapshot reverted to lost its data")
	}
	must(t, b.DeleteSnapshot(ctx, s1))
	must(t, b.DeleteSnapshot(ctx, s2))
	reads("once the snapshots are gone", map[string]string{"0": "0x11", "512M": "0", "2047M": "0x44"})
}

// testRevertMissing: a revert to a missing snapshot, or of a missing
// volume, is ENOTFOUND and changes nothing; bad IDs are EINVALID.
func testRevertMissing(t *testing.T, b agent.VolumeBackend) {
	const s1 = "5a1d2c3b-0a9e-4d8f-b7c6-5e4d3c2b1a21"
	must(t, b.Create(ctx, id, 1))
	if !io(t, b, id, "write -P 0x55 0 1M") {
		t.Fatal("cannot write a new volume")
	}
	code(t, b.Revert(ctx, id, "5a1d2c3b-0a9e-4d8f-b7c6-5e4d3c2b1a29"), trustack.ENOTFOUND)
	must(t, b.Snapshot(ctx, id, s1))
	code(t, b.Revert(ctx, "00000000-0000-4000-8000-000000000000", s1), trustack.ENOTFOUND)
	code(t, b.Revert(ctx, id, "../x"), trustack.EINVALID)
	code(t, b.Revert(ctx, "a/b", s1), trustack.EINVALID)
	if !io(t, b, id, "read -P 0x55 0 1M") {
		t.Errorf("a refused revert changed the volume's data")
	}
	if got := sizes(t, b); len(got) != 1 || got[id] != 1 {
		t.Errorf("volumes %v after refused reverts, want %s of 1 GiB", got, id)
	}
}
