package sqlstore

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/trustack/trustack"
)

// migrations holds the schema as forward-only steps named NNNN_what.sql.
// A step, once released, never changes: a new change is a new step.
//
//go:embed migrations/*.sql
var migrations embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations returns the embedded steps in order.
func loadMigrations() ([]migration, error) {
	files, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var steps []migration
	for _, f := range files {
		name := strings.TrimSuffix(path.Base(f), ".sql")
		num, _, _ := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if err != nil {
			return nil, fmt.Errorf("migration %s: name must start with its number", f)
		}
		body, err := migrations.ReadFile(f)
		if err != nil {
			return nil, err
		}
		steps = append(steps, migration{version: v, name: name, sql: string(body)})
	}
	sort.Slice(steps, func(i, j int) bool { return steps[i].version < steps[j].version })
	for i, s := range steps {
		if s.version != i+1 {
			return nil, fmt.Errorf("migration %s: want version %d", s.name, i+1)
		}
	}
	return steps, nil
}

// SchemaVersion returns the newest schema version this binary knows.
func SchemaVersion() int {
	steps, err := loadMigrations()
	if err != nil {
		panic(err) // the embedded files are fixed at build time; tests catch this
	}
	return len(steps)
}

// migrate applies the steps the database has not seen, each in its own
// transaction with its record in schema_migrations. On PostgreSQL an
// advisory lock keeps two controllers starting at once from racing; on
// SQLite the immediate transaction does the same.
func (db *DB) migrate(ctx context.Context) error {
	steps, err := loadMigrations()
	if err != nil {
		return err
	}
	return db.migrateSteps(ctx, steps)
}

// migrateSteps applies the steps the database has not seen of steps, the
// first len(steps) of the schema; tests stop at an older version with it.
func (db *DB) migrateSteps(ctx context.Context, steps []migration) error {
	if _, err := db.write.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY,
		name TEXT NOT NULL,
		applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	for {
		done, err := db.migrateOne(ctx, steps)
		if err != nil || done {
			return err
		}
	}
}

// migrateOne applies the next missing step and reports whether none was
// missing. Steps hold several statements, so they run unprepared, in a
// transaction of their own.
func (db *DB) migrateOne(ctx context.Context, steps []migration) (done bool, err error) {
	tx, err := db.write.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("begin migration: %w", err)
	}
	defer tx.Rollback()
	err = func() error {
		if db.backend == "postgres" {
			if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(7262636)`); err != nil {
				return fmt.Errorf("lock for migration: %w", err)
			}
		}
		var current int
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		if current > len(steps) {
			return trustack.Errorf(trustack.EINVALID,
				"the database schema is at version %d, newer than the %d this trustack binary knows: run a newer trustack against it", current, len(steps))
		}
		if current == len(steps) {
			done = true
			return nil
		}
		step := steps[current]
		if _, err := tx.ExecContext(ctx, step.sql); err != nil {
			return fmt.Errorf("apply migration %s: %w", step.name, err)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
			step.version, step.name, db.Now().UnixMicro())
		return err
	}()
	if err != nil {
		return false, err
	}
	return done, tx.Commit()
}
