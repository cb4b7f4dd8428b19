package images

import (
	"context"
	"unicode/utf8"

	"github.com/trustack/trustack"
)

// sharedImage returns an image the caller may see, if it is shared:
// EFORBIDDEN for other visibilities, which have no members.
func (s *Service) sharedImage(ctx context.Context, c Caller, id string) (*trustack.Image, error) {
	img, err := s.Image(ctx, c, id)
	if err != nil {
		return nil, err
	}
	if img.Visibility != trustack.VisibilityShared {
		return nil, trustack.Errorf(trustack.EFORBIDDEN, "Only shared images have members.")
	}
	return img, nil
}

// AddMember shares an image the caller owns with a project, whose
// membership is then pending. A project may be a member only once
// (ECONFLICT); an image has at most MaxMembers members.
func (s *Service) AddMember(ctx context.Context, c Caller, imageID, memberID string) (*trustack.ImageMember, error) {
	img, err := s.sharedImage(ctx, c, imageID)
	if err != nil {
		return nil, err
	}
	if !c.owns(img) {
		return nil, trustack.Errorf(trustack.EFORBIDDEN, "You are not permitted to create image members for the image.")
	}
	if n := utf8.RuneCountInString(memberID); n == 0 || n > 255 {
		return nil, trustack.Errorf(trustack.EINVALID, "A member must be a project ID of 1 to 255 characters.")
	}
	members, err := s.store.ImageMembers(ctx, imageID)
	if err != nil {
		return nil, err
	}
	if len(members) >= MaxMembers {
		return nil, limitExceeded("Image member limit exceeded for image %s: at most %d members are allowed.", imageID, MaxMembers)
	}
	now := s.now()
	m := &trustack.ImageMember{ImageID: imageID, MemberID: memberID, Status: trustack.MemberPending, CreatedAt: now, UpdatedAt: now}
	err = s.store.CreateImageMember(ctx, m)
	if trustack.ErrorCode(err) == trustack.ECONFLICT {
		// A duplicate, or the image deleted meanwhile.
		if _, err := s.store.ImageMember(ctx, imageID, memberID); err == nil {
			return nil, trustack.Errorf(trustack.ECONFLICT, "Member %s is duplicated for image %s.", memberID, imageID)
		}
		return nil, notFound(imageID)
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}

// Members lists the members of a shared image: all of them for its owner
// and admins, the caller's own membership for a member.
func (s *Service) Members(ctx context.Context, c Caller, imageID string) ([]*trustack.ImageMember, error) {
	img, err := s.sharedImage(ctx, c, imageID)
	if err != nil {
		return nil, err
	}
	members, err := s.store.ImageMembers(ctx, imageID)
	if err != nil || c.owns(img) {
		return members, err
	}
	var own []*trustack.ImageMember
	for _, m := range members {
		if m.MemberID == c.ProjectID {
			own = append(own, m)
		}
	}
	return own, nil
}

// Member returns a membership that the caller may see: any for the
// image's owner and admins, its own for a member; ENOTFOUND otherwise,
// so that nothing leaks.
func (s *Service) Member(ctx context.Context, c Caller, imageID, memberID string) (*trustack.ImageMember, error) {
	img, err := s.Image(ctx, c, imageID)
	if err != nil {
		return nil, err
	}
	if img.Visibility != trustack.VisibilityShared || !c.owns(img) && memberID != c.ProjectID {
		return nil, trustack.Errorf(trustack.ENOTFOUND, "%s not found in the member list of the image %s.", memberID, imageID)
	}
	return s.store.ImageMember(ctx, imageID, memberID)
}

// UpdateMember sets the status of a membership: pending, accepted or
// rejected. Only the member itself (or an admin) may; the image's owner
// may not decide for its members.
func (s *Service) UpdateMember(ctx context.Context, c Caller, imageID, memberID, status string) (*trustack.ImageMember, error) {
	img, err := s.sharedImage(ctx, c, imageID)
	if err != nil {
		return nil, err
	}
	switch status {
	case trustack.MemberPending, trustack.MemberAccepted, trustack.MemberRejected:
	default:
		return nil, trustack.Errorf(trustack.EINVALID, `Status must be "pending", "accepted" or "rejected", not %q.`, status)
	}
	switch {
	case c.Admin:
	case img.Owner == c.ProjectID:
		return nil, trustack.Errorf(trustack.EFORBIDDEN, "You are not permitted to modify 'status' on this image member.")
	case memberID != c.ProjectID:
		return nil, trustack.Errorf(trustack.EFORBIDDEN, "You are not permitted to modify the membership of another project.")
	}
	return s.store.UpdateImageMember(ctx, imageID, memberID, func(m *trustack.ImageMember) error {
		m.Status = status
		m.UpdatedAt = s.now()
		return nil
	})
}

// DeleteMember ends a membership; only the image's owner (or an admin)
// may.
func (s *Service) DeleteMember(ctx context.Context, c Caller, imageID, memberID string) error {
	img, err := s.sharedImage(ctx, c, imageID)
	if err != nil {
		return err
	}
	if !c.owns(img) {
		return trustack.Errorf(trustack.EFORBIDDEN, "You cannot delete image member.")
	}
	return s.store.DeleteImageMember(ctx, imageID, memberID)
}
