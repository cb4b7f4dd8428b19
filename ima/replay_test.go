package ima

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"testing"
)

// testList returns a list as a host would log it (boot_aggregate, files,
// a signed file, a violation), with the template data of each entry built
// by hand.
func testList(tb testing.TB) (entries []Entry, data [][]byte) {
	tb.Helper()
	add := func(e Entry, err error, want []byte) {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
		if !bytes.Equal(e.TemplateData, want) {
			tb.Fatalf("%s: template data %x, want %x", e.Path, e.TemplateData, want)
		}
		entries = append(entries, e)
		data = append(data, want)
	}
	agg := bytes.Repeat([]byte{0xb0}, 32)
	e, err := NewNG("sha256", agg, "boot_aggregate")
	add(e, err, lenPrefixed(dng("sha256", agg), nng("boot_aggregate")))
	for i := range 6 {
		d := bytes.Repeat([]byte{byte(i)}, 32)
		p := fmt.Sprintf("/usr/lib/x86_64-linux-gnu/lib%d.so", i)
		e, err := NewNG("sha256", d, p)
		add(e, err, lenPrefixed(dng("sha256", d), nng(p)))
	}
	sig := []byte{3, 2, 4, 0xaa, 0xbb}
	d := bytes.Repeat([]byte{0x51}, 32)
	e, err = NewSig("sha256", d, "/usr/bin/qemu-system-x86_64", sig)
	add(e, err, lenPrefixed(dng("sha256", d), nng("/usr/bin/qemu-system-x86_64"), sig))
	e, err = NewViolation("sha256", "/var/lib/trustack/state.db")
	add(e, err, lenPrefixed(dng("sha256", make([]byte, 32)), nng("/var/lib/trustack/state.db")))
	for i := range 3 {
		d := bytes.Repeat([]byte{0xc0 + byte(i)}, 32)
		p := fmt.Sprintf("/etc/trustack/%d.yaml", i)
		e, err := NewNG("sha256", d, p)
		add(e, err, lenPrefixed(dng("sha256", d), nng(p)))
	}
	return entries, data
}

// pcrAfter computes PCR 10 of bank h after the first n entries, from the
// hand-built template data: the kernel's rule, independently of Replayer.
func pcrAfter(h crypto.Hash, entries []Entry, data [][]byte, n int) []byte {
	pcr := make([]byte, h.Size())
	for i := range n {
		d := hashOf(h, data[i])
		if entries[i].Violation() {
			d = bytes.Repeat([]byte{0xff}, h.Size())
		}
		pcr = extend(h, pcr, d)
	}
	return pcr
}

func mustReplayer(tb testing.TB, s State, banks ...crypto.Hash) *Replayer {
	tb.Helper()
	r, err := NewReplayer(s, banks...)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

func TestReplayMatchesIndependentPCR(t *testing.T) {
	entries, data := testList(t)
	if !entries[8].Violation() {
		t.Fatal("entry 8 should be the violation")
	}
	r := mustReplayer(t, State{})
	for i := range entries {
		if err := r.Extend(&entries[i]); err != nil {
			t.Fatal(err)
		}
		for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256} {
			if got, want := r.PCR(h), pcrAfter(h, entries, data, i+1); !bytes.Equal(got, want) {
				t.Fatalf("after entry %d, %v PCR 10: got %x, want %x", i, h, got, want)
			}
		}
	}
	if got := r.State().Entries; got != len(entries) {
		t.Errorf("consumed %d entries, want %d", got, len(entries))
	}

	t.Run("kernel samples", func(t *testing.T) {
		samples := kernelSamples(t)
		var data [][]byte
		for _, e := range samples {
			data = append(data, e.TemplateData)
		}
		r := mustReplayer(t, State{}, crypto.SHA256)
		n, err := r.ReplayTo(samples, crypto.SHA256, pcrAfter(crypto.SHA256, samples, data, len(samples)))
		if err != nil || n != len(samples) {
			t.Errorf("got %d, %v; want %d", n, err, len(samples))
		}
	})
}

