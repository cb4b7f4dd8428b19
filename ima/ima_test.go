package ima

import (
	"bytes"
	"crypto"
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"
)

// The helpers below build template data and PCR values from the kernel's
// rules directly, independently of the code under test.

// lenPrefixed is the template data of a template with length-prefixed
// fields: LE32(len f) ‖ f for each field.
func lenPrefixed(fields ...[]byte) []byte {
	var b []byte
	for _, f := range fields {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(f)))
		b = append(b, f...)
	}
	return b
}

// dng is the d-ng field: "algo:" NUL digest.
func dng(algo string, digest []byte) []byte {
	return append([]byte(algo+":\x00"), digest...)
}

// nng is the n-ng field: the name and its NUL.
func nng(name string) []byte { return append([]byte(name), 0) }

// extend is TPM2_PCR_Extend: H(pcr ‖ digest).
func extend(h crypto.Hash, pcr, digest []byte) []byte {
	w := h.New()
	w.Write(pcr)
	w.Write(digest)
	return w.Sum(nil)
}

func hashOf(h crypto.Hash, b []byte) []byte {
	w := h.New()
	w.Write(b)
	return w.Sum(nil)
}

func unhex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func mustNG(tb testing.TB, algo string, digest []byte, path string) Entry {
	tb.Helper()
	e, err := NewNG(algo, digest, path)
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

func kernelSamples(tb testing.TB) []Entry {
	tb.Helper()
	b, err := os.ReadFile("testdata/kernel_ascii_runtime_measurements")
	if err != nil {
		tb.Fatal(err)
	}
	entries, err := ParseASCII(b)
	if err != nil {
		tb.Fatal(err)
	}
	return entries
}

// TestTemplateHashOfKernelEntries checks the template hash rule against
// lines a kernel wrote (Keylime's documentation and test data): every
// template this package reads, each hash as the kernel logged it.
func TestTemplateHashOfKernelEntries(t *testing.T) {
	entries := kernelSamples(t)
	if got, want := len(entries), 13; got != want {
		t.Fatalf("got %d entries, want %d", got, want)
	}
	for i, e := range entries {
		t.Run(e.TemplateName+" "+e.Path, func(t *testing.T) {
			if err := e.VerifyTemplateHash(); err != nil {
				t.Errorf("entry %d: %v", i, err)
			}
		})
	}
}

// TestTemplateData checks the byte layout of each template against data
// built by hand from the kernel's rules.
func TestTemplateData(t *testing.T) {
	sha1Boot := unhex(t, "ac7dd11bf0e3bec9a7eb2c01e495072962fb9dfa")
	digest256 := unhex(t, "d33d5d13792292e202dbf69a6f1b07bc8a02f01424db8489ba7bb7d43c0290ef")
	sig := unhex(t, "030204531f4025004830")
	legacyName := make([]byte, 256)
	copy(legacyName, "/usr/bin/kmod")
	tests := []struct {
		name     string
		line     string
		wantData []byte
		wantHash string // the SHA-1 template hash the kernel logged, if known
	}{
		{
			name:     "ima-ng boot_aggregate",
			line:     "10 3c93cea361cd6892bc8b9e3458e22ce60ef2e632 ima-ng sha1:ac7dd11bf0e3bec9a7eb2c01e495072962fb9dfa boot_aggregate",
			wantData: lenPrefixed(dng("sha1", sha1Boot), nng("boot_aggregate")),
			wantHash: "3c93cea361cd6892bc8b9e3458e22ce60ef2e632",
		},
		{
			name:     "ima-sig with signature",
			line:     "10 0000000000000000000000000000000000000001 ima-sig sha256:" + hex.EncodeToString(digest256) + " /usr/bin/dd " + hex.EncodeToString(sig),
			wantData: lenPrefixed(dng("sha256", digest256), nng("/usr/bin/dd"), sig),
		},
		{
			name:     "ima-sig without signature: an empty third field",
			line:     "10 5426cf3031a43f5bfca183d79950698a95a728f6 ima-sig sha256:f1125b940480d20ad841d26d5ea253edc0704b5ec1548c891edf212cb1a9365e /lib/modules/5.4.48-openpower1/kernel/drivers/usb/common/usb-common.ko ",
			wantData: lenPrefixed(dng("sha256", unhex(t, "f1125b940480d20ad841d26d5ea253edc0704b5ec1548c891edf212cb1a9365e")), nng("/lib/modules/5.4.48-openpower1/kernel/drivers/usb/common/usb-common.ko"), nil),
			wantHash: "5426cf3031a43f5bfca183d79950698a95a728f6",
		},
		{
			name:     "legacy ima: no length prefixes, name padded to 256 bytes",
			line:     "10 d7026dc672344d3ee372217bdbc7395947788671 ima 6f66d1d8e2fffcc12dfcb78c04b81fe5b8bbae4e /usr/bin/kmod",
			wantData: append(unhex(t, "6f66d1d8e2fffcc12dfcb78c04b81fe5b8bbae4e"), legacyName...),
			wantHash: "d7026dc672344d3ee372217bdbc7395947788671",
		},
		{
			name:     "custom template shown by its fields",
			line:     "10 0000000000000000000000000000000000000001 d-ng|n-ng|buf sha256:" + hex.EncodeToString(digest256) + " kexec-cmdline 726f6f74",
			wantData: lenPrefixed(dng("sha256", digest256), nng("kexec-cmdline"), []byte("root")),
		},
		{
			name:     "d-ngv2: the digest type is part of the prefix",
			line:     "10 0000000000000000000000000000000000000001 ima-ngv2 ima:sha256:" + hex.EncodeToString(digest256) + " /usr/bin/dd",
			wantData: lenPrefixed(dng("ima:sha256", digest256), nng("/usr/bin/dd")),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := parseASCIILine([]byte(tt.line), sha1.Size)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(e.TemplateData, tt.wantData) {
				t.Errorf("template data:\ngot  %x\nwant %x", e.TemplateData, tt.wantData)
			}
			sum := sha1.Sum(tt.wantData)
			if tt.wantHash != "" && hex.EncodeToString(sum[:]) != tt.wantHash {
				t.Errorf("SHA-1 of the wanted data is %x, the kernel logged %s", sum, tt.wantHash)
			}
			for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256} {
				got, err := TemplateDigest(&e, h)
				if err != nil {
					t.Fatal(err)
				}
				if want := hashOf(h, tt.wantData); !bytes.Equal(got, want) {
					t.Errorf("%v template digest: got %x, want %x", h, got, want)
				}
			}
		})
	}
}

