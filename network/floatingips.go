package network

import (
	"context"
	"net/netip"
	"slices"

	"github.com/google/uuid"

	"github.com/trustack/trustack"
)

// FloatingIPSpec is what a caller asks of a floating IP, on creation or
// update; nil fields are left as they are.
type FloatingIPSpec struct {
	// ProjectID is the owner of a new floating IP, "" for the caller's
	// project; NetworkID (the external network), SubnetID and Address
	// (the floating address itself) are for creation only.
	ProjectID string
	NetworkID string
	SubnetID  string
	Address   netip.Addr
	// PortID associates the floating IP with a port; a pointer to ""
	// disassociates it. FixedAddress says which of the port's addresses,
	// needed only if it has several IPv4 ones, and is EINVALID without
	// a port.
	PortID       *string
	FixedAddress netip.Addr
	Description  *string
	Tags         *[]string
}

// CreateFloatingIP allocates an address of an external network (a
// network that is not external is EINVALID), and associates it with a
// port if asked. The port must be reachable from the network: a router
// with its gateway there must have an interface on the port's subnet
// (ENOTFOUND otherwise).
func (s *Service) CreateFloatingIP(ctx context.Context, c Caller, spec FloatingIPSpec) (*trustack.FloatingIP, error) {
	project, err := s.owner(c, spec.ProjectID)
	if err != nil {
		return nil, err
	}
	n, err := s.Network(ctx, c, spec.NetworkID)
	if err != nil {
		return nil, err
	}
	if !n.External {
		return nil, invalid("Bad floatingip request: Network %s is not a valid external network.", n.ID)
	}
	if err := spec.checkFixedAddress(); err != nil {
		return nil, err
	}
	now := s.now()
	f := &trustack.FloatingIP{ID: uuid.NewString(), ProjectID: project, NetworkID: n.ID, Status: trustack.StatusDown,
		Standard: trustack.Standard{CreatedAt: now, UpdatedAt: now, Revision: 1}}
	if err := applyFloatingIP(f, spec); err != nil {
		return nil, err
	}
	subnets, err := s.subnetsOf(ctx, n)
	if err != nil {
		return nil, err
	}
	ip := FixedIPSpec{SubnetID: spec.SubnetID, Address: spec.Address}
	ips := []FixedIPSpec{ip}
	if ip.SubnetID == "" && !ip.Address.IsValid() {
		// An IPv4 address: floating IPs translate to fixed IPv4 ones.
		i := slices.IndexFunc(subnets, func(sn *trustack.Subnet) bool { return sn.IPVersion == 4 })
		if i < 0 {
			return nil, invalid("Bad floatingip request: Network %s has no IPv4 subnet to allocate floating IPs from.", n.ID)
		}
		ips[0].SubnetID = subnets[i].ID
	}
	port := &trustack.Port{ID: uuid.NewString(), NetworkID: n.ID, AdminStateUp: true, Status: trustack.StatusActive, DeviceOwner: trustack.OwnerFloatingIP,
		DeviceID: f.ID, MACAddress: s.allocator().MAC(), VNICType: "normal", Standard: trustack.Standard{CreatedAt: now, UpdatedAt: now, Revision: 1}}
	if port.FixedIPs, err = fixedIPs(n, subnets, port, ips, false); err != nil {
		return nil, err
	}
	if spec.PortID != nil && *spec.PortID != "" {
		if err := s.associate(ctx, c, f, *spec.PortID, spec.FixedAddress); err != nil {
			return nil, err
		}
	}
	limit, err := s.limit(ctx, project, trustack.QuotaFloatingIP)
	if err != nil {
		return nil, err
	}
	if err := s.store.CreateFloatingIP(ctx, f, port, s.allocator(), limit); err != nil {
		return nil, err
	}
	s.floatingIPChanged(ctx, "", f.RouterID)
	return f, nil
}

// checkFixedAddress returns EINVALID for a fixed address asked for
// without a port to have it, as Neutron's.
func (spec FloatingIPSpec) checkFixedAddress() error {
	if spec.FixedAddress.IsValid() && (spec.PortID == nil || *spec.PortID == "") {
		return invalid("Bad floatingip request: fixed_ip_address cannot be specified without a port_id.")
	}
	return nil
}

// applyFloatingIP sets what spec changes of f, but its association.
func applyFloatingIP(f *trustack.FloatingIP, spec FloatingIPSpec) error {
	set(&f.Description, spec.Description)
	if spec.Tags != nil {
		tags, err := checkTags(*spec.Tags)
		if err != nil {
			return err
		}
		f.Tags = tags
	}
	return checkName("", f.Description)
}

