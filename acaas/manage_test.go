package acaas_test

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/acaas"
	"github.com/trustack/trustack/sqlstore"
)

var ctx = context.Background()

// counter is an Enforcer that counts the changes it is told of.
type counter struct{ n atomic.Int32 }

func (c *counter) RequirementsChanged() { c.n.Add(1) }

// fixture is a Service on a new SQLite store with three hosts, h1 to h3,
// and the default requirement entries.
type fixture struct {
	svc     *acaas.Service
	db      *sqlstore.DB
	changes *counter
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	db, err := sqlstore.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, name := range []string{"h1", "h2", "h3"} {
		if _, err := db.RegisterHost(ctx, &trustack.Host{ID: "id-" + name, Name: name, AvailabilityZone: "nova", HypervisorType: "fake",
			VCPUs: 4, MemoryMB: 4096, DiskGB: 100, CPUAllocationRatio: 1, RAMAllocationRatio: 1, DiskAllocationRatio: 1,
			Enabled: true, CreatedAt: now, UpdatedAt: now, LastSeen: now}); err != nil {
			t.Fatalf("register host %s: %v", name, err)
		}
	}
	f := &fixture{db: db, changes: &counter{}}
	f.svc = acaas.New(db, f.changes, acaas.Options{Now: func() time.Time { return now }})
	if err := f.svc.EnsureEntries(ctx, acaas.DefaultEntries); err != nil {
		t.Fatalf("ensure entries: %v", err)
	}
	return f
}

// must fails the test if err is not nil.
func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// code checks that err has the code want ("" for none) and, if want is
// an error, a message that contains each of words.
func code(t testing.TB, what string, err error, want string, words ...string) {
	t.Helper()
	if got := trustack.ErrorCode(err); got != want {
		t.Errorf("%s: got error %v (code %q), want code %q", what, err, got, want)
		return
	}
	for _, w := range words {
		if msg := trustack.ErrorMessage(err); !strings.Contains(msg, w) {
			t.Errorf("%s: got message %q, want it to mention %q", what, msg, w)
		}
	}
}

// changed checks that the enforcer was told of n changes since the last
// call.
func (f *fixture) changed(t testing.TB, what string, n int32) {
	t.Helper()
	if got := f.changes.n.Swap(0); got != n {
		t.Errorf("%s: the enforcer was told of %d changes, want %d", what, got, n)
	}
}

func (f *fixture) location(t testing.TB, name, country string) {
	t.Helper()
	_, err := f.svc.CreateLocation(ctx, name, country)
	must(t, err)
}

func (f *fixture) domain(t testing.TB, d trustack.PhysicalDomain) {
	t.Helper()
	_, err := f.svc.CreateDomain(ctx, &d)
	must(t, err)
}

func TestLocations(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name, country string
		want          string
	}{
		{"fra1", "de", ""},
		{"ber1", "DE", ""},
		{"emea-west", "EU", ""},
		{"fra1", "DE", trustack.ECONFLICT},
		{"", "DE", trustack.EINVALID},
		{"a/b", "DE", trustack.EINVALID},
		{"a:b", "DE", trustack.EINVALID},
		{" lead", "DE", trustack.EINVALID},
		{"x", "D", trustack.EINVALID},
		{"x", "ABCDEFGHI", trustack.EINVALID},
		{"x", "D3", trustack.EINVALID},
		{"x", "", trustack.EINVALID},
	} {
		_, err := f.svc.CreateLocation(ctx, tc.name, tc.country)
		code(t, fmt.Sprintf("CreateLocation(%q, %q)", tc.name, tc.country), err, tc.want)
	}
	f.changed(t, "three locations created", 3)
	list, err := f.svc.Locations(ctx)
	must(t, err)
	var got []string
	for _, l := range list {
		got = append(got, l.Name+"/"+l.Country)
	}
	if want := []string{"ber1/DE", "emea-west/EU", "fra1/DE"}; !slices.Equal(got, want) {
		t.Errorf("Locations: got %v, want %v (countries in upper case)", got, want)
	}

	for _, tc := range []struct {
		a, b string
		km   int
		want string
	}{
		{"fra1", "ber1", 420, ""},
		{"ber1", "fra1", 430, ""}, // replaces, in either order
		{"fra1", "emea-west", 0, ""},
		{"fra1", "fra1", 1, trustack.EINVALID},
		{"fra1", "ber1", -1, trustack.EINVALID},
		{"fra1", "nowhere", 10, trustack.ENOTFOUND},
		{"nowhere", "fra1", 10, trustack.ENOTFOUND},
	} {
		_, err := f.svc.SetDistance(ctx, tc.a, tc.b, tc.km)
		code(t, fmt.Sprintf("SetDistance(%s, %s, %d)", tc.a, tc.b, tc.km), err, tc.want)
	}
	f.changed(t, "three distances set", 3)
	dists, err := f.svc.Distances(ctx)
	must(t, err)
	want := []trustack.Distance{{A: "ber1", B: "fra1", KM: 430}, {A: "emea-west", B: "fra1", KM: 0}}
	if !slices.Equal(dists, want) {
		t.Errorf("Distances: got %v, want %v", dists, want)
	}

	f.domain(t, trustack.PhysicalDomain{Name: "d1", Location: "fra1"})
	f.changed(t, "domain created", 1)
	code(t, "DeleteLocation of a location with a domain", f.svc.DeleteLocation(ctx, "fra1"), trustack.ECONFLICT, "d1")
	code(t, "DeleteLocation of an unknown location", f.svc.DeleteLocation(ctx, "nowhere"), trustack.ENOTFOUND, "nowhere")
	code(t, "DeleteLocation", f.svc.DeleteLocation(ctx, "ber1"), "")
	f.changed(t, "location deleted", 1)
	dists, err = f.svc.Distances(ctx)
	must(t, err)
	if len(dists) != 1 {
		t.Errorf("Distances after deleting ber1: got %v, want only emea-west-fra1", dists)
	}
}

