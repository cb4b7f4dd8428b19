package nbd_test

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/volume/file"
	"github.com/trustack/trustack/volume/nbd"
)

// qemuIO runs qemu-io commands on an export as a client holding key.
func qemuIO(t *testing.T, ex nbd.Export, key nbd.Key, commands ...string) (string, error) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "client")
	if err := nbd.WriteKeyDir(dir, key); err != nil {
		t.Fatal(err)
	}
	args := []string{"--object", "tls-creds-psk,id=tls0,endpoint=client,priority=" + nbd.TLSPriority + ",dir=" + dir + ",username=" + key.Identity,
		"--image-opts", fmt.Sprintf("driver=nbd,server.type=inet,server.host=%s,server.port=%d,export=%s,tls-creds=tls0", ex.Host, ex.Port, ex.Name)}
	for _, c := range commands {
		args = append(args, "-c", c)
	}
	out, err := exec.Command("qemu-io", args...).CombinedOutput()
	return string(out), err
}

// TestExportOverTLS: a volume exported is read and written by the holder
// of its key, refused to anyone else, exported once however often it is
// asked with that key, to the new key alone when asked with another, and
// no longer served once unexported.
func TestExportOverTLS(t *testing.T) {
	ctx := context.Background()
	for _, format := range []string{file.QCOW2, file.Raw} {
		t.Run(format, func(t *testing.T) {
			backend, err := file.New(t.TempDir(), format)
			if err != nil {
				t.Fatal(err)
			}
			if err := backend.Create(ctx, "vol-1", 1); err != nil {
				t.Fatal(err)
			}
			path, f, err := backend.Locate(ctx, "vol-1")
			if err != nil {
				t.Fatal(err)
			}
			e, err := nbd.NewExporter(t.TempDir(), "127.0.0.1")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { e.Unexport(ctx, "vol-1") })
			key := nbd.NewKey("attachment-1")
			ex, err := e.Export(ctx, "vol-1", path, f, key)
			if err != nil {
				t.Fatal(err)
			}
			if again, err := e.Export(ctx, "vol-1", path, f, key); err != nil || again != ex {
				t.Errorf("exported again to the same key: %+v, %v; want %+v", again, err, ex)
			}
			if out, err := qemuIO(t, ex, key, "write -P 0xab 1M 64k", "read -P 0xab 1M 64k"); err != nil || strings.Contains(out, "fail") {
				t.Fatalf("the key's holder writes and reads: %v\n%s", err, out)
			}
			// Exported to another key (the server moved to another host):
			// served to that key alone.
			moved := nbd.NewKey("attachment-1")
			if ex, err = e.Export(ctx, "vol-1", path, f, moved); err != nil {
				t.Fatal(err)
			}
			if out, err := qemuIO(t, ex, key, "read 0 4k"); err == nil {
				t.Errorf("the old key read the volume exported to another:\n%s", out)
			}
			key = moved
			if out, err := qemuIO(t, ex, nbd.NewKey("attachment-1"), "read 0 4k"); err == nil {
				t.Errorf("a client with another secret read the volume:\n%s", out)
			}
			if names, err := e.Exports(); err != nil || len(names) != 1 {
				t.Errorf("exports: %v, %v", names, err)
			}
			if err := e.Unexport(ctx, "vol-1"); err != nil {
				t.Fatal(err)
			}
			if out, err := qemuIO(t, ex, key, "read 0 4k"); err == nil {
				t.Errorf("read after the export ended:\n%s", out)
			}
			if err := e.Unexport(ctx, "vol-1"); err != nil {
				t.Errorf("unexported twice: %v", err)
			}
			// The data is in the volume, not in the export.
			ex, err = e.Export(ctx, "vol-1", path, f, key)
			if err != nil {
				t.Fatal(err)
			}
			if out, err := qemuIO(t, ex, key, "read -P 0xab 1M 64k"); err != nil || strings.Contains(out, "fail") {
				t.Errorf("the data exported again: %v\n%s", err, out)
			}
		})
	}
}

// TestGrow: a volume grown while it is served is served at its new size
// to a client connecting anew, with its data; growing it again to that
// size changes nothing, and a name not served is ENOTFOUND.
func TestGrow(t *testing.T) {
	ctx := context.Background()
	for _, format := range []string{file.QCOW2, file.Raw} {
		t.Run(format, func(t *testing.T) {
			backend, err := file.New(t.TempDir(), format)
			if err != nil {
				t.Fatal(err)
			}
			if err := backend.Create(ctx, "vol-1", 1); err != nil {
				t.Fatal(err)
			}
			path, f, err := backend.Locate(ctx, "vol-1")
			if err != nil {
				t.Fatal(err)
			}
			e, err := nbd.NewExporter(t.TempDir(), "127.0.0.1")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { e.Unexport(ctx, "vol-1") })
			key := nbd.NewKey("attachment-1")
			ex, err := e.Export(ctx, "vol-1", path, f, key)
			if err != nil {
				t.Fatal(err)
			}
			if out, err := qemuIO(t, ex, key, "write -P 0xcd 1M 64k"); err != nil || strings.Contains(out, "fail") {
				t.Fatalf("write: %v\n%s", err, out)
			}
			for range 2 {
				if err := e.Grow(ctx, "vol-1", 2<<30); err != nil {
					t.Fatal(err)
				}
			}
			out, err := qemuIO(t, ex, key, "length", "read -P 0xcd 1M 64k", "write -P 0xef 2047M 1M", "read -P 0xef 2047M 1M")
			if err != nil || strings.Contains(out, "fail") || !strings.Contains(out, "2 GiB") {
				t.Errorf("a client after the volume grew to 2 GiB: %v\n%s", err, out)
			}
			if err := e.Grow(ctx, "vol-2", 2<<30); trustack.ErrorCode(err) != trustack.ENOTFOUND {
				t.Errorf("grow a name not served: %v, want ENOTFOUND", err)
			}
		})
	}
}
