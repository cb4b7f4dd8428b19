package trust

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/acaas"
)

// What ACaaS places servers by. Operators manage locations, the
// distances between them, physical domains with their hosts and
// collaborators, the hosts' properties and the requirement entries; users
// state their project's requirements.

// ACaaS is what the API needs of the requirements service; acaas.Service
// is one.
type ACaaS interface {
	CreateLocation(ctx context.Context, name, country string) (*trustack.Location, error)
	Locations(ctx context.Context) ([]*trustack.Location, error)
	DeleteLocation(ctx context.Context, name string) error
	SetDistance(ctx context.Context, a, b string, km int) (trustack.Distance, error)
	Distances(ctx context.Context) ([]trustack.Distance, error)

	CreateDomain(ctx context.Context, d *trustack.PhysicalDomain) (*acaas.DomainView, error)
	Domain(ctx context.Context, name string) (*acaas.DomainView, error)
	Domains(ctx context.Context) ([]*acaas.DomainView, error)
	SetDomain(ctx context.Context, name string, ch acaas.DomainChanges) (*acaas.DomainView, error)
	DeleteDomain(ctx context.Context, name string) error
	AddHost(ctx context.Context, domain, host string) (*trustack.Host, error)
	RemoveHost(ctx context.Context, domain, host string) error
	AddCollaborator(ctx context.Context, domain, backup string, priority int) (*acaas.DomainView, error)
	RemoveCollaborator(ctx context.Context, domain, backup string) (*acaas.DomainView, error)

	AddHostProperties(ctx context.Context, host string, props map[string]string, security bool) (*trustack.Host, error)
	HostProperties(ctx context.Context, host string) (properties, security map[string]string, err error)
	RemoveHostProperties(ctx context.Context, host string, keys []string, security bool) (*trustack.Host, error)

	CreateEntry(ctx context.Context, name, kind, description string) (*trustack.RequirementEntry, error)
	Entries(ctx context.Context) ([]*trustack.RequirementEntry, error)
	DeleteEntry(ctx context.Context, name string) error

	SetRequirement(ctx context.Context, c acaas.Caller, projectID, entry, value string, mode acaas.SetMode) (*trustack.ProjectRequirement, error)
	Requirements(ctx context.Context, c acaas.Caller, projectID string) ([]*trustack.ProjectRequirement, error)
	UnsetRequirement(ctx context.Context, c acaas.Caller, projectID, entry string) error
}

var _ ACaaS = (*acaas.Service)(nil)

func (h *handler) acaasRoutes(v string) {
	a := h.api
	a.Private("GET "+v+"/os-trustack-locations", h.listLocations)
	a.Private("POST "+v+"/os-trustack-locations", h.createLocation)
	a.Private("GET "+v+"/os-trustack-locations/{name}", h.showLocation)
	a.Private("DELETE "+v+"/os-trustack-locations/{name}", h.deleteLocation)
	a.Private("GET "+v+"/os-trustack-distances", h.listDistances)
	a.Private("PUT "+v+"/os-trustack-distances/{a}/{b}", h.setDistance)

	a.Private("GET "+v+"/os-trustack-domains", h.listDomains)
	a.Private("POST "+v+"/os-trustack-domains", h.createDomain)
	a.Private("GET "+v+"/os-trustack-domains/{name}", h.showDomain)
	a.Private("PUT "+v+"/os-trustack-domains/{name}", h.updateDomain)
	a.Private("DELETE "+v+"/os-trustack-domains/{name}", h.deleteDomain)
	a.Private("PUT "+v+"/os-trustack-domains/{name}/hosts/{host}", h.addDomainHost)
	a.Private("DELETE "+v+"/os-trustack-domains/{name}/hosts/{host}", h.removeDomainHost)
	a.Private("PUT "+v+"/os-trustack-domains/{name}/collaborators/{backup}", h.addCollaborator)
	a.Private("DELETE "+v+"/os-trustack-domains/{name}/collaborators/{backup}", h.removeCollaborator)

	a.Private("GET "+v+"/os-trustack-hosts/{host}/properties", h.showHostProperties)
	a.Private("POST "+v+"/os-trustack-hosts/{host}/properties", h.addHostProperties)
	a.Private("DELETE "+v+"/os-trustack-hosts/{host}/properties/{key}", h.removeHostProperty)

	a.Private("GET "+v+"/os-trustack-requirement-entries", h.listEntries)
	a.Private("POST "+v+"/os-trustack-requirement-entries", h.createEntry)
	a.Private("GET "+v+"/os-trustack-requirement-entries/{name}", h.showEntry)
	a.Private("DELETE "+v+"/os-trustack-requirement-entries/{name}", h.deleteEntry)

	a.Private("GET "+v+"/os-trustack-requirements", h.listRequirements)
	a.Private("POST "+v+"/os-trustack-requirements", h.createRequirement)
	a.Private("PUT "+v+"/os-trustack-requirements/{entry}", h.updateRequirement)
	a.Private("DELETE "+v+"/os-trustack-requirements/{entry}", h.deleteRequirement)
}

