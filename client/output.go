package client

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/trustack/trustack"
)

// Format is how results are written: FormatTable or FormatJSON.
type Format string

// Formats.
const (
	// FormatTable writes aligned columns: one row per resource for lists,
	// one row per field for a single resource.
	FormatTable Format = "table"
	// FormatJSON writes a JSON object for a resource and an array of
	// objects for a list, with the fields the table has.
	FormatJSON Format = "json"
)

// ParseFormat returns the format named s; EINVALID if there is none.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case FormatTable, FormatJSON:
		return f, nil
	}
	return "", trustack.Errorf(trustack.EINVALID, "unknown format %q: want table or json", s)
}

// field is a named value of a record.
type field struct {
	name  string
	value any
}

// record is one resource: its fields, in the order they are shown.
type record []field

// MarshalJSON writes the record as an object with its fields in order.
func (r record) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range r {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(f.name)
		v, err := json.Marshal(f.value)
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", f.name, err)
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// table is a list of resources with the same fields.
type table struct {
	columns []string
	rows    [][]any
}

func (t *table) add(values ...any) { t.rows = append(t.rows, values) }

// MarshalJSON writes the table as an array of objects keyed by column.
func (t *table) MarshalJSON() ([]byte, error) {
	list := make([]record, len(t.rows))
	for i, row := range t.rows {
		list[i] = make(record, len(t.columns))
		for j, c := range t.columns {
			list[i][j] = field{c, row[j]}
		}
	}
	return json.Marshal(list)
}

// named is a reference to another resource, shown as "name (id)" in
// tables and as {"id", "name"} in JSON.
type named struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
}

func (n named) String() string {
	if n.Name == "" {
		return n.ID
	}
	return n.Name + " (" + n.ID + ")"
}

// show writes one resource.
func (c *Client) show(r record) error {
	if c.out.Format == FormatJSON {
		return writeJSON(c.out.Out, r)
	}
	w := tabwriter.NewWriter(c.out.Out, 0, 0, 2, ' ', 0)
	for _, f := range r {
		fmt.Fprintf(w, "%s\t%s\n", f.name, cell(f.value))
	}
	return w.Flush()
}

// list writes a list of resources.
func (c *Client) list(t *table) error {
	if c.out.Format == FormatJSON {
		return writeJSON(c.out.Out, t)
	}
	w := tabwriter.NewWriter(c.out.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, strings.Join(t.columns, "\t"))
	for _, row := range t.rows {
		cells := make([]string, len(row))
		for i, v := range row {
			cells[i] = cell(v)
		}
		fmt.Fprintln(w, strings.Join(cells, "\t"))
	}
	return w.Flush()
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// cell renders a value on one line of a table: maps as k='v' pairs in key
// order (as the OpenStack CLI shows properties), lists of strings joined
// by commas, other lists (of pools, routes, addresses, which have commas
// of their own) by semicolons, nothing for nil.
func cell(v any) string {
	var s string
	switch v := v.(type) {
	case nil:
	case string:
		s = v
	case map[string]string:
		pairs := make([]string, 0, len(v))
		for _, k := range slices.Sorted(maps.Keys(v)) {
			pairs = append(pairs, fmt.Sprintf("%s='%s'", k, v[k]))
		}
		s = strings.Join(pairs, ", ")
	case []string:
		s = strings.Join(v, ", ")
	default:
		if rv := reflect.ValueOf(v); rv.Kind() == reflect.Slice {
			items := make([]string, rv.Len())
			for i := range items {
				items[i] = cell(rv.Index(i).Interface())
			}
			s = strings.Join(items, "; ")
		} else {
			s = fmt.Sprint(v)
		}
	}
	return strings.NewReplacer("\t", " ", "\r", " ", "\n", " ").Replace(s)
}
