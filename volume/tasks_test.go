package volume_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/cluster/clustertest"
	"github.com/trustack/trustack/volume"
	"github.com/trustack/trustack/wire"
)

// stalled is the storage hosts as a controller that stops sees them: they
// take its requests and answer none, as if it had died waiting. started
// receives each request as it comes; release lets them end, unanswered.
type stalled struct {
	started chan string
	release chan struct{}
}

func (s stalled) wait(ctx context.Context, what string) error {
	select {
	case s.started <- what:
	case <-s.release:
	}
	select {
	case <-s.release:
	case <-ctx.Done():
	}
	return trustack.Errorf(trustack.EUNAVAILABLE, "the controller stopped before %s was answered", what)
}

func (s stalled) CreateVolume(ctx context.Context, _, _, id string, _ int) error {
	return s.wait(ctx, "create "+id)
}

func (s stalled) CreateVolumeFromImage(ctx context.Context, _, _, id string, _ int, _ wire.ImageRef, _ string) error {
	return s.wait(ctx, "create "+id)
}

func (s stalled) CreateVolumeFromSnapshot(ctx context.Context, _, _, id, _ string, _ int) error {
	return s.wait(ctx, "create "+id)
}

func (s stalled) SnapshotVolume(ctx context.Context, _, _, _, snapshotID string) error {
	return s.wait(ctx, "snapshot "+snapshotID)
}

func (s stalled) DeleteSnapshot(ctx context.Context, _, _, snapshotID string) error {
	return s.wait(ctx, "delete snapshot "+snapshotID)
}

func (s stalled) ExtendVolume(ctx context.Context, _, _, id string, _ int, _ bool) error {
	return s.wait(ctx, "extend "+id)
}

func (s stalled) DeleteVolume(ctx context.Context, _, _, id string) error {
	return s.wait(ctx, "delete "+id)
}

func (s stalled) UploadVolume(ctx context.Context, _, _, id string, _ wire.Upload, _ string) error {
	return s.wait(ctx, "upload "+id)
}

func (s stalled) RevertVolume(ctx context.Context, _, _, id, _ string) error {
	return s.wait(ctx, "revert "+id)
}

// startController starts a block storage service of controller c over
// h's store with storage as its storage hosts. stop ends its look for
// operations to take over, as the controller's death would (what it asked
// of storage stays asked); the service's work is waited for when the test
// ends.
func startController(t *testing.T, h *hosts, storage volume.Storage, c *clustertest.Controllers, images volume.Images) (s *volume.Service, stop func()) {
	t.Helper()
	s = volume.New(h.db, h, storage, volume.Options{Images: images, Controllers: c, TakeoverInterval: 10 * time.Millisecond, AgentTimeout: time.Hour})
	run, stop := context.WithCancel(ctx)
	if err := s.Recover(run); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop(); s.Wait() })
	return s, stop
}

// operation is a volume's or a snapshot's operation in progress.
type operation struct {
	kind, id, status string
}

// state returns the status and the owner of op's volume or snapshot;
// ok is false once it is gone.
func (op operation) state(t *testing.T, h *hosts) (status, owner string, ok bool) {
	t.Helper()
	status, owner, _, ok = op.read(t, h)
	return status, owner, ok
}

// read is state with the reason of an error.
func (op operation) read(t *testing.T, h *hosts) (status, owner, reason string, ok bool) {
	t.Helper()
	var err error
	if op.kind == "volume" {
		var v *trustack.Volume
		if v, err = h.db.Volume(ctx, op.id); err == nil {
			status, owner, reason = v.Status, v.TaskOwner, v.Reason
		}
	} else {
		var snap *trustack.VolumeSnapshot
		if snap, err = h.db.Snapshot(ctx, op.id); err == nil {
			status, owner, reason = snap.Status, snap.TaskOwner, snap.Reason
		}
	}
	switch {
	case trustack.ErrorCode(err) == trustack.ENOTFOUND:
		return "", "", "", false
	case err != nil:
		t.Fatal(err)
	}
	return status, owner, reason, true
}

