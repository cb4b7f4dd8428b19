package acaas

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strings"
	"unicode"

	"github.com/trustack/trustack"
)

// The operators' and users' side of the Service: the methods that change
// the requirements model, each checking what it is given and telling the
// enforcer once the change is stored. Errors are EINVALID when a value
// breaks a rule (including a value that names something that does not
// exist: a domain's location, a requirement's entry), ENOTFOUND when the
// thing acted on does not exist, ECONFLICT when the change clashes with
// what is stored, and EFORBIDDEN when the caller may not make it; their
// messages are written for the person who asked.

// Caller is who asks for a change of a project's requirements: a member of
// the project, or an operator (Admin) acting on any project.
type Caller struct {
	ProjectID string // the caller's own project
	Admin     bool
}

// project returns the project a call acts on (the caller's own for ""),
// or EFORBIDDEN if the caller may not act on it. The API's policy checks
// this too; the Service checks again so that no other path can skip it.
func (c Caller) project(projectID string) (string, error) {
	if projectID == "" {
		projectID = c.ProjectID
	}
	if projectID == "" {
		return "", trustack.Errorf(trustack.EINVALID, "No project given, and the caller's token is not scoped to a project.")
	}
	if !c.Admin && projectID != c.ProjectID {
		return "", trustack.Errorf(trustack.EFORBIDDEN, "Only an operator can act on the requirements of project %s, which is not yours.", projectID)
	}
	return projectID, nil
}

// checkName checks the name of a location or a domain: not empty, no
// longer than 255 characters, with no '/' or ':' (which the API's paths
// and the distance requirement's LOCATION:KM use), no control characters
// and no spaces at either end.
func checkName(what, name string) error {
	switch {
	case name == "":
		return trustack.Errorf(trustack.EINVALID, "A %s needs a name.", what)
	case len(name) > 255:
		return trustack.Errorf(trustack.EINVALID, "The %s name %.20q... is too long: at most 255 characters.", what, name)
	case strings.ContainsAny(name, "/:"):
		return trustack.Errorf(trustack.EINVALID, "Invalid %s name %q: it may not contain '/' or ':'.", what, name)
	case strings.TrimSpace(name) != name || strings.ContainsFunc(name, unicode.IsControl):
		return trustack.Errorf(trustack.EINVALID, "Invalid %s name %q: no control characters, and no spaces at either end.", what, name)
	}
	return nil
}

// checkKeys checks the keys of capabilities or properties: none empty.
func checkKeys(what string, m map[string]string) error {
	for k := range m {
		if strings.TrimSpace(k) == "" {
			return trustack.Errorf(trustack.EINVALID, "Invalid %s: a key is empty.", what)
		}
	}
	return nil
}

// Locations.

