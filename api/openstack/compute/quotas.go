package compute

import (
	"encoding/json"
	"maps"
	"net/http"

	"github.com/trustack/trustack"
)

// Nova's 2.1 quota resources that trustack does not count (there is no
// nova-network, no personality files), with the defaults Nova shows.
var fixedQuotas = map[string]int{
	"floating_ips": 10, "fixed_ips": -1, "security_groups": 10, "security_group_rules": 20,
	"injected_files": 5, "injected_file_content_bytes": 10240, "injected_file_path_bytes": 255,
}

// quotaSet renders limits as Nova's quota_set.
func quotaSet(limits map[string]int) map[string]any {
	out := map[string]any{}
	for k, v := range fixedQuotas {
		out[k] = v
	}
	for k, v := range limits {
		out[k] = v
	}
	return out
}

func (h *handler) limits(w http.ResponseWriter, r *http.Request) error {
	if err := h.api.Authorize(r, "os_compute_api:limits", nil); err != nil {
		return err
	}
	c, err := h.caller(r)
	if err != nil {
		return err
	}
	project := c.ProjectID
	if t := r.URL.Query().Get("tenant_id"); t != "" && t != project {
		if err := h.api.Authorize(r, "os_compute_api:limits:other_project", nil); err != nil {
			return err
		}
		project = t
	}
	lim, err := h.svc.Limits(r.Context(), project)
	if err != nil {
		return err
	}
	used, err := h.svc.Usage(r.Context(), project)
	if err != nil {
		return err
	}
	return ok(w, object{"limits": object{"rate": []object{}, "absolute": object{
		"maxImageMeta": lim[trustack.QuotaMetadataItems], "maxPersonality": fixedQuotas["injected_files"],
		"maxPersonalitySize": fixedQuotas["injected_file_content_bytes"], "maxSecurityGroupRules": fixedQuotas["security_group_rules"],
		"maxSecurityGroups": fixedQuotas["security_groups"], "maxServerMeta": lim[trustack.QuotaMetadataItems],
		"maxTotalCores": lim[trustack.QuotaCores], "maxTotalFloatingIps": fixedQuotas["floating_ips"],
		"maxTotalInstances": lim[trustack.QuotaInstances], "maxTotalKeypairs": lim[trustack.QuotaKeyPairs],
		"maxTotalRAMSize": lim[trustack.QuotaRAM], "maxServerGroups": lim[trustack.QuotaServerGroups],
		"maxServerGroupMembers": lim[trustack.QuotaServerGroupMembers],
		"totalCoresUsed":        used[trustack.QuotaCores], "totalInstancesUsed": used[trustack.QuotaInstances],
		"totalRAMUsed": used[trustack.QuotaRAM], "totalServerGroupsUsed": used[trustack.QuotaServerGroups],
		"totalFloatingIpsUsed": 0, "totalSecurityGroupsUsed": 0,
	}}})
}

func (h *handler) showQuotas(w http.ResponseWriter, r *http.Request) error {
	project := r.PathValue("project")
	if err := h.authorize(r, "os_compute_api:os-quota-sets:show", project); err != nil {
		return err
	}
	lim, err := h.svc.Limits(r.Context(), project)
	if err != nil {
		return err
	}
	qs := quotaSet(lim)
	qs["id"] = project
	return ok(w, object{"quota_set": qs})
}

func (h *handler) defaultQuotas(w http.ResponseWriter, r *http.Request) error {
	project := r.PathValue("project")
	if err := h.authorize(r, "os_compute_api:os-quota-sets:defaults", project); err != nil {
		return err
	}
	qs := quotaSet(maps.Clone(trustack.DefaultQuotas))
	qs["id"] = project
	return ok(w, object{"quota_set": qs})
}

func (h *handler) quotaDetail(w http.ResponseWriter, r *http.Request) error {
	project := r.PathValue("project")
	if err := h.authorize(r, "os_compute_api:os-quota-sets:detail", project); err != nil {
		return err
	}
	lim, err := h.svc.Limits(r.Context(), project)
	if err != nil {
		return err
	}
	used, err := h.svc.Usage(r.Context(), project)
	if err != nil {
		return err
	}
	qs := map[string]any{"id": project}
	for k, v := range quotaSet(lim) {
		qs[k] = object{"limit": v, "in_use": used[k], "reserved": 0}
	}
	return ok(w, object{"quota_set": qs})
}

func (h *handler) updateQuotas(w http.ResponseWriter, r *http.Request) error {
	project := r.PathValue("project")
	if err := h.authorize(r, "os_compute_api:os-quota-sets:update", project); err != nil {
		return err
	}
	var body struct {
		QuotaSet map[string]json.RawMessage `json:"quota_set"`
	}
	if err := h.dec.Decode(r, &body); err != nil {
		return err
	}
	if body.QuotaSet == nil {
		return invalid("quota_set", "'quota_set' is a required property.")
	}
	set := map[string]int{}
	for k, raw := range body.QuotaSet {
		if k == "force" {
			continue
		}
		n, err := intParam(k, raw, true)
		if err != nil {
			return err
		}
		if _, counted := trustack.DefaultQuotas[k]; counted {
			set[k] = n
		} else if _, known := fixedQuotas[k]; !known {
			return trustack.Errorf(trustack.EINVALID, "Bad key(s) %s in quota_set", k)
		}
	}
	if err := h.svc.SetLimits(r.Context(), project, set); err != nil {
		return err
	}
	lim, err := h.svc.Limits(r.Context(), project)
	if err != nil {
		return err
	}
	return ok(w, object{"quota_set": quotaSet(lim)})
}

func (h *handler) deleteQuotas(w http.ResponseWriter, r *http.Request) error {
	project := r.PathValue("project")
	if err := h.authorize(r, "os_compute_api:os-quota-sets:delete", project); err != nil {
		return err
	}
	if err := h.svc.ResetLimits(r.Context(), project); err != nil {
		return err
	}
	return accepted(w)
}
