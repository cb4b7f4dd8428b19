package network

import (
	"context"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/wire"
)

// SecurityGroupSpec is what a caller asks of a security group, on
// creation or update; nil fields are left as they are.
type SecurityGroupSpec struct {
	// ProjectID is the owner of a new group, "" for the caller's project.
	ProjectID   string
	Name        *string
	Description *string
	Stateful    *bool
	Tags        *[]string
}

// RuleSpec is a security group rule to create. EtherType defaults to
// IPv4; Protocol "" (or "any") matches every protocol.
type RuleSpec struct {
	ProjectID       string
	SecurityGroupID string
	Direction       string
	EtherType       string
	Protocol        string
	PortMin         *int
	PortMax         *int
	RemoteIPPrefix  string
	RemoteGroupID   string
	Description     string
}

// defaultGroup returns the ID of a project's default security group,
// making the group the first time: all egress, and ingress from the
// group's own members.
func (s *Service) defaultGroup(ctx context.Context, project string) (string, error) {
	id, err := s.store.DefaultSecurityGroupID(ctx, project)
	if trustack.ErrorCode(err) != trustack.ENOTFOUND {
		return id, err
	}
	now := s.now()
	std := trustack.Standard{CreatedAt: now, UpdatedAt: now, Revision: 1}
	g := &trustack.SecurityGroup{ID: uuid.NewString(), Name: trustack.DefaultSecurityGroup, ProjectID: project, Stateful: true,
		Standard: trustack.Standard{Description: "Default security group", CreatedAt: now, UpdatedAt: now, Revision: 1}}
	for _, et := range []string{trustack.IPv4, trustack.IPv6} {
		g.Rules = append(g.Rules,
			trustack.SecurityGroupRule{ID: uuid.NewString(), SecurityGroupID: g.ID, ProjectID: project, Direction: trustack.Egress, EtherType: et, Standard: std},
			trustack.SecurityGroupRule{ID: uuid.NewString(), SecurityGroupID: g.ID, ProjectID: project, Direction: trustack.Ingress, EtherType: et, RemoteGroupID: g.ID, Standard: std})
	}
	err = s.store.CreateSecurityGroup(ctx, g, true, -1)
	if trustack.ErrorCode(err) == trustack.ECONFLICT {
		// Made meanwhile by another request of the project.
		return s.store.DefaultSecurityGroupID(ctx, project)
	}
	if err != nil {
		return "", err
	}
	return g.ID, nil
}

// ensureDefaultGroup makes a project's default group if it has none.
func (s *Service) ensureDefaultGroup(ctx context.Context, project string) error {
	_, err := s.defaultGroup(ctx, project)
	return err
}

// CreateSecurityGroup creates a group that lets all egress through, as
// Neutron's; it may not be named "default" (ECONFLICT), which is the name
// of the group every project has.
func (s *Service) CreateSecurityGroup(ctx context.Context, c Caller, spec SecurityGroupSpec) (*trustack.SecurityGroup, error) {
	project, err := s.owner(c, spec.ProjectID)
	if err != nil {
		return nil, err
	}
	if err := s.ensureDefaultGroup(ctx, project); err != nil {
		return nil, err
	}
	now := s.now()
	std := trustack.Standard{CreatedAt: now, UpdatedAt: now, Revision: 1}
	g := &trustack.SecurityGroup{ID: uuid.NewString(), ProjectID: project, Stateful: true, Standard: std}
	if err := applyGroup(g, spec); err != nil {
		return nil, err
	}
	for _, et := range []string{trustack.IPv4, trustack.IPv6} {
		g.Rules = append(g.Rules, trustack.SecurityGroupRule{ID: uuid.NewString(), SecurityGroupID: g.ID, ProjectID: project, Direction: trustack.Egress, EtherType: et, Standard: std})
	}
	limit, err := s.limit(ctx, project, trustack.QuotaSecurityGroup)
	if err != nil {
		return nil, err
	}
	if err := s.store.CreateSecurityGroup(ctx, g, false, limit); err != nil {
		return nil, err
	}
	return g, nil
}

