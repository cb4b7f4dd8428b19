package ima

import (
	"bytes"
	"crypto"
	"crypto/sha1"
	"crypto/sha256"
	"fmt"
)

// State is a checkpoint of a replay: the number of entries consumed and the
// value of PCR 10 they produce in each bank. The zero State is PCR 10 after
// a TPM reset, before the first entry. A verifier keeps the State of the
// last verified quote per host (and boot) and resumes from it.
type State struct {
	Entries int
	SHA1    [sha1.Size]byte
	SHA256  [sha256.Size]byte
}

// EntryError reports an entry that cannot be replayed: its absolute index
// in the list (counting the entries before the Replayer's State), its path,
// and why.
type EntryError struct {
	Index int
	Path  string
	Err   error
}

func (e *EntryError) Error() string {
	return fmt.Sprintf("ima: entry %d (%s): %v", e.Index, e.Path, e.Err)
}

func (e *EntryError) Unwrap() error { return e.Err }

// Replayer recomputes PCR 10 from a measurement list, entry by entry, in
// the SHA-1 and/or SHA-256 bank, as the kernel extends it (5.8 and later):
// PCR ← H(PCR ‖ H(template data)), or H(PCR ‖ ff…ff) for a violation. It
// checks each entry's logged template hash on the way. A Replayer is not
// safe for concurrent use.
type Replayer struct {
	state        State
	sha1, sha256 bool
	scratch1     [2 * sha1.Size]byte
	scratch256   [2 * sha256.Size]byte
}

// The digests a violation extends: all ones (ima_init_digests).
var (
	violation1   = [sha1.Size]byte(bytes.Repeat([]byte{0xff}, sha1.Size))
	violation256 = [sha256.Size]byte(bytes.Repeat([]byte{0xff}, sha256.Size))
)

// NewReplayer returns a Replayer that continues from s (the zero State for
// a list from its start) in the given banks, crypto.SHA1 and/or
// crypto.SHA256; none means both. A bank left out keeps its value in s
// unchanged and meaningless.
func NewReplayer(s State, banks ...crypto.Hash) (*Replayer, error) {
	r := &Replayer{state: s}
	if len(banks) == 0 {
		r.sha1, r.sha256 = true, true
	}
	for _, b := range banks {
		switch b {
		case crypto.SHA1:
			r.sha1 = true
		case crypto.SHA256:
			r.sha256 = true
		default:
			return nil, fmt.Errorf("ima: replay: bank %v is not supported", b)
		}
	}
	return r, nil
}

// State returns the current checkpoint.
func (r *Replayer) State() State { return r.state }

// PCR returns the current value of PCR 10 in bank h, or nil if the
// Replayer does not replay that bank.
func (r *Replayer) PCR(h crypto.Hash) []byte {
	switch {
	case h == crypto.SHA1 && r.sha1:
		return bytes.Clone(r.state.SHA1[:])
	case h == crypto.SHA256 && r.sha256:
		return bytes.Clone(r.state.SHA256[:])
	}
	return nil
}

// Extend replays one entry. It returns an *EntryError, and leaves the state
// unchanged, if the entry is for another PCR than 10 or its logged template
// hash does not match its data (wrapping ErrTemplateHash).
func (r *Replayer) Extend(e *Entry) error {
	if e.PCR != PCRIndex {
		return r.entryError(e, fmt.Errorf("extends PCR %d, not %d", e.PCR, PCRIndex))
	}
	var d1 [sha1.Size]byte
	var d256 [sha256.Size]byte
	if e.Violation() {
		d1, d256 = violation1, violation256
	} else {
		switch len(e.TemplateHash) {
		case sha1.Size:
			d1 = sha1.Sum(e.TemplateData)
			if !bytes.Equal(d1[:], e.TemplateHash) {
				return r.entryError(e, fmt.Errorf("%w: logged %x, data hashes to %x", ErrTemplateHash, e.TemplateHash, d1))
			}
			if r.sha256 {
				d256 = sha256.Sum256(e.TemplateData)
			}
		case sha256.Size:
			d256 = sha256.Sum256(e.TemplateData)
			if !bytes.Equal(d256[:], e.TemplateHash) {
				return r.entryError(e, fmt.Errorf("%w: logged %x, data hashes to %x", ErrTemplateHash, e.TemplateHash, d256))
			}
			if r.sha1 {
				d1 = sha1.Sum(e.TemplateData)
			}
		default:
			if err := e.VerifyTemplateHash(); err != nil {
				return r.entryError(e, err)
			}
			d1 = sha1.Sum(e.TemplateData)
			d256 = sha256.Sum256(e.TemplateData)
		}
	}
	if r.sha1 {
		copy(r.scratch1[:], r.state.SHA1[:])
		copy(r.scratch1[sha1.Size:], d1[:])
		r.state.SHA1 = sha1.Sum(r.scratch1[:])
	}
	if r.sha256 {
		copy(r.scratch256[:], r.state.SHA256[:])
		copy(r.scratch256[sha256.Size:], d256[:])
		r.state.SHA256 = sha256.Sum256(r.scratch256[:])
	}
	r.state.Entries++
	return nil
}

func (r *Replayer) entryError(e *Entry, err error) error {
	return &EntryError{Index: r.state.Entries, Path: e.Path, Err: err}
}

// ReplayTo finds how many of entries, the entries after the current state,
// a quoted value of PCR 10 in bank h covers: the smallest n such that
// replaying entries[:n] reproduces quoted (0 if the current state already
// does). The list may run ahead of the quote, since the kernel can add
// entries between the quote and the reading of the list. On success the
// Replayer's state is that after entries[:n], so the next attestation
// resumes there and sends entries[n:] again. On failure the state is
// unchanged and the error is an *EntryError (a malformed or altered entry
// met before any match) or wraps ErrNoMatch.
func (r *Replayer) ReplayTo(entries []Entry, h crypto.Hash, quoted []byte) (int, error) {
	var cur []byte
	switch {
	case h == crypto.SHA1 && r.sha1:
		cur = r.state.SHA1[:]
	case h == crypto.SHA256 && r.sha256:
		cur = r.state.SHA256[:]
	default:
		return 0, fmt.Errorf("ima: replay: bank %v is not replayed", h)
	}
	if len(quoted) != len(cur) {
		return 0, fmt.Errorf("ima: replay: quoted %v PCR is %d bytes, want %d", h, len(quoted), len(cur))
	}
	if bytes.Equal(cur, quoted) {
		return 0, nil
	}
	saved := r.state
	for i := range entries {
		if err := r.Extend(&entries[i]); err != nil {
			r.state = saved
			return 0, err
		}
		if bytes.Equal(cur, quoted) {
			return i + 1, nil
		}
	}
	end := bytes.Clone(cur)
	r.state = saved
	return 0, fmt.Errorf("%w: %v PCR %d quoted %x; entries %d to %d replay to %x",
		ErrNoMatch, h, PCRIndex, quoted, saved.Entries, saved.Entries+len(entries), end)
}
