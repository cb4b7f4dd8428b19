package object_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/objectstore"
	"github.com/trustack/trustack/objectstore/object"
	"github.com/trustack/trustack/objectstore/proxy"
	"github.com/trustack/trustack/objectstore/ring"
	"github.com/trustack/trustack/objectstore/storage"
)

type validator struct{}

func (validator) Validate(_ context.Context, token string) (*trustack.Token, error) {
	return &trustack.Token{User: trustack.User{ID: "u1"}, Project: &trustack.Project{ID: "p1"}, Roles: []trustack.Role{{Name: "member"}}}, nil
}

// cluster is a local cluster of four storage nodes (three replicas), a
// proxy in front, and each node's replicator and auditor, which the
// test runs pass by pass.
type cluster struct {
	t     *testing.T
	cfgs  []storage.Config
	run   []*storage.Node
	ring  *ring.Ring
	url   string // the proxy's /v1/AUTH_p1
	repl  []*object.Replicator
	audit []*object.Auditor
}

const backendKey = "backend key"

func newCluster(t *testing.T) *cluster {
	t.Helper()
	dir := t.TempDir()
	cfg := storage.Config{Hasher: hasher, Key: backendKey, UpdaterInterval: 50 * time.Millisecond}
	cfgs, err := storage.Local(dir, filepath.Join(dir, "rings"), 4, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range cfgs {
		cfgs[i].Rings = nil // the test runs the replicators itself, pass by pass
	}
	rings, err := storage.LoadRings(filepath.Join(dir, "rings"))
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, cfgs: cfgs, run: make([]*storage.Node, len(cfgs)), ring: rings.Object}
	for i, n := range cfgs {
		c.start(i)
		s := object.New(n.Devices, hasher, object.Options{Key: backendKey})
		c.repl = append(c.repl, object.NewReplicator(s, rings.Object, n.Object, object.ReplicatorOptions{}))
		c.audit = append(c.audit, object.NewAuditor(s, object.AuditorOptions{}))
	}
	t.Cleanup(func() {
		for _, n := range c.run {
			if n != nil {
				n.Close()
			}
		}
	})
	p := proxy.New(rings, validator{}, proxy.Options{Key: backendKey, Hasher: hasher, NodeTimeout: 2 * time.Second, InfoTTL: time.Millisecond})
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	c.url = srv.URL + "/v1/AUTH_p1"
	c.want(http.StatusCreated, "PUT", "/c", "")
	return c
}

func (c *cluster) stop(i int) { c.run[i].Close(); c.run[i] = nil }

func (c *cluster) start(i int) {
	n, err := storage.Start(c.cfgs[i])
	if err != nil {
		c.t.Fatal(err)
	}
	c.run[i] = n
}

// want makes a request of the proxy and checks its status.
func (c *cluster) want(status int, method, path, body string, headers ...string) string {
	c.t.Helper()
	req, err := http.NewRequest(method, c.url+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("X-Auth-Token", "member")
	for i := 0; i < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		c.t.Fatalf("%s %s: got %s %q, want %d", method, path, resp.Status, b, status)
	}
	return string(b)
}

// replicate runs a replicator pass on every running node, rounds times.
func (c *cluster) replicate(rounds int) object.ReplicatorStats {
	var total object.ReplicatorStats
	for range rounds {
		for i, r := range c.repl {
			if c.run[i] != nil {
				r.Pass(context.Background())
			}
		}
	}
	for _, r := range c.repl {
		st := r.Stats()
		total.Partitions += st.Partitions
		total.Suffixes += st.Suffixes
		total.Files += st.Files
		total.Removed += st.Removed
		total.Failed += st.Failed
	}
	return total
}

// node returns the index of the node of a device.
func (c *cluster) node(d ring.Device) int {
	for i, cfg := range c.cfgs {
		if cfg.Object == d.Addr() {
			return i
		}
	}
	c.t.Fatalf("no node of device %s", d.Device)
	return -1
}

// copies returns, by device, the files of an object's directory on every
// device of the ring that has it.
func (c *cluster) copies(name string) (part int, byDevice map[int][]string) {
	h := hasher.Path("AUTH_p1", "c", name)
	part = c.ring.Partition(h)
	byDevice = map[int][]string{}
	for _, d := range c.ring.Devices() {
		dir := objectstore.Dir(c.cfgs[c.node(d)].Devices, d.Device, objectstore.Objects, part, h)
		if names := files(c.t, dir); len(names) > 0 {
			byDevice[d.ID] = names
		}
	}
	return part, byDevice
}

// wantOnPrimaries checks that exactly the primaries of each object hold
// it, each exactly the file want returns.
func (c *cluster) wantOnPrimaries(names []string, want func(name string) string) {
	c.t.Helper()
	for _, name := range names {
		part, got := c.copies(name)
		for _, d := range c.ring.Nodes(part) {
			if !slices.Equal(got[d.ID], []string{want(name)}) {
				c.t.Errorf("object %s on primary %s: got files %q, want [%s]", name, d.Device, got[d.ID], want(name))
			}
			delete(got, d.ID)
		}
		for id, files := range got {
			c.t.Errorf("object %s: files %q left on device %d, not a primary", name, files, id)
		}
	}
}

// dataFile returns the name of an object's data file on its first
// primary.
func (c *cluster) file(name string) string {
	part, got := c.copies(name)
	if f := got[c.ring.Nodes(part)[0].ID]; len(f) == 1 {
		return f[0]
	}
	return ""
}

