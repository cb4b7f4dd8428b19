package network

import (
	"cmp"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// kind is what an attribute holds, as its rendering says, for filters
// and sorting.
type kind int

const (
	kindScalar kind = iota // a string, an integer, or null
	kindBool               // true or false
	kindTexts              // a list of strings
	kindOther              // an object or a list of objects
)

// kindsOf returns the kind of each attribute of a rendering.
func kindsOf(obj object) map[string]kind {
	out := map[string]kind{}
	for k, v := range obj {
		switch v.(type) {
		case string, int, nil:
			out[k] = kindScalar
		case bool:
			out[k] = kindBool
		case []string:
			out[k] = kindTexts
		default:
			out[k] = kindOther
		}
	}
	return out
}

// sortKey is one key of a sort, and its direction.
type sortKey struct {
	attr string
	asc  bool
}

// listQuery is a parsed GET of a collection, with Neutron's fields,
// filters, sorting and pagination.
type listQuery struct {
	fields  []string // nil for all
	filters []func(object) bool
	sorts   []sortKey
	limit   int // 0 for every item
	marker  string
	reverse bool
}

// Query parameters that are not filters.
var pagingParams = []string{"fields", "sort_key", "sort_dir", "limit", "marker", "page_reverse"}

// parseQuery reads the query of a GET of a collection whose attributes
// are of kinds, as Neutron does: fields (repeatable), a filter on any
// attribute (repeated for any of the values), tags, tags-any, not-tags
// and not-tags-any (comma-separated), fixed_ips=ip_address=A,
// fixed_ips=subnet_id=S and fixed_ips=ip_address_substr=T on ports,
// sort_key and sort_dir pairs, limit, marker and page_reverse. A filter or a sort key that is not an
// attribute, or a value of the wrong kind, is a 400.
func parseQuery(q url.Values, kinds map[string]kind) (*listQuery, error) {
	lq := &listQuery{fields: q["fields"], marker: q.Get("marker")}
	var invalid []string
	for _, attr := range slices.Sorted(maps.Keys(q)) {
		values := q[attr]
		if slices.Contains(pagingParams, attr) {
			continue
		}
		if f, ok := tagFilter(attr, values); ok {
			lq.filters = append(lq.filters, f)
			continue
		}
		k, known := kinds[attr]
		if attr == "fixed_ips" && known {
			f, err := fixedIPFilter(values)
			if err != nil {
				return nil, err
			}
			lq.filters = append(lq.filters, f)
			continue
		}
		if !known || k == kindOther {
			invalid = append(invalid, attr)
			continue
		}
		f, err := valueFilter(attr, k, values)
		if err != nil {
			return nil, err
		}
		lq.filters = append(lq.filters, f)
	}
	if len(invalid) > 0 {
		return nil, badRequest("%s is invalid attribute for filtering", pyList(invalid))
	}
	if err := lq.parseSorts(q, kinds); err != nil {
		return nil, err
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return nil, badRequest("Limit must be an integer 0 or greater and not '%s'", s)
		}
		lq.limit = n
	}
	if s := q.Get("page_reverse"); s != "" {
		b, ok := boolOf(s)
		if !ok {
			return nil, invalidInput("'%s' cannot be converted to boolean", s)
		}
		lq.reverse = b
	}
	return lq, nil
}

// pyList writes names as Python writes a list of strings, as Neutron's
// messages show them.
func pyList(names []string) string {
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = "'" + n + "'"
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}

// valueFilter keeps the items whose attribute is one of values, read as
// the attribute's kind: a boolean (True, false, 1), or text compared with
// a string, a number, or any string of a list.
func valueFilter(attr string, k kind, values []string) (func(object) bool, error) {
	var bools []bool
	if k == kindBool {
		for _, s := range values {
			b, ok := boolOf(s)
			if !ok {
				return nil, invalidInput("'%s' cannot be converted to boolean", s)
			}
			bools = append(bools, b)
		}
	}
	return func(obj object) bool {
		switch v := obj[attr].(type) {
		case bool:
			return slices.Contains(bools, v)
		case string:
			return slices.Contains(values, v)
		case int:
			return slices.Contains(values, strconv.Itoa(v))
		case []string:
			return slices.ContainsFunc(v, func(s string) bool { return slices.Contains(values, s) })
		}
		return false
	}, nil
}

// tagFilter returns the filter of Neutron's tag parameters: tags (all
// of), tags-any, not-tags (not all of) and not-tags-any.
func tagFilter(param string, values []string) (func(object) bool, bool) {
	var want []string
	for _, v := range values {
		want = append(want, strings.Split(v, ",")...)
	}
	has := func(obj object) func(string) bool {
		tags, _ := obj["tags"].([]string)
		return func(t string) bool { return slices.Contains(tags, t) }
	}
	all := func(obj object) bool { return !slices.ContainsFunc(want, func(t string) bool { return !has(obj)(t) }) }
	anyOf := func(obj object) bool { return slices.ContainsFunc(want, has(obj)) }
	switch param {
	case "tags":
		return all, true
	case "tags-any":
		return anyOf, true
	case "not-tags":
		return func(obj object) bool { return !all(obj) }, true
	case "not-tags-any":
		return func(obj object) bool { return !anyOf(obj) }, true
	}
	return nil, false
}

