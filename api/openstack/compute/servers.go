package compute

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/api/openstack"
	"github.com/trustack/trustack/compute"
	"github.com/trustack/trustack/network"
	"github.com/trustack/trustack/policy"
)

// createBody is the body of POST /servers at 2.1.
type createBody struct {
	Server *struct {
		Name                 string                     `json:"name"`
		Description          openstack.Optional[string] `json:"description"`
		ImageRef             *string                    `json:"imageRef"`
		FlavorRef            json.RawMessage            `json:"flavorRef"`
		KeyName              *string                    `json:"key_name"`
		Metadata             map[string]string          `json:"metadata"`
		AvailabilityZone     *string                    `json:"availability_zone"`
		UserData             *string                    `json:"user_data"`
		MinCount             json.RawMessage            `json:"min_count"`
		MaxCount             json.RawMessage            `json:"max_count"`
		AccessIPv4           *string                    `json:"accessIPv4"`
		AccessIPv6           *string                    `json:"accessIPv6"`
		AdminPass            *string                    `json:"adminPass"`
		DiskConfig           *string                    `json:"OS-DCF:diskConfig"`
		SecurityGroups       []securityGroupRef         `json:"security_groups"`
		Networks             json.RawMessage            `json:"networks"`
		ConfigDrive          json.RawMessage            `json:"config_drive"`
		ReturnReservationID  bool                       `json:"return_reservation_id"`
		Personality          []json.RawMessage          `json:"personality"`
		BlockDeviceMapping   json.RawMessage            `json:"block_device_mapping"`
		BlockDeviceMappingV2 json.RawMessage            `json:"block_device_mapping_v2"`
	} `json:"server"`
	Hints    map[string]any `json:"os:scheduler_hints"`
	OldHints map[string]any `json:"OS-SCH-HNT:scheduler_hints"`
}

// securityGroupRef names a security group, as POST /servers does.
type securityGroupRef struct {
	Name string `json:"name"`
}

// invalid is a 400 naming the field at fault, as Nova words it.
func invalid(field, format string, args ...any) error {
	return trustack.Errorf(trustack.EINVALID, "Invalid input for field/attribute %s. %s", field, fmt.Sprintf(format, args...))
}

// unexpected is Nova's answer to a field its schema at the request's
// microversion does not have, in the body's object.
func unexpected(object, field string) error {
	return trustack.Errorf(trustack.EINVALID, "Invalid input for field/attribute %s. Additional properties are not allowed ('%s' was unexpected)", object, field)
}

// countParam reads min_count or max_count: an integer at least 1, or a
// string of digits; absent is 0.
func countParam(field string, raw json.RawMessage) (int, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	var n json.Number
	var s string
	switch {
	case json.Unmarshal(raw, &s) == nil:
		n = json.Number(s)
	case json.Unmarshal(raw, &n) != nil:
		return 0, invalid(field, "Value must be an integer.")
	}
	v, err := strconv.Atoi(string(n))
	if err != nil || v < 1 {
		return 0, invalid(field, "Value %s must be an integer of at least 1.", n)
	}
	return v, nil
}

