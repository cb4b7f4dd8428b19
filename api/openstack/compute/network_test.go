package compute_test

import (
	"encoding/json"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestServerNetworking checks what a server shows of its networking, as
// Tempest's schemas and the clients read it: its addresses by network
// name, fixed before floating, with their type and MAC in its details but
// not from /ips nor in the answer to an update; the names of its ports'
// groups, each once, and nothing for a server without ports.
func TestServerNetworking(t *testing.T) {
	c := newCloud(t)
	w := c.world(t)
	id := c.boot(t, "alice", "two-nics", obj{"networks": []obj{{"uuid": w.alice}, {"uuid": w.alice2}, {"uuid": w.alice, "fixed_ip": "10.1.0.50"}}})
	ifaces := c.must(t, http.StatusOK, "alice", "GET", "/servers/"+id+"/os-interface", nil)["interfaceAttachments"].([]any)
	if len(ifaces) != 3 {
		t.Fatalf("os-interface: got %d interfaces, want 3: %v", len(ifaces), ifaces)
	}
	fixed := func(i int) string { return item(item(ifaces, i)["fixed_ips"], 0)["ip_address"].(string) }
	mac := func(i int) string { return item(ifaces, i)["mac_addr"].(string) }
	fip := c.must(t, http.StatusOK, "alice", "POST", "/os-floating-ips", obj{"pool": "public"})["floating_ip"].(obj)["ip"].(string)
	c.must(t, http.StatusAccepted, "alice", "POST", "/servers/"+id+"/action", obj{"addFloatingIp": obj{"address": fip}})

	detailed := obj{
		"alice-net": []any{
			obj{"version": 4.0, "addr": fixed(0), "OS-EXT-IPS:type": "fixed", "OS-EXT-IPS-MAC:mac_addr": mac(0)},
			obj{"version": 4.0, "addr": "10.1.0.50", "OS-EXT-IPS:type": "fixed", "OS-EXT-IPS-MAC:mac_addr": mac(2)},
			obj{"version": 4.0, "addr": fip, "OS-EXT-IPS:type": "floating", "OS-EXT-IPS-MAC:mac_addr": mac(0)},
		},
		"alice-net2": []any{obj{"version": 4.0, "addr": fixed(1), "OS-EXT-IPS:type": "fixed", "OS-EXT-IPS-MAC:mac_addr": mac(1)}},
	}
	basic := obj{
		"alice-net":  []any{obj{"version": 4.0, "addr": fixed(0)}, obj{"version": 4.0, "addr": "10.1.0.50"}, obj{"version": 4.0, "addr": fip}},
		"alice-net2": []any{obj{"version": 4.0, "addr": fixed(1)}},
	}
	noPorts := c.boot(t, "alice", "no-nics", obj{"networks": "none"})
	list := c.must(t, http.StatusOK, "alice", "GET", "/servers/detail", nil)["servers"].([]any)
	byName := map[string]obj{}
	for i := range list {
		byName[item(list, i)["name"].(string)] = item(list, i)
	}
	show := c.must(t, http.StatusOK, "alice", "GET", "/servers/"+id, nil)["server"].(obj)
	for _, tc := range []struct {
		what      string
		got, want any
	}{
		{"GET /servers/{id} addresses", show["addresses"], detailed},
		{"GET /servers/{id} security_groups", show["security_groups"], []any{obj{"name": "default"}}},
		{"GET /servers/detail addresses", byName["two-nics"]["addresses"], detailed},
		{"GET /servers/{id}/ips", c.must(t, http.StatusOK, "alice", "GET", "/servers/"+id+"/ips", nil), obj{"addresses": basic}},
		{"GET /servers/{id}/ips/alice-net2", c.must(t, http.StatusOK, "alice", "GET", "/servers/"+id+"/ips/alice-net2", nil), obj{"alice-net2": basic["alice-net2"]}},
		{"PUT /servers/{id} addresses", c.must(t, http.StatusOK, "alice", "PUT", "/servers/"+id, obj{"server": obj{"name": "renamed"}})["server"].(obj)["addresses"], basic},
		{"a server without ports: addresses", byName["no-nics"]["addresses"], obj{}},
		{"a server without ports: security_groups", byName["no-nics"]["security_groups"], nil},
	} {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s:\n got %v\nwant %v", tc.what, tc.got, tc.want)
		}
	}
	c.must(t, http.StatusNotFound, "alice", "GET", "/servers/"+id+"/ips/bob-net", nil)
	c.must(t, http.StatusNotFound, "bob", "GET", "/servers/"+id+"/ips", nil)
	c.must(t, http.StatusOK, "rita", "GET", "/servers/"+noPorts+"/ips", nil)
}

