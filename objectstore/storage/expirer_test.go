package storage_test

import (
	"encoding/json"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trustack/trustack/internal/testclock"
	"github.com/trustack/trustack/objectstore"
	"github.com/trustack/trustack/objectstore/node"
	"github.com/trustack/trustack/objectstore/proxy"
	"github.com/trustack/trustack/objectstore/ring"
	"github.com/trustack/trustack/objectstore/storage"
)

// expirerCluster is a local cluster of four storage nodes whose object
// servers and expirers (a pass every 20 ms) read clock, behind a proxy
// that reads it too.
type expirerCluster struct {
	t     *testing.T
	dir   string
	cfg   storage.Config
	rings proxy.Rings
	clock *testclock.Clock
	base  string // the URL of the account AUTH_p1
}

func newExpirerCluster(t *testing.T) *expirerCluster {
	t.Helper()
	c := &expirerCluster{t: t, dir: t.TempDir(), clock: testclock.New(time.Now())}
	c.cfg = storage.Config{Hasher: objectstore.Hasher{Prefix: "p", Suffix: "s"}, Key: "k", Now: c.clock.Now,
		UpdaterInterval: 50 * time.Millisecond, ReplicatorInterval: 200 * time.Millisecond, ExpirerInterval: 20 * time.Millisecond}
	cfgs, err := storage.Local(c.dir, filepath.Join(c.dir, "rings"), 4, c.cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, cfg := range cfgs {
		n, err := storage.Start(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(n.Close)
	}
	c.rings = *cfgs[0].Rings
	srv := httptest.NewServer(proxy.New(c.rings, validator{}, proxy.Options{Key: c.cfg.Key, Hasher: c.cfg.Hasher, Now: c.clock.Now}))
	t.Cleanup(srv.Close)
	c.base = srv.URL + "/v1/AUTH_p1"
	return c
}

// do sends a request through the proxy, with headers given as name,
// value pairs, and fails the test unless it gets status want.
func (c *expirerCluster) do(method, path string, want int, headers ...string) {
	c.t.Helper()
	req, _ := http.NewRequest(method, c.base+path, strings.NewReader("content"))
	req.Header.Set("X-Auth-Token", "t")
	for i := 0; i < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != want {
		c.t.Fatalf("%s %s: got %s, want %d", method, path, resp.Status, want)
	}
}

// dataFiles counts the copies of an object of AUTH_p1/c on the nodes'
// disks.
func (c *expirerCluster) dataFiles(object string) int {
	h := c.cfg.Hasher.Path("AUTH_p1", "c", object)
	n := 0
	filepath.WalkDir(c.dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".data") && filepath.Base(filepath.Dir(p)) == h.String() {
			n++
		}
		return nil
	})
	return n
}

// queue returns the entries of the expirer's queue, and the names of its
// containers, that any replica lists, asking the nodes directly.
func (c *expirerCluster) queue() (entries, containers []string) {
	c.t.Helper()
	containers = c.names(c.rings.Account, objectstore.ExpiringObjectsAccount)
	for _, name := range containers {
		entries = append(entries, c.names(c.rings.Container, objectstore.ExpiringObjectsAccount, name)...)
	}
	slices.Sort(entries)
	return slices.Compact(entries), containers
}

// names returns the names that any replica of an account's or a
// container's listing holds.
func (c *expirerCluster) names(rg *ring.Ring, path ...string) []string {
	c.t.Helper()
	part := rg.Partition(c.cfg.Hasher.Path(path[0], strings.Join(path[1:], ""), ""))
	var names []string
	for _, d := range rg.Nodes(part) {
		var rows []struct{ Name string }
		resp := c.backend(d, "GET", part, path, nil)
		if resp.StatusCode == http.StatusOK {
			if err := json.NewDecoder(resp.Body).Decode(&rows); err != nil {
				c.t.Fatal(err)
			}
		}
		resp.Body.Close()
		for _, r := range rows {
			if !slices.Contains(names, r.Name) {
				names = append(names, r.Name)
			}
		}
	}
	return names
}

