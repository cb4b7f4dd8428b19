package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/trustack/trustack"
)

// Block storage: volume types, volumes and their quotas, as volume.Store
// asks. A project's quota lock is held while its volumes are counted and
// summed, before any volume's row: the order of locks is the project's,
// then the volume's.

var (
	volumeTypes = &table[trustack.VolumeType]{
		name: "volume_types", kind: "volume type", order: "name, id",
		columns: []string{"id", "name", "description", "is_public", "extra_specs", "created_at", "updated_at"},
		fields: func(t *trustack.VolumeType) []any {
			return []any{&t.ID, &t.Name, &t.Description, &t.Public, jsonColumn[map[string]string]{&t.ExtraSpecs},
				timeColumn{&t.CreatedAt}, timeColumn{&t.UpdatedAt}}
		},
		missing: func(id string) error {
			return trustack.Reasonf(trustack.ENOTFOUND, "VolumeTypeNotFound", "Volume type %s could not be found.", id)
		},
	}
	snapshots = &table[trustack.VolumeSnapshot]{
		name: "volume_snapshots", kind: "snapshot", order: "created_at, id",
		columns: []string{"id", "project_id", "user_id", "volume_id", "name", "description", "size_gb", "status", "metadata", "progress",
			"reason", "created_at", "updated_at", "task_owner"},
		fields: func(s *trustack.VolumeSnapshot) []any {
			return []any{&s.ID, &s.ProjectID, &s.UserID, &s.VolumeID, &s.Name, &s.Description, &s.Size, &s.Status,
				jsonColumn[map[string]string]{&s.Metadata}, &s.Progress, &s.Reason, timeColumn{&s.CreatedAt}, timeColumn{&s.UpdatedAt},
				&s.TaskOwner}
		},
		missing: func(id string) error {
			return trustack.Reasonf(trustack.ENOTFOUND, "SnapshotNotFound", "Snapshot %s could not be found.", id)
		},
	}
	volumes = &table[trustack.Volume]{
		name: "volumes", kind: "volume", order: "created_at, id",
		columns: []string{"id", "project_id", "user_id", "name", "description", "size_gb", "status", "type_id", "availability_zone",
			"bootable", "image_id", "snapshot_id", "source_volume_id", "metadata", "image_metadata", "host", "reason", "created_at", "updated_at",
			"attachment_id", "server_id", "attached_host", "device", "attached_at", "admin_metadata", "image_bytes_copied",
			"attach_status", "attachment_connection", "attachment_created_at", "task_owner"},
		fields: func(v *trustack.Volume) []any {
			a := &v.Attachment
			return []any{&v.ID, &v.ProjectID, &v.UserID, &v.Name, &v.Description, &v.Size, &v.Status, &v.TypeID, &v.AvailabilityZone,
				&v.Bootable, &v.ImageID, &v.SnapshotID, &v.SourceVolumeID, jsonColumn[map[string]string]{&v.Metadata},
				jsonColumn[map[string]string]{&v.ImageMetadata}, &v.Host, &v.Reason, timeColumn{&v.CreatedAt}, timeColumn{&v.UpdatedAt},
				&a.ID, &a.ServerID, &a.Host, &a.Device, timeColumn{&a.AttachedAt}, jsonColumn[map[string]string]{&v.AdminMetadata},
				&v.ImageBytesCopied, &a.Status, jsonColumn[*trustack.VolumeConnection]{&a.Connection}, timeColumn{&a.CreatedAt},
				&v.TaskOwner}
		},
		missing: func(id string) error {
			return trustack.Reasonf(trustack.ENOTFOUND, "VolumeNotFound", "Volume %s could not be found.", id)
		},
	}
)

// Volumes.

