package network

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/trustack/trustack"
)

// PortSpec is what a caller asks of a port, on creation or update; nil
// fields are left as they are (on creation, to their defaults).
type PortSpec struct {
	// ProjectID is the owner of a new port, "" for the caller's project;
	// NetworkID is given on creation only.
	ProjectID    string
	NetworkID    string
	Name         *string
	Description  *string
	MACAddress   *string
	AdminStateUp *bool
	DeviceOwner  *string
	DeviceID     *string
	// FixedIPs default to an address of the network's first IPv4 subnet
	// and one of its first IPv6 subnet whose addresses come from its
	// pools. Whatever they ask for, a port that is not a router's
	// interface has its MAC's address on each of the network's subnets
	// whose addresses are automatic (trustack.Subnet's AutoAddress), as
	// Neutron's; on update, a fixed IP that names only a subnet the port
	// has an address on keeps that address.
	FixedIPs *[]FixedIPSpec
	// SecurityGroups default to the project's default group, for ports
	// with port security that no network device owns.
	SecurityGroups      *[]string
	PortSecurity        *bool
	AllowedAddressPairs *[]trustack.AddressPair
	HostID              *string
	VNICType            *string
	Tags                *[]string
}

// FixedIPSpec asks for an address: Address on SubnetID, any free address
// of SubnetID (Address zero), or Address on whichever of the network's
// subnets holds it (SubnetID "").
type FixedIPSpec struct {
	SubnetID string
	Address  netip.Addr
}

// Limits Neutron sets on a port.
const maxAddressPairs = 10

// vnicTypes are the binding:vnic_type values Neutron knows.
var vnicTypes = []string{"normal", "direct", "macvtap", "baremetal", "direct-physical", "virtio-forwarder", "smart-nic", "vdpa", "remote-managed"}

// CreatePort creates a port on a network the caller may see: an
// invisible network is not found; one the caller may see but neither
// owns nor shares (an external network) is EFORBIDDEN. Addresses given
// must be free (ECONFLICT); none left gives ECONFLICT
// (IpAddressGenerationFailure).
func (s *Service) CreatePort(ctx context.Context, c Caller, spec PortSpec) (*trustack.Port, error) {
	p, n, err := s.newPort(ctx, c, &spec)
	if err != nil {
		return nil, err
	}
	limit, err := s.limit(ctx, p.ProjectID, trustack.QuotaPort)
	if err != nil {
		return nil, err
	}
	if err := s.createPort(ctx, n, p, *spec.FixedIPs, spec.MACAddress == nil, limit); err != nil {
		return nil, err
	}
	s.portChanged(ctx, nil, p)
	return p, nil
}

// newPort returns the port spec makes, checked as CreatePort checks it
// but not stored, and its network. Fixed IPs not asked for are set in
// spec to the default addresses.
func (s *Service) newPort(ctx context.Context, c Caller, spec *PortSpec) (*trustack.Port, *trustack.Network, error) {
	n, project, err := s.useNetwork(ctx, c, spec.NetworkID, spec.ProjectID, "ports")
	if err != nil {
		return nil, nil, err
	}
	now := s.now()
	p := &trustack.Port{ID: uuid.NewString(), ProjectID: project, NetworkID: n.ID, AdminStateUp: true, Status: trustack.StatusDown,
		PortSecurity: n.PortSecurity, VNICType: "normal", Standard: trustack.Standard{CreatedAt: now, UpdatedAt: now, Revision: 1}}
	subnets, err := s.subnetsOf(ctx, n)
	if err != nil {
		return nil, nil, err
	}
	if spec.FixedIPs == nil {
		spec.FixedIPs = &[]FixedIPSpec{}
		defaultAddresses(subnets, spec.FixedIPs)
	}
	if err := s.applyPort(ctx, c, n, subnets, p, *spec); err != nil {
		return nil, nil, err
	}
	if spec.SecurityGroups == nil && p.PortSecurity && !networkDevice(p.DeviceOwner) {
		g, err := s.defaultGroup(ctx, project)
		if err != nil {
			return nil, nil, err
		}
		p.SecurityGroups = []string{g}
	}
	return p, n, nil
}

