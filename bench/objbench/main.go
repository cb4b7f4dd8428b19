// Command objbench measures the object store on one machine: a local
// cluster of 4 storage nodes (3 replicas), each node's servers as
// `trustack up` starts them (object, container and account servers with
// their updaters and auditors), the proxy in this process on loopback,
// every byte on the disk under -dir. It reports three things:
//
//  1. Small-object PUTs: -clients clients each PUT -size byte objects (a
//     new name each time) for -duration; PUTs per second, p50 and p99.
//     Then, the disk's bound: -clients goroutines doing the durable write
//     an object server does for a replica (a temporary file written,
//     fsynced, renamed into one of 256 directories, that directory
//     fsynced), three files per object as there are three replicas; and
//     the ratio of the two, whose target is 0.8.
//  2. Large-object GET: one -large-mib object read whole through the
//     proxy, against the same bytes read from a plain file on the same
//     disk; both read once before the timed reads, so that the page
//     cache is warm for both (nothing is dropped).
//  3. Repair: -repair-objects objects of -repair-kib written, one node
//     stopped, its device directory wiped (a replaced disk) and the node
//     started again; then the replicators of its three peers make passes
//     until every object has its 3 copies on its primaries again.
//
// The nodes run without their own object replicators (storage.Config
// with no rings), so that the only replicators are the ones phase 3
// runs. Run by `make bench-objects`; the numbers are only meaningful
// without the race detector, which the report says.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	mrand "math/rand/v2"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/objectstore"
	"github.com/trustack/trustack/objectstore/node"
	"github.com/trustack/trustack/objectstore/object"
	"github.com/trustack/trustack/objectstore/proxy"
	"github.com/trustack/trustack/objectstore/storage"
)

// options are the benchmark's sizes.
type options struct {
	phases        string        // the phases to run: "123" for all
	dir           string        // the parent of the benchmark's data directory
	keep          bool          // keep the data directory
	nodes         int           // storage nodes
	clients       int           // concurrent clients of phase 1, and goroutines of the bound
	size          int           // bytes of each phase 1 object
	containers    int           // containers phase 1 spreads its objects over
	duration      time.Duration // of phase 1, and of the bound
	largeMiB      int           // size of phase 2's object
	reads         int           // timed reads of each in phase 2
	repairObjects int           // objects of phase 3
	repairKiB     int           // size of each
	repairTimeout time.Duration // the longest phase 3 waits
}

func main() {
	var o options
	flag.StringVar(&o.dir, "dir", "/var/tmp", "directory on the disk to measure, under which the benchmark makes (and removes) its own; not tmpfs")
	flag.StringVar(&o.phases, "phases", "123", "phases to run: 1 small PUTs and the disk's bound, 2 large GET, 3 repair")
	flag.BoolVar(&o.keep, "keep", false, "keep the benchmark's data directory")
	flag.IntVar(&o.clients, "clients", 64, "concurrent clients of the small-object PUTs, and goroutines of the disk's bound")
	flag.IntVar(&o.size, "size", 4096, "bytes of each small object")
	flag.IntVar(&o.containers, "containers", 1, "containers the small objects are spread over")
	flag.DurationVar(&o.duration, "duration", 20*time.Second, "duration of the small-object PUTs, and of the disk's bound")
	flag.IntVar(&o.largeMiB, "large-mib", 256, "MiB of the large object")
	flag.IntVar(&o.reads, "reads", 3, "timed reads of the large object, each way (the median is reported)")
	flag.IntVar(&o.repairObjects, "repair-objects", 2000, "objects written before a node's device is wiped")
	flag.IntVar(&o.repairKiB, "repair-kib", 64, "KiB of each of those objects")
	flag.DurationVar(&o.repairTimeout, "repair-timeout", 10*time.Minute, "the longest the repair may take")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	o.nodes = 4
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "objbench:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if err := run(context.Background(), o, os.Stdout); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "objbench:", err)
		os.Exit(1)
	}
}

