package objectstore_test

import (
	"testing"

	"github.com/trustack/trustack/objectstore"
)

// TestExpiringObjectsNames: queue containers and entries are named as
// Swift names them, and an entry's name gives its object back, whatever
// dashes and slashes the names hold.
func TestExpiringObjectsNames(t *testing.T) {
	if got, want := objectstore.ExpiringObjectsContainer(2*86400+5), "0000172800"; got != want {
		t.Errorf("ExpiringObjectsContainer: got %q, want %q", got, want)
	}
	entry := objectstore.ExpiringObjectsEntry(172805, "AUTH_a-b", "c-d", "e/f-g h")
	if want := "0000172805-AUTH_a-b/c-d/e/f-g h"; entry != want {
		t.Errorf("ExpiringObjectsEntry: got %q, want %q", entry, want)
	}
	at, a, c, o, err := objectstore.ParseExpiringObjectsEntry(entry)
	if err != nil || at != 172805 || a != "AUTH_a-b" || c != "c-d" || o != "e/f-g h" {
		t.Errorf("ParseExpiringObjectsEntry(%q): got %d, %q, %q, %q, %v", entry, at, a, c, o, err)
	}
	for _, bad := range []string{"", "soon-a/c/o", "0000172805-a/c", "0000172805-a//o", "0000172805"} {
		if _, _, _, _, err := objectstore.ParseExpiringObjectsEntry(bad); err == nil {
			t.Errorf("ParseExpiringObjectsEntry(%q): got no error", bad)
		}
	}
}
