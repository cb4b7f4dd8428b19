package tpm_test

import (
	"bytes"
	"testing"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/tpm"
)

// The verifier, with no TPM, encrypts a secret to the EK from the
// certificate and the AK's name; only the TPM holding both recovers it.
func TestCredentialActivation(t *testing.T) {
	t.Parallel()
	tp := openTPM(t)
	ak := createAK(t, tp)
	for _, typ := range tpm.EKTypes {
		t.Run(typ.String(), func(t *testing.T) {
			ek, err := tp.EK(typ)
			if err != nil {
				t.Fatalf("EK: %v", err)
			}
			secret := []byte("a challenge of 32 bytes, really.")
			cred, err := tpm.MakeCredential(ek.Public, ak.Public().Name(), secret)
			if err != nil {
				t.Fatalf("MakeCredential: %v", err)
			}
			got, err := tp.ActivateCredential(typ, ak, cred)
			if err != nil {
				t.Fatalf("ActivateCredential: %v", err)
			}
			if !bytes.Equal(got, secret) {
				t.Errorf("ActivateCredential: got %q, want %q", got, secret)
			}
		})
	}
}

func TestCredentialActivationRejects(t *testing.T) {
	t.Parallel()
	tp := openTPM(t)
	ak, other := createAK(t, tp), createAK(t, tp)
	rsaEK, err := tp.EK(tpm.EKRSA2048)
	if err != nil {
		t.Fatal(err)
	}
	eccEK, err := tp.EK(tpm.EKECCP384)
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("secret")
	mustMake := func(ek *tpm.EK, name []byte) *tpm.Credential {
		t.Helper()
		cred, err := tpm.MakeCredential(ek.Public, name, secret)
		if err != nil {
			t.Fatalf("MakeCredential: %v", err)
		}
		return cred
	}
	tampered := mustMake(rsaEK, ak.Public().Name())
	tampered.IDObject = bytes.Clone(tampered.IDObject)
	tampered.IDObject[len(tampered.IDObject)-1] ^= 1

	for _, tc := range []struct {
		name string
		ek   tpm.EKType
		cred *tpm.Credential
	}{
		{"a credential for another AK", tpm.EKRSA2048, mustMake(rsaEK, other.Public().Name())},
		{"a credential for another AK, ECC EK", tpm.EKECCP384, mustMake(eccEK, other.Public().Name())},
		{"a credential to another EK", tpm.EKRSA2048, mustMake(eccEK, ak.Public().Name())},
		{"an altered credential", tpm.EKRSA2048, tampered},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tp.ActivateCredential(tc.ek, ak, tc.cred)
			if trustack.ErrorCode(err) != trustack.EINVALID {
				t.Errorf("ActivateCredential: got %q, %v, want an invalid error", got, err)
			}
		})
	}
	// The TPM works on after refusing.
	if _, err := tp.ActivateCredential(tpm.EKRSA2048, ak, mustMake(rsaEK, ak.Public().Name())); err != nil {
		t.Errorf("ActivateCredential after refusals: %v", err)
	}
	if _, err := tpm.MakeCredential(rsaEK.Public, ak.Public().Name(), make([]byte, 33)); trustack.ErrorCode(err) != trustack.EINVALID {
		t.Errorf("MakeCredential of a secret longer than the EK's name digest: got %v, want invalid", err)
	}
}
