package bus

import (
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

func refuseAll(Credentials) (Grant, bool) { return Grant{}, false }

func serveAuth(t *testing.T, fn Authenticator) *Server {
	t.Helper()
	s, err := Serve(ServerConfig{Host: "127.0.0.1", Authenticate: fn})
	if err != nil {
		t.Fatalf("serve: %v", err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

// TestTrustedSecretOnlyInProcess checks that the secret of Trusted opens
// nothing over TCP, should it ever leak.
func TestTrustedSecretOnlyInProcess(t *testing.T) {
	s := serveAuth(t, refuseAll)
	nc, err := nats.Connect(s.ClientURL(), nats.Token(string(s.auth.secret)))
	if err == nil {
		nc.Close()
		t.Fatal("connect over TCP with the Trusted secret: got nil error, want a refusal")
	}
	if !errors.Is(err, nats.ErrAuthorization) {
		t.Errorf("connect over TCP with the Trusted secret: got %v, want %v", err, nats.ErrAuthorization)
	}
	nc, err = nats.Connect("", nats.InProcessServer(asyncPipes{s.ns}), nats.Token("not the secret"))
	if err == nil {
		nc.Close()
		t.Fatal("connect in process with another token: got nil error, want a refusal")
	}
}

// TestAuthForgetsClosedConnections checks that a Server does not remember
// the connections that closed for ever.
func TestAuthForgetsClosedConnections(t *testing.T) {
	s := serveAuth(t, func(Credentials) (Grant, bool) { return Grant{Name: "h1"}, true })
	log := slog.New(slog.DiscardHandler)
	open, err := Connect("", "open", InProcess(s), Password("h1", ""), Logger(log))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer open.Close()
	const n = 3 * minPrune
	for range n {
		c, err := Connect("", "closed", InProcess(s), Password("h1", ""), Logger(log))
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		c.Close()
	}
	s.auth.mu.Lock()
	remembered := len(s.auth.names)
	s.auth.mu.Unlock()
	if remembered > 2*minPrune+1 {
		t.Errorf("remembers %d connections after %d closed and 1 open, want at most %d", remembered, n, 2*minPrune+1)
	}
	// The server forgets the last one closed soon after Close returns.
	for deadline := time.Now().Add(10 * time.Second); s.ns.NumClients() > 1 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if got := s.Disconnect("h1"); got != 1 {
		t.Errorf("Disconnect(h1) = %d, want the 1 connection open", got)
	}
}
