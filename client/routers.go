package client

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/floatingips"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/routers"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"

	"github.com/trustack/trustack"
)

// ownerRouterInterface is the device owner of routers' interfaces.
const ownerRouterInterface = "network:router_interface"

// routerGateway is the external_gateway_info to send for a gateway on the
// network named (with source NAT unless disableSNAT); nil for none.
func (n *Networking) routerGateway(ctx context.Context, network string, disableSNAT bool) (*routers.GatewayInfo, error) {
	if network == "" {
		if disableSNAT {
			return nil, trustack.Errorf(trustack.EINVALID, "--disable-snat needs --external-gateway")
		}
		return nil, nil
	}
	net, err := n.findNetwork(ctx, network)
	if err != nil {
		return nil, err
	}
	gw := &routers.GatewayInfo{NetworkID: net.ID}
	if disableSNAT {
		gw.EnableSNAT = new(bool)
	}
	return gw, nil
}

// CreateRouter creates a router, with a gateway on the external network
// named if gateway is not empty (translating the source addresses of its
// subnets' traffic unless disableSNAT), and shows it. The network API
// refuses disableSNAT to all but admins (EFORBIDDEN).
func (n *Networking) CreateRouter(ctx context.Context, name, gateway string, disableSNAT bool) error {
	gw, err := n.routerGateway(ctx, gateway, disableSNAT)
	if err != nil {
		return err
	}
	r, err := routers.Create(ctx, n.networking, routers.CreateOpts{Name: name, GatewayInfo: gw}).Extract()
	if err != nil {
		return apiError(err)
	}
	return n.showRouter(ctx, r)
}

// showRouter shows a router with its interfaces, the addresses of its
// ports on subnets.
func (n *Networking) showRouter(ctx context.Context, r *routers.Router) error {
	list, err := n.ports(ctx, ports.ListOpts{DeviceID: r.ID, DeviceOwner: ownerRouterInterface})
	if err != nil {
		return err
	}
	interfaces := []fixedIP{}
	for _, p := range list {
		interfaces = append(interfaces, fixedIPsOf(p.FixedIPs)...)
	}
	var network, snat any
	gatewayIPs := []fixedIP{}
	if gw := r.GatewayInfo; gw.NetworkID != "" {
		network = gw.NetworkID
		if gw.EnableSNAT != nil {
			snat = *gw.EnableSNAT
		}
		for _, ip := range gw.ExternalFixedIPs {
			gatewayIPs = append(gatewayIPs, fixedIP{SubnetID: ip.SubnetID, IPAddress: ip.IPAddress})
		}
	}
	return n.show(record{
		{"id", r.ID},
		{"name", r.Name},
		{"description", r.Description},
		{"status", r.Status},
		{"admin_state_up", r.AdminStateUp},
		{"external_gateway_network_id", network},
		{"enable_snat", snat},
		{"external_fixed_ips", gatewayIPs},
		{"interfaces", interfaces},
		{"project_id", r.ProjectID},
		{"created_at", stamp(r.CreatedAt)},
		{"updated_at", stamp(r.UpdatedAt)},
	})
}

// findRouter returns the router ref names, by ID or else by name.
func (n *Networking) findRouter(ctx context.Context, ref string) (*routers.Router, error) {
	return find("router", ref, func(id string) (*routers.Router, error) {
		return routers.Get(ctx, n.networking, id).Extract()
	}, func(name string) ([]routers.Router, error) {
		return n.routers(ctx, routers.ListOpts{Name: name})
	})
}

// routers returns the routers the project sees that opts select.
func (n *Networking) routers(ctx context.Context, opts routers.ListOpts) ([]routers.Router, error) {
	page, err := routers.List(n.networking, opts).AllPages(ctx)
	if err != nil {
		return nil, apiError(err)
	}
	list, err := routers.ExtractRouters(page)
	if err != nil {
		return nil, fmt.Errorf("read routers: %w", err)
	}
	return list, nil
}

// ShowRouter shows the router ref names, with its interfaces.
func (n *Networking) ShowRouter(ctx context.Context, ref string) error {
	r, err := n.findRouter(ctx, ref)
	if err != nil {
		return err
	}
	return n.showRouter(ctx, r)
}

// ListRouters lists the project's routers.
func (n *Networking) ListRouters(ctx context.Context) error {
	list, err := n.routers(ctx, routers.ListOpts{})
	if err != nil {
		return err
	}
	t := &table{columns: []string{"ID", "Name", "Status", "External Network"}}
	for _, r := range list {
		t.add(r.ID, r.Name, r.Status, r.GatewayInfo.NetworkID)
	}
	return n.list(t)
}

