package qemu_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/trustack/trustack/agent"
	"github.com/trustack/trustack/hypervisor/qemu"
	"github.com/trustack/trustack/volume/file"
	"github.com/trustack/trustack/volume/nbd"
	"github.com/trustack/trustack/wire"
)

// A server is destroyed, and soon, when the storage host of its volumes
// is gone: its QEMU, which waits for each volume's NBD server to come
// back (reconnect-delay) before it quits, and meanwhile answers nothing,
// is killed.
func TestDestroyWhenItsVolumesStorageHostIsGone(t *testing.T) {
	d := newDriver(t, qemu.Options{})
	bootedServer(t, d, "s1")
	ctx := context.Background()
	backend, err := file.New(t.TempDir(), file.QCOW2)
	if err != nil {
		t.Fatal(err)
	}
	exporter, err := nbd.NewExporter(t.TempDir(), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	var served []string
	for _, device := range []string{"vdc", "vdd", "vde"} {
		id := uuid.NewString()
		if err := backend.Create(ctx, id, 1); err != nil {
			t.Fatal(err)
		}
		path, format, err := backend.Locate(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		key := nbd.NewKey(id)
		ex, err := exporter.Export(ctx, id, path, format, key)
		if err != nil {
			t.Fatal(err)
		}
		served = append(served, id)
		disk := agent.Disk{VolumeID: id, Device: device, NBD: &wire.NBDExport{Host: ex.Host, Port: ex.Port, Name: ex.Name,
			Key: wire.PSK{Identity: key.Identity, Secret: key.Secret}}}
		if err := d.AttachVolume(ctx, "s1", disk); err != nil {
			t.Fatal(err)
		}
	}
	// The storage host goes: its exports with it.
	for _, id := range served {
		if err := exporter.Unexport(ctx, id); err != nil {
			t.Fatal(err)
		}
	}

	// Three volumes that QEMU waits 10 s each for would take longer.
	within := 25 * time.Second
	destroy, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	start := time.Now()
	if err := d.Destroy(destroy, "s1"); err != nil {
		t.Fatalf("Destroy with the volumes' storage host gone, within %v: %v", within, err)
	}
	t.Logf("destroyed in %v", time.Since(start).Round(100*time.Millisecond))
}
