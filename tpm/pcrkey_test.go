package tpm_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"errors"
	"path/filepath"
	"testing"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/tpm"
)

// A key bound to the boot PCRs signs while they hold the values they had
// at its creation, and no longer once one of them is extended, as when
// the host boots another firmware or boot loader. swtpm lets locality 0
// extend PCRs 0 to 7, so the test changes PCR 7 (Secure Boot's) itself.
func TestPCRKeyUnusableAfterBootPCRChange(t *testing.T) {
	t.Parallel()
	s := startSwtpm(t)
	tp := s.open(t)
	key, err := tp.CreatePCRKey(tpm.BootPCRs)
	if err != nil {
		t.Fatalf("CreatePCRKey: %v", err)
	}
	digest := sha256.Sum256([]byte("the agent's credential"))
	sign := func() error {
		t.Helper()
		sig, err := tp.Sign(key, digest[:])
		if err != nil {
			return err
		}
		if !ecdsa.VerifyASN1(key.Public().(*ecdsa.PublicKey), digest[:], sig) {
			t.Fatalf("the signature does not verify with the key's public key")
		}
		return nil
	}
	if err := sign(); err != nil {
		t.Fatalf("Sign with the boot PCRs unchanged: %v", err)
	}

	// PCR 10 is not a boot PCR: runtime measurements leave the key usable.
	if err := tp.ExtendPCR(tpm.IMAPCR, map[crypto.Hash][]byte{crypto.SHA256: digest[:]}); err != nil {
		t.Fatal(err)
	}
	if err := sign(); err != nil {
		t.Fatalf("Sign after extending PCR 10: %v", err)
	}

	// The key survives a restart of the agent.
	path := filepath.Join(t.TempDir(), "credential-key.json")
	if err := key.Save(path); err != nil {
		t.Fatalf("Save: %v", err)
	}
	if key, err = tp.LoadPCRKey(path); err != nil {
		t.Fatalf("LoadPCRKey: %v", err)
	}
	if got := key.PCRs(); got.Hash != crypto.SHA256 || len(got.PCRs) != 8 {
		t.Errorf("loaded key's PCRs: got %v, want the 8 boot PCRs of SHA-256", got)
	}

	if err := tp.ExtendPCR(7, map[crypto.Hash][]byte{crypto.SHA256: digest[:]}); err != nil {
		t.Fatalf("ExtendPCR(7): %v", err)
	}
	err = sign()
	if !errors.Is(err, tpm.ErrPCRPolicy) || trustack.ErrorCode(err) != trustack.EFORBIDDEN {
		t.Fatalf("Sign after extending PCR 7: got %v, want %v (forbidden)", err, tpm.ErrPCRPolicy)
	}
	if _, err := tp.Signer(key).Sign(nil, digest[:], crypto.SHA256); !errors.Is(err, tpm.ErrPCRPolicy) {
		t.Errorf("Signer.Sign after extending PCR 7: got %v, want %v", err, tpm.ErrPCRPolicy)
	}

	// A reboot into the same boot state (here: none measured) restores
	// the PCRs, and the key.
	if err := tp.PowerCycle(); err != nil {
		t.Fatalf("PowerCycle: %v", err)
	}
	if err := sign(); err != nil {
		t.Errorf("Sign after a reboot into the same state: %v", err)
	}
}
