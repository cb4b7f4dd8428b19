package compute_test

import (
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/trustack/trustack/internal/apitest"
)

// TestSecurityGroupProxy checks os-security-groups and
// os-security-group-rules as Nova 2.1 proxies Neutron's groups: their
// bodies, ingress rules only, in nova-network's shapes; and their
// refusals, with Nova's statuses.
func TestSecurityGroupProxy(t *testing.T) {
	c := newCloud(t)
	created := c.must(t, http.StatusOK, "alice", "POST", "/os-security-groups", obj{"security_group": obj{"name": " web ", "description": "the web tier"}})["security_group"].(obj)
	id := created["id"].(string)
	if want := (obj{"id": id, "name": " web ", "description": "the web tier", "tenant_id": apitest.P1, "rules": []any{}}); !reflect.DeepEqual(created, want) {
		t.Errorf("created group:\n got %v\nwant %v", created, want)
	}
	peer := c.must(t, http.StatusOK, "alice", "POST", "/os-security-groups", obj{"security_group": obj{"name": "db", "description": "db"}})["security_group"].(obj)["id"].(string)
	rule := func(attrs obj) obj {
		attrs["parent_group_id"] = id
		return obj{"security_group_rule": attrs}
	}
	rules := []struct {
		name string
		body obj
		want obj // but its id
	}{
		{"ssh from anywhere", rule(obj{"ip_protocol": "tcp", "from_port": 22, "to_port": 22}),
			obj{"ip_protocol": "tcp", "from_port": 22.0, "to_port": 22.0, "group": obj{}, "ip_range": obj{"cidr": "0.0.0.0/0"}}},
		{"a prefix kept as written", rule(obj{"ip_protocol": "TCP", "from_port": "80", "to_port": "81", "cidr": "10.2.3.124/24"}),
			obj{"ip_protocol": "tcp", "from_port": 80.0, "to_port": 81.0, "group": obj{}, "ip_range": obj{"cidr": "10.2.3.124/24"}}},
		{"any ICMP", rule(obj{"ip_protocol": "icmp", "from_port": -1, "to_port": -1}),
			obj{"ip_protocol": "icmp", "from_port": -1.0, "to_port": -1.0, "group": obj{}, "ip_range": obj{"cidr": "0.0.0.0/0"}}},
		{"IPv6", rule(obj{"ip_protocol": "udp", "from_port": 53, "to_port": 53, "cidr": "2001:db8::/32"}),
			obj{"ip_protocol": "udp", "from_port": 53.0, "to_port": 53.0, "group": obj{}, "ip_range": obj{"cidr": "2001:db8::/32"}}},
		{"a peer group, all TCP", rule(obj{"ip_protocol": "tcp", "group_id": peer}),
			obj{"ip_protocol": "tcp", "from_port": 1.0, "to_port": 65535.0, "group": obj{"name": "db", "tenant_id": apitest.P1}, "ip_range": obj{}}},
	}
	var shown []any
	for _, r := range rules {
		got := c.must(t, http.StatusOK, "alice", "POST", "/os-security-group-rules", r.body)["security_group_rule"].(obj)
		r.want["id"], r.want["parent_group_id"] = got["id"], id
		if !reflect.DeepEqual(got, r.want) {
			t.Errorf("%s: got %v, want %v", r.name, got, r.want)
		}
		shown = append(shown, r.want)
	}
	group := c.must(t, http.StatusOK, "rita", "GET", "/os-security-groups/"+id, nil)["security_group"].(obj)
	if !reflect.DeepEqual(group["rules"], shown) {
		t.Errorf("the group's rules:\n got %v\nwant %v", group["rules"], shown)
	}
	list := c.must(t, http.StatusOK, "alice", "GET", "/os-security-groups", nil)["security_groups"].([]any)
	var names []string
	for i := range list {
		names = append(names, item(list, i)["name"].(string))
		if item(list, i)["id"] == id && !reflect.DeepEqual(item(list, i), group) {
			t.Errorf("listed %v, shown %v", item(list, i), group)
		}
	}
	if want := []string{" web ", "db", "default"}; !reflect.DeepEqual(names, want) {
		t.Errorf("listed groups %v, want %v (by name, the default group made on the way)", names, want)
	}
	updated := c.must(t, http.StatusOK, "alice", "PUT", "/os-security-groups/"+id, obj{"security_group": obj{"name": "www", "description": "d"}})["security_group"].(obj)
	if updated["name"] != "www" || updated["description"] != "d" {
		t.Errorf("updated group: got %v", updated)
	}

	// Deleting the peer group deletes the rules that name it.
	c.must(t, http.StatusAccepted, "alice", "DELETE", "/os-security-groups/"+peer, nil)
	if got := c.must(t, http.StatusOK, "alice", "GET", "/os-security-groups/"+id, nil)["security_group"].(obj)["rules"].([]any); len(got) != len(rules)-1 {
		t.Errorf("after the peer group went: %d rules, want %d", len(got), len(rules)-1)
	}

	var defaultGroup string
	for i := range list {
		if item(list, i)["name"] == "default" {
			defaultGroup = item(list, i)["id"].(string)
		}
	}
	const missing = "0d0e0f10-1112-4314-9516-171819202122"
	firstRule := shown[0].(obj)["id"].(string)
	for _, tc := range []struct {
		name, token, method, path string
		body                      any
		status                    int
		says                      string
	}{
		{"no name", "alice", "POST", "/os-security-groups", obj{"security_group": obj{"description": "d"}}, 400, "name is not a string"},
		{"a blank name", "alice", "POST", "/os-security-groups", obj{"security_group": obj{"name": "  ", "description": "d"}}, 400, "less than 1"},
		{"a long description", "alice", "POST", "/os-security-groups", obj{"security_group": obj{"name": "n", "description": strings.Repeat("d", 256)}}, 400, "more than 255"},
		{"no body", "alice", "POST", "/os-security-groups", obj{}, 400, "Missing parameter security_group"},
		{"another default", "alice", "POST", "/os-security-groups", obj{"security_group": obj{"name": "default", "description": "d"}}, 400, ""},
		{"as a reader", "rita", "POST", "/os-security-groups", obj{"security_group": obj{"name": "n", "description": "d"}}, 403, ""},
		{"show one that does not exist", "alice", "GET", "/os-security-groups/" + missing, nil, 404, ""},
		{"show one by name", "alice", "GET", "/os-security-groups/www", nil, 404, ""},
		{"show another project's", "bob", "GET", "/os-security-groups/" + id, nil, 404, ""},
		{"update one that does not exist", "alice", "PUT", "/os-security-groups/" + missing, obj{"security_group": obj{"name": "n", "description": "d"}}, 404, ""},
		{"rename the default group", "alice", "PUT", "/os-security-groups/" + defaultGroup, obj{"security_group": obj{"name": "n", "description": "d"}}, 400, ""},
		{"delete the default group", "alice", "DELETE", "/os-security-groups/" + defaultGroup, nil, 400, ""},
		{"delete with no ID", "alice", "DELETE", "/os-security-groups/", nil, 404, ""},
		{"a rule of a group that is not an ID", "alice", "POST", "/os-security-group-rules", obj{"security_group_rule": obj{"parent_group_id": "web", "ip_protocol": "tcp", "from_port": 22, "to_port": 22}}, 400, "should be uuid"},
		{"a rule of a group that does not exist", "alice", "POST", "/os-security-group-rules", obj{"security_group_rule": obj{"parent_group_id": missing, "ip_protocol": "tcp", "from_port": 22, "to_port": 22}}, 404, ""},
		{"a rule of another project's group", "bob", "POST", "/os-security-group-rules", rule(obj{"ip_protocol": "tcp", "from_port": 22, "to_port": 22}), 404, ""},
		{"a peer group that does not exist", "alice", "POST", "/os-security-group-rules", rule(obj{"ip_protocol": "tcp", "group_id": missing}), 404, ""},
		{"the same rule twice", "alice", "POST", "/os-security-group-rules", rule(obj{"ip_protocol": "tcp", "from_port": 22, "to_port": 22}), 400, "This rule already exists"},
		{"another protocol", "alice", "POST", "/os-security-group-rules", rule(obj{"ip_protocol": "sctp", "from_port": 22, "to_port": 22}), 400, "Invalid IP protocol sctp"},
		{"ports the wrong way", "alice", "POST", "/os-security-group-rules", rule(obj{"ip_protocol": "tcp", "from_port": 22, "to_port": 21}), 400, "Former value cannot be greater"},
		{"a port too high", "alice", "POST", "/os-security-group-rules", rule(obj{"ip_protocol": "udp", "from_port": 1, "to_port": 65536}), 400, "between 1-65535"},
		{"an ICMP type too high", "alice", "POST", "/os-security-group-rules", rule(obj{"ip_protocol": "icmp", "from_port": 256, "to_port": 0}), 400, "type:code must be valid"},
		{"a port that is not a number", "alice", "POST", "/os-security-group-rules", rule(obj{"ip_protocol": "tcp", "from_port": "ssh", "to_port": 22}), 400, "must be integers"},
		{"no protocol", "alice", "POST", "/os-security-group-rules", rule(obj{"cidr": "10.0.0.0/8"}), 400, "Not enough parameters"},
		{"no ports", "alice", "POST", "/os-security-group-rules", rule(obj{"ip_protocol": "tcp"}), 400, "Not enough parameters"},
		{"a bad prefix", "alice", "POST", "/os-security-group-rules", rule(obj{"ip_protocol": "tcp", "from_port": 1, "to_port": 2, "cidr": "10.0.0.0/33"}), 400, "not a valid IP network"},
		{"a prefix of length 0", "alice", "POST", "/os-security-group-rules", rule(obj{"ip_protocol": "tcp", "from_port": 1, "to_port": 2, "cidr": "10.0.0.0/0"}), 400, "Bad prefix"},
		{"a rule as a reader", "rita", "POST", "/os-security-group-rules", rule(obj{"ip_protocol": "tcp", "from_port": 1, "to_port": 2}), 403, ""},
		{"delete a rule that does not exist", "alice", "DELETE", "/os-security-group-rules/" + missing, nil, 404, ""},
		{"delete another project's rule", "bob", "DELETE", "/os-security-group-rules/" + firstRule, nil, 404, ""},
		{"delete a rule", "alice", "DELETE", "/os-security-group-rules/" + firstRule, nil, 202, ""},
		{"delete it again", "alice", "DELETE", "/os-security-group-rules/" + firstRule, nil, 404, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, got := c.do(t, tc.token, tc.method, tc.path, tc.body)
			if status != tc.status || !strings.Contains(text(got), tc.says) {
				t.Errorf("got %d %v, want %d saying %q", status, got, tc.status, tc.says)
			}
		})
	}
}

