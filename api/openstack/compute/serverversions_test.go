package compute_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/trustack/trustack/hypervisor/fake"
	"github.com/trustack/trustack/internal/apitest"
)

// extendedAttributes are the server attributes 2.3 adds for
// administrators.
var extendedAttributes = []string{"OS-EXT-SRV-ATTR:reservation_id", "OS-EXT-SRV-ATTR:launch_index", "OS-EXT-SRV-ATTR:kernel_id",
	"OS-EXT-SRV-ATTR:ramdisk_id", "OS-EXT-SRV-ATTR:hostname", "OS-EXT-SRV-ATTR:root_device_name", "OS-EXT-SRV-ATTR:user_data"}

// TestServerFieldsByVersion: each field a microversion adds to a
// server's detail is there from that version, for whom it is meant, and
// absent below, where Tempest's schemas refuse it.
func TestServerFieldsByVersion(t *testing.T) {
	c := newCloud(t)
	id := c.boot(t, "alice", "My Server_1", obj{"user_data": "IyEvYmluL3NoCg=="})
	for _, tt := range []struct {
		version, token string
		field          string
		want           any // nil: absent
	}{
		{"2.2", "admin", "OS-EXT-SRV-ATTR:hostname", nil},
		{"2.3", "admin", "OS-EXT-SRV-ATTR:hostname", "my-server-1"},
		{"2.3", "admin", "OS-EXT-SRV-ATTR:user_data", "IyEvYmluL3NoCg=="},
		{"2.3", "admin", "OS-EXT-SRV-ATTR:root_device_name", "/dev/vda"},
		{"2.3", "admin", "OS-EXT-SRV-ATTR:launch_index", float64(0)},
		{"2.3", "alice", "OS-EXT-SRV-ATTR:hostname", nil},
		{"2.8", "alice", "locked", nil},
		{"2.9", "alice", "locked", false},
	} {
		t.Run(tt.version+" "+tt.token+" "+tt.field, func(t *testing.T) {
			v := c.at(tt.version)
			shown := v.must(t, http.StatusOK, tt.token, "GET", "/servers/"+id, nil)["server"].(obj)
			listed := item(v.must(t, http.StatusOK, tt.token, "GET", "/servers/detail"+allTenants(tt.token), nil)["servers"], 0)
			for what, s := range map[string]obj{"show": shown, "detail": listed} {
				got, has := s[tt.field]
				if tt.want == nil && has {
					t.Errorf("%s: %s is %v, want it absent", what, tt.field, got)
				}
				if tt.want != nil && got != tt.want {
					t.Errorf("%s: %s is %v, want %v", what, tt.field, got, tt.want)
				}
			}
		})
	}
	shown := c.at("2.3").must(t, http.StatusOK, "admin", "GET", "/servers/"+id, nil)["server"].(obj)
	for _, f := range extendedAttributes {
		if _, has := shown[f]; !has {
			t.Errorf("2.3, admin: %s absent", f)
		}
	}
	c.must(t, http.StatusAccepted, "alice", "POST", "/servers/"+id+"/action", obj{"lock": nil})
	for version, want := range map[string]any{"2.9": true, "2.8": nil} {
		updated := c.at(version).must(t, http.StatusOK, "alice", "PUT", "/servers/"+id, obj{"server": obj{"name": "renamed"}})["server"].(obj)
		if got, has := updated["locked"]; want == nil && has || want != nil && got != want {
			t.Errorf("update at %s: locked %v (present %v), want %v", version, got, has, want)
		}
	}
}

// TestIP6FilterForMembers: until 2.5 ip6 is an administrator's filter
// that others' lists ignore; from 2.5 it filters every caller's list.
func TestIP6FilterForMembers(t *testing.T) {
	c := newCloud(t)
	c.boot(t, "alice", "vm", nil)
	for _, tt := range []struct {
		version, token string
		want           int
	}{
		{"2.4", "alice", 1},
		{"2.5", "alice", 0},
		{"2.4", "admin", 0},
	} {
		list := c.at(tt.version).must(t, http.StatusOK, tt.token, "GET", "/servers?ip6=fd00:dead&"+allTenants(tt.token)[1:], nil)["servers"].([]any)
		if len(list) != tt.want {
			t.Errorf("%s as %s: %d servers match ip6=fd00:dead, want %d", tt.version, tt.token, len(list), tt.want)
		}
	}
}

// allTenants is the query that lists the servers of every project for an
// administrator, and nothing for others.
func allTenants(token string) string {
	if token == "admin" {
		return "?all_tenants=1"
	}
	return "?"
}

