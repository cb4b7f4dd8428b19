package network

import (
	"context"
	"maps"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/wire"
)

// Agents is how the service reaches the hosts' agents; wire.Hosts is its
// client over the bus. Every request carries the whole of what it sets,
// but for SetLeases, which changes a DHCP server's leases by port.
type Agents interface {
	Plug(ctx context.Context, host string, p wire.Port) error
	Unplug(ctx context.Context, host, portID string) error
	SecurityGroups(ctx context.Context, host string, groups []wire.SecurityGroup) error
	SetDHCP(ctx context.Context, host string, d wire.DHCP) error
	RemoveDHCP(ctx context.Context, host, subnetID string) error
	SetLeases(ctx context.Context, host string, l wire.DHCPLeases) error
	SetRouter(ctx context.Context, host string, r wire.Router) error
	RemoveRouter(ctx context.Context, host, routerID string) error
}

// SetAgents has the service tell hosts' agents what changes on them,
// through a; without it, hosts learn only when they register. Call it
// before the service is used.
func (s *Service) SetAgents(a Agents) {
	s.notify = &notifier{svc: s, agents: a, pending: map[string]*work{}, dirty: map[string]bool{}}
}

// What the hosts hear of. A change is noted against each host it concerns
// and sent by that host's worker, which reads the state to send when it
// sends it: a host hears the latest state, in order, and a burst of
// changes costs one message per thing changed. A host that cannot be
// reached gets its whole state when its agent registers again.
//
// Security groups are the exception, as a change to one (a rule, or a
// member: a port made, changed or deleted) concerns every host with a port
// in it, or in a group whose rules name it as remote group: the groups
// changed are collected, off the requests' path, and a resolver finds in
// one pass the hosts concerned and each group's members, which their
// workers then send. Under a burst of changes a pass takes in all the
// changes made during the last.

// notifier holds each host's pending work and runs its worker, and the
// security groups changed and their resolver.
type notifier struct {
	svc    *Service
	agents Agents

	mu        sync.Mutex
	pending   map[string]*work // by host; a host has a worker while it has an entry
	dirty     map[string]bool  // security groups whose hosts are to be found
	resolving bool             // a resolver runs
}

// work is what a host is to be told: ports, subnets, networks and routers
// by ID, security groups as last resolved.
type work struct {
	plug, unplug        map[string]bool // ports
	groups              map[string]wire.SecurityGroup
	dhcp, removeDHCP    map[string]bool   // subnets
	leases              map[string]bool   // networks, whose subnets' DHCP servers to set
	portLeases          map[string]string // ports whose leases changed, to their networks
	router, removeRoute map[string]bool   // routers
}

// newWork returns empty work.
func newWork() *work {
	return &work{plug: map[string]bool{}, unplug: map[string]bool{}, groups: map[string]wire.SecurityGroup{},
		dhcp: map[string]bool{}, removeDHCP: map[string]bool{}, leases: map[string]bool{}, portLeases: map[string]string{},
		router: map[string]bool{}, removeRoute: map[string]bool{}}
}

// agentTimeout bounds a message to an agent.
const agentTimeout = 10 * time.Second

// pace is the least time between two passes of the resolver, and between
// two sends of a host's worker: the changes made meanwhile go together in
// the next, so that a burst of thousands of ports costs a few messages of
// each group and DHCP server, not thousands, and a change still reaches
// its hosts within a fraction of a second.
const pace = 100 * time.Millisecond

// note adds work for a host and starts its worker if it has none.
func (n *notifier) note(host string, add func(w *work)) {
	if host == "" {
		return
	}
	n.mu.Lock()
	w, running := n.pending[host]
	if !running {
		w = newWork()
		n.pending[host] = w
	}
	add(w)
	n.mu.Unlock()
	if !running {
		go n.run(host)
	}
}

