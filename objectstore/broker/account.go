package broker

import (
	"crypto/md5"
	"database/sql"
	"errors"
	"strings"
	"unicode/utf8"

	"github.com/trustack/trustack/objectstore"
)

// containerSchema is an account's table of containers, whose rows change
// and are indexed as a container's object rows are.
const containerSchema = `CREATE TABLE IF NOT EXISTS container (
	rowid INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, put_timestamp INTEGER NOT NULL,
	delete_timestamp INTEGER NOT NULL, object_count INTEGER NOT NULL, bytes_used INTEGER NOT NULL,
	deleted INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS container_deleted_name ON container (deleted, name);`

const containerCols = "rowid, name, put_timestamp, delete_timestamp, object_count, bytes_used, deleted"

// Account is the open database of an account. It is safe for concurrent
// use; Close releases it.
type Account struct{ db }

// ContainerRow is an account's row of a container, as the container
// last reported: deleted if its newest DELETE is newer than its newest
// PUT. In a listing, an entry with Subdir set is not a container but the
// subdir Name.
type ContainerRow struct {
	RowID          int64 // the row's place in the order of changes; 0 if not from a database
	Name           string
	Put, Delete    objectstore.Timestamp
	Objects, Bytes int64
	Deleted        bool
	Subdir         bool
}

func scanContainer(r *sql.Rows) (c ContainerRow, err error) {
	err = r.Scan(&c.RowID, &c.Name, &c.Put, &c.Delete, &c.Objects, &c.Bytes, &c.Deleted)
	return c, err
}

// Account returns the database at path; ErrNotFound if there is none.
func (c *Cache) Account(path string) (*Account, error) {
	h, err := c.acquire(path, false)
	if err != nil {
		return nil, err
	}
	return &Account{db{c, h, "container"}}, nil
}

// CreateAccount returns the database at path, making it for account at
// ts if there is none, as CreateContainer does.
func (c *Cache) CreateAccount(path, account string, ts objectstore.Timestamp) (*Account, bool, error) {
	d, created, err := c.create(path, "container", containerSchema, account, "", ts)
	if err != nil {
		return nil, false, err
	}
	return &Account{d}, created, nil
}

// Delete marks the account deleted at ts, unless it has a newer DELETE.
// Its containers stay: removing them is a reaper's work.
func (d *Account) Delete(ts objectstore.Timestamp) (Status, error) { return d.delete(ts, false) }

// PutContainer records a container's report, as Merge does.
func (d *Account) PutContainer(r ContainerRow) error {
	_, err := d.Merge([]ContainerRow{r})
	return err
}

// Merge records container rows in one transaction and returns how many
// changed the account. A row's timestamps become the newest of its and
// the account's; its counts are its own, unless the account has a newer
// PUT or DELETE of the container. The account's totals follow in the
// same transaction.
func (d *Account) Merge(rows []ContainerRow) (merged int, err error) {
	err = d.tx(func(tx *sql.Tx) (err error) {
		merged, err = mergeContainers(tx, rows)
		return err
	})
	return merged, err
}

// MergeSync merges the rows of the replica whose ID is remote, as Merge
// does, and records that the account has that replica's rows up to the
// newest rowid of rows, which it returns with the newer it had. It
// returns ErrInvalid, wrapped, for a row that no account could hold.
func (d *Account) MergeSync(remote string, rows []ContainerRow) (int64, error) {
	return mergeSync(d.db, remote, rows, checkContainer, mergeContainers)
}

func checkContainer(r ContainerRow) (int64, error) {
	if r.Name == "" || len(r.Name) > objectstore.MaxContainerNameLength || !utf8.ValidString(r.Name) ||
		strings.ContainsAny(r.Name, "/\x00") || r.Put < 0 || r.Delete < 0 || r.Objects < 0 || r.Bytes < 0 || r.RowID <= 0 || r.Subdir {
		return 0, errors.New("container row: want a name, a rowid, and no negative timestamp or count")
	}
	return r.RowID, nil
}

func (r ContainerRow) hash() [md5.Size]byte {
	return rowHash(r.Name, r.Put, r.Delete, r.Objects, r.Bytes)
}

func mergeContainers(tx *sql.Tx, rows []ContainerRow) (merged int, err error) {
	var containers, objects, bytes int64
	var hash [md5.Size]byte
	for _, r := range rows {
		var old ContainerRow
		err := tx.QueryRow(`SELECT `+containerCols+` FROM container WHERE deleted IN (0, 1) AND name = ?`, r.Name).
			Scan(&old.RowID, &old.Name, &old.Put, &old.Delete, &old.Objects, &old.Bytes, &old.Deleted)
		if err == nil {
			if old.Put > r.Put || old.Delete > r.Delete {
				r.Objects, r.Bytes = old.Objects, old.Bytes
			}
			r.Put, r.Delete = max(r.Put, old.Put), max(r.Delete, old.Delete)
			if r.Put == old.Put && r.Delete == old.Delete && r.Objects == old.Objects && r.Bytes == old.Bytes {
				continue
			}
			if !old.Deleted {
				containers, objects, bytes = containers-1, objects-old.Objects, bytes-old.Bytes
			}
			xor(&hash, old.hash())
			_, err = tx.Exec(`DELETE FROM container WHERE rowid = ?`, old.RowID)
		} else if errors.Is(err, sql.ErrNoRows) {
			err = nil
		}
		if r.Deleted = r.Delete > r.Put; !r.Deleted {
			containers, objects, bytes = containers+1, objects+r.Objects, bytes+r.Bytes
		}
		xor(&hash, r.hash())
		if err == nil {
			_, err = tx.Exec(`INSERT INTO container (name, put_timestamp, delete_timestamp, object_count, bytes_used,
				deleted) VALUES (?, ?, ?, ?, ?, ?)`, r.Name, r.Put, r.Delete, r.Objects, r.Bytes, r.Deleted)
		}
		if err != nil {
			return 0, err
		}
		merged++
	}
	return merged, addTotals(tx, containers, objects, bytes, hash)
}

// RowsSince returns up to n container rows changed after the row rowid,
// deleted ones too, in the order of their changes.
func (d *Account) RowsSince(rowid int64, n int) ([]ContainerRow, error) {
	return query(d.h.read, `SELECT `+containerCols+` FROM container WHERE rowid > ? ORDER BY rowid LIMIT ?`,
		[]any{rowid, n}, scanContainer)
}

// List returns the account's containers, and subdirs, as o chooses.
func (d *Account) List(o ListOptions) ([]ContainerRow, error) {
	return listRows(d.h.read, "container", containerCols, o, scanContainer, func(r ContainerRow) string { return r.Name },
		func(dir string) ContainerRow { return ContainerRow{Name: dir, Subdir: true} })
}
