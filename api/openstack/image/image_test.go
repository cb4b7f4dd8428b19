package image_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/trustack/trustack/api/openstack"
	identityapi "github.com/trustack/trustack/api/openstack/identity"
	imageapi "github.com/trustack/trustack/api/openstack/image"
	"github.com/trustack/trustack/identity"
	"github.com/trustack/trustack/images"
	"github.com/trustack/trustack/images/imagestest"
	"github.com/trustack/trustack/policy"
	"github.com/trustack/trustack/sqlstore"
)

// server is the image API (and the identity API, to log in) over a
// bootstrapped SQLite store, with tokens of an admin, two members of
// different projects and a reader.
type server struct {
	*httptest.Server
	storage                   *imagestest.Storage
	admin, alice, bob, rita   string // tokens
	demo, other, adminProject string // project IDs
}

const sizeCap = 64 << 10

// newServer returns a server keeping image data in files.
func newServer(t testing.TB) *server { return newServerOn(t, imagestest.NewFiles(t)) }

// forEachBackend runs test on a server over each kind of data store.
func forEachBackend(t *testing.T, test func(t *testing.T, s *server)) {
	for _, b := range imagestest.Backends {
		t.Run(b.Name, func(t *testing.T) { test(t, newServerOn(t, b.New(t))) })
	}
}

// newServerOn returns a server keeping image data in st.
func newServerOn(t testing.TB, st *imagestest.Storage) *server {
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
	ids, err := identity.New(store, keys, identity.Options{PasswordHashRounds: 4})
	if err != nil {
		t.Fatal(err)
	}
	if err := ids.Bootstrap(ctx, identity.BootstrapConfig{
		Region: "RegionOne",
		Accounts: []identity.BootstrapAccount{
			{Project: "admin", User: "admin", Role: "admin", Password: "pw"},
			{Project: "demo", User: "alice", Role: "member", Password: "pw"},
			{Project: "other", User: "bob", Role: "member", Password: "pw"},
			{Project: "demo", User: "rita", Role: "reader", Password: "pw"},
		},
	}); err != nil {
		t.Fatal(err)
	}
	s := &server{storage: st}
	svc := images.New(store, st.Open(t), images.Options{SizeCap: sizeCap})
	enforcer, err := policy.New(append(identityapi.Policy(), imageapi.Policy()...), nil)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	mux := http.NewServeMux()
	idh := identityapi.New(ids, enforcer, identityapi.Config{PublicURL: "http://127.0.0.1"}, log)
	mux.Handle("/identity/", idh)
	imh := imageapi.New(svc, ids, enforcer, imageapi.Config{PublicURL: "http://127.0.0.1", MaxBodySize: 4096}, log)
	mux.Handle("/image", imh)
	mux.Handle("/image/", imh)
	s.Server = httptest.NewServer(openstack.Middleware(log, mux))
	t.Cleanup(s.Close)
	s.admin, s.adminProject = s.login(t, "admin", "admin")
	s.alice, s.demo = s.login(t, "alice", "demo")
	s.bob, s.other = s.login(t, "bob", "other")
	s.rita, _ = s.login(t, "rita", "demo")
	return s
}

// login returns a token of the user on the project, and the project's ID.
func (s *server) login(t testing.TB, user, project string) (string, string) {
	t.Helper()
	body := `{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"` + user + `","domain":{"name":"Default"},"password":"pw"}}},
		"scope":{"project":{"name":"` + project + `","domain":{"name":"Default"}}}}}`
	resp := s.do(t, "POST", "/identity/v3/auth/tokens", "", body)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("login %s: status %d", user, resp.StatusCode)
	}
	var tok struct {
		Token struct{ Project struct{ ID string } }
	}
	json.NewDecoder(resp.Body).Decode(&tok)
	return resp.Header.Get("X-Subject-Token"), tok.Token.Project.ID
}

// do makes a request; a body that is not a string or a reader is sent
// as JSON. Headers come in name, value pairs.
func (s *server) do(t testing.TB, method, path, token string, body any, headers ...string) *http.Response {
	t.Helper()
	var r io.Reader
	contentType := "application/json"
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case io.Reader:
		r, contentType = b, "application/octet-stream"
	default:
		j, _ := json.Marshal(b)
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, s.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
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

type obj = map[string]any

// want checks a response's status and decodes its JSON body, if any.
func want(t testing.TB, resp *http.Response, status int) obj {
	t.Helper()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("%s %s: status %d, want %d: %s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, status, b)
	}
	var o obj
	if len(b) > 0 && strings.Contains(resp.Header.Get("Content-Type"), "json") {
		if err := json.Unmarshal(b, &o); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
	}
	return o
}

// create registers an image as token and returns its JSON.
func (s *server) create(t testing.TB, token string, attrs obj) obj {
	t.Helper()
	return want(t, s.do(t, "POST", "/image/v2/images", token, attrs), http.StatusCreated)
}

func (s *server) show(t testing.TB, token, id string) obj {
	t.Helper()
	return want(t, s.do(t, "GET", "/image/v2/images/"+id, token, nil), http.StatusOK)
}

// chunked hides a reader's length, so that the client streams it in
// chunks as glanceclient does.
type chunked struct{ io.Reader }

func (s *server) upload(t testing.TB, token, id string, data []byte, status int, headers ...string) obj {
	t.Helper()
	return want(t, s.do(t, "PUT", "/image/v2/images/"+id+"/file", token, chunked{bytes.NewReader(data)}, headers...), status)
}

func (s *server) patch(t testing.TB, token, id string, ops any, status int) obj {
	t.Helper()
	return want(t, s.do(t, "PATCH", "/image/v2/images/"+id, token, ops, "Content-Type", "application/openstack-images-v2.1-json-patch"), status)
}

func (s *server) list(t testing.TB, token, query string) []string {
	t.Helper()
	body := want(t, s.do(t, "GET", "/image/v2/images?"+query, token, nil), http.StatusOK)
	var names []string
	for _, img := range body["images"].([]any) {
		names = append(names, fmt.Sprint(img.(obj)["name"]))
	}
	return names
}

func equal(t testing.TB, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: got %v, want %v", what, got, want)
	}
}

