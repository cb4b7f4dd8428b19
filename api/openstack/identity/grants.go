package identity

import (
	"net/http"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/api/openstack"
	"github.com/trustack/trustack/policy"
)

// grantRoute is one of the four families of grant URLs:
// /{projects|domains}/{target_id}/{users|groups}/{actor_id}/roles.
type grantRoute struct {
	target string // "projects" or "domains"
	actor  string // "users" or "groups"
}

// grant reads a grant URL: the assignment it names (without a role when
// the URL has none) and the policy target Keystone builds for it, giving
// ENOTFOUND for anything named that does not exist.
func (h *handler) grant(r *http.Request, g grantRoute) (trustack.Assignment, policy.Target, error) {
	ctx := r.Context()
	var a trustack.Assignment
	target := policy.Target{}
	actorID, targetID := r.PathValue("actor_id"), r.PathValue("target_id")
	if g.actor == "users" {
		u, err := h.svc.User(ctx, actorID)
		if err != nil {
			return a, nil, err
		}
		a.UserID, target = u.ID, merge(target, userTarget(u))
	} else {
		grp, err := h.svc.Group(ctx, actorID)
		if err != nil {
			return a, nil, err
		}
		a.GroupID, target = grp.ID, merge(target, groupTarget(grp))
	}
	if g.target == "projects" {
		p, err := h.svc.Project(ctx, targetID)
		if err != nil {
			return a, nil, err
		}
		a.ProjectID, target = p.ID, merge(target, projectTarget(p))
	} else {
		d, err := h.svc.Domain(ctx, targetID)
		if err != nil {
			return a, nil, err
		}
		a.DomainID, target = d.ID, merge(target, domainTarget(d))
	}
	if roleID := r.PathValue("role_id"); roleID != "" {
		role, err := h.svc.Role(ctx, roleID)
		if err != nil {
			return a, nil, err
		}
		a.RoleID, target = role.ID, merge(target, roleTarget(role))
	}
	return a, target, nil
}

func (h *handler) listGrants(g grantRoute) openstack.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		a, target, err := h.grant(r, g)
		if err != nil {
			return err
		}
		if err := h.api.Authorize(r, "identity:list_grants", target); err != nil {
			return err
		}
		as, err := h.svc.Assignments(r.Context(), trustack.AssignmentFilter{UserID: a.UserID, GroupID: a.GroupID, ProjectID: a.ProjectID, DomainID: a.DomainID})
		if err != nil {
			return err
		}
		var out []object
		for _, a := range as {
			role, err := h.svc.Role(r.Context(), a.RoleID)
			if err != nil {
				return err
			}
			out = append(out, h.role(role))
		}
		h.collection(w, r, "roles", out)
		return nil
	}
}

func (h *handler) createGrant(g grantRoute) openstack.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		a, target, err := h.grant(r, g)
		if err != nil {
			return err
		}
		if err := h.api.Authorize(r, "identity:create_grant", target); err != nil {
			return err
		}
		return noContent(w, h.svc.Grant(r.Context(), a))
	}
}

func (h *handler) checkGrant(g grantRoute) openstack.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		a, target, err := h.grant(r, g)
		if err != nil {
			return err
		}
		if err := h.api.Authorize(r, "identity:check_grant", target); err != nil {
			return err
		}
		as, err := h.svc.Assignments(r.Context(), trustack.AssignmentFilter{RoleID: a.RoleID, UserID: a.UserID, GroupID: a.GroupID, ProjectID: a.ProjectID, DomainID: a.DomainID})
		if err == nil && len(as) == 0 {
			err = trustack.Errorf(trustack.ENOTFOUND, "Could not find role assignment with role: %s.", a.RoleID)
		}
		return noContent(w, err)
	}
}

func (h *handler) revokeGrant(g grantRoute) openstack.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		a, target, err := h.grant(r, g)
		if err != nil {
			return err
		}
		if err := h.api.Authorize(r, "identity:revoke_grant", target); err != nil {
			return err
		}
		return noContent(w, h.svc.RevokeGrant(r.Context(), a))
	}
}

