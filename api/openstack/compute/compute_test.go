package compute_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/agent"
	"github.com/trustack/trustack/api/openstack"
	computeapi "github.com/trustack/trustack/api/openstack/compute"
	"github.com/trustack/trustack/bus"
	"github.com/trustack/trustack/compute"
	fakenet "github.com/trustack/trustack/hostnet/fake"
	"github.com/trustack/trustack/hypervisor/fake"
	"github.com/trustack/trustack/images"
	"github.com/trustack/trustack/internal/apitest"
	"github.com/trustack/trustack/network"
	"github.com/trustack/trustack/policy"
	"github.com/trustack/trustack/scheduler"
	"github.com/trustack/trustack/sqlstore"
	"github.com/trustack/trustack/volume"
	"github.com/trustack/trustack/volume/file"
	"github.com/trustack/trustack/wire"
)

var ctx = context.Background()

// waitTimeout bounds how long a test waits for a server to get somewhere:
// generous for the race detector, and reached only when something is
// wrong.
const waitTimeout = 30 * time.Second

// counted is the networking service, counting the calls that reading
// servers' networking makes.
type counted struct {
	*network.Service
	mu    sync.Mutex
	calls map[string]int
}

func (c *counted) count(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls[name]++
}

// reads returns the calls counted since the last reads.
func (c *counted) reads() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.calls
	c.calls = map[string]int{}
	return out
}

func (c *counted) ServerPortsOf(ctx context.Context, ids []string) (map[string][]*trustack.Port, error) {
	c.count("ServerPortsOf")
	return c.Service.ServerPortsOf(ctx, ids)
}

func (c *counted) Addresses(ctx context.Context, ports map[string][]*trustack.Port) (map[string][]network.Address, error) {
	c.count("Addresses")
	return c.Service.Addresses(ctx, ports)
}

func (c *counted) SecurityGroupNames(ctx context.Context, ids []string) (map[string]string, error) {
	c.count("SecurityGroupNames")
	return c.Service.SecurityGroupNames(ctx, ids)
}

// cloud is the compute API over real services on a new SQLite store: the
// image service with a public image, the networking service, the block
// storage service, and the compute service with one compute host, an
// agent with the fake hypervisor and host network that is also the
// network node and keeps volumes in files, on an embedded bus.
type cloud struct {
	*httptest.Server
	db    *sqlstore.DB
	net   *counted
	vol   *volume.Service
	hv    *fake.Driver
	image string
	// skew moves the compute service's clock forward.
	skew atomic.Int64
}

