package compute_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/trustack/trustack"
)

// keysOf returns an object's keys, sorted.
func keysOf(o obj) []string {
	var keys []string
	for k := range o {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Tempest's schemas of an aggregate (additionalProperties false, every
// property required): creation shows no hosts and metadata.
var (
	createdKeys   = []string{"availability_zone", "created_at", "deleted", "deleted_at", "id", "name", "updated_at"}
	aggregateKeys = []string{"availability_zone", "created_at", "deleted", "deleted_at", "hosts", "id", "metadata", "name", "updated_at"}
)

// TestAggregates follows an aggregate through Nova's os-aggregates at
// 2.1, with the shapes Tempest checks, and a server asking for the
// aggregate's availability zone placed in it.
func TestAggregates(t *testing.T) {
	c := newCloud(t)
	created := c.must(t, http.StatusOK, "admin", "POST", "/os-aggregates", obj{"aggregate": obj{"name": "agg1", "availability_zone": "z1"}})["aggregate"].(obj)
	if got := keysOf(created); !slices.Equal(got, createdKeys) {
		t.Errorf("created aggregate has %v, want %v", got, createdKeys)
	}
	if created["name"] != "agg1" || created["availability_zone"] != "z1" || created["deleted"] != false || created["updated_at"] != nil {
		t.Errorf("created aggregate: %v", created)
	}
	id := fmt.Sprint(int(created["id"].(float64)))
	path := "/os-aggregates/" + id

	added := c.must(t, http.StatusOK, "admin", "POST", path+"/action", obj{"add_host": obj{"host": "host-0"}})["aggregate"].(obj)
	if got := keysOf(added); !slices.Equal(got, aggregateKeys) {
		t.Errorf("aggregate has %v, want %v", got, aggregateKeys)
	}
	if fmt.Sprint(added["hosts"]) != "[host-0]" {
		t.Errorf("hosts after add_host: %v, want [host-0]", added["hosts"])
	}
	set := c.must(t, http.StatusOK, "admin", "POST", path+"/action", obj{"set_metadata": obj{"metadata": obj{"k": "v", "gone": nil}}})["aggregate"].(obj)
	if fmt.Sprint(set["metadata"]) != "map[availability_zone:z1 k:v]" || set["updated_at"] == nil {
		t.Errorf("after set_metadata: metadata %v, updated_at %v", set["metadata"], set["updated_at"])
	}
	c.must(t, http.StatusOK, "admin", "POST", path+"/action", obj{"set_metadata": obj{"metadata": obj{"k": nil}}})
	shown := c.must(t, http.StatusOK, "admin", "GET", path, nil)["aggregate"].(obj)
	if fmt.Sprint(shown["metadata"]) != "map[availability_zone:z1]" {
		t.Errorf("a null value left metadata %v, want only the zone", shown["metadata"])
	}

	// The host's zone is the aggregate's: listed, and where a server
	// asking for it lands, showing it.
	zones := c.must(t, http.StatusOK, "admin", "GET", "/os-availability-zone/detail", nil)["availabilityZoneInfo"].([]any)
	if len(zones) != 1 || item(zones, 0)["zoneName"] != "z1" || item(zones, 0)["hosts"].(obj)["host-0"] == nil {
		t.Errorf("zones: %v, want z1 with host-0", zones)
	}
	vm := c.boot(t, "alice", "vm", obj{"availability_zone": "z1"})
	if s := c.must(t, http.StatusOK, "admin", "GET", "/servers/"+vm, nil)["server"].(obj); s["OS-EXT-AZ:availability_zone"] != "z1" || s["OS-EXT-SRV-ATTR:host"] != "host-0" {
		t.Errorf("server in z1: zone %v on %v, want z1 on host-0", s["OS-EXT-AZ:availability_zone"], s["OS-EXT-SRV-ATTR:host"])
	}
	if status, body := c.do(t, "alice", "POST", "/servers", obj{"server": obj{"name": "vm2", "imageRef": c.image, "flavorRef": "1", "availability_zone": "nova"}}); status != http.StatusBadRequest {
		t.Errorf("a server in zone nova, which has no hosts now: %d %v, want 400", status, body)
	}

	// Nova's refusals, each saying what is wrong and changing nothing.
	c.must(t, http.StatusOK, "admin", "POST", "/os-aggregates", obj{"aggregate": obj{"name": "agg2"}})
	other := c.must(t, http.StatusOK, "admin", "POST", "/os-aggregates", obj{"aggregate": obj{"name": "other", "availability_zone": "z2"}})["aggregate"].(obj)
	otherPath := fmt.Sprint("/os-aggregates/", int(other["id"].(float64)))
	for _, tc := range []struct {
		name, token, method, path string
		body                      any
		status                    int
		says                      string
	}{
		{"list by a member", "alice", "GET", "/os-aggregates", nil, http.StatusForbidden, "os-aggregates:index"},
		{"create by a member", "alice", "POST", "/os-aggregates", obj{"aggregate": obj{"name": "x"}}, http.StatusForbidden, "os-aggregates:create"},
		{"add_host by a member", "alice", "POST", path + "/action", obj{"add_host": obj{"host": "host-0"}}, http.StatusForbidden, "add_host"},
		{"a name in use", "admin", "POST", "/os-aggregates", obj{"aggregate": obj{"name": "agg1"}}, http.StatusConflict, "agg1 already exists"},
		{"an empty name", "admin", "POST", "/os-aggregates", obj{"aggregate": obj{"name": ""}}, http.StatusBadRequest, "aggregate name"},
		{"a name too long", "admin", "POST", "/os-aggregates", obj{"aggregate": obj{"name": strings.Repeat("a", 256)}}, http.StatusBadRequest, "255"},
		{"a domain's name", "admin", "POST", "/os-aggregates", obj{"aggregate": obj{"name": "domain:x"}}, http.StatusBadRequest, "physical domains"},
		{"a zone with a colon", "admin", "POST", "/os-aggregates", obj{"aggregate": obj{"name": "y", "availability_zone": "a:b"}}, http.StatusBadRequest, "colon"},
		{"an unknown aggregate", "admin", "GET", "/os-aggregates/9999", nil, http.StatusNotFound, "9999"},
		{"a name as ID", "admin", "GET", "/os-aggregates/agg1", nil, http.StatusNotFound, "agg1"},
		{"an unknown host", "admin", "POST", path + "/action", obj{"add_host": obj{"host": "nowhere"}}, http.StatusNotFound, "nowhere"},
		{"a host it has", "admin", "POST", path + "/action", obj{"add_host": obj{"host": "host-0"}}, http.StatusConflict, "already has host host-0"},
		{"a host in another zone", "admin", "POST", otherPath + "/action", obj{"add_host": obj{"host": "host-0"}}, http.StatusConflict, "availability zone(s) z1"},
		{"removing a host it has not", "admin", "POST", otherPath + "/action", obj{"remove_host": obj{"host": "host-0"}}, http.StatusNotFound, "has no host host-0"},
		{"a zone change under servers", "admin", "PUT", path, obj{"aggregate": obj{"availability_zone": "z9"}}, http.StatusBadRequest, "runs 1 servers"},
		{"a zone change through metadata", "admin", "POST", path + "/action", obj{"set_metadata": obj{"metadata": obj{"availability_zone": "z9"}}}, http.StatusBadRequest, "runs 1 servers"},
		{"removing the zone", "admin", "POST", path + "/action", obj{"set_metadata": obj{"metadata": obj{"availability_zone": nil}}}, http.StatusBadRequest, "empty named availability zone"},
		{"a null zone", "admin", "PUT", path, obj{"aggregate": obj{"availability_zone": nil}}, http.StatusBadRequest, "empty named availability zone"},
		{"renaming to a name in use", "admin", "PUT", path, obj{"aggregate": obj{"name": "agg2"}}, http.StatusConflict, "agg2 already exists"},
		{"two actions", "admin", "POST", path + "/action", obj{"add_host": obj{"host": "host-0"}, "remove_host": obj{"host": "host-0"}}, http.StatusBadRequest, "one of"},
		{"deleting a non-empty aggregate", "admin", "DELETE", path, nil, http.StatusBadRequest, "still has hosts host-0"},
	} {
		status, body := c.do(t, tc.token, tc.method, tc.path, tc.body)
		if status != tc.status || !strings.Contains(fmt.Sprint(body), tc.says) {
			t.Errorf("%s: %d %v, want %d saying %q", tc.name, status, body, tc.status, tc.says)
		}
	}
	if a := c.must(t, http.StatusOK, "admin", "GET", path, nil)["aggregate"].(obj); a["name"] != "agg1" || a["availability_zone"] != "z1" || fmt.Sprint(a["hosts"]) != "[host-0]" {
		t.Errorf("after the refusals: %v", a)
	}

	// Renamed; emptied and deleted, with Nova's 200 and an empty body.
	renamed := c.must(t, http.StatusOK, "admin", "PUT", path, obj{"aggregate": obj{"name": "agg1-new"}})["aggregate"].(obj)
	if renamed["name"] != "agg1-new" || renamed["updated_at"] == nil {
		t.Errorf("renamed: %v", renamed)
	}
	c.must(t, http.StatusNoContent, "alice", "DELETE", "/servers/"+vm, nil)
	waitFor(t, "the server to go", func() bool {
		status, _ := c.do(t, "alice", "GET", "/servers/"+vm, nil)
		return status == http.StatusNotFound
	})
	c.must(t, http.StatusOK, "admin", "POST", path+"/action", obj{"remove_host": obj{"host": "host-0"}})
	if status, _ := c.do(t, "admin", "DELETE", path, nil); status != http.StatusOK {
		t.Errorf("delete an empty aggregate: %d, want 200", status)
	}
	zones = c.must(t, http.StatusOK, "admin", "GET", "/os-availability-zone", nil)["availabilityZoneInfo"].([]any)
	if len(zones) != 1 || item(zones, 0)["zoneName"] != "nova" {
		t.Errorf("zones once the host left z1: %v, want nova", zones)
	}
}

// TestDomainAggregates checks that an operator sees each physical domain
// as an aggregate, which os-aggregates does not change.
func TestDomainAggregates(t *testing.T) {
	c := newCloud(t)
	if err := c.db.CreateLocation(ctx, &trustack.Location{Name: "fra1", Country: "DE"}); err != nil {
		t.Fatal(err)
	}
	if err := c.db.CreatePhysicalDomain(ctx, &trustack.PhysicalDomain{Name: "d-fra", Location: "fra1", Capabilities: map[string]string{"gpu": "a100"},
		DCoT: "gold", Source: trustack.SourceLocal}); err != nil {
		t.Fatal(err)
	}
	h, err := c.db.HostByName(ctx, "host-0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.db.UpdateHost(ctx, h.ID, func(h *trustack.Host) error { h.Domain = "d-fra"; return nil }); err != nil {
		t.Fatal(err)
	}
	list := c.must(t, http.StatusOK, "admin", "GET", "/os-aggregates", nil)["aggregates"].([]any)
	if len(list) != 1 {
		t.Fatalf("aggregates: %v, want the domain's", list)
	}
	d := item(list, 0)
	if got := keysOf(d); !slices.Equal(got, aggregateKeys) {
		t.Errorf("domain aggregate has %v, want %v", got, aggregateKeys)
	}
	want := "map[acaas:country:DE acaas:dcot:gold acaas:location:fra1 acaas:source:local gpu:a100]"
	if d["name"] != "domain:d-fra" || fmt.Sprint(d["hosts"]) != "[host-0]" || fmt.Sprint(d["metadata"]) != want || d["availability_zone"] != nil {
		t.Errorf("domain aggregate: %v, want domain:d-fra with host-0 and metadata %s", d, want)
	}
	path := fmt.Sprint("/os-aggregates/", int(d["id"].(float64)))
	if shown := c.must(t, http.StatusOK, "admin", "GET", path, nil)["aggregate"].(obj); shown["name"] != "domain:d-fra" {
		t.Errorf("shown by ID: %v", shown)
	}
	for _, tc := range []struct {
		name, method, path string
		body               any
	}{
		{"add_host", "POST", path + "/action", obj{"add_host": obj{"host": "host-0"}}},
		{"remove_host", "POST", path + "/action", obj{"remove_host": obj{"host": "host-0"}}},
		{"set_metadata", "POST", path + "/action", obj{"set_metadata": obj{"metadata": obj{"gpu": "h100"}}}},
		{"update", "PUT", path, obj{"aggregate": obj{"name": "mine"}}},
		{"delete", "DELETE", path, nil},
	} {
		status, body := c.do(t, "admin", tc.method, tc.path, tc.body)
		if status != http.StatusConflict || !strings.Contains(fmt.Sprint(body), "trustack manage domain") {
			t.Errorf("%s of a domain's aggregate: %d %v, want 409 saying to change the domain", tc.name, status, body)
		}
	}
}
