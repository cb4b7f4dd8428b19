package identity

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fernet/fernet-go"

	"github.com/trustack/trustack"
)

// AuthRequest asks for a token, as POST /v3/auth/tokens does: an identity
// proved by a password or by an existing token, and the scope wanted.
type AuthRequest struct {
	Password *PasswordAuth // for the "password" method
	Token    string        // for the "token" method
	Scope    Scope
}

// PasswordAuth names a user by ID, or by name within a domain named by ID
// or name, with the user's password.
type PasswordAuth struct {
	UserID     string
	UserName   string
	DomainID   string
	DomainName string
	Password   string
}

// Scope is what a token is for: a project (by ID, or by name within a
// domain named by ID or name), a domain, or nothing. The zero Scope means
// the user's default project if the user has a role there, else nothing.
type Scope struct {
	ProjectID         string
	ProjectName       string
	ProjectDomainID   string
	ProjectDomainName string
	DomainID          string
	DomainName        string
	Unscoped          bool // explicitly nothing
}

func (sc Scope) project() bool { return sc.ProjectID != "" || sc.ProjectName != "" }
func (sc Scope) domain() bool  { return sc.DomainID != "" || sc.DomainName != "" }

// errUnauthorized is what every failed authentication says, so that a
// wrong password and an unknown user cannot be told apart.
var errUnauthorized = trustack.Errorf(trustack.EUNAUTHORIZED, "The request you have made requires authentication.")

// Authenticate checks the request's proof of identity and returns a new
// token for the scope asked for, with its string form. It gives
// EUNAUTHORIZED when the proof fails or the user may not have the scope,
// and EINVALID for a malformed request.
func (s *Service) Authenticate(ctx context.Context, req AuthRequest) (*trustack.Token, string, error) {
	var p payload
	switch {
	case req.Password != nil && req.Token != "":
		return nil, "", trustack.Errorf(trustack.EINVALID, "Authenticate with one method, password or token, not both.")
	case req.Password != nil:
		user, err := s.checkPassword(ctx, req.Password)
		if err != nil {
			return nil, "", err
		}
		now := s.opts.Now().UTC()
		p = payload{UserID: user.ID, Methods: []string{"password"}, IssuedAt: now, ExpiresAt: now.Add(s.opts.TokenExpiration), AuditIDs: []string{newAuditID()}}
	case req.Token != "":
		// A token makes another for the same user, expiring no later.
		from, err := s.Validate(ctx, req.Token)
		if err != nil {
			return nil, "", err
		}
		methods := append([]string{"token"}, from.Methods...)
		slices.Sort(methods)
		p = payload{UserID: from.User.ID, Methods: slices.Compact(methods), IssuedAt: s.opts.Now().UTC(), ExpiresAt: from.ExpiresAt,
			AuditIDs: []string{newAuditID(), from.AuditIDs[len(from.AuditIDs)-1]}}
	default:
		return nil, "", trustack.Errorf(trustack.EINVALID, "Authenticate with a password or a token.")
	}
	if err := s.scope(ctx, &p, req.Scope); err != nil {
		return nil, "", err
	}
	tok, err := s.resolve(ctx, &p)
	if err != nil {
		return nil, "", err
	}
	str, err := s.seal(&p)
	if err != nil {
		return nil, "", err
	}
	return tok, str, nil
}

// IssueToken returns a new token of the user scoped to the project, for a
// service that acts on the user's behalf after the user's own token may be
// gone: the compute service gives one to the host that downloads the
// images of the user's server. It fails as authentication would if the
// user may no longer use the project.
func (s *Service) IssueToken(ctx context.Context, userID, projectID string) (string, error) {
	now := s.opts.Now().UTC()
	p := payload{UserID: userID, Methods: []string{"token"}, ProjectID: projectID, IssuedAt: now, ExpiresAt: now.Add(s.opts.TokenExpiration),
		AuditIDs: []string{newAuditID()}}
	if _, err := s.resolve(ctx, &p); err != nil {
		return "", err
	}
	return s.seal(&p)
}

