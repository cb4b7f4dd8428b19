package identity_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/identity"
)

func (s *server) id(t testing.TB, kind, name string) string {
	t.Helper()
	ctx := context.Background()
	var id string
	switch kind {
	case "user":
		us, err := s.store.Users(ctx, trustack.UserFilter{Name: name})
		if err != nil || len(us) != 1 {
			t.Fatalf("user %s: %v", name, err)
		}
		id = us[0].ID
	default:
		ps, err := s.store.Projects(ctx, trustack.ProjectFilter{Name: name})
		if err != nil || len(ps) != 1 {
			t.Fatalf("project %s: %v", name, err)
		}
		id = ps[0].ID
	}
	return id
}

// decode reads a JSON response of the wanted status into v.
func decode(t testing.TB, resp *http.Response, status int, v any) {
	t.Helper()
	if resp.StatusCode != status {
		_, message := keystoneError(t, resp)
		t.Fatalf("%s %s: status %d (%s), want %d", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, message, status)
	}
	if v != nil {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
}

type credentialBody struct {
	Credential struct {
		ID, Type, Blob, Note string
		UserID               string  `json:"user_id"`
		ProjectID            *string `json:"project_id"`
		Links                struct{ Self string }
	}
}

func TestCredentialsOverHTTP(t *testing.T) {
	s := newServer(t)
	alice, demo := s.id(t, "user", "alice"), s.id(t, "project", "demo")
	admin := s.id(t, "user", "admin")

	// A member keeps a credential of their own, and gets it back as it was.
	blob := `{"access": "alice-key", "secret": "alice-secret"}`
	body, _ := json.Marshal(map[string]any{"credential": map[string]any{"user_id": alice, "project_id": demo, "type": "ec2", "blob": blob, "note": "laptop"}})
	var c credentialBody
	decode(t, s.do(t, "POST", "/identity/v3/credentials", s.alice, string(body)), 201, &c)
	id := c.Credential.ID
	if len(id) != 64 || c.Credential.Blob != blob || c.Credential.UserID != alice || c.Credential.ProjectID == nil || *c.Credential.ProjectID != demo ||
		c.Credential.Type != "ec2" || c.Credential.Note != "laptop" || c.Credential.Links.Self != "http://127.0.0.1/identity/v3/credentials/"+id {
		t.Errorf("created: got %+v", c.Credential)
	}
	decode(t, s.do(t, "GET", "/identity/v3/credentials/"+id, s.alice, ""), 200, &c)
	if c.Credential.Blob != blob {
		t.Errorf("shown blob: got %q, want %q", c.Credential.Blob, blob)
	}
	// The admin's own credential, of another type and without a project.
	var cert credentialBody
	decode(t, s.do(t, "POST", "/identity/v3/credentials", s.admin, `{"credential": {"user_id": "`+admin+`", "type": "cert", "blob": "PEM"}}`), 201, &cert)
	if cert.Credential.ProjectID != nil {
		t.Errorf("a credential without a project: project_id %q, want null", *cert.Credential.ProjectID)
	}

	// Lists: a member sees only their own; the admin sees all, filtered.
	list := func(token, query string) []string {
		var l struct {
			Credentials []struct{ ID string }
			Links       struct{ Self string }
		}
		decode(t, s.do(t, "GET", "/identity/v3/credentials"+query, token, ""), 200, &l)
		ids := []string{}
		for _, c := range l.Credentials {
			ids = append(ids, c.ID)
		}
		slices.Sort(ids)
		return ids
	}
	all := []string{id, cert.Credential.ID}
	slices.Sort(all)
	for _, tc := range []struct {
		who, token, query string
		want              []string
	}{
		{"alice", s.alice, "", []string{id}},
		{"alice, the admin's", s.alice, "?user_id=" + admin, []string{}},
		{"admin", s.admin, "", all},
		{"admin, by user", s.admin, "?user_id=" + alice, []string{id}},
		{"admin, by type", s.admin, "?type=cert", []string{cert.Credential.ID}},
	} {
		if got := list(tc.token, tc.query); !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.who, got, tc.want)
		}
	}

	// Updates keep the ID, even of a new access key.
	blob2 := `{"access": "alice-key-2", "secret": "alice-secret-2"}`
	body, _ = json.Marshal(map[string]any{"credential": map[string]any{"blob": blob2}})
	decode(t, s.do(t, "PATCH", "/identity/v3/credentials/"+id, s.alice, string(body)), 200, &c)
	if c.Credential.ID != id || c.Credential.Blob != blob2 {
		t.Errorf("updated: got %+v", c.Credential)
	}

	for _, tc := range []struct {
		name, method, path, token, body string
		status                          int
		message                         string
	}{
		{"another's credential", "GET", "/identity/v3/credentials/" + cert.Credential.ID, s.alice, "", 403, "identity:get_credential"},
		{"a credential for another", "POST", "/identity/v3/credentials", s.alice, `{"credential": {"user_id": "` + admin + `", "type": "cert", "blob": "x"}}`, 403, "identity:create_credential"},
		{"giving one's credential away", "PATCH", "/identity/v3/credentials/" + id, s.alice, `{"credential": {"user_id": "` + admin + `"}}`, 403, "identity:update_credential"},
		{"deleting another's", "DELETE", "/identity/v3/credentials/" + cert.Credential.ID, s.alice, "", 403, "identity:delete_credential"},
		{"unknown", "GET", "/identity/v3/credentials/nope", s.admin, "", 404, "Could not find credential"},
		{"no blob", "POST", "/identity/v3/credentials", s.admin, `{"credential": {"user_id": "` + admin + `", "type": "cert"}}`, 400, "'blob' is a required property"},
		{"no type", "POST", "/identity/v3/credentials", s.admin, `{"credential": {"user_id": "` + admin + `", "blob": "x"}}`, 400, "'type' is a required property"},
		{"ec2 without project", "POST", "/identity/v3/credentials", s.admin, `{"credential": {"user_id": "` + admin + `", "type": "ec2", "blob": "{\"access\": \"a\", \"secret\": \"s\"}"}}`, 400, "project"},
		{"ec2 blob not JSON", "POST", "/identity/v3/credentials", s.admin, `{"credential": {"user_id": "` + admin + `", "project_id": "` + demo + `", "type": "ec2", "blob": "a"}}`, 400, "Invalid blob"},
		{"access in use", "POST", "/identity/v3/credentials", s.admin, `{"credential": {"user_id": "` + admin + `", "project_id": "` + demo + `", "type": "ec2", "blob": "{\"access\": \"alice-key-2\", \"secret\": \"s\"}"}}`, 409, "Conflict"},
		{"blob not a string", "POST", "/identity/v3/credentials", s.admin, `{"credential": {"user_id": "` + admin + `", "type": "cert", "blob": {}}}`, 400, "credential.blob"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := s.do(t, tc.method, tc.path, tc.token, tc.body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if code, message := keystoneError(t, resp); code != tc.status || !strings.Contains(message, tc.message) {
				t.Errorf("error %d %q, want %d containing %q", code, message, tc.status, tc.message)
			}
		})
	}

	decode(t, s.do(t, "DELETE", "/identity/v3/credentials/"+id, s.alice, ""), 204, nil)
	decode(t, s.do(t, "GET", "/identity/v3/credentials/"+id, s.admin, ""), 404, nil)
}

