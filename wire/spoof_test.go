package wire

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/bus"
)

// heard records what the controllers' and verifiers' side was told, and
// the spoofs its witness heard of.
type heard struct {
	mu     sync.Mutex
	calls  []string // "what host"
	spoofs []Spoof
}

func (h *heard) add(what, host string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, what+" "+host)
}

func (h *heard) witness(_ context.Context, s Spoof) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.spoofs = append(h.spoofs, s)
}

func (h *heard) Register(_ context.Context, host *trustack.Host) (Registration, error) {
	h.add(sentRegister, host.Name)
	return Registration{Host: *host}, nil
}
func (h *heard) Heartbeat(host string) { h.add(sentHeartbeat, host) }
func (h *heard) PowerChanged(_ context.Context, e PowerEvent) error {
	h.add(sentPower, e.Host)
	return nil
}
func (h *heard) Metadata(_ context.Context, r MetadataRequest) ([]byte, error) {
	h.add(sentMetadata, r.Host)
	return []byte("{}"), nil
}
func (h *heard) ImageCopied(_ context.Context, e ImageCopied) error {
	h.add(sentImageCopied, e.Host)
	return nil
}

// verifier is the Verifier whose measurements h hears.
type verifier struct{ h *heard }

func (verifier) Register(context.Context, RegisterRequest) (RegisterChallenge, error) {
	return RegisterChallenge{}, nil
}
func (verifier) Activate(context.Context, ActivateRequest) (ActivateReply, error) {
	return ActivateReply{}, nil
}
func (v verifier) Measured(host string)                              { v.h.add(sentMeasured, host) }
func (verifier) CredentialChanged(context.Context, CredentialChange) {}

// settle waits until h has heard n calls and spoofs in all, and a while
// more for any extra, and returns them.
func (h *heard) settle(t *testing.T, n int) (calls []string, spoofs []Spoof) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		h.mu.Lock()
		got := len(h.calls) + len(h.spoofs)
		h.mu.Unlock()
		if got >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	h.mu.Lock()
	defer h.mu.Unlock()
	calls, spoofs = slices.Clone(h.calls), slices.Clone(h.spoofs)
	h.calls, h.spoofs = nil, nil
	slices.Sort(calls)
	slices.SortFunc(spoofs, func(a, b Spoof) int { return strings.Compare(a.What, b.What) })
	return calls, spoofs
}

// TestHostsSpeakOnlyForThemselves has an agent holding host A's bus
// credentials (with the grant the verifier gives A) tell the controllers
// and verifiers of A, then of B: on A's subjects, what names B is dropped
// (the requests answered EFORBIDDEN) and its witness told that A sent it;
// on B's subjects, the bus refuses it, and nobody hears of it.
func TestHostsSpeakOnlyForThemselves(t *testing.T) {
	s, err := bus.Serve(bus.ServerConfig{Host: "127.0.0.1", Authenticate: func(c bus.Credentials) (bus.Grant, bool) {
		if c.User != "A" || c.Password != "secret" {
			return bus.Grant{}, false
		}
		pub, sub := HostGrant("A")
		return bus.Grant{Name: "A", Publish: pub, Subscribe: sub}, true
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	ctl, err := bus.Connect(s.ClientURL(), "controller", bus.Trusted(s))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ctl.Close)
	agent, err := bus.Connect(s.ClientURL(), "agent", bus.Password("A", "secret"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(agent.Close)

	h := &heard{}
	stop, err := ServeControllers(ctl, h, h.witness)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	stopVerifier, err := ServeVerifier(ctl, "v1", verifier{h}, h.witness)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stopVerifier)
	volumes, err := ServeVolumeControllers(ctl, h, h.witness)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { volumes.Unsubscribe() })

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// tell sends each message of an agent naming host on the subjects of
	// from, and returns the requests' errors by what they were.
	tell := func(from, host string) map[string]error {
		errs := map[string]error{}
		request := func(what string, req, reply any) {
			short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			defer cancel()
			errs[what] = agent.Request(short, fromSubject(from, what), req, reply)
		}
		request(sentRegister, registerRequest{Host: trustack.Host{Name: host}}, &Registration{})
		request(sentPower, PowerEvent{Host: host, ServerID: "vm1", Power: trustack.PowerShutdown}, &empty{})
		request(sentMetadata, MetadataRequest{Host: host, RouterID: "r1", Address: "10.0.0.5", Path: "/"}, &metadataReply{})
		request(sentImageCopied, ImageCopied{Host: host, VolumeID: "v1", Bytes: 1}, &empty{})
		for what, event := range map[string]any{sentHeartbeat: heartbeat{Host: host}, sentMeasured: measured{Host: host}} {
			if err := agent.Publish(fromSubject(from, what), event); err != nil {
				t.Fatalf("publish %s: %v", what, err)
			}
		}
		return errs
	}
	all := []string{sentHeartbeat, sentImageCopied, sentMeasured, sentMetadata, sentPower, sentRegister}

	// Of itself, on its own subjects: heard, through the clients' own
	// methods too.
	for what, err := range tell("A", "A") {
		if err != nil {
			t.Errorf("A's %s about A: %v", what, err)
		}
	}
	calls, spoofs := h.settle(t, len(all))
	var want []string
	for _, what := range all {
		want = append(want, what+" A")
	}
	if !slices.Equal(calls, want) || len(spoofs) != 0 {
		t.Errorf("A about A: heard %q and spoofs %+v, want %q and none", calls, spoofs, want)
	}
	if err := NewControllers(agent).Heartbeat("A"); err != nil {
		t.Fatal(err)
	}
	if err := NewVerifiers(agent).Measured("A"); err != nil {
		t.Fatal(err)
	}
	if calls, _ := h.settle(t, 2); !slices.Equal(calls, []string{"heartbeat A", "measured A"}) {
		t.Errorf("A's heartbeat and measurement through the clients: heard %q", calls)
	}

	// Of B, on A's subjects: dropped, the requests forbidden, each a
	// spoof by A.
	for what, err := range tell("A", "B") {
		if trustack.ErrorCode(err) != trustack.EFORBIDDEN {
			t.Errorf("A's %s about B: got %v, want %s", what, err, trustack.EFORBIDDEN)
		}
	}
	calls, spoofs = h.settle(t, len(all))
	var wantSpoofs []Spoof
	for _, what := range all {
		wantSpoofs = append(wantSpoofs, Spoof{Sender: "A", Named: "B", What: what})
	}
	if len(calls) != 0 || !slices.Equal(spoofs, wantSpoofs) {
		t.Errorf("A about B: heard %q and spoofs %+v, want nothing and %+v", calls, spoofs, wantSpoofs)
	}

	// Of B, on B's subjects, as the clients send it: the bus refuses
	// it; the requests get no answer.
	for what, err := range tell("B", "B") {
		if trustack.ErrorCode(err) != trustack.EUNAVAILABLE {
			t.Errorf("A's %s on B's subject: got %v, want no answer (%s)", what, err, trustack.EUNAVAILABLE)
		}
	}
	if calls, spoofs := h.settle(t, 1); len(calls) != 0 || len(spoofs) != 0 {
		t.Errorf("A on B's subjects: heard %q and spoofs %+v, want nothing", calls, spoofs)
	}
}

func TestSenderOf(t *testing.T) {
	for _, host := range []string{"compute-1", "node.example.com", "a%b*c>d e"} {
		if got := senderOf(fromSubject(host, sentHeartbeat)); got != host {
			t.Errorf("senderOf(fromSubject(%q)) = %q", host, got)
		}
	}
}
