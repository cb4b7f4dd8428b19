package volume

import (
	"context"
	"fmt"

	"github.com/trustack/trustack"
)

// Reverting a volume to its latest snapshot, as Cinder's revert action
// (API microversion 3.40): the volume's data put back as the snapshot
// kept it, by the volume's storage host, in the background.

// Revert accepts the revert of an available volume to its latest
// snapshot, which must be available and of the volume's size: the volume
// (reverting) and the snapshot (restoring) change status together, then
// the volume's storage host puts the snapshot's data back, after which
// both are available again; if the host fails, the volume is in error,
// with the reason, and the snapshot available, as Cinder leaves them.
// EINVALID for a volume with no snapshots, a snapshot that is not the
// volume's latest (another volume's among them), or a volume whose size
// changed since; ECONFLICT (InvalidVolume, InvalidSnapshot) for a volume
// or snapshot that is not available, as Cinder answers 409 for those.
func (s *Service) Revert(ctx context.Context, c Caller, volumeID, snapshotID string) error {
	if _, err := s.Get(ctx, c, volumeID); err != nil {
		return err
	}
	err := s.store.UpdateVolumeAndSnapshots(ctx, volumeID, func(v *trustack.Volume, snaps []*trustack.VolumeSnapshot) error {
		// The checks are made under the rows' locks: no snapshot is
		// taken between them and the change.
		if len(snaps) == 0 {
			return trustack.Errorf(trustack.EINVALID, "Volume %s doesn't have any snapshots.", volumeID)
		}
		latest := snaps[len(snaps)-1]
		if snapshotID != latest.ID {
			return trustack.Errorf(trustack.EINVALID, "Specified snapshot %s is None or not the latest one of volume %s.", snapshotID, volumeID)
		}
		if v.Size != latest.Size {
			return trustack.Errorf(trustack.EINVALID, "Can't revert volume %s to its latest snapshot %s. The volume size must be equal to the snapshot size.", volumeID, snapshotID)
		}
		if v.Status != trustack.VolumeAvailable {
			return trustack.Reasonf(trustack.ECONFLICT, "InvalidVolume", "Invalid volume: Can't revert volume %s to its latest snapshot %s. Volume's status must be 'available'.", volumeID, snapshotID)
		}
		if latest.Status != trustack.SnapshotAvailable {
			return trustack.Reasonf(trustack.ECONFLICT, "InvalidSnapshot", "Invalid snapshot: Can't revert volume %s to its latest snapshot %s. Snapshot's status must be 'available'.", volumeID, snapshotID)
		}
		now := s.opts.Now().UTC()
		v.Status, v.UpdatedAt = trustack.VolumeReverting, now
		latest.Status, latest.UpdatedAt = trustack.SnapshotRestoring, now
		return nil
	})
	if err != nil {
		return err
	}
	s.revertBackground(volumeID)
	return nil
}

// revertBackground has the volume's storage host revert it, records the
// outcome (carryOut), then makes the snapshot it was reverted to
// available again.
func (s *Service) revertBackground(volumeID string) {
	s.work.Add(1)
	go func() {
		defer s.work.Done()
		ctx := context.Background()
		s.carryOut(ctx, volumeID, trustack.VolumeReverting, nil)
		s.restored(ctx, volumeID)
	}()
}

// revert asks a reverting volume's storage host to put back the data of
// the snapshot being restored to it.
func (s *Service) revert(ctx context.Context, v *trustack.Volume) error {
	snaps, err := s.store.Snapshots(ctx, trustack.SnapshotFilter{VolumeID: v.ID, Status: trustack.SnapshotRestoring})
	if err != nil {
		return err
	}
	if len(snaps) != 1 {
		return fmt.Errorf("volume %s is reverting to %d snapshots, want 1", v.ID, len(snaps))
	}
	host, backend := hostAndBackend(v)
	return s.storage.RevertVolume(ctx, host, backend, v.ID, snaps[0].ID)
}

// restored makes the snapshots of a volume that is no longer reverting,
// left restoring, available again. (No revert starts meanwhile: it
// would need its snapshot available.)
func (s *Service) restored(ctx context.Context, volumeID string) {
	if v, err := s.store.Volume(ctx, volumeID); err == nil && v.Status == trustack.VolumeReverting {
		return // still reverting
	}
	snaps, err := s.store.Snapshots(ctx, trustack.SnapshotFilter{VolumeID: volumeID, Status: trustack.SnapshotRestoring})
	if err != nil {
		s.opts.Log.Error("find the snapshots a volume was reverted to", "volume", volumeID, "error", err)
		return
	}
	for _, snap := range snaps {
		_, err := s.store.UpdateSnapshot(ctx, snap.ID, func(cur *trustack.VolumeSnapshot) error {
			if cur.Status != trustack.SnapshotRestoring {
				return errMoved
			}
			cur.Status, cur.UpdatedAt = trustack.SnapshotAvailable, s.opts.Now().UTC()
			return nil
		})
		if err != nil && err != errMoved {
			s.opts.Log.Error("record a snapshot's status", "snapshot", snap.ID, "error", err)
		}
	}
}