// CreateLocation adds a location in a country (an ISO 3166-1 alpha-2 code,
// or a region code: 2 to 8 letters, kept in upper case). It returns
// EINVALID for a bad name or country, and ECONFLICT for a name in use.
func (s *Service) CreateLocation(ctx context.Context, name, country string) (*trustack.Location, error) {
	if err := checkName("location", name); err != nil {
		return nil, err
	}
	if len(country) < 2 || len(country) > 8 || strings.ContainsFunc(country, func(r rune) bool { return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z') }) {
		return nil, trustack.Errorf(trustack.EINVALID, "Invalid country %q for location %s: want a country or region code of 2 to 8 letters, such as DE.", country, name)
	}
	l := &trustack.Location{Name: name, Country: strings.ToUpper(country)}
	if err := s.store.CreateLocation(ctx, l); err != nil {
		if trustack.ErrorCode(err) == trustack.ECONFLICT {
			return nil, trustack.Errorf(trustack.ECONFLICT, "A location named %s already exists.", name)
		}
		return nil, fmt.Errorf("create location %s: %w", name, err)
	}
	s.changed()
	return l, nil
}

// Locations returns every location, by name.
func (s *Service) Locations(ctx context.Context) ([]*trustack.Location, error) {
	return s.store.Locations(ctx)
}

// location returns the location of the name, or nil if there is none.
func (s *Service) location(ctx context.Context, name string) (*trustack.Location, error) {
	list, err := s.store.Locations(ctx)
	if err != nil {
		return nil, fmt.Errorf("read locations: %w", err)
	}
	for _, l := range list {
		if l.Name == name {
			return l, nil
		}
	}
	return nil, nil
}

// DeleteLocation removes a location and the distances to it. It returns
// ENOTFOUND, or ECONFLICT naming the domains still at the location.
func (s *Service) DeleteLocation(ctx context.Context, name string) error {
	l, err := s.location(ctx, name)
	if err != nil {
		return err
	}
	if l == nil {
		return trustack.Errorf(trustack.ENOTFOUND, "Location %s does not exist.", name)
	}
	domains, err := s.store.PhysicalDomains(ctx)
	if err != nil {
		return fmt.Errorf("read domains: %w", err)
	}
	var at []string
	for _, d := range domains {
		if d.Location == name {
			at = append(at, d.Name)
		}
	}
	if len(at) > 0 {
		return trustack.Errorf(trustack.ECONFLICT, "Location %s still has domains (%s): move or delete them first.", name, strings.Join(at, ", "))
	}
	if err := s.store.DeleteLocation(ctx, name); err != nil {
		return fmt.Errorf("delete location %s: %w", name, err)
	}
	s.changed()
	return nil
}

// SetDistance records that locations a and b are km kilometres apart,
// replacing what was recorded. It returns EINVALID if a and b are the
// same or km is negative, and ENOTFOUND for an unknown location.
func (s *Service) SetDistance(ctx context.Context, a, b string, km int) (trustack.Distance, error) {
	if a == b {
		return trustack.Distance{}, trustack.Errorf(trustack.EINVALID, "A distance is between two different locations; %s is 0 km from itself.", a)
	}
	if km < 0 {
		return trustack.Distance{}, trustack.Errorf(trustack.EINVALID, "Invalid distance %d km between %s and %s: it may not be negative.", km, a, b)
	}
	for _, name := range []string{a, b} {
		l, err := s.location(ctx, name)
		if err != nil {
			return trustack.Distance{}, err
		}
		if l == nil {
			return trustack.Distance{}, trustack.Errorf(trustack.ENOTFOUND, "Location %s does not exist.", name)
		}
	}
	k := trustack.DistanceKey(a, b)
	d := trustack.Distance{A: k[0], B: k[1], KM: km}
	if err := s.store.SetDistance(ctx, d); err != nil {
		return trustack.Distance{}, fmt.Errorf("set distance %s-%s: %w", a, b, err)
	}
	s.changed()
	return d, nil
}

// Distances returns every recorded distance, with A < B.
func (s *Service) Distances(ctx context.Context) ([]trustack.Distance, error) {
	return s.store.Distances(ctx)
}

// Physical domains.

// DomainView is a physical domain with the names of its member hosts,
// and whether they prove its chain of trust now.
type DomainView struct {
	*trustack.PhysicalDomain
	Hosts []string // by name
	// Holding is how many of Hosts hold the domain's DCoT: their chain
	// of trust (RCoT, set by the verifier from their latest verdict) is
	// the DCoT; 0 for a domain without a DCoT.
	Holding int
	// DCoTHeld reports whether the DCoT holds now: the domain has one,
	// and at least one member host, all holding it.
	DCoTHeld bool
	// CDCoTHeld reports whether the collaborative DCoT holds: the DCoT
	// holds in the domain and in every one of its collaborators.
	CDCoTHeld bool
}

// DomainChanges are the changes SetDomain makes; nil fields stay as they
// are.
type DomainChanges struct {
	Location *string
	// Capabilities, when not nil, replace the domain's capabilities.
	Capabilities map[string]string
	DCoT         *string
}

// CreateDomain adds a physical domain at an existing location, with no
// hosts. Source "" is SourceLocal. Collaborators, if any, must exist and
// match as AddCollaborator requires. It returns EINVALID for a bad name,
// an unknown location or source, an empty capability key or an unfit
// collaborator, and ECONFLICT for a name in use.
func (s *Service) CreateDomain(ctx context.Context, d *trustack.PhysicalDomain) (*DomainView, error) {
	if err := checkName("domain", d.Name); err != nil {
		return nil, err
	}
	nd := *d
	nd.Capabilities = maps.Clone(d.Capabilities)
	if nd.Capabilities == nil {
		nd.Capabilities = map[string]string{}
	}
	nd.Collaborators = slices.Clone(d.Collaborators)
	switch nd.Source {
	case "":
		nd.Source = trustack.SourceLocal
	case trustack.SourceLocal, trustack.SourceEmergency:
	default:
		return nil, trustack.Errorf(trustack.EINVALID, "Invalid source %q for domain %s: want %s or %s.", nd.Source, nd.Name, trustack.SourceLocal, trustack.SourceEmergency)
	}
	if err := checkKeys("capabilities of domain "+nd.Name, nd.Capabilities); err != nil {
		return nil, err
	}
	if err := s.checkLocation(ctx, nd.Name, nd.Location); err != nil {
		return nil, err
	}
	if len(nd.Collaborators) > 0 {
		domains, err := s.domainMap(ctx)
		if err != nil {
			return nil, err
		}
		for _, c := range nd.Collaborators {
			b, ok := domains[c.Domain]
			if !ok {
				return nil, trustack.Errorf(trustack.EINVALID, "Collaborator %s of domain %s does not exist.", c.Domain, nd.Name)
			}
			if err := checkCollaborator(&nd, b, c.Priority); err != nil {
				return nil, err
			}
		}
		sortCollaborators(nd.Collaborators)
	}
	nd.CreatedAt = s.opts.Now().UTC()
	if err := s.store.CreatePhysicalDomain(ctx, &nd); err != nil {
		if trustack.ErrorCode(err) == trustack.ECONFLICT {
			return nil, trustack.Errorf(trustack.ECONFLICT, "A domain named %s already exists.", nd.Name)
		}
		return nil, fmt.Errorf("create domain %s: %w", nd.Name, err)
	}
	s.changed()
	return &DomainView{PhysicalDomain: &nd, Hosts: []string{}}, nil
}

// checkLocation checks that a domain's location exists: EINVALID if not.
func (s *Service) checkLocation(ctx context.Context, domain, location string) error {
	if location == "" {
		return trustack.Errorf(trustack.EINVALID, "Domain %s needs a location.", domain)
	}
	l, err := s.location(ctx, location)
	if err != nil {
		return err
	}
	if l == nil {
		return trustack.Errorf(trustack.EINVALID, "Location %s of domain %s does not exist: create it first.", location, domain)
	}
	return nil
}

// Domain returns a domain with its member hosts; ENOTFOUND.
func (s *Service) Domain(ctx context.Context, name string) (*DomainView, error) {
	d, err := s.domain(ctx, name)
	if err != nil {
		return nil, err
	}
	return s.view(ctx, d)
}

// domain returns a domain, or ENOTFOUND saying so.
func (s *Service) domain(ctx context.Context, name string) (*trustack.PhysicalDomain, error) {
	d, err := s.store.PhysicalDomain(ctx, name)
	if trustack.ErrorCode(err) == trustack.ENOTFOUND {
		return nil, trustack.Errorf(trustack.ENOTFOUND, "Domain %s does not exist.", name)
	}
	if err != nil {
		return nil, fmt.Errorf("read domain %s: %w", name, err)
	}
	return d, nil
}

// Domains returns every domain with its member hosts, by name.
func (s *Service) Domains(ctx context.Context) ([]*DomainView, error) {
	list, err := s.store.PhysicalDomains(ctx)
	if err != nil {
		return nil, fmt.Errorf("read domains: %w", err)
	}
	members, err := s.members(ctx)
	if err != nil {
		return nil, err
	}
	all := make(map[string]*trustack.PhysicalDomain, len(list))
	for _, d := range list {
		all[d.Name] = d
	}
	out := make([]*DomainView, len(list))
	for i, d := range list {
		out[i] = newView(d, members, all)
	}
	return out, nil
}

// members returns each domain's hosts, by domain, each list sorted by
// name.
func (s *Service) members(ctx context.Context) (map[string][]*trustack.Host, error) {
	hosts, err := s.store.Hosts(ctx)
	if err != nil {
		return nil, fmt.Errorf("read hosts: %w", err)
	}
	out := map[string][]*trustack.Host{}
	for _, h := range hosts {
		if h.Domain != "" {
			out[h.Domain] = append(out[h.Domain], h)
		}
	}
	for _, list := range out {
		sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	}
	return out, nil
}

// newView returns d's view from every domain's members and every domain
// by name (for its collaborators).
func newView(d *trustack.PhysicalDomain, members map[string][]*trustack.Host, all map[string]*trustack.PhysicalDomain) *DomainView {
	v := &DomainView{PhysicalDomain: d, Hosts: []string{}}
	for _, h := range members[d.Name] {
		v.Hosts = append(v.Hosts, h.Name)
	}
	v.Holding, v.DCoTHeld = dcotHeld(d, members[d.Name])
	v.CDCoTHeld = v.DCoTHeld
	for _, c := range d.Collaborators {
		b, ok := all[c.Domain]
		if !ok {
			v.CDCoTHeld = false
			continue
		}
		if _, held := dcotHeld(b, members[b.Name]); !held {
			v.CDCoTHeld = false
		}
	}
	return v
}

// dcotHeld returns how many of a domain's hosts hold its DCoT, and
// whether the DCoT holds: there is one, and hosts, every one holding it.
func dcotHeld(d *trustack.PhysicalDomain, hosts []*trustack.Host) (holding int, held bool) {
	if d.DCoT == "" {
		return 0, false
	}
	for _, h := range hosts {
		if h.RCoT() == d.DCoT {
			holding++
		}
	}
	return holding, len(hosts) > 0 && holding == len(hosts)
}

// domainMap returns every domain by name.
func (s *Service) domainMap(ctx context.Context) (map[string]*trustack.PhysicalDomain, error) {
	list, err := s.store.PhysicalDomains(ctx)
	if err != nil {
		return nil, fmt.Errorf("read domains: %w", err)
	}
	out := make(map[string]*trustack.PhysicalDomain, len(list))
	for _, d := range list {
		out[d.Name] = d
	}
	return out, nil
}

// SetDomain changes a domain's location, capabilities or DCoT. A change
// of capabilities or DCoT that would leave the domain unlike a
// collaborator (one of its own, or a domain it is a collaborator of)
// gets ECONFLICT naming them; the collaboration must go first. It returns
// ENOTFOUND for an unknown domain and EINVALID for an unknown location or
// an empty capability key.
func (s *Service) SetDomain(ctx context.Context, name string, ch DomainChanges) (*DomainView, error) {
	domains, err := s.domainMap(ctx)
	if err != nil {
		return nil, err
	}
	if _, ok := domains[name]; !ok {
		return nil, trustack.Errorf(trustack.ENOTFOUND, "Domain %s does not exist.", name)
	}
	if ch.Location != nil {
		if err := s.checkLocation(ctx, name, *ch.Location); err != nil {
			return nil, err
		}
	}
	if ch.Capabilities != nil {
		if err := checkKeys("capabilities of domain "+name, ch.Capabilities); err != nil {
			return nil, err
		}
	}
	d, err := s.store.UpdatePhysicalDomain(ctx, name, func(d *trustack.PhysicalDomain) error {
		if ch.Location != nil {
			d.Location = *ch.Location
		}
		if ch.Capabilities != nil {
			d.Capabilities = maps.Clone(ch.Capabilities)
		}
		if ch.DCoT != nil {
			d.DCoT = *ch.DCoT
		}
		var unlike []string
		for _, c := range d.Collaborators {
			if b, ok := domains[c.Domain]; ok && !alike(d, b) {
				unlike = append(unlike, c.Domain)
			}
		}
		for _, o := range domains {
			if o.Name != d.Name && slices.ContainsFunc(o.Collaborators, func(c trustack.Collaborator) bool { return c.Domain == d.Name }) && !alike(d, o) {
				unlike = append(unlike, o.Name)
			}
		}
		if len(unlike) > 0 {
			slices.Sort(unlike)
			return trustack.Errorf(trustack.ECONFLICT, "Domain %s would no longer have the capabilities and DCoT of its collaborating domains %s: remove the collaborations first.",
				d.Name, strings.Join(slices.Compact(unlike), ", "))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("change domain %s: %w", name, err)
	}
	s.changed()
	return s.view(ctx, d)
}

// DeleteDomain removes a domain. It returns ENOTFOUND, or ECONFLICT
// while hosts are members or it is another domain's collaborator.
func (s *Service) DeleteDomain(ctx context.Context, name string) error {
	v, err := s.Domain(ctx, name)
	if err != nil {
		return err
	}
	if len(v.Hosts) > 0 {
		return trustack.Errorf(trustack.ECONFLICT, "Domain %s still has hosts (%s): remove them first.", name, strings.Join(v.Hosts, ", "))
	}
	domains, err := s.store.PhysicalDomains(ctx)
	if err != nil {
		return fmt.Errorf("read domains: %w", err)
	}
	var backs []string
	for _, o := range domains {
		if slices.ContainsFunc(o.Collaborators, func(c trustack.Collaborator) bool { return c.Domain == name }) {
			backs = append(backs, o.Name)
		}
	}
	if len(backs) > 0 {
		return trustack.Errorf(trustack.ECONFLICT, "Domain %s is a collaborator of %s: remove it from there first.", name, strings.Join(backs, ", "))
	}
	if err := s.store.DeletePhysicalDomain(ctx, name); err != nil {
		return fmt.Errorf("delete domain %s: %w", name, err)
	}
	s.changed()
	return nil
}

// host returns a compute host by name, or ENOTFOUND saying so.
func (s *Service) host(ctx context.Context, name string) (*trustack.Host, error) {
	h, err := s.store.HostByName(ctx, name)
	if trustack.ErrorCode(err) == trustack.ENOTFOUND {
		return nil, trustack.Errorf(trustack.ENOTFOUND, "Compute host %s does not exist.", name)
	}
	if err != nil {
		return nil, fmt.Errorf("read host %s: %w", name, err)
	}
	return h, nil
}

// AddHost makes a compute host, by name, a member of a domain; a host is
// in one domain at most, so one in another domain moves. It returns
// ENOTFOUND for an unknown domain or host.
func (s *Service) AddHost(ctx context.Context, domain, host string) (*trustack.Host, error) {
	if _, err := s.domain(ctx, domain); err != nil {
		return nil, err
	}
	h, err := s.host(ctx, host)
	if err != nil {
		return nil, err
	}
	h, err = s.store.UpdateHost(ctx, h.ID, func(h *trustack.Host) error {
		h.Domain = domain
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("add host %s to domain %s: %w", host, domain, err)
	}
	s.changed()
	return h, nil
}

// RemoveHost takes a compute host, by name, out of a domain. It returns
// ENOTFOUND for an unknown domain or host, or a host not in the domain.
func (s *Service) RemoveHost(ctx context.Context, domain, host string) error {
	if _, err := s.domain(ctx, domain); err != nil {
		return err
	}
	h, err := s.host(ctx, host)
	if err != nil {
		return err
	}
	_, err = s.store.UpdateHost(ctx, h.ID, func(h *trustack.Host) error {
		if h.Domain != domain {
			return trustack.Errorf(trustack.ENOTFOUND, "Host %s is not a member of domain %s.", host, domain)
		}
		h.Domain = ""
		return nil
	})
	if err != nil {
		return fmt.Errorf("remove host %s from domain %s: %w", host, domain, err)
	}
	s.changed()
	return nil
}

// alike reports whether two domains have the same capabilities and DCoT,
// as collaborating domains must.
func alike(a, b *trustack.PhysicalDomain) bool {
	return a.DCoT == b.DCoT && maps.Equal(a.Capabilities, b.Capabilities)
}

// checkCollaborator checks that backup may take d's load: EINVALID saying
// what differs if not.
func checkCollaborator(d, backup *trustack.PhysicalDomain, priority int) error {
	switch {
	case backup.Name == d.Name:
		return trustack.Errorf(trustack.EINVALID, "Domain %s cannot be its own collaborator.", d.Name)
	case priority < 0:
		return trustack.Errorf(trustack.EINVALID, "Invalid priority %d for collaborator %s: want 0 or more (lower goes first).", priority, backup.Name)
	case !maps.Equal(d.Capabilities, backup.Capabilities):
		return trustack.Errorf(trustack.EINVALID, "Domain %s cannot be a collaborator of %s: their capabilities differ (%s has %s, %s has %s).",
			backup.Name, d.Name, backup.Name, capabilities(backup.Capabilities), d.Name, capabilities(d.Capabilities))
	case d.DCoT != backup.DCoT:
		return trustack.Errorf(trustack.EINVALID, "Domain %s cannot be a collaborator of %s: their DCoT differ (%s has %q, %s has %q).",
			backup.Name, d.Name, backup.Name, backup.DCoT, d.Name, d.DCoT)
	}
	return nil
}

// capabilities renders capabilities as k=v pairs in key order.
func capabilities(m map[string]string) string {
	if len(m) == 0 {
		return "none"
	}
	var pairs []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		pairs = append(pairs, k+"="+m[k])
	}
	return strings.Join(pairs, ",")
}

func sortCollaborators(cs []trustack.Collaborator) {
	slices.SortFunc(cs, func(a, b trustack.Collaborator) int {
		if a.Priority != b.Priority {
			return a.Priority - b.Priority
		}
		return strings.Compare(a.Domain, b.Domain)
	})
}

// AddCollaborator makes backup a collaborator of domain at a priority
// (lower goes first), or changes its priority if it is one. The backup
// must differ from the domain and have its capabilities and DCoT:
// EINVALID saying what differs if not. It returns ENOTFOUND for an
// unknown domain or backup.
func (s *Service) AddCollaborator(ctx context.Context, domain, backup string, priority int) (*DomainView, error) {
	if domain == backup {
		return nil, trustack.Errorf(trustack.EINVALID, "Domain %s cannot be its own collaborator.", domain)
	}
	if _, err := s.domain(ctx, domain); err != nil {
		return nil, err
	}
	b, err := s.domain(ctx, backup)
	if err != nil {
		return nil, err
	}
	d, err := s.store.UpdatePhysicalDomain(ctx, domain, func(d *trustack.PhysicalDomain) error {
		if err := checkCollaborator(d, b, priority); err != nil {
			return err
		}
		d.Collaborators = slices.DeleteFunc(d.Collaborators, func(c trustack.Collaborator) bool { return c.Domain == backup })
		d.Collaborators = append(d.Collaborators, trustack.Collaborator{Domain: backup, Priority: priority})
		sortCollaborators(d.Collaborators)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("add collaborator %s to domain %s: %w", backup, domain, err)
	}
	s.changed()
	return s.view(ctx, d)
}

// RemoveCollaborator makes backup no longer a collaborator of domain. It
// returns ENOTFOUND for an unknown domain, or a backup that is not one of
// its collaborators.
func (s *Service) RemoveCollaborator(ctx context.Context, domain, backup string) (*DomainView, error) {
	if _, err := s.domain(ctx, domain); err != nil {
		return nil, err
	}
	d, err := s.store.UpdatePhysicalDomain(ctx, domain, func(d *trustack.PhysicalDomain) error {
		n := len(d.Collaborators)
		d.Collaborators = slices.DeleteFunc(d.Collaborators, func(c trustack.Collaborator) bool { return c.Domain == backup })
		if len(d.Collaborators) == n {
			return trustack.Errorf(trustack.ENOTFOUND, "Domain %s is not a collaborator of %s.", backup, domain)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("remove collaborator %s of domain %s: %w", backup, domain, err)
	}
	s.changed()
	return s.view(ctx, d)
}

// view returns d with its hosts and whether its DCoT and CDCoT hold.
func (s *Service) view(ctx context.Context, d *trustack.PhysicalDomain) (*DomainView, error) {
	members, err := s.members(ctx)
	if err != nil {
		return nil, err
	}
	all, err := s.domainMap(ctx)
	if err != nil {
		return nil, err
	}
	all[d.Name] = d
	return newView(d, members, all), nil
}

// Host properties.

// AddHostProperties merges props into a compute host's infrastructure
// properties, or its security properties if security is set. It returns
// ENOTFOUND for an unknown host and EINVALID for no properties or an
// empty key.
func (s *Service) AddHostProperties(ctx context.Context, host string, props map[string]string, security bool) (*trustack.Host, error) {
	if len(props) == 0 {
		return nil, trustack.Errorf(trustack.EINVALID, "No properties given for host %s: give KEY=VALUE pairs.", host)
	}
	if err := checkKeys("properties of host "+host, props); err != nil {
		return nil, err
	}
	if _, ok := props[trustack.SecurityTrust]; ok && security {
		if err := s.trustByHand(host); err != nil {
			return nil, err
		}
	}
	h, err := s.host(ctx, host)
	if err != nil {
		return nil, err
	}
	h, err = s.store.UpdateHost(ctx, h.ID, func(h *trustack.Host) error {
		m := &h.Properties
		if security {
			m = &h.Security
		}
		if *m == nil {
			*m = map[string]string{}
		}
		maps.Copy(*m, props)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("set properties of host %s: %w", host, err)
	}
	s.changed()
	return h, nil
}

// trustByHand returns EINVALID if hosts attest, whose trust operators
// then cannot set or remove.
func (s *Service) trustByHand(host string) error {
	if !s.opts.Attested {
		return nil
	}
	return trustack.Errorf(trustack.EINVALID, "Host %s's %s is the chain of trust its attestation proved, which the verifier keeps: it cannot be set by hand while hosts attest. Put the host in a domain whose chain of trust names a white-list instead.", host, trustack.SecurityTrust)
}

// HostProperties returns a compute host's infrastructure and security
// properties, never nil; ENOTFOUND for an unknown host.
func (s *Service) HostProperties(ctx context.Context, host string) (properties, security map[string]string, err error) {
	h, err := s.host(ctx, host)
	if err != nil {
		return nil, nil, err
	}
	properties, security = h.Properties, h.Security
	if properties == nil {
		properties = map[string]string{}
	}
	if security == nil {
		security = map[string]string{}
	}
	return properties, security, nil
}

// RemoveHostProperties removes the keys from a compute host's
// infrastructure properties, or its security properties if security is
// set: all of them or, if one is missing, none (ENOTFOUND naming it). It
// returns ENOTFOUND for an unknown host and EINVALID for no keys.
func (s *Service) RemoveHostProperties(ctx context.Context, host string, keys []string, security bool) (*trustack.Host, error) {
	if len(keys) == 0 {
		return nil, trustack.Errorf(trustack.EINVALID, "No property keys given for host %s.", host)
	}
	h, err := s.host(ctx, host)
	if err != nil {
		return nil, err
	}
	kind := "property"
	if security {
		kind = "security property"
		if slices.Contains(keys, trustack.SecurityTrust) {
			if err := s.trustByHand(host); err != nil {
				return nil, err
			}
		}
	}
	h, err = s.store.UpdateHost(ctx, h.ID, func(h *trustack.Host) error {
		m := h.Properties
		if security {
			m = h.Security
		}
		for _, k := range keys {
			if _, ok := m[k]; !ok {
				return trustack.Errorf(trustack.ENOTFOUND, "Host %s has no %s %s.", host, kind, k)
			}
		}
		for _, k := range keys {
			delete(m, k)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("remove properties of host %s: %w", host, err)
	}
	s.changed()
	return h, nil
}

// Requirement entries.

// entryName is what requirement entry names look like: they are the keys
// of scheduler hints and of flavor extra specs (trust:NAME).
var entryName = regexp.MustCompile(`^[a-z0-9_.-]+$`)

// novaHints are the scheduler hints Nova gives a meaning of its own: no
// requirement entry may have these names.
var novaHints = []string{"group", "same_host", "different_host", "availability_zone", "query", "target_cell", "build_near_host_ip", "cidr"}

// CreateEntry adds a requirement entry users may state. It returns
// EINVALID for a bad name or kind (the name is lower-case letters,
// digits, '_', '.' and '-', and not one of Nova's own scheduler hints nor
// "level", which trust:level would clash with) and
// ECONFLICT for a name in use.
func (s *Service) CreateEntry(ctx context.Context, name, kind, description string) (*trustack.RequirementEntry, error) {
	switch {
	case !entryName.MatchString(name) || len(name) > 255:
		return nil, trustack.Errorf(trustack.EINVALID, "Invalid requirement entry name %q: use 1 to 255 lower-case letters, digits, '_', '.' or '-'.", name)
	case slices.Contains(novaHints, name):
		return nil, trustack.Errorf(trustack.EINVALID, "Invalid requirement entry name %q: Nova's scheduler hint of that name means something else.", name)
	case name == "level":
		// Flavors state the trust entry as trust:level.
		return nil, trustack.Errorf(trustack.EINVALID, "Invalid requirement entry name %q: the flavor extra spec trust:level states the trust requirement.", name)
	case !slices.Contains(trustack.RequirementKinds, kind):
		return nil, trustack.Errorf(trustack.EINVALID, "Unknown requirement kind %q: want one of %s.", kind, strings.Join(trustack.RequirementKinds, ", "))
	}
	e := &trustack.RequirementEntry{Name: name, Kind: kind, Description: description}
	if err := s.store.CreateRequirementEntry(ctx, e); err != nil {
		if trustack.ErrorCode(err) == trustack.ECONFLICT {
			return nil, trustack.Errorf(trustack.ECONFLICT, "A requirement entry named %s already exists.", name)
		}
		return nil, fmt.Errorf("create requirement entry %s: %w", name, err)
	}
	s.changed()
	return e, nil
}

// Entries returns every requirement entry, by name.
func (s *Service) Entries(ctx context.Context) ([]*trustack.RequirementEntry, error) {
	return s.store.RequirementEntries(ctx)
}

// DeleteEntry removes a requirement entry. It returns ENOTFOUND, or
// ECONFLICT naming the projects that still state a requirement of it.
func (s *Service) DeleteEntry(ctx context.Context, name string) error {
	entries, err := s.entries(ctx)
	if err != nil {
		return err
	}
	if _, ok := entries[name]; !ok {
		return trustack.Errorf(trustack.ENOTFOUND, "Requirement entry %s does not exist.", name)
	}
	all, err := s.store.ProjectRequirements(ctx, "")
	if err != nil {
		return fmt.Errorf("read requirements: %w", err)
	}
	var projects []string
	for _, r := range all {
		if r.Entry == name {
			projects = append(projects, r.ProjectID)
		}
	}
	if len(projects) > 0 {
		return trustack.Errorf(trustack.ECONFLICT, "Projects %s still state a %s requirement: unset it first.", strings.Join(projects, ", "), name)
	}
	if err := s.store.DeleteRequirementEntry(ctx, name); err != nil {
		return fmt.Errorf("delete requirement entry %s: %w", name, err)
	}
	s.changed()
	return nil
}

// Project requirements.

// SetMode is how SetRequirement treats a requirement the project has
// for the entry.
type SetMode int

const (
	// Create states a new requirement: ECONFLICT if the project has one
	// for the entry.
	Create SetMode = iota
	// Change changes the project's requirement: ENOTFOUND if it has none
	// for the entry.
	Change
	// Set creates or changes.
	Set
)

// SetRequirement states a requirement of a project ("" for the caller's):
// the value of an entry, which its kind must accept. An operator's
// requirement is locked: the project's members can neither change nor
// unset it. It returns EFORBIDDEN when a member acts on another project
// or on a locked requirement, EINVALID for an unknown entry or a bad value
// (an isolation that excludes the project itself, say), and ECONFLICT or
// ENOTFOUND as mode says.
func (s *Service) SetRequirement(ctx context.Context, c Caller, projectID, entry, value string, mode SetMode) (*trustack.ProjectRequirement, error) {
	projectID, err := c.project(projectID)
	if err != nil {
		return nil, err
	}
	e, err := s.entry(ctx, entry)
	if err != nil {
		return nil, err
	}
	if err := trustack.CheckRequirementValue(e.Kind, value); err != nil {
		return nil, err
	}
	if e.Kind == trustack.KindIsolation {
		iso, _ := trustack.ParseIsolation(value)
		if slices.Contains(iso.Exclude, projectID) {
			return nil, trustack.Errorf(trustack.EINVALID, "Invalid isolation %q: project %s cannot exclude itself.", value, projectID)
		}
	}
	r := &trustack.ProjectRequirement{ProjectID: projectID, Entry: entry, Value: value, Locked: c.Admin, UpdatedAt: s.opts.Now().UTC()}
	err = s.store.UpdateProjectRequirement(ctx, projectID, entry, func(old *trustack.ProjectRequirement) (*trustack.ProjectRequirement, error) {
		switch {
		case old != nil && mode == Create:
			return nil, trustack.Errorf(trustack.ECONFLICT, "Project %s already has requirement %s=%s: use change to change it.", projectID, entry, old.Value)
		case old == nil && mode == Change:
			return nil, trustack.Errorf(trustack.ENOTFOUND, "Project %s has no requirement %s to change: use set to state one.", projectID, entry)
		case old != nil && old.Locked && !c.Admin:
			return nil, lockedError(entry, projectID)
		}
		return r, nil
	})
	if err != nil {
		return nil, fmt.Errorf("set requirement %s of project %s: %w", entry, projectID, err)
	}
	s.changed()
	return r, nil
}

func lockedError(entry, projectID string) error {
	return trustack.Errorf(trustack.EFORBIDDEN, "Requirement %s of project %s was set by an operator; only an operator can change it.", entry, projectID)
}

// entry returns a requirement entry, or EINVALID naming those there are.
func (s *Service) entry(ctx context.Context, name string) (*trustack.RequirementEntry, error) {
	entries, err := s.entries(ctx)
	if err != nil {
		return nil, err
	}
	if e, ok := entries[name]; ok {
		return e, nil
	}
	names := slices.Sorted(maps.Keys(entries))
	return nil, trustack.Errorf(trustack.EINVALID, "Unknown requirement entry %q: the entries are %s.", name, strings.Join(names, ", "))
}

// Requirements returns the requirements a project ("" for the caller's)
// states, by entry; EFORBIDDEN when a member asks of another project.
func (s *Service) Requirements(ctx context.Context, c Caller, projectID string) ([]*trustack.ProjectRequirement, error) {
	projectID, err := c.project(projectID)
	if err != nil {
		return nil, err
	}
	list, err := s.store.ProjectRequirements(ctx, projectID)
	if err != nil {
		return nil, fmt.Errorf("read requirements of project %s: %w", projectID, err)
	}
	return list, nil
}

// UnsetRequirement removes a project's ("" for the caller's) requirement
// for an entry. It returns ENOTFOUND if the project has none, and
// EFORBIDDEN when a member acts on another project or on a locked
// requirement.
func (s *Service) UnsetRequirement(ctx context.Context, c Caller, projectID, entry string) error {
	projectID, err := c.project(projectID)
	if err != nil {
		return err
	}
	err = s.store.UpdateProjectRequirement(ctx, projectID, entry, func(old *trustack.ProjectRequirement) (*trustack.ProjectRequirement, error) {
		switch {
		case old == nil:
			return nil, trustack.Errorf(trustack.ENOTFOUND, "Project %s has no requirement %s.", projectID, entry)
		case old.Locked && !c.Admin:
			return nil, lockedError(entry, projectID)
		}
		return nil, nil
	})
	if err != nil {
		return fmt.Errorf("unset requirement %s of project %s: %w", entry, projectID, err)
	}
	s.changed()
	return nil
}
