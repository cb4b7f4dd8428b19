package bus_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/bus"
)

// wait bounds every wait in these tests that should end much sooner; it
// only decides how long a broken test hangs.
const wait = 10 * time.Second

type bootRequest struct {
	Server string `json:"server"`
	VCPUs  int    `json:"vcpus"`
}

type bootReply struct {
	Host   string `json:"host"`
	Domain string `json:"domain"`
}

// noReply reports whether err says its request got no reply, as the
// consumers of Request tell.
func noReply(err error) bool {
	var e interface{ NoReply() bool }
	return errors.As(err, &e) && e.NoReply()
}

func TestRequestReply(t *testing.T) {
	for _, inProcess := range []bool{false, true} {
		t.Run(map[bool]string{false: "tcp", true: "in-process"}[inProcess], func(t *testing.T) {
			s := newServer(t)
			var opts []bus.Option
			if inProcess {
				opts = append(opts, bus.InProcess(s))
			}
			agent, controller := connect(t, s, opts...), connect(t, s, opts...)
			handle(t, agent, "host.h1.boot", bus.Handler(func(ctx context.Context, req bootRequest) (bootReply, error) {
				return bootReply{Host: "h1", Domain: fmt.Sprintf("%s-%d", req.Server, req.VCPUs)}, nil
			}))

			var got bootReply
			if err := controller.Request(ctx(t), "host.h1.boot", bootRequest{Server: "vm1", VCPUs: 4}, &got); err != nil {
				t.Fatalf("request: %v", err)
			}
			if want := (bootReply{Host: "h1", Domain: "vm1-4"}); got != want {
				t.Errorf("got reply %+v, want %+v", got, want)
			}
		})
	}
}

func TestRequestErrors(t *testing.T) {
	s := newServer(t)
	agent, controller := connect(t, s), connect(t, s)
	tests := []struct {
		name     string
		fn       bus.HandlerFunc
		req      any
		wantCode string
		wantMsg  string
	}{{
		name: "coded error keeps its code and message",
		fn: func(context.Context, []byte) (any, error) {
			return nil, trustack.Errorf(trustack.ENOTFOUND, "server vm1 not found")
		},
		wantCode: trustack.ENOTFOUND,
		wantMsg:  "server vm1 not found",
	}, {
		name: "wrapped coded error keeps its code and message",
		fn: func(context.Context, []byte) (any, error) {
			return nil, fmt.Errorf("boot vm1: %w", trustack.Errorf(trustack.ECONFLICT, "server vm1 is already running"))
		},
		wantCode: trustack.ECONFLICT,
		wantMsg:  "server vm1 is already running",
	}, {
		name: "error without a code becomes internal with a generic message",
		fn: func(context.Context, []byte) (any, error) {
			return nil, errors.New("qemu: /dev/kvm: permission denied")
		},
		wantCode: trustack.EINTERNAL,
		wantMsg:  trustack.ErrorMessage(errors.New("any")),
	}, {
		name: "panic becomes internal with a generic message",
		fn: func(context.Context, []byte) (any, error) {
			panic("index out of range")
		},
		wantCode: trustack.EINTERNAL,
		wantMsg:  trustack.ErrorMessage(errors.New("any")),
	}, {
		name: "result that cannot be encoded becomes internal",
		fn: func(context.Context, []byte) (any, error) {
			return func() {}, nil
		},
		wantCode: trustack.EINTERNAL,
		wantMsg:  trustack.ErrorMessage(errors.New("any")),
	}, {
		name: "request that does not decode is invalid",
		fn: bus.Handler(func(context.Context, bootRequest) (bootReply, error) {
			t.Error("handler called with a malformed request")
			return bootReply{}, nil
		}),
		req:      map[string]string{"vcpus": "four"},
		wantCode: trustack.EINVALID,
	}}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			subject := "errors." + strconv.Itoa(i)
			handle(t, agent, subject, tt.fn)
			err := controller.Request(ctx(t), subject, tt.req, &bootReply{})
			var e *trustack.Error
			if !errors.As(err, &e) {
				t.Fatalf("got error %v, want a *trustack.Error", err)
			}
			if e.Code != tt.wantCode {
				t.Errorf("got code %q, want %q (error %v)", e.Code, tt.wantCode, err)
			}
			if tt.wantMsg != "" && e.Message != tt.wantMsg {
				t.Errorf("got message %q, want %q", e.Message, tt.wantMsg)
			}
			if noReply(err) {
				t.Errorf("NoReply(%v) = true for an error the handler answered", err)
			}
		})
	}
}

