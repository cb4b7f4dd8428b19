package object

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/trustack/trustack/objectstore"
	"github.com/trustack/trustack/objectstore/node"
	"github.com/trustack/trustack/objectstore/ring"
)

// ReplicatorOptions are a Replicator's settings; a zero one means its
// default.
type ReplicatorOptions struct {
	Client      *http.Client  // of REPLICATE and SYNC requests; http.DefaultClient if nil. Its transport should send Expect: 100-continue, as the default one does, so that files the other node has are not sent.
	Interval    time.Duration // between the starts of two passes; 30 s if zero
	Timeout     time.Duration // of one request; 60 s if zero
	Concurrency int           // partitions replicated at once; 2 if zero
	Log         *slog.Logger  // each pass's counts and what fails; discarded if nil
}

// ReplicatorStats count what a Replicator has done since it was made.
type ReplicatorStats struct {
	Partitions int64         // partitions compared with their other replicas
	Suffixes   int64         // suffixes found different on another node and pushed to it
	Files      int64         // files another node took
	Removed    int64         // handoffs' partitions removed once every primary had them
	Failed     int64         // requests that failed
	LastPass   time.Duration // how long the last whole pass took
}

func (a *ReplicatorStats) add(b ReplicatorStats) {
	a.Partitions += b.Partitions
	a.Suffixes += b.Suffixes
	a.Files += b.Files
	a.Removed += b.Removed
	a.Failed += b.Failed
}

// Replicator keeps the replicas of a node's objects alike, as Swift's
// object-replicator does. In passes, it compares the suffix hashes of
// each partition on the node's devices with those of the partition's
// other primaries (REPLICATE) and, for each suffix that differs, pushes
// the files of its objects (SYNC), which the other keeps if it lacks them
// and they are not obsolete there. A partition on a device that is not
// one of its primaries (a handoff's, or one left when the ring moved it)
// is pushed to every primary and its files removed once all took them or
// had them. Replication only pushes: each node brings the others what it
// has. Only one Replicator may run on a node's devices at once; its
// methods are safe for concurrent use.
type Replicator struct {
	s    *Server
	ring *ring.Ring
	addr string
	opts ReplicatorOptions

	mu    sync.Mutex
	stats ReplicatorStats
}

// NewReplicator returns a replicator of the objects that s keeps on the
// devices of r whose address is addr, s's own, sending s's key.
func NewReplicator(s *Server, r *ring.Ring, addr string, opts ReplicatorOptions) *Replicator {
	opts.Client = cmp.Or(opts.Client, http.DefaultClient)
	opts.Interval = cmp.Or(opts.Interval, 30*time.Second)
	opts.Timeout = cmp.Or(opts.Timeout, time.Minute)
	if opts.Concurrency <= 0 {
		opts.Concurrency = 2
	}
	opts.Log = cmp.Or(opts.Log, slog.New(slog.DiscardHandler))
	return &Replicator{s: s, ring: r, addr: addr, opts: opts}
}

// Stats returns what the replicator has done.
func (p *Replicator) Stats() ReplicatorStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// Run makes a pass at once and then every interval, until ctx ends.
func (p *Replicator) Run(ctx context.Context) { node.Every(ctx, p.opts.Interval, p.Pass) }

// job is a partition on a local device.
type job struct {
	dev  ring.Device
	part int
}

