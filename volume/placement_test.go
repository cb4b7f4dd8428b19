package volume_test

import (
	"context"
	"strings"
	"testing"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/acaas"
	"github.com/trustack/trustack/volume"
)

// Topology lets the service see the hosts' physical domains, as the
// compute store does.
func (h *hosts) Topology(ctx context.Context) (*trustack.Topology, error) { return h.db.Topology(ctx) }

// requirementsOf is the requirements service, made once the store is.
type requirementsOf struct{ svc *acaas.Service }

func (r *requirementsOf) Effective(ctx context.Context, projectID string, f *trustack.Flavor, hints map[string][]string) (trustack.Requirements, error) {
	return r.svc.Effective(ctx, projectID, f, hints)
}

// TestVolumesFollowTheirProjectsRequirements places volumes as ACaaS
// places servers: a project required to stay in DE gets its volumes on
// the storage host in a German domain, though another has more room; a
// project that requires a host of its own gets none where others keep
// volumes, and a volume no host may take is in error saying which
// requirement no host with room met.
func TestVolumesFollowTheirProjectsRequirements(t *testing.T) {
	reqs := &requirementsOf{}
	s, h := newServiceWith(t, map[string]int{"storage-1": 80, "storage-2": 50}, volume.Options{Requirements: reqs})
	reqs.svc = acaas.New(h.db, nil, acaas.Options{})
	operator := acaas.Caller{Admin: true}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(reqs.svc.EnsureEntries(ctx, acaas.DefaultEntries))
	_, err := reqs.svc.CreateLocation(ctx, "frankfurt", "DE")
	must(err)
	_, err = reqs.svc.CreateDomain(ctx, &trustack.PhysicalDomain{Name: "de-1", Location: "frankfurt"})
	must(err)
	_, err = reqs.svc.AddHost(ctx, "de-1", "storage-2")
	must(err)
	for project, req := range map[string][2]string{"p1": {"location", "DE"}, "p3": {"isolation", "exclusive"}, "p4": {"location", "FR"}} {
		_, err := reqs.svc.SetRequirement(ctx, operator, project, req[0], req[1], acaas.Set)
		must(err)
	}

	create := func(project string) *trustack.Volume {
		t.Helper()
		v, err := s.Create(ctx, volume.Caller{UserID: "u", ProjectID: project}, volume.CreateRequest{Size: 1})
		must(err)
		s.Wait()
		v, err = s.Get(ctx, volume.Caller{Admin: true}, v.ID)
		must(err)
		return v
	}
	if v := create("p1"); v.Status != trustack.VolumeAvailable || !strings.HasPrefix(v.Host, "storage-2@") {
		t.Errorf("a volume of the project required in DE: %s on %q, want available on storage-2, in DE", v.Status, v.Host)
	}
	if v := create("p2"); v.Status != trustack.VolumeAvailable || !strings.HasPrefix(v.Host, "storage-1@") {
		t.Errorf("a volume of a project with no requirements: %s on %q, want available on storage-1, with the most room", v.Status, v.Host)
	}
	for project, want := range map[string]string{"p3": "isolation=exclusive", "p4": "location=FR (project)"} {
		v := create(project)
		if v.Status != trustack.VolumeError || v.Host != "" || !strings.Contains(v.Reason, want) {
			t.Errorf("a volume of project %s that no host may keep: %s on %q (%s), want error naming %s", project, v.Status, v.Host, v.Reason, want)
		}
	}
}
