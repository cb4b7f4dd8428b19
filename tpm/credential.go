package tpm

import (
	"crypto"
	"crypto/rand"
	"fmt"

	"github.com/google/go-tpm/tpm2"

	"github.com/trustack/trustack"
)

// Credential is a secret that only the TPM holding an EK can recover,
// and only for a key of a given name loaded in that TPM: what
// TPM2_MakeCredential makes, here in software (MakeCredential) by the
// verifier, which has no TPM.
type Credential struct {
	// IDObject is the encrypted, integrity-protected secret, the
	// contents of a TPM2B_ID_OBJECT.
	IDObject []byte
	// EncSecret is the seed that protects it, encrypted to the EK (RSA-OAEP
	// or ECDH), the contents of a TPM2B_ENCRYPTED_SECRET.
	EncSecret []byte
}

// MakeCredential encrypts secret to the endorsement key ek (an RSA-2048,
// ECC P-256 or ECC P-384 key, as taken from its certificate) for the
// attestation key named akName (AKPublic.Name). The TPM releases the
// secret in ActivateCredential only if it holds both keys, which proves
// to the verifier that the AK lives in the TPM that the EK certificate
// identifies. The secret is at most as long as the EK's name digest (32
// bytes, 48 for ECC P-384). Errors are invalid.
func MakeCredential(ek crypto.PublicKey, akName, secret []byte) (*Credential, error) {
	pub, _, err := ekPublicArea(ek)
	if err != nil {
		return nil, err
	}
	h, err := pub.NameAlg.Hash()
	if err != nil {
		return nil, err
	}
	if len(secret) == 0 || len(secret) > h.Size() {
		return nil, trustack.Errorf(trustack.EINVALID, "tpm: a credential's secret is 1 to %d bytes, not %d", h.Size(), len(secret))
	}
	key, err := tpm2.ImportEncapsulationKey(&pub)
	if err != nil {
		return nil, trustack.Errorf(trustack.EINVALID, "tpm: EK: %v", err)
	}
	idObject, encSecret, err := tpm2.CreateCredential(rand.Reader, key, akName, secret)
	if err != nil {
		return nil, fmt.Errorf("tpm: make credential: %w", err)
	}
	return &Credential{IDObject: idObject, EncSecret: encSecret}, nil
}

// ActivateCredential recovers the secret of a credential that
// MakeCredential encrypted to this TPM's EK of type ek for ak. The EK is
// used through a policy session satisfying its policy,
// PolicySecret(TPM_RH_ENDORSEMENT), or for ECC P-384 (template H-3) an
// empty password. Errors are invalid when the TPM refuses the credential:
// it was made for another EK or another AK, or altered.
func (t *TPM) ActivateCredential(ek EKType, ak *AK, cred *Credential) ([]byte, error) {
	tmpl, err := ek.template()
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	akHandle, akName, err := t.loadAK(ak)
	if err != nil {
		return nil, err
	}
	defer t.flush(akHandle)
	ekHandle, ekName, _, err := t.createEK(ek, tmpl)
	if err != nil {
		return nil, err
	}
	defer t.flush(ekHandle)
	rsp, err := tpm2.ActivateCredential{
		ActivateHandle: tpm2.AuthHandle{Handle: akHandle, Name: akName, Auth: tpm2.PasswordAuth(nil)},
		KeyHandle:      ekAuth(ek, ekHandle, ekName),
		CredentialBlob: tpm2.TPM2BIDObject{Buffer: cred.IDObject},
		Secret:         tpm2.TPM2BEncryptedSecret{Buffer: cred.EncSecret},
	}.Execute(t.tpm)
	if isTPMError(err) {
		return nil, trustack.Errorf(trustack.EINVALID, "tpm: the TPM refuses the credential (made for another EK or AK, or altered): %v", err)
	}
	if err != nil {
		return nil, unavailable("activate credential", err)
	}
	return rsp.CertInfo.Buffer, nil
}
