package ima

import (
	"crypto"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sync"
)

// Extender extends PCR pcr of the host's TPM with a digest per bank, as
// TPM2_PCR_Extend does: sha1Digest into the SHA-1 bank and sha256Digest
// into the SHA-256 bank (an implementation extends the banks the TPM has
// allocated). The tpm package implements it.
type Extender interface {
	Extend(pcr int, sha1Digest, sha256Digest []byte) error
}

// MeasurerConfig configures a Measurer.
type MeasurerConfig struct {
	// Extender extends PCR 10 for every entry recorded. Required.
	Extender Extender
	// BootPCRs holds the values of PCR 0 to 9 (0 to 7 for SHA-1) of the
	// BootHash bank, read from the TPM when the Measurer starts; the
	// first entry, boot_aggregate, records their hash. Required unless
	// Resume is set, and then checked against it if given.
	BootPCRs [][]byte
	// BootHash is the bank of BootPCRs and the algorithm of the
	// boot_aggregate digest. Zero means SHA-256, which the kernel uses
	// with ima_hash=sha256 when that bank is allocated.
	BootHash crypto.Hash
	// Files are the absolute paths MeasureAll measures, in order.
	Files []string
	// Open opens a file to measure. Nil means os.Open.
	Open func(path string) (io.ReadCloser, error)
	// Resume is the list an earlier Measurer recorded since the TPM's
	// last reset, whose extends PCR 10 already holds (the agent
	// restarted, the host did not). The new Measurer continues it
	// without extending anything. The caller must know that the list
	// belongs to the current boot (the TPM's reset count).
	Resume []Entry
}

// Measurer is a userspace stand-in for the kernel's IMA, for hosts whose
// kernel list cannot be read: it measures files into ima-ng entries
// (SHA-256 file digests), extends PCR 10 for each exactly as the kernel
// would, and keeps the append-only list that the verifier replays. Like
// the kernel it records a measurement once per boot: measuring a file
// again adds an entry only if its content (hence its template hash) is
// one the list does not hold yet. A Measurer is safe for concurrent use.
type Measurer struct {
	ext   Extender
	open  func(string) (io.ReadCloser, error)
	files []string

	mu   sync.Mutex
	log  []Entry
	seen map[[sha1.Size]byte]bool
}

// NewMeasurer returns a Measurer whose list starts with the boot_aggregate
// entry, extended into PCR 10, or continues cfg.Resume.
func NewMeasurer(cfg MeasurerConfig) (*Measurer, error) {
	if cfg.Extender == nil {
		return nil, errors.New("ima: measurer: no Extender")
	}
	for _, f := range cfg.Files {
		if !path.IsAbs(f) {
			return nil, fmt.Errorf("ima: measurer: %q is not an absolute path", f)
		}
	}
	m := &Measurer{
		ext:   cfg.Extender,
		open:  cfg.Open,
		files: append([]string(nil), cfg.Files...),
		seen:  make(map[[sha1.Size]byte]bool),
	}
	if m.open == nil {
		m.open = func(p string) (io.ReadCloser, error) { return os.Open(p) }
	}
	h := cfg.BootHash
	if h == 0 {
		h = crypto.SHA256
	}
	algo, err := algoOf(h)
	if err != nil {
		return nil, fmt.Errorf("ima: measurer: boot aggregate: %w", err)
	}
	var agg []byte
	if cfg.BootPCRs != nil || cfg.Resume == nil {
		if agg, err = BootAggregate(h, cfg.BootPCRs); err != nil {
			return nil, fmt.Errorf("ima: measurer: %w", err)
		}
	}
	boot, err := NewNG(algo, agg, "boot_aggregate")
	if err != nil {
		return nil, fmt.Errorf("ima: measurer: %w", err)
	}
	if cfg.Resume != nil {
		if err := m.resume(cfg.Resume, agg, &boot); err != nil {
			return nil, err
		}
		return m, nil
	}
	if _, err := m.record(boot); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *Measurer) resume(entries []Entry, agg []byte, boot *Entry) error {
	if len(entries) == 0 || entries[0].Path != "boot_aggregate" {
		return errors.New("ima: measurer: resumed list does not start with boot_aggregate")
	}
	if agg != nil && string(entries[0].TemplateData) != string(boot.TemplateData) {
		return errors.New("ima: measurer: resumed list's boot_aggregate does not match the boot PCRs")
	}
	for i := range entries {
		e := &entries[i]
		if e.PCR != PCRIndex {
			return fmt.Errorf("ima: measurer: resumed entry %d extends PCR %d", i, e.PCR)
		}
		if err := e.VerifyTemplateHash(); err != nil {
			return fmt.Errorf("ima: measurer: resumed entry %d: %w", i, err)
		}
		m.seen[sha1.Sum(e.TemplateData)] = true
	}
	m.log = append([]Entry(nil), entries...)
	return nil
}

