package object_test

import (
	"bufio"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trustack/trustack/objectstore"
	"github.com/trustack/trustack/objectstore/node"
	"github.com/trustack/trustack/objectstore/object"
)

var hasher = objectstore.Hasher{Prefix: "pre", Suffix: "suf"}

// epoch is the test clock's start; ts(n) is n seconds after it.
var epoch = time.Unix(1_700_000_000, 0)

func ts(n int) string {
	return objectstore.TimestampOf(epoch.Add(time.Duration(n) * time.Second)).String()
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testNode is an object server on a real port over a root holding device sda.
type testNode struct {
	t     testing.TB
	root  string
	clock *clock
	srv   *httptest.Server
	s     *object.Server
	opts  object.Options
}

func newNode(t testing.TB, opts object.Options) *testNode {
	t.Helper()
	n := &testNode{t: t, root: filepath.Join(t.TempDir(), "root"), clock: &clock{t: epoch.Add(1000 * time.Second)}, opts: opts}
	if err := os.MkdirAll(filepath.Join(n.root, "sda"), 0o750); err != nil {
		t.Fatal(err)
	}
	if opts.Now == nil {
		opts.Now = n.clock.Now
	}
	n.s = object.New(n.root, hasher, opts)
	n.srv = httptest.NewServer(n.s)
	t.Cleanup(n.srv.Close)
	return n
}

// do sends a request with headers given as name, value pairs and
// returns the response with its body read.
func (n *testNode) do(method, path, body string, headers ...string) (*http.Response, string) {
	n.t.Helper()
	req, err := http.NewRequest(method, n.srv.URL+path, strings.NewReader(body))
	if err != nil {
		n.t.Fatal(err)
	}
	for i := 0; i < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	if n.opts.Key != "" && req.Header.Get(node.KeyHeader) == "" {
		req.Header.Set(node.KeyHeader, n.opts.Key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		n.t.Fatal(err)
	}
	return resp, string(b)
}

func (n *testNode) put(name, ts, body string, headers ...string) *http.Response {
	n.t.Helper()
	resp, msg := n.do("PUT", "/sda/0/a/c/"+name, body, append([]string{"X-Timestamp", ts, "Content-Type", "text/plain"}, headers...)...)
	if resp.StatusCode != http.StatusCreated {
		n.t.Fatalf("PUT %s: got %s %q, want 201", name, resp.Status, msg)
	}
	return resp
}

func (n *testNode) dir(name string) string {
	return objectstore.Dir(n.root, "sda", objectstore.Objects, 0, hasher.Path("a", "c", name))
}

// files lists the names of the files under dir, relative to it.
func files(t testing.TB, dir string) []string {
	t.Helper()
	var names []string
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, path)
			names = append(names, rel)
		}
		return nil
	})
	return names
}

func md5hex(s string) string { h := md5.Sum([]byte(s)); return hex.EncodeToString(h[:]) }

func wantStatus(t testing.TB, what string, resp *http.Response, want int) {
	t.Helper()
	if resp.StatusCode != want {
		t.Errorf("%s: got %s, want %d", what, resp.Status, want)
	}
}

func wantHeader(t testing.TB, what string, resp *http.Response, name, want string) {
	t.Helper()
	if got := resp.Header.Get(name); got != want {
		t.Errorf("%s: %s: got %q, want %q", what, name, got, want)
	}
}

