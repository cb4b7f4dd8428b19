// Package imagefetch downloads images from the image service as hosts
// do, for the guests they boot and the volumes they make: with a token,
// and checked against the image's size and checksums before anything
// uses them.
package imagefetch

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

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/wire"
)

// Download fetches an image from the image service (img.URL, with token
// in X-Auth-Token) into path, through a temporary file in path's
// directory renamed into place only once the data has the image's size
// and matches its checksums; EUNAVAILABLE if it does not.
func Download(ctx context.Context, client *http.Client, img *wire.ImageRef, token, path string) error {
	return DownloadCounting(ctx, client, img, token, path, nil)
}

// DownloadCounting is Download that also writes the image's data to
// progress, if it is not nil, as it arrives: to a counter of the bytes
// copied so far, whose error would end the download.
func DownloadCounting(ctx context.Context, client *http.Client, img *wire.ImageRef, token, path string, progress io.Writer) error {
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
	resp, err := client.Do(req)
	if err != nil {
		return trustack.Errorf(trustack.EUNAVAILABLE, "download image %s: %v", img.ID, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return trustack.Errorf(trustack.EUNAVAILABLE, "download image %s: the image service answered %s", img.ID, resp.Status)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+img.ID+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	sums := checksums(img)
	writers := []io.Writer{tmp}
	if progress != nil {
		writers = append(writers, progress)
	}
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
