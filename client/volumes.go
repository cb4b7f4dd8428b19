package client

import (
	"context"

	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/snapshots"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/volumeattach"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"

	"github.com/trustack/trustack"
)

// BlockStorage is a Client whose cloud has a block storage service; its
// methods are the commands of volumes, their snapshots and their
// attachments to servers.
type BlockStorage struct{ *Client }

// BlockStorage returns the client's session with the block storage
// service. It returns ENOTFOUND if the catalog has no block storage
// endpoint.
func (c *Client) BlockStorage() (*BlockStorage, error) {
	if c.blockStorage == nil {
		return nil, c.noBlockStorage
	}
	return &BlockStorage{c}, nil
}

// VolumeCreate is a request for a volume.
type VolumeCreate struct {
	Name, Description string
	// Size is in GiB; 0 for the size of the image or snapshot the volume
	// is made from.
	Size int
	// Image and Snapshot name (or give the ID of) what the volume's data
	// comes from: one at most, none for an empty volume.
	Image, Snapshot string
	// Type is the volume type, by name or ID; "" for the cloud's default.
	Type string
	// AvailabilityZone is "" for the cloud's default.
	AvailabilityZone string
	// Properties are the volume's metadata, as KEY=VALUE.
	Properties []string
	// Wait waits until the volume is available, drawing the copy of its
	// image as the cloud reports it, and fails if the volume goes to
	// error.
	Wait bool
}

// CreateVolume creates a volume and shows it, once available if
// req.Wait. It returns EINVALID for a bad request, ENOTFOUND for an
// unknown image or snapshot, and the code of the block storage API's
// refusal (EOVERQUOTA past the project's quota).
func (b *BlockStorage) CreateVolume(ctx context.Context, req VolumeCreate) error {
	switch {
	case req.Image != "" && req.Snapshot != "":
		return trustack.Errorf(trustack.EINVALID, "give --image or --snapshot, not both")
	case req.Size < 0:
		return trustack.Errorf(trustack.EINVALID, "--size %d: want a number of GiB above 0", req.Size)
	case req.Size == 0 && req.Image == "" && req.Snapshot == "":
		return trustack.Errorf(trustack.EINVALID, "an empty volume needs --size (one made from --image or --snapshot takes its size)")
	}
	props, err := keyValues("--property", req.Properties)
	if err != nil {
		return err
	}
	opts := volumes.CreateOpts{Name: req.Name, Description: req.Description, Size: req.Size, VolumeType: req.Type,
		AvailabilityZone: req.AvailabilityZone, Metadata: last(props)}
	var img *images.Image
	if req.Image != "" {
		if img, err = b.findImage(ctx, req.Image); err != nil {
			return err
		}
		opts.ImageID = img.ID
	}
	if req.Snapshot != "" {
		snap, err := b.findSnapshot(ctx, req.Snapshot)
		if err != nil {
			return err
		}
		opts.SnapshotID = snap.ID
	}
	v, err := volumes.Create(ctx, b.blockStorage, opts, nil).Extract()
	if err != nil {
		return apiError(err)
	}
	if req.Wait {
		if err := b.waitCreated(ctx, v.ID, img); err != nil {
			return err
		}
		if v, err = b.volume(ctx, v.ID); err != nil {
			return err
		}
	}
	return b.show(b.volumeRecord(ctx, v))
}

// waitCreated waits until a new volume is available, and fails if it goes
// to error. For a volume made from img (nil for none) it draws the copy
// of the image, as far as the cloud reports it.
func (b *BlockStorage) waitCreated(ctx context.Context, id string, img *images.Image) error {
	var p *progress
	var poll func()
	if img != nil {
		p = b.progress("copied", img.SizeBytes)
		poll = func() {
			if n, ok := b.imageCopied(ctx, id); ok {
				p.reach(n)
			}
		}
	}
	if err := b.waitStatus(ctx, "volume", id, "available", "error", b.volumeStatus, poll); err != nil || p == nil {
		return err
	}
	// An available volume holds all of its image (checked against the
	// image's checksums), whether or not the report of the last bytes
	// came through.
	p.reach(img.SizeBytes)
	p.finish()
	return nil
}

