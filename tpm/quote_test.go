package tpm_test

import (
	"bytes"
	"crypto"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"maps"
	"testing"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/tpm"
)

// quoted is a quote made on an swtpm, with what verifying it takes.
type quoted struct {
	tp          *tpm.TPM
	ak          *tpm.AK
	nonce       []byte
	attest, sig []byte
	pcrs        tpm.PCRBank
}

// quote measures two entries into PCR 10, as the IMA measurer does, and
// has the TPM quote QuotePCRs.
func quote(t testing.TB, tp *tpm.TPM, ak *tpm.AK, nonce []byte) quoted {
	t.Helper()
	for _, entry := range []string{"boot_aggregate", "/usr/bin/trustack"} {
		d1, d256 := sha1.Sum([]byte(entry)), sha256.Sum256([]byte(entry))
		if err := tp.ExtendPCR(tpm.IMAPCR, map[crypto.Hash][]byte{crypto.SHA1: d1[:], crypto.SHA256: d256[:]}); err != nil {
			t.Fatalf("ExtendPCR: %v", err)
		}
	}
	attest, sig, err := tp.Quote(ak, nonce, tpm.QuotePCRs)
	if err != nil {
		t.Fatalf("Quote: %v", err)
	}
	pcrs, err := tp.ReadPCRs(tpm.QuotePCRs)
	if err != nil {
		t.Fatalf("ReadPCRs: %v", err)
	}
	return quoted{tp: tp, ak: ak, nonce: nonce, attest: attest, sig: sig, pcrs: pcrs}
}

func TestQuoteVerifies(t *testing.T) {
	t.Parallel()
	tp := openTPM(t)
	ak := createAK(t, tp)
	q := quote(t, tp, ak, []byte("nonce 1"))
	clock, err := tpm.VerifyQuote(ak.Public(), q.attest, q.sig, q.nonce, q.pcrs)
	if err != nil {
		t.Fatalf("VerifyQuote: %v", err)
	}
	if !clock.Safe || clock.Clock == 0 {
		t.Errorf("clock: got %+v, want a safe, running clock", clock)
	}
	// PCR 10, as the verifier gets it from replaying the log.
	replay := make([]byte, sha256.Size)
	for _, entry := range []string{"boot_aggregate", "/usr/bin/trustack"} {
		d := sha256.Sum256([]byte(entry))
		r := sha256.Sum256(append(replay, d[:]...))
		replay = r[:]
	}
	if !bytes.Equal(q.pcrs.Values[tpm.IMAPCR], replay) {
		t.Errorf("PCR 10: got %x, want the replay's %x", q.pcrs.Values[tpm.IMAPCR], replay)
	}
	pcrs := tpm.PCRBank{Hash: crypto.SHA256, Values: maps.Clone(q.pcrs.Values)}
	pcrs.Values[tpm.IMAPCR] = replay
	if _, err := tpm.VerifyQuote(ak.Public(), q.attest, q.sig, q.nonce, pcrs); err != nil {
		t.Errorf("VerifyQuote with the replayed PCR 10: %v", err)
	}
}