// TestServerListReadsNetworkingOnce checks that listing servers in detail
// reads their ports, addresses and groups in one call each, however many
// servers there are.
func TestServerListReadsNetworkingOnce(t *testing.T) {
	c := newCloud(t)
	w := c.world(t)
	for _, name := range []string{"a", "b", "c", "d"} {
		c.boot(t, "alice", name, obj{"networks": []obj{{"uuid": w.alice}, {"uuid": w.alice2}}})
	}
	c.net.reads()
	list := c.must(t, http.StatusOK, "alice", "GET", "/servers/detail", nil)["servers"].([]any)
	if len(list) != 4 {
		t.Fatalf("got %d servers, want 4", len(list))
	}
	want := map[string]int{"ServerPortsOf": 1, "Addresses": 1, "SecurityGroupNames": 1}
	if got := c.net.reads(); !maps.Equal(got, want) {
		t.Errorf("reads of the networking service: got %v, want %v", got, want)
	}
}

// TestCreateServerNetworks checks POST /servers's networks and
// security_groups: what Nova 2.1 takes, with trustack's "auto" and
// "none", and what it refuses, with Nova's statuses; and that the answer
// names the groups asked for.
func TestCreateServerNetworks(t *testing.T) {
	c := newCloud(t)
	w := c.world(t)
	port := c.must(t, http.StatusOK, "alice", "POST", "/servers/"+c.boot(t, "alice", "holder", obj{"networks": []obj{{"uuid": w.alice}}})+"/os-interface",
		obj{"interfaceAttachment": obj{"net_id": w.alice}})["interfaceAttachment"].(obj)["port_id"].(string)
	group := c.must(t, http.StatusOK, "alice", "POST", "/os-security-groups", obj{"security_group": obj{"name": "web", "description": "web"}})["security_group"].(obj)["id"].(string)
	const missing = "0d0e0f10-1112-4314-9516-171819202122"
	for _, tc := range []struct {
		name   string
		token  string
		attrs  obj
		status int
		says   string
	}{
		{"a network", "alice", obj{"networks": []obj{{"uuid": w.alice}}}, 202, ""},
		{"an address on a network", "alice", obj{"networks": []obj{{"uuid": w.alice2, "fixed_ip": "10.2.0.9"}}}, 202, ""},
		{"none", "alice", obj{"networks": "none"}, 202, ""},
		{"a group by name and one by ID", "alice", obj{"networks": []obj{{"uuid": w.alice}}, "security_groups": []obj{{"name": "web"}, {"name": group}}}, 202, ""},
		{"a network twice", "alice", obj{"networks": []obj{{"uuid": w.alice}, {"uuid": w.alice}}}, 202, ""},
		{"auto with two networks", "alice", obj{"networks": "auto"}, 409, "Multiple possible networks"},
		{"no network with two", "alice", nil, 409, "Multiple possible networks"},
		{"another string", "alice", obj{"networks": "all"}, 400, "'auto' or 'none'"},
		{"not a list", "alice", obj{"networks": obj{"uuid": w.alice}}, 400, "It must be a list"},
		{"a bad network ID", "alice", obj{"networks": []obj{{"uuid": "a-b-c-d-e-f-g-h-i-j", "fixed_ip": "10.0.1.1"}}}, 400, "network uuid is not in proper format"},
		{"no network ID", "alice", obj{"networks": []obj{{"fixed_ip": "10.1.0.9"}}}, 400, "missing 'uuid'"},
		{"a bad address", "alice", obj{"networks": []obj{{"uuid": w.alice, "fixed_ip": "10.1.0.300"}}}, 400, "is not a 'ip-address'"},
		{"a bad port ID", "alice", obj{"networks": []obj{{"port": "my-port"}}}, 400, "is not a 'uuid'"},
		{"a port and an address", "alice", obj{"networks": []obj{{"port": port, "fixed_ip": "10.1.0.9"}}}, 400, "cannot be specified together"},
		{"a port twice", "alice", obj{"networks": []obj{{"port": port}, {"port": port}}}, 400, "specified twice"},
		{"an unknown key", "alice", obj{"networks": []obj{{"uuid": w.alice, "tag": "eth0"}}}, 400, "Additional properties"},
		{"a network that does not exist", "alice", obj{"networks": []obj{{"uuid": missing}}}, 400, "could not be found"},
		{"another project's network", "alice", obj{"networks": []obj{{"uuid": w.bob}}}, 400, "could not be found"},
		{"the external network", "alice", obj{"networks": []obj{{"uuid": w.public}}}, 403, "not shared"},
		{"an address taken", "alice", obj{"networks": []obj{{"uuid": w.alice2, "fixed_ip": "10.2.0.9"}}}, 400, ""},
		{"a port in use", "alice", obj{"networks": []obj{{"port": port}}}, 409, "in use"},
		{"a group that does not exist", "alice", obj{"networks": []obj{{"uuid": w.alice}}, "security_groups": []obj{{"name": "does_not_exist"}}}, 400, "does_not_exist"},
		{"as a reader", "rita", obj{"networks": []obj{{"uuid": w.alice}}}, 403, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := obj{"name": tc.name, "imageRef": c.image, "flavorRef": "1"}
			maps.Copy(body, tc.attrs)
			status, got := c.do(t, tc.token, "POST", "/servers", obj{"server": body})
			if status != tc.status || !strings.Contains(text(got), tc.says) {
				t.Fatalf("got %d %v, want %d saying %q", status, got, tc.status, tc.says)
			}
			if status != http.StatusAccepted {
				return
			}
			want := []any{obj{"name": "default"}}
			if sgs, ok := tc.attrs["security_groups"]; ok {
				want = nil
				for _, sg := range sgs.([]obj) {
					want = append(want, sg)
				}
			}
			if sgs := got["server"].(obj)["security_groups"]; !reflect.DeepEqual(sgs, want) {
				t.Errorf("security_groups %v, want %v", sgs, want)
			}
		})
	}
}

