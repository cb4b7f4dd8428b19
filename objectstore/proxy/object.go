package proxy

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"mime"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/trustack/trustack/objectstore"
	"github.com/trustack/trustack/objectstore/node"
	"github.com/trustack/trustack/objectstore/ring"
)

// objectHeaders are the headers of an object, beyond its metadata, that
// a client sets.
var objectHeaders = []string{"Content-Encoding", "Content-Disposition", "X-Object-Manifest", "X-Delete-At"}

// serveObject serves an object: HEAD, GET, PUT (with X-Copy-From, a
// copy), COPY, POST (metadata) and DELETE.
func (p *Proxy) serveObject(w http.ResponseWriter, r *http.Request, t target, who caller) {
	// A copy needs reading its source and writing its destination,
	// which copyObject checks.
	copying := r.Method == "COPY" || (r.Method == http.MethodPut && r.Header.Get("X-Copy-From") != "")
	if !copying && !p.allowed(w, r, t, who) {
		return
	}
	switch r.Method {
	case http.MethodHead, http.MethodGet:
		if who.tempURL != nil && r.Method == http.MethodGet {
			tempURLDisposition(w, r, t)
		}
		p.getObject(w, r, t)
	case http.MethodPut:
		if from := r.Header.Get("X-Copy-From"); from != "" {
			if !p.allowed(w, r, t, who) {
				return
			}
			p.copyObject(w, r, from, t)
			return
		}
		if r.URL.Query().Get("multipart-manifest") == "put" {
			p.putManifest(w, r, t)
			return
		}
		p.putObject(w, r, t, r.Body, r.ContentLength, nil, "")
	case "COPY":
		dest := r.Header.Get("Destination")
		c, o, ok := strings.Cut(strings.TrimPrefix(unescape(dest), "/"), "/")
		if !ok || c == "" || o == "" {
			swiftError(w, r, http.StatusPreconditionFailed, "Destination header must be of the form <container name>/<object name>")
			return
		}
		to := target{account: t.account, container: c, object: o}
		if !p.may(r, http.MethodPut, to, who) {
			denied(w, r, who)
			return
		}
		p.copyObject(w, r, t.container+"/"+t.object, to)
	case http.MethodPost:
		p.postObject(w, r, t)
	case http.MethodDelete:
		p.deleteObject(w, r, t)
	default:
		w.Header().Set("Allow", "HEAD, GET, PUT, POST, DELETE, COPY")
		swiftError(w, r, http.StatusMethodNotAllowed, "The method is not allowed for this resource.")
	}
}

// unescape is a path's unescaped form, or the path if it is not escaped
// properly.
func unescape(s string) string {
	if u, err := url.PathUnescape(s); err == nil {
		return u
	}
	return s
}

// readHeaders are the headers of a client's read that its node gets.
var readHeaders = []string{"Range", "If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since", "If-Range"}

// openObject asks the object's replicas in turn for it (GET or HEAD,
// with the client's conditions and range) and returns the first answer
// that is not a 404 or a failure, with the devices not asked yet; a 404
// when some replica said so and none had it; 503 when none answered.
func (p *Proxy) openObject(ctx context.Context, r *http.Request, t target) (*http.Response, []ring.Device, int) {
	header := http.Header{}
	for _, k := range readHeaders {
		if v := r.Header.Get(k); v != "" {
			if k == "If-Match" || k == "If-None-Match" {
				v = quoteETags(v)
			}
			header.Set(k, v)
		}
	}
	rg, part := p.ringOf(t)
	nodes := p.nodes(rg, part, true)
	status := http.StatusServiceUnavailable
	for i, dev := range nodes {
		resp, err := p.request(ctx, dev, part, r.Method, t.path(), header, nil)
		if err != nil {
			continue
		}
		if resp.StatusCode == http.StatusNotFound || resp.StatusCode >= 500 {
			if resp.StatusCode == http.StatusNotFound {
				status = http.StatusNotFound
			}
			resp.Body.Close()
			continue
		}
		return resp, nodes[i+1:], 0
	}
	return nil, nil, status
}

