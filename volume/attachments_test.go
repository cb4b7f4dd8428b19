package volume_test

import (
	"context"
	"sync"
	"testing"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/volume"
	"github.com/trustack/trustack/wire"
)

// exporter is storage hosts that serve their volumes over NBD: it
// records what each host serves, and to which key, and fails on demand.
type exporter struct {
	*hosts
	mu      sync.Mutex
	served  map[string]wire.PSK // by "host volume"
	exports int                 // how many exports were asked
	fail    error               // what the next export or unexport gets, if not nil
}

func (e *exporter) ExportVolume(_ context.Context, host, backend, id string, key wire.PSK) (wire.NBDExport, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.exports++
	if err := e.fail; err != nil {
		e.fail = nil
		return wire.NBDExport{}, err
	}
	if backend != "file" {
		return wire.NBDExport{}, trustack.Errorf(trustack.ENOTFOUND, "no backend %s on %s", backend, host)
	}
	e.served[host+" "+id] = key
	return wire.NBDExport{Host: "10.0.0.7", Port: 10809, Name: id, Key: key}, nil
}

func (e *exporter) UnexportVolume(_ context.Context, host, id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.fail; err != nil {
		e.fail = nil
		return err
	}
	delete(e.served, host+" "+id)
	return nil
}

// servedKey is the key a host serves a volume to, and whether it does.
func (e *exporter) servedKey(host, id string) (wire.PSK, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	k, ok := e.served[host+" "+id]
	return k, ok
}