// manageRule is the policy rule of every operator's call.
const manageRule = "trustack:manage"

// manage checks that the caller may manage ACaaS, with a message that
// says who may.
func (h *handler) manage(r *http.Request) error {
	if err := h.api.Authorize(r, manageRule, nil); err != nil {
		if trustack.ErrorCode(err) == trustack.EFORBIDDEN {
			return trustack.Errorf(trustack.EFORBIDDEN, "You are not authorized to manage ACaaS (policy rule %s: operators only by default).", manageRule)
		}
		return err
	}
	return nil
}

// Locations and distances.

func location(l *trustack.Location) object {
	return object{"name": l.Name, "country": l.Country}
}

func (h *handler) listLocations(w http.ResponseWriter, r *http.Request) error {
	if err := h.manage(r); err != nil {
		return err
	}
	list, err := h.acaas.Locations(r.Context())
	return listed(w, "locations", list, err, location)
}

func (h *handler) createLocation(w http.ResponseWriter, r *http.Request) error {
	if err := h.manage(r); err != nil {
		return err
	}
	b, err := decodeWrapped[struct {
		Name    string `json:"name"`
		Country string `json:"country"`
	}](h, r, "location")
	if err != nil {
		return err
	}
	l, err := h.acaas.CreateLocation(r.Context(), b.Name, b.Country)
	if err != nil {
		return err
	}
	return created(w, object{"location": location(l)})
}

func (h *handler) showLocation(w http.ResponseWriter, r *http.Request) error {
	if err := h.manage(r); err != nil {
		return err
	}
	list, err := h.acaas.Locations(r.Context())
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	for _, l := range list {
		if l.Name == name {
			return ok(w, object{"location": location(l)})
		}
	}
	return trustack.Errorf(trustack.ENOTFOUND, "Location %s does not exist.", name)
}

func (h *handler) deleteLocation(w http.ResponseWriter, r *http.Request) error {
	if err := h.manage(r); err != nil {
		return err
	}
	if err := h.acaas.DeleteLocation(r.Context(), r.PathValue("name")); err != nil {
		return err
	}
	return noContent(w)
}

func distance(d trustack.Distance) object {
	return object{"a": d.A, "b": d.B, "km": d.KM}
}

func (h *handler) listDistances(w http.ResponseWriter, r *http.Request) error {
	if err := h.manage(r); err != nil {
		return err
	}
	list, err := h.acaas.Distances(r.Context())
	return listed(w, "distances", list, err, distance)
}

func (h *handler) setDistance(w http.ResponseWriter, r *http.Request) error {
	if err := h.manage(r); err != nil {
		return err
	}
	b, err := decodeWrapped[struct {
		KM *int `json:"km"`
	}](h, r, "distance")
	if err != nil {
		return err
	}
	if b.KM == nil {
		return required("km")
	}
	d, err := h.acaas.SetDistance(r.Context(), r.PathValue("a"), r.PathValue("b"), *b.KM)
	if err != nil {
		return err
	}
	return ok(w, object{"distance": distance(d)})
}

// Physical domains.