// run sends a host its pending work until there is none.
func (n *notifier) run(host string) {
	for {
		n.mu.Lock()
		w := n.pending[host]
		empty := len(w.plug)+len(w.unplug)+len(w.groups)+len(w.dhcp)+len(w.removeDHCP)+len(w.leases)+len(w.portLeases)+len(w.router)+len(w.removeRoute) == 0
		if empty {
			delete(n.pending, host)
			n.mu.Unlock()
			return
		}
		n.pending[host] = newWork()
		n.mu.Unlock()
		n.send(host, w)
		time.Sleep(pace)
	}
}

// send tells a host what w holds, reading it now.
func (n *notifier) send(host string, w *work) {
	ctx, cancel := context.WithTimeout(context.Background(), agentTimeout)
	defer cancel()
	log := n.svc.opts.Log.With("host", host)
	if len(w.groups) > 0 {
		groups := make([]wire.SecurityGroup, 0, len(w.groups))
		for _, id := range keys(w.groups) {
			groups = append(groups, w.groups[id])
		}
		if err := n.agents.SecurityGroups(ctx, host, groups); err != nil {
			log.Warn("tell a host of security groups", "error", err)
		}
	}
	for id := range w.unplug {
		if err := n.agents.Unplug(ctx, host, id); err != nil {
			log.Warn("unplug a port", "port", id, "error", err)
		}
	}
	if len(w.plug) > 0 {
		ports, err := n.svc.store.Ports(ctx, trustack.PortFilter{IDs: keys(w.plug)})
		var wp []wire.Port
		if err == nil {
			wp, err = n.svc.WirePorts(ctx, ports)
		}
		for i := 0; err == nil && i < len(wp); i++ {
			err = n.agents.Plug(ctx, host, wp[i])
		}
		if err != nil {
			log.Warn("plug ports", "error", err)
		}
	}
	for id := range w.removeDHCP {
		if err := n.agents.RemoveDHCP(ctx, host, id); err != nil {
			log.Warn("remove a DHCP server", "subnet", id, "error", err)
		}
	}
	if len(w.leases) > 0 {
		subnets, err := n.svc.store.Subnets(ctx, trustack.SubnetFilter{NetworkIDs: keys(w.leases)})
		if err != nil {
			log.Warn("find the subnets of networks", "error", err)
		}
		for _, sn := range subnets {
			if sn.EnableDHCP {
				w.dhcp[sn.ID] = true
			}
		}
	}
	for id := range w.dhcp {
		d, err := n.svc.wireDHCP(ctx, id)
		if trustack.ErrorCode(err) == trustack.ENOTFOUND {
			err = n.agents.RemoveDHCP(ctx, host, id)
		} else if err == nil {
			err = n.agents.SetDHCP(ctx, host, *d)
		}
		if err != nil {
			log.Warn("set a DHCP server", "subnet", id, "error", err)
		}
	}
	if err := n.sendLeases(ctx, host, w); err != nil {
		log.Warn("change DHCP leases", "error", err)
	}
	for id := range w.removeRoute {
		if err := n.agents.RemoveRouter(ctx, host, id); err != nil {
			log.Warn("remove a router", "router", id, "error", err)
		}
	}
	for id := range w.router {
		r, err := n.svc.wireRouter(ctx, id)
		if trustack.ErrorCode(err) == trustack.ENOTFOUND {
			err = n.agents.RemoveRouter(ctx, host, id)
		} else if err == nil {
			err = n.agents.SetRouter(ctx, host, *r)
		}
		if err != nil {
			log.Warn("set a router", "router", id, "error", err)
		}
	}
}

