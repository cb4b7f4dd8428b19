// Package bus carries trustack's messages over NATS: the requests the
// controller sends to compute-host agents and the events agents publish
// (state changes, heartbeats, attestation evidence). It runs an embedded
// nats-server for clouds without a NATS cluster and connects to it, or to
// an external cluster, by URL. The embedded server can make its clients
// authenticate, by password or by signing its nonce with a key, and limit
// each to the subjects it was granted. Payloads are JSON. A reply carries
// either a result or a trustack error code and message, so errors cross the
// wire as codes, never as text to parse. Naming subjects is the caller's
// business.
package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/trustack/trustack"
)

const (
	// defaultMaxHandlers is how many request handlers a Conn runs at once
	// unless MaxHandlers says otherwise: as many as the compute hosts that
	// `trustack up` simulates, so that hosts sharing one connection can each
	// have a request in progress.
	defaultMaxHandlers = 10_000

	// Reconnection delays double from minReconnectWait to maxReconnectWait.
	minReconnectWait = 100 * time.Millisecond
	maxReconnectWait = 5 * time.Second

	// subscribeTimeout bounds how long Subscribe and Handle wait for the
	// server to confirm a subscription.
	subscribeTimeout = 10 * time.Second
)

// Conn is a connection to a NATS server. It reconnects by itself, forever,
// after losing the server; meanwhile its subscriptions wait and what it
// sends is buffered (up to 8MB), to be delivered on reconnection. The one
// exception is a server that refuses its credentials twice in a row when
// it reconnects: then the Conn closes for good, and Done and Err tell. Its
// methods are safe for concurrent use, and one Conn can serve thousands of
// subscriptions.
type Conn struct {
	nc  *nats.Conn
	log *slog.Logger

	// ctx is the parent of every handler's context; Close cancels it.
	ctx    context.Context
	cancel context.CancelFunc
	// slots holds a token for each handler running.
	slots chan struct{}

	mu      sync.Mutex
	closed  bool
	regain  chan struct{} // closed at the next reconnection
	subs    map[*nats.Subscription]struct{}
	running sync.WaitGroup // handlers started and not returned
	done    chan struct{}  // closed when the connection has ended for good
	ended   bool           // done is closed
	err     error          // why it ended
}

// Option configures Connect.
type Option func(*options)

type options struct {
	server      *Server
	trusted     bool
	log         *slog.Logger
	maxHandlers int

	// Credentials, unless trusted.
	user, password string
	keyID          string
	sign           func(nonce []byte) ([]byte, error)
}

// InProcess connects to s, an embedded server in the same process, through
// an in-memory pipe instead of TCP. Reconnections go to s too, so such a
// Conn never reaches a server started after s shut down.
func InProcess(s *Server) Option {
	return func(o *options) { o.server, o.trusted = s, false }
}

// Trusted is InProcess, and lets the connection do anything on s whatever
// s's Authenticator says: it is for the process that embeds s, such as the
// controller. It authenticates with a secret that s draws at random and
// that never leaves the process, and that s accepts only on in-process
// connections. Trusted overrides Password and SignedNonce. Without
// ServerConfig.Authenticate, Trusted is InProcess.
func Trusted(s *Server) Option {
	return func(o *options) { o.server, o.trusted = s, true }
}

// Password connects as user with password, for the server's Authenticator
// to judge. With a user name, the connection takes its replies on the
// private inbox "_I.<user>.>", so the Grant's Name must be user. user must
// be "" or a single subject token (no dots, wildcards or spaces).
// Password and SignedNonce may be combined; user is the last one's.
func Password(user, password string) Option {
	return func(o *options) { o.user, o.password = user, password }
}

// SignedNonce connects as user presenting keyID, the identifier of a key
// the server's Authenticator knows, and proves that it holds the key by
// signing with sign the random nonce that the server presents to each
// connection; sign gets the nonce as the bytes the server's Authenticator
// gets in Credentials.Nonce, and is called at every connection and
// reconnection. A sign error fails Connect, or that reconnection attempt.
// The private inbox is that of Password. keyID must not be empty, nor sign
// nil.
func SignedNonce(user, keyID string, sign func(nonce []byte) ([]byte, error)) Option {
	return func(o *options) { o.user, o.keyID, o.sign = user, keyID, sign }
}

// Logger sets where the connection logs disconnections, internal errors of
// handlers and errors the server reports asynchronously. By default it is
// slog.Default().
func Logger(log *slog.Logger) Option {
	return func(o *options) { o.log = log }
}

