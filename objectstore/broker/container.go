package broker

import (
	"crypto/md5"
	"database/sql"
	"errors"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/trustack/trustack/objectstore"
)

// objectSchema is a container's table of objects. A change of a row
// replaces it under a new rowid, so that the rows after a rowid are the
// changes since, which a replicator sends. Its one index serves listings
// and looking a name up alike; Merge keeps one row per name.
const objectSchema = `CREATE TABLE IF NOT EXISTS object (
	rowid INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, created_at INTEGER NOT NULL,
	size INTEGER NOT NULL, content_type TEXT NOT NULL, etag TEXT NOT NULL, deleted INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS object_deleted_name ON object (deleted, name);`

const objectCols = "rowid, name, created_at, size, content_type, etag, deleted"

// Container is the open database of a container. It is safe for
// concurrent use; Close releases it.
type Container struct{ db }

// Object is a container's row of an object: its newest PUT, or its
// DELETE (Deleted, with no size, type or ETag). In a listing, an entry
// with Subdir set is not an object but the subdir Name.
type Object struct {
	RowID       int64 // the row's place in the order of changes; 0 if not from a database
	Name        string
	Created     objectstore.Timestamp
	Size        int64
	ContentType string
	ETag        string
	Deleted     bool
	Subdir      bool
}

func scanObject(r *sql.Rows) (o Object, err error) {
	err = r.Scan(&o.RowID, &o.Name, &o.Created, &o.Size, &o.ContentType, &o.ETag, &o.Deleted)
	return o, err
}

// Container returns the database at path; ErrNotFound if there is none.
func (c *Cache) Container(path string) (*Container, error) {
	h, err := c.acquire(path, false)
	if err != nil {
		return nil, err
	}
	return &Container{db{c, h, "object"}}, nil
}

// CreateContainer returns the database at path, making it for container
// of account at ts if there is none, else bringing its put timestamp to
// ts if newer. created reports that the container exists and did not
// before. An older PUT than the container's DELETE leaves it deleted.
func (c *Cache) CreateContainer(path, account, container string, ts objectstore.Timestamp) (*Container, bool, error) {
	d, created, err := c.create(path, "object", objectSchema, account, container, ts)
	if err != nil {
		return nil, false, err
	}
	return &Container{d}, created, nil
}

// Delete marks the container deleted at ts, unless it has a newer
// DELETE. It returns ErrNotEmpty, changing nothing, if it holds objects.
func (d *Container) Delete(ts objectstore.Timestamp) (Status, error) { return d.delete(ts, true) }

// SetAccountNodes records the account servers the container reports to.
func (d *Container) SetAccountNodes(n AccountNodes) error {
	return d.tx(func(tx *sql.Tx) error {
		_, err := tx.Exec(`UPDATE info SET account_hosts = ?, account_devices = ?, account_partition = ?`,
			strings.Join(n.Hosts, ","), strings.Join(n.Devices, ","), n.Partition)
		return err
	})
}

// MarkReported records r as what the account last heard.
func (d *Container) MarkReported(r Report) error {
	return d.tx(func(tx *sql.Tx) error {
		_, err := tx.Exec(`UPDATE info SET reported_put_timestamp = ?, reported_delete_timestamp = ?,
			reported_object_count = ?, reported_bytes_used = ?`, r.Put, r.Delete, r.Objects, r.Bytes)
		return err
	})
}

// PutObject records an object's PUT or, if o.Deleted, its DELETE, unless
// the container has a row of the object as new or newer; it reports
// whether it did, once the row is on disk. The rows that object servers
// send a container at once are committed together (group commit): each
// commit waits for the disk, and the rows that came meanwhile share the
// next one, so that a busy container's updates are not one fsync each.
func (d *Container) PutObject(o Object) (bool, error) {
	p := &pendingRow{row: o, done: make(chan error, 1)}
	g := &d.h.puts
	g.mu.Lock()
	g.queue = append(g.queue, p)
	lead := !g.committing
	g.committing = true
	g.mu.Unlock()
	if lead {
		// The first to come commits, batch after batch, until none
		// waits.
		for {
			g.mu.Lock()
			batch := g.queue
			g.queue = nil
			if len(batch) == 0 {
				g.committing = false
				g.mu.Unlock()
				break
			}
			g.mu.Unlock()
			rows := make([]Object, len(batch))
			for i, p := range batch {
				rows[i] = p.row
			}
			err := d.tx(func(tx *sql.Tx) error {
				return mergeEach(tx, rows, func(i int) { batch[i].merged = true })
			})
			for _, p := range batch {
				p.done <- err
			}
		}
	}
	err := <-p.done
	return p.merged && err == nil, err
}

