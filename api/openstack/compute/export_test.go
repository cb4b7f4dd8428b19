package compute

import (
	"testing"

	"github.com/trustack/trustack/api/openstack"
)

// ServeUpTo raises the newest microversion served to 2.minor for the rest
// of a test, so that a test can reach code written for versions above
// the maximum that trustack advertises yet. Tests that call it must not
// run in parallel.
func ServeUpTo(t testing.TB, minor int) {
	t.Helper()
	old := versions.Max
	versions.Max = openstack.Microversion{Major: 2, Minor: minor}
	t.Cleanup(func() { versions.Max = old })
}

// MaxMinor is the newest microversion served, 2.MaxMinor.
const MaxMinor = maxMinor
