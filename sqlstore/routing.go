package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/trustack/trustack"
)

// Security groups, routers, floating IPs and networking quotas; the order
// in which their transactions hold rows is in network.go.

var (
	securityGroups = &table[trustack.SecurityGroup]{
		name: "security_groups", kind: "security group", order: "created_at, id",
		columns: []string{"id", "name", "project_id", "description", "stateful", "tags", "created_at", "updated_at", "revision"},
		fields: func(g *trustack.SecurityGroup) []any {
			return []any{&g.ID, &g.Name, &g.ProjectID, &g.Description, &g.Stateful, stringsColumn(&g.Tags),
				timeColumn{&g.CreatedAt}, timeColumn{&g.UpdatedAt}, &g.Revision}
		},
		missing: securityGroupNotFound,
	}
	securityGroupRules = &table[trustack.SecurityGroupRule]{
		name: "security_group_rules", kind: "security group rule", order: "created_at, id",
		columns: []string{"id", "security_group_id", "project_id", "direction", "ethertype", "protocol", "port_min", "port_max",
			"remote_ip_prefix", "remote_group_id", "description", "created_at", "updated_at", "revision"},
		fields: func(r *trustack.SecurityGroupRule) []any {
			return []any{&r.ID, &r.SecurityGroupID, &r.ProjectID, &r.Direction, &r.EtherType, &r.Protocol, portColumn{&r.PortMin}, portColumn{&r.PortMax},
				&r.RemoteIPPrefix, &r.RemoteGroupID, &r.Description, timeColumn{&r.CreatedAt}, timeColumn{&r.UpdatedAt}, &r.Revision}
		},
		missing: func(id string) error {
			return trustack.Reasonf(trustack.ENOTFOUND, "SecurityGroupRuleNotFound", "Security group rule %s does not exist", id)
		},
	}
	routers = &table[trustack.Router]{
		name: "routers", kind: "router", order: "created_at, id",
		columns: []string{"id", "name", "project_id", "description", "admin_state_up", "status", "gw_network_id", "enable_snat", "routes",
			"tags", "created_at", "updated_at", "revision"},
		fields: func(r *trustack.Router) []any {
			return []any{&r.ID, &r.Name, &r.ProjectID, &r.Description, &r.AdminStateUp, &r.Status, gatewayColumn{&r.Gateway}, snatColumn{&r.Gateway},
				routesColumn(&r.Routes), stringsColumn(&r.Tags), timeColumn{&r.CreatedAt}, timeColumn{&r.UpdatedAt}, &r.Revision}
		},
		missing: routerNotFound,
	}
	floatingIPs = &table[floatingIPRow]{
		name: "floating_ips", kind: "floating IP", order: "created_at, id",
		columns: []string{"id", "project_id", "description", "floating_network_id", "floating_port_id", "floating_ip_address", "port_id",
			"fixed_ip_address", "router_id", "status", "tags", "created_at", "updated_at", "revision"},
		fields: func(f *floatingIPRow) []any {
			return []any{&f.ID, &f.ProjectID, &f.Description, &f.NetworkID, &f.floatingPort, addrColumn(&f.Address), nullColumn{&f.PortID},
				addrColumn(&f.FixedAddress), &f.RouterID, &f.Status, stringsColumn(&f.Tags), timeColumn{&f.CreatedAt}, timeColumn{&f.UpdatedAt}, &f.Revision}
		},
		missing: func(id string) error {
			return trustack.Reasonf(trustack.ENOTFOUND, "FloatingIPNotFound", "Floating IP %s could not be found", id)
		},
	}
)

func securityGroupNotFound(id string) error {
	return trustack.Reasonf(trustack.ENOTFOUND, "SecurityGroupNotFound", "Security group %s does not exist", id)
}

func routerNotFound(id string) error {
	return trustack.Reasonf(trustack.ENOTFOUND, "RouterNotFound", "Router %s could not be found", id)
}

// floatingIPRow is a floating IP with the port that holds its address.
type floatingIPRow struct {
	trustack.FloatingIP
	floatingPort string
}

// portColumn stores a rule's port bound, nil as -1.
type portColumn struct{ p **int }

func (c portColumn) Value() (driver.Value, error) { return int64(portValue(*c.p)), nil }

func (c portColumn) Scan(src any) error {
	var n sql.NullInt64
	if err := n.Scan(src); err != nil {
		return err
	}
	*c.p = nil
	if n.Valid && n.Int64 >= 0 {
		v := int(n.Int64)
		*c.p = &v
	}
	return nil
}

func portValue(p *int) int {
	if p == nil {
		return -1
	}
	return *p
}

// gatewayColumn is a router's gw_network_id, empty for no gateway; read, it
// makes the gateway.
type gatewayColumn struct{ p **trustack.RouterGateway }

func (c gatewayColumn) Value() (driver.Value, error) {
	if *c.p == nil {
		return "", nil
	}
	return (*c.p).NetworkID, nil
}

func (c gatewayColumn) Scan(src any) error {
	s, err := text(src)
	if err != nil {
		return err
	}
	*c.p = nil
	if s != "" {
		*c.p = &trustack.RouterGateway{NetworkID: s}
	}
	return nil
}

// snatColumn is a router's enable_snat, false without a gateway. It is
// read after gw_network_id, which makes the gateway it sets.
type snatColumn struct{ p **trustack.RouterGateway }

func (c snatColumn) Value() (driver.Value, error) { return *c.p != nil && (*c.p).EnableSNAT, nil }

