// Package clustertest gives tests controllers sharing a store as the test
// says, in place of a cluster.Membership.
package clustertest

import (
	"context"
	"slices"
	"sync"
)

// Controllers are the controllers sharing a store as a test sets them:
// the one named by ID among them, and those the test says are live. It
// owns every key. Its methods are safe for concurrent use.
type Controllers struct {
	id string

	mu    sync.Mutex
	live  []string
	looks int
}

// New returns the controller id among the live ones.
func New(id string, live ...string) *Controllers { return &Controllers{id: id, live: live} }

// ID is the controller's name.
func (c *Controllers) ID() string { return c.id }

// Refresh returns the live controllers, as last set, and counts a look
// at them.
func (c *Controllers) Refresh(context.Context) ([]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.looks++
	return slices.Clone(c.live), nil
}

// Owns reports that every key is the controller's.
func (c *Controllers) Owns(string) bool { return true }

// SetLive sets the live controllers.
func (c *Controllers) SetLive(live ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.live = live
}

// Looks returns how many times the live controllers were looked at.
func (c *Controllers) Looks() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.looks
}
