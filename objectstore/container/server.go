// Package container is the container server of a storage node, as
// Swift's: it keeps a database per container on the node's devices,
// listing the container's objects as the object servers report them,
// answers the backend protocol for containers
// (/device/partition/account/container[/object]), and reports each
// container's counts to its account's servers, at once on a PUT or
// DELETE of the container and later from its updater.
package container

import (
	"cmp"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/trustack/trustack/objectstore"
	"github.com/trustack/trustack/objectstore/broker"
	"github.com/trustack/trustack/objectstore/dbserver"
	"github.com/trustack/trustack/objectstore/node"
	"github.com/trustack/trustack/objectstore/ring"
)

// Options are a container server's settings; a zero one means its
// default.
type Options struct {
	Key           string           // the cluster's backend key (see node.Guard); none if empty
	Now           func() time.Time // the clock; time.Now if nil
	Log           *slog.Logger     // slog.Default() if nil
	Client        *http.Client     // of account updates; http.DefaultClient if nil
	UpdateTimeout time.Duration    // of one account update; 3 s if zero
	// AccountRing places the accounts of the containers the server makes
	// itself, those of hidden accounts (see object); nil: they are not
	// reported to their accounts.
	AccountRing *ring.Ring
}

// Server is a container server for the devices under root. It is safe
// for concurrent use.
type Server struct {
	db      *dbserver.Server[broker.Object, *broker.Container]
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
	dbs := broker.NewCache(0)
	s := &Server{opts: opts, dbs: dbs, dirty: map[string]bool{}, db: &dbserver.Server[broker.Object, *broker.Container]{
		Root: root, Hasher: hasher, Kind: objectstore.Containers, Log: opts.Log, DBs: dbs, Open: dbs.Container,
		Create: dbs.CreateContainer}}
	s.handler = node.Guard(opts.Key, http.HandlerFunc(s.serve))
	return s
}

// Replicator is a container replicator.
type Replicator = dbserver.Replicator[broker.Object, *broker.Container]

// NewReplicator returns a replicator of the containers on the devices of
// r at addr, the address of this server in r.
func (s *Server) NewReplicator(r *ring.Ring, addr string, opts dbserver.Options) *Replicator {
	return dbserver.NewReplicator(s.db, r, addr, opts)
}

// Close closes the server's databases.
func (s *Server) Close() { s.dbs.Close() }

// ServeHTTP answers a request of the backend protocol.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method == dbserver.MethodReplicate {
		s.db.Replicate(w, r)
		return
	}
	p, path, ok := s.db.Request(w, r, 2, 3)
	if !ok {
		return
	}
	ts, tsErr := node.Timestamp(r, "X-Timestamp")
	nodes, nodesErr := accountNodes(r.Header)
	switch m := r.Method; {
	case p.Object != "" && m != http.MethodPut && m != http.MethodDelete:
		w.Header().Set("Allow", "PUT, DELETE")
		node.Error(w, http.StatusMethodNotAllowed, "method not allowed on an object's row")
	case p.Object == "" && (m == http.MethodHead || m == http.MethodGet):
		s.db.Get(w, r, path, objectstore.ContainerListingLimit, counts, entry)
	case m != http.MethodPut && m != http.MethodPost && m != http.MethodDelete:
		w.Header().Set("Allow", "HEAD, GET, PUT, POST, DELETE, REPLICATE")
		node.Error(w, http.StatusMethodNotAllowed, "method not allowed on a container")
	case tsErr != nil || nodesErr != nil:
		node.Error(w, http.StatusBadRequest, errors.Join(tsErr, nodesErr).Error())
	case p.Object != "":
		s.object(w, r, path, p, ts)
	case m == http.MethodPut:
		s.put(w, r, path, p, ts, nodes)
	case m == http.MethodDelete:
		s.delete(w, r, path, ts, nodes)
	default:
		s.db.Post(w, path, metadata(r.Header, ts))
	}
}

