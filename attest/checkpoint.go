package attest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/ima"
	"github.com/trustack/trustack/tpm"
)

// checkpoint is a host's HostState as the store keeps it (the AK comes
// from the record), with the white-list its entries were verified
// against.
type checkpoint struct {
	Attested      bool          `json:"attested"`
	Replay        ima.State     `json:"replay"`
	Clock         tpm.ClockInfo `json:"clock"`
	BootAggregate string        `json:"boot_aggregate,omitempty"`
	// Boot is the agent's boot the verified entries belong to.
	Boot uint32 `json:"boot"`
	// Whitelist is whitelistFingerprint of the white-list the verified
	// entries were checked against.
	Whitelist string `json:"whitelist,omitempty"`
}

func encodeCheckpoint(st HostState, boot uint32, whitelist string) []byte {
	b, err := json.Marshal(checkpoint{Attested: st.Attested, Replay: st.Replay, Clock: st.Clock, BootAggregate: st.BootAggregate, Boot: boot, Whitelist: whitelist})
	if err != nil {
		panic(err) // plain data: cannot fail
	}
	return b
}

// state returns the host's HostState from its record, its AK parsed once
// per registration.
func (s *Service) state(rec *trustack.HostAttestation) (HostState, checkpoint, error) {
	var cp checkpoint
	if len(rec.Checkpoint) > 0 {
		if err := json.Unmarshal(rec.Checkpoint, &cp); err != nil {
			return HostState{}, cp, fmt.Errorf("host %s: checkpoint: %w", rec.Host, err)
		}
	}
	s.mu.Lock()
	ak := s.aks[rec.CID]
	s.mu.Unlock()
	if ak == nil {
		var err error
		if ak, err = tpm.ParseAKPublic(rec.AKPublic); err != nil {
			return HostState{}, cp, fmt.Errorf("host %s: attestation key: %w", rec.Host, err)
		}
		s.mu.Lock()
		s.aks[rec.CID] = ak
		s.mu.Unlock()
	}
	return HostState{AK: ak, Attested: cp.Attested, Replay: cp.Replay, Clock: cp.Clock, BootAggregate: cp.BootAggregate}, cp, nil
}

// whitelistFingerprint identifies a white-list's name and content, so
// that entries verified against it are verified again when it changes:
// a digest taken out of it must not stay trusted. "" for none.
func whitelistFingerprint(wl *trustack.Whitelist) string {
	if wl == nil {
		return ""
	}
	h := sha256.New()
	fmt.Fprintf(h, "%q %q %q\n", wl.Name, wl.BootAggregate, wl.Exclude)
	for _, p := range slices.Sorted(maps.Keys(wl.Files)) {
		fmt.Fprintf(h, "%q %q\n", p, wl.Files[p])
	}
	return wl.Name + "@" + hex.EncodeToString(h.Sum(nil)[:8])
}
