package client

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/groups"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/rules"

	"github.com/trustack/trustack"
)

// CreateSecurityGroup creates a security group and shows it. A new group
// lets all traffic out and none in.
func (n *Networking) CreateSecurityGroup(ctx context.Context, name, description string) error {
	g, err := groups.Create(ctx, n.networking, groups.CreateOpts{Name: name, Description: description}).Extract()
	if err != nil {
		return apiError(err)
	}
	return n.show(groupRecord(g))
}

// groupRecord is what `security-group show` shows.
func groupRecord(g *groups.SecGroup) record {
	list := make([]rule, len(g.Rules))
	for i, r := range g.Rules {
		list[i] = ruleOf(r)
	}
	return record{
		{"id", g.ID},
		{"name", g.Name},
		{"description", g.Description},
		{"stateful", g.Stateful},
		{"rules", list},
		{"project_id", g.ProjectID},
		{"created_at", stamp(g.CreatedAt)},
		{"updated_at", stamp(g.UpdatedAt)},
	}
}

// findGroup returns the security group ref names, by ID or else by name.
func (n *Networking) findGroup(ctx context.Context, ref string) (*groups.SecGroup, error) {
	return find("security group", ref, func(id string) (*groups.SecGroup, error) {
		return groups.Get(ctx, n.networking, id).Extract()
	}, func(name string) ([]groups.SecGroup, error) {
		return n.groups(ctx, groups.ListOpts{Name: name})
	})
}

// groupIDs returns the IDs of the security groups refs name.
func (n *Networking) groupIDs(ctx context.Context, refs []string) ([]string, error) {
	ids := make([]string, len(refs))
	for i, ref := range refs {
		g, err := n.findGroup(ctx, ref)
		if err != nil {
			return nil, err
		}
		ids[i] = g.ID
	}
	return ids, nil
}

// groups returns the security groups the project sees that opts select.
func (n *Networking) groups(ctx context.Context, opts groups.ListOpts) ([]groups.SecGroup, error) {
	page, err := groups.List(n.networking, opts).AllPages(ctx)
	if err != nil {
		return nil, apiError(err)
	}
	list, err := groups.ExtractGroups(page)
	if err != nil {
		return nil, fmt.Errorf("read security groups: %w", err)
	}
	return list, nil
}

// ShowSecurityGroup shows the security group ref names, with its rules.
func (n *Networking) ShowSecurityGroup(ctx context.Context, ref string) error {
	g, err := n.findGroup(ctx, ref)
	if err != nil {
		return err
	}
	return n.show(groupRecord(g))
}

// ListSecurityGroups lists the project's security groups.
func (n *Networking) ListSecurityGroups(ctx context.Context) error {
	list, err := n.groups(ctx, groups.ListOpts{})
	if err != nil {
		return err
	}
	t := &table{columns: []string{"ID", "Name", "Description", "Project"}}
	for _, g := range list {
		t.add(g.ID, g.Name, g.Description, g.ProjectID)
	}
	return n.list(t)
}

// DeleteSecurityGroups deletes the security groups refs name. The network
// API refuses (ECONFLICT) to delete one that ports are in. It tries every
// group and returns the errors of those it could not delete.
func (n *Networking) DeleteSecurityGroups(ctx context.Context, refs []string) error {
	return eachOf("delete security group", refs, func(ref string) error {
		g, err := n.findGroup(ctx, ref)
		if err != nil {
			return err
		}
		return apiError(groups.Delete(ctx, n.networking, g.ID).ExtractErr())
	})
}

// RuleCreate is a request for a security group rule.
type RuleCreate struct {
	Group string // name or ID
	// Egress makes a rule for traffic out; otherwise it is for traffic in.
	Egress bool
	// EtherType is IPv4 or IPv6; "" for RemoteIP's, or IPv4.
	EtherType string
	// Protocol is a name (tcp, udp, icmp, ...) or a number; "" or "any"
	// for any.
	Protocol string
	// DstPort is a port or a range N:M; "" for any.
	DstPort string
	// RemoteIP (a CIDR) or RemoteGroup (the group's members; a name or
	// ID) is where traffic comes from or goes to; neither is anywhere.
	RemoteIP, RemoteGroup string
}

