package images

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/trustack/trustack"
)

// HashAlgo is the algorithm of os_hash_value, Glance's default.
const HashAlgo = "sha512"

// Properties in which openstacksdk records the hashes of the data it is
// about to upload; a non-empty one is checked against the data.
const (
	PropertyMD5    = "owner_specified.openstack.md5"
	PropertySHA256 = "owner_specified.openstack.sha256"
)

// Expect holds hex digests the data must have; empty ones are not
// checked.
type Expect struct {
	MD5    string
	SHA256 string
}

// ErrChecksumMismatch is in the chain of the error of an upload whose
// data does not have an expected digest; the image is then killed.
var ErrChecksumMismatch = errors.New("checksum mismatch")

// files keeps image data as files named by image ID in a directory.
// Uploads go to its tmp subdirectory first and are renamed into place
// only when complete and synced, so a file in the directory is always a
// whole upload.
type files struct {
	dir, tmp string
	sizeCap  int64
}

// staleUpload is how long a temporary upload file may go unwritten before
// it is taken for the leftover of a crash: an upload in progress writes
// all the time.
const staleUpload = time.Hour

func openFiles(dir string, sizeCap int64, now time.Time) (*files, error) {
	f := &files{dir: dir, tmp: filepath.Join(dir, ".tmp"), sizeCap: sizeCap}
	if err := os.MkdirAll(f.tmp, 0o750); err != nil {
		return nil, fmt.Errorf("create image directory: %w", err)
	}
	// Uploads cut short by a crash leave their temporary files behind.
	// Fresh ones may be uploads in progress on another controller sharing
	// the directory.
	left, err := os.ReadDir(f.tmp)
	if err != nil {
		return nil, fmt.Errorf("read image upload directory: %w", err)
	}
	for _, e := range left {
		info, err := e.Info()
		if err != nil || info.ModTime().After(now.Add(-staleUpload)) {
			continue
		}
		if err := os.Remove(filepath.Join(f.tmp, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("remove upload leftover: %w", err)
		}
	}
	return f, nil
}

func (f *files) path(id string) string { return filepath.Join(f.dir, id) }

// written describes stored data.
type written struct {
	size, virtualSize int64
	md5, sha512       string
}

// readError marks a failure to read the data, as opposed to writing it.
type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// sourceReader reports its read errors as readErrors.
type sourceReader struct{ r io.Reader }

func (s sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		err = &readError{err}
	}
	return n, err
}

// headBuffer keeps the first bytes written to it, for format headers.
type headBuffer struct{ b []byte }

const headSize = 512

