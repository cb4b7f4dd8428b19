package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/trustack/trustack"
)

var (
	flavors = &table[trustack.Flavor]{
		name: "flavors", kind: "flavor", order: "id",
		columns: []string{"id", "name", "vcpus", "ram", "disk", "ephemeral", "swap", "rxtx_factor", "public", "disabled", "description", "extra_specs"},
		fields: func(f *trustack.Flavor) []any {
			return []any{&f.ID, &f.Name, &f.VCPUs, &f.RAM, &f.Disk, &f.Ephemeral, &f.Swap, &f.RXTXFactor, &f.Public, &f.Disabled, &f.Description, jsonColumn[map[string]string]{&f.ExtraSpecs}}
		},
	}
	hosts = &table[trustack.Host]{
		name: "hosts", kind: "compute host", order: "name",
		columns: []string{"id", "number", "name", "availability_zone", "hypervisor_type", "hypervisor_version", "hypervisor_hostname", "host_ip",
			"vcpus", "memory_mb", "disk_gb", "cpu_ratio", "ram_ratio", "disk_ratio", "used_vcpus", "used_memory_mb", "used_disk_gb", "running_vms",
			"generation", "enabled", "disabled_reason", "forced_down", "last_seen", "domain", "properties", "security", "physical_networks", "network_node",
			"storage", "created_at", "updated_at"},
		fields: func(h *trustack.Host) []any {
			return []any{&h.ID, &h.Number, &h.Name, &h.AvailabilityZone, &h.HypervisorType, &h.HypervisorVersion, &h.HypervisorHostname, &h.HostIP,
				&h.VCPUs, &h.MemoryMB, &h.DiskGB, &h.CPUAllocationRatio, &h.RAMAllocationRatio, &h.DiskAllocationRatio,
				&h.UsedVCPUs, &h.UsedMemoryMB, &h.UsedDiskGB, &h.RunningVMs, &h.Generation, &h.Enabled, &h.DisabledReason, &h.ForcedDown,
				timeColumn{&h.LastSeen}, &h.Domain, jsonColumn[map[string]string]{&h.Properties}, jsonColumn[map[string]string]{&h.Security},
				stringsColumn(&h.PhysicalNetworks), &h.NetworkNode, jsonColumn[[]trustack.StorageBackend]{&h.Storage}, timeColumn{&h.CreatedAt}, timeColumn{&h.UpdatedAt}}
		},
	}
	serverGroups = &table[trustack.ServerGroup]{
		name: "server_groups", kind: "server group", order: "created_at, id",
		columns: []string{"id", "name", "project_id", "user_id", "policy", "created_at"},
		fields: func(g *trustack.ServerGroup) []any {
			return []any{&g.ID, &g.Name, &g.ProjectID, &g.UserID, &g.Policy, timeColumn{&g.CreatedAt}}
		},
	}
	servers = &table[trustack.Server]{
		name: "servers", kind: "server", order: "created_at, id",
		columns: []string{"id", "name", "project_id", "user_id", "image_id", "flavor", "vcpus", "ram", "key_name", "key_data", "metadata",
			"availability_zone", "user_data", "host", "node", "vm_state", "task_state", "task_owner", "power_state", "fault", "locked", "locked_by",
			"group_id", "hints", "requirements", "rcot", "reservation_id", "launch_index", "access_ipv4", "access_ipv6", "config_drive", "disk_config",
			"ports", "user_ports", "block_devices", "created_at", "updated_at", "launched_at", "terminated_at", "description"},
		fields: func(s *trustack.Server) []any {
			return []any{&s.ID, &s.Name, &s.ProjectID, &s.UserID, &s.ImageID, jsonColumn[trustack.Flavor]{&s.Flavor}, &s.Flavor.VCPUs, &s.Flavor.RAM,
				&s.KeyName, &s.KeyData, jsonColumn[map[string]string]{&s.Metadata}, &s.AvailabilityZone, &s.UserData, &s.Host, &s.Node,
				&s.VMState, &s.TaskState, &s.TaskOwner, &s.PowerState, jsonColumn[*trustack.Fault]{&s.Fault}, &s.Locked, &s.LockedBy,
				&s.GroupID, jsonColumn[map[string][]string]{&s.Hints}, jsonColumn[trustack.Requirements]{&s.Requirements}, &s.RCoT, &s.ReservationID, &s.LaunchIndex, &s.AccessIPv4, &s.AccessIPv6, &s.ConfigDrive, &s.DiskConfig,
				stringsColumn(&s.Ports), stringsColumn(&s.UserPorts), jsonColumn[[]trustack.BlockDevice]{&s.BlockDevices}, timeColumn{&s.CreatedAt}, timeColumn{&s.UpdatedAt}, timeColumn{&s.LaunchedAt}, timeColumn{&s.TerminatedAt},
				optionalColumn{&s.Description}}
		},
	}
)

// Flavors.

func (db *DB) CreateFlavor(ctx context.Context, f *trustack.Flavor) error {
	return flavors.insert(ctx, db.write, f)
}

func (db *DB) Flavor(ctx context.Context, id string) (*trustack.Flavor, error) {
	return flavors.get(ctx, db.read, id)
}

