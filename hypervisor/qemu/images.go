package qemu

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"hash"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"

	"github.com/trustack/trustack"
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
	if err := c.download(ctx, img, token, path); err != nil {
		return "", err
	}
	return path, nil
}

// download fetches the image into path, through a temporary file renamed
// into place only once the data matches the image's checksums.
func (c *imageCache) download(ctx context.Context, img *wire.ImageRef, token, path string) error {
	if img.URL == "" {
		return trustack.Errorf(trustack.EINVALID, "image %s has no download URL", img.ID)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, img.URL, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return trustack.Errorf(trustack.EUNAVAILABLE, "download image %s: %v", img.ID, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return trustack.Errorf(trustack.EUNAVAILABLE, "download image %s: the image service answered %s", img.ID, resp.Status)
	}
	if err := os.MkdirAll(c.dir, 0o750); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(c.dir, "."+img.ID+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	sums := checksums(img)
	writers := []io.Writer{tmp}
	for _, s := range sums {
		writers = append(writers, s.h)
	}
	n, err := io.Copy(io.MultiWriter(writers...), resp.Body)
	if err != nil {
		return trustack.Errorf(trustack.EUNAVAILABLE, "download image %s: %v", img.ID, err)
	}
	if img.Size > 0 && n != img.Size {
		return trustack.Errorf(trustack.EUNAVAILABLE, "download image %s: got %d bytes, want %d", img.ID, n, img.Size)
	}
	for _, s := range sums {
		if got := hex.EncodeToString(s.h.Sum(nil)); got != s.want {
			return trustack.Errorf(trustack.EUNAVAILABLE, "download image %s: %s %s does not match the image's %s", img.ID, s.name, got, s.want)
		}
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

type checksum struct {
	name string
	h    hash.Hash
	want string
}

// checksums are the hashes the image service recorded of the image: its
// md5 checksum and its multihash (os_hash_algo, os_hash_value).
func checksums(img *wire.ImageRef) []checksum {
	var sums []checksum
	if img.Checksum != "" {
		sums = append(sums, checksum{"md5", md5.New(), img.Checksum})
	}
	if img.HashValue != "" {
		switch img.HashAlgo {
		case "sha512":
			sums = append(sums, checksum{"sha512", sha512.New(), img.HashValue})
		case "sha256":
			sums = append(sums, checksum{"sha256", sha256.New(), img.HashValue})
		}
	}
	return sums
}
