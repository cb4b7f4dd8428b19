package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/trustack/trustack"
)

var (
	domains = &table[trustack.Domain]{
		name: "domains", kind: "domain", order: "name, id",
		columns: []string{"id", "name", "description", "enabled", "extra"},
		fields: func(d *trustack.Domain) []any {
			return []any{&d.ID, &d.Name, &d.Description, &d.Enabled, extraColumn(&d.Extra)}
		},
	}
	projects = &table[trustack.Project]{
		name: "projects", kind: "project", order: "name, id",
		columns: []string{"id", "name", "description", "domain_id", "parent_id", "enabled", "tags", "extra"},
		fields: func(p *trustack.Project) []any {
			return []any{&p.ID, &p.Name, &p.Description, &p.DomainID, &p.ParentID, &p.Enabled, jsonColumn[[]string]{&p.Tags}, extraColumn(&p.Extra)}
		},
	}
	users = &table[trustack.User]{
		name: "users", kind: "user", order: "name, id",
		columns: []string{"id", "name", "domain_id", "default_project_id", "enabled", "extra"},
		fields: func(u *trustack.User) []any {
			return []any{&u.ID, &u.Name, &u.DomainID, &u.DefaultProjectID, &u.Enabled, extraColumn(&u.Extra)}
		},
	}
	groups = &table[trustack.Group]{
		name: "user_groups", kind: "group", order: "name, id",
		columns: []string{"id", "name", "description", "domain_id", "extra"},
		fields: func(g *trustack.Group) []any {
			return []any{&g.ID, &g.Name, &g.Description, &g.DomainID, extraColumn(&g.Extra)}
		},
	}
	roles = &table[trustack.Role]{
		name: "roles", kind: "role", order: "name, id",
		columns: []string{"id", "name", "description", "extra"},
		fields: func(r *trustack.Role) []any {
			return []any{&r.ID, &r.Name, &r.Description, extraColumn(&r.Extra)}
		},
	}
	regions = &table[trustack.Region]{
		name: "regions", kind: "region", order: "id",
		columns: []string{"id", "description", "parent_region_id", "extra"},
		fields: func(r *trustack.Region) []any {
			return []any{&r.ID, &r.Description, nullColumn{&r.ParentRegionID}, extraColumn(&r.Extra)}
		},
	}
	services = &table[trustack.Service]{
		name: "services", kind: "service", order: "type, name, id",
		columns: []string{"id", "type", "name", "description", "enabled", "extra"},
		fields: func(s *trustack.Service) []any {
			return []any{&s.ID, &s.Type, &s.Name, &s.Description, &s.Enabled, extraColumn(&s.Extra)}
		},
	}
	endpoints = &table[trustack.Endpoint]{
		name: "endpoints", kind: "endpoint", order: "service_id, interface, id",
		columns: []string{"id", "service_id", "region_id", "interface", "url", "enabled", "extra"},
		fields: func(e *trustack.Endpoint) []any {
			return []any{&e.ID, &e.ServiceID, nullColumn{&e.RegionID}, &e.Interface, &e.URL, &e.Enabled, extraColumn(&e.Extra)}
		},
	}
	credentials = &table[trustack.Credential]{
		name: "credentials", kind: "credential", order: "user_id, id",
		columns: []string{"id", "user_id", "project_id", "type", "blob", "access", "extra"},
		fields: func(c *trustack.Credential) []any {
			return []any{&c.ID, &c.UserID, nullColumn{&c.ProjectID}, &c.Type, &c.Blob, &c.Access, extraColumn(&c.Extra)}
		},
	}
)

// Domains.

func (db *DB) CreateDomain(ctx context.Context, d *trustack.Domain) error {
	return domains.insert(ctx, db.write, d)
}

func (db *DB) Domain(ctx context.Context, id string) (*trustack.Domain, error) {
	return domains.get(ctx, db.read, id)
}

func (db *DB) Domains(ctx context.Context, f trustack.DomainFilter) ([]*trustack.Domain, error) {
	var w where
	w.eq("name", f.Name)
	w.flag("enabled", f.Enabled)
	return domains.list(ctx, db.read, w)
}

func (db *DB) UpdateDomain(ctx context.Context, id string, fn func(*trustack.Domain) error) (*trustack.Domain, error) {
	return domains.update(ctx, db, id, fn)
}

