package images_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/images"
	"github.com/trustack/trustack/sqlstore"
)

var ctx = context.Background()

// fixture is an image service over a real SQLite store, with a clock
// that moves a second per reading and IDs in sequence.
type fixture struct {
	svc   *images.Service
	store *sqlstore.DB
	dir   string
	clock time.Time
}

var (
	alice = images.Caller{ProjectID: "demo"}
	bob   = images.Caller{ProjectID: "other"}
	admin = images.Caller{ProjectID: "admin", Admin: true}
)

func newFixture(t testing.TB, sizeCap int64) *fixture {
	t.Helper()
	dir := t.TempDir()
	store, err := sqlstore.Open(ctx, "sqlite://"+filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	f := &fixture{store: store, dir: filepath.Join(dir, "images"), clock: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)}
	data, err := images.OpenFiles(f.dir, f.clock)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	f.svc = images.New(store, data, images.Options{
		SizeCap: sizeCap,
		Now:     func() time.Time { f.clock = f.clock.Add(time.Second); return f.clock },
		NewID:   func() string { n++; return fmt.Sprintf("00000000-0000-4000-8000-%012d", n) },
	})
	return f
}

func (f *fixture) create(t testing.TB, c images.Caller, img *trustack.Image) *trustack.Image {
	t.Helper()
	if err := f.svc.Create(ctx, c, img); err != nil {
		t.Fatal(err)
	}
	return img
}

