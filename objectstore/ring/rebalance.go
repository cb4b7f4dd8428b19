package ring

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/trustack/trustack"
)

// maxBalance is the balance reported when a device of weight 0 still
// holds partitions, as Swift reports it.
const maxBalance = 999.99

// tier is a failure domain: the root holds regions, which hold zones,
// which hold nodes, which hold devices, the leaves.
type tier struct {
	depth    int // 0 for a region, 1 a zone, 2 a node, 3 a device; -1 for the root
	dev      int // a device's index in Builder.devs; -1 for the others
	children []*tier
	capacity int // devices of weight > 0 under it: the most replicas of a partition it can take
	target   int // partition-replicas it should hold
	count    int // partition-replicas it holds
}

func (t *tier) need() int { return t.target - t.count }

// plan is a rebalance under way, on a copy of the builder's assignment.
type plan struct {
	b      *Builder
	rnd    *rand.Rand
	now    uint32 // minutes since the Unix epoch
	root   *tier
	weight float64        // of the devices not removed
	path   [][4]*tier     // by device index: its region, zone, node and leaf; nil if removed
	index  map[uint16]int // device ID → index in Builder.devs
	assign [][]uint16
	moved  []bool // partitions moved in this rebalance, which it moves no further
}

// Rebalance assigns every partition-replica to a device. It returns how
// many it moved, first assignments included, and the balance: the
// largest percentage by which a device's partition-replicas differ from
// its share by weight.
//
// It places the replicas of a partition in different regions first, then
// zones, nodes and devices, as widely as the devices of weight > 0 allow,
// and gives each device partition-replicas in proportion to its weight as
// far as that spread allows: when weight and spread disagree, as when
// there are fewer regions than replicas, spread wins. It moves as few as
// it can: those of removed devices, then one of each partition crowded
// in one place while another has room, then those of devices holding
// more than their share to devices holding less. Except from removed
// devices, it moves at most one replica of a partition, and none of a
// partition that moved less than min_part_hours before now, so that
// replication finds the others where they were.
//
// Ties are broken with rnd, so that a seeded one makes the result
// repeatable; nil uses one seeded from now. It returns an error with code
// EINVALID, and changes nothing, if fewer devices of weight > 0 remain
// than there are replicas.
func (b *Builder) Rebalance(now time.Time, rnd *rand.Rand) (moved int, balance float64, err error) {
	if rnd == nil {
		rnd = rand.New(rand.NewPCG(uint64(now.UnixNano()), 0))
	}
	pl := b.plan(now, rnd)
	if pl.root.capacity < b.replicas {
		return 0, 0, trustack.Errorf(trustack.EINVALID, "rebalance: %d replicas need as many devices of weight > 0, have %d", b.replicas, pl.root.capacity)
	}
	pl.reassign()
	pl.disperse()
	// A pass leaves a device over its target when none of its partitions
	// may go to a device under its own: the pass's moves may have made
	// room, or a move to a device at its target may, whose surplus the
	// next pass moves on.
	for range 16 {
		if pl.shed(0) == 0 && pl.shed(math.MinInt) == 0 {
			break
		}
	}
	if b.lastMoved == nil {
		b.lastMoved = make([]uint32, len(pl.moved))
	}
	for rep, row := range pl.assign {
		for part, id := range row {
			if b.assign == nil || b.assign[rep][part] != id {
				moved++
				b.lastMoved[part] = pl.now
			}
		}
	}
	balance = pl.balance()
	b.assign, b.devs, b.removed = pl.assign, b.Devices(), nil
	return moved, balance, nil
}

