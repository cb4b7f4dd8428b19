package volume_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/agent"
	"github.com/trustack/trustack/bus"
	hostnet "github.com/trustack/trustack/hostnet/fake"
	hypervisor "github.com/trustack/trustack/hypervisor/fake"
	"github.com/trustack/trustack/sqlstore"
	"github.com/trustack/trustack/volume"
	"github.com/trustack/trustack/volume/file"
	"github.com/trustack/trustack/wire"
)

// storageRig is the block storage service and a storage host's agent
// that it reaches over a real bus, which the tests stop, hang and start
// again as a crash and a restart would.
type storageRig struct {
	t       *testing.T
	srv     *bus.Server
	db      *sqlstore.DB
	svc     *volume.Service
	backend *file.Backend
	// alive is what the service is told of the host's heartbeats.
	alive atomic.Bool
	// stop ends the agent running now, if any.
	stop func()
}

// registrar records the hosts that register, as a controller does.
type registrar struct{ db *sqlstore.DB }

func (r registrar) Register(ctx context.Context, h *trustack.Host) (wire.Registration, error) {
	now := time.Now().UTC()
	h.Enabled, h.AvailabilityZone, h.CreatedAt, h.UpdatedAt, h.LastSeen = true, "nova", now, now, now
	stored, err := r.db.RegisterHost(ctx, h)
	if err != nil {
		return wire.Registration{}, err
	}
	return wire.Registration{Host: *stored}, nil
}
func (registrar) Heartbeat(string)                                               {}
func (registrar) PowerChanged(context.Context, wire.PowerEvent) error            { return nil }
func (registrar) Metadata(context.Context, wire.MetadataRequest) ([]byte, error) { return nil, nil }

// newStorageRig starts a bus, the service on it with opts, and the
// agent of storage host storage-1, registered.
func newStorageRig(t *testing.T, opts volume.Options) *storageRig {
	t.Helper()
	r := &storageRig{t: t}
	var err error
	if r.srv, err = bus.Serve(bus.ServerConfig{Host: "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.srv.Shutdown)
	if r.db, err = sqlstore.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "volume.db")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.db.Close() })
	if r.backend, err = file.New(t.TempDir(), file.QCOW2); err != nil {
		t.Fatal(err)
	}
	controller := r.connect("controller")
	stop, err := wire.ServeControllers(controller, registrar{r.db}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	r.alive.Store(true)
	opts.Alive = func(*trustack.Host) bool { return r.alive.Load() }
	opts.RetryInterval = 20 * time.Millisecond
	r.svc = volume.New(r.db, r.db, wire.NewHosts(controller), opts)
	t.Cleanup(r.svc.Wait)
	r.start(r.backend)
	return r
}

func (r *storageRig) connect(name string) *bus.Conn {
	r.t.Helper()
	conn, err := bus.Connect("", name, bus.InProcess(r.srv), bus.Logger(slog.New(slog.DiscardHandler)))
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(conn.Close)
	return conn
}

