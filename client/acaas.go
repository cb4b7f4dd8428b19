package client

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"strings"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/trustack/trustack"
)

// The commands of ACaaS, over trustack's extension of the compute API
// (/os-trustack-*): the operators' locations, distances, physical
// domains, host properties and requirement entries, and the
// requirements users state for their project.

// request makes a call to the compute API's path (segments, escaped
// here) with query, sending body and decoding the answer into out (each
// nil for none); want is the status of success.
func (c *Client) request(ctx context.Context, method string, want int, body, out any, query url.Values, path ...string) error {
	escaped := make([]string, len(path))
	for i, p := range path {
		escaped[i] = url.PathEscape(p)
	}
	u := c.compute.ServiceURL(escaped...)
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	_, err := c.compute.Request(ctx, method, u, &gophercloud.RequestOpts{JSONBody: body, JSONResponse: out, OkCodes: []int{want}})
	return apiError(err)
}

// pairs parses KEY=VALUE arguments into a map; the last value of a key
// given twice wins. It returns EINVALID for an argument without "=" or
// with an empty key.
func pairs(what string, args []string) (map[string]string, error) {
	kv, err := keyValues(what, args)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(kv))
	for k, vs := range kv {
		out[k] = vs[len(vs)-1]
	}
	return out, nil
}

// Host properties.

type hostPropertiesBody struct {
	Host       string            `json:"host"`
	Properties map[string]string `json:"properties"`
	Security   map[string]string `json:"security"`
}

func (c *Client) showHostProperties(b hostPropertiesBody) error {
	return c.show(record{{"host", b.Host}, {"properties", b.Properties}, {"security", b.Security}})
}

// AddHostProperties merges KEY=VALUE properties into a compute host's
// infrastructure properties, or its security properties if security, and
// shows them all.
func (c *Client) AddHostProperties(ctx context.Context, host string, args []string, security bool) error {
	props, err := pairs("property", args)
	if err != nil {
		return err
	}
	req := map[string]any{"properties": props}
	if security {
		req = map[string]any{"security": props}
	}
	var out hostPropertiesBody
	if err := c.request(ctx, http.MethodPost, http.StatusOK, req, &out, nil, "os-trustack-hosts", host, "properties"); err != nil {
		return err
	}
	return c.showHostProperties(out)
}

// HostProperties shows a compute host's properties.
func (c *Client) HostProperties(ctx context.Context, host string) error {
	var out hostPropertiesBody
	if err := c.request(ctx, http.MethodGet, http.StatusOK, nil, &out, nil, "os-trustack-hosts", host, "properties"); err != nil {
		return err
	}
	return c.showHostProperties(out)
}

// RemoveHostProperties removes properties of a compute host, security
// properties if security, and shows those left. It removes none if one
// is missing (ENOTFOUND).
func (c *Client) RemoveHostProperties(ctx context.Context, host string, keys []string, security bool) error {
	var have hostPropertiesBody
	if err := c.request(ctx, http.MethodGet, http.StatusOK, nil, &have, nil, "os-trustack-hosts", host, "properties"); err != nil {
		return err
	}
	kind, m := "property", have.Properties
	if security {
		kind, m = "security property", have.Security
	}
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			return trustack.Errorf(trustack.ENOTFOUND, "Host %s has no %s %s.", host, kind, k)
		}
	}
	var query url.Values
	if security {
		query = url.Values{"security": {"true"}}
	}
	for _, k := range keys {
		if err := c.request(ctx, http.MethodDelete, http.StatusNoContent, nil, nil, query, "os-trustack-hosts", host, "properties", k); err != nil {
			return fmt.Errorf("remove %s %s of host %s: %w", kind, k, host, err)
		}
	}
	return c.HostProperties(ctx, host)
}

// Locations and distances.

type locationBody struct {
	Name    string `json:"name"`
	Country string `json:"country"`
}

// CreateLocation adds a location in a country and shows it.
func (c *Client) CreateLocation(ctx context.Context, name, country string) error {
	var out struct {
		Location locationBody `json:"location"`
	}
	if err := c.request(ctx, http.MethodPost, http.StatusCreated, map[string]any{"location": locationBody{name, country}}, &out, nil, "os-trustack-locations"); err != nil {
		return err
	}
	return c.show(record{{"name", out.Location.Name}, {"country", out.Location.Country}})
}

// ListLocations lists the locations.
func (c *Client) ListLocations(ctx context.Context) error {
	var out struct {
		Locations []locationBody `json:"locations"`
	}
	if err := c.request(ctx, http.MethodGet, http.StatusOK, nil, &out, nil, "os-trustack-locations"); err != nil {
		return err
	}
	t := &table{columns: []string{"Name", "Country"}}
	for _, l := range out.Locations {
		t.add(l.Name, l.Country)
	}
	return c.list(t)
}

