// Command attestbench measures attestation at scale across several
// controllers: each runs its verifier and membership as `trustack server`
// does, on one store (PostgreSQL by default) and a bus whose nodes form
// one NATS cluster, one node per controller. Of the hosts, one in every
// -real-every is real: an swtpm and the agent's DC-C, registered through
// the registration protocol, its quotes verified; the others are
// simulated: their records are copies of a real host's, an in-process
// responder answers their evidence requests at once, and the verifier
// takes that evidence as it comes. Every round is otherwise whole: a
// nonce, a request and its answer over the bus, the record's transaction
// in the store.
//
// It reports the attestations per second the controllers sustain against
// the rate the interval asks for (hosts / interval), per controller, the
// longest time a host went between two rounds, and the process's CPU per
// attestation; then it kills a controller (its verifier and its bus node
// stop, its lease is left to expire) and reports the time until each of
// its hosts got a verdict from another. Run by `make bench-attest`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/attest"
	"github.com/trustack/trustack/bus"
	"github.com/trustack/trustack/cluster"
	"github.com/trustack/trustack/dcc"
	"github.com/trustack/trustack/internal/pgtest"
	"github.com/trustack/trustack/sqlstore"
	"github.com/trustack/trustack/tpm"
	"github.com/trustack/trustack/wire"
)

func main() {
	hosts := flag.Int("hosts", 10000, "how many hosts")
	controllers := flag.Int("controllers", 3, "how many controllers")
	realEvery := flag.Int("real-every", 100, "one host in this many is real (swtpm, DC-C, quotes verified)")
	interval := flag.Duration("interval", 60*time.Second, "attestation interval ([attestation] interval)")
	rounds := flag.Int("rounds", 2, "how many intervals to measure")
	backend := flag.String("store", "postgres", "store: postgres or sqlite")
	flag.Parse()
	defer pgtest.Stop()
	if err := run(*hosts, *controllers, *realEvery, *interval, *rounds, *backend); err != nil {
		fmt.Fprintln(os.Stderr, "attestbench:", err)
		pgtest.Stop()
		os.Exit(1)
	}
}

