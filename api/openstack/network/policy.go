package network

import (
	"strings"

	"github.com/trustack/trustack/policy"
)

// Neutron's check strings (neutron/conf/policies/base.py), from which its
// rules are made.
const (
	adminOnly             = "rule:admin_only"
	admin                 = "(" + adminOnly + ")"
	advsvc                = "rule:context_is_advsvc"
	projectMember         = "(role:member and project_id:%(project_id)s)"
	projectReader         = "(role:reader and project_id:%(project_id)s)"
	netOwnerMember        = "(role:member and rule:network_owner)"
	adminOrProjectMember  = admin + " or " + projectMember
	adminOrProjectReader  = admin + " or " + projectReader
	adminOrNetOwnerMember = admin + " or " + netOwnerMember
)

// or is Neutron's policy_or.
func or(checks ...string) string { return strings.Join(checks, " or ") }

// Policy returns the network API's default rules: Neutron's defaults of
// release 2024.1 (neutron/conf/policies: base, network, subnet, port,
// router, floatingip, security_group, quotas), those of the attributes
// and operations trustack implements, so that a Neutron policy file
// means the same here. Targets carry a resource's attributes (project_id
// and tenant_id its owner, booleans as True and False), and
// network:tenant_id and shared for a subnet's or a port's network, and
// security_group:tenant_id for a rule's group.
func Policy() []policy.Rule {
	owned := func(resource, create, get, update, del string) []policy.Rule {
		return []policy.Rule{
			{Name: "create_" + resource, Check: create, Description: "Create a " + resource},
			{Name: "get_" + resource, Check: get, Description: "Get a " + resource},
			{Name: "update_" + resource, Check: update, Description: "Update a " + resource},
			{Name: "delete_" + resource, Check: del, Description: "Delete a " + resource},
		}
	}
	forAdmins := func(names ...string) []policy.Rule {
		out := make([]policy.Rule, len(names))
		for i, n := range names {
			_, attr, _ := strings.Cut(n, ":")
			out[i] = policy.Rule{Name: n, Check: adminOnly, Description: "Set or see " + attr}
		}
		return out
	}
	portNetOwner := or(advsvc, admin, netOwnerMember)
	rules := []policy.Rule{
		{Name: "context_is_admin", Check: "role:admin", Description: "Rule for cloud admin access"},
		{Name: "context_is_advsvc", Check: "role:advsvc", Description: "Rule for advsvc role access"},
		{Name: "admin_only", Check: "rule:context_is_admin", Description: "Rule for admin-only access"},
		{Name: "regular_user", Check: "", Description: "Rule for regular user access"},
		{Name: "network_owner", Check: "tenant_id:%(network:tenant_id)s", Description: "Rule for network owner access"},
		{Name: "sg_owner", Check: "tenant_id:%(security_group:tenant_id)s", Description: "Rule for security group owner access"},
		{Name: "shared", Check: "field:networks:shared=True", Description: "Rule of shared network"},
		{Name: "external", Check: "field:networks:router:external=True", Description: "Definition of an external network"},
		{Name: "network_device", Check: "field:port:device_owner=~^network:", Description: "Definition of port with network device_owner"},

		{Name: "create_network:port_security_enabled", Check: adminOrProjectMember, Description: "Specify port_security_enabled when creating a network"},
		{Name: "update_network:port_security_enabled", Check: adminOrProjectMember, Description: "Update port_security_enabled of a network"},
		{Name: "get_network:router:external", Check: "rule:regular_user", Description: "Get router:external of a network"},

		{Name: "create_port:device_owner", Check: or("not rule:network_device", advsvc, admin, netOwnerMember), Description: "Specify device_owner when creating a port"},
		{Name: "update_port:device_owner", Check: or("not rule:network_device", advsvc, netOwnerMember, admin), Description: "Update device_owner of a port"},
		{Name: "create_port:mac_address", Check: portNetOwner, Description: "Specify mac_address when creating a port"},
		{Name: "update_port:mac_address", Check: or(admin, advsvc), Description: "Update mac_address of a port"},
		{Name: "create_port:fixed_ips", Check: or(portNetOwner, "rule:shared"), Description: "Specify fixed_ips when creating a port"},
		{Name: "create_port:fixed_ips:ip_address", Check: portNetOwner, Description: "Specify an IP address in fixed_ips when creating a port"},
		{Name: "create_port:fixed_ips:subnet_id", Check: or(portNetOwner, "rule:shared"), Description: "Specify a subnet in fixed_ips when creating a port"},
		{Name: "update_port:fixed_ips", Check: portNetOwner, Description: "Specify fixed_ips when updating a port"},
		{Name: "update_port:fixed_ips:ip_address", Check: portNetOwner, Description: "Specify an IP address in fixed_ips when updating a port"},
		{Name: "update_port:fixed_ips:subnet_id", Check: or(portNetOwner, "rule:shared"), Description: "Specify a subnet in fixed_ips when updating a port"},
		{Name: "create_port:port_security_enabled", Check: portNetOwner, Description: "Specify port_security_enabled when creating a port"},
		{Name: "update_port:port_security_enabled", Check: portNetOwner, Description: "Update port_security_enabled of a port"},
		{Name: "create_port:binding:vnic_type", Check: adminOrProjectMember, Description: "Specify binding:vnic_type when creating a port"},
		{Name: "update_port:binding:vnic_type", Check: or(admin, projectMember, advsvc), Description: "Update binding:vnic_type of a port"},
		{Name: "create_port:allowed_address_pairs", Check: adminOrNetOwnerMember, Description: "Specify allowed_address_pairs when creating a port"},
		{Name: "create_port:allowed_address_pairs:mac_address", Check: adminOrNetOwnerMember, Description: "Specify a MAC address in allowed_address_pairs when creating a port"},
		{Name: "create_port:allowed_address_pairs:ip_address", Check: adminOrNetOwnerMember, Description: "Specify an IP address in allowed_address_pairs when creating a port"},
		{Name: "update_port:allowed_address_pairs", Check: adminOrNetOwnerMember, Description: "Update allowed_address_pairs of a port"},
		{Name: "update_port:allowed_address_pairs:mac_address", Check: adminOrNetOwnerMember, Description: "Update a MAC address in allowed_address_pairs of a port"},
		{Name: "update_port:allowed_address_pairs:ip_address", Check: adminOrNetOwnerMember, Description: "Update an IP address in allowed_address_pairs of a port"},

		{Name: "create_router:external_gateway_info", Check: adminOrProjectMember, Description: "Specify external_gateway_info when creating a router"},
		{Name: "create_router:external_gateway_info:network_id", Check: adminOrProjectMember, Description: "Specify the gateway's network when creating a router"},
		{Name: "update_router:external_gateway_info", Check: adminOrProjectMember, Description: "Update external_gateway_info of a router"},
		{Name: "update_router:external_gateway_info:network_id", Check: adminOrProjectMember, Description: "Update the gateway's network of a router"},
		{Name: "add_router_interface", Check: adminOrProjectMember, Description: "Add an interface to a router"},
		{Name: "remove_router_interface", Check: adminOrProjectMember, Description: "Remove an interface from a router"},

		{Name: "get_quota", Check: adminOrProjectReader, Description: "Get a project's quotas"},
		{Name: "update_quota", Check: adminOnly, Description: "Update a project's quotas"},
		{Name: "delete_quota", Check: adminOnly, Description: "Reset a project's quotas to the defaults"},
	}
	get := or(adminOrProjectReader, "rule:shared", "rule:external", advsvc)
	rules = append(rules, owned("network", adminOrProjectMember, get, adminOrProjectMember, adminOrProjectMember)...)
	rules = append(rules, owned("subnet", adminOrNetOwnerMember, or(adminOrProjectReader, "rule:shared"), adminOrNetOwnerMember, adminOrNetOwnerMember)...)
	rules = append(rules, owned("port", adminOrProjectMember, or(advsvc, admin, projectReader, "(role:reader and rule:network_owner)"),
		or(admin, projectMember, advsvc), or(advsvc, admin, projectMember, netOwnerMember))...)
	rules = append(rules, owned("router", adminOrProjectMember, adminOrProjectReader, adminOrProjectMember, adminOrProjectMember)...)
	rules = append(rules, owned("floatingip", adminOrProjectMember, adminOrProjectReader, adminOrProjectMember, adminOrProjectMember)...)
	rules = append(rules, owned("security_group", adminOrProjectMember, adminOrProjectReader, adminOrProjectMember, adminOrProjectMember)...)
	rules = append(rules,
		policy.Rule{Name: "create_security_group_rule", Check: adminOrProjectMember, Description: "Create a security group rule"},
		policy.Rule{Name: "get_security_group_rule", Check: or(adminOrProjectReader, "(role:reader and rule:sg_owner)"), Description: "Get a security group rule"},
		policy.Rule{Name: "delete_security_group_rule", Check: or(adminOrProjectMember, "(role:member and rule:sg_owner)"), Description: "Delete a security group rule"},
	)
	return append(rules, forAdmins(
		"create_network:shared", "create_network:router:external",
		"create_network:provider:network_type", "create_network:provider:physical_network", "create_network:provider:segmentation_id",
		"get_network:provider:network_type", "get_network:provider:physical_network", "get_network:provider:segmentation_id",
		"update_network:shared", "update_network:router:external",
		"update_network:provider:network_type", "update_network:provider:physical_network", "update_network:provider:segmentation_id",
		"create_port:binding:host_id", "create_port:binding:profile", "update_port:binding:host_id", "update_port:binding:profile",
		"get_port:binding:vif_type", "get_port:binding:vif_details", "get_port:binding:host_id", "get_port:binding:profile",
		"create_router:external_gateway_info:enable_snat", "create_router:external_gateway_info:external_fixed_ips",
		"update_router:external_gateway_info:enable_snat", "update_router:external_gateway_info:external_fixed_ips",
		"create_floatingip:floating_ip_address",
	)...)
}
