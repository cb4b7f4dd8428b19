package volume

import (
	"context"
	"time"

	"github.com/trustack/trustack"
)

// Store keeps block storage state. A project's quota holds whoever
// writes at the same time and from however many controllers: the store
// counts a project's volumes and their sizes in the transaction that adds
// or grows one. Limits are by quota resource (trustack.QuotaVolumes,
// trustack.QuotaGigabytes); a resource missing, or -1, has no limit.
// Update methods read the row, change it with fn and write it back in one
// transaction; fn may not change the ID, and its error aborts the update
// as it is. Methods return ENOTFOUND for a missing ID, with Cinder's
// error type as the reason where clients tell errors apart.
type Store interface {
	// CreateVolume adds a volume of an existing type (ENOTFOUND
	// VolumeTypeNotFound otherwise); EOVERQUOTA (VolumeLimitExceeded,
	// VolumeSizeExceedsAvailableQuota) past the project's limits.
	CreateVolume(ctx context.Context, v *trustack.Volume, limits map[string]int) error
	// Volume returns a volume; ENOTFOUND (VolumeNotFound).
	Volume(ctx context.Context, id string) (*trustack.Volume, error)
	// Volumes returns the volumes matching f, oldest first.
	Volumes(ctx context.Context, f trustack.VolumeFilter) ([]*trustack.Volume, error)
	// UpdateVolume is an update; a volume fn grows must stay within its
	// project's gigabytes limit (EOVERQUOTA), and fn may not change its
	// project (EINVALID).
	UpdateVolume(ctx context.Context, id string, limits map[string]int, fn func(*trustack.Volume) error) (*trustack.Volume, error)
	// DeleteVolume removes a volume; ENOTFOUND (VolumeNotFound).
	DeleteVolume(ctx context.Context, id string) error
	// VolumeUsage returns what a project's volumes and snapshots take of
	// its quota, by resource.
	VolumeUsage(ctx context.Context, projectID string) (map[string]int, error)

	// CreateVolumeType adds a type; ECONFLICT (VolumeTypeExists) if its
	// name is taken.
	CreateVolumeType(ctx context.Context, t *trustack.VolumeType) error
	// VolumeType returns a type; ENOTFOUND (VolumeTypeNotFound).
	VolumeType(ctx context.Context, id string) (*trustack.VolumeType, error)
	// VolumeTypeByName returns the type of a name; ENOTFOUND
	// (VolumeTypeNotFoundByName).
	VolumeTypeByName(ctx context.Context, name string) (*trustack.VolumeType, error)
	// VolumeTypes returns every type, by name.
	VolumeTypes(ctx context.Context) ([]*trustack.VolumeType, error)
	// UpdateVolumeType is an update; ECONFLICT (VolumeTypeExists) if fn
	// gave it a name another has.
	UpdateVolumeType(ctx context.Context, id string, fn func(*trustack.VolumeType) error) (*trustack.VolumeType, error)
	// VolumeTypeAccess returns the projects a type is shared with.
	VolumeTypeAccess(ctx context.Context, typeID string) ([]string, error)
	// AddVolumeTypeAccess shares a type with a project; ECONFLICT
	// (VolumeTypeAccessExists) if it is, ENOTFOUND for a missing type.
	AddVolumeTypeAccess(ctx context.Context, typeID, projectID string) error
	// RemoveVolumeTypeAccess stops sharing a type with a project;
	// ENOTFOUND (VolumeTypeAccessNotFound) if it was not.
	RemoveVolumeTypeAccess(ctx context.Context, typeID, projectID string) error
	// DeleteVolumeType removes a type; ECONFLICT (VolumeTypeInUse)
	// while a volume is of it.
	DeleteVolumeType(ctx context.Context, id string) error

	// CreateSnapshot adds a snapshot of a volume whose status is one of
	// statuses (EINVALID InvalidVolume otherwise), within its project's
	// limits (EOVERQUOTA SnapshotLimitExceeded,
	// VolumeSizeExceedsAvailableQuota), holding the volume's row.
	CreateSnapshot(ctx context.Context, s *trustack.VolumeSnapshot, statuses []string, limits map[string]int) error
	// Snapshot returns a snapshot; ENOTFOUND (SnapshotNotFound).
	Snapshot(ctx context.Context, id string) (*trustack.VolumeSnapshot, error)
	// Snapshots returns the snapshots matching f, oldest first.
	Snapshots(ctx context.Context, f trustack.SnapshotFilter) ([]*trustack.VolumeSnapshot, error)
	// UpdateSnapshot is an update; fn may not change the snapshot's
	// project, volume or size.
	UpdateSnapshot(ctx context.Context, id string, fn func(*trustack.VolumeSnapshot) error) (*trustack.VolumeSnapshot, error)
	// UpdateVolumeAndSnapshots is an update of a volume and its
	// snapshots (oldest first) together, in one transaction; fn may not
	// change the volume's project, nor a snapshot's ID, project, volume
	// or size (EINVALID). ENOTFOUND (VolumeNotFound).
	UpdateVolumeAndSnapshots(ctx context.Context, volumeID string, fn func(*trustack.Volume, []*trustack.VolumeSnapshot) error) error
	// DeleteSnapshot removes a snapshot; ENOTFOUND (SnapshotNotFound).
	DeleteSnapshot(ctx context.Context, id string) error

	// VolumeQuotas returns a project's limits set apart from the
	// defaults, by resource.
	VolumeQuotas(ctx context.Context, projectID string) (map[string]int, error)
	// SetVolumeQuotas sets limits of a project, replacing those it had of
	// the same resources.
	SetVolumeQuotas(ctx context.Context, projectID string, limits map[string]int) error
	// DeleteVolumeQuotas returns a project to the default limits.
	DeleteVolumeQuotas(ctx context.Context, projectID string) error

	// CreateVolumeMessage adds a message; ECONFLICT for an ID in use.
	CreateVolumeMessage(ctx context.Context, m *trustack.VolumeMessage) error
	// VolumeMessage returns a message, expired or not; ENOTFOUND
	// (MessageNotFound).
	VolumeMessage(ctx context.Context, id string) (*trustack.VolumeMessage, error)
	// VolumeMessages returns the messages matching f that expire after
	// now, oldest first.
	VolumeMessages(ctx context.Context, f trustack.VolumeMessageFilter, now time.Time) ([]*trustack.VolumeMessage, error)
	// DeleteVolumeMessage removes a message; ENOTFOUND (MessageNotFound).
	DeleteVolumeMessage(ctx context.Context, id string) error
	// DeleteExpiredVolumeMessages removes the messages that expire at or
	// before now and returns how many there were.
	DeleteExpiredVolumeMessages(ctx context.Context, now time.Time) (int, error)
}
