package compute

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/api/openstack"
)

// listFlavors serves GET /flavors and /flavors/detail: public flavors and
// the private ones shared with the caller's project; an admin sees public
// ones unless is_public says otherwise.
func (h *handler) listFlavors(detail bool) openstack.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		c, err := h.caller(r)
		if err != nil {
			return err
		}
		q := r.URL.Query()
		var f trustack.FlavorFilter
		switch v := strings.ToLower(q.Get("is_public")); {
		case c.Admin && (v == "none"):
		case c.Admin && (v == "f" || v == "false" || v == "no" || v == "0"):
			f.Public = new(bool)
		case c.Admin:
			public := true
			f.Public = &public
		default:
			f.VisibleTo = c.ProjectID
		}
		for _, p := range []struct {
			name string
			dst  *int
		}{{"minRam", &f.MinRAM}, {"minDisk", &f.MinDisk}} {
			if v := q.Get(p.name); v != "" {
				n, err := strconv.Atoi(v)
				if err != nil || n < 0 {
					return trustack.Errorf(trustack.EINVALID, "Invalid %s filter [%s]", p.name, v)
				}
				*p.dst = n
			}
		}
		list, err := h.svc.Flavors(r.Context(), f)
		if err != nil {
			return err
		}
		if list, err = page(list, q.Get("marker"), q.Get("limit"), func(f *trustack.Flavor) string { return f.ID }); err != nil {
			return err
		}
		out := make([]object, len(list))
		for i, fl := range list {
			if detail {
				out[i] = h.flavor(fl)
			} else {
				out[i] = object{"id": fl.ID, "name": fl.Name, "links": h.links("flavors", fl.ID)}
			}
		}
		return collection(w, "flavors", out)
	}
}

// page applies Nova's marker and limit to a list.
func page[T any](list []T, marker, limit string, id func(T) string) ([]T, error) {
	if marker != "" {
		i := 0
		for i < len(list) && id(list[i]) != marker {
			i++
		}
		if i == len(list) {
			return nil, trustack.Errorf(trustack.EINVALID, "marker [%s] not found", marker)
		}
		list = list[i+1:]
	}
	if limit != "" {
		n, err := strconv.Atoi(limit)
		if err != nil || n < 0 {
			return nil, trustack.Errorf(trustack.EINVALID, "limit param must be a positive integer")
		}
		if n < len(list) {
			list = list[:n]
		}
	}
	return list, nil
}

