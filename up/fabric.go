package up

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"path/filepath"

	"github.com/trustack/trustack/config"
	"github.com/trustack/trustack/hostnet/linux"
	"github.com/trustack/trustack/internal/namespace"
	"github.com/vishvananda/netlink"
)

// With the linux network driver, `trustack up` stands a cloud of several
// hosts up on one machine, as network namespaces:
//
//   - PREFIX-wire holds the machine's "cables": a bridge for the hosts'
//     management network (192.0.2.0/24, which VXLAN networks go over) and
//     one for each physical network, which carries VLAN tags;
//   - PREFIX-compute-N is host N, with eth0 on the management bridge
//     (192.0.2.N) and, for each physical network, the interface its
//     [agent] physical_networks names on that network's bridge, and an
//     Open vSwitch of its own;
//   - PREFIX-outside stands for the internet: 172.24.4.1, the gateway of
//     the external network public, on that network's bridge.
//
// PREFIX is "ts" and the start of a hash of the data directory, so that
// clouds of different data directories do not meet, and a restarted one
// finds its namespaces, and its guests in them, as it left them. The
// namespaces stay when up ends: guests outlive it.
const (
	managementBridge = "mgmt"
	overlayInterface = "eth0"
	outsideAddress   = "172.24.4.1/24"
)

// FabricPrefix is the prefix of the names of the namespaces `trustack up`
// makes for a data directory.
func FabricPrefix(dataDir string) string {
	sum := sha256.Sum256([]byte(dataDir))
	return "ts" + hex.EncodeToString(sum[:4])
}

// RemoveFabric ends what runs in the network namespaces `trustack up` made
// for a data directory (guests, DHCP servers, Open vSwitch) and removes
// them: they outlive trustack, as its guests do.
func RemoveFabric(dataDir string) error {
	var errs []error
	for _, name := range namespace.List(FabricPrefix(dataDir) + "-") {
		errs = append(errs, namespace.Destroy(name))
	}
	return errors.Join(errs...)
}

// fabric is what `trustack up` made of the machine's network for its
// hosts.
type fabric struct {
	prefix string
	ovs    []*linux.OVS
}

// hostNamespace names host name's namespace.
func (f *fabric) hostNamespace(name string) string { return f.prefix + "-" + name }

func (f *fabric) stop() {
	for _, o := range f.ovs {
		o.Stop()
	}
}

// newFabric makes (or finds) the wire, outside and host namespaces, and
// starts each host's Open vSwitch; it sets each host's configuration
// (hostCfgs, by host name) to its namespace and interfaces.
func newFabric(ctx context.Context, cfg *config.Config, hosts []string, hostCfgs map[string]*config.Config) (*fabric, error) {
	physnets, err := cfg.HostPhysicalNetworks()
	if err != nil {
		return nil, err
	}
	f := &fabric{prefix: FabricPrefix(cfg.DataDir)}
	wire, err := namespace.Create(f.prefix + "-wire")
	if err != nil {
		return nil, err
	}
	defer wire.Close()
	w, err := netlink.NewHandleAt(wire.Handle)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	bridges := []string{managementBridge}
	for name := range physnets {
		bridges = append(bridges, name)
	}
	for _, name := range bridges {
		// No multicast snooping: VXLAN floods to groups no querier tracks.
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}, MulticastSnooping: new(bool)}
		if err := ensureLink(w, br); err != nil {
			return nil, err
		}
	}
	// cable joins a namespace's interface to a bridge of the wire, with
	// an address if addr is not "".
	cable := func(ns namespace.NS, iface, bridge, wireEnd, addr string) error {
		h, err := netlink.NewHandleAt(ns.Handle)
		if err != nil {
			return err
		}
		defer h.Close()
		if _, err := h.LinkByName(iface); err != nil {
			v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: wireEnd}, PeerName: iface, PeerNamespace: netlink.NsFd(int(ns.Handle))}
			if err := w.LinkAdd(v); err != nil {
				return fmt.Errorf("cable %s of %s: %w", iface, ns.Name, err)
			}
		}
		end, err := w.LinkByName(wireEnd)
		if err != nil {
			return err
		}
		br, err := w.LinkByName(bridge)
		if err != nil {
			return err
		}
		if err := w.LinkSetMaster(end, br); err != nil {
			return err
		}
		if err := w.LinkSetUp(end); err != nil {
			return err
		}
		l, err := h.LinkByName(iface)
		if err != nil {
			return err
		}
		if addr != "" {
			a, err := netlink.ParseAddr(addr)
			if err != nil {
				return err
			}
			if err := h.AddrReplace(l, a); err != nil {
				return err
			}
		}
		for _, up := range []string{"lo", iface} {
			if l, err := h.LinkByName(up); err != nil || h.LinkSetUp(l) != nil {
				return fmt.Errorf("bring %s up in %s", up, ns.Name)
			}
		}
		return nil
	}
	outside, err := namespace.Create(f.prefix + "-outside")
	if err != nil {
		return nil, err
	}
	defer outside.Close()
	if _, ok := physnets[publicNetwork]; ok {
		if err := cable(outside, "eth0", publicNetwork, "outside", outsideAddress); err != nil {
			return nil, err
		}
	}
	for i, name := range hosts {
		ns, err := namespace.Create(f.hostNamespace(name))
		if err != nil {
			f.stop()
			return nil, err
		}
		err = cable(ns, overlayInterface, managementBridge, fmt.Sprintf("h%d-%s", i+1, overlayInterface), fmt.Sprintf("192.0.2.%d/24", i+1))
		for physnet, iface := range physnets {
			if err == nil {
				err = cable(ns, iface, physnet, fmt.Sprintf("h%d-%s", i+1, iface), "")
			}
		}
		ns.Close()
		if err != nil {
			f.stop()
			return nil, fmt.Errorf("host %s: %w", name, err)
		}
		o, err := linux.StartOVS(ctx, filepath.Join(hostDir(cfg, name), "ovs"), f.hostNamespace(name))
		if err != nil {
			f.stop()
			return nil, fmt.Errorf("host %s: %w", name, err)
		}
		f.ovs = append(f.ovs, o)
		hc := hostCfgs[name]
		hc.Agent.Namespace, hc.Agent.OverlayInterface, hc.Network.OVSDB = f.hostNamespace(name), overlayInterface, o.DB
	}
	return f, nil
}

// ensureLink makes a device unless there is one of its name, and brings
// it up.
func ensureLink(h *netlink.Handle, l netlink.Link) error {
	if _, err := h.LinkByName(l.Attrs().Name); err != nil {
		if err := h.LinkAdd(l); err != nil {
			return fmt.Errorf("make %s: %w", l.Attrs().Name, err)
		}
	}
	have, err := h.LinkByName(l.Attrs().Name)
	if err == nil && have.Attrs().Flags&net.FlagUp == 0 {
		err = h.LinkSetUp(have)
	}
	return err
}
