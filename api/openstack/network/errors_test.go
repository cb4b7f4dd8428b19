package network_test

import (
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/trustack/trustack/internal/apitest"
)

// TestBadRequests checks that each malformed or forbidden request gets
// Neutron's status and error body, with the type clients and Tempest
// match on, and changes nothing.
func TestBadRequests(t *testing.T) {
	s := newServer(t)
	w := s.world(t)
	router := s.create(t, "bob", "routers", "router", obj{"name": "bob-router"})["id"].(string)
	port := s.create(t, "alice", "ports", "port", obj{"network_id": w.alice})["id"].(string)
	group := s.create(t, "alice", "security-groups", "security_group", obj{"name": "web"})["id"].(string)
	fip := s.create(t, "alice", "floatingips", "floatingip", obj{"floating_network_id": w.external})["id"].(string)
	const missing = "0d9d3a8e-6b5c-4f0e-9f4a-1c2b3d4e5f60"
	tests := []struct {
		name, token, method, path string
		body                      any
		status                    int
		typ                       string
		message                   string // a part of it
	}{
		{"malformed JSON", "alice", "POST", "/networks", `{"network": `, 400, "HTTPBadRequest", "Malformed request body"},
		{"no resource in the body", "alice", "POST", "/networks", obj{"net": obj{}}, 400, "HTTPBadRequest", "Unable to find 'network' in request body"},
		{"unknown attribute", "alice", "POST", "/networks", obj{"network": obj{"name": "n", "colour": "red"}}, 400, "HTTPBadRequest", "Unrecognized attribute(s) 'colour'"},
		{"wrong type", "alice", "POST", "/networks", obj{"network": obj{"name": 1}}, 400, "HTTPBadRequest", "Invalid input for name. Reason: '1' is not a valid string."},
		{"not a boolean", "alice", "POST", "/networks", obj{"network": obj{"admin_state_up": "maybe"}}, 400, "InvalidInput", "'maybe' cannot be converted to boolean"},
		{"name too long", "alice", "POST", "/networks", obj{"network": obj{"name": strings.Repeat("n", 256)}}, 400, "HTTPBadRequest", "exceeds maximum length of 255"},
		{"read-only attribute on create", "alice", "POST", "/networks", obj{"network": obj{"status": "DOWN"}}, 400, "HTTPBadRequest", "Attribute 'status' not allowed in POST"},
		{"read-only attribute on update", "alice", "PUT", "/subnets/" + w.aliceSubnet, obj{"subnet": obj{"cidr": "10.9.0.0/24"}}, 400, "HTTPBadRequest", "Cannot update read-only attribute cidr"},
		{"routes on create", "alice", "POST", "/routers", obj{"router": obj{"routes": []obj{}}}, 400, "HTTPBadRequest", "Attribute 'routes' not allowed in POST"},
		{"missing CIDR", "alice", "POST", "/subnets", obj{"subnet": obj{"network_id": w.alice, "ip_version": 4}}, 400, "HTTPBadRequest", "Required attribute 'cidr' not specified"},
		{"bad CIDR", "alice", "POST", "/subnets", obj{"subnet": obj{"network_id": w.alice, "ip_version": 4, "cidr": "10.0.0.0/33"}}, 400, "HTTPBadRequest", "Invalid input for cidr. Reason: '10.0.0.0/33' is not a valid IP subnet."},
		{"CIDR with host bits", "alice", "POST", "/subnets", obj{"subnet": obj{"network_id": w.alice, "ip_version": 4, "cidr": "10.2.0.1/24"}}, 400, "BadRequest", "'10.2.0.0/24' is recommended"},
		{"overlapping CIDR", "alice", "POST", "/subnets", obj{"subnet": obj{"network_id": w.alice, "ip_version": 4, "cidr": "10.1.0.0/25"}}, 400, "InvalidInput", "overlaps with another subnet"},
		{"bad IP version", "alice", "POST", "/subnets", obj{"subnet": obj{"network_id": w.alice, "ip_version": 5, "cidr": "10.2.0.0/24"}}, 400, "HTTPBadRequest", "Invalid input for ip_version. Reason: 5 is not in [4, 6]."},
		{"bad gateway", "alice", "POST", "/subnets", obj{"subnet": obj{"network_id": w.alice, "ip_version": 4, "cidr": "10.2.0.0/24", "gateway_ip": "10.2.0.300"}}, 400, "HTTPBadRequest", "'10.2.0.300' is not a valid IP address"},
		{"bad allocation pool", "alice", "POST", "/subnets", obj{"subnet": obj{"network_id": w.alice, "ip_version": 4, "cidr": "10.2.0.0/24", "allocation_pools": []obj{{"start": "10.2.0.5"}}}}, 400, "HTTPBadRequest", "Invalid data format for IP pool"},
		{"pool outside the subnet", "alice", "POST", "/subnets", obj{"subnet": obj{"network_id": w.alice, "ip_version": 4, "cidr": "10.2.0.0/24", "allocation_pools": []obj{{"start": "10.3.0.5", "end": "10.3.0.9"}}}}, 400, "OutOfBoundsAllocationPool", "spans beyond the subnet cidr"},
		{"bad name server", "alice", "POST", "/subnets", obj{"subnet": obj{"network_id": w.alice, "ip_version": 4, "cidr": "10.2.0.0/24", "dns_nameservers": []string{"dns.example"}}}, 400, "HTTPBadRequest", "'dns.example' is not a valid nameserver"},
		{"network ID that is no UUID", "alice", "POST", "/ports", obj{"port": obj{"network_id": "private"}}, 400, "HTTPBadRequest", "Invalid input for network_id. Reason: 'private' is not a valid UUID."},
		{"port on a network that does not exist", "alice", "POST", "/ports", obj{"port": obj{"network_id": missing}}, 404, "NetworkNotFound", "Network " + missing + " could not be found."},
		{"bad MAC", "alice", "POST", "/ports", obj{"port": obj{"network_id": w.alice, "mac_address": "fa:16:3e:zz:00:01"}}, 400, "BadRequest", "is not a valid MAC address"},
		{"bad fixed IP", "alice", "POST", "/ports", obj{"port": obj{"network_id": w.alice, "fixed_ips": []obj{{"ip_address": "10.1.0.999"}}}}, 400, "HTTPBadRequest", "'10.1.0.999' is not a valid IP address"},
		{"fixed IP of another subnet", "alice", "POST", "/ports", obj{"port": obj{"network_id": w.alice, "fixed_ips": []obj{{"subnet_id": w.aliceSubnet, "ip_address": "10.7.0.5"}}}}, 400, "InvalidIpForSubnet", "is not a valid IP for the specified subnet"},
		{"binding profile", "admin", "POST", "/ports", obj{"port": obj{"network_id": w.alice, "binding:profile": obj{"pci_slot": "0000:00:01.0"}}}, 400, "HTTPBadRequest", "Invalid input for binding:profile"},
		{"gateway without a network", "alice", "POST", "/routers", obj{"router": obj{"external_gateway_info": obj{"enable_snat": true}}}, 400, "HTTPBadRequest", "Validation of dictionary's keys failed"},
		{"gateway on a network that is not external", "alice", "POST", "/routers", obj{"router": obj{"external_gateway_info": obj{"network_id": w.alice}}}, 400, "BadRequest", "is not an external network"},
		{"interface by a bad ID", "bob", "PUT", "/routers/" + router + "/add_router_interface", obj{"subnet_id": "sub"}, 400, "BadRequest", "Bad router request: 'sub' is not a valid UUID."},
		{"interface without subnet or port", "bob", "PUT", "/routers/" + router + "/add_router_interface", obj{}, 400, "BadRequest", "Either subnet_id or port_id must be specified"},
		{"fixed address without a port", "alice", "PUT", "/floatingips/" + fip, obj{"floatingip": obj{"fixed_ip_address": "10.1.0.5"}}, 400, "BadRequest", "fixed_ip_address cannot be specified without a port_id"},
		{"floating IP on a network that is not external", "alice", "POST", "/floatingips", obj{"floatingip": obj{"floating_network_id": w.alice}}, 400, "BadRequest", "is not a valid external network"},
		{"bad protocol", "alice", "POST", "/security-group-rules", obj{"security_group_rule": obj{"security_group_id": group, "direction": "ingress", "protocol": "bad_protocol_name"}}, 400, "SecurityGroupRuleInvalidProtocol", "protocol bad_protocol_name not supported"},
		{"bad port", "alice", "POST", "/security-group-rules", obj{"security_group_rule": obj{"security_group_id": group, "direction": "ingress", "protocol": "tcp", "port_range_min": -16, "port_range_max": 80}}, 400, "SecurityGroupInvalidPortValue", "Invalid value for port -16"},
		{"port range upside down", "alice", "POST", "/security-group-rules", obj{"security_group_rule": obj{"security_group_id": group, "direction": "ingress", "protocol": "tcp", "port_range_min": 80, "port_range_max": 79}}, 400, "SecurityGroupInvalidPortRange", "port_range_min must be <= port_range_max"},
		{"remote prefix of another ether type", "alice", "POST", "/security-group-rules", obj{"security_group_rule": obj{"security_group_id": group, "direction": "ingress", "ethertype": "IPv6", "remote_ip_prefix": "10.0.0.0/8"}}, 400, "SecurityGroupRuleParameterConflict", "Conflicting value ethertype"},
		{"remote group that is no group", "alice", "POST", "/security-group-rules", obj{"security_group_rule": obj{"security_group_id": group, "direction": "ingress", "remote_group_id": "bad_group_id"}}, 404, "SecurityGroupNotFound", "bad_group_id"},
		{"rule of a group that does not exist", "alice", "POST", "/security-group-rules", obj{"security_group_rule": obj{"security_group_id": missing, "direction": "ingress"}}, 404, "SecurityGroupNotFound", missing},
		{"a second default group", "alice", "POST", "/security-groups", obj{"security_group": obj{"name": "default"}}, 409, "SecurityGroupDefaultAlreadyExists", "Default security group already exists."},
		{"a name in an ID's place", "alice", "GET", "/networks/alice-net", nil, 404, "NetworkNotFound", "Network alice-net could not be found."},
		{"another project's network", "alice", "GET", "/networks/" + w.bob, nil, 404, "NetworkNotFound", w.bob},
		{"update of another project's network", "alice", "PUT", "/networks/" + w.bob, obj{"network": obj{"name": "mine"}}, 404, "NetworkNotFound", w.bob},
		{"delete of another project's router", "alice", "DELETE", "/routers/" + router, nil, 404, "RouterNotFound", router},
		{"port on another project's network", "alice", "POST", "/ports", obj{"port": obj{"network_id": w.bob}}, 404, "NetworkNotFound", w.bob},
		{"port on the external network", "alice", "POST", "/ports", obj{"port": obj{"network_id": w.external}}, 403, "PolicyNotAuthorized", "belongs to another project"},
		{"member sharing a network", "alice", "POST", "/networks", obj{"network": obj{"shared": true}}, 403, "PolicyNotAuthorized", "(rule:create_network and rule:create_network:shared) is disallowed by policy"},
		{"member choosing a segment", "alice", "POST", "/networks", obj{"network": obj{"provider:network_type": "vlan", "provider:segmentation_id": 150}}, 403, "PolicyNotAuthorized", "rule:create_network:provider:network_type"},
		{"member making a network external", "alice", "PUT", "/networks/" + w.alice, obj{"network": obj{"router:external": true}}, 403, "PolicyNotAuthorized", "rule:update_network:router:external"},
		{"member binding a port", "alice", "PUT", "/ports/" + port, obj{"port": obj{"binding:host_id": "compute-1"}}, 403, "PolicyNotAuthorized", "rule:update_port:binding:host_id"},
		{"member choosing SNAT", "alice", "POST", "/routers", obj{"router": obj{"external_gateway_info": obj{"network_id": w.external, "enable_snat": false}}}, 403, "PolicyNotAuthorized", "rule:create_router:external_gateway_info:enable_snat"},
		{"member choosing a floating address", "alice", "POST", "/floatingips", obj{"floatingip": obj{"floating_network_id": w.external, "floating_ip_address": "172.24.4.10"}}, 403, "PolicyNotAuthorized", "rule:create_floatingip:floating_ip_address"},
		{"member creating for another project", "alice", "POST", "/networks", obj{"network": obj{"project_id": apitest.P2}}, 403, "PolicyNotAuthorized", "rule:create_network"},
		{"project and tenant that differ", "admin", "POST", "/networks", obj{"network": obj{"project_id": apitest.P2, "tenant_id": apitest.P1}}, 400, "HTTPBadRequest", "'project_id' and 'tenant_id' do not match"},
		{"reader creating", "rita", "POST", "/networks", obj{"network": obj{"name": "n"}}, 403, "PolicyNotAuthorized", "rule:create_network is disallowed by policy"},
		{"reader deleting", "rita", "DELETE", "/networks/" + w.alice, nil, 403, "PolicyNotAuthorized", "rule:delete_network is disallowed by policy"},
		{"member deleting the shared network", "alice", "DELETE", "/networks/" + w.shared, nil, 403, "PolicyNotAuthorized", "rule:delete_network"},
		{"member listing every project's quotas", "alice", "GET", "/quotas", nil, 403, "AdminRequired", "Only admin can view or configure quota"},
		{"member changing its quotas", "alice", "PUT", "/quotas/" + apitest.P1, obj{"quota": obj{"network": 1000}}, 403, "PolicyNotAuthorized", "rule:update_quota"},
		{"unknown quota", "admin", "PUT", "/quotas/" + apitest.P1, obj{"quota": obj{"volumes": 10}}, 400, "BadRequest", "Unrecognized attribute(s) 'volumes'"},
		{"negative quota", "admin", "PUT", "/quotas/" + apitest.P1, obj{"quota": obj{"network": -5}}, 400, "BadRequest", "greater than or equal to -1"},
		{"unknown filter", "alice", "GET", "/networks?colour=red", nil, 400, "HTTPBadRequest", "['colour'] is invalid attribute for filtering"},
		{"filter on an object", "alice", "GET", "/routers?external_gateway_info=x", nil, 400, "HTTPBadRequest", "['external_gateway_info'] is invalid attribute for filtering"},
		{"not a boolean filter", "alice", "GET", "/networks?shared=maybe", nil, 400, "InvalidInput", "'maybe' cannot be converted to boolean"},
		{"unknown sort key", "alice", "GET", "/networks?sort_key=colour&sort_dir=asc", nil, 400, "HTTPBadRequest", "['colour'] is invalid attribute for sort_keys"},
		{"bad sort direction", "alice", "GET", "/networks?sort_key=name&sort_dir=up", nil, 400, "HTTPBadRequest", "['up'] is invalid value for sort_dirs"},
		{"sort key without direction", "alice", "GET", "/networks?sort_key=name", nil, 400, "HTTPBadRequest", "The number of sort_keys and sort_dirs must be same"},
		{"bad limit", "alice", "GET", "/networks?limit=-1", nil, 400, "HTTPBadRequest", "Limit must be an integer 0 or greater and not '-1'"},
		{"unknown marker", "alice", "GET", "/networks?limit=1&marker=" + missing, nil, 404, "NetworkNotFound", missing},
		{"no token", "", "GET", "/networks", nil, 401, "HTTPUnauthorized", "requires authentication"},
		{"unknown path", "alice", "GET", "/widgets", nil, 404, "HTTPNotFound", ""},
		{"unknown extension", "alice", "GET", "/extensions/dvr", nil, 404, "HTTPNotFound", "dvr"},
	}
	before := s.snapshot(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := s.do(t, tt.token, tt.method, "/network/v2.0"+tt.path, tt.body)
			if status != tt.status {
				t.Fatalf("status %d, want %d: %v", status, tt.status, body)
			}
			e, _ := body["NeutronError"].(obj)
			if e == nil || e["type"] != tt.typ || !strings.Contains(e["message"].(string), tt.message) || e["detail"] != "" {
				t.Errorf("body %v, want a NeutronError of type %s saying %q", body, tt.typ, tt.message)
			}
		})
	}
	if after := s.snapshot(t); !reflect.DeepEqual(after, before) {
		t.Errorf("bad requests changed the resources:\nbefore %v\nafter  %v", before, after)
	}
	if status, _ := s.do(t, "alice", "GET", "/network/v2.0/networks/"+w.alice, nil); status != http.StatusOK {
		t.Errorf("alice's network after the bad requests: status %d", status)
	}
}