func (h *handler) showFlavor(w http.ResponseWriter, r *http.Request) error {
	f, err := h.svc.Flavor(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return ok(w, object{"flavor": h.flavor(f)})
}

// intParam reads an integer that may come as a JSON number or string.
func intParam(field string, raw json.RawMessage, required bool) (int, error) {
	if !nonEmpty(raw) {
		if required {
			return 0, invalid(field, "'%s' is a required property.", field)
		}
		return 0, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		raw = json.RawMessage(s)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		return 0, invalid(field, "%s is not an integer.", raw)
	}
	return n, nil
}

func (h *handler) createFlavor(w http.ResponseWriter, r *http.Request) error {
	if err := h.api.Authorize(r, "os_compute_api:os-flavor-manage:create", nil); err != nil {
		return err
	}
	var body struct {
		Flavor *struct {
			ID         json.RawMessage `json:"id"`
			Name       *string         `json:"name"`
			RAM        json.RawMessage `json:"ram"`
			VCPUs      json.RawMessage `json:"vcpus"`
			Disk       json.RawMessage `json:"disk"`
			Ephemeral  json.RawMessage `json:"OS-FLV-EXT-DATA:ephemeral"`
			Swap       json.RawMessage `json:"swap"`
			RXTXFactor json.RawMessage `json:"rxtx_factor"`
			Public     json.RawMessage `json:"os-flavor-access:is_public"`
		} `json:"flavor"`
	}
	if err := h.dec.Decode(r, &body); err != nil {
		return err
	}
	b := body.Flavor
	if b == nil || b.Name == nil {
		return invalid("name", "'name' is a required property.")
	}
	f := &trustack.Flavor{Name: *b.Name, Public: true, RXTXFactor: 1.0}
	if nonEmpty(b.ID) {
		id, err := idParam("id", b.ID)
		if err != nil {
			return err
		}
		f.ID = id
	}
	for _, p := range []struct {
		name     string
		raw      json.RawMessage
		dst      *int
		required bool
	}{{"ram", b.RAM, &f.RAM, true}, {"vcpus", b.VCPUs, &f.VCPUs, true}, {"disk", b.Disk, &f.Disk, true},
		{"OS-FLV-EXT-DATA:ephemeral", b.Ephemeral, &f.Ephemeral, false}, {"swap", b.Swap, &f.Swap, false}} {
		n, err := intParam(p.name, p.raw, p.required)
		if err != nil {
			return err
		}
		*p.dst = n
	}
	if nonEmpty(b.RXTXFactor) {
		var x json.Number
		if err := json.Unmarshal(b.RXTXFactor, &x); err != nil {
			return invalid("rxtx_factor", "It must be a number.")
		}
		v, err := x.Float64()
		if err != nil || v <= 0 {
			return invalid("rxtx_factor", "It must be a positive number.")
		}
		f.RXTXFactor = v
	}
	if nonEmpty(b.Public) {
		v, err := boolParam("os-flavor-access:is_public", b.Public)
		if err != nil {
			return err
		}
		f.Public = v
	}
	if err := h.svc.CreateFlavor(r.Context(), f); err != nil {
		return err
	}
	return ok(w, object{"flavor": h.flavor(f)})
}

func (h *handler) deleteFlavor(w http.ResponseWriter, r *http.Request) error {
	if err := h.api.Authorize(r, "os_compute_api:os-flavor-manage:delete", nil); err != nil {
		return err
	}
	if err := h.svc.DeleteFlavor(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	return accepted(w)
}

// flavorAction serves addTenantAccess and removeTenantAccess.
func (h *handler) flavorAction(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Add *struct {
			Tenant string `json:"tenant"`
		} `json:"addTenantAccess"`
		Remove *struct {
			Tenant string `json:"tenant"`
		} `json:"removeTenantAccess"`
	}
	if err := h.dec.Decode(r, &body); err != nil {
		return err
	}
	id := r.PathValue("id")
	var projects []string
	var err error
	switch {
	case body.Add != nil && body.Remove == nil:
		if err := h.api.Authorize(r, "os_compute_api:os-flavor-access:add_tenant_access", nil); err != nil {
			return err
		}
		// From 2.7 a public flavor's access is a conflict; before, Nova
		// recorded it.
		projects, err = h.svc.ShareFlavor(r.Context(), id, body.Add.Tenant, true, !atLeast(r, 7))
	case body.Remove != nil && body.Add == nil:
		if err := h.api.Authorize(r, "os_compute_api:os-flavor-access:remove_tenant_access", nil); err != nil {
			return err
		}
		projects, err = h.svc.ShareFlavor(r.Context(), id, body.Remove.Tenant, false, false)
	default:
		return trustack.Errorf(trustack.EINVALID, "The action body must be one of addTenantAccess and removeTenantAccess.")
	}
	if err != nil {
		return err
	}
	return flavorAccess(w, id, projects)
}

func (h *handler) listFlavorAccess(w http.ResponseWriter, r *http.Request) error {
	if err := h.api.Authorize(r, "os_compute_api:os-flavor-access", nil); err != nil {
		return err
	}
	id := r.PathValue("id")
	projects, err := h.svc.FlavorAccess(r.Context(), id)
	if err != nil {
		return err
	}
	return flavorAccess(w, id, projects)
}

// flavorAccess writes the projects a flavor is shared with.
func flavorAccess(w http.ResponseWriter, id string, projects []string) error {
	out := make([]object, len(projects))
	for i, p := range projects {
		out[i] = object{"flavor_id": id, "tenant_id": p}
	}
	return ok(w, object{"flavor_access": out})
}

// Extra specs.

var extraSpecKey = func(k string) bool {
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_-. :", r)) {
			return false
		}
	}
	return k != ""
}

