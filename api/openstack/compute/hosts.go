package compute

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/api/openstack"
	"github.com/trustack/trustack/policy"
)

// Availability zones.

func (h *handler) listZones(detail bool) openstack.Handler {
	rule := "os_compute_api:os-availability-zone:list"
	if detail {
		rule = "os_compute_api:os-availability-zone:detail"
	}
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := h.api.Authorize(r, rule, nil); err != nil {
			return err
		}
		zones, err := h.svc.Zones(r.Context())
		if err != nil {
			return err
		}
		out := make([]object, 0, len(zones))
		for _, z := range zones {
			var hosts any
			if detail {
				m := object{}
				for _, host := range z.Hosts {
					m[host.Name] = object{"nova-compute": object{"available": host.Enabled && h.svc.Alive(host), "active": host.Enabled,
						"updated_at": stampOrNull(host.LastSeen)}}
				}
				hosts = m
			}
			out = append(out, object{"zoneName": z.Name, "zoneState": object{"available": z.Available}, "hosts": hosts})
		}
		return ok(w, object{"availabilityZoneInfo": out})
	}
}

// Hypervisors.

// hypervisorState is a host's state and status as Nova shows them.
func (h *handler) hypervisorState(host *trustack.Host) (state, status string) {
	state, status = "up", "enabled"
	if !h.svc.Alive(host) {
		state = "down"
	}
	if !host.Enabled {
		status = "disabled"
	}
	return state, status
}

func (h *handler) hypervisorSummary(host *trustack.Host) object {
	state, status := h.hypervisorState(host)
	return object{"id": host.Number, "hypervisor_hostname": host.HypervisorHostname, "state": state, "status": status}
}

func (h *handler) hypervisor(host *trustack.Host) object {
	o := h.hypervisorSummary(host)
	cpu, _ := json.Marshal(map[string]any{"arch": "x86_64", "topology": map[string]int{"cores": host.VCPUs, "sockets": 1, "threads": 1}})
	var ip any
	if host.HostIP != "" {
		ip = host.HostIP
	}
	var reason any
	if host.DisabledReason != "" {
		reason = host.DisabledReason
	}
	maps.Copy(o, object{
		"cpu_info": string(cpu), "current_workload": 0, "disk_available_least": host.DiskGB - host.UsedDiskGB, "host_ip": ip,
		"free_disk_gb": host.DiskGB - host.UsedDiskGB, "free_ram_mb": host.MemoryMB - host.UsedMemoryMB,
		"hypervisor_type": host.HypervisorType, "hypervisor_version": host.HypervisorVersion,
		"local_gb": host.DiskGB, "local_gb_used": host.UsedDiskGB, "memory_mb": host.MemoryMB, "memory_mb_used": host.UsedMemoryMB,
		"running_vms": host.RunningVMs, "vcpus": host.VCPUs, "vcpus_used": host.UsedVCPUs,
		"service": object{"host": host.Name, "id": host.Number, "disabled_reason": reason},
	})
	return o
}

func (h *handler) listHypervisors(detail bool) openstack.Handler {
	rule := "os_compute_api:os-hypervisors:list"
	if detail {
		rule = "os_compute_api:os-hypervisors:list-detail"
	}
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := h.api.Authorize(r, rule, nil); err != nil {
			return err
		}
		hosts, err := h.svc.Hosts(r.Context())
		if err != nil {
			return err
		}
		out := make([]object, len(hosts))
		for i, host := range hosts {
			if detail {
				out[i] = h.hypervisor(host)
			} else {
				out[i] = h.hypervisorSummary(host)
			}
		}
		return collection(w, "hypervisors", out)
	}
}

// hostByNumber finds a host by its integer ID, or gives ENOTFOUND.
func (h *handler) hostByNumber(r *http.Request, id string) (*trustack.Host, error) {
	n, err := strconv.Atoi(id)
	if err == nil {
		hosts, err := h.svc.Hosts(r.Context())
		if err != nil {
			return nil, err
		}
		for _, host := range hosts {
			if host.Number == n {
				return host, nil
			}
		}
	}
	return nil, trustack.Errorf(trustack.ENOTFOUND, "Hypervisor with ID %s could not be found.", id)
}

func (h *handler) showHypervisor(w http.ResponseWriter, r *http.Request) error {
	if err := h.api.Authorize(r, "os_compute_api:os-hypervisors:show", nil); err != nil {
		return err
	}
	host, err := h.hostByNumber(r, r.PathValue("id"))
	if err != nil {
		return err
	}
	return ok(w, object{"hypervisor": h.hypervisor(host)})
}