func TestReplayToIncrementally(t *testing.T) {
	entries, data := testList(t)
	for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256} {
		t.Run(h.String(), func(t *testing.T) {
			// First attestation: the quote covers 4 entries, the list
			// sent has 6 (it ran ahead).
			r := mustReplayer(t, State{}, h)
			n, err := r.ReplayTo(entries[:6], h, pcrAfter(h, entries, data, 4))
			if err != nil || n != 4 {
				t.Fatalf("first feed: got %d, %v; want 4", n, err)
			}
			saved := r.State()
			if saved.Entries != 4 {
				t.Fatalf("state after the first feed has %d entries, want 4", saved.Entries)
			}

			// Second attestation, in a new Replayer from the saved
			// state: the entries since the last verified one.
			r = mustReplayer(t, saved, h)
			n, err = r.ReplayTo(entries[saved.Entries:], h, pcrAfter(h, entries, data, len(entries)))
			if err != nil || n != len(entries)-4 {
				t.Fatalf("second feed: got %d, %v; want %d", n, err, len(entries)-4)
			}
			full := mustReplayer(t, State{}, h)
			for i := range entries {
				if err := full.Extend(&entries[i]); err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(r.PCR(h), full.PCR(h)) || r.State().Entries != len(entries) {
				t.Errorf("incremental replay ends at %x after %d entries, full replay at %x after %d", r.PCR(h), r.State().Entries, full.PCR(h), len(entries))
			}

			// Third attestation, nothing new measured: the quote is
			// the current state.
			n, err = r.ReplayTo(nil, h, pcrAfter(h, entries, data, len(entries)))
			if err != nil || n != 0 {
				t.Errorf("no new entries: got %d, %v; want 0, nil", n, err)
			}
		})
	}
}

func TestReplayToDetects(t *testing.T) {
	entries, data := testList(t)
	quoted := pcrAfter(crypto.SHA256, entries, data, len(entries))
	clone := func() []Entry {
		c := make([]Entry, len(entries))
		for i, e := range entries {
			e.TemplateData = bytes.Clone(e.TemplateData)
			e.TemplateHash = bytes.Clone(e.TemplateHash)
			c[i] = e
		}
		return c
	}
	rehash := func(e *Entry) {
		s, _ := TemplateDigest(e, crypto.SHA1)
		e.TemplateHash = s
	}
	tests := []struct {
		name      string
		list      func() []Entry
		wantErr   error
		wantIndex int // for an *EntryError
	}{
		{"altered entry, logged hash left as it was", func() []Entry {
			l := clone()
			l[3].TemplateData[10] ^= 1
			return l
		}, ErrTemplateHash, 3},
		{"altered entry, logged hash recomputed", func() []Entry {
			l := clone()
			l[3].TemplateData[10] ^= 1
			rehash(&l[3])
			return l
		}, ErrNoMatch, 0},
		{"missing entry", func() []Entry {
			l := clone()
			return append(l[:5], l[6:]...)
		}, ErrNoMatch, 0},
		{"entries swapped", func() []Entry {
			l := clone()
			l[4], l[5] = l[5], l[4]
			return l
		}, ErrNoMatch, 0},
		{"entry added", func() []Entry {
			l := clone()
			return append(l[:2], append([]Entry{mustNG(t, "sha256", make([]byte, 32), "/tmp/x")}, l[2:]...)...)
		}, ErrNoMatch, 0},
		{"entry passed off as a violation", func() []Entry {
			l := clone()
			l[2].TemplateHash = make([]byte, 20)
			return l
		}, ErrNoMatch, 0},
		{"violation passed off as a measurement", func() []Entry {
			l := clone()
			rehash(&l[8])
			return l
		}, ErrNoMatch, 0},
		{"entry for another PCR", func() []Entry {
			l := clone()
			l[1].PCR = 11
			return l
		}, nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustReplayer(t, State{})
			before := r.State()
			n, err := r.ReplayTo(tt.list(), crypto.SHA256, quoted)
			if err == nil {
				t.Fatalf("got %d entries covered, want an error", n)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("got %v, want %v", err, tt.wantErr)
			}
			var ee *EntryError
			if tt.wantErr != ErrNoMatch {
				if !errors.As(err, &ee) || ee.Index != tt.wantIndex {
					t.Errorf("got %v, want an *EntryError for entry %d", err, tt.wantIndex)
				}
			}
			if r.State() != before {
				t.Errorf("a failed replay changed the state to %+v", r.State())
			}
		})
	}
}

func TestReplayerBanks(t *testing.T) {
	entries, data := testList(t)
	r := mustReplayer(t, State{}, crypto.SHA1)
	if r.PCR(crypto.SHA256) != nil {
		t.Error("PCR of a bank not replayed: got a value, want nil")
	}
	if _, err := r.ReplayTo(entries, crypto.SHA256, make([]byte, 32)); err == nil {
		t.Error("ReplayTo in a bank not replayed: got no error")
	}
	if _, err := r.ReplayTo(entries, crypto.SHA1, make([]byte, 32)); err == nil {
		t.Error("ReplayTo with a 32-byte SHA-1 quote: got no error")
	}
	n, err := r.ReplayTo(entries, crypto.SHA1, pcrAfter(crypto.SHA1, entries, data, len(entries)))
	if err != nil || n != len(entries) {
		t.Errorf("SHA-1 bank: got %d, %v; want %d", n, err, len(entries))
	}
	if _, err := NewReplayer(State{}, crypto.SHA512); err == nil {
		t.Error("NewReplayer with SHA-512: got no error")
	}
}
