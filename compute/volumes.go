package compute

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/trustack/trustack"
	"github.com/trustack/trustack/volume"
	"github.com/trustack/trustack/wire"
)

// Volumes is what compute needs of the block storage service;
// volume.Service is one.
type Volumes interface {
	Get(ctx context.Context, c volume.Caller, id string) (*trustack.Volume, error)
	List(ctx context.Context, c volume.Caller, f trustack.VolumeFilter) ([]*trustack.Volume, error)
	Reserve(ctx context.Context, c volume.Caller, id string) error
	Unreserve(ctx context.Context, c volume.Caller, id string) error
	Attach(ctx context.Context, c volume.Caller, id string, r volume.AttachRequest) (*trustack.Volume, error)
	BeginDetaching(ctx context.Context, c volume.Caller, id string) error
	RollDetaching(ctx context.Context, c volume.Caller, id string) error
	Detach(ctx context.Context, c volume.Caller, id, attachmentID string) error
	ForceDetach(ctx context.Context, c volume.Caller, id, attachmentID string) error
	MoveAttachment(ctx context.Context, c volume.Caller, id, attachmentID, host string) error
	Create(ctx context.Context, c volume.Caller, r volume.CreateRequest) (*trustack.Volume, error)
	Delete(ctx context.Context, c volume.Caller, id string, cascade bool) error
	GetSnapshot(ctx context.Context, c volume.Caller, id string) (*trustack.VolumeSnapshot, error)
}

// errNoVolumes answers the volume calls of a cloud without block storage.
var errNoVolumes = trustack.Errorf(trustack.EINVALID, "This cloud has no block storage service: servers have no volumes.")

// volume is the caller as the block storage service knows callers.
func (c Caller) volume() volume.Caller {
	return volume.Caller{UserID: c.UserID, ProjectID: c.ProjectID, Admin: c.Admin}
}

// system is the compute service itself, for the block storage service.
var system = volume.Caller{Admin: true}

// attachableStates are the states of a server that takes and gives back
// volumes, as Nova's.
var attachableStates = []string{trustack.VMActive, trustack.VMPaused, trustack.VMStopped}

// Volumes returns the volumes attached to a server, by device.
func (s *Service) Volumes(ctx context.Context, c Caller, id string) ([]*trustack.Volume, error) {
	if s.opts.Volumes == nil {
		return nil, nil
	}
	srv, err := s.Server(ctx, c, id)
	if err != nil {
		return nil, err
	}
	return s.attached(ctx, srv.ID)
}

// attached returns the volumes attached to a server, by device.
func (s *Service) attached(ctx context.Context, serverID string) ([]*trustack.Volume, error) {
	list, err := s.opts.Volumes.List(ctx, system, trustack.VolumeFilter{ServerIDs: []string{serverID}})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(list, byDevice)
	return list, nil
}

func byDevice(a, b *trustack.Volume) int {
	return strings.Compare(a.Attachment.Device, b.Attachment.Device)
}

// VolumesOf returns the IDs of the volumes attached to servers, by server
// ID and in each by device, in one read.
func (s *Service) VolumesOf(ctx context.Context, servers ...*trustack.Server) (map[string][]string, error) {
	out := map[string][]string{}
	if s.opts.Volumes == nil || len(servers) == 0 {
		return out, nil
	}
	ids := make([]string, len(servers))
	for i, srv := range servers {
		ids[i] = srv.ID
	}
	list, err := s.opts.Volumes.List(ctx, system, trustack.VolumeFilter{ServerIDs: ids})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(list, byDevice)
	for _, v := range list {
		out[v.Attachment.ServerID] = append(out[v.Attachment.ServerID], v.ID)
	}
	return out, nil
}

