// Package scheduler chooses the compute host for each new server and
// claims the server's share of it. Drivers differ in how they choose among
// the hosts that can take the server: "acaas" (the default) first chooses
// the physical domain that best fits the server's requirements, then its
// collaborating domains, and picks at random among the domain's hosts that
// can take it; "filter" weighs hosts (Nova's filter scheduler), "simple"
// takes the least loaded, "chance" picks at random. Every driver honours
// the hard constraints: the host's service is up and enabled, has room, is
// in the asked-for availability zone, meets every requirement of the
// server, is in an aggregate whose metadata matches the flavor's
// aggregate_instance_extra_specs and in none that a filter_tenant_id
// reserves for other projects (Nova's AggregateInstanceExtraSpecsFilter
// and AggregateMultiTenancyIsolation), shares no host with a project
// either side's isolation excludes,
// keeps the server group's policy and the same-host and different-host
// hints, and is wired to the physical networks of the server's ports.
// Every driver also honours the soft group policies: soft-affinity tries
// the hosts of the group's members first, soft-anti-affinity tries them
// last; neither ever refuses a host.
//
// The claim is a compare-and-swap on the host's generation, done by the
// store in one transaction with the group's policy and the isolation
// checks: concurrent
// placements, in this process or another controller, never oversubscribe a
// host, break an anti-affinity policy or put excluded projects together.
// A placement that loses the race
// re-reads the host and chooses again.
package scheduler

import (
	"context"
	"fmt"
	"iter"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/trustack/trustack"
)

// Hosts is what the scheduler needs of the store.
type Hosts interface {
	// Hosts returns every compute host.
	Hosts(ctx context.Context) ([]*trustack.Host, error)
	// Host returns one host, or ENOTFOUND.
	Host(ctx context.Context, id string) (*trustack.Host, error)
	// Claim takes c's resources of c.HostID if the host is still at
	// generation, has room, admits c's project beside its tenants and,
	// for a group, keeps its policy; ECONFLICT otherwise. It returns the
	// host after the claim.
	Claim(ctx context.Context, c trustack.Claim, generation int64, group *trustack.ServerGroup) (*trustack.Host, error)
	// MoveClaim moves the claim of c.ServerID to c.HostID, as Claim takes
	// one, giving back what it held of its former host, in one step. It
	// returns the two hosts after the move.
	MoveClaim(ctx context.Context, c trustack.Claim, generation int64, group *trustack.ServerGroup) (from, to *trustack.Host, err error)
	// GroupHosts returns the IDs of the hosts that the group's members,
	// other than the given server, hold claims on.
	GroupHosts(ctx context.Context, groupID, exceptServer string) ([]string, error)
	// Topology returns the locations, distances and physical domains.
	Topology(ctx context.Context) (*trustack.Topology, error)
}

// Request is a server to place.
type Request struct {
	Server *trustack.Server
	// Zone is the availability zone asked for, "" for any.
	Zone string
	// ImageProperties are the properties of the server's image, for the
	// image-properties filter.
	ImageProperties map[string]string
	// Group is the server's group, if any.
	Group *trustack.ServerGroup
	// SameHost and DifferentHost are host IDs from the scheduler hints of
	// the same names.
	SameHost      []string
	DifferentHost []string
	// Exclude are hosts not to use, such as one that just failed to spawn
	// the server.
	Exclude []string
	// Only, when set, is the ID of the one host the server may go to: an
	// operator's choice, which must still pass every check.
	Only string
	// Move places a server that holds a claim on another host: the claim
	// moves to the chosen host, and the host it leaves gets back what it
	// held.
	Move bool
	// PhysicalNetworks are the physical networks the server's ports are
	// on: a host must be wired to each of them.
	PhysicalNetworks []string
	// PreferDomain is a physical domain the acaas driver tries first,
	// with its collaborating domains by priority, if the server's
	// requirements allow it: the domain of a host whose servers are
	// moved away, so that they stay as close as they can.
	PreferDomain string

	isolation      trustack.Isolation // the server's, read once by Place
	aggregateSpecs []aggregateSpec    // its flavor's, read once by Place
}

// Options configure a Scheduler; zero values take the defaults.
type Options struct {
	// Driver is "acaas" (the default), "filter", "simple" or "chance".
	Driver string
	// RAMWeightMultiplier weighs free RAM for the filter driver: positive
	// spreads servers over hosts (the default, 1.0), negative packs them.
	RAMWeightMultiplier *float64
	// HostSubsetSize makes the filter driver choose at random among the
	// best N hosts (default 1: always the best).
	HostSubsetSize int
	// Alive reports whether a host's service is up; nil means every host is.
	Alive func(*trustack.Host) bool
	// Rand is the source of randomness (default: seeded from the clock).
	Rand *rand.Rand
	// Refresh is how often the view of hosts is read again from the store
	// (default 5 s); the scheduler's own claims update it at once.
	Refresh time.Duration
	// Now returns the current time (default time.Now).
	Now func() time.Time
}

