package attest_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/attest"
	"github.com/trustack/trustack/tpm"
)

// manufacturerCA returns the pools of the CA that manufactured the tests'
// TPMs (openTPM's), as a verifier configured for it has them.
func manufacturerCA(t testing.TB) (roots, intermediates *x509.CertPool) {
	t.Helper()
	_, ca := factory.Manufactured(t)
	roots, intermediates, err := ca.Pools()
	if err != nil {
		t.Fatalf("CA pools: %v", err)
	}
	return roots, intermediates
}

// readPEM returns the DER of the first PEM block of a file.
func readPEM(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s holds no PEM block", path)
	}
	return blk.Bytes
}

// seeded returns a deterministic source of secrets for a test.
func seeded(seed byte) *rand.ChaCha8 {
	return rand.NewChaCha8([32]byte{seed})
}

// registration is what the agent of tp sends to register ak with its EK
// of type typ.
func registration(t testing.TB, tp *tpm.TPM, typ tpm.EKType, ak *tpm.AK) (*tpm.EK, attest.Registration) {
	t.Helper()
	ek, err := tp.EK(typ)
	if err != nil {
		t.Fatalf("EK(%s): %v", typ, err)
	}
	if ek.Cert == nil {
		t.Fatalf("EK(%s) has no certificate", typ)
	}
	return ek, attest.Registration{EKCert: ek.Cert.Raw, EKPublic: ek.Public, AKPublic: ak.Public().Bytes()}
}

// register runs the whole protocol for the agent of tp with ak and returns
// the verifier's state of the host.
func register(t testing.TB, tp *tpm.TPM, typ tpm.EKType, ak *tpm.AK, now time.Time) attest.HostState {
	t.Helper()
	roots, inter := manufacturerCA(t)
	_, reg := registration(t, tp, typ, ak)
	p, cred, err := attest.Challenge(reg, roots, inter, now, seeded(1))
	if err != nil {
		t.Fatalf("Challenge: %v", err)
	}
	secret, err := tp.ActivateCredential(typ, ak, cred)
	if err != nil {
		t.Fatalf("ActivateCredential: %v", err)
	}
	st, err := attest.Complete(p, secret, now.Add(time.Second))
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	return st
}

// wantError checks that err has code and wraps target.
func wantError(t *testing.T, err error, code string, target error) {
	t.Helper()
	if got := trustack.ErrorCode(err); got != code {
		t.Fatalf("error %v has code %q, want %q", err, got, code)
	}
	if target != nil && !errors.Is(err, target) {
		t.Fatalf("error %v does not wrap %v", err, target)
	}
}

func TestRegister(t *testing.T) {
	// swtpm 0.7 certifies an RSA-2048 and an ECC P-384 EK.
	for _, typ := range []tpm.EKType{tpm.EKRSA2048, tpm.EKECCP384} {
		t.Run(typ.String(), func(t *testing.T) {
			tp := openTPM(t)
			ak, err := tp.CreateAK()
			if err != nil {
				t.Fatalf("CreateAK: %v", err)
			}
			st := register(t, tp, typ, ak, time.Now())
			if st.AK == nil || !bytes.Equal(st.AK.Name(), ak.Public().Name()) {
				t.Fatalf("certified AK %v, want the agent's (name %x)", st.AK, ak.Public().Name())
			}
			if st.Attested {
				t.Errorf("state of a host just registered is attested, want not attested")
			}
		})
	}
}

// The state Complete returns is the one the first attestation round starts
// from: a registered host is trusted at its first quote.
func TestRegisterThenAttest(t *testing.T) {
	h := newHost(t, baseline...)
	st := register(t, h.tp, tpm.EKRSA2048, h.ak, time.Now())
	_, st = verify(t, h.evidence(t, nonce(1), 0), nonce(1), st, h.whitelist("baseline"), trustack.VerdictTrusted)
	if !st.Attested {
		t.Errorf("state after a trusted first round is not attested")
	}
}

// The EK must be certified by a configured manufacturer; any other EK
// waits for an operator's approval.
func TestChallengeEKNotApproved(t *testing.T) {
	tp := openTPM(t)
	ak, err := tp.CreateAK()
	if err != nil {
		t.Fatalf("CreateAK: %v", err)
	}
	_, reg := registration(t, tp, tpm.EKRSA2048, ak)
	roots, inter := manufacturerCA(t)

	// Another manufacturer: a TPM made with a CA of its own.
	other, err := tpm.Manufacture(context.Background(), t.TempDir(), "")
	if err != nil {
		t.Fatalf("manufacture another TPM: %v", err)
	}
	otherRoots, otherInter, err := other.Pools()
	if err != nil {
		t.Fatalf("CA pools: %v", err)
	}
	noCert := reg
	noCert.EKCert = nil

	now := time.Now()
	for _, tc := range []struct {
		name         string
		reg          attest.Registration
		roots, inter *x509.CertPool
		now          time.Time
	}{
		{"unknown CA", reg, otherRoots, otherInter, now},
		{"no configured CA", reg, x509.NewCertPool(), nil, now},
		{"intermediate missing", reg, roots, nil, now},
		{"no certificate", noCert, roots, inter, now},
		{"certificate not yet valid", reg, roots, inter, now.AddDate(-1, 0, 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, cred, err := attest.Challenge(tc.reg, tc.roots, tc.inter, tc.now, seeded(1))
			wantError(t, err, trustack.EFORBIDDEN, attest.ErrEKNotApproved)
			t.Log(err)
			if cred != nil || p.Secret != nil || p.AK != nil {
				t.Errorf("refused challenge returned pending %+v and credential %v, want none", p, cred)
			}
		})
	}

	// The intermediate may come from the agent instead.
	withInter := reg
	_, issuer := factory.Manufactured(t)
	withInter.EKIntermediates = [][]byte{readPEM(t, issuer.Issuer)}
	if _, _, err := attest.Challenge(withInter, roots, nil, now, seeded(1)); err != nil {
		t.Errorf("Challenge with the intermediate sent by the agent: %v", err)
	}
}

