package tpm

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"

	"github.com/google/go-tpm/tpm2"

	"github.com/trustack/trustack"
)

// keyFile is how a key made under the SRK is kept between runs: the
// public area and the private area, which the TPM encrypted with the
// SRK's seed, so that only the TPM that made the key can load it again.
type keyFile struct {
	// Kind says what the key is for: "ak" or "pcr-key".
	Kind string `json:"kind"`
	// Parent names the template of the parent, always "srk-ecc-p256"
	// (the TCG's ECC P-256 SRK template, under the owner hierarchy).
	Parent string `json:"parent"`
	// Public is the TPMT_PUBLIC, Private the TPM2B_PRIVATE's contents.
	Public  []byte `json:"public"`
	Private []byte `json:"private"`
	// PCRs is the selection of a PCR-bound key's policy.
	PCRs *PCRSelection `json:"pcrs,omitempty"`
}

const srkParent = "srk-ecc-p256"

// writeKeyFile writes a key file atomically, readable only by its owner.
func writeKeyFile(path string, kf keyFile) error {
	b, err := json.MarshalIndent(kf, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("tpm: save %s: %w", kf.Kind, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("tpm: save %s: %w", kf.Kind, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("tpm: save %s: %w", kf.Kind, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("tpm: save %s: %w", kf.Kind, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("tpm: save %s: %w", kf.Kind, err)
	}
	return nil
}

// readKeyFile reads a key file of a kind. Errors are not found for a
// missing file, invalid for a file that is not such a key.
func readKeyFile(path, kind string) (keyFile, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return keyFile{}, trustack.Errorf(trustack.ENOTFOUND, "tpm: no %s in %s", kind, path)
	}
	if err != nil {
		return keyFile{}, fmt.Errorf("tpm: read %s: %w", kind, err)
	}
	var kf keyFile
	if err := json.Unmarshal(b, &kf); err != nil {
		return keyFile{}, trustack.Errorf(trustack.EINVALID, "tpm: %s is not a key file: %v", path, err)
	}
	if kf.Kind != kind || kf.Parent != srkParent || len(kf.Public) == 0 || len(kf.Private) == 0 {
		return keyFile{}, trustack.Errorf(trustack.EINVALID, "tpm: %s holds no %s under the %s", path, kind, srkParent)
	}
	return kf, nil
}

// createSRK creates the storage root key, the parent of the AK and of
// PCR-bound keys, as a transient object that the caller flushes. It is
// derived from the owner hierarchy's seed, so it is the same key every
// time and needs no persistent handle, until the owner clears the TPM.
func (t *TPM) createSRK() (tpm2.TPMHandle, tpm2.TPM2BName, error) {
	rsp, err := tpm2.CreatePrimary{
		PrimaryHandle: tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(nil)},
		InPublic:      tpm2.New2B(tpm2.ECCSRKTemplate),
	}.Execute(t.tpm)
	if err != nil {
		return 0, tpm2.TPM2BName{}, unavailable("create the SRK", err)
	}
	return rsp.ObjectHandle, rsp.Name, nil
}

// createUnderSRK creates a key of a template under the SRK.
func (t *TPM) createUnderSRK(tmpl tpm2.TPMTPublic) (public []byte, private []byte, err error) {
	srk, srkName, err := t.createSRK()
	if err != nil {
		return nil, nil, err
	}
	defer t.flush(srk)
	rsp, err := tpm2.Create{
		ParentHandle: tpm2.AuthHandle{Handle: srk, Name: srkName, Auth: tpm2.PasswordAuth(nil)},
		InPublic:     tpm2.New2B(tmpl),
	}.Execute(t.tpm)
	if err != nil {
		return nil, nil, unavailable("create a key", err)
	}
	return rsp.OutPublic.Bytes(), rsp.OutPrivate.Buffer, nil
}

// load loads a key made under the SRK and returns its handle and name;
// the caller flushes it. The SRK is flushed at once, so that a key and an
// EK fit in swtpm's three object slots with room to spare. Errors are
// conflict when the TPM refuses the key: it was made by another TPM, or
// before the owner cleared this one.
func (t *TPM) load(public, private []byte) (tpm2.TPMHandle, tpm2.TPM2BName, error) {
	srk, srkName, err := t.createSRK()
	if err != nil {
		return 0, tpm2.TPM2BName{}, err
	}
	defer t.flush(srk)
	rsp, err := tpm2.Load{
		ParentHandle: tpm2.AuthHandle{Handle: srk, Name: srkName, Auth: tpm2.PasswordAuth(nil)},
		InPublic:     tpm2.BytesAs2B[tpm2.TPMTPublic](public),
		InPrivate:    tpm2.TPM2BPrivate{Buffer: private},
	}.Execute(t.tpm)
	if isTPMError(err) {
		return 0, tpm2.TPM2BName{}, trustack.Errorf(trustack.ECONFLICT, "tpm: the TPM refuses the key (another TPM's, or made before the TPM was cleared): %v", err)
	}
	if err != nil {
		return 0, tpm2.TPM2BName{}, unavailable("load a key", err)
	}
	return rsp.ObjectHandle, rsp.Name, nil
}

// publicKey returns the key of a public area, checking that an ECC point
// is on its curve.
func publicKey(pub *tpm2.TPMTPublic) (crypto.PublicKey, error) {
	switch pub.Type {
	case tpm2.TPMAlgRSA:
		parms, err := pub.Parameters.RSADetail()
		if err != nil {
			return nil, err
		}
		n, err := pub.Unique.RSA()
		if err != nil {
			return nil, err
		}
		e := int(parms.Exponent)
		if e == 0 {
			e = 65537 // the TPM's default exponent
		}
		if len(n.Buffer)*8 != int(parms.KeyBits) || parms.KeyBits < 2048 {
			return nil, fmt.Errorf("RSA modulus of %d bytes for a %d-bit key", len(n.Buffer), parms.KeyBits)
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(n.Buffer), E: e}, nil
	case tpm2.TPMAlgECC:
		parms, err := pub.Parameters.ECCDetail()
		if err != nil {
			return nil, err
		}
		point, err := pub.Unique.ECC()
		if err != nil {
			return nil, err
		}
		var curve elliptic.Curve
		switch parms.CurveID {
		case tpm2.TPMECCNistP256:
			curve = elliptic.P256()
		case tpm2.TPMECCNistP384:
			curve = elliptic.P384()
		case tpm2.TPMECCNistP521:
			curve = elliptic.P521()
		default:
			return nil, fmt.Errorf("unsupported curve 0x%x", uint16(parms.CurveID))
		}
		size := (curve.Params().BitSize + 7) / 8
		if len(point.X.Buffer) > size || len(point.Y.Buffer) > size {
			return nil, fmt.Errorf("ECC point coordinates longer than the curve's %d bytes", size)
		}
		// The TPM's coordinates are unsigned integers, which may be
		// shorter than the curve's size: pad them.
		raw := make([]byte, 1+2*size)
		raw[0] = 4 // uncompressed
		copy(raw[1+size-len(point.X.Buffer):1+size], point.X.Buffer)
		copy(raw[1+2*size-len(point.Y.Buffer):], point.Y.Buffer)
		return ecdsa.ParseUncompressedPublicKey(curve, raw)
	}
	return nil, fmt.Errorf("unsupported key type 0x%x", uint16(pub.Type))
}