func run(hosts, controllers, realEvery int, interval time.Duration, rounds int, backend string) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir, err := os.MkdirTemp("", "attestbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	db, err := openStore(ctx, backend, dir)
	if err != nil {
		return err
	}
	defer db.Close()
	fmt.Printf("attestation at scale: %d hosts (1 in %d real), %d controllers on %s, interval %s, %d CPUs, %s\n",
		hosts, realEvery, controllers, backend, interval, runtime.NumCPU(), time.Now().Format(time.DateOnly))

	ca, err := tpm.Manufacture(ctx, filepath.Join(dir, "tpm"), filepath.Join(dir, "ca"))
	if err != nil {
		return err
	}
	roots, intermediates, err := ca.Pools()
	if err != nil {
		return err
	}
	rec := newRecorder(interval)
	ctls, err := startControllers(ctx, db, controllers, interval, attest.Options{Interval: interval, Roots: roots, Intermediates: intermediates}, rec)
	if err != nil {
		return err
	}
	defer func() {
		for _, c := range ctls {
			c.stop()
		}
	}()
	var urls []string
	for _, c := range ctls {
		urls = append(urls, c.node.ClientURL())
	}

	start := time.Now()
	real := (hosts + realEvery - 1) / realEvery
	if err := startRealHosts(ctx, dir, real, strings.Join(urls, ",")); err != nil {
		return err
	}
	fmt.Printf("%d real hosts registered in %s\n", real, time.Since(start).Round(time.Millisecond))
	start = time.Now()
	simConn, err := bus.Connect(ctls[0].node.ClientURL(), "simulated-hosts", bus.Trusted(ctls[0].node), bus.Logger(slog.New(slog.DiscardHandler)))
	if err != nil {
		return err
	}
	defer simConn.Close()
	if err := addSimulatedHosts(ctx, db, simConn, hosts-real); err != nil {
		return err
	}
	fmt.Printf("%d simulated hosts added in %s\n", hosts-real, time.Since(start).Round(time.Millisecond))

	// Every host attested once (the verifiers take the added hosts within
	// an interval, and attest each within the next), then a whole
	// interval more to settle.
	if err := waitFor(3*interval, "every host attested", func() bool { return rec.hosts() == hosts }); err != nil {
		return err
	}
	time.Sleep(interval)

	cpu0, counts0, t0 := cpuTime(), rec.counts(), time.Now()
	rec.resetGaps()
	rec.realChecks.Store(0)
	time.Sleep(time.Duration(rounds) * interval)
	cpu1, counts1, elapsed := cpuTime(), rec.counts(), time.Since(t0)
	total := 0
	fmt.Printf("\n%-12s %14s\n", "controller", "attestations/s")
	for i, c := range ctls {
		n := counts1[i] - counts0[i]
		total += n
		fmt.Printf("%-12s %14.1f\n", c.name, float64(n)/elapsed.Seconds())
	}
	rate := float64(total) / elapsed.Seconds()
	want := float64(hosts) / interval.Seconds()
	fmt.Printf("%-12s %14.1f  (the interval asks for %.1f: %.0f%%)\n", "all", rate, want, 100*rate/want)
	fmt.Printf("real quotes verified: %.1f/s\n", float64(rec.realChecks.Load())/elapsed.Seconds())
	gap, late := rec.maxGap()
	fmt.Printf("longest time between two rounds of a host: %s (%.2f intervals); %d hosts went more than 1.5 intervals\n",
		gap.Round(time.Millisecond), gap.Seconds()/interval.Seconds(), late)
	fmt.Printf("CPU: %.2f ms per attestation (the whole process: controllers, bus, simulated and real agents' side; the store %s)\n",
		float64((cpu1-cpu0).Microseconds())/1000/float64(total), storeCPU(backend))

	// A controller dies.
	dead := ctls[len(ctls)-1]
	orphans := rec.hostsOf(len(ctls) - 1)
	killed := rec.death()
	dead.stop()
	if err := waitFor(3*interval, "the dead controller's hosts attested by others", func() bool { return rec.takenOver(orphans, killed) }); err != nil {
		return err
	}
	worst, gapWorst := rec.reshard(orphans, killed)
	fmt.Printf("\ncontroller %s killed with %d hosts: every one attested by another within %s of its death; the longest a host went without a round: %s (%.2f intervals)\n",
		dead.name, len(orphans), worst.Round(time.Millisecond), gapWorst.Round(time.Millisecond), gapWorst.Seconds()/interval.Seconds())
	return nil
}

// openStore opens a new store of the backend.
func openStore(ctx context.Context, backend, dir string) (*sqlstore.DB, error) {
	switch backend {
	case "postgres":
		dsn, _, err := pgtest.NewDatabase()
		if err != nil {
			return nil, err
		}
		return sqlstore.Open(ctx, dsn)
	case "sqlite":
		return sqlstore.Open(ctx, "sqlite://"+filepath.Join(dir, "trustack.db"))
	}
	return nil, fmt.Errorf("unknown store %q", backend)
}

// storeCPU says whether the store's CPU is in the process's.
func storeCPU(backend string) string {
	if backend == "sqlite" {
		return "included"
	}
	return "not included"
}

// controller is one controller's verifier and membership, on its own bus
// node.
type controller struct {
	name   string
	node   *bus.Server
	conn   *bus.Conn
	ver    *attest.Service
	cancel context.CancelFunc
	done   sync.WaitGroup
	once   sync.Once
}

// stop stops the controller as a crash would: its verifier and bus node
// stop, its lease is left to expire.
func (c *controller) stop() {
	c.once.Do(func() {
		c.cancel()
		c.done.Wait()
		c.ver.Wait()
		c.conn.Close()
		c.node.Shutdown()
	})
}

