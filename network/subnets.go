package network

import (
	"context"
	"net/netip"
	"slices"

	"github.com/google/uuid"

	"github.com/trustack/trustack"
)

// SubnetSpec is what a caller asks of a subnet, on creation or update;
// nil fields are left as they are (on creation, to their defaults).
type SubnetSpec struct {
	// ProjectID is the owner of a new subnet, "" for the caller's
	// project; NetworkID, IPVersion and CIDR are given on creation only.
	ProjectID string
	NetworkID string
	IPVersion int
	CIDR      netip.Prefix
	Name      *string
	// Description and the rest may change on update.
	Description *string
	// GatewayIP is the gateway; a pointer to the zero Addr is none. The
	// default is the subnet's first address.
	GatewayIP *netip.Addr
	// AllocationPools default to every address of the subnet but the
	// gateway (and, for IPv4, the network and broadcast addresses).
	AllocationPools *[]trustack.IPRange
	EnableDHCP      *bool
	DNSNameservers  *[]netip.Addr
	HostRoutes      *[]trustack.HostRoute
	IPv6RAMode      *string
	IPv6AddressMode *string
	Tags            *[]string
}

// Limits Neutron sets on a subnet's lists.
const (
	maxDNSNameservers = 5
	maxHostRoutes     = 20
)

// CreateSubnet creates a subnet on a network the caller may see. A bad
// CIDR, gateway, pool, name server or route is EINVALID; a CIDR that
// overlaps another subnet of the network is EINVALID too, as Neutron's.
// With DHCP, the network's DHCP server gets an address on it; on a subnet
// whose addresses are automatic, so do the network's other ports but
// routers' interfaces, their MACs'.
func (s *Service) CreateSubnet(ctx context.Context, c Caller, spec SubnetSpec) (*trustack.Subnet, error) {
	n, project, err := s.useNetwork(ctx, c, spec.NetworkID, spec.ProjectID, "subnets")
	if err != nil {
		return nil, err
	}
	prefix, err := checkCIDR(spec.IPVersion, spec.CIDR)
	if err != nil {
		return nil, err
	}
	now := s.now()
	sn := &trustack.Subnet{ID: uuid.NewString(), ProjectID: project, NetworkID: n.ID, IPVersion: spec.IPVersion, CIDR: prefix,
		Gateway: prefix.Addr().Next(), EnableDHCP: true, Standard: trustack.Standard{CreatedAt: now, UpdatedAt: now, Revision: 1}}
	if spec.AllocationPools == nil {
		// The defaults follow the gateway the spec asks for.
		if spec.GatewayIP != nil {
			sn.Gateway = *spec.GatewayIP
		}
		sn.AllocationPools = defaultPools(prefix, sn.Gateway)
	}
	if err := applySubnet(sn, spec); err != nil {
		return nil, err
	}
	limit, err := s.limit(ctx, project, trustack.QuotaSubnet)
	if err != nil {
		return nil, err
	}
	if err := s.store.CreateSubnet(ctx, sn, limit); err != nil {
		return nil, err
	}
	if sn.AutoAddress() {
		s.addAutoAddresses(ctx, sn)
	}
	if sn.EnableDHCP {
		s.serveDHCP(ctx, n, sn)
	}
	s.opts.Log.Info("subnet created", "subnet", sn.ID, "network", n.ID, "cidr", sn.CIDR)
	return sn, nil
}