// Scheduler places servers. It is safe for concurrent use.
type Scheduler struct {
	hosts Hosts
	opts  Options
	// order returns the candidates in the order to try them, for every
	// driver but acaas, which picks one host at a time.
	order func(s *Scheduler, req Request, groupHosts []string, candidates []*trustack.Host) []*trustack.Host

	mu       sync.Mutex
	rand     *rand.Rand
	view     map[string]*trustack.Host
	topology *trustack.Topology
	members  map[string][]string // host IDs by domain name ("" for none), in name order
	// localDomains are the names of the topology's local domains, sorted.
	localDomains []string
	tenancy      map[string]map[string]bool // host IDs by project with servers on them
	// aggregates are the operators' aggregates each host is in, by host
	// name, and domainAggregates those that show the physical domains,
	// by domain name; the aggregate filters read both.
	aggregates       map[string][]*trustack.Aggregate
	domainAggregates map[string]*trustack.Aggregate
	readAt           time.Time
	inFlight         map[string][]trustack.Claim // by host: what placements in flight are claiming
	claiming         map[string]*sync.Mutex      // by host: claims from this process take turns
	settled          *sync.Cond
}

// New returns a scheduler over hosts.
func New(hosts Hosts, opts Options) (*Scheduler, error) {
	s := &Scheduler{hosts: hosts, opts: opts, inFlight: map[string][]trustack.Claim{}, claiming: map[string]*sync.Mutex{}}
	s.settled = sync.NewCond(&s.mu)
	switch opts.Driver {
	case "", "acaas":
	case "filter":
		s.order = (*Scheduler).byWeight
	case "simple":
		s.order = (*Scheduler).byLoad
	case "chance":
		s.order = (*Scheduler).atRandom
	default:
		return nil, trustack.Errorf(trustack.EINVALID, "unknown scheduler driver %q: want acaas, filter, simple or chance", opts.Driver)
	}
	if s.opts.RAMWeightMultiplier == nil {
		one := 1.0
		s.opts.RAMWeightMultiplier = &one
	}
	if s.opts.HostSubsetSize < 1 {
		s.opts.HostSubsetSize = 1
	}
	if s.opts.Alive == nil {
		s.opts.Alive = func(*trustack.Host) bool { return true }
	}
	s.rand = s.opts.Rand
	if s.rand == nil {
		s.rand = rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0))
	}
	if s.opts.Refresh == 0 {
		s.opts.Refresh = 5 * time.Second
	}
	if s.opts.Now == nil {
		s.opts.Now = time.Now
	}
	return s, nil
}

// maxRounds bounds how often one placement looks at the hosts anew after
// losing claim races on every candidate; each loss means another
// controller won that host meanwhile.
const maxRounds = 8

// Place chooses a host for the request and claims the server's share of
// it, returning the host after the claim. Placements in this process see
// each other's claims in flight, as reservations, and so spread instead of
// colliding; a claim lost to another controller moves on to the next
// candidate, and when all are taken the hosts are looked at anew. When no
// host can take the server it returns EOVERQUOTA with "No valid host was
// found." and the reasons hosts were ruled out, naming the requirements
// they did not meet.
func (s *Scheduler) Place(ctx context.Context, req Request) (*trustack.Host, error) {
	f := req.Server.Flavor
	req.isolation = req.Server.Requirements.Isolation()
	req.aggregateSpecs = aggregateSpecs(f)
	want := trustack.Claim{ServerID: req.Server.ID, VCPUs: f.VCPUs, MemoryMB: f.RAM, DiskGB: req.Server.LocalDiskGB(),
		ProjectID: req.Server.ProjectID, Isolation: req.isolation}
	for round := 0; round < maxRounds; round++ {
		var groupHosts []string
		if req.Group != nil {
			var err error
			if groupHosts, err = s.hosts.GroupHosts(ctx, req.Group.ID, req.Server.ID); err != nil {
				return nil, fmt.Errorf("read hosts of server group %s: %w", req.Group.ID, err)
			}
		}
		if err := s.refresh(ctx); err != nil {
			return nil, err
		}
		next, err := s.tries(req, groupHosts, want)
		if err != nil {
			return nil, err
		}
		for host := next(); host != nil; host = next() {
			claimed, err := s.claim(ctx, host.ID, want, req)
			s.unreserve(host.ID, want)
			switch {
			case err == nil:
				return claimed, nil
			case trustack.ErrorCode(err) != trustack.ECONFLICT:
				return nil, fmt.Errorf("claim %s on host %s: %w", req.Server.ID, host.Name, err)
			case ctx.Err() != nil:
				return nil, ctx.Err()
			}
		}
	}
	return nil, trustack.Errorf(trustack.EOVERQUOTA, "No valid host was found. Hosts kept changing under concurrent claims after %d rounds.", maxRounds)
}

