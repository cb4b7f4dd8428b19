package volume

import (
	"cmp"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/api/openstack"
)

// serviceRoutes serves the availability zones, the volume services and
// the resource filters.
func (h *handler) serviceRoutes() {
	h.api.Private("GET "+v3+"/os-availability-zone", h.zones)
	h.api.Private("GET "+v3+"/os-services", h.services)
	h.api.Private("PUT "+v3+"/os-services/set-log", h.logLevel(false))
	h.api.Private("PUT "+v3+"/os-services/get-log", h.logLevel(true))
	h.resourceFilterRoutes()
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
		if atLeast(r, 7) {
			out[len(out)-1]["cluster"] = nil // trustack runs no backend in a cluster
		}
	}
	return reply(w, http.StatusOK, object{"services": out})
}

// logLevel serves Cinder's set-log, or get-log, (3.32) to
// administrators: the level of the log of trustack's controller, which
// runs Cinder's API and scheduler (and, in `trustack up`, the storage
// hosts' agents too). Other actions are not routed here: enabling and
// disabling services, freezing and thawing them are not offered, as
// trustack's volume services are its storage hosts, enabled and disabled
// through the compute API's os-services.
func (h *handler) logLevel(get bool) openstack.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		c, err := h.caller(r)
		if err != nil {
			return err
		}
		if !atLeast(r, 32) {
			return noSuchAPI(r)
		}
		if err := h.authorize(r, "volume_extension:services:update", c.ProjectID); err != nil {
			return err
		}
		if h.cfg.LogLevel == nil {
			return &openstack.HTTPError{Status: http.StatusNotImplemented, Message: "This trustack's log level is fixed by its configuration (log.level)."}
		}
		var body struct {
			Binary string `json:"binary"`
			Server string `json:"server"`
			Prefix string `json:"prefix"`
			Level  string `json:"level"`
		}
		raw, err := h.dec.Body(r)
		if err != nil {
			return err
		}
		if err := openstack.Unmarshal(raw, &body); err != nil {
			return err
		}
		binaries := []string{"cinder-api", "cinder-scheduler"}
		switch {
		case body.Binary == "" || body.Binary == "*":
		case slices.Contains(append(binaries, "cinder-volume", "cinder-backup"), body.Binary):
			binaries = slices.DeleteFunc(binaries, func(b string) bool { return b != body.Binary })
		default:
			return trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Invalid input received: %s is not a valid binary.", body.Binary)
		}
		if body.Server != "" && body.Server != h.cfg.Hostname {
			binaries = nil
		}
		if get {
			out := []object{}
			for _, b := range binaries {
				out = append(out, object{"binary": b, "host": h.cfg.Hostname, "levels": object{cmp.Or(body.Prefix, "trustack"): levelName(h.cfg.LogLevel.Level())}})
			}
			return reply(w, http.StatusOK, object{"log_levels": out})
		}
		level, ok := logLevels[strings.ToUpper(body.Level)]
		if !ok {
			return trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Invalid input received: level must be DEBUG, INFO, WARNING or ERROR, not %q.", body.Level)
		}
		if len(binaries) > 0 {
			h.cfg.LogLevel.Set(level)
		}
		return accepted(w)
	}
}

// logLevels are the levels set-log takes, as Python's logging names
// them.
var logLevels = map[string]slog.Level{"DEBUG": slog.LevelDebug, "INFO": slog.LevelInfo, "WARNING": slog.LevelWarn, "ERROR": slog.LevelError}

// levelName is a level as Python's logging names it.
func levelName(l slog.Level) string {
	for name, level := range logLevels {
		if level == l {
			return name
		}
	}
	return l.String()
}
