package trust_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/acaas"
	computeapi "github.com/trustack/trustack/api/openstack/compute"
	"github.com/trustack/trustack/api/openstack/trust"
	"github.com/trustack/trustack/policy"
	"github.com/trustack/trustack/sqlstore"
)

// tokens are the callers of the tests, by token: an operator of project
// admin, and members of projects p1 and p2.
var tokens = map[string]*trustack.Token{
	"admin": {User: trustack.User{ID: "u-admin"}, Project: &trustack.Project{ID: "admin"}, Roles: []trustack.Role{{Name: "admin"}, {Name: "member"}, {Name: "reader"}}},
	"p1":    {User: trustack.User{ID: "u-p1"}, Project: &trustack.Project{ID: "p1"}, Roles: []trustack.Role{{Name: "member"}, {Name: "reader"}}},
	"p2":    {User: trustack.User{ID: "u-p2"}, Project: &trustack.Project{ID: "p2"}, Roles: []trustack.Role{{Name: "member"}, {Name: "reader"}}},
}

type validator struct{}

func (validator) Validate(_ context.Context, token string) (*trustack.Token, error) {
	if t, ok := tokens[token]; ok {
		return t, nil
	}
	return nil, trustack.Errorf(trustack.EUNAUTHORIZED, "The request you have made requires authentication.")
}

