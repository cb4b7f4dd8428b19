package linux

import (
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/trustack/trustack/internal/namespace"
	"github.com/trustack/trustack/wire"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// A router runs as Neutron's do, in a network namespace of its own
// ("qrouter-" and its ID) that forwards between its interfaces: one on
// each of its tenant subnets ("qr-" in the namespace, "tsr-" on the
// network's bridge) with the subnet's gateway address, and its gateway on
// the external network ("qg-", "tsg-") with its external address and the
// floating addresses it answers for. Its nftables table translates each
// floating address to its fixed one and back, and sources the rest of
// what leaves through the gateway from the gateway's address when SNAT
// is on.
const (
	routerPortPrefix  = "tsr-"
	gatewayPortPrefix = "tsg-"
)

func routerOwner(routerID string) owner { return owner{"router", routerID} }

// routerNamespace names a router's namespace, after the host's own when
// it has one.
func (n *Network) routerNamespace(routerID string) string {
	return n.childPrefix() + "qrouter-" + routerID
}

// childPrefix starts the names of the host's own namespaces: the
// machine's namespaces are shared by every host on it.
func (n *Network) childPrefix() string {
	if n.cfg.Namespace != "" {
		return n.cfg.Namespace + "-"
	}
	return ""
}

// applyRouter makes a router as r says; the caller holds n.mu.
func (n *Network) applyRouter(r wire.Router) error {
	ns, err := namespace.Create(n.routerNamespace(r.ID))
	if err != nil {
		return err
	}
	defer ns.Close()
	if err := ns.Sysctl("net/ipv4/ip_forward", "1"); err != nil {
		return err
	}
	keep := map[string]bool{}
	join := func(p wire.Port, hostPrefix, insidePrefix string, extra []string) error {
		br, err := n.segment(p.NetworkID, p.Segment)
		if err != nil {
			return fmt.Errorf("router %s: %w", r.ID, err)
		}
		addrs := extra
		for _, a := range p.Addresses {
			addrs = append(addrs, addressWithPrefix(a.Address, a.CIDR))
		}
		hostSide := hostPrefix + shortID(p.ID, 11)
		keep[hostSide] = true
		if err := n.joinNamespace(ns, hostSide, insidePrefix+shortID(p.ID, 11), routerOwner(r.ID), br, p, addrs); err != nil {
			return fmt.Errorf("router %s: %w", r.ID, err)
		}
		return nil
	}
	for _, p := range r.Interfaces {
		if err := join(p, routerPortPrefix, "qr-", nil); err != nil {
			return err
		}
	}
	if r.Gateway != nil {
		// The router answers for its floating addresses on the external
		// network as for its own.
		var floating []string
		for _, f := range r.FloatingIPs {
			floating = append(floating, f.Address+"/32")
		}
		if err := join(*r.Gateway, gatewayPortPrefix, "qg-", floating); err != nil {
			return err
		}
	}
	if err := n.removeRouterPorts(r.ID, keep); err != nil {
		return err
	}
	if err := routes(ns, r); err != nil {
		return fmt.Errorf("router %s: %w", r.ID, err)
	}
	if err := natTable(ns, r); err != nil {
		return err
	}
	return n.serveMetadata(r.ID, ns)
}

// removeRouterPorts removes a router's veths not in keep.
func (n *Network) removeRouterPorts(routerID string, keep map[string]bool) error {
	links, err := n.nl.LinkList()
	if err != nil {
		return fmt.Errorf("list devices: %w", err)
	}
	for _, l := range links {
		if o, ok := ownerOf(l); ok && o == routerOwner(routerID) && !keep[l.Attrs().Name] {
			if err := n.nl.LinkDel(l); err != nil {
				return fmt.Errorf("remove %s, of router %s: %w", l.Attrs().Name, routerID, err)
			}
			if err := n.removeIdleSegment(l.Attrs().MasterIndex); err != nil {
				return err
			}
		}
	}
	return nil
}

// routes sets a router's default route, through its gateway's subnet's
// gateway, and its static routes, and removes any other.
func routes(ns namespace.NS, r wire.Router) error {
	h, err := netlink.NewHandleAt(ns.Handle)
	if err != nil {
		return err
	}
	defer h.Close()
	want := map[string]string{} // destination → next hop
	for _, rt := range r.Routes {
		want[rt.Destination] = rt.NextHop
	}
	if r.Gateway != nil {
		for _, a := range r.Gateway.Addresses {
			if gw, err := netip.ParseAddr(a.Gateway); err == nil && gw.Is4() {
				want["0.0.0.0/0"] = a.Gateway
			}
		}
	}
	have, err := h.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return err
	}
	for _, rt := range have {
		if rt.Gw == nil {
			continue // a connected route, the kernel's
		}
		dst := "0.0.0.0/0"
		if rt.Dst != nil {
			dst = rt.Dst.String()
		}
		if want[dst] != rt.Gw.String() {
			if err := h.RouteDel(&rt); err != nil {
				return fmt.Errorf("remove the route to %s: %w", dst, err)
			}
		}
	}
	for dst, via := range want {
		_, ipnet, err := net.ParseCIDR(dst)
		if err != nil {
			return fmt.Errorf("route to %q: %w", dst, err)
		}
		if err := h.RouteReplace(&netlink.Route{Dst: ipnet, Gw: net.ParseIP(via)}); err != nil {
			return fmt.Errorf("route to %s through %s: %w", dst, via, err)
		}
	}
	return nil
}