// result is what run measured, for the test.
type result struct {
	puts, boundFiles int
	restored         int
}

func run(ctx context.Context, o options, out io.Writer) error {
	_, err := measure(ctx, o, out)
	return err
}

func measure(ctx context.Context, o options, out io.Writer) (result, error) {
	var res result
	if err := os.MkdirAll(o.dir, 0o750); err != nil {
		return res, err
	}
	dir, err := os.MkdirTemp(o.dir, "objbench-")
	if err != nil {
		return res, err
	}
	if !o.keep {
		defer os.RemoveAll(dir)
	}
	fsType := filesystem(dir)
	fmt.Fprintf(out, "objbench %s: object store on one machine, %d storage nodes (3 replicas), proxy in process on loopback\n", time.Now().Format(time.DateTime), o.nodes)
	fmt.Fprintf(out, "  machine: %d cores, GOMAXPROCS %d, %s, load average at start %s\n", runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), loadAvg())
	fmt.Fprintf(out, "  data:    %s (%s)\n", dir, fsType)
	if raceEnabled {
		fmt.Fprintln(out, "  race detector: ON — these numbers are not the store's; build without -race to measure")
	} else {
		fmt.Fprintln(out, "  race detector: off")
	}
	if fsType == "tmpfs" {
		fmt.Fprintln(out, "  WARNING: the data directory is on tmpfs: fsync costs nothing, the numbers are not a disk's")
	}

	logs := &countingHandler{}
	if strings.Contains(o.phases, "1") || strings.Contains(o.phases, "2") {
		c, err := startCluster(filepath.Join(dir, "cluster"), o.nodes, slog.New(logs))
		if err != nil {
			return res, err
		}
		defer c.close()
		if strings.Contains(o.phases, "1") {
			if err := c.smallPhase(ctx, o, dir, out, &res); err != nil {
				return res, err
			}
		}
		if strings.Contains(o.phases, "2") {
			if err := c.largePhase(ctx, o, dir, out); err != nil {
				return res, err
			}
		}
		c.close()
	}
	if strings.Contains(o.phases, "3") {
		// A cluster of its own, so that the wiped node holds only these
		// objects.
		c, err := startCluster(filepath.Join(dir, "repair"), o.nodes, slog.New(logs))
		if err != nil {
			return res, err
		}
		defer c.close()
		if err := c.repairPhase(ctx, o, out, &res); err != nil {
			return res, err
		}
	}

	fmt.Fprintf(out, "\nnode and proxy logs: %d warnings, %d errors", logs.warn.Load(), logs.err.Load())
	if first := logs.firstMessages(); len(first) > 0 {
		fmt.Fprintf(out, "; first: %s", strings.Join(first, "; "))
	}
	fmt.Fprintln(out)
	fmt.Fprintf(out, "MB = 10^6 bytes; load average at end %s\n", loadAvg())
	return res, nil
}

