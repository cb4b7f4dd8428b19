// Package broker holds the small SQLite databases of the object store's
// container and account servers, Swift's "brokers": one file per
// container, listing its objects, and one per account, listing its
// containers, each with its status, totals and metadata. Rows and
// metadata carry timestamps and the newest wins, so that replicas that
// saw the same writes in any order agree. A method returns once its
// change is on disk (WAL, synchronous=FULL).
package broker

import (
	"cmp"
	"container/list"
	"crypto/md5"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	_ "modernc.org/sqlite" // the "sqlite" driver

	"github.com/trustack/trustack/objectstore"
	"github.com/trustack/trustack/objectstore/node"
)

var (
	// ErrNotFound is the error for a database that does not exist.
	ErrNotFound = errors.New("no such database")
	// ErrNotEmpty is Container.Delete's for a container with objects.
	ErrNotEmpty = errors.New("container not empty")
	// ErrInvalid is the error, wrapped, for a replicated row that no
	// database could hold.
	ErrInvalid = errors.New("invalid row")
	// ErrBusy is Cache.Remove's for a database in use or changed.
	ErrBusy = errors.New("database in use or changed")
)

// File is where the database of the thing of kind (objectstore.Containers
// or objectstore.Accounts) hashing to h lives on a device.
func File(root, device string, kind objectstore.Kind, partition int, h objectstore.Hash) string {
	return filepath.Join(objectstore.Dir(root, device, kind, partition, h), h.String()+".db")
}

// Status is the life of a container or an account: when it was created,
// its newest PUT and DELETE, and when it last went between existing and
// deleted.
type Status struct {
	Created, Put, Delete, StatusChanged objectstore.Timestamp
}

// Deleted reports whether the newest request was a DELETE.
func (s Status) Deleted() bool { return s.Delete > s.Put }

// Meta is a metadata item. An empty Value means removed, and is kept so
// that an older setting arriving late does not come back.
type Meta struct {
	Value     string
	Timestamp objectstore.Timestamp
}

// Report is what a container tells its account of itself.
type Report struct {
	Put, Delete    objectstore.Timestamp
	Objects, Bytes int64
}

// AccountNodes are the account servers a container reports to: hosts
// (ip:port) and devices, in pairs, and the account's partition.
type AccountNodes struct {
	Hosts, Devices []string
	Partition      int
}

// Info is what a database says of its container or account. Containers
// is an account's; Reported and AccountNodes a container's. ID, MaxRow
// and RowsHash are for replication: the database's own random ID, which
// its replicas record how far they have its rows by; the rowid of its
// newest change; and the XOR of the MD5s of its rows, which replicas
// holding the same rows share whatever order they got them in.
type Info struct {
	ID                 string
	MaxRow             int64
	RowsHash           string
	Account, Container string
	Status
	Containers, Objects, Bytes int64 // live ones
	Reported                   Report
	AccountNodes               AccountNodes
}

// Report is what a container's account should hear now.
func (i Info) Report() Report { return Report{i.Put, i.Delete, i.Objects, i.Bytes} }

// infoSchema makes the tables that both kinds of database have: info,
// whose one row is the container's or account's, and metadata.
const infoSchema = `CREATE TABLE IF NOT EXISTS info (
	account TEXT NOT NULL, container TEXT NOT NULL,
	created_at INTEGER NOT NULL, put_timestamp INTEGER NOT NULL,
	delete_timestamp INTEGER NOT NULL DEFAULT 0, status_changed_at INTEGER NOT NULL,
	container_count INTEGER NOT NULL DEFAULT 0, object_count INTEGER NOT NULL DEFAULT 0,
	bytes_used INTEGER NOT NULL DEFAULT 0,
	reported_put_timestamp INTEGER NOT NULL DEFAULT 0, reported_delete_timestamp INTEGER NOT NULL DEFAULT 0,
	reported_object_count INTEGER NOT NULL DEFAULT 0, reported_bytes_used INTEGER NOT NULL DEFAULT 0,
	account_hosts TEXT NOT NULL DEFAULT '', account_devices TEXT NOT NULL DEFAULT '',
	account_partition INTEGER NOT NULL DEFAULT 0,
	id TEXT NOT NULL DEFAULT '', rows_hash BLOB NOT NULL DEFAULT (zeroblob(16)));
CREATE TABLE IF NOT EXISTS metadata (
	name TEXT PRIMARY KEY, value TEXT NOT NULL, timestamp INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sync (
	remote_id TEXT PRIMARY KEY, sync_point INTEGER NOT NULL) WITHOUT ROWID;`

