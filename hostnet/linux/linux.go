// Package linux wires a Linux host's side of trustack's networks in its
// kernel, through netlink and nftables: a bridge for each network with
// ports on the host, a persistent tap device for each port, which the
// guest's QEMU opens by name for its virtio-net NIC, the uplink of each
// network's segment (a VXLAN device on the overlay interface, flooding to
// the segment's multicast group; for flat and VLAN networks, an access
// port of Open vSwitch on the physical network, ovs.go), a firewall
// holding each port to its addresses and its security groups
// (firewall.go), and, on a network node, DHCP servers (dhcp.go) and
// routers (routers.go) in network namespaces of their own. Every change is
// idempotent, and Sync rebuilds the whole state from what the controllers
// say, removing the devices no port owns and never one trustack did not
// make.
package linux

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/netip"
	"slices"
	"sync"

	"github.com/trustack/trustack/agent"
	"github.com/trustack/trustack/hostnet"
	"github.com/trustack/trustack/internal/namespace"
	"github.com/trustack/trustack/wire"
	"github.com/vishvananda/netlink"
)

var _ agent.HostNetwork = (*Network)(nil)

// Config says how the host is wired.
type Config struct {
	// Namespace is the network namespace the host's network is in, a
	// name under /run/netns; "" for the process's own.
	Namespace string
	// PhysicalNetworks are the host's interfaces on the physical
	// networks it is wired to, by name.
	PhysicalNetworks map[string]string
	// OverlayInterface carries VXLAN segments between hosts; "" for a
	// host that has none.
	OverlayInterface string
	// VXLANGroup is the multicast block VXLAN segments flood to: VNI n
	// to the block's address n modulo its size.
	VXLANGroup netip.Prefix
	// OVSDB is the Open vSwitch database that flat and VLAN networks are
	// wired through ("unix:/run/openvswitch/db.sock" on a host running
	// Debian's); "" for a host that has none.
	OVSDB string
	// StateDir holds the files of the host's DHCP servers.
	StateDir string
	// OVSDatapath is Open vSwitch's datapath: "system" (the kernel's),
	// "netdev" (userspace, for a kernel without the openvswitch module),
	// or "" to choose by whether the module is there.
	OVSDatapath string
}

// Network is a host's network. It is safe for concurrent use: changes
// take turns.
type Network struct {
	cfg      Config
	datapath string // Open vSwitch's
	ns       namespace.NS
	nl       *netlink.Handle
	overlay  netlink.Link

	mu   sync.Mutex
	st   hostnet.State
	brnf bool  // bridged traffic goes through the IP hooks
	fw   *wall // the firewall as last written; nil for the next write to make it anew
	// The firewall's numbers of the ports it holds and of the networks'
	// connection tracking zones, by ID.
	portNumbers, zones numbering
	metadata           agent.MetadataSource
	proxies            map[string]*http.Server // the routers' metadata servers, by router ID
}

// New opens the host's network as cfg says. It changes nothing until told
// to: the agent's registration brings a Sync.
func New(cfg Config) (*Network, error) {
	if cfg.OverlayInterface != "" && (!cfg.VXLANGroup.IsValid() || !cfg.VXLANGroup.Addr().Is4() || !cfg.VXLANGroup.Addr().IsMulticast()) {
		return nil, fmt.Errorf("the VXLAN group %s is not an IPv4 multicast block", cfg.VXLANGroup)
	}
	ns, err := namespace.Open(cfg.Namespace)
	if err != nil {
		return nil, err
	}
	n := &Network{cfg: cfg, datapath: ovsDatapath(cfg.OVSDatapath), ns: ns, st: hostnet.NewState(slices.Collect(maps.Keys(cfg.PhysicalNetworks))),
		proxies: map[string]*http.Server{}, portNumbers: numbering{}, zones: numbering{}}
	if ns.Handle.IsOpen() {
		n.nl, err = netlink.NewHandleAt(ns.Handle)
	} else {
		n.nl, err = netlink.NewHandle()
	}
	if err != nil {
		ns.Close()
		return nil, fmt.Errorf("netlink: %w", err)
	}
	if cfg.OverlayInterface != "" {
		if n.overlay, err = n.linkByName(cfg.OverlayInterface); err == nil && n.overlay == nil {
			err = fmt.Errorf("the overlay interface %s does not exist", cfg.OverlayInterface)
		}
		if err != nil {
			n.Close()
			return nil, err
		}
	}
	return n, nil
}