// plan builds the tiers of the devices not removed, counts what each
// holds and sets what each should.
func (b *Builder) plan(now time.Time, rnd *rand.Rand) *plan {
	parts := 1 << b.partPower
	pl := &plan{b: b, rnd: rnd, now: uint32(max(0, now.Unix()/60)), root: &tier{depth: -1, dev: -1},
		path: make([][4]*tier, len(b.devs)), index: map[uint16]int{}, assign: make([][]uint16, b.replicas), moved: make([]bool, parts)}
	for rep := range pl.assign {
		pl.assign[rep] = slices.Repeat([]uint16{none}, parts)
		if b.assign != nil {
			copy(pl.assign[rep], b.assign[rep])
		}
	}
	byKey := map[string]*tier{}
	for i, d := range b.devs {
		pl.index[uint16(d.ID)] = i
		if b.removed[d.ID] {
			continue
		}
		pl.weight += d.Weight
		t := pl.root
		for depth, k := range tierKeys(d) {
			if byKey[k] == nil {
				byKey[k] = &tier{depth: depth, dev: -1}
				t.children = append(t.children, byKey[k])
			}
			t, pl.path[i][depth] = byKey[k], byKey[k]
		}
		leaf := &tier{depth: 3, dev: i}
		t.children, pl.path[i][3] = append(t.children, leaf), leaf
		if d.Weight > 0 {
			for _, t := range append(pl.path[i][:], pl.root) {
				t.capacity++
			}
		}
	}
	for _, row := range pl.assign {
		for _, id := range row {
			if id != none {
				pl.add(pl.index[id], 1)
			}
		}
	}
	pl.setTargets()
	return pl
}

// add adds n to the counts of device i and the tiers holding it.
func (pl *plan) add(i, n int) {
	if pl.path[i][0] != nil {
		for _, t := range append(pl.path[i][:], pl.root) {
			t.count += n
		}
	}
}

// set assigns a partition's replica to device i, or to none if i < 0.
func (pl *plan) set(rep, part, i int) {
	if old := pl.assign[rep][part]; old != none {
		pl.add(pl.index[old], -1)
	}
	pl.assign[rep][part] = none
	if i >= 0 {
		pl.assign[rep][part] = uint16(pl.b.devs[i].ID)
		pl.add(i, 1)
	}
}

// holders returns the devices holding a partition's replicas.
func (pl *plan) holders(part int) []int {
	var hs []int
	for _, row := range pl.assign {
		if row[part] != none {
			hs = append(hs, pl.index[row[part]])
		}
	}
	return hs
}

// movable reports whether a partition may move in this rebalance.
func (pl *plan) movable(part int) bool {
	return !pl.moved[part] && (pl.b.lastMoved == nil || pl.b.minPartHours == 0 ||
		int64(pl.now)-int64(pl.b.lastMoved[part]) >= int64(pl.b.minPartHours)*60)
}

// inFlight reports whether a replica is moving in this rebalance, so that
// placing it again costs no further move.
func (pl *plan) inFlight(rep, part int) bool {
	return pl.b.assign == nil || pl.b.assign[rep][part] != pl.assign[rep][part]
}

// setTargets sets how many partition-replicas each tier should hold: the
// devices' shares by weight, rounded by largest remainder, preferring the
// devices that hold more, so as to move less.
func (pl *plan) setTargets() {
	left := pl.b.replicas * len(pl.moved)
	var order []int
	for i, path := range pl.path {
		if path[3] != nil {
			path[3].target = int(pl.share(i))
			left -= path[3].target
			order = append(order, i)
		}
	}
	frac := func(i int) float64 { return math.Round((pl.share(i) - math.Floor(pl.share(i))) * 1e6) }
	slices.SortFunc(order, func(a, b int) int {
		return cmp.Or(cmp.Compare(frac(b), frac(a)), cmp.Compare(pl.path[b][3].count, pl.path[a][3].count), a-b)
	})
	for _, i := range order[:left] {
		pl.path[i][3].target++
	}
	for _, i := range order {
		for _, t := range append(pl.path[i][:3:3], pl.root) {
			t.target += pl.path[i][3].target
		}
	}
}

// place returns the device for another replica of a partition: going
// down the tiers, the child holding fewest of its replicas that has room
// for one more, of those the furthest below its target, of those one at
// random.
func (pl *plan) place(part int) int {
	hs := pl.holders(part)
	t := pl.root
	for t.dev < 0 {
		var best *tier
		bestN, ties := 0, 0
		for _, c := range t.children {
			n, full := 0, 0
			for _, h := range hs {
				if pl.path[h][c.depth] == c {
					n, full = n+1, full+pl.path[h][3].capacity
				}
			}
			switch {
			case full >= c.capacity:
			case best == nil || n < bestN || n == bestN && c.need() > best.need():
				best, bestN, ties = c, n, 1
			case n == bestN && c.need() == best.need():
				if ties++; pl.rnd.IntN(ties) == 0 {
					best = c
				}
			}
		}
		t = best
	}
	return t.dev
}

