package storetest

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/network"
)

// Networking: networks, subnets, ports and their addresses here; security
// groups, routers, floating IPs and quotas in routing.go.

// nets builds networking fixtures on a store, with one seeded allocator
// (the production one) for all they allocate.
type nets struct {
	t     testing.TB
	s     Store
	alloc trustack.Allocator
}

func newNets(t testing.TB, s Store, seed uint64) *nets {
	return &nets{t: t, s: s, alloc: newAllocator(seed)}
}

// newAllocator returns network's allocator, on a source seeded with seed.
func newAllocator(seed uint64) trustack.Allocator {
	return network.NewAllocator(rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), [3]byte{0xfa, 0x16, 0x3e})
}

func std() trustack.Standard { return trustack.Standard{CreatedAt: start, UpdatedAt: start} }

func (f *nets) network(id, project string) *trustack.Network {
	f.t.Helper()
	n := &trustack.Network{ID: id, Name: "net-" + id, ProjectID: project, AdminStateUp: true, Status: trustack.StatusActive,
		Type: trustack.NetworkLocal, MTU: 1500, PortSecurity: true, Standard: std()}
	must(f.t, f.s.CreateNetwork(ctx, n, -1))
	return n
}

// newSubnet returns a subnet. One of IPv4 has its first address as its
// gateway, and the rest but the broadcast address as its pool; one of
// IPv6 has neither.
func newSubnet(id, networkID, project, cidr string) *trustack.Subnet {
	p := netip.MustParsePrefix(cidr)
	sn := &trustack.Subnet{ID: id, Name: "sub-" + id, ProjectID: project, NetworkID: networkID, IPVersion: 6, CIDR: p, EnableDHCP: true, Standard: std()}
	if p.Addr().Is4() {
		sn.IPVersion, sn.Gateway = 4, p.Addr().Next()
		sn.AllocationPools = []trustack.IPRange{{Start: sn.Gateway.Next(), End: lastOf(p).Prev()}}
	}
	return sn
}

func lastOf(p netip.Prefix) netip.Addr {
	a := p.Addr().As4()
	for i := p.Bits(); i < 32; i++ {
		a[i/8] |= 0x80 >> (i % 8)
	}
	return netip.AddrFrom4(a)
}

func (f *nets) subnet(id, networkID, cidr string) *trustack.Subnet {
	f.t.Helper()
	n, err := f.s.Network(ctx, networkID)
	must(f.t, err)
	sn := newSubnet(id, networkID, n.ProjectID, cidr)
	must(f.t, f.s.CreateSubnet(ctx, sn, -1))
	return sn
}

func newPort(id, networkID, project string, fixed ...trustack.FixedIP) *trustack.Port {
	return &trustack.Port{ID: id, Name: "port-" + id, ProjectID: project, NetworkID: networkID, AdminStateUp: true, Status: trustack.StatusDown,
		FixedIPs: fixed, PortSecurity: true, VNICType: "normal", Standard: std()}
}

func (f *nets) port(id, networkID string, fixed ...trustack.FixedIP) *trustack.Port {
	f.t.Helper()
	n, err := f.s.Network(ctx, networkID)
	must(f.t, err)
	p := newPort(id, networkID, n.ProjectID, fixed...)
	must(f.t, f.s.CreatePort(ctx, p, f.alloc, -1))
	return p
}

func (f *nets) group(id, project string) *trustack.SecurityGroup {
	f.t.Helper()
	g := &trustack.SecurityGroup{ID: id, Name: "group-" + id, ProjectID: project, Stateful: true, Standard: std()}
	must(f.t, f.s.CreateSecurityGroup(ctx, g, false, -1))
	return g
}