// applyGroup sets and checks what spec changes of g.
func applyGroup(g *trustack.SecurityGroup, spec SecurityGroupSpec) error {
	if spec.Name != nil && *spec.Name == trustack.DefaultSecurityGroup && g.Name != trustack.DefaultSecurityGroup {
		return conflict("SecurityGroupDefaultAlreadyExists", "Default security group already exists.")
	}
	set(&g.Name, spec.Name)
	set(&g.Description, spec.Description)
	set(&g.Stateful, spec.Stateful)
	if spec.Tags != nil {
		tags, err := checkTags(*spec.Tags)
		if err != nil {
			return err
		}
		g.Tags = tags
	}
	return checkName(g.Name, g.Description)
}

// SecurityGroup returns a group the caller may see: its project's.
func (s *Service) SecurityGroup(ctx context.Context, c Caller, id string) (*trustack.SecurityGroup, error) {
	g, err := s.store.SecurityGroup(ctx, id)
	if err != nil || !c.owns(g.ProjectID) {
		return nil, notFound("SecurityGroupNotFound", "Security group %s does not exist", id)
	}
	return g, nil
}

// SecurityGroups returns the groups the caller may see, making the
// project's default group if it has none yet, as Neutron does.
func (s *Service) SecurityGroups(ctx context.Context, c Caller) ([]*trustack.SecurityGroup, error) {
	if c.ProjectID != "" {
		if err := s.ensureDefaultGroup(ctx, c.ProjectID); err != nil {
			return nil, err
		}
	}
	project := c.ProjectID
	if c.Admin {
		project = ""
	}
	return s.store.SecurityGroups(ctx, project, nil)
}

// UpdateSecurityGroup changes a group; the default group keeps its name
// (ECONFLICT).
func (s *Service) UpdateSecurityGroup(ctx context.Context, c Caller, id string, spec SecurityGroupSpec) (*trustack.SecurityGroup, error) {
	if _, err := s.SecurityGroup(ctx, c, id); err != nil {
		return nil, err
	}
	g, err := s.store.UpdateSecurityGroup(ctx, id, func(g *trustack.SecurityGroup) error {
		if g.Name == trustack.DefaultSecurityGroup && spec.Name != nil && *spec.Name != g.Name {
			return conflict("SecurityGroupCannotUpdateDefault", "Updating default security group not allowed.")
		}
		g.UpdatedAt = s.now()
		return applyGroup(g, spec)
	})
	if err != nil {
		return nil, err
	}
	s.groupsChanged(ctx, g.ID)
	return g, nil
}

// DeleteSecurityGroup deletes a group; ECONFLICT while a port is in it,
// and for a project's default group unless the caller is an
// administrator.
func (s *Service) DeleteSecurityGroup(ctx context.Context, c Caller, id string) error {
	g, err := s.SecurityGroup(ctx, c, id)
	if err != nil {
		return err
	}
	if g.Name == trustack.DefaultSecurityGroup && !c.Admin {
		return conflict("SecurityGroupCannotRemoveDefault", "Insufficient rights for removing default security group.")
	}
	// The rules of other groups that name it as remote group go with it.
	all, err := s.store.SecurityGroups(ctx, "", nil)
	if err != nil {
		return err
	}
	var naming []string
	for _, other := range all {
		if other.ID != id && slices.ContainsFunc(other.Rules, func(r trustack.SecurityGroupRule) bool { return r.RemoteGroupID == id }) {
			naming = append(naming, other.ID)
		}
	}
	if err := s.store.DeleteSecurityGroup(ctx, id); err != nil {
		return err
	}
	s.groupsChanged(ctx, naming...)
	return nil
}

