package compute

import (
	"cmp"
	"context"
	"encoding/json"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/api/openstack"
	"github.com/trustack/trustack/compute"
	"github.com/trustack/trustack/network"
)

// Nova's 2.1 proxy of Neutron's security groups: groups and their ingress
// rules, in nova-network's shapes, and the groups of a server's ports.

// groupRule renders an ingress rule as Nova's proxy does: a rule of a
// protocol with no port range covers all of them (1-65535 for TCP and
// UDP, -1 for the others); a rule with a remote group names it (remote is
// that group), any other shows the prefix it admits, anywhere for none.
func groupRule(r trustack.SecurityGroupRule, remote *trustack.SecurityGroup) object {
	o := object{"id": r.ID, "parent_group_id": r.SecurityGroupID, "ip_protocol": nullIfEmpty(r.Protocol),
		"from_port": portOrNull(r.PortMin), "to_port": portOrNull(r.PortMax), "group": object{}, "ip_range": object{}}
	if r.Protocol != "" && r.PortMin == nil && r.PortMax == nil {
		o["from_port"], o["to_port"] = -1, -1
		if r.Protocol == "tcp" || r.Protocol == "udp" {
			o["from_port"], o["to_port"] = 1, 65535
		}
	}
	switch {
	case remote != nil:
		o["group"] = object{"name": remote.Name, "tenant_id": remote.ProjectID}
	case r.RemoteIPPrefix != "":
		o["ip_range"] = object{"cidr": r.RemoteIPPrefix}
	case r.EtherType == trustack.IPv6:
		o["ip_range"] = object{"cidr": "::/0"}
	default:
		o["ip_range"] = object{"cidr": "0.0.0.0/0"}
	}
	return o
}

// portOrNull renders a rule's port bound, null for none.
func portOrNull(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}

// securityGroups renders groups with their ingress rules, sorted as Nova
// sorts them, by project and name. known holds the groups that rules name
// as remote, by ID; a rule naming one not there (gone, or hidden from the
// caller) is left out, as Nova leaves it out.
func securityGroups(groups []*trustack.SecurityGroup, known map[string]*trustack.SecurityGroup) []object {
	slices.SortStableFunc(groups, func(a, b *trustack.SecurityGroup) int {
		return cmp.Or(cmp.Compare(a.ProjectID, b.ProjectID), cmp.Compare(a.Name, b.Name))
	})
	out := make([]object, len(groups))
	for i, g := range groups {
		rules := []object{}
		for _, r := range g.Rules {
			remote := known[r.RemoteGroupID]
			if r.Direction != trustack.Ingress || r.RemoteGroupID != "" && remote == nil {
				continue
			}
			rules = append(rules, groupRule(r, remote))
		}
		out[i] = object{"id": g.ID, "name": g.Name, "description": g.Description, "tenant_id": g.ProjectID, "rules": rules}
	}
	return out
}

// renderGroups renders groups as securityGroups does, with the groups
// their rules name as remote that the caller sees.
func (h *handler) renderGroups(ctx context.Context, c network.Caller, groups []*trustack.SecurityGroup) ([]object, error) {
	known := map[string]*trustack.SecurityGroup{}
	for _, g := range groups {
		known[g.ID] = g
	}
	for _, g := range groups {
		for _, r := range g.Rules {
			if _, done := known[r.RemoteGroupID]; done || r.RemoteGroupID == "" {
				continue
			}
			remote, err := h.net.SecurityGroup(ctx, c, r.RemoteGroupID)
			if err != nil && trustack.ErrorCode(err) != trustack.ENOTFOUND {
				return nil, err
			}
			known[r.RemoteGroupID] = remote // nil for one gone or hidden
		}
	}
	return securityGroups(groups, known), nil
}

// renderGroup answers with one group.
func (h *handler) renderGroup(w http.ResponseWriter, r *http.Request, c network.Caller, g *trustack.SecurityGroup) error {
	out, err := h.renderGroups(r.Context(), c, []*trustack.SecurityGroup{g})
	if err != nil {
		return err
	}
	return ok(w, object{"security_group": out[0]})
}

// listSecurityGroups lists the project's groups; an administrator asking
// for all_tenants gets every project's.
func (h *handler) listSecurityGroups(w http.ResponseWriter, r *http.Request) error {
	c, err := h.netCallerFor(r, "os_compute_api:os-security-groups:get")
	if err != nil {
		return err
	}
	q := r.URL.Query()
	all := false
	if q.Has("all_tenants") {
		all, _ = strconv.ParseBool(cmp.Or(q.Get("all_tenants"), "true"))
	}
	c.Admin = c.Admin && all
	groups, err := h.net.SecurityGroups(r.Context(), c)
	if err != nil {
		return err
	}
	out, err := h.renderGroups(r.Context(), c, groups)
	if err != nil {
		return err
	}
	return collection(w, "security_groups", out)
}