// imageCopied returns how many bytes of its image the storage host of a
// volume made from one has copied, as trustack's os-trustack-image-copy
// says; false if the cloud does not say (a Cinder of OpenStack's has no
// such resource).
func (b *BlockStorage) imageCopied(ctx context.Context, id string) (int64, bool) {
	var body struct {
		ImageCopy struct {
			BytesCopied int64 `json:"bytes_copied"`
		} `json:"image_copy"`
	}
	_, err := b.blockStorage.Get(ctx, b.blockStorage.ServiceURL("volumes", id, "os-trustack-image-copy"), &body, nil)
	return body.ImageCopy.BytesCopied, err == nil
}

// volumeStatus returns the status of the volume with an ID, and the block
// storage API's error as it is.
func (b *BlockStorage) volumeStatus(ctx context.Context, id string) (string, error) {
	v, err := volumes.Get(ctx, b.blockStorage, id).Extract()
	if err != nil {
		return "", err
	}
	return v.Status, nil
}

// volume returns the volume with an ID.
func (b *BlockStorage) volume(ctx context.Context, id string) (*volumes.Volume, error) {
	v, err := volumes.Get(ctx, b.blockStorage, id).Extract()
	return v, apiError(err)
}

// volumes returns the volumes the project has that opts select.
func (b *BlockStorage) volumes(ctx context.Context, opts volumes.ListOptsBuilder) ([]volumes.Volume, error) {
	return all(ctx, "volumes", volumes.List(b.blockStorage, opts), volumes.ExtractVolumes)
}

// findVolume returns the volume ref names, by ID or else by name.
func (b *BlockStorage) findVolume(ctx context.Context, ref string) (*volumes.Volume, error) {
	return find("volume", ref, func(id string) (*volumes.Volume, error) {
		return volumes.Get(ctx, b.blockStorage, id).Extract()
	}, func(name string) ([]volumes.Volume, error) {
		return b.volumes(ctx, volumes.ListOpts{Name: name})
	})
}

// ShowVolume shows the volume ref names.
func (b *BlockStorage) ShowVolume(ctx context.Context, ref string) error {
	v, err := b.findVolume(ctx, ref)
	if err != nil {
		return err
	}
	return b.show(b.volumeRecord(ctx, v))
}

// volumeAttachment is a volume's attachment to a server, shown as
// "vm1 (ID) on /dev/vdb" in tables and as {"server": {"id", "name"},
// "device"} in JSON.
type volumeAttachment struct {
	Server named  `json:"server"`
	Device string `json:"device"`
}

func (a volumeAttachment) String() string { return a.Server.String() + " on " + a.Device }

// attachedNames maps the IDs of the servers vols are attached to to
// their names: nil if none is attached, or if the servers cannot be
// listed (their IDs then stand alone).
func (b *BlockStorage) attachedNames(ctx context.Context, vols []volumes.Volume) map[string]string {
	for _, v := range vols {
		if len(v.Attachments) > 0 {
			names, _ := b.serverNames(ctx)
			return names
		}
	}
	return nil
}

// attachmentsOf returns a volume's attachments, with the names of their
// servers that names has.
func attachmentsOf(v *volumes.Volume, names map[string]string) []volumeAttachment {
	out := []volumeAttachment{}
	for _, a := range v.Attachments {
		out = append(out, volumeAttachment{named{a.ServerID, names[a.ServerID]}, a.Device})
	}
	return out
}