// newAttachService returns the service over storage hosts that serve
// volumes over NBD, and one available volume of alice's on storage-1.
func newAttachService(t *testing.T) (*volume.Service, *exporter, *trustack.Volume) {
	t.Helper()
	_, h := newService(t, map[string]int{"storage-1": 50})
	e := &exporter{hosts: h, served: map[string]wire.PSK{}}
	s := volume.New(h.db, h, e, volume.Options{})
	t.Cleanup(s.Wait)
	v, err := s.Create(ctx, alice, volume.CreateRequest{Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	return s, e, settled(t, s, v.ID)
}

const server1 = "4f1a7a0e-3c57-4c3b-9d58-2f3b3c1c2d01"

// TestAttachmentLifecycle: an attachment is reserved, connected with a
// key of its own that the storage host serves the volume to, completed
// and deleted, the volume going from available to reserved, attaching,
// in use and available, served no more.
func TestAttachmentLifecycle(t *testing.T) {
	s, e, v := newAttachService(t)
	a, err := s.CreateAttachment(ctx, alice, v.ID, server1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.Status != trustack.AttachReserved || a.ServerID != server1 || a.VolumeID != v.ID || a.Connection != nil {
		t.Errorf("reserved attachment: %+v", a)
	}
	if got := settled(t, s, v.ID); got.Status != trustack.VolumeReserved || got.Attachment.ID != a.ID {
		t.Errorf("volume %s with attachment %q, want reserved with %s", got.Status, got.Attachment.ID, a.ID)
	}
	if _, ok := e.servedKey("storage-1", v.ID); ok {
		t.Error("a reserved volume is served")
	}

	a, err = s.ConnectAttachment(ctx, alice, a.ID, volume.Connector{Host: "compute-9", Mountpoint: "/dev/vdb"})
	if err != nil {
		t.Fatal(err)
	}
	key, ok := e.servedKey("storage-1", v.ID)
	ci := a.Connection
	switch {
	case a.Status != trustack.AttachAttaching || a.Host != "compute-9" || a.Device != "/dev/vdb" || a.Mode != "rw":
		t.Errorf("connected attachment: %+v, want attaching on compute-9 at /dev/vdb, rw", a)
	case !ok || ci == nil:
		t.Fatalf("connected: served %v, connection %+v", ok, ci)
	case ci.Host != "10.0.0.7" || ci.Port != 10809 || ci.Name != v.ID:
		t.Errorf("connection %+v, want the export's address", ci)
	case ci.PSKIdentity != key.Identity || ci.PSKSecret != key.Secret || len(key.Secret) != 64:
		t.Errorf("connection key %s/%s, served to %+v: want the one key of 32 bytes", ci.PSKIdentity, ci.PSKSecret, key)
	}
	if got := settled(t, s, v.ID); got.Status != trustack.VolumeAttaching {
		t.Errorf("volume %s, want attaching", got.Status)
	}
	again, err := s.ConnectAttachment(ctx, alice, a.ID, volume.Connector{Host: "compute-9"})
	if err != nil {
		t.Fatal(err)
	}
	if again.Connection.PSKSecret != ci.PSKSecret {
		t.Error("connecting again changed the key the compute host holds")
	}

	if err := s.CompleteAttachment(ctx, alice, a.ID); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetAttachment(ctx, alice, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != trustack.AttachAttached || got.AttachedAt.IsZero() || settled(t, s, v.ID).Status != trustack.VolumeInUse {
		t.Errorf("completed: %+v, volume %s; want attached, in-use", got, settled(t, s, v.ID).Status)
	}

	if err := s.DeleteAttachment(ctx, alice, a.ID); err != nil {
		t.Fatal(err)
	}
	if got := settled(t, s, v.ID); got.Status != trustack.VolumeAvailable || got.Attachment.ID != "" {
		t.Errorf("after deletion: volume %s with attachment %q, want available with none", got.Status, got.Attachment.ID)
	}
	if _, ok := e.servedKey("storage-1", v.ID); ok {
		t.Error("a detached volume is still served")
	}
	if _, err := s.GetAttachment(ctx, alice, a.ID); trustack.ErrorReason(err) != "VolumeAttachmentNotFound" {
		t.Errorf("a deleted attachment: %v, want VolumeAttachmentNotFound", err)
	}
}

// TestAttachmentRefusals: what a volume's state, its owner or its
// storage host forbids is refused and leaves the volume as it was.
func TestAttachmentRefusals(t *testing.T) {
	s, e, v := newAttachService(t)
	bob := volume.Caller{UserID: "bob", ProjectID: "p2"}
	unchanged := func(t *testing.T) {
		t.Helper()
		if got := settled(t, s, v.ID); got.Status != trustack.VolumeAvailable || got.Attachment.ID != "" {
			t.Errorf("volume %s with attachment %q, want available with none", got.Status, got.Attachment.ID)
		}
	}

	if _, err := s.CreateAttachment(ctx, bob, v.ID, server1, nil); trustack.ErrorReason(err) != "VolumeNotFound" {
		t.Errorf("another project's volume: %v, want VolumeNotFound", err)
	}
	if _, err := s.CreateAttachment(ctx, alice, v.ID, server1, &volume.Connector{}); trustack.ErrorCode(err) != trustack.EINVALID {
		t.Errorf("a connector without a host: %v, want EINVALID", err)
	}
	e.mu.Lock()
	e.fail = trustack.Errorf(trustack.EUNAVAILABLE, "storage-1 is down")
	e.mu.Unlock()
	if _, err := s.CreateAttachment(ctx, alice, v.ID, server1, &volume.Connector{Host: "compute-9"}); trustack.ErrorCode(err) != trustack.EUNAVAILABLE {
		t.Errorf("the storage host failing the export: %v, want its error", err)
	}
	unchanged(t)

	if err := s.SetReadOnly(ctx, alice, v.ID, true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateAttachment(ctx, alice, v.ID, server1, &volume.Connector{Host: "compute-9", Mode: "rw"}); trustack.ErrorReason(err) != "InvalidVolumeAttachMode" {
		t.Errorf("rw of a read-only volume: %v, want InvalidVolumeAttachMode", err)
	}
	unchanged(t)
	a, err := s.CreateAttachment(ctx, alice, v.ID, server1, &volume.Connector{Host: "compute-9"})
	if err != nil {
		t.Fatal(err)
	}
	if a.Mode != "ro" || a.Status != trustack.AttachAttaching {
		t.Errorf("a read-only volume connected: %+v, want attaching ro", a)
	}

	if _, err := s.CreateAttachment(ctx, alice, v.ID, server1, nil); trustack.ErrorReason(err) != "InvalidVolume" {
		t.Errorf("a second attachment: %v, want InvalidVolume", err)
	}
	if _, err := s.GetAttachment(ctx, bob, a.ID); trustack.ErrorReason(err) != "VolumeAttachmentNotFound" {
		t.Errorf("another project's attachment: %v, want VolumeAttachmentNotFound", err)
	}
	if err := s.DeleteAttachment(ctx, bob, a.ID); trustack.ErrorReason(err) != "VolumeAttachmentNotFound" {
		t.Errorf("deleting another project's attachment: %v, want VolumeAttachmentNotFound", err)
	}
	if _, err := s.Attach(ctx, alice, v.ID, volume.AttachRequest{ServerID: "s2", Host: "compute-1", Device: "/dev/vdc", ReadOnly: true}); trustack.ErrorReason(err) != "InvalidVolume" {
		t.Errorf("trustack's compute attaching a volume attaching elsewhere: %v, want InvalidVolume", err)
	}
	if err := s.Reserve(ctx, alice, v.ID); trustack.ErrorReason(err) != "InvalidVolume" {
		t.Errorf("os-reserve of a volume attaching elsewhere: %v, want InvalidVolume", err)
	}

	e.mu.Lock()
	e.fail = trustack.Errorf(trustack.EUNAVAILABLE, "storage-1 is down")
	e.mu.Unlock()
	if err := s.DeleteAttachment(ctx, alice, a.ID); trustack.ErrorCode(err) != trustack.EUNAVAILABLE {
		t.Errorf("the storage host failing to stop: %v, want its error", err)
	}
	if got := settled(t, s, v.ID); got.Status != trustack.VolumeAttaching || got.Attachment.ID != a.ID {
		t.Errorf("after a failed deletion: %s with %q, want attaching with %s", got.Status, got.Attachment.ID, a.ID)
	}
	// os-detach lets it go too, and stops serving it.
	if err := s.Detach(ctx, alice, v.ID, a.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.servedKey("storage-1", v.ID); ok {
		t.Error("a volume detached with os-detach is still served")
	}
}

// TestReserveStaysAttaching: trustack's own compute service's os-reserve
// holds a volume as attaching with no attachment, as Cinder's os-reserve;
// Attach makes an attachment that the attachments API lists as attached.
func TestReserveStaysAttaching(t *testing.T) {
	s, _, v := newAttachService(t)
	if err := s.Reserve(ctx, alice, v.ID); err != nil {
		t.Fatal(err)
	}
	if got := settled(t, s, v.ID); got.Status != trustack.VolumeAttaching || got.Attachment.ID != "" {
		t.Errorf("reserved: %s with attachment %q, want attaching with none", got.Status, got.Attachment.ID)
	}
	if _, err := s.CreateAttachment(ctx, alice, v.ID, server1, nil); trustack.ErrorReason(err) != "InvalidVolume" {
		t.Errorf("an attachment of a volume reserved by os-reserve: %v, want InvalidVolume", err)
	}
	if _, err := s.Attach(ctx, alice, v.ID, volume.AttachRequest{ServerID: "s1", Host: "compute-1", Device: "/dev/vdc"}); err != nil {
		t.Fatal(err)
	}
	list, err := s.Attachments(ctx, alice, volume.AttachmentFilter{ServerID: "s1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Status != trustack.AttachAttached || list[0].Mode != "rw" || list[0].Connection != nil {
		t.Errorf("attachments of s1: %+v, want one attached rw without a connection", list)
	}
	// As Cinder's os-begin_detaching, the volume is let go, the
	// attachment still attached.
	if err := s.BeginDetaching(ctx, alice, v.ID); err != nil {
		t.Fatal(err)
	}
	if a, _ := s.GetAttachment(ctx, alice, list[0].ID); a == nil || a.Status != trustack.AttachAttached {
		t.Errorf("being let go: %+v, want attached", a)
	}
}

// TestAttachmentRace: of many servers attaching one volume at once,
// exactly one gets it, and the volume has that one's attachment.
func TestAttachmentRace(t *testing.T) {
	s, _, v := newAttachService(t)
	const n = 20
	var wg sync.WaitGroup
	won := make(chan *volume.Attachment, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var conn *volume.Connector
			if i%2 == 0 {
				conn = &volume.Connector{Host: "compute-9"}
			}
			a, err := s.CreateAttachment(ctx, alice, v.ID, server1, conn)
			switch {
			case err == nil:
				won <- a
			case trustack.ErrorReason(err) != "InvalidVolume":
				t.Errorf("a losing attachment: %v, want InvalidVolume", err)
			}
		}()
	}
	wg.Wait()
	close(won)
	var winners []*volume.Attachment
	for a := range won {
		winners = append(winners, a)
	}
	if len(winners) != 1 {
		t.Fatalf("%d attachments won the volume, want 1", len(winners))
	}
	if got := settled(t, s, v.ID); got.Attachment.ID != winners[0].ID {
		t.Errorf("the volume has attachment %q, want the winner's %s", got.Attachment.ID, winners[0].ID)
	}
}
