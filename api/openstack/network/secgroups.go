package network

import (
	"context"
	"encoding/json"
	"slices"
	"strings"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/network"
	"github.com/trustack/trustack/policy"
)

type groupSpec = network.SecurityGroupSpec

// groupFields are the attributes of security groups, with the
// stateful-security-group extension's.
var groupFields = slices.Concat(
	described(func(s *groupSpec) **string { return &s.Name }, func(s *groupSpec) **string { return &s.Description },
		func(s *groupSpec) **[]string { return &s.Tags }),
	ownedFields(func(s *groupSpec) *string { return &s.ProjectID }),
	readOnly[groupSpec]("security_group_rules"),
	[]field[groupSpec]{boolean("stateful", func(s *groupSpec) **bool { return &s.Stateful })},
)

// securityGroups is the security-groups collection.
func (h *handler) securityGroups() *collection[groupSpec, trustack.SecurityGroup] {
	svc := h.svc
	return &collection[groupSpec, trustack.SecurityGroup]{
		name: "security_group", plural: "security_groups", path: "security-groups", tag: network.TagSecurityGroups, fields: groupFields,
		absent: notFound("SecurityGroupNotFound", "Security group %s does not exist"),
		get:    svc.SecurityGroup, list: svc.SecurityGroups, create: svc.CreateSecurityGroup,
		update: svc.UpdateSecurityGroup, delete: svc.DeleteSecurityGroup,
		render: renderGroup,
	}
}

// renderGroup renders a security group with its rules, as Neutron does.
func renderGroup(g *trustack.SecurityGroup, _ *related) object {
	rules := make([]object, len(g.Rules))
	for i := range g.Rules {
		rules[i] = renderRule(&g.Rules[i], nil)
	}
	return owned(object{
		"id": g.ID, "name": g.Name, "stateful": g.Stateful, "security_group_rules": rules, "tags": texts(g.Tags),
	}, g.ProjectID, g.Standard)
}

type ruleSpec = network.RuleSpec

// ruleFields are the attributes of security group rules, which are made
// and deleted, never changed. Their values are checked by the service,
// which knows protocols and port ranges.
var ruleFields = slices.Concat(
	ownedFields(func(s *ruleSpec) *string { return &s.ProjectID }),
	[]field[ruleSpec]{
		ruleText("security_group_id", true, func(s *ruleSpec) *string { return &s.SecurityGroupID }),
		ruleText("direction", true, func(s *ruleSpec) *string { return &s.Direction }),
		ruleText("remote_ip_prefix", false, func(s *ruleSpec) *string { return &s.RemoteIPPrefix }),
		ruleText("remote_group_id", false, func(s *ruleSpec) *string { return &s.RemoteGroupID }),
		ruleText("description", false, func(s *ruleSpec) *string { return &s.Description }),
		{name: "ethertype", post: true, set: func(s *ruleSpec, v json.RawMessage) error {
			t, err := parseString("ethertype", v, maxName)
			for _, known := range []string{trustack.IPv4, trustack.IPv6} {
				if strings.EqualFold(t, known) {
					t = known
				}
			}
			s.EtherType = t
			return err
		}},
		{name: "protocol", post: true, set: func(s *ruleSpec, v json.RawMessage) error {
			if !isNull(v) {
				s.Protocol = shown(v) // a name, or a number in JSON or in a string
			}
			return nil
		}},
		rulePort("port_range_min", func(s *ruleSpec) **int { return &s.PortMin }),
		rulePort("port_range_max", func(s *ruleSpec) **int { return &s.PortMax }),
	})

// ruleText is a string attribute of a new rule; null leaves it "".
func ruleText(name string, required bool, dst func(*ruleSpec) *string) field[ruleSpec] {
	return field[ruleSpec]{name: name, post: true, required: required, set: func(s *ruleSpec, v json.RawMessage) (err error) {
		if !isNull(v) {
			*dst(s), err = parseString(name, v, maxName)
		}
		return err
	}}
}

// rulePort is an end of a rule's port range, an integer or null.
func rulePort(name string, dst func(*ruleSpec) **int) field[ruleSpec] {
	return field[ruleSpec]{name: name, post: true, set: func(s *ruleSpec, v json.RawMessage) error {
		if isNull(v) {
			return nil
		}
		n, err := parseInt(v)
		if err != nil {
			return trustack.Reasonf(trustack.EINVALID, "SecurityGroupInvalidPortValue", "Invalid value for port %s.", shown(v))
		}
		*dst(s) = &n
		return nil
	}}
}

// securityGroupRules is the security-group-rules collection; the policy
// checks the owner of a rule's group.
func (h *handler) securityGroupRules() *collection[ruleSpec, trustack.SecurityGroupRule] {
	svc := h.svc
	return &collection[ruleSpec, trustack.SecurityGroupRule]{
		name: "security_group_rule", plural: "security_group_rules", path: "security-group-rules", fields: ruleFields,
		absent: notFound("SecurityGroupRuleNotFound", "Security group rule %s does not exist"),
		get:    svc.SecurityGroupRule, list: svc.SecurityGroupRules, create: svc.CreateSecurityGroupRule, delete: svc.DeleteSecurityGroupRule,
		relate: func(ctx context.Context, c network.Caller, _ []*trustack.SecurityGroupRule) (*related, error) {
			groups, err := svc.SecurityGroups(ctx, c)
			rel := &related{groups: map[string]*trustack.SecurityGroup{}}
			for _, g := range groups {
				rel.groups[g.ID] = g
			}
			return rel, err
		},
		render: renderRule,
		parentOf: func(r *trustack.SecurityGroupRule, rel *related) policy.Target {
			return groupParent(rel.groups[r.SecurityGroupID])
		},
		parentOfSpec: func(ctx context.Context, c network.Caller, s *ruleSpec) (policy.Target, error) {
			g, err := svc.SecurityGroup(ctx, c, s.SecurityGroupID)
			if err != nil {
				return nil, err
			}
			return groupParent(g), nil
		},
	}
}

// groupParent is what the policy checks of a rule's security group: its
// owner (security_group:tenant_id).
func groupParent(g *trustack.SecurityGroup) policy.Target {
	if g == nil {
		return nil
	}
	return policy.Target{"security_group:tenant_id": g.ProjectID, "security_group:project_id": g.ProjectID}
}

// renderRule renders a security group rule as Neutron does: null for a
// protocol, a port or a remote that is any.
func renderRule(r *trustack.SecurityGroupRule, _ *related) object {
	var portMin, portMax any
	if r.PortMin != nil {
		portMin = *r.PortMin
	}
	if r.PortMax != nil {
		portMax = *r.PortMax
	}
	return owned(object{
		"id": r.ID, "security_group_id": r.SecurityGroupID, "direction": r.Direction, "ethertype": r.EtherType,
		"protocol": textOrNil(r.Protocol), "port_range_min": portMin, "port_range_max": portMax,
		"remote_ip_prefix": textOrNil(r.RemoteIPPrefix), "remote_group_id": textOrNil(r.RemoteGroupID),
	}, r.ProjectID, r.Standard)
}
