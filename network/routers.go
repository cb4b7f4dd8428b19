package network

import (
	"context"
	"slices"

	"github.com/google/uuid"

	"github.com/trustack/trustack"
)

// RouterSpec is what a caller asks of a router, on creation or update;
// nil fields are left as they are.
type RouterSpec struct {
	// ProjectID is the owner of a new router, "" for the caller's project.
	ProjectID    string
	Name         *string
	Description  *string
	AdminStateUp *bool
	// Gateway sets the external gateway; one with an empty NetworkID
	// removes it.
	Gateway *GatewaySpec
	Routes  *[]trustack.HostRoute
	Tags    *[]string
}

// GatewaySpec is a router's gateway on an external network: source NAT
// unless EnableSNAT says otherwise, and the addresses asked for there
// (default: any one).
type GatewaySpec struct {
	NetworkID  string
	EnableSNAT *bool
	FixedIPs   []FixedIPSpec
}

// maxRoutes is the most static routes a router takes, as Neutron's
// max_routes.
const maxRoutes = 30

// CreateRouter creates a router, with its gateway port if it has a
// gateway.
func (s *Service) CreateRouter(ctx context.Context, c Caller, spec RouterSpec) (*trustack.Router, error) {
	project, err := s.owner(c, spec.ProjectID)
	if err != nil {
		return nil, err
	}
	now := s.now()
	r := &trustack.Router{ID: uuid.NewString(), ProjectID: project, AdminStateUp: true, Status: trustack.StatusActive,
		Standard: trustack.Standard{CreatedAt: now, UpdatedAt: now, Revision: 1}}
	if spec.Routes != nil {
		return nil, invalid("A new router has no interface for its routes to go through: set them once it has interfaces.")
	}
	if err := applyRouter(r, spec); err != nil {
		return nil, err
	}
	gw, err := s.gatewayPort(ctx, c, r, spec.Gateway)
	if err != nil {
		return nil, err
	}
	limit, err := s.limit(ctx, project, trustack.QuotaRouter)
	if err != nil {
		return nil, err
	}
	if err := s.store.CreateRouter(ctx, r, gw, s.allocator(), limit); err != nil {
		return nil, err
	}
	if gw != nil {
		r.Gateway.FixedIPs = gw.FixedIPs
	}
	s.routerChanged(ctx, r.ID)
	return r, nil
}

// applyRouter sets what spec changes of r, but its gateway and routes.
func applyRouter(r *trustack.Router, spec RouterSpec) error {
	set(&r.Name, spec.Name)
	set(&r.Description, spec.Description)
	set(&r.AdminStateUp, spec.AdminStateUp)
	if spec.Tags != nil {
		tags, err := checkTags(*spec.Tags)
		if err != nil {
			return err
		}
		r.Tags = tags
	}
	return checkName(r.Name, r.Description)
}

// gatewayPort sets r's gateway as spec asks and returns the port it needs
// on the external network; nil for none. A network that is not external
// is EINVALID.
func (s *Service) gatewayPort(ctx context.Context, c Caller, r *trustack.Router, spec *GatewaySpec) (*trustack.Port, error) {
	if spec == nil || spec.NetworkID == "" {
		r.Gateway = nil
		return nil, nil
	}
	n, err := s.Network(ctx, c, spec.NetworkID)
	if err != nil {
		return nil, err
	}
	if !n.External {
		return nil, invalid("Bad router request: Network %s is not an external network.", n.ID)
	}
	gw := &trustack.RouterGateway{NetworkID: n.ID, EnableSNAT: true}
	set(&gw.EnableSNAT, spec.EnableSNAT)
	now := s.now()
	p := &trustack.Port{ID: uuid.NewString(), NetworkID: n.ID, AdminStateUp: true, Status: trustack.StatusActive, DeviceOwner: trustack.OwnerRouterGateway,
		DeviceID: r.ID, MACAddress: s.allocator().MAC(), VNICType: "normal", Standard: trustack.Standard{CreatedAt: now, UpdatedAt: now, Revision: 1}}
	subnets, err := s.subnetsOf(ctx, n)
	if err != nil {
		return nil, err
	}
	ips := spec.FixedIPs
	if len(ips) == 0 {
		defaultAddresses(subnets, &ips)
	}
	if p.FixedIPs, err = fixedIPs(n, subnets, p, ips, false); err != nil {
		return nil, err
	}
	r.Gateway = gw
	return p, nil
}

