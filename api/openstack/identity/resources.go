package identity

import (
	"net/http"
	"slices"
	"strings"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/api/openstack"
	"github.com/trustack/trustack/policy"
)

// Targets of policy checks, flattened as Keystone's.

func domainTarget(d *trustack.Domain) policy.Target {
	return policy.Target{"target.domain.id": d.ID}
}

func projectTarget(p *trustack.Project) policy.Target {
	return policy.Target{"target.project.id": p.ID, "target.project.domain_id": p.DomainID}
}

func userTarget(u *trustack.User) policy.Target {
	return policy.Target{"target.user.id": u.ID, "target.user.domain_id": u.DomainID}
}

func groupTarget(g *trustack.Group) policy.Target {
	return policy.Target{"target.group.id": g.ID, "target.group.domain_id": g.DomainID}
}

func roleTarget(r *trustack.Role) policy.Target {
	return policy.Target{"target.role.id": r.ID, "target.role.name": r.Name, "target.role.domain_id": "None"}
}

// merge returns the union of targets.
func merge(ts ...policy.Target) policy.Target {
	out := policy.Target{}
	for _, t := range ts {
		for k, v := range t {
			out[k] = v
		}
	}
	return out
}

// listScope returns, for a domain-scoped token, its domain: lists are
// limited to it, and policy sees it as the target's domain (key).
func listScope(r *http.Request, key string) (string, policy.Target) {
	if d := openstack.TokenOf(r).Domain; d != nil {
		return d.ID, policy.Target{key: d.ID}
	}
	return "", policy.Target{}
}

// created and deleted write the usual responses.
func created(w http.ResponseWriter, key string, v object) error {
	openstack.JSON(w, http.StatusCreated, object{key: v})
	return nil
}

func ok(w http.ResponseWriter, key string, v object) error {
	openstack.JSON(w, http.StatusOK, object{key: v})
	return nil
}

func noContent(w http.ResponseWriter, err error) error {
	if err == nil {
		w.WriteHeader(http.StatusNoContent)
	}
	return err
}

// render lists things with a renderer.
func render[T any](list []*T, fn func(*T) object) []object {
	out := make([]object, len(list))
	for i, v := range list {
		out[i] = fn(v)
	}
	return out
}

// Domains.

type domainFields struct {
	Name        openstack.Optional[string] `json:"name"`
	Description openstack.Optional[string] `json:"description"`
	Enabled     openstack.Optional[bool]   `json:"enabled"`
}

func (f *domainFields) apply(d *trustack.Domain) error {
	f.Description.ApplyNullable(&d.Description)
	if err := f.Name.Apply(&d.Name, "domain.name"); err != nil {
		return err
	}
	return f.Enabled.Apply(&d.Enabled, "domain.enabled")
}

func (h *handler) listDomains(w http.ResponseWriter, r *http.Request) error {
	scoped, target := listScope(r, "target.domain.id")
	if err := h.api.Authorize(r, "identity:list_domains", target); err != nil {
		return err
	}
	list, err := h.svc.Domains(r.Context(), trustack.DomainFilter{Name: r.URL.Query().Get("name"), Enabled: flag(r, "enabled")})
	if err != nil {
		return err
	}
	var out []object
	for _, d := range list {
		if scoped == "" || d.ID == scoped {
			out = append(out, h.domain(d))
		}
	}
	h.collection(w, r, "domains", out)
	return nil
}

func (h *handler) createDomain(w http.ResponseWriter, r *http.Request) error {
	if err := h.api.Authorize(r, "identity:create_domain", nil); err != nil {
		return err
	}
	var f domainFields
	extra, err := h.decodeEntity(r, "domain", &f)
	if err != nil {
		return err
	}
	d := &trustack.Domain{Enabled: true, Extra: extra}
	if err := f.apply(d); err != nil {
		return err
	}
	if err := h.svc.CreateDomain(r.Context(), d); err != nil {
		return err
	}
	return created(w, "domain", h.domain(d))
}

