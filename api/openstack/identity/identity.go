// Package identity serves Keystone's v3 API over trustack's identity
// service, as python-openstackclient, keystoneauth, gophercloud and
// Tempest speak it: version discovery, tokens, the catalog, and the
// domains, projects, users, groups, roles, grants, credentials (with
// OS-EC2's), regions, services and endpoints behind them. Every operation asks the policy engine, with
// Keystone's rule names and default rules.
package identity

import (
	"log/slog"
	"net/http"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/api/openstack"
	"github.com/trustack/trustack/identity"
	"github.com/trustack/trustack/policy"
)

// Prefix is where the identity API is mounted.
const Prefix = "/identity"

// Config is what the identity API needs to know of its deployment.
type Config struct {
	// PublicURL is the cloud's public base URL ("http://host:5000"), for
	// links in responses.
	PublicURL string
	// MaxBodySize bounds JSON request bodies, in bytes.
	MaxBodySize int64
}

// handler serves the identity API.
type handler struct {
	api  *openstack.API
	svc  *identity.Service
	dec  openstack.Decoder
	base string // PublicURL + Prefix
}

// New returns the identity API's handler, to mount at Prefix.
func New(svc *identity.Service, enforcer *policy.Enforcer, cfg Config, log *slog.Logger) http.Handler {
	base := cfg.PublicURL + Prefix
	h := &handler{
		api:  openstack.NewAPI(openstack.TitledError, svc, enforcer, base+"/v3", log),
		svc:  svc,
		dec:  openstack.Decoder{MaxBodySize: cfg.MaxBodySize},
		base: base,
	}
	h.routes()
	return h.api
}

