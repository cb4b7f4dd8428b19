package linux

import (
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sort"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/trustack/trustack"
	"github.com/trustack/trustack/wire"
	"golang.org/x/sys/unix"
)

// The firewall holds each port with port security to its MAC and
// addresses and to its security groups, in two nftables tables named
// trustack, rebuilt whole and swapped in one transaction at every change.
//
// This kernel has no connection tracking in the bridge family, so
// packets are tracked where bridged IP traffic meets the IP hooks
// (br_netfilter), which see the bridge, not the port. The bridge table
// therefore marks each packet with the ports it comes from (the low 16
// bits) and goes to (the high 16), a port's number being its tap's
// interface index; the inet table then tracks connections, in a zone per
// network (its bridge's index) so that networks with the same addresses
// on one host stay apart, and runs the sending port's egress rules and
// the receiving port's ingress rules. What a rule lets through returns
// from the egress chain, so that the receiver's rules still apply, and is
// accepted by the ingress chain; anything else is dropped, as is any
// frame a port sends from another's MAC or address.
const tableName = "trustack"

// portNumber is the number marks carry for a port: its tap's interface
// index, in 16 bits, never 0.
func portNumber(ifindex int) uint32 { return uint32((ifindex-1)%0xffff + 1) }

// zoneOf is the connection tracking zone of a network: its bridge's
// interface index, in 16 bits.
func zoneOf(ifindex int) uint16 { return uint16((ifindex-1)%0xffff + 1) }

// secured is a port the firewall holds, with its tap's name and number.
type secured struct {
	port   wire.Port
	tap    string
	number uint32
}

