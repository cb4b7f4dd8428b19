package network

import (
	"cmp"
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/api/openstack"
	"github.com/trustack/trustack/network"
	"github.com/trustack/trustack/policy"
)

// object is a JSON object as the API renders it.
type object = map[string]any

// related is what rendering some resources needs besides the resources
// themselves, read once per request.
type related struct {
	subnets  map[string][]string                // subnet IDs, by network ID
	networks map[string]*trustack.Network       // by ID
	groups   map[string]*trustack.SecurityGroup // by ID
}

// view is a resource as the API renders it, and as the policy sees it:
// its attributes, and those of its relations that rules check (the owner
// of a port's network, network:tenant_id).
type view struct {
	obj    object
	target policy.Target
}

// collection is one collection of the API (networks, ports, ...),
// described for the handlers they all share. S is the service's spec of
// its resources, T the resource.
type collection[S, T any] struct {
	// name and plural are the keys of request and response bodies and
	// the policy's names (get_network); path is the collection's segment
	// of URLs.
	name, plural, path string
	fields             []field[S]
	// tag names the collection to the service's tags
	// (network.TagNetworks); "" for a collection without tags.
	tag string
	// absent is the error for an ID the caller may not see, as the
	// service's for one that does not exist.
	absent func(id string) error

	get    func(ctx context.Context, c network.Caller, id string) (*T, error)
	list   func(ctx context.Context, c network.Caller) ([]*T, error)
	create func(ctx context.Context, c network.Caller, s S) (*T, error)
	update func(ctx context.Context, c network.Caller, id string, s S) (*T, error) // nil for none
	delete func(ctx context.Context, c network.Caller, id string) error

	// relate reads what rendering items needs; nil for nothing.
	relate func(ctx context.Context, c network.Caller, items []*T) (*related, error)
	render func(t *T, rel *related) object
	// parentOf and parentOfSpec return what the policy checks of the
	// resource an item, or a new one, belongs to (a port's network);
	// nil for nothing.
	parentOf     func(t *T, rel *related) policy.Target
	parentOfSpec func(ctx context.Context, c network.Caller, s *S) (policy.Target, error)

	kinds map[string]kind // of the rendered attributes
}

// routes serves the collection: list, create (one or in bulk), show,
// update, delete, and tags for a collection that has them.
func (k *collection[S, T]) routes(h *handler) {
	k.kinds = kindsOf(k.render(new(T), &related{}))
	base := v2 + "/" + k.path
	h.api.Private("GET "+base, k.handleList(h))
	h.api.Private("POST "+base, k.handleCreate(h))
	h.api.Private("GET "+base+"/{id}", k.handleShow(h))
	h.api.Private("DELETE "+base+"/{id}", k.handleDelete(h))
	if k.update != nil {
		h.api.Private("PUT "+base+"/{id}", k.handleUpdate(h))
	}
	if k.tag != "" {
		k.tagRoutes(h, base+"/{id}/tags")
	}
}

// views renders items for the caller.
func (k *collection[S, T]) views(ctx context.Context, c network.Caller, items []*T) ([]view, error) {
	rel := &related{}
	if k.relate != nil {
		var err error
		if rel, err = k.relate(ctx, c, items); err != nil {
			return nil, err
		}
	}
	out := make([]view, len(items))
	for i, t := range items {
		obj := k.render(t, rel)
		target := targetOf(obj)
		if k.parentOf != nil {
			maps.Copy(target, k.parentOf(t, rel))
		}
		out[i] = view{obj: obj, target: target}
	}
	return out, nil
}

// one returns the view of the item of the request's path that the
// caller may see, with its get rule asked: a refusal is a 404.
func (k *collection[S, T]) one(h *handler, r *http.Request, c network.Caller) (*T, view, error) {
	id := r.PathValue("id")
	t, err := k.get(r.Context(), c, id)
	if err != nil {
		return nil, view{}, err
	}
	views, err := k.views(r.Context(), c, []*T{t})
	if err != nil {
		return nil, view{}, err
	}
	if !h.api.Allowed(r, "get_"+k.name, views[0].target) {
		return nil, view{}, k.absent(id)
	}
	return t, views[0], nil
}

// authorizeChange asks the policy's rules of a change to a resource the
// caller may see (one returned it), with the target the resource as the
// request would leave it: a refusal is a 403.
func (h *handler) authorizeChange(r *http.Request, rules []string, v view, changes map[string]json.RawMessage) error {
	t := maps.Clone(v.target)
	maps.Copy(t, bodyTarget(changes))
	return h.authorize(r, rules, t)
}

