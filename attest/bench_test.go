package attest_test

import (
	"crypto"
	"fmt"
	"testing"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/attest"
	"github.com/trustack/trustack/ima"
)

// BenchmarkVerify measures one verified attestation as the verifier runs
// it for every host at every round: a real quote (made once on swtpm) and
// the incremental replay of the 10 entries measured since the last round
// on a 5,000-entry log, each looked up in a 5,000-file white-list. It is
// single-threaded, so attestations/s is per core; run it with -cpu 1.
func BenchmarkVerify(b *testing.B) {
	const total, fresh = 5000, 10
	var files []string
	for i := range total {
		p := fmt.Sprintf("/usr/lib/trustack/lib%04d.so", i)
		files = append(files, p, "content of "+p)
	}
	h := newHost(b, files...)
	wl := h.whitelist("baseline")
	entries := h.m.Entries(0) // boot_aggregate and the files
	from := len(entries) - fresh

	// The verifier's state after the previous round, which covered all
	// but the last 10 entries.
	r, err := ima.NewReplayer(ima.State{}, crypto.SHA256)
	if err != nil {
		b.Fatal(err)
	}
	for i := range entries[:from] {
		if err := r.Extend(&entries[i]); err != nil {
			b.Fatal(err)
		}
	}
	st := h.registered(b)
	// An earlier quote's clock, so that the counters are checked as in a
	// later round.
	n0 := nonce(0)
	v, prev := attest.Verify(h.evidence(b, n0, 0), n0, st, nil)
	if v.State != trustack.VerdictTrusted {
		b.Fatalf("verdict of the earlier quote %s %q", v.State, v.Reasons)
	}
	st.Attested, st.Replay, st.Clock = true, r.State(), prev.Clock
	n := nonce(1)
	ev := h.evidence(b, n, from)

	v, next := attest.Verify(ev, n, st, wl)
	if v.State != trustack.VerdictTrusted || next.Replay.Entries != len(entries) {
		b.Fatalf("verdict %s %q, %d entries verified; want trusted, %d", v.State, v.Reasons, next.Replay.Entries, len(entries))
	}
	b.ReportAllocs()
	for b.Loop() {
		attest.Verify(ev, n, st, wl)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "attestations/s")
}