// TestInterfaces checks os-interface: attach by network, by address on a
// network, by port and by nothing (the project's only network), show,
// list and detach, with Nova's bodies and statuses, and its refusals.
func TestInterfaces(t *testing.T) {
	c := newCloud(t)
	w := c.world(t)
	id := c.boot(t, "bob", "vm", obj{"networks": "none"})
	path := "/servers/" + id + "/os-interface"
	alices := "/servers/" + c.boot(t, "alice", "vm", obj{"networks": "none"}) + "/os-interface"
	attached := map[string]obj{}
	var order []string
	for _, tc := range []struct {
		name    string
		body    any
		network string
		address string
	}{
		{"nothing asked", obj{"interfaceAttachment": obj{}}, w.bob, ""},
		{"a network", obj{"interfaceAttachment": obj{"net_id": w.bob}}, w.bob, ""},
		{"an address on a network", obj{"interfaceAttachment": obj{"net_id": w.bob, "fixed_ips": []obj{{"ip_address": "10.3.0.77"}}}}, w.bob, "10.3.0.77"},
	} {
		a := c.must(t, http.StatusOK, "bob", "POST", path, tc.body)["interfaceAttachment"].(obj)
		keys := slices.Sorted(maps.Keys(a))
		if want := []string{"fixed_ips", "mac_addr", "net_id", "port_id", "port_state"}; !slices.Equal(keys, want) {
			t.Errorf("%s: attachment keys %v, want %v", tc.name, keys, want)
		}
		ip := item(a["fixed_ips"], 0)
		if a["net_id"] != tc.network || a["port_state"] != "ACTIVE" || tc.address != "" && ip["ip_address"] != tc.address || ip["subnet_id"] == "" {
			t.Errorf("%s: got %v, want an ACTIVE port on %s with address %q", tc.name, a, tc.network, tc.address)
		}
		attached[a["port_id"].(string)] = a
		order = append(order, a["port_id"].(string))
	}
	list := c.must(t, http.StatusOK, "bob", "GET", path, nil)["interfaceAttachments"].([]any)
	for i := range list {
		a := item(list, i)
		if !reflect.DeepEqual(a, attached[a["port_id"].(string)]) {
			t.Errorf("listed %v, attached %v", a, attached[a["port_id"].(string)])
		}
	}
	if len(list) != len(attached) {
		t.Errorf("listed %d interfaces, attached %d", len(list), len(attached))
	}
	one := order[0] // not the port with 10.3.0.77, which stays
	if got := c.must(t, http.StatusOK, "bob", "GET", path+"/"+one, nil)["interfaceAttachment"]; !reflect.DeepEqual(got, attached[one]) {
		t.Errorf("shown %v, attached %v", got, attached[one])
	}
	c.must(t, http.StatusAccepted, "bob", "DELETE", path+"/"+one, nil)
	c.must(t, http.StatusNotFound, "bob", "GET", path+"/"+one, nil)

	const missing = "0d0e0f10-1112-4314-9516-171819202122"
	for _, tc := range []struct {
		name, token, method, path string
		body                      any
		status                    int
		says                      string
	}{
		{"a network and a port", "bob", "POST", path, obj{"interfaceAttachment": obj{"net_id": w.bob, "port_id": one}}, 400, "Must not input both network_id and port_id"},
		{"an address without a network", "bob", "POST", path, obj{"interfaceAttachment": obj{"fixed_ips": []obj{{"ip_address": "10.3.0.8"}}}}, 400, "Must input network_id when request IP address"},
		{"two addresses", "bob", "POST", path, obj{"interfaceAttachment": obj{"net_id": w.bob, "fixed_ips": []obj{{"ip_address": "10.3.0.8"}, {"ip_address": "10.3.0.9"}}}}, 400, "exactly one"},
		{"a bad address", "bob", "POST", path, obj{"interfaceAttachment": obj{"net_id": w.bob, "fixed_ips": []obj{{"ip_address": "ten"}}}}, 400, "is not a 'ip-address'"},
		{"a network's name", "bob", "POST", path, obj{"interfaceAttachment": obj{"net_id": "bob-net"}}, 400, "is not a 'uuid'"},
		{"a network that does not exist", "bob", "POST", path, obj{"interfaceAttachment": obj{"net_id": missing}}, 404, "could not be found"},
		{"another project's network", "bob", "POST", path, obj{"interfaceAttachment": obj{"net_id": w.alice}}, 404, "could not be found"},
		{"an address taken", "bob", "POST", path, obj{"interfaceAttachment": obj{"net_id": w.bob, "fixed_ips": []obj{{"ip_address": "10.3.0.77"}}}}, 409, ""},
		{"nothing asked, with two networks", "alice", "POST", alices, obj{"interfaceAttachment": obj{}}, 400, "Multiple possible networks"},
		{"as a reader", "rita", "POST", alices, obj{"interfaceAttachment": obj{"net_id": w.alice}}, 403, ""},
		{"a reader's list", "rita", "GET", alices, nil, 200, "interfaceAttachments"},
		{"to another project's server", "alice", "POST", path, obj{"interfaceAttachment": obj{}}, 404, ""},
		{"show a port the server lacks", "bob", "GET", path + "/" + missing, nil, 404, "does not have a port"},
		{"detach a port the server lacks", "bob", "DELETE", path + "/" + missing, nil, 404, "not attached"},
		{"a server that does not exist", "bob", "GET", "/servers/" + missing + "/os-interface", nil, 404, ""},
		{"virtual interfaces", "bob", "GET", "/servers/" + id + "/os-virtual-interfaces", nil, 400, "not supported by this cloud"},
		{"virtual interfaces of no server", "bob", "GET", "/servers/" + missing + "/os-virtual-interfaces", nil, 404, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, got := c.do(t, tc.token, tc.method, tc.path, tc.body)
			if status != tc.status || !strings.Contains(text(got), tc.says) {
				t.Errorf("got %d %v, want %d saying %q", status, got, tc.status, tc.says)
			}
		})
	}

	// A suspended server takes no interface, as Nova's.
	c.must(t, http.StatusAccepted, "bob", "POST", "/servers/"+id+"/action", obj{"suspend": nil})
	c.waitStatus(t, "bob", id, "SUSPENDED")
	if status, got := c.do(t, "bob", "POST", path, obj{"interfaceAttachment": obj{"net_id": w.bob}}); status != http.StatusConflict {
		t.Errorf("attach to a suspended server: got %d %v, want 409", status, got)
	}
}

