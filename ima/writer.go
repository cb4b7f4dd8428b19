package ima

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
)

// check returns the fields of e's template after checking that e can be
// written: a known template, template data the kernel could have written,
// and a PCR index and template hash that fit.
func (e *Entry) check() ([]fieldKind, error) {
	_, kinds, err := templateFields([]byte(e.TemplateName))
	if err != nil {
		return nil, err
	}
	if e.PCR < 0 || e.PCR > math.MaxInt32 {
		return nil, fmt.Errorf("PCR index %d out of range", e.PCR)
	}
	if _, ok := logHashFor(len(e.TemplateHash)); !ok {
		return nil, fmt.Errorf("template hash of %d bytes", len(e.TemplateHash))
	}
	if len(e.TemplateData) > MaxTemplateDataLen {
		return nil, fmt.Errorf("template data of %d bytes exceeds %d", len(e.TemplateData), MaxTemplateDataLen)
	}
	// Decode a copy, so that writing never changes e.
	c := Entry{TemplateName: e.TemplateName, TemplateData: e.TemplateData}
	if err := c.decode(kinds); err != nil {
		return nil, err
	}
	return kinds, nil
}

// AppendBinary appends e as the kernel writes it to
// binary_runtime_measurements (little-endian).
func (e *Entry) AppendBinary(b []byte) ([]byte, error) {
	if _, err := e.check(); err != nil {
		return b, fmt.Errorf("ima: write binary: %w", err)
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(e.PCR))
	b = append(b, e.TemplateHash...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(e.TemplateName)))
	b = append(b, e.TemplateName...)
	if e.TemplateName == TemplateIMA {
		name := e.TemplateData[legacyDigestLen:]
		name = name[:bytes.IndexByte(name, 0)]
		b = append(b, e.TemplateData[:legacyDigestLen]...)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(name)))
		return append(b, name...), nil
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(e.TemplateData)))
	return append(b, e.TemplateData...), nil
}

// AppendASCII appends e as the kernel writes it to
// ascii_runtime_measurements, newline included. It fails for a name the
// ASCII list cannot show unambiguously (one with a space or a newline,
// which the kernel never writes).
func (e *Entry) AppendASCII(b []byte) ([]byte, error) {
	kinds, err := e.check()
	if err != nil {
		return b, fmt.Errorf("ima: write ascii: %w", err)
	}
	if e.PCR < 10 {
		b = append(b, ' ') // "%2d"
	}
	b = strconv.AppendInt(b, int64(e.PCR), 10)
	b = append(b, ' ')
	b = hex.AppendEncode(b, e.TemplateHash)
	b = append(b, ' ')
	b = append(b, e.TemplateName...)
	data := e.TemplateData
	if e.TemplateName == TemplateIMA {
		name := data[legacyDigestLen:]
		name = name[:bytes.IndexByte(name, 0)]
		if bytes.ContainsAny(name, " \n") {
			return b, errors.New("ima: write ascii: name contains a space or a newline")
		}
		b = append(b, ' ')
		b = hex.AppendEncode(b, data[:legacyDigestLen])
		b = append(b, ' ')
		b = append(b, name...)
		return append(b, '\n'), nil
	}
	for _, k := range kinds {
		n := binary.LittleEndian.Uint32(data)
		f := data[4 : 4+n]
		data = data[4+n:]
		b = append(b, ' ')
		switch k {
		case fieldDigestNG:
			z := bytes.IndexByte(f, 0)
			b = append(b, f[:z]...)
			b = hex.AppendEncode(b, f[z+1:])
		case fieldDigest, fieldSig, fieldBuf:
			b = hex.AppendEncode(b, f)
		case fieldName:
			name := f[:len(f)-1]
			if bytes.ContainsAny(name, " \n") {
				return b, errors.New("ima: write ascii: name contains a space or a newline")
			}
			b = append(b, name...)
		}
	}
	return append(b, '\n'), nil
}

// WriteBinary writes entries as a binary_runtime_measurements list.
func WriteBinary(w io.Writer, entries []Entry) error {
	return write(w, entries, (*Entry).AppendBinary)
}

// WriteASCII writes entries as an ascii_runtime_measurements list.
func WriteASCII(w io.Writer, entries []Entry) error {
	return write(w, entries, (*Entry).AppendASCII)
}

func write(w io.Writer, entries []Entry, appendEntry func(*Entry, []byte) ([]byte, error)) error {
	bw := bufio.NewWriter(w)
	var buf []byte
	for i := range entries {
		var err error
		buf, err = appendEntry(&entries[i], buf[:0])
		if err != nil {
			return fmt.Errorf("entry %d: %w", i, err)
		}
		if _, err := bw.Write(buf); err != nil {
			return err
		}
	}
	return bw.Flush()
}
