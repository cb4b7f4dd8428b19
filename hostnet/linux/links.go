package linux

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/wire"
	"github.com/vishvananda/netlink"
)

// Kernel devices are named after what they wire, within the kernel's 15
// characters: a network's bridge "tsb-" and VXLAN device "tsx-", each
// followed by the start of the network's ID, and a port's tap as
// wire.TapName says. Each carries an alias saying whose it is, so that a
// sync removes what no port owns and nothing trustack did not make.
const (
	bridgePrefix = "tsb-"
	vxlanPrefix  = "tsx-"
	aliasPrefix  = "trustack "
	vxlanPort    = 4789 // IANA's
)

func bridgeName(networkID string) string { return bridgePrefix + shortID(networkID, 11) }
func vxlanName(networkID string) string  { return vxlanPrefix + shortID(networkID, 11) }

// shortID is the first n characters of an ID, dashes dropped.
func shortID(id string, n int) string {
	id = strings.ReplaceAll(id, "-", "")
	return id[:min(n, len(id))]
}

// owner is what an alias says a device is for: a network's segment or a
// port.
type owner struct{ kind, id string }

func (o owner) alias() string { return aliasPrefix + o.kind + " " + o.id }

func networkOwner(id string) owner { return owner{"network", id} }
func portOwner(id string) owner    { return owner{"port", id} }

// ownerOf returns whose a device is, and false if trustack did not make it.
func ownerOf(l netlink.Link) (owner, bool) {
	kind, id, ok := strings.Cut(strings.TrimPrefix(l.Attrs().Alias, aliasPrefix), " ")
	if !ok || !strings.HasPrefix(l.Attrs().Alias, aliasPrefix) {
		return owner{}, false
	}
	return owner{kind, id}, true
}

// linkByName returns the device, nil if there is none.
func (n *Network) linkByName(name string) (netlink.Link, error) {
	l, err := n.nl.LinkByName(name)
	if _, missing := errors.AsType[netlink.LinkNotFoundError](err); missing {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up %s: %w", name, err)
	}
	return l, nil
}

// ensure makes the device want describes if there is none of its name, or
// if the one there is of another type or another owner, and returns it.
func (n *Network) ensure(want netlink.Link, o owner, create func() error) (netlink.Link, error) {
	name := want.Attrs().Name
	l, err := n.linkByName(name)
	if err != nil {
		return nil, err
	}
	if l != nil {
		if got, ok := ownerOf(l); ok && got == o && l.Type() == want.Type() {
			return l, nil
		}
		if err := n.nl.LinkDel(l); err != nil {
			return nil, fmt.Errorf("replace %s: %w", name, err)
		}
	}
	if err := create(); err != nil {
		return nil, fmt.Errorf("create %s: %w", name, err)
	}
	if l, err = n.nl.LinkByName(name); err != nil {
		return nil, fmt.Errorf("look up %s: %w", name, err)
	}
	if err := n.nl.LinkSetAlias(l, o.alias()); err != nil {
		return nil, fmt.Errorf("name the owner of %s: %w", name, err)
	}
	return l, nil
}

// attach sets a device's MTU (unless 0), its master (unless nil) and
// brings it up, changing only what differs.
func (n *Network) attach(l netlink.Link, mtu int, master netlink.Link) error {
	a := l.Attrs()
	if mtu > 0 && a.MTU != mtu {
		if err := n.nl.LinkSetMTU(l, mtu); err != nil {
			return fmt.Errorf("set the MTU of %s: %w", a.Name, err)
		}
	}
	if master != nil && a.MasterIndex != master.Attrs().Index {
		if err := n.nl.LinkSetMaster(l, master); err != nil {
			return fmt.Errorf("attach %s to %s: %w", a.Name, master.Attrs().Name, err)
		}
	}
	if a.Flags&net.FlagUp == 0 {
		if err := n.nl.LinkSetUp(l); err != nil {
			return fmt.Errorf("bring %s up: %w", a.Name, err)
		}
	}
	return nil
}

// segment makes a network's bridge and the uplink of its segment, and
// returns the bridge.
func (n *Network) segment(networkID string, s wire.Segment) (netlink.Link, error) {
	o := networkOwner(networkID)
	want := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: bridgeName(networkID)}}
	br, err := n.ensure(want, o, func() error { return n.nl.LinkAdd(want) })
	if err != nil {
		return nil, err
	}
	if err := n.attach(br, s.MTU, nil); err != nil {
		return nil, err
	}
	switch s.Type {
	case trustack.NetworkLocal:
		return br, nil
	case trustack.NetworkVXLAN:
		return br, n.vxlan(networkID, s, br)
	default:
		return br, n.physical(networkID, s, br)
	}
}

