package volume

import (
	"cmp"
	"maps"
	"net/http"
	"slices"
	"strconv"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/policy"
	"github.com/trustack/trustack/volume"
)

func (h *handler) typeRoutes() {
	a := h.api
	base := v3 + "/types"
	a.Private("GET "+base, h.listTypes)
	a.Private("POST "+base, h.createType)
	a.Private("GET "+base+"/{id}", h.showType)
	a.Private("PUT "+base+"/{id}", h.updateType)
	a.Private("DELETE "+base+"/{id}", h.deleteType)
	a.Private("POST "+base+"/{id}/action", h.typeAction)
	a.Private("GET "+base+"/{id}/os-volume-type-access", h.listTypeAccess)
	specs := base + "/{id}/extra_specs"
	a.Private("GET "+specs, h.listExtraSpecs)
	a.Private("POST "+specs, h.createExtraSpecs)
	a.Private("GET "+specs+"/{key}", h.showExtraSpec)
	a.Private("PUT "+specs+"/{key}", h.updateExtraSpec)
	a.Private("DELETE "+specs+"/{key}", h.deleteExtraSpec)
}

// userVisibleSpecs are the extra specs Cinder shows callers who may not
// read them all.
var userVisibleSpecs = []string{"multiattach", "RESKEY:availability_zones", "replication_enabled"}

// typeView is a volume type as Cinder shows it: its extra specs as far
// as the policy lets the caller read them, and with withAccess (show,
// list and create) its access extension's is_public if the policy says.
func (h *handler) typeView(r *http.Request, vt *trustack.VolumeType, withAccess bool) object {
	o := object{"id": vt.ID, "name": vt.Name, "description": nullIfEmpty(vt.Description), "is_public": vt.Public}
	if h.api.Allowed(r, "volume_extension:access_types_extra_specs", policy.Target{"project_id": h.projectOf(r)}) {
		o["extra_specs"] = h.visibleSpecs(r, vt)
	}
	if withAccess && h.api.Allowed(r, "volume_extension:volume_type_access", policy.Target{"project_id": h.projectOf(r)}) {
		o["os-volume-type-access:is_public"] = vt.Public
	}
	return o
}

// visibleSpecs are the extra specs of a type the caller may read: all,
// or those Cinder shows users.
func (h *handler) visibleSpecs(r *http.Request, vt *trustack.VolumeType) map[string]string {
	specs := map[string]string{}
	sensitive := h.api.Allowed(r, "volume_extension:types_extra_specs:read_sensitive", policy.Target{})
	for k, v := range vt.ExtraSpecs {
		if sensitive || slices.Contains(userVisibleSpecs, k) {
			specs[k] = v
		}
	}
	return specs
}

func (h *handler) listTypes(w http.ResponseWriter, r *http.Request) error {
	c, err := h.caller(r)
	if err != nil {
		return err
	}
	if err := h.authorize(r, "volume_extension:type_get_all", c.ProjectID); err != nil {
		return err
	}
	public, err := isPublicFilter(r.URL.Query().Get("is_public"))
	if err != nil {
		return err
	}
	list, err := h.svc.Types(r.Context(), c, public)
	if err != nil {
		return err
	}
	out := make([]object, len(list))
	for i, vt := range list {
		out[i] = h.typeView(r, vt, true)
	}
	return reply(w, http.StatusOK, object{"volume_types": out})
}

// isPublicFilter reads is_public as Cinder does: public types by
// default, all of them for "None".
func isPublicFilter(s string) (*bool, error) {
	switch s {
	case "":
		yes := true
		return &yes, nil
	case "None", "none":
		return nil, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return nil, trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Invalid input received: is_public must be true, false or None, not %q.", s)
	}
	return &b, nil
}

// volumeType returns the type of the request's path ("default" for the
// default type), after rule.
func (h *handler) volumeType(r *http.Request, rule string) (*trustack.VolumeType, error) {
	c, err := h.caller(r)
	if err != nil {
		return nil, err
	}
	if err := h.authorize(r, rule, c.ProjectID); err != nil {
		return nil, err
	}
	if id := r.PathValue("id"); id != "default" {
		return h.svc.Type(r.Context(), c, id)
	}
	return h.svc.DefaultType(r.Context())
}

func (h *handler) showType(w http.ResponseWriter, r *http.Request) error {
	vt, err := h.volumeType(r, "volume_extension:type_get")
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, object{"volume_type": h.typeView(r, vt, true)})
}

func (h *handler) createType(w http.ResponseWriter, r *http.Request) error {
	c, err := h.caller(r)
	if err != nil {
		return err
	}
	if err := h.authorize(r, "volume_extension:type_create", c.ProjectID); err != nil {
		return err
	}
	var b struct {
		Name         string            `json:"name"`
		Description  *string           `json:"description"`
		AccessPublic *bool             `json:"os-volume-type-access:is_public"`
		IsPublic     *bool             `json:"is_public"`
		ExtraSpecs   map[string]string `json:"extra_specs"`
	}
	if err := h.decode(r, "volume_type", &b); err != nil {
		return err
	}
	public := cmp.Or(b.AccessPublic, b.IsPublic)
	vt, err := h.svc.CreateType(r.Context(), volume.TypeRequest{Name: b.Name, Description: deref(b.Description),
		Public: public == nil || *public, ExtraSpecs: b.ExtraSpecs})
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, object{"volume_type": h.typeView(r, vt, true)})
}

