package network

import (
	"context"
	"maps"

	"github.com/trustack/trustack"
)

// DefaultQuotas returns the limits of projects that have none of their
// own, by resource.
func (s *Service) DefaultQuotas() map[string]int { return maps.Clone(trustack.DefaultNetworkQuotas) }

// Quotas returns a project's limits by resource: its own where it has
// them, the defaults elsewhere.
func (s *Service) Quotas(ctx context.Context, projectID string) (map[string]int, error) {
	own, err := s.store.NetworkQuotas(ctx, projectID)
	if err != nil {
		return nil, err
	}
	limits := s.DefaultQuotas()
	maps.Copy(limits, own)
	return limits, nil
}

// AllQuotas returns the limits of every project that has some of its own,
// by project, each with the defaults where it has none.
func (s *Service) AllQuotas(ctx context.Context) (map[string]map[string]int, error) {
	all, err := s.store.AllNetworkQuotas(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]int{}
	for project, own := range all {
		limits := s.DefaultQuotas()
		maps.Copy(limits, own)
		out[project] = limits
	}
	return out, nil
}

// Usage returns what a project uses of each resource.
func (s *Service) Usage(ctx context.Context, projectID string) (map[string]int, error) {
	return s.store.NetworkUsage(ctx, projectID)
}

// SetQuotas sets some of a project's limits; -1 is no limit. An unknown
// resource or a limit below -1 is EINVALID. It returns the project's
// limits after the change.
func (s *Service) SetQuotas(ctx context.Context, projectID string, limits map[string]int) (map[string]int, error) {
	for resource, limit := range limits {
		if _, ok := trustack.DefaultNetworkQuotas[resource]; !ok {
			return nil, invalid("Unrecognized attribute(s) '%s'", resource)
		}
		if limit < -1 {
			return nil, invalid("Invalid input for %s. Reason: '%d' should be greater than or equal to -1.", resource, limit)
		}
	}
	if err := s.store.SetNetworkQuotas(ctx, projectID, limits); err != nil {
		return nil, err
	}
	return s.Quotas(ctx, projectID)
}

// ResetQuotas gives a project the default limits again.
func (s *Service) ResetQuotas(ctx context.Context, projectID string) error {
	return s.store.DeleteNetworkQuotas(ctx, projectID)
}

// limit returns a project's limit of one resource.
func (s *Service) limit(ctx context.Context, projectID, resource string) (int, error) {
	limits, err := s.Quotas(ctx, projectID)
	if err != nil {
		return 0, err
	}
	return limits[resource], nil
}