func TestChallengeInvalid(t *testing.T) {
	tp := openTPM(t)
	ak, err := tp.CreateAK()
	if err != nil {
		t.Fatalf("CreateAK: %v", err)
	}
	roots, inter := manufacturerCA(t)
	_, reg := registration(t, tp, tpm.EKRSA2048, ak)
	eccEK, _ := registration(t, tp, tpm.EKECCP384, ak)

	mismatch := reg
	mismatch.EKCert = eccEK.Cert.Raw // certifies another key than reg.EKPublic
	badCert := reg
	badCert.EKCert = []byte("not a certificate")
	badAK := reg
	badAK.AKPublic = reg.AKPublic[:len(reg.AKPublic)-1]
	badInter := reg
	badInter.EKIntermediates = [][]byte{{0x30, 0x00}}
	fromCert := reg
	fromCert.EKPublic = nil

	for _, tc := range []struct {
		name string
		reg  attest.Registration
		code string // "" for success
	}{
		{"EK is not the certified key", mismatch, trustack.EINVALID},
		{"malformed EK certificate", badCert, trustack.EINVALID},
		{"malformed intermediate", badInter, trustack.EINVALID},
		{"malformed AK", badAK, trustack.EINVALID},
		{"EK taken from its certificate", fromCert, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := attest.Challenge(tc.reg, roots, inter, time.Now(), seeded(1))
			wantError(t, err, tc.code, nil)
		})
	}
}

// A credential made for one AK cannot be activated with another AK of the
// same TPM: the agent cannot have the verifier certify a key it does not
// use (or one of another TPM).
func TestRegisterOtherAK(t *testing.T) {
	tp := openTPM(t)
	ak, err := tp.CreateAK()
	if err != nil {
		t.Fatalf("CreateAK: %v", err)
	}
	other, err := tp.CreateAK()
	if err != nil {
		t.Fatalf("CreateAK: %v", err)
	}
	roots, inter := manufacturerCA(t)
	_, reg := registration(t, tp, tpm.EKRSA2048, ak)
	now := time.Now()
	p, cred, err := attest.Challenge(reg, roots, inter, now, seeded(1))
	if err != nil {
		t.Fatalf("Challenge: %v", err)
	}
	secret, err := tp.ActivateCredential(tpm.EKRSA2048, other, cred)
	if err == nil {
		// Should the TPM release something, it is not the secret.
		_, err = attest.Complete(p, secret, now)
		wantError(t, err, trustack.EFORBIDDEN, attest.ErrAKNotInTPM)
		return
	}
	t.Logf("ActivateCredential with another AK: %v", err)
	if trustack.ErrorCode(err) != trustack.EINVALID {
		t.Errorf("ActivateCredential with another AK: error %v, want invalid", err)
	}
}

func TestComplete(t *testing.T) {
	tp := openTPM(t)
	ak, err := tp.CreateAK()
	if err != nil {
		t.Fatalf("CreateAK: %v", err)
	}
	roots, inter := manufacturerCA(t)
	_, reg := registration(t, tp, tpm.EKRSA2048, ak)
	now := time.Now()
	p, cred, err := attest.Challenge(reg, roots, inter, now, seeded(1))
	if err != nil {
		t.Fatalf("Challenge: %v", err)
	}
	if got, want := p.Expires, now.Add(attest.ChallengeTimeout); !got.Equal(want) {
		t.Errorf("challenge expires at %s, want %s", got, want)
	}
	secret, err := tp.ActivateCredential(tpm.EKRSA2048, ak, cred)
	if err != nil {
		t.Fatalf("ActivateCredential: %v", err)
	}
	wrong := bytes.Clone(secret)
	wrong[0] ^= 1

	for _, tc := range []struct {
		name   string
		answer []byte
		at     time.Time
		code   string // "" for success
		target error
	}{
		{"secret before expiry", secret, p.Expires.Add(-time.Nanosecond), "", nil},
		{"secret at expiry", secret, p.Expires, trustack.EFORBIDDEN, attest.ErrChallengeExpired},
		{"secret after expiry", secret, p.Expires.Add(time.Hour), trustack.EFORBIDDEN, attest.ErrChallengeExpired},
		{"wrong secret", wrong, now, trustack.EFORBIDDEN, attest.ErrAKNotInTPM},
		{"truncated secret", secret[:len(secret)-1], now, trustack.EFORBIDDEN, attest.ErrAKNotInTPM},
		{"no answer", nil, now, trustack.EFORBIDDEN, attest.ErrAKNotInTPM},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := attest.Complete(p, tc.answer, tc.at)
			wantError(t, err, tc.code, tc.target)
			if tc.code == "" && st.AK != p.AK {
				t.Errorf("certified AK %v, want the challenge's %v", st.AK, p.AK)
			}
			if tc.code != "" && st.AK != nil {
				t.Errorf("refused answer certified AK %v", st.AK)
			}
		})
	}

	// Another challenge of the same registration holds another secret.
	p2, _, err := attest.Challenge(reg, roots, inter, now, seeded(2))
	if err != nil {
		t.Fatalf("Challenge: %v", err)
	}
	if _, err := attest.Complete(p2, secret, now); !errors.Is(err, attest.ErrAKNotInTPM) {
		t.Errorf("answer to another challenge: error %v, want %v", err, attest.ErrAKNotInTPM)
	}
}
