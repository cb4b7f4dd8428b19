package proxy

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/trustack/trustack/objectstore"
)

// entry is one line of a listing, as the nodes give it in JSON: an
// object of a container, a container of an account, or a subdirectory
// (Subdir set) that a delimiter folded.
type entry struct {
	Subdir       string `json:"subdir"`
	Name         string `json:"name"`
	Hash         string `json:"hash"`
	Bytes        int64  `json:"bytes"`
	ContentType  string `json:"content_type"`
	LastModified string `json:"last_modified"`
	Count        int64  `json:"count"`
}

// listingQuery is the query a listing passes to the nodes: the listing
// parameters of the client's, checked. An error is a 400's or a 412's
// message (limit over max).
func listingQuery(q url.Values, max int) (string, int, error) {
	out := url.Values{}
	for _, k := range []string{"prefix", "delimiter", "marker", "end_marker", "reverse"} {
		if v := q.Get(k); v != "" {
			out.Set(k, v)
		}
	}
	if d := q.Get("delimiter"); len(d) > 1 {
		return "", http.StatusPreconditionFailed, fmt.Errorf("bad delimiter %q: one character at most", d)
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		switch {
		case err != nil || n < 0:
			return "", http.StatusPreconditionFailed, fmt.Errorf("value of limit must be a positive integer")
		case n > max:
			return "", http.StatusPreconditionFailed, fmt.Errorf("maximum limit is %d", max)
		}
		out.Set("limit", v)
	}
	if path := q.Get("path"); path != "" { // the old way of listing one level
		out.Set("prefix", strings.TrimSuffix(path, "/")+"/")
		out.Set("delimiter", "/")
	}
	out.Set("format", "json")
	return "?" + out.Encode(), 0, nil
}

// listingFormat is the format a client asked for: its format parameter,
// else its Accept header; plain text by default.
func listingFormat(r *http.Request) string {
	switch f := strings.ToLower(r.URL.Query().Get("format")); f {
	case "json", "xml", "plain":
		return f
	}
	accept := r.Header.Get("Accept")
	switch {
	case strings.Contains(accept, "application/json"):
		return "json"
	case strings.Contains(accept, "application/xml"), strings.Contains(accept, "text/xml"):
		return "xml"
	}
	return "plain"
}

// writeListing answers a listing GET with the node's JSON listing in the
// client's format: kind names the XML root ("account", "container") and
// name its name. An empty plain listing is 204, as Swift answers.
func writeListing(w http.ResponseWriter, r *http.Request, kind, name string, nodeJSON []byte, status int) {
	var entries []entry
	if err := json.Unmarshal(nodeJSON, &entries); err != nil {
		swiftError(w, r, http.StatusInternalServerError, "a node's listing could not be read")
		return
	}
	var body []byte
	switch listingFormat(r) {
	case "json":
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		body = nodeJSON
	case "xml":
		w.Header().Set("Content-Type", "application/xml; charset=utf-8")
		body = listingXML(kind, name, entries)
	default:
		if len(entries) == 0 {
			w.Header().Set("Content-Type", "text/html; charset=UTF-8")
			w.Header().Set("Content-Length", "0")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		var b strings.Builder
		for _, e := range entries {
			b.WriteString(e.Name + e.Subdir + "\n")
		}
		body = []byte(b.String())
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

// listingXML renders a listing as Swift's XML.
func listingXML(kind, name string, entries []entry) []byte {
	var b bytes.Buffer
	b.WriteString(xml.Header[:len(xml.Header)-1])
	b.WriteString("\n<" + kind + ` name="` + escapeXML(name) + `">`)
	item := "object"
	if kind == "account" {
		item = "container"
	}
	for _, e := range entries {
		if e.Subdir != "" {
			fmt.Fprintf(&b, `<subdir name="%s"><name>%s</name></subdir>`, escapeXML(e.Subdir), escapeXML(e.Subdir))
			continue
		}
		fmt.Fprintf(&b, "<%s><name>%s</name>", item, escapeXML(e.Name))
		if kind == "account" {
			fmt.Fprintf(&b, "<count>%d</count><bytes>%d</bytes>", e.Count, e.Bytes)
		} else {
			fmt.Fprintf(&b, "<hash>%s</hash><bytes>%d</bytes><content_type>%s</content_type>", escapeXML(e.Hash), e.Bytes, escapeXML(e.ContentType))
		}
		fmt.Fprintf(&b, "<last_modified>%s</last_modified></%s>", escapeXML(e.LastModified), item)
	}
	b.WriteString("</" + kind + ">")
	return b.Bytes()
}

func escapeXML(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

// maxListing is the largest limit a listing takes, by kind.
var maxListing = map[string]int{"account": objectstore.AccountListingLimit, "container": objectstore.ContainerListingLimit}
