// Package ring places the object store's accounts, containers and objects
// on devices, as Swift's rings do. A ring divides the space of name hashes
// into 2^PartPower partitions, by the hashes' top bits, and assigns each
// partition to Replicas devices, spread across regions, zones, nodes and
// devices as widely as the cluster allows and in proportion to the
// devices' weights. Every proxy and storage node loads the same ring file,
// so they agree on where each name lives and, when a device is down, on
// which handoff devices stand in for it.
//
// A Builder makes rings. It keeps the devices and when each partition
// last moved, and its Rebalance moves as few partitions as it can when
// devices are added, reweighted or removed, and none twice within
// min_part_hours, so that replication can copy a partition before it
// moves again.
package ring

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trustack/trustack/objectstore"
)

// MaxPartPower is the largest partition power: 2^24 partitions are more
// than a cluster of this design needs, and a ring of 3 replicas of them
// still fits in 100 MB.
const MaxPartPower = 24

// none marks a replica not yet assigned; device IDs stay below it, as
// assignments hold them in uint16s.
const none = 0xFFFF

// formatVersion is the version of the ring and builder files written.
const formatVersion = 1

// Device is a disk of a storage node, where partitions are stored in a
// directory named Device under the node's devices root.
type Device struct {
	ID     int     `json:"id"`     // stable, never reused, assigned by the Builder
	Region int     `json:"region"` // the widest failure domain: a site
	Zone   int     `json:"zone"`   // a failure domain within a region: a rack, a power feed
	IP     string  `json:"ip"`
	Port   int     `json:"port"`
	Device string  `json:"device"`         // the directory's name on the node
	Weight float64 `json:"weight"`         // relative capacity; 0 drains the device
	Meta   string  `json:"meta,omitempty"` // free text for operators
}

// Addr returns the node's address, "IP:Port", with an IPv6 address
// bracketed.
func (d Device) Addr() string { return net.JoinHostPort(d.IP, strconv.Itoa(d.Port)) }

// tierKeys names a device's region, zone and node: the failure domains
// that a partition's replicas are spread across, widest first.
func tierKeys(d Device) [3]string {
	region := strconv.Itoa(d.Region)
	zone := region + "/" + strconv.Itoa(d.Zone)
	return [3]string{region, zone, zone + "/" + d.Addr()}
}

// Ring is where each partition's replicas live. A ring loaded from a
// file follows it, as Swift's rings do: at most every ReloadInterval, a
// use of the ring checks whether the file changed (a rebalance copied to
// the node) and, if so, reads it again, keeping the old layout if the
// new file cannot be read or has another partition power. It is safe
// for concurrent use. The zero Ring is not usable: make one with Load or
// Builder.Ring.
type Ring struct {
	layout atomic.Pointer[layout]
	path   string        // the file loaded; "" for a ring made in memory
	every  time.Duration // ReloadInterval, but in tests
	next   atomic.Int64  // when to check the file next, in Unix nanoseconds

	mu    sync.Mutex // held while checking the file
	stamp fileStamp  // of the file the layout was read from
}

// ReloadInterval is how often a ring loaded from a file checks it.
const ReloadInterval = 15 * time.Second

// fileStamp tells whether a file changed.
type fileStamp struct {
	modTime time.Time
	size    int64
}

func stampOf(info os.FileInfo) fileStamp { return fileStamp{info.ModTime(), info.Size()} }

// current returns the layout, first reading the ring's file again if it
// is time to check it and it changed.
func (r *Ring) current() *layout {
	if r.path != "" {
		if now := time.Now().UnixNano(); now >= r.next.Load() && r.mu.TryLock() {
			r.next.Store(now + int64(r.every))
			r.reload()
			r.mu.Unlock()
		}
	}
	return r.layout.Load()
}

// reload reads the ring's file if it changed since it was read.
func (r *Ring) reload() {
	info, err := os.Stat(r.path)
	if err != nil || stampOf(info) == r.stamp {
		return
	}
	l, stamp, err := loadLayout(r.path)
	if err != nil || l.partPower != r.layout.Load().partPower {
		return // a file being replaced by hand, or a new ring that no node can switch to: keep serving the old one
	}
	r.layout.Store(l)
	r.stamp = stamp
}

// PartPower returns the partition power: the ring has 2^PartPower
// partitions.
func (r *Ring) PartPower() uint { return r.current().PartPower() }

// Replicas returns how many devices hold each partition.
func (r *Ring) Replicas() int { return r.current().Replicas() }

// Partitions returns how many partitions the ring has.
func (r *Ring) Partitions() int { return r.current().Partitions() }

// Partition returns the partition of a name's hash: its top PartPower
// bits.
func (r *Ring) Partition(h objectstore.Hash) int { return r.current().Partition(h) }

// Nodes returns the primary devices of a partition, one per replica, in
// replica order. It panics if part is not in [0, Partitions()).
func (r *Ring) Nodes(part int) []Device { return r.current().Nodes(part) }