// sendLeases tells a network node the leases of the ports in w changed,
// but on the networks whose DHCP servers w sets whole.
func (n *notifier) sendLeases(ctx context.Context, host string, w *work) error {
	changes := map[string]*wire.DHCPLeases{}
	for id, network := range w.portLeases {
		if w.leases[network] {
			continue
		}
		if changes[network] == nil {
			changes[network] = &wire.DHCPLeases{NetworkID: network}
		}
		changes[network].PortIDs = append(changes[network].PortIDs, id)
	}
	if len(changes) == 0 {
		return nil
	}
	ports, err := n.svc.store.Ports(ctx, trustack.PortFilter{IDs: keys(w.portLeases)})
	if err != nil {
		return err
	}
	for _, p := range ports {
		if c := changes[p.NetworkID]; c != nil {
			c.Leases = append(c.Leases, leases(p)...)
		}
	}
	for _, network := range keys(changes) {
		if err := n.agents.SetLeases(ctx, host, *changes[network]); err != nil {
			return err
		}
	}
	return nil
}

// keys returns a map's keys, sorted.
func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// nodeTTL is how long the choice of the network node is kept before the
// hosts are read again: at thousands of hosts, reading them at every
// change would cost more than the change.
const nodeTTL = 2 * time.Second

// networkNode returns the host that runs DHCP servers and routers: the
// first, by name, of the network nodes that are up; "" for none. The
// choice is read again at most every nodeTTL of wall time, and when a
// network node registers.
func (s *Service) networkNode(ctx context.Context) string {
	s.node.mu.Lock()
	defer s.node.mu.Unlock()
	if time.Now().Before(s.node.until) {
		return s.node.name
	}
	hosts, err := s.store.Hosts(ctx)
	if err != nil {
		s.opts.Log.Error("find the network node", "error", err)
		return ""
	}
	node := ""
	for _, h := range hosts {
		if h.NetworkNode && (s.opts.Alive == nil || s.opts.Alive(h)) && (node == "" || h.Name < node) {
			node = h.Name
		}
	}
	s.node.name, s.node.until = node, time.Now().Add(nodeTTL)
	return node
}

// Hooks the operations call after a change is stored.

// portChanged tells hosts of a port created (before nil), changed or
// deleted (after nil): its host to plug or unplug it, the holders of its
// groups that its address changed, and the DHCP server of its network.
func (s *Service) portChanged(ctx context.Context, before, after *trustack.Port) {
	if s.notify == nil {
		return
	}
	var groups []string
	for _, p := range []*trustack.Port{before, after} {
		if p != nil {
			groups = append(groups, p.SecurityGroups...)
		}
	}
	switch {
	case after == nil:
		s.notify.note(before.HostID, func(w *work) { w.unplug[before.ID] = true; delete(w.plug, before.ID) })
	case before != nil && before.HostID != after.HostID:
		s.notify.note(before.HostID, func(w *work) { w.unplug[before.ID] = true; delete(w.plug, before.ID) })
		fallthrough
	default:
		s.notify.note(after.HostID, func(w *work) { w.plug[after.ID] = true; delete(w.unplug, after.ID) })
	}
	s.groupsChanged(ctx, groups...)
	p := after
	if p == nil {
		p = before
	}
	if p.DeviceOwner != trustack.OwnerDHCP {
		s.notify.note(s.networkNode(ctx), func(w *work) { w.portLeases[p.ID] = p.NetworkID })
	}
	if p.DeviceOwner == trustack.OwnerRouterInterface || p.DeviceOwner == trustack.OwnerRouterGateway {
		s.routerChanged(ctx, p.DeviceID)
	}
}

// groupsChanged has the hosts with ports in the groups, or in groups
// whose rules name them as remote group, told of the groups as they now
// are, by the resolver.
func (s *Service) groupsChanged(_ context.Context, ids ...string) {
	n := s.notify
	if n == nil || len(ids) == 0 {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, id := range ids {
		n.dirty[id] = true
	}
	if !n.resolving {
		n.resolving = true
		go n.resolve()
	}
}

// resolve finds the hosts of the groups changed, and gives their workers
// the groups as they now are, until no group is left to resolve.
func (n *notifier) resolve() {
	for {
		n.mu.Lock()
		if len(n.dirty) == 0 {
			n.resolving = false
			n.mu.Unlock()
			return
		}
		ids := keys(n.dirty)
		n.dirty = map[string]bool{}
		n.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), agentTimeout)
		byHost, err := n.svc.groupHosts(ctx, ids)
		cancel()
		if err != nil {
			n.svc.opts.Log.Error("find the hosts of security groups", "groups", ids, "error", err)
			continue
		}
		for host, groups := range byHost {
			n.note(host, func(w *work) {
				for _, g := range groups {
					w.groups[g.ID] = g
				}
			})
		}
		time.Sleep(pace)
	}
}