// tries returns the hosts to try claiming, one at a time, each reserved
// for the claim; nil when there are no more. When no host at all can take
// the request it returns EOVERQUOTA saying why.
func (s *Scheduler) tries(req Request, groupHosts []string, want trustack.Claim) (func() *trustack.Host, error) {
	if s.order == nil {
		tried := map[string]bool{}
		first, err := firstFound(s, req, groupHosts, func() (*trustack.Host, bool) {
			clear(tried)
			h := s.pick(req, groupHosts, want, tried)
			return h, h != nil
		})
		if err != nil {
			return nil, err
		}
		return func() *trustack.Host {
			if h := first; h != nil {
				first = nil
				return h
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			return s.pick(req, groupHosts, want, tried)
		}, nil
	}
	candidates, err := firstFound(s, req, groupHosts, func() ([]*trustack.Host, bool) {
		c := s.candidates(req, groupHosts)
		return c, len(c) > 0
	})
	if err != nil {
		return nil, err
	}
	ordered := softOrder(req, groupHosts, s.order(s, req, groupHosts, candidates))
	return func() *trustack.Host {
		for len(ordered) > 0 {
			h := ordered[0]
			ordered = ordered[1:]
			if s.reserve(h.ID, want) {
				return h
			}
			// Taken by a placement in flight since the candidates were read.
		}
		return nil
	}, nil
}

// firstFound looks, with s.mu held, until look finds something or no
// claim in flight could change what it finds, and returns what it found
// or else the EOVERQUOTA of a request no host can take. Holding s.mu from
// a look to the wait that follows it means no claim can land or fail
// unseen between them.
func firstFound[T any](s *Scheduler, req Request, groupHosts []string, look func() (T, bool)) (T, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	found, ok := look()
	for settle := 0; !ok && settle < 100 && s.waitInFlight(req, groupHosts); settle++ {
		found, ok = look()
	}
	if !ok {
		return found, s.noValidHost(req, groupHosts)
	}
	return found, nil
}

// pick is the acaas driver: it goes through the domains in the order
// domainOrder gives and, within each, through its hosts in random order,
// and reserves the first host not yet tried that can take the request;
// nil if none can. A burst of requests thus gets no placement locality to
// exploit: among the hosts of the best domain, any is as likely as any
// other. A server asking for exclusive hosts goes first to those its
// project holds already, so that exclusive projects strand no more hosts
// than they need. The caller holds s.mu.
func (s *Scheduler) pick(req Request, groupHosts []string, want trustack.Claim, tried map[string]bool) *trustack.Host {
	switch req.softPolicy() {
	case trustack.PolicySoftAffinity:
		if h := s.pickAmong(slices.Clone(groupHosts), req, groupHosts, want, tried); h != nil {
			return h
		}
	case trustack.PolicySoftAntiAffinity:
		// The members' hosts are out of the first look, back in the next.
		var hidden []string
		for _, id := range groupHosts {
			if !tried[id] {
				tried[id] = true
				hidden = append(hidden, id)
			}
		}
		h := s.pickAnywhere(req, groupHosts, want, tried)
		for _, id := range hidden {
			delete(tried, id)
		}
		if h != nil {
			return h
		}
	}
	return s.pickAnywhere(req, groupHosts, want, tried)
}

// pickAnywhere is pick without the soft group policies; the caller holds
// s.mu.
func (s *Scheduler) pickAnywhere(req Request, groupHosts []string, want trustack.Claim, tried map[string]bool) *trustack.Host {
	if want.Isolation.Exclusive {
		if h := s.pickOwn(req, groupHosts, want, tried); h != nil {
			return h
		}
	}
	return s.pickIn(s.domainOrder(req.Server.Requirements, req.PreferDomain), req, groupHosts, want, tried)
}

// pickOwn is pick among the hosts where the project has servers, or
// claims in flight, in random order; the caller holds s.mu.
func (s *Scheduler) pickOwn(req Request, groupHosts []string, want trustack.Claim, tried map[string]bool) *trustack.Host {
	var ids []string
	for id := range s.tenancy[want.ProjectID] {
		ids = append(ids, id)
	}
	for id, list := range s.inFlight {
		if !s.tenancy[want.ProjectID][id] && slices.ContainsFunc(list, func(c trustack.Claim) bool { return c.ProjectID == want.ProjectID }) {
			ids = append(ids, id)
		}
	}
	return s.pickAmong(ids, req, groupHosts, want, tried)
}

// pickAmong is pick among ids, which it sorts then shuffles, in that
// random order; the caller holds s.mu.
func (s *Scheduler) pickAmong(ids []string, req Request, groupHosts []string, want trustack.Claim, tried map[string]bool) *trustack.Host {
	// Map order is not the seeded source's: sort, then shuffle with it.
	slices.Sort(ids)
	s.rand.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	for _, id := range ids {
		if h := s.try(id, req, groupHosts, want, tried); h != nil {
			return h
		}
	}
	return nil
}

// pickIn is pick over the domains in order; the caller holds s.mu.
func (s *Scheduler) pickIn(order iter.Seq[string], req Request, groupHosts []string, want trustack.Claim, tried map[string]bool) *trustack.Host {
	for d := range order {
		ids := s.members[d]
		// A partial Fisher-Yates shuffle: only as many draws as hosts looked at.
		swapped := map[int]int{}
		at := func(i int) int {
			if j, ok := swapped[i]; ok {
				return j
			}
			return i
		}
		for i := range ids {
			j := i + s.rand.IntN(len(ids)-i)
			vi, vj := at(i), at(j)
			swapped[j] = vi
			if h := s.try(ids[vj], req, groupHosts, want, tried); h != nil {
				return h
			}
		}
	}
	return nil
}

// try reserves the host for want if it was not tried yet and can take the
// request; the caller holds s.mu.
func (s *Scheduler) try(id string, req Request, groupHosts []string, want trustack.Claim, tried map[string]bool) *trustack.Host {
	h := s.withReservations(s.view[id])
	if tried[id] || h == nil {
		return nil
	}
	tried[id] = true
	if s.reject(req, groupHosts, h) != "" {
		return nil
	}
	s.inFlight[id] = append(s.inFlight[id], want)
	return h
}

// domainOrder returns the domains to look in, in order: prefer (a local
// domain, "" for none) with its local collaborators if they fit, the local domains
// that fit the requirements, those that meet more of them by themselves
// (a DCoT that is the trust level asked for, capabilities asked for)
// first and, among equals, in random order, each followed by its local
// collaborating domains by priority; then hosts in no domain; then, where
// the requirements allow federation, the emergency domains that
// collaborate with those local domains, in the same order. The caller
// holds s.mu.
func (s *Scheduler) domainOrder(reqs trustack.Requirements, prefer string) iter.Seq[string] {
	type scored struct {
		name  string
		score int
	}
	t := s.topology
	local := make([]scored, 0, len(s.localDomains))
	ranked := false
	for _, name := range s.localDomains {
		if len(s.members[name]) == 0 {
			continue
		}
		if ok, score := reqs.DomainFit(t.Domains[name], t); ok {
			local = append(local, scored{name, score})
			ranked = ranked || score != local[0].score
		}
	}
	s.rand.Shuffle(len(local), func(i, j int) { local[i], local[j] = local[j], local[i] })
	if ranked {
		slices.SortStableFunc(local, func(a, b scored) int { return b.score - a.score })
	}
	// Lazily: most placements end in the first domain.
	return func(yield func(string) bool) {
		var seen map[string]bool
		add := func(name string) bool {
			if seen[name] {
				return true
			}
			if seen == nil {
				seen = map[string]bool{}
			}
			seen[name] = true
			return yield(name)
		}
		collaborators := func(of, source string) bool {
			for _, c := range t.Domains[of].Collaborators {
				if d := t.Domains[c.Domain]; d != nil && d.Source == source {
					if ok, _ := reqs.DomainFit(d, t); ok && !add(c.Domain) {
						return false
					}
				}
			}
			return true
		}
		if d := t.Domains[prefer]; d != nil && d.Source == trustack.SourceLocal && len(s.members[prefer]) > 0 {
			if ok, _ := reqs.DomainFit(d, t); ok && (!add(prefer) || !collaborators(prefer, trustack.SourceLocal)) {
				return
			}
		}
		for _, l := range local {
			if !add(l.name) || !collaborators(l.name, trustack.SourceLocal) {
				return
			}
		}
		if ok, _ := reqs.DomainFit(nil, t); ok && !add("") {
			return
		}
		for _, l := range local {
			if !collaborators(l.name, trustack.SourceEmergency) {
				return
			}
		}
	}
}

// noValidHost is the EOVERQUOTA of a request no host can take, with the
// reasons each host was ruled out; the caller holds s.mu.
func (s *Scheduler) noValidHost(req Request, groupHosts []string) error {
	if len(s.view) == 0 {
		return trustack.Errorf(trustack.EOVERQUOTA, "No valid host was found. There are no compute hosts.")
	}
	var reachable map[string]bool
	if s.order == nil {
		reachable = map[string]bool{}
		for d := range s.domainOrder(req.Server.Requirements, req.PreferDomain) {
			reachable[d] = true
		}
	}
	rejected := map[string]int{}
	for _, h := range s.view {
		switch reason := s.reject(req, groupHosts, s.withReservations(h)); {
		case reason == notMeeting:
			r, _ := req.Server.Requirements.Unmet(h, s.topology)
			rejected[reason+" "+r.String()]++
		case reason == notInAggregate:
			spec, _ := s.unmatchedSpec(req, h)
			rejected[fmt.Sprintf("%s %s=%s, as the flavor's extra spec %s asks", reason, spec.key, spec.value, spec)]++
		case reason == reserved:
			agg, _ := s.reservedFor(req.Server.ProjectID, h)
			rejected[fmt.Sprintf("%s (aggregate %s)", reason, agg)]++
		case reason != "":
			rejected[reason]++
		case reachable != nil && !reachable[h.Domain]:
			rejected["in an emergency domain that backs no domain the server may run in"]++
		default:
			rejected["taken meanwhile by other placements"]++
		}
	}
	reasons := make([]string, 0, len(rejected))
	for r, n := range rejected {
		reasons = append(reasons, fmt.Sprintf("%d %s", n, r))
	}
	sort.Strings(reasons)
	return trustack.Errorf(trustack.EOVERQUOTA, "No valid host was found. Of %d hosts: %s.%s", len(s.view), strings.Join(reasons, ", "), s.untrustable(req.Server.Requirements))
}

// untrustable says of each trust level the requirements ask for that no
// physical domain's chain of trust is, that no host proves it: an
// attested host's trust is its domain's chain of trust; "" if there is
// none; the caller holds s.mu.
func (s *Scheduler) untrustable(reqs trustack.Requirements) string {
	var out string
	for _, r := range reqs {
		if r.Kind != trustack.KindTrust || s.topology.HasChainOfTrust(r.Value) {
			continue
		}
		out += fmt.Sprintf(" No physical domain's chain of trust is %s, so no attested host proves it: an operator names the white-list %s as a domain's (trustack manage domain set DOMAIN --dcot %s).", r.Value, r.Value, r.Value)
	}
	return out
}

// reserve notes a claim in flight on a host, if the host, with the other
// claims in flight on it, has room for it and admits its project.
func (s *Scheduler) reserve(hostID string, c trustack.Claim) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.withReservations(s.view[hostID])
	if h == nil || !h.Free(c.VCPUs, c.MemoryMB, c.DiskGB) || !trustack.Admits(h.Tenants, c.ProjectID, c.Isolation) {
		return false
	}
	s.inFlight[hostID] = append(s.inFlight[hostID], c)
	return true
}

