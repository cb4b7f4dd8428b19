package volume_test

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/internal/apitest"
	"github.com/trustack/trustack/volume"
)

// versionedCaller is a caller of the volume API that asks for a microversion,
// sends header besides, and keeps the headers of the last response.
type versionedCaller struct {
	s       *server
	version string
	header  http.Header
	last    http.Header
}

// at returns a caller of s that asks for microversion version ("3.12").
func (s *server) at(version string) *versionedCaller {
	return &versionedCaller{s: s, version: version, header: http.Header{}}
}

// RoundTrip sends a request with the version and the headers.
func (v *versionedCaller) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("OpenStack-API-Version", "volume "+v.version)
	for k, vals := range v.header {
		r.Header[k] = vals
	}
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil {
		v.last = resp.Header
	}
	return resp, err
}

func (v *versionedCaller) do(t *testing.T, token, method, path string, body any) (int, obj) {
	t.Helper()
	return apitest.Do(t, &http.Client{Transport: v}, token, method, v.s.URL+path, body)
}

func (v *versionedCaller) must(t *testing.T, status int, token, method, path string, body any) obj {
	t.Helper()
	return apitest.Must(t, &http.Client{Transport: v}, status, token, method, v.s.URL+path, body)
}

// names lists the names of a list's items, sorted.
func names(body obj, collection string) string {
	var out []string
	for _, item := range body[collection].([]any) {
		out = append(out, item.(obj)["name"].(string))
	}
	slices.Sort(out)
	return strings.Join(out, ",")
}

// imageMaker is an image service that makes the images of volumes.
type imageMaker struct{ apitest.Images }

func (imageMaker) CreateSnapshot(_ context.Context, _ string, img *trustack.Image) error {
	img.ID = "9e1c3a52-7f0d-4c4e-9a55-8d1f2b3c4d5e"
	return nil
}
func (imageMaker) SnapshotFailed(context.Context, string) error { return nil }

func TestUploadImageVisibilityFrom31(t *testing.T) {
	s := newServerWith(t, storage{}, volume.Options{Images: imageMaker{apitest.Images{Image: &trustack.Image{ID: "0f0e0d0c-0000-4000-8000-000000000000"}}}})
	upload := func(version, token string, status int, args obj) obj {
		t.Helper()
		id := s.create(t, "alice", obj{"size": 1})["id"].(string)
		body := s.at(version).must(t, status, token, "POST", "/volume/v3/volumes/"+id+"/action", obj{"os-volume_upload_image": args})
		s.svc.Wait()
		return body
	}
	// Below 3.1 they are ignored, unchecked, even public by a member.
	got := upload("3.0", "alice", http.StatusAccepted, obj{"image_name": "img", "visibility": "public", "protected": true})["os-volume_upload_image"].(obj)
	if got["visibility"] != "private" || got["protected"] != false {
		t.Errorf("3.0: visibility %v, protected %v, want private and false", got["visibility"], got["protected"])
	}
	upload("3.0", "alice", http.StatusAccepted, obj{"image_name": "img", "visibility": "nonsense", "protected": "maybe"})
	got = upload("3.1", "alice", http.StatusAccepted, obj{"image_name": "img", "visibility": "shared", "protected": true})["os-volume_upload_image"].(obj)
	if got["visibility"] != "shared" || got["protected"] != true {
		t.Errorf("3.1: visibility %v, protected %v, want shared and true", got["visibility"], got["protected"])
	}
	upload("3.1", "alice", http.StatusForbidden, obj{"image_name": "img", "visibility": "public"})
	upload("3.1", "alice", http.StatusBadRequest, obj{"image_name": "img", "visibility": "nonsense"})
}