func code(t testing.TB, err error, want string) {
	t.Helper()
	if got := trustack.ErrorCode(err); got != want {
		t.Fatalf("got error %v (code %q), want code %q", err, got, want)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestCreateDefaultsAndRules(t *testing.T) {
	f := newFixture(t, 0)
	img := f.create(t, alice, &trustack.Image{Name: "cirros", Tags: []string{"b", "a", "b"}, Status: trustack.ImageActive, Size: 9})
	if img.ID != "00000000-0000-4000-8000-000000000001" || img.Owner != "demo" || img.Visibility != trustack.VisibilityShared ||
		img.Status != trustack.ImageQueued || img.Size != 0 || !img.CreatedAt.Equal(f.clock) || fmt.Sprint(img.Tags) != "[a b]" {
		t.Errorf("created image %+v: want the next ID, the caller's project, shared, queued, no data, the clock's time, tags as a set", img)
	}
	if id := images.NewID(); len(id) != 36 || id[14] != '4' {
		t.Errorf("NewID() = %q, want a version 4 UUID", id)
	}
	for _, tc := range []struct {
		name   string
		c      images.Caller
		img    trustack.Image
		code   string
		tooBig bool
	}{
		{"another owner", alice, trustack.Image{Owner: "other"}, trustack.EFORBIDDEN, false},
		{"no project", images.Caller{}, trustack.Image{}, trustack.EFORBIDDEN, false},
		{"ID not a UUID", alice, trustack.Image{ID: "cirros"}, trustack.EINVALID, false},
		{"ID taken", alice, trustack.Image{ID: img.ID}, trustack.ECONFLICT, false},
		{"disk format", alice, trustack.Image{DiskFormat: "floppy"}, trustack.EINVALID, false},
		{"container format", alice, trustack.Image{ContainerFormat: "box"}, trustack.EINVALID, false},
		{"visibility", alice, trustack.Image{Visibility: "everyone"}, trustack.EINVALID, false},
		{"negative minimum", alice, trustack.Image{MinRAM: -1}, trustack.EINVALID, false},
		{"reserved property", alice, trustack.Image{Properties: map[string]string{"os_glance_x": "y"}}, trustack.EFORBIDDEN, false},
		{"empty tag", alice, trustack.Image{Tags: []string{""}}, trustack.EINVALID, false},
		{"too many properties", alice, trustack.Image{Properties: props(images.MaxProperties + 1)}, trustack.EOVERQUOTA, true},
	} {
		err := f.svc.Create(ctx, tc.c, &tc.img)
		if trustack.ErrorCode(err) != tc.code || errors.Is(err, images.ErrLimitExceeded) != tc.tooBig {
			t.Errorf("%s: got %v, want code %s", tc.name, err, tc.code)
		}
	}
	// An admin may create for another project.
	f.create(t, admin, &trustack.Image{Owner: "other"})
}

func props(n int) map[string]string {
	m := map[string]string{}
	for i := range n {
		m[fmt.Sprint("p", i)] = "v"
	}
	return m
}

func TestWhoSeesAndChangesWhat(t *testing.T) {
	f := newFixture(t, 0)
	ids := map[string]string{}
	for _, v := range []string{trustack.VisibilityPrivate, trustack.VisibilityShared, trustack.VisibilityCommunity, trustack.VisibilityPublic} {
		ids[v] = f.create(t, alice, &trustack.Image{Name: v, Visibility: v}).ID
	}
	for _, tc := range []struct {
		c          images.Caller
		visibility string
		sees       bool
	}{
		{bob, trustack.VisibilityPrivate, false}, {bob, trustack.VisibilityShared, false},
		{bob, trustack.VisibilityCommunity, true}, {bob, trustack.VisibilityPublic, true},
		{alice, trustack.VisibilityPrivate, true}, {admin, trustack.VisibilityPrivate, true},
	} {
		_, err := f.svc.Image(ctx, tc.c, ids[tc.visibility])
		if (err == nil) != tc.sees {
			t.Errorf("%s sees a %s image: got %v, want %v", tc.c.ProjectID, tc.visibility, err, tc.sees)
		}
	}
	// Bob sees the shared image once a member, pending or not.
	_, err := f.svc.AddMember(ctx, alice, ids[trustack.VisibilityShared], "other")
	must(t, err)
	_, err = f.svc.Image(ctx, bob, ids[trustack.VisibilityShared])
	must(t, err)
	// Seeing is not changing.
	_, err = f.svc.Update(ctx, bob, ids[trustack.VisibilityPublic], func(img *trustack.Image) error { img.Name = "mine"; return nil })
	code(t, err, trustack.EFORBIDDEN)
	code(t, f.svc.Delete(ctx, bob, ids[trustack.VisibilityCommunity]), trustack.EFORBIDDEN)
	code(t, f.svc.Delete(ctx, bob, ids[trustack.VisibilityPrivate]), trustack.ENOTFOUND)
	_, err = f.svc.Update(ctx, admin, ids[trustack.VisibilityPublic], func(img *trustack.Image) error { img.Owner = "other"; return nil })
	must(t, err)

	// Lists: community images of others only when asked for; pending
	// memberships only when asked for.
	list := func(c images.Caller, filter trustack.ImageFilter) []string {
		got, err := f.svc.Images(ctx, c, filter)
		must(t, err)
		var names []string
		for _, img := range got {
			names = append(names, img.Name)
		}
		return names
	}
	if got := fmt.Sprint(list(bob, trustack.ImageFilter{})); got != "[public]" {
		t.Errorf("bob's default list: %s", got)
	}
	if got := fmt.Sprint(list(bob, trustack.ImageFilter{MemberStatus: "all", Visibility: "all"})); got != "[public community shared]" {
		t.Errorf("bob's list of everything: %s", got)
	}
	if got := fmt.Sprint(list(admin, trustack.ImageFilter{})); got != "[public shared private]" {
		t.Errorf("admin's default list: %s", got)
	}
}

func TestUpdateRules(t *testing.T) {
	f := newFixture(t, 0)
	img := f.create(t, alice, &trustack.Image{Name: "x", DiskFormat: "raw", ContainerFormat: "bare"})
	for _, tc := range []struct {
		name string
		fn   func(*trustack.Image)
		code string
	}{
		{"status", func(i *trustack.Image) { i.Status = trustack.ImageActive }, trustack.EFORBIDDEN},
		{"size", func(i *trustack.Image) { i.Size = 1 }, trustack.EFORBIDDEN},
		{"checksum", func(i *trustack.Image) { i.Checksum = "x" }, trustack.EFORBIDDEN},
		{"created_at", func(i *trustack.Image) { i.CreatedAt = time.Time{} }, trustack.EFORBIDDEN},
		{"owner", func(i *trustack.Image) { i.Owner = "other" }, trustack.EFORBIDDEN},
		{"bad format", func(i *trustack.Image) { i.DiskFormat = "floppy" }, trustack.EINVALID},
		{"empty tag", func(i *trustack.Image) { i.Tags = []string{""} }, trustack.EINVALID},
		{"too many tags", func(i *trustack.Image) { i.Tags = slices.Collect(maps.Keys(props(images.MaxTags + 1))) }, trustack.EOVERQUOTA},
	} {
		_, err := f.svc.Update(ctx, alice, img.ID, func(i *trustack.Image) error { tc.fn(i); return nil })
		if trustack.ErrorCode(err) != tc.code {
			t.Errorf("changing %s: got %v, want code %s", tc.name, err, tc.code)
		}
	}
	updated, err := f.svc.Update(ctx, alice, img.ID, func(i *trustack.Image) error { i.DiskFormat, i.Name = "qcow2", "y"; return nil })
	must(t, err)
	if !updated.UpdatedAt.After(img.UpdatedAt) || updated.DiskFormat != "qcow2" {
		t.Errorf("update: %+v", updated)
	}
	// Formats are fixed once data is there.
	_, err = f.svc.Upload(ctx, alice, img.ID, bytes.NewReader([]byte("data")), images.Expect{})
	must(t, err)
	_, err = f.svc.Update(ctx, alice, img.ID, func(i *trustack.Image) error { i.ContainerFormat = "ovf"; return nil })
	code(t, err, trustack.EFORBIDDEN)
	must(t, f.svc.AddTag(ctx, alice, img.ID, "t"))
	must(t, f.svc.AddTag(ctx, alice, img.ID, "t"))
	must(t, f.svc.DeleteTag(ctx, alice, img.ID, "t"))
	code(t, f.svc.DeleteTag(ctx, alice, img.ID, "t"), trustack.ENOTFOUND)
	_, err = f.svc.Update(ctx, alice, img.ID, func(i *trustack.Image) error { i.Protected = true; return nil })
	must(t, err)
	code(t, f.svc.Delete(ctx, alice, img.ID), trustack.EFORBIDDEN)
	code(t, f.svc.Deactivate(ctx, bob, img.ID), trustack.ENOTFOUND)
	must(t, f.svc.Deactivate(ctx, alice, img.ID))
	_, _, err = f.svc.Download(ctx, alice, img.ID)
	code(t, err, trustack.EFORBIDDEN)
	_, file, err := f.svc.Download(ctx, admin, img.ID)
	must(t, err)
	file.Close()
	must(t, f.svc.Reactivate(ctx, alice, img.ID))
	must(t, f.svc.Reactivate(ctx, alice, img.ID))
}

func TestUploadHashesAndStoresData(t *testing.T) {
	f := newFixture(t, 0)
	// A qcow2 header saying the disk has 10 GiB.
	head := make([]byte, 1024)
	copy(head, "QFI\xfb")
	binary.BigEndian.PutUint64(head[24:], 10<<30)
	img := f.create(t, alice, &trustack.Image{DiskFormat: "qcow2", ContainerFormat: "bare"})
	_, err := f.svc.Upload(ctx, alice, img.ID, bytes.NewReader(head), images.Expect{MD5: "0123456789abcdef0123456789abcdef"})
	code(t, err, trustack.EINVALID)
	if !errors.Is(err, images.ErrChecksumMismatch) {
		t.Fatalf("a wrong MD5: got %v, want a checksum mismatch", err)
	}
	got, err := f.svc.Image(ctx, alice, img.ID)
	must(t, err)
	if got.Status != trustack.ImageKilled {
		t.Fatalf("after a checksum mismatch the image is %s, want killed", got.Status)
	}
	_, err = f.svc.Upload(ctx, alice, img.ID, bytes.NewReader(head), images.Expect{})
	code(t, err, trustack.ECONFLICT)

	img = f.create(t, alice, &trustack.Image{DiskFormat: "qcow2", ContainerFormat: "bare"})
	sum, sha := md5.Sum(head), sha256.Sum256(head)
	got, err = f.svc.Upload(ctx, alice, img.ID, bytes.NewReader(head), images.Expect{
		MD5: strings.ToUpper(hex.EncodeToString(sum[:])), SHA256: hex.EncodeToString(sha[:]),
	})
	must(t, err)
	if got.Status != trustack.ImageActive || got.Size != 1024 || got.VirtualSize != 10<<30 || got.HashAlgo != "sha512" || len(got.HashValue) != 128 {
		t.Errorf("uploaded image %+v", got)
	}
	stored, err := os.ReadFile(filepath.Join(f.dir, img.ID))
	must(t, err)
	if !bytes.Equal(stored, head) {
		t.Error("the stored data differs from the upload")
	}
	_, _, err = f.svc.Download(ctx, bob, img.ID)
	code(t, err, trustack.ENOTFOUND)
	_, file, err := f.svc.Download(ctx, alice, img.ID)
	must(t, err)
	b, _ := io.ReadAll(file)
	file.Close()
	if !bytes.Equal(b, head) {
		t.Error("the downloaded data differs from the upload")
	}
	must(t, f.svc.Delete(ctx, alice, img.ID))
	if _, err := os.Stat(filepath.Join(f.dir, img.ID)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the data outlives the image: %v", err)
	}
}

// stallingReader gives a byte, then waits until released.
type stallingReader struct {
	started chan struct{}
	release chan struct{}
	sent    bool
}

func (s *stallingReader) Read(p []byte) (int, error) {
	if !s.sent {
		s.sent = true
		close(s.started)
		p[0] = 'x'
		return 1, nil
	}
	<-s.release
	return 0, io.EOF
}

func TestConcurrentUploadAndDelete(t *testing.T) {
	f := newFixture(t, 0)
	img := f.create(t, alice, &trustack.Image{DiskFormat: "raw", ContainerFormat: "bare"})
	r := &stallingReader{started: make(chan struct{}), release: make(chan struct{})}
	done := make(chan error)
	go func() {
		_, err := f.svc.Upload(ctx, alice, img.ID, r, images.Expect{})
		done <- err
	}()
	<-r.started
	// While it saves, a second upload conflicts.
	_, err := f.svc.Upload(ctx, alice, img.ID, bytes.NewReader([]byte("y")), images.Expect{})
	code(t, err, trustack.ECONFLICT)
	// Deleted meanwhile, the upload fails and leaves nothing behind.
	must(t, f.svc.Delete(ctx, alice, img.ID))
	close(r.release)
	code(t, <-done, trustack.ECONFLICT)
	left, _ := os.ReadDir(f.dir)
	tmp, _ := os.ReadDir(filepath.Join(f.dir, ".tmp"))
	if len(left) != 1 || len(tmp) != 0 {
		t.Errorf("files left after an upload to a deleted image: %v, %v", left, tmp)
	}
}

// cancelingReader gives data and cancels its request's context.
type cancelingReader struct{ cancel func() }

func (c cancelingReader) Read(p []byte) (int, error) {
	c.cancel()
	return copy(p, "some data"), nil
}

func TestSizeCapAndInterruptedUploads(t *testing.T) {
	f := newFixture(t, 100)
	img := f.create(t, alice, &trustack.Image{DiskFormat: "raw", ContainerFormat: "bare"})
	_, err := f.svc.Upload(ctx, alice, img.ID, bytes.NewReader(make([]byte, 101)), images.Expect{})
	if !errors.Is(err, images.ErrLimitExceeded) {
		t.Fatalf("an upload over the cap: got %v, want ErrLimitExceeded", err)
	}
	got, _ := f.svc.Image(ctx, alice, img.ID)
	if got.Status != trustack.ImageQueued {
		t.Fatalf("after an upload over the cap the image is %s, want queued", got.Status)
	}
	// The client goes away in the middle: the request's context ends.
	gone, cancel := context.WithCancel(ctx)
	_, err = f.svc.Upload(gone, alice, img.ID, cancelingReader{cancel}, images.Expect{})
	code(t, err, trustack.EINVALID)
	got, _ = f.svc.Image(ctx, alice, img.ID)
	if got.Status != trustack.ImageQueued {
		t.Fatalf("after an interrupted upload the image is %s, want queued", got.Status)
	}
	_, err = f.svc.Upload(ctx, alice, img.ID, bytes.NewReader(make([]byte, 100)), images.Expect{})
	must(t, err)

	// Leftovers of a crash are removed when the service starts.
	// Leftovers of a crash are removed when the service starts; fresh
	// temporary files may be uploads of another controller.
	leftover, fresh := filepath.Join(f.dir, ".tmp", "crashed"), filepath.Join(f.dir, ".tmp", "uploading")
	must(t, os.WriteFile(leftover, []byte("x"), 0o600))
	must(t, os.WriteFile(fresh, []byte("x"), 0o600))
	must(t, os.Chtimes(leftover, time.Now().Add(-2*time.Hour), time.Now().Add(-2*time.Hour)))
	_, err = images.OpenFiles(f.dir, time.Now())
	must(t, err)
	if _, err := os.Stat(leftover); !errors.Is(err, os.ErrNotExist) {
		t.Error("an upload leftover survived a restart")
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("a fresh upload file did not survive a restart: %v", err)
	}
	// Formats come first.
	bare := f.create(t, alice, &trustack.Image{})
	_, err = f.svc.Upload(ctx, alice, bare.ID, bytes.NewReader(nil), images.Expect{})
	code(t, err, trustack.EINVALID)
}

func TestMembers(t *testing.T) {
	f := newFixture(t, 0)
	shared := f.create(t, alice, &trustack.Image{Visibility: trustack.VisibilityShared})
	private := f.create(t, alice, &trustack.Image{Visibility: trustack.VisibilityPrivate})
	_, err := f.svc.AddMember(ctx, alice, private.ID, "other")
	code(t, err, trustack.EFORBIDDEN)
	m, err := f.svc.AddMember(ctx, alice, shared.ID, "other")
	must(t, err)
	if m.Status != trustack.MemberPending {
		t.Errorf("a new member is %s, want pending", m.Status)
	}
	_, err = f.svc.AddMember(ctx, alice, shared.ID, "other")
	code(t, err, trustack.ECONFLICT)
	_, err = f.svc.AddMember(ctx, bob, shared.ID, "third")
	code(t, err, trustack.EFORBIDDEN)
	_, err = f.svc.UpdateMember(ctx, alice, shared.ID, "other", trustack.MemberAccepted)
	code(t, err, trustack.EFORBIDDEN)
	_, err = f.svc.UpdateMember(ctx, bob, shared.ID, "other", "maybe")
	code(t, err, trustack.EINVALID)
	m, err = f.svc.UpdateMember(ctx, bob, shared.ID, "other", trustack.MemberRejected)
	must(t, err)
	if m.Status != trustack.MemberRejected || !m.UpdatedAt.After(m.CreatedAt) {
		t.Errorf("updated member %+v", m)
	}
	_, err = f.svc.AddMember(ctx, alice, shared.ID, "third")
	must(t, err)
	all, err := f.svc.Members(ctx, alice, shared.ID)
	must(t, err)
	own, err := f.svc.Members(ctx, bob, shared.ID)
	must(t, err)
	if len(all) != 2 || len(own) != 1 {
		t.Errorf("the owner sees %d members, a member %d; want 2 and 1", len(all), len(own))
	}
	_, err = f.svc.Member(ctx, bob, shared.ID, "third")
	code(t, err, trustack.ENOTFOUND)
	code(t, f.svc.DeleteMember(ctx, bob, shared.ID, "other"), trustack.EFORBIDDEN)
	must(t, f.svc.DeleteMember(ctx, alice, shared.ID, "other"))
	_, err = f.svc.Image(ctx, bob, shared.ID)
	code(t, err, trustack.ENOTFOUND)
	for i := range images.MaxMembers - 1 {
		_, err := f.svc.AddMember(ctx, alice, shared.ID, fmt.Sprint("p", i))
		must(t, err)
	}
	_, err = f.svc.AddMember(ctx, alice, shared.ID, "one-too-many")
	if !errors.Is(err, images.ErrLimitExceeded) {
		t.Errorf("one member too many: got %v, want ErrLimitExceeded", err)
	}
}