// CreateVolume adds a volume of an existing type (ENOTFOUND
// VolumeTypeNotFound otherwise) if its project stays within limits:
// EOVERQUOTA (VolumeLimitExceeded, VolumeSizeExceedsAvailableQuota)
// beyond; ECONFLICT for an ID in use.
func (db *DB) CreateVolume(ctx context.Context, v *trustack.Volume, limits map[string]int) error {
	return db.inProjectTx(ctx, v.ProjectID, func(q querier) error {
		if _, err := volumeTypes.get(ctx, q, v.TypeID); err != nil {
			return err
		}
		if err := checkVolumeQuota(ctx, db, q, v.ProjectID, limits, map[string]int{trustack.QuotaVolumes: 1, trustack.QuotaGigabytes: v.Size}); err != nil {
			return err
		}
		return volumes.insert(ctx, q, v)
	})
}

// checkVolumeQuota holds the project's quota lock if it has a limit of
// what more asks for (by resource), and gives EOVERQUOTA if its volumes
// and snapshots, with more, would be over it.
func checkVolumeQuota(ctx context.Context, db *DB, q querier, project string, limits, more map[string]int) error {
	limited := false
	for resource := range more {
		limited = limited || limit(limits, resource) >= 0
	}
	if !limited {
		return nil
	}
	if err := lockProject(ctx, db, q, project); err != nil {
		return err
	}
	return checkLockedVolumeQuota(ctx, q, project, limits, more)
}

// checkLockedVolumeQuota is checkVolumeQuota in a transaction that holds
// the project's quota lock already.
func checkLockedVolumeQuota(ctx context.Context, q querier, project string, limits, more map[string]int) error {
	used, err := volumeUsage(ctx, q, project)
	if err != nil {
		return err
	}
	for _, resource := range []string{trustack.QuotaVolumes, trustack.QuotaSnapshots, trustack.QuotaGigabytes} {
		n, max := more[resource], limit(limits, resource)
		if n <= 0 || max < 0 || used[resource]+n <= max {
			continue
		}
		switch resource {
		case trustack.QuotaVolumes:
			return trustack.Reasonf(trustack.EOVERQUOTA, "VolumeLimitExceeded", "Maximum number of volumes allowed (%d) exceeded for quota '%s'.", max, resource)
		case trustack.QuotaSnapshots:
			return trustack.Reasonf(trustack.EOVERQUOTA, "SnapshotLimitExceeded", "Maximum number of snapshots allowed (%d) exceeded.", max)
		default:
			return trustack.Reasonf(trustack.EOVERQUOTA, "VolumeSizeExceedsAvailableQuota",
				"Requested volume or snapshot exceeds allowed %s quota. Requested %dG, quota is %dG and %dG has been consumed.", resource, n, max, used[resource])
		}
	}
	return nil
}

// limit is a resource's limit, -1 (none) if limits has none.
func limit(limits map[string]int, resource string) int {
	if n, ok := limits[resource]; ok {
		return n
	}
	return -1
}

// Volume returns a volume; ENOTFOUND (VolumeNotFound).
func (db *DB) Volume(ctx context.Context, id string) (*trustack.Volume, error) {
	return volumes.get(ctx, db.read, id)
}

// Volumes returns the volumes matching f, oldest first.
func (db *DB) Volumes(ctx context.Context, f trustack.VolumeFilter) ([]*trustack.Volume, error) {
	var w where
	w.in("id", f.IDs)
	w.eq("project_id", f.ProjectID)
	w.eq("name", f.Name)
	w.eq("status", f.Status)
	w.flag("bootable", f.Bootable)
	w.eq("type_id", f.TypeID)
	w.in("server_id", f.ServerIDs)
	w.eq("attachment_id", f.AttachmentID)
	list, err := volumes.list(ctx, db.read, w)
	if err != nil {
		return nil, err
	}
	sortByAge(list, func(v *trustack.Volume) (time.Time, string) { return v.CreatedAt, v.ID })
	return list, nil
}

