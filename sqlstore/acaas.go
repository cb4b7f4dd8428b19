package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/trustack/trustack"
)

// The store keeps what acaas.Store and scheduler.Hosts ask; sqlstore
// imports neither (storetest.Store holds both, and checks at compile time).

var (
	locations = &table[trustack.Location]{
		name: "locations", kind: "location", order: "name",
		columns: []string{"name", "country"},
		fields:  func(l *trustack.Location) []any { return []any{&l.Name, &l.Country} },
	}
	physicalDomains = &table[trustack.PhysicalDomain]{
		name: "physical_domains", kind: "physical domain", order: "name",
		columns: []string{"name", "location", "capabilities", "dcot", "source", "created_at"},
		fields: func(d *trustack.PhysicalDomain) []any {
			return []any{&d.Name, &d.Location, jsonColumn[map[string]string]{&d.Capabilities}, &d.DCoT, &d.Source, timeColumn{&d.CreatedAt}}
		},
	}
	requirementEntries = &table[trustack.RequirementEntry]{
		name: "requirement_entries", kind: "requirement entry", order: "name",
		columns: []string{"name", "kind", "description"},
		fields:  func(e *trustack.RequirementEntry) []any { return []any{&e.Name, &e.Kind, &e.Description} },
	}
)

// isConstraint reports whether err is a violated constraint, unique or
// foreign key as asked.
func isConstraint(err error, unique bool) bool {
	var c *constraintError
	return errors.As(err, &c) && c.unique == unique
}

func locationNotFound(name string) error {
	return trustack.Errorf(trustack.ENOTFOUND, "Location %s could not be found.", name)
}

func domainNotFound(name string) error {
	return trustack.Errorf(trustack.ENOTFOUND, "Physical domain %s could not be found.", name)
}

func entryNotFound(name string) error {
	return trustack.Errorf(trustack.ENOTFOUND, "Requirement entry %s could not be found.", name)
}

// shareRow returns the suffix that makes a SELECT in a transaction keep
// others from changing or deleting the rows it reads, while letting them
// read and share them, until the transaction ends. SQLite needs none.
func (db *DB) shareRow() string {
	if db.backend == "postgres" {
		return " FOR SHARE"
	}
	return ""
}

// Locations.

// CreateLocation adds a location; ECONFLICT for a name in use.
func (db *DB) CreateLocation(ctx context.Context, l *trustack.Location) error {
	if err := locations.add(ctx, db.write, l); err != nil {
		if isConstraint(err, true) {
			return trustack.Errorf(trustack.ECONFLICT, "Location %s already exists.", l.Name)
		}
		return fmt.Errorf("create location %s: %w", l.Name, err)
	}
	return nil
}

// Locations returns every location, by name.
func (db *DB) Locations(ctx context.Context) ([]*trustack.Location, error) {
	list, err := locations.list(ctx, db.read, where{})
	if err != nil {
		return nil, err
	}
	// Sorted here, as everywhere in this file: PostgreSQL's collation may
	// order names otherwise than Go does.
	slices.SortFunc(list, func(a, b *trustack.Location) int { return cmp.Compare(a.Name, b.Name) })
	return list, nil
}

