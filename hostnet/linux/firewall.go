package linux

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/trustack/trustack"
	"github.com/trustack/trustack/wire"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The firewall holds each port with port security to its MAC and
// addresses and to its security groups, in two nftables tables named
// trustack.
//
// This kernel has no connection tracking in the bridge family, so
// packets are tracked where bridged IP traffic meets the IP hooks
// (br_netfilter), which see the bridge, not the port. The bridge table
// therefore marks each packet with the ports it comes from (the low 16
// bits) and goes to (the high 16), by numbers the driver gives the ports;
// the inet table then tracks connections, in a zone per network (another
// number of the driver's) so that networks with the same addresses on one
// host stay apart, and runs the sending port's egress rules and
// the receiving port's ingress rules. What a rule lets through returns
// from the egress chain, so that the receiver's rules still apply, and is
// accepted by the ingress chain; anything else is dropped, as is any
// frame a port sends from another's MAC or address.
//
// The base chains send a packet to its ports' chains through verdict maps,
// keyed by tap name and by port number, so that each port's rules are
// chains and sets of its own. A change therefore rewrites, in one
// transaction, only the ports, member sets and zones it touches; the
// first write, and the one after a failed write or after the tables were
// changed behind the firewall's back, makes both tables anew.
const tableName = "trustack"

// numbering gives each of a set of keys (ports, networks) a number of
// its own, 1 to 65535, which stays its own while it is in the set: the 16
// bits of a mark that say a port, a connection tracking zone. Interface
// indexes alone would not do: they grow with every device made, and two
// devices' would meet modulo 65535.
type numbering map[string]uint32

// assign keeps the numbers of the keys that had one and frees those of
// keys gone; a new key gets the number it prefers (0 for none) if that is
// free, else the lowest free.
func (m numbering) assign(keys map[string]uint32) error {
	used := map[uint32]bool{}
	for k, n := range m {
		if _, ok := keys[k]; ok {
			used[n] = true
		} else {
			delete(m, k)
		}
	}
	next := uint32(1)
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		if _, ok := m[k]; ok {
			continue
		}
		n := keys[k]
		if n == 0 || n > 0xffff || used[n] {
			for used[next] {
				next++
			}
			n = next
		}
		if n > 0xffff {
			return fmt.Errorf("more than %d to number on one host", 0xffff)
		}
		m[k], used[n] = n, true
	}
	return nil
}

// The tables' own chains and verdict maps, from which the ports' hang.
const (
	portsInChain, portsOutChain = "ports-in", "ports-out" // bridge
	tapsInMap, tapsOutMap       = "taps-in", "taps-out"   // bridge
	zonesChain, filterChain     = "zones", "filter"       // inet
	egressMap, ingressMap       = "egress", "ingress"     // inet
)

// The objects of a port's own, named after the kind and the port's number.
var (
	portChains = map[nftables.TableFamily][]string{
		nftables.TableFamilyBridge: {"from", "arp", "ip4", "ip6", "to"},
		nftables.TableFamilyINet:   {"egress", "ingress"},
	}
	portSets = []string{"macs", "ips4", "ips6"} // in the bridge table
)

func portObject(kind string, number uint32) string { return fmt.Sprintf("%s-%d", kind, number) }

// wall is a host's firewall, as wanted or as last written.
type wall struct {
	zones   map[string]uint16  // by bridge name
	ports   map[uint32]guarded // by port number
	members map[string]members // by set name
}

// guarded is a port the firewall holds, with its tap and what its chains
// are made of, in a form to compare.
type guarded struct {
	port     wire.Port
	tap      string
	spoofing string // its MAC, addresses and allowed address pairs
	rules    string // its groups' rules
}

// members is a set of the addresses of a group's members in one family.
type members struct {
	v6    bool
	addrs [][]byte // sorted, each once
}

// objects names the chains and sets the wall is made of, as
// "family kind name".
func (w *wall) objects() map[string]bool {
	o := map[string]bool{}
	add := func(family nftables.TableFamily, kind string, names ...string) {
		for _, name := range names {
			o[fmt.Sprintf("%d %s %s", family, kind, name)] = true
		}
	}
	add(nftables.TableFamilyBridge, "chain", portsInChain, portsOutChain)
	add(nftables.TableFamilyBridge, "set", tapsInMap, tapsOutMap)
	add(nftables.TableFamilyINet, "chain", zonesChain, filterChain)
	add(nftables.TableFamilyINet, "set", egressMap, ingressMap)
	for number := range w.ports {
		for family, kinds := range portChains {
			for _, kind := range kinds {
				add(family, "chain", portObject(kind, number))
			}
		}
		for _, kind := range portSets {
			add(nftables.TableFamilyBridge, "set", portObject(kind, number))
		}
	}
	for name := range w.members {
		add(nftables.TableFamilyINet, "set", name)
	}
	return o
}

