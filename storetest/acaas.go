package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/trustack/trustack"
)

// message fails t unless err's message, as users read it, is want.
func message(t testing.TB, err error, want string) {
	t.Helper()
	if got := trustack.ErrorMessage(err); got != want {
		t.Errorf("message %q, want %q", got, want)
	}
}

func location(t testing.TB, s Store, name, country string) {
	t.Helper()
	must(t, s.CreateLocation(ctx, &trustack.Location{Name: name, Country: country}))
}

func physicalDomain(t testing.TB, s Store, name, loc string, collaborators ...trustack.Collaborator) *trustack.PhysicalDomain {
	t.Helper()
	d := &trustack.PhysicalDomain{Name: name, Location: loc, Source: trustack.SourceLocal, Collaborators: collaborators, CreatedAt: start}
	must(t, s.CreatePhysicalDomain(ctx, d))
	return d
}

func testLocations(t *testing.T, s Store) {
	location(t, s, "Munich", "DE")
	location(t, s, "Berlin", "DE")
	location(t, s, "Amsterdam", "NL")
	err := s.CreateLocation(ctx, &trustack.Location{Name: "Berlin", Country: "US"})
	code(t, err, trustack.ECONFLICT)
	message(t, err, "Location Berlin already exists.")
	list, err := s.Locations(ctx)
	must(t, err)
	equal(t, list, []*trustack.Location{{Name: "Amsterdam", Country: "NL"}, {Name: "Berlin", Country: "DE"}, {Name: "Munich", Country: "DE"}})

	// A distance is kept with A < B whichever way it was given, and
	// setting it again replaces it.
	must(t, s.SetDistance(ctx, trustack.Distance{A: "Munich", B: "Berlin", KM: 600}))
	must(t, s.SetDistance(ctx, trustack.Distance{A: "Berlin", B: "Munich", KM: 585}))
	must(t, s.SetDistance(ctx, trustack.Distance{A: "Berlin", B: "Amsterdam", KM: 577}))
	err = s.SetDistance(ctx, trustack.Distance{A: "Berlin", B: "Paris", KM: 878})
	code(t, err, trustack.ENOTFOUND)
	message(t, err, "Location Paris could not be found.")
	code(t, s.SetDistance(ctx, trustack.Distance{A: "Berlin", B: "Berlin"}), trustack.EINVALID)
	dists, err := s.Distances(ctx)
	must(t, err)
	equal(t, dists, []trustack.Distance{{A: "Amsterdam", B: "Berlin", KM: 577}, {A: "Berlin", B: "Munich", KM: 585}})

	// A location stays while a physical domain is there.
	physicalDomain(t, s, "de-1", "Berlin")
	err = s.DeleteLocation(ctx, "Berlin")
	code(t, err, trustack.ECONFLICT)
	message(t, err, "Location Berlin still has 1 physical domain; delete or move it first.")
	code(t, s.DeleteLocation(ctx, "Paris"), trustack.ENOTFOUND)

	// Deleting a location takes its distances along.
	must(t, s.DeleteLocation(ctx, "Munich"))
	dists, err = s.Distances(ctx)
	must(t, err)
	equal(t, dists, []trustack.Distance{{A: "Amsterdam", B: "Berlin", KM: 577}})
	must(t, s.DeletePhysicalDomain(ctx, "de-1"))
	must(t, s.DeleteLocation(ctx, "Berlin"))
	code(t, s.DeleteLocation(ctx, "Berlin"), trustack.ENOTFOUND)
	dists, err = s.Distances(ctx)
	must(t, err)
	equal(t, len(dists), 0)
	list, err = s.Locations(ctx)
	must(t, err)
	equal(t, list, []*trustack.Location{{Name: "Amsterdam", Country: "NL"}})
}

