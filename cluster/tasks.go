package cluster

import (
	"context"
	"slices"
	"time"
)

// Tasks in progress and the controllers that carry them out. A task (a
// server's build, a volume's creation) belongs to the controller that
// started it, recorded with the task as it starts: that controller alone
// takes it up after a restart, and another takes it over only once the
// owner's lease has expired, so that no task is carried out twice by
// live controllers.

// Peers are the controllers sharing a store, as a service that carries
// out tasks sees them: a Membership, or a test's fake.
type Peers interface {
	// ID is this controller's name.
	ID() string
	// Refresh reads the live controllers now, renewing nothing, and
	// returns them.
	Refresh(ctx context.Context) ([]string, error)
}

// Claim is what a controller does with a task in progress it finds in
// the store.
type Claim int

const (
	// Leave: the task is carried out elsewhere, by a live controller,
	// or in flight here.
	Leave Claim = iota
	// Resume: the task is this controller's, left by its previous run.
	Resume
	// TakeOver: the task's controller is gone; this one makes it its
	// own (if no other did first), then carries it out.
	TakeOver
)

// ClaimTask says what the controller self does with a task that owner
// started, live being the live controllers; start says whether self is
// starting, its own tasks then left by its previous run rather than in
// flight.
func ClaimTask(self, owner string, start bool, live []string) Claim {
	switch {
	case owner == self && start:
		return Resume
	case owner == self, slices.Contains(live, owner):
		return Leave
	}
	return TakeOver
}

// Live returns the live controllers as peers reads them now; none (nil
// peers) for a controller alone, every task of which is its own.
func Live(ctx context.Context, peers Peers) ([]string, error) {
	if peers == nil {
		return nil, nil
	}
	return peers.Refresh(ctx)
}

// Every calls fn every interval until ctx ends: how a service looks for
// the tasks of controllers gone.
func Every(ctx context.Context, interval time.Duration, fn func(context.Context)) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		fn(ctx)
	}
}
