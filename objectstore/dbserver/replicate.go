package dbserver

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/trustack/trustack/objectstore"
	"github.com/trustack/trustack/objectstore/broker"
	"github.com/trustack/trustack/objectstore/node"
)

// MethodReplicate is the verb of replication between the replicas of a
// database, sent to /device/partition/hash with a JSON request.
const MethodReplicate = "REPLICATE"

// MaxRows is the most rows a merge request may carry.
const MaxRows = 1000

// maxRequest bounds a REPLICATE request's body: MaxRows rows of the
// longest names, with room to spare.
const maxRequest = 8 << 20

// request is a REPLICATE's body. "sync" carries the sender's Info and
// metadata: the receiver makes the database if it has none, merges the
// status and metadata, and answers its own Info and how far it has the
// sender's rows. "merge" carries rows, which the receiver merges before
// answering how far it now has them.
type request struct {
	Op   string                 `json:"op"`
	ID   string                 `json:"id"` // the sender's database's
	Info broker.Info            `json:"info,omitzero"`
	Meta map[string]broker.Meta `json:"meta,omitempty"`
	Rows json.RawMessage        `json:"rows,omitempty"`
}

// reply is a REPLICATE's answer: the receiver's Info and Hash, to sync;
// Point, the highest rowid of the sender's rows it has, to both.
type reply struct {
	Info  broker.Info `json:"info,omitzero"`
	Hash  string      `json:"hash,omitempty"`
	Point int64       `json:"point"`
}

// hash is what replicas holding the same rows and metadata share.
func hash(info broker.Info, meta map[string]broker.Meta) string {
	names := make([]string, 0, len(meta))
	for name := range meta {
		names = append(names, name)
	}
	slices.Sort(names)
	h := md5.New()
	fmt.Fprintf(h, "%s\n", info.RowsHash)
	for _, name := range names {
		fmt.Fprintf(h, "%q %q %d\n", name, meta[name].Value, meta[name].Timestamp)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Replicate answers a REPLICATE of a database of the server's kind.
func (s *Server[R, D]) Replicate(w http.ResponseWriter, r *http.Request) {
	p, err := node.ParsePath(r, 1, 1)
	var h objectstore.Hash
	if err == nil {
		h, err = objectstore.ParseHash(p.Account)
	}
	var req request
	if err == nil {
		err = json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequest)).Decode(&req)
	}
	if err == nil && req.ID == "" {
		err = errors.New("no replica ID")
	}
	if err != nil {
		node.Error(w, http.StatusBadRequest, "replicate: "+err.Error())
		return
	}
	if _, err := node.Device(s.Root, p.Device); err != nil {
		s.Fail(w, err)
		return
	}
	path := broker.File(s.Root, p.Device, s.Kind, p.Partition, h)
	var out reply
	switch req.Op {
	case "sync":
		out, err = s.sync(path, h, req)
	case "merge":
		var rows []R
		if err := json.Unmarshal(req.Rows, &rows); err != nil || len(rows) > MaxRows {
			node.Error(w, http.StatusBadRequest, fmt.Sprintf("replicate: want up to %d rows", MaxRows))
			return
		}
		var db D
		if db, err = s.Open(path); err == nil {
			out.Point, err = db.MergeSync(req.ID, rows)
			db.Close()
		}
	default:
		node.Error(w, http.StatusBadRequest, "replicate: unknown op "+req.Op)
		return
	}
	if err != nil {
		s.Fail(w, err)
		return
	}
	node.WriteJSON(w, out)
}

// sync makes the database at path from the sender's Info if it has
// none, merges the sender's status and metadata, and tells of it.
func (s *Server[R, D]) sync(path string, h objectstore.Hash, req request) (out reply, err error) {
	i := req.Info
	if i.Account == "" || (i.Container == "") != (s.Kind == objectstore.Accounts) || s.Hasher.Path(i.Account, i.Container, "") != h {
		return out, fmt.Errorf("%w: the info names another %s than the path's", broker.ErrInvalid, strings.TrimSuffix(string(s.Kind), "s"))
	}
	for name, m := range req.Meta {
		if name == "" || strings.Trim(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" ||
			strings.ContainsAny(m.Value, "\r\n\x00") || len(name)+len(m.Value) > objectstore.MaxHeaderSize {
			return out, fmt.Errorf("%w: metadata %q", broker.ErrInvalid, name)
		}
	}
	db, err := s.Open(path)
	if errors.Is(err, broker.ErrNotFound) {
		db, _, err = s.Create(path, i.Account, i.Container, i.Created)
		if an, ok := any(db).(interface {
			SetAccountNodes(broker.AccountNodes) error
		}); err == nil && ok {
			err = an.SetAccountNodes(i.AccountNodes)
		}
	}
	if err != nil {
		return out, err
	}
	defer db.Close()
	if err = db.MergeStatus(i.Status); err == nil {
		err = db.UpdateMetadata(req.Meta)
	}
	var meta map[string]broker.Meta
	if err == nil {
		out.Info, err = db.Info()
	}
	if err == nil {
		meta, err = db.Metadata()
	}
	// Alike, it has the sender's rows up to the newest: record it, so
	// that the rows it got from others are not sent again from there.
	if out.Hash = hash(out.Info, meta); err == nil && out.Hash == hash(i, req.Meta) {
		err = db.SyncedTo(req.ID, i.MaxRow)
	}
	if err == nil {
		out.Point, err = db.SyncPoint(req.ID)
	}
	return out, err
}