// applyFirewall brings the firewall to the ports wired and the groups
// known; the caller holds n.mu.
func (n *Network) applyFirewall() error {
	want, err := n.wantedWall()
	if err != nil {
		return err
	}
	if len(want.ports) > 0 {
		if err := n.bridgeNetfilter(); err != nil {
			return err
		}
	}
	c, err := nftablesIn(n.ns)
	if err != nil {
		return err
	}
	b := newRules(c, n.st.Groups)
	have := n.fw
	if have == nil {
		if err := b.skeleton(); err != nil {
			return err
		}
		have = &wall{}
	}
	n.fw = nil // until the write is known to have landed
	if err := b.write(have, want); err != nil {
		return err
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	n.fw = want
	return nil
}

// checkFirewall has the next write make the tables anew if their chains
// and sets are not those last written: the tables were changed behind the
// firewall's back, or are gone with the host's namespace. The caller holds
// n.mu.
func (n *Network) checkFirewall() error {
	if n.fw == nil {
		return nil
	}
	c, err := nftablesIn(n.ns)
	if err != nil {
		return err
	}
	found := map[string]bool{}
	for _, family := range []nftables.TableFamily{nftables.TableFamilyBridge, nftables.TableFamilyINet} {
		chains, err := c.ListChainsOfTableFamily(family)
		if err != nil {
			return fmt.Errorf("nftables: %w", err)
		}
		for _, ch := range chains {
			if ch.Table.Name == tableName {
				found[fmt.Sprintf("%d chain %s", family, ch.Name)] = true
			}
		}
		sets, err := c.GetSets(&nftables.Table{Family: family, Name: tableName})
		if err != nil { // the table is gone; any other failure, the write tells
			n.fw = nil
			return nil
		}
		for _, s := range sets {
			found[fmt.Sprintf("%d set %s", family, s.Name)] = true
		}
	}
	if !maps.Equal(found, n.fw.objects()) {
		n.fw = nil
	}
	return nil
}

// wantedWall is the firewall the ports wired and the groups known call
// for; the caller holds n.mu.
func (n *Network) wantedWall() (*wall, error) {
	w := &wall{zones: map[string]uint16{}, ports: map[uint32]guarded{}, members: map[string]members{}}
	links, err := n.nl.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	byName := map[string]netlink.Link{}
	for _, l := range links {
		byName[l.Attrs().Name] = l
	}
	// The networks with a bridge here, and the ports held, numbered. A
	// network's zone is its bridge's interface index where that is free,
	// so that it stays the same when the driver starts again, and its
	// connections' tracking with it.
	networks, held := map[string]uint32{}, map[string]uint32{}
	for _, p := range n.st.Ports {
		if br := byName[bridgeName(p.NetworkID)]; br != nil {
			networks[p.NetworkID] = uint32((br.Attrs().Index-1)%0xffff + 1)
		}
		if p.PortSecurity && byName[wire.TapName(p.ID)] != nil {
			held[p.ID] = 0
		}
	}
	if err := n.zones.assign(networks); err != nil {
		return nil, fmt.Errorf("networks: %w", err)
	}
	if err := n.portNumbers.assign(held); err != nil {
		return nil, fmt.Errorf("ports held by the firewall: %w", err)
	}
	for id := range networks {
		w.zones[bridgeName(id)] = uint16(n.zones[id])
	}
	for id := range held {
		p := n.st.Ports[id]
		g := guarded{port: p, tap: wire.TapName(p.ID), spoofing: fingerprint(p.MAC, p.Addresses, p.AllowedAddressPairs)}
		var rules []wire.Rule
		for _, id := range p.SecurityGroups {
			rules = append(rules, n.st.Groups[id].Rules...)
		}
		g.rules = fingerprint(rules)
		for _, r := range rules {
			if name, v6, ok := remoteGroupSet(r); ok {
				if _, done := w.members[name]; !done {
					w.members[name] = n.membersOf(r.RemoteGroup, v6)
				}
			}
		}
		w.ports[n.portNumbers[id]] = g
	}
	return w, nil
}

// difference is the elements of keys a, sorted, that sorted b lacks.
func difference(a, b [][]byte) []nftables.SetElement {
	var d []nftables.SetElement
	for _, k := range a {
		if _, found := slices.BinarySearchFunc(b, k, bytes.Compare); !found {
			d = append(d, nftables.SetElement{Key: k})
		}
	}
	return d
}

// fingerprint is a form of values to compare.
func fingerprint(values ...any) string {
	b, _ := json.Marshal(values)
	return string(b)
}

// remoteGroupSet names the set of the remote group's members a rule
// matches, if it matches a remote group.
func remoteGroupSet(r wire.Rule) (name string, v6, ok bool) {
	if r.RemotePrefix != "" || r.RemoteGroup == "" {
		return "", false, false
	}
	v6 = r.EtherType == trustack.IPv6
	family := "4"
	if v6 {
		family = "6"
	}
	return fmt.Sprintf("members-%s-%s", shortID(r.RemoteGroup, 12), family), v6, true
}

// membersOf is the set of the addresses of a group's members in one
// family. The group's members are the controllers' to send: a group the
// host has not heard of yet has none, and its rules let nothing in.
func (n *Network) membersOf(group string, v6 bool) members {
	m := members{v6: v6}
	for _, a := range n.st.Groups[group].Members {
		if addr, err := netip.ParseAddr(a); err == nil && addr.Is6() == v6 {
			m.addrs = append(m.addrs, addr.AsSlice())
		}
	}
	slices.SortFunc(m.addrs, bytes.Compare)
	m.addrs = slices.CompactFunc(m.addrs, bytes.Equal)
	return m
}

// bridgeNetfilter has bridged IP traffic go through the IP hooks, where
// connections are tracked.
func (n *Network) bridgeNetfilter() error {
	if n.brnf {
		return nil
	}
	for _, f := range []string{"bridge-nf-call-iptables", "bridge-nf-call-ip6tables"} {
		if err := n.ns.Sysctl("net/bridge/"+f, "1"); err != nil {
			return fmt.Errorf("send bridged traffic through the IP hooks: %w", err)
		}
	}
	n.brnf = true
	return nil
}

// rules writes changes to the two tables in one batch.
type rules struct {
	c               *nftables.Conn
	bridge, inet    *nftables.Table
	groups          map[string]wire.SecurityGroup
	tapsIn, tapsOut *nftables.Set // verdict maps from a tap's name to its port's chains
	egress, ingress *nftables.Set // verdict maps from a port's number in the mark to its chains
	zones           *nftables.Chain
}

func newRules(c *nftables.Conn, groups map[string]wire.SecurityGroup) *rules {
	b := &rules{c: c, groups: groups, bridge: &nftables.Table{Family: nftables.TableFamilyBridge, Name: tableName},
		inet: &nftables.Table{Family: nftables.TableFamilyINet, Name: tableName}}
	// Keys in the host's byte order, as the kernel loads names and marks,
	// which nft then lists as they are.
	vmap := func(t *nftables.Table, name string, key nftables.SetDatatype) *nftables.Set {
		return &nftables.Set{Table: t, Name: name, IsMap: true, KeyType: key, DataType: nftables.TypeVerdict,
			KeyByteOrder: binaryutil.NativeEndian}
	}
	b.tapsIn, b.tapsOut = vmap(b.bridge, tapsInMap, nftables.TypeIFName), vmap(b.bridge, tapsOutMap, nftables.TypeIFName)
	b.egress, b.ingress = vmap(b.inet, egressMap, nftables.TypeMark), vmap(b.inet, ingressMap, nftables.TypeMark)
	b.zones = &nftables.Chain{Table: b.inet, Name: zonesChain, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityRaw}
	return b
}

// skeleton makes both tables anew with no port in them: their base
// chains and verdict maps.
func (b *rules) skeleton() error {
	for _, t := range []*nftables.Table{b.bridge, b.inet} {
		// Made if missing, so that deleting it cannot fail, then made anew.
		b.c.AddTable(t)
		b.c.DelTable(t)
		b.c.AddTable(t)
	}
	for _, m := range []*nftables.Set{b.tapsIn, b.tapsOut, b.egress, b.ingress} {
		if err := b.c.AddSet(m, nil); err != nil {
			return fmt.Errorf("nftables map %s: %w", m.Name, err)
		}
	}
	portsIn := b.c.AddChain(&nftables.Chain{Table: b.bridge, Name: portsInChain, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityRef(-300)})
	portsOut := b.c.AddChain(&nftables.Chain{Table: b.bridge, Name: portsOutChain, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityRef(-100)})
	filter := b.c.AddChain(&nftables.Chain{Table: b.inet, Name: filterChain, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter})
	b.c.AddChain(b.zones)
	b.rule(portsIn, meta(expr.MetaKeyIIFNAME), lookupVerdict(b.tapsIn))
	b.rule(portsOut, meta(expr.MetaKeyOIFNAME), lookupVerdict(b.tapsOut))
	b.rule(filter, markMasked(0xffffffff, 0), verdict(expr.VerdictAccept))
	b.rule(filter, ctState(expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED), verdict(expr.VerdictAccept))
	b.rule(filter, ctState(expr.CtStateBitINVALID), verdict(expr.VerdictDrop))
	b.rule(filter, markBits(0xffff), lookupVerdict(b.egress))
	b.rule(filter, markBits(0xffff0000), lookupVerdict(b.ingress))
	return nil
}

// write changes the tables from have to want.
func (b *rules) write(have, want *wall) error {
	for name, m := range want.members {
		old, ok := have.members[name]
		if !ok {
			typ := nftables.TypeIPAddr
			if m.v6 {
				typ = nftables.TypeIP6Addr
			}
			if _, err := b.set(b.inet, name, typ, m.addrs, false); err != nil {
				return err
			}
			continue
		}
		// A group's members come and go a few at a time.
		gone, added := difference(old.addrs, m.addrs), difference(m.addrs, old.addrs)
		s := &nftables.Set{Table: b.inet, Name: name}
		if len(gone) > 0 {
			_ = b.c.SetDeleteElements(s, gone) // errors come only from anonymous sets
		}
		if len(added) > 0 {
			_ = b.c.SetAddElements(s, added)
		}
	}
	if have.zones == nil || !maps.Equal(have.zones, want.zones) {
		b.c.FlushChain(b.zones)
		for _, name := range slices.Sorted(maps.Keys(want.zones)) {
			b.rule(b.zones, ifname(expr.MetaKeyIIFNAME, name), setZone(want.zones[name]))
		}
	}
	for number, old := range have.ports {
		if _, ok := want.ports[number]; !ok {
			b.removePort(number, old.tap)
		}
	}
	for _, number := range slices.Sorted(maps.Keys(want.ports)) {
		if err := b.port(number, have.ports[number], want.ports[number]); err != nil {
			return err
		}
	}
	for name := range have.members {
		if _, ok := want.members[name]; !ok {
			b.c.DelSet(&nftables.Set{Table: b.inet, Name: name})
		}
	}
	return nil
}

// port writes what of a port's chains differs from old, its state as
// last written (the zero guarded if it had none).
func (b *rules) port(number uint32, old, g guarded) error {
	exists := old.tap != ""
	if exists && old.tap != g.tap {
		b.dispatchTap(number, old.tap, b.c.SetDeleteElements)
	}
	if old.spoofing != g.spoofing {
		if err := b.antiSpoofing(number, g.port, exists); err != nil {
			return err
		}
	}
	if old.rules != g.rules {
		b.groupChains(number, g.port, exists)
	}
	if !exists {
		b.rule(b.chain(b.bridge, portObject("to", number), false), orMark(number<<16))
		b.dispatchNumber(number, b.c.SetAddElements)
	}
	if old.tap != g.tap {
		b.dispatchTap(number, g.tap, b.c.SetAddElements)
	}
	return nil
}

// change adds elements to a set or deletes them from it: one of
// nftables.Conn's SetAddElements and SetDeleteElements, whose errors come
// only from anonymous sets.
type change func(*nftables.Set, []nftables.SetElement) error

// dispatchTap changes the elements of the verdict maps that send the
// frames a port's tap sends and receives to its chains.
func (b *rules) dispatchTap(number uint32, tap string, op change) {
	_ = op(b.tapsIn, []nftables.SetElement{{Key: ifnameKey(tap), VerdictData: jumpTo("from", number)}})
	_ = op(b.tapsOut, []nftables.SetElement{{Key: ifnameKey(tap), VerdictData: jumpTo("to", number)}})
}

// dispatchNumber changes the elements of the verdict maps that send the
// packets marked with a port's number to its group rules.
func (b *rules) dispatchNumber(number uint32, op change) {
	_ = op(b.egress, []nftables.SetElement{{Key: binaryutil.NativeEndian.PutUint32(number), VerdictData: jumpTo("egress", number)}})
	_ = op(b.ingress, []nftables.SetElement{{Key: binaryutil.NativeEndian.PutUint32(number << 16), VerdictData: jumpTo("ingress", number)}})
}

func jumpTo(kind string, number uint32) *expr.Verdict {
	return &expr.Verdict{Kind: expr.VerdictJump, Chain: portObject(kind, number)}
}

// removePort deletes a port's chains and sets, and the verdict maps'
// elements that send packets to them.
func (b *rules) removePort(number uint32, tap string) {
	b.dispatchTap(number, tap, b.c.SetDeleteElements)
	b.dispatchNumber(number, b.c.SetDeleteElements)
	// A chain's deletion deletes its rules, and with them their jumps to
	// the chains after it.
	for _, t := range []*nftables.Table{b.bridge, b.inet} {
		for _, kind := range portChains[t.Family] {
			b.c.DelChain(&nftables.Chain{Table: t, Name: portObject(kind, number)})
		}
	}
	for _, kind := range portSets {
		b.c.DelSet(&nftables.Set{Table: b.bridge, Name: portObject(kind, number)})
	}
}

// antiSpoofing writes the chain a port's frames go through: it marks them
// as the port's and drops those from a MAC or an address not the port's
// (its fixed IPs, its IPv6 link-local address and its allowed address
// pairs), and DHCP and router advertisements it would serve. If exists,
// the port's chains and sets are there already, and are refilled.
func (b *rules) antiSpoofing(number uint32, p wire.Port, exists bool) error {
	hw, _ := p.HardwareAddr()
	macs := [][]byte{hw}
	var v4, v6 [][]byte
	var prefixes []netip.Prefix
	v6 = append(v6, netip.IPv6Unspecified().AsSlice(), linkLocal(hw).AsSlice())
	add := func(a netip.Addr) {
		if a.Is4() {
			v4 = append(v4, a.AsSlice())
		} else {
			v6 = append(v6, a.AsSlice())
		}
	}
	for _, a := range p.Addresses {
		addr, err := netip.ParseAddr(a.Address)
		if err != nil {
			return trustack.Errorf(trustack.EINVALID, "port %s: bad address %q", p.ID, a.Address)
		}
		add(addr)
	}
	for _, pair := range p.AllowedAddressPairs {
		if pair.MACAddress != "" {
			mac, err := net.ParseMAC(pair.MACAddress)
			if err != nil || len(mac) != 6 {
				return trustack.Errorf(trustack.EINVALID, "port %s: bad MAC %q in an allowed address pair", p.ID, pair.MACAddress)
			}
			macs = append(macs, mac)
		}
		pfx, err := netip.ParsePrefix(pair.IPAddress)
		if err != nil {
			addr, err := netip.ParseAddr(pair.IPAddress)
			if err != nil {
				return trustack.Errorf(trustack.EINVALID, "port %s: bad address %q in an allowed address pair", p.ID, pair.IPAddress)
			}
			pfx = netip.PrefixFrom(addr, addr.BitLen())
		}
		if pfx.IsSingleIP() {
			add(pfx.Addr())
		} else {
			prefixes = append(prefixes, pfx.Masked())
		}
	}
	macSet, err := b.set(b.bridge, portObject("macs", number), nftables.TypeEtherAddr, macs, exists)
	if err != nil {
		return err
	}
	v4Set, err := b.set(b.bridge, portObject("ips4", number), nftables.TypeIPAddr, v4, exists)
	if err != nil {
		return err
	}
	v6Set, err := b.set(b.bridge, portObject("ips6", number), nftables.TypeIP6Addr, v6, exists)
	if err != nil {
		return err
	}
	// The chains jumped to first, so that a new one exists when jumped to.
	arp, ip4, ip6 := b.chain(b.bridge, portObject("arp", number), exists), b.chain(b.bridge, portObject("ip4", number), exists),
		b.chain(b.bridge, portObject("ip6", number), exists)
	from := b.chain(b.bridge, portObject("from", number), exists)
	b.rule(from, setMark(number))
	b.rule(from, inSet(expr.PayloadBaseLLHeader, 6, 6, macSet, true), verdict(expr.VerdictDrop))
	b.rule(from, etherType(unix.ETH_P_ARP), jump(arp))
	b.rule(from, etherType(unix.ETH_P_IP), jump(ip4))
	b.rule(from, etherType(unix.ETH_P_IPV6), jump(ip6))
	b.rule(from, notEtherTypes(unix.ETH_P_ARP, unix.ETH_P_IP, unix.ETH_P_IPV6), verdict(expr.VerdictDrop))

	// ARP: the sender's address is the port's, or none (a probe).
	const arpSender = 14
	b.rule(arp, inSet(expr.PayloadBaseNetworkHeader, arpSender, 4, v4Set, false), verdict(expr.VerdictReturn))
	b.rule(arp, fieldIs(expr.PayloadBaseNetworkHeader, arpSender, make([]byte, 4)), verdict(expr.VerdictReturn))
	// IPv4: no DHCP server; a DHCP client before it has an address.
	b.rule(ip4, l4proto(unix.IPPROTO_UDP), transportPort(0, 67, 67), verdict(expr.VerdictDrop))
	b.rule(ip4, fieldIs(expr.PayloadBaseNetworkHeader, 12, make([]byte, 4)), l4proto(unix.IPPROTO_UDP), transportPort(2, 67, 67), verdict(expr.VerdictReturn))
	b.rule(ip4, inSet(expr.PayloadBaseNetworkHeader, 12, 4, v4Set, false), verdict(expr.VerdictReturn))
	// IPv6: no router advertisements, no DHCPv6 server.
	b.rule(ip6, l4proto(unix.IPPROTO_ICMPV6), icmpType(134), verdict(expr.VerdictDrop))
	b.rule(ip6, l4proto(unix.IPPROTO_UDP), transportPort(0, 547, 547), verdict(expr.VerdictDrop))
	b.rule(ip6, inSet(expr.PayloadBaseNetworkHeader, 8, 16, v6Set, false), verdict(expr.VerdictReturn))
	for _, pfx := range prefixes {
		switch {
		case pfx.Addr().Is4():
			b.rule(arp, inPrefix(arpSender, pfx), verdict(expr.VerdictReturn))
			b.rule(ip4, inPrefix(12, pfx), verdict(expr.VerdictReturn))
		default:
			b.rule(ip6, inPrefix(8, pfx), verdict(expr.VerdictReturn))
		}
	}
	for _, ch := range []*nftables.Chain{arp, ip4, ip6} {
		b.rule(ch, verdict(expr.VerdictDrop))
	}
	return nil
}

// groupChains writes the chains of a port's egress and ingress rules: the
// rules of its groups, and what every port may do (DHCP, neighbour
// discovery). If exists, the chains are there already, and are refilled.
func (b *rules) groupChains(number uint32, p wire.Port, exists bool) {
	egress, ingress := b.chain(b.inet, portObject("egress", number), exists), b.chain(b.inet, portObject("ingress", number), exists)
	b.rule(egress, nfproto(unix.NFPROTO_IPV4), l4proto(unix.IPPROTO_UDP), transportPort(0, 68, 68), transportPort(2, 67, 67), verdict(expr.VerdictReturn))
	b.rule(egress, nfproto(unix.NFPROTO_IPV6), l4proto(unix.IPPROTO_UDP), transportPort(0, 546, 546), transportPort(2, 547, 547), verdict(expr.VerdictReturn))
	b.rule(ingress, nfproto(unix.NFPROTO_IPV4), l4proto(unix.IPPROTO_UDP), transportPort(0, 67, 67), transportPort(2, 68, 68), verdict(expr.VerdictAccept))
	b.rule(ingress, nfproto(unix.NFPROTO_IPV6), l4proto(unix.IPPROTO_UDP), transportPort(0, 547, 547), transportPort(2, 546, 546), verdict(expr.VerdictAccept))
	for _, t := range []byte{133, 135, 136, 143} { // router solicitation, neighbour solicitation and advertisement, MLDv2 report
		b.rule(egress, nfproto(unix.NFPROTO_IPV6), l4proto(unix.IPPROTO_ICMPV6), icmpType(t), verdict(expr.VerdictReturn))
	}
	for _, t := range []byte{130, 134, 135, 136} { // MLD query, router advertisement, neighbour solicitation and advertisement
		b.rule(ingress, nfproto(unix.NFPROTO_IPV6), l4proto(unix.IPPROTO_ICMPV6), icmpType(t), verdict(expr.VerdictAccept))
	}
	for _, id := range p.SecurityGroups {
		for _, r := range b.groups[id].Rules {
			ch, allow := ingress, expr.VerdictAccept
			if r.Direction == trustack.Egress {
				ch, allow = egress, expr.VerdictReturn
			}
			if m, ok := b.match(r); ok {
				b.rule(ch, m, verdict(allow))
			}
		}
	}
	b.rule(egress, verdict(expr.VerdictDrop))
	b.rule(ingress, verdict(expr.VerdictDrop))
}

// match is what a rule matches, in its direction; false if it can match
// nothing (a remote prefix of the other family).
func (b *rules) match(r wire.Rule) ([]expr.Any, bool) {
	v6 := r.EtherType == trustack.IPv6
	family, addrLen, src, dst := byte(unix.NFPROTO_IPV4), uint32(4), uint32(12), uint32(16)
	if v6 {
		family, addrLen, src, dst = unix.NFPROTO_IPV6, 16, 8, 24
	}
	m := nfproto(family)
	proto := wire.ProtocolNumber(r.Protocol)
	if proto == unix.IPPROTO_ICMP && v6 {
		proto = unix.IPPROTO_ICMPV6 // as Neutron takes "icmp" in an IPv6 rule
	}
	if proto >= 0 {
		m = append(m, l4proto(byte(proto))...)
	}
	switch proto {
	case unix.IPPROTO_TCP, unix.IPPROTO_UDP, unix.IPPROTO_SCTP, unix.IPPROTO_UDPLITE, unix.IPPROTO_DCCP:
		if r.PortMin != nil {
			hi := *r.PortMin
			if r.PortMax != nil {
				hi = *r.PortMax
			}
			m = append(m, transportPort(2, uint16(*r.PortMin), uint16(hi))...)
		}
	case unix.IPPROTO_ICMP, unix.IPPROTO_ICMPV6:
		if r.PortMin != nil {
			m = append(m, icmpType(byte(*r.PortMin))...)
			if r.PortMax != nil {
				m = append(m, fieldIs(expr.PayloadBaseTransportHeader, 1, []byte{byte(*r.PortMax)})...)
			}
		}
	}
	remote := src
	if r.Direction == trustack.Egress {
		remote = dst
	}
	switch {
	case r.RemotePrefix != "":
		pfx, err := netip.ParsePrefix(r.RemotePrefix)
		if err != nil || pfx.Addr().Is6() != v6 {
			return nil, false
		}
		if pfx.Bits() > 0 {
			m = append(m, inPrefix(remote, pfx.Masked())...)
		}
	case r.RemoteGroup != "":
		name, _, _ := remoteGroupSet(r)
		m = append(m, inSet(expr.PayloadBaseNetworkHeader, remote, addrLen, &nftables.Set{Name: name}, false)...)
	}
	return m, true
}

// chain is a chain of the table: made, or if exists, emptied.
func (b *rules) chain(t *nftables.Table, name string, exists bool) *nftables.Chain {
	ch := &nftables.Chain{Table: t, Name: name}
	if exists {
		b.c.FlushChain(ch)
		return ch
	}
	return b.c.AddChain(ch)
}

// set is a set of the table holding keys: made, or if exists, emptied
// and refilled.
func (b *rules) set(t *nftables.Table, name string, typ nftables.SetDatatype, keys [][]byte, exists bool) (*nftables.Set, error) {
	s := &nftables.Set{Table: t, Name: name, KeyType: typ}
	var elems []nftables.SetElement
	seen := map[string]bool{}
	for _, k := range keys {
		if !seen[string(k)] {
			seen[string(k)] = true
			elems = append(elems, nftables.SetElement{Key: k})
		}
	}
	var err error
	if exists {
		b.c.FlushSet(s)
		if len(elems) > 0 {
			err = b.c.SetAddElements(s, elems)
		}
	} else {
		err = b.c.AddSet(s, elems)
	}
	if err != nil {
		return nil, fmt.Errorf("nftables set %s: %w", name, err)
	}
	return s, nil
}

func (b *rules) rule(ch *nftables.Chain, parts ...[]expr.Any) {
	var exprs []expr.Any
	for _, p := range parts {
		exprs = append(exprs, p...)
	}
	b.c.AddRule(&nftables.Rule{Table: ch.Table, Chain: ch, Exprs: exprs})
}

// Expressions, each loading into or comparing register 1.

func payload(base expr.PayloadBase, offset, n uint32) expr.Any {
	return &expr.Payload{DestRegister: 1, Base: base, Offset: offset, Len: n}
}

func cmp(op expr.CmpOp, data []byte) expr.Any { return &expr.Cmp{Op: op, Register: 1, Data: data} }

// inSet matches packets whose n bytes at offset from base are (or, if
// invert, are not) in the set.
func inSet(base expr.PayloadBase, offset, n uint32, s *nftables.Set, invert bool) []expr.Any {
	return []expr.Any{payload(base, offset, n), &expr.Lookup{SourceRegister: 1, SetName: s.Name, SetID: s.ID, Invert: invert}}
}

// fieldIs matches packets whose bytes at offset from base are data.
func fieldIs(base expr.PayloadBase, offset uint32, data []byte) []expr.Any {
	return []expr.Any{payload(base, offset, uint32(len(data))), cmp(expr.CmpOpEq, data)}
}

func verdict(k expr.VerdictKind) []expr.Any { return []expr.Any{&expr.Verdict{Kind: k}} }

func jump(ch *nftables.Chain) []expr.Any {
	return []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: ch.Name}}
}