func TestDomains(t *testing.T) {
	f := newFixture(t)
	f.location(t, "fra1", "DE")
	f.location(t, "ams1", "NL")
	f.changed(t, "two locations created", 2)
	gpu := map[string]string{"gpu": "a100"}
	for _, tc := range []struct {
		d    trustack.PhysicalDomain
		want string
		says string
	}{
		{trustack.PhysicalDomain{Name: "d1", Location: "fra1", Capabilities: gpu, DCoT: "gold"}, "", ""},
		{trustack.PhysicalDomain{Name: "d2", Location: "ams1", Capabilities: gpu, DCoT: "gold"}, "", ""},
		{trustack.PhysicalDomain{Name: "d3", Location: "ams1", Source: trustack.SourceEmergency}, "", ""},
		{trustack.PhysicalDomain{Name: "d4", Location: "ams1", Capabilities: gpu, DCoT: "gold", Collaborators: []trustack.Collaborator{{Domain: "d1", Priority: 1}}}, "", ""},
		{trustack.PhysicalDomain{Name: "d1", Location: "fra1"}, trustack.ECONFLICT, "d1"},
		{trustack.PhysicalDomain{Name: "", Location: "fra1"}, trustack.EINVALID, "name"},
		{trustack.PhysicalDomain{Name: "x/y", Location: "fra1"}, trustack.EINVALID, "'/'"},
		{trustack.PhysicalDomain{Name: "x", Location: "nowhere"}, trustack.EINVALID, "nowhere"},
		{trustack.PhysicalDomain{Name: "x"}, trustack.EINVALID, "location"},
		{trustack.PhysicalDomain{Name: "x", Location: "fra1", Source: "remote"}, trustack.EINVALID, "remote"},
		{trustack.PhysicalDomain{Name: "x", Location: "fra1", Capabilities: map[string]string{"": "v"}}, trustack.EINVALID, "empty"},
		{trustack.PhysicalDomain{Name: "x", Location: "fra1", Collaborators: []trustack.Collaborator{{Domain: "d1"}}}, trustack.EINVALID, "capabilities"},
		{trustack.PhysicalDomain{Name: "x", Location: "fra1", Collaborators: []trustack.Collaborator{{Domain: "nope"}}}, trustack.EINVALID, "nope"},
	} {
		_, err := f.svc.CreateDomain(ctx, &tc.d)
		code(t, fmt.Sprintf("CreateDomain(%+v)", tc.d), err, tc.want, tc.says)
	}
	f.changed(t, "four domains created", 4)

	d, err := f.svc.Domain(ctx, "d3")
	must(t, err)
	if d.Source != trustack.SourceEmergency || d.Location != "ams1" || d.Hosts == nil || len(d.Hosts) != 0 {
		t.Errorf("Domain(d3): got %+v, want an emergency domain at ams1 with no hosts", d)
	}
	d, err = f.svc.Domain(ctx, "d2")
	must(t, err)
	if d.Source != trustack.SourceLocal || !maps.Equal(d.Capabilities, gpu) || d.DCoT != "gold" || !d.CreatedAt.Equal(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Errorf("Domain(d2): got %+v, want a local domain with gpu=a100, DCoT gold, created now", d)
	}
	_, err = f.svc.Domain(ctx, "nope")
	code(t, "Domain(nope)", err, trustack.ENOTFOUND, "nope")

	// Hosts: a host is in one domain at most; adding it elsewhere moves it.
	_, err = f.svc.AddHost(ctx, "d1", "h1")
	must(t, err)
	_, err = f.svc.AddHost(ctx, "d1", "h2")
	must(t, err)
	_, err = f.svc.AddHost(ctx, "d2", "h2")
	must(t, err)
	f.changed(t, "three hosts added", 3)
	hosts := func(name string) []string {
		t.Helper()
		d, err := f.svc.Domain(ctx, name)
		must(t, err)
		return d.Hosts
	}
	if got := hosts("d1"); !slices.Equal(got, []string{"h1"}) {
		t.Errorf("hosts of d1 after h2 moved to d2: got %v, want [h1]", got)
	}
	if got := hosts("d2"); !slices.Equal(got, []string{"h2"}) {
		t.Errorf("hosts of d2: got %v, want [h2]", got)
	}
	_, err = f.svc.AddHost(ctx, "nope", "h3")
	code(t, "AddHost to an unknown domain", err, trustack.ENOTFOUND, "nope")
	_, err = f.svc.AddHost(ctx, "d1", "h9")
	code(t, "AddHost of an unknown host", err, trustack.ENOTFOUND, "h9")
	code(t, "RemoveHost of a host in another domain", f.svc.RemoveHost(ctx, "d1", "h2"), trustack.ENOTFOUND, "h2", "d1")
	code(t, "RemoveHost of a host in no domain", f.svc.RemoveHost(ctx, "d1", "h3"), trustack.ENOTFOUND, "h3")
	code(t, "RemoveHost of an unknown host", f.svc.RemoveHost(ctx, "d1", "h9"), trustack.ENOTFOUND, "h9")
	code(t, "DeleteDomain with hosts", f.svc.DeleteDomain(ctx, "d2"), trustack.ECONFLICT, "h2")
	f.changed(t, "refused changes", 0)
	must(t, f.svc.RemoveHost(ctx, "d2", "h2"))
	f.changed(t, "host removed", 1)
	if h, err := f.db.HostByName(ctx, "h2"); err != nil || h.Domain != "" {
		t.Errorf("h2 after RemoveHost: got domain %q (%v), want none", h.Domain, err)
	}

	// Changing a domain.
	loc := "ams1"
	v, err := f.svc.SetDomain(ctx, "d1", acaas.DomainChanges{Location: &loc})
	must(t, err)
	if v.Location != "ams1" || !slices.Equal(v.Hosts, []string{"h1"}) || v.DCoT != "gold" {
		t.Errorf("SetDomain(d1, location ams1): got %+v, want d1 at ams1, with h1, DCoT unchanged", v)
	}
	bad := "nowhere"
	_, err = f.svc.SetDomain(ctx, "d1", acaas.DomainChanges{Location: &bad})
	code(t, "SetDomain to an unknown location", err, trustack.EINVALID, "nowhere")
	_, err = f.svc.SetDomain(ctx, "nope", acaas.DomainChanges{Location: &loc})
	code(t, "SetDomain of an unknown domain", err, trustack.ENOTFOUND, "nope")
	_, err = f.svc.SetDomain(ctx, "d3", acaas.DomainChanges{Capabilities: map[string]string{"": "x"}})
	code(t, "SetDomain with an empty capability key", err, trustack.EINVALID)
	// d4 has d1 as a collaborator: d1 may not become unlike d4.
	silver := "silver"
	_, err = f.svc.SetDomain(ctx, "d1", acaas.DomainChanges{DCoT: &silver})
	code(t, "SetDomain of a collaborator's DCoT", err, trustack.ECONFLICT, "d4")
	_, err = f.svc.SetDomain(ctx, "d4", acaas.DomainChanges{Capabilities: map[string]string{"gpu": "h100"}})
	code(t, "SetDomain of the capabilities of a domain with a collaborator", err, trustack.ECONFLICT, "d1")
	f.changed(t, "one domain moved", 1)
	v, err = f.svc.SetDomain(ctx, "d3", acaas.DomainChanges{Capabilities: map[string]string{"ssd": "yes"}, DCoT: &silver})
	must(t, err)
	if !maps.Equal(v.Capabilities, map[string]string{"ssd": "yes"}) || v.DCoT != "silver" || v.Location != "ams1" {
		t.Errorf("SetDomain(d3, capabilities, DCoT): got %+v", v)
	}
	f.changed(t, "one domain changed", 1)

	list, err := f.svc.Domains(ctx)
	must(t, err)
	var names []string
	for _, d := range list {
		names = append(names, d.Name)
	}
	if want := []string{"d1", "d2", "d3", "d4"}; !slices.Equal(names, want) {
		t.Errorf("Domains: got %v, want %v", names, want)
	}

	must(t, f.svc.RemoveHost(ctx, "d1", "h1"))
	code(t, "DeleteDomain of a collaborator", f.svc.DeleteDomain(ctx, "d1"), trustack.ECONFLICT, "d4")
	code(t, "DeleteDomain of an unknown domain", f.svc.DeleteDomain(ctx, "nope"), trustack.ENOTFOUND)
	must(t, f.svc.DeleteDomain(ctx, "d3"))
	f.changed(t, "host removed, domain deleted", 2)
}

