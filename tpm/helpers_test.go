package tpm_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/trustack/trustack/tpm"
)

// The tests run on real swtpm instances. Manufacturing one takes a second
// (swtpm_localca makes a CA, swtpm_setup two EKs), so one TPM is
// manufactured for the whole run and every test starts its own swtpm on a
// copy of its state in the test's directory: same EKs, but PCRs, keys
// and clock of its own.
var (
	templateDir  string
	templateOnce sync.Once
	templateCA   tpm.LocalCA
	templateErr  error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tpm-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	templateDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// manufactured returns the local CA of the TPM manufactured for the run.
// Without swtpm it fails the test, saying how to install it.
func manufactured(t testing.TB) tpm.LocalCA {
	t.Helper()
	templateOnce.Do(func() {
		templateCA, templateErr = tpm.Manufacture(context.Background(), templateDir, "")
	})
	if templateErr != nil {
		t.Fatalf("manufacture the test TPM: %v", templateErr)
	}
	return templateCA
}

// swtpm is one running swtpm of a test.
type swtpm struct {
	dir  string
	addr string
	ca   tpm.LocalCA
}

// startSwtpm starts an swtpm on a copy of the run's manufactured TPM, in
// the test's directory, stopped when the test ends.
func startSwtpm(t testing.TB) *swtpm {
	t.Helper()
	ca := manufactured(t)
	dir := t.TempDir()
	copyDir(t, filepath.Join(templateDir, "state"), filepath.Join(dir, "state"))
	return startSwtpmIn(t, dir, ca)
}

// startSwtpmIn starts an swtpm on the TPM manufactured in dir.
func startSwtpmIn(t testing.TB, dir string, ca tpm.LocalCA) *swtpm {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addr, stop, err := tpm.Start(ctx, dir)
	if err != nil {
		cancel()
		t.Fatalf("start swtpm: %v", err)
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("stop swtpm: %v", err)
		}
		cancel()
	})
	return &swtpm{dir: dir, addr: addr, ca: ca}
}

// open opens the swtpm, closed when the test ends. swtpm serves one
// connection at a time: close the TPM before opening it again.
func (s *swtpm) open(t testing.TB) *tpm.TPM {
	t.Helper()
	tp, err := tpm.Open(s.addr)
	if err != nil {
		t.Fatalf("open %s: %v", s.addr, err)
	}
	t.Cleanup(func() { tp.Close() })
	return tp
}

// openTPM starts an swtpm for the test and opens it.
func openTPM(t testing.TB) *tpm.TPM {
	t.Helper()
	return startSwtpm(t).open(t)
}

func copyDir(t testing.TB, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		src, err := os.Open(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		dst, err := os.OpenFile(filepath.Join(to, e.Name()), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.Copy(dst, src)
		src.Close()
		if cerr := dst.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func createAK(t testing.TB, tp *tpm.TPM) *tpm.AK {
	t.Helper()
	ak, err := tp.CreateAK()
	if err != nil {
		t.Fatalf("CreateAK: %v", err)
	}
	return ak
}
