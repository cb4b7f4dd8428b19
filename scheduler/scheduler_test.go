package scheduler_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/internal/testclock"
	"github.com/trustack/trustack/scheduler"
	"github.com/trustack/trustack/sqlstore"
	"github.com/trustack/trustack/storetest"
)

var ctx = context.Background()

var epoch = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// fixture is a SQLite store with hosts registered through it, and a
// clock that does not move unless told to.
type fixture struct {
	db    *sqlstore.DB
	clock *testclock.Clock
	seq   int
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	db, err := sqlstore.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "trustack.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &fixture{db: db, clock: testclock.New(epoch)}
}

// scheduler returns a scheduler over the fixture's store on its clock,
// with a seeded source of randomness.
func (f *fixture) scheduler(t testing.TB, opts scheduler.Options) *scheduler.Scheduler {
	t.Helper()
	if opts.Now == nil {
		opts.Now = f.clock.Now
	}
	if opts.Rand == nil {
		opts.Rand = rand.New(rand.NewPCG(1, 2))
	}
	s, err := scheduler.New(f.db, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// host registers an enabled host in zone "nova" running qemu, with
// allocation ratios of 1 unless mods change them.
func (f *fixture) host(t testing.TB, name string, vcpus, memoryMB, diskGB int, mods ...func(*trustack.Host)) *trustack.Host {
	t.Helper()
	h := &trustack.Host{ID: "id-" + name, Name: name, AvailabilityZone: "nova", HypervisorType: "qemu", HypervisorHostname: name,
		VCPUs: vcpus, MemoryMB: memoryMB, DiskGB: diskGB, CPUAllocationRatio: 1, RAMAllocationRatio: 1, DiskAllocationRatio: 1,
		Enabled: true, CreatedAt: epoch, UpdatedAt: epoch, LastSeen: epoch}
	for _, m := range mods {
		m(h)
	}
	stored, err := f.db.RegisterHost(ctx, h)
	if err != nil {
		t.Fatalf("register host %s: %v", name, err)
	}
	return stored
}

// server creates a server of the given size in the store, in a group if
// group is not "".
func (f *fixture) server(t testing.TB, vcpus, ram, disk int, group string) *trustack.Server {
	t.Helper()
	f.seq++
	srv := &trustack.Server{ID: fmt.Sprintf("srv-%04d", f.seq), Name: fmt.Sprintf("srv-%d", f.seq), ProjectID: "p", UserID: "u", ImageID: "img",
		Flavor: trustack.Flavor{ID: "f", Name: "f", VCPUs: vcpus, RAM: ram, Disk: disk}, VMState: trustack.VMBuilding,
		TaskState: trustack.TaskScheduling, GroupID: group, CreatedAt: epoch, UpdatedAt: epoch}
	if err := f.db.CreateServers(ctx, []*trustack.Server{srv}, trustack.NewPorts{}, nil, nil); err != nil {
		t.Fatal(err)
	}
	return srv
}

// group creates a server group with the given policy.
func (f *fixture) group(t testing.TB, id, policy string) *trustack.ServerGroup {
	t.Helper()
	g := &trustack.ServerGroup{ID: id, Name: id, ProjectID: "p", UserID: "u", Policy: policy, CreatedAt: epoch}
	if err := f.db.CreateServerGroup(ctx, g, -1); err != nil {
		t.Fatal(err)
	}
	return g
}

// claim puts srv on host directly through the store, as a placement made
// elsewhere would.
func (f *fixture) claim(t testing.TB, srv *trustack.Server, host *trustack.Host, group *trustack.ServerGroup) {
	t.Helper()
	h, err := f.db.Host(ctx, host.ID)
	if err != nil {
		t.Fatal(err)
	}
	c := trustack.Claim{ServerID: srv.ID, HostID: h.ID, VCPUs: srv.Flavor.VCPUs, MemoryMB: srv.Flavor.RAM, DiskGB: srv.Flavor.Disk}
	if _, err := f.db.Claim(ctx, c, h.Generation, group); err != nil {
		t.Fatalf("claim %s on %s: %v", srv.ID, h.Name, err)
	}
}

// load takes the given resources of a host with a filler server.
func (f *fixture) load(t testing.TB, host *trustack.Host, vcpus, ram, disk int) {
	t.Helper()
	f.claim(t, f.server(t, vcpus, ram, disk, ""), host, nil)
}

// place places srv and returns the name of the host it landed on.
func place(t testing.TB, s *scheduler.Scheduler, req scheduler.Request) string {
	t.Helper()
	h, err := s.Place(ctx, req)
	if err != nil {
		t.Fatalf("place %s: %v", req.Server.ID, err)
	}
	return h.Name
}

// placeAndRelease places srv, gives its claim back at once and returns
// where it landed: the hosts are the same for the next placement.
func (f *fixture) placeAndRelease(t testing.TB, s *scheduler.Scheduler, srv *trustack.Server) string {
	t.Helper()
	name := place(t, s, scheduler.Request{Server: srv})
	h, err := f.db.Release(ctx, srv.ID)
	if err != nil {
		t.Fatal(err)
	}
	s.Forget(h)
	return name
}

func wantCode(t testing.TB, err error, code string) {
	t.Helper()
	if got := trustack.ErrorCode(err); got != code {
		t.Fatalf("got error %v (code %q), want code %q", err, got, code)
	}
}

func TestNewRefusesUnknownDriver(t *testing.T) {
	_, err := scheduler.New(newFixture(t).db, scheduler.Options{Driver: "random"})
	wantCode(t, err, trustack.EINVALID)
}

func TestFilterDriverSpreadsOrPacksByFreeRAM(t *testing.T) {
	one, minusOne := 1.0, -1.0
	for _, tc := range []struct {
		name       string
		multiplier *float64
		want       []string
	}{
		{"default spreads", nil, []string{"a", "b", "c", "a", "b"}},
		{"multiplier 1 spreads", &one, []string{"a", "b", "c", "a", "b"}},
		{"multiplier -1 packs", &minusOne, []string{"a", "a", "a", "a", "b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			for _, name := range []string{"a", "b", "c"} {
				f.host(t, name, 64, 16384, 1000)
			}
			s := f.scheduler(t, scheduler.Options{Driver: "filter", RAMWeightMultiplier: tc.multiplier})
			var got []string
			for range tc.want {
				got = append(got, place(t, s, scheduler.Request{Server: f.server(t, 1, 4096, 10, "")}))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("5 servers of 4 GiB on three 16 GiB hosts went to %v, want %v", got, tc.want)
			}
		})
	}
}

func TestFilterDriverPrefersMoreFreeRAM(t *testing.T) {
	minusOne := -1.0
	for _, tc := range []struct {
		name       string
		multiplier *float64
		want       string
	}{
		{"spreading takes the emptiest", nil, "b"},
		{"packing takes the fullest that fits", &minusOne, "a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			a, b, c := f.host(t, "a", 64, 16384, 1000), f.host(t, "b", 64, 16384, 1000), f.host(t, "c", 64, 16384, 1000)
			f.load(t, a, 1, 12288, 10)
			f.load(t, b, 1, 1024, 10)
			f.load(t, c, 1, 8192, 10)
			s := f.scheduler(t, scheduler.Options{Driver: "filter", RAMWeightMultiplier: tc.multiplier})
			if got := place(t, s, scheduler.Request{Server: f.server(t, 1, 2048, 10, "")}); got != tc.want {
				t.Errorf("placed on %s, want %s", got, tc.want)
			}
		})
	}
}

