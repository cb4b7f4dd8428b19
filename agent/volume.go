package agent

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/internal/qemuimg"
	"github.com/trustack/trustack/volume/nbd"
	"github.com/trustack/trustack/wire"
)

// VolumeBackend keeps the volumes of a storage host, as Cinder's volume
// drivers do. Backends implement it (volume/file), and each passes
// volume/backendtest. Every
// method is idempotent and safe for concurrent use; the agent never runs
// two operations on one volume at once. Volumes are named by their IDs
// (letters, digits and dashes); sizes are in GiB.
type VolumeBackend interface {
	// Capacity returns the GiB the backend has, and those free.
	Capacity(ctx context.Context) (total, free int, err error)
	// Create makes an empty volume. A volume of the ID that is there
	// already is left as it is if it has the size, ECONFLICT if not; a
	// creation cut short leaves nothing.
	Create(ctx context.Context, id string, size int) error
	// Extend grows a volume to size, keeping its data; EINVALID to
	// shrink it, ENOTFOUND for a missing volume.
	Extend(ctx context.Context, id string, size int) error
	// Delete removes a volume and its data; a missing one is no error.
	Delete(ctx context.Context, id string) error
	// Volumes returns the volumes the backend has, with their sizes.
	Volumes(ctx context.Context) (map[string]int, error)
	// Locate returns where a volume's blocks are, for QEMU to open: a
	// path and its format (raw or qcow2); ENOTFOUND for a missing
	// volume.
	Locate(ctx context.Context, id string) (path, format string, err error)
	// CreateFromImage makes a volume of size GiB with the data of an
	// image, the file at path of the format (raw, qcow2, vmdk, ...), as
	// Create does; EINVALID for an image larger than size or of a format
	// that is not one.
	CreateFromImage(ctx context.Context, id string, size int, path, format string) error
	// Snapshot keeps a volume's present data as a snapshot; a snapshot
	// of the ID that is there already is left as it is. ENOTFOUND for a
	// missing volume; ECONFLICT for one a process has open (a server's),
	// whose data is changing.
	Snapshot(ctx context.Context, volumeID, snapshotID string) error
	// CreateFromSnapshot makes a volume of size GiB with a snapshot's
	// data, as Create does; ENOTFOUND for a missing snapshot, EINVALID
	// for a size below the snapshot's.
	CreateFromSnapshot(ctx context.Context, id, snapshotID string, size int) error
	// DeleteSnapshot removes a snapshot, keeping the data of the volumes
	// made from it; a missing one is no error. ECONFLICT if a volume
	// whose data it holds is open.
	DeleteSnapshot(ctx context.Context, snapshotID string) error
	// Revert puts a volume's data back as a snapshot of it kept it, at
	// the volume's size, which the snapshot's may not exceed (EINVALID).
	// The volume is replaced whole or not at all: a revert cut short
	// leaves it as it was or reverted, and a revert asked again reverts
	// it again. ENOTFOUND for a missing volume or snapshot; ECONFLICT
	// for a volume a process has open (a server's).
	Revert(ctx context.Context, volumeID, snapshotID string) error
}

// The volume conversation, handed to the host's volume backends by name.

// CreateVolume makes an empty volume in a backend.
func (a *Agent) CreateVolume(ctx context.Context, backend, volumeID string, size int) error {
	return a.onVolume(backend, volumeID, func(b VolumeBackend) error { return b.Create(ctx, volumeID, size) })
}

// CreateVolumeFromSnapshot makes a volume of a backend with a snapshot's
// data.
func (a *Agent) CreateVolumeFromSnapshot(ctx context.Context, backend, volumeID, snapshotID string, size int) error {
	return a.onVolume(backend, volumeID, func(b VolumeBackend) error { return b.CreateFromSnapshot(ctx, volumeID, snapshotID, size) })
}

// imageFormats are the image disk formats volumes are made from, with
// qemu-img's name for each.
var imageFormats = map[string]string{"raw": "raw", "qcow2": "qcow2", "vmdk": "vmdk", "vdi": "vdi", "vhd": "vpc", "vhdx": "vhdx",
	"ami": "raw", "iso": "raw"}

