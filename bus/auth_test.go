package bus_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/bus"
)

// policy is an Authenticator in the manner of the attestation service: it
// knows each host's password or TPM key and its grant, and forgets hosts
// found untrusted.
type policy struct {
	mu       sync.Mutex
	accounts map[string]account // by user name
	nonces   [][]byte           // every nonce presented with a key
}

type account struct {
	password string           // "" for a host that signs with a key
	keyID    string           // the key's identifier
	key      *ecdsa.PublicKey // the key that signs the nonce
	grant    bus.Grant
}

func newPolicy() *policy { return &policy{accounts: make(map[string]account)} }

func (p *policy) add(user string, a account) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.accounts[user] = a
}

func (p *policy) revoke(user string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.accounts, user)
}

func (p *policy) authenticate(c bus.Credentials) (bus.Grant, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	a, ok := p.accounts[c.User]
	switch {
	case !ok:
		return bus.Grant{}, false
	case c.Key != "":
		p.nonces = append(p.nonces, c.Nonce)
		digest := sha256.Sum256(c.Nonce)
		if a.key == nil || c.Key != a.keyID || !ecdsa.VerifyASN1(a.key, digest[:], c.Signature) {
			return bus.Grant{}, false
		}
	case a.password == "" || c.Password != a.password:
		return bus.Grant{}, false
	}
	return a.grant, true
}

// hostGrant is what a registered host may do: publish its events, take
// requests for it, and ask the controller's services.
func hostGrant(name string) bus.Grant {
	return bus.Grant{
		Name:      name,
		Publish:   []string{"host." + name + ".>", "svc.>"},
		Subscribe: []string{"cmd." + name + ".>"},
	}
}

func newAuthServer(t testing.TB, fn bus.Authenticator) *bus.Server {
	t.Helper()
	s, err := bus.Serve(bus.ServerConfig{Host: "127.0.0.1", Logger: testLogger(t), Authenticate: fn})
	if err != nil {
		t.Fatalf("serve: %v", err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

// transports are the ways to reach a server: each test of credentials
// runs over both, since nats-server refuses in-process clients otherwise
// than TCP ones.
var transports = []struct {
	name string
	opts func(*bus.Server) []bus.Option
}{
	{"tcp", func(*bus.Server) []bus.Option { return nil }},
	{"in-process", func(s *bus.Server) []bus.Option { return []bus.Option{bus.InProcess(s)} }},
}

func tryConnect(t testing.TB, s *bus.Server, opts ...bus.Option) (*bus.Conn, error) {
	t.Helper()
	c, err := bus.Connect(s.ClientURL(), t.Name(), append([]bus.Option{bus.Logger(testLogger(t))}, opts...)...)
	if err == nil {
		t.Cleanup(c.Close)
	}
	return c, err
}

// signer returns a SignedNonce signing function with key, which records
// the nonces it signs.
func signer(key *ecdsa.PrivateKey, signed *[][]byte) func([]byte) ([]byte, error) {
	var mu sync.Mutex
	return func(nonce []byte) ([]byte, error) {
		mu.Lock()
		defer mu.Unlock()
		if signed != nil {
			*signed = append(*signed, bytes.Clone(nonce))
		}
		digest := sha256.Sum256(nonce)
		return ecdsa.SignASN1(rand.Reader, key, digest[:])
	}
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	return key
}

func TestAuthConnect(t *testing.T) {
	p := newPolicy()
	hostKey, otherKey := newKey(t), newKey(t)
	p.add("h1", account{password: "secret", grant: hostGrant("h1")})
	p.add("h2", account{keyID: "tpm-h2", key: &hostKey.PublicKey, grant: hostGrant("h2")})
	p.add("bad", account{password: "secret", grant: bus.Grant{Name: "bad.name"}})
	s := newAuthServer(t, p.authenticate)

	tests := []struct {
		name     string
		opts     []bus.Option
		wantCode string // "" for a connection
		host     string // whose events a connection may publish
	}{
		{"anonymous", nil, trustack.EFORBIDDEN, ""},
		{"password", []bus.Option{bus.Password("h1", "secret")}, "", "h1"},
		{"wrong password", []bus.Option{bus.Password("h1", "guess")}, trustack.EFORBIDDEN, ""},
		{"unknown user", []bus.Option{bus.Password("h9", "secret")}, trustack.EFORBIDDEN, ""},
		{"signed nonce", []bus.Option{bus.SignedNonce("h2", "tpm-h2", signer(hostKey, nil))}, "", "h2"},
		{"nonce signed by another key", []bus.Option{bus.SignedNonce("h2", "tpm-h2", signer(otherKey, nil))}, trustack.EFORBIDDEN, ""},
		{"unknown key", []bus.Option{bus.SignedNonce("h2", "tpm-h9", signer(hostKey, nil))}, trustack.EFORBIDDEN, ""},
		{"grant of an invalid name", []bus.Option{bus.Password("bad", "secret")}, trustack.EFORBIDDEN, ""},
		{"user that cannot name an inbox", []bus.Option{bus.Password("h1.x", "secret")}, trustack.EINVALID, ""},
		{"key without a signing function", []bus.Option{bus.SignedNonce("h2", "tpm-h2", nil)}, trustack.EINVALID, ""},
	}
	for _, tr := range transports {
		for _, tt := range tests {
			t.Run(tr.name+"/"+tt.name, func(t *testing.T) {
				start := time.Now()
				c, err := tryConnect(t, s, append(tr.opts(s), tt.opts...)...)
				if code := trustack.ErrorCode(err); code != tt.wantCode {
					t.Fatalf("connect: got code %q (error %v), want %q", code, err, tt.wantCode)
				}
				if d := time.Since(start); d > wait/2 {
					t.Errorf("connect took %s, want an answer at once", d)
				}
				if err != nil {
					return
				}
				// A host may publish its own events, which a trusted
				// subscriber receives.
				ctl := connect(t, s, bus.Trusted(s))
				events := collect(t, ctl, "host.>")
				if err := c.Publish("host."+tt.host+".state", "up"); err != nil {
					t.Fatalf("publish: %v", err)
				}
				if got, want := events.next(t, 1), []string{"host." + tt.host + `.state "up"`}; !slices.Equal(got, want) {
					t.Errorf("got events %q, want %q", got, want)
				}
			})
		}
	}
}

func TestAuthGrant(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) { testAuthGrant(t, tr.opts) })
	}
}

