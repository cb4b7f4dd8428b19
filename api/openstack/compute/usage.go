package compute

import (
	"net/http"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/compute"
)

// Nova's os-simple-tenant-usage: what the servers of projects used over
// a period, in hours of their flavors' vCPUs, memory and disk, as
// `openstack usage list` and `usage show` read it.

// listUsage answers GET /os-simple-tenant-usage, every project's usage
// (an administrator's), each server's with detailed=1.
func (h *handler) listUsage(w http.ResponseWriter, r *http.Request) error {
	if err := h.authorize(r, "os_compute_api:os-simple-tenant-usage:list", ""); err != nil {
		return err
	}
	start, end, err := usagePeriod(r)
	if err != nil {
		return err
	}
	usages, err := h.svc.ServerUsages(r.Context(), "", start, end)
	if err != nil {
		return err
	}
	var projects []string
	byProject := map[string][]compute.ServerUsage{}
	for _, u := range usages {
		p := u.Server.ProjectID
		if byProject[p] == nil {
			projects = append(projects, p)
		}
		byProject[p] = append(byProject[p], u)
	}
	detailed := r.URL.Query().Get("detailed") == "1"
	out := make([]object, len(projects))
	for i, p := range projects {
		out[i] = tenantUsage(p, start, end, byProject[p], detailed)
	}
	return ok(w, object{"tenant_usages": out})
}

// showUsage answers GET /os-simple-tenant-usage/{tenant_id}: a project's
// usage with each server's, or an empty object if it used nothing, as
// Nova answers.
func (h *handler) showUsage(w http.ResponseWriter, r *http.Request) error {
	project := r.PathValue("tenant_id")
	if err := h.authorize(r, "os_compute_api:os-simple-tenant-usage:show", project); err != nil {
		return err
	}
	start, end, err := usagePeriod(r)
	if err != nil {
		return err
	}
	usages, err := h.svc.ServerUsages(r.Context(), project, start, end)
	if err != nil {
		return err
	}
	if len(usages) == 0 {
		return ok(w, object{"tenant_usage": object{}})
	}
	return ok(w, object{"tenant_usage": tenantUsage(project, start, end, usages, true)})
}

// usageTimeLayouts are the forms Nova takes for a period's start and
// end, in UTC; a fraction of a second may follow the seconds.
var usageTimeLayouts = []string{"2006-01-02T15:04:05", "2006-01-02 15:04:05"}

// usagePeriod reads the query's start and end, each now if absent.
func usagePeriod(r *http.Request) (start, end time.Time, err error) {
	q := r.URL.Query()
	parse := func(key string) (time.Time, error) {
		v := q.Get(key)
		if v == "" {
			return time.Now().UTC(), nil
		}
		for _, layout := range usageTimeLayouts {
			if t, err := time.ParseInLocation(layout, v, time.UTC); err == nil {
				return t, nil
			}
		}
		return time.Time{}, trustack.Errorf(trustack.EINVALID, "Invalid datetime string: %s is in an invalid format.", v)
	}
	if start, err = parse("start"); err == nil {
		end, err = parse("end")
	}
	return start, end, err
}

// tenantUsage is one project's usage over [start, end): its totals and,
// if detailed, its servers'.
func tenantUsage(project string, start, end time.Time, usages []compute.ServerUsage, detailed bool) object {
	var hours, vcpus, memory, disk float64
	servers := make([]object, 0, len(usages))
	for _, u := range usages {
		s, f := u.Server, u.Server.Flavor
		localGB := f.Disk + f.Ephemeral
		hours += u.Hours
		vcpus += float64(f.VCPUs) * u.Hours
		memory += float64(f.RAM) * u.Hours
		disk += float64(localGB) * u.Hours
		state := s.VMState
		if state == trustack.VMDeleted {
			state = "terminated"
		}
		servers = append(servers, object{
			"instance_id": s.ID, "name": s.Name, "tenant_id": s.ProjectID, "hours": u.Hours,
			"vcpus": f.VCPUs, "memory_mb": f.RAM, "local_gb": localGB, "flavor": f.Name,
			"started_at": s.LaunchedAt.UTC().Format(isoMicros), "ended_at": stampOrNull(s.TerminatedAt),
			"state": state, "uptime": int(u.Uptime.Seconds()),
		})
	}
	o := object{
		"tenant_id": project, "start": start.Format(isoMicros), "stop": end.Format(isoMicros),
		"total_hours": hours, "total_vcpus_usage": vcpus, "total_memory_mb_usage": memory, "total_local_gb_usage": disk,
	}
	if detailed {
		o["server_usages"] = servers
	}
	return o
}