func TestVolumeListFiltersByVersion(t *testing.T) {
	s := newServer(t)
	boot := s.create(t, "alice", obj{"size": 1, "name": "alpha", "metadata": obj{"tier": "gold"}})["id"].(string)
	s.create(t, "alice", obj{"size": 2, "name": "alphabet", "metadata": obj{"tier": "silver"}})
	s.create(t, "alice", obj{"size": 3, "name": "beta", "availability_zone": "nova"})
	s.must(t, http.StatusOK, "alice", "POST", "/volume/v3/volumes/"+boot+"/action", obj{"os-set_bootable": obj{"bootable": true}})
	s.must(t, http.StatusOK, "alice", "POST", "/volume/v3/volumes/"+boot+"/action", obj{"os-set_image_metadata": obj{"metadata": obj{"os_distro": "ubuntu"}}})

	glance := url.QueryEscape(`{"os_distro": "ubuntu"}`)
	for _, c := range []struct{ version, query, want string }{
		// 3.2: below, false/False/FALSE are false and anything else true.
		{"3.0", "bootable=false", "alphabet,beta"},
		{"3.0", "bootable=FALSE", "alphabet,beta"},
		{"3.0", "bootable=0", "alpha"},
		{"3.0", "bootable=maybe", "alpha"},
		{"3.2", "bootable=0", "alphabet,beta"},
		{"3.2", "bootable=F", "alphabet,beta"},
		{"3.2", "bootable=T", "alpha"},
		{"3.2", "bootable=true", "alpha"},
		// 3.4: glance_metadata, ignored below.
		{"3.3", "glance_metadata=" + glance, "alpha,alphabet,beta"},
		{"3.4", "glance_metadata=" + glance, "alpha"},
		// 3.10: group_id, ignored below; no volume is in a group.
		{"3.9", "group_id=4d3c2b1a-0000-4000-8000-000000000000", "alpha,alphabet,beta"},
		{"3.10", "group_id=4d3c2b1a-0000-4000-8000-000000000000", ""},
		// 3.34: name~ and the like, inexact.
		{"3.34", "name~=alph", "alpha,alphabet"},
		{"3.34", "name~=bet", "alphabet,beta"},
		{"3.34", "status~=avail&availability_zone~=no", "alpha,alphabet,beta"},
		{"3.34", "name=alph", ""},
	} {
		for _, path := range []string{"/volume/v3/volumes?", "/volume/v3/volumes/detail?"} {
			if got := names(s.at(c.version).must(t, http.StatusOK, "alice", "GET", path+c.query, nil), "volumes"); got != c.want {
				t.Errorf("%s at %s: %q, want %q", path+c.query, c.version, got, c.want)
			}
		}
	}
	page := s.at("3.34").must(t, http.StatusOK, "alice", "GET", "/volume/v3/volumes?name~=alph&limit=1", nil)
	if links, _ := page["volumes_links"].([]any); len(links) != 1 || !strings.Contains(links[0].(obj)["href"].(string), "name~=alph") {
		t.Errorf("the next page of a list by name~: links %v, want one that keeps name~=alph", page["volumes_links"])
	}
	for _, c := range []struct{ version, query string }{
		{"3.2", "bootable=maybe"},
		{"3.33", "name~=alph"},
		{"3.34", "metadata~=gold"},
		{"3.34", "colour=red"},
	} {
		code, body := s.at(c.version).do(t, "alice", "GET", "/volume/v3/volumes?"+c.query, nil)
		if code != http.StatusBadRequest {
			t.Errorf("%s at %s: %d, want 400", c.query, c.version, code)
			continue
		}
		fault(t, body, "badRequest")
		if c.query == "bootable=maybe" && !strings.Contains(body["badRequest"].(obj)["message"].(string), "bootable = maybe") {
			t.Errorf("bootable=maybe at 3.2: message %v, want Cinder's naming bootable = maybe", body["badRequest"])
		}
	}
}