func TestReplicationRestoresHandoffs(t *testing.T) {
	c := newCluster(t)
	c.stop(1)
	var names []string
	for i := range 40 {
		name := fmt.Sprintf("o%d", i)
		c.want(http.StatusCreated, "PUT", "/c/"+name, name)
		names = append(names, name)
	}
	var onHandoff int
	for _, name := range names {
		part, got := c.copies(name)
		if slices.ContainsFunc(c.ring.Nodes(part), func(d ring.Device) bool { return c.node(d) == 1 }) && len(got) == 3 {
			onHandoff++
		}
	}
	if onHandoff == 0 {
		t.Fatal("no object went to a handoff: the test proves nothing")
	}
	want := map[string]string{}
	for _, name := range names {
		part, got := c.copies(name)
		for _, d := range c.ring.Nodes(part) {
			if f := got[d.ID]; len(f) == 1 {
				want[name] = f[0]
			}
		}
	}
	// Replication while the node is down changes nothing it cannot.
	c.replicate(1)
	c.start(1)
	st := c.replicate(2)
	c.wantOnPrimaries(names, func(name string) string { return want[name] })
	if st.Removed == 0 || st.Files < int64(onHandoff) {
		t.Errorf("stats: got %+v, want handoff partitions removed and at least %d files pushed", st, onHandoff)
	}
	for _, name := range names {
		if got := c.want(http.StatusOK, "GET", "/c/"+name, ""); got != name {
			t.Errorf("GET %s: got %q, want %q", name, got, name)
		}
	}

	// Once alike, a pass pushes nothing.
	before := c.replicate(0)
	after := c.replicate(1)
	if after.Files != before.Files || after.Suffixes != before.Suffixes {
		t.Errorf("a pass over replicas alike: pushed %d files of %d suffixes, want none", after.Files-before.Files, after.Suffixes-before.Suffixes)
	}
}

func TestReplicationCarriesTombstones(t *testing.T) {
	c := newCluster(t)
	names := []string{"a", "b", "c", "d", "e", "f"}
	for _, name := range names {
		c.want(http.StatusCreated, "PUT", "/c/"+name, name)
	}
	c.stop(2)
	var deleted []string
	for _, name := range names {
		part, _ := c.copies(name)
		if slices.ContainsFunc(c.ring.Nodes(part), func(d ring.Device) bool { return c.node(d) == 2 }) {
			c.want(http.StatusNoContent, "DELETE", "/c/"+name, "")
			deleted = append(deleted, name)
		}
	}
	if len(deleted) == 0 {
		t.Fatal("no object had a primary on the stopped node: the test proves nothing")
	}
	tomb := map[string]string{}
	for _, name := range deleted {
		_, got := c.copies(name)
		for _, f := range got {
			if strings.HasSuffix(f[0], ".ts") {
				tomb[name] = f[0]
			}
		}
	}
	c.start(2)
	c.replicate(2)
	c.wantOnPrimaries(deleted, func(name string) string { return tomb[name] })
	for _, name := range deleted {
		c.want(http.StatusNotFound, "GET", "/c/"+name, "")
		// Each primary's own server says so too.
		part, _ := c.copies(name)
		for _, d := range c.ring.Nodes(part) {
			req, _ := http.NewRequest("GET", "http://"+d.Addr()+"/"+d.Device+"/"+fmt.Sprint(part)+"/AUTH_p1/c/"+name, nil)
			req.Header.Set("X-Backend-Key", backendKey)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("GET %s from %s: got %s, want 404", name, d.Device, resp.Status)
			}
		}
	}
}

func TestAuditorAndReplicationRepairRot(t *testing.T) {
	c := newCluster(t)
	content := strings.Repeat("precious ", 1000)
	c.want(http.StatusCreated, "PUT", "/c/o", content)
	c.want(http.StatusCreated, "PUT", "/c/other", "x")
	part, _ := c.copies("o")
	primaries := c.ring.Nodes(part)
	bad := primaries[1]
	h := hasher.Path("AUTH_p1", "c", "o")
	dir := func(d ring.Device) string {
		return objectstore.Dir(c.cfgs[c.node(d)].Devices, d.Device, objectstore.Objects, part, h)
	}
	name := c.file("o")
	good, err := os.ReadFile(filepath.Join(dir(primaries[0]), name))
	if err != nil {
		t.Fatal(err)
	}
	flip(t, filepath.Join(dir(bad), name), 100)

	a := c.audit[c.node(bad)]
	a.Pass(context.Background())
	if st := a.Stats(); st.Quarantined != 1 || st.Objects < 1 {
		t.Errorf("auditor stats: got %+v, want 1 quarantined", st)
	}
	if _, err := os.Stat(dir(bad)); !os.IsNotExist(err) {
		t.Errorf("the rotten copy's directory: got %v, want it quarantined", err)
	}
	q, _ := filepath.Glob(filepath.Join(c.cfgs[c.node(bad)].Devices, bad.Device, "quarantined", "objects", h.String()))
	if len(q) != 1 {
		t.Errorf("quarantined copies: got %q, want the rotten one", q)
	}

	c.replicate(1)
	for _, d := range primaries {
		got, err := os.ReadFile(filepath.Join(dir(d), name))
		if err != nil || !bytes.Equal(got, good) {
			t.Errorf("copy on %s after replication: %v, equal to the good one: %v; want equal", d.Device, err, bytes.Equal(got, good))
		}
	}
	if got := c.want(http.StatusOK, "GET", "/c/o", ""); got != content {
		t.Errorf("GET after the repair: got %d bytes, want the %d stored", len(got), len(content))
	}
	a.Pass(context.Background())
	if st := a.Stats(); st.Quarantined != 1 {
		t.Errorf("auditor stats after the repair: got %d quarantined, want still 1", st.Quarantined)
	}
}
