// Package compute serves Nova's v2.1 API, at microversions 2.1 to
// 2.maxMinor, over trustack's compute service: servers and their actions,
// flavors, keypairs, server groups, availability zones, host aggregates,
// hypervisors and services, limits and quotas, usage, instance actions;
// the servers' addresses, network interfaces and security groups; and
// the proxies Nova kept at 2.1, of the image service and of the
// networking service (security groups, floating IPs, networks); remote
// console URLs, and the console proxy they lead to. Bodies follow the
// schemas Tempest checks; every operation asks the policy engine with
// Nova's rule names and defaults.
package compute

import (
	"context"
	"log/slog"
	"net/http"
	"strings"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/api/openstack"
	"github.com/trustack/trustack/compute"
	"github.com/trustack/trustack/images"
	"github.com/trustack/trustack/policy"
)

// Prefix is where the compute API is mounted.
const Prefix = "/compute"

// maxMinor is the newest microversion trustack serves, 2.maxMinor: every
// change Nova made up to it is honoured on every API trustack serves.
// Raise it only when each version up to the new one is. It stops at 2.21
// because 2.22 (forcing a live migration to complete) needs live
// migration.
const maxMinor = 21

// versions are the microversions trustack serves.
var versions = openstack.VersionRange{Min: openstack.Microversion{Major: 2, Minor: 1}, Max: openstack.Microversion{Major: 2, Minor: maxMinor}}

// atLeast reports whether a request asked for microversion 2.minor or a
// later one: what a route or a field that Nova added at 2.minor checks.
func atLeast(r *http.Request, minor int) bool {
	return !openstack.MicroversionOf(r).Less(openstack.Microversion{Major: 2, Minor: minor})
}

// Images is what the compute API's image proxy needs of the image service.
type Images interface {
	Image(ctx context.Context, c images.Caller, id string) (*trustack.Image, error)
	Images(ctx context.Context, c images.Caller, f trustack.ImageFilter) ([]*trustack.Image, error)
	Delete(ctx context.Context, c images.Caller, id string) error
}

// Config is what the compute API needs to know of its deployment.
type Config struct {
	// PublicURL is the cloud's public base URL, for links.
	PublicURL string
	// ConsoleURL is the console proxy's base URL in console URLs (default
	// PublicURL).
	ConsoleURL string
	// AuthURL is advertised on 401 responses.
	AuthURL string
	// MaxBodySize bounds JSON request bodies, in bytes.
	MaxBodySize int64
	// ImageURL is the image API's public URL, for createImage's Location.
	ImageURL string
	// Extensions serve the collections they are keyed by (the path's
	// first segment after the version), such as trustack's os-trustack-*
	// calls, with the API's headers and its handling of a project ID in
	// the path, which openstack.CheckURLProject checks.
	Extensions map[string]http.Handler
}

type handler struct {
	api    *openstack.API
	svc    *compute.Service
	images Images
	net    Network
	dec    openstack.Decoder
	cfg    Config
	base   string // PublicURL + Prefix
}

// New returns the compute API's handler, to mount at Prefix.
func New(svc *compute.Service, imgs Images, net Network, v openstack.Validator, enforcer *policy.Enforcer, cfg Config, log *slog.Logger) http.Handler {
	h := &handler{
		api:    openstack.NewAPI(openstack.FaultBody, v, enforcer, cfg.AuthURL, log),
		svc:    svc,
		images: imgs,
		net:    net,
		dec:    openstack.Decoder{MaxBodySize: cfg.MaxBodySize},
		cfg:    cfg,
		base:   cfg.PublicURL + Prefix,
	}
	h.routes()
	return http.HandlerFunc(h.serve)
}

// serve negotiates the requested microversion and echoes the one it
// uses in the headers Nova sets on every response, then routes. A request
// naming the project in its path (/v2.1/{project_id}/servers, as older
// catalogs do) is routed as if it did not. Version discovery answers
// whatever version a client asks for, since clients ask before they know
// the range.
func (h *handler) serve(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("X-Compute-Request-Id", openstack.RequestID(r.Context()))
	v, err := versions.Negotiate(openstack.RequestedVersion(r, "compute", "X-OpenStack-Nova-API-Version"))
	if err != nil && !isVersionDocument(r.URL.Path) {
		h.api.Error(w, r, err)
		return
	}
	if err != nil {
		v = versions.Min
	}
	hd.Set("X-Openstack-Nova-Api-Version", v.String())
	hd.Set("Openstack-Api-Version", "compute "+v.String())
	hd.Add("Vary", "OpenStack-API-Version, X-OpenStack-Nova-API-Version")
	r = h.root().CutProject(r.WithContext(openstack.WithMicroversion(r.Context(), v)))
	if ext := h.cfg.Extensions[h.root().Collection(r.URL.Path)]; ext != nil {
		ext.ServeHTTP(w, r)
		return
	}
	h.api.ServeHTTP(w, r)
}

