package broker

import (
	"database/sql"
	"errors"
	"strings"

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
	return &Container{db{c, h}}, nil
}

// CreateContainer returns the database at path, making it for container
// of account at ts if there is none, else bringing its put timestamp to
// ts if newer. created reports that the container exists and did not
// before. An older PUT than the container's DELETE leaves it deleted.
func (c *Cache) CreateContainer(path, account, container string, ts objectstore.Timestamp) (*Container, bool, error) {
	d, created, err := c.create(path, objectSchema, account, container, ts)
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
// whether it did.
func (d *Container) PutObject(o Object) (bool, error) {
	n, err := d.Merge([]Object{o})
	return n == 1, err
}

// Merge records, in one transaction, the rows newer than the container's
// of the same names, and returns how many. The object count and bytes
// used follow in the same transaction.
func (d *Container) Merge(rows []Object) (merged int, err error) {
	err = d.tx(func(tx *sql.Tx) error {
		merged = 0
		var objects, bytes int64
		for _, o := range rows {
			var old Object
			err := tx.QueryRow(`SELECT rowid, created_at, size, deleted FROM object WHERE deleted IN (0, 1) AND name = ?`,
				o.Name).Scan(&old.RowID, &old.Created, &old.Size, &old.Deleted)
			switch {
			case err == nil && old.Created >= o.Created:
				continue
			case err == nil:
				if !old.Deleted {
					objects, bytes = objects-1, bytes-old.Size
				}
				_, err = tx.Exec(`DELETE FROM object WHERE rowid = ?`, old.RowID)
			case errors.Is(err, sql.ErrNoRows):
				err = nil
			}
			if o.Deleted {
				o.Size, o.ContentType, o.ETag = 0, "", ""
			} else {
				objects, bytes = objects+1, bytes+o.Size
			}
			if err == nil {
				_, err = tx.Exec(`INSERT INTO object (name, created_at, size, content_type, etag, deleted)
					VALUES (?, ?, ?, ?, ?, ?)`, o.Name, o.Created, o.Size, o.ContentType, o.ETag, o.Deleted)
			}
			if err != nil {
				return err
			}
			merged++
		}
		return addTotals(tx, 0, objects, bytes)
	})
	return merged, err
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
