package volume

import (
	"context"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/trustack/trustack"
)

// A volume's snapshots: its data at a moment, kept by its backend on its
// storage host, taken and deleted in the background as volumes are made.

// SnapshotRequest asks for a snapshot of a volume.
type SnapshotRequest struct {
	VolumeID    string
	Name        string
	Description string
	Metadata    map[string]string
}

// CreateSnapshot accepts a snapshot of an available volume of the
// caller's: stored as creating, then taken by the volume's storage host.
// EINVALID (InvalidVolume) for a volume in another status (trustack
// takes no snapshot of a volume a server writes), EOVERQUOTA past the
// project's snapshots or gigabytes.
func (s *Service) CreateSnapshot(ctx context.Context, c Caller, r SnapshotRequest) (*trustack.VolumeSnapshot, error) {
	if err := checkText(r.Name, r.Description, r.Metadata); err != nil {
		return nil, err
	}
	v, err := s.Get(ctx, c, r.VolumeID)
	if err != nil {
		return nil, err
	}
	limits, err := s.Quotas(ctx, v.ProjectID)
	if err != nil {
		return nil, err
	}
	now := s.opts.Now().UTC()
	snap := &trustack.VolumeSnapshot{ID: uuid.NewString(), ProjectID: v.ProjectID, UserID: c.UserID, VolumeID: v.ID, Name: r.Name,
		Description: r.Description, Size: v.Size, Status: trustack.SnapshotCreating, Metadata: r.Metadata, CreatedAt: now, UpdatedAt: now}
	if err := s.store.CreateSnapshot(ctx, snap, []string{trustack.VolumeAvailable}, limits); err != nil {
		return nil, err
	}
	s.snapshotBackground(snap.ID, trustack.SnapshotCreating)
	return snap, nil
}

// fromSnapshot readies a request for a volume made from a snapshot of the
// caller's: the snapshot available, the size at least its own (its own
// if 0), the type its volume's if none. It returns the snapshot's
// volume.
func (s *Service) fromSnapshot(ctx context.Context, c Caller, r *CreateRequest) (*trustack.Volume, error) {
	snap, err := s.GetSnapshot(ctx, c, r.SnapshotID)
	if err != nil {
		return nil, err
	}
	if snap.Status != trustack.SnapshotAvailable {
		return nil, trustack.Reasonf(trustack.EINVALID, "InvalidSnapshot", "Invalid snapshot: Originating snapshot status must be one of 'available' values, but it is %s.", snap.Status)
	}
	if r.Size == 0 {
		r.Size = snap.Size
	}
	if r.Size < snap.Size {
		return nil, trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Invalid input received: Volume size '%d'GB cannot be smaller than the snapshot size %dGB. They must be >= original snapshot size.", r.Size, snap.Size)
	}
	source, err := s.store.Volume(ctx, snap.VolumeID)
	if err != nil {
		return nil, err
	}
	if r.Type == "" {
		r.Type = source.TypeID
	}
	return source, nil
}

// GetSnapshot returns a snapshot the caller may see; ENOTFOUND
// (SnapshotNotFound) for another project's, unless the caller is an
// administrator.
func (s *Service) GetSnapshot(ctx context.Context, c Caller, id string) (*trustack.VolumeSnapshot, error) {
	snap, err := s.store.Snapshot(ctx, id)
	if err != nil {
		return nil, err
	}
	if !c.Admin && snap.ProjectID != c.ProjectID {
		return nil, trustack.Reasonf(trustack.ENOTFOUND, "SnapshotNotFound", "Snapshot %s could not be found.", id)
	}
	return snap, nil
}

// ListSnapshots returns the snapshots matching f, oldest first: the
// caller's project's, or for an administrator every project's unless f
// names one.
func (s *Service) ListSnapshots(ctx context.Context, c Caller, f trustack.SnapshotFilter) ([]*trustack.VolumeSnapshot, error) {
	if !c.Admin {
		f.ProjectID = c.ProjectID
	}
	return s.store.Snapshots(ctx, f)
}

// SnapshotUpdate changes what a snapshot is called and says of itself;
// nil fields are left as they are.
type SnapshotUpdate struct {
	Name, Description *string
	// Metadata, if not nil, returns the new metadata from a copy of the
	// present one, as Update's.
	Metadata func(map[string]string) (map[string]string, error)
}

// UpdateSnapshot changes a snapshot as u says and returns it.
func (s *Service) UpdateSnapshot(ctx context.Context, c Caller, id string, u SnapshotUpdate) (*trustack.VolumeSnapshot, error) {
	if _, err := s.GetSnapshot(ctx, c, id); err != nil {
		return nil, err
	}
	if err := checkText(deref(u.Name), deref(u.Description), nil); err != nil {
		return nil, err
	}
	return s.store.UpdateSnapshot(ctx, id, func(snap *trustack.VolumeSnapshot) error {
		if err := changeMetadata(&snap.Metadata, u.Metadata); err != nil {
			return err
		}
		if u.Name != nil {
			snap.Name = *u.Name
		}
		if u.Description != nil {
			snap.Description = *u.Description
		}
		snap.UpdatedAt = s.opts.Now().UTC()
		return nil
	})
}