// handleList lists the items the caller may see that the query selects,
// sorted and paged as it asks, each with the attributes the caller may
// see.
func (k *collection[S, T]) handleList(h *handler) openstack.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		q, err := parseQuery(r.URL.Query(), k.kinds)
		if err != nil {
			return err
		}
		c := h.caller(r)
		items, err := k.list(r.Context(), c)
		if err != nil {
			return err
		}
		views, err := k.views(r.Context(), c, items)
		if err != nil {
			return err
		}
		views = slices.DeleteFunc(views, func(v view) bool { return !q.keep(v) || !h.api.Allowed(r, "get_"+k.name, v.target) })
		q.order(views)
		page, err := q.page(views, k.absent)
		if err != nil {
			return err
		}
		objs := make([]object, len(page))
		for i, v := range page {
			objs[i] = h.visible(r, k.name, v, q.fields)
		}
		body := object{k.plural: objs}
		if links := q.links(r, h.baseURL(r), page); links != nil {
			body[k.plural+"_links"] = links
		}
		return reply(w, http.StatusOK, body)
	}
}

// handleShow shows an item, with the attributes fields names.
func (k *collection[S, T]) handleShow(h *handler) openstack.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		_, v, err := k.one(h, r, h.caller(r))
		if err != nil {
			return err
		}
		return reply(w, http.StatusOK, object{k.name: h.visible(r, k.name, v, r.URL.Query()["fields"])})
	}
}

// handleCreate creates one resource, or several in bulk: all of them are
// checked before any is made, and those made are deleted again if one
// fails, so that a failed request leaves nothing behind.
func (k *collection[S, T]) handleCreate(h *handler) openstack.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		items, bulk, err := h.creates(r, k.name, k.plural)
		if err != nil {
			return err
		}
		c := h.caller(r)
		specs := make([]S, len(items))
		for i, attrs := range items {
			spec, rules, err := decode(k.fields, "create_"+k.name, attrs, true)
			if err != nil {
				return err
			}
			t := bodyTarget(attrs)
			owner := cmp.Or(t["project_id"], t["tenant_id"], c.ProjectID)
			t["project_id"], t["tenant_id"] = owner, owner
			if k.parentOfSpec != nil {
				parent, err := k.parentOfSpec(r.Context(), c, &spec)
				if err != nil {
					return err
				}
				maps.Copy(t, parent)
			}
			if err := h.authorize(r, append([]string{"create_" + k.name}, rules...), t); err != nil {
				return err
			}
			specs[i] = spec
		}
		var made []*T
		for _, spec := range specs {
			t, err := k.create(r.Context(), c, spec)
			if err != nil {
				k.rollback(h, r.Context(), c, made)
				return err
			}
			made = append(made, t)
		}
		views, err := k.views(r.Context(), c, made)
		if err != nil {
			return err
		}
		if !bulk {
			return reply(w, http.StatusCreated, object{k.name: h.visible(r, k.name, views[0], nil)})
		}
		objs := make([]object, len(views))
		for i, v := range views {
			objs[i] = h.visible(r, k.name, v, nil)
		}
		return reply(w, http.StatusCreated, object{k.plural: objs})
	}
}

// rollback deletes what a failed bulk create made, newest first.
func (k *collection[S, T]) rollback(h *handler, ctx context.Context, c network.Caller, made []*T) {
	for _, t := range slices.Backward(made) {
		id, _ := k.render(t, &related{})["id"].(string)
		if err := k.delete(ctx, c, id); err != nil {
			h.log.Error("undo a bulk create", "collection", k.plural, "id", id, "error", err)
		}
	}
}

// handleUpdate changes an item as the body asks, after the update rule
// and those of the attributes the body sets.
func (k *collection[S, T]) handleUpdate(h *handler) openstack.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		attrs, err := h.attributes(r, k.name)
		if err != nil {
			return err
		}
		spec, rules, err := decode(k.fields, "update_"+k.name, attrs, false)
		if err != nil {
			return err
		}
		c := h.caller(r)
		_, v, err := k.one(h, r, c)
		if err != nil {
			return err
		}
		if err := h.authorizeChange(r, append([]string{"update_" + k.name}, rules...), v, attrs); err != nil {
			return err
		}
		t, err := k.update(r.Context(), c, r.PathValue("id"), spec)
		if err != nil {
			return err
		}
		views, err := k.views(r.Context(), c, []*T{t})
		if err != nil {
			return err
		}
		return reply(w, http.StatusOK, object{k.name: h.visible(r, k.name, views[0], nil)})
	}
}

