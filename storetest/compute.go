package storetest

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/trustack/trustack"
)

var start = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// UsageReader reads what CheckHostUsage checks.
type UsageReader interface {
	Host(ctx context.Context, id string) (*trustack.Host, error)
	Claims(ctx context.Context, hostID string) ([]trustack.Claim, error)
}

// CheckHostUsage fails t unless a host's usage is the sum of its claims,
// within its capacity times its allocation ratios: what claims keep true
// whatever races them.
func CheckHostUsage(t testing.TB, s UsageReader, id string) {
	t.Helper()
	h, err := s.Host(ctx, id)
	must(t, err)
	claims, err := s.Claims(ctx, id)
	must(t, err)
	var vcpus, mem, disk int
	for _, c := range claims {
		vcpus, mem, disk = vcpus+c.VCPUs, mem+c.MemoryMB, disk+c.DiskGB
	}
	if h.UsedVCPUs != vcpus || h.UsedMemoryMB != mem || h.UsedDiskGB != disk || h.RunningVMs != len(claims) {
		t.Errorf("host %s uses %d vCPUs, %d MiB, %d GiB, %d VMs; its claims sum to %d, %d, %d, %d",
			h.Name, h.UsedVCPUs, h.UsedMemoryMB, h.UsedDiskGB, h.RunningVMs, vcpus, mem, disk, len(claims))
	}
	if !h.Free(0, 0, 0) {
		t.Errorf("host %s is over capacity: %d/%d vCPUs ×%g, %d/%d MiB ×%g, %d/%d GiB ×%g", h.Name,
			h.UsedVCPUs, h.VCPUs, h.CPUAllocationRatio, h.UsedMemoryMB, h.MemoryMB, h.RAMAllocationRatio, h.UsedDiskGB, h.DiskGB, h.DiskAllocationRatio)
	}
}

func host(t testing.TB, s Store, name string, vcpus, memoryMB int) *trustack.Host {
	t.Helper()
	h, err := s.RegisterHost(ctx, &trustack.Host{ID: "id-" + name, Name: name, AvailabilityZone: "nova", HypervisorType: "fake",
		VCPUs: vcpus, MemoryMB: memoryMB, DiskGB: 100, CPUAllocationRatio: 1, RAMAllocationRatio: 1, DiskAllocationRatio: 1,
		Enabled: true, CreatedAt: start, UpdatedAt: start, LastSeen: start})
	must(t, err)
	return h
}

func server(id, project string, vcpus, ram int) *trustack.Server {
	return &trustack.Server{ID: id, Name: "srv-" + id, ProjectID: project, UserID: "u", ImageID: "img",
		Flavor: trustack.Flavor{ID: "f", Name: "f", VCPUs: vcpus, RAM: ram, Disk: 1}, VMState: trustack.VMBuilding,
		TaskState: trustack.TaskScheduling, CreatedAt: start, UpdatedAt: start}
}

// claim places a server on a host with the host's current generation,
// reading it again after a lost race, as the scheduler does.
func claim(s Store, serverID, hostID string, vcpus, ram int, group *trustack.ServerGroup) error {
	for {
		h, err := s.Host(ctx, hostID)
		if err != nil {
			return err
		}
		if !h.Free(vcpus, ram, 1) {
			return trustack.Errorf(trustack.ECONFLICT, "full")
		}
		_, err = s.Claim(ctx, trustack.Claim{ServerID: serverID, HostID: hostID, VCPUs: vcpus, MemoryMB: ram, DiskGB: 1}, h.Generation, group)
		if trustack.ErrorCode(err) != trustack.ECONFLICT || group != nil {
			return err
		}
	}
}

