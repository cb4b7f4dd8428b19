package identity

import (
	"net/http"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/api/openstack"
)

// Roles.

type roleFields struct {
	Name        openstack.Optional[string] `json:"name"`
	Description openstack.Optional[string] `json:"description"`
	DomainID    openstack.Optional[string] `json:"domain_id"`
}

func (f *roleFields) apply(role *trustack.Role) error {
	if f.DomainID.Value != nil {
		return trustack.Errorf(trustack.EINVALID, "Domain-specific roles are not supported.")
	}
	f.Description.ApplyNullable(&role.Description)
	return f.Name.Apply(&role.Name, "role.name")
}

func (h *handler) listRoles(w http.ResponseWriter, r *http.Request) error {
	if err := h.api.Authorize(r, "identity:list_roles", nil); err != nil {
		return err
	}
	if r.URL.Query().Get("domain_id") != "" {
		h.collection(w, r, "roles", nil) // there are no domain-specific roles
		return nil
	}
	list, err := h.svc.Roles(r.Context(), trustack.RoleFilter{Name: r.URL.Query().Get("name")})
	if err != nil {
		return err
	}
	h.collection(w, r, "roles", render(list, h.role))
	return nil
}

func (h *handler) createRole(w http.ResponseWriter, r *http.Request) error {
	if err := h.api.Authorize(r, "identity:create_role", nil); err != nil {
		return err
	}
	var f roleFields
	extra, err := h.decodeEntity(r, "role", &f)
	if err != nil {
		return err
	}
	role := &trustack.Role{Extra: extra}
	if err := f.apply(role); err != nil {
		return err
	}
	if err := h.svc.CreateRole(r.Context(), role); err != nil {
		return err
	}
	return created(w, "role", h.role(role))
}

func (h *handler) roleFor(r *http.Request, rule, param string) (*trustack.Role, error) {
	role, err := h.svc.Role(r.Context(), r.PathValue(param))
	if err != nil {
		return nil, err
	}
	return role, h.api.Authorize(r, rule, roleTarget(role))
}

func (h *handler) getRole(w http.ResponseWriter, r *http.Request) error {
	role, err := h.roleFor(r, "identity:get_role", "role_id")
	if err != nil {
		return err
	}
	return ok(w, "role", h.role(role))
}

func (h *handler) updateRole(w http.ResponseWriter, r *http.Request) error {
	role, err := h.roleFor(r, "identity:update_role", "role_id")
	if err != nil {
		return err
	}
	var f roleFields
	extra, err := h.decodeEntity(r, "role", &f)
	if err != nil {
		return err
	}
	role, err = h.svc.UpdateRole(r.Context(), role.ID, func(role *trustack.Role) error {
		mergeExtra(&role.Extra, extra)
		return f.apply(role)
	})
	if err != nil {
		return err
	}
	return ok(w, "role", h.role(role))
}

func (h *handler) deleteRole(w http.ResponseWriter, r *http.Request) error {
	role, err := h.roleFor(r, "identity:delete_role", "role_id")
	if err != nil {
		return err
	}
	return noContent(w, h.svc.DeleteRole(r.Context(), role.ID))
}

// Implied roles.

func (h *handler) roleRef(role *trustack.Role) object {
	return object{"id": role.ID, "name": role.Name, "links": h.self("roles", role.ID)}
}

// inferences renders the implications of the prior roles given.
func (h *handler) inferences(r *http.Request, priors []*trustack.Role) ([]object, error) {
	all, err := h.svc.ImpliedRoles(r.Context())
	if err != nil {
		return nil, err
	}
	var out []object
	for _, prior := range priors {
		var implies []object
		for _, imp := range all {
			if imp.PriorID != prior.ID {
				continue
			}
			role, err := h.svc.Role(r.Context(), imp.ImpliedID)
			if err != nil {
				return nil, err
			}
			implies = append(implies, h.roleRef(role))
		}
		if implies != nil {
			out = append(out, object{"prior_role": h.roleRef(prior), "implies": implies})
		}
	}
	return out, nil
}

