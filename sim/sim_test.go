package sim_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/scheduler"
	"github.com/trustack/trustack/sim"
	"github.com/trustack/trustack/sqlstore"
)

var ctx = context.Background()

var epoch = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// newScheduler returns a scheduler over hosts with a seeded source and a
// clock that stands still, so that its view is read once and then kept
// up to date by its own claims.
func newScheduler(t testing.TB, hosts scheduler.Hosts, seed uint64, driver string) *scheduler.Scheduler {
	t.Helper()
	s, err := scheduler.New(hosts, scheduler.Options{Driver: driver, Rand: rand.New(rand.NewPCG(seed, 7)),
		Now: func() time.Time { return epoch }})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// randomCase draws a small cluster, a request stream and a driver from a
// seed: 3 to 40 hosts, 1 to 6 domains (some emergency, with
// collaborators), 1 to 4 locations, hosts of 2 to 32 vCPUs, so that
// requirements, room and isolation all rule hosts out; 10 to 60 requests
// of 2 to 6 projects. Most cases use the acaas driver, the rest the
// others, which keep the same hard constraints.
func randomCase(seed uint64) (sim.ClusterConfig, sim.WorkloadConfig, string) {
	r := rand.New(rand.NewPCG(seed, 42))
	cc := sim.ClusterConfig{Seed: seed, Hosts: 3 + r.IntN(38), Domains: 1 + r.IntN(6), Locations: 1 + r.IntN(4),
		Emergency: []float64{-1, 0.2, 0.5}[r.IntN(3)], Loose: []float64{-1, 0.1}[r.IntN(2)],
		HostVCPUs: []int{2, 4, 8, 0}[r.IntN(4)]}
	wc := sim.WorkloadConfig{Seed: seed, Requests: 10 + r.IntN(51), Mix: sim.MixRandom, Projects: 2 + r.IntN(5)}
	driver := "acaas"
	if r.IntN(10) < 3 {
		driver = []string{"filter", "simple", "chance"}[r.IntN(3)]
	}
	return cc, wc, driver
}

// outcome sums the cases of a property test.
type outcome struct {
	cases, placed, failed int
	missed                []string // failed requests a host could have taken
}

// checkCase places a case's requests through the store from several
// workers and verifies the final state: any violation but a missed host
// fails the test at once; missed hosts are counted.
func checkCase(t *testing.T, o *outcome, seed uint64, store sim.StateReader, cluster *sim.Cluster, servers []*trustack.Server, driver string) {
	t.Helper()
	placements, _, _ := sim.Place(ctx, newScheduler(t, store, seed, driver), servers, 4)
	st, err := sim.ReadState(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	var hard []string
	for _, v := range sim.Verify(st, placements, driver) {
		if v.Kind == sim.ViolationMissed {
			o.missed = append(o.missed, fmt.Sprintf("seed %d, driver %s: %s", seed, driver, v.Message))
		} else {
			hard = append(hard, v.String())
		}
	}
	if len(hard) > 0 {
		t.Fatalf("seed %d (%d hosts, %d domains, %d requests, driver %s): %d violations, want none:\n%s",
			seed, len(cluster.Hosts), len(cluster.Domains), len(servers), driver, len(hard), strings.Join(hard, "\n"))
	}
	o.cases++
	for _, p := range placements {
		if p.Host == "" {
			o.failed++
		} else {
			o.placed++
		}
	}
}

// report logs the outcome and fails the test if a request failed that a
// host could have taken.
func (o *outcome) report(t *testing.T, store string) {
	t.Helper()
	t.Logf("%d cases, %s: %d requests placed, %d failed", o.cases, store, o.placed, o.failed)
	if len(o.missed) > 0 {
		t.Errorf("%d of %d failed requests had a host that could take them, want none; the first:\n%s",
			len(o.missed), o.failed, strings.Join(o.missed[:min(5, len(o.missed))], "\n"))
	}
	if o.placed == 0 || o.failed == 0 {
		t.Errorf("%d placed, %d failed: want both, or the cases test little", o.placed, o.failed)
	}
}

// TestPlacementsMeetRequirements places random request streams on random
// clusters, concurrently, and checks what every placement must be: its
// host meets its requirements, no host is over capacity, no host runs two
// projects either's isolation keeps apart, and a request that failed says
// "No valid host was found." and had no host that could take it.
func TestPlacementsMeetRequirements(t *testing.T) {
	cases := 3000
	if testing.Short() {
		cases = 300
	}
	var o outcome
	for seed := range uint64(cases) {
		cc, wc, driver := randomCase(seed)
		cluster := sim.NewCluster(cc)
		servers, err := sim.NewWorkload(cluster, wc)
		if err != nil {
			t.Fatal(err)
		}
		checkCase(t, &o, seed, sim.NewStore(cluster.Hosts, cluster.Topology()), cluster, servers, driver)
	}
	o.report(t, "in memory")
}

// TestPlacementsMeetRequirementsSQLite is the property test against the
// real store, whose claims check room and isolation in one transaction.
func TestPlacementsMeetRequirementsSQLite(t *testing.T) {
	cases := 50
	if testing.Short() {
		cases = 10
	}
	var o outcome
	for i := range uint64(cases) {
		seed := 1_000_000 + i
		cc, wc, driver := randomCase(seed)
		cluster := sim.NewCluster(cc)
		servers, err := sim.NewWorkload(cluster, wc)
		if err != nil {
			t.Fatal(err)
		}
		checkCase(t, &o, seed, openSQLite(t, cluster, servers), cluster, servers, driver)
	}
	o.report(t, "SQLite")
}

// openSQLite returns a new SQLite store holding the cluster, with the
// servers created and not yet placed.
func openSQLite(t testing.TB, c *sim.Cluster, servers []*trustack.Server) *sqlstore.DB {
	t.Helper()
	db, err := sqlstore.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for _, l := range c.Locations {
		if err := db.CreateLocation(ctx, &l); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range c.Distances {
		if err := db.SetDistance(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	// Collaborators must exist first: create every domain, then name them.
	for _, d := range c.Domains {
		bare := *d
		bare.Collaborators = nil
		if err := db.CreatePhysicalDomain(ctx, &bare); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range c.Domains {
		if len(d.Collaborators) == 0 {
			continue
		}
		if _, err := db.UpdatePhysicalDomain(ctx, d.Name, func(s *trustack.PhysicalDomain) error {
			s.Collaborators = d.Collaborators
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	for _, h := range c.Hosts {
		if _, err := db.RegisterHost(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range servers {
		if err := db.CreateServers(ctx, []*trustack.Server{s}, trustack.NewPorts{}, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

// coResidence is one run of the attack: a victim boots a server, then an
// attacker boots 200 in 10 bursts of 20 requests, at once (concurrent) or
// one after another. It returns how many of the attacker's servers share
// the victim's host.
func coResidence(t testing.TB, seed uint64, victimIsolation string, concurrent bool, sqlite bool) int {
	t.Helper()
	cluster := sim.NewCluster(sim.ClusterConfig{Seed: seed, Hosts: 50, Domains: 1, Locations: 1, Emergency: -1, Loose: -1, HostVCPUs: 16})
	small := sim.Flavors[1].Flavor
	victim := &trustack.Server{ID: "victim-0", ProjectID: "victim", Flavor: small, Requirements: trustack.Requirements{
		{Entry: "isolation", Kind: trustack.KindIsolation, Value: victimIsolation, Source: trustack.FromProject}}}
	var attackers []*trustack.Server
	for i := range 200 {
		attackers = append(attackers, &trustack.Server{ID: fmt.Sprintf("attacker-%03d", i), ProjectID: "attacker", Flavor: small})
	}
	var store sim.StateReader = sim.NewStore(cluster.Hosts, cluster.Topology())
	if sqlite {
		store = openSQLite(t, cluster, append([]*trustack.Server{victim}, attackers...))
	}
	s := newScheduler(t, store, seed, "acaas")
	h, err := s.Place(ctx, scheduler.Request{Server: victim})
	if err != nil {
		t.Fatalf("seed %d: place the victim: %v", seed, err)
	}
	var placements []sim.Placement
	for burst := range slices.Chunk(attackers, 20) {
		workers := 1
		if concurrent {
			workers = len(burst)
		}
		got, _, _ := sim.Place(ctx, s, burst, workers)
		placements = append(placements, got...)
	}
	n := 0
	for _, p := range placements {
		if p.Err != nil {
			t.Fatalf("seed %d: place %s: %v", seed, p.Server.ID, p.Err)
		}
		if p.Host == h.ID {
			n++
		}
	}
	st, err := sim.ReadState(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	if v := sim.Verify(st, append(placements, sim.Placement{Server: victim, Host: h.ID}), "acaas"); len(v) > 0 {
		t.Fatalf("seed %d: %d violations, want none; the first: %s", seed, len(v), v[0])
	}
	return n
}

// uniformCoResidence is the attack against a placer that puts each server
// on a host drawn uniformly among those with room: how many of the
// attacker's servers share the victim's host.
func uniformCoResidence(seed uint64) int {
	r := rand.New(rand.NewPCG(seed, 99))
	const hosts, vcpus = 50, 16
	used := make([]int, hosts)
	place := func() int {
		var room []int
		for i, u := range used {
			if u < vcpus {
				room = append(room, i)
			}
		}
		i := room[r.IntN(len(room))]
		used[i]++ // m1.small: 1 vCPU, and 4 GiB a vCPU leaves memory to spare
		return i
	}
	victim := place()
	n := 0
	for range 200 {
		if place() == victim {
			n++
		}
	}
	return n
}

// rates is co-residence over runs: the share of runs with at least one
// attacker server on the victim's host, and the mean number there, each
// with its standard error.
type rates struct {
	any, anySE, mean, meanSE float64
}

func measure(counts []int) rates {
	var any, sum, sq float64
	for _, n := range counts {
		if n > 0 {
			any++
		}
		sum += float64(n)
		sq += float64(n * n)
	}
	k := float64(len(counts))
	r := rates{any: any / k, mean: sum / k}
	r.anySE = math.Sqrt(r.any * (1 - r.any) / k)
	r.meanSE = math.Sqrt((sq/k - r.mean*r.mean) / k)
	return r
}

func (r rates) String() string {
	return fmt.Sprintf("%.3f±%.3f of runs with co-residence, %.2f±%.2f attacker servers on the victim's host", r.any, r.anySE, r.mean, r.meanSE)
}

// TestCoResidence is the co-residence attack: a victim boots a server,
// then an attacker boots 200 right after, in bursts of 20 at once, on 50
// hosts of one domain. A victim asking for exclusive hosts shares its
// host with the attacker never, against the real store and in memory. A
// victim that shares is no likelier to get the attacker as a neighbour
// under ACaaS than under uniformly random placement.
func TestCoResidence(t *testing.T) {
	runs, sqliteRuns, stats := 200, 2, 500
	if testing.Short() {
		runs, sqliteRuns, stats = 20, 1, 200
	}
	t.Run("exclusive/sqlite", func(t *testing.T) {
		for seed := range uint64(sqliteRuns) {
			if n := coResidence(t, seed, "exclusive", true, true); n != 0 {
				t.Fatalf("seed %d: %d attacker servers on the exclusive victim's host, want 0", seed, n)
			}
		}
	})
	t.Run("exclusive/memory", func(t *testing.T) {
		for seed := range uint64(runs) {
			if n := coResidence(t, seed, "exclusive", true, false); n != 0 {
				t.Fatalf("seed %d: %d attacker servers on the exclusive victim's host, want 0", seed, n)
			}
		}
		t.Logf("%d runs of 200 attacker servers in bursts of 20: none on the victim's host", runs)
	})
	t.Run("shared", func(t *testing.T) {
		const hosts, attackers = 50, 200
		p := 1.0 / hosts
		t.Logf("analytic, uniform placement: %.3f of runs with co-residence, %.2f attacker servers on the victim's host",
			1-math.Pow(1-p, attackers), attackers*p)
		uniform, sequential, concurrent := make([]int, stats), make([]int, stats), make([]int, stats)
		for i := range stats {
			seed := uint64(i)
			uniform[i] = uniformCoResidence(seed)
			sequential[i] = coResidence(t, seed, "shared", false, false)
			concurrent[i] = coResidence(t, seed, "shared", true, false)
		}
		u := measure(uniform)
		t.Logf("uniform random placer, %d runs: %s", stats, u)
		for _, tc := range []struct {
			name   string
			counts []int
			slack  float64 // standard errors of the difference
		}{
			// One request at a time: the same numbers every run.
			{"acaas, bursts one request at a time", sequential, 3},
			// Bursts at once interleave differently each run: the wider
			// slack keeps chance from failing the test (p < 1e-6).
			{"acaas, bursts of 20 at once", concurrent, 5},
		} {
			a := measure(tc.counts)
			t.Logf("%s, %d runs: %s", tc.name, stats, a)
			if d, se := a.mean-u.mean, math.Hypot(a.meanSE, u.meanSE); d > tc.slack*se {
				t.Errorf("%s: %.2f attacker servers on the victim's host, uniform placement %.2f: more by %.1f standard errors, want at most %.0f",
					tc.name, a.mean, u.mean, d/se, tc.slack)
			}
			if d, se := a.any-u.any, math.Hypot(a.anySE, u.anySE); d > tc.slack*se && d > 0.01 {
				t.Errorf("%s: %.3f of runs with co-residence, uniform placement %.3f: more by %.1f standard errors, want at most %.0f",
					tc.name, a.any, u.any, d/se, tc.slack)
			}
		}
	})
}