// DeleteLocation removes a location and its distances; ENOTFOUND, or
// ECONFLICT while a physical domain is there.
func (db *DB) DeleteLocation(ctx context.Context, name string) error {
	return db.inTx(ctx, func(q querier) error {
		var n int
		if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM physical_domains WHERE location = $1`, name).Scan(&n); err != nil {
			return fmt.Errorf("delete location %s: %w", name, err)
		}
		if n > 0 {
			return trustack.Errorf(trustack.ECONFLICT, "Location %s still has %s; delete or move %s first.", name, count(n, "physical domain"), them(n))
		}
		res, err := q.ExecContext(ctx, `DELETE FROM locations WHERE name = $1`, name)
		if err != nil {
			// A domain created there since the count.
			if err = translate(err); isConstraint(err, false) {
				return trustack.Errorf(trustack.ECONFLICT, "Location %s still has physical domains; delete or move them first.", name)
			}
			return fmt.Errorf("delete location %s: %w", name, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return locationNotFound(name)
		}
		return nil
	})
}

// count is "1 host" or "3 hosts".
func count(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

// them is "it" for one, "them" for more.
func them(n int) string {
	if n == 1 {
		return "it"
	}
	return "them"
}

// SetDistance records the distance between two locations, replacing what
// was recorded; ENOTFOUND for an unknown location, EINVALID for a location
// and itself.
func (db *DB) SetDistance(ctx context.Context, d trustack.Distance) error {
	k := trustack.DistanceKey(d.A, d.B)
	if k[0] == k[1] {
		return trustack.Errorf(trustack.EINVALID, "Location %s is 0 km from itself; a distance is between two locations.", d.A)
	}
	return db.inTx(ctx, func(q querier) error {
		for _, name := range k {
			if err := holdRow(ctx, q, `SELECT name FROM locations WHERE name = $1`+db.shareRow(), name, locationNotFound(name)); err != nil {
				return err
			}
		}
		_, err := q.ExecContext(ctx, `INSERT INTO distances (a, b, km) VALUES ($1, $2, $3)
			ON CONFLICT (a, b) DO UPDATE SET km = excluded.km`, k[0], k[1], d.KM)
		if err != nil {
			return fmt.Errorf("set distance %s-%s: %w", k[0], k[1], translate(err))
		}
		return nil
	})
}

// holdRow reads the one row of query, which locks it, keeping others from
// deleting it until the transaction ends; notFound if there is none.
func holdRow(ctx context.Context, q querier, query, key string, notFound error) error {
	var got string
	err := q.QueryRowContext(ctx, query, key).Scan(&got)
	if errors.Is(err, sql.ErrNoRows) {
		return notFound
	}
	return err
}

// Distances returns every recorded distance, with A < B.
func (db *DB) Distances(ctx context.Context) ([]trustack.Distance, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT a, b, km FROM distances`)
	if err != nil {
		return nil, fmt.Errorf("list distances: %w", err)
	}
	defer rows.Close()
	var out []trustack.Distance
	for rows.Next() {
		var d trustack.Distance
		if err := rows.Scan(&d.A, &d.B, &d.KM); err != nil {
			return nil, fmt.Errorf("list distances: %w", err)
		}
		out = append(out, d)
	}
	slices.SortFunc(out, func(x, y trustack.Distance) int { return cmp.Or(cmp.Compare(x.A, y.A), cmp.Compare(x.B, y.B)) })
	return out, rows.Err()
}

// Physical domains.

// CreatePhysicalDomain adds a physical domain with its collaborators;
// ECONFLICT for a name in use, ENOTFOUND for an unknown location or
// collaborator.
func (db *DB) CreatePhysicalDomain(ctx context.Context, d *trustack.PhysicalDomain) error {
	return db.inTx(ctx, func(q querier) error {
		if err := physicalDomains.add(ctx, q, d); err != nil {
			switch {
			case isConstraint(err, true):
				return trustack.Errorf(trustack.ECONFLICT, "Physical domain %s already exists.", d.Name)
			case isConstraint(err, false): // its one reference
				return locationNotFound(d.Location)
			}
			return fmt.Errorf("create physical domain %s: %w", d.Name, err)
		}
		return addCollaborators(ctx, q, d)
	})
}

// addCollaborators records d's collaborators. The domain's row is there, so
// a missing reference is a collaborator.
func addCollaborators(ctx context.Context, q querier, d *trustack.PhysicalDomain) error {
	for _, c := range d.Collaborators {
		_, err := q.ExecContext(ctx, `INSERT INTO domain_collaborators (domain, backup, priority) VALUES ($1, $2, $3)`, d.Name, c.Domain, c.Priority)
		if err = translate(err); err != nil {
			switch {
			case isConstraint(err, true):
				return trustack.Errorf(trustack.EINVALID, "Physical domain %s names collaborator %s more than once.", d.Name, c.Domain)
			case isConstraint(err, false):
				return domainNotFound(c.Domain)
			}
			return fmt.Errorf("add collaborator %s of physical domain %s: %w", c.Domain, d.Name, err)
		}
	}
	return nil
}

// PhysicalDomain returns a physical domain with its collaborators;
// ENOTFOUND.
func (db *DB) PhysicalDomain(ctx context.Context, name string) (*trustack.PhysicalDomain, error) {
	return physicalDomain(ctx, db.read, name, "")
}

func physicalDomain(ctx context.Context, q querier, name, suffix string) (*trustack.PhysicalDomain, error) {
	d, err := physicalDomains.getSQL(ctx, q, name, suffix)
	if trustack.ErrorCode(err) == trustack.ENOTFOUND {
		return nil, domainNotFound(name)
	}
	if err != nil {
		return nil, err
	}
	return d, addDomainCollaborators(ctx, q, []*trustack.PhysicalDomain{d}, name)
}

// PhysicalDomains returns every physical domain, by name, with its
// collaborators.
func (db *DB) PhysicalDomains(ctx context.Context) ([]*trustack.PhysicalDomain, error) {
	list, err := physicalDomains.list(ctx, db.read, where{})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(list, func(a, b *trustack.PhysicalDomain) int { return cmp.Compare(a.Name, b.Name) })
	return list, addDomainCollaborators(ctx, db.read, list, "")
}

// addDomainCollaborators fills in the collaborators of the domains, those
// of the domain named only ("" for all), by priority and then name.
func addDomainCollaborators(ctx context.Context, q querier, list []*trustack.PhysicalDomain, only string) error {
	byName := make(map[string]*trustack.PhysicalDomain, len(list))
	for _, d := range list {
		d.Collaborators = nil
		byName[d.Name] = d
	}
	var w where
	w.eq("domain", only)
	rows, err := q.QueryContext(ctx, `SELECT domain, backup, priority FROM domain_collaborators`+w.sql(), w.args...)
	if err != nil {
		return fmt.Errorf("list collaborators: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var c trustack.Collaborator
		if err := rows.Scan(&name, &c.Domain, &c.Priority); err != nil {
			return fmt.Errorf("list collaborators: %w", err)
		}
		if d := byName[name]; d != nil {
			d.Collaborators = append(d.Collaborators, c)
		}
	}
	for _, d := range list {
		sortCollaborators(d.Collaborators)
	}
	return rows.Err()
}

func sortCollaborators(list []trustack.Collaborator) {
	slices.SortFunc(list, func(a, b trustack.Collaborator) int {
		return cmp.Or(cmp.Compare(a.Priority, b.Priority), cmp.Compare(a.Domain, b.Domain))
	})
}

// UpdatePhysicalDomain reads a physical domain, lets fn change it and
// writes it back with its collaborators, all in one transaction; an error
// from fn changes nothing. The generation of each member host moves on,
// so that no claim made on the domain as it was succeeds. ENOTFOUND for
// the domain, or for an unknown location or collaborator; EINVALID if fn
// renames it.
func (db *DB) UpdatePhysicalDomain(ctx context.Context, name string, fn func(*trustack.PhysicalDomain) error) (*trustack.PhysicalDomain, error) {
	var d *trustack.PhysicalDomain
	err := db.inTx(ctx, func(q querier) error {
		var err error
		if d, err = physicalDomain(ctx, q, name, db.lockRow()); err != nil {
			return err
		}
		if err := fn(d); err != nil {
			return err
		}
		if d.Name != name {
			return trustack.Errorf(trustack.EINVALID, "The name of physical domain %s cannot be changed.", name)
		}
		_, err = q.ExecContext(ctx, `UPDATE physical_domains SET location = $1, capabilities = $2, dcot = $3, source = $4 WHERE name = $5`,
			d.Location, jsonColumn[map[string]string]{&d.Capabilities}, d.DCoT, d.Source, name)
		if err = translate(err); err != nil {
			if isConstraint(err, false) {
				return locationNotFound(d.Location)
			}
			return fmt.Errorf("update physical domain %s: %w", name, err)
		}
		if _, err := q.ExecContext(ctx, `DELETE FROM domain_collaborators WHERE domain = $1`, name); err != nil {
			return fmt.Errorf("update physical domain %s: %w", name, err)
		}
		if err := addCollaborators(ctx, q, d); err != nil {
			return err
		}
		// The member hosts are locked in the order of their IDs, as moves
		// of claims lock theirs, so that neither waits for the other in a
		// circle.
		if db.backend == "postgres" {
			if _, err := column(ctx, q, `SELECT id FROM hosts WHERE domain = $1 ORDER BY id FOR UPDATE`, name); err != nil {
				return fmt.Errorf("update hosts of physical domain %s: %w", name, err)
			}
		}
		if _, err := q.ExecContext(ctx, `UPDATE hosts SET generation = generation + 1 WHERE domain = $1`, name); err != nil {
			return fmt.Errorf("update hosts of physical domain %s: %w", name, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sortCollaborators(d.Collaborators)
	return d, nil
}

// DeletePhysicalDomain removes a physical domain; ENOTFOUND, or ECONFLICT
// while hosts are members or it is another domain's collaborator.
func (db *DB) DeletePhysicalDomain(ctx context.Context, name string) error {
	return db.inTx(ctx, func(q querier) error {
		// Held first, so that a host joining meanwhile (UpdateHost holds
		// the domain's row too) is counted below or refused.
		if err := holdRow(ctx, q, `SELECT name FROM physical_domains WHERE name = $1`+db.lockRow(), name, domainNotFound(name)); err != nil {
			return err
		}
		var n int
		if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM hosts WHERE domain = $1`, name).Scan(&n); err != nil {
			return fmt.Errorf("delete physical domain %s: %w", name, err)
		}
		if n > 0 {
			return trustack.Errorf(trustack.ECONFLICT, "Physical domain %s still has %s; remove %s first.", name, count(n, "host"), them(n))
		}
		of, err := column(ctx, q, `SELECT domain FROM domain_collaborators WHERE backup = $1 AND domain <> $1 ORDER BY domain`, name)
		if err != nil {
			return fmt.Errorf("delete physical domain %s: %w", name, err)
		}
		if len(of) > 0 {
			return trustack.Errorf(trustack.ECONFLICT, "Physical domain %s is a collaborator of %s; remove it there first.", name, joinNames(of))
		}
		if _, err := q.ExecContext(ctx, `DELETE FROM physical_domains WHERE name = $1`, name); err != nil {
			if err = translate(err); isConstraint(err, false) {
				return trustack.Errorf(trustack.ECONFLICT, "Physical domain %s is another domain's collaborator; remove it there first.", name)
			}
			return fmt.Errorf("delete physical domain %s: %w", name, err)
		}
		return nil
	})
}

// joinNames is "a", "a and b" or "a, b and c".
func joinNames(names []string) string {
	slices.Sort(names)
	switch len(names) {
	case 0:
		return ""
	case 1:
		return names[0]
	}
	out := names[0]
	for _, n := range names[1 : len(names)-1] {
		out += ", " + n
	}
	return out + " and " + names[len(names)-1]
}

// holdDomain checks that a host may join the named domain ("" for none):
// ENOTFOUND if it does not exist. It holds the domain's row until the
// transaction ends, so that the domain cannot be deleted under the host.
func holdDomain(ctx context.Context, db *DB, q querier, name string) error {
	if name == "" {
		return nil
	}
	return holdRow(ctx, q, `SELECT name FROM physical_domains WHERE name = $1`+db.shareRow(), name, domainNotFound(name))
}

// Topology returns the locations, the distances between them, the
// physical domains and the host aggregates, as placement needs them.
func (db *DB) Topology(ctx context.Context) (*trustack.Topology, error) {
	locs, err := db.Locations(ctx)
	if err != nil {
		return nil, err
	}
	dists, err := db.Distances(ctx)
	if err != nil {
		return nil, err
	}
	doms, err := db.PhysicalDomains(ctx)
	if err != nil {
		return nil, err
	}
	aggs, err := db.Aggregates(ctx)
	if err != nil {
		return nil, err
	}
	t := &trustack.Topology{
		Aggregates: aggs,
		Locations:  make(map[string]trustack.Location, len(locs)),
		Domains:    make(map[string]*trustack.PhysicalDomain, len(doms)),
		Distances:  make(map[[2]string]int, len(dists)),
	}
	for _, l := range locs {
		t.Locations[l.Name] = *l
	}
	for _, d := range doms {
		t.Domains[d.Name] = d
	}
	for _, d := range dists {
		t.Distances[trustack.DistanceKey(d.A, d.B)] = d.KM
	}
	return t, nil
}

// Tenants.

// parseIsolation reads a claim's stored isolation. A value that does not
// parse is the store's fault, not the caller's: it carries no code.
func parseIsolation(v string) (trustack.Isolation, error) {
	iso, err := trustack.ParseIsolation(v)
	if err != nil {
		return trustack.Isolation{}, fmt.Errorf("stored isolation %q: %s", v, trustack.ErrorMessage(err))
	}
	return iso, nil
}

// tenantsQuery sums the claims on hosts by project and isolation; the
// claims_tenants index holds all it reads.
const tenantsQuery = `SELECT host_id, project_id, isolation, COUNT(*) FROM claims`

// addTenant adds n servers of a project, asking for iso, to tenants.
func addTenant(tenants []trustack.Tenant, project string, iso trustack.Isolation, n int) []trustack.Tenant {
	for i := range tenants {
		if tenants[i].ProjectID == project {
			tenants[i].Isolation = tenants[i].Isolation.With(iso)
			tenants[i].Servers += n
			return tenants
		}
	}
	return append(tenants, trustack.Tenant{ProjectID: project, Isolation: iso, Servers: n})
}

func sortTenants(tenants []trustack.Tenant) []trustack.Tenant {
	slices.SortFunc(tenants, func(a, b trustack.Tenant) int { return cmp.Compare(a.ProjectID, b.ProjectID) })
	return tenants
}

// scanTenants reads rows of tenantsQuery into the tenants of each host ID,
// sorted by project.
func scanTenants(rows *sql.Rows) (map[string][]trustack.Tenant, error) {
	defer rows.Close()
	out := map[string][]trustack.Tenant{}
	isos := map[string]trustack.Isolation{} // parsed once each
	for rows.Next() {
		var host, project, v string
		var n int
		if err := rows.Scan(&host, &project, &v, &n); err != nil {
			return nil, fmt.Errorf("read tenants: %w", err)
		}
		iso, ok := isos[v]
		if !ok {
			var err error
			if iso, err = parseIsolation(v); err != nil {
				return nil, fmt.Errorf("read tenants of host %s: %w", host, err)
			}
			isos[v] = iso
		}
		out[host] = addTenant(out[host], project, iso, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read tenants: %w", err)
	}
	for _, t := range out {
		sortTenants(t)
	}
	return out, nil
}

// tenantsOf returns the tenants of one host, by project.
func tenantsOf(ctx context.Context, q querier, hostID string) ([]trustack.Tenant, error) {
	rows, err := q.QueryContext(ctx, tenantsQuery+` WHERE host_id = $1 GROUP BY host_id, project_id, isolation`, hostID)
	if err != nil {
		return nil, fmt.Errorf("read tenants of host %s: %w", hostID, err)
	}
	all, err := scanTenants(rows)
	if err != nil {
		return nil, err
	}
	return all[hostID], nil
}

// addTenants fills in a host's tenants.
func addTenants(ctx context.Context, q querier, h *trustack.Host) error {
	var err error
	h.Tenants, err = tenantsOf(ctx, q, h.ID)
	return err
}

// addAllTenants fills in the tenants of every host in list, from one query
// over all claims: listing ten thousand hosts must not take ten thousand
// queries.
func addAllTenants(ctx context.Context, q querier, list []*trustack.Host) error {
	rows, err := q.QueryContext(ctx, tenantsQuery+` GROUP BY host_id, project_id, isolation`)
	if err != nil {
		return fmt.Errorf("read tenants: %w", err)
	}
	all, err := scanTenants(rows)
	if err != nil {
		return err
	}
	for _, h := range list {
		h.Tenants = all[h.ID]
	}
	return nil
}

// Requirement entries.

// CreateRequirementEntry adds an entry; ECONFLICT for a name in use.
func (db *DB) CreateRequirementEntry(ctx context.Context, e *trustack.RequirementEntry) error {
	if err := requirementEntries.add(ctx, db.write, e); err != nil {
		if isConstraint(err, true) {
			return trustack.Errorf(trustack.ECONFLICT, "Requirement entry %s already exists.", e.Name)
		}
		return fmt.Errorf("create requirement entry %s: %w", e.Name, err)
	}
	return nil
}

// RequirementEntries returns every entry, by name.
func (db *DB) RequirementEntries(ctx context.Context) ([]*trustack.RequirementEntry, error) {
	list, err := requirementEntries.list(ctx, db.read, where{})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(list, func(a, b *trustack.RequirementEntry) int { return cmp.Compare(a.Name, b.Name) })
	return list, nil
}

// DeleteRequirementEntry removes an entry; ENOTFOUND, or ECONFLICT while a
// project states a requirement of it.
func (db *DB) DeleteRequirementEntry(ctx context.Context, name string) error {
	return db.inTx(ctx, func(q querier) error {
		var n int
		if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM project_requirements WHERE entry = $1`, name).Scan(&n); err != nil {
			return fmt.Errorf("delete requirement entry %s: %w", name, err)
		}
		if n > 0 {
			return trustack.Errorf(trustack.ECONFLICT, "Requirement entry %s is still stated by %s; unset it there first.", name, count(n, "project"))
		}
		res, err := q.ExecContext(ctx, `DELETE FROM requirement_entries WHERE name = $1`, name)
		if err != nil {
			// A project stated it since the count.
			if err = translate(err); isConstraint(err, false) {
				return trustack.Errorf(trustack.ECONFLICT, "Requirement entry %s is still stated by projects; unset it there first.", name)
			}
			return fmt.Errorf("delete requirement entry %s: %w", name, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return entryNotFound(name)
		}
		return nil
	})
}

// Project requirements.

// UpdateProjectRequirement reads a project's requirement for an entry
// (nil for none) and stores what fn makes of it (nil removes it), in one
// transaction, so that an operator's lock is never lost to a member's
// change made at the same moment. An error from fn changes nothing; an
// unknown entry is ENOTFOUND, and a requirement another change created
// meanwhile ECONFLICT.
func (db *DB) UpdateProjectRequirement(ctx context.Context, projectID, entry string, fn func(*trustack.ProjectRequirement) (*trustack.ProjectRequirement, error)) error {
	return db.inTx(ctx, func(q querier) error {
		cur := &trustack.ProjectRequirement{ProjectID: projectID, Entry: entry}
		err := q.QueryRowContext(ctx, `SELECT value, locked, updated_at FROM project_requirements WHERE project_id = $1 AND entry = $2`+db.lockRow(),
			projectID, entry).Scan(&cur.Value, &cur.Locked, timeColumn{&cur.UpdatedAt})
		switch {
		case errors.Is(err, sql.ErrNoRows):
			cur = nil
		case err != nil:
			return fmt.Errorf("read requirement %s of project %s: %w", entry, projectID, err)
		}
		next, err := fn(cur)
		switch {
		case err != nil:
			return err
		case next == nil && cur == nil:
			return nil
		case next == nil:
			_, err = q.ExecContext(ctx, `DELETE FROM project_requirements WHERE project_id = $1 AND entry = $2`, projectID, entry)
		case cur == nil:
			_, err = q.ExecContext(ctx, `INSERT INTO project_requirements (project_id, entry, value, locked, updated_at) VALUES ($1, $2, $3, $4, $5)`,
				projectID, entry, next.Value, next.Locked, timeColumn{&next.UpdatedAt})
		default:
			_, err = q.ExecContext(ctx, `UPDATE project_requirements SET value = $1, locked = $2, updated_at = $3 WHERE project_id = $4 AND entry = $5`,
				next.Value, next.Locked, timeColumn{&next.UpdatedAt}, projectID, entry)
		}
		if err = translate(err); err != nil {
			switch {
			case isConstraint(err, false):
				return entryNotFound(entry)
			case isConstraint(err, true):
				return trustack.Errorf(trustack.ECONFLICT, "Requirement %s of project %s was stated meanwhile; try again.", entry, projectID)
			}
			return fmt.Errorf("update requirement %s of project %s: %w", entry, projectID, err)
		}
		return nil
	})
}

// ProjectRequirements returns a project's requirements ("" for every
// project's), by project and entry.
func (db *DB) ProjectRequirements(ctx context.Context, projectID string) ([]*trustack.ProjectRequirement, error) {
	var w where
	w.eq("project_id", projectID)
	rows, err := db.read.QueryContext(ctx, `SELECT project_id, entry, value, locked, updated_at FROM project_requirements`+w.sql(), w.args...)
	if err != nil {
		return nil, fmt.Errorf("list project requirements: %w", err)
	}
	defer rows.Close()
	var out []*trustack.ProjectRequirement
	for rows.Next() {
		r := new(trustack.ProjectRequirement)
		if err := rows.Scan(&r.ProjectID, &r.Entry, &r.Value, &r.Locked, timeColumn{&r.UpdatedAt}); err != nil {
			return nil, fmt.Errorf("list project requirements: %w", err)
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b *trustack.ProjectRequirement) int {
		return cmp.Or(cmp.Compare(a.ProjectID, b.ProjectID), cmp.Compare(a.Entry, b.Entry))
	})
	return out, rows.Err()
}