// RouterSet is a change of a router; the zero RouterSet changes nothing.
type RouterSet struct {
	Name *string
	// ExternalGateway names the external network of a new gateway
	// (without source NAT if DisableSNAT); NoExternalGateway removes the
	// router's gateway.
	ExternalGateway   string
	DisableSNAT       bool
	NoExternalGateway bool
}

// SetRouter changes the router ref names and shows it. It returns
// EINVALID if req changes nothing or asks for a gateway and none.
func (n *Networking) SetRouter(ctx context.Context, ref string, req RouterSet) error {
	switch {
	case req.Name == nil && req.ExternalGateway == "" && !req.NoExternalGateway:
		return trustack.Errorf(trustack.EINVALID, "nothing to change: give --name, --external-gateway or --no-external-gateway")
	case req.ExternalGateway != "" && req.NoExternalGateway:
		return trustack.Errorf(trustack.EINVALID, "give --external-gateway or --no-external-gateway, not both")
	}
	r, err := n.findRouter(ctx, ref)
	if err != nil {
		return err
	}
	opts := routers.UpdateOpts{}
	if req.Name != nil {
		opts.Name = *req.Name
	}
	if opts.GatewayInfo, err = n.routerGateway(ctx, req.ExternalGateway, req.DisableSNAT); err != nil {
		return err
	}
	if req.NoExternalGateway {
		opts.GatewayInfo = &routers.GatewayInfo{} // {}: none
	}
	if r, err = routers.Update(ctx, n.networking, r.ID, opts).Extract(); err != nil {
		return apiError(err)
	}
	return n.showRouter(ctx, r)
}

// Interface is a router's interface: on a subnet (at its gateway
// address), or a port; a name or ID.
type Interface struct{ Subnet, Port string }

// AddRouterInterface gives the router ref names an interface, and shows
// the router. The network API refuses (EINVALID) a subnet whose range
// overlaps one the router is on.
func (n *Networking) AddRouterInterface(ctx context.Context, ref string, iface Interface) error {
	return n.routerInterface(ctx, ref, iface, func(routerID, subnetID, portID string) error {
		_, err := routers.AddInterface(ctx, n.networking, routerID, routers.AddInterfaceOpts{SubnetID: subnetID, PortID: portID}).Extract()
		return err
	})
}

// RemoveRouterInterface takes an interface of the router ref names away,
// and shows the router. The network API refuses (ECONFLICT) while a
// floating IP reaches a port through it.
func (n *Networking) RemoveRouterInterface(ctx context.Context, ref string, iface Interface) error {
	return n.routerInterface(ctx, ref, iface, func(routerID, subnetID, portID string) error {
		_, err := routers.RemoveInterface(ctx, n.networking, routerID, routers.RemoveInterfaceOpts{SubnetID: subnetID, PortID: portID}).Extract()
		return err
	})
}

// routerInterface finds a router and an interface's subnet or port, makes
// the change, and shows the router.
func (n *Networking) routerInterface(ctx context.Context, ref string, iface Interface, change func(routerID, subnetID, portID string) error) error {
	r, err := n.findRouter(ctx, ref)
	if err != nil {
		return err
	}
	var subnetID, portID string
	if iface.Subnet != "" {
		sn, err := n.findSubnet(ctx, iface.Subnet)
		if err != nil {
			return err
		}
		subnetID = sn.ID
	} else {
		p, err := n.findPort(ctx, iface.Port)
		if err != nil {
			return err
		}
		portID = p.ID
	}
	if err := change(r.ID, subnetID, portID); err != nil {
		return apiError(err)
	}
	return n.ShowRouter(ctx, r.ID)
}

// DeleteRouters deletes the routers refs name. The network API refuses
// (ECONFLICT) to delete one that has interfaces. It tries every router
// and returns the errors of those it could not delete.
func (n *Networking) DeleteRouters(ctx context.Context, refs []string) error {
	return eachOf("delete router", refs, func(ref string) error {
		r, err := n.findRouter(ctx, ref)
		if err != nil {
			return err
		}
		return apiError(routers.Delete(ctx, n.networking, r.ID).ExtractErr())
	})
}