// Router returns a router the caller may see: its project's.
func (s *Service) Router(ctx context.Context, c Caller, id string) (*trustack.Router, error) {
	r, err := s.store.Router(ctx, id)
	if err != nil || !c.owns(r.ProjectID) {
		return nil, notFound("RouterNotFound", "Router %s could not be found", id)
	}
	return r, nil
}

// Routers returns the routers the caller may see.
func (s *Service) Routers(ctx context.Context, c Caller) ([]*trustack.Router, error) {
	project := c.ProjectID
	if c.Admin {
		project = ""
	}
	return s.store.Routers(ctx, project, nil)
}

// UpdateRouter changes a router. A gateway set anew replaces the old one
// (ECONFLICT while floating IPs go through it); a route whose next hop is
// on none of the router's subnets is EINVALID.
func (s *Service) UpdateRouter(ctx context.Context, c Caller, id string, spec RouterSpec) (*trustack.Router, error) {
	cur, err := s.Router(ctx, c, id)
	if err != nil {
		return nil, err
	}
	var gw *trustack.Port
	next := *cur
	switch g := spec.Gateway; {
	case g != nil && cur.Gateway != nil && g.NetworkID == cur.Gateway.NetworkID && len(g.FixedIPs) == 0:
		// The same network: the gateway keeps its port.
		gateway := *cur.Gateway
		set(&gateway.EnableSNAT, g.EnableSNAT)
		next.Gateway = &gateway
	case g != nil:
		if gw, err = s.gatewayPort(ctx, c, &next, g); err != nil {
			return nil, err
		}
	}
	if spec.Routes != nil {
		if err := s.checkRoutes(ctx, cur, *spec.Routes); err != nil {
			return nil, err
		}
	}
	r, err := s.store.UpdateRouter(ctx, id, gw, s.allocator(), func(r *trustack.Router) error {
		r.UpdatedAt = s.now()
		if spec.Gateway != nil {
			r.Gateway = next.Gateway
		}
		set(&r.Routes, spec.Routes)
		return applyRouter(r, spec)
	})
	if err != nil {
		return nil, err
	}
	s.routerChanged(ctx, r.ID)
	return r, nil
}

// checkRoutes returns EINVALID unless every route's next hop lies on a
// subnet the router has an interface on.
func (s *Service) checkRoutes(ctx context.Context, r *trustack.Router, routes []trustack.HostRoute) error {
	if len(routes) > maxRoutes {
		return trustack.Reasonf(trustack.EINVALID, "RoutesExhausted", "Unable to complete operation for %s. The number of routes exceeds the maximum %d.", r.ID, maxRoutes)
	}
	subnets, err := s.routerSubnets(ctx, r.ID)
	if err != nil {
		return err
	}
	for i, route := range routes {
		if !route.Destination.IsValid() || !route.NextHop.IsValid() {
			return invalid("Invalid format for routes: %v, the route needs a destination and a nexthop.", route)
		}
		if slices.Contains(routes[:i], route) {
			return invalid("Invalid input for routes. Reason: Duplicate route '%s via %s'.", route.Destination, route.NextHop)
		}
		if !slices.ContainsFunc(subnets, func(sn *trustack.Subnet) bool { return sn.CIDR.Contains(route.NextHop) }) {
			return trustack.Reasonf(trustack.EINVALID, "InvalidRoutes", "Invalid format for routes: %s via %s, the nexthop is not connected with router.", route.Destination, route.NextHop)
		}
	}
	return nil
}