func TestVersionsAndSchemas(t *testing.T) {
	s := newServer(t)
	for _, tc := range []struct {
		path   string
		status int
	}{{"/image", 300}, {"/image/", 300}, {"/image/versions", 200}} {
		body := want(t, s.do(t, "GET", tc.path, "", nil), tc.status)
		versions := body["versions"].([]any)
		first := versions[0].(obj)
		equal(t, tc.path+" current version", []any{first["id"], first["status"]}, []any{"v2.7", "CURRENT"})
		equal(t, tc.path+" link", first["links"].([]any)[0].(obj)["href"], "http://127.0.0.1/image/v2/")
	}
	for _, name := range []string{"image", "images", "member", "members"} {
		body := want(t, s.do(t, "GET", "/image/v2/schemas/"+name, s.alice, nil), 200)
		equal(t, name+" schema name", body["name"], name)
	}
	schema := want(t, s.do(t, "GET", "/image/v2/schemas/image", s.alice, nil), 200)
	props := schema["properties"].(obj)
	equal(t, "disk_format enum", props["disk_format"].(obj)["enum"].([]any)[:3], []any{nil, "raw", "qcow2"})
	equal(t, "name type", props["name"].(obj)["type"], []any{"null", "string"})
	equal(t, "ramdisk_id is not base", props["ramdisk_id"].(obj)["is_base"], false)
	equal(t, "additional properties", schema["additionalProperties"], obj{"type": "string"})
	want(t, s.do(t, "GET", "/image/v2/schemas/image", "", nil), 401)
}

func TestImageLifecycle(t *testing.T) { forEachBackend(t, testImageLifecycle) }