func testPhysicalDomains(t *testing.T, s Store) {
	location(t, s, "Berlin", "DE")
	location(t, s, "Frankfurt", "DE")

	// References must exist, and a refused domain leaves nothing behind.
	err := s.CreatePhysicalDomain(ctx, &trustack.PhysicalDomain{Name: "de-1", Location: "Paris", Source: trustack.SourceLocal, CreatedAt: start})
	code(t, err, trustack.ENOTFOUND)
	message(t, err, "Location Paris could not be found.")
	err = s.CreatePhysicalDomain(ctx, &trustack.PhysicalDomain{Name: "de-1", Location: "Berlin", Source: trustack.SourceLocal,
		Collaborators: []trustack.Collaborator{{Domain: "de-9", Priority: 1}}, CreatedAt: start})
	code(t, err, trustack.ENOTFOUND)
	message(t, err, "Physical domain de-9 could not be found.")
	_, err = s.PhysicalDomain(ctx, "de-1")
	code(t, err, trustack.ENOTFOUND)
	message(t, err, "Physical domain de-1 could not be found.")

	de2 := &trustack.PhysicalDomain{Name: "de-2", Location: "Frankfurt", Capabilities: map[string]string{"gpu": "a100"}, DCoT: "gold",
		Source: trustack.SourceLocal, CreatedAt: start}
	de3 := &trustack.PhysicalDomain{Name: "de-3", Location: "Frankfurt", Source: trustack.SourceEmergency, CreatedAt: start.Add(time.Hour)}
	de1 := &trustack.PhysicalDomain{Name: "de-1", Location: "Berlin", Capabilities: map[string]string{"gpu": "none", "cpu": "epyc"}, DCoT: "gold",
		Source: trustack.SourceLocal, Collaborators: []trustack.Collaborator{{Domain: "de-3", Priority: 2}, {Domain: "de-2", Priority: 1}}, CreatedAt: start}
	for _, d := range []*trustack.PhysicalDomain{de2, de3, de1} {
		must(t, s.CreatePhysicalDomain(ctx, d))
	}
	err = s.CreatePhysicalDomain(ctx, &trustack.PhysicalDomain{Name: "de-2", Location: "Berlin", Source: trustack.SourceLocal, CreatedAt: start})
	code(t, err, trustack.ECONFLICT)
	message(t, err, "Physical domain de-2 already exists.")

	// Collaborators come back by priority.
	want := *de1
	want.Collaborators = []trustack.Collaborator{{Domain: "de-2", Priority: 1}, {Domain: "de-3", Priority: 2}}
	got, err := s.PhysicalDomain(ctx, "de-1")
	must(t, err)
	equal(t, got, &want)
	list, err := s.PhysicalDomains(ctx)
	must(t, err)
	equal(t, list, []*trustack.PhysicalDomain{&want, de2, de3})

	// An update rewrites the domain and its collaborators; among equal
	// priorities, collaborators come by name.
	updated, err := s.UpdatePhysicalDomain(ctx, "de-1", func(d *trustack.PhysicalDomain) error {
		d.Location, d.Capabilities["gpu"], d.DCoT = "Frankfurt", "h100", "silver"
		d.Collaborators = []trustack.Collaborator{{Domain: "de-3", Priority: 1}, {Domain: "de-2", Priority: 1}}
		return nil
	})
	must(t, err)
	want = trustack.PhysicalDomain{Name: "de-1", Location: "Frankfurt", Capabilities: map[string]string{"gpu": "h100", "cpu": "epyc"}, DCoT: "silver",
		Source: trustack.SourceLocal, Collaborators: []trustack.Collaborator{{Domain: "de-2", Priority: 1}, {Domain: "de-3", Priority: 1}}, CreatedAt: start}
	equal(t, updated, &want)
	got, err = s.PhysicalDomain(ctx, "de-1")
	must(t, err)
	equal(t, got, &want)

	// Updates that fail change nothing.
	for _, tc := range []struct {
		name string
		fn   func(d *trustack.PhysicalDomain) error
		code string
	}{
		{"unknown collaborator", func(d *trustack.PhysicalDomain) error {
			d.DCoT, d.Collaborators = "bronze", append(d.Collaborators, trustack.Collaborator{Domain: "de-9", Priority: 3})
			return nil
		}, trustack.ENOTFOUND},
		{"unknown location", func(d *trustack.PhysicalDomain) error { d.Location = "Paris"; return nil }, trustack.ENOTFOUND},
		{"renamed", func(d *trustack.PhysicalDomain) error { d.Name = "de-7"; return nil }, trustack.EINVALID},
		{"refused by fn", func(d *trustack.PhysicalDomain) error {
			d.Collaborators = nil
			return trustack.Errorf(trustack.EINVALID, "no")
		}, trustack.EINVALID},
	} {
		_, err := s.UpdatePhysicalDomain(ctx, "de-1", tc.fn)
		if trustack.ErrorCode(err) != tc.code {
			t.Errorf("update with %s: got %v, want code %s", tc.name, err, tc.code)
		}
		got, err := s.PhysicalDomain(ctx, "de-1")
		must(t, err)
		equal(t, got, &want)
	}
	_, err = s.UpdatePhysicalDomain(ctx, "de-9", func(*trustack.PhysicalDomain) error { return nil })
	code(t, err, trustack.ENOTFOUND)

	// A domain stays while it is another's collaborator.
	err = s.DeletePhysicalDomain(ctx, "de-2")
	code(t, err, trustack.ECONFLICT)
	message(t, err, "Physical domain de-2 is a collaborator of de-1; remove it there first.")
	code(t, s.DeletePhysicalDomain(ctx, "de-9"), trustack.ENOTFOUND)
	must(t, s.DeletePhysicalDomain(ctx, "de-1"))
	must(t, s.DeletePhysicalDomain(ctx, "de-2"))
	code(t, s.DeletePhysicalDomain(ctx, "de-2"), trustack.ENOTFOUND)
	list, err = s.PhysicalDomains(ctx)
	must(t, err)
	equal(t, list, []*trustack.PhysicalDomain{de3})
}