// smallPhase is phase 1: small-object PUTs, and the disk's bound.
func (c *cluster) smallPhase(ctx context.Context, o options, dir string, out io.Writer, res *result) error {
	fmt.Fprintf(out, "\n1. Small-object PUTs: %d B objects, %d clients, %s, %d container(s)\n", o.size, o.clients, o.duration, o.containers)
	for i := range o.containers {
		if err := c.put(ctx, fmt.Sprintf("/small%d", i), nil); err != nil {
			return err
		}
	}
	waits0 := timeWait()
	cpu0 := cpuTime()
	puts, err := c.smallPuts(ctx, o)
	if err != nil {
		return err
	}
	res.puts = len(puts.lat)
	putRate := float64(len(puts.lat)) / puts.elapsed.Seconds()
	fmt.Fprintf(out, "   through the proxy: %d PUTs in %.1f s = %.0f PUTs/s, p50 %s, p99 %s, %d failed\n",
		len(puts.lat), puts.elapsed.Seconds(), putRate, pct(puts.lat, 50), pct(puts.lat, 99), puts.failed)
	fmt.Fprintf(out, "   CPU (client, proxy and nodes; their system calls included): %s\n", cpuTime().since(cpu0, len(puts.lat), puts.elapsed, "PUT"))
	fmt.Fprintf(out, "   loopback TCP connections in TIME_WAIT: %d before, %d after\n", waits0, timeWait())
	cpu0 = cpuTime()
	bound, err := diskBound(ctx, filepath.Join(dir, "bound"), o)
	if err != nil {
		return err
	}
	res.boundFiles = len(bound.lat)
	fileRate := float64(len(bound.lat)) / bound.elapsed.Seconds()
	objRate := fileRate / 3
	fmt.Fprintf(out, "   disk's bound (write %d B tmp file, fsync, rename, fsync dir; %d goroutines): %.0f files/s, p50 %s, p99 %s\n",
		o.size, o.clients, fileRate, pct(bound.lat, 50), pct(bound.lat, 99))
	fmt.Fprintf(out, "   CPU: %s\n", cpuTime().since(cpu0, len(bound.lat), bound.elapsed, "file"))
	fmt.Fprintf(out, "   = %.0f objects/s at 3 replicas\n", objRate)
	ratio := putRate / objRate
	verdict := "NOT met"
	if ratio >= 0.8 {
		verdict = "met"
	}
	fmt.Fprintf(out, "   ratio PUTs/s ÷ bound objects/s: %.2f (target ≥ 0.80: %s)\n", ratio, verdict)
	return nil
}

// largePhase is phase 2: a large object's GET against a file's read.
func (c *cluster) largePhase(ctx context.Context, o options, dir string, out io.Writer) error {
	size := int64(o.largeMiB) << 20
	fmt.Fprintf(out, "\n2. Large-object GET: one object of %d MiB, read whole, median of %d reads; page cache warm for both (each read once first, nothing dropped)\n", o.largeMiB, o.reads)
	large, err := c.large(ctx, filepath.Join(dir, "large"), size, o.reads)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "   PUT through the proxy (once, cold): %.0f MB/s\n", large.put)
	fmt.Fprintf(out, "   GET through the proxy: %.0f MB/s\n", large.get)
	fmt.Fprintf(out, "   plain file read:       %.0f MB/s\n", large.file)
	fmt.Fprintf(out, "   ratio: %.2f\n", large.get/large.file)
	return nil
}

// repairPhase is phase 3: a wiped node's repair.
func (c *cluster) repairPhase(ctx context.Context, o options, out io.Writer, res *result) error {
	fmt.Fprintf(out, "\n3. Repair, on a new cluster: %d objects of %d KiB, node %d's device wiped, its peers' replicators (default concurrency) make passes\n",
		o.repairObjects, o.repairKiB, o.nodes)
	rep, err := c.repair(ctx, o)
	if err != nil {
		return err
	}
	res.restored = rep.copies
	mb := float64(rep.copies) * float64(o.repairKiB<<10) / 1e6
	fmt.Fprintf(out, "   %d copies (%.1f MB of content) restored in %.2f s = %.1f MB/s, %d passes of the peers' replicators\n",
		rep.copies, mb, rep.elapsed.Seconds(), mb/rep.elapsed.Seconds(), rep.passes)
	fmt.Fprintf(out, "   replicators: %d partitions compared, %d suffixes pushed, %d files taken, %d requests failed\n",
		rep.stats.Partitions, rep.stats.Suffixes, rep.stats.Files, rep.stats.Failed)
	fmt.Fprintf(out, "   their requests: %s\n", rep.requests)
	return nil
}

// validator takes every token as a member of project p1.
type validator struct{}

func (validator) Validate(context.Context, string) (*trustack.Token, error) {
	return &trustack.Token{User: trustack.User{ID: "u1"}, Project: &trustack.Project{ID: "p1"}, Roles: []trustack.Role{{Name: "member"}}}, nil
}

