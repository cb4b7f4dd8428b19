package ima

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"fmt"
	"testing"
)

// benchList returns n ima-ng entries like a host's: SHA-256 file digests,
// library and binary paths.
func benchList(tb testing.TB, n int) []Entry {
	tb.Helper()
	entries := make([]Entry, 0, n)
	for i := range n {
		d := sha256.Sum256(fmt.Appendf(nil, "file %d", i))
		entries = append(entries, mustNG(tb, "sha256", d[:], fmt.Sprintf("/usr/lib/x86_64-linux-gnu/libexample-%d.so.1.2.3", i)))
	}
	return entries
}

// BenchmarkIncrementalReplay is the verifier's share of one attestation:
// 10 new entries on top of a 5,000-entry list, resumed from the state of
// the last verified quote, replayed onto the quoted SHA-256 PCR 10 (the
// logged SHA-1 template hashes checked on the way). "binary" includes
// decoding the 10 entries as the agent sends them.
func BenchmarkIncrementalReplay(b *testing.B) {
	const old, fresh = 5000, 10
	entries := benchList(b, old+fresh)
	r := mustReplayer(b, State{}, crypto.SHA256)
	for i := range entries[:old] {
		if err := r.Extend(&entries[i]); err != nil {
			b.Fatal(err)
		}
	}
	saved := r.State()
	for i := range entries[old:] {
		if err := r.Extend(&entries[old+i]); err != nil {
			b.Fatal(err)
		}
	}
	quoted := r.PCR(crypto.SHA256)
	var wire bytes.Buffer
	if err := WriteBinary(&wire, entries[old:]); err != nil {
		b.Fatal(err)
	}

	b.Run("entries", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r, err := NewReplayer(saved, crypto.SHA256)
			if err != nil {
				b.Fatal(err)
			}
			n, err := r.ReplayTo(entries[old:], crypto.SHA256, quoted)
			if err != nil || n != fresh {
				b.Fatalf("got %d, %v", n, err)
			}
		}
	})
	b.Run("binary", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(wire.Len()))
		for b.Loop() {
			fresh2, err := ParseBinary(wire.Bytes())
			if err != nil {
				b.Fatal(err)
			}
			r, err := NewReplayer(saved, crypto.SHA256)
			if err != nil {
				b.Fatal(err)
			}
			n, err := r.ReplayTo(fresh2, crypto.SHA256, quoted)
			if err != nil || n != fresh {
				b.Fatalf("got %d, %v", n, err)
			}
		}
	})
}

// BenchmarkParse reads a whole 5,000-entry list, as after a reboot.
func BenchmarkParse(b *testing.B) {
	entries := benchList(b, 5000)
	for _, f := range []Format{Binary, ASCII} {
		buf := encode(b, f, entries)
		b.Run(f.String(), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(buf.Len()))
			for b.Loop() {
				got, err := ReadAll(bytes.NewReader(buf.Bytes()), f)
				if err != nil || len(got) != len(entries) {
					b.Fatalf("got %d, %v", len(got), err)
				}
			}
		})
	}
}

// BenchmarkFullReplay replays a whole 5,000-entry list in both banks.
func BenchmarkFullReplay(b *testing.B) {
	entries := benchList(b, 5000)
	b.ReportAllocs()
	for b.Loop() {
		r := mustReplayer(b, State{})
		for i := range entries {
			if err := r.Extend(&entries[i]); err != nil {
				b.Fatal(err)
			}
		}
	}
}