func (h *handler) getDomain(w http.ResponseWriter, r *http.Request) error {
	d, err := h.svc.Domain(r.Context(), r.PathValue("domain_id"))
	if err != nil {
		return err
	}
	if err := h.api.Authorize(r, "identity:get_domain", domainTarget(d)); err != nil {
		return err
	}
	return ok(w, "domain", h.domain(d))
}

func (h *handler) updateDomain(w http.ResponseWriter, r *http.Request) error {
	if err := h.api.Authorize(r, "identity:update_domain", nil); err != nil {
		return err
	}
	var f domainFields
	extra, err := h.decodeEntity(r, "domain", &f)
	if err != nil {
		return err
	}
	d, err := h.svc.UpdateDomain(r.Context(), r.PathValue("domain_id"), func(d *trustack.Domain) error {
		mergeExtra(&d.Extra, extra)
		return f.apply(d)
	})
	if err != nil {
		return err
	}
	return ok(w, "domain", h.domain(d))
}

func (h *handler) deleteDomain(w http.ResponseWriter, r *http.Request) error {
	if err := h.api.Authorize(r, "identity:delete_domain", nil); err != nil {
		return err
	}
	return noContent(w, h.svc.DeleteDomain(r.Context(), r.PathValue("domain_id")))
}

// Projects.

type projectFields struct {
	Name        openstack.Optional[string]   `json:"name"`
	Description openstack.Optional[string]   `json:"description"`
	DomainID    openstack.Optional[string]   `json:"domain_id"`
	ParentID    openstack.Optional[string]   `json:"parent_id"`
	Enabled     openstack.Optional[bool]     `json:"enabled"`
	Tags        openstack.Optional[[]string] `json:"tags"`
}

func (f *projectFields) apply(p *trustack.Project) error {
	f.Description.ApplyNullable(&p.Description)
	f.Tags.ApplyNullable(&p.Tags)
	f.ParentID.ApplyNullable(&p.ParentID)
	f.DomainID.ApplyNullable(&p.DomainID)
	if err := f.Name.Apply(&p.Name, "project.name"); err != nil {
		return err
	}
	return f.Enabled.Apply(&p.Enabled, "project.enabled")
}

func (h *handler) listProjects(w http.ResponseWriter, r *http.Request) error {
	scoped, target := listScope(r, "target.domain_id")
	if err := h.api.Authorize(r, "identity:list_projects", target); err != nil {
		return err
	}
	q := r.URL.Query()
	if flag(r, "is_domain") != nil && *flag(r, "is_domain") {
		h.collection(w, r, "projects", nil) // no project acts as a domain here
		return nil
	}
	f := trustack.ProjectFilter{DomainID: q.Get("domain_id"), Name: q.Get("name"), ParentID: q.Get("parent_id"), Enabled: flag(r, "enabled")}
	if scoped != "" {
		if f.DomainID != "" && f.DomainID != scoped {
			h.collection(w, r, "projects", nil)
			return nil
		}
		f.DomainID = scoped
	}
	list, err := h.svc.Projects(r.Context(), f)
	if err != nil {
		return err
	}
	var out []object
	for _, p := range list {
		if tagsMatch(r, p.Tags) {
			out = append(out, h.project(p))
		}
	}
	h.collection(w, r, "projects", out)
	return nil
}

// tagsMatch applies Keystone's tag filters, each a comma-separated list:
// tags (has all), tags-any (has one), not-tags (lacks one of them),
// not-tags-any (has none).
func tagsMatch(r *http.Request, have []string) bool {
	q := r.URL.Query()
	count := func(param string) (n, of int) {
		if !q.Has(param) {
			return 0, 0
		}
		want := strings.Split(q.Get(param), ",")
		for _, t := range want {
			if slices.Contains(have, t) {
				n++
			}
		}
		return n, len(want)
	}
	all, allOf := count("tags")
	anyN, _ := count("tags-any")
	notAll, notAllOf := count("not-tags")
	notAny, _ := count("not-tags-any")
	return all == allOf &&
		(!q.Has("tags-any") || anyN > 0) &&
		(!q.Has("not-tags") || notAll < notAllOf) &&
		notAny == 0
}

