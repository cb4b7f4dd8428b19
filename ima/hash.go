package ima

import (
	"bytes"
	"crypto"
	"crypto/sha1"
	"crypto/sha256"
	_ "crypto/sha512" // SHA-384 and SHA-512 banks and lists
	"fmt"
)

func sha1Sum(b []byte) [sha1.Size]byte { return sha1.Sum(b) }

// TemplateDigest returns the hash of e's template data under h: the
// template hash the kernel computes for the bank of algorithm h
// (ima_calc_field_array_hash), whether or not e is a violation.
func TemplateDigest(e *Entry, h crypto.Hash) ([]byte, error) {
	switch h {
	case crypto.SHA1:
		s := sha1.Sum(e.TemplateData)
		return s[:], nil
	case crypto.SHA256:
		s := sha256.Sum256(e.TemplateData)
		return s[:], nil
	}
	if !h.Available() {
		return nil, fmt.Errorf("ima: hash %v is not available", h)
	}
	w := h.New()
	w.Write(e.TemplateData)
	return w.Sum(nil), nil
}

// ExtendDigest returns the digest the kernel extends into PCR e.PCR of the
// bank of algorithm h for e: the template digest, or all 0xff bytes for a
// violation (ima_add_template_entry, kernels 5.8 and later).
func ExtendDigest(e *Entry, h crypto.Hash) ([]byte, error) {
	if e.Violation() {
		if !h.Available() {
			return nil, fmt.Errorf("ima: hash %v is not available", h)
		}
		return bytes.Repeat([]byte{0xff}, h.Size()), nil
	}
	return TemplateDigest(e, h)
}

// logHashFor returns the algorithm of a logged template hash of n bytes:
// SHA-1 for the classic lists, the bank's for the per-bank lists of Linux
// 6.10 and later.
func logHashFor(n int) (crypto.Hash, bool) {
	switch n {
	case sha1.Size:
		return crypto.SHA1, true
	case sha256.Size:
		return crypto.SHA256, true
	case crypto.SHA384.Size():
		return crypto.SHA384, true
	case crypto.SHA512.Size():
		return crypto.SHA512, true
	}
	return 0, false
}

// VerifyTemplateHash checks e's logged template hash against its template
// data and returns an error wrapping ErrTemplateHash if they differ. The
// algorithm is chosen by the hash's size: SHA-1, SHA-256, SHA-384 or
// SHA-512. A violation has nothing to check and returns nil.
func (e *Entry) VerifyTemplateHash() error {
	if e.Violation() {
		return nil
	}
	h, ok := logHashFor(len(e.TemplateHash))
	if !ok {
		return fmt.Errorf("ima: template hash of %d bytes: no such algorithm", len(e.TemplateHash))
	}
	d, err := TemplateDigest(e, h)
	if err != nil {
		return err
	}
	if !bytes.Equal(d, e.TemplateHash) {
		return fmt.Errorf("%w: %s logged %x, data hashes to %x", ErrTemplateHash, e.Path, e.TemplateHash, d)
	}
	return nil
}

// BootAggregate returns the boot_aggregate digest the kernel records first:
// H(PCR0 ‖ … ‖ PCR7) for SHA-1, and H(PCR0 ‖ … ‖ PCR9) for any other bank
// (Linux 5.8 and later; ima_calc_boot_aggregate_tfm). pcrs holds the values
// of PCR 0 upwards from that bank; extra values are ignored.
func BootAggregate(h crypto.Hash, pcrs [][]byte) ([]byte, error) {
	n := 10
	if h == crypto.SHA1 {
		n = 8
	}
	if !h.Available() {
		return nil, fmt.Errorf("ima: boot aggregate: hash %v is not available", h)
	}
	if len(pcrs) < n {
		return nil, fmt.Errorf("ima: boot aggregate: %d PCR values, want %d", len(pcrs), n)
	}
	w := h.New()
	for i, p := range pcrs[:n] {
		if len(p) != h.Size() {
			return nil, fmt.Errorf("ima: boot aggregate: PCR %d is %d bytes, want %d", i, len(p), h.Size())
		}
		w.Write(p)
	}
	return w.Sum(nil), nil
}

// algoOf returns the kernel's name of a hash algorithm (hash_algo_name).
func algoOf(h crypto.Hash) (string, error) {
	switch h {
	case crypto.SHA1:
		return "sha1", nil
	case crypto.SHA256:
		return "sha256", nil
	case crypto.SHA384:
		return "sha384", nil
	case crypto.SHA512:
		return "sha512", nil
	}
	return "", fmt.Errorf("ima: hash %v is not supported", h)
}
