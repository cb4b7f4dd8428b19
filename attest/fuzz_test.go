package attest_test

import (
	"bytes"
	"testing"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/attest"
)

// FuzzVerify feeds Verify evidence whose quote, signature and log are
// mutations of a real host's: whatever the bytes, it decides without
// panicking, and it never trusts a quote other than the one the TPM
// signed. The seeds run in make test; `go test -fuzz FuzzVerify
// ./attest` explores further.
func FuzzVerify(f *testing.F) {
	h := newHost(f, baseline...)
	wl := h.whitelist("baseline")
	st := h.registered(f)
	real := h.evidence(f, nonce(1), 0)
	f.Add(real.Attest, real.Signature, real.Log, 0)
	f.Add(real.Attest, real.Signature, real.Log[:len(real.Log)/2], 0)
	f.Add(real.Attest[:10], real.Signature, real.Log, 1)
	f.Add([]byte{}, []byte{}, []byte{}, -1)
	f.Fuzz(func(t *testing.T, att, sig, log []byte, from int) {
		ev := trustack.Evidence{Nonce: nonce(1), Attest: att, Signature: sig, PCRs: real.PCRs, Log: log, FromEntry: from}
		v, next := attest.Verify(ev, nonce(1), st, wl)
		switch v.State {
		case trustack.VerdictTrusted:
			if !bytes.Equal(att, real.Attest) {
				t.Fatalf("trusted a quote the TPM did not sign: %x", att)
			}
		case trustack.VerdictUntrusted:
			if len(v.Reasons) == 0 {
				t.Fatal("untrusted without a reason")
			}
			if next.Attested || next.Replay != st.Replay {
				t.Fatalf("an untrusted verdict changed the state: %+v", next)
			}
		default:
			t.Fatalf("verdict %q", v.State)
		}
	})
}