func (h *handler) createProject(w http.ResponseWriter, r *http.Request) error {
	var f projectFields
	extra, err := h.decodeEntity(r, "project", &f)
	if err != nil {
		return err
	}
	p := &trustack.Project{Enabled: true, Extra: extra}
	if err := f.apply(p); err != nil {
		return err
	}
	if p.DomainID == "" {
		p.DomainID = defaultDomain(r)
	}
	if err := h.api.Authorize(r, "identity:create_project", policy.Target{"target.project.domain_id": p.DomainID}); err != nil {
		return err
	}
	if err := h.svc.CreateProject(r.Context(), p); err != nil {
		return err
	}
	return created(w, "project", h.project(p))
}

// defaultDomain is where a new thing goes when the request names no
// domain: the token's domain, as Keystone does, or the default one.
func defaultDomain(r *http.Request) string {
	tok := openstack.TokenOf(r)
	switch {
	case tok.Domain != nil:
		return tok.Domain.ID
	case tok.Project != nil:
		return tok.Project.DomainID
	default:
		return trustack.DefaultDomainID
	}
}

func (h *handler) getProject(w http.ResponseWriter, r *http.Request) error {
	p, err := h.svc.Project(r.Context(), r.PathValue("project_id"))
	if err != nil {
		return err
	}
	if err := h.api.Authorize(r, "identity:get_project", projectTarget(p)); err != nil {
		return err
	}
	return ok(w, "project", h.project(p))
}

func (h *handler) updateProject(w http.ResponseWriter, r *http.Request) error {
	p, err := h.svc.Project(r.Context(), r.PathValue("project_id"))
	if err != nil {
		return err
	}
	if err := h.api.Authorize(r, "identity:update_project", projectTarget(p)); err != nil {
		return err
	}
	var f projectFields
	extra, err := h.decodeEntity(r, "project", &f)
	if err != nil {
		return err
	}
	p, err = h.svc.UpdateProject(r.Context(), p.ID, func(p *trustack.Project) error {
		mergeExtra(&p.Extra, extra)
		return f.apply(p)
	})
	if err != nil {
		return err
	}
	return ok(w, "project", h.project(p))
}

func (h *handler) deleteProject(w http.ResponseWriter, r *http.Request) error {
	p, err := h.svc.Project(r.Context(), r.PathValue("project_id"))
	if err != nil {
		return err
	}
	if err := h.api.Authorize(r, "identity:delete_project", projectTarget(p)); err != nil {
		return err
	}
	return noContent(w, h.svc.DeleteProject(r.Context(), p.ID))
}

// Project tags.

// projectFor loads the request's project and checks rule against it.
func (h *handler) projectFor(r *http.Request, rule string) (*trustack.Project, error) {
	p, err := h.svc.Project(r.Context(), r.PathValue("project_id"))
	if err != nil {
		return nil, err
	}
	return p, h.api.Authorize(r, rule, projectTarget(p))
}

func tagList(tags []string) object {
	if tags == nil {
		tags = []string{}
	}
	return object{"tags": tags}
}

// setTags replaces the project's tags with what fn makes of them.
func (h *handler) setTags(r *http.Request, p *trustack.Project, fn func([]string) []string) (*trustack.Project, error) {
	return h.svc.UpdateProject(r.Context(), p.ID, func(p *trustack.Project) error {
		p.Tags = fn(p.Tags)
		return nil
	})
}

func (h *handler) listProjectTags(w http.ResponseWriter, r *http.Request) error {
	p, err := h.projectFor(r, "identity:list_project_tags")
	if err != nil {
		return err
	}
	openstack.JSON(w, http.StatusOK, tagList(p.Tags))
	return nil
}