func TestCollaborators(t *testing.T) {
	f := newFixture(t)
	f.location(t, "fra1", "DE")
	f.changed(t, "location created", 1)
	gpu := map[string]string{"gpu": "a100"}
	f.domain(t, trustack.PhysicalDomain{Name: "d1", Location: "fra1", Capabilities: gpu, DCoT: "gold"})
	f.domain(t, trustack.PhysicalDomain{Name: "d2", Location: "fra1", Capabilities: gpu, DCoT: "gold"})
	f.domain(t, trustack.PhysicalDomain{Name: "d3", Location: "fra1", Capabilities: gpu, DCoT: "gold"})
	f.domain(t, trustack.PhysicalDomain{Name: "plain", Location: "fra1", DCoT: "gold"})
	f.domain(t, trustack.PhysicalDomain{Name: "tin", Location: "fra1", Capabilities: gpu, DCoT: "tin"})
	f.changed(t, "domains created", 5)
	for _, tc := range []struct {
		domain, backup string
		priority       int
		want           string
		says           []string
	}{
		{"d1", "d2", 5, "", nil},
		{"d1", "d3", 1, "", nil},
		{"d1", "d2", 0, "", nil}, // a new priority
		{"d1", "d1", 1, trustack.EINVALID, []string{"own"}},
		{"d1", "plain", 1, trustack.EINVALID, []string{"capabilities", "gpu=a100", "none"}},
		{"d1", "tin", 1, trustack.EINVALID, []string{"DCoT", "tin", "gold"}},
		{"d1", "nope", 1, trustack.ENOTFOUND, []string{"nope"}},
		{"nope", "d1", 1, trustack.ENOTFOUND, []string{"nope"}},
		{"d1", "d3", -1, trustack.EINVALID, []string{"priority"}},
	} {
		_, err := f.svc.AddCollaborator(ctx, tc.domain, tc.backup, tc.priority)
		code(t, fmt.Sprintf("AddCollaborator(%s, %s, %d)", tc.domain, tc.backup, tc.priority), err, tc.want, tc.says...)
	}
	f.changed(t, "three collaborators set", 3)
	d, err := f.svc.Domain(ctx, "d1")
	must(t, err)
	if want := []trustack.Collaborator{{Domain: "d2", Priority: 0}, {Domain: "d3", Priority: 1}}; !slices.Equal(d.Collaborators, want) {
		t.Errorf("collaborators of d1: got %v, want %v, by priority", d.Collaborators, want)
	}
	_, err = f.svc.RemoveCollaborator(ctx, "d1", "plain")
	code(t, "RemoveCollaborator of a domain that is none", err, trustack.ENOTFOUND, "plain")
	_, err = f.svc.RemoveCollaborator(ctx, "nope", "d2")
	code(t, "RemoveCollaborator of an unknown domain", err, trustack.ENOTFOUND, "nope")
	v, err := f.svc.RemoveCollaborator(ctx, "d1", "d2")
	must(t, err)
	if want := []trustack.Collaborator{{Domain: "d3", Priority: 1}}; !slices.Equal(v.Collaborators, want) {
		t.Errorf("collaborators of d1 after removing d2: got %v, want %v", v.Collaborators, want)
	}
	f.changed(t, "collaborator removed", 1)
}

