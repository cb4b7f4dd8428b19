// Package scheduler chooses the compute host for each new server and
// claims the server's share of it. Drivers differ in how they choose among
// the hosts that can take the server: "filter" weighs them (Nova's filter
// scheduler), "simple" takes the least loaded, "chance" picks at random.
// Every driver honours the hard constraints: the host's service is up and
// enabled, has room, is in the asked-for availability zone, keeps the
// server group's policy and the same-host and different-host hints.
//
// The claim is a compare-and-swap on the host's generation, done by the
// store in one transaction with the group's policy check: concurrent
// placements, in this process or another controller, never oversubscribe a
// host or break an anti-affinity policy. A placement that loses the race
// re-reads the host and chooses again.
package scheduler

import (
	"context"
	"fmt"
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
	// generation and, for a group, keeps its policy; ECONFLICT otherwise.
	// It returns the host after the claim.
	Claim(ctx context.Context, c trustack.Claim, generation int64, group *trustack.ServerGroup) (*trustack.Host, error)
	// GroupHosts returns the IDs of the hosts that the group's members,
	// other than the given server, hold claims on.
	GroupHosts(ctx context.Context, groupID, exceptServer string) ([]string, error)
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
}

// Options configure a Scheduler; zero values take the defaults.
type Options struct {
	// Driver is "filter" (the default), "simple" or "chance".
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
	// order returns the candidates in the order to try them.
	order func(s *Scheduler, req Request, groupHosts []string, candidates []*trustack.Host) []*trustack.Host

	mu       sync.Mutex
	rand     *rand.Rand
	view     map[string]*trustack.Host
	readAt   time.Time
	reserved map[string]trustack.Claim // by host: what placements in flight are claiming
	claiming map[string]*sync.Mutex    // by host: claims from this process take turns
}

