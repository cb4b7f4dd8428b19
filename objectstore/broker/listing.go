package broker

import (
	"database/sql"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ListOptions chooses the entries of a listing, as Swift's query
// parameters of the same names do. Names compare as their UTF-8 bytes.
type ListOptions struct {
	Prefix    string // only names that start with it
	Delimiter string // if set, fold the names that hold it after Prefix into subdirs
	Marker    string // only names after it (before it, if Reverse)
	EndMarker string // only names before it (after it, if Reverse)
	Limit     int    // the most entries; none if not positive
	Reverse   bool   // in descending order
}

// ParseListOptions reads ListOptions from a listing's query: prefix,
// delimiter, marker, end_marker, limit (max if absent) and reverse. An
// error comes with the HTTP status that answers it, as Swift's: 400 for
// a string not UTF-8, 412 for a limit over max or a delimiter of more
// than one character.
func ParseListOptions(q url.Values, max int) (ListOptions, int, error) {
	o := ListOptions{Prefix: q.Get("prefix"), Delimiter: q.Get("delimiter"), Marker: q.Get("marker"),
		EndMarker: q.Get("end_marker"), Limit: max}
	if !utf8.ValidString(o.Prefix+o.Delimiter+o.Marker+o.EndMarker) || strings.ContainsRune(o.Prefix+o.Delimiter+o.Marker+o.EndMarker, 0) {
		return o, http.StatusBadRequest, fmt.Errorf("invalid UTF-8 or contains NUL")
	}
	if utf8.RuneCountInString(o.Delimiter) > 1 {
		return o, http.StatusPreconditionFailed, fmt.Errorf("bad delimiter %q: one character at most", o.Delimiter)
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > max {
			return o, http.StatusPreconditionFailed, fmt.Errorf("limit: want 0 to %d", max)
		}
		o.Limit = n
	}
	switch strings.ToLower(q.Get("reverse")) {
	case "true", "1", "yes", "on", "t", "y":
		o.Reverse = true
	}
	return o, 0, nil
}

// listRows lists the live rows of table as o chooses, reading each with
// scan (of cols) and making subdirs with subdir. Each query seeks through
// the (deleted, name) index and reads only what it returns, and a subdir
// is skipped past in one, so a subdir of a million names costs a query,
// not a million rows.
func listRows[T any](q *sql.DB, table, cols string, o ListOptions, scan func(*sql.Rows) (T, error), name func(T) string, subdir func(string) T) ([]T, error) {
	// lo and hi bound the names still to list, exclusive unless loIncl;
	// "" is no bound.
	lo, hi, loIncl := o.Marker, o.EndMarker, false
	if o.Reverse {
		lo, hi = o.EndMarker, o.Marker
	}
	if o.Prefix != "" {
		if lo < o.Prefix {
			lo, loIncl = o.Prefix, true
		}
		if end, ok := after(o.Prefix); ok && (hi == "" || end < hi) {
			hi = end
		}
	}
	var out []T
	for len(out) < o.Limit {
		stmt, args := listQuery(table, cols, lo, hi, loIncl, o.Reverse)
		rows, err := q.Query(stmt, append(args, o.Limit-len(out))...)
		if err != nil {
			return nil, err
		}
		dir := ""
		for dir == "" && rows.Next() {
			r, err := scan(rows)
			if err != nil {
				rows.Close()
				return nil, err
			}
			if i := strings.Index(name(r)[len(o.Prefix):], o.Delimiter); o.Delimiter != "" && i >= 0 {
				dir = name(r)[:len(o.Prefix)+i+len(o.Delimiter)]
			} else {
				out = append(out, r)
			}
		}
		if rows.Close(); rows.Err() != nil || dir == "" { // the page holds all there is, or fills the listing
			return out, rows.Err()
		}
		if dir != o.Marker { // else the last page ended with it
			out = append(out, subdir(dir))
		}
		next, ok := after(dir)
		switch {
		case o.Reverse:
			hi = dir
		case !ok:
			return out, nil
		default:
			lo, loIncl = next, true
		}
	}
	return out, nil
}

// listQuery is the query of a listing's page of names between lo and hi,
// which takes the page's size as its last argument.
func listQuery(table, cols, lo, hi string, loIncl, reverse bool) (string, []any) {
	stmt, args := "SELECT "+cols+" FROM "+table+" WHERE deleted = 0", []any{}
	if lo != "" && loIncl {
		stmt, args = stmt+" AND name >= ?", append(args, lo)
	} else if lo != "" {
		stmt, args = stmt+" AND name > ?", append(args, lo)
	}
	if hi != "" {
		stmt, args = stmt+" AND name < ?", append(args, hi)
	}
	if reverse {
		return stmt + " ORDER BY name DESC LIMIT ?", args
	}
	return stmt + " ORDER BY name LIMIT ?", args
}

// after returns the least string greater than every string that starts
// with s; false if there is none (s is all 0xff bytes).
func after(s string) (string, bool) {
	b := []byte(s)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1]), true
		}
	}
	return "", false
}
