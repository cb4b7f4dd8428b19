package linux

import (
	"fmt"
	"strings"
	"testing"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/wire"
)

// securedPort is a port held to its address and groups.
func securedPort(id, mac, addr string, groups ...string) wire.Port {
	p := port(id, "net-1", local, mac)
	p.PortSecurity, p.SecurityGroups = true, groups
	p.Addresses = []wire.Address{{SubnetID: "subnet-1", Address: addr, CIDR: "10.1.0.0/24"}}
	return p
}

func intp(v int) *int { return &v }

var egressAll = wire.Rule{Direction: trustack.Egress, EtherType: trustack.IPv4}

func plugAll(t testing.TB, n *Network, ports ...wire.Port) {
	t.Helper()
	for _, p := range ports {
		if err := n.Plug(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
}

func setGroups(t testing.TB, n *Network, groups ...wire.SecurityGroup) {
	t.Helper()
	if err := n.SecurityGroups(ctx, groups); err != nil {
		t.Fatal(err)
	}
}

// TestSecurityGroupsLetInWhatTheirRulesAllow: a group with no ingress rule
// lets nothing in; a rule lets its traffic in at once, and replies back
// out; deleting it stops new traffic; a remote group's rule lets in its
// members alone.
func TestSecurityGroupsLetInWhatTheirRulesAllow(t *testing.T) {
	ns := newFabric(t).host()
	n := newNetwork(t, ns)
	setGroups(t, n, wire.SecurityGroup{ID: "clients", Revision: 1, Stateful: true, Rules: []wire.Rule{egressAll}, Members: []string{"10.1.0.1"}},
		wire.SecurityGroup{ID: "servers", Revision: 1, Stateful: true, Rules: []wire.Rule{egressAll}})
	a := securedPort("aaaaaaaa-0000-4000-8000-000000000001", "fa:16:3e:00:00:01", "10.1.0.1", "clients")
	b := securedPort("bbbbbbbb-0000-4000-8000-000000000002", "fa:16:3e:00:00:02", "10.1.0.2", "servers")
	c := securedPort("cccccccc-0000-4000-8000-000000000003", "fa:16:3e:00:00:03", "10.1.0.3", "clients")
	plugAll(t, n, a, b, c)
	ga, gb, gc := newGuest(t, ns, a, "10.1.0.1/24"), newGuest(t, ns, b, "10.1.0.2/24"), newGuest(t, ns, c, "10.1.0.3/24")
	if ga.pings("10.1.0.2") {
		t.Errorf("a pings b, whose group has no ingress rule")
	}
	icmpIn := wire.Rule{Direction: trustack.Ingress, EtherType: trustack.IPv4, Protocol: "icmp"}
	setGroups(t, n, wire.SecurityGroup{ID: "servers", Revision: 2, Stateful: true, Rules: []wire.Rule{egressAll, icmpIn}})
	if !ga.pings("10.1.0.2") {
		t.Errorf("a cannot ping b once b's group lets ICMP in")
	}
	if gb.pings("10.1.0.1") {
		t.Errorf("b pings a, whose group has no ingress rule")
	}
	setGroups(t, n, wire.SecurityGroup{ID: "servers", Revision: 3, Stateful: true, Rules: []wire.Rule{egressAll}})
	if ga.pings("10.1.0.2") {
		t.Errorf("a pings b after the rule letting ICMP in was deleted")
	}
	fromClients := wire.Rule{Direction: trustack.Ingress, EtherType: trustack.IPv4, Protocol: "icmp", RemoteGroup: "clients"}
	setGroups(t, n, wire.SecurityGroup{ID: "servers", Revision: 4, Stateful: true, Rules: []wire.Rule{egressAll, fromClients}})
	if !ga.pings("10.1.0.2") {
		t.Errorf("a, a member of clients, cannot ping b, which lets clients in")
	}
	if gc.pings("10.1.0.2") {
		t.Errorf("c pings b, though the controllers have not yet said c is a member of clients")
	}
	setGroups(t, n, wire.SecurityGroup{ID: "clients", Revision: 1, Stateful: true, Rules: []wire.Rule{egressAll}, Members: []string{"10.1.0.1", "10.1.0.3"}})
	if !gc.pings("10.1.0.2") {
		t.Errorf("c cannot ping b once it is a member of clients")
	}
	tcp22 := wire.Rule{Direction: trustack.Ingress, EtherType: trustack.IPv4, Protocol: "tcp", PortMin: intp(22), PortMax: intp(22), RemotePrefix: "10.1.0.0/24"}
	setGroups(t, n, wire.SecurityGroup{ID: "servers", Revision: 5, Stateful: true, Rules: []wire.Rule{egressAll, tcp22}})
	if ga.pings("10.1.0.2") {
		t.Errorf("a pings b, whose group lets in only TCP port 22")
	}
}

// TestPortsSendOnlyFromTheirOwnAddresses: a guest that takes another
// address or MAC gets nothing through; an allowed address pair lets an
// address through.
func TestPortsSendOnlyFromTheirOwnAddresses(t *testing.T) {
	ns := newFabric(t).host()
	n := newNetwork(t, ns)
	open := wire.SecurityGroup{ID: "open", Revision: 1, Stateful: true, Rules: []wire.Rule{egressAll,
		{Direction: trustack.Ingress, EtherType: trustack.IPv4}}}
	setGroups(t, n, open)
	a := securedPort("aaaaaaaa-0000-4000-8000-00000000000a", "fa:16:3e:00:00:0a", "10.1.0.10", "open")
	b := securedPort("bbbbbbbb-0000-4000-8000-00000000000b", "fa:16:3e:00:00:0b", "10.1.0.11", "open")
	plugAll(t, n, a, b)
	ga := newGuest(t, ns, a, "10.1.0.10/24")
	newGuest(t, ns, b, "10.1.0.11/24")
	if !ga.pings("10.1.0.11") {
		t.Fatalf("a cannot ping b, both in a group open to all")
	}
	run(t, "ip", "-n", ga.ns, "addr", "flush", "dev", "eth0")
	run(t, "ip", "-n", ga.ns, "addr", "add", "10.1.0.99/24", "dev", "eth0")
	if ga.pings("10.1.0.11") {
		t.Errorf("a pings b from an address not its own")
	}
	a.AllowedAddressPairs = []wire.AddressPair{{IPAddress: "10.1.0.96/29"}}
	plugAll(t, n, a)
	if !ga.pings("10.1.0.11") {
		t.Errorf("a cannot ping b from an address of its allowed address pairs")
	}
	run(t, "ip", "-n", ga.ns, "link", "set", "eth0", "address", "fa:16:3e:00:00:99")
	if ga.pings("10.1.0.11") {
		t.Errorf("a pings b from a MAC not its own")
	}
}

// TestFirewallOfManyPorts: a host with many ports gets their firewall in
// one transaction of a thousand messages and more, whose acknowledgements
// overflow a netlink socket's usual buffer.
func TestFirewallOfManyPorts(t *testing.T) {
	ns := newFabric(t).host()
	n := newNetwork(t, ns)
	setGroups(t, n, wire.SecurityGroup{ID: "open", Revision: 1, Stateful: true, Rules: []wire.Rule{egressAll}})
	const ports = 40
	for i := range ports {
		plugAll(t, n, securedPort(fmt.Sprintf("%08x-0000-4000-8000-000000000000", i), fmt.Sprintf("fa:16:3e:00:%02x:%02x", i/256, i%256),
			fmt.Sprintf("10.1.%d.%d", i/200, 1+i%200), "open"))
	}
	out := run(t, "ip", "netns", "exec", ns, "nft", "list", "table", "bridge", "trustack")
	if got := strings.Count(out, "chain from-"); got != ports {
		t.Errorf("%d ports' anti-spoofing chains, want %d", got, ports)
	}
}

// TestFirewallChangesOnlyWhatChanged: a port plugged or unplugged, or a
// group changed, rewrites its own chains and sets alone, leaving the other
// ports' rules as they were; what no port needs any more goes.
func TestFirewallChangesOnlyWhatChanged(t *testing.T) {
	ns := newFabric(t).host()
	n := newNetwork(t, ns)
	fromClients := wire.Rule{Direction: trustack.Ingress, EtherType: trustack.IPv4, Protocol: "icmp", RemoteGroup: "clients"}
	setGroups(t, n, wire.SecurityGroup{ID: "clients", Revision: 1, Stateful: true, Rules: []wire.Rule{egressAll}, Members: []string{"10.1.0.1"}},
		wire.SecurityGroup{ID: "servers", Revision: 1, Stateful: true, Rules: []wire.Rule{egressAll, fromClients}})
	a := securedPort("aaaaaaaa-0000-4000-8000-0000000000c1", "fa:16:3e:00:0c:01", "10.1.0.1", "clients")
	b := securedPort("bbbbbbbb-0000-4000-8000-0000000000c2", "fa:16:3e:00:0c:02", "10.1.0.2", "servers")
	plugAll(t, n, a, b)
	number := func(p wire.Port) uint32 { return n.portNumbers[p.ID] }
	na, nb := number(a), number(b)
	// nft -a lists each table and rule with its handle, which one made
	// anew would not keep.
	chainOf := func(family, kind string, number uint32) string {
		return run(t, "ip", "netns", "exec", ns, "nft", "-a", "list", "chain", family, tableName, portObject(kind, number))
	}
	tables := func() (handles string) {
		for _, family := range []string{"bridge", "inet"} {
			out := run(t, "ip", "netns", "exec", ns, "nft", "-a", "list", "table", family, tableName)
			handles += strings.SplitN(out, "\n", 2)[0] + "\n"
		}
		return handles
	}
	aFrom, aEgress, tablesBefore := chainOf("bridge", "from", na), chainOf("inet", "egress", na), tables()

	c := securedPort("cccccccc-0000-4000-8000-0000000000c3", "fa:16:3e:00:0c:03", "10.1.0.3", "servers")
	plugAll(t, n, c)
	if err := n.Unplug(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	setGroups(t, n, wire.SecurityGroup{ID: "clients", Revision: 2, Stateful: true, Rules: []wire.Rule{egressAll}, Members: []string{"10.1.0.1", "10.1.0.9"}})
	if tables() != tablesBefore {
		t.Errorf("the tables were made anew when ports and a group's members changed: %s, then %s", tablesBefore, tables())
	}
	if chainOf("bridge", "from", na) != aFrom || chainOf("inet", "egress", na) != aEgress {
		t.Errorf("port a's chains were rewritten when other ports and a group's members changed")
	}
	ruleset := func() string { return run(t, "ip", "netns", "exec", ns, "nft", "list", "ruleset") }
	if out := ruleset(); strings.Contains(out, portObject("from", nb)+" ") || strings.Contains(out, portObject("macs", nb)+" ") {
		t.Errorf("the unplugged port b's chains or sets are left:\n%s", out)
	}
	setGroups(t, n, wire.SecurityGroup{ID: "clients", Revision: 3, Stateful: true, Rules: []wire.Rule{egressAll}, Members: []string{"10.1.0.9"}})
	out := run(t, "ip", "netns", "exec", ns, "nft", "list", "set", "inet", tableName, "members-clients-4")
	if strings.Contains(out, "10.1.0.1") || !strings.Contains(out, "10.1.0.9") {
		t.Errorf("the set of clients' members is not 10.1.0.9 alone:\n%s", out)
	}
	setGroups(t, n, wire.SecurityGroup{ID: "servers", Revision: 2, Stateful: true, Rules: []wire.Rule{egressAll}})
	if out := ruleset(); strings.Contains(out, "set members-") {
		t.Errorf("the members of clients are left in a set though no rule names the group:\n%s", out)
	}
	if err := n.Sync(ctx, wire.HostNetwork{}); err != nil {
		t.Fatal(err)
	}
	if out := ruleset(); strings.Contains(out, "chain from-") || strings.Contains(out, "set ips4-") {
		t.Errorf("ports' chains or sets are left once the host has no port:\n%s", out)
	}
}

// TestNumbersStayTheirs: a key keeps its number while it is in the set,
// and gets the one it prefers if that is free; a number freed goes to the
// next new key; no two keys share one.
func TestNumbersStayTheirs(t *testing.T) {
	m := numbering{}
	if err := m.assign(map[string]uint32{"a": 0, "b": 0, "c": 7}); err != nil {
		t.Fatal(err)
	}
	if m["a"] != 1 || m["b"] != 2 || m["c"] != 7 {
		t.Errorf("numbers %v, want a 1, b 2 and c the 7 it prefers", m)
	}
	if err := m.assign(map[string]uint32{"b": 0, "c": 0, "d": 0, "e": 2}); err != nil {
		t.Fatal(err)
	}
	if m["b"] != 2 || m["c"] != 7 || m["d"] != 1 || m["e"] != 3 {
		t.Errorf("numbers %v, want b and c kept, d on a's freed 1, e on 3 (its 2 is b's)", m)
	}
	keys := map[string]uint32{}
	for i := range 0xffff {
		keys[fmt.Sprint(i)] = uint32(i % 7)
	}
	if err := m.assign(keys); err != nil {
		t.Fatal(err)
	}
	seen := map[uint32]bool{}
	for _, n := range m {
		if n < 1 || n > 0xffff || seen[n] {
			t.Fatalf("number %d given twice or out of 1-65535", n)
		}
		seen[n] = true
	}
	keys["one more"] = 0
	if err := m.assign(keys); err == nil {
		t.Errorf("65,536 keys numbered in 16 bits")
	}
}
