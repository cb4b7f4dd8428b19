package compute

import (
	"context"
	"time"

	"github.com/trustack/trustack"
)

// ServerUsage is what a server used within a period: the hours it was
// active in it (from its first becoming active to its deletion), which
// Nova's simple tenant usage multiplies by its flavor's vCPUs, memory and
// disk.
type ServerUsage struct {
	Server *trustack.Server
	Hours  float64
	// Uptime is the time from its first becoming active to its deletion,
	// or to now if it was not deleted.
	Uptime time.Duration
}

// ServerUsages returns the usage of each server of the project (every project's
// for "") that was active at some time in [start, end), deleted ones
// too, in creation order. A server that never became active used
// nothing. EINVALID unless start is before end.
func (s *Service) ServerUsages(ctx context.Context, projectID string, start, end time.Time) ([]ServerUsage, error) {
	if !start.Before(end) {
		return nil, trustack.Errorf(trustack.EINVALID, "Invalid start time. The start time cannot occur after the end time.")
	}
	servers, err := s.store.Servers(ctx, trustack.ServerFilter{ProjectID: projectID, IncludeDeleted: true})
	if err != nil {
		return nil, err
	}
	var out []ServerUsage
	now := s.opts.Now()
	for _, srv := range servers {
		launched, terminated := srv.LaunchedAt, srv.TerminatedAt
		if launched.IsZero() || !launched.Before(end) || !terminated.IsZero() && !terminated.After(start) {
			continue
		}
		from, to := start, end
		if launched.After(start) {
			from = launched
		}
		if !terminated.IsZero() && terminated.Before(end) {
			to = terminated
		}
		up := now.Sub(launched)
		if !terminated.IsZero() {
			up = terminated.Sub(launched)
		}
		out = append(out, ServerUsage{Server: srv, Hours: to.Sub(from).Hours(), Uptime: up})
	}
	return out, nil
}
