package identity_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trustack/trustack/api/openstack"
	identityapi "github.com/trustack/trustack/api/openstack/identity"
	"github.com/trustack/trustack/identity"
	"github.com/trustack/trustack/policy"
	"github.com/trustack/trustack/sqlstore"
)

// server is the identity API over a bootstrapped SQLite store, with an
// admin token and a member's token.
type server struct {
	*httptest.Server
	store        *sqlstore.DB
	admin, alice string
}

func newServer(t testing.TB) *server {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	store, err := sqlstore.Open(ctx, "sqlite://"+filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	keys, err := identity.OpenKeyRepository(filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	credentialKeys, err := identity.OpenKeyRepository(filepath.Join(dir, "credential-keys"))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := identity.New(store, keys, identity.Options{PasswordHashRounds: 4, CredentialKeys: credentialKeys})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Bootstrap(ctx, identity.BootstrapConfig{
		Region: "RegionOne",
		Accounts: []identity.BootstrapAccount{
			{Project: "admin", User: "admin", Role: "admin", Password: "admin-pw"},
			{Project: "demo", User: "alice", Role: "member", Password: "alice-pw"},
		},
		Endpoints: []identity.BootstrapEndpoint{{Type: "identity", Name: "keystone", URL: "http://127.0.0.1/identity/v3"}},
	}); err != nil {
		t.Fatal(err)
	}
	enforcer, err := policy.New(identityapi.Policy(), nil)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	h := identityapi.New(svc, enforcer, identityapi.Config{PublicURL: "http://127.0.0.1", MaxBodySize: 4096}, log)
	s := &server{Server: httptest.NewServer(openstack.Middleware(log, h)), store: store}
	t.Cleanup(s.Close)
	s.admin = s.login(t, "admin", "admin-pw", "admin")
	s.alice = s.login(t, "alice", "alice-pw", "demo")
	return s
}

func (s *server) login(t testing.TB, user, password, project string) string {
	t.Helper()
	body := `{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"` + user + `","domain":{"name":"Default"},"password":"` + password + `"}}},
		"scope":{"project":{"name":"` + project + `","domain":{"name":"Default"}}}}}`
	resp := s.do(t, "POST", "/identity/v3/auth/tokens", "", body)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("login %s: status %d", user, resp.StatusCode)
	}
	return resp.Header.Get("X-Subject-Token")
}

func (s *server) do(t testing.TB, method, path, token, body string, headers ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// keystoneError decodes Keystone's error body, failing if it is not one.
func keystoneError(t testing.TB, resp *http.Response) (code int, message string) {
	t.Helper()
	var body struct {
		Error struct {
			Code    int    `json:"code"`
			Title   string `json:"title"`
			Message string `json:"message"`
		} `json:"error"`
	}
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &body); err != nil || body.Error.Code == 0 || body.Error.Title == "" {
		t.Fatalf("not a Keystone error body: %s", b)
	}
	return body.Error.Code, body.Error.Message
}

func TestBadRequestsAreRefusedAndChangeNothing(t *testing.T) {
	s := newServer(t)
	countUsers := func() int {
		resp := s.do(t, "GET", "/identity/v3/users", s.admin, "")
		var list struct{ Users []any }
		json.NewDecoder(resp.Body).Decode(&list)
		return len(list.Users)
	}
	before := countUsers()
	for _, tc := range []struct {
		name, method, path, token, body string
		headers                         []string
		status                          int
		message                         string // part of the message
	}{
		{"malformed JSON", "POST", "/identity/v3/users", s.admin, `{"user": {"name": "x"`, nil, 400, "Malformed request body"},
		{"not an object", "POST", "/identity/v3/users", s.admin, `[1, 2]`, nil, 400, "Malformed request body"},
		{"wrong type", "POST", "/identity/v3/users", s.admin, `{"user": {"name": "x", "enabled": "yes"}}`, nil, 400, "'user.enabled': expected a boolean"},
		{"wrong type nested", "POST", "/identity/v3/users", s.admin, `{"user": "bob"}`, nil, 400, "'user': expected an object"},
		{"missing entity", "POST", "/identity/v3/users", s.admin, `{"name": "x"}`, nil, 400, "'user' is a required property"},
		{"missing name", "POST", "/identity/v3/users", s.admin, `{"user": {"enabled": true}}`, nil, 400, "'user.name'"},
		{"null for a flag", "POST", "/identity/v3/users", s.admin, `{"user": {"name": "x", "enabled": null}}`, nil, 400, "may not be null"},
		{"trailing data", "POST", "/identity/v3/users", s.admin, `{"user": {"name": "x"}} {}`, nil, 400, "unexpected data"},
		{"empty body", "POST", "/identity/v3/users", s.admin, ``, nil, 400, "empty"},
		{"too large", "POST", "/identity/v3/users", s.admin, `{"user": {"name": "` + strings.Repeat("x", 5000) + `"}}`, nil, 413, "too large"},
		{"not JSON", "POST", "/identity/v3/users", s.admin, `name=x`, []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, "application/json"},
		{"name too long", "POST", "/identity/v3/users", s.admin, `{"user": {"name": "` + strings.Repeat("x", 256) + `"}}`, nil, 400, "1 to 255"},
		{"duplicate name", "POST", "/identity/v3/users", s.admin, `{"user": {"name": "alice"}}`, nil, 409, "Conflict"},
		{"missing domain", "POST", "/identity/v3/users", s.admin, `{"user": {"name": "x", "domain_id": "nope"}}`, nil, 404, "domain"},
		{"member may not create", "POST", "/identity/v3/users", s.alice, `{"user": {"name": "x"}}`, nil, 403, "identity:create_user"},
		{"no token", "POST", "/identity/v3/users", "", `{"user": {"name": "x"}}`, nil, 401, "requires authentication"},
		{"bad token", "POST", "/identity/v3/users", "gAAAAAbogus", `{"user": {"name": "x"}}`, nil, 401, "requires authentication"},
		{"name in an ID position", "GET", "/identity/v3/users/alice", s.admin, ``, nil, 404, "Could not find user"},
		{"unknown path", "GET", "/identity/v3/nothing", s.admin, ``, nil, 404, "could not be found"},
		{"wrong method", "PATCH", "/identity/v3/auth/tokens", s.admin, `{}`, nil, 405, "not allowed"},
		{"unsupported auth method", "POST", "/identity/v3/auth/tokens", "", `{"auth": {"identity": {"methods": ["totp"]}}}`, nil, 401, "unsupported method"},
		{"system scope", "POST", "/identity/v3/auth/tokens", "", `{"auth": {"identity": {"methods": ["password"], "password": {"user": {"id": "x", "password": "y"}}}, "scope": {"system": {"all": true}}}}`, nil, 400, "System-scoped"},
		{"validate without subject", "GET", "/identity/v3/auth/tokens", s.admin, ``, nil, 400, "X-Subject-Token"},
		{"validate a bad subject", "GET", "/identity/v3/auth/tokens", s.admin, ``, []string{"X-Subject-Token", "nope"}, 404, "Could not find token"},
		{"endpoint with bad interface", "POST", "/identity/v3/endpoints", s.admin, `{"endpoint": {"service_id": "x", "interface": "outer", "url": "http://x"}}`, nil, 400, "interface"},
		{"delete an enabled domain", "DELETE", "/identity/v3/domains/default", s.admin, ``, nil, 403, "default domain"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := s.do(t, tc.method, tc.path, tc.token, tc.body, tc.headers...)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			code, message := keystoneError(t, resp)
			if code != tc.status || !strings.Contains(message, tc.message) {
				t.Errorf("error %d %q, want %d containing %q", code, message, tc.status, tc.message)
			}
			if resp.Header.Get("X-Openstack-Request-Id") == "" {
				t.Error("no x-openstack-request-id header")
			}
		})
	}
	if after := countUsers(); after != before {
		t.Errorf("bad requests changed the number of users from %d to %d", before, after)
	}
}