// DeleteLocations deletes locations. It tries every one and returns the
// errors of those it could not delete.
func (c *Client) DeleteLocations(ctx context.Context, names []string) error {
	return eachOf("delete location", names, func(name string) error {
		return c.request(ctx, http.MethodDelete, http.StatusNoContent, nil, nil, nil, "os-trustack-locations", name)
	})
}

type distanceBody struct {
	A  string `json:"a"`
	B  string `json:"b"`
	KM int    `json:"km"`
}

// SetDistance records the distance between two locations and shows it.
func (c *Client) SetDistance(ctx context.Context, a, b string, km int) error {
	var out struct {
		Distance distanceBody `json:"distance"`
	}
	if err := c.request(ctx, http.MethodPut, http.StatusOK, map[string]any{"distance": map[string]int{"km": km}}, &out, nil, "os-trustack-distances", a, b); err != nil {
		return err
	}
	return c.show(record{{"a", out.Distance.A}, {"b", out.Distance.B}, {"km", out.Distance.KM}})
}

// ListDistances lists the distances between locations.
func (c *Client) ListDistances(ctx context.Context) error {
	var out struct {
		Distances []distanceBody `json:"distances"`
	}
	if err := c.request(ctx, http.MethodGet, http.StatusOK, nil, &out, nil, "os-trustack-distances"); err != nil {
		return err
	}
	t := &table{columns: []string{"A", "B", "KM"}}
	for _, d := range out.Distances {
		t.add(d.A, d.B, d.KM)
	}
	return c.list(t)
}

// Physical domains.

type domainBody struct {
	Name          string            `json:"name"`
	Location      string            `json:"location"`
	Capabilities  map[string]string `json:"capabilities"`
	DCoT          string            `json:"dcot"`
	Source        string            `json:"source"`
	Collaborators []struct {
		Domain   string `json:"domain"`
		Priority int    `json:"priority"`
	} `json:"collaborators"`
	Hosts     []string `json:"hosts"`
	CreatedAt string   `json:"created_at"`
	// DCoTHeld says whether every member host proved the DCoT now,
	// DCoTHeldBy how many did; CDCoTHeld whether the DCoT holds in the
	// domain and in every collaborator.
	DCoTHeld   bool `json:"dcot_held"`
	DCoTHeldBy int  `json:"dcot_held_by"`
	CDCoTHeld  bool `json:"cdcot_held"`
}

// collaborators renders a domain's collaborators as "name (priority)",
// by priority.
func (d domainBody) collaborators() []string {
	out := []string{}
	for _, c := range d.Collaborators {
		out = append(out, fmt.Sprintf("%s (%d)", c.Domain, c.Priority))
	}
	return out
}

// showDomain shows a domain; in a table, whether its DCoT and CDCoT hold
// is said in words ("baseline (held by 2 of 2 hosts)", "held"), in JSON
// by the API's fields.
func (c *Client) showDomain(d domainBody) error {
	if d.Hosts == nil {
		d.Hosts = []string{}
	}
	held := record{{"dcot", d.DCoT}, {"dcot_held", d.DCoTHeld}, {"dcot_held_by", d.DCoTHeldBy}, {"cdcot_held", d.CDCoTHeld}}
	if c.out.Format != FormatJSON {
		dcot := d.DCoT
		if dcot != "" {
			noun := "hosts"
			if len(d.Hosts) == 1 {
				noun = "host"
			}
			dcot += fmt.Sprintf(" (held by %d of %d %s)", d.DCoTHeldBy, len(d.Hosts), noun)
		}
		cdcot := "not held"
		if d.CDCoTHeld {
			cdcot = "held"
		}
		held = record{{"dcot", dcot}, {"cdcot", cdcot}}
	}
	r := record{{"name", d.Name}, {"location", d.Location}, {"source", d.Source}}
	r = append(r, held...)
	return c.show(append(r, record{{"capabilities", d.Capabilities}, {"hosts", d.Hosts}, {"collaborators", d.collaborators()}, {"created_at", d.CreatedAt}}...))
}

// domainCall makes a call that answers with a domain, and shows it.
func (c *Client) domainCall(ctx context.Context, method string, want int, body any, path ...string) error {
	var out struct {
		Domain domainBody `json:"domain"`
	}
	if err := c.request(ctx, method, want, body, &out, nil, path...); err != nil {
		return err
	}
	return c.showDomain(out.Domain)
}

// DomainCreate is a new physical domain.
type DomainCreate struct {
	Name, Location string
	// Capabilities are KEY=VALUE.
	Capabilities []string
	DCoT         string
	Source       string // local (default) or emergency
}