func (h *handler) replaceProjectTags(w http.ResponseWriter, r *http.Request) error {
	p, err := h.projectFor(r, "identity:update_project_tags")
	if err != nil {
		return err
	}
	var body struct {
		Tags *[]string `json:"tags"`
	}
	if err := h.dec.Decode(r, &body); err != nil {
		return err
	}
	if body.Tags == nil {
		return trustack.Errorf(trustack.EINVALID, "Invalid input for field 'tags': it is a required property.")
	}
	if p, err = h.setTags(r, p, func([]string) []string { return *body.Tags }); err != nil {
		return err
	}
	openstack.JSON(w, http.StatusOK, tagList(p.Tags))
	return nil
}

func (h *handler) deleteProjectTags(w http.ResponseWriter, r *http.Request) error {
	p, err := h.projectFor(r, "identity:delete_project_tags")
	if err != nil {
		return err
	}
	_, err = h.setTags(r, p, func([]string) []string { return nil })
	return noContent(w, err)
}

func (h *handler) checkProjectTag(w http.ResponseWriter, r *http.Request) error {
	p, err := h.projectFor(r, "identity:get_project_tag")
	if err != nil {
		return err
	}
	if !slices.Contains(p.Tags, r.PathValue("tag")) {
		return trustack.Errorf(trustack.ENOTFOUND, "Could not find tag %q on project %s.", r.PathValue("tag"), p.ID)
	}
	return noContent(w, nil)
}

