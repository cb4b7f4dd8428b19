// Package container is the container server of a storage node, as
// Swift's: it keeps a database per container on the node's devices,
// listing the container's objects as the object servers report them,
// answers the backend protocol for containers
// (/device/partition/account/container[/object]), and reports each
// container's counts to its account's servers, at once on a PUT or
// DELETE of the container and later from its updater.
package container

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/trustack/trustack/objectstore"
	"github.com/trustack/trustack/objectstore/broker"
	"github.com/trustack/trustack/objectstore/node"
)

// Options are a container server's settings; a zero one means its
// default.
type Options struct {
	Key           string           // the cluster's backend key (see node.Guard); none if empty
	Now           func() time.Time // the clock; time.Now if nil
	Log           *slog.Logger     // slog.Default() if nil
	Client        *http.Client     // of account updates; http.DefaultClient if nil
	UpdateTimeout time.Duration    // of one account update; 3 s if zero
}

// Server is a container server for the devices under root. It is safe
// for concurrent use.
type Server struct {
	root    string
	hasher  objectstore.Hasher
	opts    Options
	dbs     *broker.Cache
	handler http.Handler
	locks   [64]sync.Mutex // of containers' reports, by a hash of their databases' paths

	mu     sync.Mutex
	dirty  map[string]bool // databases whose account may not have heard their report
	walked bool            // whether the updater has visited every database
}

// New returns a container server for the devices under root, hashing
// names with hasher.
func New(root string, hasher objectstore.Hasher, opts Options) *Server {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Client == nil {
		opts.Client = http.DefaultClient
	}
	opts.UpdateTimeout = cmp.Or(opts.UpdateTimeout, 3*time.Second)
	s := &Server{root: root, hasher: hasher, opts: opts, dbs: broker.NewCache(0), dirty: map[string]bool{}}
	s.handler = node.Guard(opts.Key, http.HandlerFunc(s.serve))
	return s
}

// Close closes the server's databases.
func (s *Server) Close() { s.dbs.Close() }

// ServeHTTP answers a request of the backend protocol.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	p, err := node.ParsePath(r, 2, 3)
	if err != nil {
		node.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	if _, err := node.Device(s.root, p.Device); err != nil {
		s.fail(w, err)
		return
	}
	path := broker.File(s.root, p.Device, objectstore.Containers, p.Partition, s.hasher.Path(p.Account, p.Container, ""))
	ts, tsErr := node.Timestamp(r, "X-Timestamp")
	nodes, nodesErr := accountNodes(r.Header)
	switch m := r.Method; {
	case p.Object != "" && m != http.MethodPut && m != http.MethodDelete:
		w.Header().Set("Allow", "PUT, DELETE")
		node.Error(w, http.StatusMethodNotAllowed, "method not allowed on an object's row")
	case p.Object == "" && (m == http.MethodHead || m == http.MethodGet):
		s.get(w, r, path)
	case m != http.MethodPut && m != http.MethodPost && m != http.MethodDelete:
		w.Header().Set("Allow", "HEAD, GET, PUT, POST, DELETE")
		node.Error(w, http.StatusMethodNotAllowed, "method not allowed on a container")
	case tsErr != nil || nodesErr != nil:
		node.Error(w, http.StatusBadRequest, errors.Join(tsErr, nodesErr).Error())
	case p.Object != "":
		s.object(w, r, path, p.Object, ts)
	case m == http.MethodPut:
		s.put(w, r, path, p, ts, nodes)
	case m == http.MethodDelete:
		s.delete(w, r, path, ts, nodes)
	default:
		if db, _, ok := s.open(w, path); ok {
			defer db.Close()
			s.reply(w, db.UpdateMetadata(metadata(r.Header, ts)), http.StatusNoContent)
		}
	}
}

