package sqlstore

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestProjectQueue checks that no more than projectTurnsEach transactions
// of a project hold a turn at once, that other projects do not wait for
// them, and that a project's turns are forgotten when none is used.
func TestProjectQueue(t *testing.T) {
	var q projectQueue
	var holding, most atomic.Int32
	var wg sync.WaitGroup
	for range 4 * projectTurnsEach {
		wg.Add(1)
		go func() {
			defer wg.Done()
			done := q.wait("p1")
			n := holding.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			time.Sleep(5 * time.Millisecond)
			holding.Add(-1)
			done()
		}()
	}
	other := make(chan struct{})
	go func() {
		q.wait("p2")()
		close(other)
	}()
	select {
	case <-other:
	case <-time.After(time.Second):
		t.Error("another project waited for p1's turns")
	}
	wg.Wait()
	if m := most.Load(); m != projectTurnsEach {
		t.Errorf("at most %d held a turn at once, want %d", m, projectTurnsEach)
	}
	if len(q.turns) != 0 {
		t.Errorf("%d projects' turns kept after use, want none", len(q.turns))
	}
}
