package client

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/external"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/mtu"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/portsecurity"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/provider"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"

	"github.com/trustack/trustack"
)

// neutronNetwork is a network with the attributes of the extensions the
// commands show (external-net, provider, net-mtu, port-security).
type neutronNetwork struct {
	networks.Network
	external.NetworkExternalExt
	provider.NetworkProviderExt
	mtu.NetworkMTUExt
	portsecurity.PortSecurityExt
}

// NetworkCreate is a request for a network.
type NetworkCreate struct {
	Name, Description string
	// Shared makes the network usable by every project, External gives
	// it floating IPs and routers' gateways (router:external).
	Shared, External bool
	// ProviderType, ProviderPhysicalNetwork and ProviderSegment are its
	// provider segment (admins only): flat, vlan, vxlan or local; the
	// hosts' network it is on; the VLAN ID or VNI. Empty or nil for the
	// cloud's choice.
	ProviderType, ProviderPhysicalNetwork string
	ProviderSegment                       *int
	// MTU is 0 for the cloud's.
	MTU int
}

// providerOpts sets a new network's provider segment with the provider
// extension's attributes; gophercloud's provider.CreateOptsExt sends the
// multi-provider extension's segments, which a Neutron without that
// extension refuses.
type providerOpts struct {
	networks.CreateOptsBuilder
	typ, physicalNetwork string
	segment              *int
}

func (o providerOpts) ToNetworkCreateMap() (map[string]any, error) {
	m, err := o.CreateOptsBuilder.ToNetworkCreateMap()
	if err != nil {
		return nil, err
	}
	n := m["network"].(map[string]any)
	if o.typ != "" {
		n["provider:network_type"] = o.typ
	}
	if o.physicalNetwork != "" {
		n["provider:physical_network"] = o.physicalNetwork
	}
	if o.segment != nil {
		n["provider:segmentation_id"] = *o.segment
	}
	return m, nil
}

// CreateNetwork creates a network and shows it. The network API refuses
// the provider attributes, and a shared or external network, to all but
// admins (EFORBIDDEN).
func (n *Networking) CreateNetwork(ctx context.Context, req NetworkCreate) error {
	opts := providerOpts{
		CreateOptsBuilder: mtu.CreateOptsExt{
			CreateOptsBuilder: external.CreateOptsExt{
				CreateOptsBuilder: networks.CreateOpts{Name: req.Name, Description: req.Description, Shared: trueOrNil(req.Shared)},
				External:          trueOrNil(req.External),
			},
			MTU: req.MTU,
		},
		typ: req.ProviderType, physicalNetwork: req.ProviderPhysicalNetwork, segment: req.ProviderSegment,
	}
	var net neutronNetwork
	if err := networks.Create(ctx, n.networking, opts).ExtractInto(&net); err != nil {
		return apiError(err)
	}
	return n.show(networkRecord(&net))
}

// trueOrNil is what a flag that only turns something on sends: true, or
// nothing for the API's default.
func trueOrNil(b bool) *bool {
	if !b {
		return nil
	}
	return &b
}

// networkRecord is what `network show` shows.
func networkRecord(net *neutronNetwork) record {
	var segment any // gophercloud reads the number as a string
	if id, err := strconv.Atoi(net.SegmentationID); err == nil {
		segment = id
	}
	return record{
		{"id", net.ID},
		{"name", net.Name},
		{"description", net.Description},
		{"status", net.Status},
		{"admin_state_up", net.AdminStateUp},
		{"shared", net.Shared},
		{"router:external", net.External},
		{"mtu", net.MTU},
		{"port_security_enabled", net.PortSecurityEnabled},
		{"provider:network_type", nullable(net.NetworkType)},
		{"provider:physical_network", nullable(net.PhysicalNetwork)},
		{"provider:segmentation_id", segment},
		{"subnets", texts(net.Subnets)},
		{"project_id", net.ProjectID},
		{"created_at", stamp(net.CreatedAt)},
		{"updated_at", stamp(net.UpdatedAt)},
	}
}

