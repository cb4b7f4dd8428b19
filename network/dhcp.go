package network

import (
	"context"
	"slices"

	"github.com/google/uuid"

	"github.com/trustack/trustack"
)

// A network's DHCP server has a port on it (network:dhcp), with an address
// on each of its subnets that enable DHCP, as a Neutron DHCP agent's has.

// dhcpDevice is the device ID of a network's DHCP server's port.
func dhcpDevice(networkID string) string { return "dhcp-" + networkID }

// serveDHCP gives network n's DHCP server an address on subnet sn and has
// the network node serve it. A failure is logged: the subnet works, but
// its hosts get no lease until it is fixed.
func (s *Service) serveDHCP(ctx context.Context, n *trustack.Network, sn *trustack.Subnet) {
	if err := s.dhcpAddress(ctx, n, sn); err != nil {
		s.opts.Log.Error("give the DHCP server an address", "subnet", sn.ID, "error", err)
		return
	}
	s.networkLeasesChanged(ctx, n.ID)
}

// dhcpAddress gives network n's DHCP server's port an address on sn, the
// first free one of its pools, making the port if the network has none.
func (s *Service) dhcpAddress(ctx context.Context, n *trustack.Network, sn *trustack.Subnet) error {
	ports, err := s.store.Ports(ctx, trustack.PortFilter{NetworkID: n.ID, DeviceOwner: trustack.OwnerDHCP})
	if err != nil {
		return err
	}
	if len(ports) == 0 {
		now := s.now()
		p := &trustack.Port{ID: uuid.NewString(), ProjectID: n.ProjectID, NetworkID: n.ID, AdminStateUp: true, Status: trustack.StatusActive,
			DeviceOwner: trustack.OwnerDHCP, DeviceID: dhcpDevice(n.ID), MACAddress: s.allocator().MAC(), VNICType: "normal",
			FixedIPs: []trustack.FixedIP{{SubnetID: sn.ID}}, Standard: trustack.Standard{CreatedAt: now, UpdatedAt: now, Revision: 1}}
		return s.store.CreatePort(ctx, p, firstFree{s.allocator()}, -1)
	}
	_, err = s.store.UpdatePort(ctx, ports[0].ID, firstFree{s.allocator()}, func(p *trustack.Port) error {
		if !slices.ContainsFunc(p.FixedIPs, func(ip trustack.FixedIP) bool { return ip.SubnetID == sn.ID }) {
			p.FixedIPs = append(p.FixedIPs, trustack.FixedIP{SubnetID: sn.ID})
			p.UpdatedAt = s.now()
		}
		return nil
	})
	return err
}

// stopDHCP takes the DHCP server's address on a subnet whose DHCP was
// turned off, and has the network node stop serving it.
func (s *Service) stopDHCP(ctx context.Context, sn *trustack.Subnet) {
	ports, err := s.store.Ports(ctx, trustack.PortFilter{NetworkID: sn.NetworkID, DeviceOwner: trustack.OwnerDHCP})
	for i := 0; err == nil && i < len(ports); i++ {
		_, err = s.store.UpdatePort(ctx, ports[i].ID, s.allocator(), func(p *trustack.Port) error {
			p.FixedIPs = slices.DeleteFunc(p.FixedIPs, func(ip trustack.FixedIP) bool { return ip.SubnetID == sn.ID })
			p.UpdatedAt = s.now()
			return nil
		})
	}
	if err != nil {
		s.opts.Log.Error("take the DHCP server's address", "subnet", sn.ID, "error", err)
	}
	s.dhcpRemoved(ctx, sn.ID)
}
