package linux

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/internal/namespace"
	"github.com/trustack/trustack/internal/nettest"
	"github.com/trustack/trustack/wire"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

var ctx = context.Background()

// The tests stand hosts and guests up as network namespaces, joined by a
// "physical" bridge; they need root, as the agent does.
func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Println("hostnet/linux: the tests need root, to make network namespaces")
		os.Exit(0)
	}
	os.Exit(m.Run())
}

var nsCount atomic.Int64

// run runs a command, failing the test if it fails.
func run(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// newNamespace makes a network namespace with its loopback up, removed
// when the test ends.
func newNamespace(t testing.TB, role string) string {
	t.Helper()
	name := fmt.Sprintf("tst-%s-%d-%d", role, os.Getpid(), nsCount.Add(1))
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	run(t, "ip", "-n", name, "link", "set", "lo", "up")
	return name
}

// fabric is a "physical" network: a bridge in a namespace of its own that
// hosts join through veth pairs.
type fabric struct {
	t    testing.TB
	ns   string
	next int
}

func newFabric(t testing.TB) *fabric {
	f := &fabric{t: t, ns: newNamespace(t, "wire")}
	run(t, "ip", "-n", f.ns, "link", "add", "phys", "type", "bridge", "mcast_snooping", "0")
	run(t, "ip", "-n", f.ns, "link", "set", "phys", "up")
	return f
}

// host makes a host namespace joined to the fabric on two interfaces:
// eth1, with an address on the underlay that VXLAN segments cross, and
// eth2, its interface on physical network physnet1.
func (f *fabric) host() string {
	f.next++
	ns := newNamespace(f.t, "host")
	for _, eth := range []string{"eth1", "eth2"} {
		peer := fmt.Sprintf("h%d%s", f.next, eth)
		run(f.t, "ip", "link", "add", eth, "netns", ns, "type", "veth", "peer", "name", peer, "netns", f.ns)
		run(f.t, "ip", "-n", f.ns, "link", "set", peer, "master", "phys", "up")
		run(f.t, "ip", "-n", ns, "link", "set", eth, "up")
	}
	run(f.t, "ip", "-n", ns, "addr", "add", fmt.Sprintf("192.0.2.%d/24", f.next), "dev", "eth1")
	return ns
}

func newNetwork(t testing.TB, ns string) *Network {
	t.Helper()
	return openNetwork(t, Config{Namespace: ns})
}

// newSwitchedNetwork is newNetwork with an Open vSwitch of its own, for
// flat and VLAN networks, and its state in dir.
func newSwitchedNetwork(t testing.TB, ns, dir string) *Network {
	t.Helper()
	o, err := StartOVS(ctx, filepath.Join(dir, "ovs"), ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(o.Stop)
	return openNetwork(t, Config{Namespace: ns, OVSDB: o.DB, StateDir: dir})
}

func openNetwork(t testing.TB, cfg Config) *Network {
	t.Helper()
	cfg.OverlayInterface, cfg.VXLANGroup = "eth1", netip.MustParsePrefix("239.1.0.0/16")
	cfg.PhysicalNetworks = map[string]string{"physnet1": "eth2"}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// What runs outside the namespace (DHCP servers) goes too.
		n.Sync(ctx, wire.HostNetwork{})
		n.Close()
	})
	return n
}

// guest stands for a server's NIC: it opens the port's tap, as QEMU
// does, and relays its frames to and from a namespace whose interface
// has the port's MAC (and addr, unless ""), so that what reaches the tap
// reaches a real network stack.
type guest struct{ ns string }

func newGuest(t testing.TB, hostNS string, p wire.Port, addr string) *guest {
	t.Helper()
	g := &guest{ns: newNamespace(t, "guest")}
	relay := "r" + shortID(p.ID, 12)
	run(t, "ip", "link", "add", "eth0", "netns", g.ns, "address", p.MAC, "type", "veth", "peer", "name", relay, "netns", hostNS)
	if addr != "" {
		run(t, "ip", "-n", g.ns, "addr", "add", addr, "dev", "eth0")
	}
	run(t, "ip", "-n", g.ns, "link", "set", "eth0", "up")
	// What the relay copies must carry its checksums whole: a veth leaves
	// them to be computed, which a tap's reader does not.
	run(t, "ip", "netns", "exec", g.ns, "ethtool", "-K", "eth0", "tx", "off")
	run(t, "ip", "-n", hostNS, "link", "set", relay, "up")
	ns, err := namespace.Open(hostNS)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	var tap, sock *os.File
	err = ns.Do(func() error {
		var err error
		if tap, err = openTap(wire.TapName(p.ID)); err != nil {
			return err
		}
		sock, err = packetSocket(relay)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tap.Close(); sock.Close() })
	go copyFrames(sock, tap)
	go copyFrames(tap, sock)
	return g
}