func testHostPropertiesAndDomain(t *testing.T, s Store) {
	location(t, s, "Berlin", "DE")
	physicalDomain(t, s, "de-1", "Berlin")
	physicalDomain(t, s, "de-2", "Berlin")
	a := host(t, s, "a", 8, 8192)
	b := host(t, s, "b", 8, 8192)

	// An update sets domain and properties, and moves the generation on,
	// whatever fn does to it or to the usage.
	updated, err := s.UpdateHost(ctx, a.ID, func(h *trustack.Host) error {
		h.Domain = "de-1"
		h.Properties = map[string]string{"rack": "r12", "nic": "100g"}
		h.Security = map[string]string{trustack.SecurityTrust: "gold", "tpm": "2.0"}
		h.Generation, h.UsedVCPUs = 0, 99
		return nil
	})
	must(t, err)
	if updated.Generation != a.Generation+1 || updated.UsedVCPUs != 0 {
		t.Errorf("after an update: generation %d, %d vCPUs used; want generation %d, 0 used", updated.Generation, updated.UsedVCPUs, a.Generation+1)
	}
	if updated.Domain != "de-1" || updated.Properties["rack"] != "r12" || updated.RCoT() != "gold" {
		t.Errorf("after an update: %+v", updated)
	}
	got, err := s.Host(ctx, a.ID)
	must(t, err)
	equal(t, got, updated)
	byName, err := s.HostByName(ctx, "a")
	must(t, err)
	equal(t, byName, updated)
	list, err := s.Hosts(ctx)
	must(t, err)
	equal(t, len(list), 2)
	equal(t, list[0], updated)

	// A domain that does not exist is refused, and changes nothing.
	_, err = s.UpdateHost(ctx, b.ID, func(h *trustack.Host) error { h.Domain = "de-9"; return nil })
	code(t, err, trustack.ENOTFOUND)
	message(t, err, "Physical domain de-9 could not be found.")
	got, err = s.Host(ctx, b.ID)
	must(t, err)
	equal(t, got, b)

	// A claim made on the host as it was before an update loses.
	must(t, s.CreateServers(ctx, []*trustack.Server{server("s1", "p", 1, 1)}, trustack.NewPorts{}, nil, nil))
	_, err = s.UpdateHost(ctx, b.ID, func(h *trustack.Host) error { h.Domain = "de-2"; return nil })
	must(t, err)
	_, err = s.Claim(ctx, trustack.Claim{ServerID: "s1", HostID: b.ID, VCPUs: 1, MemoryMB: 1, DiskGB: 1, ProjectID: "p"}, b.Generation, nil)
	code(t, err, trustack.ECONFLICT)

	// Registering again keeps what operators set.
	again, err := s.RegisterHost(ctx, &trustack.Host{ID: "other", Name: "a", AvailabilityZone: "nova", VCPUs: 16, MemoryMB: 8192, DiskGB: 100,
		CPUAllocationRatio: 1, RAMAllocationRatio: 1, DiskAllocationRatio: 1, Enabled: true, CreatedAt: start, UpdatedAt: start, LastSeen: start})
	must(t, err)
	equal(t, again.Domain, updated.Domain)
	equal(t, again.Properties, updated.Properties)
	equal(t, again.Security, updated.Security)

	// Updating a domain moves its member hosts on, and only them.
	beforeA, err := s.Host(ctx, a.ID)
	must(t, err)
	beforeB, err := s.Host(ctx, b.ID)
	must(t, err)
	_, err = s.UpdatePhysicalDomain(ctx, "de-1", func(d *trustack.PhysicalDomain) error { d.DCoT = "gold"; return nil })
	must(t, err)
	afterA, err := s.Host(ctx, a.ID)
	must(t, err)
	afterB, err := s.Host(ctx, b.ID)
	must(t, err)
	if afterA.Generation == beforeA.Generation || afterB.Generation != beforeB.Generation {
		t.Errorf("updating domain de-1: generation of member a %d → %d, of b (in de-2) %d → %d; want a's moved on, b's kept",
			beforeA.Generation, afterA.Generation, beforeB.Generation, afterB.Generation)
	}
	_, err = s.Claim(ctx, trustack.Claim{ServerID: "s1", HostID: a.ID, VCPUs: 1, MemoryMB: 1, DiskGB: 1, ProjectID: "p"}, beforeA.Generation, nil)
	code(t, err, trustack.ECONFLICT)

	// A domain stays while hosts are members.
	err = s.DeletePhysicalDomain(ctx, "de-1")
	code(t, err, trustack.ECONFLICT)
	message(t, err, "Physical domain de-1 still has 1 host; remove it first.")
	_, err = s.UpdateHost(ctx, a.ID, func(h *trustack.Host) error { h.Domain = ""; return nil })
	must(t, err)
	must(t, s.DeletePhysicalDomain(ctx, "de-1"))
}

