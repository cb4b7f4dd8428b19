package sqlstore

import (
	"context"
	"time"

	"github.com/trustack/trustack"
)

// UpdateVolumeAndSnapshots reads a volume and its snapshots, oldest
// first, lets fn change them and writes them back, in one transaction
// that holds the volume's row and theirs: a volume reverted to a snapshot
// and the snapshot change status together. ENOTFOUND (VolumeNotFound);
// EINVALID if fn changed the volume's project, or a snapshot's ID,
// project, volume or size; fn's error aborts the update as it is.
func (db *DB) UpdateVolumeAndSnapshots(ctx context.Context, volumeID string, fn func(*trustack.Volume, []*trustack.VolumeSnapshot) error) error {
	return db.inTx(ctx, func(q querier) error {
		v, err := volumes.getSQL(ctx, q, volumeID, db.lockRow())
		if err != nil {
			return err
		}
		var w where
		w.eq("volume_id", volumeID)
		list, err := snapshots.listSQL(ctx, q, w, db.lockRow())
		if err != nil {
			return err
		}
		sortByAge(list, func(s *trustack.VolumeSnapshot) (time.Time, string) { return s.CreatedAt, s.ID })
		type fixed struct {
			id, project, volume string
			size                int
		}
		before := make([]fixed, len(list))
		for i, s := range list {
			before[i] = fixed{s.ID, s.ProjectID, s.VolumeID, s.Size}
		}
		project := v.ProjectID
		if err := fn(v, list); err != nil {
			return err
		}
		if v.ProjectID != project {
			return trustack.Errorf(trustack.EINVALID, "The project of volume %s cannot be changed.", volumeID)
		}
		if err := volumes.put(ctx, q, volumeID, v); err != nil {
			return err
		}
		for i, s := range list {
			if b := before[i]; s.ProjectID != b.project || s.VolumeID != b.volume || s.Size != b.size {
				return trustack.Errorf(trustack.EINVALID, "The project, volume and size of snapshot %s cannot be changed.", b.id)
			}
			if err := snapshots.put(ctx, q, before[i].id, s); err != nil {
				return err
			}
		}
		return nil
	})
}