// checkPassword returns the enabled user the credentials prove, or
// errUnauthorized, spending the same time whether or not the user exists.
func (s *Service) checkPassword(ctx context.Context, c *PasswordAuth) (*trustack.User, error) {
	user, err := s.findUser(ctx, c)
	if err != nil && trustack.ErrorCode(err) != trustack.ENOTFOUND {
		return nil, err
	}
	var hash string
	if user != nil {
		if hash, err = s.Store.PasswordHash(ctx, user.ID); err != nil {
			return nil, err
		}
	}
	if !s.hasher.matches(hash, c.Password) || user == nil || !user.Enabled {
		return nil, errUnauthorized
	}
	if d, err := s.Store.Domain(ctx, user.DomainID); err != nil || !d.Enabled {
		return nil, errUnauthorized
	}
	return user, nil
}

func (s *Service) findUser(ctx context.Context, c *PasswordAuth) (*trustack.User, error) {
	if c.UserID != "" {
		return s.Store.User(ctx, c.UserID)
	}
	if c.UserName == "" {
		return nil, trustack.Errorf(trustack.EINVALID, "Invalid input for field 'identity.password.user': give the user's id, or its name and domain.")
	}
	domainID, err := s.domainID(ctx, c.DomainID, c.DomainName)
	if err != nil {
		return nil, err
	}
	users, err := s.Store.Users(ctx, trustack.UserFilter{DomainID: domainID, Name: c.UserName})
	if err != nil {
		return nil, err
	}
	if len(users) == 0 {
		return nil, trustack.Errorf(trustack.ENOTFOUND, "Could not find user: %s.", c.UserName)
	}
	return users[0], nil
}

// domainID returns the ID of the domain named by id or name.
func (s *Service) domainID(ctx context.Context, id, name string) (string, error) {
	switch {
	case id != "":
		return id, nil
	case name == "":
		return "", trustack.Errorf(trustack.EINVALID, "A name must come with its domain, by id or name.")
	}
	ds, err := s.Store.Domains(ctx, trustack.DomainFilter{Name: name})
	if err != nil {
		return "", err
	}
	if len(ds) == 0 {
		return "", trustack.Errorf(trustack.ENOTFOUND, "Could not find domain: %s.", name)
	}
	return ds[0].ID, nil
}

// scope sets the payload's scope from the request, or from the user's
// default project when the request names none.
func (s *Service) scope(ctx context.Context, p *payload, sc Scope) error {
	switch {
	case sc.project() && sc.domain():
		return trustack.Errorf(trustack.EINVALID, "Scope to a project or a domain, not both.")
	case sc.project():
		id := sc.ProjectID
		if id == "" {
			domainID, err := s.domainID(ctx, sc.ProjectDomainID, sc.ProjectDomainName)
			if err != nil {
				return unauthorized(err)
			}
			ps, err := s.Store.Projects(ctx, trustack.ProjectFilter{DomainID: domainID, Name: sc.ProjectName})
			if err != nil {
				return err
			}
			if len(ps) == 0 {
				return trustack.Errorf(trustack.EUNAUTHORIZED, "Could not find project: %s.", sc.ProjectName)
			}
			id = ps[0].ID
		}
		p.ProjectID = id
	case sc.domain():
		id, err := s.domainID(ctx, sc.DomainID, sc.DomainName)
		if err != nil {
			return unauthorized(err)
		}
		p.DomainID = id
	case !sc.Unscoped:
		// As Keystone: no scope asked for means the default project, if the
		// user may use it.
		user, err := s.Store.User(ctx, p.UserID)
		if err != nil {
			return err
		}
		if user.DefaultProjectID != "" {
			p.ProjectID = user.DefaultProjectID
			if _, err := s.resolve(ctx, p); err != nil {
				p.ProjectID = ""
			}
		}
	}
	return nil
}

// unauthorized turns ENOTFOUND into EUNAUTHORIZED: a scope that does not
// exist is a scope the user may not have.
func unauthorized(err error) error {
	if trustack.ErrorCode(err) == trustack.ENOTFOUND {
		return trustack.Errorf(trustack.EUNAUTHORIZED, "%s", trustack.ErrorMessage(err))
	}
	return err
}

