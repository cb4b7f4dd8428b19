package ima

import (
	"bytes"
	"crypto"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

var update = flag.Bool("update", false, "rewrite the seed corpora in testdata/fuzz")

func entryEqual(a, b *Entry) bool {
	return a.PCR == b.PCR && a.TemplateName == b.TemplateName && a.FileHashAlgo == b.FileHashAlgo && a.Path == b.Path &&
		bytes.Equal(a.TemplateHash, b.TemplateHash) && bytes.Equal(a.TemplateData, b.TemplateData) &&
		bytes.Equal(a.FileDigest, b.FileDigest) && bytes.Equal(a.Signature, b.Signature) && bytes.Equal(a.Buffer, b.Buffer)
}

// checkParsed holds for whatever a parser accepts: the entries can be
// verified and replayed without panicking, and written in both formats
// and read back identically (ASCII only for names it can show).
func checkParsed(t *testing.T, entries []Entry) {
	t.Helper()
	r := mustReplayer(t, State{})
	for i := range entries {
		e := &entries[i]
		_ = e.VerifyTemplateHash()
		_ = r.Extend(e)
		if _, err := e.AppendBinary(nil); err != nil {
			t.Fatalf("entry %d: parsed but cannot be written: %v", i, err)
		}
	}
	var bin bytes.Buffer
	if err := WriteBinary(&bin, entries); err != nil {
		t.Fatal(err)
	}
	back, err := ParseBinary(bin.Bytes())
	if err != nil {
		t.Fatalf("binary written from parsed entries does not parse: %v", err)
	}
	if !entriesEqual(back, entries) {
		t.Fatalf("binary round trip: read back %+v, wrote %+v", back, entries)
	}
	var asc bytes.Buffer
	if err := WriteASCII(&asc, entries); err != nil {
		if strings.Contains(err.Error(), "space or a newline") {
			return
		}
		t.Fatal(err)
	}
	back, err = ParseASCII(asc.Bytes())
	if err != nil {
		t.Fatalf("ascii written from parsed entries does not parse: %v\n%q", err, asc.Bytes())
	}
	if !entriesEqual(back, entries) {
		t.Fatalf("ascii round trip: read back %+v, wrote %+v", back, entries)
	}
}

func FuzzParseASCII(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := ParseASCII(data)
		if err != nil {
			if _, ok := err.(*ParseError); !ok {
				t.Fatalf("error %v (%T) is not a *ParseError", err, err)
			}
		}
		checkParsed(t, entries)
	})
}

func FuzzParseBinary(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := ParseBinary(data)
		if err != nil {
			if _, ok := err.(*ParseError); !ok {
				t.Fatalf("error %v (%T) is not a *ParseError", err, err)
			}
		}
		checkParsed(t, entries)
	})
}

// FuzzRoundTrip: what the Measurer and the constructors write, the parsers
// read back identically, and it replays onto the PCR the Measurer
// extended.
func FuzzRoundTrip(f *testing.F) {
	f.Fuzz(func(t *testing.T, name string, content, sig []byte) {
		tpm := newFakeTPM()
		m, err := NewMeasurer(MeasurerConfig{
			Extender: tpm,
			BootPCRs: bootPCRs(),
			Open:     func(string) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(content)), nil },
		})
		if err != nil {
			t.Fatal(err)
		}
		e, _, err := m.Measure("/" + name)
		if err != nil {
			t.Fatal(err)
		}
		s, err := NewSig("sha256", e.FileDigest, e.Path, sig)
		if err != nil {
			t.Fatal(err)
		}
		entries := append(m.Entries(0), s)
		checkParsed(t, entries)
		n, err := mustReplayer(t, State{}).ReplayTo(entries, crypto.SHA256, tpm.quote(crypto.SHA256))
		if err != nil || n != m.Len() {
			t.Fatalf("replay covers %d, %v; want %d", n, err, m.Len())
		}
	})
}

