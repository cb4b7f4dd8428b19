package storetest

import (
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/trustack/trustack"
)

// t0 is when the images of these tests are created, a second apart.
var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// newImage returns an image registered n seconds after t0, as the image
// service registers them: queued and without data, unless edit changes
// it.
func newImage(t testing.TB, s Store, id string, n int, edit func(*trustack.Image)) *trustack.Image {
	t.Helper()
	at := t0.Add(time.Duration(n) * time.Second)
	img := &trustack.Image{ID: id, Name: "name-" + id, Status: trustack.ImageQueued, Visibility: trustack.VisibilityPrivate,
		Owner: "p1", DiskFormat: "qcow2", ContainerFormat: "bare", CreatedAt: at, UpdatedAt: at}
	if edit != nil {
		edit(img)
	}
	must(t, s.CreateImage(ctx, img))
	return img
}

// withData gives an image the attributes of uploaded data of size bytes.
func withData(size int64) func(*trustack.Image) {
	return func(img *trustack.Image) {
		img.Status = trustack.ImageActive
		img.Size, img.VirtualSize = size, size
		img.Checksum = fmt.Sprintf("%032x", size)
		img.HashAlgo, img.HashValue = "sha512", fmt.Sprintf("%0128x", size)
	}
}

func imageIDs(list []*trustack.Image) []string {
	var ids []string
	for _, img := range list {
		ids = append(ids, img.ID)
	}
	return ids
}

func testImages(t *testing.T, s Store) {
	img := newImage(t, s, "i1", 0, func(img *trustack.Image) {
		withData(1 << 33)(img) // beyond 32 bits
		img.Visibility, img.Protected, img.Hidden = trustack.VisibilityPublic, true, true
		img.MinDisk, img.MinRAM, img.VirtualSize = 10, 512, 10<<30
		img.Properties = map[string]string{"os_distro": "debian", "owner_specified.openstack.md5": "", "hw_disk_bus": "virtio"}
		img.Tags = []string{"base", "debian"}
		img.UpdatedAt = t0.Add(time.Hour + time.Microsecond)
	})
	got, err := s.Image(ctx, "i1")
	must(t, err)
	equal(t, got, img)
	bare := newImage(t, s, "i2", 1, nil)
	got, err = s.Image(ctx, "i2")
	must(t, err)
	equal(t, got, bare)

	code(t, s.CreateImage(ctx, &trustack.Image{ID: "i1", Name: "again", CreatedAt: t0, UpdatedAt: t0}), trustack.ECONFLICT)
	_, err = s.Image(ctx, "nope")
	code(t, err, trustack.ENOTFOUND)

	// An update replaces properties and tags as a whole.
	updated, err := s.UpdateImage(ctx, "i1", func(img *trustack.Image) error {
		img.Name = "renamed"
		delete(img.Properties, "hw_disk_bus")
		img.Properties["architecture"] = "x86_64"
		img.Tags = []string{"debian", "trixie"}
		return nil
	})
	must(t, err)
	got, err = s.Image(ctx, "i1")
	must(t, err)
	equal(t, got, updated)
	equal(t, got.Properties, map[string]string{"os_distro": "debian", "owner_specified.openstack.md5": "", "architecture": "x86_64"})
	equal(t, got.Tags, []string{"debian", "trixie"})
	_, err = s.UpdateImage(ctx, "i1", func(img *trustack.Image) error { img.Properties, img.Tags = nil, nil; return nil })
	must(t, err)
	got, _ = s.Image(ctx, "i1")
	equal(t, got.Properties == nil && got.Tags == nil, true)

	// A failing update changes nothing; the ID cannot change.
	_, err = s.UpdateImage(ctx, "i2", func(img *trustack.Image) error {
		img.Name, img.Tags = "changed", []string{"x"}
		return trustack.Errorf(trustack.EFORBIDDEN, "no")
	})
	code(t, err, trustack.EFORBIDDEN)
	_, err = s.UpdateImage(ctx, "i2", func(img *trustack.Image) error { img.ID = "i9"; return nil })
	code(t, err, trustack.EINVALID)
	got, _ = s.Image(ctx, "i2")
	equal(t, got, bare)
	_, err = s.UpdateImage(ctx, "nope", func(*trustack.Image) error { return nil })
	code(t, err, trustack.ENOTFOUND)

	// Deleting an image takes its properties, tags and members along: an
	// image made again with its ID starts afresh.
	_, err = s.UpdateImage(ctx, "i2", func(img *trustack.Image) error { img.Tags = []string{"a", "b"}; return nil })
	must(t, err)
	must(t, s.CreateImageMember(ctx, &trustack.ImageMember{ImageID: "i2", MemberID: "p2", Status: trustack.MemberPending, CreatedAt: t0, UpdatedAt: t0}))
	must(t, s.DeleteImage(ctx, "i2"))
	code(t, s.DeleteImage(ctx, "i2"), trustack.ENOTFOUND)
	_, err = s.Image(ctx, "i2")
	code(t, err, trustack.ENOTFOUND)
	again := newImage(t, s, "i2", 2, nil)
	got, _ = s.Image(ctx, "i2")
	equal(t, got, again)
	members, err := s.ImageMembers(ctx, "i2")
	must(t, err)
	equal(t, len(members), 0)

	// Concurrent updates of one image are not lost.
	const n = 30
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.UpdateImage(ctx, "i2", func(img *trustack.Image) error {
				if img.Properties == nil {
					img.Properties = map[string]string{}
				}
				img.Properties[fmt.Sprintf("p%02d", i)] = "x"
				return nil
			})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	got, _ = s.Image(ctx, "i2")
	if len(got.Properties) != n {
		t.Fatalf("image has %d properties after %d concurrent additions: updates were lost", len(got.Properties), n)
	}
}

