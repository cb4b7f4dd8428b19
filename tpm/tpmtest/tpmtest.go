// Package tpmtest gives tests real TPMs: swtpm instances, each on its own
// copy of one TPM manufactured per test binary (manufacturing takes a
// second; copying its state takes none), so that every test has PCRs,
// keys and a clock of its own and the same EKs and manufacturer CA.
package tpmtest

import (
	"context"
	"os"
	"sync"
	"testing"

	"github.com/trustack/trustack/tpm"
)

// Factory manufactures its TPM on first use. Call Close from TestMain once
// the tests ran.
type Factory struct {
	once sync.Once
	dir  string
	ca   tpm.LocalCA
	err  error
}

// Manufactured returns the directory of the manufactured TPM and its
// manufacturer's CA. Without swtpm it fails the test, saying how to
// install it.
func (f *Factory) Manufactured(tb testing.TB) (dir string, ca tpm.LocalCA) {
	tb.Helper()
	f.once.Do(func() {
		if f.dir, f.err = os.MkdirTemp("", "tpmtest-"); f.err == nil {
			f.ca, f.err = tpm.Manufacture(context.Background(), f.dir, "")
		}
	})
	if f.err != nil {
		tb.Fatalf("manufacture the test TPM (install swtpm and swtpm-tools: scripts/install-deps): %v", f.err)
	}
	return f.dir, f.ca
}

// Copy puts a copy of the manufactured TPM's state in a new directory of
// the test and returns the directory, for tpm.Start.
func (f *Factory) Copy(tb testing.TB) string {
	tb.Helper()
	from, _ := f.Manufactured(tb)
	dir := tb.TempDir()
	if err := tpm.Copy(from, dir); err != nil {
		tb.Fatal(err)
	}
	return dir
}

// Start starts an swtpm on the TPM in dir, stopped when the test ends,
// and returns its address for tpm.Open.
func Start(tb testing.TB, dir string) string {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addr, stop, err := tpm.Start(ctx, dir)
	if err != nil {
		cancel()
		tb.Fatalf("start swtpm: %v", err)
	}
	tb.Cleanup(func() {
		if err := stop(); err != nil {
			tb.Errorf("stop swtpm: %v", err)
		}
		cancel()
	})
	return addr
}

// Open opens the TPM at addr, closed when the test ends. swtpm serves one
// connection at a time: close a TPM before opening it again.
func Open(tb testing.TB, addr string) *tpm.TPM {
	tb.Helper()
	tp, err := tpm.Open(addr)
	if err != nil {
		tb.Fatalf("open %s: %v", addr, err)
	}
	tb.Cleanup(func() { tp.Close() })
	return tp
}

// OpenCopy starts an swtpm on a copy of the manufactured TPM and opens it.
func (f *Factory) OpenCopy(tb testing.TB) *tpm.TPM {
	tb.Helper()
	return Open(tb, Start(tb, f.Copy(tb)))
}

// Close removes the manufactured TPM.
func (f *Factory) Close() {
	if f.dir != "" {
		os.RemoveAll(f.dir)
	}
}
