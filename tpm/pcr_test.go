package tpm_test

import (
	"bytes"
	"crypto"
	"crypto/sha1"
	"crypto/sha256"
	"testing"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/tpm"
)

func allPCRs(h crypto.Hash) tpm.PCRSelection {
	sel := tpm.PCRSelection{Hash: h}
	for i := range 24 {
		sel.PCRs = append(sel.PCRs, i)
	}
	return sel
}

func TestReadPCRsOfBothBanks(t *testing.T) {
	t.Parallel()
	tp := openTPM(t)
	for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256} {
		bank, err := tp.ReadPCRs(allPCRs(h))
		if err != nil {
			t.Fatalf("ReadPCRs(%v): %v", h, err)
		}
		if bank.Hash != h || len(bank.Values) != 24 {
			t.Fatalf("ReadPCRs(%v): got %d values of %v, want 24 of %v", h, len(bank.Values), bank.Hash, h)
		}
		// After TPM2_Startup(CLEAR) with nothing measured, the static
		// PCRs hold zeros.
		for i := range 16 {
			if want := make([]byte, h.Size()); !bytes.Equal(bank.Values[i], want) {
				t.Errorf("%v PCR %d: got %x, want %x", h, i, bank.Values[i], want)
			}
		}
	}
}

// The userspace IMA measurer extends PCR 10 in both banks with one
// command, as the kernel does; each bank becomes H(PCR || digest).
func TestExtendPCR10InBothBanks(t *testing.T) {
	t.Parallel()
	tp := openTPM(t)
	want1, want256 := make([]byte, sha1.Size), make([]byte, sha256.Size)
	for _, entry := range []string{"boot_aggregate", "/usr/bin/trustack", "/usr/bin/qemu-system-x86_64"} {
		d1, d256 := sha1.Sum([]byte(entry)), sha256.Sum256([]byte(entry))
		if err := tp.ExtendPCR(tpm.IMAPCR, map[crypto.Hash][]byte{crypto.SHA1: d1[:], crypto.SHA256: d256[:]}); err != nil {
			t.Fatalf("ExtendPCR: %v", err)
		}
		n1 := sha1.Sum(append(want1, d1[:]...))
		n256 := sha256.Sum256(append(want256, d256[:]...))
		want1, want256 = n1[:], n256[:]
	}
	for h, want := range map[crypto.Hash][]byte{crypto.SHA1: want1, crypto.SHA256: want256} {
		bank, err := tp.ReadPCRs(tpm.PCRSelection{Hash: h, PCRs: []int{tpm.IMAPCR}})
		if err != nil {
			t.Fatalf("ReadPCRs: %v", err)
		}
		if got := bank.Values[tpm.IMAPCR]; !bytes.Equal(got, want) {
			t.Errorf("%v PCR 10: got %x, want the replay's %x", h, got, want)
		}
	}
}

func TestExtendPCRRejects(t *testing.T) {
	t.Parallel()
	tp := openTPM(t)
	d := make([]byte, sha256.Size)
	for _, tc := range []struct {
		name    string
		pcr     int
		digests map[crypto.Hash][]byte
	}{
		{"a digest of the wrong size", 10, map[crypto.Hash][]byte{crypto.SHA1: d}},
		{"no digest", 10, nil},
		{"a PCR that does not exist", 24, map[crypto.Hash][]byte{crypto.SHA256: d}},
		// PCRs 17 to 22 belong to the dynamic root of trust: locality
		// 0, where software runs, cannot extend them.
		{"a PCR of locality 4", 17, map[crypto.Hash][]byte{crypto.SHA256: d}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tp.ExtendPCR(tc.pcr, tc.digests); trustack.ErrorCode(err) != trustack.EINVALID {
				t.Errorf("ExtendPCR: got %v, want an invalid error", err)
			}
		})
	}
}
