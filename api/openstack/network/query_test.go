package network_test

import (
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/trustack/trustack/internal/apitest"
)

// names returns the names of items, in their order.
func names(items []obj) []string {
	out := make([]string, len(items))
	for i, o := range items {
		out[i] = o["name"].(string)
	}
	return out
}

func TestFiltersAndFields(t *testing.T) {
	s := newServer(t)
	w := s.world(t)
	for _, n := range []obj{
		{"name": "red", "tags": []string{"a", "b"}},
		{"name": "green", "tags": []string{"b"}, "admin_state_up": false},
		{"name": "blue", "tags": []string{"c"}, "description": "sky"},
	} {
		s.create(t, "alice", "networks", "network", n)
	}
	tests := []struct {
		query string
		want  []string
	}{
		{"name=red", []string{"red"}},
		{"name=red&name=blue", []string{"red", "blue"}},
		{"admin_state_up=false", []string{"green"}},
		{"admin_state_up=False&name=red", nil},
		{"shared=True", []string{"shared"}},
		{"router:external=true", []string{"public"}},
		{"description=sky", []string{"blue"}},
		{"tenant_id=" + apitest.P1 + "&name=green", []string{"green"}},
		{"project_id=" + apitest.P1, []string{"alice-net", "red", "green", "blue"}},
		{"tags=b", []string{"red", "green"}},
		{"tags=a,b", []string{"red"}},
		{"tags=a&tags=b", []string{"red"}},
		{"tags-any=a,c", []string{"red", "blue"}},
		{"not-tags=a,b&project_id=" + apitest.P1, []string{"alice-net", "green", "blue"}},
		{"not-tags-any=b&project_id=" + apitest.P1, []string{"alice-net", "blue"}},
		{"mtu=1450&name=red", []string{"red"}},
		{"subnets=" + w.aliceSubnet, []string{"alice-net"}},
		{"id=" + w.bob, nil},
	}
	for _, tt := range tests {
		got := names(s.list(t, "alice", "/network/v2.0/networks?"+tt.query))
		if !slices.Equal(got, tt.want) && !(len(got) == 0 && len(tt.want) == 0) {
			t.Errorf("?%s: %v, want %v", tt.query, got, tt.want)
		}
	}

	for _, path := range []string{"/network/v2.0/networks?fields=id&fields=name&fields=mtu", "/network/v2.0/networks/" + w.alice + "?fields=id&fields=name&fields=mtu"} {
		body := s.must(t, http.StatusOK, "alice", "GET", path, nil)
		items, _ := body["networks"].([]any)
		if n, ok := body["network"]; ok {
			items = []any{n}
		}
		for _, n := range items {
			if keys := slices.Sorted(maps.Keys(n.(obj))); !slices.Equal(keys, []string{"id", "mtu", "name"}) {
				t.Errorf("%s: keys %v, want id, mtu and name", path, keys)
			}
		}
	}
	// A field the policy hides stays hidden.
	for _, n := range s.list(t, "alice", "/network/v2.0/networks?fields=id&fields=provider:network_type") {
		if _, ok := n["provider:network_type"]; ok {
			t.Errorf("a member sees provider:network_type through fields: %v", n)
		}
	}

	port := s.create(t, "alice", "ports", "port", obj{"network_id": w.alice})
	s.create(t, "alice", "ports", "port", obj{"network_id": w.alice})
	ip := port["fixed_ips"].([]any)[0].(obj)["ip_address"].(string)
	for _, q := range []string{"fixed_ips=ip_address%3D" + ip, "fixed_ips=ip_address%3D" + ip + "&fixed_ips=subnet_id%3D" + w.aliceSubnet,
		"fixed_ips=ip_address_substr%3D" + ip, "mac_address=" + url.QueryEscape(port["mac_address"].(string))} {
		if got := ids(s.list(t, "alice", "/network/v2.0/ports?"+q)); !slices.Equal(got, []string{port["id"].(string)}) {
			t.Errorf("ports?%s: %v, want %s", q, got, port["id"])
		}
	}
	if got := s.list(t, "alice", "/network/v2.0/ports?fixed_ips=ip_address%3D"+ip+"&fixed_ips=subnet_id%3D"+w.extSubnet); len(got) != 0 {
		t.Errorf("the port's address on another subnet: %v, want none", ids(got))
	}
	if got := s.list(t, "alice", "/network/v2.0/ports?network_id="+w.alice+"&device_owner=&fixed_ips=ip_address_substr%3D10.1.0."); len(got) != 2 {
		t.Errorf("alice's ports with an address containing 10.1.0.: %v, want both", ids(got))
	}
	if got := s.list(t, "alice", "/network/v2.0/ports?device_owner=network:dhcp&network_id="+w.alice); len(got) != 1 {
		t.Errorf("DHCP ports of alice's network: %d, want 1", len(got))
	}
}