func (s *Scheduler) unreserve(hostID string, c trustack.Claim) {
	s.mu.Lock()
	defer s.mu.Unlock()
	list := s.inFlight[hostID]
	if i := slices.IndexFunc(list, func(o trustack.Claim) bool { return o.ServerID == c.ServerID }); i >= 0 {
		list = slices.Delete(list, i, i+1)
	}
	if len(list) == 0 {
		delete(s.inFlight, hostID)
	} else {
		s.inFlight[hostID] = list
	}
	s.settled.Broadcast()
}

// withReservations returns the host as it will be once the claims in flight
// on it land; the caller holds s.mu.
func (s *Scheduler) withReservations(h *trustack.Host) *trustack.Host {
	if h == nil {
		return nil
	}
	list, ok := s.inFlight[h.ID]
	if !ok {
		return h
	}
	c := *h
	for _, r := range list {
		c.UsedVCPUs, c.UsedMemoryMB, c.UsedDiskGB = c.UsedVCPUs+r.VCPUs, c.UsedMemoryMB+r.MemoryMB, c.UsedDiskGB+r.DiskGB
		c.Tenants = trustack.WithTenant(c.Tenants, r.ProjectID, r.Isolation)
	}
	return &c
}

// claim claims c on the host with the generation this process last saw of
// it, after the claims on it from this process that came first; a claim
// lost to another controller rereads the host.
func (s *Scheduler) claim(ctx context.Context, hostID string, c trustack.Claim, req Request) (*trustack.Host, error) {
	s.mu.Lock()
	turn, ok := s.claiming[hostID]
	if !ok {
		turn = new(sync.Mutex)
		s.claiming[hostID] = turn
	}
	s.mu.Unlock()
	turn.Lock()
	defer turn.Unlock()
	s.mu.Lock()
	current, known := s.view[hostID]
	s.mu.Unlock()
	if !known {
		// Deleted while this placement waited its turn: it lost the host.
		return nil, trustack.Errorf(trustack.ECONFLICT, "Compute host %s is gone.", hostID)
	}
	c.HostID = hostID
	var claimed *trustack.Host
	var err error
	if req.Move {
		var from *trustack.Host
		if from, claimed, err = s.hosts.MoveClaim(ctx, c, current.Generation, req.Group); err == nil {
			s.remember(from)
		}
	} else {
		claimed, err = s.hosts.Claim(ctx, c, current.Generation, req.Group)
	}
	if err == nil {
		s.remember(claimed)
		return claimed, nil
	}
	if trustack.ErrorCode(err) == trustack.ECONFLICT {
		if rerr := s.reread(ctx, hostID); rerr != nil {
			return nil, rerr
		}
	}
	return nil, err
}

