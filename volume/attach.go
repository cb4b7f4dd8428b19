package volume

import (
	"context"
	"strconv"

	"github.com/google/uuid"
	"github.com/trustack/trustack"
)

// The steps of an attachment, as Cinder's actions name them and as the
// compute service takes them: Reserve holds an available volume for a
// server (attaching), Attach records where it serves (in-use), and
// Unreserve lets go of a reservation that came to nothing; BeginDetaching
// marks an attached volume as being let go (detaching), RollDetaching
// takes that back, and Detach makes it available again. Each is one
// transaction on the volume's row, so of two servers reserving one
// volume, one wins and the other gets EINVALID. A volume Reserve holds is
// attaching, as Cinder's os-reserve leaves it; the attachments API
// (attachments.go) holds one as reserved, with an attachment, as
// Cinder's attachment_create does.

// Reserve holds an available volume for an attachment: EINVALID
// (InvalidVolume) unless it is available.
func (s *Service) Reserve(ctx context.Context, c Caller, id string) error {
	return s.transition(ctx, c, id, func(v *trustack.Volume) error {
		if v.Status != trustack.VolumeAvailable {
			return trustack.Reasonf(trustack.EINVALID, "InvalidVolume", "Invalid volume: Volume %s status must be available to reserve, but the status is %s.", id, v.Status)
		}
		v.Status = trustack.VolumeAttaching
		return nil
	})
}

// Unreserve makes a reserved volume available again; one not reserved
// is left as it is.
func (s *Service) Unreserve(ctx context.Context, c Caller, id string) error {
	return s.transition(ctx, c, id, func(v *trustack.Volume) error {
		if v.Status == trustack.VolumeAttaching && v.Attachment.ID == "" {
			v.Status = trustack.VolumeAvailable
		}
		return nil
	})
}

// AttachRequest says where a volume serves.
type AttachRequest struct {
	ServerID string
	Host     string // the server's compute host
	Device   string // "/dev/vdb"
	ReadOnly bool   // attached read-only (mode "ro")
}

// Attach records that a volume, reserved or available, serves a server
// (in-use), and returns it. EINVALID (InvalidVolume) for a volume in
// another status, or attached read-write while it is read-only.
func (s *Service) Attach(ctx context.Context, c Caller, id string, r AttachRequest) (*trustack.Volume, error) {
	var out *trustack.Volume
	err := s.transition(ctx, c, id, func(v *trustack.Volume) error {
		if v.Status != trustack.VolumeAttaching && v.Status != trustack.VolumeAvailable || v.Attachment.ID != "" {
			return trustack.Reasonf(trustack.EINVALID, "InvalidVolume", "Invalid volume: Volume %s status must be available or attaching to attach, but the status is %s.", id, v.Status)
		}
		if v.AdminMetadata["readonly"] == "True" && !r.ReadOnly {
			return trustack.Reasonf(trustack.EINVALID, "InvalidVolumeAttachMode", "Invalid attaching mode 'rw' for volume %s: it is read-only.", id)
		}
		mode := "rw"
		if r.ReadOnly {
			mode = "ro"
		}
		setAdmin(v, "attached_mode", mode)
		v.Status = trustack.VolumeInUse
		now := s.opts.Now().UTC()
		v.Attachment = trustack.VolumeAttachment{ID: uuid.NewString(), ServerID: r.ServerID, Host: r.Host, Device: r.Device,
			Status: trustack.AttachAttached, CreatedAt: now, AttachedAt: now}
		out = v
		return nil
	})
	s.noteAttach(ctx, id, err)
	return out, err
}

// BeginDetaching marks an attached volume as being let go: EINVALID
// (InvalidVolume) unless it is in use.
func (s *Service) BeginDetaching(ctx context.Context, c Caller, id string) error {
	return s.transition(ctx, c, id, func(v *trustack.Volume) error {
		if v.Status != trustack.VolumeInUse {
			return trustack.Reasonf(trustack.EINVALID, "InvalidVolume", "Invalid volume: Unable to detach volume. Volume status must be 'in-use' and attach_status must be 'attached' to detach.")
		}
		v.Status = trustack.VolumeDetaching
		return nil
	})
}