// openTap attaches to a tap device, as QEMU's -netdev tap,ifname= does.
func openTap(name string) (*os.File, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("attach to %s: %w", name, err)
	}
	return os.NewFile(uintptr(fd), name), nil
}

// packetSocket is a raw socket on an interface that reads only the frames
// it receives, not those sent through it.
func packetSocket(ifname string) (*os.File, error) {
	l, err := netlink.LinkByName(ifname)
	if err != nil {
		return nil, err
	}
	proto := int(htons(unix.ETH_P_ALL))
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return nil, err
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
		unix.Close(fd)
		return nil, err
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: l.Attrs().Index}); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), ifname), nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func copyFrames(dst, src *os.File) {
	buf := make([]byte, 65536)
	for {
		n, err := src.Read(buf)
		if err != nil {
			return
		}
		dst.Write(buf[:n])
	}
}

// pings reports whether the guest gets an answer from addr within a few
// tries. It forgets the neighbours it knew first, so that what a ping
// before it met (an ARP request dropped, say) does not decide it.
func (g *guest) pings(addr string) bool {
	exec.Command("ip", "-n", g.ns, "neigh", "flush", "all").Run()
	return exec.Command("ip", "netns", "exec", g.ns, "ping", "-c", "1", "-W", "1", "-w", "3", addr).Run() == nil
}

func port(id, network string, seg wire.Segment, mac string) wire.Port {
	return wire.Port{ID: id, NetworkID: network, MAC: mac, Segment: seg, AdminUp: true}
}

var (
	vxlan1 = wire.Segment{Type: trustack.NetworkVXLAN, SegmentationID: 1001, MTU: 1450}
	vxlan2 = wire.Segment{Type: trustack.NetworkVXLAN, SegmentationID: 1002, MTU: 1450}
	local  = wire.Segment{Type: trustack.NetworkLocal, MTU: 1500}

	vlan100 = wire.Segment{Type: trustack.NetworkVLAN, PhysicalNetwork: "physnet1", SegmentationID: 100, MTU: 1500}
	vlan101 = wire.Segment{Type: trustack.NetworkVLAN, PhysicalNetwork: "physnet1", SegmentationID: 101, MTU: 1500}
	flat    = wire.Segment{Type: trustack.NetworkFlat, PhysicalNetwork: "physnet1", MTU: 1500}
)