// CreateDomain creates a physical domain and shows it.
func (c *Client) CreateDomain(ctx context.Context, req DomainCreate) error {
	caps, err := pairs("--capability", req.Capabilities)
	if err != nil {
		return err
	}
	body := map[string]any{"domain": map[string]any{"name": req.Name, "location": req.Location, "capabilities": caps, "dcot": req.DCoT, "source": req.Source}}
	return c.domainCall(ctx, http.MethodPost, http.StatusCreated, body, "os-trustack-domains")
}

// ListDomains lists the physical domains.
func (c *Client) ListDomains(ctx context.Context) error {
	var out struct {
		Domains []domainBody `json:"domains"`
	}
	if err := c.request(ctx, http.MethodGet, http.StatusOK, nil, &out, nil, "os-trustack-domains"); err != nil {
		return err
	}
	t := &table{columns: []string{"Name", "Location", "Source", "DCoT", "Capabilities", "Hosts", "Collaborators"}}
	for _, d := range out.Domains {
		if d.Hosts == nil {
			d.Hosts = []string{}
		}
		t.add(d.Name, d.Location, d.Source, d.DCoT, d.Capabilities, d.Hosts, d.collaborators())
	}
	return c.list(t)
}

// ShowDomain shows a physical domain, with its hosts and collaborators.
func (c *Client) ShowDomain(ctx context.Context, name string) error {
	return c.domainCall(ctx, http.MethodGet, http.StatusOK, nil, "os-trustack-domains", name)
}

// DomainSet is a change of a physical domain; nil fields stay as they
// are.
type DomainSet struct {
	Location *string
	// Capabilities are KEY=VALUE to add or change, and KEY= to remove.
	Capabilities []string
	DCoT         *string
}

// SetDomain changes a physical domain and shows it. Capabilities are
// merged into the domain's.
func (c *Client) SetDomain(ctx context.Context, name string, req DomainSet) error {
	change := map[string]any{}
	if req.Location != nil {
		change["location"] = *req.Location
	}
	if req.DCoT != nil {
		change["dcot"] = *req.DCoT
	}
	if len(req.Capabilities) > 0 {
		caps, err := pairs("--capability", req.Capabilities)
		if err != nil {
			return err
		}
		var have struct {
			Domain domainBody `json:"domain"`
		}
		if err := c.request(ctx, http.MethodGet, http.StatusOK, nil, &have, nil, "os-trustack-domains", name); err != nil {
			return err
		}
		merged := maps.Clone(have.Domain.Capabilities)
		if merged == nil {
			merged = map[string]string{}
		}
		for k, v := range caps {
			if v == "" {
				delete(merged, k)
			} else {
				merged[k] = v
			}
		}
		change["capabilities"] = merged
	}
	if len(change) == 0 {
		return trustack.Errorf(trustack.EINVALID, "nothing to change: give --location, --capability or --dcot")
	}
	return c.domainCall(ctx, http.MethodPut, http.StatusOK, map[string]any{"domain": change}, "os-trustack-domains", name)
}

// DeleteDomains deletes physical domains. It tries every one and returns
// the errors of those it could not delete.
func (c *Client) DeleteDomains(ctx context.Context, names []string) error {
	return eachOf("delete domain", names, func(name string) error {
		return c.request(ctx, http.MethodDelete, http.StatusNoContent, nil, nil, nil, "os-trustack-domains", name)
	})
}

// AddDomainHost makes a compute host a member of a domain (moving it from
// another) and shows the domain.
func (c *Client) AddDomainHost(ctx context.Context, domain, host string) error {
	return c.domainCall(ctx, http.MethodPut, http.StatusOK, nil, "os-trustack-domains", domain, "hosts", host)
}

// RemoveDomainHost takes a compute host out of a domain and shows the
// domain.
func (c *Client) RemoveDomainHost(ctx context.Context, domain, host string) error {
	if err := c.request(ctx, http.MethodDelete, http.StatusNoContent, nil, nil, nil, "os-trustack-domains", domain, "hosts", host); err != nil {
		return err
	}
	return c.ShowDomain(ctx, domain)
}

// AddCollaborator makes backup a collaborator of domain at a priority
// (lower goes first), and shows the domain.
func (c *Client) AddCollaborator(ctx context.Context, domain, backup string, priority int) error {
	return c.domainCall(ctx, http.MethodPut, http.StatusOK, map[string]any{"collaborator": map[string]int{"priority": priority}},
		"os-trustack-domains", domain, "collaborators", backup)
}

// RemoveCollaborator makes backup no longer a collaborator of domain, and
// shows the domain.
func (c *Client) RemoveCollaborator(ctx context.Context, domain, backup string) error {
	if err := c.request(ctx, http.MethodDelete, http.StatusNoContent, nil, nil, nil, "os-trustack-domains", domain, "collaborators", backup); err != nil {
		return err
	}
	return c.ShowDomain(ctx, domain)
}

