package compute

import (
	"context"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/cluster"
)

// Tasks in progress and the controllers that carry them out: a server's
// task belongs to the controller that started it (Server.TaskOwner, set
// as the task starts, in the same transaction), as cluster says.

// Controllers are the controllers sharing the store, as compute needs to
// know them (a cluster.Membership).
type Controllers interface {
	cluster.Peers
	// Owns reports whether key's work is this controller's among the
	// live ones.
	Owns(key string) bool
}

// ownedStore is the Store as compute writes through it: a server whose
// task starts becomes this controller's, one whose task ends no one's.
type ownedStore struct {
	Store
	self string
}

func (o ownedStore) CreateServers(ctx context.Context, list []*trustack.Server, ports trustack.NewPorts, limits map[string]int, action *trustack.InstanceAction) error {
	for _, srv := range list {
		o.mark("", srv)
	}
	return o.Store.CreateServers(ctx, list, ports, limits, action)
}

func (o ownedStore) UpdateServer(ctx context.Context, id string, fn func(*trustack.Server) error) (*trustack.Server, error) {
	return o.Store.UpdateServer(ctx, id, o.marking(fn))
}

func (o ownedStore) UpdateServerWithEvent(ctx context.Context, id, requestID string, e trustack.ActionEvent, fn func(*trustack.Server) error) (*trustack.Server, error) {
	return o.Store.UpdateServerWithEvent(ctx, id, requestID, e, o.marking(fn))
}

// marking is fn, then mark.
func (o ownedStore) marking(fn func(*trustack.Server) error) func(*trustack.Server) error {
	return func(cur *trustack.Server) error {
		before := cur.TaskState
		if err := fn(cur); err != nil {
			return err
		}
		o.mark(before, cur)
		return nil
	}
}

// mark sets the owner of srv's task, whose task was before.
func (o ownedStore) mark(before string, srv *trustack.Server) {
	switch {
	case srv.TaskState == "":
		srv.TaskOwner = ""
	case before == "":
		srv.TaskOwner = o.self
	}
}

// recover takes up the tasks in progress this controller may carry out:
// at start, those it left itself; at any time, those of controllers whose
// leases expired, taken over first. No server stays in a task: builds are
// placed or spawned again (an agent spawns a server at most once), power
// actions take the state the agent reports, deletions are done again,
// migrations are abandoned, and snapshots that were cut off fail, their
// images killed (those whose data all arrived are done).
func (s *Service) recover(ctx context.Context, start bool) error {
	// The servers first, then the live controllers: a task started by a
	// controller that joined meanwhile is then listed with its owner
	// live.
	list, err := s.store.Servers(ctx, trustack.ServerFilter{InTask: true})
	if err != nil {
		return err
	}
	live, err := cluster.Live(ctx, s.opts.Controllers)
	if err != nil {
		return err
	}
	for _, srv := range list {
		switch cluster.ClaimTask(s.self, srv.TaskOwner, start, live) {
		case cluster.Leave:
			continue
		case cluster.TakeOver:
			taken, err := s.takeOver(ctx, srv)
			if err != nil {
				if err != errMoved {
					s.opts.Log.Error("take over a server's task", "server", srv.ID, "error", err)
				}
				continue
			}
			srv = taken
		}
		s.takeUp(ctx, srv)
	}
	return nil
}

// takeOver makes a task of a controller gone this controller's; errMoved
// if it ended or another controller took it over first.
func (s *Service) takeOver(ctx context.Context, srv *trustack.Server) (*trustack.Server, error) {
	s.opts.Log.Info("taking over a server's task from a controller gone", "server", srv.ID, "task", srv.TaskState, "controller", srv.TaskOwner)
	return s.store.UpdateServer(ctx, srv.ID, func(cur *trustack.Server) error {
		if cur.TaskState != srv.TaskState || cur.TaskOwner != srv.TaskOwner {
			return errMoved
		}
		cur.TaskOwner = s.self
		return nil
	})
}

// takeUp carries out a server's task from where the store has it.
func (s *Service) takeUp(ctx context.Context, srv *trustack.Server) {
	s.opts.Log.Info("recovering server task", "server", srv.ID, "task", srv.TaskState)
	switch srv.TaskState {
	case trustack.TaskScheduling:
		s.enqueue(func(ctx context.Context) {
			// A run that died between claiming a host and recording
			// the placement left a claim: give it back, or placing
			// the server again finds it taken on every host.
			if h, err := s.store.Release(ctx, srv.ID); err == nil && h != nil {
				s.placer.Forget(h)
			}
			s.build(ctx, srv.ID, "", nil)
		})
	case trustack.TaskSpawning:
		s.enqueue(func(ctx context.Context) { s.respawn(ctx, srv) })
	case trustack.TaskDeleting:
		s.enqueue(func(ctx context.Context) { s.destroy(ctx, srv, "") })
	case trustack.TaskMigrating:
		s.enqueue(func(ctx context.Context) { s.abandonMigration(ctx, srv) })
	case trustack.TaskImageSnapshot, trustack.TaskImageUploading:
		s.settleSnapshot(ctx, srv)
	default:
		s.enqueue(func(ctx context.Context) { s.resync(ctx, srv) })
	}
}

// takeOverLoop takes over, every TakeoverInterval until ctx ends, the
// tasks of controllers whose leases expired.
func (s *Service) takeOverLoop(ctx context.Context) {
	cluster.Every(ctx, s.opts.TakeoverInterval, func(ctx context.Context) {
		if err := s.recover(ctx, false); err != nil && ctx.Err() == nil {
			s.opts.Log.Error("take over the tasks of controllers gone", "error", err)
		}
	})
}

// owns reports whether this controller checks the servers of a host: all
// of them alone, its share among several.
func (s *Service) owns(host string) bool {
	return s.opts.Controllers == nil || s.opts.Controllers.Owns(host)
}