func TestPutGetHead(t *testing.T) {
	n := newNode(t, object.Options{})
	body := "hello, object"
	deleteAt := fmt.Sprint(n.clock.Now().Unix() + 3600)
	resp := n.put("dir/o", ts(1), body, "Content-Type", "text/x-test", "ETag", `"`+md5hex(body)+`"`,
		"X-Object-Meta-Color", "blue", "X-Object-Sysmeta-Crypt", "s", "X-Object-Transient-Sysmeta-T", "t",
		"Content-Encoding", "br", "Content-Disposition", "inline", "X-Delete-At", deleteAt, "X-Other", "dropped")
	wantHeader(t, "PUT", resp, "ETag", md5hex(body))

	for _, method := range []string{"GET", "HEAD"} {
		resp, got := n.do(method, "/sda/0/a/c/dir/o", "")
		wantStatus(t, method, resp, http.StatusOK)
		if want := map[string]string{"GET": body, "HEAD": ""}[method]; got != want {
			t.Errorf("%s: got body %q, want %q", method, got, want)
		}
		if resp.ContentLength != int64(len(body)) {
			t.Errorf("%s: Content-Length: got %d, want %d", method, resp.ContentLength, len(body))
		}
		for name, want := range map[string]string{
			"Content-Type": "text/x-test", "ETag": `"` + md5hex(body) + `"`,
			"X-Timestamp": ts(1), "X-Backend-Timestamp": ts(1), "X-Backend-Data-Timestamp": ts(1),
			"Last-Modified":       epoch.Add(time.Second).UTC().Format(http.TimeFormat),
			"X-Object-Meta-Color": "blue", "X-Object-Sysmeta-Crypt": "s", "X-Object-Transient-Sysmeta-T": "t",
			"Content-Encoding": "br", "Content-Disposition": "inline", "X-Delete-At": deleteAt, "X-Other": "",
		} {
			wantHeader(t, method, resp, name, want)
		}
	}
	if got := files(t, n.dir("dir/o")); len(got) != 1 || got[0] != ts(1)+".data" {
		t.Errorf("object's files: got %q, want [%s.data]", got, ts(1))
	}
	meta, err := object.ReadMetadata(filepath.Join(n.dir("dir/o"), ts(1)+".data"))
	if err != nil || meta["name"] != "/a/c/dir/o" || meta["ETag"] != md5hex(body) {
		t.Errorf("ReadMetadata: got %v, %v, want name /a/c/dir/o and the ETag", meta, err)
	}
	if err := object.Verify(filepath.Join(n.dir("dir/o"), ts(1)+".data")); err != nil {
		t.Errorf("Verify: got %v, want nil", err)
	}
	resp, _ = n.do("GET", "/sda/0/a/c/other", "")
	wantStatus(t, "GET of an object never put", resp, http.StatusNotFound)
	wantHeader(t, "GET of an object never put", resp, "X-Backend-Timestamp", "")
}

func TestEmptyAndChunked(t *testing.T) {
	n := newNode(t, object.Options{})
	n.put("empty", ts(1), "")
	if resp, got := n.do("GET", "/sda/0/a/c/empty", ""); resp.StatusCode != 200 || got != "" {
		t.Errorf("GET empty: got %s %q, want 200 and no body", resp.Status, got)
	}

	body := strings.Repeat("chunked body ", 20000)
	req, _ := http.NewRequest("PUT", n.srv.URL+"/sda/0/a/c/chunked", io.MultiReader(strings.NewReader(body)))
	req.ContentLength = -1
	req.Header.Set("X-Timestamp", ts(1))
	req.Header.Set("Content-Type", "text/plain")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("chunked PUT: got %s, want 201", resp.Status)
	}
	if resp, got := n.do("GET", "/sda/0/a/c/chunked", ""); got != body || resp.Header.Get("Content-Length") != fmt.Sprint(len(body)) {
		t.Errorf("GET chunked: got %d bytes (Content-Length %s), want %d", len(got), resp.Header.Get("Content-Length"), len(body))
	}
}

func TestRanges(t *testing.T) {
	n := newNode(t, object.Options{})
	body := "0123456789abcdefghij"
	n.put("o", ts(1), body)

	resp, got := n.do("GET", "/sda/0/a/c/o", "", "Range", "bytes=2-5")
	wantStatus(t, "one range", resp, http.StatusPartialContent)
	wantHeader(t, "one range", resp, "Content-Range", "bytes 2-5/20")
	if got != "2345" {
		t.Errorf("one range: got %q, want %q", got, "2345")
	}
	resp, got = n.do("GET", "/sda/0/a/c/o", "", "Range", "bytes=-3")
	if resp.StatusCode != 206 || got != "hij" {
		t.Errorf("suffix range: got %s %q, want 206 %q", resp.Status, got, "hij")
	}

	resp, got = n.do("GET", "/sda/0/a/c/o", "", "Range", "bytes=0-1,10-12")
	wantStatus(t, "two ranges", resp, http.StatusPartialContent)
	mt, params, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt != "multipart/byteranges" {
		t.Fatalf("two ranges: got Content-Type %q, want multipart/byteranges", mt)
	}
	mr := multipart.NewReader(strings.NewReader(got), params["boundary"])
	var parts []string
	for {
		p, err := mr.NextPart()
		if err != nil {
			break
		}
		b, _ := io.ReadAll(p)
		parts = append(parts, p.Header.Get("Content-Range")+" "+p.Header.Get("Content-Type")+" "+string(b))
	}
	want := []string{"bytes 0-1/20 text/plain 01", "bytes 10-12/20 text/plain abc"}
	if fmt.Sprint(parts) != fmt.Sprint(want) {
		t.Errorf("two ranges: got parts %q, want %q", parts, want)
	}

	resp, _ = n.do("GET", "/sda/0/a/c/o", "", "Range", "bytes=30-40")
	wantStatus(t, "range past the end", resp, http.StatusRequestedRangeNotSatisfiable)
}

