package compute

import (
	"context"
	"maps"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/trustack/trustack"
)

// Host aggregates: operators group compute hosts, give the group metadata
// that the scheduler's aggregate filters read and, with the metadata key
// availability_zone, make it an availability zone. Each physical domain is
// shown as a read-only aggregate beside them (trustack.DomainAggregate).

// Aggregates returns the operators' host aggregates, by ID, then one for
// each physical domain, by name.
func (s *Service) Aggregates(ctx context.Context) ([]*trustack.Aggregate, error) {
	list, err := s.store.Aggregates(ctx)
	if err != nil {
		return nil, err
	}
	domains, err := s.domainAggregates(ctx)
	if err != nil {
		return nil, err
	}
	return append(list, domains...), nil
}

// domainAggregates returns the aggregates that show the physical domains,
// by name.
func (s *Service) domainAggregates(ctx context.Context) ([]*trustack.Aggregate, error) {
	topo, err := s.store.Topology(ctx)
	if err != nil {
		return nil, err
	}
	hosts, err := s.store.Hosts(ctx)
	if err != nil {
		return nil, err
	}
	members := map[string][]string{}
	for _, h := range hosts {
		members[h.Domain] = append(members[h.Domain], h.Name)
	}
	names := slices.Sorted(maps.Keys(topo.Domains))
	out := make([]*trustack.Aggregate, len(names))
	for i, name := range names {
		hs := members[name]
		slices.Sort(hs)
		out[i] = trustack.DomainAggregate(topo.Domains[name], topo, hs)
	}
	return out, nil
}

// Aggregate returns a host aggregate, an operator's or one that shows a
// physical domain; ENOTFOUND.
func (s *Service) Aggregate(ctx context.Context, id int) (*trustack.Aggregate, error) {
	if id > 0 {
		return s.store.Aggregate(ctx, id)
	}
	domains, err := s.domainAggregates(ctx)
	if err != nil {
		return nil, err
	}
	for _, a := range domains {
		if a.ID == id {
			return a, nil
		}
	}
	return nil, trustack.Errorf(trustack.ENOTFOUND, "Aggregate %d could not be found.", id)
}

// CreateAggregate makes a host aggregate without hosts, in the zone if
// zone is not "". EINVALID for a bad name or zone, ECONFLICT for a name
// in use.
func (s *Service) CreateAggregate(ctx context.Context, name, zone string) (*trustack.Aggregate, error) {
	if err := checkAggregateName(name); err != nil {
		return nil, err
	}
	a := &trustack.Aggregate{UUID: uuid.NewString(), Name: name, Metadata: map[string]string{}, CreatedAt: s.opts.Now().UTC()}
	if zone != "" {
		if err := checkZoneName(zone); err != nil {
			return nil, err
		}
		a.Metadata[trustack.AggregateZoneKey] = zone
	}
	if err := s.store.CreateAggregate(ctx, a); err != nil {
		return nil, err
	}
	return a, nil
}

// UpdateAggregate renames an aggregate, or moves it to another zone, for
// the arguments that are not nil. EINVALID for a bad name or zone (a zone
// cannot be removed this way, as in Nova), ECONFLICT for a name in use,
// and ECONFLICT as the store's UpdateAggregate refuses a zone.
func (s *Service) UpdateAggregate(ctx context.Context, id int, name, zone *string) (*trustack.Aggregate, error) {
	if name != nil {
		if err := checkAggregateName(*name); err != nil {
			return nil, err
		}
	}
	if zone != nil {
		if err := checkZoneName(*zone); err != nil {
			return nil, err
		}
	}
	return s.changeAggregate(ctx, id, func(a *trustack.Aggregate) error {
		if name != nil {
			a.Name = *name
		}
		if zone != nil {
			a.Metadata[trustack.AggregateZoneKey] = *zone
		}
		return nil
	})
}

// SetAggregateMetadata merges metadata into an aggregate's: a nil value
// deletes its key. EINVALID for a key or value too long, or for a zone
// removed or empty, which Nova refuses; as UpdateAggregate otherwise.
func (s *Service) SetAggregateMetadata(ctx context.Context, id int, metadata map[string]*string) (*trustack.Aggregate, error) {
	for k, v := range metadata {
		switch {
		case len(k) < 1 || len(k) > 255:
			return nil, trustack.Errorf(trustack.EINVALID, "Invalid metadata key %q: want 1 to 255 characters.", k)
		case v != nil && len(*v) > 255:
			return nil, trustack.Errorf(trustack.EINVALID, "Invalid metadata value of %s: want at most 255 characters.", k)
		case k == trustack.AggregateZoneKey && v == nil:
			return nil, trustack.Errorf(trustack.EINVALID, "Aggregate %d does not support empty named availability zone.", id)
		case k == trustack.AggregateZoneKey:
			if err := checkZoneName(*v); err != nil {
				return nil, err
			}
		}
	}
	return s.changeAggregate(ctx, id, func(a *trustack.Aggregate) error {
		for k, v := range metadata {
			if v == nil {
				delete(a.Metadata, k)
			} else {
				a.Metadata[k] = *v
			}
		}
		return nil
	})
}