func newCloud(t *testing.T) *cloud {
	t.Helper()
	c := &cloud{}
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	db, err := sqlstore.Open(ctx, "sqlite://"+filepath.Join(dir, "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	data, err := images.OpenFiles(filepath.Join(dir, "images"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	imgs := images.New(db, data, images.Options{})
	img := &trustack.Image{Name: "cirros", Visibility: trustack.VisibilityPublic, DiskFormat: "raw", ContainerFormat: "bare"}
	owner := images.Caller{ProjectID: apitest.AdminProject, Admin: true}
	if err := imgs.Create(ctx, owner, img); err != nil {
		t.Fatal(err)
	}
	if _, err := imgs.Upload(ctx, owner, img.ID, strings.NewReader("a bootable disk"), images.Expect{}); err != nil {
		t.Fatal(err)
	}
	srv, err := bus.Serve(bus.ServerConfig{Host: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	connect := func(name string) *bus.Conn {
		conn, err := bus.Connect("", name, bus.InProcess(srv), bus.Logger(log))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(conn.Close)
		return conn
	}
	conn := connect("controller")
	net := &counted{Service: network.New(db, network.Options{Rand: rand.New(rand.NewPCG(1, 2)), Log: log}), calls: map[string]int{}}
	net.SetAgents(wire.NewHosts(conn))
	var svc *compute.Service
	sched, err := scheduler.New(db, scheduler.Options{Driver: "filter", Alive: func(h *trustack.Host) bool { return svc.Alive(h) }})
	if err != nil {
		t.Fatal(err)
	}
	vol := volume.New(db, db, wire.NewHosts(conn), volume.Options{Alive: func(h *trustack.Host) bool { return svc.Alive(h) }, Log: log})
	svc = compute.New(db, imgs, wire.NewHosts(conn), sched, compute.Options{Network: net, Volumes: vol, AgentTimeout: waitTimeout, Log: log,
		Now: func() time.Time { return time.Now().Add(time.Duration(c.skew.Load())) }})
	run, cancel := context.WithCancel(ctx)
	if err := svc.Start(run); err != nil {
		t.Fatal(err)
	}
	stop, err := wire.ServeControllers(conn, svc, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); stop(); svc.Wait() })
	if err := svc.EnsureFlavors(ctx, compute.DefaultFlavors); err != nil {
		t.Fatal(err)
	}

	hv, err := fake.New(fake.Options{Hostname: "host-0"})
	if err != nil {
		t.Fatal(err)
	}
	files, err := file.New(filepath.Join(dir, "volumes"), "qcow2")
	if err != nil {
		t.Fatal(err)
	}
	a := agent.New(connect("host-0"), hv, fakenet.New([]string{"physnet1"}), agent.Config{Name: "host-0", NetworkNode: true,
		Volumes:           map[string]agent.VolumeBackend{"file": files},
		HeartbeatInterval: 20 * time.Millisecond, SyncInterval: 20 * time.Millisecond, ConsoleListen: "127.0.0.1:0"})
	done := make(chan error, 1)
	go func() { done <- a.Run(run) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, "the host to register", func() bool {
		hosts, err := db.Hosts(ctx)
		return err == nil && len(hosts) == 1
	})

	enforcer, err := policy.New(computeapi.Policy(), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Server = httptest.NewUnstartedServer(nil)
	mux := http.NewServeMux()
	mux.Handle(computeapi.Prefix+"/", openstack.Middleware(log, computeapi.New(svc, imgs, net, apitest.Validator{}, enforcer,
		computeapi.Config{PublicURL: "http://" + c.Listener.Addr().String()}, log)))
	mux.Handle(computeapi.ConsolePath+"/", computeapi.NewConsoleProxy(svc, t.TempDir(), log))
	c.Config.Handler = mux
	c.Start()
	c.db, c.net, c.vol, c.hv, c.image = db, net, vol, hv, img.ID
	t.Cleanup(c.Close)
	return c
}

// waitFor waits until cond holds.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", waitTimeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type obj = map[string]any

// do makes a request to the compute API (path after /v2.1) as the caller
// of token, with body as JSON unless it is a string, and returns the
// status and the decoded body.
func (c *cloud) do(t testing.TB, token, method, path string, body any) (int, obj) {
	t.Helper()
	return apitest.Do(t, c.Client(), token, method, c.URL+computeapi.Prefix+"/v2.1"+path, body)
}

// must makes a request that must answer status, and returns the body.
func (c *cloud) must(t testing.TB, status int, token, method, path string, body any) obj {
	t.Helper()
	return apitest.Must(t, c.Client(), status, token, method, c.URL+computeapi.Prefix+"/v2.1"+path, body)
}

// boot creates a server as the caller of token with attrs added to its
// body, and waits for it to be ACTIVE.
func (c *cloud) boot(t testing.TB, token, name string, attrs obj) string {
	t.Helper()
	body := obj{"name": name, "imageRef": c.image, "flavorRef": "1"}
	for k, v := range attrs {
		body[k] = v
	}
	id := c.must(t, http.StatusAccepted, token, "POST", "/servers", obj{"server": body})["server"].(obj)["id"].(string)
	c.waitStatus(t, token, id, "ACTIVE")
	return id
}

// waitStatus waits for a server to have status.
func (c *cloud) waitStatus(t testing.TB, token, id, status string) {
	t.Helper()
	var last any
	waitFor(t, fmt.Sprintf("server %s to be %s", id, status), func() bool {
		last = c.must(t, http.StatusOK, token, "GET", "/servers/"+id, nil)["server"].(obj)["status"]
		return last == status
	})
}

// world is what the tests' servers use of networking: an external
// network public with a subnet (the administrator's); two networks of
// alice's project, each with a subnet, the first joined to public by a
// router; and a network of bob's.
type world struct {
	public, alice, alice2, aliceSubnet, bob string
}

func (c *cloud) world(t testing.TB) world {
	t.Helper()
	admin := network.Caller{ProjectID: apitest.AdminProject, Admin: true}
	netWithSubnet := func(c0 network.Caller, name, cidr string, external bool) (string, string) {
		n, err := c.net.CreateNetwork(ctx, c0, network.NetworkSpec{Name: &name, External: &external})
		if err != nil {
			t.Fatal(err)
		}
		dhcp := !external
		sn, err := c.net.CreateSubnet(ctx, c0, network.SubnetSpec{NetworkID: n.ID, IPVersion: 4, CIDR: netip.MustParsePrefix(cidr), EnableDHCP: &dhcp})
		if err != nil {
			t.Fatal(err)
		}
		return n.ID, sn.ID
	}
	var w world
	w.public, _ = netWithSubnet(admin, "public", "172.24.4.0/24", true)
	alice := network.Caller{ProjectID: apitest.P1}
	w.alice, w.aliceSubnet = netWithSubnet(alice, "alice-net", "10.1.0.0/24", false)
	w.alice2, _ = netWithSubnet(alice, "alice-net2", "10.2.0.0/24", false)
	w.bob, _ = netWithSubnet(network.Caller{ProjectID: apitest.P2}, "bob-net", "10.3.0.0/24", false)
	name := "router1"
	r, err := c.net.CreateRouter(ctx, alice, network.RouterSpec{Name: &name, Gateway: &network.GatewaySpec{NetworkID: w.public}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.net.AddRouterInterface(ctx, alice, r.ID, w.aliceSubnet, ""); err != nil {
		t.Fatal(err)
	}
	return w
}

// item returns an object of a list.
func item(v any, i int) obj {
	return v.([]any)[i].(obj)
}