// start runs an agent of storage-1 on backend, and waits until it has
// registered.
func (r *storageRig) start(backend agent.VolumeBackend) {
	r.t.Helper()
	before, _ := r.db.HostByName(ctx, "storage-1")
	hv, err := hypervisor.New(hypervisor.Options{})
	if err != nil {
		r.t.Fatal(err)
	}
	a := agent.New(r.connect("storage-1"), hv, hostnet.New(nil), agent.Config{Name: "storage-1", Volumes: map[string]agent.VolumeBackend{"file": backend}})
	actx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.Run(actx)
	}()
	r.stop = func() { cancel(); <-done }
	r.t.Cleanup(r.stop)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if h, err := r.db.HostByName(ctx, "storage-1"); err == nil && (before == nil || !h.UpdatedAt.Equal(before.UpdatedAt)) {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatal("storage-1's agent did not register within 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// create accepts a volume of 1 GiB, on storage-1.
func (r *storageRig) create() *trustack.Volume {
	r.t.Helper()
	v, err := r.svc.Create(ctx, alice, volume.CreateRequest{Size: 1})
	if err != nil {
		r.t.Fatal(err)
	}
	if v.Status != trustack.VolumeCreating || !strings.HasPrefix(v.Host, "storage-1@") {
		r.t.Fatalf("accepted volume: %s on %q, want creating on storage-1", v.Status, v.Host)
	}
	return v
}

// settle waits for the service's background work, for no more than
// limit, and returns the volume as it is then.
func (r *storageRig) settle(id string, limit time.Duration) *trustack.Volume {
	r.t.Helper()
	done := make(chan struct{})
	go func() {
		r.svc.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(limit):
		r.t.Fatalf("volume %s still being made after %v", id, limit)
	}
	v, err := r.svc.Get(ctx, alice, id)
	if err != nil {
		r.t.Fatal(err)
	}
	return v
}

// hung is a backend whose agent hangs making volumes, as one killed in
// the middle of it: nothing is made, and no answer comes.
type hung struct {
	*file.Backend
	started chan struct{}
	release chan struct{}
}

func (h hung) Create(context.Context, string, int) error {
	h.started <- struct{}{}
	<-h.release
	return trustack.Errorf(trustack.EUNAVAILABLE, "killed")
}

// TestAgentRestartDuringACreation: a creation whose storage host's agent
// is killed before it answers, and comes back, is asked again of the new
// agent at once, not after the request's timeout: the volume is made.
func TestAgentRestartDuringACreation(t *testing.T) {
	r := newStorageRig(t, volume.Options{AgentTimeout: time.Hour})
	r.stop()
	h := hung{Backend: r.backend, started: make(chan struct{}, 1), release: make(chan struct{})}
	r.start(h)
	t.Cleanup(func() { close(h.release) }) // before the agent's connection closes, which waits for it
	v := r.create()
	<-h.started
	r.stop() // the old agent's answer never comes
	r.start(r.backend)
	if v = r.settle(v.ID, time.Minute); v.Status != trustack.VolumeAvailable {
		t.Fatalf("the volume after its agent's restart: %s (%q), want available", v.Status, v.Reason)
	}
	if got, _ := r.backend.Volumes(ctx); got[v.ID] != 1 {
		t.Errorf("the storage host has %v, want %s of 1 GiB", got, v.ID)
	}
}

// TestAgentDownDuringACreation: a volume asked for while its storage
// host's agent is down, its host not yet counted as down, is made once
// the agent is back; one whose host counts as down before it is back is
// in error, with the reason. Either way none stays creating.
func TestAgentDownDuringACreation(t *testing.T) {
	r := newStorageRig(t, volume.Options{AgentTimeout: time.Hour})
	r.stop()
	v := r.create()
	time.Sleep(100 * time.Millisecond) // a few requests find nobody serving storage-1
	r.start(r.backend)
	if v = r.settle(v.ID, time.Minute); v.Status != trustack.VolumeAvailable {
		t.Fatalf("the volume asked for while its agent was down: %s (%q), want available once it is back", v.Status, v.Reason)
	}

	r.stop()
	v = r.create()
	r.alive.Store(false)
	if v = r.settle(v.ID, time.Minute); v.Status != trustack.VolumeError || !strings.Contains(v.Reason, "storage host storage-1 is down") {
		t.Errorf("the volume of a host that went down: %s (%q), want error saying the host is down", v.Status, v.Reason)
	}
	if got, _ := r.backend.Volumes(ctx); got[v.ID] != 0 {
		t.Errorf("the storage host has the failed volume: %v", got)
	}
}

// TestAgentSilentPastTheTimeout: an agent that is up but does not answer
// within AgentTimeout fails the creation with a reason that says so.
func TestAgentSilentPastTheTimeout(t *testing.T) {
	r := newStorageRig(t, volume.Options{AgentTimeout: 300 * time.Millisecond})
	r.stop()
	h := hung{Backend: r.backend, started: make(chan struct{}, 1), release: make(chan struct{})}
	r.start(h)
	t.Cleanup(func() { close(h.release) }) // before the agent's connection closes, which waits for it
	v := r.create()
	if v = r.settle(v.ID, time.Minute); v.Status != trustack.VolumeError || !strings.Contains(v.Reason, "did not answer within 300ms") {
		t.Errorf("the volume of a silent agent: %s (%q), want error saying it did not answer", v.Status, v.Reason)
	}
}

// TestAgentCrashingOnARequest: an agent that dies on a request each time
// it is asked (it restarts, and dies again) does not keep the volume
// creating for ever: after a few restarts it is in error, saying so.
func TestAgentCrashingOnARequest(t *testing.T) {
	r := newStorageRig(t, volume.Options{AgentTimeout: time.Hour})
	newHung := func() hung {
		r.stop()
		h := hung{Backend: r.backend, started: make(chan struct{}, 1), release: make(chan struct{})}
		r.start(h)
		t.Cleanup(func() { close(h.release) })
		return h
	}
	h := newHung()
	v := r.create()
	for range 4 {
		<-h.started
		h = newHung()
	}
	if v = r.settle(v.ID, time.Minute); v.Status != trustack.VolumeError || !strings.Contains(v.Reason, "restarted 4 times before it answered") {
		t.Errorf("the volume of an agent that dies on it: %s (%q), want error saying it restarted", v.Status, v.Reason)
	}
}