// texts is a list that shows as [] in JSON when empty.
func texts(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// networks returns the networks the project sees that opts select.
func (n *Networking) networks(ctx context.Context, opts networks.ListOptsBuilder) ([]neutronNetwork, error) {
	page, err := networks.List(n.networking, opts).AllPages(ctx)
	if err != nil {
		return nil, apiError(err)
	}
	var list []neutronNetwork
	if err := networks.ExtractNetworksInto(page, &list); err != nil {
		return nil, fmt.Errorf("read networks: %w", err)
	}
	return list, nil
}

// findNetwork returns the network ref names, by ID or else by name.
func (n *Networking) findNetwork(ctx context.Context, ref string) (*neutronNetwork, error) {
	return find("network", ref, func(id string) (*neutronNetwork, error) {
		var net neutronNetwork
		return &net, networks.Get(ctx, n.networking, id).ExtractInto(&net)
	}, func(name string) ([]neutronNetwork, error) {
		return n.networks(ctx, networks.ListOpts{Name: name})
	})
}

// ShowNetwork shows the network ref names.
func (n *Networking) ShowNetwork(ctx context.Context, ref string) error {
	net, err := n.findNetwork(ctx, ref)
	if err != nil {
		return err
	}
	return n.show(networkRecord(net))
}

// ListNetworks lists the networks the project sees: its own, the shared
// and the external ones.
func (n *Networking) ListNetworks(ctx context.Context) error {
	list, err := n.networks(ctx, networks.ListOpts{})
	if err != nil {
		return err
	}
	t := &table{columns: []string{"ID", "Name", "Subnets"}}
	for _, net := range list {
		t.add(net.ID, net.Name, texts(net.Subnets))
	}
	return n.list(t)
}

// NetworkSet is a change of a network; nil fields stay as they are.
type NetworkSet struct {
	Name, Description *string
	Shared, External  *bool
	MTU               *int
}

// SetNetwork changes the network ref names and shows it. It returns
// EINVALID if req changes nothing.
func (n *Networking) SetNetwork(ctx context.Context, ref string, req NetworkSet) error {
	if req == (NetworkSet{}) {
		return trustack.Errorf(trustack.EINVALID, "nothing to change: give --name, --description, --shared or --no-shared, --external or --internal, or --mtu")
	}
	net, err := n.findNetwork(ctx, ref)
	if err != nil {
		return err
	}
	var opts networks.UpdateOptsBuilder = external.UpdateOptsExt{
		UpdateOptsBuilder: networks.UpdateOpts{Name: req.Name, Description: req.Description, Shared: req.Shared},
		External:          req.External,
	}
	if req.MTU != nil {
		opts = mtu.UpdateOptsExt{UpdateOptsBuilder: opts, MTU: *req.MTU}
	}
	var updated neutronNetwork
	if err := networks.Update(ctx, n.networking, net.ID, opts).ExtractInto(&updated); err != nil {
		return apiError(err)
	}
	return n.show(networkRecord(&updated))
}

// DeleteNetworks deletes the networks refs name, with their subnets. The
// network API refuses (ECONFLICT) to delete one that ports other than its
// DHCP servers' are on. It tries every network and returns the errors of
// those it could not delete.
func (n *Networking) DeleteNetworks(ctx context.Context, refs []string) error {
	return eachOf("delete network", refs, func(ref string) error {
		net, err := n.findNetwork(ctx, ref)
		if err != nil {
			return err
		}
		return apiError(networks.Delete(ctx, n.networking, net.ID).ExtractErr())
	})
}

// SubnetCreate is a request for a subnet.
type SubnetCreate struct {
	Name    string
	Network string // name or ID
	// Range is the subnet's CIDR; IPVersion 4 or 6, or 0 for Range's.
	Range     string
	IPVersion int
	// Gateway is an address, "none" for no gateway, or "" for the
	// subnet's first address.
	Gateway string
	// AllocationPools (start=IP,end=IP) and HostRoutes
	// (destination=CIDR,gateway=IP) as the OpenStack CLI takes them; none
	// for the whole range and no routes.
	AllocationPools []string
	DNSNameservers  []string
	HostRoutes      []string
	// DHCP nil is the cloud's default (DHCP on).
	DHCP *bool
}

// CreateSubnet creates a subnet and shows it. It returns EINVALID for a
// malformed range, pool or route, ENOTFOUND for an unknown network, and
// the network API's refusals (an overlapping range, a pool outside it).
func (n *Networking) CreateSubnet(ctx context.Context, req SubnetCreate) error {
	prefix, err := netip.ParsePrefix(req.Range)
	if err != nil {
		return trustack.Errorf(trustack.EINVALID, "--subnet-range %q: want a CIDR such as 10.0.0.0/24", req.Range)
	}
	version := req.IPVersion
	if version == 0 {
		version = ipVersion(prefix.Addr())
	}
	if version != 4 && version != 6 {
		return trustack.Errorf(trustack.EINVALID, "--ip-version %d: want 4 or 6", version)
	}
	opts := subnets.CreateOpts{Name: req.Name, CIDR: req.Range, IPVersion: gophercloud.IPVersion(version),
		GatewayIP: gateway(req.Gateway), DNSNameservers: req.DNSNameservers, EnableDHCP: req.DHCP}
	for _, arg := range req.AllocationPools {
		p, err := parseAllocationPool(arg)
		if err != nil {
			return err
		}
		opts.AllocationPools = append(opts.AllocationPools, p)
	}
	for _, arg := range req.HostRoutes {
		r, err := parseHostRoute(arg)
		if err != nil {
			return err
		}
		opts.HostRoutes = append(opts.HostRoutes, r)
	}
	net, err := n.findNetwork(ctx, req.Network)
	if err != nil {
		return err
	}
	opts.NetworkID = net.ID
	sn, err := subnets.Create(ctx, n.networking, opts).Extract()
	if err != nil {
		return apiError(err)
	}
	return n.show(subnetRecord(sn))
}

// ipVersion is 4 or 6.
func ipVersion(a netip.Addr) int {
	if a.Is4() {
		return 4
	}
	return 6
}

// gateway is a subnet's gateway_ip as --gateway gives it: "" (not sent)
// for the default, and "none" for none, which gophercloud sends as null.
func gateway(arg string) *string {
	switch arg {
	case "":
		return nil
	case "none":
		arg = ""
	}
	return &arg
}

// parseAllocationPool parses --allocation-pool start=IP,end=IP: two
// addresses of one family, the start not after the end. It returns
// EINVALID for anything else.
func parseAllocationPool(arg string) (subnets.AllocationPool, error) {
	const flag, form = "--allocation-pool", "start=IP,end=IP"
	o, err := options(flag, arg, form, "start", "end")
	if err != nil {
		return subnets.AllocationPool{}, err
	}
	start, err1 := netip.ParseAddr(o["start"])
	end, err2 := netip.ParseAddr(o["end"])
	switch {
	case err1 != nil || err2 != nil:
		return subnets.AllocationPool{}, trustack.Errorf(trustack.EINVALID, "%s %q: want %s", flag, arg, form)
	case start.Is4() != end.Is4():
		return subnets.AllocationPool{}, trustack.Errorf(trustack.EINVALID, "%s %q: start and end are of different IP versions", flag, arg)
	case end.Less(start):
		return subnets.AllocationPool{}, trustack.Errorf(trustack.EINVALID, "%s %q: the start is after the end", flag, arg)
	}
	return subnets.AllocationPool{Start: start.String(), End: end.String()}, nil
}

// parseHostRoute parses --host-route destination=CIDR,gateway=IP: a
// network and a next hop of one family. It returns EINVALID for anything
// else.
func parseHostRoute(arg string) (subnets.HostRoute, error) {
	const flag, form = "--host-route", "destination=CIDR,gateway=IP"
	o, err := options(flag, arg, form, "destination", "gateway")
	if err != nil {
		return subnets.HostRoute{}, err
	}
	dest, err1 := netip.ParsePrefix(o["destination"])
	hop, err2 := netip.ParseAddr(o["gateway"])
	switch {
	case err1 != nil || err2 != nil:
		return subnets.HostRoute{}, trustack.Errorf(trustack.EINVALID, "%s %q: want %s", flag, arg, form)
	case dest.Addr().Is4() != hop.Is4():
		return subnets.HostRoute{}, trustack.Errorf(trustack.EINVALID, "%s %q: destination and gateway are of different IP versions", flag, arg)
	}
	return subnets.HostRoute{DestinationCIDR: dest.String(), NextHop: hop.String()}, nil
}

// pool shows an allocation pool as start-end, as the OpenStack CLI does.
type pool subnets.AllocationPool

func (p pool) String() string { return p.Start + "-" + p.End }

// hostRoute shows a host route as the OpenStack CLI does.
type hostRoute subnets.HostRoute

func (r hostRoute) String() string {
	return fmt.Sprintf("destination='%s', gateway='%s'", r.DestinationCIDR, r.NextHop)
}

// subnetRecord is what `subnet show` shows.
func subnetRecord(sn *subnets.Subnet) record {
	pools := make([]pool, len(sn.AllocationPools))
	for i, p := range sn.AllocationPools {
		pools[i] = pool(p)
	}
	routes := make([]hostRoute, len(sn.HostRoutes))
	for i, r := range sn.HostRoutes {
		routes[i] = hostRoute(r)
	}
	return record{
		{"id", sn.ID},
		{"name", sn.Name},
		{"description", sn.Description},
		{"network_id", sn.NetworkID},
		{"ip_version", sn.IPVersion},
		{"cidr", sn.CIDR},
		{"gateway_ip", nullable(sn.GatewayIP)},
		{"allocation_pools", pools},
		{"dns_nameservers", texts(sn.DNSNameservers)},
		{"host_routes", routes},
		{"enable_dhcp", sn.EnableDHCP},
		{"project_id", sn.ProjectID},
		{"created_at", stamp(sn.CreatedAt)},
		{"updated_at", stamp(sn.UpdatedAt)},
	}
}

// subnets returns the subnets the project sees that opts select.
func (n *Networking) subnets(ctx context.Context, opts subnets.ListOpts) ([]subnets.Subnet, error) {
	page, err := subnets.List(n.networking, opts).AllPages(ctx)
	if err != nil {
		return nil, apiError(err)
	}
	list, err := subnets.ExtractSubnets(page)
	if err != nil {
		return nil, fmt.Errorf("read subnets: %w", err)
	}
	return list, nil
}

// findSubnet returns the subnet ref names, by ID or else by name.
func (n *Networking) findSubnet(ctx context.Context, ref string) (*subnets.Subnet, error) {
	return find("subnet", ref, func(id string) (*subnets.Subnet, error) {
		return subnets.Get(ctx, n.networking, id).Extract()
	}, func(name string) ([]subnets.Subnet, error) {
		return n.subnets(ctx, subnets.ListOpts{Name: name})
	})
}

// ShowSubnet shows the subnet ref names.
func (n *Networking) ShowSubnet(ctx context.Context, ref string) error {
	sn, err := n.findSubnet(ctx, ref)
	if err != nil {
		return err
	}
	return n.show(subnetRecord(sn))
}

// ListSubnets lists the subnets the project sees, those of the network
// named if network is not empty.
func (n *Networking) ListSubnets(ctx context.Context, network string) error {
	var opts subnets.ListOpts
	if network != "" {
		net, err := n.findNetwork(ctx, network)
		if err != nil {
			return err
		}
		opts.NetworkID = net.ID
	}
	list, err := n.subnets(ctx, opts)
	if err != nil {
		return err
	}
	t := &table{columns: []string{"ID", "Name", "Network", "Subnet"}}
	for _, sn := range list {
		t.add(sn.ID, sn.Name, sn.NetworkID, sn.CIDR)
	}
	return n.list(t)
}

// SubnetSet is a change of a subnet; nil fields stay as they are.
type SubnetSet struct {
	Name *string
	// Gateway is an address, or "none" to take the gateway away.
	Gateway *string
	DHCP    *bool
	// DNSNameservers are added to the subnet's, after all are removed if
	// NoDNSNameservers.
	DNSNameservers   []string
	NoDNSNameservers bool
}

// SetSubnet changes the subnet ref names and shows it. It returns
// EINVALID if req changes nothing.
func (n *Networking) SetSubnet(ctx context.Context, ref string, req SubnetSet) error {
	if req.Name == nil && req.Gateway == nil && req.DHCP == nil && len(req.DNSNameservers) == 0 && !req.NoDNSNameservers {
		return trustack.Errorf(trustack.EINVALID, "nothing to change: give --name, --gateway, --dhcp or --no-dhcp, --dns-nameserver or --no-dns-nameservers")
	}
	sn, err := n.findSubnet(ctx, ref)
	if err != nil {
		return err
	}
	opts := subnets.UpdateOpts{Name: req.Name, EnableDHCP: req.DHCP}
	if req.Gateway != nil {
		opts.GatewayIP = gateway(*req.Gateway)
	}
	if len(req.DNSNameservers) > 0 || req.NoDNSNameservers {
		var dns []string
		if !req.NoDNSNameservers {
			dns = sn.DNSNameservers
		}
		dns = append(texts(dns), req.DNSNameservers...)
		opts.DNSNameservers = &dns
	}
	updated, err := subnets.Update(ctx, n.networking, sn.ID, opts).Extract()
	if err != nil {
		return apiError(err)
	}
	return n.show(subnetRecord(updated))
}

// DeleteSubnets deletes the subnets refs name. The network API refuses
// (ECONFLICT) to delete one that ports other than its DHCP server's have
// addresses on. It tries every subnet and returns the errors of those it
// could not delete.
func (n *Networking) DeleteSubnets(ctx context.Context, refs []string) error {
	return eachOf("delete subnet", refs, func(ref string) error {
		sn, err := n.findSubnet(ctx, ref)
		if err != nil {
			return err
		}
		return apiError(subnets.Delete(ctx, n.networking, sn.ID).ExtractErr())
	})
}
