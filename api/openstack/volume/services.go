package volume

import (
	"cmp"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/trustack/trustack"
)

// serviceRoutes serves the availability zones and the volume services.
func (h *handler) serviceRoutes() {
	h.api.Private("GET "+v3+"/os-availability-zone", h.zones)
	h.api.Private("GET "+v3+"/os-services", h.services)
}

// zones lists the zones of the storage hosts, to anyone, as Cinder's has
// no rule of its own.
func (h *handler) zones(w http.ResponseWriter, r *http.Request) error {
	if _, err := h.caller(r); err != nil {
		return err
	}
	zones, err := h.svc.Zones(r.Context())
	if err != nil {
		return err
	}
	out := []object{}
	for _, name := range slices.Sorted(maps.Keys(zones)) {
		out = append(out, object{"zoneName": name, "zoneState": object{"available": zones[name]}})
	}
	return reply(w, http.StatusOK, object{"availabilityZoneInfo": out})
}

// volumeBinary is the name Cinder gives the service that runs a backend.
const volumeBinary = "cinder-volume"

// services lists each storage host's backends as Cinder's volume
// services (host@backend), filtered by host (the host alone, or with its
// backend) and binary.
func (h *handler) services(w http.ResponseWriter, r *http.Request) error {
	c, err := h.caller(r)
	if err != nil {
		return err
	}
	if err := h.authorize(r, "volume_extension:services:index", c.ProjectID); err != nil {
		return err
	}
	q := r.URL.Query()
	for k := range q {
		if k != "host" && k != "binary" {
			return trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Invalid input received: unknown filter %s (there are host and binary).", k)
		}
	}
	backends, err := h.svc.Backends(r.Context())
	if err != nil {
		return err
	}
	out := []object{}
	for _, b := range backends {
		host := b.Host.Name + "@" + b.Name
		if f := q.Get("host"); f != "" && f != host && f != b.Host.Name {
			continue
		}
		if f := q.Get("binary"); f != "" && f != volumeBinary {
			continue
		}
		status, state := "enabled", "up"
		if !b.Host.Enabled {
			status = "disabled"
		}
		if !b.Up {
			state = "down"
		}
		out = append(out, object{"binary": volumeBinary, "host": host, "zone": b.Host.AvailabilityZone, "status": status, "state": state,
			"updated_at": stamp(cmp.Or(b.Host.LastSeen, b.Host.UpdatedAt)), "disabled_reason": nullIfEmpty(strings.TrimSpace(b.Host.DisabledReason)),
			"frozen": false, "replication_status": "disabled", "active_backend_id": nil})
	}
	return reply(w, http.StatusOK, object{"services": out})
}