func testAuthGrant(t *testing.T, transport func(*bus.Server) []bus.Option) {
	p := newPolicy()
	p.add("h1", account{password: "pw1", grant: hostGrant("h1")})
	p.add("h2", account{password: "pw2", grant: hostGrant("h2")})
	// A grant without Publish lets publish nothing, not anything.
	p.add("mute", account{password: "pw3", grant: bus.Grant{Name: "mute", Subscribe: []string{"cmd.mute.>"}}})
	s := newAuthServer(t, p.authenticate)
	ctl := connect(t, s, bus.Trusted(s))
	h1 := connect(t, s, append(transport(s), bus.Password("h1", "pw1"))...)
	h2 := connect(t, s, append(transport(s), bus.Password("h2", "pw2"))...)
	mute := connect(t, s, append(transport(s), bus.Password("mute", "pw3"))...)

	t.Run("publish only to granted subjects", func(t *testing.T) {
		own, other := collect(t, ctl, "host.h1.>"), collect(t, ctl, "host.h2.>")
		// mute's goes first and h1's allowed event last, so that the
		// events that may not be published would have arrived before.
		if err := mute.Publish("host.h2.state", "up"); err != nil {
			t.Fatalf("publish: %v", err)
		}
		for _, subject := range []string{"host.h2.state", "host.h1.state"} {
			if err := h1.Publish(subject, "up"); err != nil {
				t.Fatalf("publish %s: %v", subject, err)
			}
		}
		if got := own.next(t, 1); len(got) != 1 || got[0] != `host.h1.state "up"` {
			t.Errorf("host.h1.> got %q, want h1's event", got)
		}
		if other.has() {
			t.Errorf("host.h2.> got %q, want nothing: neither h1 nor mute may publish there", other.next(t, 1))
		}
	})

	t.Run("subscribe only to granted subjects", func(t *testing.T) {
		own := collect(t, h1, "cmd.h1.>")
		// Refused, and said so, alone or in a queue group, whatever
		// was refused before.
		for range 2 {
			_, err := h1.Subscribe("cmd.h2.>", func(subject string, _ []byte) { t.Errorf("h1 got %s, which it may not subscribe to", subject) })
			if trustack.ErrorCode(err) != trustack.EFORBIDDEN {
				t.Errorf("subscribe to cmd.h2.>: got %v, want %s", err, trustack.EFORBIDDEN)
			}
			_, err = h1.HandleQueue("cmd.h2.boot", "agents", func(context.Context, []byte) (any, error) {
				t.Error("h1 got a request it may not subscribe to")
				return nil, nil
			})
			if trustack.ErrorCode(err) != trustack.EFORBIDDEN {
				t.Errorf("handle cmd.h2.boot in a queue group: got %v, want %s", err, trustack.EFORBIDDEN)
			}
		}
		for _, subject := range []string{"cmd.h2.stop", "cmd.h1.stop"} {
			if err := ctl.Publish(subject, "now"); err != nil {
				t.Fatalf("publish %s: %v", subject, err)
			}
		}
		if got := own.next(t, 1); len(got) != 1 || got[0] != `cmd.h1.stop "now"` {
			t.Errorf("cmd.h1.> got %q, want the controller's event", got)
		}
		// A granted subscription after a refused one is no refusal.
		collect(t, h1, "cmd.h1.stop")
	})

	t.Run("request a trusted handler through the private inbox", func(t *testing.T) {
		handle(t, ctl, "svc.register", bus.Handler(func(_ context.Context, host string) (string, error) {
			return "welcome " + host, nil
		}))
		// h1 may not read h2's replies.
		if _, err := h1.Subscribe("_I.h2.>", func(string, []byte) { t.Error("h1 got one of h2's replies") }); trustack.ErrorCode(err) != trustack.EFORBIDDEN {
			t.Errorf("h1 subscribes to h2's inbox: got %v, want %s", err, trustack.EFORBIDDEN)
		}
		for _, host := range []string{"h1", "h2"} {
			c := map[string]*bus.Conn{"h1": h1, "h2": h2}[host]
			var got string
			if err := c.Request(ctx(t), "svc.register", host, &got); err != nil {
				t.Fatalf("%s request: %v", host, err)
			}
			if want := "welcome " + host; got != want {
				t.Errorf("%s got reply %q, want %q", host, got, want)
			}
		}
	})

	t.Run("answer a trusted request", func(t *testing.T) {
		for name, c := range map[string]*bus.Conn{"h1": h1, "mute": mute} {
			handle(t, c, "cmd."+name+".boot", bus.Handler(func(_ context.Context, req bootRequest) (bootReply, error) {
				return bootReply{Host: name, Domain: req.Server}, nil
			}))
			var got bootReply
			if err := ctl.Request(ctx(t), "cmd."+name+".boot", bootRequest{Server: "vm1"}, &got); err != nil {
				t.Fatalf("request to %s: %v", name, err)
			}
			if want := (bootReply{Host: name, Domain: "vm1"}); got != want {
				t.Errorf("%s: got reply %+v, want %+v", name, got, want)
			}
		}
	})

	t.Run("no request to a subject not granted", func(t *testing.T) {
		handle(t, ctl, "admin.shutdown", func(context.Context, []byte) (any, error) {
			t.Error("h1's request to admin.shutdown reached the handler")
			return nil, nil
		})
		short, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		if err := h1.Request(short, "admin.shutdown", nil, nil); trustack.ErrorCode(err) != trustack.EUNAVAILABLE || !noReply(err) {
			t.Errorf("request: got %v, want no reply (%s)", err, trustack.EUNAVAILABLE)
		}
	})
}

