package images

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
)

// DefaultChunkSize is the size of the segments of large images in the
// object store, Glance's swift_store_large_object_chunk_size: 200 MiB.
const DefaultChunkSize = 200 << 20

// maxSegments is the most segments a static large object may have in the
// object store (Swift's max_manifest_segments).
const maxSegments = 1000

// ObjectStore is a Swift API in which Objects keeps image data, as
// Glance's single-tenant Swift store does: each image an object named by
// its ID in Container of one account; an image larger than ChunkSize (or
// of unknown size) as segments in Container+"_segments", named
// <image ID>/<number>, and a static large object's manifest listing them.
type ObjectStore struct {
	// Handler serves the Swift API (/v1/<account>/...), as
	// objectstore/proxy.Proxy does, in-process: no request goes over
	// the network.
	Handler http.Handler
	// Access returns the account the images are kept in and who makes
	// the requests. It is asked at the first request, and at the next
	// ones until it succeeds: the account's project may not exist yet
	// when the service is built.
	Access func(context.Context) (ObjectAccess, error)
	// Container holds the images (default "glance").
	Container string
	// ChunkSize is the size of the segments of large images (default
	// DefaultChunkSize).
	ChunkSize int64
}

// ObjectAccess is how the image service reaches its account.
type ObjectAccess struct {
	// Account is the account's name, such as AUTH_<project ID>.
	Account string
	// AsCaller returns ctx carrying who the Handler serves a request
	// made with it as (for the proxy, proxy.AsCaller with a token).
	AsCaller func(ctx context.Context) context.Context
}

// objects keeps image data in an object store.
type objects struct {
	cfg      ObjectStore
	segments string // the segments' container

	mu     sync.Mutex
	access *ObjectAccess // nil until Access succeeds
	ready  bool          // the containers exist
}

var _ DataStore = (*objects)(nil)

// Objects returns a DataStore that keeps image data in the object store
// cfg names. Controllers sharing a database and an object store share
// their images.
func Objects(cfg ObjectStore) DataStore {
	if cfg.Container == "" {
		cfg.Container = "glance"
	}
	if cfg.ChunkSize <= 0 {
		cfg.ChunkSize = DefaultChunkSize
	}
	return &objects{cfg: cfg, segments: cfg.Container + "_segments"}
}

// reach returns the access to the account, asking for it the first time.
func (o *objects) reach(ctx context.Context) (ObjectAccess, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.access == nil {
		a, err := o.cfg.Access(ctx)
		if err != nil {
			return ObjectAccess{}, fmt.Errorf("reach the image store's account: %w", err)
		}
		o.access = &a
	}
	return *o.access, nil
}

// request makes a request on path (<container>[/<object>][?query]) of
// the account, with body of length bytes (-1: unknown, sent in chunks),
// and returns the response once the handler has answered, its body
// streaming. The caller closes the body.
func (o *objects) request(ctx context.Context, method, path string, header http.Header, body io.Reader, length int64) (*http.Response, error) {
	a, err := o.reach(ctx)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(a.AsCaller(ctx), method, "http://object-store/v1/"+url.PathEscape(a.Account)+"/"+path, body)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if body == nil {
		req.Body = http.NoBody // as a server's request has
	} else {
		req.ContentLength = length
		if length < 0 {
			req.TransferEncoding = []string{"chunked"}
		}
	}
	return serveInProcess(o.cfg.Handler, req), nil
}

// statusError is an unexpected answer of the object store.
func statusError(what string, resp *http.Response) error {
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return fmt.Errorf("%s: the object store answered %d %s", what, resp.StatusCode, bytes.TrimSpace(msg))
}

// call makes a request without a body to read and checks its status is
// one of ok.
func (o *objects) call(ctx context.Context, what, method, path string, body []byte, ok ...int) error {
	resp, err := o.request(ctx, method, path, nil, bytes.NewReader(body), int64(len(body)))
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer resp.Body.Close()
	for _, s := range ok {
		if resp.StatusCode == s {
			return nil
		}
	}
	return statusError(what, resp)
}

func (o *objects) imagePath(id string) string { return url.PathEscape(o.cfg.Container) + "/" + id }

// segmentName is the name of segment n (from 1) of image id.
func segmentName(id string, n int) string { return fmt.Sprintf("%s/%08d", id, n) }

func (o *objects) segmentPath(name string) string { return url.PathEscape(o.segments) + "/" + name }

// ensureContainers makes the containers, once they are made.
func (o *objects) ensureContainers(ctx context.Context) error {
	o.mu.Lock()
	ready := o.ready
	o.mu.Unlock()
	if ready {
		return nil
	}
	for _, c := range []string{o.cfg.Container, o.segments} {
		if err := o.call(ctx, "create container "+c, http.MethodPut, url.PathEscape(c), nil, http.StatusCreated, http.StatusAccepted); err != nil {
			return err
		}
	}
	o.mu.Lock()
	o.ready = true
	o.mu.Unlock()
	return nil
}