// backend sends a request to a node's device d, as the nodes send them
// to one another.
func (c *expirerCluster) backend(d ring.Device, method string, part int, path []string, h http.Header) *http.Response {
	c.t.Helper()
	u := "http://" + d.Addr() + "/" + d.Device + "/" + strconv.Itoa(part)
	for _, name := range path {
		u += "/" + url.PathEscape(name)
	}
	req, _ := http.NewRequest(method, u+"?format=json", nil)
	if h != nil {
		req.Header = h
	}
	req.Header.Set(node.KeyHeader, c.cfg.Key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp
}

// queueEntry puts an object's entry in every replica of its queue
// container at the clock's time, as an object server would.
func (c *expirerCluster) queueEntry(deleteAt int64, object string) {
	c.t.Helper()
	container := objectstore.ExpiringObjectsContainer(deleteAt)
	path := []string{objectstore.ExpiringObjectsAccount, container, objectstore.ExpiringObjectsEntry(deleteAt, "AUTH_p1", "c", object)}
	part := c.rings.Container.Partition(c.cfg.Hasher.Path(objectstore.ExpiringObjectsAccount, container, ""))
	for _, d := range c.rings.Container.Nodes(part) {
		h := http.Header{"X-Timestamp": {objectstore.TimestampOf(c.clock.Now()).String()},
			"X-Size": {"0"}, "X-Content-Type": {"text/plain"}, "X-Etag": {"d41d8cd98f00b204e9800998ecf8427e"}}
		if resp := c.backend(d, "PUT", part, path, h); resp.StatusCode != http.StatusCreated {
			c.t.Fatalf("PUT of a queue entry: got %s, want 201", resp.Status)
		}
	}
}

// waitUntil waits, polling, for ok, and fails the test after 20 s.
func (c *expirerCluster) waitUntil(what string, ok func() bool) {
	c.t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !ok(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			c.t.Fatalf("waited 20 s for %s", what)
		}
	}
}

// TestExpirer: objects written with X-Delete-After or X-Delete-At leave
// GET, their container's listing and every node's disk once the
// expirer's pass after their time has run, and their queue entries go.
// An object rewritten without X-Delete-At stays, also when the removal
// of its queue entry got lost (the expirer's delete is conditional on
// X-Delete-At); so does one whose X-Delete-At a POST moved later, until
// then. The queue ends empty, its containers deleted.
func TestExpirer(t *testing.T) {
	c := newExpirerCluster(t)
	now := c.clock.Now().Unix()
	minute, hour := now+60, now+3600
	entry := func(at int64, object string) string {
		return objectstore.ExpiringObjectsEntry(at, "AUTH_p1", "c", object)
	}

	c.do("PUT", "/c", http.StatusCreated)
	c.do("PUT", "/c/gone", http.StatusCreated, "X-Delete-After", "60")
	c.do("PUT", "/c/dir/gone too", http.StatusCreated, "X-Delete-At", strconv.FormatInt(minute, 10))
	c.do("PUT", "/c/kept", http.StatusCreated, "X-Delete-After", "60")
	c.do("PUT", "/c/kept", http.StatusCreated)
	c.do("PUT", "/c/moved", http.StatusCreated, "X-Delete-After", "60")
	c.do("POST", "/c/moved", http.StatusAccepted, "X-Delete-After", "3600")
	c.do("PUT", "/c/stale", http.StatusCreated, "X-Delete-After", "60")
	c.do("PUT", "/c/stale", http.StatusCreated)
	c.clock.Add(time.Second)
	c.queueEntry(minute, "stale") // back, as if its removal had not reached the queue

	want := []string{entry(minute, "dir/gone too"), entry(minute, "gone"), entry(minute, "stale"), entry(hour, "moved")}
	slices.Sort(want)
	c.waitUntil("the queue's entries, in listings of its account's containers", func() bool {
		entries, _ := c.queue()
		return slices.Equal(entries, want)
	})
	for _, o := range []string{"gone", "dir/gone too", "kept", "moved", "stale"} {
		if status, _ := get(t, c.base+"/c/"+o); status != http.StatusOK {
			t.Errorf("GET %s before its time: got %d, want 200", o, status)
		}
	}

	c.clock.Add(time.Minute)
	c.waitUntil("the entries due gone from the queue", func() bool {
		entries, _ := c.queue()
		return slices.Equal(entries, []string{entry(hour, "moved")})
	})
	c.waitUntil("the expired objects gone from the listing", func() bool {
		_, listing := get(t, c.base+"/c")
		return listing == "kept\nmoved\nstale\n"
	})
	for o, want := range map[string]int{"gone": http.StatusNotFound, "dir/gone too": http.StatusNotFound,
		"kept": http.StatusOK, "moved": http.StatusOK, "stale": http.StatusOK} {
		if status, _ := get(t, c.base+"/c/"+o); status != want {
			t.Errorf("GET %s after a minute: got %d, want %d", o, status, want)
		}
		if got, want := c.dataFiles(o), map[bool]int{true: 0, false: 3}[want == http.StatusNotFound]; got != want {
			t.Errorf("copies of %s on disk after a minute: got %d, want %d", o, got, want)
		}
	}

	c.clock.Add(time.Hour)
	c.waitUntil("an empty queue, its containers deleted", func() bool {
		entries, containers := c.queue()
		return len(entries) == 0 && len(containers) == 0
	})
	if status, _ := get(t, c.base+"/c/moved"); status != http.StatusNotFound {
		t.Errorf("GET moved after an hour: got %d, want 404", status)
	}
	if _, listing := get(t, c.base+"/c"); listing != "kept\nstale\n" {
		t.Errorf("listing after an hour: got %q, want %q", listing, "kept\nstale\n")
	}
	if n := c.dataFiles("moved"); n != 0 {
		t.Errorf("copies of moved on disk after an hour: got %d, want 0", n)
	}
}
