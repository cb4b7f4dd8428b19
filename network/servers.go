package network

import (
	"context"
	"net/netip"
	"slices"

	"github.com/trustack/trustack"
)

// What compute asks of the network for its servers: Nova's side of
// Neutron.

// NIC is a network interface a server asks for: a new port on a network,
// with an address asked for or any, or a port the caller made.
type NIC struct {
	NetworkID string
	PortID    string
	FixedIP   netip.Addr
}

// Interfaces a server asks for with no NIC named, as Nova's "networks":
// "auto" and "none" (and, at 2.1, no "networks" at all: AutoNICs only if a
// single network fits).
const (
	AutoNICs = "auto"
	NoNICs   = "none"
)

// Usable returns the networks a project's servers may have a port on
// without naming one: its own networks and the shared ones, not the
// external ones.
func (s *Service) Usable(ctx context.Context, c Caller) ([]*trustack.Network, error) {
	nets, err := s.store.Networks(ctx, trustack.NetworkFilter{VisibleTo: c.ProjectID})
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(nets, func(n *trustack.Network) bool { return n.External && !n.Shared || !n.AdminStateUp }), nil
}

// ResolveNICs turns what a new server asks for into the NICs to make: the
// NICs named; for none, no NIC; with none named (or "auto"), a port on
// the project's only usable network. Several usable networks and none
// named is ECONFLICT, as Nova's; "auto" with none usable is ECONFLICT
// too, no topology being allocated for it.
func (s *Service) ResolveNICs(ctx context.Context, c Caller, nics []NIC, mode string) ([]NIC, error) {
	if mode == NoNICs || len(nics) > 0 {
		return nics, nil
	}
	usable, err := s.Usable(ctx, c)
	if err != nil {
		return nil, err
	}
	switch {
	case len(usable) == 1:
		return []NIC{{NetworkID: usable[0].ID}}, nil
	case len(usable) > 1:
		return nil, conflict("NetworkAmbiguous", "Multiple possible networks found, use a Network ID to be more specific.")
	case mode == AutoNICs:
		return nil, conflict("UnableToAutoAllocateNetwork", "Unable to automatically allocate a network for project %s: it has no network, and none is shared.", c.ProjectID)
	}
	return nil, nil
}

// ServerPorts makes the ports of a new server, or takes over those named
// (a port must be the caller's, and in use by no device: ECONFLICT), in
// the order of nics, owned by the server (device_id) and "compute:"
// owner; groups are the names or IDs of the caller's security groups
// they go in (the project's default group if none). On an error nothing
// is left made or taken.
func (s *Service) ServerPorts(ctx context.Context, c Caller, serverID, zone string, nics []NIC, groups []string) ([]*trustack.Port, error) {
	groupIDs, err := s.groupIDs(ctx, c, groups)
	if err != nil {
		return nil, err
	}
	var made []*trustack.Port
	undo := func() {
		if err := s.ReleaseServerPorts(context.WithoutCancel(ctx), made, nil); err != nil {
			s.opts.Log.Error("release the ports of a server not made", "server", serverID, "error", err)
		}
	}
	for _, nic := range nics {
		p, err := s.serverPort(ctx, c, serverID, zone, nic, groupIDs)
		if err != nil {
			undo()
			return nil, err
		}
		made = append(made, p)
	}
	return made, nil
}

// serverPort makes or takes over one port of a server.
func (s *Service) serverPort(ctx context.Context, c Caller, serverID, zone string, nic NIC, groups []string) (*trustack.Port, error) {
	if nic.PortID != "" {
		return s.takePort(ctx, c, serverID, zone, nic.PortID, groups)
	}
	return s.CreatePort(ctx, c, serverPortSpec(serverID, zone, nic, groups))
}

// takePort has a server take over a port of the caller's that no device
// uses (ECONFLICT PortInUse otherwise), in the security groups given if
// any.
func (s *Service) takePort(ctx context.Context, c Caller, serverID, zone, portID string, groups []string) (*trustack.Port, error) {
	p, err := s.Port(ctx, c, portID)
	if err != nil {
		return nil, err
	}
	if p.DeviceID != "" || p.DeviceOwner != "" {
		return nil, conflict("PortInUse", "Port %s is still in use.", p.ID)
	}
	owner := trustack.OwnerCompute + zone
	spec := PortSpec{DeviceID: &serverID, DeviceOwner: &owner}
	if groups != nil && p.PortSecurity {
		spec.SecurityGroups = &groups
	}
	return s.UpdatePort(ctx, c, p.ID, spec)
}

// serverPortSpec is the spec of a new port of a server for a NIC.
func serverPortSpec(serverID, zone string, nic NIC, groups []string) PortSpec {
	owner := trustack.OwnerCompute + zone
	spec := PortSpec{NetworkID: nic.NetworkID, DeviceID: &serverID, DeviceOwner: &owner}
	if nic.FixedIP.IsValid() {
		spec.FixedIPs = &[]FixedIPSpec{{Address: nic.FixedIP}}
	}
	if groups != nil {
		spec.SecurityGroups = &groups
	}
	return spec
}