// TestDomainChainOfTrustHeld checks when a domain's DCoT holds (every
// member host proved it) and when its CDCoT holds (the DCoT holds in the
// domain and in each collaborator), as the verifier sets hosts' chains
// of trust.
func TestDomainChainOfTrustHeld(t *testing.T) {
	f := newFixture(t)
	f.location(t, "fra1", "DE")
	f.domain(t, trustack.PhysicalDomain{Name: "d1", Location: "fra1", DCoT: "gold"})
	f.domain(t, trustack.PhysicalDomain{Name: "d2", Location: "fra1", DCoT: "gold"})
	f.domain(t, trustack.PhysicalDomain{Name: "none", Location: "fra1"})
	for _, m := range [][2]string{{"d1", "h1"}, {"d1", "h2"}, {"d2", "h3"}} {
		_, err := f.svc.AddHost(ctx, m[0], m[1])
		must(t, err)
	}
	_, err := f.svc.AddCollaborator(ctx, "d1", "d2", 1)
	must(t, err)
	// trust sets the hosts' chains of trust as the verifier does: the
	// security property trust, "" for none.
	trust := func(rcot map[string]string) {
		t.Helper()
		for host, v := range rcot {
			if v == "" {
				_, err := f.svc.RemoveHostProperties(ctx, host, []string{trustack.SecurityTrust}, true)
				must(t, err)
				continue
			}
			_, err := f.svc.AddHostProperties(ctx, host, map[string]string{trustack.SecurityTrust: v}, true)
			must(t, err)
		}
	}
	type held struct {
		holding     int
		dcot, cdcot bool
	}
	check := func(what string, want map[string]held) {
		t.Helper()
		list, err := f.svc.Domains(ctx)
		must(t, err)
		for _, d := range list {
			got := held{d.Holding, d.DCoTHeld, d.CDCoTHeld}
			if got != want[d.Name] {
				t.Errorf("%s: Domains: %s: got %+v, want %+v", what, d.Name, got, want[d.Name])
			}
			one, err := f.svc.Domain(ctx, d.Name)
			must(t, err)
			if got := (held{one.Holding, one.DCoTHeld, one.CDCoTHeld}); got != want[d.Name] {
				t.Errorf("%s: Domain(%s): got %+v, want %+v", what, d.Name, got, want[d.Name])
			}
		}
	}

	check("no host attested", map[string]held{"d1": {0, false, false}, "d2": {0, false, false}, "none": {0, false, false}})
	trust(map[string]string{"h1": "gold", "h2": "silver", "h3": "gold"})
	check("h2 proved another chain", map[string]held{"d1": {1, false, false}, "d2": {1, true, true}, "none": {0, false, false}})
	trust(map[string]string{"h2": "gold"})
	check("every host proved gold", map[string]held{"d1": {2, true, true}, "d2": {1, true, true}, "none": {0, false, false}})
	trust(map[string]string{"h3": ""})
	check("the collaborator's host lost its chain", map[string]held{"d1": {2, true, false}, "d2": {0, false, false}, "none": {0, false, false}})
	must(t, f.svc.RemoveHost(ctx, "d2", "h3"))
	check("the collaborator has no hosts", map[string]held{"d1": {2, true, false}, "d2": {0, false, false}, "none": {0, false, false}})

	// The views the changes answer with say it too.
	v, err := f.svc.RemoveCollaborator(ctx, "d1", "d2")
	must(t, err)
	if got, want := (held{v.Holding, v.DCoTHeld, v.CDCoTHeld}), (held{2, true, true}); got != want {
		t.Errorf("RemoveCollaborator(d1, d2): got %+v, want %+v: with no collaborator, the CDCoT is the DCoT", got, want)
	}
}

