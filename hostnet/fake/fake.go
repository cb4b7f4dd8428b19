// Package fake is a host network that touches no kernel: it keeps in
// memory the ports, security groups, DHCP servers and routers a host is
// told to have, checks them as a real host would (well-formed MACs and
// addresses, a known physical network for flat and VLAN segments, the
// groups a port is in being known), and shows what it has. Tests use it
// to see what reached a host, and `trustack up` to simulate thousands of
// hosts in one process.
package fake

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sort"
	"sync"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/agent"
	"github.com/trustack/trustack/wire"
)

var _ agent.HostNetwork = (*Network)(nil)

// Network is a simulated host network. It is safe for concurrent use.
type Network struct {
	physnets []string

	mu      sync.Mutex
	ports   map[string]wire.Port
	groups  map[string]wire.SecurityGroup
	dhcp    map[string]wire.DHCP
	routers map[string]wire.Router
}

// New returns a host network wired to the physical networks named.
func New(physicalNetworks []string) *Network {
	return &Network{physnets: slices.Clone(physicalNetworks), ports: map[string]wire.Port{}, groups: map[string]wire.SecurityGroup{},
		dhcp: map[string]wire.DHCP{}, routers: map[string]wire.Router{}}
}

// PhysicalNetworks returns the physical networks the host is wired to.
func (n *Network) PhysicalNetworks() []string { return slices.Clone(n.physnets) }

// Plug wires a port; EINVALID for a malformed one, or one on a physical
// network the host is not wired to.
func (n *Network) Plug(_ context.Context, p wire.Port) error {
	if err := n.checkPort(p); err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.ports[p.ID] = p
	return nil
}

// checkPort checks what a host needs of a port to wire it.
func (n *Network) checkPort(p wire.Port) error {
	if p.ID == "" {
		return trustack.Errorf(trustack.EINVALID, "a port needs an ID")
	}
	if hw, err := net.ParseMAC(p.MAC); err != nil || len(hw) != 6 {
		return trustack.Errorf(trustack.EINVALID, "port %s: bad MAC address %q", p.ID, p.MAC)
	}
	if err := n.checkSegment(p.Segment); err != nil {
		return fmt.Errorf("port %s: %w", p.ID, err)
	}
	for _, a := range p.Addresses {
		addr, err := netip.ParseAddr(a.Address)
		if err != nil {
			return trustack.Errorf(trustack.EINVALID, "port %s: bad address %q", p.ID, a.Address)
		}
		if pfx, err := netip.ParsePrefix(a.CIDR); a.CIDR != "" && (err != nil || !pfx.Contains(addr)) {
			return trustack.Errorf(trustack.EINVALID, "port %s: address %s is not in its subnet %q", p.ID, a.Address, a.CIDR)
		}
	}
	return nil
}

// checkSegment checks that the host can reach a segment.
func (n *Network) checkSegment(s wire.Segment) error {
	switch s.Type {
	case trustack.NetworkFlat, trustack.NetworkVLAN:
		if !slices.Contains(n.physnets, s.PhysicalNetwork) {
			return trustack.Errorf(trustack.EINVALID, "the host is not wired to physical network %q", s.PhysicalNetwork)
		}
		if s.Type == trustack.NetworkVLAN && (s.SegmentationID < 1 || s.SegmentationID > 4094) {
			return trustack.Errorf(trustack.EINVALID, "bad VLAN ID %d", s.SegmentationID)
		}
	case trustack.NetworkVXLAN:
		if s.SegmentationID < 1 || s.SegmentationID >= 1<<24 {
			return trustack.Errorf(trustack.EINVALID, "bad VXLAN VNI %d", s.SegmentationID)
		}
	case trustack.NetworkLocal:
	default:
		return trustack.Errorf(trustack.EINVALID, "unknown segment type %q", s.Type)
	}
	return nil
}

// Unplug removes a port.
func (n *Network) Unplug(_ context.Context, portID string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.ports, portID)
	return nil
}

