package file

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/internal/qemuimg"
)

// Snapshots are files named snapshot-ID.FORMAT beside the volumes. A
// qcow2 volume's snapshot is its file as it was: the volume goes on as a
// new qcow2 overlay on it, and volumes made from the snapshot are
// overlays on it too, so that both take no time and no space until
// written. Deleting a snapshot first copies into the overlays on it what
// they read from it. Raw volumes, which cannot have a backing file, are
// copied whole. Reverting a volume to a snapshot makes it a new overlay
// on the snapshot, or a copy of a raw one.

const snapshotPrefix = "snapshot-"

// findSnapshot returns the file of a snapshot and its format; ENOTFOUND
// if there is none.
func (b *Backend) findSnapshot(id string) (path, format string, err error) {
	return b.lookup(snapshotPrefix, "snapshot", id)
}

// Snapshot keeps a volume's present data as a snapshot. For a qcow2
// volume: its file is linked under the snapshot's name, then a new
// overlay on it takes the volume's name in one rename; until that
// rename, which New checks, the snapshot is unfinished.
func (b *Backend) Snapshot(ctx context.Context, volumeID, snapshotID string) error {
	if _, _, err := b.findSnapshot(snapshotID); err == nil || trustack.ErrorCode(err) != trustack.ENOTFOUND {
		return err
	}
	path, format, err := b.find(volumeID)
	if err != nil {
		return err
	}
	if err := qemuimg.Unused(ctx, path, format); err != nil {
		return trustack.Errorf(trustack.ECONFLICT, "file volumes: volume %s is open, its data changing: %v", volumeID, err)
	}
	snap := filepath.Join(b.dir, snapshotPrefix+snapshotID+"."+format)
	if format == Raw {
		return b.copyInto(ctx, path, snap, format, 0, "snapshot "+snapshotID)
	}
	size, err := qemuimg.VirtualSize(ctx, path, format)
	if err != nil {
		return err
	}
	overlay := path + partial
	err = os.Link(path, snap)
	if err == nil {
		err = qemuimg.Create(ctx, overlay, QCOW2, size, filepath.Base(snap), QCOW2)
	}
	if err == nil {
		err = os.Rename(overlay, path)
	}
	if err != nil {
		os.Remove(overlay)
		if same(path, snap) {
			os.Remove(snap)
		}
		return fmt.Errorf("file volumes: snapshot volume %s: %w", volumeID, err)
	}
	return nil
}

// same reports whether two paths are one file.
func same(a, b string) bool {
	sa, errA := os.Stat(a)
	sb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(sa, sb)
}

// copyInto copies an image to path under a temporary name, grown to
// size bytes (0: as it is), renamed once whole: a creation cut short
// leaves nothing, never a volume of the wrong size that a creation asked
// again would refuse.
func (b *Backend) copyInto(ctx context.Context, from, path, format string, size int64, what string) error {
	tmp := path + partial
	err := qemuimg.Convert(ctx, from, format, tmp, format)
	if err == nil && size > 0 {
		err = os.Truncate(tmp, size)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("file volumes: %s: %w", what, err)
	}
	return nil
}

// CreateFromSnapshot makes a volume with a snapshot's data: an overlay on
// a qcow2 snapshot, a copy of a raw one, grown to size.
func (b *Backend) CreateFromSnapshot(ctx context.Context, id, snapshotID string, size int) error {
	snap, format, err := b.findSnapshot(snapshotID)
	if err != nil {
		return err
	}
	if _, _, err := b.find(id); err == nil {
		return b.Create(ctx, id, size) // there already: checks its size
	} else if trustack.ErrorCode(err) != trustack.ENOTFOUND {
		return err
	}
	have, err := volumeSize(ctx, snap, format)
	if err != nil {
		return err
	}
	if size < have {
		return trustack.Errorf(trustack.EINVALID, "file volumes: volume %s of %d GiB cannot hold snapshot %s of %d GiB", id, size, snapshotID, have)
	}
	path := filepath.Join(b.dir, prefix+id+"."+format)
	if format == Raw {
		return b.copyInto(ctx, snap, path, format, int64(size)*gib, "volume "+id)
	}
	tmp := path + partial
	err = qemuimg.Create(ctx, tmp, QCOW2, int64(size)*gib, filepath.Base(snap), QCOW2)
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("file volumes: create volume %s from snapshot %s: %w", id, snapshotID, err)
	}
	return nil
}