// Close lets go of the kernel, and stops the routers' metadata servers;
// what is wired stays.
func (n *Network) Close() {
	n.mu.Lock()
	for id := range n.proxies {
		n.stopMetadata(id)
	}
	n.mu.Unlock()
	n.nl.Close()
	n.ns.Close()
}

// PhysicalNetworks returns the physical networks the host is wired to.
func (n *Network) PhysicalNetworks() []string { return n.st.PhysicalNetworks() }

// Plug wires a port: its network's bridge and uplink, and its tap, which
// joins its bridge only once the firewall holds it.
func (n *Network) Plug(_ context.Context, p wire.Port) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.st.Plug(p); err != nil {
		return err
	}
	tap, br, err := n.prepare(p, nil)
	if err != nil {
		return err
	}
	if err := n.applyFirewall(); err != nil {
		return err
	}
	return n.join(p, tap, br)
}

// prepare makes a port's segment, unless segments (by network ID, nil for
// none) has it already, and its tap, and returns them.
func (n *Network) prepare(p wire.Port, segments map[string]netlink.Link) (tap, br netlink.Link, err error) {
	mac, _ := p.HardwareAddr()
	if br = segments[p.NetworkID]; br == nil {
		if br, err = n.segment(p.NetworkID, p.Segment); err != nil {
			return nil, nil, fmt.Errorf("port %s: %w", p.ID, err)
		}
		if segments != nil {
			segments[p.NetworkID] = br
		}
	}
	if tap, err = n.tap(p, mac); err != nil {
		return nil, nil, fmt.Errorf("port %s: %w", p.ID, err)
	}
	return tap, br, nil
}

// join attaches a port's tap to its bridge.
func (n *Network) join(p wire.Port, tap, br netlink.Link) error {
	if err := n.attach(tap, p.Segment.MTU, br); err != nil {
		return fmt.Errorf("port %s: %w", p.ID, err)
	}
	return nil
}

// Unplug removes a port's tap, and its network's bridge and uplink if
// nothing else is attached to the bridge.
func (n *Network) Unplug(_ context.Context, portID string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.st.Ports, portID)
	tap, err := n.linkByName(wire.TapName(portID))
	if err != nil || tap == nil {
		return err
	}
	if o, ok := ownerOf(tap); !ok || o != portOwner(portID) {
		return nil // another's, whose name starts the same
	}
	if err := n.nl.LinkDel(tap); err != nil {
		return fmt.Errorf("remove %s: %w", tap.Attrs().Name, err)
	}
	if err := n.removeIdleSegment(tap.Attrs().MasterIndex); err != nil {
		return err
	}
	return n.applyFirewall()
}

// Ports returns the ports wired, by ID.
func (n *Network) Ports(context.Context) ([]wire.Port, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.st.PortList(), nil
}

// Sync makes the host's network be hn: it wires what hn has and removes
// every device trustack made that no port of hn owns.
func (n *Network) Sync(_ context.Context, hn wire.HostNetwork) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.st.Replace(hn); err != nil {
		return err
	}
	return n.reconcile()
}

// Reconcile makes the kernel's state what the host was last told again,
// repairing what was changed behind its back: the agent calls it on a
// timer.
func (n *Network) Reconcile(context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.reconcile()
}

