package storage_test

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/objectstore"
	"github.com/trustack/trustack/objectstore/proxy"
	"github.com/trustack/trustack/objectstore/ring"
	"github.com/trustack/trustack/objectstore/storage"
)

type validator struct{}

func (validator) Validate(context.Context, string) (*trustack.Token, error) {
	return &trustack.Token{User: trustack.User{ID: "u1"}, Project: &trustack.Project{ID: "p1"}, Roles: []trustack.Role{{Name: "member"}}}, nil
}

// get reads an object through the proxy at url.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("X-Auth-Token", "t")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestRebalance adds a fifth node to a cluster of four with objects, and
// rebalances the rings: about a fifth of the partitions move, every
// object stays readable through a proxy on the new rings before
// replication has moved anything, and the replicators then bring each
// object's three copies to its new primaries, leaving none elsewhere.
func TestRebalance(t *testing.T) {
	dir := t.TempDir()
	ringDir := filepath.Join(dir, "rings")
	cfg := storage.Config{Hasher: objectstore.Hasher{Prefix: "p", Suffix: "s"}, Key: "k", UpdaterInterval: 50 * time.Millisecond, ReplicatorInterval: 100 * time.Millisecond}
	cfgs, err := storage.Local(dir, ringDir, 4, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var nodes []*storage.Node
	stopAll := func() {
		for _, n := range nodes {
			n.Close()
		}
		nodes = nil
	}
	t.Cleanup(stopAll)
	startAll := func(cfgs []storage.Config) {
		for _, c := range cfgs {
			n, err := storage.Start(c)
			if err != nil {
				t.Fatal(err)
			}
			nodes = append(nodes, n)
		}
	}
	startAll(cfgs)
	proxyOn := func(rings proxy.Rings) string {
		srv := httptest.NewServer(proxy.New(rings, validator{}, proxy.Options{Key: cfg.Key, Hasher: cfg.Hasher, InfoTTL: time.Millisecond}))
		t.Cleanup(srv.Close)
		return srv.URL + "/v1/AUTH_p1"
	}
	url := proxyOn(*cfgs[0].Rings)
	put := func(path, body string) {
		req, _ := http.NewRequest("PUT", url+path, strings.NewReader(body))
		req.Header.Set("X-Auth-Token", "t")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusCreated {
			t.Fatalf("PUT %s: %v %v", path, resp, err)
		}
		resp.Body.Close()
	}
	put("/c", "")
	const objects = 60
	for i := range objects {
		put(fmt.Sprintf("/c/o%d", i), fmt.Sprint("data ", i))
	}

	// A fifth node, its servers on free ports, added to every ring.
	stopAll()
	if err := os.MkdirAll(filepath.Join(dir, "node-5", "d5"), 0o750); err != nil {
		t.Fatal(err)
	}
	fifth := cfg
	fifth.Devices = filepath.Join(dir, "node-5")
	a, c, o := storage.RingFiles(ringDir)
	for _, file := range []string{a, c, o} {
		b, err := ring.LoadBuilder(storage.BuilderFile(file))
		if err != nil {
			t.Fatal(err)
		}
		port := freePort(t)
		if _, err := b.AddDevice(ring.Device{Region: 1, Zone: 5, IP: "127.0.0.1", Port: port, Device: "d5", Weight: 1}); err != nil {
			t.Fatal(err)
		}
		moved, _, err := b.Rebalance(time.Now().Add(2*time.Hour), nil)
		if err != nil {
			t.Fatal(err)
		}
		r, _ := b.Ring()
		if total := r.Partitions() * r.Replicas(); file == o && (moved < total*17/100 || moved > total*23/100) {
			t.Errorf("adding a fifth equal node moved %d of %d partition replicas, want about a fifth (%d)", moved, total, total/5)
		}
		if err := r.Save(file); err != nil {
			t.Fatal(err)
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		switch file {
		case a:
			fifth.Account = addr
		case c:
			fifth.Container = addr
		case o:
			fifth.Object = addr
		}
	}
	rings, err := storage.LoadRings(ringDir)
	if err != nil {
		t.Fatal(err)
	}
	fifth.Rings = &rings
	for i := range cfgs {
		cfgs[i].Rings = &rings
	}
	startAll(append(cfgs, fifth))
	url = proxyOn(rings)
	for i := range objects {
		if status, body := get(t, fmt.Sprintf("%s/c/o%d", url, i)); status != http.StatusOK || body != fmt.Sprint("data ", i) {
			t.Fatalf("o%d right after the rebalance: %d %q", i, status, body)
		}
	}

	// Replication moves each object to its new primaries.
	deadline := time.Now().Add(time.Minute)
	for {
		misplaced := 0
		for i := range objects {
			h := cfg.Hasher.Path("AUTH_p1", "c", fmt.Sprintf("o%d", i))
			part := rings.Object.Partition(h)
			want := map[string]bool{}
			for _, d := range rings.Object.Nodes(part) {
				want[d.Device] = true
			}
			for dev := 1; dev <= 5; dev++ {
				name := fmt.Sprintf("d%d", dev)
				has := hasData(objectstore.Dir(filepath.Join(dir, fmt.Sprintf("node-%d", dev)), name, objectstore.Objects, part, h))
				if has != want[name] {
					misplaced++
				}
			}
		}
		if misplaced == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a minute after the rebalance, %d copies are not where the ring says", misplaced)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for i := range objects {
		if status, body := get(t, fmt.Sprintf("%s/c/o%d", url, i)); status != http.StatusOK || body != fmt.Sprint("data ", i) {
			t.Errorf("o%d after replication: %d %q", i, status, body)
		}
	}
}

// hasData reports whether an object's directory holds a .data file.
func hasData(dir string) bool {
	found := false
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".data") {
			found = true
		}
		return nil
	})
	return found
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestLocalMovesTakenPorts starts a local cluster again after another
// process took the port of one of its servers: that server moves to a
// free port, in the rings too, its partitions stay, and every node
// starts. Until it starts, no other process can take the ports the
// rings give its servers.
func TestLocalMovesTakenPorts(t *testing.T) {
	dir := t.TempDir()
	ringDir := filepath.Join(dir, "rings")
	cfg := storage.Config{Hasher: objectstore.Hasher{Prefix: "p", Suffix: "s"}, Key: "k"}
	first, err := storage.Local(dir, ringDir, 4, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range first {
		for _, addr := range []string{c.Object, c.Container, c.Account} {
			if l, err := net.Listen("tcp", addr); err == nil {
				l.Close()
				t.Errorf("another listener got %s between the rings naming it and its server starting", addr)
			}
		}
		n, err := storage.Start(c)
		if err != nil {
			t.Fatal(err)
		}
		n.Close()
	}
	taken, err := net.Listen("tcp", first[1].Container)
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	before, err := storage.LoadRings(ringDir)
	if err != nil {
		t.Fatal(err)
	}
	again, err := storage.Local(dir, ringDir, 4, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range first {
		moved := again[i].Container != first[i].Container
		if moved != (i == 1) || again[i].Object != first[i].Object || again[i].Account != first[i].Account {
			t.Errorf("node %d: servers at %s %s %s, then at %s %s %s; want only node 2's container server moved", i+1,
				first[i].Object, first[i].Container, first[i].Account, again[i].Object, again[i].Container, again[i].Account)
		}
	}
	after, err := storage.LoadRings(ringDir)
	if err != nil {
		t.Fatal(err)
	}
	for part := range 1 << 8 {
		for i, d := range after.Container.Nodes(part) {
			if was := before.Container.Nodes(part)[i]; was.ID != d.ID {
				t.Fatalf("partition %d replica %d: device %d, was %d", part, i, d.ID, was.ID)
			}
		}
	}
	for _, c := range again {
		n, err := storage.Start(c)
		if err != nil {
			t.Fatal(err)
		}
		n.Close()
	}
}
