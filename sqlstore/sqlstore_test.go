package sqlstore_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/internal/pgtest"
	"github.com/trustack/trustack/sqlstore"
	"github.com/trustack/trustack/storetest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// backends opens a new store per test on each backend.
var backends = map[string]func(t testing.TB) string{
	"SQLite":     func(t testing.TB) string { return "sqlite://" + filepath.Join(t.TempDir(), "trustack.db") },
	"PostgreSQL": pgtest.DSN,
}

func open(t testing.TB, dsn string) *sqlstore.DB {
	t.Helper()
	db, err := sqlstore.Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("open %s: %v", dsn, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestConformance(t *testing.T) {
	for name, dsn := range backends {
		t.Run(name, func(t *testing.T) {
			storetest.Run(t, func(t testing.TB) storetest.Store { return open(t, dsn(t)) })
		})
	}
}

func TestMigrations(t *testing.T) {
	for name, newDSN := range backends {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			dsn := newDSN(t)
			db := open(t, dsn)
			must(t, db.CreateDomain(ctx, &trustack.Domain{ID: "d", Name: "kept"}))
			db.Close()

			// Opening again applies nothing twice and keeps the data.
			db = open(t, dsn)
			if _, err := db.Domain(ctx, "d"); err != nil {
				t.Fatalf("after reopening: %v", err)
			}

			// A schema from a newer binary is refused, with a message that says so.
			raw := rawDB(t, dsn)
			if _, err := raw.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, 'from_the_future', 0)`, sqlstore.SchemaVersion()+1); err != nil {
				t.Fatal(err)
			}
			db.Close()
			_, err := sqlstore.Open(ctx, dsn)
			if err == nil || !strings.Contains(err.Error(), "newer") {
				t.Fatalf("opening a newer schema: got %v, want an error saying it is newer", err)
			}
		})
	}
}

func TestOpenRejectsBadDSN(t *testing.T) {
	for _, dsn := range []string{"", "mysql://x", "sqlite://", "/var/lib/trustack.db"} {
		if _, err := sqlstore.Open(context.Background(), dsn); trustack.ErrorCode(err) != trustack.EINVALID {
			t.Errorf("Open(%q): got %v, want an invalid-argument error", dsn, err)
		}
	}
}

// rawDB opens the database behind dsn without the store, to tamper with it.
func rawDB(t testing.TB, dsn string) *sql.DB {
	driver, source := "pgx", dsn
	if path, ok := strings.CutPrefix(dsn, "sqlite://"); ok {
		driver, source = "sqlite", "file:"+path
	}
	db, err := sql.Open(driver, source)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