// Forget updates the view after a claim was released on a host.
func (s *Scheduler) Forget(h *trustack.Host) {
	if h != nil {
		s.remember(h)
	}
}

// Invalidate makes the next placement read the hosts and the topology
// anew, as after a change to domains, locations or host properties.
func (s *Scheduler) Invalidate() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.readAt = time.Time{}
}

// candidates returns the hosts that can take the request, by name, with
// the claims in flight; the caller holds s.mu.
func (s *Scheduler) candidates(req Request, groupHosts []string) []*trustack.Host {
	var ok []*trustack.Host
	for _, h := range s.view {
		if h = s.withReservations(h); s.reject(req, groupHosts, h) == "" {
			ok = append(ok, h)
		}
	}
	sort.Slice(ok, func(i, j int) bool { return ok[i].Name < ok[j].Name })
	return ok
}

// Reasons of reject that noValidHost says more of: a host that does not
// meet one of the server's requirements, that is in no aggregate the
// flavor's aggregate extra specs ask for, or that an aggregate's
// filter_tenant_id reserves for other projects.
const (
	notMeeting     = "not meeting the requirement"
	notInAggregate = "in no aggregate whose metadata has"
	reserved       = "reserved for other projects by filter_tenant_id"
)

// reject returns why a host cannot take the request, or "": constant
// strings, so that ruling out thousands of hosts allocates nothing. The
// caller holds s.mu.
func (s *Scheduler) reject(req Request, groupHosts []string, h *trustack.Host) string {
	f := req.Server.Flavor
	if _, unmet := req.Server.Requirements.Unmet(h, s.topology); unmet {
		return notMeeting
	}
	switch {
	case slices.Contains(req.Exclude, h.ID):
		return "already failed to build it"
	case req.Only != "" && h.ID != req.Only:
		return "not the host asked for"
	case !h.Enabled:
		return "disabled"
	case h.ForcedDown || !s.opts.Alive(h):
		return "down"
	case req.Zone != "" && h.AvailabilityZone != req.Zone:
		return "in another availability zone"
	case !h.Free(0, f.RAM, 0):
		return "without enough free RAM"
	case !h.Free(f.VCPUs, 0, 0):
		return "without enough free vCPUs"
	case !h.Free(0, 0, req.Server.LocalDiskGB()):
		return "without enough free disk"
	case !imageFits(req.ImageProperties, h):
		return "not matching the image's properties"
	case !wired(req.PhysicalNetworks, h):
		return "not wired to a physical network the server's ports are on"
	case !trustack.Admits(h.Tenants, req.Server.ProjectID, req.isolation):
		return "running servers of a project the isolation requirements exclude"
	case req.Group != nil && req.Group.Policy == trustack.PolicyAntiAffinity && slices.Contains(groupHosts, h.ID):
		return "already running a member of the anti-affinity group"
	case req.Group != nil && req.Group.Policy == trustack.PolicyAffinity && len(groupHosts) > 0 && !slices.Contains(groupHosts, h.ID):
		return "not running the affinity group's members"
	case len(req.SameHost) > 0 && !slices.Contains(req.SameHost, h.ID):
		return "not the same host as the servers named in same_host"
	case slices.Contains(req.DifferentHost, h.ID):
		return "running a server named in different_host"
	}
	if _, unmatched := s.unmatchedSpec(req, h); unmatched {
		return notInAggregate
	}
	if _, others := s.reservedFor(req.Server.ProjectID, h); others {
		return reserved
	}
	return ""
}