func testImageLifecycle(t *testing.T, s *server) {
	resp := s.do(t, "POST", "/image/v2/images", s.alice, obj{"name": "cirros", "disk_format": "raw", "container_format": "bare",
		"tags": []string{"b", "a", "b"}, "os_distro": "cirros", "ramdisk_id": "00000000-1111-2222-3333-444455556666"})
	img := want(t, resp, 201)
	id := img["id"].(string)
	equal(t, "Location", resp.Header.Get("Location"), "http://127.0.0.1/image/v2/images/"+id)
	for k, v := range (obj{"status": "queued", "visibility": "shared", "owner": s.demo, "size": nil, "checksum": nil, "virtual_size": nil,
		"protected": false, "os_hidden": false, "min_ram": 0.0, "min_disk": 0.0, "os_distro": "cirros", "self": "/v2/images/" + id,
		"file": "/v2/images/" + id + "/file", "schema": "/v2/schemas/image", "tags": []any{"a", "b"}}) {
		equal(t, "created "+k, img[k], v)
	}
	if _, err := time.Parse(time.RFC3339, img["created_at"].(string)); err != nil || !strings.HasSuffix(img["created_at"].(string), "Z") {
		t.Errorf("created_at %v is not Glance's format", img["created_at"])
	}
	// No data yet: 204.
	want(t, s.do(t, "GET", "/image/v2/images/"+id+"/file", s.alice, nil), 204)

	data := bytes.Repeat([]byte("trustack"), 4096)
	s.upload(t, s.alice, id, data, 204)
	md5sum, sha := md5.Sum(data), sha512.Sum512(data)
	img = s.show(t, s.alice, id)
	for k, v := range (obj{"status": "active", "size": float64(len(data)), "virtual_size": float64(len(data)),
		"checksum": hex.EncodeToString(md5sum[:]), "os_hash_algo": "sha512", "os_hash_value": hex.EncodeToString(sha[:])}) {
		equal(t, "uploaded "+k, img[k], v)
	}
	resp = s.do(t, "GET", "/image/v2/images/"+id+"/file", s.alice, nil)
	got, _ := io.ReadAll(resp.Body)
	equal(t, "download status", resp.StatusCode, 200)
	equal(t, "downloaded bytes", bytes.Equal(got, data), true)
	equal(t, "Content-MD5", resp.Header.Get("Content-MD5"), hex.EncodeToString(md5sum[:]))
	equal(t, "Content-Length", resp.Header.Get("Content-Length"), fmt.Sprint(len(data)))
	resp = s.do(t, "GET", "/image/v2/images/"+id+"/file", s.alice, nil, "Range", "bytes=8-15")
	got, _ = io.ReadAll(resp.Body)
	equal(t, "range", []any{resp.StatusCode, string(got)}, []any{206, "trustack"})
	// Others may not upload to it again.
	s.upload(t, s.alice, id, data, 409)

	img = s.patch(t, s.alice, id, []obj{
		{"op": "replace", "path": "/name", "value": "cirros-0.6"},
		{"op": "add", "path": "/hw_disk_bus", "value": "virtio"},
		{"op": "add", "path": "/os_distro", "value": "debian"},
		{"op": "remove", "path": "/ramdisk_id"},
		{"op": "replace", "path": "/min_ram", "value": 512},
		{"op": "add", "path": "/tags", "value": []string{"x"}},
	}, 200)
	for k, v := range (obj{"name": "cirros-0.6", "hw_disk_bus": "virtio", "os_distro": "debian", "ramdisk_id": nil, "min_ram": 512.0, "tags": []any{"x"}}) {
		equal(t, "patched "+k, img[k], v)
	}
	// Glance's draft-4 form, as Tempest sends it.
	want(t, s.do(t, "PATCH", "/image/v2/images/"+id, s.alice, `[{"replace": "/name", "value": "renamed"}]`,
		"Content-Type", "application/openstack-images-v2.0-json-patch"), 200)
	equal(t, "draft 4 rename", s.show(t, s.alice, id)["name"], "renamed")

	want(t, s.do(t, "PUT", "/image/v2/images/"+id+"/tags/new%20tag", s.alice, nil), 204)
	want(t, s.do(t, "PUT", "/image/v2/images/"+id+"/tags/new%20tag", s.alice, nil), 204)
	want(t, s.do(t, "DELETE", "/image/v2/images/"+id+"/tags/x", s.alice, nil), 204)
	want(t, s.do(t, "DELETE", "/image/v2/images/"+id+"/tags/x", s.alice, nil), 404)
	equal(t, "tags", s.show(t, s.alice, id)["tags"], []any{"new tag"})

	want(t, s.do(t, "POST", "/image/v2/images/"+id+"/actions/deactivate", s.alice, nil), 204)
	equal(t, "deactivated", s.show(t, s.alice, id)["status"], "deactivated")
	want(t, s.do(t, "GET", "/image/v2/images/"+id+"/file", s.alice, nil), 403)
	want(t, s.do(t, "GET", "/image/v2/images/"+id+"/file", s.admin, nil), 200)
	want(t, s.do(t, "POST", "/image/v2/images/"+id+"/actions/deactivate", s.alice, nil), 204)
	want(t, s.do(t, "POST", "/image/v2/images/"+id+"/actions/reactivate", s.alice, nil), 204)
	equal(t, "reactivated", s.show(t, s.alice, id)["status"], "active")
	want(t, s.do(t, "GET", "/image/v2/images/"+id+"/file", s.alice, nil), 200)

	s.patch(t, s.alice, id, []obj{{"op": "replace", "path": "/protected", "value": true}}, 200)
	want(t, s.do(t, "DELETE", "/image/v2/images/"+id, s.alice, nil), 403)
	s.patch(t, s.alice, id, []obj{{"op": "replace", "path": "/protected", "value": false}}, 200)
	want(t, s.do(t, "DELETE", "/image/v2/images/"+id, s.alice, nil), 204)
	want(t, s.do(t, "GET", "/image/v2/images/"+id, s.alice, nil), 404)
	want(t, s.do(t, "DELETE", "/image/v2/images/"+id, s.alice, nil), 404)
	nothingStored(t, s.storage)
}

