package compute_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/acaas"
	"github.com/trustack/trustack/agent"
	"github.com/trustack/trustack/api/openstack"
	imageapi "github.com/trustack/trustack/api/openstack/image"
	"github.com/trustack/trustack/bus"
	"github.com/trustack/trustack/compute"
	fakenet "github.com/trustack/trustack/hostnet/fake"
	"github.com/trustack/trustack/hypervisor/fake"
	"github.com/trustack/trustack/identity"
	"github.com/trustack/trustack/images"
	"github.com/trustack/trustack/internal/testclock"
	"github.com/trustack/trustack/network"
	"github.com/trustack/trustack/policy"
	"github.com/trustack/trustack/scheduler"
	"github.com/trustack/trustack/sqlstore"
	"github.com/trustack/trustack/storetest"
	"github.com/trustack/trustack/wire"
)

var ctx = context.Background()

var epoch = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// waitTimeout bounds how long a test waits for the cloud to get somewhere:
// generous, as the race detector on a small machine is slow, and reached
// only when something is wrong.
const waitTimeout = 30 * time.Second

// logBuffer collects what the compute service logs, for tests that look
// at what it did and for the messages of tests that fail.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *logBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// host is a compute host: an agent with the fake hypervisor, in process,
// on its own bus connection.
type host struct {
	name   string
	hv     *fake.Driver
	net    *fakenet.Network
	conn   *bus.Conn
	cancel context.CancelFunc
	done   chan error
}

// stop stops the agent, as a host that dies would: no more heartbeats, and
// nobody answers on its subject.
func (h *host) stop(t testing.TB) {
	t.Helper()
	if h.cancel == nil {
		return
	}
	h.cancel()
	// An agent stopped while it registers says so; that is no failure.
	if err := <-h.done; err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("agent %s: %v", h.name, err)
	}
	h.conn.Close()
	h.cancel = nil
}

// controller is a running compute service with its scheduler, answering
// agents on its own bus connection.
type controller struct {
	svc    *compute.Service
	sched  *scheduler.Scheduler
	conn   *bus.Conn
	cancel context.CancelFunc
	stop   func()
}

// cloud is a whole compute cloud in one process: a SQLite store, the image
// service with one active public image, an embedded bus, compute hosts
// each with an agent and the fake hypervisor, and a compute service.
type cloud struct {
	dir     string
	store   *sqlstore.DB
	images  *images.Service
	bus     *bus.Server
	clock   *testclock.Clock
	logs    *logBuffer
	hosts   []*host
	ctl     *controller
	opts    cloudOptions
	imageID string
	// user is the caller that owns the servers tests create: a member of
	// project "demo".
	user compute.Caller
	// identity is set with cloudOptions.ImageAPI.
	identity *identity.Service
	// acaas is set with cloudOptions.ACaaS.
	acaas *acaas.Service
	// network is set with cloudOptions.Network.
	network  *network.Service
	requests atomic.Int64
}

type cloudOptions struct {
	// Hosts is how many compute hosts there are, named host-0, host-1...
	Hosts int
	// Host returns the fake hypervisor's options for host i; by default
	// 8 vCPUs, 16 GiB and 200 GiB, named after the host.
	Host func(i int) fake.Options
	// Compute are the compute service's options; Now, Log and ImageURL
	// are the cloud's.
	Compute compute.Options
	// ImageAPI serves the image API over HTTP, with the identity service to
	// check tokens, for snapshots: the user is then a real Keystone user
	// with a token.
	ImageAPI bool
	// ACaaS states servers' requirements from the store's requirements
	// model, through the acaas service.
	ACaaS bool
	// Network gives servers ports through the networking service, on the
	// cloud's store; host-0 is the network node. HostPhysnets returns the
	// physical networks host i is wired to (default: physnet1).
	Network      bool
	HostPhysnets func(i int) []string
}

