package proxy

import (
	"net/http"
	"strings"

	"github.com/trustack/trustack/objectstore/node"
)

// containerHeaders are the headers of a container, beyond its metadata,
// that its owner sets.
var containerHeaders = []string{"X-Container-Read", "X-Container-Write", "X-Versions-Location", "X-History-Location",
	"X-Container-Meta-Quota-Bytes", "X-Container-Meta-Quota-Count"}

// serveContainer serves a container: HEAD, GET (its objects), PUT
// (create, or set metadata), POST (metadata) and DELETE (when empty).
func (p *Proxy) serveContainer(w http.ResponseWriter, r *http.Request, t target, who caller) {
	if r.Method == http.MethodPut && r.URL.Query().Get("extract-archive") != "" {
		p.extractArchive(w, r, t, who) // each file as the caller may
		return
	}
	if !p.allowed(w, r, t, who) {
		return
	}
	switch r.Method {
	case http.MethodHead, http.MethodGet:
		p.readListing(w, r, t, "container")
	case http.MethodPut, http.MethodPost:
		if r.Method == http.MethodPut && strings.Contains(t.container, "/") {
			swiftError(w, r, http.StatusBadRequest, "container names cannot hold a slash")
			return
		}
		meta, err := userMeta(r.Header, "Container", containerHeaders...)
		if err == nil {
			err = checkQuotas(meta, "X-Container-Meta-Quota-Bytes", "X-Container-Meta-Quota-Count")
		}
		if err != nil {
			swiftError(w, r, http.StatusBadRequest, err.Error())
			return
		}
		if r.Method == http.MethodPut {
			if status := p.ensureAccount(r.Context(), t); status/100 != 2 {
				p.answer(w, r, status, nil)
				return
			}
		}
		status := p.writeContainer(r, t, meta)
		if r.Method == http.MethodPost && status/100 == 2 {
			status = http.StatusNoContent
		}
		p.answer(w, r, status, nil)
	case http.MethodDelete:
		p.answer(w, r, p.writeContainer(r, t, nil), nil)
	default:
		w.Header().Set("Allow", "HEAD, GET, PUT, POST, DELETE")
		swiftError(w, r, http.StatusMethodNotAllowed, "The method is not allowed for this resource.")
	}
}

// writeContainer sends r's write of a container to its replicas, each
// told which account replica to update, and returns the status that
// stands.
func (p *Proxy) writeContainer(r *http.Request, t target, meta http.Header) int {
	_, ts := p.writeTimestamp()
	rg, part := p.ringOf(t)
	accounts, accountPart := p.ringOf(target{account: t.account})
	replies := p.fanOut(r.Context(), rg, part, r.Method, t.path(), func(i int) http.Header {
		h := meta.Clone()
		if h == nil {
			h = http.Header{}
		}
		h.Set("X-Timestamp", ts)
		node.ReplicaHeaders(h, "Account", accounts, accountPart, i)
		return h
	}, r.Method == http.MethodPut)
	p.forgetInfo(t)
	return bestStatus(statuses(replies))
}
