package tpm

import (
	"crypto"
	"crypto/ecdsa"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"slices"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/trustack/trustack"
)

// ErrPCRPolicy is the error of a PCR-bound key used after its PCRs
// changed: the host booted, or went on, into another state. It is
// forbidden.
var ErrPCRPolicy = &trustack.Error{Code: trustack.EFORBIDDEN, Message: "the PCRs the key is bound to changed since it was created"}

// PCRKey is an ECDSA P-256 signing key that the TPM uses only while a
// selection of PCRs (BootPCRs, normally) holds the values it held when the
// key was created: its policy is TPM2_PolicyPCR over them, and it has no
// password use. The agent's credential key is one, so that a host whose
// boot state changed can no longer authenticate. Like the AK it lives
// under the SRK and is kept in a file. It is immutable and safe for
// concurrent use.
type PCRKey struct {
	public  []byte // TPMT_PUBLIC
	private []byte
	sel     PCRSelection
	key     *ecdsa.PublicKey
}

// pcrKeyTemplate returns the template of a PCR-bound key with a policy.
func pcrKeyTemplate(policy []byte) tpm2.TPMTPublic {
	return tpm2.TPMTPublic{
		Type:    tpm2.TPMAlgECC,
		NameAlg: tpm2.TPMAlgSHA256,
		ObjectAttributes: tpm2.TPMAObject{
			FixedTPM:            true,
			FixedParent:         true,
			SensitiveDataOrigin: true,
			// Neither the user nor the admin role has a password
			// way in: the policy is the only one.
			UserWithAuth:    false,
			AdminWithPolicy: true,
			NoDA:            true,
			SignEncrypt:     true,
		},
		AuthPolicy: tpm2.TPM2BDigest{Buffer: policy},
		Parameters: ecdsaP256,
		Unique:     tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{}),
	}
}

// CreatePCRKey creates a key bound to the current values of a selection
// of PCRs (BootPCRs for the agent's credential key).
func (t *TPM) CreatePCRKey(sel PCRSelection) (*PCRKey, error) {
	tpml, err := sel.tpml()
	if err != nil {
		return nil, err
	}
	sel = PCRSelection{Hash: sel.Hash, PCRs: slices.Compact(slices.Sorted(slices.Values(sel.PCRs)))}
	t.mu.Lock()
	defer t.mu.Unlock()
	values, err := t.readPCRs(sel)
	if err != nil {
		return nil, err
	}
	// The policy digest, as a policy session running TPM2_PolicyPCR
	// over the selection would compute it while the PCRs hold these
	// values: the key's name algorithm, SHA-256, digests them.
	calc, err := tpm2.NewPolicyCalculator(tpm2.TPMAlgSHA256)
	if err != nil {
		return nil, err
	}
	if err := (tpm2.PolicyPCR{
		PcrDigest: tpm2.TPM2BDigest{Buffer: values.digest(crypto.SHA256)},
		Pcrs:      tpml,
	}).Update(calc); err != nil {
		return nil, fmt.Errorf("tpm: PCR policy: %w", err)
	}
	public, private, err := t.createUnderSRK(pcrKeyTemplate(calc.Hash().Digest))
	if err != nil {
		return nil, fmt.Errorf("tpm: create PCR-bound key: %w", err)
	}
	return newPCRKey(public, private, sel)
}

func newPCRKey(public, private []byte, sel PCRSelection) (*PCRKey, error) {
	pub, err := tpm2.Unmarshal[tpm2.TPMTPublic](public)
	if err != nil {
		return nil, trustack.Errorf(trustack.EINVALID, "tpm: PCR-bound key: %v", err)
	}
	key, err := publicKey(pub)
	if err != nil {
		return nil, trustack.Errorf(trustack.EINVALID, "tpm: PCR-bound key: %v", err)
	}
	ec, ok := key.(*ecdsa.PublicKey)
	if !ok {
		return nil, trustack.Errorf(trustack.EINVALID, "tpm: a PCR-bound key is ECDSA, not %T", key)
	}
	return &PCRKey{public: public, private: private, sel: sel, key: ec}, nil
}

// Public returns the public key.
func (k *PCRKey) Public() crypto.PublicKey { return k.key }

// PCRs returns the selection of PCRs the key is bound to.
func (k *PCRKey) PCRs() PCRSelection {
	return PCRSelection{Hash: k.sel.Hash, PCRs: slices.Clone(k.sel.PCRs)}
}

