package s3

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/trustack/trustack"
)

// s3Etag is the system metadata holding a multipart object's S3 ETag
// (hex MD5 of its parts' MD5s, a dash, the number of parts), which Swift
// does not compute; listedEtag is the one its listing shows.
const (
	s3Etag     = "X-Object-Sysmeta-S3api-Etag"
	listedEtag = "X-Object-Sysmeta-Container-Update-Override-Etag"
)

// objectHeaders are the headers of an object, beyond its metadata, that
// S3 clients set and Swift keeps.
var objectHeaders = []string{"Content-Type", "Content-Encoding", "Content-Disposition"}

// objectMeta returns the Swift headers of q's object metadata:
// x-amz-meta-* as X-Object-Meta-*, and objectHeaders.
func objectMeta(from http.Header) http.Header {
	meta := http.Header{}
	for name, values := range from {
		if short, ok := strings.CutPrefix(name, "X-Amz-Meta-"); ok {
			meta.Set("X-Object-Meta-"+short, values[0])
		}
	}
	for _, name := range objectHeaders {
		if v := from.Get(name); v != "" {
			meta.Set(name, v)
		}
	}
	// aws-chunked is how the body came, not what the object is.
	if ce := strings.TrimPrefix(strings.TrimPrefix(meta.Get("Content-Encoding"), "aws-chunked"), ","); ce != meta.Get("Content-Encoding") {
		if ce = strings.TrimSpace(ce); ce == "" {
			meta.Del("Content-Encoding")
		} else {
			meta.Set("Content-Encoding", ce)
		}
	}
	return meta
}

// putObject serves PutObject (PUT /<bucket>/<key>).
func (h *Handler) putObject(w http.ResponseWriter, q *request) error {
	header := objectMeta(q.Header)
	resp, err := h.store(q, q.bucket, q.key, header)
	if err != nil {
		return err
	}
	w.Header().Set("ETag", `"`+resp+`"`)
	w.WriteHeader(http.StatusOK)
	return nil
}

// store stores q's body as object of container, with header, checking
// its Content-MD5; it returns the content's MD5.
func (h *Handler) store(q *request, container, object string, header http.Header) (string, error) {
	if q.length < 0 && q.ContentLength < 0 && len(q.TransferEncoding) == 0 {
		return "", errorf("MissingContentLength", "You must provide the Content-Length HTTP header.")
	}
	if q.length > maxObjectSize {
		return "", errorf("EntityTooLarge", "Your proposed upload exceeds the maximum allowed object size.")
	}
	if given := q.Header.Get("Content-Md5"); given != "" {
		sum, err := base64.StdEncoding.DecodeString(given)
		if err != nil || len(sum) != 16 {
			return "", errorf("InvalidDigest", "The Content-MD5 you specified was invalid.")
		}
		header.Set("Etag", hex.EncodeToString(sum))
	}
	resp, err := h.forward(q, swiftCall{method: http.MethodPut, container: container, object: object, header: header, body: q.body, length: q.length})
	if err != nil {
		return "", err
	}
	drain(resp.body)
	resp.body.Close()
	if resp.status != http.StatusCreated {
		notFound := "NoSuchBucket"
		if strings.HasSuffix(container, segmentsSuffix) {
			notFound = "NoSuchUpload"
		}
		return "", q.body.failed(swiftError(resp.status, notFound))
	}
	return strings.Trim(resp.header.Get("Etag"), `"`), nil
}

// maxObjectSize is the largest object a single PUT stores, as S3's.
const maxObjectSize = 5 << 30

