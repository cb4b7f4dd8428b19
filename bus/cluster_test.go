package bus_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/bus"
)

// clusterSecret is the secret of the test clusters' routes.
const clusterSecret = "the routes' secret, shared"

// clusterPolicy is the policy every node of a test cluster follows, as
// controllers sharing a database do.
func clusterPolicy() *policy {
	p := newPolicy()
	p.add("h1", account{password: "pw1", grant: hostGrant("h1")})
	p.add("h2", account{password: "pw2", grant: hostGrant("h2")})
	// An operator's tool may watch the hosts' events and nothing else.
	p.add("watch", account{password: "pw3", grant: bus.Grant{Name: "watch", Subscribe: []string{"host.>"}}})
	return p
}

// startCluster starts n nodes of one cluster on 127.0.0.1, authenticating
// clients with fn, and waits until each has routes to all the others.
// Each node lists only the node started before it as a route: the nodes
// that are not listed by each other find each other through the others,
// and route to each other with the secret too.
func startCluster(t testing.TB, n int, fn bus.Authenticator) []*bus.Server {
	t.Helper()
	var nodes []*bus.Server
	var routes []string
	for range n {
		s := serveNode(t, fn, clusterSecret, routes...)
		nodes = append(nodes, s)
		routes = []string{s.ClusterAddr()}
	}
	for i, s := range nodes {
		waitPeers(t, fmt.Sprintf("node %d", i+1), s, n-1)
	}
	return nodes
}

