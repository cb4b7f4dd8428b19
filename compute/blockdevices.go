package compute

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/volume"
	"github.com/trustack/trustack/wire"
)

// Servers made with volumes (Nova's block device mapping, destination
// "volume"): the volumes named are reserved for a server when it is
// accepted; those to be made (blank, from an image or a snapshot) are
// made while it is built, once placed; then all are plugged in before
// its guest first starts, the root one (boot index 0) as its disk vda,
// and recorded as attached once it runs. When it is deleted, those asked
// to be deleted on termination go with it.

// Sources of a block device, as Nova names them.
const (
	SourceVolume   = "volume"
	SourceImage    = "image"
	SourceSnapshot = "snapshot"
	SourceBlank    = "blank"
)

// volumeReadyTimeout bounds how long a build waits for a volume it made
// to be ready: one made from an image copies it first.
const volumeReadyTimeout = 10 * time.Minute

// InvalidBDM is Nova's InvalidBDM: a block device mapping that cannot be.
func InvalidBDM(format string, args ...any) error {
	return trustack.Reasonf(trustack.EINVALID, "InvalidBDM", "Block Device Mapping is Invalid: "+format, args...)
}

// checkBlockDevices checks a request's block devices before any server
// is made: each source exists and may be used, the sizes are given where
// a volume is made, and exactly one disk is booted from, the image or a
// volume. EINVALID says what is wrong.
func (s *Service) checkBlockDevices(ctx context.Context, c Caller, req CreateRequest) error {
	if len(req.BlockDevices) == 0 {
		if req.ImageID == "" {
			return trustack.Errorf(trustack.EINVALID, "Invalid imageRef provided.")
		}
		return nil
	}
	if s.opts.Volumes == nil {
		return errNoVolumes
	}
	roots := 0
	for _, bd := range req.BlockDevices {
		if bd.BootIndex == 0 {
			roots++
		}
		if err := s.checkSource(ctx, c, req, bd); err != nil {
			return err
		}
	}
	if roots > 1 || (roots == 0 && req.ImageID == "") {
		return InvalidBDM("Boot sequence for the instance and image/block device mapping combination is not valid.")
	}
	return nil
}

// checkSource checks what one block device is made from.
func (s *Service) checkSource(ctx context.Context, c Caller, req CreateRequest, bd trustack.BlockDevice) error {
	switch bd.Source {
	case SourceVolume:
		if req.MaxCount > 1 {
			return trustack.Errorf(trustack.EINVALID, "Cannot attach one or more volumes to multiple instances")
		}
		v, err := s.opts.Volumes.Get(ctx, c.volume(), bd.SourceID)
		if trustack.ErrorCode(err) == trustack.ENOTFOUND {
			return InvalidBDM("failed to get volume %s.", bd.SourceID)
		}
		if err != nil {
			return err
		}
		if v.Status != trustack.VolumeAvailable {
			return trustack.Reasonf(trustack.EINVALID, "InvalidVolume", "Invalid volume: volume '%s' status must be 'available'. Currently in '%s'", v.ID, v.Status)
		}
		if bd.BootIndex == 0 && !v.Bootable {
			return trustack.Reasonf(trustack.EINVALID, "InvalidBDMVolumeNotBootable", "Block Device %s is not bootable.", v.ID)
		}
	case SourceSnapshot:
		if _, err := s.opts.Volumes.GetSnapshot(ctx, c.volume(), bd.SourceID); trustack.ErrorCode(err) == trustack.ENOTFOUND {
			return InvalidBDM("failed to get snapshot %s.", bd.SourceID)
		} else if err != nil {
			return err
		}
	case SourceImage:
		if _, err := s.images.BootImage(ctx, c.ProjectID, bd.SourceID); trustack.ErrorCode(err) == trustack.ENOTFOUND {
			return InvalidBDM("failed to get image %s.", bd.SourceID)
		} else if err != nil {
			return err
		}
		if bd.Size < 1 {
			return InvalidBDM("Images with destination_type 'volume' need to have a non-zero size specified")
		}
	case SourceBlank:
		if bd.Size < 1 {
			return InvalidBDM("Blank volumes need a non-zero size.")
		}
		if bd.BootIndex == 0 {
			return InvalidBDM("Boot sequence for the instance and image/block device mapping combination is not valid.")
		}
	default:
		return InvalidBDM("source type %q: want volume, image, snapshot or blank.", bd.Source)
	}
	return nil
}

