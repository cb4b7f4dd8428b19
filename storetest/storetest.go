// Package storetest is the conformance suite of trustack's stores: every
// backend (SQLite and PostgreSQL today) runs the same tests, so that what
// passes on a laptop holds in production.
package storetest

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/acaas"
	"github.com/trustack/trustack/attest"
	"github.com/trustack/trustack/cluster"
	"github.com/trustack/trustack/compute"
	"github.com/trustack/trustack/identity"
	"github.com/trustack/trustack/images"
	"github.com/trustack/trustack/network"
	"github.com/trustack/trustack/volume"
)

// Store is everything a backend must implement.
type Store interface {
	identity.Store
	images.Store
	compute.Store
	acaas.Store
	attest.Store
	network.Store
	volume.Store
	cluster.Store
}

// Run runs the suite; open returns a new, empty store for each test.
func Run(t *testing.T, open func(t testing.TB) Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s Store)
	}{
		{"Domains", testDomains},
		{"Leases", testLeases},
		{"ConsoleTokens", testConsoleTokens},
		{"Projects", testProjects},
		{"UsersAndPasswords", testUsers},
		{"Groups", testGroups},
		{"RolesAndImplications", testRoles},
		{"Assignments", testAssignments},
		{"DeletesTakeAssignmentsAlong", testDeletes},
		{"Catalog", testCatalog},
		{"Revocations", testRevocations},
		{"Credentials", testCredentials},
		{"ConcurrentUpdatesAreNotLost", testConcurrentUpdates},
		{"Images", testImages},
		{"ImageLists", testImageLists},
		{"ImagePages", testImagePages},
		{"ImageMembers", testImageMembers},
		{"Flavors", testFlavors},
		{"Keypairs", testKeypairs},
		{"Hosts", testHosts},
		{"Claims", testClaims},
		{"ClaimsUnderConcurrency", testClaimsUnderConcurrency},
		{"GroupPolicies", testGroupPolicies},
		{"Servers", testServers},
		{"QuotaUnderConcurrency", testQuotaUnderConcurrency},
		{"ActionsAndQuotas", testActionsAndQuotas},
		{"ActionsRecordedWithTheirChange", testActionsRecordedWithTheirChange},
		{"MoveClaim", testMoveClaim},
		{"Aggregates", testAggregates},
		{"AggregatesUnderConcurrency", testAggregatesUnderConcurrency},
		{"Locations", testLocations},
		{"PhysicalDomains", testPhysicalDomains},
		{"HostPropertiesAndDomain", testHostPropertiesAndDomain},
		{"ServerRequirements", testServerRequirements},
		{"RequirementEntriesAndProjectRequirements", testRequirementEntriesAndProjectRequirements},
		{"Topology", testTopology},
		{"IsolationInClaims", testIsolationInClaims},
		{"IsolationUnderConcurrency", testIsolationUnderConcurrency},
		{"Whitelists", testWhitelists},
		{"LargeWhitelist", testLargeWhitelist},
		{"HostAttestations", testHostAttestations},
		{"HostAttestationUpdatesUnderConcurrency", testHostAttestationUpdatesUnderConcurrency},
		{"ApprovedEKs", testApprovedEKs},
		{"AttestationEvents", testAttestationEvents},
		{"AttestationEventsUnderConcurrency", testAttestationEventsUnderConcurrency},
		{"Networks", testNetworks},
		{"NetworkAndSubnetLists", testNetworkLists},
		{"Subnets", testSubnets},
		{"SubnetsUnderConcurrency", testSubnetsUnderConcurrency},
		{"Ports", testPorts},
		{"ServersWithPorts", testServersWithPorts},
		{"DevicePhysicalNetworks", testDevicePhysicalNetworks},
		{"PortsUnderConcurrency", testPortsUnderConcurrency},
		{"AddressesAreRandom", testAddressesAreRandom},
		{"NetworkAndSubnetDeletes", testNetworkDeletes},
		{"ServerPorts", testServerPorts},
		{"HostWiring", testHostWiring},
		{"SecurityGroups", testSecurityGroups},
		{"SecurityGroupRules", testSecurityGroupRules},
		{"SecurityGroupMembersAndHosts", testSecurityGroupMembersAndHosts},
		{"Routers", testRouters},
		{"RouterInterfaces", testRouterInterfaces},
		{"FloatingIPs", testFloatingIPs},
		{"NetworkQuotas", testNetworkQuotas},
		{"NetworkQuotaUnderConcurrency", testNetworkQuotaUnderConcurrency},
		{"VolumeTypes", testVolumeTypes},
		{"Volumes", testVolumes},
		{"VolumeQuotas", testVolumeQuotas},
		{"VolumeQuotaUnderConcurrency", testVolumeQuotaUnderConcurrency},
		{"Snapshots", testSnapshots},
		{"VolumeMessages", testVolumeMessages},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, open(t))
		})
	}
}

