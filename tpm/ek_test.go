package tpm_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/tpm"
)

// swtpm_setup 0.7 stores certificates for an RSA-2048 and an ECC P-384
// EK; each must be the certificate of the key the TPM derives from its
// template, and chain to the local CA.
func TestEKsHaveCertificatesFromTheLocalCA(t *testing.T) {
	t.Parallel()
	s := startSwtpm(t)
	tp := s.open(t)
	roots, intermediates, err := s.ca.Pools()
	if err != nil {
		t.Fatalf("Pools: %v", err)
	}
	eks, err := tp.EKs()
	if err != nil {
		t.Fatalf("EKs: %v", err)
	}
	var types []tpm.EKType
	for _, ek := range eks {
		types = append(types, ek.Type)
	}
	if len(types) != 2 || types[0] != tpm.EKRSA2048 || types[1] != tpm.EKECCP384 {
		t.Fatalf("EKs: got types %v, want [RSA-2048 ECC-P384]", types)
	}
	for _, ek := range eks {
		t.Run(ek.Type.String(), func(t *testing.T) {
			if ek.Cert == nil {
				t.Fatalf("no certificate")
			}
			switch ek.Type {
			case tpm.EKRSA2048:
				if k, ok := ek.Public.(*rsa.PublicKey); !ok || k.N.BitLen() != 2048 {
					t.Errorf("got a %T key, want RSA-2048", ek.Public)
				}
			case tpm.EKECCP384:
				if k, ok := ek.Public.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P384() {
					t.Errorf("got a %T key, want ECC P-384", ek.Public)
				}
			}
			if !ek.Cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(ek.Public) {
				t.Errorf("the certificate's key is not the EK")
			}
			if err := tpm.VerifyEKCert(ek.Cert, roots, intermediates, time.Now()); err != nil {
				t.Errorf("VerifyEKCert with the local CA: %v", err)
			}
			other := otherCA(t)
			if err := tpm.VerifyEKCert(ek.Cert, other, nil, time.Now()); trustack.ErrorCode(err) != trustack.EFORBIDDEN {
				t.Errorf("VerifyEKCert with another CA: got %v, want a forbidden error", err)
			}
			if err := tpm.VerifyEKCert(ek.Cert, roots, nil, time.Now()); trustack.ErrorCode(err) != trustack.EFORBIDDEN {
				t.Errorf("VerifyEKCert without the issuing intermediate: got %v, want a forbidden error", err)
			}
		})
	}
}

// A TPM without a certificate for a type still has the EK: swtpm 0.7
// makes no ECC P-256 EK certificate.
func TestEKWithoutCertificate(t *testing.T) {
	t.Parallel()
	tp := openTPM(t)
	ek, err := tp.EK(tpm.EKECCP256)
	if err != nil {
		t.Fatalf("EK(ECC-P256): %v", err)
	}
	if ek.Cert != nil {
		t.Errorf("got a certificate, want none")
	}
	if k, ok := ek.Public.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("got a %T key, want ECC P-256", ek.Public)
	}
	if _, err := tp.EK(tpm.EKType(9)); trustack.ErrorCode(err) != trustack.EINVALID {
		t.Errorf("EK of an unknown type: got %v, want an invalid error", err)
	}
}

// otherCA returns a pool with a root that signed no EK.
func otherCA(t testing.TB) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "swtpm-localca"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}