// listRoleAssignments serves GET /v3/role_assignments with Keystone's
// filters: user.id, group.id, role.id, scope.project.id, scope.domain.id,
// effective and include_names.
func (h *handler) listRoleAssignments(w http.ResponseWriter, r *http.Request) error {
	scoped, target := listScope(r, "target.domain_id")
	if err := h.api.Authorize(r, "identity:list_role_assignments", target); err != nil {
		return err
	}
	q := r.URL.Query()
	f := trustack.AssignmentFilter{
		UserID: q.Get("user.id"), GroupID: q.Get("group.id"), RoleID: q.Get("role.id"),
		ProjectID: q.Get("scope.project.id"), DomainID: q.Get("scope.domain.id"),
	}
	if f.ProjectID != "" && f.DomainID != "" {
		return trustack.Errorf(trustack.EINVALID, "Specify one of scope.project.id and scope.domain.id, not both.")
	}
	effective := flag(r, "effective") != nil && *flag(r, "effective")
	names := flag(r, "include_names") != nil && *flag(r, "include_names")
	var as []trustack.Assignment
	var err error
	if effective {
		if f.GroupID != "" {
			return trustack.Errorf(trustack.EINVALID, "The effective assignments of a group cannot be listed: filter by user instead.")
		}
		as, err = h.svc.EffectiveAssignments(r.Context(), f)
	} else {
		as, err = h.svc.Assignments(r.Context(), f)
	}
	if err != nil {
		return err
	}
	out := make([]object, 0, len(as))
	for _, a := range as {
		if scoped != "" && !h.inDomain(r, a, scoped) {
			continue
		}
		o, err := h.assignment(r, a, names)
		if err != nil {
			return err
		}
		out = append(out, o)
	}
	h.collection(w, r, "role_assignments", out)
	return nil
}

// inDomain reports whether an assignment's target lies in the domain.
func (h *handler) inDomain(r *http.Request, a trustack.Assignment, domainID string) bool {
	if a.DomainID != "" {
		return a.DomainID == domainID
	}
	p, err := h.svc.Project(r.Context(), a.ProjectID)
	return err == nil && p.DomainID == domainID
}

// assignment renders one role assignment, with names if asked for.
func (h *handler) assignment(r *http.Request, a trustack.Assignment, names bool) (object, error) {
	ctx := r.Context()
	ref := func(id string) object { return object{"id": id} }
	o := object{"role": ref(a.RoleID)}
	actor, actorPath := ref(a.UserID), "users/"+a.UserID
	if a.GroupID != "" {
		actor, actorPath = ref(a.GroupID), "groups/"+a.GroupID
		o["group"] = actor
	} else {
		o["user"] = actor
	}
	scope, scopePath := ref(a.ProjectID), "projects/"+a.ProjectID
	if a.DomainID != "" {
		scope, scopePath = ref(a.DomainID), "domains/"+a.DomainID
		o["scope"] = object{"domain": scope}
	} else {
		o["scope"] = object{"project": scope}
	}
	o["links"] = object{"assignment": h.base + "/v3/" + scopePath + "/" + actorPath + "/roles/" + a.RoleID}
	if !names {
		return o, nil
	}
	domainRef := func(id string) (object, error) {
		d, err := h.svc.Domain(ctx, id)
		if err != nil {
			return nil, err
		}
		return object{"id": d.ID, "name": d.Name}, nil
	}
	role, err := h.svc.Role(ctx, a.RoleID)
	if err != nil {
		return nil, err
	}
	o["role"].(object)["name"] = role.Name
	var actorDomain, scopeDomain string
	if a.GroupID != "" {
		g, err := h.svc.Group(ctx, a.GroupID)
		if err != nil {
			return nil, err
		}
		actor["name"], actorDomain = g.Name, g.DomainID
	} else {
		u, err := h.svc.User(ctx, a.UserID)
		if err != nil {
			return nil, err
		}
		actor["name"], actorDomain = u.Name, u.DomainID
	}
	if actor["domain"], err = domainRef(actorDomain); err != nil {
		return nil, err
	}
	if a.DomainID != "" {
		d, err := domainRef(a.DomainID)
		if err != nil {
			return nil, err
		}
		scope["name"] = d["name"]
		return o, nil
	}
	p, err := h.svc.Project(ctx, a.ProjectID)
	if err != nil {
		return nil, err
	}
	scope["name"], scopeDomain = p.Name, p.DomainID
	if scope["domain"], err = domainRef(scopeDomain); err != nil {
		return nil, err
	}
	return o, nil
}
