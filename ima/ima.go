// Package ima reads, writes, checks and replays Linux IMA measurement lists
// (the kernel's ascii_runtime_measurements and binary_runtime_measurements),
// and measures files in userspace the way the kernel would where its list
// cannot be read. A list is the evidence an attestation verifier replays
// onto a TPM quote of PCR 10 and matches against a white-list.
//
// The rules follow the kernel byte for byte (security/integrity/ima:
// ima_fs.c, ima_crypto.c, ima_template_lib.c, ima_queue.c): template data
// is the concatenation of the template's fields, each with a little-endian
// u32 length prefix (the legacy "ima" template: a 20-byte digest and the
// name zero-padded to 256 bytes, no prefixes); the template hash of a bank
// is that bank's hash of the template data; PCR 10 of bank b is extended
// with H_b(template data), or with all 0xff bytes for a violation, whose
// logged template hash is all zeros (kernels 5.8 and later).
package ima

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// PCRIndex is the PCR the kernel extends unless its policy names another
// (CONFIG_IMA_MEASURE_PCR_IDX), and the only one the Replayer and the
// Measurer use.
const PCRIndex = 10

// Limits on attacker-controlled lengths. The kernel's own entries stay far
// below them: template names are at most a few dozen bytes, template data
// holds a path (PATH_MAX is 4096), a signature or a small buffer.
const (
	MaxTemplateNameLen = 255
	MaxTemplateDataLen = 1 << 20
	// maxASCIILine bounds a line of the ASCII list: every data byte may
	// be shown as two hex digits.
	maxASCIILine = 2*MaxTemplateDataLen + 1024
	// legacyNameLen is the size the legacy "ima" template pads its name
	// field to before hashing (IMA_EVENT_NAME_LEN_MAX + 1).
	legacyNameLen = 256
	// legacyDigestLen is the size of the legacy "d" field (SHA-1).
	legacyDigestLen = 20
	maxAlgoLen      = 64
)

// Errors that callers tell apart with errors.Is. They describe evidence,
// not requests: the verifier turns them into a verdict (untrusted, with
// the reason), not into an API error code.
var (
	// ErrUnsupportedTemplate is returned for a template, or a field of a
	// custom template, that this package cannot decode.
	ErrUnsupportedTemplate = errors.New("unsupported template")
	// ErrTemplateHash is returned when an entry's logged template hash is
	// not the hash of its template data: the entry was altered.
	ErrTemplateHash = errors.New("template hash does not match template data")
	// ErrNoMatch is returned by Replayer.ReplayTo when no prefix of the
	// entries reproduces the quoted PCR value: the list does not match
	// the TPM (an entry altered, missing, added or reordered).
	ErrNoMatch = errors.New("no prefix of the measurement list reproduces the quoted PCR")
)

// Entry is one measurement of the list.
//
// TemplateData is authoritative: it is exactly the bytes the kernel hashes
// (for every template but the legacy "ima", also exactly the bytes of the
// binary list). FileHashAlgo, FileDigest, Path, Signature and Buffer are
// decoded from it by the parsers and constructors; the byte slices alias
// TemplateData, so an Entry must be treated as read-only, and changing a
// decoded field does not change what is written or hashed.
type Entry struct {
	// PCR is the PCR the entry was extended into, 10 unless the IMA
	// policy says otherwise.
	PCR int
	// TemplateHash is the template hash as logged: SHA-1 in the kernel's
	// classic lists, all zeros for a violation.
	TemplateHash []byte
	// TemplateName is "ima-ng", "ima-sig", "ima-buf", "ima-ngv2",
	// "ima-sigv2", "ima", or the field list of a custom template
	// ("d-ng|n-ng|sig").
	TemplateName string
	// TemplateData is the template's fields as hashed; see above.
	TemplateData []byte

	// FileHashAlgo is the algorithm of FileDigest as the kernel names it
	// ("sha256", "sha1"; "ima:sha256" for d-ngv2), empty for the legacy
	// "d" field, which is SHA-1.
	FileHashAlgo string
	// FileDigest is the digest of the file's content (or of the buffer,
	// for ima-buf), all zeros for a violation.
	FileDigest []byte
	// Path is the file name hint: an absolute path, "boot_aggregate", or
	// the name of a measured buffer. The kernel writes spaces as '_'.
	Path string
	// Signature is the security.ima signature of ima-sig, nil if absent.
	Signature []byte
	// Buffer is the measured buffer of ima-buf, nil if absent.
	Buffer []byte
}

// Violation reports whether the entry records a violation (a file opened
// for writing while measured, or measured while open for writing): the
// kernel logs its template hash as zeros and extends the PCR with 0xff
// bytes instead of a hash, so nothing binds its template data to the TPM
// and its path and digest must not be trusted.
func (e *Entry) Violation() bool {
	if len(e.TemplateHash) == 0 {
		return false
	}
	for _, b := range e.TemplateHash {
		if b != 0 {
			return false
		}
	}
	return true
}

// fieldKind is how a template field is encoded and shown.
type fieldKind uint8