func (h *handler) updateType(w http.ResponseWriter, r *http.Request) error {
	vt, err := h.volumeType(r, "volume_extension:type_update")
	if err != nil {
		return err
	}
	var b struct {
		Name        *string `json:"name"`
		Description *string `json:"description"`
		IsPublic    *bool   `json:"is_public"`
	}
	if err := h.decode(r, "volume_type", &b); err != nil {
		return err
	}
	if b.Name == nil && b.Description == nil && b.IsPublic == nil {
		return trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Specify volume type name, description, is_public or a combination thereof.")
	}
	if vt, err = h.svc.UpdateType(r.Context(), vt.ID, volume.TypeUpdate{Name: b.Name, Description: b.Description, Public: b.IsPublic}); err != nil {
		return err
	}
	return reply(w, http.StatusOK, object{"volume_type": h.typeView(r, vt, false)})
}

func (h *handler) deleteType(w http.ResponseWriter, r *http.Request) error {
	vt, err := h.volumeType(r, "volume_extension:type_delete")
	if err != nil {
		return err
	}
	if err := h.svc.DeleteType(r.Context(), vt.ID); err != nil {
		return err
	}
	return accepted(w)
}

// Access to private types.

// typeAction serves POST /types/{id}/action: addProjectAccess or
// removeProjectAccess, of a project.
func (h *handler) typeAction(w http.ResponseWriter, r *http.Request) error {
	var body map[string]*struct {
		Project string `json:"project"`
	}
	if err := h.dec.Decode(r, &body); err != nil {
		return err
	}
	if len(body) != 1 {
		return trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Invalid input received: an action body names one action.")
	}
	for name, args := range body {
		if name != "addProjectAccess" && name != "removeProjectAccess" {
			return trustack.Reasonf(trustack.EINVALID, "InvalidInput", "There is no such action: %s", name)
		}
		vt, err := h.volumeType(r, "volume_extension:volume_type_access:"+name)
		if err != nil {
			return err
		}
		if args == nil {
			return trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Invalid input received: %s needs a project.", name)
		}
		if err := h.svc.ShareType(r.Context(), vt.ID, args.Project, name == "addProjectAccess"); err != nil {
			return err
		}
	}
	return accepted(w)
}

// listTypeAccess serves GET /types/{id}/os-volume-type-access.
func (h *handler) listTypeAccess(w http.ResponseWriter, r *http.Request) error {
	vt, err := h.volumeType(r, "volume_extension:volume_type_access:get_all_for_type")
	if err != nil {
		return err
	}
	projects, err := h.svc.TypeAccess(r.Context(), vt.ID)
	if err != nil {
		return err
	}
	access := make([]object, len(projects))
	for i, p := range projects {
		access[i] = object{"volume_type_id": vt.ID, "project_id": p}
	}
	return reply(w, http.StatusOK, object{"volume_type_access": access})
}

// Extra specs.

func (h *handler) listExtraSpecs(w http.ResponseWriter, r *http.Request) error {
	vt, err := h.volumeType(r, "volume_extension:types_extra_specs:index")
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, object{"extra_specs": h.visibleSpecs(r, vt)})
}

func (h *handler) createExtraSpecs(w http.ResponseWriter, r *http.Request) error {
	vt, err := h.volumeType(r, "volume_extension:types_extra_specs:create")
	if err != nil {
		return err
	}
	var specs map[string]string
	if err := h.decode(r, "extra_specs", &specs); err != nil {
		return err
	}
	if _, err := h.svc.SetExtraSpecs(r.Context(), vt.ID, specs); err != nil {
		return err
	}
	return reply(w, http.StatusOK, object{"extra_specs": specs})
}

func (h *handler) showExtraSpec(w http.ResponseWriter, r *http.Request) error {
	vt, err := h.volumeType(r, "volume_extension:types_extra_specs:show")
	if err != nil {
		return err
	}
	key := r.PathValue("key")
	value, ok := h.visibleSpecs(r, vt)[key]
	if !ok {
		return trustack.Reasonf(trustack.ENOTFOUND, "VolumeTypeExtraSpecsNotFound", "Volume Type %s has no extra specs with key %s.", vt.ID, key)
	}
	return reply(w, http.StatusOK, object{key: value})
}

// updateExtraSpec sets one key, which the body ({key: value}) names
// alone, as the path does.
func (h *handler) updateExtraSpec(w http.ResponseWriter, r *http.Request) error {
	vt, err := h.volumeType(r, "volume_extension:types_extra_specs:update")
	if err != nil {
		return err
	}
	key := r.PathValue("key")
	var body map[string]string
	if err := h.dec.Decode(r, &body); err != nil {
		return err
	}
	if _, ok := body[key]; !ok || len(body) != 1 {
		return trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Invalid input received: the body must have exactly one key, the path's %s.", key)
	}
	if _, err := h.svc.SetExtraSpecs(r.Context(), vt.ID, maps.Clone(body)); err != nil {
		return err
	}
	return reply(w, http.StatusOK, body)
}

func (h *handler) deleteExtraSpec(w http.ResponseWriter, r *http.Request) error {
	vt, err := h.volumeType(r, "volume_extension:types_extra_specs:delete")
	if err != nil {
		return err
	}
	if err := h.svc.UnsetExtraSpec(r.Context(), vt.ID, r.PathValue("key")); err != nil {
		return err
	}
	return accepted(w)
}
