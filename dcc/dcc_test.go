package dcc

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/attest"
	"github.com/trustack/trustack/tpm"
	"github.com/trustack/trustack/tpm/tpmtest"
	"github.com/trustack/trustack/wire"
)

var tpms tpmtest.Factory

func TestMain(m *testing.M) {
	code := m.Run()
	tpms.Close()
	os.Exit(code)
}

// attestOnce asks d for evidence as the verifier would from st and
// checks it, returning the verdict and the state to keep.
func attestOnce(t *testing.T, d *DCC, st attest.HostState, boot uint32) (trustack.Verdict, attest.HostState, uint32) {
	t.Helper()
	nonce, err := attest.NewNonce(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := d.Evidence(context.Background(), wire.EvidenceRequest{Nonce: nonce, FromEntry: st.Replay.Entries, Boot: boot, Attested: st.Attested})
	if err != nil {
		t.Fatal(err)
	}
	v, next := attest.Verify(rep.Evidence, nonce, st, nil)
	return v, next, rep.Boot
}

// TestUserspaceMeasurementsAcrossRestartsAndReboots measures a file in
// userspace on a real swtpm and has the verifier's checks pass on the
// evidence: at first, after a new measurement (only the new entry sent),
// after the agent restarts (same AK, the log resumed), and after the TPM
// reboots (a new log, sent from its start).
func TestUserspaceMeasurementsAcrossRestartsAndReboots(t *testing.T) {
	tpms.Manufactured(t)
	addr := tpmtest.Start(t, tpms.Copy(t))
	dir := t.TempDir()
	app := filepath.Join(dir, "app.bin")
	if err := os.WriteFile(app, []byte("v1"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Host: "h1", Dir: dir, TPM: addr, KernelLog: filepath.Join(dir, "no-kernel-log"), Files: []string{filepath.Join(dir, "*.bin")}}
	d, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if d.Mode() != trustack.MeasuredInUserspace {
		t.Fatalf("mode %s without a kernel log, want userspace", d.Mode())
	}
	ak, err := tpm.ParseAKPublic(d.ak.Public().Bytes())
	if err != nil {
		t.Fatal(err)
	}
	st := attest.HostState{AK: ak}
	v, st, boot := attestOnce(t, d, st, 0)
	if v.State != trustack.VerdictTrusted || st.Replay.Entries != 2 {
		t.Fatalf("first attestation: %+v, %d entries verified; want trusted, 2 (boot_aggregate, app.bin)", v, st.Replay.Entries)
	}

	// A change is measured once; putting the content back adds nothing.
	if err := os.WriteFile(app, []byte("v2, longer"), 0o644); err != nil {
		t.Fatal(err)
	}
	if n, err := d.meas.measure(); n != 1 || err != nil {
		t.Fatalf("measure a changed file: %d entries, %v; want 1", n, err)
	}
	if err := os.WriteFile(app, []byte("v1"), 0o644); err != nil {
		t.Fatal(err)
	}
	if n, err := d.meas.measure(); n != 0 || err != nil {
		t.Fatalf("measure a file put back: %d entries, %v; want 0", n, err)
	}
	v, st, boot = attestOnce(t, d, st, boot)
	if v.State != trustack.VerdictTrusted || st.Replay.Entries != 3 {
		t.Fatalf("after a change: %+v, %d entries; want trusted, 3", v, st.Replay.Entries)
	}

	// The agent restarts: same AK, the log resumed from its file.
	d.Close()
	if d, err = Open(cfg); err != nil {
		t.Fatal(err)
	}
	if string(d.ak.Public().Bytes()) != string(ak.Bytes()) {
		t.Error("the AK changed across a restart of the agent")
	}
	v, st, boot = attestOnce(t, d, st, boot)
	if v.State != trustack.VerdictTrusted || st.Replay.Entries != 3 {
		t.Fatalf("after a restart: %+v, %d entries; want trusted, 3", v, st.Replay.Entries)
	}

	// The TPM reboots: PCR 10 is reset, the agent starts a new log and
	// sends it from its start.
	if err := d.tpm.PowerCycle(); err != nil {
		t.Fatal(err)
	}
	d.Close()
	if d, err = Open(cfg); err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	v, st, _ = attestOnce(t, d, st, boot)
	if v.State != trustack.VerdictTrusted || st.Replay.Entries != 2 {
		t.Fatalf("after a reboot: %+v, %d entries; want trusted, 2", v, st.Replay.Entries)
	}
}