const (
	fieldDigestNG fieldKind = iota + 1 // d-ng, d-ngv2: "algo:" NUL digest; shown "algo:hex"
	fieldDigest                        // d: the digest alone; shown as hex
	fieldName                          // n, n-ng: the name and a NUL; shown as the name
	fieldSig                           // sig: shown as hex
	fieldBuf                           // buf: shown as hex
)

var fieldKinds = map[string]fieldKind{
	"d-ng":   fieldDigestNG,
	"d-ngv2": fieldDigestNG,
	"d":      fieldDigest,
	"n-ng":   fieldName,
	"n":      fieldName,
	"sig":    fieldSig,
	"buf":    fieldBuf,
}

// Built-in template names and their fields (ima_template.c).
const (
	TemplateIMA    = "ima"
	TemplateIMANG  = "ima-ng"
	TemplateIMASig = "ima-sig"
	TemplateIMABuf = "ima-buf"
)

var (
	fieldsIMA    = []fieldKind{fieldDigest, fieldName}
	fieldsIMANG  = []fieldKind{fieldDigestNG, fieldName}
	fieldsIMASig = []fieldKind{fieldDigestNG, fieldName, fieldSig}
	fieldsIMABuf = []fieldKind{fieldDigestNG, fieldName, fieldBuf}
)

// templateFields returns the fields of a template and its canonical name
// (a constant, so decoding a known template allocates no string).
func templateFields(name []byte) (string, []fieldKind, error) {
	switch string(name) {
	case TemplateIMANG:
		return TemplateIMANG, fieldsIMANG, nil
	case TemplateIMASig:
		return TemplateIMASig, fieldsIMASig, nil
	case TemplateIMABuf:
		return TemplateIMABuf, fieldsIMABuf, nil
	case TemplateIMA:
		return TemplateIMA, fieldsIMA, nil
	case "ima-ngv2":
		return "ima-ngv2", fieldsIMANG, nil
	case "ima-sigv2":
		return "ima-sigv2", fieldsIMASig, nil
	}
	if len(name) == 0 || len(name) > MaxTemplateNameLen || !printable(name) {
		return "", nil, fmt.Errorf("%w: template name %q", ErrUnsupportedTemplate, truncate(name))
	}
	// A custom template (ima_template_fmt=) is shown by its field list.
	s := string(name)
	if !strings.Contains(s, "|") {
		return "", nil, fmt.Errorf("%w: %q", ErrUnsupportedTemplate, s)
	}
	var kinds []fieldKind
	var seen [fieldBuf + 1]bool
	for f := range strings.SplitSeq(s, "|") {
		k, ok := fieldKinds[f]
		if !ok {
			return "", nil, fmt.Errorf("%w: field %q of template %q", ErrUnsupportedTemplate, f, s)
		}
		role := k
		if role == fieldDigest {
			role = fieldDigestNG
		}
		if seen[role] {
			return "", nil, fmt.Errorf("%w: template %q has two fields of one kind", ErrUnsupportedTemplate, s)
		}
		seen[role] = true
		kinds = append(kinds, k)
	}
	return s, kinds, nil
}

// decode sets the fields of e that are decoded from its template data,
// checking that the data is what the kernel could have written.
func (e *Entry) decode(kinds []fieldKind) error {
	e.FileHashAlgo, e.FileDigest, e.Path, e.Signature, e.Buffer = "", nil, "", nil, nil
	data := e.TemplateData
	if e.TemplateName == TemplateIMA {
		if len(data) != legacyDigestLen+legacyNameLen {
			return fmt.Errorf("template ima: data is %d bytes, want %d", len(data), legacyDigestLen+legacyNameLen)
		}
		e.FileDigest = data[:legacyDigestLen:legacyDigestLen]
		name := data[legacyDigestLen:]
		n := bytes.IndexByte(name, 0)
		if n < 0 {
			return errors.New("template ima: name is not NUL-terminated within 256 bytes")
		}
		for _, b := range name[n:] {
			if b != 0 {
				return errors.New("template ima: name padding is not zero")
			}
		}
		e.Path = string(name[:n])
		return nil
	}
	for i, k := range kinds {
		if len(data) < 4 {
			return fmt.Errorf("field %d: %d bytes left, want a 4-byte length", i, len(data))
		}
		n := binary.LittleEndian.Uint32(data)
		data = data[4:]
		if uint64(n) > uint64(len(data)) {
			return fmt.Errorf("field %d: length %d exceeds the %d bytes left", i, n, len(data))
		}
		f := data[:n:n]
		data = data[n:]
		switch k {
		case fieldDigestNG:
			z := bytes.IndexByte(f, 0)
			if z < 2 || f[z-1] != ':' {
				return fmt.Errorf("field %d: digest lacks its \"algo:\" NUL prefix", i)
			}
			if !validAlgo(f[:z-1]) {
				return fmt.Errorf("field %d: bad hash algorithm name %q", i, truncate(f[:z-1]))
			}
			e.FileHashAlgo = algoName(f[:z-1])
			e.FileDigest = f[z+1:]
		case fieldDigest:
			e.FileDigest = f
		case fieldName:
			if len(f) == 0 || f[len(f)-1] != 0 {
				return fmt.Errorf("field %d: name is not NUL-terminated", i)
			}
			if bytes.IndexByte(f[:len(f)-1], 0) >= 0 {
				return fmt.Errorf("field %d: name contains a NUL", i)
			}
			e.Path = string(f[:len(f)-1])
		case fieldSig:
			if n > 0 {
				e.Signature = f
			}
		case fieldBuf:
			if n > 0 {
				e.Buffer = f
			}
		}
	}
	if len(data) != 0 {
		return fmt.Errorf("%d bytes after the last field", len(data))
	}
	return nil
}

