package ima

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
)

// fakeTPM holds PCR 10 of the SHA-1 and SHA-256 banks and extends them as
// TPM2_PCR_Extend does. The tpm package is where a real TPM (swtpm) is
// used; here only the extend arithmetic matters.
type fakeTPM struct {
	mu      sync.Mutex
	sha1    []byte
	sha256  []byte
	extends int
	fail    error
}

func newFakeTPM() *fakeTPM {
	return &fakeTPM{sha1: make([]byte, 20), sha256: make([]byte, 32)}
}

func (t *fakeTPM) Extend(pcr int, sha1Digest, sha256Digest []byte) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.fail != nil {
		return t.fail
	}
	if pcr != 10 {
		return fmt.Errorf("extend of PCR %d", pcr)
	}
	t.sha1 = extend(crypto.SHA1, t.sha1, sha1Digest)
	t.sha256 = extend(crypto.SHA256, t.sha256, sha256Digest)
	t.extends++
	return nil
}

func (t *fakeTPM) quote(h crypto.Hash) []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	if h == crypto.SHA1 {
		return bytes.Clone(t.sha1)
	}
	return bytes.Clone(t.sha256)
}

func bootPCRs() [][]byte {
	var p [][]byte
	for i := range 10 {
		p = append(p, bytes.Repeat([]byte{byte(0x10 + i)}, 32))
	}
	return p
}

// mapOpen opens absolute paths in a MapFS.
func mapOpen(fsys fs.FS) func(string) (io.ReadCloser, error) {
	return func(p string) (io.ReadCloser, error) { return fsys.Open(strings.TrimPrefix(p, "/")) }
}

func newTestMeasurer(tb testing.TB, tpm *fakeTPM, fsys fs.FS, files ...string) *Measurer {
	tb.Helper()
	m, err := NewMeasurer(MeasurerConfig{Extender: tpm, BootPCRs: bootPCRs(), Files: files, Open: mapOpen(fsys)})
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// verifyAgainstTPM replays the measurer's list, as written in both formats
// and read back, onto the fake TPM's PCR 10 in both banks.
func verifyAgainstTPM(tb testing.TB, m *Measurer, tpm *fakeTPM) {
	tb.Helper()
	var asc, bin bytes.Buffer
	if err := m.WriteASCII(&asc, 0); err != nil {
		tb.Fatal(err)
	}
	if err := m.WriteBinary(&bin, 0); err != nil {
		tb.Fatal(err)
	}
	fromASCII, err := ParseASCII(asc.Bytes())
	if err != nil {
		tb.Fatal(err)
	}
	fromBinary, err := ParseBinary(bin.Bytes())
	if err != nil {
		tb.Fatal(err)
	}
	want := m.Entries(0)
	for name, got := range map[string][]Entry{"ascii": fromASCII, "binary": fromBinary} {
		if !entriesEqual(got, want) {
			tb.Errorf("%s: read back %d entries, not the %d written", name, len(got), len(want))
		}
		for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256} {
			n, err := mustReplayer(tb, State{}).ReplayTo(got, h, tpm.quote(h))
			if err != nil || n != len(want) {
				tb.Errorf("%s list, %v bank: replay covers %d, %v; want %d", name, h, n, err, len(want))
			}
		}
	}
}

func entriesEqual(a, b []Entry) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !entryEqual(&a[i], &b[i]) {
			return false
		}
	}
	return true
}