func TestHostSubsetSizeChoosesAtRandomAmongTheBest(t *testing.T) {
	f := newFixture(t)
	f.host(t, "a", 64, 16384, 1000)
	b, c := f.host(t, "b", 64, 16384, 1000), f.host(t, "c", 64, 16384, 1000)
	f.load(t, b, 1, 4096, 10)
	f.load(t, c, 1, 8192, 10)
	srv := f.server(t, 1, 1, 1, "")
	run := func(subset int, seed uint64) []string {
		s := f.scheduler(t, scheduler.Options{Driver: "filter", HostSubsetSize: subset, Rand: rand.New(rand.NewPCG(seed, seed))})
		var got []string
		for range 40 {
			got = append(got, f.placeAndRelease(t, s, srv))
		}
		return got
	}

	best := run(1, 7)
	if i := slices.IndexFunc(best, func(h string) bool { return h != "a" }); i >= 0 {
		t.Errorf("host_subset_size 1: placement %d went to %s, want always a, the host with most free RAM", i, best[i])
	}

	first := run(2, 7)
	count := map[string]int{}
	for _, h := range first {
		count[h]++
	}
	if count["c"] != 0 || count["a"] == 0 || count["b"] == 0 {
		t.Errorf("host_subset_size 2: placements per host %v, want both a and b (the best two) and never c", count)
	}
	if again := run(2, 7); !slices.Equal(again, first) {
		t.Errorf("the same seed chose differently:\n got %v\nwant %v", again, first)
	}
}