// isVersionDocument reports whether path is one of version discovery's.
func isVersionDocument(path string) bool {
	switch strings.TrimSuffix(path, "/") {
	case Prefix, Prefix + "/v2.1", Prefix + "/v2":
		return true
	}
	return false
}

// root is where the API's versions begin; a first segment there that is
// not a collection of the API or of an extension is a project ID.
func (h *handler) root() openstack.VersionRoot {
	return openstack.VersionRoot{
		Prefixes:     []string{Prefix + "/v2.1/", Prefix + "/v2/"},
		IsCollection: func(s string) bool { return collections[s] || h.cfg.Extensions[s] != nil },
	}
}

// collections are the first path segments of the API; anything else in
// that place is a project ID.
var collections = map[string]bool{
	"servers": true, "flavors": true, "os-keypairs": true, "os-server-groups": true, "os-availability-zone": true,
	"os-hypervisors": true, "os-services": true, "limits": true, "os-quota-sets": true, "images": true, "os-security-groups": true,
	"os-security-group-rules": true, "os-floating-ips": true, "os-floating-ip-pools": true, "os-networks": true,
	"os-tenant-networks": true, "os-aggregates": true, "os-console-auth-tokens": true,
	"os-simple-tenant-usage": true,
}

// caller returns who the request comes from, for the compute service;
// it checks that a project named in the URL is the token's.
func (h *handler) caller(r *http.Request) (compute.Caller, error) {
	tok := openstack.TokenOf(r)
	c := compute.Caller{
		UserID:    tok.User.ID,
		Admin:     h.api.Allowed(r, "context_is_admin", nil),
		RequestID: openstack.RequestID(r.Context()),
		Token:     r.Header.Get("X-Auth-Token"),
	}
	if tok.Project != nil {
		c.ProjectID = tok.Project.ID
	}
	return c, openstack.CheckURLProject(r, c.ProjectID)
}

// authorize checks rule against a project's thing (the caller's own
// project when project is "").
func (h *handler) authorize(r *http.Request, rule, project string) error {
	if project == "" {
		if tok := openstack.TokenOf(r); tok.Project != nil {
			project = tok.Project.ID
		}
	}
	return h.api.Authorize(r, rule, policy.Target{"project_id": project})
}

