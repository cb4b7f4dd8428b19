package linux

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/trustack/trustack/internal/namespace"
	"github.com/trustack/trustack/wire"
	"github.com/vishvananda/netlink"
)

// A network's DHCP servers are one dnsmasq, as Neutron's, in a network
// namespace of the network's own ("qdhcp-" and its ID) joined to its
// bridge by a veth pair ("tsd-" on the bridge, eth0 in the namespace, with
// the DHCP port's MAC and addresses): a range for each subnet that serves
// DHCP, each port's address given to its MAC alone, with the subnet's
// gateway, name servers, routes and the network's MTU. Its files are in
// the state directory; a change of leases or options rewrites them and
// signals dnsmasq to read them again, a change of subnets restarts it.
const (
	dhcpPrefix    = "tsd-"
	dhcpInterface = "eth0"
	leaseTime     = "86400s"
)

func dhcpVethName(networkID string) string { return dhcpPrefix + shortID(networkID, 11) }

func dhcpOwner(networkID string) owner { return owner{"dhcp", networkID} }

// dhcpNamespace names a network's DHCP namespace, after the host's own
// when it has one, since namespace names are the machine's.
func (n *Network) dhcpNamespace(networkID string) string {
	return n.childPrefix() + "qdhcp-" + networkID
}

func (n *Network) dhcpDir(networkID string) string {
	return filepath.Join(n.cfg.StateDir, "dhcp", networkID)
}

// applyDHCP makes a network's DHCP server serve its subnets as n.st.DHCP
// says, or stops it if it serves none; the caller holds n.mu.
func (n *Network) applyDHCP(networkID string) error {
	subnets := n.st.DHCPOf(networkID)
	if len(subnets) == 0 {
		return n.stopDHCP(networkID)
	}
	if n.cfg.StateDir == "" {
		return errors.New("DHCP servers need a state directory")
	}
	br, err := n.segment(networkID, subnets[0].Segment)
	if err != nil {
		return fmt.Errorf("DHCP for network %s: %w", networkID, err)
	}
	ns, err := namespace.Create(n.dhcpNamespace(networkID))
	if err != nil {
		return err
	}
	defer ns.Close()
	if err := n.dhcpLink(networkID, subnets, br, ns); err != nil {
		return fmt.Errorf("DHCP for network %s: %w", networkID, err)
	}
	return n.runDnsmasq(networkID, subnets, ns)
}

// dhcpLink joins the DHCP namespace to the network's bridge, its end with
// the DHCP port's MAC and addresses.
func (n *Network) dhcpLink(networkID string, subnets []wire.DHCP, br netlink.Link, ns namespace.NS) error {
	var addrs []string
	for _, d := range subnets {
		for _, a := range d.Port.Addresses {
			if a.SubnetID == d.SubnetID {
				addrs = append(addrs, addressWithPrefix(a.Address, d.CIDR))
			}
		}
	}
	return n.joinNamespace(ns, dhcpVethName(networkID), dhcpInterface, dhcpOwner(networkID), br, subnets[0].Port, addrs)
}

// addressWithPrefix is an address with its subnet's prefix length.
func addressWithPrefix(addr, cidr string) string {
	if pfx, err := netip.ParsePrefix(cidr); err == nil {
		return fmt.Sprintf("%s/%d", addr, pfx.Bits())
	}
	return addr
}