var ctx = context.Background()

func code(t testing.TB, err error, want string) {
	t.Helper()
	if got := trustack.ErrorCode(err); got != want {
		t.Fatalf("got error %v (code %q), want code %q", err, got, want)
	}
}

// race runs create(0) to create(racers-1) at once and returns how many
// succeeded, failing t for an error other than one of code and reason.
func race(t testing.TB, racers int, code, reason string, create func(i int) error) int {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, racers)
	for i := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = create(i)
		}()
	}
	wg.Wait()
	created := 0
	for _, err := range errs {
		switch {
		case err == nil:
			created++
		case trustack.ErrorCode(err) != code || trustack.ErrorReason(err) != reason:
			t.Errorf("got error %v, want %s (%s)", err, code, reason)
		}
	}
	return created
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func equal(t testing.TB, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func domain(t testing.TB, s Store, id string) *trustack.Domain {
	d := &trustack.Domain{ID: id, Name: "name-" + id, Enabled: true}
	must(t, s.CreateDomain(ctx, d))
	return d
}

func project(t testing.TB, s Store, id, domainID string) *trustack.Project {
	p := &trustack.Project{ID: id, Name: "name-" + id, DomainID: domainID, ParentID: domainID, Enabled: true}
	must(t, s.CreateProject(ctx, p))
	return p
}

func user(t testing.TB, s Store, id, domainID string) *trustack.User {
	u := &trustack.User{ID: id, Name: "name-" + id, DomainID: domainID, Enabled: true}
	must(t, s.CreateUser(ctx, u, "hash-"+id))
	return u
}

func role(t testing.TB, s Store, id string) *trustack.Role {
	r := &trustack.Role{ID: id, Name: "name-" + id}
	must(t, s.CreateRole(ctx, r))
	return r
}

func testDomains(t *testing.T, s Store) {
	d := &trustack.Domain{ID: "d1", Name: "Acme", Description: "the acme corp", Enabled: true,
		Extra: trustack.Extra{"email": "ops@acme.example", "tier": float64(2)}}
	must(t, s.CreateDomain(ctx, d))
	got, err := s.Domain(ctx, "d1")
	must(t, err)
	equal(t, got, d)

	code(t, s.CreateDomain(ctx, &trustack.Domain{ID: "d2", Name: "Acme"}), trustack.ECONFLICT)
	code(t, s.CreateDomain(ctx, &trustack.Domain{ID: "d1", Name: "Other"}), trustack.ECONFLICT)
	_, err = s.Domain(ctx, "nope")
	code(t, err, trustack.ENOTFOUND)

	domain(t, s, "d3")
	list, err := s.Domains(ctx, trustack.DomainFilter{Name: "Acme"})
	must(t, err)
	equal(t, len(list), 1)
	disabled := false
	updated, err := s.UpdateDomain(ctx, "d3", func(d *trustack.Domain) error { d.Enabled = false; d.Extra = nil; return nil })
	must(t, err)
	equal(t, updated.Enabled, false)
	list, err = s.Domains(ctx, trustack.DomainFilter{Enabled: &disabled})
	must(t, err)
	equal(t, len(list), 1)
	equal(t, list[0].ID, "d3")

	// A failing update changes nothing; the ID cannot change.
	_, err = s.UpdateDomain(ctx, "d1", func(d *trustack.Domain) error {
		d.Name = "changed"
		return trustack.Errorf(trustack.EFORBIDDEN, "no")
	})
	code(t, err, trustack.EFORBIDDEN)
	_, err = s.UpdateDomain(ctx, "d1", func(d *trustack.Domain) error { d.ID = "d9"; return nil })
	code(t, err, trustack.EINVALID)
	_, err = s.UpdateDomain(ctx, "d1", func(d *trustack.Domain) error { d.Name = "name-d3"; return nil })
	code(t, err, trustack.ECONFLICT)
	got, _ = s.Domain(ctx, "d1")
	equal(t, got.Name, "Acme")
	_, err = s.UpdateDomain(ctx, "nope", func(*trustack.Domain) error { return nil })
	code(t, err, trustack.ENOTFOUND)

	must(t, s.DeleteDomain(ctx, "d3"))
	code(t, s.DeleteDomain(ctx, "d3"), trustack.ENOTFOUND)
}

func testProjects(t *testing.T, s Store) {
	domain(t, s, "d1")
	domain(t, s, "d2")
	p := project(t, s, "p1", "d1")
	project(t, s, "p2", "d2")
	child := &trustack.Project{ID: "p3", Name: "child", DomainID: "d1", ParentID: "p1", Enabled: false, Tags: []string{"prod", "eu"}}
	must(t, s.CreateProject(ctx, child))
	got, err := s.Project(ctx, "p3")
	must(t, err)
	equal(t, got, child)

	// Names are unique within a domain only.
	code(t, s.CreateProject(ctx, &trustack.Project{ID: "p4", Name: p.Name, DomainID: "d1", ParentID: "d1"}), trustack.ECONFLICT)
	must(t, s.CreateProject(ctx, &trustack.Project{ID: "p5", Name: p.Name, DomainID: "d2", ParentID: "d2"}))
	// A project needs an existing domain.
	code(t, s.CreateProject(ctx, &trustack.Project{ID: "p6", Name: "x", DomainID: "missing", ParentID: "missing"}), trustack.ECONFLICT)

	for _, tc := range []struct {
		f    trustack.ProjectFilter
		want []string
	}{
		{trustack.ProjectFilter{DomainID: "d1"}, []string{"p3", "p1"}},
		{trustack.ProjectFilter{Name: p.Name}, []string{"p1", "p5"}},
		{trustack.ProjectFilter{ParentID: "p1"}, []string{"p3"}},
		{trustack.ProjectFilter{IDs: []string{"p2", "p3"}}, []string{"p3", "p2"}},
		{trustack.ProjectFilter{IDs: []string{}}, nil},
	} {
		list, err := s.Projects(ctx, tc.f)
		must(t, err)
		var ids []string
		for _, p := range list {
			ids = append(ids, p.ID)
		}
		if !reflect.DeepEqual(ids, tc.want) {
			t.Errorf("Projects(%+v) = %v, want %v", tc.f, ids, tc.want)
		}
	}
}

func testUsers(t *testing.T, s Store) {
	domain(t, s, "d1")
	project(t, s, "p1", "d1")
	u := &trustack.User{ID: "u1", Name: "alice", DomainID: "d1", DefaultProjectID: "p1", Enabled: true, Extra: trustack.Extra{"email": "a@example.com"}}
	must(t, s.CreateUser(ctx, u, "secret-hash"))
	got, err := s.User(ctx, "u1")
	must(t, err)
	equal(t, got, u)
	hash, err := s.PasswordHash(ctx, "u1")
	must(t, err)
	equal(t, hash, "secret-hash")
	must(t, s.SetPasswordHash(ctx, "u1", "new-hash"))
	hash, _ = s.PasswordHash(ctx, "u1")
	equal(t, hash, "new-hash")
	code(t, s.SetPasswordHash(ctx, "nope", "x"), trustack.ENOTFOUND)
	_, err = s.PasswordHash(ctx, "nope")
	code(t, err, trustack.ENOTFOUND)
	// An update leaves the password alone.
	_, err = s.UpdateUser(ctx, "u1", func(u *trustack.User) error { u.Name = "alice2"; return nil })
	must(t, err)
	hash, _ = s.PasswordHash(ctx, "u1")
	equal(t, hash, "new-hash")

	code(t, s.CreateUser(ctx, &trustack.User{ID: "u2", Name: "alice2", DomainID: "d1"}, ""), trustack.ECONFLICT)
	list, err := s.Users(ctx, trustack.UserFilter{DomainID: "d1", Name: "alice2"})
	must(t, err)
	equal(t, len(list), 1)
}

func testGroups(t *testing.T, s Store) {
	domain(t, s, "d1")
	user(t, s, "u1", "d1")
	user(t, s, "u2", "d1")
	g := &trustack.Group{ID: "g1", Name: "admins", Description: "ops", DomainID: "d1"}
	must(t, s.CreateGroup(ctx, g))
	must(t, s.CreateGroup(ctx, &trustack.Group{ID: "g2", Name: "devs", DomainID: "d1"}))
	must(t, s.AddGroupMember(ctx, "g1", "u1"))
	must(t, s.AddGroupMember(ctx, "g1", "u1")) // idempotent
	must(t, s.AddGroupMember(ctx, "g2", "u1"))
	code(t, s.AddGroupMember(ctx, "g1", "missing"), trustack.ECONFLICT)

	in, err := s.IsGroupMember(ctx, "g1", "u1")
	must(t, err)
	equal(t, in, true)
	in, err = s.IsGroupMember(ctx, "g1", "u2")
	must(t, err)
	equal(t, in, false)

	members, err := s.Users(ctx, trustack.UserFilter{GroupID: "g1"})
	must(t, err)
	equal(t, len(members), 1)
	equal(t, members[0].ID, "u1")
	groups, err := s.Groups(ctx, trustack.GroupFilter{UserID: "u1"})
	must(t, err)
	equal(t, len(groups), 2)

	must(t, s.RemoveGroupMember(ctx, "g1", "u1"))
	code(t, s.RemoveGroupMember(ctx, "g1", "u1"), trustack.ENOTFOUND)
	must(t, s.DeleteUser(ctx, "u1"))
	groups, err = s.Groups(ctx, trustack.GroupFilter{UserID: "u1"})
	must(t, err)
	equal(t, len(groups), 0)
}

func testRoles(t *testing.T, s Store) {
	role(t, s, "admin")
	role(t, s, "member")
	role(t, s, "reader")
	code(t, s.CreateRole(ctx, &trustack.Role{ID: "x", Name: "name-admin"}), trustack.ECONFLICT)
	must(t, s.CreateImpliedRole(ctx, trustack.ImpliedRole{PriorID: "admin", ImpliedID: "member"}))
	must(t, s.CreateImpliedRole(ctx, trustack.ImpliedRole{PriorID: "member", ImpliedID: "reader"}))
	must(t, s.CreateImpliedRole(ctx, trustack.ImpliedRole{PriorID: "member", ImpliedID: "reader"}))
	code(t, s.CreateImpliedRole(ctx, trustack.ImpliedRole{PriorID: "member", ImpliedID: "missing"}), trustack.ECONFLICT)
	imp, err := s.ImpliedRoles(ctx)
	must(t, err)
	equal(t, imp, []trustack.ImpliedRole{{PriorID: "admin", ImpliedID: "member"}, {PriorID: "member", ImpliedID: "reader"}})

	// Deleting a role removes the implications that name it.
	must(t, s.DeleteRole(ctx, "member"))
	imp, err = s.ImpliedRoles(ctx)
	must(t, err)
	equal(t, len(imp), 0)
	code(t, s.DeleteImpliedRole(ctx, trustack.ImpliedRole{PriorID: "admin", ImpliedID: "member"}), trustack.ENOTFOUND)
}

func testAssignments(t *testing.T, s Store) {
	domain(t, s, "d1")
	project(t, s, "p1", "d1")
	project(t, s, "p2", "d1")
	user(t, s, "u1", "d1")
	user(t, s, "u2", "d1")
	role(t, s, "r1")
	role(t, s, "r2")
	must(t, s.CreateGroup(ctx, &trustack.Group{ID: "g1", Name: "g", DomainID: "d1"}))
	must(t, s.AddGroupMember(ctx, "g1", "u2"))

	grants := []trustack.Assignment{
		{RoleID: "r1", UserID: "u1", ProjectID: "p1"},
		{RoleID: "r2", UserID: "u1", DomainID: "d1"},
		{RoleID: "r2", GroupID: "g1", ProjectID: "p1"},
		{RoleID: "r1", UserID: "u2", ProjectID: "p2"},
	}
	for _, a := range grants {
		must(t, s.Grant(ctx, a))
		must(t, s.Grant(ctx, a)) // idempotent
	}
	code(t, s.Grant(ctx, trustack.Assignment{RoleID: "missing", UserID: "u1", ProjectID: "p1"}), trustack.ECONFLICT)

	for _, tc := range []struct {
		f    trustack.AssignmentFilter
		want []trustack.Assignment
	}{
		{trustack.AssignmentFilter{UserID: "u1"}, []trustack.Assignment{grants[1], grants[0]}},
		{trustack.AssignmentFilter{UserID: "u1", ProjectID: "p1"}, grants[:1]},
		{trustack.AssignmentFilter{ProjectID: "p1"}, []trustack.Assignment{grants[2], grants[0]}},
		{trustack.AssignmentFilter{GroupID: "g1"}, grants[2:3]},
		{trustack.AssignmentFilter{RoleID: "r1"}, []trustack.Assignment{grants[0], grants[3]}},
		{trustack.AssignmentFilter{UserID: "u2", IncludeGroups: true}, []trustack.Assignment{grants[2], grants[3]}},
		{trustack.AssignmentFilter{UserID: "u2", IncludeGroups: true, ProjectID: "p1"}, grants[2:3]},
		{trustack.AssignmentFilter{DomainID: "d1"}, grants[1:2]},
	} {
		got, err := s.Assignments(ctx, tc.f)
		must(t, err)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Assignments(%+v) = %+v, want %+v", tc.f, got, tc.want)
		}
	}
	must(t, s.RevokeGrant(ctx, grants[0]))
	code(t, s.RevokeGrant(ctx, grants[0]), trustack.ENOTFOUND)
}