func TestMeasurer(t *testing.T) {
	fsys := fstest.MapFS{
		"usr/bin/trustack":            {Data: []byte("trustack binary v1")},
		"usr/bin/qemu-system-x86_64":  {Data: []byte("qemu")},
		"etc/trustack/trustack.yaml":  {Data: []byte("listen: :5000\n")},
		"usr/lib/libc.so.6":           {Data: []byte("libc")},
		"etc/trustack/with space.txt": {Data: []byte("odd name")},
	}
	tpm := newFakeTPM()
	m := newTestMeasurer(t, tpm, fsys, "/usr/bin/trustack", "/usr/bin/qemu-system-x86_64", "/etc/trustack/trustack.yaml", "/usr/bin/missing")

	t.Run("boot_aggregate first", func(t *testing.T) {
		first := m.Entries(0)[0]
		want := hashOf(crypto.SHA256, bytes.Join(bootPCRs(), nil))
		if first.Path != "boot_aggregate" || first.FileHashAlgo != "sha256" || !bytes.Equal(first.FileDigest, want) {
			t.Errorf("first entry %s %s:%x, want boot_aggregate sha256:%x", first.Path, first.FileHashAlgo, first.FileDigest, want)
		}
		if tpm.extends != 1 {
			t.Errorf("%d extends, want 1", tpm.extends)
		}
	})

	t.Run("MeasureAll measures every file it can", func(t *testing.T) {
		added, err := m.MeasureAll()
		if added != 3 || !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("got %d added, %v; want 3 and a not-exist error for /usr/bin/missing", added, err)
		}
		entries := m.Entries(1)
		content := sha256.Sum256([]byte("trustack binary v1"))
		if len(entries) != 3 || entries[0].Path != "/usr/bin/trustack" || !bytes.Equal(entries[0].FileDigest, content[:]) || entries[0].TemplateName != "ima-ng" {
			t.Errorf("got %+v, want ima-ng entries for the three files, the first with digest %x", entries, content)
		}
		verifyAgainstTPM(t, m, tpm)
	})

	t.Run("a file measured again unchanged adds nothing", func(t *testing.T) {
		before := tpm.extends
		added, err := m.MeasureAll()
		if added != 0 || tpm.extends != before || m.Len() != 4 {
			t.Errorf("got %d added, %d extends, %d entries, %v; want 0, 0, 4", added, tpm.extends-before, m.Len(), err)
		}
	})

	t.Run("a changed file adds an entry", func(t *testing.T) {
		fsys["usr/bin/trustack"] = &fstest.MapFile{Data: []byte("trustack binary v2, tampered")}
		e, added, err := m.Measure("/usr/bin/trustack")
		if err != nil || !added {
			t.Fatalf("got added %v, %v; want a new entry", added, err)
		}
		if want := sha256.Sum256([]byte("trustack binary v2, tampered")); !bytes.Equal(e.FileDigest, want[:]) {
			t.Errorf("digest %x, want %x", e.FileDigest, want)
		}
		if m.Len() != 5 {
			t.Errorf("%d entries, want 5", m.Len())
		}
		verifyAgainstTPM(t, m, tpm)
	})

	t.Run("restoring the file adds nothing: the kernel logs a measurement once per boot", func(t *testing.T) {
		fsys["usr/bin/trustack"] = &fstest.MapFile{Data: []byte("trustack binary v1")}
		_, added, err := m.Measure("/usr/bin/trustack")
		if err != nil || added {
			t.Errorf("got added %v, %v; want nothing added", added, err)
		}
		if m.Len() != 5 {
			t.Errorf("%d entries, want 5 (the tampered one stays)", m.Len())
		}
	})

	t.Run("spaces in a name become underscores", func(t *testing.T) {
		e, added, err := m.Measure("/etc/trustack/with space.txt")
		if err != nil || !added || e.Path != "/etc/trustack/with_space.txt" {
			t.Errorf("got %q, added %v, %v; want /etc/trustack/with_space.txt", e.Path, added, err)
		}
		verifyAgainstTPM(t, m, tpm)
	})

	t.Run("a failed extend leaves the list as it was", func(t *testing.T) {
		fsys["usr/lib/libc.so.6"] = &fstest.MapFile{Data: []byte("libc")}
		n := m.Len()
		tpm.fail = errors.New("TPM unreachable")
		if _, _, err := m.Measure("/usr/lib/libc.so.6"); err == nil {
			t.Fatal("got no error")
		}
		tpm.fail = nil
		if m.Len() != n {
			t.Errorf("%d entries after a failed extend, want %d", m.Len(), n)
		}
		if _, added, err := m.Measure("/usr/lib/libc.so.6"); err != nil || !added {
			t.Errorf("retry: added %v, %v; want added", added, err)
		}
		verifyAgainstTPM(t, m, tpm)
	})

	t.Run("relative paths are refused", func(t *testing.T) {
		if _, _, err := m.Measure("usr/bin/trustack"); err == nil {
			t.Error("got no error")
		}
		if _, err := NewMeasurer(MeasurerConfig{Extender: tpm, BootPCRs: bootPCRs(), Files: []string{"etc/x"}}); err == nil {
			t.Error("NewMeasurer with a relative file: got no error")
		}
	})

	t.Run("Entries from an index", func(t *testing.T) {
		all := m.Entries(0)
		if got := m.Entries(3); !entriesEqual(got, all[3:]) {
			t.Errorf("Entries(3) has %d entries, want %d", len(got), len(all)-3)
		}
		if got := m.Entries(len(all) + 5); len(got) != 0 {
			t.Errorf("Entries past the end: got %d, want none", len(got))
		}
	})
}

