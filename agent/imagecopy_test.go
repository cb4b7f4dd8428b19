package agent_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/trustack/trustack/wire"
)

// copyReports is a controller that passes storage hosts' reports of
// image copies on.
type copyReports chan wire.ImageCopied

func (r copyReports) ImageCopied(_ context.Context, e wire.ImageCopied) error {
	r <- e
	return nil
}

// TestImageCopyReports: a storage host making a volume from an image
// reports the bytes of the image it has copied while the download goes
// on, never fewer than before, and all of them before the volume is
// made; the volume has the image's data.
func TestImageCopyReports(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	data := bytes.Repeat([]byte{0x5c}, 2<<20)
	// The image service sends half of the image, then the rest once the
	// controller has heard of the half.
	half := make(chan struct{})
	release := sync.OnceFunc(func() { close(half) })
	images := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.Write(data[:len(data)/2])
		w.(http.Flusher).Flush()
		select {
		case <-half:
			w.Write(data[len(data)/2:])
		case <-r.Context().Done():
		}
	}))
	defer images.Close()
	defer release()
	reports := make(copyReports, 100)
	controller, backend, _ := storageHost(t, ctx, reports)

	const id = "5d6e7f80-9a0b-4c1d-8e2f-3a4b5c6d7e8f"
	image := wire.ImageRef{ID: "img-1", Size: int64(len(data)), DiskFormat: "raw", ContainerFormat: "bare", URL: images.URL}
	made := make(chan error, 1)
	go func() {
		made <- wire.NewHosts(controller).CreateVolumeFromImage(ctx, "storage-1", "file", id, 1, image, "")
	}()
	var got []int64
	record := func(e wire.ImageCopied) {
		if e.Host != "storage-1" || e.VolumeID != id {
			t.Errorf("a report of host %s and volume %s, want storage-1 and %s", e.Host, e.VolumeID, id)
		}
		got = append(got, e.Bytes)
	}
	for partial := false; !partial; {
		select {
		case e := <-reports:
			record(e)
			partial = e.Bytes > 0 && e.Bytes < int64(len(data))
		case err := <-made:
			t.Fatalf("the volume was made (%v) before any report of part of its image; reports %v", err, got)
		case <-ctx.Done():
			t.Fatalf("no report of part of the image; reports %v", got)
		}
	}
	release()
	if err := <-made; err != nil {
		t.Fatal(err)
	}
	for len(reports) > 0 {
		record(<-reports)
	}
	if !slices.IsSorted(got) || got[len(got)-1] != int64(len(data)) {
		t.Errorf("reports of bytes copied %v, want them rising to %d", got, len(data))
	}
	path, format, err := backend.Locate(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("qemu-io", "-f", format, "-c", "read -P 0x5c 0 2M", path).CombinedOutput(); err != nil {
		t.Errorf("the volume lacks the image's data: %v\n%s", err, out)
	}
}