func testDeletes(t *testing.T, s Store) {
	domain(t, s, "d1")
	domain(t, s, "d2")
	project(t, s, "p1", "d1")
	project(t, s, "p2", "d2")
	user(t, s, "u1", "d1")
	user(t, s, "u2", "d2")
	role(t, s, "r")
	must(t, s.CreateGroup(ctx, &trustack.Group{ID: "g1", Name: "g", DomainID: "d1"}))
	for _, a := range []trustack.Assignment{
		{RoleID: "r", UserID: "u1", ProjectID: "p1"},
		{RoleID: "r", UserID: "u2", ProjectID: "p1"}, // another domain's user on d1's project
		{RoleID: "r", UserID: "u2", ProjectID: "p2"},
		{RoleID: "r", GroupID: "g1", ProjectID: "p2"}, // d1's group on another domain's project
		{RoleID: "r", UserID: "u2", DomainID: "d1"},
	} {
		must(t, s.Grant(ctx, a))
	}
	must(t, s.DeleteProject(ctx, "p2"))
	left, err := s.Assignments(ctx, trustack.AssignmentFilter{})
	must(t, err)
	equal(t, len(left), 3)

	// Deleting a domain deletes its projects, users and groups, and every
	// assignment that names them.
	must(t, s.DeleteDomain(ctx, "d1"))
	left, err = s.Assignments(ctx, trustack.AssignmentFilter{})
	must(t, err)
	equal(t, len(left), 0)
	for _, id := range []string{"p1"} {
		_, err := s.Project(ctx, id)
		code(t, err, trustack.ENOTFOUND)
	}
	_, err = s.User(ctx, "u1")
	code(t, err, trustack.ENOTFOUND)
	_, err = s.Group(ctx, "g1")
	code(t, err, trustack.ENOTFOUND)
	_, err = s.User(ctx, "u2")
	must(t, err)

	// Deleting a role deletes its assignments.
	project(t, s, "p3", "d2")
	must(t, s.Grant(ctx, trustack.Assignment{RoleID: "r", UserID: "u2", ProjectID: "p3"}))
	must(t, s.DeleteRole(ctx, "r"))
	left, err = s.Assignments(ctx, trustack.AssignmentFilter{})
	must(t, err)
	equal(t, len(left), 0)
}

