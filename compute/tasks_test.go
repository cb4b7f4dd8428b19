package compute_test

import (
	"testing"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/cluster/clustertest"
	"github.com/trustack/trustack/compute"
)

// TestTasksAreTakenOverOnlyFromControllersGone stops a controller with
// builds in flight while its lease still runs: another controller leaves
// them alone, though it looks for tasks to take over again and again, and
// takes them over and finishes them once the first controller's lease is
// gone. Every server ends ACTIVE on one host with one claim.
func TestTasksAreTakenOverOnlyFromControllersGone(t *testing.T) {
	t.Parallel()
	a := clustertest.New("ctl-a", "ctl-a", "ctl-b")
	b := clustertest.New("ctl-b", "ctl-a", "ctl-b")
	c := newCloud(t, cloudOptions{Hosts: 3, Compute: compute.Options{Workers: 2, TakeoverInterval: 10 * time.Millisecond}})
	c.ctl.stop()
	c.ctl = c.startControllerWith(t, wrappers{controllers: a})
	for _, h := range c.hosts {
		h.hv.SetDelay(300 * time.Millisecond)
	}
	list := c.create(t, compute.CreateRequest{Name: "vm", MinCount: 6})
	c.waitFor(t, "two spawns in flight", func() bool {
		n := 0
		for _, srv := range list {
			if c.server(t, srv.ID).TaskState == trustack.TaskSpawning {
				n++
			}
		}
		return n == 2
	})
	c.ctl.stop()
	left := map[string]string{}
	for _, srv := range list {
		got := c.server(t, srv.ID)
		if got.TaskState == "" || got.TaskOwner != a.ID() {
			t.Fatalf("%s when its controller stopped: task %q of %q, want one of %s", got.Name, got.TaskState, got.TaskOwner, a.ID())
		}
		left[got.ID] = got.TaskState
	}

	c.ctl = c.startControllerWith(t, wrappers{controllers: b})
	c.waitFor(t, "the second controller to look for tasks a few times", func() bool { return b.Looks() >= 5 })
	for _, srv := range list {
		if got := c.server(t, srv.ID); got.TaskState != left[got.ID] || got.TaskOwner != a.ID() {
			t.Errorf("%s while %s's lease runs: task %q of %q, want %q of %s, untouched", got.Name, a.ID(), got.TaskState, got.TaskOwner, left[got.ID], a.ID())
		}
	}

	b.SetLive("ctl-b")
	claims := map[string]trustack.Claim{}
	c.waitFor(t, "every build to end", func() bool {
		claims = c.claims(t)
		for _, srv := range list {
			if c.server(t, srv.ID).VMState == trustack.VMBuilding {
				return false
			}
		}
		return true
	})
	for _, srv := range list {
		got := c.server(t, srv.ID)
		if got.VMState != trustack.VMActive || got.TaskState != "" || got.TaskOwner != "" {
			t.Errorf("%s: %s, task %q of %q, fault %+v; want ACTIVE with no task", got.Name, compute.Status(got), got.TaskState, got.TaskOwner, got.Fault)
		}
		if where := c.where(t, got.ID); len(where) != 1 || where[got.Host] != trustack.PowerRunning {
			t.Errorf("%s on %s: the hypervisors have it as %v, want running on %s only", got.Name, got.Host, where, got.Host)
		}
	}
	if len(claims) != len(list) {
		t.Errorf("%d claims for %d servers", len(claims), len(list))
	}
	c.checkUsage(t)
}