func TestSimpleDriverPicksTheLeastLoaded(t *testing.T) {
	type host struct {
		name                   string
		vcpus, usedVCPUs       int
		memoryMB, usedMemoryMB int
	}
	for _, tc := range []struct {
		name  string
		hosts []host
		want  string
	}{
		{"lowest share of vCPUs in use", []host{{"a", 8, 4, 16384, 1024}, {"b", 8, 2, 16384, 8192}}, "b"},
		{"share, not count, of vCPUs", []host{{"a", 4, 2, 16384, 1024}, {"b", 32, 8, 16384, 1024}}, "b"},
		{"equal shares: the most free memory", []host{{"a", 8, 2, 16384, 8192}, {"b", 8, 2, 16384, 4096}, {"c", 8, 2, 8192, 4096}}, "b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			for _, h := range tc.hosts {
				f.load(t, f.host(t, h.name, h.vcpus, h.memoryMB, 1000), h.usedVCPUs, h.usedMemoryMB, 1)
			}
			s := f.scheduler(t, scheduler.Options{Driver: "simple"})
			if got := place(t, s, scheduler.Request{Server: f.server(t, 1, 512, 1, "")}); got != tc.want {
				t.Errorf("placed on %s, want %s", got, tc.want)
			}
		})
	}
}

func TestChanceDriverIsRandomButSeeded(t *testing.T) {
	f := newFixture(t)
	for _, name := range []string{"a", "b", "c"} {
		f.host(t, name, 64, 16384, 1000)
	}
	f.host(t, "off", 64, 16384, 1000, func(h *trustack.Host) { h.Enabled = false })
	srv := f.server(t, 1, 512, 1, "")
	run := func(seed uint64) []string {
		s := f.scheduler(t, scheduler.Options{Driver: "chance", Rand: rand.New(rand.NewPCG(seed, 0))})
		var got []string
		for range 30 {
			got = append(got, f.placeAndRelease(t, s, srv))
		}
		return got
	}
	first := run(42)
	count := map[string]int{}
	for _, h := range first {
		count[h]++
	}
	if count["off"] != 0 || len(count) < 2 {
		t.Errorf("placements per host %v: want several hosts, never the disabled one", count)
	}
	if again := run(42); !slices.Equal(again, first) {
		t.Errorf("the same seed chose differently:\n got %v\nwant %v", again, first)
	}
}

func TestViewIsReadAgainAfterRefresh(t *testing.T) {
	f := newFixture(t)
	f.host(t, "a", 64, 16384, 1000)
	s := f.scheduler(t, scheduler.Options{Driver: "filter", Refresh: 5 * time.Second})
	if got := place(t, s, scheduler.Request{Server: f.server(t, 1, 8192, 1, "")}); got != "a" {
		t.Fatalf("placed on %s, want a", got)
	}
	// A host registered elsewhere is not seen until the view is stale.
	f.host(t, "b", 64, 16384, 1000)
	f.clock.Add(4 * time.Second)
	if got := place(t, s, scheduler.Request{Server: f.server(t, 1, 1024, 1, "")}); got != "a" {
		t.Errorf("before Refresh passed: placed on %s, want a (b is not in the view yet)", got)
	}
	f.clock.Add(time.Second)
	if got := place(t, s, scheduler.Request{Server: f.server(t, 1, 1024, 1, "")}); got != "b" {
		t.Errorf("after Refresh passed: placed on %s, want b, the emptier host", got)
	}
}

