package linux

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/wire"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Flat and VLAN networks go through Open vSwitch, which tags VLANs where
// the kernel cannot: a bridge per physical network ("tsp-" and the
// network's name) holds the host's interface on it as a trunk, and each
// network's Linux bridge joins it through a veth pair ("tsv-" on the Linux
// bridge, "tso-" on Open vSwitch) that is an access port of the network's
// VLAN, or of VLAN 0, which Open vSwitch sends untagged, for a flat
// network. Security groups thus stay on the Linux bridge, where nftables
// sees each port, as in Neutron's hybrid firewall.
const (
	physicalPrefix = "tsp-"
	vethPrefix     = "tsv-"
	ovsPortPrefix  = "tso-"
	ovsNetworkKey  = "trustack-network" // a port's external_ids key naming its network
)

func physicalBridgeName(physnet string) string { return physicalPrefix + shortID(physnet, 11) }
func vethName(networkID string) string         { return vethPrefix + shortID(networkID, 11) }
func ovsPortName(networkID string) string      { return ovsPortPrefix + shortID(networkID, 11) }

// physical joins a flat or VLAN network's bridge br to its physical
// network's Open vSwitch bridge.
func (n *Network) physical(networkID string, s wire.Segment, br netlink.Link) error {
	if n.cfg.OVSDB == "" {
		return trustack.Errorf(trustack.EUNAVAILABLE, "%s network %s needs Open vSwitch, and the host has no [network] ovsdb", s.Type, networkID)
	}
	want := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: vethName(networkID)}, PeerName: ovsPortName(networkID)}
	veth, err := n.ensure(want, networkOwner(networkID), func() error { return n.nl.LinkAdd(want) })
	if err != nil {
		return err
	}
	if err := n.attach(veth, s.MTU, br); err != nil {
		return err
	}
	// Open vSwitch's userspace datapath reads frames as they are, so what
	// goes to it must carry its checksums whole, not left to a device.
	if err := n.txChecksumsOff(want.Name); err != nil {
		return err
	}
	peer, err := n.linkByName(want.PeerName)
	if err != nil || peer == nil {
		return fmt.Errorf("the peer of %s: %v", want.Name, err)
	}
	if err := n.attach(peer, s.MTU, nil); err != nil {
		return err
	}
	bridge, tag := physicalBridgeName(s.PhysicalNetwork), 0
	if s.Type == trustack.NetworkVLAN {
		tag = s.SegmentationID
	}
	return n.vsctl("--may-exist", "add-br", bridge, "--", "set", "bridge", bridge, "datapath_type="+n.datapath,
		"--", "--may-exist", "add-port", bridge, n.cfg.PhysicalNetworks[s.PhysicalNetwork],
		"--", "--may-exist", "add-port", bridge, want.PeerName,
		"--", "set", "port", want.PeerName, "vlan_mode=access", "tag="+strconv.Itoa(tag),
		"external_ids:"+ovsNetworkKey+"="+networkID)
}

// removeOVSPorts removes the Open vSwitch ports of networks not in keep,
// whether their veth is there or went with a reboot.
func (n *Network) removeOVSPorts(keep map[string]bool) error {
	if n.cfg.OVSDB == "" {
		return nil
	}
	out, err := n.vsctlOutput("--data=bare", "--no-headings", "--columns=name,external_ids", "find", "port",
		"external_ids:"+ovsNetworkKey+"!=\"\"")
	if err != nil {
		return err
	}
	var args []string
	for _, record := range strings.Split(strings.TrimSpace(out), "\n\n") {
		fields := strings.Fields(record)
		if len(fields) < 2 {
			continue
		}
		network := ""
		for _, kv := range fields[1:] {
			if v, ok := strings.CutPrefix(kv, ovsNetworkKey+"="); ok {
				network = v
			}
		}
		if network != "" && !keep[network] {
			args = append(args, "--", "--if-exists", "del-port", fields[0])
		}
	}
	if len(args) == 0 {
		return nil
	}
	return n.vsctl(args[1:]...)
}

func (n *Network) vsctl(args ...string) error {
	_, err := n.vsctlOutput(args...)
	return err
}

func (n *Network) vsctlOutput(args ...string) (string, error) {
	cmd := exec.Command("ovs-vsctl", append([]string{"--db=" + n.cfg.OVSDB, "--timeout=10"}, args...)...)
	out, err := cmd.Output()
	if err != nil {
		msg := err.Error()
		if ee, ok := err.(*exec.ExitError); ok {
			msg = strings.TrimSpace(string(ee.Stderr))
		}
		return "", fmt.Errorf("ovs-vsctl %s: %s", strings.Join(args, " "), msg)
	}
	return string(out), nil
}