// addAutoAddresses gives the ports of sn's network, a new subnet whose
// addresses are automatic, their MACs' addresses on it, as Neutron does:
// all but routers' interfaces, and DHCP servers, which serveDHCP gives
// theirs. Each port is updated apart; a failure is logged, and leaves the
// port without the address until its fixed IPs are next set.
func (s *Service) addAutoAddresses(ctx context.Context, sn *trustack.Subnet) {
	ports, err := s.store.Ports(ctx, trustack.PortFilter{NetworkID: sn.NetworkID})
	if err != nil {
		s.opts.Log.Error("give ports their addresses on a new subnet", "subnet", sn.ID, "error", err)
		return
	}
	for _, before := range ports {
		if before.DeviceOwner == trustack.OwnerRouterInterface || before.DeviceOwner == trustack.OwnerDHCP {
			continue
		}
		after, err := s.store.UpdatePort(ctx, before.ID, s.allocator(), func(p *trustack.Port) error {
			if !slices.ContainsFunc(p.FixedIPs, func(ip trustack.FixedIP) bool { return ip.SubnetID == sn.ID }) {
				p.FixedIPs = append(p.FixedIPs, trustack.FixedIP{SubnetID: sn.ID, Address: eui64(sn.CIDR, p.MACAddress)})
				p.UpdatedAt = s.now()
			}
			return nil
		})
		switch {
		case trustack.ErrorCode(err) == trustack.ENOTFOUND: // deleted meanwhile
		case err != nil:
			s.opts.Log.Error("give a port its address on a new subnet", "subnet", sn.ID, "port", before.ID, "error", err)
		default:
			s.portChanged(ctx, before, after)
		}
	}
}

// checkCIDR returns EINVALID unless prefix is a subnet of the IP version:
// its network address, and large enough to hold a port besides the
// gateway.
func checkCIDR(version int, prefix netip.Prefix) (netip.Prefix, error) {
	switch {
	case version != 4 && version != 6:
		return prefix, invalid("Invalid input for ip_version. Reason: %d is not in [4, 6].", version)
	case !prefix.IsValid():
		return prefix, invalid("Bad subnets request: a valid cidr is required.")
	case version == 4 != prefix.Addr().Is4():
		return prefix, invalid("Invalid input for operation: the IP version %d does not match the cidr %s.", version, prefix)
	case prefix.Masked() != prefix:
		return prefix, invalid("Invalid input for cidr. Reason: '%s' isn't a recognized IP subnet cidr, '%s' is recommended.", prefix, prefix.Masked())
	case version == 4 && prefix.Bits() > 30, version == 6 && prefix.Bits() > 126:
		return prefix, invalid("Invalid input for cidr. Reason: the subnet %s is too small to hold ports.", prefix)
	case version == 4 && prefix.Bits() < 8:
		return prefix, invalid("Invalid input for cidr. Reason: the subnet %s is too large.", prefix)
	}
	return prefix, nil
}

// lastAddr returns the last address of a prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 1 << (7 - i%8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// hostRange returns the first and last addresses of a subnet ports may
// have: all but the network address, and the broadcast address of IPv4.
func hostRange(p netip.Prefix) (first, last netip.Addr) {
	last = lastAddr(p)
	if p.Addr().Is4() {
		last = last.Prev()
	}
	return p.Addr().Next(), last
}

// defaultPools returns the subnet's host range without the gateway.
func defaultPools(p netip.Prefix, gateway netip.Addr) []trustack.IPRange {
	first, last := hostRange(p)
	switch {
	case !gateway.IsValid() || gateway.Compare(first) < 0 || gateway.Compare(last) > 0:
		return []trustack.IPRange{{Start: first, End: last}}
	case gateway == first:
		return []trustack.IPRange{{Start: first.Next(), End: last}}
	case gateway == last:
		return []trustack.IPRange{{Start: first, End: last.Prev()}}
	}
	return []trustack.IPRange{{Start: first, End: gateway.Prev()}, {Start: gateway.Next(), End: last}}
}