func TestNoHostsAtAll(t *testing.T) {
	f := newFixture(t)
	_, err := f.scheduler(t, scheduler.Options{}).Place(ctx, scheduler.Request{Server: f.server(t, 1, 512, 1, "")})
	wantCode(t, err, trustack.EOVERQUOTA)
	if got, want := trustack.ErrorMessage(err), "No valid host was found. There are no compute hosts."; got != want {
		t.Errorf("message %q, want %q", got, want)
	}
}

// TestHardConstraints checks every reason a host cannot take a server. Host
// "a-bad" breaks the constraint; "z-good" keeps it but is the worse choice
// otherwise (it has less free RAM, and a later name), so that the server
// landing on z-good shows that a-bad was ruled out. With z-good disabled
// too, the placement fails and the message names both reasons.
func TestHardConstraints(t *testing.T) {
	type env struct {
		f         *fixture
		bad, good *trustack.Host
	}
	for _, tc := range []struct {
		name string
		// bad changes a-bad's registration.
		bad func(*trustack.Host)
		// opts changes the scheduler's options.
		opts func(*scheduler.Options)
		// request builds the request, after both hosts are registered.
		request func(t *testing.T, e env) scheduler.Request
		refused string // the message without a-bad, with z-good disabled
	}{
		{
			name:    "disabled host",
			bad:     func(h *trustack.Host) { h.Enabled, h.DisabledReason = false, "maintenance" },
			refused: "No valid host was found. Of 2 hosts: 2 disabled.",
		},
		{
			name:    "forced down host",
			bad:     func(h *trustack.Host) { h.ForcedDown = true },
			refused: "No valid host was found. Of 2 hosts: 1 disabled, 1 down.",
		},
		{
			name:    "host not alive",
			opts:    func(o *scheduler.Options) { o.Alive = func(h *trustack.Host) bool { return h.Name != "a-bad" } },
			refused: "No valid host was found. Of 2 hosts: 1 disabled, 1 down.",
		},
		{
			name: "availability zone",
			bad:  func(h *trustack.Host) { h.AvailabilityZone = "elsewhere" },
			request: func(t *testing.T, e env) scheduler.Request {
				return scheduler.Request{Server: e.f.server(t, 1, 1024, 1, ""), Zone: "nova"}
			},
			refused: "No valid host was found. Of 2 hosts: 1 disabled, 1 in another availability zone.",
		},
		{
			name:    "too little RAM",
			bad:     func(h *trustack.Host) { h.MemoryMB = 512 },
			refused: "No valid host was found. Of 2 hosts: 1 disabled, 1 without enough free RAM.",
		},
		{
			name: "RAM taken by claims",
			request: func(t *testing.T, e env) scheduler.Request {
				e.f.load(t, e.bad, 1, 16384-512, 1)
				return scheduler.Request{Server: e.f.server(t, 1, 1024, 1, "")}
			},
			refused: "No valid host was found. Of 2 hosts: 1 disabled, 1 without enough free RAM.",
		},
		{
			name: "too few vCPUs",
			bad:  func(h *trustack.Host) { h.VCPUs = 2 },
			request: func(t *testing.T, e env) scheduler.Request {
				return scheduler.Request{Server: e.f.server(t, 4, 1024, 1, "")}
			},
			refused: "No valid host was found. Of 2 hosts: 1 disabled, 1 without enough free vCPUs.",
		},
		{
			name: "too little disk",
			bad:  func(h *trustack.Host) { h.DiskGB = 20 },
			request: func(t *testing.T, e env) scheduler.Request {
				return scheduler.Request{Server: e.f.server(t, 1, 1024, 40, "")}
			},
			refused: "No valid host was found. Of 2 hosts: 1 disabled, 1 without enough free disk.",
		},
		{
			name: "image asks for another hypervisor_type",
			bad:  func(h *trustack.Host) { h.HypervisorType = "xen" },
			request: func(t *testing.T, e env) scheduler.Request {
				return scheduler.Request{Server: e.f.server(t, 1, 1024, 1, ""), ImageProperties: map[string]string{"hypervisor_type": "QEMU"}}
			},
			refused: "No valid host was found. Of 2 hosts: 1 disabled, 1 not matching the image's properties.",
		},
		{
			name: "image asks for another img_hv_type",
			bad:  func(h *trustack.Host) { h.HypervisorType = "xen" },
			request: func(t *testing.T, e env) scheduler.Request {
				return scheduler.Request{Server: e.f.server(t, 1, 1024, 1, ""), ImageProperties: map[string]string{"img_hv_type": "qemu"}}
			},
			refused: "No valid host was found. Of 2 hosts: 1 disabled, 1 not matching the image's properties.",
		},
		{
			name: "anti-affinity",
			request: func(t *testing.T, e env) scheduler.Request {
				g := e.f.group(t, "g", trustack.PolicyAntiAffinity)
				e.f.claim(t, e.f.server(t, 1, 1024, 1, g.ID), e.bad, g)
				return scheduler.Request{Server: e.f.server(t, 1, 1024, 1, g.ID), Group: g}
			},
			refused: "No valid host was found. Of 2 hosts: 1 already running a member of the anti-affinity group, 1 disabled.",
		},
		{
			name: "affinity",
			request: func(t *testing.T, e env) scheduler.Request {
				g := e.f.group(t, "g", trustack.PolicyAffinity)
				e.f.claim(t, e.f.server(t, 1, 1024, 1, g.ID), e.good, g)
				return scheduler.Request{Server: e.f.server(t, 1, 1024, 1, g.ID), Group: g}
			},
			refused: "No valid host was found. Of 2 hosts: 1 disabled, 1 not running the affinity group's members.",
		},
		{
			name: "same_host",
			request: func(t *testing.T, e env) scheduler.Request {
				return scheduler.Request{Server: e.f.server(t, 1, 1024, 1, ""), SameHost: []string{e.good.ID}}
			},
			refused: "No valid host was found. Of 2 hosts: 1 disabled, 1 not the same host as the servers named in same_host.",
		},
		{
			name: "different_host",
			request: func(t *testing.T, e env) scheduler.Request {
				return scheduler.Request{Server: e.f.server(t, 1, 1024, 1, ""), DifferentHost: []string{e.bad.ID}}
			},
			refused: "No valid host was found. Of 2 hosts: 1 disabled, 1 running a server named in different_host.",
		},
		{
			name: "excluded after a failed build",
			request: func(t *testing.T, e env) scheduler.Request {
				return scheduler.Request{Server: e.f.server(t, 1, 1024, 1, ""), Exclude: []string{e.bad.ID}}
			},
			refused: "No valid host was found. Of 2 hosts: 1 already failed to build it, 1 disabled.",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			bad := tc.bad
			if bad == nil {
				bad = func(*trustack.Host) {}
			}
			e := env{f: f, bad: f.host(t, "a-bad", 8, 16384, 100, bad), good: f.host(t, "z-good", 8, 16384, 100)}
			f.load(t, e.good, 1, 4096, 1)
			req := scheduler.Request{Server: f.server(t, 1, 1024, 1, "")}
			if tc.request != nil {
				req = tc.request(t, e)
			}
			opts := scheduler.Options{}
			if tc.opts != nil {
				tc.opts(&opts)
			}

			if got := place(t, f.scheduler(t, opts), req); got != "z-good" {
				t.Errorf("placed on %s, want z-good: a-bad breaks the constraint", got)
			}
			if _, err := f.db.Release(ctx, req.Server.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := f.db.UpdateHost(ctx, e.good.ID, func(h *trustack.Host) error { h.Enabled = false; return nil }); err != nil {
				t.Fatal(err)
			}
			_, err := f.scheduler(t, opts).Place(ctx, req)
			wantCode(t, err, trustack.EOVERQUOTA)
			if got := trustack.ErrorMessage(err); got != tc.refused {
				t.Errorf("message %q, want %q", got, tc.refused)
			}
		})
	}
}

