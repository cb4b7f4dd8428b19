package nbd_test

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/trustack/trustack/volume/file"
	"github.com/trustack/trustack/volume/nbd"
)

// BenchmarkTransport measures sequential throughput to a 1 GiB qcow2
// volume of the file backend through QEMU's block layer (qemu-io: 1,024
// asynchronous requests of 1 MiB, then a flush; the host's page cache as
// a guest's default writeback cache has it): opened directly, as a guest
// on the storage host opens it, and over an NBD export with TLS, as a
// guest on another host reaches it. Each reports MB/s.
func BenchmarkTransport(b *testing.B) {
	ctx := context.Background()
	backend, err := file.New(b.TempDir(), file.QCOW2)
	if err != nil {
		b.Fatal(err)
	}
	if err := backend.Create(ctx, "vol-1", 1); err != nil {
		b.Fatal(err)
	}
	path, format, _ := backend.Locate(ctx, "vol-1")
	e, err := nbd.NewExporter(b.TempDir(), "127.0.0.1")
	if err != nil {
		b.Fatal(err)
	}
	key := nbd.NewKey("bench")
	keys := filepath.Join(b.TempDir(), "client")
	if err := nbd.WriteKeyDir(keys, key); err != nil {
		b.Fatal(err)
	}
	// target opens the volume directly, or exports it (the export holds
	// the file: one or the other) and returns qemu-io's options for it.
	target := func(b *testing.B, how string) []string {
		if how == "direct" {
			return []string{"-f", format, path}
		}
		ex, err := e.Export(ctx, "vol-1", path, format, key)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { e.Unexport(ctx, "vol-1") })
		return []string{"--object", "tls-creds-psk,id=tls0,endpoint=client,priority=" + nbd.TLSPriority + ",dir=" + keys + ",username=" + key.Identity,
			"--image-opts", fmt.Sprintf("driver=nbd,server.type=inet,server.host=%s,server.port=%d,export=%s,tls-creds=tls0", ex.Host, ex.Port, ex.Name)}
	}
	const requests, size = 1024, 1 << 20
	for _, op := range []string{"write", "read"} {
		for _, how := range []string{"direct", "nbd"} {
			b.Run(op+"/"+how, func(b *testing.B) {
				args := target(b, how)
				for i := range requests {
					args = append(args, "-c", fmt.Sprintf("aio_%s -q %d %d", op, i*size, size))
				}
				args = append(args, "-c", "aio_flush")
				var total time.Duration
				for b.Loop() {
					start := time.Now()
					if out, err := exec.Command("qemu-io", args...).CombinedOutput(); err != nil {
						b.Fatalf("qemu-io %s: %v\n%s", how, err, out)
					}
					total += time.Since(start)
				}
				b.ReportMetric(float64(requests*size)/1e6/(total.Seconds()/float64(b.N)), "MB/s")
			})
		}
	}
}