func TestTokenLifecycleOverHTTP(t *testing.T) {
	s := newServer(t)
	resp := s.do(t, "GET", "/identity/v3/auth/tokens", s.admin, "", "X-Subject-Token", s.alice)
	if resp.StatusCode != 200 || resp.Header.Get("X-Subject-Token") != s.alice {
		t.Fatalf("validate: status %d", resp.StatusCode)
	}
	var body struct {
		Token struct {
			ExpiresAt string `json:"expires_at"`
			IssuedAt  string `json:"issued_at"`
			Project   struct{ Name string }
			Roles     []struct{ Name string }
			Catalog   []struct {
				Type      string
				Endpoints []struct{ Region, RegionID, URL, Interface string } `json:"endpoints"`
			}
		}
	}
	json.NewDecoder(resp.Body).Decode(&body)
	tok := body.Token
	if tok.Project.Name != "demo" || len(tok.Roles) != 2 || len(tok.Catalog) != 1 || len(tok.Catalog[0].Endpoints) != 3 {
		t.Errorf("validated token body: %+v", tok)
	}
	if !strings.HasSuffix(tok.ExpiresAt, "Z") || len(tok.ExpiresAt) != len("2026-01-01T00:00:00.000000Z") {
		t.Errorf("expires_at %q is not Keystone's format", tok.ExpiresAt)
	}
	// A member may validate its own token but not another's.
	if resp := s.do(t, "HEAD", "/identity/v3/auth/tokens", s.alice, "", "X-Subject-Token", s.alice); resp.StatusCode != 200 {
		t.Errorf("check own token: %d", resp.StatusCode)
	}
	if resp := s.do(t, "GET", "/identity/v3/auth/tokens", s.alice, "", "X-Subject-Token", s.admin); resp.StatusCode != 403 {
		t.Errorf("validate another's token: %d, want 403", resp.StatusCode)
	}
	// Revoked, it no longer works anywhere.
	if resp := s.do(t, "DELETE", "/identity/v3/auth/tokens", s.alice, "", "X-Subject-Token", s.alice); resp.StatusCode != 204 {
		t.Fatalf("revoke own token: %d", resp.StatusCode)
	}
	if resp := s.do(t, "GET", "/identity/v3/auth/tokens", s.admin, "", "X-Subject-Token", s.alice); resp.StatusCode != 404 {
		t.Errorf("validate a revoked token: %d, want 404", resp.StatusCode)
	}
	if resp := s.do(t, "GET", "/identity/v3/auth/projects", s.alice, ""); resp.StatusCode != 401 {
		t.Errorf("use a revoked token: %d, want 401", resp.StatusCode)
	}
}