// put creates a container or updates its put timestamp and metadata,
// then tells its account.
func (s *Server) put(w http.ResponseWriter, r *http.Request, path string, p node.Path, ts objectstore.Timestamp, nodes broker.AccountNodes) {
	db, created, err := s.dbs.CreateContainer(path, p.Account, p.Container, ts)
	if err != nil {
		s.fail(w, err)
		return
	}
	defer db.Close()
	info, err := db.Info()
	if err == nil && !info.Deleted() {
		err = db.UpdateMetadata(metadata(r.Header, ts))
	}
	switch {
	case err != nil:
		s.fail(w, err)
	case info.Deleted():
		node.Error(w, http.StatusConflict, "container was deleted after this request's timestamp")
	case s.tellAccount(r, path, db, nodes):
		node.Error(w, http.StatusNotFound, "account not found")
	case created:
		w.WriteHeader(http.StatusCreated)
	default:
		w.WriteHeader(http.StatusAccepted)
	}
}

// get answers HEAD and GET: the container's counts and metadata and, for
// GET, its listing in JSON.
func (s *Server) get(w http.ResponseWriter, r *http.Request, path string) {
	opts, status, err := broker.ParseListOptions(r.URL.Query(), objectstore.ContainerListingLimit)
	if err != nil && r.Method == http.MethodGet {
		node.Error(w, status, err.Error())
		return
	}
	db, info, ok := s.open(w, path)
	if !ok {
		return
	}
	defer db.Close()
	h := w.Header()
	h.Set("X-Container-Object-Count", strconv.FormatInt(info.Objects, 10))
	h.Set("X-Container-Bytes-Used", strconv.FormatInt(info.Bytes, 10))
	h.Set("X-Timestamp", info.Created.String())
	h.Set("X-Put-Timestamp", info.Put.String())
	meta, err := db.Metadata()
	for name, m := range meta {
		if m.Value != "" {
			h.Set(name, m.Value)
		}
	}
	var objects []broker.Object
	if err == nil && r.Method == http.MethodGet {
		objects, err = db.List(opts)
	}
	if err != nil || r.Method == http.MethodHead {
		s.reply(w, err, http.StatusNoContent)
		return
	}
	type object struct {
		Name         string `json:"name"`
		Hash         string `json:"hash"`
		Bytes        int64  `json:"bytes"`
		ContentType  string `json:"content_type"`
		LastModified string `json:"last_modified"`
	}
	entries := make([]any, len(objects))
	for i, o := range objects {
		entries[i] = object{o.Name, o.ETag, o.Size, o.ContentType, o.Created.Time().Format("2006-01-02T15:04:05.000000")}
		if o.Subdir {
			entries[i] = struct {
				Subdir string `json:"subdir"`
			}{o.Name}
		}
	}
	writeJSON(w, entries)
}