func (h *handler) listImpliedRoles(w http.ResponseWriter, r *http.Request) error {
	prior, err := h.roleFor(r, "identity:list_implied_roles", "prior_role_id")
	if err != nil {
		return err
	}
	infs, err := h.inferences(r, []*trustack.Role{prior})
	if err != nil {
		return err
	}
	inference := object{"prior_role": h.roleRef(prior), "implies": []object{}}
	if len(infs) == 1 {
		inference = infs[0]
	}
	openstack.JSON(w, http.StatusOK, object{"role_inference": inference, "links": h.self("roles", prior.ID, "implies")})
	return nil
}

// impliedPair loads the request's prior and implied roles and checks rule.
func (h *handler) impliedPair(r *http.Request, rule string) (*trustack.Role, *trustack.Role, error) {
	prior, err := h.roleFor(r, rule, "prior_role_id")
	if err != nil {
		return nil, nil, err
	}
	implied, err := h.svc.Role(r.Context(), r.PathValue("implied_role_id"))
	return prior, implied, err
}

func (h *handler) impliedBody(prior, implied *trustack.Role) object {
	return object{
		"role_inference": object{"prior_role": h.roleRef(prior), "implies": h.roleRef(implied)},
		"links":          h.self("roles", prior.ID, "implies", implied.ID),
	}
}

func (h *handler) createImpliedRole(w http.ResponseWriter, r *http.Request) error {
	prior, implied, err := h.impliedPair(r, "identity:create_implied_role")
	if err != nil {
		return err
	}
	if err := h.svc.CreateImpliedRole(r.Context(), trustack.ImpliedRole{PriorID: prior.ID, ImpliedID: implied.ID}); err != nil {
		return err
	}
	openstack.JSON(w, http.StatusCreated, h.impliedBody(prior, implied))
	return nil
}

func (h *handler) getImpliedRole(w http.ResponseWriter, r *http.Request) error {
	rule := "identity:get_implied_role"
	if r.Method == http.MethodHead {
		rule = "identity:check_implied_role"
	}
	prior, implied, err := h.impliedPair(r, rule)
	if err != nil {
		return err
	}
	all, err := h.svc.ImpliedRoles(r.Context())
	if err != nil {
		return err
	}
	for _, imp := range all {
		if imp.PriorID == prior.ID && imp.ImpliedID == implied.ID {
			if r.Method == http.MethodHead {
				w.WriteHeader(http.StatusNoContent)
			} else {
				openstack.JSON(w, http.StatusOK, h.impliedBody(prior, implied))
			}
			return nil
		}
	}
	return trustack.Errorf(trustack.ENOTFOUND, "Could not find implied role: %s implies %s.", prior.ID, implied.ID)
}

func (h *handler) deleteImpliedRole(w http.ResponseWriter, r *http.Request) error {
	prior, implied, err := h.impliedPair(r, "identity:delete_implied_role")
	if err != nil {
		return err
	}
	return noContent(w, h.svc.DeleteImpliedRole(r.Context(), trustack.ImpliedRole{PriorID: prior.ID, ImpliedID: implied.ID}))
}

func (h *handler) listRoleInferences(w http.ResponseWriter, r *http.Request) error {
	if err := h.api.Authorize(r, "identity:list_role_inference_rules", nil); err != nil {
		return err
	}
	roles, err := h.svc.Roles(r.Context(), trustack.RoleFilter{})
	if err != nil {
		return err
	}
	infs, err := h.inferences(r, roles)
	if err != nil {
		return err
	}
	if infs == nil {
		infs = []object{}
	}
	openstack.JSON(w, http.StatusOK, object{"role_inferences": infs, "links": h.self("role_inferences")})
	return nil
}
