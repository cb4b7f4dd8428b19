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
	"strings"
	"syscall"

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

// Expect is what the data must be: its size in bytes and its hex
// digests; zero values are not checked.
type Expect struct {
	Size   int64
	MD5    string
	SHA256 string
}

// ErrChecksumMismatch is in the chain of the error of an upload whose
// data does not have an expected digest; the image is then killed.
var ErrChecksumMismatch = errors.New("checksum mismatch")

// DataStore keeps the data of images, by image ID: a directory of files
// (OpenFiles) or containers of an object store (Objects). The Service
// streams uploads through its hashers and checks into a DataStore, which
// only stores. Its methods are safe for concurrent use.
type DataStore interface {
	// create starts storing the data of image id, of size bytes (0 if
	// unknown).
	create(ctx context.Context, id string, size int64) (dataWriter, error)
	// open returns the data of image id, reading with ctx; an error
	// with fs.ErrNotExist in its chain if there is none.
	open(ctx context.Context, id string) (io.ReadSeekCloser, error)
	// remove deletes the data of image id, if any.
	remove(ctx context.Context, id string) error
}

// dataWriter takes the data of one image as it streams. Nothing written
// is the image's data until commit succeeds; abort discards it. Exactly
// one of them is called, once; a failed commit leaves nothing either.
type dataWriter interface {
	io.Writer
	commit() error
	abort()
}

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

// put stores the data of image id from r, hashing it as it streams into
// the data store, which keeps it only if the data is complete, within
// the size cap and has the expected size and digests.
func (s *Service) put(ctx context.Context, id, diskFormat string, r io.Reader, want Expect) (written, error) {
	w, err := s.data.create(ctx, id, want.Size)
	if err != nil {
		return written{}, err
	}
	out, err := s.check(ctx, w, diskFormat, r, want)
	if err != nil {
		w.abort()
		return written{}, err
	}
	if err := w.commit(); err != nil {
		return written{}, err
	}
	return out, nil
}

// check copies r to w through the hashers and checks the data against
// the size cap and want.
func (s *Service) check(ctx context.Context, w io.Writer, diskFormat string, r io.Reader, want Expect) (written, error) {
	md5h, sha512h := md5.New(), sha512.New()
	hashes := []io.Writer{w, md5h, sha512h}
	var sha256h hash.Hash
	if want.SHA256 != "" {
		sha256h = sha256.New()
		hashes = append(hashes, sha256h)
	}
	head := &headBuffer{}
	hashes = append(hashes, head)
	sizeCap := s.opts.SizeCap
	n, err := io.Copy(io.MultiWriter(hashes...), io.LimitReader(sourceReader{contextReader{ctx, r}}, sizeCap+1))
	var rerr *readError
	switch {
	case errors.As(err, &rerr):
		return written{}, trustack.Errorf(trustack.EINVALID, "The image data could not be read: %v.", rerr.err)
	case errors.Is(err, syscall.ENOSPC):
		return written{}, limitExceeded("Image storage media is full.")
	case err != nil:
		return written{}, fmt.Errorf("write image data: %w", err)
	case n > sizeCap:
		return written{}, limitExceeded("The incoming image is too large: the limit is %d bytes.", sizeCap)
	case want.Size > 0 && n != want.Size:
		return written{}, trustack.Errorf(trustack.EINVALID, "The image data has %d bytes, not the %d announced.", n, want.Size)
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
	return out, nil
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

// Upload stores the data of a queued image the caller owns, from r, and
// makes the image active. While it streams the image is saving, and a
// second upload gets ECONFLICT. Data over the size cap gives
// ErrLimitExceeded; data that cannot be read (a client gone), or not of
// the size expected, gives EINVALID; either way the image is queued
// again, with no data, and the upload may be retried. Data without an expected digest (from want, or
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
	w, err := s.put(ctx, id, img.DiskFormat, r, want)
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
		return nil, errors.Join(err, s.data.remove(after, id))
	}
	return img, nil
}

// Download returns an image the caller may see and its data, read with
// ctx, or nil data if it has none yet. A deactivated image gives
// EFORBIDDEN to all but admins. The data fails to read, rather than
// ends early, if the data store fails. The caller closes it.
func (s *Service) Download(ctx context.Context, c Caller, id string) (*trustack.Image, io.ReadSeekCloser, error) {
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
	f, err := s.data.open(ctx, id)
	if err != nil {
		return nil, nil, fmt.Errorf("open data of %s image %s: %w", img.Status, id, err)
	}
	return img, f, nil
}
