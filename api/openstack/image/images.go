package image

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/api/openstack"
	"github.com/trustack/trustack/policy"
)

// Glance's limit_param_default and api_limit_max.
const (
	defaultLimit = 25
	maxLimit     = 1000
)

var sortKeys = []string{"name", "status", "container_format", "disk_format", "size", "id", "created_at", "updated_at"}

// listQuery is a parsed GET /v2/images.
type listQuery struct {
	filter trustack.ImageFilter
	limit  int
}

// parseList reads the query of GET /v2/images as Glance does: limit,
// marker, member_status, tag (repeatable), sort or sort_key/sort_dir,
// the filters on attributes, and any other parameter as a filter on a
// property.
func parseList(q url.Values) (listQuery, error) {
	lq := listQuery{limit: defaultLimit}
	f := &lq.filter
	if q.Has("limit") {
		n, err := strconv.Atoi(q.Get("limit"))
		if err != nil {
			return lq, invalid("limit param must be an integer")
		}
		if n < 0 {
			return lq, invalid("limit param must be positive")
		}
		lq.limit = min(n, maxLimit)
	}
	f.Marker = q.Get("marker")
	f.MemberStatus = q.Get("member_status")
	if f.MemberStatus != "" && !slices.Contains([]string{trustack.MemberPending, trustack.MemberAccepted, trustack.MemberRejected, "all"}, f.MemberStatus) {
		return lq, invalid("Invalid status: %s", f.MemberStatus)
	}
	for _, t := range q["tag"] {
		f.Tags = append(f.Tags, strings.TrimSpace(t))
	}
	var err error
	if f.Sort, err = parseSort(q); err != nil {
		return lq, err
	}
	f.Visibility = q.Get("visibility")
	if f.Visibility != "" && !slices.Contains([]string{"community", "public", "private", "shared", "all"}, f.Visibility) {
		return lq, invalid("Invalid visibility value: %s", f.Visibility)
	}
	for _, b := range []struct {
		name string
		dst  **bool
	}{{"os_hidden", &f.Hidden}, {"protected", &f.Protected}} {
		if !q.Has(b.name) {
			continue
		}
		switch v := strings.ToLower(q.Get(b.name)); v {
		case "true", "false":
			yes := v == "true"
			*b.dst = &yes
		default:
			return lq, invalid("Invalid value '%s' for '%s' filter. Valid values are 'true' or 'false'.", q.Get(b.name), b.name)
		}
	}
	for _, r := range []struct {
		name string
		dst  []**int64
	}{{"size_min", []**int64{&f.SizeMin}}, {"size_max", []**int64{&f.SizeMax}}, {"size", []**int64{&f.SizeMin, &f.SizeMax}}} {
		if !q.Has(r.name) {
			continue
		}
		n, err := strconv.ParseInt(q.Get(r.name), 10, 64)
		if err != nil {
			return lq, invalid("Unable to filter on a range with a non-numeric value.")
		}
		for _, d := range r.dst {
			*d = &n
		}
	}
	if q.Has("changes-since") {
		return lq, invalid(`The "changes-since" filter is no longer available on v2.`)
	}
	f.Name, f.Status, f.Owner = q.Get("name"), q.Get("status"), q.Get("owner")
	f.DiskFormat, f.ContainerFormat = q.Get("disk_format"), q.Get("container_format")
	f.Checksum, f.HashValue = q.Get("checksum"), q.Get("os_hash_value")
	if q.Has("id") {
		f.IDs = []string{q.Get("id")}
	}
	known := []string{"limit", "marker", "member_status", "tag", "sort", "sort_key", "sort_dir", "visibility", "os_hidden", "protected",
		"size_min", "size_max", "size", "name", "status", "owner", "disk_format", "container_format", "checksum", "os_hash_value", "id"}
	for k := range q {
		if !slices.Contains(known, k) {
			if f.Properties == nil {
				f.Properties = map[string]string{}
			}
			f.Properties[k] = q.Get(k)
		}
	}
	return lq, nil
}

