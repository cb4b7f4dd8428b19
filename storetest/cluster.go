package storetest

import (
	"context"
	"slices"
	"testing"
	"time"
)

func testLeases(t *testing.T, s Store) {
	ctx := context.Background()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	live := func(at time.Time, want ...string) {
		t.Helper()
		got, err := s.LiveMembers(ctx, at)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("live at %s: %q, want %q", at.Sub(now), got, want)
		}
	}
	live(now)
	must(t, s.RenewLease(ctx, "ctl-b", now.Add(10*time.Second)))
	must(t, s.RenewLease(ctx, "ctl-a", now.Add(5*time.Second)))
	live(now, "ctl-a", "ctl-b")
	live(now.Add(5*time.Second), "ctl-b") // expired at 5 s
	must(t, s.RenewLease(ctx, "ctl-a", now.Add(20*time.Second)))
	live(now.Add(15*time.Second), "ctl-a")
	must(t, s.DropLease(ctx, "ctl-a"))
	must(t, s.DropLease(ctx, "ctl-c")) // none: no error
	live(now, "ctl-b")
}
