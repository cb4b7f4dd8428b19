package identity

import (
	"net/http"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/api/openstack"
	"github.com/trustack/trustack/policy"
)

// Groups.

type groupFields struct {
	Name        openstack.Optional[string] `json:"name"`
	Description openstack.Optional[string] `json:"description"`
	DomainID    openstack.Optional[string] `json:"domain_id"`
}

func (f *groupFields) apply(g *trustack.Group) error {
	f.Description.ApplyNullable(&g.Description)
	f.DomainID.ApplyNullable(&g.DomainID)
	return f.Name.Apply(&g.Name, "group.name")
}

func (h *handler) listGroups(w http.ResponseWriter, r *http.Request) error {
	scoped, target := listScope(r, "target.group.domain_id")
	if err := h.api.Authorize(r, "identity:list_groups", target); err != nil {
		return err
	}
	q := r.URL.Query()
	f := trustack.GroupFilter{DomainID: q.Get("domain_id"), Name: q.Get("name")}
	if scoped != "" {
		f.DomainID = scoped
	}
	list, err := h.svc.Groups(r.Context(), f)
	if err != nil {
		return err
	}
	h.collection(w, r, "groups", render(list, h.group))
	return nil
}

func (h *handler) createGroup(w http.ResponseWriter, r *http.Request) error {
	var f groupFields
	extra, err := h.decodeEntity(r, "group", &f)
	if err != nil {
		return err
	}
	g := &trustack.Group{Extra: extra}
	if err := f.apply(g); err != nil {
		return err
	}
	if g.DomainID == "" {
		g.DomainID = defaultDomain(r)
	}
	if err := h.api.Authorize(r, "identity:create_group", policy.Target{"target.group.domain_id": g.DomainID}); err != nil {
		return err
	}
	if err := h.svc.CreateGroup(r.Context(), g); err != nil {
		return err
	}
	return created(w, "group", h.group(g))
}

// groupFor loads the request's group and checks rule against it.
func (h *handler) groupFor(r *http.Request, rule string) (*trustack.Group, error) {
	g, err := h.svc.Group(r.Context(), r.PathValue("group_id"))
	if err != nil {
		return nil, err
	}
	return g, h.api.Authorize(r, rule, groupTarget(g))
}

func (h *handler) getGroup(w http.ResponseWriter, r *http.Request) error {
	g, err := h.groupFor(r, "identity:get_group")
	if err != nil {
		return err
	}
	return ok(w, "group", h.group(g))
}

func (h *handler) updateGroup(w http.ResponseWriter, r *http.Request) error {
	g, err := h.groupFor(r, "identity:update_group")
	if err != nil {
		return err
	}
	var f groupFields
	extra, err := h.decodeEntity(r, "group", &f)
	if err != nil {
		return err
	}
	g, err = h.svc.UpdateGroup(r.Context(), g.ID, func(g *trustack.Group) error {
		mergeExtra(&g.Extra, extra)
		return f.apply(g)
	})
	if err != nil {
		return err
	}
	return ok(w, "group", h.group(g))
}

func (h *handler) deleteGroup(w http.ResponseWriter, r *http.Request) error {
	g, err := h.groupFor(r, "identity:delete_group")
	if err != nil {
		return err
	}
	return noContent(w, h.svc.DeleteGroup(r.Context(), g.ID))
}

func (h *handler) listGroupUsers(w http.ResponseWriter, r *http.Request) error {
	g, err := h.groupFor(r, "identity:list_users_in_group")
	if err != nil {
		return err
	}
	list, err := h.svc.Users(r.Context(), trustack.UserFilter{GroupID: g.ID})
	if err != nil {
		return err
	}
	h.collection(w, r, "users", render(list, h.user))
	return nil
}

// membership loads the request's group and user and checks rule.
func (h *handler) membership(r *http.Request, rule string) (*trustack.Group, *trustack.User, error) {
	g, err := h.svc.Group(r.Context(), r.PathValue("group_id"))
	if err != nil {
		return nil, nil, err
	}
	u, err := h.svc.User(r.Context(), r.PathValue("user_id"))
	if err != nil {
		return nil, nil, err
	}
	return g, u, h.api.Authorize(r, rule, merge(groupTarget(g), userTarget(u)))
}

func (h *handler) addGroupUser(w http.ResponseWriter, r *http.Request) error {
	g, u, err := h.membership(r, "identity:add_user_to_group")
	if err != nil {
		return err
	}
	return noContent(w, h.svc.AddGroupMember(r.Context(), g.ID, u.ID))
}

func (h *handler) checkGroupUser(w http.ResponseWriter, r *http.Request) error {
	g, u, err := h.membership(r, "identity:check_user_in_group")
	if err != nil {
		return err
	}
	in, err := h.svc.IsGroupMember(r.Context(), g.ID, u.ID)
	if err == nil && !in {
		err = trustack.Errorf(trustack.ENOTFOUND, "User %s is not a member of group %s.", u.ID, g.ID)
	}
	return noContent(w, err)
}

func (h *handler) removeGroupUser(w http.ResponseWriter, r *http.Request) error {
	g, u, err := h.membership(r, "identity:remove_user_from_group")
	if err != nil {
		return err
	}
	return noContent(w, h.svc.RemoveGroupMember(r.Context(), g.ID, u.ID))
}