// TestNetworkProxies checks os-networks and os-tenant-networks as Nova
// renders Neutron's networks, and os-floating-ip-pools.
func TestNetworkProxies(t *testing.T) {
	c := newCloud(t)
	w := c.world(t)
	tenant := c.must(t, http.StatusOK, "alice", "GET", "/os-tenant-networks", nil)["networks"].([]any)
	want := []any{
		obj{"id": w.public, "cidr": "None", "label": "public"},
		obj{"id": w.alice, "cidr": "None", "label": "alice-net"},
		obj{"id": w.alice2, "cidr": "None", "label": "alice-net2"},
	}
	if !reflect.DeepEqual(tenant, want) {
		t.Errorf("os-tenant-networks:\n got %v\nwant %v", tenant, want)
	}
	if got := c.must(t, http.StatusOK, "rita", "GET", "/os-tenant-networks/"+w.alice, nil)["network"]; !reflect.DeepEqual(got, want[1]) {
		t.Errorf("os-tenant-networks/{id}: got %v, want %v", got, want[1])
	}
	n := c.must(t, http.StatusOK, "alice", "GET", "/os-networks/"+w.alice, nil)["network"].(obj)
	if n["id"] != w.alice || n["label"] != "alice-net" || n["cidr"] != nil || len(n) != 11 {
		t.Errorf("os-networks/{id} as a member: got %v, want its ID, its name as label and 9 nulls", n)
	}
	if n := c.must(t, http.StatusOK, "admin", "GET", "/os-networks/"+w.alice, nil)["network"].(obj); len(n) != 32 || n["project_id"] != nil {
		t.Errorf("os-networks/{id} as an administrator: got %v, want its ID and label and 30 nulls", n)
	}
	if got := len(c.must(t, http.StatusOK, "admin", "GET", "/os-networks", nil)["networks"].([]any)); got != 4 {
		t.Errorf("os-networks as an administrator: got %d networks, want all 4", got)
	}
	for _, path := range []string{"/os-networks/" + w.bob, "/os-tenant-networks/" + w.bob, "/os-networks/alice-net"} {
		if status, got := c.do(t, "alice", "GET", path, nil); status != http.StatusNotFound || got["itemNotFound"].(obj)["message"] != "Network not found" {
			t.Errorf("GET %s as alice: got %d %v, want 404 Network not found", path, status, got)
		}
	}
	pools := c.must(t, http.StatusOK, "bob", "GET", "/os-floating-ip-pools", nil)
	if want := (obj{"floating_ip_pools": []any{obj{"name": "public"}}}); !reflect.DeepEqual(pools, want) {
		t.Errorf("os-floating-ip-pools: got %v, want %v", pools, want)
	}
}