// MaxHandlers bounds how many request handlers the connection runs at once;
// n must be positive. The default is 10,000.
func MaxHandlers(n int) Option {
	return func(o *options) { o.maxHandlers = n }
}

// Connect connects to the NATS server at url (nats://host:port, or several
// such URLs separated by commas), naming the connection name in the
// server's monitoring. With InProcess or Trusted, url may be empty. Connect
// fails with EFORBIDDEN if the server refuses the connection's credentials,
// with EUNAVAILABLE if it cannot reach the server (or SignedNonce's sign
// fails), and with EINVALID for a MaxHandlers that is not positive or
// malformed credentials.
func Connect(url, name string, opts ...Option) (*Conn, error) {
	o := options{log: slog.Default(), maxHandlers: defaultMaxHandlers}
	for _, opt := range opts {
		opt(&o)
	}
	if o.maxHandlers < 1 {
		return nil, trustack.Errorf(trustack.EINVALID, "connect to message bus: %d handlers at most: want at least 1", o.maxHandlers)
	}
	if o.user != "" && !validToken(o.user) {
		return nil, trustack.Errorf(trustack.EINVALID, "connect to message bus: user %q: want a single subject token, without dots, wildcards or spaces", o.user)
	}
	if (o.sign == nil) != (o.keyID == "") {
		return nil, trustack.Errorf(trustack.EINVALID, "connect to message bus: a signed nonce needs both a key identifier and a signing function")
	}
	log := o.log.With("bus_conn", name)
	ctx, cancel := context.WithCancel(context.Background())
	c := &Conn{
		log:    log,
		ctx:    ctx,
		cancel: cancel,
		slots:  make(chan struct{}, o.maxHandlers),
		subs:   make(map[*nats.Subscription]struct{}),
		regain: make(chan struct{}),
		done:   make(chan struct{}),
	}
	natsOpts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.CustomReconnectDelay(reconnectDelay),
		nats.NoCallbacksAfterClientClose(),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Warn("message bus disconnected", "error", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("message bus reconnected", "url", nc.ConnectedUrlRedacted())
			c.reconnected()
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if sub != nil {
				log.Error("message bus error", "subject", sub.Subject, "error", err)
			} else {
				log.Error("message bus error", "error", err)
			}
		}),
		// Not called after Close, which ends the connection itself.
		nats.ClosedHandler(func(nc *nats.Conn) {
			err := lost(nc.LastError())
			log.Error("message bus connection closed for good", "error", err)
			c.end(err)
		}),
	}
	if o.server != nil {
		var p nats.InProcessConnProvider = o.server.ns
		if o.server.auth != nil && !o.trusted {
			p = asyncPipes{o.server.ns} // for the server to refuse it promptly
		}
		natsOpts = append(natsOpts, nats.InProcessServer(p))
		if url == "" {
			url = o.server.ClientURL()
		}
	}
	switch {
	case o.trusted:
		if o.server.auth != nil {
			natsOpts = append(natsOpts, nats.Token(string(o.server.auth.secret)))
		}
	default:
		if o.user != "" || o.password != "" {
			natsOpts = append(natsOpts, nats.UserInfo(o.user, o.password))
		}
		if o.user != "" {
			natsOpts = append(natsOpts, nats.CustomInboxPrefix(inboxPrefix+o.user))
		}
		if o.keyID != "" {
			natsOpts = append(natsOpts, nats.Nkey(o.keyID, o.sign))
		}
	}
	nc, err := nats.Connect(url, natsOpts...)
	if err != nil {
		cancel()
		if refused(err) {
			return nil, fmt.Errorf("connect to message bus %s: %w: %w", url, trustack.Errorf(trustack.EFORBIDDEN, "the message bus refused the credentials"), err)
		}
		return nil, fmt.Errorf("connect to message bus %s: %w: %w", url, trustack.Errorf(trustack.EUNAVAILABLE, "cannot reach the message bus"), err)
	}
	c.nc = nc
	return c, nil
}

// Done returns a channel closed when the connection has ended for good:
// when Close has returned, or when the server refused its credentials as
// it reconnected. Err then tells why.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns nil until Done is closed. Then it returns nil if Close ended
// the connection, EFORBIDDEN if the server refused its credentials, and
// EUNAVAILABLE if the connection was lost otherwise.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// end records that the connection ended for good because of err, unless it
// already had, and closes done. Handlers' contexts end too, since their
// replies can no longer be sent.
func (c *Conn) end(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		return
	}
	c.ended, c.err = true, err
	close(c.done)
	c.cancel()
}