// applySubnet sets and checks what spec changes of sn.
func applySubnet(sn *trustack.Subnet, spec SubnetSpec) error {
	set(&sn.Name, spec.Name)
	set(&sn.Description, spec.Description)
	set(&sn.Gateway, spec.GatewayIP)
	set(&sn.AllocationPools, spec.AllocationPools)
	set(&sn.EnableDHCP, spec.EnableDHCP)
	set(&sn.DNSNameservers, spec.DNSNameservers)
	set(&sn.HostRoutes, spec.HostRoutes)
	set(&sn.IPv6RAMode, spec.IPv6RAMode)
	set(&sn.IPv6AddressMode, spec.IPv6AddressMode)
	if spec.Tags != nil {
		tags, err := checkTags(*spec.Tags)
		if err != nil {
			return err
		}
		sn.Tags = tags
	}
	if err := checkName(sn.Name, sn.Description); err != nil {
		return err
	}
	if g := sn.Gateway; g.IsValid() {
		first, last := hostRange(sn.CIDR)
		if !sn.CIDR.Contains(g) || g.Compare(first) < 0 || g.Compare(last) > 0 {
			return invalid("Invalid input for operation: Gateway IP %s is not a host address of subnet %s.", g, sn.CIDR)
		}
	}
	if err := checkPools(sn); err != nil {
		return err
	}
	if len(sn.DNSNameservers) > maxDNSNameservers {
		return trustack.Reasonf(trustack.EINVALID, "DNSNameServersExhausted", "Unable to complete operation for %s. The number of DNS nameservers exceeds the limit %d.", sn.ID, maxDNSNameservers)
	}
	for i, d := range sn.DNSNameservers {
		if slices.Contains(sn.DNSNameservers[:i], d) {
			return invalid("Invalid input for dns_nameservers. Reason: Duplicate nameserver '%s'.", d)
		}
	}
	if len(sn.HostRoutes) > maxHostRoutes {
		return trustack.Reasonf(trustack.EINVALID, "HostRoutesExhausted", "Unable to complete operation for %s. The number of host routes exceeds the limit %d.", sn.ID, maxHostRoutes)
	}
	for i, r := range sn.HostRoutes {
		if r.Destination.Addr().Is4() != sn.CIDR.Addr().Is4() || r.NextHop.Is4() != sn.CIDR.Addr().Is4() {
			return invalid("Invalid input for host_routes. Reason: the route to %s via %s is not of IP version %d.", r.Destination, r.NextHop, sn.IPVersion)
		}
		if slices.Contains(sn.HostRoutes[:i], r) {
			return invalid("Invalid input for host_routes. Reason: Duplicate hostroute '%s via %s'.", r.Destination, r.NextHop)
		}
	}
	return checkIPv6Modes(sn)
}

// checkPools returns an error unless the pools lie in the subnet's host
// range, do not overlap, and leave out the gateway.
func checkPools(sn *trustack.Subnet) error {
	first, last := hostRange(sn.CIDR)
	for i, p := range sn.AllocationPools {
		switch {
		case !p.Start.IsValid() || !p.End.IsValid() || p.Start.Is4() != sn.CIDR.Addr().Is4() || p.End.Is4() != p.Start.Is4():
			return invalid("Invalid input for operation: the allocation pool %s-%s is not of IP version %d.", p.Start, p.End, sn.IPVersion)
		case p.Start.Compare(p.End) > 0:
			return invalid("Invalid input for operation: the allocation pool %s-%s starts after it ends.", p.Start, p.End)
		case p.Start.Compare(first) < 0 || p.End.Compare(last) > 0:
			return trustack.Reasonf(trustack.EINVALID, "OutOfBoundsAllocationPool", "The allocation pool %s-%s spans beyond the subnet cidr %s.", p.Start, p.End, sn.CIDR)
		}
		for _, q := range sn.AllocationPools[:i] {
			if p.Start.Compare(q.End) <= 0 && q.Start.Compare(p.End) <= 0 {
				return trustack.Reasonf(trustack.EINVALID, "OverlappingAllocationPools", "Found overlapping allocation pools: %s-%s and %s-%s for subnet %s.", q.Start, q.End, p.Start, p.End, sn.CIDR)
			}
		}
		if g := sn.Gateway; g.IsValid() && p.Start.Compare(g) <= 0 && g.Compare(p.End) <= 0 {
			return conflict("GatewayConflictWithAllocationPools", "Gateway ip %s conflicts with allocation pool %s-%s.", g, p.Start, p.End)
		}
	}
	return nil
}