func (h *handler) addProjectTag(w http.ResponseWriter, r *http.Request) error {
	p, err := h.projectFor(r, "identity:create_project_tag")
	if err != nil {
		return err
	}
	tag := r.PathValue("tag")
	if _, err := h.setTags(r, p, func(tags []string) []string {
		if slices.Contains(tags, tag) {
			return tags
		}
		return append(tags, tag)
	}); err != nil {
		return err
	}
	w.Header().Set("Location", h.base+"/v3/projects/"+p.ID+"/tags/"+tag)
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (h *handler) deleteProjectTag(w http.ResponseWriter, r *http.Request) error {
	p, err := h.projectFor(r, "identity:delete_project_tag")
	if err != nil {
		return err
	}
	tag := r.PathValue("tag")
	if !slices.Contains(p.Tags, tag) {
		return trustack.Errorf(trustack.ENOTFOUND, "Could not find tag %q on project %s.", tag, p.ID)
	}
	_, err = h.setTags(r, p, func(tags []string) []string { return slices.DeleteFunc(tags, func(t string) bool { return t == tag }) })
	return noContent(w, err)
}

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

// Regions.

type regionFields struct {
	ID             openstack.Optional[string] `json:"id"`
	Description    openstack.Optional[string] `json:"description"`
	ParentRegionID openstack.Optional[string] `json:"parent_region_id"`
}

func (f *regionFields) apply(region *trustack.Region) {
	f.Description.ApplyNullable(&region.Description)
	f.ParentRegionID.ApplyNullable(&region.ParentRegionID)
}

func (h *handler) listRegions(w http.ResponseWriter, r *http.Request) error {
	if err := h.api.Authorize(r, "identity:list_regions", nil); err != nil {
		return err
	}
	list, err := h.svc.Regions(r.Context(), trustack.RegionFilter{ParentRegionID: r.URL.Query().Get("parent_region_id")})
	if err != nil {
		return err
	}
	h.collection(w, r, "regions", render(list, h.region))
	return nil
}

// createRegion serves POST /regions (an ID in the body, or a new one) and
// PUT /regions/{region_id}.
func (h *handler) createRegion(w http.ResponseWriter, r *http.Request) error {
	if err := h.api.Authorize(r, "identity:create_region", nil); err != nil {
		return err
	}
	var f regionFields
	extra, err := h.decodeEntity(r, "region", &f)
	if err != nil {
		return err
	}
	region := &trustack.Region{Extra: extra}
	f.apply(region)
	f.ID.ApplyNullable(&region.ID)
	if id := r.PathValue("region_id"); id != "" {
		if region.ID != "" && region.ID != id {
			return trustack.Errorf(trustack.EINVALID, "The region ID in the body differs from the one in the URL.")
		}
		region.ID = id
	}
	if err := h.svc.CreateRegion(r.Context(), region); err != nil {
		return err
	}
	return created(w, "region", h.region(region))
}

func (h *handler) getRegion(w http.ResponseWriter, r *http.Request) error {
	if err := h.api.Authorize(r, "identity:get_region", nil); err != nil {
		return err
	}
	region, err := h.svc.Region(r.Context(), r.PathValue("region_id"))
	if err != nil {
		return err
	}
	return ok(w, "region", h.region(region))
}

func (h *handler) updateRegion(w http.ResponseWriter, r *http.Request) error {
	if err := h.api.Authorize(r, "identity:update_region", nil); err != nil {
		return err
	}
	var f regionFields
	extra, err := h.decodeEntity(r, "region", &f)
	if err != nil {
		return err
	}
	region, err := h.svc.UpdateRegion(r.Context(), r.PathValue("region_id"), func(region *trustack.Region) error {
		mergeExtra(&region.Extra, extra)
		f.apply(region)
		return nil
	})
	if err != nil {
		return err
	}
	return ok(w, "region", h.region(region))
}

func (h *handler) deleteRegion(w http.ResponseWriter, r *http.Request) error {
	if err := h.api.Authorize(r, "identity:delete_region", nil); err != nil {
		return err
	}
	return noContent(w, h.svc.DeleteRegion(r.Context(), r.PathValue("region_id")))
}

// Services.

type serviceFields struct {
	Type        openstack.Optional[string] `json:"type"`
	Name        openstack.Optional[string] `json:"name"`
	Description openstack.Optional[string] `json:"description"`
	Enabled     openstack.Optional[bool]   `json:"enabled"`
}

func (f *serviceFields) apply(s *trustack.Service) error {
	f.Name.ApplyNullable(&s.Name)
	f.Description.ApplyNullable(&s.Description)
	if err := f.Type.Apply(&s.Type, "service.type"); err != nil {
		return err
	}
	return f.Enabled.Apply(&s.Enabled, "service.enabled")
}

func (h *handler) listServices(w http.ResponseWriter, r *http.Request) error {
	if err := h.api.Authorize(r, "identity:list_services", nil); err != nil {
		return err
	}
	q := r.URL.Query()
	list, err := h.svc.Services(r.Context(), trustack.ServiceFilter{Type: q.Get("type"), Name: q.Get("name")})
	if err != nil {
		return err
	}
	h.collection(w, r, "services", render(list, h.service))
	return nil
}

func (h *handler) createService(w http.ResponseWriter, r *http.Request) error {
	if err := h.api.Authorize(r, "identity:create_service", nil); err != nil {
		return err
	}
	var f serviceFields
	extra, err := h.decodeEntity(r, "service", &f)
	if err != nil {
		return err
	}
	s := &trustack.Service{Enabled: true, Extra: extra}
	if err := f.apply(s); err != nil {
		return err
	}
	if err := h.svc.CreateService(r.Context(), s); err != nil {
		return err
	}
	return created(w, "service", h.service(s))
}

func (h *handler) getService(w http.ResponseWriter, r *http.Request) error {
	if err := h.api.Authorize(r, "identity:get_service", nil); err != nil {
		return err
	}
	s, err := h.svc.Service(r.Context(), r.PathValue("service_id"))
	if err != nil {
		return err
	}
	return ok(w, "service", h.service(s))
}

func (h *handler) updateService(w http.ResponseWriter, r *http.Request) error {
	if err := h.api.Authorize(r, "identity:update_service", nil); err != nil {
		return err
	}
	var f serviceFields
	extra, err := h.decodeEntity(r, "service", &f)
	if err != nil {
		return err
	}
	s, err := h.svc.UpdateService(r.Context(), r.PathValue("service_id"), func(s *trustack.Service) error {
		mergeExtra(&s.Extra, extra)
		return f.apply(s)
	})
	if err != nil {
		return err
	}
	return ok(w, "service", h.service(s))
}

func (h *handler) deleteService(w http.ResponseWriter, r *http.Request) error {
	if err := h.api.Authorize(r, "identity:delete_service", nil); err != nil {
		return err
	}
	return noContent(w, h.svc.DeleteService(r.Context(), r.PathValue("service_id")))
}

// Endpoints.

type endpointFields struct {
	ServiceID openstack.Optional[string] `json:"service_id"`
	Interface openstack.Optional[string] `json:"interface"`
	URL       openstack.Optional[string] `json:"url"`
	RegionID  openstack.Optional[string] `json:"region_id"`
	Region    openstack.Optional[string] `json:"region"` // the older name of region_id
	Enabled   openstack.Optional[bool]   `json:"enabled"`
}

func (f *endpointFields) apply(e *trustack.Endpoint) error {
	f.Region.ApplyNullable(&e.RegionID)
	f.RegionID.ApplyNullable(&e.RegionID)
	for _, field := range []struct {
		o   openstack.Optional[string]
		dst *string
		n   string
	}{{f.ServiceID, &e.ServiceID, "endpoint.service_id"}, {f.Interface, &e.Interface, "endpoint.interface"}, {f.URL, &e.URL, "endpoint.url"}} {
		if err := field.o.Apply(field.dst, field.n); err != nil {
			return err
		}
	}
	return f.Enabled.Apply(&e.Enabled, "endpoint.enabled")
}

func (h *handler) listEndpoints(w http.ResponseWriter, r *http.Request) error {
	if err := h.api.Authorize(r, "identity:list_endpoints", nil); err != nil {
		return err
	}
	q := r.URL.Query()
	list, err := h.svc.Endpoints(r.Context(), trustack.EndpointFilter{ServiceID: q.Get("service_id"), RegionID: q.Get("region_id"), Interface: q.Get("interface")})
	if err != nil {
		return err
	}
	h.collection(w, r, "endpoints", render(list, h.endpoint))
	return nil
}

func (h *handler) createEndpoint(w http.ResponseWriter, r *http.Request) error {
	if err := h.api.Authorize(r, "identity:create_endpoint", nil); err != nil {
		return err
	}
	var f endpointFields
	extra, err := h.decodeEntity(r, "endpoint", &f)
	if err != nil {
		return err
	}
	e := &trustack.Endpoint{Enabled: true, Extra: extra}
	if err := f.apply(e); err != nil {
		return err
	}
	if err := h.svc.CreateEndpoint(r.Context(), e); err != nil {
		return err
	}
	return created(w, "endpoint", h.endpoint(e))
}

func (h *handler) getEndpoint(w http.ResponseWriter, r *http.Request) error {
	if err := h.api.Authorize(r, "identity:get_endpoint", nil); err != nil {
		return err
	}
	e, err := h.svc.Endpoint(r.Context(), r.PathValue("endpoint_id"))
	if err != nil {
		return err
	}
	return ok(w, "endpoint", h.endpoint(e))
}

func (h *handler) updateEndpoint(w http.ResponseWriter, r *http.Request) error {
	if err := h.api.Authorize(r, "identity:update_endpoint", nil); err != nil {
		return err
	}
	var f endpointFields
	extra, err := h.decodeEntity(r, "endpoint", &f)
	if err != nil {
		return err
	}
	e, err := h.svc.UpdateEndpoint(r.Context(), r.PathValue("endpoint_id"), func(e *trustack.Endpoint) error {
		mergeExtra(&e.Extra, extra)
		return f.apply(e)
	})
	if err != nil {
		return err
	}
	return ok(w, "endpoint", h.endpoint(e))
}

func (h *handler) deleteEndpoint(w http.ResponseWriter, r *http.Request) error {
	if err := h.api.Authorize(r, "identity:delete_endpoint", nil); err != nil {
		return err
	}
	return noContent(w, h.svc.DeleteEndpoint(r.Context(), r.PathValue("endpoint_id")))
}