func TestListFiltersSortingAndPages(t *testing.T) {
	s := newServer(t)
	for i, spec := range []obj{
		{"name": "a", "disk_format": "raw", "container_format": "bare", "tags": []string{"t1", "t2"}},
		{"name": "b", "disk_format": "qcow2", "container_format": "ovf", "tags": []string{"t1"}, "os_distro": "debian"},
		{"name": "c", "disk_format": "raw", "container_format": "bare", "visibility": "private", "protected": true},
		{"name": "d", "disk_format": "raw", "container_format": "bare", "os_hidden": true},
		{"name": "e", "disk_format": "iso", "container_format": "bare", "visibility": "community"},
	} {
		img := s.create(t, s.alice, spec)
		if i < 3 {
			s.upload(t, s.alice, img["id"].(string), bytes.Repeat([]byte{'x'}, 100*(i+1)), 204)
		}
	}
	s.create(t, s.admin, obj{"name": "p", "visibility": "public"})
	for _, tc := range []struct{ query, want string }{
		{"", "p,e,c,b,a"},
		{"sort=name:asc", "a,b,c,e,p"},
		{"sort_key=name&sort_dir=asc", "a,b,c,e,p"},
		{"sort_key=size&sort_key=name&sort_dir=desc&sort_dir=asc", "c,b,a,e,p"},
		{"name=b", "b"},
		{"status=active", "c,b,a"},
		{"visibility=private", "c"},
		{"visibility=community", "e"},
		{"visibility=all&sort=name:asc", "a,b,c,e,p"},
		{"owner=" + s.adminProject, "p"},
		{"tag=t1&tag=t2", "a"},
		{"tag=t1", "b,a"},
		{"disk_format=raw", "c,a"},
		{"container_format=ovf", "b"},
		{"size_min=150&size_max=250", "b"},
		{"size=300", "c"},
		{"os_hidden=true", "d"},
		{"protected=true", "c"},
		{"os_distro=debian", "b"},
	} {
		equal(t, "list "+tc.query, strings.Join(s.list(t, s.alice, tc.query), ","), tc.want)
	}
	// Bob sees the public and community images only, and lists the
	// community one only when he asks for it.
	equal(t, "bob's list", strings.Join(s.list(t, s.bob, ""), ","), "p")
	equal(t, "bob's community list", strings.Join(s.list(t, s.bob, "visibility=community"), ","), "e")

	// Pages of two, by the next links, make up the whole list.
	var names []string
	next := "/v2/images?limit=2&sort=name:asc"
	for pages := 0; next != ""; pages++ {
		if pages > 5 {
			t.Fatal("the next links go on and on")
		}
		body := want(t, s.do(t, "GET", "/image"+next, s.alice, nil), 200)
		for _, img := range body["images"].([]any) {
			names = append(names, img.(obj)["name"].(string))
		}
		next, _ = body["next"].(string)
		equal(t, "first link", body["first"], "/v2/images?limit=2&sort=name%3Aasc")
	}
	equal(t, "paged names", strings.Join(names, ","), "a,b,c,e,p")
	equal(t, "limit=0", len(s.list(t, s.alice, "limit=0")), 0)
}

// badRequest is a request that must be refused with a status and a
// message containing text, changing nothing.
type badRequest struct {
	name, method, path, token string
	body                      any
	headers                   []string
	status                    int
	text                      string
}

