package dbserver_test

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
	"github.com/trustack/trustack/objectstore/broker"
	"github.com/trustack/trustack/objectstore/container"
	"github.com/trustack/trustack/objectstore/dbserver"
	"github.com/trustack/trustack/objectstore/node/nodetest"
	"github.com/trustack/trustack/objectstore/ring"
)

var hasher = objectstore.Hasher{Prefix: "pre", Suffix: "suf"}

const key = "secret"

type replicator interface {
	Pass(context.Context)
	Stats() dbserver.Stats
}

// member is a storage node of a test cluster, with one device.
type member struct {
	root, url, device string
	repl              replicator
}

// cluster is four nodes of one kind, on a ring of three replicas.
type cluster struct {
	kind    objectstore.Kind
	ring    *ring.Ring
	members map[int]*member // by device ID
}

// newCluster starts four container or account servers and their
// replicators.
func newCluster(tb testing.TB, kind objectstore.Kind) *cluster {
	tb.Helper()
	b, err := ring.NewBuilder(4, 3, 0)
	if err != nil {
		tb.Fatal(err)
	}
	c := &cluster{kind: kind, members: map[int]*member{}}
	listeners := map[int]net.Listener{}
	for i := range 4 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		m := &member{root: tb.TempDir(), device: "d" + strconv.Itoa(i)}
		if err := os.Mkdir(filepath.Join(m.root, m.device), 0o750); err != nil {
			tb.Fatal(err)
		}
		id, err := b.AddDevice(ring.Device{Region: 1, Zone: i + 1, IP: "127.0.0.1", Port: l.Addr().(*net.TCPAddr).Port, Device: m.device, Weight: 1})
		if err != nil {
			tb.Fatal(err)
		}
		c.members[id], listeners[id] = m, l
	}
	if _, _, err := b.Rebalance(time.Unix(1e9, 0), rand.New(rand.NewPCG(1, 2))); err != nil {
		tb.Fatal(err)
	}
	if c.ring, err = b.Ring(); err != nil {
		tb.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	for id, m := range c.members {
		addr, opts := listeners[id].Addr().String(), dbserver.Options{Key: key}
		var h interface {
			http.Handler
			Close()
		}
		if kind == objectstore.Containers {
			s := container.New(m.root, hasher, container.Options{Key: key, Log: log})
			h, m.repl = s, s.NewReplicator(c.ring, addr, opts)
		} else {
			s := account.New(m.root, hasher, account.Options{Key: key, Log: log})
			h, m.repl = s, s.NewReplicator(c.ring, addr, opts)
		}
		ts := &httptest.Server{Listener: listeners[id], Config: &http.Server{Handler: h}}
		ts.Start()
		tb.Cleanup(func() { ts.Close(); h.Close() })
		m.url = ts.URL
	}
	return c
}

// placement returns the members holding the primaries of a name's
// partition, and the first handoff.
func (c *cluster) placement(account, container string) (part int, primaries []*member, handoff *member) {
	part = c.ring.Partition(hasher.Path(account, container, ""))
	for _, d := range c.ring.Nodes(part) {
		primaries = append(primaries, c.members[d.ID])
	}
	for d := range c.ring.Handoffs(part) {
		return part, primaries, c.members[d.ID]
	}
	panic("no handoff")
}

// passes runs n passes of every member's replicator, and returns the
// rows they sent.
func (c *cluster) passes(n int) (rows int64) {
	for range n {
		for _, m := range c.members {
			before := m.repl.Stats().RowsSent
			m.repl.Pass(context.Background())
			rows += m.repl.Stats().RowsSent - before
		}
	}
	return rows
}

// do sends a request, with the key, to path on m's device and partition.
func (m *member) do(tb testing.TB, method string, part int, path string, headers ...string) nodetest.Reply {
	tb.Helper()
	return send(tb, method, m.url+"/"+m.device+"/"+strconv.Itoa(part)+path, nil, append([]string{"X-Backend-Key", key}, headers...)...)
}

var send = nodetest.Do

// state is what a replica shows of its container or account: HEAD's
// counts and metadata, and GET's listing.
func (m *member) state(tb testing.TB, part int, path string, headers ...string) string {
	tb.Helper()
	head, get := m.do(tb, "HEAD", part, path), m.do(tb, "GET", part, path)
	s := strconv.Itoa(head.Status)
	for _, h := range headers {
		s += " " + h + "=" + head.Header.Get(h)
	}
	return s + " " + strings.TrimSpace(get.Body)
}