func meta(key expr.MetaKey) []expr.Any { return []expr.Any{&expr.Meta{Key: key, Register: 1}} }

// lookupVerdict gives the verdict a verdict map has for what register 1
// holds; none if the map has nothing for it.
func lookupVerdict(m *nftables.Set) []expr.Any {
	return []expr.Any{&expr.Lookup{SourceRegister: 1, IsDestRegSet: true, DestRegister: 0, SetName: m.Name, SetID: m.ID}}
}

// ifnameKey is an interface name as the kernel compares it.
func ifnameKey(name string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return b
}

func ifname(key expr.MetaKey, name string) []expr.Any {
	return append(meta(key), cmp(expr.CmpOpEq, ifnameKey(name)))
}

func etherType(t uint16) []expr.Any {
	return []expr.Any{&expr.Meta{Key: expr.MetaKeyPROTOCOL, Register: 1}, cmp(expr.CmpOpEq, binaryutil.BigEndian.PutUint16(t))}
}

func notEtherTypes(types ...uint16) []expr.Any {
	m := []expr.Any{&expr.Meta{Key: expr.MetaKeyPROTOCOL, Register: 1}}
	for _, t := range types {
		m = append(m, cmp(expr.CmpOpNeq, binaryutil.BigEndian.PutUint16(t)))
	}
	return m
}

