// Package proxy is the object store's front: the Swift API that users'
// clients speak (accounts, containers and objects under
// /v1/AUTH_<project>), authenticated with Keystone tokens, carried out
// on the storage nodes that the rings name. Writes go to every replica
// and succeed on a quorum, with handoff nodes standing in for primaries
// that cannot be reached; reads go to the first replica that answers,
// and a full read cut off (a node failing, or finding its copy corrupt)
// resumes from another replica.
package proxy

import (
	"context"
	"fmt"
	"html"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/api/openstack"
	"github.com/trustack/trustack/objectstore"
	"github.com/trustack/trustack/objectstore/ring"
)

// Rings are the cluster's three rings.
type Rings struct {
	Account, Container, Object *ring.Ring
}

// Options configure a Proxy; zero values take the defaults.
type Options struct {
	// Key is the cluster's backend key, sent to the nodes on every
	// request ("" if the nodes ask for none).
	Key string
	// Hasher hashes names as the nodes do.
	Hasher objectstore.Hasher
	// OperatorRoles may do anything in their project's account
	// (default admin, member); ReaderRoles may read it (default
	// reader); ResellerAdminRole may do anything in every account
	// (default ResellerAdmin). These are Swift's keystoneauth settings.
	OperatorRoles     []string
	ReaderRoles       []string
	ResellerAdminRole string
	// ConnectTimeout bounds reaching a node, NodeTimeout each of its
	// answers and each chunk it takes (defaults 2 s and 10 s).
	ConnectTimeout, NodeTimeout time.Duration
	// InfoTTL is how long what the proxy learnt of an account or
	// container (existence, metadata, ACLs) is reused (default 5 s).
	InfoTTL time.Duration
	// Now returns the current time (default time.Now).
	Now func() time.Time
	// Log receives errors of nodes and requests (default: discarded).
	Log *slog.Logger
}

// Proxy serves the Swift API. It is an http.Handler, safe for concurrent
// use, to mount at a prefix stripped before it (the API's paths are then
// /v1/... and /info).
type Proxy struct {
	rings     Rings
	validator openstack.Validator
	opts      Options
	client    *http.Client
	clock     clock
	limiter   errorLimiter
	infoMu    sync.Mutex
	infos     map[string]cachedInfo // by /account[/container]
}