// algoName returns the algorithm name, without allocating for common ones.
func algoName(b []byte) string {
	switch string(b) {
	case "sha256":
		return "sha256"
	case "sha1":
		return "sha1"
	case "sha384":
		return "sha384"
	case "sha512":
		return "sha512"
	}
	return string(b)
}

// validAlgo reports whether b can be a hash algorithm name shown in the
// ASCII list: printable, no spaces.
func validAlgo(b []byte) bool {
	return len(b) > 0 && len(b) <= maxAlgoLen && printable(b)
}

// printable reports whether b is visible ASCII without spaces.
func printable(b []byte) bool {
	for _, c := range b {
		if c <= ' ' || c > '~' {
			return false
		}
	}
	return true
}

func truncate(b []byte) []byte {
	if len(b) > 32 {
		return b[:32]
	}
	return b
}

// NewNG returns the ima-ng entry the kernel records for a file whose
// content has the digest digest under algorithm algo ("sha256"), with its
// SHA-1 template hash. Spaces in path become '_' and path ends at a NUL, as
// in the kernel.
func NewNG(algo string, digest []byte, path string) (Entry, error) {
	return newEntry(TemplateIMANG, fieldsIMANG, algo, digest, path, nil)
}

// NewSig returns the ima-sig entry for a file with digest digest and the
// security.ima signature sig (nil: none).
func NewSig(algo string, digest []byte, path string, sig []byte) (Entry, error) {
	return newEntry(TemplateIMASig, fieldsIMASig, algo, digest, path, sig)
}

// NewBuf returns the ima-buf entry for the buffer buf measured under name
// (a kexec command line, a key, critical data), its digest under algo.
func NewBuf(algo string, digest []byte, name string, buf []byte) (Entry, error) {
	return newEntry(TemplateIMABuf, fieldsIMABuf, algo, digest, name, buf)
}

// NewViolation returns the ima-ng entry the kernel records for a violation
// on path: a zero file digest of algo's size (20 bytes for an algorithm it
// does not know, as kernels before 5.8 did for all) and a zero template
// hash.
func NewViolation(algo string, path string) (Entry, error) {
	size, ok := algoSizes[algo]
	if !ok {
		size = legacyDigestLen
	}
	e, err := newEntry(TemplateIMANG, fieldsIMANG, algo, make([]byte, size), path, nil)
	if err != nil {
		return Entry{}, err
	}
	e.TemplateHash = make([]byte, len(e.TemplateHash))
	return e, nil
}

var algoSizes = map[string]int{
	"md5": 16, "sha1": 20, "sha224": 28, "sha256": 32, "sha384": 48, "sha512": 64, "sm3": 32,
}

func newEntry(template string, kinds []fieldKind, algo string, digest []byte, path string, extra []byte) (Entry, error) {
	if !validAlgo([]byte(algo)) {
		return Entry{}, fmt.Errorf("ima: bad hash algorithm name %q", algo)
	}
	path = kernelName(path)
	size := 4 + len(algo) + 2 + len(digest) + 4 + len(path) + 1
	if len(kinds) == 3 {
		size += 4 + len(extra)
	}
	if size > MaxTemplateDataLen {
		return Entry{}, fmt.Errorf("ima: template data of %d bytes exceeds %d", size, MaxTemplateDataLen)
	}
	data := make([]byte, 0, size)
	data = binary.LittleEndian.AppendUint32(data, uint32(len(algo)+2+len(digest)))
	data = append(data, algo...)
	data = append(data, ':', 0)
	data = append(data, digest...)
	data = binary.LittleEndian.AppendUint32(data, uint32(len(path)+1))
	data = append(data, path...)
	data = append(data, 0)
	if len(kinds) == 3 {
		data = binary.LittleEndian.AppendUint32(data, uint32(len(extra)))
		data = append(data, extra...)
	}
	e := Entry{PCR: PCRIndex, TemplateName: template, TemplateData: data}
	if err := e.decode(kinds); err != nil {
		return Entry{}, fmt.Errorf("ima: %w", err)
	}
	sum := sha1Sum(data)
	e.TemplateHash = sum[:]
	return e, nil
}

// kernelName returns name as the kernel stores a string field: cut at the
// first NUL, spaces replaced by '_' (ima_write_template_field_data).
func kernelName(name string) string {
	if i := strings.IndexByte(name, 0); i >= 0 {
		name = name[:i]
	}
	return strings.ReplaceAll(name, " ", "_")
}
