package volume_test

import (
	"context"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/internal/apitest"
	"github.com/trustack/trustack/internal/volumetest"
	"github.com/trustack/trustack/volume"
	"github.com/trustack/trustack/wire"
)

type obj = map[string]any

// storage is storage hosts' agents that do at once what they are asked;
// one making a volume from an image calls copying first, if it is set.
type storage struct{ copying func(host, volumeID string) }

func (storage) CreateVolume(context.Context, string, string, string, int) error       { return nil }
func (storage) ExtendVolume(context.Context, string, string, string, int, bool) error { return nil }
func (storage) DeleteVolume(context.Context, string, string, string) error            { return nil }
func (storage) CreateVolumeFromSnapshot(context.Context, string, string, string, string, int) error {
	return nil
}
func (s storage) CreateVolumeFromImage(_ context.Context, host, _, id string, _ int, _ wire.ImageRef, _ string) error {
	if s.copying != nil {
		s.copying(host, id)
	}
	return nil
}
func (storage) SnapshotVolume(context.Context, string, string, string, string) error { return nil }
func (storage) DeleteSnapshot(context.Context, string, string, string) error         { return nil }
func (storage) UploadVolume(context.Context, string, string, string, wire.Upload, string) error {
	return nil
}

// server is the volume API over the block storage service on a new
// SQLite store, with one storage host of 100 GiB.
type server struct {
	*httptest.Server
	svc *volume.Service
}

func newServer(t *testing.T) *server {
	t.Helper()
	return newServerWith(t, storage{}, volume.Options{})
}

// newServerWith is newServer with the storage hosts' agents and the
// service's options.
func newServerWith(t *testing.T, agents storage, opts volume.Options) *server {
	t.Helper()
	srv, svc := volumetest.Serve(t, agents, opts)
	return &server{srv, svc}
}

func (s *server) do(t *testing.T, token, method, path string, body any) (int, obj) {
	t.Helper()
	return apitest.Do(t, http.DefaultClient, token, method, s.URL+path, body)
}

func (s *server) must(t *testing.T, status int, token, method, path string, body any) obj {
	t.Helper()
	return apitest.Must(t, http.DefaultClient, status, token, method, s.URL+path, body)
}

// create makes a volume as token and waits for it to be available.
func (s *server) create(t *testing.T, token string, attrs obj) obj {
	t.Helper()
	v := s.must(t, http.StatusAccepted, token, "POST", "/volume/v3/volumes", obj{"volume": attrs})["volume"].(obj)
	s.svc.Wait()
	return v
}

// fault checks that a body is Cinder's error body of its status.
func fault(t *testing.T, body obj, name string) {
	t.Helper()
	f, ok := body[name].(obj)
	if !ok || f["message"] == "" || f["code"] == nil {
		t.Errorf("error body %v, want %s with code and message", body, name)
	}
}

// Tempest's schemas (tempest/lib/api_schema/response/volume/volumes.py):
// what a volume created or updated shows, and what one shown or listed in
// detail adds to an administrator.
var (
	createKeys = []string{"attachments", "availability_zone", "bootable", "consistencygroup_id", "created_at", "description",
		"encrypted", "id", "links", "metadata", "multiattach", "name", "replication_status", "size", "snapshot_id", "source_volid",
		"status", "updated_at", "user_id", "volume_type"}
	createOptional = []string{"migration_status", "group_id", "provider_id", "service_uuid", "shared_targets"}
	showOptional   = append(slices.Clone(createOptional), "os-vol-host-attr:host", "os-vol-tenant-attr:tenant_id",
		"os-vol-mig-status-attr:migstat", "os-vol-mig-status-attr:name_id", "volume_image_metadata")
)

// checkKeys checks that o has every required key and no key but those
// and the optional ones.
func checkKeys(t *testing.T, what string, o obj, required, optional []string) {
	t.Helper()
	for _, k := range required {
		if _, ok := o[k]; !ok {
			t.Errorf("%s: no %s in %v", what, k, o)
		}
	}
	for k := range o {
		if !slices.Contains(required, k) && !slices.Contains(optional, k) {
			t.Errorf("%s: %s is not in Tempest's schema", what, k)
		}
	}
}