func (h *handler) flavorSpecs(r *http.Request, rule string, target bool) (*trustack.Flavor, error) {
	var err error
	if target {
		err = h.authorize(r, rule, "")
	} else {
		err = h.api.Authorize(r, rule, nil)
	}
	if err != nil {
		return nil, err
	}
	return h.svc.Flavor(r.Context(), r.PathValue("id"))
}

func (h *handler) listExtraSpecs(w http.ResponseWriter, r *http.Request) error {
	f, err := h.flavorSpecs(r, "os_compute_api:os-flavor-extra-specs:index", true)
	if err != nil {
		return err
	}
	return ok(w, object{"extra_specs": metadata(f.ExtraSpecs)})
}

func (h *handler) createExtraSpecs(w http.ResponseWriter, r *http.Request) error {
	f, err := h.flavorSpecs(r, "os_compute_api:os-flavor-extra-specs:create", false)
	if err != nil {
		return err
	}
	var body struct {
		ExtraSpecs map[string]string `json:"extra_specs"`
	}
	if err := h.dec.Decode(r, &body); err != nil {
		return err
	}
	if body.ExtraSpecs == nil {
		return invalid("extra_specs", "'extra_specs' is a required property.")
	}
	for k := range body.ExtraSpecs {
		if !extraSpecKey(k) {
			return invalid("extra_specs", "Key %q may hold only letters, digits, spaces and _-.: characters.", k)
		}
	}
	if _, err := h.svc.SetExtraSpecs(r.Context(), f.ID, body.ExtraSpecs); err != nil {
		return err
	}
	return ok(w, object{"extra_specs": body.ExtraSpecs})
}

func (h *handler) showExtraSpec(w http.ResponseWriter, r *http.Request) error {
	f, err := h.flavorSpecs(r, "os_compute_api:os-flavor-extra-specs:show", true)
	if err != nil {
		return err
	}
	key := r.PathValue("key")
	v, found := f.ExtraSpecs[key]
	if !found {
		return trustack.Errorf(trustack.ENOTFOUND, "Flavor %s has no extra specs with key %s.", f.ID, key)
	}
	return ok(w, object{key: v})
}

func (h *handler) updateExtraSpec(w http.ResponseWriter, r *http.Request) error {
	f, err := h.flavorSpecs(r, "os_compute_api:os-flavor-extra-specs:update", false)
	if err != nil {
		return err
	}
	var body map[string]string
	if err := h.dec.Decode(r, &body); err != nil {
		return err
	}
	key := r.PathValue("key")
	_, found := body[key]
	if len(body) != 1 || !found {
		return trustack.Errorf(trustack.EINVALID, "Request body and URI mismatch")
	}
	if !extraSpecKey(key) {
		return invalid("extra_specs", "Key %q may hold only letters, digits, spaces and _-.: characters.", key)
	}
	if _, err := h.svc.SetExtraSpecs(r.Context(), f.ID, body); err != nil {
		return err
	}
	return ok(w, body)
}

func (h *handler) deleteExtraSpec(w http.ResponseWriter, r *http.Request) error {
	f, err := h.flavorSpecs(r, "os_compute_api:os-flavor-extra-specs:delete", false)
	if err != nil {
		return err
	}
	if err := h.svc.DeleteExtraSpec(r.Context(), f.ID, r.PathValue("key")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK) // Nova answers 200 with no body here
	return nil
}

// Keypairs.

// keypairUser returns whose keypairs the request is about: the caller's,
// or from 2.10 the user its user_id query parameter names, and checks
// rule against that user.
func (h *handler) keypairUser(r *http.Request, rule string) (string, error) {
	user := openstack.TokenOf(r).User.ID
	if other := r.URL.Query().Get("user_id"); other != "" && atLeast(r, 10) {
		user = other
	}
	return user, h.api.Authorize(r, rule, map[string]string{"user_id": user})
}