func TestVolumeSummary(t *testing.T) {
	s := newServer(t)
	s.create(t, "alice", obj{"size": 1, "metadata": obj{"tier": "gold", "team": "db"}})
	s.create(t, "alice", obj{"size": 2, "metadata": obj{"tier": "silver"}})
	s.create(t, "alice", obj{"size": 4, "metadata": obj{"tier": "gold"}})
	s.create(t, "bob", obj{"size": 8, "metadata": obj{"owner": "bob"}})

	if code, _ := s.at("3.11").do(t, "alice", "GET", "/volume/v3/volumes/summary", nil); code != http.StatusNotFound {
		t.Errorf("summary at 3.11: %d, want 404", code)
	}
	summary := func(version, token, query string) obj {
		t.Helper()
		return s.at(version).must(t, http.StatusOK, token, "GET", "/volume/v3/volumes/summary"+query, nil)["volume-summary"].(obj)
	}
	got := summary("3.12", "alice", "")
	if got["total_count"] != 3.0 || got["total_size"] != 7.0 || len(got) != 2 {
		t.Errorf("alice's summary at 3.12: %v, want 3 volumes of 7 GiB and no metadata", got)
	}
	got = summary("3.36", "alice", "")
	md, _ := got["metadata"].(obj)
	if len(md) != 2 || strings.Join(toStrings(md["tier"]), ",") != "gold,silver" || strings.Join(toStrings(md["team"]), ",") != "db" {
		t.Errorf("alice's summary at 3.36: metadata %v, want tier [gold silver] and team [db]", got["metadata"])
	}
	if got := summary("3.12", "admin", "?all_tenants=1"); got["total_count"] != 4.0 || got["total_size"] != 15.0 {
		t.Errorf("every project's summary: %v, want 4 volumes of 15 GiB", got)
	}
	if got := summary("3.12", "admin", ""); got["total_count"] != 0.0 || got["total_size"] != 0.0 {
		t.Errorf("the administrator's own project's summary: %v, want none", got)
	}
	if got := summary("3.12", "alice", "?all_tenants=1"); got["total_count"] != 3.0 {
		t.Errorf("a member asks for every project's summary: %v, want their own", got)
	}
	if got := summary("3.34", "alice", "?name~=nothing"); got["total_count"] != 0.0 {
		t.Errorf("a summary of no volume: %v", got)
	}
}

func toStrings(v any) []string {
	var out []string
	list, _ := v.([]any)
	for _, x := range list {
		out = append(out, x.(string))
	}
	return out
}

func TestVolumeMetadataETags(t *testing.T) {
	s := newServer(t)
	id := s.create(t, "alice", obj{"size": 1, "metadata": obj{"purpose": "db", "é": "ü"}})["id"].(string)
	path := "/volume/v3/volumes/" + id + "/metadata"

	old := s.at("3.14")
	old.must(t, http.StatusOK, "alice", "GET", path, nil)
	if tag := old.last.Get("ETag"); tag != "" {
		t.Errorf("ETag at 3.14: %q, want none", tag)
	}
	old.header.Set("If-Match", "stale")
	old.must(t, http.StatusOK, "alice", "PUT", path, obj{"metadata": obj{"purpose": "db", "é": "ü"}})

	v := s.at("3.15")
	v.must(t, http.StatusOK, "alice", "GET", path, nil)
	// Cinder's: the MD5 of Python's json.dumps of the body.
	sum := md5.Sum([]byte(`{"metadata": {"purpose": "db", "\u00e9": "\u00fc"}}`))
	tag := v.last.Get("ETag")
	if want := hex.EncodeToString(sum[:]); tag != want {
		t.Errorf("ETag at 3.15: %q, want %q", tag, want)
	}
	v.header.Set("If-Match", `"0123456789abcdef0123456789abcdef"`)
	code, body := v.do(t, "alice", "PUT", path, obj{"metadata": obj{"purpose": "web"}})
	if code != http.StatusPreconditionFailed || body != nil {
		t.Errorf("PUT with a stale If-Match: %d %v, want 412 with no body", code, body)
	}
	if code, _ := v.do(t, "alice", "PUT", path+"/purpose", obj{"meta": obj{"purpose": "web"}}); code != http.StatusPreconditionFailed {
		t.Errorf("PUT of a key with a stale If-Match: %d, want 412", code)
	}
	if md := s.must(t, http.StatusOK, "alice", "GET", path, nil)["metadata"].(obj); md["purpose"] != "db" {
		t.Errorf("metadata after refused writes: %v, want it unchanged", md)
	}
	v.header.Set("If-Match", `"`+tag+`"`)
	if md := v.must(t, http.StatusOK, "alice", "PUT", path, obj{"metadata": obj{"purpose": "web"}})["metadata"].(obj); md["purpose"] != "web" || len(md) != 1 {
		t.Errorf("PUT with the current ETag: %v", md)
	}
	// The tag is stale now.
	if code, _ := v.do(t, "alice", "PUT", path, obj{"metadata": obj{"purpose": "batch"}}); code != http.StatusPreconditionFailed {
		t.Errorf("PUT with the tag of replaced metadata: %d, want 412", code)
	}
	v.header.Set("If-Match", "*")
	v.must(t, http.StatusOK, "alice", "PUT", path, obj{"metadata": obj{"purpose": "batch"}})
	v.header.Del("If-Match")
	v.must(t, http.StatusOK, "alice", "PUT", path+"/purpose", obj{"meta": obj{"purpose": "any"}})
}

