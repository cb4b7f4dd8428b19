// Package trust serves trustack's own extension of the compute API, the
// os-trustack-* calls under /compute/v2.1: what ACaaS places servers by
// (locations, distances, physical domains, hosts' properties, requirement
// entries, projects' requirements) and what attestation holds
// (white-lists, hosts' attestations, approved EKs). Bodies are wrapped as
// Nova's are ({"location": {...}}), errors are Nova's, a create answers
// 201 and a delete 204; its rules, trustack:*, are part of the compute
// API's policy.
package trust

import (
	"fmt"
	"log/slog"
	"net/http"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/acaas"
	"github.com/trustack/trustack/api/openstack"
	computeapi "github.com/trustack/trustack/api/openstack/compute"
	"github.com/trustack/trustack/attest"
	"github.com/trustack/trustack/policy"
)

// collections are the API's collections, under /compute/v2.1.
var collections = []string{
	"os-trustack-locations", "os-trustack-distances", "os-trustack-domains", "os-trustack-hosts",
	"os-trustack-requirement-entries", "os-trustack-requirements",
	"os-trustack-whitelists", "os-trustack-attestations", "os-trustack-approved-eks",
}

// Extensions returns h keyed by each collection it serves, for the
// compute API's configuration.
func Extensions(h http.Handler) map[string]http.Handler {
	m := map[string]http.Handler{}
	for _, c := range collections {
		m[c] = h
	}
	return m
}

// Config is what the API needs to know of its deployment.
type Config struct {
	// AuthURL is advertised on 401 responses.
	AuthURL string
	// MaxBodySize bounds JSON request bodies, in bytes.
	MaxBodySize int64
	// Attestation serves the attestation calls; nil, or a nil
	// *attest.Service, when hosts do not attest, and those calls answer
	// 501.
	Attestation Attestation
}

type handler struct {
	api    *openstack.API
	acaas  ACaaS
	attest Attestation // nil when hosts do not attest
	dec    openstack.Decoder
	cfg    Config
}

// New returns the API's handler, to serve through the compute API's (see
// Extensions). The
// ACaaS calls are served by reqs, and those of attestation by
// cfg.Attestation; enforcer is the compute API's, holding Policy's rules.
func New(reqs ACaaS, v openstack.Validator, enforcer *policy.Enforcer, cfg Config, log *slog.Logger) http.Handler {
	h := &handler{
		api:    openstack.NewAPI(openstack.FaultBody, v, enforcer, cfg.AuthURL, log),
		acaas:  reqs,
		attest: cfg.Attestation,
		dec:    openstack.Decoder{MaxBodySize: cfg.MaxBodySize},
		cfg:    cfg,
	}
	if s, ok := h.attest.(*attest.Service); ok && s == nil {
		h.attest = nil // a nil verifier is none, not one to call
	}
	v2 := computeapi.Prefix + "/v2.1"
	h.acaasRoutes(v2)
	h.attestationRoutes(v2)
	return h.api
}

// Policy returns the API's default rules, trustack:*, to add to the
// compute API's: ACaaS's model is the operators', but users must see which
// requirement entries exist to state their project's requirements.
func Policy() []policy.Rule {
	return []policy.Rule{
		{Name: "trustack:manage", Check: "rule:context_is_admin", Description: "GET POST PUT DELETE /os-trustack-locations, /os-trustack-distances, /os-trustack-domains, /os-trustack-hosts/{host}/properties; POST DELETE /os-trustack-requirement-entries"},
		{Name: "trustack:requirement-entries:list", Check: "@", Description: "GET /os-trustack-requirement-entries"},
		{Name: "trustack:attestation", Check: "rule:context_is_admin", Description: "GET POST PUT DELETE /os-trustack-whitelists, /os-trustack-attestations, /os-trustack-approved-eks"},
		{Name: "trustack:requirements:list", Check: "rule:project_member_or_admin", Description: "GET /os-trustack-requirements"},
		{Name: "trustack:requirements:create", Check: "rule:project_member_or_admin", Description: "POST /os-trustack-requirements"},
		{Name: "trustack:requirements:update", Check: "rule:project_member_or_admin", Description: "PUT /os-trustack-requirements/{entry}"},
		{Name: "trustack:requirements:delete", Check: "rule:project_member_or_admin", Description: "DELETE /os-trustack-requirements/{entry}"},
	}
}

// object is a JSON object in a response.
type object = map[string]any

// caller returns who the request comes from; it checks that a project
// named in the URL is the token's.
func (h *handler) caller(r *http.Request) (acaas.Caller, error) {
	c := acaas.Caller{Admin: h.api.Allowed(r, "context_is_admin", nil)}
	if tok := openstack.TokenOf(r); tok.Project != nil {
		c.ProjectID = tok.Project.ID
	}
	return c, openstack.CheckURLProject(r, c.ProjectID)
}

// authorize checks rule against a project's thing.
func (h *handler) authorize(r *http.Request, rule, project string) error {
	return h.api.Authorize(r, rule, policy.Target{"project_id": project})
}

func ok(w http.ResponseWriter, v any) error {
	openstack.JSON(w, http.StatusOK, v)
	return nil
}

func created(w http.ResponseWriter, v any) error {
	openstack.JSON(w, http.StatusCreated, v)
	return nil
}

func noContent(w http.ResponseWriter) error {
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// decodeWrapped decodes a body of the form {"key": {...}}, the form of
// every os-trustack request body, and refuses one without key.
func decodeWrapped[T any](h *handler, r *http.Request, key string) (*T, error) {
	var body map[string]*T
	if err := h.dec.Decode(r, &body); err != nil {
		return nil, err
	}
	if body[key] == nil {
		return nil, required(key)
	}
	return body[key], nil
}

// listed writes a collection of what a list call returned, each item
// rendered, or the call's error.
func listed[T any](w http.ResponseWriter, key string, list []T, err error, render func(T) object) error {
	if err != nil {
		return err
	}
	out := make([]object, len(list)) // [] for none, not null
	for i, item := range list {
		out[i] = render(item)
	}
	return ok(w, object{key: out})
}

// invalid is the 400 for a bad field of a body, worded as Nova's.
func invalid(field, format string, args ...any) error {
	return trustack.Errorf(trustack.EINVALID, "Invalid input for field/attribute %s. %s", field, fmt.Sprintf(format, args...))
}

// required is the 400 for a missing field of a body.
func required(field string) error {
	return invalid(field, "'%s' is a required property.", field)
}
