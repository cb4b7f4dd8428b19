package s3

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"hash/crc32"
	"io"
	"strconv"
	"strings"
)

// A request's body is checked as the proxy reads it, against the hash
// its x-amz-content-sha256 promised, the signatures of its chunks
// (aws-chunked) or its checksum. A failed check is a read error before
// the body's end, which the proxy turns into an aborted upload: nothing
// is stored.

const (
	streamingSigned   = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	streamingUnsigned = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
	emptySHA256       = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)

// checkedBody is a request's body as it is checked; err is the first
// check that failed, which the answer reports.
type checkedBody struct {
	r   io.Reader
	err error
}

func (b *checkedBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF && b.err == nil {
		b.err = err
	}
	return n, err
}

// failed returns the error of the body's check, if one failed, else err.
func (b *checkedBody) failed(err error) error {
	if b.err != nil {
		return b.err
	}
	return err
}

// checkPayload sets q's body up to be checked against payload (the
// x-amz-content-sha256 the signature covers), with the request's
// signing key for chunk signatures, and its x-amz-checksum-* header.
func (h *Handler) checkPayload(q *request, payload string, key []byte, sig *signature) error {
	body := io.Reader(q.Body)
	q.length = q.ContentLength
	switch {
	case payload == unsignedPayload:
	case payload == streamingSigned || payload == streamingUnsigned:
		decoded, err := strconv.ParseInt(q.Header.Get("X-Amz-Decoded-Content-Length"), 10, 64)
		if err != nil || decoded < 0 {
			return errorf("MissingContentLength", "You must provide the X-Amz-Decoded-Content-Length HTTP header.")
		}
		c := &chunkReader{r: bufio.NewReader(q.Body), left: -1, want: decoded}
		if payload == streamingSigned {
			c.prefix = "AWS4-HMAC-SHA256-PAYLOAD\n" + sig.amzDate + "\n" + sig.scope() + "\n"
			c.key, c.previous = key, sig.signature
		}
		if name := q.Header.Get("X-Amz-Trailer"); name != "" {
			if c.checksum = newChecksum(name); c.checksum == nil {
				return errorf("InvalidArgument", "The trailer %s is not supported.", name)
			}
			c.trailer = strings.ToLower(name)
		}
		body, q.length = c, decoded
	case strings.HasPrefix(payload, "STREAMING-"):
		return errorf("NotImplemented", "The payload %s is not supported: send %s, %s, %s or the payload's SHA-256.", payload, unsignedPayload, streamingSigned, streamingUnsigned)
	default:
		if _, err := hex.DecodeString(payload); err != nil || len(payload) != 64 {
			return errorf("InvalidArgument", "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-* or a SHA-256 in hexadecimal.")
		}
		if q.ContentLength == 0 && payload != emptySHA256 {
			return errorf("XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match what was computed.")
		}
		body = &digestReader{r: body, hash: sha256.New(), want: payload, encode: hex.EncodeToString,
			err: errorf("XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match what was computed.")}
	}
	for name, values := range q.Header {
		algo, ok := strings.CutPrefix(name, "X-Amz-Checksum-")
		if !ok || algo == "Algorithm" || algo == "Type" {
			continue
		}
		sum := newChecksum(name)
		if sum == nil {
			return errorf("InvalidArgument", "The checksum %s is not supported.", name)
		}
		body = &digestReader{r: body, hash: sum, want: values[0], encode: base64.StdEncoding.EncodeToString,
			err: errorf("BadDigest", "The %s you specified did not match the calculated checksum.", strings.ToLower(name))}
	}
	q.body = &checkedBody{r: body}
	return nil
}

// newChecksum returns the hash of an x-amz-checksum-* header, nil for
// one not supported.
func newChecksum(name string) hash.Hash {
	switch strings.ToLower(name) {
	case "x-amz-checksum-crc32":
		return crc32.NewIEEE()
	case "x-amz-checksum-crc32c":
		return crc32.New(crc32.MakeTable(crc32.Castagnoli))
	case "x-amz-checksum-sha1":
		return sha1.New()
	case "x-amz-checksum-sha256":
		return sha256.New()
	}
	return nil
}

// digestReader reads r, failing with err in place of its end if what
// it read does not hash (encoded) to want.
type digestReader struct {
	r      io.Reader
	hash   hash.Hash
	want   string
	encode func([]byte) string
	err    error
}