func (h *handler) routes() {
	a := h.api
	v3 := "/identity/v3"
	a.Public("GET /identity", h.versions)
	a.Public("GET /identity/{$}", h.versions)
	a.Public("GET "+v3, h.version)
	a.Public("GET "+v3+"/{$}", h.version)

	a.Public("POST "+v3+"/auth/tokens", h.issueToken)
	a.Private("GET "+v3+"/auth/tokens", h.validateToken)
	a.Private("DELETE "+v3+"/auth/tokens", h.revokeToken)
	a.Private("GET "+v3+"/auth/catalog", h.authCatalog)
	a.Private("GET "+v3+"/auth/projects", h.authProjects)
	a.Private("GET "+v3+"/auth/domains", h.authDomains)

	a.Private("GET "+v3+"/domains", h.listDomains)
	a.Private("POST "+v3+"/domains", h.createDomain)
	a.Private("GET "+v3+"/domains/{domain_id}", h.getDomain)
	a.Private("PATCH "+v3+"/domains/{domain_id}", change[trustack.Domain, domainFields](h, "identity:update_domain", "domain", "domain_id", h.svc.UpdateDomain, func(d *trustack.Domain) *trustack.Extra { return &d.Extra }, h.domain))
	a.Private("DELETE "+v3+"/domains/{domain_id}", remove(h, "identity:delete_domain", "domain_id", h.svc.DeleteDomain))

	a.Private("GET "+v3+"/projects", h.listProjects)
	a.Private("POST "+v3+"/projects", h.createProject)
	a.Private("GET "+v3+"/projects/{project_id}", h.getProject)
	a.Private("PATCH "+v3+"/projects/{project_id}", h.updateProject)
	a.Private("DELETE "+v3+"/projects/{project_id}", h.deleteProject)
	a.Private("GET "+v3+"/projects/{project_id}/tags", h.listProjectTags)
	a.Private("PUT "+v3+"/projects/{project_id}/tags", h.replaceProjectTags)
	a.Private("DELETE "+v3+"/projects/{project_id}/tags", h.deleteProjectTags)
	a.Private("GET "+v3+"/projects/{project_id}/tags/{tag}", h.checkProjectTag)
	a.Private("PUT "+v3+"/projects/{project_id}/tags/{tag}", h.addProjectTag)
	a.Private("DELETE "+v3+"/projects/{project_id}/tags/{tag}", h.deleteProjectTag)

	a.Private("GET "+v3+"/users", h.listUsers)
	a.Private("POST "+v3+"/users", h.createUser)
	a.Private("GET "+v3+"/users/{user_id}", h.getUser)
	a.Private("PATCH "+v3+"/users/{user_id}", h.updateUser)
	a.Private("DELETE "+v3+"/users/{user_id}", h.deleteUser)
	// As in Keystone, changing one's own password needs no token: the
	// original password is the proof, and an expired token is no obstacle.
	a.Public("POST "+v3+"/users/{user_id}/password", h.changePassword)
	a.Private("GET "+v3+"/users/{user_id}/projects", h.listUserProjects)
	a.Private("GET "+v3+"/users/{user_id}/groups", h.listUserGroups)
	a.Private("POST "+v3+"/users/{user_id}/credentials/OS-EC2", h.createEC2Credential)
	a.Private("GET "+v3+"/users/{user_id}/credentials/OS-EC2", h.listEC2Credentials)
	a.Private("GET "+v3+"/users/{user_id}/credentials/OS-EC2/{credential_id}", h.getEC2Credential)
	a.Private("DELETE "+v3+"/users/{user_id}/credentials/OS-EC2/{credential_id}", h.deleteEC2Credential)

	a.Private("GET "+v3+"/groups", h.listGroups)
	a.Private("POST "+v3+"/groups", h.createGroup)
	a.Private("GET "+v3+"/groups/{group_id}", h.getGroup)
	a.Private("PATCH "+v3+"/groups/{group_id}", h.updateGroup)
	a.Private("DELETE "+v3+"/groups/{group_id}", h.deleteGroup)
	a.Private("GET "+v3+"/groups/{group_id}/users", h.listGroupUsers)
	a.Private("PUT "+v3+"/groups/{group_id}/users/{user_id}", h.addGroupUser)
	a.Private("GET "+v3+"/groups/{group_id}/users/{user_id}", h.checkGroupUser)
	a.Private("DELETE "+v3+"/groups/{group_id}/users/{user_id}", h.removeGroupUser)

	a.Private("GET "+v3+"/roles", h.listRoles)
	a.Private("POST "+v3+"/roles", h.createRole)
	a.Private("GET "+v3+"/roles/{role_id}", h.getRole)
	a.Private("PATCH "+v3+"/roles/{role_id}", h.updateRole)
	a.Private("DELETE "+v3+"/roles/{role_id}", h.deleteRole)
	a.Private("GET "+v3+"/roles/{prior_role_id}/implies", h.listImpliedRoles)
	a.Private("PUT "+v3+"/roles/{prior_role_id}/implies/{implied_role_id}", h.createImpliedRole)
	a.Private("GET "+v3+"/roles/{prior_role_id}/implies/{implied_role_id}", h.getImpliedRole)
	a.Private("DELETE "+v3+"/roles/{prior_role_id}/implies/{implied_role_id}", h.deleteImpliedRole)
	a.Private("GET "+v3+"/role_inferences", h.listRoleInferences)

	for _, target := range []string{"projects", "domains"} {
		for _, actor := range []string{"users", "groups"} {
			grants := v3 + "/" + target + "/{target_id}/" + actor + "/{actor_id}/roles"
			g := grantRoute{target: target, actor: actor}
			a.Private("GET "+grants, h.listGrants(g))
			a.Private("PUT "+grants+"/{role_id}", h.createGrant(g))
			a.Private("GET "+grants+"/{role_id}", h.checkGrant(g))
			a.Private("DELETE "+grants+"/{role_id}", h.revokeGrant(g))
		}
	}
	a.Private("GET "+v3+"/role_assignments", h.listRoleAssignments)

	a.Private("GET "+v3+"/credentials", h.listCredentials)
	a.Private("POST "+v3+"/credentials", h.createCredential)
	a.Private("GET "+v3+"/credentials/{credential_id}", h.getCredential)
	a.Private("PATCH "+v3+"/credentials/{credential_id}", h.updateCredential)
	a.Private("DELETE "+v3+"/credentials/{credential_id}", h.deleteCredential)

	a.Private("GET "+v3+"/regions", h.listRegions)
	a.Private("POST "+v3+"/regions", h.createRegion)
	a.Private("GET "+v3+"/regions/{region_id}", show(h, "identity:get_region", "region", "region_id", h.svc.Region, h.region))
	a.Private("PUT "+v3+"/regions/{region_id}", h.createRegion)
	a.Private("PATCH "+v3+"/regions/{region_id}", change[trustack.Region, regionFields](h, "identity:update_region", "region", "region_id", h.svc.UpdateRegion, func(r *trustack.Region) *trustack.Extra { return &r.Extra }, h.region))
	a.Private("DELETE "+v3+"/regions/{region_id}", remove(h, "identity:delete_region", "region_id", h.svc.DeleteRegion))

	a.Private("GET "+v3+"/services", h.listServices)
	a.Private("POST "+v3+"/services", h.createService)
	a.Private("GET "+v3+"/services/{service_id}", show(h, "identity:get_service", "service", "service_id", h.svc.Service, h.service))
	a.Private("PATCH "+v3+"/services/{service_id}", change[trustack.Service, serviceFields](h, "identity:update_service", "service", "service_id", h.svc.UpdateService, func(s *trustack.Service) *trustack.Extra { return &s.Extra }, h.service))
	a.Private("DELETE "+v3+"/services/{service_id}", remove(h, "identity:delete_service", "service_id", h.svc.DeleteService))

	a.Private("GET "+v3+"/endpoints", h.listEndpoints)
	a.Private("POST "+v3+"/endpoints", h.createEndpoint)
	a.Private("GET "+v3+"/endpoints/{endpoint_id}", show(h, "identity:get_endpoint", "endpoint", "endpoint_id", h.svc.Endpoint, h.endpoint))
	a.Private("PATCH "+v3+"/endpoints/{endpoint_id}", change[trustack.Endpoint, endpointFields](h, "identity:update_endpoint", "endpoint", "endpoint_id", h.svc.UpdateEndpoint, func(e *trustack.Endpoint) *trustack.Extra { return &e.Extra }, h.endpoint))
	a.Private("DELETE "+v3+"/endpoints/{endpoint_id}", remove(h, "identity:delete_endpoint", "endpoint_id", h.svc.DeleteEndpoint))
}

// versionDoc describes identity v3, as Keystone's discovery does.
func (h *handler) versionDoc() map[string]any {
	return map[string]any{
		"id":      "v3.14",
		"status":  "stable",
		"updated": "2020-04-07T00:00:00Z",
		"links":   []any{map[string]any{"rel": "self", "href": h.base + "/v3/"}},
		"media-types": []any{map[string]any{
			"base": "application/json",
			"type": "application/vnd.openstack.identity-v3+json",
		}},
	}
}

// versions answers GET /identity with 300 Multiple Choices, as Keystone.
func (h *handler) versions(w http.ResponseWriter, r *http.Request) error {
	openstack.JSON(w, http.StatusMultipleChoices, map[string]any{"versions": map[string]any{"values": []any{h.versionDoc()}}})
	return nil
}

func (h *handler) version(w http.ResponseWriter, r *http.Request) error {
	openstack.JSON(w, http.StatusOK, map[string]any{"version": h.versionDoc()})
	return nil
}
