package proxy

import (
	"context"
	"net/http"
	"strings"

	"github.com/trustack/trustack/objectstore/ring"
)

// ringOf returns the ring of what t names and its partition there.
func (p *Proxy) ringOf(t target) (*ring.Ring, int) {
	h := p.opts.Hasher.Path(t.account, t.container, t.object)
	switch {
	case t.object != "":
		return p.rings.Object, p.rings.Object.Partition(h)
	case t.container != "":
		return p.rings.Container, p.rings.Container.Partition(h)
	}
	return p.rings.Account, p.rings.Account.Partition(h)
}

// serveAccount serves HEAD, GET (the containers) and POST (metadata) of
// an account. Accounts are made when first written to (Swift's
// account_autocreate); one never written reads as empty. Operators do
// not create or delete accounts through the API.
func (p *Proxy) serveAccount(w http.ResponseWriter, r *http.Request, t target, who caller) {
	q := r.URL.Query()
	switch _, bulk := q["bulk-delete"]; {
	case bulk && (r.Method == http.MethodPost || r.Method == http.MethodDelete):
		p.bulkDelete(w, r, t, who) // each name as the caller may
		return
	case r.Method == http.MethodPut && q.Get("extract-archive") != "":
		p.extractArchive(w, r, t, who)
		return
	}
	if !p.allowed(w, r, t, who) {
		return
	}
	switch r.Method {
	case http.MethodHead, http.MethodGet:
		p.readListing(w, r, t, "account")
	case http.MethodPost:
		meta, err := userMeta(r.Header, "Account")
		if err == nil {
			err = checkQuotas(meta, "X-Account-Meta-Quota-Bytes")
		}
		if err != nil {
			swiftError(w, r, http.StatusBadRequest, err.Error())
			return
		}
		if _, ok := meta["X-Account-Meta-Quota-Bytes"]; ok && !who.hasRole(p.opts.ResellerAdminRole) {
			swiftError(w, r, http.StatusForbidden, "Only a reseller admin may set an account's quota.")
			return
		}
		status, _ := p.writeAccount(r.Context(), t, http.MethodPost, meta)
		if status == http.StatusNotFound {
			status, _ = p.writeAccount(r.Context(), t, http.MethodPut, meta)
		}
		if status/100 == 2 {
			status = http.StatusNoContent
		}
		p.answer(w, r, status, nil)
	default:
		w.Header().Set("Allow", "HEAD, GET, POST")
		swiftError(w, r, http.StatusMethodNotAllowed, "The method is not allowed for this resource.")
	}
}

// writeAccount sends a write of an account to its replicas, with meta,
// and returns the status that stands.
func (p *Proxy) writeAccount(ctx context.Context, t target, method string, meta http.Header) (int, []reply) {
	_, ts := p.writeTimestamp()
	r, part := p.ringOf(target{account: t.account})
	replies := p.fanOut(ctx, r, part, method, target{account: t.account}.path(), func(int) http.Header {
		h := meta.Clone()
		if h == nil {
			h = http.Header{}
		}
		h.Set("X-Timestamp", ts)
		return h
	}, method == http.MethodPut)
	p.forgetInfo(target{account: t.account})
	return bestStatus(statuses(replies)), replies
}

// ensureAccount makes t's account if it does not exist yet.
func (p *Proxy) ensureAccount(ctx context.Context, t target) int {
	info := p.infoOf(ctx, target{account: t.account})
	if info.status != http.StatusNotFound {
		return info.status
	}
	status, _ := p.writeAccount(ctx, t, http.MethodPut, nil)
	return status
}

// readListing answers HEAD or GET of an account or a container (kind)
// from the first replica that has it: its counts and metadata, and for
// GET its listing in the client's format. An account never written reads
// as empty.
func (p *Proxy) readListing(w http.ResponseWriter, r *http.Request, t target, kind string) {
	query, status, err := listingQuery(r.URL.Query(), maxListing[kind])
	if err != nil {
		swiftError(w, r, status, err.Error())
		return
	}
	rg, part := p.ringOf(t)
	rep := p.readFirst(r.Context(), rg, part, http.MethodGet, t.path()+query, nil)
	if rep.status == http.StatusNotFound && kind == "account" {
		rep = reply{status: http.StatusOK, body: []byte("[]"), header: http.Header{
			"X-Account-Container-Count": {"0"}, "X-Account-Object-Count": {"0"}, "X-Account-Bytes-Used": {"0"},
			"X-Timestamp": {p.clock.next().String()},
		}}
	}
	if rep.status != http.StatusOK {
		p.answer(w, r, rep.status, nil)
		return
	}
	clientHeaders(w.Header(), rep.header, false)
	policyHeaders(w.Header(), kind)
	w.Header().Del("Content-Length")
	if kind == "container" && p.accessTo(callerOf(r), t.account) == noAccess {
		// ACLs are the owner's to see.
		w.Header().Del("X-Container-Read")
		w.Header().Del("X-Container-Write")
	}
	if r.Method == http.MethodHead {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeListing(w, r, kind, nameOf(t), rep.body, http.StatusOK)
}

// nameOf is the name of an account or a container.
func nameOf(t target) string {
	if t.container != "" {
		return t.container
	}
	return t.account
}

// answer replies to a write with status and no body but Swift's error
// page for errors.
func (p *Proxy) answer(w http.ResponseWriter, r *http.Request, status int, header http.Header) {
	for k, v := range header {
		w.Header()[k] = v
	}
	if status >= 400 {
		swiftError(w, r, status, cmpOr(swiftMessages[status], http.StatusText(status)))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=UTF-8")
	if status != http.StatusNoContent {
		w.Header().Set("Content-Length", "0")
	}
	w.WriteHeader(status)
}

// callerOf is the caller a request was authenticated as.
func callerOf(r *http.Request) caller {
	c, _ := r.Context().Value(callerKey{}).(caller)
	return c
}

type callerKey struct{}

// trimQuotes strips an ETag's quotes.
func trimQuotes(etag string) string { return strings.Trim(etag, `"`) }

// policy is the name of the one storage policy, which /info lists.
const policy = "Policy-0"

// policyHeaders adds to an account's or a container's headers those of
// its storage policy: the container's policy, and the account's usage by
// policy (all of it the one policy's).
func policyHeaders(h http.Header, kind string) {
	if kind == "container" {
		h.Set("X-Storage-Policy", policy)
		return
	}
	prefix := "X-Account-Storage-Policy-" + policy + "-"
	h.Set(prefix+"Container-Count", h.Get("X-Account-Container-Count"))
	h.Set(prefix+"Object-Count", h.Get("X-Account-Object-Count"))
	h.Set(prefix+"Bytes-Used", h.Get("X-Account-Bytes-Used"))
}

// swiftMessages are Swift's messages of its error statuses.
var swiftMessages = map[int]string{
	http.StatusBadRequest:                   "The server could not comply with the request since it is either malformed or otherwise incorrect.",
	http.StatusUnauthorized:                 "This server could not verify that you are authorized to access the document you requested.",
	http.StatusForbidden:                    "Access was denied to this resource.",
	http.StatusNotFound:                     "The resource could not be found.",
	http.StatusConflict:                     "There was a conflict when trying to complete your request.",
	http.StatusPreconditionFailed:           "A precondition for this request was not met.",
	http.StatusRequestEntityTooLarge:        "The body of your request was too large for this server.",
	http.StatusRequestedRangeNotSatisfiable: "The Range requested is not available.",
	http.StatusUnprocessableEntity:          "Unable to process the contained instructions",
	http.StatusServiceUnavailable:           "The server is currently unavailable. Please try again at a later time.",
}
