// Package identity is trustack's Keystone: it authenticates users, issues
// and validates Fernet tokens, resolves the roles a token carries, and
// keeps the rules of identity resources (which domain may be deleted, what
// a password change revokes). The wire format lives in
// api/openstack/identity; storage is a Store.
package identity

import (
	"context"
	"encoding/hex"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/trustack/trustack"
)

// Store keeps identity resources. Lookups of missing things give
// ENOTFOUND; duplicates and dangling references give ECONFLICT.
//
// Each Update method reads a thing, lets fn change it and writes it back in
// one transaction. fn may read through the Store but must not write
// through it: on SQLite the transaction holds the only write connection.
type Store interface {
	CreateDomain(ctx context.Context, d *trustack.Domain) error
	Domain(ctx context.Context, id string) (*trustack.Domain, error)
	Domains(ctx context.Context, f trustack.DomainFilter) ([]*trustack.Domain, error)
	UpdateDomain(ctx context.Context, id string, fn func(*trustack.Domain) error) (*trustack.Domain, error)
	DeleteDomain(ctx context.Context, id string) error

	CreateProject(ctx context.Context, p *trustack.Project) error
	Project(ctx context.Context, id string) (*trustack.Project, error)
	Projects(ctx context.Context, f trustack.ProjectFilter) ([]*trustack.Project, error)
	UpdateProject(ctx context.Context, id string, fn func(*trustack.Project) error) (*trustack.Project, error)
	DeleteProject(ctx context.Context, id string) error

	CreateUser(ctx context.Context, u *trustack.User, passwordHash string) error
	User(ctx context.Context, id string) (*trustack.User, error)
	Users(ctx context.Context, f trustack.UserFilter) ([]*trustack.User, error)
	UpdateUser(ctx context.Context, id string, fn func(*trustack.User) error) (*trustack.User, error)
	DeleteUser(ctx context.Context, id string) error
	PasswordHash(ctx context.Context, userID string) (string, error)
	SetPasswordHash(ctx context.Context, userID, hash string) error

	CreateGroup(ctx context.Context, g *trustack.Group) error
	Group(ctx context.Context, id string) (*trustack.Group, error)
	Groups(ctx context.Context, f trustack.GroupFilter) ([]*trustack.Group, error)
	UpdateGroup(ctx context.Context, id string, fn func(*trustack.Group) error) (*trustack.Group, error)
	DeleteGroup(ctx context.Context, id string) error
	AddGroupMember(ctx context.Context, groupID, userID string) error
	RemoveGroupMember(ctx context.Context, groupID, userID string) error
	IsGroupMember(ctx context.Context, groupID, userID string) (bool, error)

	CreateRole(ctx context.Context, r *trustack.Role) error
	Role(ctx context.Context, id string) (*trustack.Role, error)
	Roles(ctx context.Context, f trustack.RoleFilter) ([]*trustack.Role, error)
	UpdateRole(ctx context.Context, id string, fn func(*trustack.Role) error) (*trustack.Role, error)
	DeleteRole(ctx context.Context, id string) error
	CreateImpliedRole(ctx context.Context, r trustack.ImpliedRole) error
	DeleteImpliedRole(ctx context.Context, r trustack.ImpliedRole) error
	ImpliedRoles(ctx context.Context) ([]trustack.ImpliedRole, error)

	Grant(ctx context.Context, a trustack.Assignment) error
	RevokeGrant(ctx context.Context, a trustack.Assignment) error
	Assignments(ctx context.Context, f trustack.AssignmentFilter) ([]trustack.Assignment, error)

	CreateRegion(ctx context.Context, r *trustack.Region) error
	Region(ctx context.Context, id string) (*trustack.Region, error)
	Regions(ctx context.Context, f trustack.RegionFilter) ([]*trustack.Region, error)
	UpdateRegion(ctx context.Context, id string, fn func(*trustack.Region) error) (*trustack.Region, error)
	DeleteRegion(ctx context.Context, id string) error

	CreateService(ctx context.Context, s *trustack.Service) error
	Service(ctx context.Context, id string) (*trustack.Service, error)
	Services(ctx context.Context, f trustack.ServiceFilter) ([]*trustack.Service, error)
	UpdateService(ctx context.Context, id string, fn func(*trustack.Service) error) (*trustack.Service, error)
	DeleteService(ctx context.Context, id string) error

	CreateEndpoint(ctx context.Context, e *trustack.Endpoint) error
	Endpoint(ctx context.Context, id string) (*trustack.Endpoint, error)
	Endpoints(ctx context.Context, f trustack.EndpointFilter) ([]*trustack.Endpoint, error)
	UpdateEndpoint(ctx context.Context, id string, fn func(*trustack.Endpoint) error) (*trustack.Endpoint, error)
	DeleteEndpoint(ctx context.Context, id string) error

	// Credentials are kept as given: the Service encrypts their blobs.
	// Deleting a user or a project deletes its credentials.
	CreateCredential(ctx context.Context, c *trustack.Credential) error
	Credential(ctx context.Context, id string) (*trustack.Credential, error)
	Credentials(ctx context.Context, f trustack.CredentialFilter) ([]*trustack.Credential, error)
	UpdateCredential(ctx context.Context, id string, fn func(*trustack.Credential) error) (*trustack.Credential, error)
	DeleteCredential(ctx context.Context, id string) error

	AddRevocation(ctx context.Context, r trustack.Revocation) error
	IsRevoked(ctx context.Context, userID string, issuedAt time.Time, auditIDs []string) (bool, error)
	PruneRevocations(ctx context.Context, before time.Time) error
}

