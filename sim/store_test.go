package sim_test

import (
	"path/filepath"
	"testing"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/scheduler"
	"github.com/trustack/trustack/sim"
	"github.com/trustack/trustack/sqlstore"
)

// TestStoreClaims holds the in-memory store to the database's claim
// semantics, which the scheduler's guarantees rest on: the same cases run
// against both, so that they cannot drift apart.
func TestStoreClaims(t *testing.T) {
	hosts := func() []*trustack.Host {
		var hosts []*trustack.Host
		for _, id := range []string{"a", "b"} {
			hosts = append(hosts, &trustack.Host{ID: id, Name: id, VCPUs: 4, MemoryMB: 4096, DiskGB: 40,
				CPUAllocationRatio: 1, RAMAllocationRatio: 1, DiskAllocationRatio: 1, Enabled: true,
				Properties: map[string]string{"ssd": "yes"}})
		}
		return hosts
	}
	t.Run("memory", func(t *testing.T) {
		testStoreClaims(t, func() scheduler.Hosts { return sim.NewStore(hosts(), nil) })
	})
	t.Run("sqlite", func(t *testing.T) {
		testStoreClaims(t, func() scheduler.Hosts {
			db, err := sqlstore.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "t.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			for _, h := range hosts() {
				if _, err := db.RegisterHost(ctx, h); err != nil {
					t.Fatal(err)
				}
			}
			// The database knows groups' members from their servers.
			for _, g := range []string{"g", "h"} {
				if err := db.CreateServerGroup(ctx, &trustack.ServerGroup{ID: g, Name: g, ProjectID: "p", Policy: "affinity"}, -1); err != nil {
					t.Fatal(err)
				}
			}
			for id, group := range map[string]string{"s1": "g", "s2": "g", "s3": "h", "s4": "h", "nobody": ""} {
				if err := db.CreateServers(ctx, []*trustack.Server{{ID: id, ProjectID: "p", GroupID: group}}, trustack.NewPorts{}, nil, nil); err != nil {
					t.Fatal(err)
				}
			}
			return db
		})
	})
}

