package wire

import (
	"context"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/bus"
)

// The volume conversation: a controller asks a storage host's agent, on
// the host's subject as the compute conversation does, to make, grow and
// delete volumes in one of the volume backends the host registered
// (trustack.Host's Storage), and to serve them to compute hosts over NBD;
// and a compute host's agent to plug volumes into its servers and unplug
// them.
const (
	opVolumeCreate   = "volume_create"
	opVolumeExtend   = "volume_extend"
	opVolumeDelete   = "volume_delete"
	opVolumeExport   = "volume_export"
	opVolumeUnexport = "volume_unexport"
	opVolumeAttach   = "volume_attach"
	opVolumeDetach   = "volume_detach"
	opVolumeGrow     = "volume_grow"
	opSnapshotCreate = "snapshot_create"
	opSnapshotDelete = "snapshot_delete"
	opVolumeUpload   = "volume_upload"
	opVolumeRevert   = "volume_revert"
)

// volumeRequest is the part of a host request about a volume.
type volumeRequest struct {
	Backend  string `json:"backend,omitempty"`
	VolumeID string `json:"volume_id,omitempty"`
	Size     int    `json:"size,omitempty"` // GiB
	// SnapshotID names the snapshot made, deleted, a volume is made
	// from, or reverted to.
	SnapshotID string `json:"snapshot_id,omitempty"`
	// Image is the image a volume is made from, downloaded with Token.
	Image  *ImageRef   `json:"image,omitempty"`
	Token  string      `json:"token,omitempty"`
	Key    *PSK        `json:"key,omitempty"`
	Disk   *VolumeDisk `json:"disk,omitempty"`
	Device string      `json:"device,omitempty"`
	// DiskFormat is the format of the image a volume's data is uploaded
	// as, to the request's Upload.
	DiskFormat string `json:"disk_format,omitempty"`
	// AttachedHere says a volume grown is attached to a server of its
	// storage host, which opens it directly.
	AttachedHere bool `json:"attached_here,omitempty"`
}

// PSK is a TLS pre-shared key: an identity and a secret of 32 bytes in
// hexadecimal. Each attachment over NBD has its own, known to its storage
// host and its compute host only.
type PSK struct {
	Identity string `json:"identity"`
	Secret   string `json:"secret"`
}

// NBDExport is a volume a storage host serves over NBD with TLS: where to
// connect, the export's name, and the key it takes.
type NBDExport struct {
	Host string `json:"host"`
	Port int    `json:"port"`
	Name string `json:"name"`
	Key  PSK    `json:"key"`
}

// VolumeDisk is a volume as a server's disk: the device the guest sees
// ("vdb"), and where the compute host opens the volume: in a backend of
// its own, for a volume on the same host, or else over NBD.
type VolumeDisk struct {
	VolumeID string     `json:"volume_id"`
	Device   string     `json:"device"`
	Backend  string     `json:"backend,omitempty"`
	NBD      *NBDExport `json:"nbd,omitempty"`
	ReadOnly bool       `json:"read_only,omitempty"`
}

// CreateVolumeFromSnapshot asks a storage host's agent to make a volume
// of size GiB with the data of a snapshot of its backend.
func (c *Hosts) CreateVolumeFromSnapshot(ctx context.Context, host, backend, volumeID, snapshotID string, size int) error {
	_, err := c.call(ctx, host, hostRequest{Op: opVolumeCreate, volumeRequest: volumeRequest{Backend: backend, VolumeID: volumeID, Size: size, SnapshotID: snapshotID}})
	return err
}

// CreateVolumeFromImage asks a storage host's agent to make a volume of
// size GiB with an image's data, which it downloads with token.
func (c *Hosts) CreateVolumeFromImage(ctx context.Context, host, backend, volumeID string, size int, image ImageRef, token string) error {
	_, err := c.call(ctx, host, hostRequest{Op: opVolumeCreate, volumeRequest: volumeRequest{Backend: backend, VolumeID: volumeID, Size: size,
		Image: &image, Token: token}})
	return err
}

// SnapshotVolume asks a storage host's agent to keep a volume's data as
// a snapshot; taking one that is there succeeds.
func (c *Hosts) SnapshotVolume(ctx context.Context, host, backend, volumeID, snapshotID string) error {
	_, err := c.call(ctx, host, hostRequest{Op: opSnapshotCreate, volumeRequest: volumeRequest{Backend: backend, VolumeID: volumeID, SnapshotID: snapshotID}})
	return err
}

// DeleteSnapshot asks a storage host's agent to delete a snapshot;
// deleting one that is not there succeeds.
func (c *Hosts) DeleteSnapshot(ctx context.Context, host, backend, snapshotID string) error {
	_, err := c.call(ctx, host, hostRequest{Op: opSnapshotDelete, volumeRequest: volumeRequest{Backend: backend, SnapshotID: snapshotID}})
	return err
}

