package object_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/trustack/trustack/objectstore/node"
	"github.com/trustack/trustack/objectstore/object"
)

// replicate asks n for the hashes of partition 0 of sda, computing those
// of suffixes ("a-b") again.
func (n *testNode) replicate(suffixes string) map[string]string {
	n.t.Helper()
	path := "/sda/0"
	if suffixes != "" {
		path += "/" + suffixes
	}
	resp, body := n.do("REPLICATE", path, "")
	if resp.StatusCode != http.StatusOK {
		n.t.Fatalf("REPLICATE %s: got %s %q, want 200", path, resp.Status, body)
	}
	var hashes map[string]string
	if err := json.Unmarshal([]byte(body), &hashes); err != nil {
		n.t.Fatalf("REPLICATE %s: %v", path, err)
	}
	return hashes
}

func TestReplicateHashes(t *testing.T) {
	a, b := newNode(t, object.Options{Key: "k"}), newNode(t, object.Options{Key: "k"})
	if got := a.replicate(""); len(got) != 0 {
		t.Fatalf("hashes of an empty partition: got %v, want none", got)
	}
	for _, n := range []*testNode{a, b} {
		n.put("o1", ts(1), "one")
		n.put("o2", ts(1), "two")
	}
	ha, hb := a.replicate(""), b.replicate("")
	if len(ha) == 0 || !reflect.DeepEqual(ha, hb) {
		t.Fatalf("hashes of nodes holding the same objects: got %v and %v, want equal and not empty", ha, hb)
	}

	// Each change to an object changes its suffix's hash, and only its.
	suffix := filepath.Base(filepath.Dir(a.dir("o1")))
	prev := ha
	for _, change := range []struct {
		what string
		do   func(n *testNode)
	}{
		{"PUT", func(n *testNode) { n.put("o1", ts(2), "one again") }},
		{"POST", func(n *testNode) {
			n.do("POST", "/sda/0/a/c/o1", "", "X-Timestamp", ts(3), "X-Object-Meta-Color", "blue")
		}},
		{"DELETE", func(n *testNode) { n.do("DELETE", "/sda/0/a/c/o1", "", "X-Timestamp", ts(4)) }},
	} {
		change.do(a)
		got := a.replicate("")
		if got[suffix] == prev[suffix] {
			t.Errorf("after a %s: suffix %s's hash unchanged, want changed", change.what, suffix)
		}
		for s, h := range got {
			if s != suffix && h != ha[s] {
				t.Errorf("after a %s: suffix %s's hash changed, want only %s's", change.what, s, suffix)
			}
		}
		change.do(b)
		if hb := b.replicate(""); !reflect.DeepEqual(got, hb) {
			t.Errorf("after the same %s on both nodes: got %v and %v, want equal", change.what, got, hb)
		}
		prev = got
	}

	// A suffix named is hashed again even if nothing marked it changed:
	// here, a file removed behind the server's back.
	os.RemoveAll(a.dir("o2"))
	s2 := filepath.Base(filepath.Dir(a.dir("o2")))
	if got := a.replicate(s2); got[s2] != "" && got[s2] == prev[s2] {
		t.Errorf("suffix %s recalculated after its object vanished: hash unchanged, want changed", s2)
	}

	for _, path := range []string{"/sda/0/abc-xyz", "/sda/0/ABC", "/sda/x", "/../0", "/sda/0/abc/def"} {
		resp, _ := a.do("REPLICATE", path, "")
		wantStatus(t, "REPLICATE "+path, resp, http.StatusBadRequest)
	}
	resp, _ := a.do("REPLICATE", "/sdz/0", "")
	wantStatus(t, "REPLICATE on a missing device", resp, http.StatusInsufficientStorage)
}

// sync sends a file to n with SYNC, the key unless headers set one.
func (n *testNode) sync(path string, body []byte, headers ...string) *http.Response {
	n.t.Helper()
	resp, _ := n.do("SYNC", path, string(body), headers...)
	return resp
}

