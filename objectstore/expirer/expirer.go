// Package expirer deletes the objects whose X-Delete-At has passed, as
// Swift's object-expirer does. The object servers queue each object
// written with an X-Delete-At in the hidden account
// objectstore.ExpiringObjectsAccount; an Expirer on each storage node
// reads the queue containers whose time has come and, for each entry due,
// deletes the object from its replicas and then the entry. Until then an
// expired object is hidden (its object servers answer 404) but takes
// space and stays in its container's listing.
package expirer

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/trustack/trustack/objectstore"
	"github.com/trustack/trustack/objectstore/node"
	"github.com/trustack/trustack/objectstore/ring"
)

// Options are an Expirer's settings; a zero one means its default.
type Options struct {
	Key      string           // the cluster's backend key (see node.Guard); none if empty
	Client   *http.Client     // of its requests to the nodes; http.DefaultClient if nil
	Interval time.Duration    // between the starts of two passes; 300 s, Swift's, if zero
	Timeout  time.Duration    // of one request; 10 s if zero
	Now      func() time.Time // the clock that decides what is due; time.Now if nil
	Log      *slog.Logger     // what fails; discarded if nil
}

// Rings are the cluster's rings, by which the expirer finds the queue
// (account and container rings) and the objects (object ring).
type Rings struct {
	Account, Container, Object *ring.Ring
}

// Expirer works through the expirer's queue. Every node may run one: each
// queue container is worked on by one node only, the one of the first
// primary of its partition in the container ring. While that node is
// down, the container's entries wait (their objects stay hidden) until it
// is back or the ring names another. Its methods are safe for concurrent
// use, though passes should not overlap.
type Expirer struct {
	hasher objectstore.Hasher
	rings  Rings
	addr   string
	opts   Options
}

// New returns the expirer of the node whose container server the
// container ring names by addr, placing names with hasher.
func New(hasher objectstore.Hasher, rings Rings, addr string, opts Options) *Expirer {
	opts.Client = cmp.Or(opts.Client, http.DefaultClient)
	opts.Interval = cmp.Or(opts.Interval, 300*time.Second)
	opts.Timeout = cmp.Or(opts.Timeout, 10*time.Second)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	opts.Log = cmp.Or(opts.Log, slog.New(slog.DiscardHandler))
	return &Expirer{hasher: hasher, rings: rings, addr: addr, opts: opts}
}

// Run makes a pass at once and then every interval, until ctx ends.
func (e *Expirer) Run(ctx context.Context) {
	node.Every(ctx, e.opts.Interval, e.Pass)
}

// Pass works once through the queue containers that this node owns and
// whose time has come: it expires their entries that are due and
// deletes the containers it finds empty.
func (e *Expirer) Pass(ctx context.Context) {
	now := e.opts.Now().Unix()
	account := objectstore.ExpiringObjectsAccount
	for c, err := range e.names(ctx, e.rings.Account, e.partition(e.rings.Account, account, "", ""), account) {
		if err != nil {
			e.opts.Log.Error("expirer: list the queue", "err", err)
			return
		}
		at, err := strconv.ParseInt(c, 10, 64)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			continue // not a queue container
		case at > now:
			return // names sort by time
		}
		part := e.partition(e.rings.Container, account, c, "")
		if e.rings.Container.Nodes(part)[0].Addr() != e.addr {
			continue // another node's
		}
		if err := e.expireContainer(ctx, c, part, now); err != nil {
			e.opts.Log.Error("expirer", "container", c, "err", err)
		}
	}
}

// expireContainer expires the entries of a queue container that are due
// at now, or deletes the container if it has none.
func (e *Expirer) expireContainer(ctx context.Context, container string, part int, now int64) error {
	account := objectstore.ExpiringObjectsAccount
	entries := 0
	for entry, err := range e.names(ctx, e.rings.Container, part, account, container) {
		if err != nil {
			return err
		}
		entries++
		at, a, c, o, err := objectstore.ParseExpiringObjectsEntry(entry)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			e.opts.Log.Error("expirer: an entry of another form, left in the queue", "container", container, "err", err)
			continue
		case at > now:
			return nil // names sort by time
		}
		if e.deleteObject(ctx, at, a, c, o) {
			e.all(ctx, e.rings.Container, part, http.MethodDelete, backendPath(account, container, entry), e.timestamp(e.opts.Now()))
		}
	}
	if path := backendPath(account, container); entries == 0 && e.empty(ctx, part, path) {
		e.all(ctx, e.rings.Container, part, http.MethodDelete, path, e.timestamp(e.opts.Now()))
	}
	return nil
}

