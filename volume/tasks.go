package volume

import (
	"context"
	"slices"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/cluster"
)

// Operations in progress and the controllers that carry them out: a
// volume's or a snapshot's operation (its status one of volumeTasks,
// snapshotTasks) belongs to the controller that started it (TaskOwner,
// set in the transaction that starts it), as cluster says. A snapshot
// restoring is marked with its reverting volume, in the same transaction,
// and so has the same owner.

// volumeTasks are the statuses of a volume whose operation is in
// progress, in the order Recover takes them up.
var volumeTasks = []string{trustack.VolumeCreating, trustack.VolumeExtending, trustack.VolumeUploading, trustack.VolumeDeleting, trustack.VolumeReverting}

// snapshotTasks are the statuses of a snapshot whose operation is in
// progress, in the order Recover takes them up.
var snapshotTasks = []string{trustack.SnapshotCreating, trustack.SnapshotDeleting, trustack.SnapshotRestoring}

// ownedStore is the Store as the service writes through it: a volume or
// snapshot whose operation starts becomes this controller's, one whose
// operation ends no one's.
type ownedStore struct {
	Store
	self string
}

func (o ownedStore) CreateVolume(ctx context.Context, v *trustack.Volume, limits map[string]int) error {
	mark(volumeTasks, "", v.Status, &v.TaskOwner, o.self)
	return o.Store.CreateVolume(ctx, v, limits)
}

func (o ownedStore) CreateSnapshot(ctx context.Context, snap *trustack.VolumeSnapshot, statuses []string, limits map[string]int) error {
	mark(snapshotTasks, "", snap.Status, &snap.TaskOwner, o.self)
	return o.Store.CreateSnapshot(ctx, snap, statuses, limits)
}

func (o ownedStore) UpdateVolume(ctx context.Context, id string, limits map[string]int, fn func(*trustack.Volume) error) (*trustack.Volume, error) {
	return o.Store.UpdateVolume(ctx, id, limits, func(v *trustack.Volume) error {
		before := v.Status
		if err := fn(v); err != nil {
			return err
		}
		mark(volumeTasks, before, v.Status, &v.TaskOwner, o.self)
		return nil
	})
}

func (o ownedStore) UpdateSnapshot(ctx context.Context, id string, fn func(*trustack.VolumeSnapshot) error) (*trustack.VolumeSnapshot, error) {
	return o.Store.UpdateSnapshot(ctx, id, func(snap *trustack.VolumeSnapshot) error {
		before := snap.Status
		if err := fn(snap); err != nil {
			return err
		}
		mark(snapshotTasks, before, snap.Status, &snap.TaskOwner, o.self)
		return nil
	})
}

func (o ownedStore) UpdateVolumeAndSnapshots(ctx context.Context, volumeID string, fn func(*trustack.Volume, []*trustack.VolumeSnapshot) error) error {
	return o.Store.UpdateVolumeAndSnapshots(ctx, volumeID, func(v *trustack.Volume, snaps []*trustack.VolumeSnapshot) error {
		before, snapsBefore := v.Status, make([]string, len(snaps))
		for i, snap := range snaps {
			snapsBefore[i] = snap.Status
		}
		if err := fn(v, snaps); err != nil {
			return err
		}
		mark(volumeTasks, before, v.Status, &v.TaskOwner, o.self)
		for i, snap := range snaps {
			mark(snapshotTasks, snapsBefore[i], snap.Status, &snap.TaskOwner, o.self)
		}
		return nil
	})
}

// mark sets *owner, the owner of an operation whose status was before
// and is now status, tasks being the statuses of operations in progress:
// no one once none is, self when one starts. An operation that replaces
// another (a volume creating deleted by force) is self's too: this
// controller carries it out. A status that stays leaves the owner as it
// is, as a takeover sets it.
func mark(tasks []string, before, status string, owner *string, self string) {
	switch {
	case !slices.Contains(tasks, status):
		*owner = ""
	case status != before:
		*owner = self
	}
}