// resolve looks up what a payload names, and gives EUNAUTHORIZED if any of
// it is gone or disabled, or if the user holds no role on the scope.
func (s *Service) resolve(ctx context.Context, p *payload) (*trustack.Token, error) {
	tok := &trustack.Token{Methods: p.Methods, IssuedAt: p.IssuedAt, ExpiresAt: p.ExpiresAt, AuditIDs: p.AuditIDs}
	user, err := s.Store.User(ctx, p.UserID)
	if err != nil {
		return nil, unauthorized(err)
	}
	if !user.Enabled {
		return nil, trustack.Errorf(trustack.EUNAUTHORIZED, "User %s is disabled.", user.ID)
	}
	tok.User = *user
	d, err := s.enabledDomain(ctx, user.DomainID)
	if err != nil {
		return nil, err
	}
	tok.UserDomain = *d
	switch {
	case p.ProjectID != "":
		project, err := s.Store.Project(ctx, p.ProjectID)
		if err != nil {
			return nil, unauthorized(err)
		}
		if !project.Enabled {
			return nil, trustack.Errorf(trustack.EUNAUTHORIZED, "Project %s is disabled.", project.ID)
		}
		tok.Project = project
		if tok.ProjectDomain, err = s.enabledDomain(ctx, project.DomainID); err != nil {
			return nil, err
		}
	case p.DomainID != "":
		if tok.Domain, err = s.enabledDomain(ctx, p.DomainID); err != nil {
			return nil, err
		}
	default:
		return tok, nil
	}
	if tok.Roles, err = s.rolesOn(ctx, p.UserID, p.ProjectID, p.DomainID); err != nil {
		return nil, err
	}
	switch {
	case len(tok.Roles) > 0:
	case p.ProjectID != "":
		return nil, trustack.Errorf(trustack.EUNAUTHORIZED, "User %s has no access to project %s.", p.UserID, p.ProjectID)
	default:
		return nil, trustack.Errorf(trustack.EUNAUTHORIZED, "User %s has no access to domain %s.", p.UserID, p.DomainID)
	}
	return tok, nil
}

func (s *Service) enabledDomain(ctx context.Context, id string) (*trustack.Domain, error) {
	d, err := s.Store.Domain(ctx, id)
	if err != nil {
		return nil, unauthorized(err)
	}
	if !d.Enabled {
		return nil, trustack.Errorf(trustack.EUNAUTHORIZED, "Domain %s is disabled.", d.ID)
	}
	return d, nil
}

// rolesOn returns the roles the user holds on the project or domain,
// directly or through groups, with the roles they imply, sorted by name.
func (s *Service) rolesOn(ctx context.Context, userID, projectID, domainID string) ([]trustack.Role, error) {
	as, err := s.Store.Assignments(ctx, trustack.AssignmentFilter{UserID: userID, IncludeGroups: true, ProjectID: projectID, DomainID: domainID})
	if err != nil || len(as) == 0 {
		return nil, err
	}
	implied, err := s.Store.ImpliedRoles(ctx)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(as))
	for i, a := range as {
		ids[i] = a.RoleID
	}
	held := closure(implied, ids)
	all, err := s.Store.Roles(ctx, trustack.RoleFilter{})
	if err != nil {
		return nil, err
	}
	var roles []trustack.Role
	for _, r := range all {
		if _, ok := held[r.ID]; ok {
			roles = append(roles, *r)
		}
	}
	sort.Slice(roles, func(i, j int) bool { return roles[i].Name < roles[j].Name })
	return roles, nil
}

// seal encrypts and signs a payload as a Fernet token, without the
// base64 padding, as Keystone's tokens are.
func (s *Service) seal(p *payload) (string, error) {
	b, err := p.marshal()
	if err != nil {
		return "", fmt.Errorf("seal token: %w", err)
	}
	tok, err := fernet.EncryptAndSignAtTime(b, s.keys.Primary(), p.IssuedAt)
	if err != nil {
		return "", fmt.Errorf("seal token: %w", err)
	}
	return strings.TrimRight(string(tok), "="), nil
}