// keypair renders a keypair with the fields every response has, and its
// type from 2.2.
func keypair(r *http.Request, k *trustack.Keypair) object {
	o := object{"name": k.Name, "public_key": k.PublicKey, "fingerprint": k.Fingerprint}
	if atLeast(r, 2) {
		o["type"] = k.Type
	}
	return o
}

func (h *handler) listKeypairs(w http.ResponseWriter, r *http.Request) error {
	user, err := h.keypairUser(r, "os_compute_api:os-keypairs:index")
	if err != nil {
		return err
	}
	list, err := h.svc.Keypairs(r.Context(), user)
	if err != nil {
		return err
	}
	out := make([]object, len(list))
	for i, k := range list {
		out[i] = object{"keypair": keypair(r, k)}
	}
	return collection(w, "keypairs", out)
}

// createKeypair imports or makes a keypair: of a type from 2.2, for
// another user (an administrator's call) from 2.10; 201 from 2.2.
func (h *handler) createKeypair(w http.ResponseWriter, r *http.Request) error {
	c, err := h.caller(r)
	if err != nil {
		return err
	}
	var body struct {
		Keypair *struct {
			Name      *string `json:"name"`
			PublicKey *string `json:"public_key"`
			Type      *string `json:"type"`
			UserID    *string `json:"user_id"`
		} `json:"keypair"`
	}
	if err := h.dec.Decode(r, &body); err != nil {
		return err
	}
	kp := body.Keypair
	switch {
	case kp == nil || kp.Name == nil:
		return invalid("name", "'name' is a required property.")
	case kp.Type != nil && !atLeast(r, 2):
		return unexpected("keypair", "type")
	case kp.UserID != nil && !atLeast(r, 10):
		return unexpected("keypair", "user_id")
	case kp.PublicKey != nil && strings.TrimSpace(*kp.PublicKey) == "":
		return trustack.Errorf(trustack.EINVALID, "Keypair data is invalid: failed to generate fingerprint")
	}
	k := trustack.Keypair{Name: *kp.Name, UserID: c.UserID}
	if kp.Type != nil {
		k.Type = *kp.Type
	}
	if kp.UserID != nil {
		k.UserID = *kp.UserID
	}
	if kp.PublicKey != nil {
		k.PublicKey = *kp.PublicKey
	}
	if err := h.api.Authorize(r, "os_compute_api:os-keypairs:create", map[string]string{"user_id": k.UserID}); err != nil {
		return err
	}
	made, private, err := h.svc.CreateKeypair(r.Context(), c, k)
	if err != nil {
		return err
	}
	o := keypair(r, made)
	o["user_id"] = made.UserID
	if private != "" {
		o["private_key"] = private
	}
	status := http.StatusOK
	if atLeast(r, 2) {
		status = http.StatusCreated
	}
	openstack.JSON(w, status, object{"keypair": o})
	return nil
}

func (h *handler) showKeypair(w http.ResponseWriter, r *http.Request) error {
	user, err := h.keypairUser(r, "os_compute_api:os-keypairs:show")
	if err != nil {
		return err
	}
	k, err := h.svc.Keypair(r.Context(), user, r.PathValue("name"))
	if err != nil {
		return err
	}
	o := keypair(r, k)
	o["user_id"], o["deleted"], o["created_at"], o["updated_at"], o["deleted_at"], o["id"] =
		k.UserID, false, k.CreatedAt.UTC().Format(isoMicros), nil, nil, keypairNumber(k)
	return ok(w, object{"keypair": o})
}

// keypairNumber is an integer ID for a keypair, as Nova shows at 2.1: its
// creation time, stable and distinct enough for a user's keypairs.
func keypairNumber(k *trustack.Keypair) int64 { return k.CreatedAt.UnixMicro() % (1 << 31) }

