package identity

import (
	"net/http"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/api/openstack"
)

// Regions.

type regionFields struct {
	ID             openstack.Optional[string] `json:"id"`
	Description    openstack.Optional[string] `json:"description"`
	ParentRegionID openstack.Optional[string] `json:"parent_region_id"`
}

func (f *regionFields) apply(region *trustack.Region) error {
	f.Description.ApplyNullable(&region.Description)
	f.ParentRegionID.ApplyNullable(&region.ParentRegionID)
	return nil
}

func (h *handler) listRegions(w http.ResponseWriter, r *http.Request) error {
	if err := h.api.Authorize(r, "identity:list_regions", nil); err != nil {
		return err
	}
	list, err := h.svc.Regions(r.Context(), trustack.RegionFilter{ParentRegionID: r.URL.Query().Get("parent_region_id")})
	if err != nil {
		return err
	}
	h.collection(w, r, "regions", render(list, h.region))
	return nil
}

// createRegion serves POST /regions (an ID in the body, or a new one) and
// PUT /regions/{region_id}.
func (h *handler) createRegion(w http.ResponseWriter, r *http.Request) error {
	if err := h.api.Authorize(r, "identity:create_region", nil); err != nil {
		return err
	}
	var f regionFields
	extra, err := h.decodeEntity(r, "region", &f)
	if err != nil {
		return err
	}
	region := &trustack.Region{Extra: extra}
	f.apply(region)
	f.ID.ApplyNullable(&region.ID)
	if id := r.PathValue("region_id"); id != "" {
		if region.ID != "" && region.ID != id {
			return trustack.Errorf(trustack.EINVALID, "The region ID in the body differs from the one in the URL.")
		}
		region.ID = id
	}
	if err := h.svc.CreateRegion(r.Context(), region); err != nil {
		return err
	}
	return created(w, "region", h.region(region))
}

// Services.

type serviceFields struct {
	Type        openstack.Optional[string] `json:"type"`
	Name        openstack.Optional[string] `json:"name"`
	Description openstack.Optional[string] `json:"description"`
	Enabled     openstack.Optional[bool]   `json:"enabled"`
}

func (f *serviceFields) apply(s *trustack.Service) error {
	f.Name.ApplyNullable(&s.Name)
	f.Description.ApplyNullable(&s.Description)
	if err := f.Type.Apply(&s.Type, "service.type"); err != nil {
		return err
	}
	return f.Enabled.Apply(&s.Enabled, "service.enabled")
}

func (h *handler) listServices(w http.ResponseWriter, r *http.Request) error {
	if err := h.api.Authorize(r, "identity:list_services", nil); err != nil {
		return err
	}
	q := r.URL.Query()
	list, err := h.svc.Services(r.Context(), trustack.ServiceFilter{Type: q.Get("type"), Name: q.Get("name")})
	if err != nil {
		return err
	}
	h.collection(w, r, "services", render(list, h.service))
	return nil
}

func (h *handler) createService(w http.ResponseWriter, r *http.Request) error {
	if err := h.api.Authorize(r, "identity:create_service", nil); err != nil {
		return err
	}
	var f serviceFields
	extra, err := h.decodeEntity(r, "service", &f)
	if err != nil {
		return err
	}
	s := &trustack.Service{Enabled: true, Extra: extra}
	if err := f.apply(s); err != nil {
		return err
	}
	if err := h.svc.CreateService(r.Context(), s); err != nil {
		return err
	}
	return created(w, "service", h.service(s))
}

// Endpoints.

type endpointFields struct {
	ServiceID openstack.Optional[string] `json:"service_id"`
	Interface openstack.Optional[string] `json:"interface"`
	URL       openstack.Optional[string] `json:"url"`
	RegionID  openstack.Optional[string] `json:"region_id"`
	Region    openstack.Optional[string] `json:"region"` // the older name of region_id
	Enabled   openstack.Optional[bool]   `json:"enabled"`
}

func (f *endpointFields) apply(e *trustack.Endpoint) error {
	f.Region.ApplyNullable(&e.RegionID)
	f.RegionID.ApplyNullable(&e.RegionID)
	for _, field := range []struct {
		o   openstack.Optional[string]
		dst *string
		n   string
	}{{f.ServiceID, &e.ServiceID, "endpoint.service_id"}, {f.Interface, &e.Interface, "endpoint.interface"}, {f.URL, &e.URL, "endpoint.url"}} {
		if err := field.o.Apply(field.dst, field.n); err != nil {
			return err
		}
	}
	return f.Enabled.Apply(&e.Enabled, "endpoint.enabled")
}

func (h *handler) listEndpoints(w http.ResponseWriter, r *http.Request) error {
	if err := h.api.Authorize(r, "identity:list_endpoints", nil); err != nil {
		return err
	}
	q := r.URL.Query()
	list, err := h.svc.Endpoints(r.Context(), trustack.EndpointFilter{ServiceID: q.Get("service_id"), RegionID: q.Get("region_id"), Interface: q.Get("interface")})
	if err != nil {
		return err
	}
	h.collection(w, r, "endpoints", render(list, h.endpoint))
	return nil
}

func (h *handler) createEndpoint(w http.ResponseWriter, r *http.Request) error {
	if err := h.api.Authorize(r, "identity:create_endpoint", nil); err != nil {
		return err
	}
	var f endpointFields
	extra, err := h.decodeEntity(r, "endpoint", &f)
	if err != nil {
		return err
	}
	e := &trustack.Endpoint{Enabled: true, Extra: extra}
	if err := f.apply(e); err != nil {
		return err
	}
	if err := h.svc.CreateEndpoint(r.Context(), e); err != nil {
		return err
	}
	return created(w, "endpoint", h.endpoint(e))
}
