package agent

import "context"

// VolumeBackend keeps the volumes of a storage host, as Cinder's volume
// drivers do. Backends implement it (volume/file; volume/lvm where the
// kernel has device-mapper), and each passes volume/backendtest. Every
// method is idempotent and safe for concurrent use; the agent never runs
// two operations on one volume at once. Volumes are named by their IDs
// (letters, digits and dashes); sizes are in GiB.
type VolumeBackend interface {
	// Capacity returns the GiB the backend has, and those free.
	Capacity(ctx context.Context) (total, free int, err error)
	// Create makes an empty volume. A volume of the ID that is there
	// already is left as it is if it has the size, ECONFLICT if not; a
	// creation cut short leaves nothing.
	Create(ctx context.Context, id string, size int) error
	// Extend grows a volume to size, keeping its data; EINVALID to
	// shrink it, ENOTFOUND for a missing volume.
	Extend(ctx context.Context, id string, size int) error
	// Delete removes a volume and its data; a missing one is no error.
	Delete(ctx context.Context, id string) error
	// Volumes returns the volumes the backend has, with their sizes.
	Volumes(ctx context.Context) (map[string]int, error)
	// Locate returns where a volume's blocks are, for QEMU to open: a
	// path and its format (raw or qcow2); ENOTFOUND for a missing
	// volume.
	Locate(ctx context.Context, id string) (path, format string, err error)
}