// Ports returns the ports wired, by ID.
func (n *Network) Ports(context.Context) ([]wire.Port, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := slices.Collect(maps.Values(n.ports))
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// SecurityGroups sets the groups given.
func (n *Network) SecurityGroups(_ context.Context, groups []wire.SecurityGroup) error {
	for _, g := range groups {
		for _, r := range g.Rules {
			if r.Direction != trustack.Ingress && r.Direction != trustack.Egress {
				return trustack.Errorf(trustack.EINVALID, "group %s: bad direction %q", g.ID, r.Direction)
			}
			if r.RemotePrefix != "" {
				if _, err := netip.ParsePrefix(r.RemotePrefix); err != nil {
					return trustack.Errorf(trustack.EINVALID, "group %s: bad remote prefix %q", g.ID, r.RemotePrefix)
				}
			}
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, g := range groups {
		n.groups[g.ID] = n.groups[g.ID].Update(g)
	}
	return nil
}

// SetDHCP serves a subnet.
func (n *Network) SetDHCP(_ context.Context, d wire.DHCP) error {
	if _, err := netip.ParsePrefix(d.CIDR); err != nil {
		return trustack.Errorf(trustack.EINVALID, "DHCP for subnet %s: bad CIDR %q", d.SubnetID, d.CIDR)
	}
	if err := n.checkSegment(d.Segment); err != nil {
		return fmt.Errorf("DHCP for subnet %s: %w", d.SubnetID, err)
	}
	if err := checkLeases(d.Leases); err != nil {
		return fmt.Errorf("DHCP for subnet %s: %w", d.SubnetID, err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.dhcp[d.SubnetID] = d
	return nil
}

// checkLeases checks what a DHCP server needs of its leases.
func checkLeases(leases []wire.DHCPHost) error {
	for _, h := range leases {
		if hw, err := net.ParseMAC(h.MAC); err != nil || len(hw) != 6 {
			return trustack.Errorf(trustack.EINVALID, "lease of port %s: bad MAC address %q", h.PortID, h.MAC)
		}
		if _, err := netip.ParseAddr(h.Address); err != nil {
			return trustack.Errorf(trustack.EINVALID, "lease of port %s: bad address %q", h.PortID, h.Address)
		}
	}
	return nil
}

// RemoveDHCP stops serving a subnet.
func (n *Network) RemoveDHCP(_ context.Context, subnetID string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.dhcp, subnetID)
	return nil
}

// SetLeases changes the leases of a network's DHCP servers.
func (n *Network) SetLeases(_ context.Context, l wire.DHCPLeases) error {
	if err := checkLeases(l.Leases); err != nil {
		return fmt.Errorf("leases of network %s: %w", l.NetworkID, err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for id, d := range n.dhcp {
		n.dhcp[id] = d.Apply(l)
	}
	return nil
}

// SetRouter runs a router.
func (n *Network) SetRouter(_ context.Context, r wire.Router) error {
	for _, p := range r.Interfaces {
		if err := n.checkPort(p); err != nil {
			return fmt.Errorf("router %s: %w", r.ID, err)
		}
	}
	if r.Gateway != nil {
		if err := n.checkPort(*r.Gateway); err != nil {
			return fmt.Errorf("router %s: %w", r.ID, err)
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.routers[r.ID] = r
	return nil
}

// RemoveRouter removes a router.
func (n *Network) RemoveRouter(_ context.Context, routerID string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.routers, routerID)
	return nil
}

// Sync makes the host's state be hn's, and nothing more.
func (n *Network) Sync(ctx context.Context, hn wire.HostNetwork) error {
	next := New(n.physnets)
	for _, p := range hn.Ports {
		if err := next.Plug(ctx, p); err != nil {
			return err
		}
	}
	if err := next.SecurityGroups(ctx, hn.Groups); err != nil {
		return err
	}
	for _, d := range hn.DHCP {
		if err := next.SetDHCP(ctx, d); err != nil {
			return err
		}
	}
	for _, r := range hn.Routers {
		if err := next.SetRouter(ctx, r); err != nil {
			return err
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.ports, n.groups, n.dhcp, n.routers = next.ports, next.groups, next.dhcp, next.routers
	return nil
}

// Group returns a security group the host enforces, and whether it has
// it.
func (n *Network) Group(id string) (wire.SecurityGroup, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	g, ok := n.groups[id]
	return g, ok
}

// DHCP returns what the host serves for a subnet, and whether it does.
func (n *Network) DHCP(subnetID string) (wire.DHCP, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	d, ok := n.dhcp[subnetID]
	return d, ok
}

// Router returns a router the host runs, and whether it does.
func (n *Network) Router(id string) (wire.Router, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	r, ok := n.routers[id]
	return r, ok
}