// groupCommit gathers the object rows written to a container at once.
type groupCommit struct {
	mu         sync.Mutex
	queue      []*pendingRow
	committing bool // a writer commits the queue, batch after batch
}

// pendingRow is a row waiting for its transaction, and its outcome.
type pendingRow struct {
	row    Object
	merged bool
	done   chan error
}

// Merge records, in one transaction, the rows newer than the container's
// of the same names, and returns how many. The object count and bytes
// used follow in the same transaction.
func (d *Container) Merge(rows []Object) (merged int, err error) {
	err = d.tx(func(tx *sql.Tx) (err error) {
		merged, err = mergeObjects(tx, rows)
		return err
	})
	return merged, err
}

// MergeSync merges the rows of the replica whose ID is remote, as Merge
// does, and records that the container has that replica's rows up to
// the newest rowid of rows, which it returns with the newer it had. It
// returns ErrInvalid, wrapped, for a row that no container could hold.
func (d *Container) MergeSync(remote string, rows []Object) (int64, error) {
	return mergeSync(d.db, remote, rows, checkObject, mergeObjects)
}

func checkObject(o Object) (int64, error) {
	if o.Name == "" || len(o.Name) > objectstore.MaxObjectNameLength || !utf8.ValidString(o.Name) ||
		strings.ContainsRune(o.Name, 0) || o.Created <= 0 || o.Size < 0 || o.RowID <= 0 || o.Subdir {
		return 0, errors.New("object row: want a name, a rowid, a timestamp and no negative size")
	}
	return o.RowID, nil
}

func (o Object) hash() [md5.Size]byte {
	return rowHash(o.Name, o.Created, o.Size, o.ContentType, o.ETag, o.Deleted)
}

func mergeObjects(tx *sql.Tx, rows []Object) (merged int, err error) {
	err = mergeEach(tx, rows, func(int) { merged++ })
	return merged, err
}

// mergeEach records the rows newer than the container's of the same
// names, calling merged with the index of each, and updates the totals
// once. Its statements are prepared once for all the rows.
func mergeEach(tx *sql.Tx, rows []Object, merged func(i int)) error {
	var stmts [3]*sql.Stmt
	defer func() {
		for _, s := range stmts {
			if s != nil {
				s.Close()
			}
		}
	}()
	for i, query := range []string{
		`SELECT ` + objectCols + ` FROM object WHERE deleted IN (0, 1) AND name = ?`,
		`DELETE FROM object WHERE rowid = ?`,
		`INSERT INTO object (name, created_at, size, content_type, etag, deleted) VALUES (?, ?, ?, ?, ?, ?)`,
	} {
		var err error
		if stmts[i], err = tx.Prepare(query); err != nil {
			return err
		}
	}
	find, remove, insert := stmts[0], stmts[1], stmts[2]
	var objects, bytes int64
	var hash [md5.Size]byte
	for i, o := range rows {
		var old Object
		err := find.QueryRow(o.Name).Scan(&old.RowID, &old.Name, &old.Created, &old.Size, &old.ContentType, &old.ETag, &old.Deleted)
		switch {
		case err == nil && old.Created >= o.Created:
			continue
		case err == nil:
			if !old.Deleted {
				objects, bytes = objects-1, bytes-old.Size
			}
			xor(&hash, old.hash())
			_, err = remove.Exec(old.RowID)
		case errors.Is(err, sql.ErrNoRows):
			err = nil
		}
		if o.Deleted {
			o.Size, o.ContentType, o.ETag = 0, "", ""
		} else {
			objects, bytes = objects+1, bytes+o.Size
		}
		xor(&hash, o.hash())
		if err == nil {
			_, err = insert.Exec(o.Name, o.Created, o.Size, o.ContentType, o.ETag, o.Deleted)
		}
		if err != nil {
			return err
		}
		merged(i)
	}
	return addTotals(tx, 0, objects, bytes, hash)
}

// RowsSince returns up to n rows changed after the row rowid, deleted
// ones too, in the order of their changes: what a replica that has the
// changes up to rowid lacks.
func (d *Container) RowsSince(rowid int64, n int) ([]Object, error) {
	return query(d.h.read, `SELECT `+objectCols+` FROM object WHERE rowid > ? ORDER BY rowid LIMIT ?`,
		[]any{rowid, n}, scanObject)
}

// List returns the container's objects, and subdirs, as o chooses.
func (d *Container) List(o ListOptions) ([]Object, error) {
	return listRows(d.h.read, "object", objectCols, o, scanObject, func(o Object) string { return o.Name },
		func(dir string) Object { return Object{Name: dir, Subdir: true} })
}
