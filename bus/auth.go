package bus

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"log/slog"
	"runtime/debug"
	"slices"
	"strings"
	"sync"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// inboxPrefix starts the subject of every private inbox: a client connected
// as user u receives its replies on inboxPrefix + u + ".>".
const inboxPrefix = "_I."

// minPrune is how many authenticated connections a Server remembers before
// it first looks for closed ones to forget.
const minPrune = 1024

// Credentials are what a client presented when it connected.
type Credentials struct {
	User     string // user name, "" for none
	Password string
	// Key is the identifier of the client's key (sent in NATS's nkey field), "" for none;
	// Signature is the client's signature with that key of Nonce, the random nonce the server
	// presented to this connection (the server always presents one when it authenticates).
	Key       string
	Signature []byte
	Nonce     []byte
}

// Grant is what an authenticated client may do.
type Grant struct {
	// Name identifies the client to Disconnect, and names its private inbox: a client
	// connected with credentials receives replies on "_I.<Name>.>" and the grant lets it
	// subscribe there (and nowhere else beyond Subscribe). Must be a single valid subject token.
	//
	// A Conn connected with Password or SignedNonce takes its replies on the inbox of its user
	// name, so Name must be that user name for its requests to get their replies.
	Name string
	// Publish and Subscribe are the subjects (NATS wildcards allowed) the client may publish
	// to and subscribe to. A client may always answer requests it received (NATS
	// allow_responses, one reply per request) whatever Publish says.
	Publish, Subscribe []string
}

// Authenticator decides what a connecting client may do; false refuses the connection
// (the client gets NATS's authorization violation). It is called for every connection and
// reconnection, from nats-server's goroutines, so it must be safe for concurrent use and fast.
// It must not call Disconnect, which waits for the Authenticator calls in progress. A panic
// in it refuses the connection and is logged.
type Authenticator func(Credentials) (Grant, bool)

// auth is the server.Authentication of a Server with an Authenticator: it
// lets in trusted in-process clients, asks the Authenticator about the
// others, and remembers who got which grant so that Disconnect can find
// them.
type auth struct {
	fn     Authenticator
	secret []byte // the token of Trusted connections
	log    *slog.Logger
	ns     *server.Server // set before the server starts, so before any Check

	// gate is read-locked by Check from the moment it asks the
	// Authenticator until it has recorded the grant, and locked by
	// Disconnect: a connection that was granted under the policy that
	// Disconnect's caller has just changed is recorded by the time
	// Disconnect looks, and any later one is judged by the new policy.
	gate sync.RWMutex

	mu sync.Mutex
	// names holds the grant name of each connection, by client ID, that
	// was granted and was open when last looked at.
	names  map[uint64]string
	pruned int // len(names) after the last prune
}

var _ server.Authentication = (*auth)(nil)

func newAuth(fn Authenticator, log *slog.Logger) *auth {
	return &auth{
		fn:     fn,
		secret: []byte(rand.Text()),
		log:    log,
		names:  make(map[uint64]string),
	}
}

// Check authenticates a client of the server, registering the permissions
// it gets. nats-server calls it on the client's goroutine for each CONNECT,
// holding no lock.
func (a *auth) Check(c server.ClientAuthentication) bool {
	opts := c.GetOpts()
	id := c.GetID()
	if opts.Token != "" {
		// Only Trusted sends a token, and only in the process.
		a.forget(id)
		addr := c.RemoteAddress()
		if addr == nil || addr.Network() != "pipe" || subtle.ConstantTimeCompare([]byte(opts.Token), a.secret) != 1 {
			return false
		}
		c.RegisterUser(&server.User{}) // no permissions: every right
		return true
	}

	creds := Credentials{
		User:     opts.Username,
		Password: opts.Password,
		Key:      opts.Nkey,
		Nonce:    bytes.Clone(c.GetNonce()),
	}
	if opts.Sig != "" {
		sig, err := base64.RawURLEncoding.DecodeString(opts.Sig)
		if err != nil {
			// nats-server's own nkey check accepts padded base64 too.
			if sig, err = base64.StdEncoding.DecodeString(opts.Sig); err != nil {
				a.forget(id)
				return false
			}
		}
		creds.Signature = sig
	}

	a.gate.RLock()
	defer a.gate.RUnlock()
	grant, ok := a.authenticate(creds)
	if ok && !validToken(grant.Name) {
		a.log.Error("message bus authenticator granted an invalid name; connection refused", "name", grant.Name, "user", creds.User)
		ok = false
	}
	if !ok {
		a.forget(id) // a second CONNECT may have been granted before
		return false
	}
	c.RegisterUser(&server.User{Username: grant.Name, Permissions: grant.permissions()})
	a.remember(id, grant.Name)
	return true
}

