// Package network is trustack's networking service, Neutron's model on
// the controller side: networks on flat, VLAN, VXLAN or local segments,
// subnets with their address management, ports, security groups, routers
// and floating IPs, and networking quotas. It chooses addresses and MACs
// at random (an address near another says nothing of where either is;
// only DHCP servers take the first free address of their subnets' pools),
// keeps every project a default security group, and tells the compute
// hosts concerned what changed: the ports of their servers, the security
// groups those are in, and on network nodes the DHCP servers and routers.
//
// What callers may see follows Neutron: their project's resources, and
// shared and external networks with their subnets; an administrator sees
// everything. Who may do what beyond that is the API's policy.
package network

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/trustack/trustack"
)

// Caller is who asks, as the API authenticated them.
type Caller struct {
	ProjectID string
	// Admin sees and may act on every project's resources.
	Admin bool
}

// Options tune the Service; zero values take the defaults.
type Options struct {
	// MACPrefix is the first three bytes of the MAC addresses of ports,
	// as Neutron's base_mac (default fa:16:3e).
	MACPrefix [3]byte
	// TenantNetworkType is the segment type of networks whose creator
	// names none: vxlan (the default), vlan or local.
	TenantNetworkType string
	// VLANRanges are the VLAN IDs tenant networks take, by physical
	// network (default none: VLAN networks only from an administrator).
	VLANRanges map[string][2]int
	// VXLANRange is the VNIs tenant networks take (default 1 to 65535).
	VXLANRange [2]int
	// PhysicalNetworks are the physical networks flat and VLAN networks
	// may be on (default "physnet1"), with those of VLANRanges.
	PhysicalNetworks []string
	// MTU is the MTU of the physical networks (default 1500); VXLAN
	// networks take 50 bytes less.
	MTU int
	// Rand is the source of addresses, MACs and segment IDs (default:
	// seeded from the clock).
	Rand *rand.Rand
	// Alive reports whether a host's agent is up, for the choice of the
	// network node; nil means every host is.
	Alive func(*trustack.Host) bool
	// Now returns the current time (default time.Now).
	Now func() time.Time
	// Log receives what the service does (default: discarded).
	Log *slog.Logger
}

// Service is the networking service. It is safe for concurrent use.
type Service struct {
	store Store
	opts  Options

	mu     sync.Mutex // guards rand
	rand   *rand.Rand
	notify *notifier // nil until SetAgents

	// node is the network node chosen last, until when.
	node struct {
		mu    sync.Mutex
		name  string
		until time.Time
	}
}

// New returns a Service over store.
func New(store Store, opts Options) *Service {
	if opts.MACPrefix == [3]byte{} {
		opts.MACPrefix = [3]byte{0xfa, 0x16, 0x3e}
	}
	if opts.TenantNetworkType == "" {
		opts.TenantNetworkType = trustack.NetworkVXLAN
	}
	if opts.VXLANRange == [2]int{} {
		opts.VXLANRange = [2]int{1, 65535}
	}
	if opts.PhysicalNetworks == nil {
		opts.PhysicalNetworks = []string{"physnet1"}
	}
	for p := range opts.VLANRanges {
		if !slices.Contains(opts.PhysicalNetworks, p) {
			opts.PhysicalNetworks = append(opts.PhysicalNetworks, p)
		}
	}
	if opts.MTU == 0 {
		opts.MTU = 1500
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Service{store: store, opts: opts, rand: opts.Rand}
	if s.rand == nil {
		s.rand = rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(time.Now().UnixNano()>>1)))
	}
	return s
}

// now returns the time, in UTC.
func (s *Service) now() time.Time { return s.opts.Now().UTC() }

// intN returns a random integer in [0, n).
func (s *Service) intN(n int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rand.IntN(n)
}

// allocator is what the store allocates new ports' addresses and MACs
// with.
func (s *Service) allocator() trustack.Allocator {
	return &allocator{mu: &s.mu, rand: s.rand, prefix: s.opts.MACPrefix}
}

// owner returns the project a new resource belongs to: the caller's, or
// another only for an administrator.
func (s *Service) owner(c Caller, project string) (string, error) {
	switch {
	case project == "" || project == c.ProjectID:
		if c.ProjectID == "" {
			return "", invalid("A project must own the resource: scope the token to a project, or name project_id.")
		}
		return c.ProjectID, nil
	case c.Admin:
		return project, nil
	}
	return "", trustack.Reasonf(trustack.EFORBIDDEN, "PolicyNotAuthorized", "Only an administrator may create a resource for another project.")
}

// useNetwork returns a network the caller may see and the project that a
// new resource on it (named by what, "ports") belongs to: project, or the
// caller's if "". A network of another project takes it only if it is
// shared, or for an administrator (EFORBIDDEN).
func (s *Service) useNetwork(ctx context.Context, c Caller, networkID, project, what string) (*trustack.Network, string, error) {
	n, err := s.Network(ctx, c, networkID)
	if err != nil {
		return nil, "", err
	}
	if project, err = s.owner(c, project); err != nil {
		return nil, "", err
	}
	if n.ProjectID != project && !n.Shared && !c.Admin {
		return nil, "", trustack.Reasonf(trustack.EFORBIDDEN, "PolicyNotAuthorized", "Network %s belongs to another project and is not shared: %s on it are its owner's to make.", n.ID, what)
	}
	return n, project, nil
}

// seesNetwork reports whether the caller may see a network: its own, a
// shared or an external one, or any for an administrator.
func (c Caller) seesNetwork(n *trustack.Network) bool {
	return c.Admin || n.ProjectID == c.ProjectID || n.Shared || n.External
}

// owns reports whether the caller may see a project's resource that is
// private to it.
func (c Caller) owns(project string) bool {
	return c.Admin || project == c.ProjectID
}

// Neutron's error types that callers and the store share.
const (
	reasonSegmentInUse = "SegmentInUse"
	reasonBadRequest   = "BadRequest"
)

// invalid is a 400 in Neutron's words.
func invalid(format string, args ...any) error {
	return trustack.Reasonf(trustack.EINVALID, reasonBadRequest, format, args...)
}

// notFound is a 404 of the given Neutron type.
func notFound(reason, format string, args ...any) error {
	return trustack.Reasonf(trustack.ENOTFOUND, reason, format, args...)
}

// conflict is a 409 of the given Neutron type.
func conflict(reason, format string, args ...any) error {
	return trustack.Reasonf(trustack.ECONFLICT, reason, format, args...)
}

// set copies *v to *dst unless v is nil.
func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// maxName is the longest name or description Neutron takes.
const (
	maxName        = 255
	maxDescription = 255
)

// checkName returns EINVALID for a name or description too long.
func checkName(name, description string) error {
	if len(name) > maxName {
		return invalid("Invalid input for name. Reason: '%s' exceeds maximum length of %d.", name, maxName)
	}
	if len(description) > maxDescription {
		return invalid("Invalid input for description. Reason: '%s' exceeds maximum length of %d.", description, maxDescription)
	}
	return nil
}