func nfproto(family byte) []expr.Any {
	return []expr.Any{&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1}, cmp(expr.CmpOpEq, []byte{family})}
}

func l4proto(proto byte) []expr.Any {
	return []expr.Any{&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, cmp(expr.CmpOpEq, []byte{proto})}
}

// transportPort matches the transport header's source (offset 0) or
// destination (offset 2) port in [lo, hi].
func transportPort(offset uint32, lo, hi uint16) []expr.Any {
	if lo == hi {
		return fieldIs(expr.PayloadBaseTransportHeader, offset, binaryutil.BigEndian.PutUint16(lo))
	}
	return []expr.Any{payload(expr.PayloadBaseTransportHeader, offset, 2), &expr.Range{Op: expr.CmpOpEq, Register: 1,
		FromData: binaryutil.BigEndian.PutUint16(lo), ToData: binaryutil.BigEndian.PutUint16(hi)}}
}

func icmpType(t byte) []expr.Any {
	return fieldIs(expr.PayloadBaseTransportHeader, 0, []byte{t})
}

// inPrefix matches the network header's address at offset in pfx.
func inPrefix(offset uint32, pfx netip.Prefix) []expr.Any {
	n := uint32(pfx.Addr().BitLen() / 8)
	mask := net.CIDRMask(pfx.Bits(), pfx.Addr().BitLen())
	return []expr.Any{payload(expr.PayloadBaseNetworkHeader, offset, n),
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: n, Mask: mask, Xor: make([]byte, n)},
		cmp(expr.CmpOpEq, pfx.Addr().AsSlice())}
}

