// Package acaas keeps what ACaaS places servers by: the locations and the
// distances between them, the physical domains with their hosts,
// capabilities, chains of trust and collaborating domains, the hosts'
// infrastructure and security properties, the requirement entries
// operators define and the requirements projects state. It merges a
// server's requirements from its project, its flavor and its scheduler
// hints, and tells compute when anything placement depends on changed, so
// that placed servers are checked again.
package acaas

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/trustack/trustack"
)

// Store keeps the requirements model. Update methods read, change with fn
// and write back in one transaction.
type Store interface {
	// CreateLocation adds a location; ECONFLICT for a name in use.
	CreateLocation(ctx context.Context, l *trustack.Location) error
	// Locations returns every location, by name.
	Locations(ctx context.Context) ([]*trustack.Location, error)
	// DeleteLocation removes a location and its distances; ENOTFOUND, or
	// ECONFLICT while a domain is there.
	DeleteLocation(ctx context.Context, name string) error
	// SetDistance records the distance between two locations, replacing
	// what was recorded; ENOTFOUND for an unknown location.
	SetDistance(ctx context.Context, d trustack.Distance) error
	// Distances returns every recorded distance, with A < B.
	Distances(ctx context.Context) ([]trustack.Distance, error)

	// CreatePhysicalDomain adds a physical domain; ECONFLICT for a name in use,
	// ENOTFOUND for an unknown location or collaborator.
	CreatePhysicalDomain(ctx context.Context, d *trustack.PhysicalDomain) error
	// PhysicalDomain returns a domain; ENOTFOUND.
	PhysicalDomain(ctx context.Context, name string) (*trustack.PhysicalDomain, error)
	// PhysicalDomains returns every domain, by name.
	PhysicalDomains(ctx context.Context) ([]*trustack.PhysicalDomain, error)
	// UpdatePhysicalDomain changes a domain's location, capabilities, DCoT, source
	// or collaborators (not its name); the generation of each member host
	// moves on, so that no claim made on the domain as it was succeeds.
	UpdatePhysicalDomain(ctx context.Context, name string, fn func(*trustack.PhysicalDomain) error) (*trustack.PhysicalDomain, error)
	// DeletePhysicalDomain removes a domain; ENOTFOUND, or ECONFLICT while hosts
	// are members or it is another domain's collaborator.
	DeletePhysicalDomain(ctx context.Context, name string) error

	// HostByName returns a compute host; ENOTFOUND.
	HostByName(ctx context.Context, name string) (*trustack.Host, error)
	// Hosts returns every compute host, by name.
	Hosts(ctx context.Context) ([]*trustack.Host, error)
	// UpdateHost changes a host's domain or properties; its generation
	// moves on.
	UpdateHost(ctx context.Context, id string, fn func(*trustack.Host) error) (*trustack.Host, error)

	// CreateRequirementEntry adds an entry; ECONFLICT for a name in use.
	CreateRequirementEntry(ctx context.Context, e *trustack.RequirementEntry) error
	// RequirementEntries returns every entry, by name.
	RequirementEntries(ctx context.Context) ([]*trustack.RequirementEntry, error)
	// DeleteRequirementEntry removes an entry; ENOTFOUND, or ECONFLICT
	// while a project states a requirement of it.
	DeleteRequirementEntry(ctx context.Context, name string) error

	// UpdateProjectRequirement reads a project's requirement for an entry
	// (nil for none) and stores what fn makes of it (nil removes it), in
	// one transaction; an error from fn changes nothing. ENOTFOUND for an
	// unknown entry.
	UpdateProjectRequirement(ctx context.Context, projectID, entry string, fn func(*trustack.ProjectRequirement) (*trustack.ProjectRequirement, error)) error
	// ProjectRequirements returns a project's requirements ("" for every
	// project's), by project and entry.
	ProjectRequirements(ctx context.Context, projectID string) ([]*trustack.ProjectRequirement, error)
}

// Enforcer is told when something placement depends on changed: it reads
// the model anew and checks the placed servers again.
type Enforcer interface {
	RequirementsChanged()
}

// Options tune a Service; zero values take the defaults.
type Options struct {
	// Now returns the current time (default time.Now).
	Now func() time.Time
	// Attested says that hosts attest: their security property "trust"
	// is then what the verifier found, and operators cannot set it.
	Attested bool
}

// Service manages the requirements model. It is safe for concurrent use.
type Service struct {
	store    Store
	enforcer Enforcer
	opts     Options
}

// New returns a Service over store that tells enforcer of every change
// (nil for no one).
func New(store Store, enforcer Enforcer, opts Options) *Service {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Service{store: store, enforcer: enforcer, opts: opts}
}

// SetEnforcer sets who is told of changes, for wiring services that need
// each other.
func (s *Service) SetEnforcer(e Enforcer) { s.enforcer = e }

// changed tells the enforcer that the model changed.
func (s *Service) changed() {
	if s.enforcer != nil {
		s.enforcer.RequirementsChanged()
	}
}

