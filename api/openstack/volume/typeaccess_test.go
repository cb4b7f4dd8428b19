package volume_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/trustack/trustack/internal/apitest"
)

// TestTypeAccess shares a private volume type with a project, as
// Tempest's type access tests and `openstack volume type set --project`
// do: only the projects it is shared with see it and make volumes of
// it, until it is no longer shared; only an administrator shares, and
// never a public type.
func TestTypeAccess(t *testing.T) {
	s := newServer(t)
	id := s.must(t, http.StatusOK, "admin", "POST", "/volume/v3/types", obj{"volume_type": obj{"name": "secret",
		"os-volume-type-access:is_public": false}})["volume_type"].(obj)["id"].(string)
	base := "/volume/v3/types/" + id
	visible := func(token string) bool {
		t.Helper()
		for _, vt := range s.must(t, http.StatusOK, token, "GET", "/volume/v3/types", nil)["volume_types"].([]any) {
			if vt.(obj)["id"] == id {
				return true
			}
		}
		return false
	}
	share := func(token, action, project string) int {
		t.Helper()
		code, _ := s.do(t, token, "POST", base+"/action", obj{action: obj{"project": project}})
		return code
	}

	if visible("alice") {
		t.Error("a private type listed for a project it is not shared with")
	}
	if code, _ := s.do(t, "alice", "POST", "/volume/v3/volumes", obj{"volume": obj{"size": 1, "volume_type": id}}); code != http.StatusNotFound {
		t.Errorf("a volume of a private type not shared: %d, want 404", code)
	}
	if code := share("alice", "addProjectAccess", apitest.P1); code != http.StatusForbidden {
		t.Errorf("a member shares a type: %d, want 403", code)
	}
	if code := share("admin", "addProjectAccess", apitest.P1); code != http.StatusAccepted {
		t.Fatalf("share the type: %d, want 202", code)
	}
	if code := share("admin", "addProjectAccess", apitest.P1); code != http.StatusConflict {
		t.Errorf("share it again: %d, want 409", code)
	}
	access := s.must(t, http.StatusOK, "admin", "GET", base+"/os-volume-type-access", nil)["volume_type_access"].([]any)
	if len(access) != 1 || access[0].(obj)["project_id"] != apitest.P1 || access[0].(obj)["volume_type_id"] != id {
		t.Errorf("the type's access: %v, want project %s's", access, apitest.P1)
	}
	if !visible("alice") || visible("bob") {
		t.Errorf("listed for alice %v and for bob %v, want alice's project alone", visible("alice"), visible("bob"))
	}
	if v := s.create(t, "alice", obj{"size": 1, "volume_type": id}); v["volume_type"] != "secret" {
		t.Errorf("a volume of the shared type: %v", v["volume_type"])
	}

	if code := share("admin", "removeProjectAccess", apitest.P1); code != http.StatusAccepted {
		t.Errorf("stop sharing: %d, want 202", code)
	}
	if code := share("admin", "removeProjectAccess", apitest.P1); code != http.StatusNotFound {
		t.Errorf("stop sharing again: %d, want 404", code)
	}
	if visible("alice") {
		t.Error("a type listed for a project it is no longer shared with")
	}
	def := s.must(t, http.StatusOK, "admin", "GET", "/volume/v3/types/default", nil)["volume_type"].(obj)["id"].(string)
	code, body := s.do(t, "admin", "POST", "/volume/v3/types/"+def+"/action", obj{"addProjectAccess": obj{"project": apitest.P1}})
	if code != http.StatusBadRequest || !strings.Contains(body["badRequest"].(obj)["message"].(string), "public") {
		t.Errorf("share a public type: %d %v, want 400", code, body)
	}
}