// ip is a fixed IP on a subnet; "" for an address the store allocates.
func ip(subnetID, addr string) trustack.FixedIP {
	f := trustack.FixedIP{SubnetID: subnetID}
	if addr != "" {
		f.Address = netip.MustParseAddr(addr)
	}
	return f
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

// netState is everything the networking store holds, as JSON, to tell
// whether a refused request changed any of it.
func netState(t testing.TB, s Store) string {
	t.Helper()
	var state struct {
		Networks    []*trustack.Network
		Subnets     []*trustack.Subnet
		Ports       []*trustack.Port
		Groups      []*trustack.SecurityGroup
		Routers     []*trustack.Router
		FloatingIPs []*trustack.FloatingIP
	}
	var err error
	state.Networks, err = s.Networks(ctx, trustack.NetworkFilter{})
	must(t, err)
	state.Subnets, err = s.Subnets(ctx, trustack.SubnetFilter{})
	must(t, err)
	state.Ports, err = s.Ports(ctx, trustack.PortFilter{})
	must(t, err)
	state.Groups, err = s.SecurityGroups(ctx, "", nil)
	must(t, err)
	state.Routers, err = s.Routers(ctx, "", nil)
	must(t, err)
	state.FloatingIPs, err = s.FloatingIPs(ctx, "", nil)
	must(t, err)
	b, err := json.MarshalIndent(state, "", " ")
	must(t, err)
	return string(b)
}

// refused runs fn, which must fail with code and reason and leave the
// networking store as it was.
func refused(t testing.TB, s Store, wantCode, wantReason string, fn func() error) {
	t.Helper()
	before := netState(t, s)
	err := fn()
	if got := trustack.ErrorCode(err); got != wantCode {
		t.Errorf("got error %v (code %q), want code %q", err, got, wantCode)
	}
	if got := trustack.ErrorReason(err); got != wantReason {
		t.Errorf("got reason %q (error %v), want %q", got, err, wantReason)
	}
	if after := netState(t, s); after != before {
		t.Errorf("a refused request changed the store: %s", firstDifference(after, before))
	}
}

// firstDifference shows where two texts first differ, a few lines each.
func firstDifference(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	i := 0
	for i < len(g) && i < len(w) && g[i] == w[i] {
		i++
	}
	from := max(0, i-3)
	return fmt.Sprintf("from line %d got\n%s\nwant\n%s", i+1,
		strings.Join(g[from:min(len(g), i+4)], "\n"), strings.Join(w[from:min(len(w), i+4)], "\n"))
}

// reason fails t unless err has code and reason.
func reason(t testing.TB, err error, wantCode, wantReason string) {
	t.Helper()
	if trustack.ErrorCode(err) != wantCode || trustack.ErrorReason(err) != wantReason {
		t.Fatalf("got error %v (code %q, reason %q), want code %q, reason %q", err, trustack.ErrorCode(err), trustack.ErrorReason(err), wantCode, wantReason)
	}
}

func ids[T any](list []*T, id func(*T) string) []string {
	out := []string{}
	for _, v := range list {
		out = append(out, id(v))
	}
	return out
}

func networkID(n *trustack.Network) string { return n.ID }
func subnetID(s *trustack.Subnet) string   { return s.ID }
func portID(p *trustack.Port) string       { return p.ID }

func testNetworks(t *testing.T, s Store) {
	n := &trustack.Network{ID: "n1", Name: "private", ProjectID: "p1", AdminStateUp: true, Status: trustack.StatusActive,
		Type: trustack.NetworkVLAN, PhysicalNetwork: "physnet1", SegmentationID: 100, MTU: 1500, PortSecurity: true,
		Standard: trustack.Standard{Description: "the first", Tags: []string{"blue", "green"}, CreatedAt: start, UpdatedAt: start}}
	must(t, s.CreateNetwork(ctx, n, 10))
	if n.Revision != 1 {
		t.Errorf("revision of a new network: got %d, want 1", n.Revision)
	}
	got, err := s.Network(ctx, "n1")
	must(t, err)
	equal(t, got, n)
	kept := &trustack.Network{ID: "kept", ProjectID: "p1", Type: trustack.NetworkLocal, Standard: trustack.Standard{Revision: 7, CreatedAt: start}}
	must(t, s.CreateNetwork(ctx, kept, -1))
	got, err = s.Network(ctx, "kept")
	must(t, err)
	equal(t, got.Revision, int64(7))

	must(t, s.CreateNetwork(ctx, &trustack.Network{ID: "flat", ProjectID: "p1", Type: trustack.NetworkFlat, PhysicalNetwork: "physnet1", Standard: std()}, -1))
	must(t, s.CreateNetwork(ctx, &trustack.Network{ID: "vx", ProjectID: "p1", Type: trustack.NetworkVXLAN, SegmentationID: 7, Standard: std()}, -1))
	for _, tc := range []struct {
		name    string
		n       trustack.Network
		wantErr string // "" when it is created
		reason  string
	}{
		{"the same VLAN", trustack.Network{ID: "a", Type: trustack.NetworkVLAN, PhysicalNetwork: "physnet1", SegmentationID: 100}, trustack.ECONFLICT, "SegmentInUse"},
		{"the VLAN ID on another physical network", trustack.Network{ID: "b", Type: trustack.NetworkVLAN, PhysicalNetwork: "physnet2", SegmentationID: 100}, "", ""},
		{"another VLAN", trustack.Network{ID: "c", Type: trustack.NetworkVLAN, PhysicalNetwork: "physnet1", SegmentationID: 101}, "", ""},
		{"a flat network where one is", trustack.Network{ID: "d", Type: trustack.NetworkFlat, PhysicalNetwork: "physnet1"}, trustack.ECONFLICT, "SegmentInUse"},
		{"a flat network on another physical network", trustack.Network{ID: "e", Type: trustack.NetworkFlat, PhysicalNetwork: "physnet2"}, "", ""},
		{"the same VNI", trustack.Network{ID: "f", Type: trustack.NetworkVXLAN, SegmentationID: 7}, trustack.ECONFLICT, "SegmentInUse"},
		{"another VNI", trustack.Network{ID: "g", Type: trustack.NetworkVXLAN, SegmentationID: 8}, "", ""},
		{"a local network", trustack.Network{ID: "h", Type: trustack.NetworkLocal}, "", ""},
		{"another local network", trustack.Network{ID: "i", Type: trustack.NetworkLocal}, "", ""},
		{"an ID in use", trustack.Network{ID: "n1", Type: trustack.NetworkVXLAN, SegmentationID: 9}, trustack.ECONFLICT, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := tc.n
			n.ProjectID, n.Standard = "p2", std()
			if tc.wantErr == "" {
				must(t, s.CreateNetwork(ctx, &n, -1))
				return
			}
			refused(t, s, tc.wantErr, tc.reason, func() error { return s.CreateNetwork(ctx, &n, -1) })
		})
	}
	for _, tc := range []struct {
		typ, physnet string
		want         []int
	}{
		{trustack.NetworkVLAN, "physnet1", []int{100, 101}},
		{trustack.NetworkVLAN, "physnet2", []int{100}},
		{trustack.NetworkVXLAN, "", []int{7, 8}},
		{trustack.NetworkVLAN, "physnet3", nil},
	} {
		got, err := s.SegmentationIDs(ctx, tc.typ, tc.physnet)
		must(t, err)
		if !slices.Equal(got, tc.want) {
			t.Errorf("SegmentationIDs(%s, %s): got %v, want %v", tc.typ, tc.physnet, got, tc.want)
		}
	}

	// Quotas count the project's networks.
	for i := range 2 {
		must(t, s.CreateNetwork(ctx, &trustack.Network{ID: fmt.Sprintf("q%d", i), ProjectID: "pq", Type: trustack.NetworkLocal, Standard: std()}, 2))
	}
	refused(t, s, trustack.EOVERQUOTA, "OverQuota", func() error {
		err := s.CreateNetwork(ctx, &trustack.Network{ID: "q2", ProjectID: "pq", Type: trustack.NetworkLocal, Standard: std()}, 2)
		message(t, err, "Quota exceeded for resources: ['network'].")
		return err
	})
	must(t, s.CreateNetwork(ctx, &trustack.Network{ID: "q3", ProjectID: "pq", Type: trustack.NetworkLocal, Standard: std()}, -1))

	// Updates move the revision on; a refused one changes nothing.
	later := start.Add(time.Hour)
	up, err := s.UpdateNetwork(ctx, "n1", func(n *trustack.Network) error {
		n.Name, n.Shared, n.UpdatedAt, n.Revision = "renamed", true, later, 99
		return nil
	})
	must(t, err)
	want := *n
	want.Name, want.Shared, want.UpdatedAt, want.Revision = "renamed", true, later, 2
	equal(t, up, &want)
	got, err = s.Network(ctx, "n1")
	must(t, err)
	equal(t, got, &want)
	refused(t, s, trustack.EFORBIDDEN, "", func() error {
		_, err := s.UpdateNetwork(ctx, "n1", func(n *trustack.Network) error {
			n.Name = "changed"
			return trustack.Errorf(trustack.EFORBIDDEN, "no")
		})
		return err
	})
	refused(t, s, trustack.EINVALID, "", func() error {
		_, err := s.UpdateNetwork(ctx, "n1", func(n *trustack.Network) error { n.ID = "n9"; return nil })
		return err
	})
	refused(t, s, trustack.ENOTFOUND, "NetworkNotFound", func() error {
		_, err := s.UpdateNetwork(ctx, "nope", func(*trustack.Network) error { return nil })
		return err
	})
	_, err = s.Network(ctx, "nope")
	reason(t, err, trustack.ENOTFOUND, "NetworkNotFound")
	refused(t, s, trustack.ENOTFOUND, "NetworkNotFound", func() error { return s.DeleteNetwork(ctx, "nope") })
}

