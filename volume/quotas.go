package volume

import (
	"context"
	"maps"

	"github.com/trustack/trustack"
)

// DefaultQuotas returns the limits of a project that has none of its
// own, by resource.
func (s *Service) DefaultQuotas() map[string]int { return maps.Clone(trustack.DefaultVolumeQuotas) }

// Quotas returns a project's limits by resource: its own where it has
// them, the defaults elsewhere.
func (s *Service) Quotas(ctx context.Context, projectID string) (map[string]int, error) {
	own, err := s.store.VolumeQuotas(ctx, projectID)
	if err != nil {
		return nil, err
	}
	limits := s.DefaultQuotas()
	maps.Copy(limits, own)
	return limits, nil
}

// Usage returns what a project's volumes take of each resource; a
// resource missing takes nothing (backups, groups).
func (s *Service) Usage(ctx context.Context, projectID string) (map[string]int, error) {
	return s.store.VolumeUsage(ctx, projectID)
}

// SetQuotas sets some of a project's limits, whole numbers of at least
// -1 (no limit); EINVALID for a resource Cinder does not know. It returns
// the project's limits after the change.
func (s *Service) SetQuotas(ctx context.Context, projectID string, limits map[string]int) (map[string]int, error) {
	for resource, limit := range limits {
		if _, ok := trustack.DefaultVolumeQuotas[resource]; !ok {
			return nil, trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Invalid input received: Bad key(s) in quota set: %s.", resource)
		}
		if limit < -1 {
			return nil, trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Invalid input received: Quota %s must be -1 or a whole number, not %d.", resource, limit)
		}
	}
	if err := s.store.SetVolumeQuotas(ctx, projectID, limits); err != nil {
		return nil, err
	}
	return s.Quotas(ctx, projectID)
}

// ResetQuotas gives a project the default limits again.
func (s *Service) ResetQuotas(ctx context.Context, projectID string) error {
	return s.store.DeleteVolumeQuotas(ctx, projectID)
}

// checkPerVolume refuses a volume larger than its project's
// per_volume_gigabytes.
func checkPerVolume(limits map[string]int, size int) error {
	if max := limits[trustack.QuotaPerVolumeGigabytes]; max >= 0 && size > max {
		return trustack.Reasonf(trustack.EOVERQUOTA, "VolumeSizeExceedsLimit",
			"Requested volume size %dG is larger than maximum allowed limit %dG.", size, max)
	}
	return nil
}