// create starts an upload: one object if size is known to fit in a
// chunk, segments otherwise.
func (o *objects) create(ctx context.Context, id string, size int64) (dataWriter, error) {
	if err := o.ensureContainers(ctx); err != nil {
		return nil, err
	}
	return &objectUpload{o: o, ctx: ctx, id: id, single: size > 0 && size <= o.cfg.ChunkSize, size: size}, nil
}

// objectUpload streams an image to the object store: to the object
// itself when it fits in one (single), else chunk by chunk to segments
// and, on commit, to the manifest listing them. A failed or aborted
// upload deletes the segments it wrote.
type objectUpload struct {
	o      *objects
	ctx    context.Context
	id     string
	single bool
	size   int64 // announced, for a single object

	segs    []manifestEntry // the segments written
	cur     *objectPut      // the object or segment being written
	curSize int64
}

// manifestEntry is a segment of a static large object's manifest.
type manifestEntry struct {
	Path      string `json:"path"`
	Etag      string `json:"etag"`
	SizeBytes int64  `json:"size_bytes"`
}

func (u *objectUpload) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if u.cur == nil {
			if err := u.next(); err != nil {
				return n, err
			}
		}
		chunk := p
		if room := u.o.cfg.ChunkSize - u.curSize; !u.single && int64(len(chunk)) > room {
			chunk = chunk[:room]
		}
		k, err := u.cur.body.Write(chunk)
		n, u.curSize, p = n+k, u.curSize+int64(k), p[k:]
		if err != nil {
			if _, answer := u.endObject(); answer != nil {
				err = answer // why the object store stopped taking data
			}
			return n, err
		}
		if !u.single && u.curSize == u.o.cfg.ChunkSize {
			if err := u.endSegment(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// next starts writing the object, or the next segment.
func (u *objectUpload) next() error {
	if u.single {
		u.cur = u.o.startPut(u.ctx, u.o.imagePath(u.id), u.size)
		return nil
	}
	if len(u.segs) == maxSegments {
		return limitExceeded("The image is too large for the object store: at most %d segments of %d bytes.", maxSegments, u.o.cfg.ChunkSize)
	}
	u.cur = u.o.startPut(u.ctx, u.o.segmentPath(segmentName(u.id, len(u.segs)+1)), -1)
	u.curSize = 0
	return nil
}

// endObject ends the object or segment being written and returns its
// ETag.
func (u *objectUpload) endObject() (string, error) {
	put := u.cur
	u.cur = nil
	return put.end()
}

// endSegment ends the segment being written and lists it.
func (u *objectUpload) endSegment() error {
	size := u.curSize
	etag, err := u.endObject()
	if err != nil {
		return err
	}
	u.segs = append(u.segs, manifestEntry{Path: "/" + u.o.segments + "/" + segmentName(u.id, len(u.segs)+1), Etag: etag, SizeBytes: size})
	return nil
}

func (u *objectUpload) commit() error {
	if u.single || (u.cur == nil && len(u.segs) == 0) { // one object, maybe empty
		if u.cur == nil {
			u.cur = u.o.startPut(u.ctx, u.o.imagePath(u.id), 0)
		}
		_, err := u.endObject()
		return err
	}
	if u.cur != nil {
		if err := u.endSegment(); err != nil {
			u.abort()
			return err
		}
	}
	manifest, _ := json.Marshal(u.segs)
	if err := u.o.call(u.ctx, "store the manifest of image "+u.id, http.MethodPut, u.o.imagePath(u.id)+"?multipart-manifest=put", manifest, http.StatusCreated); err != nil {
		u.abort()
		return err
	}
	return nil
}

// abort breaks off the object being written, which the object store
// then does not keep, and deletes the segments written.
func (u *objectUpload) abort() {
	if u.cur != nil {
		u.cur.body.CloseWithError(errUploadAborted)
		u.endObject()
	}
	// Whoever gave up on the upload, its segments must go.
	ctx := context.WithoutCancel(u.ctx)
	for i := range u.segs {
		u.o.deleteSegment(ctx, segmentName(u.id, i+1))
	}
	u.segs = nil
}

var errUploadAborted = errors.New("the image upload was aborted")

// objectPut is a PUT of one object in progress, its body written
// through a pipe.
type objectPut struct {
	body   *io.PipeWriter
	what   string
	answer chan putAnswer
}

type putAnswer struct {
	etag string
	err  error
}

// errAnswered is the error of a write to a PUT's body after the object
// store answered it: it takes no more.
var errAnswered = errors.New("the object store answered before the end of the data")

// startPut starts a PUT of path whose body is written to the objectPut,
// length bytes (-1: unknown).
func (o *objects) startPut(ctx context.Context, path string, length int64) *objectPut {
	pr, pw := io.Pipe()
	put := &objectPut{body: pw, what: "store " + path, answer: make(chan putAnswer, 1)}
	go func() {
		var a putAnswer
		resp, err := o.request(ctx, http.MethodPut, path, nil, pr, length)
		switch {
		case err != nil:
			a.err = fmt.Errorf("%s: %w", put.what, err)
		case resp.StatusCode == http.StatusCreated:
			a.etag = strings.Trim(resp.Header.Get("Etag"), `"`)
		case resp.StatusCode == http.StatusRequestEntityTooLarge || resp.StatusCode == http.StatusInsufficientStorage:
			a.err = fmt.Errorf("%w: %w", limitExceeded("Image storage is full."), statusError(put.what, resp))
		default:
			a.err = statusError(put.what, resp)
		}
		if resp != nil {
			resp.Body.Close()
		}
		pr.CloseWithError(errAnswered)
		put.answer <- a
	}()
	return put
}

// end ends the body and returns the object's ETag once stored.
func (p *objectPut) end() (string, error) {
	p.body.Close()
	a := <-p.answer
	return a.etag, a.err
}

// open returns a reader of the image's object, which gets its size first
// (an error if it has none) and its content when read.
func (o *objects) open(ctx context.Context, id string) (io.ReadSeekCloser, error) {
	resp, err := o.request(ctx, http.MethodHead, o.imagePath(id), nil, nil, 0)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return nil, fmt.Errorf("image %s: %w in the object store", id, fs.ErrNotExist)
	default:
		return nil, statusError("read image "+id, resp)
	}
	size, err := strconv.ParseInt(resp.Header.Get("Content-Length"), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("read image %s: the object store gave no size", id)
	}
	return &objectReader{o: o, ctx: ctx, path: o.imagePath(id), size: size}, nil
}

// objectReader reads an object as an io.ReadSeeker, which
// http.ServeContent serves ranges of: a Read after a Seek gets the
// object from the offset on. Content shorter than the object's size is
// an error, not an end: the object store breaks off a read it cannot
// finish.
type objectReader struct {
	o    *objects
	ctx  context.Context
	path string
	size int64
	off  int64
	body io.ReadCloser // the object from off on; nil after a Seek
}

func (r *objectReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		offset += r.off
	case io.SeekEnd:
		offset += r.size
	}
	if offset < 0 {
		return 0, errors.New("seek before the start of the image")
	}
	if offset != r.off {
		r.Close()
	}
	r.off = offset
	return offset, nil
}