// createPort stores a new port of network n, choosing its MAC again, and
// the SLAAC addresses that follow from it, if the MAC chosen (when chosen
// is set) was taken meanwhile.
func (s *Service) createPort(ctx context.Context, n *trustack.Network, p *trustack.Port, ips []FixedIPSpec, chosen bool, limit int) error {
	for attempt := 0; ; attempt++ {
		err := s.store.CreatePort(ctx, p, s.allocator(), limit)
		if !chosen || trustack.ErrorReason(err) != "MacAddressInUse" || attempt == 3 {
			return err
		}
		p.MACAddress, p.FixedIPs = s.allocator().MAC(), nil
		subnets, err := s.subnetsOf(ctx, n)
		if err != nil {
			return err
		}
		if p.FixedIPs, err = fixedIPs(n, subnets, p, ips, false); err != nil {
			return err
		}
	}
}

// networkDevice reports whether a port is a network device's (a router's
// or a DHCP server's), which security groups do not hold.
func networkDevice(owner string) bool { return strings.HasPrefix(owner, "network:") }

// subnetsOf returns the subnets of network n.
func (s *Service) subnetsOf(ctx context.Context, n *trustack.Network) ([]*trustack.Subnet, error) {
	return s.store.Subnets(ctx, trustack.SubnetFilter{NetworkIDs: []string{n.ID}})
}

// defaultAddresses asks for a port's default addresses on a network of
// subnets: one of the first IPv4 subnet, and one of the first IPv6 subnet
// whose addresses come from its pools. Those of subnets whose addresses are
// automatic follow from the port's MAC, and fixedIPs adds them.
func defaultAddresses(subnets []*trustack.Subnet, ips *[]FixedIPSpec) {
	v4, v6 := false, false
	for _, sn := range subnets {
		switch {
		case sn.AutoAddress():
		case sn.IPVersion == 4 && !v4:
			*ips, v4 = append(*ips, FixedIPSpec{SubnetID: sn.ID}), true
		case sn.IPVersion == 6 && !v6:
			*ips, v6 = append(*ips, FixedIPSpec{SubnetID: sn.ID}), true
		}
	}
}

