// Package account is the account server of a storage node, as Swift's:
// it keeps a database per account on the node's devices, listing the
// account's containers with their counts as the container servers
// report them, and answers the backend protocol for accounts
// (/device/partition/account[/container]).
package account

import (
	"cmp"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/trustack/trustack/objectstore"
	"github.com/trustack/trustack/objectstore/broker"
	"github.com/trustack/trustack/objectstore/dbserver"
	"github.com/trustack/trustack/objectstore/node"
	"github.com/trustack/trustack/objectstore/ring"
)

// Options are an account server's settings; a zero one means its
// default.
type Options struct {
	Key string       // the cluster's backend key (see node.Guard); none if empty
	Log *slog.Logger // slog.Default() if nil
}

// Server is an account server for the devices under root. It is safe
// for concurrent use.
type Server struct {
	db      *dbserver.Server[broker.ContainerRow, *broker.Account]
	handler http.Handler
}

// New returns an account server for the devices under root, hashing
// names with hasher.
func New(root string, hasher objectstore.Hasher, opts Options) *Server {
	dbs := broker.NewCache(0)
	s := &Server{db: &dbserver.Server[broker.ContainerRow, *broker.Account]{Root: root, Hasher: hasher,
		Kind: objectstore.Accounts, Log: cmp.Or(opts.Log, slog.Default()), DBs: dbs, Open: dbs.Account,
		Create: func(path, account, _ string, ts objectstore.Timestamp) (*broker.Account, bool, error) {
			return dbs.CreateAccount(path, account, ts)
		}}}
	s.handler = node.Guard(opts.Key, http.HandlerFunc(s.serve))
	return s
}

// Replicator is an account replicator.
type Replicator = dbserver.Replicator[broker.ContainerRow, *broker.Account]

// NewReplicator returns a replicator of the accounts on the devices of r
// at addr, the address of this server in r.
func (s *Server) NewReplicator(r *ring.Ring, addr string, opts dbserver.Options) *Replicator {
	return dbserver.NewReplicator(s.db, r, addr, opts)
}

// Close closes the server's databases.
func (s *Server) Close() { s.db.DBs.Close() }

// ServeHTTP answers a request of the backend protocol.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method == dbserver.MethodReplicate {
		s.db.Replicate(w, r)
		return
	}
	p, path, ok := s.db.Request(w, r, 1, 2)
	if !ok {
		return
	}
	ts, err := node.Timestamp(r, "X-Timestamp")
	switch m := r.Method; {
	case p.Container != "" && m != http.MethodPut:
		w.Header().Set("Allow", "PUT")
		node.Error(w, http.StatusMethodNotAllowed, "method not allowed on a container's row")
	case p.Container != "":
		s.container(w, r, path, p)
	case m == http.MethodHead || m == http.MethodGet:
		s.db.Get(w, r, path, objectstore.AccountListingLimit, counts, entry)
	case m != http.MethodPut && m != http.MethodPost && m != http.MethodDelete:
		w.Header().Set("Allow", "HEAD, GET, PUT, POST, DELETE, REPLICATE")
		node.Error(w, http.StatusMethodNotAllowed, "method not allowed on an account")
	case err != nil:
		node.Error(w, http.StatusBadRequest, err.Error())
	case m == http.MethodPut:
		s.put(w, r, path, p.Account, ts)
	case m == http.MethodPost:
		s.db.Post(w, path, metadata(r.Header, ts))
	default:
		if db, _, ok := s.db.OpenLive(w, path); ok {
			defer db.Close()
			st, err := db.Delete(ts)
			if err == nil && !st.Deleted() {
				node.Error(w, http.StatusConflict, "account was put after this request's timestamp")
				return
			}
			s.db.Reply(w, err, http.StatusNoContent)
		}
	}
}

