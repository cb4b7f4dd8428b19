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

	mu     sync.Mutex
	live   []string
	renews int
}

// New returns the controller id among the live ones.
func New(id string, live ...string) *Controllers { return &Controllers{id: id, live: live} }

// ID is the controller's name.
func (c *Controllers) ID() string { return c.id }

// Renew counts a look at the live controllers.
func (c *Controllers) Renew(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.renews++
	return nil
}

// Live returns the live controllers, as last set.
func (c *Controllers) Live() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.live)
}

// Owns reports that every key is the controller's.
func (c *Controllers) Owns(string) bool { return true }

// SetLive sets the live controllers.
func (c *Controllers) SetLive(live ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.live = live
}

// Renewed returns how many times the controllers were looked at.
func (c *Controllers) Renewed() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.renews
}
