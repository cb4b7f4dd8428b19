package s3

import (
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// xmlNamespace is the namespace of S3's documents.
const xmlNamespace = "http://s3.amazonaws.com/doc/2006-03-01/"

// segmentsSuffix names the container of a bucket's multipart uploads:
// <bucket>+segments, as s3api's.
const segmentsSuffix = "+segments"

// owner is a bucket's or an object's owner: the caller's project.
type owner struct {
	ID          string
	DisplayName string
}

// ownerOf is the owner of what q's caller's account holds.
func ownerOf(q *request) owner {
	return owner{ID: q.tok.Project.ID, DisplayName: q.tok.Project.Name}
}

// validBucketName reports whether name follows S3's rules: 3 to 63
// lower-case letters, digits, dots and hyphens, starting and ending with
// a letter or digit, without two dots in a row, and not an IP address.
func validBucketName(name string) bool {
	if len(name) < 3 || len(name) > 63 || strings.Contains(name, "..") {
		return false
	}
	dots := 0
	allDigitsAndDots := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := ('a' <= c && c <= 'z') || ('0' <= c && c <= '9')
		switch {
		case (i == 0 || i == len(name)-1) && !alnum:
			return false
		case !alnum && c != '.' && c != '-':
			return false
		}
		if c == '.' {
			dots++
		} else if c < '0' || c > '9' {
			allDigitsAndDots = false
		}
	}
	return !(allDigitsAndDots && dots == 3)
}

// listBuckets serves ListBuckets (GET /): the caller's containers, but
// those of multipart uploads.
func (h *Handler) listBuckets(w http.ResponseWriter, q *request) error {
	type bucket struct {
		Name         string
		CreationDate string
	}
	var result struct {
		XMLName xml.Name `xml:"ListAllMyBucketsResult"`
		Xmlns   string   `xml:"xmlns,attr"`
		Owner   owner
		Buckets []bucket `xml:"Buckets>Bucket"`
	}
	result.Xmlns, result.Owner = xmlNamespace, ownerOf(q)
	entries, err := h.listAll(q, "", "", "AccessDenied")
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name, segmentsSuffix) {
			result.Buckets = append(result.Buckets, bucket{Name: e.Name, CreationDate: isoTime(e.LastModified)})
		}
	}
	return writeXML(w, http.StatusOK, result)
}

// createBucket serves CreateBucket (PUT /<bucket>).
func (h *Handler) createBucket(w http.ResponseWriter, q *request) error {
	if !validBucketName(q.bucket) {
		return errorf("InvalidBucketName", "The specified bucket is not valid.")
	}
	var config struct {
		LocationConstraint string
	}
	if err := readXML(q, &config, true); err != nil {
		return err
	}
	if c := config.LocationConstraint; c != "" && c != h.opts.Region {
		return errorf("InvalidLocationConstraint", "The specified location-constraint %q is not valid: this is %s.", c, h.opts.Region)
	}
	status, _, _, err := h.call(q, swiftCall{method: http.MethodHead, container: q.bucket})
	switch {
	case err != nil:
		return err
	case status/100 == 2:
		return errorf("BucketAlreadyOwnedByYou", "Your previous request to create the named bucket succeeded and you already own it.")
	case status != http.StatusNotFound:
		return swiftError(status, "NoSuchBucket")
	}
	status, _, _, err = h.call(q, swiftCall{method: http.MethodPut, container: q.bucket})
	if err != nil {
		return err
	}
	if status/100 != 2 {
		return swiftError(status, "NoSuchBucket")
	}
	w.Header().Set("Location", "/"+q.bucket)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
	return nil
}

// deleteBucket serves DeleteBucket (DELETE /<bucket>), with the
// container of its multipart uploads if it is empty.
func (h *Handler) deleteBucket(w http.ResponseWriter, q *request) error {
	status, _, _, err := h.call(q, swiftCall{method: http.MethodDelete, container: q.bucket})
	switch {
	case err != nil:
		return err
	case status == http.StatusConflict:
		return errorf("BucketNotEmpty", "The bucket you tried to delete is not empty")
	case status/100 != 2:
		return swiftError(status, "NoSuchBucket")
	}
	if _, _, _, err := h.call(q, swiftCall{method: http.MethodDelete, container: q.bucket + segmentsSuffix}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// headBucket serves HeadBucket (HEAD /<bucket>).
func (h *Handler) headBucket(w http.ResponseWriter, q *request) error {
	if err := h.bucketExists(q); err != nil {
		return err
	}
	w.Header().Set("X-Amz-Bucket-Region", h.opts.Region)
	w.WriteHeader(http.StatusOK)
	return nil
}

// bucketExists returns nil if q's bucket exists, else NoSuchBucket (or
// the error of finding out).
func (h *Handler) bucketExists(q *request) error {
	status, _, _, err := h.call(q, swiftCall{method: http.MethodHead, container: q.bucket})
	if err == nil && status/100 != 2 {
		err = swiftError(status, "NoSuchBucket")
	}
	return err
}

// bucketLocation serves GetBucketLocation (GET /<bucket>?location):
// empty for us-east-1, as S3 answers.
func (h *Handler) bucketLocation(w http.ResponseWriter, q *request) error {
	if err := h.bucketExists(q); err != nil {
		return err
	}
	location := struct {
		XMLName xml.Name `xml:"LocationConstraint"`
		Xmlns   string   `xml:"xmlns,attr"`
		Region  string   `xml:",chardata"`
	}{Xmlns: xmlNamespace}
	if h.opts.Region != "us-east-1" {
		location.Region = h.opts.Region
	}
	return writeXML(w, http.StatusOK, location)
}

// writeXML answers with status and v as an XML document.
func writeXML(w http.ResponseWriter, status int, v any) error {
	body, err := xml.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	io.WriteString(w, xml.Header)
	w.Write(body)
	return nil
}

// maxXMLBody bounds the XML documents clients send (a DeleteObjects of
// 1,000 keys of 1,024 bytes fits).
const maxXMLBody = 2 << 20

// readXML reads q's body (checked as signed) as an XML document into v;
// an empty body is fine if optional.
func readXML(q *request, v any, optional bool) error {
	body, err := io.ReadAll(io.LimitReader(q.body, maxXMLBody+1))
	switch {
	case err != nil:
		return q.body.failed(err)
	case len(body) > maxXMLBody:
		return errorf("MalformedXML", "The XML you provided is too large.")
	case len(body) == 0 && optional:
		return nil
	}
	if err := xml.Unmarshal(body, v); err != nil {
		return errorf("MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema.")
	}
	return nil
}

// isoTime turns a Swift listing's time (UTC, without a zone) into S3's.
func isoTime(swift string) string {
	t, err := time.Parse("2006-01-02T15:04:05.999999", swift)
	if err != nil {
		return swift
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// queryInt is query parameter name as a number from 0 to max, def if
// absent.
func queryInt(query url.Values, name string, def, max int) (int, error) {
	v := query.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, errorf("InvalidArgument", "%s must be a non-negative integer.", name)
	}
	return min(n, max), nil
}
