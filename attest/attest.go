// Package attest is trustack's attestation verifier (the DC-S): it decides,
// from a host's TPM quote and IMA measurement log, whether the host runs
// software its white-list allows. Its core, Verify, is a pure function of
// the evidence, the nonce the verifier issued and the state kept from the
// host's last verified round, so that the round-trips, timers and storage
// around it can be tested apart from the decision.
package attest

import (
	"crypto"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/ima"
	"github.com/trustack/trustack/tpm"
)

// NonceSize is the size of the nonces NewNonce makes.
const NonceSize = 32

// NewNonce reads a fresh attestation nonce from rand (crypto/rand.Reader
// in production, a seeded source in tests).
func NewNonce(rand io.Reader) ([]byte, error) {
	n := make([]byte, NonceSize)
	if _, err := io.ReadFull(rand, n); err != nil {
		return nil, fmt.Errorf("attest: read nonce: %w", err)
	}
	return n, nil
}

// HostState is what the verifier keeps of a host between attestations: the
// attestation key it certified at registration and where the last verified
// quote left the host. The zero HostState, with AK set, is that of a host
// registered but never attested. A HostState is a value: Verify returns a
// new one rather than modifying it; the AK it points to is immutable.
type HostState struct {
	// AK is the host's certified attestation key, parsed once at
	// registration (tpm.ParseAKPublic). Nil means the host has none and
	// cannot be trusted.
	AK *tpm.AKPublic
	// Attested reports whether Replay, Clock and BootAggregate come from
	// a verified quote.
	Attested bool
	// Replay is the checkpoint of the IMA log the last verified quote
	// covered: the number of entries verified, counted from the
	// boot_aggregate entry of the current boot, and PCR 10 after them.
	// Only the SHA-256 bank, the one quoted, is replayed: Replay.SHA1 is
	// meaningless.
	Replay ima.State
	// Clock is the TPM's clock in the last verified quote; the next
	// quote's must follow it.
	Clock tpm.ClockInfo
	// BootAggregate is the boot_aggregate digest ("sha256:HEX") of the
	// current boot, as last verified; "" before the first.
	BootAggregate string
}

// maxReasons bounds the entries a verdict names, so that a host whose
// whole software changed gives a readable verdict.
const maxReasons = 20

