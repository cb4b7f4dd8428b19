package s3

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/trustack/trustack"
)

// AWS Signature Version 4, as S3 checks it: the signature of a canonical
// form of the request (method, path, query, the headers it names, the
// payload's hash) under a key derived from the secret, the date, the
// region and the service.

const (
	algorithm       = "AWS4-HMAC-SHA256"
	amzDateFormat   = "20060102T150405Z"
	unsignedPayload = "UNSIGNED-PAYLOAD"
	maxPresignedFor = 7 * 24 * time.Hour
)

// signature is what a request says of its signing.
type signature struct {
	access, scopeDate, region, service string
	signedHeaders                      []string
	signature                          string
	date                               time.Time
	amzDate                            string
	presigned                          bool
	expires                            time.Duration // of a presigned URL
}

// scope is the signature's credential scope.
func (s *signature) scope() string {
	return s.scopeDate + "/" + s.region + "/" + s.service + "/aws4_request"
}

// authenticate checks q's signature, finds its caller's token, and sets
// up q's body to be checked as it is read.
func (h *Handler) authenticate(q *request) error {
	sig, err := parseSignature(q.Request)
	if err != nil {
		return err
	}
	if err := h.checkTime(sig); err != nil {
		return err
	}
	if sig.region != h.opts.Region {
		return errorf("AuthorizationHeaderMalformed", "The authorization header is malformed; the region %q is wrong; expecting %q.", sig.region, h.opts.Region)
	}
	secret, tok, err := h.keys.EC2Credential(q.Context(), sig.access)
	switch {
	case trustack.ErrorCode(err) == trustack.EUNAUTHORIZED:
		return errorf("InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")
	case err != nil:
		return err
	}
	payload := unsignedPayload
	if !sig.presigned || q.Header.Get("X-Amz-Content-Sha256") != "" {
		payload = q.Header.Get("X-Amz-Content-Sha256")
	}
	if payload == "" {
		return errorf("InvalidRequest", "Missing required header for this request: x-amz-content-sha256")
	}
	key := signingKey(secret, sig.scopeDate, sig.region, sig.service)
	stringToSign := algorithm + "\n" + sig.amzDate + "\n" + sig.scope() + "\n" + hashHex(canonicalRequest(q.Request, sig, payload))
	want := hex.EncodeToString(hmacSHA256(key, stringToSign))
	if !hmac.Equal([]byte(want), []byte(sig.signature)) {
		return errorf("SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your key and signing method.")
	}
	q.tok = tok
	return h.checkPayload(q, payload, key, sig)
}

// parseSignature reads a request's signature from its Authorization
// header or, presigned, its query.
func parseSignature(r *http.Request) (*signature, error) {
	auth := r.Header.Get("Authorization")
	query := r.URL.Query()
	switch {
	case strings.HasPrefix(auth, algorithm+" "):
		return parseAuthorization(r, strings.TrimPrefix(auth, algorithm+" "))
	case query.Get("X-Amz-Algorithm") != "":
		return parsePresigned(query)
	case strings.HasPrefix(auth, "AWS "), query.Get("AWSAccessKeyId") != "":
		return nil, errorf("NotImplemented", "AWS Signature Version 2 is not supported: sign requests with Signature Version 4 (AWS4-HMAC-SHA256).")
	case auth != "":
		return nil, errorf("AuthorizationHeaderMalformed", "The authorization header's algorithm is not supported: want %s.", algorithm)
	}
	return nil, errorf("AccessDenied", "Anonymous access is not allowed: sign the request with AWS Signature Version 4.")
}

// parseAuthorization reads the fields of an Authorization header:
// Credential=<access>/<scope>, SignedHeaders=a;b, Signature=<hex>.
func parseAuthorization(r *http.Request, fields string) (*signature, error) {
	sig := &signature{}
	var credential, signed string
	for f := range strings.SplitSeq(fields, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
		switch k {
		case "Credential":
			credential = v
		case "SignedHeaders":
			signed = v
		case "Signature":
			sig.signature = v
		}
	}
	if credential == "" || signed == "" || sig.signature == "" {
		return nil, errorf("AuthorizationHeaderMalformed", "The authorization header is malformed: it needs Credential, SignedHeaders and Signature.")
	}
	sig.signedHeaders = strings.Split(signed, ";")
	sig.amzDate = r.Header.Get("X-Amz-Date")
	if sig.amzDate == "" {
		if d, err := http.ParseTime(r.Header.Get("Date")); err == nil {
			sig.amzDate = d.UTC().Format(amzDateFormat)
		}
	}
	return sig, sig.parseCredential(credential, "AuthorizationHeaderMalformed")
}