// Options tune a Service; zero values take the defaults.
type Options struct {
	// TokenExpiration is how long a token lives (default one hour).
	TokenExpiration time.Duration
	// CacheTime is how long a validated token is trusted without reading
	// the store again (default five seconds). Changes made through this
	// Service take effect at once; changes made by another controller
	// sharing the database take at most this long.
	CacheTime time.Duration
	// PasswordHashRounds is bcrypt's cost (default 12).
	PasswordHashRounds int
	// CredentialKeys encrypt the blobs of credentials at rest, as
	// Keystone's [credential] key_repository: keys apart from those that
	// sign tokens, which rotate far more often. Nil: the Service keeps no
	// credentials, and their methods give EUNAVAILABLE.
	CredentialKeys *KeyRepository
	// Now returns the current time (default time.Now).
	Now func() time.Time
}

// Service is the identity service. It embeds its Store, so reads go
// straight to it; the writes it overrides enforce identity's rules and
// keep cached tokens honest. It is safe for concurrent use.
type Service struct {
	Store
	keys    *KeyRepository
	hasher  *hasher
	opts    Options
	cache   expiringCache[*trustack.Token]
	ec2     expiringCache[ec2Credential]
	catalog catalogCache

	// generation counts writes that may change what a token means (a role
	// revoked, a user disabled); a cached validation from an older
	// generation is not trusted.
	generation atomic.Uint64
}