func testServerRequirements(t *testing.T, s Store) {
	srv := server("s1", "p", 1, 512)
	srv.Requirements = trustack.Requirements{
		{Entry: "location", Kind: trustack.KindLocation, Value: "DE", Source: trustack.FromProject},
		{Entry: "isolation", Kind: trustack.KindIsolation, Value: "exclude:q", Source: trustack.FromHint},
	}
	srv.RCoT = "gold"
	must(t, s.CreateServers(ctx, []*trustack.Server{srv, server("s2", "p", 1, 512)}, trustack.NewPorts{}, nil, nil))
	got, err := s.Server(ctx, "s1")
	must(t, err)
	equal(t, got, srv)
	plain, err := s.Server(ctx, "s2")
	must(t, err)
	if len(plain.Requirements) != 0 || plain.RCoT != "" {
		t.Errorf("a server stated without requirements has %v and RCoT %q", plain.Requirements, plain.RCoT)
	}
	updated, err := s.UpdateServer(ctx, "s1", func(cur *trustack.Server) error {
		cur.Requirements = append(cur.Requirements, trustack.Requirement{Entry: "trust", Kind: trustack.KindTrust, Value: "silver", Source: trustack.FromFlavor})
		cur.RCoT = "silver"
		return nil
	})
	must(t, err)
	got, err = s.Server(ctx, "s1")
	must(t, err)
	equal(t, got, updated)
	equal(t, len(got.Requirements), 3)
	list, err := s.Servers(ctx, trustack.ServerFilter{IDs: []string{"s1"}})
	must(t, err)
	equal(t, list, []*trustack.Server{updated})
}

