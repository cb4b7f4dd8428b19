package scheduler_test

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/scheduler"
)

// world is a fixture with locations Berlin and Munich (DE) and Paris (FR),
// and domains in them, each with its hosts named after it: "de-berlin-1".
type world struct {
	*fixture
	hosts map[string][]*trustack.Host // by domain
}

func newWorld(t testing.TB, domains ...trustack.PhysicalDomain) *world {
	t.Helper()
	w := &world{fixture: newFixture(t), hosts: map[string][]*trustack.Host{}}
	for _, l := range []trustack.Location{{Name: "Berlin", Country: "DE"}, {Name: "Munich", Country: "DE"}, {Name: "Paris", Country: "FR"}} {
		if err := w.db.CreateLocation(ctx, &l); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []trustack.Distance{{A: "Berlin", B: "Munich", KM: 504}, {A: "Berlin", B: "Paris", KM: 878}, {A: "Munich", B: "Paris", KM: 685}} {
		if err := w.db.SetDistance(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range domains {
		if d.Source == "" {
			d.Source = trustack.SourceLocal
		}
		if err := w.db.CreatePhysicalDomain(ctx, &d); err != nil {
			t.Fatalf("create domain %s: %v", d.Name, err)
		}
	}
	return w
}

// add registers n hosts of 8 vCPUs, 16 GiB and 100 GB in a domain, proving
// the trust level given ("" for none).
func (w *world) add(t testing.TB, domain string, n int, trust string) {
	t.Helper()
	for i := range n {
		name := domain + "-" + string(rune('1'+i))
		h := w.host(t, name, 8, 16384, 100)
		h, err := w.db.UpdateHost(ctx, h.ID, func(h *trustack.Host) error {
			h.Domain = domain
			if trust != "" {
				h.Security = map[string]string{trustack.SecurityTrust: trust}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		w.hosts[domain] = append(w.hosts[domain], h)
	}
}

// requiring returns a new server of project p requiring reqs.
func (w *world) requiring(t testing.TB, project string, reqs ...trustack.Requirement) *trustack.Server {
	t.Helper()
	srv := w.server(t, 1, 1024, 10, "")
	srv.ProjectID, srv.Requirements = project, reqs
	return srv
}

func hint(kind, entry, value string) trustack.Requirement {
	return trustack.Requirement{Entry: entry, Kind: kind, Value: value, Source: trustack.FromHint}
}

func domainOf(name string) string { return name[:strings.LastIndexByte(name, '-')] }

func TestACaaSPlacesOnlyWhereRequirementsHold(t *testing.T) {
	w := newWorld(t,
		trustack.PhysicalDomain{Name: "de-berlin", Location: "Berlin", DCoT: "baseline", Capabilities: map[string]string{"gpu": "yes"}},
		trustack.PhysicalDomain{Name: "de-munich", Location: "Munich"},
		trustack.PhysicalDomain{Name: "fr-paris", Location: "Paris", Capabilities: map[string]string{"gpu": "yes"}},
	)
	w.add(t, "de-berlin", 3, "baseline")
	w.add(t, "de-munich", 3, "")
	w.add(t, "fr-paris", 3, "baseline")
	s := w.scheduler(t, scheduler.Options{})
	for _, tc := range []struct {
		name string
		reqs []trustack.Requirement
		want []string // acceptable domains
	}{
		{"country", []trustack.Requirement{hint(trustack.KindLocation, "location", "DE")}, []string{"de-berlin", "de-munich"}},
		{"location by name", []trustack.Requirement{hint(trustack.KindLocation, "location", "Paris")}, []string{"fr-paris"}},
		{"distance", []trustack.Requirement{hint(trustack.KindDistance, "max_distance", "Paris:700")}, []string{"fr-paris", "de-munich"}},
		{"trust", []trustack.Requirement{hint(trustack.KindTrust, "trust", "baseline"), hint(trustack.KindLocation, "location", "DE")}, []string{"de-berlin"}},
		{"capability", []trustack.Requirement{hint(trustack.KindCapability, "gpu", "yes")}, []string{"de-berlin", "fr-paris"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for range 10 {
				got := domainOf(w.placeAndRelease(t, s, w.requiring(t, "p", tc.reqs...)))
				if !slices.Contains(tc.want, got) {
					t.Fatalf("placed in %s, want one of %v", got, tc.want)
				}
			}
		})
	}
}

func TestACaaSPrefersTheDomainThatFitsBest(t *testing.T) {
	// Both are in Germany; only de-berlin's DCoT is the trust level
	// asked for, though hosts of both prove it.
	w := newWorld(t,
		trustack.PhysicalDomain{Name: "de-berlin", Location: "Berlin", DCoT: "baseline"},
		trustack.PhysicalDomain{Name: "de-munich", Location: "Munich"},
	)
	w.add(t, "de-berlin", 2, "baseline")
	w.add(t, "de-munich", 2, "baseline")
	s := w.scheduler(t, scheduler.Options{})
	for range 20 {
		srv := w.requiring(t, "p", hint(trustack.KindTrust, "trust", "baseline"))
		if got := domainOf(w.placeAndRelease(t, s, srv)); got != "de-berlin" {
			t.Fatalf("placed in %s, want de-berlin, whose DCoT is the trust level asked for", got)
		}
	}
}

func TestACaaSGoesToCollaboratorsByPriority(t *testing.T) {
	w := newWorld(t,
		trustack.PhysicalDomain{Name: "em-second", Location: "Paris", Source: trustack.SourceEmergency},
		trustack.PhysicalDomain{Name: "em-first", Location: "Munich", Source: trustack.SourceEmergency},
	)
	if err := w.db.CreatePhysicalDomain(ctx, &trustack.PhysicalDomain{Name: "home", Location: "Berlin", Source: trustack.SourceLocal,
		Collaborators: []trustack.Collaborator{{Domain: "em-second", Priority: 2}, {Domain: "em-first", Priority: 1}}}); err != nil {
		t.Fatal(err)
	}
	w.add(t, "home", 1, "")
	w.add(t, "em-first", 2, "")
	w.add(t, "em-second", 2, "")
	s := w.scheduler(t, scheduler.Options{})
	federated := hint(trustack.KindFederation, "federation", "allowed")

	// While home has room, servers go there even when federation is
	// allowed.
	if got := domainOf(place(t, s, scheduler.Request{Server: w.requiring(t, "p", federated)})); got != "home" {
		t.Fatalf("first server in %s, want home", got)
	}
	w.load(t, w.hosts["home"][0], 7, 15360, 90) // home is full now

	// Without federation allowed, emergency domains are out of bounds.
	_, err := s.Place(ctx, scheduler.Request{Server: w.requiring(t, "p")})
	wantCode(t, err, trustack.EOVERQUOTA)
	if msg := trustack.ErrorMessage(err); !strings.Contains(msg, "4 not meeting the requirement federation=denied (default)") {
		t.Errorf("message %q, want it to say 4 hosts are in domains federation would need", msg)
	}
	// With it, the collaborator of lower priority first, then the other.
	for i := range 5 {
		if got := domainOf(place(t, s, scheduler.Request{Server: w.requiring(t, "p", federated)})); got != "em-first" {
			t.Fatalf("server %d after home filled up in %s, want em-first, the collaborator of priority 1", i, got)
		}
	}
	for _, h := range w.hosts["em-first"] {
		cur, err := w.db.Host(ctx, h.ID)
		if err != nil {
			t.Fatal(err)
		}
		w.load(t, h, cur.VCPUs-cur.UsedVCPUs, 0, 0)
	}
	if got := domainOf(place(t, s, scheduler.Request{Server: w.requiring(t, "p", federated)})); got != "em-second" {
		t.Errorf("server after em-first filled up in %s, want em-second", got)
	}
}

func TestACaaSSaysWhichRequirementNoHostMet(t *testing.T) {
	w := newWorld(t, trustack.PhysicalDomain{Name: "fr-paris", Location: "Paris"})
	w.add(t, "fr-paris", 3, "")
	w.host(t, "loose", 8, 16384, 100) // in no domain, so at no location
	s := w.scheduler(t, scheduler.Options{})
	_, err := s.Place(ctx, scheduler.Request{Server: w.requiring(t, "p", hint(trustack.KindLocation, "location", "DE"))})
	wantCode(t, err, trustack.EOVERQUOTA)
	want := "No valid host was found. Of 4 hosts: 4 not meeting the requirement location=DE (hint)."
	if got := trustack.ErrorMessage(err); got != want {
		t.Errorf("message %q, want %q", got, want)
	}
}

// TestACaaSSaysNoDomainChainsTheTrustAsked checks that a refusal for a
// trust level no domain's chain of trust is says so (an attested host's
// trust being its domain's), and one for a level a domain has does not.
func TestACaaSSaysNoDomainChainsTheTrustAsked(t *testing.T) {
	w := newWorld(t, trustack.PhysicalDomain{Name: "de", Location: "Berlin", DCoT: "baseline"})
	w.add(t, "de", 2, "")
	s := w.scheduler(t, scheduler.Options{})
	for _, tc := range []struct {
		level string
		hint  bool
	}{{"gold", true}, {"baseline", false}} {
		_, err := s.Place(ctx, scheduler.Request{Server: w.requiring(t, "p", hint(trustack.KindTrust, "trust", tc.level))})
		wantCode(t, err, trustack.EOVERQUOTA)
		msg := trustack.ErrorMessage(err)
		said := strings.Contains(msg, "No physical domain's chain of trust is "+tc.level+", so no attested host proves it") && strings.Contains(msg, "--dcot "+tc.level)
		if !strings.HasPrefix(msg, "No valid host was found. Of 2 hosts: 2 not meeting the requirement trust="+tc.level) || said != tc.hint {
			t.Errorf("trust=%s refused with %q: want the hosts not meeting it, and the domains' chains of trust named: %v", tc.level, msg, tc.hint)
		}
	}
}

func TestACaaSKeepsExclusiveProjectsAlone(t *testing.T) {
	w := newWorld(t, trustack.PhysicalDomain{Name: "dc", Location: "Berlin"})
	w.add(t, "dc", 3, "")
	s := w.scheduler(t, scheduler.Options{})
	exclusive := hint(trustack.KindIsolation, "isolation", "exclusive")
	victim := place(t, s, scheduler.Request{Server: w.requiring(t, "victim", exclusive)})
	// The victim's further servers join its first: an exclusive project
	// takes no more hosts than it needs.
	for range 5 {
		if got := place(t, s, scheduler.Request{Server: w.requiring(t, "victim", exclusive)}); got != victim {
			t.Fatalf("the victim's next server went to %s, want %s, where its first runs", got, victim)
		}
	}
	for i := range 12 {
		got := place(t, s, scheduler.Request{Server: w.requiring(t, "attacker")})
		if got == victim {
			t.Fatalf("attacker server %d landed on %s, the exclusive victim's host", i, got)
		}
	}
	// A project excluding the attacker avoids its hosts, wherever they are.
	shy := hint(trustack.KindIsolation, "isolation", "exclude:attacker")
	_, err := s.Place(ctx, scheduler.Request{Server: w.requiring(t, "shy", shy)})
	wantCode(t, err, trustack.EOVERQUOTA)
	if msg := trustack.ErrorMessage(err); !strings.Contains(msg, "running servers of a project the isolation requirements exclude") {
		t.Errorf("message %q, want it to name isolation", msg)
	}
}

func TestACaaSChoosesAtRandomAmongEqualHosts(t *testing.T) {
	w := newWorld(t, trustack.PhysicalDomain{Name: "dc", Location: "Berlin"})
	w.add(t, "dc", 6, "")
	srv := w.requiring(t, "p")
	run := func(seed uint64) []string {
		s := w.scheduler(t, scheduler.Options{Rand: rand.New(rand.NewPCG(seed, seed))})
		var got []string
		for range 60 {
			got = append(got, w.placeAndRelease(t, s, srv))
		}
		return got
	}
	first := run(11)
	count := map[string]int{}
	for _, h := range first {
		count[h]++
	}
	for _, h := range w.hosts["dc"] {
		if count[h.Name] < 3 {
			t.Errorf("60 placements on 6 equal hosts: %s got %d, want each about 10 (all: %v)", h.Name, count[h.Name], count)
		}
	}
	if again := run(11); !slices.Equal(again, first) {
		t.Errorf("the same seed chose differently:\n got %v\nwant %v", again, first)
	}
	if other := run(12); slices.Equal(other, first) {
		t.Errorf("another seed chose the same 60 hosts")
	}
}
