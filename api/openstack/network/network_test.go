package network_test

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	networkapi "github.com/trustack/trustack/api/openstack/network"
	"github.com/trustack/trustack/internal/apitest"
	"github.com/trustack/trustack/network"
	"github.com/trustack/trustack/policy"
	"github.com/trustack/trustack/sqlstore"
)

// server is the network API over the networking service on a new SQLite
// store.
type server struct {
	*httptest.Server
}

func newServer(t testing.TB) *server {
	t.Helper()
	enforcer, err := policy.New(networkapi.Policy(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return newServerWith(t, enforcer)
}

// newServerWith is newServer with the policy of enforcer.
func newServerWith(t testing.TB, enforcer *policy.Enforcer) *server {
	t.Helper()
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	svc := network.New(db, network.Options{Rand: rand.New(rand.NewPCG(1, 2)), VLANRanges: map[string][2]int{"physnet1": {100, 199}}})
	srv := httptest.NewServer(networkapi.New(svc, apitest.Validator{}, enforcer, networkapi.Config{}, slog.New(slog.DiscardHandler)))
	t.Cleanup(srv.Close)
	return &server{srv}
}

type obj = map[string]any

// do makes a request as the caller of token, with body as JSON unless
// it is a string, and returns the status and the decoded body.
func (s *server) do(t testing.TB, token, method, path string, body any) (int, obj) {
	t.Helper()
	return apitest.Do(t, http.DefaultClient, token, method, s.URL+path, body)
}

// must makes a request that must answer status, and returns the body.
func (s *server) must(t testing.TB, status int, token, method, path string, body any) obj {
	t.Helper()
	return apitest.Must(t, http.DefaultClient, status, token, method, s.URL+path, body)
}

// create makes a resource of a collection and returns it.
func (s *server) create(t testing.TB, token, collection, name string, attrs obj) obj {
	t.Helper()
	return s.must(t, http.StatusCreated, token, "POST", "/network/v2.0/"+collection, obj{name: attrs})[name].(obj)
}

// world is a small cloud: an external network with a subnet (the
// administrator's), a shared network, and a network with a subnet of
// each of alice's and bob's projects.
type world struct {
	external, extSubnet, shared, alice, aliceSubnet, bob string
}

func (s *server) world(t testing.TB) world {
	t.Helper()
	var w world
	w.external = s.create(t, "admin", "networks", "network", obj{"name": "public", "router:external": true})["id"].(string)
	w.extSubnet = s.create(t, "admin", "subnets", "subnet", obj{"network_id": w.external, "cidr": "172.24.4.0/24", "ip_version": 4, "enable_dhcp": false})["id"].(string)
	w.shared = s.create(t, "admin", "networks", "network", obj{"name": "shared", "shared": true})["id"].(string)
	w.alice = s.create(t, "alice", "networks", "network", obj{"name": "alice-net"})["id"].(string)
	w.aliceSubnet = s.create(t, "alice", "subnets", "subnet", obj{"network_id": w.alice, "cidr": "10.1.0.0/24", "ip_version": 4})["id"].(string)
	w.bob = s.create(t, "bob", "networks", "network", obj{"name": "bob-net"})["id"].(string)
	return w
}

// list returns the items of a GET of a collection.
func (s *server) list(t testing.TB, token, path string) []obj {
	t.Helper()
	body := s.must(t, http.StatusOK, token, "GET", path, nil)
	key, _, _ := strings.Cut(strings.TrimPrefix(path, "/network/v2.0/"), "?")
	var out []obj
	for _, v := range body[strings.ReplaceAll(key, "-", "_")].([]any) {
		out = append(out, v.(obj))
	}
	return out
}

// ids returns the IDs of items, in their order.
func ids(items []obj) []string {
	out := make([]string, len(items))
	for i, o := range items {
		out[i] = o["id"].(string)
	}
	return out
}

// snapshot is what the administrator sees of every collection: the
// revision of each resource, by ID.
func (s *server) snapshot(t testing.TB) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, c := range []string{"networks", "subnets", "ports", "routers", "floatingips", "security-groups", "security-group-rules"} {
		out[c] = map[string]any{}
		for _, o := range s.list(t, "admin", "/network/v2.0/"+c) {
			out[c][o["id"].(string)] = o["revision_number"]
		}
	}
	return out
}
