package identity_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/identity"
	"github.com/trustack/trustack/internal/testclock"
	"github.com/trustack/trustack/sqlstore"
)

var ctx = context.Background()

type fixture struct {
	svc   *identity.Service
	clock *testclock.Clock
	dir   string
	store *sqlstore.DB
}

// newFixture returns a bootstrapped identity service on SQLite with an
// admin (admin on project admin) and alice (member on project demo).
func newFixture(t testing.TB) *fixture {
	t.Helper()
	dir := t.TempDir()
	store, err := sqlstore.Open(ctx, "sqlite://"+filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	f := &fixture{clock: testclock.New(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)), dir: dir, store: store}
	f.svc = f.service(t)
	err = f.svc.Bootstrap(ctx, identity.BootstrapConfig{
		Region: "RegionOne",
		Accounts: []identity.BootstrapAccount{
			{Project: "admin", User: "admin", Role: "admin", Password: "admin-pw"},
			{Project: "demo", User: "alice", Role: "member", Password: "alice-pw"},
		},
		Endpoints: []identity.BootstrapEndpoint{{Type: "identity", Name: "keystone", URL: "http://127.0.0.1:5000/identity/v3"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// service returns a new Service on the fixture's store and keys, as a
// restarted controller would have.
func (f *fixture) service(t testing.TB) *identity.Service {
	keys, err := identity.OpenKeyRepository(filepath.Join(f.dir, "fernet-keys"))
	if err != nil {
		t.Fatal(err)
	}
	credentialKeys, err := identity.OpenKeyRepository(filepath.Join(f.dir, "credential-keys"))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := identity.New(f.store, keys, identity.Options{PasswordHashRounds: 4, Now: f.clock.Now, CacheTime: time.Minute, CredentialKeys: credentialKeys})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func (f *fixture) login(t testing.TB, user, password string, scope identity.Scope) (*trustack.Token, string) {
	t.Helper()
	tok, str, err := f.svc.Authenticate(ctx, identity.AuthRequest{
		Password: &identity.PasswordAuth{UserName: user, DomainName: "Default", Password: password},
		Scope:    scope,
	})
	if err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	return tok, str
}

func (f *fixture) userID(t testing.TB, name string) string {
	us, err := f.svc.Users(ctx, trustack.UserFilter{Name: name})
	if err != nil || len(us) != 1 {
		t.Fatalf("user %s: %v", name, err)
	}
	return us[0].ID
}

func (f *fixture) projectID(t testing.TB, name string) string {
	ps, err := f.svc.Projects(ctx, trustack.ProjectFilter{Name: name})
	if err != nil || len(ps) != 1 {
		t.Fatalf("project %s: %v", name, err)
	}
	return ps[0].ID
}

func roleNames(tok *trustack.Token) []string {
	var names []string
	for _, r := range tok.Roles {
		names = append(names, r.Name)
	}
	return names
}

func wantCode(t testing.TB, err error, code string) {
	t.Helper()
	if got := trustack.ErrorCode(err); got != code {
		t.Fatalf("got %v (code %q), want code %q", err, got, code)
	}
}

func TestScopes(t *testing.T) {
	f := newFixture(t)
	demo := identity.Scope{ProjectName: "demo", ProjectDomainName: "Default"}

	tok, _ := f.login(t, "alice", "alice-pw", demo)
	if tok.Project == nil || tok.Project.Name != "demo" || tok.ProjectDomain.ID != "default" {
		t.Fatalf("project scope: got %+v", tok)
	}
	if got, want := roleNames(tok), []string{"member", "reader"}; !equal(got, want) {
		t.Errorf("roles: got %v, want %v (member implies reader)", got, want)
	}
	admin, _ := f.login(t, "admin", "admin-pw", identity.Scope{ProjectName: "admin", ProjectDomainID: "default"})
	if got, want := roleNames(admin), []string{"admin", "manager", "member", "reader"}; !equal(got, want) {
		t.Errorf("admin roles: got %v, want %v", got, want)
	}

	// No scope asked for: the default project, as Keystone does.
	tok, _ = f.login(t, "alice", "alice-pw", identity.Scope{})
	if tok.Project == nil || tok.Project.Name != "demo" {
		t.Errorf("default scope: got project %+v, want demo", tok.Project)
	}
	tok, _ = f.login(t, "alice", "alice-pw", identity.Scope{Unscoped: true})
	if tok.Project != nil || tok.Domain != nil || len(tok.Roles) != 0 {
		t.Errorf("unscoped: got %+v", tok)
	}

	// A project without a role on it is refused; so is a missing one.
	_, _, err := f.svc.Authenticate(ctx, identity.AuthRequest{
		Password: &identity.PasswordAuth{UserName: "alice", DomainName: "Default", Password: "alice-pw"},
		Scope:    identity.Scope{ProjectName: "admin", ProjectDomainName: "Default"},
	})
	wantCode(t, err, trustack.EUNAUTHORIZED)
	_, _, err = f.svc.Authenticate(ctx, identity.AuthRequest{
		Password: &identity.PasswordAuth{UserName: "alice", DomainName: "Default", Password: "alice-pw"},
		Scope:    identity.Scope{ProjectID: "missing"},
	})
	wantCode(t, err, trustack.EUNAUTHORIZED)

	// Domain scope needs a role on the domain.
	_, _, err = f.svc.Authenticate(ctx, identity.AuthRequest{
		Password: &identity.PasswordAuth{UserName: "alice", DomainName: "Default", Password: "alice-pw"},
		Scope:    identity.Scope{DomainID: "default"},
	})
	wantCode(t, err, trustack.EUNAUTHORIZED)
	roles, _ := f.svc.Roles(ctx, trustack.RoleFilter{Name: "reader"})
	if err := f.svc.Grant(ctx, trustack.Assignment{RoleID: roles[0].ID, UserID: f.userID(t, "alice"), DomainID: "default"}); err != nil {
		t.Fatal(err)
	}
	tok, _ = f.login(t, "alice", "alice-pw", identity.Scope{DomainName: "Default"})
	if tok.Domain == nil || tok.Domain.ID != "default" || !equal(roleNames(tok), []string{"reader"}) {
		t.Errorf("domain scope: got domain %+v roles %v", tok.Domain, roleNames(tok))
	}
}

func TestWrongPasswordAndUnknownUserLookAlike(t *testing.T) {
	f := newFixture(t)
	for _, c := range []identity.PasswordAuth{
		{UserName: "alice", DomainName: "Default", Password: "wrong"},
		{UserName: "mallory", DomainName: "Default", Password: "alice-pw"},
		{UserID: "0123456789abcdef0123456789abcdef", Password: "x"},
		{UserName: "alice", DomainName: "Nowhere", Password: "alice-pw"},
	} {
		_, _, err := f.svc.Authenticate(ctx, identity.AuthRequest{Password: &c})
		wantCode(t, err, trustack.EUNAUTHORIZED)
		if got, want := trustack.ErrorMessage(err), "The request you have made requires authentication."; got != want {
			t.Errorf("%+v: message %q, want %q", c, got, want)
		}
	}
}

func TestValidateAndExpiry(t *testing.T) {
	f := newFixture(t)
	issued, str := f.login(t, "alice", "alice-pw", identity.Scope{ProjectName: "demo", ProjectDomainName: "Default"})
	tok, err := f.svc.Validate(ctx, str)
	if err != nil {
		t.Fatal(err)
	}
	if tok.User.Name != "alice" || tok.Project.Name != "demo" || !tok.ExpiresAt.Equal(issued.ExpiresAt) || tok.AuditIDs[0] != issued.AuditIDs[0] {
		t.Errorf("validated %+v, issued %+v", tok, issued)
	}
	if got := tok.ExpiresAt.Sub(tok.IssuedAt); got != time.Hour {
		t.Errorf("lifetime %v, want 1h", got)
	}
	// One character changed: to another, whatever it was.
	flipped := str[:40] + map[bool]string{true: "y", false: "x"}[str[40] == 'x'] + str[41:]
	for _, bad := range []string{"", "garbage", str[:len(str)-2], str + "AA", flipped} {
		_, err := f.svc.Validate(ctx, bad)
		wantCode(t, err, trustack.EUNAUTHORIZED)
	}
	f.clock.Add(time.Hour)
	_, err = f.svc.Validate(ctx, str)
	wantCode(t, err, trustack.EUNAUTHORIZED)
}

func TestIssueTokenOnAUsersBehalf(t *testing.T) {
	f := newFixture(t)
	alice, demo, admin := f.userID(t, "alice"), f.projectID(t, "demo"), f.projectID(t, "admin")
	str, err := f.svc.IssueToken(ctx, alice, demo)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := f.svc.Validate(ctx, str)
	if err != nil {
		t.Fatal(err)
	}
	if tok.User.ID != alice || tok.Project == nil || tok.Project.ID != demo || !slices.Contains(roleNames(tok), "member") {
		t.Errorf("issued token: user %s, project %v, roles %v; want alice, demo, member", tok.User.ID, tok.Project, roleNames(tok))
	}
	// Not for a project the user has no role on.
	_, err = f.svc.IssueToken(ctx, alice, admin)
	wantCode(t, err, trustack.EUNAUTHORIZED)
}

func TestRescopeKeepsExpiry(t *testing.T) {
	f := newFixture(t)
	first, str := f.login(t, "alice", "alice-pw", identity.Scope{Unscoped: true})
	f.clock.Add(10 * time.Minute)
	tok, _, err := f.svc.Authenticate(ctx, identity.AuthRequest{Token: str, Scope: identity.Scope{ProjectName: "demo", ProjectDomainName: "Default"}})
	if err != nil {
		t.Fatal(err)
	}
	if !tok.ExpiresAt.Equal(first.ExpiresAt) {
		t.Errorf("rescoped token expires %v, want the original's %v", tok.ExpiresAt, first.ExpiresAt)
	}
	if !equal(tok.Methods, []string{"password", "token"}) {
		t.Errorf("methods %v, want [password token]", tok.Methods)
	}
	if len(tok.AuditIDs) != 2 || tok.AuditIDs[1] != first.AuditIDs[0] {
		t.Errorf("audit IDs %v, want a new one and %s", tok.AuditIDs, first.AuditIDs[0])
	}
}

func TestRevocation(t *testing.T) {
	f := newFixture(t)
	scope := identity.Scope{ProjectName: "demo", ProjectDomainName: "Default"}
	tok, str := f.login(t, "alice", "alice-pw", scope)
	_, other := f.login(t, "alice", "alice-pw", scope)
	if _, err := f.svc.Validate(ctx, str); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Revoke(ctx, tok); err != nil {
		t.Fatal(err)
	}
	_, err := f.svc.Validate(ctx, str)
	wantCode(t, err, trustack.EUNAUTHORIZED)
	if _, err := f.svc.Validate(ctx, other); err != nil {
		t.Errorf("another token of the same user: %v", err)
	}
	// A token made from a revoked one carries its audit chain and is revoked too.
	_, _, err = f.svc.Authenticate(ctx, identity.AuthRequest{Token: str})
	wantCode(t, err, trustack.EUNAUTHORIZED)

	// The revocation survives a restart.
	f.svc = f.service(t)
	_, err = f.svc.Validate(ctx, str)
	wantCode(t, err, trustack.EUNAUTHORIZED)
	if _, err := f.svc.Validate(ctx, other); err != nil {
		t.Errorf("after restart, an unrevoked token: %v", err)
	}
}

func TestPasswordChangeRevokesTokens(t *testing.T) {
	f := newFixture(t)
	_, str := f.login(t, "alice", "alice-pw", identity.Scope{})
	id := f.userID(t, "alice")
	wantCode(t, f.svc.ChangePassword(ctx, id, "wrong", "new-pw"), trustack.EUNAUTHORIZED)
	f.clock.Add(time.Second)
	if err := f.svc.ChangePassword(ctx, id, "alice-pw", "new-pw"); err != nil {
		t.Fatal(err)
	}
	_, err := f.svc.Validate(ctx, str)
	wantCode(t, err, trustack.EUNAUTHORIZED)
	// A token issued in the same second as the change, after it, is good.
	_, fresh := f.login(t, "alice", "new-pw", identity.Scope{})
	if _, err := f.svc.Validate(ctx, fresh); err != nil {
		t.Errorf("token issued after the change: %v", err)
	}
	_, _, err = f.svc.Authenticate(ctx, identity.AuthRequest{Password: &identity.PasswordAuth{UserID: id, Password: "alice-pw"}})
	wantCode(t, err, trustack.EUNAUTHORIZED)
}

func TestChangesReachCachedTokens(t *testing.T) {
	f := newFixture(t)
	_, str := f.login(t, "alice", "alice-pw", identity.Scope{ProjectName: "demo", ProjectDomainName: "Default"})
	if _, err := f.svc.Validate(ctx, str); err != nil { // now cached
		t.Fatal(err)
	}
	as, err := f.svc.Assignments(ctx, trustack.AssignmentFilter{UserID: f.userID(t, "alice")})
	if err != nil || len(as) != 1 {
		t.Fatalf("assignments: %v %v", as, err)
	}
	if err := f.svc.RevokeGrant(ctx, as[0]); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.Validate(ctx, str)
	wantCode(t, err, trustack.EUNAUTHORIZED)
	if err := f.svc.Grant(ctx, as[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Validate(ctx, str); err != nil {
		t.Fatalf("after granting back: %v", err)
	}
	// Disabling the user, or its project, stops its tokens.
	if _, err := f.svc.UpdateProject(ctx, f.projectID(t, "demo"), func(p *trustack.Project) error { p.Enabled = false; return nil }); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.Validate(ctx, str)
	wantCode(t, err, trustack.EUNAUTHORIZED)
}

func TestKeyRotationKeepsTokensValid(t *testing.T) {
	f := newFixture(t)
	_, before := f.login(t, "alice", "alice-pw", identity.Scope{})
	keys := filepath.Join(f.dir, "fernet-keys")
	if _, err := identity.RotateKeys(keys, identity.DefaultMaxActiveKeys); err != nil {
		t.Fatal(err)
	}
	f.svc = f.service(t)
	if _, err := f.svc.Validate(ctx, before); err != nil {
		t.Fatalf("token from before the rotation: %v", err)
	}
	_, after := f.login(t, "alice", "alice-pw", identity.Scope{})
	// With three active keys (staged, primary, one older), the next
	// rotation prunes the key that signed the first token, but not the one
	// that signed the second.
	if _, err := identity.RotateKeys(keys, identity.DefaultMaxActiveKeys); err != nil {
		t.Fatal(err)
	}
	f.svc = f.service(t)
	_, err := f.svc.Validate(ctx, before)
	wantCode(t, err, trustack.EUNAUTHORIZED)
	if _, err := f.svc.Validate(ctx, after); err != nil {
		t.Fatalf("token signed by a key still in the repository: %v", err)
	}
}

func TestDomainRules(t *testing.T) {
	f := newFixture(t)
	d := &trustack.Domain{Name: "acme", Enabled: true}
	if err := f.svc.CreateDomain(ctx, d); err != nil {
		t.Fatal(err)
	}
	wantCode(t, f.svc.DeleteDomain(ctx, d.ID), trustack.EFORBIDDEN)
	wantCode(t, f.svc.DeleteDomain(ctx, trustack.DefaultDomainID), trustack.EFORBIDDEN)
	_, err := f.svc.UpdateDomain(ctx, trustack.DefaultDomainID, func(d *trustack.Domain) error { d.Enabled = false; return nil })
	wantCode(t, err, trustack.EFORBIDDEN)
	if _, err := f.svc.UpdateDomain(ctx, d.ID, func(d *trustack.Domain) error { d.Enabled = false; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.DeleteDomain(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
}

func TestImpliedRoleCycleRefused(t *testing.T) {
	f := newFixture(t)
	admin, _ := f.svc.Roles(ctx, trustack.RoleFilter{Name: "admin"})
	reader, _ := f.svc.Roles(ctx, trustack.RoleFilter{Name: "reader"})
	err := f.svc.CreateImpliedRole(ctx, trustack.ImpliedRole{PriorID: reader[0].ID, ImpliedID: admin[0].ID})
	wantCode(t, err, trustack.EINVALID)
}

func TestBootstrapIsIdempotent(t *testing.T) {
	f := newFixture(t)
	count := func() (n int) {
		for _, list := range []func() (int, error){
			func() (int, error) { l, err := f.svc.Users(ctx, trustack.UserFilter{}); return len(l), err },
			func() (int, error) { l, err := f.svc.Projects(ctx, trustack.ProjectFilter{}); return len(l), err },
			func() (int, error) { l, err := f.svc.Roles(ctx, trustack.RoleFilter{}); return len(l), err },
			func() (int, error) { l, err := f.svc.Endpoints(ctx, trustack.EndpointFilter{}); return len(l), err },
			func() (int, error) { l, err := f.svc.Assignments(ctx, trustack.AssignmentFilter{}); return len(l), err },
		} {
			k, err := list()
			if err != nil {
				t.Fatal(err)
			}
			n += k
		}
		return n
	}
	before := count()
	err := f.svc.Bootstrap(ctx, identity.BootstrapConfig{
		Region:    "RegionOne",
		Accounts:  []identity.BootstrapAccount{{Project: "demo", User: "alice", Role: "member", Password: "ignored"}},
		Endpoints: []identity.BootstrapEndpoint{{Type: "identity", Name: "keystone", URL: "http://10.0.0.1:5000/identity/v3"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if after := count(); after != before {
		t.Errorf("a second bootstrap changed the number of things from %d to %d", before, after)
	}
	f.login(t, "alice", "alice-pw", identity.Scope{}) // password kept
	eps, _ := f.svc.Endpoints(ctx, trustack.EndpointFilter{})
	for _, e := range eps {
		if e.URL != "http://10.0.0.1:5000/identity/v3" {
			t.Errorf("endpoint %s still at %s", e.Interface, e.URL)
		}
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestCatalogFollowsChanges(t *testing.T) {
	f := newFixture(t)
	count := func() int {
		c, err := f.svc.Catalog(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range c {
			n += len(e.Endpoints)
		}
		return n
	}
	if got := count(); got != 3 {
		t.Fatalf("catalog has %d endpoints, want 3", got)
	}
	svc := &trustack.Service{Type: "compute", Name: "nova", Enabled: true}
	if err := f.svc.CreateService(ctx, svc); err != nil {
		t.Fatal(err)
	}
	ep := &trustack.Endpoint{ServiceID: svc.ID, Interface: "public", URL: "http://x/compute/v2.1", RegionID: "RegionOne", Enabled: true}
	if err := f.svc.CreateEndpoint(ctx, ep); err != nil {
		t.Fatal(err)
	}
	if got := count(); got != 4 {
		t.Errorf("after adding an endpoint, the catalog has %d, want 4", got)
	}
	if _, err := f.svc.UpdateEndpoint(ctx, ep.ID, func(e *trustack.Endpoint) error { e.Enabled = false; return nil }); err != nil {
		t.Fatal(err)
	}
	if got := count(); got != 3 {
		t.Errorf("after disabling it, the catalog has %d, want 3", got)
	}
}
