package volume

import (
	"net/http"
	"slices"
)

// volumeSummary serves GET /volumes/summary (3.12): the number and the
// total size of the volumes the caller may list, which the list's
// filters select (with all_tenants, every project's to an
// administrator); from 3.36 also every value each metadata key has on
// them, as Cinder gathers them: key → the distinct values, here sorted.
// Cinder checks volume:get_all, the rule of the list.
func (h *handler) volumeSummary(w http.ResponseWriter, r *http.Request) error {
	if !atLeast(r, 12) {
		return noSuchAPI(r)
	}
	list, _, err := h.listedVolumes(r)
	if err != nil {
		return err
	}
	size := 0
	values := map[string][]string{}
	for _, v := range list {
		size += v.Size
		for k, val := range v.Metadata {
			if !slices.Contains(values[k], val) {
				values[k] = append(values[k], val)
			}
		}
	}
	summary := object{"total_size": size, "total_count": len(list)}
	if atLeast(r, 36) {
		for _, vals := range values {
			slices.Sort(vals)
		}
		summary["metadata"] = values
	}
	return reply(w, http.StatusOK, object{"volume-summary": summary})
}
