package volume_test

import (
	"context"
	"errors"
	"os/exec"
	"sync"
	"testing"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/volume"
)

// revertGate, if not nil, holds the storage hosts' reverts until it is
// closed, so that a test sees the statuses while one goes on.
var (
	revertGateMu sync.Mutex
	revertGate   chan struct{}
)

func (h *hosts) RevertVolume(ctx context.Context, host, backend, id, snapshotID string) error {
	revertGateMu.Lock()
	gate := revertGate
	revertGateMu.Unlock()
	if gate != nil {
		<-gate
	}
	b, err := h.backend(host, backend)
	if err != nil {
		return err
	}
	return b.Revert(ctx, id, snapshotID)
}

// qemuIO runs a qemu-io command on a volume of storage-1's and reports
// whether it succeeded (a read with -P fails on other data).
func qemuIO(t *testing.T, h *hosts, id, command string) bool {
	t.Helper()
	path, format, err := h.backends["storage-1"].Locate(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return exec.Command("qemu-io", "-f", format, "-c", command, path).Run() == nil
}

// statuses returns a volume's status and a snapshot's.
func statuses(t *testing.T, s *volume.Service, volumeID, snapshotID string) (string, string) {
	t.Helper()
	v, err := s.Get(ctx, alice, volumeID)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := s.GetSnapshot(ctx, alice, snapshotID)
	if err != nil {
		t.Fatal(err)
	}
	return v.Status, snap.Status
}

// newVolume makes an available volume of size GiB.
func newVolume(t *testing.T, s *volume.Service, size int) *trustack.Volume {
	t.Helper()
	v, err := s.Create(ctx, alice, volume.CreateRequest{Size: size})
	if err != nil {
		t.Fatal(err)
	}
	if v = settled(t, s, v.ID); v.Status != trustack.VolumeAvailable {
		t.Fatalf("new volume: %s, want available", v.Status)
	}
	return v
}

// newSnapshot takes an available snapshot of a volume.
func newSnapshot(t *testing.T, s *volume.Service, volumeID string) *trustack.VolumeSnapshot {
	t.Helper()
	snap, err := s.CreateSnapshot(ctx, alice, volume.SnapshotRequest{VolumeID: volumeID})
	if err != nil {
		t.Fatal(err)
	}
	s.Wait()
	if snap, err = s.GetSnapshot(ctx, alice, snap.ID); err != nil || snap.Status != trustack.SnapshotAvailable {
		t.Fatalf("new snapshot: %+v (%v), want available", snap, err)
	}
	return snap
}

// TestRevert: a volume reverts to its latest snapshot: both are
// reverting and restoring, stored before the revert is accepted, then
// available, with the snapshot's data; what Cinder refuses is refused
// and changes nothing.
func TestRevert(t *testing.T) {
	s, h := newService(t, map[string]int{"storage-1": 50})
	admin := volume.Caller{ProjectID: "admin", Admin: true}
	v := newVolume(t, s, 1)
	if !qemuIO(t, h, v.ID, "write -P 0x11 0 1M") {
		t.Fatal("cannot write the volume")
	}
	s1 := newSnapshot(t, s, v.ID)
	if !qemuIO(t, h, v.ID, "write -P 0x22 0 1M") {
		t.Fatal("cannot write the volume")
	}
	s2 := newSnapshot(t, s, v.ID)
	if !qemuIO(t, h, v.ID, "write -P 0x33 0 1M") {
		t.Fatal("cannot write the volume")
	}
	other := newVolume(t, s, 1)
	otherSnap := newSnapshot(t, s, other.ID)
	bare := newVolume(t, s, 1)

	refused := []struct {
		name             string
		caller           volume.Caller
		volume, snapshot string
		before           func() // sets the refusal up
		code, reason     string
	}{
		{name: "not the latest snapshot", caller: alice, volume: v.ID, snapshot: s1.ID, code: trustack.EINVALID},
		{name: "no snapshot named", caller: alice, volume: v.ID, code: trustack.EINVALID},
		{name: "another volume's snapshot", caller: alice, volume: v.ID, snapshot: otherSnap.ID, code: trustack.EINVALID},
		{name: "a volume without snapshots", caller: alice, volume: bare.ID, snapshot: s2.ID, code: trustack.EINVALID},
		{name: "another project's volume", caller: volume.Caller{ProjectID: "p2"}, volume: v.ID, snapshot: s2.ID, code: trustack.ENOTFOUND, reason: "VolumeNotFound"},
		{name: "a volume in use", caller: alice, volume: v.ID, snapshot: s2.ID, code: trustack.ECONFLICT, reason: "InvalidVolume",
			before: func() {
				if err := s.ResetStatus(ctx, admin, v.ID, trustack.VolumeInUse); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "a snapshot in error", caller: alice, volume: v.ID, snapshot: s2.ID, code: trustack.ECONFLICT, reason: "InvalidSnapshot",
			before: func() {
				if err := s.ResetSnapshotStatus(ctx, admin, s2.ID, trustack.SnapshotError); err != nil {
					t.Fatal(err)
				}
			}},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			vs, ss := statuses(t, s, v.ID, s2.ID)
			if tt.before != nil {
				tt.before()
				vs, ss = statuses(t, s, v.ID, s2.ID)
			}
			err := s.Revert(ctx, tt.caller, tt.volume, tt.snapshot)
			if trustack.ErrorCode(err) != tt.code || trustack.ErrorReason(err) != tt.reason {
				t.Errorf("got %v (code %s, reason %q), want code %s, reason %q", err, trustack.ErrorCode(err), trustack.ErrorReason(err), tt.code, tt.reason)
			}
			s.Wait()
			if gotV, gotS := statuses(t, s, v.ID, s2.ID); gotV != vs || gotS != ss {
				t.Errorf("after the refusal: volume %s, snapshot %s; want %s, %s as before", gotV, gotS, vs, ss)
			}
			if !qemuIO(t, h, v.ID, "read -P 0x33 0 1M") {
				t.Errorf("a refused revert changed the volume's data")
			}
			if err := s.ResetStatus(ctx, admin, v.ID, trustack.VolumeAvailable); err != nil {
				t.Fatal(err)
			}
			if err := s.ResetSnapshotStatus(ctx, admin, s2.ID, trustack.SnapshotAvailable); err != nil {
				t.Fatal(err)
			}
		})
	}

	// The volume reverts, its statuses stored before the answer.
	revertGateMu.Lock()
	revertGate = make(chan struct{})
	revertGateMu.Unlock()
	if err := s.Revert(ctx, alice, v.ID, s2.ID); err != nil {
		t.Fatal(err)
	}
	vs, ss := statuses(t, s, v.ID, s2.ID)
	revertGateMu.Lock()
	close(revertGate)
	revertGate = nil
	revertGateMu.Unlock()
	if vs != "reverting" || ss != "restoring" {
		t.Errorf("while reverting: volume %s, snapshot %s; want reverting, restoring", vs, ss)
	}
	s.Wait()
	if vs, ss := statuses(t, s, v.ID, s2.ID); vs != trustack.VolumeAvailable || ss != trustack.SnapshotAvailable {
		t.Errorf("reverted: volume %s, snapshot %s; want both available", vs, ss)
	}
	if !qemuIO(t, h, v.ID, "read -P 0x22 0 1M") {
		t.Errorf("the reverted volume does not have the snapshot's data")
	}

	// A volume grown since its latest snapshot is refused. (Its size is
	// set in the store, as the extension that grew it would have.)
	if _, err := h.db.UpdateVolume(ctx, other.ID, nil, func(v *trustack.Volume) error { v.Size = 2; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.Revert(ctx, alice, other.ID, otherSnap.ID); trustack.ErrorCode(err) != trustack.EINVALID {
		t.Errorf("reverting a volume grown since its snapshot: %v, want code %s", err, trustack.EINVALID)
	}
	if vs, ss := statuses(t, s, other.ID, otherSnap.ID); vs != trustack.VolumeAvailable || ss != trustack.SnapshotAvailable {
		t.Errorf("after the refusal: volume %s, snapshot %s; want both available", vs, ss)
	}
}

// TestRevertFailures: a revert its storage host fails leaves the volume
// in error, with the reason, and the snapshot available, as Cinder's.
func TestRevertFailures(t *testing.T) {
	s, h := newService(t, map[string]int{"storage-1": 50})
	v := newVolume(t, s, 1)
	snap := newSnapshot(t, s, v.ID)
	if !qemuIO(t, h, v.ID, "write -P 0x44 0 1M") {
		t.Fatal("cannot write the volume")
	}
	h.fail = errors.New("disk on fire")
	if err := s.Revert(ctx, alice, v.ID, snap.ID); err != nil {
		t.Fatal(err)
	}
	if v = settled(t, s, v.ID); v.Status != trustack.VolumeError || v.Reason != "disk on fire" {
		t.Errorf("a revert the host failed: volume %s (%q), want error (disk on fire)", v.Status, v.Reason)
	}
	if _, ss := statuses(t, s, v.ID, snap.ID); ss != trustack.SnapshotAvailable {
		t.Errorf("a revert the host failed: snapshot %s, want available", ss)
	}
	if !qemuIO(t, h, v.ID, "read -P 0x44 0 1M") {
		t.Errorf("a failed revert changed the volume's data")
	}
	if err := s.Revert(ctx, alice, v.ID, snap.ID); trustack.ErrorReason(err) != "InvalidVolume" {
		t.Errorf("reverting a volume in error: %v, want InvalidVolume", err)
	}
}

// TestRecoverTakesUpReverts: a volume a controller left reverting when it
// stopped is reverted when it starts again, and a snapshot left restoring
// after its volume was reverted is available again.
func TestRecoverTakesUpReverts(t *testing.T) {
	s, h := newService(t, map[string]int{"storage-1": 50})
	v := newVolume(t, s, 1)
	if !qemuIO(t, h, v.ID, "write -P 0x55 0 1M") {
		t.Fatal("cannot write the volume")
	}
	snap := newSnapshot(t, s, v.ID)
	if !qemuIO(t, h, v.ID, "write -P 0x66 0 1M") {
		t.Fatal("cannot write the volume")
	}
	err := h.db.UpdateVolumeAndSnapshots(ctx, v.ID, func(v *trustack.Volume, snaps []*trustack.VolumeSnapshot) error {
		v.Status, snaps[0].Status = "reverting", "restoring"
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	s.Wait()
	if vs, ss := statuses(t, s, v.ID, snap.ID); vs != trustack.VolumeAvailable || ss != trustack.SnapshotAvailable {
		t.Errorf("recovered: volume %s, snapshot %s; want both available", vs, ss)
	}
	if !qemuIO(t, h, v.ID, "read -P 0x55 0 1M") {
		t.Errorf("the volume left reverting was not reverted")
	}

	if _, err := h.db.UpdateSnapshot(ctx, snap.ID, func(s *trustack.VolumeSnapshot) error {
		s.Status = "restoring"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	s.Wait()
	if vs, ss := statuses(t, s, v.ID, snap.ID); vs != trustack.VolumeAvailable || ss != trustack.SnapshotAvailable {
		t.Errorf("recovered: volume %s, snapshot %s; want both available", vs, ss)
	}
}