// Save writes the key to a file, readable only by its owner.
func (k *PCRKey) Save(path string) error {
	sel := k.PCRs()
	return writeKeyFile(path, keyFile{Kind: "pcr-key", Parent: srkParent, Public: k.public, Private: k.private, PCRs: &sel})
}

// LoadPCRKey reads the key that Save wrote to path and checks that this
// TPM can load it; it does not check the PCRs, which Sign does. Errors
// are not found when there is no file, invalid when it holds no such
// key, conflict when the TPM refuses the key.
func (t *TPM) LoadPCRKey(path string) (*PCRKey, error) {
	kf, err := readKeyFile(path, "pcr-key")
	if err != nil {
		return nil, err
	}
	if kf.PCRs == nil {
		return nil, trustack.Errorf(trustack.EINVALID, "tpm: %s: a PCR-bound key without PCRs", path)
	}
	k, err := newPCRKey(kf.Public, kf.Private, *kf.PCRs)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	h, _, err := t.load(k.public, k.private)
	if err != nil {
		return nil, fmt.Errorf("tpm: load PCR-bound key: %w", err)
	}
	t.flush(h)
	return k, nil
}

// Sign signs a SHA-256 digest with the key, through a policy session
// that runs TPM2_PolicyPCR over the key's PCRs, and returns an ASN.1
// ECDSA signature. Errors wrap ErrPCRPolicy (forbidden) when the PCRs no
// longer hold the values the key was bound to, and are invalid for a
// digest that is not 32 bytes.
func (t *TPM) Sign(k *PCRKey, digest []byte) ([]byte, error) {
	if len(digest) != crypto.SHA256.Size() {
		return nil, trustack.Errorf(trustack.EINVALID, "tpm: a PCR-bound key signs a SHA-256 digest, not %d bytes", len(digest))
	}
	tpml, err := k.sel.tpml()
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	h, name, err := t.load(k.public, k.private)
	if err != nil {
		return nil, fmt.Errorf("tpm: load PCR-bound key: %w", err)
	}
	defer t.flush(h)
	policy := tpm2.Policy(tpm2.TPMAlgSHA256, 16, func(tpm transport.TPM, session tpm2.TPMISHPolicy, _ tpm2.TPM2BNonce) error {
		// With no digest given, the TPM takes the PCRs' current values:
		// the session's digest is the key's policy only if they are
		// the values it was bound to.
		_, err := tpm2.PolicyPCR{PolicySession: session, Pcrs: tpml}.Execute(tpm)
		return err
	})
	rsp, err := tpm2.Sign{
		KeyHandle:  tpm2.AuthHandle{Handle: h, Name: name, Auth: policy},
		Digest:     tpm2.TPM2BDigest{Buffer: digest},
		InScheme:   tpm2.TPMTSigScheme{Scheme: tpm2.TPMAlgNull},
		Validation: tpm2.TPMTTKHashCheck{Tag: tpm2.TPMSTHashCheck, Hierarchy: tpm2.TPMRHNull},
	}.Execute(t.tpm)
	if err != nil {
		if errors.Is(err, tpm2.TPMRCPolicyFail) || errors.Is(err, tpm2.TPMRCPCRChanged) {
			return nil, fmt.Errorf("tpm: sign with PCR-bound key: %w", ErrPCRPolicy)
		}
		return nil, unavailable("sign with PCR-bound key", err)
	}
	e, err := rsp.Signature.Signature.ECDSA()
	if err != nil {
		return nil, fmt.Errorf("tpm: sign with PCR-bound key: %w", err)
	}
	return asn1.Marshal(struct{ R, S *big.Int }{
		new(big.Int).SetBytes(e.SignatureR.Buffer),
		new(big.Int).SetBytes(e.SignatureS.Buffer),
	})
}

// Signer returns a crypto.Signer of the key on this TPM, for TLS client
// certificates and the like. Its Sign takes SHA-256 digests only.
func (t *TPM) Signer(k *PCRKey) crypto.Signer { return &pcrSigner{t: t, k: k} }

type pcrSigner struct {
	t *TPM
	k *PCRKey
}

func (s *pcrSigner) Public() crypto.PublicKey { return s.k.key }

func (s *pcrSigner) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts.HashFunc() != crypto.SHA256 {
		return nil, trustack.Errorf(trustack.EINVALID, "tpm: a PCR-bound key signs SHA-256 digests, not %v", opts.HashFunc())
	}
	return s.t.Sign(s.k, digest)
}