// NewServer is a server about to be made, as PrepareServerPorts knows it.
type NewServer struct {
	ID, Zone string
}

// PreparedPorts are the ports of servers about to be made.
type PreparedPorts struct {
	// Of holds each server's ports, by server ID, in the order of its
	// NICs.
	Of map[string][]*trustack.Port
	// New are the ports for a store to make in the transaction that makes
	// the servers (its CreateServers).
	New   trustack.NewPorts
	taken []*trustack.Port // users' ports, taken over already
}

// PrepareServerPorts readies the ports of new servers as ServerPorts
// makes those of one, so that they are made with the servers, in one
// transaction: the users' ports named are taken over at once, the new
// ones checked and left for the store to make. Once the servers are made,
// ServerPortsMade tells the hosts concerned; if they cannot be,
// AbandonServerPorts lets the users' ports go. On an error nothing is
// left taken.
func (s *Service) PrepareServerPorts(ctx context.Context, c Caller, servers []NewServer, nics []NIC, groups []string) (*PreparedPorts, error) {
	groupIDs, err := s.groupIDs(ctx, c, groups)
	if err != nil {
		return nil, err
	}
	out := &PreparedPorts{Of: map[string][]*trustack.Port{}, New: trustack.NewPorts{Alloc: s.allocator()}}
	if slices.ContainsFunc(nics, func(nic NIC) bool { return nic.PortID == "" }) {
		if out.New.Limit, err = s.limit(ctx, c.ProjectID, trustack.QuotaPort); err != nil {
			return nil, err
		}
	}
	for _, srv := range servers {
		for _, nic := range nics {
			var p *trustack.Port
			if nic.PortID != "" {
				if p, err = s.takePort(ctx, c, srv.ID, srv.Zone, nic.PortID, groupIDs); err == nil {
					out.taken = append(out.taken, p)
				}
			} else {
				spec := serverPortSpec(srv.ID, srv.Zone, nic, groupIDs)
				if p, _, err = s.newPort(ctx, c, &spec); err == nil {
					out.New.Ports = append(out.New.Ports, p)
				}
			}
			if err != nil {
				s.AbandonServerPorts(ctx, out)
				return nil, err
			}
			out.Of[srv.ID] = append(out.Of[srv.ID], p)
		}
	}
	return out, nil
}

// ServerPortsMade tells the hosts concerned of the new ports of servers
// made.
func (s *Service) ServerPortsMade(ctx context.Context, p *PreparedPorts) {
	for _, port := range p.New.Ports {
		s.portChanged(ctx, nil, port)
	}
}

// AbandonServerPorts lets go of the users' ports taken over for servers
// that could not be made.
func (s *Service) AbandonServerPorts(ctx context.Context, p *PreparedPorts) {
	keep := make([]string, len(p.taken))
	for i, port := range p.taken {
		keep[i] = port.ID
	}
	if err := s.ReleaseServerPorts(context.WithoutCancel(ctx), p.taken, keep); err != nil {
		s.opts.Log.Error("let go of the ports of servers not made", "ports", keep, "error", err)
	}
}

// groupIDs returns the IDs of the caller's security groups named by name
// or ID; nil for none named. A name of several groups is ECONFLICT, of
// none ENOTFOUND.
func (s *Service) groupIDs(ctx context.Context, c Caller, names []string) ([]string, error) {
	if len(names) == 0 {
		return nil, nil
	}
	groups, err := s.store.SecurityGroups(ctx, c.ProjectID, nil)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, name := range names {
		var found []string
		for _, g := range groups {
			if g.ID == name || g.Name == name {
				found = append(found, g.ID)
			}
		}
		switch len(found) {
		case 0:
			if name == trustack.DefaultSecurityGroup {
				g, err := s.defaultGroup(ctx, c.ProjectID)
				if err != nil {
					return nil, err
				}
				found = []string{g}
				break
			}
			return nil, notFound("SecurityGroupNotFound", "Security group %s not found.", name)
		case 1:
		default:
			return nil, conflict("NoUniqueMatch", "Multiple security groups named %s: name one by its ID.", name)
		}
		if !slices.Contains(ids, found[0]) {
			ids = append(ids, found[0])
		}
	}
	return ids, nil
}

// ReleaseServerPorts ends a server's use of its ports: those the server
// took over (keep) are let go, bound to no device or host, the others
// deleted.
func (s *Service) ReleaseServerPorts(ctx context.Context, ports []*trustack.Port, keep []string) error {
	for _, p := range ports {
		if !slices.Contains(keep, p.ID) {
			if err := s.deletePort(ctx, p); err != nil && trustack.ErrorCode(err) != trustack.ENOTFOUND {
				return err
			}
			continue
		}
		after, err := s.store.UpdatePort(ctx, p.ID, s.allocator(), func(p *trustack.Port) error {
			p.DeviceID, p.DeviceOwner, p.HostID, p.Status, p.UpdatedAt = "", "", "", trustack.StatusDown, s.now()
			return nil
		})
		if trustack.ErrorCode(err) == trustack.ENOTFOUND {
			continue
		}
		if err != nil {
			return err
		}
		s.portChanged(ctx, p, after)
	}
	return nil
}

