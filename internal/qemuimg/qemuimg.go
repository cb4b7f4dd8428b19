// Package qemuimg runs qemu-img, QEMU's disk image tool, and says which
// of QEMU's block drivers opens a disk, for what keeps disk images: the
// QEMU driver's guest disks, the NBD exports and the file and LVM volume
// backends.
package qemuimg

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
)

// VirtualSize returns the size in bytes that an image of the format
// (raw, qcow2, ...) shows a guest.
func VirtualSize(ctx context.Context, path, format string) (int64, error) {
	out, err := exec.CommandContext(ctx, "qemu-img", "info", "--output=json", "-U", "-f", format, path).Output()
	if err != nil {
		return 0, fmt.Errorf("qemu-img info %s: %w%s", path, err, stderr(err))
	}
	var info struct {
		VirtualSize int64 `json:"virtual-size"`
	}
	if err := json.Unmarshal(out, &info); err != nil {
		return 0, fmt.Errorf("qemu-img info %s: %w", path, err)
	}
	return info.VirtualSize, nil
}

// Create makes an image of the format: of size bytes, on the backing
// image of backingFormat if backing is not "" (of its size if size is
// 0).
func Create(ctx context.Context, path, format string, size int64, backing, backingFormat string) error {
	args := []string{"create", "-q", "-f", format}
	if backing != "" {
		args = append(args, "-F", backingFormat, "-b", backing)
	}
	args = append(args, path)
	if size > 0 {
		args = append(args, strconv.FormatInt(size, 10))
	}
	return run(ctx, args...)
}

// Resize grows an image of the format to size bytes.
func Resize(ctx context.Context, path, format string, size int64) error {
	return run(ctx, "resize", "-q", "-f", format, path, strconv.FormatInt(size, 10))
}

// Convert copies an image of fromFormat into another of format, reading
// it while others may have it open; the source's format is never probed
// from its data.
func Convert(ctx context.Context, from, fromFormat, to, format string) error {
	return run(ctx, "convert", "-U", "-f", fromFormat, "-O", format, from, to)
}

// ConvertOnto copies an image of fromFormat onto the raw block device or
// file at to, which is at least as large and reads as zeros (a new thin
// logical volume): qemu-img makes nothing, and writes no zeros.
func ConvertOnto(ctx context.Context, from, fromFormat, to string) error {
	return run(ctx, "convert", "-U", "-n", "--target-is-zero", "-f", fromFormat, "-O", "raw", from, to)
}

// Backing returns the backing file an image of the format names, as
// it names it; "" for none.
func Backing(ctx context.Context, path, format string) (string, error) {
	out, err := exec.CommandContext(ctx, "qemu-img", "info", "--output=json", "-U", "-f", format, path).Output()
	if err != nil {
		return "", fmt.Errorf("qemu-img info %s: %w%s", path, err, stderr(err))
	}
	var info struct {
		Backing string `json:"backing-filename"`
	}
	if err := json.Unmarshal(out, &info); err != nil {
		return "", fmt.Errorf("qemu-img info %s: %w", path, err)
	}
	return info.Backing, nil
}

// Unused returns an error if another process has an image open, such as
// a QEMU running a guest on it: qemu-img then cannot take its locks.
func Unused(ctx context.Context, path, format string) error {
	return run(ctx, "info", "-f", format, path)
}

// Rebase puts an image of the format on another backing image (of
// backingFormat; none if backing is ""), copying in what differs, so
// that the image shows the same data.
func Rebase(ctx context.Context, path, format, backing, backingFormat string) error {
	args := []string{"rebase", "-q", "-f", format, "-b", backing}
	if backing != "" {
		args = append(args, "-F", backingFormat)
	}
	return run(ctx, append(args, path)...)
}

// ProtocolDriver is the QEMU block driver that opens path: host_device
// for a block device (a logical volume), file for a regular file.
func ProtocolDriver(path string) string {
	if fi, err := os.Stat(path); err == nil && fi.Mode()&os.ModeDevice != 0 {
		return "host_device"
	}
	return "file"
}

func run(ctx context.Context, args ...string) error {
	if out, err := exec.CommandContext(ctx, "qemu-img", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("qemu-img %s: %v: %s", args[0], err, out)
	}
	return nil
}

// stderr is what a failed command said, for its error.
func stderr(err error) string {
	if e, ok := err.(*exec.ExitError); ok && len(e.Stderr) > 0 {
		return ": " + string(e.Stderr)
	}
	return ""
}