// record extends PCR 10 with e and appends it, unless the list holds it
// already. A failed extend leaves the list unchanged, so the measurement
// can be retried; if the TPM did extend but reported an error, the list
// no longer replays to PCR 10 and the host fails attestation, which is
// the safe way to fail.
func (m *Measurer) record(e Entry) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := sha1.Sum(e.TemplateData)
	if m.seen[key] {
		return false, nil
	}
	d256 := sha256.Sum256(e.TemplateData)
	if err := m.ext.Extend(PCRIndex, key[:], d256[:]); err != nil {
		return false, fmt.Errorf("ima: measurer: extend PCR %d for %s: %w", PCRIndex, e.Path, err)
	}
	m.seen[key] = true
	m.log = append(m.log, e)
	return true, nil
}

// Measure hashes the file at the absolute path p (SHA-256 of its content)
// and records it, extending PCR 10, unless the list already holds that
// path with that digest. It returns the entry and whether it was added.
// It fails if the file cannot be read or the extend fails.
func (m *Measurer) Measure(p string) (Entry, bool, error) {
	if !path.IsAbs(p) {
		return Entry{}, false, fmt.Errorf("ima: measure %q: not an absolute path", p)
	}
	p = path.Clean(p)
	f, err := m.open(p)
	if err != nil {
		return Entry{}, false, fmt.Errorf("ima: measure %s: %w", p, err)
	}
	h := sha256.New()
	_, err = io.Copy(h, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Entry{}, false, fmt.Errorf("ima: measure %s: %w", p, err)
	}
	e, err := NewNG("sha256", h.Sum(nil), p)
	if err != nil {
		return Entry{}, false, err
	}
	added, err := m.record(e)
	if err != nil {
		return Entry{}, false, err
	}
	return e, added, nil
}

// MeasureAll measures every configured file, in order, and returns how
// many entries it added. A file that cannot be measured does not stop the
// others; the error joins every failure.
func (m *Measurer) MeasureAll() (int, error) {
	var errs []error
	added := 0
	for _, f := range m.files {
		_, ok, err := m.Measure(f)
		if err != nil {
			errs = append(errs, err)
		}
		if ok {
			added++
		}
	}
	return added, errors.Join(errs...)
}

// Len returns the number of entries in the list.
func (m *Measurer) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.log)
}

// Entries returns the entries from index from on (none if from is past
// the end). The entries are shared and must not be modified.
func (m *Measurer) Entries(from int) []Entry {
	m.mu.Lock()
	defer m.mu.Unlock()
	from = max(0, min(from, len(m.log)))
	return append([]Entry(nil), m.log[from:]...)
}

// WriteASCII writes the entries from index from on as the kernel's
// ascii_runtime_measurements.
func (m *Measurer) WriteASCII(w io.Writer, from int) error {
	return WriteASCII(w, m.Entries(from))
}

// WriteBinary writes the entries from index from on as the kernel's
// binary_runtime_measurements.
func (m *Measurer) WriteBinary(w io.Writer, from int) error {
	return WriteBinary(w, m.Entries(from))
}