// groupHosts returns, by host, the groups as hosts enforce them that the
// change of the groups of ids brings each host: a changed group to the
// hosts with ports in it or in a group whose rules name it as remote
// group; and, as a host with a port new to a changed group learns only
// its rules from the spawn, the groups its rules name to the hosts with
// ports in it. Groups gone are left out.
func (s *Service) groupHosts(ctx context.Context, ids []string) (map[string][]wire.SecurityGroup, error) {
	all, err := s.store.SecurityGroups(ctx, "", nil)
	if err != nil {
		return nil, err
	}
	changed := map[string]bool{}
	for _, id := range ids {
		changed[id] = true
	}
	// needs: the groups that the hosts of each group's ports are sent.
	needs := map[string][]string{}
	need := func(holder, id string) {
		if !slices.Contains(needs[holder], id) {
			needs[holder] = append(needs[holder], id)
		}
	}
	for _, g := range all {
		if changed[g.ID] {
			need(g.ID, g.ID)
		}
		for _, r := range g.Rules {
			if r.RemoteGroupID != "" && (changed[g.ID] || changed[r.RemoteGroupID]) {
				need(g.ID, r.RemoteGroupID)
			}
		}
	}
	sent := map[string]bool{}
	for _, list := range needs {
		for _, id := range list {
			sent[id] = true
		}
	}
	var send []*trustack.SecurityGroup
	for _, g := range all {
		if sent[g.ID] {
			send = append(send, g)
		}
	}
	wired, err := s.wireGroups(ctx, send)
	if err != nil {
		return nil, err
	}
	hosts, err := s.store.SecurityGroupHosts(ctx, slices.Collect(maps.Keys(needs)))
	if err != nil {
		return nil, err
	}
	hostNeeds := map[string]map[string]bool{}
	for holder, list := range hosts {
		for _, host := range list {
			if hostNeeds[host] == nil {
				hostNeeds[host] = map[string]bool{}
			}
			for _, id := range needs[holder] {
				hostNeeds[host][id] = true
			}
		}
	}
	out := map[string][]wire.SecurityGroup{}
	for host, groups := range hostNeeds {
		for _, g := range wired {
			if groups[g.ID] {
				out[host] = append(out[host], g)
			}
		}
	}
	return out, nil
}

// networkChanged tells the hosts of a network's ports and its DHCP
// servers that it changed.
func (s *Service) networkChanged(ctx context.Context, networkID string) {
	if s.notify == nil {
		return
	}
	ports, err := s.store.Ports(ctx, trustack.PortFilter{NetworkID: networkID})
	if err != nil {
		s.opts.Log.Error("find the ports of a network", "network", networkID, "error", err)
		return
	}
	for _, p := range ports {
		s.notify.note(p.HostID, func(w *work) { w.plug[p.ID] = true })
	}
	s.networkLeasesChanged(ctx, networkID)
}

// networkLeasesChanged tells the network node to serve DHCP for each of
// the network's DHCP subnets as they now are; which subnets those are, its
// worker reads when it sends.
func (s *Service) networkLeasesChanged(ctx context.Context, networkID string) {
	if s.notify == nil {
		return
	}
	s.notify.note(s.networkNode(ctx), func(w *work) { w.leases[networkID] = true })
}

