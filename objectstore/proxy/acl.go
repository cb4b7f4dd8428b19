package proxy

import (
	"net/http"
	"net/url"
	"strings"
)

// Container ACLs, as Swift's keystoneauth reads them. X-Container-Read
// and X-Container-Write are comma-separated grants: PROJECT:USER (by
// ID, either one * for any), a role name (a role the caller holds in the
// container's own project), and in the read ACL referrer grants, .r:*
// (anyone, a token or not), .r:HOST or .r:.DOMAIN (requests whose
// Referer is that host, or in that domain) and .r:-HOST (not those),
// with .rlistings to let referrers list the container too. Reading
// grants HEAD and GET of the objects (and of the container but for
// referrers without .rlistings); writing grants PUT, POST, DELETE and
// COPY of the objects.

// aclAllows reports whether the container's ACLs let c apply method to t
// (in request r).
func (p *Proxy) aclAllows(r *http.Request, method string, t target, c caller) bool {
	if t.container == "" {
		return false
	}
	info := p.infoOf(r.Context(), target{account: t.account, container: t.container})
	if info.status/100 != 2 {
		return false
	}
	if !readOnly(method) {
		return t.object != "" && grants(info.header.Get("X-Container-Write"), t.account, c, nil, false)
	}
	referer := r.Header.Get("Referer")
	return grants(info.header.Get("X-Container-Read"), t.account, c, &referer, t.object == "")
}

// grants reports whether an ACL grants c a request of a container of
// account, made with the Referer header *referer (nil for a write, which
// referrer grants never allow); listing says whether the request lists
// the container, which referrer grants allow only with .rlistings.
func grants(acl, account string, c caller, referer *string, listing bool) bool {
	var referrers []string
	rlistings := false
	for _, g := range strings.Split(acl, ",") {
		g = strings.TrimSpace(g)
		switch {
		case g == "":
		case g == ".rlistings":
			rlistings = true
		case strings.HasPrefix(g, ".r:"):
			referrers = append(referrers, g[len(".r:"):])
		case c.token != nil && grantsUser(g, account, c):
			return true
		}
	}
	if referer == nil || (listing && !rlistings) {
		return false
	}
	return referred(referrers, *referer)
}

// grantsUser reports whether a grant of a user (PROJECT:USER, or a role
// name) names c.
func grantsUser(g, account string, c caller) bool {
	project, user, ok := strings.Cut(g, ":")
	if !ok {
		// A role, held in the account's own project.
		return c.token.Project != nil && account == "AUTH_"+c.token.Project.ID && c.hasRole(g)
	}
	projectID := ""
	if c.token.Project != nil {
		projectID = c.token.Project.ID
	}
	return (project == "*" || project == projectID) && (user == "*" || user == c.token.User.ID)
}

// referred reports whether a request whose Referer header is referer
// passes referrer grants (the last that matches decides).
func referred(grants []string, referer string) bool {
	host := ""
	if u, err := url.Parse(referer); err == nil {
		host = u.Hostname()
	}
	allowed := false
	for _, g := range grants {
		deny := strings.HasPrefix(g, "-")
		g = strings.TrimPrefix(g, "-")
		match := g == "*" || (host != "" && (host == g || (strings.HasPrefix(g, ".") && strings.HasSuffix(host, g))))
		if match {
			allowed = !deny
		}
	}
	return allowed
}
