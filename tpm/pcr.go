package tpm

import (
	"crypto"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/google/go-tpm/tpm2"

	"github.com/trustack/trustack"
)

// PCRSelection is a set of PCRs of one bank.
type PCRSelection struct {
	// Hash is the bank's algorithm: crypto.SHA1 or crypto.SHA256, the
	// banks Manufacture gives an swtpm.
	Hash crypto.Hash `json:"hash"`
	// PCRs are the PCR indices, 0 to 23.
	PCRs []int `json:"pcrs"`
}

// IMAPCR is the PCR that Linux IMA, and the agent's userspace measurer
// in its stead, extends with each measurement.
const IMAPCR = 10

// QuotePCRs are the PCRs an attestation quotes: the firmware and boot
// loader's (0 to 7) and IMA's, in the SHA-256 bank.
var QuotePCRs = PCRSelection{Hash: crypto.SHA256, PCRs: []int{0, 1, 2, 3, 4, 5, 6, 7, IMAPCR}}

// BootPCRs are the PCRs that record how the host booted, those a
// PCR-bound key is bound to.
var BootPCRs = PCRSelection{Hash: crypto.SHA256, PCRs: []int{0, 1, 2, 3, 4, 5, 6, 7}}

// maxPCR is the highest PCR index of a PC Client TPM.
const maxPCR = 23

// tpml returns the selection as the TPM wants it.
func (s PCRSelection) tpml() (tpm2.TPMLPCRSelection, error) {
	alg, err := tpmHash(s.Hash)
	if err != nil {
		return tpm2.TPMLPCRSelection{}, err
	}
	if len(s.PCRs) == 0 {
		return tpm2.TPMLPCRSelection{}, trustack.Errorf(trustack.EINVALID, "tpm: no PCR selected")
	}
	idx := make([]uint, len(s.PCRs))
	for i, p := range s.PCRs {
		if p < 0 || p > maxPCR {
			return tpm2.TPMLPCRSelection{}, trustack.Errorf(trustack.EINVALID, "tpm: no PCR %d", p)
		}
		idx[i] = uint(p)
	}
	return tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{
		Hash:      alg,
		PCRSelect: tpm2.PCClientCompatible.PCRs(idx...),
	}}}, nil
}

// PCRBank is a set of PCR values of one bank.
type PCRBank struct {
	// Hash is the bank's algorithm.
	Hash crypto.Hash
	// Values are the PCRs' values by index.
	Values map[int][]byte
}

// digest returns the digest of the bank's values with hash h, in order of
// PCR index, as TPM2_Quote and TPM2_PolicyPCR compute it.
func (b PCRBank) digest(h crypto.Hash) []byte {
	d := h.New()
	for _, i := range slices.Sorted(maps.Keys(b.Values)) {
		d.Write(b.Values[i])
	}
	return d.Sum(nil)
}

// ReadPCRs reads the values of a selection of PCRs.
func (t *TPM) ReadPCRs(sel PCRSelection) (PCRBank, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.readPCRs(sel)
}

func (t *TPM) readPCRs(sel PCRSelection) (PCRBank, error) {
	bank := PCRBank{Hash: sel.Hash, Values: make(map[int][]byte, len(sel.PCRs))}
	want := slices.Clone(sel.PCRs)
	slices.Sort(want)
	want = slices.Compact(want)
	// A TPM answers at most eight digests a call: ask again for the rest.
	for len(want) > 0 {
		tpml, err := PCRSelection{Hash: sel.Hash, PCRs: want}.tpml()
		if err != nil {
			return PCRBank{}, err
		}
		rsp, err := tpm2.PCRRead{PCRSelectionIn: tpml}.Execute(t.tpm)
		if err != nil {
			return PCRBank{}, unavailable("read PCRs", err)
		}
		var got []int
		for _, s := range rsp.PCRSelectionOut.PCRSelections {
			for i, b := range s.PCRSelect {
				for bit := range 8 {
					if b&(1<<bit) != 0 {
						got = append(got, i*8+bit)
					}
				}
			}
		}
		if len(got) == 0 || len(got) != len(rsp.PCRValues.Digests) {
			return PCRBank{}, fmt.Errorf("tpm: read PCRs: the TPM returned %d values for %d PCRs (is the %v bank allocated?)", len(rsp.PCRValues.Digests), len(got), sel.Hash)
		}
		for i, p := range got {
			bank.Values[p] = rsp.PCRValues.Digests[i].Buffer
		}
		want = slices.DeleteFunc(want, func(p int) bool { _, ok := bank.Values[p]; return ok })
	}
	return bank, nil
}

// ExtendPCR extends a PCR in several banks at once with one digest each,
// as the kernel's IMA extends PCR 10 with an entry's digest in every bank
// (PCR = H(PCR || digest)). A bank the TPM has not allocated is skipped
// by the TPM. Errors are invalid for a digest of the wrong size or a PCR
// that cannot be extended from locality 0.
func (t *TPM) ExtendPCR(pcr int, digests map[crypto.Hash][]byte) error {
	if pcr < 0 || pcr > maxPCR {
		return trustack.Errorf(trustack.EINVALID, "tpm: no PCR %d", pcr)
	}
	var values tpm2.TPMLDigestValues
	for _, h := range slices.Sorted(maps.Keys(digests)) {
		alg, err := tpmHash(h)
		if err != nil {
			return err
		}
		if len(digests[h]) != h.Size() {
			return trustack.Errorf(trustack.EINVALID, "tpm: a %v digest is %d bytes, not %d", h, h.Size(), len(digests[h]))
		}
		values.Digests = append(values.Digests, tpm2.TPMTHA{HashAlg: alg, Digest: digests[h]})
	}
	if len(values.Digests) == 0 {
		return trustack.Errorf(trustack.EINVALID, "tpm: nothing to extend PCR %d with", pcr)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	_, err := tpm2.PCRExtend{
		PCRHandle: tpm2.AuthHandle{Handle: tpm2.TPMHandle(pcr), Auth: tpm2.PasswordAuth(nil)},
		Digests:   values,
	}.Execute(t.tpm)
	if err != nil {
		// TPM_RC_LOCALITY is a warning, but no retry at locality 0
		// will change the answer.
		if isTPMError(err) || errors.Is(err, tpm2.TPMRCLocality) {
			return trustack.Errorf(trustack.EINVALID, "tpm: extend PCR %d: %v", pcr, err)
		}
		return unavailable(fmt.Sprintf("extend PCR %d", pcr), err)
	}
	return nil
}