func testImageLists(t *testing.T, s Store) {
	yes, no := true, false
	small, large := int64(1000), int64(3000)
	newImage(t, s, "mine-private", 0, func(img *trustack.Image) { withData(1000)(img); img.Tags = []string{"a", "b"} })
	newImage(t, s, "mine-shared", 1, func(img *trustack.Image) { img.Visibility = trustack.VisibilityShared; img.Tags = []string{"a"} })
	newImage(t, s, "mine-community", 2, func(img *trustack.Image) { img.Visibility = trustack.VisibilityCommunity })
	newImage(t, s, "mine-killed", 3, func(img *trustack.Image) { img.Status = trustack.ImageKilled })
	newImage(t, s, "mine-hidden", 4, func(img *trustack.Image) { withData(2000)(img); img.Hidden = true; img.Protected = true })
	newImage(t, s, "other-public", 5, func(img *trustack.Image) {
		withData(3000)(img)
		img.Owner, img.Visibility, img.DiskFormat = "p2", trustack.VisibilityPublic, "raw"
		img.Properties = map[string]string{"os_distro": "debian", "arch": "x86_64"}
	})
	newImage(t, s, "other-private", 6, func(img *trustack.Image) { img.Owner = "p2"; img.Properties = map[string]string{"os_distro": "debian"} })
	newImage(t, s, "other-community", 7, func(img *trustack.Image) {
		img.Owner, img.Visibility, img.ContainerFormat = "p2", trustack.VisibilityCommunity, "ovf"
	})
	for _, m := range []struct{ image, status string }{
		{"other-accepted", trustack.MemberAccepted}, {"other-pending", trustack.MemberPending}, {"other-rejected", trustack.MemberRejected},
	} {
		newImage(t, s, m.image, 8, func(img *trustack.Image) { img.Owner, img.Visibility = "p2", trustack.VisibilityShared })
		must(t, s.CreateImageMember(ctx, &trustack.ImageMember{ImageID: m.image, MemberID: "p1", Status: m.status, CreatedAt: t0, UpdatedAt: t0}))
	}
	newImage(t, s, "other-unshared", 9, func(img *trustack.Image) { img.Owner, img.Visibility = "p2", trustack.VisibilityShared })
	newImage(t, s, "deleted", 10, func(img *trustack.Image) { img.Status = trustack.ImageDeleted })

	for _, tc := range []struct {
		name string
		f    trustack.ImageFilter
		want []string
	}{
		{"everything, newest first", trustack.ImageFilter{}, []string{"deleted", "other-unshared", "other-rejected", "other-pending", "other-accepted",
			"other-community", "other-private", "other-public", "mine-hidden", "mine-killed", "mine-community", "mine-shared", "mine-private"}},
		{"name", trustack.ImageFilter{Name: "name-mine-shared"}, []string{"mine-shared"}},
		{"status", trustack.ImageFilter{Status: trustack.ImageActive}, []string{"other-public", "mine-hidden", "mine-private"}},
		{"visibility", trustack.ImageFilter{Visibility: trustack.VisibilityCommunity}, []string{"other-community", "mine-community"}},
		{"owner", trustack.ImageFilter{Owner: "p2", Visibility: trustack.VisibilityPrivate}, []string{"other-private"}},
		{"IDs", trustack.ImageFilter{IDs: []string{"mine-shared", "other-public", "missing"}}, []string{"other-public", "mine-shared"}},
		{"no IDs", trustack.ImageFilter{IDs: []string{}}, nil},
		{"disk format", trustack.ImageFilter{DiskFormat: "raw"}, []string{"other-public"}},
		{"container format", trustack.ImageFilter{ContainerFormat: "ovf"}, []string{"other-community"}},
		{"checksum", trustack.ImageFilter{Checksum: fmt.Sprintf("%032x", 2000)}, []string{"mine-hidden"}},
		{"hash", trustack.ImageFilter{HashValue: fmt.Sprintf("%0128x", 3000)}, []string{"other-public"}},
		{"every tag", trustack.ImageFilter{Tags: []string{"a", "b"}}, []string{"mine-private"}},
		{"one tag", trustack.ImageFilter{Tags: []string{"a"}}, []string{"mine-shared", "mine-private"}},
		{"properties", trustack.ImageFilter{Properties: map[string]string{"os_distro": "debian", "arch": "x86_64"}}, []string{"other-public"}},
		{"property", trustack.ImageFilter{Properties: map[string]string{"os_distro": "debian"}}, []string{"other-private", "other-public"}},
		{"size range leaves out images without data", trustack.ImageFilter{SizeMin: new(int64)}, []string{"other-public", "mine-hidden", "mine-private"}},
		{"size range", trustack.ImageFilter{SizeMin: &small, SizeMax: &large, Hidden: &no}, []string{"other-public", "mine-private"}},
		{"exact size", trustack.ImageFilter{SizeMin: &large, SizeMax: &large}, []string{"other-public"}},
		{"hidden", trustack.ImageFilter{Hidden: &yes}, []string{"mine-hidden"}},
		{"protected", trustack.ImageFilter{Protected: &yes}, []string{"mine-hidden"}},
		{"without killed and deleted", trustack.ImageFilter{ExcludeKilled: true, Owner: "p1"},
			[]string{"mine-hidden", "mine-community", "mine-shared", "mine-private"}},
		{"what p1 sees", trustack.ImageFilter{Viewer: "p1", ExcludeKilled: true, MemberStatus: trustack.MemberAccepted},
			[]string{"other-accepted", "other-community", "other-public", "mine-hidden", "mine-community", "mine-shared", "mine-private"}},
		{"what p1 sees, of any membership", trustack.ImageFilter{Viewer: "p1", Visibility: trustack.VisibilityShared, MemberStatus: "all"},
			[]string{"other-rejected", "other-pending", "other-accepted", "mine-shared"}},
		{"what p1 sees pending", trustack.ImageFilter{Viewer: "p1", Visibility: trustack.VisibilityShared, MemberStatus: trustack.MemberPending},
			[]string{"other-pending", "mine-shared"}},
		{"what p1 lists by default", trustack.ImageFilter{Viewer: "p1", MemberStatus: trustack.MemberAccepted, ExcludeKilled: true, Hidden: &no, HideCommunity: true, CommunityOwner: "p1"},
			[]string{"other-accepted", "other-public", "mine-community", "mine-shared", "mine-private"}},
		{"what p3 sees", trustack.ImageFilter{Viewer: "p3"}, []string{"other-community", "other-public", "mine-community"}},
		{"no community at all", trustack.ImageFilter{HideCommunity: true, Visibility: trustack.VisibilityCommunity}, nil},
	} {
		list, err := s.Images(ctx, tc.f)
		must(t, err)
		if got := imageIDs(list); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: Images(%+v) = %v, want %v", tc.name, tc.f, got, tc.want)
		}
	}
	// Lists carry properties and tags.
	list, err := s.Images(ctx, trustack.ImageFilter{IDs: []string{"mine-private", "other-public"}})
	must(t, err)
	equal(t, list[0].Properties, map[string]string{"os_distro": "debian", "arch": "x86_64"})
	equal(t, list[1].Tags, []string{"a", "b"})
}

