package client

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/internal/apitest"
	"github.com/trustack/trustack/internal/volumetest"
	"github.com/trustack/trustack/volume"
	"github.com/trustack/trustack/wire"
)

// storage is a storage host that does at once what it is asked, but for a
// volume made from an image: it reports a third of the image copied,
// waits until drawn is closed, and reports all of it, as a storage host's
// agent reports its copy.
type storage struct {
	volume.Storage // the rest, which the tests do not ask for
	svc            *volume.Service
	imageSize      int64
	drawn, stop    chan struct{}
}

func (*storage) CreateVolume(context.Context, string, string, string, int) error      { return nil }
func (*storage) DeleteVolume(context.Context, string, string, string) error           { return nil }
func (*storage) SnapshotVolume(context.Context, string, string, string, string) error { return nil }
func (*storage) DeleteSnapshot(context.Context, string, string, string) error         { return nil }
func (*storage) CreateVolumeFromSnapshot(context.Context, string, string, string, string, int) error {
	return nil
}

func (s *storage) CreateVolumeFromImage(ctx context.Context, host, _, id string, _ int, _ wire.ImageRef, _ string) error {
	report := func(n int64) error {
		return s.svc.ImageCopied(ctx, wire.ImageCopied{Host: host, VolumeID: id, Bytes: n})
	}
	if err := report(s.imageSize / 3); err != nil {
		return err
	}
	select {
	case <-s.drawn:
	case <-s.stop:
		return trustack.Errorf(trustack.EUNAVAILABLE, "the test ended")
	}
	return report(s.imageSize)
}

// newBlockStorage returns a client of the volume API, served in process
// (volumetest) with the image img, as alice (a member of apitest.P1),
// writing JSON to out and no progress; and its storage host.
func newBlockStorage(t *testing.T, img *trustack.Image, out *bytes.Buffer) (*BlockStorage, *storage) {
	t.Helper()
	st := &storage{imageSize: img.Size, drawn: make(chan struct{}), stop: make(chan struct{})}
	var srv *httptest.Server
	srv, st.svc = volumetest.Serve(t, st, volume.Options{Images: apitest.Images{Image: img}})
	t.Cleanup(func() { close(st.stop) }) // before the service waits for the copy
	provider := &gophercloud.ProviderClient{HTTPClient: *http.DefaultClient}
	provider.SetToken("alice")
	c := &Client{
		blockStorage: &gophercloud.ServiceClient{ProviderClient: provider, Endpoint: srv.URL + "/volume/v3/"},
		out:          Output{Out: out, Format: FormatJSON},
		poll:         5 * time.Millisecond,
	}
	return &BlockStorage{c}, st
}

// decode reads the JSON the client wrote to out, and empties out.
func decode(t *testing.T, out *bytes.Buffer, v any) {
	t.Helper()
	if err := json.Unmarshal(out.Bytes(), v); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	out.Reset()
}

// TestWaitCreatedDrawsTheCopy: waiting for a volume made from an image
// draws the copy of the image on a terminal as the volume API reports it:
// the bytes the storage host has copied while it copies, all of them once
// the volume is available. Then the volume shows them.
func TestWaitCreatedDrawsTheCopy(t *testing.T) {
	ctx := context.Background()
	img := &trustack.Image{ID: "11111111-2222-4333-8444-555555555555", Name: "tiny", DiskFormat: "raw", ContainerFormat: "bare", Size: 3 << 20}
	var out, screen bytes.Buffer
	b, st := newBlockStorage(t, img, &out)
	v, err := st.svc.Create(ctx, volume.Caller{UserID: "u-alice", ProjectID: apitest.P1}, volume.CreateRequest{Name: "boot", ImageID: img.ID})
	if err != nil {
		t.Fatal(err)
	}
	// The storage host copies the rest once the client has drawn the
	// third it reported.
	b.out.Progress, b.out.Terminal = watch{&screen, "] 1.0 MiB / 3.0 MiB  33% ", st.drawn}, true
	if err := b.waitCreated(ctx, v.ID, &images.Image{SizeBytes: img.Size}); err != nil {
		t.Fatal(err)
	}
	draws := strings.Split(screen.String(), "\r")
	last := draws[len(draws)-1]
	if !strings.Contains(screen.String(), "\r[==========>") || !strings.HasPrefix(last, "[==============================] 3.0 MiB / 3.0 MiB 100% ") ||
		!strings.HasSuffix(last, "\n") {
		t.Errorf("the bar drawn:\n%q\nwant a third, then the whole bar at 100%% and a new line", screen.String())
	}

	if err := b.ShowVolume(ctx, "boot"); err != nil {
		t.Fatal(err)
	}
	var shown struct {
		Status           string
		Bootable         bool
		Image            named
		ImageBytesCopied int64 `json:"image_bytes_copied"`
	}
	decode(t, &out, &shown)
	if shown.Status != "available" || !shown.Bootable || shown.Image != (named{img.ID, img.Name}) || shown.ImageBytesCopied != img.Size {
		t.Errorf("volume show: %+v, want available, bootable, from %s, all %d bytes of it copied", shown, img.Name, img.Size)
	}
}

// watch is a terminal a test watches: it passes what is written on to w,
// and closes seen once want has been written.
type watch struct {
	w    *bytes.Buffer
	want string
	seen chan struct{}
}

