package dbserver

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/trustack/trustack/objectstore"
	"github.com/trustack/trustack/objectstore/broker"
	"github.com/trustack/trustack/objectstore/node"
	"github.com/trustack/trustack/objectstore/ring"
)

// Options are a replicator's settings; a zero one means its default.
type Options struct {
	Key      string           // the cluster's backend key (see node.Guard); none if empty
	Client   *http.Client     // of REPLICATE requests; http.DefaultClient if nil
	Interval time.Duration    // between the starts of two passes; 30 s if zero
	Timeout  time.Duration    // of one REPLICATE request; 30 s if zero
	Batch    int              // rows in a merge request, at most MaxRows; MaxRows if zero
	Now      func() time.Time // the clock; time.Now if nil
}

// Stats count what a replicator has done since it was made.
type Stats struct {
	Checked  int64         // databases compared with their other replicas
	RowsSent int64         // rows sent in merge requests
	Removed  int64         // handoffs' copies removed once every primary had them
	Failed   int64         // replicas that a database could not be brought to
	LastPass time.Duration // how long the last whole pass took
}

// Replicator keeps the replicas of a server's databases alike, as
// Swift's container- and account-replicators do: in passes, it compares
// each database on the server's devices with its replicas on the other
// primaries of its partition, and sends what they lack. A database on a
// device that is not one of its primaries (a handoff's copy, or one left
// when the ring moved the partition) is sent to every primary and
// removed once all have it. It is safe for concurrent use.
type Replicator[R any, D DB[R]] struct {
	s    *Server[R, D]
	ring *ring.Ring
	addr string
	opts Options

	mu    sync.Mutex
	stats Stats
}