func testFlavors(t *testing.T, s Store) {
	big := &trustack.Flavor{ID: "3", Name: "m1.medium", VCPUs: 2, RAM: 4096, Disk: 40, RXTXFactor: 1, Public: true, ExtraSpecs: map[string]string{"hw:cpu_policy": "shared"}}
	private := &trustack.Flavor{ID: "p", Name: "secret", VCPUs: 1, RAM: 512, Disk: 1, RXTXFactor: 1}
	for _, f := range []*trustack.Flavor{big, private} {
		must(t, s.CreateFlavor(ctx, f))
	}
	got, err := s.Flavor(ctx, "3")
	must(t, err)
	equal(t, got, big)
	code(t, s.CreateFlavor(ctx, &trustack.Flavor{ID: "9", Name: "m1.medium", VCPUs: 1, RAM: 1, RXTXFactor: 1}), trustack.ECONFLICT)

	must(t, s.AddFlavorAccess(ctx, "p", "proj-a"))
	code(t, s.AddFlavorAccess(ctx, "p", "proj-a"), trustack.ECONFLICT)
	access, err := s.FlavorAccess(ctx, "p")
	must(t, err)
	equal(t, access, []string{"proj-a"})
	for _, tc := range []struct {
		f    trustack.FlavorFilter
		want int
	}{
		{trustack.FlavorFilter{}, 2},
		{trustack.FlavorFilter{VisibleTo: "proj-a"}, 2},
		{trustack.FlavorFilter{VisibleTo: "proj-b"}, 1},
		{trustack.FlavorFilter{MinRAM: 1024}, 1},
		{trustack.FlavorFilter{Public: new(bool)}, 1},
	} {
		list, err := s.Flavors(ctx, tc.f)
		must(t, err)
		if len(list) != tc.want {
			t.Errorf("Flavors(%+v): %d, want %d", tc.f, len(list), tc.want)
		}
	}
	must(t, s.RemoveFlavorAccess(ctx, "p", "proj-a"))
	code(t, s.RemoveFlavorAccess(ctx, "p", "proj-a"), trustack.ENOTFOUND)
	must(t, s.DeleteFlavor(ctx, "p"))
	_, err = s.Flavor(ctx, "p")
	code(t, err, trustack.ENOTFOUND)
}

func testKeypairs(t *testing.T, s Store) {
	k := &trustack.Keypair{Name: "k1", UserID: "u1", Type: "ssh", PublicKey: "ssh-ed25519 AAAA", Fingerprint: "aa:bb", CreatedAt: start}
	must(t, s.CreateKeypair(ctx, k, 2))
	code(t, s.CreateKeypair(ctx, k, 2), trustack.ECONFLICT)
	must(t, s.CreateKeypair(ctx, &trustack.Keypair{Name: "k1", UserID: "u2", Type: "ssh", CreatedAt: start}, 2)) // names are per user
	must(t, s.CreateKeypair(ctx, &trustack.Keypair{Name: "k2", UserID: "u1", Type: "ssh", CreatedAt: start}, 2))
	code(t, s.CreateKeypair(ctx, &trustack.Keypair{Name: "k3", UserID: "u1", Type: "ssh", CreatedAt: start}, 2), trustack.EOVERQUOTA)
	got, err := s.Keypair(ctx, "u1", "k1")
	must(t, err)
	equal(t, got, k)
	list, err := s.Keypairs(ctx, "u1")
	must(t, err)
	equal(t, len(list), 2)
	must(t, s.DeleteKeypair(ctx, "u1", "k1"))
	code(t, s.DeleteKeypair(ctx, "u1", "k1"), trustack.ENOTFOUND)
}