func TestSync(t *testing.T) {
	a, b := newNode(t, object.Options{Key: "k"}), newNode(t, object.Options{Key: "k"})
	a.put("o", ts(1), "content")
	a.do("POST", "/sda/0/a/c/o", "", "X-Timestamp", ts(2), "X-Object-Meta-Color", "blue")
	hash := filepath.Base(a.dir("o"))
	data, err := os.ReadFile(filepath.Join(a.dir("o"), ts(1)+".data"))
	if err != nil {
		t.Fatal(err)
	}
	meta, err := os.ReadFile(filepath.Join(a.dir("o"), ts(2)+".meta"))
	if err != nil {
		t.Fatal(err)
	}
	rotten := bytes.Replace(data, []byte("content"), []byte("CONTENT"), 1)

	for _, c := range []struct {
		what, path string
		body       []byte
		headers    []string
		want       int
	}{
		{"no key", "/sda/0/" + hash + "/" + ts(1) + ".data", data, []string{node.KeyHeader, "wrong"}, http.StatusUnauthorized},
		{"name not a timestamp", "/sda/0/" + hash + "/x.data", data, nil, http.StatusBadRequest},
		{"timestamp not in its canonical form", "/sda/0/" + hash + "/1700000001.data", data, nil, http.StatusBadRequest},
		{"other extension", "/sda/0/" + hash + "/" + ts(1) + ".tmp", data, nil, http.StatusBadRequest},
		{"hidden name", "/sda/0/" + hash + "/." + ts(1) + ".data", data, nil, http.StatusBadRequest},
		{"escaping name", "/sda/0/" + hash + "/..%2F..%2F" + ts(1) + ".data", data, nil, http.StatusBadRequest},
		{"short hash", "/sda/0/" + hash[1:] + "/" + ts(1) + ".data", data, nil, http.StatusBadRequest},
		{"uppercase hash", "/sda/0/" + strings.ToUpper(hash) + "/" + ts(1) + ".data", data, nil, http.StatusBadRequest},
		{"dot-dot hash", "/sda/0/../" + ts(1) + ".data", data, nil, http.StatusBadRequest},
		{"escaping device", "/..%2Fsda/0/" + hash + "/" + ts(1) + ".data", data, nil, http.StatusBadRequest},
		{"content not matching its ETag", "/sda/0/" + hash + "/" + ts(1) + ".data", rotten, nil, http.StatusBadRequest},
		{"truncated data", "/sda/0/" + hash + "/" + ts(1) + ".data", data[:len(data)-1], nil, http.StatusBadRequest},
		{"data of another object", "/sda/0/" + strings.Repeat("0", 32) + "/" + ts(1) + ".data", data, nil, http.StatusBadRequest},
		{"data under another timestamp", "/sda/0/" + hash + "/" + ts(5) + ".data", data, nil, http.StatusBadRequest},
		{"meta not JSON", "/sda/0/" + hash + "/" + ts(2) + ".meta", []byte("{"), nil, http.StatusBadRequest},
		{"tombstone not empty", "/sda/0/" + hash + "/" + ts(2) + ".ts", []byte("x"), nil, http.StatusBadRequest},
	} {
		if got := b.sync(c.path, c.body, c.headers...); got.StatusCode != c.want {
			t.Errorf("SYNC with %s: got %s, want %d", c.what, got.Status, c.want)
		}
	}
	if got := files(t, b.root); len(got) != 0 {
		t.Fatalf("files after refused SYNCs: got %q, want none", got)
	}

	// The good files are taken, once, and served as they were stored.
	wantStatus(t, "SYNC of the data", b.sync("/sda/0/"+hash+"/"+ts(1)+".data", data), http.StatusCreated)
	wantStatus(t, "SYNC of the meta", b.sync("/sda/0/"+hash+"/"+ts(2)+".meta", meta), http.StatusCreated)
	wantStatus(t, "SYNC of the data again", b.sync("/sda/0/"+hash+"/"+ts(1)+".data", data), http.StatusConflict)
	resp, body := b.do("GET", "/sda/0/a/c/o", "")
	if resp.StatusCode != http.StatusOK || body != "content" || resp.Header.Get("X-Object-Meta-Color") != "blue" {
		t.Errorf("GET after SYNC: got %s %q color %q, want 200 %q blue", resp.Status, body, resp.Header.Get("X-Object-Meta-Color"), "content")
	}
	if ha, hb := a.replicate(""), b.replicate(""); !reflect.DeepEqual(ha, hb) {
		t.Errorf("hashes after SYNC: got %v and %v, want equal", ha, hb)
	}

	// A tombstone wins over older files; older files lose to it.
	wantStatus(t, "SYNC of a tombstone", b.sync("/sda/0/"+hash+"/"+ts(3)+".ts", nil), http.StatusCreated)
	wantStatus(t, "SYNC of data older than the tombstone", b.sync("/sda/0/"+hash+"/"+ts(1)+".data", data), http.StatusConflict)
	if got := files(t, b.dir("o")); !reflect.DeepEqual(got, []string{ts(3) + ".ts"}) {
		t.Errorf("files after the tombstone: got %q, want only it", got)
	}
	resp, _ = b.do("GET", "/sda/0/a/c/o", "")
	wantStatus(t, "GET after the tombstone", resp, http.StatusNotFound)

	// The tmp directory keeps nothing of what was refused.
	if got := files(t, filepath.Join(b.root, "sda", "tmp")); len(got) != 0 {
		t.Errorf("tmp: got %q, want empty", got)
	}
}

func TestSyncRefusesWithoutKey(t *testing.T) {
	n := newNode(t, object.Options{Key: "k"})
	req := httptest.NewRequest("SYNC", "/sda/0/"+strings.Repeat("0", 32)+"/"+ts(1)+".ts", nil)
	w := httptest.NewRecorder()
	n.s.ServeHTTP(w, req)
	if w.Code != http.StatusUnauthorized {
		t.Errorf("SYNC without a key: got %d, want 401", w.Code)
	}
	req = httptest.NewRequest("REPLICATE", "/sda/0", nil)
	w = httptest.NewRecorder()
	n.s.ServeHTTP(w, req)
	if w.Code != http.StatusUnauthorized {
		t.Errorf("REPLICATE without a key: got %d, want 401", w.Code)
	}
}

func TestAuditorKeepsToItsRate(t *testing.T) {
	n := newNode(t, object.Options{})
	for i := range 3 {
		n.put(fmt.Sprint("o", i), ts(1), strings.Repeat("x", 10_000))
	}
	a := object.NewAuditor(n.s, object.AuditorOptions{BytesPerSecond: 20_000})
	a.Pass(context.Background())
	// 30,000 bytes of content at 20,000 a second: at least 1.5 s.
	if st := a.Stats(); st.Objects != 3 || st.Quarantined != 0 || st.LastPass < 1500*time.Millisecond {
		t.Errorf("audit of 3 sound objects of 10,000 bytes at 20,000 bytes/s: got %+v, want 3 checked, none quarantined, in at least 1.5 s", st)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	a.Pass(ctx)
	if d := time.Since(start); d > time.Second {
		t.Errorf("a pass with its context ended: took %v, want it to stop at once", d)
	}
}
