package qemu

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"sync"

	"github.com/trustack/trustack/internal/imagefetch"
	"github.com/trustack/trustack/wire"
)

// imageCache keeps the images servers boot from, once per host, each
// checked against its checksum before it is used. Files are named by image
// ID, which never changes its data in the image service.
type imageCache struct {
	dir    string
	client *http.Client

	mu      sync.Mutex
	loading map[string]*sync.Mutex // image ID → held while it downloads
}

// path returns the local copy of the image, downloading it first if the
// cache lacks it. Concurrent calls for one image download it once.
func (c *imageCache) path(ctx context.Context, img *wire.ImageRef, token string) (string, error) {
	c.mu.Lock()
	l := c.loading[img.ID]
	if l == nil {
		l = new(sync.Mutex)
		c.loading[img.ID] = l
	}
	c.mu.Unlock()
	l.Lock()
	defer l.Unlock()
	path := filepath.Join(c.dir, img.ID)
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := imagefetch.Download(ctx, c.client, img, token, path); err != nil {
		return "", err
	}
	return path, nil
}
