package lvm

import (
	"os"
	"testing"

	"github.com/trustack/trustack"
)

// These tests need device-mapper: TestInGuest runs them in the storage
// host guest.

// reads fails the test unless the volume reads pattern in its first MiB.
func reads(t testing.TB, b *Backend, id, pattern string) {
	t.Helper()
	path, _, err := b.Locate(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	command(t, "", nil, "qemu-io", "-f", "raw", "-c", "read -P "+pattern+" 0 1M", path)
}

// snapshotted makes vol-1 with 0x11 in its first MiB, snapshot snap-1 of
// it, then 0x22 there.
func snapshotted(t testing.TB, b *Backend) {
	t.Helper()
	if err := b.Create(t.Context(), "vol-1", 1); err != nil {
		t.Fatal(err)
	}
	path, _, err := b.Locate(t.Context(), "vol-1")
	if err != nil {
		t.Fatal(err)
	}
	command(t, "", nil, "qemu-io", "-f", "raw", "-c", "write -P 0x11 0 1M", path)
	if err := b.Snapshot(t.Context(), "vol-1", "snap-1"); err != nil {
		t.Fatal(err)
	}
	command(t, "", nil, "qemu-io", "-f", "raw", "-c", "write -P 0x22 0 1M", path)
}

// TestRevertsCutShort: a revert cut short after its new volume was made
// leaves the volume as it was; one cut short after the old volume was
// removed is finished. Either way, when the backend opens again, or by
// the revert asked again.
func TestRevertsCutShort(t *testing.T) {
	b := open(t)
	snapshotted(t, b)
	made := func() {
		command(t, "", nil, "lvcreate", "-q", "--snapshot", "-kn", "-ay", "-n", revertingPrefix+"vol-1", b.group+"/"+snapshotPrefix+"snap-1")
	}

	made() // cut short before the old volume's removal
	if _, err := New(t.Context(), b.group); err != nil {
		t.Fatal(err)
	}
	reads(t, b, "vol-1", "0x22")
	if _, ok := lv(t, b, revertingPrefix+"vol-1"); ok {
		t.Errorf("the unfinished revert's volume is still there once the backend opened again")
	}

	made() // cut short after the old volume's removal
	command(t, "", nil, "lvremove", "-q", "-f", b.group+"/"+volumePrefix+"vol-1")
	if got, err := b.Volumes(t.Context()); err != nil || len(got) != 0 {
		t.Fatalf("volumes %v (%v) with the revert cut short, want none", got, err)
	}
	if _, err := New(t.Context(), b.group); err != nil {
		t.Fatal(err)
	}
	reads(t, b, "vol-1", "0x11")
	if got, err := b.Volumes(t.Context()); err != nil || got["vol-1"] != 1 {
		t.Errorf("volumes %v (%v) once the backend opened again, want vol-1 of 1 GiB", got, err)
	}

	// The same, finished by the revert asked again.
	path, _, err := b.Locate(t.Context(), "vol-1")
	if err != nil {
		t.Fatal(err)
	}
	command(t, "", nil, "qemu-io", "-f", "raw", "-c", "write -P 0x33 0 1M", path)
	made()
	command(t, "", nil, "lvremove", "-q", "-f", b.group+"/"+volumePrefix+"vol-1")
	if err := b.Revert(t.Context(), "vol-1", "snap-1"); err != nil {
		t.Fatal(err)
	}
	reads(t, b, "vol-1", "0x11")
	if _, ok := lv(t, b, revertingPrefix+"vol-1"); ok {
		t.Errorf("the revert's volume is still there")
	}
}

// TestRevertOpenVolumes: a volume a process has open is not reverted,
// and keeps its data; once closed, it is.
func TestRevertOpenVolumes(t *testing.T) {
	b := open(t)
	snapshotted(t, b)
	path, _, err := b.Locate(t.Context(), "vol-1")
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Revert(t.Context(), "vol-1", "snap-1"); trustack.ErrorCode(err) != trustack.ECONFLICT {
		t.Errorf("reverting an open volume: %v, want code %s", err, trustack.ECONFLICT)
	}
	f.Close()
	reads(t, b, "vol-1", "0x22")
	if err := b.Revert(t.Context(), "vol-1", "snap-1"); err != nil {
		t.Fatal(err)
	}
	reads(t, b, "vol-1", "0x11")
}
