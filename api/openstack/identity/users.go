package identity

import (
	"net/http"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/api/openstack"
	"github.com/trustack/trustack/policy"
)

// Users.

type userFields struct {
	Name             openstack.Optional[string] `json:"name"`
	DomainID         openstack.Optional[string] `json:"domain_id"`
	DefaultProjectID openstack.Optional[string] `json:"default_project_id"`
	Enabled          openstack.Optional[bool]   `json:"enabled"`
	Password         openstack.Optional[string] `json:"password"`
}

func (f *userFields) apply(u *trustack.User) error {
	f.DomainID.ApplyNullable(&u.DomainID)
	f.DefaultProjectID.ApplyNullable(&u.DefaultProjectID)
	if err := f.Name.Apply(&u.Name, "user.name"); err != nil {
		return err
	}
	return f.Enabled.Apply(&u.Enabled, "user.enabled")
}

func (h *handler) listUsers(w http.ResponseWriter, r *http.Request) error {
	scoped, target := listScope(r, "target.domain_id")
	if err := h.api.Authorize(r, "identity:list_users", target); err != nil {
		return err
	}
	q := r.URL.Query()
	f := trustack.UserFilter{DomainID: q.Get("domain_id"), Name: q.Get("name"), Enabled: flag(r, "enabled")}
	if scoped != "" {
		if f.DomainID != "" && f.DomainID != scoped {
			h.collection(w, r, "users", nil)
			return nil
		}
		f.DomainID = scoped
	}
	list, err := h.svc.Users(r.Context(), f)
	if err != nil {
		return err
	}
	h.collection(w, r, "users", render(list, h.user))
	return nil
}

func (h *handler) createUser(w http.ResponseWriter, r *http.Request) error {
	var f userFields
	extra, err := h.decodeEntity(r, "user", &f)
	if err != nil {
		return err
	}
	u := &trustack.User{Enabled: true, Extra: extra}
	if err := f.apply(u); err != nil {
		return err
	}
	if u.DomainID == "" {
		u.DomainID = defaultDomain(r)
	}
	if err := h.api.Authorize(r, "identity:create_user", policy.Target{"target.user.domain_id": u.DomainID}); err != nil {
		return err
	}
	var password string
	f.Password.ApplyNullable(&password)
	if err := h.svc.CreateUser(r.Context(), u, password); err != nil {
		return err
	}
	return created(w, "user", h.user(u))
}

func (h *handler) getUser(w http.ResponseWriter, r *http.Request) error {
	u, err := h.svc.User(r.Context(), r.PathValue("user_id"))
	if err != nil {
		return err
	}
	if err := h.api.Authorize(r, "identity:get_user", userTarget(u)); err != nil {
		return err
	}
	return ok(w, "user", h.user(u))
}

func (h *handler) updateUser(w http.ResponseWriter, r *http.Request) error {
	u, err := h.svc.User(r.Context(), r.PathValue("user_id"))
	if err != nil {
		return err
	}
	if err := h.api.Authorize(r, "identity:update_user", userTarget(u)); err != nil {
		return err
	}
	var f userFields
	extra, err := h.decodeEntity(r, "user", &f)
	if err != nil {
		return err
	}
	var password *string
	if f.Password.Set {
		password = new(string)
		f.Password.ApplyNullable(password)
	}
	u, err = h.svc.UpdateUser(r.Context(), u.ID, func(u *trustack.User) error {
		mergeExtra(&u.Extra, extra)
		return f.apply(u)
	}, password)
	if err != nil {
		return err
	}
	return ok(w, "user", h.user(u))
}

func (h *handler) deleteUser(w http.ResponseWriter, r *http.Request) error {
	u, err := h.svc.User(r.Context(), r.PathValue("user_id"))
	if err != nil {
		return err
	}
	if err := h.api.Authorize(r, "identity:delete_user", userTarget(u)); err != nil {
		return err
	}
	return noContent(w, h.svc.DeleteUser(r.Context(), u.ID))
}

func (h *handler) changePassword(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		User *struct {
			Password         *string `json:"password"`
			OriginalPassword *string `json:"original_password"`
		} `json:"user"`
	}
	if err := h.dec.Decode(r, &body); err != nil {
		return err
	}
	switch {
	case body.User == nil:
		return trustack.Errorf(trustack.EINVALID, "Invalid input for field 'user': it is a required property.")
	case body.User.Password == nil:
		return trustack.Errorf(trustack.EINVALID, "Invalid input for field 'user.password': it is a required property.")
	case body.User.OriginalPassword == nil:
		return trustack.Errorf(trustack.EINVALID, "Invalid input for field 'user.original_password': it is a required property.")
	}
	err := h.svc.ChangePassword(r.Context(), r.PathValue("user_id"), *body.User.OriginalPassword, *body.User.Password)
	if trustack.ErrorCode(err) == trustack.ENOTFOUND {
		// Whether a user exists is not for an unauthenticated caller to learn.
		err = trustack.Errorf(trustack.EUNAUTHORIZED, "The original password is not correct.")
	}
	return noContent(w, err)
}

func (h *handler) listUserProjects(w http.ResponseWriter, r *http.Request) error {
	u, err := h.svc.User(r.Context(), r.PathValue("user_id"))
	if err != nil {
		return err
	}
	if err := h.api.Authorize(r, "identity:list_user_projects", userTarget(u)); err != nil {
		return err
	}
	return h.userProjects(w, r, u.ID)
}

func (h *handler) listUserGroups(w http.ResponseWriter, r *http.Request) error {
	u, err := h.svc.User(r.Context(), r.PathValue("user_id"))
	if err != nil {
		return err
	}
	if err := h.api.Authorize(r, "identity:list_groups_for_user", merge(userTarget(u), policy.Target{"user_id": u.ID})); err != nil {
		return err
	}
	list, err := h.svc.Groups(r.Context(), trustack.GroupFilter{UserID: u.ID})
	if err != nil {
		return err
	}
	h.collection(w, r, "groups", render(list, h.group))
	return nil
}
