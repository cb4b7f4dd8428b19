package trustack

import (
	"net/netip"
	"time"
)

// Network segment types, as Neutron's provider:network_type names them:
// a flat network is untagged on a physical network, a VLAN network
// tagged on one, a VXLAN network an overlay between hosts, and a local
// network confined to one host.
const (
	NetworkFlat  = "flat"
	NetworkVLAN  = "vlan"
	NetworkVXLAN = "vxlan"
	NetworkLocal = "local"
)

// Device owners of ports, as Neutron names them; a server's port is
// owned by OwnerCompute and its availability zone ("compute:nova").
const (
	OwnerCompute         = "compute:"
	OwnerDHCP            = "network:dhcp"
	OwnerRouterInterface = "network:router_interface"
	OwnerRouterGateway   = "network:router_gateway"
	OwnerFloatingIP      = "network:floatingip"
)

// Statuses of networks, ports, routers and floating IPs, as Neutron's.
const (
	StatusActive = "ACTIVE"
	StatusDown   = "DOWN"
	StatusBuild  = "BUILD"
)

// Security group rule directions and ether types, as Neutron's.
const (
	Ingress = "ingress"
	Egress  = "egress"
	IPv4    = "IPv4"
	IPv6    = "IPv6"
)

// DefaultSecurityGroup is the name of the group every project has, made
// at its first use of networking: all egress, ingress only from the
// group's own members.
const DefaultSecurityGroup = "default"

// Standard are the attributes every networking resource has, as Neutron's
// standard-attr extensions define them: a description, tags, when it was
// made and last changed, and a revision that every change increments.
type Standard struct {
	Description string
	Tags        []string // each unique
	CreatedAt   time.Time
	UpdatedAt   time.Time
	Revision    int64
}

// Network is a layer-2 network: Neutron's network with its provider
// segment. A shared network is usable by every project; an external one
// holds floating IPs and routers' gateways.
type Network struct {
	ID           string
	Name         string
	ProjectID    string
	AdminStateUp bool
	Status       string
	Shared       bool
	External     bool // router:external
	// Type, PhysicalNetwork and SegmentationID are the provider segment:
	// a VLAN ID (1-4094) or VXLAN VNI; PhysicalNetwork names the hosts'
	// interface that flat and VLAN networks are on.
	Type            string
	PhysicalNetwork string
	SegmentationID  int
	MTU             int
	// PortSecurity is the default of the network's ports: with it, ports
	// are held to security groups and to their own addresses.
	PortSecurity bool
	Standard
}

// IPRange is an inclusive range of addresses, as an allocation pool.
type IPRange struct {
	Start netip.Addr
	End   netip.Addr
}

// HostRoute is a route a subnet gives its hosts.
type HostRoute struct {
	Destination netip.Prefix
	NextHop     netip.Addr
}

// Subnet is a block of addresses on a network, from whose allocation pools
// ports get their fixed IPs. Gateway is the zero Addr for a subnet without
// one.
type Subnet struct {
	ID              string
	Name            string
	ProjectID       string
	NetworkID       string
	IPVersion       int
	CIDR            netip.Prefix
	Gateway         netip.Addr
	AllocationPools []IPRange
	EnableDHCP      bool
	DNSNameservers  []netip.Addr
	HostRoutes      []HostRoute
	// IPv6RAMode and IPv6AddressMode are "" or one of the IPv6 modes,
	// for IPv6 subnets.
	IPv6RAMode      string
	IPv6AddressMode string
	Standard
}

// IPv6 modes of a subnet's router advertisements and addresses, as
// Neutron's ipv6_ra_mode and ipv6_address_mode name them.
const (
	IPv6SLAAC       = "slaac"
	DHCPv6Stateful  = "dhcpv6-stateful"
	DHCPv6Stateless = "dhcpv6-stateless"
)

// AutoAddress reports whether ports take their addresses on the subnet
// from their MACs (SLAAC's EUI-64 addresses) rather than from its pools:
// when either of its modes is SLAAC or stateless DHCPv6, as Neutron's
// is_auto_address_subnet has it.
func (s *Subnet) AutoAddress() bool {
	auto := func(mode string) bool { return mode == IPv6SLAAC || mode == DHCPv6Stateless }
	return auto(s.IPv6RAMode) || auto(s.IPv6AddressMode)
}

// FixedIP is one of a port's addresses.
type FixedIP struct {
	SubnetID string
	Address  netip.Addr
}

// AddressPair lets a port send from an address (or a block) and MAC other
// than its own; an empty MAC is the port's.
type AddressPair struct {
	IPAddress  string // an address or a CIDR
	MACAddress string
}