// CreateSecurityGroupRule adds a rule to a group the caller may see. A
// bad direction, ether type, protocol, port range or remote prefix is
// EINVALID; a remote group that does not exist is ENOTFOUND; the same
// rule twice is ECONFLICT.
func (s *Service) CreateSecurityGroupRule(ctx context.Context, c Caller, spec RuleSpec) (*trustack.SecurityGroupRule, error) {
	g, err := s.SecurityGroup(ctx, c, spec.SecurityGroupID)
	if err != nil {
		return nil, err
	}
	project, err := s.owner(c, spec.ProjectID)
	if err != nil {
		return nil, err
	}
	if !c.Admin {
		project = g.ProjectID
	}
	now := s.now()
	r := &trustack.SecurityGroupRule{ID: uuid.NewString(), SecurityGroupID: g.ID, ProjectID: project, Direction: spec.Direction,
		EtherType: spec.EtherType, PortMin: spec.PortMin, PortMax: spec.PortMax, RemoteGroupID: spec.RemoteGroupID,
		Standard: trustack.Standard{Description: spec.Description, CreatedAt: now, UpdatedAt: now, Revision: 1}}
	if err := checkRule(r, spec); err != nil {
		return nil, err
	}
	if r.RemoteGroupID != "" {
		if _, err := s.SecurityGroup(ctx, c, r.RemoteGroupID); err != nil {
			return nil, err
		}
	}
	limit, err := s.limit(ctx, project, trustack.QuotaSecurityGroupRule)
	if err != nil {
		return nil, err
	}
	if err := s.store.CreateSecurityGroupRule(ctx, r, limit); err != nil {
		return nil, err
	}
	s.groupsChanged(ctx, g.ID)
	return r, nil
}

