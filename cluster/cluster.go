// Package cluster lets several controllers on one store share the work:
// each holds a lease in the store, which it renews while it runs, and the
// controllers whose leases have not expired are the live members. Work
// keyed by a name (a host to attest, say) belongs to one live member,
// chosen by rendezvous hashing: every member computes the same owner from
// the same list, and when a member dies only its keys move, to the others,
// once its lease has expired.
package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Store keeps the members' leases.
type Store interface {
	// RenewLease records that member holds its lease until until.
	RenewLease(ctx context.Context, member string, until time.Time) error
	// LiveMembers returns the members whose leases run past at, sorted.
	LiveMembers(ctx context.Context, at time.Time) ([]string, error)
	// DropLease ends a member's lease, as it stops.
	DropLease(ctx context.Context, member string) error
}

// Options configure a Membership; zero values take the defaults.
type Options struct {
	// TTL is how long a lease runs after each renewal (default 15 s): a
	// member that dies leaves the others its work at most that late. It
	// renews its lease three times a TTL.
	TTL time.Duration
	// Now returns the current time (default time.Now).
	Now func() time.Time
	// Log receives the changes of membership (default: discarded).
	Log *slog.Logger
	// Changed, if not nil, is called after a read found the live members
	// changed, so that work that moved is taken up at once.
	Changed func()
}

// Membership is a controller's membership: its lease, and the live
// members as it last read them. Its methods are safe for concurrent use.
type Membership struct {
	id    string
	store Store
	opts  Options

	mu   sync.Mutex
	live []string // sorted; with id while it holds its lease
}

// Join returns the membership of the controller id, its lease taken, the
// live members read; Run keeps them so.
func Join(ctx context.Context, store Store, id string, opts Options) (*Membership, error) {
	m := New(store, id, opts)
	return m, m.Renew(ctx)
}

// New returns the membership of the controller id, which takes no lease
// until it first renews it (Renew, Run): a process that builds a
// controller without running it, such as an operator's command, is no
// member.
func New(store Store, id string, opts Options) *Membership {
	if opts.TTL == 0 {
		opts.TTL = 15 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	return &Membership{id: id, store: store, opts: opts}
}

// TTL is how long the lease runs after each renewal.
func (m *Membership) TTL() time.Duration { return m.opts.TTL }

// ID is the member's own name.
func (m *Membership) ID() string { return m.id }

// Run renews the lease and reads the live members three times a TTL until
// ctx ends. Leave then lets the others take the work at once.
func (m *Membership) Run(ctx context.Context) {
	tick := time.NewTicker(m.opts.TTL / 3)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if err := m.Renew(ctx); err != nil && ctx.Err() == nil {
				m.opts.Log.Error("renew the controller's lease", "error", err)
			}
		}
	}
}

// Leave drops the lease, once the member's work has stopped: the others
// take its work at once rather than when the lease would have expired.
func (m *Membership) Leave(ctx context.Context) {
	if err := m.store.DropLease(ctx, m.id); err != nil {
		m.opts.Log.Warn("drop the controller's lease", "error", err)
	}
}

// Renew extends the lease now and reads the live members, as Run does
// three times a TTL.
func (m *Membership) Renew(ctx context.Context) error {
	if err := m.store.RenewLease(ctx, m.id, m.opts.Now().Add(m.opts.TTL)); err != nil {
		return err
	}
	_, err := m.Refresh(ctx)
	return err
}

// Refresh reads the live members now, without renewing the lease, and
// returns them.
func (m *Membership) Refresh(ctx context.Context) ([]string, error) {
	live, err := m.store.LiveMembers(ctx, m.opts.Now())
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	changed := !slices.Equal(live, m.live)
	m.live = live
	m.mu.Unlock()
	if changed {
		m.opts.Log.Info("controllers sharing the work", "live", live)
		if m.opts.Changed != nil {
			m.opts.Changed()
		}
	}
	return slices.Clone(live), nil
}

// Live returns the live members as last read.
func (m *Membership) Live() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.live)
}

// Owns reports whether key's work is this member's: it is the live
// member that ranks highest for key.
func (m *Membership) Owns(key string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return Owner(m.live, key) == m.id
}

// Owner returns the member of members that ranks highest for key ("" if
// there is none): rendezvous hashing, so that removing a member moves only
// its own keys.
func Owner(members []string, key string) string {
	var best string
	var bestRank uint64
	for _, mem := range members {
		sum := sha256.Sum256([]byte(mem + "\x00" + key))
		if r := binary.BigEndian.Uint64(sum[:8]); best == "" || r > bestRank {
			best, bestRank = mem, r
		}
	}
	return best
}