func domain(d *acaas.DomainView) object {
	collaborators := make([]object, len(d.Collaborators))
	for i, c := range d.Collaborators {
		collaborators[i] = object{"domain": c.Domain, "priority": c.Priority}
	}
	capabilities := d.Capabilities
	if capabilities == nil {
		capabilities = map[string]string{}
	}
	hosts := d.Hosts
	if hosts == nil {
		hosts = []string{}
	}
	return object{"name": d.Name, "location": d.Location, "capabilities": capabilities, "dcot": d.DCoT, "source": d.Source,
		"collaborators": collaborators, "hosts": hosts, "created_at": d.CreatedAt.UTC().Format(time.RFC3339),
		"dcot_held": d.DCoTHeld, "dcot_held_by": d.Holding, "cdcot_held": d.CDCoTHeld}
}

func (h *handler) listDomains(w http.ResponseWriter, r *http.Request) error {
	if err := h.manage(r); err != nil {
		return err
	}
	list, err := h.acaas.Domains(r.Context())
	return listed(w, "domains", list, err, domain)
}

func (h *handler) createDomain(w http.ResponseWriter, r *http.Request) error {
	if err := h.manage(r); err != nil {
		return err
	}
	b, err := decodeWrapped[struct {
		Name         string            `json:"name"`
		Location     string            `json:"location"`
		Capabilities map[string]string `json:"capabilities"`
		DCoT         string            `json:"dcot"`
		Source       string            `json:"source"`
	}](h, r, "domain")
	if err != nil {
		return err
	}
	d, err := h.acaas.CreateDomain(r.Context(), &trustack.PhysicalDomain{Name: b.Name, Location: b.Location, Capabilities: b.Capabilities, DCoT: b.DCoT, Source: b.Source})
	if err != nil {
		return err
	}
	return created(w, object{"domain": domain(d)})
}