func TestVolumeViewsByVersion(t *testing.T) {
	s := newServer(t)
	id := s.create(t, "alice", obj{"size": 1})["id"].(string)
	show := func(version, token string) obj {
		t.Helper()
		return s.at(version).must(t, http.StatusOK, token, "GET", "/volume/v3/volumes/"+id, nil)["volume"].(obj)
	}
	for _, c := range []struct {
		version, token      string
		groupID, providerID bool
	}{
		{"3.12", "admin", false, false},
		{"3.13", "alice", true, false},
		{"3.20", "admin", true, false},
		{"3.21", "admin", true, true},
		{"3.21", "alice", true, false},
	} {
		v := show(c.version, c.token)
		checkKeys(t, c.version, v, createKeys, showOptional)
		if g, ok := v["group_id"]; ok != c.groupID || g != nil {
			t.Errorf("%s as %s: group_id %v (%v), want it %v and null", c.version, c.token, g, ok, c.groupID)
		}
		if p, ok := v["provider_id"]; ok != c.providerID || p != nil {
			t.Errorf("%s as %s: provider_id %v (%v), want it %v and null", c.version, c.token, p, ok, c.providerID)
		}
	}
	detail := s.at("3.21").must(t, http.StatusOK, "admin", "GET", "/volume/v3/volumes/detail?all_tenants=1", nil)["volumes"].([]any)
	if _, ok := detail[0].(obj)["provider_id"]; !ok {
		t.Errorf("volumes listed in detail at 3.21 to an administrator: no provider_id")
	}
	// 3.13: a volume made in a group; trustack has none.
	if code, _ := s.at("3.13").do(t, "alice", "POST", "/volume/v3/volumes", obj{"volume": obj{"size": 1, "group_id": "4d3c2b1a-0000-4000-8000-000000000000"}}); code != http.StatusNotFound {
		t.Errorf("a volume in a group at 3.13: %d, want 404", code)
	}
	s.at("3.12").must(t, http.StatusAccepted, "alice", "POST", "/volume/v3/volumes", obj{"volume": obj{"size": 1, "group_id": "4d3c2b1a-0000-4000-8000-000000000000"}})
	s.svc.Wait()
}