func TestConditionalGet(t *testing.T) {
	n := newNode(t, object.Options{})
	body := "conditional"
	n.put("o", ts(1), body)
	etag := `"` + md5hex(body) + `"`
	modified := epoch.Add(time.Second) // Last-Modified: the timestamp rounded up
	httpTime := func(t time.Time) string { return t.UTC().Format(http.TimeFormat) }
	for _, tc := range []struct {
		name    string
		headers []string
		want    int
	}{
		{"If-Match the ETag", []string{"If-Match", etag}, 200},
		{"If-Match *", []string{"If-Match", "*"}, 200},
		{"If-Match another", []string{"If-Match", `"abc"`}, 412},
		{"If-None-Match the ETag", []string{"If-None-Match", etag}, 304},
		{"If-None-Match another", []string{"If-None-Match", `"abc"`}, 200},
		{"If-Modified-Since then", []string{"If-Modified-Since", httpTime(modified)}, 304},
		{"If-Modified-Since before", []string{"If-Modified-Since", httpTime(modified.Add(-time.Hour))}, 200},
		{"If-Unmodified-Since then", []string{"If-Unmodified-Since", httpTime(modified)}, 200},
		{"If-Unmodified-Since before", []string{"If-Unmodified-Since", httpTime(modified.Add(-time.Hour))}, 412},
		{"If-Range the ETag", []string{"Range", "bytes=0-3", "If-Range", etag}, 206},
		{"If-Range another", []string{"Range", "bytes=0-3", "If-Range", `"abc"`}, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, _ := n.do("GET", "/sda/0/a/c/o", "", tc.headers...)
			wantStatus(t, "GET", resp, tc.want)
		})
	}
}

func TestPutRefused(t *testing.T) {
	n := newNode(t, object.Options{})
	body := "some content"
	past := fmt.Sprint(n.clock.Now().Unix())
	for _, tc := range []struct {
		name    string
		headers []string
		want    int
	}{
		{"no timestamp", []string{"X-Timestamp", "", "Content-Type", "text/plain"}, 400},
		{"bad timestamp", []string{"X-Timestamp", "yesterday", "Content-Type", "text/plain"}, 400},
		{"no content type", []string{"X-Timestamp", ts(1)}, 400},
		{"wrong ETag", []string{"X-Timestamp", ts(1), "Content-Type", "text/plain", "ETag", md5hex("other")}, 422},
		{"X-Delete-At now", []string{"X-Timestamp", ts(1), "Content-Type", "text/plain", "X-Delete-At", past}, 400},
		{"X-Delete-At not a time", []string{"X-Timestamp", ts(1), "Content-Type", "text/plain", "X-Delete-At", "soon"}, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, _ := n.do("PUT", "/sda/0/a/c/o", body, tc.headers...)
			wantStatus(t, "PUT", resp, tc.want)
		})
	}

	// Requests a client would not send, straight to the handler.
	req := httptest.NewRequest("PUT", "/sda/0/a/c/o", nil)
	req.Header.Set("X-Timestamp", ts(1))
	req.Header.Set("Content-Type", "text/plain")
	w := httptest.NewRecorder()
	n.s.ServeHTTP(w, req)
	if w.Code != http.StatusLengthRequired {
		t.Errorf("PUT without length: got %d, want 411", w.Code)
	}
	req = httptest.NewRequest("PUT", "/sda/0/a/c/o", strings.NewReader(body))
	req.Header.Set("X-Timestamp", ts(1))
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("Content-Length", fmt.Sprint(objectstore.MaxFileSize+1))
	req.ContentLength = objectstore.MaxFileSize + 1
	w = httptest.NewRecorder()
	n.s.ServeHTTP(w, req)
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("PUT over the size limit: got %d, want 413", w.Code)
	}

	// A client that sends fewer bytes than it promised.
	conn, err := net.Dial("tcp", n.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "PUT /sda/0/a/c/o HTTP/1.1\r\nHost: x\r\nX-Timestamp: %s\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\nonly this", ts(1))
	conn.(*net.TCPConn).CloseWrite()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, "PUT of a short body", resp, 499)

	if resp, _ := n.do("GET", "/sda/0/a/c/o", ""); resp.StatusCode != 404 {
		t.Errorf("GET after refused PUTs: got %s, want 404", resp.Status)
	}
	if got := files(t, filepath.Join(n.root, "sda")); len(got) != 0 {
		t.Errorf("files after refused PUTs: got %q, want none", got)
	}
}

