package volume_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/agent"
	"github.com/trustack/trustack/sqlstore"
	"github.com/trustack/trustack/volume"
	"github.com/trustack/trustack/volume/file"
	"github.com/trustack/trustack/wire"
)

var ctx = context.Background()

// hosts are storage hosts, each with a file backend of its own, whose
// agents the service reaches directly (the bus is the agent package's
// test) and which fail on demand.
type hosts struct {
	db       *sqlstore.DB
	backends map[string]agent.VolumeBackend // by host name

	mu   sync.Mutex
	fail error // what the next request gets, if not nil
	// copying, if set, is called as a host starts making a volume from
	// an image: where a storage host reports the copy.
	copying func(host, id string)
	// uploads are the uploads of volumes asked, "IMAGE FORMAT VOLUME".
	uploads []string
}

func (h *hosts) Hosts(ctx context.Context) ([]*trustack.Host, error) { return h.db.Hosts(ctx) }

func (h *hosts) backend(host, backend string) (agent.VolumeBackend, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.fail; err != nil {
		h.fail = nil
		return nil, err
	}
	b, ok := h.backends[host]
	if !ok || backend != "file" {
		return nil, trustack.Errorf(trustack.ENOTFOUND, "no backend %s on %s", backend, host)
	}
	return b, nil
}

func (h *hosts) CreateVolume(ctx context.Context, host, backend, id string, size int) error {
	b, err := h.backend(host, backend)
	if err != nil {
		return err
	}
	return b.Create(ctx, id, size)
}

func (h *hosts) CreateVolumeFromSnapshot(ctx context.Context, host, backend, id, snapshotID string, size int) error {
	b, err := h.backend(host, backend)
	if err != nil {
		return err
	}
	return b.CreateFromSnapshot(ctx, id, snapshotID, size)
}

// CreateVolumeFromImage reads the image from its URL taken as a file's
// path: the tests' image service is a directory.
func (h *hosts) CreateVolumeFromImage(ctx context.Context, host, backend, id string, size int, image wire.ImageRef, _ string) error {
	b, err := h.backend(host, backend)
	if err != nil {
		return err
	}
	if h.copying != nil {
		h.copying(host, id)
	}
	return b.CreateFromImage(ctx, id, size, image.URL, image.DiskFormat)
}

func (h *hosts) SnapshotVolume(ctx context.Context, host, backend, id, snapshotID string) error {
	b, err := h.backend(host, backend)
	if err != nil {
		return err
	}
	return b.Snapshot(ctx, id, snapshotID)
}

func (h *hosts) DeleteSnapshot(ctx context.Context, host, backend, snapshotID string) error {
	b, err := h.backend(host, backend)
	if err != nil {
		return err
	}
	return b.DeleteSnapshot(ctx, snapshotID)
}

func (h *hosts) ExtendVolume(ctx context.Context, host, backend, id string, size int, _ bool) error {
	b, err := h.backend(host, backend)
	if err != nil {
		return err
	}
	return b.Extend(ctx, id, size)
}

func (h *hosts) DeleteVolume(ctx context.Context, host, backend, id string) error {
	b, err := h.backend(host, backend)
	if err != nil {
		return err
	}
	return b.Delete(ctx, id)
}

// newService returns the service over a new SQLite store, with storage
// hosts registered as their agents would register them: name to GiB
// free.
func newService(t *testing.T, free map[string]int) (*volume.Service, *hosts) {
	t.Helper()
	return newServiceWith(t, free, volume.Options{})
}