// cluster is a running local cluster with a proxy.
type cluster struct {
	dir    string
	hasher objectstore.Hasher
	key    string
	cfgs   []storage.Config
	rings  proxy.Rings
	nodes  []*storage.Node
	srv    *http.Server
	url    string
	client *http.Client
}

func startCluster(dir string, n int, log *slog.Logger) (*cluster, error) {
	c := &cluster{dir: dir, hasher: objectstore.Hasher{Prefix: "bench-p", Suffix: "bench-s"}, key: "bench-key"}
	// The updater interval is given: zero would stop the object
	// updater's ticker at once (see the report).
	cfgs, err := storage.Local(dir, filepath.Join(dir, "rings"), n, storage.Config{Hasher: c.hasher, Key: c.key,
		UpdaterInterval: 30 * time.Second, Log: log})
	if err != nil {
		return nil, err
	}
	c.rings = *cfgs[0].Rings
	for _, cfg := range cfgs {
		cfg.Rings = nil // no replicators of their own: phase 3 runs them
		c.cfgs = append(c.cfgs, cfg)
		node, err := storage.Start(cfg)
		if err != nil {
			c.close()
			return nil, err
		}
		c.nodes = append(c.nodes, node)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		c.close()
		return nil, err
	}
	c.srv = &http.Server{Handler: proxy.New(c.rings, validator{}, proxy.Options{Key: c.key, Hasher: c.hasher, Log: log}),
		ReadHeaderTimeout: 10 * time.Second}
	go c.srv.Serve(l)
	c.url = "http://" + l.Addr().String() + "/v1/AUTH_p1"
	c.client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1024, DisableCompression: true}}
	return c, nil
}

// close stops the proxy and the nodes; again, it does nothing.
func (c *cluster) close() {
	if c.srv != nil {
		c.srv.Close()
		c.srv = nil
	}
	for i, n := range c.nodes {
		if n != nil {
			n.Close()
			c.nodes[i] = nil
		}
	}
}

// put PUTs body (nil: empty) at path under the account; 201 or 202 is
// success.
func (c *cluster) put(ctx context.Context, path string, body []byte) error {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, c.url+path, r)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	return c.do(req, http.StatusCreated, http.StatusAccepted)
}

func (c *cluster) do(req *http.Request, ok ...int) error {
	req.Header.Set("X-Auth-Token", "bench")
	resp, err := c.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if !slices.Contains(ok, resp.StatusCode) {
		return fmt.Errorf("%s %s: %s %s", req.Method, req.URL.Path, resp.Status, strings.TrimSpace(string(b)))
	}
	return nil
}

// run is a timed run's latencies of each operation that succeeded.
type timed struct {
	lat     []time.Duration
	failed  int
	elapsed time.Duration
}