func TestSortingAndPages(t *testing.T) {
	s := newServer(t)
	for _, n := range []string{"d", "b", "e", "a", "c"} {
		s.create(t, "alice", "networks", "network", obj{"name": n, "admin_state_up": n != "c"})
	}
	sorted := func(q string) []string { return names(s.list(t, "alice", "/network/v2.0/networks?"+q)) }
	for q, want := range map[string][]string{
		"sort_key=name&sort_dir=asc":                                       {"a", "b", "c", "d", "e"},
		"sort_key=name&sort_dir=desc":                                      {"e", "d", "c", "b", "a"},
		"sort_key=admin_state_up&sort_dir=asc&sort_key=name&sort_dir=desc": {"c", "e", "d", "b", "a"},
	} {
		if got := sorted(q); !slices.Equal(got, want) {
			t.Errorf("?%s: %v, want %v", q, got, want)
		}
	}

	// Walk forward two at a time by the next links, then back by the
	// previous ones, as gophercloud's and openstacksdk's pagers do.
	var pages [][]string
	next := "/network/v2.0/networks?limit=2&sort_key=name&sort_dir=asc"
	for range 5 {
		body := s.must(t, http.StatusOK, "alice", "GET", next, nil)
		var page []obj
		for _, n := range body["networks"].([]any) {
			page = append(page, n.(obj))
		}
		pages = append(pages, names(page))
		links := map[string]string{}
		for _, l := range body["networks_links"].([]any) {
			links[l.(obj)["rel"].(string)] = l.(obj)["href"].(string)
		}
		if links["previous"] == "" {
			t.Errorf("page %v has no previous link: %v", names(page), links)
		}
		if links["next"] == "" {
			break
		}
		if !strings.HasPrefix(links["next"], s.URL+"/network/v2.0/networks?") {
			t.Fatalf("next link %s is not an absolute URL of the collection", links["next"])
		}
		next = strings.TrimPrefix(links["next"], s.URL)
	}
	if want := [][]string{{"a", "b"}, {"c", "d"}, {"e"}}; !slices.EqualFunc(pages, want, slices.Equal) {
		t.Errorf("pages %v, want %v", pages, want)
	}
	all := s.list(t, "alice", "/network/v2.0/networks?sort_key=name&sort_dir=asc")
	d := all[3]["id"].(string)
	if got := sorted("limit=2&sort_key=name&sort_dir=asc&page_reverse=True&marker=" + d); !slices.Equal(got, []string{"b", "c"}) {
		t.Errorf("the two before d: %v, want b and c", got)
	}
	if got := sorted("limit=10&sort_key=name&sort_dir=asc&marker=" + d); !slices.Equal(got, []string{"e"}) {
		t.Errorf("after d: %v, want e", got)
	}
	if body := s.must(t, http.StatusOK, "alice", "GET", "/network/v2.0/networks", nil); body["networks_links"] != nil {
		t.Errorf("a list without limit has links: %v", body["networks_links"])
	}
	short := s.must(t, http.StatusOK, "alice", "GET", "/network/v2.0/networks?limit=10", nil)
	if links := short["networks_links"].([]any); len(links) != 1 || links[0].(obj)["rel"] != "previous" {
		t.Errorf("the only page's links %v, want previous alone", links)
	}
}
