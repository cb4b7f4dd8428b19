package volume_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/internal/testclock"
	"github.com/trustack/trustack/volume"
)

// messagesAbout returns the messages the caller sees about a resource.
func messagesAbout(t *testing.T, s *volume.Service, c volume.Caller, resource string) []*trustack.VolumeMessage {
	t.Helper()
	list, err := s.Messages(ctx, c, trustack.VolumeMessageFilter{ResourceID: resource})
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// oneMessage returns the one message the caller sees about a resource,
// failing t unless it has the event ID want.
func oneMessage(t *testing.T, s *volume.Service, c volume.Caller, resource, want string) *trustack.VolumeMessage {
	t.Helper()
	list := messagesAbout(t, s, c, resource)
	if len(list) != 1 {
		t.Fatalf("got %d messages about %s, want 1", len(list), resource)
	}
	if list[0].EventID != want {
		t.Errorf("got event %s, want %s", list[0].EventID, want)
	}
	return list[0]
}

// TestMessageOfAnUnplacedVolume: a volume of a type whose vendor and
// protocol no backend has (Tempest's way of making a message) goes to
// error and leaves its project a message that says why, with the ID of
// the request, for Cinder's TTL; other projects do not see it, an
// administrator does; its project may delete it.
func TestMessageOfAnUnplacedVolume(t *testing.T) {
	clock := testclock.New(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC))
	s, _ := newServiceWith(t, map[string]int{"storage-1": 50}, volume.Options{Now: clock.Now})
	bogus, err := s.CreateType(ctx, volume.TypeRequest{Name: "bogus", Public: true,
		ExtraSpecs: map[string]string{"storage_protocol": "bogus-protocol", "vendor_name": "bogus-vendor"}})
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.Create(volume.WithRequestID(ctx, "req-1"), alice, volume.CreateRequest{Size: 1, Type: bogus.ID})
	if err != nil {
		t.Fatal(err)
	}
	if v.Status != trustack.VolumeError {
		t.Fatalf("a volume of a type no backend offers: %s, want error", v.Status)
	}
	m := oneMessage(t, s, alice, v.ID, "VOLUME_VOLUME_001_003")
	want := &trustack.VolumeMessage{ID: m.ID, ProjectID: "p1", RequestID: "req-1", ResourceType: "VOLUME", ResourceID: v.ID,
		ActionID: "001", DetailID: "003", EventID: "VOLUME_VOLUME_001_003", Level: "ERROR",
		CreatedAt: clock.Now(), ExpiresAt: clock.Now().Add(2592000 * time.Second)}
	if *m != *want {
		t.Errorf("got %+v, want %+v", m, want)
	}
	if got, want := m.UserMessage(), "schedule allocate volume:Could not find any available weighted backend."; got != want {
		t.Errorf("got user message %q, want %q", got, want)
	}

	bob := volume.Caller{UserID: "bob", ProjectID: "p2"}
	if list := messagesAbout(t, s, bob, v.ID); len(list) != 0 {
		t.Errorf("another project sees %d messages about the volume", len(list))
	}
	if _, err := s.Message(ctx, bob, m.ID); trustack.ErrorReason(err) != "MessageNotFound" {
		t.Errorf("another project shows the message: %v, want MessageNotFound", err)
	}
	if err := s.DeleteMessage(ctx, bob, m.ID); trustack.ErrorReason(err) != "MessageNotFound" {
		t.Errorf("another project deletes the message: %v, want MessageNotFound", err)
	}
	oneMessage(t, s, volume.Caller{ProjectID: "admin", Admin: true}, v.ID, "VOLUME_VOLUME_001_003")

	if err := s.DeleteMessage(ctx, alice, m.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Message(ctx, alice, m.ID); trustack.ErrorReason(err) != "MessageNotFound" {
		t.Errorf("after its deletion: %v, want MessageNotFound", err)
	}

	// A volume of the type where the backend's vendor and protocol are
	// asked for is made.
	good, err := s.CreateType(ctx, volume.TypeRequest{Name: "good", Public: true,
		ExtraSpecs: map[string]string{"storage_protocol": "NBD", "capabilities:vendor_name": "<in> trust"}})
	if err != nil {
		t.Fatal(err)
	}
	v, err = s.Create(ctx, alice, volume.CreateRequest{Size: 1, Type: good.ID})
	if err != nil {
		t.Fatal(err)
	}
	if v = settled(t, s, v.ID); v.Status != trustack.VolumeAvailable {
		t.Errorf("a volume of a type the backend offers: %s, want available", v.Status)
	}
	if list := messagesAbout(t, s, alice, v.ID); len(list) != 0 {
		t.Errorf("a volume made leaves %d messages", len(list))
	}
}

// TestMessagesOfStorageFailures: what a storage host fails in the
// background leaves a message with Cinder's event for it, and a new
// request ID, the request being gone.
func TestMessagesOfStorageFailures(t *testing.T) {
	s, h := newService(t, map[string]int{"storage-1": 50})
	fail := func() {
		h.mu.Lock()
		h.fail = errors.New("disk on fire at /var/lib/trustack")
		h.mu.Unlock()
	}

	fail()
	broken, err := s.Create(ctx, alice, volume.CreateRequest{Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	if v := settled(t, s, broken.ID); v.Status != trustack.VolumeError {
		t.Fatalf("a volume its host failed to make: %s, want error", v.Status)
	}
	m := oneMessage(t, s, alice, broken.ID, "VOLUME_VOLUME_008_012")
	if got, want := m.UserMessage(), "create volume from backend storage:Driver failed to create the volume."; got != want {
		t.Errorf("got user message %q, want %q", got, want)
	}
	if len(m.RequestID) < 5 || m.RequestID[:4] != "req-" {
		t.Errorf("got request ID %q, want req-...", m.RequestID)
	}

	v, err := s.Create(ctx, alice, volume.CreateRequest{Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	settled(t, s, v.ID)
	fail()
	if err := s.Extend(ctx, alice, v.ID, 2, false); err != nil {
		t.Fatal(err)
	}
	s.Wait()
	m = oneMessage(t, s, alice, v.ID, "VOLUME_VOLUME_007_010")
	if got, want := m.UserMessage(), "extend volume:Volume Driver failed to extend volume."; got != want {
		t.Errorf("got user message %q, want %q", got, want)
	}
	if err := s.DeleteMessage(ctx, alice, m.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.ResetStatus(ctx, volume.Caller{Admin: true}, v.ID, trustack.VolumeAvailable); err != nil {
		t.Fatal(err)
	}

	fail()
	snap, err := s.CreateSnapshot(ctx, alice, volume.SnapshotRequest{VolumeID: v.ID})
	if err != nil {
		t.Fatal(err)
	}
	s.Wait()
	m = oneMessage(t, s, alice, snap.ID, "VOLUME_VOLUME_SNAPSHOT_009_013")
	if m.ResourceType != trustack.SnapshotResource || m.UserMessage() != "create snapshot:Snapshot failed to create." {
		t.Errorf("got %+v (%q)", m, m.UserMessage())
	}

	fail()
	if err := s.Delete(ctx, alice, broken.ID, false); err != nil {
		t.Fatal(err)
	}
	s.Wait()
	// As Cinder's, a failed deletion leaves no message: the volume's
	// status says it.
	for _, m := range messagesAbout(t, s, alice, broken.ID) {
		if !strings.HasPrefix(m.EventID, "VOLUME_VOLUME_008") {
			t.Errorf("a volume its host failed to delete has message %s", m.EventID)
		}
	}
	if list := messagesAbout(t, s, alice, v.ID); len(list) != 0 {
		t.Errorf("a volume made leaves %d messages", len(list))
	}
}

// TestMessagesExpire: a message lives for Cinder's TTL, 30 days; after
// that it is neither listed nor shown.
func TestMessagesExpire(t *testing.T) {
	clock := testclock.New(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC))
	s, _ := newServiceWith(t, map[string]int{"storage-1": 2}, volume.Options{Now: clock.Now})
	v, err := s.Create(ctx, alice, volume.CreateRequest{Size: 5}) // no room: error
	if err != nil {
		t.Fatal(err)
	}
	m := oneMessage(t, s, alice, v.ID, "VOLUME_VOLUME_001_003")
	clock.Add(30*24*time.Hour - time.Second)
	if _, err := s.Message(ctx, alice, m.ID); err != nil {
		t.Errorf("a second before its expiry: %v", err)
	}
	clock.Add(time.Second)
	if _, err := s.Message(ctx, alice, m.ID); trustack.ErrorReason(err) != "MessageNotFound" {
		t.Errorf("at its expiry: %v, want MessageNotFound", err)
	}
	if list := messagesAbout(t, s, volume.Caller{Admin: true}, ""); len(list) != 0 {
		t.Errorf("after expiry, %d messages are listed", len(list))
	}
}

// TestMessagesOfUploadsAndAttachments: a failed upload of a volume to an
// image, and an attachment in a mode the volume refuses, leave Cinder's
// messages.
func TestMessagesOfUploadsAndAttachments(t *testing.T) {
	images := &imageMaker{images: map[string]*trustack.Image{}}
	s, h := newServiceWith(t, map[string]int{"storage-1": 10}, volume.Options{Images: images})
	v, err := s.Create(ctx, alice, volume.CreateRequest{Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	settled(t, s, v.ID)
	h.mu.Lock()
	h.fail = errors.New("the image service is down")
	h.mu.Unlock()
	if _, err := s.UploadImage(ctx, alice, v.ID, volume.UploadRequest{ImageName: "lost"}); err != nil {
		t.Fatal(err)
	}
	s.Wait()
	m := oneMessage(t, s, alice, v.ID, "VOLUME_VOLUME_003_004")
	if got, want := m.UserMessage(), "copy volume to image:Failed to upload volume to image at backend."; got != want {
		t.Errorf("got user message %q, want %q", got, want)
	}
	if err := s.DeleteMessage(ctx, alice, m.ID); err != nil {
		t.Fatal(err)
	}

	if err := s.SetReadOnly(ctx, alice, v.ID, true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Attach(ctx, alice, v.ID, volume.AttachRequest{ServerID: "server-1", Host: "compute-1", Device: "/dev/vdb"}); trustack.ErrorReason(err) != "InvalidVolumeAttachMode" {
		t.Fatalf("a read-write attachment of a read-only volume: %v, want InvalidVolumeAttachMode", err)
	}
	m = oneMessage(t, s, alice, v.ID, "VOLUME_VOLUME_002_005")
	if got, want := m.UserMessage(), "attach volume:Volume's attach mode is invalid."; got != want {
		t.Errorf("got user message %q, want %q", got, want)
	}
}