func testRequirementEntriesAndProjectRequirements(t *testing.T, s Store) {
	loc := &trustack.RequirementEntry{Name: "location", Kind: trustack.KindLocation, Description: "Where the host must be."}
	gpu := &trustack.RequirementEntry{Name: "gpu", Kind: trustack.KindCapability, Description: "The GPU the host must have."}
	must(t, s.CreateRequirementEntry(ctx, loc))
	must(t, s.CreateRequirementEntry(ctx, gpu))
	err := s.CreateRequirementEntry(ctx, &trustack.RequirementEntry{Name: "gpu", Kind: trustack.KindTrust})
	code(t, err, trustack.ECONFLICT)
	message(t, err, "Requirement entry gpu already exists.")
	entries, err := s.RequirementEntries(ctx)
	must(t, err)
	equal(t, entries, []*trustack.RequirementEntry{gpu, loc})

	set := func(r *trustack.ProjectRequirement) error {
		return s.UpdateProjectRequirement(ctx, r.ProjectID, r.Entry, func(*trustack.ProjectRequirement) (*trustack.ProjectRequirement, error) { return r, nil })
	}
	must(t, set(&trustack.ProjectRequirement{ProjectID: "p1", Entry: "location", Value: "DE", Locked: true, UpdatedAt: start}))
	must(t, set(&trustack.ProjectRequirement{ProjectID: "p1", Entry: "gpu", Value: "a100", UpdatedAt: start}))
	must(t, set(&trustack.ProjectRequirement{ProjectID: "p2", Entry: "location", Value: "NL", UpdatedAt: start}))
	err = set(&trustack.ProjectRequirement{ProjectID: "p1", Entry: "colour", Value: "blue", UpdatedAt: start})
	code(t, err, trustack.ENOTFOUND)
	message(t, err, "Requirement entry colour could not be found.")
	// The update sees what is stored, and an error from it changes nothing.
	refused := trustack.Errorf(trustack.EFORBIDDEN, "locked")
	err = s.UpdateProjectRequirement(ctx, "p1", "location", func(cur *trustack.ProjectRequirement) (*trustack.ProjectRequirement, error) {
		if cur == nil || cur.Value != "DE" || !cur.Locked || !cur.UpdatedAt.Equal(start) {
			t.Errorf("update of p1's location saw %+v, want DE, locked, at %v", cur, start)
		}
		return nil, refused
	})
	if err != refused {
		t.Errorf("update whose function failed: got %v, want its error", err)
	}
	// Setting it again replaces the project's value, lock and time.
	later := start.Add(time.Hour)
	must(t, set(&trustack.ProjectRequirement{ProjectID: "p1", Entry: "location", Value: "Berlin", UpdatedAt: later}))
	p1, err := s.ProjectRequirements(ctx, "p1")
	must(t, err)
	equal(t, p1, []*trustack.ProjectRequirement{
		{ProjectID: "p1", Entry: "gpu", Value: "a100", UpdatedAt: start},
		{ProjectID: "p1", Entry: "location", Value: "Berlin", UpdatedAt: later},
	})
	all, err := s.ProjectRequirements(ctx, "")
	must(t, err)
	equal(t, all, []*trustack.ProjectRequirement{p1[0], p1[1], {ProjectID: "p2", Entry: "location", Value: "NL", UpdatedAt: start}})
	none, err := s.ProjectRequirements(ctx, "p3")
	must(t, err)
	equal(t, len(none), 0)

	// An entry stays while projects state it.
	err = s.DeleteRequirementEntry(ctx, "location")
	code(t, err, trustack.ECONFLICT)
	message(t, err, "Requirement entry location is still stated by 2 projects; unset it there first.")
	unset := func(project, entry string) error {
		return s.UpdateProjectRequirement(ctx, project, entry, func(cur *trustack.ProjectRequirement) (*trustack.ProjectRequirement, error) {
			if cur == nil {
				return nil, trustack.Errorf(trustack.ENOTFOUND, "none")
			}
			return nil, nil
		})
	}
	must(t, unset("p1", "location"))
	code(t, unset("p1", "location"), trustack.ENOTFOUND)
	must(t, unset("p2", "location"))
	must(t, s.DeleteRequirementEntry(ctx, "location"))
	code(t, s.DeleteRequirementEntry(ctx, "location"), trustack.ENOTFOUND)
	entries, err = s.RequirementEntries(ctx)
	must(t, err)
	equal(t, entries, []*trustack.RequirementEntry{gpu})
}