// Verify decides whether a host is trusted from its evidence ev, answering
// nonce, the nonce the verifier issued for this round, given st, the
// host's state after its last verified round, and wl, the white-list the
// host is held to (nil: the quote and log are checked, the files are not,
// and the verdict names no white-list, so it meets no trust requirement).
//
// It checks, in order: the quote's signature by st.AK, its nonce, that it
// quotes the PCR values ev.PCRs; that the TPM's reset and restart counts
// and clock moved forward from st.Clock and its clock is safe; that the log
// entries since st's checkpoint replay onto the quoted PCR 10 (the log may
// run ahead of the quote: the entries after the quoted ones are verified at
// a later round); and that each newly covered entry is allowed by wl: the
// boot_aggregate entry against wl.BootAggregate, each file's path and
// digest against wl.Files, paths matching wl.Exclude skipped.
//
// ev.Log must start at or before the first entry not verified yet
// (st.Replay.Entries); entries sent again are skipped. A quote with a later
// reset count than st.Clock's is from a new boot: the TPM's PCRs were reset
// and IMA started a new log, so the replay restarts from entry 0 and the
// agent must send the log from there (it knows it rebooted). An earlier
// reset count is a replayed quote or a rolled-back TPM: untrusted. Within
// a boot, an unsafe clock (the TPM lost power without an orderly shutdown,
// so its clock may repeat values) is untrusted too, since it cannot be told
// from a rollback.
//
// It returns the verdict, stamped with no time (the caller, which owns the
// clock, sets At), and the state to keep: on a trusted verdict the state
// after this round, on an untrusted one st unchanged, so that a later round
// cannot build on evidence that failed. It never returns unreachable,
// which is the caller's verdict for a host that sent nothing.
//
// Verify is safe for concurrent use.
func Verify(ev trustack.Evidence, nonce []byte, st HostState, wl *trustack.Whitelist) (trustack.Verdict, HostState) {
	v := trustack.Verdict{State: trustack.VerdictTrusted}
	if wl != nil {
		v.Whitelist = wl.Name
	}
	untrusted := func(reasons ...string) (trustack.Verdict, HostState) {
		v.State = trustack.VerdictUntrusted
		v.Reasons = reasons
		return v, st
	}

	// The quote.
	if st.AK == nil {
		return untrusted("The host has no certified attestation key; it must register before it can be attested.")
	}
	clock, err := tpm.VerifyQuote(st.AK, ev.Attest, ev.Signature, nonce, tpm.PCRBank{Hash: crypto.SHA256, Values: ev.PCRs})
	switch {
	case err == nil:
	case errors.Is(err, tpm.ErrQuoteSignature):
		return untrusted("The quote is not signed by the attestation key the verifier certified for this host.")
	case errors.Is(err, tpm.ErrQuoteNonce):
		return untrusted("The quote answers another nonce than the one the verifier sent: it is replayed or stale.")
	case errors.Is(err, tpm.ErrQuotePCRs):
		return untrusted("The PCR values the host reported are not the ones its TPM quoted.")
	default:
		return untrusted(fmt.Sprintf("The quote is not a valid TPM quote: %v.", err))
	}
	if r := clockReason(clock, st); r != "" {
		return untrusted(r)
	}

	// The log, from where the last verified quote left it, or from its
	// start on a new boot.
	start := st.Replay
	if !st.Attested || clock.ResetCount != st.Clock.ResetCount {
		start = ima.State{}
	}
	if ev.FromEntry < 0 || ev.FromEntry > start.Entries {
		return untrusted(fmt.Sprintf("The measurement log sent starts at entry %d, but the verifier has verified entries up to %d only: the entries between are missing.", ev.FromEntry, start.Entries))
	}
	entries, err := ima.ParseBinary(ev.Log)
	if err != nil {
		return untrusted(fmt.Sprintf("The measurement log is malformed: %v.", err))
	}
	skip := start.Entries - ev.FromEntry // sent again, verified already
	if skip > len(entries) {
		return untrusted(fmt.Sprintf("The measurement log ends at entry %d, before the %d entries already verified: entries are missing.", ev.FromEntry+len(entries), start.Entries))
	}
	entries = entries[skip:]
	r, err := ima.NewReplayer(start, crypto.SHA256)
	if err != nil {
		return untrusted(fmt.Sprintf("The measurement log cannot be replayed: %v.", err))
	}
	n, err := r.ReplayTo(entries, crypto.SHA256, ev.PCRs[tpm.IMAPCR])
	if err != nil {
		var ee *ima.EntryError
		switch {
		case errors.As(err, &ee) && errors.Is(err, ima.ErrTemplateHash):
			return untrusted(fmt.Sprintf("Measurement log entry %d (%s) was altered: its template hash does not match its data.", ee.Index, ee.Path))
		case errors.As(err, &ee):
			return untrusted(fmt.Sprintf("Measurement log entry %d (%s) cannot be replayed: %v.", ee.Index, ee.Path, ee.Err))
		default:
			return untrusted("The measurement log does not reproduce the quoted PCR 10: an entry is missing, altered or out of order.")
		}
	}

	// The newly covered entries, against the white-list.
	next := HostState{AK: st.AK, Attested: true, Replay: r.State(), Clock: clock, BootAggregate: st.BootAggregate}
	if start.Entries == 0 {
		next.BootAggregate = ""
	}
	var reasons []string
	failed := 0
	for i := range entries[:n] {
		e := &entries[i]
		idx := start.Entries + i
		var reason string
		if idx == 0 {
			next.BootAggregate, reason = checkBootAggregate(e, wl)
		} else if wl != nil {
			reason = checkEntry(e, wl)
		}
		if reason == "" {
			continue
		}
		if failed++; failed <= maxReasons {
			reasons = append(reasons, reason)
		}
	}
	if failed > maxReasons {
		reasons = append(reasons, fmt.Sprintf("%d more entries are not allowed.", failed-maxReasons))
	}
	if failed > 0 {
		return untrusted(reasons...)
	}
	return v, next
}

