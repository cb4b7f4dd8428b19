package sqlstore

import (
	"cmp"
	"context"
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/trustack/trustack"
)

// Networking: networks, subnets, ports and the addresses allocated to
// them here; security groups, routers, floating IPs and networking quotas
// in routing.go. The store keeps what network.Store asks; as with
// acaas.Store, sqlstore does not import the package that declares it, and
// storetest.Store checks at compile time that DB implements it.
//
// What must hold across rows is checked in the transaction that writes,
// under row locks on PostgreSQL (SQLite runs one write transaction at a
// time): a subnet's row is held while its addresses are allocated, a
// network's while a subnet is added to it or it is deleted (and shared
// while a port is added to it), a router's while its interfaces change,
// the project's quota lock while its rows are counted. The unique
// constraints of the schema are the backstop, not the mechanism.
//
// Transactions take these locks in one order, so that none waits for
// another in a circle: the project's quota lock, a router, ports, a
// network, subnets (oldest first), security groups, floating IPs.
// UpdateFloatingIP, which holds the floating IP before the port it
// associates, is the exception: should it meet UpdatePort or DeletePort
// of that port at the same moment, PostgreSQL fails one of the two.

var (
	networks = &table[trustack.Network]{
		name: "networks", kind: "network", order: "created_at, id",
		columns: []string{"id", "name", "project_id", "description", "admin_state_up", "status", "shared", "external",
			"network_type", "physical_network", "segmentation_id", "segment_key", "mtu", "port_security", "tags", "created_at", "updated_at", "revision"},
		fields: func(n *trustack.Network) []any {
			return []any{&n.ID, &n.Name, &n.ProjectID, &n.Description, &n.AdminStateUp, &n.Status, &n.Shared, &n.External,
				&n.Type, &n.PhysicalNetwork, &n.SegmentationID, segmentKeyColumn{n}, &n.MTU, &n.PortSecurity,
				stringsColumn(&n.Tags), timeColumn{&n.CreatedAt}, timeColumn{&n.UpdatedAt}, &n.Revision}
		},
		missing: func(id string) error {
			return trustack.Reasonf(trustack.ENOTFOUND, "NetworkNotFound", "Network %s could not be found.", id)
		},
	}
	subnets = &table[trustack.Subnet]{
		name: "subnets", kind: "subnet", order: "created_at, id",
		columns: []string{"id", "network_id", "name", "project_id", "description", "ip_version", "cidr", "gateway_ip", "allocation_pools",
			"enable_dhcp", "dns_nameservers", "host_routes", "ipv6_ra_mode", "ipv6_address_mode", "tags", "created_at", "updated_at", "revision"},
		fields: func(s *trustack.Subnet) []any {
			return []any{&s.ID, &s.NetworkID, &s.Name, &s.ProjectID, &s.Description, &s.IPVersion, prefixColumn(&s.CIDR), addrColumn(&s.Gateway),
				rangesColumn(&s.AllocationPools), &s.EnableDHCP, addrsColumn(&s.DNSNameservers), routesColumn(&s.HostRoutes),
				&s.IPv6RAMode, &s.IPv6AddressMode, stringsColumn(&s.Tags), timeColumn{&s.CreatedAt}, timeColumn{&s.UpdatedAt}, &s.Revision}
		},
		missing: func(id string) error {
			return trustack.Reasonf(trustack.ENOTFOUND, "SubnetNotFound", "Subnet %s could not be found.", id)
		},
	}
	ports = &table[trustack.Port]{
		name: "ports", kind: "port", order: "created_at, id",
		columns: []string{"id", "network_id", "name", "project_id", "description", "mac_address", "admin_state_up", "status", "device_owner",
			"device_id", "port_security", "allowed_address_pairs", "host_id", "vnic_type", "tags", "created_at", "updated_at", "revision"},
		fields: func(p *trustack.Port) []any {
			return []any{&p.ID, &p.NetworkID, &p.Name, &p.ProjectID, &p.Description, &p.MACAddress, &p.AdminStateUp, &p.Status, &p.DeviceOwner,
				&p.DeviceID, &p.PortSecurity, pairsColumn(&p.AllowedAddressPairs), &p.HostID, &p.VNICType, stringsColumn(&p.Tags),
				timeColumn{&p.CreatedAt}, timeColumn{&p.UpdatedAt}, &p.Revision}
		},
		missing: portNotFound,
	}
)

func portNotFound(id string) error {
	return trustack.Reasonf(trustack.ENOTFOUND, "PortNotFound", "Port %s could not be found.", id)
}

// Column adapters.

// text returns a TEXT column's value.
func text(src any) (string, error) {
	switch s := src.(type) {
	case string:
		return s, nil
	case []byte:
		return string(s), nil
	}
	return "", fmt.Errorf("text column: unexpected %T", src)
}

// ipColumn stores an address or a prefix as text in its canonical form,
// the zero value as the empty string.
type ipColumn[T interface {
	IsValid() bool
	String() string
}] struct {
	p     *T
	parse func(string) (T, error)
}

// addrColumn stores an address; prefixColumn a prefix.
func addrColumn(p *netip.Addr) ipColumn[netip.Addr] { return ipColumn[netip.Addr]{p, netip.ParseAddr} }
func prefixColumn(p *netip.Prefix) ipColumn[netip.Prefix] {
	return ipColumn[netip.Prefix]{p, netip.ParsePrefix}
}

func (c ipColumn[T]) Value() (driver.Value, error) {
	if !(*c.p).IsValid() {
		return "", nil
	}
	return (*c.p).String(), nil
}

func (c ipColumn[T]) Scan(src any) error {
	s, err := text(src)
	if err != nil {
		return err
	}
	var zero T
	*c.p = zero
	if s == "" {
		return nil
	}
	*c.p, err = c.parse(s)
	return err
}

