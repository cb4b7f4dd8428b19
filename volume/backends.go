package volume

import (
	"context"

	"github.com/trustack/trustack"
)

// Backend is a volume backend a storage host runs, as Cinder lists its
// volume services.
type Backend struct {
	trustack.StorageBackend
	Host *trustack.Host
	// Up says the host's agent is up.
	Up bool
}

// Backends returns the backends of every storage host, by host and
// backend name.
func (s *Service) Backends(ctx context.Context) ([]Backend, error) {
	hosts, err := s.hosts.Hosts(ctx)
	if err != nil {
		return nil, err
	}
	var out []Backend
	for _, h := range hosts {
		for _, b := range h.Storage {
			out = append(out, Backend{StorageBackend: b, Host: h, Up: s.opts.Alive(h)})
		}
	}
	return out, nil
}

// Zones returns the availability zones volumes may be made in, each
// with whether an enabled storage host in it is up.
func (s *Service) Zones(ctx context.Context) (map[string]bool, error) {
	backends, err := s.Backends(ctx)
	if err != nil {
		return nil, err
	}
	zones := map[string]bool{}
	for _, b := range backends {
		zones[b.Host.AvailabilityZone] = zones[b.Host.AvailabilityZone] || b.Up && b.Host.Enabled
	}
	return zones, nil
}
