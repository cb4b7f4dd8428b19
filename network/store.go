package network

import (
	"context"

	"github.com/trustack/trustack"
)

// Store keeps networking state. What must hold across rows, whoever
// writes at the same time and from however many controllers, it checks
// in the transaction that writes: an address allocated once per subnet,
// subnets of a network that do not overlap, nor those a router has
// interfaces on, quotas, and nothing deleted while something uses it.
// Update methods read the row, change it with fn and write it back in one
// transaction, incrementing its revision; fn may not change the ID, and
// its error aborts the update as it is. Methods return ENOTFOUND for a
// missing ID.
//
// Errors that clients tell apart carry Neutron's error type as their
// reason (trustack.Error's Reason, named in parentheses below); quota
// limits are EOVERQUOTA (OverQuota).
type Store interface {
	// CreateNetwork adds a network; EOVERQUOTA if its project has limit
	// networks already (-1 for no limit), ECONFLICT (SegmentInUse) if
	// another network has the same segment: the same type, physical
	// network and segmentation ID for VLAN and VXLAN, the same physical
	// network for flat.
	CreateNetwork(ctx context.Context, n *trustack.Network, limit int) error
	Network(ctx context.Context, id string) (*trustack.Network, error)
	Networks(ctx context.Context, f trustack.NetworkFilter) ([]*trustack.Network, error)
	UpdateNetwork(ctx context.Context, id string, fn func(*trustack.Network) error) (*trustack.Network, error)
	// DeleteNetwork deletes a network with its subnets, its DHCP ports
	// and its floating IPs that are not associated; ECONFLICT
	// (NetworkInUse) while it has any other port.
	DeleteNetwork(ctx context.Context, id string) error
	// SegmentationIDs returns the segmentation IDs networks use on the
	// physical network of the type ("" for VXLAN).
	SegmentationIDs(ctx context.Context, typ, physicalNetwork string) ([]int, error)

	// CreateSubnet adds a subnet to its network; EINVALID (InvalidInput)
	// if its CIDR overlaps another subnet of the network, EOVERQUOTA if
	// the project has limit subnets.
	CreateSubnet(ctx context.Context, s *trustack.Subnet, limit int) error
	Subnet(ctx context.Context, id string) (*trustack.Subnet, error)
	Subnets(ctx context.Context, f trustack.SubnetFilter) ([]*trustack.Subnet, error)
	// UpdateSubnet is an update; ECONFLICT (IpAddressInUse) if fn moved
	// the gateway onto an address a port has. Addresses outside new
	// allocation pools stay allocated, as Neutron's.
	UpdateSubnet(ctx context.Context, id string, fn func(*trustack.Subnet) error) (*trustack.Subnet, error)
	// DeleteSubnet deletes a subnet, taking their addresses on it away
	// from DHCP ports and, on a subnet whose addresses are automatic
	// (trustack.Subnet's AutoAddress), from every port but a router's
	// interface; ECONFLICT (SubnetInUse) while any other port has an
	// address on it.
	DeleteSubnet(ctx context.Context, id string) error

	// CreatePort adds a port with its fixed IPs and security groups. A
	// fixed IP without an address gets one that alloc chooses among the
	// subnet's free ones, and an empty MAC one that alloc makes; an
	// address given must be free (ECONFLICT IpAddressInUse), and so must
	// the MAC on the network (ECONFLICT MacAddressInUse). No address
	// left gives ECONFLICT (IpAddressGenerationFailure). EOVERQUOTA if
	// the project has limit ports.
	CreatePort(ctx context.Context, p *trustack.Port, alloc trustack.Allocator, limit int) error
	Port(ctx context.Context, id string) (*trustack.Port, error)
	Ports(ctx context.Context, f trustack.PortFilter) ([]*trustack.Port, error)
	// DevicePhysicalNetworks returns the physical networks of the flat
	// and VLAN networks a device's ports are on, each once, sorted.
	DevicePhysicalNetworks(ctx context.Context, deviceID string) ([]string, error)
	// UpdatePort is an update in which the fixed IPs fn leaves are
	// allocated as CreatePort allocates them, and those it removed are
	// freed; a floating IP whose fixed address went away is disassociated.
	UpdatePort(ctx context.Context, id string, alloc trustack.Allocator, fn func(*trustack.Port) error) (*trustack.Port, error)
	// DeletePort deletes a port, freeing its addresses and disassociating
	// its floating IPs.
	DeletePort(ctx context.Context, id string) error

	// CreateSecurityGroup adds a group with its rules; EOVERQUOTA if the
	// project has limit groups, ECONFLICT if isDefault and the project
	// has its default group already.
	CreateSecurityGroup(ctx context.Context, g *trustack.SecurityGroup, isDefault bool, limit int) error
	SecurityGroup(ctx context.Context, id string) (*trustack.SecurityGroup, error)
	// SecurityGroups returns groups, with their rules, of a project ("" for
	// every project's) or those of ids (nil for any).
	SecurityGroups(ctx context.Context, projectID string, ids []string) ([]*trustack.SecurityGroup, error)
	// DefaultSecurityGroupID returns the ID of a project's default group,
	// or ENOTFOUND if it has none yet.
	DefaultSecurityGroupID(ctx context.Context, projectID string) (string, error)
	UpdateSecurityGroup(ctx context.Context, id string, fn func(*trustack.SecurityGroup) error) (*trustack.SecurityGroup, error)
	// DeleteSecurityGroup deletes a group and its rules; ECONFLICT
	// (SecurityGroupInUse) while a port is in it.
	DeleteSecurityGroup(ctx context.Context, id string) error
	// SecurityGroupMembers returns, by group, the addresses of the ports
	// in each group: their fixed IPs and their allowed address pairs'.
	SecurityGroupMembers(ctx context.Context, groupIDs []string) (map[string][]string, error)
	// SecurityGroupHosts returns, by group, the hosts the ports in each
	// group are bound to.
	SecurityGroupHosts(ctx context.Context, groupIDs []string) (map[string][]string, error)
	// CreateSecurityGroupRule adds a rule to its group; ECONFLICT
	// (SecurityGroupRuleExists) if the group has the same rule,
	// EOVERQUOTA if the project has limit rules.
	CreateSecurityGroupRule(ctx context.Context, r *trustack.SecurityGroupRule, limit int) error
	SecurityGroupRule(ctx context.Context, id string) (*trustack.SecurityGroupRule, error)
	// DeleteSecurityGroupRule deletes a rule and increments its group's
	// revision.
	DeleteSecurityGroupRule(ctx context.Context, id string) error

	// CreateRouter adds a router; with a gateway, its gateway port too,
	// allocated as CreatePort allocates. EOVERQUOTA if the project has
	// limit routers.
	CreateRouter(ctx context.Context, r *trustack.Router, gateway *trustack.Port, alloc trustack.Allocator, limit int) error
	Router(ctx context.Context, id string) (*trustack.Router, error)
	// Routers returns the routers of a project ("" for every project's) or
	// those of ids (nil for any).
	Routers(ctx context.Context, projectID string, ids []string) ([]*trustack.Router, error)
	// UpdateRouter is an update. If fn leaves the router without a
	// gateway, its gateway port is deleted; otherwise a gateway port
	// given replaces the one it has (allocated as CreatePort allocates),
	// and nil keeps it. ECONFLICT (RouterExternalGatewayInUseByFloatingIp)
	// if a floating IP goes through a gateway removed or replaced by one
	// on another network.
	UpdateRouter(ctx context.Context, id string, gateway *trustack.Port, alloc trustack.Allocator, fn func(*trustack.Router) error) (*trustack.Router, error)
	// DeleteRouter deletes a router and its gateway port; ECONFLICT
	// (RouterInUse) while it has interfaces.
	DeleteRouter(ctx context.Context, id string) error
	// AddRouterInterface gives a router an interface: p, a new port
	// (allocated as CreatePort allocates) when its ID is not stored yet,
	// or an existing port that no device owns, taken over. EINVALID
	// (BadRequest) if the port's subnet overlaps a subnet the router has
	// an interface on already, or is that subnet.
	AddRouterInterface(ctx context.Context, routerID string, p *trustack.Port, alloc trustack.Allocator) error
	// RemoveRouterInterface deletes a router's interface port; ECONFLICT
	// (RouterInterfaceInUseByFloatingIP) while a floating IP reaches a
	// port of its subnet through the router.
	RemoveRouterInterface(ctx context.Context, routerID, portID string) error

	// CreateFloatingIP adds a floating IP with its port on the external
	// network, allocated as CreatePort allocates (ECONFLICT
	// IpAddressGenerationFailure when the network has no address left);
	// EOVERQUOTA if the project has limit floating IPs. An associated one
	// must have a fixed address that no other floating IP has (ECONFLICT
	// FloatingIPPortAlreadyAssociated).
	CreateFloatingIP(ctx context.Context, f *trustack.FloatingIP, port *trustack.Port, alloc trustack.Allocator, limit int) error
	FloatingIP(ctx context.Context, id string) (*trustack.FloatingIP, error)
	// FloatingIPs returns the floating IPs of a project ("" for every
	// project's), or those associated with portIDs (nil for any).
	FloatingIPs(ctx context.Context, projectID string, portIDs []string) ([]*trustack.FloatingIP, error)
	// UpdateFloatingIP is an update, with the same check of the fixed
	// address as CreateFloatingIP's.
	UpdateFloatingIP(ctx context.Context, id string, fn func(*trustack.FloatingIP) error) (*trustack.FloatingIP, error)
	// DeleteFloatingIP deletes a floating IP and its port.
	DeleteFloatingIP(ctx context.Context, id string) error

	// NetworkQuotas returns a project's quota limits set apart from the
	// defaults, by resource.
	NetworkQuotas(ctx context.Context, projectID string) (map[string]int, error)
	// AllNetworkQuotas returns every project's limits set apart from the
	// defaults, by project.
	AllNetworkQuotas(ctx context.Context) (map[string]map[string]int, error)
	SetNetworkQuotas(ctx context.Context, projectID string, limits map[string]int) error
	DeleteNetworkQuotas(ctx context.Context, projectID string) error
	// NetworkUsage counts a project's networks, subnets, ports, routers,
	// floating IPs, security groups and rules, by quota resource.
	NetworkUsage(ctx context.Context, projectID string) (map[string]int, error)

	// Hosts returns every compute host, for the network nodes among them.
	Hosts(ctx context.Context) ([]*trustack.Host, error)
}