// Flavors returns the flavors matching f, ordered by ID.
func (db *DB) Flavors(ctx context.Context, f trustack.FlavorFilter) ([]*trustack.Flavor, error) {
	var w where
	w.eq("name", f.Name)
	if f.MinRAM > 0 {
		w.add("ram >= ?", f.MinRAM)
	}
	if f.MinDisk > 0 {
		w.add("disk >= ?", f.MinDisk)
	}
	switch {
	case f.Public != nil && *f.Public:
		w.add("public = ?", true)
	case f.Public != nil && !*f.Public:
		w.add("public = ?", false)
	}
	if f.VisibleTo != "" {
		w.add("(public = ? OR id IN (SELECT flavor_id FROM flavor_access WHERE project_id = ?))", true, f.VisibleTo)
	}
	return flavors.list(ctx, db.read, w)
}

func (db *DB) UpdateFlavor(ctx context.Context, id string, fn func(*trustack.Flavor) error) (*trustack.Flavor, error) {
	return flavors.update(ctx, db, id, fn)
}

func (db *DB) DeleteFlavor(ctx context.Context, id string) error {
	return flavors.delete(ctx, db.write, id)
}

// FlavorAccess returns the projects a private flavor is shared with.
func (db *DB) FlavorAccess(ctx context.Context, flavorID string) ([]string, error) {
	return db.strings(ctx, `SELECT project_id FROM flavor_access WHERE flavor_id = $1 ORDER BY project_id`, flavorID)
}

// AddFlavorAccess shares a flavor with a project; ECONFLICT if it is.
func (db *DB) AddFlavorAccess(ctx context.Context, flavorID, projectID string) error {
	_, err := db.write.ExecContext(ctx, `INSERT INTO flavor_access (flavor_id, project_id) VALUES ($1, $2)`, flavorID, projectID)
	if err != nil {
		return fmt.Errorf("add flavor access: %w", conflict("flavor access", translate(err)))
	}
	return nil
}

// RemoveFlavorAccess stops sharing a flavor with a project.
func (db *DB) RemoveFlavorAccess(ctx context.Context, flavorID, projectID string) error {
	return db.deleteOne(ctx, `DELETE FROM flavor_access WHERE flavor_id = $1 AND project_id = $2`,
		trustack.Errorf(trustack.ENOTFOUND, "Flavor access not found for %s / %s combination.", flavorID, projectID), flavorID, projectID)
}

// Keypairs.

// CreateKeypair adds a keypair for its user, who may hold at most limit
// (-1 for no limit): EOVERQUOTA beyond, ECONFLICT for a name in use.
func (db *DB) CreateKeypair(ctx context.Context, k *trustack.Keypair, limit int) error {
	return db.inTx(ctx, func(q querier) error {
		if limit >= 0 {
			var n int
			if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM keypairs WHERE user_id = $1`, k.UserID).Scan(&n); err != nil {
				return err
			}
			if n+1 > limit {
				return overQuota(trustack.QuotaKeyPairs, 1, n, limit)
			}
		}
		_, err := q.ExecContext(ctx, `INSERT INTO keypairs (user_id, name, type, public_key, fingerprint, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
			k.UserID, k.Name, k.Type, k.PublicKey, k.Fingerprint, k.CreatedAt.UnixMicro())
		if err != nil {
			var c *constraintError
			if errors.As(translate(err), &c) {
				return trustack.Errorf(trustack.ECONFLICT, "Key pair '%s' already exists.", k.Name)
			}
			return fmt.Errorf("create keypair: %w", err)
		}
		return nil
	})
}

func (db *DB) Keypair(ctx context.Context, userID, name string) (*trustack.Keypair, error) {
	list, err := db.keypairs(ctx, `WHERE user_id = $1 AND name = $2`, userID, name)
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, trustack.Errorf(trustack.ENOTFOUND, "Keypair %s not found for user %s", name, userID)
	}
	return list[0], nil
}

// Keypairs returns the user's keypairs, by name.
func (db *DB) Keypairs(ctx context.Context, userID string) ([]*trustack.Keypair, error) {
	return db.keypairs(ctx, `WHERE user_id = $1`, userID)
}

