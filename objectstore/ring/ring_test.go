package ring

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trustack/trustack/objectstore"
)

// testRing returns a ring of 2 regions of 3 zones of 2 nodes of 2
// devices, and one device of weight 0.
func testRing(t testing.TB) *Ring {
	t.Helper()
	b := newBuilder(t, 8, 3, 1)
	for region := 1; region <= 2; region++ {
		for zone := 1; zone <= 3; zone++ {
			for node := 1; node <= 2; node++ {
				for _, name := range []string{"sda", "sdb"} {
					if _, err := b.AddDevice(dev(region, zone, node, name, 1)); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
	}
	if _, err := b.AddDevice(dev(1, 1, 3, "sda", 0)); err != nil {
		t.Fatal(err)
	}
	rebalance(t, b, t0, 1)
	return ringOf(t, b)
}

func TestPartition(t *testing.T) {
	var h objectstore.Hash
	copy(h[:], []byte{0xab, 0xcd, 0xef, 0x01, 0xff})
	for _, tc := range []struct {
		partPower uint
		want      int
	}{
		{1, 1},
		{8, 0xab},
		{10, 0xabcdef01 >> 22},
		{16, 0xabcd},
		{24, 0xabcdef},
	} {
		// Partition needs only the partition power; a ring of 2^24
		// partitions takes seconds to build.
		r := &layout{partPower: tc.partPower}
		if got := r.Partition(h); got != tc.want {
			t.Errorf("partition power %d: got partition %#x, want %#x", tc.partPower, got, tc.want)
		}
		if got := r.Partitions(); got != 1<<tc.partPower {
			t.Errorf("partition power %d: got %d partitions, want %d", tc.partPower, got, 1<<tc.partPower)
		}
	}
	// A real name lands within the ring.
	r := testRing(t)
	if p := r.Partition(objectstore.Hasher{Prefix: "p", Suffix: "s"}.Path("AUTH_a", "c", "o")); p < 0 || p >= r.Partitions() {
		t.Errorf("partition of a name: got %d, want in [0, %d)", p, r.Partitions())
	}
}

func TestNodesAndHandoffs(t *testing.T) {
	r := testRing(t)
	all := r.Devices()
	for p := range r.Partitions() {
		nodes := r.Nodes(p)
		var handoffs []Device
		for d := range r.Handoffs(p) {
			handoffs = append(handoffs, d)
		}
		seen := map[int]bool{}
		for _, d := range slices.Concat(nodes, handoffs) {
			if seen[d.ID] {
				t.Fatalf("partition %d: device %d twice among primaries %v and handoffs", p, d.ID, nodes)
			}
			seen[d.ID] = true
		}
		if len(seen) != len(all) {
			t.Fatalf("partition %d: got %d primaries and handoffs, want all %d devices", p, len(seen), len(all))
		}

		// Handoffs go to new regions, then new zones, then new nodes,
		// as long as there are any; the drained device comes last.
		var used [3]map[string]bool
		for i := range used {
			used[i] = map[string]bool{}
		}
		for _, d := range nodes {
			for i, k := range tierKeys(d) {
				used[i][k] = true
			}
		}
		var reused [3]bool
		for i, d := range handoffs[:len(handoffs)-1] {
			for tier, k := range tierKeys(d) {
				if !used[tier][k] && reused[tier] {
					t.Fatalf("partition %d handoff %d: device %d in a new tier %s after one in a used tier", p, i, d.ID, k)
				}
				reused[tier] = reused[tier] || used[tier][k]
				used[tier][k] = true
			}
		}
		if last := handoffs[len(handoffs)-1]; last.Weight != 0 {
			t.Fatalf("partition %d: last handoff device %d has weight %v, want the one of weight 0", p, last.ID, last.Weight)
		}

		// The order is the same on every walk, and a walk can stop.
		var again []Device
		for d := range r.Handoffs(p) {
			again = append(again, d)
		}
		if !reflect.DeepEqual(again, handoffs) {
			t.Fatalf("partition %d: handoffs differ between walks", p)
		}
		n := 0
		for range r.Handoffs(p) {
			if n++; n == 2 {
				break
			}
		}
		if n != 2 {
			t.Fatalf("partition %d: walked %d handoffs, want to stop at 2", p, n)
		}
	}

	// Different partitions with the same primaries fall back on
	// different devices, so a failure's load spreads.
	first := map[int]bool{}
	for p := range r.Partitions() {
		for d := range r.Handoffs(p) {
			first[d.ID] = true
			break
		}
	}
	if len(first) < len(all)/2 {
		t.Errorf("first handoffs: got %d distinct devices, want at least %d", len(first), len(all)/2)
	}
}

func TestRingConcurrentUse(t *testing.T) {
	r := testRing(t)
	want := slices.Collect(r.Handoffs(7))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for p := range r.Partitions() {
				r.Nodes(p)
				for range r.Handoffs(p) {
				}
			}
			if got := slices.Collect(r.Handoffs(7)); !reflect.DeepEqual(got, want) {
				t.Errorf("handoffs of partition 7 walked concurrently differ")
			}
		})
	}
	wg.Wait()
}

