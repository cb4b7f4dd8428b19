package volume_test

import (
	"context"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/trustack/trustack"
	"github.com/trustack/trustack/volume"
	"github.com/trustack/trustack/wire"
)

// UploadVolume records what a storage host is asked to upload, once it
// has the volume.
func (h *hosts) UploadVolume(ctx context.Context, host, backend, id string, upload wire.Upload, format string) error {
	b, err := h.backend(host, backend)
	if err != nil {
		return err
	}
	if _, _, err := b.Locate(ctx, id); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.uploads = append(h.uploads, upload.ImageID+" "+format+" "+id)
	return nil
}

// imageMaker is the image service as far as volumes' images need it: the
// images it made, by ID, active once uploaded (recorded by hosts).
type imageMaker struct {
	mu     sync.Mutex
	images map[string]*trustack.Image
}

func (m *imageMaker) BootImage(_ context.Context, _, id string) (*trustack.Image, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if img, ok := m.images[id]; ok && img.Status == trustack.ImageActive {
		return img, nil
	}
	return nil, trustack.Errorf(trustack.ENOTFOUND, "no active image %s", id)
}

func (m *imageMaker) CreateSnapshot(_ context.Context, projectID string, img *trustack.Image) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	img.ID, img.Owner, img.Status = uuid.NewString(), projectID, trustack.ImageQueued
	m.images[img.ID] = img
	return nil
}

func (m *imageMaker) SnapshotFailed(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.images[id].Status = trustack.ImageKilled
	return nil
}

// TestUploadImage makes images of volumes, as os-volume_upload_image: the
// volume is uploading until its storage host has sent its data in the
// format asked, then available; a failed upload kills the image and
// leaves the volume as it was; a volume not available, or a format no
// image is made in, is refused with no image made.
func TestUploadImage(t *testing.T) {
	images := &imageMaker{images: map[string]*trustack.Image{}}
	s, h := newServiceWith(t, map[string]int{"storage-1": 10}, volume.Options{Images: images})
	v, err := s.Create(ctx, alice, volume.CreateRequest{Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	settled(t, s, v.ID)

	img, err := s.UploadImage(ctx, alice, v.ID, volume.UploadRequest{ImageName: "from-vol", DiskFormat: "qcow2"})
	if err != nil {
		t.Fatal(err)
	}
	if img.Owner != "p1" || img.Status != trustack.ImageQueued || img.MinDisk != 1 || img.Visibility != trustack.VisibilityPrivate {
		t.Errorf("the image made: %+v, want p1's, queued, private, of min disk 1", img)
	}
	if got := settled(t, s, v.ID); got.Status != trustack.VolumeAvailable || got.Reason != "" {
		t.Errorf("the volume after its upload: %s (%s), want available", got.Status, got.Reason)
	}
	if want := img.ID + " qcow2 " + v.ID; len(h.uploads) != 1 || h.uploads[0] != want {
		t.Errorf("uploads asked of the storage host: %v, want %q", h.uploads, want)
	}

	h.fail = trustack.Errorf(trustack.EUNAVAILABLE, "the image service is down")
	failed, err := s.UploadImage(ctx, alice, v.ID, volume.UploadRequest{ImageName: "lost"})
	if err != nil {
		t.Fatal(err)
	}
	if got := settled(t, s, v.ID); got.Status != trustack.VolumeAvailable || got.Reason == "" {
		t.Errorf("the volume after a failed upload: %s (%q), want available with the reason", got.Status, got.Reason)
	}
	if failed.Status != trustack.ImageKilled {
		t.Errorf("the image of a failed upload: %s, want killed", failed.Status)
	}

	for name, r := range map[string]volume.UploadRequest{
		"no name":           {DiskFormat: "raw"},
		"an unknown format": {ImageName: "x", DiskFormat: "iso"},
	} {
		if _, err := s.UploadImage(ctx, alice, v.ID, r); trustack.ErrorCode(err) != trustack.EINVALID {
			t.Errorf("%s: %v, want EINVALID", name, err)
		}
	}
	if err := s.Reserve(ctx, alice, v.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UploadImage(ctx, alice, v.ID, volume.UploadRequest{ImageName: "x"}); trustack.ErrorCode(err) != trustack.EINVALID {
		t.Errorf("an upload of a reserved volume: %v, want EINVALID", err)
	}
	if len(images.images) != 2 {
		t.Errorf("images made: %d, want the 2 of the uploads accepted", len(images.images))
	}
}
