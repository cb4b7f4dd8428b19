// Package testimage serves the test guest that scripts/build-test-image
// makes (a qcow2 disk, its kernel and initramfs) as the image API serves
// images, for tests that spawn it with a hypervisor driver.
package testimage

import (
	"crypto/md5"
	"crypto/sha512"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

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