// fixedIPFilter keeps the ports with a fixed IP that has what each key
// asks for: one of the addresses (fixed_ips=ip_address=A), one of the
// subnets (fixed_ips=subnet_id=S), an address of which one of the texts
// is a part (fixed_ips=ip_address_substr=T, the ip-substring-filtering
// extension).
func fixedIPFilter(values []string) (func(object) bool, error) {
	want := map[string][]string{}
	for _, v := range values {
		key, value, _ := strings.Cut(v, "=")
		if key != "ip_address" && key != "subnet_id" && key != "ip_address_substr" {
			return nil, badRequest("%s is invalid attribute for filtering", pyList([]string{"fixed_ips." + key}))
		}
		want[key] = append(want[key], value)
	}
	return func(obj object) bool {
		ips, _ := obj["fixed_ips"].([]object)
		return slices.ContainsFunc(ips, func(ip object) bool {
			for key, values := range want {
				attr, match := key, slices.Contains[[]string]
				if key == "ip_address_substr" {
					attr, match = "ip_address", func(texts []string, s string) bool {
						return slices.ContainsFunc(texts, func(t string) bool { return strings.Contains(s, t) })
					}
				}
				if s, _ := ip[attr].(string); !match(values, s) {
					return false
				}
			}
			return true
		})
	}, nil
}

// parseSorts reads sort_key and sort_dir, which Neutron takes in pairs.
func (lq *listQuery) parseSorts(q url.Values, kinds map[string]kind) error {
	keys, dirs := q["sort_key"], q["sort_dir"]
	if len(keys) != len(dirs) {
		return badRequest("The number of sort_keys and sort_dirs must be same")
	}
	var badKeys, badDirs []string
	for i, key := range keys {
		if k, ok := kinds[key]; !ok || k == kindTexts || k == kindOther {
			badKeys = append(badKeys, key)
		}
		if dirs[i] != "asc" && dirs[i] != "desc" {
			badDirs = append(badDirs, dirs[i])
		}
		lq.sorts = append(lq.sorts, sortKey{attr: key, asc: dirs[i] == "asc"})
	}
	if len(badKeys) > 0 {
		return badRequest("%s is invalid attribute for sort_keys", pyList(badKeys))
	}
	if len(badDirs) > 0 {
		return badRequest("%s is invalid value for sort_dirs, valid value is 'asc' and 'desc'", pyList(badDirs))
	}
	return nil
}

// keep returns the views that every filter keeps.
func (lq *listQuery) keep(v view) bool {
	for _, f := range lq.filters {
		if !f(v.obj) {
			return false
		}
	}
	return true
}

// paged reports whether the query asks for a page rather than the whole
// collection.
func (lq *listQuery) paged() bool { return lq.limit > 0 || lq.marker != "" }

// order sorts views as the query asks, then by ID; without sort keys, a
// page is by ID, as Neutron pages, and the whole collection in the
// service's order.
func (lq *listQuery) order(views []view) {
	if len(lq.sorts) == 0 && !lq.paged() {
		return
	}
	keys := append(slices.Clone(lq.sorts), sortKey{attr: "id", asc: true})
	sort.SliceStable(views, func(i, j int) bool {
		for _, k := range keys {
			c := compare(views[i].obj[k.attr], views[j].obj[k.attr])
			if !k.asc {
				c = -c
			}
			if c != 0 {
				return c < 0
			}
		}
		return false
	})
}

// compare orders two attribute values of one kind, null first.
func compare(a, b any) int {
	switch {
	case a == nil || b == nil:
		return cmp.Compare(boolInt(a != nil), boolInt(b != nil))
	}
	switch x := a.(type) {
	case string:
		return cmp.Compare(x, b.(string))
	case int:
		return cmp.Compare(x, b.(int))
	case bool:
		return cmp.Compare(boolInt(x), boolInt(b.(bool)))
	}
	return 0
}

// boolInt orders false before true.
func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// page returns the page of sorted views the query asks for: those after
// the marker (before it with page_reverse), at most limit of them.
// A marker that is not among the views gives absent's error.
func (lq *listQuery) page(views []view, absent func(id string) error) ([]view, error) {
	if lq.marker != "" {
		i := slices.IndexFunc(views, func(v view) bool { return v.obj["id"] == lq.marker })
		switch {
		case i < 0:
			return nil, absent(lq.marker)
		case lq.reverse:
			views = views[:i]
		default:
			views = views[i+1:]
		}
	}
	if lq.limit > 0 && len(views) > lq.limit {
		if lq.reverse {
			views = views[len(views)-lq.limit:]
		} else {
			views = views[:lq.limit]
		}
	}
	return views, nil
}

// links returns Neutron's links to the pages after and before a page of
// a collection, for a query with a limit: next unless a forward page came
// short, previous unless a reverse one did.
func (lq *listQuery) links(r *http.Request, base string, page []view) []object {
	if lq.limit == 0 {
		return nil
	}
	href := func(marker any, reverse bool) string {
		q := r.URL.Query()
		q.Del("marker")
		q.Del("page_reverse")
		if marker != nil {
			q.Set("marker", fmt.Sprint(marker))
		}
		if reverse {
			q.Set("page_reverse", "True")
		}
		return base + r.URL.Path + "?" + q.Encode()
	}
	var first, last any
	if len(page) > 0 {
		first, last = page[0].obj["id"], page[len(page)-1].obj["id"]
	}
	var out []object
	if len(page) >= lq.limit || lq.reverse {
		out = append(out, object{"rel": "next", "href": href(last, false)})
	}
	if len(page) >= lq.limit || !lq.reverse {
		out = append(out, object{"rel": "previous", "href": href(first, true)})
	}
	return out
}

// only returns the attributes of obj that fields names, all without
// fields.
func only(obj object, fields []string) object {
	if len(fields) == 0 {
		return obj
	}
	out := object{}
	for _, f := range fields {
		if v, ok := obj[f]; ok {
			out[f] = v
		}
	}
	return out
}