func testCatalog(t *testing.T, s Store) {
	must(t, s.CreateRegion(ctx, &trustack.Region{ID: "RegionOne", Description: "first"}))
	must(t, s.CreateRegion(ctx, &trustack.Region{ID: "RegionOne-a", ParentRegionID: "RegionOne"}))
	code(t, s.CreateRegion(ctx, &trustack.Region{ID: "orphan", ParentRegionID: "missing"}), trustack.ECONFLICT)
	code(t, s.CreateRegion(ctx, &trustack.Region{ID: "RegionOne"}), trustack.ECONFLICT)
	children, err := s.Regions(ctx, trustack.RegionFilter{ParentRegionID: "RegionOne"})
	must(t, err)
	equal(t, len(children), 1)
	top, err := s.Region(ctx, "RegionOne")
	must(t, err)
	equal(t, top.ParentRegionID, "")

	svc := &trustack.Service{ID: "s1", Type: "identity", Name: "keystone", Enabled: true}
	must(t, s.CreateService(ctx, svc))
	ep := &trustack.Endpoint{ID: "e1", ServiceID: "s1", RegionID: "RegionOne", Interface: "public", URL: "http://x/identity/v3", Enabled: true}
	must(t, s.CreateEndpoint(ctx, ep))
	noRegion := &trustack.Endpoint{ID: "e2", ServiceID: "s1", Interface: "admin", URL: "http://x/identity/v3", Enabled: true}
	must(t, s.CreateEndpoint(ctx, noRegion))
	got, err := s.Endpoint(ctx, "e2")
	must(t, err)
	equal(t, got, noRegion)
	code(t, s.CreateEndpoint(ctx, &trustack.Endpoint{ID: "e3", ServiceID: "missing", Interface: "public", URL: "http://x"}), trustack.ECONFLICT)
	list, err := s.Endpoints(ctx, trustack.EndpointFilter{ServiceID: "s1", Interface: "public"})
	must(t, err)
	equal(t, len(list), 1)

	// A region in use cannot go; a service takes its endpoints along.
	code(t, s.DeleteRegion(ctx, "RegionOne"), trustack.ECONFLICT)
	must(t, s.DeleteService(ctx, "s1"))
	list, err = s.Endpoints(ctx, trustack.EndpointFilter{})
	must(t, err)
	equal(t, len(list), 0)
	must(t, s.DeleteRegion(ctx, "RegionOne-a"))
	must(t, s.DeleteRegion(ctx, "RegionOne"))
}