func (db *DB) keypairs(ctx context.Context, where string, args ...any) ([]*trustack.Keypair, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT user_id, name, type, public_key, fingerprint, created_at FROM keypairs `+where+` ORDER BY name`, args...)
	if err != nil {
		return nil, fmt.Errorf("list keypairs: %w", err)
	}
	defer rows.Close()
	var out []*trustack.Keypair
	for rows.Next() {
		k := new(trustack.Keypair)
		if err := rows.Scan(&k.UserID, &k.Name, &k.Type, &k.PublicKey, &k.Fingerprint, timeColumn{&k.CreatedAt}); err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

func (db *DB) DeleteKeypair(ctx context.Context, userID, name string) error {
	return db.deleteOne(ctx, `DELETE FROM keypairs WHERE user_id = $1 AND name = $2`,
		trustack.Errorf(trustack.ENOTFOUND, "Keypair %s not found for user %s", name, userID), userID, name)
}

// Hosts.

// RegisterHost records a compute host by name: a new one is created, a
// known one gets the description, capacity and wiring (physical networks,
// network node) it reports now, and keeps its ID, claims, usage and
// service state. Its availability zone is its aggregates' if one has one
// (see UpdateAggregate), else the one it registers with. It returns the
// host as stored.
func (db *DB) RegisterHost(ctx context.Context, h *trustack.Host) (*trustack.Host, error) {
	for attempt := 0; ; attempt++ {
		out, err := db.registerHost(ctx, h)
		// Hosts registering at once may pick the same new number, or both
		// insert the same name; one wins, and the others try again.
		if trustack.ErrorCode(err) != trustack.ECONFLICT || attempt == 10 {
			return out, err
		}
	}
}

func (db *DB) registerHost(ctx context.Context, h *trustack.Host) (*trustack.Host, error) {
	var out *trustack.Host
	err := db.inTx(ctx, func(q querier) error {
		var id string
		err := q.QueryRowContext(ctx, `SELECT id FROM hosts WHERE name = $1`+db.lockRow(), h.Name).Scan(&id)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			if err := q.QueryRowContext(ctx, `SELECT COALESCE(MAX(number), 0) + 1 FROM hosts`).Scan(&h.Number); err != nil {
				return fmt.Errorf("number host %s: %w", h.Name, err)
			}
			if err := holdDomain(ctx, db, q, h.Domain); err != nil {
				return err
			}
			if err := hosts.insert(ctx, q, h); err != nil {
				return err
			}
			if _, err := q.ExecContext(ctx, `UPDATE hosts SET registered_zone = availability_zone WHERE id = $1`, h.ID); err != nil {
				return fmt.Errorf("register host %s: %w", h.Name, err)
			}
			id = h.ID
		case err != nil:
			return fmt.Errorf("register host %s: %w", h.Name, err)
		default:
			_, err := q.ExecContext(ctx, `UPDATE hosts SET registered_zone = $1, hypervisor_type = $2, hypervisor_version = $3,
				hypervisor_hostname = $4, host_ip = $5, vcpus = $6, memory_mb = $7, disk_gb = $8, cpu_ratio = $9, ram_ratio = $10,
				disk_ratio = $11, last_seen = $12, updated_at = $13, physical_networks = $14, network_node = $15, storage = $16,
				generation = generation + 1 WHERE id = $17`,
				h.AvailabilityZone, h.HypervisorType, h.HypervisorVersion, h.HypervisorHostname, h.HostIP, h.VCPUs, h.MemoryMB, h.DiskGB,
				h.CPUAllocationRatio, h.RAMAllocationRatio, h.DiskAllocationRatio, h.LastSeen.UnixMicro(), h.UpdatedAt.UnixMicro(),
				stringsColumn(&h.PhysicalNetworks), h.NetworkNode, jsonColumn[[]trustack.StorageBackend]{&h.Storage}, id)
			if err != nil {
				return fmt.Errorf("register host %s: %w", h.Name, err)
			}
		}
		if err := setZones(ctx, q, []string{h.Name}); err != nil {
			return err
		}
		out, err = getHost(ctx, q, id)
		return err
	})
	return out, err
}

// Host returns a compute host with its tenants; ENOTFOUND.
func (db *DB) Host(ctx context.Context, id string) (*trustack.Host, error) {
	return getHost(ctx, db.read, id)
}

// getHost reads a host and its tenants.
func getHost(ctx context.Context, q querier, id string) (*trustack.Host, error) {
	h, err := hosts.get(ctx, q, id)
	if err != nil {
		return nil, err
	}
	return h, addTenants(ctx, q, h)
}

// HostByName returns the host with the given name, with its tenants;
// ENOTFOUND.
func (db *DB) HostByName(ctx context.Context, name string) (*trustack.Host, error) {
	list, err := hosts.list(ctx, db.read, where{conds: []string{"name = $1"}, args: []any{name}})
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, trustack.Errorf(trustack.ENOTFOUND, "Compute host %s could not be found.", name)
	}
	return list[0], addTenants(ctx, db.read, list[0])
}

// Hosts returns every compute host, by name, with its tenants.
func (db *DB) Hosts(ctx context.Context) ([]*trustack.Host, error) {
	list, err := hosts.list(ctx, db.read, where{})
	if err != nil {
		return nil, err
	}
	return list, addAllTenants(ctx, db.read, list)
}

// UpdateHost changes a host's service state, domain or properties; its
// generation moves on, so that no claim made on the host as it was
// succeeds. What fn does to the usage, the generation or the tenants is
// ignored: only claims change them. A domain that does not exist is
// ENOTFOUND.
func (db *DB) UpdateHost(ctx context.Context, id string, fn func(*trustack.Host) error) (*trustack.Host, error) {
	var was trustack.Host
	var h *trustack.Host
	return hosts.updateAnd(ctx, db, id, func(cur *trustack.Host) error {
		was = *cur
		if err := fn(cur); err != nil {
			return err
		}
		cur.UsedVCPUs, cur.UsedMemoryMB, cur.UsedDiskGB, cur.RunningVMs = was.UsedVCPUs, was.UsedMemoryMB, was.UsedDiskGB, was.RunningVMs
		cur.Generation = was.Generation + 1
		h = cur
		return nil
	}, func(q querier) error {
		if h.Domain != was.Domain {
			if err := holdDomain(ctx, db, q, h.Domain); err != nil {
				return err
			}
		}
		return addTenants(ctx, q, h)
	})
}

// DeleteHost forgets a host that has no claims; ECONFLICT if it has.
func (db *DB) DeleteHost(ctx context.Context, id string) error {
	return db.inTx(ctx, func(q querier) error {
		var n int
		if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM claims WHERE host_id = $1`, id).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return trustack.Errorf(trustack.ECONFLICT, "Compute host %s still has %d servers; delete or move them first.", id, n)
		}
		return hosts.delete(ctx, q, id)
	})
}

