package wire

import (
	"context"
	"slices"
	"strconv"

	"github.com/trustack/trustack"
)

// The network conversation, on the host's subject: controllers ask an
// agent to plug and unplug ports (those of its servers are plugged by the
// spawn itself), to apply security groups to its ports, and, on a network
// node, to serve DHCP for subnets and to run routers. Each request carries
// the whole of what it sets (DHCPLeases the whole of the leases of the
// ports it names), so that repeating it changes nothing.

// Segment is the layer-2 segment a network is on.
type Segment struct {
	Type            string `json:"type"` // trustack.NetworkFlat, NetworkVLAN, NetworkVXLAN, NetworkLocal
	PhysicalNetwork string `json:"physical_network,omitempty"`
	SegmentationID  int    `json:"segmentation_id,omitempty"`
	MTU             int    `json:"mtu"`
}

// Route is a route a host or a guest installs.
type Route struct {
	Destination string `json:"destination"` // a CIDR
	NextHop     string `json:"nexthop"`
}

// Address is one of a port's fixed addresses, with its subnet's settings
// that the guest's network configuration needs.
type Address struct {
	SubnetID   string   `json:"subnet_id"`
	Address    string   `json:"ip_address"`
	CIDR       string   `json:"cidr"`
	Gateway    string   `json:"gateway_ip,omitempty"`
	DHCP       bool     `json:"enable_dhcp"`
	DNS        []string `json:"dns_nameservers,omitempty"`
	HostRoutes []Route  `json:"host_routes,omitempty"`
}

// AddressPair is an address, with its MAC, that a port may send from
// besides its own.
type AddressPair struct {
	IPAddress  string `json:"ip_address"` // an address or a CIDR
	MACAddress string `json:"mac_address"`
}

// Port is a port as a host wires it.
type Port struct {
	ID        string    `json:"id"`
	NetworkID string    `json:"network_id"`
	ServerID  string    `json:"server_id,omitempty"` // Neutron's device_id, for a server's port
	Owner     string    `json:"device_owner"`
	MAC       string    `json:"mac_address"`
	Segment   Segment   `json:"segment"`
	Addresses []Address `json:"addresses"`
	AdminUp   bool      `json:"admin_state_up"`
	// PortSecurity on means the port is held to SecurityGroups and may
	// send only from its MAC and addresses, and AllowedAddressPairs; off,
	// it is filtered not at all.
	PortSecurity        bool          `json:"port_security_enabled"`
	SecurityGroups      []string      `json:"security_groups,omitempty"`
	AllowedAddressPairs []AddressPair `json:"allowed_address_pairs,omitempty"`
}

// TapName names the tap device of a port on a host, as the host's network
// makes it, the hypervisor opens it and network_data.json names its link:
// "tap" and the first 11 characters of the port's ID, as Nova and Neutron
// name them.
func TapName(portID string) string { return "tap" + portID[:min(11, len(portID))] }

// Rule is a security group rule as a host enforces it: traffic in its
// direction that matches is let through; everything else is dropped.
type Rule struct {
	Direction string `json:"direction"` // "ingress" or "egress"
	EtherType string `json:"ethertype"` // "IPv4" or "IPv6"
	Protocol  string `json:"protocol,omitempty"`
	// PortMin and PortMax bound the destination ports (for ICMP, the type
	// and code); nil for any.
	PortMin *int `json:"port_range_min,omitempty"`
	PortMax *int `json:"port_range_max,omitempty"`
	// At most one of RemotePrefix and RemoteGroup is set; neither means
	// any remote address.
	RemotePrefix string `json:"remote_ip_prefix,omitempty"`
	RemoteGroup  string `json:"remote_group_id,omitempty"`
}

// Protocols a rule may name, with their numbers, as Neutron knows them.
var Protocols = map[string]int{
	"ah": 51, "dccp": 33, "egp": 8, "esp": 50, "gre": 47, "icmp": 1, "icmpv6": 58, "igmp": 2, "ipip": 4, "ipv6-encap": 41,
	"ipv6-frag": 44, "ipv6-icmp": 58, "ipv6-nonxt": 59, "ipv6-opts": 60, "ipv6-route": 43, "ospf": 89, "pgm": 113, "rsvp": 46,
	"sctp": 132, "tcp": 6, "udp": 17, "udplite": 136, "vrrp": 112,
}

// ProtocolNumber returns the number of a rule's protocol, a name of
// Protocols or a number; -1 for any.
func ProtocolNumber(proto string) int {
	if n, ok := Protocols[proto]; ok {
		return n
	}
	if n, err := strconv.Atoi(proto); err == nil {
		return n
	}
	return -1
}