// parseSort reads sort=key:dir,key:dir or the classic sort_key and
// sort_dir (one direction for every key, or one per key); without either,
// newest first.
func parseSort(q url.Values) ([]trustack.ImageSort, error) {
	key := func(k string) (string, error) {
		k = strings.TrimSpace(k)
		if !slices.Contains(sortKeys, k) {
			return "", invalid("Invalid sort key: %s. It must be one of the following: %s.", k, strings.Join(sortKeys, ", "))
		}
		return k, nil
	}
	desc := func(d string) (bool, error) {
		switch strings.TrimSpace(d) {
		case "asc":
			return false, nil
		case "desc", "":
			return true, nil
		}
		return false, invalid("Invalid sort direction: %s", d)
	}
	var out []trustack.ImageSort
	if q.Has("sort") {
		if q.Has("sort_key") || q.Has("sort_dir") {
			return nil, invalid("Old and new sorting syntax cannot be combined")
		}
		for _, part := range strings.Split(strings.TrimSpace(q.Get("sort")), ",") {
			k, d, _ := strings.Cut(part, ":")
			s, err := key(k)
			if err != nil {
				return nil, err
			}
			dsc, err := desc(d)
			if err != nil {
				return nil, err
			}
			out = append(out, trustack.ImageSort{Key: s, Desc: dsc})
		}
		return out, nil
	}
	dirs := q["sort_dir"]
	if len(dirs) > 1 && len(dirs) != len(q["sort_key"]) {
		return nil, invalid("Number of sort dirs does not match the number of sort keys")
	}
	for i, k := range q["sort_key"] {
		s, err := key(k)
		if err != nil {
			return nil, err
		}
		d := ""
		if len(dirs) == 1 {
			d = dirs[0]
		} else if len(dirs) > 1 {
			d = dirs[i]
		}
		dsc, err := desc(d)
		if err != nil {
			return nil, err
		}
		out = append(out, trustack.ImageSort{Key: s, Desc: dsc})
	}
	if len(out) == 0 && len(dirs) == 1 {
		dsc, err := desc(dirs[0])
		if err != nil {
			return nil, err
		}
		out = []trustack.ImageSort{{Key: "created_at", Desc: dsc}}
	}
	return out, nil
}

func (h *handler) listImages(w http.ResponseWriter, r *http.Request) error {
	c := h.caller(r)
	if err := h.api.Authorize(r, "get_images", policy.Target{"project_id": c.ProjectID}); err != nil {
		return err
	}
	query := r.URL.Query()
	lq, err := parseList(query)
	if err != nil {
		return err
	}
	var list []*trustack.Image
	if lq.limit > 0 {
		lq.filter.Limit = lq.limit
		if list, err = h.svc.Images(r.Context(), c, lq.filter); err != nil {
			return err
		}
	}
	views := make([]object, 0, len(list))
	for _, img := range list {
		// Listed shared images of other projects are there by membership.
		member := ""
		if img.Visibility == trustack.VisibilityShared && img.Owner != c.ProjectID {
			member = c.ProjectID
		}
		if h.api.Allowed(r, "get_image", target(img, member)) {
			views = append(views, imageView(img))
		}
	}
	query.Del("marker")
	body := object{"images": views, "first": "/v2/images", "schema": "/v2/schemas/images"}
	if len(query) > 0 {
		body["first"] = "/v2/images?" + query.Encode()
	}
	// Glance links to a next page whenever this one is full.
	if lq.limit > 0 && len(list) == lq.limit {
		query.Set("marker", list[len(list)-1].ID)
		body["next"] = "/v2/images?" + query.Encode()
	}
	openstack.JSON(w, http.StatusOK, body)
	return nil
}

func (h *handler) showImage(w http.ResponseWriter, r *http.Request) error {
	img, err := h.image(r, h.caller(r), "get_image")
	if err != nil {
		return err
	}
	openstack.JSON(w, http.StatusOK, imageView(img))
	return nil
}

