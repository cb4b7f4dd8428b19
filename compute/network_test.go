package compute_test

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/compute"
	"github.com/trustack/trustack/network"
	"github.com/trustack/trustack/scheduler"
	"github.com/trustack/trustack/wire"
)

// networkOf makes a network of the user's project with one subnet, as an
// administrator: with DHCP, or with physnet a flat provider network on it
// whose addresses the config drive gives (the network node need not be
// wired to it).
func (c *cloud) networkOf(t testing.TB, name, cidr, physnet string) (*trustack.Network, *trustack.Subnet) {
	t.Helper()
	caller := network.Caller{ProjectID: c.user.ProjectID, Admin: true}
	spec := network.NetworkSpec{Name: &name}
	if physnet != "" {
		flat := trustack.NetworkFlat
		spec.Type, spec.PhysicalNetwork = &flat, &physnet
	}
	n, err := c.network.CreateNetwork(ctx, caller, spec)
	if err != nil {
		t.Fatal(err)
	}
	dhcp := physnet == ""
	sn, err := c.network.CreateSubnet(ctx, caller, network.SubnetSpec{NetworkID: n.ID, IPVersion: 4, CIDR: netip.MustParsePrefix(cidr), EnableDHCP: &dhcp})
	if err != nil {
		t.Fatal(err)
	}
	return n, sn
}

// portsOf returns a server's ports as the store has them, in its order.
func (c *cloud) portsOf(t testing.TB, srv *trustack.Server) []*trustack.Port {
	t.Helper()
	ports, err := c.ctl.svc.Interfaces(ctx, c.user, srv.ID)
	if err != nil {
		t.Fatal(err)
	}
	return ports
}

// plugged returns the port as the host's network has it, if it does.
func (h *host) plugged(t testing.TB, portID string) (wire.Port, bool) {
	t.Helper()
	ports, err := h.net.Ports(ctx)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(ports, func(p wire.Port) bool { return p.ID == portID })
	if i < 0 {
		return wire.Port{}, false
	}
	return ports[i], true
}

// TestServerPortsFollowTheServer checks a server's port through its life:
// made with it, bound to its host and ACTIVE once it runs, wired on that
// host by the spawn, leased by the network node's DHCP server; and gone
// from all of them with the server.
func TestServerPortsFollowTheServer(t *testing.T) {
	c := newCloud(t, cloudOptions{Hosts: 2, Network: true})
	n, sn := c.networkOf(t, "private", "10.1.0.0/24", "")
	srv := c.create(t, compute.CreateRequest{Name: "vm", NICs: []network.NIC{{NetworkID: n.ID}}})[0]
	srv = c.waitStatus(t, srv.ID, "ACTIVE")
	ports := c.portsOf(t, srv)
	if len(ports) != 1 {
		t.Fatalf("got %d ports, want 1", len(ports))
	}
	p := ports[0]
	switch {
	case p.DeviceID != srv.ID || p.DeviceOwner != "compute:nova":
		t.Errorf("port device %q owner %q, want %q compute:nova", p.DeviceID, p.DeviceOwner, srv.ID)
	case p.HostID != srv.Host || p.Status != trustack.StatusActive:
		t.Errorf("port bound to %q, %s; want %q, ACTIVE", p.HostID, p.Status, srv.Host)
	case len(p.FixedIPs) != 1 || p.FixedIPs[0].SubnetID != sn.ID || !sn.CIDR.Contains(p.FixedIPs[0].Address):
		t.Errorf("port addresses %v, want one on %s", p.FixedIPs, sn.CIDR)
	}
	wp, ok := c.host(t, srv.Host).plugged(t, p.ID)
	if !ok || wp.MAC != p.MACAddress || len(wp.Addresses) != 1 || wp.Addresses[0].Address != p.FixedIPs[0].Address.String() || wp.ServerID != srv.ID {
		t.Errorf("host %s has the port as %+v (plugged %v), want its MAC and address", srv.Host, wp, ok)
	}
	addr := p.FixedIPs[0].Address.String()
	leased := func() bool {
		d, ok := c.host(t, "host-0").net.DHCP(sn.ID)
		return ok && slices.ContainsFunc(d.Leases, func(l wire.DHCPHost) bool { return l.MAC == p.MACAddress && l.Address == addr })
	}
	c.waitFor(t, "the network node to lease the server's address", leased)

	if err := c.ctl.svc.Delete(ctx, c.as(c.user), srv.ID); err != nil {
		t.Fatal(err)
	}
	c.waitStatus(t, srv.ID, "DELETED")
	if _, err := c.store.Port(ctx, p.ID); trustack.ErrorCode(err) != trustack.ENOTFOUND {
		t.Errorf("the port after the server was deleted: got %v, want not found", err)
	}
	if _, ok := c.host(t, srv.Host).plugged(t, p.ID); ok {
		t.Errorf("host %s still has the deleted server's port", srv.Host)
	}
	c.waitFor(t, "the network node to drop the lease", func() bool { return !leased() })
}

