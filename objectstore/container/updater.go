package container

import (
	"context"
	"errors"
	"hash/crc32"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/trustack/trustack/objectstore"
	"github.com/trustack/trustack/objectstore/broker"
	"github.com/trustack/trustack/objectstore/node"
)

// tellAccount records the account servers a PUT or DELETE of a container
// names, if it names any, and reports the container to them at once. It
// returns true if every one said the account does not exist.
func (s *Server) tellAccount(r *http.Request, path string, db *broker.Container, nodes broker.AccountNodes) bool {
	if nodes.Hosts != nil {
		if err := db.SetAccountNodes(nodes); err != nil {
			s.opts.Log.Error("record account nodes", "db", path, "err", err)
		}
	}
	return s.report(r.Context(), path, db, true)
}

// report sends the container's report to its account servers, if they
// have not heard it or always. If most took it, it records it as what
// the account heard; otherwise the updater tries again. It returns true
// if every one said the account does not exist. A container's reports
// go one at a time, each read as it starts, so that an account does not
// hear an older after a newer: always waits for the one in flight, else
// report leaves the container to the updater's next pass.
func (s *Server) report(ctx context.Context, path string, db *broker.Container, always bool) (accountMissing bool) {
	mu := &s.locks[crc32.ChecksumIEEE([]byte(path))%uint32(len(s.locks))]
	if always {
		mu.Lock()
	} else if !mu.TryLock() {
		s.markDirty(path)
		return false
	}
	defer mu.Unlock()
	info, err := db.Info()
	n := info.AccountNodes
	if err != nil || len(n.Hosts) == 0 || !always && info.Report() == info.Reported {
		return false // nothing to tell, or no one to tell it to until a PUT or DELETE names them
	}
	statuses := make(chan int, len(n.Hosts))
	for i := range n.Hosts {
		go func() { statuses <- s.send(ctx, n.Hosts[i], n.Devices[i], n.Partition, info) }()
	}
	var took, missing int
	for range n.Hosts {
		switch st := <-statuses; {
		case st/100 == 2:
			took++
		case st == http.StatusNotFound:
			missing++
		}
	}
	if took <= len(n.Hosts)/2 || db.MarkReported(info.Report()) != nil {
		s.markDirty(path)
	}
	return missing == len(n.Hosts)
}

// send sends a container's report to an account server and returns its
// status, 0 if none came.
func (s *Server) send(ctx context.Context, host, device string, partition int, info broker.Info) int {
	ctx, cancel := context.WithTimeout(ctx, s.opts.UpdateTimeout)
	defer cancel()
	u := "http://" + host + "/" + url.PathEscape(device) + "/" + strconv.Itoa(partition) + "/" +
		url.PathEscape(info.Account) + "/" + url.PathEscape(info.Container)
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u, nil)
	var resp *http.Response
	if err == nil {
		req.Header.Set("X-Put-Timestamp", info.Put.String())
		req.Header.Set("X-Delete-Timestamp", info.Delete.String())
		req.Header.Set("X-Object-Count", strconv.FormatInt(info.Objects, 10))
		req.Header.Set("X-Bytes-Used", strconv.FormatInt(info.Bytes, 10))
		req.Header.Set(node.KeyHeader, s.opts.Key)
		resp, err = s.opts.Client.Do(req)
	}
	if err != nil {
		s.opts.Log.Warn("account update", "url", u, "err", err)
		return 0
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		s.opts.Log.Warn("account update", "url", u, "status", resp.StatusCode)
	}
	return resp.StatusCode
}

func (s *Server) markDirty(path string) {
	s.mu.Lock()
	s.dirty[path] = true
	s.mu.Unlock()
}

// RunUpdater reports, every interval (30 s if not positive) until ctx
// ends, the containers whose accounts have not heard their counts and
// timestamps, as Swift's container updater does: an account hears of
// object writes within an interval. Its first pass visits every
// container database on the node, as what changed while it was not
// running is not known; later passes visit those changed through this
// server since, and those whose report failed.
func (s *Server) RunUpdater(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = 30 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		start := s.opts.Now()
		s.mu.Lock()
		paths, walk := s.dirty, !s.walked
		s.dirty, s.walked = map[string]bool{}, true
		s.mu.Unlock()
		if walk {
			s.walk(paths)
		}
		for path := range paths {
			if ctx.Err() != nil {
				s.markDirty(path)
			} else if db, err := s.dbs.Container(path); err == nil {
				s.report(ctx, path, db, false)
				db.Close()
			} else if !errors.Is(err, broker.ErrNotFound) {
				s.opts.Log.Error("container updater", "db", path, "err", err)
			}
		}
		s.opts.Log.Debug("container updater pass", "containers", len(paths), "took", s.opts.Now().Sub(start))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// walk adds the path of every container database on the node to paths.
func (s *Server) walk(paths map[string]bool) {
	devices, err := os.ReadDir(s.db.Root)
	if err != nil {
		s.opts.Log.Error("container updater", "err", err)
	}
	for _, d := range devices {
		filepath.WalkDir(filepath.Join(s.db.Root, d.Name(), string(objectstore.Containers)), func(path string, e fs.DirEntry, err error) error {
			if err == nil && !e.IsDir() && strings.HasSuffix(path, ".db") {
				paths[path] = true
			}
			return nil // a device's unreadable part is skipped, not the rest
		})
	}
}
