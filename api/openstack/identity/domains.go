package identity

import (
	"net/http"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/api/openstack"
)

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