// New returns a proxy over the rings, validating tokens with v.
func New(rings Rings, v openstack.Validator, opts Options) *Proxy {
	if opts.OperatorRoles == nil {
		opts.OperatorRoles = []string{"admin", "member"}
	}
	if opts.ReaderRoles == nil {
		opts.ReaderRoles = []string{"reader"}
	}
	if opts.ResellerAdminRole == "" {
		opts.ResellerAdminRole = "ResellerAdmin"
	}
	if opts.ConnectTimeout == 0 {
		opts.ConnectTimeout = 2 * time.Second
	}
	if opts.NodeTimeout == 0 {
		opts.NodeTimeout = 10 * time.Second
	}
	if opts.InfoTTL == 0 {
		opts.InfoTTL = 5 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	p := &Proxy{rings: rings, validator: v, opts: opts, infos: map[string]cachedInfo{}}
	p.client = newClient(opts.ConnectTimeout, opts.NodeTimeout)
	p.clock.now = opts.Now
	return p
}

// clock hands out write timestamps: the time, but each later than the
// one before, so that two writes of one name through this proxy in the
// same 10 µs still order.
type clock struct {
	mu   sync.Mutex
	now  func() time.Time
	last objectstore.Timestamp
}

func (c *clock) next() objectstore.Timestamp {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.last = max(objectstore.TimestampOf(c.now()), c.last+1)
	return c.last
}

// target is what a request is about: an account, a container of it, or
// an object of that.
type target struct {
	account, container, object string
}

// path is the target's backend path, each part escaped.
func (t target) path() string {
	p := "/" + url.PathEscape(t.account)
	if t.container != "" {
		p += "/" + url.PathEscape(t.container)
		if t.object != "" {
			p += "/" + escapeObject(t.object)
		}
	}
	return p
}

// escapeObject escapes an object's name for a path, keeping its slashes.
func escapeObject(name string) string {
	parts := strings.Split(name, "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return strings.Join(parts, "/")
}

// ServeHTTP serves /info and /v1/<account>[/<container>[/<object>]].
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Trans-Id", transID(r))
	if r.URL.Path == "/info" {
		p.info(w, r)
		return
	}
	t, err := parsePath(r.URL.Path)
	if err != nil {
		status := http.StatusBadRequest
		if !strings.HasPrefix(r.URL.Path, "/v1/") {
			status = http.StatusPreconditionFailed
		}
		swiftError(w, r, status, err.Error())
		return
	}
	if r.Method == http.MethodOptions {
		w.Header().Set("Allow", "HEAD, GET, PUT, POST, DELETE, COPY, OPTIONS")
		w.WriteHeader(http.StatusOK)
		return
	}
	who, err := p.authenticate(r, t)
	if err != nil {
		status, msg := openstack.StatusOf(err)
		swiftError(w, r, status, msg)
		return
	}
	r = r.WithContext(context.WithValue(r.Context(), callerKey{}, who))
	switch {
	case t.object != "":
		p.serveObject(w, r, t, who)
	case t.container != "":
		p.serveContainer(w, r, t, who)
	default:
		p.serveAccount(w, r, t, who)
	}
}

// transID is the ID of the request in Swift's form: tx, 21 hexadecimal
// digits (of the request ID), a dash, and the time in hexadecimal.
func transID(r *http.Request) string {
	id := strings.ReplaceAll(strings.TrimPrefix(openstack.RequestID(r.Context()), "req-"), "-", "")
	if len(id) < 21 {
		id = fmt.Sprintf("%021x", time.Now().UnixNano())
	}
	return fmt.Sprintf("tx%s-%010x", id[:21], time.Now().Unix())
}

// parsePath splits /v1/account[/container[/object]], checking the
// names against Swift's limits.
func parsePath(p string) (target, error) {
	rest, ok := strings.CutPrefix(p, "/v1/")
	if !ok {
		return target{}, fmt.Errorf("invalid path %s: want /v1/<account>[/<container>[/<object>]]", p)
	}
	parts := strings.SplitN(rest, "/", 3)
	t := target{account: parts[0]}
	if len(parts) > 1 {
		t.container = parts[1]
	}
	if len(parts) > 2 {
		t.object = parts[2]
	}
	switch {
	case t.account == "":
		return t, fmt.Errorf("invalid path %s: no account", p)
	case len(parts) > 1 && t.container == "" && len(parts) == 3:
		return t, fmt.Errorf("invalid path %s: no container", p)
	case len(t.account) > objectstore.MaxAccountNameLength:
		return t, fmt.Errorf("account name length of %d longer than %d", len(t.account), objectstore.MaxAccountNameLength)
	case len(t.container) > objectstore.MaxContainerNameLength:
		return t, fmt.Errorf("container name length of %d longer than %d", len(t.container), objectstore.MaxContainerNameLength)
	case len(t.object) > objectstore.MaxObjectNameLength:
		return t, fmt.Errorf("object name length of %d longer than %d", len(t.object), objectstore.MaxObjectNameLength)
	case strings.ContainsRune(p, 0):
		return t, fmt.Errorf("invalid path: a name holds a NUL")
	}
	return t, nil
}

// caller is who makes a request: the token's user and project, and what
// its roles let it do; or the holder of a TempURL of one object.
// inProcess marks an in-process client (AsCaller), which may also set and
// see objects' system metadata (X-Object-Sysmeta-*), as Swift's own
// middlewares do; clients over HTTP can do neither.
type caller struct {
	token     *trustack.Token
	tempURL   *target
	inProcess bool
}

// tokenKey carries the token of a caller that an in-process client
// authenticated itself.
type tokenKey struct{}

// AsCaller returns ctx carrying tok, for an in-process client that
// authenticated its caller itself (the S3 API by a request's signature,
// the image service as its own user): a request made with the context
// is served as tok's owner, whatever headers it has. Such a request may
// also set an object's system metadata (X-Object-Sysmeta-* headers) and
// sees it in answers; X-Object-Sysmeta-Container-Update-Override-Etag
// is the ETag the object is listed with.
func AsCaller(ctx context.Context, tok *trustack.Token) context.Context {
	return context.WithValue(ctx, tokenKey{}, tok)
}

// authenticate finds who makes r on t: the caller its context carries
// (AsCaller), the holder of a valid TempURL, or the owner of the token
// (X-Auth-Token or X-Storage-Token) it validates; a request with none
// of these is anonymous, which only ACLs may let in. A TempURL that is
// not valid, or a token, is EUNAUTHORIZED.
func (p *Proxy) authenticate(r *http.Request, t target) (caller, error) {
	if tok, ok := r.Context().Value(tokenKey{}).(*trustack.Token); ok && tok != nil {
		return caller{token: tok, inProcess: true}, nil
	}
	granted, err := p.tempURL(r, t)
	if err != nil {
		return caller{}, trustack.Errorf(trustack.EUNAUTHORIZED, "%v", err)
	}
	if granted != nil {
		return caller{tempURL: granted}, nil
	}
	header := r.Header.Get("X-Auth-Token")
	if header == "" {
		header = r.Header.Get("X-Storage-Token")
	}
	if header == "" {
		return caller{}, nil
	}
	tok, err := p.validator.Validate(r.Context(), header)
	if err != nil {
		return caller{}, err
	}
	return caller{token: tok}, nil
}

// hasRole reports whether the caller holds one of roles (case does not
// matter, as in keystoneauth).
func (c caller) hasRole(roles ...string) bool {
	if c.token == nil {
		return false
	}
	for _, have := range c.token.Roles {
		if slices.ContainsFunc(roles, func(want string) bool { return strings.EqualFold(want, have.Name) }) {
			return true
		}
	}
	return false
}

// access is what a caller may do in an account.
type access int

const (
	noAccess access = iota
	readAccess
	fullAccess
)

// accessTo is what c may do in account, as keystoneauth decides: a
// reseller admin everything everywhere but in the cluster's hidden
// accounts (objectstore.HiddenAccount), which only its servers use; in
// its own project's account (AUTH_<project ID>), an operator everything
// and a reader reading.
func (p *Proxy) accessTo(c caller, account string) access {
	switch {
	case c.token == nil || objectstore.HiddenAccount(account):
		return noAccess
	case c.hasRole(p.opts.ResellerAdminRole):
		return fullAccess
	case c.token.Project == nil || account != "AUTH_"+c.token.Project.ID:
		return noAccess
	case c.hasRole(p.opts.OperatorRoles...):
		return fullAccess
	case c.hasRole(p.opts.ReaderRoles...):
		return readAccess
	}
	return noAccess
}

// denied answers a request its caller may not make: 401 to the
// anonymous, 403 to others.
func denied(w http.ResponseWriter, r *http.Request, c caller) {
	if c.token == nil {
		swiftError(w, r, http.StatusUnauthorized, "This server could not verify that you are authorized to access the document you requested.")
		return
	}
	swiftError(w, r, http.StatusForbidden, "Access was denied to this resource.")
}

// swiftError answers with status and Swift's small HTML body (none for
// HEAD), its message a sentence.
func swiftError(w http.ResponseWriter, r *http.Request, status int, message string) {
	if message != "" {
		message = strings.ToUpper(message[:1]) + message[1:]
	}
	body := fmt.Sprintf("<html><h1>%s</h1><p>%s</p></html>", http.StatusText(status), html.EscapeString(message))
	w.Header().Set("Content-Type", "text/html; charset=UTF-8")
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		fmt.Fprint(w, body)
	}
}

// readOnly reports whether a method only reads.
func readOnly(method string) bool {
	return method == http.MethodGet || method == http.MethodHead
}

// allowed reports whether c may make r on t, answering the request if
// not.
func (p *Proxy) allowed(w http.ResponseWriter, r *http.Request, t target, c caller) bool {
	if p.may(r, r.Method, t, c) {
		return true
	}
	denied(w, r, c)
	return false
}

// may reports whether c may apply method to t (in request r), by its
// roles in t's account or by the container's ACLs.
func (p *Proxy) may(r *http.Request, method string, t target, c caller) bool {
	if c.tempURL != nil {
		return t == *c.tempURL // the method was checked with the signature
	}
	switch p.accessTo(c, t.account) {
	case fullAccess:
		return true
	case readAccess:
		if readOnly(method) {
			return true
		}
	}
	return p.aclAllows(r, method, t, c)
}

// writeTimestamp returns a new timestamp for a write, as both the
// X-Timestamp header's value and itself.
func (p *Proxy) writeTimestamp() (objectstore.Timestamp, string) {
	ts := p.clock.next()
	return ts, ts.String()
}