// ServerPortsOf returns the ports of servers, by server ID.
func (s *Service) ServerPortsOf(ctx context.Context, serverIDs []string) (map[string][]*trustack.Port, error) {
	ports, err := s.store.Ports(ctx, trustack.PortFilter{DeviceIDs: serverIDs})
	if err != nil {
		return nil, err
	}
	out := map[string][]*trustack.Port{}
	for _, p := range ports {
		out[p.DeviceID] = append(out[p.DeviceID], p)
	}
	return out, nil
}

// Address is one of a server's addresses as Nova shows it.
type Address struct {
	Network  string // the network's name
	Version  int
	Address  netip.Addr
	Floating bool
	MAC      string
}

// Addresses returns the addresses of servers, by server ID: each port's
// fixed addresses, and the floating addresses that map to them, in the
// order of ports.
func (s *Service) Addresses(ctx context.Context, ports map[string][]*trustack.Port) (map[string][]Address, error) {
	var netIDs, portIDs []string
	for _, list := range ports {
		for _, p := range list {
			netIDs, portIDs = append(netIDs, p.NetworkID), append(portIDs, p.ID)
		}
	}
	if len(portIDs) == 0 {
		return map[string][]Address{}, nil
	}
	nets, _, err := s.networksAndSubnets(ctx, netIDs, nil)
	if err != nil {
		return nil, err
	}
	fips, err := s.store.FloatingIPs(ctx, "", portIDs)
	if err != nil {
		return nil, err
	}
	out := map[string][]Address{}
	for server, list := range ports {
		for _, p := range list {
			name := p.NetworkID
			if n := nets[p.NetworkID]; n != nil {
				name = n.Name
			}
			for _, ip := range p.FixedIPs {
				out[server] = append(out[server], Address{Network: name, Version: version(ip.Address), Address: ip.Address, MAC: p.MACAddress})
				for _, f := range fips {
					if f.PortID == p.ID && f.FixedAddress == ip.Address {
						out[server] = append(out[server], Address{Network: name, Version: 4, Address: f.Address, Floating: true, MAC: p.MACAddress})
					}
				}
			}
		}
	}
	return out, nil
}

// version returns an address's IP version.
func version(a netip.Addr) int {
	if a.Is4() {
		return 4
	}
	return 6
}

// SecurityGroupNames returns the names of security groups, by ID, as a
// server shows the groups of its ports; an ID of no group is left out.
func (s *Service) SecurityGroupNames(ctx context.Context, ids []string) (map[string]string, error) {
	out := map[string]string{}
	if len(ids) == 0 {
		return out, nil
	}
	groups, err := s.store.SecurityGroups(ctx, "", ids)
	if err != nil {
		return nil, err
	}
	for _, g := range groups {
		out[g.ID] = g.Name
	}
	return out, nil
}

// SetServerGroups adds a security group to every port of a server, or
// removes it. A server without ports, or one whose ports are not in the
// group to remove, is ENOTFOUND, as Nova's addSecurityGroup and
// removeSecurityGroup say.
func (s *Service) SetServerGroups(ctx context.Context, c Caller, ports []*trustack.Port, name string, add bool) error {
	ids, err := s.groupIDs(ctx, c, []string{name})
	if err != nil {
		return err
	}
	if len(ports) == 0 {
		return notFound("SecurityGroupNotFound", "The server has no port to be in security group %s.", name)
	}
	id := ids[0]
	in := false
	for _, p := range ports {
		in = in || slices.Contains(p.SecurityGroups, id)
	}
	if !add && !in {
		return notFound("SecurityGroupNotFound", "Security group %s not associated with the instance.", name)
	}
	for _, p := range ports {
		groups := slices.DeleteFunc(slices.Clone(p.SecurityGroups), func(g string) bool { return g == id })
		if add {
			if !p.PortSecurity {
				continue
			}
			groups = append(groups, id)
		}
		if _, err := s.UpdatePort(ctx, c, p.ID, PortSpec{SecurityGroups: &groups}); err != nil {
			return err
		}
	}
	return nil
}

// PortsBound tells the hosts of security groups, as any change of theirs
// does, that ports in them were bound to a host along with their server,
// as the store binds them: that host learns the members of the groups
// and of those their rules name, which a spawn does not bring.
func (s *Service) PortsBound(ctx context.Context, groups []string) {
	s.groupsChanged(ctx, groups...)
}

// PhysicalNetworks returns the physical networks that the flat and VLAN
// networks of a server's ports are on: a host must be wired to each to
// take the server.
func (s *Service) PhysicalNetworks(ctx context.Context, serverID string) ([]string, error) {
	return s.store.DevicePhysicalNetworks(ctx, serverID)
}
