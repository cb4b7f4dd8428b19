package tpm_test

import (
	"bytes"
	"context"
	"crypto"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/tpm"
)

// Manufacture keeps everything in the TPM's directory and its CA
// directory, makes a TPM whose EK certificates chain to that CA, leaves a
// manufactured TPM as it is, and lets TPMs share a CA as a vendor's do.
// The TPMs it makes are distinct: one refuses another's AK.
func TestManufacture(t *testing.T) {
	t.Parallel()
	manufactured(t) // so that the run's TPM, from another CA, is there to compare
	ctx := context.Background()
	dir := t.TempDir()
	ca, err := tpm.Manufacture(ctx, dir, "")
	if err != nil {
		t.Fatalf("Manufacture: %v", err)
	}
	for _, f := range []string{ca.Root, ca.Issuer, filepath.Join(dir, "state", "tpm2-00.permall")} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("after Manufacture: %v", err)
		}
		if !strings.HasPrefix(f, dir) {
			t.Errorf("%s is outside the TPM's directory %s", f, dir)
		}
	}
	state, err := os.ReadFile(filepath.Join(dir, "state", "tpm2-00.permall"))
	if err != nil {
		t.Fatal(err)
	}
	again, err := tpm.Manufacture(ctx, dir, "")
	if err != nil || again != ca {
		t.Fatalf("Manufacture again: got %+v, %v, want %+v", again, err, ca)
	}
	if now, _ := os.ReadFile(filepath.Join(dir, "state", "tpm2-00.permall")); !bytes.Equal(now, state) {
		t.Errorf("Manufacture again changed the TPM's state")
	}

	// A second TPM of the same CA.
	dir2 := t.TempDir()
	ca2, err := tpm.Manufacture(ctx, dir2, filepath.Join(dir, "ca"))
	if err != nil {
		t.Fatalf("Manufacture with a shared CA: %v", err)
	}
	if ca2 != ca {
		t.Errorf("shared CA: got %+v, want %+v", ca2, ca)
	}
	roots, intermediates, err := ca.Pools()
	if err != nil {
		t.Fatal(err)
	}
	runRoots, runIntermediates, err := manufactured(t).Pools()
	if err != nil {
		t.Fatal(err)
	}
	akFile := filepath.Join(t.TempDir(), "ak.json")
	if err := createAK(t, openTPM(t)).Save(akFile); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{dir, dir2} {
		tp := startSwtpmIn(t, d, ca).open(t)
		if _, err := tp.LoadAK(akFile); trustack.ErrorCode(err) != trustack.ECONFLICT {
			t.Errorf("LoadAK of another TPM's AK: got %v, want conflict", err)
		}
		ek, err := tp.EK(tpm.EKRSA2048)
		if err != nil {
			t.Fatalf("EK: %v", err)
		}
		if err := tpm.VerifyEKCert(ek.Cert, roots, intermediates, time.Now()); err != nil {
			t.Errorf("EK certificate of %s with its CA: %v", d, err)
		}
		if err := tpm.VerifyEKCert(ek.Cert, runRoots, runIntermediates, time.Now()); trustack.ErrorCode(err) != trustack.EFORBIDDEN {
			t.Errorf("EK certificate of %s with another swtpm's CA: got %v, want forbidden", d, err)
		}
	}
}

func TestStartStopsWithItsContext(t *testing.T) {
	t.Parallel()
	dir := factory.Copy(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, stop, err := tpm.Start(ctx, dir)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	tp, err := tpm.Open(addr)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	tp.Close()
	cancel()
	if err := stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
	if err := stop(); err != nil {
		t.Errorf("stop again: %v", err)
	}
	if tp, err := tpm.Open(addr); trustack.ErrorCode(err) != trustack.EUNAVAILABLE {
		if err == nil {
			tp.Close()
		}
		t.Errorf("Open after the context ended: got %v, want unavailable", err)
	}

	if _, _, err := tpm.Start(context.Background(), t.TempDir()); trustack.ErrorCode(err) != trustack.ENOTFOUND {
		t.Errorf("Start in a directory with no TPM: got %v, want not found", err)
	}
}

// swtpm started without --flags not-need-init answers every command with
// a failure until it is powered on over its control channel, which
// OpenSwtpm does, in swtpm's protocol, before TPM2_Startup.
func TestOpenPowersOnSwtpm(t *testing.T) {
	t.Parallel()
	dir := factory.Copy(t)
	ports := freePorts(t, 2)
	cmd := exec.CommandContext(t.Context(), "swtpm", "socket", "--tpm2",
		"--tpmstate", "dir="+filepath.Join(dir, "state"),
		"--server", fmt.Sprintf("type=tcp,port=%d,bindaddr=127.0.0.1", ports[0]),
		"--ctrl", fmt.Sprintf("type=tcp,port=%d,bindaddr=127.0.0.1", ports[1]))
	if err := cmd.Start(); err != nil {
		t.Fatalf("start swtpm: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	cmdAddr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	for start := time.Now(); ; time.Sleep(10 * time.Millisecond) {
		if c, err := net.Dial("tcp", cmdAddr); err == nil {
			c.Close()
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("swtpm does not listen on %s", cmdAddr)
		}
	}
	tp, err := tpm.OpenSwtpm(cmdAddr, fmt.Sprintf("127.0.0.1:%d", ports[1]))
	if err != nil {
		t.Fatalf("OpenSwtpm: %v", err)
	}
	defer tp.Close()
	if _, err := tp.ReadPCRs(tpm.PCRSelection{Hash: crypto.SHA256, PCRs: []int{0}}); err != nil {
		t.Errorf("ReadPCRs: %v", err)
	}
}

func TestOpenRejects(t *testing.T) {
	t.Parallel()
	closed := freePorts(t, 2)
	for _, tc := range []struct {
		addr string
		code string
	}{
		{"", trustack.EINVALID},
		{"tpm0", trustack.EINVALID},
		{"swtpm:127.0.0.1:1", trustack.EINVALID},
		{"/nonexistent/tpmrm0", trustack.EUNAVAILABLE},
		{fmt.Sprintf("swtpm:127.0.0.1:%d,127.0.0.1:%d", closed[0], closed[1]), trustack.EUNAVAILABLE},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			tp, err := tpm.Open(tc.addr)
			if err == nil {
				tp.Close()
			}
			if trustack.ErrorCode(err) != tc.code {
				t.Errorf("Open(%q): got %v, want code %s", tc.addr, err, tc.code)
			}
		})
	}
}

// Without swtpm installed, the lifecycle says how to install it.
func TestMissingSwtpmSaysHowToInstall(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	if _, err := tpm.Manufacture(context.Background(), t.TempDir(), ""); trustack.ErrorCode(err) != trustack.EUNAVAILABLE || !strings.Contains(err.Error(), "scripts/install-deps") {
		t.Errorf("Manufacture without swtpm_setup: got %v, want unavailable, with scripts/install-deps", err)
	}
	if _, _, err := tpm.Start(context.Background(), t.TempDir()); trustack.ErrorCode(err) != trustack.EUNAVAILABLE || !strings.Contains(err.Error(), "scripts/install-deps") {
		t.Errorf("Start without swtpm: got %v, want unavailable, with scripts/install-deps", err)
	}
}

// freePorts returns n TCP ports free on 127.0.0.1.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}