// handleDelete deletes an item, after the delete rule.
func (k *collection[S, T]) handleDelete(h *handler) openstack.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		c := h.caller(r)
		_, v, err := k.one(h, r, c)
		if err != nil {
			return err
		}
		if err := h.authorizeChange(r, []string{"delete_" + k.name}, v, nil); err != nil {
			return err
		}
		if err := k.delete(r.Context(), c, r.PathValue("id")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

// targetOf returns a rendering's scalar attributes as the policy reads
// them, booleans as Python writes them (True); nulls, lists and objects
// are left out, as a check on them is false.
func targetOf(obj object) policy.Target {
	t := policy.Target{}
	for k, v := range obj {
		switch v := v.(type) {
		case string:
			t[k] = v
		case bool:
			t[k] = pyBool(v)
		case int:
			t[k] = strconv.Itoa(v)
		}
	}
	return t
}

// bodyTarget returns a request's scalar attributes as the policy reads
// them.
func bodyTarget(attrs map[string]json.RawMessage) policy.Target {
	obj := object{}
	for k, raw := range attrs {
		var v any
		json.Unmarshal(raw, &v)
		if f, ok := v.(float64); ok && f == float64(int(f)) {
			v = int(f)
		}
		obj[k] = v
	}
	return targetOf(obj)
}

// pyBool writes a boolean as Python does.
func pyBool(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

// authorize asks the policy's rules in turn, with the caller's
// credentials, and returns Neutron's 403 naming them all if one refuses:
// "(rule:create_network and rule:create_network:shared) is disallowed by
// policy".
func (h *handler) authorize(r *http.Request, rules []string, t policy.Target) error {
	for _, rule := range rules {
		if h.api.Allowed(r, rule, t) {
			continue
		}
		named := make([]string, len(rules))
		for i, r := range rules {
			named[i] = "rule:" + r
		}
		which := named[0]
		if len(named) > 1 {
			which = "(" + strings.Join(named, " and ") + ")"
		}
		return trustack.Reasonf(trustack.EFORBIDDEN, "PolicyNotAuthorized", "%s is disallowed by policy", which)
	}
	return nil
}

// visible returns what the caller may see of a view, of the attributes
// fields names (all without fields): an attribute whose get rule
// (get_port:binding:host_id) refuses is left out, and tenant_id takes
// project_id with it, as Neutron's.
func (h *handler) visible(r *http.Request, name string, v view, fields []string) object {
	obj := maps.Clone(v.obj)
	for _, attr := range h.guarded[name] {
		if _, ok := obj[attr]; ok && !h.api.Allowed(r, "get_"+name+":"+attr, v.target) {
			delete(obj, attr)
			if attr == "tenant_id" {
				delete(obj, "project_id")
			}
		}
	}
	return only(obj, fields)
}

// jsonObject reads a request's body as a JSON object.
func (h *handler) jsonObject(r *http.Request) (map[string]json.RawMessage, error) {
	body, err := h.dec.Body(r)
	if err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil || m == nil {
		return nil, badRequest("Malformed request body")
	}
	return m, nil
}

// attributes returns the attributes of the resource a request's body
// carries under key.
func (h *handler) attributes(r *http.Request, key string) (map[string]json.RawMessage, error) {
	m, err := h.jsonObject(r)
	if err != nil {
		return nil, err
	}
	var attrs map[string]json.RawMessage
	if json.Unmarshal(m[key], &attrs) != nil || attrs == nil {
		return nil, badRequest("Unable to find '%s' in request body", key)
	}
	return attrs, nil
}

// creates returns the attributes of the resources a create's body
// carries: one under name, or a list of them under plural, in bulk.
func (h *handler) creates(r *http.Request, name, plural string) ([]map[string]json.RawMessage, bool, error) {
	m, err := h.jsonObject(r)
	if err != nil {
		return nil, false, err
	}
	if one, ok := m[name]; ok {
		var attrs map[string]json.RawMessage
		if json.Unmarshal(one, &attrs) != nil || attrs == nil {
			return nil, false, badRequest("Unable to find '%s' in request body", name)
		}
		return []map[string]json.RawMessage{attrs}, false, nil
	}
	var many []map[string]json.RawMessage
	if json.Unmarshal(m[plural], &many) != nil || len(many) == 0 || slices.ContainsFunc(many, func(m map[string]json.RawMessage) bool { return m == nil }) {
		return nil, false, badRequest("Unable to find '%s' in request body", name)
	}
	return many, true, nil
}

// reply writes a JSON response.
func reply(w http.ResponseWriter, status int, body any) error {
	openstack.JSON(w, status, body)
	return nil
}
