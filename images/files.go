package images

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// files keeps image data as files named by image ID in a directory.
// Uploads go to its tmp subdirectory first and are renamed into place
// only when complete and synced, so a file in the directory is always a
// whole upload.
type files struct {
	dir, tmp string
}

var _ DataStore = (*files)(nil)

// staleUpload is how long a temporary upload file may go unwritten before
// it is taken for the leftover of a crash: an upload in progress writes
// all the time.
const staleUpload = time.Hour

// OpenFiles returns a DataStore that keeps image data as files in dir,
// which it creates if need be. It removes the leftovers of uploads cut
// short by a crash: temporary files unwritten for an hour before now
// (fresher ones may be uploads of another controller sharing the
// directory). Controllers sharing a database must share the directory.
func OpenFiles(dir string, now time.Time) (DataStore, error) {
	f := &files{dir: dir, tmp: filepath.Join(dir, ".tmp")}
	if err := os.MkdirAll(f.tmp, 0o750); err != nil {
		return nil, fmt.Errorf("create image directory: %w", err)
	}
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

// create starts an upload to a temporary file.
func (f *files) create(_ context.Context, id string, _ int64) (dataWriter, error) {
	tmp, err := os.CreateTemp(f.tmp, id+"-*")
	if err != nil {
		return nil, fmt.Errorf("create upload file: %w", err)
	}
	return &fileUpload{files: f, id: id, File: tmp}, nil
}

// fileUpload is an upload to a temporary file, renamed into place on
// commit.
type fileUpload struct {
	*os.File
	files *files
	id    string
}

func (u *fileUpload) commit() error {
	if err := u.Sync(); err != nil {
		u.abort()
		return fmt.Errorf("sync image data: %w", err)
	}
	if err := u.Close(); err != nil {
		os.Remove(u.Name())
		return fmt.Errorf("close image data: %w", err)
	}
	if err := os.Rename(u.Name(), u.files.path(u.id)); err != nil {
		os.Remove(u.Name())
		return fmt.Errorf("store image data: %w", err)
	}
	return syncDir(u.files.dir)
}

func (u *fileUpload) abort() {
	u.Close()
	os.Remove(u.Name())
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

func (f *files) open(_ context.Context, id string) (io.ReadSeekCloser, error) {
	file, err := os.Open(f.path(id))
	if err != nil {
		return nil, err
	}
	return file, nil
}

func (f *files) remove(_ context.Context, id string) error {
	if err := os.Remove(f.path(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete image data: %w", err)
	}
	return nil
}