// DeleteSnapshot accepts the deletion of a snapshot that is available or
// in error (any status, forced by an administrator): its storage host
// deletes it, keeping the data of the volumes made from it, then it is
// gone (error_deleting, with the reason, if the host fails). EINVALID
// (InvalidSnapshot) for one being taken or deleted.
func (s *Service) DeleteSnapshot(ctx context.Context, c Caller, id string, force bool) error {
	if _, err := s.GetSnapshot(ctx, c, id); err != nil {
		return err
	}
	_, err := s.store.UpdateSnapshot(ctx, id, func(snap *trustack.VolumeSnapshot) error {
		switch {
		case force, snap.Status == trustack.SnapshotAvailable, snap.Status == trustack.SnapshotError, snap.Status == trustack.SnapshotErrorDeleting:
		default:
			return trustack.Reasonf(trustack.EINVALID, "InvalidSnapshot", "Invalid snapshot: Volume Snapshot status must be available or error or error_deleting, but it is %s.", snap.Status)
		}
		snap.Status, snap.UpdatedAt = trustack.SnapshotDeleting, s.opts.Now().UTC()
		return nil
	})
	if err != nil {
		return err
	}
	s.snapshotBackground(id, trustack.SnapshotDeleting)
	return nil
}

// snapshotStatuses are the snapshot statuses Cinder names.
var snapshotStatuses = []string{trustack.SnapshotCreating, trustack.SnapshotAvailable, trustack.SnapshotDeleting,
	trustack.SnapshotError, trustack.SnapshotErrorDeleting, trustack.SnapshotRestoring}

// ResetSnapshotStatus sets a snapshot's status, as an administrator's
// os-reset_status does; nothing is asked of its storage host.
func (s *Service) ResetSnapshotStatus(ctx context.Context, c Caller, id, status string) error {
	if !slices.Contains(snapshotStatuses, status) {
		return trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Invalid input received: %q is not a snapshot status (%s).", status, strings.Join(snapshotStatuses, ", "))
	}
	if _, err := s.GetSnapshot(ctx, c, id); err != nil {
		return err
	}
	_, err := s.store.UpdateSnapshot(ctx, id, func(snap *trustack.VolumeSnapshot) error {
		snap.Status, snap.UpdatedAt = status, s.opts.Now().UTC()
		return nil
	})
	return err
}

// UpdateSnapshotStatus records the progress a service reports of a
// snapshot it takes itself (Nova's assisted snapshots): one being made
// may go on, be available or fail; one being deleted may go on or fail;
// progress ("80%"), if not "", is recorded.
// EINVALID (InvalidSnapshot) for another change.
func (s *Service) UpdateSnapshotStatus(ctx context.Context, c Caller, id, status, progress string) error {
	if _, err := s.GetSnapshot(ctx, c, id); err != nil {
		return err
	}
	allowed := map[string][]string{
		trustack.SnapshotCreating: {trustack.SnapshotCreating, trustack.SnapshotAvailable, trustack.SnapshotError},
		trustack.SnapshotDeleting: {trustack.SnapshotDeleting, trustack.SnapshotErrorDeleting},
	}
	_, err := s.store.UpdateSnapshot(ctx, id, func(snap *trustack.VolumeSnapshot) error {
		if !slices.Contains(allowed[snap.Status], status) {
			return trustack.Reasonf(trustack.EINVALID, "InvalidSnapshot", "Invalid snapshot: Provided snapshot status %s not allowed for snapshot with status %s.", status, snap.Status)
		}
		snap.Status, snap.UpdatedAt = status, s.opts.Now().UTC()
		if progress != "" {
			snap.Progress = progress
		}
		return nil
	})
	return err
}

// snapshotBackground has a snapshot's storage host take or delete it, as
// its status says, then records the outcome.
func (s *Service) snapshotBackground(id, status string) {
	s.work.Add(1)
	go func() {
		defer s.work.Done()
		s.carryOutSnapshot(context.Background(), id, status)
	}()
}

func (s *Service) carryOutSnapshot(ctx context.Context, id, status string) {
	snap, err := s.store.Snapshot(ctx, id)
	if err != nil || snap.Status != status {
		return // deleted or moved on meanwhile
	}
	v, err := s.store.Volume(ctx, snap.VolumeID)
	if err == nil {
		host, backend := hostAndBackend(v)
		err = s.onHost(ctx, host, func(ctx context.Context) error {
			if status == trustack.SnapshotCreating {
				return s.storage.SnapshotVolume(ctx, host, backend, v.ID, id)
			}
			return s.storage.DeleteSnapshot(ctx, host, backend, id)
		})
	}
	if err == nil && status == trustack.SnapshotDeleting {
		if derr := s.store.DeleteSnapshot(ctx, id); derr != nil && trustack.ErrorCode(derr) != trustack.ENOTFOUND {
			s.opts.Log.Error("forget a deleted snapshot", "snapshot", id, "error", derr)
		}
		return
	}
	_, uerr := s.store.UpdateSnapshot(ctx, id, func(cur *trustack.VolumeSnapshot) error {
		if cur.Status != status {
			return errMoved
		}
		cur.UpdatedAt = s.opts.Now().UTC()
		switch {
		case err == nil:
			cur.Status, cur.Reason = trustack.SnapshotAvailable, ""
		case status == trustack.SnapshotCreating:
			cur.Status, cur.Reason = trustack.SnapshotError, err.Error()
		default:
			cur.Status, cur.Reason = trustack.SnapshotErrorDeleting, err.Error()
		}
		return nil
	})
	if uerr != nil && uerr != errMoved {
		s.opts.Log.Error("record a snapshot's status", "snapshot", id, "error", uerr)
	}
	if err != nil {
		s.opts.Log.Warn("a storage host failed a snapshot", "snapshot", id, "status", status, "error", err)
		s.noteSnapshotFailure(ctx, snap, status)
	}
}
