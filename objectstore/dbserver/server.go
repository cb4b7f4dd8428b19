// Package dbserver holds what the container and account servers share:
// answering Swift's backend protocol over their broker databases
// (finding a request's database, the status and metadata headers, HEAD
// and GET with a JSON listing, error replies), and replicating those
// databases between nodes as Swift's container- and account-replicators
// do: the REPLICATE verb, and the Replicator that sends it.
package dbserver

import (
	"cmp"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/trustack/trustack/objectstore"
	"github.com/trustack/trustack/objectstore/broker"
	"github.com/trustack/trustack/objectstore/node"
)

// DB is a database as the servers and the replicator use it: a
// *broker.Container, whose rows R are broker.Objects, or a
// *broker.Account, whose rows are broker.ContainerRows.
type DB[R any] interface {
	Info() (broker.Info, error)
	Metadata() (map[string]broker.Meta, error)
	UpdateMetadata(map[string]broker.Meta) error
	List(broker.ListOptions) ([]R, error)
	MergeStatus(broker.Status) error
	SyncPoint(remote string) (int64, error)
	SyncedTo(remote string, point int64) error
	RowsSince(rowid int64, n int) ([]R, error)
	MergeSync(remote string, rows []R) (int64, error)
	Version() uint64
	Close()
}

// Server is the part of a container or account server that is the same
// for both: its databases of kind on the devices under Root. Its fields
// are set once, before use; it is then safe for concurrent use.
type Server[R any, D DB[R]] struct {
	Root   string
	Hasher objectstore.Hasher
	Kind   objectstore.Kind // objectstore.Containers or objectstore.Accounts
	Log    *slog.Logger
	DBs    *broker.Cache
	// Open opens the database at a path: broker.ErrNotFound if missing.
	Open func(path string) (D, error)
	// Create opens the database at a path, making it for the account,
	// or the container of it, at a timestamp if it is missing.
	Create func(path, account, container string, ts objectstore.Timestamp) (D, bool, error)
}

// Request parses r's path, naming min to max of account, container and
// object, checks its device, and returns it and its database's file. If
// either is wrong it answers and returns false.
func (s *Server[R, D]) Request(w http.ResponseWriter, r *http.Request, min, max int) (node.Path, string, bool) {
	p, err := node.ParsePath(r, min, max)
	if err != nil {
		node.Error(w, http.StatusBadRequest, err.Error())
		return p, "", false
	}
	if _, err := node.Device(s.Root, p.Device); err != nil {
		s.Fail(w, err)
		return p, "", false
	}
	c := p.Container // an account's request may name a container: its row
	if s.Kind == objectstore.Accounts {
		c = ""
	}
	return p, broker.File(s.Root, p.Device, s.Kind, p.Partition, s.Hasher.Path(p.Account, c, "")), true
}

// OpenLive opens the database at path for a request about its container
// or account and sets its timestamps in w's headers, so that the proxy
// can tell one deleted from one never made. If it is missing or deleted
// it answers 404 and reports false.
func (s *Server[R, D]) OpenLive(w http.ResponseWriter, path string) (db D, info broker.Info, ok bool) {
	db, err := s.Open(path)
	if err != nil {
		s.Fail(w, err)
		return db, info, false
	}
	info, err = db.Info()
	if h := w.Header(); err == nil {
		h.Set("X-Backend-Timestamp", info.Created.String())
		h.Set("X-Backend-Put-Timestamp", info.Put.String())
		h.Set("X-Backend-Delete-Timestamp", info.Delete.String())
		h.Set("X-Backend-Status-Changed-At", info.StatusChanged.String())
		if info.Deleted() && s.Kind == objectstore.Accounts {
			h.Set("X-Account-Status", "Deleted")
		}
	}
	if err != nil || info.Deleted() {
		db.Close()
		s.Fail(w, cmp.Or(err, broker.ErrNotFound))
		return db, info, false
	}
	return db, info, true
}

// Post answers a POST: it sets meta on the live database at path.
func (s *Server[R, D]) Post(w http.ResponseWriter, path string, meta map[string]broker.Meta) {
	if db, _, ok := s.OpenLive(w, path); ok {
		defer db.Close()
		s.Reply(w, db.UpdateMetadata(meta), http.StatusNoContent)
	}
}

// Get answers HEAD and GET: the counts that counts sets, the timestamps
// and metadata and, for GET, the listing in JSON, each row as entry
// makes it (Subdir for a subdir), up to limit rows.
func (s *Server[R, D]) Get(w http.ResponseWriter, r *http.Request, path string, limit int, counts func(http.Header, broker.Info), entry func(R) any) {
	opts, status, err := broker.ParseListOptions(r.URL.Query(), limit)
	if err != nil && r.Method == http.MethodGet {
		node.Error(w, status, err.Error())
		return
	}
	db, info, ok := s.OpenLive(w, path)
	if !ok {
		return
	}
	defer db.Close()
	h := w.Header()
	counts(h, info)
	h.Set("X-Timestamp", info.Created.String())
	h.Set("X-Put-Timestamp", info.Put.String())
	meta, err := db.Metadata()
	for name, m := range meta {
		if m.Value != "" {
			h.Set(name, m.Value)
		}
	}
	var rows []R
	if err == nil && r.Method == http.MethodGet {
		rows, err = db.List(opts)
	}
	if err != nil || r.Method == http.MethodHead {
		s.Reply(w, err, http.StatusNoContent)
		return
	}
	entries := make([]any, len(rows))
	for i, row := range rows {
		entries[i] = entry(row)
	}
	node.WriteJSON(w, entries)
}

// Subdir is a listing's entry of a subdir.
func Subdir(name string) any {
	return struct {
		Subdir string `json:"subdir"`
	}{name}
}

// LastModified is a listing's form of a timestamp.
func LastModified(ts objectstore.Timestamp) string {
	return ts.Time().Format("2006-01-02T15:04:05.000000")
}

// Reply answers status if err is nil, else as Fail does.
func (s *Server[R, D]) Reply(w http.ResponseWriter, err error, status int) {
	if err != nil {
		s.Fail(w, err)
		return
	}
	w.WriteHeader(status)
}

// Fail answers an error: 404 for broker.ErrNotFound, 409 for
// broker.ErrNotEmpty, 400 for broker.ErrInvalid, 507 for
// node.ErrUnmounted, and otherwise 500, logging it.
func (s *Server[R, D]) Fail(w http.ResponseWriter, err error) {
	what := strings.TrimSuffix(string(s.Kind), "s")
	switch {
	case errors.Is(err, broker.ErrNotFound):
		node.Error(w, http.StatusNotFound, what+" not found")
	case errors.Is(err, broker.ErrNotEmpty):
		node.Error(w, http.StatusConflict, err.Error())
	case errors.Is(err, broker.ErrInvalid):
		node.Error(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, node.ErrUnmounted):
		node.Error(w, http.StatusInsufficientStorage, err.Error())
	default:
		s.Log.Error(what+" server", "err", err)
		node.Error(w, http.StatusInternalServerError, "internal error")
	}
}

// Metadata is the metadata h sets at ts, an empty value removing: the
// headers that start with one of prefixes, and those named.
func Metadata(h http.Header, ts objectstore.Timestamp, prefixes []string, names ...string) map[string]broker.Meta {
	out := map[string]broker.Meta{}
	for name, v := range node.Metadata(h, prefixes...) {
		out[name] = broker.Meta{Value: v, Timestamp: ts}
	}
	for _, name := range names {
		if v := h.Values(name); v != nil {
			out[name] = broker.Meta{Value: v[0], Timestamp: ts}
		}
	}
	return out
}
