package compute_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestEvacuateRefusals checks Nova's evacuate at 2.1: an operator's,
// with onSharedStorage, of a server whose host is down. The fake host
// here is up, so even a well-formed request is refused, and the server
// stays as it was.
func TestEvacuateRefusals(t *testing.T) {
	c := newCloud(t)
	vm := c.boot(t, "alice", "vm", nil)
	for _, tc := range []struct {
		name   string
		token  string
		body   obj
		status int
		says   string
	}{
		{"by a member", "alice", obj{"onSharedStorage": false}, http.StatusForbidden, "os-evacuate"},
		{"without onSharedStorage", "admin", obj{"host": "compute-2"}, http.StatusBadRequest, "onSharedStorage"},
		{"onSharedStorage not a boolean", "admin", obj{"onSharedStorage": "perhaps"}, http.StatusBadRequest, "onSharedStorage"},
		{"an empty host", "admin", obj{"onSharedStorage": false, "host": ""}, http.StatusBadRequest, "host"},
		{"an unknown field", "admin", obj{"onSharedStorage": false, "force": true}, http.StatusBadRequest, "force"},
		{"its host is up", "admin", obj{"onSharedStorage": "False"}, http.StatusBadRequest, "still in use"},
	} {
		status, body := c.do(t, tc.token, "POST", "/servers/"+vm+"/action", obj{"evacuate": tc.body})
		if status != tc.status || !strings.Contains(fmt.Sprint(body), tc.says) {
			t.Errorf("evacuate %s: %d %v, want %d saying %q", tc.name, status, body, tc.status, tc.says)
		}
	}
	if s := c.must(t, http.StatusOK, "alice", "GET", "/servers/"+vm, nil)["server"].(obj); s["status"] != "ACTIVE" || s["OS-EXT-STS:task_state"] != nil {
		t.Errorf("after refused evacuations: status %v, task %v, want ACTIVE and none", s["status"], s["OS-EXT-STS:task_state"])
	}
}

// TestEvacuateAt214: from 2.14 onSharedStorage is not a field of
// evacuate, and a request without it goes on to the checks of the
// server's host (here up, so refused).
func TestEvacuateAt214(t *testing.T) {
	c := newCloud(t)
	vm := c.boot(t, "alice", "vm", nil)
	for _, tc := range []struct {
		version string
		body    obj
		says    string
	}{
		{"2.14", obj{"onSharedStorage": false}, "onSharedStorage"},
		{"2.14", obj{"adminPass": "secret"}, "still in use"},
		{"2.13", obj{"adminPass": "secret"}, "onSharedStorage"},
	} {
		status, body := c.at(tc.version).do(t, "admin", "POST", "/servers/"+vm+"/action", obj{"evacuate": tc.body})
		if status != http.StatusBadRequest || !strings.Contains(fmt.Sprint(body), tc.says) {
			t.Errorf("evacuate %v at %s: %d %v, want 400 saying %q", tc.body, tc.version, status, body, tc.says)
		}
	}
}

// TestEvacuateAnswerByVersion: once an operator forces a server's host
// down (2.11), evacuate is accepted: with the admin password in the
// answer up to 2.13, with no body from 2.14.
func TestEvacuateAnswerByVersion(t *testing.T) {
	c := newCloud(t)
	old, latest := c.boot(t, "alice", "old", nil), c.boot(t, "alice", "new", nil)
	c.at("2.11").must(t, http.StatusOK, "admin", "PUT", "/os-services/force-down", obj{"host": "host-0", "binary": "nova-compute", "forced_down": true})
	body := c.at("2.13").must(t, http.StatusOK, "admin", "POST", "/servers/"+old+"/action", obj{"evacuate": obj{"onSharedStorage": false, "adminPass": "s3cret"}})
	if body["adminPass"] != "s3cret" {
		t.Errorf("evacuate at 2.13: %v, want the admin password given", body)
	}
	if body := c.at("2.14").must(t, http.StatusOK, "admin", "POST", "/servers/"+latest+"/action", obj{"evacuate": obj{"adminPass": "s3cret"}}); body != nil {
		t.Errorf("evacuate at 2.14: body %v, want none", body)
	}
}