// Handoffs returns the devices that stand in for a partition's primaries
// when they fail, in the order to try them (see layout.Handoffs).
func (r *Ring) Handoffs(part int) iter.Seq[Device] { return r.current().Handoffs(part) }

// Devices returns all the ring's devices, by ID.
func (r *Ring) Devices() []Device { return r.current().Devices() }

// PartitionsOf returns, in increasing order, the partitions of which a
// device is a primary; none for a device not in the ring.
func (r *Ring) PartitionsOf(deviceID int) []int { return r.current().PartitionsOf(deviceID) }

// layout is a ring's content. It is never modified: a new ring file is
// a new layout.
type layout struct {
	partPower uint
	devs      []Device    // by ID
	index     map[int]int // device ID → index in devs
	keys      [][3]string // by index in devs: tierKeys
	assign    [][]uint16  // [replica][partition] → device ID
}

// newRing checks an assignment and makes a ring of it.
func newRing(partPower uint, devs []Device, assign [][]uint16) (*Ring, error) {
	l, err := newLayout(partPower, devs, assign)
	if err != nil {
		return nil, err
	}
	r := &Ring{}
	r.layout.Store(l)
	return r, nil
}

// newLayout checks an assignment and makes a layout of it.
func newLayout(partPower uint, devs []Device, assign [][]uint16) (*layout, error) {
	if partPower < 1 || partPower > MaxPartPower || len(assign) < 1 {
		return nil, fmt.Errorf("partition power %d, %d replicas: want 1 to %d, at least 1", partPower, len(assign), MaxPartPower)
	}
	r := &layout{partPower: partPower, devs: slices.Clone(devs), index: map[int]int{}, assign: assign}
	slices.SortFunc(r.devs, func(a, b Device) int { return cmp.Compare(a.ID, b.ID) })
	for i, d := range r.devs {
		if _, dup := r.index[d.ID]; dup || d.ID < 0 || d.ID >= none {
			return nil, fmt.Errorf("device ID %d: duplicate or out of range", d.ID)
		}
		if err := checkDevice(d); err != nil {
			return nil, err
		}
		r.index[d.ID] = i
		r.keys = append(r.keys, tierKeys(d))
	}
	for rep, row := range assign {
		if len(row) != r.Partitions() {
			return nil, fmt.Errorf("replica %d: %d partitions, want %d", rep, len(row), r.Partitions())
		}
		for p, id := range row {
			if _, ok := r.index[int(id)]; !ok {
				return nil, fmt.Errorf("partition %d replica %d: no device %d", p, rep, id)
			}
			for _, other := range assign[:rep] {
				if other[p] == id {
					return nil, fmt.Errorf("partition %d: two replicas on device %d", p, id)
				}
			}
		}
	}
	return r, nil
}

func (r *layout) PartPower() uint { return r.partPower }

func (r *layout) Replicas() int { return len(r.assign) }

func (r *layout) Partitions() int { return 1 << r.partPower }

func (r *layout) Partition(h objectstore.Hash) int { return int(h.Uint32() >> (32 - r.partPower)) }

func (r *layout) Nodes(part int) []Device {
	nodes := make([]Device, len(r.assign))
	for rep, row := range r.assign {
		nodes[rep] = r.devs[r.index[int(row[part])]]
	}
	return nodes
}

// Handoffs returns the devices that stand in for a partition's primaries
// when they fail, in the order to try them, as Swift's get_more_nodes
// does: first the devices in regions that hold no primary, then in zones
// that hold none, then on nodes that hold none, then the others, and last
// those of weight 0, which are being drained. Within each of these the
// order is hashed from the partition and the devices' IDs, so that every
// proxy and node walks the same sequence and the partitions of a failed
// device spread over the cluster. Every device that is not a primary
// comes once. It panics if part is not in [0, Partitions()).
func (r *layout) Handoffs(part int) iter.Seq[Device] {
	return func(yield func(Device) bool) {
		held, used := make([]bool, len(r.devs)), map[string]bool{}
		take := func(i int) {
			held[i] = true
			for _, k := range r.keys[i] {
				used[k] = true
			}
		}
		for _, row := range r.assign {
			take(r.index[int(row[part])])
		}
		order := make([]int, len(r.devs))
		for i := range order {
			order[i] = i
		}
		slices.SortFunc(order, func(a, b int) int {
			return cmp.Compare(score(part, r.devs[a].ID), score(part, r.devs[b].ID))
		})
		for pass := range 5 {
			for _, i := range order {
				if held[i] || pass < 4 && r.devs[i].Weight == 0 || pass < 3 && used[r.keys[i][pass]] {
					continue
				}
				take(i)
				if !yield(r.devs[i]) {
					return
				}
			}
		}
	}
}