func TestTimestampsOrderVersions(t *testing.T) {
	n := newNode(t, object.Options{})
	n.put("o", ts(5), "five")
	for _, at := range []int{4, 5} {
		resp, _ := n.do("PUT", "/sda/0/a/c/o", "older", "X-Timestamp", ts(at), "Content-Type", "text/plain")
		wantStatus(t, "PUT at "+ts(at), resp, http.StatusConflict)
		wantHeader(t, "PUT at "+ts(at), resp, "X-Backend-Timestamp", ts(5))
	}
	n.put("o", ts(6), "six")
	if _, got := n.do("GET", "/sda/0/a/c/o", ""); got != "six" {
		t.Errorf("GET: got %q, want the newest, %q", got, "six")
	}
	if got := files(t, n.dir("o")); len(got) != 1 || got[0] != ts(6)+".data" {
		t.Errorf("object's files: got %q, want only the newest data", got)
	}
}

func TestPost(t *testing.T) {
	n := newNode(t, object.Options{})
	n.put("o", ts(1), "data", "X-Object-Meta-Old", "1", "X-Object-Sysmeta-Keep", "k", "Content-Encoding", "br")

	resp, _ := n.do("POST", "/sda/0/a/c/o", "", "X-Timestamp", ts(2), "X-Object-Meta-New", "2", "Content-Type", "text/x-new")
	wantStatus(t, "POST", resp, http.StatusAccepted)
	resp, got := n.do("GET", "/sda/0/a/c/o", "")
	if got != "data" {
		t.Errorf("GET after POST: got %q, want the data kept", got)
	}
	for name, want := range map[string]string{
		"X-Object-Meta-New": "2", "X-Object-Meta-Old": "", "Content-Encoding": "", "X-Object-Sysmeta-Keep": "k",
		"Content-Type": "text/x-new", "ETag": `"` + md5hex("data") + `"`,
		"X-Timestamp": ts(2), "X-Backend-Data-Timestamp": ts(1),
	} {
		wantHeader(t, "GET after POST", resp, name, want)
	}

	n.do("POST", "/sda/0/a/c/o", "", "X-Timestamp", ts(3), "X-Object-Meta-Third", "3")
	resp, _ = n.do("HEAD", "/sda/0/a/c/o", "")
	wantHeader(t, "HEAD after two POSTs", resp, "X-Object-Meta-New", "")
	wantHeader(t, "HEAD after two POSTs", resp, "X-Object-Meta-Third", "3")
	wantHeader(t, "HEAD after two POSTs", resp, "Content-Type", "text/x-new")
	if got := files(t, n.dir("o")); fmt.Sprint(got) != fmt.Sprint([]string{ts(1) + ".data", ts(3) + ".meta"}) {
		t.Errorf("object's files: got %q, want the data and the newest meta", got)
	}

	resp, _ = n.do("POST", "/sda/0/a/c/o", "", "X-Timestamp", ts(3))
	wantStatus(t, "POST not newer", resp, http.StatusConflict)
	wantHeader(t, "POST not newer", resp, "X-Backend-Timestamp", ts(3))
	resp, _ = n.do("POST", "/sda/0/a/c/missing", "", "X-Timestamp", ts(3))
	wantStatus(t, "POST of a missing object", resp, http.StatusNotFound)
	resp, _ = n.do("POST", "/sda/0/a/c/o", "")
	wantStatus(t, "POST without timestamp", resp, http.StatusBadRequest)

	// A PUT newer than the data but older than the POST takes the POST's
	// metadata, but not a Content-Type older than the PUT.
	n.put("o", ts(2), "new data", "X-Object-Meta-Put", "p", "Content-Type", "text/x-put")
	resp, got = n.do("GET", "/sda/0/a/c/o", "")
	if got != "new data" {
		t.Errorf("GET after a PUT between: got %q, want %q", got, "new data")
	}
	for name, want := range map[string]string{"X-Object-Meta-Third": "3", "X-Object-Meta-Put": "", "Content-Type": "text/x-put"} {
		wantHeader(t, "GET after a PUT between", resp, name, want)
	}
}

