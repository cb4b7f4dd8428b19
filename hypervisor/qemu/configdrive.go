package qemu

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/trustack/trustack/metadata"
	"github.com/trustack/trustack/wire"
)

// writeConfigDrive makes the server's config drive at path: an ISO 9660
// image labelled config-2 holding openstack/latest/meta_data.json,
// network_data.json, vendor_data.json and, if the server has any,
// user_data (see package metadata), built with genisoimage as Nova does.
func writeConfigDrive(ctx context.Context, spec wire.Spec, path string) error {
	root, err := os.MkdirTemp(filepath.Dir(path), ".configdrive-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	latest := filepath.Join(root, "openstack", "latest")
	if err := os.MkdirAll(latest, 0o755); err != nil {
		return err
	}
	files, err := metadata.OpenStack(spec)
	if err != nil {
		return err
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(latest, name), b, 0o644); err != nil {
			return err
		}
	}
	out, err := exec.CommandContext(ctx, "genisoimage", "-o", path, "-V", "config-2", "-J", "-r", "-quiet", root).CombinedOutput()
	if err != nil {
		return fmt.Errorf("genisoimage: %v: %s", err, out)
	}
	return nil
}