// TestAccessToPublicFlavor: from 2.7 sharing a public flavor with a
// project is a conflict; before, it is recorded (to no effect) as Nova
// recorded it.
func TestAccessToPublicFlavor(t *testing.T) {
	c := newCloud(t)
	c.at("2.7").must(t, http.StatusConflict, "admin", "POST", "/flavors/1/action", obj{"addTenantAccess": obj{"tenant": "p-other"}})
	access := c.at("2.6").must(t, http.StatusOK, "admin", "POST", "/flavors/1/action", obj{"addTenantAccess": obj{"tenant": "p-other"}})["flavor_access"].([]any)
	if len(access) != 1 || item(access, 0)["tenant_id"] != "p-other" {
		t.Errorf("2.6: flavor_access %v, want the one share", access)
	}
	c.at("2.7").must(t, http.StatusOK, "admin", "POST", "/flavors/1/action", obj{"removeTenantAccess": obj{"tenant": "p-other"}})
}

// TestForcedDown: from 2.11 services show forced_down, and an
// administrator forces a host's service down (it is then down whatever
// its heartbeats say) and back.
func TestForcedDown(t *testing.T) {
	c := newCloud(t)
	if svc := item(c.at("2.10").must(t, http.StatusOK, "admin", "GET", "/os-services", nil)["services"], 0); svc["forced_down"] != nil {
		t.Errorf("2.10: forced_down %v, want it absent", svc["forced_down"])
	}
	force := func(version string, down bool) (int, obj) {
		return c.at(version).do(t, "admin", "PUT", "/os-services/force-down", obj{"host": "host-0", "binary": "nova-compute", "forced_down": down})
	}
	if status, body := force("2.10", true); status != http.StatusNotFound {
		t.Errorf("force-down at 2.10: status %d, want 404: %v", status, body)
	}
	for _, down := range []bool{true, false} {
		status, body := force("2.11", down)
		if status != http.StatusOK || body["service"].(obj)["forced_down"] != down {
			t.Fatalf("force-down %v at 2.11: %d %v", down, status, body)
		}
		svc := item(c.at("2.11").must(t, http.StatusOK, "admin", "GET", "/os-services", nil)["services"], 0)
		want := map[bool]string{true: "down", false: "up"}[down]
		if svc["forced_down"] != down || svc["state"] != want {
			t.Errorf("forced down %v: service forced_down %v, state %v; want %v, %s", down, svc["forced_down"], svc["state"], down, want)
		}
	}
	if status, _ := c.at("2.11").do(t, "alice", "PUT", "/os-services/force-down", obj{"host": "host-0", "binary": "nova-compute", "forced_down": true}); status != http.StatusForbidden {
		t.Errorf("a member forces a host down: status %d, want 403", status)
	}
}

// TestServerGroupVersions: from 2.13 groups show their project and user;
// from 2.15 they may have a soft policy, refused below.
func TestServerGroupVersions(t *testing.T) {
	c := newCloud(t)
	for _, tt := range []struct {
		version, policy string
		status          int
		owners          bool
	}{
		{"2.12", "affinity", http.StatusOK, false},
		{"2.13", "anti-affinity", http.StatusOK, true},
		{"2.14", "soft-affinity", http.StatusBadRequest, true},
		{"2.14", "soft-anti-affinity", http.StatusBadRequest, true},
		{"2.15", "soft-affinity", http.StatusOK, true},
		{"2.15", "soft-anti-affinity", http.StatusOK, true},
	} {
		t.Run(tt.version+" "+tt.policy, func(t *testing.T) {
			v := c.at(tt.version)
			status, body := v.do(t, "alice", "POST", "/os-server-groups", obj{"server_group": obj{"name": "g", "policies": []string{tt.policy}}})
			if status != tt.status {
				t.Fatalf("create: status %d, want %d: %v", status, tt.status, body)
			}
			if status != http.StatusOK {
				return
			}
			id := body["server_group"].(obj)["id"].(string)
			shown := v.must(t, http.StatusOK, "alice", "GET", "/os-server-groups/"+id, nil)["server_group"].(obj)
			for what, g := range map[string]obj{"create": body["server_group"].(obj), "show": shown} {
				project, hasProject := g["project_id"]
				user, hasUser := g["user_id"]
				if hasProject != tt.owners || hasUser != tt.owners || tt.owners && (project != apitest.P1 || user != "u-alice") {
					t.Errorf("%s: project_id %v, user_id %v; want present %v", what, project, user, tt.owners)
				}
			}
		})
	}
}