func TestDecodedFields(t *testing.T) {
	entries := kernelSamples(t)
	tests := []struct {
		i                int
		algo, path       string
		digestHex        string
		sigLen, bufLen   int
		templateName     string
		wantSigPrefixHex string
	}{
		{i: 0, templateName: "ima-ng", algo: "sha1", path: "boot_aggregate", digestHex: "ac7dd11bf0e3bec9a7eb2c01e495072962fb9dfa"},
		{i: 6, templateName: "ima-sig", algo: "sha256", path: "/lib/modules/5.4.48-openpower1/kernel/drivers/usb/common/usb-common.ko", digestHex: "f1125b940480d20ad841d26d5ea253edc0704b5ec1548c891edf212cb1a9365e"},
		{i: 9, templateName: "ima-sig", algo: "sha256", path: "/usr/bin/zmore", digestHex: "b8ae0b8dd04a5935cd8165aa2260cd11b658bd71629bdb52256a675a1f73907b", sigLen: 81, wantSigPrefixHex: "030204531f40"},
		{i: 11, templateName: "ima-buf", algo: "sha1", path: "device_resume", digestHex: "6e0e6fc8a188ef4f059638949adca4d221946906", bufLen: 206},
		{i: 12, templateName: "ima", algo: "", path: "/usr/bin/kmod", digestHex: "6f66d1d8e2fffcc12dfcb78c04b81fe5b8bbae4e"},
	}
	for _, tt := range tests {
		e := entries[tt.i]
		t.Run(e.Path, func(t *testing.T) {
			if e.PCR != 10 || e.TemplateName != tt.templateName || e.FileHashAlgo != tt.algo || e.Path != tt.path || hex.EncodeToString(e.FileDigest) != tt.digestHex {
				t.Errorf("got PCR %d %s %s:%x %s, want 10 %s %s:%s %s", e.PCR, e.TemplateName, e.FileHashAlgo, e.FileDigest, e.Path, tt.templateName, tt.algo, tt.digestHex, tt.path)
			}
			if len(e.Signature) != tt.sigLen || !strings.HasPrefix(hex.EncodeToString(e.Signature), tt.wantSigPrefixHex) {
				t.Errorf("signature: got %d bytes %x, want %d bytes starting %s", len(e.Signature), e.Signature, tt.sigLen, tt.wantSigPrefixHex)
			}
			if len(e.Buffer) != tt.bufLen {
				t.Errorf("buffer: got %d bytes, want %d", len(e.Buffer), tt.bufLen)
			}
		})
	}
	if got, want := string(entries[11].Buffer[:10]), "name=TEST;"; got != want {
		t.Errorf("ima-buf buffer starts %q, want %q", got, want)
	}
}

