package ima

import (
	"bytes"
	"crypto"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
)

// binaryEntry builds one entry of binary_runtime_measurements by hand.
func binaryEntry(pcr uint32, hash []byte, name string, data []byte) []byte {
	var b []byte
	b = binary.LittleEndian.AppendUint32(b, pcr)
	b = append(b, hash...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(name)))
	b = append(b, name...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(data)))
	return append(b, data...)
}

// TestWriteASCIIReproducesKernelBytes: what the kernel wrote, parsed and
// written again, is the same bytes (trailing space of an empty signature
// included).
func TestWriteASCIIReproducesKernelBytes(t *testing.T) {
	want, err := os.ReadFile("testdata/kernel_ascii_runtime_measurements")
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	if err := WriteASCII(&got, kernelSamples(t)); err != nil {
		t.Fatal(err)
	}
	if got.String() != string(want) {
		t.Errorf("got\n%s\nwant\n%s", got.String(), want)
	}
}

// TestASCIIAndBinaryAgree: the same list in both formats gives the same
// entries, and the binary list has the kernel's layout.
func TestASCIIAndBinaryAgree(t *testing.T) {
	samples := kernelSamples(t)
	var bin bytes.Buffer
	if err := WriteBinary(&bin, samples); err != nil {
		t.Fatal(err)
	}
	got, err := ParseBinary(bin.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, samples) {
		t.Errorf("binary round trip differs:\ngot  %+v\nwant %+v", got, samples)
	}

	// The first entry, by hand: pcr, SHA-1, name length, name, data
	// length, data.
	first := binaryEntry(10, samples[0].TemplateHash, "ima-ng",
		lenPrefixed(dng("sha1", unhex(t, "ac7dd11bf0e3bec9a7eb2c01e495072962fb9dfa")), nng("boot_aggregate")))
	if !bytes.HasPrefix(bin.Bytes(), first) {
		t.Errorf("binary list starts\n%x\nwant\n%x", bin.Bytes()[:len(first)], first)
	}

	// The legacy ima entry, by hand: no data length, the digest without a
	// length, the name with a length and without its NUL.
	var legacy []byte
	legacy = binary.LittleEndian.AppendUint32(legacy, 10)
	legacy = append(legacy, unhex(t, "d7026dc672344d3ee372217bdbc7395947788671")...)
	legacy = binary.LittleEndian.AppendUint32(legacy, 3)
	legacy = append(legacy, "ima"...)
	legacy = append(legacy, unhex(t, "6f66d1d8e2fffcc12dfcb78c04b81fe5b8bbae4e")...)
	legacy = binary.LittleEndian.AppendUint32(legacy, uint32(len("/usr/bin/kmod")))
	legacy = append(legacy, "/usr/bin/kmod"...)
	if !bytes.HasSuffix(bin.Bytes(), legacy) {
		t.Errorf("binary list ends\n%x\nwant\n%x", bin.Bytes()[bin.Len()-len(legacy):], legacy)
	}
}