func (h *headBuffer) Write(p []byte) (int, error) {
	if room := headSize - len(h.b); room > 0 {
		h.b = append(h.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// put stores the data of image id from r, hashing it as it streams: to a
// temporary file, synced and renamed into place only if the data is
// complete, within the size cap and has the expected digests.
func (f *files) put(ctx context.Context, id, diskFormat string, r io.Reader, want Expect) (written, error) {
	tmp, err := os.CreateTemp(f.tmp, id+"-*")
	if err != nil {
		return written{}, fmt.Errorf("create upload file: %w", err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	md5h, sha512h := md5.New(), sha512.New()
	hashes := []io.Writer{tmp, md5h, sha512h}
	var sha256h hash.Hash
	if want.SHA256 != "" {
		sha256h = sha256.New()
		hashes = append(hashes, sha256h)
	}
	head := &headBuffer{}
	hashes = append(hashes, head)
	n, err := io.Copy(io.MultiWriter(hashes...), io.LimitReader(sourceReader{contextReader{ctx, r}}, f.sizeCap+1))
	var rerr *readError
	switch {
	case errors.As(err, &rerr):
		return written{}, trustack.Errorf(trustack.EINVALID, "The image data could not be read: %v.", rerr.err)
	case errors.Is(err, syscall.ENOSPC):
		return written{}, limitExceeded("Image storage media is full.")
	case err != nil:
		return written{}, fmt.Errorf("write image data: %w", err)
	case n > f.sizeCap:
		return written{}, limitExceeded("The incoming image is too large: the limit is %d bytes.", f.sizeCap)
	}
	out := written{size: n, md5: hex.EncodeToString(md5h.Sum(nil)), sha512: hex.EncodeToString(sha512h.Sum(nil))}
	if want.MD5 != "" && !strings.EqualFold(want.MD5, out.md5) {
		return written{}, mismatch("MD5", want.MD5, out.md5)
	}
	if sha256h != nil {
		if got := hex.EncodeToString(sha256h.Sum(nil)); !strings.EqualFold(want.SHA256, got) {
			return written{}, mismatch("SHA-256", want.SHA256, got)
		}
	}
	out.virtualSize = virtualSize(diskFormat, n, head.b)
	if err := tmp.Sync(); err != nil {
		return written{}, fmt.Errorf("sync image data: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return written{}, fmt.Errorf("close image data: %w", err)
	}
	if err := os.Rename(tmp.Name(), f.path(id)); err != nil {
		return written{}, fmt.Errorf("store image data: %w", err)
	}
	done = true
	return out, syncDir(f.dir)
}

func mismatch(algo, want, got string) error {
	return fmt.Errorf("%w%w", trustack.Errorf(trustack.EINVALID,
		"The %s checksum of the uploaded data, %s, is not the expected %s: the upload is refused and the image killed.", algo, got, want), ErrChecksumMismatch)
}

// contextReader stops reading once ctx is done.
type contextReader struct {
	ctx context.Context
	r   io.Reader
}

func (c contextReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync image directory: %w", err)
	}
	return nil
}

// virtualSize returns the size of the disk the data describes, when the
// format says so plainly: the data itself for raw, the header's size for
// qcow2; 0 if unknown.
func virtualSize(diskFormat string, size int64, head []byte) int64 {
	switch diskFormat {
	case "raw":
		return size
	case "qcow2":
		if len(head) >= 32 && string(head[:4]) == "QFI\xfb" {
			return int64(binary.BigEndian.Uint64(head[24:32]))
		}
	}
	return 0
}

// open returns the data of image id; an error with fs.ErrNotExist in its
// chain if there is none.
func (f *files) open(id string) (*os.File, error) {
	return os.Open(f.path(id))
}

// remove deletes the data of image id, if any.
func (f *files) remove(id string) error {
	if err := os.Remove(f.path(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete image data: %w", err)
	}
	return nil
}

// Upload stores the data of a queued image the caller owns, from r, and
// makes the image active. While it streams the image is saving, and a
// second upload gets ECONFLICT. Data over the size cap gives
// ErrLimitExceeded; data that cannot be read (a client gone) gives
// EINVALID; either way the image is queued again, with no data, and the
// upload may be retried. Data without an expected digest (from want, or
// the image's owner_specified.openstack properties) kills the image, as
// Glance kills images whose data fails verification: it can then only be
// deleted. Formats must be set first.
func (s *Service) Upload(ctx context.Context, c Caller, id string, r io.Reader, want Expect) (*trustack.Image, error) {
	if _, err := s.mutable(ctx, c, id); err != nil {
		return nil, err
	}
	img, err := s.store.UpdateImage(ctx, id, func(img *trustack.Image) error {
		if img.Status != trustack.ImageQueued {
			if img.Status == trustack.ImageDeleted {
				return notFound(id)
			}
			return trustack.Errorf(trustack.ECONFLICT, "Image status transition from %s to saving is not allowed.", img.Status)
		}
		var missing []string
		if img.DiskFormat == "" {
			missing = append(missing, "disk_format")
		}
		if img.ContainerFormat == "" {
			missing = append(missing, "container_format")
		}
		switch len(missing) {
		case 1:
			return trustack.Errorf(trustack.EINVALID, "Property %s must be set prior to saving data.", missing[0])
		case 2:
			return trustack.Errorf(trustack.EINVALID, "Properties %s must be set prior to saving data.", strings.Join(missing, ", "))
		}
		img.Status = trustack.ImageSaving
		img.UpdatedAt = s.now()
		return nil
	})
	if err != nil {
		return nil, err
	}
	if want.MD5 == "" {
		want.MD5 = img.Properties[PropertyMD5]
	}
	if want.SHA256 == "" {
		want.SHA256 = img.Properties[PropertySHA256]
	}
	// The request's context ends with the client; the bookkeeping after a
	// failed upload must not.
	after := context.WithoutCancel(ctx)
	w, err := s.files.put(ctx, id, img.DiskFormat, r, want)
	if err != nil {
		status := trustack.ImageQueued
		if errors.Is(err, ErrChecksumMismatch) {
			status = trustack.ImageKilled
		}
		_, restoreErr := s.store.UpdateImage(after, id, func(img *trustack.Image) error {
			if img.Status == trustack.ImageSaving {
				img.Status = status
				img.UpdatedAt = s.now()
			}
			return nil
		})
		if restoreErr != nil && trustack.ErrorCode(restoreErr) != trustack.ENOTFOUND {
			err = errors.Join(err, fmt.Errorf("restore image %s after a failed upload: %w", id, restoreErr))
		}
		return nil, err
	}
	img, err = s.store.UpdateImage(after, id, func(img *trustack.Image) error {
		if img.Status != trustack.ImageSaving {
			return trustack.Errorf(trustack.ECONFLICT, "Image %s was deleted during the upload.", id)
		}
		img.Status = trustack.ImageActive
		img.Size, img.VirtualSize = w.size, w.virtualSize
		img.Checksum, img.HashAlgo, img.HashValue = w.md5, HashAlgo, w.sha512
		img.UpdatedAt = s.now()
		return nil
	})
	if err != nil {
		if trustack.ErrorCode(err) == trustack.ENOTFOUND {
			err = trustack.Errorf(trustack.ECONFLICT, "Image %s was deleted during the upload.", id)
		}
		return nil, errors.Join(err, s.files.remove(id))
	}
	return img, nil
}

// Download returns an image the caller may see and its data, or a nil
// file if it has none yet. A deactivated image gives EFORBIDDEN to all but
// admins. The caller closes the file.
func (s *Service) Download(ctx context.Context, c Caller, id string) (*trustack.Image, *os.File, error) {
	img, err := s.Image(ctx, c, id)
	if err != nil {
		return nil, nil, err
	}
	switch img.Status {
	case trustack.ImageDeactivated:
		if !c.Admin {
			return nil, nil, trustack.Errorf(trustack.EFORBIDDEN, "The requested image has been deactivated. Image data download is forbidden.")
		}
	case trustack.ImageActive:
	default:
		return img, nil, nil
	}
	f, err := s.files.open(id)
	if err != nil {
		return nil, nil, fmt.Errorf("open data of %s image %s: %w", img.Status, id, err)
	}
	return img, f, nil
}