// routerSubnets returns the subnets a router has interfaces on.
func (s *Service) routerSubnets(ctx context.Context, routerID string) ([]*trustack.Subnet, error) {
	ports, err := s.store.Ports(ctx, trustack.PortFilter{DeviceIDs: []string{routerID}, DeviceOwner: trustack.OwnerRouterInterface})
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, p := range ports {
		for _, ip := range p.FixedIPs {
			ids = append(ids, ip.SubnetID)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	return s.store.Subnets(ctx, trustack.SubnetFilter{IDs: ids})
}

// DeleteRouter deletes a router and its gateway; ECONFLICT while it has
// interfaces.
func (s *Service) DeleteRouter(ctx context.Context, c Caller, id string) error {
	if _, err := s.Router(ctx, c, id); err != nil {
		return err
	}
	if err := s.store.DeleteRouter(ctx, id); err != nil {
		return err
	}
	s.routerRemoved(ctx, id)
	return nil
}

// AddRouterInterface gives a router an interface on a subnet (a new port
// with the subnet's gateway address) or through a port (which no device
// may own); exactly one of the two must be named (EINVALID). A subnet
// without a gateway, or one that overlaps a subnet the router is on
// already, is EINVALID. It returns the interface's port.
func (s *Service) AddRouterInterface(ctx context.Context, c Caller, routerID, subnetID, portID string) (*trustack.Port, error) {
	r, err := s.Router(ctx, c, routerID)
	if err != nil {
		return nil, err
	}
	if (subnetID == "") == (portID == "") {
		return nil, invalid("Bad router request: Either subnet_id or port_id must be specified, but not both.")
	}
	var p *trustack.Port
	if portID != "" {
		if p, err = s.Port(ctx, c, portID); err != nil {
			return nil, err
		}
		switch {
		case p.DeviceID != "" || p.DeviceOwner != "":
			return nil, conflict("PortInUse", "Unable to complete operation for network %s. The port %s is in use by device %s.", p.NetworkID, p.ID, p.DeviceID)
		case len(p.FixedIPs) == 0:
			return nil, invalid("Bad router request: Router port %s must have at least one fixed IP.", p.ID)
		}
	} else {
		sn, err := s.Subnet(ctx, c, subnetID)
		if err != nil {
			return nil, err
		}
		if !sn.Gateway.IsValid() {
			return nil, invalid("Bad router request: Subnet %s does not have a gateway IP.", sn.ID)
		}
		now := s.now()
		p = &trustack.Port{ID: uuid.NewString(), ProjectID: r.ProjectID, NetworkID: sn.NetworkID, AdminStateUp: true, Status: trustack.StatusActive,
			MACAddress: s.allocator().MAC(), FixedIPs: []trustack.FixedIP{{SubnetID: sn.ID, Address: sn.Gateway}}, VNICType: "normal",
			Standard: trustack.Standard{CreatedAt: now, UpdatedAt: now, Revision: 1}}
	}
	p.DeviceOwner, p.DeviceID, p.SecurityGroups = trustack.OwnerRouterInterface, r.ID, nil
	if err := s.store.AddRouterInterface(ctx, r.ID, p, s.allocator()); err != nil {
		return nil, err
	}
	s.routerChanged(ctx, r.ID)
	return p, nil
}

// RemoveRouterInterface removes a router's interface, named by its port
// or its subnet, and returns the port it had.
func (s *Service) RemoveRouterInterface(ctx context.Context, c Caller, routerID, subnetID, portID string) (*trustack.Port, error) {
	r, err := s.Router(ctx, c, routerID)
	if err != nil {
		return nil, err
	}
	if subnetID == "" && portID == "" {
		return nil, invalid("Bad router request: Either subnet_id or port_id must be specified.")
	}
	ports, err := s.store.Ports(ctx, trustack.PortFilter{DeviceIDs: []string{r.ID}, DeviceOwner: trustack.OwnerRouterInterface})
	if err != nil {
		return nil, err
	}
	var found *trustack.Port
	for _, p := range ports {
		onSubnet := slices.ContainsFunc(p.FixedIPs, func(ip trustack.FixedIP) bool { return ip.SubnetID == subnetID })
		if (portID == "" || p.ID == portID) && (subnetID == "" || onSubnet) {
			found = p
		}
	}
	if found == nil {
		if portID != "" {
			return nil, notFound("RouterInterfaceNotFound", "Router %s does not have an interface with id %s", r.ID, portID)
		}
		return nil, notFound("RouterInterfaceNotFoundForSubnet", "Router %s has no interface on subnet %s", r.ID, subnetID)
	}
	if err := s.store.RemoveRouterInterface(ctx, r.ID, found.ID); err != nil {
		return nil, err
	}
	s.routerChanged(ctx, r.ID)
	return found, nil
}