// SecurityGroup is a group's rules, at a revision of the group, and the
// addresses of its members, which rules naming it as remote group match.
// A group sent RulesOnly (as a spawn sends its ports' groups) leaves the
// members the host knows as they are: members reach hosts from the
// controllers, who send the whole group whenever its membership changes,
// so that a spawn costs the same in a group of ten servers as in one of
// ten thousand.
type SecurityGroup struct {
	ID        string   `json:"id"`
	Revision  int64    `json:"revision"`
	Stateful  bool     `json:"stateful"`
	Rules     []Rule   `json:"rules"`
	Members   []string `json:"members"`
	RulesOnly bool     `json:"rules_only,omitempty"`
}

// Update returns the group that a host enforcing g (the zero group if
// none) is to enforce when sent a group: the rules sent, unless g's are
// of a later revision (what was sent left before a change the host has
// since heard of), and the members sent, unless it is RulesOnly.
func (g SecurityGroup) Update(sent SecurityGroup) SecurityGroup {
	next := sent
	next.RulesOnly = false
	if g.Revision > sent.Revision {
		next.Revision, next.Stateful, next.Rules = g.Revision, g.Stateful, g.Rules
	}
	if sent.RulesOnly {
		next.Members = g.Members
	}
	return next
}

// DHCP is what a DHCP server for one subnet serves: each port of the
// subnet's network its own address, with the subnet's gateway, name
// servers and routes.
type DHCP struct {
	SubnetID   string     `json:"subnet_id"`
	NetworkID  string     `json:"network_id"`
	Segment    Segment    `json:"segment"`
	CIDR       string     `json:"cidr"`
	Gateway    string     `json:"gateway_ip,omitempty"`
	DNS        []string   `json:"dns_nameservers,omitempty"`
	HostRoutes []Route    `json:"host_routes,omitempty"`
	Port       Port       `json:"port"` // the DHCP server's own
	Leases     []DHCPHost `json:"leases"`
}

// DHCPHost is an address the DHCP server of a subnet gives one port's
// MAC.
type DHCPHost struct {
	PortID   string `json:"port_id"`
	SubnetID string `json:"subnet_id"`
	MAC      string `json:"mac_address"`
	Address  string `json:"ip_address"`
	Hostname string `json:"hostname,omitempty"`
}

// DHCPLeases is a change of the leases of a network's DHCP servers: the
// ports named lose the leases they had and get those given, if any. A
// port's change costs one message the size of its leases, where a whole
// DHCP has the size of its subnet.
type DHCPLeases struct {
	NetworkID string     `json:"network_id"`
	PortIDs   []string   `json:"port_ids"`
	Leases    []DHCPHost `json:"leases,omitempty"`
}

// Apply returns d with the change made, if it is of d's network.
func (d DHCP) Apply(change DHCPLeases) DHCP {
	if change.NetworkID != d.NetworkID {
		return d
	}
	changed := make(map[string]bool, len(change.PortIDs))
	for _, id := range change.PortIDs {
		changed[id] = true
	}
	next := d
	next.Leases = slices.DeleteFunc(slices.Clone(d.Leases), func(h DHCPHost) bool { return changed[h.PortID] })
	for _, h := range change.Leases {
		if h.SubnetID == d.SubnetID && changed[h.PortID] {
			next.Leases = append(next.Leases, h)
		}
	}
	return next
}

// Router is a router as a network node runs it: its interfaces on tenant
// subnets, its gateway on an external network with source NAT, its
// static routes and the floating addresses it translates.
type Router struct {
	ID          string       `json:"id"`
	Interfaces  []Port       `json:"interfaces"`
	Gateway     *Port        `json:"gateway,omitempty"`
	SNAT        bool         `json:"enable_snat"`
	Routes      []Route      `json:"routes,omitempty"`
	FloatingIPs []FloatingIP `json:"floating_ips,omitempty"`
}

// FloatingIP maps an external address to a port's fixed address.
type FloatingIP struct {
	Address      string `json:"floating_ip_address"`
	FixedAddress string `json:"fixed_ip_address"`
	PortID       string `json:"port_id"`
}

// HostNetwork is the network state a host should have: the ports of its
// servers, the security groups they are in, and on a network node the
// DHCP servers and routers. An agent that registers gets it, and makes its
// host match: what it has beyond it is removed.
type HostNetwork struct {
	Ports   []Port          `json:"ports,omitempty"`
	Groups  []SecurityGroup `json:"security_groups,omitempty"`
	DHCP    []DHCP          `json:"dhcp,omitempty"`
	Routers []Router        `json:"routers,omitempty"`
}

// Operations of the network conversation.
const (
	opPlug           = "plug"
	opUnplug         = "unplug"
	opSecurityGroups = "security_groups"
	opSetDHCP        = "set_dhcp"
	opRemoveDHCP     = "remove_dhcp"
	opSetLeases      = "set_dhcp_leases"
	opSetRouter      = "set_router"
	opRemoveRouter   = "remove_router"
)

