package linux

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/internal/namespace"
	"github.com/trustack/trustack/wire"
)

// The firewall's costs on one host, in namespaces: how long a change
// takes on a host of many ports held to a large remote group, and what
// the verdict on a packet costs.

// remoteGroup is the group "clients" of n members, 10.1.0.1 the first,
// and the group "servers", whose ingress rule lets in clients (and
// others' rules, if any).
func remoteGroup(n int, others ...wire.Rule) []wire.SecurityGroup {
	members := make([]string, n)
	for i := range members {
		members[i] = fmt.Sprintf("10.%d.%d.%d", 1+i/65536, i/256%256, 1+i%256)
	}
	fromClients := wire.Rule{Direction: trustack.Ingress, EtherType: trustack.IPv4, RemoteGroup: "clients"}
	return []wire.SecurityGroup{
		{ID: "clients", Revision: 1, Stateful: true, Rules: []wire.Rule{egressAll}, Members: members},
		{ID: "servers", Revision: 1, Stateful: true, Rules: append([]wire.Rule{egressAll, fromClients}, others...)},
	}
}

// BenchmarkFirewallChange: on a host of 100 ports in a group whose rule
// lets in a remote group of 1,000 members, the time to enforce a member
// joining or leaving the remote group, a rule added to or deleted from the
// ports' group, and a port plugged or unplugged.
func BenchmarkFirewallChange(b *testing.B) {
	ns := newFabric(b).host()
	n := newNetwork(b, ns)
	groups := remoteGroup(1000)
	setGroups(b, n, groups...)
	for i := range 100 {
		plugAll(b, n, securedPort(fmt.Sprintf("%08x-0000-4000-8000-000000000000", i), fmt.Sprintf("fa:16:3e:00:%02x:%02x", i/256, i%256),
			fmt.Sprintf("10.1.0.%d", 101+i), "servers"))
	}
	// Each change alternates between two states of a group, with a
	// revision above the last, over all the benchmark's runs: a host
	// keeps the rules of the highest revision it has seen.
	revision := int64(1)
	alternate := func(b *testing.B, one, other wire.SecurityGroup) {
		for range b.N {
			revision++
			g := one
			if revision%2 == 1 {
				g = other
			}
			g.Revision = revision
			setGroups(b, n, g)
		}
	}
	b.Run("member", func(b *testing.B) {
		joined := groups[0]
		joined.Members = append(joined.Members[:len(joined.Members):len(joined.Members)], "10.8.0.1")
		alternate(b, joined, groups[0])
	})
	b.Run("rule", func(b *testing.B) {
		ssh := wire.Rule{Direction: trustack.Ingress, EtherType: trustack.IPv4, Protocol: "tcp", PortMin: intp(22), PortMax: intp(22)}
		alternate(b, remoteGroup(1000, ssh)[1], groups[1])
	})
	b.Run("port", func(b *testing.B) {
		p := securedPort("ffffffff-0000-4000-8000-000000000000", "fa:16:3e:ff:00:01", "10.1.0.250", "servers")
		for range b.N {
			plugAll(b, n, p)
			if err := n.Unplug(ctx, p.ID); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkVerdict: the time a host takes to forward a packet from one
// guest to another, each op a UDP packet written to the sender's tap,
// which the kernel bridges, tracks and filters before the write returns:
// with no firewall (the ports without port security), with a rule letting
// in every IPv4 packet, and with a rule letting in a remote group of
// 1,000 members, the sender among them. The packets stay unreplied, so
// each goes through the whole rule set.
func BenchmarkVerdict(b *testing.B) {
	allowAll := wire.Rule{Direction: trustack.Ingress, EtherType: trustack.IPv4}
	for _, c := range []struct {
		name     string
		security bool
		groups   []wire.SecurityGroup
	}{
		{"no-firewall", false, nil},
		{"allow-all", true, []wire.SecurityGroup{{ID: "clients", Revision: 1, Stateful: true, Rules: []wire.Rule{egressAll}},
			{ID: "servers", Revision: 1, Stateful: true, Rules: []wire.Rule{egressAll, allowAll}}}},
		{"remote-group-1000", true, remoteGroup(1000)},
	} {
		b.Run(c.name, func(b *testing.B) {
			ns := newFabric(b).host()
			n := newNetwork(b, ns)
			setGroups(b, n, c.groups...)
			from := securedPort("aaaaaaaa-0000-4000-8000-0000000000b1", "fa:16:3e:00:0b:01", "10.1.0.1", "clients")
			to := securedPort("bbbbbbbb-0000-4000-8000-0000000000b2", "fa:16:3e:00:0b:02", "10.1.0.2", "servers")
			from.PortSecurity, to.PortSecurity = c.security, c.security
			plugAll(b, n, from, to)
			sender, receiver := attachTap(b, ns, from), attachTap(b, ns, to)
			// The packets get through (once the bridge has its ports
			// forwarding, and has learnt the receiver's MAC from its
			// gratuitous ARP), before they are counted.
			packet, buf := udpPacket(from, to), make([]byte, 2048)
			for got, deadline := 0, time.Now().Add(5*time.Second); got < 3; {
				if time.Now().After(deadline) {
					b.Fatalf("the receiver got %d of 3 packets", got)
				}
				if _, err := receiver.Write(gratuitousARP(to)); err != nil {
					b.Fatal(err)
				}
				if _, err := sender.Write(packet); err != nil {
					b.Fatal(err)
				}
				receiver.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
				if k, err := receiver.Read(buf); err == nil && string(buf[:k]) == string(packet) {
					got++
				}
			}
			b.ResetTimer()
			for range b.N {
				if _, err := sender.Write(packet); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// attachTap opens a port's tap, as its guest's QEMU would.
func attachTap(tb testing.TB, hostNS string, p wire.Port) *os.File {
	tb.Helper()
	ns, err := namespace.Open(hostNS)
	if err != nil {
		tb.Fatal(err)
	}
	defer ns.Close()
	var tap *os.File
	if err := ns.Do(func() (err error) { tap, err = openTap(wire.TapName(p.ID)); return err }); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { tap.Close() })
	return tap
}

func ipOf(p wire.Port) net.IP { return net.ParseIP(p.Addresses[0].Address).To4() }

func macOf(p wire.Port) net.HardwareAddr { mac, _ := p.HardwareAddr(); return mac }

// gratuitousARP is the ARP request a port sends for its own address.
func gratuitousARP(p wire.Port) []byte {
	f := append(append(net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, macOf(p)...), 0x08, 0x06)
	f = append(f, 0, 1, 0x08, 0, 6, 4, 0, 1)
	f = append(append(f, macOf(p)...), ipOf(p)...)
	f = append(append(f, make([]byte, 6)...), ipOf(p)...)
	return append(f, make([]byte, 60-len(f))...)
}

// udpPacket is a 60-byte Ethernet frame of a UDP datagram from one port
// to another.
func udpPacket(from, to wire.Port) []byte {
	f := append(append(append([]byte{}, macOf(to)...), macOf(from)...), 0x08, 0x00)
	ip := []byte{0x45, 0, 0, 46, 0, 0, 0x40, 0, 64, 17, 0, 0}
	ip = append(append(ip, ipOf(from)...), ipOf(to)...)
	var sum uint32
	for i := 0; i < len(ip); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	udp := []byte{0x03, 0xe8, 0x07, 0xd0, 0, 26, 0, 0} // 1000 to 2000, no checksum
	f = append(append(f, ip...), udp...)
	return append(f, make([]byte, 60-len(f))...)
}