// New returns a Service over store that signs tokens with keys.
func New(store Store, keys *KeyRepository, opts Options) (*Service, error) {
	if opts.TokenExpiration == 0 {
		opts.TokenExpiration = time.Hour
	}
	if opts.CacheTime == 0 {
		opts.CacheTime = 5 * time.Second
	}
	if opts.PasswordHashRounds == 0 {
		opts.PasswordHashRounds = DefaultPasswordHashRounds
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	h, err := newHasher(opts.PasswordHashRounds)
	if err != nil {
		return nil, err
	}
	s := &Service{Store: store, keys: keys, hasher: h, opts: opts}
	return s, nil
}

// changed records a write that may change what tokens mean, the catalog
// they carry, or the credentials they are made from.
func (s *Service) changed() { s.generation.Add(1) }

// NewID returns a new identifier: a random UUID in hex, as Keystone's.
func NewID() string {
	id := uuid.New()
	return hex.EncodeToString(id[:])
}

// checkName returns EINVALID unless name is 1 to max characters long.
func checkName(kind, name string, max int) error {
	if n := utf8.RuneCountInString(name); n == 0 || n > max {
		return trustack.Errorf(trustack.EINVALID, "Invalid input for field '%s.name': the name must have 1 to %d characters.", kind, max)
	}
	return nil
}

// checkTags returns EINVALID unless tags are unique and within Keystone's
// limits: at most 80, each of 1 to 255 characters without / or ,.
func checkTags(tags []string) error {
	if len(tags) > 80 {
		return trustack.Errorf(trustack.EINVALID, "Invalid input for field 'tags': at most 80 tags are allowed.")
	}
	seen := map[string]bool{}
	for _, t := range tags {
		if n := utf8.RuneCountInString(t); n == 0 || n > 255 || strings.ContainsAny(t, "/,") {
			return trustack.Errorf(trustack.EINVALID, "Invalid input for field 'tags': %q must have 1 to 255 characters and no / or ,.", t)
		}
		if seen[t] {
			return trustack.Errorf(trustack.EINVALID, "Invalid input for field 'tags': %q appears twice.", t)
		}
		seen[t] = true
	}
	return nil
}

// Domains.

// CreateDomain adds a domain, giving it an ID.
func (s *Service) CreateDomain(ctx context.Context, d *trustack.Domain) error {
	if err := checkName("domain", d.Name, 64); err != nil {
		return err
	}
	if d.ID == "" {
		d.ID = NewID()
	}
	return s.Store.CreateDomain(ctx, d)
}

// UpdateDomain changes a domain; the default domain cannot be disabled.
func (s *Service) UpdateDomain(ctx context.Context, id string, fn func(*trustack.Domain) error) (*trustack.Domain, error) {
	d, err := s.Store.UpdateDomain(ctx, id, func(d *trustack.Domain) error {
		if err := fn(d); err != nil {
			return err
		}
		if d.ID == trustack.DefaultDomainID && !d.Enabled {
			return trustack.Errorf(trustack.EFORBIDDEN, "The default domain cannot be disabled.")
		}
		return checkName("domain", d.Name, 64)
	})
	s.changed()
	return d, err
}

// DeleteDomain deletes a disabled domain and everything in it. An enabled
// domain, or the default one, gives EFORBIDDEN.
func (s *Service) DeleteDomain(ctx context.Context, id string) error {
	d, err := s.Store.Domain(ctx, id)
	if err != nil {
		return err
	}
	switch {
	case d.ID == trustack.DefaultDomainID:
		return trustack.Errorf(trustack.EFORBIDDEN, "The default domain cannot be deleted.")
	case d.Enabled:
		return trustack.Errorf(trustack.EFORBIDDEN, "Cannot delete a domain that is enabled, please disable it first.")
	}
	err = s.Store.DeleteDomain(ctx, id)
	s.changed()
	return err
}

// Projects.

// CreateProject adds a project to its domain, under ParentID if set.
func (s *Service) CreateProject(ctx context.Context, p *trustack.Project) error {
	if err := checkName("project", p.Name, 64); err != nil {
		return err
	}
	if err := checkTags(p.Tags); err != nil {
		return err
	}
	if p.DomainID == "" {
		p.DomainID = trustack.DefaultDomainID
	}
	if _, err := s.Store.Domain(ctx, p.DomainID); err != nil {
		return err
	}
	if p.ParentID == "" || p.ParentID == p.DomainID {
		p.ParentID = p.DomainID
	} else if parent, err := s.Store.Project(ctx, p.ParentID); err != nil {
		return err
	} else if parent.DomainID != p.DomainID {
		return trustack.Errorf(trustack.EINVALID, "A project's parent must be in the same domain.")
	}
	if p.ID == "" {
		p.ID = NewID()
	}
	return s.Store.CreateProject(ctx, p)
}

// UpdateProject changes a project; its domain and parent are fixed.
func (s *Service) UpdateProject(ctx context.Context, id string, fn func(*trustack.Project) error) (*trustack.Project, error) {
	p, err := s.Store.UpdateProject(ctx, id, func(p *trustack.Project) error {
		domain, parent := p.DomainID, p.ParentID
		if err := fn(p); err != nil {
			return err
		}
		if p.DomainID != domain {
			return trustack.Errorf(trustack.EINVALID, "Update of `domain_id` is not allowed.")
		}
		if p.ParentID != parent {
			return trustack.Errorf(trustack.EFORBIDDEN, "Update of `parent_id` is not allowed.")
		}
		if err := checkTags(p.Tags); err != nil {
			return err
		}
		return checkName("project", p.Name, 64)
	})
	s.changed()
	return p, err
}

// DeleteProject deletes a project that has no child projects, and the
// role assignments on it.
func (s *Service) DeleteProject(ctx context.Context, id string) error {
	children, err := s.Store.Projects(ctx, trustack.ProjectFilter{ParentID: id})
	if err != nil {
		return err
	}
	if len(children) > 0 {
		return trustack.Errorf(trustack.EFORBIDDEN, "Cannot delete the project %s since it is not a leaf in the hierarchy.", id)
	}
	err = s.Store.DeleteProject(ctx, id)
	s.changed()
	return err
}

// Users.

// CreateUser adds a user with a password ("" for none).
func (s *Service) CreateUser(ctx context.Context, u *trustack.User, password string) error {
	if err := s.checkUser(ctx, u); err != nil {
		return err
	}
	var hash string
	if password != "" {
		var err error
		if hash, err = s.hasher.hash(password); err != nil {
			return err
		}
	}
	if u.ID == "" {
		u.ID = NewID()
	}
	return s.Store.CreateUser(ctx, u, hash)
}

func (s *Service) checkUser(ctx context.Context, u *trustack.User) error {
	if err := checkName("user", u.Name, 255); err != nil {
		return err
	}
	if u.DomainID == "" {
		u.DomainID = trustack.DefaultDomainID
	}
	if _, err := s.Store.Domain(ctx, u.DomainID); err != nil {
		return err
	}
	if u.DefaultProjectID != "" {
		if _, err := s.Store.Project(ctx, u.DefaultProjectID); err != nil {
			return err
		}
	}
	return nil
}

// UpdateUser changes a user; its domain is fixed. A non-nil password
// replaces the user's password and revokes the user's tokens.
func (s *Service) UpdateUser(ctx context.Context, id string, fn func(*trustack.User) error, password *string) (*trustack.User, error) {
	var hash string
	if password != nil && *password != "" {
		var err error
		if hash, err = s.hasher.hash(*password); err != nil {
			return nil, err
		}
	}
	u, err := s.Store.UpdateUser(ctx, id, func(u *trustack.User) error {
		domain := u.DomainID
		if err := fn(u); err != nil {
			return err
		}
		if u.DomainID != domain {
			return trustack.Errorf(trustack.EINVALID, "Update of `domain_id` is not allowed.")
		}
		return s.checkUser(ctx, u)
	})
	s.changed()
	if err != nil || password == nil {
		return u, err
	}
	return u, s.setPassword(ctx, id, hash)
}

// setPassword stores a new password hash and revokes every token the user
// was issued before.
func (s *Service) setPassword(ctx context.Context, userID, hash string) error {
	if err := s.Store.SetPasswordHash(ctx, userID, hash); err != nil {
		return err
	}
	now := s.opts.Now()
	return s.revoke(ctx, trustack.Revocation{UserID: userID, IssuedBefore: now, ExpiresAt: now.Add(s.opts.TokenExpiration)})
}

// ChangePassword is a user changing their own password: the original must
// match (EUNAUTHORIZED otherwise). The user's tokens are revoked.
func (s *Service) ChangePassword(ctx context.Context, userID, original, password string) error {
	if _, err := s.Store.User(ctx, userID); err != nil {
		return err
	}
	hash, err := s.Store.PasswordHash(ctx, userID)
	if err != nil {
		return err
	}
	if !s.hasher.matches(hash, original) {
		return trustack.Errorf(trustack.EUNAUTHORIZED, "The original password is not correct.")
	}
	if password == "" {
		return trustack.Errorf(trustack.EINVALID, "Invalid input for field 'password': the new password is empty.")
	}
	newHash, err := s.hasher.hash(password)
	if err != nil {
		return err
	}
	return s.setPassword(ctx, userID, newHash)
}

// DeleteUser deletes a user, its memberships and its role assignments.
func (s *Service) DeleteUser(ctx context.Context, id string) error {
	err := s.Store.DeleteUser(ctx, id)
	s.changed()
	return err
}

// Groups.

// CreateGroup adds a group to its domain.
func (s *Service) CreateGroup(ctx context.Context, g *trustack.Group) error {
	if err := checkName("group", g.Name, 64); err != nil {
		return err
	}
	if g.DomainID == "" {
		g.DomainID = trustack.DefaultDomainID
	}
	if _, err := s.Store.Domain(ctx, g.DomainID); err != nil {
		return err
	}
	if g.ID == "" {
		g.ID = NewID()
	}
	return s.Store.CreateGroup(ctx, g)
}

// UpdateGroup changes a group; its domain is fixed.
func (s *Service) UpdateGroup(ctx context.Context, id string, fn func(*trustack.Group) error) (*trustack.Group, error) {
	return s.Store.UpdateGroup(ctx, id, func(g *trustack.Group) error {
		domain := g.DomainID
		if err := fn(g); err != nil {
			return err
		}
		if g.DomainID != domain {
			return trustack.Errorf(trustack.EINVALID, "Update of `domain_id` is not allowed.")
		}
		return checkName("group", g.Name, 64)
	})
}

// DeleteGroup deletes a group, its memberships and its role assignments.
func (s *Service) DeleteGroup(ctx context.Context, id string) error {
	err := s.Store.DeleteGroup(ctx, id)
	s.changed()
	return err
}

// AddGroupMember adds an existing user to an existing group.
func (s *Service) AddGroupMember(ctx context.Context, groupID, userID string) error {
	if _, err := s.Store.Group(ctx, groupID); err != nil {
		return err
	}
	if _, err := s.Store.User(ctx, userID); err != nil {
		return err
	}
	err := s.Store.AddGroupMember(ctx, groupID, userID)
	s.changed()
	return err
}

// RemoveGroupMember ends a membership.
func (s *Service) RemoveGroupMember(ctx context.Context, groupID, userID string) error {
	err := s.Store.RemoveGroupMember(ctx, groupID, userID)
	s.changed()
	return err
}

// Roles.

// CreateRole adds a role.
func (s *Service) CreateRole(ctx context.Context, r *trustack.Role) error {
	if err := checkName("role", r.Name, 255); err != nil {
		return err
	}
	if r.ID == "" {
		r.ID = NewID()
	}
	return s.Store.CreateRole(ctx, r)
}

// UpdateRole changes a role.
func (s *Service) UpdateRole(ctx context.Context, id string, fn func(*trustack.Role) error) (*trustack.Role, error) {
	r, err := s.Store.UpdateRole(ctx, id, func(r *trustack.Role) error {
		if err := fn(r); err != nil {
			return err
		}
		return checkName("role", r.Name, 255)
	})
	s.changed()
	return r, err
}

// DeleteRole deletes a role with its implications and assignments.
func (s *Service) DeleteRole(ctx context.Context, id string) error {
	err := s.Store.DeleteRole(ctx, id)
	s.changed()
	return err
}

// CreateImpliedRole makes holding one role grant another; both must exist
// and the implication may not form a cycle.
func (s *Service) CreateImpliedRole(ctx context.Context, r trustack.ImpliedRole) error {
	for _, id := range []string{r.PriorID, r.ImpliedID} {
		if _, err := s.Store.Role(ctx, id); err != nil {
			return err
		}
	}
	all, err := s.Store.ImpliedRoles(ctx)
	if err != nil {
		return err
	}
	if _, loops := closure(all, []string{r.ImpliedID})[r.PriorID]; loops {
		return trustack.Errorf(trustack.EINVALID, "Role %s already implies role %s: the implication would form a cycle.", r.ImpliedID, r.PriorID)
	}
	err = s.Store.CreateImpliedRole(ctx, r)
	s.changed()
	return err
}

// DeleteImpliedRole removes an implication.
func (s *Service) DeleteImpliedRole(ctx context.Context, r trustack.ImpliedRole) error {
	err := s.Store.DeleteImpliedRole(ctx, r)
	s.changed()
	return err
}

// closure returns the role IDs in ids and every role they imply.
func closure(implied []trustack.ImpliedRole, ids []string) map[string]struct{} {
	out := map[string]struct{}{}
	for len(ids) > 0 {
		id := ids[len(ids)-1]
		ids = ids[:len(ids)-1]
		if _, seen := out[id]; seen {
			continue
		}
		out[id] = struct{}{}
		for _, r := range implied {
			if r.PriorID == id {
				ids = append(ids, r.ImpliedID)
			}
		}
	}
	return out
}

// Assignments.

// Grant gives a role to a user or group on a project or domain, all of
// which must exist.
func (s *Service) Grant(ctx context.Context, a trustack.Assignment) error {
	if err := s.checkAssignment(ctx, a); err != nil {
		return err
	}
	err := s.Store.Grant(ctx, a)
	s.changed()
	return err
}

// RevokeGrant takes a role away.
func (s *Service) RevokeGrant(ctx context.Context, a trustack.Assignment) error {
	err := s.Store.RevokeGrant(ctx, a)
	s.changed()
	return err
}

// checkAssignment returns ENOTFOUND for the first thing a names that does
// not exist.
func (s *Service) checkAssignment(ctx context.Context, a trustack.Assignment) error {
	if _, err := s.Store.Role(ctx, a.RoleID); err != nil {
		return err
	}
	var err error
	switch {
	case a.UserID != "":
		_, err = s.Store.User(ctx, a.UserID)
	default:
		_, err = s.Store.Group(ctx, a.GroupID)
	}
	if err != nil {
		return err
	}
	switch {
	case a.ProjectID != "":
		_, err = s.Store.Project(ctx, a.ProjectID)
	default:
		_, err = s.Store.Domain(ctx, a.DomainID)
	}
	return err
}

// EffectiveAssignments returns the assignments that take effect for users:
// those of groups become one per member, and implied roles are added.
// Filters on role apply after the expansion, as in Keystone.
func (s *Service) EffectiveAssignments(ctx context.Context, f trustack.AssignmentFilter) ([]trustack.Assignment, error) {
	role := f.RoleID
	f.RoleID = ""
	f.IncludeGroups = f.UserID != ""
	direct, err := s.Store.Assignments(ctx, f)
	if err != nil {
		return nil, err
	}
	implied, err := s.Store.ImpliedRoles(ctx)
	if err != nil {
		return nil, err
	}
	seen := map[trustack.Assignment]bool{}
	var out []trustack.Assignment
	for _, a := range direct {
		userIDs := []string{a.UserID}
		if a.GroupID != "" {
			if f.UserID != "" {
				userIDs = []string{f.UserID}
			} else {
				members, err := s.Store.Users(ctx, trustack.UserFilter{GroupID: a.GroupID})
				if err != nil {
					return nil, err
				}
				userIDs = userIDs[:0]
				for _, m := range members {
					userIDs = append(userIDs, m.ID)
				}
			}
		}
		for roleID := range closure(implied, []string{a.RoleID}) {
			for _, u := range userIDs {
				e := trustack.Assignment{RoleID: roleID, UserID: u, ProjectID: a.ProjectID, DomainID: a.DomainID}
				if (role == "" || roleID == role) && !seen[e] {
					seen[e] = true
					out = append(out, e)
				}
			}
		}
	}
	return out, nil
}

// Catalog.

// CatalogEntry is a service with its endpoints, as the token's catalog
// lists them.
type CatalogEntry struct {
	Service   *trustack.Service
	Endpoints []*trustack.Endpoint
}

// Catalog returns the enabled services with their enabled endpoints. It is
// cached like validated tokens: every token response carries it, and it
// rarely changes. The result is shared: callers must not change it.
func (s *Service) Catalog(ctx context.Context) ([]CatalogEntry, error) {
	now, gen := s.opts.Now(), s.generation.Load()
	if c := s.catalog.get(gen, now); c != nil {
		return c, nil
	}
	c, err := s.readCatalog(ctx)
	if err != nil {
		return nil, err
	}
	s.catalog.put(c, gen, now.Add(s.opts.CacheTime))
	return c, nil
}

// EndpointURL is an endpoint's URL as a token's catalog lists it: the
// substitutions Keystone makes in it, $(project_id)s or %(project_id)s
// (tenant_id likewise) with the token's project and user_id with its
// user, made; false if the URL needs a value the token has none of (a
// project, for a domain-scoped token), or names a substitution there is
// not, so that the catalog leaves the endpoint out, as Keystone's does.
func EndpointURL(raw, projectID, userID string) (string, bool) {
	values := map[string]string{"project_id": projectID, "tenant_id": projectID, "user_id": userID}
	var out strings.Builder
	for {
		i := strings.IndexAny(raw, "$%")
		if i < 0 {
			out.WriteString(raw)
			return out.String(), true
		}
		out.WriteString(raw[:i])
		inner, opens := strings.CutPrefix(raw[i+1:], "(")
		name, rest, closes := strings.Cut(inner, ")s")
		if !opens || !closes {
			// Not a substitution: the character as it is.
			out.WriteByte(raw[i])
			raw = raw[i+1:]
			continue
		}
		value, known := values[name]
		if !known || value == "" {
			return "", false
		}
		out.WriteString(value)
		raw = rest
	}
}

// catalogCache holds the catalog of one generation for a while.
type catalogCache struct {
	mu         sync.Mutex
	entries    []CatalogEntry
	generation uint64
	until      time.Time
}

func (c *catalogCache) get(generation uint64, now time.Time) []CatalogEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || c.generation != generation || !now.Before(c.until) {
		return nil
	}
	return c.entries
}