func serveNode(t testing.TB, fn bus.Authenticator, secret string, routes ...string) *bus.Server {
	t.Helper()
	s, err := bus.Serve(bus.ServerConfig{
		Host: "127.0.0.1", Logger: testLogger(t), Authenticate: fn,
		Cluster: &bus.ClusterConfig{Host: "127.0.0.1", Routes: routes, Secret: secret},
	})
	if err != nil {
		t.Fatalf("serve: %v", err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

// waitFor polls cond until it holds, failing the test with what describe
// says then if it does not within wait.
func waitFor(t testing.TB, cond func() bool, describe func() string) {
	t.Helper()
	for deadline := time.Now().Add(wait); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", wait, describe())
		}
	}
}

// waitPeers waits until s, called name in messages, has routes to n other
// nodes.
func waitPeers(t testing.TB, name string, s *bus.Server, n int) {
	t.Helper()
	waitFor(t, func() bool { return bus.Peers(s) == n }, func() string {
		return fmt.Sprintf("%s has routes to %d other nodes, want %d", name, bus.Peers(s), n)
	})
}

// waitInterest waits until s knows of a subscription matching subject:
// subscriptions reach the other nodes of a cluster a little after the
// node of their client confirmed them.
func waitInterest(t testing.TB, s *bus.Server, subject string) {
	t.Helper()
	waitFor(t, func() bool { return bus.Interest(s, subject) > 0 }, func() string {
		return "the node knows of no subscription to " + subject
	})
}

// urls returns the client URLs of nodes, as Connect takes several.
func urls(nodes []*bus.Server) string {
	var u []string
	for _, s := range nodes {
		u = append(u, s.ClientURL())
	}
	return strings.Join(u, ",")
}

func connectURL(t testing.TB, url string, opts ...bus.Option) *bus.Conn {
	t.Helper()
	c, err := bus.Connect(url, t.Name(), append([]bus.Option{bus.Logger(testLogger(t))}, opts...)...)
	if err != nil {
		t.Fatalf("connect to %s: %v", url, err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestClusterCarriesMessagesBetweenNodes(t *testing.T) {
	nodes := startCluster(t, 3, clusterPolicy().authenticate)
	ctl := connect(t, nodes[0], bus.Trusted(nodes[0]))

	t.Run("event published on node 3 reaches node 1", func(t *testing.T) {
		events := collect(t, ctl, "host.>")
		h1 := connect(t, nodes[2], bus.Password("h1", "pw1"))
		waitInterest(t, nodes[2], "host.h1.state")
		if err := h1.Publish("host.h1.state", "up"); err != nil {
			t.Fatalf("publish: %v", err)
		}
		if got, want := events.next(t, 1), []string{`host.h1.state "up"`}; !slices.Equal(got, want) {
			t.Errorf("subscriber on node 1 got %q, want %q", got, want)
		}
	})

	t.Run("request from node 2 answered on node 1", func(t *testing.T) {
		handle(t, ctl, "svc.register", bus.Handler(func(_ context.Context, host string) (string, error) {
			return "welcome " + host, nil
		}))
		h2 := connect(t, nodes[1], bus.Password("h2", "pw2"))
		waitInterest(t, nodes[1], "svc.register")
		var got string
		if err := h2.Request(ctx(t), "svc.register", "h2", &got); err != nil {
			t.Fatalf("request: %v", err)
		}
		if want := "welcome h2"; got != want {
			t.Errorf("got reply %q, want %q", got, want)
		}
	})

	t.Run("request from node 1 answered by an agent on node 3", func(t *testing.T) {
		// The agent may publish only its own events, but may answer
		// the request it received from another node.
		h1 := connect(t, nodes[2], bus.Password("h1", "pw1"))
		handle(t, h1, "cmd.h1.boot", bus.Handler(func(_ context.Context, req bootRequest) (bootReply, error) {
			return bootReply{Host: "h1", Domain: req.Server}, nil
		}))
		waitInterest(t, nodes[0], "cmd.h1.boot")
		var got bootReply
		if err := ctl.Request(ctx(t), "cmd.h1.boot", bootRequest{Server: "vm1"}, &got); err != nil {
			t.Fatalf("request: %v", err)
		}
		if want := (bootReply{Host: "h1", Domain: "vm1"}); got != want {
			t.Errorf("got reply %+v, want %+v", got, want)
		}
	})
}

// TestClusterSameRoutesOnEveryNode checks that every node may be given
// the same routes, its own among them, while the others are not up yet.
// Each node is reached through a relay whose address is known before the
// node starts and picks its port.
func TestClusterSameRoutesOnEveryNode(t *testing.T) {
	relays := []*relay{newRelay(t), newRelay(t), newRelay(t)}
	var routes []string
	for _, r := range relays {
		routes = append(routes, r.addr)
	}
	fn := clusterPolicy().authenticate
	var nodes []*bus.Server
	for i, r := range relays {
		s := serveNode(t, fn, clusterSecret, routes...)
		r.to(s.ClusterAddr())
		nodes = append(nodes, s)
		if i == 0 {
			// The others are not up: their relays closed its routes.
			select {
			case <-relays[1].closed:
			case <-time.After(wait):
				t.Fatal("node 1 did not try node 2 before it started")
			}
		}
	}
	for i, s := range nodes {
		waitPeers(t, fmt.Sprintf("node %d", i+1), s, len(nodes)-1)
	}

	ctl := connect(t, nodes[0], bus.Trusted(nodes[0]))
	events := collect(t, ctl, "host.>")
	waitInterest(t, nodes[2], "host.h1.state")
	if err := connect(t, nodes[2], bus.Password("h1", "pw1")).Publish("host.h1.state", "up"); err != nil {
		t.Fatalf("publish: %v", err)
	}
	if got, want := events.next(t, 1), []string{`host.h1.state "up"`}; !slices.Equal(got, want) {
		t.Errorf("subscriber on node 1 got %q, want %q", got, want)
	}
}

func TestClusterEnforcesGrantsOnEveryNode(t *testing.T) {
	nodes := startCluster(t, 3, clusterPolicy().authenticate)
	ctl := connect(t, nodes[0], bus.Trusted(nodes[0]))
	for i, s := range nodes[1:] {
		// Each node's subjects end in its own token: the subscriptions
		// of the node before may linger a little on the others.
		n := "n" + strconv.Itoa(i+2)
		t.Run("node "+strconv.Itoa(i+2), func(t *testing.T) {
			h1 := connect(t, s, bus.Password("h1", "pw1"))
			watch := connect(t, s, bus.Password("watch", "pw3"))

			events := collect(t, ctl, "host.*."+n)
			waitInterest(t, s, "host.h2."+n)
			// The events that may not be published go first, so that
			// they would arrive before the one that may.
			if err := watch.Publish("host.h2."+n, "up"); err != nil {
				t.Fatalf("watch publishes: %v", err)
			}
			for _, subject := range []string{"host.h2." + n, "host.h1." + n} {
				if err := h1.Publish(subject, "up"); err != nil {
					t.Fatalf("h1 publishes %s: %v", subject, err)
				}
			}
			if got, want := events.next(t, 1), []string{"host.h1." + n + ` "up"`}; !slices.Equal(got, want) {
				t.Errorf("subscriber on node 1 got %q, want only h1's own event", got)
			}

			if _, err := h1.Subscribe("cmd.h2.>", func(subject string, _ []byte) { t.Errorf("h1 got %s, which it may not subscribe to", subject) }); trustack.ErrorCode(err) != trustack.EFORBIDDEN {
				t.Errorf("h1 subscribes to cmd.h2.>: got %v, want %s", err, trustack.EFORBIDDEN)
			}
			own := collect(t, h1, "cmd.h1."+n)
			waitInterest(t, nodes[0], "cmd.h1."+n)
			for _, subject := range []string{"cmd.h2." + n, "cmd.h1." + n} {
				if err := ctl.Publish(subject, "now"); err != nil {
					t.Fatalf("publish %s: %v", subject, err)
				}
			}
			if got, want := own.next(t, 1), []string{"cmd.h1." + n + ` "now"`}; !slices.Equal(got, want) {
				t.Errorf("h1 got %q, want %q", got, want)
			}
		})
	}
}

func TestClusterRefusesNodeWithWrongSecret(t *testing.T) {
	nodes := startCluster(t, 3, clusterPolicy().authenticate)
	// The intruder reaches node 1 through a relay, which tells when
	// node 1 closed a route.
	relay := newRelay(t)
	relay.to(nodes[0].ClusterAddr())
	intruder := serveNode(t, clusterPolicy().authenticate, "a secret, but not the cluster's", relay.addr)
	select {
	case <-relay.closed:
	case <-time.After(wait):
		t.Fatal("node 1 did not close the route of a node with the wrong secret")
	}
	for i, s := range nodes {
		if n := bus.Peers(s); n != 2 {
			t.Errorf("node %d has routes to %d nodes, want the 2 others", i+1, n)
		}
	}
	// The intruder counts its route to node 1 from node 1's first words
	// until node 1 refuses its credentials.
	waitPeers(t, "the node with the wrong secret", intruder, 0)

	inside := collect(t, connect(t, nodes[1], bus.Trusted(nodes[1])), "host.>")
	outside := collect(t, connect(t, intruder, bus.Trusted(intruder)), "host.>")
	waitInterest(t, nodes[0], "host.h1.state")
	if err := connect(t, intruder, bus.Trusted(intruder)).Publish("host.h2.state", "from outside"); err != nil {
		t.Fatalf("publish on the intruder: %v", err)
	}
	if err := connect(t, nodes[0], bus.Trusted(nodes[0])).Publish("host.h1.state", "from inside"); err != nil {
		t.Fatalf("publish on node 1: %v", err)
	}
	if got, want := inside.next(t, 1), []string{`host.h1.state "from inside"`}; !slices.Equal(got, want) {
		t.Errorf("subscriber on node 2 got %q, want %q", got, want)
	}
	if got := outside.next(t, 1); !slices.Equal(got, []string{`host.h2.state "from outside"`}) {
		t.Errorf("subscriber on the intruder got %q, want only the intruder's own event", got)
	}
}

func TestClusterDisconnectIsPerNode(t *testing.T) {
	p := clusterPolicy()
	nodes := startCluster(t, 3, p.authenticate)
	ctl := connect(t, nodes[0], bus.Trusted(nodes[0]))
	on1 := connect(t, nodes[0], bus.Password("h1", "pw1"))
	on2 := connect(t, nodes[1], bus.Password("h1", "pw1"))
	h2 := connect(t, nodes[0], bus.Password("h2", "pw2"))

	p.revoke("h1")
	if n := nodes[0].Disconnect("h1"); n != 1 {
		t.Errorf("Disconnect(h1) on node 1 = %d, want its 1 connection", n)
	}
	select {
	case <-on1.Done():
	case <-time.After(wait):
		t.Fatal("h1's connection to node 1: Done still open after Disconnect, want it closed once every node refuses it")
	}
	if err := on1.Err(); trustack.ErrorCode(err) != trustack.EFORBIDDEN {
		t.Errorf("h1's connection to node 1: Err() = %v, want %s", err, trustack.EFORBIDDEN)
	}

	// The connection to node 2 stays, and keeps its grant, until node 2
	// is told.
	events := collect(t, ctl, "host.h1.>")
	waitInterest(t, nodes[1], "host.h1.state")
	if err := on2.Publish("host.h1.state", "up"); err != nil {
		t.Fatalf("h1 publishes on node 2: %v", err)
	}
	if got, want := events.next(t, 1), []string{`host.h1.state "up"`}; !slices.Equal(got, want) {
		t.Errorf("got %q from h1's connection to node 2, want %q", got, want)
	}
	if n := nodes[2].Disconnect("h1"); n != 0 {
		t.Errorf("Disconnect(h1) on node 3 = %d, want 0", n)
	}
	if n := nodes[1].Disconnect("h1"); n != 1 {
		t.Errorf("Disconnect(h1) on node 2 = %d, want its 1 connection", n)
	}
	select {
	case <-on2.Done():
	case <-time.After(wait):
		t.Fatal("h1's connection to node 2: Done still open after Disconnect on node 2")
	}

	select {
	case <-h2.Done():
		t.Errorf("h2's connection closed (Err %v), want it untouched", h2.Err())
	default:
	}
}

func TestClusterClientFailsOver(t *testing.T) {
	nodes := startCluster(t, 3, clusterPolicy().authenticate)
	h1 := connectURL(t, urls(nodes), bus.Password("h1", "pw1"))
	handle(t, h1, "cmd.h1.boot", bus.Handler(func(context.Context, bootRequest) (string, error) { return "booted", nil }))
	// Not cmd.h1.>: a client that gets a request twice, on two
	// subscriptions, may not answer it (nats-server counts each delivery
	// against its one reply).
	events := collect(t, h1, "cmd.h1.stop")

	// nats picks one of the URLs at random; the controller is on another
	// node.
	at := slices.IndexFunc(nodes, func(s *bus.Server) bool { return s.ClientURL() == bus.ConnectedURL(h1) })
	if at < 0 {
		t.Fatalf("h1 connected to %q, want one of %s", bus.ConnectedURL(h1), urls(nodes))
	}
	other := nodes[(at+1)%len(nodes)]
	ctl := connect(t, other, bus.Trusted(other))
	waitInterest(t, other, "cmd.h1.boot")
	if err := ctl.Request(ctx(t), "cmd.h1.boot", bootRequest{}, nil); err != nil {
		t.Fatalf("request before the node stops: %v", err)
	}

	regained := h1.Reconnected()
	killed := nodes[at].ClientURL()
	nodes[at].Shutdown()
	select {
	case <-regained:
	case <-time.After(wait):
		t.Fatalf("h1 did not reconnect after node %d stopped", at+1)
	}
	if u := bus.ConnectedURL(h1); u == killed || u == "" {
		t.Errorf("h1 connected to %q after node %d (%s) stopped, want another node", u, at+1, killed)
	}

	// h1 resubscribes on its new node, and the others learn of it once
	// they forgot the subscriptions of the node that stopped.
	for i, s := range nodes {
		if i != at {
			waitPeers(t, fmt.Sprintf("node %d", i+1), s, 1)
		}
	}
	waitInterest(t, other, "cmd.h1.boot")
	var got string
	if err := ctl.Request(ctx(t), "cmd.h1.boot", bootRequest{}, &got); err != nil {
		t.Fatalf("request after the node stopped: %v", err)
	}
	if got != "booted" {
		t.Errorf("got reply %q, want %q", got, "booted")
	}
	if err := ctl.Publish("cmd.h1.stop", "now"); err != nil {
		t.Fatalf("publish: %v", err)
	}
	if got, want := events.next(t, 1), []string{`cmd.h1.stop "now"`}; !slices.Equal(got, want) {
		t.Errorf("h1 got %q, want %q", got, want)
	}
}

// TestClusterAgentAnswersAfterFailover checks that an agent that loses
// its node while it handles a controller's request, and reconnects to
// another node, still gets its answer to the controller: NATS lets a
// client answer a request only on the connection it received it on, so
// the agent's grant must let it publish to the controllers' inboxes.
func TestClusterAgentAnswersAfterFailover(t *testing.T) {
	nodes := startCluster(t, 3, clusterPolicy().authenticate)
	ctl := connect(t, nodes[1], bus.Trusted(nodes[1]))
	h1 := connectURL(t, nodes[0].ClientURL(), bus.Password("h1", "pw1"))
	if u := bus.ConnectedURL(h1); u != nodes[0].ClientURL() {
		t.Fatalf("h1 connected to %q, want node 1 (%s)", u, nodes[0].ClientURL())
	}
	received := make(chan struct{})
	release := make(chan struct{})
	handle(t, h1, "cmd.h1.boot", bus.Handler(func(ctx context.Context, req bootRequest) (bootReply, error) {
		close(received)
		select {
		case <-release:
		case <-ctx.Done():
			return bootReply{}, ctx.Err()
		}
		return bootReply{Host: "h1", Domain: req.Server}, nil
	}))
	// h1 learned of every node from node 1: from the INFO before its
	// connection and from the one that follows the connection's first
	// PONG, which it has read once Handle's flush returned. Node 3 alone
	// is to take it over, so that its answer crosses a route, as it does
	// wherever the requester's node is not the agent's.
	if err := bus.SetServerPool(h1, nodes[0].ClientURL(), nodes[2].ClientURL()); err != nil {
		t.Fatalf("set h1's servers: %v", err)
	}
	waitInterest(t, nodes[1], "cmd.h1.boot")

	type result struct {
		reply bootReply
		err   error
	}
	done := make(chan result, 1)
	go func() {
		// The requester waits three times as long as the test does
		// for its reply: a reply lost fails the test before it times
		// out.
		ctx, cancel := context.WithTimeout(t.Context(), 3*wait)
		defer cancel()
		var r result
		r.err = ctl.Request(ctx, "cmd.h1.boot", bootRequest{Server: "vm1"}, &r.reply)
		done <- r
	}()
	select {
	case <-received:
	case r := <-done:
		t.Fatalf("request ended before the handler got it: %v", r.err)
	case <-time.After(wait):
		t.Fatal("h1's handler did not get the request")
	}
	// Node 3 is to forward the answer to node 2: it must know where the
	// requester takes its replies, which node 2 tells it on another route
	// than the one that carried the request.
	waitInterest(t, nodes[2], bus.ReplyInbox(ctl))

	// No INFO has told h1 of node 2 again since.
	if got, want := bus.Servers(h1), []string{nodes[0].ClientURL(), nodes[2].ClientURL()}; !slices.Equal(got, want) {
		t.Fatalf("h1's servers are %q, want nodes 1 and 3 %q", got, want)
	}
	regained := h1.Reconnected()
	nodes[0].Shutdown()
	select {
	case <-regained:
	case <-time.After(wait):
		t.Fatal("h1 did not reconnect after node 1 stopped")
	}
	waitFor(t, func() bool { return bus.ConnectedURL(h1) == nodes[2].ClientURL() }, func() string {
		return fmt.Sprintf("h1 connected to %q, want node 3 (%s)", bus.ConnectedURL(h1), nodes[2].ClientURL())
	})

	released := time.Now()
	close(release)
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("request: %v", r.err)
		}
		if want := (bootReply{Host: "h1", Domain: "vm1"}); r.reply != want {
			t.Errorf("got reply %+v, want %+v", r.reply, want)
		}
		t.Logf("reply %s after the handler answered", time.Since(released))
	case <-time.After(wait):
		t.Fatalf("no reply %s after h1, reconnected to node 3, answered the request (the requester waits %s)", wait, 3*wait)
	}
}

func TestServeClusterInvalid(t *testing.T) {
	tests := []struct {
		name string
		cfg  bus.ClusterConfig
	}{
		{"no secret", bus.ClusterConfig{}},
		{"secret of 15 bytes", bus.ClusterConfig{Secret: "fifteen bytes.."}},
		{"name with a space", bus.ClusterConfig{Name: "trust stack", Secret: clusterSecret}},
		{"route without a port", bus.ClusterConfig{Secret: clusterSecret, Routes: []string{"ctl1"}}},
		{"route without a host", bus.ClusterConfig{Secret: clusterSecret, Routes: []string{":6222"}}},
		{"route as a URL", bus.ClusterConfig{Secret: clusterSecret, Routes: []string{"nats://ctl1:6222"}}},
		{"route with credentials", bus.ClusterConfig{Secret: clusterSecret, Routes: []string{"u:p@ctl1:6222"}}},
		{"route to port 0", bus.ClusterConfig{Secret: clusterSecret, Routes: []string{"ctl1:0"}}},
		{"route to a named port", bus.ClusterConfig{Secret: clusterSecret, Routes: []string{"ctl1:nats"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := bus.Serve(bus.ServerConfig{Host: "127.0.0.1", Cluster: &tt.cfg})
			if err == nil {
				s.Shutdown()
			}
			if code := trustack.ErrorCode(err); code != trustack.EINVALID {
				t.Errorf("serve: got %v, want %s", err, trustack.EINVALID)
			}
		})
	}
}

func TestServeClusterPortTaken(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer l.Close()
	start := time.Now()
	s, err := bus.Serve(bus.ServerConfig{Host: "127.0.0.1", Cluster: &bus.ClusterConfig{
		Host: "127.0.0.1", Port: l.Addr().(*net.TCPAddr).Port, Secret: clusterSecret,
	}})
	if err == nil {
		s.Shutdown()
		t.Fatal("serve with the cluster port in use: got nil error, want one")
	}
	if d := time.Since(start); d > wait/2 {
		t.Errorf("serve with the cluster port in use took %s, want it to fail at once", d)
	}
}

func TestClusterAddrWithoutCluster(t *testing.T) {
	if got := newServer(t).ClusterAddr(); got != "" {
		t.Errorf("ClusterAddr of a lone server = %q, want \"\"", got)
	}
}

// relay forwards TCP connections to a target and tells when one ends.
type relay struct {
	addr   string
	closed chan struct{} // receives when a connection ends, if nobody waits already

	mu     sync.Mutex
	target string // "" closes connections at once
}

// newRelay returns a relay listening on 127.0.0.1 that forwards nowhere
// yet.
func newRelay(t testing.TB) *relay {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	r := &relay{addr: l.Addr().String(), closed: make(chan struct{}, 1)}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { r.forward(in) })
		}
	})
	return r
}

// to forwards the connections that come next to target.
func (r *relay) to(target string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.target = target
}

// forward copies in to a new connection to the target and back until
// either side closes.
func (r *relay) forward(in net.Conn) {
	defer func() {
		select {
		case r.closed <- struct{}{}:
		default:
		}
	}()
	defer in.Close()
	r.mu.Lock()
	target := r.target
	r.mu.Unlock()
	if target == "" {
		return
	}
	out, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	defer out.Close()
	done := make(chan struct{}, 2)
	go func() { io.Copy(out, in); done <- struct{}{} }()
	go func() { io.Copy(in, out); done <- struct{}{} }()
	<-done
}