func objectPut(ts string, size int) []string {
	return []string{"X-Timestamp", ts, "X-Size", strconv.Itoa(size), "X-Content-Type", "text/plain", "X-Etag", "e" + ts}
}

var containerHeaders = []string{"X-Container-Object-Count", "X-Container-Bytes-Used", "X-Container-Meta-Color"}

func TestContainerHandoffReachesEveryPrimary(t *testing.T) {
	c := newCluster(t, objectstore.Containers)
	part, primaries, handoff := c.placement("AUTH_a", "c")
	// The third primary is down: the proxy writes to the handoff instead.
	up := []*member{primaries[0], primaries[1], handoff}
	for _, m := range up {
		if got := m.do(t, "PUT", part, "/AUTH_a/c", "X-Timestamp", "1", "X-Container-Meta-Color", "red"); got.Status != 201 {
			t.Fatalf("PUT container: got %d, want 201", got.Status)
		}
		m.do(t, "PUT", part, "/AUTH_a/c/o1", objectPut("2", 10)...)
		m.do(t, "PUT", part, "/AUTH_a/c/o2", objectPut("3", 20)...)
		m.do(t, "DELETE", part, "/AUTH_a/c/o1", "X-Timestamp", "4")
	}
	want := up[0].state(t, part, "/AUTH_a/c", containerHeaders...)
	if !strings.HasPrefix(want, "204 X-Container-Object-Count=1 X-Container-Bytes-Used=20 X-Container-Meta-Color=red [{") {
		t.Fatalf("before replication: got %s", want)
	}
	if got := primaries[2].do(t, "HEAD", part, "/AUTH_a/c"); got.Status != 404 {
		t.Fatalf("the down primary before replication: got %d, want 404", got.Status)
	}
	c.passes(1)
	for i, m := range primaries {
		if got := m.state(t, part, "/AUTH_a/c", containerHeaders...); got != want {
			t.Errorf("primary %d: got %s, want %s", i, got, want)
		}
	}
	file := broker.File(handoff.root, handoff.device, objectstore.Containers, part, hasher.Path("AUTH_a", "c", ""))
	if _, err := os.Stat(filepath.Dir(file)); !os.IsNotExist(err) {
		t.Errorf("the handoff's copy: got %v, want it removed", err)
	}
	if got := handoff.repl.Stats(); got.Removed != 1 || got.Checked != 1 || got.Failed != 0 {
		t.Errorf("handoff's stats: got %+v, want 1 checked and removed, none failed", got)
	}
	if got := handoff.do(t, "HEAD", part, "/AUTH_a/c"); got.Status != 404 {
		t.Errorf("HEAD on the handoff after: got %d, want 404", got.Status)
	}
}

func TestConflictsConvergeToNewest(t *testing.T) {
	c := newCluster(t, objectstore.Containers)
	part, p, _ := c.placement("AUTH_a", "c")
	for _, m := range p {
		m.do(t, "PUT", part, "/AUTH_a/c", "X-Timestamp", "1")
	}
	// x: deleted on one, overwritten older on another, newer on the third.
	p[0].do(t, "DELETE", part, "/AUTH_a/c/x", "X-Timestamp", "30")
	p[1].do(t, "PUT", part, "/AUTH_a/c/x", objectPut("20", 20)...)
	p[2].do(t, "PUT", part, "/AUTH_a/c/x", objectPut("40", 40)...)
	// y: put on one, deleted later on another.
	p[0].do(t, "PUT", part, "/AUTH_a/c/y", objectPut("10", 5)...)
	p[1].do(t, "DELETE", part, "/AUTH_a/c/y", "X-Timestamp", "60")
	// z: on one only, arriving after a newer row of another name.
	p[2].do(t, "PUT", part, "/AUTH_a/c/z", objectPut("7", 7)...)
	// Metadata: the newest setting wins, wherever it was made.
	p[0].do(t, "POST", part, "/AUTH_a/c", "X-Timestamp", "11", "X-Container-Meta-Color", "blue")
	p[1].do(t, "POST", part, "/AUTH_a/c", "X-Timestamp", "10", "X-Container-Meta-Color", "red")

	c.passes(2)
	want := `204 X-Container-Object-Count=2 X-Container-Bytes-Used=47 X-Container-Meta-Color=blue ` +
		`[{"name":"x","hash":"e40","bytes":40,"content_type":"text/plain","last_modified":"1970-01-01T00:00:40.000000"},` +
		`{"name":"z","hash":"e7","bytes":7,"content_type":"text/plain","last_modified":"1970-01-01T00:00:07.000000"}]`
	for i, m := range p {
		if got := m.state(t, part, "/AUTH_a/c", containerHeaders...); got != want {
			t.Errorf("primary %d: got %s, want %s", i, got, want)
		}
	}
}