// volumeRecord is what `volume show` shows: for a volume made from an
// image, how many bytes of it the storage host copied too, if the cloud
// says.
func (b *BlockStorage) volumeRecord(ctx context.Context, v *volumes.Volume) record {
	var image any
	if id := v.VolumeImageMetadata["image_id"]; id != "" {
		image = named{ID: id, Name: v.VolumeImageMetadata["image_name"]}
	}
	r := record{
		{"id", v.ID},
		{"name", v.Name},
		{"description", v.Description},
		{"status", v.Status},
		{"size", v.Size},
		{"type", v.VolumeType},
		{"bootable", v.Bootable == "true"},
		{"availability_zone", v.AvailabilityZone},
		{"attachments", attachmentsOf(v, b.attachedNames(ctx, []volumes.Volume{*v}))},
		{"image", image},
		{"snapshot_id", nullable(v.SnapshotID)},
		{"properties", v.Metadata},
		{"project_id", v.TenantID},
		{"user_id", v.UserID},
		{"created_at", stamp(v.CreatedAt)},
		{"updated_at", stamp(v.UpdatedAt)},
	}
	if image != nil {
		if n, ok := b.imageCopied(ctx, v.ID); ok {
			r = append(r, field{"image_bytes_copied", n})
		}
	}
	return r
}

// ListVolumes lists the project's volumes.
func (b *BlockStorage) ListVolumes(ctx context.Context) error {
	list, err := b.volumes(ctx, volumes.ListOpts{})
	if err != nil {
		return err
	}
	names := b.attachedNames(ctx, list)
	t := &table{columns: []string{"ID", "Name", "Status", "Size", "Attached to"}}
	for _, v := range list {
		t.add(v.ID, v.Name, v.Status, v.Size, attachmentsOf(&v, names))
	}
	return b.list(t)
}

// DeleteVolumes deletes the volumes refs name, and waits until they are
// gone if wait. The block storage API refuses (EINVALID) to delete a
// volume that is attached or has snapshots. It tries every volume and
// returns the errors of those it could not delete.
func (b *BlockStorage) DeleteVolumes(ctx context.Context, refs []string, wait bool) error {
	return b.deleteAll(ctx, "volume", refs, wait, func(ref string) (string, error) {
		v, err := b.findVolume(ctx, ref)
		if err != nil {
			return "", err
		}
		return v.ID, apiError(volumes.Delete(ctx, b.blockStorage, v.ID, nil).ExtractErr())
	}, b.volumeStatus)
}

// AttachVolume attaches the volume volumeRef names to the server
// serverRef names, through the compute API, and shows the volume. The
// compute API refuses (EINVALID) a volume that is not available.
func (b *BlockStorage) AttachVolume(ctx context.Context, serverRef, volumeRef string) error {
	s, v, err := b.serverAndVolume(ctx, serverRef, volumeRef)
	if err != nil {
		return err
	}
	if _, err := volumeattach.Create(ctx, b.compute, s, volumeattach.CreateOpts{VolumeID: v}).Extract(); err != nil {
		return apiError(err)
	}
	vol, err := b.volume(ctx, v)
	if err != nil {
		return err
	}
	return b.show(b.volumeRecord(ctx, vol))
}

// DetachVolume detaches the volume volumeRef names from the server
// serverRef names, through the compute API. It returns ENOTFOUND if the
// volume is not attached to the server.
func (b *BlockStorage) DetachVolume(ctx context.Context, serverRef, volumeRef string) error {
	s, v, err := b.serverAndVolume(ctx, serverRef, volumeRef)
	if err != nil {
		return err
	}
	return apiError(volumeattach.Delete(ctx, b.compute, s, v).ExtractErr())
}

// serverAndVolume returns the IDs of the server and the volume that
// serverRef and volumeRef name.
func (b *BlockStorage) serverAndVolume(ctx context.Context, serverRef, volumeRef string) (serverID, volumeID string, err error) {
	s, err := b.findServer(ctx, serverRef)
	if err != nil {
		return "", "", err
	}
	v, err := b.findVolume(ctx, volumeRef)
	if err != nil {
		return "", "", err
	}
	return s.ID, v.ID, nil
}

// SnapshotCreate is a request for a snapshot of a volume.
type SnapshotCreate struct {
	Name, Description string
	Volume            string // name or ID
	// Wait waits until the snapshot is available, and fails if it goes
	// to error.
	Wait bool
}