// hammer runs op on workers goroutines, each in a loop until d has
// passed, and gathers their latencies. An op's error counts it failed;
// the first is kept.
func hammer(ctx context.Context, workers int, d time.Duration, op func(worker, i int) error) (timed, error) {
	var (
		mu    sync.Mutex
		all   timed
		first error
		wg    sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(d)
	for w := range workers {
		wg.Go(func() {
			var lat []time.Duration
			failed := 0
			var ferr error
			for i := 0; time.Now().Before(deadline) && ctx.Err() == nil; i++ {
				t := time.Now()
				if err := op(w, i); err != nil {
					failed++
					ferr = cmpErr(ferr, err)
					continue
				}
				lat = append(lat, time.Since(t))
			}
			mu.Lock()
			all.lat = append(all.lat, lat...)
			all.failed += failed
			first = cmpErr(first, ferr)
			mu.Unlock()
		})
	}
	wg.Wait()
	all.elapsed = time.Since(start)
	slices.Sort(all.lat)
	if len(all.lat) == 0 {
		return all, fmt.Errorf("every operation failed: %w", first)
	}
	return all, nil
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// smallPuts PUTs new small objects for o.duration from o.clients clients.
func (c *cluster) smallPuts(ctx context.Context, o options) (timed, error) {
	body := make([]byte, o.size)
	rand.Read(body)
	res, err := hammer(ctx, o.clients, o.duration, func(w, i int) error {
		return c.put(ctx, fmt.Sprintf("/small%d/w%d-%d", (w+i)%o.containers, w, i), body)
	})
	if res.failed > 0 && err == nil {
		fmt.Fprintf(os.Stderr, "objbench: %d small PUTs failed\n", res.failed)
	}
	return res, err
}

// diskBound does the durable writes of the object servers directly:
// each a temporary file written and fsynced, renamed into one of 256
// directories, and that directory fsynced.
func diskBound(ctx context.Context, dir string, o options) (timed, error) {
	tmp := filepath.Join(dir, "tmp")
	dirs := make([]string, 256)
	for i := range dirs {
		dirs[i] = filepath.Join(dir, fmt.Sprintf("%02x", i))
		if err := os.MkdirAll(dirs[i], 0o750); err != nil {
			return timed{}, err
		}
	}
	if err := os.MkdirAll(tmp, 0o750); err != nil {
		return timed{}, err
	}
	body := make([]byte, o.size)
	rand.Read(body)
	return hammer(ctx, o.clients, o.duration, func(w, i int) error {
		f, err := os.CreateTemp(tmp, "put-*")
		if err != nil {
			return err
		}
		_, err = f.Write(body)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		to := dirs[(w*7919+i)%len(dirs)]
		if err == nil {
			err = os.Rename(f.Name(), filepath.Join(to, fmt.Sprintf("w%d-%d", w, i)))
		}
		if err == nil {
			err = node.SyncDir(to)
		}
		if err != nil {
			os.Remove(f.Name())
		}
		return err
	})
}

// largeResult is phase 2's rates, in MB/s.
type largeResult struct {
	put, get, file float64
}

// large writes size pseudo-random bytes to a plain file (fsynced) and PUTs
// the same bytes through the proxy, then reads each whole once to warm
// the cache and reads more times, timed.
func (c *cluster) large(ctx context.Context, file string, size int64, reads int) (largeResult, error) {
	var res largeResult
	f, err := os.Create(file)
	if err != nil {
		return res, err
	}
	defer f.Close()
	if _, err := io.CopyN(f, mrand.NewChaCha8([32]byte{1}), size); err != nil {
		return res, err
	}
	if err := f.Sync(); err != nil {
		return res, err
	}
	if err := c.put(ctx, "/large", nil); err != nil {
		return res, err
	}
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, c.url+"/large/object", io.NewSectionReader(f, 0, size))
	if err != nil {
		return res, err
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	if err := c.do(req, http.StatusCreated); err != nil {
		return res, err
	}
	res.put = float64(size) / 1e6 / time.Since(start).Seconds()

	buf := make([]byte, 1<<20)
	readFile := func() (int64, error) {
		return copyBuf(io.NewSectionReader(f, 0, size), buf)
	}
	get := func() (int64, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url+"/large/object", nil)
		if err != nil {
			return 0, err
		}
		req.Header.Set("X-Auth-Token", "bench")
		resp, err := c.client.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("GET the large object: %s", resp.Status)
		}
		return copyBuf(resp.Body, buf)
	}
	var gets, files []float64
	for i := range reads + 1 { // the first of each warms the cache
		for _, way := range []struct {
			read  func() (int64, error)
			rates *[]float64
		}{{get, &gets}, {readFile, &files}} {
			start := time.Now()
			n, err := way.read()
			if err != nil {
				return res, err
			}
			if n != size {
				return res, fmt.Errorf("read %d bytes of the large object, want %d", n, size)
			}
			if i > 0 {
				*way.rates = append(*way.rates, float64(size)/1e6/time.Since(start).Seconds())
			}
		}
	}
	res.get, res.file = median(gets), median(files)
	return res, nil
}