func TestDelete(t *testing.T) {
	n := newNode(t, object.Options{})
	n.put("o", ts(2), "data")
	resp, _ := n.do("DELETE", "/sda/0/a/c/o", "", "X-Timestamp", ts(1))
	wantStatus(t, "DELETE older than the data", resp, http.StatusConflict)
	wantHeader(t, "DELETE older than the data", resp, "X-Backend-Timestamp", ts(2))

	resp, _ = n.do("DELETE", "/sda/0/a/c/o", "", "X-Timestamp", ts(3))
	wantStatus(t, "DELETE", resp, http.StatusNoContent)
	if got := files(t, n.dir("o")); len(got) != 1 || got[0] != ts(3)+".ts" {
		t.Errorf("object's files: got %q, want only the tombstone", got)
	}
	for _, method := range []string{"GET", "HEAD", "POST"} {
		resp, _ = n.do(method, "/sda/0/a/c/o", "", "X-Timestamp", ts(4))
		wantStatus(t, method+" of a deleted object", resp, http.StatusNotFound)
		wantHeader(t, method+" of a deleted object", resp, "X-Backend-Timestamp", ts(3))
	}
	resp, _ = n.do("PUT", "/sda/0/a/c/o", "late", "X-Timestamp", ts(2), "Content-Type", "text/plain")
	wantStatus(t, "PUT older than the tombstone", resp, http.StatusConflict)
	wantHeader(t, "PUT older than the tombstone", resp, "X-Backend-Timestamp", ts(3))

	resp, _ = n.do("DELETE", "/sda/0/a/c/never", "", "X-Timestamp", ts(3))
	wantStatus(t, "DELETE of an object never put", resp, http.StatusNotFound)
	if got := files(t, n.dir("never")); len(got) != 1 || got[0] != ts(3)+".ts" {
		t.Errorf("files of an object never put, deleted: got %q, want a tombstone", got)
	}

	n.put("o", ts(5), "back")
	if resp, got := n.do("GET", "/sda/0/a/c/o", ""); resp.StatusCode != 200 || got != "back" {
		t.Errorf("GET of an object put after its deletion: got %s %q, want 200 %q", resp.Status, got, "back")
	}
}

func TestExpiry(t *testing.T) {
	n := newNode(t, object.Options{})
	at := n.clock.Now().Unix() + 10
	n.put("o", ts(1), "short-lived", "X-Delete-At", fmt.Sprint(at))
	n.put("other", ts(1), "other", "X-Delete-At", fmt.Sprint(at))
	if resp, _ := n.do("GET", "/sda/0/a/c/o", ""); resp.StatusCode != 200 {
		t.Fatalf("GET before X-Delete-At: got %s, want 200", resp.Status)
	}
	resp, _ := n.do("DELETE", "/sda/0/a/c/other", "", "X-Timestamp", ts(2), "X-If-Delete-At", fmt.Sprint(at+1))
	wantStatus(t, "DELETE with another X-If-Delete-At", resp, http.StatusPreconditionFailed)

	n.clock.Add(10 * time.Second)
	for _, method := range []string{"GET", "HEAD", "POST"} {
		resp, _ := n.do(method, "/sda/0/a/c/o", "", "X-Timestamp", ts(2))
		wantStatus(t, method+" at X-Delete-At", resp, http.StatusNotFound)
		wantHeader(t, method+" at X-Delete-At", resp, "X-Backend-Timestamp", ts(1))
	}
	// The expirer's DELETE: the object is gone already, yet its tombstone is written.
	resp, _ = n.do("DELETE", "/sda/0/a/c/other", "", "X-Timestamp", ts(2), "X-If-Delete-At", fmt.Sprint(at))
	wantStatus(t, "DELETE with X-If-Delete-At", resp, http.StatusNotFound)
	if got := files(t, n.dir("other")); len(got) != 1 || got[0] != ts(2)+".ts" {
		t.Errorf("files after the expirer's DELETE: got %q, want only the tombstone", got)
	}
}

