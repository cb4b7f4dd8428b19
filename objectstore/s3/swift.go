package s3

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/trustack/trustack/objectstore/proxy"
)

// swiftCall is a request to make of the Swift proxy: a method on a
// container (of the caller's account; "" for the account) or an object.
type swiftCall struct {
	method    string
	container string
	object    string
	query     url.Values
	header    http.Header
	body      io.Reader
	length    int64 // the body's, -1 if unknown
}

// swiftResponse is the proxy's answer. Its Body streams what the proxy
// writes; the caller must close it.
type swiftResponse struct {
	status int
	header http.Header
	body   io.ReadCloser
}

// forward makes c of the proxy in-process, as q's caller, and returns its
// answer once the proxy has written its status.
func (h *Handler) forward(q *request, c swiftCall) (*swiftResponse, error) {
	if q.tok.Project == nil {
		return nil, errorf("AccessDenied", "The credential's token is not scoped to a project.")
	}
	target := "/v1/AUTH_" + url.PathEscape(q.tok.Project.ID)
	if c.container != "" {
		target += "/" + url.PathEscape(c.container)
		if c.object != "" {
			target += "/" + escapeObject(c.object)
		}
	}
	if len(c.query) > 0 {
		target += "?" + c.query.Encode()
	}
	body := c.body
	if body == nil {
		body = http.NoBody
	}
	req, err := http.NewRequestWithContext(proxy.AsCaller(q.Context(), q.tok), c.method, target, body)
	if err != nil {
		return nil, fmt.Errorf("make swift request %s %s: %w", c.method, target, err)
	}
	if c.header != nil {
		req.Header = c.header
	}
	if c.body != nil {
		req.ContentLength = c.length
		if c.length < 0 {
			req.TransferEncoding = []string{"chunked"}
		}
	}
	pr, pw := io.Pipe()
	rw := &pipeResponse{header: http.Header{}, ready: make(chan struct{}), pw: pw}
	go func() {
		defer func() {
			if v := recover(); v != nil {
				// The proxy broke its answer off (http.ErrAbortHandler):
				// so does the body.
				pw.CloseWithError(fmt.Errorf("the Swift proxy broke its answer off: %v", v))
				rw.WriteHeader(http.StatusInternalServerError)
			}
		}()
		h.swift.ServeHTTP(rw, req)
		rw.WriteHeader(http.StatusOK)
		pw.Close()
	}()
	<-rw.ready
	return &swiftResponse{status: rw.status, header: rw.sent, body: pr}, nil
}

// call makes c and reads the whole answer, for answers that are small
// (listings, errors, empty bodies): at most 16 MiB.
func (h *Handler) call(q *request, c swiftCall) (int, http.Header, []byte, error) {
	resp, err := h.forward(q, c)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.body, 16<<20))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("read swift answer to %s %s/%s: %w", c.method, c.container, c.object, err)
	}
	return resp.status, resp.header, body, nil
}

// swiftEntry is one line of a Swift JSON listing.
type swiftEntry struct {
	Subdir       string `json:"subdir"`
	Name         string `json:"name"`
	Hash         string `json:"hash"`
	Bytes        int64  `json:"bytes"`
	ContentType  string `json:"content_type"`
	LastModified string `json:"last_modified"`
}

// list returns one page of the JSON listing of a container ("" for the
// account) with the parameters of query; notFound is the S3 code of a
// 404.
func (h *Handler) list(q *request, container string, query url.Values, notFound string) ([]swiftEntry, error) {
	query.Set("format", "json")
	status, _, body, err := h.call(q, swiftCall{method: http.MethodGet, container: container, query: query})
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK && status != http.StatusNoContent {
		return nil, swiftError(status, notFound)
	}
	var entries []swiftEntry
	if len(body) > 0 {
		if err := json.Unmarshal(body, &entries); err != nil {
			return nil, fmt.Errorf("read the listing of %q: %w", container, err)
		}
	}
	return entries, nil
}

// listAll returns every entry of a container's listing under prefix.
func (h *Handler) listAll(q *request, container, prefix, notFound string) ([]swiftEntry, error) {
	var all []swiftEntry
	marker := ""
	for {
		page, err := h.list(q, container, url.Values{"prefix": {prefix}, "marker": {marker}}, notFound)
		if err != nil || len(page) == 0 {
			return all, err
		}
		all = append(all, page...)
		marker = page[len(page)-1].Name
	}
}

// escapeObject escapes an object's name for a path, keeping its slashes.
func escapeObject(name string) string {
	parts := strings.Split(name, "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return strings.Join(parts, "/")
}

// pipeResponse is the http.ResponseWriter the proxy answers an
// in-process request through: its status and headers once written
// (ready closed), its body through a pipe.
type pipeResponse struct {
	header http.Header
	sent   http.Header // header as it was when the status was written
	status int
	ready  chan struct{}
	once   sync.Once
	pw     *io.PipeWriter
}

func (p *pipeResponse) Header() http.Header { return p.header }

func (p *pipeResponse) WriteHeader(status int) {
	p.once.Do(func() {
		p.status, p.sent = status, p.header.Clone()
		close(p.ready)
	})
}

func (p *pipeResponse) Write(b []byte) (int, error) {
	p.WriteHeader(http.StatusOK)
	return p.pw.Write(b)
}
