package images

import (
	"context"

	"github.com/trustack/trustack"
)

// BootImage returns the image if the project may boot servers from it:
// ENOTFOUND if the project cannot see it, EINVALID if it is not active.
func (s *Service) BootImage(ctx context.Context, projectID, imageID string) (*trustack.Image, error) {
	img, err := s.Image(ctx, Caller{ProjectID: projectID}, imageID)
	if err != nil {
		return nil, err
	}
	if img.Status != trustack.ImageActive {
		return nil, trustack.Errorf(trustack.EINVALID, "Image %s is not active.", imageID)
	}
	return img, nil
}

// CreateSnapshot registers the image of a server snapshot, owned by the
// project, queued until the host's agent uploads its data.
func (s *Service) CreateSnapshot(ctx context.Context, projectID string, img *trustack.Image) error {
	img.Owner = projectID
	return s.Create(ctx, Caller{ProjectID: projectID}, img)
}

// SnapshotFailed marks a snapshot image whose data will not come as
// killed, as Glance marks a failed upload.
func (s *Service) SnapshotFailed(ctx context.Context, imageID string) error {
	_, err := s.store.UpdateImage(ctx, imageID, func(img *trustack.Image) error {
		if img.Status == trustack.ImageActive {
			return nil // the data arrived after all
		}
		img.Status = trustack.ImageKilled
		img.UpdatedAt = s.now()
		return nil
	})
	return err
}

// KillCutOffSnapshots kills the snapshots of a server that are still
// queued or saving: their upload was cut off (by a restart of the
// controller that asked for them), and their data will not come. It
// returns how many it killed; snapshots whose data all arrived are kept.
func (s *Service) KillCutOffSnapshots(ctx context.Context, serverID string) (int, error) {
	list, err := s.store.Images(ctx, trustack.ImageFilter{Properties: map[string]string{"image_type": "snapshot", "instance_uuid": serverID}})
	if err != nil {
		return 0, err
	}
	killed := 0
	for _, img := range list {
		if img.Status != trustack.ImageQueued && img.Status != trustack.ImageSaving {
			continue
		}
		if err := s.SnapshotFailed(ctx, img.ID); err != nil {
			return killed, err
		}
		killed++
	}
	return killed, nil
}

// DeleteImage deletes an image compute created, such as the transient
// copy of a migrating server's disk.
func (s *Service) DeleteImage(ctx context.Context, imageID string) error {
	return s.Delete(ctx, Caller{Admin: true}, imageID)
}
