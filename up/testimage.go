package up

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/controller"
	"github.com/trustack/trustack/images"
)

// TestImageName is the name under which up offers the test guest.
const TestImageName = "tiny"

// testImageCommandLine is the test guest's kernel command line.
const testImageCommandLine = "console=ttyS0 root=/dev/vda rw quiet"

// addTestImage uploads the test guest that scripts/build-test-image makes
// in dir as the public image "tiny", booted directly from its kernel and
// ramdisk (the public images tiny-kernel and tiny-ramdisk), unless an
// image of that name exists. A directory without the guest is skipped.
func addTestImage(ctx context.Context, c *controller.Controller, dir string, log *slog.Logger) error {
	for _, name := range []string{"vmlinuz", "initrd.img", "tiny.qcow2"} {
		if _, err := os.Stat(filepath.Join(dir, name)); errors.Is(err, fs.ErrNotExist) {
			log.Info("no test guest to offer as an image; scripts/build-test-image makes one", "missing", filepath.Join(dir, name))
			return nil
		}
	}
	projects, err := c.Identity.Store.Projects(ctx, trustack.ProjectFilter{DomainID: trustack.DefaultDomainID, Name: "admin"})
	if err != nil || len(projects) == 0 {
		return fmt.Errorf("the admin project, to own the test guest: %v", err)
	}
	admin := images.Caller{Admin: true, ProjectID: projects[0].ID}
	have, err := c.Images.Images(ctx, admin, trustack.ImageFilter{Name: TestImageName})
	if err != nil || len(have) > 0 {
		return err
	}
	kernel, err := uploadImage(ctx, c, admin, &trustack.Image{Name: TestImageName + "-kernel", DiskFormat: "aki", ContainerFormat: "aki"}, filepath.Join(dir, "vmlinuz"), log)
	if err != nil {
		return err
	}
	ramdisk, err := uploadImage(ctx, c, admin, &trustack.Image{Name: TestImageName + "-ramdisk", DiskFormat: "ari", ContainerFormat: "ari"}, filepath.Join(dir, "initrd.img"), log)
	if err != nil {
		return err
	}
	_, err = uploadImage(ctx, c, admin, &trustack.Image{Name: TestImageName, DiskFormat: "qcow2", ContainerFormat: "bare",
		Properties: map[string]string{"kernel_id": kernel, "ramdisk_id": ramdisk, "os_command_line": testImageCommandLine}}, filepath.Join(dir, "tiny.qcow2"), log)
	return err
}

// uploadImage creates a public image with the file's data and returns its
// ID.
func uploadImage(ctx context.Context, c *controller.Controller, admin images.Caller, img *trustack.Image, path string, log *slog.Logger) (string, error) {
	img.Visibility = trustack.VisibilityPublic
	if err := c.Images.Create(ctx, admin, img); err != nil {
		return "", fmt.Errorf("image %s: %w", img.Name, err)
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if _, err := c.Images.Upload(ctx, admin, img.ID, f, images.Expect{}); err != nil {
		return "", fmt.Errorf("image %s: %w", img.Name, err)
	}
	log.Info("offered the test guest as an image", "name", img.Name, "id", img.ID)
	return img.ID, nil
}
