package image

import (
	"net/http"
	"testing"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/api/openstack"
	"github.com/trustack/trustack/images"
)

// FuzzDecodePatch feeds arbitrary updates to the JSON-patch decoder: it
// must never panic, must refuse with a 4xx what it does not take, and
// what it takes must apply to an image without touching what users may
// not change.
func FuzzDecodePatch(f *testing.F) {
	for _, seed := range []string{
		`[{"op": "replace", "path": "/name", "value": "x"}]`,
		`[{"op": "add", "path": "/hw_disk_bus", "value": "virtio"}, {"op": "remove", "path": "/os_distro"}]`,
		`[{"op": "add", "path": "/tags", "value": ["a", "b"]}, {"op": "replace", "path": "/min_ram", "value": 512}]`,
		`[{"op": "replace", "path": "/visibility", "value": "community"}, {"op": "replace", "path": "/protected", "value": true}]`,
		`[{"replace": "/name", "value": "x"}]`,
		`[{"add": "/a~1b~0c", "value": "x"}]`,
		`[{"op": "replace", "path": "/kernel_id", "value": null}]`,
		`[{"op": "remove", "path": "/status"}]`,
		`[{"op": "add", "path": "/locations/-", "value": {"url": "x", "metadata": {}}}]`,
		`[{"op": "replace", "path": "//", "value": 1}]`,
		`[]`, `{}`, `[1]`, `null`, `[{"op": 7}]`,
	} {
		f.Add(seed, true)
		f.Add(seed, false)
	}
	f.Fuzz(func(t *testing.T, body string, v21 bool) {
		ct := "application/openstack-images-v2.0-json-patch"
		if v21 {
			ct = "application/openstack-images-v2.1-json-patch"
		}
		ops, err := decodePatch(ct, []byte(body))
		if err != nil {
			if status, _ := openstack.StatusOf(err); status < 400 || status >= 500 {
				t.Fatalf("decodePatch(%q) refused with status %d: %v", body, status, err)
			}
			return
		}
		img := &trustack.Image{ID: "id", Status: trustack.ImageActive, Size: 10, Checksum: "c", Properties: map[string]string{"os_distro": "debian"}}
		before := *img
		if err := applyPatch(img, ops); err != nil {
			if status, _ := openstack.StatusOf(err); status < 400 || status >= 500 {
				t.Fatalf("applyPatch(%q) refused with status %d: %v", body, status, err)
			}
			return
		}
		if img.ID != before.ID || img.Status != before.Status || img.Size != before.Size || img.Checksum != before.Checksum {
			t.Fatalf("patch %q changed a read-only attribute: %+v", body, img)
		}
		for k := range img.Properties {
			if images.IsReserved(k) || attributeNamed(k) != nil && attributeNamed(k).base {
				t.Fatalf("patch %q made property %q", body, k)
			}
		}
	})
}

// FuzzDecodeCreate feeds arbitrary bodies to the decoder of new images:
// it must never panic, and never let through a read-only or reserved
// attribute as a property.
func FuzzDecodeCreate(f *testing.F) {
	for _, seed := range []string{
		`{"name": "cirros", "disk_format": "qcow2", "container_format": "bare", "visibility": "public"}`,
		`{"name": null, "tags": ["a"], "min_ram": 1, "min_disk": 2, "protected": false, "os_hidden": true}`,
		`{"id": "00000000-1111-2222-3333-444455556666", "ramdisk_id": "00000000-1111-2222-3333-444455556666", "owner": "p"}`,
		`{"owner_specified.openstack.md5": "", "owner_specified.openstack.object": "images/x"}`,
		`{"status": "active"}`, `{"os_glance_x": "y"}`, `{"min_ram": 1e3}`, `{"tags": [1]}`,
		`[]`, `null`, `"x"`, `{`, `{"": ""}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		img, err := decodeCreate([]byte(body))
		if err != nil {
			if status, _ := openstack.StatusOf(err); status < 400 || status >= 500 {
				t.Fatalf("decodeCreate(%q) refused with status %d: %v", body, status, err)
			}
			return
		}
		if img.Status != "" || img.Size != 0 || img.Checksum != "" || img.HashValue != "" {
			t.Fatalf("create %q set a read-only attribute: %+v", body, img)
		}
		for k := range img.Properties {
			if images.IsReserved(k) || attributeNamed(k) != nil && attributeNamed(k).base {
				t.Fatalf("create %q made property %q", body, k)
			}
		}
	})
}

func TestDecodePointer(t *testing.T) {
	for _, tc := range []struct {
		pointer string
		want    []string
		status  int
	}{
		{"/name", []string{"name"}, 0},
		{"/a~1b~0c", []string{"a/b~c"}, 0},
		{"/locations/-", []string{"locations", "-"}, 0},
		{"name", nil, http.StatusBadRequest},
		{"/", nil, http.StatusBadRequest},
		{"/a/", nil, http.StatusBadRequest},
		{"/a//b", nil, http.StatusBadRequest},
		{"/a~", nil, http.StatusBadRequest},
		{"/a~2", nil, http.StatusBadRequest},
	} {
		got, err := decodePointer(tc.pointer)
		status, _ := openstack.StatusOf(err)
		if err == nil {
			status = 0
		}
		if status != tc.status || err == nil && len(got) != len(tc.want) {
			t.Errorf("decodePointer(%q) = %q, %v; want %q, status %d", tc.pointer, got, err, tc.want, tc.status)
			continue
		}
		for i := range tc.want {
			if got[i] != tc.want[i] {
				t.Errorf("decodePointer(%q) = %q, want %q", tc.pointer, got, tc.want)
			}
		}
	}
}
