package volume

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"

	"github.com/google/uuid"
	"github.com/trustack/trustack"
	"github.com/trustack/trustack/wire"
)

// The attachments of Cinder's attachments API (microversion 3.27), by
// which a compute service outside trustack (another cloud's Nova)
// attaches volumes to its servers, on the one attachment a volume has:
// CreateAttachment reserves an available volume for a server (reserved),
// ConnectAttachment has its storage host serve it over NBD to the
// server's compute host with a key of the attachment's own (attaching),
// CompleteAttachment records that it serves (in-use), and
// DeleteAttachment lets it go (available, no longer served). Each change
// of the attachment is one transaction on the volume's row, so of two
// servers reserving one volume, one wins and the other gets EINVALID.

// Exporter is what the storage hosts' agents may offer besides
// (wire.Hosts does): serving a volume over NBD to the holder of a key,
// and stopping. Without it, attachments can be reserved but not
// connected (EUNAVAILABLE).
type Exporter interface {
	ExportVolume(ctx context.Context, host, backend, volumeID string, key wire.PSK) (wire.NBDExport, error)
	UnexportVolume(ctx context.Context, host, volumeID string) error
}

var _ Exporter = (*wire.Hosts)(nil)

// Attachment is a volume's attachment with the volume it ties.
type Attachment struct {
	trustack.VolumeAttachment
	VolumeID  string
	ProjectID string
	// Mode is how the server may use the volume, rw or ro, once its host
	// is connected or the attachment complete; "" before.
	Mode string
}

// attachmentOf is a volume's attachment, nil if it has none.
func attachmentOf(v *trustack.Volume) *Attachment {
	if v.Attachment.ID == "" {
		return nil
	}
	return &Attachment{VolumeAttachment: v.Attachment, VolumeID: v.ID, ProjectID: v.ProjectID, Mode: v.AdminMetadata["attached_mode"]}
}

// Connector is what a compute host says of itself to be connected to a
// volume: Cinder's connector, of which trustack reads the host, the
// mountpoint and the mode.
type Connector struct {
	Host       string // needed
	Mountpoint string // the device the guest sees, "" if not known
	Mode       string // rw or ro; "" for rw, or ro for a read-only volume
}

// AttachmentFilter selects attachments; empty fields match everything.
type AttachmentFilter struct {
	// ProjectID is the project whose volumes' attachments an
	// administrator lists, "" for every project's; others list their
	// own project's.
	ProjectID string
	VolumeID  string
	ServerID  string
	Status    string
}

// Attachments returns the attachments f selects, of the volumes oldest
// first.
func (s *Service) Attachments(ctx context.Context, c Caller, f AttachmentFilter) ([]*Attachment, error) {
	if !c.Admin {
		f.ProjectID = c.ProjectID
	}
	vf := trustack.VolumeFilter{ProjectID: f.ProjectID}
	if f.VolumeID != "" {
		vf.IDs = []string{f.VolumeID}
	}
	if f.ServerID != "" {
		vf.ServerIDs = []string{f.ServerID}
	}
	list, err := s.store.Volumes(ctx, vf)
	if err != nil {
		return nil, err
	}
	out := []*Attachment{}
	for _, v := range list {
		if a := attachmentOf(v); a != nil && (f.Status == "" || a.Status == f.Status) {
			out = append(out, a)
		}
	}
	return out, nil
}

// GetAttachment returns an attachment of a volume the caller may see;
// ENOTFOUND (VolumeAttachmentNotFound) otherwise.
func (s *Service) GetAttachment(ctx context.Context, c Caller, id string) (*Attachment, error) {
	v, err := s.attachmentVolume(ctx, c, id)
	if err != nil {
		return nil, err
	}
	return attachmentOf(v), nil
}

// attachmentVolume returns the volume of an attachment the caller may
// see; ENOTFOUND (VolumeAttachmentNotFound).
func (s *Service) attachmentVolume(ctx context.Context, c Caller, id string) (*trustack.Volume, error) {
	if id != "" {
		list, err := s.store.Volumes(ctx, trustack.VolumeFilter{AttachmentID: id})
		if err != nil {
			return nil, err
		}
		if len(list) == 1 && (c.Admin || list[0].ProjectID == c.ProjectID) {
			return list[0], nil
		}
	}
	return nil, attachmentNotFound(id)
}

func attachmentNotFound(id string) error {
	return trustack.Reasonf(trustack.ENOTFOUND, "VolumeAttachmentNotFound", "Volume attachment could not be found with filter: attachment_id = %s.", id)
}

