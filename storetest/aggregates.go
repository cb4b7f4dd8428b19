package storetest

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trustack/trustack"
)

// aggregates counts the aggregates made, for their UUIDs.
var aggregates atomic.Int64

func aggregate(t testing.TB, s Store, name, zone string) *trustack.Aggregate {
	t.Helper()
	a := &trustack.Aggregate{UUID: fmt.Sprint("uuid-", aggregates.Add(1)), Name: name, Metadata: map[string]string{}, CreatedAt: start}
	if zone != "" {
		a.Metadata[trustack.AggregateZoneKey] = zone
	}
	must(t, s.CreateAggregate(ctx, a))
	return a
}

// setHosts sets an aggregate's hosts.
func setHosts(s Store, id int, hosts ...string) error {
	_, err := s.UpdateAggregate(ctx, id, func(a *trustack.Aggregate) error {
		a.Hosts = hosts
		return nil
	})
	return err
}

// zoneOf returns a host's availability zone as the store has it now.
func zoneOf(t testing.TB, s Store, name string) string {
	t.Helper()
	h, err := s.HostByName(ctx, name)
	must(t, err)
	return h.AvailabilityZone
}

func testAggregates(t *testing.T, s Store) {
	host(t, s, "h1", 4, 8192)
	host(t, s, "h2", 4, 8192)
	a := aggregate(t, s, "agg1", "")
	b := aggregate(t, s, "agg2", "z1")
	if a.ID < 1 || b.ID <= a.ID {
		t.Fatalf("aggregate IDs %d and %d, want increasing from 1", a.ID, b.ID)
	}
	code(t, s.CreateAggregate(ctx, &trustack.Aggregate{UUID: "other", Name: "agg1", CreatedAt: start}), trustack.ECONFLICT)

	got, err := s.Aggregate(ctx, b.ID)
	must(t, err)
	equal(t, got, &trustack.Aggregate{ID: b.ID, UUID: b.UUID, Name: "agg2", Metadata: map[string]string{"availability_zone": "z1"}, CreatedAt: start})

	// A host is in an aggregate once, however often it is added; an
	// unknown host is not found.
	must(t, setHosts(s, a.ID, "h2", "h1", "h1"))
	got, err = s.Aggregate(ctx, a.ID)
	must(t, err)
	equal(t, got.Hosts, []string{"h1", "h2"})
	code(t, setHosts(s, a.ID, "h1", "nowhere"), trustack.ENOTFOUND)

	// A host's zone is its aggregate's, and back to the one it registered
	// with when it leaves; registering again keeps the aggregate's.
	must(t, setHosts(s, b.ID, "h1"))
	equal(t, zoneOf(t, s, "h1"), "z1")
	equal(t, zoneOf(t, s, "h2"), "nova")
	host(t, s, "h1", 4, 8192)
	equal(t, zoneOf(t, s, "h1"), "z1")

	// A host in two zones is refused, whichever way it would come about.
	c := aggregate(t, s, "agg3", "z2")
	err = setHosts(s, c.ID, "h1")
	code(t, err, trustack.ECONFLICT)
	equal(t, trustack.ErrorReason(err), trustack.ReasonAggregateAction)
	must(t, setHosts(s, c.ID, "h2"))
	_, err = s.UpdateAggregate(ctx, c.ID, func(a *trustack.Aggregate) error {
		a.Metadata[trustack.AggregateZoneKey] = "z1"
		a.Hosts = append(a.Hosts, "h1")
		return nil
	})
	must(t, err)
	equal(t, zoneOf(t, s, "h2"), "z1")
	_, err = s.UpdateAggregate(ctx, c.ID, func(a *trustack.Aggregate) error {
		a.Metadata[trustack.AggregateZoneKey] = "z3"
		return nil
	})
	equal(t, trustack.ErrorReason(err), trustack.ReasonAggregateAction)
	equal(t, zoneOf(t, s, "h1"), "z1")

	// Names stay unique when renamed too.
	_, err = s.UpdateAggregate(ctx, c.ID, func(a *trustack.Aggregate) error { a.Name = "agg1"; return nil })
	code(t, err, trustack.ECONFLICT)

	// Metadata round-trips; a zone's change is refused while its hosts
	// run servers.
	must(t, s.CreateServers(ctx, []*trustack.Server{server("s1", "p", 1, 1024)}, trustack.NewPorts{}, nil, nil))
	must(t, claim(s, "s1", "id-h2", 1, 1024, nil))
	up, err := s.UpdateAggregate(ctx, c.ID, func(a *trustack.Aggregate) error {
		a.Metadata["k"], a.UpdatedAt = "v", start.Add(time.Hour)
		return nil
	})
	must(t, err)
	got, err = s.Aggregate(ctx, c.ID)
	must(t, err)
	equal(t, got, up)
	equal(t, got.Metadata, map[string]string{"availability_zone": "z1", "k": "v"})
	_, err = s.UpdateAggregate(ctx, c.ID, func(a *trustack.Aggregate) error {
		delete(a.Metadata, trustack.AggregateZoneKey)
		return nil
	})
	equal(t, trustack.ErrorReason(err), trustack.ReasonAggregateAction)

	// An aggregate with hosts is not deleted; an empty one is, and its
	// name and not its ID can be taken again.
	err = s.DeleteAggregate(ctx, a.ID)
	equal(t, trustack.ErrorReason(err), trustack.ReasonAggregateAction)
	must(t, setHosts(s, a.ID))
	must(t, s.DeleteAggregate(ctx, a.ID))
	code(t, s.DeleteAggregate(ctx, a.ID), trustack.ENOTFOUND)
	_, err = s.Aggregate(ctx, a.ID)
	code(t, err, trustack.ENOTFOUND)
	again := aggregate(t, s, "agg1", "")
	if again.ID <= c.ID {
		t.Errorf("a new aggregate got ID %d, want more than %d", again.ID, c.ID)
	}
	list, err := s.Aggregates(ctx)
	must(t, err)
	names := []string{}
	for _, a := range list {
		names = append(names, fmt.Sprintf("%d:%s:%v", a.ID, a.Name, a.Hosts))
	}
	equal(t, names, []string{
		fmt.Sprintf("%d:agg2:[h1]", b.ID), fmt.Sprintf("%d:agg3:[h1 h2]", c.ID), fmt.Sprintf("%d:agg1:[]", again.ID)})
	topo, err := s.Topology(ctx)
	must(t, err)
	equal(t, len(topo.Aggregates), 3)

	// Deleting a host takes it out of its aggregates.
	must(t, setHosts(s, b.ID))
	must(t, setHosts(s, c.ID, "h2"))
	h1, err := s.HostByName(ctx, "h1")
	must(t, err)
	equal(t, h1.AvailabilityZone, "nova")
	must(t, s.DeleteHost(ctx, h1.ID))
	got, err = s.Aggregate(ctx, c.ID)
	must(t, err)
	equal(t, got.Hosts, []string{"h2"})
}

func testAggregatesUnderConcurrency(t *testing.T, s Store) {
	// Aggregates created at once each get their own ID; of those of one
	// name, one is created.
	created := race(t, 8, trustack.ECONFLICT, "", func(i int) error {
		return s.CreateAggregate(ctx, &trustack.Aggregate{UUID: fmt.Sprint("u", i), Name: fmt.Sprint("a", i%4), CreatedAt: start})
	})
	equal(t, created, 4)
	list, err := s.Aggregates(ctx)
	must(t, err)
	seen := map[int]bool{}
	for _, a := range list {
		if seen[a.ID] {
			t.Errorf("two aggregates with ID %d", a.ID)
		}
		seen[a.ID] = true
	}
}
