package compute_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/compute"
	"github.com/trustack/trustack/scheduler"
	"github.com/trustack/trustack/wire"
)

// spawnFailures counts the spawns the compute service saw fail, by host.
func (c *cloud) spawnFailures() map[string]int {
	out := map[string]int{}
	for _, line := range strings.Split(c.logs.String(), "\n") {
		if strings.Contains(line, `msg="spawn failed"`) {
			for _, f := range strings.Fields(line) {
				if h, ok := strings.CutPrefix(f, "host="); ok {
					out[h]++
				}
			}
		}
	}
	return out
}

func TestSpawnFailureRetriesOnAnotherHost(t *testing.T) {
	t.Parallel()
	c := newCloud(t, cloudOptions{Hosts: 3})
	// The filter scheduler tries equal hosts by name: host-0, host-1, then
	// host-2, which is the only one to spawn the server.
	c.host(t, "host-0").hv.Fail("spawn", trustack.Errorf(trustack.EUNAVAILABLE, "no space left for the disk"))
	c.host(t, "host-1").hv.Fail("spawn", trustack.Errorf(trustack.EUNAVAILABLE, "the image could not be fetched"))
	caller := c.as(c.user)
	list, err := c.ctl.svc.CreateServers(ctx, caller, compute.CreateRequest{Name: "vm", ImageID: c.imageID, FlavorID: "1"})
	if err != nil {
		t.Fatal(err)
	}
	srv := c.waitStatus(t, list[0].ID, "ACTIVE")
	if srv.Host != "host-2" {
		t.Errorf("on %s, want host-2", srv.Host)
	}
	if got := c.spawnFailures(); got["host-0"] != 1 || got["host-1"] != 1 || len(got) != 2 {
		t.Errorf("spawn failures by host %v, want one on host-0 and one on host-1", got)
	}
	if got := c.where(t, srv.ID); len(got) != 1 || got["host-2"] != trustack.PowerRunning {
		t.Errorf("hypervisors have the server as %v, want running on host-2 only", got)
	}
	if cl := c.claims(t)[srv.ID]; cl.HostID != c.hostByName(t, "host-2").ID {
		t.Errorf("claim on %q, want host-2's", cl.HostID)
	}
	c.checkUsage(t)
	if e := wantEvent(t, c.action(t, srv.ID, caller.RequestID), "compute_build_and_run_instance", "Success"); e.Host != "host-2" {
		t.Errorf("event on %q, want host-2", e.Host)
	}
}

func TestBuildGivesUpAfterMaxAttempts(t *testing.T) {
	t.Parallel()
	c := newCloud(t, cloudOptions{Hosts: 4, Compute: compute.Options{MaxAttempts: 3}})
	for _, h := range c.hosts {
		h.hv.Fail("spawn", trustack.Errorf(trustack.EUNAVAILABLE, "the image could not be fetched from %s", h.name))
	}
	caller := c.as(c.user)
	list, err := c.ctl.svc.CreateServers(ctx, caller, compute.CreateRequest{Name: "vm", ImageID: c.imageID, FlavorID: "1"})
	if err != nil {
		t.Fatal(err)
	}
	srv := c.waitStatus(t, list[0].ID, "ERROR")
	if srv.Host != "" {
		t.Errorf("a server whose build failed is on %q, want no host", srv.Host)
	}
	failures := c.spawnFailures()
	if len(failures) != 3 {
		t.Errorf("spawns failed on %d hosts, want 3", len(failures))
	}
	a := c.action(t, srv.ID, caller.RequestID)
	e := wantEvent(t, a, "compute_build_and_run_instance", "Error")
	if failures[e.Host] != 1 || e.Details != "the image could not be fetched from "+e.Host {
		t.Errorf("event on %q with details %q, want on one of the failed hosts %v, with its error", e.Host, e.Details, failures)
	}
	want := fmt.Sprintf("Build of instance %s failed on 3 hosts; the last said: the image could not be fetched from %s", srv.ID, e.Host)
	if srv.Fault == nil || srv.Fault.Code != 500 || srv.Fault.Message != want {
		t.Errorf("fault %+v, want code 500 and %q", srv.Fault, want)
	}
	if got := c.where(t, srv.ID); len(got) != 0 {
		t.Errorf("hypervisors have the failed server: %v", got)
	}
	if _, ok := c.claims(t)[srv.ID]; ok {
		t.Error("the failed server holds a claim")
	}
	c.checkUsage(t)
	if a.Message != "Error" {
		t.Errorf("action message %q, want Error", a.Message)
	}
	// A server in ERROR can still be deleted.
	if err := c.ctl.svc.Delete(ctx, c.as(c.user), srv.ID); err != nil {
		t.Fatal(err)
	}
	c.waitStatus(t, srv.ID, "DELETED")
}