func TestForceDeleteFrom323(t *testing.T) {
	s := newServer(t)
	id := s.create(t, "alice", obj{"size": 1})["id"].(string)
	// A volume a failure left creating: only a forced delete deletes it.
	s.must(t, http.StatusAccepted, "admin", "POST", "/volume/v3/volumes/"+id+"/action", obj{"os-reset_status": obj{"status": "creating"}})
	if code, _ := s.at("3.22").do(t, "admin", "DELETE", "/volume/v3/volumes/"+id+"?force=true", nil); code != http.StatusBadRequest {
		t.Errorf("force=true at 3.22: %d, want 400 (ignored, so an ordinary delete of a volume creating)", code)
	}
	if code, _ := s.at("3.23").do(t, "alice", "DELETE", "/volume/v3/volumes/"+id+"?force=true", nil); code != http.StatusForbidden {
		t.Errorf("a member forces a delete at 3.23: %d, want 403", code)
	}
	s.at("3.23").must(t, http.StatusAccepted, "admin", "DELETE", "/volume/v3/volumes/"+id+"?force=true", nil)
	s.svc.Wait()
	if code, _ := s.do(t, "alice", "GET", "/volume/v3/volumes/"+id, nil); code != http.StatusNotFound {
		t.Errorf("a force-deleted volume: %d, want 404", code)
	}
}

func TestSnapshotsByVersion(t *testing.T) {
	s := newServer(t)
	vol := s.create(t, "alice", obj{"size": 1})["id"].(string)
	var ids []string
	for _, snap := range []obj{{"name": "b", "metadata": obj{"k": "v"}}, {"name": "a"}, {"name": "c", "metadata": obj{"k": "w"}}} {
		snap["volume_id"] = vol
		ids = append(ids, s.must(t, http.StatusAccepted, "alice", "POST", "/volume/v3/snapshots", obj{"snapshot": snap})["snapshot"].(obj)["id"].(string))
		s.svc.Wait()
	}
	list := func(version, query string) string {
		t.Helper()
		body := s.at(version).must(t, http.StatusOK, "alice", "GET", "/volume/v3/snapshots?"+query, nil)
		var out []string
		for _, item := range body["snapshots"].([]any) {
			out = append(out, item.(obj)["name"].(string))
		}
		return strings.Join(out, ",")
	}
	meta := "metadata=" + url.QueryEscape(`{"k": "v"}`)
	for _, c := range []struct{ version, query, want string }{
		{"3.21", meta + "&sort=created_at:asc", "b,a,c"}, // 3.22: ignored below
		{"3.22", meta, "b"},
		{"3.29", "sort_key=display_name&sort_dir=asc", "a,b,c"},
		{"3.30", "sort=name:asc", "a,b,c"},
		{"3.30", "sort=name:desc", "c,b,a"},
		{"3.34", "name~=b&sort=name", "b"},
		{"3.34", "status~=vail&sort=name", "c,b,a"},
	} {
		if got := list(c.version, c.query); got != c.want {
			t.Errorf("snapshots ?%s at %s: %s, want %s", c.query, c.version, got, c.want)
		}
	}
	for _, c := range []struct{ version, query string }{{"3.29", "sort=name"}, {"3.33", "name~=b"}, {"3.34", "volume_id~=x"}} {
		if code, _ := s.at(c.version).do(t, "alice", "GET", "/volume/v3/snapshots?"+c.query, nil); code != http.StatusBadRequest {
			t.Errorf("snapshots ?%s at %s: %d, want 400", c.query, c.version, code)
		}
	}

	// 3.14 group_snapshot_id and 3.41 user_id in detail views, not in the
	// list without details.
	for _, c := range []struct {
		version       string
		group, userID bool
	}{{"3.13", false, false}, {"3.14", true, false}, {"3.40", true, false}, {"3.41", true, true}} {
		v := s.at(c.version)
		views := map[string]obj{
			"show":    v.must(t, http.StatusOK, "alice", "GET", "/volume/v3/snapshots/"+ids[0], nil)["snapshot"].(obj),
			"detail":  v.must(t, http.StatusOK, "alice", "GET", "/volume/v3/snapshots/detail", nil)["snapshots"].([]any)[0].(obj),
			"updated": v.must(t, http.StatusOK, "alice", "PUT", "/volume/v3/snapshots/"+ids[0], obj{"snapshot": obj{"name": "b"}})["snapshot"].(obj),
		}
		for what, o := range views {
			if g, ok := o["group_snapshot_id"]; ok != c.group || g != nil {
				t.Errorf("%s at %s: group_snapshot_id %v (%v), want it %v", what, c.version, g, ok, c.group)
			}
			if u, ok := o["user_id"]; ok != c.userID || ok && u != "u-alice" {
				t.Errorf("%s at %s: user_id %v (%v), want it %v", what, c.version, u, ok, c.userID)
			}
		}
		summary := v.must(t, http.StatusOK, "alice", "GET", "/volume/v3/snapshots", nil)["snapshots"].([]any)[0].(obj)
		if _, ok := summary["user_id"]; ok {
			t.Errorf("snapshots listed without details at %s: user_id", c.version)
		}
	}
}