// startControllers starts n controllers over db, their bus nodes one
// cluster, each verifier with opts and a check that rec sees.
func startControllers(ctx context.Context, db *sqlstore.DB, n int, interval time.Duration, opts attest.Options, rec *recorder) ([]*controller, error) {
	var ctls []*controller
	var routes []string
	quiet := slog.New(slog.DiscardHandler)
	for i := range n {
		c := &controller{name: fmt.Sprintf("ctl-%d", i+1)}
		var err error
		c.node, err = bus.Serve(bus.ServerConfig{Host: "127.0.0.1", Logger: quiet,
			Cluster: &bus.ClusterConfig{Host: "127.0.0.1", Routes: routes, Secret: "attestbench cluster secret"},
			Authenticate: func(cr bus.Credentials) (bus.Grant, bool) {
				if c.ver == nil {
					return bus.Grant{}, false
				}
				return c.ver.Authenticate(cr)
			}})
		if err != nil {
			return nil, err
		}
		routes = append(routes, c.node.ClusterAddr())
		if c.conn, err = bus.Connect(c.node.ClientURL(), c.name, bus.Trusted(c.node), bus.Logger(quiet)); err != nil {
			return nil, err
		}
		run, cancel := context.WithCancel(ctx)
		c.cancel = cancel
		m, err := cluster.Join(run, db, c.name, cluster.Options{TTL: interval / 2, Changed: func() {
			if c.ver != nil {
				c.ver.Reshard()
			}
		}})
		if err != nil {
			return nil, err
		}
		o := opts
		o.Shard, o.Name, o.Check = m, c.name, rec.check(i)
		o.Disconnect = func(user string) { c.node.Disconnect(user) }
		c.ver = attest.New(db, noHosts{}, noEnforcer{}, c.conn, o)
		c.done.Add(1)
		go func() { defer c.done.Done(); m.Run(run) }()
		if err := c.ver.Start(run); err != nil {
			return nil, err
		}
		ctls = append(ctls, c)
	}
	return ctls, nil
}

// startRealHosts starts n real hosts: each an swtpm on a copy of the TPM
// manufactured in dir/tpm, and a DC-C that registers through the
// verifiers and answers their evidence requests on the bus at urls.
func startRealHosts(ctx context.Context, dir string, n int, urls string) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	names := make(chan int)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range names {
				errs <- startRealHost(ctx, dir, fmt.Sprintf("real-%04d", i), urls, exe)
			}
		}()
	}
	for i := range n {
		names <- i
	}
	close(names)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func startRealHost(ctx context.Context, dir, name, urls, measured string) error {
	hostDir := filepath.Join(dir, name)
	if err := tpm.Copy(filepath.Join(dir, "tpm"), hostDir); err != nil {
		return err
	}
	addr, _, err := tpm.Start(ctx, hostDir)
	if err != nil {
		return err
	}
	d, err := dcc.Open(dcc.Config{Host: name, Dir: hostDir, TPM: addr, KernelLog: filepath.Join(hostDir, "no-kernel-log"), Files: []string{measured}})
	if err != nil {
		return err
	}
	conn, err := d.Join(ctx, func(opts ...bus.Option) (*bus.Conn, error) {
		return bus.Connect(urls, name, append(opts, bus.Logger(slog.New(slog.DiscardHandler)))...)
	})
	if err != nil {
		return fmt.Errorf("%s registers: %w", name, err)
	}
	_, err = d.Serve(conn)
	return err
}

