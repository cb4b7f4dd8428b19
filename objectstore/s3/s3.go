// Package s3 serves the Amazon S3 REST API over the object store's Swift
// proxy, as Swift's s3api middleware does: a bucket is a container of the
// caller's account (AUTH_<project ID>), a key an object's name. Requests
// are authenticated by their AWS Signature Version 4 (an Authorization
// header or a presigned URL) with the EC2 credentials Keys finds, and
// carried out by the proxy in-process as the credential's owner, so what
// a caller may do is what its roles let it do through the Swift API.
//
// Multipart uploads are kept as s3api keeps them: each part an object
// <key>/<upload ID>/<part number> of the container <bucket>+segments,
// beside an upload marker <key>/<upload ID>, and a completed upload a
// static large object whose S3 ETag is its system metadata.
package s3

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/trustack/trustack"
)

// Keys finds an EC2 access key's secret and the token its owner acts
// with. An unknown key is EUNAUTHORIZED.
type Keys interface {
	EC2Credential(ctx context.Context, access string) (secret string, tok *trustack.Token, err error)
}

// Options configure a Handler; zero values take the defaults.
type Options struct {
	// Region is the region signatures are scoped to and buckets are
	// located in (default us-east-1).
	Region string
	// Domain, if set, is the domain under which buckets are addressed
	// as hosts (virtual-hosted style: <bucket>.<Domain>); path style
	// (/<bucket>/<key>) is always served.
	Domain string
	// MaxSkew bounds how far a signed request's time may be from the
	// server's (default 15 minutes, as S3).
	MaxSkew time.Duration
	// Now returns the current time (default time.Now).
	Now func() time.Time
	// Log receives internal errors (default: discarded).
	Log *slog.Logger
}

// Handler serves the S3 API. It is an http.Handler, safe for concurrent
// use, to mount at the root of a listener (S3 clients address buckets
// at /<bucket>).
type Handler struct {
	swift http.Handler
	keys  Keys
	opts  Options
}

// New returns a handler serving the S3 API on swift (the object store's
// proxy), authenticating requests with keys.
func New(swift http.Handler, keys Keys, opts Options) *Handler {
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	if opts.MaxSkew == 0 {
		opts.MaxSkew = 15 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	return &Handler{swift: swift, keys: keys, opts: opts}
}

// request is an authenticated S3 request, its bucket and key, and its
// body as checked against what the signature promised.
type request struct {
	*http.Request
	id     string
	tok    *trustack.Token
	bucket string
	key    string
	body   *checkedBody
	// length is the body's length once decoded (-1: unknown).
	length int64
}

// ServeHTTP authenticates r and serves it.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := &request{Request: r, id: newRequestID()}
	w.Header().Set("X-Amz-Request-Id", q.id)
	w.Header().Set("X-Amz-Id-2", q.id)
	q.bucket, q.key = h.address(r)
	if err := h.authenticate(q); err != nil {
		h.fail(w, q, err)
		return
	}
	if err := h.route(w, q); err != nil {
		h.fail(w, q, err)
	}
}

// address splits r's target into a bucket and a key, from the host for
// virtual-hosted style, else from the path.
func (h *Handler) address(r *http.Request) (bucket, key string) {
	if h.opts.Domain != "" {
		host, _, _ := strings.Cut(r.Host, ":")
		if b, ok := strings.CutSuffix(host, "."+h.opts.Domain); ok && b != "" {
			return b, strings.TrimPrefix(r.URL.Path, "/")
		}
	}
	bucket, key, _ = strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	return bucket, key
}

// route serves q by its method, target and subresource.
func (h *Handler) route(w http.ResponseWriter, q *request) error {
	query := q.URL.Query()
	has := func(k string) bool { _, ok := query[k]; return ok }
	switch {
	case q.bucket == "":
		if q.Method != http.MethodGet {
			return errorf("MethodNotAllowed", "The specified method is not allowed against the service.")
		}
		return h.listBuckets(w, q)
	case q.key == "":
		return h.routeBucket(w, q, has)
	}
	if len(q.key) > maxKeyLength {
		return errorf("KeyTooLongError", "Your key is too long: %d bytes, at most %d.", len(q.key), maxKeyLength)
	}
	switch {
	case has("uploadId") && q.Method == http.MethodPut:
		return h.uploadPart(w, q)
	case has("uploadId") && q.Method == http.MethodPost:
		return h.completeUpload(w, q)
	case has("uploadId") && q.Method == http.MethodDelete:
		return h.abortUpload(w, q)
	case has("uploadId") && q.Method == http.MethodGet:
		return h.listParts(w, q)
	case has("uploads") && q.Method == http.MethodPost:
		return h.createUpload(w, q)
	case hasSubresource(query):
		return errorf("NotImplemented", "This subresource of an object is not implemented.")
	}
	switch q.Method {
	case http.MethodGet, http.MethodHead:
		return h.getObject(w, q)
	case http.MethodPut:
		if q.Header.Get("X-Amz-Copy-Source") != "" {
			return h.copyObject(w, q)
		}
		return h.putObject(w, q)
	case http.MethodDelete:
		return h.deleteObject(w, q)
	}
	return errorf("MethodNotAllowed", "The specified method is not allowed against this resource.")
}

// routeBucket serves a request about a bucket (no key).
func (h *Handler) routeBucket(w http.ResponseWriter, q *request, has func(string) bool) error {
	switch {
	case has("location") && q.Method == http.MethodGet:
		return h.bucketLocation(w, q)
	case has("uploads") && q.Method == http.MethodGet:
		return h.listUploads(w, q)
	case has("delete") && q.Method == http.MethodPost:
		return h.deleteObjects(w, q)
	case hasSubresource(q.URL.Query()):
		return errorf("NotImplemented", "This subresource of a bucket is not implemented.")
	}
	switch q.Method {
	case http.MethodGet:
		return h.listObjects(w, q)
	case http.MethodHead:
		return h.headBucket(w, q)
	case http.MethodPut:
		return h.createBucket(w, q)
	case http.MethodDelete:
		return h.deleteBucket(w, q)
	}
	return errorf("MethodNotAllowed", "The specified method is not allowed against this resource.")
}

// listingParams are the query parameters that are not subresources: a
// request with any other (acl, versioning, tagging, ...) asks for
// something this API does not do.
var listingParams = map[string]bool{
	"prefix": true, "delimiter": true, "marker": true, "max-keys": true, "encoding-type": true,
	"list-type": true, "continuation-token": true, "start-after": true, "fetch-owner": true,
	"partNumber": true, "versionId": true, "x-id": true,
	"response-content-type": true, "response-content-language": true, "response-expires": true,
	"response-cache-control": true, "response-content-disposition": true, "response-content-encoding": true,
}

// hasSubresource reports whether query names a subresource this API does
// not serve, the signature's own parameters aside.
func hasSubresource(query map[string][]string) bool {
	for k := range query {
		if !listingParams[k] && !strings.HasPrefix(k, "X-Amz-") {
			return true
		}
	}
	return false
}

// maxKeyLength is S3's longest key, in bytes.
const maxKeyLength = 1024

// newRequestID returns a fresh request ID: 16 random hexadecimal digits.
func newRequestID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return strings.ToUpper(hex.EncodeToString(b))
}

// drain reads what is left of a body, so the connection can be reused.
func drain(r io.Reader) {
	io.Copy(io.Discard, io.LimitReader(r, 1<<20))
}