// DeleteDomain deletes the domain with everything in it: its projects,
// users and groups, and every assignment that names one of them.
func (db *DB) DeleteDomain(ctx context.Context, id string) error {
	return db.inTx(ctx, func(tx querier) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM assignments WHERE target_id = $1
			OR target_id IN (SELECT id FROM projects WHERE domain_id = $1)
			OR actor_id IN (SELECT id FROM users WHERE domain_id = $1)
			OR actor_id IN (SELECT id FROM user_groups WHERE domain_id = $1)`, id)
		if err != nil {
			return fmt.Errorf("delete assignments of domain %s: %w", id, err)
		}
		return domains.delete(ctx, tx, id)
	})
}

// Projects.

func (db *DB) CreateProject(ctx context.Context, p *trustack.Project) error {
	return projects.insert(ctx, db.write, p)
}

func (db *DB) Project(ctx context.Context, id string) (*trustack.Project, error) {
	return projects.get(ctx, db.read, id)
}

func (db *DB) Projects(ctx context.Context, f trustack.ProjectFilter) ([]*trustack.Project, error) {
	var w where
	w.eq("domain_id", f.DomainID)
	w.eq("name", f.Name)
	w.eq("parent_id", f.ParentID)
	w.flag("enabled", f.Enabled)
	w.in("id", f.IDs)
	return projects.list(ctx, db.read, w)
}

func (db *DB) UpdateProject(ctx context.Context, id string, fn func(*trustack.Project) error) (*trustack.Project, error) {
	return projects.update(ctx, db, id, fn)
}

// DeleteProject deletes the project and the assignments on it.
func (db *DB) DeleteProject(ctx context.Context, id string) error {
	return deleteWithAssignments(ctx, db, projects, "target_id", id)
}

// deleteWithAssignments deletes the row id of t and the assignments whose
// column (actor_id or target_id) names it, in one transaction.
func deleteWithAssignments[T any](ctx context.Context, db *DB, t *table[T], column, id string) error {
	return db.inTx(ctx, func(tx querier) error {
		if _, err := tx.ExecContext(ctx, "DELETE FROM assignments WHERE "+column+" = $1", id); err != nil {
			return fmt.Errorf("delete assignments of %s %s: %w", t.kind, id, err)
		}
		return t.delete(ctx, tx, id)
	})
}

// Users.

// CreateUser adds the user with the given password hash ("" for a user
// who cannot authenticate with a password).
func (db *DB) CreateUser(ctx context.Context, u *trustack.User, passwordHash string) error {
	return db.inTx(ctx, func(tx querier) error {
		if err := users.insert(ctx, tx, u); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE users SET password_hash = $1 WHERE id = $2`, passwordHash, u.ID)
		return err
	})
}

func (db *DB) User(ctx context.Context, id string) (*trustack.User, error) {
	return users.get(ctx, db.read, id)
}

func (db *DB) Users(ctx context.Context, f trustack.UserFilter) ([]*trustack.User, error) {
	var w where
	w.eq("domain_id", f.DomainID)
	w.eq("name", f.Name)
	w.flag("enabled", f.Enabled)
	if f.GroupID != "" {
		w.add("id IN (SELECT user_id FROM group_members WHERE group_id = ?)", f.GroupID)
	}
	return users.list(ctx, db.read, w)
}

func (db *DB) UpdateUser(ctx context.Context, id string, fn func(*trustack.User) error) (*trustack.User, error) {
	return users.update(ctx, db, id, fn)
}

// DeleteUser deletes the user, its group memberships and its assignments.
func (db *DB) DeleteUser(ctx context.Context, id string) error {
	return deleteWithAssignments(ctx, db, users, "actor_id", id)
}

// PasswordHash returns the user's password hash, "" if it has none.
func (db *DB) PasswordHash(ctx context.Context, userID string) (string, error) {
	var hash string
	err := db.read.QueryRowContext(ctx, `SELECT password_hash FROM users WHERE id = $1`, userID).Scan(&hash)
	if errors.Is(err, sql.ErrNoRows) {
		return "", users.notFound(userID)
	}
	return hash, err
}