// move places a partition's replica anew.
func (pl *plan) move(rep, part int) {
	pl.set(rep, part, -1)
	pl.set(rep, part, pl.place(part))
	pl.moved[part] = true
}

// reassign places the replicas not yet assigned and those of removed
// devices.
func (pl *plan) reassign() {
	var slots [][2]int
	for rep, row := range pl.assign {
		for part, id := range row {
			if id == none || pl.b.removed[int(id)] {
				slots = append(slots, [2]int{rep, part})
				pl.set(rep, part, -1)
			}
		}
	}
	pl.rnd.Shuffle(len(slots), func(i, j int) { slots[i], slots[j] = slots[j], slots[i] })
	for _, s := range slots {
		pl.move(s[0], s[1])
	}
}

// disperse moves, of each movable partition, a replica that place would
// put where fewer of the others share its region, or else its zone, or
// else its node.
func (pl *plan) disperse() {
	for part := range pl.moved {
		for rep, row := range pl.assign {
			if !pl.movable(part) {
				break
			}
			from := pl.index[row[part]]
			crowding := pl.crowding(part, from)
			pl.set(rep, part, -1)
			to := pl.place(part)
			if pl.crowding(part, to) >= crowding {
				to = from
			}
			pl.set(rep, part, to)
			pl.moved[part] = to != from
		}
	}
}

// crowding returns how many of the replicas of a partition on other
// devices than i share its region, zone and node, as one number that
// orders those counts widest first.
func (pl *plan) crowding(part, i int) (n int) {
	hs := pl.holders(part)
	for depth := range 3 {
		n *= len(pl.assign) + 1
		for _, h := range hs {
			if h != i && pl.path[h][depth] == pl.path[i][depth] {
				n++
			}
		}
	}
	return n
}

// shed moves replicas off the devices holding more than their target to
// where place would put them, if that device's need is above floor and,
// unless the first has weight 0, above the first's once the replica is
// off it, so that the needs draw closer: first replicas moving in this
// rebalance, which can change course for free, then those of movable
// partitions. It returns how many it moved.
func (pl *plan) shed(floor int) (moved int) {
	over := make([][2][][2]int, len(pl.b.devs)) // by device, replicas in flight and not
	for rep, row := range pl.assign {
		for part, id := range row {
			if i := pl.index[id]; pl.path[i][3].need() < 0 {
				if pl.inFlight(rep, part) {
					over[i][0] = append(over[i][0], [2]int{rep, part})
				} else if pl.movable(part) {
					over[i][1] = append(over[i][1], [2]int{rep, part})
				}
			}
		}
	}
	for i := range over {
		for _, slots := range over[i] {
			pl.rnd.Shuffle(len(slots), func(i, j int) { slots[i], slots[j] = slots[j], slots[i] })
			for _, s := range slots {
				if pl.path[i][3].need() >= 0 {
					break
				}
				if rep, part := s[0], s[1]; pl.inFlight(rep, part) || !pl.moved[part] {
					pl.set(rep, part, -1)
					to := pl.place(part)
					if n := pl.path[to][3].need(); n <= floor || n <= pl.path[i][3].need() && pl.path[i][3].capacity > 0 {
						to = i
					}
					pl.set(rep, part, to)
					if to != i {
						pl.moved[part] = true
						moved++
					}
				}
			}
		}
	}
	return moved
}

// share returns device i's share of partition-replicas by weight.
func (pl *plan) share(i int) float64 {
	return float64(pl.b.replicas*len(pl.moved)) * pl.b.devs[i].Weight / pl.weight
}

// balance returns the largest percentage by which a device's
// partition-replicas differ from its share by weight.
func (pl *plan) balance() (worst float64) {
	for i, path := range pl.path {
		switch share := pl.share(i); {
		case path[3] == nil:
		case share > 0:
			worst = max(worst, 100*math.Abs(float64(path[3].count)-share)/share)
		case path[3].count > 0:
			return maxBalance
		}
	}
	return min(worst, maxBalance)
}