func (h *handler) routes() {
	a := h.api
	v := Prefix + "/v2.1"
	a.Public("GET "+Prefix, h.versions)
	a.Public("GET "+Prefix+"/{$}", h.versions)
	a.Public("GET "+v, h.version)
	a.Public("GET "+v+"/{$}", h.version)
	a.Public("GET "+Prefix+"/v2", h.versionTwo)
	a.Public("GET "+Prefix+"/v2/{$}", h.versionTwo)

	a.Private("GET "+v+"/servers", h.listServers(false))
	a.Private("GET "+v+"/servers/detail", h.listServers(true))
	a.Private("POST "+v+"/servers", h.createServer)
	a.Private("GET "+v+"/servers/{id}", h.showServer)
	a.Private("PUT "+v+"/servers/{id}", h.updateServer)
	a.Private("DELETE "+v+"/servers/{id}", h.deleteServer)
	a.Private("POST "+v+"/servers/{id}/action", h.serverAction)
	a.Private("GET "+v+"/servers/{id}/metadata", h.listMetadata)
	a.Private("PUT "+v+"/servers/{id}/metadata", h.setMetadata(true))
	a.Private("POST "+v+"/servers/{id}/metadata", h.setMetadata(false))
	a.Private("GET "+v+"/servers/{id}/metadata/{key}", h.showMetadataItem)
	a.Private("PUT "+v+"/servers/{id}/metadata/{key}", h.setMetadataItem)
	a.Private("DELETE "+v+"/servers/{id}/metadata/{key}", h.deleteMetadataItem)
	a.Private("GET "+v+"/servers/{id}/diagnostics", h.diagnostics)
	a.Private("GET "+v+"/servers/{id}/os-instance-actions", h.listActions)
	a.Private("GET "+v+"/servers/{id}/os-instance-actions/{request_id}", h.showAction)
	a.Private("GET "+v+"/servers/{id}/ips", h.listIPs)
	a.Private("GET "+v+"/servers/{id}/ips/{label}", h.showIPs)
	h.volumeRoutes(v)
	a.Private("GET "+v+"/servers/{id}/os-interface", h.listInterfaces)
	a.Private("POST "+v+"/servers/{id}/os-interface", h.attachInterface)
	a.Private("GET "+v+"/servers/{id}/os-interface/{port}", h.showInterface)
	a.Private("DELETE "+v+"/servers/{id}/os-interface/{port}", h.detachInterface)
	a.Private("GET "+v+"/servers/{id}/os-virtual-interfaces", h.listVirtualInterfaces)
	a.Private("GET "+v+"/servers/{id}/os-security-groups", h.listServerSecurityGroups)
	a.Private("POST "+v+"/servers/{id}/remote-consoles", h.createRemoteConsole)
	a.Private("GET "+v+"/os-console-auth-tokens/{token}", h.showConsoleToken)

	a.Private("GET "+v+"/os-security-groups", h.listSecurityGroups)
	a.Private("POST "+v+"/os-security-groups", h.createSecurityGroup)
	a.Private("GET "+v+"/os-security-groups/{id}", h.showSecurityGroup)
	a.Private("PUT "+v+"/os-security-groups/{id}", h.updateSecurityGroup)
	a.Private("DELETE "+v+"/os-security-groups/{id}", h.deleteSecurityGroup)
	a.Private("POST "+v+"/os-security-group-rules", h.createGroupRule)
	a.Private("DELETE "+v+"/os-security-group-rules/{id}", h.deleteGroupRule)

	a.Private("GET "+v+"/os-floating-ips", h.listFloatingIPs)
	a.Private("POST "+v+"/os-floating-ips", h.createFloatingIP)
	a.Private("GET "+v+"/os-floating-ips/{id}", h.showFloatingIP)
	a.Private("DELETE "+v+"/os-floating-ips/{id}", h.deleteFloatingIP)
	a.Private("GET "+v+"/os-floating-ip-pools", h.listFloatingIPPools)

	a.Private("GET "+v+"/os-networks", h.listNetworks(novaNetwork, "os_compute_api:os-networks:list"))
	a.Private("GET "+v+"/os-networks/{id}", h.showNetwork(novaNetwork, "os_compute_api:os-networks:show"))
	a.Private("GET "+v+"/os-tenant-networks", h.listNetworks(tenantNetwork, "os_compute_api:os-tenant-networks:list"))
	a.Private("GET "+v+"/os-tenant-networks/{id}", h.showNetwork(tenantNetwork, "os_compute_api:os-tenant-networks:show"))

	a.Private("GET "+v+"/os-simple-tenant-usage", h.listUsage)
	a.Private("GET "+v+"/os-simple-tenant-usage/{tenant_id}", h.showUsage)

	a.Private("GET "+v+"/flavors", h.listFlavors(false))
	a.Private("GET "+v+"/flavors/detail", h.listFlavors(true))
	a.Private("POST "+v+"/flavors", h.createFlavor)
	a.Private("GET "+v+"/flavors/{id}", h.showFlavor)
	a.Private("DELETE "+v+"/flavors/{id}", h.deleteFlavor)
	a.Private("POST "+v+"/flavors/{id}/action", h.flavorAction)
	a.Private("GET "+v+"/flavors/{id}/os-flavor-access", h.listFlavorAccess)
	a.Private("GET "+v+"/flavors/{id}/os-extra_specs", h.listExtraSpecs)
	a.Private("POST "+v+"/flavors/{id}/os-extra_specs", h.createExtraSpecs)
	a.Private("GET "+v+"/flavors/{id}/os-extra_specs/{key}", h.showExtraSpec)
	a.Private("PUT "+v+"/flavors/{id}/os-extra_specs/{key}", h.updateExtraSpec)
	a.Private("DELETE "+v+"/flavors/{id}/os-extra_specs/{key}", h.deleteExtraSpec)

	a.Private("GET "+v+"/os-keypairs", h.listKeypairs)
	a.Private("POST "+v+"/os-keypairs", h.createKeypair)
	a.Private("GET "+v+"/os-keypairs/{name}", h.showKeypair)
	a.Private("DELETE "+v+"/os-keypairs/{name}", h.deleteKeypair)

	a.Private("GET "+v+"/os-server-groups", h.listGroups)
	a.Private("POST "+v+"/os-server-groups", h.createGroup)
	a.Private("GET "+v+"/os-server-groups/{id}", h.showGroup)
	a.Private("DELETE "+v+"/os-server-groups/{id}", h.deleteGroup)

	a.Private("GET "+v+"/os-aggregates", h.listAggregates)
	a.Private("POST "+v+"/os-aggregates", h.createAggregate)
	a.Private("GET "+v+"/os-aggregates/{id}", h.showAggregate)
	a.Private("PUT "+v+"/os-aggregates/{id}", h.updateAggregate)
	a.Private("DELETE "+v+"/os-aggregates/{id}", h.deleteAggregate)
	a.Private("POST "+v+"/os-aggregates/{id}/action", h.aggregateAction)

	a.Private("GET "+v+"/os-availability-zone", h.listZones(false))
	a.Private("GET "+v+"/os-availability-zone/detail", h.listZones(true))
	a.Private("GET "+v+"/os-hypervisors", h.listHypervisors(false))
	a.Private("GET "+v+"/os-hypervisors/detail", h.listHypervisors(true))
	a.Private("GET "+v+"/os-hypervisors/statistics", h.hypervisorStatistics)
	a.Private("GET "+v+"/os-hypervisors/{id}", h.showHypervisor)
	a.Private("GET "+v+"/os-hypervisors/{id}/uptime", h.hypervisorUptime)
	a.Private("GET "+v+"/os-hypervisors/{name}/servers", h.hypervisorServers)
	a.Private("GET "+v+"/os-hypervisors/{name}/search", h.searchHypervisors)
	a.Private("GET "+v+"/os-services", h.listServices)
	a.Private("PUT "+v+"/os-services/{action}", h.updateService)
	a.Private("DELETE "+v+"/os-services/{id}", h.deleteService)

	a.Private("GET "+v+"/limits", h.limits)
	a.Private("GET "+v+"/os-quota-sets/{project}", h.showQuotas)
	a.Private("GET "+v+"/os-quota-sets/{project}/defaults", h.defaultQuotas)
	a.Private("GET "+v+"/os-quota-sets/{project}/detail", h.quotaDetail)
	a.Private("PUT "+v+"/os-quota-sets/{project}", h.updateQuotas)
	a.Private("DELETE "+v+"/os-quota-sets/{project}", h.deleteQuotas)

	a.Private("GET "+v+"/images", h.listImages(false))
	a.Private("GET "+v+"/images/detail", h.listImages(true))
	a.Private("GET "+v+"/images/{id}", h.showImage)
	a.Private("DELETE "+v+"/images/{id}", h.deleteImage)
}

