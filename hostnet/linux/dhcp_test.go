package linux

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trustack/trustack/wire"
)

// dhcpSubnet is a subnet's DHCP server on network net-1, with the leases
// given.
func dhcpSubnet(leases ...wire.DHCPHost) wire.DHCP {
	server := port("dddddddd-0000-4000-8000-0000000000d0", "net-1", local, "fa:16:3e:dd:00:01")
	server.Addresses = []wire.Address{{SubnetID: "subnet-1", Address: "10.3.0.2", CIDR: "10.3.0.0/24"}}
	return wire.DHCP{SubnetID: "subnet-1", NetworkID: "net-1", Segment: local, CIDR: "10.3.0.0/24", Gateway: "10.3.0.1",
		DNS: []string{"10.3.0.53"}, Port: server, Leases: leases}
}

// lease asks for an address with busybox's DHCP client, as the test guest
// does, and returns what it was given ("" if nothing): address, netmask,
// router, name server and MTU.
func (g *guest) lease(t *testing.T) string {
	t.Helper()
	script := filepath.Join(t.TempDir(), "udhcpc.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n[ \"$1\" = bound ] && echo \"$ip $subnet $router $dns $mtu\"\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command("ip", "netns", "exec", g.ns, "busybox", "udhcpc", "-i", "eth0", "-O", "mtu", "-f", "-q", "-n", "-t", "3", "-T", "1", "-s", script).Output()
	return strings.TrimSpace(string(out))
}

// TestDHCPServesEachPortItsOwnAddress: a port gets its fixed address,
// with the subnet's gateway, name server and MTU, through a port held to
// a group with no rule; a lease changed is served at once; a MAC without
// a lease gets nothing; removing the subnet's DHCP removes its namespace.
func TestDHCPServesEachPortItsOwnAddress(t *testing.T) {
	ns := newFabric(t).host()
	n := openNetwork(t, Config{Namespace: ns, StateDir: t.TempDir()})
	setGroups(t, n, wire.SecurityGroup{ID: "closed", Revision: 1, Stateful: true})
	a := securedPort("aaaaaaaa-0000-4000-8000-0000000000a3", "fa:16:3e:00:03:01", "10.3.0.10", "closed")
	a.Addresses[0].CIDR, a.Addresses[0].SubnetID = "10.3.0.0/24", "subnet-1"
	b := port("bbbbbbbb-0000-4000-8000-0000000000b3", "net-1", local, "fa:16:3e:00:03:02")
	plugAll(t, n, a, b)
	leaseA := wire.DHCPHost{PortID: a.ID, SubnetID: "subnet-1", MAC: a.MAC, Address: "10.3.0.10", Hostname: "host-10-3-0-10"}
	if err := n.SetDHCP(ctx, dhcpSubnet(leaseA)); err != nil {
		t.Fatal(err)
	}
	ga, gb := newGuest(t, ns, a, ""), newGuest(t, ns, b, "")
	if got, want := ga.lease(t), "10.3.0.10 255.255.255.0 10.3.0.1 10.3.0.53 1500"; got != want {
		t.Errorf("port a leased %q, want %q", got, want)
	}
	if got := gb.lease(t); got != "" {
		t.Errorf("port b, which has no lease, leased %q", got)
	}
	a.Addresses[0].Address = "10.3.0.11"
	plugAll(t, n, a)
	leaseA.Address = "10.3.0.11"
	if err := n.SetLeases(ctx, wire.DHCPLeases{NetworkID: "net-1", PortIDs: []string{a.ID}, Leases: []wire.DHCPHost{leaseA}}); err != nil {
		t.Fatal(err)
	}
	if got := ga.lease(t); !strings.HasPrefix(got, "10.3.0.11 ") {
		t.Errorf("after its lease changed, port a leased %q, want 10.3.0.11", got)
	}
	if err := n.RemoveDHCP(ctx, "subnet-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/run/netns/" + n.dhcpNamespace("net-1")); !os.IsNotExist(err) {
		t.Errorf("the DHCP namespace is still there after its last subnet was removed (%v)", err)
	}
	if got := ga.lease(t); got != "" {
		t.Errorf("port a leased %q after DHCP was removed", got)
	}
}