// AttachVolume attaches a volume of the caller's to a server of theirs at
// the next free device (a device a client names is a hint Nova too may
// not follow: the guest names its disks in the order they come), plugged
// into the server before it returns, and returns the volume.
// Its storage host serves it over NBD with a key of this attachment's
// own, unless the server runs on that very host, which opens it directly.
// Of two servers attaching one volume, one wins and the other gets
// EINVALID (InvalidVolume), as the volume was reserved for the first. A
// server being built, moved or deleted is ECONFLICT.
func (s *Service) AttachVolume(ctx context.Context, c Caller, id, volumeID string) (*trustack.Volume, error) {
	if s.opts.Volumes == nil {
		return nil, errNoVolumes
	}
	srv, err := s.placed(ctx, c, id)
	if err != nil {
		return nil, err
	}
	if srv.TaskState != "" || !slices.Contains(attachableStates, srv.VMState) {
		return nil, invalidState(srv, "attach_volume")
	}
	v, err := s.opts.Volumes.Get(ctx, c.volume(), volumeID)
	if err != nil {
		return nil, err
	}
	if err := s.opts.Volumes.Reserve(ctx, c.volume(), volumeID); err != nil {
		return nil, err
	}
	disk, err := s.plugVolume(ctx, srv, v)
	if err != nil {
		s.opts.Volumes.Unreserve(context.WithoutCancel(ctx), c.volume(), volumeID)
		return nil, err
	}
	v, err = s.opts.Volumes.Attach(ctx, c.volume(), volumeID, volume.AttachRequest{ServerID: srv.ID, Host: srv.Host,
		Device: "/dev/" + disk.Device, ReadOnly: disk.ReadOnly})
	if err != nil {
		s.unplugVolume(context.WithoutCancel(ctx), srv, v, disk.Device)
		s.opts.Volumes.Unreserve(context.WithoutCancel(ctx), c.volume(), volumeID)
		return nil, err
	}
	s.record(ctx, c, id, "attach_volume")
	return v, nil
}

// plugVolume chooses a reserved volume's device on the server and plugs
// it in there.
func (s *Service) plugVolume(ctx context.Context, srv *trustack.Server, v *trustack.Volume) (wire.VolumeDisk, error) {
	have, err := s.attached(ctx, srv.ID)
	if err != nil {
		return wire.VolumeDisk{}, err
	}
	device, err := nextDevice(have)
	if err != nil {
		return wire.VolumeDisk{}, err
	}
	disk, err := s.diskOn(ctx, srv.Host, v, device)
	if err != nil {
		return disk, err
	}
	err = s.reach(ctx, srv.Host, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, s.opts.AgentTimeout)
		defer cancel()
		return s.agents.AttachVolume(ctx, srv.Host, srv.ID, disk)
	})
	if err != nil {
		s.unexport(context.WithoutCancel(ctx), srv.Host, v)
	}
	return disk, err
}

// diskOn describes a volume as a server's disk at device on host: opened
// where it is on its own storage host, else served by that host over NBD
// with a key of this attachment's own.
func (s *Service) diskOn(ctx context.Context, host string, v *trustack.Volume, device string) (wire.VolumeDisk, error) {
	disk := wire.VolumeDisk{VolumeID: v.ID, Device: device, ReadOnly: v.AdminMetadata["readonly"] == "True"}
	storage, backend := volume.Location(v)
	if storage == "" {
		return disk, trustack.Reasonf(trustack.EINVALID, "InvalidVolume", "Volume %s has no storage host.", v.ID)
	}
	if storage == host {
		disk.Backend = backend
		return disk, nil
	}
	ex, err := s.exportVolume(ctx, storage, backend, v.ID)
	disk.NBD = &ex
	return disk, err
}

// exportVolume has a storage host serve a volume to the holder of a new
// key.
func (s *Service) exportVolume(ctx context.Context, host, backend, volumeID string) (wire.NBDExport, error) {
	secret := make([]byte, 32)
	rand.Read(secret)
	key := wire.PSK{Identity: "trustack-" + volumeID, Secret: hex.EncodeToString(secret)}
	var ex wire.NBDExport
	err := s.reach(ctx, host, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, s.opts.AgentTimeout)
		defer cancel()
		var err error
		ex, err = s.agents.ExportVolume(ctx, host, backend, volumeID, key)
		return err
	})
	return ex, err
}

// nextDevice is the first virtio device after the server's own disk
// (vda) and config drive (vdb) that no volume has, vdc to vdr: a server
// takes 16 volumes at most (EINVALID beyond).
func nextDevice(attached []*trustack.Volume) (string, error) {
	used := map[string]bool{}
	for _, v := range attached {
		used[strings.TrimPrefix(v.Attachment.Device, "/dev/")] = true
	}
	for c := 'c'; c <= 'r'; c++ {
		if name := fmt.Sprintf("vd%c", c); !used[name] {
			return name, nil
		}
	}
	return "", trustack.Reasonf(trustack.EINVALID, "TooManyVolumes", "A server takes at most 16 volumes.")
}

