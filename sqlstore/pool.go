package sqlstore

import (
	"context"
	"database/sql"
	"sync"
)

// maxStatements bounds the statements a pool keeps prepared; queries
// beyond it (lists with long IN clauses, mostly) run unprepared.
const maxStatements = 512

// pool is a connection pool that prepares each distinct query once and
// reuses it, which spares SQLite from parsing the SQL of every request.
type pool struct {
	db    *sql.DB
	mu    sync.RWMutex
	stmts map[string]*sql.Stmt
}

func newPool(db *sql.DB) *pool { return &pool{db: db, stmts: map[string]*sql.Stmt{}} }

// cached returns the prepared statement of query, or nil.
func (p *pool) cached(query string) *sql.Stmt {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.stmts[query]
}

// stmt returns the prepared statement of query, preparing it if need be,
// or nil if the cache is full or preparing failed (the query then runs
// unprepared, and reports the error itself). Preparing takes a connection,
// so it happens outside the lock.
func (p *pool) stmt(ctx context.Context, query string) *sql.Stmt {
	if s := p.cached(query); s != nil {
		return s
	}
	p.mu.RLock()
	full := len(p.stmts) >= maxStatements
	p.mu.RUnlock()
	if full {
		return nil
	}
	s, err := p.db.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	p.mu.Lock()
	have := p.stmts[query]
	if have == nil {
		p.stmts[query] = s
	}
	p.mu.Unlock()
	if have != nil {
		// Prepared meanwhile by another request. Close ours outside the
		// lock: closing waits for connections that may be busy in
		// transactions, which need the lock to go on.
		s.Close()
		return have
	}
	return s
}

func (p *pool) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if s := p.stmt(ctx, query); s != nil {
		return s.ExecContext(ctx, args...)
	}
	return p.db.ExecContext(ctx, query, args...)
}

func (p *pool) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if s := p.stmt(ctx, query); s != nil {
		return s.QueryContext(ctx, args...)
	}
	return p.db.QueryContext(ctx, query, args...)
}

func (p *pool) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if s := p.stmt(ctx, query); s != nil {
		return s.QueryRowContext(ctx, args...)
	}
	return p.db.QueryRowContext(ctx, query, args...)
}

func (p *pool) close() error {
	p.mu.Lock()
	stmts := p.stmts
	p.stmts = map[string]*sql.Stmt{}
	p.mu.Unlock()
	for _, s := range stmts {
		s.Close()
	}
	return p.db.Close()
}

// prepare prepares the queries that are not yet, as far as the cache
// allows.
func (p *pool) prepare(ctx context.Context, queries []string) {
	for _, q := range queries {
		p.stmt(ctx, q)
	}
}

// tx is a transaction that uses its pool's prepared statements. It never
// prepares through the pool: that needs a connection, and on SQLite the
// transaction holds the only write connection. It notes the queries it ran
// unprepared instead, for the pool to prepare once the transaction is over
// (inTx does), so that a query that only ever runs in transactions is
// parsed once, not at each run.
type tx struct {
	tx         *sql.Tx
	pool       *pool
	unprepared []string
}

// stmt returns query's statement for the transaction, or nil to run it
// unprepared.
func (t *tx) stmt(ctx context.Context, query string) *sql.Stmt {
	s := t.pool.cached(query)
	if s == nil {
		t.unprepared = append(t.unprepared, query)
		return nil
	}
	return t.tx.StmtContext(ctx, s)
}

func (t *tx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if s := t.stmt(ctx, query); s != nil {
		return s.ExecContext(ctx, args...)
	}
	return t.tx.ExecContext(ctx, query, args...)
}

func (t *tx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if s := t.stmt(ctx, query); s != nil {
		return s.QueryContext(ctx, args...)
	}
	return t.tx.QueryContext(ctx, query, args...)
}

func (t *tx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if s := t.stmt(ctx, query); s != nil {
		return s.QueryRowContext(ctx, args...)
	}
	return t.tx.QueryRowContext(ctx, query, args...)
}
