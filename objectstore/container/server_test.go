package container_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trustack/trustack/objectstore"
	"github.com/trustack/trustack/objectstore/account"
	"github.com/trustack/trustack/objectstore/container"
	"github.com/trustack/trustack/objectstore/node/nodetest"
	"github.com/trustack/trustack/objectstore/ring"
)

var hasher = objectstore.Hasher{Prefix: "pre", Suffix: "suf"}

// server is a node with one device, sda, serving h.
type server struct {
	root string
	url  string
}

func start(tb testing.TB, h interface {
	http.Handler
	Close()
}, root string) server {
	tb.Helper()
	ts := httptest.NewServer(h)
	tb.Cleanup(func() { ts.Close(); h.Close() })
	return server{root: root, url: ts.URL}
}

func deviceRoot(tb testing.TB) string {
	tb.Helper()
	root := tb.TempDir()
	if err := os.Mkdir(filepath.Join(root, "sda"), 0o750); err != nil {
		tb.Fatal(err)
	}
	return root
}

func newContainerServer(tb testing.TB, opts container.Options) (server, *container.Server) {
	tb.Helper()
	opts.Log = slog.New(slog.DiscardHandler)
	root := deviceRoot(tb)
	s := container.New(root, hasher, opts)
	return start(tb, s, root), s
}

func newAccountServer(tb testing.TB, key string) server {
	tb.Helper()
	root := deviceRoot(tb)
	return start(tb, account.New(root, hasher, account.Options{Key: key, Log: slog.New(slog.DiscardHandler)}), root)
}

// do sends a request with headers given as name, value pairs.
func do(tb testing.TB, s server, method, path string, headers ...string) nodetest.Reply {
	tb.Helper()
	return nodetest.Do(tb, method, s.url+path, nil, headers...)
}