// DefaultEntries are the requirement entries every cloud starts with.
var DefaultEntries = []trustack.RequirementEntry{
	{Name: "location", Kind: trustack.KindLocation, Description: "A location's name or a country code the host must be at."},
	{Name: "max_distance", Kind: trustack.KindDistance, Description: "LOCATION:KM, the farthest the host may be from a location."},
	{Name: "isolation", Kind: trustack.KindIsolation, Description: "shared, exclusive (no other project on the host), or exclude:PROJECT,..."},
	{Name: "trust", Kind: trustack.KindTrust, Description: "The trust level the host must have proved."},
	{Name: "federation", Kind: trustack.KindFederation, Description: "allowed to let the server run in a federated cloud's emergency domain."},
}

// EnsureEntries creates the entries that do not exist, by name.
func (s *Service) EnsureEntries(ctx context.Context, list []trustack.RequirementEntry) error {
	have, err := s.store.RequirementEntries(ctx)
	if err != nil {
		return err
	}
	for _, e := range list {
		if slices.ContainsFunc(have, func(h *trustack.RequirementEntry) bool { return h.Name == e.Name }) {
			continue
		}
		if err := s.store.CreateRequirementEntry(ctx, &e); err != nil && trustack.ErrorCode(err) != trustack.ECONFLICT {
			return fmt.Errorf("create requirement entry %s: %w", e.Name, err)
		}
	}
	return nil
}

// Flavor extra specs that state requirements: "trust:ENTRY", and
// "trust:level" for the trust entry.
const (
	flavorSpecPrefix = "trust:"
	flavorTrustLevel = "trust:level"
)

// Stored returns every project's stored requirements, by project, as
// servers of the project are placed under them.
func (s *Service) Stored(ctx context.Context) (map[string]trustack.Requirements, error) {
	entries, err := s.entries(ctx)
	if err != nil {
		return nil, err
	}
	list, err := s.store.ProjectRequirements(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("read requirements of projects: %w", err)
	}
	out := map[string]trustack.Requirements{}
	for _, r := range list {
		if req, ok := fromProject(entries, r); ok {
			out[r.ProjectID] = append(out[r.ProjectID], req)
		}
	}
	return out, nil
}

func (s *Service) stored(ctx context.Context, entries map[string]*trustack.RequirementEntry, projectID string) (trustack.Requirements, error) {
	list, err := s.store.ProjectRequirements(ctx, projectID)
	if err != nil {
		return nil, fmt.Errorf("read requirements of project %s: %w", projectID, err)
	}
	var out trustack.Requirements
	for _, r := range list {
		if req, ok := fromProject(entries, r); ok {
			out = append(out, req)
		}
	}
	return out, nil
}

// fromProject is a project's stored requirement as servers are placed
// under it, if its entry is known.
func fromProject(entries map[string]*trustack.RequirementEntry, r *trustack.ProjectRequirement) (trustack.Requirement, bool) {
	e, ok := entries[r.Entry]
	if !ok {
		return trustack.Requirement{}, false
	}
	return trustack.Requirement{Entry: r.Entry, Kind: e.Kind, Value: r.Value, Source: trustack.FromProject}, true
}

// Effective returns the requirements a new server of the project is placed
// under: the project's stored ones, those of the flavor's extra specs and
// those of the scheduler hints that name a requirement entry (other hints
// are the scheduler's own). All hold together, so a hint or a flavor can
// narrow what the project stated and never loosen it. A value that is not
// valid for its entry's kind gets EINVALID.
func (s *Service) Effective(ctx context.Context, projectID string, f *trustack.Flavor, hints map[string][]string) (trustack.Requirements, error) {
	entries, err := s.entries(ctx)
	if err != nil {
		return nil, err
	}
	out, err := s.stored(ctx, entries, projectID)
	if err != nil {
		return nil, err
	}
	add := func(entry, value, source string) error {
		e, ok := entries[entry]
		if !ok {
			return nil
		}
		if err := trustack.CheckRequirementValue(e.Kind, value); err != nil {
			return fmt.Errorf("requirement %s from the %s: %w", entry, source, err)
		}
		out = append(out, trustack.Requirement{Entry: entry, Kind: e.Kind, Value: value, Source: source})
		return nil
	}
	if f != nil {
		keys := make([]string, 0, len(f.ExtraSpecs))
		for k := range f.ExtraSpecs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			entry, ok := strings.CutPrefix(k, flavorSpecPrefix)
			if !ok {
				continue
			}
			if k == flavorTrustLevel {
				entry = "trust"
			}
			if _, known := entries[entry]; !known {
				return nil, trustack.Errorf(trustack.EINVALID, "Flavor %s has extra spec %s, which names no requirement entry.", f.Name, k)
			}
			if err := add(entry, f.ExtraSpecs[k], trustack.FromFlavor); err != nil {
				return nil, err
			}
		}
	}
	keys := make([]string, 0, len(hints))
	for k := range hints {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range hints[k] {
			if err := add(k, v, trustack.FromHint); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// entries returns the requirement entries by name.
func (s *Service) entries(ctx context.Context) (map[string]*trustack.RequirementEntry, error) {
	list, err := s.store.RequirementEntries(ctx)
	if err != nil {
		return nil, fmt.Errorf("read requirement entries: %w", err)
	}
	out := make(map[string]*trustack.RequirementEntry, len(list))
	for _, e := range list {
		out[e.Name] = e
	}
	return out, nil
}