// idParam reads a reference that may be a JSON string or number.
func idParam(field string, raw json.RawMessage) (string, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil && s != "" {
		return s, nil
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil && n != "" {
		return n.String(), nil
	}
	return "", invalid(field, "It must be a string or an integer.")
}

// refID takes the ID from a reference that may be a URL, as Nova allows.
func refID(ref string) string {
	if i := strings.LastIndex(ref, "/"); i >= 0 {
		return ref[i+1:]
	}
	return ref
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$`)

// accessIP checks an access address, IPv6 if six, and returns its
// canonical form (RFC 5952 for IPv6).
func accessIP(field, v string, six bool) (string, error) {
	if v == "" {
		return "", nil
	}
	ip := net.ParseIP(v)
	written6 := strings.Contains(v, ":")
	switch {
	case six && (ip == nil || !written6):
		return "", invalid(field, "%q is not a valid IPv6 address.", v)
	case !six && (ip == nil || written6):
		return "", invalid(field, "%q is not a valid IPv4 address.", v)
	}
	return ip.String(), nil
}

// hints flattens scheduler hints into lists of strings.
func hints(raw map[string]any) (map[string][]string, error) {
	out := map[string][]string{}
	for k, v := range raw {
		switch v := v.(type) {
		case string:
			out[k] = []string{v}
		case []any:
			for _, item := range v {
				s, ok := item.(string)
				if !ok {
					return nil, invalid("os:scheduler_hints", "Hint %s must be a string or a list of strings.", k)
				}
				out[k] = append(out[k], s)
			}
		default:
			return nil, invalid("os:scheduler_hints", "Hint %s must be a string or a list of strings.", k)
		}
	}
	return out, nil
}

func newAdminPass() string { return rand.Text()[:12] }

func (h *handler) createServer(w http.ResponseWriter, r *http.Request) error {
	c, err := h.caller(r)
	if err != nil {
		return err
	}
	if err := h.authorize(r, "os_compute_api:servers:create", ""); err != nil {
		return err
	}
	var body createBody
	if err := h.dec.Decode(r, &body); err != nil {
		return err
	}
	b := body.Server
	if b == nil {
		return invalid("server", "'server' is a required property.")
	}
	req := compute.CreateRequest{Name: b.Name, Metadata: b.Metadata, Description: b.Description.Value}
	switch {
	case b.Description.Set && !atLeast(r, 19):
		return unexpected("server", "description")
	case !atLeast(r, 19):
		// As Nova: before 2.19 a server's description was its name.
		req.Description = &b.Name
	}
	if b.ImageRef == nil && !nonEmpty(b.BlockDeviceMappingV2) && !nonEmpty(b.BlockDeviceMapping) {
		return invalid("imageRef", "'imageRef' is a required property.")
	}
	if b.ImageRef != nil {
		req.ImageID = refID(*b.ImageRef)
	}
	if len(b.FlavorRef) == 0 {
		return invalid("flavorRef", "'flavorRef' is a required property.")
	}
	flavor, err := idParam("flavorRef", b.FlavorRef)
	if err != nil {
		return err
	}
	req.FlavorID = refID(flavor)
	if req.MinCount, err = countParam("min_count", b.MinCount); err != nil {
		return err
	}
	if req.MaxCount, err = countParam("max_count", b.MaxCount); err != nil {
		return err
	}
	if req.MinCount > 0 && req.MaxCount > 0 && req.MinCount > req.MaxCount {
		return invalid("min_count", "min_count must be <= max_count.")
	}
	if req.MaxCount == 0 {
		req.MaxCount = max(req.MinCount, 1)
	}
	for _, f := range []struct {
		v   *string
		dst *string
	}{{b.KeyName, &req.KeyName}, {b.AvailabilityZone, &req.AvailabilityZone}, {b.UserData, &req.UserData}} {
		if f.v != nil {
			*f.dst = *f.v
		}
	}
	if b.AccessIPv4 != nil {
		if req.AccessIPv4, err = accessIP("accessIPv4", *b.AccessIPv4, false); err != nil {
			return err
		}
	}
	if b.AccessIPv6 != nil {
		if req.AccessIPv6, err = accessIP("accessIPv6", *b.AccessIPv6, true); err != nil {
			return err
		}
	}
	if b.DiskConfig != nil {
		if *b.DiskConfig != "AUTO" && *b.DiskConfig != "MANUAL" {
			return invalid("OS-DCF:diskConfig", "%q is not one of AUTO, MANUAL.", *b.DiskConfig)
		}
		req.DiskConfig = *b.DiskConfig
	}
	for _, sg := range b.SecurityGroups {
		if sg.Name != "" && !slices.Contains(req.SecurityGroups, sg.Name) {
			req.SecurityGroups = append(req.SecurityGroups, sg.Name)
		}
	}
	if len(b.Personality) > 0 {
		return trustack.Errorf(trustack.EINVALID, "Personality files are not supported: pass files to the server with user_data.")
	}
	if req.BlockDevices, err = blockDevices(b.BlockDeviceMappingV2, b.BlockDeviceMapping, &req.ImageID); err != nil {
		return err
	}
	if req.NICs, req.NICMode, err = nics(b.Networks); err != nil {
		return err
	}
	if len(req.NICs) > 0 || req.NICMode == network.AutoNICs {
		if err := h.authorize(r, "os_compute_api:servers:create:attach_network", ""); err != nil {
			return err
		}
	}
	if req.ConfigDrive, err = boolParam("config_drive", b.ConfigDrive); err != nil {
		return err
	}
	raw := body.Hints
	if raw == nil {
		raw = body.OldHints
	}
	if req.Hints, err = hints(raw); err != nil {
		return err
	}
	pass := newAdminPass()
	if b.AdminPass != nil {
		pass = *b.AdminPass
	}
	list, err := h.svc.CreateServers(r.Context(), c, req)
	if trustack.ErrorCode(err) == trustack.ENOTFOUND || trustack.ErrorReason(err) == "IpAddressInUse" {
		// As Nova: a network, port or group the body names that does not
		// exist, or an address taken, makes a bad request.
		return &trustack.Error{Code: trustack.EINVALID, Message: trustack.ErrorMessage(err)}
	}
	if err != nil {
		return err
	}
	if b.ReturnReservationID {
		openstack.JSON(w, http.StatusAccepted, object{"reservation_id": list[0].ReservationID})
		return nil
	}
	// As Nova, the groups asked for, as asked.
	groups := []object{{"name": trustack.DefaultSecurityGroup}}
	if b.SecurityGroups != nil {
		groups = make([]object, len(b.SecurityGroups))
		for i, sg := range b.SecurityGroups {
			groups[i] = object{"name": sg.Name}
		}
	}
	first := list[0]
	w.Header().Set("Location", h.base+"/v2.1/servers/"+first.ID)
	openstack.JSON(w, http.StatusAccepted, object{"server": object{
		"id": first.ID, "links": h.links("servers", first.ID), "OS-DCF:diskConfig": diskConfig(first.DiskConfig),
		"security_groups": groups, "adminPass": pass,
	}})
	return nil
}

func nonEmpty(raw json.RawMessage) bool {
	s := strings.TrimSpace(string(raw))
	return s != "" && s != "null" && s != "[]"
}

// nics reads the networks of POST /servers as Nova 2.1 does: a list of
// NICs, each a network (uuid), optionally with an address on it
// (fixed_ip), or a port the caller made (port, which takes precedence
// over uuid); absent, null or empty, the project's only network. trustack
// also takes Nova's "auto" and "none" of microversion 2.37 at 2.1, for
// clients that cannot send a list.
func nics(raw json.RawMessage) ([]network.NIC, string, error) {
	if !nonEmpty(raw) {
		return nil, "", nil
	}
	var mode string
	if json.Unmarshal(raw, &mode) == nil {
		if mode != network.AutoNICs && mode != network.NoNICs {
			return nil, "", invalid("networks", "Value: %s. It must be a list of networks, or 'auto' or 'none'.", mode)
		}
		return nil, mode, nil
	}
	var items []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, "", invalid("networks", "Value: %s. It must be a list of networks.", raw)
	}
	var out []network.NIC
	for _, item := range items {
		var nic network.NIC
		var uuid, port, fixed *string
		for k, v := range item {
			var dst **string
			switch k {
			case "uuid":
				dst = &uuid
			case "port":
				dst = &port
			case "fixed_ip":
				dst = &fixed
			default:
				return nil, "", invalid("networks", "Additional properties are not allowed ('%s' was unexpected)", k)
			}
			if json.Unmarshal(v, dst) != nil {
				return nil, "", invalid(k, "Value: %s. It must be a string.", v)
			}
		}
		if fixed != nil {
			addr, err := netip.ParseAddr(*fixed)
			if err != nil {
				return nil, "", invalid("fixed_ip", "Value: %s. %q is not a 'ip-address'", *fixed, *fixed)
			}
			nic.FixedIP = addr
		}
		switch {
		case port != nil && !uuidRE.MatchString(*port):
			return nil, "", invalid("port", "Value: %s. %q is not a 'uuid'", *port, *port)
		case port != nil && slices.ContainsFunc(out, func(n network.NIC) bool { return n.PortID == *port }):
			return nil, "", trustack.Errorf(trustack.EINVALID, "Port ID '%s' was specified twice: you cannot attach a port multiple times.", *port)
		case port != nil && fixed != nil:
			return nil, "", trustack.Errorf(trustack.EINVALID, "Specified Fixed IP '%s' cannot be used with port '%s': the two cannot be specified together.", *fixed, *port)
		case port != nil:
			nic.PortID = *port
		case uuid == nil:
			return nil, "", trustack.Errorf(trustack.EINVALID, "Bad network format: missing 'uuid'")
		case !uuidRE.MatchString(*uuid):
			return nil, "", trustack.Errorf(trustack.EINVALID, "Bad networks format: network uuid is not in proper format (%s)", *uuid)
		default:
			nic.NetworkID = *uuid
		}
		out = append(out, nic)
	}
	return out, "", nil
}

// listServers serves GET /servers and /servers/detail with Nova's filters.
func (h *handler) listServers(detail bool) openstack.Handler {
	rule := "os_compute_api:servers:index"
	if detail {
		rule = "os_compute_api:servers:detail"
	}
	return func(w http.ResponseWriter, r *http.Request) error {
		c, err := h.caller(r)
		if err != nil {
			return err
		}
		if err := h.authorize(r, rule, ""); err != nil {
			return err
		}
		q := r.URL.Query()
		f := trustack.ServerFilter{ProjectID: c.ProjectID, Name: q.Get("name"), ImageID: q.Get("image"), FlavorID: q.Get("flavor"),
			ReservationID: q.Get("reservation_id"), Marker: q.Get("marker")}
		if q.Has("all_tenants") {
			if err := h.authorize(r, rule+":get_all_tenants", ""); err != nil {
				return err
			}
			f.ProjectID = q.Get("tenant_id")
			if f.ProjectID == "" {
				f.ProjectID = q.Get("project_id")
			}
		}
		if q.Has("host") && c.Admin {
			f.Host = q.Get("host")
		}
		if status := q.Get("status"); status != "" {
			f.Status = compute.StatusStates(strings.ToUpper(status))
			f.IncludeDeleted = strings.EqualFold(status, "DELETED") && c.Admin
		}
		if v := q.Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return trustack.Errorf(trustack.EINVALID, "limit param must be a positive integer")
			}
			if n == 0 {
				return collection(w, "servers", nil)
			}
			f.Limit = n
		}
		if v := q.Get("changes-since"); v != "" {
			t, err := parseTime(v)
			if err != nil {
				return trustack.Errorf(trustack.EINVALID, "Invalid input for query parameters changes-since. Value: %s. It is not in iso8601 format.", v)
			}
			f.ChangesSince, f.IncludeDeleted = t, true
		}
		if !c.Admin && !atLeast(r, 5) {
			q.Del("ip6") // an administrator's filter until 2.5, ignored for others as Nova ignores them
		}
		ips, err := parseIPFilter(q)
		if err != nil {
			return err
		}
		limit := f.Limit
		if ips != nil {
			f.Limit = 0 // applied once the servers are filtered by address
		}
		list, err := h.svc.Servers(r.Context(), f)
		if err != nil {
			return err
		}
		var nets map[string]serverParts
		if detail || ips != nil {
			if nets, err = h.partsOf(r.Context(), list...); err != nil {
				return err
			}
		}
		if detail {
			if err := h.withHostStatus(r, list, nets); err != nil {
				return err
			}
		}
		if ips != nil {
			list = slices.DeleteFunc(list, func(s *trustack.Server) bool { return !ips.matches(nets[s.ID].addresses) })
			if limit > 0 {
				list = list[:min(limit, len(list))]
			}
		}
		out := make([]object, 0, len(list))
		for _, s := range list {
			if detail {
				out = append(out, h.server(r, s, nets[s.ID], true, c.Admin))
			} else {
				out = append(out, object{"id": s.ID, "name": s.Name, "links": h.links("servers", s.ID)})
			}
		}
		return collection(w, "servers", out)
	}
}

// ipFilter is GET /servers's ip and ip6: regular expressions, by IP
// version, that one of a server's fixed addresses must match from its
// start, as Nova matches them; nil when neither is given.
type ipFilter map[int]*regexp.Regexp

func parseIPFilter(q url.Values) (ipFilter, error) {
	var f ipFilter
	for _, p := range []struct {
		name    string
		version int
	}{{"ip", 4}, {"ip6", 6}} {
		if !q.Has(p.name) {
			continue
		}
		re, err := regexp.Compile("^(?:" + q.Get(p.name) + ")")
		if err != nil {
			return nil, invalid(p.name, "Value: %s. It is not a regular expression.", q.Get(p.name))
		}
		if f == nil {
			f = ipFilter{}
		}
		f[p.version] = re
	}
	return f, nil
}

// matches reports whether one of the fixed addresses matches.
func (f ipFilter) matches(addrs []network.Address) bool {
	return slices.ContainsFunc(addrs, func(a network.Address) bool {
		re := f[a.Version]
		return !a.Floating && re != nil && re.MatchString(a.Address.String())
	})
}

// parseTime reads an ISO 8601 time as Nova's changes-since takes it.
func parseTime(v string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04:05.999999", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("not ISO 8601: %s", v)
}

// serverFor returns the request's server if the caller may see it, and
// checks rule against its project.
func (h *handler) serverFor(r *http.Request, rule string) (compute.Caller, *trustack.Server, error) {
	c, err := h.caller(r)
	if err != nil {
		return c, nil, err
	}
	s, err := h.svc.Server(r.Context(), c, r.PathValue("id"))
	if err == nil && s.VMState == trustack.VMDeleted {
		err = trustack.Errorf(trustack.ENOTFOUND, "Instance %s could not be found.", r.PathValue("id"))
	}
	if err != nil {
		return c, nil, err
	}
	return c, s, h.api.Authorize(r, rule, policy.Target{"project_id": s.ProjectID, "user_id": s.UserID})
}

func (h *handler) showServer(w http.ResponseWriter, r *http.Request) error {
	c, s, err := h.serverFor(r, "os_compute_api:servers:show")
	if err != nil {
		return err
	}
	nets, err := h.partsOf(r.Context(), s)
	if err != nil {
		return err
	}
	if err := h.withHostStatus(r, []*trustack.Server{s}, nets); err != nil {
		return err
	}
	return ok(w, object{"server": h.server(r, s, nets[s.ID], true, c.Admin)})
}

func (h *handler) updateServer(w http.ResponseWriter, r *http.Request) error {
	c, s, err := h.serverFor(r, "os_compute_api:servers:update")
	if err != nil {
		return err
	}
	var body struct {
		Server *struct {
			Name       *string `json:"name"`
			AccessIPv4 *string `json:"accessIPv4"`
			AccessIPv6 *string `json:"accessIPv6"`
			DiskConfig *string `json:"OS-DCF:diskConfig"`
			// Description is a field from 2.19.
			Description openstack.Optional[string] `json:"description"`
		} `json:"server"`
	}
	if err := h.dec.Decode(r, &body); err != nil {
		return err
	}
	if body.Server == nil {
		return invalid("server", "'server' is a required property.")
	}
	u := compute.ServerUpdate{Name: body.Server.Name, DiskConfig: body.Server.DiskConfig}
	if d := body.Server.Description; d.Set {
		if !atLeast(r, 19) {
			return unexpected("server", "description")
		}
		u.Description = &d.Value
	}
	if d := u.DiskConfig; d != nil && *d != "AUTO" && *d != "MANUAL" {
		return invalid("OS-DCF:diskConfig", "%q is not one of AUTO, MANUAL.", *d)
	}
	for _, f := range []struct {
		v   *string
		dst **string
		six bool
		n   string
	}{{body.Server.AccessIPv4, &u.AccessIPv4, false, "accessIPv4"}, {body.Server.AccessIPv6, &u.AccessIPv6, true, "accessIPv6"}} {
		if f.v != nil {
			ip, err := accessIP(f.n, *f.v, f.six)
			if err != nil {
				return err
			}
			*f.dst = &ip
		}
	}
	if s, err = h.svc.Update(r.Context(), c, s.ID, u); err != nil {
		return err
	}
	nets, err := h.partsOf(r.Context(), s)
	if err != nil {
		return err
	}
	return ok(w, object{"server": h.server(r, s, nets[s.ID], false, false)})
}

func (h *handler) deleteServer(w http.ResponseWriter, r *http.Request) error {
	c, s, err := h.serverFor(r, "os_compute_api:servers:delete")
	if err != nil {
		return err
	}
	if err := h.svc.Delete(r.Context(), c, s.ID); err != nil {
		return err
	}
	return noContent(w)
}

// serverActions are the actions of POST /servers/{id}/action, with the
// policy rule of each.
var serverActions = map[string]string{
	"pause":               "os_compute_api:os-pause-server:pause",
	"unpause":             "os_compute_api:os-pause-server:unpause",
	"suspend":             "os_compute_api:os-suspend-server:suspend",
	"resume":              "os_compute_api:os-suspend-server:resume",
	"os-start":            "os_compute_api:servers:start",
	"os-stop":             "os_compute_api:servers:stop",
	"reboot":              "os_compute_api:servers:reboot",
	"lock":                "os_compute_api:os-lock-server:lock",
	"unlock":              "os_compute_api:os-lock-server:unlock",
	"createImage":         "os_compute_api:servers:create_image",
	"os-getConsoleOutput": "os_compute_api:os-console-output",
	"addSecurityGroup":    "os_compute_api:os-security-groups:add",
	"removeSecurityGroup": "os_compute_api:os-security-groups:remove",
	"addFloatingIp":       "os_compute_api:os-floating-ips:add",
	"removeFloatingIp":    "os_compute_api:os-floating-ips:remove",
	"evacuate":            "os_compute_api:os-evacuate",
	"trigger_crash_dump":  "os_compute_api:servers:trigger_crash_dump",
	"os-getVNCConsole":    "os_compute_api:os-remote-consoles",
	"os-getSerialConsole": "os_compute_api:os-remote-consoles",
	"os-getSPICEConsole":  "os_compute_api:os-remote-consoles",
	"os-getRDPConsole":    "os_compute_api:os-remote-consoles",
}

// actionsSince are the server actions Nova added after 2.1, with the
// minor version that added each: below it they are not found.
var actionsSince = map[string]int{"trigger_crash_dump": 17}

func (h *handler) serverAction(w http.ResponseWriter, r *http.Request) error {
	var body map[string]json.RawMessage
	if err := h.dec.Decode(r, &body); err != nil {
		return err
	}
	if len(body) != 1 {
		return trustack.Errorf(trustack.EINVALID, "The action body must name exactly one action.")
	}
	var name string
	var args json.RawMessage
	for k, v := range body { // the one action
		name, args = k, v
	}
	if since, ok := actionsSince[name]; ok && !atLeast(r, since) {
		return trustack.Errorf(trustack.ENOTFOUND, "API version %s does not have the server action %s.", openstack.MicroversionOf(r), name)
	}
	rule, known := serverActions[name]
	if !known {
		// As Nova, a missing server is 404 whatever the action.
		if _, _, err := h.serverFor(r, "os_compute_api:servers:show"); err != nil {
			return err
		}
		switch name {
		case "restore", "forceDelete":
			// trustack deletes at once: no server is ever soft-deleted.
			return trustack.Errorf(trustack.ECONFLICT, "Cannot '%s' instance %s while it is not soft-deleted", name, r.PathValue("id"))
		}
		return trustack.Errorf(trustack.EINVALID, "There is no such action: %s", name)
	}
	c, s, err := h.serverFor(r, rule)
	if err != nil {
		return err
	}
	ctx := r.Context()
	switch name {
	case "pause", "unpause", "suspend", "resume":
		err = h.svc.Act(ctx, c, s.ID, name)
	case "os-start":
		err = h.svc.Act(ctx, c, s.ID, "start")
	case "os-stop":
		err = h.svc.Act(ctx, c, s.ID, "stop")
	case "reboot":
		var a struct {
			Type string `json:"type"`
		}
		if err := openstack.UnmarshalField(args, "reboot", &a); err != nil {
			return err
		}
		switch strings.ToUpper(a.Type) {
		case "SOFT":
			err = h.svc.Act(ctx, c, s.ID, "reboot")
		case "HARD":
			err = h.svc.Act(ctx, c, s.ID, "reboot_hard")
		default:
			return invalid("type", "%q is not one of SOFT, HARD.", a.Type)
		}
	case "lock", "unlock":
		c.Admin = h.api.Allowed(r, "os_compute_api:os-lock-server:unlock:unlock_override", policy.Target{"project_id": s.ProjectID})
		err = h.svc.Lock(ctx, c, s.ID, name == "lock")
	case "createImage":
		return h.createImage(w, r, c, s, args)
	case "os-getConsoleOutput":
		return h.consoleOutput(w, r, c, s, args)
	case "os-getVNCConsole", "os-getSerialConsole", "os-getSPICEConsole", "os-getRDPConsole":
		return h.consoleAction(w, r, c, s, name, args)
	case "addSecurityGroup", "removeSecurityGroup":
		return h.setServerGroup(w, r, c, s, name, args)
	case "addFloatingIp":
		return h.addFloatingIP(w, r, c, s, args)
	case "removeFloatingIp":
		return h.removeFloatingIP(w, r, c, s, args)
	case "evacuate":
		return h.evacuate(w, r, c, s, args)
	case "trigger_crash_dump":
		if string(args) != "null" {
			return invalid("trigger_crash_dump", "None is the only value.")
		}
		err = h.svc.Act(ctx, c, s.ID, name)
	}
	if err != nil {
		return err
	}
	return accepted(w)
}

func (h *handler) createImage(w http.ResponseWriter, r *http.Request, c compute.Caller, s *trustack.Server, args json.RawMessage) error {
	var a struct {
		Name     *string           `json:"name"`
		Metadata map[string]string `json:"metadata"`
	}
	if err := openstack.UnmarshalField(args, "createImage", &a); err != nil {
		return err
	}
	if a.Name == nil {
		return invalid("name", "'name' is a required property.")
	}
	if n := len([]rune(*a.Name)); n > 255 {
		return invalid("name", "The name must have at most 255 characters.")
	}
	for k, v := range a.Metadata {
		if k == "" || len([]rune(k)) > 255 || len([]rune(v)) > 255 {
			return invalid("metadata", "Keys must have 1 to 255 characters, values at most 255.")
		}
	}
	id, err := h.svc.CreateImage(r.Context(), c, s.ID, *a.Name, a.Metadata)
	if err != nil {
		return err
	}
	w.Header().Set("Location", h.cfg.ImageURL+"/v2/images/"+id)
	return accepted(w)
}

// evacuate rebuilds a server of a lost host on another, as Nova's
// evacuate. Up to 2.13 onSharedStorage is required (trustack keeps
// servers' own disks on their hosts, so either way they are rebuilt from
// their images, or from their volumes), and the answer carries the admin
// password, the one given or a new one; from 2.14 onSharedStorage is gone
// and the answer has no body.
func (h *handler) evacuate(w http.ResponseWriter, r *http.Request, c compute.Caller, s *trustack.Server, args json.RawMessage) error {
	var a struct {
		Host            *string         `json:"host"`
		OnSharedStorage json.RawMessage `json:"onSharedStorage"`
		AdminPass       *string         `json:"adminPass"`
	}
	var keys map[string]json.RawMessage
	if err := openstack.UnmarshalField(args, "evacuate", &keys); err != nil {
		return err
	}
	fields := []string{"host", "adminPass"}
	if !atLeast(r, 14) {
		fields = append(fields, "onSharedStorage")
	}
	for k := range keys {
		if !slices.Contains(fields, k) {
			return unexpected("evacuate", k)
		}
	}
	if err := openstack.UnmarshalField(args, "evacuate", &a); err != nil {
		return err
	}
	if !atLeast(r, 14) && !nonEmpty(a.OnSharedStorage) {
		return invalid("onSharedStorage", "'onSharedStorage' is a required property.")
	}
	if _, err := boolParam("onSharedStorage", a.OnSharedStorage); err != nil {
		return err
	}
	var onto string
	if a.Host != nil {
		if onto = *a.Host; onto == "" || len(onto) > 255 {
			return invalid("host", "A host name has 1 to 255 characters.")
		}
	}
	pass := newAdminPass()
	if a.AdminPass != nil {
		pass = *a.AdminPass
	}
	c.Admin = true // the policy rule let an operator through
	if err := h.svc.Evacuate(r.Context(), c, s.ID, onto); err != nil {
		return err
	}
	if atLeast(r, 14) {
		w.WriteHeader(http.StatusOK)
		return nil
	}
	return ok(w, object{"adminPass": pass})
}

func (h *handler) consoleOutput(w http.ResponseWriter, r *http.Request, c compute.Caller, s *trustack.Server, args json.RawMessage) error {
	var a struct {
		Length json.RawMessage `json:"length"`
	}
	if nonEmpty(args) {
		if err := openstack.UnmarshalField(args, "os-getConsoleOutput", &a); err != nil {
			return err
		}
	}
	lines := 0
	if nonEmpty(a.Length) {
		n, err := countParam("length", a.Length)
		if err != nil {
			var neg int
			if json.Unmarshal(a.Length, &neg) != nil || neg != -1 {
				return err
			}
			n = 0 // -1 means everything, as Nova
		}
		lines = n
	}
	out, err := h.svc.ConsoleOutput(r.Context(), c, s.ID, 0)
	if err != nil {
		return err
	}
	if lines > 0 {
		// As Nova: the last lines of the log split at newlines.
		parts := strings.Split(out, "\n")
		if len(parts) > lines {
			parts = parts[len(parts)-lines:]
		}
		out = strings.Join(parts, "\n")
	}
	return ok(w, object{"output": out})
}

// diagnostics answers what the hypervisor measures of the server, in the
// free form of microversion 2.1.
func (h *handler) diagnostics(w http.ResponseWriter, r *http.Request) error {
	c, s, err := h.serverFor(r, "os_compute_api:os-server-diagnostics")
	if err != nil {
		return err
	}
	d, err := h.svc.Diagnostics(r.Context(), c, s.ID)
	if err != nil {
		return err
	}
	return ok(w, d)
}

// Metadata.

func (h *handler) listMetadata(w http.ResponseWriter, r *http.Request) error {
	_, s, err := h.serverFor(r, "os_compute_api:server-metadata:index")
	if err != nil {
		return err
	}
	return ok(w, object{"metadata": metadata(s.Metadata)})
}

func (h *handler) setMetadata(replace bool) openstack.Handler {
	rule := "os_compute_api:server-metadata:create"
	if replace {
		rule = "os_compute_api:server-metadata:update_all"
	}
	return func(w http.ResponseWriter, r *http.Request) error {
		c, s, err := h.serverFor(r, rule)
		if err != nil {
			return err
		}
		var body struct {
			Metadata map[string]string `json:"metadata"`
		}
		if err := h.dec.Decode(r, &body); err != nil {
			return err
		}
		if body.Metadata == nil {
			return invalid("metadata", "'metadata' is a required property.")
		}
		md, err := h.svc.SetMetadata(r.Context(), c, s.ID, body.Metadata, replace)
		if err != nil {
			return err
		}
		return ok(w, object{"metadata": md})
	}
}

func (h *handler) showMetadataItem(w http.ResponseWriter, r *http.Request) error {
	_, s, err := h.serverFor(r, "os_compute_api:server-metadata:show")
	if err != nil {
		return err
	}
	key := r.PathValue("key")
	v, found := s.Metadata[key]
	if !found {
		return trustack.Errorf(trustack.ENOTFOUND, "Metadata item was not found")
	}
	return ok(w, object{"meta": object{key: v}})
}

func (h *handler) setMetadataItem(w http.ResponseWriter, r *http.Request) error {
	c, s, err := h.serverFor(r, "os_compute_api:server-metadata:update")
	if err != nil {
		return err
	}
	var body struct {
		Meta map[string]string `json:"meta"`
	}
	if err := h.dec.Decode(r, &body); err != nil {
		return err
	}
	key := r.PathValue("key")
	v, found := body.Meta[key]
	if len(body.Meta) != 1 || !found {
		return trustack.Errorf(trustack.EINVALID, "Request body and URI mismatch")
	}
	if _, err := h.svc.SetMetadata(r.Context(), c, s.ID, map[string]string{key: v}, false); err != nil {
		return err
	}
	return ok(w, object{"meta": object{key: v}})
}

func (h *handler) deleteMetadataItem(w http.ResponseWriter, r *http.Request) error {
	c, s, err := h.serverFor(r, "os_compute_api:server-metadata:delete")
	if err != nil {
		return err
	}
	if err := h.svc.DeleteMetadata(r.Context(), c, s.ID, r.PathValue("key")); err != nil {
		return err
	}
	return noContent(w)
}

// Instance actions.

// actionServer is serverFor for instance actions, which Nova lists for
// deleted servers too from 2.21.
func (h *handler) actionServer(r *http.Request, rule string) (compute.Caller, *trustack.Server, error) {
	c, err := h.caller(r)
	if err != nil {
		return c, nil, err
	}
	s, err := h.svc.Server(r.Context(), c, r.PathValue("id"))
	if err == nil && s.VMState == trustack.VMDeleted && !atLeast(r, 21) {
		err = trustack.Errorf(trustack.ENOTFOUND, "Instance %s could not be found.", s.ID)
	}
	if err != nil {
		return c, nil, err
	}
	return c, s, h.api.Authorize(r, rule, policy.Target{"project_id": s.ProjectID})
}

func (h *handler) listActions(w http.ResponseWriter, r *http.Request) error {
	c, s, err := h.actionServer(r, "os_compute_api:os-instance-actions:list")
	if err != nil {
		return err
	}
	list, err := h.svc.Actions(r.Context(), c, s.ID)
	if err != nil {
		return err
	}
	out := make([]object, len(list))
	for i, a := range list {
		out[i] = action(a, false)
	}
	return ok(w, object{"instanceActions": out})
}

func (h *handler) showAction(w http.ResponseWriter, r *http.Request) error {
	c, s, err := h.actionServer(r, "os_compute_api:os-instance-actions:show")
	if err != nil {
		return err
	}
	a, err := h.svc.Action(r.Context(), c, s.ID, r.PathValue("request_id"))
	if err != nil {
		return err
	}
	events := h.api.Allowed(r, "os_compute_api:os-instance-actions:events", policy.Target{"project_id": s.ProjectID})
	return ok(w, object{"instanceAction": action(*a, events)})
}