// listColumn stores a slice as a JSON array of J, converting each element
// with to and back with from; an empty slice is stored as [] and read back
// as nil.
type listColumn[T, J any] struct {
	p    *[]T
	to   func(T) J
	from func(J) T
}

func (c listColumn[T, J]) Value() (driver.Value, error) {
	out := make([]J, len(*c.p))
	for i, v := range *c.p {
		out[i] = c.to(v)
	}
	b, err := json.Marshal(out)
	return string(b), err
}

func (c listColumn[T, J]) Scan(src any) error {
	s, err := text(src)
	if err != nil {
		return err
	}
	var in []J
	if err := json.Unmarshal([]byte(s), &in); err != nil {
		return fmt.Errorf("list column: %w", err)
	}
	*c.p = nil
	for _, v := range in {
		*c.p = append(*c.p, c.from(v))
	}
	return nil
}

func same[T any](v T) T { return v }

// stringsColumn stores strings as a JSON array.
func stringsColumn(p *[]string) listColumn[string, string] {
	return listColumn[string, string]{p, same[string], same[string]}
}

// addrsColumn stores addresses as a JSON array of strings.
func addrsColumn(p *[]netip.Addr) listColumn[netip.Addr, netip.Addr] {
	return listColumn[netip.Addr, netip.Addr]{p, same[netip.Addr], same[netip.Addr]}
}

type ipRangeJSON struct {
	Start netip.Addr `json:"start"`
	End   netip.Addr `json:"end"`
}

// rangesColumn stores ranges as a JSON array of {"start", "end"}.
func rangesColumn(p *[]trustack.IPRange) listColumn[trustack.IPRange, ipRangeJSON] {
	return listColumn[trustack.IPRange, ipRangeJSON]{p,
		func(r trustack.IPRange) ipRangeJSON { return ipRangeJSON(r) },
		func(j ipRangeJSON) trustack.IPRange { return trustack.IPRange(j) }}
}

type hostRouteJSON struct {
	Destination netip.Prefix `json:"destination"`
	NextHop     netip.Addr   `json:"nexthop"`
}

// routesColumn stores routes as a JSON array of {"destination", "nexthop"}.
func routesColumn(p *[]trustack.HostRoute) listColumn[trustack.HostRoute, hostRouteJSON] {
	return listColumn[trustack.HostRoute, hostRouteJSON]{p,
		func(r trustack.HostRoute) hostRouteJSON { return hostRouteJSON(r) },
		func(j hostRouteJSON) trustack.HostRoute { return trustack.HostRoute(j) }}
}

type addressPairJSON struct {
	IPAddress  string `json:"ip_address"`
	MACAddress string `json:"mac_address"`
}

// pairsColumn stores address pairs as a JSON array of {"ip_address",
// "mac_address"}.
func pairsColumn(p *[]trustack.AddressPair) listColumn[trustack.AddressPair, addressPairJSON] {
	return listColumn[trustack.AddressPair, addressPairJSON]{p,
		func(a trustack.AddressPair) addressPairJSON { return addressPairJSON(a) },
		func(j addressPairJSON) trustack.AddressPair { return trustack.AddressPair(j) }}
}

// segmentKeyColumn is a network's segment_key, what makes two segments
// the same: written from the network's segment, ignored when read.
type segmentKeyColumn struct{ n *trustack.Network }

func (c segmentKeyColumn) Value() (driver.Value, error) {
	switch c.n.Type {
	case trustack.NetworkFlat:
		return "flat:" + c.n.PhysicalNetwork, nil
	case trustack.NetworkVLAN, trustack.NetworkVXLAN:
		return fmt.Sprintf("%s:%s:%d", c.n.Type, c.n.PhysicalNetwork, c.n.SegmentationID), nil
	}
	return nil, nil // local networks share nothing
}

func (segmentKeyColumn) Scan(any) error { return nil }

// Quotas.

// quotaTables are the tables of the rows that count against each
// networking quota, by project.
var quotaTables = map[string]string{
	trustack.QuotaNetwork:           "networks",
	trustack.QuotaSubnet:            "subnets",
	trustack.QuotaPort:              "ports",
	trustack.QuotaRouter:            "routers",
	trustack.QuotaFloatingIP:        "floating_ips",
	trustack.QuotaSecurityGroup:     "security_groups",
	trustack.QuotaSecurityGroupRule: "security_group_rules",
}

// checkQuota holds the project's quota lock and gives EOVERQUOTA if the
// project's rows of resource, with adding more, would be over limit; -1
// is no limit, and is not counted. Rows the transaction made count.
func checkQuota(ctx context.Context, db *DB, q querier, project, resource string, limit, adding int) error {
	if limit < 0 {
		return nil
	}
	if err := lockProject(ctx, db, q, project); err != nil {
		return err
	}
	return checkLockedQuota(ctx, q, project, resource, limit, adding)
}

// checkLockedQuota is checkQuota in a transaction that holds the
// project's quota lock already.
func checkLockedQuota(ctx context.Context, q querier, project, resource string, limit, adding int) error {
	if limit < 0 {
		return nil
	}
	var n int
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+quotaTables[resource]+` WHERE project_id = $1`, project).Scan(&n); err != nil {
		return fmt.Errorf("count %s of %s: %w", resource, project, err)
	}
	if n+adding > limit {
		return trustack.Reasonf(trustack.EOVERQUOTA, "OverQuota", "Quota exceeded for resources: ['%s'].", resource)
	}
	return nil
}

// firstRevision gives a new resource revision 1 unless the caller set one.
func firstRevision(std *trustack.Standard) {
	if std.Revision == 0 {
		std.Revision = 1
	}
}

// exists reports whether a query counting rows finds any.
func exists(ctx context.Context, q querier, query string, args ...any) (bool, error) {
	var n int
	if err := q.QueryRowContext(ctx, query, args...).Scan(&n); err != nil {
		return false, err
	}
	return n > 0, nil
}