// vxlan makes a VXLAN segment's device on the overlay interface, flooding
// to the segment's multicast group, and attaches it to br.
func (n *Network) vxlan(networkID string, s wire.Segment, br netlink.Link) error {
	if n.overlay == nil {
		return fmt.Errorf("VXLAN network %s: the host has no overlay interface", networkID)
	}
	want := &netlink.Vxlan{LinkAttrs: netlink.LinkAttrs{Name: vxlanName(networkID)}, VxlanId: s.SegmentationID,
		VtepDevIndex: n.overlay.Attrs().Index, Group: n.vxlanGroup(s.SegmentationID).AsSlice(), Port: vxlanPort, Learning: true}
	l, err := n.ensure(want, networkOwner(networkID), func() error { return n.nl.LinkAdd(want) })
	if err != nil {
		return err
	}
	if got := l.(*netlink.Vxlan); got.VxlanId != s.SegmentationID || !got.Group.Equal(want.Group) {
		// The segment changed (a network deleted and made again with
		// the same ID prefix): make the device anew.
		if err := n.nl.LinkDel(l); err != nil {
			return fmt.Errorf("replace %s: %w", want.Name, err)
		}
		return n.vxlan(networkID, s, br)
	}
	return n.attach(l, s.MTU, br)
}

// vxlanGroup is the multicast address VNI vni floods to: the VNI's
// place in the configured block.
func (n *Network) vxlanGroup(vni int) netip.Addr {
	base := n.cfg.VXLANGroup.Masked().Addr().As4()
	size := uint32(1) << (32 - n.cfg.VXLANGroup.Bits())
	v := (uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])) + uint32(vni)%size
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// tap makes a port's tap device, persistent so that the guest's QEMU
// opens it by name. Its own MAC is the port's with the first byte fe, as
// Neutron's, so that the bridge never takes the guest's MAC for its own.
func (n *Network) tap(p wire.Port, mac net.HardwareAddr) (netlink.Link, error) {
	own := net.HardwareAddr{0xfe, mac[1], mac[2], mac[3], mac[4], mac[5]}
	want := &netlink.Tuntap{LinkAttrs: netlink.LinkAttrs{Name: wire.TapName(p.ID), HardwareAddr: own}, Mode: netlink.TUNTAP_MODE_TAP,
		Flags: netlink.TUNTAP_NO_PI | netlink.TUNTAP_VNET_HDR}
	l, err := n.ensure(want, portOwner(p.ID), func() error {
		// A tap is made in the namespace of the thread that opens
		// /dev/net/tun, whatever the handle's.
		return n.ns.Do(func() error { return netlink.LinkAdd(want) })
	})
	if err != nil {
		return nil, err
	}
	if l.Attrs().HardwareAddr.String() != own.String() {
		if err := n.nl.LinkSetHardwareAddr(l, own); err != nil {
			return nil, fmt.Errorf("set the MAC of %s: %w", want.Name, err)
		}
	}
	return l, nil
}

// removeIdleSegment removes a network's bridge, given by index, and its
// uplink if nothing else is attached to the bridge.
func (n *Network) removeIdleSegment(bridge int) error {
	links, err := n.nl.LinkList()
	if err != nil {
		return fmt.Errorf("list devices: %w", err)
	}
	var br netlink.Link
	var segment []netlink.Link
	for _, l := range links {
		if l.Attrs().Index == bridge {
			br = l
		}
	}
	o, ok := owner{}, false
	if br != nil {
		o, ok = ownerOf(br)
	}
	if !ok || o.kind != "network" {
		return nil
	}
	for _, l := range links {
		switch got, mine := ownerOf(l); {
		case mine && got == o:
			segment = append(segment, l) // the bridge and its uplink
		case l.Attrs().MasterIndex == bridge:
			return nil // a port still on it
		}
	}
	for _, l := range segment {
		if err := n.nl.LinkDel(l); err != nil {
			return fmt.Errorf("remove %s, of network %s: %w", l.Attrs().Name, o.id, err)
		}
	}
	if n.cfg.OVSDB == "" {
		return nil
	}
	return n.vsctl("--if-exists", "del-port", ovsPortName(o.id))
}
