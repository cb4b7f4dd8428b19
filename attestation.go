package trustack

import (
	"strings"
	"time"
)

// The vocabulary of attestation: what a host's agent sends to prove the
// software it runs (Evidence), what good software is (Whitelist), and what
// the verifier concludes (Verdict).

// Whitelist is a named set of good configurations of a host: the files it
// may run and their allowed contents. A host attested against it satisfies
// the requirement trust=<Name>.
type Whitelist struct {
	Name string
	// Files maps an absolute path to the digests its content may have,
	// each written "ALGO:HEX" as IMA names them ("sha256:9f86d0…").
	// A path measured with any other digest, or not listed, makes the
	// host untrusted.
	Files map[string][]string
	// Exclude are path patterns (path.Match syntax; a pattern ending in
	// "/**" covers everything under a directory) whose measurements are
	// not checked: logs, caches, files that change by design.
	Exclude []string
	// BootAggregate is the digest ("sha256:HEX") the log's boot_aggregate
	// entry must have, which records how the host booted; "" accepts any.
	BootAggregate string
}

// Verdict states: what the latest attestation of a host concluded.
const (
	// VerdictTrusted: the quote and the log verified and every measured
	// file is one the white-list allows.
	VerdictTrusted = "trusted"
	// VerdictUntrusted: a check failed; the verdict's reasons say which.
	VerdictUntrusted = "untrusted"
	// VerdictUnreachable: the host did not answer with evidence in time.
	VerdictUnreachable = "unreachable"
)

// Verdict is the outcome of one attestation of a host.
type Verdict struct {
	State string // VerdictTrusted, VerdictUntrusted or VerdictUnreachable
	// Reasons are sentences for operators saying why the host is not
	// trusted, one per failed check or entry; empty when trusted.
	Reasons []string
	// Whitelist is the name of the white-list the host was attested
	// against, "" for none.
	Whitelist string
	At        time.Time
	// By is the controller whose verifier gave the verdict.
	By string
}

// Evidence is a host's answer to an attestation request: a TPM quote over
// the boot PCRs and the IMA PCR that signs the verifier's nonce, and the
// measurement log entries the verifier has not verified yet.
type Evidence struct {
	// Nonce is the nonce the agent was asked to quote, echoed; the
	// verifier checks the quote against the one it issued, not this one.
	Nonce []byte
	// Attest and Signature are the quote: the TPMS_ATTEST the TPM
	// signed and its TPMT_SIGNATURE by the host's attestation key.
	Attest    []byte
	Signature []byte
	// PCRs are the values, in the SHA-256 bank, of the quoted PCRs (0 to
	// 7 and 10) as the agent read them with the quote. A quote signs only
	// their digest: the verifier checks the values against it.
	PCRs map[int][]byte
	// Log holds the binary IMA measurement entries from index FromEntry
	// (counted from the boot_aggregate entry, 0) to the end of the log.
	Log       []byte
	FromEntry int
}

// Measurement modes: where a host's measurement log comes from.
const (
	// MeasuredByKernel: the kernel's IMA log, extended into PCR 10 by
	// the kernel itself.
	MeasuredByKernel = "kernel"
	// MeasuredInUserspace: the agent's own measurer, for hosts whose
	// kernel log it cannot read; it measures a configured set of files
	// (the trustack and QEMU binaries, configuration, libraries) and
	// extends PCR 10 as the kernel would. Weaker: it sees only those
	// files, and only when the agent measures them.
	MeasuredInUserspace = "userspace"
)

// HostAttestation is what the verifier keeps of a compute host: the TPM
// identity it registered with and the outcome of its attestations. It
// exists from the host's first registration on.
type HostAttestation struct {
	Host string // the compute host's name
	// CID is the identity the verifier assigned at the host's latest
	// registration; "" once it was revoked, until it registers again.
	CID          string
	RegisteredAt time.Time
	// EKCert is the TPM's endorsement key certificate (DER); AKPublic
	// the certified attestation key (TPMT_PUBLIC); CredentialKey the
	// public key (PKIX DER) of the agent's PCR-bound key, with which it
	// authenticates on the bus.
	EKCert        []byte
	AKPublic      []byte
	CredentialKey []byte
	// Mode is MeasuredByKernel or MeasuredInUserspace.
	Mode string
	// Verdict is the latest verdict; State "" before the first.
	Verdict Verdict
	// FailingSince is when the host stopped being trusted (the first of
	// its current run of untrusted or unreachable verdicts); zero while
	// it is trusted.
	FailingSince time.Time
	// Revoked reports whether the host was put out (disabled, its bus
	// credentials withdrawn) for failing attestation past the grace
	// period; it comes back only by registering again.
	Revoked bool
	// Checkpoint is the verifier's state of the host between rounds
	// (opaque to the store).
	Checkpoint []byte
	// Version moves on at each write; UpdateHostAttestation compares it.
	Version int64
}

// Trusted reports whether the host's latest verdict is trusted and it is
// not revoked.
func (a *HostAttestation) Trusted() bool {
	return a != nil && !a.Revoked && a.CID != "" && a.Verdict.State == VerdictTrusted
}

// RCoT is the chain of trust the host proved: the white-list its latest
// trusted verdict names, "" for none.
func (a *HostAttestation) RCoT() string {
	if !a.Trusted() {
		return ""
	}
	return a.Verdict.Whitelist
}

// AttestationEvent is something that happened to a host's trust:
// registration, a verdict that changed, its removal from scheduling.
type AttestationEvent struct {
	Host    string
	At      time.Time
	Kind    string // one of the Event* constants
	Message string // a sentence for operators
}

// Kinds of attestation events.
const (
	EventRegistered  = "registered"
	EventRefused     = "registration-refused"
	EventTrusted     = "trusted"
	EventUntrusted   = "untrusted"
	EventUnreachable = "unreachable"
	EventRevoked     = "revoked"
	EventEvacuating  = "evacuating"
	// EventSpoofed: the host's agent sent a message about another host,
	// which was dropped.
	EventSpoofed = "spoofed"
)

// ApprovedEK is an endorsement key an operator approved although its
// certificate does not chain to a configured manufacturer CA.
type ApprovedEK struct {
	// Fingerprint is the SHA-256 of the EK certificate (DER), in hex.
	Fingerprint string
	Comment     string
	ApprovedAt  time.Time
}

// AttestationHold prefixes the disabled reason of a compute host that
// attestation keeps out of scheduling: one not attested yet, or found
// untrusted or unreachable. As with Nova's "AUTO: " reasons, only the
// service that set such a reason clears it; an operator's own reason is
// never overridden.
const AttestationHold = "AUTO: attestation: "

// HeldByAttestation reports whether attestation keeps the host out of
// scheduling.
func (h *Host) HeldByAttestation() bool {
	return !h.Enabled && strings.HasPrefix(h.DisabledReason, AttestationHold)
}