// empty reports whether every primary of a queue container (at path in
// partition part) says that it holds no entry, or that it does not
// exist. The expirer deletes a container only then: replication carries
// a deletion to the replicas that refused it, entries and all.
func (e *Expirer) empty(ctx context.Context, part int, path string) bool {
	for _, n := range e.rings.Container.Nodes(part) {
		resp, err := e.request(ctx, http.MethodHead, n, part, path, http.Header{})
		if err != nil {
			e.opts.Log.Warn("expirer", "method", http.MethodHead, "host", n.Addr(), "path", path, "err", err)
			return false
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound && (resp.StatusCode/100 != 2 || resp.Header.Get("X-Container-Object-Count") != "0") {
			return false
		}
	}
	return true
}

// deleteObject deletes an object that expired at deleteAt from its
// primaries, each telling a replica of its container, and reports whether
// a quorum of them no longer has it as it was queued: deleted, gone
// already (404), given another X-Delete-At (412) or written anew since
// (409). Every replica's tombstone has the time deleteAt, so that they
// agree whichever node deletes.
func (e *Expirer) deleteObject(ctx context.Context, deleteAt int64, account, container, object string) bool {
	part := e.partition(e.rings.Object, account, container, object)
	containerPart := e.partition(e.rings.Container, account, container, "")
	nodes := e.rings.Object.Nodes(part)
	statuses := make([]int, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() {
			h := http.Header{}
			h.Set("X-If-Delete-At", strconv.FormatInt(deleteAt, 10))
			h.Set("X-Timestamp", e.timestamp(time.Unix(deleteAt, 0)))
			node.ReplicaHeaders(h, "Container", e.rings.Container, containerPart, i)
			statuses[i] = e.do(ctx, http.MethodDelete, n, part, backendPath(account, container, object), h)
		})
	}
	wg.Wait()
	gone := 0
	for _, s := range statuses {
		if s/100 == 2 || s == http.StatusNotFound || s == http.StatusConflict || s == http.StatusPreconditionFailed {
			gone++
		}
	}
	return gone > len(nodes)/2
}

// all sends a request to every primary of a ring's partition; what fails
// is logged, and done again by a later pass.
func (e *Expirer) all(ctx context.Context, rg *ring.Ring, part int, method, path, ts string) {
	var wg sync.WaitGroup
	for _, n := range rg.Nodes(part) {
		wg.Go(func() { e.do(ctx, method, n, part, path, http.Header{"X-Timestamp": {ts}}) })
	}
	wg.Wait()
}

// names yields the names of an account's or a container's listing (at
// the ring's partition part) in order, page by page from the first
// replica that answers each; none if every replica says it does not
// exist. It ends with an error if no replica answers a page.
func (e *Expirer) names(ctx context.Context, rg *ring.Ring, part int, names ...string) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		q := url.Values{"format": {"json"}}
		for {
			page, err := e.page(ctx, rg, part, backendPath(names...)+"?"+q.Encode())
			if err != nil {
				yield("", err)
				return
			}
			for _, name := range page {
				if !yield(name, nil) {
					return
				}
			}
			if len(page) == 0 {
				return
			}
			q.Set("marker", page[len(page)-1])
		}
	}
}

// page returns the names of one page of a listing from the first of its
// replicas that answers.
func (e *Expirer) page(ctx context.Context, rg *ring.Ring, part int, path string) ([]string, error) {
	missing := 0
	nodes := rg.Nodes(part)
	for _, n := range nodes {
		var rows []struct{ Name string }
		status, err := e.get(ctx, n, part, path, &rows)
		switch {
		case status == http.StatusNotFound:
			missing++
		case err != nil:
			e.opts.Log.Warn("expirer: listing", "host", n.Addr(), "path", path, "err", err)
		default:
			names := make([]string, len(rows))
			for i, r := range rows {
				names[i] = r.Name
			}
			return names, nil
		}
	}
	if missing == len(nodes) {
		return nil, nil
	}
	return nil, fmt.Errorf("listing %s: no replica answered", path)
}

// get reads the JSON that a node answers to a GET of path into v, and
// returns its status.
func (e *Expirer) get(ctx context.Context, n ring.Device, part int, path string, v any) (int, error) {
	resp, err := e.request(ctx, http.MethodGet, n, part, path, http.Header{})
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNoContent:
		return resp.StatusCode, nil // an empty listing
	case resp.StatusCode != http.StatusOK:
		return resp.StatusCode, fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return resp.StatusCode, json.NewDecoder(resp.Body).Decode(v)
}

// do sends a request without a body to a node and returns its status, 0
// if none came; what is not a success is logged.
func (e *Expirer) do(ctx context.Context, method string, n ring.Device, part int, path string, h http.Header) int {
	resp, err := e.request(ctx, method, n, part, path, h)
	if err != nil {
		e.opts.Log.Warn("expirer", "method", method, "host", n.Addr(), "path", path, "err", err)
		return 0
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		e.opts.Log.Debug("expirer", "method", method, "host", n.Addr(), "path", path, "status", resp.StatusCode)
	}
	return resp.StatusCode
}

// request sends a request without a body to a node's device and
// partition part; closing the response's body ends its timeout.
func (e *Expirer) request(ctx context.Context, method string, n ring.Device, part int, path string, h http.Header) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, e.opts.Timeout)
	req, err := http.NewRequestWithContext(ctx, method, "http://"+n.Addr()+"/"+url.PathEscape(n.Device)+"/"+strconv.Itoa(part)+path, nil)
	if err != nil {
		cancel()
		return nil, err
	}
	req.Header = h
	if e.opts.Key != "" {
		req.Header.Set(node.KeyHeader, e.opts.Key)
	}
	resp, err := e.opts.Client.Do(req)
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = cancelBody{resp.Body, cancel}
	return resp, nil
}

// cancelBody ends its request's context when closed.
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// partition is the partition of an account, container or object in a
// ring.
func (e *Expirer) partition(rg *ring.Ring, account, container, object string) int {
	return rg.Partition(e.hasher.Path(account, container, object))
}

// timestamp is t as a request's X-Timestamp.
func (e *Expirer) timestamp(t time.Time) string { return objectstore.TimestampOf(t).String() }

// backendPath is the path of an account, container or object after the
// device and partition, each name escaped.
func backendPath(names ...string) string {
	var b strings.Builder
	for _, n := range names {
		b.WriteString("/" + url.PathEscape(n))
	}
	return b.String()
}