func testNetworkLists(t *testing.T, s Store) {
	yes := true
	for _, n := range []*trustack.Network{
		{ID: "mine", ProjectID: "p1"},
		{ID: "shared", ProjectID: "p2", Shared: true},
		{ID: "external", ProjectID: "p2", External: true},
		{ID: "theirs", ProjectID: "p2"},
	} {
		n.Type, n.Standard = trustack.NetworkLocal, std()
		must(t, s.CreateNetwork(ctx, n, -1))
	}
	f := newNets(t, s, 1)
	f.subnet("s-mine", "mine", "10.0.0.0/24")
	f.subnet("s-shared", "shared", "10.0.1.0/24")
	f.subnet("s-external", "external", "10.0.2.0/24")
	sTheirs := newSubnet("s-theirs", "theirs", "p2", "10.0.3.0/24")
	must(t, s.CreateSubnet(ctx, sTheirs, -1))
	// A project's own subnet on another's network is visible to it.
	sOwn := newSubnet("s-own", "theirs", "p1", "10.0.4.0/24")
	must(t, s.CreateSubnet(ctx, sOwn, -1))
	for _, tc := range []struct {
		name string
		f    trustack.NetworkFilter
		want []string
	}{
		{"all", trustack.NetworkFilter{}, []string{"external", "mine", "shared", "theirs"}},
		{"visible to p1", trustack.NetworkFilter{VisibleTo: "p1"}, []string{"external", "mine", "shared"}},
		{"shared", trustack.NetworkFilter{Shared: &yes}, []string{"shared"}},
		{"external", trustack.NetworkFilter{External: &yes}, []string{"external"}},
		{"by ID", trustack.NetworkFilter{IDs: []string{"theirs", "mine"}}, []string{"mine", "theirs"}},
		{"no IDs", trustack.NetworkFilter{IDs: []string{}}, []string{}},
	} {
		t.Run("networks "+tc.name, func(t *testing.T) {
			list, err := s.Networks(ctx, tc.f)
			must(t, err)
			equal(t, ids(list, networkID), tc.want)
		})
	}
	for _, tc := range []struct {
		name string
		f    trustack.SubnetFilter
		want []string
	}{
		{"all", trustack.SubnetFilter{}, []string{"s-external", "s-mine", "s-own", "s-shared", "s-theirs"}},
		{"visible to p1", trustack.SubnetFilter{VisibleTo: "p1"}, []string{"s-external", "s-mine", "s-own", "s-shared"}},
		{"of networks", trustack.SubnetFilter{NetworkIDs: []string{"theirs", "mine"}}, []string{"s-mine", "s-own", "s-theirs"}},
		{"by ID", trustack.SubnetFilter{IDs: []string{"s-theirs"}}, []string{"s-theirs"}},
	} {
		t.Run("subnets "+tc.name, func(t *testing.T) {
			list, err := s.Subnets(ctx, tc.f)
			must(t, err)
			equal(t, ids(list, subnetID), tc.want)
		})
	}
}

func testSubnets(t *testing.T, s Store) {
	f := newNets(t, s, 1)
	f.network("n1", "p1")
	f.network("n2", "p2")
	v4 := &trustack.Subnet{ID: "v4", Name: "four", ProjectID: "p1", NetworkID: "n1", IPVersion: 4, CIDR: netip.MustParsePrefix("10.0.0.0/24"),
		Gateway: addr("10.0.0.1"), AllocationPools: []trustack.IPRange{{Start: addr("10.0.0.10"), End: addr("10.0.0.99")}, {Start: addr("10.0.0.200"), End: addr("10.0.0.250")}},
		EnableDHCP: true, DNSNameservers: []netip.Addr{addr("192.0.2.53"), addr("2001:db8::53")},
		HostRoutes: []trustack.HostRoute{{Destination: netip.MustParsePrefix("192.168.0.0/16"), NextHop: addr("10.0.0.254")}},
		Standard:   trustack.Standard{Description: "ipv4", Tags: []string{"t"}, CreatedAt: start, UpdatedAt: start}}
	must(t, s.CreateSubnet(ctx, v4, 10))
	equal(t, v4.Revision, int64(1))
	got, err := s.Subnet(ctx, "v4")
	must(t, err)
	equal(t, got, v4)
	v6 := &trustack.Subnet{ID: "v6", ProjectID: "p1", NetworkID: "n1", IPVersion: 6, CIDR: netip.MustParsePrefix("2001:db8:0:1::/64"),
		IPv6RAMode: "slaac", IPv6AddressMode: "slaac", Standard: std(),
		AllocationPools: []trustack.IPRange{{Start: addr("2001:db8:0:1::2"), End: addr("2001:db8:0:1:ffff:ffff:ffff:ffff")}}}
	must(t, s.CreateSubnet(ctx, v6, 10))
	got, err = s.Subnet(ctx, "v6")
	must(t, err)
	equal(t, got, v6)
	if got.Gateway.IsValid() {
		t.Errorf("gateway of a subnet without one: got %v, want the zero address", got.Gateway)
	}

	for _, tc := range []struct {
		name    string
		network string
		cidr    string
		limit   int
		wantErr string // "" when it is created
		reason  string
	}{
		{"a part of a subnet", "n1", "10.0.0.128/25", -1, trustack.EINVALID, "InvalidInput"},
		{"a block holding a subnet", "n1", "10.0.0.0/16", -1, trustack.EINVALID, "InvalidInput"},
		{"the same block", "n1", "10.0.0.0/24", -1, trustack.EINVALID, "InvalidInput"},
		{"an IPv6 block holding a subnet", "n1", "2001:db8::/48", -1, trustack.EINVALID, "InvalidInput"},
		{"the same block on another network", "n2", "10.0.0.0/24", -1, "", ""},
		{"a block next to a subnet", "n1", "10.0.1.0/24", -1, "", ""},
		{"no network", "nope", "10.9.0.0/24", -1, trustack.ENOTFOUND, "NetworkNotFound"},
		{"over quota", "n1", "10.0.2.0/24", 3, trustack.EOVERQUOTA, "OverQuota"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sn := newSubnet("new-"+tc.name, tc.network, "p1", tc.cidr)
			if tc.wantErr == "" {
				must(t, s.CreateSubnet(ctx, sn, tc.limit))
				return
			}
			refused(t, s, tc.wantErr, tc.reason, func() error { return s.CreateSubnet(ctx, sn, tc.limit) })
		})
	}
	refused(t, s, trustack.ECONFLICT, "", func() error { return s.CreateSubnet(ctx, newSubnet("v4", "n2", "p2", "10.5.0.0/24"), -1) })

	p := f.port("port", "n1", ip("v4", "10.0.0.50"))
	later := start.Add(time.Hour)
	up, err := s.UpdateSubnet(ctx, "v4", func(sn *trustack.Subnet) error {
		sn.Name, sn.UpdatedAt, sn.Gateway = "renamed", later, addr("10.0.0.2")
		sn.AllocationPools = []trustack.IPRange{{Start: addr("10.0.0.100"), End: addr("10.0.0.110")}}
		return nil
	})
	must(t, err)
	want := *v4
	want.Name, want.UpdatedAt, want.Gateway, want.Revision = "renamed", later, addr("10.0.0.2"), 2
	want.AllocationPools = []trustack.IPRange{{Start: addr("10.0.0.100"), End: addr("10.0.0.110")}}
	equal(t, up, &want)
	got, err = s.Subnet(ctx, "v4")
	must(t, err)
	equal(t, got, &want)
	// The port keeps its address outside the new pools.
	gotPort, err := s.Port(ctx, "port")
	must(t, err)
	equal(t, gotPort.FixedIPs, p.FixedIPs)

	for _, tc := range []struct {
		name    string
		fn      func(*trustack.Subnet) error
		wantErr string
		reason  string
	}{
		{"the gateway onto a port's address", func(sn *trustack.Subnet) error { sn.Gateway = addr("10.0.0.50"); return nil }, trustack.ECONFLICT, "IpAddressInUse"},
		{"another CIDR", func(sn *trustack.Subnet) error { sn.CIDR = netip.MustParsePrefix("10.0.0.0/23"); return nil }, trustack.EINVALID, "InvalidInput"},
		{"another network", func(sn *trustack.Subnet) error { sn.NetworkID = "n2"; return nil }, trustack.EINVALID, "InvalidInput"},
		{"another ID", func(sn *trustack.Subnet) error { sn.ID = "v9"; return nil }, trustack.EINVALID, ""},
		{"fn's error", func(sn *trustack.Subnet) error { sn.Name = "x"; return trustack.Errorf(trustack.EFORBIDDEN, "no") }, trustack.EFORBIDDEN, ""},
	} {
		t.Run("update "+tc.name, func(t *testing.T) {
			refused(t, s, tc.wantErr, tc.reason, func() error {
				_, err := s.UpdateSubnet(ctx, "v4", tc.fn)
				return err
			})
		})
	}
	refused(t, s, trustack.ENOTFOUND, "SubnetNotFound", func() error {
		_, err := s.UpdateSubnet(ctx, "nope", func(*trustack.Subnet) error { return nil })
		return err
	})
	_, err = s.Subnet(ctx, "nope")
	reason(t, err, trustack.ENOTFOUND, "SubnetNotFound")
	refused(t, s, trustack.ENOTFOUND, "SubnetNotFound", func() error { return s.DeleteSubnet(ctx, "nope") })
}

