package up

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/controller"
	"github.com/trustack/trustack/images"
)

// TestImageName is the name under which up offers the test guest.
const TestImageName = "tiny"

// testImageCommandLine is the test guest's kernel command line.
const testImageCommandLine = "console=ttyS0 root=/dev/vda rw quiet"

// testGuestFiles are the files of the test guest that
// scripts/build-test-image makes.
var testGuestFiles = []string{"vmlinuz", "initrd.img", "tiny.qcow2"}

// findTestImage returns the directory that holds the test guest: dir, or,
// for a relative dir, the same path in the repository of the running
// binary (build/test-image beside bin/trustack), so that `trustack up`
// finds it from any directory; "" if neither does, with where it looked.
func findTestImage(dir string) (string, []string) {
	looked := []string{dir}
	if exe, err := os.Executable(); err == nil && !filepath.IsAbs(dir) {
		looked = append(looked, filepath.Join(filepath.Dir(filepath.Dir(exe)), dir))
	}
	for _, d := range looked {
		if !slices.ContainsFunc(testGuestFiles, func(name string) bool {
			_, err := os.Stat(filepath.Join(d, name))
			return errors.Is(err, fs.ErrNotExist)
		}) {
			return d, looked
		}
	}
	return "", looked
}

// addTestImage uploads the test guest that scripts/build-test-image makes
// in dir (see findTestImage) as the public image "tiny", booted directly
// from its kernel and ramdisk (the public images tiny-kernel and
// tiny-ramdisk), unless an image of that name exists. Without the guest,
// it says how to make it.
func addTestImage(ctx context.Context, c *controller.Controller, dir string, log *slog.Logger) error {
	dir, looked := findTestImage(dir)
	if dir == "" {
		log.Warn("no test guest, so no image "+TestImageName+": make it with scripts/build-test-image in trustack's repository (make does), or name its directory with --test-image", "looked_in", looked)
		return nil
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