func TestEndpointInANewRegionMakesIt(t *testing.T) {
	s := newServer(t)
	resp := s.do(t, "POST", "/identity/v3/services", s.admin, `{"service": {"type": "compute", "name": "nova"}}`)
	var svc struct{ Service struct{ ID string } }
	json.NewDecoder(resp.Body).Decode(&svc)
	resp = s.do(t, "POST", "/identity/v3/endpoints", s.admin, `{"endpoint": {"service_id": "`+svc.Service.ID+`", "interface": "public", "url": "http://x", "region": "r1"}}`)
	if resp.StatusCode != 201 {
		t.Fatalf("create endpoint in a new region: %d", resp.StatusCode)
	}
	var ep struct{ Endpoint struct{ ID string } }
	json.NewDecoder(resp.Body).Decode(&ep)
	// Moving it to another new region also makes that one; this used to
	// deadlock on SQLite.
	resp = s.do(t, "PATCH", "/identity/v3/endpoints/"+ep.Endpoint.ID, s.admin, `{"endpoint": {"region_id": "r2"}}`)
	if resp.StatusCode != 200 {
		t.Fatalf("move endpoint to a new region: %d", resp.StatusCode)
	}
	for _, r := range []string{"r1", "r2"} {
		if resp := s.do(t, "GET", "/identity/v3/regions/"+r, s.admin, ""); resp.StatusCode != 200 {
			t.Errorf("region %s: %d", r, resp.StatusCode)
		}
	}
}