// UpdateVolume reads a volume, lets fn change it and writes it back, in
// one transaction; an error from fn changes nothing. A volume fn grows
// must stay within its project's gigabytes limit (EOVERQUOTA
// VolumeSizeExceedsAvailableQuota). ENOTFOUND (VolumeNotFound); EINVALID
// if fn changed the ID or the project.
func (db *DB) UpdateVolume(ctx context.Context, id string, limits map[string]int, fn func(*trustack.Volume) error) (*trustack.Volume, error) {
	// The project's lock comes before the volume's row: its ID is read
	// first, and is checked again under the row's lock.
	before, err := volumes.get(ctx, db.read, id)
	if err != nil {
		return nil, err
	}
	var v *trustack.Volume
	err = db.inProjectTx(ctx, before.ProjectID, func(q querier) error {
		gigabytes := limit(limits, trustack.QuotaGigabytes)
		if gigabytes >= 0 {
			if err := lockProject(ctx, db, q, before.ProjectID); err != nil {
				return err
			}
		}
		var err error
		if v, err = volumes.getSQL(ctx, q, id, db.lockRow()); err != nil {
			return err
		}
		project, size := v.ProjectID, v.Size
		if err := fn(v); err != nil {
			return err
		}
		if v.ProjectID != project {
			return trustack.Errorf(trustack.EINVALID, "The project of volume %s cannot be changed.", id)
		}
		if v.Size > size && gigabytes >= 0 {
			if err := checkLockedVolumeQuota(ctx, q, project, map[string]int{trustack.QuotaGigabytes: gigabytes}, map[string]int{trustack.QuotaGigabytes: v.Size - size}); err != nil {
				return err
			}
		}
		return volumes.put(ctx, q, id, v)
	})
	if err != nil {
		return nil, err
	}
	return v, nil
}

// DeleteVolume removes a volume; ENOTFOUND (VolumeNotFound).
func (db *DB) DeleteVolume(ctx context.Context, id string) error {
	return volumes.delete(ctx, db.write, id)
}

// VolumeUsage returns what a project's volumes and snapshots take of its
// quota: how many they are and their GiB.
func (db *DB) VolumeUsage(ctx context.Context, projectID string) (map[string]int, error) {
	return volumeUsage(ctx, db.read, projectID)
}

func volumeUsage(ctx context.Context, q querier, project string) (map[string]int, error) {
	var n, gb, snaps, snapGB int
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(size_gb), 0) FROM volumes WHERE project_id = $1`, project).Scan(&n, &gb); err != nil {
		return nil, fmt.Errorf("count the volumes of %s: %w", project, err)
	}
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(size_gb), 0) FROM volume_snapshots WHERE project_id = $1`, project).Scan(&snaps, &snapGB); err != nil {
		return nil, fmt.Errorf("count the snapshots of %s: %w", project, err)
	}
	// As Cinder's: snapshots' GiB count against gigabytes too.
	return map[string]int{trustack.QuotaVolumes: n, trustack.QuotaSnapshots: snaps, trustack.QuotaGigabytes: gb + snapGB}, nil
}

// Volume types.

// VolumeTypeAccess returns the projects a type is shared with, in order.
func (db *DB) VolumeTypeAccess(ctx context.Context, typeID string) ([]string, error) {
	return db.strings(ctx, `SELECT project_id FROM volume_type_access WHERE type_id = $1 ORDER BY project_id`, typeID)
}

// AddVolumeTypeAccess shares a type with a project; ECONFLICT
// (VolumeTypeAccessExists) if it is, ENOTFOUND (VolumeTypeNotFound) for
// a type that is not there.
func (db *DB) AddVolumeTypeAccess(ctx context.Context, typeID, projectID string) error {
	return db.inTx(ctx, func(q querier) error {
		if _, err := volumeTypes.getSQL(ctx, q, typeID, db.lockRow()); err != nil {
			return err
		}
		if _, err := q.ExecContext(ctx, `INSERT INTO volume_type_access (type_id, project_id) VALUES ($1, $2)`, typeID, projectID); err != nil {
			if c := (*constraintError)(nil); errors.As(translate(err), &c) && c.unique {
				return trustack.Reasonf(trustack.ECONFLICT, "VolumeTypeAccessExists", "Volume type access for %s / %s combination already exists.", typeID, projectID)
			}
			return fmt.Errorf("share volume type %s: %w", typeID, err)
		}
		return nil
	})
}