func testPorts(t *testing.T, s Store) {
	f := newNets(t, s, 2)
	f.network("n1", "p1")
	f.network("n2", "p1")
	f.subnet("s1", "n1", "10.0.0.0/24")
	f.subnet("s2", "n1", "10.1.0.0/24")
	f.subnet("s3", "n2", "10.0.0.0/24")
	f.group("g1", "p1")
	f.group("g2", "p1")

	p1 := newPort("p1", "n1", "p1", ip("s1", "10.0.0.5"), ip("s2", ""))
	p1.MACAddress, p1.DeviceOwner, p1.DeviceID, p1.HostID = "fa:16:3e:00:00:01", trustack.OwnerCompute+"nova", "server-1", "host-1"
	p1.SecurityGroups = []string{"g2", "g1"}
	p1.AllowedAddressPairs = []trustack.AddressPair{{IPAddress: "10.0.0.0/24", MACAddress: "fa:16:3e:00:00:09"}}
	p1.Description, p1.Tags = "first", []string{"x"}
	must(t, s.CreatePort(ctx, p1, f.alloc, 10))
	if !netip.MustParsePrefix("10.1.0.0/24").Contains(p1.FixedIPs[1].Address) || p1.FixedIPs[1].SubnetID != "s2" {
		t.Errorf("allocated fixed IP: got %v, want an address of s2", p1.FixedIPs[1])
	}
	equal(t, p1.Revision, int64(1))
	equal(t, p1.SecurityGroups, []string{"g1", "g2"})
	got, err := s.Port(ctx, "p1")
	must(t, err)
	equal(t, got, p1)

	p2 := f.port("p2", "n1", ip("s1", ""))
	if !strings.HasPrefix(p2.MACAddress, "fa:16:3e:") || p2.MACAddress == p1.MACAddress {
		t.Errorf("MAC of a port that had none: got %q, want one of fa:16:3e other than %q", p2.MACAddress, p1.MACAddress)
	}
	if a := p2.FixedIPs[0].Address; a == p1.FixedIPs[0].Address || a.Compare(addr("10.0.0.2")) < 0 || a.Compare(addr("10.0.0.254")) > 0 {
		t.Errorf("allocated address %v: want a free one of s1's pool", a)
	}
	// The same MAC and address on another network are another's.
	other := newPort("p3", "n2", "p1", ip("s3", "10.0.0.5"))
	other.MACAddress = p1.MACAddress
	must(t, s.CreatePort(ctx, other, f.alloc, -1))

	for _, tc := range []struct {
		name    string
		p       *trustack.Port
		limit   int
		wantErr string
		reason  string
	}{
		{"an address in use", newPort("x", "n1", "p1", ip("s1", "10.0.0.5")), -1, trustack.ECONFLICT, "IpAddressInUse"},
		{"an address twice", newPort("x", "n1", "p1", ip("s1", "10.0.0.6"), ip("s1", "10.0.0.6")), -1, trustack.ECONFLICT, "IpAddressInUse"},
		{"a MAC in use", func() *trustack.Port {
			p := newPort("x", "n1", "p1", ip("s1", ""))
			p.MACAddress = p1.MACAddress
			return p
		}(), -1, trustack.ECONFLICT, "MacAddressInUse"},
		{"an address of another subnet", newPort("x", "n1", "p1", ip("s1", "10.1.0.5")), -1, trustack.EINVALID, "InvalidIpForSubnet"},
		{"the subnet's network address", newPort("x", "n1", "p1", ip("s1", "10.0.0.0")), -1, trustack.EINVALID, "InvalidIpForSubnet"},
		{"the subnet's broadcast address", newPort("x", "n1", "p1", ip("s1", "10.0.0.255")), -1, trustack.EINVALID, "InvalidIpForSubnet"},
		{"a subnet of another network", newPort("x", "n1", "p1", ip("s3", "")), -1, trustack.EINVALID, "InvalidInput"},
		{"no subnet", newPort("x", "n1", "p1", ip("", "10.0.0.7")), -1, trustack.EINVALID, "InvalidInput"},
		{"a missing subnet", newPort("x", "n1", "p1", ip("nope", "")), -1, trustack.ENOTFOUND, "SubnetNotFound"},
		{"a missing network", newPort("x", "nope", "p1"), -1, trustack.ENOTFOUND, "NetworkNotFound"},
		{"a missing security group", func() *trustack.Port {
			p := newPort("x", "n1", "p1", ip("s1", ""))
			p.SecurityGroups = []string{"g1", "nope"}
			return p
		}(), -1, trustack.ENOTFOUND, "SecurityGroupNotFound"},
		{"an ID in use", newPort("p1", "n1", "p1", ip("s1", "")), -1, trustack.ECONFLICT, ""},
		{"over quota", newPort("x", "n1", "p1", ip("s1", "")), 3, trustack.EOVERQUOTA, "OverQuota"},
	} {
		t.Run("create "+tc.name, func(t *testing.T) {
			refused(t, s, tc.wantErr, tc.reason, func() error { return s.CreatePort(ctx, tc.p, f.alloc, tc.limit) })
		})
	}

	// An allocator whose MACs are all taken: the store gives up.
	refused(t, s, trustack.EUNAVAILABLE, "MacAddressGenerationFailure", func() error {
		return s.CreatePort(ctx, newPort("x", "n1", "p1", ip("s1", "")), takenMACs{f.alloc, p1.MACAddress}, -1)
	})

	for _, tc := range []struct {
		name string
		f    trustack.PortFilter
		want []string
	}{
		{"all", trustack.PortFilter{}, []string{"p1", "p2", "p3"}},
		{"by ID", trustack.PortFilter{IDs: []string{"p3", "p1"}}, []string{"p1", "p3"}},
		{"of a network", trustack.PortFilter{NetworkID: "n2"}, []string{"p3"}},
		{"of devices", trustack.PortFilter{DeviceIDs: []string{"server-1", "server-2"}}, []string{"p1"}},
		{"of an owner", trustack.PortFilter{DeviceOwner: trustack.OwnerCompute + "nova"}, []string{"p1"}},
		{"on a host", trustack.PortFilter{HostID: "host-1"}, []string{"p1"}},
		{"in a group", trustack.PortFilter{SecurityGroupID: "g2"}, []string{"p1"}},
		{"visible to p1", trustack.PortFilter{VisibleTo: "p1"}, []string{"p1", "p2", "p3"}},
		{"visible to p2", trustack.PortFilter{VisibleTo: "p2"}, []string{}},
	} {
		t.Run("list "+tc.name, func(t *testing.T) {
			list, err := s.Ports(ctx, tc.f)
			must(t, err)
			equal(t, ids(list, portID), tc.want)
		})
	}
	list, err := s.Ports(ctx, trustack.PortFilter{IDs: []string{"p1"}})
	must(t, err)
	equal(t, list[0], p1)

	// An update keeps the addresses the port keeps, allocates new ones
	// and frees the others, in the order fn leaves them.
	g1, err := s.SecurityGroup(ctx, "g1")
	must(t, err)
	later := start.Add(time.Hour)
	up, err := s.UpdatePort(ctx, "p1", f.alloc, func(p *trustack.Port) error {
		p.FixedIPs = []trustack.FixedIP{p.FixedIPs[1], ip("s1", ""), ip("s1", "10.0.0.9")}
		p.SecurityGroups = []string{"g2"}
		p.Name, p.UpdatedAt = "renamed", later
		return nil
	})
	must(t, err)
	if up.Revision != 2 || up.Name != "renamed" || !up.UpdatedAt.Equal(later) {
		t.Errorf("updated port: got revision %d, name %q, updated at %v; want 2, renamed, %v", up.Revision, up.Name, up.UpdatedAt, later)
	}
	if len(up.FixedIPs) != 3 || up.FixedIPs[0] != p1.FixedIPs[1] || up.FixedIPs[1].SubnetID != "s1" || !up.FixedIPs[1].Address.IsValid() ||
		up.FixedIPs[2] != ip("s1", "10.0.0.9") {
		t.Errorf("fixed IPs after the update: got %v, want %v, one allocated on s1, 10.0.0.9", up.FixedIPs, p1.FixedIPs[1])
	}
	got, err = s.Port(ctx, "p1")
	must(t, err)
	equal(t, got, up)
	equal(t, got.SecurityGroups, []string{"g2"})
	// A port's groups are no change of the group.
	g1After, err := s.SecurityGroup(ctx, "g1")
	must(t, err)
	equal(t, g1After, g1)
	// 10.0.0.5 is free again.
	f.port("reuse", "n1", ip("s1", "10.0.0.5"))

	for _, tc := range []struct {
		name    string
		fn      func(*trustack.Port) error
		wantErr string
		reason  string
	}{
		{"an address in use", func(p *trustack.Port) error { p.FixedIPs = append(p.FixedIPs, p2.FixedIPs[0]); return nil }, trustack.ECONFLICT, "IpAddressInUse"},
		{"an address outside the subnet", func(p *trustack.Port) error { p.FixedIPs = append(p.FixedIPs, ip("s1", "10.1.0.3")); return nil }, trustack.EINVALID, "InvalidIpForSubnet"},
		{"a MAC in use", func(p *trustack.Port) error { p.MACAddress = p2.MACAddress; return nil }, trustack.ECONFLICT, "MacAddressInUse"},
		{"another network", func(p *trustack.Port) error { p.NetworkID = "n2"; return nil }, trustack.EINVALID, "InvalidInput"},
		{"another ID", func(p *trustack.Port) error { p.ID = "p9"; return nil }, trustack.EINVALID, "InvalidInput"},
		{"a missing group", func(p *trustack.Port) error { p.SecurityGroups = []string{"nope"}; return nil }, trustack.ENOTFOUND, "SecurityGroupNotFound"},
		{"fn's error", func(p *trustack.Port) error { p.Name = "x"; return trustack.Errorf(trustack.EFORBIDDEN, "no") }, trustack.EFORBIDDEN, ""},
	} {
		t.Run("update "+tc.name, func(t *testing.T) {
			refused(t, s, tc.wantErr, tc.reason, func() error {
				_, err := s.UpdatePort(ctx, "p1", f.alloc, tc.fn)
				return err
			})
		})
	}
	refused(t, s, trustack.ENOTFOUND, "PortNotFound", func() error {
		_, err := s.UpdatePort(ctx, "nope", f.alloc, func(*trustack.Port) error { return nil })
		return err
	})
	// A port without a MAC gets a new one.
	up, err = s.UpdatePort(ctx, "p2", f.alloc, func(p *trustack.Port) error { p.MACAddress = ""; return nil })
	must(t, err)
	if up.MACAddress == "" || up.MACAddress == p2.MACAddress {
		t.Errorf("MAC after emptying it: got %q, want a new one", up.MACAddress)
	}

	// Deleting a port frees its addresses.
	must(t, s.DeletePort(ctx, "p2"))
	_, err = s.Port(ctx, "p2")
	reason(t, err, trustack.ENOTFOUND, "PortNotFound")
	f.port("reuse-2", "n1", p2.FixedIPs[0])
	refused(t, s, trustack.ENOTFOUND, "PortNotFound", func() error { return s.DeletePort(ctx, "p2") })
}