func TestPartitionsOf(t *testing.T) {
	r := testRing(t)
	total := 0
	for _, d := range r.Devices() {
		parts := r.PartitionsOf(d.ID)
		total += len(parts)
		if !slices.IsSorted(parts) {
			t.Errorf("device %d: partitions not in order", d.ID)
		}
		for _, p := range parts {
			if !slices.ContainsFunc(r.Nodes(p), func(n Device) bool { return n.ID == d.ID }) {
				t.Errorf("device %d: got partition %d, whose primaries %v do not include it", d.ID, p, r.Nodes(p))
			}
		}
	}
	if want := r.Replicas() * r.Partitions(); total != want {
		t.Errorf("partitions of all devices: got %d, want %d", total, want)
	}
	if got := r.PartitionsOf(999); got != nil {
		t.Errorf("partitions of no device: got %v, want none", got)
	}
}

func TestRingSaveLoad(t *testing.T) {
	r := testRing(t)
	path := filepath.Join(t.TempDir(), "object.ring.gz")
	if err := r.Save(path); err != nil {
		t.Fatal(err)
	}
	l, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(l.current(), r.current()) {
		t.Fatalf("loaded ring differs from the saved one")
	}
	if l.PartPower() != 8 || l.Replicas() != 3 || !reflect.DeepEqual(l.Devices(), r.Devices()) {
		t.Errorf("loaded ring: got part power %d, %d replicas, devices %v, want 8, 3, %v", l.PartPower(), l.Replicas(), l.Devices(), r.Devices())
	}
	for p := range r.Partitions() {
		if !reflect.DeepEqual(l.Nodes(p), r.Nodes(p)) {
			t.Fatalf("partition %d: got nodes %v, want %v", p, l.Nodes(p), r.Nodes(p))
		}
		if !slices.Equal(slices.Collect(l.Handoffs(p)), slices.Collect(r.Handoffs(p))) {
			t.Fatalf("partition %d: handoffs differ after a load", p)
		}
	}
	// Saving again replaces the file and leaves no temporary file.
	if err := l.Save(path); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("directory after two saves: got %d entries, want 1", len(entries))
	}
}

// TestRingFollowsItsFile: a loaded ring reads its file again once it
// changes, as when a rebalanced ring is copied to the nodes, but keeps
// its layout when the new file is broken or of another partition power.
func TestRingFollowsItsFile(t *testing.T) {
	b := newBuilder(t, 8, 3, 1, dev(0, 1, 1, "d1", 1), dev(0, 2, 1, "d1", 1), dev(0, 3, 1, "d1", 1), dev(0, 4, 1, "d1", 1))
	rebalance(t, b, t0, 1)
	path := filepath.Join(t.TempDir(), "object.ring.gz")
	if err := ringOf(t, b).Save(path); err != nil {
		t.Fatal(err)
	}
	r, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	r.every = time.Millisecond
	r.next.Store(0)
	devices := func() int {
		time.Sleep(2 * r.every)
		return len(r.Devices())
	}

	if _, err := b.AddDevice(dev(0, 5, 1, "d1", 1)); err != nil {
		t.Fatal(err)
	}
	rebalance(t, b, t0.Add(time.Hour), 2)
	rebalanced := ringOf(t, b)
	if err := rebalanced.Save(path); err != nil {
		t.Fatal(err)
	}
	if n := devices(); n != 5 {
		t.Fatalf("devices after the file was rebalanced: got %d, want 5", n)
	}
	if !reflect.DeepEqual(r.Nodes(7), rebalanced.Nodes(7)) {
		t.Errorf("partition 7: got nodes %v, want the new file's %v", r.Nodes(7), rebalanced.Nodes(7))
	}

	other := newBuilder(t, 9, 3, 1, dev(0, 1, 1, "d1", 1), dev(0, 2, 1, "d1", 1), dev(0, 3, 1, "d1", 1))
	rebalance(t, other, t0, 1)
	if err := ringOf(t, other).Save(path); err != nil {
		t.Fatal(err)
	}
	if n := devices(); n != 5 || r.PartPower() != 8 {
		t.Errorf("after a file of another partition power: %d devices, part power %d, want the old 5 and 8", n, r.PartPower())
	}
	if err := os.WriteFile(path, []byte("not a ring"), 0o644); err != nil {
		t.Fatal(err)
	}
	if n := devices(); n != 5 {
		t.Errorf("after a broken file: %d devices, want the old 5", n)
	}
}