func (c *catalogCache) put(entries []CatalogEntry, generation uint64, until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if entries == nil {
		entries = []CatalogEntry{}
	}
	c.entries, c.generation, c.until = entries, generation, until
}

func (s *Service) readCatalog(ctx context.Context) ([]CatalogEntry, error) {
	services, err := s.Store.Services(ctx, trustack.ServiceFilter{})
	if err != nil {
		return nil, err
	}
	endpoints, err := s.Store.Endpoints(ctx, trustack.EndpointFilter{})
	if err != nil {
		return nil, err
	}
	var out []CatalogEntry
	for _, svc := range services {
		if !svc.Enabled {
			continue
		}
		e := CatalogEntry{Service: svc, Endpoints: []*trustack.Endpoint{}}
		for _, ep := range endpoints {
			if ep.ServiceID == svc.ID && ep.Enabled {
				e.Endpoints = append(e.Endpoints, ep)
			}
		}
		out = append(out, e)
	}
	return out, nil
}

// Regions, services and endpoints.

// CreateRegion adds a region, giving it an ID unless it has one.
func (s *Service) CreateRegion(ctx context.Context, r *trustack.Region) error {
	if r.ID == "" {
		r.ID = NewID()
	}
	if len(r.ID) > 255 {
		return trustack.Errorf(trustack.EINVALID, "Invalid input for field 'region.id': at most 255 characters.")
	}
	if r.ParentRegionID != "" {
		if r.ParentRegionID == r.ID {
			return trustack.Errorf(trustack.EINVALID, "A region cannot be its own parent.")
		}
		if _, err := s.Store.Region(ctx, r.ParentRegionID); err != nil {
			return err
		}
	}
	return s.Store.CreateRegion(ctx, r)
}

