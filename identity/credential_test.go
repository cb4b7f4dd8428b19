package identity_test

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/identity"
)

// ec2 creates an ec2 credential of the user on the project through the
// service, failing t on an error.
func (f *fixture) ec2(t testing.TB, user, project, access, secret string) *trustack.Credential {
	t.Helper()
	c := &trustack.Credential{UserID: f.userID(t, user), ProjectID: f.projectID(t, project), Type: trustack.CredentialEC2,
		Blob: `{"access": "` + access + `", "secret": "` + secret + `"}`}
	if err := f.svc.CreateCredential(ctx, c); err != nil {
		t.Fatalf("create ec2 credential: %v", err)
	}
	return c
}

func TestCredentialBlobsAreEncryptedAtRest(t *testing.T) {
	f := newFixture(t)
	c := f.ec2(t, "alice", "demo", "alice-access", "alice-secret")
	if want := identity.EC2CredentialID("alice-access"); c.ID != want {
		t.Errorf("ID: got %s, want the SHA-256 of the access key, %s", c.ID, want)
	}
	stored, err := f.store.Credential(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stored.Blob, "alice-secret") || stored.Blob == c.Blob {
		t.Errorf("stored blob: got %q, want it encrypted", stored.Blob)
	}
	// The service reads it back as it was given, after a restart too.
	f.svc = f.service(t)
	got, err := f.svc.Credential(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Blob != c.Blob || got.Access != "alice-access" {
		t.Errorf("got %+v, want blob %q, access alice-access", got, c.Blob)
	}
	list, err := f.svc.Credentials(ctx, trustack.CredentialFilter{UserID: c.UserID})
	if err != nil || len(list) != 1 || list[0].Blob != c.Blob {
		t.Errorf("Credentials: got %v, %v, want the one credential, decrypted", list, err)
	}
	updated, err := f.svc.UpdateCredential(ctx, c.ID, func(c *trustack.Credential) error {
		c.Blob = `{"access": "alice-access-2", "secret": "alice-secret-2"}`
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	stored, err = f.store.Credential(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stored.Blob, "alice-secret-2") || updated.Blob != `{"access": "alice-access-2", "secret": "alice-secret-2"}` {
		t.Errorf("after an update: stored %q, returned %q; want it encrypted, returned in clear", stored.Blob, updated.Blob)
	}
}

func TestCredentialRules(t *testing.T) {
	f := newFixture(t)
	alice, demo := f.userID(t, "alice"), f.projectID(t, "demo")
	f.ec2(t, "alice", "demo", "taken", "s")
	for _, tc := range []struct {
		name string
		c    trustack.Credential
		code string
	}{
		{"no type", trustack.Credential{UserID: alice, Blob: "x"}, trustack.EINVALID},
		{"no user", trustack.Credential{Type: "cert", Blob: "x"}, trustack.EINVALID},
		{"unknown user", trustack.Credential{UserID: "nobody", Type: "cert", Blob: "x"}, trustack.ENOTFOUND},
		{"unknown project", trustack.Credential{UserID: alice, ProjectID: "nowhere", Type: "cert", Blob: "x"}, trustack.ENOTFOUND},
		{"ec2 without a project", trustack.Credential{UserID: alice, Type: "ec2", Blob: `{"access": "a", "secret": "s"}`}, trustack.EINVALID},
		{"ec2 blob not JSON", trustack.Credential{UserID: alice, ProjectID: demo, Type: "ec2", Blob: "a:s"}, trustack.EINVALID},
		{"ec2 blob without access", trustack.Credential{UserID: alice, ProjectID: demo, Type: "ec2", Blob: `{"secret": "s"}`}, trustack.EINVALID},
		{"ec2 access taken", trustack.Credential{UserID: alice, ProjectID: demo, Type: "ec2", Blob: `{"access": "taken", "secret": "other"}`}, trustack.ECONFLICT},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, f.svc.CreateCredential(ctx, &tc.c), tc.code)
		})
	}
	// Any other type keeps any blob, and needs no project.
	cert := &trustack.Credential{UserID: alice, Type: "cert", Blob: "-----BEGIN CERTIFICATE-----"}
	if err := f.svc.CreateCredential(ctx, cert); err != nil {
		t.Fatal(err)
	}
	// An update may not take another's access key, nor set a trust.
	_, err := f.svc.UpdateCredential(ctx, cert.ID, func(c *trustack.Credential) error {
		c.Type, c.ProjectID, c.Blob = "ec2", demo, `{"access": "taken", "secret": "s"}`
		return nil
	})
	wantCode(t, err, trustack.ECONFLICT)
	c := f.ec2(t, "alice", "demo", "mine", "s")
	_, err = f.svc.UpdateCredential(ctx, c.ID, func(c *trustack.Credential) error {
		c.Blob = `{"access": "mine", "secret": "s", "trust_id": "t1"}`
		return nil
	})
	wantCode(t, err, trustack.EINVALID)
	_, err = f.svc.Credential(ctx, "unknown")
	wantCode(t, err, trustack.ENOTFOUND)
	wantCode(t, f.svc.DeleteCredential(ctx, "unknown"), trustack.ENOTFOUND)
}