// RemoveVolumeTypeAccess stops sharing a type with a project; ENOTFOUND
// (VolumeTypeAccessNotFound) if it was not.
func (db *DB) RemoveVolumeTypeAccess(ctx context.Context, typeID, projectID string) error {
	return db.deleteOne(ctx, `DELETE FROM volume_type_access WHERE type_id = $1 AND project_id = $2`,
		trustack.Reasonf(trustack.ENOTFOUND, "VolumeTypeAccessNotFound", "Volume type access not found for %s / %s combination.", typeID, projectID),
		typeID, projectID)
}

// CreateVolumeType adds a type; ECONFLICT (VolumeTypeExists) if its name
// is taken, ECONFLICT for an ID in use.
func (db *DB) CreateVolumeType(ctx context.Context, t *trustack.VolumeType) error {
	return db.inTx(ctx, func(q querier) error {
		added, err := volumeTypes.tryAdd(ctx, q, t)
		if err != nil {
			return fmt.Errorf("create volume type: %w", conflict("volume type", err))
		}
		if added {
			return nil
		}
		if err := idFree(ctx, q, "volume_types", "Volume type", t.ID); err != nil {
			return err
		}
		return volumeTypeExists(t.Name)
	})
}

func volumeTypeExists(name string) error {
	return trustack.Reasonf(trustack.ECONFLICT, "VolumeTypeExists", "Volume Type %s already exists.", name)
}

// VolumeType returns a type; ENOTFOUND (VolumeTypeNotFound).
func (db *DB) VolumeType(ctx context.Context, id string) (*trustack.VolumeType, error) {
	return volumeTypes.get(ctx, db.read, id)
}

// VolumeTypeByName returns the type of a name; ENOTFOUND
// (VolumeTypeNotFoundByName).
func (db *DB) VolumeTypeByName(ctx context.Context, name string) (*trustack.VolumeType, error) {
	var w where
	w.add("name = ?", name)
	list, err := volumeTypes.list(ctx, db.read, w)
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, trustack.Reasonf(trustack.ENOTFOUND, "VolumeTypeNotFoundByName", "Volume type with name %s could not be found.", name)
	}
	return list[0], nil
}

// VolumeTypes returns every type, by name.
func (db *DB) VolumeTypes(ctx context.Context) ([]*trustack.VolumeType, error) {
	return volumeTypes.list(ctx, db.read, where{})
}

// UpdateVolumeType reads a type, lets fn change it and writes it back, in
// one transaction; ENOTFOUND (VolumeTypeNotFound), ECONFLICT
// (VolumeTypeExists) if fn gave it a name another has.
func (db *DB) UpdateVolumeType(ctx context.Context, id string, fn func(*trustack.VolumeType) error) (*trustack.VolumeType, error) {
	var name string
	t, err := volumeTypes.update(ctx, db, id, func(t *trustack.VolumeType) error {
		err := fn(t)
		name = t.Name
		return err
	})
	var c *trustack.Error
	if errors.As(err, &c) && c.Code == trustack.ECONFLICT && c.Reason == "" {
		return nil, volumeTypeExists(name)
	}
	return t, err
}

// DeleteVolumeType removes a type; ENOTFOUND (VolumeTypeNotFound),
// ECONFLICT (VolumeTypeInUse) while a volume is of it.
func (db *DB) DeleteVolumeType(ctx context.Context, id string) error {
	return db.inTx(ctx, func(q querier) error {
		t, err := volumeTypes.getSQL(ctx, q, id, db.lockRow())
		if err != nil {
			return err
		}
		used, err := exists(ctx, q, `SELECT COUNT(*) FROM volumes WHERE type_id = $1`, id)
		if err != nil {
			return fmt.Errorf("delete volume type %s: %w", id, err)
		}
		if used {
			return trustack.Reasonf(trustack.ECONFLICT, "VolumeTypeInUse", "Volume Type %s deletion is not allowed with volumes present with the type.", t.Name)
		}
		return volumeTypes.delete(ctx, q, id)
	})
}

