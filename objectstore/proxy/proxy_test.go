package proxy_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
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
	"github.com/trustack/trustack/objectstore/storage"
)

// tokens are the test's callers, by token: roles in project p1 (p2 for
// "other", p3 for "reseller").
var tokens = map[string]*trustack.Token{
	"member":   {User: trustack.User{ID: "u1"}, Project: &trustack.Project{ID: "p1"}, Roles: []trustack.Role{{Name: "member"}}},
	"reader":   {User: trustack.User{ID: "u2"}, Project: &trustack.Project{ID: "p1"}, Roles: []trustack.Role{{Name: "reader"}}},
	"other":    {User: trustack.User{ID: "u3"}, Project: &trustack.Project{ID: "p2"}, Roles: []trustack.Role{{Name: "member"}}},
	"reseller": {User: trustack.User{ID: "u4"}, Project: &trustack.Project{ID: "p3"}, Roles: []trustack.Role{{Name: "ResellerAdmin"}}},
}

type validator struct{}

func (validator) Validate(_ context.Context, token string) (*trustack.Token, error) {
	if t := tokens[token]; t != nil {
		return t, nil
	}
	return nil, trustack.Errorf(trustack.EUNAUTHORIZED, "The request you have made requires authentication.")
}

// cluster is a local cluster of storage nodes and a proxy in front.
type cluster struct {
	t     *testing.T
	dir   string
	nodes []storage.Config
	run   []*storage.Node
	url   string // the proxy's /v1/AUTH_p1
}

// newCluster starts four storage nodes (three replicas) and a proxy.
func newCluster(t *testing.T) *cluster {
	t.Helper()
	cfg := storage.Config{Hasher: objectstore.Hasher{Prefix: "pre", Suffix: "suf"}, Key: "backend key", UpdaterInterval: 50 * time.Millisecond}
	c := &cluster{t: t}
	t.Cleanup(func() {
		for _, n := range c.run {
			if n != nil {
				n.Close()
			}
		}
	})
	// The ports the rings name were free when they were made, and may be
	// taken by another test's process before the nodes listen: try anew.
	for attempt := 1; ; attempt++ {
		c.dir = t.TempDir()
		nodes, err := storage.Local(c.dir, filepath.Join(c.dir, "rings"), 4, cfg)
		if err != nil {
			t.Fatal(err)
		}
		c.nodes, c.run = nodes, nil
		for _, n := range nodes {
			node, err := storage.Start(n)
			if err != nil {
				for _, started := range c.run {
					started.Close()
				}
				c.run = nil
				if attempt < 3 && strings.Contains(err.Error(), "address already in use") {
					break
				}
				t.Fatal(err)
			}
			c.run = append(c.run, node)
		}
		if len(c.run) == len(nodes) {
			break
		}
	}
	dir := c.dir
	rings, err := storage.LoadRings(filepath.Join(dir, "rings"))
	if err != nil {
		t.Fatal(err)
	}
	p := proxy.New(rings, validator{}, proxy.Options{Key: cfg.Key, Hasher: cfg.Hasher, NodeTimeout: 2 * time.Second, InfoTTL: time.Millisecond})
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	c.url = srv.URL + "/v1/AUTH_p1"
	return c
}

// stop stops node i, as a machine going down.
func (c *cluster) stop(i int) {
	c.run[i].Close()
	c.run[i] = nil
}

// start starts node i again.
func (c *cluster) start(i int) {
	node, err := storage.Start(c.nodes[i])
	if err != nil {
		c.t.Fatal(err)
	}
	c.run[i] = node
}

// do makes a request as token (none if "") and returns the status,
// headers and body.
func (c *cluster) do(method, path, token string, body io.Reader, headers ...string) (int, http.Header, string) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.url+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	for i := 0; i < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// want checks a request's status.
func (c *cluster) want(status int, method, path, token string, body io.Reader, headers ...string) (http.Header, string) {
	c.t.Helper()
	got, h, b := c.do(method, path, token, body, headers...)
	if got != status {
		c.t.Fatalf("%s %s: status %d (%s), want %d", method, path, got, b, status)
	}
	return h, b
}