func TestBadRequestsAreRefusedAndChangeNothing(t *testing.T) {
	s := newServer(t)
	queued := s.create(t, s.alice, obj{"name": "q", "os_distro": "x", "disk_format": "raw", "container_format": "bare"})["id"].(string)
	bare := s.create(t, s.alice, obj{"name": "bare"})["id"].(string)
	active := s.create(t, s.alice, obj{"name": "a", "disk_format": "raw", "container_format": "bare"})["id"].(string)
	s.upload(t, s.alice, active, []byte("data"), 204)
	public := s.create(t, s.admin, obj{"name": "pub", "visibility": "public"})["id"].(string)
	v21 := []string{"Content-Type", "application/openstack-images-v2.1-json-patch"}
	img := "/image/v2/images/" + queued
	countImages := func() int { return len(s.list(t, s.admin, "visibility=all")) }
	before := map[string]obj{}
	for _, id := range []string{queued, bare, active, public} {
		before[id] = s.show(t, s.admin, id)
	}
	count := countImages()
	for _, tc := range []badRequest{
		{"malformed JSON", "POST", "/image/v2/images", s.alice, `{"name": `, nil, 400, "Malformed"},
		{"not an object", "POST", "/image/v2/images", s.alice, `[1]`, nil, 400, "expected an object"},
		{"name of the wrong type", "POST", "/image/v2/images", s.alice, `{"name": 1}`, nil, 400, "'name'"},
		{"name too long", "POST", "/image/v2/images", s.alice, obj{"name": strings.Repeat("n", 256)}, nil, 400, "255"},
		{"bad disk format", "POST", "/image/v2/images", s.alice, obj{"disk_format": "floppy"}, nil, 400, "disk_format"},
		{"bad container format", "POST", "/image/v2/images", s.alice, obj{"container_format": "box"}, nil, 400, "container_format"},
		{"bad visibility", "POST", "/image/v2/images", s.alice, obj{"visibility": "everyone"}, nil, 400, "visibility"},
		{"boolean as string", "POST", "/image/v2/images", s.alice, obj{"protected": "yes"}, nil, 400, "protected"},
		{"fractional min_ram", "POST", "/image/v2/images", s.alice, obj{"min_ram": 1.5}, nil, 400, "min_ram"},
		{"negative min_disk", "POST", "/image/v2/images", s.alice, obj{"min_disk": -1}, nil, 400, "negative"},
		{"property not a string", "POST", "/image/v2/images", s.alice, obj{"cores": 2}, nil, 400, "cores"},
		{"bad id", "POST", "/image/v2/images", s.alice, obj{"id": "not-a-uuid"}, nil, 400, "'id'"},
		{"existing id", "POST", "/image/v2/images", s.alice, obj{"id": active}, nil, 409, "exists"},
		{"read-only status", "POST", "/image/v2/images", s.alice, obj{"status": "active"}, nil, 403, "read-only"},
		{"read-only checksum", "POST", "/image/v2/images", s.alice, obj{"checksum": "x"}, nil, 403, "read-only"},
		{"read-only size", "POST", "/image/v2/images", s.alice, obj{"size": 1}, nil, 403, "read-only"},
		{"read-only self", "POST", "/image/v2/images", s.alice, obj{"self": "x"}, nil, 403, "read-only"},
		{"reserved location", "POST", "/image/v2/images", s.alice, obj{"location": "x"}, nil, 403, "reserved"},
		{"reserved namespace", "POST", "/image/v2/images", s.alice, obj{"os_glance_x": "y"}, nil, 403, "reserved"},
		{"too many tags", "POST", "/image/v2/images", s.alice, obj{"tags": tags(129)}, nil, 413, "tags"},
		{"body too large", "POST", "/image/v2/images", s.alice, obj{"description": strings.Repeat("d", 5000)}, nil, 413, "too large"},
		{"not JSON", "POST", "/image/v2/images", s.alice, `name=x`, []string{"Content-Type", "text/plain"}, 415, "application/json"},
		{"another owner", "POST", "/image/v2/images", s.alice, obj{"owner": s.other}, nil, 403, "add_image"},
		{"a reader", "POST", "/image/v2/images", s.rita, obj{"name": "r"}, nil, 403, "add_image"},
		{"a member making it public", "POST", "/image/v2/images", s.alice, obj{"visibility": "public"}, nil, 403, "publicize_image"},
		{"no token", "POST", "/image/v2/images", "", obj{}, nil, 401, "authentication"},

		{"patch as JSON", "PATCH", img, s.alice, `[]`, nil, 415, "json-patch"},
		{"patch not an array", "PATCH", img, s.alice, `{"op": "add"}`, v21, 400, "JSON array"},
		{"operation not an object", "PATCH", img, s.alice, `["x"]`, v21, 400, "JSON objects"},
		{"no op", "PATCH", img, s.alice, `[{"path": "/name", "value": "x"}]`, v21, 400, "`op`"},
		{"unknown op", "PATCH", img, s.alice, `[{"op": "move", "path": "/name", "value": "x"}]`, v21, 400, "Invalid operation"},
		{"no path", "PATCH", img, s.alice, `[{"op": "add", "value": "x"}]`, v21, 400, "path"},
		{"no value", "PATCH", img, s.alice, `[{"op": "add", "path": "/k"}]`, v21, 400, "value"},
		{"relative pointer", "PATCH", img, s.alice, `[{"op": "add", "path": "k", "value": "v"}]`, v21, 400, "does not start"},
		{"deep pointer", "PATCH", img, s.alice, `[{"op": "add", "path": "/a/b", "value": "v"}]`, v21, 400, "JSON pointer"},
		{"bad escape", "PATCH", img, s.alice, `[{"op": "add", "path": "/a~2", "value": "v"}]`, v21, 400, "~"},
		{"replace an unknown attribute", "PATCH", img, s.alice, `[{"op": "replace", "path": "/nothing", "value": "v"}]`, v21, 409, "does not exist"},
		{"remove an unknown attribute", "PATCH", img, s.alice, `[{"op": "remove", "path": "/nothing"}]`, v21, 409, "does not exist"},
		{"remove a base attribute", "PATCH", img, s.alice, `[{"op": "remove", "path": "/name"}]`, v21, 403, "may not be removed"},
		{"add an existing property in draft 4", "PATCH", img, s.alice, `[{"add": "/os_distro", "value": "y"}]`,
			[]string{"Content-Type", "application/openstack-images-v2.0-json-patch"}, 409, "already present"},
		{"property of the wrong type", "PATCH", img, s.alice, `[{"op": "add", "path": "/cores", "value": 2}]`, v21, 400, "cores"},
		{"name of the wrong type", "PATCH", img, s.alice, `[{"op": "replace", "path": "/name", "value": ["x"]}]`, v21, 400, "name"},
		{"bad disk format", "PATCH", img, s.alice, `[{"op": "replace", "path": "/disk_format", "value": "floppy"}]`, v21, 400, "disk_format"},
		{"read-only status", "PATCH", img, s.alice, `[{"op": "replace", "path": "/status", "value": "active"}]`, v21, 403, "read-only"},
		{"read-only id", "PATCH", img, s.alice, `[{"op": "replace", "path": "/id", "value": "x"}]`, v21, 403, "read-only"},
		{"read-only checksum", "PATCH", img, s.alice, `[{"op": "add", "path": "/checksum", "value": "x"}]`, v21, 403, "read-only"},
		{"read-only os_hash_value", "PATCH", img, s.alice, `[{"op": "add", "path": "/os_hash_value", "value": "x"}]`, v21, 403, "read-only"},
		{"reserved deleted", "PATCH", img, s.alice, `[{"op": "add", "path": "/deleted", "value": "x"}]`, v21, 403, "reserved"},
		{"locations", "PATCH", img, s.alice, `[{"op": "add", "path": "/locations/-", "value": {}}]`, v21, 403, "locations"},
		{"owner by a member", "PATCH", img, s.alice, `[{"op": "replace", "path": "/owner", "value": "x"}]`, v21, 403, "Owner"},
		{"publicize as a member", "PATCH", img, s.alice, `[{"op": "replace", "path": "/visibility", "value": "public"}]`, v21, 403, "publicize_image"},
		{"a later bad op undoes the earlier", "PATCH", img, s.alice, `[{"op": "replace", "path": "/name", "value": "z"}, {"op": "remove", "path": "/none"}]`, v21, 409, "none"},
		{"formats of an active image", "PATCH", "/image/v2/images/" + active, s.alice, `[{"op": "replace", "path": "/disk_format", "value": "qcow2"}]`, v21, 403, "queued"},
		{"another's image", "PATCH", "/image/v2/images/" + public, s.alice, `[{"op": "replace", "path": "/name", "value": "x"}]`, v21, 403, "modify_image"},
		{"a reader's change", "PATCH", img, s.rita, `[{"op": "replace", "path": "/name", "value": "x"}]`, v21, 403, "modify_image"},
		{"a stranger's change", "PATCH", img, s.bob, `[{"op": "replace", "path": "/name", "value": "x"}]`, v21, 404, "No image"},

		{"upload to an active image", "PUT", "/image/v2/images/" + active + "/file", s.alice, chunked{strings.NewReader("x")}, nil, 409, "saving"},
		{"upload without formats", "PUT", "/image/v2/images/" + bare + "/file", s.alice, chunked{strings.NewReader("x")}, nil, 400, "disk_format, container_format"},
		{"upload of another type", "PUT", img + "/file", s.alice, `x`, []string{"Content-Type", "text/plain"}, 415, "octet-stream"},
		{"upload over the cap", "PUT", img + "/file", s.alice, bytes.NewReader(make([]byte, sizeCap+1)), nil, 413, "too large"},
		{"upload with a bad Content-MD5", "PUT", img + "/file", s.alice, chunked{strings.NewReader("x")}, []string{"Content-MD5", "nope"}, 400, "Content-MD5"},
		{"upload by a reader", "PUT", img + "/file", s.rita, chunked{strings.NewReader("x")}, nil, 403, "upload_image"},
		{"upload by a stranger", "PUT", img + "/file", s.bob, chunked{strings.NewReader("x")}, nil, 404, "No image"},

		{"delete another's image", "DELETE", "/image/v2/images/" + public, s.alice, nil, nil, 403, "delete_image"},
		{"delete by a stranger", "DELETE", img, s.bob, nil, nil, 404, "No image"},
		{"name in an ID position", "GET", "/image/v2/images/cirros", s.alice, nil, nil, 404, "No image"},
		{"deactivate a queued image", "POST", img + "/actions/deactivate", s.alice, nil, nil, 403, "status 'queued'"},
		{"tag too long", "PUT", img + "/tags/" + strings.Repeat("t", 256), s.alice, nil, nil, 400, "tags"},
		{"bad limit", "GET", "/image/v2/images?limit=x", s.alice, nil, nil, 400, "limit"},
		{"negative limit", "GET", "/image/v2/images?limit=-1", s.alice, nil, nil, 400, "limit"},
		{"bad sort key", "GET", "/image/v2/images?sort_key=owner", s.alice, nil, nil, 400, "sort key"},
		{"bad sort dir", "GET", "/image/v2/images?sort=name:up", s.alice, nil, nil, 400, "sort direction"},
		{"both sort syntaxes", "GET", "/image/v2/images?sort=name&sort_key=name", s.alice, nil, nil, 400, "combined"},
		{"sort dirs and keys", "GET", "/image/v2/images?sort_key=name&sort_key=size&sort_key=id&sort_dir=asc&sort_dir=desc", s.alice, nil, nil, 400, "sort dirs"},
		{"bad visibility", "GET", "/image/v2/images?visibility=mine", s.alice, nil, nil, 400, "visibility"},
		{"bad member status", "GET", "/image/v2/images?member_status=maybe", s.alice, nil, nil, 400, "status"},
		{"bad os_hidden", "GET", "/image/v2/images?os_hidden=1", s.alice, nil, nil, 400, "os_hidden"},
		{"bad size", "GET", "/image/v2/images?size_min=big", s.alice, nil, nil, 400, "non-numeric"},
		{"unknown marker", "GET", "/image/v2/images?marker=00000000-0000-4000-8000-000000000000", s.alice, nil, nil, 400, "marker"},
		{"changes-since", "GET", "/image/v2/images?changes-since=2020-01-01", s.alice, nil, nil, 400, "changes-since"},
		{"wrong method", "POST", img, s.alice, obj{}, nil, 405, "not allowed"},
		{"unknown path", "GET", "/image/v2/nothing", s.alice, nil, nil, 404, "could not be found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := s.do(t, tc.method, tc.path, tc.token, tc.body, tc.headers...)
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, b)
			}
			var e struct {
				Error struct {
					Code    int
					Message string
				}
			}
			if err := json.Unmarshal(b, &e); err != nil || e.Error.Code != tc.status || !strings.Contains(e.Error.Message, tc.text) {
				t.Errorf("error body %s, want code %d and a message with %q", b, tc.status, tc.text)
			}
			if tc.status == 415 && tc.method == "PATCH" && resp.Header.Get("Accept-Patch") == "" {
				t.Error("a 415 to a patch has no Accept-Patch header")
			}
		})
	}
	for id, b := range before {
		equal(t, "image after bad requests", s.show(t, s.admin, id), b)
	}
	equal(t, "number of images", countImages(), count)
}