// applyFirewall rebuilds the firewall for the ports wired and the groups
// known; the caller holds n.mu.
func (n *Network) applyFirewall() error {
	var ports []secured
	bridges := map[string]uint16{}
	for _, p := range n.st.Ports {
		br, err := n.linkByName(bridgeName(p.NetworkID))
		if err != nil {
			return err
		}
		if br != nil {
			bridges[br.Attrs().Name] = zoneOf(br.Attrs().Index)
		}
		if !p.PortSecurity {
			continue
		}
		tap, err := n.linkByName(wire.TapName(p.ID))
		if err != nil {
			return err
		}
		if tap != nil {
			ports = append(ports, secured{p, tap.Attrs().Name, portNumber(tap.Attrs().Index)})
		}
	}
	sort.Slice(ports, func(i, j int) bool { return ports[i].number < ports[j].number })
	if len(ports) > 0 {
		if err := n.bridgeNetfilter(); err != nil {
			return err
		}
	}
	c, err := nftablesIn(n.ns)
	if err != nil {
		return err
	}
	b := &rules{c: c, bridge: &nftables.Table{Family: nftables.TableFamilyBridge, Name: tableName},
		inet: &nftables.Table{Family: nftables.TableFamilyINet, Name: tableName}, groups: n.st.Groups}
	for _, t := range []*nftables.Table{b.bridge, b.inet} {
		// Made if missing, so that deleting it cannot fail, then made anew.
		c.AddTable(t)
		c.DelTable(t)
		c.AddTable(t)
	}
	if err := b.build(ports, bridges); err != nil {
		return err
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	return nil
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

// rules builds the two tables in one batch.
type rules struct {
	c            *nftables.Conn
	bridge, inet *nftables.Table
	groups       map[string]wire.SecurityGroup
	members      map[string]*nftables.Set // by group ID and family ("4" or "6")
}

func (b *rules) build(ports []secured, bridges map[string]uint16) error {
	portsIn := &nftables.Chain{Table: b.bridge, Name: "ports-in", Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityRef(-300)}
	portsOut := &nftables.Chain{Table: b.bridge, Name: "ports-out", Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityRef(-100)}
	zones := &nftables.Chain{Table: b.inet, Name: "zones", Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityRaw}
	filter := &nftables.Chain{Table: b.inet, Name: "filter", Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter}
	for _, ch := range []*nftables.Chain{portsIn, portsOut, zones, filter} {
		b.c.AddChain(ch)
	}
	for _, name := range slices.Sorted(maps.Keys(bridges)) {
		b.rule(zones, ifname(expr.MetaKeyIIFNAME, name), setZone(bridges[name]))
	}
	b.rule(filter, markMasked(0xffffffff, 0), verdict(expr.VerdictAccept))
	b.rule(filter, ctState(expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED), verdict(expr.VerdictAccept))
	b.rule(filter, ctState(expr.CtStateBitINVALID), verdict(expr.VerdictDrop))
	for _, p := range ports {
		from, err := b.antiSpoofing(p)
		if err != nil {
			return err
		}
		b.rule(portsIn, ifname(expr.MetaKeyIIFNAME, p.tap), jump(from))
		b.rule(portsOut, ifname(expr.MetaKeyOIFNAME, p.tap), orMark(p.number<<16))
		egress, ingress := b.groupChains(p)
		b.rule(filter, markMasked(0xffff, p.number), jump(egress))
		b.rule(filter, markMasked(0xffff0000, p.number<<16), jump(ingress))
	}
	return nil
}

// antiSpoofing makes the chain a port's frames go through: it marks them
// as the port's and drops those from a MAC or an address not the port's
// (its fixed IPs, its IPv6 link-local address and its allowed address
// pairs), and DHCP and router advertisements it would serve.
func (b *rules) antiSpoofing(p secured) (*nftables.Chain, error) {
	hw, _ := p.port.HardwareAddr()
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
	for _, a := range p.port.Addresses {
		addr, err := netip.ParseAddr(a.Address)
		if err != nil {
			return nil, trustack.Errorf(trustack.EINVALID, "port %s: bad address %q", p.port.ID, a.Address)
		}
		add(addr)
	}
	for _, pair := range p.port.AllowedAddressPairs {
		if pair.MACAddress != "" {
			mac, err := net.ParseMAC(pair.MACAddress)
			if err != nil || len(mac) != 6 {
				return nil, trustack.Errorf(trustack.EINVALID, "port %s: bad MAC %q in an allowed address pair", p.port.ID, pair.MACAddress)
			}
			macs = append(macs, mac)
		}
		pfx, err := netip.ParsePrefix(pair.IPAddress)
		if err != nil {
			addr, err := netip.ParseAddr(pair.IPAddress)
			if err != nil {
				return nil, trustack.Errorf(trustack.EINVALID, "port %s: bad address %q in an allowed address pair", p.port.ID, pair.IPAddress)
			}
			pfx = netip.PrefixFrom(addr, addr.BitLen())
		}
		if pfx.IsSingleIP() {
			add(pfx.Addr())
		} else {
			prefixes = append(prefixes, pfx.Masked())
		}
	}
	name := func(what string) string { return fmt.Sprintf("%s-%d", what, p.number) }
	macSet, err := b.set(b.bridge, name("macs"), nftables.TypeEtherAddr, macs)
	if err != nil {
		return nil, err
	}
	v4Set, err := b.set(b.bridge, name("ips4"), nftables.TypeIPAddr, v4)
	if err != nil {
		return nil, err
	}
	v6Set, err := b.set(b.bridge, name("ips6"), nftables.TypeIP6Addr, v6)
	if err != nil {
		return nil, err
	}
	from, arp, ip4, ip6 := b.chain(b.bridge, name("from")), b.chain(b.bridge, name("arp")), b.chain(b.bridge, name("ip4")), b.chain(b.bridge, name("ip6"))
	b.rule(from, setMark(p.number))
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
	return from, nil
}

// groupChains makes the chains of a port's egress and ingress rules: the
// rules of its groups, and what every port may do (DHCP, neighbour
// discovery).
func (b *rules) groupChains(p secured) (egress, ingress *nftables.Chain) {
	egress, ingress = b.chain(b.inet, fmt.Sprintf("egress-%d", p.number)), b.chain(b.inet, fmt.Sprintf("ingress-%d", p.number))
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
	for _, id := range p.port.SecurityGroups {
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
	return egress, ingress
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
		m = append(m, inSet(expr.PayloadBaseNetworkHeader, remote, addrLen, b.membersOf(r.RemoteGroup, v6), false)...)
	}
	return m, true
}

// membersOf is the set of the addresses of a group's members in one
// family, made the first time a rule names the group.
func (b *rules) membersOf(group string, v6 bool) *nftables.Set {
	family, typ := "4", nftables.TypeIPAddr
	if v6 {
		family, typ = "6", nftables.TypeIP6Addr
	}
	if s := b.members[group+family]; s != nil {
		return s
	}
	var addrs [][]byte
	for _, m := range b.groups[group].Members {
		if a, err := netip.ParseAddr(m); err == nil && a.Is6() == v6 {
			addrs = append(addrs, a.AsSlice())
		}
	}
	// The group's members are the controllers' to send: a group the host
	// has not heard of yet has none, and its rules let nothing in.
	s, _ := b.set(b.inet, fmt.Sprintf("members-%s-%s", shortID(group, 12), family), typ, addrs)
	if b.members == nil {
		b.members = map[string]*nftables.Set{}
	}
	b.members[group+family] = s
	return s
}

func (b *rules) chain(t *nftables.Table, name string) *nftables.Chain {
	return b.c.AddChain(&nftables.Chain{Table: t, Name: name})
}

func (b *rules) set(t *nftables.Table, name string, typ nftables.SetDatatype, keys [][]byte) (*nftables.Set, error) {
	s := &nftables.Set{Table: t, Name: name, KeyType: typ}
	var elems []nftables.SetElement
	seen := map[string]bool{}
	for _, k := range keys {
		if !seen[string(k)] {
			seen[string(k)] = true
			elems = append(elems, nftables.SetElement{Key: k})
		}
	}
	if err := b.c.AddSet(s, elems); err != nil {
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

func ifname(key expr.MetaKey, name string) []expr.Any {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return []expr.Any{&expr.Meta{Key: key, Register: 1}, cmp(expr.CmpOpEq, b)}
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

// markMasked matches marks whose bits under mask are value.
func markMasked(mask, value uint32) []expr.Any {
	return []expr.Any{&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: binaryutil.NativeEndian.PutUint32(mask), Xor: make([]byte, 4)},
		cmp(expr.CmpOpEq, binaryutil.NativeEndian.PutUint32(value))}
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
