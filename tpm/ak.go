package tpm

import (
	"bytes"
	"crypto"
	"fmt"

	"github.com/google/go-tpm/tpm2"

	"github.com/trustack/trustack"
)

// akTemplate is the attestation key's template: ECDSA P-256 with
// SHA-256, restricted to signing what the TPM produces itself (quotes,
// certifications), never an outside digest that could pass for one;
// fixedTPM and sensitiveDataOrigin, so the TPM made it and it cannot
// leave; used with an empty password.
var akTemplate = tpm2.TPMTPublic{
	Type:    tpm2.TPMAlgECC,
	NameAlg: tpm2.TPMAlgSHA256,
	ObjectAttributes: tpm2.TPMAObject{
		FixedTPM:            true,
		FixedParent:         true,
		SensitiveDataOrigin: true,
		UserWithAuth:        true,
		NoDA:                true,
		Restricted:          true,
		SignEncrypt:         true,
	},
	Parameters: ecdsaP256,
	Unique:     tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{}),
}

// ecdsaP256 are the parameters of trustack's signing keys: ECDSA with
// SHA-256 on P-256.
var ecdsaP256 = tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
	Symmetric: tpm2.TPMTSymDefObject{Algorithm: tpm2.TPMAlgNull},
	Scheme: tpm2.TPMTECCScheme{
		Scheme:  tpm2.TPMAlgECDSA,
		Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSigSchemeECDSA{HashAlg: tpm2.TPMAlgSHA256}),
	},
	CurveID: tpm2.TPMECCNistP256,
	KDF:     tpm2.TPMTKDFScheme{Scheme: tpm2.TPMAlgNull},
})

// AK is an attestation key: a restricted ECDSA P-256 signing key that
// the TPM created under its storage root key (the owner hierarchy's,
// rather than under the EK as Keylime does, since the EK may be used only
// through a policy session and would need one at every load), and that
// signs quotes. It is kept in a file (Save, LoadAK) so that it survives
// restarts of the agent, and the verifier that certified it keeps
// trusting it. Only the TPM that created it can use it. An AK is
// immutable and safe for concurrent use.
type AK struct {
	public  *AKPublic
	private []byte
}

// CreateAK creates a new attestation key.
func (t *TPM) CreateAK() (*AK, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	public, private, err := t.createUnderSRK(akTemplate)
	if err != nil {
		return nil, fmt.Errorf("tpm: create AK: %w", err)
	}
	pub, err := ParseAKPublic(public)
	if err != nil {
		return nil, fmt.Errorf("tpm: create AK: %w", err)
	}
	return &AK{public: pub, private: private}, nil
}

// Public returns the public part of the AK, which the agent sends the
// verifier.
func (ak *AK) Public() *AKPublic { return ak.public }

// Save writes the AK to a file, readable only by its owner; the TPM
// encrypted the private part, which only this TPM can load.
func (ak *AK) Save(path string) error {
	return writeKeyFile(path, keyFile{Kind: "ak", Parent: srkParent, Public: ak.public.raw, Private: ak.private})
}

// LoadAK reads the AK that Save wrote to path and checks that this TPM
// can load it. Errors are not found when there is no file, invalid when
// the file holds no AK, conflict when the TPM refuses the AK (it is
// another TPM's, or the TPM was cleared since): the agent then creates a
// new AK and registers again.
func (t *TPM) LoadAK(path string) (*AK, error) {
	kf, err := readKeyFile(path, "ak")
	if err != nil {
		return nil, err
	}
	pub, err := ParseAKPublic(kf.Public)
	if err != nil {
		return nil, fmt.Errorf("tpm: AK in %s: %w", path, err)
	}
	ak := &AK{public: pub, private: kf.Private}
	t.mu.Lock()
	defer t.mu.Unlock()
	h, _, err := t.loadAK(ak)
	if err != nil {
		return nil, err
	}
	t.flush(h)
	return ak, nil
}

// loadAK loads the AK and checks that its name is the one expected;
// the caller flushes it.
func (t *TPM) loadAK(ak *AK) (tpm2.TPMHandle, tpm2.TPM2BName, error) {
	h, name, err := t.load(ak.public.raw, ak.private)
	if err != nil {
		return 0, tpm2.TPM2BName{}, fmt.Errorf("tpm: load AK: %w", err)
	}
	if !bytes.Equal(name.Buffer, ak.public.name) {
		t.flush(h)
		return 0, tpm2.TPM2BName{}, fmt.Errorf("tpm: load AK: the TPM names it %x, not %x", name.Buffer, ak.public.name)
	}
	return h, name, nil
}