func tags(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprint("tag", i)
	}
	return out
}

func TestVisibilityAndSharing(t *testing.T) {
	s := newServer(t)
	mk := func(name, visibility string) string {
		return s.create(t, s.alice, obj{"name": name, "visibility": visibility, "disk_format": "raw", "container_format": "bare"})["id"].(string)
	}
	private, shared, community := mk("private", "private"), mk("shared", "shared"), mk("community", "community")
	for _, tc := range []struct {
		token, id string
		status    int
	}{
		{s.bob, private, 404}, {s.bob, shared, 404}, {s.bob, community, 200},
		{s.rita, private, 200}, {s.admin, private, 200},
	} {
		want(t, s.do(t, "GET", "/image/v2/images/"+tc.id, tc.token, nil), tc.status)
	}
	// Members only for shared images.
	want(t, s.do(t, "POST", "/image/v2/images/"+private+"/members", s.alice, obj{"member": s.other}), 403)
	want(t, s.do(t, "GET", "/image/v2/images/"+community+"/members", s.alice, nil), 403)

	members := "/image/v2/images/" + shared + "/members"
	m := want(t, s.do(t, "POST", members, s.alice, obj{"member": s.other}), 200)
	equal(t, "new member", []any{m["member_id"], m["image_id"], m["status"], m["schema"]}, []any{s.other, shared, "pending", "/v2/schemas/member"})
	want(t, s.do(t, "POST", members, s.alice, obj{"member": s.other}), 409)
	want(t, s.do(t, "POST", members, s.alice, obj{}), 400)
	want(t, s.do(t, "POST", members, s.alice, obj{"member": 7}), 400)

	// Bob sees it by ID while pending, lists it only when accepted.
	s.show(t, s.bob, shared)
	equal(t, "bob's list while pending", len(s.list(t, s.bob, "")), 0) // neither the pending image nor the community one
	equal(t, "bob's pending list", s.list(t, s.bob, "visibility=shared&member_status=pending"), []string{"shared"})
	want(t, s.do(t, "PUT", members+"/"+s.other, s.alice, obj{"status": "accepted"}), 403)
	want(t, s.do(t, "PUT", members+"/"+s.other, s.bob, obj{"status": "maybe"}), 400)
	want(t, s.do(t, "PUT", members+"/"+s.other, s.bob, obj{}), 400)
	m = want(t, s.do(t, "PUT", members+"/"+s.other, s.bob, obj{"status": "accepted"}), 200)
	equal(t, "accepted", m["status"], "accepted")
	equal(t, "bob's list", s.list(t, s.bob, "sort=name:asc"), []string{"shared"})
	// A member may download, not change, not share further.
	want(t, s.do(t, "GET", "/image/v2/images/"+shared+"/file", s.bob, nil), 204)
	s.patch(t, s.bob, shared, []obj{{"op": "replace", "path": "/name", "value": "mine"}}, 403)
	want(t, s.do(t, "POST", members, s.bob, obj{"member": s.adminProject}), 403)
	want(t, s.do(t, "DELETE", members+"/"+s.other, s.bob, nil), 403)

	// The owner sees every member; a member only itself.
	want(t, s.do(t, "POST", members, s.alice, obj{"member": s.adminProject}), 200)
	list := want(t, s.do(t, "GET", members, s.alice, nil), 200)
	equal(t, "owner's member list", len(list["members"].([]any)), 2)
	list = want(t, s.do(t, "GET", members, s.bob, nil), 200)
	equal(t, "member's member list", len(list["members"].([]any)), 1)
	want(t, s.do(t, "GET", members+"/"+s.other, s.bob, nil), 200)
	want(t, s.do(t, "GET", members+"/"+s.adminProject, s.bob, nil), 404)
	want(t, s.do(t, "GET", members+"/"+s.adminProject, s.alice, nil), 200)

	want(t, s.do(t, "DELETE", members+"/"+s.other, s.alice, nil), 204)
	want(t, s.do(t, "DELETE", members+"/"+s.other, s.alice, nil), 404)
	want(t, s.do(t, "GET", "/image/v2/images/"+shared, s.bob, nil), 404)

	// Only admins publicize; members may make their images community.
	s.patch(t, s.alice, private, []obj{{"op": "replace", "path": "/visibility", "value": "community"}}, 200)
	s.patch(t, s.admin, private, []obj{{"op": "replace", "path": "/visibility", "value": "public"}}, 200)
	s.show(t, s.bob, private)
	equal(t, "bob's list with a public image", s.list(t, s.bob, ""), []string{"private"})
}