// New returns a scheduler over hosts.
func New(hosts Hosts, opts Options) (*Scheduler, error) {
	s := &Scheduler{hosts: hosts, opts: opts, reserved: map[string]trustack.Claim{}, claiming: map[string]*sync.Mutex{}}
	switch opts.Driver {
	case "", "filter":
		s.order = (*Scheduler).byWeight
	case "simple":
		s.order = (*Scheduler).byLoad
	case "chance":
		s.order = (*Scheduler).atRandom
	default:
		return nil, trustack.Errorf(trustack.EINVALID, "unknown scheduler driver %q: want filter, simple or chance", opts.Driver)
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
// it, returning the host after the claim. It tries the candidates in the
// driver's order. Placements in this process see each other's claims in
// flight, as reservations, and so spread instead of colliding; a claim
// lost to another controller moves on to the next candidate, and when all
// are taken the hosts are looked at anew. When no host can take the server
// it returns EOVERQUOTA with "No valid host was found." and the reasons
// hosts were ruled out.
func (s *Scheduler) Place(ctx context.Context, req Request) (*trustack.Host, error) {
	f := req.Server.Flavor
	want := trustack.Claim{ServerID: req.Server.ID, VCPUs: f.VCPUs, MemoryMB: f.RAM, DiskGB: f.Disk}
	for round := 0; round < maxRounds; round++ {
		var groupHosts []string
		if req.Group != nil {
			var err error
			if groupHosts, err = s.hosts.GroupHosts(ctx, req.Group.ID, req.Server.ID); err != nil {
				return nil, fmt.Errorf("read hosts of server group %s: %w", req.Group.ID, err)
			}
		}
		candidates, why, err := s.candidates(ctx, req, groupHosts)
		if err != nil {
			return nil, err
		}
		if len(candidates) == 0 {
			return nil, trustack.Errorf(trustack.EOVERQUOTA, "No valid host was found. %s", why)
		}
		for _, host := range s.order(s, req, groupHosts, candidates) {
			if !s.reserve(host.ID, want) {
				continue // taken by a placement in flight since the candidates were read
			}
			claimed, err := s.claim(ctx, host.ID, want, req.Group)
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

// reserve notes a claim in flight on a host, if the host has room for it
// beside the others in flight.
func (s *Scheduler) reserve(hostID string, c trustack.Claim) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.withReservations(s.view[hostID])
	if h == nil || !h.Free(c.VCPUs, c.MemoryMB, c.DiskGB) {
		return false
	}
	r := s.reserved[hostID]
	r.VCPUs, r.MemoryMB, r.DiskGB = r.VCPUs+c.VCPUs, r.MemoryMB+c.MemoryMB, r.DiskGB+c.DiskGB
	s.reserved[hostID] = r
	return true
}

func (s *Scheduler) unreserve(hostID string, c trustack.Claim) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.reserved[hostID]
	r.VCPUs, r.MemoryMB, r.DiskGB = r.VCPUs-c.VCPUs, r.MemoryMB-c.MemoryMB, r.DiskGB-c.DiskGB
	if r.VCPUs == 0 && r.MemoryMB == 0 && r.DiskGB == 0 {
		delete(s.reserved, hostID)
	} else {
		s.reserved[hostID] = r
	}
}

// withReservations returns the host as it will be once the claims in flight
// on it land; the caller holds s.mu.
func (s *Scheduler) withReservations(h *trustack.Host) *trustack.Host {
	if h == nil {
		return nil
	}
	r, ok := s.reserved[h.ID]
	if !ok {
		return h
	}
	c := *h
	c.UsedVCPUs, c.UsedMemoryMB, c.UsedDiskGB = c.UsedVCPUs+r.VCPUs, c.UsedMemoryMB+r.MemoryMB, c.UsedDiskGB+r.DiskGB
	return &c
}

// claim claims c on the host with the generation this process last saw of
// it, after the claims on it from this process that came first; a claim
// lost to another controller rereads the host.
func (s *Scheduler) claim(ctx context.Context, hostID string, c trustack.Claim, group *trustack.ServerGroup) (*trustack.Host, error) {
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
	generation := current.Generation
	c.HostID = hostID
	claimed, err := s.hosts.Claim(ctx, c, generation, group)
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

// candidates returns the hosts that can take the request, or a sentence
// saying why none can.
func (s *Scheduler) candidates(ctx context.Context, req Request, groupHosts []string) ([]*trustack.Host, string, error) {
	view, err := s.snapshot(ctx)
	if err != nil {
		return nil, "", err
	}
	var ok []*trustack.Host
	rejected := map[string]int{}
	for _, h := range view {
		if reason := s.reject(req, groupHosts, h); reason != "" {
			rejected[reason]++
			continue
		}
		ok = append(ok, h)
	}
	if len(ok) > 0 {
		return ok, "", nil
	}
	if len(view) == 0 {
		return nil, "There are no compute hosts.", nil
	}
	reasons := make([]string, 0, len(rejected))
	for r, n := range rejected {
		reasons = append(reasons, fmt.Sprintf("%d %s", n, r))
	}
	sort.Strings(reasons)
	return nil, fmt.Sprintf("Of %d hosts: %s.", len(view), strings.Join(reasons, ", ")), nil
}

// reject returns why a host cannot take the request, or "".
func (s *Scheduler) reject(req Request, groupHosts []string, h *trustack.Host) string {
	f := req.Server.Flavor
	switch {
	case slices.Contains(req.Exclude, h.ID):
		return "already failed to build it"
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
	case !h.Free(0, 0, f.Disk):
		return "without enough free disk"
	case !imageFits(req.ImageProperties, h):
		return "not matching the image's properties"
	case req.Group != nil && req.Group.Policy == trustack.PolicyAntiAffinity && slices.Contains(groupHosts, h.ID):
		return "already running a member of the anti-affinity group"
	case req.Group != nil && req.Group.Policy == trustack.PolicyAffinity && len(groupHosts) > 0 && !slices.Contains(groupHosts, h.ID):
		return "not running the affinity group's members"
	case len(req.SameHost) > 0 && !slices.Contains(req.SameHost, h.ID):
		return "not the same host as the servers named in same_host"
	case slices.Contains(req.DifferentHost, h.ID):
		return "running a server named in different_host"
	}
	return ""
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
// (spreading by default, packing when negative), soft group policies
// weighing in too, with the best HostSubsetSize hosts shuffled so that
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
		if req.Group != nil && slices.Contains(groupHosts, h.ID) {
			switch req.Group.Policy {
			case trustack.PolicySoftAffinity:
				w += 10
			case trustack.PolicySoftAntiAffinity:
				w -= 10
			}
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

// snapshot returns the current view of hosts, with the claims in flight,
// sorted by name, reading the store again when the view is older than
// Refresh.
func (s *Scheduler) snapshot(ctx context.Context) ([]*trustack.Host, error) {
	now := s.opts.Now()
	s.mu.Lock()
	stale := s.view == nil || now.Sub(s.readAt) >= s.opts.Refresh
	s.mu.Unlock()
	if stale {
		list, err := s.hosts.Hosts(ctx)
		if err != nil {
			return nil, fmt.Errorf("read compute hosts: %w", err)
		}
		view := make(map[string]*trustack.Host, len(list))
		for _, h := range list {
			view[h.ID] = h
		}
		s.mu.Lock()
		s.view, s.readAt = view, now
		s.mu.Unlock()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*trustack.Host, 0, len(s.view))
	for _, h := range s.view {
		out = append(out, s.withReservations(h))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// remember puts a host as the store returned it into the view, unless the
// view already holds a newer generation of it.
func (s *Scheduler) remember(h *trustack.Host) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.view == nil {
		return
	}
	if old, ok := s.view[h.ID]; ok && old.Generation > h.Generation {
		return
	}
	s.view[h.ID] = h
}

// reread reads one host again after a lost claim.
func (s *Scheduler) reread(ctx context.Context, id string) error {
	h, err := s.hosts.Host(ctx, id)
	if trustack.ErrorCode(err) == trustack.ENOTFOUND {
		s.mu.Lock()
		delete(s.view, id)
		s.mu.Unlock()
		return nil
	}
	if err != nil {
		return fmt.Errorf("reread host %s: %w", id, err)
	}
	s.remember(h)
	return nil
}