// RollDetaching puts a volume being let go back in use; one not being
// let go is left as it is.
func (s *Service) RollDetaching(ctx context.Context, c Caller, id string) error {
	return s.transition(ctx, c, id, func(v *trustack.Volume) error {
		if v.Status == trustack.VolumeDetaching {
			v.Status = trustack.VolumeInUse
		}
		return nil
	})
}

// Detach ends a volume's attachment (attachmentID, or whichever it has
// for ""): the volume is available again. A volume attached to nothing
// is left as it is, as detaching it again asks for what holds already;
// ENOTFOUND (VolumeAttachmentNotFound) for an attachment it does not
// have. EINVALID (InvalidVolume) for a volume held in maintenance.
func (s *Service) Detach(ctx context.Context, c Caller, id, attachmentID string) error {
	return s.detach(ctx, c, id, attachmentID, false)
}

// ForceDetach is Detach for an administrator, whatever the volume's
// status: for a server that is gone, say.
func (s *Service) ForceDetach(ctx context.Context, c Caller, id, attachmentID string) error {
	return s.detach(ctx, c, id, attachmentID, true)
}

func (s *Service) detach(ctx context.Context, c Caller, id, attachmentID string, force bool) error {
	var was trustack.Volume // the volume before, to stop serving its connection
	err := s.transition(ctx, c, id, func(v *trustack.Volume) error {
		was = *v
		switch {
		case attachmentID != "" && attachmentID != v.Attachment.ID:
			return trustack.Reasonf(trustack.ENOTFOUND, "VolumeAttachmentNotFound", "Volume attachment %s of volume %s could not be found.", attachmentID, id)
		case v.Attachment.ID == "":
			return nil
		case v.Status == trustack.VolumeMaintenance && !force:
			return trustack.Reasonf(trustack.EINVALID, "InvalidVolume", "Invalid volume: Volume %s is in maintenance.", id)
		}
		letGo(v)
		return nil
	})
	if err == nil && was.Attachment.Connection != nil {
		s.stopServing(ctx, &was)
	}
	return err
}

// MoveAttachment records that an attached volume serves its server from
// another compute host, the server having moved there. ENOTFOUND
// (VolumeAttachmentNotFound) for an attachment the volume does not have.
func (s *Service) MoveAttachment(ctx context.Context, c Caller, id, attachmentID, host string) error {
	return s.transition(ctx, c, id, func(v *trustack.Volume) error {
		if v.Attachment.ID == "" || v.Attachment.ID != attachmentID {
			return trustack.Reasonf(trustack.ENOTFOUND, "VolumeAttachmentNotFound", "Volume attachment %s of volume %s could not be found.", attachmentID, id)
		}
		v.Attachment.Host = host
		return nil
	})
}

// letGo makes a volume available with no attachment.
func letGo(v *trustack.Volume) {
	v.Status, v.Attachment = trustack.VolumeAvailable, trustack.VolumeAttachment{}
	delete(v.AdminMetadata, "attached_mode")
}

// SetReadOnly sets whether an available volume may be attached only
// read-only.
func (s *Service) SetReadOnly(ctx context.Context, c Caller, id string, readOnly bool) error {
	return s.transition(ctx, c, id, func(v *trustack.Volume) error {
		if v.Status != trustack.VolumeAvailable {
			return trustack.Reasonf(trustack.EINVALID, "InvalidVolume", "Invalid volume: Volume %s status must be available to change its read-only flag, but the status is %s.", id, v.Status)
		}
		setAdmin(v, "readonly", strconv.FormatBool(readOnly))
		return nil
	})
}

// setAdmin sets a key of a volume's administrative metadata, with
// Python's spelling of booleans as Cinder's ("True").
func setAdmin(v *trustack.Volume, key, value string) {
	if v.AdminMetadata == nil {
		v.AdminMetadata = map[string]string{}
	}
	switch value {
	case "true":
		value = "True"
	case "false":
		value = "False"
	}
	v.AdminMetadata[key] = value
}

// transition changes a volume the caller may see with fn, in one
// transaction.
func (s *Service) transition(ctx context.Context, c Caller, id string, fn func(*trustack.Volume) error) error {
	if _, err := s.Get(ctx, c, id); err != nil {
		return err
	}
	_, err := s.store.UpdateVolume(ctx, id, nil, func(v *trustack.Volume) error {
		if err := fn(v); err != nil {
			return err
		}
		v.UpdatedAt = s.opts.Now().UTC()
		return nil
	})
	return err
}