// natTable replaces the router's address translation: each floating
// address to its fixed address and back, and, with SNAT on, the rest of
// what leaves through the gateway from the gateway's address.
func natTable(ns namespace.NS, r wire.Router) error {
	c, err := nftablesIn(ns)
	if err != nil {
		return err
	}
	t := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: tableName}
	c.AddTable(t)
	c.DelTable(t)
	c.AddTable(t)
	pre := c.AddChain(&nftables.Chain{Table: t, Name: "prerouting", Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest})
	post := c.AddChain(&nftables.Chain{Table: t, Name: "postrouting", Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource})
	b := &rules{c: c}
	if r.Gateway != nil {
		gateway := "qg-" + shortID(r.Gateway.ID, 11)
		for _, f := range r.FloatingIPs {
			floating, err1 := netip.ParseAddr(f.Address)
			fixed, err2 := netip.ParseAddr(f.FixedAddress)
			if err1 != nil || err2 != nil || !floating.Is4() || !fixed.Is4() {
				return fmt.Errorf("router %s: floating IP %s to %s is not a pair of IPv4 addresses", r.ID, f.Address, f.FixedAddress)
			}
			b.rule(pre, fieldIs(expr.PayloadBaseNetworkHeader, 16, floating.AsSlice()), translate(expr.NATTypeDestNAT, fixed))
			b.rule(post, fieldIs(expr.PayloadBaseNetworkHeader, 12, fixed.AsSlice()), ifname(expr.MetaKeyOIFNAME, gateway),
				translate(expr.NATTypeSourceNAT, floating))
		}
		if r.SNAT {
			for _, a := range r.Gateway.Addresses {
				if addr, err := netip.ParseAddr(a.Address); err == nil && addr.Is4() {
					b.rule(post, ifname(expr.MetaKeyOIFNAME, gateway), translate(expr.NATTypeSourceNAT, addr))
					break
				}
			}
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("router %s: nftables: %w", r.ID, err)
	}
	return nil
}

// translate rewrites the packet's source or destination to addr.
func translate(kind expr.NATType, addr netip.Addr) []expr.Any {
	return []expr.Any{&expr.Immediate{Register: 1, Data: addr.AsSlice()},
		&expr.NAT{Type: kind, Family: unix.NFPROTO_IPV4, RegAddrMin: 1}}
}

// stopRouter removes a router's namespace and its veths; the caller
// holds n.mu.
func (n *Network) stopRouter(routerID string) error {
	n.stopMetadata(routerID)
	if err := n.removeRouterPorts(routerID, nil); err != nil {
		return err
	}
	return namespace.Remove(n.routerNamespace(routerID))
}

// routerIDs returns the routers whose namespaces the host has.
func (n *Network) routerIDs() []string {
	prefix := n.routerNamespace("")
	var out []string
	for _, name := range namespace.List(prefix) {
		out = append(out, strings.TrimPrefix(name, prefix))
	}
	return out
}