// Pass replicates every partition on the node's devices once, or until
// ctx ends, and logs what it did.
func (p *Replicator) Pass(ctx context.Context) {
	start := time.Now()
	var jobs []job
	for _, dev := range p.ring.Devices() {
		if _, err := node.Device(p.s.root, dev.Device); err != nil || dev.Addr() != p.addr {
			continue
		}
		entries, _ := os.ReadDir(filepath.Join(p.s.root, dev.Device, string(objectstore.Objects)))
		for _, e := range entries {
			part, err := strconv.Atoi(e.Name())
			if err != nil || part < 0 || part >= p.ring.Partitions() || strconv.Itoa(part) != e.Name() {
				continue
			}
			jobs = append(jobs, job{dev, part})
		}
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		pass ReplicatorStats
		next = make(chan job)
	)
	for range p.opts.Concurrency {
		wg.Go(func() {
			for j := range next {
				st := p.replicate(ctx, j)
				mu.Lock()
				pass.add(st)
				mu.Unlock()
			}
		})
	}
	for _, j := range jobs {
		if ctx.Err() != nil {
			break
		}
		next <- j
	}
	close(next)
	wg.Wait()
	pass.LastPass = time.Since(start)
	p.mu.Lock()
	p.stats.add(pass)
	p.stats.LastPass = pass.LastPass
	p.mu.Unlock()
	p.opts.Log.Info("object replication pass", "partitions", pass.Partitions, "suffixes", pass.Suffixes,
		"files", pass.Files, "removed", pass.Removed, "failed", pass.Failed, "duration", pass.LastPass)
}

// replicate brings one partition of a local device to the other nodes
// that should hold it.
func (p *Replicator) replicate(ctx context.Context, j job) (st ReplicatorStats) {
	st.Partitions = 1
	partDir := objectstore.PartitionDir(p.s.root, j.dev.Device, objectstore.Objects, j.part)
	primaries := p.ring.Nodes(j.part)
	handoff := !slices.ContainsFunc(primaries, func(d ring.Device) bool { return d.ID == j.dev.ID })
	// A handoff's files are listed once, so that exactly those pushed or
	// found on every primary are removed; a primary's, suffix by suffix.
	local, listing, err := p.localHashes(partDir, handoff)
	if err != nil {
		p.opts.Log.Error("replicator: hash partition", "dir", partDir, "err", err)
		st.Failed++
		return st
	}
	ok := true
	for _, to := range primaries {
		if to.ID == j.dev.ID {
			continue
		}
		if err := p.push(ctx, to, j.part, partDir, local, listing, &st); err != nil {
			p.opts.Log.Warn("replicator: push partition", "partition", j.part, "device", j.dev.Device, "to", to.Addr()+"/"+to.Device, "err", err)
			ok = false
		}
	}
	if handoff && ok && ctx.Err() == nil {
		if removeListed(partDir, listing) {
			st.Removed++
		}
	}
	return st
}

// localHashes returns a partition's suffix hashes: for a primary, as its
// object server keeps them; for a handoff, from a listing of all its
// files, also returned.
func (p *Replicator) localHashes(partDir string, handoff bool) (map[string]string, map[string]map[string][]string, error) {
	if !handoff {
		h, err := partitionHashes(partDir, nil, p.s.now())
		return h, nil, err
	}
	entries, err := os.ReadDir(partDir)
	if err != nil {
		return nil, nil, err
	}
	hashes, listing := map[string]string{}, map[string]map[string][]string{}
	for _, e := range entries {
		if !validSuffix(e.Name()) {
			continue
		}
		objs, err := listSuffix(filepath.Join(partDir, e.Name()), false, p.s.now())
		if err != nil {
			return nil, nil, err
		}
		if len(objs) > 0 {
			hashes[e.Name()], listing[e.Name()] = hashFiles(objs), objs
		}
	}
	return hashes, listing, nil
}