// authorizeVisibility asks the policy for the rule that making an image
// public or community needs.
func (h *handler) authorizeVisibility(r *http.Request, img *trustack.Image, visibility string) error {
	switch visibility {
	case trustack.VisibilityPublic:
		return h.authorize(r, "publicize_image", img, "")
	case trustack.VisibilityCommunity:
		return h.authorize(r, "communitize_image", img, "")
	}
	return nil
}

func (h *handler) createImage(w http.ResponseWriter, r *http.Request) error {
	c := h.caller(r)
	body, err := h.dec.Body(r)
	if err != nil {
		return err
	}
	img, err := decodeCreate(body)
	if err != nil {
		return err
	}
	if img.Owner == "" {
		img.Owner = c.ProjectID
	}
	t := target(img, "")
	if err := h.api.Authorize(r, "add_image", t); err != nil {
		return err
	}
	switch img.Visibility {
	case trustack.VisibilityPublic:
		err = h.api.Authorize(r, "publicize_image", t)
	case trustack.VisibilityCommunity:
		err = h.api.Authorize(r, "communitize_image", t)
	}
	if err != nil {
		return err
	}
	if err := h.svc.Create(r.Context(), c, img); err != nil {
		return limitError(err)
	}
	w.Header().Set("Location", h.base+"/v2/images/"+img.ID)
	openstack.JSON(w, http.StatusCreated, imageView(img))
	return nil
}

// readBody reads a request body of a media type that Decoder does not
// take, with its size bound.
func (h *handler) readBody(r *http.Request) ([]byte, error) {
	limit := h.dec.MaxBodySize
	if limit <= 0 {
		limit = openstack.DefaultMaxBodySize
	}
	tooLarge := &openstack.HTTPError{Status: http.StatusRequestEntityTooLarge,
		Message: fmt.Sprintf("Request is too large: the body may have at most %d bytes.", limit)}
	if r.ContentLength > limit {
		return nil, tooLarge
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, invalid("The request body could not be read: %v.", err)
	}
	if int64(len(body)) > limit {
		return nil, tooLarge
	}
	return body, nil
}

func (h *handler) updateImage(w http.ResponseWriter, r *http.Request) error {
	c := h.caller(r)
	body, err := h.readBody(r)
	if err != nil {
		return err
	}
	ops, err := decodePatch(r.Header.Get("Content-Type"), body)
	if he := (*openstack.HTTPError)(nil); errors.As(err, &he) && he.Status == http.StatusUnsupportedMediaType {
		w.Header().Set("Accept-Patch", acceptPatch)
	}
	if err != nil {
		return err
	}
	img, err := h.image(r, c, "modify_image")
	if err != nil {
		return err
	}
	for _, op := range ops {
		if op.name == "visibility" {
			if err := h.authorizeVisibility(r, img, op.value.s); err != nil {
				return err
			}
		}
	}
	img, err = h.svc.Update(r.Context(), c, img.ID, func(img *trustack.Image) error { return applyPatch(img, ops) })
	if err != nil {
		return limitError(err)
	}
	openstack.JSON(w, http.StatusOK, imageView(img))
	return nil
}

func (h *handler) deleteImage(w http.ResponseWriter, r *http.Request) error {
	c := h.caller(r)
	img, err := h.image(r, c, "delete_image")
	if err != nil {
		return err
	}
	return noContent(w, h.svc.Delete(r.Context(), c, img.ID))
}

func (h *handler) addTag(w http.ResponseWriter, r *http.Request) error {
	c := h.caller(r)
	img, err := h.image(r, c, "modify_image")
	if err != nil {
		return err
	}
	return noContent(w, h.svc.AddTag(r.Context(), c, img.ID, r.PathValue("tag")))
}

func (h *handler) deleteTag(w http.ResponseWriter, r *http.Request) error {
	c := h.caller(r)
	img, err := h.image(r, c, "modify_image")
	if err != nil {
		return err
	}
	return noContent(w, h.svc.DeleteTag(r.Context(), c, img.ID, r.PathValue("tag")))
}