func TestContainerLifecycle(t *testing.T) {
	s, _ := newContainerServer(t, container.Options{})
	const c = "/sda/3/AUTH_a/c"
	steps := []struct {
		name       string
		method     string
		path       string
		headers    []string
		wantStatus int
		wantHeader map[string]string // "" for absent
	}{
		{"HEAD of a missing container", "HEAD", c, nil, 404, nil},
		{"PUT without a timestamp", "PUT", c, nil, 400, nil},
		{"PUT creates", "PUT", c, []string{"X-Timestamp", "1000.5", "X-Container-Meta-Color", "red", "X-Container-Read", ".r:*"}, 201, nil},
		{"PUT again", "PUT", c, []string{"X-Timestamp", "1001", "X-Container-Sysmeta-Owner", "x"}, 202, nil},
		{"HEAD", "HEAD", c, nil, 204, map[string]string{
			"X-Container-Object-Count": "0", "X-Container-Bytes-Used": "0",
			"X-Timestamp": "0000001000.50000", "X-Put-Timestamp": "0000001001.00000",
			"X-Backend-Put-Timestamp": "0000001001.00000", "X-Backend-Delete-Timestamp": "0000000000.00000",
			"X-Container-Meta-Color": "red", "X-Container-Read": ".r:*", "X-Container-Sysmeta-Owner": "x"}},
		{"POST without a timestamp", "POST", c, nil, 400, nil},
		{"POST changes and removes metadata", "POST", c, []string{"X-Timestamp", "1002", "X-Container-Meta-Color", "blue", "X-Container-Read", ""}, 204, nil},
		{"POST of older metadata", "POST", c, []string{"X-Timestamp", "1001.5", "X-Container-Meta-Color", "green"}, 204, nil},
		{"HEAD after POSTs", "HEAD", c, nil, 204, map[string]string{"X-Container-Meta-Color": "blue", "X-Container-Read": ""}},
		{"object PUT", "PUT", c + "/dir/o%201", []string{"X-Timestamp", "1003", "X-Size", "11", "X-Content-Type", "text/plain", "X-Etag", "e"}, 201, nil},
		{"object PUT without a size", "PUT", c + "/o", []string{"X-Timestamp", "1003", "X-Content-Type", "text/plain", "X-Etag", "e"}, 400, nil},
		{"object GET is no row operation", "GET", c + "/o", nil, 405, nil},
		{"HEAD counts the object", "HEAD", c, nil, 204, map[string]string{"X-Container-Object-Count": "1", "X-Container-Bytes-Used": "11"}},
		{"DELETE of a non-empty container", "DELETE", c, []string{"X-Timestamp", "1004"}, 409, nil},
		{"object DELETE", "DELETE", c + "/dir/o%201", []string{"X-Timestamp", "1004"}, 204, nil},
		{"DELETE", "DELETE", c, []string{"X-Timestamp", "1005"}, 204, nil},
		{"HEAD of a deleted container", "HEAD", c, nil, 404, map[string]string{
			"X-Backend-Put-Timestamp": "0000001001.00000", "X-Backend-Delete-Timestamp": "0000001005.00000",
			"X-Backend-Status-Changed-At": "0000001005.00000"}},
		{"GET of a deleted container", "GET", c, nil, 404, nil},
		{"POST to a deleted container", "POST", c, []string{"X-Timestamp", "1006"}, 404, nil},
		{"DELETE again", "DELETE", c, []string{"X-Timestamp", "1006"}, 404, nil},
		{"object row of a deleted container is still kept", "PUT", c + "/late", []string{"X-Timestamp", "1000.1", "X-Size", "1", "X-Content-Type", "a/b", "X-Etag", "e"}, 201, nil},
		{"PUT older than the DELETE", "PUT", c, []string{"X-Timestamp", "1000.9"}, 409, nil},
		{"PUT newer recreates", "PUT", c, []string{"X-Timestamp", "1007"}, 201, nil},
		{"HEAD of the recreated container", "HEAD", c, nil, 204, map[string]string{
			"X-Timestamp": "0000001007.00000", "X-Container-Meta-Color": "", "X-Container-Object-Count": "1"}},
		{"object row of a missing container", "PUT", "/sda/3/AUTH_a/none/o", []string{"X-Timestamp", "1", "X-Size", "1", "X-Content-Type", "a/b", "X-Etag", "e"}, 404, nil},
		{"object DELETE of a missing container", "DELETE", "/sda/3/AUTH_a/none/o", []string{"X-Timestamp", "1"}, 404, nil},
		{"POST to a missing container", "POST", "/sda/3/AUTH_a/none", []string{"X-Timestamp", "1"}, 404, nil},
		{"DELETE of a missing container", "DELETE", "/sda/3/AUTH_a/none", []string{"X-Timestamp", "1"}, 404, nil},
	}
	for _, st := range steps {
		got := do(t, s, st.method, st.path, st.headers...)
		if got.Status != st.wantStatus {
			t.Errorf("%s: got %d, want %d (%s)", st.name, got.Status, st.wantStatus, strings.TrimSpace(got.Body))
		}
		for name, want := range st.wantHeader {
			if v := got.Header.Get(name); v != want {
				t.Errorf("%s: %s: got %q, want %q", st.name, name, v, want)
			}
		}
	}
}