func TestPlugWiresAPortAndUnplugRemovesIt(t *testing.T) {
	n := newNetwork(t, newFabric(t).host())
	p := port("8c1e2a44-5b7f-4e0c-9d3a-1f2e3d4c5b6a", "net-a", local, "fa:16:3e:12:34:56")
	if err := n.Plug(ctx, p); err != nil {
		t.Fatal(err)
	}
	tap, err := n.nl.LinkByName(wire.TapName(p.ID))
	if err != nil {
		t.Fatalf("no tap after Plug: %v", err)
	}
	br, err := n.nl.LinkByName(bridgeName("net-a"))
	if err != nil {
		t.Fatalf("no bridge after Plug: %v", err)
	}
	if a := tap.Attrs(); a.MasterIndex != br.Attrs().Index || a.MTU != 1500 || a.HardwareAddr.String() != "fe:16:3e:12:34:56" || a.Flags&net.FlagUp == 0 {
		t.Errorf("tap %s: master %d (bridge %d), MTU %d, MAC %s, flags %v; want on the bridge, MTU 1500, MAC fe:16:3e:12:34:56, up",
			a.Name, a.MasterIndex, br.Attrs().Index, a.MTU, a.HardwareAddr, a.Flags)
	}
	// Plugging again changes nothing.
	if err := n.Plug(ctx, p); err != nil {
		t.Fatal(err)
	}
	if again, _ := n.nl.LinkByName(wire.TapName(p.ID)); again.Attrs().Index != tap.Attrs().Index {
		t.Errorf("plugging again made the tap anew")
	}
	if got, _ := n.Ports(ctx); len(got) != 1 || got[0].ID != p.ID {
		t.Errorf("Ports = %v, want the port plugged", got)
	}
	if err := n.Unplug(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{wire.TapName(p.ID), bridgeName("net-a")} {
		if l, _ := n.linkByName(name); l != nil {
			t.Errorf("%s is still there after Unplug", name)
		}
	}
	if err := n.Unplug(ctx, p.ID); err != nil {
		t.Errorf("unplugging again: %v, want no error", err)
	}
	bad := p
	bad.MAC = "nonsense"
	if err := n.Plug(ctx, bad); trustack.ErrorCode(err) != trustack.EINVALID {
		t.Errorf("Plug with a bad MAC: %v, want EINVALID", err)
	}
}

// TestVXLANJoinsGuestsOfANetworkAcrossHosts: guests of one VXLAN network on
// two hosts reach each other over the underlay; a guest of another
// network, though in the same subnet, reaches neither.
func TestVXLANJoinsGuestsOfANetworkAcrossHosts(t *testing.T) {
	f := newFabric(t)
	h1, h2 := f.host(), f.host()
	n1, n2 := newNetwork(t, h1), newNetwork(t, h2)
	a := port("aaaaaaaa-0000-4000-8000-000000000001", "net-1", vxlan1, "fa:16:3e:00:00:01")
	b := port("bbbbbbbb-0000-4000-8000-000000000002", "net-1", vxlan1, "fa:16:3e:00:00:02")
	c := port("cccccccc-0000-4000-8000-000000000003", "net-2", vxlan2, "fa:16:3e:00:00:03")
	for _, plug := range []struct {
		n *Network
		p wire.Port
	}{{n1, a}, {n2, b}, {n2, c}} {
		if err := plug.n.Plug(ctx, plug.p); err != nil {
			t.Fatal(err)
		}
	}
	ga := newGuest(t, h1, a, "10.1.0.1/24")
	newGuest(t, h2, b, "10.1.0.2/24")
	gc := newGuest(t, h2, c, "10.1.0.3/24")
	if !ga.pings("10.1.0.2") {
		t.Errorf("guest a cannot reach guest b on its network on another host")
	}
	if ga.pings("10.1.0.3") || gc.pings("10.1.0.1") {
		t.Errorf("a guest of another network reaches guest a")
	}
	vx, err := n1.nl.LinkByName(vxlanName("net-1"))
	if err != nil {
		t.Fatal(err)
	}
	if v := vx.(*netlink.Vxlan); v.VxlanId != 1001 || v.Group.String() != "239.1.3.233" {
		t.Errorf("VXLAN device: VNI %d, group %s; want 1001, 239.1.3.233", v.VxlanId, v.Group)
	}
}

// TestSyncLeavesOnlyWhatThePortsOwn: a sync removes the taps of ports the
// host no longer has and the devices of networks it no longer serves,
// and leaves devices trustack did not make.
func TestSyncLeavesOnlyWhatThePortsOwn(t *testing.T) {
	f := newFabric(t)
	ns := f.host()
	n := newSwitchedNetwork(t, ns, t.TempDir())
	run(t, "ip", "-n", ns, "link", "add", "tapmine", "type", "bridge")
	a := port("aaaaaaaa-0000-4000-8000-00000000000a", "net-1", vxlan1, "fa:16:3e:00:00:0a")
	b := port("bbbbbbbb-0000-4000-8000-00000000000b", "net-2", vxlan2, "fa:16:3e:00:00:0b")
	c := port("cccccccc-0000-4000-8000-00000000000c", "net-3", vlan100, "fa:16:3e:00:00:0c")
	plugAll(t, n, a, b, c)
	if err := n.SetDHCP(ctx, dhcpSubnet()); err != nil {
		t.Fatal(err)
	}
	// A restarted agent knows nothing until the controllers tell it.
	restarted := openNetwork(t, n.cfg)
	if err := restarted.Sync(ctx, wire.HostNetwork{Ports: []wire.Port{b}}); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{wire.TapName(a.ID): false, bridgeName("net-1"): false, vxlanName("net-1"): false,
		wire.TapName(c.ID): false, bridgeName("net-3"): false, vethName("net-3"): false, dhcpVethName("net-1"): false,
		wire.TapName(b.ID): true, bridgeName("net-2"): true, vxlanName("net-2"): true, "tapmine": true} {
		if l, _ := restarted.linkByName(name); (l != nil) != want {
			t.Errorf("after sync, %s there: %v, want %v", name, l != nil, want)
		}
	}
	if _, err := os.Stat("/run/netns/" + n.dhcpNamespace("net-1")); !os.IsNotExist(err) {
		t.Errorf("after sync, the DHCP namespace of a network no longer served is still there (%v)", err)
	}
	if ports, err := restarted.vsctlOutput("list-ports", physicalBridgeName("physnet1")); err != nil || strings.TrimSpace(ports) != "eth2" {
		t.Errorf("after sync, the ports of the physical bridge are %q (%v), want eth2 alone", ports, err)
	}
	if got, _ := restarted.Ports(ctx); len(got) != 1 || got[0].ID != b.ID {
		t.Errorf("Ports after sync = %v, want port b alone", got)
	}
}

// TestVLANNetworksAreTaggedOnThePhysicalNetwork: a VLAN network's frames
// leave the host tagged with its VLAN; guests of one VLAN network on two
// hosts reach each other, and a guest of another VLAN network with the
// same addresses reaches neither; a flat network's frames are untagged.
func TestVLANNetworksAreTaggedOnThePhysicalNetwork(t *testing.T) {
	f := newFabric(t)
	h1, h2 := f.host(), f.host()
	n1, n2 := newSwitchedNetwork(t, h1, t.TempDir()), newSwitchedNetwork(t, h2, t.TempDir())
	a := port("aaaaaaaa-0000-4000-8000-0000000000a1", "vlan-a", vlan100, "fa:16:3e:00:01:01")
	b := port("bbbbbbbb-0000-4000-8000-0000000000b1", "vlan-a", vlan100, "fa:16:3e:00:01:02")
	c := port("cccccccc-0000-4000-8000-0000000000c1", "vlan-b", vlan101, "fa:16:3e:00:01:03")
	d := port("dddddddd-0000-4000-8000-0000000000d1", "flat", flat, "fa:16:3e:00:01:04")
	plugAll(t, n1, a, d)
	plugAll(t, n2, b, c)
	ga := newGuest(t, h1, a, "10.2.0.1/24")
	gb := newGuest(t, h2, b, "10.2.0.2/24")
	gc := newGuest(t, h2, c, "10.2.0.3/24")
	gd := newGuest(t, h1, d, "10.5.0.1/24")
	run(t, "ip", "-n", f.ns, "addr", "add", "10.5.0.100/24", "dev", "phys")

	tagged := nettest.Capture(t, f.ns, "phys", "vlan 100 and icmp")
	if !ga.pings("10.2.0.2") {
		t.Errorf("guest a cannot reach guest b of its VLAN network on another host")
	}
	if got := tagged(); !strings.Contains(got, "vlan 100") || !strings.Contains(got, "10.2.0.1 > 10.2.0.2") {
		t.Errorf("no ICMP tagged with VLAN 100 on the physical network; tcpdump saw:\n%s", got)
	}
	if ga.pings("10.2.0.3") || gc.pings("10.2.0.1") {
		t.Errorf("a guest of another VLAN network reaches guest a")
	}
	// A DHCP server on host 1 serves a guest on host 2: its replies, from
	// a namespace's socket, cross Open vSwitch with their checksums.
	server := port("dddddddd-0000-4000-8000-0000000000d2", "vlan-a", vlan100, "fa:16:3e:00:01:09")
	server.Addresses = []wire.Address{{SubnetID: "subnet-a", Address: "10.2.0.9", CIDR: "10.2.0.0/24"}}
	if err := n1.SetDHCP(ctx, wire.DHCP{SubnetID: "subnet-a", NetworkID: "vlan-a", Segment: vlan100, CIDR: "10.2.0.0/24", Port: server,
		Leases: []wire.DHCPHost{{PortID: b.ID, SubnetID: "subnet-a", MAC: b.MAC, Address: "10.2.0.2", Hostname: "b"}}}); err != nil {
		t.Fatal(err)
	}
	if got := gb.lease(t); !strings.HasPrefix(got, "10.2.0.2 ") {
		t.Errorf("guest b on host 2 leased %q from the DHCP server on host 1, want 10.2.0.2", got)
	}
	untagged := nettest.Capture(t, f.ns, "phys", "icmp") // untagged alone: a tagged frame is no IP frame to BPF
	if !gd.pings("10.5.0.100") {
		t.Errorf("a guest of the flat network cannot reach an address on the physical network")
	}
	if got := untagged(); !strings.Contains(got, "10.5.0.1 > 10.5.0.100") {
		t.Errorf("no untagged ICMP from the flat network on the physical network; tcpdump saw:\n%s", got)
	}
}

// TestReconcileRepairsWhatChangedBehindItsBack: a tap deleted and the
// firewall's tables flushed by hand are back after Reconcile.
func TestReconcileRepairsWhatChangedBehindItsBack(t *testing.T) {
	ns := newFabric(t).host()
	n := newNetwork(t, ns)
	setGroups(t, n, wire.SecurityGroup{ID: "closed", Revision: 1, Stateful: true})
	a := securedPort("aaaaaaaa-0000-4000-8000-0000000000a5", "fa:16:3e:00:05:01", "10.1.0.10", "closed")
	plugAll(t, n, a)
	run(t, "ip", "-n", ns, "link", "del", wire.TapName(a.ID))
	run(t, "ip", "netns", "exec", ns, "nft", "flush", "ruleset")
	if err := n.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	tap, err := n.nl.LinkByName(wire.TapName(a.ID))
	if err != nil {
		t.Fatalf("the tap deleted by hand is not back: %v", err)
	}
	if br, _ := n.nl.LinkByName(bridgeName("net-1")); br == nil || tap.Attrs().MasterIndex != br.Attrs().Index {
		t.Errorf("the tap is back, but not on its network's bridge")
	}
	if out := run(t, "ip", "netns", "exec", ns, "nft", "list", "ruleset"); !strings.Contains(out, "\""+wire.TapName(a.ID)+"\" : jump from-") {
		t.Errorf("the firewall's rules for the port are not back:\n%s", out)
	}
	// The tap deleted again, the tables left: the tap made anew (another
	// interface index) has the firewall hold it.
	run(t, "ip", "-n", ns, "link", "del", wire.TapName(a.ID))
	if err := n.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if tap, err = n.nl.LinkByName(wire.TapName(a.ID)); err != nil {
		t.Fatalf("the tap deleted by hand again is not back: %v", err)
	}
	want := fmt.Sprintf("\"%s\" : jump %s", tap.Attrs().Name, portObject("from", n.portNumbers[a.ID]))
	if out := run(t, "ip", "netns", "exec", ns, "nft", "list", "ruleset"); !strings.Contains(out, want) {
		t.Errorf("the firewall does not send the new tap's frames to its chains (%s):\n%s", want, out)
	}
}

// TestStartOVSFindsItsDaemonsRunning: a `trustack up` killed and started
// again finds the Open vSwitch it left running and keeps it.
func TestStartOVSFindsItsDaemonsRunning(t *testing.T) {
	ns := newNamespace(t, "host")
	dir := t.TempDir()
	first, err := StartOVS(ctx, dir, ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(first.Stop)
	pids := []int{first.pid("ovsdb-server"), first.pid("ovs-vswitchd")}
	again, err := StartOVS(ctx, dir, ns)
	if err != nil {
		t.Fatalf("starting the Open vSwitch of a directory where it runs: %v", err)
	}
	if got := []int{again.pid("ovsdb-server"), again.pid("ovs-vswitchd")}; got[0] != pids[0] || got[1] != pids[1] || pids[0] == 0 || pids[1] == 0 {
		t.Errorf("daemons %v after starting again, want those running, %v", got, pids)
	}
}