func (h *handler) showDomain(w http.ResponseWriter, r *http.Request) error {
	if err := h.manage(r); err != nil {
		return err
	}
	d, err := h.acaas.Domain(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	return ok(w, object{"domain": domain(d)})
}

// updateDomain changes a domain's location, capabilities (which replace
// the domain's) or DCoT, those given.
func (h *handler) updateDomain(w http.ResponseWriter, r *http.Request) error {
	if err := h.manage(r); err != nil {
		return err
	}
	b, err := decodeWrapped[struct {
		Location     *string           `json:"location"`
		Capabilities map[string]string `json:"capabilities"`
		DCoT         *string           `json:"dcot"`
	}](h, r, "domain")
	if err != nil {
		return err
	}
	if b.Location == nil && b.Capabilities == nil && b.DCoT == nil {
		return invalid("domain", "Give location, capabilities or dcot to change.")
	}
	d, err := h.acaas.SetDomain(r.Context(), r.PathValue("name"), acaas.DomainChanges{Location: b.Location, Capabilities: b.Capabilities, DCoT: b.DCoT})
	if err != nil {
		return err
	}
	return ok(w, object{"domain": domain(d)})
}

func (h *handler) deleteDomain(w http.ResponseWriter, r *http.Request) error {
	if err := h.manage(r); err != nil {
		return err
	}
	if err := h.acaas.DeleteDomain(r.Context(), r.PathValue("name")); err != nil {
		return err
	}
	return noContent(w)
}

// addDomainHost makes a host a member of the domain (moving it from
// another) and answers with the domain.
func (h *handler) addDomainHost(w http.ResponseWriter, r *http.Request) error {
	if err := h.manage(r); err != nil {
		return err
	}
	name := r.PathValue("name")
	if _, err := h.acaas.AddHost(r.Context(), name, r.PathValue("host")); err != nil {
		return err
	}
	d, err := h.acaas.Domain(r.Context(), name)
	if err != nil {
		return err
	}
	return ok(w, object{"domain": domain(d)})
}

func (h *handler) removeDomainHost(w http.ResponseWriter, r *http.Request) error {
	if err := h.manage(r); err != nil {
		return err
	}
	if err := h.acaas.RemoveHost(r.Context(), r.PathValue("name"), r.PathValue("host")); err != nil {
		return err
	}
	return noContent(w)
}

func (h *handler) addCollaborator(w http.ResponseWriter, r *http.Request) error {
	if err := h.manage(r); err != nil {
		return err
	}
	b, err := decodeWrapped[struct {
		Priority *int `json:"priority"`
	}](h, r, "collaborator")
	if err != nil {
		return err
	}
	if b.Priority == nil {
		return required("priority")
	}
	d, err := h.acaas.AddCollaborator(r.Context(), r.PathValue("name"), r.PathValue("backup"), *b.Priority)
	if err != nil {
		return err
	}
	return ok(w, object{"domain": domain(d)})
}

func (h *handler) removeCollaborator(w http.ResponseWriter, r *http.Request) error {
	if err := h.manage(r); err != nil {
		return err
	}
	if _, err := h.acaas.RemoveCollaborator(r.Context(), r.PathValue("name"), r.PathValue("backup")); err != nil {
		return err
	}
	return noContent(w)
}

// Host properties.

func hostProperties(host string, properties, security map[string]string) object {
	if properties == nil {
		properties = map[string]string{}
	}
	if security == nil {
		security = map[string]string{}
	}
	return object{"host": host, "properties": properties, "security": security}
}

func (h *handler) showHostProperties(w http.ResponseWriter, r *http.Request) error {
	if err := h.manage(r); err != nil {
		return err
	}
	host := r.PathValue("host")
	props, sec, err := h.acaas.HostProperties(r.Context(), host)
	if err != nil {
		return err
	}
	return ok(w, hostProperties(host, props, sec))
}

// addHostProperties merges the body's properties, security properties
// or both into the host's, and answers with all of them.
func (h *handler) addHostProperties(w http.ResponseWriter, r *http.Request) error {
	if err := h.manage(r); err != nil {
		return err
	}
	var body struct {
		Properties map[string]string `json:"properties"`
		Security   map[string]string `json:"security"`
	}
	if err := h.dec.Decode(r, &body); err != nil {
		return err
	}
	if len(body.Properties) == 0 && len(body.Security) == 0 {
		return invalid("properties", "Give properties or security, an object of at least one property.")
	}
	host := r.PathValue("host")
	for _, p := range []struct {
		props    map[string]string
		security bool
	}{{body.Properties, false}, {body.Security, true}} {
		if len(p.props) > 0 {
			if _, err := h.acaas.AddHostProperties(r.Context(), host, p.props, p.security); err != nil {
				return err
			}
		}
	}
	props, sec, err := h.acaas.HostProperties(r.Context(), host)
	if err != nil {
		return err
	}
	return ok(w, hostProperties(host, props, sec))
}

func (h *handler) removeHostProperty(w http.ResponseWriter, r *http.Request) error {
	if err := h.manage(r); err != nil {
		return err
	}
	security, err := boolQuery(r, "security")
	if err != nil {
		return err
	}
	if _, err := h.acaas.RemoveHostProperties(r.Context(), r.PathValue("host"), []string{r.PathValue("key")}, security); err != nil {
		return err
	}
	return noContent(w)
}

// boolQuery reads a boolean query parameter; absent is false.
func boolQuery(r *http.Request, name string) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, trustack.Errorf(trustack.EINVALID, "Invalid value %q for query parameter %s: want true or false.", v, name)
	}
	return b, nil
}

// Requirement entries.

func entry(e *trustack.RequirementEntry) object {
	return object{"name": e.Name, "kind": e.Kind, "description": e.Description}
}

func (h *handler) listEntries(w http.ResponseWriter, r *http.Request) error {
	if err := h.api.Authorize(r, "trustack:requirement-entries:list", nil); err != nil {
		return err
	}
	list, err := h.acaas.Entries(r.Context())
	return listed(w, "requirement_entries", list, err, entry)
}

func (h *handler) showEntry(w http.ResponseWriter, r *http.Request) error {
	if err := h.api.Authorize(r, "trustack:requirement-entries:list", nil); err != nil {
		return err
	}
	list, err := h.acaas.Entries(r.Context())
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	for _, e := range list {
		if e.Name == name {
			return ok(w, object{"requirement_entry": entry(e)})
		}
	}
	return trustack.Errorf(trustack.ENOTFOUND, "Requirement entry %s does not exist.", name)
}