func TestHostProperties(t *testing.T) {
	f := newFixture(t)
	_, err := f.svc.AddHostProperties(ctx, "h1", map[string]string{"rack": "r1", "ssd": "yes"}, false)
	must(t, err)
	_, err = f.svc.AddHostProperties(ctx, "h1", map[string]string{"rack": "r2"}, false)
	must(t, err)
	_, err = f.svc.AddHostProperties(ctx, "h1", map[string]string{"trust": "gold"}, true)
	must(t, err)
	f.changed(t, "properties added", 3)
	props, sec, err := f.svc.HostProperties(ctx, "h1")
	must(t, err)
	if want := map[string]string{"rack": "r2", "ssd": "yes"}; !maps.Equal(props, want) {
		t.Errorf("properties of h1: got %v, want %v (merged)", props, want)
	}
	if want := map[string]string{"trust": "gold"}; !maps.Equal(sec, want) {
		t.Errorf("security properties of h1: got %v, want %v", sec, want)
	}
	if h, _ := f.db.HostByName(ctx, "h1"); h.RCoT() != "gold" {
		t.Errorf("RCoT of h1: got %q, want gold", h.RCoT())
	}
	props, sec, err = f.svc.HostProperties(ctx, "h2")
	must(t, err)
	if props == nil || sec == nil || len(props)+len(sec) != 0 {
		t.Errorf("properties of h2: got %v and %v, want two empty maps", props, sec)
	}

	for _, tc := range []struct {
		what     string
		host     string
		props    map[string]string
		security bool
		want     string
	}{
		{"an unknown host", "h9", map[string]string{"a": "b"}, false, trustack.ENOTFOUND},
		{"no properties", "h1", nil, false, trustack.EINVALID},
		{"an empty key", "h1", map[string]string{"": "b"}, true, trustack.EINVALID},
	} {
		_, err := f.svc.AddHostProperties(ctx, tc.host, tc.props, tc.security)
		code(t, "AddHostProperties of "+tc.what, err, tc.want)
	}
	for _, tc := range []struct {
		what     string
		host     string
		keys     []string
		security bool
		want     string
	}{
		{"an unknown host", "h9", []string{"rack"}, false, trustack.ENOTFOUND},
		{"no keys", "h1", nil, false, trustack.EINVALID},
		{"a missing key, with one that is there", "h1", []string{"rack", "nope"}, false, trustack.ENOTFOUND},
		{"a key of the other kind", "h1", []string{"trust"}, false, trustack.ENOTFOUND},
	} {
		_, err := f.svc.RemoveHostProperties(ctx, tc.host, tc.keys, tc.security)
		code(t, "RemoveHostProperties of "+tc.what, err, tc.want)
	}
	f.changed(t, "refused changes", 0)
	_, err = f.svc.RemoveHostProperties(ctx, "h1", []string{"rack"}, false)
	must(t, err)
	_, err = f.svc.RemoveHostProperties(ctx, "h1", []string{"trust"}, true)
	must(t, err)
	f.changed(t, "properties removed", 2)
	props, sec, err = f.svc.HostProperties(ctx, "h1")
	must(t, err)
	if !maps.Equal(props, map[string]string{"ssd": "yes"}) || len(sec) != 0 {
		t.Errorf("properties of h1 after removal: got %v and %v, want ssd=yes and none", props, sec)
	}
}

