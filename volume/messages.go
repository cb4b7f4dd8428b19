package volume

import (
	"context"

	"github.com/google/uuid"
	"github.com/trustack/trustack"
)

// User messages: a request the API accepted may fail afterwards, on a
// storage host or for want of one, and a user who sees a volume in error
// asks why. As Cinder's, the service leaves a message then, by the IDs
// of what was being done and of what went wrong, never with the error
// itself (which names hosts and paths); operators have that in the
// volume's reason and the log. Messages live for trustack.VolumeMessageTTL.

// Cinder's action IDs (trustack.MessageActions) of the failures the
// service notes.
const (
	actionScheduleAllocate = "001"
	actionAttach           = "002"
	actionCopyToImage      = "003"
	actionCopyImage        = "005"
	actionExtend           = "007"
	actionCreateOnBackend  = "008"
	actionCreateSnapshot   = "009"
	actionDeleteSnapshot   = "010"
)

// Cinder's detail IDs (trustack.MessageDetails) of those failures.
const (
	detailUnknown        = "001"
	detailNoBackend      = "003"
	detailUploadFailed   = "004"
	detailAttachMode     = "005"
	detailExtendFailed   = "010"
	detailCreateFailed   = "012"
	detailSnapshotFailed = "013"
	detailSnapshotDelete = "016"
)

// requestIDKey is where a context holds the ID of the API request it
// serves.
type requestIDKey struct{}

// WithRequestID returns ctx carrying the ID of the API request it serves
// ("req-..."), for the messages a failure of that request leaves.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// requestID is the ID of the request ctx serves, or a new one of the
// service's own for work going on in the background, whose request is
// gone.
func requestID(ctx context.Context) string {
	if id, _ := ctx.Value(requestIDKey{}).(string); id != "" {
		return id
	}
	return "req-" + uuid.NewString()
}

// note leaves a message for the project about a resource of its. A
// message that cannot be stored is logged: the failure it is about is
// what matters.
func (s *Service) note(ctx context.Context, projectID, resourceType, resourceID, action, detail string) {
	m := trustack.NewVolumeMessage(uuid.NewString(), projectID, requestID(ctx), resourceType, resourceID, action, detail, s.opts.Now().UTC())
	if err := s.store.CreateVolumeMessage(ctx, m); err != nil {
		s.opts.Log.Error("leave a user message", "event", m.EventID, "resource", resourceID, "error", err)
	}
}

// noteUnplaced leaves a message for a volume that Create left in error
// because no backend could take it.
func (s *Service) noteUnplaced(ctx context.Context, v *trustack.Volume) {
	if v.Status == trustack.VolumeError {
		s.note(ctx, v.ProjectID, trustack.VolumeResource, v.ID, actionScheduleAllocate, detailNoBackend)
	}
}

// noteFailure leaves a message for a volume whose storage host failed
// what its status (creating, extending or uploading) says was going on;
// as Cinder's, a deletion that fails leaves none (the volume's status,
// error_deleting, says it).
func (s *Service) noteFailure(ctx context.Context, v *trustack.Volume, status string) {
	action, detail := actionCreateOnBackend, detailCreateFailed
	switch status {
	case trustack.VolumeCreating:
		if v.ImageID != "" && v.SnapshotID == "" {
			action, detail = actionCopyImage, detailUnknown
		}
	case trustack.VolumeExtending:
		action, detail = actionExtend, detailExtendFailed
	case trustack.VolumeUploading:
		action, detail = actionCopyToImage, detailUploadFailed
	default:
		return
	}
	s.note(ctx, v.ProjectID, trustack.VolumeResource, v.ID, action, detail)
}

// noteSnapshotFailure leaves a message for a snapshot whose storage host
// failed to take it (status creating) or to delete it.
func (s *Service) noteSnapshotFailure(ctx context.Context, snap *trustack.VolumeSnapshot, status string) {
	action, detail := actionDeleteSnapshot, detailSnapshotDelete
	if status == trustack.SnapshotCreating {
		action, detail = actionCreateSnapshot, detailSnapshotFailed
	}
	s.note(ctx, snap.ProjectID, trustack.SnapshotResource, snap.ID, action, detail)
}

// noteAttach leaves a message for a volume an attachment failed for its
// mode (err, Attach's error, is InvalidVolumeAttachMode), as Cinder's.
func (s *Service) noteAttach(ctx context.Context, id string, err error) {
	if trustack.ErrorReason(err) != "InvalidVolumeAttachMode" {
		return
	}
	if v, err := s.store.Volume(ctx, id); err == nil {
		s.note(ctx, v.ProjectID, trustack.VolumeResource, v.ID, actionAttach, detailAttachMode)
	}
}

// Messages returns the messages matching f that have not expired, oldest
// first: the caller's project's, or for an administrator every project's
// unless f names one. The expired ones are deleted first.
func (s *Service) Messages(ctx context.Context, c Caller, f trustack.VolumeMessageFilter) ([]*trustack.VolumeMessage, error) {
	if !c.Admin {
		f.ProjectID = c.ProjectID
	}
	now := s.opts.Now().UTC()
	if _, err := s.store.DeleteExpiredVolumeMessages(ctx, now); err != nil {
		return nil, err
	}
	return s.store.VolumeMessages(ctx, f, now)
}

// Message returns a message the caller may see; ENOTFOUND
// (MessageNotFound) for one that expired, or one of another project's
// unless the caller is an administrator.
func (s *Service) Message(ctx context.Context, c Caller, id string) (*trustack.VolumeMessage, error) {
	m, err := s.store.VolumeMessage(ctx, id)
	if err != nil {
		return nil, err
	}
	notFound := trustack.Reasonf(trustack.ENOTFOUND, "MessageNotFound", "Message %s could not be found.", id)
	if !m.ExpiresAt.After(s.opts.Now()) {
		if err := s.store.DeleteVolumeMessage(ctx, id); err != nil && trustack.ErrorCode(err) != trustack.ENOTFOUND {
			return nil, err
		}
		return nil, notFound
	}
	if !c.Admin && m.ProjectID != c.ProjectID {
		return nil, notFound
	}
	return m, nil
}

// DeleteMessage deletes a message the caller may see; ENOTFOUND
// (MessageNotFound) as Message.
func (s *Service) DeleteMessage(ctx context.Context, c Caller, id string) error {
	if _, err := s.Message(ctx, c, id); err != nil {
		return err
	}
	return s.store.DeleteVolumeMessage(ctx, id)
}