// seedCorpora returns the seed corpora, by fuzz target and file name:
// lists a kernel wrote, lists the Measurer wrote, and broken ones.
func seedCorpora(tb testing.TB) map[string]map[string][]byte {
	tb.Helper()
	kernel, err := os.ReadFile("testdata/kernel_ascii_runtime_measurements")
	if err != nil {
		tb.Fatal(err)
	}
	samples := kernelSamples(tb)
	fsys := fstest.MapFS{
		"usr/bin/trustack":           {Data: []byte("trustack")},
		"usr/bin/qemu-system-x86_64": {Data: []byte("qemu")},
		"etc/trustack/trustack.yaml": {Data: []byte("listen: :5000\n")},
	}
	m := newTestMeasurer(tb, newFakeTPM(), fsys, "/usr/bin/trustack", "/usr/bin/qemu-system-x86_64", "/etc/trustack/trustack.yaml")
	if _, err := m.MeasureAll(); err != nil {
		tb.Fatal(err)
	}
	viol, err := NewViolation("sha256", "/var/log/syslog")
	if err != nil {
		tb.Fatal(err)
	}
	list := append(m.Entries(0), viol)
	var measuredASCII, measuredBinary, kernelBinary bytes.Buffer
	for _, w := range []error{WriteASCII(&measuredASCII, list), WriteBinary(&measuredBinary, list), WriteBinary(&kernelBinary, samples)} {
		if w != nil {
			tb.Fatal(w)
		}
	}
	zeros := strings.Repeat("00", 20)
	bin := measuredBinary.Bytes()
	return map[string]map[string][]byte{
		"FuzzParseASCII": {
			"kernel-samples":  kernel,
			"measurer":        measuredASCII.Bytes(),
			"ima-ng-bash":     []byte("10 " + zeros + " ima-ng sha256:" + strings.Repeat("ab", 32) + " /usr/bin/bash\n"),
			"boot-aggregate":  []byte("10 3c93cea361cd6892bc8b9e3458e22ce60ef2e632 ima-ng sha1:ac7dd11bf0e3bec9a7eb2c01e495072962fb9dfa boot_aggregate\n"),
			"ima-sig":         []byte("10 5d4d5141ccd5066d50dc3f21d79ba02fedc24256 ima-sig sha256:b8ae0b8dd04a5935cd8165aa2260cd11b658bd71629bdb52256a675a1f73907b /usr/bin/zmore 030204531f402500483046022100fe24678d21083ead47660e1a2d553a592d777c478d1b0466de6ed484b54956b3022100cad3adb37f277bbb03544d6107751b4cd4f2289d8353fa36257400a99334d5c3\n"),
			"ima-sig-no-sig":  []byte("10 5426cf3031a43f5bfca183d79950698a95a728f6 ima-sig sha256:f1125b940480d20ad841d26d5ea253edc0704b5ec1548c891edf212cb1a9365e /lib/modules/5.4.48-openpower1/kernel/drivers/usb/common/usb-common.ko \n"),
			"legacy-ima":      []byte("10 d7026dc672344d3ee372217bdbc7395947788671 ima 6f66d1d8e2fffcc12dfcb78c04b81fe5b8bbae4e /usr/bin/kmod\n"),
			"violation":       []byte("10 " + zeros + " ima-ng sha256:" + strings.Repeat("00", 32) + " /var/log/syslog\n"),
			"pcr-below-10":    []byte(" 9 " + zeros + " ima-ng sha1:" + zeros + " /x\n"),
			"custom-template": []byte("10 " + zeros + " d-ng|n-ng|buf sha256:" + strings.Repeat("01", 32) + " kexec-cmdline 726f6f74\n"),
			"bad-hex":         []byte("10 " + zeros + " ima-ng sha256:zz /x\n"),
			"huge-pcr":        []byte("99999999999 " + zeros + " ima-ng sha1:00 /x\n"),
		},
		"FuzzParseBinary": {
			"kernel-samples": kernelBinary.Bytes(),
			"measurer":       bin,
			"truncated":      bin[:len(bin)-7],
			"huge-length":    append(bytes.Clone(bin[:4+20+4+6]), 0xff, 0xff, 0xff, 0x7f),
		},
		"FuzzRoundTrip": {
			"qemu":       corpusFile("usr/bin/qemu-system-x86_64", []byte("qemu"), []byte(nil)),
			"space-name": corpusFile("etc/my file.conf", []byte("x"), []byte{3, 2, 4, 1}),
			"newline":    corpusFile("tmp/a\nb", []byte{}, []byte{}),
		},
	}
}

// corpusFile encodes the arguments of one fuzz input in the format of
// testdata/fuzz.
func corpusFile(args ...any) []byte {
	var b strings.Builder
	b.WriteString("go test fuzz v1\n")
	for _, a := range args {
		switch v := a.(type) {
		case []byte:
			fmt.Fprintf(&b, "[]byte(%q)\n", v)
		case string:
			fmt.Fprintf(&b, "string(%q)\n", v)
		default:
			panic(fmt.Sprintf("corpusFile: %T", a))
		}
	}
	return []byte(b.String())
}

// TestSeedCorpus keeps testdata/fuzz equal to what seedCorpora builds from
// the code (go test -run TestSeedCorpus -update rewrites it), so the
// seeds stay real lists when the writers change.
func TestSeedCorpus(t *testing.T) {
	for target, files := range seedCorpora(t) {
		for name, content := range files {
			if target != "FuzzRoundTrip" {
				content = corpusFile(content)
			}
			p := filepath.Join("testdata", "fuzz", target, name)
			if *update {
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, content, 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			got, err := os.ReadFile(p)
			if err != nil || !bytes.Equal(got, content) {
				t.Errorf("%s is not what the code writes (%v); run go test ./ima -run TestSeedCorpus -update", p, err)
			}
		}
	}
}
