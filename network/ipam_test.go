package network

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/trustack/trustack"
)

// space is an AddressSpace over a set, for the allocator alone.
type space map[netip.Addr]bool

func (s space) Take(a netip.Addr) (bool, error) {
	if s[a] {
		return false, nil
	}
	s[a] = true
	return true, nil
}
func (s space) All() ([]netip.Addr, error) {
	var out []netip.Addr
	for a := range s {
		out = append(out, a)
	}
	return out, nil
}

func subnet(cidr string, pools ...string) *trustack.Subnet {
	p := netip.MustParsePrefix(cidr)
	sn := &trustack.Subnet{CIDR: p, Gateway: p.Addr().Next()}
	for i := 0; i+1 < len(pools); i += 2 {
		sn.AllocationPools = append(sn.AllocationPools, trustack.IPRange{Start: netip.MustParseAddr(pools[i]), End: netip.MustParseAddr(pools[i+1])})
	}
	if len(pools) == 0 {
		sn.AllocationPools = defaultPools(p, sn.Gateway)
	}
	return sn
}

// TestAddressesFillThePoolsAtRandom allocates every address of pools in
// two ranges: each comes once, all lie in the pools, the pools are
// exhausted at the end, and the order is not the addresses' order.
func TestAddressesFillThePoolsAtRandom(t *testing.T) {
	a := NewAllocator(rand.New(rand.NewPCG(1, 2)), [3]byte{0xfa, 0x16, 0x3e})
	sn := subnet("10.0.0.0/24", "10.0.0.10", "10.0.0.59", "10.0.0.100", "10.0.0.149")
	taken := space{}
	var order []netip.Addr
	for range 100 {
		before := len(taken)
		addr, ok, err := a.Address(sn, taken)
		if err != nil || !ok {
			t.Fatalf("allocation %d: got ok %v, %v; want an address", len(order), ok, err)
		}
		if len(taken) != before+1 || !taken[addr] {
			t.Fatalf("allocating %s took %d addresses, want it alone", addr, len(taken)-before)
		}
		in := false
		for _, p := range sn.AllocationPools {
			in = in || p.Start.Compare(addr) <= 0 && addr.Compare(p.End) <= 0
		}
		if !in {
			t.Fatalf("%s is outside the pools", addr)
		}
		order = append(order, addr)
	}
	if _, ok, err := a.Address(sn, taken); ok || err != nil {
		t.Errorf("with the pools full: got ok %v, %v; want none left", ok, err)
	}
	adjacent := 0
	for i := 1; i < len(order); i++ {
		if order[i] == order[i-1].Next() || order[i] == order[i-1].Prev() {
			adjacent++
		}
	}
	// By chance, about 2 of 99 consecutive pairs are neighbours.
	if adjacent > 10 {
		t.Errorf("%d of 99 consecutive allocations are neighbours, want few, as chance gives", adjacent)
	}
}

// TestAddressesOfLargeIPv6Pools draws from a /64, whose pool is larger
// than 2^64 can count, and stays inside it.
func TestAddressesOfLargeIPv6Pools(t *testing.T) {
	a := NewAllocator(rand.New(rand.NewPCG(3, 4)), [3]byte{0xfa, 0x16, 0x3e})
	sn := subnet("2001:db8::/48")
	seen := space{}
	for range 200 {
		before := len(seen)
		addr, ok, err := a.Address(sn, seen)
		if err != nil || !ok || !sn.CIDR.Contains(addr) || len(seen) != before+1 {
			t.Fatalf("got %s, ok %v, %v; want a new address of %s", addr, ok, err, sn.CIDR)
		}
	}
}

// TestMACs checks that MACs keep the prefix and vary after it.
func TestMACs(t *testing.T) {
	a := NewAllocator(rand.New(rand.NewPCG(5, 6)), [3]byte{0xfa, 0x16, 0x3e})
	seen := map[string]bool{}
	for range 1000 {
		mac := a.MAC()
		if mac[:9] != "fa:16:3e:" || len(mac) != 17 {
			t.Fatalf("got MAC %q, want fa:16:3e:xx:xx:xx", mac)
		}
		seen[mac] = true
	}
	if len(seen) < 990 {
		t.Errorf("1,000 MACs hold %d different ones, want nearly all different", len(seen))
	}
}

// TestEUI64 checks a SLAAC address against RFC 4291's example form.
func TestEUI64(t *testing.T) {
	got := eui64(netip.MustParsePrefix("2001:db8:1:2::/64"), "fa:16:3e:12:34:56")
	if want := netip.MustParseAddr("2001:db8:1:2:f816:3eff:fe12:3456"); got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