func (d *digestReader) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	d.hash.Write(p[:n])
	if err == io.EOF && d.encode(d.hash.Sum(nil)) != d.want {
		return n, d.err
	}
	return n, err
}

// chunkReader decodes an aws-chunked body: chunks of
// <hex size>[;chunk-signature=<hex>]\r\n<data>\r\n, the last empty, then
// trailers and an empty line. With a key, each chunk's signature is
// checked, chained from the request's; with a trailer, the content's
// checksum that trailer gives.
type chunkReader struct {
	r        *bufio.Reader
	left     int64 // of the current chunk; -1 before the first
	want     int64 // the decoded length announced
	read     int64
	key      []byte
	prefix   string // of each chunk's string to sign
	previous string // the previous signature
	claimed  string // the current chunk's signature
	chunk    hash.Hash
	checksum hash.Hash
	trailer  string
	done     bool
}

var errIncomplete = errorf("IncompleteBody", "The aws-chunked body is malformed or ended early.")

func (c *chunkReader) Read(p []byte) (int, error) {
	if c.done {
		return 0, io.EOF
	}
	if c.left <= 0 {
		if err := c.next(); err != nil {
			return 0, err
		}
		if c.done {
			return 0, io.EOF
		}
	}
	n, err := c.r.Read(p[:min(int64(len(p)), c.left)])
	c.left -= int64(n)
	c.read += int64(n)
	c.chunk.Write(p[:n])
	if c.checksum != nil {
		c.checksum.Write(p[:n])
	}
	if err == io.EOF {
		return n, errIncomplete
	}
	return n, err
}

// next ends the current chunk (checking its signature) and starts the
// next; after the last, it reads the trailers and sets done.
func (c *chunkReader) next() error {
	if c.left == 0 {
		if err := c.endChunk(); err != nil {
			return err
		}
	}
	line, err := c.line()
	if err != nil {
		return err
	}
	size, ext, _ := strings.Cut(line, ";")
	n, err := strconv.ParseInt(size, 16, 64)
	if err != nil || n < 0 {
		return errIncomplete
	}
	c.claimed = strings.TrimPrefix(ext, "chunk-signature=")
	c.left, c.chunk = n, sha256.New()
	if n > 0 {
		return nil
	}
	if err := c.checkSignature(); err != nil {
		return err
	}
	if err := c.trailers(); err != nil {
		return err
	}
	if c.read != c.want {
		return errIncomplete
	}
	c.done = true
	return nil
}

// endChunk reads the CRLF after a chunk's data and checks its signature.
func (c *chunkReader) endChunk() error {
	if line, err := c.line(); err != nil || line != "" {
		return errIncomplete
	}
	return c.checkSignature()
}

// checkSignature checks the chunk just read against its signature, if
// the body is signed.
func (c *chunkReader) checkSignature() error {
	if c.key == nil {
		return nil
	}
	want := hex.EncodeToString(hmacSHA256(c.key, c.prefix+c.previous+"\n"+emptySHA256+"\n"+hex.EncodeToString(c.chunk.Sum(nil))))
	if !hmac.Equal([]byte(want), []byte(c.claimed)) {
		return errorf("SignatureDoesNotMatch", "The signature of a chunk of the body does not match.")
	}
	c.previous = want
	return nil
}

// trailers reads the trailers up to the empty line, checking the
// checksum's.
func (c *chunkReader) trailers() error {
	for {
		line, err := c.line()
		if err != nil {
			return err
		}
		if line == "" {
			if c.trailer != "" {
				return errorf("InvalidRequest", "The trailer %s was announced but not sent.", c.trailer)
			}
			return nil
		}
		name, value, _ := strings.Cut(line, ":")
		if strings.ToLower(strings.TrimSpace(name)) == c.trailer && c.checksum != nil {
			if base64.StdEncoding.EncodeToString(c.checksum.Sum(nil)) != strings.TrimSpace(value) {
				return errorf("BadDigest", "The %s you specified did not match the calculated checksum.", c.trailer)
			}
			c.trailer = ""
		}
	}
}

// line reads a line ending in CRLF, without it.
func (c *chunkReader) line() (string, error) {
	line, err := c.r.ReadString('\n')
	if err != nil || len(line) > 4096 {
		return "", errIncomplete
	}
	return strings.TrimRight(line, "\r\n"), nil
}
