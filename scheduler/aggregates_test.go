package scheduler_test

import (
	"slices"
	"testing"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/scheduler"
)

// aggregate makes an aggregate of hosts with metadata.
func (f *fixture) aggregate(t testing.TB, name string, meta map[string]string, hosts ...string) {
	t.Helper()
	a := &trustack.Aggregate{UUID: "uuid-" + name, Name: name, Metadata: meta, CreatedAt: epoch}
	if err := f.db.CreateAggregate(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.UpdateAggregate(ctx, a.ID, func(a *trustack.Aggregate) error { a.Hosts = hosts; return nil }); err != nil {
		t.Fatal(err)
	}
}

// withSpecs returns a new server of project p whose flavor has the extra
// specs.
func (f *fixture) withSpecs(t testing.TB, project string, specs map[string]string) *trustack.Server {
	t.Helper()
	srv := f.server(t, 1, 512, 1, "")
	srv.ProjectID, srv.Flavor.ExtraSpecs = project, specs
	return srv
}

// TestAggregateExtraSpecsPlaceOnlyOnTheAggregatesHosts checks Nova's
// AggregateInstanceExtraSpecsFilter under every driver: a flavor's
// aggregate_instance_extra_specs:KEY=VALUE places servers only on hosts
// of an aggregate whose metadata has KEY with VALUE (among values listed
// with commas), and a server no host fits is refused saying which spec
// no aggregate matched.
func TestAggregateExtraSpecsPlaceOnlyOnTheAggregatesHosts(t *testing.T) {
	for _, driver := range []string{"acaas", "filter", "simple", "chance"} {
		t.Run(driver, func(t *testing.T) {
			f := newFixture(t)
			for _, name := range []string{"a", "b", "c", "d", "e", "f"} {
				f.host(t, name, 64, 65536, 1000)
			}
			f.aggregate(t, "fast", map[string]string{"ssd": "true", "gen": "4, 5"}, "b", "e")
			f.aggregate(t, "slow", map[string]string{"ssd": "false", "gen": "5"}, "a", "c")
			s := f.scheduler(t, scheduler.Options{Driver: driver})
			fast := map[string]string{"aggregate_instance_extra_specs:ssd": "true", "aggregate_instance_extra_specs:gen": "5", "hw:cpu_policy": "shared"}
			landed := map[string]int{}
			for range 40 {
				landed[place(t, s, scheduler.Request{Server: f.withSpecs(t, "p", fast)})]++
			}
			if landed["b"] == 0 || landed["e"] == 0 || landed["b"]+landed["e"] != 40 {
				t.Errorf("servers asking for ssd=true and gen=5 landed on %v, want on b and e only", landed)
			}

			_, err := s.Place(ctx, scheduler.Request{Server: f.withSpecs(t, "p", map[string]string{"aggregate_instance_extra_specs:ssd": "maybe"})})
			want := "No valid host was found. Of 6 hosts: 6 in no aggregate whose metadata has ssd=maybe, as the flavor's extra spec aggregate_instance_extra_specs:ssd=maybe asks."
			if trustack.ErrorCode(err) != trustack.EOVERQUOTA || trustack.ErrorMessage(err) != want {
				t.Errorf("a server no aggregate fits: got %v, want %q", err, want)
			}
		})
	}
}

// TestAggregateMultiTenancyIsolation checks Nova's filter of that name:
// the hosts of an aggregate with filter_tenant_id keys take servers of
// the projects they name only, other hosts anyone's.
func TestAggregateMultiTenancyIsolation(t *testing.T) {
	f := newFixture(t)
	for _, name := range []string{"a", "b", "c"} {
		f.host(t, name, 64, 65536, 1000)
	}
	f.aggregate(t, "reserved", map[string]string{"filter_tenant_id": "p1", "filter_tenant_id2": "p2, p3"}, "a", "b")
	s := f.scheduler(t, scheduler.Options{Driver: "acaas"})
	for _, tc := range []struct {
		project string
		want    []string
	}{
		{"p1", []string{"a", "b", "c"}},
		{"p3", []string{"a", "b", "c"}},
		{"p4", []string{"c"}},
	} {
		landed := map[string]bool{}
		for range 30 {
			landed[place(t, s, scheduler.Request{Server: f.withSpecs(t, tc.project, nil)})] = true
		}
		for _, h := range []string{"a", "b", "c"} {
			if want := slices.Contains(tc.want, h); landed[h] != want {
				t.Errorf("project %s on host %s: %v, want %v", tc.project, h, landed[h], want)
			}
		}
	}
	srv := f.withSpecs(t, "p4", nil)
	_, err := s.Place(ctx, scheduler.Request{Server: srv, Only: "id-a"})
	want := "No valid host was found. Of 3 hosts: 1 reserved for other projects by filter_tenant_id (aggregate reserved), 2 not the host asked for."
	if trustack.ErrorMessage(err) != want {
		t.Errorf("project p4 on host a: got %v, want %q", err, want)
	}
}

// TestAggregateSpecsMatchPhysicalDomains checks that the aggregate filter
// reads a physical domain's aggregate as any other: its capabilities and
// its acaas: keys.
func TestAggregateSpecsMatchPhysicalDomains(t *testing.T) {
	w := newWorld(t,
		trustack.PhysicalDomain{Name: "de-berlin", Location: "Berlin", Capabilities: map[string]string{"gpu": "a100"}},
		trustack.PhysicalDomain{Name: "fr-paris", Location: "Paris"})
	w.add(t, "de-berlin", 3, "")
	w.add(t, "fr-paris", 3, "")
	s := w.scheduler(t, scheduler.Options{})
	for _, specs := range []map[string]string{
		{"aggregate_instance_extra_specs:gpu": "a100"},
		{"aggregate_instance_extra_specs:acaas:country": "DE"},
	} {
		for range 10 {
			if got := place(t, s, scheduler.Request{Server: w.withSpecs(t, "p", specs)}); domainOf(got) != "de-berlin" {
				t.Errorf("a server asking for %v landed on %s, want a host of de-berlin", specs, got)
			}
		}
	}
}