func TestObjectRowsNewestWins(t *testing.T) {
	s, _ := newContainerServer(t, container.Options{})
	const c = "/sda/0/AUTH_a/c"
	do(t, s, "PUT", c, "X-Timestamp", "100")
	put := func(ts, size, etag string) {
		do(t, s, "PUT", c+"/o", "X-Timestamp", ts, "X-Size", size, "X-Content-Type", "text/plain", "X-Etag", etag)
	}
	// Out of order: the newest PUT first, then an older PUT and DELETE.
	put("300", "30", "new")
	put("200", "20", "old")
	do(t, s, "DELETE", c+"/o", "X-Timestamp", "250")
	put("150", "15", "older")
	got := do(t, s, "GET", c)
	var list []map[string]any
	if err := json.Unmarshal([]byte(got.Body), &list); err != nil {
		t.Fatalf("listing %q: %v", got.Body, err)
	}
	if len(list) != 1 || list[0]["hash"] != "new" || list[0]["bytes"] != 30.0 {
		t.Errorf("got %v, want only the PUT at 300", list)
	}
	if n, b := got.Header.Get("X-Container-Object-Count"), got.Header.Get("X-Container-Bytes-Used"); n != "1" || b != "30" {
		t.Errorf("got %s objects, %s bytes; want 1, 30", n, b)
	}
	do(t, s, "DELETE", c+"/o", "X-Timestamp", "400")
	put("350", "35", "late")
	if got := do(t, s, "HEAD", c); got.Header.Get("X-Container-Object-Count") != "0" || got.Header.Get("X-Container-Bytes-Used") != "0" {
		t.Errorf("after a DELETE newer than every PUT: got %s objects, %s bytes; want 0, 0",
			got.Header.Get("X-Container-Object-Count"), got.Header.Get("X-Container-Bytes-Used"))
	}
}

func TestListingHTTP(t *testing.T) {
	s, _ := newContainerServer(t, container.Options{})
	const c = "/sda/0/AUTH_a/c"
	do(t, s, "PUT", c, "X-Timestamp", "100")
	if got := do(t, s, "GET", c); got.Status != 200 || strings.TrimSpace(got.Body) != "[]" {
		t.Errorf("empty listing: got %d %q, want 200 []", got.Status, got.Body)
	}
	for _, name := range []string{"a/1", "a/2", "b", "c/x/1", "<&>"} {
		do(t, s, "PUT", c+"/"+name, "X-Timestamp", "1704164645.12345", "X-Size", "3", "X-Content-Type", "text/plain", "X-Etag", "abc")
	}
	got := do(t, s, "GET", c+"?limit=1")
	want := `[{"name":"<&>","hash":"abc","bytes":3,"content_type":"text/plain","last_modified":"2024-01-02T03:04:05.123450"}]`
	if got.Status != 200 || strings.TrimSpace(got.Body) != want || got.Header.Get("Content-Type") != "application/json; charset=utf-8" {
		t.Errorf("got %d %s %q, want 200 %s in JSON", got.Status, got.Header.Get("Content-Type"), got.Body, want)
	}
	tests := []struct {
		query      string
		wantStatus int
		want       string
	}{
		{"", 200, "<&> a/1 a/2 b c/x/1"},
		{"?prefix=a/", 200, "a/1 a/2"},
		{"?delimiter=/", 200, "<&> [a/] b [c/]"},
		{"?prefix=c/&delimiter=/", 200, "[c/x/]"},
		{"?delimiter=/&marker=a/", 200, "b [c/]"},
		{"?marker=a/1&end_marker=c", 200, "a/2 b"},
		{"?reverse=on&limit=2", 200, "c/x/1 b"},
		{"?reverse=true&delimiter=/", 200, "[c/] b [a/] <&>"},
		{"?limit=10000", 200, "<&> a/1 a/2 b c/x/1"},
		{"?limit=10001", 412, ""},
		{"?limit=x", 412, ""},
		{"?delimiter=ab", 412, ""},
		{"?prefix=%FF", 400, ""},
	}
	for _, tt := range tests {
		got := do(t, s, "GET", c+tt.query)
		if got.Status != tt.wantStatus {
			t.Errorf("GET %s: got %d, want %d", tt.query, got.Status, tt.wantStatus)
			continue
		}
		if got.Status != 200 {
			continue
		}
		var entries []struct{ Name, Subdir string }
		if err := json.Unmarshal([]byte(got.Body), &entries); err != nil {
			t.Fatalf("GET %s: %q: %v", tt.query, got.Body, err)
		}
		var names []string
		for _, e := range entries {
			if e.Subdir != "" {
				names = append(names, "["+e.Subdir+"]")
			} else {
				names = append(names, e.Name)
			}
		}
		if s := strings.Join(names, " "); s != tt.want {
			t.Errorf("GET %s: got %q, want %q", tt.query, s, tt.want)
		}
	}
}

