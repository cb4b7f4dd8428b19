package network_test

import (
	"maps"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/trustack/trustack/internal/apitest"
)

// Neutron's attributes of each resource, as ML2 with these extensions
// renders them to an administrator.
var (
	networkKeys = []string{"admin_state_up", "availability_zone_hints", "availability_zones", "created_at", "description", "id",
		"ipv4_address_scope", "ipv6_address_scope", "mtu", "name", "port_security_enabled", "project_id", "provider:network_type",
		"provider:physical_network", "provider:segmentation_id", "revision_number", "router:external", "shared", "status",
		"subnets", "tags", "tenant_id", "updated_at"}
	subnetKeys = []string{"allocation_pools", "cidr", "created_at", "description", "dns_nameservers", "enable_dhcp", "gateway_ip",
		"host_routes", "id", "ip_version", "ipv6_address_mode", "ipv6_ra_mode", "name", "network_id", "project_id",
		"revision_number", "subnetpool_id", "tags", "tenant_id", "updated_at"}
	portKeys = []string{"admin_state_up", "allowed_address_pairs", "binding:host_id", "binding:profile", "binding:vif_details",
		"binding:vif_type", "binding:vnic_type", "created_at", "description", "device_id", "device_owner", "extra_dhcp_opts",
		"fixed_ips", "id", "mac_address", "name", "network_id", "port_security_enabled", "project_id", "revision_number",
		"security_groups", "status", "tags", "tenant_id", "updated_at"}
	routerKeys = []string{"admin_state_up", "created_at", "description", "external_gateway_info", "id", "name", "project_id",
		"revision_number", "routes", "status", "tags", "tenant_id", "updated_at"}
	floatingIPKeys = []string{"created_at", "description", "fixed_ip_address", "floating_ip_address", "floating_network_id", "id",
		"port_id", "project_id", "revision_number", "router_id", "status", "tags", "tenant_id", "updated_at"}
	groupKeys = []string{"created_at", "description", "id", "name", "project_id", "revision_number", "security_group_rules",
		"stateful", "tags", "tenant_id", "updated_at"}
	ruleKeys = []string{"created_at", "description", "direction", "ethertype", "id", "port_range_max", "port_range_min",
		"project_id", "protocol", "remote_group_id", "remote_ip_prefix", "revision_number", "security_group_id", "tenant_id",
		"updated_at"}
)

// without returns keys less some.
func without(keys []string, some ...string) []string {
	return slices.DeleteFunc(slices.Clone(keys), func(k string) bool { return slices.Contains(some, k) })
}

var iso8601 = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)

// checkShape checks that o has exactly keys, its timestamps in ISO 8601
// with Z and its owner in both tenant_id and project_id, and that
// showing it gives the same.
func (s *server) checkShape(t *testing.T, token, path string, o obj, keys []string) {
	t.Helper()
	if got := slices.Sorted(maps.Keys(o)); !slices.Equal(got, keys) {
		t.Errorf("%s: keys\n%v, want\n%v", path, got, keys)
	}
	for _, k := range []string{"created_at", "updated_at"} {
		if _, ok := o[k]; ok && !iso8601.MatchString(o[k].(string)) {
			t.Errorf("%s: %s = %v, want ISO 8601 with Z", path, k, o[k])
		}
	}
	if o["tenant_id"] != o["project_id"] {
		t.Errorf("%s: tenant_id %v, project_id %v", path, o["tenant_id"], o["project_id"])
	}
	key := strings.TrimSuffix(strings.ReplaceAll(strings.Split(strings.TrimPrefix(path, "/network/v2.0/"), "/")[0], "-", "_"), "s")
	if shown := s.must(t, http.StatusOK, token, "GET", path, nil)[key]; !reflect.DeepEqual(shown, o) {
		t.Errorf("%s: shown\n%v, created\n%v", path, shown, o)
	}
}

// want checks attributes of o.
func want(t *testing.T, what string, o obj, attrs obj) {
	t.Helper()
	for k, v := range attrs {
		if !reflect.DeepEqual(o[k], v) {
			t.Errorf("%s: %s = %#v, want %#v", what, k, o[k], v)
		}
	}
}