// copyBuf reads r to its end through buf, returning the bytes read.
func copyBuf(r io.Reader, buf []byte) (int64, error) {
	var total int64
	for {
		n, err := r.Read(buf)
		total += int64(n)
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	return xs[len(xs)/2]
}

// repairResult is phase 3's.
type repairResult struct {
	copies   int // copies the wiped node had to get back
	elapsed  time.Duration
	passes   int
	stats    object.ReplicatorStats // the peers' replicators', summed
	requests *countingTransport     // theirs
}

// countingTransport counts the replicators' requests by method, status
// and whether they went to the wiped node.
type countingTransport struct {
	wiped  string // its object server's address
	mu     sync.Mutex
	counts map[string]int
}

func (t *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	key := req.Method
	if req.URL.Host == t.wiped {
		key += " to the wiped node"
	} else {
		key += " between peers"
	}
	switch {
	case errors.Is(err, context.Canceled):
		key += ": canceled at the end"
	case err != nil:
		key += ": error"
	default:
		key += ": " + strconv.Itoa(resp.StatusCode)
	}
	t.mu.Lock()
	t.counts[key]++
	t.mu.Unlock()
	return resp, err
}

func (t *countingTransport) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for _, k := range slices.Sorted(maps.Keys(t.counts)) {
		out = append(out, fmt.Sprintf("%s ×%d", k, t.counts[k]))
	}
	return strings.Join(out, ", ")
}

// repair writes o.repairObjects objects, stops the last node, wipes its
// device, starts it again and times its peers' replicators until every
// object has a data file on each of its primaries.
func (c *cluster) repair(ctx context.Context, o options) (repairResult, error) {
	var res repairResult
	if err := c.put(ctx, "/repair", nil); err != nil {
		return res, err
	}
	body := make([]byte, o.repairKiB<<10)
	rand.Read(body)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	for range min(16, o.repairObjects) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= o.repairObjects {
					return
				}
				if err := c.put(ctx, "/repair/"+repairName(i), body); err != nil {
					select {
					case errs <- err:
					default:
					}
					return
				}
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		return res, fmt.Errorf("write the objects to repair: %w", err)
	default:
	}
	if missing := c.missing(o.repairObjects); missing != 0 {
		return res, fmt.Errorf("%d copies missing before any was wiped", missing)
	}

	// The last node's disk is replaced: stopped, its device emptied,
	// started again.
	wiped := len(c.nodes) - 1
	cfg := c.cfgs[wiped]
	c.nodes[wiped].Close()
	c.nodes[wiped] = nil
	dev := filepath.Join(cfg.Devices, "d"+strconv.Itoa(wiped+1))
	if err := os.RemoveAll(dev); err != nil {
		return res, err
	}
	if err := os.Mkdir(dev, 0o750); err != nil {
		return res, err
	}
	node, err := storage.Start(cfg)
	if err != nil {
		return res, err
	}
	c.nodes[wiped] = node
	res.copies = c.missing(o.repairObjects)
	if res.copies == 0 {
		return res, errors.New("wiping a node lost no copy: the ring puts nothing on it")
	}

	var replicators []*object.Replicator
	res.requests = &countingTransport{wiped: cfg.Object, counts: map[string]int{}}
	client := &http.Client{Transport: res.requests}
	for i, cfg := range c.cfgs {
		if i == wiped {
			continue
		}
		s := object.New(cfg.Devices, c.hasher, object.Options{Key: c.key})
		replicators = append(replicators, object.NewReplicator(s, c.rings.Object, cfg.Object, object.ReplicatorOptions{Client: client}))
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var passes atomic.Int64
	start := time.Now()
	for _, r := range replicators {
		wg.Go(func() {
			for rctx.Err() == nil {
				r.Pass(rctx)
				passes.Add(1)
			}
		})
	}
	deadline := start.Add(o.repairTimeout)
	left := res.copies
	for left > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		left = c.missing(o.repairObjects)
	}
	res.elapsed = time.Since(start)
	cancel()
	wg.Wait()
	res.passes = int(passes.Load())
	for _, r := range replicators {
		st := r.Stats()
		res.stats.Partitions += st.Partitions
		res.stats.Suffixes += st.Suffixes
		res.stats.Files += st.Files
		res.stats.Failed += st.Failed
	}
	if left > 0 {
		return res, fmt.Errorf("after %s, %d of %d copies are still missing", o.repairTimeout, left, res.copies)
	}
	return res, nil
}

