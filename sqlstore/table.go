package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/trustack/trustack"
)

// table maps a domain type T onto one SQL table, so that each kind of
// thing gets its create, get, list, update and delete from one place.
type table[T any] struct {
	name    string   // the SQL table
	kind    string   // what users call a row, for messages: "user"
	columns []string // columns[0] is the primary key, a TEXT ID
	// fields returns T's fields in column order, each usable both as a query
	// argument and as a Scan destination.
	fields func(*T) []any
	order  string // ORDER BY clause for lists
	// missing is the ENOTFOUND of a missing ID; nil for a generic one.
	missing func(id string) error
}

func (t *table[T]) selectFrom() string {
	return "SELECT " + strings.Join(t.columns, ", ") + " FROM " + t.name
}

func (t *table[T]) notFound(id string) error {
	if t.missing != nil {
		return t.missing(id)
	}
	return trustack.Errorf(trustack.ENOTFOUND, "Could not find %s: %s.", t.kind, id)
}

// get returns the row with the given ID, or ENOTFOUND.
func (t *table[T]) get(ctx context.Context, q querier, id string) (*T, error) {
	return t.getSQL(ctx, q, id, "")
}

// getSQL is get with a suffix for the query, such as FOR UPDATE.
func (t *table[T]) getSQL(ctx context.Context, q querier, id, suffix string) (*T, error) {
	v := new(T)
	err := q.QueryRowContext(ctx, t.selectFrom()+" WHERE "+t.columns[0]+" = $1"+suffix, id).Scan(t.fields(v)...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, t.notFound(id)
	}
	if err != nil {
		return nil, fmt.Errorf("get %s %s: %w", t.kind, id, err)
	}
	return v, nil
}

// list returns the rows matching w, in the table's order.
func (t *table[T]) list(ctx context.Context, q querier, w where) ([]*T, error) {
	return t.listSQL(ctx, q, w, "")
}