func TestPanicsBecome500(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	h := openstack.Middleware(log, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != 500 || !bytes.Contains(rec.Body.Bytes(), []byte(`"code":500`)) {
		t.Errorf("got %d %s, want a 500 error body", rec.Code, rec.Body)
	}
}

// FuzzRequests sends arbitrary bodies to the endpoints that decode JSON:
// none may make the server fail with 500 or panic.
func FuzzRequests(f *testing.F) {
	for _, seed := range []string{
		`{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"admin","domain":{"name":"Default"},"password":"admin-pw"}}},"scope":{"project":{"name":"admin","domain":{"name":"Default"}}}}}`,
		`{"auth":{"identity":{"methods":["token"],"token":{"id":"x"}},"scope":"unscoped"}}`,
		`{"user":{"name":"u","password":"p","enabled":true,"email":"e"}}`,
		`{"project":{"name":"p","tags":["a","b"],"parent_id":null}}`,
		`{"endpoint":{"service_id":"s","interface":"public","url":"http://x","region":"r"}}`,
		`{"region":{"id":"r","parent_region_id":"q"}}`,
		`{"user":{"password":"n","original_password":"o"}}`,
		`{"tags":["x"]}`,
		`{"credential":{"user_id":"u","project_id":"p","type":"ec2","blob":"{\"access\":\"a\",\"secret\":\"s\"}"}}`,
		`{"tenant_id":"p"}`,
		`null`, `[]`, `{}`, `"x"`, `{"user":{"name":{}}}`,
	} {
		for i := range 10 {
			f.Add(uint8(i), seed)
		}
	}
	s := newServer(f)
	paths := []string{
		"POST /identity/v3/auth/tokens", "POST /identity/v3/users", "POST /identity/v3/projects", "POST /identity/v3/domains",
		"POST /identity/v3/endpoints", "POST /identity/v3/regions", "POST /identity/v3/users/x/password", "PATCH /identity/v3/domains/default",
		"POST /identity/v3/credentials", "POST /identity/v3/users/x/credentials/OS-EC2",
	}
	f.Fuzz(func(t *testing.T, which uint8, body string) {
		method, path, _ := strings.Cut(paths[int(which)%len(paths)], " ")
		resp := s.do(t, method, path, s.admin, body)
		if resp.StatusCode >= 500 {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("%s %s with %q: status %d: %s", method, path, body, resp.StatusCode, b)
		}
	})
}

// TestCatalogPutsTheProjectInEndpointURLs: an endpoint whose URL names
// the project, as Cinder's and Swift's do, is listed in a project-scoped
// token's catalog with the token's project, and as it was made in the
// endpoints' list.
func TestCatalogPutsTheProjectInEndpointURLs(t *testing.T) {
	s := newServer(t)
	resp := s.do(t, "POST", "/identity/v3/services", s.admin, `{"service": {"type": "volumev3", "name": "cinderv3"}}`)
	var svc struct{ Service struct{ ID string } }
	json.NewDecoder(resp.Body).Decode(&svc)
	const raw = "http://127.0.0.1/volume/v3/$(project_id)s"
	resp = s.do(t, "POST", "/identity/v3/endpoints", s.admin, `{"endpoint": {"service_id": "`+svc.Service.ID+`", "interface": "public", "url": "`+raw+`", "region": "RegionOne"}}`)
	if resp.StatusCode != 201 {
		t.Fatalf("create endpoint: %d", resp.StatusCode)
	}
	resp = s.do(t, "GET", "/identity/v3/auth/tokens", s.alice, "", "X-Subject-Token", s.alice)
	var tok struct {
		Token struct {
			Project struct{ ID string }
			Catalog []struct {
				Type      string
				Endpoints []struct{ URL string }
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range tok.Token.Catalog {
		if e.Type == "volumev3" {
			for _, ep := range e.Endpoints {
				got = append(got, ep.URL)
			}
		}
	}
	if want := "http://127.0.0.1/volume/v3/" + tok.Token.Project.ID; len(got) != 1 || got[0] != want || tok.Token.Project.ID == "" {
		t.Errorf("the token's volumev3 endpoints %v, want [%s]", got, want)
	}
	resp = s.do(t, "GET", "/identity/v3/endpoints?interface=public", s.admin, "")
	if b, _ := io.ReadAll(resp.Body); !bytes.Contains(b, []byte(`"url":"`+raw+`"`)) {
		t.Errorf("the endpoints' list does not show the URL as it was made, %s:\n%s", raw, b)
	}
}