func testHosts(t *testing.T, s Store) {
	a := host(t, s, "a.example.com", 4, 8192)
	b := host(t, s, "b", 4, 8192)
	if a.Number == b.Number || a.Number < 1 {
		t.Errorf("host numbers %d and %d, want distinct and positive", a.Number, b.Number)
	}
	must(t, s.CreateServers(ctx, []*trustack.Server{server("s1", "p", 1, 1024)}, trustack.NewPorts{}, nil, nil))
	must(t, claim(s, "s1", a.ID, 1, 1024, nil))
	// Registering again updates capacity and storage but keeps identity
	// and claims.
	storage := []trustack.StorageBackend{{Name: "file", TotalGB: 100, FreeGB: 60}}
	again, err := s.RegisterHost(ctx, &trustack.Host{ID: "other", Name: "a.example.com", AvailabilityZone: "z2", VCPUs: 8, MemoryMB: 16384, DiskGB: 100,
		CPUAllocationRatio: 1, RAMAllocationRatio: 1, DiskAllocationRatio: 1, Enabled: true, Storage: storage, CreatedAt: start, UpdatedAt: start, LastSeen: start})
	must(t, err)
	if again.ID != a.ID || again.Number != a.Number || again.UsedVCPUs != 1 || again.VCPUs != 8 || again.AvailabilityZone != "z2" {
		t.Errorf("re-registered host: %+v", again)
	}
	equal(t, again.Storage, storage)
	byName, err := s.HostByName(ctx, "a.example.com")
	must(t, err)
	equal(t, byName.ID, a.ID)
	must(t, s.SetLastSeen(ctx, map[string]time.Time{"b": start.Add(time.Minute), "unknown": start}))
	got, err := s.Host(ctx, b.ID)
	must(t, err)
	equal(t, got.LastSeen, start.Add(time.Minute))
	_, err = s.UpdateHost(ctx, b.ID, func(h *trustack.Host) error { h.Enabled, h.DisabledReason = false, "maintenance"; return nil })
	must(t, err)
	code(t, s.DeleteHost(ctx, a.ID), trustack.ECONFLICT)
	must(t, s.DeleteHost(ctx, b.ID))
	list, err := s.Hosts(ctx)
	must(t, err)
	equal(t, len(list), 1)
}

func testClaims(t *testing.T, s Store) {
	h := host(t, s, "h", 2, 4096)
	must(t, s.CreateServers(ctx, []*trustack.Server{server("s1", "p", 1, 2048), server("s2", "p", 1, 2048), server("s3", "p", 1, 2048)}, trustack.NewPorts{}, nil, nil))
	after, err := s.Claim(ctx, trustack.Claim{ServerID: "s1", HostID: h.ID, VCPUs: 1, MemoryMB: 2048, DiskGB: 1}, h.Generation, nil)
	must(t, err)
	if after.UsedVCPUs != 1 || after.UsedMemoryMB != 2048 || after.RunningVMs != 1 || after.Generation == h.Generation {
		t.Errorf("after a claim: %+v", after)
	}
	// A claim made with a stale generation loses.
	_, err = s.Claim(ctx, trustack.Claim{ServerID: "s2", HostID: h.ID, VCPUs: 1, MemoryMB: 2048, DiskGB: 1}, h.Generation, nil)
	code(t, err, trustack.ECONFLICT)
	_, err = s.Claim(ctx, trustack.Claim{ServerID: "s2", HostID: h.ID, VCPUs: 1, MemoryMB: 2048, DiskGB: 1}, after.Generation, nil)
	must(t, err)
	// A claim beyond capacity loses too, whatever the generation.
	full, _ := s.Host(ctx, h.ID)
	_, err = s.Claim(ctx, trustack.Claim{ServerID: "s3", HostID: h.ID, VCPUs: 1, MemoryMB: 2048, DiskGB: 1}, full.Generation, nil)
	code(t, err, trustack.ECONFLICT)
	released, err := s.Release(ctx, "s1")
	must(t, err)
	if released.UsedVCPUs != 1 || released.UsedMemoryMB != 2048 || released.RunningVMs != 1 {
		t.Errorf("after a release: %+v", released)
	}
	none, err := s.Release(ctx, "s1")
	must(t, err)
	if none != nil {
		t.Error("releasing twice returned a host")
	}
	claims, err := s.Claims(ctx, h.ID)
	must(t, err)
	equal(t, len(claims), 1)
}

