package objectstore

import (
	"fmt"
	"strconv"
	"strings"
)

// The expirer's queue, as Swift keeps it: an object written with an
// X-Delete-At has an entry "<delete at>-<account>/<container>/<object>"
// in the hidden account ExpiringObjectsAccount, in the container named by
// its delete-at time rounded down to ExpiringObjectsContainerDivisor.
// Times are in seconds, written in ten digits so that names sort by time.
const (
	ExpiringObjectsAccount          = ".expiring_objects"
	ExpiringObjectsContainerDivisor = 86400
)

// HiddenAccount reports whether an account is one of the cluster's own,
// such as ExpiringObjectsAccount, which its servers make on first use
// (Swift's auto_create_account_prefix, "."). No user's account is.
func HiddenAccount(account string) bool { return strings.HasPrefix(account, ".") }

// ExpiringObjectsContainer is the queue container of the objects that
// expire at deleteAt.
func ExpiringObjectsContainer(deleteAt int64) string {
	return deleteAtString(deleteAt / ExpiringObjectsContainerDivisor * ExpiringObjectsContainerDivisor)
}

// ExpiringObjectsEntry is the queue entry of an object that expires at
// deleteAt.
func ExpiringObjectsEntry(deleteAt int64, account, container, object string) string {
	return deleteAtString(deleteAt) + "-" + account + "/" + container + "/" + object
}

// ParseExpiringObjectsEntry reads a queue entry's name.
func ParseExpiringObjectsEntry(name string) (deleteAt int64, account, container, object string, err error) {
	at, path, _ := strings.Cut(name, "-")
	account, rest, _ := strings.Cut(path, "/")
	container, object, _ = strings.Cut(rest, "/")
	deleteAt, err = strconv.ParseInt(at, 10, 64)
	if err != nil || account == "" || container == "" || object == "" {
		return 0, "", "", "", fmt.Errorf("expiring objects entry %q: want <delete at>-<account>/<container>/<object>", name)
	}
	return deleteAt, account, container, object, nil
}

// deleteAtString is a delete-at time as Swift's
// normalize_delete_at_timestamp writes it: ten digits, clamped to them.
func deleteAtString(t int64) string {
	return fmt.Sprintf("%010d", min(max(t, 0), 9999999999))
}