// reserveVolumes reserves the volumes a server is made with for it, all
// or none: of two servers made with one volume, one gets it.
func (s *Service) reserveVolumes(ctx context.Context, c Caller, bds []trustack.BlockDevice) error {
	for i, bd := range bds {
		if bd.Source != SourceVolume {
			continue
		}
		if err := s.opts.Volumes.Reserve(ctx, c.volume(), bd.SourceID); err != nil {
			s.unreserveVolumes(ctx, bds[:i])
			return err
		}
	}
	return nil
}

// unreserveVolumes lets go of the volumes reserved for a server that
// was not made, or is gone without having attached them.
func (s *Service) unreserveVolumes(ctx context.Context, bds []trustack.BlockDevice) {
	for _, bd := range bds {
		if bd.VolumeID == "" {
			continue
		}
		if err := s.opts.Volumes.Unreserve(context.WithoutCancel(ctx), system, bd.VolumeID); err != nil {
			s.opts.Log.Warn("let go of a volume reserved for a server", "volume", bd.VolumeID, "error", err)
		}
	}
}

// makeVolumes makes the volumes of a server's block devices that are not
// made yet, each recorded on the server as soon as it is accepted (a
// build taken up again makes none twice), and waits for each volume to
// be ready and reserved for the server.
func (s *Service) makeVolumes(ctx context.Context, srv *trustack.Server) error {
	owner := volume.Caller{UserID: srv.UserID, ProjectID: srv.ProjectID}
	for i := range srv.BlockDevices {
		bd := &srv.BlockDevices[i]
		if bd.VolumeID == "" {
			r := volume.CreateRequest{Size: bd.Size, Type: bd.VolumeType}
			switch bd.Source {
			case SourceImage:
				r.ImageID = bd.SourceID
			case SourceSnapshot:
				r.SnapshotID = bd.SourceID
			}
			v, err := s.opts.Volumes.Create(ctx, owner, r)
			if err != nil {
				return fmt.Errorf("make the volume of block device %d: %w", i, err)
			}
			bd.VolumeID = v.ID
			if _, err := s.store.UpdateServer(ctx, srv.ID, func(cur *trustack.Server) error {
				cur.BlockDevices[i].VolumeID = v.ID
				return nil
			}); err != nil {
				return fmt.Errorf("record volume %s of server %s: %w", v.ID, srv.ID, err)
			}
		}
		if err := s.readyVolume(ctx, srv, bd.VolumeID); err != nil {
			return err
		}
	}
	return nil
}

