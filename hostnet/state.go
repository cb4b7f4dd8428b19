// Package hostnet holds what a host's network is told to have, as every
// host network driver keeps it (hostnet/linux in the kernel, hostnet/fake
// in memory): its ports, the security groups they are held to and, on a
// network node, DHCP servers and routers, each checked as a host checks
// it (package wire's Check methods) before it is taken.
package hostnet

import (
	"fmt"
	"maps"
	"slices"
	"sort"

	"github.com/trustack/trustack/wire"
)

// State is a host's network as it was told; its methods change nothing
// when they return an error. It is not safe for concurrent use: drivers
// hold their own lock.
type State struct {
	physnets []string
	Ports    map[string]wire.Port
	Groups   map[string]wire.SecurityGroup
	DHCP     map[string]wire.DHCP // by subnet ID
	Routers  map[string]wire.Router
}

// NewState returns the empty state of a host wired to physnets.
func NewState(physnets []string) State {
	return State{physnets: slices.Sorted(slices.Values(physnets)), Ports: map[string]wire.Port{}, Groups: map[string]wire.SecurityGroup{},
		DHCP: map[string]wire.DHCP{}, Routers: map[string]wire.Router{}}
}

// PhysicalNetworks returns the physical networks the host is wired to.
func (s *State) PhysicalNetworks() []string { return slices.Clone(s.physnets) }

// Plug takes a port, or its new state.
func (s *State) Plug(p wire.Port) error {
	if err := p.Check(s.physnets); err != nil {
		return err
	}
	s.Ports[p.ID] = p
	return nil
}

// PortList returns the ports, by ID.
func (s *State) PortList() []wire.Port {
	out := slices.Collect(maps.Values(s.Ports))
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// UpdateGroups takes groups as wire.SecurityGroup.Update makes them from
// those held.
func (s *State) UpdateGroups(groups []wire.SecurityGroup) error {
	for _, g := range groups {
		if err := g.Check(); err != nil {
			return err
		}
	}
	for _, g := range groups {
		s.Groups[g.ID] = s.Groups[g.ID].Update(g)
	}
	return nil
}

// SetDHCP takes a subnet's DHCP server.
func (s *State) SetDHCP(d wire.DHCP) error {
	if err := d.Check(s.physnets); err != nil {
		return err
	}
	s.DHCP[d.SubnetID] = d
	return nil
}

// SetLeases changes the leases of a network's DHCP servers, as
// wire.DHCP.Apply does, and reports whether the host serves the network.
func (s *State) SetLeases(l wire.DHCPLeases) (bool, error) {
	if err := wire.CheckLeases(l.Leases); err != nil {
		return false, fmt.Errorf("leases of network %s: %w", l.NetworkID, err)
	}
	served := false
	for id, d := range s.DHCP {
		if d.NetworkID == l.NetworkID {
			s.DHCP[id], served = d.Apply(l), true
		}
	}
	return served, nil
}

// DHCPOf returns the DHCP servers of a network's subnets, by subnet ID.
func (s *State) DHCPOf(networkID string) []wire.DHCP {
	var out []wire.DHCP
	for _, d := range s.DHCP {
		if d.NetworkID == networkID {
			out = append(out, d)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].SubnetID < out[j].SubnetID })
	return out
}

// SetRouter takes a router.
func (s *State) SetRouter(r wire.Router) error {
	if err := r.Check(s.physnets); err != nil {
		return err
	}
	s.Routers[r.ID] = r
	return nil
}

// Replace makes the state hn's, if all of hn checks.
func (s *State) Replace(hn wire.HostNetwork) error {
	next := NewState(s.physnets)
	for _, p := range hn.Ports {
		if err := next.Plug(p); err != nil {
			return err
		}
	}
	if err := next.UpdateGroups(hn.Groups); err != nil {
		return err
	}
	for _, d := range hn.DHCP {
		if err := next.SetDHCP(d); err != nil {
			return err
		}
	}
	for _, r := range hn.Routers {
		if err := next.SetRouter(r); err != nil {
			return err
		}
	}
	*s = next
	return nil
}

// Networks returns the networks the host's ports, DHCP servers and
// routers are on.
func (s *State) Networks() map[string]bool {
	out := map[string]bool{}
	for _, p := range s.Ports {
		out[p.NetworkID] = true
	}
	for _, d := range s.DHCP {
		out[d.NetworkID] = true
	}
	for _, r := range s.Routers {
		for _, p := range r.Interfaces {
			out[p.NetworkID] = true
		}
		if r.Gateway != nil {
			out[r.Gateway.NetworkID] = true
		}
	}
	return out
}
