// Package file keeps volumes as files in a directory, the embedded
// default backend of `trustack up`: qcow2 images (thin: a volume takes
// the space its data does) or raw ones (sparse files), each named
// volume-ID.FORMAT. The format is in the name, never read from the
// file, which a guest writes: a raw volume whose guest wrote a qcow2
// header stays raw. A file is made under a temporary name and renamed
// once whole, so that a creation cut short leaves no volume behind, and
// New removes what such a creation left. Snapshots are qcow2 backing
// files (see Snapshot).
package file

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/agent"
	"github.com/trustack/trustack/internal/qemuimg"
	"golang.org/x/sys/unix"
)

var _ agent.VolumeBackend = (*Backend)(nil)

// Formats the backend keeps volumes in.
const (
	QCOW2 = "qcow2"
	Raw   = "raw"
)

const (
	prefix  = "volume-"
	partial = ".partial" // the suffix of a file being made
	gib     = 1 << 30
)

// validID is what a volume's ID may be: a file name, and no path.
var validID = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z-]*$`)

// Backend is a directory of volume files.
type Backend struct {
	dir, format string
}

// New opens the backend in dir, made if missing, keeping new volumes in
// format (QCOW2 if ""), and removes the files of creations cut short.
func New(dir, format string) (*Backend, error) {
	switch format {
	case "":
		format = QCOW2
	case QCOW2, Raw:
	default:
		return nil, fmt.Errorf("file volumes: unknown format %q: want %s or %s", format, QCOW2, Raw)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("file volumes: %w", err)
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, prefix+"*"+partial))
	for _, f := range leftovers {
		if err := os.Remove(f); err != nil {
			return nil, fmt.Errorf("file volumes: remove an unfinished volume: %w", err)
		}
	}
	b := &Backend{dir: dir, format: format}
	if err := b.unfinishedSnapshots(); err != nil {
		return nil, fmt.Errorf("file volumes: remove an unfinished snapshot: %w", err)
	}
	return b, nil
}

// find returns the file of a volume and its format; ENOTFOUND if there
// is none.
func (b *Backend) find(id string) (path, format string, err error) {
	return b.lookup(prefix, "volume", id)
}

// lookup returns the file named kindPrefix+id in either format, and the
// format; ENOTFOUND if there is none.
func (b *Backend) lookup(kindPrefix, kind, id string) (path, format string, err error) {
	if !validID.MatchString(id) {
		return "", "", trustack.Errorf(trustack.EINVALID, "file volumes: bad %s ID %q", kind, id)
	}
	for _, format := range []string{QCOW2, Raw} {
		path := filepath.Join(b.dir, kindPrefix+id+"."+format)
		if _, err := os.Stat(path); err == nil {
			return path, format, nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", "", fmt.Errorf("file volumes: %w", err)
		}
	}
	return "", "", trustack.Errorf(trustack.ENOTFOUND, "file volumes: no %s %s", kind, id)
}

// Capacity returns the GiB of the directory's file system, and those
// free.
func (b *Backend) Capacity(context.Context) (total, free int, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(b.dir, &st); err != nil {
		return 0, 0, fmt.Errorf("file volumes: %w", err)
	}
	return int(st.Blocks * uint64(st.Bsize) / gib), int(st.Bavail * uint64(st.Bsize) / gib), nil
}

// Create makes an empty volume of size GiB in the backend's format.
func (b *Backend) Create(ctx context.Context, id string, size int) error {
	if size < 1 {
		return trustack.Errorf(trustack.EINVALID, "file volumes: volume %s: size %d GiB, want at least 1", id, size)
	}
	path, format, err := b.find(id)
	switch code := trustack.ErrorCode(err); {
	case code == trustack.ENOTFOUND:
	case err != nil:
		return err
	default:
		have, err := volumeSize(ctx, path, format)
		if err == nil && have != size {
			err = trustack.Errorf(trustack.ECONFLICT, "file volumes: volume %s is there already, of %d GiB", id, have)
		}
		return err
	}
	path = filepath.Join(b.dir, prefix+id+"."+b.format)
	tmp := path + partial
	if b.format == Raw {
		err = sparse(tmp, int64(size)*gib)
	} else {
		err = qemuimg.Create(ctx, tmp, QCOW2, int64(size)*gib, "", "")
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("file volumes: create volume %s: %w", id, err)
	}
	return nil
}

// CreateFromImage makes a volume of size GiB in the backend's format with
// an image's data, converted from the image's format.
func (b *Backend) CreateFromImage(ctx context.Context, id string, size int, image, format string) error {
	if _, _, err := b.find(id); err == nil {
		return b.Create(ctx, id, size) // there already: checks its size
	} else if trustack.ErrorCode(err) != trustack.ENOTFOUND {
		return err
	}
	virtual, err := qemuimg.VirtualSize(ctx, image, format)
	if err != nil {
		return trustack.Errorf(trustack.EINVALID, "file volumes: the image is not a valid %s disk: %v", format, err)
	}
	if virtual > int64(size)*gib {
		return trustack.Errorf(trustack.EINVALID, "file volumes: the image's disk (%d bytes) is larger than volume %s of %d GiB", virtual, id, size)
	}
	path := filepath.Join(b.dir, prefix+id+"."+b.format)
	tmp := path + partial
	err = qemuimg.Convert(ctx, image, format, tmp, b.format)
	if err == nil && b.format == Raw {
		err = os.Truncate(tmp, int64(size)*gib)
	} else if err == nil {
		err = qemuimg.Resize(ctx, tmp, b.format, int64(size)*gib)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("file volumes: create volume %s from an image: %w", id, err)
	}
	return nil
}

// sparse makes a file of size bytes that takes no space until written.
func sparse(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Extend grows a volume to size GiB.
func (b *Backend) Extend(ctx context.Context, id string, size int) error {
	path, format, err := b.find(id)
	if err != nil {
		return err
	}
	have, err := volumeSize(ctx, path, format)
	switch {
	case err != nil:
		return err
	case size < have:
		return trustack.Errorf(trustack.EINVALID, "file volumes: volume %s has %d GiB, more than %d", id, have, size)
	case size == have:
		return nil
	case format == Raw:
		err = os.Truncate(path, int64(size)*gib)
	default:
		err = qemuimg.Resize(ctx, path, format, int64(size)*gib)
	}
	if err != nil {
		return fmt.Errorf("file volumes: extend volume %s: %w", id, err)
	}
	return nil
}

// Delete removes a volume.
func (b *Backend) Delete(_ context.Context, id string) error {
	path, _, err := b.find(id)
	if trustack.ErrorCode(err) == trustack.ENOTFOUND {
		return nil
	}
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("file volumes: delete volume %s: %w", id, err)
	}
	return nil
}

// Volumes returns the volumes in the directory, with their sizes.
func (b *Backend) Volumes(ctx context.Context) (map[string]int, error) {
	entries, err := os.ReadDir(b.dir)
	if err != nil {
		return nil, fmt.Errorf("file volumes: %w", err)
	}
	out := map[string]int{}
	for _, e := range entries {
		name, ok := strings.CutPrefix(e.Name(), prefix)
		id, format, dotted := strings.Cut(name, ".")
		if !ok || !dotted || (format != QCOW2 && format != Raw) || !validID.MatchString(id) {
			continue // not a volume, or one being made
		}
		size, err := volumeSize(ctx, filepath.Join(b.dir, e.Name()), format)
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		out[id] = size
	}
	return out, nil
}

// Locate returns a volume's file and its format.
func (b *Backend) Locate(_ context.Context, id string) (path, format string, err error) {
	return b.find(id)
}

// volumeSize returns the size in GiB of the volume file at path, of the
// format.
func volumeSize(ctx context.Context, path, format string) (int, error) {
	if format == Raw {
		st, err := os.Stat(path)
		if err != nil {
			return 0, err
		}
		return int(st.Size() / gib), nil
	}
	bytes, err := qemuimg.VirtualSize(ctx, path, format)
	if err != nil {
		return 0, fmt.Errorf("file volumes: %w", err)
	}
	return int(bytes / gib), nil
}