func testTopology(t *testing.T, s Store) {
	empty, err := s.Topology(ctx)
	must(t, err)
	if len(empty.Locations)+len(empty.Domains)+len(empty.Distances) != 0 {
		t.Errorf("topology of an empty store: %+v", empty)
	}

	location(t, s, "Berlin", "DE")
	location(t, s, "Hamburg", "DE")
	location(t, s, "Amsterdam", "NL")
	must(t, s.SetDistance(ctx, trustack.Distance{A: "Berlin", B: "Amsterdam", KM: 577}))
	must(t, s.SetDistance(ctx, trustack.Distance{A: "Hamburg", B: "Berlin", KM: 255}))
	physicalDomain(t, s, "nl-1", "Amsterdam")
	physicalDomain(t, s, "de-2", "Hamburg")
	de1 := &trustack.PhysicalDomain{Name: "de-1", Location: "Berlin", Capabilities: map[string]string{"gpu": "a100"}, DCoT: "gold", Source: trustack.SourceLocal,
		Collaborators: []trustack.Collaborator{{Domain: "nl-1", Priority: 2}, {Domain: "de-2", Priority: 2}}, CreatedAt: start}
	must(t, s.CreatePhysicalDomain(ctx, de1))

	top, err := s.Topology(ctx)
	must(t, err)
	equal(t, top.Locations, map[string]trustack.Location{
		"Berlin": {Name: "Berlin", Country: "DE"}, "Hamburg": {Name: "Hamburg", Country: "DE"}, "Amsterdam": {Name: "Amsterdam", Country: "NL"},
	})
	equal(t, top.Distances, map[[2]string]int{{"Amsterdam", "Berlin"}: 577, {"Berlin", "Hamburg"}: 255})
	if km, ok := top.Distance("Berlin", "Amsterdam"); !ok || km != 577 {
		t.Errorf("distance Berlin-Amsterdam: %d, %v; want 577, true", km, ok)
	}
	if _, ok := top.Distance("Hamburg", "Amsterdam"); ok {
		t.Error("distance Hamburg-Amsterdam is known, but was never set")
	}
	equal(t, len(top.Domains), 3)
	want := *de1
	want.Collaborators = []trustack.Collaborator{{Domain: "de-2", Priority: 2}, {Domain: "nl-1", Priority: 2}} // by priority, then name
	equal(t, top.Domains["de-1"], &want)
	equal(t, top.Domains["nl-1"].Location, "Amsterdam")
}

