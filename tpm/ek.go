package tpm

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/trustack/trustack"
)

// EKType is a kind of endorsement key, as the TCG EK Credential Profile
// defines them: each has a template from which the TPM derives the same
// key from its endorsement seed whenever asked, and an NV index where the
// manufacturer stores the key's certificate.
type EKType int

// The endorsement key types.
const (
	EKRSA2048 EKType = iota + 1 // template L-1, certificate at NV 0x01c00002
	EKECCP256                   // template L-2, certificate at NV 0x01c0000a
	EKECCP384                   // template H-3, certificate at NV 0x01c00016
)

// EKTypes are the endorsement key types, in the order EKs tries them.
var EKTypes = []EKType{EKRSA2048, EKECCP256, EKECCP384}

// String returns the key's algorithm, as "RSA-2048".
func (t EKType) String() string {
	switch t {
	case EKRSA2048:
		return "RSA-2048"
	case EKECCP256:
		return "ECC-P256"
	case EKECCP384:
		return "ECC-P384"
	}
	return fmt.Sprintf("EKType(%d)", int(t))
}

// NVIndex returns the NV index of the type's certificate.
func (t EKType) NVIndex() uint32 {
	switch t {
	case EKRSA2048:
		return 0x01c00002
	case EKECCP256:
		return 0x01c0000a
	case EKECCP384:
		return 0x01c00016
	}
	return 0
}

// template returns the type's TCG template. The L templates have
// userWithAuth clear: the EK is usable only through its policy,
// PolicySecret(TPM_RH_ENDORSEMENT). H-3 sets it, and its policy is
// another (PolicyB, SHA-384), so an empty password is what uses it.
func (t EKType) template() (tpm2.TPMTPublic, error) {
	switch t {
	case EKRSA2048:
		return tpm2.RSAEKTemplate, nil
	case EKECCP256:
		return tpm2.ECCEKTemplate, nil
	case EKECCP384:
		return eccP384EKTemplate, nil
	}
	return tpm2.TPMTPublic{}, trustack.Errorf(trustack.EINVALID, "tpm: unknown EK type %d", int(t))
}

// needsPolicy reports whether using the EK takes a PolicySecret session.
func (t EKType) needsPolicy() bool { return t != EKECCP384 }

// eccP384EKTemplate is the TCG EK Credential Profile's template H-3 (ECC
// NIST P-384, SHA-384, AES-256), with the empty unique field of the high
// range templates: swtpm_setup creates its ECC EK from it.
var eccP384EKTemplate = tpm2.TPMTPublic{
	Type:    tpm2.TPMAlgECC,
	NameAlg: tpm2.TPMAlgSHA384,
	ObjectAttributes: tpm2.TPMAObject{
		FixedTPM:            true,
		FixedParent:         true,
		SensitiveDataOrigin: true,
		UserWithAuth:        true,
		AdminWithPolicy:     true,
		Restricted:          true,
		Decrypt:             true,
	},
	AuthPolicy: tpm2.TPM2BDigest{Buffer: []byte{ // PolicyB, SHA-384
		0xb2, 0x6e, 0x7d, 0x28, 0xd1, 0x1a, 0x50, 0xbc, 0x53, 0xd8, 0x82, 0xbc,
		0xf5, 0xfd, 0x3a, 0x1a, 0x07, 0x41, 0x48, 0xbb, 0x35, 0xd3, 0xb4, 0xe4,
		0xcb, 0x1c, 0x0a, 0xd9, 0xbd, 0xe4, 0x19, 0xca, 0xcb, 0x47, 0xba, 0x09,
		0x69, 0x96, 0x46, 0x15, 0x0f, 0x9f, 0xc0, 0x00, 0xf3, 0xf8, 0x0e, 0x12,
	}},
	Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
		Symmetric: tpm2.TPMTSymDefObject{
			Algorithm: tpm2.TPMAlgAES,
			KeyBits:   tpm2.NewTPMUSymKeyBits(tpm2.TPMAlgAES, tpm2.TPMKeyBits(256)),
			Mode:      tpm2.NewTPMUSymMode(tpm2.TPMAlgAES, tpm2.TPMAlgCFB),
		},
		CurveID: tpm2.TPMECCNistP384,
	}),
	Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{}),
}

// EK is a TPM's endorsement key: the key that identifies the TPM, which
// never signs and only decrypts, so a verifier uses it to learn that an
// attestation key lives in the same TPM (MakeCredential).
type EK struct {
	Type EKType
	// Public is the key, an *rsa.PublicKey or an *ecdsa.PublicKey.
	Public crypto.PublicKey
	// Cert is the manufacturer's certificate of Public, read from the
	// TPM's NV; nil where the TPM holds none (some TPMs publish theirs
	// at a URL instead).
	Cert *x509.Certificate
}