// checkRule checks a rule and puts its protocol and remote prefix in
// canonical form.
func checkRule(r *trustack.SecurityGroupRule, spec RuleSpec) error {
	if r.Direction != trustack.Ingress && r.Direction != trustack.Egress {
		return invalid("Invalid input for direction. Reason: '%s' is not in ['ingress', 'egress'].", r.Direction)
	}
	if r.EtherType == "" {
		r.EtherType = trustack.IPv4
	}
	if r.EtherType != trustack.IPv4 && r.EtherType != trustack.IPv6 {
		return invalid("Invalid input for ethertype. Reason: '%s' is not in ['IPv4', 'IPv6'].", r.EtherType)
	}
	if err := checkProtocol(r, spec.Protocol); err != nil {
		return err
	}
	if err := checkPorts(r); err != nil {
		return err
	}
	if spec.RemoteIPPrefix != "" {
		if r.RemoteGroupID != "" {
			return trustack.Reasonf(trustack.EINVALID, "SecurityGroupRemoteGroupAndRemoteIpPrefix", "Only remote_ip_prefix or remote_group_id may be provided.")
		}
		p, err := netip.ParsePrefix(spec.RemoteIPPrefix)
		if err != nil {
			a, aerr := netip.ParseAddr(spec.RemoteIPPrefix)
			if aerr != nil {
				return invalid("Invalid input for remote_ip_prefix. Reason: '%s' is not a valid IP prefix.", spec.RemoteIPPrefix)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if p.Addr().Is4() != (r.EtherType == trustack.IPv4) {
			return trustack.Reasonf(trustack.EINVALID, "SecurityGroupRuleParameterConflict", "Conflicting value ethertype %s for CIDR %s", r.EtherType, spec.RemoteIPPrefix)
		}
		// Kept as written, host bits and all, as Neutron keeps it; hosts
		// get it masked (see wireGroup).
		r.RemoteIPPrefix = p.String()
	}
	return nil
}

// checkProtocol sets r's protocol from a name or a number.
func checkProtocol(r *trustack.SecurityGroupRule, proto string) error {
	proto = strings.ToLower(proto)
	switch {
	case proto == "" || proto == "any":
		r.Protocol = ""
		return nil
	case proto == "icmp" && r.EtherType == trustack.IPv6:
		r.Protocol = "ipv6-icmp"
		return nil
	}
	if _, ok := wire.Protocols[proto]; ok {
		r.Protocol = proto
		return nil
	}
	if n, err := strconv.Atoi(proto); err == nil && n >= 0 && n <= 255 {
		r.Protocol = strconv.Itoa(n)
		return nil
	}
	return trustack.Reasonf(trustack.EINVALID, "SecurityGroupRuleInvalidProtocol", "Security group rule protocol %s not supported. Only protocol values [None, ah, dccp, egp, esp, gre, icmp, icmpv6, igmp, ipip, ipv6-encap, ipv6-frag, ipv6-icmp, ipv6-nonxt, ipv6-opts, ipv6-route, ospf, pgm, rsvp, sctp, tcp, udp, udplite, vrrp] and integer representations [0 to 255] are supported.", proto)
}

// checkPorts checks a rule's port range against its protocol: 1-65535 for
// the protocols with ports, a type and code of 0-255 for ICMP, none for
// the others.
func checkPorts(r *trustack.SecurityGroupRule) error {
	switch wire.ProtocolNumber(r.Protocol) {
	case 6, 17, 33, 132, 136:
		for _, p := range []*int{r.PortMin, r.PortMax} {
			if p != nil && (*p < 1 || *p > 65535) {
				return trustack.Reasonf(trustack.EINVALID, "SecurityGroupInvalidPortValue", "Invalid value for port %d.", *p)
			}
		}
		if r.PortMin == nil && r.PortMax != nil || r.PortMin != nil && r.PortMax != nil && *r.PortMin > *r.PortMax {
			return trustack.Reasonf(trustack.EINVALID, "SecurityGroupInvalidPortRange", "For TCP/UDP protocols, port_range_min must be <= port_range_max")
		}
		if r.PortMin != nil && r.PortMax == nil {
			r.PortMax = r.PortMin
		}
	case 1, 58:
		if r.PortMin != nil && (*r.PortMin < 0 || *r.PortMin > 255) {
			return trustack.Reasonf(trustack.EINVALID, "SecurityGroupInvalidIcmpValue", "Invalid value for ICMP type (port-range-min) %d. It must be 0 to 255.", *r.PortMin)
		}
		if r.PortMax != nil && (*r.PortMax < 0 || *r.PortMax > 255) {
			return trustack.Reasonf(trustack.EINVALID, "SecurityGroupInvalidIcmpValue", "Invalid value for ICMP code (port-range-max) %d. It must be 0 to 255.", *r.PortMax)
		}
		if r.PortMin == nil && r.PortMax != nil {
			return trustack.Reasonf(trustack.EINVALID, "SecurityGroupMissingIcmpType", "ICMP code (port-range-max) %d is provided but ICMP type (port-range-min) is missing.", *r.PortMax)
		}
	default:
		if r.PortMin != nil || r.PortMax != nil {
			return invalid("Invalid input for operation: port ranges are only for TCP, UDP, DCCP, SCTP, UDP-Lite and ICMP rules, not for protocol %s.", cmpProtocol(r.Protocol))
		}
	}
	return nil
}

// cmpProtocol names a protocol for a message.
func cmpProtocol(proto string) string {
	if proto == "" {
		return "any"
	}
	return proto
}

// SecurityGroupRule returns a rule of a group the caller may see.
func (s *Service) SecurityGroupRule(ctx context.Context, c Caller, id string) (*trustack.SecurityGroupRule, error) {
	r, err := s.store.SecurityGroupRule(ctx, id)
	if err == nil && !c.owns(r.ProjectID) {
		_, err = s.SecurityGroup(ctx, c, r.SecurityGroupID)
	}
	if err != nil {
		return nil, notFound("SecurityGroupRuleNotFound", "Security group rule %s does not exist", id)
	}
	return r, nil
}

// SecurityGroupRules returns the rules of the groups the caller may see.
func (s *Service) SecurityGroupRules(ctx context.Context, c Caller) ([]*trustack.SecurityGroupRule, error) {
	groups, err := s.SecurityGroups(ctx, c)
	if err != nil {
		return nil, err
	}
	var out []*trustack.SecurityGroupRule
	for _, g := range groups {
		for i := range g.Rules {
			out = append(out, &g.Rules[i])
		}
	}
	return out, nil
}

// DeleteSecurityGroupRule deletes a rule of a group the caller may see.
func (s *Service) DeleteSecurityGroupRule(ctx context.Context, c Caller, id string) error {
	r, err := s.SecurityGroupRule(ctx, c, id)
	if err != nil {
		return err
	}
	if err := s.store.DeleteSecurityGroupRule(ctx, id); err != nil {
		return err
	}
	s.groupsChanged(ctx, r.SecurityGroupID)
	return nil
}