// CreateFloatingIP takes an address of the external network named and
// shows it; if port is not empty, it reaches the port (its fixedIP, or
// its first address if fixedIP is empty). The network API refuses a port
// on a subnet that no router joins to the network (ENOTFOUND).
func (n *Networking) CreateFloatingIP(ctx context.Context, network, port, fixedIP string) error {
	net, err := n.findNetwork(ctx, network)
	if err != nil {
		return err
	}
	opts := floatingips.CreateOpts{FloatingNetworkID: net.ID, FixedIP: fixedIP}
	if port != "" {
		p, err := n.findPort(ctx, port)
		if err != nil {
			return err
		}
		opts.PortID = p.ID
	}
	fip, err := floatingips.Create(ctx, n.networking, opts).Extract()
	if err != nil {
		return apiError(err)
	}
	return n.show(floatingIPRecord(fip))
}

// floatingIPRecord is what `floating-ip show` shows.
func floatingIPRecord(fip *floatingips.FloatingIP) record {
	return record{
		{"id", fip.ID},
		{"floating_ip_address", fip.FloatingIP},
		{"floating_network_id", fip.FloatingNetworkID},
		{"fixed_ip_address", nullable(fip.FixedIP)},
		{"port_id", nullable(fip.PortID)},
		{"router_id", nullable(fip.RouterID)},
		{"status", fip.Status},
		{"description", fip.Description},
		{"project_id", fip.ProjectID},
		{"created_at", stamp(fip.CreatedAt)},
		{"updated_at", stamp(fip.UpdatedAt)},
	}
}

// floatingIPs returns the project's floating IPs that opts select.
func (n *Networking) floatingIPs(ctx context.Context, opts floatingips.ListOpts) ([]floatingips.FloatingIP, error) {
	page, err := floatingips.List(n.networking, opts).AllPages(ctx)
	if err != nil {
		return nil, apiError(err)
	}
	list, err := floatingips.ExtractFloatingIPs(page)
	if err != nil {
		return nil, fmt.Errorf("read floating IPs: %w", err)
	}
	return list, nil
}

// findFloatingIP returns the floating IP ref names: by ID, or else by
// address.
func (n *Networking) findFloatingIP(ctx context.Context, ref string) (*floatingips.FloatingIP, error) {
	return find("floating IP", ref, func(id string) (*floatingips.FloatingIP, error) {
		return floatingips.Get(ctx, n.networking, id).Extract()
	}, func(addr string) ([]floatingips.FloatingIP, error) {
		if _, err := netip.ParseAddr(addr); err != nil {
			return nil, nil
		}
		return n.floatingIPs(ctx, floatingips.ListOpts{FloatingIP: addr})
	})
}

// ShowFloatingIP shows the floating IP ref names (its address or ID).
func (n *Networking) ShowFloatingIP(ctx context.Context, ref string) error {
	fip, err := n.findFloatingIP(ctx, ref)
	if err != nil {
		return err
	}
	return n.show(floatingIPRecord(fip))
}

// ListFloatingIPs lists the project's floating IPs, with the fixed
// addresses they reach.
func (n *Networking) ListFloatingIPs(ctx context.Context) error {
	list, err := n.floatingIPs(ctx, floatingips.ListOpts{})
	if err != nil {
		return err
	}
	t := &table{columns: []string{"ID", "Floating IP Address", "Fixed IP Address", "Port", "Floating Network", "Project"}}
	for _, fip := range list {
		t.add(fip.ID, fip.FloatingIP, nullable(fip.FixedIP), nullable(fip.PortID), fip.FloatingNetworkID, fip.ProjectID)
	}
	return n.list(t)
}

// SetFloatingIP has the floating IP ref names reach a port (at fixedIP,
// or its first address if fixedIP is empty; "" for none), and shows it.
func (n *Networking) SetFloatingIP(ctx context.Context, ref, port, fixedIP string) error {
	fip, err := n.findFloatingIP(ctx, ref)
	if err != nil {
		return err
	}
	var portID string
	if port != "" {
		p, err := n.findPort(ctx, port)
		if err != nil {
			return err
		}
		portID = p.ID
	}
	// An empty port_id is sent as null: the floating IP reaches nothing.
	opts := floatingips.UpdateOpts{PortID: &portID, FixedIP: fixedIP}
	if fip, err = floatingips.Update(ctx, n.networking, fip.ID, opts).Extract(); err != nil {
		return apiError(err)
	}
	return n.show(floatingIPRecord(fip))
}

// DeleteFloatingIPs gives back the floating IPs refs name (addresses or
// IDs). It tries every one and returns the errors of those it could not
// delete.
func (n *Networking) DeleteFloatingIPs(ctx context.Context, refs []string) error {
	return eachOf("delete floating IP", refs, func(ref string) error {
		fip, err := n.findFloatingIP(ctx, ref)
		if err != nil {
			return err
		}
		return apiError(floatingips.Delete(ctx, n.networking, fip.ID).ExtractErr())
	})
}