// TestSoftPoliciesPreferButDoNotRefuse: with every driver, a server of a
// soft-affinity group goes to its members' host and one of a
// soft-anti-affinity group away from it, even where the driver alone
// would choose otherwise; and with only the host the policy dislikes
// left, the server still goes there.
func TestSoftPoliciesPreferButDoNotRefuse(t *testing.T) {
	for _, driver := range []string{"acaas", "filter", "simple", "chance"} {
		for _, tc := range []struct {
			policy string
			// member is where the group's first member runs.
			member string
			want   string
		}{
			// z is the worse host by free RAM and load, so only the
			// policy sends the server there.
			{trustack.PolicySoftAffinity, "z", "z"},
			{trustack.PolicySoftAntiAffinity, "a", "z"},
		} {
			t.Run(driver+" "+tc.policy, func(t *testing.T) {
				f := newFixture(t)
				hosts := map[string]*trustack.Host{"a": f.host(t, "a", 8, 16384, 100), "z": f.host(t, "z", 8, 16384, 100)}
				f.load(t, hosts["z"], 1, 4096, 1)
				g := f.group(t, "g", tc.policy)
				f.claim(t, f.server(t, 1, 1024, 1, g.ID), hosts[tc.member], g)
				// Random drivers get several seeds, so that a driver
				// that ignored the policy could not pass by chance.
				for seed := range uint64(8) {
					s := f.scheduler(t, scheduler.Options{Driver: driver, Rand: rand.New(rand.NewPCG(seed, 1))})
					srv := f.server(t, 1, 1024, 1, g.ID)
					h, err := s.Place(ctx, scheduler.Request{Server: srv, Group: g})
					if err != nil {
						t.Fatal(err)
					}
					if h.Name != tc.want {
						t.Fatalf("seed %d: placed on %s, want %s", seed, h.Name, tc.want)
					}
					// Undo the claim, so that every seed sees the same hosts.
					if _, err := f.db.Release(ctx, srv.ID); err != nil {
						t.Fatal(err)
					}
				}
				if _, err := f.db.UpdateHost(ctx, hosts[tc.want].ID, func(h *trustack.Host) error { h.Enabled = false; return nil }); err != nil {
					t.Fatal(err)
				}
				if _, err := f.scheduler(t, scheduler.Options{Driver: driver}).Place(ctx, scheduler.Request{Server: f.server(t, 1, 1024, 1, g.ID), Group: g}); err != nil {
					t.Errorf("a soft policy refused the only host left: %v", err)
				}
			})
		}
	}
}