func (h *handler) hypervisorUptime(w http.ResponseWriter, r *http.Request) error {
	if err := h.api.Authorize(r, "os_compute_api:os-hypervisors:uptime", nil); err != nil {
		return err
	}
	host, err := h.hostByNumber(r, r.PathValue("id"))
	if err != nil {
		return err
	}
	o := h.hypervisorSummary(host)
	since := time.Since(host.CreatedAt).Round(time.Second)
	o["uptime"] = fmt.Sprintf(" %s up %s,  load average: 0.00, 0.00, 0.00", time.Now().UTC().Format("15:04:05"), since)
	return ok(w, object{"hypervisor": o})
}

func (h *handler) hypervisorStatistics(w http.ResponseWriter, r *http.Request) error {
	if err := h.api.Authorize(r, "os_compute_api:os-hypervisors:statistics", nil); err != nil {
		return err
	}
	hosts, err := h.svc.Hosts(r.Context())
	if err != nil {
		return err
	}
	sum := map[string]int{"count": 0, "vcpus": 0, "vcpus_used": 0, "memory_mb": 0, "memory_mb_used": 0, "free_ram_mb": 0,
		"local_gb": 0, "local_gb_used": 0, "free_disk_gb": 0, "disk_available_least": 0, "running_vms": 0, "current_workload": 0}
	for _, host := range hosts {
		for k, v := range map[string]int{
			"count": 1, "vcpus": host.VCPUs, "vcpus_used": host.UsedVCPUs, "memory_mb": host.MemoryMB, "memory_mb_used": host.UsedMemoryMB,
			"free_ram_mb": host.MemoryMB - host.UsedMemoryMB, "local_gb": host.DiskGB, "local_gb_used": host.UsedDiskGB,
			"free_disk_gb": host.DiskGB - host.UsedDiskGB, "disk_available_least": host.DiskGB - host.UsedDiskGB,
			"running_vms": host.RunningVMs, "current_workload": 0,
		} {
			sum[k] += v
		}
	}
	return ok(w, object{"hypervisor_statistics": sum})
}

// matching returns the hosts whose hypervisor hostname contains pattern, or
// ENOTFOUND when none does.
func (h *handler) matching(r *http.Request, pattern string) ([]*trustack.Host, error) {
	hosts, err := h.svc.Hosts(r.Context())
	if err != nil {
		return nil, err
	}
	var out []*trustack.Host
	for _, host := range hosts {
		if strings.Contains(host.HypervisorHostname, pattern) {
			out = append(out, host)
		}
	}
	if len(out) == 0 {
		return nil, trustack.Errorf(trustack.ENOTFOUND, "No hypervisor matching '%s' could be found.", pattern)
	}
	return out, nil
}

func (h *handler) searchHypervisors(w http.ResponseWriter, r *http.Request) error {
	if err := h.api.Authorize(r, "os_compute_api:os-hypervisors:search", nil); err != nil {
		return err
	}
	hosts, err := h.matching(r, r.PathValue("name"))
	if err != nil {
		return err
	}
	out := make([]object, len(hosts))
	for i, host := range hosts {
		out[i] = h.hypervisorSummary(host)
	}
	return collection(w, "hypervisors", out)
}

func (h *handler) hypervisorServers(w http.ResponseWriter, r *http.Request) error {
	if err := h.api.Authorize(r, "os_compute_api:os-hypervisors:servers", nil); err != nil {
		return err
	}
	hosts, err := h.matching(r, r.PathValue("name"))
	if err != nil {
		return err
	}
	out := make([]object, len(hosts))
	for i, host := range hosts {
		o := h.hypervisorSummary(host)
		servers, err := h.svc.Servers(r.Context(), trustack.ServerFilter{Host: host.Name})
		if err != nil {
			return err
		}
		if len(servers) > 0 {
			list := make([]object, len(servers))
			for j, s := range servers {
				list[j] = object{"uuid": s.ID, "name": s.Name}
			}
			o["servers"] = list
		}
		out[i] = o
	}
	return collection(w, "hypervisors", out)
}

// withHostStatus adds to parts, from 2.16, the state of each server's
// host for a caller the policy lets see it (by default an
// administrator), as Nova's host_status: "" for a server on no host,
// DOWN for a host forced down, MAINTENANCE for one disabled, UP for one
// alive, UNKNOWN for one not heard from lately or not known.
func (h *handler) withHostStatus(r *http.Request, servers []*trustack.Server, parts map[string]serverParts) error {
	if !atLeast(r, 16) || len(servers) == 0 {
		return nil
	}
	hosts, err := h.svc.Hosts(r.Context())
	if err != nil {
		return err
	}
	byName := map[string]*trustack.Host{}
	for _, host := range hosts {
		byName[host.Name] = host
	}
	for _, s := range servers {
		if !h.api.Allowed(r, "os_compute_api:servers:show:host_status", policy.Target{"project_id": s.ProjectID, "user_id": s.UserID}) {
			continue
		}
		host := byName[s.Host]
		status := "UNKNOWN"
		switch {
		case s.Host == "":
			status = ""
		case host == nil:
		case host.ForcedDown:
			status = "DOWN"
		case !host.Enabled:
			status = "MAINTENANCE"
		case h.svc.Alive(host):
			status = "UP"
		}
		p := parts[s.ID]
		p.hostStatus = &status
		parts[s.ID] = p
	}
	return nil
}

