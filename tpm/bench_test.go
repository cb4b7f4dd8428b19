package tpm_test

import (
	"testing"

	"github.com/trustack/trustack/tpm"
)

// BenchmarkVerifyQuote measures the verifier's check of a real quote
// (made once on swtpm) over QuotePCRs with an ECDSA P-256 AK: signature,
// format, nonce, PCR digest. It is single-threaded, so verifications/s is
// per core; run it with -cpu 1 to pin GOMAXPROCS as well.
func BenchmarkVerifyQuote(b *testing.B) {
	tp := openTPM(b)
	ak := createAK(b, tp)
	q := quote(b, tp, ak, []byte("a 32-byte nonce from the verifier"))
	akPublic, err := tpm.ParseAKPublic(ak.Public().Bytes())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tpm.VerifyQuote(akPublic, q.attest, q.sig, q.nonce, q.pcrs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifications/s")
}

// BenchmarkParseAKPublic measures parsing an AK's public area, which a
// verifier does once per host, not per quote.
func BenchmarkParseAKPublic(b *testing.B) {
	tp := openTPM(b)
	raw := createAK(b, tp).Public().Bytes()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tpm.ParseAKPublic(raw); err != nil {
			b.Fatal(err)
		}
	}
}
