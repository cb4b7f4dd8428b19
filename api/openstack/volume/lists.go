package volume

import (
	"cmp"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/trustack/trustack"
)

// Lists of volumes and snapshots: sorted and paged as Cinder's.

// maxLimit is the most items a page has, as Cinder's osapi_max_limit.
const maxLimit = 1000

// pageParams are the parameters of a list's sorting and pages.
var pageParams = []string{"limit", "marker", "offset", "sort", "sort_key", "sort_dir"}

// answerList sorts a list as the query q asks (by keys), and answers its
// page as the collection, each item rendered by render, with the link to
// the next page (whose query is the request's, filters included).
func answerList[T any](w http.ResponseWriter, r *http.Request, vs *views, collection string, detail bool, list []T, q url.Values,
	keys map[string]func(a, b T) int, id func(T) string, render func(T) object) error {
	if err := sortList(list, q, keys); err != nil {
		return err
	}
	page, next, err := pageOf(list, q, id)
	if err != nil {
		return err
	}
	out := make([]object, len(page))
	for i, item := range page {
		out[i] = render(item)
	}
	return reply(w, http.StatusOK, vs.page(collection, detail, out, r.URL.Query(), next))
}

// page is a page of a collection, with the link to the next page if
// next names its marker.
func (vs *views) page(collection string, detail bool, items []object, q url.Values, next string) object {
	body := object{collection: items}
	if next != "" {
		q.Set("marker", next)
		q.Del("offset")
		path := "/" + collection
		if detail {
			path += "/detail"
		}
		body[collection+"_links"] = []object{{"rel": "next", "href": vs.base + path + "?" + q.Encode()}}
	}
	return body
}

// sortList sorts a list as sort (key:dir,...) or sort_key and sort_dir
// say, by keys, newest first by default and descending where no direction is
// given, as Cinder's, the ID breaking ties.
func sortList[T any](list []T, q url.Values, keys map[string]func(a, b T) int) error {
	type order struct {
		key  string
		desc bool
	}
	var orders []order
	switch {
	case q.Has("sort") && (q.Has("sort_key") || q.Has("sort_dir")):
		return trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Invalid input received: sort cannot go with sort_key or sort_dir.")
	case q.Has("sort"):
		for _, item := range strings.Split(q.Get("sort"), ",") {
			key, dir, _ := strings.Cut(strings.TrimSpace(item), ":")
			orders = append(orders, order{key, dir != "asc"})
			if dir != "" && dir != "asc" && dir != "desc" {
				return trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Invalid input received: sort direction %q is not asc or desc.", dir)
			}
		}
	default:
		dir := cmp.Or(q.Get("sort_dir"), "desc")
		if dir != "asc" && dir != "desc" {
			return trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Invalid input received: sort_dir %q is not asc or desc.", dir)
		}
		orders = append(orders, order{cmp.Or(q.Get("sort_key"), "created_at"), dir == "desc"})
	}
	orders = append(orders, order{"id", orders[len(orders)-1].desc})
	for i, o := range orders {
		if o.key == "display_name" && keys["display_name"] == nil { // Cinder's older name of name
			orders[i].key = "name"
		}
		if keys[orders[i].key] == nil {
			return trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Invalid input received: cannot sort by %q.", o.key)
		}
	}
	slices.SortStableFunc(list, func(a, b T) int {
		for _, o := range orders {
			c := keys[o.key](a, b)
			if o.desc {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		return 0
	})
	return nil
}

// pageOf returns the page of a sorted list that marker (the ID of the
// item before it), offset and limit select, and the marker of the next page if this
// one is full.
func pageOf[T any](list []T, q url.Values, id func(T) string) (page []T, next string, err error) {
	if m := q.Get("marker"); m != "" {
		i := slices.IndexFunc(list, func(v T) bool { return id(v) == m })
		if i < 0 {
			return nil, "", trustack.Reasonf(trustack.ENOTFOUND, "MarkerNotFound", "Marker %s could not be found.", m)
		}
		list = list[i+1:]
	}
	if q.Has("offset") {
		n, err := strconv.Atoi(q.Get("offset"))
		if err != nil || n < 0 {
			return nil, "", trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Invalid input received: offset must be a whole number, not %q.", q.Get("offset"))
		}
		list = list[min(n, len(list)):]
	}
	limit := maxLimit
	if q.Has("limit") {
		n, err := strconv.Atoi(q.Get("limit"))
		if err != nil || n < 0 {
			return nil, "", trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Invalid input received: limit must be a whole number, not %q.", q.Get("limit"))
		}
		limit = min(n, maxLimit)
	}
	// A full page links to the next, even if that one is empty, as
	// Cinder's do.
	if len(list) >= limit && (limit < maxLimit || len(list) > limit) {
		list = list[:limit]
		if limit > 0 {
			next = id(list[limit-1])
		}
	}
	return list, next, nil
}