// delete marks an empty container deleted, then tells its account. A
// container deleted already is 404, though its delete timestamp
// advances, as in Swift.
func (s *Server) delete(w http.ResponseWriter, r *http.Request, path string, ts objectstore.Timestamp, nodes broker.AccountNodes) {
	db, err := s.dbs.Container(path)
	if err != nil {
		s.fail(w, err)
		return
	}
	defer db.Close()
	before, err := db.Info()
	var after broker.Status
	if err == nil {
		after, err = db.Delete(ts)
	}
	switch {
	case err != nil:
		s.fail(w, err)
	case !after.Deleted():
		node.Error(w, http.StatusConflict, "container was put after this request's timestamp")
	case s.tellAccount(r, path, db, nodes) || before.Deleted():
		node.Error(w, http.StatusNotFound, "container not found")
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// object records an object server's report of an object's PUT or
// DELETE.
func (s *Server) object(w http.ResponseWriter, r *http.Request, path, name string, ts objectstore.Timestamp) {
	o, status := broker.Object{Name: name, Created: ts, Deleted: true}, http.StatusNoContent
	if r.Method == http.MethodPut {
		size, err := strconv.ParseInt(r.Header.Get("X-Size"), 10, 64)
		if err != nil || size < 0 || r.Header.Values("X-Content-Type") == nil || r.Header.Values("X-Etag") == nil {
			node.Error(w, http.StatusBadRequest, "want X-Size, X-Content-Type and X-Etag")
			return
		}
		o = broker.Object{Name: name, Created: ts, Size: size, ContentType: r.Header.Get("X-Content-Type"), ETag: r.Header.Get("X-Etag")}
		status = http.StatusCreated
	}
	db, err := s.dbs.Container(path)
	if err == nil {
		defer db.Close()
		_, err = db.PutObject(o)
	}
	if err == nil {
		s.markDirty(path)
	}
	s.reply(w, err, status)
}

// open opens the database at path for a request about its container and
// sets the container's timestamps in w's headers, so that the proxy can
// tell a deleted container from one never made. If the container is
// missing or deleted it answers 404 and reports false.
func (s *Server) open(w http.ResponseWriter, path string) (*broker.Container, broker.Info, bool) {
	db, err := s.dbs.Container(path)
	if err != nil {
		s.fail(w, err)
		return nil, broker.Info{}, false
	}
	info, err := db.Info()
	if h := w.Header(); err == nil {
		h.Set("X-Backend-Timestamp", info.Created.String())
		h.Set("X-Backend-Put-Timestamp", info.Put.String())
		h.Set("X-Backend-Delete-Timestamp", info.Delete.String())
		h.Set("X-Backend-Status-Changed-At", info.StatusChanged.String())
	}
	if err != nil || info.Deleted() {
		db.Close()
		s.fail(w, cmp.Or(err, broker.ErrNotFound))
		return nil, info, false
	}
	return db, info, true
}

// reply answers status if err is nil, else as fail does.
func (s *Server) reply(w http.ResponseWriter, err error, status int) {
	if err != nil {
		s.fail(w, err)
		return
	}
	w.WriteHeader(status)
}

// fail answers an error: 404 for broker.ErrNotFound, 409 for
// broker.ErrNotEmpty, 507 for node.ErrUnmounted, and otherwise 500,
// logging it.
func (s *Server) fail(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, broker.ErrNotFound):
		node.Error(w, http.StatusNotFound, "container not found")
	case errors.Is(err, broker.ErrNotEmpty):
		node.Error(w, http.StatusConflict, err.Error())
	case errors.Is(err, node.ErrUnmounted):
		node.Error(w, http.StatusInsufficientStorage, err.Error())
	default:
		s.opts.Log.Error("container server", "err", err)
		node.Error(w, http.StatusInternalServerError, "internal error")
	}
}

// writeJSON answers 200 with v in JSON.
func writeJSON(w http.ResponseWriter, v any) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(v) // of strings and numbers: cannot fail
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
	w.Write(b.Bytes())
}

// metadata is the container metadata h sets at ts, an empty value
// removing: X-Container-Meta-*, X-Container-Sysmeta-*, and the headers
// of ACLs, versioning and sync.
func metadata(h http.Header, ts objectstore.Timestamp) map[string]broker.Meta {
	out := map[string]broker.Meta{}
	for name, v := range node.Metadata(h, "X-Container-Meta-", "X-Container-Sysmeta-") {
		out[name] = broker.Meta{Value: v, Timestamp: ts}
	}
	for _, name := range []string{"X-Container-Read", "X-Container-Write", "X-Versions-Location",
		"X-History-Location", "X-Container-Sync-To", "X-Container-Sync-Key"} {
		if v := h.Values(name); v != nil {
			out[name] = broker.Meta{Value: v[0], Timestamp: ts}
		}
	}
	return out
}

// accountNodes reads the account servers that the proxy asks to tell of
// a container's change: X-Account-Host and X-Account-Device,
// comma-separated in pairs, and X-Account-Partition. None is no error.
func accountNodes(h http.Header) (n broker.AccountNodes, err error) {
	if h.Get("X-Account-Host") == "" && h.Get("X-Account-Device") == "" {
		return n, nil
	}
	n.Hosts, n.Devices = strings.Split(h.Get("X-Account-Host"), ","), strings.Split(h.Get("X-Account-Device"), ",")
	n.Partition, err = strconv.Atoi(h.Get("X-Account-Partition"))
	bad := err != nil || n.Partition < 0 || len(n.Hosts) != len(n.Devices)
	for i := 0; i < len(n.Hosts) && !bad; i++ {
		n.Hosts[i], n.Devices[i] = strings.TrimSpace(n.Hosts[i]), strings.TrimSpace(n.Devices[i])
		bad = n.Hosts[i] == "" || n.Devices[i] == "" || strings.ContainsAny(n.Hosts[i]+n.Devices[i], "/?#")
	}
	if bad {
		return n, errors.New("want X-Account-Host and X-Account-Device in pairs, and X-Account-Partition")
	}
	return n, nil
}