func TestResourceFilters(t *testing.T) {
	s := newServer(t)
	if code, _ := s.at("3.32").do(t, "alice", "GET", "/volume/v3/resource_filters", nil); code != http.StatusNotFound {
		t.Errorf("resource filters at 3.32: %d, want 404", code)
	}
	filters := func(version, path string) map[string][]string {
		t.Helper()
		out := map[string][]string{}
		for _, item := range s.at(version).must(t, http.StatusOK, "alice", "GET", path, nil)["resource_filters"].([]any) {
			out[item.(obj)["resource"].(string)] = toStrings(item.(obj)["filters"])
		}
		return out
	}
	got := filters("3.33", "/volume/v3/resource_filters")
	for _, want := range []string{"name", "status", "metadata", "bootable", "availability_zone", "glance_metadata", "group_id"} {
		if !slices.Contains(got["volume"], want) {
			t.Errorf("volume filters at 3.33: %v, want %s among them", got["volume"], want)
		}
	}
	if !slices.Contains(got["snapshot"], "metadata") || !slices.Contains(got["snapshot"], "volume_id") {
		t.Errorf("snapshot filters at 3.33: %v", got["snapshot"])
	}
	if slices.Contains(got["volume"], "all_tenants") || slices.Contains(got["volume"], "name~") {
		t.Errorf("volume filters at 3.33: %v, want neither all_tenants nor name~", got["volume"])
	}
	got = filters("3.34", "/volume/v3/"+apitest.P1+"/resource_filters?resource=volume")
	if len(got) != 1 || !slices.Contains(got["volume"], "name~") || slices.Contains(got["volume"], "name") {
		t.Errorf("volume filters at 3.34: %v, want name~ (name, exact or not)", got)
	}
	if got := filters("3.34", "/volume/v3/resource_filters?resource=backup"); len(got) != 0 {
		t.Errorf("filters of backups, which trustack does not list: %v, want none", got)
	}
	// Every filter a list advertises is one it takes.
	for resource, keys := range filters("latest", "/volume/v3/resource_filters") {
		path := map[string]string{"volume": "/volume/v3/volumes", "snapshot": "/volume/v3/snapshots"}[resource]
		if path == "" {
			continue
		}
		for _, key := range keys {
			value := "x"
			if strings.Contains(key, "metadata") {
				value = url.QueryEscape(`{"k": "v"}`)
			} else if key == "bootable" {
				value = "true"
			} else if key == "project_id" {
				value = apitest.P1
			} else if key == "volume_type" {
				value = trustack.DefaultVolumeType
			}
			if code, body := s.at("latest").do(t, "alice", "GET", path+"?"+key+"="+value, nil); code != http.StatusOK {
				t.Errorf("%s?%s=%s, an advertised filter: %d %v", path, key, value, code, body)
			}
		}
	}
}