func TestEC2CredentialsOverHTTP(t *testing.T) {
	s := newServer(t)
	alice, demo, admin := s.id(t, "user", "alice"), s.id(t, "project", "demo"), s.id(t, "user", "admin")
	base := "/identity/v3/users/" + alice + "/credentials/OS-EC2"

	type ec2 struct {
		UserID   string  `json:"user_id"`
		TenantID string  `json:"tenant_id"`
		Access   string  `json:"access"`
		Secret   string  `json:"secret"`
		TrustID  *string `json:"trust_id"`
		Links    struct{ Self string }
	}
	var created struct{ Credential ec2 }
	decode(t, s.do(t, "POST", base, s.alice, `{"tenant_id": "`+demo+`"}`), 201, &created)
	c := created.Credential
	if c.UserID != alice || c.TenantID != demo || len(c.Access) != 32 || len(c.Secret) != 32 || c.TrustID != nil ||
		c.Links.Self != "http://127.0.0.1"+base+"/"+c.Access {
		t.Errorf("created: got %+v", c)
	}

	var shown struct{ Credential ec2 }
	decode(t, s.do(t, "GET", base+"/"+c.Access, s.alice, ""), 200, &shown)
	if shown.Credential != c {
		t.Errorf("shown: got %+v, want %+v", shown.Credential, c)
	}
	var list struct{ Credentials []ec2 }
	decode(t, s.do(t, "GET", base, s.alice, ""), 200, &list)
	if len(list.Credentials) != 1 || list.Credentials[0] != c {
		t.Errorf("listed: got %+v, want [%+v]", list.Credentials, c)
	}
	// It is a credential of /v3/credentials too, named by the access key's hash.
	var v3 credentialBody
	decode(t, s.do(t, "GET", "/identity/v3/credentials/"+identity.EC2CredentialID(c.Access), s.alice, ""), 200, &v3)
	if want := `{"access":"` + c.Access + `","secret":"` + c.Secret + `","trust_id":null}`; v3.Credential.Blob != want {
		t.Errorf("as a credential: blob %s, want %s", v3.Credential.Blob, want)
	}

	for _, tc := range []struct {
		name, method, path, token, body string
		status                          int
	}{
		{"for another user", "POST", "/identity/v3/users/" + admin + "/credentials/OS-EC2", s.alice, `{"tenant_id": "` + demo + `"}`, 403},
		{"another's list", "GET", "/identity/v3/users/" + admin + "/credentials/OS-EC2", s.alice, "", 403},
		{"through another user's URL", "GET", "/identity/v3/users/" + admin + "/credentials/OS-EC2/" + c.Access, s.admin, "", 404},
		{"unknown project", "POST", base, s.alice, `{"tenant_id": "nowhere"}`, 404},
		{"no project", "POST", base, s.alice, `{}`, 400},
		{"unknown user", "POST", "/identity/v3/users/nobody/credentials/OS-EC2", s.admin, `{"tenant_id": "` + demo + `"}`, 404},
		{"unknown access key", "DELETE", base + "/nope", s.alice, "", 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if resp := s.do(t, tc.method, tc.path, tc.token, tc.body); resp.StatusCode != tc.status {
				_, message := keystoneError(t, resp)
				t.Errorf("status %d (%s), want %d", resp.StatusCode, message, tc.status)
			}
		})
	}

	// The admin may show it; its owner deletes it.
	decode(t, s.do(t, "GET", base+"/"+c.Access, s.admin, ""), 200, nil)
	decode(t, s.do(t, "DELETE", base+"/"+c.Access, s.alice, ""), 204, nil)
	decode(t, s.do(t, "GET", base+"/"+c.Access, s.alice, ""), 404, nil)
}
