package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/objectstore"
	"github.com/trustack/trustack/objectstore/proxy"
	objectnodes "github.com/trustack/trustack/objectstore/storage"
)

// member validates one token, "alice", as a member of project p1.
type member struct{}

func (member) Validate(_ context.Context, token string) (*trustack.Token, error) {
	if token != "alice" {
		return nil, trustack.Errorf(trustack.EUNAUTHORIZED, "The request you have made requires authentication.")
	}
	return &trustack.Token{User: trustack.User{ID: "alice"}, Project: &trustack.Project{ID: "p1"}, Roles: []trustack.Role{{Name: "member"}}}, nil
}

// newObjectStorage returns a client, as alice, of an object store served
// in process (four storage nodes, three replicas, a proxy in front),
// writing JSON to out and no progress.
func newObjectStorage(t *testing.T, out *bytes.Buffer) *ObjectStorage {
	t.Helper()
	cfg := objectnodes.Config{Hasher: objectstore.Hasher{Prefix: "pre", Suffix: "suf"}, Key: "backend key", UpdaterInterval: 50 * time.Millisecond}
	// The ports the rings name were free when they were made, and may be
	// taken by another test's process before the nodes listen: try anew.
	var dir string
	for attempt := 1; ; attempt++ {
		dir = t.TempDir()
		nodes, err := objectnodes.Local(dir, filepath.Join(dir, "rings"), 4, cfg)
		if err != nil {
			t.Fatal(err)
		}
		var started []*objectnodes.Node
		for _, n := range nodes {
			node, err := objectnodes.Start(n)
			if err != nil {
				break
			}
			started = append(started, node)
		}
		t.Cleanup(func() {
			for _, n := range started {
				n.Close()
			}
		})
		if len(started) == len(nodes) {
			break
		}
		if attempt == 3 {
			t.Fatal("could not start the storage nodes: their ports are taken")
		}
	}
	rings, err := objectnodes.LoadRings(filepath.Join(dir, "rings"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(proxy.New(rings, member{}, proxy.Options{Key: cfg.Key, Hasher: cfg.Hasher, NodeTimeout: 2 * time.Second, InfoTTL: time.Millisecond}))
	t.Cleanup(srv.Close)
	return objectClient(srv.URL+"/v1/AUTH_p1/", out)
}

// objectClient returns a client, as alice, of the object store at
// endpoint.
func objectClient(endpoint string, out *bytes.Buffer) *ObjectStorage {
	provider := &gophercloud.ProviderClient{HTTPClient: *http.DefaultClient}
	provider.SetToken("alice")
	return &ObjectStorage{&Client{
		objectStorage: &gophercloud.ServiceClient{ProviderClient: provider, Endpoint: endpoint},
		out:           Output{Out: out, Format: FormatJSON},
		poll:          5 * time.Millisecond,
	}}
}

// writeFile writes n random bytes to a new file and returns its path
// and its bytes.
func writeFile(t *testing.T, name string, n int) (string, []byte) {
	t.Helper()
	data := make([]byte, n)
	rand.Read(data)
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, data
}

// TestObjects uploads a small file and a large one (as a static large
// object of three segments), lists, shows and downloads them, and deletes
// them, the large one with its segments.
func TestObjects(t *testing.T) {
	ctx := context.Background()
	var out bytes.Buffer
	s := newObjectStorage(t, &out)

	var box struct {
		Name        string            `json:"name"`
		ObjectCount int64             `json:"object_count"`
		Properties  map[string]string `json:"properties"`
	}
	if err := s.CreateContainer(ctx, "box", []string{"color=blue"}); err != nil {
		t.Fatal(err)
	}
	decode(t, &out, &box)
	if box.Name != "box" || box.ObjectCount != 0 || box.Properties["Color"] != "blue" {
		t.Errorf("CreateContainer box --property color=blue: got %+v, want box, empty, Color=blue", box)
	}

	small, smallData := writeFile(t, "small.txt", 1000)
	large, largeData := writeFile(t, "large.bin", 3<<20)
	if err := s.UploadObjects(ctx, ObjectUpload{Container: "box", Files: []string{small}, Name: "small.txt"}); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := s.UploadObjects(ctx, ObjectUpload{Container: "box", Files: []string{large}, Name: "dir/large.bin", SegmentSize: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	var up []struct {
		Name     string
		Bytes    int64
		Segments int
	}
	decode(t, &out, &up)
	if len(up) != 1 || up[0].Name != "dir/large.bin" || up[0].Bytes != 3<<20 || up[0].Segments != 3 {
		t.Errorf("UploadObjects of 3 MiB in segments of 1 MiB: got %+v, want dir/large.bin, 3 MiB, 3 segments", up)
	}

	var list []struct {
		Name  string
		Bytes int64
	}
	if err := s.ListObjects(ctx, "box_segments", "dir/large.bin/slo/3145728/1048576/"); err != nil {
		t.Fatal(err)
	}
	decode(t, &out, &list)
	if len(list) != 3 || list[2].Name != "dir/large.bin/slo/3145728/1048576/00000002" || list[2].Bytes != 1<<20 {
		t.Errorf("ListObjects box_segments: got %+v, want three segments of 1 MiB, the last named .../00000002", list)
	}
	if err := s.ListObjects(ctx, "box", "dir/"); err != nil {
		t.Fatal(err)
	}
	decode(t, &out, &list)
	if len(list) != 1 || list[0].Name != "dir/large.bin" {
		t.Errorf("ListObjects box --prefix dir/: got %+v, want dir/large.bin", list)
	}

	var obj struct {
		Bytes       int64  `json:"bytes"`
		LargeObject string `json:"large_object"`
		Segments    int    `json:"segments"`
	}
	if err := s.ShowObject(ctx, "box", "dir/large.bin"); err != nil {
		t.Fatal(err)
	}
	decode(t, &out, &obj)
	if obj.Bytes != 3<<20 || obj.LargeObject != "static" || obj.Segments != 3 {
		t.Errorf("ShowObject dir/large.bin: got %+v, want 3 MiB, a static large object of 3 segments", obj)
	}

	for name, data := range map[string][]byte{"small.txt": smallData, "dir/large.bin": largeData} {
		path := filepath.Join(t.TempDir(), "got")
		if err := s.DownloadObject(ctx, "box", name, path); err != nil {
			t.Fatalf("DownloadObject %s: %v", name, err)
		}
		if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, data) {
			t.Errorf("DownloadObject %s: %d bytes (%v), want the %d uploaded", name, len(got), err, len(data))
		}
	}
	err := s.DownloadObject(ctx, "box", "missing", filepath.Join(t.TempDir(), "got"))
	if trustack.ErrorCode(err) != trustack.ENOTFOUND || !strings.Contains(err.Error(), "box/missing") {
		t.Errorf("DownloadObject of a missing object: %v, want ENOTFOUND naming box/missing", err)
	}

	if err := s.DeleteObjects(ctx, "box", []string{"dir/large.bin"}); err != nil {
		t.Fatal(err)
	}
	if err := s.ListObjects(ctx, "box_segments", ""); err != nil {
		t.Fatal(err)
	}
	decode(t, &out, &list)
	if len(list) != 0 {
		t.Errorf("the segments after deleting the large object: %+v, want none", list)
	}
	if err := s.DeleteContainers(ctx, []string{"box"}, false); trustack.ErrorCode(err) != trustack.ECONFLICT {
		t.Errorf("DeleteContainers of a container with an object: %v, want ECONFLICT", err)
	}
	if err := s.DeleteContainers(ctx, []string{"box"}, true); err != nil {
		t.Fatalf("DeleteContainers --recursive: %v", err)
	}
	if err := s.ShowContainer(ctx, "box"); trustack.ErrorCode(err) != trustack.ENOTFOUND {
		t.Errorf("ShowContainer after the delete: %v, want ENOTFOUND", err)
	}
}

// TestDownloadChecksETag is a download of a plain object whose content
// is not the MD5 its ETag says: it fails, and leaves no file.
func TestDownloadChecksETag(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Etag", "0123456789abcdef0123456789abcdef")
		w.Write([]byte("not that"))
	}))
	t.Cleanup(srv.Close)
	s := objectClient(srv.URL+"/v1/AUTH_p1/", &bytes.Buffer{})
	path := filepath.Join(t.TempDir(), "got")
	err := s.DownloadObject(context.Background(), "box", "o", path)
	if trustack.ErrorCode(err) != trustack.EINTERNAL || !strings.Contains(err.Error(), "0123456789abcdef0123456789abcdef") {
		t.Errorf("download of content that is not its ETag's: %v, want EINTERNAL naming the ETag", err)
	}
	if _, serr := os.Stat(path); !os.IsNotExist(serr) {
		t.Errorf("the file after the failed download: %v, want none", serr)
	}
}