// newServiceWith is newService with opts.
func newServiceWith(t *testing.T, free map[string]int, opts volume.Options) (*volume.Service, *hosts) {
	t.Helper()
	db, err := sqlstore.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "volume.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	h := &hosts{db: db, backends: map[string]agent.VolumeBackend{}}
	for name, gb := range free {
		b, err := file.New(t.TempDir(), file.QCOW2)
		if err != nil {
			t.Fatal(err)
		}
		h.backends[name] = b
		_, err = db.RegisterHost(ctx, &trustack.Host{ID: "id-" + name, Name: name, AvailabilityZone: "nova", Enabled: true,
			CPUAllocationRatio: 1, RAMAllocationRatio: 1, DiskAllocationRatio: 1,
			Storage: []trustack.StorageBackend{{Name: "file", TotalGB: gb, FreeGB: gb}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	s := volume.New(db, h, h, opts)
	t.Cleanup(s.Wait)
	return s, h
}

var alice = volume.Caller{UserID: "alice", ProjectID: "p1"}

// settled waits for the volume's background work and returns it as it
// is then.
func settled(t *testing.T, s *volume.Service, id string) *trustack.Volume {
	t.Helper()
	s.Wait()
	v, err := s.Get(ctx, alice, id)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func sizeOn(t *testing.T, h *hosts, host, id string) int {
	t.Helper()
	got, err := h.backends[host].Volumes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return got[id]
}

// TestVolumeLifecycle: a volume is made on the storage host with the
// most room, grows, and goes; what its state forbids is refused and
// changes nothing.
func TestVolumeLifecycle(t *testing.T) {
	s, h := newService(t, map[string]int{"storage-1": 50, "storage-2": 80})
	v, err := s.Create(ctx, alice, volume.CreateRequest{Name: "vol1", Size: 1, Metadata: map[string]string{"purpose": "db"}})
	if err != nil {
		t.Fatal(err)
	}
	if v.Status != trustack.VolumeCreating || v.Host != "storage-2@file#file" || v.AvailabilityZone != "nova" {
		t.Errorf("accepted volume: %+v, want creating on storage-2@file#file in nova", v)
	}
	if v = settled(t, s, v.ID); v.Status != trustack.VolumeAvailable {
		t.Fatalf("volume %s, want available", v.Status)
	}
	if got := sizeOn(t, h, "storage-2", v.ID); got != 1 {
		t.Errorf("the storage host has %d GiB of the volume, want 1", got)
	}

	if err := s.Extend(ctx, alice, v.ID, 1, false); trustack.ErrorReason(err) != "InvalidInput" {
		t.Errorf("extending to the same size: %v, want InvalidInput", err)
	}
	if err := s.Extend(ctx, alice, v.ID, 3, false); err != nil {
		t.Fatal(err)
	}
	if v = settled(t, s, v.ID); v.Status != trustack.VolumeAvailable || v.Size != 3 || sizeOn(t, h, "storage-2", v.ID) != 3 {
		t.Errorf("after extending to 3 GiB: %s, %d GiB (host: %d)", v.Status, v.Size, sizeOn(t, h, "storage-2", v.ID))
	}
	name := "renamed"
	if v, err = s.Update(ctx, alice, v.ID, volume.Update{Name: &name}); err != nil || v.Name != "renamed" || v.Metadata["purpose"] != "db" {
		t.Errorf("after a rename: %+v (%v)", v, err)
	}
	if _, err := s.Get(ctx, volume.Caller{ProjectID: "p2"}, v.ID); trustack.ErrorReason(err) != "VolumeNotFound" {
		t.Errorf("another project sees the volume: %v", err)
	}
	if err := s.Delete(ctx, volume.Caller{ProjectID: "p2"}, v.ID, false); trustack.ErrorReason(err) != "VolumeNotFound" {
		t.Errorf("another project deletes the volume: %v", err)
	}
	if err := s.Delete(ctx, alice, v.ID, false); err != nil {
		t.Fatal(err)
	}
	s.Wait()
	if _, err := s.Get(ctx, alice, v.ID); trustack.ErrorReason(err) != "VolumeNotFound" {
		t.Errorf("after the delete: %v, want VolumeNotFound", err)
	}
	if got, _ := h.backends["storage-2"].Volumes(ctx); len(got) != 0 {
		t.Errorf("the storage host still has %v", got)
	}
}

// TestVolumeBadInputAndQuotas: bad sizes, unknown types and what passes
// the project's quota are refused, and leave nothing.
func TestVolumeBadInputAndQuotas(t *testing.T) {
	s, _ := newService(t, map[string]int{"storage-1": 5000})
	for _, r := range []volume.CreateRequest{{Size: 0}, {Size: -1}, {Size: 1, Type: "gold"}, {Size: 1, Name: string(make([]byte, 256))}} {
		if _, err := s.Create(ctx, alice, r); err == nil {
			t.Errorf("created %+v", r)
		}
	}
	if _, err := s.Create(ctx, alice, volume.CreateRequest{Size: 1001}); trustack.ErrorReason(err) != "VolumeSizeExceedsAvailableQuota" {
		t.Errorf("1,001 GiB against Cinder's default 1,000: %v", err)
	}
	for range 10 {
		if _, err := s.Create(ctx, alice, volume.CreateRequest{Size: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Create(ctx, alice, volume.CreateRequest{Size: 1}); trustack.ErrorReason(err) != "VolumeLimitExceeded" {
		t.Errorf("an 11th volume against Cinder's default 10: %v", err)
	}
	if list, err := s.List(ctx, alice, trustack.VolumeFilter{}); err != nil || len(list) != 10 {
		t.Errorf("%d volumes (%v), want 10", len(list), err)
	}
}

// TestVolumeFailures: with no backend that can take it, a volume is in
// error with the reason; a storage host's failure leaves the volume in
// the matching error status, at its former size after a failed growth;
// a volume in use cannot be deleted.
func TestVolumeFailures(t *testing.T) {
	s, h := newService(t, map[string]int{"storage-1": 2})
	v, err := s.Create(ctx, alice, volume.CreateRequest{Size: 5})
	if err != nil {
		t.Fatal(err)
	}
	if v.Status != trustack.VolumeError || v.Reason == "" {
		t.Errorf("a volume no backend has room for: %s (%q), want error with a reason", v.Status, v.Reason)
	}
	if err := s.Delete(ctx, alice, v.ID, false); err != nil {
		t.Fatal(err)
	}

	h.fail = errors.New("disk on fire")
	v, err = s.Create(ctx, alice, volume.CreateRequest{Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	if v = settled(t, s, v.ID); v.Status != trustack.VolumeError || v.Reason != "disk on fire" {
		t.Errorf("a creation the host failed: %s (%q)", v.Status, v.Reason)
	}
	if err := s.Delete(ctx, alice, v.ID, false); err != nil {
		t.Fatal(err)
	}
	s.Wait()

	v, err = s.Create(ctx, alice, volume.CreateRequest{Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	settled(t, s, v.ID)
	h.fail = errors.New("no room")
	if err := s.Extend(ctx, alice, v.ID, 2, false); err != nil {
		t.Fatal(err)
	}
	if v = settled(t, s, v.ID); v.Status != trustack.VolumeErrorExtending || v.Size != 1 {
		t.Errorf("a growth the host failed: %s at %d GiB, want error_extending at 1", v.Status, v.Size)
	}
	h.fail = errors.New("host down")
	if err := s.Delete(ctx, alice, v.ID, false); err != nil {
		t.Fatal(err)
	}
	if v = settled(t, s, v.ID); v.Status != trustack.VolumeErrorDeleting {
		t.Errorf("a deletion the host failed: %s, want error_deleting", v.Status)
	}
	if err := s.Delete(ctx, alice, v.ID, false); err != nil {
		t.Fatal(err)
	}
	s.Wait()
	if _, err := s.Get(ctx, alice, v.ID); trustack.ErrorCode(err) != trustack.ENOTFOUND {
		t.Errorf("deleted again: %v, want it gone", err)
	}
}

// TestRecoverTakesUpWhatWasGoingOn: volumes a controller left creating,
// extending or deleting when it stopped are made, grown and deleted when
// it starts again.
func TestRecoverTakesUpWhatWasGoingOn(t *testing.T) {
	s, h := newService(t, map[string]int{"storage-1": 50})
	db := h.db
	def, err := db.VolumeTypeByName(ctx, trustack.DefaultVolumeType)
	if err != nil {
		t.Fatal(err)
	}
	left := func(id, status string, size int) {
		v := &trustack.Volume{ID: id, ProjectID: "p1", Size: size, Status: status, TypeID: def.ID, AvailabilityZone: "nova", Host: "storage-1@file#file"}
		if err := db.CreateVolume(ctx, v, nil); err != nil {
			t.Fatal(err)
		}
	}
	left("made", trustack.VolumeCreating, 1)
	left("grown", trustack.VolumeExtending, 2)
	left("gone", trustack.VolumeDeleting, 1)
	for id, size := range map[string]int{"grown": 1, "gone": 1} {
		if err := h.backends["storage-1"].Create(ctx, id, size); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	for id, size := range map[string]int{"made": 1, "grown": 2} {
		if v := settled(t, s, id); v.Status != trustack.VolumeAvailable || sizeOn(t, h, "storage-1", id) != size {
			t.Errorf("volume %s: %s, %d GiB on its host; want available, %d", id, v.Status, sizeOn(t, h, "storage-1", id), size)
		}
	}
	if _, err := s.Get(ctx, alice, "gone"); trustack.ErrorCode(err) != trustack.ENOTFOUND || sizeOn(t, h, "storage-1", "gone") != 0 {
		t.Errorf("the volume left deleting: %v, %d GiB on its host; want gone", err, sizeOn(t, h, "storage-1", "gone"))
	}
}

// TestOneReservationWins: of servers reserving one volume at once, one
// gets it and the others are refused, on the store's transaction.
func TestOneReservationWins(t *testing.T) {
	s, _ := newService(t, map[string]int{"storage-1": 10})
	v, err := s.Create(ctx, alice, volume.CreateRequest{Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	settled(t, s, v.ID)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.Reserve(ctx, alice, v.ID)
		}()
	}
	wg.Wait()
	close(errs)
	won := 0
	for err := range errs {
		switch {
		case err == nil:
			won++
		case trustack.ErrorReason(err) != "InvalidVolume":
			t.Errorf("a losing reservation: %v, want InvalidVolume", err)
		}
	}
	if won != 1 {
		t.Errorf("%d reservations won, want 1", won)
	}
	if got := settled(t, s, v.ID); got.Status != trustack.VolumeAttaching {
		t.Errorf("the volume after the race: %s, want attaching", got.Status)
	}
}

// TestSnapshots: a snapshot of a volume is taken on its storage host; a
// volume made from it is made there with its data; the volume cannot go
// while its snapshot is there; quotas count snapshots; deleted, the
// snapshot is gone and the volume made from it keeps its data.
func TestSnapshots(t *testing.T) {
	s, h := newService(t, map[string]int{"storage-1": 50, "storage-2": 80})
	v, err := s.Create(ctx, alice, volume.CreateRequest{Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	settled(t, s, v.ID)
	path, format, err := h.backends["storage-2"].Locate(ctx, v.ID)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("qemu-io", "-f", format, "-c", "write -P 0x77 0 64k", path).CombinedOutput(); err != nil {
		t.Fatalf("write the volume: %v\n%s", err, out)
	}
	snap, err := s.CreateSnapshot(ctx, alice, volume.SnapshotRequest{VolumeID: v.ID, Name: "s1"})
	if err != nil {
		t.Fatal(err)
	}
	s.Wait()
	if snap, err = s.GetSnapshot(ctx, alice, snap.ID); err != nil || snap.Status != trustack.SnapshotAvailable || snap.Size != 1 {
		t.Fatalf("snapshot: %+v, %v; want available of 1 GiB", snap, err)
	}
	if err := s.Delete(ctx, alice, v.ID, false); trustack.ErrorReason(err) != "InvalidVolume" {
		t.Errorf("a volume with a snapshot deleted: %v, want InvalidVolume", err)
	}
	clone, err := s.Create(ctx, alice, volume.CreateRequest{SnapshotID: snap.ID})
	if err != nil {
		t.Fatal(err)
	}
	if clone = settled(t, s, clone.ID); clone.Status != trustack.VolumeAvailable || clone.Host != v.Host || clone.Size != 1 || clone.SnapshotID != snap.ID {
		t.Errorf("the volume from the snapshot: %+v, want available on %s, of 1 GiB", clone, v.Host)
	}
	path, format, _ = h.backends["storage-2"].Locate(ctx, clone.ID)
	if out, err := exec.Command("qemu-io", "-f", format, "-c", "read -P 0x77 0 64k", path).CombinedOutput(); err != nil {
		t.Errorf("the volume from the snapshot lacks its data: %v\n%s", err, out)
	}
	if _, err := s.Create(ctx, alice, volume.CreateRequest{SnapshotID: snap.ID, Size: 2}); err != nil {
		t.Errorf("a larger volume from the snapshot: %v", err)
	}
	if _, err := s.Create(ctx, volume.Caller{ProjectID: "p2"}, volume.CreateRequest{SnapshotID: snap.ID}); trustack.ErrorReason(err) != "SnapshotNotFound" {
		t.Errorf("another project's snapshot: %v, want SnapshotNotFound", err)
	}
	if _, err := s.SetQuotas(ctx, "p1", map[string]int{trustack.QuotaSnapshots: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateSnapshot(ctx, alice, volume.SnapshotRequest{VolumeID: v.ID}); trustack.ErrorCode(err) != trustack.EOVERQUOTA {
		t.Errorf("a snapshot past the quota: %v, want EOVERQUOTA", err)
	}
	if used, _ := s.Usage(ctx, "p1"); used[trustack.QuotaSnapshots] != 1 || used[trustack.QuotaGigabytes] != 5 {
		t.Errorf("usage %v, want 1 snapshot and 5 GiB (volumes of 1, 1 and 2, and the snapshot's 1)", used)
	}

	if err := s.DeleteSnapshot(ctx, alice, snap.ID, false); err != nil {
		t.Fatal(err)
	}
	s.Wait()
	if _, err := s.GetSnapshot(ctx, alice, snap.ID); trustack.ErrorReason(err) != "SnapshotNotFound" {
		t.Errorf("the deleted snapshot: %v", err)
	}
	if out, err := exec.Command("qemu-io", "-f", format, "-c", "read -P 0x77 0 64k", path).CombinedOutput(); err != nil {
		t.Errorf("the volume from the snapshot lost its data with the snapshot: %v\n%s", err, out)
	}
	if err := s.Delete(ctx, alice, v.ID, false); err != nil {
		t.Errorf("the volume once its snapshot is gone: %v", err)
	}

	// Cascade: a volume goes with its snapshots.
	snap, err = s.CreateSnapshot(ctx, alice, volume.SnapshotRequest{VolumeID: clone.ID})
	if err != nil {
		t.Fatal(err)
	}
	s.Wait()
	if err := s.Delete(ctx, alice, clone.ID, true); err != nil {
		t.Fatal(err)
	}
	s.Wait()
	if _, err := s.GetSnapshot(ctx, alice, snap.ID); trustack.ErrorReason(err) != "SnapshotNotFound" {
		t.Errorf("the snapshot of a volume deleted with its snapshots: %v", err)
	}
	if _, err := s.Get(ctx, alice, clone.ID); trustack.ErrorReason(err) != "VolumeNotFound" {
		t.Errorf("the volume deleted with its snapshots: %v", err)
	}
}

// images is an image service of one image, kept in a directory as the
// image API would serve its data (dir/v2/images/ID/file).
type images struct{ img *trustack.Image }

func (i images) BootImage(_ context.Context, _, id string) (*trustack.Image, error) {
	if id != i.img.ID {
		return nil, trustack.Errorf(trustack.ENOTFOUND, "no image %s", id)
	}
	return i.img, nil
}

// newImage makes an image of a 64 MiB disk with 64 KiB of 0x5c at its
// start, and the directory the image service keeps it in.
func newImage(t *testing.T) (img *trustack.Image, dir string) {
	t.Helper()
	dir = t.TempDir()
	img = &trustack.Image{ID: "11111111-2222-4333-8444-555555555555", Name: "tiny", DiskFormat: "qcow2", ContainerFormat: "bare",
		Size: 200 << 20, MinDisk: 1, Properties: map[string]string{"kernel_id": "k1"}}
	file := filepath.Join(dir, "v2", "images", img.ID, "file")
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"qemu-img", "create", "-q", "-f", "qcow2", file, "64M"}, {"qemu-io", "-f", "qcow2", "-c", "write -P 0x5c 0 64k", file}} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", args, err, out)
		}
	}
	return img, dir
}

// TestVolumeFromImage: a volume made from an image has its data and its
// properties, is bootable, and is of the image's size unless asked for
// more; smaller is refused.
func TestVolumeFromImage(t *testing.T) {
	img, dir := newImage(t)
	s, h := newServiceWith(t, map[string]int{"storage-1": 10}, volume.Options{Images: images{img}, ImageURL: dir})
	if _, err := s.Create(ctx, alice, volume.CreateRequest{ImageID: "99999999-2222-4333-8444-555555555555"}); trustack.ErrorReason(err) != "ImageNotFound" {
		t.Errorf("a volume of a missing image: %v, want ImageNotFound", err)
	}
	v, err := s.Create(ctx, alice, volume.CreateRequest{ImageID: img.ID})
	if err != nil {
		t.Fatal(err)
	}
	if v = settled(t, s, v.ID); v.Status != trustack.VolumeAvailable || v.Size != 1 || !v.Bootable || v.ImageMetadata["kernel_id"] != "k1" || v.ImageMetadata["image_name"] != "tiny" {
		t.Fatalf("the volume from the image: %+v", v)
	}
	path, format, _ := h.backends["storage-1"].Locate(ctx, v.ID)
	if out, err := exec.Command("qemu-io", "-f", format, "-c", "read -P 0x5c 0 64k", path).CombinedOutput(); err != nil {
		t.Errorf("the volume lacks the image's data: %v\n%s", err, out)
	}
	img.MinDisk = 3
	if _, err := s.Create(ctx, alice, volume.CreateRequest{ImageID: img.ID, Size: 2}); trustack.ErrorReason(err) != "InvalidInput" {
		t.Errorf("a volume smaller than its image's min_disk: %v, want InvalidInput", err)
	}
}

// TestImageCopied: the storage host making a volume from an image reports
// how much of the image it has copied, and the volume keeps the last
// count; a report from another host, of a count below 0, or once the
// volume is made changes nothing.
func TestImageCopied(t *testing.T) {
	img, dir := newImage(t)
	s, h := newServiceWith(t, map[string]int{"storage-1": 10}, volume.Options{Images: images{img}, ImageURL: dir})
	var during []error
	var seen int64
	h.copying = func(host, id string) {
		report := func(host string, n int64) error {
			return s.ImageCopied(ctx, wire.ImageCopied{Host: host, VolumeID: id, Bytes: n})
		}
		during = append(during, report(host, 1<<20), report(host, 3<<20), report("storage-2", 5<<20), report(host, -1))
		if v, err := s.Get(ctx, alice, id); err == nil {
			seen = v.ImageBytesCopied
		}
	}
	v, err := s.Create(ctx, alice, volume.CreateRequest{ImageID: img.ID})
	if err != nil {
		t.Fatal(err)
	}
	if v = settled(t, s, v.ID); v.Status != trustack.VolumeAvailable {
		t.Fatalf("the volume from the image is %s, want available", v.Status)
	}
	want := []string{"", "", trustack.EFORBIDDEN, trustack.EINVALID}
	for i, err := range during {
		if got := trustack.ErrorCode(err); got != want[i] { // "" for no error
			t.Errorf("report %d while the volume was made: %v, want code %q", i, err, want[i])
		}
	}
	if seen != 3<<20 || v.ImageBytesCopied != 3<<20 {
		t.Errorf("bytes copied: %d while made, %d once available; want %d both", seen, v.ImageBytesCopied, 3<<20)
	}
	if err := s.ImageCopied(ctx, wire.ImageCopied{Host: "storage-1", VolumeID: v.ID, Bytes: 1}); trustack.ErrorCode(err) != trustack.ECONFLICT {
		t.Errorf("a report once the volume is made: %v, want %s", err, trustack.ECONFLICT)
	}
	if v = settled(t, s, v.ID); v.ImageBytesCopied != 3<<20 {
		t.Errorf("bytes copied after a late report: %d, want %d", v.ImageBytesCopied, 3<<20)
	}
	if err := s.ImageCopied(ctx, wire.ImageCopied{Host: "storage-1", VolumeID: "99999999-2222-4333-8444-555555555555", Bytes: 1}); trustack.ErrorReason(err) != "VolumeNotFound" {
		t.Errorf("a report of a missing volume: %v, want VolumeNotFound", err)
	}
}