func TestDeviceAndMethod(t *testing.T) {
	n := newNode(t, object.Options{})
	resp, _ := n.do("PUT", "/sdb/0/a/c/o", "x", "X-Timestamp", ts(1), "Content-Type", "text/plain")
	wantStatus(t, "PUT to a missing device", resp, http.StatusInsufficientStorage)
	resp, _ = n.do("GET", "/sdb/0/a/c/o", "")
	wantStatus(t, "GET from a missing device", resp, http.StatusInsufficientStorage)
	resp, _ = n.do("PATCH", "/sda/0/a/c/o", "")
	wantStatus(t, "PATCH", resp, http.StatusMethodNotAllowed)
}

func TestPathsStayUnderRoot(t *testing.T) {
	n := newNode(t, object.Options{})
	for _, path := range []string{
		"/../0/a/c/o",
		"/%2e%2e/0/a/c/o",
		"/sda%2F..%2F../0/a/c/o",
		"/sda/-1/a/c/o",
		"/sda/0/a%2Fb/c/o",
		"/sda/0/a/c%2F..%2F../o",
		"/sda/0/a/c",
		"/sda/0/a/c/",
		"/sda/0/a/c/%ff",
		"/sda/0/a/c/%00",
		"/sda/0/a/c/" + strings.Repeat("o", objectstore.MaxObjectNameLength+1),
	} {
		req := httptest.NewRequest("PUT", path, strings.NewReader("x"))
		req.Header.Set("X-Timestamp", ts(1))
		req.Header.Set("Content-Type", "text/plain")
		w := httptest.NewRecorder()
		n.s.ServeHTTP(w, req)
		if w.Code != http.StatusBadRequest {
			t.Errorf("PUT %s: got %d, want 400", path, w.Code)
		}
	}
	// Dots are names like any other: hashed, they land under the device.
	n.put("..%2F..%2F..%2Fescaped", ts(1), "x")
	req := httptest.NewRequest("PUT", "/sda/0/../../../../x", strings.NewReader("x"))
	req.Header.Set("Content-Length", "1")
	req.Header.Set("X-Timestamp", ts(1))
	req.Header.Set("Content-Type", "text/plain")
	w := httptest.NewRecorder()
	n.s.ServeHTTP(w, req)
	if w.Code != http.StatusCreated {
		t.Errorf("PUT /sda/0/../../../../x: got %d, want 201", w.Code)
	}
	top := filepath.Dir(n.root)
	for _, f := range files(t, top) {
		if !strings.HasPrefix(f, filepath.Join("root", "sda", "objects")+string(filepath.Separator)) {
			t.Errorf("file %s: want everything under root/sda/objects", f)
		}
	}
	if got, _ := filepath.Glob(filepath.Join(n.root, "sda", "objects", "0", "*", "*", "*.data")); len(got) != 2 {
		t.Errorf("data files: got %q, want the 2 objects", got)
	}
}

func TestKey(t *testing.T) {
	n := newNode(t, object.Options{Key: "secret"})
	for _, key := range []string{"", "wrong"} {
		req := httptest.NewRequest("PUT", "/sda/0/a/c/o", strings.NewReader("x"))
		req.Header.Set("X-Timestamp", ts(1))
		req.Header.Set("Content-Type", "text/plain")
		req.Header.Set(node.KeyHeader, key)
		w := httptest.NewRecorder()
		n.s.ServeHTTP(w, req)
		if w.Code != http.StatusUnauthorized {
			t.Errorf("PUT with key %q: got %d, want 401", key, w.Code)
		}
	}
	n.put("o", ts(1), "x") // with the key
	if got := files(t, n.dir("o")); len(got) != 1 {
		t.Errorf("files after PUTs: got %q, want only the one with the key", got)
	}
}