func TestAuthSignedNonce(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) { testAuthSignedNonce(t, tr.opts) })
	}
}

func testAuthSignedNonce(t *testing.T, transport func(*bus.Server) []bus.Option) {
	p := newPolicy()
	key := newKey(t)
	p.add("h1", account{keyID: "tpm-h1", key: &key.PublicKey, grant: hostGrant("h1")})
	s := newAuthServer(t, p.authenticate)
	ctl := connect(t, s, bus.Trusted(s))
	handle(t, ctl, "svc.register", bus.Handler(func(context.Context, string) (string, error) { return "ok", nil }))

	var signed [][]byte
	var sigs [][]byte
	sign := signer(key, &signed)
	recordSig := func(nonce []byte) ([]byte, error) {
		sig, err := sign(nonce)
		sigs = append(sigs, sig)
		return sig, err
	}
	for range 2 {
		c := connect(t, s, append(transport(s), bus.SignedNonce("h1", "tpm-h1", recordSig))...)
		if err := c.Request(ctx(t), "svc.register", "h1", nil); err != nil {
			t.Fatalf("request: %v", err)
		}
	}
	p.mu.Lock()
	seen := append([][]byte(nil), p.nonces...)
	p.mu.Unlock()
	if len(signed) != 2 || len(seen) != 2 {
		t.Fatalf("signed %d nonces and the authenticator saw %d, want 2 each", len(signed), len(seen))
	}
	for i := range signed {
		if !bytes.Equal(signed[i], seen[i]) || len(seen[i]) == 0 {
			t.Errorf("connection %d: client signed nonce %q, authenticator got %q, want the same", i, signed[i], seen[i])
		}
	}
	if bytes.Equal(seen[0], seen[1]) {
		t.Errorf("two connections got nonce %q, want a new one for each", seen[0])
	}

	replay := func([]byte) ([]byte, error) { return sigs[0], nil }
	if _, err := tryConnect(t, s, append(transport(s), bus.SignedNonce("h1", "tpm-h1", replay))...); trustack.ErrorCode(err) != trustack.EFORBIDDEN {
		t.Errorf("connect replaying another connection's signature: got %v, want %s", err, trustack.EFORBIDDEN)
	}
}

