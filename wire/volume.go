package wire

import "context"

// The volume conversation: a controller asks a storage host's agent, on
// the host's subject as the compute conversation does, to make, grow and
// delete volumes in one of the volume backends the host registered
// (trustack.Host's Storage).
const (
	opVolumeCreate = "volume_create"
	opVolumeExtend = "volume_extend"
	opVolumeDelete = "volume_delete"
)

// volumeRequest is the part of a host request about a volume.
type volumeRequest struct {
	Backend  string `json:"backend,omitempty"`
	VolumeID string `json:"volume_id,omitempty"`
	Size     int    `json:"size,omitempty"` // GiB
}

// CreateVolume asks a storage host's agent to make an empty volume of
// size GiB in its backend; making one that is there with the size
// succeeds.
func (c *Hosts) CreateVolume(ctx context.Context, host, backend, volumeID string, size int) error {
	_, err := c.call(ctx, host, hostRequest{Op: opVolumeCreate, volumeRequest: volumeRequest{Backend: backend, VolumeID: volumeID, Size: size}})
	return err
}

// ExtendVolume asks a storage host's agent to grow a volume to size GiB.
func (c *Hosts) ExtendVolume(ctx context.Context, host, backend, volumeID string, size int) error {
	_, err := c.call(ctx, host, hostRequest{Op: opVolumeExtend, volumeRequest: volumeRequest{Backend: backend, VolumeID: volumeID, Size: size}})
	return err
}

// DeleteVolume asks a storage host's agent to delete a volume and its
// data; deleting one that is not there succeeds.
func (c *Hosts) DeleteVolume(ctx context.Context, host, backend, volumeID string) error {
	_, err := c.call(ctx, host, hostRequest{Op: opVolumeDelete, volumeRequest: volumeRequest{Backend: backend, VolumeID: volumeID}})
	return err
}

// VolumeHost is what a storage host's agent does for the controllers:
// ENOTFOUND for a backend it does not run.
type VolumeHost interface {
	CreateVolume(ctx context.Context, backend, volumeID string, size int) error
	ExtendVolume(ctx context.Context, backend, volumeID string, size int) error
	DeleteVolume(ctx context.Context, backend, volumeID string) error
}

// serveVolume answers a request of the volume conversation; handled is
// false for a request of another.
func serveVolume(ctx context.Context, h VolumeHost, req hostRequest) (handled bool, err error) {
	switch req.Op {
	case opVolumeCreate:
		return true, h.CreateVolume(ctx, req.Backend, req.VolumeID, req.Size)
	case opVolumeExtend:
		return true, h.ExtendVolume(ctx, req.Backend, req.VolumeID, req.Size)
	case opVolumeDelete:
		return true, h.DeleteVolume(ctx, req.Backend, req.VolumeID)
	}
	return false, nil
}