// ovsDatapath is the datapath Open vSwitch bridges use: the kernel's
// where it has the openvswitch module, else the userspace one.
func ovsDatapath(configured string) string {
	if configured != "" {
		return configured
	}
	if _, err := os.Stat("/sys/module/openvswitch"); err == nil {
		return "system"
	}
	return "netdev"
}

// OVS is an Open vSwitch of trustack's own, for a host that runs in a
// network namespace of a machine shared with others (`trustack up
// --driver qemu`, tests); a real host runs its distribution's.
type OVS struct {
	// DB is the database to give Config.OVSDB.
	DB  string
	dir string
}

// StartOVS starts an Open vSwitch database and switch with their state
// in dir, the switch in the network namespace ns ("" for the process's),
// or finds them running from before (a `trustack up` killed and started
// again).
func StartOVS(ctx context.Context, dir, ns string) (*OVS, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	o := &OVS{DB: "unix:" + filepath.Join(dir, "db.sock"), dir: dir}
	db := filepath.Join(dir, "conf.db")
	schema := "/usr/share/openvswitch/vswitch.ovsschema"
	run := func(args ...string) error {
		cmd := exec.CommandContext(ctx, args[0], args[1:]...)
		cmd.Env = append(os.Environ(), "OVS_RUNDIR="+dir, "OVS_LOGDIR="+dir, "OVS_DBDIR="+dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v: %s", args[0], err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	if _, err := os.Stat(db); os.IsNotExist(err) {
		if err := run("ovsdb-tool", "create", db, schema); err != nil {
			return nil, err
		}
	}
	if o.pid("ovsdb-server") == 0 {
		if err := run("ovsdb-server", db, "--remote=p"+o.DB, "--pidfile="+filepath.Join(dir, "ovsdb-server.pid"),
			"--detach", "--log-file="+filepath.Join(dir, "ovsdb-server.log")); err != nil {
			return nil, err
		}
	}
	if o.pid("ovs-vswitchd") == 0 {
		vswitchd := []string{"ovs-vswitchd", o.DB, "--pidfile=" + filepath.Join(dir, "ovs-vswitchd.pid"), "--detach",
			"--log-file=" + filepath.Join(dir, "ovs-vswitchd.log")}
		if ns != "" {
			vswitchd = append([]string{"ip", "netns", "exec", ns}, vswitchd...)
		}
		if err := run(vswitchd...); err != nil {
			o.Stop()
			return nil, err
		}
	}
	if err := run("ovs-vsctl", "--db="+o.DB, "--timeout=10", "init"); err != nil {
		o.Stop()
		return nil, err
	}
	return o, nil
}

// Stop stops the switch and its database; what they hold stays in dir.
func (o *OVS) Stop() {
	for _, daemon := range []string{"ovs-vswitchd", "ovsdb-server"} {
		if pid := o.pid(daemon); pid != 0 {
			syscall.Kill(pid, syscall.SIGTERM)
			for i := 0; i < 50 && o.pid(daemon) == pid; i++ {
				time.Sleep(20 * time.Millisecond)
			}
		}
		os.Remove(filepath.Join(o.dir, daemon+".pid"))
	}
}

// pid returns the process ID of a daemon of o's that runs, 0 if none
// does.
func (o *OVS) pid(daemon string) int { return daemonPID(filepath.Join(o.dir, daemon+".pid"), daemon) }

// daemonPID returns the process ID in a daemon's pid file if that process
// runs the program named, 0 if not: gone, and its number perhaps
// another's.
func daemonPID(pidFile, program string) int {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil || filepath.Base(exe) != program {
		return 0
	}
	return pid
}

// txChecksumsOff has the kernel compute the checksums of what a device
// sends rather than leave them to it (ethtool -K DEV tx off).
func (n *Network) txChecksumsOff(dev string) error {
	return n.ns.Do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		value := struct{ cmd, data uint32 }{cmd: unix.ETHTOOL_STXCSUM}
		var ifr struct {
			name [unix.IFNAMSIZ]byte
			data uintptr
			_    [16]byte
		}
		copy(ifr.name[:], dev)
		ifr.data = uintptr(unsafe.Pointer(&value))
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
		runtime.KeepAlive(&value)
		if errno != 0 {
			return fmt.Errorf("turn off checksum offload on %s: %w", dev, errno)
		}
		return nil
	})
}