// dhcpRemoved tells the network node to stop serving a subnet.
func (s *Service) dhcpRemoved(ctx context.Context, subnetID string) {
	if s.notify == nil {
		return
	}
	s.notify.note(s.networkNode(ctx), func(w *work) { w.removeDHCP[subnetID] = true; delete(w.dhcp, subnetID) })
}

// routerChanged tells the network node to run a router as it now is.
func (s *Service) routerChanged(ctx context.Context, routerID string) {
	if s.notify == nil || routerID == "" {
		return
	}
	s.notify.note(s.networkNode(ctx), func(w *work) { w.router[routerID] = true })
}

// routerRemoved tells the network node to remove a router.
func (s *Service) routerRemoved(ctx context.Context, routerID string) {
	if s.notify == nil {
		return
	}
	s.notify.note(s.networkNode(ctx), func(w *work) { w.removeRoute[routerID] = true; delete(w.router, routerID) })
}

// floatingIPChanged tells the network node of the routers a floating IP
// left and joined.
func (s *Service) floatingIPChanged(ctx context.Context, routers ...string) {
	for _, r := range routers {
		s.routerChanged(ctx, r)
	}
}

// What the hosts are told, from the store.

// WirePorts returns ports as hosts wire them, with their segments and
// their subnets' settings.
func (s *Service) WirePorts(ctx context.Context, ports []*trustack.Port) ([]wire.Port, error) {
	var netIDs, subnetIDs []string
	for _, p := range ports {
		netIDs = append(netIDs, p.NetworkID)
		for _, ip := range p.FixedIPs {
			subnetIDs = append(subnetIDs, ip.SubnetID)
		}
	}
	nets, subnets, err := s.networksAndSubnets(ctx, netIDs, subnetIDs)
	if err != nil {
		return nil, err
	}
	out := make([]wire.Port, 0, len(ports))
	for _, p := range ports {
		n := nets[p.NetworkID]
		if n == nil {
			return nil, trustack.Errorf(trustack.ENOTFOUND, "network %s of port %s is gone", p.NetworkID, p.ID)
		}
		out = append(out, wirePort(p, n, subnets))
	}
	return out, nil
}

// networksAndSubnets reads networks and subnets by ID.
func (s *Service) networksAndSubnets(ctx context.Context, netIDs, subnetIDs []string) (map[string]*trustack.Network, map[string]*trustack.Subnet, error) {
	nets := map[string]*trustack.Network{}
	subnets := map[string]*trustack.Subnet{}
	if len(netIDs) > 0 {
		list, err := s.store.Networks(ctx, trustack.NetworkFilter{IDs: netIDs})
		if err != nil {
			return nil, nil, err
		}
		for _, n := range list {
			nets[n.ID] = n
		}
	}
	if len(subnetIDs) > 0 {
		list, err := s.store.Subnets(ctx, trustack.SubnetFilter{IDs: subnetIDs})
		if err != nil {
			return nil, nil, err
		}
		for _, sn := range list {
			subnets[sn.ID] = sn
		}
	}
	return nets, subnets, nil
}

// wirePort is a port of network n as a host wires it.
func wirePort(p *trustack.Port, n *trustack.Network, subnets map[string]*trustack.Subnet) wire.Port {
	wp := wire.Port{ID: p.ID, NetworkID: p.NetworkID, Owner: p.DeviceOwner, MAC: p.MACAddress, AdminUp: p.AdminStateUp && n.AdminStateUp,
		PortSecurity: p.PortSecurity, SecurityGroups: p.SecurityGroups,
		Segment: wire.Segment{Type: n.Type, PhysicalNetwork: n.PhysicalNetwork, SegmentationID: n.SegmentationID, MTU: n.MTU}}
	if strings.HasPrefix(p.DeviceOwner, trustack.OwnerCompute) {
		wp.ServerID = p.DeviceID
	}
	for _, ip := range p.FixedIPs {
		a := wire.Address{SubnetID: ip.SubnetID, Address: ip.Address.String()}
		if sn := subnets[ip.SubnetID]; sn != nil {
			a.CIDR, a.DHCP = sn.CIDR.String(), sn.EnableDHCP
			if sn.Gateway.IsValid() {
				a.Gateway = sn.Gateway.String()
			}
			for _, d := range sn.DNSNameservers {
				a.DNS = append(a.DNS, d.String())
			}
			a.HostRoutes = wireRoutes(sn.HostRoutes)
		}
		wp.Addresses = append(wp.Addresses, a)
	}
	for _, pair := range p.AllowedAddressPairs {
		mac := pair.MACAddress
		if mac == "" {
			mac = p.MACAddress
		}
		wp.AllowedAddressPairs = append(wp.AllowedAddressPairs, wire.AddressPair{IPAddress: pair.IPAddress, MACAddress: mac})
	}
	return wp
}