// clockReason returns why clock, a verified quote's, cannot follow the
// host's last verified quote, or "" if it can. The first quote after
// registration has nothing to follow (its nonce makes it fresh), and the
// first of a new boot needs only its reset count to have moved forward:
// after a power loss the TPM's clock may lag and is not safe until the
// TPM next saves it, which says nothing of the host's integrity, and the
// log is replayed from its start anyway. Within a boot, the counts and
// clock must move forward and the clock be safe.
func clockReason(c tpm.ClockInfo, st HostState) string {
	if !st.Attested || int32(c.ResetCount-st.Clock.ResetCount) > 0 {
		return ""
	}
	return trustack.ErrorMessage(c.Follows(st.Clock))
}

// checkBootAggregate checks the log's first entry, which records how the
// host booted, and returns its digest and why it is not allowed ("" if it
// is).
func checkBootAggregate(e *ima.Entry, wl *trustack.Whitelist) (digest, reason string) {
	if e.Path != "boot_aggregate" || e.Violation() {
		return "", fmt.Sprintf("The measurement log starts with %s instead of boot_aggregate.", e.Path)
	}
	var buf [digestBuf]byte
	digest = string(appendDigest(buf[:0], e))
	if wl != nil && wl.BootAggregate != "" && digest != wl.BootAggregate {
		return digest, fmt.Sprintf("The host booted into a state (boot_aggregate %s) that white-list %s does not allow (%s).", digest, wl.Name, wl.BootAggregate)
	}
	return digest, ""
}

// checkEntry checks a file's measurement against wl and returns why it is
// not allowed, "" if it is.
func checkEntry(e *ima.Entry, wl *trustack.Whitelist) string {
	if excluded(e.Path, wl.Exclude) {
		return ""
	}
	if e.Violation() {
		return fmt.Sprintf("%s was measured while open for writing (an IMA violation), so its content is unknown.", e.Path)
	}
	allowed, ok := wl.Files[e.Path]
	if !ok {
		return fmt.Sprintf("%s is not in white-list %s.", e.Path, wl.Name)
	}
	var buf [digestBuf]byte
	d := appendDigest(buf[:0], e)
	for _, a := range allowed {
		if string(d) == a {
			return ""
		}
	}
	return fmt.Sprintf("%s has content %s, which white-list %s does not allow.", e.Path, d, wl.Name)
}

// digestBuf holds an "ALGO:HEX" digest of up to SHA-512 without allocating.
const digestBuf = 16 + 1 + 2*64

// appendDigest appends e's file digest as a white-list writes it,
// "ALGO:HEX"; the legacy digest without an algorithm is SHA-1.
func appendDigest(b []byte, e *ima.Entry) []byte {
	algo := e.FileHashAlgo
	if algo == "" {
		algo = "sha1"
	}
	b = append(b, algo...)
	b = append(b, ':')
	return hex.AppendEncode(b, e.FileDigest)
}

// excluded reports whether p matches one of patterns: path.Match, or for a
// pattern ending in "/**" any path under its directory.
func excluded(p string, patterns []string) bool {
	for _, pat := range patterns {
		if dir, ok := strings.CutSuffix(pat, "**"); ok && strings.HasSuffix(dir, "/") {
			if strings.HasPrefix(p, dir) {
				return true
			}
			continue
		}
		if ok, _ := path.Match(pat, p); ok {
			return true
		}
	}
	return false
}