// CreateSnapshot takes a snapshot of a volume and shows it, once
// available if req.Wait. The block storage API refuses (EINVALID) a
// snapshot of a volume that is not available.
func (b *BlockStorage) CreateSnapshot(ctx context.Context, req SnapshotCreate) error {
	v, err := b.findVolume(ctx, req.Volume)
	if err != nil {
		return err
	}
	snap, err := snapshots.Create(ctx, b.blockStorage, snapshots.CreateOpts{VolumeID: v.ID, Name: req.Name, Description: req.Description}).Extract()
	if err != nil {
		return apiError(err)
	}
	if req.Wait {
		if err := b.waitStatus(ctx, "snapshot", snap.ID, "available", "error", b.snapshotStatus, nil); err != nil {
			return err
		}
	}
	return b.ShowSnapshot(ctx, snap.ID)
}

// snapshotStatus returns the status of the snapshot with an ID, and the
// block storage API's error as it is.
func (b *BlockStorage) snapshotStatus(ctx context.Context, id string) (string, error) {
	s, err := snapshots.Get(ctx, b.blockStorage, id).Extract()
	if err != nil {
		return "", err
	}
	return s.Status, nil
}

// snapshots returns the snapshots the project has that opts select.
func (b *BlockStorage) snapshots(ctx context.Context, opts snapshots.ListOptsBuilder) ([]snapshots.Snapshot, error) {
	return all(ctx, "snapshots", snapshots.ListDetail(b.blockStorage, opts), snapshots.ExtractSnapshots)
}

// findSnapshot returns the snapshot ref names, by ID or else by name.
func (b *BlockStorage) findSnapshot(ctx context.Context, ref string) (*snapshots.Snapshot, error) {
	return find("snapshot", ref, func(id string) (*snapshots.Snapshot, error) {
		return snapshots.Get(ctx, b.blockStorage, id).Extract()
	}, func(name string) ([]snapshots.Snapshot, error) {
		return b.snapshots(ctx, snapshots.ListOpts{Name: name})
	})
}

// ShowSnapshot shows the snapshot ref names.
func (b *BlockStorage) ShowSnapshot(ctx context.Context, ref string) error {
	s, err := b.findSnapshot(ctx, ref)
	if err != nil {
		return err
	}
	volume := named{ID: s.VolumeID}
	if v, err := b.volume(ctx, s.VolumeID); err == nil {
		volume.Name = v.Name
	}
	return b.show(record{
		{"id", s.ID},
		{"name", s.Name},
		{"description", s.Description},
		{"status", s.Status},
		{"size", s.Size},
		{"volume", volume},
		{"progress", nullable(s.Progress)},
		{"properties", s.Metadata},
		{"project_id", nullable(s.ProjectID)},
		{"created_at", stamp(s.CreatedAt)},
		{"updated_at", stamp(s.UpdatedAt)},
	})
}

// ListSnapshots lists the project's snapshots.
func (b *BlockStorage) ListSnapshots(ctx context.Context) error {
	list, err := b.snapshots(ctx, snapshots.ListOpts{})
	if err != nil {
		return err
	}
	names := map[string]string{}
	if len(list) > 0 {
		vols, err := b.volumes(ctx, volumes.ListOpts{})
		if err != nil {
			return err
		}
		for _, v := range vols {
			names[v.ID] = v.Name
		}
	}
	t := &table{columns: []string{"ID", "Name", "Status", "Size", "Volume"}}
	for _, s := range list {
		t.add(s.ID, s.Name, s.Status, s.Size, or(names[s.VolumeID], s.VolumeID))
	}
	return b.list(t)
}

// DeleteSnapshots deletes the snapshots refs name, and waits until they
// are gone if wait; the volumes made from them keep their data. It tries
// every snapshot and returns the errors of those it could not delete.
func (b *BlockStorage) DeleteSnapshots(ctx context.Context, refs []string, wait bool) error {
	return b.deleteAll(ctx, "snapshot", refs, wait, func(ref string) (string, error) {
		s, err := b.findSnapshot(ctx, ref)
		if err != nil {
			return "", err
		}
		return s.ID, apiError(snapshots.Delete(ctx, b.blockStorage, s.ID).ExtractErr())
	}, b.snapshotStatus)
}