// TestServerNICChoices checks what a server gets when it names no
// network: the project's only network; with two, a conflict naming the
// ambiguity; with "none", no port.
func TestServerNICChoices(t *testing.T) {
	c := newCloud(t, cloudOptions{Hosts: 1, Network: true})
	n, _ := c.networkOf(t, "only", "10.2.0.0/24", "")
	srv := c.waitStatus(t, c.create(t, compute.CreateRequest{Name: "implicit"})[0].ID, "ACTIVE")
	if ports := c.portsOf(t, srv); len(ports) != 1 || ports[0].NetworkID != n.ID {
		t.Errorf("with one network: got ports %v, want one on %s", ports, n.ID)
	}
	none := c.waitStatus(t, c.create(t, compute.CreateRequest{Name: "none", NICMode: network.NoNICs})[0].ID, "ACTIVE")
	if ports := c.portsOf(t, none); len(ports) != 0 {
		t.Errorf("with none: got %d ports, want 0", len(ports))
	}
	c.networkOf(t, "second", "10.3.0.0/24", "")
	_, err := c.ctl.svc.CreateServers(ctx, c.as(c.user), compute.CreateRequest{Name: "ambiguous", ImageID: c.imageID, FlavorID: "1"})
	if trustack.ErrorCode(err) != trustack.ECONFLICT || !strings.Contains(trustack.ErrorMessage(err), "Multiple possible networks") {
		t.Errorf("with two networks: got %v, want a conflict saying several networks fit", err)
	}
}

// TestUserPortOutlivesTheServer checks that a port the user made and gave
// a server is let go, not deleted, with it; and that it cannot go to two
// servers at once.
func TestUserPortOutlivesTheServer(t *testing.T) {
	c := newCloud(t, cloudOptions{Hosts: 1, Network: true})
	n, _ := c.networkOf(t, "private", "10.4.0.0/24", "")
	p, err := c.network.CreatePort(ctx, network.Caller{ProjectID: c.user.ProjectID}, network.PortSpec{NetworkID: n.ID})
	if err != nil {
		t.Fatal(err)
	}
	srv := c.waitStatus(t, c.create(t, compute.CreateRequest{Name: "vm", NICs: []network.NIC{{PortID: p.ID}}})[0].ID, "ACTIVE")
	_, err = c.ctl.svc.CreateServers(ctx, c.as(c.user), compute.CreateRequest{Name: "thief", ImageID: c.imageID, FlavorID: "1", NICs: []network.NIC{{PortID: p.ID}}})
	if trustack.ErrorCode(err) != trustack.ECONFLICT {
		t.Errorf("a second server on the same port: got %v, want a conflict", err)
	}
	if err := c.ctl.svc.Delete(ctx, c.as(c.user), srv.ID); err != nil {
		t.Fatal(err)
	}
	c.waitStatus(t, srv.ID, "DELETED")
	kept, err := c.store.Port(ctx, p.ID)
	if err != nil {
		t.Fatalf("the user's port after the server was deleted: %v", err)
	}
	if kept.DeviceID != "" || kept.DeviceOwner != "" || kept.HostID != "" || kept.Status != trustack.StatusDown {
		t.Errorf("the user's port kept device %q owner %q host %q status %s, want none and DOWN", kept.DeviceID, kept.DeviceOwner, kept.HostID, kept.Status)
	}
}

