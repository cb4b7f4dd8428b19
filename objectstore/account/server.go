// Package account is the account server of a storage node, as Swift's:
// it keeps a database per account on the node's devices, listing the
// account's containers with their counts as the container servers
// report them, and answers the backend protocol for accounts
// (/device/partition/account[/container]).
package account

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/trustack/trustack/objectstore"
	"github.com/trustack/trustack/objectstore/broker"
	"github.com/trustack/trustack/objectstore/node"
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
	root    string
	hasher  objectstore.Hasher
	log     *slog.Logger
	dbs     *broker.Cache
	handler http.Handler
}

// New returns an account server for the devices under root, hashing
// names with hasher.
func New(root string, hasher objectstore.Hasher, opts Options) *Server {
	s := &Server{root: root, hasher: hasher, log: opts.Log, dbs: broker.NewCache(0)}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.handler = node.Guard(opts.Key, http.HandlerFunc(s.serve))
	return s
}

// Close closes the server's databases.
func (s *Server) Close() { s.dbs.Close() }

// ServeHTTP answers a request of the backend protocol.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	p, err := node.ParsePath(r, 1, 2)
	if err != nil {
		node.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	if _, err := node.Device(s.root, p.Device); err != nil {
		s.fail(w, err)
		return
	}
	path := broker.File(s.root, p.Device, objectstore.Accounts, p.Partition, s.hasher.Path(p.Account, "", ""))
	ts, err := node.Timestamp(r, "X-Timestamp")
	switch m := r.Method; {
	case p.Container != "" && m != http.MethodPut:
		w.Header().Set("Allow", "PUT")
		node.Error(w, http.StatusMethodNotAllowed, "method not allowed on a container's row")
	case p.Container != "":
		s.container(w, r, path, p.Container)
	case m == http.MethodHead || m == http.MethodGet:
		s.get(w, r, path)
	case m != http.MethodPut && m != http.MethodPost && m != http.MethodDelete:
		w.Header().Set("Allow", "HEAD, GET, PUT, POST, DELETE")
		node.Error(w, http.StatusMethodNotAllowed, "method not allowed on an account")
	case err != nil:
		node.Error(w, http.StatusBadRequest, err.Error())
	case m == http.MethodPut:
		s.put(w, r, path, p.Account, ts)
	case m == http.MethodPost:
		if db, _, ok := s.open(w, path); ok {
			defer db.Close()
			s.reply(w, db.UpdateMetadata(metadata(r.Header, ts)), http.StatusNoContent)
		}
	default:
		if db, _, ok := s.open(w, path); ok {
			defer db.Close()
			st, err := db.Delete(ts)
			if err == nil && !st.Deleted() {
				node.Error(w, http.StatusConflict, "account was put after this request's timestamp")
				return
			}
			s.reply(w, err, http.StatusNoContent)
		}
	}
}

// put creates an account or updates its put timestamp and metadata. A
// deleted account is not made again (403), as in Swift, whose reaper
// empties it first, then removes its database.
func (s *Server) put(w http.ResponseWriter, r *http.Request, path, account string, ts objectstore.Timestamp) {
	if db, err := s.dbs.Account(path); err == nil {
		info, err := db.Info()
		if db.Close(); err == nil && info.Deleted() {
			node.Error(w, http.StatusForbidden, "recently deleted")
			return
		}
	}
	db, created, err := s.dbs.CreateAccount(path, account, ts)
	if err == nil {
		defer db.Close()
		err = db.UpdateMetadata(metadata(r.Header, ts))
	}
	status := http.StatusAccepted
	if created {
		status = http.StatusCreated
	}
	s.reply(w, err, status)
}

