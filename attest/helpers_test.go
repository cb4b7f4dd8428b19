package attest_test

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"testing"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/attest"
	"github.com/trustack/trustack/ima"
	"github.com/trustack/trustack/tpm"
	"github.com/trustack/trustack/tpm/tpmtest"
)

// The tests run on real swtpm instances, each on a copy of one TPM
// manufactured for the run.
var factory tpmtest.Factory

func TestMain(m *testing.M) {
	code := m.Run()
	factory.Close()
	os.Exit(code)
}

// openTPM starts an swtpm on a copy of the run's TPM and opens it.
func openTPM(t testing.TB) *tpm.TPM {
	t.Helper()
	return factory.OpenCopy(t)
}

// extender extends PCR 10 of a TPM for the ima Measurer, in both banks.
type extender struct{ tp *tpm.TPM }

func (x extender) Extend(pcr int, sha1Digest, sha256Digest []byte) error {
	return x.tp.ExtendPCR(pcr, map[crypto.Hash][]byte{crypto.SHA1: sha1Digest, crypto.SHA256: sha256Digest})
}

// host is a simulated compute host: an swtpm, its AK, and the userspace
// measurer extending its PCR 10 over files kept in memory.
type host struct {
	tp    *tpm.TPM
	ak    *tpm.AK
	files map[string][]byte
	m     *ima.Measurer
}

// newHost starts a host whose measurer has measured files (path, content
// pairs), in order.
func newHost(t testing.TB, files ...string) *host {
	t.Helper()
	tp := openTPM(t)
	ak, err := tp.CreateAK()
	if err != nil {
		t.Fatalf("CreateAK: %v", err)
	}
	h := &host{tp: tp, ak: ak, files: map[string][]byte{}}
	h.boot(t)
	h.measure(t, files...)
	return h
}

// boot starts a new measurement list, as the kernel does at boot.
func (h *host) boot(t testing.TB) {
	t.Helper()
	bank, err := h.tp.ReadPCRs(tpm.PCRSelection{Hash: crypto.SHA256, PCRs: []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}})
	if err != nil {
		t.Fatalf("ReadPCRs: %v", err)
	}
	var boot [][]byte
	for i := range 10 {
		boot = append(boot, bank.Values[i])
	}
	h.m, err = ima.NewMeasurer(ima.MeasurerConfig{
		Extender: extender{h.tp},
		BootPCRs: boot,
		Open: func(p string) (io.ReadCloser, error) {
			b, ok := h.files[p]
			if !ok {
				return nil, os.ErrNotExist
			}
			return io.NopCloser(bytes.NewReader(b)), nil
		},
	})
	if err != nil {
		t.Fatalf("NewMeasurer: %v", err)
	}
}

// measure writes and measures files, given as path, content pairs.
func (h *host) measure(t testing.TB, files ...string) {
	t.Helper()
	for i := 0; i+1 < len(files); i += 2 {
		h.files[files[i]] = []byte(files[i+1])
		if _, _, err := h.m.Measure(files[i]); err != nil {
			t.Fatalf("measure %s: %v", files[i], err)
		}
	}
}

// quote has the TPM quote nonce and returns the evidence without its log.
func (h *host) quote(t testing.TB, ak *tpm.AK, nonce []byte) trustack.Evidence {
	t.Helper()
	att, sig, err := h.tp.Quote(ak, nonce, tpm.QuotePCRs)
	if err != nil {
		t.Fatalf("Quote: %v", err)
	}
	bank, err := h.tp.ReadPCRs(tpm.QuotePCRs)
	if err != nil {
		t.Fatalf("ReadPCRs: %v", err)
	}
	return trustack.Evidence{Nonce: nonce, Attest: att, Signature: sig, PCRs: bank.Values}
}

// withLog adds the binary log from entry from to ev.
func (h *host) withLog(t testing.TB, ev trustack.Evidence, from int) trustack.Evidence {
	t.Helper()
	var buf bytes.Buffer
	if err := h.m.WriteBinary(&buf, from); err != nil {
		t.Fatalf("WriteBinary: %v", err)
	}
	ev.Log, ev.FromEntry = buf.Bytes(), from
	return ev
}

// evidence answers nonce with a quote by the host's AK and the log from
// entry from.
func (h *host) evidence(t testing.TB, nonce []byte, from int) trustack.Evidence {
	t.Helper()
	return h.withLog(t, h.quote(t, h.ak, nonce), from)
}

// registered returns the verifier's state of the host just registered.
func (h *host) registered(t testing.TB) attest.HostState {
	t.Helper()
	ak, err := tpm.ParseAKPublic(h.ak.Public().Bytes())
	if err != nil {
		t.Fatalf("ParseAKPublic: %v", err)
	}
	return attest.HostState{AK: ak}
}

// whitelist takes a white-list from the host's measurements so far.
func (h *host) whitelist(name string) *trustack.Whitelist {
	wl := &trustack.Whitelist{Name: name, Files: map[string][]string{}}
	for i, e := range h.m.Entries(0) {
		d := e.FileHashAlgo + ":" + hex.EncodeToString(e.FileDigest)
		if i == 0 {
			wl.BootAggregate = d
			continue
		}
		wl.Files[e.Path] = append(wl.Files[e.Path], d)
	}
	return wl
}

// encode writes entries as a binary log.
func encode(t testing.TB, entries []ima.Entry) []byte {
	t.Helper()
	var b []byte
	for i := range entries {
		var err error
		if b, err = entries[i].AppendBinary(b); err != nil {
			t.Fatalf("AppendBinary: %v", err)
		}
	}
	return b
}

// nonce returns a distinct nonce for round i.
func nonce(i int) []byte {
	n := sha256.Sum256(fmt.Appendf(nil, "round %d", i))
	return n[:]
}
