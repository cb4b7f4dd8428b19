package sqlstore

import "sync"

// projectQueue lets a few transactions of this process at a time wait for
// a project's quota lock. Waiting in the database holds a connection, so
// without it a burst of one project's creations would hold every
// connection of the pool while they queue, and starve the other requests;
// the database lock still orders them, here and against other
// controllers.
type projectQueue struct {
	mu    sync.Mutex
	turns map[string]*projectTurns
}

// projectTurns are a project's turns, with how many hold or wait for one.
type projectTurns struct {
	free  chan struct{}
	users int
}

// projectTurnsEach is how many transactions of a project may hold a
// connection at once: enough to overlap what they do before they take the
// quota lock, half of PostgreSQL's pool (openPostgres). Four made a burst
// of boots with ports slower on SQLite, whose transactions then lost the
// writer to the builds'.
const projectTurnsEach = 16

// wait waits for a turn of the project, and returns the function that
// ends it.
func (q *projectQueue) wait(project string) (done func()) {
	q.mu.Lock()
	if q.turns == nil {
		q.turns = map[string]*projectTurns{}
	}
	t := q.turns[project]
	if t == nil {
		t = &projectTurns{free: make(chan struct{}, projectTurnsEach)}
		q.turns[project] = t
	}
	t.users++
	q.mu.Unlock()
	t.free <- struct{}{}
	return func() {
		<-t.free
		q.mu.Lock()
		if t.users--; t.users == 0 {
			delete(q.turns, project)
		}
		q.mu.Unlock()
	}
}