func TestSyncPointsSendOnlyNewRows(t *testing.T) {
	c := newCluster(t, objectstore.Containers)
	part, p, _ := c.placement("AUTH_a", "c")
	for _, m := range p {
		m.do(t, "PUT", part, "/AUTH_a/c", "X-Timestamp", "1")
	}
	for i := range 25 {
		p[i%3].do(t, "PUT", part, "/AUTH_a/c/o"+strconv.Itoa(i), objectPut(strconv.Itoa(10+i), i)...)
	}
	if rows := c.passes(1); rows == 0 {
		t.Fatal("first pass: sent no rows")
	}
	if rows := c.passes(1); rows != 0 {
		t.Errorf("second pass, replicas alike: sent %d rows, want 0", rows)
	}
	// One replica gets a row the others lack: the others, though their
	// hashes now differ from it, have nothing it has not had.
	p[1].do(t, "PUT", part, "/AUTH_a/c/new", objectPut("100", 1)...)
	for i, want := range []int64{0, 2, 0} {
		before := p[i].repl.Stats().RowsSent
		p[i].repl.Pass(context.Background())
		if got := p[i].repl.Stats().RowsSent - before; got != want {
			t.Errorf("pass of primary %d after one new row on primary 1: sent %d rows, want %d", i, got, want)
		}
	}
	want := p[1].state(t, part, "/AUTH_a/c", containerHeaders...)
	for i, m := range p {
		if got := m.state(t, part, "/AUTH_a/c", containerHeaders...); got != want {
			t.Errorf("primary %d: got %s, want %s", i, got, want)
		}
	}
}

func TestAccountConverges(t *testing.T) {
	c := newCluster(t, objectstore.Accounts)
	part, p, handoff := c.placement("AUTH_a", "")
	report := func(put, del string, objects, bytes int) []string {
		return []string{"X-Put-Timestamp", put, "X-Delete-Timestamp", del, "X-Object-Count", strconv.Itoa(objects), "X-Bytes-Used", strconv.Itoa(bytes)}
	}
	up := []*member{p[0], p[1], handoff}
	for _, m := range up {
		m.do(t, "PUT", part, "/AUTH_a", "X-Timestamp", "1")
	}
	up[0].do(t, "PUT", part, "/AUTH_a/c1", report("10", "0", 3, 30)...)
	up[1].do(t, "PUT", part, "/AUTH_a/c1", report("10", "20", 0, 0)...)
	up[2].do(t, "PUT", part, "/AUTH_a/c2", report("15", "0", 1, 7)...)
	up[0].do(t, "PUT", part, "/AUTH_a/c3", report("12", "0", 2, 4)...)
	up[1].do(t, "PUT", part, "/AUTH_a/c3", report("13", "0", 4, 8)...)
	up[2].do(t, "POST", part, "/AUTH_a", "X-Timestamp", "5", "X-Account-Meta-Quota-Bytes", "100")

	c.passes(2)
	want := `204 X-Account-Container-Count=2 X-Account-Object-Count=5 X-Account-Bytes-Used=15 X-Account-Meta-Quota-Bytes=100 ` +
		`[{"name":"c2","count":1,"bytes":7,"last_modified":"1970-01-01T00:00:15.000000"},` +
		`{"name":"c3","count":4,"bytes":8,"last_modified":"1970-01-01T00:00:13.000000"}]`
	for i, m := range p {
		got := m.state(t, part, "/AUTH_a", "X-Account-Container-Count", "X-Account-Object-Count", "X-Account-Bytes-Used", "X-Account-Meta-Quota-Bytes")
		if got != want {
			t.Errorf("primary %d: got %s, want %s", i, got, want)
		}
	}
	if got := handoff.do(t, "HEAD", part, "/AUTH_a"); got.Status != 404 || handoff.repl.Stats().Removed != 1 {
		t.Errorf("the handoff's copy: HEAD got %d, removed %d; want 404, 1", got.Status, handoff.repl.Stats().Removed)
	}
}