// TestServerSecurityGroups checks a server's groups: added and removed
// by name with addSecurityGroup and removeSecurityGroup, shown by the
// server and by GET /servers/{id}/os-security-groups, and a group in use
// that cannot be deleted.
func TestServerSecurityGroups(t *testing.T) {
	c := newCloud(t)
	w := c.world(t)
	id := c.boot(t, "alice", "vm", obj{"networks": []obj{{"uuid": w.alice}, {"uuid": w.alice2}}})
	web := c.must(t, http.StatusOK, "alice", "POST", "/os-security-groups", obj{"security_group": obj{"name": "web", "description": "web"}})["security_group"].(obj)["id"].(string)
	action := func(token, name, group string) (int, obj) {
		t.Helper()
		return c.do(t, token, "POST", "/servers/"+id+"/action", obj{name: obj{"name": group}})
	}
	groupsOf := func() (names, listed []string) {
		t.Helper()
		for _, g := range c.must(t, http.StatusOK, "rita", "GET", "/servers/"+id, nil)["server"].(obj)["security_groups"].([]any) {
			names = append(names, g.(obj)["name"].(string))
		}
		for _, g := range c.must(t, http.StatusOK, "rita", "GET", "/servers/"+id+"/os-security-groups", nil)["security_groups"].([]any) {
			listed = append(listed, g.(obj)["name"].(string))
		}
		return names, listed
	}
	if status, got := action("alice", "addSecurityGroup", "web"); status != http.StatusAccepted {
		t.Fatalf("addSecurityGroup web: %d %v", status, got)
	}
	if names, listed := groupsOf(); !reflect.DeepEqual(names, []string{"default", "web"}) || !reflect.DeepEqual(listed, []string{"default", "web"}) {
		t.Errorf("with web added: the server shows %v and lists %v, want default and web, each once", names, listed)
	}
	if status, _ := c.do(t, "alice", "DELETE", "/os-security-groups/"+web, nil); status != http.StatusBadRequest {
		t.Errorf("delete a group in use: got %d, want 400", status)
	}
	for _, tc := range []struct {
		name, token, action, group string
		status                     int
		says                       string
	}{
		{"a group that does not exist", "alice", "addSecurityGroup", "nope", 404, "nope"},
		{"an empty name", "alice", "addSecurityGroup", " ", 400, "cannot be empty"},
		{"as a reader", "rita", "addSecurityGroup", "web", 403, ""},
		{"as another project", "bob", "addSecurityGroup", "web", 404, ""},
		{"remove a group the server is not in", "alice", "removeSecurityGroup", "nope", 404, ""},
		{"remove by ID", "alice", "removeSecurityGroup", web, 202, ""},
		{"remove it again", "alice", "removeSecurityGroup", "web", 404, "not associated"},
		{"remove the default group", "alice", "removeSecurityGroup", "default", 202, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, got := action(tc.token, tc.action, tc.group)
			if status != tc.status || !strings.Contains(text(got), tc.says) {
				t.Errorf("got %d %v, want %d saying %q", status, got, tc.status, tc.says)
			}
		})
	}
	// As Nova: a server in no group says nothing of groups.
	if server := c.must(t, http.StatusOK, "alice", "GET", "/servers/"+id, nil)["server"].(obj); server["security_groups"] != nil {
		t.Errorf("a server in no group shows security_groups %v, want none", server["security_groups"])
	}
	c.must(t, http.StatusAccepted, "alice", "DELETE", "/os-security-groups/"+web, nil)
	noPorts := c.boot(t, "alice", "no-ports", obj{"networks": "none"})
	if status, got := c.do(t, "alice", "POST", "/servers/"+noPorts+"/action", obj{"addSecurityGroup": obj{"name": "default"}}); status != http.StatusNotFound {
		t.Errorf("addSecurityGroup to a server without ports: got %d %v, want 404", status, got)
	}
}