// getObject answers GET or HEAD of an object. A full GET that a node
// cuts off (it failed, or found its copy corrupt) goes on from another
// replica where it stopped, the same version (If-Match on its ETag). The
// proxy checks the whole content against the ETag too, holding its last
// bytes back until it has: a read that cannot be finished, or whose
// pieces do not add up to the object, is broken off rather than ended as
// if whole.
func (p *Proxy) getObject(w http.ResponseWriter, r *http.Request, t target) {
	resp, rest, status := p.openObject(r.Context(), r, t)
	if resp == nil {
		p.answer(w, r, status, nil)
		return
	}
	defer resp.Body.Close()
	asManifest := r.URL.Query().Get("multipart-manifest") == "get"
	if isManifest(resp.Header) && !asManifest {
		// The client's range and conditions are the large object's:
		// read the manifest whole.
		resp.Body.Close()
		get, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, "/", nil)
		if resp, _, status = p.openObject(r.Context(), get, t); resp == nil {
			p.answer(w, r, status, nil)
			return
		}
		defer resp.Body.Close()
		p.getLarge(w, r, t, resp)
		return
	}
	clientHeaders(w.Header(), resp.Header, callerOf(r).inProcess)
	if asManifest && strings.EqualFold(resp.Header.Get("X-Static-Large-Object"), "true") {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
	}
	etag := trimQuotes(resp.Header.Get("Etag"))
	if etag != "" {
		w.Header().Set("Etag", etag)
	}
	if resp.StatusCode >= 400 {
		p.answer(w, r, resp.StatusCode, nil)
		return
	}
	w.WriteHeader(resp.StatusCode)
	if r.Method == http.MethodHead {
		return
	}
	if resp.StatusCode != http.StatusOK {
		copyBody(w, resp.Body)
		return
	}
	out := &checkedWriter{w: w, md5: md5.New()}
	sent, err := copyBody(out, resp.Body)
	_, part := p.ringOf(t)
	for _, dev := range rest {
		if err == nil || errors.Is(err, errClientGone) {
			break
		}
		h := http.Header{"Range": {fmt.Sprintf("bytes=%d-", sent)}, "If-Match": {`"` + etag + `"`}}
		more, rerr := p.request(r.Context(), dev, part, http.MethodGet, t.path(), h, nil)
		if rerr != nil {
			continue
		}
		if more.StatusCode != http.StatusPartialContent {
			more.Body.Close()
			continue
		}
		var n int64
		n, err = copyBody(out, more.Body)
		more.Body.Close()
		sent += n
	}
	switch {
	case errors.Is(err, errClientGone):
		return
	case err != nil:
		p.opts.Log.Error("object read cut off, no replica left to finish it", "object", t.path(), "sent", sent)
		panic(http.ErrAbortHandler)
	case hex.EncodeToString(out.md5.Sum(nil)) != etag:
		p.opts.Log.Error("object read does not match its ETag: broken off", "object", t.path(), "etag", etag)
		panic(http.ErrAbortHandler)
	}
	w.Write(out.held)
}

// checkedWriter passes a whole object's content on to w but for its last
// heldBack bytes (at least), which wait until the content is checked.
type checkedWriter struct {
	w    io.Writer
	md5  hash.Hash
	held []byte
}

const heldBack = 64 << 10

func (c *checkedWriter) Write(p []byte) (int, error) {
	c.md5.Write(p)
	c.held = append(c.held, p...)
	if len(c.held) >= 2*heldBack {
		n := len(c.held) - heldBack
		if _, err := c.w.Write(c.held[:n]); err != nil {
			return 0, err
		}
		c.held = append(c.held[:0], c.held[n:]...)
	}
	return len(p), nil
}

// errClientGone is copyBody's error when the client stopped reading.
var errClientGone = errors.New("the client went away")

