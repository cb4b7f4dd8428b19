package identity

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/api/openstack"
)

// Keystone's timestamps: microseconds and a Z.
const timeFormat = "2006-01-02T15:04:05.000000Z"

func stamp(t time.Time) string { return t.UTC().Format(timeFormat) }

// object is a JSON object in a response.
type object = map[string]any

// withExtra returns the entity's fields over its extra attributes, which
// can never shadow them.
func withExtra(extra trustack.Extra, fields object) object {
	out := make(object, len(extra)+len(fields))
	for k, v := range extra {
		out[k] = v
	}
	for k, v := range fields {
		out[k] = v
	}
	return out
}

// nullable returns nil for "" so that it renders as null.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (h *handler) self(path ...string) object {
	return object{"self": h.base + "/v3/" + strings.Join(path, "/")}
}

// collection renders a list response with its links.
func (h *handler) collection(w http.ResponseWriter, r *http.Request, key string, items []object) {
	if items == nil {
		items = []object{}
	}
	openstack.JSON(w, http.StatusOK, object{
		key:     items,
		"links": object{"self": h.base + strings.TrimPrefix(r.URL.RequestURI(), Prefix), "previous": nil, "next": nil},
	})
}

func (h *handler) domain(d *trustack.Domain) object {
	return withExtra(d.Extra, object{
		"id": d.ID, "name": d.Name, "description": d.Description, "enabled": d.Enabled,
		"tags": []string{}, "options": object{}, "links": h.self("domains", d.ID),
	})
}

func (h *handler) project(p *trustack.Project) object {
	return withExtra(p.Extra, object{
		"id": p.ID, "name": p.Name, "description": p.Description, "domain_id": p.DomainID, "parent_id": p.ParentID,
		"enabled": p.Enabled, "is_domain": false, "tags": tagList(p.Tags)["tags"], "options": object{}, "links": h.self("projects", p.ID),
	})
}

func (h *handler) user(u *trustack.User) object {
	o := withExtra(u.Extra, object{
		"id": u.ID, "name": u.Name, "domain_id": u.DomainID, "enabled": u.Enabled,
		"password_expires_at": nil, "options": object{}, "links": h.self("users", u.ID),
	})
	if u.DefaultProjectID != "" {
		o["default_project_id"] = u.DefaultProjectID
	}
	return o
}

func (h *handler) group(g *trustack.Group) object {
	return withExtra(g.Extra, object{
		"id": g.ID, "name": g.Name, "description": g.Description, "domain_id": g.DomainID, "links": h.self("groups", g.ID),
	})
}

func (h *handler) role(r *trustack.Role) object {
	return withExtra(r.Extra, object{
		"id": r.ID, "name": r.Name, "description": r.Description, "domain_id": nil, "options": object{}, "links": h.self("roles", r.ID),
	})
}

func (h *handler) region(r *trustack.Region) object {
	return withExtra(r.Extra, object{
		"id": r.ID, "description": r.Description, "parent_region_id": nullable(r.ParentRegionID), "links": h.self("regions", r.ID),
	})
}

func (h *handler) service(s *trustack.Service) object {
	return withExtra(s.Extra, object{
		"id": s.ID, "type": s.Type, "name": s.Name, "description": s.Description, "enabled": s.Enabled, "links": h.self("services", s.ID),
	})
}

func (h *handler) endpoint(e *trustack.Endpoint) object {
	return withExtra(e.Extra, object{
		"id": e.ID, "interface": e.Interface, "region": nullable(e.RegionID), "region_id": nullable(e.RegionID),
		"service_id": e.ServiceID, "url": e.URL, "enabled": e.Enabled, "links": h.self("endpoints", e.ID),
	})
}

// ignored are attributes Keystone computes or does not keep from a
// request; they never become extras.
var ignored = map[string]bool{"id": true, "links": true, "options": true, "tags": true, "is_domain": true, "password_expires_at": true}

// decodeEntity reads a body of the form {"<key>": {...}} into fields, a
// pointer to a struct of openstack.Optional values, and returns the
// object's other attributes as extras.
func (h *handler) decodeEntity(r *http.Request, key string, fields any) (trustack.Extra, error) {
	body, err := h.dec.Body(r)
	if err != nil {
		return nil, err
	}
	var outer map[string]json.RawMessage
	if err := openstack.Unmarshal(body, &outer); err != nil {
		return nil, err
	}
	raw, ok := outer[key]
	if !ok {
		return nil, trustack.Errorf(trustack.EINVALID, "Invalid input for field '%s': '%s' is a required property.", key, key)
	}
	if err := openstack.UnmarshalField(raw, key, fields); err != nil {
		return nil, err
	}
	var all map[string]any
	if err := openstack.UnmarshalField(raw, key, &all); err != nil {
		return nil, err
	}
	t := reflect.TypeOf(fields).Elem()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		delete(all, name)
	}
	extra := trustack.Extra{}
	for k, v := range all {
		if !ignored[k] {
			extra[k] = v
		}
	}
	return extra, nil
}

// mergeExtra applies a request's extras to an entity's: a null removes
// the attribute.
func mergeExtra(dst *trustack.Extra, src trustack.Extra) {
	if len(src) == 0 {
		return
	}
	if *dst == nil {
		*dst = trustack.Extra{}
	}
	for k, v := range src {
		if v == nil {
			delete(*dst, k)
		} else {
			(*dst)[k] = v
		}
	}
}

// flag parses a boolean query parameter as Keystone does: "0", "false",
// "no", "off" and "f" are false, anything else is true; absent is nil.
func flag(r *http.Request, name string) *bool {
	if !r.URL.Query().Has(name) {
		return nil
	}
	v := true
	switch strings.ToLower(r.URL.Query().Get(name)) {
	case "0", "false", "no", "off", "f":
		v = false
	}
	return &v
}
