package attest

import (
	"context"
	"encoding/hex"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/ima"
	"github.com/trustack/trustack/wire"
)

// White-lists are kept by the verifier; a change takes effect at each
// host's next attestation, which checks the host's whole log against it
// again (a security patch is a white-list update).

var whitelistName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// digestSizes are the file digest algorithms white-lists accept, with
// their sizes in bytes.
var digestSizes = map[string]int{"sha1": 20, "sha256": 32, "sha384": 48, "sha512": 64}

// CheckWhitelist returns why wl is not a valid white-list (EINVALID), or
// nil: a name of letters, digits, dots, dashes and underscores; absolute
// paths; digests written ALGO:HEX; exclude patterns path.Match accepts.
func CheckWhitelist(wl *trustack.Whitelist) error {
	if !whitelistName.MatchString(wl.Name) {
		return trustack.Errorf(trustack.EINVALID, "A white-list name is 1 to 64 letters, digits, dots, dashes and underscores, starting with a letter or digit, not %q.", wl.Name)
	}
	for p, digests := range wl.Files {
		if !strings.HasPrefix(p, "/") {
			return trustack.Errorf(trustack.EINVALID, "White-list %s: %q is not an absolute path.", wl.Name, p)
		}
		if len(digests) == 0 {
			return trustack.Errorf(trustack.EINVALID, "White-list %s: %s has no allowed digest.", wl.Name, p)
		}
		for _, d := range digests {
			if err := checkDigest(d); err != nil {
				return trustack.Errorf(trustack.EINVALID, "White-list %s: %s: %v", wl.Name, p, err)
			}
		}
	}
	for _, pat := range wl.Exclude {
		if _, err := path.Match(strings.TrimSuffix(pat, "/**"), ""); err != nil || !strings.HasPrefix(pat, "/") {
			return trustack.Errorf(trustack.EINVALID, "White-list %s: exclude pattern %q is not an absolute path pattern.", wl.Name, pat)
		}
	}
	if wl.BootAggregate != "" {
		if err := checkDigest(wl.BootAggregate); err != nil {
			return trustack.Errorf(trustack.EINVALID, "White-list %s: boot aggregate: %v", wl.Name, err)
		}
	}
	return nil
}

func checkDigest(d string) error {
	algo, hexDigest, ok := strings.Cut(d, ":")
	size, known := digestSizes[algo]
	b, err := hex.DecodeString(hexDigest)
	if !ok || !known || err != nil || len(b) != size || hexDigest != strings.ToLower(hexDigest) {
		return fmt.Errorf("%q is not a digest written ALGO:HEX (sha1, sha256, sha384 or sha512, lower-case hex of its size)", d)
	}
	return nil
}

// CreateWhitelist adds a white-list; EINVALID, or ECONFLICT for a name in
// use.
func (s *Service) CreateWhitelist(ctx context.Context, wl *trustack.Whitelist) error {
	if err := CheckWhitelist(wl); err != nil {
		return err
	}
	if err := s.store.CreateWhitelist(ctx, wl); err != nil {
		return err
	}
	s.RequirementsChanged()
	return nil
}

// PutWhitelist adds a white-list or replaces the one of its name (an
// import); EINVALID.
func (s *Service) PutWhitelist(ctx context.Context, wl *trustack.Whitelist) error {
	if err := CheckWhitelist(wl); err != nil {
		return err
	}
	if err := s.store.PutWhitelist(ctx, wl); err != nil {
		return err
	}
	s.RequirementsChanged()
	return nil
}

// Whitelist returns a white-list; ENOTFOUND.
func (s *Service) Whitelist(ctx context.Context, name string) (*trustack.Whitelist, error) {
	return s.store.Whitelist(ctx, name)
}

// Whitelists returns every white-list, by name.
func (s *Service) Whitelists(ctx context.Context) ([]*trustack.Whitelist, error) {
	return s.store.Whitelists(ctx)
}

// DeleteWhitelist removes a white-list: hosts held to it are no longer
// trusted against it from their next attestation. ENOTFOUND.
func (s *Service) DeleteWhitelist(ctx context.Context, name string) error {
	if err := s.store.DeleteWhitelist(ctx, name); err != nil {
		return err
	}
	s.RequirementsChanged()
	return nil
}

// WhitelistFromHost makes a white-list named name of what a known-good
// host runs: it asks the host for a quote and its whole measurement log,
// checks them (signature, nonce, PCRs, the log replaying onto PCR 10;
// no white-list), and allows every file the log measured, with the
// digests it measured, and the host's boot aggregate. ENOTFOUND for a
// host that is not registered, EUNAVAILABLE if it does not answer,
// ECONFLICT if its evidence does not verify or the name is in use.
func (s *Service) WhitelistFromHost(ctx context.Context, name, host string) (*trustack.Whitelist, error) {
	wl := &trustack.Whitelist{Name: name, Files: map[string][]string{}}
	if err := CheckWhitelist(wl); err != nil {
		return nil, err
	}
	rec, err := s.store.HostAttestation(ctx, host)
	if err != nil {
		return nil, err
	}
	if rec.CID == "" || rec.Revoked {
		return nil, trustack.Errorf(trustack.ECONFLICT, "Host %s is not registered: a white-list is taken from a registered, known-good host.", host)
	}
	st, _, err := s.state(rec)
	if err != nil {
		return nil, err
	}
	// The whole log, from a state that has verified nothing; the host's
	// own checkpoint is not touched.
	st = HostState{AK: st.AK}
	var req wire.EvidenceRequest
	rep, err := s.requestEvidence(ctx, host, &req)
	if err != nil {
		return nil, trustack.Errorf(trustack.EUNAVAILABLE, "Host %s did not answer: %s", host, trustack.ErrorMessage(err))
	}
	v, next := Verify(rep.Evidence, req.Nonce, st, nil)
	if v.State != trustack.VerdictTrusted {
		return nil, trustack.Errorf(trustack.ECONFLICT, "The evidence of host %s does not verify, so it cannot be a known-good host: %s", host, strings.Join(v.Reasons, " "))
	}
	entries, err := ima.ParseBinary(rep.Evidence.Log)
	if err != nil {
		return nil, err // Verify parsed it already
	}
	covered := entries[:next.Replay.Entries-rep.Evidence.FromEntry]
	for i, e := range covered {
		if i == 0 {
			wl.BootAggregate = next.BootAggregate
			continue
		}
		if e.Violation() {
			continue
		}
		d := string(appendDigest(nil, &e))
		if !slices.Contains(wl.Files[e.Path], d) {
			wl.Files[e.Path] = append(wl.Files[e.Path], d)
		}
	}
	if err := s.store.CreateWhitelist(ctx, wl); err != nil {
		return nil, err
	}
	return wl, nil
}