// text is a body as JSON, for checks of what it says.
func text(o obj) string {
	b, _ := json.Marshal(o)
	return string(b)
}

// TestListServersByAddress checks GET /servers's ip and ip6 filters: a
// regular expression that one of a server's fixed addresses matches from
// its start, as Nova's, applied before the limit (ip6 from 2.5 for a
// member).
func TestListServersByAddress(t *testing.T) {
	c := newCloud(t)
	w := c.world(t)
	short := c.boot(t, "alice", "short", obj{"networks": []obj{{"uuid": w.alice, "fixed_ip": "10.1.0.5"}}})
	long := c.boot(t, "alice", "long", obj{"networks": []obj{{"uuid": w.alice, "fixed_ip": "10.1.0.55"}}})
	c.boot(t, "alice", "none", obj{"networks": "none"})
	fip := c.must(t, http.StatusOK, "alice", "POST", "/os-floating-ips", obj{"pool": "public"})["floating_ip"].(obj)["ip"].(string)
	c.must(t, http.StatusAccepted, "alice", "POST", "/servers/"+short+"/action", obj{"addFloatingIp": obj{"address": fip}})
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"ip=10.1.0.55", []string{long}},
		{"ip=10.1.0.5", []string{short, long}},
		{`ip=10\.1\.0\.5$`, []string{short}},
		{"ip=0.5", nil},
		{"ip=" + fip, nil},
		{"ip6=10.1", nil},
		{"ip=10.1.0.55&limit=1", []string{long}},
	} {
		for _, path := range []string{"/servers?", "/servers/detail?"} {
			list := c.at("2.5").must(t, http.StatusOK, "alice", "GET", path+strings.ReplaceAll(tc.query, `\`, "%5C"), nil)["servers"].([]any)
			var got []string
			for i := range list {
				got = append(got, item(list, i)["id"].(string))
			}
			slices.Sort(got)
			want := slices.Sorted(slices.Values(tc.want))
			if !slices.Equal(got, want) {
				t.Errorf("GET %s%s: got %v, want %v", path, tc.query, got, want)
			}
		}
	}
	if status, got := c.do(t, "alice", "GET", "/servers?ip=(", nil); status != http.StatusBadRequest {
		t.Errorf("GET /servers?ip=(: got %d %v, want 400", status, got)
	}
}
