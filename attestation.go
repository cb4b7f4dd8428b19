package trustack

import "time"

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
