package network_test

import (
	"maps"
	"net/http"
	"reflect"
	"slices"
	"testing"

	"github.com/trustack/trustack/internal/apitest"
)

// TestBulkCreate checks that a bulk create makes every resource or none:
// one that fails takes back those made before it.
func TestBulkCreate(t *testing.T) {
	s := newServer(t)
	w := s.world(t)
	made := s.must(t, http.StatusCreated, "alice", "POST", "/network/v2.0/ports",
		obj{"ports": []obj{{"network_id": w.alice, "name": "one"}, {"network_id": w.shared, "admin_state_up": false}}})["ports"].([]any)
	if len(made) != 2 || made[0].(obj)["name"] != "one" || made[1].(obj)["admin_state_up"] != false {
		t.Fatalf("bulk ports %v, want two as asked", made)
	}
	before := s.snapshot(t)
	status, body := s.do(t, "admin", "POST", "/network/v2.0/networks", obj{"networks": []obj{
		{"name": "fine"},
		{"name": "flat", "provider:network_type": "flat", "provider:physical_network": "physnet9"},
	}})
	if status != http.StatusBadRequest {
		t.Fatalf("bulk with a bad network: status %d, want 400: %v", status, body)
	}
	status, _ = s.do(t, "alice", "POST", "/network/v2.0/subnets", obj{"subnets": []obj{
		{"network_id": w.alice, "cidr": "10.5.0.0/24", "ip_version": 4},
		{"network_id": w.alice, "cidr": "10.5.0.0/25", "ip_version": 4},
	}})
	if status != http.StatusBadRequest {
		t.Fatalf("bulk with overlapping subnets: status %d, want 400", status)
	}
	// The resources are those there were; the DHCP port of alice's
	// network may have changed, given an address on the subnet made and
	// then deleted.
	after := s.snapshot(t)
	for c := range before {
		if got, want := slices.Sorted(maps.Keys(after[c])), slices.Sorted(maps.Keys(before[c])); !slices.Equal(got, want) {
			t.Errorf("failed bulk creates changed the %s from %v to %v", c, want, got)
		}
	}
}

func TestQuotas(t *testing.T) {
	s := newServer(t)
	const base = "/network/v2.0/quotas/"
	defaults := s.must(t, http.StatusOK, "alice", "GET", base+apitest.P1+"/default", nil)["quota"].(obj)
	want := obj{"network": 100.0, "subnet": 100.0, "port": 500.0, "router": 10.0, "floatingip": 50.0, "security_group": 10.0, "security_group_rule": 100.0}
	if !reflect.DeepEqual(defaults, want) {
		t.Errorf("default quotas %v, want Neutron's %v", defaults, want)
	}
	set := s.must(t, http.StatusOK, "admin", "PUT", base+apitest.P1, obj{"quota": obj{"network": 2, "port": "0"}})["quota"].(obj)
	if set["network"] != 2.0 || set["port"] != 0.0 || set["router"] != 10.0 {
		t.Errorf("quotas after the update %v", set)
	}
	var listed []string
	for _, q := range s.must(t, http.StatusOK, "admin", "GET", "/network/v2.0/quotas", nil)["quotas"].([]any) {
		listed = append(listed, q.(obj)["project_id"].(string))
		if q.(obj)["tenant_id"] != q.(obj)["project_id"] {
			t.Errorf("listed quotas %v: tenant_id and project_id differ", q)
		}
	}
	if !slices.Equal(listed, []string{apitest.P1}) {
		t.Errorf("projects with quotas of their own %v, want %s", listed, apitest.P1)
	}
	s.create(t, "alice", "networks", "network", obj{"name": "one"})
	s.create(t, "alice", "networks", "network", obj{"name": "two"})
	status, body := s.do(t, "alice", "POST", "/network/v2.0/networks", obj{"network": obj{"name": "three"}})
	if e, _ := body["NeutronError"].(obj); status != http.StatusConflict || e["type"] != "OverQuota" || e["message"] != "Quota exceeded for resources: ['network']." {
		t.Errorf("a network beyond the quota: %d %v, want 409 OverQuota as Neutron's", status, body)
	}
	details := s.must(t, http.StatusOK, "alice", "GET", base+apitest.P1+"/details", nil)["quota"].(obj)
	if d := details["network"]; !reflect.DeepEqual(d, obj{"used": 2.0, "limit": 2.0, "reserved": 0.0}) {
		t.Errorf("network quota details %v, want 2 used of 2", d)
	}
	// The format may be a suffix of the path, as Tempest asks for it.
	if asJSON := s.must(t, http.StatusOK, "alice", "GET", base+apitest.P1+"/details.json", nil)["quota"]; !reflect.DeepEqual(asJSON, any(details)) {
		t.Errorf("quota details.json %v, want the details %v", asJSON, details)
	}
	if len(details) != len(want) {
		t.Errorf("details of %d resources, want %d", len(details), len(want))
	}
	s.must(t, http.StatusNoContent, "admin", "DELETE", base+apitest.P1, nil)
	if q := s.must(t, http.StatusOK, "alice", "GET", base+apitest.P1, nil)["quota"]; !reflect.DeepEqual(q, any(want)) {
		t.Errorf("quotas after the reset %v, want the defaults", q)
	}
	if got := s.must(t, http.StatusOK, "admin", "GET", "/network/v2.0/quotas", nil)["quotas"].([]any); len(got) != 0 {
		t.Errorf("projects with quotas of their own after the reset: %v", got)
	}
}