func (s watch) Write(p []byte) (int, error) {
	had := strings.Contains(s.w.String(), s.want)
	s.w.Write(p)
	if !had && strings.Contains(s.w.String(), s.want) {
		close(s.seen)
	}
	return len(p), nil
}

// TestVolumeCommands: the volume and snapshot commands against the volume
// API, as a user runs them: volumes and snapshots made, found by name or
// ID, listed, and deleted once nothing depends on them; mistakes refused
// before anything is asked.
func TestVolumeCommands(t *testing.T) {
	ctx := context.Background()
	img := &trustack.Image{ID: "11111111-2222-4333-8444-555555555555", Name: "tiny", DiskFormat: "raw", ContainerFormat: "bare", Size: 1 << 20}
	var out bytes.Buffer
	b, _ := newBlockStorage(t, img, &out)
	type shown struct {
		ID, Name, Status, Description string
		Size                          int
		Properties                    map[string]string
		Volume                        named
		SnapshotID                    *string `json:"snapshot_id"`
	}

	var vol shown
	if err := b.CreateVolume(ctx, VolumeCreate{Name: "data", Size: 2, Description: "the app's", Properties: []string{"tier=db"}, Wait: true}); err != nil {
		t.Fatal(err)
	}
	decode(t, &out, &vol)
	if vol.Status != "available" || vol.Size != 2 || vol.Description != "the app's" || vol.Properties["tier"] != "db" {
		t.Errorf("volume create --wait: %+v, want 2 GiB, available, described, tier=db", vol)
	}
	var snap shown
	if err := b.CreateSnapshot(ctx, SnapshotCreate{Name: "s1", Volume: "data", Wait: true}); err != nil {
		t.Fatal(err)
	}
	decode(t, &out, &snap)
	if snap.Status != "available" || snap.Size != 2 || snap.Volume != (named{vol.ID, "data"}) {
		t.Errorf("volume snapshot create --wait: %+v, want available, 2 GiB, of data (%s)", snap, vol.ID)
	}
	var clone shown
	if err := b.CreateVolume(ctx, VolumeCreate{Name: "clone", Snapshot: "s1", Wait: true}); err != nil {
		t.Fatal(err)
	}
	decode(t, &out, &clone)
	if clone.Status != "available" || clone.Size != 2 || clone.SnapshotID == nil || *clone.SnapshotID != snap.ID {
		t.Errorf("volume create --snapshot s1: %+v, want available, 2 GiB, from %s", clone, snap.ID)
	}

	for _, list := range []struct {
		name string
		list func(context.Context) error
		want []string
	}{
		{"volume list", b.ListVolumes, []string{"clone", "data"}}, // newest first, as Cinder lists
		{"volume snapshot list", b.ListSnapshots, []string{"s1"}},
	} {
		if err := list.list(ctx); err != nil {
			t.Fatal(err)
		}
		var rows []struct{ Name string }
		decode(t, &out, &rows)
		var names []string
		for _, r := range rows {
			names = append(names, r.Name)
		}
		if strings.Join(names, " ") != strings.Join(list.want, " ") {
			t.Errorf("%s: %v, want %v", list.name, names, list.want)
		}
	}

	// data has a snapshot: it cannot go before the snapshot does.
	err := b.DeleteVolumes(ctx, []string{"data"}, true)
	if trustack.ErrorCode(err) != trustack.EINVALID || !strings.Contains(err.Error(), "delete volume data: ") {
		t.Errorf("volume delete of a volume with a snapshot: %v, want %s about data", err, trustack.EINVALID)
	}
	if err := b.DeleteSnapshots(ctx, []string{"s1"}, true); err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteVolumes(ctx, []string{"data", "clone"}, true); err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteVolumes(ctx, []string{vol.ID}, false); trustack.ErrorCode(err) != trustack.ENOTFOUND ||
		!strings.Contains(err.Error(), "No volume with a name or ID of '"+vol.ID+"' exists.") {
		t.Errorf("volume delete of a deleted volume's ID: %v, want %s", err, trustack.ENOTFOUND)
	}
	for _, ref := range []string{"data", "clone"} {
		if err := b.ShowVolume(ctx, ref); trustack.ErrorMessage(err) != "No volume with a name or ID of '"+ref+"' exists." {
			t.Errorf("volume show %s after its delete --wait: %v", ref, err)
		}
	}
	if err := b.ShowSnapshot(ctx, "s1"); trustack.ErrorCode(err) != trustack.ENOTFOUND {
		t.Errorf("volume snapshot show s1 after its delete --wait: %v, want %s", err, trustack.ENOTFOUND)
	}

	for _, bad := range []struct {
		req  VolumeCreate
		want string
	}{
		{VolumeCreate{Name: "x"}, "an empty volume needs --size"},
		{VolumeCreate{Name: "x", Size: -1}, "--size -1"},
		{VolumeCreate{Name: "x", Image: "tiny", Snapshot: "s1"}, "give --image or --snapshot, not both"},
		{VolumeCreate{Name: "x", Size: 1, Properties: []string{"tier"}}, `--property "tier"`},
	} {
		if err := b.CreateVolume(ctx, bad.req); trustack.ErrorCode(err) != trustack.EINVALID || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("volume create %+v: %v, want %s saying %q", bad.req, err, trustack.EINVALID, bad.want)
		}
	}
	if err := b.ListVolumes(ctx); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(out.String()); got != "[]" {
		t.Errorf("volume list after the mistakes: %s, want none", got)
	}
}
