package object

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
)

// asyncDir is a device's directory of the container updates still owed:
// asyncDir/<suffix>/<hash>-<timestamp>, one JSON update each, by the hash
// of the row it changes (an object's in its container's listing, or its
// entry in the expirer's queue).
const asyncDir = "async_pending"

// update is a change to an object that a container's listing must learn
// (its own container's, or the expirer's queue's): a PUT or a DELETE of
// a row for the container nodes, with the headers that describe it
// (X-Timestamp, and for a PUT X-Size, X-Content-Type and X-Etag).
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

// updateContainers sends u, a change of o at ts, to the replicas of o's
// container that r names (see namedNodes, kind "Container").
func (s *Server) updateContainers(r *http.Request, o location, ts objectstore.Timestamp, u update) error {
	u.Account, u.Container, u.Object = o.path.Account, o.path.Container, o.path.Object
	u.Nodes = s.namedNodes(r.Header, "Container", o)
	return s.update(r.Context(), o.devDir, ts, u)
}

// The queue entry of an expiring object is listed as an empty text
// object, as in Swift.
var queueEntryHeaders = map[string]string{"X-Size": "0", "X-Content-Type": "text/plain", "X-Etag": "d41d8cd98f00b204e9800998ecf8427e"}

// updateExpiringQueue moves o's entry in the expirer's queue as a write
// at ts changes its X-Delete-At from one time to another ("" for none),
// as Swift's object server does. The new entry goes to the replica of
// its queue container that r names (see namedNodes, kind "Delete-At",
// and X-Delete-At-Container). The old one is removed from every replica
// of its container, which the container ring places: no request says
// where an entry written earlier went. Without a container ring, the old
// entry stays until the expirer finds that it no longer matches the
// object and drops it.
func (s *Server) updateExpiringQueue(r *http.Request, o location, ts objectstore.Timestamp, from, to string) error {
	if from == to {
		return nil
	}
	var errs []error
	if at, err := strconv.ParseInt(to, 10, 64); err == nil {
		errs = append(errs, s.update(r.Context(), o.devDir, ts, update{Op: http.MethodPut,
			Account:   objectstore.ExpiringObjectsAccount,
			Container: cmp.Or(r.Header.Get("X-Delete-At-Container"), objectstore.ExpiringObjectsContainer(at)),
			Object:    objectstore.ExpiringObjectsEntry(at, o.path.Account, o.path.Container, o.path.Object),
			Headers:   maps.Clone(queueEntryHeaders),
			Nodes:     s.namedNodes(r.Header, "Delete-At", o)}))
	}
	if at, err := strconv.ParseInt(from, 10, 64); err == nil && s.containerRing != nil {
		container := objectstore.ExpiringObjectsContainer(at)
		part := s.containerRing.Partition(s.hasher.Path(objectstore.ExpiringObjectsAccount, container, ""))
		u := update{Op: http.MethodDelete, Account: objectstore.ExpiringObjectsAccount, Container: container,
			Object: objectstore.ExpiringObjectsEntry(at, o.path.Account, o.path.Container, o.path.Object), Headers: map[string]string{}}
		for _, n := range s.containerRing.Nodes(part) {
			u.Nodes = append(u.Nodes, containerNode{n.Addr(), n.Device, strconv.Itoa(part)})
		}
		errs = append(errs, s.update(r.Context(), o.devDir, ts, u))
	}
	return errors.Join(errs...)
}

// namedNodes returns the container replicas that h names for a change of
// o: X-<kind>-Host and X-<kind>-Device, comma-separated in the same
// order, and X-<kind>-Partition. It returns none if h names none, or
// names them wrong: as Swift's servers do, the object server carries on,
// the object stored, and the container learns of it when the proxy sends
// a good request.
func (s *Server) namedNodes(h http.Header, kind string, o location) []containerNode {
	hosts, devices, part := h.Get("X-"+kind+"-Host"), h.Get("X-"+kind+"-Device"), h.Get("X-"+kind+"-Partition")
	if hosts == "" {
		return nil
	}
	hs, ds := strings.Split(hosts, ","), strings.Split(devices, ",")
	if len(hs) != len(ds) || part == "" {
		s.log.Error("no update of "+kind, "object", o.name, "hosts", hosts, "devices", devices, "partition", part)
		return nil
	}
	var nodes []containerNode
	for i := range hs {
		nodes = append(nodes, containerNode{strings.TrimSpace(hs[i]), strings.TrimSpace(ds[i]), part})
	}
	return nodes
}

// update sends u, made at ts, to its nodes, waiting at most
// UpdateTimeout, and records what did not get through in the
// async_pending of the device devDir for RunUpdater, named by the hash
// of the row it changes. An error means the record could not be written.
func (s *Server) update(ctx context.Context, devDir string, ts objectstore.Timestamp, u update) error {
	if len(u.Nodes) == 0 {
		return nil
	}
	u.Headers["X-Timestamp"] = ts.String()
	if u.Nodes = s.deliver(context.WithoutCancel(ctx), u); len(u.Nodes) == 0 {
		return nil
	}
	b, err := json.Marshal(u)
	if err != nil {
		return err
	}
	h := s.hasher.Path(u.Account, u.Container, u.Object)
	return node.WriteFile(filepath.Join(devDir, asyncDir, h.Suffix()), h.String()+"-"+ts.String(), b)
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
	node.Every(ctx, interval, s.sweep)
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