// applyPort sets and checks what spec changes of p, a port of network n,
// given n's subnets when spec changes the fixed IPs or the MAC.
func (s *Service) applyPort(ctx context.Context, c Caller, n *trustack.Network, subnets []*trustack.Subnet, p *trustack.Port, spec PortSpec) error {
	set(&p.Name, spec.Name)
	set(&p.Description, spec.Description)
	set(&p.AdminStateUp, spec.AdminStateUp)
	set(&p.DeviceOwner, spec.DeviceOwner)
	set(&p.DeviceID, spec.DeviceID)
	set(&p.PortSecurity, spec.PortSecurity)
	set(&p.HostID, spec.HostID)
	set(&p.VNICType, spec.VNICType)
	if err := checkName(p.Name, p.Description); err != nil {
		return err
	}
	if len(p.DeviceOwner) > maxName || len(p.DeviceID) > maxName {
		return invalid("Invalid input for device_owner or device_id. Reason: longer than %d characters.", maxName)
	}
	if !slices.Contains(vnicTypes, p.VNICType) {
		return invalid("Invalid input for binding:vnic_type. Reason: '%s' is not in %v.", p.VNICType, vnicTypes)
	}
	if spec.Tags != nil {
		tags, err := checkTags(*spec.Tags)
		if err != nil {
			return err
		}
		p.Tags = tags
	}
	if spec.MACAddress != nil {
		mac, err := checkMAC(*spec.MACAddress)
		if err != nil {
			return err
		}
		p.MACAddress = mac
	}
	if p.MACAddress == "" {
		p.MACAddress = s.allocator().MAC()
	}
	switch {
	case spec.FixedIPs != nil:
		ips, err := fixedIPs(n, subnets, p, *spec.FixedIPs, false)
		if err != nil {
			return err
		}
		p.FixedIPs = ips
	case spec.MACAddress != nil:
		// A new MAC has new SLAAC addresses.
		specs := make([]FixedIPSpec, len(p.FixedIPs))
		for i, ip := range p.FixedIPs {
			specs[i] = FixedIPSpec{SubnetID: ip.SubnetID, Address: ip.Address}
		}
		ips, err := fixedIPs(n, subnets, p, specs, true)
		if err != nil {
			return err
		}
		p.FixedIPs = ips
	}
	if spec.SecurityGroups != nil {
		groups, err := s.portGroups(ctx, c, p.ProjectID, *spec.SecurityGroups)
		if err != nil {
			return err
		}
		p.SecurityGroups = groups
	}
	if spec.AllowedAddressPairs != nil {
		pairs, err := checkAddressPairs(*spec.AllowedAddressPairs)
		if err != nil {
			return err
		}
		p.AllowedAddressPairs = pairs
	}
	if !p.PortSecurity {
		switch {
		case len(p.SecurityGroups) > 0:
			return conflict("PortSecurityPortHasSecurityGroup", "Port has security group associated. Cannot disable port security or IP address until security group is removed.")
		case len(p.AllowedAddressPairs) > 0:
			return conflict("AddressPairAndPortSecurityRequired", "Port Security must be enabled in order to have allowed address pairs on a port.")
		}
	}
	return nil
}

// checkMAC returns a MAC address in its canonical form, or EINVALID for
// one that is malformed, multicast or all zeros.
func checkMAC(s string) (string, error) {
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 || hw[0]&1 == 1 || hw.String() == "00:00:00:00:00:00" {
		return "", invalid("Invalid input for mac_address. Reason: '%s' is not a valid MAC address.", s)
	}
	return hw.String(), nil
}

// fixedIPs resolves the fixed IPs specs ask for into the addresses of p,
// a port of network n (whose subnets are subnets) with its MAC and owner
// set, and with the fixed IPs it has (none for a new port). Each subnet must be the network's, an
// address must lie in its subnet, and no address may come twice. A fixed
// IP that names only a subnet keeps an address the port has there that
// no other fixed IP asks for, as Neutron's IPAM; otherwise the store
// allocates one. A port that is not a router's interface has its MAC's
// address on each subnet of the network whose addresses are automatic,
// named or not, and one asked for there is EINVALID unless reassign (when
// the port's MAC changes); a router's interface has addresses there as on
// any other subnet.
func fixedIPs(n *trustack.Network, subnets []*trustack.Subnet, p *trustack.Port, specs []FixedIPSpec, reassign bool) ([]trustack.FixedIP, error) {
	byID := map[string]*trustack.Subnet{}
	for _, sn := range subnets {
		byID[sn.ID] = sn
	}
	automatic := func(sn *trustack.Subnet) bool {
		return sn.AutoAddress() && p.DeviceOwner != trustack.OwnerRouterInterface
	}
	var out []trustack.FixedIP
	has := func(addr netip.Addr) bool {
		return slices.ContainsFunc(out, func(ip trustack.FixedIP) bool { return ip.Address == addr })
	}
	for _, f := range specs {
		sn := byID[f.SubnetID]
		switch {
		case f.SubnetID == "" && !f.Address.IsValid():
			return nil, invalid("Invalid input for fixed_ips. Reason: each needs a subnet_id or an ip_address.")
		case f.SubnetID == "":
			for _, cand := range subnets {
				if cand.CIDR.Contains(f.Address) {
					sn = cand
				}
			}
			if sn == nil {
				return nil, invalid("IP address %s is not a valid IP for any of the subnets on network %s.", f.Address, n.ID)
			}
		case sn == nil:
			return nil, invalid("Invalid input for operation: Failed to create port on network %s, because fixed_ips included invalid subnet %s.", n.ID, f.SubnetID)
		case f.Address.IsValid() && !sn.CIDR.Contains(f.Address):
			return nil, trustack.Reasonf(trustack.EINVALID, "InvalidIpForSubnet", "IP address %s is not a valid IP for the specified subnet.", f.Address)
		}
		if automatic(sn) && f.Address.IsValid() && !reassign {
			return nil, invalid("IPv6 address %s cannot be directly assigned to a port on subnet %s as the subnet is configured for automatic addresses.", f.Address, sn.ID)
		}
		ip := trustack.FixedIP{SubnetID: sn.ID, Address: f.Address}
		if automatic(sn) {
			ip.Address = eui64(sn.CIDR, p.MACAddress)
		}
		if ip.Address.IsValid() && has(ip.Address) {
			return nil, invalid("Invalid input for fixed_ips. Reason: Duplicate IP address '%s'.", ip.Address)
		}
		out = append(out, ip)
	}
	for i := range out {
		if out[i].Address.IsValid() {
			continue
		}
		for _, had := range p.FixedIPs {
			if had.SubnetID == out[i].SubnetID && had.Address.IsValid() && !has(had.Address) {
				out[i].Address = had.Address
				break
			}
		}
	}
	for _, sn := range subnets {
		if automatic(sn) && !slices.ContainsFunc(out, func(ip trustack.FixedIP) bool { return ip.SubnetID == sn.ID }) {
			out = append(out, trustack.FixedIP{SubnetID: sn.ID, Address: eui64(sn.CIDR, p.MACAddress)})
		}
	}
	return out, nil
}