// TestTrustNotByHandWhileHostsAttest checks that, with hosts attesting,
// an operator can set and remove a host's properties but not its trust,
// which the verifier keeps.
func TestTrustNotByHandWhileHostsAttest(t *testing.T) {
	f := newFixture(t)
	attested := acaas.New(f.db, f.changes, acaas.Options{Attested: true})
	_, err := attested.AddHostProperties(ctx, "h1", map[string]string{"rack": "r1", "tpm": "2.0"}, true)
	must(t, err)
	_, err = attested.AddHostProperties(ctx, "h1", map[string]string{"rack": "r2", trustack.SecurityTrust: "gold"}, true)
	code(t, "setting trust", err, trustack.EINVALID, "attestation", "domain")
	_, err = attested.RemoveHostProperties(ctx, "h1", []string{"tpm", trustack.SecurityTrust}, true)
	code(t, "removing trust", err, trustack.EINVALID, "attestation")
	_, err = attested.AddHostProperties(ctx, "h1", map[string]string{trustack.SecurityTrust: "gold"}, false)
	must(t, err) // an infrastructure property of that name is the operator's
	f.changed(t, "properties set, trust refused", 2)
	props, sec, err := f.svc.HostProperties(ctx, "h1")
	must(t, err)
	if !maps.Equal(sec, map[string]string{"rack": "r1", "tpm": "2.0"}) || !maps.Equal(props, map[string]string{trustack.SecurityTrust: "gold"}) {
		t.Errorf("properties of h1: got %v and security %v, want trust=gold and security rack=r1, tpm=2.0", props, sec)
	}
}