// takenMACs is an allocator whose MACs are all mac.
type takenMACs struct {
	trustack.Allocator
	mac string
}

func (a takenMACs) MAC() string { return a.mac }

// testPortsUnderConcurrency races many port creations on one subnet: each
// address goes to exactly one port, and those that find none left fail
// with IpAddressGenerationFailure.
func testPortsUnderConcurrency(t *testing.T, s Store) {
	f := newNets(t, s, 3)
	f.network("n", "p")
	sn := f.subnet("s", "n", "10.0.0.0/24") // a pool of 10.0.0.2 to 10.0.0.254
	taken := []string{"10.0.0.2", "10.0.0.100", "10.0.0.254"}
	for i, a := range taken {
		f.port(fmt.Sprintf("pre-%d", i), "n", ip("s", a))
	}
	free := 253 - len(taken)
	const attempts, workers = 500, 64
	var (
		mu     sync.Mutex
		got    = map[netip.Addr]string{}
		failed = map[string]int{}
		wg     sync.WaitGroup
		next   = make(chan int)
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				p := newPort(fmt.Sprintf("port-%03d", i), "n", "p", ip("s", ""))
				err := s.CreatePort(ctx, p, f.alloc, -1)
				mu.Lock()
				if err != nil {
					failed[trustack.ErrorCode(err)+" "+trustack.ErrorReason(err)]++
				} else if other, dup := got[p.FixedIPs[0].Address]; dup {
					t.Errorf("address %v given to %s and %s", p.FixedIPs[0].Address, other, p.ID)
				} else {
					got[p.FixedIPs[0].Address] = p.ID
				}
				mu.Unlock()
			}
		}()
	}
	for i := range attempts {
		next <- i
	}
	close(next)
	wg.Wait()
	if len(got) != free {
		t.Errorf("got %d ports with an address, want %d", len(got), free)
	}
	if want := map[string]int{trustack.ECONFLICT + " IpAddressGenerationFailure": attempts - free}; !reflect.DeepEqual(failed, want) {
		t.Errorf("failures: got %v, want %v", failed, want)
	}
	pool := sn.AllocationPools[0]
	for a := range got {
		if a.Compare(pool.Start) < 0 || a.Compare(pool.End) > 0 || slices.Contains(taken, a.String()) {
			t.Errorf("address %v allocated: want one of the pool that was free", a)
		}
	}
	ports, err := s.Ports(ctx, trustack.PortFilter{NetworkID: "n"})
	must(t, err)
	stored := map[netip.Addr]bool{}
	for _, p := range ports {
		for _, fip := range p.FixedIPs {
			if stored[fip.Address] {
				t.Errorf("address %v stored twice", fip.Address)
			}
			stored[fip.Address] = true
		}
	}
	if len(ports) != free+len(taken) || len(stored) != free+len(taken) {
		t.Errorf("stored: got %d ports with %d addresses, want %d of each", len(ports), len(stored), free+len(taken))
	}
	usage, err := s.NetworkUsage(ctx, "p")
	must(t, err)
	equal(t, usage[trustack.QuotaPort], free+len(taken))
}