// RevertVolume asks a storage host's agent to put a volume's data back
// to a snapshot's; reverting again succeeds.
func (c *Hosts) RevertVolume(ctx context.Context, host, backend, volumeID, snapshotID string) error {
	_, err := c.call(ctx, host, hostRequest{Op: opVolumeRevert, volumeRequest: volumeRequest{Backend: backend, VolumeID: volumeID, SnapshotID: snapshotID}})
	return err
}

// UploadVolume asks a storage host's agent to upload a volume's data,
// in an image disk format, as the data of an image.
func (c *Hosts) UploadVolume(ctx context.Context, host, backend, volumeID string, upload Upload, diskFormat string) error {
	_, err := c.call(ctx, host, hostRequest{Op: opVolumeUpload, Upload: &upload, volumeRequest: volumeRequest{Backend: backend, VolumeID: volumeID,
		DiskFormat: diskFormat}})
	return err
}

// ExportVolume asks a storage host's agent to serve a volume of its
// backend over NBD to the holder of key, and returns the export; a volume
// served already is served as it is.
func (c *Hosts) ExportVolume(ctx context.Context, host, backend, volumeID string, key PSK) (NBDExport, error) {
	r, err := c.call(ctx, host, hostRequest{Op: opVolumeExport, volumeRequest: volumeRequest{Backend: backend, VolumeID: volumeID, Key: &key}})
	if err != nil {
		return NBDExport{}, err
	}
	if r.Export == nil {
		return NBDExport{}, trustack.Errorf(trustack.EINTERNAL, "host %s exported volume %s without saying where", host, volumeID)
	}
	return *r.Export, nil
}

// UnexportVolume asks a storage host's agent to stop serving a volume;
// one not served is no error.
func (c *Hosts) UnexportVolume(ctx context.Context, host, volumeID string) error {
	_, err := c.call(ctx, host, hostRequest{Op: opVolumeUnexport, volumeRequest: volumeRequest{VolumeID: volumeID}})
	return err
}

// AttachVolume asks a compute host's agent to plug a volume into a
// server; plugging one that is there succeeds.
func (c *Hosts) AttachVolume(ctx context.Context, host, serverID string, disk VolumeDisk) error {
	_, err := c.call(ctx, host, hostRequest{Op: opVolumeAttach, ServerID: serverID, volumeRequest: volumeRequest{Disk: &disk}})
	return err
}

// DetachVolume asks a compute host's agent to unplug the volume at a
// server's device, once the guest lets it go; one not there is no error.
func (c *Hosts) DetachVolume(ctx context.Context, host, serverID, device string) error {
	_, err := c.call(ctx, host, hostRequest{Op: opVolumeDetach, ServerID: serverID, volumeRequest: volumeRequest{Device: device}})
	return err
}

// GrowVolume asks a compute host's agent to have a server see the volume
// at a device at its new size, size GiB, which its storage host has
// grown it to.
func (c *Hosts) GrowVolume(ctx context.Context, host, serverID, device string, size int) error {
	_, err := c.call(ctx, host, hostRequest{Op: opVolumeGrow, ServerID: serverID, volumeRequest: volumeRequest{Device: device, Size: size}})
	return err
}

// CreateVolume asks a storage host's agent to make an empty volume of
// size GiB in its backend; making one that is there with the size
// succeeds.
func (c *Hosts) CreateVolume(ctx context.Context, host, backend, volumeID string, size int) error {
	_, err := c.call(ctx, host, hostRequest{Op: opVolumeCreate, volumeRequest: volumeRequest{Backend: backend, VolumeID: volumeID, Size: size}})
	return err
}

// ExtendVolume asks a storage host's agent to grow a volume to size GiB,
// attached to a server or not; attachedHere says it is attached to a
// server of the storage host itself, which opens it directly. The
// server's compute host must then have it see the new size (GrowVolume).
func (c *Hosts) ExtendVolume(ctx context.Context, host, backend, volumeID string, size int, attachedHere bool) error {
	_, err := c.call(ctx, host, hostRequest{Op: opVolumeExtend, volumeRequest: volumeRequest{Backend: backend, VolumeID: volumeID, Size: size,
		AttachedHere: attachedHere}})
	return err
}

// DeleteVolume asks a storage host's agent to delete a volume and its
// data; deleting one that is not there succeeds.
func (c *Hosts) DeleteVolume(ctx context.Context, host, backend, volumeID string) error {
	_, err := c.call(ctx, host, hostRequest{Op: opVolumeDelete, volumeRequest: volumeRequest{Backend: backend, VolumeID: volumeID}})
	return err
}