func TestRequestNoResponder(t *testing.T) {
	c := connect(t, newServer(t))
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	err := c.Request(ctx, "host.nobody.boot", bootRequest{}, nil)
	if code := trustack.ErrorCode(err); code != trustack.EUNAVAILABLE {
		t.Fatalf("got code %q (error %v), want %q", code, err, trustack.EUNAVAILABLE)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v, want an answer before the deadline", err)
	}
	if msg := trustack.ErrorMessage(err); !strings.Contains(msg, "nobody serves host.nobody.boot") {
		t.Errorf("got message %q, want it to say nobody serves host.nobody.boot", msg)
	}
	if !noReply(err) {
		t.Errorf("NoReply(%v) = false, want true", err)
	}
}

func TestRequestTimeout(t *testing.T) {
	s := newServer(t)
	agent, controller := connect(t, s), connect(t, s)
	handlerDone := make(chan error, 1)
	handle(t, agent, "host.h1.slow", func(ctx context.Context, _ []byte) (any, error) {
		select {
		case <-ctx.Done():
			handlerDone <- ctx.Err()
		case <-time.After(wait):
			handlerDone <- errors.New("handler context still open after the requester's deadline")
		}
		return nil, ctx.Err()
	})

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := controller.Request(ctx, "host.h1.slow", nil, nil)
	if code := trustack.ErrorCode(err); code != trustack.EUNAVAILABLE {
		t.Errorf("got code %q (error %v), want %q", code, err, trustack.EUNAVAILABLE)
	}
	if !errors.Is(err, context.DeadlineExceeded) || !noReply(err) {
		t.Errorf("got %v, want it to wrap context.DeadlineExceeded, and count as no reply", err)
	}
	if err := <-handlerDone; !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("handler context: got %v, want the requester's deadline to end it", err)
	}
}

func TestHandleQueue(t *testing.T) {
	s := newServer(t)
	const members, requests = 3, 300
	var handled [members]atomic.Int64
	for i := range members {
		controller := connect(t, s)
		sub, err := controller.HandleQueue("scheduler.place", "controllers", bus.Handler(func(context.Context, bootRequest) (int, error) {
			handled[i].Add(1)
			return i, nil
		}))
		if err != nil {
			t.Fatalf("handle: %v", err)
		}
		t.Cleanup(func() { sub.Unsubscribe() })
	}

	api := connect(t, s)
	for range requests {
		var member int
		if err := api.Request(ctx(t), "scheduler.place", bootRequest{}, &member); err != nil {
			t.Fatalf("request: %v", err)
		}
	}
	var total int64
	for i := range members {
		n := handled[i].Load()
		if n == 0 {
			t.Errorf("member %d handled no request, want the group to share the work", i)
		}
		total += n
	}
	if total != requests {
		t.Errorf("got %d requests handled, want %d: each request handled once", total, requests)
	}
}

func TestHandlersRunConcurrently(t *testing.T) {
	for _, subject := range []string{"host.h1.boot", "host.h1.stop"} {
		t.Run("fast request on "+subject, func(t *testing.T) {
			s := newServer(t)
			agent, controller := connect(t, s), connect(t, s)
			started, release := make(chan struct{}), make(chan struct{})
			fn := bus.Handler(func(ctx context.Context, slow bool) (bool, error) {
				if slow {
					close(started)
					<-release
				}
				return slow, nil
			})
			handle(t, agent, "host.h1.boot", fn)
			handle(t, agent, "host.h1.stop", fn)

			slowErr := make(chan error, 1)
			go func() { slowErr <- controller.Request(ctx(t), "host.h1.boot", true, nil) }()
			<-started
			if err := controller.Request(ctx(t), subject, false, nil); err != nil {
				t.Errorf("fast request while a slow one runs: %v", err)
			}
			close(release)
			if err := <-slowErr; err != nil {
				t.Errorf("slow request: %v", err)
			}
		})
	}
}