// get answers HEAD and GET: the account's counts and metadata and, for
// GET, its listing of containers in JSON.
func (s *Server) get(w http.ResponseWriter, r *http.Request, path string) {
	opts, status, err := broker.ParseListOptions(r.URL.Query(), objectstore.AccountListingLimit)
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
	h.Set("X-Account-Container-Count", strconv.FormatInt(info.Containers, 10))
	h.Set("X-Account-Object-Count", strconv.FormatInt(info.Objects, 10))
	h.Set("X-Account-Bytes-Used", strconv.FormatInt(info.Bytes, 10))
	h.Set("X-Timestamp", info.Created.String())
	h.Set("X-Put-Timestamp", info.Put.String())
	meta, err := db.Metadata()
	for name, m := range meta {
		if m.Value != "" {
			h.Set(name, m.Value)
		}
	}
	var rows []broker.ContainerRow
	if err == nil && r.Method == http.MethodGet {
		rows, err = db.List(opts)
	}
	if err != nil || r.Method == http.MethodHead {
		s.reply(w, err, http.StatusNoContent)
		return
	}
	type container struct {
		Name         string `json:"name"`
		Count        int64  `json:"count"`
		Bytes        int64  `json:"bytes"`
		LastModified string `json:"last_modified"`
	}
	entries := make([]any, len(rows))
	for i, c := range rows {
		entries[i] = container{c.Name, c.Objects, c.Bytes, c.Put.Time().Format("2006-01-02T15:04:05.000000")}
		if c.Subdir {
			entries[i] = struct {
				Subdir string `json:"subdir"`
			}{c.Name}
		}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(entries) // of strings and numbers: cannot fail
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(b.Len()))
	w.Write(b.Bytes())
}

// container records a container server's report of a container: 201,
// or 204 if it reports its deletion, as Swift answers.
func (s *Server) container(w http.ResponseWriter, r *http.Request, path, name string) {
	put, err1 := node.Timestamp(r, "X-Put-Timestamp")
	del, err2 := node.Timestamp(r, "X-Delete-Timestamp")
	objects, err3 := strconv.ParseInt(r.Header.Get("X-Object-Count"), 10, 64)
	used, err4 := strconv.ParseInt(r.Header.Get("X-Bytes-Used"), 10, 64)
	if err := errors.Join(err1, err2, err3, err4); err != nil || objects < 0 || used < 0 {
		node.Error(w, http.StatusBadRequest, "want X-Put-Timestamp, X-Delete-Timestamp, X-Object-Count and X-Bytes-Used")
		return
	}
	row := broker.ContainerRow{Name: name, Put: put, Delete: del, Objects: objects, Bytes: used}
	db, _, ok := s.open(w, path)
	if !ok {
		return
	}
	defer db.Close()
	if del > put {
		s.reply(w, db.PutContainer(row), http.StatusNoContent)
	} else {
		s.reply(w, db.PutContainer(row), http.StatusCreated)
	}
}

// open opens the database at path for a request about its account and
// sets the account's timestamps in w's headers. If the account is missing
// or deleted it answers 404 and reports false.
func (s *Server) open(w http.ResponseWriter, path string) (*broker.Account, broker.Info, bool) {
	db, err := s.dbs.Account(path)
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
		if info.Deleted() {
			h.Set("X-Account-Status", "Deleted")
		}
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

// fail answers an error: 404 for broker.ErrNotFound, 507 for
// node.ErrUnmounted, and otherwise 500, logging it.
func (s *Server) fail(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, broker.ErrNotFound):
		node.Error(w, http.StatusNotFound, "account not found")
	case errors.Is(err, node.ErrUnmounted):
		node.Error(w, http.StatusInsufficientStorage, err.Error())
	default:
		s.log.Error("account server", "err", err)
		node.Error(w, http.StatusInternalServerError, "internal error")
	}
}

// metadata is the account metadata h sets at ts, an empty value
// removing. Temp URL keys and quotas are X-Account-Meta- headers.
func metadata(h http.Header, ts objectstore.Timestamp) map[string]broker.Meta {
	out := map[string]broker.Meta{}
	for name, v := range node.Metadata(h, "X-Account-Meta-", "X-Account-Sysmeta-") {
		out[name] = broker.Meta{Value: v, Timestamp: ts}
	}
	return out
}
