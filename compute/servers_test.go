package compute_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/compute"
	"github.com/trustack/trustack/wire"
)

func TestCreateBecomesActive(t *testing.T) {
	t.Parallel()
	c := newCloud(t, cloudOptions{Hosts: 2})
	caller := c.as(c.user)
	list, err := c.ctl.svc.CreateServers(ctx, caller, compute.CreateRequest{Name: "web", ImageID: c.imageID, FlavorID: "1", Metadata: map[string]string{"role": "web"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || compute.Status(list[0]) != "BUILD" || list[0].TaskState != trustack.TaskScheduling {
		t.Fatalf("created %+v, want one server in BUILD, scheduling", list)
	}
	srv := c.waitStatus(t, list[0].ID, "ACTIVE")

	if srv.Host != "host-0" && srv.Host != "host-1" {
		t.Errorf("host %q, want host-0 or host-1", srv.Host)
	}
	if srv.Node != srv.Host || srv.AvailabilityZone != "nova" || srv.PowerState != trustack.PowerRunning || !srv.LaunchedAt.Equal(epoch) {
		t.Errorf("node %q, zone %q, power %d, launched %v; want node %s, zone nova, running, launched at %v",
			srv.Node, srv.AvailabilityZone, srv.PowerState, srv.LaunchedAt, srv.Host, epoch)
	}
	if got := c.where(t, srv.ID); !reflect.DeepEqual(got, map[string]trustack.PowerState{srv.Host: trustack.PowerRunning}) {
		t.Errorf("hypervisors have the server as %v, want running on %s only", got, srv.Host)
	}
	h := c.hostByName(t, srv.Host)
	if got, want := c.claims(t)[srv.ID], (trustack.Claim{ServerID: srv.ID, HostID: h.ID, VCPUs: 1, MemoryMB: 512, DiskGB: 1, ProjectID: c.user.ProjectID}); !reflect.DeepEqual(got, want) {
		t.Errorf("claim %+v, want %+v", got, want)
	}
	c.checkUsage(t)

	actions, err := c.ctl.svc.Actions(ctx, c.user, srv.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(actions) != 1 || actions[0].Action != "create" || actions[0].RequestID != caller.RequestID || actions[0].UserID != "alice" {
		t.Fatalf("actions %+v, want one create by alice with the request's ID", actions)
	}
	if e := wantEvent(t, c.action(t, srv.ID, caller.RequestID), "compute_build_and_run_instance", "Success"); e.Host != srv.Host {
		t.Errorf("event on host %q, want %q", e.Host, srv.Host)
	}

	out, err := c.ctl.svc.ConsoleOutput(ctx, c.user, srv.ID, 1)
	if err != nil {
		t.Fatal(err)
	}
	if want := "trustack-guest hostname: web\n"; !strings.HasSuffix(out, want) || strings.Count(out, "\n") != 1 {
		t.Errorf("last console line %q, want one line ending %q", out, want)
	}
}

// gatedAgents holds each power operation until the test lets it through,
// so that the test sees the server in its task.
type gatedAgents struct {
	compute.Agents
	asked chan wire.PowerOp
	goOn  chan struct{}
}

func (g *gatedAgents) Power(ctx context.Context, host, id string, op wire.PowerOp) (trustack.PowerState, error) {
	select {
	case g.asked <- op:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	select {
	case <-g.goOn:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	return g.Agents.Power(ctx, host, id, op)
}

func TestPowerActionsMoveTheServerThroughItsStates(t *testing.T) {
	t.Parallel()
	c := newCloud(t, cloudOptions{Hosts: 1})
	c.ctl.stop()
	gate := &gatedAgents{asked: make(chan wire.PowerOp), goOn: make(chan struct{})}
	c.ctl = c.startControllerWith(t, wrappers{agents: func(a compute.Agents) compute.Agents { gate.Agents = a; return gate }})
	srv := c.boot(t, "vm")
	hv := c.host(t, srv.Host).hv
	for _, step := range []struct {
		action string
		// task and during are the task state and status while the agent
		// works.
		task, during string
		op           wire.PowerOp
		// status, vm and power are where the server ends.
		status string
		vm     string
		power  trustack.PowerState
		event  string
	}{
		{"pause", trustack.TaskPausing, "ACTIVE", wire.OpPause, "PAUSED", trustack.VMPaused, trustack.PowerPaused, "compute_pause_instance"},
		{"unpause", trustack.TaskUnpausing, "PAUSED", wire.OpUnpause, "ACTIVE", trustack.VMActive, trustack.PowerRunning, "compute_unpause_instance"},
		{"suspend", trustack.TaskSuspending, "ACTIVE", wire.OpSuspend, "SUSPENDED", trustack.VMSuspended, trustack.PowerSuspended, "compute_suspend_instance"},
		{"resume", trustack.TaskResuming, "SUSPENDED", wire.OpResume, "ACTIVE", trustack.VMActive, trustack.PowerRunning, "compute_resume_instance"},
		{"stop", trustack.TaskPoweringOff, "ACTIVE", wire.OpStop, "SHUTOFF", trustack.VMStopped, trustack.PowerShutdown, "compute_stop_instance"},
		{"start", trustack.TaskPoweringOn, "SHUTOFF", wire.OpStart, "ACTIVE", trustack.VMActive, trustack.PowerRunning, "compute_start_instance"},
		{"reboot", trustack.TaskRebooting, "REBOOT", wire.OpRebootSoft, "ACTIVE", trustack.VMActive, trustack.PowerRunning, "compute_reboot_instance"},
		{"reboot_hard", trustack.TaskRebootingHard, "HARD_REBOOT", wire.OpRebootHard, "ACTIVE", trustack.VMActive, trustack.PowerRunning, "compute_reboot_instance"},
		{"stop", trustack.TaskPoweringOff, "ACTIVE", wire.OpStop, "SHUTOFF", trustack.VMStopped, trustack.PowerShutdown, "compute_stop_instance"},
		{"reboot_hard", trustack.TaskRebootingHard, "SHUTOFF", wire.OpRebootHard, "ACTIVE", trustack.VMActive, trustack.PowerRunning, "compute_reboot_instance"},
	} {
		caller := c.as(c.user)
		if err := c.ctl.svc.Act(ctx, caller, srv.ID, step.action); err != nil {
			t.Fatalf("%s: %v", step.action, err)
		}
		if op := <-gate.asked; op != step.op {
			t.Errorf("%s: the agent was asked to %s, want %s", step.action, op, step.op)
		}
		if got := c.server(t, srv.ID); got.TaskState != step.task || compute.Status(got) != step.during {
			t.Errorf("while the agent works on %s: task %q, status %s; want %q, %s", step.action, got.TaskState, compute.Status(got), step.task, step.during)
		}
		gate.goOn <- struct{}{}
		got := c.waitServer(t, srv.ID, step.action+" to finish", func(s *trustack.Server) bool { return s.VMState == step.vm })
		if compute.Status(got) != step.status || got.PowerState != step.power {
			t.Errorf("after %s: status %s, power %d; want %s, %d", step.action, compute.Status(got), got.PowerState, step.status, step.power)
		}
		if p, err := hv.State(ctx, srv.ID); err != nil || p != step.power {
			t.Errorf("after %s: the hypervisor says %d (%v), want %d", step.action, p, err, step.power)
		}
		name := strings.TrimSuffix(step.action, "_hard")
		a := c.action(t, srv.ID, caller.RequestID)
		if a.Action != name {
			t.Errorf("instance action %q, want %q", a.Action, name)
		}
		wantEvent(t, a, step.event, "Success")
	}
}

func TestPowerActionFromTheWrongStateConflictsAndChangesNothing(t *testing.T) {
	t.Parallel()
	c := newCloud(t, cloudOptions{Hosts: 1})
	for _, tc := range []struct {
		state string
		// reach is the action that brings an active server to the state.
		reach string
		wrong []string
	}{
		{trustack.VMActive, "", []string{"unpause", "resume", "start"}},
		{trustack.VMPaused, "pause", []string{"pause", "suspend", "resume", "stop", "start", "reboot"}},
		{trustack.VMSuspended, "suspend", []string{"pause", "unpause", "suspend", "stop", "start", "reboot"}},
		{trustack.VMStopped, "stop", []string{"pause", "unpause", "suspend", "resume", "stop", "reboot"}},
	} {
		t.Run(tc.state, func(t *testing.T) {
			srv := c.boot(t, "vm-"+tc.state)
			if tc.reach != "" {
				if err := c.ctl.svc.Act(ctx, c.as(c.user), srv.ID, tc.reach); err != nil {
					t.Fatal(err)
				}
				srv = c.waitServer(t, srv.ID, tc.state, func(s *trustack.Server) bool { return s.VMState == tc.state })
			}
			hv := c.host(t, srv.Host).hv
			power, _ := hv.State(ctx, srv.ID)
			actions, _ := c.store.Actions(ctx, srv.ID)
			for _, action := range tc.wrong {
				err := c.ctl.svc.Act(ctx, c.as(c.user), srv.ID, action)
				wantMessage(t, err, trustack.ECONFLICT, fmt.Sprintf("Cannot '%s' instance %s while it is in vm_state %s", action, srv.ID, tc.state))
				if got := c.server(t, srv.ID); !reflect.DeepEqual(got, srv) {
					t.Errorf("%s from %s changed the server:\n got %+v\nwant %+v", action, tc.state, got, srv)
				}
				if p, _ := hv.State(ctx, srv.ID); p != power {
					t.Errorf("%s from %s: the hypervisor says %d, want %d as before", action, tc.state, p, power)
				}
			}
			if after, _ := c.store.Actions(ctx, srv.ID); len(after) != len(actions) {
				t.Errorf("%d instance actions after refused ones, want %d as before", len(after), len(actions))
			}
		})
	}
	wantCode(t, c.ctl.svc.Act(ctx, c.as(c.user), c.boot(t, "x").ID, "hibernate"), trustack.EINVALID)
}

func TestActionWhileAnotherRunsConflicts(t *testing.T) {
	t.Parallel()
	c := newCloud(t, cloudOptions{Hosts: 1})
	srv := c.boot(t, "vm")
	// The reboot takes longer than the test: the server stays in its task.
	c.hosts[0].hv.SetDelay(time.Hour)
	if err := c.ctl.svc.Act(ctx, c.as(c.user), srv.ID, "reboot"); err != nil {
		t.Fatal(err)
	}
	if got := compute.Status(c.server(t, srv.ID)); got != "REBOOT" {
		t.Errorf("status while rebooting %s, want REBOOT", got)
	}
	for _, action := range []string{"stop", "reboot", "reboot_hard", "pause"} {
		err := c.ctl.svc.Act(ctx, c.as(c.user), srv.ID, action)
		wantMessage(t, err, trustack.ECONFLICT, fmt.Sprintf("Cannot '%s' instance %s while it is in task_state rebooting", action, srv.ID))
	}
	_, err := c.ctl.svc.CreateImage(ctx, c.as(c.user), srv.ID, "snap", nil)
	wantCode(t, err, trustack.ECONFLICT)
}

func TestLockedServersRefuseNonAdmins(t *testing.T) {
	t.Parallel()
	c := newCloud(t, cloudOptions{Hosts: 1})
	admin := compute.Caller{UserID: "root", ProjectID: "admin", Admin: true}
	stranger := compute.Caller{UserID: "mallory", ProjectID: "other"}
	srv := c.boot(t, "vm")
	svc := c.ctl.svc

	if err := svc.Lock(ctx, c.as(c.user), srv.ID, true); err != nil {
		t.Fatal(err)
	}
	locked := c.server(t, srv.ID)
	if !locked.Locked || locked.LockedBy != "owner" {
		t.Fatalf("locked %v by %q, want locked by owner", locked.Locked, locked.LockedBy)
	}
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"stop", func() error { return svc.Act(ctx, c.as(c.user), srv.ID, "stop") }},
		{"delete", func() error { return svc.Delete(ctx, c.as(c.user), srv.ID) }},
		{"set metadata", func() error {
			_, err := svc.SetMetadata(ctx, c.as(c.user), srv.ID, map[string]string{"a": "b"}, false)
			return err
		}},
	} {
		wantMessage(t, tc.call(), trustack.ECONFLICT, fmt.Sprintf("Instance %s is locked", srv.ID))
		if got := c.server(t, srv.ID); !reflect.DeepEqual(got, locked) {
			t.Errorf("%s of a locked server changed it:\n got %+v\nwant %+v", tc.name, got, locked)
		}
	}
	wantCode(t, svc.Act(ctx, c.as(stranger), srv.ID, "stop"), trustack.ENOTFOUND)

	// An admin may act on it.
	if err := svc.Act(ctx, c.as(admin), srv.ID, "pause"); err != nil {
		t.Fatalf("admin pausing a locked server: %v", err)
	}
	c.waitStatus(t, srv.ID, "PAUSED")

	// The owner unlocks what the owner locked, but not what an admin locked.
	if err := svc.Lock(ctx, c.as(c.user), srv.ID, false); err != nil {
		t.Fatal(err)
	}
	if err := svc.Act(ctx, c.as(c.user), srv.ID, "unpause"); err != nil {
		t.Fatalf("unpause after unlocking: %v", err)
	}
	c.waitStatus(t, srv.ID, "ACTIVE")
	if err := svc.Lock(ctx, c.as(admin), srv.ID, true); err != nil {
		t.Fatal(err)
	}
	if got := c.server(t, srv.ID).LockedBy; got != "admin" {
		t.Errorf("locked by %q, want admin", got)
	}
	wantCode(t, svc.Lock(ctx, c.as(c.user), srv.ID, false), trustack.EFORBIDDEN)
	if err := svc.Lock(ctx, c.as(admin), srv.ID, false); err != nil {
		t.Fatal(err)
	}
	if got := c.server(t, srv.ID); got.Locked || got.LockedBy != "" {
		t.Errorf("after the admin unlocked: locked %v by %q", got.Locked, got.LockedBy)
	}
}

func TestDeleteReleasesTheClaim(t *testing.T) {
	t.Parallel()
	c := newCloud(t, cloudOptions{Hosts: 1})
	srv := c.boot(t, "vm")
	if _, ok := c.claims(t)[srv.ID]; !ok {
		t.Fatal("an active server without a claim")
	}
	caller := c.as(c.user)
	if err := c.ctl.svc.Delete(ctx, caller, srv.ID); err != nil {
		t.Fatal(err)
	}
	got := c.waitStatus(t, srv.ID, "DELETED")
	if got.PowerState != trustack.PowerNoState || !got.TerminatedAt.Equal(epoch) {
		t.Errorf("deleted server: power %d, terminated at %v; want 0 and %v", got.PowerState, got.TerminatedAt, epoch)
	}
	if _, ok := c.claims(t)[srv.ID]; ok {
		t.Error("the deleted server still holds its claim")
	}
	h := c.hostByName(t, srv.Host)
	if h.UsedVCPUs != 0 || h.UsedMemoryMB != 0 || h.UsedDiskGB != 0 || h.RunningVMs != 0 {
		t.Errorf("host after the delete: %d vCPUs, %d MiB, %d GiB, %d VMs used; want none", h.UsedVCPUs, h.UsedMemoryMB, h.UsedDiskGB, h.RunningVMs)
	}
	if got := c.where(t, srv.ID); len(got) != 0 {
		t.Errorf("the hypervisors still have the deleted server: %v", got)
	}
	a := c.action(t, srv.ID, caller.RequestID)
	if a.Action != "delete" {
		t.Errorf("action %q, want delete", a.Action)
	}
	wantEvent(t, a, "compute_terminate_instance", "Success")
	usage, err := c.ctl.svc.Usage(ctx, c.user.ProjectID)
	if err != nil {
		t.Fatal(err)
	}
	if usage[trustack.QuotaInstances] != 0 || usage[trustack.QuotaCores] != 0 || usage[trustack.QuotaRAM] != 0 {
		t.Errorf("usage after the delete %v, want none", usage)
	}
	wantCode(t, c.ctl.svc.Delete(ctx, c.as(c.user), srv.ID), trustack.ENOTFOUND)
	if list, _ := c.ctl.svc.Servers(ctx, trustack.ServerFilter{ProjectID: c.user.ProjectID}); len(list) != 0 {
		t.Errorf("server list holds %d servers after the delete, want none", len(list))
	}
}

func TestQuotaExceeded(t *testing.T) {
	t.Parallel()
	c := newCloud(t, cloudOptions{Hosts: 1})
	for i, tc := range []struct {
		name   string
		limits map[string]int
		// running servers of flavor 1 the project has first.
		running int
		req     compute.CreateRequest
		want    string
	}{
		{"instances", map[string]int{trustack.QuotaInstances: 2}, 0, compute.CreateRequest{MinCount: 3},
			"Quota exceeded for instances: Requested 3, but already used 0 of 2 instances"},
		{"instances in use", map[string]int{trustack.QuotaInstances: 2}, 1, compute.CreateRequest{MinCount: 2},
			"Quota exceeded for instances: Requested 2, but already used 1 of 2 instances"},
		{"cores", map[string]int{trustack.QuotaCores: 3}, 0, compute.CreateRequest{FlavorID: "3", MinCount: 2},
			"Quota exceeded for cores: Requested 4, but already used 0 of 3 cores"},
		{"ram", map[string]int{trustack.QuotaRAM: 1024}, 1, compute.CreateRequest{FlavorID: "2"},
			"Quota exceeded for ram: Requested 2048, but already used 512 of 1024 ram"},
		{"metadata items", map[string]int{trustack.QuotaMetadataItems: 1}, 0, compute.CreateRequest{Metadata: map[string]string{"a": "1", "b": "2"}},
			"Quota exceeded for metadata_items: Requested 2, but already used 0 of 1 metadata_items"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			user := compute.Caller{UserID: "u", ProjectID: fmt.Sprintf("project-%d", i)}
			if err := c.ctl.svc.SetLimits(ctx, user.ProjectID, tc.limits); err != nil {
				t.Fatal(err)
			}
			for range tc.running {
				if _, err := c.ctl.svc.CreateServers(ctx, c.as(user), compute.CreateRequest{Name: "first", ImageID: c.imageID, FlavorID: "1"}); err != nil {
					t.Fatal(err)
				}
			}
			req := tc.req
			req.Name, req.ImageID = "more", c.imageID
			if req.FlavorID == "" {
				req.FlavorID = "1"
			}
			_, err := c.ctl.svc.CreateServers(ctx, c.as(user), req)
			wantMessage(t, err, trustack.EOVERQUOTA, tc.want)
			list, err := c.store.Servers(ctx, trustack.ServerFilter{ProjectID: user.ProjectID, Name: "^more"})
			if err != nil {
				t.Fatal(err)
			}
			if len(list) != 0 {
				t.Errorf("%d servers created by a request over quota, want none", len(list))
			}
		})
	}
}

func TestMinAndMaxCount(t *testing.T) {
	t.Parallel()
	c := newCloud(t, cloudOptions{Hosts: 2})
	for i, tc := range []struct {
		name      string
		instances int // the project's limit
		min, max  int
		want      int // servers created, 0 for a refusal
		code      string
	}{
		{"max when the quota allows", 10, 2, 4, 4, ""},
		{"as many as the quota allows", 3, 2, 4, 3, ""},
		{"min over the quota", 3, 4, 5, 0, trustack.EOVERQUOTA},
		{"max below min", 10, 3, 2, 0, trustack.EINVALID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			user := compute.Caller{UserID: "u", ProjectID: fmt.Sprintf("project-%d", i)}
			if err := c.ctl.svc.SetLimits(ctx, user.ProjectID, map[string]int{trustack.QuotaInstances: tc.instances}); err != nil {
				t.Fatal(err)
			}
			list, err := c.ctl.svc.CreateServers(ctx, c.as(user), compute.CreateRequest{Name: "web", ImageID: c.imageID, FlavorID: "1", MinCount: tc.min, MaxCount: tc.max})
			if tc.code != "" {
				wantCode(t, err, tc.code)
				if all, _ := c.store.Servers(ctx, trustack.ServerFilter{ProjectID: user.ProjectID}); len(all) != 0 {
					t.Errorf("%d servers created by a refused request", len(all))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(list) != tc.want {
				t.Fatalf("%d servers, want %d", len(list), tc.want)
			}
			for j, srv := range list {
				if want := fmt.Sprintf("web-%d", j+1); srv.Name != want || srv.LaunchIndex != j || srv.ReservationID != list[0].ReservationID {
					t.Errorf("server %d: name %q, launch index %d, reservation %q; want %s, %d, %s", j, srv.Name, srv.LaunchIndex, srv.ReservationID, want, j, list[0].ReservationID)
				}
				c.waitStatus(t, srv.ID, "ACTIVE")
			}
		})
	}
	c.checkUsage(t)
}

func TestSchedulerHints(t *testing.T) {
	t.Parallel()
	c := newCloud(t, cloudOptions{Hosts: 3})
	first := c.boot(t, "first")

	same := c.create(t, compute.CreateRequest{Name: "same", Hints: map[string][]string{"same_host": {first.ID}}})[0]
	if got := c.waitStatus(t, same.ID, "ACTIVE").Host; got != first.Host {
		t.Errorf("same_host: on %s, want %s", got, first.Host)
	}
	different := c.create(t, compute.CreateRequest{Name: "different", Hints: map[string][]string{"different_host": {first.ID}}})[0]
	if got := c.waitStatus(t, different.ID, "ACTIVE").Host; got == first.Host {
		t.Errorf("different_host: on %s, the host of the server named", got)
	}
	_, err := c.ctl.svc.CreateServers(ctx, c.as(c.user), compute.CreateRequest{Name: "x", ImageID: c.imageID, FlavorID: "1", Hints: map[string][]string{"same_host": {"missing"}}})
	wantCode(t, err, trustack.EINVALID)

	// Four members of an anti-affinity group on three hosts: three run, on
	// three hosts, and the fourth finds no valid host.
	g, err := c.ctl.svc.CreateServerGroup(ctx, c.user, "spread", trustack.PolicyAntiAffinity)
	if err != nil {
		t.Fatal(err)
	}
	members := c.create(t, compute.CreateRequest{Name: "member", MinCount: 4, Hints: map[string][]string{"group": {g.ID}}})
	used := map[string]bool{}
	errors := 0
	for _, m := range members {
		srv := c.waitServer(t, m.ID, "the build to end", func(s *trustack.Server) bool { return s.VMState != trustack.VMBuilding })
		switch srv.VMState {
		case trustack.VMActive:
			if used[srv.Host] {
				t.Errorf("two members of the anti-affinity group on %s", srv.Host)
			}
			used[srv.Host] = true
		case trustack.VMError:
			errors++
			if !strings.HasPrefix(srv.Fault.Message, "No valid host was found.") {
				t.Errorf("fault %q, want No valid host", srv.Fault.Message)
			}
		}
	}
	if len(used) != 3 || errors != 1 {
		t.Errorf("%d members on distinct hosts and %d in error, want 3 and 1", len(used), errors)
	}
}