func testRevocations(t *testing.T, s Store) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	must(t, s.AddRevocation(ctx, trustack.Revocation{AuditID: "audit-1", ExpiresAt: t0.Add(time.Hour)}))
	must(t, s.AddRevocation(ctx, trustack.Revocation{UserID: "u1", IssuedBefore: t0, ExpiresAt: t0.Add(2 * time.Hour)}))
	for _, tc := range []struct {
		user   string
		issued time.Time
		audit  []string
		want   bool
	}{
		{"u9", t0, []string{"audit-1"}, true},
		{"u9", t0, []string{"audit-2", "audit-1"}, true},
		{"u9", t0, []string{"audit-2"}, false},
		{"u1", t0.Add(-time.Second), []string{"audit-2"}, true},
		{"u1", t0.Add(-time.Microsecond), []string{"audit-2"}, true},
		{"u1", t0, []string{"audit-2"}, false},
	} {
		got, err := s.IsRevoked(ctx, tc.user, tc.issued, tc.audit)
		must(t, err)
		if got != tc.want {
			t.Errorf("IsRevoked(%s, %v, %v) = %v, want %v", tc.user, tc.issued, tc.audit, got, tc.want)
		}
	}
	must(t, s.PruneRevocations(ctx, t0.Add(90*time.Minute)))
	got, err := s.IsRevoked(ctx, "u9", t0, []string{"audit-1"})
	must(t, err)
	equal(t, got, false)
	got, err = s.IsRevoked(ctx, "u1", t0.Add(-time.Second), []string{"x"})
	must(t, err)
	equal(t, got, true)
}

// testConcurrentUpdates checks that read-modify-write updates are atomic:
// none of many concurrent ones is lost.
func testConcurrentUpdates(t *testing.T, s Store) {
	domain(t, s, "d1")
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.UpdateDomain(ctx, "d1", func(d *trustack.Domain) error {
				d.Description += fmt.Sprintf("%02d.", i)
				return nil
			})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	d, err := s.Domain(ctx, "d1")
	must(t, err)
	if got := len(d.Description); got != 3*n {
		t.Fatalf("description has %d characters after %d appends, want %d: updates were lost", got, n, 3*n)
	}
}