// AKPublic is the public part of an attestation key, as the verifier
// receives it: a TPMT_PUBLIC whose attributes ParseAKPublic checked. It
// is immutable and safe for concurrent use.
type AKPublic struct {
	raw     []byte
	name    []byte
	key     crypto.PublicKey
	scheme  tpm2.TPMAlgID // TPMAlgECDSA, TPMAlgRSASSA or TPMAlgRSAPSS
	hash    crypto.Hash   // of the signing scheme
	tpmHash tpm2.TPMAlgID // the same, as the TPM names it
}

// ParseAKPublic parses an attestation key's public area (TPMT_PUBLIC)
// and checks that it describes a key fit to attest: created by a TPM
// (sensitiveDataOrigin) that it cannot leave (fixedTPM, fixedParent),
// restricted to signing what the TPM produces, with a fixed ECDSA,
// RSASSA or RSA-PSS scheme. That it lives in the same TPM as an EK is
// what credential activation proves. Errors are invalid.
func ParseAKPublic(b []byte) (*AKPublic, error) {
	pub, err := tpm2.Unmarshal[tpm2.TPMTPublic](b)
	if err != nil {
		return nil, trustack.Errorf(trustack.EINVALID, "tpm: AK public area: %v", err)
	}
	// The name hashes these bytes: they must be exactly what the TPM
	// would marshal, not a lookalike with trailing data.
	if !bytes.Equal(tpm2.Marshal(*pub), b) {
		return nil, trustack.Errorf(trustack.EINVALID, "tpm: AK public area is not canonically encoded")
	}
	a := pub.ObjectAttributes
	if !a.FixedTPM || !a.FixedParent || !a.SensitiveDataOrigin || !a.Restricted || !a.SignEncrypt || a.Decrypt {
		return nil, trustack.Errorf(trustack.EINVALID, "tpm: not an attestation key: it must be fixedTPM, fixedParent, sensitiveDataOrigin, restricted and sign-only")
	}
	p := &AKPublic{raw: bytes.Clone(b)}
	var scheme tpm2.TPMAlgID
	var schemeHash tpm2.TPMAlgID
	switch pub.Type {
	case tpm2.TPMAlgECC:
		parms, err := pub.Parameters.ECCDetail()
		if err != nil {
			return nil, trustack.Errorf(trustack.EINVALID, "tpm: AK parameters: %v", err)
		}
		scheme = parms.Scheme.Scheme
		if scheme == tpm2.TPMAlgECDSA {
			d, err := parms.Scheme.Details.ECDSA()
			if err != nil {
				return nil, trustack.Errorf(trustack.EINVALID, "tpm: AK scheme: %v", err)
			}
			schemeHash = d.HashAlg
		}
	case tpm2.TPMAlgRSA:
		parms, err := pub.Parameters.RSADetail()
		if err != nil {
			return nil, trustack.Errorf(trustack.EINVALID, "tpm: AK parameters: %v", err)
		}
		scheme = parms.Scheme.Scheme
		switch scheme {
		case tpm2.TPMAlgRSASSA:
			d, err := parms.Scheme.Details.RSASSA()
			if err != nil {
				return nil, trustack.Errorf(trustack.EINVALID, "tpm: AK scheme: %v", err)
			}
			schemeHash = d.HashAlg
		case tpm2.TPMAlgRSAPSS:
			d, err := parms.Scheme.Details.RSAPSS()
			if err != nil {
				return nil, trustack.Errorf(trustack.EINVALID, "tpm: AK scheme: %v", err)
			}
			schemeHash = d.HashAlg
		}
	}
	if schemeHash == 0 {
		return nil, trustack.Errorf(trustack.EINVALID, "tpm: an AK has a fixed ECDSA, RSASSA or RSA-PSS scheme, not 0x%x", uint16(scheme))
	}
	p.scheme, p.tpmHash = scheme, schemeHash
	if p.hash, err = goHash(schemeHash); err != nil {
		return nil, err
	}
	if p.key, err = publicKey(pub); err != nil {
		return nil, trustack.Errorf(trustack.EINVALID, "tpm: AK key: %v", err)
	}
	name, err := tpm2.ObjectName(pub)
	if err != nil {
		return nil, trustack.Errorf(trustack.EINVALID, "tpm: AK name: %v", err)
	}
	p.name = name.Buffer
	return p, nil
}

// Bytes returns the public area, a TPMT_PUBLIC.
func (p *AKPublic) Bytes() []byte { return bytes.Clone(p.raw) }

// Name returns the key's TPM name: its name algorithm and the digest of
// its public area, the name MakeCredential binds a credential to.
func (p *AKPublic) Name() []byte { return bytes.Clone(p.name) }

// Key returns the public key, an *ecdsa.PublicKey or an *rsa.PublicKey.
func (p *AKPublic) Key() crypto.PublicKey { return p.key }