// TestHostStatus: from 2.16 an administrator sees the state of a
// server's host in its detail: UP, MAINTENANCE while the host is
// disabled, DOWN while it is forced down; a member does not see it, nor
// anyone below 2.16.
func TestHostStatus(t *testing.T) {
	c := newCloud(t)
	id := c.boot(t, "alice", "vm", nil)
	status := func(version, token string) (any, bool) {
		t.Helper()
		shown := c.at(version).must(t, http.StatusOK, token, "GET", "/servers/"+id, nil)["server"].(obj)
		listed := item(c.at(version).must(t, http.StatusOK, token, "GET", "/servers/detail"+allTenants(token), nil)["servers"], 0)
		a, hasA := shown["host_status"]
		b, hasB := listed["host_status"]
		if a != b || hasA != hasB {
			t.Errorf("%s as %s: show says host_status %v, detail %v", version, token, a, b)
		}
		return a, hasA
	}
	if got, has := status("2.15", "admin"); has {
		t.Errorf("2.15: host_status %v, want it absent", got)
	}
	if got, has := status("2.16", "alice"); has {
		t.Errorf("2.16 as a member: host_status %v, want it absent", got)
	}
	for _, step := range []struct {
		path string
		body obj
		want string
	}{
		{"", nil, "UP"},
		{"/os-services/disable", obj{"host": "host-0", "binary": "nova-compute"}, "MAINTENANCE"},
		{"/os-services/force-down", obj{"host": "host-0", "binary": "nova-compute", "forced_down": true}, "DOWN"},
		{"/os-services/force-down", obj{"host": "host-0", "binary": "nova-compute", "forced_down": false}, "MAINTENANCE"},
		{"/os-services/enable", obj{"host": "host-0", "binary": "nova-compute"}, "UP"},
	} {
		if step.path != "" {
			c.at("2.16").must(t, http.StatusOK, "admin", "PUT", step.path, step.body)
		}
		if got, _ := status("2.16", "admin"); got != step.want {
			t.Errorf("after %s %v: host_status %v, want %s", step.path, step.body, got, step.want)
		}
	}
}

// TestServerDescription: from 2.19 a server has a description, given at
// creation, changed (or removed with null) by update, shown in its
// detail and in update's answer; below, it is not a field, and a server
// made there has its name for description, as in Nova.
func TestServerDescription(t *testing.T) {
	c := newCloud(t)
	v := c.at("2.19")
	body := func(attrs obj) obj {
		b := obj{"name": "vm", "imageRef": c.image, "flavorRef": "1", "networks": "none"}
		for k, val := range attrs {
			b[k] = val
		}
		return obj{"server": b}
	}
	c.at("2.18").must(t, http.StatusBadRequest, "alice", "POST", "/servers", body(obj{"description": "early"}))
	v.must(t, http.StatusBadRequest, "alice", "POST", "/servers", body(obj{"description": strings.Repeat("x", 256)}))
	v.must(t, http.StatusBadRequest, "alice", "POST", "/servers", body(obj{"description": "a\x01bell"}))
	described := v.must(t, http.StatusAccepted, "alice", "POST", "/servers", body(obj{"description": "the web tier"}))["server"].(obj)["id"].(string)
	plain := v.must(t, http.StatusAccepted, "alice", "POST", "/servers", body(nil))["server"].(obj)["id"].(string)
	old := c.at("2.1").must(t, http.StatusAccepted, "alice", "POST", "/servers", body(obj{"name": "legacy"}))["server"].(obj)["id"].(string)
	for _, tt := range []struct {
		id, version string
		want        any // nil: null; absent: absent
	}{
		{described, "2.19", "the web tier"},
		{plain, "2.19", nil},
		{old, "2.19", "legacy"},
		{described, "2.18", "absent"},
	} {
		s := c.at(tt.version).must(t, http.StatusOK, "alice", "GET", "/servers/"+tt.id, nil)["server"].(obj)
		got, has := s["description"]
		if tt.want == "absent" && has || tt.want != "absent" && (!has || got != tt.want) {
			t.Errorf("server %s at %s: description %v (present %v), want %v", s["name"], tt.version, got, has, tt.want)
		}
	}
	c.at("2.18").must(t, http.StatusBadRequest, "alice", "PUT", "/servers/"+described, obj{"server": obj{"description": "late"}})
	for _, d := range []any{"the db tier", nil, ""} {
		updated := v.must(t, http.StatusOK, "alice", "PUT", "/servers/"+described, obj{"server": obj{"description": d}})["server"].(obj)
		shown := v.must(t, http.StatusOK, "alice", "GET", "/servers/"+described, nil)["server"].(obj)
		for what, s := range map[string]obj{"update": updated, "show": shown} {
			if got, has := s["description"]; !has || got != d {
				t.Errorf("after update to %v: %s says %v (present %v)", d, what, got, has)
			}
		}
	}
}