func (h *handler) createEntry(w http.ResponseWriter, r *http.Request) error {
	if err := h.manage(r); err != nil {
		return err
	}
	b, err := decodeWrapped[struct {
		Name        string `json:"name"`
		Kind        string `json:"kind"`
		Description string `json:"description"`
	}](h, r, "requirement_entry")
	if err != nil {
		return err
	}
	e, err := h.acaas.CreateEntry(r.Context(), b.Name, b.Kind, b.Description)
	if err != nil {
		return err
	}
	return created(w, object{"requirement_entry": entry(e)})
}

func (h *handler) deleteEntry(w http.ResponseWriter, r *http.Request) error {
	if err := h.manage(r); err != nil {
		return err
	}
	if err := h.acaas.DeleteEntry(r.Context(), r.PathValue("name")); err != nil {
		return err
	}
	return noContent(w)
}

// Project requirements.

func requirement(p *trustack.ProjectRequirement) object {
	return object{"project_id": p.ProjectID, "entry": p.Entry, "value": p.Value, "locked": p.Locked,
		"updated_at": p.UpdatedAt.UTC().Format(time.RFC3339)}
}

// requirementCaller authorizes rule on the project a requirements call
// names (the caller's own if "") and returns the caller and the project.
func (h *handler) requirementCaller(r *http.Request, rule, project string) (acaas.Caller, string, error) {
	c, err := h.caller(r)
	if err != nil {
		return acaas.Caller{}, "", err
	}
	if project == "" {
		project = c.ProjectID
	}
	if err := h.authorize(r, rule, project); err != nil {
		return acaas.Caller{}, "", err
	}
	return c, project, nil
}

func (h *handler) listRequirements(w http.ResponseWriter, r *http.Request) error {
	c, project, err := h.requirementCaller(r, "trustack:requirements:list", r.URL.Query().Get("project_id"))
	if err != nil {
		return err
	}
	list, err := h.acaas.Requirements(r.Context(), c, project)
	return listed(w, "requirements", list, err, requirement)
}

func (h *handler) createRequirement(w http.ResponseWriter, r *http.Request) error {
	b, err := decodeWrapped[struct {
		Entry     string  `json:"entry"`
		Value     *string `json:"value"`
		ProjectID string  `json:"project_id"`
	}](h, r, "requirement")
	if err != nil {
		return err
	}
	project := b.ProjectID
	if project == "" {
		project = r.URL.Query().Get("project_id")
	}
	c, project, err := h.requirementCaller(r, "trustack:requirements:create", project)
	if err != nil {
		return err
	}
	if b.Entry == "" {
		return required("entry")
	}
	if b.Value == nil {
		return required("value")
	}
	p, err := h.acaas.SetRequirement(r.Context(), c, project, b.Entry, *b.Value, acaas.Create)
	if err != nil {
		return err
	}
	return created(w, object{"requirement": requirement(p)})
}

func (h *handler) updateRequirement(w http.ResponseWriter, r *http.Request) error {
	c, project, err := h.requirementCaller(r, "trustack:requirements:update", r.URL.Query().Get("project_id"))
	if err != nil {
		return err
	}
	b, err := decodeWrapped[struct {
		Value *string `json:"value"`
	}](h, r, "requirement")
	if err != nil {
		return err
	}
	if b.Value == nil {
		return required("value")
	}
	p, err := h.acaas.SetRequirement(r.Context(), c, project, r.PathValue("entry"), *b.Value, acaas.Change)
	if err != nil {
		return err
	}
	return ok(w, object{"requirement": requirement(p)})
}

func (h *handler) deleteRequirement(w http.ResponseWriter, r *http.Request) error {
	c, project, err := h.requirementCaller(r, "trustack:requirements:delete", r.URL.Query().Get("project_id"))
	if err != nil {
		return err
	}
	if err := h.acaas.UnsetRequirement(r.Context(), c, project, r.PathValue("entry")); err != nil {
		return err
	}
	return noContent(w)
}