// DetachVolume detaches a volume from a server: the guest lets the
// device go (the volume is back in use if it does not in time), the
// storage host stops serving it, and the volume is available. ENOTFOUND
// (VolumeAttachmentNotFound) for a volume not attached to the server.
func (s *Service) DetachVolume(ctx context.Context, c Caller, id, volumeID string) error {
	if s.opts.Volumes == nil {
		return errNoVolumes
	}
	srv, err := s.placed(ctx, c, id)
	if err != nil {
		return err
	}
	if srv.TaskState != "" || !slices.Contains(attachableStates, srv.VMState) {
		return invalidState(srv, "detach_volume")
	}
	v, err := s.opts.Volumes.Get(ctx, c.volume(), volumeID)
	if err != nil {
		return err
	}
	if v.Attachment.ServerID != srv.ID {
		return trustack.Reasonf(trustack.ENOTFOUND, "VolumeAttachmentNotFound", "Volume %s is not attached to server %s.", volumeID, id)
	}
	if root := srv.Root(); root != nil && root.VolumeID == volumeID {
		return trustack.Errorf(trustack.EINVALID, "Cannot detach a root device volume")
	}
	if err := s.opts.Volumes.BeginDetaching(ctx, c.volume(), volumeID); err != nil {
		return err
	}
	if err := s.unplugVolume(ctx, srv, v, strings.TrimPrefix(v.Attachment.Device, "/dev/")); err != nil {
		s.opts.Volumes.RollDetaching(context.WithoutCancel(ctx), c.volume(), volumeID)
		return err
	}
	if err := s.opts.Volumes.Detach(ctx, c.volume(), volumeID, v.Attachment.ID); err != nil {
		return err
	}
	s.record(ctx, c, id, "detach_volume")
	return nil
}

// unplugVolume unplugs a volume from a server, then has its storage host
// stop serving it.
func (s *Service) unplugVolume(ctx context.Context, srv *trustack.Server, v *trustack.Volume, device string) error {
	err := s.reach(ctx, srv.Host, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, s.opts.AgentTimeout)
		defer cancel()
		return s.agents.DetachVolume(ctx, srv.Host, srv.ID, device)
	})
	if err != nil {
		return err
	}
	s.unexport(ctx, srv.Host, v)
	return nil
}

// unexport has a volume's storage host stop serving it to a server's
// host, unless that host is its own; a failure is logged, as the export
// serves nothing without its client.
func (s *Service) unexport(ctx context.Context, serverHost string, v *trustack.Volume) {
	storage, _ := volume.Location(v)
	if storage == "" || storage == serverHost {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.AgentTimeout)
	defer cancel()
	if err := s.agents.UnexportVolume(ctx, storage, v.ID); err != nil {
		s.opts.Log.Warn("stop serving a detached volume", "volume", v.ID, "host", storage, "error", err)
	}
}

// VolumeExtended has the server a volume is attached to see the volume at
// its new size, which its storage host has grown it to, as Nova does on
// Cinder's volume-extended event: a running guest sees its disk grow at
// once, a stopped one when it starts. It is recorded as the server's
// extend_volume action, with a compute_extend_volume event saying how it
// went. ENOTFOUND for a server that is gone.
func (s *Service) VolumeExtended(ctx context.Context, v *trustack.Volume) error {
	srv, err := s.store.Server(ctx, v.Attachment.ServerID)
	if err != nil {
		return err
	}
	c := Caller{UserID: srv.UserID, ProjectID: srv.ProjectID, RequestID: "req-" + uuid.NewString()}
	s.record(ctx, c, srv.ID, "extend_volume")
	start := s.opts.Now().UTC()
	err = s.reach(ctx, srv.Host, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, s.opts.AgentTimeout)
		defer cancel()
		return s.agents.GrowVolume(ctx, srv.Host, srv.ID, strings.TrimPrefix(v.Attachment.Device, "/dev/"), v.Size)
	})
	s.finishEvent(ctx, srv.ID, c.RequestID, "compute_extend_volume", srv.Host, start, err)
	return err
}

// releaseVolumes lets a deleted server's volumes go: each available
// again, no longer served to its host, and deleted if it was to go with
// the server.
func (s *Service) releaseVolumes(ctx context.Context, srv *trustack.Server) {
	if s.opts.Volumes == nil {
		return
	}
	list, err := s.attached(ctx, srv.ID)
	if err != nil {
		s.opts.Log.Error("find the volumes of a deleted server", "server", srv.ID, "error", err)
		return
	}
	for _, v := range list {
		s.unexport(ctx, srv.Host, v)
		if err := s.opts.Volumes.ForceDetach(ctx, system, v.ID, v.Attachment.ID); err != nil {
			s.opts.Log.Error("detach a deleted server's volume", "server", srv.ID, "volume", v.ID, "error", err)
		}
	}
	s.deleteOnTermination(ctx, srv)
}
