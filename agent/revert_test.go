package agent_test

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/wire"
)

// TestRevertOverTheBus: a storage host reverts a volume to a snapshot as
// the controllers ask; a snapshot it does not have is ENOTFOUND.
func TestRevertOverTheBus(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	controller, backend, _ := storageHost(t, ctx, nil)
	hosts := wire.NewHosts(controller)
	const id, snap = "0c9d8e7f-6a5b-4c3d-8e2f-1a0b9c8d7e61", "5c9d8e7f-6a5b-4c3d-8e2f-1a0b9c8d7e61"
	write := func(command string) bool {
		t.Helper()
		path, format, err := backend.Locate(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return exec.Command("qemu-io", "-f", format, "-c", command, path).Run() == nil
	}
	if err := hosts.CreateVolume(ctx, "storage-1", "file", id, 1); err != nil {
		t.Fatal(err)
	}
	if !write("write -P 0x61 0 64k") {
		t.Fatal("cannot write the volume")
	}
	if err := hosts.SnapshotVolume(ctx, "storage-1", "file", id, snap); err != nil {
		t.Fatal(err)
	}
	if !write("write -P 0x62 0 64k") {
		t.Fatal("cannot write the volume")
	}
	if err := hosts.RevertVolume(ctx, "storage-1", "file", id, "5c9d8e7f-6a5b-4c3d-8e2f-1a0b9c8d7e69"); trustack.ErrorCode(err) != trustack.ENOTFOUND {
		t.Errorf("a revert to a missing snapshot: %v, want code %s", err, trustack.ENOTFOUND)
	}
	if err := hosts.RevertVolume(ctx, "storage-1", "file", id, snap); err != nil {
		t.Fatal(err)
	}
	if !write("read -P 0x61 0 64k") {
		t.Errorf("the reverted volume does not have the snapshot's data")
	}
}
