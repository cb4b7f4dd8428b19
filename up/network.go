package up

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/controller"
	"github.com/trustack/trustack/network"
)

// What a newcomer needs to boot a server that has an address, as DevStack
// makes it: an external network, public, on the hosts' physical network
// of that name, for floating IPs and routers' gateways; and for each of
// the accounts up makes, a network private with a DHCP subnet, joined to
// public by a router router1. A server created with no network named gets
// a port on its project's private network.
const (
	publicNetwork  = "public"
	publicCIDR     = "172.24.4.0/24"
	privateNetwork = "private"
	privateCIDR    = "10.0.0.0/20"
	routerName     = "router1"
)

// addNetworks makes the networks of up's cloud that do not exist yet.
func addNetworks(ctx context.Context, c *controller.Controller, projects []string, log *slog.Logger) error {
	admin := network.Caller{Admin: true}
	nets, err := c.Network.Networks(ctx, admin)
	if err != nil {
		return err
	}
	find := func(project, name string) *trustack.Network {
		i := slices.IndexFunc(nets, func(n *trustack.Network) bool { return n.Name == name && (project == "" || n.ProjectID == project) })
		if i < 0 {
			return nil
		}
		return nets[i]
	}
	ids, err := projectIDs(ctx, c, projects)
	if err != nil {
		return err
	}
	public := find("", publicNetwork)
	if public == nil {
		if public, err = makeNetwork(ctx, c, ids[0], publicNetwork, publicCIDR, true); err != nil {
			return err
		}
		log.Info("made the external network", "name", publicNetwork, "cidr", publicCIDR)
	}
	for _, project := range ids {
		if find(project, privateNetwork) != nil {
			continue
		}
		private, err := makeNetwork(ctx, c, project, privateNetwork, privateCIDR, false)
		if err != nil {
			return err
		}
		caller := network.Caller{ProjectID: project, Admin: true}
		name := routerName
		r, err := c.Network.CreateRouter(ctx, caller, network.RouterSpec{Name: &name, Gateway: &network.GatewaySpec{NetworkID: public.ID}})
		if err != nil {
			return fmt.Errorf("router %s: %w", name, err)
		}
		subnets, err := c.Network.Subnets(ctx, caller, []string{private.ID})
		if err != nil || len(subnets) == 0 {
			return fmt.Errorf("the subnet of network %s: %v", private.ID, err)
		}
		if _, err := c.Network.AddRouterInterface(ctx, caller, r.ID, subnets[0].ID, ""); err != nil {
			return fmt.Errorf("router %s: %w", name, err)
		}
		log.Info("made a project's network", "project", project, "name", privateNetwork, "cidr", privateCIDR, "router", name)
	}
	return nil
}

// projectIDs returns the IDs of the default domain's projects named.
func projectIDs(ctx context.Context, c *controller.Controller, names []string) ([]string, error) {
	var ids []string
	for _, name := range names {
		list, err := c.Identity.Store.Projects(ctx, trustack.ProjectFilter{DomainID: trustack.DefaultDomainID, Name: name})
		if err != nil || len(list) == 0 {
			return nil, fmt.Errorf("project %s, to own its network: %v", name, err)
		}
		ids = append(ids, list[0].ID)
	}
	return ids, nil
}

// makeNetwork makes a project's network with one IPv4 subnet: an external
// one, flat on the physical network of its name, without DHCP; or a tenant
// network with DHCP.
func makeNetwork(ctx context.Context, c *controller.Controller, project, name, cidr string, external bool) (*trustack.Network, error) {
	caller := network.Caller{ProjectID: project, Admin: true}
	spec := network.NetworkSpec{Name: &name, External: &external}
	if external {
		flat, physnet := trustack.NetworkFlat, name
		spec.Type, spec.PhysicalNetwork = &flat, &physnet
	}
	n, err := c.Network.CreateNetwork(ctx, caller, spec)
	if err != nil {
		return nil, fmt.Errorf("network %s: %w", name, err)
	}
	subnetName, dhcp := name+"-subnet", !external
	_, err = c.Network.CreateSubnet(ctx, caller, network.SubnetSpec{NetworkID: n.ID, Name: &subnetName, IPVersion: 4,
		CIDR: netip.MustParsePrefix(cidr), EnableDHCP: &dhcp})
	if err != nil {
		return nil, fmt.Errorf("subnet %s: %w", subnetName, err)
	}
	return n, nil
}
