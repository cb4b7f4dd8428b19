package volume_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/volume"
)

// servers stands for the compute service: it records the volumes it is
// told grew, and fails if told to.
type servers struct {
	mu   sync.Mutex
	told []trustack.Volume
	err  error
}

func (s *servers) VolumeExtended(_ context.Context, v *trustack.Volume) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.told = append(s.told, *v)
	return s.err
}

// TestExtendInUse: a volume in use grows only when the caller may extend
// one (Cinder's 3.42); its storage host grows it and its server is told,
// at the new size, and it stays in use. A server that fails to see it
// leaves the volume grown (as Cinder's), since its storage has grown.
func TestExtendInUse(t *testing.T) {
	s, h := newService(t, map[string]int{"storage-1": 50})
	sv := &servers{}
	s.SetServers(sv)
	v, err := s.Create(ctx, alice, volume.CreateRequest{Name: "vol1", Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	settled(t, s, v.ID)
	if err := s.Reserve(ctx, alice, v.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Extend(ctx, alice, v.ID, 2, true); trustack.ErrorReason(err) != "InvalidVolume" {
		t.Errorf("extending a reserved volume: %v, want InvalidVolume", err)
	}
	if _, err := s.Attach(ctx, alice, v.ID, volume.AttachRequest{ServerID: "server-1", Host: "compute-1", Device: "/dev/vdc"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Extend(ctx, alice, v.ID, 2, false); trustack.ErrorReason(err) != "InvalidVolume" {
		t.Errorf("extending a volume in use before 3.42: %v, want InvalidVolume", err)
	}
	if got := settled(t, s, v.ID); got.Size != 1 || got.Status != trustack.VolumeInUse || len(sv.told) != 0 {
		t.Errorf("after a refused extension: %d GiB, %s, servers told %d times", got.Size, got.Status, len(sv.told))
	}

	if err := s.Extend(ctx, alice, v.ID, 2, true); err != nil {
		t.Fatal(err)
	}
	got := settled(t, s, v.ID)
	if got.Size != 2 || got.Status != trustack.VolumeInUse || sizeOn(t, h, "storage-1", v.ID) != 2 {
		t.Errorf("after extending in use: %d GiB, %s (storage host: %d GiB); want 2, in-use, 2", got.Size, got.Status, sizeOn(t, h, "storage-1", v.ID))
	}
	if len(sv.told) != 1 || sv.told[0].Size != 2 || sv.told[0].Attachment.ServerID != "server-1" {
		t.Errorf("the compute service was told %+v, want server-1's volume at 2 GiB once", sv.told)
	}

	sv.err = errors.New("the guest is gone")
	if err := s.Extend(ctx, alice, v.ID, 3, true); err != nil {
		t.Fatal(err)
	}
	if got := settled(t, s, v.ID); got.Size != 3 || got.Status != trustack.VolumeInUse {
		t.Errorf("extended while its server failed to see it: %d GiB, %s; want 3, in-use", got.Size, got.Status)
	}
}