func TestRendering(t *testing.T) {
	s := newServer(t)
	w := s.world(t)

	net := s.create(t, "admin", "networks", "network", obj{"name": "vlan", "provider:network_type": "vlan",
		"provider:physical_network": "physnet1", "provider:segmentation_id": 150, "tags": []string{"blue"}, "description": "d"})
	s.checkShape(t, "admin", "/network/v2.0/networks/"+net["id"].(string), net, networkKeys)
	want(t, "VLAN network", net, obj{"provider:network_type": "vlan", "provider:physical_network": "physnet1",
		"provider:segmentation_id": 150.0, "mtu": 1500.0, "shared": false, "router:external": false, "status": "ACTIVE",
		"subnets": []any{}, "tags": []any{"blue"}, "description": "d", "revision_number": 1.0, "ipv4_address_scope": nil,
		"availability_zones": []any{}, "port_security_enabled": true, "admin_state_up": true})

	mine := s.must(t, http.StatusOK, "alice", "GET", "/network/v2.0/networks/"+w.alice, nil)["network"].(obj)
	s.checkShape(t, "alice", "/network/v2.0/networks/"+w.alice, mine,
		without(networkKeys, "provider:network_type", "provider:physical_network", "provider:segmentation_id"))
	want(t, "alice's network", mine, obj{"subnets": []any{w.aliceSubnet}, "mtu": 1450.0, "tenant_id": apitest.P1})

	subnet := s.create(t, "alice", "subnets", "subnet", obj{"network_id": w.alice, "cidr": "10.2.0.0/24", "ip_version": 4,
		"gateway_ip": nil, "dns_nameservers": []string{"8.8.8.8"}, "host_routes": []obj{{"destination": "10.20.0.0/32", "nexthop": "10.2.0.2"}}})
	s.checkShape(t, "alice", "/network/v2.0/subnets/"+subnet["id"].(string), subnet, subnetKeys)
	want(t, "subnet without a gateway", subnet, obj{"gateway_ip": nil, "subnetpool_id": nil, "ipv6_ra_mode": nil,
		"ipv6_address_mode": nil, "enable_dhcp": true, "cidr": "10.2.0.0/24", "ip_version": 4.0,
		"allocation_pools": []any{obj{"start": "10.2.0.1", "end": "10.2.0.254"}}, "dns_nameservers": []any{"8.8.8.8"},
		"host_routes": []any{obj{"destination": "10.20.0.0/32", "nexthop": "10.2.0.2"}}})
	v6 := s.create(t, "alice", "subnets", "subnet", obj{"network_id": w.alice, "cidr": "2001:db8::/64", "ip_version": 6,
		"ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac"})
	want(t, "SLAAC subnet", v6, obj{"gateway_ip": "2001:db8::1", "ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac"})

	port := s.create(t, "admin", "ports", "port", obj{"network_id": w.alice, "name": "p",
		"allowed_address_pairs": []obj{{"ip_address": "10.1.0.100"}}, "fixed_ips": []obj{{"subnet_id": w.aliceSubnet}}})
	path := "/network/v2.0/ports/" + port["id"].(string)
	s.checkShape(t, "admin", path, port, portKeys)
	want(t, "unbound port", port, obj{"binding:vif_type": "unbound", "binding:vif_details": obj{}, "binding:host_id": "",
		"binding:profile": obj{}, "binding:vnic_type": "normal", "extra_dhcp_opts": []any{}, "status": "DOWN", "tenant_id": apitest.AdminProject,
		"allowed_address_pairs": []any{obj{"ip_address": "10.1.0.100", "mac_address": port["mac_address"]}}})
	if ips := port["fixed_ips"].([]any); len(ips) == 0 || ips[0].(obj)["subnet_id"] != w.aliceSubnet {
		t.Errorf("port's fixed IPs %v, want one on the subnet asked for", ips)
	}
	bound := s.must(t, http.StatusOK, "admin", "PUT", path, obj{"port": obj{"binding:host_id": "compute-1"}})["port"].(obj)
	want(t, "bound port", bound, obj{"binding:vif_type": "ovs", "binding:vif_details": obj{"port_filter": true},
		"binding:host_id": "compute-1", "revision_number": 2.0})
	asMember := s.must(t, http.StatusOK, "alice", "GET", path, nil)["port"].(obj)
	if got, keys := slices.Sorted(maps.Keys(asMember)), without(portKeys, "binding:host_id", "binding:profile", "binding:vif_details", "binding:vif_type"); !slices.Equal(got, keys) {
		t.Errorf("a member sees the port's\n%v, want\n%v", got, keys)
	}

	router := s.create(t, "alice", "routers", "router", obj{"name": "r", "external_gateway_info": obj{"network_id": w.external}})
	s.checkShape(t, "alice", "/network/v2.0/routers/"+router["id"].(string), router, routerKeys)
	gw := router["external_gateway_info"].(obj)
	if ips := gw["external_fixed_ips"].([]any); len(ips) != 1 || ips[0].(obj)["subnet_id"] != w.extSubnet || gw["enable_snat"] != true || gw["network_id"] != w.external {
		t.Errorf("router's gateway %v, want SNAT and one address on %s", gw, w.extSubnet)
	}
	bare := s.create(t, "alice", "routers", "router", obj{"name": "bare", "external_gateway_info": obj{}})
	want(t, "router without a gateway", bare, obj{"external_gateway_info": nil, "routes": []any{}})
	info := s.must(t, http.StatusOK, "alice", "PUT", "/network/v2.0/routers/"+router["id"].(string)+"/add_router_interface", obj{"subnet_id": w.aliceSubnet})
	if got := slices.Sorted(maps.Keys(info)); !slices.Equal(got, []string{"id", "network_id", "port_id", "project_id", "subnet_id", "subnet_ids", "tenant_id"}) {
		t.Errorf("interface info keys %v", got)
	}
	want(t, "interface info", info, obj{"id": router["id"], "subnet_id": w.aliceSubnet, "subnet_ids": []any{w.aliceSubnet}, "network_id": w.alice, "tenant_id": apitest.P1})
	iface := s.must(t, http.StatusOK, "alice", "GET", "/network/v2.0/ports/"+info["port_id"].(string), nil)["port"].(obj)
	want(t, "interface port", iface, obj{"device_owner": "network:router_interface", "device_id": router["id"],
		"fixed_ips": []any{obj{"subnet_id": w.aliceSubnet, "ip_address": "10.1.0.1"}}})

	fip := s.create(t, "alice", "floatingips", "floatingip", obj{"floating_network_id": w.external})
	s.checkShape(t, "alice", "/network/v2.0/floatingips/"+fip["id"].(string), fip, floatingIPKeys)
	want(t, "floating IP", fip, obj{"port_id": nil, "fixed_ip_address": nil, "router_id": nil, "status": "DOWN", "floating_network_id": w.external})
	vm := s.create(t, "alice", "ports", "port", obj{"network_id": w.alice})
	vmIP := vm["fixed_ips"].([]any)[0].(obj)["ip_address"]
	fip = s.must(t, http.StatusOK, "alice", "PUT", "/network/v2.0/floatingips/"+fip["id"].(string), obj{"floatingip": obj{"port_id": vm["id"]}})["floatingip"].(obj)
	want(t, "associated floating IP", fip, obj{"port_id": vm["id"], "fixed_ip_address": vmIP, "router_id": router["id"], "status": "ACTIVE"})
	fip = s.must(t, http.StatusOK, "alice", "PUT", "/network/v2.0/floatingips/"+fip["id"].(string), obj{"floatingip": obj{"port_id": nil}})["floatingip"].(obj)
	want(t, "disassociated floating IP", fip, obj{"port_id": nil, "fixed_ip_address": nil, "router_id": nil})

	group := s.create(t, "alice", "security-groups", "security_group", obj{"name": "web", "description": "http"})
	s.checkShape(t, "alice", "/network/v2.0/security-groups/"+group["id"].(string), group, groupKeys)
	want(t, "security group", group, obj{"stateful": true, "name": "web", "description": "http"})
	for _, r := range group["security_group_rules"].([]any) {
		want(t, "a new group's rule", r.(obj), obj{"direction": "egress", "protocol": nil, "remote_ip_prefix": nil, "remote_group_id": nil})
	}
	rule := s.create(t, "alice", "security-group-rules", "security_group_rule", obj{"security_group_id": group["id"], "direction": "ingress",
		"protocol": 17, "port_range_min": 53, "port_range_max": nil, "remote_ip_prefix": "10.0.0.0/8", "remote_group_id": nil})
	s.checkShape(t, "alice", "/network/v2.0/security-group-rules/"+rule["id"].(string), rule, ruleKeys)
	want(t, "UDP rule", rule, obj{"protocol": "17", "port_range_min": 53.0, "port_range_max": 53.0, "ethertype": "IPv4",
		"remote_ip_prefix": "10.0.0.0/8", "remote_group_id": nil, "security_group_id": group["id"]})
	icmp := s.create(t, "alice", "security-group-rules", "security_group_rule", obj{"security_group_id": group["id"], "direction": "ingress",
		"protocol": "icmp", "port_range_min": 11, "port_range_max": nil})
	want(t, "ICMP rule of a type", icmp, obj{"protocol": "icmp", "port_range_min": 11.0, "port_range_max": nil})
}

