package wire

import (
	"context"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/bus"
)

// The attestation conversation (the trusted-cloud prototype's Protocols
// 12.1 and 12.2). An agent that has not registered its TPM connects
// under a bus user of RegistrationUserPrefix and random characters, and
// may only send SubjectRegisterTPM and the activation; once registered it
// connects as its CID, signing the bus's nonce, and answers evidence
// requests and notices on its attester subject, and tells of new
// measurements on its own subject. Verifiers serve the registration and
// the measurements in their queue group, and each its own activation
// subject, since it holds the challenges it issued.
const (
	SubjectRegisterTPM = "trustack.attest.register"
	sentMeasured       = "measured"
	subjectActivate    = "trustack.attest.activate."
	subjectCredentials = "trustack.attest.credentials"
	activateSubjects   = subjectActivate + "*"
	verifiersQueue     = "verifiers"
	// RegistrationUserPrefix starts the bus user name of an agent that has
	// not registered its TPM; the rest is random, so that its replies are
	// its own.
	RegistrationUserPrefix = "reg-"
)

// attesterSubject is the subject a host's agent answers the verifiers on.
func attesterSubject(host string) string { return "trustack.attest.host." + token(host) }

// RegisterRequest is an agent's registration (Protocol 12.1, first step).
type RegisterRequest struct {
	Host string `json:"host"`
	// EKCert, EKIntermediates and AKPublic: see trustack.Registration.
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
	// Subject is where the ActivateRequest goes: the issuing verifier's.
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

type measured struct {
	Host string `json:"host"`
}

// attesterRequest is what a verifier sends on a host's attester subject:
// exactly one of an evidence request and a notice.
type attesterRequest struct {
	Evidence *EvidenceRequest `json:"evidence,omitempty"`
	Notice   *Notice          `json:"notice,omitempty"`
}

// Verifiers is an agent's client of the verifiers.
type Verifiers struct {
	conn *bus.Conn
}

// NewVerifiers returns a client of the verifiers on conn.
func NewVerifiers(conn *bus.Conn) *Verifiers { return &Verifiers{conn: conn} }

// Register asks a verifier to register the agent's TPM and returns its
// challenge.
func (c *Verifiers) Register(ctx context.Context, req RegisterRequest) (RegisterChallenge, error) {
	var ch RegisterChallenge
	err := c.conn.Request(ctx, SubjectRegisterTPM, req, &ch)
	return ch, err
}

// Activate answers a challenge with the secret the TPM recovered, to the
// verifier that issued it, and returns the host's identity.
func (c *Verifiers) Activate(ctx context.Context, ch RegisterChallenge, secret []byte) (ActivateReply, error) {
	var r ActivateReply
	err := c.conn.Request(ctx, ch.Subject, ActivateRequest{ID: ch.ID, Secret: secret}, &r)
	return r, err
}

// Measured tells the verifiers that the host's measurer recorded
// something new, so that it is attested at once.
func (c *Verifiers) Measured(host string) error {
	return c.conn.Publish(fromSubject(host, sentMeasured), measured{Host: host})
}

// Verifier is what a verifier does for agents and for the other
// verifiers.
type Verifier interface {
	Register(ctx context.Context, req RegisterRequest) (RegisterChallenge, error)
	Activate(ctx context.Context, req ActivateRequest) (ActivateReply, error)
	// Measured has the host attested soon.
	Measured(host string)
	// CredentialChanged hears that a verifier issued or withdrew a
	// host's bus credential.
	CredentialChanged(ctx context.Context, c CredentialChange)
}

// CredentialChange is a host's bus credential issued or withdrawn by a
// verifier, which tells every verifier (AnnounceCredential), so that the
// bus nodes of all admit or refuse the host at once, whichever node it
// connects to.
type CredentialChange struct {
	Host      string `json:"host"`
	CID       string `json:"cid"`
	Withdrawn bool   `json:"withdrawn,omitempty"`
}

// AnnounceCredential tells every verifier on conn's bus of a credential
// change; only controllers may publish it.
func AnnounceCredential(conn *bus.Conn, c CredentialChange) error {
	return conn.Publish(subjectCredentials, c)
}

// ActivateSubject is the activation subject of the verifier named id, for
// its challenges.
func ActivateSubject(id string) string { return subjectActivate + token(id) }

// ServeVerifier has v answer agents on conn until the returned function
// is called: registrations in the verifiers' queue group (one verifier
// takes each), activations on the verifier's own subject,
// ActivateSubject(id), and measurement events and credential changes to
// every verifier (only the one that attests the host acts on the former).
// Witness hears of the spoofs, which v does not see.
func ServeVerifier(conn *bus.Conn, id string, v Verifier, witness Witness) (stop func(), err error) {
	var subs []bus.Subscription
	stop = func() {
		for _, s := range subs {
			s.Unsubscribe()
		}
	}
	for _, h := range []struct {
		subject, queue string
		fn             bus.HandlerFunc
	}{
		{SubjectRegisterTPM, verifiersQueue, bus.Handler(v.Register)},
		{ActivateSubject(id), verifiersQueue, bus.Handler(v.Activate)},
		{fromEveryHost(sentMeasured), "", fromHosts(sentMeasured, witness, func(m measured) string { return m.Host },
			func(_ context.Context, m measured) (empty, error) {
				v.Measured(m.Host)
				return empty{}, nil
			})},
		{subjectCredentials, "", bus.Handler(func(ctx context.Context, c CredentialChange) (empty, error) {
			v.CredentialChanged(ctx, c)
			return empty{}, nil
		})},
	} {
		sub, err := conn.HandleQueue(h.subject, h.queue, h.fn)
		if err != nil {
			stop()
			return stop, err
		}
		subs = append(subs, sub)
	}
	return stop, nil
}

// Attesters is the verifiers' client of the hosts' agents.
type Attesters struct {
	conn *bus.Conn
}

// NewAttesters returns a client of the agents' attestation side on conn.
func NewAttesters(conn *bus.Conn) *Attesters { return &Attesters{conn: conn} }

// Evidence asks the host's agent for evidence.
func (c *Attesters) Evidence(ctx context.Context, host string, req EvidenceRequest) (EvidenceReply, error) {
	var r EvidenceReply
	err := c.conn.Request(ctx, attesterSubject(host), attesterRequest{Evidence: &req}, &r)
	return r, err
}

// Notify tells the host's agent of its revocation.
func (c *Attesters) Notify(ctx context.Context, host string, n Notice) error {
	return c.conn.Request(ctx, attesterSubject(host), attesterRequest{Notice: &n}, &empty{})
}

// Attester is what a host's agent does for the verifiers.
type Attester interface {
	Evidence(ctx context.Context, req EvidenceRequest) (EvidenceReply, error)
	// Revoked takes the notice that the host was put out.
	Revoked(n Notice)
}

// ServeAttester answers the verifiers' requests to the named host on conn
// with a.
func ServeAttester(conn *bus.Conn, host string, a Attester) (bus.Subscription, error) {
	return conn.Handle(attesterSubject(host), bus.Handler(func(ctx context.Context, req attesterRequest) (any, error) {
		switch {
		case req.Evidence != nil:
			return a.Evidence(ctx, *req.Evidence)
		case req.Notice != nil:
			a.Revoked(*req.Notice)
			return empty{}, nil
		}
		return nil, trustack.Errorf(trustack.EINVALID, "empty request")
	}))
}