func TestReaderDetails(t *testing.T) {
	e := mustNG(t, "sha256", bytes.Repeat([]byte{1}, 32), "/usr/bin/bash")
	e.PCR = 9
	line, err := e.AppendASCII(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("PCR below 10 is printed with %2d", func(t *testing.T) {
		if !strings.HasPrefix(string(line), " 9 ") {
			t.Errorf("got %q, want a leading space", line)
		}
		got, err := ParseASCII(line)
		if err != nil || len(got) != 1 || got[0].PCR != 9 {
			t.Fatalf("got %+v, %v; want one entry for PCR 9", got, err)
		}
	})
	t.Run("last line without newline", func(t *testing.T) {
		input := append(bytes.Clone(line), bytes.TrimSuffix(line, []byte("\n"))...)
		r := NewASCIIReader(bytes.NewReader(input))
		got, err := ReadAll(bytes.NewReader(input), ASCII)
		if err != nil || len(got) != 2 {
			t.Fatalf("got %d entries, %v; want 2", len(got), err)
		}
		for range 2 {
			if _, err := r.Next(); err != nil {
				t.Fatal(err)
			}
		}
		if r.Offset() != int64(len(input)) {
			t.Errorf("offset %d, want %d", r.Offset(), len(input))
		}
	})
	t.Run("ima-sig line whose trailing space was trimmed", func(t *testing.T) {
		got, err := ParseASCII([]byte("10 5426cf3031a43f5bfca183d79950698a95a728f6 ima-sig sha256:f1125b940480d20ad841d26d5ea253edc0704b5ec1548c891edf212cb1a9365e /lib/modules/5.4.48-openpower1/kernel/drivers/usb/common/usb-common.ko\n"))
		if err != nil {
			t.Fatal(err)
		}
		if err := got[0].VerifyTemplateHash(); err != nil {
			t.Error(err)
		}
	})
	t.Run("per-bank SHA-256 list of Linux 6.10", func(t *testing.T) {
		e256 := e
		e256.PCR = 10
		sum, _ := TemplateDigest(&e, crypto.SHA256)
		e256.TemplateHash = sum
		for _, f := range []Format{ASCII, Binary} {
			buf := encode(t, f, []Entry{e256})
			if _, err := NewReader(bytes.NewReader(buf.Bytes()), f).Next(); err == nil {
				t.Errorf("%v: a SHA-256 list read as SHA-1: got no error", f)
			}
			r := NewReader(bytes.NewReader(buf.Bytes()), f)
			r.LogHash = crypto.SHA256
			got, err := r.Next()
			if err != nil {
				t.Fatalf("%v: %v", f, err)
			}
			if err := got.VerifyTemplateHash(); err != nil {
				t.Errorf("%v: %v", f, err)
			}
		}
	})
}

func TestReaderStreams(t *testing.T) {
	var entries []Entry
	for i := range 5000 {
		entries = append(entries, mustNG(t, "sha256", bytes.Repeat([]byte{byte(i)}, 32), fmt.Sprintf("/usr/lib/lib%d.so", i)))
	}
	for _, f := range []Format{ASCII, Binary} {
		buf := encode(t, f, entries)
		size := int64(buf.Len())
		for name, r := range map[string]io.Reader{
			"one byte at a time": iotest.OneByteReader(bytes.NewReader(buf.Bytes())),
			"half reads":         iotest.HalfReader(bytes.NewReader(buf.Bytes())),
		} {
			t.Run(f.String()+" "+name, func(t *testing.T) {
				rd := NewReader(r, f)
				n := 0
				for {
					e, err := rd.Next()
					if err == io.EOF {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					if e.Path != entries[n].Path {
						t.Fatalf("entry %d: got %s, want %s", n, e.Path, entries[n].Path)
					}
					n++
				}
				if n != len(entries) || rd.Index() != n || rd.Offset() != size {
					t.Errorf("got %d entries (Index %d), offset %d; want %d, offset %d", n, rd.Index(), rd.Offset(), len(entries), size)
				}
			})
		}
	}
}

func TestParseErrors(t *testing.T) {
	good := mustNG(t, "sha256", bytes.Repeat([]byte{7}, 32), "/usr/bin/bash")
	goodBin, err := good.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	goodASCII, err := good.AppendASCII(nil)
	if err != nil {
		t.Fatal(err)
	}
	hash := good.TemplateHash
	le := func(n uint32) []byte { return binary.LittleEndian.AppendUint32(nil, n) }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

	binTests := []struct {
		name  string
		input []byte
		index int
		want  string
	}{
		{"truncated header", goodBin[:10], 0, "unexpected EOF"},
		{"truncated second entry", cat(goodBin, goodBin[:30]), 1, "unexpected EOF"},
		{"empty template name", cat(le(10), hash, le(0)), 0, "template name length 0"},
		{"huge template name", cat(le(10), hash, le(1<<31)), 0, "template name length 2147483648"},
		{"huge template data", cat(le(10), hash, le(6), []byte("ima-ng"), le(0xffffffff)), 0, "exceeds 1048576"},
		{"data shorter than its length", cat(le(10), hash, le(6), []byte("ima-ng"), le(1000), []byte("abc")), 0, "unexpected EOF"},
		{"unknown template", binaryEntry(10, hash, "ima-evil", nil), 0, "unsupported template"},
		{"unknown field of a custom template", binaryEntry(10, hash, "d-ng|iuid", nil), 0, "unsupported template"},
		{"PCR beyond int32", binaryEntry(1<<31, hash, "ima-ng", good.TemplateData), 0, "bad PCR"},
		{"d-ng without algo prefix", binaryEntry(10, hash, "ima-ng", lenPrefixed([]byte("abc"), nng("/x"))), 0, "prefix"},
		{"d-ng with an empty algo", binaryEntry(10, hash, "ima-ng", lenPrefixed([]byte(":\x00abc"), nng("/x"))), 0, "prefix"},
		{"algo with a space", binaryEntry(10, hash, "ima-ng", lenPrefixed([]byte("sha 256:\x00abc"), nng("/x"))), 0, "algorithm"},
		{"name without NUL", binaryEntry(10, hash, "ima-ng", lenPrefixed(dng("sha1", nil), []byte("/x"))), 0, "NUL-terminated"},
		{"name with inner NUL", binaryEntry(10, hash, "ima-ng", lenPrefixed(dng("sha1", nil), []byte("/x\x00y\x00"))), 0, "contains a NUL"},
		{"field longer than the data", binaryEntry(10, hash, "ima-ng", cat(le(100), []byte("sha1:\x00"))), 0, "exceeds"},
		{"missing field", binaryEntry(10, hash, "ima-ng", lenPrefixed(dng("sha1", nil))), 0, "want a 4-byte length"},
		{"bytes after the last field", binaryEntry(10, hash, "ima-ng", cat(good.TemplateData, []byte{1})), 0, "after the last field"},
		{"legacy name too long", cat(le(10), hash, le(3), []byte("ima"), make([]byte, 20), le(256)), 0, "name length 256"},
	}
	for _, tt := range binTests {
		t.Run("binary "+tt.name, func(t *testing.T) {
			entries, err := ParseBinary(tt.input)
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("got %v, want a *ParseError", err)
			}
			if pe.Index != tt.index || len(entries) != tt.index {
				t.Errorf("error at entry %d after %d entries, want %d", pe.Index, len(entries), tt.index)
			}
			if want := int64(tt.index * len(goodBin)); pe.Offset != want {
				t.Errorf("offset %d, want %d", pe.Offset, want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %q, want it to mention %q", err, tt.want)
			}
		})
	}

	asciiTests := []struct {
		name  string
		input string
		index int
		want  string
	}{
		{"empty line", "\n", 0, "columns"},
		{"too few columns", "10 abc ima-ng\n", 0, "columns"},
		{"bad PCR", "1x " + string(goodASCII[3:]), 0, "bad PCR"},
		{"negative PCR", "-1 " + string(goodASCII[3:]), 0, "bad PCR"},
		{"short template hash", "10 abcd ima-ng sha1:00 /x\n", 0, "hex digits"},
		{"non-hex template hash", "10 " + strings.Repeat("zz", 20) + " ima-ng sha1:00 /x\n", 0, "template hash"},
		{"unknown template", "10 " + strings.Repeat("00", 20) + " ima-evil sha1:00 /x\n", 0, "unsupported template"},
		{"digest without algo", "10 " + strings.Repeat("00", 20) + " ima-ng 00 /x\n", 0, "prefix"},
		{"bad digest hex", "10 " + strings.Repeat("00", 20) + " ima-ng sha1:0g /x\n", 0, "digest"},
		{"extra field", "10 " + strings.Repeat("00", 20) + " ima-ng sha1:00 /x y\n", 0, "fields"},
		{"missing name", "10 " + strings.Repeat("00", 20) + " ima-ng sha1:00\n", 0, "fields"},
		{"NUL in line", "10 " + strings.Repeat("00", 20) + " ima-ng sha1:00 /x\x00\n", 0, "NUL"},
		{"bad second line", string(goodASCII) + "garbage\n", 1, "columns"},
		{"bad signature hex", "10 " + strings.Repeat("00", 20) + " ima-sig sha1:00 /x 0\n", 0, "field 2"},
		{"legacy digest too short", "10 " + strings.Repeat("00", 20) + " ima 0011 /x\n", 0, "digest is 2 bytes"},
		{"overlong line", strings.Repeat("a", maxASCIILine+1), 0, "longer than"},
	}
	for _, tt := range asciiTests {
		t.Run("ascii "+tt.name, func(t *testing.T) {
			entries, err := ParseASCII([]byte(tt.input))
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("got %v, want a *ParseError", err)
			}
			if pe.Index != tt.index || pe.Line != tt.index+1 || len(entries) != tt.index {
				t.Errorf("error at entry %d line %d after %d entries, want entry %d line %d", pe.Index, pe.Line, len(entries), tt.index, tt.index+1)
			}
			if want := int64(tt.index * len(goodASCII)); pe.Offset != want {
				t.Errorf("offset %d, want %d", pe.Offset, want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %q, want it to mention %q", err, tt.want)
			}
		})
	}

	t.Run("unsupported LogHash", func(t *testing.T) {
		r := NewBinaryReader(bytes.NewReader(goodBin))
		r.LogHash = crypto.Hash(200)
		if _, err := r.Next(); err == nil {
			t.Error("got no error")
		}
	})
	t.Run("errors are sticky", func(t *testing.T) {
		r := NewBinaryReader(bytes.NewReader(cat(goodBin[:10], goodBin)))
		_, err1 := r.Next()
		_, err2 := r.Next()
		if err1 == nil || err1 != err2 {
			t.Errorf("got %v then %v, want the same error twice", err1, err2)
		}
	})
}

// TestParseBoundsAllocation: a length the input does not back costs no
// more memory than the input.
func TestParseBoundsAllocation(t *testing.T) {
	hash := make([]byte, 20)
	input := binaryEntry(10, hash, "ima-ng", nil)
	input = append(input[:len(input)-4], binary.LittleEndian.AppendUint32(nil, MaxTemplateDataLen)...)
	input = append(input, "short"...)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range 10 {
		if _, err := ParseBinary(input); err == nil {
			t.Fatal("got no error")
		}
	}
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > 2<<20 {
		t.Errorf("10 parses of a %d-byte input claiming %d bytes of data allocated %d bytes", len(input), MaxTemplateDataLen, got)
	}
}

// encode writes entries in format f.
func encode(tb testing.TB, f Format, entries []Entry) *bytes.Buffer {
	tb.Helper()
	var buf bytes.Buffer
	write := WriteBinary
	if f == ASCII {
		write = WriteASCII
	}
	if err := write(&buf, entries); err != nil {
		tb.Fatal(err)
	}
	return &buf
}