// wired reports whether a host is wired to each of the physical networks.
func wired(physnets []string, h *trustack.Host) bool {
	for _, p := range physnets {
		if !slices.Contains(h.PhysicalNetworks, p) {
			return false
		}
	}
	return true
}

// imageFits is Nova's image-properties filter: an image may ask for a
// hypervisor type.
func imageFits(props map[string]string, h *trustack.Host) bool {
	for _, key := range []string{"img_hv_type", "hypervisor_type"} {
		if want := props[key]; want != "" && !strings.EqualFold(want, h.HypervisorType) {
			return false
		}
	}
	return true
}

// byWeight is the filter driver: free RAM in MiB, normalised over the
// candidates as Nova's weighers are and weighed by the multiplier
// (spreading by default, packing when negative), with the best HostSubsetSize hosts shuffled so that
// concurrent placements spread over them.
func (s *Scheduler) byWeight(req Request, groupHosts []string, hosts []*trustack.Host) []*trustack.Host {
	m := *s.opts.RAMWeightMultiplier
	free := func(h *trustack.Host) float64 {
		return float64(h.MemoryMB)*h.RAMAllocationRatio - float64(h.UsedMemoryMB)
	}
	lo, hi := free(hosts[0]), free(hosts[0])
	for _, h := range hosts[1:] {
		lo, hi = min(lo, free(h)), max(hi, free(h))
	}
	weight := func(h *trustack.Host) float64 {
		var w float64
		if hi > lo {
			w = m * (free(h) - lo) / (hi - lo)
		}
		return w
	}
	sorted := slices.Clone(hosts)
	slices.SortStableFunc(sorted, func(a, b *trustack.Host) int {
		wa, wb := weight(a), weight(b)
		switch {
		case wa > wb:
			return -1
		case wa < wb:
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	s.shuffle(sorted[:min(s.opts.HostSubsetSize, len(sorted))])
	return sorted
}

// softOrder moves the hosts of the group's members first in hosts, in
// their order, for a soft-affinity group, or last for a
// soft-anti-affinity one; any other request keeps the order.
func softOrder(req Request, groupHosts []string, hosts []*trustack.Host) []*trustack.Host {
	policy := req.softPolicy()
	if policy == "" {
		return hosts
	}
	var members, others []*trustack.Host
	for _, h := range hosts {
		if slices.Contains(groupHosts, h.ID) {
			members = append(members, h)
		} else {
			others = append(others, h)
		}
	}
	if policy == trustack.PolicySoftAffinity {
		return append(members, others...)
	}
	return append(others, members...)
}

// softPolicy is the request's soft group policy, "" for none.
func (req Request) softPolicy() string {
	if req.Group != nil && (req.Group.Policy == trustack.PolicySoftAffinity || req.Group.Policy == trustack.PolicySoftAntiAffinity) {
		return req.Group.Policy
	}
	return ""
}

// byLoad is the simple driver: the hosts with the smallest share of their
// vCPUs in use first, then those with the most free memory.
func (s *Scheduler) byLoad(_ Request, _ []string, hosts []*trustack.Host) []*trustack.Host {
	load := func(h *trustack.Host) float64 { return float64(h.UsedVCPUs) / float64(max(h.VCPUs, 1)) }
	sorted := slices.Clone(hosts)
	slices.SortStableFunc(sorted, func(a, b *trustack.Host) int {
		la, lb := load(a), load(b)
		switch {
		case la < lb:
			return -1
		case la > lb:
			return 1
		}
		return (b.MemoryMB - b.UsedMemoryMB) - (a.MemoryMB - a.UsedMemoryMB)
	})
	return sorted
}

// atRandom is the chance driver.
func (s *Scheduler) atRandom(_ Request, _ []string, hosts []*trustack.Host) []*trustack.Host {
	shuffled := slices.Clone(hosts)
	s.shuffle(shuffled)
	return shuffled
}

func (s *Scheduler) shuffle(hosts []*trustack.Host) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rand.Shuffle(len(hosts), func(i, j int) { hosts[i], hosts[j] = hosts[j], hosts[i] })
}

// refresh reads the hosts and the topology again when the view is older
// than Refresh.
func (s *Scheduler) refresh(ctx context.Context) error {
	now := s.opts.Now()
	s.mu.Lock()
	stale := s.view == nil || now.Sub(s.readAt) >= s.opts.Refresh
	s.mu.Unlock()
	if !stale {
		return nil
	}
	list, err := s.hosts.Hosts(ctx)
	if err != nil {
		return fmt.Errorf("read compute hosts: %w", err)
	}
	topology, err := s.hosts.Topology(ctx)
	if err != nil {
		return fmt.Errorf("read the topology: %w", err)
	}
	view := make(map[string]*trustack.Host, len(list))
	members := map[string][]string{}
	slices.SortFunc(list, func(a, b *trustack.Host) int { return strings.Compare(a.Name, b.Name) })
	for _, h := range list {
		view[h.ID] = h
		members[h.Domain] = append(members[h.Domain], h.ID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.view, s.topology, s.members, s.readAt = view, topology, members, now
	s.localDomains = s.localDomains[:0]
	for name, d := range topology.Domains {
		if d.Source == trustack.SourceLocal {
			s.localDomains = append(s.localDomains, name)
		}
	}
	slices.Sort(s.localDomains)
	s.tenancy = map[string]map[string]bool{}
	for _, h := range list {
		s.index(nil, h)
	}
	s.aggregates = map[string][]*trustack.Aggregate{}
	for _, a := range topology.Aggregates {
		for _, name := range a.Hosts {
			s.aggregates[name] = append(s.aggregates[name], a)
		}
	}
	s.domainAggregates = map[string]*trustack.Aggregate{}
	for name, d := range topology.Domains {
		s.domainAggregates[name] = trustack.DomainAggregate(d, topology, nil)
	}
	return nil
}

// remember puts a host as the store returned it into the view, unless the
// view already holds a newer generation of it.
func (s *Scheduler) remember(h *trustack.Host) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.view == nil {
		return
	}
	old, ok := s.view[h.ID]
	if ok && old.Generation > h.Generation {
		return
	}
	s.view[h.ID] = h
	s.index(old, h)
	if ok && old.Domain != h.Domain {
		s.members[old.Domain] = slices.DeleteFunc(slices.Clone(s.members[old.Domain]), func(id string) bool { return id == h.ID })
	}
	if !ok || old.Domain != h.Domain {
		// Last in the domain until the next refresh sorts it in by name.
		s.members[h.Domain] = append(slices.Clone(s.members[h.Domain]), h.ID)
	}
}

// index moves a host's entries in s.tenancy from its tenants as they
// were (old, nil for a new host) to what they are (h, nil for a host
// gone); the caller holds s.mu.
func (s *Scheduler) index(old, h *trustack.Host) {
	if old != nil {
		for _, t := range old.Tenants {
			delete(s.tenancy[t.ProjectID], old.ID)
		}
	}
	if h != nil {
		for _, t := range h.Tenants {
			if s.tenancy[t.ProjectID] == nil {
				s.tenancy[t.ProjectID] = map[string]bool{}
			}
			s.tenancy[t.ProjectID][h.ID] = true
		}
	}
}

// reread reads one host again after a lost claim.
func (s *Scheduler) reread(ctx context.Context, id string) error {
	h, err := s.hosts.Host(ctx, id)
	if trustack.ErrorCode(err) == trustack.ENOTFOUND {
		s.mu.Lock()
		if old, ok := s.view[id]; ok {
			delete(s.view, id)
			s.index(old, nil)
			s.members[old.Domain] = slices.DeleteFunc(slices.Clone(s.members[old.Domain]), func(m string) bool { return m == id })
		}
		s.mu.Unlock()
		return nil
	}
	if err != nil {
		return fmt.Errorf("reread host %s: %w", id, err)
	}
	s.remember(h)
	return nil
}

// waitInFlight waits until the claims now in flight on hosts that only
// they rule out for the request have landed or failed, and reports whether
// there were any: a host the view counts a landed claim on twice (once in
// the host as read or remembered, once as still in flight) must not make
// the request fail. The caller holds s.mu, which the wait lets go of,
// and no reservation.
func (s *Scheduler) waitInFlight(req Request, groupHosts []string) bool {
	type pending struct{ host, server string }
	var waiting []pending
	for id, list := range s.inFlight {
		if h := s.view[id]; h != nil && s.reject(req, groupHosts, h) == "" {
			for _, c := range list {
				waiting = append(waiting, pending{id, c.ServerID})
			}
		}
	}
	if len(waiting) == 0 {
		return false
	}
	inFlight := func(p pending) bool {
		return slices.ContainsFunc(s.inFlight[p.host], func(c trustack.Claim) bool { return c.ServerID == p.server })
	}
	for slices.ContainsFunc(waiting, inFlight) {
		s.settled.Wait()
	}
	return true
}
