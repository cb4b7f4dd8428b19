package object

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/trustack/trustack/objectstore"
	"github.com/trustack/trustack/objectstore/node"
)

// AuditorOptions are an Auditor's settings; a zero one means its
// default.
type AuditorOptions struct {
	Interval       time.Duration // between the starts of two passes; 30 s if zero
	BytesPerSecond int64         // the most content read per second, so that audits leave the disks to users; 10 MiB if zero
	Log            *slog.Logger  // each pass's counts and the objects quarantined; discarded if nil
}

// AuditorStats count what an Auditor has done since it was made.
type AuditorStats struct {
	Objects     int64         // data files verified
	Quarantined int64         // objects quarantined because their data failed verification
	LastPass    time.Duration // how long the last whole pass took
}

// Auditor finds the objects whose files rot on a node's disks, as
// Swift's object-auditor does: in passes, it verifies the newest data
// file of every object on every device under the server's root against
// its checksums and ETag, at a bounded rate, and quarantines the objects
// that fail, marking their suffixes changed so that replication brings a
// good copy back. Only one Auditor may run on a node's devices at once;
// its methods are safe for concurrent use.
type Auditor struct {
	s    *Server
	opts AuditorOptions

	mu    sync.Mutex
	stats AuditorStats
}

// NewAuditor returns an auditor of the objects s keeps.
func NewAuditor(s *Server, opts AuditorOptions) *Auditor {
	opts.Interval = cmp.Or(opts.Interval, 30*time.Second)
	if opts.BytesPerSecond <= 0 {
		opts.BytesPerSecond = 10 << 20
	}
	opts.Log = cmp.Or(opts.Log, slog.New(slog.DiscardHandler))
	return &Auditor{s: s, opts: opts}
}

// Stats returns what the auditor has done.
func (a *Auditor) Stats() AuditorStats {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.stats
}

// Run makes a pass at once and then every interval, until ctx ends.
func (a *Auditor) Run(ctx context.Context) { node.Every(ctx, a.opts.Interval, a.Pass) }

// Pass audits every object once, or until ctx ends, and logs what it
// did.
func (a *Auditor) Pass(ctx context.Context) {
	start := time.Now()
	var pass AuditorStats
	var read int64 // bytes verified this pass, which the rate bounds
	parts, _ := filepath.Glob(filepath.Join(a.s.root, "*", string(objectstore.Objects), "*"))
	for _, part := range parts {
		if ctx.Err() != nil {
			break
		}
		dirs, _ := filepath.Glob(filepath.Join(part, "*", "*")) // a partition's objects at a time
		a.audit(ctx, dirs, start, &read, &pass)
	}
	pass.LastPass = time.Since(start)
	a.mu.Lock()
	a.stats.Objects += pass.Objects
	a.stats.Quarantined += pass.Quarantined
	a.stats.LastPass = pass.LastPass
	a.mu.Unlock()
	a.opts.Log.Info("object audit pass", "objects", pass.Objects, "quarantined", pass.Quarantined, "duration", pass.LastPass)
}

// audit verifies the objects of dirs, waiting as the rate requires: read
// bytes since start, counted in pass.
func (a *Auditor) audit(ctx context.Context, dirs []string, start time.Time, read *int64, pass *AuditorStats) {
	for _, dir := range dirs {
		if h, err := objectstore.ParseHash(filepath.Base(dir)); err != nil || h.String() != filepath.Base(dir) {
			continue
		}
		f, err := listFiles(dir)
		if err != nil || f.deleted() || f.data == 0 {
			continue
		}
		path := filepath.Join(dir, f.data.String()+extData)
		st, err := os.Stat(path)
		if err != nil {
			continue // replaced meanwhile
		}
		// Wait until the rate allows this file's bytes.
		*read += st.Size()
		wait := time.Duration(float64(*read)/float64(a.opts.BytesPerSecond)*float64(time.Second)) - time.Since(start)
		if wait > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
		}
		if ctx.Err() != nil {
			return
		}
		pass.Objects++
		err = Verify(path)
		if !errors.Is(err, ErrCorrupt) {
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				a.opts.Log.Error("auditor: verify object", "path", path, "err", err)
			}
			continue
		}
		devDir := filepath.Dir(filepath.Dir(filepath.Dir(filepath.Dir(dir)))) // root/device of root/device/objects/part/suffix/hash
		a.opts.Log.Error("auditor: object quarantined", "dir", dir, "err", err)
		if err := quarantine(devDir, dir); err != nil {
			a.opts.Log.Error("auditor: quarantine object", "dir", dir, "err", err)
			continue
		}
		pass.Quarantined++
		if err := invalidate(dir); err != nil {
			a.opts.Log.Error("auditor: invalidate suffix hash", "dir", dir, "err", err)
		}
	}
}