// addSimulatedHosts records n simulated hosts, copies of the record of
// host real-0000, each answered on conn.
func addSimulatedHosts(ctx context.Context, db *sqlstore.DB, conn *bus.Conn, n int) error {
	model, err := db.HostAttestation(ctx, "real-0000")
	if err != nil {
		return err
	}
	for i := range n {
		name := fmt.Sprintf("sim-%05d", i)
		if _, err := wire.ServeAttester(conn, name, simulated{}); err != nil {
			return err
		}
		_, err := db.UpdateHostAttestation(ctx, name, func(*trustack.HostAttestation) (*trustack.HostAttestation, error) {
			r := *model
			r.Host, r.CID, r.Verdict, r.FailingSince = name, name+"-cid", trustack.Verdict{}, time.Time{}
			return &r, nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// simulated is a simulated host's agent: its evidence comes at once.
type simulated struct{}

func (simulated) Evidence(_ context.Context, req wire.EvidenceRequest) (wire.EvidenceReply, error) {
	return wire.EvidenceReply{Evidence: trustack.Evidence{Nonce: req.Nonce}}, nil
}

func (simulated) Revoked(wire.Notice) {}

// noHosts is compute without hosts: no host is in a domain, so none has
// a white-list.
type noHosts struct{}

func (noHosts) HostByName(_ context.Context, name string) (*trustack.Host, error) {
	return &trustack.Host{Name: name}, nil
}

func (noHosts) PhysicalDomain(_ context.Context, name string) (*trustack.PhysicalDomain, error) {
	return nil, trustack.Errorf(trustack.ENOTFOUND, "no domain %s", name)
}

// noEnforcer takes the verdicts without applying them.
type noEnforcer struct{}

func (noEnforcer) ApplyAttestation(context.Context, string, string, string) error { return nil }
func (noEnforcer) HostServers(context.Context, string) (int, error)               { return 0, nil }

// recorder sees every round: by which controller, when.
type recorder struct {
	interval   time.Duration
	realChecks atomic.Int64

	mu     sync.Mutex
	rounds []int // by controller
	last   map[string]round
	gap    time.Duration    // the longest between two rounds of a host since resetGaps
	late   map[string]bool  // hosts that went more than 1.5 intervals since resetGaps
	first  map[string]round // each host's first round since a controller's death, by another
	killed time.Time
}

type round struct {
	by int
	at time.Time
}

func newRecorder(interval time.Duration) *recorder {
	return &recorder{interval: interval, last: map[string]round{}, late: map[string]bool{}, first: map[string]round{}}
}

// check is controller i's check of evidence: real hosts' quotes are
// verified, simulated hosts' evidence taken as it comes.
func (r *recorder) check(i int) func(string, trustack.Evidence, []byte, attest.HostState, *trustack.Whitelist) (trustack.Verdict, attest.HostState) {
	return func(host string, ev trustack.Evidence, nonce []byte, st attest.HostState, wl *trustack.Whitelist) (trustack.Verdict, attest.HostState) {
		r.saw(i, host)
		if strings.HasPrefix(host, "sim-") {
			return trustack.Verdict{State: trustack.VerdictTrusted}, st
		}
		r.realChecks.Add(1)
		return attest.Verify(ev, nonce, st, wl)
	}
}

func (r *recorder) saw(i int, host string) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for len(r.rounds) <= i {
		r.rounds = append(r.rounds, 0)
	}
	r.rounds[i]++
	if prev, ok := r.last[host]; ok {
		gap := now.Sub(prev.at)
		r.gap = max(r.gap, gap)
		if gap > r.interval*3/2 {
			r.late[host] = true
		}
	}
	r.last[host] = round{i, now}
	if _, ok := r.first[host]; !ok && !r.killed.IsZero() {
		r.first[host] = round{i, now}
	}
}

func (r *recorder) hosts() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.last)
}

func (r *recorder) counts() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.rounds)
}

func (r *recorder) resetGaps() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gap = 0
	clear(r.late)
}

// maxGap returns the longest time between two rounds of a host since
// resetGaps, and how many hosts went more than 1.5 intervals.
func (r *recorder) maxGap() (time.Duration, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gap, len(r.late)
}

// hostsOf returns the hosts whose latest round was controller i's, with
// the time of that round.
func (r *recorder) hostsOf(i int) map[string]time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]time.Time{}
	for h, rd := range r.last {
		if rd.by == i {
			out[h] = rd.at
		}
	}
	return out
}

// death records that a controller dies now, and returns the time: each
// host's first round from then on is kept.
func (r *recorder) death() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.killed = time.Now()
	clear(r.first)
	return r.killed
}

// takenOver reports whether every host of orphans had a round since
// killed.
func (r *recorder) takenOver(orphans map[string]time.Time, killed time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for h := range orphans {
		if rd, ok := r.first[h]; !ok || rd.at.Before(killed) {
			return false
		}
	}
	return true
}

// reshard returns the longest time from the death to an orphan's first
// round by another, and the longest an orphan went without a round.
func (r *recorder) reshard(orphans map[string]time.Time, killed time.Time) (afterDeath, gap time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for h, last := range orphans {
		at := r.first[h].at
		afterDeath = max(afterDeath, at.Sub(killed))
		gap = max(gap, at.Sub(last))
	}
	return afterDeath, gap
}

// cpuTime is the CPU time the process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(timeout time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return errors.New(what + ": not within " + timeout.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}