func TestMeasurerResume(t *testing.T) {
	fsys := fstest.MapFS{"usr/bin/trustack": {Data: []byte("v1")}}
	tpm := newFakeTPM()
	m := newTestMeasurer(t, tpm, fsys, "/usr/bin/trustack")
	if _, err := m.MeasureAll(); err != nil {
		t.Fatal(err)
	}
	var saved bytes.Buffer
	if err := m.WriteBinary(&saved, 0); err != nil {
		t.Fatal(err)
	}

	// The agent restarts; the TPM keeps its PCRs.
	resume, err := ParseBinary(saved.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	extends := tpm.extends
	m2, err := NewMeasurer(MeasurerConfig{Extender: tpm, BootPCRs: bootPCRs(), Files: []string{"/usr/bin/trustack"}, Open: mapOpen(fsys), Resume: resume})
	if err != nil {
		t.Fatal(err)
	}
	if added, err := m2.MeasureAll(); added != 0 || err != nil || tpm.extends != extends {
		t.Errorf("resumed measurer re-measuring an unchanged file: %d added, %d extends, %v; want none", added, tpm.extends-extends, err)
	}
	fsys["usr/bin/trustack"] = &fstest.MapFile{Data: []byte("v2")}
	if added, err := m2.MeasureAll(); added != 1 || err != nil {
		t.Errorf("resumed measurer, changed file: %d added, %v; want 1", added, err)
	}
	verifyAgainstTPM(t, m2, tpm)

	other := bootPCRs()
	other[4][0] ^= 1
	if _, err := NewMeasurer(MeasurerConfig{Extender: tpm, BootPCRs: other, Resume: resume}); err == nil {
		t.Error("resuming a list whose boot_aggregate does not match the boot PCRs: got no error")
	}
	bad := append([]Entry(nil), resume...)
	bad[1].TemplateHash = bytes.Clone(bad[1].TemplateHash)
	bad[1].TemplateHash[0] ^= 1
	if _, err := NewMeasurer(MeasurerConfig{Extender: tpm, Resume: bad}); !errors.Is(err, ErrTemplateHash) {
		t.Errorf("resuming an altered list: got %v, want ErrTemplateHash", err)
	}
}

func TestMeasurerSHA1BootAggregate(t *testing.T) {
	var pcrs [][]byte
	for i := range 8 {
		pcrs = append(pcrs, bytes.Repeat([]byte{byte(i)}, 20))
	}
	m, err := NewMeasurer(MeasurerConfig{Extender: newFakeTPM(), BootPCRs: pcrs, BootHash: crypto.SHA1})
	if err != nil {
		t.Fatal(err)
	}
	first := m.Entries(0)[0]
	if want := hashOf(crypto.SHA1, bytes.Join(pcrs, nil)); first.FileHashAlgo != "sha1" || !bytes.Equal(first.FileDigest, want) {
		t.Errorf("got %s:%x, want sha1:%x", first.FileHashAlgo, first.FileDigest, want)
	}
	if _, err := NewMeasurer(MeasurerConfig{Extender: newFakeTPM()}); err == nil {
		t.Error("no boot PCRs: got no error")
	}
	if _, err := NewMeasurer(MeasurerConfig{BootPCRs: bootPCRs()}); err == nil {
		t.Error("no Extender: got no error")
	}
}

// TestMeasurerRealFiles uses the file system, through os.Open.
func TestMeasurerRealFiles(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "qemu")
	if err := os.WriteFile(p, []byte("qemu v9"), 0o644); err != nil {
		t.Fatal(err)
	}
	tpm := newFakeTPM()
	m, err := NewMeasurer(MeasurerConfig{Extender: tpm, BootPCRs: bootPCRs(), Files: []string{p}})
	if err != nil {
		t.Fatal(err)
	}
	if added, err := m.MeasureAll(); added != 1 || err != nil {
		t.Fatalf("got %d, %v; want 1 added", added, err)
	}
	if err := os.WriteFile(p, []byte("qemu v9, patched"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, added, err := m.Measure(p); !added || err != nil {
		t.Errorf("changed file: added %v, %v; want added", added, err)
	}
	verifyAgainstTPM(t, m, tpm)
}

// TestMeasurerConcurrent: concurrent measurements keep the list in the
// order of the extends.
func TestMeasurerConcurrent(t *testing.T) {
	fsys := fstest.MapFS{}
	var files []string
	for i := range 50 {
		fsys[fmt.Sprintf("lib/%d.so", i)] = &fstest.MapFile{Data: []byte{byte(i)}}
		files = append(files, fmt.Sprintf("/lib/%d.so", i))
	}
	tpm := newFakeTPM()
	m := newTestMeasurer(t, tpm, fsys)
	var wg sync.WaitGroup
	for _, f := range files {
		wg.Go(func() {
			if _, _, err := m.Measure(f); err != nil {
				t.Error(err)
			}
		})
		wg.Go(func() { _ = m.Entries(0) })
	}
	wg.Wait()
	if m.Len() != 51 {
		t.Errorf("%d entries, want 51", m.Len())
	}
	verifyAgainstTPM(t, m, tpm)
}