func md5hex(b []byte) string {
	sum := md5.Sum(b)
	return hex.EncodeToString(sum[:])
}

func TestContainersAndObjects(t *testing.T) {
	c := newCluster(t)
	// An account never written reads as empty.
	h, _ := c.want(http.StatusNoContent, "HEAD", "", "member", nil)
	if h.Get("X-Account-Container-Count") != "0" {
		t.Errorf("a new account: X-Account-Container-Count %q, want 0", h.Get("X-Account-Container-Count"))
	}
	c.want(http.StatusCreated, "PUT", "/photos", "member", nil, "X-Container-Meta-Color", "blue")
	c.want(http.StatusAccepted, "PUT", "/photos", "member", nil)
	h, _ = c.want(http.StatusNoContent, "HEAD", "/photos", "member", nil)
	if h.Get("X-Container-Meta-Color") != "blue" || h.Get("X-Container-Object-Count") != "0" {
		t.Errorf("container headers %v, want its metadata and no objects", h)
	}
	data := bytes.Repeat([]byte("0123456789abcdef"), 10_000) // 160 kB
	h, _ = c.want(http.StatusCreated, "PUT", "/photos/2024/cat.jpg", "member", bytes.NewReader(data), "X-Object-Meta-Who", "tom")
	if h.Get("Etag") != md5hex(data) {
		t.Errorf("PUT ETag %q, want %s", h.Get("Etag"), md5hex(data))
	}
	h, body := c.want(http.StatusOK, "GET", "/photos/2024/cat.jpg", "member", nil)
	if body != string(data) || h.Get("Etag") != md5hex(data) || h.Get("X-Object-Meta-Who") != "tom" || h.Get("Content-Type") != "image/jpeg" {
		t.Errorf("GET: %d bytes, headers %v; want the data, its ETag, metadata and type", len(body), h)
	}
	_, body = c.want(http.StatusPartialContent, "GET", "/photos/2024/cat.jpg", "member", nil, "Range", "bytes=16-31")
	if body != "0123456789abcdef" {
		t.Errorf("range 16-31: %q", body)
	}
	c.want(http.StatusNotModified, "GET", "/photos/2024/cat.jpg", "member", nil, "If-None-Match", `"`+md5hex(data)+`"`)
	c.want(http.StatusPreconditionFailed, "GET", "/photos/2024/cat.jpg", "member", nil, "If-Match", `"nope"`)
	c.want(http.StatusUnprocessableEntity, "PUT", "/photos/bad", "member", strings.NewReader("abc"), "Etag", md5hex([]byte("abd")))
	c.want(http.StatusNotFound, "GET", "/photos/bad", "member", nil)
	c.want(http.StatusAccepted, "POST", "/photos/2024/cat.jpg", "member", nil, "X-Object-Meta-Who", "felix")
	h, _ = c.want(http.StatusOK, "HEAD", "/photos/2024/cat.jpg", "member", nil)
	if h.Get("X-Object-Meta-Who") != "felix" {
		t.Errorf("after POST: X-Object-Meta-Who %q, want felix", h.Get("X-Object-Meta-Who"))
	}
	c.want(http.StatusCreated, "COPY", "/photos/2024/cat.jpg", "member", nil, "Destination", "photos/copy.jpg")
	_, body = c.want(http.StatusOK, "GET", "/photos/copy.jpg", "member", nil)
	if body != string(data) {
		t.Errorf("the copy has %d bytes, want the source's %d", len(body), len(data))
	}
	for _, name := range []string{"2024/dog.jpg", "2025/a.txt", "z"} {
		c.want(http.StatusCreated, "PUT", "/photos/"+name, "member", strings.NewReader(name))
	}
	// The listings converge as the object servers update the containers.
	var listing string
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, listing = c.want(http.StatusOK, "GET", "/photos?delimiter=/", "member", nil)
		if listing == "2024/\n2025/\ncopy.jpg\nz\n" || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if listing != "2024/\n2025/\ncopy.jpg\nz\n" {
		t.Errorf("listing with delimiter /: %q", listing)
	}
	_, js := c.want(http.StatusOK, "GET", "/photos?prefix=2024/&format=json", "member", nil)
	var objs []struct {
		Name  string
		Bytes int
		Hash  string
	}
	if err := json.Unmarshal([]byte(js), &objs); err != nil || len(objs) != 2 || objs[0].Name != "2024/cat.jpg" || objs[0].Bytes != len(data) || objs[0].Hash != md5hex(data) {
		t.Errorf("JSON listing of prefix 2024/: %s (%v)", js, err)
	}
	_, xml := c.want(http.StatusOK, "GET", "/photos?limit=1&marker=2024/dog.jpg", "member", nil, "Accept", "application/xml")
	if !strings.Contains(xml, `<container name="photos"><object><name>2025/a.txt</name>`) {
		t.Errorf("XML listing after 2024/dog.jpg, limit 1: %s", xml)
	}
	c.want(http.StatusConflict, "DELETE", "/photos", "member", nil)
	for _, name := range []string{"2024/cat.jpg", "2024/dog.jpg", "2025/a.txt", "z", "copy.jpg"} {
		c.want(http.StatusNoContent, "DELETE", "/photos/"+name, "member", nil)
	}
	c.want(http.StatusNotFound, "DELETE", "/photos/z", "member", nil)
	deadline = time.Now().Add(10 * time.Second)
	for {
		status, _, _ := c.do("DELETE", "/photos", "member", nil)
		if status == http.StatusNoContent {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the emptied container could not be deleted: %d", status)
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.want(http.StatusNotFound, "HEAD", "/photos", "member", nil)
}

func TestAccess(t *testing.T) {
	c := newCluster(t)
	c.want(http.StatusCreated, "PUT", "/c", "member", nil)
	c.want(http.StatusCreated, "PUT", "/c/o", "member", strings.NewReader("x"))
	c.want(http.StatusUnauthorized, "GET", "/c/o", "", nil)
	c.want(http.StatusUnauthorized, "GET", "/c/o", "forged", nil)
	c.want(http.StatusForbidden, "GET", "/c/o", "other", nil)
	c.want(http.StatusOK, "GET", "/c/o", "reseller", nil)
	for _, token := range []string{"member", "reseller"} {
		// The expirer's queue, a hidden account, is the servers' alone.
		queue, _ := http.NewRequest("GET", strings.TrimSuffix(c.url, "AUTH_p1")+objectstore.ExpiringObjectsAccount, nil)
		queue.Header.Set("X-Auth-Token", token)
		resp, err := http.DefaultClient.Do(queue)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("GET of the expirer's queue as %s: got %s, want 403", token, resp.Status)
		}
	}
	c.want(http.StatusOK, "GET", "/c/o", "reader", nil)
	c.want(http.StatusForbidden, "PUT", "/c/o2", "reader", strings.NewReader("x"))
	c.want(http.StatusForbidden, "DELETE", "/c/o", "reader", nil)
	c.want(http.StatusNotFound, "PUT", "/missing/o", "member", strings.NewReader("x"))
	c.want(http.StatusBadRequest, "PUT", "/c/o3", "member", strings.NewReader("x"), "X-Object-Meta-"+strings.Repeat("k", 200), "v")
	c.want(http.StatusPreconditionFailed, "GET", "/c?limit=10001", "member", nil)
	c.want(http.StatusBadRequest, "PUT", "/c/"+strings.Repeat("o", 1025), "member", strings.NewReader("x"))
}

// TestNodeDown: with one of four nodes down, writes go to handoffs and
// reads to the other replicas; every object reads back.
func TestNodeDown(t *testing.T) {
	c := newCluster(t)
	c.want(http.StatusCreated, "PUT", "/c", "member", nil)
	c.stop(1)
	for i := range 20 {
		c.want(http.StatusCreated, "PUT", fmt.Sprintf("/c/o%d", i), "member", strings.NewReader(fmt.Sprint("data ", i)))
	}
	for i := range 20 {
		if _, body := c.want(http.StatusOK, "GET", fmt.Sprintf("/c/o%d", i), "member", nil); body != fmt.Sprint("data ", i) {
			t.Errorf("o%d reads %q", i, body)
		}
	}
	c.start(1)
	c.stop(2)
	for i := range 20 {
		if _, body := c.want(http.StatusOK, "GET", fmt.Sprintf("/c/o%d", i), "member", nil); body != fmt.Sprint("data ", i) {
			t.Errorf("o%d reads %q with another node down", i, body)
		}
	}
}

// replicaFiles returns the data files of the cluster's replicas.
func (c *cluster) replicaFiles() []string {
	var files []string
	filepath.WalkDir(c.dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(path, ".data") && !strings.Contains(path, "quarantined") {
			files = append(files, path)
		}
		return nil
	})
	return files
}