// put creates an account or updates its put timestamp and metadata. A
// deleted account is not made again (403), as in Swift, whose reaper
// empties it first, then removes its database.
func (s *Server) put(w http.ResponseWriter, r *http.Request, path, account string, ts objectstore.Timestamp) {
	if db, err := s.db.DBs.Account(path); err == nil {
		info, err := db.Info()
		if db.Close(); err == nil && info.Deleted() {
			node.Error(w, http.StatusForbidden, "recently deleted")
			return
		}
	}
	db, created, err := s.db.DBs.CreateAccount(path, account, ts)
	if err == nil {
		defer db.Close()
		err = db.UpdateMetadata(metadata(r.Header, ts))
	}
	status := http.StatusAccepted
	if created {
		status = http.StatusCreated
	}
	s.db.Reply(w, err, status)
}

// counts sets an account's counts in h.
func counts(h http.Header, info broker.Info) {
	h.Set("X-Account-Container-Count", strconv.FormatInt(info.Containers, 10))
	h.Set("X-Account-Object-Count", strconv.FormatInt(info.Objects, 10))
	h.Set("X-Account-Bytes-Used", strconv.FormatInt(info.Bytes, 10))
}

// entry is a container's, or a subdir's, entry in a listing.
func entry(c broker.ContainerRow) any {
	if c.Subdir {
		return dbserver.Subdir(c.Name)
	}
	return struct {
		Name         string `json:"name"`
		Count        int64  `json:"count"`
		Bytes        int64  `json:"bytes"`
		LastModified string `json:"last_modified"`
	}{c.Name, c.Objects, c.Bytes, dbserver.LastModified(c.Put)}
}

// container records a container server's report of a container: 201,
// or 204 if it reports its deletion, as Swift answers. A hidden account
// (objectstore.HiddenAccount), such as the expirer's queue's, is made by
// the first report of one of its containers, as Swift makes them.
func (s *Server) container(w http.ResponseWriter, r *http.Request, path string, p node.Path) {
	name := p.Container
	put, err1 := node.Timestamp(r, "X-Put-Timestamp")
	del, err2 := node.Timestamp(r, "X-Delete-Timestamp")
	objects, err3 := strconv.ParseInt(r.Header.Get("X-Object-Count"), 10, 64)
	used, err4 := strconv.ParseInt(r.Header.Get("X-Bytes-Used"), 10, 64)
	if err := errors.Join(err1, err2, err3, err4); err != nil || objects < 0 || used < 0 {
		node.Error(w, http.StatusBadRequest, "want X-Put-Timestamp, X-Delete-Timestamp, X-Object-Count and X-Bytes-Used")
		return
	}
	row := broker.ContainerRow{Name: name, Put: put, Delete: del, Objects: objects, Bytes: used}
	if objectstore.HiddenAccount(p.Account) {
		if err := s.autoCreate(path, p.Account, put); err != nil {
			s.db.Fail(w, err)
			return
		}
	}
	db, _, ok := s.db.OpenLive(w, path)
	if !ok {
		return
	}
	defer db.Close()
	if del > put {
		s.db.Reply(w, db.PutContainer(row), http.StatusNoContent)
	} else {
		s.db.Reply(w, db.PutContainer(row), http.StatusCreated)
	}
}

// autoCreate makes a hidden account at ts if it has no database.
func (s *Server) autoCreate(path, account string, ts objectstore.Timestamp) error {
	db, err := s.db.DBs.Account(path)
	if errors.Is(err, broker.ErrNotFound) {
		db, _, err = s.db.DBs.CreateAccount(path, account, ts)
	}
	if err == nil {
		db.Close()
	}
	return err
}

// metadata is the account metadata h sets at ts, an empty value
// removing. Temp URL keys and quotas are X-Account-Meta- headers.
func metadata(h http.Header, ts objectstore.Timestamp) map[string]broker.Meta {
	return dbserver.Metadata(h, ts, []string{"X-Account-Meta-", "X-Account-Sysmeta-"})
}