// newACaaSAPI serves the compute API over an ACaaS service on a new
// SQLite store with hosts compute-1 and compute-2.
func newACaaSAPI(t *testing.T) *httptest.Server {
	t.Helper()
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	now := time.Now()
	for _, name := range []string{"compute-1", "compute-2"} {
		if _, err := db.RegisterHost(ctx, &trustack.Host{ID: "id-" + name, Name: name, VCPUs: 1, MemoryMB: 512, DiskGB: 1,
			CPUAllocationRatio: 1, RAMAllocationRatio: 1, DiskAllocationRatio: 1, Enabled: true, CreatedAt: now, UpdatedAt: now, LastSeen: now}); err != nil {
			t.Fatal(err)
		}
	}
	svc := acaas.New(db, nil, acaas.Options{})
	if err := svc.EnsureEntries(ctx, acaas.DefaultEntries); err != nil {
		t.Fatal(err)
	}
	enforcer, err := policy.New(append(computeapi.Policy(), trust.Policy()...), nil)
	if err != nil {
		t.Fatal(err)
	}
	h := throughCompute(enforcer, trust.New(svc, validator{}, enforcer, trust.Config{}, slog.New(slog.NewTextHandler(io.Discard, nil))))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// throughCompute serves the os-trustack-* calls of h through the compute
// API, as a controller does.
func throughCompute(enforcer *policy.Enforcer, h http.Handler) http.Handler {
	return computeapi.New(nil, nil, nil, validator{}, enforcer, computeapi.Config{Extensions: trust.Extensions(h)}, slog.New(slog.DiscardHandler))
}

// call makes a request as the caller of token and returns the status and
// the body.
func call(t *testing.T, srv *httptest.Server, token, method, path, body string) (int, string) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, srv.URL+computeapi.Prefix+"/v2.1"+path, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Auth-Token", token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestTrustackAPI runs through every os-trustack-* call, in order, as an
// operator and as members, checking statuses and what the bodies say.
func TestTrustackAPI(t *testing.T) {
	srv := newACaaSAPI(t)
	for _, tc := range []struct {
		token, method, path, body string
		status                    int
		says                      []string // in the body
	}{
		// Locations and distances: operators only.
		{"admin", "POST", "/os-trustack-locations", `{"location": {"name": "fra1", "country": "de"}}`, 201, []string{`"location":{"country":"DE","name":"fra1"}`}},
		{"admin", "POST", "/os-trustack-locations", `{"location": {"name": "ams1", "country": "NL"}}`, 201, nil},
		{"admin", "POST", "/os-trustack-locations", `{"location": {"name": "fra1", "country": "DE"}}`, 409, []string{"conflictingRequest", "already exists"}},
		{"admin", "POST", "/os-trustack-locations", `{"location": {"name": "x", "country": "D"}}`, 400, []string{"badRequest", "2 to 8 letters"}},
		{"admin", "POST", "/os-trustack-locations", `{}`, 400, []string{"'location' is a required property"}},
		{"p1", "POST", "/os-trustack-locations", `{"location": {"name": "x", "country": "DE"}}`, 403, []string{"forbidden", "trustack:manage"}},
		{"p1", "GET", "/os-trustack-locations", "", 403, nil},
		{"admin", "GET", "/os-trustack-locations", "", 200, []string{`{"locations":[{"country":"NL","name":"ams1"},{"country":"DE","name":"fra1"}]}`}},
		{"admin", "GET", "/os-trustack-locations/fra1", "", 200, []string{`"name":"fra1"`}},
		{"admin", "GET", "/os-trustack-locations/nope", "", 404, []string{"itemNotFound"}},
		{"admin", "PUT", "/os-trustack-distances/fra1/ams1", `{"distance": {"km": 360}}`, 200, []string{`{"distance":{"a":"ams1","b":"fra1","km":360}}`}},
		{"admin", "PUT", "/os-trustack-distances/fra1/ams1", `{"distance": {}}`, 400, []string{"'km'"}},
		{"admin", "PUT", "/os-trustack-distances/fra1/nope", `{"distance": {"km": 1}}`, 404, []string{"nope"}},
		{"admin", "PUT", "/os-trustack-distances/fra1/fra1", `{"distance": {"km": 1}}`, 400, nil},
		{"p1", "PUT", "/os-trustack-distances/fra1/ams1", `{"distance": {"km": 1}}`, 403, nil},
		{"admin", "GET", "/os-trustack-distances", "", 200, []string{`{"distances":[{"a":"ams1","b":"fra1","km":360}]}`}},

		// Domains.
		{"admin", "POST", "/os-trustack-domains", `{"domain": {"name": "d1", "location": "fra1", "capabilities": {"gpu": "a100"}, "dcot": "gold"}}`, 201,
			[]string{`"name":"d1"`, `"source":"local"`, `"hosts":[]`, `"collaborators":[]`, `"capabilities":{"gpu":"a100"}`}},
		{"admin", "POST", "/os-trustack-domains", `{"domain": {"name": "d2", "location": "ams1", "capabilities": {"gpu": "a100"}, "dcot": "gold", "source": "emergency"}}`, 201, []string{`"source":"emergency"`}},
		{"admin", "POST", "/os-trustack-domains", `{"domain": {"name": "d3", "location": "ams1"}}`, 201, nil},
		{"admin", "POST", "/os-trustack-domains", `{"domain": {"name": "d9", "location": "nowhere"}}`, 400, []string{"nowhere"}},
		{"admin", "DELETE", "/os-trustack-locations/fra1", "", 409, []string{"d1"}},
		{"p1", "POST", "/os-trustack-domains", `{"domain": {"name": "d9", "location": "fra1"}}`, 403, nil},
		{"admin", "PUT", "/os-trustack-domains/d1/hosts/compute-1", "", 200, []string{`"hosts":["compute-1"]`}},
		{"admin", "PUT", "/os-trustack-domains/d3/hosts/compute-2", "", 200, nil},
		{"admin", "PUT", "/os-trustack-domains/d1/hosts/compute-2", "", 200, []string{`"hosts":["compute-1","compute-2"]`}},
		{"admin", "GET", "/os-trustack-domains/d3", "", 200, []string{`"hosts":[]`}},
		{"admin", "PUT", "/os-trustack-domains/d1/hosts/compute-9", "", 404, []string{"compute-9"}},
		{"admin", "DELETE", "/os-trustack-domains/d3/hosts/compute-1", "", 404, []string{"not a member"}},
		{"admin", "DELETE", "/os-trustack-domains/d1/hosts/compute-2", "", 204, nil},
		{"admin", "PUT", "/os-trustack-domains/d1/collaborators/d2", `{"collaborator": {"priority": 2}}`, 200, []string{`"collaborators":[{"domain":"d2","priority":2}]`}},
		{"admin", "PUT", "/os-trustack-domains/d1/collaborators/d3", `{"collaborator": {"priority": 1}}`, 400, []string{"capabilities differ"}},
		{"admin", "PUT", "/os-trustack-domains/d1/collaborators/d2", `{"collaborator": {}}`, 400, []string{"'priority'"}},
		{"admin", "PUT", "/os-trustack-domains/d1", `{"domain": {"dcot": "silver"}}`, 409, []string{"d2"}},
		{"admin", "PUT", "/os-trustack-domains/d1", `{"domain": {"location": "ams1"}}`, 200, []string{`"location":"ams1"`, `"dcot":"gold"`}},
		{"admin", "PUT", "/os-trustack-domains/d1", `{"domain": {}}`, 400, nil},
		{"admin", "PUT", "/os-trustack-domains/nope", `{"domain": {"dcot": "x"}}`, 404, nil},
		{"admin", "GET", "/os-trustack-domains/d1", "", 200, []string{`"hosts":["compute-1"]`, `"location":"ams1"`, `"d2"`}},
		{"admin", "GET", "/os-trustack-domains", "", 200, []string{`"name":"d1"`, `"name":"d2"`, `"name":"d3"`}},
		{"admin", "DELETE", "/os-trustack-domains/d2", "", 409, []string{"collaborator of d1"}},
		{"admin", "DELETE", "/os-trustack-domains/d1/collaborators/d2", "", 204, nil},
		{"admin", "DELETE", "/os-trustack-domains/d1/collaborators/d2", "", 404, nil},
		{"admin", "DELETE", "/os-trustack-domains/d2", "", 204, nil},
		{"p1", "GET", "/os-trustack-domains", "", 403, nil},

		// Host properties.
		{"admin", "POST", "/os-trustack-hosts/compute-1/properties", `{"properties": {"rack": "r1"}}`, 200, []string{`"properties":{"rack":"r1"}`, `"security":{}`}},
		{"admin", "POST", "/os-trustack-hosts/compute-1/properties", `{"security": {"trust": "gold"}}`, 200, []string{`"properties":{"rack":"r1"}`, `"security":{"trust":"gold"}`}},
		{"admin", "POST", "/os-trustack-hosts/compute-1/properties", `{}`, 400, nil},
		{"admin", "GET", "/os-trustack-hosts/compute-1/properties", "", 200, []string{`"host":"compute-1"`, `"security":{"trust":"gold"}`}},
		{"admin", "GET", "/os-trustack-hosts/compute-9/properties", "", 404, nil},
		{"admin", "DELETE", "/os-trustack-hosts/compute-1/properties/trust", "", 404, []string{"no property trust"}},
		{"admin", "DELETE", "/os-trustack-hosts/compute-1/properties/trust?security=maybe", "", 400, nil},
		{"admin", "DELETE", "/os-trustack-hosts/compute-1/properties/trust?security=true", "", 204, nil},
		{"p1", "GET", "/os-trustack-hosts/compute-1/properties", "", 403, nil},

		// Requirement entries: everyone sees them, operators make them.
		{"admin", "POST", "/os-trustack-requirement-entries", `{"requirement_entry": {"name": "gpu", "kind": "capability", "description": "GPU model"}}`, 201,
			[]string{`{"requirement_entry":{"description":"GPU model","kind":"capability","name":"gpu"}}`}},
		{"admin", "POST", "/os-trustack-requirement-entries", `{"requirement_entry": {"name": "same_host", "kind": "capability"}}`, 400, []string{"Nova"}},
		{"p1", "POST", "/os-trustack-requirement-entries", `{"requirement_entry": {"name": "x", "kind": "capability"}}`, 403, nil},
		{"p1", "GET", "/os-trustack-requirement-entries", "", 200, []string{`"name":"gpu"`, `"name":"location"`}},
		{"p1", "GET", "/os-trustack-requirement-entries/gpu", "", 200, []string{`"kind":"capability"`}},

		// Requirements: members on their own project, operators on any.
		{"p1", "POST", "/os-trustack-requirements", `{"requirement": {"entry": "location", "value": "DE"}}`, 201,
			[]string{`"project_id":"p1"`, `"entry":"location"`, `"value":"DE"`, `"locked":false`}},
		{"p1", "POST", "/os-trustack-requirements", `{"requirement": {"entry": "location", "value": "FR"}}`, 409, []string{"use change"}},
		{"p1", "POST", "/os-trustack-requirements", `{"requirement": {"entry": "location", "value": "DE", "project_id": "p2"}}`, 403, nil},
		{"p1", "POST", "/os-trustack-requirements", `{"requirement": {"entry": "max_distance", "value": "fra1"}}`, 400, []string{"LOCATION:KM"}},
		{"p1", "POST", "/os-trustack-requirements", `{"requirement": {"entry": "isolation", "value": "exclude:p1"}}`, 400, []string{"itself"}},
		{"p1", "POST", "/os-trustack-requirements", `{"requirement": {"entry": "gpu"}}`, 400, []string{"'value'"}},
		{"p1", "PUT", "/os-trustack-requirements/location", `{"requirement": {"value": "NL"}}`, 200, []string{`"value":"NL"`}},
		{"p1", "PUT", "/os-trustack-requirements/trust", `{"requirement": {"value": "gold"}}`, 404, nil},
		{"p1", "GET", "/os-trustack-requirements", "", 200, []string{`"entry":"location"`, `"value":"NL"`}},
		{"p1", "GET", "/os-trustack-requirements?project_id=p2", "", 403, nil},
		{"admin", "POST", "/os-trustack-requirements", `{"requirement": {"entry": "trust", "value": "gold", "project_id": "p1"}}`, 201, []string{`"locked":true`, `"project_id":"p1"`}},
		{"admin", "PUT", "/os-trustack-requirements/location?project_id=p1", `{"requirement": {"value": "DE"}}`, 200, []string{`"locked":true`}},
		{"p1", "PUT", "/os-trustack-requirements/location", `{"requirement": {"value": "FR"}}`, 403,
			[]string{"Requirement location of project p1 was set by an operator; only an operator can change it."}},
		{"p1", "DELETE", "/os-trustack-requirements/trust", "", 403, []string{"operator"}},
		{"p2", "DELETE", "/os-trustack-requirements/trust?project_id=p1", "", 403, nil},
		{"admin", "GET", "/os-trustack-requirements?project_id=p1", "", 200, []string{`"entry":"trust"`, `"entry":"location"`}},
		{"admin", "DELETE", "/os-trustack-requirements/trust?project_id=p1", "", 204, nil},
		{"admin", "DELETE", "/os-trustack-requirement-entries/gpu", "", 204, nil},
		{"admin", "DELETE", "/os-trustack-requirement-entries/location", "", 409, []string{"p1"}},

		// Unauthenticated callers.
		{"", "GET", "/os-trustack-requirement-entries", "", 401, nil},
	} {
		status, body := call(t, srv, tc.token, tc.method, tc.path, tc.body)
		if status != tc.status {
			t.Errorf("%s %s as %q: got status %d, want %d: %s", tc.method, tc.path, tc.token, status, tc.status, body)
			continue
		}
		if status != http.StatusNoContent && !json.Valid([]byte(body)) {
			t.Errorf("%s %s as %q: the body is not JSON: %s", tc.method, tc.path, tc.token, body)
		}
		for _, w := range tc.says {
			if !strings.Contains(body, w) {
				t.Errorf("%s %s as %q: got body %s, want it to contain %s", tc.method, tc.path, tc.token, body, w)
			}
		}
	}
}

// TestTrustackAPIProjectInPath checks that the os-trustack-* collections
// are not taken for project IDs in the path.
func TestTrustackAPIProjectInPath(t *testing.T) {
	srv := newACaaSAPI(t)
	if status, body := call(t, srv, "p1", "GET", "/p1/os-trustack-requirement-entries", ""); status != 200 || !strings.Contains(body, "location") {
		t.Errorf("GET /v2.1/p1/os-trustack-requirement-entries: got %d %s, want 200 with the entries", status, body)
	}
}