// listSQL is list with a suffix for the query, such as FOR UPDATE.
func (t *table[T]) listSQL(ctx context.Context, q querier, w where, suffix string) ([]*T, error) {
	rows, err := q.QueryContext(ctx, t.selectFrom()+w.sql()+" ORDER BY "+t.order+suffix, w.args...)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", t.kind, err)
	}
	defer rows.Close()
	var out []*T
	for rows.Next() {
		v := new(T)
		if err := rows.Scan(t.fields(v)...); err != nil {
			return nil, fmt.Errorf("list %s: %w", t.kind, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list %s: %w", t.kind, err)
	}
	return out, nil
}

// insert adds v; a duplicate gives ECONFLICT.
func (t *table[T]) insert(ctx context.Context, q querier, v *T) error {
	if err := t.add(ctx, q, v); err != nil {
		return fmt.Errorf("create %s: %w", t.kind, conflict(t.kind, err))
	}
	return nil
}

// add adds v and returns a violated constraint as a *constraintError,
// for callers that name what was violated themselves.
func (t *table[T]) add(ctx context.Context, q querier, v *T) error {
	_, err := q.ExecContext(ctx, t.insertInto(), t.fields(v)...)
	return translate(err)
}

// insertInto is the statement that inserts a row, all columns given.
func (t *table[T]) insertInto() string {
	marks := make([]string, len(t.columns))
	for i := range marks {
		marks[i] = fmt.Sprintf("$%d", i+1)
	}
	return "INSERT INTO " + t.name + " (" + strings.Join(t.columns, ", ") + ") VALUES (" + strings.Join(marks, ", ") + ")"
}

// tryAdd adds v unless that would break a uniqueness constraint, and
// reports whether it did. Unlike add it leaves a PostgreSQL transaction
// usable after a duplicate, so that the caller can find out which
// constraint it was and, for a value it chose itself, choose again; a
// violated foreign key is still an error.
func (t *table[T]) tryAdd(ctx context.Context, q querier, v *T) (bool, error) {
	res, err := q.ExecContext(ctx, t.insertInto()+" ON CONFLICT DO NOTHING", t.fields(v)...)
	if err != nil {
		return false, translate(err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// update reads the row with the given ID, lets fn change it and writes it
// back, all in one transaction. fn may not change the ID; an error from fn
// aborts the update and is returned as it is.
func (t *table[T]) update(ctx context.Context, db *DB, id string, fn func(*T) error) (*T, error) {
	return t.updateAnd(ctx, db, id, fn, nil)
}

// updateAnd is update that also runs and, unless nil, in the same
// transaction after the write.
func (t *table[T]) updateAnd(ctx context.Context, db *DB, id string, fn func(*T) error, and func(querier) error) (*T, error) {
	var v *T
	err := db.inTx(ctx, func(tx querier) error {
		var err error
		if v, err = t.getSQL(ctx, tx, id, db.lockRow()); err != nil {
			return err
		}
		if err := fn(v); err != nil {
			return err
		}
		if err := t.put(ctx, tx, id, v); err != nil {
			return err
		}
		if and != nil {
			return and(tx)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return v, nil
}

// put writes v over the row with the given ID, in a transaction that read
// it: EINVALID if v's ID is another, ECONFLICT for a violated constraint.
func (t *table[T]) put(ctx context.Context, q querier, id string, v *T) error {
	args := t.fields(v)
	if got := *args[0].(*string); got != id {
		return trustack.Errorf(trustack.EINVALID, "The %s ID cannot be changed.", t.kind)
	}
	sets := make([]string, 0, len(t.columns)-1)
	for i, c := range t.columns[1:] {
		sets = append(sets, fmt.Sprintf("%s = $%d", c, i+2))
	}
	query := "UPDATE " + t.name + " SET " + strings.Join(sets, ", ") + " WHERE " + t.columns[0] + " = $1"
	if _, err := q.ExecContext(ctx, query, args...); err != nil {
		return fmt.Errorf("update %s %s: %w", t.kind, id, conflict(t.kind, translate(err)))
	}
	return nil
}

// delete removes the row with the given ID, or gives ENOTFOUND.
func (t *table[T]) delete(ctx context.Context, q querier, id string) error {
	res, err := q.ExecContext(ctx, "DELETE FROM "+t.name+" WHERE "+t.columns[0]+" = $1", id)
	if err != nil {
		return fmt.Errorf("delete %s %s: %w", t.kind, id, conflict(t.kind, translate(err)))
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return t.notFound(id)
	}
	return nil
}

// where collects the conditions of a query and their arguments.
type where struct {
	conds []string
	args  []any
}

// add appends a condition in which each "?" stands for the next argument.
func (w *where) add(cond string, args ...any) {
	for _, a := range args {
		w.args = append(w.args, a)
		cond = strings.Replace(cond, "?", fmt.Sprintf("$%d", len(w.args)), 1)
	}
	w.conds = append(w.conds, cond)
}

// eq matches column = v when v is not empty.
func (w *where) eq(column, v string) {
	if v != "" {
		w.add(column+" = ?", v)
	}
}

// flag matches column = *v when v is not nil.
func (w *where) flag(column string, v *bool) {
	if v != nil {
		w.add(column+" = ?", *v)
	}
}

// in matches column IN ids when ids is not nil; an empty list matches
// nothing.
func (w *where) in(column string, ids []string) {
	if ids == nil {
		return
	}
	if len(ids) == 0 {
		w.conds = append(w.conds, "1 = 0")
		return
	}
	marks := make([]string, len(ids))
	for i, id := range ids {
		w.args = append(w.args, id)
		marks[i] = fmt.Sprintf("$%d", len(w.args))
	}
	w.conds = append(w.conds, column+" IN ("+strings.Join(marks, ", ")+")")
}

func (w where) sql() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// jsonColumn stores a value as JSON text; an empty value is stored as
// the JSON of T's zero value and read back as T's zero value.
type jsonColumn[T any] struct{ p *T }

func (c jsonColumn[T]) Value() (driver.Value, error) {
	b, err := json.Marshal(*c.p)
	return string(b), err
}

func (c jsonColumn[T]) Scan(src any) error {
	var b []byte
	switch s := src.(type) {
	case string:
		b = []byte(s)
	case []byte:
		b = s
	default:
		return fmt.Errorf("json column: unexpected %T", src)
	}
	var zero T
	*c.p = zero
	if s := string(b); s == "null" || s == "{}" || s == "[]" {
		return nil
	}
	return json.Unmarshal(b, c.p)
}

// extraColumn stores a trustack.Extra as a JSON object.
func extraColumn(p *trustack.Extra) jsonColumn[trustack.Extra] { return jsonColumn[trustack.Extra]{p} }

// timeColumn stores a time as Unix microseconds, the zero time as 0.
type timeColumn struct{ p *time.Time }

func (c timeColumn) Value() (driver.Value, error) {
	if c.p.IsZero() {
		return int64(0), nil
	}
	return c.p.UnixMicro(), nil
}

func (c timeColumn) Scan(src any) error {
	us, ok := src.(int64)
	if !ok {
		return fmt.Errorf("time column: unexpected %T", src)
	}
	*c.p = time.Time{}
	if us != 0 {
		*c.p = time.UnixMicro(us).UTC()
	}
	return nil
}

// nullColumn stores "" as NULL, for optional references.
type nullColumn struct{ p *string }

func (c nullColumn) Value() (driver.Value, error) {
	if *c.p == "" {
		return nil, nil
	}
	return *c.p, nil
}

func (c nullColumn) Scan(src any) error {
	var s sql.NullString
	if err := s.Scan(src); err != nil {
		return err
	}
	*c.p = s.String
	return nil
}

// optionalColumn is a text column that may be NULL, as nil, told apart
// from "".
type optionalColumn struct{ p **string }

func (c optionalColumn) Value() (driver.Value, error) {
	if *c.p == nil {
		return nil, nil
	}
	return **c.p, nil
}

func (c optionalColumn) Scan(src any) error {
	var s sql.NullString
	if err := s.Scan(src); err != nil {
		return err
	}
	*c.p = nil
	if s.Valid {
		*c.p = &s.String
	}
	return nil
}

// bytesColumn stores bytes as a blob, none as an empty one (a nil []byte
// would be NULL), and reads an empty one back as nil.
type bytesColumn struct{ p *[]byte }

func (c bytesColumn) Value() (driver.Value, error) {
	if len(*c.p) == 0 {
		return []byte{}, nil
	}
	return *c.p, nil
}

func (c bytesColumn) Scan(src any) error {
	switch s := src.(type) {
	case []byte:
		*c.p = nil
		if len(s) > 0 {
			*c.p = slices.Clone(s) // the driver may reuse s
		}
		return nil
	case string:
		*c.p = nil
		if s != "" {
			*c.p = []byte(s)
		}
		return nil
	default:
		return fmt.Errorf("bytes column: unexpected %T", src)
	}
}