func TestMaxHandlers(t *testing.T) {
	s := newServer(t)
	agent, controller := connect(t, s, bus.MaxHandlers(1)), connect(t, s)
	started, release := make(chan struct{}), make(chan struct{})
	handle(t, agent, "host.h1.boot", bus.Handler(func(ctx context.Context, slow bool) (bool, error) {
		if slow {
			close(started)
			<-release
		}
		return slow, nil
	}))

	slowErr := make(chan error, 1)
	go func() { slowErr <- controller.Request(ctx(t), "host.h1.boot", true, nil) }()
	<-started
	short, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := controller.Request(short, "host.h1.boot", false, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("request beyond MaxHandlers: got %v, want it to wait for a free handler until its deadline", err)
	}
	close(release)
	if err := <-slowErr; err != nil {
		t.Errorf("slow request: %v", err)
	}
	if err := controller.Request(ctx(t), "host.h1.boot", false, nil); err != nil {
		t.Errorf("request once the handler is free: %v", err)
	}
}

func TestPublishSubscribe(t *testing.T) {
	s := newServer(t)
	agent, controller := connect(t, s), connect(t, s)
	states, all := collect(t, controller, "host.*.state"), collect(t, controller, "host.>")

	type state struct {
		Server string `json:"server"`
		State  string `json:"state"`
	}
	for _, subject := range []string{"host.h1.state", "host.h2.state", "host.h1.heartbeat", "other.h1.state"} {
		if err := agent.Publish(subject, state{Server: "vm1", State: "running"}); err != nil {
			t.Fatalf("publish %s: %v", subject, err)
		}
	}

	if got, want := states.next(t, 2), []string{`host.h1.state {"server":"vm1","state":"running"}`, `host.h2.state {"server":"vm1","state":"running"}`}; !slices.Equal(got, want) {
		t.Errorf("host.*.state got %q, want %q", got, want)
	}
	if got, want := all.next(t, 3), []string{"host.h1.state", "host.h2.state", "host.h1.heartbeat"}; !slices.Equal(subjects(got), want) {
		t.Errorf("host.> got %q, want subjects %q", got, want)
	}
}