// open decrypts and checks a token string, giving errUnauthorized for
// anything that is not a token signed by one of the keys.
func (s *Service) open(token string) (*payload, error) {
	if len(token) > 1024 {
		return nil, errUnauthorized
	}
	if n := len(token) % 4; n != 0 {
		token += strings.Repeat("=", 4-n)
	}
	b := fernet.VerifyAndDecrypt([]byte(token), 0, s.keys.All())
	if b == nil {
		return nil, errUnauthorized
	}
	var p payload
	if err := p.unmarshal(b); err != nil {
		return nil, errUnauthorized
	}
	return &p, nil
}

// Validate returns what a token proves, or EUNAUTHORIZED if it is not a
// token, has expired or been revoked, or if its user, scope or roles no
// longer hold. The returned Token is shared: callers must not change it.
func (s *Service) Validate(ctx context.Context, token string) (*trustack.Token, error) {
	now := s.opts.Now()
	gen := s.generation.Load()
	if tok, ok := s.cache.get(token, gen, now); ok {
		return tok, nil
	}
	p, err := s.open(token)
	if err != nil {
		return nil, err
	}
	if !now.Before(p.ExpiresAt) {
		return nil, trustack.Errorf(trustack.EUNAUTHORIZED, "The token has expired.")
	}
	revoked, err := s.Store.IsRevoked(ctx, p.UserID, p.IssuedAt, p.AuditIDs)
	if err != nil {
		return nil, err
	}
	if revoked {
		return nil, trustack.Errorf(trustack.EUNAUTHORIZED, "The token has been revoked.")
	}
	tok, err := s.resolve(ctx, p)
	if err != nil {
		return nil, err
	}
	until := now.Add(s.opts.CacheTime)
	if tok.ExpiresAt.Before(until) {
		until = tok.ExpiresAt
	}
	s.cache.put(token, cached[*trustack.Token]{value: tok, generation: gen, until: until})
	return tok, nil
}

// Revoke revokes one token, identified by its first audit ID.
func (s *Service) Revoke(ctx context.Context, tok *trustack.Token) error {
	return s.revoke(ctx, trustack.Revocation{AuditID: tok.AuditIDs[0], ExpiresAt: tok.ExpiresAt})
}

// RevokeUser revokes every token issued to the user until now.
func (s *Service) RevokeUser(ctx context.Context, userID string) error {
	now := s.opts.Now()
	return s.revoke(ctx, trustack.Revocation{UserID: userID, IssuedBefore: now, ExpiresAt: now.Add(s.opts.TokenExpiration)})
}

func (s *Service) revoke(ctx context.Context, r trustack.Revocation) error {
	if err := s.Store.AddRevocation(ctx, r); err != nil {
		return err
	}
	s.changed()
	return s.Store.PruneRevocations(ctx, s.opts.Now())
}

func newAuditID() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// maxCached bounds each of the caches of validations; when one is full
// it starts over, which costs one store round trip per token (or access
// key) in use.
const maxCached = 1 << 16

type cached[V any] struct {
	value      V
	generation uint64
	until      time.Time
}

// expiringCache remembers values for a short time, keyed by a token or an
// access key, each until its time is up or the service's generation moves
// on. The zero expiringCache is empty and ready.
type expiringCache[V any] struct {
	mu      sync.RWMutex
	entries map[string]cached[V]
}

func (c *expiringCache[V]) get(key string, generation uint64, now time.Time) (V, bool) {
	c.mu.RLock()
	e, ok := c.entries[key]
	c.mu.RUnlock()
	if !ok || e.generation != generation || !now.Before(e.until) {
		var zero V
		return zero, false
	}
	return e.value, true
}

func (c *expiringCache[V]) put(key string, e cached[V]) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || len(c.entries) >= maxCached {
		c.entries = map[string]cached[V]{}
	}
	c.entries[key] = e
}