// testAddressesAreRandom allocates every address of a subnet, one port at
// a time: consecutive ports must not get neighbouring addresses more
// often than chance does (about 2 pairs in 250), so that an address says
// nothing of its neighbours' owners. The source is seeded: the test
// cannot flake.
func testAddressesAreRandom(t *testing.T, s Store) {
	f := newNets(t, s, 4)
	f.network("n", "p")
	f.subnet("s", "n", "10.0.0.0/24")
	var order []int
	for i := range 253 {
		p := f.port(fmt.Sprintf("port-%03d", i), "n", ip("s", ""))
		order = append(order, int(p.FixedIPs[0].Address.As4()[3]))
	}
	refused(t, s, trustack.ECONFLICT, "IpAddressGenerationFailure", func() error {
		err := s.CreatePort(ctx, newPort("one-more", "n", "p", ip("s", "")), f.alloc, -1)
		message(t, err, "No more IP addresses available on network n.")
		return err
	})
	sorted := slices.Sorted(slices.Values(order))
	for i, a := range sorted {
		if a != i+2 {
			t.Fatalf("allocated %v, want each of 2 to 254 once", sorted)
		}
	}
	if slices.IsSorted(order) || slices.IsSortedFunc(order, func(a, b int) int { return b - a }) {
		t.Errorf("addresses allocated in sequence: %v", order)
	}
	adjacent := 0
	for i := 1; i < len(order); i++ {
		if d := order[i] - order[i-1]; d == 1 || d == -1 {
			adjacent++
		}
	}
	t.Logf("%d of %d consecutive allocations adjacent", adjacent, len(order)-1)
	if pairs := len(order) - 1; adjacent*20 >= pairs {
		t.Errorf("got %d of %d consecutive allocations numerically adjacent, want fewer than 5%% (chance gives about 2): %v", adjacent, pairs, order)
	}
}

func testNetworkDeletes(t *testing.T, s Store) {
	f := newNets(t, s, 5)
	f.network("n", "p")
	f.subnet("s1", "n", "10.0.0.0/24")
	f.subnet("s2", "n", "10.0.1.0/24")
	dhcp := newPort("dhcp", "n", "p", ip("s1", ""), ip("s2", ""))
	dhcp.DeviceOwner, dhcp.DeviceID = trustack.OwnerDHCP, "dhcp-n"
	must(t, s.CreatePort(ctx, dhcp, f.alloc, -1))
	f.port("vm", "n", ip("s2", ""))

	refused(t, s, trustack.ECONFLICT, "NetworkInUse", func() error { return s.DeleteNetwork(ctx, "n") })
	refused(t, s, trustack.ECONFLICT, "SubnetInUse", func() error { return s.DeleteSubnet(ctx, "s2") })
	// A subnet only the DHCP server has an address on goes, and takes the
	// address along.
	must(t, s.DeleteSubnet(ctx, "s1"))
	_, err := s.Subnet(ctx, "s1")
	reason(t, err, trustack.ENOTFOUND, "SubnetNotFound")
	got, err := s.Port(ctx, "dhcp")
	must(t, err)
	equal(t, got.FixedIPs, dhcp.FixedIPs[1:])
	equal(t, got.Revision, int64(2))
	if got.UpdatedAt.Equal(dhcp.UpdatedAt) {
		t.Errorf("updated_at of the DHCP port that lost an address: got %v, want the time it lost it", got.UpdatedAt)
	}

	must(t, s.DeletePort(ctx, "vm"))
	must(t, s.DeleteNetwork(ctx, "n"))
	for _, check := range []func() error{
		func() error { _, err := s.Network(ctx, "n"); return err },
		func() error { _, err := s.Subnet(ctx, "s2"); return err },
		func() error { _, err := s.Port(ctx, "dhcp"); return err },
	} {
		code(t, check(), trustack.ENOTFOUND)
	}
	// Its subnets' blocks are free for another network's subnets and
	// ports.
	f.network("again", "p")
	f.subnet("s3", "again", "10.0.1.0/24")
	vm2 := f.port("vm2", "again", ip("s3", dhcp.FixedIPs[1].Address.String()))

	// A subnet whose addresses are automatic goes from under the ports
	// with an address on it, as Neutron's, but not from under a router's
	// interface.
	for _, modes := range [][2]string{{trustack.IPv6SLAAC, trustack.IPv6SLAAC}, {trustack.DHCPv6Stateless, trustack.DHCPv6Stateless}, {trustack.IPv6SLAAC, ""}} {
		t.Run("automatic addresses "+modes[0]+" "+modes[1], func(t *testing.T) {
			id := "auto-" + modes[0] + "-" + modes[1]
			f.network(id, "p")
			v4 := f.subnet(id+"-v4", id, "10.9.0.0/24")
			auto := newSubnet(id+"-v6", id, "p", "2001:db8::/64")
			auto.IPv6RAMode, auto.IPv6AddressMode = modes[0], modes[1]
			must(t, s.CreateSubnet(ctx, auto, -1))
			vm := f.port(id+"-vm", id, ip(v4.ID, ""), ip(auto.ID, "2001:db8::f816:3eff:fe00:1"))
			iface := newPort(id+"-if", id, "p", ip(auto.ID, "2001:db8::1"))
			iface.DeviceOwner, iface.DeviceID = trustack.OwnerRouterInterface, "r"
			must(t, s.CreatePort(ctx, iface, f.alloc, -1))

			refused(t, s, trustack.ECONFLICT, "SubnetInUse", func() error { return s.DeleteSubnet(ctx, auto.ID) })
			must(t, s.DeletePort(ctx, iface.ID))
			must(t, s.DeleteSubnet(ctx, auto.ID))
			got, err := s.Port(ctx, vm.ID)
			must(t, err)
			equal(t, got.FixedIPs, vm.FixedIPs[:1])
			equal(t, got.Revision, int64(2))
		})
	}

	// An external network goes with the floating IPs on it that are not
	// associated, and their ports, as Neutron's; one that is associated
	// holds it.
	f.external("ext", "203.0.113.0/24")
	free := &trustack.FloatingIP{ID: "free", ProjectID: "p", NetworkID: "ext", Status: trustack.StatusDown, Standard: std()}
	must(t, s.CreateFloatingIP(ctx, free, gatewayPort("free-port", "ext"), f.alloc, -1))
	held := &trustack.FloatingIP{ID: "held", ProjectID: "p", NetworkID: "ext", PortID: vm2.ID, FixedAddress: vm2.FixedIPs[0].Address,
		RouterID: "r", Status: trustack.StatusActive, Standard: std()}
	must(t, s.CreateFloatingIP(ctx, held, gatewayPort("held-port", "ext"), f.alloc, -1))
	refused(t, s, trustack.ECONFLICT, "NetworkInUse", func() error { return s.DeleteNetwork(ctx, "ext") })
	_, err = s.UpdateFloatingIP(ctx, "held", func(f *trustack.FloatingIP) error { f.PortID = ""; return nil })
	must(t, err)
	must(t, s.DeleteNetwork(ctx, "ext"))
	for _, check := range []func() error{
		func() error { _, err := s.Network(ctx, "ext"); return err },
		func() error { _, err := s.FloatingIP(ctx, "free"); return err },
		func() error { _, err := s.FloatingIP(ctx, "held"); return err },
		func() error { _, err := s.Port(ctx, "free-port"); return err },
		func() error { _, err := s.Port(ctx, "held-port"); return err },
	} {
		code(t, check(), trustack.ENOTFOUND)
	}
}