// lost returns the error of a connection that NATS closed for good after
// err, its last error.
func lost(err error) error {
	if refused(err) {
		return fmt.Errorf("%w: %w", trustack.Errorf(trustack.EFORBIDDEN, "the message bus refused the credentials"), err)
	}
	e := trustack.Errorf(trustack.EUNAVAILABLE, "the connection to the message bus was lost")
	if err == nil {
		return e
	}
	return fmt.Errorf("%w: %w", e, err)
}

// refused reports whether err is the server's refusal of the credentials.
func refused(err error) bool {
	return errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) ||
		errors.Is(err, nats.ErrAuthRevoked) || errors.Is(err, nats.ErrAccountAuthExpired)
}

// Reconnected returns a channel closed when the connection next comes back
// after losing the server: meanwhile the server may have restarted, and
// what was published to this connection's subscribers lost.
func (c *Conn) Reconnected() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.regain
}

func (c *Conn) reconnected() {
	c.mu.Lock()
	defer c.mu.Unlock()
	close(c.regain)
	c.regain = make(chan struct{})
}

// reconnectDelay returns the pause before the nth attempt to reach the
// server again: doubling from minReconnectWait up to maxReconnectWait, then
// drawn at random from its upper half, so that thousands of agents that
// lost the server together do not all come back in the same instant.
func reconnectDelay(attempt int) time.Duration {
	d := min(maxReconnectWait, minReconnectWait<<min(attempt-1, 16))
	return d/2 + rand.N(d/2)
}

// Close unsubscribes everything, cancels the contexts of running handlers,
// waits for them to return and their replies to be sent, closes the
// connection and then Done. Event callbacks of Subscribe are not waited
// for. A handler must therefore not call Close, which would wait for it
// forever. Afterwards Request, Publish, Subscribe, Handle and HandleQueue
// fail with EUNAVAILABLE. Calling Close again does nothing.
func (c *Conn) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	subs := c.subs
	c.subs = nil
	c.mu.Unlock()

	// Unsubscribing first sends requests in a queue group to the other
	// members while the handlers here finish. Its errors do not matter:
	// closing the connection below ends every subscription anyway.
	for sub := range subs {
		_ = sub.Unsubscribe()
	}
	c.cancel()
	c.running.Wait()
	if c.nc.IsClosed() {
		// NATS ended it first; its closed handler may not have run yet.
		c.end(lost(c.nc.LastError()))
		return
	}
	c.nc.Close() // flushes the replies
	c.end(nil)
}

// Publish sends v, encoded as JSON, to the subscribers of subject and
// returns without waiting for them: an event reaches the subscribers
// connected at the time, or nobody. Publish returns EUNAVAILABLE when the
// connection is closed or its reconnection buffer is full, EINVALID for a
// malformed subject or a payload over the server's limit (1MB by default),
// and an internal error if v cannot be encoded.
func (c *Conn) Publish(subject string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("publish %s: encode: %w", subject, err)
	}
	if err := c.nc.Publish(subject, data); err != nil {
		return fmt.Errorf("publish %s: %w", subject, translate(err))
	}
	return nil
}

// Subscribe calls fn with the subject and payload of every event published
// on a subject that matches subject, which may hold wildcards:
// "host.*.state" matches one token, "host.>" the rest of the subject.
//
// fn is called from one goroutine per subscription, one event at a time,
// in the order the server delivered them, so events about one thing stay
// in order. A slow fn therefore delays its own subscription's later events,
// which queue in memory (up to 500,000 events or 64MB, beyond which NATS
// drops them and the connection logs a slow consumer), and no other
// subscription's. fn may keep data. A panic in fn is recovered and logged.
//
// When Subscribe returns while the connection is up, the server has the
// subscription; while it reconnects, the server gets it on reconnection.
// Subscribe returns EUNAVAILABLE when the connection is closed or the
// server did not confirm the subscription, EFORBIDDEN when the server
// refused it (a subject outside the client's grant), and EINVALID for a
// malformed subject.
func (c *Conn) Subscribe(subject string, fn func(subject string, data []byte)) (Subscription, error) {
	return c.subscribe(subject, "", func(msg *nats.Msg) {
		defer func() {
			if p := recover(); p != nil {
				c.log.Error("event callback panicked", "subject", msg.Subject, "panic", p, "stack", string(debug.Stack()))
			}
		}()
		fn(msg.Subject, msg.Data)
	})
}