func TestEC2Credential(t *testing.T) {
	f := newFixture(t)
	c, err := f.svc.CreateEC2Credential(ctx, f.userID(t, "alice"), f.projectID(t, "demo"))
	if err != nil {
		t.Fatal(err)
	}
	blob, err := identity.ParseEC2Blob(c.Blob)
	if err != nil {
		t.Fatal(err)
	}
	if len(blob.Access) != 32 || len(blob.Secret) != 32 || blob.Access == blob.Secret {
		t.Fatalf("keys: got %q and %q, want two different 32-digit hex keys", blob.Access, blob.Secret)
	}

	secret, tok, err := f.svc.EC2Credential(ctx, blob.Access)
	if err != nil {
		t.Fatal(err)
	}
	if secret != blob.Secret {
		t.Errorf("secret: got %q, want %q", secret, blob.Secret)
	}
	// The token is the one a password would give alice on demo.
	password, _ := f.login(t, "alice", "alice-pw", identity.Scope{ProjectName: "demo", ProjectDomainName: "Default"})
	if tok.User.ID != password.User.ID || tok.Project == nil || tok.Project.ID != password.Project.ID || tok.ProjectDomain.ID != "default" {
		t.Errorf("scope: got user %s, project %+v; want alice on demo", tok.User.ID, tok.Project)
	}
	if got, want := roleNames(tok), roleNames(password); !slices.Equal(got, want) {
		t.Errorf("roles: got %v, want %v", got, want)
	}
	now := f.clock.Now()
	if !slices.Equal(tok.Methods, []string{"ec2credential"}) || !tok.IssuedAt.Equal(now) || !tok.ExpiresAt.Equal(now.Add(time.Hour)) || len(tok.AuditIDs) != 1 {
		t.Errorf("token: got methods %v, issued %v, expires %v, audit IDs %v", tok.Methods, tok.IssuedAt, tok.ExpiresAt, tok.AuditIDs)
	}
	// Each call is a new token, even from the cache.
	f.clock.Add(time.Second)
	_, again, err := f.svc.EC2Credential(ctx, blob.Access)
	if err != nil {
		t.Fatal(err)
	}
	if again.AuditIDs[0] == tok.AuditIDs[0] || !again.IssuedAt.After(tok.IssuedAt) {
		t.Errorf("second token: audit IDs %v and %v, issued %v and %v; want new ones", tok.AuditIDs, again.AuditIDs, tok.IssuedAt, again.IssuedAt)
	}

	_, _, err = f.svc.EC2Credential(ctx, "unknown")
	wantCode(t, err, trustack.EUNAUTHORIZED)
	_, _, err = f.svc.EC2Credential(ctx, "")
	wantCode(t, err, trustack.EUNAUTHORIZED)

	// Disabling the user refuses the credential at once, cache or not.
	if _, err := f.svc.UpdateUser(ctx, c.UserID, func(u *trustack.User) error { u.Enabled = false; return nil }, nil); err != nil {
		t.Fatal(err)
	}
	_, _, err = f.svc.EC2Credential(ctx, blob.Access)
	wantCode(t, err, trustack.EUNAUTHORIZED)
	if _, err := f.svc.UpdateUser(ctx, c.UserID, func(u *trustack.User) error { u.Enabled = true; return nil }, nil); err != nil {
		t.Fatal(err)
	}
	// So does disabling the project, or revoking the user's role on it.
	if _, err := f.svc.UpdateProject(ctx, c.ProjectID, func(p *trustack.Project) error { p.Enabled = false; return nil }); err != nil {
		t.Fatal(err)
	}
	_, _, err = f.svc.EC2Credential(ctx, blob.Access)
	wantCode(t, err, trustack.EUNAUTHORIZED)
	if _, err := f.svc.UpdateProject(ctx, c.ProjectID, func(p *trustack.Project) error { p.Enabled = true; return nil }); err != nil {
		t.Fatal(err)
	}
	as, err := f.svc.Assignments(ctx, trustack.AssignmentFilter{UserID: c.UserID, ProjectID: c.ProjectID})
	if err != nil || len(as) != 1 {
		t.Fatalf("alice's assignments on demo: %v, %v", as, err)
	}
	if err := f.svc.RevokeGrant(ctx, as[0]); err != nil {
		t.Fatal(err)
	}
	_, _, err = f.svc.EC2Credential(ctx, blob.Access)
	wantCode(t, err, trustack.EUNAUTHORIZED)
	if err := f.svc.Grant(ctx, as[0]); err != nil {
		t.Fatal(err)
	}

	// A new secret applies at once; a deleted credential is refused.
	if _, err := f.svc.UpdateCredential(ctx, c.ID, func(c *trustack.Credential) error {
		b, _ := json.Marshal(identity.EC2Blob{Access: blob.Access, Secret: "new-secret"})
		c.Blob = string(b)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if secret, _, err := f.svc.EC2Credential(ctx, blob.Access); err != nil || secret != "new-secret" {
		t.Errorf("after an update: got %q, %v; want new-secret", secret, err)
	}
	if err := f.svc.DeleteCredential(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	_, _, err = f.svc.EC2Credential(ctx, blob.Access)
	wantCode(t, err, trustack.EUNAUTHORIZED)
}

func TestDeletingAUserOrProjectDeletesItsCredentials(t *testing.T) {
	f := newFixture(t)
	bob := &trustack.User{Name: "bob", Enabled: true}
	if err := f.svc.CreateUser(ctx, bob, "bob-pw"); err != nil {
		t.Fatal(err)
	}
	p := &trustack.Project{Name: "scratch", Enabled: true}
	if err := f.svc.CreateProject(ctx, p); err != nil {
		t.Fatal(err)
	}
	f.ec2(t, "bob", "demo", "bob-access", "s")
	f.ec2(t, "alice", "scratch", "alice-scratch", "s")
	kept := f.ec2(t, "alice", "demo", "alice-demo", "s")
	if err := f.svc.DeleteUser(ctx, bob.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.DeleteProject(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	list, err := f.svc.Credentials(ctx, trustack.CredentialFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != kept.ID {
		t.Errorf("got %d credentials, want only alice's on demo", len(list))
	}
	_, _, err = f.svc.EC2Credential(ctx, "bob-access")
	wantCode(t, err, trustack.EUNAUTHORIZED)
}

func TestCredentialsNeedTheirKeys(t *testing.T) {
	f := newFixture(t)
	keys, err := identity.OpenKeyRepository(filepath.Join(f.dir, "fernet-keys"))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := identity.New(f.store, keys, identity.Options{PasswordHashRounds: 4})
	if err != nil {
		t.Fatal(err)
	}
	err = svc.CreateCredential(ctx, &trustack.Credential{UserID: f.userID(t, "alice"), Type: "cert", Blob: "x"})
	wantCode(t, err, trustack.EUNAVAILABLE)
}
