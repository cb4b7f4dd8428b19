package file

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/agent"
	"github.com/trustack/trustack/volume/backendtest"
)

func TestConformance(t *testing.T) {
	for _, format := range []string{QCOW2, Raw} {
		t.Run(format, func(t *testing.T) {
			backendtest.Run(t, func(t testing.TB) agent.VolumeBackend {
				b, err := New(t.TempDir(), format)
				if err != nil {
					t.Fatal(err)
				}
				return b
			})
		})
	}
}

// TestFormatIsNeverReadFromTheData: a raw volume whose guest wrote a
// qcow2 header into it (one that could name a file of the host's as its
// backing file) stays raw.
func TestFormatIsNeverReadFromTheData(t *testing.T) {
	b, err := New(t.TempDir(), Raw)
	if err != nil {
		t.Fatal(err)
	}
	const id = "vol-1"
	if err := b.Create(t.Context(), id, 1); err != nil {
		t.Fatal(err)
	}
	path, _, err := b.Locate(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("QFI\xfb\x00\x00\x00\x03"), 0)
	f.Close()
	if _, format, err := b.Locate(t.Context(), id); err != nil || format != Raw {
		t.Errorf("Locate: format %q (%v), want %s", format, err, Raw)
	}
}

// TestUnfinishedCreationsAreRemoved: what a creation cut short left is
// gone when the backend opens, and never listed as a volume.
func TestUnfinishedCreationsAreRemoved(t *testing.T) {
	dir := t.TempDir()
	left := filepath.Join(dir, prefix+"vol-1.qcow2"+partial)
	if err := os.WriteFile(left, []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := New(dir, QCOW2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(left); !os.IsNotExist(err) {
		t.Errorf("the unfinished file is still there: %v", err)
	}
	if got, err := b.Volumes(t.Context()); err != nil || len(got) != 0 {
		t.Errorf("volumes %v (%v), want none", got, err)
	}
}

// TestUnfinishedSnapshotsAreRemoved: a snapshot cut short before the
// volume's overlay took its place is still the volume's file; New removes
// it, and the volume keeps its data.
func TestUnfinishedSnapshotsAreRemoved(t *testing.T) {
	dir := t.TempDir()
	b, err := New(dir, QCOW2)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Create(t.Context(), "vol-1", 1); err != nil {
		t.Fatal(err)
	}
	path, _, _ := b.Locate(t.Context(), "vol-1")
	snap := filepath.Join(dir, snapshotPrefix+"snap-1.qcow2")
	if err := os.Link(path, snap); err != nil {
		t.Fatal(err)
	}
	if b, err = New(dir, QCOW2); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(snap); !os.IsNotExist(err) {
		t.Errorf("the unfinished snapshot is still there: %v", err)
	}
	if got, err := b.Volumes(t.Context()); err != nil || got["vol-1"] != 1 {
		t.Errorf("volumes %v (%v), want vol-1 of 1 GiB", got, err)
	}
}

// TestOpenVolumesAreNotSnapshotted: while a process has a volume open
// for writing, as a guest's QEMU does, a snapshot is refused and nothing
// changes.
func TestOpenVolumesAreNotSnapshotted(t *testing.T) {
	dir := t.TempDir()
	b, err := New(dir, QCOW2)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Create(t.Context(), "vol-1", 1); err != nil {
		t.Fatal(err)
	}
	path, _, _ := b.Locate(t.Context(), "vol-1")
	// The daemon writes its pid file once it has opened the volume (the
	// options in order).
	pidFile := filepath.Join(t.TempDir(), "pid")
	daemon := exec.Command("qemu-storage-daemon", "--blockdev", "driver=file,node-name=f,filename="+path,
		"--blockdev", "driver=qcow2,node-name=d,file=f", "--pidfile", pidFile)
	var out bytes.Buffer
	daemon.Stdout, daemon.Stderr = &out, &out
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { daemon.Process.Kill(); daemon.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for _, err := os.Stat(pidFile); err != nil && time.Now().Before(deadline); _, err = os.Stat(pidFile) {
		time.Sleep(20 * time.Millisecond)
	}
	if err := b.Snapshot(t.Context(), "vol-1", "snap-1"); trustack.ErrorCode(err) != trustack.ECONFLICT {
		t.Errorf("a snapshot of an open volume: %v, want ECONFLICT (the daemon said %q)", err, out.String())
	}
	if files, _ := filepath.Glob(filepath.Join(dir, snapshotPrefix+"*")); len(files) != 0 {
		t.Errorf("files left by the refused snapshot: %v", files)
	}
}
