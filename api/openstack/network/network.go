// Package network serves Neutron's v2.0 API over trustack's networking
// service, as python-openstackclient, openstacksdk, gophercloud and
// Tempest speak it: version discovery, the extensions trustack
// implements, networks, subnets, ports, routers and their interfaces,
// floating IPs, security groups and their rules, quotas and tags. Every
// collection takes bulk creates and Neutron's fields, filters, sorting
// and pagination. Every operation asks the policy engine with Neutron's
// rule names and defaults, attribute by attribute as Neutron does, and
// errors are Neutron's bodies: {"NeutronError": {"type", "message",
// "detail"}}. The catalog URL is unversioned (http://host:port/network);
// clients append /v2.0/...
package network

import (
	"log/slog"
	"net/http"
	"strings"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/api/openstack"
	"github.com/trustack/trustack/network"
	"github.com/trustack/trustack/policy"
)

// Prefix is where the network API is mounted.
const Prefix = "/network"

// v2 is the prefix of the API's one version.
const v2 = Prefix + "/v2.0"

// Config is what the network API needs to know of its deployment.
type Config struct {
	// PublicURL is the cloud's public base URL ("http://host:port"), for
	// links; "" for the address each request was sent to.
	PublicURL string
	// AuthURL is the identity endpoint, advertised on 401 responses.
	AuthURL string
	// MaxBodySize bounds request bodies, in bytes.
	MaxBodySize int64
}

// handler serves the network API.
type handler struct {
	api *openstack.API
	svc *network.Service
	dec openstack.Decoder
	cfg Config
	log *slog.Logger
	// guarded are the attributes of each resource that a get rule of
	// their own guards (get_port:binding:host_id), by resource.
	guarded map[string][]string
}

// New returns the network API's handler, to mount at Prefix. Its policy
// rules are Policy's, with an operator's network policy file on top.
func New(svc *network.Service, v openstack.Validator, enforcer *policy.Enforcer, cfg Config, log *slog.Logger) http.Handler {
	api := openstack.NewAPI(func(status int, message string) any { return errorBody(status, "", message) }, v, enforcer, cfg.AuthURL, log)
	api.SetReasonFormat(errorBody)
	api.SetStatus(neutronStatus)
	h := &handler{api: api, svc: svc, dec: openstack.Decoder{MaxBodySize: cfg.MaxBodySize}, cfg: cfg, log: log, guarded: map[string][]string{}}
	for _, r := range enforcer.Rules() {
		rest, isGet := strings.CutPrefix(r.Name, "get_")
		if resource, attr, ok := strings.Cut(rest, ":"); isGet && ok {
			h.guarded[resource] = append(h.guarded[resource], attr)
		}
	}
	h.routes()
	return formatSuffix(api)
}

// formatSuffix serves a request whose path ends in ".json" as the same
// request without it: Neutron takes the format as a suffix of any path,
// and clients use it (Tempest's GET /v2.0/quotas/{project}/details.json).
func formatSuffix(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if path, ok := strings.CutSuffix(r.URL.Path, ".json"); ok {
			r = r.Clone(r.Context())
			r.URL.Path, r.URL.RawPath = path, strings.TrimSuffix(r.URL.RawPath, ".json")
		}
		next.ServeHTTP(w, r)
	})
}

// routes serves version discovery, the extensions, every collection, the
// router interface actions and the quotas.
func (h *handler) routes() {
	a := h.api
	a.Public("GET "+Prefix, h.versions)
	a.Public("GET "+Prefix+"/{$}", h.versions)
	a.Private("GET "+v2, h.resources)
	a.Private("GET "+v2+"/{$}", h.resources)
	a.Private("GET "+v2+"/extensions", h.listExtensions)
	a.Private("GET "+v2+"/extensions/{alias}", h.showExtension)
	h.networks().routes(h)
	h.subnets().routes(h)
	h.ports().routes(h)
	routers := h.routers()
	routers.routes(h)
	a.Private("PUT "+v2+"/routers/{id}/add_router_interface", h.routerInterface(routers, "add_router_interface", h.svc.AddRouterInterface))
	a.Private("PUT "+v2+"/routers/{id}/remove_router_interface", h.routerInterface(routers, "remove_router_interface", h.svc.RemoveRouterInterface))
	h.floatingIPs().routes(h)
	h.securityGroups().routes(h)
	h.securityGroupRules().routes(h)
	h.quotaRoutes()
}

// errorBody is Neutron's error body. Its type is the error's reason, or
// for an error that has none the name of the HTTP error, as webob's
// (HTTPNotFound).
func errorBody(status int, reason, message string) any {
	if reason == "" {
		reason = "HTTP" + strings.ReplaceAll(http.StatusText(status), " ", "")
	}
	return object{"NeutronError": object{"type": reason, "message": message, "detail": ""}}
}

// neutronStatus is Neutron's status where it is not the shared table's:
// quota errors are 409 (OverQuota).
func neutronStatus(err error) int {
	if trustack.ErrorCode(err) == trustack.EOVERQUOTA {
		return http.StatusConflict
	}
	return 0
}

// caller returns who asks, for the networking service.
func (h *handler) caller(r *http.Request) network.Caller {
	c := network.Caller{Admin: h.api.Allowed(r, "context_is_admin", policy.Target{})}
	if p := openstack.TokenOf(r).Project; p != nil {
		c.ProjectID = p.ID
	}
	return c
}

// baseURL is the scheme and host of links.
func (h *handler) baseURL(r *http.Request) string {
	if h.cfg.PublicURL != "" {
		return strings.TrimSuffix(h.cfg.PublicURL, "/")
	}
	return openstack.BaseURL(r)
}

// versions answers version discovery with Neutron's one version.
func (h *handler) versions(w http.ResponseWriter, r *http.Request) error {
	return reply(w, http.StatusOK, object{"versions": []object{{
		"id": "v2.0", "status": "CURRENT", "links": []object{{"rel": "self", "href": h.baseURL(r) + v2 + "/"}},
	}}})
}

// resources lists the core resources of v2.0, as Neutron's root does.
func (h *handler) resources(w http.ResponseWriter, r *http.Request) error {
	var out []object
	for _, res := range []struct{ name, collection string }{{"network", "networks"}, {"subnet", "subnets"}, {"port", "ports"}} {
		out = append(out, object{"name": res.name, "collection": res.collection,
			"links": []object{{"rel": "self", "href": h.baseURL(r) + v2 + "/" + res.collection}}})
	}
	return reply(w, http.StatusOK, object{"resources": out})
}