// TestDiscovery checks version discovery and the extensions: exactly
// what trustack implements, each shown as listed.
func TestDiscovery(t *testing.T) {
	s := newServer(t)
	for _, path := range []string{"/network", "/network/"} {
		v := s.must(t, http.StatusOK, "", "GET", path, nil)["versions"].([]any)
		if len(v) != 1 || v[0].(obj)["id"] != "v2.0" || v[0].(obj)["status"] != "CURRENT" || v[0].(obj)["links"].([]any)[0].(obj)["href"] != s.URL+"/network/v2.0/" {
			t.Errorf("GET %s: versions %v, want v2.0, CURRENT, at %s/network/v2.0/", path, v, s.URL)
		}
	}
	var names []string
	for _, r := range s.must(t, http.StatusOK, "alice", "GET", "/network/v2.0/", nil)["resources"].([]any) {
		names = append(names, r.(obj)["name"].(string))
	}
	if !slices.Equal(names, []string{"network", "subnet", "port"}) {
		t.Errorf("v2.0 resources %v, want network, subnet and port", names)
	}
	var aliases []string
	for _, e := range s.must(t, http.StatusOK, "alice", "GET", "/network/v2.0/extensions", nil)["extensions"].([]any) {
		e := e.(obj)
		aliases = append(aliases, e["alias"].(string))
		if shown := s.must(t, http.StatusOK, "alice", "GET", "/network/v2.0/extensions/"+e["alias"].(string), nil)["extension"]; !reflect.DeepEqual(shown, any(e)) {
			t.Errorf("extension %s shown as %v, listed as %v", e["alias"], shown, e)
		}
		for _, k := range []string{"name", "description", "updated"} {
			if e[k] == "" {
				t.Errorf("extension %s has no %s", e["alias"], k)
			}
		}
	}
	for _, must := range []string{"external-net", "router", "extraroute", "ext-gw-mode", "security-group", "port-security",
		"allowed-address-pairs", "binding", "provider", "net-mtu", "net-mtu-writable", "quotas", "quota_details",
		"standard-attr-description", "standard-attr-timestamp", "standard-attr-revisions", "standard-attr-tag", "project-id",
		"pagination", "sorting", "filter-validation", "ip-substring-filtering"} {
		if !slices.Contains(aliases, must) {
			t.Errorf("extension %s is not listed", must)
		}
	}
	for _, not := range []string{"subnet_allocation", "dhcp_agent_scheduler", "availability_zone", "network_availability_zone",
		"extra_dhcp_opt", "fip-port-details", "address-scope", "agent", "dvr", "l3-ha", "metering", "qos", "trunk", "dns-integration"} {
		if slices.Contains(aliases, not) {
			t.Errorf("extension %s is listed, but trustack does not implement it", not)
		}
	}
}