func TestConstructors(t *testing.T) {
	d := bytes.Repeat([]byte{0xab}, 32)
	sig := []byte{3, 2, 4, 1}
	tests := []struct {
		name     string
		make     func() (Entry, error)
		wantData []byte
		wantPath string
	}{
		{"NewNG", func() (Entry, error) { return NewNG("sha256", d, "/usr/bin/qemu-system-x86_64") },
			lenPrefixed(dng("sha256", d), nng("/usr/bin/qemu-system-x86_64")), "/usr/bin/qemu-system-x86_64"},
		{"NewNG writes spaces as underscores", func() (Entry, error) { return NewNG("sha256", d, "/etc/my file") },
			lenPrefixed(dng("sha256", d), nng("/etc/my_file")), "/etc/my_file"},
		{"NewSig", func() (Entry, error) { return NewSig("sha256", d, "/usr/bin/bash", sig) },
			lenPrefixed(dng("sha256", d), nng("/usr/bin/bash"), sig), "/usr/bin/bash"},
		{"NewSig without signature", func() (Entry, error) { return NewSig("sha256", d, "/usr/bin/bash", nil) },
			lenPrefixed(dng("sha256", d), nng("/usr/bin/bash"), nil), "/usr/bin/bash"},
		{"NewBuf", func() (Entry, error) { return NewBuf("sha256", d, "kexec-cmdline", []byte("ro quiet")) },
			lenPrefixed(dng("sha256", d), nng("kexec-cmdline"), []byte("ro quiet")), "kexec-cmdline"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := tt.make()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(e.TemplateData, tt.wantData) {
				t.Errorf("template data:\ngot  %x\nwant %x", e.TemplateData, tt.wantData)
			}
			if want := hashOf(crypto.SHA1, tt.wantData); !bytes.Equal(e.TemplateHash, want) {
				t.Errorf("template hash: got %x, want %x", e.TemplateHash, want)
			}
			if e.Path != tt.wantPath || e.PCR != 10 {
				t.Errorf("got PCR %d path %q, want 10 %q", e.PCR, e.Path, tt.wantPath)
			}
		})
	}
	if _, err := NewNG("sha 256", d, "/x"); err == nil {
		t.Error("NewNG with a space in the algorithm: got no error")
	}
}