// CreateAttachment reserves an available volume of the caller's for a
// server (the volume and the attachment reserved), then, given a
// connector, connects its host as ConnectAttachment does, and returns
// the attachment. EINVALID (InvalidVolume) for a volume in error or not
// available, a volume reserved or attached among them; whatever fails
// the connection leaves the volume as it was.
func (s *Service) CreateAttachment(ctx context.Context, c Caller, volumeID, serverID string, conn *Connector) (*Attachment, error) {
	if conn != nil {
		if err := s.checkConnector(*conn); err != nil {
			return nil, err
		}
	}
	var out *Attachment
	err := s.transition(ctx, c, volumeID, func(v *trustack.Volume) error {
		if strings.Contains(v.Status, trustack.VolumeError) {
			return trustack.Reasonf(trustack.EINVALID, "InvalidVolume",
				"Invalid volume: Volume attachments can not be created if the volume is in an error state. The Volume %s currently has a status of: %s.", volumeID, v.Status)
		}
		if v.Status != trustack.VolumeAvailable {
			return trustack.Reasonf(trustack.EINVALID, "InvalidVolume",
				"Invalid volume: Volume %s status must be available or downloading to reserve, but the current status is %s.", volumeID, v.Status)
		}
		v.Status = trustack.VolumeReserved
		v.Attachment = trustack.VolumeAttachment{ID: uuid.NewString(), ServerID: serverID, Status: trustack.AttachReserved,
			CreatedAt: s.opts.Now().UTC()}
		out = attachmentOf(v)
		return nil
	})
	if err != nil || conn == nil {
		return out, err
	}
	connected, err := s.ConnectAttachment(ctx, c, out.ID, *conn)
	if err != nil {
		// Nothing was reserved, as far as the caller knows.
		s.transition(context.WithoutCancel(ctx), c, volumeID, func(v *trustack.Volume) error {
			if v.Attachment.ID == out.ID && v.Attachment.Status == trustack.AttachReserved {
				letGo(v)
			}
			return nil
		})
		return nil, err
	}
	return connected, nil
}

// checkConnector refuses a connector without a host or with a mode
// other than rw or ro (EINVALID), and answers EUNAVAILABLE when the
// storage hosts cannot serve volumes to other hosts.
func (s *Service) checkConnector(conn Connector) error {
	if conn.Host == "" {
		return trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Invalid input received: the connector must name the compute host (host).")
	}
	if conn.Mode != "" && conn.Mode != "rw" && conn.Mode != "ro" {
		return trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Invalid input received: the connector's mode must be rw or ro, not %q.", conn.Mode)
	}
	if _, ok := s.storage.(Exporter); !ok {
		return trustack.Errorf(trustack.EUNAVAILABLE, "The storage hosts of this cloud serve no volumes to other hosts.")
	}
	return nil
}

// ConnectAttachment has a reserved (or attaching) attachment's volume
// served over NBD to the compute host conn names, with a pre-shared key
// of the attachment's own that the attachment then carries, the volume
// and the attachment attaching; and returns it. The mode is the
// connector's, rw by default, ro for a read-only volume: EINVALID
// (InvalidVolumeAttachMode) for rw asked of a read-only volume.
// ENOTFOUND (VolumeAttachmentNotFound); EINVALID (InvalidVolume) for an
// attachment complete or being let go, or a volume in error; the
// storage host's error, EUNAVAILABLE for one down, with nothing changed.
// Connecting again serves the volume with the same key.
func (s *Service) ConnectAttachment(ctx context.Context, c Caller, id string, conn Connector) (*Attachment, error) {
	if err := s.checkConnector(conn); err != nil {
		return nil, err
	}
	v, err := s.attachmentVolume(ctx, c, id)
	if err != nil {
		return nil, err
	}
	// The key is claimed first, so that connections made at the same
	// time serve the volume with the one key they all record.
	var key wire.PSK
	var mode string
	err = s.onAttachment(ctx, c, v.ID, id, func(v *trustack.Volume) error {
		a := &v.Attachment
		switch {
		case strings.Contains(v.Status, trustack.VolumeError):
			return trustack.Reasonf(trustack.EINVALID, "InvalidVolume",
				"Invalid volume: Volume attachments can not be updated if the volume is in an error state. The Volume %s currently has a status of: %s.", v.ID, v.Status)
		case a.Status != trustack.AttachReserved && a.Status != trustack.AttachAttaching:
			return trustack.Reasonf(trustack.EINVALID, "InvalidVolume", "Invalid volume: attachment %s of volume %s is %s; only a reserved or attaching attachment is connected.", id, v.ID, a.Status)
		}
		readOnly := v.AdminMetadata["readonly"] == "True"
		switch mode = conn.Mode; {
		case mode == "rw" && readOnly:
			return trustack.Reasonf(trustack.EINVALID, "InvalidVolumeAttachMode", "Invalid attaching mode 'rw' for volume %s.", v.ID)
		case mode == "" && readOnly:
			mode = "ro"
		case mode == "":
			mode = "rw"
		}
		if host, _ := hostAndBackend(v); host == "" {
			return trustack.Reasonf(trustack.EINVALID, "InvalidVolume", "Invalid volume: Volume %s has no storage host.", v.ID)
		}
		if a.Connection == nil {
			secret := make([]byte, 32)
			rand.Read(secret)
			a.Connection = &trustack.VolumeConnection{PSKIdentity: "trustack-" + v.ID, PSKSecret: hex.EncodeToString(secret)}
		}
		key = wire.PSK{Identity: a.Connection.PSKIdentity, Secret: a.Connection.PSKSecret}
		return nil
	})
	if err != nil {
		return nil, err
	}
	host, backend := hostAndBackend(v)
	var ex wire.NBDExport
	err = s.onHost(ctx, host, func(ctx context.Context) error {
		var err error
		ex, err = s.storage.(Exporter).ExportVolume(ctx, host, backend, v.ID, key)
		return err
	})
	if err != nil {
		return nil, err
	}
	var out *Attachment
	err = s.onAttachment(ctx, c, v.ID, id, func(v *trustack.Volume) error {
		a := &v.Attachment
		if a.Status != trustack.AttachReserved && a.Status != trustack.AttachAttaching || a.Connection == nil || a.Connection.PSKSecret != key.Secret {
			return trustack.Reasonf(trustack.ECONFLICT, "InvalidVolume", "Attachment %s of volume %s changed while it was connected.", id, v.ID)
		}
		v.Status, a.Status, a.Host, a.Device = trustack.VolumeAttaching, trustack.AttachAttaching, conn.Host, conn.Mountpoint
		a.Connection = &trustack.VolumeConnection{Host: ex.Host, Port: ex.Port, Name: ex.Name, PSKIdentity: key.Identity, PSKSecret: key.Secret}
		setAdmin(v, "attached_mode", mode)
		out = attachmentOf(v)
		return nil
	})
	if trustack.ErrorCode(err) == trustack.ENOTFOUND {
		// Let go meanwhile: the volume serves nobody.
		s.stopServing(context.WithoutCancel(ctx), v)
	}
	return out, err
}