// failingReader gives some data, then, once started says the upload has
// begun (the server is reading it), an error, like a client that goes
// away mid-upload.
type failingReader struct {
	n       int
	started func() bool
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		for deadline := time.Now().Add(10 * time.Second); !f.started() && time.Now().Before(deadline); {
			time.Sleep(5 * time.Millisecond)
		}
		return 0, errors.New("client gone")
	}
	n := min(len(p), f.n)
	f.n -= n
	return n, nil
}

func TestInterruptedUploadLeavesTheImageQueued(t *testing.T) {
	forEachBackend(t, testInterruptedUploadLeavesTheImageQueued)
}

func testInterruptedUploadLeavesTheImageQueued(t *testing.T, s *server) {
	id := s.create(t, s.alice, obj{"name": "x", "disk_format": "raw", "container_format": "bare"})["id"].(string)
	// Asked from the client's transport, off the test's goroutine: no t.
	saving := func() bool {
		req, _ := http.NewRequest("GET", s.URL+"/image/v2/images/"+id, nil)
		req.Header.Set("X-Auth-Token", s.alice)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var img struct{ Status string }
		return json.NewDecoder(resp.Body).Decode(&img) == nil && img.Status == "saving"
	}
	req, _ := http.NewRequest("PUT", s.URL+"/image/v2/images/"+id+"/file", &failingReader{n: 20000, started: saving})
	req.Header.Set("X-Auth-Token", s.alice)
	req.Header.Set("Content-Type", "application/octet-stream")
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("an upload whose body failed succeeded with %d", resp.StatusCode)
	}
	// The server notices the broken body on its own time.
	deadline := time.Now().Add(10 * time.Second)
	for s.show(t, s.alice, id)["status"] != "queued" {
		if time.Now().After(deadline) {
			t.Fatalf("after an interrupted upload the image is %v, want queued", s.show(t, s.alice, id)["status"])
		}
		time.Sleep(10 * time.Millisecond)
	}
	img := s.show(t, s.alice, id)
	equal(t, "size after an interrupted upload", img["size"], nil)
	nothingStored(t, s.storage)
	// A retry works.
	s.upload(t, s.alice, id, []byte("whole"), 204)
	equal(t, "status after the retry", s.show(t, s.alice, id)["status"], "active")
}