func ctState(bits uint32) []expr.Any {
	return []expr.Any{&expr.Ct{Key: expr.CtKeySTATE, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: binaryutil.NativeEndian.PutUint32(bits), Xor: make([]byte, 4)},
		cmp(expr.CmpOpNeq, make([]byte, 4))}
}

func setZone(zone uint16) []expr.Any {
	return []expr.Any{&expr.Immediate{Register: 1, Data: binaryutil.NativeEndian.PutUint16(zone)},
		&expr.Ct{Key: expr.CtKeyZONE, Register: 1, SourceRegister: true}}
}

// markBits loads the mark's bits under mask.
func markBits(mask uint32) []expr.Any {
	return []expr.Any{&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: binaryutil.NativeEndian.PutUint32(mask), Xor: make([]byte, 4)}}
}

// markMasked matches marks whose bits under mask are value.
func markMasked(mask, value uint32) []expr.Any {
	return append(markBits(mask), cmp(expr.CmpOpEq, binaryutil.NativeEndian.PutUint32(value)))
}

func setMark(v uint32) []expr.Any {
	return []expr.Any{&expr.Immediate{Register: 1, Data: binaryutil.NativeEndian.PutUint32(v)},
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1, SourceRegister: true}}
}

// orMark sets the bits of v in the mark: (mark & ^v) ^ v.
func orMark(v uint32) []expr.Any {
	return []expr.Any{&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: binaryutil.NativeEndian.PutUint32(^v), Xor: binaryutil.NativeEndian.PutUint32(v)},
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1, SourceRegister: true}}
}

// linkLocal is the IPv6 link-local address of a MAC (modified EUI-64).
func linkLocal(mac net.HardwareAddr) netip.Addr {
	var a [16]byte
	a[0], a[1] = 0xfe, 0x80
	a[8], a[9], a[10], a[11], a[12], a[13], a[14], a[15] = mac[0]^2, mac[1], mac[2], 0xff, 0xfe, mac[3], mac[4], mac[5]
	return netip.AddrFrom16(a)
}
