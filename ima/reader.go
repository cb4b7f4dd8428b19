package ima

import (
	"bufio"
	"bytes"
	"crypto"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Format is an encoding of the measurement list.
type Format int

// The kernel's two encodings.
const (
	// ASCII is ascii_runtime_measurements: one line per entry,
	// "PCR template-hash template-name field…".
	ASCII Format = iota + 1
	// Binary is binary_runtime_measurements, little-endian as the kernel
	// writes it on x86 (or anywhere with ima_canonical_fmt).
	Binary
)

func (f Format) String() string {
	switch f {
	case ASCII:
		return "ascii"
	case Binary:
		return "binary"
	}
	return "Format(" + strconv.Itoa(int(f)) + ")"
}

// ParseError reports malformed input: which entry, where it starts, and
// what is wrong with it.
type ParseError struct {
	Format Format
	Index  int   // the entry's index, from 0 at the Reader's start
	Offset int64 // the byte offset of the entry's start in the input
	Line   int   // ASCII only: the line number, from 1
	Err    error
}

func (e *ParseError) Error() string {
	if e.Format == ASCII {
		return fmt.Sprintf("ima: %v list: entry %d (line %d, byte %d): %v", e.Format, e.Index, e.Line, e.Offset, e.Err)
	}
	return fmt.Sprintf("ima: %v list: entry %d at byte %d: %v", e.Format, e.Index, e.Offset, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

// Reader reads a measurement list one entry at a time, keeping only the
// entry being read. It buffers its input unless that is an io.ByteReader
// already (a bytes.Reader, a bufio.Reader). A Reader is not safe for
// concurrent use.
type Reader struct {
	// LogHash is the algorithm of the template hash column: SHA-1 for the
	// kernel's classic lists (the zero value means SHA-1), SHA-256 (or
	// SHA-384, SHA-512) for the per-bank lists of Linux 6.10 and later
	// (ascii_runtime_measurements_sha256). Set it before the first Next.
	LogHash crypto.Hash

	format Format
	r      io.Reader      // Binary
	sc     *bufio.Scanner // ASCII
	index  int
	offset int64
	line   int
	err    error
	adv    int // ASCII: the bytes the last line took, its newline included
	// scratch holds a binary entry's header and name, so that reading
	// one allocates only its template data and path.
	scratch [4 + 64 + 4 + MaxTemplateNameLen + 4]byte
}

// NewReader returns a Reader of the list in format f from r.
func NewReader(r io.Reader, f Format) *Reader {
	rd := &Reader{format: f}
	switch f {
	case ASCII:
		rd.sc = bufio.NewScanner(r)
		rd.sc.Buffer(nil, maxASCIILine)
		rd.sc.Split(rd.scanLine)
	case Binary:
		if _, ok := r.(io.ByteReader); !ok {
			r = bufio.NewReader(r)
		}
		rd.r = r
	default:
		rd.err = fmt.Errorf("ima: unknown format %v", f)
	}
	return rd
}

// NewASCIIReader returns a Reader of an ascii_runtime_measurements list.
func NewASCIIReader(r io.Reader) *Reader { return NewReader(r, ASCII) }

// NewBinaryReader returns a Reader of a binary_runtime_measurements list.
func NewBinaryReader(r io.Reader) *Reader { return NewReader(r, Binary) }

// Index returns the number of entries read so far.
func (r *Reader) Index() int { return r.index }

// Offset returns the number of bytes of input consumed by the entries read
// so far.
func (r *Reader) Offset() int64 { return r.offset }

// Next returns the next entry, io.EOF after the last one, or a *ParseError.
// After an error every call returns the same error.
func (r *Reader) Next() (Entry, error) {
	if r.err != nil {
		return Entry{}, r.err
	}
	if r.logHashSize() == 0 {
		r.err = fmt.Errorf("ima: reader: LogHash %v is not supported", r.LogHash)
		return Entry{}, r.err
	}
	var e Entry
	var n int64
	var err error
	if r.format == ASCII {
		e, n, err = r.nextASCII()
	} else {
		e, n, err = r.nextBinary()
	}
	if err != nil {
		if err != io.EOF {
			err = &ParseError{Format: r.format, Index: r.index, Offset: r.offset, Line: r.line, Err: err}
		}
		r.err = err
		return Entry{}, err
	}
	r.index++
	r.offset += n
	return e, nil
}

// ReadAll reads the whole list in format f from r.
func ReadAll(r io.Reader, f Format) ([]Entry, error) {
	rd := NewReader(r, f)
	var entries []Entry
	for {
		e, err := rd.Next()
		if err == io.EOF {
			return entries, nil
		}
		if err != nil {
			return entries, err
		}
		entries = append(entries, e)
	}
}

// ParseASCII parses a whole ASCII list; on error it returns the entries
// before the bad one.
func ParseASCII(b []byte) ([]Entry, error) { return ReadAll(bytes.NewReader(b), ASCII) }

// ParseBinary parses a whole binary list; on error it returns the entries
// before the bad one.
func ParseBinary(b []byte) ([]Entry, error) { return ReadAll(bytes.NewReader(b), Binary) }

// logHashSize returns the size of the template hash column, 0 for an
// algorithm no list uses.
func (r *Reader) logHashSize() int {
	switch r.LogHash {
	case 0, crypto.SHA1:
		return crypto.SHA1.Size()
	case crypto.SHA256, crypto.SHA384, crypto.SHA512:
		return r.LogHash.Size()
	}
	return 0
}

// scanLine splits at '\n' only: unlike bufio.ScanLines it keeps a '\r',
// which is part of a name or makes the line invalid.
func (r *Reader) scanLine(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		r.adv = i + 1
		return i + 1, data[:i], nil
	}
	if atEOF && len(data) > 0 {
		r.adv = len(data)
		return len(data), data, nil
	}
	return 0, nil, nil
}

func (r *Reader) nextASCII() (Entry, int64, error) {
	if !r.sc.Scan() {
		if err := r.sc.Err(); err != nil {
			r.line++
			if errors.Is(err, bufio.ErrTooLong) {
				return Entry{}, 0, fmt.Errorf("line longer than %d bytes", maxASCIILine)
			}
			return Entry{}, 0, err
		}
		return Entry{}, 0, io.EOF
	}
	r.line++
	e, err := parseASCIILine(r.sc.Bytes(), r.logHashSize())
	return e, int64(r.adv), err
}

func parseASCIILine(b []byte, hashSize int) (Entry, error) {
	if bytes.IndexByte(b, 0) >= 0 {
		return Entry{}, errors.New("line contains a NUL byte")
	}
	// The kernel prints the PCR with "%2d", so PCRs below 10 have a
	// leading space.
	line := strings.TrimLeft(string(b), " ")
	tok := strings.Split(line, " ")
	if len(tok) < 4 {
		return Entry{}, fmt.Errorf("%d space-separated columns, want at least 4", len(tok))
	}
	var e Entry
	pcr, err := strconv.ParseUint(tok[0], 10, 32)
	if err != nil || pcr > math.MaxInt32 {
		return Entry{}, fmt.Errorf("bad PCR index %q", short(tok[0]))
	}
	e.PCR = int(pcr)
	if len(tok[1]) != 2*hashSize {
		return Entry{}, fmt.Errorf("template hash has %d hex digits, want %d", len(tok[1]), 2*hashSize)
	}
	if e.TemplateHash, err = hex.DecodeString(tok[1]); err != nil {
		return Entry{}, fmt.Errorf("template hash: %v", err)
	}
	name, kinds, err := templateFields([]byte(tok[2]))
	if err != nil {
		return Entry{}, err
	}
	e.TemplateName = name
	fields := tok[3:]
	if len(fields) == len(kinds)-1 && (kinds[len(kinds)-1] == fieldSig || kinds[len(kinds)-1] == fieldBuf) {
		// An empty signature or buffer is shown as nothing after a
		// space; tolerate lists whose trailing space was trimmed.
		fields = append(fields, "")
	}
	if len(fields) != len(kinds) {
		return Entry{}, fmt.Errorf("template %s: %d fields, want %d", name, len(fields), len(kinds))
	}
	if name == TemplateIMA {
		e.TemplateData, err = legacyDataFromASCII(fields[0], fields[1])
	} else {
		e.TemplateData, err = dataFromASCII(kinds, fields)
	}
	if err != nil {
		return Entry{}, err
	}
	if err := e.decode(kinds); err != nil {
		return Entry{}, err
	}
	return e, nil
}

// dataFromASCII rebuilds the template data from the fields as shown.
func dataFromASCII(kinds []fieldKind, fields []string) ([]byte, error) {
	var data []byte
	for i, k := range kinds {
		f := fields[i]
		var v []byte
		switch k {
		case fieldDigestNG:
			c := strings.LastIndexByte(f, ':')
			if c < 1 {
				return nil, fmt.Errorf("field %d: digest %q lacks its \"algo:\" prefix", i, short(f))
			}
			d, err := hex.DecodeString(f[c+1:])
			if err != nil {
				return nil, fmt.Errorf("field %d: digest: %v", i, err)
			}
			v = make([]byte, 0, c+2+len(d))
			v = append(v, f[:c+1]...)
			v = append(v, 0)
			v = append(v, d...)
		case fieldDigest, fieldSig, fieldBuf:
			d, err := hex.DecodeString(f)
			if err != nil {
				return nil, fmt.Errorf("field %d: %v", i, err)
			}
			v = d
		case fieldName:
			v = append([]byte(f), 0)
		}
		if len(data)+4+len(v) > MaxTemplateDataLen {
			return nil, fmt.Errorf("template data exceeds %d bytes", MaxTemplateDataLen)
		}
		data = binary.LittleEndian.AppendUint32(data, uint32(len(v)))
		data = append(data, v...)
	}
	return data, nil
}

func legacyDataFromASCII(digest, name string) ([]byte, error) {
	d, err := hex.DecodeString(digest)
	if err != nil {
		return nil, fmt.Errorf("field 0: %v", err)
	}
	if len(d) != legacyDigestLen {
		return nil, fmt.Errorf("template ima: digest is %d bytes, want %d", len(d), legacyDigestLen)
	}
	if len(name) >= legacyNameLen {
		return nil, fmt.Errorf("template ima: name is %d bytes, want at most %d", len(name), legacyNameLen-1)
	}
	data := make([]byte, legacyDigestLen+legacyNameLen)
	copy(data, d)
	copy(data[legacyDigestLen:], name)
	return data, nil
}

func short(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}

func (r *Reader) nextBinary() (Entry, int64, error) {
	hashSize := r.logHashSize()
	h := r.scratch[:4+hashSize+4]
	if _, err := io.ReadFull(r.r, h); err != nil {
		if err == io.EOF {
			return Entry{}, 0, io.EOF
		}
		return Entry{}, 0, fmt.Errorf("header: %w", noEOF(err))
	}
	read := int64(len(h))
	var e Entry
	pcr := binary.LittleEndian.Uint32(h)
	if pcr > math.MaxInt32 {
		return Entry{}, 0, fmt.Errorf("bad PCR index %d", pcr)
	}
	e.PCR = int(pcr)
	nameLen := binary.LittleEndian.Uint32(h[4+hashSize:])
	if nameLen == 0 || nameLen > MaxTemplateNameLen {
		return Entry{}, 0, fmt.Errorf("template name length %d, want 1 to %d", nameLen, MaxTemplateNameLen)
	}
	nameBuf := r.scratch[len(h):][:nameLen]
	if _, err := io.ReadFull(r.r, nameBuf); err != nil {
		return Entry{}, 0, fmt.Errorf("template name: %w", noEOF(err))
	}
	read += int64(nameLen)
	name, kinds, err := templateFields(nameBuf)
	if err != nil {
		return Entry{}, 0, err
	}
	e.TemplateName = name

	var buf []byte // template hash, then template data: one allocation
	if name == TemplateIMA {
		// No data length; the digest without a length, then the name
		// with a length but without its NUL (IMA_SHOW_BINARY_*).
		// The name is known to be "ima" now, so its bytes can go.
		fix := r.scratch[len(h) : len(h)+legacyDigestLen+4]
		if _, err := io.ReadFull(r.r, fix); err != nil {
			return Entry{}, 0, fmt.Errorf("template ima: %w", noEOF(err))
		}
		n := binary.LittleEndian.Uint32(fix[legacyDigestLen:])
		if n >= legacyNameLen {
			return Entry{}, 0, fmt.Errorf("template ima: name length %d, want at most %d", n, legacyNameLen-1)
		}
		buf = make([]byte, hashSize+legacyDigestLen+legacyNameLen)
		copy(buf[hashSize:], fix[:legacyDigestLen])
		if _, err := io.ReadFull(r.r, buf[hashSize+legacyDigestLen:][:n]); err != nil {
			return Entry{}, 0, fmt.Errorf("template ima: name: %w", noEOF(err))
		}
		if bytes.IndexByte(buf[hashSize+legacyDigestLen:][:n], 0) >= 0 {
			return Entry{}, 0, errors.New("template ima: name contains a NUL")
		}
		read += int64(len(fix)) + int64(n)
	} else {
		l := r.scratch[len(h)+int(nameLen):][:4]
		if _, err := io.ReadFull(r.r, l); err != nil {
			return Entry{}, 0, fmt.Errorf("template data length: %w", noEOF(err))
		}
		n := binary.LittleEndian.Uint32(l)
		if n > MaxTemplateDataLen {
			return Entry{}, 0, fmt.Errorf("template data length %d exceeds %d", n, MaxTemplateDataLen)
		}
		buf, err = readN(r.r, hashSize, int(n))
		if err != nil {
			return Entry{}, 0, fmt.Errorf("template data: %w", noEOF(err))
		}
		read += 4 + int64(n)
	}
	copy(buf, h[4:4+hashSize])
	e.TemplateHash = buf[:hashSize:hashSize]
	e.TemplateData = buf[hashSize:]
	if err := e.decode(kinds); err != nil {
		return Entry{}, 0, err
	}
	return e, read, nil
}

// readN returns a buffer of prefix+n bytes whose last n are read from r.
// Large lengths are read in chunks, so a length that the input does not
// back allocates no more than the input holds.
func readN(r io.Reader, prefix, n int) ([]byte, error) {
	const chunk = 64 << 10
	if n <= chunk {
		buf := make([]byte, prefix+n)
		_, err := io.ReadFull(r, buf[prefix:])
		return buf, err
	}
	buf := make([]byte, prefix, prefix+chunk)
	for len(buf) < prefix+n {
		m := min(chunk, prefix+n-len(buf))
		buf = append(buf, make([]byte, m)...)
		if _, err := io.ReadFull(r, buf[len(buf)-m:]); err != nil {
			return nil, err
		}
	}
	return buf, nil
}

// noEOF turns an EOF inside an entry into io.ErrUnexpectedEOF.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