// associate points f at a port's fixed address, through the router that
// joins the port's subnet to f's network.
func (s *Service) associate(ctx context.Context, c Caller, f *trustack.FloatingIP, portID string, fixed netip.Addr) error {
	p, err := s.Port(ctx, c, portID)
	if err != nil {
		return err
	}
	if p.ProjectID != f.ProjectID && !c.Admin {
		return notFound("PortNotFound", "Port %s could not be found.", portID)
	}
	var ip *trustack.FixedIP
	for i, cand := range p.FixedIPs {
		switch {
		case !cand.Address.Is4():
		case fixed.IsValid() && cand.Address == fixed, !fixed.IsValid() && ip == nil:
			ip = &p.FixedIPs[i]
		case !fixed.IsValid():
			return invalid("Bad floatingip request: Port %s has multiple fixed IPv4 addresses. Must provide a specific IPv4 address when assigning a floating IP.", p.ID)
		}
	}
	if ip == nil {
		if fixed.IsValid() {
			return invalid("Bad floatingip request: Port %s does not have fixed ip %s.", p.ID, fixed)
		}
		return invalid("Bad floatingip request: Port %s does not have any IPv4 address.", p.ID)
	}
	router, err := s.reachingRouter(ctx, f.NetworkID, ip.SubnetID)
	if err != nil {
		return err
	}
	f.PortID, f.FixedAddress, f.RouterID, f.Status = p.ID, ip.Address, router, trustack.StatusActive
	return nil
}

// reachingRouter returns the router with its gateway on the external
// network and an interface on the subnet; ENOTFOUND if there is none.
func (s *Service) reachingRouter(ctx context.Context, networkID, subnetID string) (string, error) {
	ports, err := s.store.Ports(ctx, trustack.PortFilter{DeviceOwner: trustack.OwnerRouterInterface})
	if err != nil {
		return "", err
	}
	var candidates []string
	for _, p := range ports {
		if slices.ContainsFunc(p.FixedIPs, func(ip trustack.FixedIP) bool { return ip.SubnetID == subnetID }) {
			candidates = append(candidates, p.DeviceID)
		}
	}
	if len(candidates) > 0 {
		routers, err := s.store.Routers(ctx, "", candidates)
		if err != nil {
			return "", err
		}
		for _, r := range routers {
			if r.Gateway != nil && r.Gateway.NetworkID == networkID {
				return r.ID, nil
			}
		}
	}
	return "", notFound("ExternalGatewayForFloatingIPNotFound", "External network %s is not reachable from subnet %s. Therefore, cannot associate Port with a Floating IP.", networkID, subnetID)
}

// FloatingIP returns a floating IP the caller may see: its project's.
func (s *Service) FloatingIP(ctx context.Context, c Caller, id string) (*trustack.FloatingIP, error) {
	f, err := s.store.FloatingIP(ctx, id)
	if err != nil || !c.owns(f.ProjectID) {
		return nil, notFound("FloatingIPNotFound", "Floating IP %s could not be found", id)
	}
	return f, nil
}

// FloatingIPs returns the floating IPs the caller may see.
func (s *Service) FloatingIPs(ctx context.Context, c Caller) ([]*trustack.FloatingIP, error) {
	project := c.ProjectID
	if c.Admin {
		project = ""
	}
	return s.store.FloatingIPs(ctx, project, nil)
}

// UpdateFloatingIP associates a floating IP with a port, moves it to
// another, or disassociates it, as CreateFloatingIP associates.
func (s *Service) UpdateFloatingIP(ctx context.Context, c Caller, id string, spec FloatingIPSpec) (*trustack.FloatingIP, error) {
	if spec.NetworkID != "" || spec.SubnetID != "" || spec.Address.IsValid() {
		return nil, invalid("Cannot update read-only attribute: floating_network_id, subnet_id and floating_ip_address cannot change.")
	}
	if err := spec.checkFixedAddress(); err != nil {
		return nil, err
	}
	cur, err := s.FloatingIP(ctx, c, id)
	if err != nil {
		return nil, err
	}
	next := *cur
	if spec.PortID != nil {
		next.PortID, next.FixedAddress, next.RouterID, next.Status = "", netip.Addr{}, "", trustack.StatusDown
		if *spec.PortID != "" {
			if err := s.associate(ctx, c, &next, *spec.PortID, spec.FixedAddress); err != nil {
				return nil, err
			}
		}
	}
	f, err := s.store.UpdateFloatingIP(ctx, id, func(f *trustack.FloatingIP) error {
		f.PortID, f.FixedAddress, f.RouterID, f.Status = next.PortID, next.FixedAddress, next.RouterID, next.Status
		f.UpdatedAt = s.now()
		return applyFloatingIP(f, spec)
	})
	if err != nil {
		return nil, err
	}
	s.floatingIPChanged(ctx, cur.RouterID, f.RouterID)
	return f, nil
}

// DeleteFloatingIP releases a floating IP's address.
func (s *Service) DeleteFloatingIP(ctx context.Context, c Caller, id string) error {
	f, err := s.FloatingIP(ctx, c, id)
	if err != nil {
		return err
	}
	if err := s.store.DeleteFloatingIP(ctx, id); err != nil {
		return err
	}
	s.floatingIPChanged(ctx, f.RouterID, "")
	return nil
}