func (c snatColumn) Scan(src any) error {
	var b sql.NullBool
	if err := b.Scan(src); err != nil {
		return err
	}
	if *c.p != nil {
		(*c.p).EnableSNAT = b.Bool
	}
	return nil
}

// reviseNow moves the row id of table to its next revision, changed now
// by the store.
func (db *DB) reviseNow(ctx context.Context, q querier, table, id string) error {
	if _, err := q.ExecContext(ctx, `UPDATE `+table+` SET revision = revision + 1, updated_at = $1 WHERE id = $2`, db.Now().UnixMicro(), id); err != nil {
		return fmt.Errorf("revise %s %s: %w", table, id, err)
	}
	return nil
}

// Security groups.

// CreateSecurityGroup adds a group with its rules, if its project has
// fewer than limit groups (-1 for no limit; EOVERQUOTA, OverQuota,
// beyond). A default group (isDefault) is its project's only one:
// ECONFLICT if the project has its default group already. ECONFLICT
// (SecurityGroupRuleExists) if two rules are the same.
func (db *DB) CreateSecurityGroup(ctx context.Context, g *trustack.SecurityGroup, isDefault bool, limit int) error {
	return db.inProjectTx(ctx, g.ProjectID, func(q querier) error {
		if err := checkQuota(ctx, db, q, g.ProjectID, trustack.QuotaSecurityGroup, limit, 1); err != nil {
			return err
		}
		firstRevision(&g.Standard)
		added, err := securityGroups.tryAdd(ctx, q, g)
		if err != nil {
			return fmt.Errorf("create security group: %w", conflict("security group", err))
		}
		if !added {
			return trustack.Errorf(trustack.ECONFLICT, "Security group %s already exists.", g.ID)
		}
		if isDefault {
			// The partial unique index keeps one default a project, also
			// against a concurrent creation.
			if _, err := q.ExecContext(ctx, `UPDATE security_groups SET is_default = TRUE WHERE id = $1`, g.ID); err != nil {
				if isConstraint(translate(err), true) {
					return trustack.Errorf(trustack.ECONFLICT, "Project %s has its default security group already.", g.ProjectID)
				}
				return fmt.Errorf("create security group: %w", err)
			}
		}
		for i := range g.Rules {
			r := &g.Rules[i]
			r.SecurityGroupID = g.ID
			if err := addRule(ctx, q, r); err != nil {
				return err
			}
		}
		sortRules(g.Rules)
		return nil
	})
}

// addRule adds a rule to its group: ECONFLICT (SecurityGroupRuleExists)
// if the group has the same rule.
func addRule(ctx context.Context, q querier, r *trustack.SecurityGroupRule) error {
	firstRevision(&r.Standard)
	added, err := securityGroupRules.tryAdd(ctx, q, r)
	if err != nil {
		return fmt.Errorf("create security group rule: %w", conflict("security group rule", err))
	}
	if added {
		return nil
	}
	same, err := column(ctx, q, `SELECT id FROM security_group_rules WHERE security_group_id = $1 AND direction = $2 AND ethertype = $3
		AND protocol = $4 AND port_min = $5 AND port_max = $6 AND remote_ip_prefix = $7 AND remote_group_id = $8`,
		r.SecurityGroupID, r.Direction, r.EtherType, r.Protocol, portValue(r.PortMin), portValue(r.PortMax), r.RemoteIPPrefix, r.RemoteGroupID)
	if err != nil {
		return fmt.Errorf("create security group rule: %w", err)
	}
	if len(same) > 0 {
		return trustack.Reasonf(trustack.ECONFLICT, "SecurityGroupRuleExists", "Security group rule already exists. Rule id is %s.", same[0])
	}
	return trustack.Errorf(trustack.ECONFLICT, "Security group rule %s already exists.", r.ID)
}

// sortRules orders a group's rules as lists are: oldest first.
func sortRules(rules []trustack.SecurityGroupRule) {
	sortByAge(rules, func(r trustack.SecurityGroupRule) (time.Time, string) { return r.CreatedAt, r.ID })
}

// SecurityGroup returns a group with its rules, oldest first; ENOTFOUND
// (SecurityGroupNotFound).
func (db *DB) SecurityGroup(ctx context.Context, id string) (*trustack.SecurityGroup, error) {
	return getSecurityGroup(ctx, db.read, id, "")
}

// getSecurityGroup reads a group, its row with suffix (such as FOR
// UPDATE), and its rules.
func getSecurityGroup(ctx context.Context, q querier, id, suffix string) (*trustack.SecurityGroup, error) {
	g, err := securityGroups.getSQL(ctx, q, id, suffix)
	if err != nil {
		return nil, err
	}
	var w where
	w.add("id = ?", id)
	return g, addRules(ctx, q, []*trustack.SecurityGroup{g}, w)
}

// SecurityGroups returns groups, oldest first with their rules, of a
// project ("" for every project's) or those of ids (nil for any).
func (db *DB) SecurityGroups(ctx context.Context, projectID string, ids []string) ([]*trustack.SecurityGroup, error) {
	var w where
	w.eq("project_id", projectID)
	w.in("id", ids)
	return listSecurityGroups(ctx, db.read, w)
}

