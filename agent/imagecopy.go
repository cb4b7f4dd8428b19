package agent

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/trustack/trustack/internal/imagefetch"
	"github.com/trustack/trustack/wire"
)

// A storage host tells the controllers how much of an image it has
// copied for a volume it makes from one, as Cinder's API has no way to
// say: the volume's user watches the copy (trustack volume create
// --image --wait draws it).

// copyReportInterval is how often at most a storage host reports the
// copy of a volume's image.
const copyReportInterval = time.Second

// downloadImage downloads the image of a volume being made into path,
// as imagefetch.Download does, and reports the bytes it has copied to
// the controllers: at the start, every copyReportInterval while the
// count changes, and at the end. The download never waits for a report,
// but its end waits for the last, so that the whole count is recorded
// before the volume is; a report that fails is logged, and the copy goes
// on.
func (a *Agent) downloadImage(ctx context.Context, volumeID string, image *wire.ImageRef, token, path string) error {
	var copied byteCount
	stop := make(chan struct{})
	reported := make(chan struct{})
	go func() {
		defer close(reported)
		tick := time.NewTicker(copyReportInterval)
		defer tick.Stop()
		sent := int64(-1)
		for {
			if n := copied.Load(); n != sent {
				sent = n
				a.reportCopy(ctx, volumeID, n)
			}
			select {
			case <-tick.C:
			case <-stop:
				if n := copied.Load(); n != sent {
					a.reportCopy(ctx, volumeID, n)
				}
				return
			}
		}
	}()
	err := imagefetch.DownloadCounting(ctx, a.cfg.HTTPClient, image, token, path, &copied)
	close(stop)
	<-reported
	return err
}

// reportCopy tells a controller that n bytes of a volume's image are
// copied, and waits for it to record them, for a few intervals at most.
func (a *Agent) reportCopy(ctx context.Context, volumeID string, n int64) {
	ctx, cancel := context.WithTimeout(ctx, 5*copyReportInterval)
	defer cancel()
	if err := a.controllers.ImageCopied(ctx, wire.ImageCopied{Host: a.cfg.Name, VolumeID: volumeID, Bytes: n}); err != nil {
		a.cfg.Log.Warn("report the copy of a volume's image", "volume", volumeID, "bytes", n, "error", err)
	}
}

// byteCount counts the bytes written to it; it is safe for concurrent
// use, and its writes never fail.
type byteCount struct{ atomic.Int64 }

func (c *byteCount) Write(b []byte) (int, error) {
	c.Add(int64(len(b)))
	return len(b), nil
}