// Port is a virtual switch port on a network: a server's NIC, a router's
// interface or gateway, a DHCP server or a floating IP's address.
type Port struct {
	ID           string
	Name         string
	ProjectID    string
	NetworkID    string
	MACAddress   string
	AdminStateUp bool
	Status       string
	DeviceOwner  string
	DeviceID     string // the server, router or floating IP it belongs to
	FixedIPs     []FixedIP
	// SecurityGroups are the IDs of the groups the port is in.
	SecurityGroups      []string
	PortSecurity        bool
	AllowedAddressPairs []AddressPair
	// HostID is where the port is wired (binding:host_id), "" while it is
	// not; VNICType is binding:vnic_type ("normal").
	HostID   string
	VNICType string
	Standard
}

// RouterGateway is a router's side on an external network: the port it
// has there, and whether it translates its subnets' source addresses.
type RouterGateway struct {
	NetworkID  string
	EnableSNAT bool
	FixedIPs   []FixedIP
}

// Router forwards between the subnets it has interfaces on (ports owned
// by OwnerRouterInterface) and, through its gateway, an external network.
type Router struct {
	ID           string
	Name         string
	ProjectID    string
	AdminStateUp bool
	Status       string
	Gateway      *RouterGateway // nil for none
	Routes       []HostRoute
	Standard
}

// FloatingIP is an address of an external network that a router
// translates to a port's fixed address; unassociated while PortID is "".
type FloatingIP struct {
	ID           string
	ProjectID    string
	NetworkID    string // the external network
	Address      netip.Addr
	PortID       string
	FixedAddress netip.Addr
	RouterID     string
	Status       string
	Standard
}

// SecurityGroup is a set of rules that let traffic in and out of the
// ports in it; anything no rule lets through is dropped. A stateful group
// lets the replies of allowed connections back.
type SecurityGroup struct {
	ID        string
	Name      string
	ProjectID string
	Stateful  bool
	Rules     []SecurityGroupRule
	Standard
}

// SecurityGroupRule lets traffic through in one direction: of an ether
// type, a protocol ("" for any; a name such as "tcp" or a number), a
// range of destination ports (for ICMP the type and code), from or to a
// remote prefix or the members of a remote group (at most one of the
// two; neither is anywhere).
type SecurityGroupRule struct {
	ID              string
	SecurityGroupID string
	ProjectID       string
	Direction       string
	EtherType       string
	Protocol        string
	PortMin         *int // nil for any
	PortMax         *int
	RemoteIPPrefix  string
	RemoteGroupID   string
	Standard
}

// Networking quota resources, as Neutron names them.
const (
	QuotaNetwork           = "network"
	QuotaSubnet            = "subnet"
	QuotaPort              = "port"
	QuotaRouter            = "router"
	QuotaFloatingIP        = "floatingip"
	QuotaSecurityGroup     = "security_group"
	QuotaSecurityGroupRule = "security_group_rule"
)

// DefaultNetworkQuotas are Neutron's defaults; -1 means unlimited.
var DefaultNetworkQuotas = map[string]int{
	QuotaNetwork:           100,
	QuotaSubnet:            100,
	QuotaPort:              500,
	QuotaRouter:            10,
	QuotaFloatingIP:        50,
	QuotaSecurityGroup:     10,
	QuotaSecurityGroupRule: 100,
}

// NetworkFilter selects networks; empty fields match everything.
type NetworkFilter struct {
	IDs []string
	// VisibleTo keeps the networks a project may see: its own, shared and
	// external ones.
	VisibleTo string
	Shared    *bool
	External  *bool
}

// SubnetFilter selects subnets; empty fields match everything.
type SubnetFilter struct {
	IDs        []string
	NetworkIDs []string
	// VisibleTo keeps the subnets a project may see: its own and those of
	// networks it may see.
	VisibleTo string
}

// PortFilter selects ports; empty fields match everything.
type PortFilter struct {
	IDs         []string
	NetworkID   string
	DeviceIDs   []string
	DeviceOwner string
	HostID      string
	// SecurityGroupID keeps the ports in that group.
	SecurityGroupID string
	// VisibleTo keeps the ports a project may see: its own and those on
	// its networks.
	VisibleTo string
}

// AddressSpace is a subnet's allocated addresses as a store shows them to
// an Allocator, in the transaction that allocates one for a port.
type AddressSpace interface {
	// Take allocates an address to the port if it is free, and reports
	// whether it was.
	Take(addr netip.Addr) (bool, error)
	// All returns every allocated address of the subnet.
	All() ([]netip.Addr, error)
}

// Allocator chooses what a store allocates for a new port: an address of
// a subnet's allocation pools, which it takes in space (ok false when
// none is left), and MAC addresses.
type Allocator interface {
	Address(s *Subnet, space AddressSpace) (addr netip.Addr, ok bool, err error)
	MAC() string
}

// NewPorts are ports a store makes in the transaction that makes what
// owns them (new servers), each as it makes a port on its own: Alloc
// chooses their addresses, and Limit is the port quota of their project
// (-1 for none).
type NewPorts struct {
	Ports []*Port
	Alloc Allocator
	Limit int
}