// parsePresigned reads a presigned URL's X-Amz-* parameters.
func parsePresigned(query url.Values) (*signature, error) {
	if query.Get("X-Amz-Algorithm") != algorithm {
		return nil, errorf("AuthorizationQueryParametersError", "X-Amz-Algorithm only supports %q.", algorithm)
	}
	sig := &signature{presigned: true, amzDate: query.Get("X-Amz-Date"), signature: query.Get("X-Amz-Signature")}
	sig.signedHeaders = strings.Split(query.Get("X-Amz-SignedHeaders"), ";")
	seconds, err := strconv.Atoi(query.Get("X-Amz-Expires"))
	switch {
	case sig.signature == "" || query.Get("X-Amz-SignedHeaders") == "" || err != nil:
		return nil, errorf("AuthorizationQueryParametersError", "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.")
	case seconds < 1 || time.Duration(seconds)*time.Second > maxPresignedFor:
		return nil, errorf("AuthorizationQueryParametersError", "X-Amz-Expires must be between 1 and %d seconds.", int(maxPresignedFor.Seconds()))
	}
	sig.expires = time.Duration(seconds) * time.Second
	return sig, sig.parseCredential(query.Get("X-Amz-Credential"), "AuthorizationQueryParametersError")
}

// parseCredential reads <access>/<date>/<region>/s3/aws4_request and the
// request's date, checking they agree; malformed is the S3 code of an
// error.
func (s *signature) parseCredential(credential, malformed string) error {
	parts := strings.Split(credential, "/")
	if len(parts) != 5 || parts[0] == "" || parts[4] != "aws4_request" {
		return errorf(malformed, "The credential %q is malformed: want <access key>/<YYYYMMDD>/<region>/s3/aws4_request.", credential)
	}
	s.access, s.scopeDate, s.region, s.service = parts[0], parts[1], parts[2], parts[3]
	if s.service != "s3" {
		return errorf(malformed, "The credential is for the service %q: this is s3.", s.service)
	}
	date, err := time.Parse(amzDateFormat, s.amzDate)
	if err != nil {
		return errorf("AccessDenied", "AWS authentication requires a valid Date or x-amz-date header.")
	}
	if s.scopeDate != s.amzDate[:8] {
		return errorf(malformed, "The credential's date %q is not the request's (%s).", s.scopeDate, s.amzDate[:8])
	}
	s.date = date
	return nil
}

// checkTime refuses a request signed too far from now, or a presigned
// URL expired or not valid yet.
func (h *Handler) checkTime(s *signature) error {
	now := h.opts.Now()
	switch {
	case s.presigned && now.After(s.date.Add(s.expires)):
		return errorf("AccessDenied", "Request has expired")
	case s.presigned && s.date.After(now.Add(h.opts.MaxSkew)):
		return errorf("AccessDenied", "Request is not valid yet")
	case !s.presigned && (s.date.Before(now.Add(-h.opts.MaxSkew)) || s.date.After(now.Add(h.opts.MaxSkew))):
		return errorf("RequestTimeTooSkewed", "The difference between the request time (%s) and the server's time (%s) is too large.",
			s.date.Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return nil
}

// canonicalRequest is r's canonical form as AWS defines it: method, URI
// (the path as decoded, encoded once by AWS's rules), sorted query
// (without the signature), signed headers (values trimmed, inner spaces
// collapsed), their names, and the payload's hash.
func canonicalRequest(r *http.Request, s *signature, payload string) string {
	var b strings.Builder
	b.WriteString(r.Method + "\n")
	path := r.URL.Path
	if path == "" {
		path = "/"
	}
	b.WriteString(uriEncode(path, false) + "\n")
	b.WriteString(canonicalQuery(r.URL.RawQuery) + "\n")
	for _, name := range s.signedHeaders {
		b.WriteString(name + ":" + canonicalHeader(r, name) + "\n")
	}
	b.WriteString("\n" + strings.Join(s.signedHeaders, ";") + "\n")
	b.WriteString(payload)
	return b.String()
}

// canonicalQuery is a raw query's parameters, each name and value
// decoded and encoded again by AWS's rules, sorted, X-Amz-Signature left
// out.
func canonicalQuery(raw string) string {
	var params []string
	for p := range strings.SplitSeq(raw, "&") {
		if p == "" {
			continue
		}
		k, v, _ := strings.Cut(p, "=")
		k, v = queryUnescape(k), queryUnescape(v)
		if k == "X-Amz-Signature" {
			continue
		}
		params = append(params, uriEncode(k, true)+"="+uriEncode(v, true))
	}
	slices.Sort(params)
	return strings.Join(params, "&")
}

// queryUnescape decodes a query's name or value ('+' a space), or keeps
// it as it is if it is not encoded properly.
func queryUnescape(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}

// canonicalHeader is the signed value of header name (lower case):
// r's values joined by commas, each trimmed with runs of spaces made one.
func canonicalHeader(r *http.Request, name string) string {
	values := r.Header.Values(name)
	switch name {
	case "host":
		values = []string{r.Host}
	case "content-length":
		if len(values) == 0 && r.ContentLength >= 0 {
			values = []string{strconv.FormatInt(r.ContentLength, 10)}
		}
	}
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = strings.Join(strings.Fields(v), " ")
	}
	return strings.Join(out, ",")
}

// uriEncode encodes s by AWS's rules: every byte but the unreserved
// (A-Z a-z 0-9 - . _ ~) as %XX in upper case, and '/' too unless it is a
// path (encodeSlash false).
func uriEncode(s string, encodeSlash bool) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '.', c == '_', c == '~':
			b.WriteByte(c)
		case c == '/' && !encodeSlash:
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
		}
	}
	return b.String()
}

// signingKey derives the key of a secret for a day, region and service.
func signingKey(secret, date, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	return hmacSHA256(k, "aws4_request")
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

func hashHex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