// UpdateRegion changes a region; a new parent must exist and not be the
// region itself or one of its descendants.
func (s *Service) UpdateRegion(ctx context.Context, id string, fn func(*trustack.Region) error) (*trustack.Region, error) {
	return s.Store.UpdateRegion(ctx, id, func(r *trustack.Region) error {
		if err := fn(r); err != nil {
			return err
		}
		for p := r.ParentRegionID; p != ""; {
			if p == id {
				return trustack.Errorf(trustack.EINVALID, "The parent region would make a cycle.")
			}
			parent, err := s.Store.Region(ctx, p)
			if err != nil {
				return err
			}
			p = parent.ParentRegionID
		}
		return nil
	})
}

// CreateService adds a catalog service.
func (s *Service) CreateService(ctx context.Context, svc *trustack.Service) error {
	if svc.Type == "" || len(svc.Type) > 255 {
		return trustack.Errorf(trustack.EINVALID, "Invalid input for field 'service.type': 1 to 255 characters required.")
	}
	if svc.ID == "" {
		svc.ID = NewID()
	}
	err := s.Store.CreateService(ctx, svc)
	s.changed()
	return err
}

// UpdateService changes a catalog service.
func (s *Service) UpdateService(ctx context.Context, id string, fn func(*trustack.Service) error) (*trustack.Service, error) {
	svc, err := s.Store.UpdateService(ctx, id, fn)
	s.changed()
	return svc, err
}