// recover takes up the operations in progress this controller may carry
// out: at start, those it left itself; at any time, those of controllers
// whose leases expired, taken over first. Each is carried out again from
// the start, as Recover says.
func (s *Service) recover(ctx context.Context, start bool) error {
	// The operations first, then the live controllers: one started by a
	// controller that joined meanwhile is then listed with its owner
	// live.
	var vols []*trustack.Volume
	for _, status := range volumeTasks {
		list, err := s.store.Volumes(ctx, trustack.VolumeFilter{Status: status})
		if err != nil {
			return err
		}
		vols = append(vols, list...)
	}
	var snaps []*trustack.VolumeSnapshot
	for _, status := range snapshotTasks {
		list, err := s.store.Snapshots(ctx, trustack.SnapshotFilter{Status: status})
		if err != nil {
			return err
		}
		snaps = append(snaps, list...)
	}
	live, err := cluster.Live(ctx, s.opts.Controllers)
	if err != nil {
		return err
	}
	for _, v := range vols {
		if !s.ours(ctx, v.TaskOwner, start, live, "volume", v.ID, v.Status, func() error {
			return s.takeOverVolume(ctx, v)
		}) {
			continue
		}
		if v.Status == trustack.VolumeReverting {
			s.revertBackground(v.ID)
		} else {
			s.background(v.ID, v.Status, nil)
		}
	}
	for _, snap := range snaps {
		if !s.ours(ctx, snap.TaskOwner, start, live, "snapshot", snap.ID, snap.Status, func() error {
			return s.takeOverSnapshot(ctx, snap)
		}) {
			continue
		}
		if snap.Status == trustack.SnapshotRestoring {
			// One whose volume still reverts is restored with it.
			s.restored(ctx, snap.VolumeID)
		} else {
			s.snapshotBackground(snap.ID, snap.Status)
		}
	}
	return nil
}

// ours reports whether this controller is to carry out an operation of
// owner's now (cluster.ClaimTask): that of a controller gone once
// takeOver made it this controller's (a failure, or another controller
// first, leaves it).
func (s *Service) ours(ctx context.Context, owner string, start bool, live []string, kind, id, status string, takeOver func() error) bool {
	switch cluster.ClaimTask(s.self, owner, start, live) {
	case cluster.Leave:
		return false
	case cluster.Resume:
		return true
	}
	s.opts.Log.Info("taking over an operation from a controller gone", kind, id, "status", status, "controller", owner)
	if err := takeOver(); err != nil {
		if err != errMoved && trustack.ErrorCode(err) != trustack.ENOTFOUND && ctx.Err() == nil {
			s.opts.Log.Error("take over an operation", kind, id, "error", err)
		}
		return false
	}
	return true
}

// takeOverVolume makes a volume's operation of a controller gone this
// controller's; errMoved if it ended or another controller took it over
// first.
func (s *Service) takeOverVolume(ctx context.Context, v *trustack.Volume) error {
	_, err := s.store.UpdateVolume(ctx, v.ID, nil, func(cur *trustack.Volume) error {
		if cur.Status != v.Status || cur.TaskOwner != v.TaskOwner {
			return errMoved
		}
		cur.TaskOwner = s.self
		return nil
	})
	return err
}

// takeOverSnapshot is takeOverVolume for a snapshot.
func (s *Service) takeOverSnapshot(ctx context.Context, snap *trustack.VolumeSnapshot) error {
	_, err := s.store.UpdateSnapshot(ctx, snap.ID, func(cur *trustack.VolumeSnapshot) error {
		if cur.Status != snap.Status || cur.TaskOwner != snap.TaskOwner {
			return errMoved
		}
		cur.TaskOwner = s.self
		return nil
	})
	return err
}

// takeOverLoop takes over, every TakeoverInterval until ctx ends, the
// operations of controllers whose leases expired.
func (s *Service) takeOverLoop(ctx context.Context) {
	cluster.Every(ctx, s.opts.TakeoverInterval, func(ctx context.Context) {
		if err := s.recover(ctx, false); err != nil && ctx.Err() == nil {
			s.opts.Log.Error("take over the operations of controllers gone", "error", err)
		}
	})
}