// CompleteAttachment records that an attachment's volume serves its
// server: the attachment attached, the volume in use, as Cinder's
// os-complete, whatever they were. ENOTFOUND (VolumeAttachmentNotFound).
func (s *Service) CompleteAttachment(ctx context.Context, c Caller, id string) error {
	v, err := s.attachmentVolume(ctx, c, id)
	if err != nil {
		return err
	}
	return s.onAttachment(ctx, c, v.ID, id, func(v *trustack.Volume) error {
		v.Status, v.Attachment.Status = trustack.VolumeInUse, trustack.AttachAttached
		if v.Attachment.AttachedAt.IsZero() {
			v.Attachment.AttachedAt = s.opts.Now().UTC()
		}
		if v.AdminMetadata["attached_mode"] == "" {
			mode := "rw"
			if v.AdminMetadata["readonly"] == "True" {
				mode = "ro"
			}
			setAdmin(v, "attached_mode", mode)
		}
		return nil
	})
}

// DeleteAttachment lets an attachment go, whatever its status: its
// volume's storage host stops serving the volume to the attachment's
// compute host, then the volume is available. ENOTFOUND
// (VolumeAttachmentNotFound); the storage host's error, with nothing
// changed, if it cannot stop.
func (s *Service) DeleteAttachment(ctx context.Context, c Caller, id string) error {
	v, err := s.attachmentVolume(ctx, c, id)
	if err != nil {
		return err
	}
	if v.Attachment.Connection != nil && v.Attachment.Connection.Host != "" {
		host, _ := hostAndBackend(v)
		err := s.onHost(ctx, host, func(ctx context.Context) error { return s.storage.(Exporter).UnexportVolume(ctx, host, v.ID) })
		if err != nil {
			return err
		}
	}
	return s.onAttachment(ctx, c, v.ID, id, func(v *trustack.Volume) error {
		letGo(v)
		return nil
	})
}

// onAttachment changes, with fn, the volume of an attachment that it
// still has, in one transaction; ENOTFOUND (VolumeAttachmentNotFound)
// once it has it no more.
func (s *Service) onAttachment(ctx context.Context, c Caller, volumeID, id string, fn func(*trustack.Volume) error) error {
	err := s.transition(ctx, c, volumeID, func(v *trustack.Volume) error {
		if v.Attachment.ID != id {
			return attachmentNotFound(id)
		}
		return fn(v)
	})
	if trustack.ErrorCode(err) == trustack.ENOTFOUND && trustack.ErrorReason(err) == "VolumeNotFound" {
		return attachmentNotFound(id)
	}
	return err
}

// stopServing has a volume's storage host stop serving it over NBD; a
// failure is logged, as an export serves nobody without its key.
func (s *Service) stopServing(ctx context.Context, v *trustack.Volume) {
	ex, ok := s.storage.(Exporter)
	host, _ := hostAndBackend(v)
	if !ok || host == "" {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.AgentTimeout)
	defer cancel()
	if err := ex.UnexportVolume(ctx, host, v.ID); err != nil {
		s.opts.Log.Warn("stop serving a detached volume", "volume", v.ID, "host", host, "error", err)
	}
}
