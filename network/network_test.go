package network_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/network"
	"github.com/trustack/trustack/sqlstore"
	"github.com/trustack/trustack/wire"
)

var ctx = context.Background()

// newService returns the networking service over a new SQLite store,
// with seeded randomness.
func newService(t testing.TB) *network.Service {
	t.Helper()
	db, err := sqlstore.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "network.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return network.New(db, network.Options{Rand: rand.New(rand.NewPCG(1, 2))})
}

func ptr[T any](v T) *T { return &v }

// check fails t if err is not nil.
func check(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// refused fails t unless err has the code.
func refused(t testing.TB, err error, code string) {
	t.Helper()
	if got := trustack.ErrorCode(err); got != code {
		t.Errorf("got error %v (code %q), want code %q", err, got, code)
	}
}

// Callers of the tests: a member of project p1, and an administrator.
var (
	member = network.Caller{ProjectID: "p1"}
	admin  = network.Caller{ProjectID: "admin", Admin: true}
)

// dualStack is a network of p1 with an IPv4 subnet, 10.1.0.0/24, and an
// IPv6 subnet whose addresses are automatic, 2001:db8::/64 with the
// modes given.
type dualStack struct {
	network   *trustack.Network
	v4, slaac *trustack.Subnet
}

func newDualStack(t testing.TB, svc *network.Service, raMode, addressMode string) dualStack {
	t.Helper()
	var d dualStack
	var err error
	d.network, err = svc.CreateNetwork(ctx, member, network.NetworkSpec{Name: ptr("dual")})
	check(t, err)
	d.v4, err = svc.CreateSubnet(ctx, member, network.SubnetSpec{NetworkID: d.network.ID, IPVersion: 4, CIDR: netip.MustParsePrefix("10.1.0.0/24")})
	check(t, err)
	d.slaac, err = svc.CreateSubnet(ctx, member, network.SubnetSpec{NetworkID: d.network.ID, IPVersion: 6, CIDR: netip.MustParsePrefix("2001:db8::/64"),
		IPv6RAMode: ptr(raMode), IPv6AddressMode: ptr(addressMode)})
	check(t, err)
	return d
}

// ip is a fixed IP on a subnet.
func ip(subnet *trustack.Subnet, addr string) trustack.FixedIP {
	return trustack.FixedIP{SubnetID: subnet.ID, Address: netip.MustParseAddr(addr)}
}

// TestPortAddresses checks the fixed IPs a port gets, as Neutron's IPAM
// gives them: those asked for (or the defaults) and, but for a router's
// interface, its MAC's address on each subnet whose addresses are
// automatic, with either IPv6 mode saying so.
func TestPortAddresses(t *testing.T) {
	for _, modes := range [][2]string{{trustack.IPv6SLAAC, trustack.IPv6SLAAC}, {trustack.DHCPv6Stateless, trustack.DHCPv6Stateless}, {trustack.IPv6SLAAC, ""}} {
		t.Run(modes[0]+" "+modes[1], func(t *testing.T) {
			svc := newService(t)
			d := newDualStack(t, svc, modes[0], modes[1])
			// Each port has a MAC of its own, fa:16:3e:00:00:0N, whose
			// automatic address is 2001:db8::f816:3eff:fe00:N.
			eui64 := ip(d.slaac, "2001:db8::f816:3eff:fe00:0")
			tests := []struct {
				name  string
				owner string
				ips   *[]network.FixedIPSpec
				want  []trustack.FixedIP
			}{
				{"an address asked for", "", &[]network.FixedIPSpec{{Address: netip.MustParseAddr("10.1.0.5")}},
					[]trustack.FixedIP{ip(d.v4, "10.1.0.5"), eui64}},
				{"no address", "", &[]network.FixedIPSpec{}, []trustack.FixedIP{eui64}},
				{"the defaults", "", nil, []trustack.FixedIP{{SubnetID: d.v4.ID}, eui64}},
				{"the automatic subnet named", "", &[]network.FixedIPSpec{{SubnetID: d.slaac.ID}, {SubnetID: d.v4.ID, Address: netip.MustParseAddr("10.1.0.6")}},
					[]trustack.FixedIP{eui64, ip(d.v4, "10.1.0.6")}},
				{"a router's interface", trustack.OwnerRouterInterface, &[]network.FixedIPSpec{{SubnetID: d.v4.ID, Address: netip.MustParseAddr("10.1.0.7")}},
					[]trustack.FixedIP{ip(d.v4, "10.1.0.7")}},
				{"a router's interface on the automatic subnet", trustack.OwnerRouterInterface, &[]network.FixedIPSpec{{SubnetID: d.slaac.ID, Address: netip.MustParseAddr("2001:db8::1")}},
					[]trustack.FixedIP{ip(d.slaac, "2001:db8::1")}},
			}
			for i, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					p, err := svc.CreatePort(ctx, member, network.PortSpec{NetworkID: d.network.ID, MACAddress: ptr(fmt.Sprintf("fa:16:3e:00:00:%02x", i+1)),
						FixedIPs: tt.ips, DeviceOwner: ptr(tt.owner)})
					check(t, err)
					want := slices.Clone(tt.want)
					for j := range want {
						if want[j] == eui64 {
							want[j].Address = netip.MustParseAddr(fmt.Sprintf("2001:db8::f816:3eff:fe00:%x", i+1))
						}
					}
					got := slices.Clone(p.FixedIPs)
					for j := range got {
						if j < len(want) && !want[j].Address.IsValid() && got[j].SubnetID == want[j].SubnetID && d.v4.CIDR.Contains(got[j].Address) {
							got[j].Address = netip.Addr{} // allocated at random
						}
					}
					if !reflect.DeepEqual(got, want) {
						t.Errorf("fixed IPs %v, want %v", p.FixedIPs, want)
					}
				})
			}
		})
	}
}