func TestEntries(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name, kind string
		want       string
	}{
		{"gpu", trustack.KindCapability, ""},
		{"rack.row-2_a", trustack.KindCapability, ""},
		{"near", trustack.KindDistance, ""},
		{"gpu", trustack.KindCapability, trustack.ECONFLICT},
		{"location", trustack.KindLocation, trustack.ECONFLICT},
		{"GPU", trustack.KindCapability, trustack.EINVALID},
		{"", trustack.KindCapability, trustack.EINVALID},
		{"trust:gpu", trustack.KindCapability, trustack.EINVALID},
		{"with space", trustack.KindCapability, trustack.EINVALID},
		{"x", "colour", trustack.EINVALID},
		{"group", trustack.KindCapability, trustack.EINVALID},
		{"same_host", trustack.KindCapability, trustack.EINVALID},
		{"different_host", trustack.KindCapability, trustack.EINVALID},
		{"availability_zone", trustack.KindLocation, trustack.EINVALID},
		{"query", trustack.KindCapability, trustack.EINVALID},
		{"target_cell", trustack.KindCapability, trustack.EINVALID},
		{"build_near_host_ip", trustack.KindCapability, trustack.EINVALID},
		{"cidr", trustack.KindCapability, trustack.EINVALID},
		{"level", trustack.KindTrust, trustack.EINVALID},
	} {
		_, err := f.svc.CreateEntry(ctx, tc.name, tc.kind, "d")
		code(t, fmt.Sprintf("CreateEntry(%q, %q)", tc.name, tc.kind), err, tc.want)
	}
	f.changed(t, "entries created", 3)
	list, err := f.svc.Entries(ctx)
	must(t, err)
	var names []string
	for _, e := range list {
		names = append(names, e.Name)
	}
	if want := []string{"federation", "gpu", "isolation", "location", "max_distance", "near", "rack.row-2_a", "trust"}; !slices.Equal(names, want) {
		t.Errorf("Entries: got %v, want %v", names, want)
	}

	_, err = f.svc.SetRequirement(ctx, acaas.Caller{ProjectID: "p1"}, "", "gpu", "a100", acaas.Create)
	must(t, err)
	code(t, "DeleteEntry of an entry a project states", f.svc.DeleteEntry(ctx, "gpu"), trustack.ECONFLICT, "p1")
	code(t, "DeleteEntry of an unknown entry", f.svc.DeleteEntry(ctx, "nope"), trustack.ENOTFOUND)
	must(t, f.svc.DeleteEntry(ctx, "near"))
	f.changed(t, "requirement set and entry deleted", 2)
}

