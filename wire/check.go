package wire

import (
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/trustack/trustack"
)

// What a host checks of what it is told to wire, whatever its driver:
// EINVALID for anything it could not wire as said.

// Check checks that a host wired to physnets can wire the port.
func (p Port) Check(physnets []string) error {
	if p.ID == "" {
		return trustack.Errorf(trustack.EINVALID, "a port needs an ID")
	}
	if _, err := p.HardwareAddr(); err != nil {
		return err
	}
	if err := p.Segment.Check(physnets); err != nil {
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

// HardwareAddr returns the port's MAC address, or EINVALID if it is not
// a 6-byte MAC.
func (p Port) HardwareAddr() (net.HardwareAddr, error) {
	hw, err := net.ParseMAC(p.MAC)
	if err != nil || len(hw) != 6 {
		return nil, trustack.Errorf(trustack.EINVALID, "port %s: bad MAC address %q", p.ID, p.MAC)
	}
	return hw, nil
}

// Check checks that a host wired to physnets can reach the segment.
func (s Segment) Check(physnets []string) error {
	switch s.Type {
	case trustack.NetworkFlat, trustack.NetworkVLAN:
		if !slices.Contains(physnets, s.PhysicalNetwork) {
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

// Check checks the group's rules.
func (g SecurityGroup) Check() error {
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
	return nil
}

// Check checks that a host can serve the subnet.
func (d DHCP) Check(physnets []string) error {
	if _, err := netip.ParsePrefix(d.CIDR); err != nil {
		return trustack.Errorf(trustack.EINVALID, "DHCP for subnet %s: bad CIDR %q", d.SubnetID, d.CIDR)
	}
	if err := d.Segment.Check(physnets); err != nil {
		return fmt.Errorf("DHCP for subnet %s: %w", d.SubnetID, err)
	}
	if err := CheckLeases(d.Leases); err != nil {
		return fmt.Errorf("DHCP for subnet %s: %w", d.SubnetID, err)
	}
	return nil
}

// CheckLeases checks what a DHCP server needs of its leases.
func CheckLeases(leases []DHCPHost) error {
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

// Check checks that a host wired to physnets can run the router.
func (r Router) Check(physnets []string) error {
	for _, p := range r.Interfaces {
		if err := p.Check(physnets); err != nil {
			return fmt.Errorf("router %s: %w", r.ID, err)
		}
	}
	if r.Gateway != nil {
		if err := r.Gateway.Check(physnets); err != nil {
			return fmt.Errorf("router %s: %w", r.ID, err)
		}
	}
	return nil
}
