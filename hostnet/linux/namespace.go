package linux

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"

	"github.com/google/nftables"
	"github.com/trustack/trustack/wire"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// namespace is the network namespace a host's network is in: a named one
// (under /run/netns) or, if none is named, the process's own.
type namespace struct {
	name   string
	handle netns.NsHandle // closed (netns.None) for the process's own
}

func openNamespace(name string) (namespace, error) {
	if name == "" {
		return namespace{handle: netns.None()}, nil
	}
	h, err := netns.GetFromName(name)
	if err != nil {
		return namespace{}, fmt.Errorf("network namespace %s: %w", name, err)
	}
	return namespace{name: name, handle: h}, nil
}

func (ns namespace) close() {
	if ns.handle.IsOpen() {
		ns.handle.Close()
	}
}

// do runs fn on a thread in the namespace, for what is made in the
// namespace of the thread that makes it rather than through a netlink
// handle: tap devices and sockets, sysctls, child processes.
func (ns namespace) do(fn func() error) error {
	if !ns.handle.IsOpen() {
		return fn()
	}
	runtime.LockOSThread()
	own, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("this thread's network namespace: %w", err)
	}
	defer own.Close()
	if err := netns.Set(ns.handle); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter network namespace %s: %w", ns.name, err)
	}
	err = fn()
	// A thread that cannot go back stays locked, and ends with its
	// goroutine rather than serve another in the wrong namespace.
	if back := netns.Set(own); back == nil {
		runtime.UnlockOSThread()
	}
	return err
}

// openChildNamespace opens a namespace of the host's own (a DHCP
// server's, a router's), made if missing.
func (n *Network) openChildNamespace(name string) (namespace, error) {
	if h, err := netns.GetFromName(name); err == nil {
		return namespace{name: name, handle: h}, nil
	}
	// Making a namespace moves the thread into it: do it on a thread
	// that goes back.
	err := n.ns.do(func() error {
		h, err := netns.NewNamed(name)
		if err == nil {
			h.Close()
		}
		return err
	})
	if err != nil {
		return namespace{}, fmt.Errorf("make network namespace %s: %w", name, err)
	}
	return openNamespace(name)
}

// removeNamespace removes a named namespace, if it is there.
func removeNamespace(name string) error {
	if err := netns.DeleteNamed(name); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove network namespace %s: %w", name, err)
	}
	return nil
}

// childNamespaces returns the names of the namespaces of the host's own
// whose names start with prefix.
func childNamespaces(prefix string) []string {
	entries, _ := os.ReadDir("/run/netns")
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, e.Name())
		}
	}
	return out
}

// joinNamespace joins a namespace to a bridge of the host through a veth
// pair, hostSide on the bridge and inside in the namespace with the
// port's MAC and MTU and addrs (address/prefix length) alone.
func (n *Network) joinNamespace(ns namespace, hostSide, inside string, o owner, br netlink.Link, p wire.Port, addrs []string) error {
	mtu := p.Segment.MTU
	want := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: hostSide}, PeerName: inside, PeerNamespace: netlink.NsFd(int(ns.handle))}
	veth, err := n.ensure(want, o, func() error { return n.nl.LinkAdd(want) })
	if err != nil {
		return err
	}
	if err := n.attach(veth, mtu, br); err != nil {
		return err
	}
	h, err := netlink.NewHandleAt(ns.handle)
	if err != nil {
		return fmt.Errorf("netlink in %s: %w", ns.name, err)
	}
	defer h.Close()
	eth, err := h.LinkByName(inside)
	if err != nil {
		return fmt.Errorf("%s in %s: %w", inside, ns.name, err)
	}
	mac, err := p.HardwareAddr()
	if err != nil {
		return err
	}
	if eth.Attrs().HardwareAddr.String() != mac.String() {
		if err := h.LinkSetHardwareAddr(eth, mac); err != nil {
			return fmt.Errorf("set the MAC of %s in %s: %w", inside, ns.name, err)
		}
	}
	if mtu > 0 && eth.Attrs().MTU != mtu {
		if err := h.LinkSetMTU(eth, mtu); err != nil {
			return fmt.Errorf("set the MTU of %s in %s: %w", inside, ns.name, err)
		}
	}
	want4, want6 := map[string]bool{}, map[string]bool{}
	for _, a := range addrs {
		addr, err := netlink.ParseAddr(a)
		if err != nil {
			return fmt.Errorf("address %s of %s: %w", a, inside, err)
		}
		if err := h.AddrReplace(eth, addr); err != nil {
			return fmt.Errorf("give %s %s: %w", inside, a, err)
		}
		if addr.IP.To4() != nil {
			want4[addr.IPNet.String()] = true
		} else {
			want6[addr.IPNet.String()] = true
		}
	}
	for family, want := range map[int]map[string]bool{netlink.FAMILY_V4: want4, netlink.FAMILY_V6: want6} {
		have, err := h.AddrList(eth, family)
		if err != nil {
			return err
		}
		for _, a := range have {
			if !want[a.IPNet.String()] && !a.IP.IsLinkLocalUnicast() {
				if err := h.AddrDel(eth, &a); err != nil {
					return fmt.Errorf("take %s from %s: %w", a.IPNet, inside, err)
				}
			}
		}
	}
	for _, name := range []string{"lo", inside} {
		l, err := h.LinkByName(name)
		if err == nil && l.Attrs().Flags&net.FlagUp == 0 {
			err = h.LinkSetUp(l)
		}
		if err != nil {
			return fmt.Errorf("bring %s up in %s: %w", name, ns.name, err)
		}
	}
	return nil
}

// nftables opens a connection to the namespace's nftables.
func (ns namespace) nftables() (*nftables.Conn, error) {
	var opts []nftables.ConnOption
	if ns.handle.IsOpen() {
		opts = append(opts, nftables.WithNetNSFd(int(ns.handle)))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	return c, nil
}

// sysctl sets a sysctl of the namespace's, such as net/ipv4/ip_forward.
func (ns namespace) sysctl(name, value string) error {
	return ns.do(func() error {
		if err := os.WriteFile("/proc/sys/"+name, []byte(value+"\n"), 0); err != nil {
			return fmt.Errorf("sysctl %s in %s: %w", name, ns.name, err)
		}
		return nil
	})
}
