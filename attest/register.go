package attest

import (
	"crypto"
	"crypto/subtle"
	"crypto/x509"
	"fmt"
	"io"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/tpm"
)

// Registration (Protocol 12.1) runs in two steps. The agent sends a
// Registration; Challenge checks it and encrypts a fresh secret to the
// TPM's endorsement key for the attestation key's name; the agent recovers
// the secret with tpm.TPM.ActivateCredential, which its TPM does only if
// it holds both keys, and sends it back; Complete compares it with the
// one kept in Pending and certifies the AK. Both are pure: the caller
// stores Pending between the two steps and owns the clock and randomness.

// ChallengeTimeout is how long an agent has to answer a registration
// challenge. Activation takes the TPM tens of milliseconds; the rest is
// slack for the bus and a busy host.
const ChallengeTimeout = 2 * time.Minute

// secretSize is the size of the credential's secret: the largest that
// MakeCredential accepts for every EK type (the name digest of the RSA-2048
// and ECC P-256 EKs is SHA-256).
const secretSize = 32

var (
	// ErrEKNotApproved is Challenge's error for an EK whose certificate
	// does not chain to a configured TPM manufacturer CA, or that comes
	// with no certificate. It is forbidden: an operator must approve the
	// EK before the host can register.
	ErrEKNotApproved = &trustack.Error{Code: trustack.EFORBIDDEN,
		Message: "The TPM's endorsement key is not certified by a configured TPM manufacturer CA: an operator must approve this EK before the host can register."}

	// ErrAKNotInTPM is Complete's error for an answer that is not the
	// secret the challenge held: the agent's TPM could not activate the
	// credential, so the AK is not in the TPM whose EK was presented. It
	// is forbidden.
	ErrAKNotInTPM = &trustack.Error{Code: trustack.EFORBIDDEN,
		Message: "The attestation key is not in the TPM whose EK was presented."}

	// ErrChallengeExpired is Complete's error for an answer after the
	// challenge's expiry. It is forbidden; the agent registers again.
	ErrChallengeExpired = &trustack.Error{Code: trustack.EFORBIDDEN,
		Message: "The registration challenge expired before the agent answered it; the agent must register again."}
)

// Registration is what an agent sends to register its host: its TPM's
// endorsement key with the manufacturer's certificate, and the public part
// of the attestation key it created (and keeps across restarts).
type Registration struct {
	// EKCert is the EK certificate, DER, as read from the TPM's NV
	// (tpm.EK.Cert.Raw). Required: an EK without a certificate is not
	// approved.
	EKCert []byte
	// EKIntermediates are DER certificates between EKCert and the
	// manufacturer's root, for manufacturers whose TPMs or agents supply
	// them; nil if the verifier's configured intermediates suffice.
	// They are not trusted: the chain must still end at a root.
	EKIntermediates [][]byte
	// EKPublic is the EK, an *rsa.PublicKey or *ecdsa.PublicKey
	// (tpm.EK.Public). It must be the key EKCert certifies; nil means
	// take it from EKCert.
	EKPublic crypto.PublicKey
	// AKPublic is the attestation key's public area, a TPMT_PUBLIC
	// (tpm.AK.Public().Bytes()).
	AKPublic []byte
}

// Pending is what the verifier keeps of a registration between Challenge
// and Complete. The caller stores it (it holds a secret: keep it out of
// logs and events) and deletes it after one Complete, whatever its outcome,
// so that each challenge is answered at most once.
type Pending struct {
	// Secret is the secret encrypted in the credential, which the agent
	// must send back.
	Secret []byte
	// AK is the attestation key to certify, parsed and checked.
	AK *tpm.AKPublic
	// EKCert is the EK certificate, verified; the host's identity keeps it.
	EKCert *x509.Certificate
	// Expires is when the challenge stops being answerable.
	Expires time.Time
}

