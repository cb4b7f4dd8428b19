package sim

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"sync"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/scheduler"
)

var _ scheduler.Hosts = (*Store)(nil)

// Store is an in-memory compute-host store with sqlstore's claim
// semantics: a claim is a compare-and-swap on the host's generation that
// also checks room, the isolation of the host's tenants both ways and a
// server group's policy, and every change moves the generation on. It
// stands in for the database where the real one cannot be had: ten
// thousand hosts in a benchmark, thousands of property-test cases.
//
// Group membership is what the claims made with a group say: a server
// claimed with group g is g's member from then on (the database reads it
// from the server's row instead).
//
// A Store is safe for concurrent use; one mutex guards it all. What it
// returns is a copy the caller may change.
type Store struct {
	mu       sync.Mutex
	hosts    map[string]*trustack.Host // by ID; Tenants kept as claims say
	claims   map[string]trustack.Claim // by server ID
	onHost   map[string][]string       // server IDs with a claim, by host ID
	members  map[string]string         // group ID, by server ID
	topology *trustack.Topology
}

// NewStore returns a store holding copies of hosts, with no claims on
// them (their usage and tenants are cleared), and of the topology.
func NewStore(hosts []*trustack.Host, t *trustack.Topology) *Store {
	s := &Store{hosts: make(map[string]*trustack.Host, len(hosts)), claims: map[string]trustack.Claim{},
		onHost: map[string][]string{}, members: map[string]string{}, topology: copyTopology(t)}
	for _, h := range hosts {
		c := copyHost(h)
		c.UsedVCPUs, c.UsedMemoryMB, c.UsedDiskGB, c.RunningVMs, c.Tenants = 0, 0, 0, 0, nil
		s.hosts[c.ID] = c
	}
	return s
}