// SecurityGroupMembers returns, by group, the addresses of the ports in
// each group: their fixed IPs, and the addresses (or blocks) of their
// allowed address pairs, without reading the ports whole.
func (db *DB) SecurityGroupMembers(ctx context.Context, groupIDs []string) (map[string][]string, error) {
	out := map[string][]string{}
	if len(groupIDs) == 0 {
		return out, nil
	}
	var w where
	w.in("m.security_group_id", groupIDs)
	err := eachRow(ctx, db.read, `SELECT m.security_group_id, a.ip_address FROM port_security_groups m
		JOIN ip_allocations a ON a.port_id = m.port_id`+w.sql()+` ORDER BY m.security_group_id, a.ip_address`, w.args,
		func(scan func(...any) error) error {
			var group, addr string
			if err := scan(&group, &addr); err != nil {
				return err
			}
			out[group] = append(out[group], addr)
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("list the members of security groups: %w", err)
	}
	w.add("p.allowed_address_pairs <> '[]'")
	err = eachRow(ctx, db.read, `SELECT m.security_group_id, p.allowed_address_pairs FROM port_security_groups m
		JOIN ports p ON p.id = m.port_id`+w.sql(), w.args, func(scan func(...any) error) error {
		var group string
		var pairs []trustack.AddressPair
		if err := scan(&group, pairsColumn(&pairs)); err != nil {
			return err
		}
		for _, pair := range pairs {
			out[group] = append(out[group], pair.IPAddress)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list the address pairs of security groups: %w", err)
	}
	return out, nil
}

// SecurityGroupHosts returns, by group, the hosts the ports in each group
// are bound to, each once.
func (db *DB) SecurityGroupHosts(ctx context.Context, groupIDs []string) (map[string][]string, error) {
	out := map[string][]string{}
	if len(groupIDs) == 0 {
		return out, nil
	}
	var w where
	w.in("m.security_group_id", groupIDs)
	w.add("p.host_id <> ''")
	err := eachRow(ctx, db.read, `SELECT DISTINCT m.security_group_id, p.host_id FROM port_security_groups m
		JOIN ports p ON p.id = m.port_id`+w.sql()+` ORDER BY m.security_group_id, p.host_id`, w.args,
		func(scan func(...any) error) error {
			var group, host string
			if err := scan(&group, &host); err != nil {
				return err
			}
			out[group] = append(out[group], host)
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("list the hosts of security groups: %w", err)
	}
	return out, nil
}

func listSecurityGroups(ctx context.Context, q querier, w where) ([]*trustack.SecurityGroup, error) {
	list, err := securityGroups.list(ctx, q, w)
	if err != nil {
		return nil, err
	}
	sortByAge(list, func(g *trustack.SecurityGroup) (time.Time, string) { return g.CreatedAt, g.ID })
	return list, addRules(ctx, q, list, w)
}

// addRules adds their rules to the groups of list, which are those
// matching w.
func addRules(ctx context.Context, q querier, list []*trustack.SecurityGroup, w where) error {
	if len(list) == 0 {
		return nil
	}
	byID := make(map[string]*trustack.SecurityGroup, len(list))
	for _, g := range list {
		byID[g.ID] = g
	}
	var in where
	in.conds = []string{"security_group_id IN (SELECT id FROM security_groups" + w.sql() + ")"}
	in.args = w.args
	rules, err := securityGroupRules.list(ctx, q, in)
	if err != nil {
		return err
	}
	for _, r := range rules {
		if g := byID[r.SecurityGroupID]; g != nil {
			g.Rules = append(g.Rules, *r)
		}
	}
	for _, g := range list {
		sortRules(g.Rules)
	}
	return nil
}

// DefaultSecurityGroupID returns the ID of a project's default group, or
// ENOTFOUND (SecurityGroupNotFound) if it has none yet.
func (db *DB) DefaultSecurityGroupID(ctx context.Context, projectID string) (string, error) {
	ids, err := column(ctx, db.read, `SELECT id FROM security_groups WHERE project_id = $1 AND is_default = $2`, projectID, true)
	if err != nil {
		return "", fmt.Errorf("find the default security group of %s: %w", projectID, err)
	}
	if len(ids) == 0 {
		return "", trustack.Reasonf(trustack.ENOTFOUND, "SecurityGroupNotFound", "Project %s has no default security group yet.", projectID)
	}
	return ids[0], nil
}

// UpdateSecurityGroup reads a group, lets fn change it and writes it back
// with its next revision, in one transaction; an error from fn changes
// nothing. What fn does to the rules is ignored: rules change through
// their own methods. ENOTFOUND (SecurityGroupNotFound), EINVALID if fn
// changed the ID.
func (db *DB) UpdateSecurityGroup(ctx context.Context, id string, fn func(*trustack.SecurityGroup) error) (*trustack.SecurityGroup, error) {
	var g *trustack.SecurityGroup
	err := db.inTx(ctx, func(q querier) error {
		var err error
		if g, err = getSecurityGroup(ctx, q, id, db.lockRow()); err != nil {
			return err
		}
		revision, rules := g.Revision, slices.Clone(g.Rules)
		if err := fn(g); err != nil {
			return err
		}
		g.Revision, g.Rules = revision+1, rules
		return securityGroups.put(ctx, q, id, g)
	})
	if err != nil {
		return nil, err
	}
	return g, nil
}

// DeleteSecurityGroup deletes a group and its rules, and the rules of
// other groups that name it as their remote group (as Neutron's cascade
// does; those groups move to their next revision). ENOTFOUND
// (SecurityGroupNotFound), ECONFLICT (SecurityGroupInUse) while a port is
// in it.
func (db *DB) DeleteSecurityGroup(ctx context.Context, id string) error {
	return db.inTx(ctx, func(q querier) error {
		if _, err := securityGroups.getSQL(ctx, q, id, db.lockRow()); err != nil {
			return err
		}
		used, err := exists(ctx, q, `SELECT COUNT(*) FROM port_security_groups WHERE security_group_id = $1`, id)
		if err != nil {
			return fmt.Errorf("delete security group %s: %w", id, err)
		}
		if used {
			return trustack.Reasonf(trustack.ECONFLICT, "SecurityGroupInUse", "Security Group %s in use.", id)
		}
		others, err := column(ctx, q, `SELECT DISTINCT security_group_id FROM security_group_rules WHERE remote_group_id = $1 AND security_group_id <> $1`, id)
		if err != nil {
			return fmt.Errorf("delete security group %s: %w", id, err)
		}
		for _, other := range others {
			if err := db.reviseNow(ctx, q, "security_groups", other); err != nil {
				return err
			}
		}
		if _, err := q.ExecContext(ctx, `DELETE FROM security_group_rules WHERE remote_group_id = $1 OR security_group_id = $1`, id); err != nil {
			return fmt.Errorf("delete security group %s: %w", id, err)
		}
		return securityGroups.delete(ctx, q, id)
	})
}

// CreateSecurityGroupRule adds a rule to its group, which moves to its
// next revision: ENOTFOUND (SecurityGroupNotFound) for a missing group,
// ECONFLICT (SecurityGroupRuleExists) if the group has the same rule,
// EOVERQUOTA (OverQuota) if the rule's project has limit rules (-1 for no
// limit).
func (db *DB) CreateSecurityGroupRule(ctx context.Context, r *trustack.SecurityGroupRule, limit int) error {
	return db.inProjectTx(ctx, r.ProjectID, func(q querier) error {
		if err := checkQuota(ctx, db, q, r.ProjectID, trustack.QuotaSecurityGroupRule, limit, 1); err != nil {
			return err
		}
		if _, err := securityGroups.getSQL(ctx, q, r.SecurityGroupID, db.lockRow()); err != nil {
			return err
		}
		if err := addRule(ctx, q, r); err != nil {
			return err
		}
		return db.reviseNow(ctx, q, "security_groups", r.SecurityGroupID)
	})
}

// SecurityGroupRule returns a rule; ENOTFOUND (SecurityGroupRuleNotFound).
func (db *DB) SecurityGroupRule(ctx context.Context, id string) (*trustack.SecurityGroupRule, error) {
	return securityGroupRules.get(ctx, db.read, id)
}

// DeleteSecurityGroupRule deletes a rule and moves its group to its next
// revision; ENOTFOUND (SecurityGroupRuleNotFound).
func (db *DB) DeleteSecurityGroupRule(ctx context.Context, id string) error {
	return db.inTx(ctx, func(q querier) error {
		r, err := securityGroupRules.get(ctx, q, id)
		if err != nil {
			return err
		}
		if _, err := securityGroups.getSQL(ctx, q, r.SecurityGroupID, db.lockRow()); err != nil {
			return err
		}
		if err := securityGroupRules.delete(ctx, q, id); err != nil {
			return err
		}
		return db.reviseNow(ctx, q, "security_groups", r.SecurityGroupID)
	})
}

// Routers.

// CreateRouter adds a router if its project has fewer than limit routers
// (-1 for no limit; EOVERQUOTA, OverQuota, beyond); with a gateway, its
// gateway port too, allocated as CreatePort allocates (the router's
// gateway gets the port's fixed IPs). EINVALID if the router has a
// gateway and no port is given for it, or the other way round.
func (db *DB) CreateRouter(ctx context.Context, r *trustack.Router, gateway *trustack.Port, alloc trustack.Allocator, limit int) error {
	return db.inProjectTx(ctx, r.ProjectID, func(q querier) error {
		if err := checkQuota(ctx, db, q, r.ProjectID, trustack.QuotaRouter, limit, 1); err != nil {
			return err
		}
		firstRevision(&r.Standard)
		if err := routers.insert(ctx, q, r); err != nil {
			return err
		}
		return db.addGateway(ctx, q, r, gateway, alloc)
	})
}

// addGateway adds the gateway port of r, which has none: gateway, which
// must be given if and only if r has a gateway, on its network.
func (db *DB) addGateway(ctx context.Context, q querier, r *trustack.Router, gateway *trustack.Port, alloc trustack.Allocator) error {
	switch {
	case r.Gateway == nil && gateway == nil:
		return nil
	case r.Gateway == nil || gateway == nil:
		return trustack.Reasonf(trustack.EINVALID, "BadRequest", "Bad router request: the gateway of router %s and its port go together.", r.ID)
	case gateway.NetworkID != r.Gateway.NetworkID:
		return trustack.Reasonf(trustack.EINVALID, "BadRequest", "Bad router request: the gateway port of router %s is not on its gateway's network %s.", r.ID, r.Gateway.NetworkID)
	}
	gateway.DeviceID, gateway.DeviceOwner = r.ID, trustack.OwnerRouterGateway
	if err := db.createPort(ctx, q, gateway, alloc); err != nil {
		return err
	}
	r.Gateway.FixedIPs = slices.Clone(gateway.FixedIPs)
	return nil
}

// Router returns a router with its gateway's fixed IPs; ENOTFOUND
// (RouterNotFound).
func (db *DB) Router(ctx context.Context, id string) (*trustack.Router, error) {
	return getRouter(ctx, db.read, id, "")
}

// getRouter reads a router, its row with suffix (such as FOR UPDATE), and
// its gateway's fixed IPs.
func getRouter(ctx context.Context, q querier, id, suffix string) (*trustack.Router, error) {
	r, err := routers.getSQL(ctx, q, id, suffix)
	if err != nil {
		return nil, err
	}
	var w where
	w.add("id = ?", id)
	return r, gatewayIPs(ctx, q, []*trustack.Router{r}, w)
}

// Routers returns the routers, oldest first, of a project ("" for every
// project's) or those of ids (nil for any).
func (db *DB) Routers(ctx context.Context, projectID string, ids []string) ([]*trustack.Router, error) {
	var w where
	w.eq("project_id", projectID)
	w.in("id", ids)
	list, err := routers.list(ctx, db.read, w)
	if err != nil {
		return nil, err
	}
	sortByAge(list, func(r *trustack.Router) (time.Time, string) { return r.CreatedAt, r.ID })
	return list, gatewayIPs(ctx, db.read, list, w)
}

// gatewayIPs adds the fixed IPs of their gateway ports to the routers of
// list, which are those matching w.
func gatewayIPs(ctx context.Context, q querier, list []*trustack.Router, w where) error {
	byID := make(map[string]*trustack.Router, len(list))
	for _, r := range list {
		if r.Gateway != nil {
			byID[r.ID] = r
		}
	}
	if len(byID) == 0 {
		return nil
	}
	err := eachRow(ctx, q, `SELECT p.device_id, a.subnet_id, a.ip_address FROM ip_allocations a JOIN ports p ON p.id = a.port_id
		WHERE p.device_owner = '`+trustack.OwnerRouterGateway+`' AND p.device_id IN (SELECT id FROM routers`+w.sql()+`)
		ORDER BY p.device_id, a.position`, w.args, func(scan func(...any) error) error {
		var router string
		var f trustack.FixedIP
		if err := scan(&router, &f.SubnetID, addrColumn(&f.Address)); err != nil {
			return err
		}
		if r := byID[router]; r != nil {
			r.Gateway.FixedIPs = append(r.Gateway.FixedIPs, f)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read routers' gateways: %w", err)
	}
	return nil
}

// UpdateRouter reads a router, lets fn change it and writes it back with
// its next revision, in one transaction; an error from fn changes
// nothing. When fn changes the gateway (adds or removes it, or changes
// its network or fixed IPs; its SNAT alone is no change), the gateway
// port is replaced by gateway, allocated as CreatePort allocates; gateway
// is ignored otherwise. ECONFLICT (RouterExternalGatewayInUseByFloatingIp)
// if a floating IP goes through the gateway being removed or moved to
// another network. ENOTFOUND (RouterNotFound); EINVALID if fn changed the
// ID, or as CreateRouter for the gateway.
func (db *DB) UpdateRouter(ctx context.Context, id string, gateway *trustack.Port, alloc trustack.Allocator, fn func(*trustack.Router) error) (*trustack.Router, error) {
	var r *trustack.Router
	err := db.inTx(ctx, func(q querier) error {
		var err error
		if r, err = getRouter(ctx, q, id, db.lockRow()); err != nil {
			return err
		}
		revision, was := r.Revision, cloneGateway(r.Gateway)
		if err := fn(r); err != nil {
			return err
		}
		r.Revision = revision + 1
		if r.ID != id {
			return trustack.Errorf(trustack.EINVALID, "The router ID cannot be changed.")
		}
		if gatewayChanged(was, r.Gateway) {
			if was != nil {
				if r.Gateway == nil || r.Gateway.NetworkID != was.NetworkID {
					used, err := exists(ctx, q, `SELECT COUNT(*) FROM floating_ips WHERE router_id = $1 AND floating_network_id = $2`, id, was.NetworkID)
					if err != nil {
						return fmt.Errorf("update router %s: %w", id, err)
					}
					if used {
						return trustack.Reasonf(trustack.ECONFLICT, "RouterExternalGatewayInUseByFloatingIp",
							"Gateway cannot be updated for router %s, since a gateway to external network %s is required by one or more floating IPs.", id, was.NetworkID)
					}
				}
				var w where
				w.add("device_id = ? AND device_owner = ?", id, trustack.OwnerRouterGateway)
				if err := db.deletePorts(ctx, q, w); err != nil {
					return fmt.Errorf("update router %s: %w", id, err)
				}
			}
			if r.Gateway != nil {
				r.Gateway.FixedIPs = nil
			}
			if err := db.addGateway(ctx, q, r, gateway, alloc); err != nil {
				return err
			}
		}
		return routers.put(ctx, q, id, r)
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

func cloneGateway(g *trustack.RouterGateway) *trustack.RouterGateway {
	if g == nil {
		return nil
	}
	c := *g
	c.FixedIPs = slices.Clone(g.FixedIPs)
	return &c
}

// gatewayChanged reports whether a router's gateway b is another than a:
// added or removed, or of another network or fixed IPs.
func gatewayChanged(a, b *trustack.RouterGateway) bool {
	if a == nil || b == nil {
		return a != b
	}
	return a.NetworkID != b.NetworkID || !slices.Equal(a.FixedIPs, b.FixedIPs)
}

// DeleteRouter deletes a router and its gateway port; ENOTFOUND
// (RouterNotFound), ECONFLICT (RouterInUse) while it has interfaces.
func (db *DB) DeleteRouter(ctx context.Context, id string) error {
	return db.inTx(ctx, func(q querier) error {
		if _, err := routers.getSQL(ctx, q, id, db.lockRow()); err != nil {
			return err
		}
		used, err := exists(ctx, q, `SELECT COUNT(*) FROM ports WHERE device_id = $1 AND device_owner = $2`, id, trustack.OwnerRouterInterface)
		if err != nil {
			return fmt.Errorf("delete router %s: %w", id, err)
		}
		if used {
			return trustack.Reasonf(trustack.ECONFLICT, "RouterInUse", "Router %s still has ports", id)
		}
		var w where
		w.add("device_id = ? AND device_owner = ?", id, trustack.OwnerRouterGateway)
		if err := db.deletePorts(ctx, q, w); err != nil {
			return fmt.Errorf("delete router %s: %w", id, err)
		}
		return routers.delete(ctx, q, id)
	})
}

// AddRouterInterface gives a router an interface, and the router its next
// revision. The interface is p: a new port, allocated as CreatePort
// allocates, when its ID is not stored yet (its fixed IPs must name their
// subnets), or else the stored port, which no device may own (ECONFLICT
// PortInUse) and which must have an address (EINVALID BadRequest), taken
// over: owned by the router, and out of its security groups, which do not
// filter a router's interfaces. p is set to the port as stored.
// EINVALID (BadRequest) if the port's subnet overlaps a subnet the router
// has an interface on already, or is that subnet. ENOTFOUND
// (RouterNotFound) for a missing router. The router's row is held while
// its interfaces are compared.
func (db *DB) AddRouterInterface(ctx context.Context, routerID string, p *trustack.Port, alloc trustack.Allocator) error {
	return db.inTx(ctx, func(q querier) error {
		if _, err := routers.getSQL(ctx, q, routerID, db.lockRow()); err != nil {
			return err
		}
		stored, err := getPort(ctx, q, p.ID, db.lockRow())
		switch {
		case trustack.ErrorCode(err) == trustack.ENOTFOUND:
			stored = nil
		case err != nil:
			return err
		case stored.DeviceID != "" || stored.DeviceOwner != "":
			return trustack.Reasonf(trustack.ECONFLICT, "PortInUse", "Unable to complete operation on port %s for network %s. Port already has an attached device %s.",
				stored.ID, stored.NetworkID, stored.DeviceID)
		}
		fixed := p.FixedIPs
		if stored != nil {
			fixed = stored.FixedIPs
		}
		if len(fixed) == 0 || slices.ContainsFunc(fixed, func(f trustack.FixedIP) bool { return f.SubnetID == "" }) {
			return trustack.Reasonf(trustack.EINVALID, "BadRequest", "Bad router request: Router port must have at least one fixed IP, each on a named subnet.")
		}
		if err := checkInterfaces(ctx, q, routerID, fixed); err != nil {
			return err
		}
		if stored == nil {
			p.DeviceID, p.DeviceOwner = routerID, trustack.OwnerRouterInterface
			if err := db.createPort(ctx, q, p, alloc); err != nil {
				return err
			}
		} else {
			had := stored.SecurityGroups
			stored.DeviceID, stored.DeviceOwner, stored.SecurityGroups = routerID, trustack.OwnerRouterInterface, nil
			stored.Revision++
			stored.UpdatedAt = db.Now().UTC().Truncate(time.Microsecond)
			if err := ports.put(ctx, q, stored.ID, stored); err != nil {
				return err
			}
			if err := setGroups(ctx, q, stored, had); err != nil {
				return err
			}
			*p = *stored
		}
		return db.reviseNow(ctx, q, "routers", routerID)
	})
}

// checkInterfaces returns EINVALID (BadRequest) if a subnet of fixed
// overlaps one the router has an interface on, or is one.
func checkInterfaces(ctx context.Context, q querier, routerID string, fixed []trustack.FixedIP) error {
	var mine, theirs where
	ids := make([]string, len(fixed))
	for i, f := range fixed {
		ids[i] = f.SubnetID
	}
	mine.in("id", ids)
	theirs.add("id IN (SELECT subnet_id FROM ip_allocations WHERE port_id IN (SELECT id FROM ports WHERE device_id = ? AND device_owner = ?))",
		routerID, trustack.OwnerRouterInterface)
	adding, err := subnets.list(ctx, q, mine)
	if err != nil {
		return err
	}
	has, err := subnets.list(ctx, q, theirs)
	if err != nil {
		return err
	}
	for _, a := range adding {
		for _, h := range has {
			if a.ID == h.ID {
				return trustack.Reasonf(trustack.EINVALID, "BadRequest", "Bad router request: Router already has a port on subnet %s.", a.ID)
			}
			if a.CIDR.Overlaps(h.CIDR) {
				return trustack.Reasonf(trustack.EINVALID, "BadRequest", "Bad router request: Cidr %s of subnet %s overlaps with cidr %s of subnet %s.",
					a.CIDR, a.ID, h.CIDR, h.ID)
			}
		}
	}
	return nil
}

// RemoveRouterInterface deletes a router's interface port, and moves the
// router to its next revision; ENOTFOUND (RouterNotFound, or
// RouterInterfaceNotFound for a port that is not one of its interfaces),
// ECONFLICT (RouterInterfaceInUseByFloatingIP) while a floating IP reaches
// a port of its subnet through the router.
func (db *DB) RemoveRouterInterface(ctx context.Context, routerID, portID string) error {
	return db.inTx(ctx, func(q querier) error {
		if _, err := routers.getSQL(ctx, q, routerID, db.lockRow()); err != nil {
			return err
		}
		p, err := getPort(ctx, q, portID, db.lockRow())
		switch {
		case trustack.ErrorCode(err) == trustack.ENOTFOUND:
			p = nil
		case err != nil:
			return err
		}
		if p == nil || p.DeviceID != routerID || p.DeviceOwner != trustack.OwnerRouterInterface {
			return trustack.Reasonf(trustack.ENOTFOUND, "RouterInterfaceNotFound", "Router %s does not have an interface with id %s", routerID, portID)
		}
		for _, f := range p.FixedIPs {
			used, err := exists(ctx, q, `SELECT COUNT(*) FROM floating_ips fip JOIN ip_allocations a ON a.port_id = fip.port_id AND a.ip_address = fip.fixed_ip_address
				WHERE fip.router_id = $1 AND a.subnet_id = $2`, routerID, f.SubnetID)
			if err != nil {
				return fmt.Errorf("remove interface %s of router %s: %w", portID, routerID, err)
			}
			if used {
				return trustack.Reasonf(trustack.ECONFLICT, "RouterInterfaceInUseByFloatingIP",
					"Router interface for subnet %s on router %s cannot be deleted, as it is required by one or more floating IPs.", f.SubnetID, routerID)
			}
		}
		var w where
		w.add("id = ?", portID)
		if err := db.deletePorts(ctx, q, w); err != nil {
			return fmt.Errorf("remove interface %s of router %s: %w", portID, routerID, err)
		}
		return db.reviseNow(ctx, q, "routers", routerID)
	})
}

// Floating IPs.

// CreateFloatingIP adds a floating IP with port, the port on its external
// network that holds its address, allocated as CreatePort allocates
// (ECONFLICT IpAddressGenerationFailure when its subnet has no address
// left); the floating IP's address is the port's first, and a port
// without fixed IPs is EINVALID (BadRequest). EOVERQUOTA
// (OverQuota) if the project has limit floating IPs (-1 for no limit).
// An associated one must have a fixed address of its port (ENOTFOUND
// PortNotFound, EINVALID BadRequest) that no other floating IP has
// (ECONFLICT FloatingIPPortAlreadyAssociated).
func (db *DB) CreateFloatingIP(ctx context.Context, f *trustack.FloatingIP, port *trustack.Port, alloc trustack.Allocator, limit int) error {
	return db.inProjectTx(ctx, f.ProjectID, func(q querier) error {
		if err := checkQuota(ctx, db, q, f.ProjectID, trustack.QuotaFloatingIP, limit, 1); err != nil {
			return err
		}
		if f.PortID != "" {
			// Held before the new port's network: ports come first in the
			// order of locks.
			if err := holdRow(ctx, q, `SELECT id FROM ports WHERE id = $1`+db.shareRow(), f.PortID, portNotFound(f.PortID)); err != nil {
				return err
			}
		}
		if port.NetworkID != f.NetworkID {
			return trustack.Reasonf(trustack.EINVALID, "BadRequest", "The port of floating IP %s is not on its network %s.", f.ID, f.NetworkID)
		}
		if len(port.FixedIPs) == 0 {
			return trustack.Reasonf(trustack.EINVALID, "BadRequest", "The port of floating IP %s has no fixed IP to hold its address.", f.ID)
		}
		port.DeviceID, port.DeviceOwner = f.ID, trustack.OwnerFloatingIP
		if err := db.createPort(ctx, q, port, alloc); err != nil {
			return err
		}
		f.Address = port.FixedIPs[0].Address
		if f.PortID != "" {
			if err := db.checkAssociation(ctx, q, f); err != nil {
				return err
			}
		}
		firstRevision(&f.Standard)
		added, err := floatingIPs.tryAdd(ctx, q, &floatingIPRow{FloatingIP: *f, floatingPort: port.ID})
		if err != nil {
			return fmt.Errorf("create floating IP: %w", conflict("floating IP", err))
		}
		if !added {
			// The association was checked while the port was held: only
			// the ID can be taken.
			return trustack.Errorf(trustack.ECONFLICT, "Floating IP %s already exists.", f.ID)
		}
		return nil
	})
}

// checkAssociation checks the association of f with its port, which it
// holds shared: f's fixed address must be the port's and no other
// floating IP's.
func (db *DB) checkAssociation(ctx context.Context, q querier, f *trustack.FloatingIP) error {
	if err := holdRow(ctx, q, `SELECT id FROM ports WHERE id = $1`+db.shareRow(), f.PortID, portNotFound(f.PortID)); err != nil {
		return err
	}
	if !f.FixedAddress.IsValid() {
		return trustack.Reasonf(trustack.EINVALID, "BadRequest", "Bad floatingip request: floating IP %s has a port, %s, but no fixed address.", f.ID, f.PortID)
	}
	has, err := exists(ctx, q, `SELECT COUNT(*) FROM ip_allocations WHERE port_id = $1 AND ip_address = $2`, f.PortID, f.FixedAddress.String())
	if err != nil {
		return fmt.Errorf("associate floating IP %s: %w", f.ID, err)
	}
	if !has {
		return trustack.Reasonf(trustack.EINVALID, "BadRequest", "Bad floatingip request: Port %s does not have fixed ip %s.", f.PortID, f.FixedAddress)
	}
	var other, network string
	err = q.QueryRowContext(ctx, `SELECT id, floating_network_id FROM floating_ips WHERE port_id = $1 AND fixed_ip_address = $2 AND id <> $3`,
		f.PortID, f.FixedAddress.String(), f.ID).Scan(&other, &network)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return fmt.Errorf("associate floating IP %s: %w", f.ID, err)
	}
	return trustack.Reasonf(trustack.ECONFLICT, "FloatingIPPortAlreadyAssociated",
		"Cannot associate floating IP %s (%s) with port %s using fixed IP %s, as that fixed IP already has a floating IP on external network %s.",
		f.Address, f.ID, f.PortID, f.FixedAddress, network)
}

// FloatingIP returns a floating IP; ENOTFOUND (FloatingIPNotFound).
func (db *DB) FloatingIP(ctx context.Context, id string) (*trustack.FloatingIP, error) {
	f, err := floatingIPs.get(ctx, db.read, id)
	if err != nil {
		return nil, err
	}
	return &f.FloatingIP, nil
}

// FloatingIPs returns the floating IPs, oldest first, of a project (""
// for every project's), or those associated with portIDs (nil for any).
func (db *DB) FloatingIPs(ctx context.Context, projectID string, portIDs []string) ([]*trustack.FloatingIP, error) {
	var w where
	w.eq("project_id", projectID)
	w.in("port_id", portIDs)
	list, err := floatingIPs.list(ctx, db.read, w)
	if err != nil {
		return nil, err
	}
	out := make([]*trustack.FloatingIP, len(list))
	for i, f := range list {
		out[i] = &f.FloatingIP
	}
	sortByAge(out, func(f *trustack.FloatingIP) (time.Time, string) { return f.CreatedAt, f.ID })
	return out, nil
}

// UpdateFloatingIP reads a floating IP, lets fn change it and writes it
// back with its next revision, in one transaction; an error from fn
// changes nothing. Its network and address cannot change (EINVALID); a
// new association is checked as CreateFloatingIP checks it, and without a
// port it has no fixed address and no router. ENOTFOUND
// (FloatingIPNotFound).
func (db *DB) UpdateFloatingIP(ctx context.Context, id string, fn func(*trustack.FloatingIP) error) (*trustack.FloatingIP, error) {
	var f *floatingIPRow
	err := db.inTx(ctx, func(q querier) error {
		var err error
		if f, err = floatingIPs.getSQL(ctx, q, id, db.lockRow()); err != nil {
			return err
		}
		was := f.FloatingIP
		if err := fn(&f.FloatingIP); err != nil {
			return err
		}
		if f.ID != id || f.NetworkID != was.NetworkID || f.Address != was.Address {
			return trustack.Reasonf(trustack.EINVALID, "BadRequest", "The ID, network and address of floating IP %s cannot be changed.", id)
		}
		f.Revision = was.Revision + 1
		if f.PortID == "" {
			f.FixedAddress, f.RouterID = netip.Addr{}, ""
		} else if f.PortID != was.PortID || f.FixedAddress != was.FixedAddress {
			if err := db.checkAssociation(ctx, q, &f.FloatingIP); err != nil {
				return err
			}
		}
		return floatingIPs.put(ctx, q, id, f)
	})
	if err != nil {
		return nil, err
	}
	return &f.FloatingIP, nil
}

// DeleteFloatingIP deletes a floating IP and its port; ENOTFOUND
// (FloatingIPNotFound).
func (db *DB) DeleteFloatingIP(ctx context.Context, id string) error {
	return db.inTx(ctx, func(q querier) error {
		f, err := floatingIPs.get(ctx, q, id)
		if err != nil {
			return err
		}
		// Its port is held first: ports come before floating IPs in the
		// order of locks.
		if _, err := column(ctx, q, `SELECT id FROM ports WHERE id = $1`+db.lockRow(), f.floatingPort); err != nil {
			return fmt.Errorf("delete floating IP %s: %w", id, err)
		}
		if err := floatingIPs.delete(ctx, q, id); err != nil {
			return err
		}
		var w where
		w.add("id = ?", f.floatingPort)
		return db.deletePorts(ctx, q, w)
	})
}

// Quotas.

// NetworkQuotas returns a project's quota limits set apart from the
// defaults, by resource.
func (db *DB) NetworkQuotas(ctx context.Context, projectID string) (map[string]int, error) {
	return networkQuotas.of(ctx, db, projectID)
}

// AllNetworkQuotas returns every project's limits set apart from the
// defaults, by project.
func (db *DB) AllNetworkQuotas(ctx context.Context) (map[string]map[string]int, error) {
	return networkQuotas.all(ctx, db)
}

// SetNetworkQuotas sets limits of a project, replacing those it had of
// the same resources.
func (db *DB) SetNetworkQuotas(ctx context.Context, projectID string, limits map[string]int) error {
	return networkQuotas.set(ctx, db, projectID, limits)
}

// DeleteNetworkQuotas returns a project to the default limits.
func (db *DB) DeleteNetworkQuotas(ctx context.Context, projectID string) error {
	return networkQuotas.clear(ctx, db, projectID)
}

// NetworkUsage counts a project's networks, subnets, ports, routers,
// floating IPs, security groups and rules, by quota resource.
func (db *DB) NetworkUsage(ctx context.Context, projectID string) (map[string]int, error) {
	resources := slices.Sorted(maps.Keys(quotaTables))
	counts := make([]string, len(resources))
	dest := make([]any, len(resources))
	values := make([]int, len(resources))
	for i, r := range resources {
		counts[i] = `(SELECT COUNT(*) FROM ` + quotaTables[r] + ` WHERE project_id = $1)`
		dest[i] = &values[i]
	}
	if err := db.read.QueryRowContext(ctx, `SELECT `+strings.Join(counts, ", "), projectID).Scan(dest...); err != nil {
		return nil, fmt.Errorf("count network usage of %s: %w", projectID, err)
	}
	out := make(map[string]int, len(resources))
	for i, r := range resources {
		out[r] = values[i]
	}
	return out, nil
}