// Services.

// service renders a host's compute service as os-services shows it, with
// forced_down from 2.11.
func (h *handler) service(r *http.Request, host *trustack.Host) object {
	state, status := h.hypervisorState(host)
	var reason any
	if host.DisabledReason != "" {
		reason = host.DisabledReason
	}
	o := object{"id": host.Number, "binary": "nova-compute", "host": host.Name, "zone": host.AvailabilityZone,
		"status": status, "state": state, "updated_at": stampOrNull(host.LastSeen), "disabled_reason": reason}
	if atLeast(r, 11) {
		o["forced_down"] = host.ForcedDown
	}
	return o
}

func (h *handler) listServices(w http.ResponseWriter, r *http.Request) error {
	if err := h.api.Authorize(r, "os_compute_api:os-services:list", nil); err != nil {
		return err
	}
	hosts, err := h.svc.Hosts(r.Context())
	if err != nil {
		return err
	}
	q := r.URL.Query()
	var out []object
	for _, host := range hosts {
		if q.Has("binary") && q.Get("binary") != "nova-compute" || q.Has("host") && q.Get("host") != host.Name {
			continue
		}
		out = append(out, h.service(r, host))
	}
	return collection(w, "services", out)
}

// updateService serves PUT /os-services/enable, /disable and
// /disable-log-reason, and from 2.11 /force-down, as Nova did up to 2.52.
func (h *handler) updateService(w http.ResponseWriter, r *http.Request) error {
	if err := h.api.Authorize(r, "os_compute_api:os-services:update", nil); err != nil {
		return err
	}
	action := r.PathValue("action")
	var body struct {
		Host           string  `json:"host"`
		Binary         string  `json:"binary"`
		DisabledReason *string `json:"disabled_reason"`
		ForcedDown     *bool   `json:"forced_down"`
	}
	if err := h.dec.Decode(r, &body); err != nil {
		return err
	}
	if body.Binary != "nova-compute" {
		return trustack.Errorf(trustack.ENOTFOUND, "Service %s on host %s could not be found: only nova-compute services can change.", body.Binary, body.Host)
	}
	var enable bool
	reason := ""
	switch action {
	case "enable":
		enable = true
	case "disable":
	case "disable-log-reason":
		if body.DisabledReason == nil || *body.DisabledReason == "" || len(*body.DisabledReason) > 255 {
			return invalid("disabled_reason", "A reason of 1 to 255 characters is required.")
		}
		reason = *body.DisabledReason
	case "force-down":
		if !atLeast(r, 11) {
			return trustack.Errorf(trustack.ENOTFOUND, "Unknown action %s.", action)
		}
		if body.ForcedDown == nil {
			return invalid("forced_down", "'forced_down' is a required property.")
		}
	default:
		return trustack.Errorf(trustack.ENOTFOUND, "Unknown action %s.", action)
	}
	hosts, err := h.svc.Hosts(r.Context())
	if err != nil {
		return err
	}
	for _, host := range hosts {
		if host.Name != body.Host {
			continue
		}
		if action == "force-down" {
			host, err := h.svc.SetHostForcedDown(r.Context(), host.ID, *body.ForcedDown)
			if err != nil {
				return err
			}
			return ok(w, object{"service": object{"host": host.Name, "binary": "nova-compute", "forced_down": host.ForcedDown}})
		}
		host, err := h.svc.SetHostEnabled(r.Context(), host.ID, enable, reason)
		if err != nil {
			return err
		}
		_, status := h.hypervisorState(host)
		o := object{"host": host.Name, "binary": "nova-compute", "status": status}
		if action == "disable-log-reason" {
			o["disabled_reason"] = reason
		}
		return ok(w, object{"service": o})
	}
	return trustack.Errorf(trustack.ENOTFOUND, "Compute host %s could not be found.", body.Host)
}

func (h *handler) deleteService(w http.ResponseWriter, r *http.Request) error {
	if err := h.api.Authorize(r, "os_compute_api:os-services:delete", nil); err != nil {
		return err
	}
	host, err := h.hostByNumber(r, r.PathValue("id"))
	if err != nil {
		return trustack.Errorf(trustack.ENOTFOUND, "Service %s could not be found.", r.PathValue("id"))
	}
	if err := h.svc.DeleteHost(r.Context(), host.ID); err != nil {
		return err
	}
	return noContent(w)
}