func TestNoHostFits(t *testing.T) {
	t.Parallel()
	c := newCloud(t, cloudOptions{Hosts: 2})
	huge := &trustack.Flavor{Name: "huge", VCPUs: 1, RAM: 48 << 10, Disk: 1, Public: true}
	if err := c.ctl.svc.CreateFlavor(ctx, huge); err != nil {
		t.Fatal(err)
	}
	caller := c.as(c.user)
	list, err := c.ctl.svc.CreateServers(ctx, caller, compute.CreateRequest{Name: "vm", ImageID: c.imageID, FlavorID: huge.ID})
	if err != nil {
		t.Fatal(err)
	}
	srv := c.waitStatus(t, list[0].ID, "ERROR")
	want := "No valid host was found. Of 2 hosts: 2 without enough free RAM."
	if srv.Fault == nil || srv.Fault.Message != want {
		t.Errorf("fault %+v, want %q", srv.Fault, want)
	}
	if srv.Host != "" {
		t.Errorf("host %q, want none", srv.Host)
	}
	if _, ok := c.claims(t)[srv.ID]; ok {
		t.Error("the server holds a claim")
	}
	wantEvent(t, c.action(t, srv.ID, caller.RequestID), "compute_build_and_run_instance", "Error")
}

func TestHostThatStopsHeartbeatingIsNotChosen(t *testing.T) {
	t.Parallel()
	const downTime = 10 * time.Second
	c := newCloud(t, cloudOptions{Hosts: 3, Compute: compute.Options{ServiceDownTime: downTime}})
	alive := func(name string) bool { return c.ctl.svc.Alive(&trustack.Host{Name: name}) }
	// host-2 takes no servers; its heartbeats tell the test that those sent
	// before them have arrived.
	if _, err := c.ctl.svc.SetHostEnabled(ctx, c.hostByName(t, "host-2").ID, false, "the test's witness"); err != nil {
		t.Fatal(err)
	}
	// silence moves the clock past the service down time twice, waiting for
	// host-2 to beat at each new time: a heartbeat a stopped host sent just
	// before it stopped has then arrived, and counts at the first time at
	// the latest.
	silence := func() {
		for range 2 {
			c.clock.Add(downTime + time.Second)
			c.waitFor(t, "host-2's heartbeat at the new time", func() bool { return alive("host-2") })
		}
	}
	// host-0 is the scheduler's first choice while it is up.
	if got := c.boot(t, "before").Host; got != "host-0" {
		t.Fatalf("with both hosts up: on %s, want host-0", got)
	}

	c.host(t, "host-0").stop(t)
	silence()
	c.waitFor(t, "host-1's heartbeat at the new time", func() bool { return alive("host-1") })
	if alive("host-0") {
		t.Fatalf("host-0 alive %v after it stopped beating, want down", 2*(downTime+time.Second))
	}
	zones, err := c.ctl.svc.Zones(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(zones) != 1 || !zones[0].Available {
		t.Errorf("zones %+v, want nova available through host-1", zones)
	}
	for _, srv := range c.create(t, compute.CreateRequest{Name: "after", MinCount: 3}) {
		if got := c.waitStatus(t, srv.ID, "ACTIVE").Host; got != "host-1" {
			t.Errorf("%s on %s, want host-1: host-0 is down", srv.Name, got)
		}
	}

	// With no live host left, builds fail and say why.
	c.host(t, "host-1").stop(t)
	silence()
	srv := c.create(t, compute.CreateRequest{Name: "nowhere"})[0]
	got := c.waitStatus(t, srv.ID, "ERROR")
	if want := "No valid host was found. Of 3 hosts: 1 disabled, 2 down."; got.Fault == nil || got.Fault.Message != want {
		t.Errorf("fault %+v, want %q", got.Fault, want)
	}
}

func TestCrashedServerIsReportedShutoff(t *testing.T) {
	t.Parallel()
	c := newCloud(t, cloudOptions{Hosts: 2})
	srv := c.boot(t, "vm")
	other := c.boot(t, "other")
	c.host(t, srv.Host).hv.Crash(srv.ID)
	got := c.waitStatus(t, srv.ID, "SHUTOFF")
	if got.PowerState != trustack.PowerShutdown {
		t.Errorf("power %d, want %d", got.PowerState, trustack.PowerShutdown)
	}
	want := fmt.Sprintf("The server's power state changed to %d on host %s without a request: it may have crashed or been shut down from inside.", trustack.PowerShutdown, srv.Host)
	if got.Fault == nil || got.Fault.Code != 500 || got.Fault.Message != want {
		t.Errorf("fault %+v, want code 500 and %q", got.Fault, want)
	}
	if s := c.server(t, other.ID); compute.Status(s) != "ACTIVE" {
		t.Errorf("the other server is %s, want ACTIVE", compute.Status(s))
	}
	// The user can start it again.
	if err := c.ctl.svc.Act(ctx, c.as(c.user), srv.ID, "start"); err != nil {
		t.Fatal(err)
	}
	if s := c.waitStatus(t, srv.ID, "ACTIVE"); s.PowerState != trustack.PowerRunning {
		t.Errorf("after start: power %d, want running", s.PowerState)
	}
}

// TestRecoveryAfterARestart stops the compute service while builds are in
// flight, some spawning on slow hosts and the rest waiting to be placed,
// and starts a new one on the same store: every server ends ACTIVE, none
// is spawned twice, and every claim is accounted for.
func TestRecoveryAfterARestart(t *testing.T) {
	t.Parallel()
	c := newCloud(t, cloudOptions{Hosts: 3, Compute: compute.Options{Workers: 2}})
	for _, h := range c.hosts {
		h.hv.SetDelay(300 * time.Millisecond)
	}
	list := c.create(t, compute.CreateRequest{Name: "vm", MinCount: 9})
	spawning := func() int {
		n := 0
		for _, srv := range list {
			if c.server(t, srv.ID).TaskState == trustack.TaskSpawning {
				n++
			}
		}
		return n
	}
	c.waitFor(t, "two spawns in flight", func() bool { return spawning() == 2 })
	c.ctl.stop()
	states := map[string]int{}
	for _, srv := range list {
		states[c.server(t, srv.ID).TaskState]++
	}
	if states[trustack.TaskSpawning] == 0 || states[trustack.TaskScheduling] == 0 {
		t.Fatalf("tasks when the service stopped: %v, want some spawning and some scheduling", states)
	}

	c.ctl = c.startController(t)
	hostID := map[string]string{}
	for _, h := range c.hosts {
		hostID[h.name] = c.hostByName(t, h.name).ID
	}
	var done []*trustack.Server
	for _, srv := range list {
		done = append(done, c.waitServer(t, srv.ID, "the build to end", func(s *trustack.Server) bool { return s.VMState != trustack.VMBuilding }))
	}
	claims := c.claims(t)
	for _, got := range done {
		if got.VMState != trustack.VMActive {
			t.Errorf("%s: %s with fault %+v, want ACTIVE", got.Name, compute.Status(got), got.Fault)
			continue
		}
		if where := c.where(t, got.ID); len(where) != 1 || where[got.Host] != trustack.PowerRunning {
			t.Errorf("%s on %s: the hypervisors have it as %v, want running on %s only", got.Name, got.Host, where, got.Host)
		}
		if cl := claims[got.ID]; cl.HostID != hostID[got.Host] {
			t.Errorf("%s on %s: claim on %q, want the host's", got.Name, got.Host, cl.HostID)
		}
	}
	if n := len(claims); n != len(list) {
		t.Errorf("%d claims for %d servers", n, len(list))
	}
	c.checkUsage(t)
}

// diesAfterClaim is a placer whose controller dies right after the
// scheduler claimed a host, before the placement is recorded.
type diesAfterClaim struct {
	compute.Placer
	die context.CancelFunc
}

func (p *diesAfterClaim) Place(ctx context.Context, req scheduler.Request) (*trustack.Host, error) {
	h, err := p.Placer.Place(ctx, req)
	p.die()
	return h, err
}

// TestRecoveryAfterDyingBetweenClaimAndSpawn stops the compute service
// after the scheduler claimed a host for a server but before the server was
// recorded as spawning there: the claim is in the store, the server still
// scheduling. A new service must still build it, without a second claim.
func TestRecoveryAfterDyingBetweenClaimAndSpawn(t *testing.T) {
	t.Parallel()
	c := newCloud(t, cloudOptions{Hosts: 2})
	c.ctl.stop()
	c.ctl = c.startControllerWith(t, wrappers{placer: func(p compute.Placer, die context.CancelFunc) compute.Placer {
		return &diesAfterClaim{Placer: p, die: die}
	}})
	srv := c.create(t, compute.CreateRequest{Name: "vm"})[0]
	c.waitFor(t, "the claim", func() bool { return len(c.claims(t)) == 1 })
	c.ctl.stop()
	if got, claims := c.server(t, srv.ID), c.claims(t); got.TaskState != trustack.TaskScheduling || len(claims) != 1 {
		t.Fatalf("after the controller died: task %q and %d claims, want scheduling with one claim", got.TaskState, len(claims))
	}

	c.ctl = c.startController(t)
	got := c.waitServer(t, srv.ID, "the build to end", func(s *trustack.Server) bool { return s.VMState != trustack.VMBuilding })
	if got.VMState != trustack.VMActive {
		t.Fatalf("after a restart: %s with fault %+v, want ACTIVE", compute.Status(got), got.Fault)
	}
	if cl := c.claims(t); len(cl) != 1 || cl[srv.ID].HostID != c.hostByName(t, got.Host).ID {
		t.Errorf("claims %+v, want one, on %s", cl, got.Host)
	}
	if where := c.where(t, srv.ID); len(where) != 1 || where[got.Host] != trustack.PowerRunning {
		t.Errorf("the hypervisors have it as %v, want running on %s only", where, got.Host)
	}
	c.checkUsage(t)
}

// asIfDiedAfterSpawn stops the controller and puts a server that its host
// runs back into spawning, as if the controller had died after the agent
// spawned it but before recording so.
func asIfDiedAfterSpawn(t *testing.T, c *cloud, srv *trustack.Server) {
	t.Helper()
	c.ctl.stop()
	if _, err := c.store.UpdateServer(ctx, srv.ID, func(cur *trustack.Server) error {
		cur.VMState, cur.TaskState = trustack.VMBuilding, trustack.TaskSpawning
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestRecoveryWaitsForAnAgentComingBack restarts the controller while the
// agent of a host that spawned a server is off the bus for a moment, as
// agents are after a restart of the bus the controller embeds. The host
// is still up, so the build waits for its agent, and finds the server
// there: it must not build it again elsewhere.
func TestRecoveryWaitsForAnAgentComingBack(t *testing.T) {
	t.Parallel()
	c := newCloud(t, cloudOptions{Hosts: 2})
	srv := c.boot(t, "vm")
	asIfDiedAfterSpawn(t, c, srv)
	h := c.host(t, srv.Host)
	h.stop(t)
	c.ctl = c.startController(t)
	c.waitFor(t, "the controller to find the agent away", func() bool { return strings.Contains(c.logs.String(), "no answer from host") })
	h.restart(t, c)

	got := c.waitServer(t, srv.ID, "the build to end", func(s *trustack.Server) bool { return s.VMState != trustack.VMBuilding })
	if got.VMState != trustack.VMActive || got.Host != srv.Host {
		t.Errorf("after the agent came back: %s on %q with fault %+v, want ACTIVE on %s", compute.Status(got), got.Host, got.Fault, srv.Host)
	}
	if where := c.where(t, srv.ID); len(where) != 1 || where[srv.Host] != trustack.PowerRunning {
		t.Errorf("the hypervisors have it as %v, want running on %s only", where, srv.Host)
	}
	c.checkUsage(t)
}

// TestRecoveryMovesABuildOffAHostDown is the same with a host that stays
// away past the service down time: the build moves to another host, and
// when the first comes back its agent destroys the copy it still has.
func TestRecoveryMovesABuildOffAHostDown(t *testing.T) {
	t.Parallel()
	const downTime = 10 * time.Second
	c := newCloud(t, cloudOptions{Hosts: 2, Compute: compute.Options{ServiceDownTime: downTime}})
	srv := c.boot(t, "vm")
	other := "host-0"
	if srv.Host == other {
		other = "host-1"
	}
	asIfDiedAfterSpawn(t, c, srv)
	h := c.host(t, srv.Host)
	h.stop(t)
	c.ctl = c.startController(t)
	c.waitFor(t, "the controller to find the agent away", func() bool { return strings.Contains(c.logs.String(), "no answer from host") })
	c.clock.Add(downTime + time.Second)

	got := c.waitServer(t, srv.ID, "the build to end", func(s *trustack.Server) bool { return s.VMState != trustack.VMBuilding })
	if got.VMState != trustack.VMActive || got.Host != other {
		t.Fatalf("with %s down: %s on %q with fault %+v, want ACTIVE on %s", srv.Host, compute.Status(got), got.Host, got.Fault, other)
	}
	h.restart(t, c)
	c.waitFor(t, srv.Host+" to destroy its copy", func() bool { _, ok := c.where(t, srv.ID)[srv.Host]; return !ok })
	if where := c.where(t, srv.ID); len(where) != 1 || where[other] != trustack.PowerRunning {
		t.Errorf("the hypervisors have it as %v, want running on %s only", where, other)
	}
	c.checkUsage(t)
}

// TestBuildOnAHostThatStopsAnsweringStaysThere spawns on a host that is up
// by its last heartbeat but whose agent does not answer: the server may
// have started there, so it goes to ERROR still placed on the host, not
// to another host; deleting it once the agent is back destroys it.
func TestBuildOnAHostThatStopsAnsweringStaysThere(t *testing.T) {
	t.Parallel()
	c := newCloud(t, cloudOptions{Hosts: 1})
	h := c.hosts[0]
	h.stop(t) // its last heartbeat keeps it up: the test's clock stands still
	srv := c.create(t, compute.CreateRequest{Name: "vm"})[0]
	got := c.waitStatus(t, srv.ID, "ERROR")
	if want := "Host host-0 stopped answering while it built the server: nobody serves"; got.Host != "host-0" || got.Fault == nil || !strings.Contains(got.Fault.Message, want) {
		t.Errorf("on %q with fault %+v, want on host-0 with a fault that says %q", got.Host, got.Fault, want)
	}
	if cl, ok := c.claims(t)[srv.ID]; !ok || cl.HostID != c.hostByName(t, "host-0").ID {
		t.Errorf("claim %+v, want the server's, on host-0", cl)
	}
	h.restart(t, c)
	if err := c.ctl.svc.Delete(ctx, c.as(c.user), srv.ID); err != nil {
		t.Fatal(err)
	}
	c.waitStatus(t, srv.ID, "DELETED")
	if where := c.where(t, srv.ID); len(where) != 0 {
		t.Errorf("the hypervisors have the deleted server: %v", where)
	}
	c.checkUsage(t)
}

// losesFirstSpawn is the agents as a controller sees them when its first
// spawn request is lost on the way (its host's agent was reconnecting to
// another node of the bus): no answer comes. held receives the request's
// host once it is lost.
type losesFirstSpawn struct {
	compute.Agents
	once sync.Once
	held chan string
}

func (a *losesFirstSpawn) Spawn(ctx context.Context, host string, spec wire.Spec) (trustack.PowerState, error) {
	lost := false
	a.once.Do(func() { lost = true })
	if lost {
		a.held <- host
		<-ctx.Done()
	}
	// Asked with a context that ended, the bus says that no answer came.
	return a.Agents.Spawn(ctx, host, spec)
}

// TestSpawnLostOnTheWayIsAskedAgainWhenTheAgentJoins loses a build's
// spawn request, as a request is lost when its host's agent reconnects to
// another node of the bus, and has the agent join again, as it does once
// reconnected: the spawn is asked again at once and the server is ACTIVE,
// long before the request's timeout (ten minutes here).
func TestSpawnLostOnTheWayIsAskedAgainWhenTheAgentJoins(t *testing.T) {
	t.Parallel()
	c := newCloud(t, cloudOptions{Hosts: 1, Compute: compute.Options{AgentTimeout: 10 * time.Minute}})
	c.ctl.stop()
	lose := &losesFirstSpawn{held: make(chan string, 1)}
	c.ctl = c.startControllerWith(t, wrappers{agents: func(a compute.Agents) compute.Agents {
		lose.Agents = a
		return lose
	}})
	srv := c.create(t, compute.CreateRequest{Name: "vm"})[0]
	h := c.host(t, <-lose.held)
	h.stop(t)
	c.clock.Add(time.Second) // the agent joins again a second later
	h.restart(t, c)

	got := c.waitServer(t, srv.ID, "the build to end", func(s *trustack.Server) bool { return s.VMState != trustack.VMBuilding })
	if got.VMState != trustack.VMActive {
		t.Fatalf("after the agent joined again: %s with fault %+v, want ACTIVE", compute.Status(got), got.Fault)
	}
	if !strings.Contains(c.logs.String(), "joined again while a request waited") {
		t.Error("the controller did not say it asked the agent again")
	}
}