// readyVolume waits until a volume the server is made with is made, and
// reserves it for the server; one reserved or attached to it already is
// ready.
func (s *Service) readyVolume(ctx context.Context, srv *trustack.Server, id string) error {
	ctx, cancel := context.WithTimeout(ctx, volumeReadyTimeout)
	defer cancel()
	for {
		v, err := s.opts.Volumes.Get(ctx, system, id)
		if err != nil {
			return fmt.Errorf("volume %s: %w", id, err)
		}
		switch {
		case v.Status == trustack.VolumeAvailable:
			return s.opts.Volumes.Reserve(ctx, system, id)
		case v.Status == trustack.VolumeAttaching && v.Attachment.ID == "",
			v.Status == trustack.VolumeInUse && v.Attachment.ServerID == srv.ID:
			return nil
		case v.Status != trustack.VolumeCreating:
			return trustack.Errorf(trustack.EINVALID, "Volume %s is %s, not ready for server %s: %s", id, v.Status, srv.ID, v.Reason)
		}
		select {
		case <-ctx.Done():
			return trustack.Errorf(trustack.EUNAVAILABLE, "Volume %s was not made within %v.", id, volumeReadyTimeout)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// pluggedVolume is a volume as a server's disk on a host.
type pluggedVolume struct {
	v    *trustack.Volume
	disk wire.VolumeDisk
}

// volumeDisks returns a server's volumes as its disks on host, the
// volumes attached to it at their devices and its block devices' not
// attached yet at theirs (bootDevices), each served by its storage host
// over NBD unless that is host. On failure, what was served for it is
// no longer.
func (s *Service) volumeDisks(ctx context.Context, srv *trustack.Server, host string) ([]pluggedVolume, error) {
	if s.opts.Volumes == nil {
		return nil, nil
	}
	attached, err := s.attached(ctx, srv.ID)
	if err != nil {
		return nil, err
	}
	type plug struct {
		v      *trustack.Volume
		device string
	}
	var plugs []plug
	for _, v := range attached {
		plugs = append(plugs, plug{v, strings.TrimPrefix(v.Attachment.Device, "/dev/")})
	}
	devices := bootDevices(srv, attached)
	for _, bd := range srv.BlockDevices {
		device, ok := devices[bd.VolumeID]
		if !ok {
			continue // attached already
		}
		v, err := s.opts.Volumes.Get(ctx, system, bd.VolumeID)
		if err != nil {
			return nil, err
		}
		plugs = append(plugs, plug{v, device})
	}
	var out []pluggedVolume
	for _, p := range plugs {
		disk, err := s.diskOn(ctx, host, p.v, p.device)
		if err != nil {
			s.unexportAll(ctx, host, out)
			return nil, err
		}
		out = append(out, pluggedVolume{p.v, disk})
	}
	return out, nil
}

// bootDevices are the devices of a server's block devices not attached
// yet, by volume ID: its root disk's vda, the others' the next free ones
// in their order, after those attached.
func bootDevices(srv *trustack.Server, attached []*trustack.Volume) map[string]string {
	devices := map[string]string{}
	have := slices.Clone(attached)
	for _, bd := range srv.BlockDevices {
		if slices.ContainsFunc(attached, func(v *trustack.Volume) bool { return v.ID == bd.VolumeID }) {
			continue
		}
		device := wire.RootDevice
		if bd.BootIndex != 0 {
			device, _ = nextDevice(have) // "" past the 16 a server takes: refused when plugged
		}
		devices[bd.VolumeID] = device
		have = append(have, &trustack.Volume{Attachment: trustack.VolumeAttachment{Device: device}})
	}
	return devices
}

// unexportAll has the storage hosts of a server's volumes stop serving
// them to host.
func (s *Service) unexportAll(ctx context.Context, host string, vols []pluggedVolume) {
	for _, p := range vols {
		s.unexport(context.WithoutCancel(ctx), host, p.v)
	}
}

// attachBootVolumes records a server's block devices that are not yet as
// attached to it on its host, at their devices: once it runs with them.
func (s *Service) attachBootVolumes(ctx context.Context, srv *trustack.Server) error {
	if len(srv.BlockDevices) == 0 {
		return nil
	}
	attached, err := s.attached(ctx, srv.ID)
	if err != nil {
		return err
	}
	for id, device := range bootDevices(srv, attached) {
		v, err := s.opts.Volumes.Get(ctx, system, id)
		if err != nil {
			return err
		}
		r := volume.AttachRequest{ServerID: srv.ID, Host: srv.Host, Device: "/dev/" + device, ReadOnly: v.AdminMetadata["readonly"] == "True"}
		if _, err := s.opts.Volumes.Attach(ctx, system, id, r); err != nil {
			return fmt.Errorf("record volume %s attached to server %s: %w", id, srv.ID, err)
		}
	}
	return nil
}

// deleteOnTermination deletes the volumes of a deleted server's block
// devices that asked to go with it, and lets go of those it reserved
// and never attached; its attached volumes were detached already.
func (s *Service) deleteOnTermination(ctx context.Context, srv *trustack.Server) {
	if cur, err := s.store.Server(ctx, srv.ID); err == nil {
		srv = cur // with the volumes its build made meanwhile
	}
	s.unreserveVolumes(ctx, srv.BlockDevices)
	for _, bd := range srv.BlockDevices {
		if bd.VolumeID == "" || !bd.DeleteOnTermination {
			continue
		}
		if err := s.opts.Volumes.Delete(ctx, system, bd.VolumeID, false); err != nil && trustack.ErrorCode(err) != trustack.ENOTFOUND {
			s.opts.Log.Error("delete a deleted server's volume", "server", srv.ID, "volume", bd.VolumeID, "error", err)
		}
	}
}