func TestVersions(t *testing.T) {
	s := newServer(t)
	for path, status := range map[string]int{"/volume/": http.StatusMultipleChoices, "/volume/v3/": http.StatusOK} {
		resp, err := http.Get(s.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != status {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, status)
		}
	}
	// Discovery answers whatever version the client hopes for.
	req, _ := http.NewRequest("GET", s.URL+"/volume/", nil)
	req.Header.Set("OpenStack-API-Version", "volume 3.70")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusMultipleChoices {
		t.Errorf("discovery asking for 3.70: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	body := s.must(t, http.StatusOK, "alice", "GET", "/volume/v3/", nil)
	v := body["versions"].([]any)[0].(obj)
	if v["id"] != "v3.0" || v["min_version"] != "3.0" || v["version"] == "" || v["media-types"] == nil {
		t.Errorf("version: %v", v)
	}
	answered := map[string]string{"volume 3.0": "volume 3.0", "volume 3.27": "volume 3.27", "volume latest": "volume 3.44"}
	for header, status := range map[string]int{"volume 3.0": 200, "volume 3.27": 200, "volume latest": 200, "volume 3.999": 406, "volume 2.0": 406, "volume three": 400} {
		req, _ := http.NewRequest("GET", s.URL+"/volume/v3/volumes", nil)
		req.Header.Set("X-Auth-Token", "alice")
		req.Header.Set("OpenStack-API-Version", header)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != status {
			t.Errorf("%s: %d, want %d", header, resp.StatusCode, status)
		}
		if status == 200 && resp.Header.Get("OpenStack-API-Version") != answered[header] {
			t.Errorf("%s: answered version %q", header, resp.Header.Get("OpenStack-API-Version"))
		}
	}
}

func TestVolumeLifecycle(t *testing.T) {
	s := newServer(t)
	v := s.create(t, "alice", obj{"size": 1, "name": "vol1", "description": nil, "volume_type": nil, "availability_zone": nil,
		"metadata": obj{"purpose": "db"}, "imageRef": nil, "snapshot_id": nil, "source_volid": nil, "consistencygroup_id": nil, "backup_id": nil})
	checkKeys(t, "created", v, createKeys, createOptional)
	if v["status"] != "creating" || v["volume_type"] != trustack.DefaultVolumeType || v["bootable"] != "false" {
		t.Errorf("created: %v", v)
	}
	id := v["id"].(string)

	// The project may be in the path, as the catalog's URL has it, and
	// must then be the caller's.
	shown := s.must(t, http.StatusOK, "alice", "GET", "/volume/v3/"+apitest.P1+"/volumes/"+id, nil)["volume"].(obj)
	checkKeys(t, "shown", shown, createKeys, showOptional)
	if shown["status"] != "available" || shown["os-vol-tenant-attr:tenant_id"] != apitest.P1 || shown["os-vol-host-attr:host"] != nil {
		t.Errorf("shown to its owner: %v", shown)
	}
	if code, body := s.do(t, "alice", "GET", "/volume/v3/"+apitest.P2+"/volumes/"+id, nil); code != http.StatusBadRequest {
		t.Errorf("another project in the path: %d %v", code, body)
	}
	asAdmin := s.must(t, http.StatusOK, "admin", "GET", "/volume/v3/volumes/"+id, nil)["volume"].(obj)
	if asAdmin["os-vol-host-attr:host"] != "store1@file#file" {
		t.Errorf("shown to an administrator: host %v", asAdmin["os-vol-host-attr:host"])
	}
	code, body := s.do(t, "bob", "GET", "/volume/v3/volumes/"+id, nil)
	if code != http.StatusNotFound {
		t.Errorf("another project's volume: %d", code)
	}
	fault(t, body, "itemNotFound")
	if code, _ := s.do(t, "alice", "GET", "/volume/v3/volumes/vol1", nil); code != http.StatusNotFound {
		t.Errorf("a name in the ID's place: %d, want 404 (clients then list by name)", code)
	}

	updated := s.must(t, http.StatusOK, "alice", "PUT", "/volume/v3/volumes/"+id, obj{"volume": obj{"name": "renamed", "description": "d"}})["volume"].(obj)
	checkKeys(t, "updated", updated, createKeys, createOptional)
	if updated["name"] != "renamed" || updated["description"] != "d" || updated["metadata"].(obj)["purpose"] != "db" {
		t.Errorf("updated: %v", updated)
	}
	if code, _ := s.do(t, "rita", "PUT", "/volume/v3/volumes/"+id, obj{"volume": obj{"name": "x"}}); code != http.StatusForbidden {
		t.Errorf("a reader renames: %d, want 403", code)
	}

	// Metadata, whole and by key.
	md := s.must(t, http.StatusOK, "alice", "POST", "/volume/v3/volumes/"+id+"/metadata", obj{"metadata": obj{"tier": "gold"}})["metadata"].(obj)
	if len(md) != 2 || md["tier"] != "gold" {
		t.Errorf("merged metadata: %v", md)
	}
	s.must(t, http.StatusOK, "alice", "PUT", "/volume/v3/volumes/"+id+"/metadata/tier", obj{"meta": obj{"tier": "silver"}})
	if m := s.must(t, http.StatusOK, "alice", "GET", "/volume/v3/volumes/"+id+"/metadata/tier", nil)["meta"].(obj); m["tier"] != "silver" {
		t.Errorf("a key: %v", m)
	}
	if code, _ := s.do(t, "alice", "PUT", "/volume/v3/volumes/"+id+"/metadata/tier", obj{"meta": obj{"other": "x"}}); code != http.StatusBadRequest {
		t.Errorf("a body naming another key: %d, want 400", code)
	}
	s.must(t, http.StatusOK, "alice", "DELETE", "/volume/v3/volumes/"+id+"/metadata/purpose", nil)
	if code, _ := s.do(t, "alice", "DELETE", "/volume/v3/volumes/"+id+"/metadata/purpose", nil); code != http.StatusNotFound {
		t.Errorf("a key deleted twice: %d, want 404", code)
	}
	md = s.must(t, http.StatusOK, "alice", "PUT", "/volume/v3/volumes/"+id+"/metadata", obj{"metadata": obj{"only": "this"}})["metadata"].(obj)
	if !maps.Equal(md, obj{"only": "this"}) {
		t.Errorf("replaced metadata: %v", md)
	}

	// Actions.
	s.must(t, http.StatusAccepted, "alice", "POST", "/volume/v3/volumes/"+id+"/action", obj{"os-extend": obj{"new_size": 3}})
	s.svc.Wait()
	if got := s.must(t, http.StatusOK, "alice", "GET", "/volume/v3/volumes/"+id, nil)["volume"].(obj); got["size"] != 3.0 || got["status"] != "available" {
		t.Errorf("extended: size %v status %v", got["size"], got["status"])
	}
	for _, bad := range []obj{{"os-extend": obj{"new_size": 2}}, {"os-extend": obj{"new_size": "x"}}, {"os-frobnicate": nil}, {}} {
		if code, _ := s.do(t, "alice", "POST", "/volume/v3/volumes/"+id+"/action", bad); code != http.StatusBadRequest {
			t.Errorf("action %v: %d, want 400", bad, code)
		}
	}
	s.must(t, http.StatusOK, "alice", "POST", "/volume/v3/volumes/"+id+"/action", obj{"os-set_bootable": obj{"bootable": true}})
	if got := s.must(t, http.StatusOK, "alice", "GET", "/volume/v3/volumes/"+id, nil)["volume"].(obj); got["bootable"] != "true" {
		t.Errorf("bootable: %v", got["bootable"])
	}
	if code, _ := s.do(t, "alice", "POST", "/volume/v3/volumes/"+id+"/action", obj{"os-reset_status": obj{"status": "error"}}); code != http.StatusForbidden {
		t.Errorf("a member resets a status: %d, want 403", code)
	}
	s.must(t, http.StatusAccepted, "admin", "POST", "/volume/v3/volumes/"+id+"/action", obj{"os-reset_status": obj{"status": "in-use"}})
	if code, _ := s.do(t, "alice", "DELETE", "/volume/v3/volumes/"+id, nil); code != http.StatusBadRequest {
		t.Errorf("a volume in use deleted: %d, want 400", code)
	}
	s.must(t, http.StatusAccepted, "admin", "POST", "/volume/v3/volumes/"+id+"/action", obj{"os-reset_status": obj{"status": "available"}})

	s.must(t, http.StatusAccepted, "alice", "DELETE", "/volume/v3/volumes/"+id, nil)
	s.svc.Wait()
	if code, _ := s.do(t, "alice", "GET", "/volume/v3/volumes/"+id, nil); code != http.StatusNotFound {
		t.Errorf("deleted volume: %d, want 404", code)
	}
}

func TestCreateRefusals(t *testing.T) {
	s := newServer(t)
	for _, bad := range []obj{
		{"volume": obj{"name": "no size"}},
		{"volume": obj{"size": 0}},
		{"volume": obj{"size": "big"}},
		{"volume": obj{"size": 1, "metadata": obj{"k": 1}}},
		{"volume": obj{"size": 1, "imageRef": "5c4ef3b2-0b52-4bc8-a3a2-7f4b8d1e2f3a"}},
		{"volume": obj{"size": 1, "volume_type": "gold"}},
		{"volume": obj{"size": 1, "snapshot_id": "5c4ef3b2-0b52-4bc8-a3a2-7f4b8d1e2f3a"}},
		{"volume": obj{"size": 1, "source_volid": "5c4ef3b2-0b52-4bc8-a3a2-7f4b8d1e2f3a"}},
		{"volume": nil},
		{"size": 1},
	} {
		code, body := s.do(t, "alice", "POST", "/volume/v3/volumes", bad)
		if code != http.StatusBadRequest && code != http.StatusNotFound {
			t.Errorf("%v: %d %v, want 400 or 404", bad, code, body)
		}
	}
	if code, _ := s.do(t, "rita", "POST", "/volume/v3/volumes", obj{"volume": obj{"size": 1}}); code != http.StatusForbidden {
		t.Errorf("a reader creates: %d, want 403", code)
	}
	// Quotas: 413 past them, and nothing made.
	s.must(t, http.StatusOK, "admin", "PUT", "/volume/v3/os-quota-sets/"+apitest.P1, obj{"quota_set": obj{"gigabytes": 5, "per_volume_gigabytes": "4"}})
	code, body := s.do(t, "alice", "POST", "/volume/v3/volumes", obj{"volume": obj{"size": 5}})
	if code != http.StatusRequestEntityTooLarge {
		t.Errorf("past per_volume_gigabytes: %d, want 413", code)
	}
	fault(t, body, "overLimit")
	s.create(t, "alice", obj{"size": 4})
	if code, _ := s.do(t, "alice", "POST", "/volume/v3/volumes", obj{"volume": obj{"size": 2}}); code != http.StatusRequestEntityTooLarge {
		t.Errorf("past gigabytes: %d, want 413", code)
	}
	if n := len(s.must(t, http.StatusOK, "alice", "GET", "/volume/v3/volumes", nil)["volumes"].([]any)); n != 1 {
		t.Errorf("%d volumes after refusals, want 1", n)
	}
}

func TestListFiltersSortingAndPages(t *testing.T) {
	s := newServer(t)
	var ids []string
	for i, name := range []string{"a", "b", "c", "d"} {
		v := s.create(t, "alice", obj{"size": i + 1, "name": name, "metadata": obj{"even": map[bool]string{true: "yes", false: "no"}[i%2 == 0]}})
		ids = append(ids, v["id"].(string))
	}
	s.create(t, "bob", obj{"size": 1, "name": "bobs"})
	names := func(path string) string {
		t.Helper()
		var out []string
		for _, v := range s.must(t, http.StatusOK, "alice", "GET", path, nil)["volumes"].([]any) {
			out = append(out, v.(obj)["name"].(string))
		}
		return strings.Join(out, ",")
	}
	for path, want := range map[string]string{
		"/volume/v3/volumes":                                               "d,c,b,a", // newest first
		"/volume/v3/volumes/detail?sort=size:asc":                          "a,b,c,d",
		"/volume/v3/volumes?sort_key=name&sort_dir=asc":                    "a,b,c,d",
		"/volume/v3/volumes?name=c":                                        "c",
		"/volume/v3/volumes/detail?metadata=%7B%27even%27%3A+%27yes%27%7D": "c,a",
		"/volume/v3/volumes?status=available&sort=name":                    "d,c,b,a",
		"/volume/v3/volumes?limit=2&sort=name:asc":                         "a,b",
		"/volume/v3/volumes?limit=2&sort=name:asc&marker=" + ids[1]:        "c,d",
		"/volume/v3/volumes?offset=3&sort=name:asc":                        "d",
	} {
		if got := names(path); got != want {
			t.Errorf("%s: %s, want %s", path, got, want)
		}
	}
	page := s.must(t, http.StatusOK, "alice", "GET", "/volume/v3/volumes?limit=3", nil)
	links, _ := page["volumes_links"].([]any)
	if len(links) != 1 || !strings.Contains(links[0].(obj)["href"].(string), "marker="+ids[1]) {
		t.Errorf("the next page's link: %v", page["volumes_links"])
	}
	if all := s.must(t, http.StatusOK, "admin", "GET", "/volume/v3/volumes?all_tenants=1", nil)["volumes"].([]any); len(all) != 5 {
		t.Errorf("all projects' volumes: %d, want 5", len(all))
	}
	if code, _ := s.do(t, "alice", "GET", "/volume/v3/volumes?marker=0c2f4a4e-0000-4000-8000-000000000000", nil); code != http.StatusNotFound {
		t.Errorf("a marker that is no volume: %d, want 404", code)
	}
	for _, bad := range []string{"?colour=red", "?sort=colour", "?sort_dir=up", "?limit=-1"} {
		if code, _ := s.do(t, "alice", "GET", "/volume/v3/volumes"+bad, nil); code != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", bad, code)
		}
	}
	if got := names("/volume/v3/volumes?all_tenants=1&name=b"); got != "b" {
		t.Errorf("a member lists all projects' volumes named b: %s, want their own", got)
	}
	if code, _ := s.do(t, "alice", "GET", "/volume/v3/volumes?project_id="+apitest.P2, nil); code != http.StatusForbidden {
		t.Errorf("a member lists another project's volumes: %d, want 403", code)
	}
}

func TestTypes(t *testing.T) {
	s := newServer(t)
	created := s.must(t, http.StatusOK, "admin", "POST", "/volume/v3/types", obj{"volume_type": obj{"name": "gold", "description": "fast",
		"extra_specs": obj{"volume_backend_name": "file", "multiattach": "<is> False"}}})["volume_type"].(obj)
	if created["os-volume-type-access:is_public"] != true || created["extra_specs"].(obj)["volume_backend_name"] != "file" {
		t.Errorf("created: %v", created)
	}
	id := created["id"].(string)
	if code, _ := s.do(t, "admin", "POST", "/volume/v3/types", obj{"volume_type": obj{"name": "gold"}}); code != http.StatusConflict {
		t.Errorf("a name taken: %d, want 409", code)
	}
	if code, _ := s.do(t, "alice", "POST", "/volume/v3/types", obj{"volume_type": obj{"name": "mine"}}); code != http.StatusForbidden {
		t.Errorf("a member creates a type: %d, want 403", code)
	}
	// A member sees only the extra specs meant for users.
	if specs := s.must(t, http.StatusOK, "alice", "GET", "/volume/v3/types/"+id, nil)["volume_type"].(obj)["extra_specs"].(obj); len(specs) != 1 || specs["multiattach"] == nil {
		t.Errorf("a member's view of the extra specs: %v", specs)
	}
	if def := s.must(t, http.StatusOK, "alice", "GET", "/volume/v3/types/default", nil)["volume_type"].(obj); def["name"] != trustack.DefaultVolumeType {
		t.Errorf("the default type: %v", def)
	}

	s.must(t, http.StatusOK, "admin", "POST", "/volume/v3/types/"+id+"/extra_specs", obj{"extra_specs": obj{"k1": "v1"}})
	s.must(t, http.StatusOK, "admin", "PUT", "/volume/v3/types/"+id+"/extra_specs/k1", obj{"k1": "v2"})
	if got := s.must(t, http.StatusOK, "admin", "GET", "/volume/v3/types/"+id+"/extra_specs/k1", nil); got["k1"] != "v2" {
		t.Errorf("an extra spec: %v", got)
	}
	s.must(t, http.StatusAccepted, "admin", "DELETE", "/volume/v3/types/"+id+"/extra_specs/k1", nil)
	if code, _ := s.do(t, "admin", "DELETE", "/volume/v3/types/"+id+"/extra_specs/k1", nil); code != http.StatusNotFound {
		t.Errorf("an extra spec deleted twice: %d, want 404", code)
	}

	updated := s.must(t, http.StatusOK, "admin", "PUT", "/volume/v3/types/"+id, obj{"volume_type": obj{"name": "platinum", "is_public": false}})["volume_type"].(obj)
	if updated["name"] != "platinum" || updated["is_public"] != false {
		t.Errorf("updated: %v", updated)
	}
	if code, _ := s.do(t, "alice", "GET", "/volume/v3/types/"+id, nil); code != http.StatusNotFound {
		t.Errorf("a private type shown to a member: %d, want 404", code)
	}
	list := func(token, query string) int {
		return len(s.must(t, http.StatusOK, token, "GET", "/volume/v3/types"+query, nil)["volume_types"].([]any))
	}
	if a, b, c := list("alice", ""), list("admin", ""), list("admin", "?is_public=None"); a != 1 || b != 1 || c != 2 {
		t.Errorf("types listed: member %d, administrator %d, administrator all %d; want 1, 1, 2", a, b, c)
	}

	// A type volumes are of keeps its specs and stays; the default type
	// stays always.
	s.must(t, http.StatusOK, "admin", "PUT", "/volume/v3/types/"+id, obj{"volume_type": obj{"is_public": true}})
	v := s.create(t, "alice", obj{"size": 1, "volume_type": "platinum"})
	if v["volume_type"] != "platinum" {
		t.Errorf("a volume of platinum: type %v", v["volume_type"])
	}
	if code, _ := s.do(t, "admin", "DELETE", "/volume/v3/types/"+id, nil); code != http.StatusBadRequest {
		t.Errorf("a type in use deleted: %d, want 400", code)
	}

	if code, _ := s.do(t, "admin", "POST", "/volume/v3/types/"+id+"/extra_specs", obj{"extra_specs": obj{"volume_backend_name": "lvm"}}); code != http.StatusBadRequest {
		t.Errorf("the specs of a type in use changed: %d, want 400", code)
	}
	def := s.must(t, http.StatusOK, "admin", "GET", "/volume/v3/types/default", nil)["volume_type"].(obj)["id"].(string)
	if code, _ := s.do(t, "admin", "DELETE", "/volume/v3/types/"+def, nil); code != http.StatusBadRequest {
		t.Errorf("the default type deleted: %d, want 400", code)
	}
	// A retype keeps the volume where it is: to a type of another backend
	// it is refused.
	s.must(t, http.StatusOK, "admin", "POST", "/volume/v3/types", obj{"volume_type": obj{"name": "elsewhere", "extra_specs": obj{"volume_backend_name": "lvm"}}})
	if code, _ := s.do(t, "alice", "POST", "/volume/v3/volumes/"+v["id"].(string)+"/action", obj{"os-retype": obj{"new_type": "elsewhere"}}); code != http.StatusBadRequest {
		t.Errorf("a retype to another backend: %d, want 400", code)
	}
	s.must(t, http.StatusAccepted, "alice", "POST", "/volume/v3/volumes/"+v["id"].(string)+"/action", obj{"os-retype": obj{"new_type": trustack.DefaultVolumeType}})
	if got := s.must(t, http.StatusOK, "alice", "GET", "/volume/v3/volumes/"+v["id"].(string), nil)["volume"].(obj)["volume_type"]; got != trustack.DefaultVolumeType {
		t.Errorf("retyped to the default type: %v", got)
	}

	s.must(t, http.StatusAccepted, "alice", "DELETE", "/volume/v3/volumes/"+v["id"].(string), nil)
	s.svc.Wait()
	s.must(t, http.StatusAccepted, "admin", "DELETE", "/volume/v3/types/"+id, nil)
}

func TestQuotasLimitsZonesServices(t *testing.T) {
	s := newServer(t)
	s.create(t, "alice", obj{"size": 2})
	set := s.must(t, http.StatusOK, "alice", "GET", "/volume/v3/os-quota-sets/"+apitest.P1+"?usage=true", nil)["quota_set"].(obj)
	if set["id"] != apitest.P1 || set["volumes"].(obj)["in_use"] != 1.0 || set["gigabytes"].(obj)["in_use"] != 2.0 || set["gigabytes"].(obj)["limit"] != 1000.0 {
		t.Errorf("quota usage: %v", set)
	}
	for _, k := range []string{"volumes", "snapshots", "backups", "groups", "per_volume_gigabytes", "gigabytes", "backup_gigabytes"} {
		if _, ok := set[k]; !ok {
			t.Errorf("quota set without %s", k)
		}
	}
	if code, _ := s.do(t, "alice", "GET", "/volume/v3/os-quota-sets/"+apitest.P2, nil); code != http.StatusForbidden {
		t.Errorf("another project's quotas: %d, want 403", code)
	}
	if code, _ := s.do(t, "alice", "PUT", "/volume/v3/os-quota-sets/"+apitest.P1, obj{"quota_set": obj{"volumes": 100}}); code != http.StatusForbidden {
		t.Errorf("a member raises a quota: %d, want 403", code)
	}
	for _, bad := range []obj{{"volumes": -2}, {"volumes": "many"}, {"cores": 5}} {
		if code, _ := s.do(t, "admin", "PUT", "/volume/v3/os-quota-sets/"+apitest.P1, obj{"quota_set": bad}); code != http.StatusBadRequest {
			t.Errorf("quota %v: %d, want 400", bad, code)
		}
	}
	updated := s.must(t, http.StatusOK, "admin", "PUT", "/volume/v3/os-quota-sets/"+apitest.P1, obj{"quota_set": obj{"volumes": 3}})["quota_set"].(obj)
	if updated["volumes"] != 3.0 || updated["gigabytes"] != 1000.0 {
		t.Errorf("updated quotas: %v", updated)
	}
	abs := s.must(t, http.StatusOK, "alice", "GET", "/volume/v3/limits", nil)["limits"].(obj)["absolute"].(obj)
	if len(abs) != 10 || abs["maxTotalVolumes"] != 3.0 || abs["totalGigabytesUsed"] != 2.0 {
		t.Errorf("limits: %v", abs)
	}
	s.must(t, http.StatusOK, "admin", "DELETE", "/volume/v3/os-quota-sets/"+apitest.P1, nil)
	if d := s.must(t, http.StatusOK, "alice", "GET", "/volume/v3/os-quota-sets/"+apitest.P1+"/defaults", nil)["quota_set"].(obj); d["volumes"] != 10.0 {
		t.Errorf("defaults: %v", d)
	}

	zones := s.must(t, http.StatusOK, "alice", "GET", "/volume/v3/os-availability-zone", nil)["availabilityZoneInfo"].([]any)
	if len(zones) != 1 || zones[0].(obj)["zoneName"] != "nova" || zones[0].(obj)["zoneState"].(obj)["available"] != true {
		t.Errorf("zones: %v", zones)
	}
	services := s.must(t, http.StatusOK, "admin", "GET", "/volume/v3/os-services?binary=cinder-volume&host=store1", nil)["services"].([]any)
	if len(services) != 1 || services[0].(obj)["host"] != "store1@file" || services[0].(obj)["state"] != "up" {
		t.Errorf("services: %v", services)
	}
	if code, _ := s.do(t, "alice", "GET", "/volume/v3/os-services", nil); code != http.StatusForbidden {
		t.Errorf("a member lists services: %d, want 403", code)
	}
}

// attachmentKeys are Tempest's of a volume's attachment.
var attachmentKeys = []string{"attached_at", "attachment_id", "device", "host_name", "id", "server_id", "volume_id"}

func TestAttachmentActions(t *testing.T) {
	s := newServer(t)
	id := s.create(t, "alice", obj{"size": 1})["id"].(string)
	action := func(token string, status int, body obj) {
		t.Helper()
		s.must(t, status, token, "POST", "/volume/v3/volumes/"+id+"/action", body)
	}
	show := func(token string) obj {
		t.Helper()
		return s.must(t, http.StatusOK, token, "GET", "/volume/v3/volumes/"+id, nil)["volume"].(obj)
	}

	action("alice", http.StatusAccepted, obj{"os-reserve": nil})
	if got := show("alice")["status"]; got != "attaching" {
		t.Errorf("reserved: %v", got)
	}
	action("alice", http.StatusBadRequest, obj{"os-reserve": nil}) // one reservation at a time
	action("alice", http.StatusAccepted, obj{"os-unreserve": nil})
	if got := show("alice")["status"]; got != "available" {
		t.Errorf("unreserved: %v", got)
	}

	server := "0f6c2b5e-9a43-4d7e-b1f0-2c8d9e7a6b51"
	for _, bad := range []obj{{"instance_uuid": "vm1", "mountpoint": "/dev/vdb"}, {"instance_uuid": server}, {"instance_uuid": server, "mountpoint": "/dev/vdb", "mode": "rx"}, {"mountpoint": "/dev/vdb"}} {
		action("alice", http.StatusBadRequest, obj{"os-attach": bad})
	}
	action("alice", http.StatusAccepted, obj{"os-reserve": nil})
	action("alice", http.StatusAccepted, obj{"os-attach": obj{"instance_uuid": server, "mountpoint": "/dev/vdb", "host_name": nil}})
	v := show("alice")
	attachments := v["attachments"].([]any)
	if v["status"] != "in-use" || len(attachments) != 1 {
		t.Fatalf("attached: %v", v)
	}
	a := attachments[0].(obj)
	checkKeys(t, "attachment", a, attachmentKeys, nil)
	if a["server_id"] != server || a["device"] != "/dev/vdb" || a["id"] != id || a["volume_id"] != id || a["attachment_id"] == id {
		t.Errorf("the attachment: %v", a)
	}
	if v["metadata"].(obj)["attached_mode"] != "rw" {
		t.Errorf("metadata while attached: %v", v["metadata"])
	}
	if code, _ := s.do(t, "alice", "DELETE", "/volume/v3/volumes/"+id, nil); code != http.StatusBadRequest {
		t.Errorf("an attached volume deleted: %d, want 400", code)
	}
	action("alice", http.StatusAccepted, obj{"os-begin_detaching": nil})
	action("alice", http.StatusAccepted, obj{"os-roll_detaching": nil})
	if got := show("alice")["status"]; got != "in-use" {
		t.Errorf("detaching rolled back: %v", got)
	}
	action("alice", http.StatusNotFound, obj{"os-detach": obj{"attachment_id": "5f0c2b5e-9a43-4d7e-b1f0-2c8d9e7a6b51"}})
	action("alice", http.StatusAccepted, obj{"os-detach": obj{"attachment_id": a["attachment_id"]}})
	if v := show("alice"); v["status"] != "available" || len(v["attachments"].([]any)) != 0 {
		t.Errorf("detached: %v", v)
	}
	action("alice", http.StatusAccepted, obj{"os-detach": nil}) // detached already: nothing to do

	// A read-only volume is attached read-only or not at all.
	action("alice", http.StatusAccepted, obj{"os-update_readonly_flag": obj{"readonly": true}})
	if got := show("alice")["metadata"].(obj)["readonly"]; got != "True" {
		t.Errorf("readonly in the metadata: %v", got)
	}
	action("alice", http.StatusBadRequest, obj{"os-attach": obj{"instance_uuid": server, "mountpoint": "/dev/vdb"}})
	action("alice", http.StatusAccepted, obj{"os-attach": obj{"instance_uuid": server, "mountpoint": "/dev/vdb", "mode": "ro"}})
	action("alice", http.StatusForbidden, obj{"os-force_detach": obj{}})
	action("admin", http.StatusAccepted, obj{"os-force_detach": obj{}})
	if got := show("alice")["status"]; got != "available" {
		t.Errorf("force-detached: %v", got)
	}
}

// Tempest's keys of a snapshot, and those shown or listed in detail.
var (
	snapshotKeys         = []string{"created_at", "description", "id", "metadata", "name", "size", "status", "updated_at", "volume_id"}
	snapshotDetailedKeys = append(slices.Clone(snapshotKeys), "os-extended-snapshot-attributes:progress", "os-extended-snapshot-attributes:project_id")
)

func TestSnapshots(t *testing.T) {
	s := newServer(t)
	vol := s.create(t, "alice", obj{"size": 2})["id"].(string)
	snap := s.must(t, http.StatusAccepted, "alice", "POST", "/volume/v3/snapshots", obj{"snapshot": obj{"volume_id": vol, "name": "s1",
		"force": false, "metadata": obj{"k": "v"}}})["snapshot"].(obj)
	checkKeys(t, "created snapshot", snap, snapshotKeys, nil)
	s.svc.Wait()
	id := snap["id"].(string)
	shown := s.must(t, http.StatusOK, "alice", "GET", "/volume/v3/snapshots/"+id, nil)["snapshot"].(obj)
	checkKeys(t, "shown snapshot", shown, snapshotDetailedKeys, nil)
	if shown["status"] != "available" || shown["size"] != 2.0 || shown["os-extended-snapshot-attributes:progress"] != "100%" {
		t.Errorf("snapshot: %v", shown)
	}
	if code, _ := s.do(t, "bob", "GET", "/volume/v3/snapshots/"+id, nil); code != http.StatusNotFound {
		t.Errorf("another project's snapshot: %d", code)
	}
	for _, bad := range []obj{{"volume_id": vol, "force": "maybe"}, {"name": "no volume"}} {
		if code, _ := s.do(t, "alice", "POST", "/volume/v3/snapshots", obj{"snapshot": bad}); code != http.StatusBadRequest && code != http.StatusNotFound {
			t.Errorf("snapshot %v: %d, want 400 or 404", bad, code)
		}
	}

	updated := s.must(t, http.StatusOK, "alice", "PUT", "/volume/v3/snapshots/"+id, obj{"snapshot": obj{"name": "renamed"}})["snapshot"].(obj)
	checkKeys(t, "updated snapshot", updated, snapshotKeys, nil)
	s.must(t, http.StatusOK, "alice", "POST", "/volume/v3/snapshots/"+id+"/metadata", obj{"metadata": obj{"k2": "v2"}})
	if md := s.must(t, http.StatusOK, "alice", "GET", "/volume/v3/snapshots/"+id+"/metadata", nil)["metadata"].(obj); len(md) != 2 {
		t.Errorf("snapshot metadata: %v", md)
	}
	list := s.must(t, http.StatusOK, "alice", "GET", "/volume/v3/snapshots/detail?volume_id="+vol, nil)["snapshots"].([]any)
	if len(list) != 1 || list[0].(obj)["name"] != "renamed" {
		t.Errorf("snapshots of the volume: %v", list)
	}

	// A volume from the snapshot: of its size unless larger asked.
	clone := s.create(t, "alice", obj{"snapshot_id": id})
	if clone["snapshot_id"] != id || clone["size"] != 2.0 {
		t.Errorf("the volume from the snapshot: %v", clone)
	}
	if code, _ := s.do(t, "alice", "POST", "/volume/v3/volumes", obj{"volume": obj{"snapshot_id": id, "size": 1}}); code != http.StatusBadRequest {
		t.Errorf("a volume smaller than its snapshot: %d, want 400", code)
	}
	if code, _ := s.do(t, "alice", "DELETE", "/volume/v3/volumes/"+vol, nil); code != http.StatusBadRequest {
		t.Errorf("a volume with a snapshot deleted: %d, want 400", code)
	}

	if code, _ := s.do(t, "alice", "POST", "/volume/v3/snapshots/"+id+"/action", obj{"os-reset_status": obj{"status": "error"}}); code != http.StatusForbidden {
		t.Errorf("a member resets a snapshot's status: %d, want 403", code)
	}
	s.must(t, http.StatusAccepted, "admin", "POST", "/volume/v3/snapshots/"+id+"/action", obj{"os-reset_status": obj{"status": "error"}})
	s.must(t, http.StatusAccepted, "alice", "DELETE", "/volume/v3/snapshots/"+id, nil)
	s.svc.Wait()
	if code, _ := s.do(t, "alice", "GET", "/volume/v3/snapshots/"+id, nil); code != http.StatusNotFound {
		t.Errorf("the deleted snapshot: %d", code)
	}
	s.must(t, http.StatusAccepted, "alice", "DELETE", "/volume/v3/volumes/"+vol, nil)
}

// TestImageCopy: trustack's os-trustack-image-copy says how many bytes of
// its image the storage host of a volume made from one has copied, while
// it makes the volume and after, to whoever may see the volume; the
// volume itself shows nothing beyond Tempest's schema meanwhile, and a
// volume made otherwise has no image copy.
func TestImageCopy(t *testing.T) {
	img := &trustack.Image{ID: "11111111-2222-4333-8444-555555555555", Name: "tiny", DiskFormat: "raw", ContainerFormat: "bare", Size: 3 << 20}
	copying, proceed := make(chan string, 1), make(chan struct{})
	s := newServerWith(t, storage{copying: func(host, _ string) { copying <- host; <-proceed }}, volume.Options{Images: apitest.Images{Image: img}})
	id := s.must(t, http.StatusAccepted, "alice", "POST", "/volume/v3/volumes", obj{"volume": obj{"name": "boot", "imageRef": img.ID}})["volume"].(obj)["id"].(string)
	path := "/volume/v3/volumes/" + id + "/os-trustack-image-copy"
	imageCopy := func(token string) obj {
		t.Helper()
		return s.must(t, http.StatusOK, token, "GET", path, nil)["image_copy"].(obj)
	}

	host := <-copying
	if got := imageCopy("alice"); got["status"] != "creating" || got["bytes_copied"] != 0.0 || got["image_id"] != img.ID || got["volume_id"] != id {
		t.Errorf("before the first report: %v, want creating, 0 bytes of image %s", got, img.ID)
	}
	if err := s.svc.ImageCopied(context.Background(), wire.ImageCopied{Host: host, VolumeID: id, Bytes: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	if got := imageCopy("rita"); got["status"] != "creating" || got["bytes_copied"] != float64(1<<20) {
		t.Errorf("to a reader, after a report of 1 MiB: %v", got)
	}
	shown := s.must(t, http.StatusOK, "alice", "GET", "/volume/v3/volumes/"+id, nil)["volume"].(obj)
	checkKeys(t, "shown while copying", shown, createKeys, showOptional)
	close(proceed)
	s.svc.Wait()
	if got := imageCopy("alice"); got["status"] != "available" || got["bytes_copied"] != float64(1<<20) {
		t.Errorf("once made: %v, want available with the last count", got)
	}

	if code, _ := s.do(t, "bob", "GET", path, nil); code != http.StatusNotFound {
		t.Errorf("another project's volume: %d, want 404", code)
	}
	empty := s.create(t, "alice", obj{"size": 1})["id"].(string)
	code, body := s.do(t, "alice", "GET", "/volume/v3/volumes/"+empty+"/os-trustack-image-copy", nil)
	if code != http.StatusNotFound {
		t.Errorf("an empty volume's image copy: %d, want 404", code)
	}
	fault(t, body, "itemNotFound")
}