// CreateRule adds a rule to a security group and shows it. It returns
// EINVALID for a malformed port range or both a remote IP and a remote
// group, and the network API's refusals (a rule the group has already is
// ECONFLICT).
func (n *Networking) CreateRule(ctx context.Context, req RuleCreate) error {
	if req.RemoteIP != "" && req.RemoteGroup != "" {
		return trustack.Errorf(trustack.EINVALID, "give --remote-ip or --remote-group, not both")
	}
	opts := rules.CreateOpts{Direction: rules.DirIngress, EtherType: rules.RuleEtherType(req.EtherType), RemoteIPPrefix: req.RemoteIP}
	if req.Egress {
		opts.Direction = rules.DirEgress
	}
	if opts.EtherType == "" {
		opts.EtherType = rules.EtherType4
		if strings.Contains(req.RemoteIP, ":") {
			opts.EtherType = rules.EtherType6
		}
	}
	if req.Protocol != "any" {
		opts.Protocol = rules.RuleProtocol(req.Protocol)
	}
	if req.DstPort != "" {
		var err error
		if opts.PortRangeMin, opts.PortRangeMax, err = parsePortRange("--dst-port", req.DstPort); err != nil {
			return err
		}
	}
	g, err := n.findGroup(ctx, req.Group)
	if err != nil {
		return err
	}
	opts.SecGroupID = g.ID
	switch {
	case req.RemoteGroup != "":
		remote, err := n.findGroup(ctx, req.RemoteGroup)
		if err != nil {
			return err
		}
		opts.RemoteGroupID = remote.ID
	case req.RemoteIP == "" && opts.EtherType == rules.EtherType6:
		opts.RemoteIPPrefix = "::/0" // anywhere, said as the OpenStack CLI says it
	case req.RemoteIP == "":
		opts.RemoteIPPrefix = "0.0.0.0/0"
	}
	created, err := rules.Create(ctx, n.networking, opts).Extract()
	if err != nil {
		return apiError(err)
	}
	r := ruleOf(*created)
	return n.show(record{
		{"id", r.ID},
		{"security_group_id", r.GroupID},
		{"direction", r.Direction},
		{"ethertype", r.EtherType},
		{"protocol", nullable(r.Protocol)},
		{"port_range", nullable(r.PortRange)},
		{"remote_ip_prefix", nullable(r.RemoteIPPrefix)},
		{"remote_group_id", nullable(r.RemoteGroupID)},
	})
}

// parsePortRange parses a port range, N or N:M, of ports 1 to 65535, the
// first not above the last. It returns EINVALID for anything else.
func parsePortRange(flag, arg string) (lo, hi int, err error) {
	first, last, isRange := strings.Cut(arg, ":")
	if !isRange {
		last = first
	}
	lo, err1 := strconv.Atoi(first)
	hi, err2 := strconv.Atoi(last)
	switch {
	case err1 != nil || err2 != nil || lo < 1 || hi > 65535:
		return 0, 0, trustack.Errorf(trustack.EINVALID, "%s %q: want a port (1 to 65535) or a range of ports N:M", flag, arg)
	case lo > hi:
		return 0, 0, trustack.Errorf(trustack.EINVALID, "%s %q: the first port is above the last", flag, arg)
	}
	return lo, hi, nil
}

// rule is a security group rule as the commands show it: in a table one
// line, "ingress IPv4 tcp 22:22 from 0.0.0.0/0 (ID)", in JSON an object
// without the attributes that are any.
type rule struct {
	ID             string `json:"id"`
	GroupID        string `json:"security_group_id"`
	Direction      string `json:"direction"`
	EtherType      string `json:"ethertype"`
	Protocol       string `json:"protocol,omitempty"`
	PortRange      string `json:"port_range,omitempty"`
	RemoteIPPrefix string `json:"remote_ip_prefix,omitempty"`
	RemoteGroupID  string `json:"remote_group_id,omitempty"`
}

func ruleOf(r rules.SecGroupRule) rule {
	out := rule{ID: r.ID, GroupID: r.SecGroupID, Direction: r.Direction, EtherType: r.EtherType, Protocol: r.Protocol,
		RemoteIPPrefix: r.RemoteIPPrefix, RemoteGroupID: r.RemoteGroupID}
	if r.PortRangeMin != 0 || r.PortRangeMax != 0 {
		out.PortRange = fmt.Sprintf("%d:%d", r.PortRangeMin, r.PortRangeMax)
	}
	return out
}

func (r rule) String() string {
	parts := []string{r.Direction, r.EtherType, or(r.Protocol, "any")}
	if r.PortRange != "" {
		parts = append(parts, r.PortRange)
	}
	way := "from"
	if r.Direction == string(rules.DirEgress) {
		way = "to"
	}
	switch {
	case r.RemoteGroupID != "":
		parts = append(parts, way, "group", r.RemoteGroupID)
	case r.RemoteIPPrefix != "":
		parts = append(parts, way, r.RemoteIPPrefix)
	default:
		parts = append(parts, way, "anywhere")
	}
	return strings.Join(parts, " ") + " (" + r.ID + ")"
}

// ListRules lists the rules of the security group named, or of all the
// project's groups if group is empty.
func (n *Networking) ListRules(ctx context.Context, group string) error {
	var opts rules.ListOpts
	if group != "" {
		g, err := n.findGroup(ctx, group)
		if err != nil {
			return err
		}
		opts.SecGroupID = g.ID
	}
	page, err := rules.List(n.networking, opts).AllPages(ctx)
	if err != nil {
		return apiError(err)
	}
	list, err := rules.ExtractRules(page)
	if err != nil {
		return fmt.Errorf("read security group rules: %w", err)
	}
	t := &table{columns: []string{"ID", "Direction", "Ethertype", "IP Protocol", "Port Range", "IP Range", "Remote Security Group", "Security Group"}}
	for _, sr := range list {
		r := ruleOf(sr)
		t.add(r.ID, r.Direction, r.EtherType, or(r.Protocol, "any"), r.PortRange, r.RemoteIPPrefix, r.RemoteGroupID, r.GroupID)
	}
	return n.list(t)
}

// DeleteRules deletes the security group rules with those IDs. It tries
// every rule and returns the errors of those it could not delete.
func (n *Networking) DeleteRules(ctx context.Context, ids []string) error {
	return eachOf("delete security group rule", ids, func(id string) error {
		return apiError(rules.Delete(ctx, n.networking, id).ExtractErr())
	})
}