// getObject serves GetObject and HeadObject.
func (h *Handler) getObject(w http.ResponseWriter, q *request) error {
	resp, err := h.open(q, q.bucket, q.key, q.Header, "")
	if err != nil {
		return err
	}
	defer resp.body.Close()
	copyObjectHeaders(w.Header(), resp.header)
	if resp.status == http.StatusNotModified {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	for param, header := range responseOverrides {
		if v := q.URL.Query().Get(param); v != "" {
			w.Header().Set(header, v)
		}
	}
	w.WriteHeader(resp.status)
	if q.Method == http.MethodHead {
		return nil
	}
	if _, err := io.Copy(w, resp.body); err != nil {
		// A read that breaks off must not look whole to the client.
		panic(http.ErrAbortHandler)
	}
	return nil
}

// responseOverrides are the query parameters of a GET that set a header
// of its answer.
var responseOverrides = map[string]string{
	"response-content-type":        "Content-Type",
	"response-content-language":    "Content-Language",
	"response-expires":             "Expires",
	"response-cache-control":       "Cache-Control",
	"response-content-disposition": "Content-Disposition",
	"response-content-encoding":    "Content-Encoding",
}

// open opens an object for GET or HEAD (q's method) with the range and
// conditions of cond (q's headers, or a copy's source conditions
// renamed), or the range rng if given. It answers 200, 206 or 304; any
// other outcome is an error. ETag conditions are checked here, against
// the S3 ETag, as a multipart object's is not Swift's; the date
// conditions a present ETag condition overrides (RFC 7232) are not sent.
func (h *Handler) open(q *request, bucket, key string, cond http.Header, rng string) (*swiftResponse, error) {
	header := http.Header{}
	if cond.Get("If-Match") == "" && cond.Get("If-Unmodified-Since") != "" {
		header.Set("If-Unmodified-Since", cond.Get("If-Unmodified-Since"))
	}
	if cond.Get("If-None-Match") == "" && cond.Get("If-Modified-Since") != "" {
		header.Set("If-Modified-Since", cond.Get("If-Modified-Since"))
	}
	if rng = cmpOr(rng, cond.Get("Range")); rng != "" {
		header.Set("Range", rng)
	}
	method := q.Method
	if method != http.MethodHead {
		method = http.MethodGet
	}
	resp, err := h.forward(q, swiftCall{method: method, container: bucket, object: key, header: header})
	if err != nil {
		return nil, err
	}
	etag := s3ETagOf(resp.header)
	failure := ""
	switch {
	case resp.status == http.StatusNotFound:
		resp.body.Close()
		if err := h.bucketExists(&request{Request: q.Request, tok: q.tok, bucket: bucket}); err != nil {
			return nil, err
		}
		return nil, swiftError(resp.status, "NoSuchKey")
	case resp.status != http.StatusOK && resp.status != http.StatusPartialContent && resp.status != http.StatusNotModified:
		resp.body.Close()
		return nil, swiftError(resp.status, "NoSuchKey")
	case cond.Get("If-Match") != "" && !etagMatches(cond.Get("If-Match"), etag):
		failure = "PreconditionFailed"
	case cond.Get("If-None-Match") != "" && etagMatches(cond.Get("If-None-Match"), etag):
		failure = "NotModified"
	}
	switch {
	case failure == "PreconditionFailed":
		resp.body.Close()
		return nil, errorf("PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
	case failure == "NotModified" && q.Method != http.MethodGet && q.Method != http.MethodHead:
		resp.body.Close()
		return nil, errorf("PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
	case failure == "NotModified":
		resp.status = http.StatusNotModified
	}
	return resp, nil
}

// etagMatches reports whether an If-Match or If-None-Match header's
// list holds etag (quoted), or is "*".
func etagMatches(list, etag string) bool {
	for e := range strings.SplitSeq(list, ",") {
		e = strings.TrimPrefix(strings.TrimSpace(e), "W/")
		if e == "*" || strings.Trim(e, `"`) == strings.Trim(etag, `"`) {
			return true
		}
	}
	return false
}

// s3ETagOf is the S3 ETag (quoted) of an object from Swift's headers:
// a multipart object's from its system metadata, else its MD5.
func s3ETagOf(h http.Header) string {
	return `"` + strings.Trim(cmpOr(h.Get(s3Etag), h.Get("Etag")), `"`) + `"`
}

// copyObjectHeaders copies to w the S3 headers of an object from
// Swift's answer about it.
func copyObjectHeaders(w, from http.Header) {
	for name, values := range from {
		switch {
		case strings.HasPrefix(name, "X-Object-Meta-"):
			w["X-Amz-Meta-"+strings.TrimPrefix(name, "X-Object-Meta-")] = values
		case name == "Content-Length", name == "Content-Range", name == "Last-Modified", name == "Accept-Ranges",
			name == "Content-Type", name == "Content-Encoding", name == "Content-Disposition":
			w[name] = values
		}
	}
	w.Set("ETag", s3ETagOf(from))
	if t, err := http.ParseTime(from.Get("Last-Modified")); err == nil {
		w.Set("Last-Modified", t.UTC().Format(http.TimeFormat))
	}
}

// deleteObject serves DeleteObject (DELETE /<bucket>/<key>): 204,
// whether the key existed or not.
func (h *Handler) deleteObject(w http.ResponseWriter, q *request) error {
	if err := h.remove(q, q.key); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// remove deletes an object of q's bucket, and a multipart object's
// parts; a missing key is not an error, a missing bucket is.
func (h *Handler) remove(q *request, key string) error {
	query := url.Values{"multipart-manifest": {"delete"}}
	status, _, _, err := h.call(q, swiftCall{method: http.MethodDelete, container: q.bucket, object: key, query: query})
	switch {
	case err != nil:
		return err
	case status == http.StatusNotFound:
		return h.bucketExists(q)
	case status/100 != 2:
		return swiftError(status, "NoSuchKey")
	}
	return nil
}

// deleteObjects serves DeleteObjects (POST /<bucket>?delete).
func (h *Handler) deleteObjects(w http.ResponseWriter, q *request) error {
	if given := q.Header.Get("Content-Md5"); given != "" {
		sum, err := base64.StdEncoding.DecodeString(given)
		if err != nil || len(sum) != 16 {
			return errorf("InvalidDigest", "The Content-MD5 you specified was invalid.")
		}
		q.body.r = &digestReader{r: q.body.r, hash: md5.New(), want: hex.EncodeToString(sum), encode: hex.EncodeToString,
			err: errorf("BadDigest", "The Content-MD5 you specified did not match what we received.")}
	}
	var request struct {
		Quiet   bool
		Objects []struct {
			Key string
		} `xml:"Object"`
	}
	if err := readXML(q, &request, false); err != nil {
		return err
	}
	if len(request.Objects) == 0 || len(request.Objects) > 1000 {
		return errorf("MalformedXML", "A Delete names 1 to 1000 objects.")
	}
	if err := h.bucketExists(q); err != nil {
		return err
	}
	type deleted struct{ Key string }
	type failed struct{ Key, Code, Message string }
	var result struct {
		XMLName xml.Name  `xml:"DeleteResult"`
		Xmlns   string    `xml:"xmlns,attr"`
		Deleted []deleted `xml:"Deleted"`
		Errors  []failed  `xml:"Error"`
	}
	result.Xmlns = xmlNamespace
	for _, o := range request.Objects {
		err := h.remove(q, o.Key)
		switch {
		case err != nil:
			result.Errors = append(result.Errors, failed{Key: o.Key, Code: s3CodeOf(err), Message: trustack.ErrorMessage(err)})
		case !request.Quiet:
			result.Deleted = append(result.Deleted, deleted{Key: o.Key})
		}
	}
	return writeXML(w, http.StatusOK, result)
}

// copyObject serves CopyObject (PUT /<bucket>/<key> with
// x-amz-copy-source): the source read and written anew, so that a
// multipart source is copied whole.
func (h *Handler) copyObject(w http.ResponseWriter, q *request) error {
	bucket, key, err := copySource(q)
	if err != nil {
		return err
	}
	replace := strings.EqualFold(q.Header.Get("X-Amz-Metadata-Directive"), "REPLACE")
	if bucket == q.bucket && key == q.key && !replace {
		return errorf("InvalidRequest", "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.")
	}
	src, err := h.openSource(q, bucket, key, "")
	if err != nil {
		return err
	}
	defer src.body.Close()
	header := objectMeta(q.Header)
	if !replace {
		header = http.Header{}
		for name, values := range src.header {
			if strings.HasPrefix(name, "X-Object-Meta-") || slices.Contains(objectHeaders, name) {
				header[name] = values
			}
		}
		header.Set("Content-Type", src.header.Get("Content-Type"))
	}
	etag, lastModified, err := h.storeCopy(q, q.bucket, q.key, header, src)
	if err != nil {
		return err
	}
	return writeXML(w, http.StatusOK, struct {
		XMLName      xml.Name `xml:"CopyObjectResult"`
		Xmlns        string   `xml:"xmlns,attr"`
		LastModified string
		ETag         string
	}{Xmlns: xmlNamespace, LastModified: lastModified, ETag: `"` + etag + `"`})
}

// copySource reads x-amz-copy-source: [/]<bucket>/<key>, URL-encoded.
func copySource(q *request) (bucket, key string, err error) {
	source := q.Header.Get("X-Amz-Copy-Source")
	source, _, _ = strings.Cut(source, "?versionId=")
	if s, uerr := url.PathUnescape(source); uerr == nil {
		source = s
	}
	bucket, key, _ = strings.Cut(strings.TrimPrefix(source, "/"), "/")
	if bucket == "" || key == "" {
		return "", "", errorf("InvalidArgument", "Copy Source must mention the source bucket and key: sourcebucket/sourcekey.")
	}
	return bucket, key, nil
}

// openSource opens a copy's source object, with the request's
// x-amz-copy-source-if-* conditions and, for a part, range rng.
func (h *Handler) openSource(q *request, bucket, key, rng string) (*swiftResponse, error) {
	cond := http.Header{}
	for _, name := range []string{"If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since"} {
		if v := q.Header.Get("X-Amz-Copy-Source-" + name); v != "" {
			cond.Set(name, v)
		}
	}
	get := &request{Request: q.Request.Clone(q.Context()), tok: q.tok}
	get.Method = http.MethodGet
	return h.open(get, bucket, key, cond, rng)
}

// storeCopy stores the content of src as object of container with
// header, returning its MD5 and time in S3's form.
func (h *Handler) storeCopy(q *request, container, object string, header http.Header, src *swiftResponse) (string, string, error) {
	if src.status == http.StatusNotModified {
		return "", "", errorf("PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
	}
	put := &request{Request: q.Request, tok: q.tok, body: &checkedBody{r: src.body}, length: contentLength(src.header)}
	etag, err := h.store(put, container, object, header)
	if err != nil {
		return "", "", err
	}
	return etag, h.opts.Now().UTC().Format("2006-01-02T15:04:05.000Z"), nil
}

// contentLength is the length Swift's headers give, -1 if none.
func contentLength(h http.Header) int64 {
	n, err := strconv.ParseInt(h.Get("Content-Length"), 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// cmpOr is the first of its arguments that is not empty.
func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
