package network

import (
	"context"
	"encoding/json"
	"net/netip"
	"slices"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/network"
	"github.com/trustack/trustack/policy"
)

type subnetSpec = network.SubnetSpec

// subnetFields are the attributes of subnets. trustack has no subnet
// pools: subnetpool_id may only be null.
var subnetFields = slices.Concat(
	described(func(s *subnetSpec) **string { return &s.Name }, func(s *subnetSpec) **string { return &s.Description },
		func(s *subnetSpec) **[]string { return &s.Tags }),
	ownedFields(func(s *subnetSpec) *string { return &s.ProjectID }),
	[]field[subnetSpec]{
		{name: "network_id", post: true, required: true, set: func(s *subnetSpec, v json.RawMessage) (err error) {
			s.NetworkID, err = parseUUID("network_id", v)
			return err
		}},
		{name: "ip_version", post: true, required: true, set: func(s *subnetSpec, v json.RawMessage) error {
			n, err := parseInt(v)
			if err == nil && n != 4 && n != 6 {
				err = invalidFor("ip_version", "%d is not in [4, 6]", n)
			}
			s.IPVersion = n
			return err
		}},
		{name: "cidr", post: true, required: true, set: func(s *subnetSpec, v json.RawMessage) (err error) {
			s.CIDR, err = parseCIDR("cidr", v)
			return err
		}},
		{name: "subnetpool_id", post: true, set: func(_ *subnetSpec, v json.RawMessage) error {
			if isNull(v) {
				return nil
			}
			return trustack.Reasonf(trustack.ENOTFOUND, "SubnetPoolNotFound", "Subnet pool %s could not be found.", shown(v))
		}},
		{name: "gateway_ip", post: true, put: true, set: func(s *subnetSpec, v json.RawMessage) error {
			g, err := parseAddrOrNone("gateway_ip", v)
			s.GatewayIP = &g
			return err
		}},
		{name: "allocation_pools", post: true, put: true, set: func(s *subnetSpec, v json.RawMessage) error {
			pools, err := parsePools(v)
			s.AllocationPools = &pools
			return err
		}},
		boolean("enable_dhcp", func(s *subnetSpec) **bool { return &s.EnableDHCP }),
		{name: "dns_nameservers", post: true, put: true, set: func(s *subnetSpec, v json.RawMessage) error {
			servers, err := parseNameservers(v)
			s.DNSNameservers = &servers
			return err
		}},
		{name: "host_routes", post: true, put: true, set: func(s *subnetSpec, v json.RawMessage) error {
			routes, err := parseRoutes("host_routes", v)
			s.HostRoutes = &routes
			return err
		}},
		ipv6Mode("ipv6_ra_mode", func(s *subnetSpec) **string { return &s.IPv6RAMode }),
		ipv6Mode("ipv6_address_mode", func(s *subnetSpec) **string { return &s.IPv6AddressMode }),
	})

// ipv6Mode is ipv6_ra_mode or ipv6_address_mode: one of the modes, or
// null for none.
func ipv6Mode(name string, dst func(*subnetSpec) **string) field[subnetSpec] {
	modes := []string{"dhcpv6-stateful", "dhcpv6-stateless", "slaac"}
	return field[subnetSpec]{name: name, post: true, put: true, set: func(s *subnetSpec, v json.RawMessage) error {
		mode := ""
		if !isNull(v) {
			var err error
			if mode, err = parseString(name, v, maxName); err != nil {
				return err
			}
			if !slices.Contains(modes, mode) {
				return invalidFor(name, "'%s' is not in ['dhcpv6-stateful', 'dhcpv6-stateless', 'slaac', None]", mode)
			}
		}
		*dst(s) = &mode
		return nil
	}}
}