func testImagePages(t *testing.T, s Store) {
	// Names and sizes repeat, so that ties must be broken.
	for i, spec := range []struct {
		name string
		size int64
	}{{"b", 30}, {"a", 20}, {"c", 10}, {"a", 30}, {"b", 10}, {"c", 20}, {"a", 10}} {
		newImage(t, s, fmt.Sprintf("i%d", i), i/2, func(img *trustack.Image) {
			withData(spec.size)(img)
			img.Name = spec.name
			img.UpdatedAt = t0.Add(time.Duration(10-i) * time.Minute)
		})
	}
	for _, tc := range []struct {
		sort []trustack.ImageSort
		want []string
	}{
		{nil, []string{"i6", "i5", "i4", "i3", "i2", "i1", "i0"}},
		{[]trustack.ImageSort{{Key: "created_at"}}, []string{"i0", "i1", "i2", "i3", "i4", "i5", "i6"}},
		{[]trustack.ImageSort{{Key: "name"}}, []string{"i1", "i3", "i6", "i0", "i4", "i2", "i5"}},
		{[]trustack.ImageSort{{Key: "name", Desc: true}, {Key: "size"}}, []string{"i2", "i5", "i4", "i0", "i6", "i1", "i3"}},
		{[]trustack.ImageSort{{Key: "size", Desc: true}, {Key: "name", Desc: true}}, []string{"i0", "i3", "i5", "i1", "i2", "i4", "i6"}},
		{[]trustack.ImageSort{{Key: "updated_at"}}, []string{"i6", "i5", "i4", "i3", "i2", "i1", "i0"}},
		{[]trustack.ImageSort{{Key: "id", Desc: true}}, []string{"i6", "i5", "i4", "i3", "i2", "i1", "i0"}},
		{[]trustack.ImageSort{{Key: "status"}, {Key: "disk_format"}, {Key: "container_format"}}, []string{"i0", "i1", "i2", "i3", "i4", "i5", "i6"}},
	} {
		list, err := s.Images(ctx, trustack.ImageFilter{Sort: tc.sort})
		must(t, err)
		if got := imageIDs(list); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("sorted by %+v: got %v, want %v", tc.sort, got, tc.want)
			continue
		}
		// Pages of two, each after the last of the one before, make up the
		// same list.
		var paged []string
		marker := ""
		for range len(tc.want) {
			page, err := s.Images(ctx, trustack.ImageFilter{Sort: tc.sort, Marker: marker, Limit: 2})
			must(t, err)
			if len(page) == 0 {
				break
			}
			paged = append(paged, imageIDs(page)...)
			marker = page[len(page)-1].ID
		}
		if !reflect.DeepEqual(paged, tc.want) {
			t.Errorf("pages sorted by %+v: got %v, want %v", tc.sort, paged, tc.want)
		}
	}
	_, err := s.Images(ctx, trustack.ImageFilter{Sort: []trustack.ImageSort{{Key: "owner"}}})
	code(t, err, trustack.EINVALID)
	_, err = s.Images(ctx, trustack.ImageFilter{Marker: "missing"})
	code(t, err, trustack.EINVALID)
	list, err := s.Images(ctx, trustack.ImageFilter{Limit: 3, Name: "a"})
	must(t, err)
	equal(t, imageIDs(list), []string{"i6", "i3", "i1"})
}