// idFree returns ECONFLICT if a row of table has the ID, after tryAdd did
// not add one: then the ID is in use, or else another constraint held.
func idFree(ctx context.Context, q querier, table, kind, id string) error {
	taken, err := exists(ctx, q, `SELECT COUNT(*) FROM `+table+` WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("look up %s %s: %w", table, id, err)
	}
	if taken {
		return trustack.Errorf(trustack.ECONFLICT, "%s %s already exists.", kind, id)
	}
	return nil
}

// Networks.

// CreateNetwork adds a network if its project has fewer than limit (-1
// for no limit): EOVERQUOTA (OverQuota) beyond, ECONFLICT (SegmentInUse)
// if another network has the same segment, ECONFLICT for an ID in use.
func (db *DB) CreateNetwork(ctx context.Context, n *trustack.Network, limit int) error {
	return db.inProjectTx(ctx, n.ProjectID, func(q querier) error {
		if err := checkQuota(ctx, db, q, n.ProjectID, trustack.QuotaNetwork, limit, 1); err != nil {
			return err
		}
		firstRevision(&n.Standard)
		added, err := networks.tryAdd(ctx, q, n)
		if err != nil {
			return fmt.Errorf("create network: %w", conflict("network", err))
		}
		if added {
			return nil
		}
		if err := idFree(ctx, q, "networks", "Network", n.ID); err != nil {
			return err
		}
		return segmentInUse(n)
	})
}

// segmentInUse is the ECONFLICT of a network whose segment another has,
// in Neutron's words for each type.
func segmentInUse(n *trustack.Network) error {
	switch n.Type {
	case trustack.NetworkFlat:
		return trustack.Reasonf(trustack.ECONFLICT, "SegmentInUse", "Unable to create the flat network. Physical network %s is in use.", n.PhysicalNetwork)
	case trustack.NetworkVLAN:
		return trustack.Reasonf(trustack.ECONFLICT, "SegmentInUse", "Unable to create the network. The VLAN %d on physical network %s is in use.", n.SegmentationID, n.PhysicalNetwork)
	}
	return trustack.Reasonf(trustack.ECONFLICT, "SegmentInUse", "Unable to create the network. The tunnel ID %d is in use.", n.SegmentationID)
}

// Network returns a network; ENOTFOUND (NetworkNotFound).
func (db *DB) Network(ctx context.Context, id string) (*trustack.Network, error) {
	return networks.get(ctx, db.read, id)
}

// Networks returns the networks matching f, oldest first.
func (db *DB) Networks(ctx context.Context, f trustack.NetworkFilter) ([]*trustack.Network, error) {
	var w where
	w.in("id", f.IDs)
	w.flag("shared", f.Shared)
	w.flag("external", f.External)
	if f.VisibleTo != "" {
		w.add("(project_id = ? OR shared = ? OR external = ?)", f.VisibleTo, true, true)
	}
	list, err := networks.list(ctx, db.read, w)
	if err != nil {
		return nil, err
	}
	sortByAge(list, func(n *trustack.Network) (time.Time, string) { return n.CreatedAt, n.ID })
	return list, nil
}

// sortByAge orders a list as lists are: oldest first, then by ID as Go
// compares strings. Lists are sorted again after their query because
// PostgreSQL's collation may order IDs otherwise.
func sortByAge[T any](list []T, key func(T) (time.Time, string)) {
	slices.SortFunc(list, func(a, b T) int {
		at, aID := key(a)
		bt, bID := key(b)
		return cmp.Or(at.Compare(bt), cmp.Compare(aID, bID))
	})
}

// UpdateNetwork reads a network, lets fn change it and writes it back with
// its next revision, in one transaction; an error from fn changes
// nothing. ENOTFOUND (NetworkNotFound), EINVALID if fn changed the ID.
func (db *DB) UpdateNetwork(ctx context.Context, id string, fn func(*trustack.Network) error) (*trustack.Network, error) {
	var n *trustack.Network
	err := db.inTx(ctx, func(q querier) error {
		var err error
		if n, err = networks.getSQL(ctx, q, id, db.lockRow()); err != nil {
			return err
		}
		revision := n.Revision
		if err := fn(n); err != nil {
			return err
		}
		n.Revision = revision + 1
		return networks.put(ctx, q, id, n)
	})
	if err != nil {
		return nil, err
	}
	return n, nil
}

// DeleteNetwork deletes a network with its subnets, its DHCP ports and
// the floating IPs on it that are not associated (with their ports), as
// Neutron deletes an external network's; ENOTFOUND (NetworkNotFound),
// ECONFLICT (NetworkInUse) while it has any other port.
func (db *DB) DeleteNetwork(ctx context.Context, id string) error {
	return db.inTx(ctx, func(q querier) error {
		// The ports that may go with the network are held before it: ports
		// come first in the order of locks, floating IPs last.
		if _, err := column(ctx, q, `SELECT id FROM ports WHERE network_id = $1 AND device_owner IN ($2, $3) ORDER BY id`+db.lockRow(),
			id, trustack.OwnerDHCP, trustack.OwnerFloatingIP); err != nil {
			return fmt.Errorf("delete network %s: %w", id, err)
		}
		if _, err := networks.getSQL(ctx, q, id, db.lockRow()); err != nil {
			return err
		}
		unassociated, err := column(ctx, q, `SELECT floating_port_id FROM floating_ips WHERE floating_network_id = $1 AND port_id IS NULL ORDER BY id`+db.lockRow(), id)
		if err != nil {
			return fmt.Errorf("delete network %s: %w", id, err)
		}
		if len(unassociated) > 0 {
			if _, err := q.ExecContext(ctx, `DELETE FROM floating_ips WHERE floating_network_id = $1 AND port_id IS NULL`, id); err != nil {
				return fmt.Errorf("delete the floating IPs of network %s: %w", id, err)
			}
			var freed where
			freed.in("id", unassociated)
			if err := db.deletePorts(ctx, q, freed); err != nil {
				return fmt.Errorf("delete the floating IPs of network %s: %w", id, err)
			}
		}
		used, err := exists(ctx, q, `SELECT COUNT(*) FROM ports WHERE network_id = $1 AND device_owner <> $2`, id, trustack.OwnerDHCP)
		if err != nil {
			return fmt.Errorf("delete network %s: %w", id, err)
		}
		if used {
			return trustack.Reasonf(trustack.ECONFLICT, "NetworkInUse", "Unable to complete operation on network %s. There are one or more ports still in use on the network.", id)
		}
		var w where
		w.add("network_id = ?", id)
		if err := db.deletePorts(ctx, q, w); err != nil {
			return fmt.Errorf("delete network %s: %w", id, err)
		}
		if _, err := q.ExecContext(ctx, `DELETE FROM subnets WHERE network_id = $1`, id); err != nil {
			return fmt.Errorf("delete network %s: %w", id, conflict("network", translate(err)))
		}
		return networks.delete(ctx, q, id)
	})
}

// SegmentationIDs returns the segmentation IDs networks use on the
// physical network of the type ("" for VXLAN), in increasing order.
func (db *DB) SegmentationIDs(ctx context.Context, typ, physicalNetwork string) ([]int, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT segmentation_id FROM networks WHERE network_type = $1 AND physical_network = $2 ORDER BY segmentation_id`,
		typ, physicalNetwork)
	if err != nil {
		return nil, fmt.Errorf("list segmentation IDs: %w", err)
	}
	defer rows.Close()
	var out []int
	for rows.Next() {
		var id int
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// Subnets.

// CreateSubnet adds a subnet to its network: ENOTFOUND (NetworkNotFound)
// for a missing network, EINVALID (InvalidInput) if its CIDR overlaps
// another subnet of the network, EOVERQUOTA (OverQuota) if the project has
// limit subnets (-1 for no limit). The network's row is held while its
// subnets are compared, so that subnets added at once cannot overlap.
func (db *DB) CreateSubnet(ctx context.Context, s *trustack.Subnet, limit int) error {
	return db.inProjectTx(ctx, s.ProjectID, func(q querier) error {
		if err := checkQuota(ctx, db, q, s.ProjectID, trustack.QuotaSubnet, limit, 1); err != nil {
			return err
		}
		if _, err := networks.getSQL(ctx, q, s.NetworkID, db.lockRow()); err != nil {
			return err
		}
		var w where
		w.add("network_id = ?", s.NetworkID)
		others, err := subnets.list(ctx, q, w)
		if err != nil {
			return err
		}
		for _, o := range others {
			if o.CIDR.Overlaps(s.CIDR) {
				return trustack.Reasonf(trustack.EINVALID, "InvalidInput",
					"Invalid input for operation: Requested subnet with cidr: %s for network: %s overlaps with another subnet.", s.CIDR, s.NetworkID)
			}
		}
		firstRevision(&s.Standard)
		return subnets.insert(ctx, q, s)
	})
}

// Subnet returns a subnet; ENOTFOUND (SubnetNotFound).
func (db *DB) Subnet(ctx context.Context, id string) (*trustack.Subnet, error) {
	return subnets.get(ctx, db.read, id)
}

// Subnets returns the subnets matching f, oldest first.
func (db *DB) Subnets(ctx context.Context, f trustack.SubnetFilter) ([]*trustack.Subnet, error) {
	var w where
	w.in("id", f.IDs)
	w.in("network_id", f.NetworkIDs)
	if f.VisibleTo != "" {
		w.add("(project_id = ? OR network_id IN (SELECT id FROM networks WHERE project_id = ? OR shared = ? OR external = ?))",
			f.VisibleTo, f.VisibleTo, true, true)
	}
	list, err := subnets.list(ctx, db.read, w)
	if err != nil {
		return nil, err
	}
	sortByAge(list, func(s *trustack.Subnet) (time.Time, string) { return s.CreatedAt, s.ID })
	return list, nil
}

// UpdateSubnet reads a subnet, lets fn change it and writes it back with
// its next revision, in one transaction; an error from fn changes
// nothing. ENOTFOUND (SubnetNotFound); EINVALID if fn changed the ID, the
// network or the CIDR, which would break what allocations and other
// subnets rely on; ECONFLICT (IpAddressInUse) if fn moved the gateway onto
// an address a port has. Addresses outside new allocation pools stay
// allocated.
func (db *DB) UpdateSubnet(ctx context.Context, id string, fn func(*trustack.Subnet) error) (*trustack.Subnet, error) {
	var s *trustack.Subnet
	err := db.inTx(ctx, func(q querier) error {
		var err error
		if s, err = subnets.getSQL(ctx, q, id, db.lockRow()); err != nil {
			return err
		}
		was := *s
		if err := fn(s); err != nil {
			return err
		}
		if s.NetworkID != was.NetworkID || s.CIDR != was.CIDR {
			return trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Invalid input for operation: the network and the CIDR of subnet %s cannot be changed.", id)
		}
		if s.Gateway.IsValid() && s.Gateway != was.Gateway {
			taken, err := exists(ctx, q, `SELECT COUNT(*) FROM ip_allocations WHERE subnet_id = $1 AND ip_address = $2`, id, s.Gateway.String())
			if err != nil {
				return fmt.Errorf("update subnet %s: %w", id, err)
			}
			if taken {
				return ipInUse(s.NetworkID, s.Gateway)
			}
		}
		s.Revision = was.Revision + 1
		return subnets.put(ctx, q, id, s)
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// DeleteSubnet deletes a subnet, taking their addresses on it away from
// the ports that go on without it, as Neutron's: DHCP ports and, on a
// subnet whose addresses are automatic (trustack.Subnet's AutoAddress),
// every port but a router's interface. Those ports move to their next
// revision. ENOTFOUND (SubnetNotFound), ECONFLICT (SubnetInUse) while any
// other port has an address on it.
func (db *DB) DeleteSubnet(ctx context.Context, id string) error {
	return db.inTx(ctx, func(q querier) error {
		// The ports with addresses on it are held before the subnet: ports
		// come first in the order of locks.
		if _, err := column(ctx, q, `SELECT id FROM ports WHERE id IN (SELECT port_id FROM ip_allocations WHERE subnet_id = $1) ORDER BY id`+db.lockRow(), id); err != nil {
			return fmt.Errorf("delete subnet %s: %w", id, err)
		}
		s, err := subnets.getSQL(ctx, q, id, db.lockRow())
		if err != nil {
			return err
		}
		inUse := `p.device_owner <> $2`
		owner := trustack.OwnerDHCP
		if s.AutoAddress() {
			inUse, owner = `p.device_owner = $2`, trustack.OwnerRouterInterface
		}
		used, err := exists(ctx, q, `SELECT COUNT(*) FROM ip_allocations a JOIN ports p ON p.id = a.port_id WHERE a.subnet_id = $1 AND `+inUse, id, owner)
		if err != nil {
			return fmt.Errorf("delete subnet %s: %w", id, err)
		}
		if used {
			return trustack.Reasonf(trustack.ECONFLICT, "SubnetInUse", "Unable to complete operation on subnet %s: One or more ports have an IP allocation from this subnet.", id)
		}
		var w where
		w.add("id IN (SELECT port_id FROM ip_allocations WHERE subnet_id = ?)", id)
		if err := db.revisePorts(ctx, q, w); err != nil {
			return fmt.Errorf("delete subnet %s: %w", id, err)
		}
		if _, err := q.ExecContext(ctx, `DELETE FROM ip_allocations WHERE subnet_id = $1`, id); err != nil {
			return fmt.Errorf("delete subnet %s: %w", id, err)
		}
		return subnets.delete(ctx, q, id)
	})
}

// Ports.

// CreatePort adds a port with its fixed IPs and security groups, if its
// project has fewer than limit ports (-1 for no limit; EOVERQUOTA,
// OverQuota, beyond). What the port gets (its MAC and addresses) is set
// in p. See allocate for its fixed IPs; an empty MAC gets one of alloc's
// that no port of the network has, and a MAC given must be free on the
// network (ECONFLICT MacAddressInUse). ENOTFOUND for a missing network,
// subnet or security group.
func (db *DB) CreatePort(ctx context.Context, p *trustack.Port, alloc trustack.Allocator, limit int) error {
	// The port is made first and counted after, so that the project's
	// quota lock is held for the count alone: its ports' creations wait
	// for each other no longer than that.
	return db.inProjectTx(ctx, p.ProjectID, func(q querier) error {
		if err := db.createPort(ctx, q, p, alloc); err != nil {
			return err
		}
		return checkQuota(ctx, db, q, p.ProjectID, trustack.QuotaPort, limit, 0)
	})
}

// macAttempts is how many MACs of its allocator a port is offered before
// the store gives up: with 24 random bits, a network with a million ports
// refuses each with a chance of 1 in 16, so 8 all taken is 1 in 4 billion.
const macAttempts = 8

// createPort adds p in the transaction of q, as CreatePort does.
func (db *DB) createPort(ctx context.Context, q querier, p *trustack.Port, alloc trustack.Allocator) error {
	// The network is shared, so that it cannot be deleted meanwhile, nor
	// deleted before this port is counted.
	if err := holdRow(ctx, q, `SELECT id FROM networks WHERE id = $1`+db.shareRow(), p.NetworkID, networks.notFound(p.NetworkID)); err != nil {
		return err
	}
	on, err := db.holdSubnets(ctx, q, p.NetworkID, p.FixedIPs)
	if err != nil {
		return err
	}
	firstRevision(&p.Standard)
	mine := p.MACAddress == ""
	for attempt := 1; ; attempt++ {
		if mine {
			p.MACAddress = alloc.MAC()
		}
		added, err := ports.tryAdd(ctx, q, p)
		if err != nil {
			return fmt.Errorf("create port: %w", conflict("port", err))
		}
		if added {
			break
		}
		if err := idFree(ctx, q, "ports", "Port", p.ID); err != nil {
			return err
		}
		if !mine {
			return macInUse(p)
		}
		if attempt == macAttempts {
			return trustack.Reasonf(trustack.EUNAVAILABLE, "MacAddressGenerationFailure", "Unable to generate unique mac on network %s.", p.NetworkID)
		}
	}
	if err := allocate(ctx, q, p, on, alloc, nil); err != nil {
		return err
	}
	return setGroups(ctx, q, p, nil)
}

func macInUse(p *trustack.Port) error {
	return trustack.Reasonf(trustack.ECONFLICT, "MacAddressInUse", "Unable to complete operation for network %s. The mac address %s is in use.", p.NetworkID, p.MACAddress)
}

func ipInUse(network string, addr netip.Addr) error {
	return trustack.Reasonf(trustack.ECONFLICT, "IpAddressInUse", "Unable to complete operation for network %s. The IP address %s is in use.", network, addr)
}

// holdSubnets holds the subnets that fixed IPs of a port of network name,
// so that they are neither changed nor deleted until the transaction
// ends, and returns them by ID. The hold is shared: allocations on a
// subnet run concurrently, kept apart by the allocations' unique key.
// ENOTFOUND (SubnetNotFound) for a missing subnet; EINVALID
// (InvalidInput) for a fixed IP that names none, or one of another
// network.
func (db *DB) holdSubnets(ctx context.Context, q querier, network string, fixed []trustack.FixedIP) (map[string]*trustack.Subnet, error) {
	if len(fixed) == 0 {
		return nil, nil
	}
	ids := make([]string, len(fixed))
	for i, f := range fixed {
		if f.SubnetID == "" {
			return nil, trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Invalid input for operation: each fixed IP of a port on network %s needs its subnet.", network)
		}
		ids[i] = f.SubnetID
	}
	var w where
	w.in("id", ids)
	list, err := subnets.listSQL(ctx, q, w, db.shareRow())
	if err != nil {
		return nil, err
	}
	byID := make(map[string]*trustack.Subnet, len(list))
	for _, s := range list {
		if s.NetworkID != network {
			return nil, trustack.Reasonf(trustack.EINVALID, "InvalidInput",
				"Invalid input for operation: Failed to create port on network %s, because fixed_ips included invalid subnet %s.", network, s.ID)
		}
		byID[s.ID] = s
	}
	for _, id := range ids {
		if byID[id] == nil {
			return nil, subnets.notFound(id)
		}
	}
	return byID, nil
}

// allocate stores p's fixed IPs, in their order, on their subnets (on,
// held by holdSubnets): addresses of had (the port's before an update) first,
// then the other given addresses, then alloc's choices for the fixed IPs
// without one, which it sets in p. A given address must be valid on its
// subnet (EINVALID InvalidIpForSubnet) and free (ECONFLICT
// IpAddressInUse); no address left is ECONFLICT
// IpAddressGenerationFailure.
func allocate(ctx context.Context, q querier, p *trustack.Port, on map[string]*trustack.Subnet, alloc trustack.Allocator, had []trustack.FixedIP) error {
	// space is the address space of the port's fixed IP i.
	space := func(i int) addressSpace {
		return addressSpace{ctx: ctx, q: q, subnet: p.FixedIPs[i].SubnetID, port: p.ID, position: i}
	}
	// Addresses the port keeps go first, so that no other fixed IP of the
	// update takes them.
	for _, kept := range []bool{true, false} {
		for i, f := range p.FixedIPs {
			if !f.Address.IsValid() || slices.Contains(had, f) != kept {
				continue
			}
			if !kept && !validFor(on[f.SubnetID], f.Address, p.DeviceOwner) {
				return trustack.Reasonf(trustack.EINVALID, "InvalidIpForSubnet", "IP address %s is not a valid IP for the specified subnet.", f.Address)
			}
			if ok, err := space(i).Take(f.Address); err != nil {
				return err
			} else if !ok {
				return ipInUse(p.NetworkID, f.Address)
			}
		}
	}
	for i := range p.FixedIPs {
		f := &p.FixedIPs[i]
		if f.Address.IsValid() {
			continue
		}
		addr, ok, err := alloc.Address(on[f.SubnetID], space(i))
		if err != nil {
			return fmt.Errorf("allocate an address on subnet %s: %w", f.SubnetID, err)
		}
		if !ok {
			return trustack.Reasonf(trustack.ECONFLICT, "IpAddressGenerationFailure", "No more IP addresses available on network %s.", p.NetworkID)
		}
		f.Address = addr
	}
	return nil
}

// validFor reports whether an address may be a port's on a subnet, as
// Neutron has it: in the subnet's CIDR and, for IPv4, neither its network
// nor its broadcast address; for IPv6, not its network address (the
// subnet-router anycast address) unless a router's port or one without an
// owner takes it.
func validFor(s *trustack.Subnet, addr netip.Addr, owner string) bool {
	if !s.CIDR.Contains(addr) {
		return false
	}
	network := s.CIDR.Masked().Addr()
	if addr.Is4() {
		return addr != network && addr != lastAddr(s.CIDR)
	}
	return addr != network || owner == "" || owner == trustack.OwnerRouterInterface || owner == trustack.OwnerRouterGateway
}

// lastAddr returns the last address of a prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// addressSpace shows a subnet's allocated addresses to an Allocator, in
// the transaction that allocates one to the fixed IP of a port at a
// position. It keeps the transaction's context, for the interface's
// methods take none.
type addressSpace struct {
	ctx      context.Context
	q        querier
	subnet   string
	port     string
	position int
}

func (a addressSpace) Take(addr netip.Addr) (bool, error) {
	res, err := a.q.ExecContext(a.ctx, `INSERT INTO ip_allocations (subnet_id, ip_address, port_id, position) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
		a.subnet, addr.String(), a.port, a.position)
	if err != nil {
		return false, fmt.Errorf("allocate %s on subnet %s: %w", addr, a.subnet, conflict("IP allocation", translate(err)))
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func (a addressSpace) All() ([]netip.Addr, error) {
	list, err := column(a.ctx, a.q, `SELECT ip_address FROM ip_allocations WHERE subnet_id = $1`, a.subnet)
	if err != nil {
		return nil, err
	}
	out := make([]netip.Addr, len(list))
	for i, s := range list {
		if out[i], err = netip.ParseAddr(s); err != nil {
			return nil, fmt.Errorf("address allocated on subnet %s: %w", a.subnet, err)
		}
	}
	return out, nil
}

// setGroups puts p in its security groups (sorted and without duplicates
// in p) and out of those of had it is no longer in. ENOTFOUND
// (SecurityGroupNotFound) for a missing group; the foreign key holds the
// groups, so that none can be deleted before the port is counted in it.
func setGroups(ctx context.Context, q querier, p *trustack.Port, had []string) error {
	slices.Sort(p.SecurityGroups)
	p.SecurityGroups = slices.Compact(p.SecurityGroups)
	var added []string
	for _, g := range p.SecurityGroups {
		if !slices.Contains(had, g) {
			added = append(added, g)
		}
	}
	for _, g := range had {
		if slices.Contains(p.SecurityGroups, g) {
			continue
		}
		if _, err := q.ExecContext(ctx, `DELETE FROM port_security_groups WHERE port_id = $1 AND security_group_id = $2`, p.ID, g); err != nil {
			return fmt.Errorf("take port %s out of security group %s: %w", p.ID, g, err)
		}
	}
	for _, g := range added {
		// Inserted only if the group exists; the foreign key holds it
		// until the transaction ends.
		res, err := q.ExecContext(ctx, `INSERT INTO port_security_groups (port_id, security_group_id) SELECT $1, id FROM security_groups WHERE id = $2`, p.ID, g)
		if err != nil {
			return fmt.Errorf("put port %s in security group %s: %w", p.ID, g, conflict("port security group", translate(err)))
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("put port %s in security group %s: %w", p.ID, g, err)
		} else if n == 0 {
			return securityGroupNotFound(g)
		}
	}
	return nil
}

// Port returns a port with its fixed IPs and security groups; ENOTFOUND
// (PortNotFound).
func (db *DB) Port(ctx context.Context, id string) (*trustack.Port, error) {
	return getPort(ctx, db.read, id, "")
}

// getPort reads a port with its fixed IPs and security groups, the port's
// row with suffix (such as FOR UPDATE).
func getPort(ctx context.Context, q querier, id, suffix string) (*trustack.Port, error) {
	p, err := ports.getSQL(ctx, q, id, suffix)
	if err != nil {
		return nil, err
	}
	var w where
	w.add("id = ?", id)
	return p, portDetails(ctx, q, []*trustack.Port{p}, w)
}

// Ports returns the ports matching f, oldest first, with their fixed IPs
// and security groups.
func (db *DB) Ports(ctx context.Context, f trustack.PortFilter) ([]*trustack.Port, error) {
	var w where
	w.in("id", f.IDs)
	w.eq("network_id", f.NetworkID)
	w.in("device_id", f.DeviceIDs)
	w.eq("device_owner", f.DeviceOwner)
	w.eq("host_id", f.HostID)
	if f.SecurityGroupID != "" {
		w.add("id IN (SELECT port_id FROM port_security_groups WHERE security_group_id = ?)", f.SecurityGroupID)
	}
	if f.VisibleTo != "" {
		w.add("(project_id = ? OR network_id IN (SELECT id FROM networks WHERE project_id = ?))", f.VisibleTo, f.VisibleTo)
	}
	list, err := ports.list(ctx, db.read, w)
	if err != nil {
		return nil, err
	}
	sortByAge(list, func(p *trustack.Port) (time.Time, string) { return p.CreatedAt, p.ID })
	return list, portDetails(ctx, db.read, list, w)
}

// DevicePhysicalNetworks returns the physical networks of the flat and
// VLAN networks a device's ports are on, each once, sorted.
func (db *DB) DevicePhysicalNetworks(ctx context.Context, deviceID string) ([]string, error) {
	return db.strings(ctx, `SELECT DISTINCT n.physical_network FROM ports p JOIN networks n ON n.id = p.network_id
		WHERE p.device_id = $1 AND n.network_type IN ($2, $3) ORDER BY n.physical_network`, deviceID, trustack.NetworkFlat, trustack.NetworkVLAN)
}

// portDetails adds their fixed IPs and security groups to the ports of
// list, which are those matching w, read in one query.
func portDetails(ctx context.Context, q querier, list []*trustack.Port, w where) error {
	if len(list) == 0 {
		return nil
	}
	byID := make(map[string]*trustack.Port, len(list))
	for _, p := range list {
		byID[p.ID] = p
	}
	// A row is a fixed IP (its subnet and address) or, with no address, a
	// security group; fixed IPs in their order.
	ports := `port_id IN (SELECT id FROM ports` + w.sql() + `)`
	err := eachRow(ctx, q, `SELECT port_id, subnet_id, ip_address, position FROM ip_allocations WHERE `+ports+`
		UNION ALL SELECT port_id, security_group_id, '', 0 FROM port_security_groups WHERE `+ports+`
		ORDER BY 1, 4`, w.args, func(scan func(...any) error) error {
		var port, ref string
		var addr netip.Addr
		var position int
		if err := scan(&port, &ref, addrColumn(&addr), &position); err != nil {
			return err
		}
		if p := byID[port]; p != nil && addr.IsValid() {
			p.FixedIPs = append(p.FixedIPs, trustack.FixedIP{SubnetID: ref, Address: addr})
		} else if p != nil {
			p.SecurityGroups = append(p.SecurityGroups, ref)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read ports' fixed IPs and security groups: %w", err)
	}
	for _, p := range list {
		slices.Sort(p.SecurityGroups)
	}
	return nil
}

// eachRow runs a query and fn on each row it returns, with the row's
// Scan.
func eachRow(ctx context.Context, q querier, query string, args []any, fn func(scan func(...any) error) error) error {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows.Scan); err != nil {
			return err
		}
	}
	return rows.Err()
}

// UpdatePort reads a port, lets fn change it and writes it back with its
// next revision, in one transaction; an error from fn changes nothing.
// The fixed IPs fn leaves are allocated as CreatePort allocates them
// (those the port had stay its own), those it removed are freed, and the
// floating IPs whose fixed address went away are disassociated. An empty
// MAC gets a new one of alloc's. ENOTFOUND (PortNotFound); EINVALID if fn
// changed the ID or the network.
func (db *DB) UpdatePort(ctx context.Context, id string, alloc trustack.Allocator, fn func(*trustack.Port) error) (*trustack.Port, error) {
	var p *trustack.Port
	err := db.inTx(ctx, func(q querier) error {
		var err error
		if p, err = getPort(ctx, q, id, db.lockRow()); err != nil {
			return err
		}
		was := *p
		was.FixedIPs, was.SecurityGroups = slices.Clone(p.FixedIPs), slices.Clone(p.SecurityGroups)
		if err := fn(p); err != nil {
			return err
		}
		if p.ID != id || p.NetworkID != was.NetworkID {
			return trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Invalid input for operation: the ID and the network of port %s cannot be changed.", id)
		}
		p.Revision = was.Revision + 1
		if err := db.changeMAC(ctx, q, p, was.MACAddress, alloc); err != nil {
			return err
		}
		if err := ports.put(ctx, q, id, p); err != nil {
			return err
		}
		if !slices.Equal(p.FixedIPs, was.FixedIPs) {
			on, err := db.holdSubnets(ctx, q, p.NetworkID, p.FixedIPs)
			if err != nil {
				return err
			}
			if _, err := q.ExecContext(ctx, `DELETE FROM ip_allocations WHERE port_id = $1`, id); err != nil {
				return fmt.Errorf("update port %s: %w", id, err)
			}
			if err := allocate(ctx, q, p, on, alloc, was.FixedIPs); err != nil {
				return err
			}
			var w where
			w.add("id = ?", id)
			if err := db.dropLostAssociations(ctx, q, w); err != nil {
				return fmt.Errorf("update port %s: %w", id, err)
			}
		}
		return setGroups(ctx, q, p, was.SecurityGroups)
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// changeMAC checks the MAC of p, an updated port that had was: an empty
// one gets one of alloc's that is free on the network, a new one must be.
func (db *DB) changeMAC(ctx context.Context, q querier, p *trustack.Port, was string, alloc trustack.Allocator) error {
	mine := p.MACAddress == ""
	if !mine && p.MACAddress == was {
		return nil
	}
	for range macAttempts {
		if mine {
			p.MACAddress = alloc.MAC()
		}
		taken, err := exists(ctx, q, `SELECT COUNT(*) FROM ports WHERE network_id = $1 AND mac_address = $2 AND id <> $3`, p.NetworkID, p.MACAddress, p.ID)
		if err != nil {
			return fmt.Errorf("update port %s: %w", p.ID, err)
		}
		if !taken {
			return nil
		}
		if !mine {
			return macInUse(p)
		}
	}
	return trustack.Reasonf(trustack.EUNAVAILABLE, "MacAddressGenerationFailure", "Unable to generate unique mac on network %s.", p.NetworkID)
}

// DeletePort deletes a port, freeing its addresses and disassociating its
// floating IPs; ENOTFOUND (PortNotFound), ECONFLICT while it holds a
// floating IP's address.
func (db *DB) DeletePort(ctx context.Context, id string) error {
	return db.inTx(ctx, func(q querier) error {
		if _, err := ports.getSQL(ctx, q, id, db.lockRow()); err != nil {
			return err
		}
		var w where
		w.add("id = ?", id)
		return db.deletePorts(ctx, q, w)
	})
}

// deletePorts deletes the ports matching w, disassociating their floating
// IPs first; their addresses and their places in security groups go with
// them.
func (db *DB) deletePorts(ctx context.Context, q querier, w where) error {
	if err := db.disassociate(ctx, q, `port_id IN (SELECT id FROM ports`+w.sql()+`)`, w.args...); err != nil {
		return err
	}
	if _, err := q.ExecContext(ctx, `DELETE FROM ports`+w.sql(), w.args...); err != nil {
		return fmt.Errorf("delete ports: %w", conflict("port", translate(err)))
	}
	return nil
}

// dropLostAssociations disassociates the floating IPs of the ports
// matching w whose fixed address is no longer the port's.
func (db *DB) dropLostAssociations(ctx context.Context, q querier, w where) error {
	return db.disassociate(ctx, q, `port_id IN (SELECT id FROM ports`+w.sql()+`)
		AND fixed_ip_address NOT IN (SELECT ip_address FROM ip_allocations WHERE port_id = floating_ips.port_id)`, w.args...)
}

// disassociate disassociates the floating IPs matching cond, in which
// args are $1, $2 and so on; they go DOWN and to their next revision.
func (db *DB) disassociate(ctx context.Context, q querier, cond string, args ...any) error {
	now := fmt.Sprintf("$%d", len(args)+1)
	_, err := q.ExecContext(ctx, `UPDATE floating_ips SET port_id = NULL, fixed_ip_address = '', router_id = '', status = '`+trustack.StatusDown+`',
		revision = revision + 1, updated_at = `+now+` WHERE `+cond, append(slices.Clip(args), db.Now().UnixMicro())...)
	if err != nil {
		return fmt.Errorf("disassociate floating IPs: %w", err)
	}
	return nil
}

// revisePorts moves the ports matching w to their next revision, changed
// now by the store.
func (db *DB) revisePorts(ctx context.Context, q querier, w where) error {
	now := fmt.Sprintf("$%d", len(w.args)+1)
	_, err := q.ExecContext(ctx, `UPDATE ports SET revision = revision + 1, updated_at = `+now+w.sql(), append(slices.Clip(w.args), db.Now().UnixMicro())...)
	return err
}

// bindPorts brings the ports of a server (those whose device is the
// server and whose owner is compute's) in line with it, in the transaction
// that updated it: bound to its host, owned by "compute:" and its
// availability zone (as they were while it has none), ACTIVE while it is
// active or paused on a host and DOWN otherwise. Only ports that differ
// are written, and move to their next revision; a server without ports
// costs one look-up of an index.
func (db *DB) bindPorts(ctx context.Context, q querier, s *trustack.Server) error {
	status := trustack.StatusDown
	if s.Host != "" && (s.VMState == trustack.VMActive || s.VMState == trustack.VMPaused) {
		status = trustack.StatusActive
	}
	set, differs := "host_id = $2, status = $3", "host_id <> $2 OR status <> $3"
	args := []any{s.ID, s.Host, status, db.Now().UnixMicro()}
	if s.AvailabilityZone != "" {
		set, differs = set+", device_owner = $5", differs+" OR device_owner <> $5"
		args = append(args, trustack.OwnerCompute+s.AvailabilityZone)
	}
	_, err := q.ExecContext(ctx, `UPDATE ports SET `+set+`, revision = revision + 1, updated_at = $4
		WHERE device_id = $1 AND device_owner LIKE '`+trustack.OwnerCompute+`%' AND (`+differs+`)`, args...)
	if err != nil {
		return fmt.Errorf("bind ports of server %s: %w", s.ID, err)
	}
	return nil
}
