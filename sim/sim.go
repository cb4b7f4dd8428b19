// Package sim simulates ACaaS placement at scale, in memory: it generates
// a cluster (hosts in physical domains at locations, collaborators,
// emergency domains, trust levels, capabilities) and a workload of
// servers with requirements, replays the workload through the scheduler
// over an in-memory store with the database's claim semantics, measures
// placements per second and latency, and verifies the final state
// independently of the scheduler: every placed server's requirements met,
// no host over capacity, no two projects together that either's isolation
// excludes, and no failed request that a host could have taken.
//
// It serves `trustack sim`, `make bench` and the property tests of the
// scheduler's guarantees.
package sim

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"regexp"
	"runtime"
	"runtime/pprof"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/internal/stats"
	"github.com/trustack/trustack/scheduler"
)

// Config is a simulation run; zero values take the defaults of
// ClusterConfig and WorkloadConfig.
type Config struct {
	Seed      uint64
	Hosts     int
	Domains   int
	Locations int
	Requests  int
	Mix       string
	Projects  int
	// Workers is how many goroutines place servers at once (default 1).
	Workers int
	// Driver is the scheduler driver (default "acaas").
	Driver string
	// CPUProfile, if not nil, gets a CPU profile of the placements.
	CPUProfile io.Writer `json:"-"`
}

// Report is what a run measured and found.
type Report struct {
	Config   Config
	Hosts    int
	Domains  int
	Requests int
	Placed   int
	Failed   int
	// Elapsed is the time the placements took, from the first request to
	// the last answer, with the store's first read of the hosts.
	Elapsed             time.Duration
	PlacementsPerSecond float64 // requests answered (placed or not) per second
	P50, P99, Max       time.Duration
	// Failures counts failed requests by reason: the error message with
	// its numbers and names of requirement values masked.
	Failures map[string]int
	// VCPUUtilisation and RAMUtilisation are the shares of the cluster's
	// capacity claimed at the end.
	VCPUUtilisation float64
	RAMUtilisation  float64
	// Violations are what Verify found; none if the scheduler kept its
	// guarantees.
	Violations []Violation
}

// Run generates the cluster and workload of cfg, places the workload with
// cfg.Workers concurrent workers through a scheduler over a Store, and
// verifies the outcome.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Workers <= 0 {
		cfg.Workers = 1
	}
	if cfg.Driver == "" {
		cfg.Driver = "acaas"
	}
	cluster := NewCluster(ClusterConfig{Seed: cfg.Seed, Hosts: cfg.Hosts, Domains: cfg.Domains, Locations: cfg.Locations})
	servers, err := NewWorkload(cluster, WorkloadConfig{Seed: cfg.Seed, Requests: cfg.Requests, Mix: cfg.Mix, Projects: cfg.Projects})
	if err != nil {
		return nil, err
	}
	store := NewStore(cluster.Hosts, cluster.Topology())
	sched, err := scheduler.New(store, scheduler.Options{Driver: cfg.Driver, Rand: rand.New(rand.NewPCG(cfg.Seed, 0x5c4ed))})
	if err != nil {
		return nil, err
	}
	if cfg.CPUProfile != nil {
		if err := pprof.StartCPUProfile(cfg.CPUProfile); err != nil {
			return nil, fmt.Errorf("profile: %w", err)
		}
	}
	placements, latencies, elapsed := Place(ctx, sched, servers, cfg.Workers)
	if cfg.CPUProfile != nil {
		pprof.StopCPUProfile()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	st, err := ReadState(ctx, store)
	if err != nil {
		return nil, err
	}

	rep := &Report{Config: cfg, Hosts: len(cluster.Hosts), Domains: len(cluster.Domains), Requests: len(servers),
		Elapsed: elapsed, Failures: map[string]int{}}
	rep.PlacementsPerSecond = float64(len(servers)) / elapsed.Seconds()
	if len(latencies) > 0 {
		rep.P50, rep.P99, rep.Max = stats.Percentile(latencies, 0.50), stats.Percentile(latencies, 0.99), slices.Max(latencies)
	}
	var usedVCPUs, usedRAM float64
	for _, p := range placements {
		if p.Host == "" {
			rep.Failed++
			rep.Failures[reason(p.Err)]++
			continue
		}
		rep.Placed++
		usedVCPUs += float64(p.Server.Flavor.VCPUs)
		usedRAM += float64(p.Server.Flavor.RAM)
	}
	vcpus, ram := cluster.Capacity()
	rep.VCPUUtilisation, rep.RAMUtilisation = usedVCPUs/vcpus, usedRAM/ram
	rep.Violations = Verify(st, placements, cfg.Driver)
	return rep, nil
}

