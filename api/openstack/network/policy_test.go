package network_test

import (
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"github.com/trustack/trustack/internal/apitest"

	networkapi "github.com/trustack/trustack/api/openstack/network"
	"github.com/trustack/trustack/policy"
)

// TestVisibility checks who sees what, as Neutron's default policy has
// it: a member sees its project's networks and the shared and external
// ones, not other projects'; the subnets of an external network that is
// not shared are the administrator's alone; an administrator sees all.
func TestVisibility(t *testing.T) {
	s := newServer(t)
	w := s.world(t)
	for _, tt := range []struct {
		token         string
		networks      []string
		hiddenSubnets []string
	}{
		{"alice", []string{w.external, w.shared, w.alice}, []string{w.extSubnet}},
		{"rita", []string{w.external, w.shared, w.alice}, []string{w.extSubnet}},
		{"bob", []string{w.external, w.shared, w.bob}, []string{w.extSubnet, w.aliceSubnet}},
		{"admin", []string{w.external, w.shared, w.alice, w.bob}, nil},
	} {
		got := ids(s.list(t, tt.token, "/network/v2.0/networks"))
		slices.Sort(got)
		want := slices.Sorted(slices.Values(tt.networks))
		if !slices.Equal(got, want) {
			t.Errorf("%s sees networks %v, want %v", tt.token, got, want)
		}
		subnets := ids(s.list(t, tt.token, "/network/v2.0/subnets"))
		for _, hidden := range tt.hiddenSubnets {
			if slices.Contains(subnets, hidden) {
				t.Errorf("%s sees subnet %s", tt.token, hidden)
			}
			if status, _ := s.do(t, tt.token, "GET", "/network/v2.0/subnets/"+hidden, nil); status != http.StatusNotFound {
				t.Errorf("%s shows subnet %s: status %d, want 404", tt.token, hidden, status)
			}
		}
	}
	for _, id := range []string{w.external, w.shared} {
		n := s.must(t, http.StatusOK, "alice", "GET", "/network/v2.0/networks/"+id, nil)["network"].(obj)
		if _, ok := n["provider:network_type"]; ok {
			t.Errorf("a member sees the provider attributes of %s", n["name"])
		}
	}
	if n := s.must(t, http.StatusOK, "admin", "GET", "/network/v2.0/networks/"+w.alice, nil)["network"].(obj); n["provider:network_type"] != "vxlan" {
		t.Errorf("the administrator sees provider:network_type %v, want vxlan", n["provider:network_type"])
	}
}

