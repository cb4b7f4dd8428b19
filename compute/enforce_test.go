package compute_test

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/acaas"
	"github.com/trustack/trustack/compute"
	"github.com/trustack/trustack/identity"
)

// germany puts host-0 in domain de-a at Berlin, host-1 in de-b at Munich
// and host-2 in fr at Paris.
func germany(t *testing.T, c *cloud) {
	t.Helper()
	for _, l := range []trustack.Location{{Name: "Berlin", Country: "DE"}, {Name: "Munich", Country: "DE"}, {Name: "Paris", Country: "FR"}} {
		if err := c.store.CreateLocation(ctx, &l); err != nil {
			t.Fatal(err)
		}
	}
	for i, d := range []trustack.PhysicalDomain{{Name: "de-a", Location: "Berlin"}, {Name: "de-b", Location: "Munich"}, {Name: "fr", Location: "Paris"}} {
		d.Source = trustack.SourceLocal
		if err := c.store.CreatePhysicalDomain(ctx, &d); err != nil {
			t.Fatal(err)
		}
		h := c.hostByName(t, c.hosts[i].name)
		if _, err := c.store.UpdateHost(ctx, h.ID, func(h *trustack.Host) error { h.Domain = d.Name; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	c.ctl.svc.RequirementsChanged()
}

// require states a requirement of the user's project, as its members do.
func require(t *testing.T, c *cloud, entry, value string) {
	t.Helper()
	if _, err := c.acaas.SetRequirement(ctx, acaas.Caller{ProjectID: c.user.ProjectID}, "", entry, value, acaas.Set); err != nil {
		t.Fatal(err)
	}
	c.ctl.svc.RequirementsChanged()
}

// moveDomain moves a domain to another location, as an operator does.
func moveDomain(t *testing.T, c *cloud, name, location string) {
	t.Helper()
	if _, err := c.store.UpdatePhysicalDomain(ctx, name, func(d *trustack.PhysicalDomain) error { d.Location = location; return nil }); err != nil {
		t.Fatal(err)
	}
	c.ctl.svc.RequirementsChanged()
}

// migrations returns the server's migrate actions, with their events.
func migrations(t *testing.T, c *cloud, id string) []trustack.InstanceAction {
	t.Helper()
	return actionsNamed(t, c, id, "migrate")
}

// actionsNamed returns the server's actions of a name, with their events.
func actionsNamed(t *testing.T, c *cloud, id, name string) []trustack.InstanceAction {
	t.Helper()
	list, err := c.store.Actions(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var out []trustack.InstanceAction
	for _, a := range list {
		if a.Action == name {
			out = append(out, *c.action(t, id, a.RequestID))
		}
	}
	return out
}

// member returns a caller who is a member of a new project, with a token.
func member(t *testing.T, c *cloud, project, user string) compute.Caller {
	t.Helper()
	if err := c.identity.Bootstrap(ctx, identity.BootstrapConfig{Region: "RegionOne",
		Accounts: []identity.BootstrapAccount{{Project: project, User: user, Role: "member", Password: "pw"}}}); err != nil {
		t.Fatal(err)
	}
	tok, token, err := c.identity.Authenticate(ctx, identity.AuthRequest{
		Password: &identity.PasswordAuth{UserName: user, DomainName: "Default", Password: "pw"},
		Scope:    identity.Scope{ProjectName: project, ProjectDomainName: "Default"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return compute.Caller{UserID: tok.User.ID, ProjectID: tok.Project.ID, Token: token}
}

func TestServerFollowsItsRequirementsWhenItsDomainMoves(t *testing.T) {
	t.Parallel()
	c := newCloud(t, cloudOptions{Hosts: 3, ImageAPI: true, ACaaS: true})
	germany(t, c)
	require(t, c, "location", "DE")
	srv := c.boot(t, "vm")
	if srv.Host == "host-2" {
		t.Fatalf("a server requiring location=DE landed on host-2, in Paris")
	}
	if want := (trustack.Requirement{Entry: "location", Kind: trustack.KindLocation, Value: "DE", Source: trustack.FromProject}); !slices.Equal(srv.Requirements, trustack.Requirements{want}) {
		t.Errorf("server placed under %v, want %v", srv.Requirements, want)
	}
	from, other := srv.Host, map[string]string{"host-0": "host-1", "host-1": "host-0"}[srv.Host]
	domain := map[string]string{"host-0": "de-a", "host-1": "de-b"}[from]

	// The operator moves the server's domain to Paris: the server moves
	// to the other German host, and runs there only.
	moveDomain(t, c, domain, "Paris")
	moved := c.waitServer(t, srv.ID, "a migration to "+other, func(s *trustack.Server) bool { return s.Host == other })
	if compute.Status(moved) != "ACTIVE" || moved.Fault != nil {
		t.Errorf("after the migration: %s with fault %+v, want ACTIVE without one", compute.Status(moved), moved.Fault)
	}
	c.waitFor(t, "the server to be gone from "+from, func() bool {
		return maps.Equal(c.where(t, srv.ID), map[string]trustack.PowerState{other: trustack.PowerRunning})
	})
	if claims := c.claims(t); claims[srv.ID].HostID != c.hostByName(t, other).ID {
		t.Errorf("the claim is on %s, want %s", claims[srv.ID].HostID, other)
	}
	c.checkUsage(t)
	list := migrations(t, c, srv.ID)
	if len(list) != 1 {
		t.Fatalf("%d migrate actions, want 1", len(list))
	}
	e := wantEvent(t, &list[0], "compute_migrate_instance", "Success")
	if e.Host != other || !strings.Contains(list[0].Message, "no longer meets the requirement location=DE (project)") {
		t.Errorf("migration recorded on %s, message %q; want %s and the requirement it broke", e.Host, list[0].Message, other)
	}
	// The migration's transient copy of the disk is gone.
	imgs, err := c.store.Images(ctx, trustack.ImageFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range imgs {
		if img.Properties["image_type"] == "migration" && img.Status != trustack.ImageDeleted {
			t.Errorf("image %s (%s) of the migration is left, %s", img.ID, img.Name, img.Status)
		}
	}

	// With no German host left, the server stays, in ERROR, and says why.
	moveDomain(t, c, map[string]string{"host-0": "de-a", "host-1": "de-b"}[other], "Paris")
	stuck := c.waitServer(t, srv.ID, "the server to be marked", func(s *trustack.Server) bool { return s.VMState == trustack.VMError })
	if stuck.Host != other || stuck.Fault == nil ||
		!strings.Contains(stuck.Fault.Message, "Host "+other+" no longer meets the requirement location=DE (project).") ||
		!strings.Contains(stuck.Fault.Message, "No valid host was found.") {
		t.Errorf("server on %s with fault %+v, want it on %s with a fault naming location=DE and no valid host", stuck.Host, stuck.Fault, other)
	}
	if got := c.where(t, srv.ID); !maps.Equal(got, map[string]trustack.PowerState{other: trustack.PowerRunning}) {
		t.Errorf("server runs on %v, want still on %s", got, other)
	}
	results := map[string]int{}
	for _, a := range migrations(t, c, srv.ID) {
		for _, e := range a.Events {
			results[e.Result]++
		}
	}
	if !maps.Equal(results, map[string]int{"Success": 1, "Error": 1}) {
		t.Errorf("migrate events by result %v, want the first done and a second failed", results)
	}
}

func TestExclusiveIsolationStatedLaterMovesTheProjectOut(t *testing.T) {
	t.Parallel()
	c := newCloud(t, cloudOptions{Hosts: 2, ImageAPI: true, ACaaS: true})
	// A server of the user's project and one of another project share
	// host-0: host-1 is disabled meanwhile.
	h1 := c.hostByName(t, "host-1")
	if _, err := c.ctl.svc.SetHostEnabled(ctx, h1.ID, false, "maintenance"); err != nil {
		t.Fatal(err)
	}
	mine, mine2 := c.boot(t, "mine"), c.boot(t, "mine-too")
	neighbour := member(t, c, "neighbour", "bob")
	list, err := c.ctl.svc.CreateServers(ctx, c.as(neighbour), compute.CreateRequest{Name: "neighbour", ImageID: c.imageID, FlavorID: "1"})
	if err != nil {
		t.Fatal(err)
	}
	other := c.waitStatus(t, list[0].ID, "ACTIVE")
	if mine.Host != "host-0" || mine2.Host != "host-0" || other.Host != "host-0" {
		t.Fatalf("servers on %s, %s and %s, want all on host-0", mine.Host, mine2.Host, other.Host)
	}
	if _, err := c.ctl.svc.SetHostEnabled(ctx, h1.ID, true, ""); err != nil {
		t.Fatal(err)
	}

	// The project asks for exclusive hosts: its servers leave host-0,
	// the neighbour's stays.
	require(t, c, "isolation", "exclusive")
	for _, id := range []string{mine.ID, mine2.ID} {
		moved := c.waitServer(t, id, "a migration to host-1", func(s *trustack.Server) bool { return s.Host == "host-1" })
		if compute.Status(moved) != "ACTIVE" {
			t.Errorf("server %s is %s after its migration, want ACTIVE", id, compute.Status(moved))
		}
	}
	if got := c.server(t, other.ID); got.Host != "host-0" || len(migrations(t, c, other.ID)) != 0 {
		t.Errorf("the neighbour's server is on %s with %d migrations, want it left on host-0", got.Host, len(migrations(t, c, other.ID)))
	}
	// Nothing of the neighbour's may join the exclusive project's host.
	more, err := c.ctl.svc.CreateServers(ctx, c.as(neighbour), compute.CreateRequest{Name: "more", ImageID: c.imageID, FlavorID: "1"})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.waitStatus(t, more[0].ID, "ACTIVE"); got.Host != "host-0" {
		t.Errorf("the neighbour's new server is on %s, want host-0: host-1 is the exclusive project's", got.Host)
	}
	c.checkUsage(t)
}