// runDnsmasq writes the DHCP server's files and has dnsmasq serve them:
// it starts one if none runs with these arguments, and signals the one
// that does to read its hosts and options again.
func (n *Network) runDnsmasq(networkID string, subnets []wire.DHCP, ns namespace.NS) error {
	dir := n.dhcpDir(networkID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	args := []string{"--conf-file=/dev/null", "--no-hosts", "--no-resolv", "--port=0", "--bind-interfaces",
		"--interface=" + dhcpInterface, "--except-interface=lo", "--dhcp-authoritative", "--leasefile-ro",
		// Root, for it reads its files again on a signal, after it would
		// have dropped its privileges; alone in its namespace, it reaches
		// nothing but the tenant's network.
		"--user=root", "--group=root",
		"--pid-file=" + filepath.Join(dir, "pid"), "--dhcp-hostsfile=" + filepath.Join(dir, "hosts"),
		"--dhcp-optsfile=" + filepath.Join(dir, "opts")}
	var hosts, opts strings.Builder
	for _, d := range subnets {
		pfx, err := netip.ParsePrefix(d.CIDR)
		if err != nil {
			return fmt.Errorf("DHCP for subnet %s: bad CIDR %q", d.SubnetID, d.CIDR)
		}
		tag := "subnet-" + shortID(d.SubnetID, 12)
		if pfx.Addr().Is4() {
			args = append(args, fmt.Sprintf("--dhcp-range=set:%s,%s,static,%s,%s", tag, pfx.Masked().Addr(), net.IP(net.CIDRMask(pfx.Bits(), 32)), leaseTime))
		} else {
			args = append(args, fmt.Sprintf("--dhcp-range=set:%s,%s,static,%d,%s", tag, pfx.Masked().Addr(), pfx.Bits(), leaseTime))
		}
		for _, h := range d.Leases {
			addr := h.Address
			if a, err := netip.ParseAddr(addr); err == nil && a.Is6() {
				addr = "[" + addr + "]"
			}
			fmt.Fprintf(&hosts, "%s,%s,%s\n", h.MAC, h.Hostname, addr)
		}
		if pfx.Addr().Is4() {
			writeOptions(&opts, tag, d)
		}
	}
	changed, err := writeIfChanged(filepath.Join(dir, "args"), strings.Join(args, "\n"))
	if err != nil {
		return err
	}
	for name, content := range map[string]string{"hosts": hosts.String(), "opts": opts.String()} {
		if _, err := writeIfChanged(filepath.Join(dir, name), content); err != nil {
			return err
		}
	}
	pid := daemonPID(filepath.Join(dir, "pid"), "dnsmasq")
	if pid != 0 && !changed {
		return syscall.Kill(pid, syscall.SIGHUP)
	}
	if pid != 0 {
		syscall.Kill(pid, syscall.SIGTERM)
	}
	return ns.Do(func() error {
		out, err := exec.Command("dnsmasq", args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("start dnsmasq for network %s: %v: %s", networkID, err, strings.TrimSpace(string(out)))
		}
		return nil
	})
}

// writeOptions writes what a subnet's clients are told beyond their
// address: its gateway, name servers, routes and MTU.
func writeOptions(w *strings.Builder, tag string, d wire.DHCP) {
	if d.Gateway != "" {
		fmt.Fprintf(w, "tag:%s,option:router,%s\n", tag, d.Gateway)
	} else {
		fmt.Fprintf(w, "tag:%s,option:router\n", tag) // none, rather than dnsmasq's own address
	}
	var dns []string
	for _, a := range d.DNS {
		if addr, err := netip.ParseAddr(a); err == nil && addr.Is4() {
			dns = append(dns, a)
		}
	}
	if len(dns) > 0 {
		fmt.Fprintf(w, "tag:%s,option:dns-server,%s\n", tag, strings.Join(dns, ","))
	}
	if len(d.HostRoutes) > 0 {
		routes := make([]string, 0, 2*len(d.HostRoutes)+2)
		for _, r := range d.HostRoutes {
			routes = append(routes, r.Destination, r.NextHop)
		}
		if d.Gateway != "" {
			// A client given classless routes ignores the router option.
			routes = append(routes, "0.0.0.0/0", d.Gateway)
		}
		fmt.Fprintf(w, "tag:%s,option:classless-static-route,%s\n", tag, strings.Join(routes, ","))
	}
	if d.Segment.MTU > 0 {
		fmt.Fprintf(w, "tag:%s,option:mtu,%d\n", tag, d.Segment.MTU)
	}
}

// writeIfChanged writes a file unless it holds content already, and says
// whether it wrote.
func writeIfChanged(path, content string) (bool, error) {
	if b, err := os.ReadFile(path); err == nil && string(b) == content {
		return false, nil
	}
	return true, os.WriteFile(path, []byte(content), 0o600)
}

// stopDHCP stops a network's DHCP server and removes its namespace and
// files; the caller holds n.mu.
func (n *Network) stopDHCP(networkID string) error {
	dir := n.dhcpDir(networkID)
	if pid := daemonPID(filepath.Join(dir, "pid"), "dnsmasq"); pid != 0 {
		syscall.Kill(pid, syscall.SIGTERM)
	}
	if err := namespace.Remove(n.dhcpNamespace(networkID)); err != nil {
		return err
	}
	veth, err := n.linkByName(dhcpVethName(networkID))
	if err != nil {
		return err
	}
	if veth != nil {
		// Gone with its peer's namespace, unless a process holds that.
		if err := n.nl.LinkDel(veth); err != nil && !errors.Is(err, syscall.ENODEV) {
			return fmt.Errorf("remove %s: %w", veth.Attrs().Name, err)
		}
		if err := n.removeIdleSegment(veth.Attrs().MasterIndex); err != nil {
			return err
		}
	}
	if n.cfg.StateDir == "" {
		return nil
	}
	return os.RemoveAll(dir)
}

// dhcpNetworks returns the networks of the DHCP servers the host has
// files of.
func (n *Network) dhcpNetworks() []string {
	if n.cfg.StateDir == "" {
		return nil
	}
	entries, _ := os.ReadDir(filepath.Join(n.cfg.StateDir, "dhcp"))
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out
}