// testSubnetsUnderConcurrency races overlapping subnets onto one network:
// only one of them may be added.
func testSubnetsUnderConcurrency(t *testing.T, s Store) {
	f := newNets(t, s, 6)
	f.network("n", "p")
	// 10.0.0.0/16, /17, ..., /24, then /16 again: all overlap.
	created := race(t, 16, trustack.EINVALID, "InvalidInput", func(i int) error {
		return s.CreateSubnet(ctx, newSubnet(fmt.Sprintf("s%02d", i), "n", "p", fmt.Sprintf("10.0.0.0/%d", 16+i%9)), -1)
	})
	list, err := s.Subnets(ctx, trustack.SubnetFilter{NetworkIDs: []string{"n"}})
	must(t, err)
	if created != 1 || len(list) != 1 {
		t.Errorf("got %d subnets created and %d stored, want 1 of each", created, len(list))
	}
}

// testServerPorts checks that a server's ports follow it when it is
// updated: its host, its zone in their owner, their status.
func testServerPorts(t *testing.T, s Store) {
	f := newNets(t, s, 7)
	f.network("n", "p")
	f.subnet("sn", "n", "10.0.0.0/24")
	must(t, s.CreateServers(ctx, []*trustack.Server{server("vm", "p", 1, 512)}, trustack.NewPorts{}, nil, nil))
	must(t, s.AddAction(ctx, trustack.InstanceAction{ServerID: "vm", RequestID: "req", Action: "create", ProjectID: "p", StartTime: start}))
	mk := func(id, device, owner string) *trustack.Port {
		p := newPort(id, "n", "p", ip("sn", ""))
		p.DeviceID, p.DeviceOwner = device, owner
		must(t, s.CreatePort(ctx, p, f.alloc, -1))
		return p
	}
	nic := mk("nic", "vm", trustack.OwnerCompute+"nova")
	nic2 := mk("nic2", "vm", trustack.OwnerCompute)
	// Ports of others, or of the server but not compute's, stay as they are.
	bystanders := []*trustack.Port{mk("other", "another-vm", trustack.OwnerCompute+"nova"), mk("odd", "vm", trustack.OwnerDHCP)}

	withEvent := func(fn func(*trustack.Server)) func() error {
		return func() error {
			_, err := s.UpdateServerWithEvent(ctx, "vm", "req", trustack.ActionEvent{Event: "e", StartTime: start}, func(v *trustack.Server) error { fn(v); return nil })
			return err
		}
	}
	plain := func(fn func(*trustack.Server)) func() error {
		return func() error {
			_, err := s.UpdateServer(ctx, "vm", func(v *trustack.Server) error { fn(v); return nil })
			return err
		}
	}
	type want struct {
		host, owner, status string
		revision            int64
	}
	for _, tc := range []struct {
		name   string
		update func() error
		nic    want
		nic2   want
	}{
		{"no host yet", plain(func(v *trustack.Server) { v.TaskState = trustack.TaskScheduling }),
			want{"", trustack.OwnerCompute + "nova", trustack.StatusDown, 1}, want{"", trustack.OwnerCompute, trustack.StatusDown, 1}},
		{"placed and building", plain(func(v *trustack.Server) { v.Host, v.AvailabilityZone = "h1", "az1" }),
			want{"h1", "compute:az1", trustack.StatusDown, 2}, want{"h1", "compute:az1", trustack.StatusDown, 2}},
		{"active", withEvent(func(v *trustack.Server) { v.VMState = trustack.VMActive }),
			want{"h1", "compute:az1", trustack.StatusActive, 3}, want{"h1", "compute:az1", trustack.StatusActive, 3}},
		{"paused", plain(func(v *trustack.Server) { v.VMState = trustack.VMPaused }),
			want{"h1", "compute:az1", trustack.StatusActive, 3}, want{"h1", "compute:az1", trustack.StatusActive, 3}},
		{"stopped", withEvent(func(v *trustack.Server) { v.VMState = trustack.VMStopped }),
			want{"h1", "compute:az1", trustack.StatusDown, 4}, want{"h1", "compute:az1", trustack.StatusDown, 4}},
		{"moved, active", plain(func(v *trustack.Server) { v.Host, v.VMState = "h2", trustack.VMActive }),
			want{"h2", "compute:az1", trustack.StatusActive, 5}, want{"h2", "compute:az1", trustack.StatusActive, 5}},
		{"no zone", plain(func(v *trustack.Server) { v.AvailabilityZone = "" }),
			want{"h2", "compute:az1", trustack.StatusActive, 5}, want{"h2", "compute:az1", trustack.StatusActive, 5}},
		{"off its host", plain(func(v *trustack.Server) { v.Host = "" }),
			want{"", "compute:az1", trustack.StatusDown, 6}, want{"", "compute:az1", trustack.StatusDown, 6}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			must(t, tc.update())
			for _, c := range []struct {
				p    *trustack.Port
				want want
			}{{nic, tc.nic}, {nic2, tc.nic2}} {
				got, err := s.Port(ctx, c.p.ID)
				must(t, err)
				if g := (want{got.HostID, got.DeviceOwner, got.Status, got.Revision}); g != c.want {
					t.Errorf("port %s: got %+v, want %+v", c.p.ID, g, c.want)
				}
			}
			for _, p := range bystanders {
				got, err := s.Port(ctx, p.ID)
				must(t, err)
				equal(t, got, p)
			}
		})
	}
	// An update its fn refuses leaves the ports alone.
	refused(t, s, trustack.EFORBIDDEN, "", func() error {
		_, err := s.UpdateServer(ctx, "vm", func(v *trustack.Server) error {
			v.Host = "h3"
			return trustack.Errorf(trustack.EFORBIDDEN, "no")
		})
		return err
	})
}