// Placer is what Place needs of a scheduler.
type Placer interface {
	Place(ctx context.Context, req scheduler.Request) (*trustack.Host, error)
}

// Place asks s to place each server, from workers goroutines taking them
// in order, and returns the placements in the servers' order, the latency
// of each Place call (unordered) and how long it all took.
func Place(ctx context.Context, s Placer, servers []*trustack.Server, workers int) ([]Placement, []time.Duration, time.Duration) {
	placements := make([]Placement, len(servers))
	latencies := make([]time.Duration, len(servers))
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range max(workers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(servers) || ctx.Err() != nil {
					return
				}
				t := time.Now()
				h, err := s.Place(ctx, scheduler.Request{Server: servers[i]})
				latencies[i] = time.Since(t)
				placements[i] = Placement{Server: servers[i], Err: err}
				if err == nil {
					placements[i].Host = h.ID
				}
			}
		}()
	}
	wg.Wait()
	return placements, latencies, time.Since(start)
}

// StateReader is what ReadState needs of a store: the scheduler's view of
// it and its claims.
type StateReader interface {
	scheduler.Hosts
	Claims(ctx context.Context, hostID string) ([]trustack.Claim, error)
}

// ReadState reads the hosts, claims and topology of a store.
func ReadState(ctx context.Context, s StateReader) (State, error) {
	var st State
	var err error
	if st.Hosts, err = s.Hosts(ctx); err != nil {
		return st, fmt.Errorf("read hosts: %w", err)
	}
	if st.Claims, err = s.Claims(ctx, ""); err != nil {
		return st, fmt.Errorf("read claims: %w", err)
	}
	if st.Topology, err = s.Topology(ctx); err != nil {
		return st, fmt.Errorf("read the topology: %w", err)
	}
	return st, nil
}

// masked are the parts of a failure's message that vary from one request
// to the next: counts, and the values of requirements.
var masked = regexp.MustCompile(`\d+|=[^ ,]+`)

// reason is a failure's message with what varies masked, so that failures
// of one kind count together.
func reason(err error) string {
	return masked.ReplaceAllStringFunc(trustack.ErrorMessage(err), func(s string) string {
		if s[0] == '=' {
			return "=…"
		}
		return "N"
	})
}

// TopFailures returns the failure reasons, most frequent first, at most n.
func (r *Report) TopFailures(n int) []string {
	out := sortedKeys(r.Failures)
	sort.SliceStable(out, func(i, j int) bool { return r.Failures[out[i]] > r.Failures[out[j]] })
	return out[:min(n, len(out))]
}

// WriteText writes the report as a table for people to read.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	c := r.Config
	fmt.Fprintf(tw, "cluster\t%d hosts, %d domains, seed %d\n", r.Hosts, r.Domains, c.Seed)
	fmt.Fprintf(tw, "workload\t%d requests, mix %s, %d workers, driver %s, GOMAXPROCS %d\n", r.Requests, c.Mix, c.Workers, c.Driver, runtime.GOMAXPROCS(0))
	fmt.Fprintf(tw, "placed\t%d (%d failed)\n", r.Placed, r.Failed)
	fmt.Fprintf(tw, "throughput\t%.0f placements/s (%v in all)\n", r.PlacementsPerSecond, r.Elapsed.Round(time.Millisecond))
	fmt.Fprintf(tw, "latency\tp50 %v, p99 %v, max %v\n", r.P50.Round(time.Microsecond), r.P99.Round(time.Microsecond), r.Max.Round(time.Microsecond))
	fmt.Fprintf(tw, "utilisation\t%.1f%% of vCPUs, %.1f%% of RAM\n", 100*r.VCPUUtilisation, 100*r.RAMUtilisation)
	kinds := map[string]int{}
	for _, v := range r.Violations {
		kinds[v.Kind]++
	}
	fmt.Fprintf(tw, "violations\t%d", len(r.Violations))
	for _, k := range sortedKeys(kinds) {
		fmt.Fprintf(tw, ", %d %s", kinds[k], k)
	}
	fmt.Fprintln(tw)
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, v := range r.Violations[:min(len(r.Violations), 20)] {
		fmt.Fprintf(w, "  violation: %s\n", v)
	}
	if r.Failed > 0 {
		fmt.Fprintln(w, "failures, by reason:")
		for _, f := range r.TopFailures(10) {
			fmt.Fprintf(w, "  %6d  %s\n", r.Failures[f], f)
		}
	}
	return nil
}