func TestRequirements(t *testing.T) {
	f := newFixture(t)
	member := acaas.Caller{ProjectID: "p1"}
	other := acaas.Caller{ProjectID: "p2"}
	admin := acaas.Caller{ProjectID: "admin", Admin: true}
	for _, tc := range []struct {
		what    string
		c       acaas.Caller
		project string
		entry   string
		value   string
		mode    acaas.SetMode
		want    string
		says    string
	}{
		{"a member creates on its project", member, "", "location", "DE", acaas.Create, "", ""},
		{"a member creates again", member, "p1", "location", "FR", acaas.Create, trustack.ECONFLICT, "change"},
		{"a member changes", member, "p1", "location", "FR", acaas.Change, "", ""},
		{"a member changes what is not there", member, "p1", "trust", "gold", acaas.Change, trustack.ENOTFOUND, "trust"},
		{"a member sets", member, "p1", "trust", "gold", acaas.Set, "", ""},
		{"a member acts on another project", member, "p2", "location", "DE", acaas.Set, trustack.EFORBIDDEN, "p2"},
		{"an unknown entry", member, "", "colour", "red", acaas.Create, trustack.EINVALID, "location"},
		{"a bad distance", member, "", "max_distance", "fra1", acaas.Create, trustack.EINVALID, "KM"},
		{"a bad federation", member, "", "federation", "maybe", acaas.Create, trustack.EINVALID, "allowed"},
		{"an empty location", member, "", "location", " ", acaas.Create, trustack.EINVALID, ""},
		{"an isolation excluding itself", member, "", "isolation", "exclude:p3,p1", acaas.Create, trustack.EINVALID, "itself"},
		{"an isolation excluding others", member, "", "isolation", "exclude:p3,p4", acaas.Create, "", ""},
		{"an operator on another project", admin, "p2", "location", "NL", acaas.Create, "", ""},
		{"an operator on no project", acaas.Caller{Admin: true}, "", "location", "NL", acaas.Create, trustack.EINVALID, "project"},
		{"a member changes an operator's", other, "", "location", "DE", acaas.Change, trustack.EFORBIDDEN, "Requirement location of project p2 was set by an operator; only an operator can change it."},
		{"a member sets over an operator's", other, "", "location", "DE", acaas.Set, trustack.EFORBIDDEN, "operator"},
		{"an operator changes its own", admin, "p2", "location", "DE", acaas.Change, "", ""},
	} {
		_, err := f.svc.SetRequirement(ctx, tc.c, tc.project, tc.entry, tc.value, tc.mode)
		code(t, tc.what, err, tc.want, tc.says)
	}
	f.changed(t, "six requirements set", 6)

	list, err := f.svc.Requirements(ctx, member, "")
	must(t, err)
	var got []string
	for _, r := range list {
		got = append(got, fmt.Sprintf("%s=%s locked=%t", r.Entry, r.Value, r.Locked))
	}
	if want := []string{"isolation=exclude:p3,p4 locked=false", "location=FR locked=false", "trust=gold locked=false"}; !slices.Equal(got, want) {
		t.Errorf("Requirements(p1): got %v, want %v", got, want)
	}
	list, err = f.svc.Requirements(ctx, admin, "p2")
	must(t, err)
	if len(list) != 1 || list[0].Value != "DE" || !list[0].Locked || list[0].ProjectID != "p2" {
		t.Errorf("Requirements(p2) as an operator: got %+v, want location=DE, locked", list)
	}
	_, err = f.svc.Requirements(ctx, member, "p2")
	code(t, "Requirements of another project", err, trustack.EFORBIDDEN)

	// The stored requirements are what servers are placed under.
	all, err := f.svc.Stored(ctx)
	stored := all["p2"]
	must(t, err)
	if want := (trustack.Requirements{{Entry: "location", Kind: trustack.KindLocation, Value: "DE", Source: trustack.FromProject}}); !slices.Equal(stored, want) {
		t.Errorf("Stored(p2): got %v, want %v", stored, want)
	}

	code(t, "a member unsets an operator's", f.svc.UnsetRequirement(ctx, other, "", "location"), trustack.EFORBIDDEN, "operator")
	code(t, "a member unsets another project's", f.svc.UnsetRequirement(ctx, member, "p2", "location"), trustack.EFORBIDDEN)
	code(t, "a member unsets what is not there", f.svc.UnsetRequirement(ctx, member, "", "federation"), trustack.ENOTFOUND, "federation")
	f.changed(t, "refused changes", 0)
	must(t, f.svc.UnsetRequirement(ctx, member, "", "trust"))
	must(t, f.svc.UnsetRequirement(ctx, admin, "p2", "location"))
	f.changed(t, "requirements unset", 2)
	if list, err := f.svc.Requirements(ctx, other, ""); err != nil || len(list) != 0 {
		t.Errorf("Requirements(p2) after unset: got %v, %v, want none", list, err)
	}
}

// TestOperatorsLockHoldsUnderConcurrentChanges races members changing a
// requirement with the operator locking it: once the operator's value is
// stored, no member's change lands, so it is what remains.
func TestOperatorsLockHoldsUnderConcurrentChanges(t *testing.T) {
	f := newFixture(t)
	member, operator := acaas.Caller{ProjectID: "p"}, acaas.Caller{ProjectID: "admin", Admin: true}
	if _, err := f.svc.SetRequirement(ctx, member, "p", "location", "FR", acaas.Set); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i == 10 {
				if _, err := f.svc.SetRequirement(ctx, operator, "p", "location", "DE", acaas.Set); err != nil {
					t.Errorf("operator: %v", err)
				}
				return
			}
			_, err := f.svc.SetRequirement(ctx, member, "p", "location", fmt.Sprintf("NL%d", i), acaas.Change)
			if err != nil && trustack.ErrorCode(err) != trustack.EFORBIDDEN {
				t.Errorf("member: %v, want success or EFORBIDDEN", err)
			}
		}()
	}
	wg.Wait()
	list, err := f.svc.Requirements(ctx, member, "p")
	must(t, err)
	if len(list) != 1 || list[0].Value != "DE" || !list[0].Locked {
		t.Errorf("requirements after the race: %+v, want location=DE, locked", list)
	}
}