// put creates a container or updates its put timestamp and metadata,
// then tells its account.
func (s *Server) put(w http.ResponseWriter, r *http.Request, path string, p node.Path, ts objectstore.Timestamp, nodes broker.AccountNodes) {
	db, created, err := s.dbs.CreateContainer(path, p.Account, p.Container, ts)
	if err != nil {
		s.db.Fail(w, err)
		return
	}
	defer db.Close()
	info, err := db.Info()
	if err == nil && !info.Deleted() {
		err = db.UpdateMetadata(metadata(r.Header, ts))
	}
	switch {
	case err != nil:
		s.db.Fail(w, err)
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

// counts sets a container's counts in h.
func counts(h http.Header, info broker.Info) {
	h.Set("X-Container-Object-Count", strconv.FormatInt(info.Objects, 10))
	h.Set("X-Container-Bytes-Used", strconv.FormatInt(info.Bytes, 10))
}

// entry is an object's, or a subdir's, entry in a listing.
func entry(o broker.Object) any {
	if o.Subdir {
		return dbserver.Subdir(o.Name)
	}
	return struct {
		Name         string `json:"name"`
		Hash         string `json:"hash"`
		Bytes        int64  `json:"bytes"`
		ContentType  string `json:"content_type"`
		LastModified string `json:"last_modified"`
	}{o.Name, o.ETag, o.Size, o.ContentType, dbserver.LastModified(o.Created)}
}

// delete marks an empty container deleted, then tells its account. A
// container deleted already is 404, though its delete timestamp
// advances, as in Swift.
func (s *Server) delete(w http.ResponseWriter, r *http.Request, path string, ts objectstore.Timestamp, nodes broker.AccountNodes) {
	db, err := s.dbs.Container(path)
	if err != nil {
		s.db.Fail(w, err)
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
		s.db.Fail(w, err)
	case !after.Deleted():
		node.Error(w, http.StatusConflict, "container was put after this request's timestamp")
	case s.tellAccount(r, path, db, nodes) || before.Deleted():
		node.Error(w, http.StatusNotFound, "container not found")
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// object records an object server's report of an object's PUT or
// DELETE. A container of a hidden account (objectstore.HiddenAccount),
// such as the expirer's queue's, is made by the reports, as Swift makes
// them (see autoCreate).
func (s *Server) object(w http.ResponseWriter, r *http.Request, path string, p node.Path, ts objectstore.Timestamp) {
	name := p.Object
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
	var db *broker.Container
	var err error
	if objectstore.HiddenAccount(p.Account) {
		db, err = s.autoCreate(path, p, ts, !o.Deleted)
	} else {
		db, err = s.dbs.Container(path)
	}
	if err == nil {
		defer db.Close()
		_, err = db.PutObject(o)
	}
	if err == nil {
		s.markDirty(path)
	}
	s.db.Reply(w, err, status)
}

// autoCreate opens the container of a hidden account for a report at ts,
// making it if it is missing. It also makes a deleted one live again for
// the report of an object's PUT (live), at a time newer than its
// deletion if ts is not: a queue container that the expirer deleted
// empty must not hide an entry that reaches it late, as in Swift, where
// a container holding objects does not count as deleted. A container it
// makes records its account's servers, which the account ring places,
// for its reports.
func (s *Server) autoCreate(path string, p node.Path, ts objectstore.Timestamp, live bool) (*broker.Container, error) {
	db, err := s.dbs.Container(path)
	switch {
	case errors.Is(err, broker.ErrNotFound):
	case err != nil:
		return nil, err
	case !live:
		return db, nil
	default:
		info, err := db.Info()
		if err == nil && !info.Deleted() {
			return db, nil
		}
		db.Close()
		if err != nil {
			return nil, err
		}
		ts = max(ts, info.Delete+1)
	}
	db, created, err := s.dbs.CreateContainer(path, p.Account, p.Container, ts)
	if err != nil || !created || s.opts.AccountRing == nil {
		return db, err
	}
	n := broker.AccountNodes{Partition: s.opts.AccountRing.Partition(s.db.Hasher.Path(p.Account, "", ""))}
	for _, d := range s.opts.AccountRing.Nodes(n.Partition) {
		n.Hosts, n.Devices = append(n.Hosts, d.Addr()), append(n.Devices, d.Device)
	}
	if err := db.SetAccountNodes(n); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// metadata is the container metadata h sets at ts, an empty value
// removing: X-Container-Meta-*, X-Container-Sysmeta-*, and the headers
// of ACLs, versioning and sync.
func metadata(h http.Header, ts objectstore.Timestamp) map[string]broker.Meta {
	return dbserver.Metadata(h, ts, []string{"X-Container-Meta-", "X-Container-Sysmeta-"}, "X-Container-Read",
		"X-Container-Write", "X-Versions-Location", "X-History-Location", "X-Container-Sync-To", "X-Container-Sync-Key")
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