// push brings a partition's suffixes that differ on another node to it,
// and has it hash them again. A nil error means the other node has, or
// has newer, every file of the listing if one is given.
func (p *Replicator) push(ctx context.Context, to ring.Device, part int, partDir string, local map[string]string, listing map[string]map[string][]string, st *ReplicatorStats) error {
	remote, err := p.hashes(ctx, to, part, nil)
	if err != nil {
		st.Failed++
		return err
	}
	var pushed []string
	var errs []error
	for _, suffix := range slices.Sorted(maps.Keys(local)) {
		if remote[suffix] == local[suffix] {
			continue
		}
		objs := listing[suffix]
		if listing == nil {
			if objs, err = listSuffix(filepath.Join(partDir, suffix), false, p.s.now()); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		st.Suffixes++
		pushed = append(pushed, suffix)
		for hash, names := range objs {
			for _, name := range names { // sorted, so a .meta follows its .data
				took, err := p.sync(ctx, to, part, filepath.Join(partDir, suffix, hash), name)
				switch {
				case err != nil:
					st.Failed++
					errs = append(errs, err)
				case took:
					st.Files++
				}
			}
		}
	}
	if len(pushed) > 0 {
		if _, err := p.hashes(ctx, to, part, pushed); err != nil {
			st.Failed++
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// do sends a request to a device's node, with the key, and returns the
// status and body of its reply if it is a success or a 409.
func (p *Replicator) do(ctx context.Context, method string, to ring.Device, path string, body io.Reader, size int64) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, p.opts.Timeout)
	defer cancel()
	u := "http://" + to.Addr() + "/" + url.PathEscape(to.Device) + path
	if body != nil && size == 0 {
		body = http.NoBody // else the length of 0 would count as unknown
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return 0, nil, err
	}
	if size > 0 {
		req.ContentLength = size
		req.Header.Set("Expect", "100-continue")
	}
	if p.s.key != "" {
		req.Header.Set(node.KeyHeader, p.s.key)
	}
	resp, err := p.opts.Client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	switch {
	case err != nil:
		return 0, nil, fmt.Errorf("%s %s: %w", method, u, err)
	case resp.StatusCode/100 != 2 && resp.StatusCode != http.StatusConflict:
		return 0, nil, fmt.Errorf("%s %s: %s: %s", method, u, resp.Status, strings.TrimSpace(string(b[:min(len(b), 512)])))
	}
	return resp.StatusCode, b, nil
}

// hashes asks a device's node for a partition's suffix hashes, having it
// compute those of suffixes again.
func (p *Replicator) hashes(ctx context.Context, to ring.Device, part int, suffixes []string) (map[string]string, error) {
	path := "/" + strconv.Itoa(part)
	if len(suffixes) > 0 {
		path += "/" + strings.Join(suffixes, "-")
	}
	status, b, err := p.do(ctx, "REPLICATE", to, path, nil, 0)
	if err != nil {
		return nil, err
	}
	var hashes map[string]string
	if err := json.Unmarshal(b, &hashes); err != nil || status != http.StatusOK {
		return nil, fmt.Errorf("REPLICATE %s/%s%s: status %d, %v", to.Addr(), to.Device, path, status, err)
	}
	return hashes, nil
}

// sync sends a file of an object's directory to a device's node, and
// reports whether it took it; not if it had it or a newer one.
func (p *Replicator) sync(ctx context.Context, to ring.Device, part int, objDir, name string) (bool, error) {
	f, err := os.Open(filepath.Join(objDir, name))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil // replaced meanwhile: the newer file goes in the next pass
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return false, err
	}
	status, _, err := p.do(ctx, "SYNC", to, "/"+strconv.Itoa(part)+"/"+filepath.Base(objDir)+"/"+name, f, st.Size())
	return status == http.StatusCreated, err
}

// removeListed removes the files of a listing from a partition's
// directory, then the directories left empty, and reports whether that
// was all of the partition: files written meanwhile stay for the next
// pass.
func removeListed(partDir string, listing map[string]map[string][]string) bool {
	var suffixes []string
	for suffix, objs := range listing {
		for hash, names := range objs {
			objDir := filepath.Join(partDir, suffix, hash)
			for _, name := range names {
				os.Remove(filepath.Join(objDir, name))
			}
			os.Remove(objDir)
		}
		os.Remove(filepath.Join(partDir, suffix))
		suffixes = append(suffixes, suffix)
	}
	entries, err := os.ReadDir(partDir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		if validSuffix(e.Name()) {
			appendInvalid(partDir, suffixes...) // some stay: their hashes are stale
			return false
		}
	}
	for _, e := range entries {
		os.Remove(filepath.Join(partDir, e.Name()))
	}
	return os.Remove(partDir) == nil
}