func (h *handler) deleteKeypair(w http.ResponseWriter, r *http.Request) error {
	user, err := h.keypairUser(r, "os_compute_api:os-keypairs:delete")
	if err != nil {
		return err
	}
	if err := h.svc.DeleteKeypair(r.Context(), user, r.PathValue("name")); err != nil {
		return err
	}
	if atLeast(r, 2) {
		return noContent(w)
	}
	return accepted(w)
}

// Server groups.

// group renders a server group, with its project and user from 2.13.
func group(r *http.Request, g *trustack.ServerGroup) object {
	members := g.Members
	if members == nil {
		members = []string{}
	}
	o := object{"id": g.ID, "name": g.Name, "policies": []string{g.Policy}, "members": members, "metadata": object{}}
	if atLeast(r, 13) {
		o["project_id"], o["user_id"] = g.ProjectID, g.UserID
	}
	return o
}

func (h *handler) listGroups(w http.ResponseWriter, r *http.Request) error {
	c, err := h.caller(r)
	if err != nil {
		return err
	}
	if err := h.authorize(r, "os_compute_api:os-server-groups:index", ""); err != nil {
		return err
	}
	all := r.URL.Query().Has("all_projects") && h.api.Allowed(r, "os_compute_api:os-server-groups:index:all_projects", map[string]string{"project_id": c.ProjectID})
	list, err := h.svc.ServerGroups(r.Context(), c, all)
	if err != nil {
		return err
	}
	if list, err = page(list, "", r.URL.Query().Get("limit"), func(g *trustack.ServerGroup) string { return g.ID }); err != nil {
		return err
	}
	out := make([]object, len(list))
	for i, g := range list {
		out[i] = group(r, g)
	}
	return collection(w, "server_groups", out)
}

func (h *handler) createGroup(w http.ResponseWriter, r *http.Request) error {
	c, err := h.caller(r)
	if err != nil {
		return err
	}
	if err := h.authorize(r, "os_compute_api:os-server-groups:create", ""); err != nil {
		return err
	}
	var body struct {
		Group *struct {
			Name     *string  `json:"name"`
			Policies []string `json:"policies"`
		} `json:"server_group"`
	}
	if err := h.dec.Decode(r, &body); err != nil {
		return err
	}
	if body.Group == nil || body.Group.Name == nil {
		return invalid("name", "'name' is a required property.")
	}
	if len(body.Group.Policies) != 1 {
		return invalid("policies", "Give exactly one policy.")
	}
	if p := body.Group.Policies[0]; (p == trustack.PolicySoftAffinity || p == trustack.PolicySoftAntiAffinity) && !atLeast(r, 15) {
		return invalid("policies", "%q is not one of affinity, anti-affinity before microversion 2.15.", p)
	}
	g, err := h.svc.CreateServerGroup(r.Context(), c, *body.Group.Name, body.Group.Policies[0])
	if err != nil {
		return err
	}
	return ok(w, object{"server_group": group(r, g)})
}

func (h *handler) groupFor(r *http.Request, rule string) (*trustack.ServerGroup, error) {
	c, err := h.caller(r)
	if err != nil {
		return nil, err
	}
	g, err := h.svc.ServerGroup(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	return g, h.authorize(r, rule, g.ProjectID)
}

func (h *handler) showGroup(w http.ResponseWriter, r *http.Request) error {
	g, err := h.groupFor(r, "os_compute_api:os-server-groups:show")
	if err != nil {
		return err
	}
	return ok(w, object{"server_group": group(r, g)})
}

func (h *handler) deleteGroup(w http.ResponseWriter, r *http.Request) error {
	g, err := h.groupFor(r, "os_compute_api:os-server-groups:delete")
	if err != nil {
		return err
	}
	c, _ := h.caller(r)
	if err := h.svc.DeleteServerGroup(r.Context(), c, g.ID); err != nil {
		return err
	}
	return noContent(w)
}
