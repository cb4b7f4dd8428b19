package volume

import (
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/api/openstack"
)

// Resource filters: what each list takes in its query (Cinder's generalized
// filters, 3.31 and later), served as GET /resource_filters from 3.33.

// listFilter is a query parameter that selects the items of a list.
type listFilter struct {
	key string
	// since is the microversion 3.since from which the list takes the
	// key; below it the key is ignored, as Cinder drops it.
	since int
	// like is whether, from 3.34, key~=value selects the items whose key
	// has value in it (an inexact match, as SQL's LIKE '%value%').
	like bool
}

// likeVersion is the microversion from which lists take key~ filters.
const likeVersion = 34

// resourceFilters are the filters of each list trustack serves, by
// Cinder's name of its resource. Each list's handler checks its query
// with listQuery against its row, and GET /resource_filters answers the
// rows, so a list that takes a new filter adds it here. The like keys
// are the string attributes Cinder's database matches with LIKE among
// those trustack filters on.
var resourceFilters = map[string][]listFilter{
	"volume": {
		{key: "all_tenants"}, {key: "project_id"},
		{key: "name", like: true}, {key: "status", like: true}, {key: "availability_zone", like: true},
		{key: "metadata"}, {key: "bootable"}, {key: "volume_type"},
		{key: "glance_metadata", since: 4},
		{key: "group_id", since: 10},
	},
	"snapshot": {
		{key: "all_tenants"}, {key: "project_id"},
		{key: "name", like: true}, {key: "status", like: true},
		{key: "volume_id"},
		{key: "metadata", since: 22},
	},
	"message": {
		{key: "resource_uuid", like: true}, {key: "resource_type", like: true}, {key: "event_id", like: true},
		{key: "request_id", like: true}, {key: "message_level", like: true},
	},
	"attachment": {
		{key: "all_tenants"}, {key: "project_id"},
		{key: "volume_id", like: true}, {key: "instance_id", like: true}, {key: "status", like: true}, {key: "attach_status", like: true},
	},
}

// resourceFilterRoutes serves GET /resource_filters.
func (h *handler) resourceFilterRoutes() {
	h.api.Private("GET "+v3+"/resource_filters", h.resourceFilters)
}

// resourceFilters lists the filters of each list (or of the one that
// ?resource= names; none for a resource trustack has no list of), as the
// request's microversion has them: Cinder's notation, key~ for a key
// that also takes inexact matches. Cinder has no rule for it: anyone
// with a token may ask.
func (h *handler) resourceFilters(w http.ResponseWriter, r *http.Request) error {
	if !atLeast(r, 33) {
		return noSuchAPI(r)
	}
	if _, err := h.caller(r); err != nil {
		return err
	}
	want := r.URL.Query().Get("resource")
	out := []object{}
	for _, resource := range slices.Sorted(maps.Keys(resourceFilters)) {
		if want != "" && resource != want {
			continue
		}
		out = append(out, object{"resource": resource, "filters": advertisedFilters(r, resourceFilters[resource])})
	}
	return reply(w, http.StatusOK, object{"resource_filters": out})
}

// advertisedFilters are the keys of filters the request's microversion
// has, all_tenants aside (it widens a list rather than filtering it, and
// Cinder leaves it out as well).
func advertisedFilters(r *http.Request, filters []listFilter) []string {
	keys := []string{}
	for _, f := range filters {
		switch {
		case f.key == "all_tenants" || !atLeast(r, f.since):
		case f.like && atLeast(r, likeVersion):
			keys = append(keys, f.key+"~")
		default:
			keys = append(keys, f.key)
		}
	}
	return keys
}

// listQuery checks a list's query against the filters of its resource at
// the request's microversion: EINVALID for a key that is neither a filter
// nor a parameter of pages and sorting. It returns the query without the
// filters the version does not have yet (ignored, as Cinder ignores them)
// and without the key~ filters, which it returns apart: the substrings
// that each key must have.
func listQuery(r *http.Request, resource string) (url.Values, map[string]string, error) {
	filters := resourceFilters[resource]
	find := func(key string) (listFilter, bool) {
		i := slices.IndexFunc(filters, func(f listFilter) bool { return f.key == key })
		if i < 0 {
			return listFilter{}, false
		}
		return filters[i], true
	}
	q := r.URL.Query()
	like := map[string]string{}
	for key := range r.URL.Query() {
		if slices.Contains(pageParams, key) {
			continue
		}
		if base, ok := strings.CutSuffix(key, "~"); ok {
			if f, ok := find(base); ok && f.like && atLeast(r, likeVersion) && atLeast(r, f.since) {
				like[base] = q.Get(key)
				q.Del(key)
				continue
			}
		} else if f, ok := find(key); ok {
			if !atLeast(r, f.since) {
				q.Del(key)
			}
			continue
		}
		return nil, nil, trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Invalid input received: Invalid filter keys: %s (there are %s).",
			key, strings.Join(append(advertisedFilters(r, filters), pageParams...), ", "))
	}
	return q, like, nil
}

// matchesLike reports whether an item's attributes (as attr gives them,
// by filter key) have the substrings of like in them.
func matchesLike(like map[string]string, attr func(key string) string) bool {
	for key, part := range like {
		if !strings.Contains(attr(key), part) {
			return false
		}
	}
	return true
}

// noSuchAPI is what Cinder answers for an API the request's microversion
// does not have: 404.
func noSuchAPI(r *http.Request) error {
	return trustack.Reasonf(trustack.ENOTFOUND, "VersionNotFoundForAPIMethod", "API version %s does not have %s %s.", openstack.MicroversionOf(r), r.Method, r.URL.Path)
}
