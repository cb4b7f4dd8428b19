package s3

import (
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/trustack/trustack"
)

// A multipart upload lives in the bucket's segments container: a marker
// object <key>/<upload ID> (of content type uploadMarkerType, carrying
// the object's metadata to be), and each part <key>/<upload ID>/<part
// number>. Completing it stores a static large object manifest of the
// parts at the key; aborting it deletes the parts and the marker.

// uploadMarkerType is the content type of an upload's marker, which
// tells it from the parts in a listing; the object's own content type
// waits in uploadContentType.
const (
	uploadMarkerType  = "application/x-trustack-s3-upload"
	uploadContentType = "X-Object-Sysmeta-S3api-Content-Type"
	minPartSize       = 5 << 20
	maxPartNumber     = 10000
)

// upload is the multipart upload a request names.
type upload struct {
	id        string
	container string // the bucket's segments container
	marker    string // the marker object's name
}

// partName is the name of part n's object.
func (u upload) partName(n int) string { return u.marker + "/" + strconv.Itoa(n) }

// uploadOf is the upload q names by its uploadId; it checks that the
// upload exists, and returns its marker's headers.
func (h *Handler) uploadOf(q *request) (upload, http.Header, error) {
	id := q.URL.Query().Get("uploadId")
	u := upload{id: id, container: q.bucket + segmentsSuffix, marker: q.key + "/" + id}
	if id == "" || strings.Contains(id, "/") {
		return u, nil, errorf("NoSuchUpload", "%s", notFoundMessages["NoSuchUpload"])
	}
	status, header, _, err := h.call(q, swiftCall{method: http.MethodHead, container: u.container, object: u.marker})
	if err == nil && status != http.StatusOK {
		err = swiftError(status, "NoSuchUpload")
	}
	return u, header, err
}

// createUpload serves CreateMultipartUpload (POST /<bucket>/<key>?uploads).
func (h *Handler) createUpload(w http.ResponseWriter, q *request) error {
	if err := h.bucketExists(q); err != nil {
		return err
	}
	segments := q.bucket + segmentsSuffix
	status, _, _, err := h.call(q, swiftCall{method: http.MethodPut, container: segments})
	if err != nil {
		return err
	}
	if status/100 != 2 {
		return swiftError(status, "NoSuchBucket")
	}
	b := make([]byte, 18)
	rand.Read(b)
	id := base64.RawURLEncoding.EncodeToString(b)
	header := objectMeta(q.Header)
	header.Set(uploadContentType, header.Get("Content-Type"))
	header.Set("Content-Type", uploadMarkerType)
	status, _, _, err = h.call(q, swiftCall{method: http.MethodPut, container: segments, object: q.key + "/" + id, header: header, body: http.NoBody, length: 0})
	if err != nil {
		return err
	}
	if status != http.StatusCreated {
		return swiftError(status, "NoSuchBucket")
	}
	return writeXML(w, http.StatusOK, struct {
		XMLName  xml.Name `xml:"InitiateMultipartUploadResult"`
		Xmlns    string   `xml:"xmlns,attr"`
		Bucket   string
		Key      string
		UploadID string `xml:"UploadId"`
	}{Xmlns: xmlNamespace, Bucket: q.bucket, Key: q.key, UploadID: id})
}

// partNumber is q's partNumber parameter, checked.
func partNumber(q *request) (int, error) {
	n, err := strconv.Atoi(q.URL.Query().Get("partNumber"))
	if err != nil || n < 1 || n > maxPartNumber {
		return 0, errorf("InvalidArgument", "Part number must be an integer between 1 and %d, inclusive", maxPartNumber)
	}
	return n, nil
}

// uploadPart serves UploadPart and, with x-amz-copy-source,
// UploadPartCopy (PUT /<bucket>/<key>?partNumber=N&uploadId=ID).
func (h *Handler) uploadPart(w http.ResponseWriter, q *request) error {
	n, err := partNumber(q)
	if err != nil {
		return err
	}
	u, _, err := h.uploadOf(q)
	if err != nil {
		return err
	}
	if q.Header.Get("X-Amz-Copy-Source") == "" {
		etag, err := h.store(q, u.container, u.partName(n), http.Header{})
		if err != nil {
			return err
		}
		w.Header().Set("ETag", `"`+etag+`"`)
		w.WriteHeader(http.StatusOK)
		return nil
	}
	bucket, key, err := copySource(q)
	if err != nil {
		return err
	}
	src, err := h.openSource(q, bucket, key, q.Header.Get("X-Amz-Copy-Source-Range"))
	if err != nil {
		return err
	}
	defer src.body.Close()
	etag, lastModified, err := h.storeCopy(q, u.container, u.partName(n), http.Header{}, src)
	if err != nil {
		return err
	}
	return writeXML(w, http.StatusOK, struct {
		XMLName      xml.Name `xml:"CopyPartResult"`
		Xmlns        string   `xml:"xmlns,attr"`
		LastModified string
		ETag         string
	}{Xmlns: xmlNamespace, LastModified: lastModified, ETag: `"` + etag + `"`})
}

