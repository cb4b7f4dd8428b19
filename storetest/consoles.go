package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/trustack/trustack"
)

func testConsoleTokens(t *testing.T, s Store) {
	ctx := context.Background()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tok := func(hash string, ttl time.Duration) *trustack.ConsoleToken {
		return &trustack.ConsoleToken{TokenHash: hash, ServerID: "srv-" + hash, Host: "host1", Protocol: "vnc", Type: "novnc",
			Address: "127.0.0.1:5900", Secret: "secret-" + hash, ExpiresAt: now.Add(ttl)}
	}
	must(t, s.CreateConsoleToken(ctx, tok("a", 10*time.Minute)))
	must(t, s.CreateConsoleToken(ctx, tok("b", time.Minute)))
	if err := s.CreateConsoleToken(ctx, tok("a", time.Minute)); trustack.ErrorCode(err) != trustack.ECONFLICT {
		t.Errorf("a second token with the same hash: got %v, want %s", err, trustack.ECONFLICT)
	}

	got, err := s.ConsoleToken(ctx, "a", now)
	if err != nil {
		t.Fatal(err)
	}
	if want := tok("a", 10*time.Minute); *got != *want {
		t.Errorf("token a: got %+v, want %+v", got, want)
	}
	if _, err := s.ConsoleToken(ctx, "b", now.Add(time.Minute)); trustack.ErrorCode(err) != trustack.ENOTFOUND {
		t.Errorf("token b once expired: got %v, want %s", err, trustack.ENOTFOUND)
	}

	// Taking a token gives it once.
	if got, err := s.TakeConsoleToken(ctx, "a", now); err != nil || got.ServerID != "srv-a" || got.Secret != "secret-a" {
		t.Errorf("take a: got %+v, %v, want a's token", got, err)
	}
	for _, hash := range []string{"a", "nope"} {
		if _, err := s.TakeConsoleToken(ctx, hash, now); trustack.ErrorCode(err) != trustack.ENOTFOUND {
			t.Errorf("take %s: got %v, want %s", hash, err, trustack.ENOTFOUND)
		}
	}
	if _, err := s.TakeConsoleToken(ctx, "b", now.Add(2*time.Minute)); trustack.ErrorCode(err) != trustack.ENOTFOUND {
		t.Errorf("take b once expired: got %v, want %s", err, trustack.ENOTFOUND)
	}

	// Purging deletes the expired tokens only.
	must(t, s.CreateConsoleToken(ctx, tok("c", time.Hour)))
	n, err := s.PurgeConsoleTokens(ctx, now.Add(time.Minute))
	if err != nil || n != 1 {
		t.Errorf("purge: got %d, %v, want 1 (b)", n, err)
	}
	if _, err := s.ConsoleToken(ctx, "c", now); err != nil {
		t.Errorf("c after the purge: %v", err)
	}
}