// flip flips the byte at offset of a file.
func flip(t *testing.T, file string, offset int) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	b[offset] ^= 0xff
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestCorruptLargeReplica: a byte flipped in one replica of an object too
// large to be checked before it is sent: a read from that replica is
// broken off, never ended whole with the wrong bytes, and the copy is
// quarantined, so that reads after it are right.
func TestCorruptLargeReplica(t *testing.T) {
	c := newCluster(t)
	c.want(http.StatusCreated, "PUT", "/c", "member", nil)
	data := bytes.Repeat([]byte("0123456789"), 600_000) // 6 MB
	c.want(http.StatusCreated, "PUT", "/c/large", "member", bytes.NewReader(data))
	files := c.replicaFiles()
	if len(files) != 3 {
		t.Fatalf("%d replicas on disk, want 3", len(files))
	}
	flip(t, files[0], 100)
	broken := 0
	for range 8 {
		req, _ := http.NewRequest("GET", c.url+"/c/large", nil)
		req.Header.Set("X-Auth-Token", "member")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			broken++
			continue
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case err != nil:
			broken++
		case !bytes.Equal(body, data):
			t.Fatalf("a read ended whole with %d bytes not matching the object", len(body))
		}
	}
	if broken > 1 {
		t.Errorf("%d of 8 reads broken off, want at most the first (which quarantines the bad copy)", broken)
	}
}