// waitFor waits up to 30 s for cond.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 30 s for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestOperationsAreTakenOverOnlyFromControllersGone stops a controller
// with one operation of each kind in flight (a volume created, extended,
// deleted, uploaded and reverted, a snapshot taken and one deleted) while
// its lease still runs: another controller leaves them alone, though it
// looks for operations to take over again and again, and takes them over
// and finishes them once the first controller's lease is gone.
func TestOperationsAreTakenOverOnlyFromControllersGone(t *testing.T) {
	images := &imageMaker{images: map[string]*trustack.Image{}}
	base, h := newServiceWith(t, map[string]int{"storage-1": 50}, volume.Options{Images: images})
	grown, gone, uploaded, reverted, snapped := newVolume(t, base, 1), newVolume(t, base, 1), newVolume(t, base, 1), newVolume(t, base, 1), newVolume(t, base, 1)
	revertedTo, old := newSnapshot(t, base, reverted.ID), newSnapshot(t, base, snapped.ID)

	a := clustertest.New("ctl-a", "ctl-a", "ctl-b")
	b := clustertest.New("ctl-b", "ctl-a", "ctl-b")
	stuck := stalled{started: make(chan string, 16), release: make(chan struct{})}
	sa, stopA := startController(t, h, stuck, a, images)
	t.Cleanup(func() { close(stuck.release) }) // after B stopped, before A waits
	created, err := sa.Create(ctx, alice, volume.CreateRequest{Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := sa.Extend(ctx, alice, grown.ID, 2, false); err != nil {
		t.Fatal(err)
	}
	if err := sa.Delete(ctx, alice, gone.ID, false); err != nil {
		t.Fatal(err)
	}
	img, err := sa.UploadImage(ctx, alice, uploaded.ID, volume.UploadRequest{ImageName: "backup"})
	if err != nil {
		t.Fatal(err)
	}
	if err := sa.Revert(ctx, alice, reverted.ID, revertedTo.ID); err != nil {
		t.Fatal(err)
	}
	taken, err := sa.CreateSnapshot(ctx, alice, volume.SnapshotRequest{VolumeID: snapped.ID})
	if err != nil {
		t.Fatal(err)
	}
	if err := sa.DeleteSnapshot(ctx, alice, old.ID, false); err != nil {
		t.Fatal(err)
	}
	ops := []operation{
		{"volume", created.ID, trustack.VolumeCreating},
		{"volume", grown.ID, trustack.VolumeExtending},
		{"volume", gone.ID, trustack.VolumeDeleting},
		{"volume", uploaded.ID, trustack.VolumeUploading},
		{"volume", reverted.ID, trustack.VolumeReverting},
		{"snapshot", revertedTo.ID, trustack.SnapshotRestoring},
		{"snapshot", taken.ID, trustack.SnapshotCreating},
		{"snapshot", old.ID, trustack.SnapshotDeleting},
	}
	for range len(ops) - 1 { // the snapshot restoring is its volume's revert
		select {
		case <-stuck.started:
		case <-time.After(30 * time.Second):
			t.Fatal("the storage hosts were not asked for every operation within 30 s")
		}
	}
	// A stops: what it asked goes unanswered, its lease runs on.
	stopA()
	for _, op := range ops {
		if status, owner, _ := op.state(t, h); status != op.status || owner != a.ID() {
			t.Fatalf("%s %s when its controller stopped: %q of %q, want %q of %s", op.kind, op.id, status, owner, op.status, a.ID())
		}
	}

	startController(t, h, h, b, images)
	waitFor(t, "the second controller to look for operations a few times", func() bool { return b.Looks() >= 5 })
	for _, op := range ops {
		if status, owner, _ := op.state(t, h); status != op.status || owner != a.ID() {
			t.Errorf("%s %s while %s's lease runs: %q of %q, want %q of %s, untouched", op.kind, op.id, a.ID(), status, owner, op.status, a.ID())
		}
	}
	if got := sizeOn(t, h, "storage-1", created.ID); got != 0 {
		t.Errorf("the storage host made the volume of %s's creation while its lease runs: %d GiB", a.ID(), got)
	}

	b.SetLive("ctl-b")
	want := map[string]string{ // by ID, "" for gone
		created.ID: trustack.VolumeAvailable, grown.ID: trustack.VolumeAvailable, gone.ID: "", uploaded.ID: trustack.VolumeAvailable,
		reverted.ID: trustack.VolumeAvailable, revertedTo.ID: trustack.SnapshotAvailable, taken.ID: trustack.SnapshotAvailable, old.ID: "",
	}
	waitFor(t, "every operation to end", func() bool {
		for _, op := range ops {
			if status, _, _ := op.state(t, h); status == op.status {
				return false
			}
		}
		return true
	})
	for _, op := range ops {
		status, owner, reason, _ := op.read(t, h)
		if status != want[op.id] || owner != "" {
			t.Errorf("%s %s taken over: %q of %q (%s), want %q of none", op.kind, op.id, status, owner, reason, want[op.id])
		}
	}
	for id, size := range map[string]int{created.ID: 1, grown.ID: 2, gone.ID: 0} {
		if got := sizeOn(t, h, "storage-1", id); got != size {
			t.Errorf("the storage host has %d GiB of volume %s, want %d", got, id, size)
		}
	}
	h.mu.Lock()
	uploads := strings.Join(h.uploads, "\n")
	h.mu.Unlock()
	if !strings.Contains(uploads, img.ID+" raw "+uploaded.ID) {
		t.Errorf("uploads asked of the storage host: %q, want image %s of volume %s", uploads, img.ID, uploaded.ID)
	}
}

// TestOwnOperationsAreTakenUpAfterARestart: a controller that starts
// again under its name takes up at once the operations it left, though
// its lease never expired, and leaves those of another live controller.
func TestOwnOperationsAreTakenUpAfterARestart(t *testing.T) {
	_, h := newService(t, map[string]int{"storage-1": 50})
	a := clustertest.New("ctl-a", "ctl-a", "ctl-b")
	stuck := stalled{started: make(chan string, 16), release: make(chan struct{})}
	sa, stopA := startController(t, h, stuck, a, nil)
	t.Cleanup(func() { close(stuck.release) }) // before A waits
	mine, err := sa.Create(ctx, alice, volume.CreateRequest{Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	<-stuck.started
	stopA()
	def, err := h.db.VolumeTypeByName(ctx, trustack.DefaultVolumeType)
	if err != nil {
		t.Fatal(err)
	}
	theirs := &trustack.Volume{ID: "theirs", ProjectID: alice.ProjectID, Size: 1, Status: trustack.VolumeCreating, TypeID: def.ID,
		AvailabilityZone: "nova", Host: mine.Host, TaskOwner: "ctl-b"}
	if err := h.db.CreateVolume(ctx, theirs, nil); err != nil {
		t.Fatal(err)
	}

	again := clustertest.New("ctl-a", "ctl-a", "ctl-b")
	startController(t, h, h, again, nil)
	waitFor(t, "the restarted controller to look for operations a few times", func() bool { return again.Looks() >= 5 })
	mineOp, theirsOp := operation{"volume", mine.ID, trustack.VolumeCreating}, operation{"volume", theirs.ID, trustack.VolumeCreating}
	waitFor(t, "its own creation to end", func() bool { status, _, _ := mineOp.state(t, h); return status != trustack.VolumeCreating })
	if status, owner, _ := mineOp.state(t, h); status != trustack.VolumeAvailable || owner != "" || sizeOn(t, h, "storage-1", mine.ID) != 1 {
		t.Errorf("the volume a controller left creating, after its restart: %q of %q, %d GiB on its host; want available, 1 GiB", status, owner, sizeOn(t, h, "storage-1", mine.ID))
	}
	if status, owner, _ := theirsOp.state(t, h); status != trustack.VolumeCreating || owner != "ctl-b" || sizeOn(t, h, "storage-1", theirs.ID) != 0 {
		t.Errorf("the volume a live controller is creating: %q of %q, %d GiB on its host; want creating of ctl-b, untouched", status, owner, sizeOn(t, h, "storage-1", theirs.ID))
	}
}
