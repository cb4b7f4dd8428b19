package compute_test

import (
	"strings"
	"testing"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/compute"
)

// loseHost stops a host's agent and lets the service down time pass, so
// that the controllers count the host as down, and the others, having
// beaten since, as up.
func loseHost(t *testing.T, c *cloud, name string, downTime time.Duration) *host {
	t.Helper()
	h := c.host(t, name)
	h.stop(t)
	c.clock.Add(downTime + time.Second)
	for _, other := range c.hosts {
		c.waitFor(t, "the hosts to be down or up", func() bool { return c.ctl.svc.Alive(c.hostByName(t, other.name)) == (other.name != name) })
	}
	return h
}

// TestServersOfALostHostAreEvacuated has attestation hold a host whose
// agent is gone: its servers, one running and one stopped, are rebuilt on
// the other host as they were, and when the lost host's agent comes back
// it destroys its copies before taking anything new.
func TestServersOfALostHostAreEvacuated(t *testing.T) {
	t.Parallel()
	const downTime = 10 * time.Second
	c := newCloud(t, cloudOptions{Hosts: 2, Compute: compute.Options{ServiceDownTime: downTime}})
	running := c.boot(t, "running")
	stopped := c.create(t, compute.CreateRequest{Name: "stopped", Hints: map[string][]string{"same_host": {running.ID}}})[0]
	c.waitStatus(t, stopped.ID, "ACTIVE")
	if err := c.ctl.svc.Act(ctx, c.as(c.user), stopped.ID, "stop"); err != nil {
		t.Fatal(err)
	}
	c.waitStatus(t, stopped.ID, "SHUTOFF")
	lost, other := running.Host, "host-0"
	if lost == other {
		other = "host-1"
	}
	h := loseHost(t, c, lost, downTime)
	if err := c.ctl.svc.ApplyAttestation(ctx, lost, "", "it did not answer for longer than its grace period"); err != nil {
		t.Fatal(err)
	}

	for id, want := range map[string]string{running.ID: "ACTIVE", stopped.ID: "SHUTOFF"} {
		got := c.waitServer(t, id, "the evacuation", func(s *trustack.Server) bool { return s.Host == other && s.TaskState == "" })
		if compute.Status(got) != want || got.Fault != nil {
			t.Errorf("server %s evacuated: %s with fault %+v, want %s on %s", id, compute.Status(got), got.Fault, want, other)
		}
		acts := actionsNamed(t, c, id, "evacuate")
		if len(acts) != 1 || !strings.Contains(acts[0].Message, "Host "+lost+" is out of scheduling") {
			t.Fatalf("evacuate actions of %s: %+v, want one saying why", id, acts)
		}
		wantEvent(t, &acts[0], "compute_rebuild_instance", "Success")
	}
	if where := c.where(t, running.ID); where[other] != trustack.PowerRunning {
		t.Errorf("running server: the hypervisors have it as %v, want running on %s", where, other)
	}
	if where := c.where(t, stopped.ID); where[other] != trustack.PowerShutdown {
		t.Errorf("stopped server: the hypervisors have it as %v, want shut down on %s", where, other)
	}

	h.restart(t, c)
	for _, id := range []string{running.ID, stopped.ID} {
		c.waitFor(t, lost+" to destroy its copy of "+id, func() bool { _, ok := c.where(t, id)[lost]; return !ok })
	}
	if got := c.boot(t, "after"); got.Host != other {
		t.Errorf("a new server went to %s, which attestation holds", got.Host)
	}
	c.checkUsage(t)
}

// TestEvacuate is Nova's evacuate: an operator's, of a server whose host
// is down, to the host named or the scheduler's choice.
func TestEvacuate(t *testing.T) {
	t.Parallel()
	const downTime = 10 * time.Second
	c := newCloud(t, cloudOptions{Hosts: 3, Compute: compute.Options{ServiceDownTime: downTime}})
	srv := c.boot(t, "vm")
	admin := compute.Caller{Admin: true, UserID: "operator", ProjectID: "admin"}
	if err := c.ctl.svc.Evacuate(ctx, c.as(admin), srv.ID, ""); trustack.ErrorCode(err) != trustack.EINVALID || !strings.Contains(err.Error(), "still in use") {
		t.Errorf("evacuate from a host that is up: %v, want %s, still in use", err, trustack.EINVALID)
	}
	loseHost(t, c, srv.Host, downTime)
	onto := "host-2"
	if srv.Host == onto {
		onto = "host-1"
	}
	for _, tc := range []struct {
		what   string
		caller compute.Caller
		onto   string
		want   string
	}{
		{"by a member", c.user, "", trustack.EFORBIDDEN},
		{"onto its own host", admin, srv.Host, trustack.EINVALID},
		{"onto no host", admin, "host-9", trustack.ENOTFOUND},
	} {
		if err := c.ctl.svc.Evacuate(ctx, c.as(tc.caller), srv.ID, tc.onto); trustack.ErrorCode(err) != tc.want {
			t.Errorf("evacuate %s: %v, want %s", tc.what, err, tc.want)
		}
	}
	if got := c.server(t, srv.ID); got.TaskState != "" || got.Host != srv.Host {
		t.Fatalf("after refused evacuations: task %q on %s, want none on %s", got.TaskState, got.Host, srv.Host)
	}

	caller := c.as(admin)
	if err := c.ctl.svc.Evacuate(ctx, caller, srv.ID, onto); err != nil {
		t.Fatal(err)
	}
	if err := c.ctl.svc.Evacuate(ctx, c.as(admin), srv.ID, ""); trustack.ErrorCode(err) != trustack.ECONFLICT {
		t.Errorf("evacuate while it moves: %v, want %s", err, trustack.ECONFLICT)
	}
	got := c.waitServer(t, srv.ID, "the evacuation", func(s *trustack.Server) bool { return s.TaskState == "" })
	if got.Host != onto || compute.Status(got) != "ACTIVE" {
		t.Errorf("evacuated: %s on %s with fault %+v, want ACTIVE on %s, the host named", compute.Status(got), got.Host, got.Fault, onto)
	}
	a := c.action(t, srv.ID, caller.RequestID)
	if a.Action != "evacuate" || a.UserID != "operator" {
		t.Errorf("action %+v, want the operator's evacuate", a)
	}
	wantEvent(t, a, "compute_rebuild_instance", "Success")
	c.checkUsage(t)
}