// Requirement entries.

type entryBody struct {
	Name        string `json:"name"`
	Kind        string `json:"kind"`
	Description string `json:"description"`
}

// CreateEntry creates a requirement entry and shows it.
func (c *Client) CreateEntry(ctx context.Context, name, kind, description string) error {
	var out struct {
		Entry entryBody `json:"requirement_entry"`
	}
	if err := c.request(ctx, http.MethodPost, http.StatusCreated, map[string]any{"requirement_entry": entryBody{name, kind, description}}, &out, nil,
		"os-trustack-requirement-entries"); err != nil {
		return err
	}
	return c.show(record{{"name", out.Entry.Name}, {"kind", out.Entry.Kind}, {"description", out.Entry.Description}})
}

// ListEntries lists the requirement entries.
func (c *Client) ListEntries(ctx context.Context) error {
	var out struct {
		Entries []entryBody `json:"requirement_entries"`
	}
	if err := c.request(ctx, http.MethodGet, http.StatusOK, nil, &out, nil, "os-trustack-requirement-entries"); err != nil {
		return err
	}
	t := &table{columns: []string{"Name", "Kind", "Description"}}
	for _, e := range out.Entries {
		t.add(e.Name, e.Kind, e.Description)
	}
	return c.list(t)
}

// DeleteEntries deletes requirement entries. It tries every one and
// returns the errors of those it could not delete.
func (c *Client) DeleteEntries(ctx context.Context, names []string) error {
	return eachOf("delete requirement entry", names, func(name string) error {
		return c.request(ctx, http.MethodDelete, http.StatusNoContent, nil, nil, nil, "os-trustack-requirement-entries", name)
	})
}

// Project requirements.

// projectQuery names the project of a requirements call, none for the
// caller's own.
func projectQuery(project string) url.Values {
	if project == "" {
		return nil
	}
	return url.Values{"project_id": {project}}
}

// SetRequirements states a project's ("" for the caller's own)
// requirements, ENTRY=VALUE, and lists them all. With change, each
// changes an existing requirement; without, each must be new. It stops at
// the first the API refuses.
func (c *Client) SetRequirements(ctx context.Context, project string, args []string, change bool) error {
	if len(args) == 0 {
		return trustack.Errorf(trustack.EINVALID, "give requirements as ENTRY=VALUE")
	}
	type kv struct{ k, v string }
	var list []kv
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return trustack.Errorf(trustack.EINVALID, "requirement %q: want ENTRY=VALUE", a)
		}
		list = append(list, kv{k, v})
	}
	for _, r := range list {
		var err error
		if change {
			err = c.request(ctx, http.MethodPut, http.StatusOK, map[string]any{"requirement": map[string]string{"value": r.v}}, nil,
				projectQuery(project), "os-trustack-requirements", r.k)
		} else {
			body := map[string]string{"entry": r.k, "value": r.v}
			if project != "" {
				body["project_id"] = project
			}
			err = c.request(ctx, http.MethodPost, http.StatusCreated, map[string]any{"requirement": body}, nil, nil, "os-trustack-requirements")
		}
		if err != nil {
			return fmt.Errorf("requirement %s=%s: %w", r.k, r.v, err)
		}
	}
	return c.ListRequirements(ctx, project)
}

// UnsetRequirements removes a project's ("" for the caller's own)
// requirements for the entries. It tries every one and returns the
// errors of those it could not remove.
func (c *Client) UnsetRequirements(ctx context.Context, project string, entries []string) error {
	return eachOf("unset requirement", entries, func(e string) error {
		return c.request(ctx, http.MethodDelete, http.StatusNoContent, nil, nil, projectQuery(project), "os-trustack-requirements", e)
	})
}

type requirementBody struct {
	ProjectID string `json:"project_id"`
	Entry     string `json:"entry"`
	Value     string `json:"value"`
	Locked    bool   `json:"locked"`
	UpdatedAt string `json:"updated_at"`
}

// ListRequirements lists a project's ("" for the caller's own)
// requirements.
func (c *Client) ListRequirements(ctx context.Context, project string) error {
	var out struct {
		Requirements []requirementBody `json:"requirements"`
	}
	if err := c.request(ctx, http.MethodGet, http.StatusOK, nil, &out, projectQuery(project), "os-trustack-requirements"); err != nil {
		return err
	}
	t := &table{columns: []string{"Entry", "Value", "Locked", "Project", "Updated"}}
	for _, r := range out.Requirements {
		t.add(r.Entry, r.Value, r.Locked, r.ProjectID, r.UpdatedAt)
	}
	return c.list(t)
}