// copyBody copies a node's body to the client, telling a failure of the
// node from one of the client (errClientGone).
func copyBody(w io.Writer, body io.Reader) (int64, error) {
	buf := make([]byte, 64<<10)
	var n int64
	for {
		k, err := body.Read(buf)
		if k > 0 {
			if _, werr := w.Write(buf[:k]); werr != nil {
				return n, errClientGone
			}
			n += int64(k)
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// objectMeta returns the headers of a client's object write that go to
// the nodes (metadata, and the other headers clients set; system
// metadata too for an in-process client, sysmeta), with X-Delete-After
// turned into X-Delete-At. An error is a 400's message.
func (p *Proxy) objectMeta(h http.Header, sysmeta bool) (http.Header, error) {
	if h.Get("X-Static-Large-Object") != "" {
		return nil, fmt.Errorf("X-Static-Large-Object is set by the proxy: upload a manifest with ?multipart-manifest=put")
	}
	meta, err := userMeta(h, "Object", objectHeaders...)
	if err != nil {
		return nil, err
	}
	if sysmeta {
		for name, values := range h {
			if name = http.CanonicalHeaderKey(name); strings.HasPrefix(name, "X-Object-Sysmeta-") {
				meta[name] = values
			}
		}
	}
	for name := range h { // an object's metadata is replaced whole: removing is leaving out
		name = headerName(name)
		if short, ok := strings.CutPrefix(name, "X-Remove-Object-Meta-"); ok {
			delete(meta, "X-Object-Meta-"+short)
		}
	}
	now := p.opts.Now().Unix()
	if after := h.Get("X-Delete-After"); after != "" {
		n, err := strconv.ParseInt(after, 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("non-integer X-Delete-After")
		}
		meta.Set("X-Delete-At", strconv.FormatInt(now+n, 10))
	}
	if at := meta.Get("X-Delete-At"); at != "" {
		n, err := strconv.ParseInt(at, 10, 64)
		switch {
		case err != nil:
			return nil, fmt.Errorf("non-integer X-Delete-At")
		case n <= now:
			return nil, fmt.Errorf("X-Delete-At in past")
		}
	}
	return meta, nil
}

// putObject stores body (length bytes, -1 if unknown: chunked) as the
// object t, with the client's headers of r and, for a copy or a
// manifest, the headers given (base, overridden by r's). It answers r,
// telling the client the ETag told, or the content's MD5 if "".
func (p *Proxy) putObject(w http.ResponseWriter, r *http.Request, t target, body io.Reader, length int64, base http.Header, told string) {
	if length < 0 && !chunked(r) && base == nil {
		swiftError(w, r, http.StatusLengthRequired, "Missing Content-Length or Transfer-Encoding: chunked")
		return
	}
	if length > objectstore.MaxFileSize {
		swiftError(w, r, http.StatusRequestEntityTooLarge, "Your request is too large.")
		return
	}
	meta, err := p.objectMeta(r.Header, callerOf(r).inProcess)
	if err != nil {
		swiftError(w, r, http.StatusBadRequest, err.Error())
		return
	}
	container := target{account: t.account, container: t.container}
	info := p.infoOf(r.Context(), container)
	if info.header.Get("X-Container-Meta-Quota-Bytes") != "" || info.header.Get("X-Container-Meta-Quota-Count") != "" {
		p.forgetInfo(container) // quotas are held to the container's counts as they are now
		info = p.infoOf(r.Context(), container)
	}
	if info.status/100 != 2 {
		p.answer(w, r, info.status, nil)
		return
	}
	if over := p.overQuota(r, t, info.header, length); over != "" {
		swiftError(w, r, http.StatusRequestEntityTooLarge, over)
		return
	}
	header := base.Clone()
	if header == nil {
		header = http.Header{}
	}
	for k, v := range meta {
		header[k] = v
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" || r.Header.Get("X-Detect-Content-Type") == "true" {
		if ct = header.Get("Content-Type"); ct == "" || r.Header.Get("X-Detect-Content-Type") == "true" {
			ct = cmpOr(mime.TypeByExtension(path.Ext(t.object)), "application/octet-stream")
		}
	}
	header.Set("Content-Type", ct)
	if etag := header.Get(listedEtag); etag != "" {
		header.Set("X-Backend-Container-Update-Override-Etag", etag)
	}
	if etag := r.Header.Get("Etag"); etag != "" && base == nil {
		header.Set("Etag", trimQuotes(etag))
	}
	ts, tsString := p.writeTimestamp()
	header.Set("X-Timestamp", tsString)
	status, etag := p.upload(r.Context(), t, header, body, length)
	if status == http.StatusCreated {
		if base != nil { // a copy: its metadata, as Swift answers
			for k, v := range header {
				if strings.HasPrefix(k, "X-Object-Meta-") || k == "Content-Type" {
					w.Header()[k] = v
				}
			}
		}
		w.Header().Set("Etag", cmpOr(told, etag))
		w.Header().Set("Last-Modified", ts.Time().Add(time.Second-1).Format(http.TimeFormat))
	}
	p.answer(w, r, status, nil)
}

// listedEtag is the system metadata of an object that an in-process
// client sets to have it listed with another ETag than its content's (the
// S3 API's multipart ETag), as Swift's.
const listedEtag = "X-Object-Sysmeta-Container-Update-Override-Etag"

// cmpOr is the first of its arguments that is not empty.
func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// chunked reports whether r's body comes in chunks of unknown length.
func chunked(r *http.Request) bool {
	for _, te := range r.TransferEncoding {
		if te == "chunked" {
			return true
		}
	}
	return false
}

// putConn is an upload to one replica, its node having agreed to take
// the body (100 Continue).
type putConn struct {
	dev    ring.Device
	chunks chan []byte
	done   chan putResult // the node's answer, once
	dead   bool           // it takes no more chunks: chunks is closed
	res    *putResult     // its answer, once taken from done
	pw     *io.PipeWriter // the body as the node reads it
}

// abort breaks the body off, so that the node never takes it as whole.
func (c *putConn) abort() {
	c.pw.CloseWithError(errors.New("the upload was broken off"))
	c.stop()
}

// stop closes the connection's chunks, once.
func (c *putConn) stop() {
	if !c.dead {
		c.dead = true
		close(c.chunks)
	}
}

// answer waits up to timeout for the node's answer.
func (c *putConn) answer(timeout time.Duration) putResult {
	if c.res == nil {
		select {
		case res := <-c.done:
			c.res = &res
		case <-time.After(timeout):
			return putResult{}
		}
	}
	return *c.res
}

type putResult struct {
	status int // 0: the node could not be reached or failed
	etag   string
}

// upload streams body to every replica of t at once and returns the
// status that stands (201 on a quorum) and the content's MD5. Each
// replica's node is asked with Expect: 100-continue first, so that one
// that refuses, or cannot be reached, is replaced by a handoff before
// the body starts.
func (p *Proxy) upload(ctx context.Context, t target, header http.Header, body io.Reader, length int64) (int, string) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rg, part := p.ringOf(t)
	containers, containerPart := p.ringOf(target{account: t.account, container: t.container})
	primaries := rg.Nodes(part)
	spare := handoffFeed(ctx, rg, part)
	conns := make([]*putConn, len(primaries))
	early := make([]int, len(primaries)) // a refusal before the body
	var wg sync.WaitGroup
	for i, dev := range primaries {
		wg.Go(func() {
			h := header.Clone()
			node.ReplicaHeaders(h, "Container", containers, containerPart, i)
			p.deleteAtHeaders(h, i)
			for {
				c, status := p.connectPut(ctx, dev, part, t.path(), h, length)
				if c != nil {
					conns[i] = c
					return
				}
				early[i] = status
				if status != 0 && status != http.StatusInsufficientStorage {
					return // the node answered: another would answer the same
				}
				d, ok := <-spare
				if !ok {
					return
				}
				dev = d
			}
		})
	}
	wg.Wait()
	var live []*putConn
	for _, c := range conns {
		if c != nil {
			live = append(live, c)
		}
	}
	if len(live) < quorum(len(primaries)) {
		if s := bestStatus(early); s/100 == 4 {
			return s, ""
		}
		return http.StatusServiceUnavailable, ""
	}
	sum, err := p.stream(live, body, length)
	if err != nil {
		for _, c := range live {
			c.abort()
		}
		cancel()
		if errors.Is(err, errTooLarge) {
			return http.StatusRequestEntityTooLarge, ""
		}
		return 499, "" // the client's body broke off: Swift's Client Disconnect
	}
	results := make([]int, len(primaries))
	etags := map[string]bool{}
	for _, c := range live {
		c.stop()
	}
	for i, c := range live {
		res := c.answer(p.opts.NodeTimeout)
		results[i] = res.status
		if res.status == http.StatusCreated {
			etags[res.etag] = true
		}
	}
	status := bestStatus(results)
	if status == http.StatusCreated && (len(etags) != 1 || !etags[sum]) {
		p.opts.Log.Error("object nodes stored other content than the proxy sent", "object", t.path(), "etags", etags, "sent", sum)
		return http.StatusServiceUnavailable, ""
	}
	if status == http.StatusConflict {
		status = http.StatusAccepted // a newer version is there already, as Swift answers
	}
	return status, sum
}

// handoffFeed hands out a partition's handoff devices, one per receive,
// until they run out or ctx ends.
func handoffFeed(ctx context.Context, rg *ring.Ring, part int) <-chan ring.Device {
	ch := make(chan ring.Device)
	go func() {
		defer close(ch)
		for d := range rg.Handoffs(part) {
			select {
			case ch <- d:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch
}

// errTooLarge is stream's error for a body over the largest object.
var errTooLarge = errors.New("object too large")

// stream copies body to every live connection in chunks, and returns the
// content's MD5. A connection whose node stops taking chunks for
// NodeTimeout is dropped; the upload fails if fewer than a quorum are
// left. Each chunk is held back until the body's next read did not fail:
// a body that fails at its very end (an in-process reader that checks a
// hash at EOF) never reaches the nodes whole, so none can commit it.
func (p *Proxy) stream(conns []*putConn, body io.Reader, length int64) (string, error) {
	hash := md5.New()
	var total int64
	limit := io.LimitReader(body, objectstore.MaxFileSize+1)
	var held []byte
	for {
		buf := make([]byte, 64<<10)
		n, err := limit.Read(buf)
		if err != nil && err != io.EOF {
			return "", err
		}
		total += int64(n)
		if total > objectstore.MaxFileSize {
			return "", errTooLarge
		}
		hash.Write(buf[:n])
		if err := p.send(conns, held); err != nil {
			return "", err
		}
		held = buf[:n]
		if err == io.EOF {
			if err := p.send(conns, held); err != nil {
				return "", err
			}
			if length >= 0 && total != length {
				return "", fmt.Errorf("body of %d bytes, %d announced", total, length)
			}
			return hex.EncodeToString(hash.Sum(nil)), nil
		}
	}
}

// send hands chunk (if not empty) to every live connection, dropping
// those whose node stops taking chunks for NodeTimeout; it fails if fewer
// than a quorum are left.
func (p *Proxy) send(conns []*putConn, chunk []byte) error {
	if len(chunk) == 0 {
		return nil
	}
	alive := 0
	for _, c := range conns {
		if c.dead {
			continue
		}
		select {
		case c.chunks <- chunk:
			alive++
		case res := <-c.done:
			c.res = &res
			c.stop()
		case <-time.After(p.opts.NodeTimeout):
			c.stop()
		}
	}
	if alive < quorum(len(conns)) {
		return fmt.Errorf("only %d of %d object nodes took the data", alive, len(conns))
	}
	return nil
}

// connectPut starts an upload to dev and waits for its node to agree to
// take the body. It returns the connection, or nil and the status the
// node answered with at once (0 if it could not be reached).
func (p *Proxy) connectPut(ctx context.Context, dev ring.Device, part int, path string, header http.Header, length int64) (*putConn, int) {
	pr, pw := io.Pipe()
	c := &putConn{dev: dev, chunks: make(chan []byte, 4), done: make(chan putResult, 1), pw: pw}
	continued := make(chan struct{})
	var once sync.Once
	traced := httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{Got100Continue: func() { once.Do(func() { close(continued) }) }})
	h := header.Clone()
	h.Set("Expect", "100-continue")
	var body io.Reader = pr
	if length == 0 {
		body = http.NoBody
		once.Do(func() { close(continued) })
	}
	go func() {
		resp, err := p.request(traced, dev, part, http.MethodPut, path, h, lengthReader{body, length})
		res := putResult{}
		if err == nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, maxReplyBody))
			resp.Body.Close()
			res = putResult{status: resp.StatusCode, etag: trimQuotes(resp.Header.Get("Etag"))}
		}
		pr.CloseWithError(errors.New("the node answered"))
		c.done <- res
	}()
	go func() {
		for chunk := range c.chunks {
			if _, err := pw.Write(chunk); err != nil {
				for range c.chunks { // the node answered early: drop the rest
				}
				return
			}
		}
		pw.Close()
	}()
	select {
	case <-continued:
		return c, 0
	case res := <-c.done:
		c.res = &res
		c.stop()
		if res.status/100 == 2 && length == 0 {
			return c, 0 // an empty object is whole already
		}
		return nil, res.status
	case <-time.After(p.opts.ConnectTimeout + p.opts.NodeTimeout):
		c.abort()
		pw.CloseWithError(errors.New("the node did not take the upload in time"))
		return nil, 0
	}
}

// lengthReader gives request a body with its length (-1: unknown, sent
// in chunks).
type lengthReader struct {
	io.Reader
	n int64
}

// postObject replaces an object's metadata on its replicas.
func (p *Proxy) postObject(w http.ResponseWriter, r *http.Request, t target) {
	meta, err := p.objectMeta(r.Header, callerOf(r).inProcess)
	if err != nil {
		swiftError(w, r, http.StatusBadRequest, err.Error())
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		meta.Set("Content-Type", ct)
	}
	status := p.writeObject(r.Context(), t, http.MethodPost, meta)
	if status/100 == 2 {
		status = http.StatusAccepted
	}
	p.answer(w, r, status, nil)
}

// deleteObject deletes an object from its replicas; with
// ?multipart-manifest=delete, a static large object's segments too.
func (p *Proxy) deleteObject(w http.ResponseWriter, r *http.Request, t target) {
	if r.URL.Query().Get("multipart-manifest") == "delete" {
		p.deleteLarge(w, r, t)
		return
	}
	status := p.writeObject(r.Context(), t, http.MethodDelete, http.Header{})
	if status/100 == 2 {
		status = http.StatusNoContent
	}
	p.answer(w, r, status, nil)
}

// writeObject sends a write without a body (POST, DELETE) of an object
// to its replicas, each told which container replica to update, and
// returns the status that stands.
func (p *Proxy) writeObject(ctx context.Context, t target, method string, header http.Header) int {
	_, ts := p.writeTimestamp()
	rg, part := p.ringOf(t)
	containers, containerPart := p.ringOf(target{account: t.account, container: t.container})
	replies := p.fanOut(ctx, rg, part, method, t.path(), func(i int) http.Header {
		h := header.Clone()
		h.Set("X-Timestamp", ts)
		node.ReplicaHeaders(h, "Container", containers, containerPart, i)
		p.deleteAtHeaders(h, i)
		return h
	}, true)
	return bestStatus(statuses(replies))
}

// deleteAtHeaders tells replica i of an object written with an
// X-Delete-At (in h) where its entry in the expirer's queue goes, as
// Swift's proxy does: X-Delete-At-Container, and which of its replicas
// to update (X-Delete-At-Host, -Device and -Partition).
func (p *Proxy) deleteAtHeaders(h http.Header, i int) {
	at, err := strconv.ParseInt(h.Get("X-Delete-At"), 10, 64)
	if err != nil {
		return
	}
	queue := target{account: objectstore.ExpiringObjectsAccount, container: objectstore.ExpiringObjectsContainer(at)}
	rg, part := p.ringOf(queue)
	h.Set("X-Delete-At-Container", queue.container)
	node.ReplicaHeaders(h, "Delete-At", rg, part, i)
}

// copyObject copies the object from ("container/object" of t's account)
// to t: the source's content and metadata (only the request's with
// X-Fresh-Metadata), with the request's metadata over them. The caller
// must be able to read the source as well as write t.
func (p *Proxy) copyObject(w http.ResponseWriter, r *http.Request, from string, t target) {
	c, o, ok := strings.Cut(strings.TrimPrefix(unescape(from), "/"), "/")
	if !ok || c == "" || o == "" {
		swiftError(w, r, http.StatusPreconditionFailed, "X-Copy-From header must be of the form <container name>/<object name>")
		return
	}
	src := target{account: t.account, container: c, object: o}
	if !p.may(r, http.MethodGet, src, callerOf(r)) {
		denied(w, r, callerOf(r))
		return
	}
	get := r.Clone(r.Context())
	get.Method = http.MethodGet
	get.Header = http.Header{}
	for _, k := range []string{"If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since"} {
		if v := r.Header.Get("X-Copy-From-" + k); v != "" {
			get.Header.Set(k, v)
		}
	}
	resp, _, status := p.openObject(r.Context(), get, src)
	if resp == nil {
		p.answer(w, r, status, nil)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		p.answer(w, r, resp.StatusCode, nil)
		return
	}
	base := http.Header{}
	if r.Header.Get("X-Fresh-Metadata") != "true" {
		for k, v := range resp.Header {
			if strings.HasPrefix(k, "X-Object-Meta-") || slices.Contains(objectHeaders, k) || k == "Content-Type" {
				base[k] = v
			}
		}
	}
	base.Del("X-Delete-At") // the copy does not expire with the source
	base.Set("Content-Type", cmpOr(base.Get("Content-Type"), resp.Header.Get("Content-Type")))
	w.Header().Set("X-Copied-From", url.PathEscape(c)+"/"+escapeObject(o))
	w.Header().Set("X-Copied-From-Last-Modified", resp.Header.Get("Last-Modified"))
	p.putObject(w, r, t, resp.Body, resp.ContentLength, base, "")
}

// quoteETags quotes the ETags of an If-Match or If-None-Match header that
// a client gave bare, as Swift takes them.
func quoteETags(v string) string {
	parts := strings.Split(v, ",")
	for i, e := range parts {
		e = strings.TrimSpace(e)
		if e != "*" && !strings.HasPrefix(e, `"`) && !strings.HasPrefix(e, `W/"`) {
			e = `"` + e + `"`
		}
		parts[i] = e
	}
	return strings.Join(parts, ", ")
}