// SetPasswordHash replaces the user's password hash.
func (db *DB) SetPasswordHash(ctx context.Context, userID, hash string) error {
	res, err := db.write.ExecContext(ctx, `UPDATE users SET password_hash = $1 WHERE id = $2`, hash, userID)
	if err != nil {
		return fmt.Errorf("set password of user %s: %w", userID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return users.notFound(userID)
	}
	return nil
}

// Groups.

func (db *DB) CreateGroup(ctx context.Context, g *trustack.Group) error {
	return groups.insert(ctx, db.write, g)
}

func (db *DB) Group(ctx context.Context, id string) (*trustack.Group, error) {
	return groups.get(ctx, db.read, id)
}

func (db *DB) Groups(ctx context.Context, f trustack.GroupFilter) ([]*trustack.Group, error) {
	var w where
	w.eq("domain_id", f.DomainID)
	w.eq("name", f.Name)
	if f.UserID != "" {
		w.add("id IN (SELECT group_id FROM group_members WHERE user_id = ?)", f.UserID)
	}
	return groups.list(ctx, db.read, w)
}

func (db *DB) UpdateGroup(ctx context.Context, id string, fn func(*trustack.Group) error) (*trustack.Group, error) {
	return groups.update(ctx, db, id, fn)
}

// DeleteGroup deletes the group, its memberships and its assignments.
func (db *DB) DeleteGroup(ctx context.Context, id string) error {
	return deleteWithAssignments(ctx, db, groups, "actor_id", id)
}

// AddGroupMember makes the user a member of the group; it is not an error
// if it already is one.
func (db *DB) AddGroupMember(ctx context.Context, groupID, userID string) error {
	_, err := db.write.ExecContext(ctx, `INSERT INTO group_members (group_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, groupID, userID)
	if err != nil {
		return fmt.Errorf("add user %s to group %s: %w", userID, groupID, conflict("group membership", translate(err)))
	}
	return nil
}

// RemoveGroupMember ends the user's membership, or gives ENOTFOUND.
func (db *DB) RemoveGroupMember(ctx context.Context, groupID, userID string) error {
	res, err := db.write.ExecContext(ctx, `DELETE FROM group_members WHERE group_id = $1 AND user_id = $2`, groupID, userID)
	if err != nil {
		return fmt.Errorf("remove user %s from group %s: %w", userID, groupID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return trustack.Errorf(trustack.ENOTFOUND, "User %s is not a member of group %s.", userID, groupID)
	}
	return nil
}

// IsGroupMember reports whether the user is a member of the group.
func (db *DB) IsGroupMember(ctx context.Context, groupID, userID string) (bool, error) {
	var one int
	err := db.read.QueryRowContext(ctx, `SELECT 1 FROM group_members WHERE group_id = $1 AND user_id = $2`, groupID, userID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// Roles.

func (db *DB) CreateRole(ctx context.Context, r *trustack.Role) error {
	return roles.insert(ctx, db.write, r)
}

func (db *DB) Role(ctx context.Context, id string) (*trustack.Role, error) {
	return roles.get(ctx, db.read, id)
}

func (db *DB) Roles(ctx context.Context, f trustack.RoleFilter) ([]*trustack.Role, error) {
	var w where
	w.eq("name", f.Name)
	return roles.list(ctx, db.read, w)
}

func (db *DB) UpdateRole(ctx context.Context, id string, fn func(*trustack.Role) error) (*trustack.Role, error) {
	return roles.update(ctx, db, id, fn)
}

// DeleteRole deletes the role, its implications and its assignments.
func (db *DB) DeleteRole(ctx context.Context, id string) error {
	return roles.delete(ctx, db.write, id)
}

// CreateImpliedRole records that prior implies implied; it is not an error
// if it already does.
func (db *DB) CreateImpliedRole(ctx context.Context, r trustack.ImpliedRole) error {
	_, err := db.write.ExecContext(ctx, `INSERT INTO implied_roles (prior_id, implied_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, r.PriorID, r.ImpliedID)
	if err != nil {
		return fmt.Errorf("create implied role: %w", conflict("implied role", translate(err)))
	}
	return nil
}

// DeleteImpliedRole removes the implication, or gives ENOTFOUND.
func (db *DB) DeleteImpliedRole(ctx context.Context, r trustack.ImpliedRole) error {
	res, err := db.write.ExecContext(ctx, `DELETE FROM implied_roles WHERE prior_id = $1 AND implied_id = $2`, r.PriorID, r.ImpliedID)
	if err != nil {
		return fmt.Errorf("delete implied role: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return trustack.Errorf(trustack.ENOTFOUND, "Could not find implied role: %s implies %s.", r.PriorID, r.ImpliedID)
	}
	return nil
}

// ImpliedRoles returns every implication, ordered by prior role.
func (db *DB) ImpliedRoles(ctx context.Context) ([]trustack.ImpliedRole, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT prior_id, implied_id FROM implied_roles ORDER BY prior_id, implied_id`)
	if err != nil {
		return nil, fmt.Errorf("list implied roles: %w", err)
	}
	defer rows.Close()
	var out []trustack.ImpliedRole
	for rows.Next() {
		var r trustack.ImpliedRole
		if err := rows.Scan(&r.PriorID, &r.ImpliedID); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Assignments.

// assignmentKey returns the stored form of an assignment.
func assignmentKey(a trustack.Assignment) (actorType, actorID, targetType, targetID string) {
	actorType, actorID = "user", a.UserID
	if a.GroupID != "" {
		actorType, actorID = "group", a.GroupID
	}
	targetType, targetID = "project", a.ProjectID
	if a.DomainID != "" {
		targetType, targetID = "domain", a.DomainID
	}
	return
}

// Grant records the assignment; it is not an error if it exists.
func (db *DB) Grant(ctx context.Context, a trustack.Assignment) error {
	at, aid, tt, tid := assignmentKey(a)
	_, err := db.write.ExecContext(ctx, `INSERT INTO assignments (role_id, actor_type, actor_id, target_type, target_id)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`, a.RoleID, at, aid, tt, tid)
	if err != nil {
		return fmt.Errorf("grant: %w", conflict("role assignment", translate(err)))
	}
	return nil
}

// RevokeGrant removes the assignment, or gives ENOTFOUND.
func (db *DB) RevokeGrant(ctx context.Context, a trustack.Assignment) error {
	at, aid, tt, tid := assignmentKey(a)
	res, err := db.write.ExecContext(ctx, `DELETE FROM assignments
		WHERE role_id = $1 AND actor_type = $2 AND actor_id = $3 AND target_type = $4 AND target_id = $5`, a.RoleID, at, aid, tt, tid)
	if err != nil {
		return fmt.Errorf("revoke grant: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return trustack.Errorf(trustack.ENOTFOUND, "Could not find role assignment with role: %s, actor: %s, target: %s.", a.RoleID, aid, tid)
	}
	return nil
}

// Assignments returns the assignments matching f. With f.UserID and
// f.IncludeGroups, it also returns those of the user's groups, which keep
// their GroupID.
func (db *DB) Assignments(ctx context.Context, f trustack.AssignmentFilter) ([]trustack.Assignment, error) {
	var w where
	w.eq("role_id", f.RoleID)
	switch {
	case f.UserID != "" && f.IncludeGroups:
		w.add(`((actor_type = 'user' AND actor_id = ?) OR (actor_type = 'group' AND actor_id IN (SELECT group_id FROM group_members WHERE user_id = ?)))`, f.UserID, f.UserID)
	case f.UserID != "":
		w.add("actor_type = 'user' AND actor_id = ?", f.UserID)
	}
	if f.GroupID != "" {
		w.add("actor_type = 'group' AND actor_id = ?", f.GroupID)
	}
	if f.ProjectID != "" {
		w.add("target_type = 'project' AND target_id = ?", f.ProjectID)
	}
	if f.DomainID != "" {
		w.add("target_type = 'domain' AND target_id = ?", f.DomainID)
	}
	rows, err := db.read.QueryContext(ctx, `SELECT role_id, actor_type, actor_id, target_type, target_id FROM assignments`+w.sql()+
		` ORDER BY actor_type, actor_id, target_type, target_id, role_id`, w.args...)
	if err != nil {
		return nil, fmt.Errorf("list assignments: %w", err)
	}
	defer rows.Close()
	var out []trustack.Assignment
	for rows.Next() {
		var a trustack.Assignment
		var at, aid, tt, tid string
		if err := rows.Scan(&a.RoleID, &at, &aid, &tt, &tid); err != nil {
			return nil, err
		}
		if at == "user" {
			a.UserID = aid
		} else {
			a.GroupID = aid
		}
		if tt == "project" {
			a.ProjectID = tid
		} else {
			a.DomainID = tid
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// Regions.

func (db *DB) CreateRegion(ctx context.Context, r *trustack.Region) error {
	return regions.insert(ctx, db.write, r)
}

func (db *DB) Region(ctx context.Context, id string) (*trustack.Region, error) {
	return regions.get(ctx, db.read, id)
}

func (db *DB) Regions(ctx context.Context, f trustack.RegionFilter) ([]*trustack.Region, error) {
	var w where
	w.eq("parent_region_id", f.ParentRegionID)
	return regions.list(ctx, db.read, w)
}

func (db *DB) UpdateRegion(ctx context.Context, id string, fn func(*trustack.Region) error) (*trustack.Region, error) {
	return regions.update(ctx, db, id, fn)
}

// DeleteRegion deletes the region; one that still has child regions or
// endpoints gives ECONFLICT.
func (db *DB) DeleteRegion(ctx context.Context, id string) error {
	return regions.delete(ctx, db.write, id)
}

// Services.

func (db *DB) CreateService(ctx context.Context, s *trustack.Service) error {
	return services.insert(ctx, db.write, s)
}

func (db *DB) Service(ctx context.Context, id string) (*trustack.Service, error) {
	return services.get(ctx, db.read, id)
}

func (db *DB) Services(ctx context.Context, f trustack.ServiceFilter) ([]*trustack.Service, error) {
	var w where
	w.eq("type", f.Type)
	w.eq("name", f.Name)
	return services.list(ctx, db.read, w)
}

func (db *DB) UpdateService(ctx context.Context, id string, fn func(*trustack.Service) error) (*trustack.Service, error) {
	return services.update(ctx, db, id, fn)
}

// DeleteService deletes the service and its endpoints.
func (db *DB) DeleteService(ctx context.Context, id string) error {
	return services.delete(ctx, db.write, id)
}

// Endpoints.

func (db *DB) CreateEndpoint(ctx context.Context, e *trustack.Endpoint) error {
	return endpoints.insert(ctx, db.write, e)
}

func (db *DB) Endpoint(ctx context.Context, id string) (*trustack.Endpoint, error) {
	return endpoints.get(ctx, db.read, id)
}

func (db *DB) Endpoints(ctx context.Context, f trustack.EndpointFilter) ([]*trustack.Endpoint, error) {
	var w where
	w.eq("service_id", f.ServiceID)
	w.eq("region_id", f.RegionID)
	w.eq("interface", f.Interface)
	return endpoints.list(ctx, db.read, w)
}

func (db *DB) UpdateEndpoint(ctx context.Context, id string, fn func(*trustack.Endpoint) error) (*trustack.Endpoint, error) {
	return endpoints.update(ctx, db, id, fn)
}

func (db *DB) DeleteEndpoint(ctx context.Context, id string) error {
	return endpoints.delete(ctx, db.write, id)
}

// Credentials. Their blobs are stored as given: the identity service
// encrypts them.

// CreateCredential adds the credential; an ID or an access key in use
// gives ECONFLICT, and so does a user or a project that does not exist.
func (db *DB) CreateCredential(ctx context.Context, c *trustack.Credential) error {
	return credentials.insert(ctx, db.write, c)
}

func (db *DB) Credential(ctx context.Context, id string) (*trustack.Credential, error) {
	return credentials.get(ctx, db.read, id)
}

func (db *DB) Credentials(ctx context.Context, f trustack.CredentialFilter) ([]*trustack.Credential, error) {
	var w where
	w.eq("user_id", f.UserID)
	w.eq("type", f.Type)
	w.eq("access", f.Access)
	return credentials.list(ctx, db.read, w)
}

func (db *DB) UpdateCredential(ctx context.Context, id string, fn func(*trustack.Credential) error) (*trustack.Credential, error) {
	return credentials.update(ctx, db, id, fn)
}

func (db *DB) DeleteCredential(ctx context.Context, id string) error {
	return credentials.delete(ctx, db.write, id)
}

// Revocations.

// AddRevocation records the revocation.
func (db *DB) AddRevocation(ctx context.Context, r trustack.Revocation) error {
	_, err := db.write.ExecContext(ctx, `INSERT INTO revocations (audit_id, user_id, issued_before, expires_at) VALUES ($1, $2, $3, $4)`,
		r.AuditID, r.UserID, r.IssuedBefore.UnixMicro(), r.ExpiresAt.UnixMicro())
	if err != nil {
		return fmt.Errorf("record revocation: %w", err)
	}
	return nil
}

// IsRevoked reports whether a revocation matches a token of the user,
// issued at issuedAt, with any of the audit IDs.
func (db *DB) IsRevoked(ctx context.Context, userID string, issuedAt time.Time, auditIDs []string) (bool, error) {
	var any where // conditions joined by OR
	any.in("audit_id", auditIDs)
	any.add("(user_id = ? AND issued_before > ?)", userID, issuedAt.UnixMicro())
	query := `SELECT 1 FROM revocations WHERE ` + strings.Join(any.conds, " OR ") + ` LIMIT 1`
	var one int
	err := db.read.QueryRowContext(ctx, query, any.args...).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("check revocations: %w", err)
	}
	return true, nil
}

// PruneRevocations forgets the revocations that expired before t, since
// every token they could match has expired too.
func (db *DB) PruneRevocations(ctx context.Context, t time.Time) error {
	_, err := db.write.ExecContext(ctx, `DELETE FROM revocations WHERE expires_at < $1`, t.UnixMicro())
	return err
}
