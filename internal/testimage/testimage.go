// Package testimage serves the test guest that scripts/build-test-image
// makes (a qcow2 disk, its kernel and initramfs) as the image API serves
// images, for tests that spawn it with a hypervisor driver, and spawns it
// with a QEMU driver of the test's.
package testimage

import (
	"context"
	"crypto/md5"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/trustack/trustack/hypervisor/qemu"
	"github.com/trustack/trustack/wire"
)

// CommandLine is the test guest's kernel command line.
const CommandLine = "console=ttyS0 root=/dev/vda rw quiet"

// Serve serves the test guest's files in dir, to requests with the
// token, until the test ends, and returns how a spec names them: the
// disk, whose properties name the kernel and ramdisk, and those two. It
// fails the test if the guest is missing.
func Serve(t testing.TB, dir, token string) (disk wire.ImageRef, kernel, ramdisk *wire.ImageRef) {
	t.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	ref := func(id, name, diskFormat, containerFormat string) *wire.ImageRef {
		path := filepath.Join(dir, name)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("the test guest is missing (scripts/build-test-image makes it; make test runs it): %v", err)
		}
		md := md5.Sum(data)
		sha := sha512.Sum512(data)
		mux.HandleFunc("GET /v2/images/"+id+"/file", func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("X-Auth-Token") != token {
				http.Error(w, "no token", http.StatusUnauthorized)
				return
			}
			http.ServeFile(w, r, path)
		})
		return &wire.ImageRef{ID: id, Checksum: hex.EncodeToString(md[:]), HashAlgo: "sha512", HashValue: hex.EncodeToString(sha[:]),
			Size: int64(len(data)), URL: srv.URL + "/v2/images/" + id + "/file", DiskFormat: diskFormat, ContainerFormat: containerFormat}
	}
	disk = *ref("image-disk", "tiny.qcow2", "qcow2", "bare")
	disk.Properties = map[string]string{"kernel_id": "image-kernel", "ramdisk_id": "image-ramdisk", "os_command_line": CommandLine}
	return disk, ref("image-kernel", "vmlinuz", "aki", "aki"), ref("image-ramdisk", "initrd.img", "ari", "ari")
}

// Guest is the test guest, run by a QEMU driver of a test's.
type Guest struct {
	Driver *qemu.Driver
	ID     string // its server's ID
}

// Spawn builds the test guest if it is not built (scripts/build-test-image,
// under root, the repository's top directory), and has a QEMU driver of
// the test's, under TCG, spawn it with one vCPU, memoryMB and userData;
// it is destroyed when the test ends. It fails the test, saying how to
// install them, if the tools the build takes are missing.
func Spawn(t testing.TB, root string, memoryMB int, userData string) Guest {
	t.Helper()
	for _, tool := range []string{"mke2fs", "genisoimage"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: run scripts/install-deps (make test does)", tool)
		}
	}
	dir := filepath.Join(root, "build", "test-image")
	if out, err := exec.Command(filepath.Join(root, "scripts", "build-test-image"), dir).CombinedOutput(); err != nil {
		t.Fatalf("scripts/build-test-image: %v\n%s", err, out)
	}
	const token = "token"
	disk, kernel, ramdisk := Serve(t, dir, token)
	d, err := qemu.New(t.Context(), qemu.Options{Dir: t.TempDir(), Accel: "tcg", VCPUs: 2, MemoryMB: 2048, DiskGB: 20, PowerOffTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	g := Guest{Driver: d, ID: uuid.NewString()}
	spec := wire.Spec{ServerID: g.ID, Name: "test-guest", Hostname: "test-guest", VCPUs: 1, MemoryMB: memoryMB, DiskGB: 1,
		Image: disk, Kernel: kernel, Ramdisk: ramdisk, ImageToken: token, ProjectID: "test",
		UserData: base64.StdEncoding.EncodeToString([]byte(userData))}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := d.Destroy(ctx, g.ID); err != nil {
			t.Errorf("destroy the test guest: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if err := d.Spawn(ctx, spec, nil); err != nil {
		t.Fatalf("Spawn: %v", err)
	}
	return g
}

// Await waits until the guest's console has each of lines, and returns
// the console; it gives up when ctx ends.
func (g Guest) Await(ctx context.Context, lines ...string) (string, error) {
	for {
		console, err := g.Driver.Console(ctx, g.ID, 0)
		if err != nil {
			return "", err
		}
		missing := slices.DeleteFunc(slices.Clone(lines), func(line string) bool { return strings.Contains(console, line) })
		if len(missing) == 0 {
			return console, nil
		}
		select {
		case <-ctx.Done():
			return console, fmt.Errorf("no %q on the test guest's console: %w", missing, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}
