package agent

import (
	"context"
	"fmt"

	"github.com/trustack/trustack/wire"
)

// HostNetwork wires the host's side of the network: its servers' ports,
// the security groups they are held to and, on a network node, DHCP
// servers and routers. Drivers implement it (hostnet/fake; hostnet/linux
// on real hosts). Every method is idempotent: setting what is set changes
// nothing, and removing what is not there is no error. Methods are safe
// for concurrent use.
type HostNetwork interface {
	// PhysicalNetworks returns the physical networks the host is wired
	// to, which flat and VLAN networks are on.
	PhysicalNetworks() []string
	// Plug wires a port, or brings its wiring up to date; Unplug
	// removes it.
	Plug(ctx context.Context, p wire.Port) error
	Unplug(ctx context.Context, portID string) error
	// Ports returns the ports wired.
	Ports(ctx context.Context) ([]wire.Port, error)
	// SecurityGroups enforces the groups on the ports in them, each as
	// wire.SecurityGroup.Update makes it from the one enforced.
	SecurityGroups(ctx context.Context, groups []wire.SecurityGroup) error
	// SetDHCP serves DHCP for a subnet as d says; RemoveDHCP stops.
	SetDHCP(ctx context.Context, d wire.DHCP) error
	RemoveDHCP(ctx context.Context, subnetID string) error
	// SetLeases changes the leases of the DHCP servers of a network, as
	// wire.DHCP.Apply does.
	SetLeases(ctx context.Context, l wire.DHCPLeases) error
	// SetRouter runs a router as r says; RemoveRouter removes it.
	SetRouter(ctx context.Context, r wire.Router) error
	RemoveRouter(ctx context.Context, routerID string) error
	// Sync makes the host's network state be hn, removing what it has
	// beyond it: what a registering agent learns from the controllers.
	Sync(ctx context.Context, hn wire.HostNetwork) error
	// Reconcile makes the host's network state what it was last told
	// again, repairing what changed behind its back; the agent calls it
	// on a timer.
	Reconcile(ctx context.Context) error
	// SetMetadataSource has the host's routers answer what guests ask
	// the metadata service (169.254.169.254) from source; the agent sets
	// it before the first Sync.
	SetMetadataSource(source MetadataSource)
}

// MetadataSource answers a guest's request to the metadata service for
// path, as the router it is behind forwards it: the guest is whoever has
// address on a subnet of the router. ENOTFOUND for nothing there.
type MetadataSource func(ctx context.Context, routerID, address, path string) ([]byte, error)

// metadata asks the controllers what the metadata service answers a
// guest behind one of this host's routers.
func (a *Agent) metadata(ctx context.Context, routerID, address, path string) ([]byte, error) {
	return a.controllers.Metadata(ctx, wire.MetadataRequest{Host: a.cfg.Name, RouterID: routerID, Address: address, Path: path})
}

// The network conversation, handed to the host's HostNetwork.

// Plug wires a port no spawn wires (an interface attached to a running
// server, say), or brings one up to date.
func (a *Agent) Plug(ctx context.Context, p wire.Port) error { return a.net.Plug(ctx, p) }

// Unplug removes a port's wiring.
func (a *Agent) Unplug(ctx context.Context, portID string) error { return a.net.Unplug(ctx, portID) }

// SecurityGroups enforces security groups as they now are.
func (a *Agent) SecurityGroups(ctx context.Context, groups []wire.SecurityGroup) error {
	return a.net.SecurityGroups(ctx, groups)
}

// SetDHCP serves DHCP for a subnet.
func (a *Agent) SetDHCP(ctx context.Context, d wire.DHCP) error { return a.net.SetDHCP(ctx, d) }

// RemoveDHCP stops serving DHCP for a subnet.
func (a *Agent) RemoveDHCP(ctx context.Context, subnetID string) error {
	return a.net.RemoveDHCP(ctx, subnetID)
}

// SetLeases changes the leases of a network's DHCP servers.
func (a *Agent) SetLeases(ctx context.Context, l wire.DHCPLeases) error {
	return a.net.SetLeases(ctx, l)
}

// SetRouter runs a router.
func (a *Agent) SetRouter(ctx context.Context, r wire.Router) error { return a.net.SetRouter(ctx, r) }

// RemoveRouter removes a router.
func (a *Agent) RemoveRouter(ctx context.Context, routerID string) error {
	return a.net.RemoveRouter(ctx, routerID)
}

// plugAll wires a server's ports before its guest starts, held to their
// security groups from the first packet.
func (a *Agent) plugAll(ctx context.Context, ports []wire.Port, groups []wire.SecurityGroup) error {
	if len(groups) > 0 {
		if err := a.net.SecurityGroups(ctx, groups); err != nil {
			return fmt.Errorf("security groups: %w", err)
		}
	}
	for _, p := range ports {
		if err := a.net.Plug(ctx, p); err != nil {
			return fmt.Errorf("plug port %s: %w", p.ID, err)
		}
	}
	return nil
}

// unplugServer removes the wiring of a server's ports.
func (a *Agent) unplugServer(ctx context.Context, serverID string) error {
	ports, err := a.net.Ports(ctx)
	if err != nil {
		return err
	}
	for _, p := range ports {
		if p.ServerID == serverID {
			if err := a.net.Unplug(ctx, p.ID); err != nil {
				return fmt.Errorf("unplug port %s: %w", p.ID, err)
			}
		}
	}
	return nil
}