// Cache keeps up to a number of databases open, the most recently used,
// so that a busy container is not reopened for every request. It is safe
// for concurrent use. A database it hands out stays open until its Close,
// even if evicted meanwhile.
type Cache struct {
	mu      sync.Mutex
	max     int
	lru     list.List // of *handle, the most recently used first
	open    map[string]*list.Element
	closing sync.WaitGroup
	writes  atomic.Uint64 // numbers the handles' versions
}

// handle is an open database file: one connection for writes, which take
// the write lock as they begin, and a few for reads, which WAL lets run
// beside a write.
type handle struct {
	path        string
	read, write *sql.DB
	refs        int
	elem        *list.Element // nil once evicted
	version     atomic.Uint64 // changes with every write through the cache, and when reopened
	puts        groupCommit   // a container's object rows waiting for their transaction
}

// NewCache returns a cache of up to size open databases (256 if size is
// not positive).
func NewCache(size int) *Cache {
	if size <= 0 {
		size = 256
	}
	return &Cache{max: size, open: map[string]*list.Element{}}
}

// Close closes the databases not in use, and the others when released.
func (c *Cache) Close() {
	c.mu.Lock()
	for c.lru.Len() > 0 {
		c.evict(c.lru.Back())
	}
	c.mu.Unlock()
	c.closing.Wait()
}

// acquire returns the database at path, opening it unless it is open.
// Unless create, a missing file is ErrNotFound.
func (c *Cache) acquire(path string, create bool) (*handle, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.open[path]; ok {
		c.lru.MoveToFront(e)
		e.Value.(*handle).refs++
		return e.Value.(*handle), nil
	}
	if create {
		if err := node.MkdirAll(filepath.Dir(path)); err != nil {
			return nil, err
		}
	} else if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	// A small page cache per connection, as hundreds stay open; the
	// kernel's caches the files.
	pragmas := url.Values{"_pragma": {"journal_mode(WAL)", "synchronous(FULL)", "busy_timeout(10000)", "cache_size(-256)"}}
	dsn := "file:" + path + "?" + pragmas.Encode()
	h := &handle{path: path, refs: 1}
	h.write, _ = sql.Open("sqlite", dsn+"&_txlock=immediate") // opens lazily: no error
	h.read, _ = sql.Open("sqlite", dsn)
	h.write.SetMaxOpenConns(1)
	h.read.SetMaxOpenConns(4)
	h.read.SetMaxIdleConns(1)
	h.version.Store(c.writes.Add(1))
	h.elem = c.lru.PushFront(h)
	c.open[path] = h.elem
	for c.lru.Len() > c.max {
		c.evict(c.lru.Back())
	}
	return h, nil
}

// evict drops e from the cache, and closes it if no one uses it.
func (c *Cache) evict(e *list.Element) {
	h := c.lru.Remove(e).(*handle)
	delete(c.open, h.path)
	if h.elem = nil; h.refs == 0 {
		c.close(h)
	}
}

func (c *Cache) release(h *handle) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h.refs--; h.refs == 0 && h.elem == nil {
		c.close(h)
	}
}

// close closes h in the background: closing checkpoints the WAL, which
// must not hold up the cache.
func (c *Cache) close(h *handle) {
	c.closing.Go(func() {
		h.write.Close()
		h.read.Close()
	})
}

// Remove removes the database at path and its directory, as a
// replicator does with a copy that is no longer to be kept there, if
// the database is not in use and its version is still version (see
// db.Version); ErrBusy otherwise.
func (c *Cache) Remove(path string, version uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.open[path]; ok {
		h := e.Value.(*handle)
		if h.refs > 0 || h.version.Load() != version {
			return ErrBusy
		}
		c.evict(e)
	} else {
		return ErrBusy // not even open since version was read
	}
	dir := filepath.Dir(path)
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return node.SyncDir(filepath.Dir(dir))
}

// db is what containers' and accounts' databases share. table is the
// table of its rows.
type db struct {
	cache *Cache
	h     *handle
	table string
}

// create returns the database at path, making it with schema for the
// account or container named at ts if there is none; if there is one, it
// brings its put timestamp to ts if newer. created reports that the
// container or account now exists and did not before: its database is
// new, or ts brought it back from deleted.
func (c *Cache) create(path, table, schema, account, container string, ts objectstore.Timestamp) (d db, created bool, err error) {
	h, err := c.acquire(path, true)
	if err != nil {
		return d, false, err
	}
	d = db{c, h, table}
	err = d.tx(func(tx *sql.Tx) error {
		if _, err := tx.Exec(schema + infoSchema); err != nil {
			return err
		}
		s, err := status(tx)
		if errors.Is(err, ErrNotFound) {
			created = true
			_, err = tx.Exec(`INSERT INTO info (account, container, created_at, put_timestamp, status_changed_at, id)
				VALUES (?1, ?2, ?3, ?3, ?3, ?4)`, account, container, ts, rand.Text())
			return err
		}
		if err != nil || ts <= s.Put {
			return err
		}
		q := `UPDATE info SET put_timestamp = ?1`
		if created = s.Deleted() && s.Delete < ts; created {
			q += `, created_at = ?1, status_changed_at = ?1`
		}
		_, err = tx.Exec(q, ts)
		return err
	})
	if err == nil && created {
		err = node.SyncDir(filepath.Dir(path)) // the new file's name
	}
	if err != nil {
		d.Close()
	}
	return d, created, err
}