func TestRequestChecks(t *testing.T) {
	s, _ := newContainerServer(t, container.Options{Key: "secret"})
	tests := []struct {
		name, method, path string
		headers            []string
		want               int
	}{
		{"no key", "HEAD", "/sda/0/a/c", nil, 401},
		{"wrong key", "HEAD", "/sda/0/a/c", []string{"X-Backend-Key", "guess"}, 401},
		{"key", "HEAD", "/sda/0/a/c", []string{"X-Backend-Key", "secret"}, 404},
		{"missing device", "PUT", "/sdb/0/a/c", []string{"X-Backend-Key", "secret", "X-Timestamp", "1"}, 507},
		{"no container", "HEAD", "/sda/0/a", []string{"X-Backend-Key", "secret"}, 400},
		{"bad partition", "HEAD", "/sda/x/a/c", []string{"X-Backend-Key", "secret"}, 400},
		{"way out of the root", "HEAD", "/../0/a/c", []string{"X-Backend-Key", "secret"}, 400},
		{"bad timestamp", "PUT", "/sda/0/a/c", []string{"X-Backend-Key", "secret", "X-Timestamp", "yesterday"}, 400},
		{"hosts without devices", "PUT", "/sda/0/a/c", []string{"X-Backend-Key", "secret", "X-Timestamp", "1",
			"X-Account-Host", "h:1,h:2", "X-Account-Device", "sda", "X-Account-Partition", "0"}, 400},
		{"unknown method", "PATCH", "/sda/0/a/c", []string{"X-Backend-Key", "secret"}, 405},
	}
	for _, tt := range tests {
		if got := do(t, s, tt.method, tt.path, tt.headers...); got.Status != tt.want {
			t.Errorf("%s: got %d, want %d", tt.name, got.Status, tt.want)
		}
	}
}

// accountHeaders names an account server for a container PUT or
// DELETE, as the proxy does.
func accountHeaders(a server, key string) []string {
	return []string{"X-Backend-Key", key, "X-Account-Host", strings.TrimPrefix(a.url, "http://"),
		"X-Account-Device", "sda", "X-Account-Partition", "5"}
}

// eventually waits up to five seconds for cond.
func eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not within 5 s", what)
		}
	}
}

