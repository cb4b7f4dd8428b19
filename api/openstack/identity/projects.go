package identity

import (
	"net/http"
	"slices"
	"strings"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/api/openstack"
	"github.com/trustack/trustack/policy"
)

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
