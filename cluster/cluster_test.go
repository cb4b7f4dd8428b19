package cluster_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/trustack/trustack/cluster"
	"github.com/trustack/trustack/sqlstore"
)

// clock is a time that tests move by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func hosts(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("compute-%d", i)
	}
	return out
}

// TestOwnerMovesOnlyTheKeysOfAMemberGone checks rendezvous hashing: each
// key has one owner, keys spread over the members, and a member's leaving
// moves its keys alone.
func TestOwnerMovesOnlyTheKeysOfAMemberGone(t *testing.T) {
	three, two := []string{"ctl-a", "ctl-b", "ctl-c"}, []string{"ctl-a", "ctl-c"}
	count := map[string]int{}
	for _, h := range hosts(3000) {
		before, after := cluster.Owner(three, h), cluster.Owner(two, h)
		count[before]++
		if before != "ctl-b" && after != before {
			t.Fatalf("%s moved from %s to %s, though %s stayed", h, before, after, before)
		}
		if !slices.Contains(two, after) {
			t.Fatalf("%s owned by %q after ctl-b left", h, after)
		}
	}
	for _, m := range three {
		if count[m] < 800 || count[m] > 1200 {
			t.Errorf("%s owns %d of 3000 keys, want about a third: %v", m, count[m], count)
		}
	}
	if got := cluster.Owner(nil, "compute-1"); got != "" {
		t.Errorf("owner among no members: %q", got)
	}
}

// TestMembersShareKeysAndTakeOverTheDead runs two controllers on one
// store: they split the keys, none owned twice or not at all; when one
// stops, the other owns everything at once; when one dies, once its lease
// has expired.
func TestMembersShareKeysAndTakeOverTheDead(t *testing.T) {
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	c := &clock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	const ttl = 9 * time.Second
	join := func(id string) *cluster.Membership {
		m, err := cluster.Join(ctx, db, id, cluster.Options{TTL: ttl, Now: c.Now})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	a, b := join("ctl-a"), join("ctl-b")
	renew := func(m *cluster.Membership) *cluster.Membership {
		t.Helper()
		if err := m.Renew(ctx); err != nil {
			t.Fatal(err)
		}
		return m
	}
	split := func(members ...*cluster.Membership) map[string]int {
		t.Helper()
		owned := map[string]int{}
		for _, h := range hosts(100) {
			n := 0
			for _, m := range members {
				if m.Owns(h) {
					owned[m.ID()]++
					n++
				}
			}
			if n != 1 {
				t.Fatalf("%s owned by %d members of %v", h, n, members[0].Live())
			}
		}
		return owned
	}
	if owned := split(renew(a), b); owned["ctl-a"] == 0 || owned["ctl-b"] == 0 {
		t.Errorf("two members: %v, want both owning some", owned)
	}

	// b stops: it drops its lease, and a, at its next read, owns all.
	bctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { b.Run(bctx); close(done) }()
	stop()
	<-done
	b.Leave(ctx)
	if owned := split(renew(a)); owned["ctl-a"] != 100 || !slices.Equal(a.Live(), []string{"ctl-a"}) {
		t.Errorf("after b stopped: %v, live %v, want a alone owning all", owned, a.Live())
	}

	// d dies holding its lease: until the lease expires, the keys it
	// ranks first for are nobody else's; then they are a's.
	d := join("ctl-d")
	dKeys := split(renew(a), d)["ctl-d"]
	if dKeys == 0 {
		t.Fatal("ctl-d owns no keys")
	}
	c.add(ttl - time.Second)
	if got := split(renew(a), d)["ctl-d"]; got != dKeys {
		t.Errorf("before ctl-d's lease expired: it owns %d keys, want still %d", got, dKeys)
	}
	c.add(2 * time.Second)
	if got := split(renew(a))["ctl-a"]; got != 100 {
		t.Errorf("after ctl-d's lease expired: a owns %d keys, want all", got)
	}
}