// authenticate calls the Authenticator, refusing the client if it panics:
// it runs on nats-server's goroutines, where a panic would end the process.
func (a *auth) authenticate(creds Credentials) (grant Grant, ok bool) {
	defer func() {
		if p := recover(); p != nil {
			a.log.Error("message bus authenticator panicked; connection refused", "user", creds.User, "panic", p, "stack", string(debug.Stack()))
			grant, ok = Grant{}, false
		}
	}()
	return a.fn(creds)
}

// trustedReplies are the inboxes of Trusted connections (nats.go's
// default prefix, which no Grant can subscribe to): every client may
// publish there. NATS lets a client answer a request it received
// (Response below) only on the connection it received it on; a client
// that reconnects, to another node of a cluster or to the same server
// after a blip, while it handles a request would see its answer dropped,
// and its requester wait out its timeout. Its answers to the
// controllers go through whatever connection it has. A client learns
// such an inbox only from a request it received.
const trustedReplies = nats.InboxPrefix + ">"

// permissions returns the NATS permissions of g.
func (g Grant) permissions() *server.Permissions {
	return &server.Permissions{
		// Never nil: nats-server reads a nil Allow as "anything".
		Publish:   &server.SubjectPermission{Allow: append(slices.Clone(g.Publish), trustedReplies)},
		Subscribe: &server.SubjectPermission{Allow: append(slices.Clone(g.Subscribe), inboxPrefix+g.Name+".>")},
		// No expiry: a request may run as long as its requester waits.
		Response: &server.ResponsePermission{MaxMsgs: 1},
	}
}

// remember records that connection id was granted under name, forgetting
// the connections that closed once the record has doubled since it last
// did, so that it stays proportional to the connections open.
func (a *auth) remember(id uint64, name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.names[id] = name
	if len(a.names) <= max(2*a.pruned, minPrune) {
		return
	}
	for id := range a.names {
		if a.ns.GetClient(id) == nil {
			delete(a.names, id)
		}
	}
	a.pruned = len(a.names)
}

func (a *auth) forget(id uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.names, id)
}

// disconnect closes the connections granted under name.
func (a *auth) disconnect(name string) int {
	a.gate.Lock()
	defer a.gate.Unlock()
	var ids []uint64
	a.mu.Lock()
	for id, n := range a.names {
		if n == name {
			ids = append(ids, id)
			delete(a.names, id)
		}
	}
	a.mu.Unlock()
	closed := 0
	for _, id := range ids {
		// An error means that the connection has closed already.
		if a.ns.DisconnectClientByID(id) == nil {
			closed++
		}
	}
	return closed
}

// Disconnect closes every client connection currently authenticated under
// the grant name name and returns how many it closed; 0 without an
// Authenticator. The clients then try to reconnect, and the Authenticator
// decides whether they may: change it to refuse them before calling
// Disconnect. Disconnect waits for the Authenticator calls in progress, so
// that a connection granted under the former policy cannot slip by, and it
// is safe for concurrent use. It closes the connections of this server
// only: in a cluster, the client's connections to other nodes stay open
// until Disconnect is called there too.
func (s *Server) Disconnect(name string) int {
	if s.auth == nil {
		return 0
	}
	return s.auth.disconnect(name)
}

// validToken reports whether s is a single token of a NATS subject,
// without wildcards.
func validToken(s string) bool {
	return s != "" && s != "*" && s != ">" && !strings.ContainsAny(s, ".\t\n\f\r ")
}