func newCloud(t *testing.T, opts cloudOptions) *cloud {
	t.Helper()
	c := &cloud{dir: t.TempDir(), clock: testclock.New(epoch), logs: &logBuffer{}, opts: opts,
		user: compute.Caller{UserID: "alice", ProjectID: "demo"}}
	var err error
	if c.store, err = sqlstore.Open(ctx, "sqlite://"+filepath.Join(c.dir, "trustack.db")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.store.Close() })
	data, err := images.OpenFiles(filepath.Join(c.dir, "images"), epoch)
	if err != nil {
		t.Fatal(err)
	}
	c.images = images.New(c.store, data, images.Options{})
	if c.bus, err = bus.Serve(bus.ServerConfig{Host: "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.bus.Shutdown)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("compute service log:\n%s", c.logs.String())
		}
	})
	if opts.ImageAPI {
		c.serveImageAPI(t)
	}
	c.imageID = c.activeImage(t, "cirros", nil)
	if opts.ACaaS {
		c.acaas = acaas.New(c.store, nil, acaas.Options{})
		if err := c.acaas.EnsureEntries(ctx, acaas.DefaultEntries); err != nil {
			t.Fatal(err)
		}
		c.opts.Compute.Requirements = c.acaas
	}
	if opts.Network {
		c.network = network.New(c.store, network.Options{Now: c.clock.Now, Rand: rand.New(rand.NewPCG(3, 4)),
			PhysicalNetworks: []string{"physnet1", "physnet2", "physnet3"},
			Log:              slog.New(slog.NewTextHandler(c.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
		c.opts.Compute.Network = c.network
	}
	c.ctl = c.startController(t)
	if err := c.ctl.svc.EnsureFlavors(ctx, compute.DefaultFlavors); err != nil {
		t.Fatal(err)
	}
	for i := range opts.Hosts {
		hv := fake.Options{Hostname: fmt.Sprintf("host-%d", i)}
		if opts.Host != nil {
			hv = opts.Host(i)
		}
		physnets := []string{"physnet1"}
		if opts.HostPhysnets != nil {
			physnets = opts.HostPhysnets(i)
		}
		c.hosts = append(c.hosts, c.startHost(t, fmt.Sprintf("host-%d", i), hv, fakenet.New(physnets)))
	}
	c.waitFor(t, fmt.Sprintf("%d hosts to register", opts.Hosts), func() bool {
		hosts, err := c.store.Hosts(ctx)
		return err == nil && len(hosts) == opts.Hosts
	})
	return c
}

// serveImageAPI serves the image API over HTTP with the identity service,
// and makes the user a member of project demo with a token.
func (c *cloud) serveImageAPI(t *testing.T) {
	t.Helper()
	keys, err := identity.OpenKeyRepository(filepath.Join(c.dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	if c.identity, err = identity.New(c.store, keys, identity.Options{PasswordHashRounds: 4}); err != nil {
		t.Fatal(err)
	}
	if err := c.identity.Bootstrap(ctx, identity.BootstrapConfig{Region: "RegionOne",
		Accounts: []identity.BootstrapAccount{{Project: "demo", User: "alice", Role: "member", Password: "pw"}}}); err != nil {
		t.Fatal(err)
	}
	tok, token, err := c.identity.Authenticate(ctx, identity.AuthRequest{
		Password: &identity.PasswordAuth{UserName: "alice", DomainName: "Default", Password: "pw"},
		Scope:    identity.Scope{ProjectName: "demo", ProjectDomainName: "Default"},
	})
	if err != nil {
		t.Fatal(err)
	}
	c.user = compute.Caller{UserID: tok.User.ID, ProjectID: tok.Project.ID, Token: token}
	enforcer, err := policy.New(imageapi.Policy(), nil)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	mux := http.NewServeMux()
	h := imageapi.New(c.images, c.identity, enforcer, imageapi.Config{PublicURL: "http://127.0.0.1"}, log)
	mux.Handle(imageapi.Prefix, h)
	mux.Handle(imageapi.Prefix+"/", h)
	srv := httptest.NewServer(openstack.Middleware(log, mux))
	t.Cleanup(srv.Close)
	c.opts.Compute.ImageURL = srv.URL + imageapi.Prefix
	c.opts.Compute.ImageTokens = c.identity
}

// activeImage creates a public image with data through the image service.
func (c *cloud) activeImage(t testing.TB, name string, props map[string]string) string {
	t.Helper()
	owner := images.Caller{ProjectID: c.user.ProjectID, Admin: true}
	img := &trustack.Image{Name: name, Visibility: trustack.VisibilityPublic, DiskFormat: "raw", ContainerFormat: "bare", Properties: props}
	if err := c.images.Create(ctx, owner, img); err != nil {
		t.Fatal(err)
	}
	if _, err := c.images.Upload(ctx, owner, img.ID, strings.NewReader("a bootable disk"), images.Expect{}); err != nil {
		t.Fatal(err)
	}
	return img.ID
}

// startController starts a compute service over the cloud's store, with a
// scheduler and a connection of its own, as a controller process would.
func (c *cloud) startController(t *testing.T) *controller {
	t.Helper()
	return c.startControllerWith(t, wrappers{})
}

// wrappers let a test see or steer what the compute service asks of its
// placer and agents; nil ones leave them as they are.
type wrappers struct {
	// placer gets the scheduler and the function that stops the service's
	// work, as a controller that dies would.
	placer func(p compute.Placer, die context.CancelFunc) compute.Placer
	// agents gets the client of the agents.
	agents func(a compute.Agents) compute.Agents
	// controllers are the controllers the service shares the store with;
	// nil for the cloud's (alone, unless its options say otherwise).
	controllers compute.Controllers
}

// startControllerWith starts a compute service whose placer and agents
// are wrapped.
func (c *cloud) startControllerWith(t *testing.T, wrap wrappers) *controller {
	t.Helper()
	ctl := &controller{}
	var err error
	if ctl.conn, err = bus.Connect("", "controller", bus.InProcess(c.bus), bus.Logger(slog.New(slog.DiscardHandler))); err != nil {
		t.Fatal(err)
	}
	// The filter driver's choices are foreseeable, which tests of the
	// conductor rely on; the ACaaS tests use the acaas driver.
	driver := "filter"
	if c.opts.ACaaS {
		driver = "acaas"
	}
	if ctl.sched, err = scheduler.New(c.store, scheduler.Options{
		Driver: driver,
		Alive:  func(h *trustack.Host) bool { return ctl.svc.Alive(h) },
		Now:    c.clock.Now,
		Rand:   rand.New(rand.NewPCG(1, 2)),
	}); err != nil {
		t.Fatal(err)
	}
	opts := c.opts.Compute
	opts.Now = c.clock.Now
	opts.Log = slog.New(slog.NewTextHandler(c.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if opts.AgentTimeout == 0 {
		opts.AgentTimeout = waitTimeout
	}
	if wrap.controllers != nil {
		opts.Controllers = wrap.controllers
	}
	run, cancel := context.WithCancel(ctx)
	ctl.cancel = cancel
	var placer compute.Placer = ctl.sched
	if wrap.placer != nil {
		placer = wrap.placer(placer, cancel)
	}
	var agents compute.Agents = wire.NewHosts(ctl.conn)
	if wrap.agents != nil {
		agents = wrap.agents(agents)
	}
	ctl.svc = compute.New(c.store, c.images, agents, placer, opts)
	if c.network != nil {
		c.network.SetAgents(wire.NewHosts(ctl.conn))
	}
	if err := ctl.svc.Start(run); err != nil {
		t.Fatal(err)
	}
	stopServe, err := wire.ServeControllers(ctl.conn, ctl.svc, nil)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	ctl.stop = func() {
		once.Do(func() {
			cancel()
			stopServe()
			ctl.svc.Wait()
			ctl.conn.Close()
		})
	}
	t.Cleanup(ctl.stop)
	return ctl
}

// startHost starts an agent with the fake hypervisor that beats and syncs
// every 20 ms.
func (c *cloud) startHost(t *testing.T, name string, opts fake.Options, net *fakenet.Network) *host {
	t.Helper()
	hv, err := fake.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	h := &host{name: name, hv: hv, net: net}
	c.runAgent(t, h)
	t.Cleanup(func() { h.stop(t) })
	return h
}

// restart starts the stopped host's agent again, on the same hypervisor,
// as after the agent's process or connection came back.
func (h *host) restart(t *testing.T, c *cloud) {
	t.Helper()
	if h.cancel != nil {
		t.Fatalf("restart %s: its agent runs", h.name)
	}
	c.runAgent(t, h)
}

// runAgent runs an agent for h's hypervisor on a connection of its own.
func (c *cloud) runAgent(t *testing.T, h *host) {
	t.Helper()
	conn, err := bus.Connect("", h.name, bus.InProcess(c.bus), bus.Logger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	run, cancel := context.WithCancel(ctx)
	h.conn, h.cancel, h.done = conn, cancel, make(chan error, 1)
	a := agent.New(conn, h.hv, h.net, agent.Config{Name: h.name, HeartbeatInterval: 20 * time.Millisecond, SyncInterval: 20 * time.Millisecond,
		NetworkNode: h.name == "host-0"})
	go func() { h.done <- a.Run(run) }()
}

// host returns the named host.
func (c *cloud) host(t testing.TB, name string) *host {
	t.Helper()
	for _, h := range c.hosts {
		if h.name == name {
			return h
		}
	}
	t.Fatalf("no host %q", name)
	return nil
}

// as returns the caller with a new request ID.
func (c *cloud) as(caller compute.Caller) compute.Caller {
	caller.RequestID = fmt.Sprintf("req-%d", c.requests.Add(1))
	return caller
}

// create creates servers as the user and returns them, in BUILD.
func (c *cloud) create(t testing.TB, req compute.CreateRequest) []*trustack.Server {
	t.Helper()
	if req.ImageID == "" {
		req.ImageID = c.imageID
	}
	if req.FlavorID == "" {
		req.FlavorID = "1"
	}
	list, err := c.ctl.svc.CreateServers(ctx, c.as(c.user), req)
	if err != nil {
		t.Fatalf("create servers: %v", err)
	}
	return list
}

// boot creates a server and waits for it to be ACTIVE.
func (c *cloud) boot(t testing.TB, name string) *trustack.Server {
	t.Helper()
	srv := c.create(t, compute.CreateRequest{Name: name})[0]
	return c.waitStatus(t, srv.ID, "ACTIVE")
}

// server reads a server from the store.
func (c *cloud) server(t testing.TB, id string) *trustack.Server {
	t.Helper()
	srv, err := c.store.Server(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

// waitFor polls cond until it holds.
func (c *cloud) waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s after %v", what, waitTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitServer waits until the server is done with its task and cond
// holds, and returns it.
func (c *cloud) waitServer(t testing.TB, id, what string, cond func(*trustack.Server) bool) *trustack.Server {
	t.Helper()
	var srv *trustack.Server
	deadline := time.Now().Add(waitTimeout)
	for {
		var err error
		if srv, err = c.store.Server(ctx, id); err != nil {
			t.Fatal(err)
		}
		if srv.TaskState == "" && cond(srv) {
			return srv
		}
		if time.Now().After(deadline) {
			t.Fatalf("server %s: gave up waiting for %s after %v: vm_state %s, task_state %q, power %d, host %q, fault %+v",
				id, what, waitTimeout, srv.VMState, srv.TaskState, srv.PowerState, srv.Host, srv.Fault)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitStatus waits until the server is done with its task and shows the
// API status.
func (c *cloud) waitStatus(t testing.TB, id, status string) *trustack.Server {
	t.Helper()
	return c.waitServer(t, id, "status "+status, func(s *trustack.Server) bool { return compute.Status(s) == status })
}

// where returns the hosts whose hypervisor has the server, with its power
// state there.
func (c *cloud) where(t testing.TB, id string) map[string]trustack.PowerState {
	t.Helper()
	out := map[string]trustack.PowerState{}
	for _, h := range c.hosts {
		list, err := h.hv.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if p, ok := list[id]; ok {
			out[h.name] = p
		}
	}
	return out
}

// claims returns the claims on every host, by server.
func (c *cloud) claims(t testing.TB) map[string]trustack.Claim {
	t.Helper()
	list, err := c.store.Claims(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]trustack.Claim{}
	for _, cl := range list {
		out[cl.ServerID] = cl
	}
	return out
}

// hostByName reads a host from the store.
func (c *cloud) hostByName(t testing.TB, name string) *trustack.Host {
	t.Helper()
	h, err := c.store.HostByName(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// checkUsage fails unless every host uses exactly what its claims add up
// to, within its capacity.
func (c *cloud) checkUsage(t testing.TB) {
	t.Helper()
	hosts, err := c.store.Hosts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hosts {
		storetest.CheckHostUsage(t, c.store, h.ID)
	}
}

// action returns the server's instance action of the request, with its
// events.
func (c *cloud) action(t testing.TB, id, requestID string) *trustack.InstanceAction {
	t.Helper()
	a, err := c.store.Action(ctx, id, requestID)
	if err != nil {
		t.Fatalf("action %s of %s: %v", requestID, id, err)
	}
	return a
}

// wantEvent fails unless the action has exactly one event, with the name
// and result.
func wantEvent(t testing.TB, a *trustack.InstanceAction, event, result string) trustack.ActionEvent {
	t.Helper()
	if len(a.Events) != 1 || a.Events[0].Event != event || a.Events[0].Result != result {
		t.Fatalf("action %s: events %+v, want one %s with result %s", a.Action, a.Events, event, result)
	}
	return a.Events[0]
}

func wantCode(t testing.TB, err error, code string) {
	t.Helper()
	if got := trustack.ErrorCode(err); got != code {
		t.Fatalf("got error %v (code %q), want code %q", err, got, code)
	}
}

func wantMessage(t testing.TB, err error, code, message string) {
	t.Helper()
	wantCode(t, err, code)
	if got := trustack.ErrorMessage(err); got != message {
		t.Fatalf("message:\n got %q\nwant %q", got, message)
	}
}