func TestViolation(t *testing.T) {
	e, err := NewViolation("sha256", "/var/log/written-while-open")
	if err != nil {
		t.Fatal(err)
	}
	if !e.Violation() {
		t.Fatal("Violation() = false, want true")
	}
	if want := make([]byte, 20); !bytes.Equal(e.TemplateHash, want) {
		t.Errorf("logged template hash: got %x, want zeros", e.TemplateHash)
	}
	if want := lenPrefixed(dng("sha256", make([]byte, 32)), nng("/var/log/written-while-open")); !bytes.Equal(e.TemplateData, want) {
		t.Errorf("template data:\ngot  %x\nwant %x", e.TemplateData, want)
	}
	if err := e.VerifyTemplateHash(); err != nil {
		t.Errorf("VerifyTemplateHash of a violation: %v, want nil", err)
	}
	for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256} {
		got, err := ExtendDigest(&e, h)
		if err != nil {
			t.Fatal(err)
		}
		if want := bytes.Repeat([]byte{0xff}, h.Size()); !bytes.Equal(got, want) {
			t.Errorf("%v extend digest: got %x, want all ones", h, got)
		}
	}
	ng := mustNG(t, "sha256", make([]byte, 32), "/x")
	if ng.Violation() {
		t.Error("an entry with a zero file digest but a real template hash is not a violation")
	}
	if got, _ := ExtendDigest(&ng, crypto.SHA256); !bytes.Equal(got, hashOf(crypto.SHA256, ng.TemplateData)) {
		t.Errorf("extend digest of a normal entry: got %x, want the SHA-256 of its data", got)
	}
}

func TestVerifyTemplateHashDetectsAlteration(t *testing.T) {
	entries := kernelSamples(t)
	tests := []struct {
		name  string
		alter func(e *Entry)
	}{
		{"digest byte", func(e *Entry) { e.TemplateData[10] ^= 1 }},
		{"path byte", func(e *Entry) { e.TemplateData[len(e.TemplateData)-2] ^= 1 }},
		{"logged hash", func(e *Entry) { e.TemplateHash[0] ^= 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := entries[1]
			e.TemplateData = bytes.Clone(e.TemplateData)
			e.TemplateHash = bytes.Clone(e.TemplateHash)
			tt.alter(&e)
			if err := e.VerifyTemplateHash(); !errors.Is(err, ErrTemplateHash) {
				t.Errorf("got %v, want ErrTemplateHash", err)
			}
		})
	}
}

func TestBootAggregate(t *testing.T) {
	pcrs := func(h crypto.Hash, n int) [][]byte {
		var p [][]byte
		for i := range n {
			p = append(p, bytes.Repeat([]byte{byte(i + 1)}, h.Size()))
		}
		return p
	}
	concat := func(p [][]byte) []byte { return bytes.Join(p, nil) }
	var zeros [][]byte
	for range 10 {
		zeros = append(zeros, make([]byte, 32))
	}
	tests := []struct {
		name string
		h    crypto.Hash
		pcrs [][]byte
		want []byte
	}{
		{"SHA-1: PCR 0 to 7", crypto.SHA1, pcrs(crypto.SHA1, 10), hashOf(crypto.SHA1, concat(pcrs(crypto.SHA1, 8)))},
		{"SHA-256: PCR 0 to 9", crypto.SHA256, pcrs(crypto.SHA256, 10), hashOf(crypto.SHA256, concat(pcrs(crypto.SHA256, 10)))},
		{"SHA-256: PCRs after a reset without measured boot", crypto.SHA256, zeros, hashOf(crypto.SHA256, make([]byte, 10*32))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := BootAggregate(tt.h, tt.pcrs)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Errorf("got %x, want %x", got, tt.want)
			}
		})
	}
	if _, err := BootAggregate(crypto.SHA256, pcrs(crypto.SHA256, 8)); err == nil {
		t.Error("SHA-256 with only PCR 0 to 7: got no error, want one (PCR 8 and 9 are included)")
	}
	if _, err := BootAggregate(crypto.SHA256, pcrs(crypto.SHA1, 10)); err == nil {
		t.Error("SHA-256 with 20-byte values: got no error")
	}
}