func TestLimitsOfAProjectFrom339(t *testing.T) {
	s := newServer(t)
	s.must(t, http.StatusOK, "admin", "PUT", "/volume/v3/os-quota-sets/"+apitest.P2, obj{"quota_set": obj{"volumes": 7}})
	maxVolumes := func(version, token, query string) any {
		t.Helper()
		return s.at(version).must(t, http.StatusOK, token, "GET", "/volume/v3/limits"+query, nil)["limits"].(obj)["absolute"].(obj)["maxTotalVolumes"]
	}
	if got := maxVolumes("3.38", "admin", "?project_id="+apitest.P2); got != 10.0 {
		t.Errorf("another project's limits at 3.38: %v, want the caller's own (10)", got)
	}
	if got := maxVolumes("3.39", "admin", "?project_id="+apitest.P2); got != 7.0 {
		t.Errorf("another project's limits at 3.39: %v, want 7", got)
	}
	if got := maxVolumes("3.39", "admin", "?tenant_id="+apitest.P2); got != 7.0 {
		t.Errorf("another project's limits by tenant_id at 3.39: %v, want 7", got)
	}
	if got := maxVolumes("3.39", "alice", "?project_id="+apitest.P2); got != 10.0 {
		t.Errorf("a member asks for another project's limits: %v, want their own (10)", got)
	}
}

func TestServicesByVersion(t *testing.T) {
	s := newServer(t)
	service := func(version string) obj {
		t.Helper()
		return s.at(version).must(t, http.StatusOK, "admin", "GET", "/volume/v3/os-services", nil)["services"].([]any)[0].(obj)
	}
	if _, ok := service("3.6")["cluster"]; ok {
		t.Errorf("a service at 3.6: cluster, want none")
	}
	if c, ok := service("3.7")["cluster"]; !ok || c != nil {
		t.Errorf("a service at 3.7: cluster %v (%v), want null", c, ok)
	}
	for _, action := range []string{"set-log", "get-log"} {
		path := "/volume/v3/os-services/" + action
		if code, _ := s.at("3.31").do(t, "admin", "PUT", path, obj{"level": "DEBUG"}); code != http.StatusNotFound {
			t.Errorf("%s at 3.31: %d, want 404", action, code)
		}
		if code, _ := s.at("3.32").do(t, "alice", "PUT", path, obj{"level": "DEBUG"}); code != http.StatusForbidden {
			t.Errorf("%s by a member: %d, want 403", action, code)
		}
	}
	// The controller's level, read and changed while it runs.
	level := func(body obj) string {
		t.Helper()
		got := s.at("3.32").must(t, http.StatusOK, "admin", "PUT", "/volume/v3/os-services/get-log", body)["log_levels"].([]any)
		if len(got) == 0 {
			return ""
		}
		entry := got[0].(obj)
		if entry["host"] != "controller-1" || entry["binary"] != "cinder-api" {
			t.Errorf("get-log: %v, want cinder-api on controller-1 first", got)
		}
		return entry["levels"].(obj)["trustack"].(string)
	}
	if got := level(obj{}); got != "INFO" {
		t.Errorf("the level at first: %q, want INFO", got)
	}
	s.at("3.32").must(t, http.StatusAccepted, "admin", "PUT", "/volume/v3/os-services/set-log", obj{"binary": "*", "level": "debug"})
	if got := level(obj{"binary": "cinder-api"}); got != "DEBUG" {
		t.Errorf("the level after set-log debug: %q, want DEBUG", got)
	}
	for _, bad := range []obj{{"level": "LOUD"}, {"binary": "nova-compute", "level": "INFO"}} {
		code, body := s.at("3.32").do(t, "admin", "PUT", "/volume/v3/os-services/set-log", bad)
		if code != http.StatusBadRequest {
			t.Errorf("set-log %v: %d, want 400", bad, code)
		}
		fault(t, body, "badRequest")
	}
	if got := level(obj{}); got != "DEBUG" {
		t.Errorf("the level after refused set-logs: %q, want DEBUG unchanged", got)
	}
	if got := level(obj{"server": "elsewhere"}); got != "" {
		t.Errorf("get-log of another server: %q, want nothing", got)
	}
}