// TestCorruptReplica: a byte flipped in one replica's file: reads still
// return the right bytes, from the others.
func TestCorruptReplica(t *testing.T) {
	c := newCluster(t)
	c.want(http.StatusCreated, "PUT", "/c", "member", nil)
	data := bytes.Repeat([]byte("trustworthy "), 50_000) // 600 kB, several chunks
	c.want(http.StatusCreated, "PUT", "/c/big", "member", bytes.NewReader(data))
	files := c.replicaFiles()
	if len(files) != 3 {
		t.Fatalf("%d replicas on disk, want 3: %v", len(files), files)
	}
	flip(t, files[0], 1000) // every replica but one corrupt
	flip(t, files[1], 201_000)
	for range 6 { // whichever replica comes first
		if _, body := c.want(http.StatusOK, "GET", "/c/big", "member", nil); body != string(data) {
			t.Fatalf("a read returned %d bytes not matching the object", len(body))
		}
	}
}

// TestLargeObjects: a dynamic and a static large object read as the
// concatenation of their segments, ranges across segments included; a
// static one's segments are checked when it is stored, and go with it.
func TestLargeObjects(t *testing.T) {
	c := newCluster(t)
	c.want(http.StatusCreated, "PUT", "/c", "member", nil)
	c.want(http.StatusCreated, "PUT", "/segs", "member", nil)
	parts := []string{"alpha-", "beta-", "gamma"}
	sum := md5.New()
	for i, p := range parts {
		c.want(http.StatusCreated, "PUT", fmt.Sprintf("/segs/big/%02d", i), "member", strings.NewReader(p))
		sum.Write([]byte(md5hex([]byte(p))))
	}
	whole := strings.Join(parts, "")
	largeETag := `"` + hex.EncodeToString(sum.Sum(nil)) + `"`

	c.want(http.StatusCreated, "PUT", "/c/dlo", "member", strings.NewReader(""), "X-Object-Manifest", "segs/big/")
	deadline := time.Now().Add(10 * time.Second)
	for { // the segments' listing converges
		_, h, body := c.do("GET", "/c/dlo", "member", nil)
		if body == whole {
			if h.Get("Etag") != largeETag {
				t.Errorf("DLO ETag %s, want %s", h.Get("Etag"), largeETag)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("DLO reads %q, want %q", body, whole)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, body := c.want(http.StatusPartialContent, "GET", "/c/dlo", "member", nil, "Range", "bytes=4-8"); body != whole[4:9] {
		t.Errorf("DLO bytes 4-8: %q, want %q", body, whole[4:9])
	}

	manifest := fmt.Sprintf(`[{"path": "/segs/big/00", "etag": "%s", "size_bytes": 6}, {"path": "/segs/big/01"}, {"path": "/segs/big/02", "size_bytes": 5}]`, md5hex([]byte("alpha-")))
	bad := `[{"path": "/segs/big/00", "etag": "0123"}, {"path": "/segs/missing"}]`
	c.want(http.StatusBadRequest, "PUT", "/c/slo?multipart-manifest=put", "member", strings.NewReader(bad))
	c.want(http.StatusNotFound, "GET", "/c/slo", "member", nil)
	h, _ := c.want(http.StatusCreated, "PUT", "/c/slo?multipart-manifest=put", "member", strings.NewReader(manifest))
	if h.Get("Etag") != largeETag {
		t.Errorf("SLO PUT ETag %s, want %s", h.Get("Etag"), largeETag)
	}
	h, body := c.want(http.StatusOK, "GET", "/c/slo", "member", nil)
	if body != whole || h.Get("Etag") != largeETag || h.Get("X-Static-Large-Object") != "True" {
		t.Errorf("SLO GET: %q, headers %v; want %q, its ETag %s", body, h, whole, largeETag)
	}
	if h, _ := c.want(http.StatusOK, "HEAD", "/c/slo", "member", nil); h.Get("Content-Length") != fmt.Sprint(len(whole)) {
		t.Errorf("SLO HEAD Content-Length %s, want %d", h.Get("Content-Length"), len(whole))
	}
	if _, body := c.want(http.StatusPartialContent, "GET", "/c/slo", "member", nil, "Range", "bytes=-7"); body != whole[len(whole)-7:] {
		t.Errorf("SLO last 7 bytes: %q", body)
	}
	if _, body := c.want(http.StatusOK, "GET", "/c/slo?multipart-manifest=get", "member", nil); !strings.Contains(body, `"name":"/segs/big/01"`) {
		t.Errorf("SLO manifest: %s", body)
	}
	want := fmt.Sprintf(`"name":"slo","hash":"%s","bytes":%d`, strings.Trim(largeETag, `"`), len(whole))
	if _, body := c.want(http.StatusOK, "GET", "/c?format=json&prefix=slo", "member", nil); !strings.Contains(body, want) {
		t.Errorf("the container lists the SLO as %s, want it listed as the large object (%s)", body, want)
	}
	c.want(http.StatusOK, "DELETE", "/c/slo?multipart-manifest=delete", "member", nil)
	c.want(http.StatusNotFound, "GET", "/c/slo", "member", nil)
	c.want(http.StatusNotFound, "GET", "/segs/big/01", "member", nil)
}

// TestACLs: a container's read and write ACLs let other projects' users
// and anonymous referrers in as far as they say, and no further.
func TestACLs(t *testing.T) {
	c := newCluster(t)
	c.want(http.StatusCreated, "PUT", "/shared", "member", nil)
	c.want(http.StatusCreated, "PUT", "/shared/o", "member", strings.NewReader("x"))
	c.want(http.StatusCreated, "PUT", "/private", "member", nil)
	c.want(http.StatusForbidden, "GET", "/shared/o", "other", nil)
	c.want(http.StatusNoContent, "POST", "/shared", "member", nil, "X-Container-Read", "p2:u3", "X-Container-Write", "p2:*")
	time.Sleep(5 * time.Millisecond) // the proxy's container cache (1 ms here)
	c.want(http.StatusOK, "GET", "/shared/o", "other", nil)
	c.want(http.StatusOK, "GET", "/shared", "other", nil)
	c.want(http.StatusCreated, "PUT", "/shared/from-other", "other", strings.NewReader("y"))
	c.want(http.StatusForbidden, "DELETE", "/shared", "other", nil) // objects only
	c.want(http.StatusForbidden, "POST", "/shared", "other", nil, "X-Container-Read", ".r:*")
	c.want(http.StatusForbidden, "COPY", "/shared/o", "other", nil, "Destination", "private/stolen")
	c.want(http.StatusForbidden, "GET", "/private", "other", nil)
	if h, _ := c.want(http.StatusNoContent, "HEAD", "/shared", "other", nil); h.Get("X-Container-Read") != "" {
		t.Errorf("a grantee sees the ACLs: %q", h.Get("X-Container-Read"))
	}
	c.want(http.StatusUnauthorized, "GET", "/shared/o", "", nil)
	c.want(http.StatusNoContent, "POST", "/shared", "member", nil, "X-Container-Read", ".r:*")
	time.Sleep(5 * time.Millisecond)
	c.want(http.StatusOK, "GET", "/shared/o", "", nil)
	c.want(http.StatusUnauthorized, "GET", "/shared", "", nil) // no .rlistings
	c.want(http.StatusUnauthorized, "PUT", "/shared/anon", "", strings.NewReader("z"))
	c.want(http.StatusNoContent, "POST", "/shared", "member", nil, "X-Container-Read", ".r:*,.rlistings")
	time.Sleep(5 * time.Millisecond)
	c.want(http.StatusOK, "GET", "/shared", "", nil)
}

// TestTempURL: a TempURL lets its holder make the one request it was
// signed for, until it expires.
func TestTempURL(t *testing.T) {
	c := newCluster(t)
	c.want(http.StatusCreated, "PUT", "/c", "member", nil)
	c.want(http.StatusCreated, "PUT", "/c/o", "member", strings.NewReader("secret data"))
	c.want(http.StatusNoContent, "POST", "", "member", nil, "X-Account-Meta-Temp-Url-Key", "mykey")
	sign := func(method string, expires int64, path string) string {
		mac := hmac.New(sha256.New, []byte("mykey"))
		fmt.Fprintf(mac, "%s\n%d\n%s", method, expires, path)
		return fmt.Sprintf("?temp_url_sig=%x&temp_url_expires=%d", mac.Sum(nil), expires)
	}
	future, past := time.Now().Add(time.Hour).Unix(), time.Now().Add(-time.Second).Unix()
	h, body := c.want(http.StatusOK, "GET", "/c/o"+sign("GET", future, "/v1/AUTH_p1/c/o"), "", nil)
	if body != "secret data" || !strings.Contains(h.Get("Content-Disposition"), `filename="o"`) {
		t.Errorf("TempURL GET: %q, Content-Disposition %q", body, h.Get("Content-Disposition"))
	}
	c.want(http.StatusOK, "HEAD", "/c/o"+sign("GET", future, "/v1/AUTH_p1/c/o"), "", nil)
	c.want(http.StatusUnauthorized, "GET", "/c/o"+sign("GET", past, "/v1/AUTH_p1/c/o"), "", nil)
	c.want(http.StatusUnauthorized, "PUT", "/c/o"+sign("GET", future, "/v1/AUTH_p1/c/o"), "", strings.NewReader("x"))
	c.want(http.StatusUnauthorized, "GET", "/c/other"+sign("GET", future, "/v1/AUTH_p1/c/o"), "", nil)
	c.want(http.StatusUnauthorized, "GET", "/c/o?temp_url_sig=00&temp_url_expires=1", "", nil)
	c.want(http.StatusCreated, "PUT", "/c/up"+sign("PUT", future, "/v1/AUTH_p1/c/up"), "", strings.NewReader("uploaded"))
	if _, body := c.want(http.StatusOK, "GET", "/c/up", "member", nil); body != "uploaded" {
		t.Errorf("object put with a TempURL reads %q", body)
	}
}

// TestQuotasAndBulk: container and account quotas refuse uploads beyond
// them; a bulk delete deletes what it lists; an archive extracts into
// objects.
func TestQuotasAndBulk(t *testing.T) {
	c := newCluster(t)
	c.want(http.StatusCreated, "PUT", "/q", "member", nil, "X-Container-Meta-Quota-Count", "2", "X-Container-Meta-Quota-Bytes", "10")
	c.want(http.StatusBadRequest, "POST", "/q", "member", nil, "X-Container-Meta-Quota-Bytes", "lots")
	c.want(http.StatusRequestEntityTooLarge, "PUT", "/q/big", "member", strings.NewReader("more than ten bytes"))
	c.want(http.StatusCreated, "PUT", "/q/a", "member", strings.NewReader("1234"))
	c.want(http.StatusForbidden, "POST", "", "member", nil, "X-Account-Meta-Quota-Bytes", "1")

	var tarball bytes.Buffer
	tw := tar.NewWriter(&tarball)
	for _, name := range []string{"x/one", "x/two", "y/three"} {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(name)), Typeflag: tar.TypeReg})
		tw.Write([]byte(name))
	}
	tw.Close()
	_, body := c.want(http.StatusOK, "PUT", "?extract-archive=tar", "member", &tarball, "Accept", "application/json")
	if !strings.Contains(body, `"Number Files Created":3`) {
		t.Errorf("extract-archive: %s", body)
	}
	if _, body := c.want(http.StatusOK, "GET", "/y/three", "member", nil); body != "y/three" {
		t.Errorf("y/three reads %q", body)
	}
	_, body = c.want(http.StatusOK, "POST", "?bulk-delete", "member", strings.NewReader("/x/one\n/x/two\n/x/nothing\n"), "Accept", "application/json")
	if !strings.Contains(body, `"Number Deleted":2`) || !strings.Contains(body, `"Number Not Found":1`) {
		t.Errorf("bulk-delete: %s", body)
	}
	c.want(http.StatusNotFound, "GET", "/x/one", "member", nil)
	_, body = c.want(http.StatusOK, "POST", "?bulk-delete", "other", strings.NewReader("/y/three\n"), "Accept", "application/json")
	if !strings.Contains(body, `"Number Deleted":0`) {
		t.Errorf("another project's bulk delete: %s", body)
	}
}

