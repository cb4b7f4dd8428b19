package identity

import (
	"encoding/json"
	"net/http"
	"slices"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/api/openstack"
	"github.com/trustack/trustack/identity"
	"github.com/trustack/trustack/policy"
)

// authBody is the body of POST /v3/auth/tokens.
type authBody struct {
	Auth *struct {
		Identity *struct {
			Methods  []string `json:"methods"`
			Password *struct {
				User *struct {
					ID       string     `json:"id"`
					Name     string     `json:"name"`
					Domain   *domainRef `json:"domain"`
					Password *string    `json:"password"`
				} `json:"user"`
			} `json:"password"`
			Token *struct {
				ID string `json:"id"`
			} `json:"token"`
		} `json:"identity"`
		// Scope is an object, or the string "unscoped".
		Scope json.RawMessage `json:"scope"`
	} `json:"auth"`
}

// domainRef names a domain by ID or name.
type domainRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type scopeBody struct {
	Project *struct {
		ID     string     `json:"id"`
		Name   string     `json:"name"`
		Domain *domainRef `json:"domain"`
	} `json:"project"`
	Domain *domainRef     `json:"domain"`
	System map[string]any `json:"system"`
}

// authRequest turns the wire request into the service's.
func (h *handler) authRequest(r *http.Request) (identity.AuthRequest, error) {
	var req identity.AuthRequest
	var body authBody
	if err := h.dec.Decode(r, &body); err != nil {
		return req, err
	}
	if body.Auth == nil || body.Auth.Identity == nil {
		return req, trustack.Errorf(trustack.EINVALID, "Invalid input for field 'auth.identity': it is a required property.")
	}
	id := body.Auth.Identity
	if len(id.Methods) == 0 {
		return req, trustack.Errorf(trustack.EINVALID, "Invalid input for field 'auth.identity.methods': at least one method is required.")
	}
	for _, m := range id.Methods {
		switch {
		case m == "password" && id.Password != nil && id.Password.User != nil:
			u := id.Password.User
			if u.Password == nil {
				return req, trustack.Errorf(trustack.EINVALID, "Invalid input for field 'auth.identity.password.user.password': it is a required property.")
			}
			req.Password = &identity.PasswordAuth{UserID: u.ID, UserName: u.Name, Password: *u.Password}
			if u.Domain != nil {
				req.Password.DomainID, req.Password.DomainName = u.Domain.ID, u.Domain.Name
			}
		case m == "token" && id.Token != nil && id.Token.ID != "":
			req.Token = id.Token.ID
		case m == "password" || m == "token":
			return req, trustack.Errorf(trustack.EINVALID, "Invalid input for field 'auth.identity.%s': the %s method needs its credentials.", m, m)
		default:
			return req, trustack.Errorf(trustack.EUNAUTHORIZED, "Attempted to authenticate with an unsupported method: %s.", m)
		}
	}
	scope, err := parseScope(body.Auth.Scope)
	req.Scope = scope
	return req, err
}

func parseScope(raw json.RawMessage) (identity.Scope, error) {
	var sc identity.Scope
	if len(raw) == 0 || string(raw) == "null" {
		return sc, nil
	}
	var word string
	if json.Unmarshal(raw, &word) == nil {
		if word != "unscoped" {
			return sc, trustack.Errorf(trustack.EINVALID, "Invalid input for field 'auth.scope': the only scope given as a string is \"unscoped\".")
		}
		sc.Unscoped = true
		return sc, nil
	}
	var body scopeBody
	if err := openstack.UnmarshalField(raw, "auth.scope", &body); err != nil {
		return sc, err
	}
	switch {
	case body.System != nil:
		return sc, trustack.Errorf(trustack.EINVALID, "System-scoped tokens are not supported; scope to a project or a domain.")
	case body.Project != nil:
		sc.ProjectID, sc.ProjectName = body.Project.ID, body.Project.Name
		if body.Project.Domain != nil {
			sc.ProjectDomainID, sc.ProjectDomainName = body.Project.Domain.ID, body.Project.Domain.Name
		}
		if sc.ProjectID == "" && sc.ProjectName == "" {
			return sc, trustack.Errorf(trustack.EINVALID, "Invalid input for field 'auth.scope.project': give its id, or its name and domain.")
		}
	case body.Domain != nil:
		sc.DomainID, sc.DomainName = body.Domain.ID, body.Domain.Name
		if sc.DomainID == "" && sc.DomainName == "" {
			return sc, trustack.Errorf(trustack.EINVALID, "Invalid input for field 'auth.scope.domain': give its id or name.")
		}
	}
	return sc, nil
}

