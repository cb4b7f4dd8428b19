package s3

import (
	"encoding/xml"
	"net/http"
	"strconv"

	"github.com/trustack/trustack"
)

// s3Codes are S3's error codes this API answers with: their status, and
// the trustack error code each stands for.
var s3Codes = map[string]struct {
	status int
	code   string
}{
	"AccessDenied":                      {http.StatusForbidden, trustack.EFORBIDDEN},
	"AuthorizationHeaderMalformed":      {http.StatusBadRequest, trustack.EINVALID},
	"AuthorizationQueryParametersError": {http.StatusBadRequest, trustack.EINVALID},
	"BadDigest":                         {http.StatusBadRequest, trustack.EINVALID},
	"BucketAlreadyOwnedByYou":           {http.StatusConflict, trustack.ECONFLICT},
	"BucketNotEmpty":                    {http.StatusConflict, trustack.ECONFLICT},
	"EntityTooLarge":                    {http.StatusBadRequest, trustack.EOVERQUOTA},
	"EntityTooSmall":                    {http.StatusBadRequest, trustack.EINVALID},
	"IncompleteBody":                    {http.StatusBadRequest, trustack.EINVALID},
	"InternalError":                     {http.StatusInternalServerError, trustack.EINTERNAL},
	"InvalidAccessKeyId":                {http.StatusForbidden, trustack.EUNAUTHORIZED},
	"InvalidArgument":                   {http.StatusBadRequest, trustack.EINVALID},
	"InvalidBucketName":                 {http.StatusBadRequest, trustack.EINVALID},
	"InvalidDigest":                     {http.StatusBadRequest, trustack.EINVALID},
	"InvalidLocationConstraint":         {http.StatusBadRequest, trustack.EINVALID},
	"InvalidPart":                       {http.StatusBadRequest, trustack.EINVALID},
	"InvalidPartOrder":                  {http.StatusBadRequest, trustack.EINVALID},
	"InvalidRange":                      {http.StatusRequestedRangeNotSatisfiable, trustack.EINVALID},
	"InvalidRequest":                    {http.StatusBadRequest, trustack.EINVALID},
	"KeyTooLongError":                   {http.StatusBadRequest, trustack.EINVALID},
	"MalformedXML":                      {http.StatusBadRequest, trustack.EINVALID},
	"MethodNotAllowed":                  {http.StatusMethodNotAllowed, trustack.EINVALID},
	"MissingContentLength":              {http.StatusLengthRequired, trustack.EINVALID},
	"NoSuchBucket":                      {http.StatusNotFound, trustack.ENOTFOUND},
	"NoSuchKey":                         {http.StatusNotFound, trustack.ENOTFOUND},
	"NoSuchUpload":                      {http.StatusNotFound, trustack.ENOTFOUND},
	"NotImplemented":                    {http.StatusNotImplemented, trustack.EINVALID},
	"PreconditionFailed":                {http.StatusPreconditionFailed, trustack.ECONFLICT},
	"RequestTimeTooSkewed":              {http.StatusForbidden, trustack.EUNAUTHORIZED},
	"ServiceUnavailable":                {http.StatusServiceUnavailable, trustack.EUNAVAILABLE},
	"SignatureDoesNotMatch":             {http.StatusForbidden, trustack.EUNAUTHORIZED},
	"XAmzContentSHA256Mismatch":         {http.StatusBadRequest, trustack.EINVALID},
}

// errorf returns an error with S3's code s3Code (one of s3Codes) as its
// reason, and a formatted message.
func errorf(s3Code, format string, args ...any) error {
	return trustack.Reasonf(s3Codes[s3Code].code, s3Code, format, args...)
}

// fallbackCodes are the S3 codes of errors that carry a trustack code
// but no S3 code.
var fallbackCodes = map[string]string{
	trustack.EINVALID:      "InvalidArgument",
	trustack.ENOTFOUND:     "NoSuchKey",
	trustack.ECONFLICT:     "InvalidRequest",
	trustack.EUNAUTHORIZED: "AccessDenied",
	trustack.EFORBIDDEN:    "AccessDenied",
	trustack.EOVERQUOTA:    "EntityTooLarge",
	trustack.EUNAVAILABLE:  "ServiceUnavailable",
}

// errorBody is S3's error document.
type errorBody struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string
	Message   string
	Resource  string
	RequestID string `xml:"RequestId"`
}

// fail answers q with err as S3's error document (headers only for
// HEAD). An error without a trustack code is internal: logged in full,
// answered with a generic message.
func (h *Handler) fail(w http.ResponseWriter, q *request, err error) {
	s3Code := s3CodeOf(err)
	if s3Code == "InternalError" {
		h.opts.Log.Error("s3 request failed", "method", q.Method, "path", q.URL.Path, "request", q.id, "err", err)
	}
	status := s3Codes[s3Code].status
	body, _ := xml.Marshal(errorBody{Code: s3Code, Message: trustack.ErrorMessage(err), Resource: q.URL.Path, RequestID: q.id})
	body = append([]byte(xml.Header), body...)
	w.Header().Set("Content-Type", "application/xml")
	if q.Method == http.MethodHead {
		w.WriteHeader(status)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

// s3CodeOf is the S3 code of err: its reason, else the code that
// stands for its trustack code, else InternalError.
func s3CodeOf(err error) string {
	s3Code := trustack.ErrorReason(err)
	if _, ok := s3Codes[s3Code]; !ok {
		s3Code = fallbackCodes[trustack.ErrorCode(err)]
	}
	return cmpOr(s3Code, "InternalError")
}

// swiftError turns the error status of a Swift answer into S3's error,
// notFound being the code for a 404 (NoSuchBucket, NoSuchKey, ...).
func swiftError(status int, notFound string) error {
	switch status {
	case http.StatusUnauthorized, http.StatusForbidden:
		return errorf("AccessDenied", "Access Denied")
	case http.StatusNotFound:
		return errorf(notFound, "%s", notFoundMessages[notFound])
	case http.StatusPreconditionFailed:
		return errorf("PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
	case http.StatusRequestedRangeNotSatisfiable:
		return errorf("InvalidRange", "The requested range is not satisfiable")
	case http.StatusRequestEntityTooLarge:
		return errorf("EntityTooLarge", "Your proposed upload exceeds the maximum allowed object size.")
	case http.StatusUnprocessableEntity:
		return errorf("BadDigest", "The Content-MD5 you specified did not match what we received.")
	case 499:
		return errorf("IncompleteBody", "You did not provide the number of bytes specified by the Content-Length HTTP header.")
	case http.StatusServiceUnavailable, http.StatusInsufficientStorage, http.StatusGatewayTimeout:
		return errorf("ServiceUnavailable", "Please reduce your request rate.")
	case http.StatusBadRequest, http.StatusLengthRequired:
		return errorf("InvalidArgument", "The object store refused the request (status %d).", status)
	}
	return trustack.Errorf(trustack.EINTERNAL, "the Swift proxy answered %d", status)
}

// notFoundMessages are S3's messages of its not-found codes.
var notFoundMessages = map[string]string{
	"NoSuchBucket": "The specified bucket does not exist",
	"NoSuchKey":    "The specified key does not exist.",
	"NoSuchUpload": "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
}