// TestAutomaticSubnetAddsAddresses checks that a new subnet whose
// addresses are automatic gives the ports already on its network their
// MACs' addresses there, as Neutron's, but not routers' interfaces.
func TestAutomaticSubnetAddsAddresses(t *testing.T) {
	svc := newService(t)
	n, err := svc.CreateNetwork(ctx, member, network.NetworkSpec{Name: ptr("n")})
	check(t, err)
	v4, err := svc.CreateSubnet(ctx, member, network.SubnetSpec{NetworkID: n.ID, IPVersion: 4, CIDR: netip.MustParsePrefix("10.1.0.0/24")})
	check(t, err)
	p, err := svc.CreatePort(ctx, member, network.PortSpec{NetworkID: n.ID, MACAddress: ptr("fa:16:3e:00:00:03")})
	check(t, err)
	r, err := svc.CreateRouter(ctx, member, network.RouterSpec{Name: ptr("r")})
	check(t, err)
	iface, err := svc.AddRouterInterface(ctx, member, r.ID, v4.ID, "")
	check(t, err)
	slaac, err := svc.CreateSubnet(ctx, member, network.SubnetSpec{NetworkID: n.ID, IPVersion: 6, CIDR: netip.MustParsePrefix("2001:db8::/64"),
		IPv6RAMode: ptr(trustack.IPv6SLAAC), IPv6AddressMode: ptr(trustack.IPv6SLAAC)})
	check(t, err)
	for _, tt := range []struct {
		name string
		port *trustack.Port
		want []trustack.FixedIP
	}{
		{"a port", p, append(slices.Clone(p.FixedIPs), ip(slaac, "2001:db8::f816:3eff:fe00:3"))},
		{"a router's interface", iface, iface.FixedIPs},
	} {
		got, err := svc.Port(ctx, member, tt.port.ID)
		check(t, err)
		if !reflect.DeepEqual(got.FixedIPs, tt.want) {
			t.Errorf("%s's fixed IPs after an automatic subnet was added: %v, want %v", tt.name, got.FixedIPs, tt.want)
		}
	}
}

