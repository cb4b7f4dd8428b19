package attest

import (
	"github.com/trustack/trustack"
	"github.com/trustack/trustack/bus"
)

// The wire protocol between the verifier and the hosts' agents (package
// dcc), over the bus. An agent not registered yet may send only the two
// registration requests; once registered, it authenticates with its
// credential key and answers evidence requests on its host's subject.

// Subjects on the bus.
const (
	// SubjectRegister takes a RegisterRequest, in the controllers' queue
	// group, and answers a RegisterChallenge.
	SubjectRegister = "trustack.attest.register"
	// subjectActivate, followed by the verifier's ID, takes an
	// ActivateRequest and answers an ActivateReply: the answer goes to
	// the verifier that holds the challenge.
	subjectActivate = "trustack.attest.activate."
	// SubjectMeasured takes a Measured event: the host's measurer
	// recorded something new, so it is attested again at once.
	SubjectMeasured = "trustack.attest.measured"
	// QueueGroup is the queue group of the verifiers.
	QueueGroup = "verifiers"
)

// HostSubject is the subject a host's agent answers EvidenceRequests and
// Notices on. Host names may hold dots, which separate subject tokens,
// so they are escaped.
func HostSubject(host string) string { return "trustack.attest.host." + bus.Token(host) }

// ActivateSubjects is the pattern of the subjects activation answers go
// to, for an unregistered agent's grant.
const ActivateSubjects = subjectActivate + "*"

// RegisterRequest is an agent's registration (Protocol 12.1, first step).
type RegisterRequest struct {
	Host string `json:"host"`
	// EKCert, EKIntermediates and AKPublic: see Registration.
	EKCert          []byte   `json:"ek_cert"`
	EKIntermediates [][]byte `json:"ek_intermediates,omitempty"`
	AKPublic        []byte   `json:"ak_public"`
	// CredentialKey is the public key (PKIX DER) of the agent's
	// PCR-bound key, with which it will sign the bus's nonces.
	CredentialKey []byte `json:"credential_key"`
	// Mode is trustack.MeasuredByKernel or trustack.MeasuredInUserspace.
	Mode string `json:"mode"`
}

// RegisterChallenge is the verifier's answer: a credential only the TPM
// holding both the EK and the AK can activate.
type RegisterChallenge struct {
	// ID names the challenge in the ActivateRequest.
	ID string `json:"id"`
	// Subject is where the ActivateRequest goes.
	Subject         string `json:"subject"`
	IDObject        []byte `json:"id_object"`
	EncryptedSecret []byte `json:"encrypted_secret"`
}

// ActivateRequest carries the secret the agent's TPM recovered.
type ActivateRequest struct {
	ID     string `json:"id"`
	Secret []byte `json:"secret"`
}

// ActivateReply tells a registered agent its identity, which is also its
// user name on the bus.
type ActivateReply struct {
	CID string `json:"cid"`
}

// EvidenceRequest asks an agent for evidence (Protocol 12.2).
type EvidenceRequest struct {
	Nonce []byte `json:"nonce"`
	// FromEntry is the first log entry the verifier has not verified,
	// of the log of boot Boot; an agent that booted since sends its log
	// from entry 0. Attested false means the verifier has verified
	// nothing of this host yet.
	FromEntry int    `json:"from_entry"`
	Boot      uint32 `json:"boot"`
	Attested  bool   `json:"attested"`
}

// EvidenceReply is the agent's evidence, with the boot its log belongs
// to: its TPM's reset count as the agent reads it (quotes by an AK
// obfuscate theirs). The verifier echoes it in its next request; it
// decides nothing (the quote does).
type EvidenceReply struct {
	Evidence trustack.Evidence `json:"evidence"`
	Boot     uint32            `json:"boot"`
}

// Notice tells an agent that its host was put out for failing
// attestation: it takes no new work, and comes back only by registering
// again.
type Notice struct {
	Revoked bool   `json:"revoked"`
	Reason  string `json:"reason"`
}

// Measured is the event an agent publishes when its measurer recorded a
// new entry.
type Measured struct {
	Host string `json:"host"`
}

// AgentRequest is what the verifier sends on a host's subject: exactly
// one of an evidence request and a notice. An evidence request is
// answered with an EvidenceReply, a notice with an empty reply.
type AgentRequest struct {
	Evidence *EvidenceRequest `json:"evidence,omitempty"`
	Notice   *Notice          `json:"notice,omitempty"`
}