// reconcile makes the kernel's state be the host's: every port, DHCP
// server and router, the firewall over them, and nothing else trustack
// made; the caller holds n.mu.
func (n *Network) reconcile() error {
	type prepared struct {
		port    wire.Port
		tap, br netlink.Link
	}
	var taps []prepared
	// Each network's segment once, however many ports it has here: for
	// a flat or VLAN network, that is a call of ovs-vsctl.
	segments := map[string]netlink.Link{}
	for _, p := range n.st.PortList() {
		tap, br, err := n.prepare(p, segments)
		if err != nil {
			return err
		}
		taps = append(taps, prepared{p, tap, br})
	}
	if err := n.checkFirewall(); err != nil {
		return err
	}
	if err := n.applyFirewall(); err != nil {
		return err
	}
	for _, t := range taps {
		if err := n.join(t.port, t.tap, t.br); err != nil {
			return err
		}
	}
	for _, id := range slices.Sorted(maps.Keys(n.st.Routers)) {
		if err := n.applyRouter(n.st.Routers[id]); err != nil {
			return err
		}
	}
	for _, id := range n.routerIDs() {
		if _, ok := n.st.Routers[id]; !ok {
			if err := n.stopRouter(id); err != nil {
				return err
			}
		}
	}
	// The networks served, and those served before that no longer are.
	networks := map[string]bool{}
	for _, d := range n.st.DHCP {
		networks[d.NetworkID] = true
	}
	for _, id := range n.dhcpNetworks() {
		networks[id] = true
	}
	for _, id := range slices.Sorted(maps.Keys(networks)) {
		if err := n.applyDHCP(id); err != nil {
			return err
		}
	}
	return n.removeUnowned()
}

// SecurityGroups enforces the groups, as they now are, on the ports in
// them and on the rules that name them.
func (n *Network) SecurityGroups(_ context.Context, groups []wire.SecurityGroup) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.st.UpdateGroups(groups); err != nil {
		return err
	}
	return n.applyFirewall()
}

// removeUnowned deletes the taps of ports the host does not have and the
// devices of networks none of its ports is on; the caller holds n.mu.
func (n *Network) removeUnowned() error {
	links, err := n.nl.LinkList()
	if err != nil {
		return fmt.Errorf("list devices: %w", err)
	}
	networks, served := n.st.Networks(), map[string]bool{}
	for _, d := range n.st.DHCP {
		served[d.NetworkID] = true
	}
	for _, l := range links {
		o, ok := ownerOf(l)
		if !ok {
			continue
		}
		stale := false
		switch o.kind {
		case "port":
			_, wired := n.st.Ports[o.id]
			stale = !wired
		case "network":
			stale = !networks[o.id]
		case "dhcp":
			stale = !served[o.id]
		case "router":
			_, runs := n.st.Routers[o.id]
			stale = !runs
		}
		if stale {
			if err := n.nl.LinkDel(l); err != nil {
				return fmt.Errorf("remove %s, of %s %s: %w", l.Attrs().Name, o.kind, o.id, err)
			}
		}
	}
	return n.removeOVSPorts(networks)
}

// SetDHCP serves DHCP for a subnet as d says.
func (n *Network) SetDHCP(_ context.Context, d wire.DHCP) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.st.SetDHCP(d); err != nil {
		return err
	}
	return n.applyDHCP(d.NetworkID)
}

// RemoveDHCP stops serving DHCP for a subnet.
func (n *Network) RemoveDHCP(_ context.Context, subnetID string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	d, ok := n.st.DHCP[subnetID]
	if !ok {
		return nil
	}
	delete(n.st.DHCP, subnetID)
	return n.applyDHCP(d.NetworkID)
}

// SetLeases changes the leases of a network's DHCP servers.
func (n *Network) SetLeases(_ context.Context, l wire.DHCPLeases) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	served, err := n.st.SetLeases(l)
	if err != nil || !served {
		return err
	}
	return n.applyDHCP(l.NetworkID)
}

// SetRouter runs a router as r says.
func (n *Network) SetRouter(_ context.Context, r wire.Router) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.st.SetRouter(r); err != nil {
		return err
	}
	return n.applyRouter(r)
}

// RemoveRouter removes a router.
func (n *Network) RemoveRouter(_ context.Context, routerID string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.st.Routers, routerID)
	return n.stopRouter(routerID)
}