// checkIPv6Modes returns EINVALID for IPv6 modes on an IPv4 subnet, or
// modes that do not go together.
func checkIPv6Modes(sn *trustack.Subnet) error {
	modes := []string{"", trustack.IPv6SLAAC, trustack.DHCPv6Stateful, trustack.DHCPv6Stateless}
	if !slices.Contains(modes, sn.IPv6RAMode) || !slices.Contains(modes, sn.IPv6AddressMode) {
		return invalid("Invalid input for ipv6 modes: want slaac, dhcpv6-stateful or dhcpv6-stateless.")
	}
	if sn.IPVersion == 4 && (sn.IPv6RAMode != "" || sn.IPv6AddressMode != "") {
		return invalid("Invalid input for operation: ipv6_ra_mode and ipv6_address_mode cannot be set when ip_version is 4.")
	}
	if sn.IPv6RAMode != "" && sn.IPv6AddressMode != "" && sn.IPv6RAMode != sn.IPv6AddressMode {
		return invalid("Invalid input for operation: ipv6_ra_mode set to '%s' with ipv6_address_mode set to '%s' is not valid. If both attributes are set, they must be the same value.", sn.IPv6RAMode, sn.IPv6AddressMode)
	}
	if sn.AutoAddress() && sn.CIDR.Bits() != 64 {
		return invalid("Invalid input for operation: the subnet %s must be a /64 for SLAAC addresses.", sn.CIDR)
	}
	return nil
}

// Subnet returns a subnet the caller may see: its own, or one of a
// network it may see.
func (s *Service) Subnet(ctx context.Context, c Caller, id string) (*trustack.Subnet, error) {
	sn, err := s.store.Subnet(ctx, id)
	if err == nil && !c.owns(sn.ProjectID) {
		_, err = s.Network(ctx, c, sn.NetworkID)
	}
	if err != nil {
		return nil, notFound("SubnetNotFound", "Subnet %s could not be found.", id)
	}
	return sn, nil
}

// Subnets returns the subnets the caller may see, of the networks named
// (nil for all).
func (s *Service) Subnets(ctx context.Context, c Caller, networkIDs []string) ([]*trustack.Subnet, error) {
	f := trustack.SubnetFilter{NetworkIDs: networkIDs}
	if !c.Admin {
		f.VisibleTo = c.ProjectID
	}
	return s.store.Subnets(ctx, f)
}

// UpdateSubnet changes a subnet; its network, IP version and CIDR cannot
// change (EINVALID). The checks are CreateSubnet's.
func (s *Service) UpdateSubnet(ctx context.Context, c Caller, id string, spec SubnetSpec) (*trustack.Subnet, error) {
	if spec.NetworkID != "" || spec.IPVersion != 0 || spec.CIDR.IsValid() {
		return nil, invalid("Cannot update read-only attribute: network_id, ip_version and cidr cannot change.")
	}
	cur, err := s.Subnet(ctx, c, id)
	if err != nil {
		return nil, err
	}
	sn, err := s.store.UpdateSubnet(ctx, id, func(sn *trustack.Subnet) error {
		sn.UpdatedAt = s.now()
		return applySubnet(sn, spec)
	})
	if err != nil {
		return nil, err
	}
	n, err := s.store.Network(ctx, sn.NetworkID)
	if err != nil {
		return nil, err
	}
	switch {
	case sn.EnableDHCP:
		s.serveDHCP(ctx, n, sn)
	case cur.EnableDHCP:
		s.stopDHCP(ctx, sn)
	}
	return sn, nil
}

// DeleteSubnet deletes a subnet: ECONFLICT while a port other than the
// DHCP server's has an address on it. A subnet whose addresses are
// automatic is held only by a router's interface, as Neutron's: the other
// ports lose their addresses there, and their hosts are told.
func (s *Service) DeleteSubnet(ctx context.Context, c Caller, id string) error {
	sn, err := s.Subnet(ctx, c, id)
	if err != nil {
		return err
	}
	var losing []*trustack.Port
	if sn.AutoAddress() {
		ports, err := s.store.Ports(ctx, trustack.PortFilter{NetworkID: sn.NetworkID})
		if err != nil {
			return err
		}
		losing = slices.DeleteFunc(ports, func(p *trustack.Port) bool {
			return !slices.ContainsFunc(p.FixedIPs, func(ip trustack.FixedIP) bool { return ip.SubnetID == id })
		})
	}
	if err := s.store.DeleteSubnet(ctx, id); err != nil {
		return err
	}
	s.dhcpRemoved(ctx, sn.ID)
	for _, before := range losing {
		if after, err := s.store.Port(ctx, before.ID); err == nil {
			s.portChanged(ctx, before, after)
		}
	}
	return nil
}