// claimFor claims one vCPU of a host for a server of a project asking for
// the isolation iso ("shared", "exclusive", "exclude:..."), with the
// host's current generation.
func claimFor(t testing.TB, s Store, serverID, hostID, project, iso string) error {
	t.Helper()
	i, err := trustack.ParseIsolation(iso)
	must(t, err)
	h, err := s.Host(ctx, hostID)
	must(t, err)
	_, err = s.Claim(ctx, trustack.Claim{ServerID: serverID, HostID: hostID, VCPUs: 1, MemoryMB: 1, DiskGB: 1, ProjectID: project, Isolation: i}, h.Generation, nil)
	return err
}

func testIsolationInClaims(t *testing.T, s Store) {
	h := host(t, s, "h", 64, 1<<20)
	var list []*trustack.Server
	for _, id := range []string{"a1", "a2", "b1", "c1", "c2", "d1"} {
		list = append(list, server(id, id[:1], 1, 1))
	}
	for _, srv := range list {
		must(t, s.CreateServers(ctx, []*trustack.Server{srv}, trustack.NewPorts{}, nil, nil))
	}
	steps := []struct {
		server, project, isolation string
		admitted                   bool
	}{
		{"a1", "a", "exclude:d", true},
		{"d1", "d", "shared", false},    // a excludes d
		{"b1", "b", "exclude:a", false}, // b's own isolation counts too
		{"b1", "b", "shared", true},
		{"a2", "a", "exclusive", false}, // b is there
		{"a2", "a", "exclude:c", true},  // a project's servers may each exclude more
		{"c1", "c", "shared", false},    // a's second server excludes c
	}
	for _, st := range steps {
		err := claimFor(t, s, st.server, h.ID, st.project, st.isolation)
		if st.admitted && err != nil {
			t.Fatalf("claim for %s of project %s (%s): %v", st.server, st.project, st.isolation, err)
		}
		if !st.admitted && trustack.ErrorCode(err) != trustack.ECONFLICT {
			t.Fatalf("claim for %s of project %s (%s): got %v, want a conflict", st.server, st.project, st.isolation, err)
		}
	}

	claims, err := s.Claims(ctx, h.ID)
	must(t, err)
	equal(t, claims, []trustack.Claim{
		{ServerID: "a1", HostID: h.ID, VCPUs: 1, MemoryMB: 1, DiskGB: 1, ProjectID: "a", Isolation: trustack.Isolation{Exclude: []string{"d"}}},
		{ServerID: "a2", HostID: h.ID, VCPUs: 1, MemoryMB: 1, DiskGB: 1, ProjectID: "a", Isolation: trustack.Isolation{Exclude: []string{"c"}}},
		{ServerID: "b1", HostID: h.ID, VCPUs: 1, MemoryMB: 1, DiskGB: 1, ProjectID: "b"},
	})
	// The tenants sum the claims by project, each with the isolation of
	// all its servers together, on every read of the host.
	tenants := []trustack.Tenant{
		{ProjectID: "a", Isolation: trustack.Isolation{Exclude: []string{"c", "d"}}, Servers: 2},
		{ProjectID: "b", Servers: 1},
	}
	got, err := s.Host(ctx, h.ID)
	must(t, err)
	equal(t, got.Tenants, tenants)
	byName, err := s.HostByName(ctx, "h")
	must(t, err)
	equal(t, byName.Tenants, tenants)
	all, err := s.Hosts(ctx)
	must(t, err)
	equal(t, all[0].Tenants, tenants)

	// A release gives the host back to those the released server excluded.
	released, err := s.Release(ctx, "a2")
	must(t, err)
	equal(t, released.Tenants, []trustack.Tenant{{ProjectID: "a", Isolation: trustack.Isolation{Exclude: []string{"d"}}, Servers: 1}, {ProjectID: "b", Servers: 1}})
	must(t, claimFor(t, s, "c1", h.ID, "c", "shared"))

	// A project alone on a host may take it for itself, and then keeps
	// everyone else off.
	for _, id := range []string{"a1", "b1"} {
		_, err := s.Release(ctx, id)
		must(t, err)
	}
	must(t, claimFor(t, s, "c2", h.ID, "c", "exclusive"))
	code(t, claimFor(t, s, "d1", h.ID, "d", "shared"), trustack.ECONFLICT)
	got, err = s.Host(ctx, h.ID)
	must(t, err)
	equal(t, got.Tenants, []trustack.Tenant{{ProjectID: "c", Isolation: trustack.Isolation{Exclusive: true}, Servers: 2}})
	CheckHostUsage(t, s, h.ID)

	// The host a claim returns has the claim among its tenants.
	other := host(t, s, "other", 8, 8192)
	after, err := s.Claim(ctx, trustack.Claim{ServerID: "d1", HostID: other.ID, VCPUs: 1, MemoryMB: 1, DiskGB: 1, ProjectID: "d"}, other.Generation, nil)
	must(t, err)
	equal(t, after.Tenants, []trustack.Tenant{{ProjectID: "d", Servers: 1}})
}