func TestAuthDisconnect(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) { testAuthDisconnect(t, tr.opts) })
	}
}

func testAuthDisconnect(t *testing.T, transport func(*bus.Server) []bus.Option) {
	p := newPolicy()
	p.add("h1", account{password: "pw1", grant: hostGrant("h1")})
	p.add("h2", account{password: "pw2", grant: hostGrant("h2")})
	s := newAuthServer(t, p.authenticate)
	ctl := connect(t, s, bus.Trusted(s))
	handle(t, ctl, "svc.ping", bus.Handler(func(context.Context, string) (string, error) { return "pong", nil }))
	h1a := connect(t, s, append(transport(s), bus.Password("h1", "pw1"))...)
	h1b := connect(t, s, append(transport(s), bus.Password("h1", "pw1"))...)
	h2 := connect(t, s, append(transport(s), bus.Password("h2", "pw2"))...)

	p.revoke("h1")
	if n := s.Disconnect("h1"); n != 2 {
		t.Errorf("Disconnect(h1) = %d, want 2 connections", n)
	}
	for i, c := range []*bus.Conn{h1a, h1b} {
		select {
		case <-c.Done():
		case <-time.After(wait):
			t.Fatalf("h1 connection %d: Done still open after Disconnect, want it closed once the server refuses it", i)
		}
		if err := c.Err(); trustack.ErrorCode(err) != trustack.EFORBIDDEN {
			t.Errorf("h1 connection %d: Err() = %v, want %s", i, err, trustack.EFORBIDDEN)
		}
		if err := c.Publish("host.h1.state", "up"); trustack.ErrorCode(err) != trustack.EUNAVAILABLE {
			t.Errorf("h1 connection %d: publish after the end: got %v, want %s", i, err, trustack.EUNAVAILABLE)
		}
	}
	if n := s.Disconnect("h1"); n != 0 {
		t.Errorf("Disconnect(h1) again = %d, want 0", n)
	}
	if _, err := tryConnect(t, s, append(transport(s), bus.Password("h1", "pw1"))...); trustack.ErrorCode(err) != trustack.EFORBIDDEN {
		t.Errorf("connect h1 after revocation: got %v, want %s", err, trustack.EFORBIDDEN)
	}

	var got string
	if err := h2.Request(ctx(t), "svc.ping", "h2", &got); err != nil || got != "pong" {
		t.Errorf("h2 request after h1's Disconnect: got %q, %v, want pong", got, err)
	}
	select {
	case <-h2.Done():
		t.Errorf("h2 Done closed (Err %v), want h2 still connected", h2.Err())
	default:
	}
	if err := h2.Err(); err != nil {
		t.Errorf("h2 Err() = %v, want nil while connected", err)
	}
}