// networkRequest is the network conversation's part of a hostRequest.
type networkRequest struct {
	Port   *Port           `json:"port,omitempty"`
	ID     string          `json:"id,omitempty"` // of a port, a subnet or a router
	Groups []SecurityGroup `json:"groups,omitempty"`
	DHCP   *DHCP           `json:"dhcp,omitempty"`
	Leases *DHCPLeases     `json:"leases,omitempty"`
	Router *Router         `json:"router,omitempty"`
}

// Plug asks the host's agent to wire a port that no server's spawn wires,
// or to bring one up to date.
func (c *Hosts) Plug(ctx context.Context, host string, p Port) error {
	_, err := c.call(ctx, host, hostRequest{Op: opPlug, networkRequest: networkRequest{Port: &p}})
	return err
}

// Unplug asks the host's agent to remove a port's wiring; a port it does
// not have is no error.
func (c *Hosts) Unplug(ctx context.Context, host, portID string) error {
	_, err := c.call(ctx, host, hostRequest{Op: opUnplug, networkRequest: networkRequest{ID: portID}})
	return err
}

// SecurityGroups asks the host's agent to enforce these groups, as they
// now are, on its ports in them.
func (c *Hosts) SecurityGroups(ctx context.Context, host string, groups []SecurityGroup) error {
	_, err := c.call(ctx, host, hostRequest{Op: opSecurityGroups, networkRequest: networkRequest{Groups: groups}})
	return err
}

// SetDHCP asks a network node's agent to serve DHCP for a subnet as d
// says.
func (c *Hosts) SetDHCP(ctx context.Context, host string, d DHCP) error {
	_, err := c.call(ctx, host, hostRequest{Op: opSetDHCP, networkRequest: networkRequest{DHCP: &d}})
	return err
}

// RemoveDHCP asks a network node's agent to stop serving DHCP for a
// subnet.
func (c *Hosts) RemoveDHCP(ctx context.Context, host, subnetID string) error {
	_, err := c.call(ctx, host, hostRequest{Op: opRemoveDHCP, networkRequest: networkRequest{ID: subnetID}})
	return err
}

// SetLeases asks a network node's agent to change the leases of a
// network's DHCP servers.
func (c *Hosts) SetLeases(ctx context.Context, host string, l DHCPLeases) error {
	_, err := c.call(ctx, host, hostRequest{Op: opSetLeases, networkRequest: networkRequest{Leases: &l}})
	return err
}

// SetRouter asks a network node's agent to run a router as r says.
func (c *Hosts) SetRouter(ctx context.Context, host string, r Router) error {
	_, err := c.call(ctx, host, hostRequest{Op: opSetRouter, networkRequest: networkRequest{Router: &r}})
	return err
}

// RemoveRouter asks a network node's agent to remove a router.
func (c *Hosts) RemoveRouter(ctx context.Context, host, routerID string) error {
	_, err := c.call(ctx, host, hostRequest{Op: opRemoveRouter, networkRequest: networkRequest{ID: routerID}})
	return err
}

// NetworkHost is what a host's agent does of the network conversation.
type NetworkHost interface {
	Plug(ctx context.Context, p Port) error
	Unplug(ctx context.Context, portID string) error
	SecurityGroups(ctx context.Context, groups []SecurityGroup) error
	SetDHCP(ctx context.Context, d DHCP) error
	RemoveDHCP(ctx context.Context, subnetID string) error
	SetLeases(ctx context.Context, l DHCPLeases) error
	SetRouter(ctx context.Context, r Router) error
	RemoveRouter(ctx context.Context, routerID string) error
}

// serveNetwork hands a request of the network conversation to h.
func serveNetwork(ctx context.Context, h NetworkHost, req hostRequest) error {
	switch req.Op {
	case opPlug:
		if req.Port == nil {
			return trustack.Errorf(trustack.EINVALID, "plug needs a port")
		}
		return h.Plug(ctx, *req.Port)
	case opUnplug:
		return h.Unplug(ctx, req.ID)
	case opSecurityGroups:
		return h.SecurityGroups(ctx, req.Groups)
	case opSetDHCP:
		if req.DHCP == nil {
			return trustack.Errorf(trustack.EINVALID, "set_dhcp needs a subnet")
		}
		return h.SetDHCP(ctx, *req.DHCP)
	case opRemoveDHCP:
		return h.RemoveDHCP(ctx, req.ID)
	case opSetLeases:
		if req.Leases == nil {
			return trustack.Errorf(trustack.EINVALID, "set_dhcp_leases needs leases")
		}
		return h.SetLeases(ctx, *req.Leases)
	case opSetRouter:
		if req.Router == nil {
			return trustack.Errorf(trustack.EINVALID, "set_router needs a router")
		}
		return h.SetRouter(ctx, *req.Router)
	case opRemoveRouter:
		return h.RemoveRouter(ctx, req.ID)
	}
	return trustack.Errorf(trustack.EINVALID, "unknown operation %q", req.Op)
}
