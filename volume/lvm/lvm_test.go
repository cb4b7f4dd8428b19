package lvm

import (
	"os"
	"testing"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/agent"
	"github.com/trustack/trustack/volume/backendtest"
)

// These tests need device-mapper: TestInGuest runs them in the storage
// host guest.

// lv returns the group's logical volume named name, and whether it is
// there.
func lv(t testing.TB, b *Backend, name string) (logicalVolume, bool) {
	t.Helper()
	lvs, err := b.list(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	v, ok := lvs[name]
	return v, ok
}

func TestConformance(t *testing.T) {
	guestOnly(t)
	backendtest.Run(t, func(t testing.TB) agent.VolumeBackend { return open(t) })
}

// TestNew: a group that is not there is refused, and a name that is none;
// New makes a thin pool that zeroes the blocks it hands out, and opening
// the group again keeps its volumes.
func TestNew(t *testing.T) {
	guestOnly(t)
	if _, err := New(t.Context(), "trustack-missing"); trustack.ErrorCode(err) != trustack.EUNAVAILABLE {
		t.Errorf("New on a missing group: %v, want code %s", err, trustack.EUNAVAILABLE)
	}
	if _, err := New(t.Context(), "-x"); trustack.ErrorCode(err) != trustack.EINVALID {
		t.Errorf("New on a bad group name: %v, want code %s", err, trustack.EINVALID)
	}
	b := open(t)
	if pool, ok := lv(t, b, Pool); !ok || !pool.thinPool() || !pool.zeroes() {
		t.Fatalf("pool %s: %+v (there: %v), want a thin pool that zeroes new blocks", Pool, pool, ok)
	}
	if err := b.Create(t.Context(), "vol-1", 1); err != nil {
		t.Fatal(err)
	}
	again, err := New(t.Context(), b.group)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := again.Volumes(t.Context()); err != nil || got["vol-1"] != 1 {
		t.Errorf("volumes %v (%v) once opened again, want vol-1 of 1 GiB", got, err)
	}
}

// TestPoolsThatDoNotZeroAreRefused: in a thin pool that does not zero the
// blocks it hands out, a new volume could read a deleted one's data.
func TestPoolsThatDoNotZeroAreRefused(t *testing.T) {
	group := newGroup(t)
	command(t, "", nil, "lvcreate", "-q", "--type", "thin-pool", "--zero", "n", "-L", "1g", "-n", Pool, group)
	if _, err := New(t.Context(), group); err == nil {
		t.Errorf("New on a pool that does not zero new blocks: no error")
	}
}

// TestUnfinishedCreationsAreRemoved: what a creation cut short left is
// never listed as a volume, and gone once the backend opens again.
func TestUnfinishedCreationsAreRemoved(t *testing.T) {
	b := open(t)
	if err := b.createThin(t.Context(), partialPrefix+"vol-1", 1); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Volumes(t.Context()); err != nil || len(got) != 0 {
		t.Errorf("volumes %v (%v), want none", got, err)
	}
	if _, err := New(t.Context(), b.group); err != nil {
		t.Fatal(err)
	}
	if _, ok := lv(t, b, partialPrefix+"vol-1"); ok {
		t.Errorf("the unfinished volume is still there")
	}
}

// TestOpenVolumes: while a process has a volume's device open, as a
// guest's QEMU does, the volume is neither snapshotted nor deleted, and
// nothing changes; once closed, both work.
func TestOpenVolumes(t *testing.T) {
	b := open(t)
	if err := b.Create(t.Context(), "vol-1", 1); err != nil {
		t.Fatal(err)
	}
	path, format, err := b.Locate(t.Context(), "vol-1")
	if err != nil || format != "raw" {
		t.Fatalf("Locate: %s, %s, %v; want a raw device", path, format, err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Snapshot(t.Context(), "vol-1", "snap-1"); trustack.ErrorCode(err) != trustack.ECONFLICT {
		t.Errorf("a snapshot of an open volume: %v, want code %s", err, trustack.ECONFLICT)
	}
	if err := b.Delete(t.Context(), "vol-1"); trustack.ErrorCode(err) != trustack.ECONFLICT {
		t.Errorf("deleting an open volume: %v, want code %s", err, trustack.ECONFLICT)
	}
	if _, ok := lv(t, b, snapshotPrefix+"snap-1"); ok {
		t.Errorf("the refused snapshot is there")
	}
	f.Close()
	if err := b.Snapshot(t.Context(), "vol-1", "snap-1"); err != nil {
		t.Errorf("a snapshot once the volume is closed: %v", err)
	}
	if err := b.Delete(t.Context(), "vol-1"); err != nil {
		t.Errorf("deleting the volume once closed: %v", err)
	}
}

// TestSnapshotsCopyNothing: a snapshot and the volumes made from it are
// thin snapshots, which share the volume's blocks: the pool's data does
// not grow with them.
func TestSnapshotsCopyNothing(t *testing.T) {
	b := open(t)
	if err := b.Create(t.Context(), "vol-1", 1); err != nil {
		t.Fatal(err)
	}
	path, _, err := b.Locate(t.Context(), "vol-1")
	if err != nil {
		t.Fatal(err)
	}
	command(t, "", nil, "qemu-io", "-f", "raw", "-c", "write -P 0x5c 0 64M", path)
	pool, _ := lv(t, b, Pool)
	before := pool.DataPercent
	if err := b.Snapshot(t.Context(), "vol-1", "snap-1"); err != nil {
		t.Fatal(err)
	}
	if err := b.CreateFromSnapshot(t.Context(), "vol-2", "snap-1", 2); err != nil {
		t.Fatal(err)
	}
	pool, _ = lv(t, b, Pool)
	if pool.DataPercent != before || before == 0 {
		t.Errorf("the pool's data: %.2f%% with 64 MiB written, %.2f%% after a snapshot and a volume from it; want the same, more than 0", before, pool.DataPercent)
	}
	path, _, err = b.Locate(t.Context(), "vol-2")
	if err != nil {
		t.Fatal(err)
	}
	command(t, "", nil, "qemu-io", "-f", "raw", "-c", "read -P 0x5c 0 64M", "-c", "read -P 0 64M 1M", path)
}

// TestLocateActivates: a volume that is not active, as after a restart
// that activated no volumes, is activated where it is located.
func TestLocateActivates(t *testing.T) {
	b := open(t)
	if err := b.Create(t.Context(), "vol-1", 1); err != nil {
		t.Fatal(err)
	}
	command(t, "", nil, "lvchange", "-q", "-an", b.group+"/"+volumePrefix+"vol-1")
	path, _, err := b.Locate(t.Context(), "vol-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("the located volume's device: %v", err)
	}
}