func TestLoadBadFiles(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.ring.gz")
	if err := testRing(t).Save(good); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	gz := func(s string) []byte {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		w.Write([]byte(s))
		w.Close()
		return buf.Bytes()
	}
	dev := `{"id":0,"region":0,"zone":1,"ip":"10.0.0.1","port":6200,"device":"d1","weight":1}`
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"truncated", data[:len(data)/2]},
		{"no gzip trailer", data[:len(data)-4]},
		{"corrupt", append(slices.Clone(data[:len(data)-8]), 1, 2, 3, 4, 5, 6, 7, 8)},
		{"not gzip", []byte(`{"version":1}`)},
		{"not JSON", gz("ring")},
		{"wrong version", gz(`{"version":2,"part_power":1,"replicas":1,"devices":[` + dev + `],"assignment":["AAAAAA=="]}`)},
		{"part power 0", gz(`{"version":1,"part_power":0,"replicas":1,"devices":[` + dev + `],"assignment":[""]}`)},
		{"short assignment", gz(`{"version":1,"part_power":2,"replicas":1,"devices":[` + dev + `],"assignment":["AAAAAA=="]}`)},
		{"unknown device", gz(`{"version":1,"part_power":1,"replicas":1,"devices":[` + dev + `],"assignment":["AAABAA=="]}`)},
		{"replicas on one device", gz(`{"version":1,"part_power":1,"replicas":2,"devices":[` + dev + `],"assignment":["AAAAAA==","AAAAAA=="]}`)},
		{"rows not replicas", gz(`{"version":1,"part_power":1,"replicas":2,"devices":[` + dev + `],"assignment":["AAAAAA=="]}`)},
		{"bad device", gz(`{"version":1,"part_power":1,"replicas":1,"devices":[{"id":0,"ip":"10.0.0.1","port":0,"device":"d1"}],"assignment":["AAAAAA=="]}`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			if err := os.WriteFile(path, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := Load(path); err == nil || !strings.Contains(err.Error(), path) {
				t.Errorf("ring: got %v, want an error naming %s", err, path)
			}
			if _, err := LoadBuilder(path); err == nil || !strings.Contains(err.Error(), path) {
				t.Errorf("builder: got %v, want an error naming %s", err, path)
			}
		})
	}
	// The good file loads, so the failures above are the edits'.
	if _, err := Load(good); err != nil {
		t.Errorf("good ring: got %v, want it loaded", err)
	}
	missing := filepath.Join(dir, "missing")
	if _, err := Load(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: got %v, want an error naming %s", err, missing)
	}
}

func TestDeviceAddr(t *testing.T) {
	for _, tc := range []struct{ ip, want string }{
		{"10.0.0.1", "10.0.0.1:6200"},
		{"fd00::1", "[fd00::1]:6200"},
		{"storage-1.example", "storage-1.example:6200"},
	} {
		if got := (Device{IP: tc.ip, Port: 6200}).Addr(); got != tc.want {
			t.Errorf("Addr of %s: got %s, want %s", tc.ip, got, tc.want)
		}
	}
}
