package network

import (
	"fmt"
	"math/big"
	"math/rand/v2"
	"net/netip"
	"sync"

	"github.com/trustack/trustack"
)

// Address management. Addresses are chosen uniformly at random over the
// whole of a subnet's allocation pools, never in sequence: the seed's
// co-residence study located its victims by internal addresses numerically
// close to its own, and random assignment is the defence it proposes. The
// one exception is a network's DHCP server, which says nothing of where
// any server runs: it takes the first free address of each pool, as
// Neutron's, where clients and tests expect it, and out of the way of the
// addresses they choose.

// allocator chooses ports' addresses and MACs from a shared source of
// randomness. It is safe for concurrent use.
type allocator struct {
	mu     *sync.Mutex
	rand   *rand.Rand
	prefix [3]byte
}

// NewAllocator returns the Allocator the service gives its store: random
// addresses, and random MACs under prefix (the first three bytes, with
// the locally administered bit as given: Neutron's fa:16:3e has it set).
// r is used under a lock of the allocator's own.
func NewAllocator(r *rand.Rand, prefix [3]byte) trustack.Allocator {
	return &allocator{mu: new(sync.Mutex), rand: r, prefix: prefix}
}

// probes is how many random draws Address tries to take before it lists
// the free addresses instead. In a subnet less than half full, each draw
// is free with a chance over one half, so 8 all taken is under 1 in 256.
const probes = 8

// Address takes a free address of s's allocation pools, uniformly at
// random among the free ones, or reports ok false when none is left. It
// draws addresses of the pools and tries to take each, which in a subnet
// that is not nearly full succeeds at once; failing that, it lists the
// free ones and draws among them. Either way the address is uniform among
// the free ones.
func (a *allocator) Address(s *trustack.Subnet, space trustack.AddressSpace) (netip.Addr, bool, error) {
	size := poolSize(s.AllocationPools)
	if size.Sign() == 0 {
		return netip.Addr{}, false, nil
	}
	for range probes {
		addr := nthAddress(s.AllocationPools, a.below(size))
		if took, err := space.Take(addr); took || err != nil {
			return addr, took, err
		}
	}
	// Nearly full, or unlucky: listing the free addresses costs no more
	// than the allocated ones.
	return takeListed(space, func(taken map[netip.Addr]bool) (netip.Addr, bool) {
		var free []netip.Addr
		for _, p := range s.AllocationPools {
			for addr := p.Start; addr.IsValid() && addr.Compare(p.End) <= 0; addr = addr.Next() {
				if !taken[addr] {
					free = append(free, addr)
				}
			}
		}
		if len(free) == 0 {
			return netip.Addr{}, false
		}
		return free[a.below(big.NewInt(int64(len(free)))).Int64()], true
	})
}

// takeListed lists the allocated addresses, takes the one choose picks
// among the others, and does it again if another allocation took it
// meanwhile (allocations on a subnet run concurrently); ok false when
// choose finds none. Each time again follows another allocation's
// success, which the next listing shows, so it ends.
func takeListed(space trustack.AddressSpace, choose func(taken map[netip.Addr]bool) (netip.Addr, bool)) (netip.Addr, bool, error) {
	for {
		all, err := space.All()
		if err != nil {
			return netip.Addr{}, false, err
		}
		taken := make(map[netip.Addr]bool, len(all))
		for _, addr := range all {
			taken[addr] = true
		}
		addr, ok := choose(taken)
		if !ok {
			return netip.Addr{}, false, nil
		}
		if took, err := space.Take(addr); took || err != nil {
			return addr, took, err
		}
	}
}

// firstFree is an Allocator that chooses the first free address of a
// subnet's pools, in their order, and MACs as the Allocator it embeds.
type firstFree struct{ trustack.Allocator }

// Address takes the first address of s's pools that is not allocated, or
// reports ok false when none is left. It looks at most at one more
// address than there are allocated.
func (firstFree) Address(s *trustack.Subnet, space trustack.AddressSpace) (netip.Addr, bool, error) {
	return takeListed(space, func(taken map[netip.Addr]bool) (netip.Addr, bool) {
		for _, p := range s.AllocationPools {
			for addr := p.Start; addr.IsValid() && addr.Compare(p.End) <= 0; addr = addr.Next() {
				if !taken[addr] {
					return addr, true
				}
			}
		}
		return netip.Addr{}, false
	})
}

// below returns a uniform random integer in [0, n).
func (a *allocator) below(n *big.Int) *big.Int {
	a.mu.Lock()
	defer a.mu.Unlock()
	if n.IsUint64() {
		return new(big.Int).SetUint64(a.rand.Uint64N(n.Uint64()))
	}
	// An IPv6 pool larger than 2^64: draw as many bits as n has until
	// the number is below n, which each draw is with a chance over 1/2.
	bits := n.BitLen()
	for {
		x := new(big.Int)
		for got := 0; got < bits; got += 64 {
			x.Lsh(x, 64).Or(x, new(big.Int).SetUint64(a.rand.Uint64()))
		}
		x.Rsh(x, uint((bits+63)/64*64-bits))
		if x.Cmp(n) < 0 {
			return x
		}
	}
}

// MAC returns a random MAC address under the allocator's prefix.
func (a *allocator) MAC() string {
	a.mu.Lock()
	v := a.rand.Uint32()
	a.mu.Unlock()
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", a.prefix[0], a.prefix[1], a.prefix[2], byte(v>>16), byte(v>>8), byte(v))
}

// poolSize returns how many addresses the pools hold.
func poolSize(pools []trustack.IPRange) *big.Int {
	n := new(big.Int)
	for _, p := range pools {
		n.Add(n, rangeSize(p))
	}
	return n
}

// rangeSize returns how many addresses a range holds.
func rangeSize(p trustack.IPRange) *big.Int {
	n := new(big.Int).Sub(addrInt(p.End), addrInt(p.Start))
	return n.Add(n, big.NewInt(1))
}

// nthAddress returns the i-th address of the pools, in their order.
func nthAddress(pools []trustack.IPRange, i *big.Int) netip.Addr {
	i = new(big.Int).Set(i)
	for _, p := range pools {
		size := rangeSize(p)
		if i.Cmp(size) < 0 {
			return intAddr(new(big.Int).Add(addrInt(p.Start), i), p.Start.Is4())
		}
		i.Sub(i, size)
	}
	panic("nthAddress: index beyond the pools")
}

// addrInt returns an address as an integer.
func addrInt(a netip.Addr) *big.Int {
	b := a.AsSlice()
	return new(big.Int).SetBytes(b)
}

// intAddr returns the address of an integer, IPv4 if v4.
func intAddr(n *big.Int, v4 bool) netip.Addr {
	if v4 {
		var b [4]byte
		n.FillBytes(b[:])
		return netip.AddrFrom4(b)
	}
	var b [16]byte
	n.FillBytes(b[:])
	return netip.AddrFrom16(b)
}