// parsePools returns allocation pools, each a start and an end.
func parsePools(v json.RawMessage) ([]trustack.IPRange, error) {
	const attr, bad = "allocation_pools", "Invalid data format for IP pool: '%s'"
	items, err := parseObjects(attr, v, []string{"start", "end"}, bad)
	if err != nil {
		return nil, err
	}
	out := make([]trustack.IPRange, len(items))
	for i, item := range items {
		start, hasStart := item["start"]
		end, hasEnd := item["end"]
		if !hasStart || !hasEnd {
			return nil, invalidFor(attr, bad, shown(v))
		}
		if out[i].Start, err = parseAddr(attr, start); err != nil {
			return nil, err
		}
		if out[i].End, err = parseAddr(attr, end); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// parseNameservers returns DNS name servers; null is none.
func parseNameservers(v json.RawMessage) ([]netip.Addr, error) {
	servers, err := parseStrings("dns_nameservers", v)
	if err != nil {
		return nil, err
	}
	out := make([]netip.Addr, len(servers))
	for i, s := range servers {
		if out[i], err = netip.ParseAddr(s); err != nil {
			return nil, invalidFor("dns_nameservers", "'%s' is not a valid nameserver", s)
		}
	}
	return out, nil
}

// subnets is the subnets collection; the policy checks the owner of a
// subnet's network, and whether it is shared.
func (h *handler) subnets() *collection[subnetSpec, trustack.Subnet] {
	svc := h.svc
	return &collection[subnetSpec, trustack.Subnet]{
		name: "subnet", plural: "subnets", path: "subnets", tag: network.TagSubnets, fields: subnetFields,
		absent: notFound("SubnetNotFound", "Subnet %s could not be found."),
		get:    svc.Subnet,
		list: func(ctx context.Context, c network.Caller) ([]*trustack.Subnet, error) {
			return svc.Subnets(ctx, c, nil)
		},
		create: svc.CreateSubnet, update: svc.UpdateSubnet, delete: svc.DeleteSubnet,
		relate: func(ctx context.Context, c network.Caller, items []*trustack.Subnet) (*related, error) {
			ids := make([]string, len(items))
			for i, sn := range items {
				ids[i] = sn.NetworkID
			}
			networks, err := h.networksOf(ctx, c, ids)
			return &related{networks: networks}, err
		},
		render: renderSubnet,
		parentOf: func(sn *trustack.Subnet, rel *related) policy.Target {
			return networkParent(rel.networks[sn.NetworkID])
		},
		parentOfSpec: specNetwork(h, func(s *subnetSpec) string { return s.NetworkID }),
	}
}

// specNetwork returns what the policy checks of the network a new
// subnet or port names: a network the caller may not see is a 404.
func specNetwork[S any](h *handler, id func(*S) string) func(ctx context.Context, c network.Caller, s *S) (policy.Target, error) {
	return func(ctx context.Context, c network.Caller, s *S) (policy.Target, error) {
		n, err := h.svc.Network(ctx, c, id(s))
		if err != nil {
			return nil, err
		}
		return networkParent(n), nil
	}
}

// renderSubnet renders a subnet as Neutron does; subnetpool_id is null,
// trustack having no subnet pools.
func renderSubnet(sn *trustack.Subnet, _ *related) object {
	pools := make([]object, len(sn.AllocationPools))
	for i, p := range sn.AllocationPools {
		pools[i] = object{"start": p.Start.String(), "end": p.End.String()}
	}
	servers := make([]string, len(sn.DNSNameservers))
	for i, d := range sn.DNSNameservers {
		servers[i] = d.String()
	}
	return owned(object{
		"id": sn.ID, "name": sn.Name, "network_id": sn.NetworkID, "ip_version": sn.IPVersion, "cidr": sn.CIDR.String(),
		"gateway_ip": addrOrNil(sn.Gateway), "allocation_pools": pools, "enable_dhcp": sn.EnableDHCP,
		"dns_nameservers": servers, "host_routes": renderRoutes(sn.HostRoutes), "subnetpool_id": nil,
		"ipv6_ra_mode": textOrNil(sn.IPv6RAMode), "ipv6_address_mode": textOrNil(sn.IPv6AddressMode), "tags": texts(sn.Tags),
	}, sn.ProjectID, sn.Standard)
}

// renderRoutes renders host routes or a router's routes.
func renderRoutes(routes []trustack.HostRoute) []object {
	out := make([]object, len(routes))
	for i, r := range routes {
		out[i] = object{"destination": r.Destination.String(), "nexthop": r.NextHop.String()}
	}
	return out
}

// addrOrNil renders the zero Addr as null.
func addrOrNil(a netip.Addr) any {
	if !a.IsValid() {
		return nil
	}
	return a.String()
}
