package tpm_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-tpm/tpm2"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/tpm"
)

func TestCreateAK(t *testing.T) {
	t.Parallel()
	tp := openTPM(t)
	ak := createAK(t, tp)
	pub := ak.Public()
	if k, ok := pub.Key().(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("AK key: got %T, want ECDSA P-256", pub.Key())
	}
	// The name is the name algorithm (SHA-256, 0x000b) and the digest
	// of the public area, as the TPM computes it.
	digest := sha256.Sum256(pub.Bytes())
	if want := append([]byte{0x00, 0x0b}, digest[:]...); !bytes.Equal(pub.Name(), want) {
		t.Errorf("Name: got %x, want %x", pub.Name(), want)
	}
	parsed, err := tpm.ParseAKPublic(pub.Bytes())
	if err != nil {
		t.Fatalf("ParseAKPublic of the AK: %v", err)
	}
	if !bytes.Equal(parsed.Name(), pub.Name()) {
		t.Errorf("parsed name %x, want %x", parsed.Name(), pub.Name())
	}
	if other := createAK(t, tp); bytes.Equal(other.Public().Name(), pub.Name()) {
		t.Errorf("two AKs have the same name %x", pub.Name())
	}
}

// The AK survives restarts of the agent: saved to a file, it loads again
// into the TPM that made it, through another connection.
func TestAKSavedAndLoaded(t *testing.T) {
	t.Parallel()
	s := startSwtpm(t)
	tp := s.open(t)
	ak := createAK(t, tp)
	path := filepath.Join(t.TempDir(), "ak.json")
	if err := ak.Save(path); err != nil {
		t.Fatalf("Save: %v", err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("AK file: got %v (%v), want mode 0600", fi.Mode(), err)
	}
	tp.Close()

	tp = s.open(t)
	loaded, err := tp.LoadAK(path)
	if err != nil {
		t.Fatalf("LoadAK: %v", err)
	}
	if !bytes.Equal(loaded.Public().Bytes(), ak.Public().Bytes()) {
		t.Errorf("loaded AK's public area differs from the saved one")
	}
	nonce := []byte("after a restart")
	attest, sig, err := tp.Quote(loaded, nonce, tpm.QuotePCRs)
	if err != nil {
		t.Fatalf("Quote with the loaded AK: %v", err)
	}
	pcrs, err := tp.ReadPCRs(tpm.QuotePCRs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tpm.VerifyQuote(ak.Public(), attest, sig, nonce, pcrs); err != nil {
		t.Errorf("a quote of the loaded AK does not verify with the saved AK's public part: %v", err)
	}

	if _, err := tp.LoadAK(filepath.Join(t.TempDir(), "none.json")); trustack.ErrorCode(err) != trustack.ENOTFOUND {
		t.Errorf("LoadAK of a missing file: got %v, want not found", err)
	}
	garbage := filepath.Join(t.TempDir(), "garbage.json")
	os.WriteFile(garbage, []byte(`{"kind":"pcr-key"}`), 0o600)
	if _, err := tp.LoadAK(garbage); trustack.ErrorCode(err) != trustack.EINVALID {
		t.Errorf("LoadAK of a file without an AK: got %v, want invalid", err)
	}
}

// The verifier accepts as AKs only keys fit to attest.
func TestParseAKPublicRejects(t *testing.T) {
	t.Parallel()
	tp := openTPM(t)
	ak := createAK(t, tp)
	unrestricted, err := tpm2.Unmarshal[tpm2.TPMTPublic](ak.Public().Bytes())
	if err != nil {
		t.Fatal(err)
	}
	unrestricted.ObjectAttributes.Restricted = false
	movable, _ := tpm2.Unmarshal[tpm2.TPMTPublic](ak.Public().Bytes())
	movable.ObjectAttributes.FixedTPM = false
	imported, _ := tpm2.Unmarshal[tpm2.TPMTPublic](ak.Public().Bytes())
	imported.ObjectAttributes.SensitiveDataOrigin = false

	for _, tc := range []struct {
		name   string
		public []byte
	}{
		{"an EK (a decryption key)", tpm2.Marshal(tpm2.RSAEKTemplate)},
		{"an unrestricted key, which signs any digest", tpm2.Marshal(*unrestricted)},
		{"a key that may leave the TPM", tpm2.Marshal(*movable)},
		{"a key made outside the TPM", tpm2.Marshal(*imported)},
		{"trailing bytes", append(ak.Public().Bytes(), 0)},
		{"a truncated area", ak.Public().Bytes()[:20]},
		{"nothing", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tpm.ParseAKPublic(tc.public); trustack.ErrorCode(err) != trustack.EINVALID {
				t.Errorf("ParseAKPublic: got %v, want an invalid error", err)
			}
		})
	}
}
