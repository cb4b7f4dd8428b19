// Package imagestest gives the tests of the image service and its API
// every kind of image data store, over real storage: a directory of
// files, and a local object store cluster (four storage nodes, three
// replicas, and a proxy served in-process).
package imagestest

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/images"
	"github.com/trustack/trustack/objectstore"
	"github.com/trustack/trustack/objectstore/proxy"
	"github.com/trustack/trustack/objectstore/storage"
)

// ChunkSize is the segment size of the object stores the tests get:
// small, so that images of some KiB are large objects.
const ChunkSize = 8 << 10

// Storage is where a test's image data is kept.
type Storage struct {
	// Open returns a data store over the storage; each call another, as
	// another controller's.
	Open func(t testing.TB) images.DataStore
	// Stored lists what the storage holds: files, or objects as
	// container/name.
	Stored func(t testing.TB) []string
}

// Backend is a kind of data store.
type Backend struct {
	Name string
	// New returns new, empty storage of the kind.
	New func(t testing.TB) *Storage
}

// Backends are every kind of data store.
var Backends = []Backend{
	{"files", NewFiles},
	{"objects", NewObjects},
}

// NewFiles returns storage in a new directory.
func NewFiles(t testing.TB) *Storage {
	dir := filepath.Join(t.TempDir(), "images")
	return &Storage{
		Open: func(t testing.TB) images.DataStore {
			t.Helper()
			data, err := images.OpenFiles(dir, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			return data
		},
		Stored: func(t testing.TB) []string {
			t.Helper()
			var out []string
			err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					rel, _ := filepath.Rel(dir, path)
					out = append(out, rel)
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			return out
		},
	}
}

// account is the account the tests' images are kept in, and the token
// they are kept with.
const account = "AUTH_service"

var token = &trustack.Token{
	User:    trustack.User{ID: "glance"},
	Project: &trustack.Project{ID: "service"},
	Roles:   []trustack.Role{{Name: "admin"}},
}

// NewObjects returns storage in a new local object store cluster, with
// segments of ChunkSize bytes.
func NewObjects(t testing.TB) *Storage { return ObjectStorage(StartObjectStore(t)) }

// ObjectStorage returns storage in the object store whose Swift API h
// serves, with segments of ChunkSize bytes.
func ObjectStorage(h http.Handler) *Storage {
	return &Storage{
		Open: func(testing.TB) images.DataStore {
			return images.Objects(images.ObjectStore{Handler: h, Access: Access, ChunkSize: ChunkSize})
		},
		Stored: func(t testing.TB) []string {
			t.Helper()
			var out []string
			for _, c := range []string{"glance", "glance_segments"} {
				for _, name := range list(t, h, c) {
					out = append(out, c+"/"+name)
				}
			}
			return out
		},
	}
}

// Access is the access to the tests' account.
func Access(context.Context) (images.ObjectAccess, error) {
	return images.ObjectAccess{Account: account, AsCaller: func(ctx context.Context) context.Context { return proxy.AsCaller(ctx, token) }}, nil
}

// list lists a container of the account, empty if there is none.
func list(t testing.TB, h http.Handler, container string) []string {
	t.Helper()
	req := httptest.NewRequestWithContext(proxy.AsCaller(context.Background(), token), http.MethodGet, "/v1/"+account+"/"+container+"?format=json", nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	switch w.Code {
	case http.StatusNotFound, http.StatusNoContent:
		return nil
	case http.StatusOK:
	default:
		t.Fatalf("list %s: status %d: %s", container, w.Code, w.Body)
	}
	var entries []struct{ Name string }
	if err := json.Unmarshal(w.Body.Bytes(), &entries); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name)
	}
	return names
}

// refuseTokens validates no token: the image service's requests carry
// their caller (proxy.AsCaller).
type refuseTokens struct{}

func (refuseTokens) Validate(context.Context, string) (*trustack.Token, error) {
	return nil, trustack.Errorf(trustack.EUNAUTHORIZED, "The request you have made requires authentication.")
}

// StartObjectStore starts four storage nodes and returns a proxy in
// front of them; the nodes stop when the test ends.
func StartObjectStore(t testing.TB) http.Handler {
	t.Helper()
	cfg := storage.Config{Hasher: objectstore.Hasher{Prefix: "pre", Suffix: "suf"}, Key: "backend key", UpdaterInterval: 50 * time.Millisecond}
	// The ports the rings name were free when they were made, and may be
	// taken by another test's process before the nodes listen: try anew.
	for attempt := 1; ; attempt++ {
		dir := t.TempDir()
		nodes, err := storage.Local(dir, filepath.Join(dir, "rings"), 4, cfg)
		if err != nil {
			t.Fatal(err)
		}
		err = startNodes(t, nodes)
		if err != nil && attempt < 3 && strings.Contains(err.Error(), "address already in use") {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		rings, err := storage.LoadRings(filepath.Join(dir, "rings"))
		if err != nil {
			t.Fatal(err)
		}
		return proxy.New(rings, refuseTokens{}, proxy.Options{Key: cfg.Key, Hasher: cfg.Hasher, InfoTTL: time.Millisecond})
	}
}

// startNodes starts the nodes, all or none, closing them when the test
// ends.
func startNodes(t testing.TB, nodes []storage.Config) error {
	var running []*storage.Node
	for _, n := range nodes {
		node, err := storage.Start(n)
		if err != nil {
			for _, r := range running {
				r.Close()
			}
			return err
		}
		running = append(running, node)
	}
	t.Cleanup(func() {
		for _, r := range slices.Backward(running) {
			r.Close()
		}
	})
	return nil
}
