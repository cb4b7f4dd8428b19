package network

import (
	"maps"
	"net/http"
	"slices"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/api/openstack"
	"github.com/trustack/trustack/policy"
)

// quotaRoutes serves Neutron's quotas and quota_details extensions.
func (h *handler) quotaRoutes() {
	a := h.api
	base := v2 + "/quotas"
	a.Private("GET "+base, h.listQuotas)
	a.Private("GET "+base+"/{project}", h.projectQuotas("get_quota", func(r *http.Request, project string) (any, error) {
		return h.svc.Quotas(r.Context(), project)
	}))
	a.Private("GET "+base+"/{project}/default", h.projectQuotas("get_quota", func(*http.Request, string) (any, error) {
		return h.svc.DefaultQuotas(), nil
	}))
	a.Private("GET "+base+"/{project}/details", h.projectQuotas("get_quota", h.quotaDetails))
	a.Private("PUT "+base+"/{project}", h.projectQuotas("update_quota", h.updateQuotas))
	a.Private("DELETE "+base+"/{project}", func(w http.ResponseWriter, r *http.Request) error {
		project := r.PathValue("project")
		if err := h.authorize(r, []string{"delete_quota"}, quotaTarget(project)); err != nil {
			return err
		}
		if err := h.svc.ResetQuotas(r.Context(), project); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}

// quotaTarget is what the policy checks of a project's quotas.
func quotaTarget(project string) policy.Target {
	return policy.Target{"project_id": project, "tenant_id": project}
}

// projectQuotas answers {"quota": ...} with what quota returns of the
// project of the request's path, after the policy's rule.
func (h *handler) projectQuotas(rule string, quota func(r *http.Request, project string) (any, error)) openstack.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		project := r.PathValue("project")
		if err := h.authorize(r, []string{rule}, quotaTarget(project)); err != nil {
			return err
		}
		q, err := quota(r, project)
		if err != nil {
			return err
		}
		return reply(w, http.StatusOK, object{"quota": q})
	}
}

// listQuotas lists the projects that have quotas of their own, which only
// an administrator may, as Neutron's.
func (h *handler) listQuotas(w http.ResponseWriter, r *http.Request) error {
	if !h.api.Allowed(r, "context_is_admin", policy.Target{}) {
		return trustack.Reasonf(trustack.EFORBIDDEN, "AdminRequired", "User does not have admin privileges: Only admin can view or configure quota.")
	}
	all, err := h.svc.AllQuotas(r.Context())
	if err != nil {
		return err
	}
	out := []object{}
	for _, project := range slices.Sorted(maps.Keys(all)) {
		q := object{"project_id": project, "tenant_id": project}
		for resource, limit := range all[project] {
			q[resource] = limit
		}
		out = append(out, q)
	}
	return reply(w, http.StatusOK, object{"quotas": out})
}

// quotaDetails returns each resource's limit and use; nothing is
// reserved, the service counting resources as it makes them.
func (h *handler) quotaDetails(r *http.Request, project string) (any, error) {
	limits, err := h.svc.Quotas(r.Context(), project)
	if err != nil {
		return nil, err
	}
	used, err := h.svc.Usage(r.Context(), project)
	if err != nil {
		return nil, err
	}
	out := object{}
	for resource, limit := range limits {
		out[resource] = object{"limit": limit, "used": used[resource], "reserved": 0}
	}
	return out, nil
}

// updateQuotas sets the limits the body names, integers of at least -1
// (no limit), and returns the project's limits.
func (h *handler) updateQuotas(r *http.Request, project string) (any, error) {
	attrs, err := h.attributes(r, "quota")
	if err != nil {
		return nil, err
	}
	limits := map[string]int{}
	for resource, v := range attrs {
		if limits[resource], err = parseInt(v); err != nil {
			return nil, err
		}
	}
	return h.svc.SetQuotas(r.Context(), project, limits)
}