func testClaimsUnderConcurrency(t *testing.T, s Store) {
	h := host(t, s, "h", 16, 1<<20)
	const n = 40
	var list []*trustack.Server
	for i := range n {
		list = append(list, server(fmt.Sprintf("s%02d", i), "p", 1, 1))
	}
	must(t, s.CreateServers(ctx, list, trustack.NewPorts{}, nil, nil))
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for _, srv := range list {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := claim(s, srv.ID, h.ID, 1, 1, nil)
			if err == nil {
				mu.Lock()
				won++
				mu.Unlock()
			} else if trustack.ErrorCode(err) != trustack.ECONFLICT {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got, err := s.Host(ctx, h.ID)
	must(t, err)
	if won != 16 || got.UsedVCPUs != 16 {
		t.Errorf("%d of %d claims of 1 vCPU on a 16-vCPU host won, %d vCPUs used; want exactly 16", won, n, got.UsedVCPUs)
	}
}

func testGroupPolicies(t *testing.T, s Store) {
	var hs []*trustack.Host
	for i := range 3 {
		hs = append(hs, host(t, s, fmt.Sprintf("h%d", i), 64, 1<<20))
	}
	anti := &trustack.ServerGroup{ID: "anti", Name: "anti", ProjectID: "p", Policy: trustack.PolicyAntiAffinity, CreatedAt: start}
	aff := &trustack.ServerGroup{ID: "aff", Name: "aff", ProjectID: "p", Policy: trustack.PolicyAffinity, CreatedAt: start}
	must(t, s.CreateServerGroup(ctx, anti, -1))
	must(t, s.CreateServerGroup(ctx, aff, -1))
	code(t, s.CreateServerGroup(ctx, &trustack.ServerGroup{ID: "x", Name: "x", ProjectID: "p", Policy: "affinity", CreatedAt: start}, 2), trustack.EOVERQUOTA)

	// Ten members of an anti-affinity group race for three hosts: at most
	// one lands on each.
	var members []*trustack.Server
	for i := range 10 {
		srv := server(fmt.Sprintf("anti-%d", i), "p", 1, 1)
		srv.GroupID = "anti"
		members = append(members, srv)
	}
	must(t, s.CreateServers(ctx, members, trustack.NewPorts{}, nil, nil))
	var wg sync.WaitGroup
	for i, srv := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range hs {
				h := hs[(i+j)%len(hs)]
				if claim(s, srv.ID, h.ID, 1, 1, anti) == nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	hostsUsed, err := s.GroupHosts(ctx, "anti", "")
	must(t, err)
	claims, err := s.Claims(ctx, "")
	must(t, err)
	if len(claims) != len(hostsUsed) || len(claims) > 3 {
		t.Errorf("%d anti-affinity members placed on %d distinct hosts: a host runs two of them", len(claims), len(hostsUsed))
	}
	g, err := s.ServerGroup(ctx, "anti")
	must(t, err)
	equal(t, len(g.Members), 10)

	// Affinity: once a member is placed, others must follow it.
	a1, a2 := server("aff-1", "p", 1, 1), server("aff-2", "p", 1, 1)
	a1.GroupID, a2.GroupID = "aff", "aff"
	must(t, s.CreateServers(ctx, []*trustack.Server{a1, a2}, trustack.NewPorts{}, nil, nil))
	must(t, claim(s, "aff-1", hs[0].ID, 1, 1, aff))
	code(t, claim(s, "aff-2", hs[1].ID, 1, 1, aff), trustack.ECONFLICT)
	must(t, claim(s, "aff-2", hs[0].ID, 1, 1, aff))
}

func testServers(t *testing.T, s Store) {
	limits := map[string]int{trustack.QuotaInstances: 3, trustack.QuotaCores: 4, trustack.QuotaRAM: -1}
	a := server("a", "p1", 2, 512)
	a.Metadata = map[string]string{"role": "db"}
	a.Hints = map[string][]string{"different_host": {"x"}}
	a.Fault = &trustack.Fault{Code: 500, Message: "boom", Created: start}
	a.Ports, a.UserPorts = []string{"port-2", "port-1"}, []string{"port-1"}
	a.TaskOwner = "controller-1"
	empty := ""
	a.Description = &empty // told apart from none
	must(t, s.CreateServers(ctx, []*trustack.Server{a}, trustack.NewPorts{}, limits, nil))
	got, err := s.Server(ctx, "a")
	must(t, err)
	equal(t, got, a)
	said := "the database"
	for _, d := range []*string{nil, new(string), &said} {
		got, err = s.UpdateServer(ctx, "a", func(srv *trustack.Server) error { srv.Description = d; return nil })
		must(t, err)
		a.Description = d
		equal(t, got, a)
		got, err = s.Server(ctx, "a")
		must(t, err)
		equal(t, got, a)
	}
	// Over the cores quota: nothing of the batch is created, and the
	// message is Nova's.
	err = s.CreateServers(ctx, []*trustack.Server{server("b", "p1", 2, 512), server("c", "p1", 1, 512)}, trustack.NewPorts{}, limits, nil)
	code(t, err, trustack.EOVERQUOTA)
	if want := "Quota exceeded for cores: Requested 3, but already used 2 of 4 cores"; trustack.ErrorMessage(err) != want {
		t.Errorf("message %q, want %q", trustack.ErrorMessage(err), want)
	}
	_, err = s.Server(ctx, "b")
	code(t, err, trustack.ENOTFOUND)
	must(t, s.CreateServers(ctx, []*trustack.Server{server("b", "p1", 1, 512), server("c", "p1", 1, 512)}, trustack.NewPorts{}, limits, nil))
	must(t, s.CreateServers(ctx, []*trustack.Server{server("d", "p2", 1, 512)}, trustack.NewPorts{}, limits, nil))
	usage, err := s.Usage(ctx, "p1")
	must(t, err)
	if usage[trustack.QuotaInstances] != 3 || usage[trustack.QuotaCores] != 4 || usage[trustack.QuotaRAM] != 1536 {
		t.Errorf("usage of p1: %v", usage)
	}
	_, err = s.UpdateServer(ctx, "b", func(srv *trustack.Server) error { srv.VMState = trustack.VMDeleted; return nil })
	must(t, err)
	for _, id := range []string{"c", "d"} {
		_, err = s.UpdateServer(ctx, id, func(srv *trustack.Server) error { srv.VMState, srv.TaskState = trustack.VMActive, ""; return nil })
		must(t, err)
	}
	for _, tc := range []struct {
		f    trustack.ServerFilter
		want []string
	}{
		{trustack.ServerFilter{ProjectID: "p1"}, []string{"a", "c"}},
		{trustack.ServerFilter{ProjectID: "p1", IncludeDeleted: true}, []string{"a", "b", "c"}},
		{trustack.ServerFilter{Name: "^srv-[ad]$"}, []string{"a", "d"}},
		{trustack.ServerFilter{Limit: 2}, []string{"a", "c"}},
		{trustack.ServerFilter{Marker: "a"}, []string{"c", "d"}},
		{trustack.ServerFilter{Status: []string{trustack.VMDeleted}, IncludeDeleted: true}, []string{"b"}},
		{trustack.ServerFilter{InTask: true}, []string{"a"}},
	} {
		list, err := s.Servers(ctx, tc.f)
		must(t, err)
		var ids []string
		for _, srv := range list {
			ids = append(ids, srv.ID)
		}
		if !reflect.DeepEqual(ids, tc.want) {
			t.Errorf("Servers(%+v) = %v, want %v", tc.f, ids, tc.want)
		}
	}
	_, err = s.Servers(ctx, trustack.ServerFilter{Marker: "nope"})
	code(t, err, trustack.EINVALID)
}

func testQuotaUnderConcurrency(t *testing.T, s Store) {
	limits := map[string]int{trustack.QuotaInstances: 10}
	var wg sync.WaitGroup
	var mu sync.Mutex
	created := 0
	for i := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.CreateServers(ctx, []*trustack.Server{server(fmt.Sprintf("s%02d", i), "p", 1, 1)}, trustack.NewPorts{}, limits, nil)
			if err == nil {
				mu.Lock()
				created++
				mu.Unlock()
			} else if trustack.ErrorCode(err) != trustack.EOVERQUOTA {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if created != 10 {
		t.Errorf("%d servers created concurrently under a quota of 10", created)
	}
}

func testActionsAndQuotas(t *testing.T, s Store) {
	a := trustack.InstanceAction{ServerID: "s", Action: "pause", RequestID: "req-1", UserID: "u", ProjectID: "p", StartTime: start}
	must(t, s.AddAction(ctx, a))
	must(t, s.AddAction(ctx, trustack.InstanceAction{ServerID: "s", Action: "create", RequestID: "req-0", UserID: "u", ProjectID: "p", StartTime: start.Add(-time.Hour)}))
	must(t, s.AddEvent(ctx, "s", "req-1", trustack.ActionEvent{Event: "compute_pause_instance", StartTime: start}))
	must(t, s.AddEvent(ctx, "s", "req-1", trustack.ActionEvent{Event: "compute_pause_instance", StartTime: start, FinishTime: start.Add(time.Second), Result: "Error", Host: "h", Details: "no"}))
	list, err := s.Actions(ctx, "s")
	must(t, err)
	if len(list) != 2 || list[0].RequestID != "req-1" {
		t.Errorf("actions, newest first: %+v", list)
	}
	got, err := s.Action(ctx, "s", "req-1")
	must(t, err)
	if len(got.Events) != 1 || got.Events[0].Result != "Error" || got.Message != "Error" || !got.Events[0].FinishTime.Equal(start.Add(time.Second)) {
		t.Errorf("action with events: %+v", got)
	}
	_, err = s.Action(ctx, "s", "req-9")
	code(t, err, trustack.ENOTFOUND)

	must(t, s.SetQuotas(ctx, "p", map[string]int{trustack.QuotaInstances: 5, trustack.QuotaCores: -1}))
	must(t, s.SetQuotas(ctx, "p", map[string]int{trustack.QuotaInstances: 7}))
	q, err := s.Quotas(ctx, "p")
	must(t, err)
	equal(t, q, map[string]int{trustack.QuotaInstances: 7, trustack.QuotaCores: -1})
	must(t, s.DeleteQuotas(ctx, "p"))
	q, err = s.Quotas(ctx, "p")
	must(t, err)
	equal(t, len(q), 0)
}

func testActionsRecordedWithTheirChange(t *testing.T, s Store) {
	create := &trustack.InstanceAction{Action: "create", RequestID: "req-1", UserID: "u", ProjectID: "p", StartTime: start}
	must(t, s.CreateServers(ctx, []*trustack.Server{server("s1", "p", 1, 512), server("s2", "p", 1, 512)}, trustack.NewPorts{}, nil, create))
	for _, id := range []string{"s1", "s2"} {
		a, err := s.Action(ctx, id, "req-1")
		must(t, err)
		if a.ServerID != id || a.Action != "create" || a.UserID != "u" {
			t.Errorf("action of %s: %+v", id, a)
		}
	}
	// Servers refused by their quota leave no action behind.
	err := s.CreateServers(ctx, []*trustack.Server{server("s3", "p", 1, 512)}, trustack.NewPorts{}, map[string]int{trustack.QuotaInstances: 2}, &trustack.InstanceAction{
		Action: "create", RequestID: "req-2", UserID: "u", ProjectID: "p", StartTime: start})
	code(t, err, trustack.EOVERQUOTA)
	_, err = s.Action(ctx, "s3", "req-2")
	code(t, err, trustack.ENOTFOUND)

	built := trustack.ActionEvent{Event: "compute_build_and_run_instance", StartTime: start, FinishTime: start.Add(time.Second), Result: "Success", Host: "h"}
	srv, err := s.UpdateServerWithEvent(ctx, "s1", "req-1", built, func(cur *trustack.Server) error {
		cur.VMState, cur.TaskState = trustack.VMActive, ""
		return nil
	})
	must(t, err)
	equal(t, srv.VMState, trustack.VMActive)
	a, err := s.Action(ctx, "s1", "req-1")
	must(t, err)
	if len(a.Events) != 1 || a.Events[0].Event != built.Event || a.Events[0].Host != "h" {
		t.Errorf("events after the update: %+v", a.Events)
	}
	// An update its fn refuses records neither the change nor the event.
	_, err = s.UpdateServerWithEvent(ctx, "s2", "req-1", built, func(cur *trustack.Server) error {
		cur.VMState = trustack.VMActive
		return trustack.Errorf(trustack.ECONFLICT, "moved")
	})
	code(t, err, trustack.ECONFLICT)
	a, err = s.Action(ctx, "s2", "req-1")
	must(t, err)
	equal(t, len(a.Events), 0)
	got, err := s.Server(ctx, "s2")
	must(t, err)
	equal(t, got.VMState, trustack.VMBuilding)
}

func testMoveClaim(t *testing.T, s Store) {
	h1 := host(t, s, "h1", 4, 8192)
	h2 := host(t, s, "h2", 4, 8192)
	must(t, s.CreateServers(ctx, []*trustack.Server{server("s1", "p", 2, 2048), server("s3", "p", 1, 1)}, trustack.NewPorts{}, nil, nil))
	must(t, s.CreateServers(ctx, []*trustack.Server{server("s2", "q", 1, 1024)}, trustack.NewPorts{}, nil, nil))
	_, err := s.Claim(ctx, trustack.Claim{ServerID: "s1", HostID: h1.ID, VCPUs: 2, MemoryMB: 2048, DiskGB: 1, ProjectID: "p"}, h1.Generation, nil)
	must(t, err)

	// The claim leaves its host and takes the other, in one step.
	cur, err := s.Host(ctx, h2.ID)
	must(t, err)
	moved := trustack.Claim{ServerID: "s1", HostID: h2.ID, VCPUs: 2, MemoryMB: 2048, DiskGB: 1, ProjectID: "p"}
	from, to, err := s.MoveClaim(ctx, moved, cur.Generation, nil)
	must(t, err)
	if from.ID != h1.ID || from.UsedVCPUs != 0 || from.RunningVMs != 0 || len(from.Tenants) != 0 {
		t.Errorf("the host the claim left: %+v", from)
	}
	if to.ID != h2.ID || to.UsedVCPUs != 2 || to.RunningVMs != 1 || to.Generation == cur.Generation {
		t.Errorf("the host the claim moved to: %+v", to)
	}
	equal(t, to.Tenants, []trustack.Tenant{{ProjectID: "p", Servers: 1}})
	claims, err := s.Claims(ctx, "")
	must(t, err)
	equal(t, claims, []trustack.Claim{moved})
	CheckHostUsage(t, s, h1.ID)
	CheckHostUsage(t, s, h2.ID)

	// A move made on the host as it was loses, and changes nothing.
	_, _, err = s.MoveClaim(ctx, trustack.Claim{ServerID: "s1", HostID: h1.ID, VCPUs: 2, MemoryMB: 2048, DiskGB: 1, ProjectID: "p"}, h1.Generation, nil)
	code(t, err, trustack.ECONFLICT)

	// A move to the host the claim is on is no move.
	cur, err = s.Host(ctx, h2.ID)
	must(t, err)
	_, _, err = s.MoveClaim(ctx, trustack.Claim{ServerID: "s1", HostID: h2.ID, VCPUs: 4, MemoryMB: 4096, DiskGB: 1, ProjectID: "p"}, cur.Generation, nil)
	code(t, err, trustack.EINVALID)
	CheckHostUsage(t, s, h2.ID)

	// The host moved to must admit the claim's project.
	cur, err = s.Host(ctx, h1.ID)
	must(t, err)
	_, err = s.Claim(ctx, trustack.Claim{ServerID: "s2", HostID: h1.ID, VCPUs: 1, MemoryMB: 1024, DiskGB: 1, ProjectID: "q",
		Isolation: trustack.Isolation{Exclusive: true}}, cur.Generation, nil)
	must(t, err)
	cur, err = s.Host(ctx, h1.ID)
	must(t, err)
	_, _, err = s.MoveClaim(ctx, trustack.Claim{ServerID: "s1", HostID: h1.ID, VCPUs: 1, MemoryMB: 1, DiskGB: 1, ProjectID: "p"}, cur.Generation, nil)
	code(t, err, trustack.ECONFLICT)
	claims, err = s.Claims(ctx, h2.ID)
	must(t, err)
	equal(t, claims, []trustack.Claim{moved})

	// A server without a claim has none to move.
	_, _, err = s.MoveClaim(ctx, trustack.Claim{ServerID: "s3", HostID: h1.ID, VCPUs: 1, MemoryMB: 1, DiskGB: 1, ProjectID: "p"}, cur.Generation, nil)
	code(t, err, trustack.ENOTFOUND)
}