// score orders a partition's handoff devices: splitmix64 of the partition
// and the device's ID. Every node must compute the same, so it is part of
// the ring's format.
func score(part, id int) uint64 {
	x := (uint64(part)<<32 | uint64(uint32(id))) + 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

func (r *layout) Devices() []Device { return slices.Clone(r.devs) }

func (r *layout) PartitionsOf(deviceID int) []int {
	var parts []int
	for p := range r.Partitions() {
		for _, row := range r.assign {
			if int(row[p]) == deviceID {
				parts = append(parts, p)
			}
		}
	}
	return parts
}

// file is a ring's or a builder's file, as gzip'd JSON.
type file struct {
	Version    int      `json:"version"`
	PartPower  uint     `json:"part_power"`
	Replicas   int      `json:"replicas"`
	Devices    []Device `json:"devices"`
	Assignment [][]byte `json:"assignment,omitempty"` // per replica, the partitions' device IDs as little-endian uint16s
	// A builder's alone:
	MinPartHours int    `json:"min_part_hours,omitempty"`
	NextID       int    `json:"next_id,omitempty"`
	Removed      []int  `json:"removed,omitempty"`    // IDs of devices removed whose partitions have yet to move
	LastMoved    []byte `json:"last_moved,omitempty"` // per partition, when it last moved, as little-endian uint32 minutes since the Unix epoch
}

// layout checks the file's version and assignment and makes a layout of
// them.
func (f *file) layout() (*layout, error) {
	if f.Version != formatVersion {
		return nil, fmt.Errorf("version %d: want %d", f.Version, formatVersion)
	}
	if f.Replicas != len(f.Assignment) {
		return nil, fmt.Errorf("%d replicas but %d assignment rows", f.Replicas, len(f.Assignment))
	}
	assign := make([][]uint16, len(f.Assignment))
	for rep, row := range f.Assignment {
		assign[rep] = make([]uint16, len(row)/2)
		if _, err := binary.Decode(row, binary.LittleEndian, assign[rep]); err != nil || len(row)%2 != 0 {
			return nil, fmt.Errorf("replica %d: assignment of %d bytes", rep, len(row))
		}
	}
	return newLayout(f.PartPower, f.Devices, assign)
}

// Load reads a ring file written by Save, and follows it (see Ring). Its
// errors name the file.
func Load(path string) (*Ring, error) {
	l, stamp, err := loadLayout(path)
	if err != nil {
		return nil, err
	}
	r := &Ring{path: path, every: ReloadInterval, stamp: stamp}
	r.layout.Store(l)
	r.next.Store(time.Now().Add(r.every).UnixNano())
	return r, nil
}

// loadLayout reads a ring file, and the stamp of the file it read.
func loadLayout(path string) (*layout, fileStamp, error) {
	var f file
	info, err := os.Stat(path)
	if err == nil {
		err = readFile(path, &f)
	}
	var l *layout
	if err == nil {
		l, err = f.layout()
	}
	if err != nil {
		return nil, fileStamp{}, fmt.Errorf("load ring %s: %w", path, err)
	}
	return l, stampOf(info), nil
}

// Save writes the ring to path atomically: a reader finds the old file or
// the new one, never part of either, and after a crash the one it finds
// is on disk.
func (r *Ring) Save(path string) error {
	l := r.current()
	return writeFile(path, &file{Version: formatVersion, PartPower: l.partPower, Replicas: len(l.assign), Devices: l.devs, Assignment: pack(l.assign)})
}

// pack encodes rows of device IDs for a file.
func pack(rows [][]uint16) [][]byte {
	out := make([][]byte, len(rows))
	for i, row := range rows {
		out[i], _ = binary.Append(nil, binary.LittleEndian, row)
	}
	return out
}

// readFile decodes the gzip'd JSON file at path into f, refusing one
// truncated, corrupted or with anything after its JSON.
func readFile(path string, f *file) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return err
	}
	if data, err = io.ReadAll(zr); err != nil {
		return err
	}
	return json.Unmarshal(data, f)
}

// writeFile writes f to path as gzip'd JSON: under a temporary name in
// the same directory, fsynced, renamed over path, and the directory
// fsynced.
func writeFile(path string, f *file) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	zw := gzip.NewWriter(tmp)
	err = json.NewEncoder(zw).Encode(f)
	for _, step := range []func() error{
		zw.Close,
		func() error { return tmp.Chmod(0o644) }, // rings are not secret: every node reads them
		tmp.Sync,
		tmp.Close,
		func() error { return os.Rename(tmp.Name(), path) },
	} {
		if err == nil {
			err = step()
		}
	}
	if err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("save %s: %w", path, err)
	}
	d, err := os.Open(dir)
	if err == nil {
		err = d.Sync()
		d.Close()
	}
	if err != nil {
		return fmt.Errorf("save %s: sync directory: %w", path, err)
	}
	return nil
}