// nothingStored fails unless the data store holds no data, no
// temporary file and no segment.
func nothingStored(t testing.TB, st *imagestest.Storage) {
	t.Helper()
	if left := st.Stored(t); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

func TestChecksumMismatchKills(t *testing.T) { forEachBackend(t, testChecksumMismatchKills) }

func testChecksumMismatchKills(t *testing.T, s *server) {
	other := md5.Sum([]byte("other data"))
	for _, tc := range []struct {
		name    string
		attrs   obj
		headers []string
	}{
		{"Content-MD5", obj{}, []string{"Content-MD5", hex.EncodeToString(other[:])}},
		{"openstacksdk's md5 property", obj{"owner_specified.openstack.md5": hex.EncodeToString(other[:])}, nil},
		{"openstacksdk's sha256 property", obj{"owner_specified.openstack.sha256": strings.Repeat("ab", 32)}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.attrs["name"], tc.attrs["disk_format"], tc.attrs["container_format"] = "k", "raw", "bare"
			id := s.create(t, s.alice, tc.attrs)["id"].(string)
			s.upload(t, s.alice, id, []byte("data"), 400, tc.headers...)
			equal(t, "status", s.show(t, s.alice, id)["status"], "killed")
			equal(t, "killed images in lists", s.list(t, s.alice, "name=k"), []string(nil))
			s.upload(t, s.alice, id, []byte("data"), 409)
			want(t, s.do(t, "DELETE", "/image/v2/images/"+id, s.alice, nil), 204)
		})
	}
	nothingStored(t, s.storage)
	// The right digests pass, in hex or base64.
	data := []byte("data")
	sum := md5.Sum(data)
	id := s.create(t, s.alice, obj{"disk_format": "raw", "container_format": "bare", "owner_specified.openstack.md5": hex.EncodeToString(sum[:])})["id"].(string)
	s.upload(t, s.alice, id, data, 204, "Content-MD5", "jXd/OF09/siBXSD3SWAm3A==")
}

func TestUploadOverTheCapWithoutLength(t *testing.T) {
	forEachBackend(t, testUploadOverTheCapWithoutLength)
}

func testUploadOverTheCapWithoutLength(t *testing.T, s *server) {
	id := s.create(t, s.alice, obj{"disk_format": "raw", "container_format": "bare"})["id"].(string)
	s.upload(t, s.alice, id, make([]byte, sizeCap+1), 413)
	equal(t, "status", s.show(t, s.alice, id)["status"], "queued")
	nothingStored(t, s.storage)
	s.upload(t, s.alice, id, make([]byte, sizeCap), 204)
}

func TestNextLinkKeepsTheQuery(t *testing.T) {
	s := newServer(t)
	for range 3 {
		s.create(t, s.alice, obj{"name": "same"})
	}
	body := want(t, s.do(t, "GET", "/image/v2/images?name=same&limit=2", s.alice, nil), 200)
	next, err := url.Parse(body["next"].(string))
	if err != nil || next.Path != "/v2/images" || next.Query().Get("name") != "same" || next.Query().Get("marker") == "" {
		t.Fatalf("next link %v", body["next"])
	}
	body = want(t, s.do(t, "GET", "/image"+body["next"].(string), s.alice, nil), 200)
	equal(t, "second page", len(body["images"].([]any)), 1)
	equal(t, "last page has no next", body["next"], nil)
}