// DeleteService deletes a catalog service and its endpoints.
func (s *Service) DeleteService(ctx context.Context, id string) error {
	err := s.Store.DeleteService(ctx, id)
	s.changed()
	return err
}

// DeleteEndpoint deletes an endpoint.
func (s *Service) DeleteEndpoint(ctx context.Context, id string) error {
	err := s.Store.DeleteEndpoint(ctx, id)
	s.changed()
	return err
}

// CreateEndpoint adds an endpoint to an existing service. As in Keystone,
// an endpoint in a region that does not exist yet makes the region.
func (s *Service) CreateEndpoint(ctx context.Context, e *trustack.Endpoint) error {
	if err := s.checkEndpoint(ctx, e); err != nil {
		return err
	}
	if err := s.ensureRegion(ctx, e.RegionID); err != nil {
		return err
	}
	if e.ID == "" {
		e.ID = NewID()
	}
	err := s.Store.CreateEndpoint(ctx, e)
	s.changed()
	return err
}

// UpdateEndpoint changes an endpoint, making its new region if need be.
// fn is called twice: once on a copy, to learn the region, then in the
// update; it must only apply a change.
func (s *Service) UpdateEndpoint(ctx context.Context, id string, fn func(*trustack.Endpoint) error) (*trustack.Endpoint, error) {
	preview, err := s.Store.Endpoint(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := fn(preview); err != nil {
		return nil, err
	}
	if err := s.ensureRegion(ctx, preview.RegionID); err != nil {
		return nil, err
	}
	e, err := s.Store.UpdateEndpoint(ctx, id, func(e *trustack.Endpoint) error {
		if err := fn(e); err != nil {
			return err
		}
		return s.checkEndpoint(ctx, e)
	})
	s.changed()
	return e, err
}

// ensureRegion makes the region if it does not exist ("" is no region).
func (s *Service) ensureRegion(ctx context.Context, id string) error {
	if id == "" {
		return nil
	}
	_, err := s.Store.Region(ctx, id)
	if trustack.ErrorCode(err) == trustack.ENOTFOUND {
		err = s.CreateRegion(ctx, &trustack.Region{ID: id})
		if trustack.ErrorCode(err) == trustack.ECONFLICT {
			err = nil // made meanwhile by another request
		}
	}
	return err
}

func (s *Service) checkEndpoint(ctx context.Context, e *trustack.Endpoint) error {
	switch e.Interface {
	case trustack.InterfacePublic, trustack.InterfaceInternal, trustack.InterfaceAdmin:
	default:
		return trustack.Errorf(trustack.EINVALID, "Invalid input for field 'endpoint.interface': %q is not one of public, internal, admin.", e.Interface)
	}
	if u, err := url.Parse(e.URL); err != nil || u.Scheme == "" || u.Host == "" {
		return trustack.Errorf(trustack.EINVALID, "Invalid input for field 'endpoint.url': %q is not an absolute URL.", e.URL)
	}
	_, err := s.Store.Service(ctx, e.ServiceID)
	return err
}