// NewReplicator returns a replicator of s's databases on the devices of
// r whose address is addr, s's own.
func NewReplicator[R any, D DB[R]](s *Server[R, D], r *ring.Ring, addr string, opts Options) *Replicator[R, D] {
	opts.Client = cmp.Or(opts.Client, http.DefaultClient)
	opts.Interval = cmp.Or(opts.Interval, 30*time.Second)
	opts.Timeout = cmp.Or(opts.Timeout, 30*time.Second)
	if opts.Batch <= 0 || opts.Batch > MaxRows {
		opts.Batch = MaxRows
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Replicator[R, D]{s: s, ring: r, addr: addr, opts: opts}
}

// Stats returns what the replicator has done.
func (p *Replicator[R, D]) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

func (p *Replicator[R, D]) count(f func(*Stats)) {
	p.mu.Lock()
	f(&p.stats)
	p.mu.Unlock()
}

// Run makes a pass at once and then every interval, until ctx ends.
func (p *Replicator[R, D]) Run(ctx context.Context) {
	node.Every(ctx, p.opts.Interval, p.Pass)
}

// Pass replicates every database on the server's devices once, or until
// ctx ends.
func (p *Replicator[R, D]) Pass(ctx context.Context) {
	start := p.opts.Now()
	for _, dev := range p.ring.Devices() {
		if _, err := node.Device(p.s.Root, dev.Device); err != nil || dev.Addr() != p.addr {
			continue
		}
		dir := filepath.Join(p.s.Root, dev.Device, string(p.s.Kind))
		files, _ := filepath.Glob(filepath.Join(dir, "*", "*", "*", "*.db"))
		for _, file := range files {
			if ctx.Err() != nil {
				return
			}
			part, h, err := locate(dir, file)
			if err != nil || part >= p.ring.Partitions() {
				p.s.Log.Warn("replicator: a database out of place", "db", file, "err", err)
				continue
			}
			p.replicate(ctx, dev, part, h, file)
		}
	}
	p.count(func(s *Stats) { s.LastPass = p.opts.Now().Sub(start) })
}

// locate reads the partition and hash of a database from its file's
// path under dir: dir/partition/suffix/hash/hash.db.
func locate(dir, file string) (int, objectstore.Hash, error) {
	parts := strings.Split(strings.TrimPrefix(file, dir+string(filepath.Separator)), string(filepath.Separator))
	part, err := strconv.Atoi(parts[0])
	h, herr := objectstore.ParseHash(parts[2])
	if err = errors.Join(err, herr); err == nil && (part < 0 || parts[1] != h.Suffix() || parts[3] != parts[2]+".db") {
		err = errors.New("not where its hash puts it")
	}
	return part, h, err
}

// replicate brings the database at file, on dev, to the other primaries
// of its partition, and removes it if dev is not one of them and all
// have it.
func (p *Replicator[R, D]) replicate(ctx context.Context, dev ring.Device, part int, h objectstore.Hash, file string) {
	db, err := p.s.Open(file)
	if err != nil {
		p.s.Log.Error("replicator: open", "db", file, "err", err)
		return
	}
	version := db.Version()
	info, err := db.Info()
	var meta map[string]broker.Meta
	if err == nil {
		meta, err = db.Metadata()
	}
	if err != nil {
		db.Close()
		p.s.Log.Error("replicator: read", "db", file, "err", err)
		return
	}
	primaries := p.ring.Nodes(part)
	done := true
	for _, to := range primaries {
		if to.ID == dev.ID {
			continue
		}
		if err := p.push(ctx, db, info, meta, to, part, h); err != nil {
			done = false
			p.count(func(s *Stats) { s.Failed++ })
			p.s.Log.Warn("replicator: push", "db", file, "to", to.Addr()+"/"+to.Device, "err", err)
		}
	}
	db.Close()
	p.count(func(s *Stats) { s.Checked++ })
	if !done || slices.ContainsFunc(primaries, func(d ring.Device) bool { return d.ID == dev.ID }) {
		return
	}
	// A copy changed since it was read is sent again next pass.
	if err := p.s.DBs.Remove(file, version); err == nil {
		p.count(func(s *Stats) { s.Removed++ })
	} else if !errors.Is(err, broker.ErrBusy) {
		p.s.Log.Error("replicator: remove", "db", file, "err", err)
	}
}

// push brings a replica on device to up to date with db: it syncs
// status and metadata, and if the replicas' hashes then differ, sends
// the rows the replica has not had from db, in batches.
func (p *Replicator[R, D]) push(ctx context.Context, db D, info broker.Info, meta map[string]broker.Meta, to ring.Device, part int, h objectstore.Hash) error {
	u := "http://" + to.Addr() + "/" + url.PathEscape(to.Device) + "/" + strconv.Itoa(part) + "/" + h.String()
	synced, err := p.post(ctx, u, request{Op: "sync", ID: info.ID, Info: info, Meta: meta})
	if err != nil || synced.Hash == hash(info, meta) {
		return err
	}
	for point := synced.Point; ; {
		rows, err := db.RowsSince(point, p.opts.Batch)
		if err != nil || len(rows) == 0 {
			return err
		}
		raw, err := json.Marshal(rows)
		if err != nil {
			return err
		}
		merged, err := p.post(ctx, u, request{Op: "merge", ID: info.ID, Rows: raw})
		if err != nil {
			return err
		}
		p.count(func(s *Stats) { s.RowsSent += int64(len(rows)) })
		if merged.Point <= point {
			return fmt.Errorf("replica stuck at row %d", merged.Point)
		}
		point = merged.Point
	}
}

// post sends a REPLICATE request to u and returns its reply.
func (p *Replicator[R, D]) post(ctx context.Context, u string, req request) (reply, error) {
	var out reply
	body, err := json.Marshal(req)
	if err != nil {
		return out, err
	}
	ctx, cancel := context.WithTimeout(ctx, p.opts.Timeout)
	defer cancel()
	r, err := http.NewRequestWithContext(ctx, MethodReplicate, u, bytes.NewReader(body))
	if err != nil {
		return out, err
	}
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set(node.KeyHeader, p.opts.Key)
	resp, err := p.opts.Client.Do(r)
	if err != nil {
		return out, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return out, fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	return out, json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out)
}