// part is an uploaded part, from the segments container's listing.
type part struct {
	number int
	entry  swiftEntry
}

// parts lists an upload's parts, by part number.
func (h *Handler) parts(q *request, u upload) ([]part, error) {
	entries, err := h.listAll(q, u.container, u.marker+"/", "NoSuchUpload")
	if err != nil {
		return nil, err
	}
	var parts []part
	for _, e := range entries {
		if n, err := strconv.Atoi(strings.TrimPrefix(e.Name, u.marker+"/")); err == nil {
			parts = append(parts, part{number: n, entry: e})
		}
	}
	slices.SortFunc(parts, func(a, b part) int { return a.number - b.number })
	return parts, nil
}

// completeUpload serves CompleteMultipartUpload (POST
// /<bucket>/<key>?uploadId=ID): the parts listed, in order, each the
// ETag given and each but the last at least 5 MiB, become the object, a
// static large object whose S3 ETag is the MD5 of its parts' MD5s.
func (h *Handler) completeUpload(w http.ResponseWriter, q *request) error {
	u, marker, err := h.uploadOf(q)
	if err != nil {
		return err
	}
	var request struct {
		Parts []struct {
			PartNumber int
			ETag       string
		} `xml:"Part"`
	}
	if err := readXML(q, &request, false); err != nil {
		return err
	}
	if len(request.Parts) == 0 {
		return errorf("MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema.")
	}
	uploaded, err := h.parts(q, u)
	if err != nil {
		return err
	}
	byNumber := map[int]swiftEntry{}
	for _, p := range uploaded {
		byNumber[p.number] = p.entry
	}
	type manifestItem struct {
		Path      string `json:"path"`
		Etag      string `json:"etag"`
		SizeBytes int64  `json:"size_bytes"`
	}
	var manifest []manifestItem
	sums := md5.New()
	used := map[int]bool{}
	for i, p := range request.Parts {
		e, ok := byNumber[p.PartNumber]
		switch {
		case i > 0 && p.PartNumber <= request.Parts[i-1].PartNumber:
			return errorf("InvalidPartOrder", "The list of parts was not in ascending order. The parts list must be specified in order by part number.")
		case !ok || strings.Trim(p.ETag, `"`) != e.Hash:
			return errorf("InvalidPart", "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.")
		case e.Bytes < minPartSize && i < len(request.Parts)-1:
			return errorf("EntityTooSmall", "Your proposed upload is smaller than the minimum allowed object size: each part but the last must be at least 5 MiB.")
		}
		sum, _ := hex.DecodeString(e.Hash)
		sums.Write(sum)
		used[p.PartNumber] = true
		manifest = append(manifest, manifestItem{Path: "/" + u.container + "/" + e.Name, Etag: e.Hash, SizeBytes: e.Bytes})
	}
	etag := hex.EncodeToString(sums.Sum(nil)) + "-" + strconv.Itoa(len(manifest))
	header := http.Header{s3Etag: {etag}, listedEtag: {etag}}
	for name, values := range marker {
		if strings.HasPrefix(name, "X-Object-Meta-") || (name != "Content-Type" && slices.Contains(objectHeaders, name)) {
			header[name] = values
		}
	}
	header.Set("Content-Type", cmpOr(marker.Get(uploadContentType), "application/octet-stream"))
	body, _ := json.Marshal(manifest)
	status, _, _, err := h.call(q, swiftCall{method: http.MethodPut, container: q.bucket, object: q.key,
		query: url.Values{"multipart-manifest": {"put"}}, header: header, body: strings.NewReader(string(body)), length: int64(len(body))})
	if err != nil {
		return err
	}
	if status != http.StatusCreated {
		return swiftError(status, "NoSuchBucket")
	}
	for _, p := range uploaded {
		if !used[p.number] {
			h.call(q, swiftCall{method: http.MethodDelete, container: u.container, object: p.entry.Name})
		}
	}
	h.call(q, swiftCall{method: http.MethodDelete, container: u.container, object: u.marker})
	return writeXML(w, http.StatusOK, struct {
		XMLName  xml.Name `xml:"CompleteMultipartUploadResult"`
		Xmlns    string   `xml:"xmlns,attr"`
		Location string
		Bucket   string
		Key      string
		ETag     string
	}{Xmlns: xmlNamespace, Location: "/" + q.bucket + "/" + q.key, Bucket: q.bucket, Key: q.key, ETag: `"` + etag + `"`})
}