// in returns the cluster with paths relative to another account.
func (c *cluster) in(account string) *cluster {
	other := *c
	other.url = strings.TrimSuffix(c.url, "/AUTH_p1") + "/" + account
	return &other
}

// TestManifestsStayInTheirAccount: a large object's segments are in its
// own account, whatever its manifest says: one naming another project's
// objects, by a path climbing out of the account, is refused (static) or
// finds nothing (dynamic), and a path climbing out is refused too.
func TestManifestsStayInTheirAccount(t *testing.T) {
	c := newCluster(t)
	p2 := c.in("AUTH_p2")
	p2.want(http.StatusCreated, "PUT", "/c2", "other", nil)
	p2.want(http.StatusCreated, "PUT", "/c2/secret", "other", strings.NewReader("p2's secret"))
	c.want(http.StatusCreated, "PUT", "/c", "member", nil)

	for _, path := range []string{"/../AUTH_p2/c2/secret", "/c2/secret", "/%2E%2E/AUTH_p2/c2/secret"} {
		manifest := fmt.Sprintf(`[{"path": %q}]`, path)
		c.want(http.StatusBadRequest, "PUT", "/c/slo?multipart-manifest=put", "member", strings.NewReader(manifest))
	}
	c.want(http.StatusNotFound, "GET", "/c/slo", "member", nil)
	for i, prefix := range []string{"../AUTH_p2/c2/", "c2/", "..%2FAUTH_p2%2Fc2/"} {
		name := fmt.Sprintf("/c/dlo%d", i)
		c.want(http.StatusCreated, "PUT", name, "member", strings.NewReader(""), "X-Object-Manifest", prefix)
		if _, body := c.want(http.StatusOK, "GET", name, "member", nil); body != "" {
			t.Errorf("a DLO with the prefix %s reads %q, want nothing", prefix, body)
		}
	}
	if status, _, body := c.do("GET", "/../AUTH_p2/c2/secret", "member", nil); status < 400 || strings.Contains(body, "secret") {
		t.Errorf("GET of a path climbing into another account: %d %q, want an error", status, body)
	}
}
