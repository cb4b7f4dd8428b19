// Package fake is a host network that touches no kernel: it keeps in
// memory the ports, security groups, DHCP servers and routers a host is
// told to have (a hostnet.State, checked as every host checks them), and
// shows what it has. Tests use it to see what reached a
// host, and `trustack up` to simulate thousands of hosts in one process.
package fake

import (
	"context"
	"sync"

	"github.com/trustack/trustack/agent"
	"github.com/trustack/trustack/hostnet"
	"github.com/trustack/trustack/wire"
)

var _ agent.HostNetwork = (*Network)(nil)

// Network is a simulated host network. It is safe for concurrent use.
type Network struct {
	mu sync.Mutex
	st hostnet.State
}

// New returns a host network wired to the physical networks named.
func New(physicalNetworks []string) *Network {
	return &Network{st: hostnet.NewState(physicalNetworks)}
}

// PhysicalNetworks returns the physical networks the host is wired to.
func (n *Network) PhysicalNetworks() []string { return n.st.PhysicalNetworks() }

// Plug wires a port; EINVALID for a malformed one, or one on a physical
// network the host is not wired to.
func (n *Network) Plug(_ context.Context, p wire.Port) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.st.Plug(p)
}

// Unplug removes a port.
func (n *Network) Unplug(_ context.Context, portID string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.st.Ports, portID)
	return nil
}

// Ports returns the ports wired, by ID.
func (n *Network) Ports(context.Context) ([]wire.Port, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.st.PortList(), nil
}

// SecurityGroups sets the groups given.
func (n *Network) SecurityGroups(_ context.Context, groups []wire.SecurityGroup) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.st.UpdateGroups(groups)
}

// SetDHCP serves a subnet.
func (n *Network) SetDHCP(_ context.Context, d wire.DHCP) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.st.SetDHCP(d)
}

// RemoveDHCP stops serving a subnet.
func (n *Network) RemoveDHCP(_ context.Context, subnetID string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.st.DHCP, subnetID)
	return nil
}

// SetLeases changes the leases of a network's DHCP servers.
func (n *Network) SetLeases(_ context.Context, l wire.DHCPLeases) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, err := n.st.SetLeases(l)
	return err
}

// SetRouter runs a router.
func (n *Network) SetRouter(_ context.Context, r wire.Router) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.st.SetRouter(r)
}

// RemoveRouter removes a router.
func (n *Network) RemoveRouter(_ context.Context, routerID string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.st.Routers, routerID)
	return nil
}

// Sync makes the host's state be hn's, and nothing more.
func (n *Network) Sync(_ context.Context, hn wire.HostNetwork) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.st.Replace(hn)
}

// Reconcile has nothing to repair: nothing changes the fake behind its
// back.
func (n *Network) Reconcile(context.Context) error { return nil }

// SetMetadataSource does nothing: no guest is behind a fake router.
func (n *Network) SetMetadataSource(agent.MetadataSource) {}

// Group returns a security group the host enforces, and whether it has
// it.
func (n *Network) Group(id string) (wire.SecurityGroup, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	g, ok := n.st.Groups[id]
	return g, ok
}

// DHCP returns what the host serves for a subnet, and whether it does.
func (n *Network) DHCP(subnetID string) (wire.DHCP, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	d, ok := n.st.DHCP[subnetID]
	return d, ok
}

// Router returns a router the host runs, and whether it does.
func (n *Network) Router(id string) (wire.Router, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	r, ok := n.st.Routers[id]
	return r, ok
}
