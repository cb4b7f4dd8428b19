package s3

import (
	"encoding/base64"
	"encoding/xml"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// listedObject is an object of a listing.
type listedObject struct {
	Key          string
	LastModified string
	ETag         string
	Size         int64
	StorageClass string
	Owner        *owner `xml:",omitempty"`
}

// commonPrefix is a prefix a delimiter folded keys into.
type commonPrefix struct {
	Prefix string
}

// listResult is ListObjects' answer (ListBucketResult), in both
// versions: the fields of one are left empty in the other.
type listResult struct {
	XMLName               xml.Name `xml:"ListBucketResult"`
	Xmlns                 string   `xml:"xmlns,attr"`
	Name                  string
	Prefix                string
	Marker                *string `xml:",omitempty"`
	NextMarker            string  `xml:",omitempty"`
	ContinuationToken     string  `xml:",omitempty"`
	NextContinuationToken string  `xml:",omitempty"`
	StartAfter            string  `xml:",omitempty"`
	KeyCount              *int    `xml:",omitempty"`
	MaxKeys               int
	Delimiter             string `xml:",omitempty"`
	EncodingType          string `xml:",omitempty"`
	IsTruncated           bool
	Contents              []listedObject
	CommonPrefixes        []commonPrefix
}

// listObjects serves ListObjects and ListObjectsV2 (list-type=2): a page
// of the bucket's keys after a marker, a delimiter folding keys into
// common prefixes. A page is one Swift listing of one more entry than
// asked for, which tells whether the listing goes on.
func (h *Handler) listObjects(w http.ResponseWriter, q *request) error {
	query := q.URL.Query()
	v2 := query.Get("list-type") == "2"
	maxKeys, err := queryInt(query, "max-keys", 1000, 1000)
	if err != nil {
		return err
	}
	encoding := query.Get("encoding-type")
	if encoding != "" && encoding != "url" {
		return errorf("InvalidArgument", "Invalid Encoding Method specified in Request")
	}
	delimiter := query.Get("delimiter")
	if len(delimiter) > 1 {
		return errorf("InvalidArgument", "A delimiter of more than one character is not supported.")
	}
	encode := func(s string) string {
		if encoding == "url" {
			return strings.ReplaceAll(url.QueryEscape(s), "%2F", "/")
		}
		return s
	}
	result := listResult{Xmlns: xmlNamespace, Name: q.bucket, Prefix: encode(query.Get("prefix")), MaxKeys: maxKeys,
		Delimiter: encode(delimiter), EncodingType: encoding}
	marker := query.Get("marker")
	if v2 {
		result.ContinuationToken = query.Get("continuation-token")
		result.StartAfter = encode(query.Get("start-after"))
		marker = query.Get("start-after")
		if token := result.ContinuationToken; token != "" {
			decoded, err := base64.RawURLEncoding.DecodeString(token)
			if err != nil {
				return errorf("InvalidArgument", "The continuation token provided is incorrect")
			}
			marker = string(decoded)
		}
	} else {
		m := encode(marker)
		result.Marker = &m
	}
	var entries []swiftEntry
	if maxKeys > 0 {
		params := url.Values{"prefix": {query.Get("prefix")}, "delimiter": {delimiter}, "marker": {marker}, "limit": {strconv.Itoa(maxKeys + 1)}}
		if entries, err = h.list(q, q.bucket, params, "NoSuchBucket"); err != nil {
			return err
		}
	} else if err := h.bucketExists(q); err != nil {
		return err
	}
	if len(entries) > maxKeys {
		entries, result.IsTruncated = entries[:maxKeys], true
	}
	fetchOwner := !v2 || query.Get("fetch-owner") == "true"
	for _, e := range entries {
		if e.Subdir != "" {
			result.CommonPrefixes = append(result.CommonPrefixes, commonPrefix{Prefix: encode(e.Subdir)})
			continue
		}
		o := listedObject{Key: encode(e.Name), LastModified: isoTime(e.LastModified), ETag: `"` + e.Hash + `"`, Size: e.Bytes, StorageClass: "STANDARD"}
		if fetchOwner {
			own := ownerOf(q)
			o.Owner = &own
		}
		result.Contents = append(result.Contents, o)
	}
	if result.IsTruncated {
		last := entries[len(entries)-1]
		next := last.Name + last.Subdir
		if v2 {
			result.NextContinuationToken = base64.RawURLEncoding.EncodeToString([]byte(next))
		} else {
			result.NextMarker = encode(next)
		}
	}
	if v2 {
		count := len(entries)
		result.KeyCount = &count
	}
	return writeXML(w, http.StatusOK, result)
}