func testStoreClaims(t *testing.T, newStore func() scheduler.Hosts) {
	claim := func(server, host, project, iso string, vcpus int) trustack.Claim {
		i, err := trustack.ParseIsolation(iso)
		if err != nil {
			t.Fatal(err)
		}
		return trustack.Claim{ServerID: server, HostID: host, VCPUs: vcpus, MemoryMB: 512, DiskGB: 1, ProjectID: project, Isolation: i}
	}
	gen := func(s scheduler.Hosts, id string) int64 {
		h, err := s.Host(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return h.Generation
	}
	wantCode := func(t *testing.T, err error, code string) {
		t.Helper()
		if got := trustack.ErrorCode(err); got != code {
			t.Fatalf("error %v, code %q; want %q", err, got, code)
		}
	}

	t.Run("compare-and-swap on the generation", func(t *testing.T) {
		s := newStore()
		h, err := s.Claim(ctx, claim("s1", "a", "p", "shared", 1), 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		if h.Generation != 1 || h.UsedVCPUs != 1 || h.RunningVMs != 1 || len(h.Tenants) != 1 || h.Tenants[0].ProjectID != "p" {
			t.Fatalf("host after claim: generation %d, %d vCPUs, %d VMs, tenants %v; want 1, 1, 1, [p]", h.Generation, h.UsedVCPUs, h.RunningVMs, h.Tenants)
		}
		_, err = s.Claim(ctx, claim("s2", "a", "p", "shared", 1), 0, nil)
		wantCode(t, err, trustack.ECONFLICT)
		_, err = s.Claim(ctx, claim("s1", "b", "p", "shared", 1), 0, nil)
		wantCode(t, err, trustack.ECONFLICT) // s1 holds a claim already
		_, err = s.Claim(ctx, claim("s3", "nowhere", "p", "shared", 1), 0, nil)
		wantCode(t, err, trustack.ECONFLICT)
	})
	t.Run("room", func(t *testing.T) {
		s := newStore()
		if _, err := s.Claim(ctx, claim("s1", "a", "p", "shared", 3), 0, nil); err != nil {
			t.Fatal(err)
		}
		_, err := s.Claim(ctx, claim("s2", "a", "p", "shared", 2), 1, nil)
		wantCode(t, err, trustack.ECONFLICT)
		if gen(s, "a") != 1 {
			t.Errorf("a refused claim moved the generation on")
		}
	})
	t.Run("isolation both ways", func(t *testing.T) {
		for _, tc := range []struct{ first, second string }{
			{"exclusive", "shared"}, {"shared", "exclusive"}, {"exclude:q", "shared"}, {"shared", "exclude:p"},
		} {
			s := newStore()
			if _, err := s.Claim(ctx, claim("s1", "a", "p", tc.first, 1), 0, nil); err != nil {
				t.Fatal(err)
			}
			_, err := s.Claim(ctx, claim("s2", "a", "q", tc.second, 1), 1, nil)
			wantCode(t, err, trustack.ECONFLICT)
			// The same project may share with itself.
			if _, err := s.Claim(ctx, claim("s3", "a", "p", tc.first, 1), 1, nil); err != nil {
				t.Errorf("p (%s) beside itself: %v", tc.first, err)
			}
		}
	})
	t.Run("move", func(t *testing.T) {
		s := newStore()
		if _, err := s.Claim(ctx, claim("s1", "a", "p", "exclusive", 2), 0, nil); err != nil {
			t.Fatal(err)
		}
		from, to, err := s.MoveClaim(ctx, claim("s1", "b", "p", "exclusive", 3), 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		if from.UsedVCPUs != 0 || from.RunningVMs != 0 || len(from.Tenants) != 0 || from.Generation != 2 {
			t.Errorf("host left: %d vCPUs, %d VMs, tenants %v, generation %d; want 0, 0, none, 2", from.UsedVCPUs, from.RunningVMs, from.Tenants, from.Generation)
		}
		if to.UsedVCPUs != 3 || to.RunningVMs != 1 || len(to.Tenants) != 1 || to.Generation != 1 {
			t.Errorf("host moved to: %d vCPUs, %d VMs, tenants %v, generation %d; want 3, 1, [p], 1", to.UsedVCPUs, to.RunningVMs, to.Tenants, to.Generation)
		}
		// To the host the claim is on: no move.
		_, _, err = s.MoveClaim(ctx, claim("s1", "b", "p", "shared", 4), 1, nil)
		wantCode(t, err, trustack.EINVALID)
		_, _, err = s.MoveClaim(ctx, claim("nobody", "a", "p", "shared", 1), 2, nil)
		wantCode(t, err, trustack.ENOTFOUND)
	})
	t.Run("groups", func(t *testing.T) {
		s := newStore()
		anti := &trustack.ServerGroup{ID: "g", Policy: trustack.PolicyAntiAffinity}
		if _, err := s.Claim(ctx, claim("s1", "a", "p", "shared", 1), 0, anti); err != nil {
			t.Fatal(err)
		}
		_, err := s.Claim(ctx, claim("s2", "a", "p", "shared", 1), 1, anti)
		wantCode(t, err, trustack.ECONFLICT)
		if _, err := s.Claim(ctx, claim("s2", "b", "p", "shared", 1), 0, anti); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.GroupHosts(ctx, "g", "s2"); len(got) != 1 || got[0] != "a" {
			t.Errorf("group hosts but s2's: %v, want [a]", got)
		}
		aff := &trustack.ServerGroup{ID: "h", Policy: trustack.PolicyAffinity}
		if _, err := s.Claim(ctx, claim("s3", "a", "p", "shared", 1), 1, aff); err != nil {
			t.Fatal(err)
		}
		_, err = s.Claim(ctx, claim("s4", "b", "p", "shared", 1), 1, aff)
		wantCode(t, err, trustack.ECONFLICT)
	})
	t.Run("copies", func(t *testing.T) {
		s := newStore()
		h, err := s.Claim(ctx, claim("s1", "a", "p", "exclude:q", 1), 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		h.Properties["ssd"] = "no"
		h.Tenants[0].Isolation.Exclude[0] = "z"
		h.UsedVCPUs = 0
		again, _ := s.Host(ctx, "a")
		if again.Properties["ssd"] != "yes" || again.Tenants[0].Isolation.Exclude[0] != "q" || again.UsedVCPUs != 1 {
			t.Errorf("changing a returned host changed the store's: %+v", again)
		}
	})
}