// eui64 returns the SLAAC address of a MAC on a /64.
func eui64(p netip.Prefix, mac string) netip.Addr {
	hw, err := net.ParseMAC(mac)
	b := p.Addr().As16()
	if err != nil || len(hw) != 6 {
		return netip.Addr{}
	}
	b[8], b[9], b[10], b[11] = hw[0]^0x02, hw[1], hw[2], 0xff
	b[12], b[13], b[14], b[15] = 0xfe, hw[3], hw[4], hw[5]
	return netip.AddrFrom16(b)
}

// portGroups checks that the groups exist and may hold a port of project,
// and returns them without duplicates.
func (s *Service) portGroups(ctx context.Context, c Caller, project string, ids []string) ([]string, error) {
	var out []string
	for _, id := range ids {
		g, err := s.store.SecurityGroup(ctx, id)
		if err != nil || g.ProjectID != project && !c.Admin {
			return nil, notFound("SecurityGroupNotFound", "Security group %s does not exist", id)
		}
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out, nil
}

// checkAddressPairs returns the pairs in canonical form, or EINVALID.
func checkAddressPairs(pairs []trustack.AddressPair) ([]trustack.AddressPair, error) {
	if len(pairs) > maxAddressPairs {
		return nil, trustack.Reasonf(trustack.EINVALID, "AllowedAddressPairExhausted", "The number of allowed address pair exceeds the maximum %d.", maxAddressPairs)
	}
	out := make([]trustack.AddressPair, 0, len(pairs))
	for _, pair := range pairs {
		if pair.MACAddress != "" {
			mac, err := checkMAC(pair.MACAddress)
			if err != nil {
				return nil, err
			}
			pair.MACAddress = mac
		}
		if a, err := netip.ParseAddr(pair.IPAddress); err == nil {
			pair.IPAddress = a.String()
		} else if pfx, err := netip.ParsePrefix(pair.IPAddress); err == nil {
			pair.IPAddress = pfx.String()
		} else {
			return nil, invalid("Invalid input for allowed_address_pairs. Reason: '%s' is not a valid IP address or CIDR.", pair.IPAddress)
		}
		if slices.Contains(out, pair) {
			return nil, trustack.Reasonf(trustack.EINVALID, "DuplicateAddressPairInRequest", "Request contains duplicate address pair: mac_address %s ip_address %s.", pair.MACAddress, pair.IPAddress)
		}
		out = append(out, pair)
	}
	return out, nil
}

// Port returns a port the caller may see: its own, or one on a network it
// owns.
func (s *Service) Port(ctx context.Context, c Caller, id string) (*trustack.Port, error) {
	p, err := s.store.Port(ctx, id)
	if err == nil && !c.owns(p.ProjectID) {
		var n *trustack.Network
		if n, err = s.store.Network(ctx, p.NetworkID); err == nil && n.ProjectID != c.ProjectID {
			err = trustack.Errorf(trustack.ENOTFOUND, "not the caller's")
		}
	}
	if err != nil {
		return nil, notFound("PortNotFound", "Port %s could not be found.", id)
	}
	return p, nil
}

// Ports returns the ports the caller may see that f selects.
func (s *Service) Ports(ctx context.Context, c Caller, f trustack.PortFilter) ([]*trustack.Port, error) {
	if !c.Admin {
		f.VisibleTo = c.ProjectID
	}
	return s.store.Ports(ctx, f)
}

// UpdatePort changes a port; its network cannot change (EINVALID). The
// checks are CreatePort's; a port bound to a host has its wiring brought
// up to date there.
func (s *Service) UpdatePort(ctx context.Context, c Caller, id string, spec PortSpec) (*trustack.Port, error) {
	if spec.NetworkID != "" {
		return nil, invalid("Cannot update read-only attribute network_id.")
	}
	before, err := s.Port(ctx, c, id)
	if err != nil {
		return nil, err
	}
	n, err := s.store.Network(ctx, before.NetworkID)
	if err != nil {
		return nil, err
	}
	if spec.MACAddress != nil && before.HostID != "" {
		return nil, conflict("PortBound", "Unable to complete operation on port %s, port is already bound, port type: ovs, old_mac %s, new_mac %s.", id, before.MACAddress, *spec.MACAddress)
	}
	var subnets []*trustack.Subnet
	if spec.FixedIPs != nil || spec.MACAddress != nil {
		if subnets, err = s.subnetsOf(ctx, n); err != nil {
			return nil, err
		}
	}
	after, err := s.store.UpdatePort(ctx, id, s.allocator(), func(p *trustack.Port) error {
		p.UpdatedAt = s.now()
		if spec.SecurityGroups == nil && spec.PortSecurity != nil && !*spec.PortSecurity && len(p.SecurityGroups) > 0 {
			return conflict("PortSecurityPortHasSecurityGroup", "Port has security group associated. Cannot disable port security or IP address until security group is removed.")
		}
		return s.applyPort(ctx, c, n, subnets, p, spec)
	})
	if err != nil {
		return nil, err
	}
	s.portChanged(ctx, before, after)
	return after, nil
}

// DeletePort deletes a port and disassociates its floating IPs; a
// router's interface is ECONFLICT (remove it from the router instead).
func (s *Service) DeletePort(ctx context.Context, c Caller, id string) error {
	p, err := s.Port(ctx, c, id)
	if err != nil {
		return err
	}
	if p.DeviceOwner == trustack.OwnerRouterInterface || p.DeviceOwner == trustack.OwnerRouterGateway || p.DeviceOwner == trustack.OwnerFloatingIP {
		return conflict("PortInUse", "Port %s cannot be deleted directly via the port API: has device owner %s.", id, p.DeviceOwner)
	}
	return s.deletePort(ctx, p)
}

// deletePort deletes a port and tells its host and the holders of its
// groups.
func (s *Service) deletePort(ctx context.Context, p *trustack.Port) error {
	if err := s.store.DeletePort(ctx, p.ID); err != nil {
		return err
	}
	s.portChanged(ctx, p, nil)
	return nil
}