// Close releases the database to its cache.
func (d db) Close() { d.cache.release(d.h) }

// Version is a number that changes whenever the database changes
// through its cache, and when it is reopened: Cache.Remove's check that
// a copy is still the one replicated.
func (d db) Version() uint64 { return d.h.version.Load() }

// tx runs fn in a write transaction and commits if it returns nil.
func (d db) tx(fn func(*sql.Tx) error) error {
	tx, err := d.h.write.Begin()
	if err != nil {
		return err
	}
	d.h.version.Store(d.cache.writes.Add(1))
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// status reads the info table's status: ErrNotFound if it has no row, as
// after a crash cut a database's making short.
func status(tx *sql.Tx) (s Status, err error) {
	err = tx.QueryRow(`SELECT created_at, put_timestamp, delete_timestamp, status_changed_at FROM info`).
		Scan(&s.Created, &s.Put, &s.Delete, &s.StatusChanged)
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	return s, err
}

// Info returns what the database says of its container or account.
func (d db) Info() (Info, error) {
	var i Info
	var hosts, devices string
	var hash []byte
	err := d.h.read.QueryRow(`SELECT account, container, created_at, put_timestamp, delete_timestamp,
		status_changed_at, container_count, object_count, bytes_used, reported_put_timestamp,
		reported_delete_timestamp, reported_object_count, reported_bytes_used, account_hosts,
		account_devices, account_partition, id, rows_hash, (SELECT coalesce(max(rowid), 0) FROM `+d.table+`)
		FROM info`).Scan(&i.Account, &i.Container, &i.Created, &i.Put,
		&i.Delete, &i.StatusChanged, &i.Containers, &i.Objects, &i.Bytes, &i.Reported.Put, &i.Reported.Delete,
		&i.Reported.Objects, &i.Reported.Bytes, &hosts, &devices, &i.AccountNodes.Partition, &i.ID, &hash, &i.MaxRow)
	if errors.Is(err, sql.ErrNoRows) {
		return i, ErrNotFound
	}
	i.RowsHash = hex.EncodeToString(hash)
	if hosts != "" {
		i.AccountNodes.Hosts, i.AccountNodes.Devices = strings.Split(hosts, ","), strings.Split(devices, ",")
	}
	return i, err
}

// delete marks the database deleted at ts unless it has a newer DELETE,
// and removes the metadata older than ts, as Swift does, so that a
// container or account made again starts without it. If empty and the
// database has objects, it changes nothing and returns ErrNotEmpty.
func (d db) delete(ts objectstore.Timestamp, empty bool) (s Status, err error) {
	err = d.tx(func(tx *sql.Tx) error {
		if s, err = status(tx); err != nil || ts <= s.Delete {
			return err
		}
		var objects int64
		if err := tx.QueryRow(`SELECT object_count FROM info`).Scan(&objects); err != nil || empty && objects > 0 {
			return cmp.Or(err, ErrNotEmpty)
		}
		was := s.Deleted()
		if s.Delete = ts; s.Deleted() != was {
			s.StatusChanged = ts
		}
		if _, err := tx.Exec(`UPDATE info SET delete_timestamp = ?, status_changed_at = ?`, s.Delete, s.StatusChanged); err != nil {
			return err
		}
		_, err := tx.Exec(`UPDATE metadata SET value = '', timestamp = ?1 WHERE timestamp < ?1`, ts)
		return err
	})
	return s, err
}

// Metadata returns every metadata item by name, the removed ones with an
// empty value.
func (d db) Metadata() (map[string]Meta, error) {
	type item struct {
		name string
		Meta
	}
	items, err := query(d.h.read, `SELECT name, value, timestamp FROM metadata`, nil, func(r *sql.Rows) (i item, err error) {
		err = r.Scan(&i.name, &i.Value, &i.Timestamp)
		return i, err
	})
	out := map[string]Meta{}
	for _, i := range items {
		out[i.name] = i.Meta
	}
	return out, err
}

// UpdateMetadata sets the items of meta newer than the database's of the
// same names.
func (d db) UpdateMetadata(meta map[string]Meta) error {
	return d.tx(func(tx *sql.Tx) error {
		for name, m := range meta {
			if _, err := tx.Exec(`INSERT INTO metadata (name, value, timestamp) VALUES (?, ?, ?)
				ON CONFLICT (name) DO UPDATE SET value = excluded.value, timestamp = excluded.timestamp
				WHERE excluded.timestamp > metadata.timestamp`, name, m.Value, m.Timestamp); err != nil {
				return err
			}
		}
		return nil
	})
}

// query runs stmt with args and returns its rows, each read with scan.
func query[T any](q *sql.DB, stmt string, args []any, scan func(*sql.Rows) (T, error)) ([]T, error) {
	rows, err := q.Query(stmt, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// MergeStatus merges a replica's status into the database's: the
// earliest creation, the newest PUT and DELETE, and, if that changes
// whether it is deleted, the newest change of status.
func (d db) MergeStatus(r Status) error {
	return d.tx(func(tx *sql.Tx) error {
		s, err := status(tx)
		if err != nil {
			return err
		}
		m := Status{min(s.Created, r.Created), max(s.Put, r.Put), max(s.Delete, r.Delete), s.StatusChanged}
		if m.Deleted() != s.Deleted() {
			m.StatusChanged = max(s.StatusChanged, r.StatusChanged, m.Put, m.Delete)
		}
		if m == s {
			return nil
		}
		_, err = tx.Exec(`UPDATE info SET created_at = ?, put_timestamp = ?, delete_timestamp = ?, status_changed_at = ?`,
			m.Created, m.Put, m.Delete, m.StatusChanged)
		return err
	})
}

// SyncPoint returns the rowid up to which the database has the rows of
// the replica whose ID is remote; 0 if it has none of them.
func (d db) SyncPoint(remote string) (point int64, err error) {
	err = d.h.read.QueryRow(`SELECT sync_point FROM sync WHERE remote_id = ?`, remote).Scan(&point)
	if errors.Is(err, sql.ErrNoRows) {
		err = nil
	}
	return point, err
}

// SyncedTo records that the database has the rows of the replica whose
// ID is remote up to its rowid point, as when their hashes show it has
// them all.
func (d db) SyncedTo(remote string, point int64) error {
	return d.tx(func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO sync (remote_id, sync_point) VALUES (?1, ?2)
			ON CONFLICT (remote_id) DO UPDATE SET sync_point = max(sync_point, ?2)`, remote, point)
		return err
	})
}

// mergeSync merges a replica's rows with merge, after checking them,
// and records in the same transaction that the database has the rows of
// the replica remote up to the newest of their rowids, which it returns.
func mergeSync[R any](d db, remote string, rows []R, check func(R) (int64, error), merge func(*sql.Tx, []R) (int, error)) (point int64, err error) {
	for _, r := range rows {
		id, err := check(r)
		if err != nil {
			return 0, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		point = max(point, id)
	}
	if remote == "" {
		return 0, fmt.Errorf("%w: no replica ID", ErrInvalid)
	}
	err = d.tx(func(tx *sql.Tx) error {
		if _, err := merge(tx, rows); err != nil {
			return err
		}
		return tx.QueryRow(`INSERT INTO sync (remote_id, sync_point) VALUES (?1, ?2)
			ON CONFLICT (remote_id) DO UPDATE SET sync_point = max(sync_point, ?2) RETURNING sync_point`,
			remote, point).Scan(&point)
	})
	return point, err
}

// rowHash is the MD5 of a row's fields.
func rowHash(fields ...any) (h [md5.Size]byte) {
	return md5.Sum(fmt.Appendf(nil, "%q", fields))
}

// xor sets h to h XOR o.
func xor(h *[md5.Size]byte, o [md5.Size]byte) {
	for i := range h {
		h[i] ^= o[i]
	}
}

// addTotals adds to the info table's totals and its rows' hash, in a
// merge's transaction: ErrNotFound if it has no row.
func addTotals(tx *sql.Tx, containers, objects, bytes int64, hash [md5.Size]byte) error {
	var old []byte
	if err := tx.QueryRow(`SELECT rows_hash FROM info`).Scan(&old); errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	} else if err != nil {
		return err
	}
	var h [md5.Size]byte
	copy(h[:], old)
	xor(&h, hash)
	_, err := tx.Exec(`UPDATE info SET container_count = container_count + ?, object_count = object_count + ?,
		bytes_used = bytes_used + ?, rows_hash = ?`, containers, objects, bytes, h[:])
	return err
}
