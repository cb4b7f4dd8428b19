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
	pick  func(s *Scheduler, req Request, groupHosts []string, candidates []*trustack.Host) *trustack.Host

	mu     sync.Mutex
	rand   *rand.Rand
	view   map[string]*trustack.Host
	readAt time.Time
}

// New returns a scheduler over hosts.
func New(hosts Hosts, opts Options) (*Scheduler, error) {
	s := &Scheduler{hosts: hosts, opts: opts}
	switch opts.Driver {
	case "", "filter":
		s.pick = (*Scheduler).pickWeighed
	case "simple":
		s.pick = (*Scheduler).pickLeastLoaded
	case "chance":
		s.pick = (*Scheduler).pickAtRandom
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

// maxAttempts bounds how often one placement may lose a claim race before
// it gives up; each loss means another placement won a host meanwhile.
const maxAttempts = 32

// Place chooses a host for the request and claims the server's share of
// it, returning the host after the claim. When no host can take the
// server it returns EOVERQUOTA with "No valid host was found." and the
// reasons hosts were ruled out.
func (s *Scheduler) Place(ctx context.Context, req Request) (*trustack.Host, error) {
	f := req.Server.Flavor
	for attempt := 0; attempt < maxAttempts; attempt++ {
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
		host := s.pick(s, req, groupHosts, candidates)
		claimed, err := s.hosts.Claim(ctx, trustack.Claim{ServerID: req.Server.ID, HostID: host.ID, VCPUs: f.VCPUs, MemoryMB: f.RAM, DiskGB: f.Disk}, host.Generation, req.Group)
		switch {
		case err == nil:
			s.remember(claimed)
			return claimed, nil
		case trustack.ErrorCode(err) == trustack.ECONFLICT:
			// Another claim came first: look at this host again and choose anew.
			if err := s.reread(ctx, host.ID); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("claim %s on host %s: %w", req.Server.ID, host.Name, err)
		}
	}
	return nil, trustack.Errorf(trustack.EOVERQUOTA, "No valid host was found. Hosts kept changing under concurrent claims after %d attempts.", maxAttempts)
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
	case req.Server.AvailabilityZone != "" && h.AvailabilityZone != req.Server.AvailabilityZone:
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

// pickWeighed is the filter driver: free RAM, weighed by the multiplier
// (spreading by default, packing when negative), and a random choice among
// the best HostSubsetSize hosts. Soft group policies weigh in too.
func (s *Scheduler) pickWeighed(req Request, groupHosts []string, hosts []*trustack.Host) *trustack.Host {
	m := *s.opts.RAMWeightMultiplier
	weight := func(h *trustack.Host) float64 {
		w := m * float64(h.MemoryMB-h.UsedMemoryMB) / float64(max(h.MemoryMB, 1))
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
	return sorted[s.intn(min(s.opts.HostSubsetSize, len(sorted)))]
}

// pickLeastLoaded is the simple driver: the host with the smallest share
// of its vCPUs in use, then the most free memory.
func (s *Scheduler) pickLeastLoaded(_ Request, _ []string, hosts []*trustack.Host) *trustack.Host {
	load := func(h *trustack.Host) float64 { return float64(h.UsedVCPUs) / float64(max(h.VCPUs, 1)) }
	best := hosts[0]
	for _, h := range hosts[1:] {
		if l, b := load(h), load(best); l < b || l == b && h.MemoryMB-h.UsedMemoryMB > best.MemoryMB-best.UsedMemoryMB {
			best = h
		}
	}
	return best
}

// pickAtRandom is the chance driver.
func (s *Scheduler) pickAtRandom(_ Request, _ []string, hosts []*trustack.Host) *trustack.Host {
	return hosts[s.intn(len(hosts))]
}

func (s *Scheduler) intn(n int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rand.IntN(n)
}

// snapshot returns the current view of hosts, sorted by name, reading the
// store again when the view is older than Refresh.
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
		out = append(out, h)
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
