package linux

import (
	"errors"
	"fmt"
	"net"

	"github.com/google/nftables"
	mdnetlink "github.com/mdlayher/netlink"
	"github.com/trustack/trustack/internal/namespace"
	"github.com/trustack/trustack/wire"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// nftablesBuffer is the send and receive buffer of nftables connections:
// room for a batch of some 30,000 messages, and their acknowledgements.
const nftablesBuffer = 32 << 20

// joinNamespace joins a namespace to a bridge of the host through a veth
// pair, hostSide on the bridge and inside in the namespace with the
// port's MAC and MTU and addrs (address/prefix length) alone.
func (n *Network) joinNamespace(ns namespace.NS, hostSide, inside string, o owner, br netlink.Link, p wire.Port, addrs []string) error {
	mtu := p.Segment.MTU
	want := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: hostSide}, PeerName: inside, PeerNamespace: netlink.NsFd(int(ns.Handle))}
	veth, err := n.ensure(want, o, func() error { return n.nl.LinkAdd(want) })
	if err != nil {
		return err
	}
	if err := n.attach(veth, mtu, br); err != nil {
		return err
	}
	h, err := netlink.NewHandleAt(ns.Handle)
	if err != nil {
		return fmt.Errorf("netlink in %s: %w", ns.Name, err)
	}
	defer h.Close()
	eth, err := h.LinkByName(inside)
	if err != nil {
		return fmt.Errorf("%s in %s: %w", inside, ns.Name, err)
	}
	mac, err := p.HardwareAddr()
	if err != nil {
		return err
	}
	if eth.Attrs().HardwareAddr.String() != mac.String() {
		if err := h.LinkSetHardwareAddr(eth, mac); err != nil {
			return fmt.Errorf("set the MAC of %s in %s: %w", inside, ns.Name, err)
		}
	}
	if mtu > 0 && eth.Attrs().MTU != mtu {
		if err := h.LinkSetMTU(eth, mtu); err != nil {
			return fmt.Errorf("set the MTU of %s in %s: %w", inside, ns.Name, err)
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
			return fmt.Errorf("bring %s up in %s: %w", name, ns.Name, err)
		}
	}
	return nil
}

// nftablesIn opens a connection to the namespace's nftables, with room
// for a large batch (a firewall of many ports) and the kernel's
// acknowledgement of each of its messages: past the socket's usual
// buffers the batch would fail (EMSGSIZE, ENOBUFS).
func nftablesIn(ns namespace.NS) (*nftables.Conn, error) {
	opts := []nftables.ConnOption{nftables.WithSockOptions(func(c *mdnetlink.Conn) error {
		raw, err := c.SyscallConn()
		if err != nil {
			return err
		}
		var serr error
		err = raw.Control(func(fd uintptr) {
			serr = errors.Join(unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, nftablesBuffer),
				unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, nftablesBuffer))
		})
		if err == nil && serr != nil {
			// Without CAP_NET_ADMIN, as much as net.core's maxima allow.
			return errors.Join(c.SetReadBuffer(nftablesBuffer), c.SetWriteBuffer(nftablesBuffer))
		}
		return err
	})}
	if ns.Handle.IsOpen() {
		opts = append(opts, nftables.WithNetNSFd(int(ns.Handle)))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	return c, nil
}