func TestVerifyQuoteRejects(t *testing.T) {
	t.Parallel()
	tp := openTPM(t)
	ak := createAK(t, tp)
	q := quote(t, tp, ak, []byte("the verifier's nonce"))

	other := createAK(t, tp)
	altered := tpm.PCRBank{Hash: crypto.SHA256, Values: maps.Clone(q.pcrs.Values)}
	altered.Values[tpm.IMAPCR] = bytes.Repeat([]byte{0xff}, sha256.Size)
	missing := tpm.PCRBank{Hash: crypto.SHA256, Values: maps.Clone(q.pcrs.Values)}
	delete(missing.Values, 7)
	extra := tpm.PCRBank{Hash: crypto.SHA256, Values: maps.Clone(q.pcrs.Values)}
	extra.Values[16] = make([]byte, sha256.Size)
	sha1Bank, err := tp.ReadPCRs(tpm.PCRSelection{Hash: crypto.SHA1, PCRs: tpm.QuotePCRs.PCRs})
	if err != nil {
		t.Fatal(err)
	}
	attest := bytes.Clone(q.attest)
	attest[len(attest)-1] ^= 1
	sig := bytes.Clone(q.sig)
	sig[len(sig)-1] ^= 1

	for _, tc := range []struct {
		name   string
		ak     *tpm.AKPublic
		attest []byte
		sig    []byte
		nonce  []byte
		pcrs   tpm.PCRBank
		want   error
	}{
		{"a replayed quote (another nonce)", ak.Public(), q.attest, q.sig, []byte("a fresh nonce"), q.pcrs, tpm.ErrQuoteNonce},
		{"no nonce", ak.Public(), q.attest, q.sig, nil, q.pcrs, tpm.ErrQuoteNonce},
		{"a key the verifier did not certify", other.Public(), q.attest, q.sig, q.nonce, q.pcrs, tpm.ErrQuoteSignature},
		{"an altered attestation", ak.Public(), attest, q.sig, q.nonce, q.pcrs, tpm.ErrQuoteSignature},
		{"an altered signature", ak.Public(), q.attest, sig, q.nonce, q.pcrs, tpm.ErrQuoteSignature},
		{"no signature", ak.Public(), q.attest, nil, q.nonce, q.pcrs, tpm.ErrQuoteSignature},
		{"an altered PCR value", ak.Public(), q.attest, q.sig, q.nonce, altered, tpm.ErrQuotePCRs},
		{"a quoted PCR without value", ak.Public(), q.attest, q.sig, q.nonce, missing, tpm.ErrQuotePCRs},
		{"a value of a PCR not quoted", ak.Public(), q.attest, q.sig, q.nonce, extra, tpm.ErrQuotePCRs},
		{"values of another bank", ak.Public(), q.attest, q.sig, q.nonce, sha1Bank, tpm.ErrQuotePCRs},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tpm.VerifyQuote(tc.ak, tc.attest, tc.sig, tc.nonce, tc.pcrs)
			if !errors.Is(err, tc.want) {
				t.Errorf("VerifyQuote: got %v, want %v", err, tc.want)
			}
			if trustack.ErrorCode(err) != trustack.EINVALID {
				t.Errorf("VerifyQuote: got code %q, want %q", trustack.ErrorCode(err), trustack.EINVALID)
			}
		})
	}

	if _, _, err := tp.Quote(ak, make([]byte, tpm.MaxNonce+1), tpm.QuotePCRs); trustack.ErrorCode(err) != trustack.EINVALID {
		t.Errorf("Quote with a nonce over MaxNonce: got %v, want invalid", err)
	}
}

// The clock of a TPM's quotes moves forward, across reboots too; a
// verifier that sees it move back was shown an old quote or a rolled
// back TPM.
func TestQuoteClockMovesForward(t *testing.T) {
	t.Parallel()
	tp := openTPM(t)
	ak := createAK(t, tp)
	verify := func(nonce string) tpm.ClockInfo {
		t.Helper()
		q := quote(t, tp, ak, []byte(nonce))
		clock, err := tpm.VerifyQuote(ak.Public(), q.attest, q.sig, q.nonce, q.pcrs)
		if err != nil {
			t.Fatalf("VerifyQuote: %v", err)
		}
		return clock
	}
	first := verify("first")
	second := verify("second")
	if err := second.Follows(first); err != nil {
		t.Errorf("second quote: %v", err)
	}
	if err := first.Follows(second); err == nil && first.Clock < second.Clock {
		t.Errorf("the first quote follows the second")
	}
	if err := tp.PowerCycle(); err != nil {
		t.Fatalf("PowerCycle: %v", err)
	}
	rebooted := verify("after a reboot")
	if rebooted.ResetCount != second.ResetCount+1 {
		t.Errorf("reset count after a reboot: got %d, want %d", rebooted.ResetCount, second.ResetCount+1)
	}
	if err := rebooted.Follows(second); err != nil {
		t.Errorf("quote after a reboot: %v", err)
	}
	if err := second.Follows(rebooted); trustack.ErrorCode(err) != trustack.EINVALID {
		t.Errorf("a quote from before the reboot follows one after: got %v, want invalid", err)
	}
}

func TestClockInfoFollows(t *testing.T) {
	prev := tpm.ClockInfo{Clock: 1000, ResetCount: 5, RestartCount: 2, Safe: true}
	for _, tc := range []struct {
		name string
		next tpm.ClockInfo
		ok   bool
	}{
		{"later", tpm.ClockInfo{Clock: 2000, ResetCount: 5, RestartCount: 2, Safe: true}, true},
		{"the same instant", prev, true},
		{"after a restart", tpm.ClockInfo{Clock: 2000, ResetCount: 5, RestartCount: 3, Safe: true}, true},
		{"after a reset", tpm.ClockInfo{Clock: 2000, ResetCount: 6, RestartCount: 0, Safe: true}, true},
		{"reset count back", tpm.ClockInfo{Clock: 2000, ResetCount: 4, RestartCount: 9, Safe: true}, false},
		{"restart count back", tpm.ClockInfo{Clock: 2000, ResetCount: 5, RestartCount: 1, Safe: true}, false},
		{"clock back", tpm.ClockInfo{Clock: 999, ResetCount: 5, RestartCount: 2, Safe: true}, false},
		{"clock back after a reset", tpm.ClockInfo{Clock: 999, ResetCount: 6, Safe: true}, false},
		{"unsafe clock", tpm.ClockInfo{Clock: 2000, ResetCount: 6, Safe: false}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.next.Follows(prev)
			if ok := err == nil; ok != tc.ok {
				t.Errorf("Follows: got %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