// TestActionsOfDeletedServers: from 2.21 the instance actions of a
// deleted server can still be read, its delete among them; below, the
// server is not found.
func TestActionsOfDeletedServers(t *testing.T) {
	c := newCloud(t)
	id := c.boot(t, "alice", "vm", nil)
	c.must(t, http.StatusNoContent, "alice", "DELETE", "/servers/"+id, nil)
	waitFor(t, "the server to be deleted", func() bool {
		status, _ := c.do(t, "alice", "GET", "/servers/"+id, nil)
		return status == http.StatusNotFound
	})
	c.at("2.20").must(t, http.StatusNotFound, "alice", "GET", "/servers/"+id+"/os-instance-actions", nil)
	list := c.at("2.21").must(t, http.StatusOK, "alice", "GET", "/servers/"+id+"/os-instance-actions", nil)["instanceActions"].([]any)
	var actions []string
	for i := range list {
		actions = append(actions, item(list, i)["action"].(string))
	}
	if !slices.Contains(actions, "delete") || !slices.Contains(actions, "create") {
		t.Fatalf("2.21: actions %v, want create and delete", actions)
	}
	request := item(list, 0)["request_id"].(string)
	c.at("2.20").must(t, http.StatusNotFound, "alice", "GET", "/servers/"+id+"/os-instance-actions/"+request, nil)
	c.at("2.21").must(t, http.StatusOK, "alice", "GET", "/servers/"+id+"/os-instance-actions/"+request, nil)
	c.at("2.21").must(t, http.StatusNotFound, "bob", "GET", "/servers/"+id+"/os-instance-actions", nil)
}

// TestTriggerCrashDump: from 2.17 a server's user sends it a
// non-maskable interrupt (the fake guest's console logs it), recorded as
// an instance action, the server going on as it was; a server not
// running refuses it with 409, and below 2.17 the action is not found.
func TestTriggerCrashDump(t *testing.T) {
	c := newCloud(t)
	id := c.boot(t, "alice", "vm", nil)
	dump := obj{"trigger_crash_dump": nil}
	c.at("2.16").must(t, http.StatusNotFound, "alice", "POST", "/servers/"+id+"/action", dump)
	c.at("2.17").must(t, http.StatusBadRequest, "alice", "POST", "/servers/"+id+"/action", obj{"trigger_crash_dump": obj{}})
	c.at("2.17").must(t, http.StatusNotFound, "bob", "POST", "/servers/"+id+"/action", dump)
	c.at("2.17").must(t, http.StatusAccepted, "alice", "POST", "/servers/"+id+"/action", dump)
	waitFor(t, "the guest to log the NMI", func() bool {
		out, err := c.hv.Console(ctx, id, 0)
		return err == nil && strings.Contains(out, fake.NMILine)
	})
	var request string
	waitFor(t, "the crash dump's event to finish", func() bool {
		for _, a := range c.must(t, http.StatusOK, "alice", "GET", "/servers/"+id+"/os-instance-actions", nil)["instanceActions"].([]any) {
			if a.(obj)["action"] == "trigger_crash_dump" {
				request = a.(obj)["request_id"].(string)
			}
		}
		if request == "" {
			return false
		}
		events := c.must(t, http.StatusOK, "admin", "GET", "/servers/"+id+"/os-instance-actions/"+request, nil)["instanceAction"].(obj)["events"].([]any)
		return len(events) == 1 && item(events, 0)["event"] == "compute_trigger_crash_dump" && item(events, 0)["result"] == "Success"
	})
	if s := c.must(t, http.StatusOK, "alice", "GET", "/servers/"+id, nil)["server"].(obj); s["status"] != "ACTIVE" || s["OS-EXT-STS:power_state"] != float64(1) {
		t.Errorf("after the crash dump: status %v, power state %v; want ACTIVE, 1", s["status"], s["OS-EXT-STS:power_state"])
	}
	c.must(t, http.StatusAccepted, "alice", "POST", "/servers/"+id+"/action", obj{"os-stop": nil})
	c.waitStatus(t, "alice", id, "SHUTOFF")
	c.at("2.17").must(t, http.StatusConflict, "alice", "POST", "/servers/"+id+"/action", dump)
}
