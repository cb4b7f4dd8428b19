package tpm

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"

	"github.com/google/go-tpm/tpm2"
	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"

	"github.com/trustack/trustack"
)

// MaxNonce is the longest qualifying nonce a quote carries.
const MaxNonce = 64

// Quote has the TPM sign, with the AK, the values of a selection of PCRs
// and the verifier's nonce. It returns what the TPM signed, a TPMS_ATTEST,
// and the signature, a TPMT_SIGNATURE, for VerifyQuote. The verifier also
// needs the values of the PCRs (ReadPCRs, or for PCR 10 a replay of the
// IMA log). Errors are invalid for a nonce longer than MaxNonce or a bad
// selection.
func (t *TPM) Quote(ak *AK, nonce []byte, sel PCRSelection) (attest, sig []byte, err error) {
	if len(nonce) > MaxNonce {
		return nil, nil, trustack.Errorf(trustack.EINVALID, "tpm: a quote's nonce is at most %d bytes, not %d", MaxNonce, len(nonce))
	}
	tpml, err := sel.tpml()
	if err != nil {
		return nil, nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	h, name, err := t.loadAK(ak)
	if err != nil {
		return nil, nil, err
	}
	defer t.flush(h)
	rsp, err := tpm2.Quote{
		SignHandle:     tpm2.AuthHandle{Handle: h, Name: name, Auth: tpm2.PasswordAuth(nil)},
		QualifyingData: tpm2.TPM2BData{Buffer: nonce},
		InScheme:       tpm2.TPMTSigScheme{Scheme: tpm2.TPMAlgNull},
		PCRSelect:      tpml,
	}.Execute(t.tpm)
	if err != nil {
		return nil, nil, unavailable("quote", err)
	}
	return rsp.Quoted.Bytes(), tpm2.Marshal(rsp.Signature), nil
}

// ClockInfo is the TPM's clock as a quote reports it. Between two quotes
// of a TPM it only moves forward; a verifier checks that with Follows.
type ClockInfo struct {
	// Clock is the time in milliseconds the TPM has been powered on in
	// its life; it survives reboots.
	Clock uint64
	// ResetCount counts TPM resets: reboots, mostly.
	ResetCount uint32
	// RestartCount counts TPM restarts and resumes (from hibernation or
	// suspend) since the last reset.
	RestartCount uint32
	// Safe is false when Clock may be lower than a value the TPM
	// reported before, after a power loss without an orderly shutdown.
	Safe bool
}

// Follows checks that c, the clock of a later quote, moves forward from
// prev, an earlier quote's, as a TPM's clock does: the reset count never
// decreases; the restart count never decreases between resets; the clock
// never goes back and is safe. A quote that fails this was replayed, or
// came from a TPM whose state was rolled back. Errors are invalid.
func (c ClockInfo) Follows(prev ClockInfo) error {
	rolledBack := "the quote is older than one already verified, or the TPM's state was rolled back"
	switch {
	case before(c.ResetCount, prev.ResetCount):
		return trustack.Errorf(trustack.EINVALID, "The TPM's reset count went back by %d: %s.", prev.ResetCount-c.ResetCount, rolledBack)
	case c.ResetCount == prev.ResetCount && before(c.RestartCount, prev.RestartCount):
		return trustack.Errorf(trustack.EINVALID, "The TPM's restart count went back by %d: %s.", prev.RestartCount-c.RestartCount, rolledBack)
	case c.Clock < prev.Clock:
		return trustack.Errorf(trustack.EINVALID, "The TPM's clock went back from %d ms to %d ms: %s.", prev.Clock, c.Clock, rolledBack)
	case !c.Safe:
		return ErrClockUnsafe
	}
	return nil
}

// ErrClockUnsafe is Follows's error for a TPM whose clock may have gone
// back.
var ErrClockUnsafe = &trustack.Error{Code: trustack.EINVALID,
	Message: "The TPM reports that its clock may have gone back (it lost power without an orderly shutdown), so its quotes cannot be ordered."}

// before reports whether counter a is before b. A quote by a key outside
// the endorsement and platform hierarchies, such as the AK, obfuscates the
// reset and restart counts by adding a constant of the key (TPM 2.0 Part 1,
// clock and obfuscation): they still count one by one, but from an
// arbitrary value that may wrap around, so they are compared modulo 2^32.
func before(a, b uint32) bool {
	return int32(a-b) < 0
}

// Errors of VerifyQuote, each for one check, so that a verifier can say
// which failed. All are invalid.
var (
	ErrQuoteSignature = &trustack.Error{Code: trustack.EINVALID, Message: "the quote's signature does not verify with the attestation key"}
	ErrQuoteFormat    = &trustack.Error{Code: trustack.EINVALID, Message: "the quote is not a TPM-generated quote"}
	ErrQuoteNonce     = &trustack.Error{Code: trustack.EINVALID, Message: "the quote's nonce is not the one sent"}
	ErrQuotePCRs      = &trustack.Error{Code: trustack.EINVALID, Message: "the quoted PCRs do not have the given values"}
)

// tpmGeneratedValue is the magic that starts what the TPM itself
// produced and signs (TPM_GENERATED_VALUE): a restricted key signs no
// outside digest of data starting with it.
const tpmGeneratedValue = 0xff544347

// VerifyQuote checks a quote that Quote made, with no TPM: the signature
// (attest's digest, signed by the attestation key ak), that it is a
// TPM-generated quote, that its nonce is the one the verifier sent, and
// that it quotes exactly the PCRs of pcrs (one bank) with their values.
// It returns the TPM's clock at the time of the quote, which the verifier
// checks moves forward (ClockInfo.Follows). Errors wrap ErrQuoteSignature,
// ErrQuoteFormat, ErrQuoteNonce or ErrQuotePCRs; all are invalid.
//
// It is safe for concurrent use. A verifier runs it for every host at
// every attestation, so it parses the TPM structures itself rather than
// through go-tpm's reflection, which took a quarter of its time: the
// signature check is what remains.
func VerifyQuote(ak *AKPublic, attest, sig, nonce []byte, pcrs PCRBank) (ClockInfo, error) {
	if len(nonce) == 0 {
		// Without a nonce, an old quote would pass for a fresh one.
		return ClockInfo{}, fmt.Errorf("%w: no nonce to check the quote against", ErrQuoteNonce)
	}
	if err := verifySignature(ak, attest, sig); err != nil {
		return ClockInfo{}, err
	}
	q, err := parseQuote(attest)
	if err != nil {
		return ClockInfo{}, err
	}
	if subtle.ConstantTimeCompare(q.extraData, nonce) != 1 {
		return ClockInfo{}, fmt.Errorf("%w: got %x, want %x", ErrQuoteNonce, q.extraData, nonce)
	}
	if err := checkQuotedPCRs(q, pcrs, ak); err != nil {
		return ClockInfo{}, err
	}
	return q.clock, nil
}

// quoteInfo is what VerifyQuote needs of a TPMS_ATTEST of a quote.
type quoteInfo struct {
	extraData  []byte
	clock      ClockInfo
	selections cryptobyte.String // TPMS_PCR_SELECTION, count of them
	count      uint32
	pcrDigest  []byte
}

// parseQuote parses a TPMS_ATTEST of type TPM_ST_ATTEST_QUOTE (TPM 2.0
// Part 2, 10.12.12 and 10.12.8).
func parseQuote(b []byte) (*quoteInfo, error) {
	s := cryptobyte.String(b)
	var q quoteInfo
	var magic uint32
	var typ uint16
	var signer, extra, digest cryptobyte.String
	var safe uint8
	var firmware uint64
	if !s.ReadUint32(&magic) || !s.ReadUint16(&typ) {
		return nil, fmt.Errorf("%w: truncated", ErrQuoteFormat)
	}
	if magic != tpmGeneratedValue || tpm2.TPMST(typ) != tpm2.TPMSTAttestQuote {
		return nil, fmt.Errorf("%w: magic 0x%x, type 0x%x", ErrQuoteFormat, magic, typ)
	}
	if !s.ReadUint16LengthPrefixed(&signer) || !s.ReadUint16LengthPrefixed(&extra) ||
		!s.ReadUint64(&q.clock.Clock) || !s.ReadUint32(&q.clock.ResetCount) ||
		!s.ReadUint32(&q.clock.RestartCount) || !s.ReadUint8(&safe) ||
		!s.ReadUint64(&firmware) || !s.ReadUint32(&q.count) {
		return nil, fmt.Errorf("%w: truncated", ErrQuoteFormat)
	}
	q.extraData = extra
	q.clock.Safe = safe == 1
	// The selections are parsed where they are checked; here only
	// skipped over, to find the digest.
	sels := s
	for range q.count {
		var hash uint16
		var sel cryptobyte.String
		if !s.ReadUint16(&hash) || !s.ReadUint8LengthPrefixed(&sel) {
			return nil, fmt.Errorf("%w: truncated PCR selection", ErrQuoteFormat)
		}
	}
	q.selections = sels[:len(sels)-len(s)]
	if !s.ReadUint16LengthPrefixed(&digest) || !s.Empty() {
		return nil, fmt.Errorf("%w: bad PCR digest", ErrQuoteFormat)
	}
	q.pcrDigest = digest
	return &q, nil
}

// verifySignature checks that sig, a TPMT_SIGNATURE, is ak's signature of
// data with ak's scheme.
func verifySignature(ak *AKPublic, data, sig []byte) error {
	s := cryptobyte.String(sig)
	var alg, hashAlg uint16
	if !s.ReadUint16(&alg) || !s.ReadUint16(&hashAlg) {
		return fmt.Errorf("%w: truncated signature", ErrQuoteSignature)
	}
	if tpm2.TPMAlgID(alg) != ak.scheme {
		return fmt.Errorf("%w: signed with scheme 0x%x, not the key's 0x%x", ErrQuoteSignature, alg, uint16(ak.scheme))
	}
	if tpm2.TPMAlgID(hashAlg) != ak.tpmHash {
		return fmt.Errorf("%w: signed with hash 0x%x, not the key's 0x%x", ErrQuoteSignature, hashAlg, uint16(ak.tpmHash))
	}
	var digest []byte
	if ak.hash == crypto.SHA256 {
		d := sha256.Sum256(data)
		digest = d[:]
	} else {
		h := ak.hash.New()
		h.Write(data)
		digest = h.Sum(nil)
	}
	ok := false
	switch key := ak.key.(type) {
	case *ecdsa.PublicKey:
		var r, sv cryptobyte.String
		if !s.ReadUint16LengthPrefixed(&r) || !s.ReadUint16LengthPrefixed(&sv) || !s.Empty() {
			return fmt.Errorf("%w: malformed ECDSA signature", ErrQuoteSignature)
		}
		ok = ecdsa.VerifyASN1(key, digest, asn1Signature(r, sv))
	case *rsa.PublicKey:
		var rs cryptobyte.String
		if !s.ReadUint16LengthPrefixed(&rs) || !s.Empty() {
			return fmt.Errorf("%w: malformed RSA signature", ErrQuoteSignature)
		}
		if ak.scheme == tpm2.TPMAlgRSASSA {
			ok = rsa.VerifyPKCS1v15(key, ak.hash, digest, rs) == nil
		} else {
			ok = rsa.VerifyPSS(key, ak.hash, digest, rs, nil) == nil
		}
	}
	if !ok {
		return ErrQuoteSignature
	}
	return nil
}

// asn1Signature encodes an ECDSA signature's r and s, unsigned big-endian
// integers, as the ASN.1 SEQUENCE crypto/ecdsa verifies.
func asn1Signature(r, s []byte) []byte {
	var b cryptobyte.Builder
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		for _, n := range [][]byte{r, s} {
			b.AddASN1(asn1.INTEGER, func(b *cryptobyte.Builder) {
				for len(n) > 1 && n[0] == 0 {
					n = n[1:]
				}
				if len(n) == 0 || n[0]&0x80 != 0 {
					b.AddUint8(0)
				}
				b.AddBytes(n)
			})
		}
	})
	return b.BytesOrPanic()
}

