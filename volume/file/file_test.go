package file

import (
	"os"
	"path/filepath"
	"testing"

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