// TestPortAddressesKept checks that an update of a port's fixed IPs that
// names a subnet it has an address on keeps that address, as Neutron's:
// a router's interface stays at its subnet's gateway. Its automatic
// addresses stay too.
func TestPortAddressesKept(t *testing.T) {
	svc := newService(t)
	d := newDualStack(t, svc, trustack.IPv6SLAAC, trustack.IPv6SLAAC)
	p, err := svc.CreatePort(ctx, member, network.PortSpec{NetworkID: d.network.ID, MACAddress: ptr("fa:16:3e:00:00:02"),
		FixedIPs: &[]network.FixedIPSpec{{SubnetID: d.v4.ID, Address: netip.MustParseAddr("10.1.0.10")}}})
	check(t, err)
	eui64 := ip(d.slaac, "2001:db8::f816:3eff:fe00:2")
	update := func(id string, ips ...network.FixedIPSpec) []trustack.FixedIP {
		t.Helper()
		p, err := svc.UpdatePort(ctx, member, id, network.PortSpec{FixedIPs: &ips})
		check(t, err)
		return p.FixedIPs
	}

	if got, want := update(p.ID, network.FixedIPSpec{SubnetID: d.v4.ID}), []trustack.FixedIP{ip(d.v4, "10.1.0.10"), eui64}; !reflect.DeepEqual(got, want) {
		t.Errorf("fixed IPs naming the subnet of the port's address: %v, want %v", got, want)
	}
	got := update(p.ID, network.FixedIPSpec{SubnetID: d.v4.ID}, network.FixedIPSpec{SubnetID: d.v4.ID})
	if len(got) != 3 || got[0] != ip(d.v4, "10.1.0.10") || got[1].SubnetID != d.v4.ID || got[1].Address == got[0].Address || got[2] != eui64 {
		t.Errorf("fixed IPs naming the subnet twice: %v, want 10.1.0.10, another address of it and %v", got, eui64.Address)
	}
	if got, want := update(p.ID, network.FixedIPSpec{SubnetID: d.v4.ID, Address: netip.MustParseAddr("10.1.0.20")}), []trustack.FixedIP{ip(d.v4, "10.1.0.20"), eui64}; !reflect.DeepEqual(got, want) {
		t.Errorf("fixed IPs with another address: %v, want %v", got, want)
	}

	r, err := svc.CreateRouter(ctx, member, network.RouterSpec{Name: ptr("r")})
	check(t, err)
	iface, err := svc.AddRouterInterface(ctx, member, r.ID, d.v4.ID, "")
	check(t, err)
	got = update(iface.ID, network.FixedIPSpec{SubnetID: d.v4.ID})
	if want := []trustack.FixedIP{ip(d.v4, "10.1.0.1")}; !reflect.DeepEqual(got, want) {
		t.Errorf("router interface's fixed IPs naming its subnet: %v, want %v", got, want)
	}
}

// TestFloatingIPFixedAddressNeedsPort checks that a fixed address asked
// for without a port is refused, as Neutron's 400, rather than ignored.
func TestFloatingIPFixedAddressNeedsPort(t *testing.T) {
	svc := newService(t)
	ext, err := svc.CreateNetwork(ctx, admin, network.NetworkSpec{Name: ptr("public"), External: ptr(true)})
	check(t, err)
	_, err = svc.CreateSubnet(ctx, admin, network.SubnetSpec{NetworkID: ext.ID, IPVersion: 4, CIDR: netip.MustParsePrefix("172.24.4.0/24"), EnableDHCP: ptr(false)})
	check(t, err)
	d := newDualStack(t, svc, trustack.IPv6SLAAC, trustack.IPv6SLAAC)
	p, err := svc.CreatePort(ctx, member, network.PortSpec{NetworkID: d.network.ID})
	check(t, err)
	fixed := p.FixedIPs[0].Address

	_, err = svc.CreateFloatingIP(ctx, member, network.FloatingIPSpec{NetworkID: ext.ID, FixedAddress: fixed})
	refused(t, err, trustack.EINVALID)
	f, err := svc.CreateFloatingIP(ctx, member, network.FloatingIPSpec{NetworkID: ext.ID})
	check(t, err)
	for _, port := range []*string{nil, ptr("")} {
		_, err = svc.UpdateFloatingIP(ctx, member, f.ID, network.FloatingIPSpec{PortID: port, FixedAddress: fixed})
		refused(t, err, trustack.EINVALID)
	}
	got, err := svc.FloatingIP(ctx, member, f.ID)
	check(t, err)
	if got.Revision != f.Revision || got.PortID != "" {
		t.Errorf("floating IP after refused updates: revision %d, port %q; want revision %d and no port", got.Revision, got.PortID, f.Revision)
	}
	all, err := svc.FloatingIPs(ctx, member)
	check(t, err)
	if len(all) != 1 {
		t.Errorf("%d floating IPs after a refused create, want 1", len(all))
	}
}

// plugs records the ports the service has hosts plug; it answers every
// other request of the Agents interface.
type plugs struct {
	mu    sync.Mutex
	ports map[string]wire.Port // the last plugged, by ID
}

func (a *plugs) Plug(_ context.Context, _ string, p wire.Port) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.ports[p.ID] = p
	return nil
}

func (a *plugs) last(id string) wire.Port {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ports[id]
}

func (*plugs) Unplug(context.Context, string, string) error                       { return nil }
func (*plugs) SecurityGroups(context.Context, string, []wire.SecurityGroup) error { return nil }
func (*plugs) SetDHCP(context.Context, string, wire.DHCP) error                   { return nil }
func (*plugs) RemoveDHCP(context.Context, string, string) error                   { return nil }
func (*plugs) SetLeases(context.Context, string, wire.DHCPLeases) error           { return nil }
func (*plugs) SetRouter(context.Context, string, wire.Router) error               { return nil }
func (*plugs) RemoveRouter(context.Context, string, string) error                 { return nil }