// TestWhoMayDoWhat checks the default policy on the operations members
// and administrators are told apart by.
func TestWhoMayDoWhat(t *testing.T) {
	s := newServer(t)
	w := s.world(t)
	for _, tt := range []struct {
		name, token, method, path string
		body                      any
		status                    int
	}{
		{"member on a shared network", "bob", "POST", "/ports", obj{"port": obj{"network_id": w.shared}}, 201},
		{"member choosing a subnet of a shared network", "bob", "POST", "/ports", obj{"port": obj{"network_id": w.shared, "fixed_ips": []obj{}}}, 201},
		{"member on another project's network", "bob", "POST", "/ports", obj{"port": obj{"network_id": w.alice}}, 404},
		{"admin on another project's network", "admin", "POST", "/ports", obj{"port": obj{"network_id": w.alice, "project_id": apitest.P2}}, 201},
		{"member choosing an address on its network", "alice", "POST", "/ports", obj{"port": obj{"network_id": w.alice, "fixed_ips": []obj{{"ip_address": "10.1.0.77"}}}}, 201},
		{"member choosing an address on a shared network", "bob", "POST", "/ports", obj{"port": obj{"network_id": w.shared, "fixed_ips": []obj{{"ip_address": "10.9.0.7"}}}}, 403},
		{"member setting a MAC on its network", "alice", "POST", "/ports", obj{"port": obj{"network_id": w.alice, "mac_address": "fa:16:3e:00:00:07"}}, 201},
		{"member making a DHCP port on a shared network", "bob", "POST", "/ports", obj{"port": obj{"network_id": w.shared, "device_owner": "network:dhcp"}}, 403},
		{"member making a server's port", "bob", "POST", "/ports", obj{"port": obj{"network_id": w.shared, "device_owner": "compute:nova"}}, 201},
		{"member with provider attributes", "alice", "POST", "/networks", obj{"network": obj{"provider:network_type": "vxlan"}}, 403},
		{"admin with provider attributes", "admin", "POST", "/networks", obj{"network": obj{"provider:network_type": "vlan", "provider:physical_network": "physnet1", "provider:segmentation_id": 120}}, 201},
		{"member with defaults that need no rule", "alice", "POST", "/networks", obj{"network": obj{"shared": false, "router:external": false, "port_security_enabled": true}}, 201},
		{"member disabling port security", "alice", "POST", "/networks", obj{"network": obj{"port_security_enabled": false}}, 201},
		{"admin sharing a network", "admin", "POST", "/networks", obj{"network": obj{"shared": true}}, 201},
		{"member subnet on a shared network", "bob", "POST", "/subnets", obj{"subnet": obj{"network_id": w.shared, "cidr": "10.9.0.0/24", "ip_version": 4}}, 403},
		{"reader listing", "rita", "GET", "/networks", nil, 200},
		{"reader updating", "rita", "PUT", "/networks/" + w.alice, obj{"network": obj{"name": "x"}}, 403},
		{"member disabling SNAT", "alice", "POST", "/routers", obj{"router": obj{"external_gateway_info": obj{"network_id": w.external, "enable_snat": false}}}, 403},
		{"admin disabling SNAT", "admin", "POST", "/routers", obj{"router": obj{"external_gateway_info": obj{"network_id": w.external, "enable_snat": false}}}, 201},
		{"member listing its quotas", "alice", "GET", "/quotas/" + apitest.P1, nil, 200},
		{"member reading another project's quotas", "alice", "GET", "/quotas/" + apitest.P2, nil, 403},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if status, body := s.do(t, tt.token, tt.method, "/network/v2.0"+tt.path, tt.body); status != tt.status {
				t.Errorf("status %d, want %d: %v", status, tt.status, body)
			}
		})
	}
}

// TestPolicyFile checks that an operator's Neutron policy file keeps its
// meaning: here members may share networks, and readers see the
// provider attributes.
func TestPolicyFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "network.yaml")
	os.WriteFile(file, []byte(`
"create_network:shared": "role:member"
"get_network:provider:network_type": "role:reader"
`), 0o600)
	overrides, err := policy.LoadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	e, err := policy.New(networkapi.Policy(), overrides)
	if err != nil {
		t.Fatal(err)
	}
	s := newServerWith(t, e)
	n := s.create(t, "alice", "networks", "network", obj{"name": "n", "shared": true})
	if n["shared"] != true || n["provider:network_type"] != "vxlan" {
		t.Errorf("network %v, want shared and its type shown", n)
	}
	if _, ok := n["provider:segmentation_id"]; ok {
		t.Errorf("segmentation ID shown, but its rule was not changed")
	}
}

var ruleRef = regexp.MustCompile(`rule:([a-z_:]+)`)

// TestPolicyDefaults checks that every rule the defaults refer to is
// defined, and that each compiles.
func TestPolicyDefaults(t *testing.T) {
	rules := networkapi.Policy()
	names := map[string]bool{}
	for _, r := range rules {
		if names[r.Name] {
			t.Errorf("rule %s defined twice", r.Name)
		}
		names[r.Name] = true
	}
	if _, err := policy.New(rules, nil); err != nil {
		t.Fatal(err)
	}
	for _, r := range rules {
		for _, ref := range ruleRef.FindAllStringSubmatch(r.Check, -1) {
			if !names[ref[1]] {
				t.Errorf("rule %s refers to rule %s, which is not defined", r.Name, ref[1])
			}
		}
	}
	for _, name := range []string{"get_network", "create_network:shared", "create_network:router:external",
		"create_network:provider:network_type", "get_network:provider:physical_network", "create_port:mac_address",
		"create_port:fixed_ips:ip_address", "create_port:binding:host_id", "get_port:binding:vif_type",
		"create_floatingip:floating_ip_address", "create_router:external_gateway_info:enable_snat", "shared", "external"} {
		if !names[name] {
			t.Errorf("no default for %s", name)
		}
	}
}