// Challenge checks a registration at time now and returns the challenge to
// send the agent, a credential only its TPM can activate, with what the
// verifier keeps until the answer. It checks that reg.EKCert chains,
// through intermediates and reg.EKIntermediates, to one of roots (the
// configured manufacturer CAs; the swtpm local CA in development), that
// reg.EKPublic is the certified key, and that reg.AKPublic is a key fit to
// attest (tpm.ParseAKPublic: a restricted signing key that cannot leave
// its TPM). It then draws a secret from rand (crypto/rand.Reader in
// production) and encrypts it with tpm.MakeCredential to the certified EK
// for the AK's name. intermediates may be nil.
//
// Errors wrap ErrEKNotApproved (forbidden) for an EK certificate that is
// missing or does not verify, unknown CA included; they are invalid for a
// malformed certificate or AK, an EK that is not the certified one, or an
// AK not fit to attest.
func Challenge(reg Registration, roots, intermediates *x509.CertPool, now time.Time, rand io.Reader) (Pending, *tpm.Credential, error) {
	if len(reg.EKCert) == 0 {
		return Pending{}, nil, fmt.Errorf("attest: register: the agent sent no EK certificate: %w", ErrEKNotApproved)
	}
	cert, err := x509.ParseCertificate(reg.EKCert)
	if err != nil {
		return Pending{}, nil, trustack.Errorf(trustack.EINVALID, "attest: register: the EK certificate is malformed: %v", err)
	}
	pool := x509.NewCertPool()
	if intermediates != nil {
		pool = intermediates.Clone()
	}
	for i, der := range reg.EKIntermediates {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return Pending{}, nil, trustack.Errorf(trustack.EINVALID, "attest: register: EK intermediate certificate %d is malformed: %v", i, err)
		}
		pool.AddCert(c)
	}
	if err := tpm.VerifyEKCert(cert, roots, pool, now); err != nil {
		// err's message names the certificate and why it failed, for
		// the log and the operator who approves it; the sentinel is
		// what callers test for.
		return Pending{}, nil, fmt.Errorf("attest: register: %s: %w", trustack.ErrorMessage(err), ErrEKNotApproved)
	}
	ek := cert.PublicKey
	if reg.EKPublic != nil {
		k, ok := reg.EKPublic.(interface{ Equal(crypto.PublicKey) bool })
		if !ok || !k.Equal(cert.PublicKey) {
			return Pending{}, nil, trustack.Errorf(trustack.EINVALID, "attest: register: the EK sent is not the key its certificate (%s, serial %s) certifies", cert.Subject, cert.SerialNumber)
		}
	}
	ak, err := tpm.ParseAKPublic(reg.AKPublic)
	if err != nil {
		return Pending{}, nil, fmt.Errorf("attest: register: attestation key: %w", err)
	}
	secret := make([]byte, secretSize)
	if _, err := io.ReadFull(rand, secret); err != nil {
		return Pending{}, nil, fmt.Errorf("attest: register: read secret: %w", err)
	}
	cred, err := tpm.MakeCredential(ek, ak.Name(), secret)
	if err != nil {
		return Pending{}, nil, fmt.Errorf("attest: register: make credential: %w", err)
	}
	return Pending{Secret: secret, AK: ak, EKCert: cert, Expires: now.Add(ChallengeTimeout)}, cred, nil
}

// Complete checks the agent's answer to the challenge of p at time now:
// the secret its TPM recovered by activating the credential. On success
// the AK is certified: it returns the host's state as registered and
// never attested (HostState with AK set), from which Verify runs the
// first round. The comparison takes constant time.
//
// Errors wrap ErrChallengeExpired once now is past p.Expires and
// ErrAKNotInTPM for any other answer than the secret; both are forbidden.
func Complete(p Pending, answer []byte, now time.Time) (HostState, error) {
	if !now.Before(p.Expires) {
		return HostState{}, fmt.Errorf("attest: register: challenge expired at %s: %w", p.Expires.Format(time.RFC3339), ErrChallengeExpired)
	}
	if p.AK == nil || len(p.Secret) == 0 || subtle.ConstantTimeCompare(answer, p.Secret) != 1 {
		return HostState{}, fmt.Errorf("attest: register: %w", ErrAKNotInTPM)
	}
	return HostState{AK: p.AK}, nil
}