// DeleteSnapshot removes a snapshot once the overlays on it, volumes and
// later snapshots, have what they read from it: each is put on the
// snapshot's own backing file (none, mostly), which copies it in.
func (b *Backend) DeleteSnapshot(ctx context.Context, snapshotID string) error {
	snap, format, err := b.findSnapshot(snapshotID)
	if trustack.ErrorCode(err) == trustack.ENOTFOUND {
		return nil
	}
	if err != nil {
		return err
	}
	if format == QCOW2 {
		if err := b.detachOverlays(ctx, snap); err != nil {
			return err
		}
	}
	if err := os.Remove(snap); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("file volumes: delete snapshot %s: %w", snapshotID, err)
	}
	return nil
}

// detachOverlays puts the overlays on the qcow2 file snap on snap's
// backing file.
func (b *Backend) detachOverlays(ctx context.Context, snap string) error {
	base, err := qemuimg.Backing(ctx, snap, QCOW2)
	if err != nil {
		return err
	}
	overlays, err := b.overlaysOn(ctx, filepath.Base(snap))
	if err != nil {
		return err
	}
	for _, o := range overlays {
		if err := qemuimg.Unused(ctx, o, QCOW2); err != nil {
			if gone(o) {
				continue
			}
			return trustack.Errorf(trustack.ECONFLICT, "file volumes: %s, which holds data of %s, is open: %v", filepath.Base(o), filepath.Base(snap), err)
		}
		if err := qemuimg.Rebase(ctx, o, QCOW2, base, QCOW2); err != nil && !gone(o) {
			return fmt.Errorf("file volumes: %w", err)
		}
	}
	return nil
}

// gone reports whether a file listed a moment ago was deleted since, as
// other volumes and snapshots are while one snapshot is deleted.
func gone(path string) bool {
	_, err := os.Stat(path)
	return errors.Is(err, fs.ErrNotExist)
}

// overlaysOn returns the qcow2 volumes and snapshots whose backing file
// is name.
func (b *Backend) overlaysOn(ctx context.Context, name string) ([]string, error) {
	var out []string
	for _, p := range []string{prefix, snapshotPrefix} {
		files, err := filepath.Glob(filepath.Join(b.dir, p+"*."+QCOW2))
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			backing, err := qemuimg.Backing(ctx, f, QCOW2)
			if err != nil {
				if gone(f) {
					continue
				}
				return nil, err
			}
			if backing == name {
				out = append(out, f)
			}
		}
	}
	return out, nil
}

// unfinishedSnapshots removes the snapshots whose volume's overlay was
// not put in place: their files are still the volume's.
func (b *Backend) unfinishedSnapshots() error {
	snaps, _ := filepath.Glob(filepath.Join(b.dir, snapshotPrefix+"*"))
	vols, _ := filepath.Glob(filepath.Join(b.dir, prefix+"*"))
	for _, s := range snaps {
		if strings.HasSuffix(s, partial) {
			if err := os.Remove(s); err != nil {
				return err
			}
			continue
		}
		for _, v := range vols {
			if same(s, v) {
				if err := os.Remove(s); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// Revert puts a volume's data back as a snapshot kept it, at the
// volume's size. A qcow2 volume becomes a new, empty overlay on the
// snapshot; a raw one a copy of it. Either is made under a temporary
// name and renamed over the volume's file, so that a revert cut short
// leaves the volume as it was (New removes the temporary file) or
// reverted, never half of each; what the volume's file held since the
// snapshot is gone.
func (b *Backend) Revert(ctx context.Context, volumeID, snapshotID string) error {
	path, format, err := b.find(volumeID)
	if err != nil {
		return err
	}
	snap, snapFormat, err := b.findSnapshot(snapshotID)
	if err != nil {
		return err
	}
	if err := qemuimg.Unused(ctx, path, format); err != nil {
		return trustack.Errorf(trustack.ECONFLICT, "file volumes: volume %s is open: %v", volumeID, err)
	}
	size, err := qemuimg.VirtualSize(ctx, path, format)
	if err != nil {
		return fmt.Errorf("file volumes: %w", err)
	}
	have, err := qemuimg.VirtualSize(ctx, snap, snapFormat)
	if err != nil {
		return fmt.Errorf("file volumes: %w", err)
	}
	if have > size {
		return trustack.Errorf(trustack.EINVALID, "file volumes: snapshot %s (%d bytes) is larger than volume %s (%d bytes)", snapshotID, have, volumeID, size)
	}
	tmp := path + partial
	os.Remove(tmp) // what a revert cut short left
	if format == QCOW2 {
		err = qemuimg.Create(ctx, tmp, QCOW2, size, filepath.Base(snap), snapFormat)
	} else {
		err = qemuimg.Convert(ctx, snap, snapFormat, tmp, format)
		if err == nil {
			err = os.Truncate(tmp, size)
		}
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("file volumes: revert volume %s to snapshot %s: %w", volumeID, snapshotID, err)
	}
	return nil
}
