package object_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/trustack/trustack/objectstore"
	"github.com/trustack/trustack/objectstore/object"
	"github.com/trustack/trustack/objectstore/ring"
)

// ringOf returns a container ring of one device, sdq, on node c.
func ringOf(t testing.TB, c *containerNode) *ring.Ring {
	t.Helper()
	host, port, _ := net.SplitHostPort(c.addr())
	p, _ := strconv.Atoi(port)
	b, err := ring.NewBuilder(4, 1, 1)
	if err == nil {
		_, err = b.AddDevice(ring.Device{Region: 1, Zone: 1, IP: host, Port: p, Device: "sdq", Weight: 1})
	}
	if err == nil {
		_, _, err = b.Rebalance(time.Now(), rand.New(rand.NewPCG(1, 2)))
	}
	if err != nil {
		t.Fatal(err)
	}
	r, err := b.Ring()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// queueUpdate is the update that node c records for an object's entry in
// the expirer's queue at deleteAt: put (or else deleted) at ts, on the
// named replica (partition 9) or, for a removal, where the ring places
// the queue container.
func queueUpdate(r *ring.Ring, put bool, deleteAt int64, object, ts string) string {
	container := objectstore.ExpiringObjectsContainer(deleteAt)
	entry := url.PathEscape(objectstore.ExpiringObjectsEntry(deleteAt, "a", "c", object))
	if put {
		return fmt.Sprintf("PUT /sdq/9/.expiring_objects/%s/%s ts=%s size=0 type=text/plain etag=d41d8cd98f00b204e9800998ecf8427e key=",
			container, entry, ts)
	}
	part := r.Partition(hasher.Path(objectstore.ExpiringObjectsAccount, container, ""))
	return fmt.Sprintf("DELETE /sdq/%d/.expiring_objects/%s/%s ts=%s size= type= etag= key=", part, container, entry, ts)
}

// TestExpiringQueue: a write with an X-Delete-At queues the object for
// the expirer in the replica the proxy names; a write that changes or
// drops it, or deletes the object, removes the old entry.
func TestExpiringQueue(t *testing.T) {
	q := newContainerNode(t, true)
	r := ringOf(t, q)
	n := newNode(t, object.Options{ContainerRing: r})
	first, later := epoch.Unix()+2000, epoch.Unix()+100_000 // in two queue containers
	where := func(at int64) []string {
		return []string{"X-Delete-At", strconv.FormatInt(at, 10), "X-Delete-At-Container", objectstore.ExpiringObjectsContainer(at),
			"X-Delete-At-Host", q.addr(), "X-Delete-At-Device", "sdq", "X-Delete-At-Partition", "9"}
	}
	n.put("o", ts(1), "data", where(first)...)
	resp, _ := n.do("POST", "/sda/0/a/c/o", "", append(where(later), "X-Timestamp", ts(2))...)
	wantStatus(t, "POST", resp, http.StatusAccepted)
	resp, _ = n.do("POST", "/sda/0/a/c/o", "", append(where(later), "X-Timestamp", ts(3))...) // the same time: no change
	wantStatus(t, "POST", resp, http.StatusAccepted)
	n.put("o", ts(4), "data")
	n.put("gone", ts(5), "data", where(first)...)
	resp, _ = n.do("DELETE", "/sda/0/a/c/gone", "", "X-Timestamp", ts(6))
	wantStatus(t, "DELETE", resp, http.StatusNoContent)

	want := []string{
		queueUpdate(r, true, first, "o", ts(1)),
		queueUpdate(r, true, later, "o", ts(2)), queueUpdate(r, false, first, "o", ts(2)),
		queueUpdate(r, false, later, "o", ts(4)),
		queueUpdate(r, true, first, "gone", ts(5)),
		queueUpdate(r, false, first, "gone", ts(6)),
	}
	if got := q.got(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("queue updates:\ngot  %q\nwant %q", got, want)
	}
}

// TestExpiringQueueAsyncPending: a queue entry that its container node
// does not take waits in async_pending, under the entry's own hash, and
// the updater sends it later.
func TestExpiringQueueAsyncPending(t *testing.T) {
	q := newContainerNode(t, true)
	q.mu.Lock()
	q.down = true
	q.mu.Unlock()
	n := newNode(t, object.Options{})
	at := epoch.Unix() + 2000
	container, entry := objectstore.ExpiringObjectsContainer(at), objectstore.ExpiringObjectsEntry(at, "a", "c", "o")
	n.put("o", ts(1), "data", "X-Delete-At", strconv.FormatInt(at, 10), "X-Delete-At-Container", container,
		"X-Delete-At-Host", q.addr(), "X-Delete-At-Device", "sdq", "X-Delete-At-Partition", "9")
	h := hasher.Path(objectstore.ExpiringObjectsAccount, container, entry)
	pending := filepath.Join(n.root, "sda", "async_pending", h.Suffix(), h.String()+"-"+ts(1))
	if _, err := os.Stat(pending); err != nil {
		t.Fatalf("async pending queue entry: %v", err)
	}

	q.mu.Lock()
	q.down = false
	q.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.s.RunUpdater(ctx, 20*time.Millisecond); close(done) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "the pending entry's removal", func() bool { _, err := os.Stat(pending); return errors.Is(err, fs.ErrNotExist) })
	if got, want := q.got(), []string{queueUpdate(nil, true, at, "o", ts(1))}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("queue updates: got %q, want %q", got, want)
	}
}