func TestReplicateRequestChecks(t *testing.T) {
	c := newCluster(t, objectstore.Containers)
	part, p, _ := c.placement("AUTH_a", "c")
	m := p[0]
	h := hasher.Path("AUTH_a", "c", "").String()
	at := m.url + "/" + m.device + "/" + strconv.Itoa(part) + "/" + h
	sync := `{"op":"sync","id":"r1","info":{"Account":"AUTH_a","Container":"c","Created":1,"Put":1}}`
	row := func(fields string) string {
		return `{"op":"merge","id":"r1","rows":[{"RowID":1,"Name":"o",` + fields + `}]}`
	}
	var many []string
	for i := range dbserver.MaxRows + 1 {
		many = append(many, `{"RowID":`+strconv.Itoa(i+1)+`,"Name":"o`+strconv.Itoa(i)+`","Created":5}`)
	}
	tests := []struct {
		name, url, body string
		headers         []string
		want            int
	}{
		{"no key", at, sync, nil, 401},
		{"merge before the database exists", at, row(`"Created":5`), []string{"X-Backend-Key", key}, 404},
		{"sync makes it", at, sync, []string{"X-Backend-Key", key}, 200},
		{"merge", at, row(`"Created":5,"Size":3`), []string{"X-Backend-Key", key}, 200},
		{"no hash", m.url + "/" + m.device + "/" + strconv.Itoa(part), sync, []string{"X-Backend-Key", key}, 400},
		{"not a hash", m.url + "/" + m.device + "/0/xyz", sync, []string{"X-Backend-Key", key}, 400},
		{"bad partition", m.url + "/" + m.device + "/x/" + h, sync, []string{"X-Backend-Key", key}, 400},
		{"missing device", m.url + "/sdz/0/" + h, sync, []string{"X-Backend-Key", key}, 507},
		{"not JSON", at, `{"op":`, []string{"X-Backend-Key", key}, 400},
		{"unknown op", at, `{"op":"rsync","id":"r1"}`, []string{"X-Backend-Key", key}, 400},
		{"no replica ID", at, `{"op":"sync","info":{"Account":"AUTH_a","Container":"c"}}`, []string{"X-Backend-Key", key}, 400},
		{"info of another container", at, strings.Replace(sync, `"c"`, `"d"`, 1), []string{"X-Backend-Key", key}, 400},
		{"bad metadata name", at, strings.Replace(sync, `"info"`, `"meta":{"X-Bad: 1\r\nX":{"Value":"v","Timestamp":1}},"info"`, 1), []string{"X-Backend-Key", key}, 400},
		{"rows not a list", at, `{"op":"merge","id":"r1","rows":{"a":1}}`, []string{"X-Backend-Key", key}, 400},
		{"negative size", at, row(`"Created":5,"Size":-1`), []string{"X-Backend-Key", key}, 400},
		{"no timestamp", at, row(`"Size":1`), []string{"X-Backend-Key", key}, 400},
		{"no rowid", at, `{"op":"merge","id":"r1","rows":[{"Name":"o","Created":5}]}`, []string{"X-Backend-Key", key}, 400},
		{"too many rows", at, `{"op":"merge","id":"r1","rows":[` + strings.Join(many, ",") + `]}`, []string{"X-Backend-Key", key}, 400},
	}
	for _, tt := range tests {
		if got := send(t, "REPLICATE", tt.url, strings.NewReader(tt.body), tt.headers...); got.Status != tt.want {
			t.Errorf("%s: got %d, want %d (%s)", tt.name, got.Status, tt.want, strings.TrimSpace(got.Body))
		}
	}
	// Only the good merge changed the container.
	got := m.state(t, part, "/AUTH_a/c", "X-Container-Object-Count", "X-Container-Bytes-Used")
	if !strings.HasPrefix(got, "204 X-Container-Object-Count=1 X-Container-Bytes-Used=3 [") {
		t.Errorf("after the requests: got %s, want one object of 3 bytes", got)
	}
	var r struct{ Point int64 }
	if err := json.Unmarshal([]byte(send(t, "REPLICATE", at, strings.NewReader(sync), "X-Backend-Key", key).Body), &r); err != nil || r.Point != 1 {
		t.Errorf("sync point of r1: got %d (%v), want 1", r.Point, err)
	}
}