func testHostWiring(t *testing.T, s Store) {
	h := &trustack.Host{ID: "id-a", Name: "a", AvailabilityZone: "nova", VCPUs: 4, MemoryMB: 4096, DiskGB: 10, CPUAllocationRatio: 1, RAMAllocationRatio: 1,
		DiskAllocationRatio: 1, Enabled: true, PhysicalNetworks: []string{"physnet1", "physnet2"}, NetworkNode: true, CreatedAt: start, UpdatedAt: start}
	got, err := s.RegisterHost(ctx, h)
	must(t, err)
	if !slices.Equal(got.PhysicalNetworks, h.PhysicalNetworks) || !got.NetworkNode {
		t.Errorf("registered host: got physical networks %v, network node %v; want %v, true", got.PhysicalNetworks, got.NetworkNode, h.PhysicalNetworks)
	}
	plain := host(t, s, "b", 4, 4096)
	if plain.PhysicalNetworks != nil || plain.NetworkNode {
		t.Errorf("host without wiring: got %v, %v; want none", plain.PhysicalNetworks, plain.NetworkNode)
	}
	// Registering again stores what the agent says now.
	again := *h
	again.PhysicalNetworks, again.NetworkNode = []string{"physnet3"}, false
	_, err = s.RegisterHost(ctx, &again)
	must(t, err)
	for _, read := range []func() (*trustack.Host, error){
		func() (*trustack.Host, error) { return s.Host(ctx, "id-a") },
		func() (*trustack.Host, error) { return s.HostByName(ctx, "a") },
		func() (*trustack.Host, error) {
			list, err := s.Hosts(ctx)
			if err != nil {
				return nil, err
			}
			return list[0], nil
		},
	} {
		got, err := read()
		must(t, err)
		if got.Name != "a" || !slices.Equal(got.PhysicalNetworks, []string{"physnet3"}) || got.NetworkNode {
			t.Errorf("host a: got %s with %v, network node %v; want physnet3 and no network node", got.Name, got.PhysicalNetworks, got.NetworkNode)
		}
	}
	up, err := s.UpdateHost(ctx, "id-a", func(h *trustack.Host) error { h.DisabledReason = "x"; return nil })
	must(t, err)
	equal(t, up.PhysicalNetworks, []string{"physnet3"})
}

// testServersWithPorts checks that servers and their new ports are made
// in one transaction: all of them, or, over a quota or on an address
// taken, none.
func testServersWithPorts(t *testing.T, s Store) {
	f := newNets(t, s, 5)
	f.network("n1", "p1")
	f.subnet("s1", "n1", "10.0.0.0/24")
	portOf := func(id, server string, fixed trustack.FixedIP) *trustack.Port {
		p := newPort(id, "n1", "p1", fixed)
		p.MACAddress, p.DeviceOwner, p.DeviceID = f.alloc.MAC(), trustack.OwnerCompute+"nova", server
		return p
	}
	a, b := server("a", "p1", 1, 512), server("b", "p1", 1, 512)
	a.Ports, b.Ports = []string{"pa"}, []string{"pb"}
	pa, pb := portOf("pa", "a", ip("s1", "10.0.0.7")), portOf("pb", "b", ip("s1", ""))
	must(t, s.CreateServers(ctx, []*trustack.Server{a, b}, trustack.NewPorts{Ports: []*trustack.Port{pa, pb}, Alloc: f.alloc, Limit: 3}, nil, nil))
	for _, p := range []*trustack.Port{pa, pb} {
		got, err := s.Port(ctx, p.ID)
		must(t, err)
		equal(t, got, p)
	}
	if !pb.FixedIPs[0].Address.IsValid() {
		t.Errorf("the second port's address was not allocated: %v", pb.FixedIPs)
	}
	// Over the port quota, or on an address taken: neither the servers
	// nor any of their ports are made.
	c, d := server("c", "p1", 1, 512), server("d", "p1", 1, 512)
	pc, pd := portOf("pc", "c", ip("s1", "")), portOf("pd", "d", ip("s1", ""))
	code(t, s.CreateServers(ctx, []*trustack.Server{c, d}, trustack.NewPorts{Ports: []*trustack.Port{pc, pd}, Alloc: f.alloc, Limit: 3}, nil, nil), trustack.EOVERQUOTA)
	pc, pd = portOf("pc", "c", ip("s1", "")), portOf("pd", "d", ip("s1", "10.0.0.7"))
	code(t, s.CreateServers(ctx, []*trustack.Server{c, d}, trustack.NewPorts{Ports: []*trustack.Port{pc, pd}, Alloc: f.alloc, Limit: -1}, nil, nil), trustack.ECONFLICT)
	for _, id := range []string{"c", "d"} {
		_, err := s.Server(ctx, id)
		code(t, err, trustack.ENOTFOUND)
	}
	ports, err := s.Ports(ctx, trustack.PortFilter{NetworkID: "n1"})
	must(t, err)
	equal(t, len(ports), 2)
}

func testDevicePhysicalNetworks(t *testing.T, s Store) {
	f := newNets(t, s, 9)
	for _, n := range []*trustack.Network{
		{ID: "flat2", Type: trustack.NetworkFlat, PhysicalNetwork: "physnet2"},
		{ID: "vlan1", Type: trustack.NetworkVLAN, PhysicalNetwork: "physnet1", SegmentationID: 10},
		{ID: "vlan1b", Type: trustack.NetworkVLAN, PhysicalNetwork: "physnet1", SegmentationID: 11},
		{ID: "vx", Type: trustack.NetworkVXLAN, SegmentationID: 7},
		{ID: "flat3", Type: trustack.NetworkFlat, PhysicalNetwork: "physnet3"},
	} {
		n.ProjectID, n.Standard = "p", std()
		must(t, s.CreateNetwork(ctx, n, -1))
	}
	for i, on := range []struct{ network, device string }{{"flat2", "vm"}, {"vlan1", "vm"}, {"vlan1b", "vm"}, {"vx", "vm"}, {"flat3", "other"}} {
		p := newPort(fmt.Sprint("port-", i), on.network, "p")
		p.DeviceID = on.device
		must(t, s.CreatePort(ctx, p, f.alloc, -1))
	}
	got, err := s.DevicePhysicalNetworks(ctx, "vm")
	must(t, err)
	equal(t, got, []string{"physnet1", "physnet2"})
	got, err = s.DevicePhysicalNetworks(ctx, "nobody")
	must(t, err)
	equal(t, len(got), 0)
}
