package proxy

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Large objects are made of segments, objects of their own: a dynamic
// large object (DLO) is a manifest naming a container and a prefix (X-
// Object-Manifest), its segments the objects listed under the prefix; a
// static large object (SLO) is a manifest listing its segments with
// their ETags and sizes, checked when it is stored. A GET of either reads
// the segments in turn, as one object whose ETag is the MD5 of their
// ETags (quoted, as Swift's); ?multipart-manifest=get reads the manifest
// itself.

// segment is one segment of a large object.
type segment struct {
	Name         string `json:"name"` // /container/object
	Hash         string `json:"hash"`
	Bytes        int64  `json:"bytes"`
	ContentType  string `json:"content_type,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
}

// maxSegments bounds the segments of a static large object, as Swift's
// max_manifest_segments.
const maxSegments = 1000

// isManifest reports whether a node's answer about an object is a large
// object's manifest.
func isManifest(h http.Header) bool {
	return h.Get("X-Object-Manifest") != "" || strings.EqualFold(h.Get("X-Static-Large-Object"), "true")
}

// getLarge answers GET or HEAD of a large object, from its manifest
// (manifest: the node's answer to a plain GET of it): ranges and
// conditions apply to the whole, read segment by segment.
func (p *Proxy) getLarge(w http.ResponseWriter, r *http.Request, t target, manifest *http.Response) {
	segs, err := p.segments(r.Context(), t, manifest)
	if err != nil {
		status := http.StatusConflict
		if errors.Is(err, errTooManySegments) {
			status = http.StatusBadRequest
		}
		swiftError(w, r, status, err.Error())
		return
	}
	clientHeaders(w.Header(), manifest.Header, callerOf(r).inProcess)
	sum := md5.New()
	var size int64
	for _, s := range segs {
		sum.Write([]byte(s.Hash))
		size += s.Bytes
	}
	w.Header().Set("Etag", `"`+hex.EncodeToString(sum.Sum(nil))+`"`)
	w.Header().Del("Content-Length")
	w.Header().Del("Content-Range")
	modified, _ := http.ParseTime(manifest.Header.Get("Last-Modified"))
	http.ServeContent(w, r, "", modified, &segmentReader{ctx: r.Context(), p: p, account: t.account, segs: segs, size: size})
}

// errTooManySegments is segments' error for a dynamic large object with
// more segments than maxSegments.
var errTooManySegments = fmt.Errorf("a large object of more than %d segments", maxSegments)

// segments returns a large object's segments from its manifest.
func (p *Proxy) segments(ctx context.Context, t target, manifest *http.Response) ([]segment, error) {
	if prefix := manifest.Header.Get("X-Object-Manifest"); prefix != "" {
		c, pre, _ := strings.Cut(unescape(prefix), "/")
		return p.listSegments(ctx, target{account: t.account, container: c}, pre)
	}
	var segs []segment
	body, err := io.ReadAll(io.LimitReader(manifest.Body, maxReplyBody))
	if err == nil {
		err = json.Unmarshal(body, &segs)
	}
	if err != nil {
		return nil, fmt.Errorf("the manifest of %s cannot be read: %v", t.object, err)
	}
	return segs, nil
}

// listSegments lists the objects of container c under prefix, as the
// segments of a dynamic large object, in name order.
func (p *Proxy) listSegments(ctx context.Context, c target, prefix string) ([]segment, error) {
	var segs []segment
	marker := ""
	for {
		q := url.Values{"format": {"json"}, "prefix": {prefix}, "marker": {marker}}
		rg, part := p.ringOf(c)
		rep := p.readFirst(ctx, rg, part, http.MethodGet, c.path()+"?"+q.Encode(), nil)
		if rep.status == http.StatusNotFound {
			return nil, nil // no container: no segments, an empty object
		}
		if rep.status != http.StatusOK {
			return nil, fmt.Errorf("the segments' container %s could not be listed (status %d)", c.container, rep.status)
		}
		var page []entry
		if err := json.Unmarshal(rep.body, &page); err != nil {
			return nil, fmt.Errorf("the segments' listing cannot be read: %v", err)
		}
		for _, e := range page {
			segs = append(segs, segment{Name: "/" + c.container + "/" + e.Name, Hash: e.Hash, Bytes: e.Bytes})
		}
		if len(segs) > maxSegments {
			return nil, errTooManySegments
		}
		if len(page) == 0 {
			return segs, nil
		}
		marker = page[len(page)-1].Name
	}
}

// segmentReader reads a large object's content from its segments, as an
// io.ReadSeeker that http.ServeContent serves ranges of: each Read after
// a Seek opens the segment at the offset, from the first replica that
// has it, and checks it is the version the manifest names (its ETag).
type segmentReader struct {
	ctx     context.Context
	p       *Proxy
	account string
	segs    []segment
	size    int64
	off     int64
	body    io.ReadCloser // the open segment's rest, nil after a Seek
}

func (s *segmentReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += s.off
	case io.SeekEnd:
		offset += s.size
	}
	if offset < 0 {
		return 0, errors.New("seek before the start")
	}
	if offset != s.off && s.body != nil {
		s.body.Close()
		s.body = nil
	}
	s.off = offset
	return offset, nil
}

func (s *segmentReader) Read(b []byte) (int, error) {
	for {
		if s.off >= s.size {
			if s.body != nil {
				s.body.Close()
			}
			return 0, io.EOF
		}
		if s.body == nil {
			if err := s.open(); err != nil {
				return 0, err
			}
		}
		n, err := s.body.Read(b)
		s.off += int64(n)
		if err == io.EOF {
			s.body.Close()
			s.body = nil
			err = nil
		}
		if n > 0 || err != nil {
			return n, err
		}
	}
}

// open opens the segment that holds the reader's offset, from it on.
func (s *segmentReader) open() error {
	start := int64(0)
	for _, seg := range s.segs {
		if s.off >= start+seg.Bytes {
			start += seg.Bytes
			continue
		}
		c, o, _ := strings.Cut(strings.TrimPrefix(seg.Name, "/"), "/")
		req, _ := http.NewRequestWithContext(s.ctx, http.MethodGet, "/", nil)
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", s.off-start))
		req.Header.Set("If-Match", `"`+seg.Hash+`"`)
		resp, _, status := s.p.openObject(s.ctx, req, target{account: s.account, container: c, object: o})
		if resp == nil {
			return fmt.Errorf("segment %s of a large object cannot be read (status %d)", seg.Name, status)
		}
		if resp.StatusCode != http.StatusPartialContent && resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return fmt.Errorf("segment %s of a large object changed or cannot be read (status %d)", seg.Name, resp.StatusCode)
		}
		s.body = resp.Body
		return nil
	}
	return io.EOF
}

// putManifest stores a static large object's manifest (PUT with
// ?multipart-manifest=put): the segments the client lists, each of its
// own account, checked to exist with the ETag and size given, stored with
// what they are, and the manifest answered with the large object's ETag.
func (p *Proxy) putManifest(w http.ResponseWriter, r *http.Request, t target) {
	var items []struct {
		Path      string  `json:"path"`
		Etag      *string `json:"etag"`
		SizeBytes *int64  `json:"size_bytes"`
		Range     string  `json:"range"`
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 2<<20+1))
	switch {
	case err != nil:
		swiftError(w, r, http.StatusBadRequest, "the manifest could not be read")
		return
	case len(body) > 2<<20:
		swiftError(w, r, http.StatusRequestEntityTooLarge, "manifest too large")
		return
	}
	if err := json.Unmarshal(body, &items); err != nil || len(items) == 0 || len(items) > maxSegments {
		swiftError(w, r, http.StatusBadRequest, fmt.Sprintf("Manifest must be a JSON list of 1 to %d segments, each {\"path\": \"/container/object\", \"etag\": ..., \"size_bytes\": ...}", maxSegments))
		return
	}
	var problems []string
	segs := make([]segment, len(items))
	sum := md5.New()
	var total int64
	for i, it := range items {
		c, o, ok := strings.Cut(strings.TrimPrefix(it.Path, "/"), "/")
		if !ok || c == "" || o == "" || it.Range != "" {
			problems = append(problems, fmt.Sprintf("%s: want /container/object, without a range", it.Path))
			continue
		}
		head, _ := http.NewRequestWithContext(r.Context(), http.MethodHead, "/", nil)
		resp, _, status := p.openObject(r.Context(), head, target{account: t.account, container: c, object: o})
		if resp == nil {
			problems = append(problems, fmt.Sprintf("%s: %d %s", it.Path, status, http.StatusText(status)))
			continue
		}
		resp.Body.Close()
		etag := trimQuotes(resp.Header.Get("Etag"))
		size, _ := strconv.ParseInt(resp.Header.Get("Content-Length"), 10, 64)
		switch {
		case resp.StatusCode != http.StatusOK:
			problems = append(problems, fmt.Sprintf("%s: %d %s", it.Path, resp.StatusCode, http.StatusText(resp.StatusCode)))
		case isManifest(resp.Header):
			problems = append(problems, it.Path+": a segment cannot be a large object itself")
		case it.Etag != nil && trimQuotes(*it.Etag) != etag:
			problems = append(problems, fmt.Sprintf("%s: Etag Mismatch", it.Path))
		case it.SizeBytes != nil && *it.SizeBytes != size:
			problems = append(problems, fmt.Sprintf("%s: Size Mismatch", it.Path))
		case size < 1 && i < len(items)-1:
			problems = append(problems, fmt.Sprintf("%s: Too Small; each segment but the last must be at least 1 byte", it.Path))
		}
		segs[i] = segment{Name: "/" + c + "/" + o, Hash: etag, Bytes: size, ContentType: resp.Header.Get("Content-Type"), LastModified: resp.Header.Get("Last-Modified")}
		sum.Write([]byte(etag))
		total += size
	}
	if len(problems) > 0 {
		swiftError(w, r, http.StatusBadRequest, "Errors:\n"+strings.Join(problems, "\n"))
		return
	}
	etag := hex.EncodeToString(sum.Sum(nil))
	if want := r.Header.Get("Etag"); want != "" && trimQuotes(want) != etag {
		swiftError(w, r, http.StatusUnprocessableEntity, "the Etag given is not the large object's (the MD5 of its segments' ETags)")
		return
	}
	stored, _ := json.Marshal(segs)
	base := http.Header{"X-Static-Large-Object": {"True"}, "X-Object-Sysmeta-Slo-Size": {strconv.FormatInt(total, 10)},
		// Listed as the large object: its size and ETag.
		"X-Backend-Container-Update-Override-Size": {strconv.FormatInt(total, 10)},
		"X-Backend-Container-Update-Override-Etag": {etag}}
	p.putObject(w, r, t, bytes.NewReader(stored), int64(len(stored)), base, `"`+etag+`"`)
}

// deleteLarge deletes a static large object and its segments (DELETE
// with ?multipart-manifest=delete), answering as Swift's bulk delete.
func (p *Proxy) deleteLarge(w http.ResponseWriter, r *http.Request, t target) {
	get, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, "/", nil)
	resp, _, status := p.openObject(r.Context(), get, t)
	if resp == nil {
		p.answer(w, r, status, nil)
		return
	}
	defer resp.Body.Close()
	var segs []segment
	if strings.EqualFold(resp.Header.Get("X-Static-Large-Object"), "true") {
		var err error
		if segs, err = p.segments(r.Context(), t, resp); err != nil {
			swiftError(w, r, http.StatusConflict, err.Error())
			return
		}
	}
	deleted, missing := 0, 0
	var failed [][2]string
	for _, s := range append(segs, segment{Name: "/" + t.container + "/" + t.object}) {
		c, o, _ := strings.Cut(strings.TrimPrefix(s.Name, "/"), "/")
		switch st := p.writeObject(r.Context(), target{account: t.account, container: c, object: o}, http.MethodDelete, http.Header{}); {
		case st/100 == 2:
			deleted++
		case st == http.StatusNotFound:
			missing++
		default:
			failed = append(failed, [2]string{s.Name, strconv.Itoa(st) + " " + http.StatusText(st)})
		}
	}
	status = http.StatusOK
	if len(failed) > 0 {
		status = http.StatusBadGateway
	}
	writeBulkResult(w, r, deleted, missing, status, failed)
}