// flip inverts one byte of a file.
func flip(t testing.TB, path string, offset int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if offset < 0 {
		st, _ := f.Stat()
		offset += st.Size()
	}
	b := make([]byte, 1)
	f.ReadAt(b, offset)
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, offset); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptContentIsNeverServedWhole(t *testing.T) {
	for _, size := range []int{10, 200 << 10} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			n := newNode(t, object.Options{})
			body := strings.Repeat("x", size)
			n.put("o", ts(1), body)
			data := filepath.Join(n.dir("o"), ts(1)+".data")
			flip(t, data, 5)
			if err := object.Verify(data); !errors.Is(err, object.ErrCorrupt) {
				t.Errorf("Verify: got %v, want ErrCorrupt", err)
			}

			// A new connection, so that the client does not retry.
			client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
			resp, err := client.Get(n.srv.URL + "/sda/0/a/c/o")
			if err == nil {
				got, rerr := io.ReadAll(resp.Body)
				resp.Body.Close()
				if rerr == nil || len(got) >= size {
					t.Errorf("GET of corrupt content: got %d bytes and error %v, want a broken transfer", len(got), rerr)
				}
			}
			if got := files(t, filepath.Join(n.root, "sda", "quarantined", "objects", hasher.Path("a", "c", "o").String())); len(got) != 1 {
				t.Errorf("quarantined: got %q, want the data file", got)
			}
			resp2, _ := n.do("GET", "/sda/0/a/c/o", "")
			wantStatus(t, "GET after quarantine", resp2, http.StatusNotFound)
		})
	}
}

func TestCorruptMetadataIsQuarantined(t *testing.T) {
	n := newNode(t, object.Options{})
	n.put("o", ts(1), "content")
	data := filepath.Join(n.dir("o"), ts(1)+".data")
	flip(t, data, -20) // in the metadata trailer
	if _, err := object.ReadMetadata(data); !errors.Is(err, object.ErrCorrupt) {
		t.Errorf("ReadMetadata: got %v, want ErrCorrupt", err)
	}
	resp, _ := n.do("HEAD", "/sda/0/a/c/o", "")
	wantStatus(t, "HEAD", resp, http.StatusNotFound)
	if _, err := os.Stat(n.dir("o")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("object's dir after HEAD: got %v, want it moved to quarantine", err)
	}
	n.put("o", ts(2), "again")
}

func TestCrashLeftoversDoNotShow(t *testing.T) {
	n := newNode(t, object.Options{})
	tmp := filepath.Join(n.root, "sda", "tmp")
	os.MkdirAll(tmp, 0o750)
	os.WriteFile(filepath.Join(tmp, "put-123"), []byte("half an object"), 0o640)
	os.MkdirAll(n.dir("half"), 0o750)
	os.WriteFile(filepath.Join(n.dir("half"), "."+ts(1)+".meta.tmp-1"), []byte("{"), 0o640)

	resp, _ := n.do("GET", "/sda/0/a/c/half", "")
	wantStatus(t, "GET of an object a crash left half written", resp, http.StatusNotFound)
	n.put("half", ts(2), "whole")
	if _, got := n.do("GET", "/sda/0/a/c/half", ""); got != "whole" {
		t.Errorf("GET: got %q, want %q", got, "whole")
	}
}

// containerNode records the updates it is sent; it fails them while down.
type containerNode struct {
	mu      sync.Mutex
	down    bool
	updates []string
	srv     *httptest.Server
}

func newContainerNode(t testing.TB, start bool) *containerNode {
	c := &containerNode{}
	c.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.down {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		h := r.Header
		c.updates = append(c.updates, fmt.Sprintf("%s %s ts=%s size=%s type=%s etag=%s key=%s", r.Method, r.URL.EscapedPath(),
			h.Get("X-Timestamp"), h.Get("X-Size"), h.Get("X-Content-Type"), h.Get("X-Etag"), h.Get(node.KeyHeader)))
		w.WriteHeader(http.StatusCreated)
	}))
	if start {
		c.srv.Start()
	}
	t.Cleanup(c.srv.Close)
	return c
}

func (c *containerNode) got() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.updates...)
}

func (c *containerNode) addr() string { return c.srv.Listener.Addr().String() }