func TestTags(t *testing.T) {
	s := newServer(t)
	w := s.world(t)
	router := s.create(t, "alice", "routers", "router", obj{"name": "r"})["id"].(string)
	for _, res := range []struct{ collection, id string }{{"networks", w.alice}, {"subnets", w.aliceSubnet}, {"routers", router}} {
		base := "/network/v2.0/" + res.collection + "/" + res.id + "/tags"
		s.must(t, http.StatusCreated, "alice", "PUT", base+"/red", nil)
		s.must(t, http.StatusCreated, "alice", "PUT", base+"/red", nil)
		s.must(t, http.StatusNoContent, "alice", "GET", base+"/red", nil)
		if status, body := s.do(t, "alice", "GET", base+"/blue", nil); status != http.StatusNotFound || body["NeutronError"].(obj)["type"] != "TagNotFound" {
			t.Errorf("%s: a tag it has not: %d %v, want 404 TagNotFound", res.collection, status, body)
		}
		if tags := s.must(t, http.StatusOK, "alice", "GET", base, nil)["tags"]; !reflect.DeepEqual(tags, []any{"red"}) {
			t.Errorf("%s: tags %v, want red once", res.collection, tags)
		}
		if tags := s.must(t, http.StatusOK, "alice", "PUT", base, obj{"tags": []string{"a", "b", "c"}})["tags"]; !reflect.DeepEqual(tags, []any{"a", "b", "c"}) {
			t.Errorf("%s: tags after the replace %v", res.collection, tags)
		}
		s.must(t, http.StatusNoContent, "alice", "DELETE", base+"/b", nil)
		s.must(t, http.StatusNotFound, "alice", "DELETE", base+"/b", nil)
		shown := s.must(t, http.StatusOK, "alice", "GET", "/network/v2.0/"+res.collection+"/"+res.id, nil)
		for _, v := range shown {
			if got := v.(obj)["tags"]; !reflect.DeepEqual(got, []any{"a", "c"}) {
				t.Errorf("%s: shown with tags %v, want a and c", res.collection, got)
			}
		}
		s.must(t, http.StatusNotFound, "bob", "PUT", base+"/mine", nil)
		s.must(t, http.StatusForbidden, "rita", "PUT", base+"/mine", nil)
		s.must(t, http.StatusNoContent, "alice", "DELETE", base, nil)
		if tags := s.must(t, http.StatusOK, "rita", "GET", base, nil)["tags"]; !reflect.DeepEqual(tags, []any{}) {
			t.Errorf("%s: tags after removing all %v", res.collection, tags)
		}
	}
	s.must(t, http.StatusForbidden, "alice", "PUT", "/network/v2.0/networks/"+w.shared+"/tags/x", nil)
}

func TestRouterInterfaces(t *testing.T) {
	s := newServer(t)
	w := s.world(t)
	router := s.create(t, "alice", "routers", "router", obj{"name": "r"})["id"].(string)
	base := "/network/v2.0/routers/" + router
	s.must(t, http.StatusNotFound, "bob", "PUT", base+"/add_router_interface", obj{"subnet_id": w.aliceSubnet})
	s.must(t, http.StatusForbidden, "rita", "PUT", base+"/add_router_interface", obj{"subnet_id": w.aliceSubnet})
	info := s.must(t, http.StatusOK, "alice", "PUT", base+"/add_router_interface", obj{"subnet_id": w.aliceSubnet})
	if got := ids(s.list(t, "alice", "/network/v2.0/ports?device_id="+router)); !slices.Equal(got, []string{info["port_id"].(string)}) {
		t.Errorf("the router's ports %v, want its interface %s", got, info["port_id"])
	}
	s.must(t, http.StatusBadRequest, "alice", "PUT", base+"/add_router_interface", obj{"subnet_id": w.aliceSubnet})
	s.must(t, http.StatusConflict, "alice", "DELETE", base, nil)
	removed := s.must(t, http.StatusOK, "alice", "PUT", base+"/remove_router_interface", obj{"subnet_id": w.aliceSubnet})
	if removed["port_id"] != info["port_id"] || removed["subnet_id"] != w.aliceSubnet {
		t.Errorf("removed %v, want the interface %v", removed, info)
	}
	s.must(t, http.StatusNotFound, "alice", "PUT", base+"/remove_router_interface", obj{"subnet_id": w.aliceSubnet})
	s.must(t, http.StatusNoContent, "alice", "DELETE", base, nil)
}
