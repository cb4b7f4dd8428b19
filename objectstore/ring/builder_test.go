package ring

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/trustack/trustack"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// dev returns a device of a node numbered within a zone.
func dev(region, zone, node int, name string, weight float64) Device {
	return Device{Region: region, Zone: zone, IP: fmt.Sprintf("10.%d.%d.%d", region, zone, node), Port: 6200, Device: name, Weight: weight}
}

func newBuilder(t testing.TB, partPower uint, replicas, minPartHours int, devs ...Device) *Builder {
	t.Helper()
	b, err := NewBuilder(partPower, replicas, minPartHours)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range devs {
		if _, err := b.AddDevice(d); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

func rebalance(t testing.TB, b *Builder, now time.Time, seed uint64) (int, float64) {
	t.Helper()
	moved, balance, err := b.Rebalance(now, rand.New(rand.NewPCG(seed, 0)))
	if err != nil {
		t.Fatal(err)
	}
	return moved, balance
}

func ringOf(t testing.TB, b *Builder) *Ring {
	t.Helper()
	r, err := b.Ring()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// primaries returns each partition's primary device IDs, checking that
// no two are the same and that they span want zones.
func primaries(t testing.TB, r *Ring, wantZones int) [][]int {
	t.Helper()
	out := make([][]int, r.Partitions())
	for p := range out {
		ids, zones := map[int]bool{}, map[[2]int]bool{}
		for _, d := range r.Nodes(p) {
			out[p] = append(out[p], d.ID)
			ids[d.ID] = true
			zones[[2]int{d.Region, d.Zone}] = true
		}
		if len(ids) != r.Replicas() {
			t.Fatalf("partition %d on devices %v: got %d distinct, want %d", p, out[p], len(ids), r.Replicas())
		}
		if len(zones) != wantZones {
			t.Fatalf("partition %d on devices %v: got %d zones, want %d", p, out[p], len(zones), wantZones)
		}
	}
	return out
}

// counts returns how many partition-replicas each device holds.
func counts(assign [][]int) map[int]int {
	n := map[int]int{}
	for _, ids := range assign {
		for _, id := range ids {
			n[id]++
		}
	}
	return n
}

// changes returns how many partition-replicas moved between two
// assignments, failing if any partition moved more than one.
func changes(t testing.TB, before, after [][]int) (moved int, to map[int]int) {
	t.Helper()
	to = map[int]int{}
	for p := range before {
		n := 0
		for rep, id := range after[p] {
			if before[p][rep] != id {
				n++
				to[id]++
			}
		}
		if n > 1 {
			t.Errorf("partition %d: %d replicas moved at once, from %v to %v", p, n, before[p], after[p])
		}
		moved += n
	}
	return moved, to
}

func TestRebalanceSpreadsEqualDevices(t *testing.T) {
	b := newBuilder(t, 10, 3, 1, dev(0, 1, 1, "d1", 1), dev(0, 2, 1, "d1", 1), dev(0, 3, 1, "d1", 1), dev(0, 4, 1, "d1", 1))
	moved, balance := rebalance(t, b, t0, 1)
	if moved != 3*1024 {
		t.Errorf("moved: got %d, want %d, every partition-replica's first assignment", moved, 3*1024)
	}
	n := counts(primaries(t, ringOf(t, b), 3))
	for id := range 4 {
		if n[id] < 767 || n[id] > 769 {
			t.Errorf("device %d: got %d partition-replicas, want 768 ± 1", id, n[id])
		}
	}
	if balance > 0.2 {
		t.Errorf("balance: got %.2f%%, want at most 0.2%%", balance)
	}
}

func TestRebalanceAddDevice(t *testing.T) {
	b := newBuilder(t, 10, 3, 1, dev(0, 1, 1, "d1", 1), dev(0, 2, 1, "d1", 1), dev(0, 3, 1, "d1", 1), dev(0, 4, 1, "d1", 1))
	rebalance(t, b, t0, 1)
	before := primaries(t, ringOf(t, b), 3)
	id, err := b.AddDevice(dev(0, 5, 1, "d1", 1))
	if err != nil {
		t.Fatal(err)
	}

	now := t0.Add(time.Hour)
	moved, balance := rebalance(t, b, now, 2)
	after := primaries(t, ringOf(t, b), 3)
	const share = 3 * 1024 / 5.0
	if float64(moved) < share*0.97 || float64(moved) > share*1.1 {
		t.Errorf("moved: got %d, want about %.0f", moved, share)
	}
	n, to := changes(t, before, after)
	if n != moved {
		t.Errorf("moved: got %d reported, %d seen", moved, n)
	}
	if to[id] != n {
		t.Errorf("moved to the new device: got %d of %d, want all", to[id], n)
	}
	for id, n := range counts(after) {
		if math.Abs(float64(n)-share) > share/100 {
			t.Errorf("device %d: got %d partition-replicas, want %.0f ± 1%%", id, n, share)
		}
	}
	if balance > 1 {
		t.Errorf("balance: got %.2f%%, want at most 1%%", balance)
	}

	moved, _ = rebalance(t, b, now, 3)
	if moved != 0 {
		t.Errorf("moved by a second rebalance: got %d, want 0", moved)
	}
}

func TestRebalanceRespectsMinPartHours(t *testing.T) {
	b := newBuilder(t, 8, 3, 24, dev(0, 1, 1, "d1", 1), dev(0, 2, 1, "d1", 1), dev(0, 3, 1, "d1", 1), dev(0, 4, 1, "d1", 1))
	rebalance(t, b, t0, 1)

	// A device added within min_part_hours of the first assignment gets
	// nothing: every partition moved then.
	added, err := b.AddDevice(dev(0, 5, 1, "d1", 1))
	if err != nil {
		t.Fatal(err)
	}
	if moved, _ := rebalance(t, b, t0.Add(24*time.Hour-time.Minute), 2); moved != 0 {
		t.Errorf("moved a minute before min_part_hours: got %d, want 0", moved)
	}
	if got := len(ringOf(t, b).PartitionsOf(added)); got != 0 {
		t.Errorf("added device: got %d partitions, want 0", got)
	}
	now := t0.Add(24 * time.Hour)
	if moved, _ := rebalance(t, b, now, 3); moved == 0 {
		t.Errorf("moved once min_part_hours passed: got 0, want some")
	}
	if moved, _ := rebalance(t, b, now, 4); moved != 0 {
		t.Errorf("moved by a second rebalance right after: got %d, want 0", moved)
	}

	// A removed device's partitions move all the same, and only they,
	// even those that moved less than min_part_hours ago.
	before := primaries(t, ringOf(t, b), 3)
	if err := b.RemoveDevice(added); err != nil {
		t.Fatal(err)
	}
	moved, _ := rebalance(t, b, now.Add(time.Hour), 5)
	after := primaries(t, ringOf(t, b), 3)
	held := counts(before)[added]
	if moved != held {
		t.Errorf("moved after removing a device: got %d, want its %d", moved, held)
	}
	if n, _ := changes(t, before, after); n != held {
		t.Errorf("moved after removing a device: got %d seen, want %d", n, held)
	}
}

func TestRebalanceMovesOneReplicaAtATime(t *testing.T) {
	// Doubling 3 devices to 6 would move half of every partition's 3
	// replicas; a rebalance moves one of each partition, so that two
	// replicas always stay where they were, and the next one the rest.
	b := newBuilder(t, 8, 3, 1, dev(0, 1, 1, "d1", 1), dev(0, 2, 1, "d1", 1), dev(0, 3, 1, "d1", 1))
	rebalance(t, b, t0, 1)
	for zone := 4; zone <= 6; zone++ {
		if _, err := b.AddDevice(dev(0, zone, 1, "d1", 1)); err != nil {
			t.Fatal(err)
		}
	}
	before := primaries(t, ringOf(t, b), 3)
	moved, _ := rebalance(t, b, t0.Add(time.Hour), 2)
	after := primaries(t, ringOf(t, b), 3)
	if n, _ := changes(t, before, after); moved != n || moved > 256 {
		t.Errorf("moved: got %d reported, %d seen, want at most one replica of each of 256 partitions", moved, n)
	}
	if moved, _ := rebalance(t, b, t0.Add(time.Hour), 3); moved != 0 {
		t.Errorf("moved again within min_part_hours: got %d, want 0", moved)
	}
	_, balance := rebalance(t, b, t0.Add(2*time.Hour), 4)
	for id, n := range counts(primaries(t, ringOf(t, b), 3)) {
		if n != 128 {
			t.Errorf("device %d after two rebalances: got %d partition-replicas, want 128", id, n)
		}
	}
	if balance != 0 {
		t.Errorf("balance: got %.2f%%, want 0", balance)
	}
}

func TestRemoveDevice(t *testing.T) {
	b := newBuilder(t, 10, 3, 1)
	for zone := 1; zone <= 5; zone++ {
		for node := 1; node <= 2; node++ {
			if _, err := b.AddDevice(dev(0, zone, node, "d1", 1)); err != nil {
				t.Fatal(err)
			}
		}
	}
	rebalance(t, b, t0, 1)
	before := primaries(t, ringOf(t, b), 3)
	const gone = 4
	if err := b.RemoveDevice(gone); err != nil {
		t.Fatal(err)
	}
	if r := ringOf(t, b); len(r.PartitionsOf(gone)) != counts(before)[gone] {
		t.Errorf("ring before the rebalance: got %d partitions on the removed device, want %d still", len(r.PartitionsOf(gone)), counts(before)[gone])
	}

	moved, balance := rebalance(t, b, t0.Add(time.Hour), 2)
	r := ringOf(t, b)
	after := primaries(t, r, 3)
	if want := counts(before)[gone]; moved != want {
		t.Errorf("moved: got %d, want the removed device's %d", moved, want)
	}
	for p := range before {
		for rep, id := range before[p] {
			if id != gone && after[p][rep] != id {
				t.Errorf("partition %d replica %d: moved from device %d to %d, want only the removed device's to move", p, rep, id, after[p][rep])
			}
		}
	}
	for _, d := range r.Devices() {
		if d.ID == gone {
			t.Errorf("ring devices: got removed device %d, want it gone", gone)
		}
	}
	for _, d := range b.Devices() {
		if d.ID == gone {
			t.Errorf("builder devices: got removed device %d, want it gone", gone)
		}
	}
	if balance > 2 {
		t.Errorf("balance: got %.2f%%, want at most 2%%", balance)
	}
}

func TestRebalanceWeights(t *testing.T) {
	b := newBuilder(t, 10, 3, 1)
	for zone := 1; zone <= 6; zone++ {
		w := 1.0
		if zone == 1 {
			w = 2
		}
		if _, err := b.AddDevice(dev(0, zone, 1, "d1", w)); err != nil {
			t.Fatal(err)
		}
	}
	_, balance := rebalance(t, b, t0, 1)
	n := counts(primaries(t, ringOf(t, b), 3))
	for id := 1; id < 6; id++ {
		if ratio := float64(n[0]) / float64(n[id]); math.Abs(ratio-2) > 0.02 {
			t.Errorf("device 0 of weight 2 holds %d, device %d of weight 1 holds %d: got ratio %.3f, want 2", n[0], id, n[id], ratio)
		}
	}
	if balance > 1 {
		t.Errorf("balance: got %.2f%%, want at most 1%%", balance)
	}

	// Doubling another device's weight later gives it twice the share too.
	// It moves no more than that device's gain, and no two replicas of a
	// partition at once.
	if err := b.SetWeight(3, 2); err != nil {
		t.Fatal(err)
	}
	before := primaries(t, ringOf(t, b), 3)
	moved, _ := rebalance(t, b, t0.Add(time.Hour), 2)
	after := primaries(t, ringOf(t, b), 3)
	changes(t, before, after)
	n = counts(after)
	want := 3 * 1024 * 2 / 8.0
	if math.Abs(float64(n[3])-want) > want/100 {
		t.Errorf("device 3 reweighted to 2: got %d, want %.0f ± 1%%", n[3], want)
	}
	if gain := n[3] - counts(before)[3]; moved > gain+gain/20 {
		t.Errorf("moved: got %d, want about device 3's gain of %d", moved, gain)
	}
}

func TestRebalanceWeightZeroDrains(t *testing.T) {
	b := newBuilder(t, 8, 3, 1, dev(0, 1, 1, "d1", 1), dev(0, 2, 1, "d1", 1), dev(0, 3, 1, "d1", 1), dev(0, 4, 1, "d1", 1))
	rebalance(t, b, t0, 1)
	if err := b.SetWeight(2, 0); err != nil {
		t.Fatal(err)
	}
	if moved, _ := rebalance(t, b, t0, 2); moved != 0 {
		t.Errorf("moved within min_part_hours: got %d, want 0", moved)
	}
	_, balance := rebalance(t, b, t0.Add(time.Hour), 3)
	r := ringOf(t, b)
	if got := r.PartitionsOf(2); len(got) != 0 {
		t.Errorf("device of weight 0: got %d partitions, want none", len(got))
	}
	primaries(t, r, 3)
	if balance > 1 {
		t.Errorf("balance: got %.2f%%, want at most 1%%", balance)
	}
}

func TestRebalanceDrainsThroughOtherDevices(t *testing.T) {
	// Draining a device of region 1 while a device joins region 2: the
	// partitions alone in region 1 on the drained device must stay in
	// region 1, where every device holds its share, so others there make
	// room by moving partitions to the new device.
	b := newBuilder(t, 10, 3, 1)
	for region := 1; region <= 2; region++ {
		for zone := 1; zone <= 2; zone++ {
			for node := 1; node <= 2; node++ {
				if _, err := b.AddDevice(dev(region, zone, node, "d1", 1)); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	rebalance(t, b, t0, 1)
	if err := b.SetWeight(0, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := b.AddDevice(dev(2, 3, 1, "d1", 1)); err != nil {
		t.Fatal(err)
	}
	moved, balance := rebalance(t, b, t0.Add(time.Hour), 2)
	r := ringOf(t, b)
	if got := len(r.PartitionsOf(0)); got != 0 {
		t.Errorf("drained device: got %d partitions, want 0", got)
	}
	// Its 384 partition-replicas move once each, and the ones that stay
	// in region 1 push one other each to the new device.
	if moved < 384 || moved > 2*384 {
		t.Errorf("moved: got %d, want 384 to 768", moved)
	}
	for p := range r.Partitions() {
		if regions := map[int]bool{r.Nodes(p)[0].Region: true, r.Nodes(p)[1].Region: true, r.Nodes(p)[2].Region: true}; len(regions) != 2 {
			t.Fatalf("partition %d: got regions %v, want both", p, regions)
		}
	}
	if balance > 1 {
		t.Errorf("balance: got %.2f%%, want at most 1%%", balance)
	}
}

func TestRebalanceFewerZonesThanReplicas(t *testing.T) {
	b := newBuilder(t, 10, 3, 1, dev(0, 1, 1, "d1", 1), dev(0, 1, 2, "d1", 1), dev(0, 2, 1, "d1", 1), dev(0, 2, 2, "d1", 1))
	_, balance := rebalance(t, b, t0, 1)
	for id, n := range counts(primaries(t, ringOf(t, b), 2)) {
		if n < 760 || n > 776 {
			t.Errorf("device %d: got %d partition-replicas, want 768 ± 1%%", id, n)
		}
	}
	if balance > 1 {
		t.Errorf("balance: got %.2f%%, want at most 1%%", balance)
	}
}

func TestRebalanceSpreadsToNewZone(t *testing.T) {
	// With 2 zones, every partition has two replicas in one of them; a
	// third zone takes one of those from every partition, whatever its
	// weight says, and only one replica of each partition moves.
	b := newBuilder(t, 8, 3, 1, dev(0, 1, 1, "d1", 1), dev(0, 1, 2, "d1", 1), dev(0, 2, 1, "d1", 1), dev(0, 2, 2, "d1", 1))
	rebalance(t, b, t0, 1)
	before := primaries(t, ringOf(t, b), 2)
	id, err := b.AddDevice(dev(0, 3, 1, "d1", 1))
	if err != nil {
		t.Fatal(err)
	}
	moved, _ := rebalance(t, b, t0.Add(time.Hour), 2)
	after := primaries(t, ringOf(t, b), 3)
	if moved != 256 {
		t.Errorf("moved: got %d, want one replica of each of the 256 partitions", moved)
	}
	if n, to := changes(t, before, after); to[id] != n {
		t.Errorf("moved to the new zone: got %d of %d, want all", to[id], n)
	}
}

func TestRebalanceSpreadsRegionsFirst(t *testing.T) {
	// Region 1 has many devices, region 2 a few: every partition still has
	// a replica in each region, and two zones of region 1 share the rest.
	b := newBuilder(t, 8, 3, 1)
	for zone := 1; zone <= 4; zone++ {
		for node := 1; node <= 2; node++ {
			for _, name := range []string{"d1", "d2"} {
				if _, err := b.AddDevice(dev(1, zone, node, name, 1)); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if _, err := b.AddDevice(dev(2, 1, 1, "d1", 1)); err != nil {
		t.Fatal(err)
	}
	rebalance(t, b, t0, 1)
	r := ringOf(t, b)
	for p := range r.Partitions() {
		regions := map[int]bool{}
		for _, d := range r.Nodes(p) {
			regions[d.Region] = true
		}
		if len(regions) != 2 {
			t.Fatalf("partition %d: got regions %v, want both", p, regions)
		}
	}
	primaries(t, r, 3)
}

func TestRebalanceNeedsDevices(t *testing.T) {
	b := newBuilder(t, 8, 3, 1, dev(0, 1, 1, "d1", 1), dev(0, 2, 1, "d1", 1), dev(0, 3, 1, "d1", 0))
	if _, _, err := b.Rebalance(t0, nil); trustack.ErrorCode(err) != trustack.EINVALID {
		t.Errorf("rebalance with 2 weighted devices for 3 replicas: got %v, want code %s", err, trustack.EINVALID)
	}
	if _, err := b.Ring(); trustack.ErrorCode(err) != trustack.ECONFLICT {
		t.Errorf("ring before a rebalance: got %v, want code %s", err, trustack.ECONFLICT)
	}
}

func TestBuilderBadInput(t *testing.T) {
	for _, tc := range []struct {
		name               string
		partPower          uint
		replicas, minHours int
	}{
		{"part power 0", 0, 3, 1},
		{"part power too large", MaxPartPower + 1, 3, 1},
		{"no replicas", 10, 0, 1},
		{"negative min_part_hours", 10, 3, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewBuilder(tc.partPower, tc.replicas, tc.minHours); trustack.ErrorCode(err) != trustack.EINVALID {
				t.Errorf("got %v, want code %s", err, trustack.EINVALID)
			}
		})
	}

	b := newBuilder(t, 8, 3, 1, dev(0, 1, 1, "d1", 1))
	good := dev(0, 2, 1, "d1", 1)
	for _, tc := range []struct {
		name string
		edit func(*Device)
		code string
	}{
		{"negative weight", func(d *Device) { d.Weight = -1 }, trustack.EINVALID},
		{"NaN weight", func(d *Device) { d.Weight = math.NaN() }, trustack.EINVALID},
		{"no device name", func(d *Device) { d.Device = "" }, trustack.EINVALID},
		{"device name a path", func(d *Device) { d.Device = "a/b" }, trustack.EINVALID},
		{"device name dot-dot", func(d *Device) { d.Device = ".." }, trustack.EINVALID},
		{"no IP", func(d *Device) { d.IP = "" }, trustack.EINVALID},
		{"port 0", func(d *Device) { d.Port = 0 }, trustack.EINVALID},
		{"port too large", func(d *Device) { d.Port = 65536 }, trustack.EINVALID},
		{"negative zone", func(d *Device) { d.Zone = -1 }, trustack.EINVALID},
		{"duplicate", func(d *Device) { d.Zone, d.IP = 1, "10.0.1.1" }, trustack.ECONFLICT},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := good
			tc.edit(&d)
			if _, err := b.AddDevice(d); trustack.ErrorCode(err) != tc.code {
				t.Errorf("got %v, want code %s", err, tc.code)
			}
		})
	}
	if got := len(b.Devices()); got != 1 {
		t.Errorf("devices after bad adds: got %d, want 1", got)
	}
	if id, err := b.AddDevice(good); err != nil || id != 1 {
		t.Errorf("add a good device: got ID %d, %v, want 1, nil", id, err)
	}

	if err := b.SetWeight(7, 1); trustack.ErrorCode(err) != trustack.ENOTFOUND {
		t.Errorf("set weight of no device: got %v, want code %s", err, trustack.ENOTFOUND)
	}
	if err := b.SetWeight(0, -2); trustack.ErrorCode(err) != trustack.EINVALID {
		t.Errorf("set negative weight: got %v, want code %s", err, trustack.EINVALID)
	}
	if got := b.Devices()[0].Weight; got != 1 {
		t.Errorf("weight after a bad set: got %v, want 1", got)
	}
	if err := b.RemoveDevice(7); trustack.ErrorCode(err) != trustack.ENOTFOUND {
		t.Errorf("remove no device: got %v, want code %s", err, trustack.ENOTFOUND)
	}
	if err := b.RemoveDevice(0); err != nil {
		t.Fatal(err)
	}
	if err := b.RemoveDevice(0); trustack.ErrorCode(err) != trustack.ENOTFOUND {
		t.Errorf("remove a device twice: got %v, want code %s", err, trustack.ENOTFOUND)
	}
	if err := b.SetWeight(0, 1); trustack.ErrorCode(err) != trustack.ENOTFOUND {
		t.Errorf("set weight of a removed device: got %v, want code %s", err, trustack.ENOTFOUND)
	}
	// IDs are never reused, even of a removed device.
	if id, err := b.AddDevice(dev(0, 3, 1, "d1", 1)); err != nil || id != 2 {
		t.Errorf("add after a removal: got ID %d, %v, want 2, nil", id, err)
	}
}

func TestBuilderSaveLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "object.builder")
	b := newBuilder(t, 8, 3, 2, dev(0, 1, 1, "d1", 1), dev(0, 2, 1, "d1", 1), dev(0, 3, 1, "d1", 1), dev(0, 4, 1, "d1", 1))
	rebalance(t, b, t0, 1)
	if _, err := b.AddDevice(dev(0, 5, 1, "d1", 1)); err != nil {
		t.Fatal(err)
	}
	if err := b.RemoveDevice(1); err != nil {
		t.Fatal(err)
	}
	if err := b.Save(path); err != nil {
		t.Fatal(err)
	}
	c, err := LoadBuilder(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, b) {
		t.Fatalf("loaded builder: got %+v, want %+v", c, b)
	}

	// The loaded builder remembers when partitions moved and which device
	// is removed: it moves only the removed device's partitions now, and
	// exactly as the original does.
	held := len(ringOf(t, b).PartitionsOf(1))
	movedB, _ := rebalance(t, b, t0.Add(time.Hour), 2)
	movedC, _ := rebalance(t, c, t0.Add(time.Hour), 2)
	if movedC != held || movedB != movedC {
		t.Errorf("moved by the loaded builder: got %d, want %d as the original and the removed device's %d", movedC, movedB, held)
	}
	if !reflect.DeepEqual(c, b) {
		t.Errorf("rebalanced loaded builder differs from the rebalanced original")
	}
	if _, err := c.AddDevice(dev(0, 6, 1, "d1", 1)); err != nil {
		t.Fatal(err)
	}
	if got := c.Devices()[len(c.Devices())-1].ID; got != 5 {
		t.Errorf("next ID after a load: got %d, want 5", got)
	}

	// A builder never rebalanced round trips too.
	empty := newBuilder(t, 8, 3, 2, dev(0, 1, 1, "d1", 1))
	if err := empty.Save(path); err != nil {
		t.Fatal(err)
	}
	if c, err := LoadBuilder(path); err != nil || !reflect.DeepEqual(c, empty) {
		t.Errorf("loaded empty builder: got %+v, %v, want %+v", c, err, empty)
	}
}

// TestSetAddress checks that a device moved to another address keeps its
// partitions, and that two devices cannot share an address and a name.
func TestSetAddress(t *testing.T) {
	b := newBuilder(t, 8, 3, 1, dev(0, 1, 1, "d1", 1), dev(0, 2, 1, "d1", 1), dev(0, 3, 1, "d1", 1), dev(0, 4, 1, "d1", 1))
	rebalance(t, b, t0, 1)
	before := primaries(t, ringOf(t, b), 3)
	if err := b.SetAddress(2, "127.0.0.1", 7000); err != nil {
		t.Fatal(err)
	}
	r := ringOf(t, b)
	if after := primaries(t, r, 3); !reflect.DeepEqual(before, after) {
		t.Error("partitions moved when a device's address changed")
	}
	for _, d := range r.Devices() {
		if d.ID == 2 && d.Addr() != "127.0.0.1:7000" {
			t.Errorf("device 2 at %s, want 127.0.0.1:7000", d.Addr())
		}
	}
	if err := b.SetAddress(3, "127.0.0.1", 7000); trustack.ErrorCode(err) != trustack.ECONFLICT {
		t.Errorf("a second device on 127.0.0.1:7000 named d1: got %v, want a conflict", err)
	}
	if err := b.SetAddress(3, "127.0.0.1", 0); trustack.ErrorCode(err) != trustack.EINVALID {
		t.Errorf("port 0: got %v, want invalid", err)
	}
	if err := b.SetAddress(9, "127.0.0.1", 7001); trustack.ErrorCode(err) != trustack.ENOTFOUND {
		t.Errorf("no device 9: got %v, want not found", err)
	}
}
