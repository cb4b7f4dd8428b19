// Package objectstore holds what every role of the object store shares:
// the hashes that place accounts, containers and objects on the rings,
// the timestamps that order their versions, the layout of a node's
// devices, the limits of names and metadata, and the names in the
// expirer's queue. The roles are its subpackages, as Swift has them: ring
// (where things live), object, container and account (the storage
// nodes' servers, speaking Swift's backend protocol over HTTP), expirer
// (which deletes expired objects), and proxy (the front that users'
// requests go through).
package objectstore

import (
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Hash is the MD5 digest that places a name on a ring and on a device:
// Swift's hash_path.
type Hash [md5.Size]byte

// String is the hash in lowercase hexadecimal, as directories name it.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// Suffix is the hash's last three hexadecimal digits: the directory
// between a partition and the hash's own, which replication compares.
func (h Hash) Suffix() string { return h.String()[2*md5.Size-3:] }

// Uint32 is the hash's first four bytes, big-endian: a ring's partition
// is its top bits.
func (h Hash) Uint32() uint32 { return binary.BigEndian.Uint32(h[:4]) }

// ParseHash parses a hash's hexadecimal form.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 2*md5.Size {
		return h, fmt.Errorf("hash %q: want %d hexadecimal digits", s, 2*md5.Size)
	}
	_, err := hex.Decode(h[:], []byte(s))
	return h, err
}

// Hasher hashes names with the cluster's secret prefix and suffix
// (swift.conf's swift_hash_path_prefix and _suffix), so that no user can
// choose names that land on one partition. Every node and proxy of a
// cluster uses the same; changing them loses everything stored.
type Hasher struct {
	Prefix, Suffix string
}

// Path hashes an account, a container of it or an object of that ("" for
// the parts not named).
func (h Hasher) Path(account, container, object string) Hash {
	var b strings.Builder
	b.WriteString(h.Prefix)
	b.WriteString("/" + account)
	if container != "" {
		b.WriteString("/" + container)
		if object != "" {
			b.WriteString("/" + object)
		}
	}
	b.WriteString(h.Suffix)
	return md5.Sum([]byte(b.String()))
}

// Timestamp orders the versions of a thing: the newest write wins,
// whichever node saw it first. It counts tens of microseconds since the
// Unix epoch, Swift's resolution, and its string form is Swift's internal
// one (1700000000.12345), which sorts as the number does.
type Timestamp int64

// TimestampOf returns the timestamp of t.
func TimestampOf(t time.Time) Timestamp { return Timestamp(t.UnixMicro() / 10) }

// ParseTimestamp parses a timestamp in Swift's forms: seconds with up to
// five decimals (1700000000, 1700000000.1, 1700000000.12345).
func ParseTimestamp(s string) (Timestamp, error) {
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" || len(frac) > 5 || strings.HasPrefix(whole, "-") || strings.HasPrefix(whole, "+") || strings.HasPrefix(frac, "-") || strings.HasPrefix(frac, "+") {
		return 0, fmt.Errorf("timestamp %q: want seconds with up to five decimals", s)
	}
	sec, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || sec > 9_999_999_999 {
		return 0, fmt.Errorf("timestamp %q: want seconds with up to five decimals", s)
	}
	var f int64
	if frac != "" {
		if f, err = strconv.ParseInt(frac+strings.Repeat("0", 5-len(frac)), 10, 64); err != nil {
			return 0, fmt.Errorf("timestamp %q: want seconds with up to five decimals", s)
		}
	}
	return Timestamp(sec*100_000 + f), nil
}

// String is the timestamp's internal form, 16 characters, zero-padded.
func (t Timestamp) String() string {
	return fmt.Sprintf("%010d.%05d", int64(t)/100_000, int64(t)%100_000)
}

// Time is the timestamp as a time.
func (t Timestamp) Time() time.Time { return time.UnixMicro(int64(t) * 10).UTC() }

// Kind is what a device directory holds: accounts, containers or objects.
type Kind string

// The three kinds, named as their directories under a device are.
const (
	Accounts   Kind = "accounts"
	Containers Kind = "containers"
	Objects    Kind = "objects"
)

// Dir is where a thing of kind lives on a device of a node whose devices
// are directories under root: root/device/kind/partition/suffix/hash.
func Dir(root, device string, kind Kind, partition int, h Hash) string {
	return filepath.Join(PartitionDir(root, device, kind, partition), h.Suffix(), h.String())
}

// PartitionDir is the directory of a partition of kind on a device.
func PartitionDir(root, device string, kind Kind, partition int) string {
	return filepath.Join(root, device, string(kind), strconv.Itoa(partition))
}

// Limits on names, metadata and sizes: Swift's defaults, which clients
// read from /info (swift.constraints).
const (
	MaxFileSize            = 5*1024*1024*1024 + 2 // bytes of one object; larger ones are segmented
	MaxMetaNameLength      = 128
	MaxMetaValueLength     = 256
	MaxMetaCount           = 90
	MaxMetaOverallSize     = 4096
	MaxHeaderSize          = 8192
	MaxObjectNameLength    = 1024
	MaxContainerNameLength = 256
	MaxAccountNameLength   = 256
	ContainerListingLimit  = 10000
	AccountListingLimit    = 10000
)