// testIsolationUnderConcurrency races servers of an exclusive project and
// of another for one host with room for all: whoever comes first, the
// host must end up with one project's servers only.
func testIsolationUnderConcurrency(t *testing.T, s Store) {
	h := host(t, s, "h", 1024, 1<<20)
	const n = 50
	isolation := map[string]trustack.Isolation{"a": {Exclusive: true}, "b": {}}
	var list []*trustack.Server
	for i := range n {
		list = append(list, server(fmt.Sprintf("s%02d", i), []string{"a", "b"}[i%2], 1, 1))
	}
	for _, srv := range list {
		must(t, s.CreateServers(ctx, []*trustack.Server{srv}, trustack.NewPorts{}, nil, nil))
	}
	// More than enough: a claim loses a race only to one that won, and at
	// most n/2 win.
	const attempts = 100
	begin := make(chan struct{})
	var wg sync.WaitGroup
	for _, srv := range list {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-begin
			iso := isolation[srv.ProjectID]
			cur, err := s.Host(ctx, h.ID)
			for range attempts {
				if err != nil {
					t.Error(err)
					return
				}
				// No look at the tenants before claiming: the claim itself
				// must keep the isolation, whatever its caller saw.
				_, err = s.Claim(ctx, trustack.Claim{ServerID: srv.ID, HostID: h.ID, VCPUs: 1, MemoryMB: 1, DiskGB: 1,
					ProjectID: srv.ProjectID, Isolation: iso}, cur.Generation, nil)
				if err == nil {
					return
				}
				if trustack.ErrorCode(err) != trustack.ECONFLICT {
					t.Error(err)
					return
				}
				// A claim refused on a host that did not change was
				// refused for good; one that lost a race tries again.
				used := cur.Generation
				if cur, err = s.Host(ctx, h.ID); err == nil && cur.Generation == used {
					return
				}
			}
			t.Errorf("server %s of project %s lost %d claims in a row", srv.ID, srv.ProjectID, attempts)
		}()
	}
	close(begin)
	wg.Wait()

	claims, err := s.Claims(ctx, h.ID)
	must(t, err)
	projects := map[string]int{}
	for _, c := range claims {
		projects[c.ProjectID]++
	}
	if len(projects) != 1 {
		t.Fatalf("the host holds claims of projects %v; want one project's only, as a is exclusive", projects)
	}
	winner := claims[0].ProjectID
	if projects[winner] != n/2 {
		t.Errorf("%d of the %d servers of project %s placed; want all, as nothing excludes them", projects[winner], n/2, winner)
	}
	got, err := s.Host(ctx, h.ID)
	must(t, err)
	equal(t, got.Tenants, []trustack.Tenant{{ProjectID: winner, Isolation: isolation[winner], Servers: n / 2}})
	CheckHostUsage(t, s, h.ID)
}
