package file

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/trustack/trustack"
)

// TestOpenVolumesAreNotReverted: while a process has a volume open, as a
// guest's QEMU does, a revert is refused and the volume's file is the
// same; a revert cut short before its rename leaves the volume as it was
// once the backend opens again.
func TestOpenVolumesAreNotReverted(t *testing.T) {
	dir := t.TempDir()
	b, err := New(dir, QCOW2)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Create(t.Context(), "vol-1", 1); err != nil {
		t.Fatal(err)
	}
	if err := b.Snapshot(t.Context(), "vol-1", "snap-1"); err != nil {
		t.Fatal(err)
	}
	path, _, _ := b.Locate(t.Context(), "vol-1")
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
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
	if err := b.Revert(t.Context(), "vol-1", "snap-1"); trustack.ErrorCode(err) != trustack.ECONFLICT {
		t.Errorf("a revert of an open volume: %v, want ECONFLICT (the daemon said %q)", err, out.String())
	}
	if after, err := os.Stat(path); err != nil || !os.SameFile(before, after) {
		t.Errorf("the refused revert replaced the volume's file (%v)", err)
	}
	daemon.Process.Kill()
	daemon.Wait()

	// A revert cut short: its overlay made, not renamed.
	if err := os.WriteFile(path+partial, []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err = New(dir, QCOW2); err != nil {
		t.Fatal(err)
	}
	if after, err := os.Stat(path); err != nil || !os.SameFile(before, after) {
		t.Errorf("the volume's file changed with a revert cut short (%v)", err)
	}
	if _, err := os.Stat(path + partial); !os.IsNotExist(err) {
		t.Errorf("the unfinished revert's file is still there: %v", err)
	}
	if err := b.Revert(t.Context(), "vol-1", "snap-1"); err != nil {
		t.Errorf("a revert once the volume is closed: %v", err)
	}
}