func TestAccountUpdates(t *testing.T) {
	const key = "k"
	a := newAccountServer(t, key)
	s, srv := newContainerServer(t, container.Options{Key: key, UpdateTimeout: time.Second})
	if got := do(t, s, "PUT", "/sda/0/AUTH_a/c", append(accountHeaders(a, key), "X-Timestamp", "100")...); got.Status != 404 {
		t.Errorf("PUT with no account on its servers: got %d, want 404", got.Status)
	}
	do(t, a, "PUT", "/sda/5/AUTH_a", "X-Backend-Key", key, "X-Timestamp", "50")
	if got := do(t, s, "PUT", "/sda/0/AUTH_a/c", append(accountHeaders(a, key), "X-Timestamp", "100")...); got.Status != 202 {
		t.Fatalf("PUT: got %d, want 202", got.Status)
	}
	head := func() http.Header { return do(t, a, "HEAD", "/sda/5/AUTH_a", "X-Backend-Key", key).Header }
	if n := head().Get("X-Account-Container-Count"); n != "1" {
		t.Errorf("account's containers after the PUT: got %s, want 1", n)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.RunUpdater(ctx, 20*time.Millisecond)
	for i, name := range []string{"o1", "o2", "o3"} {
		do(t, s, "PUT", "/sda/0/AUTH_a/c/"+name, "X-Backend-Key", key, "X-Timestamp", "200", "X-Size", "10",
			"X-Content-Type", "a/b", "X-Etag", "e")
		if i == 2 {
			do(t, s, "DELETE", "/sda/0/AUTH_a/c/o1", "X-Backend-Key", key, "X-Timestamp", "300")
		}
	}
	eventually(t, "account's counts after object writes", func() bool {
		h := head()
		return h.Get("X-Account-Object-Count") == "2" && h.Get("X-Account-Bytes-Used") == "20"
	})
	got := do(t, a, "GET", "/sda/5/AUTH_a", "X-Backend-Key", key)
	if want := `[{"name":"c","count":2,"bytes":20,"last_modified":"1970-01-01T00:01:40.000000"}]`; strings.TrimSpace(got.Body) != want {
		t.Errorf("account listing: got %s, want %s", got.Body, want)
	}

	for _, o := range []string{"o2", "o3"} {
		do(t, s, "DELETE", "/sda/0/AUTH_a/c/"+o, "X-Backend-Key", key, "X-Timestamp", "400")
	}
	if got := do(t, s, "DELETE", "/sda/0/AUTH_a/c", append(accountHeaders(a, key), "X-Timestamp", "500")...); got.Status != 204 {
		t.Fatalf("DELETE: got %d, want 204", got.Status)
	}
	if h := head(); h.Get("X-Account-Container-Count") != "0" || h.Get("X-Account-Object-Count") != "0" {
		t.Errorf("account after the DELETE: got %s containers, %s objects; want 0, 0",
			h.Get("X-Account-Container-Count"), h.Get("X-Account-Object-Count"))
	}
}

// TestUpdaterDeliversLater puts a container while its account server's
// device is out, then puts it back: the updater tells the account.
func TestUpdaterDeliversLater(t *testing.T) {
	a := newAccountServer(t, "")
	do(t, a, "PUT", "/sda/5/AUTH_a", "X-Timestamp", "50")
	dev, out := filepath.Join(a.root, "sda"), filepath.Join(a.root, "out")
	if err := os.Rename(dev, out); err != nil {
		t.Fatal(err)
	}
	s, srv := newContainerServer(t, container.Options{})
	if got := do(t, s, "PUT", "/sda/0/AUTH_a/c", append(accountHeaders(a, ""), "X-Timestamp", "100")...); got.Status != 201 {
		t.Fatalf("PUT while the account's device is out: got %d, want 201", got.Status)
	}
	do(t, s, "PUT", "/sda/0/AUTH_a/c/o", "X-Timestamp", "200", "X-Size", "7", "X-Content-Type", "a/b", "X-Etag", "e")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.RunUpdater(ctx, 20*time.Millisecond)
	time.Sleep(50 * time.Millisecond) // a pass or two fail
	if err := os.Rename(out, dev); err != nil {
		t.Fatal(err)
	}
	eventually(t, "account's counts once its device is back", func() bool {
		h := do(t, a, "HEAD", "/sda/5/AUTH_a").Header
		return h.Get("X-Account-Container-Count") == "1" && h.Get("X-Account-Object-Count") == "1" && h.Get("X-Account-Bytes-Used") == "7"
	})
}

// TestUpdaterAfterRestart reports what a server that stopped before its
// updater ran left unreported: a new server's first pass finds it.
func TestUpdaterAfterRestart(t *testing.T) {
	a := newAccountServer(t, "")
	do(t, a, "PUT", "/sda/5/AUTH_a", "X-Timestamp", "50")
	s, _ := newContainerServer(t, container.Options{})
	do(t, s, "PUT", "/sda/0/AUTH_a/c", append(accountHeaders(a, ""), "X-Timestamp", "100")...)
	do(t, s, "PUT", "/sda/0/AUTH_a/c/o", "X-Timestamp", "200", "X-Size", "7", "X-Content-Type", "a/b", "X-Etag", "e")

	restarted := container.New(s.root, hasher, container.Options{Log: slog.New(slog.DiscardHandler)})
	defer restarted.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go restarted.RunUpdater(ctx, time.Hour)
	eventually(t, "account's object count", func() bool {
		return do(t, a, "HEAD", "/sda/5/AUTH_a").Header.Get("X-Account-Object-Count") == "1"
	})
}

// accountRing is a ring of one device, sda of the account server a.
func accountRing(tb testing.TB, a server) *ring.Ring {
	tb.Helper()
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(a.url, "http://"))
	p, _ := strconv.Atoi(port)
	b, err := ring.NewBuilder(4, 1, 1)
	if err == nil {
		_, err = b.AddDevice(ring.Device{Region: 1, Zone: 1, IP: host, Port: p, Device: "sda", Weight: 1})
	}
	if err == nil {
		_, _, err = b.Rebalance(time.Now(), rand.New(rand.NewPCG(1, 2)))
	}
	var r *ring.Ring
	if err == nil {
		r, err = b.Ring()
	}
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// TestHiddenContainersMadeByReports: the reports of object servers make
// the containers of a hidden account, such as the expirer's queue's,
// which nothing PUTs, and tell the account that the account ring places.
// A queue container deleted empty comes back for an entry that reaches
// it late, older than the deletion, not for a removal.
func TestHiddenContainersMadeByReports(t *testing.T) {
	a := newAccountServer(t, "")
	r := accountRing(t, a)
	s, srv := newContainerServer(t, container.Options{AccountRing: r})
	const c = "/sda/3/" + objectstore.ExpiringObjectsAccount + "/0000086400"
	entry := []string{"X-Size", "0", "X-Content-Type", "text/plain", "X-Etag", "d41d8cd98f00b204e9800998ecf8427e"}
	steps := []struct {
		name       string
		method     string
		path       string
		headers    []string
		wantStatus int
		wantCount  string // of a HEAD's X-Container-Object-Count; "" for none
	}{
		{"an entry's PUT makes the container", "PUT", c + "/0000086401-AUTH_a/c/o", append(entry, "X-Timestamp", "1000"), 201, ""},
		{"HEAD", "HEAD", c, nil, 204, "1"},
		{"the entry's removal", "DELETE", c + "/0000086401-AUTH_a/c/o", []string{"X-Timestamp", "1001"}, 204, ""},
		{"DELETE of the empty container", "DELETE", c, []string{"X-Timestamp", "1005"}, 204, ""},
		{"HEAD of the deleted container", "HEAD", c, nil, 404, ""},
		{"a late removal", "DELETE", c + "/0000086402-AUTH_a/c/x", []string{"X-Timestamp", "1002"}, 204, ""},
		{"HEAD after the late removal", "HEAD", c, nil, 404, ""},
		{"a late entry", "PUT", c + "/0000086403-AUTH_a/c/late", append(entry, "X-Timestamp", "1003"), 201, ""},
		{"HEAD after the late entry", "HEAD", c, nil, 204, "1"},
		{"a removal makes a missing container", "DELETE", "/sda/3/" + objectstore.ExpiringObjectsAccount + "/0000172800/0000172801-AUTH_a/c/o", []string{"X-Timestamp", "1"}, 204, ""},
	}
	for _, st := range steps {
		got := do(t, s, st.method, st.path, st.headers...)
		if got.Status != st.wantStatus {
			t.Errorf("%s: got %d, want %d (%s)", st.name, got.Status, st.wantStatus, strings.TrimSpace(got.Body))
		}
		if n := got.Header.Get("X-Container-Object-Count"); st.wantCount != "" && n != st.wantCount {
			t.Errorf("%s: X-Container-Object-Count: got %q, want %q", st.name, n, st.wantCount)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.RunUpdater(ctx, 20*time.Millisecond)
	path := "/sda/" + strconv.Itoa(r.Partition(hasher.Path(objectstore.ExpiringObjectsAccount, "", ""))) + "/" + objectstore.ExpiringObjectsAccount
	eventually(t, "the hidden account's containers", func() bool {
		h := do(t, a, "HEAD", path).Header
		return h.Get("X-Account-Container-Count") == "2" && h.Get("X-Account-Object-Count") == "1"
	})
}