// SetLastSeen records heartbeats: for each host name, the time it was last
// heard from. Unknown names are ignored.
func (db *DB) SetLastSeen(ctx context.Context, seen map[string]time.Time) error {
	return db.inTx(ctx, func(q querier) error {
		for name, t := range seen {
			if _, err := q.ExecContext(ctx, `UPDATE hosts SET last_seen = $1 WHERE name = $2 AND last_seen < $1`, t.UnixMicro(), name); err != nil {
				return fmt.Errorf("record heartbeat of %s: %w", name, err)
			}
		}
		return nil
	})
}

// Claims.

// Claim records that c.ServerID takes c's resources of c.HostID, if the
// host is still at generation (a compare-and-swap: ECONFLICT naming the
// host if another claim came first, so the caller can look again), still
// has room and admits c's project beside its tenants (trustack.Admits:
// neither the claim's isolation nor theirs excludes the other). If group
// is not nil, the claim also keeps the group's policy, checked while
// holding the group: anti-affinity refuses a host that already runs a
// member, affinity a host other than the members'. It returns the host
// after the claim.
func (db *DB) Claim(ctx context.Context, c trustack.Claim, generation int64, group *trustack.ServerGroup) (*trustack.Host, error) {
	var out *trustack.Host
	err := db.inTx(ctx, func(q querier) error {
		if group != nil {
			if err := checkGroup(ctx, db, q, c, group); err != nil {
				return err
			}
		}
		tenants, err := take(ctx, q, c, generation)
		if err != nil {
			return err
		}
		if _, err := q.ExecContext(ctx, `INSERT INTO claims (server_id, host_id, vcpus, memory_mb, disk_gb, project_id, isolation) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			c.ServerID, c.HostID, c.VCPUs, c.MemoryMB, c.DiskGB, c.ProjectID, c.Isolation.String()); err != nil {
			return fmt.Errorf("claim on host %s: %w", c.HostID, conflict("claim", translate(err)))
		}
		if out, err = hosts.get(ctx, q, c.HostID); err != nil {
			return err
		}
		out.Tenants = sortTenants(trustack.WithTenant(tenants, c.ProjectID, c.Isolation))
		return nil
	})
	return out, err
}

// take is the compare-and-swap of a claim: c's resources are taken of
// c.HostID if it is at generation, has room and admits c's project. It returns the host's tenants before the claim. The update
// holds the host's row until the transaction ends, so its tenants cannot
// change under the check: concurrent claims on one host take turns.
func take(ctx context.Context, q querier, c trustack.Claim, generation int64) ([]trustack.Tenant, error) {
	res, err := q.ExecContext(ctx, `UPDATE hosts SET used_vcpus = used_vcpus + $1, used_memory_mb = used_memory_mb + $2,
		used_disk_gb = used_disk_gb + $3, running_vms = running_vms + 1, generation = generation + 1
		WHERE id = $4 AND generation = $5
		AND used_vcpus + $1 <= vcpus * cpu_ratio AND used_memory_mb + $2 <= memory_mb * ram_ratio AND used_disk_gb + $3 <= disk_gb * disk_ratio`,
		c.VCPUs, c.MemoryMB, c.DiskGB, c.HostID, generation)
	if err != nil {
		return nil, fmt.Errorf("claim on host %s: %w", c.HostID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, lostClaim(c.HostID)
	}
	tenants, err := tenantsOf(ctx, q, c.HostID)
	if err != nil {
		return nil, fmt.Errorf("claim on host %s: %w", c.HostID, err)
	}
	if !trustack.Admits(tenants, c.ProjectID, c.Isolation) {
		return nil, lostClaim(c.HostID)
	}
	return tenants, nil
}

// MoveClaim moves the claim of c.ServerID to c.HostID in one transaction:
// the new claim is taken as Claim takes one (generation, room, tenants
// and group policy of c.HostID), and what the old claim held is given
// back to its host, whose generation moves on. It returns the host the
// claim left and the host it is on, both after the move; ENOTFOUND if the
// server holds no claim, EINVALID if it is on c.HostID already, ECONFLICT
// as Claim.
func (db *DB) MoveClaim(ctx context.Context, c trustack.Claim, generation int64, group *trustack.ServerGroup) (from, to *trustack.Host, err error) {
	err = db.inTx(ctx, func(q querier) error {
		if group != nil {
			if err := checkGroup(ctx, db, q, c, group); err != nil {
				return err
			}
		}
		old := trustack.Claim{ServerID: c.ServerID}
		err := q.QueryRowContext(ctx, `SELECT host_id, vcpus, memory_mb, disk_gb FROM claims WHERE server_id = $1`+db.lockRow(), c.ServerID).
			Scan(&old.HostID, &old.VCPUs, &old.MemoryMB, &old.DiskGB)
		if errors.Is(err, sql.ErrNoRows) {
			return trustack.Errorf(trustack.ENOTFOUND, "Server %s holds no claim on a compute host to move.", c.ServerID)
		}
		if err != nil {
			return fmt.Errorf("move claim of %s: %w", c.ServerID, err)
		}
		if old.HostID == c.HostID {
			return trustack.Errorf(trustack.EINVALID, "The claim of server %s is on host %s already.", c.ServerID, c.HostID)
		}
		// Both hosts are locked in the order of their IDs, so that a move
		// the other way waits for this one instead of deadlocking.
		if db.backend == "postgres" {
			if _, err := column(ctx, q, `SELECT id FROM hosts WHERE id IN ($1, $2) ORDER BY id FOR UPDATE`, old.HostID, c.HostID); err != nil {
				return fmt.Errorf("move claim of %s: %w", c.ServerID, err)
			}
		}
		if _, err := take(ctx, q, c, generation); err != nil {
			return err
		}
		if err := giveBack(ctx, q, old); err != nil {
			return fmt.Errorf("move claim of %s: %w", c.ServerID, err)
		}
		if _, err := q.ExecContext(ctx, `UPDATE claims SET host_id = $1, vcpus = $2, memory_mb = $3, disk_gb = $4, project_id = $5, isolation = $6
			WHERE server_id = $7`, c.HostID, c.VCPUs, c.MemoryMB, c.DiskGB, c.ProjectID, c.Isolation.String(), c.ServerID); err != nil {
			return fmt.Errorf("move claim of %s: %w", c.ServerID, err)
		}
		if from, err = getHost(ctx, q, old.HostID); err != nil {
			return err
		}
		to, err = getHost(ctx, q, c.HostID)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return from, to, nil
}

// giveBack returns what claim c took of its host; the host's generation
// moves on.
func giveBack(ctx context.Context, q querier, c trustack.Claim) error {
	_, err := q.ExecContext(ctx, `UPDATE hosts SET used_vcpus = used_vcpus - $1, used_memory_mb = used_memory_mb - $2,
		used_disk_gb = used_disk_gb - $3, running_vms = running_vms - 1, generation = generation + 1 WHERE id = $4`,
		c.VCPUs, c.MemoryMB, c.DiskGB, c.HostID)
	return err
}

// lostClaim is the ECONFLICT of a claim that lost: the host changed since
// it was read, has no room, breaks the group's policy, or runs servers
// that may not share it with the claim's.
func lostClaim(host string) error {
	return trustack.Errorf(trustack.ECONFLICT, "Compute host %s changed, has no room, breaks the server group's policy or the isolation of a project on it.", host)
}

// checkGroup locks the group's row and checks its policy against the claim.
func checkGroup(ctx context.Context, db *DB, q querier, c trustack.Claim, g *trustack.ServerGroup) error {
	res, err := q.ExecContext(ctx, `UPDATE server_groups SET generation = generation + 1 WHERE id = $1`, g.ID)
	if err != nil {
		return fmt.Errorf("lock server group %s: %w", g.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return trustack.Errorf(trustack.ENOTFOUND, "Server group %s not found.", g.ID)
	}
	others, err := column(ctx, q, groupHostsQuery, g.ID, c.ServerID)
	if err != nil {
		return fmt.Errorf("read server group %s: %w", g.ID, err)
	}
	for _, h := range others {
		switch {
		case g.Policy == trustack.PolicyAntiAffinity && h == c.HostID:
			return lostClaim(c.HostID)
		case g.Policy == trustack.PolicyAffinity && h != c.HostID:
			return lostClaim(c.HostID)
		}
	}
	return nil
}

const groupHostsQuery = `SELECT DISTINCT c.host_id FROM claims c JOIN servers s ON s.id = c.server_id
	WHERE s.group_id = $1 AND c.server_id <> $2 ORDER BY c.host_id`

// GroupHosts returns the IDs of the hosts on which the group's members,
// other than exceptServer, hold claims.
func (db *DB) GroupHosts(ctx context.Context, groupID, exceptServer string) ([]string, error) {
	return column(ctx, db.read, groupHostsQuery, groupID, exceptServer)
}

// Release gives back what a server claimed; it is not an error if the
// server holds no claim. It returns the host after the release, or nil.
func (db *DB) Release(ctx context.Context, serverID string) (*trustack.Host, error) {
	var out *trustack.Host
	err := db.inTx(ctx, func(q querier) error {
		var c trustack.Claim
		err := q.QueryRowContext(ctx, `SELECT host_id, vcpus, memory_mb, disk_gb FROM claims WHERE server_id = $1`, serverID).
			Scan(&c.HostID, &c.VCPUs, &c.MemoryMB, &c.DiskGB)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("release claim of %s: %w", serverID, err)
		}
		if _, err := q.ExecContext(ctx, `DELETE FROM claims WHERE server_id = $1`, serverID); err != nil {
			return err
		}
		if err := giveBack(ctx, q, c); err != nil {
			return fmt.Errorf("release claim of %s: %w", serverID, err)
		}
		out, err = getHost(ctx, q, c.HostID)
		return err
	})
	return out, err
}

// Claims returns the claims on a host ("" for all), by server.
func (db *DB) Claims(ctx context.Context, hostID string) ([]trustack.Claim, error) {
	var w where
	w.eq("host_id", hostID)
	rows, err := db.read.QueryContext(ctx, `SELECT server_id, host_id, vcpus, memory_mb, disk_gb, project_id, isolation FROM claims`+w.sql()+` ORDER BY server_id`, w.args...)
	if err != nil {
		return nil, fmt.Errorf("list claims: %w", err)
	}
	defer rows.Close()
	var out []trustack.Claim
	for rows.Next() {
		var c trustack.Claim
		var iso string
		if err := rows.Scan(&c.ServerID, &c.HostID, &c.VCPUs, &c.MemoryMB, &c.DiskGB, &c.ProjectID, &iso); err != nil {
			return nil, err
		}
		if c.Isolation, err = parseIsolation(iso); err != nil {
			return nil, fmt.Errorf("claim of %s: %w", c.ServerID, err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// Servers.

// CreateServers adds servers of one project, all or none, if the project's
// quota allows them: limits maps quota resources (instances, cores, ram,
// and server_group_members for servers in a group) to their limits, -1 for
// none. Going over a limit gives EOVERQUOTA with Nova's message. Unless
// nil, action is recorded for each server, as AddAction does. The servers'
// new ports are made with them, each as CreatePort makes one.
func (db *DB) CreateServers(ctx context.Context, list []*trustack.Server, ports trustack.NewPorts, limits map[string]int, action *trustack.InstanceAction) error {
	if len(list) == 0 {
		return nil
	}
	project := list[0].ProjectID
	return db.inProjectTx(ctx, project, func(q querier) error {
		// The ports first, as CreatePort makes them, so that the
		// project's quota lock is held for the counts and the servers
		// alone.
		for _, p := range ports.Ports {
			if p.ProjectID != project {
				return fmt.Errorf("create servers of project %s: port %s is of project %s", project, p.ID, p.ProjectID)
			}
			if err := db.createPort(ctx, q, p, ports.Alloc); err != nil {
				return err
			}
		}
		if err := lockProject(ctx, db, q, project); err != nil {
			return err
		}
		if len(ports.Ports) > 0 {
			if err := checkLockedQuota(ctx, q, project, trustack.QuotaPort, ports.Limit, 0); err != nil {
				return err
			}
		}
		usage, err := usage(ctx, q, project)
		if err != nil {
			return err
		}
		want := map[string]int{trustack.QuotaInstances: len(list)}
		for _, s := range list {
			want[trustack.QuotaCores] += s.Flavor.VCPUs
			want[trustack.QuotaRAM] += s.Flavor.RAM
		}
		for _, r := range []string{trustack.QuotaInstances, trustack.QuotaCores, trustack.QuotaRAM} {
			if limit, ok := limits[r]; ok && limit >= 0 && usage[r]+want[r] > limit {
				return overQuota(r, want[r], usage[r], limit)
			}
		}
		if g := list[0].GroupID; g != "" {
			var members int
			if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM servers WHERE group_id = $1 AND vm_state <> $2`, g, trustack.VMDeleted).Scan(&members); err != nil {
				return err
			}
			if limit, ok := limits[trustack.QuotaServerGroupMembers]; ok && limit >= 0 && members+len(list) > limit {
				return overQuota(trustack.QuotaServerGroupMembers, len(list), members, limit)
			}
		}
		for _, s := range list {
			if err := servers.insert(ctx, q, s); err != nil {
				return err
			}
			if action != nil {
				a := *action
				a.ServerID = s.ID
				if err := addAction(ctx, q, a); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// lockProject holds the project's quota lock until the transaction ends.
func lockProject(ctx context.Context, db *DB, q querier, project string) error {
	if _, err := q.ExecContext(ctx, `INSERT INTO quota_locks (project_id) VALUES ($1) ON CONFLICT DO NOTHING`, project); err != nil {
		return fmt.Errorf("lock quota of %s: %w", project, err)
	}
	var p string
	return q.QueryRowContext(ctx, `SELECT project_id FROM quota_locks WHERE project_id = $1`+db.lockRow(), project).Scan(&p)
}

func overQuota(resource string, requested, used, limit int) error {
	return trustack.Errorf(trustack.EOVERQUOTA, "Quota exceeded for %s: Requested %d, but already used %d of %d %s", resource, requested, used, limit, resource)
}

// usage counts what a project's servers and groups take of its quota.
func usage(ctx context.Context, q querier, project string) (map[string]int, error) {
	var instances, cores, ram, groups int
	// The state is spelt out, not a parameter, so that the planners see
	// the servers_live_usage index applies.
	err := q.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(vcpus), 0), COALESCE(SUM(ram), 0), (SELECT COUNT(*) FROM server_groups WHERE project_id = $1)
		FROM servers WHERE project_id = $1 AND vm_state <> '`+trustack.VMDeleted+`'`, project).Scan(&instances, &cores, &ram, &groups)
	if err != nil {
		return nil, fmt.Errorf("count usage of %s: %w", project, err)
	}
	return map[string]int{trustack.QuotaInstances: instances, trustack.QuotaCores: cores, trustack.QuotaRAM: ram, trustack.QuotaServerGroups: groups}, nil
}

// Usage returns what a project uses of its quota.
func (db *DB) Usage(ctx context.Context, projectID string) (map[string]int, error) {
	return usage(ctx, db.read, projectID)
}

func (db *DB) Server(ctx context.Context, id string) (*trustack.Server, error) {
	return servers.get(ctx, db.read, id)
}

// Servers returns the servers matching f, oldest first.
func (db *DB) Servers(ctx context.Context, f trustack.ServerFilter) ([]*trustack.Server, error) {
	var w where
	w.eq("project_id", f.ProjectID)
	w.eq("host", f.Host)
	w.eq("image_id", f.ImageID)
	w.eq("reservation_id", f.ReservationID)
	w.in("id", f.IDs)
	if len(f.Status) > 0 {
		w.in("vm_state", f.Status)
	}
	if !f.IncludeDeleted {
		w.add("vm_state <> ?", trustack.VMDeleted)
	}
	if f.InTask {
		w.add("task_state <> ?", "")
	}
	if !f.ChangesSince.IsZero() {
		w.add("updated_at >= ?", f.ChangesSince.UnixMicro())
	}
	list, err := servers.list(ctx, db.read, w)
	if err != nil {
		return nil, err
	}
	var name *regexp.Regexp
	if f.Name != "" {
		if name, err = regexp.Compile(f.Name); err != nil {
			name = regexp.MustCompile(regexp.QuoteMeta(f.Name))
		}
	}
	out := list[:0]
	started := f.Marker == ""
	for _, s := range list {
		if !started {
			started = s.ID == f.Marker
			continue
		}
		if (name != nil && !name.MatchString(s.Name)) || (f.FlavorID != "" && s.Flavor.ID != f.FlavorID) {
			continue
		}
		if f.Limit > 0 && len(out) == f.Limit {
			break
		}
		out = append(out, s)
	}
	if !started {
		return nil, trustack.Errorf(trustack.EINVALID, "marker [%s] not found", f.Marker)
	}
	return out, nil
}

// UpdateServer reads a server, lets fn change it and writes it back in one
// transaction, in which its ports follow it (see bindPorts); an error from
// fn changes nothing.
func (db *DB) UpdateServer(ctx context.Context, id string, fn func(*trustack.Server) error) (*trustack.Server, error) {
	var s *trustack.Server
	return servers.updateAnd(ctx, db, id, func(v *trustack.Server) error {
		s = v
		return fn(v)
	}, func(q querier) error { return db.bindPorts(ctx, q, s) })
}

// UpdateServerWithEvent is UpdateServer that also records an event of the
// server's action requestID, as AddEvent does, in the same transaction.
func (db *DB) UpdateServerWithEvent(ctx context.Context, id, requestID string, e trustack.ActionEvent, fn func(*trustack.Server) error) (*trustack.Server, error) {
	var s *trustack.Server
	return servers.updateAnd(ctx, db, id, func(v *trustack.Server) error {
		s = v
		return fn(v)
	}, func(q querier) error {
		if err := db.bindPorts(ctx, q, s); err != nil {
			return err
		}
		return addEvent(ctx, q, id, requestID, e)
	})
}

// Server groups.

// CreateServerGroup adds a group if the project has fewer than limit (-1
// for no limit).
func (db *DB) CreateServerGroup(ctx context.Context, g *trustack.ServerGroup, limit int) error {
	return db.inProjectTx(ctx, g.ProjectID, func(q querier) error {
		if err := lockProject(ctx, db, q, g.ProjectID); err != nil {
			return err
		}
		u, err := usage(ctx, q, g.ProjectID)
		if err != nil {
			return err
		}
		if limit >= 0 && u[trustack.QuotaServerGroups]+1 > limit {
			return overQuota(trustack.QuotaServerGroups, 1, u[trustack.QuotaServerGroups], limit)
		}
		_, err = q.ExecContext(ctx, `INSERT INTO server_groups (id, name, project_id, user_id, policy, generation, created_at) VALUES ($1, $2, $3, $4, $5, 0, $6)`,
			g.ID, g.Name, g.ProjectID, g.UserID, g.Policy, g.CreatedAt.UnixMicro())
		if err != nil {
			return fmt.Errorf("create server group: %w", conflict("server group", translate(err)))
		}
		return nil
	})
}

// ServerGroup returns a group with its members (servers not deleted).
func (db *DB) ServerGroup(ctx context.Context, id string) (*trustack.ServerGroup, error) {
	g, err := serverGroups.get(ctx, db.read, id)
	if err != nil {
		return nil, err
	}
	return g, db.members(ctx, g)
}

// ServerGroups returns a project's groups ("" for every project's).
func (db *DB) ServerGroups(ctx context.Context, projectID string) ([]*trustack.ServerGroup, error) {
	var w where
	w.eq("project_id", projectID)
	list, err := serverGroups.list(ctx, db.read, w)
	if err != nil {
		return nil, err
	}
	for _, g := range list {
		if err := db.members(ctx, g); err != nil {
			return nil, err
		}
	}
	return list, nil
}

func (db *DB) members(ctx context.Context, g *trustack.ServerGroup) error {
	var err error
	g.Members, err = db.strings(ctx, `SELECT id FROM servers WHERE group_id = $1 AND vm_state <> $2 ORDER BY created_at, id`, g.ID, trustack.VMDeleted)
	return err
}

func (db *DB) DeleteServerGroup(ctx context.Context, id string) error {
	return serverGroups.delete(ctx, db.write, id)
}

// Instance actions.

// AddAction records an action; its events follow with AddEvent.
func (db *DB) AddAction(ctx context.Context, a trustack.InstanceAction) error {
	return addAction(ctx, db.write, a)
}

func addAction(ctx context.Context, q querier, a trustack.InstanceAction) error {
	_, err := q.ExecContext(ctx, `INSERT INTO instance_actions (server_id, request_id, action, user_id, project_id, start_time, message)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, a.ServerID, a.RequestID, a.Action, a.UserID, a.ProjectID, a.StartTime.UnixMicro(), a.Message)
	if err != nil {
		return fmt.Errorf("record action %s of %s: %w", a.Action, a.ServerID, conflict("instance action", translate(err)))
	}
	return nil
}

// AddEvent records an event of an action, or its end if it was recorded
// already; an event that failed marks its action failed.
func (db *DB) AddEvent(ctx context.Context, serverID, requestID string, e trustack.ActionEvent) error {
	return db.inTx(ctx, func(q querier) error { return addEvent(ctx, q, serverID, requestID, e) })
}

func addEvent(ctx context.Context, q querier, serverID, requestID string, e trustack.ActionEvent) error {
	res, err := q.ExecContext(ctx, `UPDATE action_events SET finish_time = $1, result = $2, host = $3, details = $4
		WHERE server_id = $5 AND request_id = $6 AND event = $7`,
		timeValue(e.FinishTime), e.Result, e.Host, e.Details, serverID, requestID, e.Event)
	if err != nil {
		return fmt.Errorf("record event %s: %w", e.Event, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, err := q.ExecContext(ctx, `INSERT INTO action_events (server_id, request_id, event, start_time, finish_time, result, host, details)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, serverID, requestID, e.Event, e.StartTime.UnixMicro(), timeValue(e.FinishTime), e.Result, e.Host, e.Details); err != nil {
			return fmt.Errorf("record event %s: %w", e.Event, err)
		}
	}
	if e.Result == "Error" {
		if _, err := q.ExecContext(ctx, `UPDATE instance_actions SET message = $1 WHERE server_id = $2 AND request_id = $3`, "Error", serverID, requestID); err != nil {
			return err
		}
	}
	return nil
}

func timeValue(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// Actions returns a server's actions, newest first, without events.
func (db *DB) Actions(ctx context.Context, serverID string) ([]trustack.InstanceAction, error) {
	return db.actions(ctx, `WHERE server_id = $1`, serverID)
}

// Action returns one action of a server with its events.
func (db *DB) Action(ctx context.Context, serverID, requestID string) (*trustack.InstanceAction, error) {
	list, err := db.actions(ctx, `WHERE server_id = $1 AND request_id = $2`, serverID, requestID)
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, trustack.Errorf(trustack.ENOTFOUND, "Action for request_id %s on instance %s not found", requestID, serverID)
	}
	a := list[0]
	rows, err := db.read.QueryContext(ctx, `SELECT event, start_time, finish_time, result, host, details FROM action_events
		WHERE server_id = $1 AND request_id = $2 ORDER BY start_time, event`, serverID, requestID)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var e trustack.ActionEvent
		if err := rows.Scan(&e.Event, timeColumn{&e.StartTime}, timeColumn{&e.FinishTime}, &e.Result, &e.Host, &e.Details); err != nil {
			return nil, err
		}
		a.Events = append(a.Events, e)
	}
	return &a, rows.Err()
}

func (db *DB) actions(ctx context.Context, where string, args ...any) ([]trustack.InstanceAction, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT server_id, request_id, action, user_id, project_id, start_time, message FROM instance_actions `+
		where+` ORDER BY start_time DESC, request_id`, args...)
	if err != nil {
		return nil, fmt.Errorf("list actions: %w", err)
	}
	defer rows.Close()
	var out []trustack.InstanceAction
	for rows.Next() {
		var a trustack.InstanceAction
		if err := rows.Scan(&a.ServerID, &a.RequestID, &a.Action, &a.UserID, &a.ProjectID, timeColumn{&a.StartTime}, &a.Message); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// Quotas.

// Quotas returns the limits set for a project, by resource; resources not
// set take the defaults, which are not the store's concern.
func (db *DB) Quotas(ctx context.Context, projectID string) (map[string]int, error) {
	return computeQuotas.of(ctx, db, projectID)
}

// SetQuotas sets limits of a project.
func (db *DB) SetQuotas(ctx context.Context, projectID string, limits map[string]int) error {
	return computeQuotas.set(ctx, db, projectID, limits)
}

// DeleteQuotas returns a project to the default limits.
func (db *DB) DeleteQuotas(ctx context.Context, projectID string) error {
	return computeQuotas.clear(ctx, db, projectID)
}

// Helpers.

// strings runs a query returning one string column.
func (db *DB) strings(ctx context.Context, query string, args ...any) ([]string, error) {
	return column(ctx, db.read, query, args...)
}

// column runs a query returning one string column.
func column(ctx context.Context, q querier, query string, args ...any) ([]string, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// deleteOne runs a DELETE and returns notFound if it removed nothing.
func (db *DB) deleteOne(ctx context.Context, query string, notFound error, args ...any) error {
	res, err := db.write.ExecContext(ctx, query, args...)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound
	}
	return nil
}
