// Package sqlstore keeps trustack's state in a relational database through
// database/sql: SQLite (modernc.org/sqlite, pure Go) as the embedded
// default, PostgreSQL (pgx) when several controllers share one database.
// Both run the same SQL and the same embedded migrations; the DSN's scheme
// chooses the backend. Driver errors become trustack error codes here, by
// their codes, never by their text.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/trustack/trustack"
)

// DB is an open store. Its methods are safe for concurrent use.
type DB struct {
	// read serves queries outside transactions; write serves transactions.
	// They are one pool on PostgreSQL. On SQLite the write pool has a
	// single connection whose transactions begin IMMEDIATE, so that writers
	// queue on the Go side instead of failing with SQLITE_BUSY when a read
	// transaction tries to upgrade.
	read, write *pool
	backend     string // "sqlite" or "postgres"
	projects    projectQueue

	// Now returns the current time; tests replace it.
	Now func() time.Time
}

// Open opens the store at dsn and brings its schema up to date. The DSN is
// sqlite:///absolute/path/to/file.db, sqlite://relative/path.db or a
// PostgreSQL URL (postgres:// or postgresql://). A schema newer than this
// binary knows is refused.
func Open(ctx context.Context, dsn string) (*DB, error) {
	db, err := open(dsn)
	if err != nil {
		return nil, err
	}
	if err := db.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func open(dsn string) (*DB, error) {
	scheme, rest, ok := strings.Cut(dsn, "://")
	if !ok {
		return nil, trustack.Errorf(trustack.EINVALID, "database connection %q: want sqlite:///path or postgres://...", dsn)
	}
	switch scheme {
	case "sqlite":
		return openSQLite(rest)
	case "postgres", "postgresql":
		return openPostgres(dsn)
	default:
		return nil, trustack.Errorf(trustack.EINVALID, "database connection %q: unknown scheme %q (want sqlite or postgres)", dsn, scheme)
	}
}

func openSQLite(path string) (*DB, error) {
	if path == "" {
		return nil, trustack.Errorf(trustack.EINVALID, "database connection: sqlite needs a file path, as in sqlite:///var/lib/trustack/trustack.db")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("create database directory: %w", err)
	}
	pragmas := url.Values{"_pragma": {
		"journal_mode(WAL)",
		"synchronous(FULL)", // an acknowledged write survives a power cut
		"busy_timeout(10000)",
		"foreign_keys(1)",
	}}
	base := "file:" + path + "?" + pragmas.Encode()
	write, err := sql.Open("sqlite", base+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	write.SetMaxOpenConns(1)
	read, err := sql.Open("sqlite", base)
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	read.SetMaxOpenConns(max(4, runtime.NumCPU()))
	read.SetMaxIdleConns(max(4, runtime.NumCPU()))
	return &DB{read: newPool(read), write: newPool(write), backend: "sqlite", Now: time.Now}, nil
}

func openPostgres(dsn string) (*DB, error) {
	pool, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	pool.SetMaxOpenConns(32)
	pool.SetMaxIdleConns(32)
	pool.SetConnMaxIdleTime(5 * time.Minute)
	p := newPool(pool)
	return &DB{read: p, write: p, backend: "postgres", Now: time.Now}, nil
}

// Backend returns "sqlite" or "postgres".
func (db *DB) Backend() string { return db.backend }

// Close closes the store's connections.
func (db *DB) Close() error {
	err := db.read.close()
	if db.write != db.read {
		err = errors.Join(err, db.write.close())
	}
	return err
}

// lockRow returns the suffix that makes a SELECT in a transaction lock the
// rows it reads until the transaction ends. SQLite needs none: its write
// transactions run one at a time.
func (db *DB) lockRow() string {
	if db.backend == "postgres" {
		return " FOR UPDATE"
	}
	return ""
}

// querier is what both a pool and a transaction offer.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// inTx runs fn in a write transaction, committing if fn returns nil.
func (db *DB) inTx(ctx context.Context, fn func(q querier) error) error {
	t, err := db.write.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", translate(err))
	}
	q := &tx{tx: t, pool: db.write}
	defer func() { db.write.prepare(context.WithoutCancel(ctx), q.unprepared) }()
	if err := fn(q); err != nil {
		t.Rollback()
		return err
	}
	if err := t.Commit(); err != nil {
		return fmt.Errorf("commit: %w", translate(err))
	}
	return nil
}

// inProjectTx is inTx for a transaction that takes a project's quota lock
// (checkQuota, lockProject): it waits for a turn of the project's first.
func (db *DB) inProjectTx(ctx context.Context, project string, fn func(q querier) error) error {
	defer db.projects.wait(project)()
	return db.inTx(ctx, fn)
}

// Error codes of the two drivers that mean a constraint was violated.
const (
	pgUniqueViolation     = "23505"
	pgForeignKeyViolation = "23503"
)

// translate turns a driver's constraint violation into ECONFLICT and leaves
// other errors as they are.
func translate(err error) error {
	var lite *sqlite.Error
	if errors.As(err, &lite) {
		switch lite.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return &constraintError{unique: true, err: err}
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return &constraintError{err: err}
		}
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		switch pg.Code {
		case pgUniqueViolation:
			return &constraintError{unique: true, err: err}
		case pgForeignKeyViolation:
			return &constraintError{err: err}
		}
	}
	return err
}

// constraintError is a violated uniqueness or foreign key constraint,
// before the store names the thing it was storing.
type constraintError struct {
	unique bool
	err    error
}

func (e *constraintError) Error() string { return e.err.Error() }
func (e *constraintError) Unwrap() error { return e.err }

// conflict names a constraint violation in terms of the kind of thing
// stored, as an ECONFLICT the user can read; other errors pass through.
func conflict(kind string, err error) error {
	var c *constraintError
	if !errors.As(err, &c) {
		return err
	}
	if c.unique {
		return &trustack.Error{Code: trustack.ECONFLICT, Message: fmt.Sprintf("Conflict occurred attempting to store %s: a %s with the same identifying attributes already exists.", kind, kind)}
	}
	return &trustack.Error{Code: trustack.ECONFLICT, Message: fmt.Sprintf("Conflict occurred attempting to store %s: it refers to something that does not exist, or something still refers to it.", kind)}
}