func (r *objectReader) Read(p []byte) (int, error) {
	if r.off >= r.size {
		return 0, io.EOF
	}
	if r.body == nil {
		if err := r.get(); err != nil {
			return 0, err
		}
	}
	n, err := r.body.Read(p)
	r.off += int64(n)
	switch {
	case err == io.EOF && r.off < r.size:
		err = fmt.Errorf("read %s: %w at byte %d of %d", r.path, io.ErrUnexpectedEOF, r.off, r.size)
	case err != nil && err != io.EOF:
		err = fmt.Errorf("read %s: %w", r.path, err)
	}
	return n, err
}

// get starts reading the object at the reader's offset: whole (which the
// object store checks against its ETag), or a range to its end.
func (r *objectReader) get() error {
	header, want := http.Header{}, http.StatusOK
	if r.off > 0 {
		header.Set("Range", fmt.Sprintf("bytes=%d-", r.off))
		want = http.StatusPartialContent
	}
	resp, err := r.o.request(r.ctx, http.MethodGet, r.path, header, nil, 0)
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		defer resp.Body.Close()
		return statusError("read "+r.path, resp)
	}
	r.body = resp.Body
	return nil
}

func (r *objectReader) Close() error {
	if r.body != nil {
		r.body.Close()
		r.body = nil
	}
	return nil
}

// remove deletes the image's object and every segment under its name:
// those of its manifest, and those an upload cut short by a crash left.
func (o *objects) remove(ctx context.Context, id string) error {
	if err := o.call(ctx, "delete image "+id, http.MethodDelete, o.imagePath(id), nil, http.StatusNoContent, http.StatusNotFound); err != nil {
		return err
	}
	marker := ""
	for {
		names, err := o.listSegments(ctx, id, marker)
		if err != nil || len(names) == 0 {
			return err
		}
		for _, name := range names {
			if err := o.deleteSegment(ctx, name); err != nil {
				return err
			}
		}
		marker = names[len(names)-1]
	}
}

func (o *objects) deleteSegment(ctx context.Context, name string) error {
	return o.call(ctx, "delete segment "+name, http.MethodDelete, o.segmentPath(name), nil, http.StatusNoContent, http.StatusNotFound)
}

// listSegments returns a page of the names of the segments of image id
// in the segments' container, after marker.
func (o *objects) listSegments(ctx context.Context, id, marker string) ([]string, error) {
	q := url.Values{"format": {"json"}, "prefix": {id + "/"}, "marker": {marker}}
	resp, err := o.request(ctx, http.MethodGet, url.PathEscape(o.segments)+"?"+q.Encode(), nil, nil, 0)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNoContent, http.StatusNotFound:
		return nil, nil
	default:
		return nil, statusError("list the segments of image "+id, resp)
	}
	var page []struct{ Name string }
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		return nil, fmt.Errorf("list the segments of image %s: %w", id, err)
	}
	names := make([]string, len(page))
	for i, e := range page {
		names[i] = e.Name
	}
	return names, nil
}