func testImageMembers(t *testing.T, s Store) {
	newImage(t, s, "i1", 0, func(img *trustack.Image) { img.Visibility = trustack.VisibilityShared })
	m := &trustack.ImageMember{ImageID: "i1", MemberID: "p2", Status: trustack.MemberPending, CreatedAt: t0, UpdatedAt: t0}
	must(t, s.CreateImageMember(ctx, m))
	must(t, s.CreateImageMember(ctx, &trustack.ImageMember{ImageID: "i1", MemberID: "p3", Status: trustack.MemberPending, CreatedAt: t0.Add(time.Second), UpdatedAt: t0}))
	code(t, s.CreateImageMember(ctx, &trustack.ImageMember{ImageID: "i1", MemberID: "p2", Status: trustack.MemberAccepted, CreatedAt: t0, UpdatedAt: t0}), trustack.ECONFLICT)
	code(t, s.CreateImageMember(ctx, &trustack.ImageMember{ImageID: "missing", MemberID: "p2", Status: trustack.MemberPending, CreatedAt: t0, UpdatedAt: t0}), trustack.ECONFLICT)

	got, err := s.ImageMember(ctx, "i1", "p2")
	must(t, err)
	equal(t, got, m)
	_, err = s.ImageMember(ctx, "i1", "p9")
	code(t, err, trustack.ENOTFOUND)
	list, err := s.ImageMembers(ctx, "i1")
	must(t, err)
	equal(t, len(list), 2)
	equal(t, list[0].MemberID, "p2")

	later := t0.Add(time.Hour)
	updated, err := s.UpdateImageMember(ctx, "i1", "p2", func(m *trustack.ImageMember) error {
		m.Status, m.UpdatedAt = trustack.MemberAccepted, later
		return nil
	})
	must(t, err)
	got, _ = s.ImageMember(ctx, "i1", "p2")
	equal(t, got, updated)
	equal(t, got.Status, trustack.MemberAccepted)
	_, err = s.UpdateImageMember(ctx, "i1", "p2", func(m *trustack.ImageMember) error { m.MemberID = "p4"; return nil })
	code(t, err, trustack.EINVALID)
	_, err = s.UpdateImageMember(ctx, "i1", "p9", func(*trustack.ImageMember) error { return nil })
	code(t, err, trustack.ENOTFOUND)

	must(t, s.DeleteImageMember(ctx, "i1", "p2"))
	code(t, s.DeleteImageMember(ctx, "i1", "p2"), trustack.ENOTFOUND)
	list, _ = s.ImageMembers(ctx, "i1")
	equal(t, len(list), 1)
}