// Volume quotas.

// VolumeQuotas returns a project's limits set apart from the defaults,
// by resource.
func (db *DB) VolumeQuotas(ctx context.Context, projectID string) (map[string]int, error) {
	return volumeQuotas.of(ctx, db, projectID)
}

// SetVolumeQuotas sets limits of a project, replacing those it had of the
// same resources.
func (db *DB) SetVolumeQuotas(ctx context.Context, projectID string, limits map[string]int) error {
	return volumeQuotas.set(ctx, db, projectID, limits)
}

// DeleteVolumeQuotas returns a project to the default limits.
func (db *DB) DeleteVolumeQuotas(ctx context.Context, projectID string) error {
	return volumeQuotas.clear(ctx, db, projectID)
}

// Snapshots.

// CreateSnapshot adds a snapshot of a volume whose status is one of
// statuses (EINVALID InvalidVolume otherwise; ENOTFOUND VolumeNotFound),
// within its project's snapshots and gigabytes limits (EOVERQUOTA), in a
// transaction that holds the volume's row.
func (db *DB) CreateSnapshot(ctx context.Context, s *trustack.VolumeSnapshot, statuses []string, limits map[string]int) error {
	return db.inProjectTx(ctx, s.ProjectID, func(q querier) error {
		if err := checkVolumeQuota(ctx, db, q, s.ProjectID, limits, map[string]int{trustack.QuotaSnapshots: 1, trustack.QuotaGigabytes: s.Size}); err != nil {
			return err
		}
		v, err := volumes.getSQL(ctx, q, s.VolumeID, db.lockRow())
		if err != nil {
			return err
		}
		if !slices.Contains(statuses, v.Status) {
			return trustack.Reasonf(trustack.EINVALID, "InvalidVolume", "Invalid volume: Volume %s status must be %s to be snapshotted, but current status is: %s.",
				v.ID, strings.Join(statuses, " or "), v.Status)
		}
		return snapshots.insert(ctx, q, s)
	})
}

// Snapshot returns a snapshot; ENOTFOUND (SnapshotNotFound).
func (db *DB) Snapshot(ctx context.Context, id string) (*trustack.VolumeSnapshot, error) {
	return snapshots.get(ctx, db.read, id)
}

// Snapshots returns the snapshots matching f, oldest first.
func (db *DB) Snapshots(ctx context.Context, f trustack.SnapshotFilter) ([]*trustack.VolumeSnapshot, error) {
	var w where
	w.eq("project_id", f.ProjectID)
	w.eq("volume_id", f.VolumeID)
	w.eq("name", f.Name)
	w.eq("status", f.Status)
	list, err := snapshots.list(ctx, db.read, w)
	if err != nil {
		return nil, err
	}
	sortByAge(list, func(s *trustack.VolumeSnapshot) (time.Time, string) { return s.CreatedAt, s.ID })
	return list, nil
}

// UpdateSnapshot reads a snapshot, lets fn change it and writes it back,
// in one transaction; ENOTFOUND (SnapshotNotFound); EINVALID if fn
// changed its ID, project, volume or size.
func (db *DB) UpdateSnapshot(ctx context.Context, id string, fn func(*trustack.VolumeSnapshot) error) (*trustack.VolumeSnapshot, error) {
	return snapshots.update(ctx, db, id, func(s *trustack.VolumeSnapshot) error {
		project, volume, size := s.ProjectID, s.VolumeID, s.Size
		if err := fn(s); err != nil {
			return err
		}
		if s.ProjectID != project || s.VolumeID != volume || s.Size != size {
			return trustack.Errorf(trustack.EINVALID, "The project, volume and size of snapshot %s cannot be changed.", id)
		}
		return nil
	})
}

// DeleteSnapshot removes a snapshot; ENOTFOUND (SnapshotNotFound).
func (db *DB) DeleteSnapshot(ctx context.Context, id string) error {
	return snapshots.delete(ctx, db.write, id)
}