// CreateVolumeFromImage makes a volume of a backend with an image's
// data, downloaded into the host's scratch directory for the time it
// takes, with the copy reported to the controllers as it goes.
func (a *Agent) CreateVolumeFromImage(ctx context.Context, backend, volumeID string, size int, image wire.ImageRef, token string) error {
	format, ok := imageFormats[image.DiskFormat]
	if !ok {
		return trustack.Errorf(trustack.EINVALID, "a volume cannot be made from an image of disk format %q", image.DiskFormat)
	}
	return a.onVolume(backend, volumeID, func(b VolumeBackend) error {
		if _, _, err := b.Locate(ctx, volumeID); err == nil {
			return nil // made already, by a request asked again
		}
		dir, err := os.MkdirTemp(a.cfg.ScratchDir, "image-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		path := filepath.Join(dir, image.ID)
		if err := a.downloadImage(ctx, volumeID, &image, token, path); err != nil {
			return err
		}
		return b.CreateFromImage(ctx, volumeID, size, path, format)
	})
}

// SnapshotVolume keeps a volume's data as a snapshot. A backend takes or
// deletes one snapshot at a time, as a snapshot's deletion changes the
// volumes made from it.
func (a *Agent) SnapshotVolume(ctx context.Context, backend, volumeID, snapshotID string) error {
	return a.locked("snapshots of "+backend, func() error {
		return a.onVolume(backend, volumeID, func(b VolumeBackend) error { return b.Snapshot(ctx, volumeID, snapshotID) })
	})
}

// DeleteSnapshot deletes a snapshot of a backend.
func (a *Agent) DeleteSnapshot(ctx context.Context, backend, snapshotID string) error {
	b, ok := a.cfg.Volumes[backend]
	if !ok {
		return trustack.Errorf(trustack.ENOTFOUND, "host %s runs no volume backend %q", a.cfg.Name, backend)
	}
	return a.locked("snapshots of "+backend, func() error { return b.DeleteSnapshot(ctx, snapshotID) })
}

// RevertVolume puts a volume of a backend back to a snapshot's data.
// It takes the backend's snapshot lock, as SnapshotVolume does: deleting
// a snapshot changes the volumes made from it, and a revert replaces a
// volume.
func (a *Agent) RevertVolume(ctx context.Context, backend, volumeID, snapshotID string) error {
	return a.locked("snapshots of "+backend, func() error {
		return a.onVolume(backend, volumeID, func(b VolumeBackend) error { return b.Revert(ctx, volumeID, snapshotID) })
	})
}

// ExtendVolume grows a volume of a backend, attached to a server or not
// (attachedHere: to a server of this host, which opens it directly). A
// block device (lvm) grows in place, and a file no process holds is
// grown by the backend. A volume served over NBD is then grown by its
// export's daemon, which holds it, and served anew at its new size; a
// file a server of this host holds open is left to that server's QEMU to
// grow (GrowVolume). ECONFLICT for a file another process holds.
func (a *Agent) ExtendVolume(ctx context.Context, backend, volumeID string, size int, attachedHere bool) error {
	return a.onVolume(backend, volumeID, func(b VolumeBackend) error {
		path, format, err := b.Locate(ctx, volumeID)
		if err != nil {
			return err
		}
		held := qemuimg.ProtocolDriver(path) == "file" && qemuimg.Unused(ctx, path, format) != nil
		if !held {
			if err := b.Extend(ctx, volumeID, size); err != nil {
				return err
			}
		}
		if a.cfg.Exports != nil {
			err := a.cfg.Exports.Grow(ctx, volumeID, int64(size)<<30)
			if trustack.ErrorCode(err) != trustack.ENOTFOUND {
				return err
			}
		}
		if held && !attachedHere {
			return trustack.Errorf(trustack.ECONFLICT, "volume %s is open in a process that is not its server's", volumeID)
		}
		return nil
	})
}

// DeleteVolume deletes a volume of a backend.
func (a *Agent) DeleteVolume(ctx context.Context, backend, volumeID string) error {
	return a.onVolume(backend, volumeID, func(b VolumeBackend) error { return b.Delete(ctx, volumeID) })
}

// UploadVolume uploads a volume's data as an image's, converted to the
// image's disk format in the host's scratch directory first.
func (a *Agent) UploadVolume(ctx context.Context, backend, volumeID string, upload wire.Upload, diskFormat string) error {
	format, ok := imageFormats[diskFormat]
	if !ok {
		return trustack.Errorf(trustack.EINVALID, "no image of disk format %q can be made of a volume", diskFormat)
	}
	return a.onVolume(backend, volumeID, func(b VolumeBackend) error {
		path, from, err := b.Locate(ctx, volumeID)
		if err != nil {
			return err
		}
		dir, err := os.MkdirTemp(a.cfg.ScratchDir, "upload-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		image := filepath.Join(dir, upload.ImageID)
		if err := qemuimg.Convert(ctx, path, from, image, format); err != nil {
			return err
		}
		f, err := os.Open(image)
		if err != nil {
			return err
		}
		defer f.Close()
		return a.upload(ctx, "The image of volume "+volumeID, upload, f)
	})
}

// ExportVolume serves a volume of a backend over NBD to the holder of
// key.
func (a *Agent) ExportVolume(ctx context.Context, backend, volumeID string, key wire.PSK) (wire.NBDExport, error) {
	var out wire.NBDExport
	err := a.onVolume(backend, volumeID, func(b VolumeBackend) error {
		if a.cfg.Exports == nil {
			return trustack.Errorf(trustack.EUNAVAILABLE, "host %s serves no volumes to other hosts", a.cfg.Name)
		}
		path, format, err := b.Locate(ctx, volumeID)
		if err != nil {
			return err
		}
		ex, err := a.cfg.Exports.Export(ctx, volumeID, path, format, nbd.Key{Identity: key.Identity, Secret: key.Secret})
		out = wire.NBDExport{Host: ex.Host, Port: ex.Port, Name: ex.Name, Key: key}
		return err
	})
	return out, err
}

// UnexportVolume stops serving a volume.
func (a *Agent) UnexportVolume(ctx context.Context, volumeID string) error {
	if a.cfg.Exports == nil {
		return nil
	}
	return a.locked("volume "+volumeID, func() error { return a.cfg.Exports.Unexport(ctx, volumeID) })
}

// AttachVolume plugs a volume into a server: a volume of this host's own
// backend opened directly, another over its NBD export.
func (a *Agent) AttachVolume(ctx context.Context, serverID string, disk wire.VolumeDisk) error {
	if disk.NBD != nil {
		return a.locked(serverID, func() error { return a.hv.AttachVolume(ctx, serverID, nbdDisk(disk)) })
	}
	// A volume of this host's is opened under its lock, which its
	// snapshots take too: a snapshot is never of a volume being opened.
	return a.onVolume(disk.Backend, disk.VolumeID, func(b VolumeBackend) error {
		d, err := localDisk(ctx, b, disk)
		if err != nil {
			return err
		}
		return a.locked(serverID, func() error { return a.hv.AttachVolume(ctx, serverID, d) })
	})
}

// disks are the volumes a server spawns with, as the hypervisor plugs
// them. A volume of this host's is located without its lock: it is the
// server's alone (attaching, or in use by it), and the block storage
// service takes no snapshot of a volume being attached.
func (a *Agent) disks(ctx context.Context, volumes []wire.VolumeDisk) ([]Disk, error) {
	var out []Disk
	for _, disk := range volumes {
		if disk.NBD != nil {
			out = append(out, nbdDisk(disk))
			continue
		}
		b, ok := a.cfg.Volumes[disk.Backend]
		if !ok {
			return nil, trustack.Errorf(trustack.ENOTFOUND, "host %s runs no volume backend %q", a.cfg.Name, disk.Backend)
		}
		d, err := localDisk(ctx, b, disk)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// nbdDisk is a volume served over NBD, as the hypervisor plugs it.
func nbdDisk(disk wire.VolumeDisk) Disk {
	return Disk{VolumeID: disk.VolumeID, Device: disk.Device, NBD: disk.NBD, ReadOnly: disk.ReadOnly}
}

// localDisk is a volume of a backend of this host's, as the hypervisor
// opens it.
func localDisk(ctx context.Context, b VolumeBackend, disk wire.VolumeDisk) (Disk, error) {
	d := Disk{VolumeID: disk.VolumeID, Device: disk.Device, ReadOnly: disk.ReadOnly}
	var err error
	d.Path, d.Format, err = b.Locate(ctx, disk.VolumeID)
	return d, err
}

// DetachVolume unplugs the volume at a server's device.
func (a *Agent) DetachVolume(ctx context.Context, serverID, device string) error {
	return a.locked(serverID, func() error { return a.hv.DetachVolume(ctx, serverID, device) })
}

// GrowVolume has a server see the volume at its device grown to size
// GiB.
func (a *Agent) GrowVolume(ctx context.Context, serverID, device string, size int) error {
	return a.locked(serverID, func() error { return a.hv.GrowVolume(ctx, serverID, device, int64(size)<<30) })
}

// onVolume runs fn with the named backend under the volume's lock: one
// operation on a volume at a time.
func (a *Agent) onVolume(backend, volumeID string, fn func(VolumeBackend) error) error {
	b, ok := a.cfg.Volumes[backend]
	if !ok {
		return trustack.Errorf(trustack.ENOTFOUND, "host %s runs no volume backend %q", a.cfg.Name, backend)
	}
	return a.locked("volume "+volumeID, func() error { return fn(b) })
}

// storage describes the host's volume backends, by name.
func (a *Agent) storage(ctx context.Context) ([]trustack.StorageBackend, error) {
	var out []trustack.StorageBackend
	for _, name := range slices.Sorted(maps.Keys(a.cfg.Volumes)) {
		total, free, err := a.cfg.Volumes[name].Capacity(ctx)
		if err != nil {
			return nil, fmt.Errorf("volume backend %s: %w", name, err)
		}
		out = append(out, trustack.StorageBackend{Name: name, TotalGB: total, FreeGB: free})
	}
	return out, nil
}