// checkQuotedPCRs checks that a quote covers exactly the PCRs of pcrs,
// and that its digest is that of their values.
func checkQuotedPCRs(q *quoteInfo, pcrs PCRBank, ak *AKPublic) error {
	alg, err := tpmHash(pcrs.Hash)
	if err != nil {
		return err
	}
	// TPM2_Quote digests the PCRs in the order of the selection, with
	// the signing scheme's hash.
	d := ak.hash.New()
	var quoted [maxPCR + 1]bool
	n := 0
	s := q.selections
	for range q.count {
		var hash uint16
		var sel cryptobyte.String
		s.ReadUint16(&hash)
		s.ReadUint8LengthPrefixed(&sel)
		if tpm2.TPMAlgID(hash) != alg {
			return fmt.Errorf("%w: the quote covers bank 0x%x, not the %v bank of the values", ErrQuotePCRs, hash, pcrs.Hash)
		}
		for i, b := range sel {
			for bit := range 8 {
				if b&(1<<bit) == 0 {
					continue
				}
				p := i*8 + bit
				if p > maxPCR || quoted[p] {
					return fmt.Errorf("%w: the quote selects PCR %d twice or out of range", ErrQuotePCRs, p)
				}
				v, ok := pcrs.Values[p]
				if !ok {
					return fmt.Errorf("%w: the quote covers PCR %d, whose value is not given", ErrQuotePCRs, p)
				}
				if len(v) != pcrs.Hash.Size() {
					return fmt.Errorf("%w: PCR %d's value is %d bytes, not %d", ErrQuotePCRs, p, len(v), pcrs.Hash.Size())
				}
				quoted[p] = true
				n++
				d.Write(v)
			}
		}
	}
	if n != len(pcrs.Values) {
		for p := range pcrs.Values {
			if p < 0 || p > maxPCR || !quoted[p] {
				return fmt.Errorf("%w: PCR %d is not quoted", ErrQuotePCRs, p)
			}
		}
	}
	var sum [64]byte
	if digest := d.Sum(sum[:0]); !bytes.Equal(q.pcrDigest, digest) {
		return fmt.Errorf("%w: their digest is %x, the quote's %x", ErrQuotePCRs, digest, q.pcrDigest)
	}
	return nil
}

// Clock returns the TPM's clock and its reset and restart counts, as the
// TPM reads them (not obfuscated, unlike a quote's): the agent tells its
// boots apart by the reset count.
func (t *TPM) Clock() (ClockInfo, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r, err := tpm2.ReadClock{}.Execute(t.tpm)
	if err != nil {
		return ClockInfo{}, unavailable("read the TPM's clock", err)
	}
	c := r.CurrentTime.ClockInfo
	return ClockInfo{Clock: c.Clock, ResetCount: c.ResetCount, RestartCount: c.RestartCount, Safe: c.Safe == tpm2.TPMIYesNo(true)}, nil
}

// Extend extends PCR pcr in the SHA-1 and SHA-256 banks, as the kernel's
// IMA does for each measurement; it is ima's Extender.
func (t *TPM) Extend(pcr int, sha1Digest, sha256Digest []byte) error {
	return t.ExtendPCR(pcr, map[crypto.Hash][]byte{crypto.SHA1: sha1Digest, crypto.SHA256: sha256Digest})
}