func (h *handler) issueToken(w http.ResponseWriter, r *http.Request) error {
	req, err := h.authRequest(r)
	if err != nil {
		return err
	}
	tok, str, err := h.svc.Authenticate(r.Context(), req)
	if err != nil {
		return err
	}
	body, err := h.token(r, tok)
	if err != nil {
		return err
	}
	w.Header().Set("X-Subject-Token", str)
	openstack.JSON(w, http.StatusCreated, body)
	return nil
}

// subject validates the token named by X-Subject-Token; a token that is
// not valid is, as Keystone says, not found.
func (h *handler) subject(r *http.Request) (*trustack.Token, string, error) {
	str := r.Header.Get("X-Subject-Token")
	if str == "" {
		return nil, "", trustack.Errorf(trustack.EINVALID, "The X-Subject-Token header is required.")
	}
	tok, err := h.svc.Validate(r.Context(), str)
	if trustack.ErrorCode(err) == trustack.EUNAUTHORIZED {
		return nil, "", trustack.Errorf(trustack.ENOTFOUND, "Could not find token: %s", str)
	}
	return tok, str, err
}

func (h *handler) validateToken(w http.ResponseWriter, r *http.Request) error {
	rule := "identity:validate_token"
	if r.Method == http.MethodHead {
		rule = "identity:check_token"
	}
	tok, str, err := h.subject(r)
	if err != nil {
		return err
	}
	if err := h.api.Authorize(r, rule, policy.Target{"target.token.user_id": tok.User.ID}); err != nil {
		return err
	}
	body, err := h.token(r, tok)
	if err != nil {
		return err
	}
	w.Header().Set("X-Subject-Token", str)
	openstack.JSON(w, http.StatusOK, body)
	return nil
}