// TestDeleteAutomaticSubnet checks that a subnet whose addresses are
// automatic can be deleted from under the ports with an address on it,
// which lose it, also on their host; but not from under a router's
// interface.
func TestDeleteAutomaticSubnet(t *testing.T) {
	svc := newService(t)
	agents := &plugs{ports: map[string]wire.Port{}}
	svc.SetAgents(agents)
	d := newDualStack(t, svc, trustack.DHCPv6Stateless, trustack.DHCPv6Stateless)
	p, err := svc.CreatePort(ctx, admin, network.PortSpec{ProjectID: "p1", NetworkID: d.network.ID, HostID: ptr("compute-1")})
	check(t, err)
	r, err := svc.CreateRouter(ctx, member, network.RouterSpec{Name: ptr("r")})
	check(t, err)
	iface, err := svc.CreatePort(ctx, member, network.PortSpec{NetworkID: d.network.ID, FixedIPs: &[]network.FixedIPSpec{{SubnetID: d.slaac.ID}}})
	check(t, err)
	_, err = svc.AddRouterInterface(ctx, member, r.ID, "", iface.ID)
	check(t, err)

	refused(t, svc.DeleteSubnet(ctx, member, d.slaac.ID), trustack.ECONFLICT)
	_, err = svc.RemoveRouterInterface(ctx, member, r.ID, "", iface.ID)
	check(t, err)
	check(t, svc.DeleteSubnet(ctx, member, d.slaac.ID))
	after, err := svc.Port(ctx, member, p.ID)
	check(t, err)
	if len(after.FixedIPs) != 1 || after.FixedIPs[0].SubnetID != d.v4.ID {
		t.Errorf("port's fixed IPs after its automatic subnet went: %v, want only its address on %s", after.FixedIPs, d.v4.ID)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		plugged := agents.last(p.ID)
		if len(plugged.Addresses) == 1 && plugged.Addresses[0].SubnetID == d.v4.ID {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the port's host last plugged it with %v, want only its address on %s", plugged.Addresses, d.v4.ID)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDHCPAddress checks that a network's DHCP server takes the first
// free address of each of its DHCP subnets' pools, as Neutron's: where
// clients expect it, and not one of those they may choose.
func TestDHCPAddress(t *testing.T) {
	svc := newService(t)
	n, err := svc.CreateNetwork(ctx, member, network.NetworkSpec{Name: ptr("n")})
	check(t, err)
	a, err := svc.CreateSubnet(ctx, member, network.SubnetSpec{NetworkID: n.ID, IPVersion: 4, CIDR: netip.MustParsePrefix("10.1.0.0/24")})
	check(t, err)
	b, err := svc.CreateSubnet(ctx, member, network.SubnetSpec{NetworkID: n.ID, IPVersion: 4, CIDR: netip.MustParsePrefix("10.2.0.0/28"), EnableDHCP: ptr(false),
		AllocationPools: &[]trustack.IPRange{{Start: netip.MustParseAddr("10.2.0.5"), End: netip.MustParseAddr("10.2.0.6")}, {Start: netip.MustParseAddr("10.2.0.9"), End: netip.MustParseAddr("10.2.0.14")}}})
	check(t, err)
	for _, addr := range []string{"10.2.0.5", "10.2.0.6"} {
		_, err := svc.CreatePort(ctx, member, network.PortSpec{NetworkID: n.ID, FixedIPs: &[]network.FixedIPSpec{{Address: netip.MustParseAddr(addr)}}})
		check(t, err)
	}
	_, err = svc.UpdateSubnet(ctx, member, b.ID, network.SubnetSpec{EnableDHCP: ptr(true)})
	check(t, err)
	dhcp, err := svc.Ports(ctx, member, trustack.PortFilter{NetworkID: n.ID, DeviceOwner: trustack.OwnerDHCP})
	check(t, err)
	var got [][]trustack.FixedIP
	for _, p := range dhcp {
		got = append(got, p.FixedIPs)
	}
	if want := [][]trustack.FixedIP{{ip(a, "10.1.0.2"), ip(b, "10.2.0.9")}}; !reflect.DeepEqual(got, want) {
		t.Errorf("fixed IPs of the DHCP ports %v, want %v", got, want)
	}
}