// securityGroupOf returns the group of the request's path; a group the caller does
// not see, or a path that names none, is not found.
func (h *handler) securityGroupOf(r *http.Request, c network.Caller) (*trustack.SecurityGroup, error) {
	id := r.PathValue("id")
	if !openstack.IsUUIDHex(id) {
		return nil, trustack.Errorf(trustack.ENOTFOUND, "Security group %s not found.", id)
	}
	return h.net.SecurityGroup(r.Context(), c, id)
}

func (h *handler) showSecurityGroup(w http.ResponseWriter, r *http.Request) error {
	c, err := h.netCallerFor(r, "os_compute_api:os-security-groups:show")
	if err != nil {
		return err
	}
	g, err := h.securityGroupOf(r, c)
	if err != nil {
		return err
	}
	return h.renderGroup(w, r, c, g)
}

// groupSpec reads the body of POST and PUT /os-security-groups: a name
// and a description, both required, each of 1 to 255 characters once
// stripped of blanks, as Nova checks them; they are kept as given.
func (h *handler) groupSpec(r *http.Request) (network.SecurityGroupSpec, error) {
	var body struct {
		Group *struct {
			Name        json.RawMessage `json:"name"`
			Description json.RawMessage `json:"description"`
		} `json:"security_group"`
	}
	var spec network.SecurityGroupSpec
	if err := h.dec.Decode(r, &body); err != nil {
		return spec, err
	}
	if body.Group == nil {
		return spec, trustack.Errorf(trustack.EINVALID, "Missing parameter security_group")
	}
	for _, f := range []struct {
		name string
		raw  json.RawMessage
		dst  **string
	}{{"name", body.Group.Name, &spec.Name}, {"description", body.Group.Description, &spec.Description}} {
		var v *string
		if json.Unmarshal(f.raw, &v) != nil || v == nil {
			return spec, trustack.Errorf(trustack.EINVALID, "Security group %s is not a string or unicode", f.name)
		}
		switch n := len([]rune(strings.TrimSpace(*v))); {
		case n < 1:
			return spec, trustack.Errorf(trustack.EINVALID, "Invalid input received: %s has %d characters, less than 1.", f.name, n)
		case n > 255:
			return spec, trustack.Errorf(trustack.EINVALID, "Invalid input received: %s has %d characters, more than 255.", f.name, n)
		}
		*f.dst = v
	}
	return spec, nil
}

func (h *handler) createSecurityGroup(w http.ResponseWriter, r *http.Request) error {
	c, err := h.netCallerFor(r, "os_compute_api:os-security-groups:create")
	if err != nil {
		return err
	}
	spec, err := h.groupSpec(r)
	if err != nil {
		return err
	}
	g, err := h.net.CreateSecurityGroup(r.Context(), c, spec)
	if err != nil {
		return recode(err, trustack.EINVALID, "SecurityGroupDefaultAlreadyExists")
	}
	return h.renderGroup(w, r, c, g)
}

func (h *handler) updateSecurityGroup(w http.ResponseWriter, r *http.Request) error {
	c, err := h.netCallerFor(r, "os_compute_api:os-security-groups:update")
	if err != nil {
		return err
	}
	g, err := h.securityGroupOf(r, c)
	if err != nil {
		return err
	}
	spec, err := h.groupSpec(r)
	if err != nil {
		return err
	}
	if g, err = h.net.UpdateSecurityGroup(r.Context(), c, g.ID, spec); err != nil {
		return recode(err, trustack.EINVALID, "SecurityGroupCannotUpdateDefault", "SecurityGroupDefaultAlreadyExists")
	}
	return h.renderGroup(w, r, c, g)
}

func (h *handler) deleteSecurityGroup(w http.ResponseWriter, r *http.Request) error {
	c, err := h.netCallerFor(r, "os_compute_api:os-security-groups:delete")
	if err != nil {
		return err
	}
	g, err := h.securityGroupOf(r, c)
	if err != nil {
		return err
	}
	if err := h.net.DeleteSecurityGroup(r.Context(), c, g.ID); err != nil {
		// As Nova: a group in use, or the default one, is a bad request.
		return recode(err, trustack.EINVALID, "SecurityGroupInUse", "SecurityGroupCannotRemoveDefault")
	}
	return accepted(w)
}