// wireRoutes converts routes.
func wireRoutes(routes []trustack.HostRoute) []wire.Route {
	var out []wire.Route
	for _, r := range routes {
		out = append(out, wire.Route{Destination: r.Destination.String(), NextHop: r.NextHop.String()})
	}
	return out
}

// WireGroupRules returns the rules of the security groups of ports, as
// hosts enforce them, without their members (see wire.SecurityGroup).
func (s *Service) WireGroupRules(ctx context.Context, ports []*trustack.Port) ([]wire.SecurityGroup, error) {
	groups, err := s.groupsOf(ctx, ports)
	if err != nil {
		return nil, err
	}
	out := make([]wire.SecurityGroup, len(groups))
	for i, g := range groups {
		out[i] = wireGroup(g, nil)
		out[i].RulesOnly = true
	}
	return out, nil
}

// groupsOf returns the security groups ports are in.
func (s *Service) groupsOf(ctx context.Context, ports []*trustack.Port) ([]*trustack.SecurityGroup, error) {
	var ids []string
	for _, p := range ports {
		for _, g := range p.SecurityGroups {
			if !slices.Contains(ids, g) {
				ids = append(ids, g)
			}
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	return s.store.SecurityGroups(ctx, "", ids)
}

// wireGroupsOf returns the security groups that hosts need to enforce
// those of ports: the groups the ports are in and the groups their rules
// name as remote group, each with its members' addresses.
func (s *Service) wireGroupsOf(ctx context.Context, ports []*trustack.Port) ([]wire.SecurityGroup, error) {
	groups, err := s.groupsOf(ctx, ports)
	if err != nil || len(groups) == 0 {
		return nil, err
	}
	ids := make([]string, len(groups))
	for i, g := range groups {
		ids[i] = g.ID
	}
	for _, g := range groups {
		for _, r := range g.Rules {
			if r.RemoteGroupID != "" && !slices.Contains(ids, r.RemoteGroupID) {
				ids = append(ids, r.RemoteGroupID)
				remote, err := s.store.SecurityGroup(ctx, r.RemoteGroupID)
				if err != nil {
					return nil, err
				}
				groups = append(groups, remote)
			}
		}
	}
	return s.wireGroups(ctx, groups)
}

// wireGroups returns groups as hosts enforce them, with their members'
// addresses.
func (s *Service) wireGroups(ctx context.Context, groups []*trustack.SecurityGroup) ([]wire.SecurityGroup, error) {
	ids := make([]string, len(groups))
	for i, g := range groups {
		ids[i] = g.ID
	}
	members, err := s.store.SecurityGroupMembers(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]wire.SecurityGroup, len(groups))
	for i, g := range groups {
		out[i] = wireGroup(g, members[g.ID])
	}
	return out, nil
}

// masked returns a rule's remote prefix with its host bits cleared, as
// hosts match it; "" (any address) stays "".
func masked(prefix string) string {
	p, err := netip.ParsePrefix(prefix)
	if err != nil {
		return prefix
	}
	return p.Masked().String()
}

// wireGroup is a group as hosts enforce it, with the addresses of its
// members.
func wireGroup(g *trustack.SecurityGroup, members []string) wire.SecurityGroup {
	wg := wire.SecurityGroup{ID: g.ID, Revision: g.Revision, Stateful: g.Stateful, Rules: []wire.Rule{}, Members: slices.Clip(append([]string{}, members...))}
	for _, r := range g.Rules {
		wg.Rules = append(wg.Rules, wire.Rule{Direction: r.Direction, EtherType: r.EtherType, Protocol: r.Protocol,
			PortMin: r.PortMin, PortMax: r.PortMax, RemotePrefix: masked(r.RemoteIPPrefix), RemoteGroup: r.RemoteGroupID})
	}
	return wg
}

// wireDHCP returns what the DHCP server of a subnet serves; ENOTFOUND for
// a subnet gone or without DHCP.
func (s *Service) wireDHCP(ctx context.Context, subnetID string) (*wire.DHCP, error) {
	sn, err := s.store.Subnet(ctx, subnetID)
	if err != nil {
		return nil, err
	}
	if !sn.EnableDHCP {
		return nil, trustack.Errorf(trustack.ENOTFOUND, "subnet %s serves no DHCP", subnetID)
	}
	n, err := s.store.Network(ctx, sn.NetworkID)
	if err != nil {
		return nil, err
	}
	ports, err := s.store.Ports(ctx, trustack.PortFilter{NetworkID: n.ID})
	if err != nil {
		return nil, err
	}
	subnets := map[string]*trustack.Subnet{sn.ID: sn}
	d := &wire.DHCP{SubnetID: sn.ID, NetworkID: n.ID, CIDR: sn.CIDR.String(), HostRoutes: wireRoutes(sn.HostRoutes), Leases: []wire.DHCPHost{},
		Segment: wire.Segment{Type: n.Type, PhysicalNetwork: n.PhysicalNetwork, SegmentationID: n.SegmentationID, MTU: n.MTU}}
	if sn.Gateway.IsValid() {
		d.Gateway = sn.Gateway.String()
	}
	for _, a := range sn.DNSNameservers {
		d.DNS = append(d.DNS, a.String())
	}
	for _, p := range ports {
		if p.DeviceOwner == trustack.OwnerDHCP {
			if slices.ContainsFunc(p.FixedIPs, func(ip trustack.FixedIP) bool { return ip.SubnetID == sn.ID }) {
				d.Port = wirePort(p, n, subnets)
			}
			continue
		}
		for _, h := range leases(p) {
			if h.SubnetID == sn.ID {
				d.Leases = append(d.Leases, h)
			}
		}
	}
	return d, nil
}

// leases returns what DHCP servers give a port: each of its fixed
// addresses, with a host name made of it.
func leases(p *trustack.Port) []wire.DHCPHost {
	out := make([]wire.DHCPHost, len(p.FixedIPs))
	for i, ip := range p.FixedIPs {
		out[i] = wire.DHCPHost{PortID: p.ID, SubnetID: ip.SubnetID, MAC: p.MACAddress, Address: ip.Address.String(),
			Hostname: "host-" + strings.NewReplacer(".", "-", ":", "-").Replace(ip.Address.String())}
	}
	return out
}

// InstanceAt returns the server whose port has address on a subnet that
// the router has an interface on, for the metadata service the router
// forwards to: ENOTFOUND when there is none, EFORBIDDEN unless host is
// the network node, which runs the routers.
func (s *Service) InstanceAt(ctx context.Context, host, routerID, address string) (string, error) {
	if host == "" || s.networkNode(ctx) != host {
		return "", trustack.Errorf(trustack.EFORBIDDEN, "host %q runs no routers", host)
	}
	addr, err := netip.ParseAddr(address)
	if err != nil {
		return "", trustack.Errorf(trustack.EINVALID, "bad address %q", address)
	}
	ifaces, err := s.store.Ports(ctx, trustack.PortFilter{DeviceIDs: []string{routerID}, DeviceOwner: trustack.OwnerRouterInterface})
	if err != nil {
		return "", err
	}
	for _, iface := range ifaces {
		subnets := map[string]bool{}
		for _, ip := range iface.FixedIPs {
			subnets[ip.SubnetID] = true
		}
		ports, err := s.store.Ports(ctx, trustack.PortFilter{NetworkID: iface.NetworkID})
		if err != nil {
			return "", err
		}
		for _, p := range ports {
			if !strings.HasPrefix(p.DeviceOwner, trustack.OwnerCompute) {
				continue
			}
			for _, ip := range p.FixedIPs {
				if subnets[ip.SubnetID] && ip.Address == addr {
					return p.DeviceID, nil
				}
			}
		}
	}
	return "", trustack.Errorf(trustack.ENOTFOUND, "no server has %s behind router %s", address, routerID)
}

// wireRouter returns a router as the network node runs it.
func (s *Service) wireRouter(ctx context.Context, routerID string) (*wire.Router, error) {
	r, err := s.store.Router(ctx, routerID)
	if err != nil {
		return nil, err
	}
	ports, err := s.store.Ports(ctx, trustack.PortFilter{DeviceIDs: []string{r.ID}})
	if err != nil {
		return nil, err
	}
	wps, err := s.WirePorts(ctx, ports)
	if err != nil {
		return nil, err
	}
	wr := &wire.Router{ID: r.ID, Interfaces: []wire.Port{}, Routes: wireRoutes(r.Routes)}
	for i, p := range ports {
		switch p.DeviceOwner {
		case trustack.OwnerRouterInterface:
			wr.Interfaces = append(wr.Interfaces, wps[i])
		case trustack.OwnerRouterGateway:
			wr.Gateway = &wps[i]
		}
	}
	if r.Gateway != nil {
		wr.SNAT = r.Gateway.EnableSNAT
	}
	fips, err := s.store.FloatingIPs(ctx, "", nil)
	if err != nil {
		return nil, err
	}
	for _, f := range fips {
		if f.RouterID == r.ID && f.PortID != "" {
			wr.FloatingIPs = append(wr.FloatingIPs, wire.FloatingIP{Address: f.Address.String(), FixedAddress: f.FixedAddress.String(), PortID: f.PortID})
		}
	}
	return wr, nil
}

// HostNetwork returns the network state a host should have: its servers'
// ports and their groups and, if it is the network node, every DHCP
// server and router.
func (s *Service) HostNetwork(ctx context.Context, h *trustack.Host) (wire.HostNetwork, error) {
	var hn wire.HostNetwork
	host := h.Name
	if h.NetworkNode {
		// It may be the network node now: choose again.
		s.node.mu.Lock()
		s.node.until = time.Time{}
		s.node.mu.Unlock()
	}
	ports, err := s.store.Ports(ctx, trustack.PortFilter{HostID: host})
	if err != nil {
		return hn, err
	}
	if hn.Ports, err = s.WirePorts(ctx, ports); err != nil {
		return hn, err
	}
	if hn.Groups, err = s.wireGroupsOf(ctx, ports); err != nil {
		return hn, err
	}
	if !h.NetworkNode || s.networkNode(ctx) != host {
		return hn, nil
	}
	subnets, err := s.store.Subnets(ctx, trustack.SubnetFilter{})
	if err != nil {
		return hn, err
	}
	for _, sn := range subnets {
		if !sn.EnableDHCP {
			continue
		}
		d, err := s.wireDHCP(ctx, sn.ID)
		if err != nil {
			return hn, err
		}
		hn.DHCP = append(hn.DHCP, *d)
	}
	routers, err := s.store.Routers(ctx, "", nil)
	if err != nil {
		return hn, err
	}
	for _, r := range routers {
		wr, err := s.wireRouter(ctx, r.ID)
		if err != nil {
			return hn, err
		}
		hn.Routers = append(hn.Routers, *wr)
	}
	return hn, nil
}