func (h *handler) revokeToken(w http.ResponseWriter, r *http.Request) error {
	tok, _, err := h.subject(r)
	if err != nil {
		return err
	}
	if err := h.api.Authorize(r, "identity:revoke_token", policy.Target{"target.token.user_id": tok.User.ID}); err != nil {
		return err
	}
	if err := h.svc.Revoke(r.Context(), tok); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// token renders a token as Keystone does; the catalog comes with scoped
// tokens unless the request says ?nocatalog.
func (h *handler) token(r *http.Request, tok *trustack.Token) (object, error) {
	ref := func(id, name string) object { return object{"id": id, "name": name} }
	t := object{
		"methods":    tok.Methods,
		"user":       object{"id": tok.User.ID, "name": tok.User.Name, "domain": ref(tok.UserDomain.ID, tok.UserDomain.Name), "password_expires_at": nil},
		"audit_ids":  tok.AuditIDs,
		"issued_at":  stamp(tok.IssuedAt),
		"expires_at": stamp(tok.ExpiresAt),
	}
	switch {
	case tok.Project != nil:
		t["project"] = object{"id": tok.Project.ID, "name": tok.Project.Name, "domain": ref(tok.ProjectDomain.ID, tok.ProjectDomain.Name)}
		t["is_domain"] = false
	case tok.Domain != nil:
		t["domain"] = ref(tok.Domain.ID, tok.Domain.Name)
	}
	if tok.Project != nil || tok.Domain != nil {
		roles := make([]object, len(tok.Roles))
		for i, role := range tok.Roles {
			roles[i] = ref(role.ID, role.Name)
		}
		t["roles"] = roles
		if !r.URL.Query().Has("nocatalog") {
			catalog, err := h.catalog(r, tok)
			if err != nil {
				return nil, err
			}
			t["catalog"] = catalog
		}
	}
	return object{"token": t}, nil
}

// catalog is the catalog of a token: its endpoints' URLs with the token's
// project and user put in, those that need what the token has not left
// out.
func (h *handler) catalog(r *http.Request, tok *trustack.Token) ([]object, error) {
	entries, err := h.svc.Catalog(r.Context())
	if err != nil {
		return nil, err
	}
	var project string
	if tok.Project != nil {
		project = tok.Project.ID
	}
	out := make([]object, 0, len(entries))
	for _, e := range entries {
		eps := []object{}
		for _, ep := range e.Endpoints {
			if url, ok := identity.EndpointURL(ep.URL, project, tok.User.ID); ok {
				eps = append(eps, object{"id": ep.ID, "interface": ep.Interface, "region": nullable(ep.RegionID), "region_id": nullable(ep.RegionID), "url": url})
			}
		}
		out = append(out, object{"id": e.Service.ID, "type": e.Service.Type, "name": e.Service.Name, "endpoints": eps})
	}
	return out, nil
}

func (h *handler) authCatalog(w http.ResponseWriter, r *http.Request) error {
	if err := h.api.Authorize(r, "identity:get_auth_catalog", nil); err != nil {
		return err
	}
	if tok := openstack.TokenOf(r); tok.Project == nil && tok.Domain == nil {
		return trustack.Errorf(trustack.EFORBIDDEN, "A scoped token is required to produce a service catalog.")
	}
	catalog, err := h.catalog(r, openstack.TokenOf(r))
	if err != nil {
		return err
	}
	openstack.JSON(w, http.StatusOK, object{"catalog": catalog, "links": object{"self": h.base + "/v3/auth/catalog"}})
	return nil
}

// reachable returns the IDs of the projects and the domains on which the
// user holds a role, directly or through a group.
func (h *handler) reachable(r *http.Request, userID string) (projects, domains []string, err error) {
	as, err := h.svc.Assignments(r.Context(), trustack.AssignmentFilter{UserID: userID, IncludeGroups: true})
	if err != nil {
		return nil, nil, err
	}
	projects, domains = []string{}, []string{}
	for _, a := range as {
		if a.ProjectID != "" && !slices.Contains(projects, a.ProjectID) {
			projects = append(projects, a.ProjectID)
		}
		if a.DomainID != "" && !slices.Contains(domains, a.DomainID) {
			domains = append(domains, a.DomainID)
		}
	}
	return projects, domains, nil
}

// userProjects lists the enabled projects the user holds a role on.
func (h *handler) userProjects(w http.ResponseWriter, r *http.Request, userID string) error {
	ids, _, err := h.reachable(r, userID)
	if err != nil {
		return err
	}
	enabled := true
	ps, err := h.svc.Projects(r.Context(), trustack.ProjectFilter{IDs: ids, Enabled: &enabled})
	if err != nil {
		return err
	}
	out := make([]object, len(ps))
	for i, p := range ps {
		out[i] = h.project(p)
	}
	h.collection(w, r, "projects", out)
	return nil
}

func (h *handler) authProjects(w http.ResponseWriter, r *http.Request) error {
	if err := h.api.Authorize(r, "identity:get_auth_projects", nil); err != nil {
		return err
	}
	return h.userProjects(w, r, openstack.TokenOf(r).User.ID)
}

func (h *handler) authDomains(w http.ResponseWriter, r *http.Request) error {
	if err := h.api.Authorize(r, "identity:get_auth_domains", nil); err != nil {
		return err
	}
	_, ids, err := h.reachable(r, openstack.TokenOf(r).User.ID)
	if err != nil {
		return err
	}
	var out []object
	for _, id := range ids {
		d, err := h.svc.Domain(r.Context(), id)
		if err != nil {
			return err
		}
		if d.Enabled {
			out = append(out, h.domain(d))
		}
	}
	h.collection(w, r, "domains", out)
	return nil
}