// versionDoc describes a version of the API, with its self link.
func (h *handler) versionDoc(id string) map[string]any {
	doc := map[string]any{
		"id":          "v2.1",
		"status":      "CURRENT",
		"version":     versions.Max.String(),
		"min_version": versions.Min.String(),
		"updated":     "2013-07-23T11:33:21Z",
		"links":       []any{map[string]any{"rel": "self", "href": h.base + "/v2.1/"}},
	}
	if id == "v2.0" {
		doc["id"], doc["status"], doc["version"], doc["min_version"], doc["updated"] = "v2.0", "SUPPORTED", "", "", "2011-01-21T11:33:21Z"
		doc["links"] = []any{map[string]any{"rel": "self", "href": h.base + "/v2/"}}
	}
	return doc
}

func (h *handler) versions(w http.ResponseWriter, r *http.Request) error {
	openstack.JSON(w, http.StatusOK, map[string]any{"versions": []any{h.versionDoc("v2.0"), h.versionDoc("v2.1")}})
	return nil
}

// fullVersion adds what GET of a version alone tells.
func (h *handler) fullVersion(id string) map[string]any {
	doc := h.versionDoc(id)
	doc["links"] = append(doc["links"].([]any), map[string]any{"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"})
	doc["media-types"] = []any{map[string]any{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1"}}
	return map[string]any{"version": doc}
}

func (h *handler) version(w http.ResponseWriter, r *http.Request) error {
	openstack.JSON(w, http.StatusOK, h.fullVersion("v2.1"))
	return nil
}

func (h *handler) versionTwo(w http.ResponseWriter, r *http.Request) error {
	openstack.JSON(w, http.StatusOK, h.fullVersion("v2.0"))
	return nil
}

// accepted, noContent and ok write the usual responses, with empty bodies
// where Nova sends none.
func accepted(w http.ResponseWriter) error {
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func noContent(w http.ResponseWriter) error {
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func ok(w http.ResponseWriter, v any) error {
	openstack.JSON(w, http.StatusOK, v)
	return nil
}