// abortUpload serves AbortMultipartUpload (DELETE
// /<bucket>/<key>?uploadId=ID): its parts and marker deleted.
func (h *Handler) abortUpload(w http.ResponseWriter, q *request) error {
	u, _, err := h.uploadOf(q)
	if err != nil {
		return err
	}
	parts, err := h.parts(q, u)
	if err != nil {
		return err
	}
	for _, p := range append(parts, part{entry: swiftEntry{Name: u.marker}}) {
		status, _, _, err := h.call(q, swiftCall{method: http.MethodDelete, container: u.container, object: p.entry.Name})
		if err != nil {
			return err
		}
		if status/100 != 2 && status != http.StatusNotFound {
			return swiftError(status, "NoSuchUpload")
		}
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// listParts serves ListParts (GET /<bucket>/<key>?uploadId=ID).
func (h *Handler) listParts(w http.ResponseWriter, q *request) error {
	u, _, err := h.uploadOf(q)
	if err != nil {
		return err
	}
	query := q.URL.Query()
	maxParts, err := queryInt(query, "max-parts", 1000, 1000)
	if err != nil {
		return err
	}
	after, err := queryInt(query, "part-number-marker", 0, maxPartNumber)
	if err != nil {
		return err
	}
	parts, err := h.parts(q, u)
	if err != nil {
		return err
	}
	type listedPart struct {
		PartNumber   int
		LastModified string
		ETag         string
		Size         int64
	}
	result := struct {
		XMLName              xml.Name `xml:"ListPartsResult"`
		Xmlns                string   `xml:"xmlns,attr"`
		Bucket               string
		Key                  string
		UploadID             string `xml:"UploadId"`
		Initiator            owner
		Owner                owner
		StorageClass         string
		PartNumberMarker     int
		NextPartNumberMarker int
		MaxParts             int
		IsTruncated          bool
		Parts                []listedPart `xml:"Part"`
	}{Xmlns: xmlNamespace, Bucket: q.bucket, Key: q.key, UploadID: u.id, Initiator: ownerOf(q), Owner: ownerOf(q),
		StorageClass: "STANDARD", PartNumberMarker: after, MaxParts: maxParts}
	for _, p := range parts {
		if p.number <= after {
			continue
		}
		if len(result.Parts) == maxParts {
			result.IsTruncated = true
			break
		}
		result.Parts = append(result.Parts, listedPart{PartNumber: p.number, LastModified: isoTime(p.entry.LastModified), ETag: `"` + p.entry.Hash + `"`, Size: p.entry.Bytes})
		result.NextPartNumberMarker = p.number
	}
	return writeXML(w, http.StatusOK, result)
}

// listUploads serves ListMultipartUploads (GET /<bucket>?uploads): the
// uploads in progress under a prefix, by key and upload ID, after the
// key-marker (and upload-id-marker).
func (h *Handler) listUploads(w http.ResponseWriter, q *request) error {
	if err := h.bucketExists(q); err != nil {
		return err
	}
	query := q.URL.Query()
	maxUploads, err := queryInt(query, "max-uploads", 1000, 1000)
	if err != nil {
		return err
	}
	entries, err := h.listAll(q, q.bucket+segmentsSuffix, query.Get("prefix"), "NoSuchBucket")
	if trustack.ErrorReason(err) == "NoSuchBucket" {
		entries, err = nil, nil // no upload was ever made
	}
	if err != nil {
		return err
	}
	type listedUpload struct {
		Key          string
		UploadID     string `xml:"UploadId"`
		Initiator    owner
		Owner        owner
		StorageClass string
		Initiated    string
	}
	result := struct {
		XMLName            xml.Name `xml:"ListMultipartUploadsResult"`
		Xmlns              string   `xml:"xmlns,attr"`
		Bucket             string
		KeyMarker          string
		UploadIDMarker     string `xml:"UploadIdMarker"`
		NextKeyMarker      string
		NextUploadIDMarker string `xml:"NextUploadIdMarker"`
		Prefix             string
		MaxUploads         int
		IsTruncated        bool
		Uploads            []listedUpload `xml:"Upload"`
	}{Xmlns: xmlNamespace, Bucket: q.bucket, KeyMarker: query.Get("key-marker"), UploadIDMarker: query.Get("upload-id-marker"),
		Prefix: query.Get("prefix"), MaxUploads: maxUploads}
	for _, e := range entries {
		i := strings.LastIndex(e.Name, "/")
		if e.ContentType != uploadMarkerType || i < 0 {
			continue
		}
		key, id := e.Name[:i], e.Name[i+1:]
		if key < result.KeyMarker || (key == result.KeyMarker && (result.UploadIDMarker == "" || id <= result.UploadIDMarker)) {
			continue
		}
		if len(result.Uploads) == maxUploads {
			result.IsTruncated = true
			break
		}
		result.Uploads = append(result.Uploads, listedUpload{Key: key, UploadID: id, Initiator: ownerOf(q), Owner: ownerOf(q),
			StorageClass: "STANDARD", Initiated: isoTime(e.LastModified)})
		result.NextKeyMarker, result.NextUploadIDMarker = key, id
	}
	return writeXML(w, http.StatusOK, result)
}