// EK returns the TPM's endorsement key of a type, with its certificate
// when the TPM holds one. It creates the key from its template under the
// endorsement hierarchy, and checks that the certificate certifies that
// key. Errors are invalid for an unknown type or a TPM that cannot create
// it, internal for a certificate of another key.
func (t *TPM) EK(typ EKType) (*EK, error) {
	tmpl, err := typ.template()
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	der, err := t.readNV(tpm2.TPMHandle(typ.NVIndex()))
	if err != nil && !errors.Is(err, errNoNVIndex) {
		return nil, fmt.Errorf("tpm: read the %s EK certificate: %w", typ, err)
	}
	ek := &EK{Type: typ}
	if der != nil {
		if ek.Cert, err = parseEKCert(der); err != nil {
			return nil, fmt.Errorf("tpm: %s EK certificate: %w", typ, err)
		}
	}
	h, _, pub, err := t.createEK(typ, tmpl)
	if err != nil {
		return nil, err
	}
	t.flush(h)
	if ek.Public, err = publicKey(pub); err != nil {
		return nil, fmt.Errorf("tpm: %s EK: %w", typ, err)
	}
	if ek.Cert != nil && !samePublicKey(ek.Cert.PublicKey, ek.Public) {
		return nil, fmt.Errorf("tpm: the %s EK certificate in NV 0x%08x is not of the TPM's %s EK", typ, typ.NVIndex(), typ)
	}
	return ek, nil
}

// EKs returns the TPM's endorsement keys that have a certificate in NV,
// in the order of EKTypes. It returns a not found error if there is none.
func (t *TPM) EKs() ([]*EK, error) {
	var eks []*EK
	for _, typ := range EKTypes {
		t.mu.Lock()
		_, err := tpm2.NVReadPublic{NVIndex: tpm2.TPMHandle(typ.NVIndex())}.Execute(t.tpm)
		t.mu.Unlock()
		if errors.Is(err, tpm2.TPMRCHandle) {
			continue
		}
		if err != nil {
			return nil, unavailable("read NV public", err)
		}
		ek, err := t.EK(typ)
		if err != nil {
			return nil, err
		}
		eks = append(eks, ek)
	}
	if len(eks) == 0 {
		return nil, trustack.Errorf(trustack.ENOTFOUND, "tpm: the TPM holds no EK certificate")
	}
	return eks, nil
}

// createEK creates the EK of a type as a transient object, which the
// caller flushes.
func (t *TPM) createEK(typ EKType, tmpl tpm2.TPMTPublic) (tpm2.TPMHandle, tpm2.TPM2BName, *tpm2.TPMTPublic, error) {
	rsp, err := tpm2.CreatePrimary{
		PrimaryHandle: tpm2.AuthHandle{Handle: tpm2.TPMRHEndorsement, Auth: tpm2.PasswordAuth(nil)},
		InPublic:      tpm2.New2B(tmpl),
	}.Execute(t.tpm)
	if err != nil {
		return 0, tpm2.TPM2BName{}, nil, unavailable(fmt.Sprintf("create the %s EK", typ), err)
	}
	pub, err := rsp.OutPublic.Contents()
	if err != nil {
		t.flush(rsp.ObjectHandle)
		return 0, tpm2.TPM2BName{}, nil, fmt.Errorf("tpm: %s EK: %w", typ, err)
	}
	return rsp.ObjectHandle, rsp.Name, pub, nil
}

// ekAuth returns the authorisation to use a loaded EK of a type: a
// policy session satisfying PolicySecret(TPM_RH_ENDORSEMENT) for the L
// templates, an empty password for H-3.
func ekAuth(typ EKType, h tpm2.TPMHandle, name tpm2.TPM2BName) tpm2.AuthHandle {
	auth := tpm2.PasswordAuth(nil)
	if typ.needsPolicy() {
		auth = tpm2.Policy(tpm2.TPMAlgSHA256, 16, tpm2.PolicyCallback(func(tpm transport.TPM, session tpm2.TPMISHPolicy, _ tpm2.TPM2BNonce) error {
			_, err := tpm2.PolicySecret{
				AuthHandle:    tpm2.AuthHandle{Handle: tpm2.TPMRHEndorsement, Auth: tpm2.PasswordAuth(nil)},
				PolicySession: session,
			}.Execute(tpm)
			return err
		}))
	}
	return tpm2.AuthHandle{Handle: h, Name: name, Auth: auth}
}

// errNoNVIndex is readNV's answer for an index that is not defined.
var errNoNVIndex = errors.New("NV index not defined")

// readNV reads the whole of an NV index, in chunks the TPM accepts.
func (t *TPM) readNV(idx tpm2.TPMHandle) ([]byte, error) {
	rp, err := tpm2.NVReadPublic{NVIndex: idx}.Execute(t.tpm)
	if errors.Is(err, tpm2.TPMRCHandle) {
		return nil, errNoNVIndex
	}
	if err != nil {
		return nil, unavailable("read NV public", err)
	}
	pub, err := rp.NVPublic.Contents()
	if err != nil {
		return nil, err
	}
	// An EK certificate index is readable with its own empty
	// authorisation or the owner's; prefer the index's own.
	auth := tpm2.AuthHandle{Handle: idx, Name: rp.NVName, Auth: tpm2.PasswordAuth(nil)}
	if !pub.Attributes.AuthRead {
		auth = tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(nil)}
	}
	chunk := t.nvBufferMax()
	data := make([]byte, 0, pub.DataSize)
	for off := 0; off < int(pub.DataSize); off += chunk {
		n := min(chunk, int(pub.DataSize)-off)
		rsp, err := tpm2.NVRead{
			AuthHandle: auth,
			NVIndex:    tpm2.NamedHandle{Handle: idx, Name: rp.NVName},
			Size:       uint16(n),
			Offset:     uint16(off),
		}.Execute(t.tpm)
		if err != nil {
			return nil, unavailable("read NV", err)
		}
		data = append(data, rsp.Data.Buffer...)
	}
	return data, nil
}

