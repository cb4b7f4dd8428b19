// Package fake is a host network that touches no kernel: it keeps in
// memory the ports, security groups, DHCP servers and routers a host is
// told to have, checks them as every host does (package wire's Check
// methods), and shows what it has. Tests use it to see what reached a
// host, and `trustack up` to simulate thousands of hosts in one process.
package fake

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"

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
	if err := p.Check(n.physnets); err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.ports[p.ID] = p
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
		if err := g.Check(); err != nil {
			return err
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
	if err := d.Check(n.physnets); err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.dhcp[d.SubnetID] = d
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
	if err := wire.CheckLeases(l.Leases); err != nil {
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
	if err := r.Check(n.physnets); err != nil {
		return err
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

// Reconcile has nothing to repair: nothing changes the fake behind its
// back.
func (n *Network) Reconcile(context.Context) error { return nil }

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
