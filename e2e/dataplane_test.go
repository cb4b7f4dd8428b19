package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trustack/trustack/internal/namespace"
	"github.com/trustack/trustack/internal/nettest"
	"github.com/trustack/trustack/up"
	"github.com/trustack/trustack/wire"
)

// TestNetworksOnRealHosts runs QEMU guests on `trustack up --nodes 2
// --driver qemu --network linux`, two hosts in network namespaces of their
// own, and checks what their networks must do on the wire:
//
//   - two guests of a project on its DHCP network, on different hosts,
//     get their addresses by DHCP and reach each other;
//   - a guest reaches no host's management address, and nothing with an
//     address not its own;
//   - the metadata service answers a guest with its own instance ID, and
//     a guest posing as another with nothing;
//   - a guest of another project, on a VLAN network with the same
//     addresses, reaches neither, and its frames cross the physical
//     network tagged with the network's VLAN;
//   - a guest on the flat external network, which has no DHCP, has the
//     address the API gave it, from its config drive;
//   - from the outside, a guest's floating address answers only while its
//     security group lets ICMP in, and not once the address is removed;
//   - trustack killed and started again, one of its hosts rebooted
//     meanwhile, brings the guests' networks back, with every port of
//     the rebooted host wired and without what nothing owns; its guest,
//     found shut off, starts and reaches its peer again.
func TestNetworksOnRealHosts(t *testing.T) {
	need(t, "openstack", "qemu-system-x86_64", "ovs-vsctl", "dnsmasq", "ip", "ping")
	if os.Geteuid() != 0 {
		t.Fatal("the linux network driver needs root, to make network namespaces")
	}
	c := startUp(t, "--nodes", "2", "--driver", "qemu", "--network", "linux", "--test-image", testImage(t))
	prefix := up.FabricPrefix(filepath.Join(c.dir, "data"))
	t.Cleanup(func() {
		killQEMUs(t, c.dir)
		if err := up.RemoveFabric(filepath.Join(c.dir, "data")); err != nil {
			t.Log(err)
		}
		// The hosts' Open vSwitch databases, which a killed trustack left.
		for _, pid := range processes(c.dir, "ovsdb-server") {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	t.Cleanup(func() {
		if t.Failed() {
			for _, line := range strings.Split(c.log(), "\n") {
				if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
					t.Log(line)
				}
			}
		}
	})
	demo, admin := c.openrc("demo-openrc"), c.openrc("openrc")

	// A lets ICMP in from anywhere, so that only anti-spoofing stops B's
	// forged pings below.
	must(t, demo, "security group", "create", "icmp-in")
	must(t, demo, "security group", "rule", "create", "--protocol", "icmp", "--ingress", "icmp-in")
	a := boot(t, demo, "vmA", "--security-group", "default", "--security-group", "icmp-in")
	aIP := address(t, demo, "vmA", "private")
	b := boot(t, demo, "vmB", "--hint", "different_host="+a, "--user-data", script(t, fmt.Sprintf(`
reach() { i=0; while [ $i -lt 20 ]; do ping -c 1 -W 1 "$1" >/dev/null 2>&1 && return 0; i=$((i + 1)); done; return 1; }
reach %[1]s && echo "peer reachable" || echo "peer unreachable"
ping -c 2 -W 1 192.0.2.1 >/dev/null 2>&1 && echo "management reachable" || echo "management unreachable"
echo "instance-id $(timeout 10 wget -q -O - http://169.254.169.254/latest/meta-data/instance-id)"
timeout 10 wget -q -O - http://169.254.169.254/openstack/latest/meta_data.json | grep -o '"uuid": *"[^"]*"'
ip addr flush dev eth0
ip addr add 10.0.15.250/20 dev eth0
ip route add default via 10.0.0.1 2>/dev/null
ping -c 3 -W 1 %[1]s >/dev/null 2>&1 && echo "forged reachable" || echo "forged unreachable"
ip addr flush dev eth0
ip addr add %[1]s/20 dev eth0
ip route add default via 10.0.0.1 2>/dev/null
echo "forged instance-id $(timeout 5 wget -q -O - http://169.254.169.254/latest/meta-data/instance-id)"
`, aIP)))
	if hostOf(t, admin, a) == hostOf(t, admin, b) {
		t.Fatalf("vmA and vmB are on one host, %s; want two", hostOf(t, admin, a))
	}
	waitConsole(t, demo, "vmA", "trustack-guest address: eth0 "+aIP+"/20")
	waitConsole(t, demo, "vmB", "trustack-guest script: peer reachable")
	waitConsole(t, demo, "vmB", "trustack-guest script: management unreachable")
	waitConsole(t, demo, "vmB", "trustack-guest script: forged unreachable")
	// The metadata service: B's own instance ID, and nothing to B posing
	// as A.
	waitConsole(t, demo, "vmB", "trustack-guest script: instance-id "+b)
	waitConsole(t, demo, "vmB", `trustack-guest script: "uuid":"`+b+`"`)
	waitConsole(t, demo, "vmB", "trustack-guest script: forged instance-id")
	if console := must(t, demo, "console", "log", "show", "vmB"); strings.Contains(console, "forged instance-id "+a) {
		t.Errorf("vmB, posing as vmA, got vmA's instance ID from the metadata service:\n%s", console)
	}

	// C, the admin project's, on a VLAN network of its own (10.0.0.0/20
	// too) and on the flat external network, which has no DHCP.
	must(t, admin, "network", "create", "--provider-network-type", "vlan", "--provider-physical-network", "physnet1",
		"--provider-segment", "100", "vlan100")
	must(t, admin, "subnet", "create", "--network", "vlan100", "--subnet-range", "10.0.0.0/20", "vlan100-subnet")
	tagged := nettest.Capture(t, prefix+"-wire", "physnet1", "vlan 100")
	boot(t, admin, "vmC", "--network", "vlan100", "--network", "public", "--user-data", script(t, fmt.Sprintf(`
ping -c 3 -W 1 %s >/dev/null 2>&1 && echo "other project reachable" || echo "other project unreachable"
`, aIP)))
	cPublic := address(t, admin, "vmC", "public")
	waitConsole(t, admin, "vmC", "trustack-guest address: eth0 "+address(t, admin, "vmC", "vlan100")+"/20")
	waitConsole(t, admin, "vmC", "trustack-guest address: eth1 "+cPublic+"/24")
	waitConsole(t, admin, "vmC", "trustack-guest script: other project unreachable")
	if got := tagged(); !strings.Contains(got, "vlan 100") {
		t.Errorf("no frame tagged with VLAN 100 crossed the physical network physnet1; tcpdump saw:\n%s", got)
	}

	// From the outside, through A's floating address.
	fip := strings.TrimSpace(must(t, demo, "floating ip", "create", "public", "-f", "value", "-c", "floating_ip_address"))
	must(t, demo, "server", "add", "floating ip", "vmA", fip)
	outsidePings := func() bool {
		return exec.Command("ip", "netns", "exec", prefix+"-outside", "ping", "-c", "1", "-W", "1", fip).Run() == nil
	}
	eventually(t, 30*time.Second, func() (bool, string) { return outsidePings(), "" }, "the outside pings vmA's floating address %s", fip)
	must(t, demo, "server", "remove", "security group", "vmA", "icmp-in")
	eventually(t, 30*time.Second, func() (bool, string) { return !outsidePings(), "" },
		"the outside no longer pings %s once vmA is in no group that lets ICMP in", fip)
	rule := strings.TrimSpace(must(t, demo, "security group", "rule", "create", "--protocol", "icmp", "--ingress", "default", "-f", "value", "-c", "id"))
	eventually(t, 30*time.Second, func() (bool, string) { return outsidePings(), "" }, "the outside pings %s once default lets ICMP in", fip)
	must(t, demo, "security group", "rule", "delete", rule)
	eventually(t, 30*time.Second, func() (bool, string) { return !outsidePings(), "" }, "the outside no longer pings %s once the rule is deleted", fip)
	must(t, demo, "security group", "rule", "create", "--protocol", "icmp", "--ingress", "default")
	eventually(t, 30*time.Second, func() (bool, string) { return outsidePings(), "" }, "the outside pings %s again", fip)
	must(t, demo, "server", "remove", "floating ip", "vmA", fip)
	eventually(t, 30*time.Second, func() (bool, string) { return !outsidePings(), "" }, "the outside no longer pings %s once it is removed", fip)

	// trustack killed and, while it is down, vmB's host rebooted: its
	// namespace torn down with all that ran in it (vmB's QEMU, its Open
	// vSwitch, a DHCP server and routers if it is the network node), and
	// a device of trustack's own that nothing owns left on vmA's host.
	// Started again: the stray device is gone, vmA (which outlived it) is
	// reachable again, the rebooted host has its ports wired and nothing
	// else in its firewall, and vmB, found shut off, starts and reaches vmA.
	must(t, demo, "server", "add", "floating ip", "vmA", fip)
	eventually(t, 30*time.Second, func() (bool, string) { return outsidePings(), "" }, "the outside pings %s again once it is back", fip)
	kept, rebooted := prefix+"-"+hostOf(t, admin, a), prefix+"-"+hostOf(t, admin, b)
	run := func(args ...string) string {
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	c.signal(syscall.SIGKILL)
	if err := namespace.Destroy(rebooted); err != nil {
		t.Fatal(err)
	}
	run("ip", "-n", kept, "link", "add", "tsb-stray", "type", "bridge")
	run("ip", "-n", kept, "link", "set", "tsb-stray", "alias", "trustack network stray")
	c.start("trustack ready")
	eventually(t, time.Minute, func() (bool, string) {
		return exec.Command("ip", "-n", kept, "link", "show", "tsb-stray").Run() != nil, ""
	}, "the stray device gone after the restart")
	eventually(t, time.Minute, func() (bool, string) { return outsidePings(), "" }, "the outside pings %s after the restart", fip)
	eventually(t, time.Minute, func() (bool, string) {
		status := sdkOf(t, demo).serverStatus("vmB")
		return status == "SHUTOFF", status
	}, "vmB, whose host rebooted, is SHUTOFF")
	// Every port of the rebooted host has its tap, and the firewall holds
	// those taps and no other.
	bPort := strings.TrimSpace(must(t, demo, "port", "list", "--server", "vmB", "-f", "value", "-c", "ID"))
	eventually(t, time.Minute, func() (bool, string) {
		var taps []string
		for _, f := range strings.Fields(run("ip", "-n", rebooted, "-o", "link", "show")) {
			if name, ok := strings.CutSuffix(f, ":"); ok && strings.HasPrefix(name, "tap") {
				taps = append(taps, name)
			}
		}
		held := regexp.MustCompile(`"(tap[^"]*)" : jump`).FindAllStringSubmatch(run("ip", "netns", "exec", rebooted, "nft", "list", "map", "bridge", "trustack", "taps-in"), -1)
		var firewalled []string
		for _, m := range held {
			firewalled = append(firewalled, m[1])
		}
		slices.Sort(taps)
		slices.Sort(firewalled)
		ok := slices.Contains(taps, wire.TapName(bPort)) && slices.Equal(taps, firewalled)
		return ok, fmt.Sprintf("taps %v, held by the firewall %v", taps, firewalled)
	}, "the rebooted host has vmB's tap, and the firewall holds its taps alone")
	must(t, demo, "server", "start", "vmB")
	eventually(t, 3*time.Minute, func() (bool, string) {
		out := sdkOf(t, demo).consoleLog("vmB")
		return strings.Count(out, "trustack-guest script: peer reachable") == 2, out
	}, "vmB, started again, reaches vmA")
}

// testImage returns the test guest's directory, which make test builds.
func testImage(t testing.TB) string {
	t.Helper()
	images, err := filepath.Abs("../build/test-image")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(images, "tiny.qcow2")); err != nil {
		t.Fatalf("the test guest is missing (scripts/build-test-image makes it; make test runs it): %v", err)
	}
	return images
}

// boot creates a server of the tiny image, waits until it is ACTIVE and
// returns its ID.
func boot(t testing.TB, env map[string]string, name string, flags ...string) string {
	t.Helper()
	args := append([]string{"server", "create", "--image", "tiny", "--flavor", "m1.tiny", "--wait", "-f", "value", "-c", "id"}, flags...)
	return strings.TrimSpace(must(t, env, append(args, name)...))
}

// address returns a server's address on a network, by the network's name.
func address(t testing.TB, env map[string]string, server, network string) string {
	t.Helper()
	out := must(t, env, "server", "show", server, "-f", "value", "-c", "addresses")
	// {'private': ['10.0.2.236'], 'public': ['172.24.4.5']}
	i := strings.Index(out, "'"+network+"': ['")
	if i < 0 {
		t.Fatalf("server %s has no address on %s: %s", server, network, out)
	}
	rest := out[i+len(network)+6:]
	return rest[:strings.IndexByte(rest, '\'')]
}

// script writes a user-data shell script, returning its file.
func script(t testing.TB, body string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "user-data")
	if err := os.WriteFile(f, []byte("#!/bin/sh\n"+strings.TrimLeft(body, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// waitConsole waits until a server's console has a line.
func waitConsole(t testing.TB, env map[string]string, server, line string) {
	t.Helper()
	eventually(t, 2*time.Minute, func() (bool, string) {
		out := sdkOf(t, env).consoleLog(server)
		return strings.Contains(out, line), out
	}, "%s's console says %q", server, line)
}