func TestReconnect(t *testing.T) {
	s := newServer(t)
	agent, controller := connect(t, s), connect(t, s)
	handle(t, agent, "host.h1.boot", bus.Handler(func(context.Context, bootRequest) (string, error) {
		return "booted", nil
	}))
	events := collect(t, controller, "host.h1.state")
	regained := agent.Reconnected()

	u, err := url.Parse(s.ClientURL())
	if err != nil {
		t.Fatalf("parse client URL: %v", err)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatalf("client URL %s: %v", u, err)
	}
	s.Shutdown()
	restarted, err := bus.Serve(bus.ServerConfig{Host: "127.0.0.1", Port: port})
	if err != nil {
		t.Fatalf("restart server on port %d: %v", port, err)
	}
	t.Cleanup(restarted.Shutdown)
	select {
	case <-regained:
	case <-time.After(wait):
		t.Fatal("Reconnected's channel still open after the server came back")
	}
	select {
	case <-agent.Reconnected():
		t.Error("Reconnected returns a closed channel after the reconnection, want the next one's")
	default:
	}

	// Each side resubscribes when it has reconnected, which takes a while.
	deadline := time.Now().Add(wait)
	for {
		short, cancel := context.WithTimeout(context.Background(), time.Second)
		var got string
		err := controller.Request(short, "host.h1.boot", bootRequest{}, &got)
		cancel()
		if err == nil {
			if got != "booted" {
				t.Errorf("got reply %q, want %q", got, "booted")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("request after restart: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for !events.has() {
		if err := agent.Publish("host.h1.state", "running"); err != nil {
			t.Fatalf("publish after restart: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatal("got no event after restart, want the subscription back")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestUnsubscribe(t *testing.T) {
	s := newServer(t)
	agent, controller := connect(t, s), connect(t, s)
	sub, err := agent.Handle("host.h1.boot", func(context.Context, []byte) (any, error) { return nil, nil })
	if err != nil {
		t.Fatalf("handle: %v", err)
	}
	if err := controller.Request(ctx(t), "host.h1.boot", nil, nil); err != nil {
		t.Fatalf("request before unsubscribing: %v", err)
	}
	if err := sub.Unsubscribe(); err != nil {
		t.Fatalf("unsubscribe: %v", err)
	}
	if err := sub.Unsubscribe(); err != nil {
		t.Errorf("unsubscribe again: got %v, want nil", err)
	}
	if err := (bus.Subscription{}).Unsubscribe(); err != nil {
		t.Errorf("unsubscribe the zero Subscription: got %v, want nil", err)
	}
	// The agent's UNSUB and the controller's request travel on different
	// connections; a round trip on the agent's makes sure it arrived.
	if err := agent.Request(ctx(t), "host.h1.boot", nil, nil); trustack.ErrorCode(err) != trustack.EUNAVAILABLE {
		t.Fatalf("agent request after unsubscribing: got %v, want %s", err, trustack.EUNAVAILABLE)
	}
	if err := controller.Request(ctx(t), "host.h1.boot", nil, nil); trustack.ErrorCode(err) != trustack.EUNAVAILABLE {
		t.Errorf("request after unsubscribing: got %v, want %s", err, trustack.EUNAVAILABLE)
	}
}

func TestClose(t *testing.T) {
	s := newServer(t)
	agent, controller := connect(t, s), connect(t, s)
	started := make(chan struct{})
	handle(t, agent, "host.h1.boot", func(ctx context.Context, _ []byte) (any, error) {
		close(started)
		<-ctx.Done()
		return "stopped: " + ctx.Err().Error(), nil
	})

	reply := make(chan error, 1)
	var got string
	go func() { reply <- controller.Request(ctx(t), "host.h1.boot", nil, &got) }()
	<-started
	agent.Close()
	if err := <-reply; err != nil {
		t.Fatalf("request in progress during Close: %v", err)
	}
	if want := "stopped: " + context.Canceled.Error(); got != want {
		t.Errorf("got reply %q, want %q: Close cancels handlers and sends their replies", got, want)
	}

	agent.Close() // again: nothing happens
	if err := agent.Publish("host.h1.state", "stopped"); trustack.ErrorCode(err) != trustack.EUNAVAILABLE {
		t.Errorf("publish after Close: got %v, want %s", err, trustack.EUNAVAILABLE)
	}
	if err := agent.Request(ctx(t), "host.h1.boot", nil, nil); trustack.ErrorCode(err) != trustack.EUNAVAILABLE {
		t.Errorf("request after Close: got %v, want %s", err, trustack.EUNAVAILABLE)
	}
	if _, err := agent.Subscribe("host.>", func(string, []byte) {}); trustack.ErrorCode(err) != trustack.EUNAVAILABLE {
		t.Errorf("subscribe after Close: got %v, want %s", err, trustack.EUNAVAILABLE)
	}
}

func TestSubscribeInvalid(t *testing.T) {
	c := connect(t, newServer(t))
	for _, subject := range []string{"", "host..boot", "host h1"} {
		if _, err := c.Subscribe(subject, func(string, []byte) {}); trustack.ErrorCode(err) != trustack.EINVALID {
			t.Errorf("subscribe %q: got %v, want %s", subject, err, trustack.EINVALID)
		}
		if _, err := c.Handle(subject, func(context.Context, []byte) (any, error) { return nil, nil }); trustack.ErrorCode(err) != trustack.EINVALID {
			t.Errorf("handle %q: got %v, want %s", subject, err, trustack.EINVALID)
		}
	}
}

// TestManyHandlersOneConn is `trustack up` in small: thousands of simulated
// hosts share one connection, each with its own subject.
func TestManyHandlersOneConn(t *testing.T) {
	const hosts, requesters = 10_000, 64
	s := newServer(t)
	agents, controller := connect(t, s, bus.InProcess(s)), connect(t, s, bus.InProcess(s))
	for i := range hosts {
		host := "h" + strconv.Itoa(i)
		handle(t, agents, "host."+host+".status", bus.Handler(func(context.Context, struct{}) (string, error) {
			return host, nil
		}))
	}

	ctx := ctx(t)
	work := make(chan int)
	var wg sync.WaitGroup
	for range requesters {
		wg.Go(func() {
			for i := range work {
				var got string
				want := "h" + strconv.Itoa(i)
				if err := controller.Request(ctx, "host."+want+".status", struct{}{}, &got); err != nil {
					t.Errorf("request host %s: %v", want, err)
				} else if got != want {
					t.Errorf("host %s: got reply %q, want %q", want, got, want)
				}
			}
		})
	}
	for i := range hosts {
		work <- i
	}
	close(work)
	wg.Wait()
}

func TestServePortTaken(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer l.Close()
	start := time.Now()
	s, err := bus.Serve(bus.ServerConfig{Host: "127.0.0.1", Port: l.Addr().(*net.TCPAddr).Port})
	if err == nil {
		s.Shutdown()
		t.Fatal("serve on a port in use: got nil error, want one")
	}
	if d := time.Since(start); d > wait/2 {
		t.Errorf("serve on a port in use took %s, want it to fail at once", d)
	}
}

func newServer(t testing.TB) *bus.Server {
	t.Helper()
	s, err := bus.Serve(bus.ServerConfig{Host: "127.0.0.1", Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("serve: %v", err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

func connect(t testing.TB, s *bus.Server, opts ...bus.Option) *bus.Conn {
	t.Helper()
	c, err := bus.Connect(s.ClientURL(), t.Name(), append([]bus.Option{bus.Logger(testLogger(t))}, opts...)...)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// testLogger logs warnings and errors into the test's output while the
// test runs: the bus's connection callbacks may still log once it ended.
func testLogger(t testing.TB) *slog.Logger {
	w := &whileRunning{out: t.Output()}
	t.Cleanup(func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.out = io.Discard
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// whileRunning writes to a test's output until the test ends.
type whileRunning struct {
	mu  sync.Mutex
	out io.Writer
}

func (w *whileRunning) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.out.Write(p)
}

func handle(t testing.TB, c *bus.Conn, subject string, fn bus.HandlerFunc) {
	t.Helper()
	sub, err := c.Handle(subject, fn)
	if err != nil {
		t.Fatalf("handle %s: %v", subject, err)
	}
	t.Cleanup(func() { sub.Unsubscribe() })
}

// ctx returns a context that ends when a broken test should give up.
func ctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	t.Cleanup(cancel)
	return ctx
}

// events records what a subscription receives, as "subject payload".
type events struct {
	mu  sync.Mutex
	got []string
	new chan struct{}
}

func collect(t testing.TB, c *bus.Conn, subject string) *events {
	t.Helper()
	e := &events{new: make(chan struct{}, 1)}
	sub, err := c.Subscribe(subject, func(subject string, data []byte) {
		e.mu.Lock()
		e.got = append(e.got, subject+" "+string(data))
		e.mu.Unlock()
		select {
		case e.new <- struct{}{}:
		default:
		}
	})
	if err != nil {
		t.Fatalf("subscribe %s: %v", subject, err)
	}
	t.Cleanup(func() { sub.Unsubscribe() })
	return e
}

// next waits for n events and returns them, with any event that follows
// within a short while, so that a test sees unwanted extras.
func (e *events) next(t testing.TB, n int) []string {
	t.Helper()
	timeout := time.After(wait)
	for {
		e.mu.Lock()
		got := len(e.got)
		e.mu.Unlock()
		if got >= n {
			break
		}
		select {
		case <-e.new:
		case <-timeout:
			t.Fatalf("got %d events, want %d", got, n)
		}
	}
	time.Sleep(50 * time.Millisecond)
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.got...)
}

func (e *events) has() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.got) > 0
}

func subjects(events []string) []string {
	var s []string
	for _, e := range events {
		subject, _, _ := strings.Cut(e, " ")
		s = append(s, subject)
	}
	return s
}