// VolumeHost is what an agent does for the controllers with volumes: a
// storage host's (ENOTFOUND for a backend it does not run), and a compute
// host's.
type VolumeHost interface {
	CreateVolume(ctx context.Context, backend, volumeID string, size int) error
	CreateVolumeFromSnapshot(ctx context.Context, backend, volumeID, snapshotID string, size int) error
	CreateVolumeFromImage(ctx context.Context, backend, volumeID string, size int, image ImageRef, token string) error
	SnapshotVolume(ctx context.Context, backend, volumeID, snapshotID string) error
	DeleteSnapshot(ctx context.Context, backend, snapshotID string) error
	ExtendVolume(ctx context.Context, backend, volumeID string, size int, attachedHere bool) error
	DeleteVolume(ctx context.Context, backend, volumeID string) error
	UploadVolume(ctx context.Context, backend, volumeID string, upload Upload, diskFormat string) error
	RevertVolume(ctx context.Context, backend, volumeID, snapshotID string) error
	ExportVolume(ctx context.Context, backend, volumeID string, key PSK) (NBDExport, error)
	UnexportVolume(ctx context.Context, volumeID string) error
	AttachVolume(ctx context.Context, serverID string, disk VolumeDisk) error
	DetachVolume(ctx context.Context, serverID, device string) error
	GrowVolume(ctx context.Context, serverID, device string, size int) error
}

// serveVolume answers a request of the volume conversation; handled is
// false for a request of another.
func serveVolume(ctx context.Context, h VolumeHost, req hostRequest, r *hostReply) (handled bool, err error) {
	switch req.Op {
	case opVolumeExport:
		if req.Key == nil {
			return true, trustack.Errorf(trustack.EINVALID, "an export needs a key")
		}
		ex, err := h.ExportVolume(ctx, req.Backend, req.VolumeID, *req.Key)
		r.Export = &ex
		return true, err
	case opVolumeUnexport:
		return true, h.UnexportVolume(ctx, req.VolumeID)
	case opVolumeAttach:
		if req.Disk == nil {
			return true, trustack.Errorf(trustack.EINVALID, "an attachment needs a disk")
		}
		return true, h.AttachVolume(ctx, req.ServerID, *req.Disk)
	case opVolumeDetach:
		return true, h.DetachVolume(ctx, req.ServerID, req.Device)
	case opVolumeGrow:
		return true, h.GrowVolume(ctx, req.ServerID, req.Device, req.Size)
	case opVolumeCreate:
		switch {
		case req.SnapshotID != "":
			return true, h.CreateVolumeFromSnapshot(ctx, req.Backend, req.VolumeID, req.SnapshotID, req.Size)
		case req.Image != nil:
			return true, h.CreateVolumeFromImage(ctx, req.Backend, req.VolumeID, req.Size, *req.Image, req.Token)
		}
		return true, h.CreateVolume(ctx, req.Backend, req.VolumeID, req.Size)
	case opSnapshotCreate:
		return true, h.SnapshotVolume(ctx, req.Backend, req.VolumeID, req.SnapshotID)
	case opSnapshotDelete:
		return true, h.DeleteSnapshot(ctx, req.Backend, req.SnapshotID)
	case opVolumeRevert:
		return true, h.RevertVolume(ctx, req.Backend, req.VolumeID, req.SnapshotID)
	case opVolumeExtend:
		return true, h.ExtendVolume(ctx, req.Backend, req.VolumeID, req.Size, req.AttachedHere)
	case opVolumeDelete:
		return true, h.DeleteVolume(ctx, req.Backend, req.VolumeID)
	case opVolumeUpload:
		if req.Upload == nil {
			return true, trustack.Errorf(trustack.EINVALID, "an upload needs where to")
		}
		return true, h.UploadVolume(ctx, req.Backend, req.VolumeID, *req.Upload, req.DiskFormat)
	}
	return false, nil
}

// sentImageCopied is what storage hosts send to report how much of its
// image they have copied for a volume they make from one, to the
// controllers' queue group: one controller records each.
const sentImageCopied = "image_copied"

// ImageCopied is a storage host's report that it has copied Bytes of
// the image of a volume it is making.
type ImageCopied struct {
	Host     string `json:"host"`
	VolumeID string `json:"volume_id"`
	Bytes    int64  `json:"bytes"`
}

// ImageCopied reports to a controller how much of its image the host has
// copied for a volume, and returns once it is recorded.
func (c *Controllers) ImageCopied(ctx context.Context, e ImageCopied) error {
	return c.conn.Request(ctx, fromSubject(e.Host, sentImageCopied), e, &empty{})
}

// VolumeController is what a controller does with what storage hosts
// report of the volumes they make.
type VolumeController interface {
	// ImageCopied records how much of its image a host has copied for a
	// volume it makes from one.
	ImageCopied(ctx context.Context, e ImageCopied) error
}

// ServeVolumeControllers has ctl answer storage hosts' reports on conn,
// in the controllers' queue group, until the subscription is ended.
// Witness hears of the spoofs, which ctl does not see.
func ServeVolumeControllers(conn *bus.Conn, ctl VolumeController, witness Witness) (bus.Subscription, error) {
	return conn.HandleQueue(fromEveryHost(sentImageCopied), controllersQueue, fromHosts(sentImageCopied, witness, func(e ImageCopied) string { return e.Host },
		func(ctx context.Context, e ImageCopied) (empty, error) { return empty{}, ctl.ImageCopied(ctx, e) }))
}