func TestAuthTrusted(t *testing.T) {
	var calls sync.Map
	s := newAuthServer(t, func(c bus.Credentials) (bus.Grant, bool) {
		calls.Store(c.User, true)
		return bus.Grant{}, false
	})
	if _, err := tryConnect(t, s, bus.InProcess(s)); trustack.ErrorCode(err) != trustack.EFORBIDDEN {
		t.Fatalf("InProcess connect: got %v, want %s: only Trusted bypasses the authenticator", err, trustack.EFORBIDDEN)
	}
	a := connect(t, s, bus.Trusted(s), bus.Password("ignored", "x"))
	b := connect(t, s, bus.Trusted(s))
	if _, ok := calls.Load("ignored"); ok {
		t.Error("Trusted connection asked the authenticator, want it let in at once")
	}
	events := collect(t, a, ">")
	handle(t, a, "anything.at.all", bus.Handler(func(_ context.Context, n int) (int, error) { return n + 1, nil }))
	var got int
	if err := b.Request(ctx(t), "anything.at.all", 1, &got); err != nil || got != 2 {
		t.Errorf("request: got %d, %v, want 2", got, err)
	}
	if err := b.Publish("host.h1.state", "up"); err != nil {
		t.Fatalf("publish: %v", err)
	}
	if got := events.next(t, 1); !slices.Contains(got, `host.h1.state "up"`) {
		t.Errorf("subscriber to > got %q, want the event on host.h1.state", got)
	}
}

func TestAuthPanic(t *testing.T) {
	s := newAuthServer(t, func(bus.Credentials) (bus.Grant, bool) { panic("verifier bug") })
	for range 2 { // the server survives the first
		if _, err := tryConnect(t, s); trustack.ErrorCode(err) != trustack.EFORBIDDEN {
			t.Errorf("connect: got %v, want %s", err, trustack.EFORBIDDEN)
		}
	}
	connect(t, s, bus.Trusted(s))
}

// TestNoAuthenticator checks that without an Authenticator the options for
// credentials change nothing: anyone may do anything.
func TestNoAuthenticator(t *testing.T) {
	s := newServer(t)
	ctl := connect(t, s, bus.Trusted(s))
	key := newKey(t)
	host := connect(t, s, bus.SignedNonce("h1", "tpm-h1", signer(key, nil)))
	anon := connect(t, s)
	handle(t, ctl, "svc.ping", bus.Handler(func(context.Context, string) (string, error) { return "pong", nil }))
	for name, c := range map[string]*bus.Conn{"signed nonce": host, "anonymous": anon} {
		var got string
		if err := c.Request(ctx(t), "svc.ping", "", &got); err != nil || got != "pong" {
			t.Errorf("%s request: got %q, %v, want pong", name, got, err)
		}
	}
	if n := s.Disconnect("h1"); n != 0 {
		t.Errorf("Disconnect without an authenticator = %d, want 0", n)
	}
}

func TestCloseEndsDone(t *testing.T) {
	c := connect(t, newServer(t))
	select {
	case <-c.Done():
		t.Fatal("Done closed before Close")
	default:
	}
	c.Close()
	select {
	case <-c.Done():
	default:
		t.Fatal("Done still open after Close")
	}
	if err := c.Err(); err != nil {
		t.Errorf("Err() after Close = %v, want nil", err)
	}
}
