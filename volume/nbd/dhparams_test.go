package nbd

import (
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"testing"
)

// TestDHParamsAreASafePrime: the Diffie-Hellman parameters that exports'
// daemons read are a 2,048-bit safe prime with generator 2, whose first
// and last 64 bits are ones, as RFC 7919's groups are.
func TestDHParamsAreASafePrime(t *testing.T) {
	block, rest := pem.Decode([]byte(dhParams))
	if block == nil || block.Type != "DH PARAMETERS" || len(rest) != 0 {
		t.Fatalf("dhParams is not one PEM block of DH PARAMETERS: %q", dhParams)
	}
	var params struct{ P, G *big.Int }
	if rest, err := asn1.Unmarshal(block.Bytes, &params); err != nil || len(rest) != 0 {
		t.Fatalf("PKCS #3 parameters: %v (%d bytes after them)", err, len(rest))
	}
	p := params.P
	if p.BitLen() != 2048 || params.G.Int64() != 2 {
		t.Fatalf("a prime of %d bits, generator %v; want 2048 bits, 2", p.BitLen(), params.G)
	}
	ones := new(big.Int).SetUint64(^uint64(0))
	if new(big.Int).Rsh(p, 2048-64).Cmp(ones) != 0 || new(big.Int).And(p, ones).Cmp(ones) != 0 {
		t.Errorf("the prime's first or last 64 bits are not all ones: %x", p)
	}
	q := new(big.Int).Rsh(p, 1) // (p-1)/2, p being odd
	if !p.ProbablyPrime(20) || !q.ProbablyPrime(20) {
		t.Errorf("%x is not a safe prime", p)
	}
}
