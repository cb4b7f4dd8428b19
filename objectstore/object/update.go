package object

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/trustack/trustack/objectstore"
	"github.com/trustack/trustack/objectstore/node"
)

// asyncDir is a device's directory of the container updates still owed:
// asyncDir/<suffix>/<hash>-<timestamp>, one JSON update each.
const asyncDir = "async_pending"

// update is a change to an object that its container's listing must
// learn: a PUT or a DELETE for the container nodes, with the headers
// that describe it (X-Timestamp, and for a PUT X-Size, X-Content-Type
// and X-Etag).
type update struct {
	Op        string            `json:"op"`
	Account   string            `json:"account"`
	Container string            `json:"container"`
	Object    string            `json:"object"`
	Headers   map[string]string `json:"headers"`
	// Nodes are the container nodes that have not yet taken the update.
	Nodes []containerNode `json:"nodes"`
}

// containerNode is one replica of a container: where the proxy said it
// lives.
type containerNode struct {
	Host      string `json:"host"`
	Device    string `json:"device"`
	Partition string `json:"partition"`
}

// updateContainers sends u to the container nodes that r names in
// X-Container-Host and X-Container-Device (comma-separated, in the same
// order) and X-Container-Partition, waiting at most UpdateTimeout, and
// records what did not get through in the device's async_pending for
// RunUpdater. An error means the record could not be written.
func (s *Server) updateContainers(r *http.Request, o location, ts objectstore.Timestamp, u update) error {
	hosts, devices, part := r.Header.Get("X-Container-Host"), r.Header.Get("X-Container-Device"), r.Header.Get("X-Container-Partition")
	if hosts == "" {
		return nil
	}
	hs, ds := strings.Split(hosts, ","), strings.Split(devices, ",")
	if len(hs) != len(ds) || part == "" {
		// As Swift's servers do, carry on: the object is stored, and the
		// container learns of it when the proxy sends a good request.
		s.log.Error("no container update", "object", o.name, "hosts", hosts, "devices", devices, "partition", part)
		return nil
	}
	for i := range hs {
		u.Nodes = append(u.Nodes, containerNode{strings.TrimSpace(hs[i]), strings.TrimSpace(ds[i]), part})
	}
	u.Account, u.Container, u.Object = o.path.Account, o.path.Container, o.path.Object
	u.Headers["X-Timestamp"] = ts.String()
	if u.Nodes = s.deliver(context.WithoutCancel(r.Context()), u); len(u.Nodes) == 0 {
		return nil
	}
	b, err := json.Marshal(u)
	if err != nil {
		return err
	}
	return node.WriteFile(filepath.Join(o.devDir, asyncDir, o.hash.Suffix()), o.hash.String()+"-"+ts.String(), b)
}

// deliver sends u to its nodes at once, waiting at most UpdateTimeout,
// and returns the nodes that did not take it.
func (s *Server) deliver(ctx context.Context, u update) []containerNode {
	ctx, cancel := context.WithTimeout(ctx, s.updateTimeout)
	defer cancel()
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		failed []containerNode
	)
	for _, n := range u.Nodes {
		wg.Go(func() {
			if err := s.send(ctx, u, n); err != nil {
				s.log.Warn("container update failed, kept for later", "host", n.Host, "device", n.Device,
					"object", "/"+u.Account+"/"+u.Container+"/"+u.Object, "err", err)
				mu.Lock()
				failed = append(failed, n)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return failed
}

func (s *Server) send(ctx context.Context, u update, n containerNode) error {
	path := "/" + url.PathEscape(n.Device) + "/" + url.PathEscape(n.Partition) + "/" +
		url.PathEscape(u.Account) + "/" + url.PathEscape(u.Container) + "/" + url.PathEscape(u.Object)
	req, err := http.NewRequestWithContext(ctx, u.Op, "http://"+n.Host+path, nil)
	if err != nil {
		return err
	}
	for k, v := range u.Headers {
		req.Header.Set(k, v)
	}
	if s.key != "" {
		req.Header.Set(node.KeyHeader, s.key)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s", u.Op, path, resp.Status)
	}
	return nil
}

// RunUpdater sends the container updates that failed when their objects
// changed, sweeping every device's async_pending now and then every
// interval until ctx is done. An update that gets through to all its
// nodes is removed; one that does not is kept, owing only the nodes that
// did not take it, for the next sweep; one superseded by a newer update
// of the same object is dropped, since the newer one tells the container
// what is current. Only one RunUpdater may run on a node's root at once.
func (s *Server) RunUpdater(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		s.sweep(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Server) sweep(ctx context.Context) {
	// Glob lists in lexical order: an object's updates together, oldest first.
	paths, _ := filepath.Glob(filepath.Join(s.root, "*", asyncDir, "*", "*"))
	var last string
	for _, path := range slices.Backward(paths) {
		name := filepath.Base(path)
		hash, ts, _ := strings.Cut(name, "-")
		if _, err := objectstore.ParseTimestamp(ts); err != nil || strings.HasPrefix(name, ".") || ctx.Err() != nil {
			continue // not an update, or one being written
		}
		if hash = filepath.Join(filepath.Dir(path), hash); hash == last {
			if err := os.Remove(path); err != nil {
				s.log.Error("updater: remove superseded update", "path", path, "err", err)
			}
			continue
		}
		last = hash
		if err := s.retry(ctx, path); err != nil {
			s.log.Error("updater", "path", path, "err", err)
		}
	}
}

// retry sends an update again to the nodes it still owes.
func (s *Server) retry(ctx context.Context, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var u update
	if err := json.Unmarshal(b, &u); err != nil {
		// Set aside for an operator: the updater skips the name.
		return errors.Join(err, os.Rename(path, path+".corrupt"))
	}
	failed := s.deliver(ctx, u)
	switch {
	case len(failed) == 0:
		return os.Remove(path)
	case len(failed) < len(u.Nodes):
		u.Nodes = failed
		if b, err = json.Marshal(u); err != nil {
			return err
		}
		return node.WriteFile(filepath.Dir(path), filepath.Base(path), b)
	}
	return nil
}