// AddAggregateHost adds a compute host to an aggregate: ENOTFOUND for an
// unknown host, ECONFLICT for one it has, or one in another zone.
func (s *Service) AddAggregateHost(ctx context.Context, id int, host string) (*trustack.Aggregate, error) {
	return s.changeAggregate(ctx, id, func(a *trustack.Aggregate) error {
		if slices.Contains(a.Hosts, host) {
			return trustack.Errorf(trustack.ECONFLICT, "Aggregate %d already has host %s.", id, host)
		}
		a.Hosts = append(a.Hosts, host)
		return nil
	})
}

// RemoveAggregateHost takes a host out of an aggregate: ENOTFOUND for a
// host it does not have.
func (s *Service) RemoveAggregateHost(ctx context.Context, id int, host string) (*trustack.Aggregate, error) {
	return s.changeAggregate(ctx, id, func(a *trustack.Aggregate) error {
		i := slices.Index(a.Hosts, host)
		if i < 0 {
			return trustack.Errorf(trustack.ENOTFOUND, "Aggregate %d has no host %s.", id, host)
		}
		a.Hosts = slices.Delete(a.Hosts, i, i+1)
		return nil
	})
}

// DeleteAggregate deletes an aggregate without hosts: ENOTFOUND, or
// ECONFLICT with reason trustack.ReasonAggregateAction while it has hosts.
func (s *Service) DeleteAggregate(ctx context.Context, id int) error {
	if err := s.operators(ctx, id); err != nil {
		return err
	}
	return s.store.DeleteAggregate(ctx, id)
}

// changeAggregate changes an operator's aggregate with fn, in the store's
// transaction, and has the scheduler read aggregates anew. An aggregate
// that shows a physical domain is ECONFLICT.
func (s *Service) changeAggregate(ctx context.Context, id int, fn func(*trustack.Aggregate) error) (*trustack.Aggregate, error) {
	if err := s.operators(ctx, id); err != nil {
		return nil, err
	}
	a, err := s.store.UpdateAggregate(ctx, id, func(a *trustack.Aggregate) error {
		if a.Metadata == nil {
			a.Metadata = map[string]string{}
		}
		a.UpdatedAt = s.opts.Now().UTC()
		return fn(a)
	})
	if err != nil {
		return nil, err
	}
	s.placer.Invalidate()
	return a, nil
}

// operators gives ECONFLICT for the ID of an aggregate that shows a
// physical domain (its metadata and hosts are the domain's, which only
// the ACaaS calls change), ENOTFOUND for another that is not an
// operator's.
func (s *Service) operators(ctx context.Context, id int) error {
	if id > 0 {
		return nil
	}
	a, err := s.Aggregate(ctx, id)
	if err != nil {
		return err
	}
	return trustack.Errorf(trustack.ECONFLICT, "Aggregate %s shows physical domain %s and cannot be changed through os-aggregates: change the domain instead (trustack manage domain).", a.Name, a.Domain)
}

// checkAggregateName checks a new aggregate name as Nova does, and keeps
// the names of the aggregates that show physical domains for them.
func checkAggregateName(name string) error {
	switch {
	case len(name) < 1 || len(name) > 255 || strings.TrimSpace(name) == "":
		return trustack.Errorf(trustack.EINVALID, "Invalid aggregate name %q: want 1 to 255 characters, not all blank.", name)
	case strings.TrimSpace(name) != name:
		return trustack.Errorf(trustack.EINVALID, "Invalid aggregate name %q: leading or trailing whitespace.", name)
	case strings.HasPrefix(name, trustack.DomainAggregatePrefix):
		return trustack.Errorf(trustack.EINVALID, "Invalid aggregate name %q: names that begin with %q are those of physical domains.", name, trustack.DomainAggregatePrefix)
	}
	return nil
}

// checkZoneName checks an availability zone's name as Nova does: a colon
// would make it read as a zone and a host.
func checkZoneName(zone string) error {
	if len(zone) < 1 || len(zone) > 255 || strings.Contains(zone, ":") {
		return trustack.Errorf(trustack.EINVALID, "Invalid availability zone %q: want 1 to 255 characters, without a colon.", zone)
	}
	return nil
}