// TestAttachAndDetachInterface checks os-interface: an attached port is
// plugged on the server's host before the call returns, and a detached one
// unplugged and deleted.
func TestAttachAndDetachInterface(t *testing.T) {
	c := newCloud(t, cloudOptions{Hosts: 1, Network: true})
	n, _ := c.networkOf(t, "private", "10.5.0.0/24", "")
	srv := c.waitStatus(t, c.create(t, compute.CreateRequest{Name: "vm", NICMode: network.NoNICs})[0].ID, "ACTIVE")
	p, err := c.ctl.svc.AttachInterface(ctx, c.as(c.user), srv.ID, network.NIC{NetworkID: n.ID})
	if err != nil {
		t.Fatal(err)
	}
	if p.HostID != srv.Host || p.Status != trustack.StatusActive {
		t.Errorf("attached port bound to %q, %s; want %q, ACTIVE", p.HostID, p.Status, srv.Host)
	}
	if _, ok := c.host(t, srv.Host).plugged(t, p.ID); !ok {
		t.Errorf("the attached port is not plugged on host %s", srv.Host)
	}
	if err := c.ctl.svc.DetachInterface(ctx, c.as(c.user), srv.ID, "no-such-port"); trustack.ErrorCode(err) != trustack.ENOTFOUND {
		t.Errorf("detach a port the server lacks: got %v, want not found", err)
	}
	if err := c.ctl.svc.DetachInterface(ctx, c.as(c.user), srv.ID, p.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.host(t, srv.Host).plugged(t, p.ID); ok {
		t.Errorf("the detached port is still plugged on host %s", srv.Host)
	}
	if ports := c.portsOf(t, srv); len(ports) != 0 {
		t.Errorf("after detaching: got %d ports, want 0", len(ports))
	}
	if _, err := c.store.Port(ctx, p.ID); trustack.ErrorCode(err) != trustack.ENOTFOUND {
		t.Errorf("the detached port: got %v, want deleted", err)
	}
}

// TestPhysicalNetworksConstrainPlacement checks that a server on a flat
// network goes only to a host wired to its physical network, and that no
// host wired to it is a refusal that says so.
func TestPhysicalNetworksConstrainPlacement(t *testing.T) {
	c := newCloud(t, cloudOptions{Hosts: 3, Network: true, HostPhysnets: func(i int) []string {
		if i == 2 {
			return []string{"physnet1", "physnet2"}
		}
		return []string{"physnet1"}
	}})
	n2, _ := c.networkOf(t, "on-physnet2", "10.6.0.0/24", "physnet2")
	for i := range 4 {
		srv := c.create(t, compute.CreateRequest{Name: "vm", NICs: []network.NIC{{NetworkID: n2.ID}}})[0]
		if srv = c.waitStatus(t, srv.ID, "ACTIVE"); srv.Host != "host-2" {
			t.Errorf("server %d on physnet2 went to %s, want host-2, the only one wired to it", i, srv.Host)
		}
	}
	n3, _ := c.networkOf(t, "on-physnet3", "10.7.0.0/24", "physnet3")
	srv := c.create(t, compute.CreateRequest{Name: "nowhere", NICs: []network.NIC{{NetworkID: n3.ID}}})[0]
	srv = c.waitStatus(t, srv.ID, "ERROR")
	if srv.Fault == nil || !strings.Contains(srv.Fault.Message, "3 not wired to a physical network the server's ports are on") {
		t.Errorf("fault %+v, want it to say no host is wired to the network", srv.Fault)
	}
}

// TestSecurityGroupRulesReachTheHosts checks that a rule added to a group
// reaches the hosts of the ports in it, and that a new member's address
// reaches the hosts whose groups name the group as remote.
func TestSecurityGroupRulesReachTheHosts(t *testing.T) {
	c := newCloud(t, cloudOptions{Hosts: 2, Network: true})
	n, _ := c.networkOf(t, "private", "10.8.0.0/24", "")
	srv := c.waitStatus(t, c.create(t, compute.CreateRequest{Name: "vm", NICs: []network.NIC{{NetworkID: n.ID}}})[0].ID, "ACTIVE")
	p := c.portsOf(t, srv)[0]
	groupID := p.SecurityGroups[0]
	host := c.host(t, srv.Host)
	c.waitFor(t, "the host to enforce the port's group", func() bool { _, ok := host.net.Group(groupID); return ok })
	port := 22
	if _, err := c.network.CreateSecurityGroupRule(ctx, network.Caller{ProjectID: c.user.ProjectID}, network.RuleSpec{
		SecurityGroupID: groupID, Direction: trustack.Ingress, Protocol: "tcp", PortMin: &port, PortMax: &port, RemoteIPPrefix: "192.0.2.0/24"}); err != nil {
		t.Fatal(err)
	}
	c.waitFor(t, "the host to get the new rule", func() bool {
		g, _ := host.net.Group(groupID)
		return slices.ContainsFunc(g.Rules, func(r wire.Rule) bool { return r.RemotePrefix == "192.0.2.0/24" && r.Protocol == "tcp" })
	})
	// The default group lets in its own members: a second server's
	// address must reach the first's host.
	second := c.waitStatus(t, c.create(t, compute.CreateRequest{Name: "vm2", NICs: []network.NIC{{NetworkID: n.ID}}})[0].ID, "ACTIVE")
	addr := c.portsOf(t, second)[0].FixedIPs[0].Address.String()
	c.waitFor(t, "the first host to know the second server's address as a member", func() bool {
		g, _ := host.net.Group(groupID)
		return slices.Contains(g.Members, addr)
	})
}

// TestSpawnedHostsLearnGroupMembers checks that the host of a new server,
// whose spawn brings its groups' rules only, learns the members that its
// groups' rules name: of its own group, and of a remote group that did not
// change.
//
// Placement takes a while here, so that the networking service tells the
// hosts of the groups of the new servers' ports before those are bound
// to a host: the host must learn them once its server's ports are bound.
func TestSpawnedHostsLearnGroupMembers(t *testing.T) {
	c := newCloud(t, cloudOptions{Hosts: 2, Network: true})
	c.ctl.stop()
	c.ctl = c.startControllerWith(t, wrappers{placer: func(p compute.Placer, _ context.CancelFunc) compute.Placer { return slowPlacer{p} }})
	n, _ := c.networkOf(t, "private", "10.10.0.0/24", "")
	caller := network.Caller{ProjectID: c.user.ProjectID}
	first := c.waitStatus(t, c.create(t, compute.CreateRequest{Name: "first", NICs: []network.NIC{{NetworkID: n.ID}}})[0].ID, "ACTIVE")
	firstAddr := c.portsOf(t, first)[0].FixedIPs[0].Address.String()
	defaultGroup := c.portsOf(t, first)[0].SecurityGroups[0]
	name := "web"
	web, err := c.network.CreateSecurityGroup(ctx, caller, network.SecurityGroupSpec{Name: &name})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.network.CreateSecurityGroupRule(ctx, caller, network.RuleSpec{
		SecurityGroupID: web.ID, Direction: trustack.Ingress, RemoteGroupID: defaultGroup}); err != nil {
		t.Fatal(err)
	}
	second := c.waitStatus(t, c.create(t, compute.CreateRequest{Name: "second", NICs: []network.NIC{{NetworkID: n.ID}}, SecurityGroups: []string{"web"}})[0].ID, "ACTIVE")
	secondAddr := c.portsOf(t, second)[0].FixedIPs[0].Address.String()
	host := c.host(t, second.Host)
	c.waitFor(t, "the second server's host to know its own group's members", func() bool {
		g, _ := host.net.Group(web.ID)
		return slices.Contains(g.Members, secondAddr) && len(g.Rules) > 0
	})
	c.waitFor(t, "the second server's host to know the members of the group its rules name", func() bool {
		g, _ := host.net.Group(defaultGroup)
		return slices.Contains(g.Members, firstAddr)
	})
}

// TestRegistrationRestoresTheHostNetwork checks that an agent that comes
// back with its host's network state lost (a reboot) gets every port of
// its servers and every group back, and loses what no port owns.
func TestRegistrationRestoresTheHostNetwork(t *testing.T) {
	c := newCloud(t, cloudOptions{Hosts: 1, Network: true})
	n, _ := c.networkOf(t, "private", "10.9.0.0/24", "")
	srv := c.waitStatus(t, c.create(t, compute.CreateRequest{Name: "vm", NICs: []network.NIC{{NetworkID: n.ID}}})[0].ID, "ACTIVE")
	p := c.portsOf(t, srv)[0]
	h := c.host(t, srv.Host)
	h.stop(t)
	stale := wire.Port{ID: "stale", MAC: "fa:16:3e:aa:bb:cc", Segment: wire.Segment{Type: trustack.NetworkLocal}}
	if err := h.net.Sync(ctx, wire.HostNetwork{Ports: []wire.Port{stale}}); err != nil {
		t.Fatal(err)
	}
	h.restart(t, c)
	c.waitFor(t, "the host to get its server's port back", func() bool { _, ok := h.plugged(t, p.ID); return ok })
	if _, ok := h.plugged(t, "stale"); ok {
		t.Errorf("a port no server owns survived the registration")
	}
	if _, ok := h.net.Group(p.SecurityGroups[0]); !ok {
		t.Errorf("the port's security group is not back")
	}
}

// slowPlacer places servers a while after it is asked to.
type slowPlacer struct{ compute.Placer }

func (p slowPlacer) Place(ctx context.Context, req scheduler.Request) (*trustack.Host, error) {
	time.Sleep(300 * time.Millisecond)
	return p.Placer.Place(ctx, req)
}