// Hosts returns every host, by name.
func (s *Store) Hosts(context.Context) ([]*trustack.Host, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*trustack.Host, 0, len(s.hosts))
	for _, h := range s.hosts {
		out = append(out, copyHost(h))
	}
	slices.SortFunc(out, func(a, b *trustack.Host) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

// Host returns one host; ENOTFOUND.
func (s *Store) Host(_ context.Context, id string) (*trustack.Host, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.hosts[id]
	if !ok {
		return nil, trustack.Errorf(trustack.ENOTFOUND, "Compute host %s could not be found.", id)
	}
	return copyHost(h), nil
}

// Claim takes c's resources of c.HostID if the host is at generation, has
// room, admits c's project beside its tenants and keeps group's policy
// (nil for none). It returns the host after the claim; ECONFLICT if any
// of that does not hold, the host is unknown or the server already holds
// a claim.
func (s *Store) Claim(_ context.Context, c trustack.Claim, generation int64, group *trustack.ServerGroup) (*trustack.Host, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.claims[c.ServerID]; ok {
		return nil, trustack.Errorf(trustack.ECONFLICT, "Server %s already holds a claim.", c.ServerID)
	}
	if err := s.checkGroup(c, group); err != nil {
		return nil, err
	}
	h, err := s.take(c, generation)
	if err != nil {
		return nil, err
	}
	s.claims[c.ServerID] = c
	s.onHost[c.HostID] = append(s.onHost[c.HostID], c.ServerID)
	if group != nil {
		s.members[c.ServerID] = group.ID
	}
	return copyHost(h), nil
}

// MoveClaim moves the claim of c.ServerID to c.HostID, taken as Claim
// takes one, and gives what it held back to its former host, whose
// generation moves on. It returns both hosts after the move; ENOTFOUND if
// the server holds no claim, EINVALID if it is on c.HostID already,
// ECONFLICT as Claim.
func (s *Store) MoveClaim(_ context.Context, c trustack.Claim, generation int64, group *trustack.ServerGroup) (from, to *trustack.Host, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.claims[c.ServerID]
	if !ok {
		return nil, nil, trustack.Errorf(trustack.ENOTFOUND, "Server %s holds no claim on a compute host to move.", c.ServerID)
	}
	if err := s.checkGroup(c, group); err != nil {
		return nil, nil, err
	}
	if old.HostID == c.HostID {
		return nil, nil, trustack.Errorf(trustack.EINVALID, "The claim of server %s is on host %s already.", c.ServerID, c.HostID)
	}
	if _, err := s.take(c, generation); err != nil {
		return nil, nil, err
	}
	s.claims[c.ServerID] = c
	s.onHost[old.HostID] = slices.DeleteFunc(s.onHost[old.HostID], func(id string) bool { return id == c.ServerID })
	s.onHost[c.HostID] = append(s.onHost[c.HostID], c.ServerID)
	s.giveBack(old)
	s.hosts[c.HostID].Tenants = s.tenants(c.HostID)
	if group != nil {
		s.members[c.ServerID] = group.ID
	}
	return copyHost(s.hosts[old.HostID]), copyHost(s.hosts[c.HostID]), nil
}

// GroupHosts returns the IDs of the hosts that the group's members, other
// than exceptServer, hold claims on, in order.
func (s *Store) GroupHosts(_ context.Context, groupID, exceptServer string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.groupHosts(groupID, exceptServer), nil
}

// Topology returns a copy of the locations, distances and domains.
func (s *Store) Topology(context.Context) (*trustack.Topology, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return copyTopology(s.topology), nil
}

// Claims returns the claims on a host ("" for all), by server ID.
func (s *Store) Claims(_ context.Context, hostID string) ([]trustack.Claim, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []trustack.Claim
	for _, c := range s.claims {
		if hostID == "" || c.HostID == hostID {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b trustack.Claim) int { return cmp.Compare(a.ServerID, b.ServerID) })
	return out, nil
}

// take is the compare-and-swap: c's resources are taken of c.HostID if it
// is at generation, has room and admits c's project. The caller holds
// s.mu and records the claim.
func (s *Store) take(c trustack.Claim, generation int64) (*trustack.Host, error) {
	h, ok := s.hosts[c.HostID]
	if !ok || h.Generation != generation || !h.Free(c.VCPUs, c.MemoryMB, c.DiskGB) || !trustack.Admits(h.Tenants, c.ProjectID, c.Isolation) {
		return nil, lostClaim(c.HostID)
	}
	h.UsedVCPUs += c.VCPUs
	h.UsedMemoryMB += c.MemoryMB
	h.UsedDiskGB += c.DiskGB
	h.RunningVMs++
	h.Generation++
	h.Tenants = sortTenants(trustack.WithTenant(h.Tenants, c.ProjectID, c.Isolation))
	return h, nil
}

// giveBack returns what c took of its host, whose tenants are counted
// again from the claims left on it; the caller holds s.mu and has
// removed c from s.onHost.
func (s *Store) giveBack(c trustack.Claim) {
	h := s.hosts[c.HostID]
	h.UsedVCPUs -= c.VCPUs
	h.UsedMemoryMB -= c.MemoryMB
	h.UsedDiskGB -= c.DiskGB
	h.RunningVMs--
	h.Generation++
	h.Tenants = s.tenants(c.HostID)
}

// tenants counts a host's tenants from its claims; the caller holds s.mu.
func (s *Store) tenants(hostID string) []trustack.Tenant {
	var out []trustack.Tenant
	for _, id := range s.onHost[hostID] {
		c := s.claims[id]
		out = trustack.WithTenant(out, c.ProjectID, c.Isolation)
	}
	return sortTenants(out)
}

// checkGroup checks the group's policy against the claim; the caller
// holds s.mu.
func (s *Store) checkGroup(c trustack.Claim, g *trustack.ServerGroup) error {
	if g == nil {
		return nil
	}
	for _, h := range s.groupHosts(g.ID, c.ServerID) {
		switch {
		case g.Policy == trustack.PolicyAntiAffinity && h == c.HostID,
			g.Policy == trustack.PolicyAffinity && h != c.HostID:
			return lostClaim(c.HostID)
		}
	}
	return nil
}

// groupHosts returns the hosts of the group's members but one, sorted;
// the caller holds s.mu.
func (s *Store) groupHosts(groupID, exceptServer string) []string {
	var out []string
	for server, g := range s.members {
		if g == groupID && server != exceptServer {
			if c, ok := s.claims[server]; ok {
				out = append(out, c.HostID)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func lostClaim(host string) error {
	return trustack.Errorf(trustack.ECONFLICT, "Compute host %s changed, has no room, breaks the server group's policy or the isolation of a project on it.", host)
}

func sortTenants(t []trustack.Tenant) []trustack.Tenant {
	slices.SortFunc(t, func(a, b trustack.Tenant) int { return cmp.Compare(a.ProjectID, b.ProjectID) })
	return t
}

// copyHost returns a copy of h that shares no mutable state with it.
func copyHost(h *trustack.Host) *trustack.Host {
	c := *h
	c.Properties = maps.Clone(h.Properties)
	c.Security = maps.Clone(h.Security)
	c.PhysicalNetworks = slices.Clone(h.PhysicalNetworks)
	c.Tenants = slices.Clone(h.Tenants)
	for i := range c.Tenants {
		c.Tenants[i].Isolation.Exclude = slices.Clone(c.Tenants[i].Isolation.Exclude)
	}
	return &c
}

// copyTopology returns a deep copy of t; nil for nil.
func copyTopology(t *trustack.Topology) *trustack.Topology {
	if t == nil {
		return &trustack.Topology{Locations: map[string]trustack.Location{}, Domains: map[string]*trustack.PhysicalDomain{}, Distances: map[[2]string]int{}}
	}
	c := &trustack.Topology{Locations: maps.Clone(t.Locations), Distances: maps.Clone(t.Distances),
		Domains: make(map[string]*trustack.PhysicalDomain, len(t.Domains))}
	for name, d := range t.Domains {
		dc := *d
		dc.Capabilities = maps.Clone(d.Capabilities)
		dc.Collaborators = slices.Clone(d.Collaborators)
		c.Domains[name] = &dc
	}
	return c
}