// subscribe subscribes cb to subject, in queue group queue unless it is
// empty, and waits for the server to confirm.
func (c *Conn) subscribe(subject, queue string, cb nats.MsgHandler) (Subscription, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return Subscription{}, fmt.Errorf("subscribe %s: %w", subject, translate(nats.ErrConnectionClosed))
	}
	before := c.nc.LastError()
	sub, err := c.nc.QueueSubscribe(subject, queue, cb)
	if err != nil {
		c.mu.Unlock()
		return Subscription{}, fmt.Errorf("subscribe %s: %w", subject, translate(err))
	}
	c.subs[sub] = struct{}{}
	c.mu.Unlock()

	s := Subscription{c: c, sub: sub}
	// While reconnecting, the subscription is sent on reconnection, before
	// anything else; there is nothing to wait for.
	if c.nc.IsConnected() {
		err := c.nc.FlushTimeout(subscribeTimeout)
		if err == nil {
			// The server answers a subscription it refuses with an
			// error before the flush's PONG, and the connection keeps
			// it as its last error.
			err = subscriptionRefused(c.nc.LastError(), before, subject, queue)
		}
		if err != nil {
			_ = s.Unsubscribe() // the error to report is the one above
			return Subscription{}, fmt.Errorf("subscribe %s: confirm: %w", subject, translate(err))
		}
	}
	return s, nil
}

// subscriptionRefused returns last, the connection's last error, if it is
// new since before and is the server's refusal of a subscription to
// subject in queue; nil otherwise.
func subscriptionRefused(last, before error, subject, queue string) error {
	if last == nil || last == before || !errors.Is(last, nats.ErrPermissionViolation) {
		return nil
	}
	// nats-server's words: Permissions Violation for Subscription to
	// "SUBJECT" [using queue "QUEUE"].
	want := fmt.Sprintf("Subscription to %q", subject)
	if queue != "" {
		want += fmt.Sprintf(" using queue %q", queue)
	}
	if msg := last.Error(); !strings.HasSuffix(msg, want) {
		return nil
	}
	return last
}

// Subscription is an interest in a subject, made by Subscribe, Handle or
// HandleQueue. The zero Subscription is subscribed to nothing.
type Subscription struct {
	c   *Conn
	sub *nats.Subscription
}

// Unsubscribe stops the delivery of messages: messages received and not
// yet passed on are dropped, while callbacks and handlers already running
// are not waited for (handlers still send their replies). Unsubscribing
// twice, the zero Subscription, or after Close, does nothing. It is safe
// to call concurrently, and returns EUNAVAILABLE if the connection cannot
// tell the server.
func (s Subscription) Unsubscribe() error {
	if s.sub == nil {
		return nil
	}
	s.c.mu.Lock()
	_, ok := s.c.subs[s.sub]
	delete(s.c.subs, s.sub)
	s.c.mu.Unlock()
	if !ok {
		return nil
	}
	if err := s.sub.Unsubscribe(); err != nil {
		return fmt.Errorf("unsubscribe %s: %w", s.sub.Subject, translate(err))
	}
	return nil
}

// natsErrors gives the NATS client errors that callers may act on their
// trustack code and a message for people. Any other error is internal.
var natsErrors = []struct {
	err     error
	code    string
	message string
}{
	{nats.ErrConnectionClosed, trustack.EUNAVAILABLE, "the connection to the message bus is closed"},
	{nats.ErrConnectionDraining, trustack.EUNAVAILABLE, "the connection to the message bus is closing"},
	{nats.ErrDisconnected, trustack.EUNAVAILABLE, "the message bus is disconnected"},
	{nats.ErrConnectionReconnecting, trustack.EUNAVAILABLE, "the message bus is reconnecting"},
	{nats.ErrReconnectBufExceeded, trustack.EUNAVAILABLE, "the message bus is disconnected and its buffer is full"},
	{nats.ErrStaleConnection, trustack.EUNAVAILABLE, "the message bus connection went stale"},
	{nats.ErrNoServers, trustack.EUNAVAILABLE, "no message bus server is reachable"},
	{nats.ErrTimeout, trustack.EUNAVAILABLE, "the message bus did not answer in time"},
	{nats.ErrBadSubject, trustack.EINVALID, "invalid subject"},
	{nats.ErrBadQueueName, trustack.EINVALID, "invalid queue group name"},
	{nats.ErrMaxPayload, trustack.EINVALID, "the message is larger than the message bus allows"},
	{nats.ErrPermissionViolation, trustack.EFORBIDDEN, "the message bus refused it: it is outside this client's grant"},
}

// translate returns err with the trustack code of a NATS client error added
// to its chain, or err itself if it has none.
func translate(err error) error {
	for _, e := range natsErrors {
		if errors.Is(err, e.err) {
			return fmt.Errorf("%w: %w", &trustack.Error{Code: e.code, Message: e.message}, err)
		}
	}
	return err
}
