package storetest

import (
	"slices"
	"testing"

	"github.com/trustack/trustack"
)

func credentialIDs(list []*trustack.Credential) []string {
	ids := []string{}
	for _, c := range list {
		ids = append(ids, c.ID)
	}
	return ids
}

func testCredentials(t *testing.T, s Store) {
	domain(t, s, "d1")
	project(t, s, "p1", "d1")
	project(t, s, "p2", "d1")
	user(t, s, "u1", "d1")
	user(t, s, "u2", "d1")
	ec2 := &trustack.Credential{ID: "c1", UserID: "u1", ProjectID: "p1", Type: trustack.CredentialEC2, Blob: "sealed-1", Access: "a1",
		Extra: trustack.Extra{"note": "for backups"}}
	must(t, s.CreateCredential(ctx, ec2))
	cert := &trustack.Credential{ID: "c2", UserID: "u1", Type: "cert", Blob: "sealed-2"}
	must(t, s.CreateCredential(ctx, cert))
	must(t, s.CreateCredential(ctx, &trustack.Credential{ID: "c3", UserID: "u2", ProjectID: "p2", Type: trustack.CredentialEC2, Blob: "sealed-3", Access: "a3"}))

	got, err := s.Credential(ctx, "c1")
	must(t, err)
	equal(t, got, ec2)
	got, err = s.Credential(ctx, "c2")
	must(t, err)
	equal(t, got.ProjectID, "")
	_, err = s.Credential(ctx, "c9")
	code(t, err, trustack.ENOTFOUND)

	// An access key is unique; other credentials have none, which is no clash.
	code(t, s.CreateCredential(ctx, &trustack.Credential{ID: "c4", UserID: "u2", ProjectID: "p2", Type: trustack.CredentialEC2, Blob: "x", Access: "a1"}), trustack.ECONFLICT)
	must(t, s.CreateCredential(ctx, &trustack.Credential{ID: "c5", UserID: "u2", Type: "totp", Blob: "x"}))
	code(t, s.CreateCredential(ctx, &trustack.Credential{ID: "c6", UserID: "nobody", Type: "totp", Blob: "x"}), trustack.ECONFLICT)

	for _, tc := range []struct {
		f    trustack.CredentialFilter
		want []string
	}{
		{trustack.CredentialFilter{}, []string{"c1", "c2", "c3", "c5"}},
		{trustack.CredentialFilter{UserID: "u1"}, []string{"c1", "c2"}},
		{trustack.CredentialFilter{Type: trustack.CredentialEC2}, []string{"c1", "c3"}},
		{trustack.CredentialFilter{UserID: "u2", Type: trustack.CredentialEC2}, []string{"c3"}},
		{trustack.CredentialFilter{Access: "a3"}, []string{"c3"}},
		{trustack.CredentialFilter{Access: "a9"}, []string{}},
	} {
		list, err := s.Credentials(ctx, tc.f)
		must(t, err)
		if got := credentialIDs(list); !slices.Equal(got, tc.want) {
			t.Errorf("Credentials(%+v): got %v, want %v", tc.f, got, tc.want)
		}
	}

	updated, err := s.UpdateCredential(ctx, "c1", func(c *trustack.Credential) error {
		c.Blob, c.Access, c.ProjectID = "sealed-1b", "a1b", "p2"
		return nil
	})
	must(t, err)
	got, err = s.Credential(ctx, "c1")
	must(t, err)
	equal(t, got, updated)
	equal(t, got.Access, "a1b")
	_, err = s.UpdateCredential(ctx, "c1", func(c *trustack.Credential) error { c.Access = "a3"; return nil })
	code(t, err, trustack.ECONFLICT)

	must(t, s.DeleteCredential(ctx, "c2"))
	code(t, s.DeleteCredential(ctx, "c2"), trustack.ENOTFOUND)

	// Deleting a user or a project deletes its credentials.
	must(t, s.DeleteUser(ctx, "u2"))
	list, err := s.Credentials(ctx, trustack.CredentialFilter{})
	must(t, err)
	equal(t, credentialIDs(list), []string{"c1"})
	must(t, s.DeleteProject(ctx, "p2"))
	list, err = s.Credentials(ctx, trustack.CredentialFilter{})
	must(t, err)
	equal(t, credentialIDs(list), []string{})
}