// nvBufferMax returns the largest NV read the TPM accepts.
func (t *TPM) nvBufferMax() int {
	rsp, err := tpm2.GetCapability{
		Capability:    tpm2.TPMCapTPMProperties,
		Property:      uint32(tpm2.TPMPTNVBufferMax),
		PropertyCount: 1,
	}.Execute(t.tpm)
	if err == nil {
		if props, err := rsp.CapabilityData.Data.TPMProperties(); err == nil && len(props.TPMProperty) == 1 &&
			props.TPMProperty[0].Property == tpm2.TPMPTNVBufferMax && props.TPMProperty[0].Value > 0 {
			return int(props.TPMProperty[0].Value)
		}
	}
	return 512 // the smallest any TPM is known to accept
}

// parseEKCert parses an EK certificate read from NV. Some TPMs pad the NV
// index after the certificate, so only the outer DER SEQUENCE is parsed.
func parseEKCert(der []byte) (*x509.Certificate, error) {
	var raw asn1.RawValue
	if rest, err := asn1.Unmarshal(der, &raw); err == nil && len(rest) > 0 {
		der = der[:len(der)-len(rest)]
	}
	return x509.ParseCertificate(der)
}

// samePublicKey reports whether two public keys are equal.
func samePublicKey(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}

// oidSubjectAltName is the X.509 Subject Alternative Name extension.
var oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}

// VerifyEKCert checks that an EK certificate chains, through
// intermediates, to one of roots, at time now. EK certificates mark
// critical a Subject Alternative Name that holds only a directory name
// (the TPM's manufacturer, model and version), which crypto/x509 does not
// understand and would refuse the certificate for; it is accepted here.
// Their extended key usage is the TCG's EK certificate one, so any usage
// is accepted. Errors are forbidden when the chain does not verify.
func VerifyEKCert(cert *x509.Certificate, roots, intermediates *x509.CertPool, now time.Time) error {
	c := *cert
	c.UnhandledCriticalExtensions = slices.DeleteFunc(slices.Clone(c.UnhandledCriticalExtensions), func(oid asn1.ObjectIdentifier) bool {
		return oid.Equal(oidSubjectAltName)
	})
	_, err := c.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: intermediates,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return trustack.Errorf(trustack.EFORBIDDEN, "tpm: EK certificate %q (serial %s): %v", cert.Subject, cert.SerialNumber, err)
	}
	return nil
}

// ekPublicArea returns the public area a TPM creates for an EK of key
// pub: its type's template with the key as unique field. It is how a
// verifier knows the EK's symmetric parameters and name algorithm, which
// a certificate does not give, for MakeCredential.
func ekPublicArea(pub crypto.PublicKey) (tpm2.TPMTPublic, EKType, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() != 2048 || k.E != 65537 {
			return tpm2.TPMTPublic{}, 0, trustack.Errorf(trustack.EINVALID, "tpm: an RSA EK has a 2048-bit modulus and exponent 65537, not %d bits and %d", k.N.BitLen(), k.E)
		}
		p := tpm2.RSAEKTemplate
		p.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgRSA, &tpm2.TPM2BPublicKeyRSA{Buffer: k.N.FillBytes(make([]byte, 256))})
		return p, EKRSA2048, nil
	case *ecdsa.PublicKey:
		var p tpm2.TPMTPublic
		var typ EKType
		switch k.Curve {
		case elliptic.P256():
			p, typ = tpm2.ECCEKTemplate, EKECCP256
		case elliptic.P384():
			p, typ = eccP384EKTemplate, EKECCP384
		default:
			return tpm2.TPMTPublic{}, 0, trustack.Errorf(trustack.EINVALID, "tpm: no EK template for curve %s", k.Curve.Params().Name)
		}
		point, err := k.Bytes()
		if err != nil {
			return tpm2.TPMTPublic{}, 0, trustack.Errorf(trustack.EINVALID, "tpm: EK: %v", err)
		}
		x, y := point[1:1+len(point)/2], point[1+len(point)/2:]
		p.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{
			X: tpm2.TPM2BECCParameter{Buffer: x},
			Y: tpm2.TPM2BECCParameter{Buffer: y},
		})
		return p, typ, nil
	}
	return tpm2.TPMTPublic{}, 0, trustack.Errorf(trustack.EINVALID, "tpm: an EK is RSA or ECDSA, not %T", pub)
}