// ruleBody is the body of POST /os-security-group-rules.
type ruleBody struct {
	Rule *struct {
		ParentGroupID *string         `json:"parent_group_id"`
		GroupID       *string         `json:"group_id"`
		IPProtocol    *string         `json:"ip_protocol"`
		FromPort      json.RawMessage `json:"from_port"`
		ToPort        json.RawMessage `json:"to_port"`
		CIDR          *string         `json:"cidr"`
	} `json:"security_group_rule"`
}

// groupID checks a group's ID in a body: Nova's proxy wants a UUID.
func groupID(id *string) (string, error) {
	if id == nil || !uuidRE.MatchString(*id) {
		return "", trustack.Errorf(trustack.EINVALID, "Security group id should be uuid")
	}
	return *id, nil
}

// portNumber reads a rule's port: an integer, or a string of one; absent
// or null is nil.
func portNumber(raw json.RawMessage, protocol string) (*int, error) {
	if !nonEmpty(raw) {
		return nil, nil
	}
	var n json.Number
	var s string
	if json.Unmarshal(raw, &s) == nil {
		n = json.Number(s)
	} else if json.Unmarshal(raw, &n) != nil {
		n = ""
	}
	v, err := strconv.Atoi(string(n))
	switch {
	case err == nil:
		return &v, nil
	case protocol == "icmp":
		return nil, trustack.Errorf(trustack.EINVALID, "Invalid input received: Type and Code must be integers for ICMP protocol type")
	}
	return nil, trustack.Errorf(trustack.EINVALID, "Invalid input received: To and From ports must be integers")
}

// ruleSpec turns a Nova rule into the ingress rule it is: of a protocol
// (tcp, udp or icmp) with a port range or an ICMP type and code (-1 for
// any), from a prefix (anywhere by default) or from the members of a
// remote group (then any protocol and port if it names none). The checks
// and their messages are Nova's.
func ruleSpec(parent, remote string, protocol *string, from, to json.RawMessage, cidr *string) (network.RuleSpec, error) {
	spec := network.RuleSpec{SecurityGroupID: parent, Direction: trustack.Ingress, EtherType: trustack.IPv4, RemoteGroupID: remote}
	proto := ""
	if protocol != nil {
		proto = strings.ToLower(*protocol)
	}
	lo, err := portNumber(from, proto)
	if err != nil {
		return spec, err
	}
	hi, err := portNumber(to, proto)
	if err != nil {
		return spec, err
	}
	switch {
	case remote == "":
		prefix := "0.0.0.0/0"
		if cidr != nil && *cidr != "" {
			prefix = *cidr
		}
		p, err := netip.ParsePrefix(prefix)
		switch {
		case err != nil:
			return spec, trustack.Errorf(trustack.EINVALID, "%s is not a valid IP network.", prefix)
		case p.Bits() == 0 && !p.Addr().IsUnspecified():
			return spec, trustack.Errorf(trustack.EINVALID, "Bad prefix for network in cidr %s", prefix)
		case p.Addr().Is6():
			spec.EtherType = trustack.IPv6
		}
		spec.RemoteIPPrefix = prefix
		if proto == "" {
			return spec, trustack.Errorf(trustack.EINVALID, "Not enough parameters to build a valid rule.")
		}
	case lo == nil && hi == nil && (proto == "tcp" || proto == "udp"):
		lo, hi = ptr(1), ptr(65535)
	case lo == nil && hi == nil && proto == "icmp":
		lo, hi = ptr(-1), ptr(-1)
	case proto == "":
		return spec, nil
	}
	if lo == nil || hi == nil {
		return spec, trustack.Errorf(trustack.EINVALID, "Not enough parameters to build a valid rule.")
	}
	rangeError := func(why string) error {
		return trustack.Errorf(trustack.EINVALID, "Invalid port range %d:%d. %s", *lo, *hi, why)
	}
	switch proto {
	case "tcp", "udp":
		if *lo > *hi {
			return spec, rangeError("Former value cannot be greater than the later")
		}
		if *lo < 1 || *hi > 65535 {
			return spec, rangeError("Valid " + strings.ToUpper(proto) + " ports should be between 1-65535")
		}
	case "icmp":
		if *lo < -1 || *lo > 255 || *hi < -1 || *hi > 255 {
			return spec, rangeError("For ICMP, the type:code must be valid")
		}
	default:
		return spec, trustack.Errorf(trustack.EINVALID, "Invalid IP protocol %s.", *protocol)
	}
	spec.Protocol = proto
	// -1 is any ICMP type or code, which the networking service says by
	// leaving it out.
	if *lo != -1 {
		spec.PortMin = lo
	}
	if *hi != -1 {
		spec.PortMax = hi
	}
	return spec, nil
}