// countingHosts is the store, counting claims.
type countingHosts struct {
	*sqlstore.DB
	claims atomic.Int32
}

func (c *countingHosts) Claim(ctx context.Context, cl trustack.Claim, generation int64, g *trustack.ServerGroup) (*trustack.Host, error) {
	c.claims.Add(1)
	return c.DB.Claim(ctx, cl, generation, g)
}

func TestLostClaimRetriesOnAnotherHost(t *testing.T) {
	f := newFixture(t)
	// "big" has room for one 6 GiB server and is the first choice; "small"
	// has room for one too.
	big := f.host(t, "big", 8, 8192, 100)
	small := f.host(t, "small", 8, 8192, 100)
	f.load(t, small, 1, 1024, 1)
	other := &countingHosts{DB: f.db}
	one := f.scheduler(t, scheduler.Options{Driver: "filter"})
	two, err := scheduler.New(other, scheduler.Options{Driver: "filter", Now: f.clock.Now, Rand: rand.New(rand.NewPCG(3, 4))})
	if err != nil {
		t.Fatal(err)
	}
	// The second scheduler reads its view of the hosts now, and keeps it:
	// its clock does not move.
	nowhere := scheduler.Request{Server: f.server(t, 1, 1024, 1, ""), Zone: "nowhere"}
	if _, err := two.Place(ctx, nowhere); trustack.ErrorCode(err) != trustack.EOVERQUOTA {
		t.Fatalf("priming the second scheduler's view: %v, want no valid host", err)
	}

	first, second := f.server(t, 1, 6144, 1, ""), f.server(t, 1, 6144, 1, "")
	if got := place(t, one, scheduler.Request{Server: first}); got != "big" {
		t.Fatalf("first server on %s, want big", got)
	}
	// The second scheduler still sees big empty, claims it, loses, and
	// goes to small.
	before := other.claims.Load()
	if got := place(t, two, scheduler.Request{Server: second}); got != "small" {
		t.Errorf("second server on %s, want small", got)
	}
	if n := other.claims.Load() - before; n != 2 {
		t.Errorf("the second scheduler claimed %d times, want 2: one lost on big, one won on small", n)
	}
	for _, h := range []*trustack.Host{big, small} {
		storetest.CheckHostUsage(t, f.db, h.ID)
	}
}

