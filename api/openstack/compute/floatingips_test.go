package compute_test

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// TestFloatingIPProxy checks os-floating-ips as Nova 2.1 proxies
// Neutron's floating IPs, and addFloatingIp and removeFloatingIp: a
// floating IP allocated from a pool named by name or ID, associated with
// the first of a server's ports that a router joins to its network, moved
// to another server, disassociated and released; with Nova's bodies and
// statuses.
func TestFloatingIPProxy(t *testing.T) {
	c := newCloud(t)
	w := c.world(t)
	// The server's first port is on a network no router reaches: the
	// floating IP goes to its second.
	vm := c.boot(t, "alice", "vm", obj{"networks": []obj{{"uuid": w.alice2}, {"uuid": w.alice, "fixed_ip": "10.1.0.10"}}})
	other := c.boot(t, "alice", "other", obj{"networks": []obj{{"uuid": w.alice, "fixed_ip": "10.1.0.20"}}})
	unreachable := c.boot(t, "alice", "unreachable", obj{"networks": []obj{{"uuid": w.alice2}}})

	byName := c.must(t, http.StatusOK, "alice", "POST", "/os-floating-ips", obj{"pool": "public"})["floating_ip"].(obj)
	byID := c.must(t, http.StatusOK, "alice", "POST", "/os-floating-ips", obj{"pool": w.public})["floating_ip"].(obj)
	id, addr := byName["id"].(string), byName["ip"].(string)
	if want := (obj{"id": id, "ip": addr, "pool": "public", "fixed_ip": nil, "instance_id": nil}); !reflect.DeepEqual(byName, want) {
		t.Errorf("allocated: got %v, want %v", byName, want)
	}
	if !strings.HasPrefix(addr, "172.24.4.") || byID["pool"] != "public" {
		t.Errorf("allocated %v and %v, want addresses of public", byName, byID)
	}
	list := c.must(t, http.StatusOK, "alice", "GET", "/os-floating-ips", nil)["floating_ips"].([]any)
	if len(list) != 2 || !reflect.DeepEqual(list[0], byName) && !reflect.DeepEqual(list[1], byName) {
		t.Errorf("listed %v, want the two allocated", list)
	}
	if got := c.must(t, http.StatusOK, "bob", "GET", "/os-floating-ips", nil)["floating_ips"]; !reflect.DeepEqual(got, []any{}) {
		t.Errorf("bob lists %v, want none of alice's", got)
	}

	act := func(server, action, address string) (int, obj) {
		t.Helper()
		return c.do(t, "alice", "POST", "/servers/"+server+"/action", obj{action: obj{"address": address}})
	}
	shown := func() obj {
		t.Helper()
		return c.must(t, http.StatusOK, "alice", "GET", "/os-floating-ips/"+id, nil)["floating_ip"].(obj)
	}
	if status, got := act(vm, "addFloatingIp", addr); status != http.StatusAccepted {
		t.Fatalf("addFloatingIp: %d %v", status, got)
	}
	if got := shown(); got["instance_id"] != vm || got["fixed_ip"] != "10.1.0.10" {
		t.Errorf("associated with vm: got %v, want instance %s at 10.1.0.10", got, vm)
	}
	if status, got := act(vm, "addFloatingIp", byID["ip"].(string)); status != http.StatusBadRequest {
		t.Errorf("a second floating IP on the same address: got %d %v, want 400", status, got)
	}
	if status, got := act(other, "addFloatingIp", addr); status != http.StatusAccepted {
		t.Fatalf("move it to other: %d %v", status, got)
	}
	if got := shown(); got["instance_id"] != other || got["fixed_ip"] != "10.1.0.20" {
		t.Errorf("moved to other: got %v, want instance %s at 10.1.0.20", got, other)
	}
	const missing = "0d0e0f10-1112-4314-9516-171819202122"
	for _, tc := range []struct {
		name, token, method, path string
		body                      any
		status                    int
		says                      string
	}{
		{"remove from the server it left", "alice", "POST", "/servers/" + vm + "/action", obj{"removeFloatingIp": obj{"address": addr}}, 409, "is not associated with instance"},
		{"add an address of no floating IP", "alice", "POST", "/servers/" + vm + "/action", obj{"addFloatingIp": obj{"address": "0.0.0.0"}}, 404, "floating IP not found"},
		{"remove an address of no floating IP", "alice", "POST", "/servers/" + vm + "/action", obj{"removeFloatingIp": obj{"address": "0.0.0.0"}}, 404, "floating IP not found"},
		{"add no address", "alice", "POST", "/servers/" + vm + "/action", obj{"addFloatingIp": obj{"address": ""}}, 400, "is not a 'ip-address'"},
		{"add without an address", "alice", "POST", "/servers/" + vm + "/action", obj{"addFloatingIp": obj{}}, 400, "'address' is a required property"},
		{"add to a fixed address the server lacks", "alice", "POST", "/servers/" + vm + "/action", obj{"addFloatingIp": obj{"address": addr, "fixed_address": "10.1.0.99"}}, 400, "not assigned to instance"},
		{"add where no router reaches", "alice", "POST", "/servers/" + unreachable + "/action", obj{"addFloatingIp": obj{"address": addr}}, 400, "Unable to associate floating IP"},
		{"add another project's", "bob", "POST", "/servers/" + vm + "/action", obj{"addFloatingIp": obj{"address": addr}}, 404, ""},
		{"add as a reader", "rita", "POST", "/servers/" + vm + "/action", obj{"addFloatingIp": obj{"address": addr}}, 403, ""},
		{"allocate from a pool that does not exist", "alice", "POST", "/os-floating-ips", obj{"pool": "non_exist_pool"}, 404, "pool not found"},
		{"allocate from a network that is not external", "alice", "POST", "/os-floating-ips", obj{"pool": w.alice}, 404, "pool not found"},
		{"allocate as a reader", "rita", "POST", "/os-floating-ips", obj{"pool": "public"}, 403, ""},
		{"show one that does not exist", "alice", "GET", "/os-floating-ips/" + missing, nil, 404, "Floating IP not found for ID"},
		{"show one by address", "alice", "GET", "/os-floating-ips/" + addr, nil, 404, "Floating IP not found for ID"},
		{"show another project's", "bob", "GET", "/os-floating-ips/" + id, nil, 404, ""},
		{"delete another project's", "bob", "DELETE", "/os-floating-ips/" + id, nil, 404, ""},
		{"remove from the server it is on", "alice", "POST", "/servers/" + other + "/action", obj{"removeFloatingIp": obj{"address": addr}}, 202, ""},
		{"remove it again", "alice", "POST", "/servers/" + other + "/action", obj{"removeFloatingIp": obj{"address": addr}}, 409, ""},
		{"add to a fixed address asked for", "alice", "POST", "/servers/" + vm + "/action", obj{"addFloatingIp": obj{"address": addr, "fixed_address": "10.1.0.10"}}, 202, ""},
		{"delete it, associated", "alice", "DELETE", "/os-floating-ips/" + id, nil, 202, ""},
		{"delete it again", "alice", "DELETE", "/os-floating-ips/" + id, nil, 404, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, got := c.do(t, tc.token, tc.method, tc.path, tc.body)
			if status != tc.status || !strings.Contains(text(got), tc.says) {
				t.Errorf("got %d %v, want %d saying %q", status, got, tc.status, tc.says)
			}
		})
	}
	if got := c.must(t, http.StatusOK, "alice", "GET", "/servers/"+vm+"/ips", nil)["addresses"].(obj)["alice-net"]; len(got.([]any)) != 1 {
		t.Errorf("vm's addresses on alice-net after its floating IP was released: %v, want its fixed one alone", got)
	}
}