// ptr returns a pointer to a copy of n.
func ptr(n int) *int { return &n }

func (h *handler) createGroupRule(w http.ResponseWriter, r *http.Request) error {
	c, err := h.netCallerFor(r, "os_compute_api:os-security-groups:rule:create")
	if err != nil {
		return err
	}
	var body ruleBody
	if err := h.dec.Decode(r, &body); err != nil {
		return err
	}
	b := body.Rule
	if b == nil {
		return trustack.Errorf(trustack.EINVALID, "Missing parameter security_group_rule")
	}
	parentID, err := groupID(b.ParentGroupID)
	if err != nil {
		return err
	}
	ctx := r.Context()
	parent, err := h.net.SecurityGroup(ctx, c, parentID)
	if err != nil {
		return err
	}
	var remote *trustack.SecurityGroup
	remoteID := ""
	if b.GroupID != nil {
		if remoteID, err = groupID(b.GroupID); err != nil {
			return err
		}
		if remote, err = h.net.SecurityGroup(ctx, c, remoteID); err != nil {
			return err
		}
	}
	spec, err := ruleSpec(parent.ID, remoteID, b.IPProtocol, b.FromPort, b.ToPort, b.CIDR)
	if err != nil {
		return err
	}
	rule, err := h.net.CreateSecurityGroupRule(ctx, c, spec)
	if trustack.ErrorReason(err) == "SecurityGroupRuleExists" {
		return trustack.Errorf(trustack.EINVALID, "This rule already exists in group %s", parent.ID)
	}
	if err != nil {
		return err
	}
	return ok(w, object{"security_group_rule": groupRule(*rule, remote)})
}

func (h *handler) deleteGroupRule(w http.ResponseWriter, r *http.Request) error {
	c, err := h.netCallerFor(r, "os_compute_api:os-security-groups:rule:delete")
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	if !openstack.IsUUIDHex(id) {
		return trustack.Errorf(trustack.ENOTFOUND, "Security group rule %s not found.", id)
	}
	if err := h.net.DeleteSecurityGroupRule(r.Context(), c, id); err != nil {
		return err
	}
	return accepted(w)
}

// listServerSecurityGroups lists the groups of the server's ports, with
// their rules.
func (h *handler) listServerSecurityGroups(w http.ResponseWriter, r *http.Request) error {
	c, _, ports, err := h.serverPorts(r, "os_compute_api:os-security-groups:list")
	if err != nil {
		return err
	}
	var ids []string
	for _, p := range ports {
		ids = append(ids, p.SecurityGroups...)
	}
	slices.Sort(ids)
	var groups []*trustack.SecurityGroup
	for _, id := range slices.Compact(ids) {
		g, err := h.net.SecurityGroup(r.Context(), netCaller(c), id)
		if err != nil && trustack.ErrorCode(err) != trustack.ENOTFOUND {
			return err
		}
		if g != nil {
			groups = append(groups, g)
		}
	}
	out, err := h.renderGroups(r.Context(), netCaller(c), groups)
	if err != nil {
		return err
	}
	return collection(w, "security_groups", out)
}

// setServerGroup serves addSecurityGroup and removeSecurityGroup: the
// group named (by name or ID) added to every port of the server, or
// removed from them.
func (h *handler) setServerGroup(w http.ResponseWriter, r *http.Request, c compute.Caller, s *trustack.Server, action string, args json.RawMessage) error {
	var a map[string]json.RawMessage
	if json.Unmarshal(args, &a) != nil || a == nil {
		return trustack.Errorf(trustack.EINVALID, "Missing parameter dict")
	}
	raw, found := a["name"]
	if !found {
		return trustack.Errorf(trustack.EINVALID, "Security group not specified")
	}
	var name string
	if json.Unmarshal(raw, &name) != nil || strings.TrimSpace(name) == "" {
		return trustack.Errorf(trustack.EINVALID, "Security group name cannot be empty")
	}
	if err := h.svc.SetSecurityGroup(r.Context(), c, s.ID, name, action == "addSecurityGroup"); err != nil {
		return err
	}
	return accepted(w)
}
