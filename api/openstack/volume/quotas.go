package volume

import (
	"cmp"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/policy"
)

// quotaRoutes serves quota sets and limits.
func (h *handler) quotaRoutes() {
	a := h.api
	base := v3 + "/os-quota-sets/{project}"
	a.Private("GET "+base, h.showQuotas)
	a.Private("GET "+base+"/defaults", h.defaultQuotas)
	a.Private("PUT "+base, h.updateQuotas)
	a.Private("DELETE "+base, h.deleteQuotas)
	a.Private("GET "+v3+"/limits", h.limits)
}

func (h *handler) showQuotas(w http.ResponseWriter, r *http.Request) error {
	project := r.PathValue("project")
	if err := h.quotaCaller(r, "volume_extension:quotas:show", project); err != nil {
		return err
	}
	usage, err := strconv.ParseBool(r.URL.Query().Get("usage"))
	if err != nil && r.URL.Query().Has("usage") {
		return trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Invalid input received: usage must be true or false.")
	}
	limits, err := h.svc.Quotas(r.Context(), project)
	if err != nil {
		return err
	}
	set := object{"id": project}
	if !usage {
		for resource, limit := range limits {
			set[resource] = limit
		}
		return reply(w, http.StatusOK, object{"quota_set": set})
	}
	used, err := h.svc.Usage(r.Context(), project)
	if err != nil {
		return err
	}
	for resource, limit := range limits {
		set[resource] = object{"limit": limit, "in_use": used[resource], "reserved": 0}
	}
	return reply(w, http.StatusOK, object{"quota_set": set})
}

// quotaCaller checks the caller and rule for a project's quotas.
func (h *handler) quotaCaller(r *http.Request, rule, project string) error {
	if _, err := h.caller(r); err != nil {
		return err
	}
	return h.authorize(r, rule, project)
}

func (h *handler) defaultQuotas(w http.ResponseWriter, r *http.Request) error {
	project := r.PathValue("project")
	if err := h.quotaCaller(r, "volume_extension:quotas:show", project); err != nil {
		return err
	}
	set := object{"id": project}
	for resource, limit := range h.svc.DefaultQuotas() {
		set[resource] = limit
	}
	return reply(w, http.StatusOK, object{"quota_set": set})
}

// updateQuotas sets the limits the body names, whole numbers of at least
// -1 (no limit), and answers the project's limits.
func (h *handler) updateQuotas(w http.ResponseWriter, r *http.Request) error {
	project := r.PathValue("project")
	if err := h.quotaCaller(r, "volume_extension:quotas:update", project); err != nil {
		return err
	}
	var body map[string]json.RawMessage
	if err := h.decode(r, "quota_set", &body); err != nil {
		return err
	}
	delete(body, "tenant_id") // which older clients send along
	limits := map[string]int{}
	for resource, raw := range body {
		n, err := wholeNumber(raw, resource, -1)
		if err != nil {
			return err
		}
		limits[resource] = n
	}
	set, err := h.svc.SetQuotas(r.Context(), project, limits)
	if err != nil {
		return err
	}
	out := object{}
	for resource, limit := range set {
		out[resource] = limit
	}
	return reply(w, http.StatusOK, object{"quota_set": out})
}

func (h *handler) deleteQuotas(w http.ResponseWriter, r *http.Request) error {
	project := r.PathValue("project")
	if err := h.quotaCaller(r, "volume_extension:quotas:delete", project); err != nil {
		return err
	}
	if err := h.svc.ResetQuotas(r.Context(), project); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// limits answers the caller's project's absolute limits and use, as
// Cinder's limits; from 3.39 an administrator's ?project_id= (or its
// older name tenant_id) names another project, which Cinder ignores
// below 3.39 and for anyone else.
func (h *handler) limits(w http.ResponseWriter, r *http.Request) error {
	c, err := h.caller(r)
	if err != nil {
		return err
	}
	project := c.ProjectID
	if q := r.URL.Query(); c.Admin && atLeast(r, 39) {
		project = cmp.Or(q.Get("project_id"), q.Get("tenant_id"), project)
	}
	limits, err := h.svc.Quotas(r.Context(), project)
	if err != nil {
		return err
	}
	used, err := h.svc.Usage(r.Context(), project)
	if err != nil {
		return err
	}
	absolute := object{
		"maxTotalVolumes": limits[trustack.QuotaVolumes], "maxTotalSnapshots": limits[trustack.QuotaSnapshots],
		"maxTotalVolumeGigabytes": limits[trustack.QuotaGigabytes], "maxTotalBackups": limits[trustack.QuotaBackups],
		"maxTotalBackupGigabytes": limits[trustack.QuotaBackupGigabytes],
	}
	if h.api.Allowed(r, "limits_extension:used_limits", policy.Target{"project_id": project}) {
		absolute["totalVolumesUsed"], absolute["totalGigabytesUsed"] = used[trustack.QuotaVolumes], used[trustack.QuotaGigabytes]
		absolute["totalSnapshotsUsed"], absolute["totalBackupsUsed"] = used[trustack.QuotaSnapshots], used[trustack.QuotaBackups]
		absolute["totalBackupGigabytesUsed"] = used[trustack.QuotaBackupGigabytes]
	}
	return reply(w, http.StatusOK, object{"limits": object{"rate": []object{}, "absolute": absolute}})
}
