package proxy

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// TempURLs let anyone holding the URL make one request of one object
// until a time, without a token: the URL carries temp_url_expires and
// temp_url_sig, an HMAC (SHA-1, SHA-256 or SHA-512) of "METHOD\nEXPIRES\n
// PATH" under one of the keys of the account (X-Account-Meta-Temp-URL-Key
// and -Key-2) or of the container (X-Container-Meta-Temp-URL-Key, -Key-2).
// PATH is the request's path as the client sees it (with the API's
// prefix) or from /v1 on; a HEAD may use a signature for GET or PUT.

// tempURLMethods are the methods a TempURL may be signed for.
var tempURLMethods = []string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPost, http.MethodDelete}

// tempURL returns the object a request's TempURL grants (nil if it has
// none), or an error for a TempURL that is expired, malformed or not
// signed by a key of the account or container.
func (p *Proxy) tempURL(r *http.Request, t target) (*target, error) {
	q := r.URL.Query()
	sig, expires := q.Get("temp_url_sig"), q.Get("temp_url_expires")
	if sig == "" && expires == "" {
		return nil, nil
	}
	denied := fmt.Errorf("the TempURL is invalid or expired")
	if t.object == "" || sig == "" || !slices.Contains(tempURLMethods, r.Method) {
		return nil, denied
	}
	until, err := strconv.ParseInt(expires, 10, 64)
	if err != nil {
		at, perr := time.Parse("2006-01-02T15:04:05Z", expires)
		if perr != nil {
			return nil, denied
		}
		until = at.Unix()
	}
	if p.opts.Now().Unix() >= until {
		return nil, denied
	}
	mac, want, err := signature(sig)
	if err != nil {
		return nil, denied
	}
	methods := []string{r.Method}
	if r.Method == http.MethodHead {
		methods = []string{http.MethodHead, http.MethodGet, http.MethodPut}
	}
	paths := []string{r.URL.Path}
	if u, err := url.ParseRequestURI(r.RequestURI); err == nil && u.Path != r.URL.Path {
		paths = append(paths, u.Path)
	}
	for _, key := range p.tempURLKeys(r, t) {
		for _, m := range methods {
			for _, pth := range paths {
				h := hmac.New(mac, []byte(key))
				fmt.Fprintf(h, "%s\n%s\n%s", m, expires, pth)
				if hmac.Equal(h.Sum(nil), want) {
					return &t, nil
				}
			}
		}
	}
	return nil, denied
}

// signature parses a TempURL's signature: hexadecimal (its length says
// the digest), or DIGEST:BASE64.
func signature(sig string) (func() hash.Hash, []byte, error) {
	if d, b64, ok := strings.Cut(sig, ":"); ok {
		digests := map[string]func() hash.Hash{"sha1": sha1.New, "sha256": sha256.New, "sha512": sha512.New}
		mac := digests[d]
		raw, err := base64.URLEncoding.DecodeString(b64 + strings.Repeat("=", (4-len(b64)%4)%4))
		if mac == nil || err != nil {
			return nil, nil, fmt.Errorf("bad signature")
		}
		return mac, raw, nil
	}
	raw, err := hex.DecodeString(sig)
	if err != nil {
		return nil, nil, err
	}
	switch len(raw) {
	case sha1.Size:
		return sha1.New, raw, nil
	case sha256.Size:
		return sha256.New, raw, nil
	case sha512.Size:
		return sha512.New, raw, nil
	}
	return nil, nil, fmt.Errorf("bad signature")
}

// tempURLKeys returns the TempURL keys of t's account and container.
func (p *Proxy) tempURLKeys(r *http.Request, t target) []string {
	var keys []string
	acct := p.infoOf(r.Context(), target{account: t.account})
	cont := p.infoOf(r.Context(), target{account: t.account, container: t.container})
	for _, k := range []string{acct.header.Get("X-Account-Meta-Temp-Url-Key"), acct.header.Get("X-Account-Meta-Temp-Url-Key-2"),
		cont.header.Get("X-Container-Meta-Temp-Url-Key"), cont.header.Get("X-Container-Meta-Temp-Url-Key-2")} {
		if k != "" {
			keys = append(keys, k)
		}
	}
	return keys
}

// tempURLDisposition sets a TempURL GET's Content-Disposition: the
// filename parameter's, or the object's own name; inline if asked.
func tempURLDisposition(w http.ResponseWriter, r *http.Request, t target) {
	q := r.URL.Query()
	name := q.Get("filename")
	if name == "" {
		name = path.Base(t.object)
	}
	kind := "attachment"
	if _, inline := q["inline"]; inline {
		kind = "inline"
		if q.Get("filename") == "" {
			w.Header().Set("Content-Disposition", kind)
			return
		}
	}
	w.Header().Set("Content-Disposition", fmt.Sprintf(`%s; filename="%s"; filename*=UTF-8''%s`, kind, strings.ReplaceAll(name, `"`, `\"`), url.PathEscape(name)))
}