func TestContainerUpdates(t *testing.T) {
	n := newNode(t, object.Options{Key: "k"})
	c1, c2 := newContainerNode(t, true), newContainerNode(t, true)
	where := []string{"X-Container-Host", c1.addr() + "," + c2.addr(), "X-Container-Device", "sdc,sdd", "X-Container-Partition", "7"}
	n.put("a%20b", ts(1), "data", append(where, "Content-Type", "text/x")...)
	resp, _ := n.do("DELETE", "/sda/0/a/c/a%20b", "", append(where, "X-Timestamp", ts(2))...)
	wantStatus(t, "DELETE", resp, http.StatusNoContent)

	for i, c := range []*containerNode{c1, c2} {
		dev := []string{"sdc", "sdd"}[i]
		want := []string{
			fmt.Sprintf("PUT /%s/7/a/c/a%%20b ts=%s size=4 type=text/x etag=%s key=k", dev, ts(1), md5hex("data")),
			fmt.Sprintf("DELETE /%s/7/a/c/a%%20b ts=%s size= type= etag= key=k", dev, ts(2)),
		}
		if got := c.got(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("container node %d: got updates %q, want %q", i, got, want)
		}
	}
	if got := files(t, filepath.Join(n.root, "sda", "async_pending")); len(got) != 0 {
		t.Errorf("async_pending: got %q, want nothing", got)
	}
}

func TestAsyncPending(t *testing.T) {
	n := newNode(t, object.Options{UpdateTimeout: 200 * time.Millisecond})
	up := newContainerNode(t, true)
	unstarted := newContainerNode(t, false) // accepts connections, never answers until started
	where := []string{"X-Container-Host", up.addr() + "," + unstarted.addr(), "X-Container-Device", "sdc,sdd", "X-Container-Partition", "7"}

	start := time.Now()
	n.put("o", ts(1), "data", where...)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("PUT with a container node down: took %v, want about UpdateTimeout", d)
	}
	h := hasher.Path("a", "c", "o")
	pending := filepath.Join(n.root, "sda", "async_pending", h.Suffix(), h.String()+"-"+ts(1))
	if _, err := os.Stat(pending); err != nil {
		t.Fatalf("async pending update: %v", err)
	}
	if got := len(up.got()); got != 1 {
		t.Errorf("updates the node that was up got: %d, want 1", got)
	}

	unstarted.srv.Start()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.s.RunUpdater(ctx, 20*time.Millisecond); close(done) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "the pending update's removal", func() bool { _, err := os.Stat(pending); return errors.Is(err, fs.ErrNotExist) })
	// The node may also get the first try, which waited in its listen
	// queue: the container applies an update once, by its timestamp.
	want := fmt.Sprintf("PUT /sdd/7/a/c/o ts=%s size=4 type=text/plain etag=%s key=", ts(1), md5hex("data"))
	got := unstarted.got()
	if len(got) == 0 || len(got) > 2 || got[0] != want || got[len(got)-1] != want {
		t.Errorf("updates delivered late: got %q, want %q once or twice", got, want)
	}
	if got := len(up.got()); got != 1 {
		t.Errorf("updates the node that was up got: %d, want still 1", got)
	}
}

func TestUpdaterDropsSupersededUpdates(t *testing.T) {
	n := newNode(t, object.Options{})
	c := newContainerNode(t, true)
	c.mu.Lock()
	c.down = true
	c.mu.Unlock()
	where := []string{"X-Container-Host", c.addr(), "X-Container-Device", "sdc", "X-Container-Partition", "7"}
	n.put("o", ts(1), "data", where...)
	n.do("DELETE", "/sda/0/a/c/o", "", append(where, "X-Timestamp", ts(2))...)
	if got := files(t, filepath.Join(n.root, "sda", "async_pending")); len(got) != 2 {
		t.Fatalf("async pending updates: got %q, want 2", got)
	}

	c.mu.Lock()
	c.down = false
	c.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.s.RunUpdater(ctx, 20*time.Millisecond); close(done) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "no pending updates", func() bool { return len(files(t, filepath.Join(n.root, "sda", "async_pending"))) == 0 })
	want := []string{fmt.Sprintf("DELETE /sdc/7/a/c/o ts=%s size= type= etag= key=", ts(2))}
	if got := c.got(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("updates delivered: got %q, want only the newest %q", got, want)
	}
}

func waitFor(t testing.TB, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10 s for %s", what)
		}
	}
}