// TestConcurrentPlacements races 1,000 placements of random sizes, some in
// anti-affinity groups, from 64 goroutines sharing four schedulers (one
// per driver, each with its own view, as three controllers would have)
// over 50 hosts of random capacities that cannot take them all.
func TestConcurrentPlacements(t *testing.T) {
	f := newFixture(t)
	r := rand.New(rand.NewPCG(2026, 5))
	var hosts []*trustack.Host
	for i := range 50 {
		hosts = append(hosts, f.host(t, fmt.Sprintf("h%02d", i), 4+r.IntN(29), 8192*(1+r.IntN(8)), 100*(1+r.IntN(10)), func(h *trustack.Host) {
			h.CPUAllocationRatio = float64(1 + r.IntN(4))
			h.RAMAllocationRatio = []float64{1, 1, 1.5}[r.IntN(3)]
		}))
	}
	flavors := []trustack.Flavor{
		{ID: "1", Name: "m1.tiny", VCPUs: 1, RAM: 512, Disk: 1},
		{ID: "2", Name: "m1.small", VCPUs: 1, RAM: 2048, Disk: 20},
		{ID: "3", Name: "m1.medium", VCPUs: 2, RAM: 4096, Disk: 40},
		{ID: "4", Name: "m1.large", VCPUs: 4, RAM: 8192, Disk: 80},
		{ID: "5", Name: "m1.xlarge", VCPUs: 8, RAM: 16384, Disk: 160},
	}
	type placement struct {
		srv   *trustack.Server
		group *trustack.ServerGroup
		host  string
		err   error
	}
	var all []*placement
	var servers []*trustack.Server
	groups := map[string]*trustack.ServerGroup{}
	for len(all) < 1000 {
		var g *trustack.ServerGroup
		members := 1
		if r.IntN(4) == 0 {
			g = &trustack.ServerGroup{ID: fmt.Sprintf("g%03d", len(groups)), Name: "anti", ProjectID: "p", UserID: "u", Policy: trustack.PolicyAntiAffinity, CreatedAt: epoch}
			if err := f.db.CreateServerGroup(ctx, g, -1); err != nil {
				t.Fatal(err)
			}
			groups[g.ID] = g
			members = min(2+r.IntN(4), 1000-len(all))
		}
		fl := flavors[r.IntN(len(flavors))]
		for range members {
			srv := &trustack.Server{ID: fmt.Sprintf("s%04d", len(all)), Name: "s", ProjectID: "p", UserID: "u", ImageID: "img", Flavor: fl,
				VMState: trustack.VMBuilding, TaskState: trustack.TaskScheduling, CreatedAt: epoch, UpdatedAt: epoch}
			if g != nil {
				srv.GroupID = g.ID
			}
			servers = append(servers, srv)
			all = append(all, &placement{srv: srv, group: g})
		}
	}
	if err := f.db.CreateServers(ctx, servers, trustack.NewPorts{}, nil, nil); err != nil {
		t.Fatal(err)
	}
	// Each scheduler's clock stands still: its view goes stale at once,
	// and only its own claims and lost races update it.
	scheds := []*scheduler.Scheduler{
		f.scheduler(t, scheduler.Options{Driver: "filter", HostSubsetSize: 3, Rand: rand.New(rand.NewPCG(1, 1))}),
		f.scheduler(t, scheduler.Options{Driver: "simple"}),
		f.scheduler(t, scheduler.Options{Driver: "chance", Rand: rand.New(rand.NewPCG(2, 2))}),
		f.scheduler(t, scheduler.Options{Driver: "acaas", Rand: rand.New(rand.NewPCG(3, 3))}),
	}

	work := make(chan int)
	var wg sync.WaitGroup
	for w := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := scheds[w%len(scheds)]
			for i := range work {
				p := all[i]
				h, err := s.Place(ctx, scheduler.Request{Server: p.srv, Group: p.group})
				p.err = err
				if err == nil {
					p.host = h.ID
				}
			}
		}()
	}
	for i := range all {
		work <- i
	}
	close(work)
	wg.Wait()

	// No host is over capacity, and each uses exactly what its claims say.
	for _, h := range hosts {
		storetest.CheckHostUsage(t, f.db, h.ID)
	}
	claims, err := f.db.Claims(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	claimed := map[string]string{}
	for _, c := range claims {
		claimed[c.ServerID] = c.HostID
	}
	// Every placement that succeeded holds its claim, and no other does.
	placed, failed := 0, 0
	for _, p := range all {
		if p.err == nil {
			placed++
			if claimed[p.srv.ID] != p.host {
				t.Errorf("%s placed on %s, but its claim is on %q", p.srv.ID, p.host, claimed[p.srv.ID])
			}
		} else if _, ok := claimed[p.srv.ID]; ok {
			t.Errorf("%s failed (%v) but holds a claim", p.srv.ID, p.err)
		}
	}
	if len(claims) != placed {
		t.Errorf("%d claims for %d placements", len(claims), placed)
	}
	// No two members of an anti-affinity group share a host.
	groupHosts := map[string]map[string]string{}
	for _, p := range all {
		if p.err != nil || p.group == nil {
			continue
		}
		if groupHosts[p.group.ID] == nil {
			groupHosts[p.group.ID] = map[string]string{}
		}
		if other, ok := groupHosts[p.group.ID][p.host]; ok {
			t.Errorf("anti-affinity group %s: %s and %s share host %s", p.group.ID, other, p.srv.ID, p.host)
		}
		groupHosts[p.group.ID][p.host] = p.srv.ID
	}
	// A placement failed only with "No valid host", and only when no host
	// could take it: as nothing was released, a host with room at the end
	// had room when the placement failed.
	final := map[string]*trustack.Host{}
	for _, h := range hosts {
		if final[h.ID], err = f.db.Host(ctx, h.ID); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range all {
		if p.err == nil {
			continue
		}
		failed++
		if trustack.ErrorCode(p.err) != trustack.EOVERQUOTA || !strings.HasPrefix(trustack.ErrorMessage(p.err), "No valid host was found.") {
			t.Errorf("%s: got %v, want EOVERQUOTA and No valid host", p.srv.ID, p.err)
			continue
		}
		fl := p.srv.Flavor
		for _, h := range final {
			if p.group != nil && groupHosts[p.group.ID][h.ID] != "" {
				continue
			}
			if h.Free(fl.VCPUs, fl.RAM, fl.Disk) {
				t.Errorf("%s (%s) failed with %q, but host %s had room for it", p.srv.ID, fl.Name, trustack.ErrorMessage(p.err), h.Name)
				break
			}
		}
	}
	// The test is only worth something if both outcomes happened.
	if placed < 100 || failed < 100 {
		t.Errorf("%d placed and %d failed: want plenty of both, so that capacity ran out", placed, failed)
	}
	t.Logf("%d placed, %d failed, %d anti-affinity groups", placed, failed, len(groups))
}