func repairName(i int) string { return fmt.Sprintf("r%06d", i) }

// missing counts the copies of the repair objects that are not on their
// primaries, walking the ring as the storage tests do.
func (c *cluster) missing(objects int) int {
	missing := 0
	for i := range objects {
		h := c.hasher.Path("AUTH_p1", "repair", repairName(i))
		part := c.rings.Object.Partition(h)
		for _, d := range c.rings.Object.Nodes(part) {
			n, _ := strconv.Atoi(strings.TrimPrefix(d.Device, "d"))
			if n < 1 || n > len(c.cfgs) || !hasData(objectstore.Dir(c.cfgs[n-1].Devices, d.Device, objectstore.Objects, part, h)) {
				missing++
			}
		}
	}
	return missing
}

// hasData reports whether an object's directory holds a .data file.
func hasData(dir string) bool {
	entries, _ := os.ReadDir(dir)
	return slices.ContainsFunc(entries, func(e fs.DirEntry) bool { return strings.HasSuffix(e.Name(), ".data") })
}

func pct(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := min(len(sorted)-1, len(sorted)*p/100)
	return sorted[i].Round(10 * time.Microsecond)
}

// filesystem names the file system dir is on.
func filesystem(dir string) string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return "unknown file system"
	}
	switch st.Type {
	case 0x01021994:
		return "tmpfs"
	case 0xEF53:
		return "ext4 (or ext2/3)"
	case 0x58465342:
		return "xfs"
	case 0x9123683E:
		return "btrfs"
	case 0x794c7630:
		return "overlayfs"
	}
	return fmt.Sprintf("file system type %#x", st.Type)
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

// timeWait counts the TCP connections in TIME_WAIT (IPv4), -1 if
// unknown: a sign of connections not reused.
func timeWait() int {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return -1
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n")[1:] {
		if f := strings.Fields(line); len(f) > 3 && f[3] == "06" {
			n++
		}
	}
	return n
}

// countingHandler counts the warnings and errors the nodes and the proxy
// log, keeping the first few.
type countingHandler struct {
	warn, err atomic.Int64
	mu        sync.Mutex
	first     []string
}

func (h *countingHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		h.err.Add(1)
	} else {
		h.warn.Add(1)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.first) < 3 {
		msg := r.Message
		r.Attrs(func(a slog.Attr) bool { msg += " " + a.String(); return true })
		h.first = append(h.first, msg)
	}
	return nil
}

func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }

func (h *countingHandler) firstMessages() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.first)
}

// cpu is the CPU time this process has used, in user space and in the
// kernel on its behalf.
type cpu struct{ user, system time.Duration }

func cpuTime() cpu {
	var u syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &u)
	return cpu{time.Duration(u.Utime.Nano()), time.Duration(u.Stime.Nano())}
}

// since describes the CPU used since c0 by n operations (of what) over
// elapsed: per operation, and the share of the machine's cores.
func (c cpu) since(c0 cpu, n int, elapsed time.Duration, what string) string {
	user, system := c.user-c0.user, c.system-c0.system
	if n == 0 {
		return "no " + what
	}
	per := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(n) }
	return fmt.Sprintf("%.2f ms per %s (user %.2f, system %.2f), %.0f%% of %d cores",
		per(user+system), what, per(user), per(system), 100*(user+system).Seconds()/elapsed.Seconds()/float64(runtime.NumCPU()), runtime.NumCPU())
}
