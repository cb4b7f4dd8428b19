package storetest

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/trustack/trustack"
)

func routerID(r *trustack.Router) string         { return r.ID }
func floatingIPID(f *trustack.FloatingIP) string { return f.ID }
func groupID(g *trustack.SecurityGroup) string   { return g.ID }

func rule(id, group, project string, port int, at time.Time) trustack.SecurityGroupRule {
	r := trustack.SecurityGroupRule{ID: id, SecurityGroupID: group, ProjectID: project, Direction: trustack.Ingress, EtherType: trustack.IPv4,
		Protocol: "tcp", RemoteIPPrefix: "0.0.0.0/0", Standard: trustack.Standard{CreatedAt: at, UpdatedAt: at}}
	if port > 0 {
		r.PortMin, r.PortMax = &port, &port
	}
	return r
}

func testSecurityGroups(t *testing.T, s Store) {
	// Rules come back oldest first, then by ID.
	rules := []trustack.SecurityGroupRule{rule("r2", "", "p1", 22, start.Add(time.Second)), rule("r1", "", "p1", 0, start), rule("r0", "", "p1", 80, start.Add(time.Second))}
	g := &trustack.SecurityGroup{ID: "g", Name: trustack.DefaultSecurityGroup, ProjectID: "p1", Stateful: true, Rules: rules,
		Standard: trustack.Standard{Description: "default", Tags: []string{"a"}, CreatedAt: start, UpdatedAt: start}}
	must(t, s.CreateSecurityGroup(ctx, g, true, 2))
	equal(t, ids(ptrs(g.Rules), ruleID), []string{"r1", "r0", "r2"})
	for _, r := range g.Rules {
		if r.SecurityGroupID != "g" || r.Revision != 1 {
			t.Errorf("rule %s of a new group: got group %q, revision %d; want g, 1", r.ID, r.SecurityGroupID, r.Revision)
		}
	}
	equal(t, g.Revision, int64(1))
	got, err := s.SecurityGroup(ctx, "g")
	must(t, err)
	equal(t, got, g)
	id, err := s.DefaultSecurityGroupID(ctx, "p1")
	must(t, err)
	equal(t, id, "g")
	_, err = s.DefaultSecurityGroupID(ctx, "p2")
	reason(t, err, trustack.ENOTFOUND, "SecurityGroupNotFound")

	f := newNets(t, s, 8)
	f.group("g2", "p1")
	must(t, s.CreateSecurityGroup(ctx, &trustack.SecurityGroup{ID: "g3", Name: trustack.DefaultSecurityGroup, ProjectID: "p2", Standard: std()}, true, -1))
	for _, tc := range []struct {
		name      string
		g         *trustack.SecurityGroup
		isDefault bool
		limit     int
		wantErr   string
		reason    string
	}{
		{"a second default", &trustack.SecurityGroup{ID: "x", ProjectID: "p1", Standard: std()}, true, -1, trustack.ECONFLICT, ""},
		{"an ID in use", &trustack.SecurityGroup{ID: "g", ProjectID: "p3", Standard: std()}, false, -1, trustack.ECONFLICT, ""},
		{"over quota", &trustack.SecurityGroup{ID: "x", ProjectID: "p1", Standard: std()}, false, 2, trustack.EOVERQUOTA, "OverQuota"},
		{"the same rule twice", &trustack.SecurityGroup{ID: "x", ProjectID: "p1", Standard: std(),
			Rules: []trustack.SecurityGroupRule{rule("x1", "", "p1", 22, start), rule("x2", "", "p1", 22, start)}}, false, -1, trustack.ECONFLICT, "SecurityGroupRuleExists"},
	} {
		t.Run("create "+tc.name, func(t *testing.T) {
			refused(t, s, tc.wantErr, tc.reason, func() error { return s.CreateSecurityGroup(ctx, tc.g, tc.isDefault, tc.limit) })
		})
	}
	err = s.CreateSecurityGroup(ctx, &trustack.SecurityGroup{ID: "x", ProjectID: "p1", Standard: std()}, false, 2)
	message(t, err, "Quota exceeded for resources: ['security_group'].")

	for _, tc := range []struct {
		name    string
		project string
		ids     []string
		want    []string
	}{
		{"of a project", "p1", nil, []string{"g", "g2"}},
		{"all", "", nil, []string{"g", "g2", "g3"}},
		{"by ID", "", []string{"g3", "g2"}, []string{"g2", "g3"}},
		{"none", "", []string{}, []string{}},
	} {
		t.Run("list "+tc.name, func(t *testing.T) {
			list, err := s.SecurityGroups(ctx, tc.project, tc.ids)
			must(t, err)
			equal(t, ids(list, groupID), tc.want)
			if len(tc.want) > 0 && tc.want[0] == "g" {
				equal(t, list[0], g)
			}
		})
	}

	// An update leaves the rules to their own methods.
	later := start.Add(time.Hour)
	up, err := s.UpdateSecurityGroup(ctx, "g", func(cur *trustack.SecurityGroup) error {
		cur.Description, cur.UpdatedAt, cur.Rules = "changed", later, nil
		return nil
	})
	must(t, err)
	want := *g
	want.Description, want.UpdatedAt, want.Revision = "changed", later, 2
	equal(t, up, &want)
	got, err = s.SecurityGroup(ctx, "g")
	must(t, err)
	equal(t, got, &want)
	for _, tc := range []struct {
		name    string
		fn      func(*trustack.SecurityGroup) error
		wantErr string
	}{
		{"another ID", func(g *trustack.SecurityGroup) error { g.ID = "g9"; return nil }, trustack.EINVALID},
		{"fn's error", func(g *trustack.SecurityGroup) error { g.Name = "x"; return trustack.Errorf(trustack.EFORBIDDEN, "no") }, trustack.EFORBIDDEN},
	} {
		t.Run("update "+tc.name, func(t *testing.T) {
			refused(t, s, tc.wantErr, "", func() error { _, err := s.UpdateSecurityGroup(ctx, "g", tc.fn); return err })
		})
	}
	refused(t, s, trustack.ENOTFOUND, "SecurityGroupNotFound", func() error {
		_, err := s.UpdateSecurityGroup(ctx, "nope", func(*trustack.SecurityGroup) error { return nil })
		return err
	})

	// A group with a port in it stays; one that others' rules name takes
	// those rules along.
	f.network("n", "p1")
	f.subnet("sn", "n", "10.0.0.0/24")
	p := newPort("port", "n", "p1", ip("sn", ""))
	p.SecurityGroups = []string{"g2"}
	must(t, s.CreatePort(ctx, p, f.alloc, -1))
	remote := rule("remote", "g", "p1", 443, start)
	remote.RemoteIPPrefix, remote.RemoteGroupID = "", "g2"
	must(t, s.CreateSecurityGroupRule(ctx, &remote, -1))
	refused(t, s, trustack.ECONFLICT, "SecurityGroupInUse", func() error { return s.DeleteSecurityGroup(ctx, "g2") })
	_, err = s.UpdatePort(ctx, "port", f.alloc, func(p *trustack.Port) error { p.SecurityGroups = nil; return nil })
	must(t, err)
	before, err := s.SecurityGroup(ctx, "g")
	must(t, err)
	must(t, s.DeleteSecurityGroup(ctx, "g2"))
	_, err = s.SecurityGroup(ctx, "g2")
	reason(t, err, trustack.ENOTFOUND, "SecurityGroupNotFound")
	_, err = s.SecurityGroupRule(ctx, "remote")
	reason(t, err, trustack.ENOTFOUND, "SecurityGroupRuleNotFound")
	after, err := s.SecurityGroup(ctx, "g")
	must(t, err)
	if after.Revision != before.Revision+1 || len(after.Rules) != len(before.Rules)-1 {
		t.Errorf("group whose rule named a deleted group: got revision %d with %d rules, want %d with %d",
			after.Revision, len(after.Rules), before.Revision+1, len(before.Rules)-1)
	}
	must(t, s.DeleteSecurityGroup(ctx, "g"))
	_, err = s.SecurityGroupRule(ctx, "r1")
	reason(t, err, trustack.ENOTFOUND, "SecurityGroupRuleNotFound")
	refused(t, s, trustack.ENOTFOUND, "SecurityGroupNotFound", func() error { return s.DeleteSecurityGroup(ctx, "g") })
	// The project may have a default group again.
	must(t, s.CreateSecurityGroup(ctx, &trustack.SecurityGroup{ID: "g4", ProjectID: "p1", Standard: std()}, true, -1))
}

func ruleID(r *trustack.SecurityGroupRule) string { return r.ID }

func ptrs[T any](list []T) []*T {
	out := make([]*T, len(list))
	for i := range list {
		out[i] = &list[i]
	}
	return out
}

func testSecurityGroupRules(t *testing.T, s Store) {
	f := newNets(t, s, 9)
	f.group("g", "p1")
	r := rule("r1", "g", "p1", 22, start)
	r.Description = "ssh"
	must(t, s.CreateSecurityGroupRule(ctx, &r, 10))
	equal(t, r.Revision, int64(1))
	got, err := s.SecurityGroupRule(ctx, "r1")
	must(t, err)
	equal(t, got, &r)
	g, err := s.SecurityGroup(ctx, "g")
	must(t, err)
	if g.Revision != 2 || g.UpdatedAt.Equal(start) || len(g.Rules) != 1 {
		t.Errorf("group after a rule was added: got revision %d, updated at %v, %d rules; want 2, changed, 1", g.Revision, g.UpdatedAt, len(g.Rules))
	}
	anyPort := rule("r2", "g", "p1", 0, start)
	must(t, s.CreateSecurityGroupRule(ctx, &anyPort, 10))
	got, err = s.SecurityGroupRule(ctx, "r2")
	must(t, err)
	if got.PortMin != nil || got.PortMax != nil {
		t.Errorf("ports of a rule for any: got %v, %v; want nil", got.PortMin, got.PortMax)
	}

	for _, tc := range []struct {
		name    string
		r       trustack.SecurityGroupRule
		limit   int
		wantErr string
		reason  string
	}{
		{"the same rule", rule("x", "g", "p1", 22, start), -1, trustack.ECONFLICT, "SecurityGroupRuleExists"},
		{"the same rule for any port", rule("x", "g", "p1", 0, start), -1, trustack.ECONFLICT, "SecurityGroupRuleExists"},
		{"an ID in use", rule("r1", "g", "p1", 23, start), -1, trustack.ECONFLICT, ""},
		{"a missing group", rule("x", "nope", "p1", 22, start), -1, trustack.ENOTFOUND, "SecurityGroupNotFound"},
		{"over quota", rule("x", "g", "p1", 24, start), 2, trustack.EOVERQUOTA, "OverQuota"},
	} {
		t.Run("create "+tc.name, func(t *testing.T) {
			refused(t, s, tc.wantErr, tc.reason, func() error { return s.CreateSecurityGroupRule(ctx, &tc.r, tc.limit) })
		})
	}
	dup := rule("x", "g", "p1", 22, start)
	message(t, s.CreateSecurityGroupRule(ctx, &dup, -1), "Security group rule already exists. Rule id is r1.")

	must(t, s.DeleteSecurityGroupRule(ctx, "r1"))
	_, err = s.SecurityGroupRule(ctx, "r1")
	reason(t, err, trustack.ENOTFOUND, "SecurityGroupRuleNotFound")
	g, err = s.SecurityGroup(ctx, "g")
	must(t, err)
	if g.Revision != 4 || len(g.Rules) != 1 || g.Rules[0].ID != "r2" {
		t.Errorf("group after a rule was deleted: got revision %d, rules %v; want 4, r2", g.Revision, g.Rules)
	}
	refused(t, s, trustack.ENOTFOUND, "SecurityGroupRuleNotFound", func() error { return s.DeleteSecurityGroupRule(ctx, "r1") })
	// The rule may be made again.
	r.ID = "r3"
	must(t, s.CreateSecurityGroupRule(ctx, &r, -1))
}

// external makes an external network with a subnet.
func (f *nets) external(id, cidr string) {
	f.t.Helper()
	n := &trustack.Network{ID: id, ProjectID: "admin", External: true, Type: trustack.NetworkLocal, Standard: std()}
	must(f.t, f.s.CreateNetwork(ctx, n, -1))
	f.subnet(id+"-s", id, cidr)
}

func newRouter(id, project, gatewayNetwork string) *trustack.Router {
	r := &trustack.Router{ID: id, Name: "router-" + id, ProjectID: project, AdminStateUp: true, Status: trustack.StatusActive, Standard: std()}
	if gatewayNetwork != "" {
		r.Gateway = &trustack.RouterGateway{NetworkID: gatewayNetwork, EnableSNAT: true}
	}
	return r
}

func gatewayPort(id, network string) *trustack.Port {
	return newPort(id, network, "", ip(network+"-s", ""))
}

func testRouters(t *testing.T, s Store) {
	f := newNets(t, s, 10)
	f.external("ext", "203.0.113.0/24")
	f.external("ext2", "198.51.100.0/24")
	r1 := newRouter("r1", "p1", "")
	r1.Routes = []trustack.HostRoute{{Destination: netip.MustParsePrefix("192.168.0.0/16"), NextHop: addr("10.0.0.9")}}
	r1.Tags = []string{"t"}
	must(t, s.CreateRouter(ctx, r1, nil, f.alloc, 2))
	equal(t, r1.Revision, int64(1))
	got, err := s.Router(ctx, "r1")
	must(t, err)
	equal(t, got, r1)
	r2 := newRouter("r2", "p1", "ext")
	gw := gatewayPort("gw2", "ext")
	must(t, s.CreateRouter(ctx, r2, gw, f.alloc, 2))
	if len(r2.Gateway.FixedIPs) != 1 || r2.Gateway.FixedIPs[0] != gw.FixedIPs[0] || gw.DeviceID != "r2" || gw.DeviceOwner != trustack.OwnerRouterGateway {
		t.Errorf("gateway: got %+v with port %+v, want the port's fixed IPs, owned by r2's gateway", r2.Gateway, gw)
	}
	got, err = s.Router(ctx, "r2")
	must(t, err)
	equal(t, got, r2)
	stored, err := s.Port(ctx, "gw2")
	must(t, err)
	equal(t, stored, gw)

	for _, tc := range []struct {
		name    string
		r       *trustack.Router
		gateway *trustack.Port
		limit   int
		wantErr string
		reason  string
	}{
		{"a gateway without its port", newRouter("x", "p2", "ext"), nil, -1, trustack.EINVALID, "BadRequest"},
		{"a port without a gateway", newRouter("x", "p2", ""), gatewayPort("x-gw", "ext"), -1, trustack.EINVALID, "BadRequest"},
		{"a gateway port on another network", newRouter("x", "p2", "ext"), gatewayPort("x-gw", "ext2"), -1, trustack.EINVALID, "BadRequest"},
		{"a gateway port on a missing subnet", newRouter("x", "p2", "ext"), newPort("x-gw", "ext", "", ip("nope", "")), -1, trustack.ENOTFOUND, "SubnetNotFound"},
		{"an ID in use", newRouter("r1", "p2", ""), nil, -1, trustack.ECONFLICT, ""},
		{"over quota", newRouter("x", "p1", ""), nil, 2, trustack.EOVERQUOTA, "OverQuota"},
	} {
		t.Run("create "+tc.name, func(t *testing.T) {
			refused(t, s, tc.wantErr, tc.reason, func() error { return s.CreateRouter(ctx, tc.r, tc.gateway, f.alloc, tc.limit) })
		})
	}
	must(t, s.CreateRouter(ctx, newRouter("r3", "p2", ""), nil, f.alloc, -1))
	for _, tc := range []struct {
		project string
		ids     []string
		want    []string
	}{
		{"p1", nil, []string{"r1", "r2"}},
		{"", nil, []string{"r1", "r2", "r3"}},
		{"", []string{"r3", "r2"}, []string{"r2", "r3"}},
	} {
		list, err := s.Routers(ctx, tc.project, tc.ids)
		must(t, err)
		equal(t, ids(list, routerID), tc.want)
	}

	// SNAT alone is no change of the gateway: the port stays.
	later := start.Add(time.Hour)
	up, err := s.UpdateRouter(ctx, "r2", gatewayPort("unused", "ext"), f.alloc, func(r *trustack.Router) error {
		r.Gateway.EnableSNAT, r.UpdatedAt = false, later
		return nil
	})
	must(t, err)
	want := *r2
	want.Gateway = &trustack.RouterGateway{NetworkID: "ext", EnableSNAT: false, FixedIPs: r2.Gateway.FixedIPs}
	want.UpdatedAt, want.Revision = later, 2
	equal(t, up, &want)
	got, err = s.Router(ctx, "r2")
	must(t, err)
	equal(t, got, &want)
	_, err = s.Port(ctx, "unused")
	code(t, err, trustack.ENOTFOUND)

	// Another network: the port is replaced.
	gw3 := gatewayPort("gw3", "ext2")
	up, err = s.UpdateRouter(ctx, "r2", gw3, f.alloc, func(r *trustack.Router) error {
		r.Gateway = &trustack.RouterGateway{NetworkID: "ext2", EnableSNAT: true}
		return nil
	})
	must(t, err)
	if up.Revision != 3 || up.Gateway.NetworkID != "ext2" || len(up.Gateway.FixedIPs) != 1 || up.Gateway.FixedIPs[0] != gw3.FixedIPs[0] {
		t.Errorf("router with a new gateway: got %+v, revision %d; want ext2 with gw3's %v, revision 3", up.Gateway, up.Revision, gw3.FixedIPs)
	}
	_, err = s.Port(ctx, "gw2")
	code(t, err, trustack.ENOTFOUND)
	got, err = s.Router(ctx, "r2")
	must(t, err)
	equal(t, got, up)

	for _, tc := range []struct {
		name    string
		gateway *trustack.Port
		fn      func(*trustack.Router) error
		wantErr string
		reason  string
	}{
		{"a new gateway without its port", nil, func(r *trustack.Router) error { r.Gateway = &trustack.RouterGateway{NetworkID: "ext"}; return nil }, trustack.EINVALID, "BadRequest"},
		{"a new gateway on its subnet's network address", newPort("x", "ext", "", ip("ext-s", "203.0.113.0")), func(r *trustack.Router) error {
			r.Gateway = &trustack.RouterGateway{NetworkID: "ext"}
			return nil
		}, trustack.EINVALID, "InvalidIpForSubnet"},
		{"another ID", nil, func(r *trustack.Router) error { r.ID = "r9"; return nil }, trustack.EINVALID, ""},
		{"fn's error", nil, func(r *trustack.Router) error { r.Name = "x"; return trustack.Errorf(trustack.EFORBIDDEN, "no") }, trustack.EFORBIDDEN, ""},
	} {
		t.Run("update "+tc.name, func(t *testing.T) {
			refused(t, s, tc.wantErr, tc.reason, func() error {
				_, err := s.UpdateRouter(ctx, "r2", tc.gateway, f.alloc, tc.fn)
				return err
			})
		})
	}
	refused(t, s, trustack.ENOTFOUND, "RouterNotFound", func() error {
		_, err := s.UpdateRouter(ctx, "nope", nil, f.alloc, func(*trustack.Router) error { return nil })
		return err
	})
	_, err = s.Router(ctx, "nope")
	reason(t, err, trustack.ENOTFOUND, "RouterNotFound")

	// No gateway: no port.
	up, err = s.UpdateRouter(ctx, "r2", nil, f.alloc, func(r *trustack.Router) error { r.Gateway = nil; return nil })
	must(t, err)
	if up.Gateway != nil {
		t.Errorf("gateway after its removal: got %+v, want none", up.Gateway)
	}
	_, err = s.Port(ctx, "gw3")
	code(t, err, trustack.ENOTFOUND)

	// Deleting a router takes its gateway port along.
	gw4 := gatewayPort("gw4", "ext")
	must(t, s.CreateRouter(ctx, newRouter("r4", "p2", "ext"), gw4, f.alloc, -1))
	must(t, s.DeleteRouter(ctx, "r4"))
	_, err = s.Port(ctx, "gw4")
	code(t, err, trustack.ENOTFOUND)
	refused(t, s, trustack.ENOTFOUND, "RouterNotFound", func() error { return s.DeleteRouter(ctx, "r4") })
}

func testRouterInterfaces(t *testing.T, s Store) {
	f := newNets(t, s, 11)
	f.external("ext", "203.0.113.0/24")
	f.network("n", "p1")
	f.subnet("a", "n", "10.0.0.0/24")
	f.subnet("b", "n", "10.0.1.0/24")
	f.network("m", "p1")
	f.subnet("c", "m", "10.0.0.128/25")
	f.network("o", "p1")
	f.subnet("d", "o", "10.0.0.0/24")
	f.subnet("e", "o", "10.2.0.0/24")
	f.group("g", "p1")
	must(t, s.CreateRouter(ctx, newRouter("r", "p1", "ext"), gatewayPort("gw", "ext"), f.alloc, -1))

	onA := newPort("if-a", "n", "p1", ip("a", "10.0.0.1"))
	must(t, s.AddRouterInterface(ctx, "r", onA, f.alloc))
	if onA.DeviceID != "r" || onA.DeviceOwner != trustack.OwnerRouterInterface {
		t.Errorf("new interface: got device %q of %q, want r's router interface", onA.DeviceID, onA.DeviceOwner)
	}
	got, err := s.Port(ctx, "if-a")
	must(t, err)
	equal(t, got, onA)
	r, err := s.Router(ctx, "r")
	must(t, err)
	if r.Revision != 2 {
		t.Errorf("revision of a router given an interface: got %d, want 2", r.Revision)
	}

	// A port no device owns is taken over, out of its groups.
	spare := newPort("spare", "n", "p1", ip("b", ""))
	spare.SecurityGroups = []string{"g"}
	must(t, s.CreatePort(ctx, spare, f.alloc, -1))
	taken := &trustack.Port{ID: "spare"}
	must(t, s.AddRouterInterface(ctx, "r", taken, f.alloc))
	if taken.DeviceID != "r" || taken.DeviceOwner != trustack.OwnerRouterInterface || taken.SecurityGroups != nil || taken.Revision != 2 ||
		len(taken.FixedIPs) != 1 || taken.FixedIPs[0] != spare.FixedIPs[0] {
		t.Errorf("port taken over: got %+v, want r's interface with %v, in no group, revision 2", taken, spare.FixedIPs)
	}
	got, err = s.Port(ctx, "spare")
	must(t, err)
	equal(t, got, taken)

	owned := f.port("owned", "o", ip("e", ""))
	_, err = s.UpdatePort(ctx, "owned", f.alloc, func(p *trustack.Port) error {
		p.DeviceID, p.DeviceOwner = "vm", trustack.OwnerCompute+"nova"
		return nil
	})
	must(t, err)
	bare := f.port("bare", "o")
	for _, tc := range []struct {
		name    string
		router  string
		p       *trustack.Port
		wantErr string
		reason  string
	}{
		{"a subnet overlapping one it is on", "r", newPort("x", "m", "p1", ip("c", "")), trustack.EINVALID, "BadRequest"},
		{"the same block on another network", "r", newPort("x", "o", "p1", ip("d", "")), trustack.EINVALID, "BadRequest"},
		{"a subnet it is on", "r", newPort("x", "n", "p1", ip("a", "")), trustack.EINVALID, "BadRequest"},
		{"a port a device owns", "r", &trustack.Port{ID: owned.ID}, trustack.ECONFLICT, "PortInUse"},
		{"a port without an address", "r", &trustack.Port{ID: bare.ID}, trustack.EINVALID, "BadRequest"},
		{"a new port without an address", "r", newPort("x", "o", "p1"), trustack.EINVALID, "BadRequest"},
		{"a missing router", "nope", newPort("x", "o", "p1", ip("e", "")), trustack.ENOTFOUND, "RouterNotFound"},
	} {
		t.Run("add "+tc.name, func(t *testing.T) {
			refused(t, s, tc.wantErr, tc.reason, func() error { return s.AddRouterInterface(ctx, tc.router, tc.p, f.alloc) })
		})
	}
	onE := newPort("if-e", "o", "p1", ip("e", ""))
	must(t, s.AddRouterInterface(ctx, "r", onE, f.alloc))
	refused(t, s, trustack.ECONFLICT, "RouterInUse", func() error { return s.DeleteRouter(ctx, "r") })

	// A floating IP reaching a port of a through r holds a's interface and
	// the gateway.
	vm := f.port("vm", "n", ip("a", ""))
	fip := &trustack.FloatingIP{ID: "fip", ProjectID: "p1", NetworkID: "ext", PortID: "vm", FixedAddress: vm.FixedIPs[0].Address, RouterID: "r",
		Status: trustack.StatusActive, Standard: std()}
	must(t, s.CreateFloatingIP(ctx, fip, gatewayPort("fip-port", "ext"), f.alloc, -1))
	refused(t, s, trustack.ECONFLICT, "RouterInterfaceInUseByFloatingIP", func() error { return s.RemoveRouterInterface(ctx, "r", "if-a") })
	refused(t, s, trustack.ECONFLICT, "RouterExternalGatewayInUseByFloatingIp", func() error {
		_, err := s.UpdateRouter(ctx, "r", nil, f.alloc, func(r *trustack.Router) error { r.Gateway = nil; return nil })
		return err
	})
	refused(t, s, trustack.ENOTFOUND, "RouterInterfaceNotFound", func() error { return s.RemoveRouterInterface(ctx, "r", "vm") })
	refused(t, s, trustack.ENOTFOUND, "RouterInterfaceNotFound", func() error { return s.RemoveRouterInterface(ctx, "r", "nope") })
	refused(t, s, trustack.ENOTFOUND, "RouterNotFound", func() error { return s.RemoveRouterInterface(ctx, "nope", "if-a") })

	must(t, s.RemoveRouterInterface(ctx, "r", "spare"))
	_, err = s.Port(ctx, "spare")
	code(t, err, trustack.ENOTFOUND)
	r, err = s.Router(ctx, "r")
	must(t, err)
	if r.Revision != 5 {
		t.Errorf("revision of a router after 3 interfaces added and 1 removed: got %d, want 5", r.Revision)
	}
	_, err = s.UpdateFloatingIP(ctx, "fip", func(f *trustack.FloatingIP) error { f.PortID = ""; return nil })
	must(t, err)
	must(t, s.RemoveRouterInterface(ctx, "r", "if-a"))
	must(t, s.RemoveRouterInterface(ctx, "r", "if-e"))
	must(t, s.DeleteRouter(ctx, "r"))
	_, err = s.Port(ctx, "gw")
	code(t, err, trustack.ENOTFOUND)
}

func testFloatingIPs(t *testing.T, s Store) {
	f := newNets(t, s, 12)
	f.external("ext", "203.0.113.0/29") // 5 addresses: .2 to .6
	f.network("n", "p1")
	f.subnet("a", "n", "10.0.0.0/24")
	vm1 := f.port("vm1", "n", ip("a", ""), ip("a", ""))
	vm2 := f.port("vm2", "n", ip("a", ""))
	newFIP := func(id, port string, fixed netip.Addr) *trustack.FloatingIP {
		return &trustack.FloatingIP{ID: id, ProjectID: "p1", NetworkID: "ext", PortID: port, FixedAddress: fixed, Status: trustack.StatusDown,
			Standard: trustack.Standard{Description: "fip " + id, Tags: []string{"x"}, CreatedAt: start, UpdatedAt: start}}
	}

	f1 := newFIP("f1", "", netip.Addr{})
	p1 := gatewayPort("f1-port", "ext")
	must(t, s.CreateFloatingIP(ctx, f1, p1, f.alloc, 3))
	if f1.Address != p1.FixedIPs[0].Address || !f1.Address.IsValid() || f1.Revision != 1 {
		t.Errorf("new floating IP: got address %v, revision %d; want its port's, %v, and 1", f1.Address, f1.Revision, p1.FixedIPs)
	}
	got, err := s.FloatingIP(ctx, "f1")
	must(t, err)
	equal(t, got, f1)
	stored, err := s.Port(ctx, "f1-port")
	must(t, err)
	if stored.DeviceID != "f1" || stored.DeviceOwner != trustack.OwnerFloatingIP {
		t.Errorf("floating IP's port: got device %q of %q, want f1's", stored.DeviceID, stored.DeviceOwner)
	}
	f2 := newFIP("f2", "vm1", vm1.FixedIPs[0].Address)
	f2.RouterID = "router"
	must(t, s.CreateFloatingIP(ctx, f2, gatewayPort("f2-port", "ext"), f.alloc, 3))
	got, err = s.FloatingIP(ctx, "f2")
	must(t, err)
	equal(t, got, f2)

	for _, tc := range []struct {
		name    string
		f       *trustack.FloatingIP
		port    *trustack.Port
		limit   int
		wantErr string
		reason  string
	}{
		{"a fixed address with a floating IP", newFIP("x", "vm1", vm1.FixedIPs[0].Address), gatewayPort("x-port", "ext"), -1, trustack.ECONFLICT, "FloatingIPPortAlreadyAssociated"},
		{"a fixed address not the port's", newFIP("x", "vm1", vm2.FixedIPs[0].Address), gatewayPort("x-port", "ext"), -1, trustack.EINVALID, "BadRequest"},
		{"no fixed address", newFIP("x", "vm1", netip.Addr{}), gatewayPort("x-port", "ext"), -1, trustack.EINVALID, "BadRequest"},
		{"a missing port", newFIP("x", "nope", vm1.FixedIPs[0].Address), gatewayPort("x-port", "ext"), -1, trustack.ENOTFOUND, "PortNotFound"},
		{"a port on another network", newFIP("x", "", netip.Addr{}), newPort("x-port", "n", "", ip("a", "")), -1, trustack.EINVALID, "BadRequest"},
		{"a port without fixed IPs", newFIP("x", "", netip.Addr{}), newPort("x-port", "ext", ""), -1, trustack.EINVALID, "BadRequest"},
		{"an address in use", newFIP("x", "", netip.Addr{}), newPort("x-port", "ext", "", ip("ext-s", f1.Address.String())), -1, trustack.ECONFLICT, "IpAddressInUse"},
		{"an ID in use", newFIP("f1", "", netip.Addr{}), gatewayPort("x-port", "ext"), -1, trustack.ECONFLICT, ""},
		{"over quota", newFIP("x", "", netip.Addr{}), gatewayPort("x-port", "ext"), 2, trustack.EOVERQUOTA, "OverQuota"},
	} {
		t.Run("create "+tc.name, func(t *testing.T) {
			refused(t, s, tc.wantErr, tc.reason, func() error { return s.CreateFloatingIP(ctx, tc.f, tc.port, f.alloc, tc.limit) })
		})
	}
	// The port's other address may have one.
	f3 := newFIP("f3", "vm1", vm1.FixedIPs[1].Address)
	must(t, s.CreateFloatingIP(ctx, f3, gatewayPort("f3-port", "ext"), f.alloc, -1))
	list, err := s.FloatingIPs(ctx, "", []string{"vm1"})
	must(t, err)
	equal(t, ids(list, floatingIPID), []string{"f2", "f3"})
	list, err = s.FloatingIPs(ctx, "p1", nil)
	must(t, err)
	equal(t, ids(list, floatingIPID), []string{"f1", "f2", "f3"})
	list, err = s.FloatingIPs(ctx, "p2", nil)
	must(t, err)
	equal(t, ids(list, floatingIPID), []string{})

	// The external subnet runs out.
	for _, id := range []string{"f4", "f5"} {
		must(t, s.CreateFloatingIP(ctx, newFIP(id, "", netip.Addr{}), gatewayPort(id+"-port", "ext"), f.alloc, -1))
	}
	refused(t, s, trustack.ECONFLICT, "IpAddressGenerationFailure", func() error {
		return s.CreateFloatingIP(ctx, newFIP("f6", "", netip.Addr{}), gatewayPort("f6-port", "ext"), f.alloc, -1)
	})

	later := start.Add(time.Hour)
	up, err := s.UpdateFloatingIP(ctx, "f1", func(fip *trustack.FloatingIP) error {
		fip.PortID, fip.FixedAddress, fip.RouterID, fip.Status, fip.UpdatedAt = "vm2", vm2.FixedIPs[0].Address, "router", trustack.StatusActive, later
		return nil
	})
	must(t, err)
	want := *f1
	want.PortID, want.FixedAddress, want.RouterID, want.Status, want.UpdatedAt, want.Revision = "vm2", vm2.FixedIPs[0].Address, "router", trustack.StatusActive, later, 2
	equal(t, up, &want)
	got, err = s.FloatingIP(ctx, "f1")
	must(t, err)
	equal(t, got, &want)
	for _, tc := range []struct {
		name    string
		fn      func(*trustack.FloatingIP) error
		wantErr string
		reason  string
	}{
		{"a fixed address with a floating IP", func(fip *trustack.FloatingIP) error {
			fip.PortID, fip.FixedAddress = "vm1", vm1.FixedIPs[0].Address
			return nil
		}, trustack.ECONFLICT, "FloatingIPPortAlreadyAssociated"},
		{"another address", func(fip *trustack.FloatingIP) error { fip.Address = addr("203.0.113.6"); return nil }, trustack.EINVALID, "BadRequest"},
		{"another network", func(fip *trustack.FloatingIP) error { fip.NetworkID = "n"; return nil }, trustack.EINVALID, "BadRequest"},
		{"fn's error", func(fip *trustack.FloatingIP) error {
			fip.PortID = ""
			return trustack.Errorf(trustack.EFORBIDDEN, "no")
		}, trustack.EFORBIDDEN, ""},
	} {
		t.Run("update "+tc.name, func(t *testing.T) {
			refused(t, s, tc.wantErr, tc.reason, func() error { _, err := s.UpdateFloatingIP(ctx, "f1", tc.fn); return err })
		})
	}
	refused(t, s, trustack.ENOTFOUND, "FloatingIPNotFound", func() error {
		_, err := s.UpdateFloatingIP(ctx, "nope", func(*trustack.FloatingIP) error { return nil })
		return err
	})
	// Without a port, no fixed address and no router.
	up, err = s.UpdateFloatingIP(ctx, "f1", func(fip *trustack.FloatingIP) error { fip.PortID = ""; return nil })
	must(t, err)
	if up.FixedAddress.IsValid() || up.RouterID != "" || up.Revision != 3 {
		t.Errorf("disassociated floating IP: got fixed address %v, router %q, revision %d; want none, none, 3", up.FixedAddress, up.RouterID, up.Revision)
	}

	// A port that loses the fixed address loses its floating IP; one
	// deleted loses all.
	_, err = s.UpdatePort(ctx, "vm1", f.alloc, func(p *trustack.Port) error { p.FixedIPs = p.FixedIPs[:1]; return nil })
	must(t, err)
	for _, c := range []struct {
		id       string
		port     string
		revision int64
	}{{"f2", "vm1", 1}, {"f3", "", 2}} {
		got, err := s.FloatingIP(ctx, c.id)
		must(t, err)
		if got.PortID != c.port || got.Revision != c.revision || (c.port == "" && (got.FixedAddress.IsValid() || got.Status != trustack.StatusDown)) {
			t.Errorf("floating IP %s after its port lost an address: got %+v, want port %q, revision %d", c.id, got, c.port, c.revision)
		}
	}
	must(t, s.DeletePort(ctx, "vm1"))
	got, err = s.FloatingIP(ctx, "f2")
	must(t, err)
	if got.PortID != "" || got.FixedAddress.IsValid() || got.RouterID != "" || got.Revision != 2 {
		t.Errorf("floating IP of a deleted port: got %+v, want disassociated at revision 2", got)
	}

	// A floating IP's port goes with it, not before.
	refused(t, s, trustack.ECONFLICT, "", func() error { return s.DeletePort(ctx, "f1-port") })
	must(t, s.DeleteFloatingIP(ctx, "f1"))
	_, err = s.FloatingIP(ctx, "f1")
	reason(t, err, trustack.ENOTFOUND, "FloatingIPNotFound")
	_, err = s.Port(ctx, "f1-port")
	code(t, err, trustack.ENOTFOUND)
	refused(t, s, trustack.ENOTFOUND, "FloatingIPNotFound", func() error { return s.DeleteFloatingIP(ctx, "f1") })
	// Its address is free again.
	must(t, s.CreateFloatingIP(ctx, newFIP("f7", "", netip.Addr{}), gatewayPort("f7-port", "ext"), f.alloc, -1))
}

func testNetworkQuotas(t *testing.T, s Store) {
	got, err := s.NetworkQuotas(ctx, "p1")
	must(t, err)
	equal(t, got, map[string]int{})
	must(t, s.SetNetworkQuotas(ctx, "p1", map[string]int{trustack.QuotaNetwork: 5, trustack.QuotaPort: -1}))
	must(t, s.SetNetworkQuotas(ctx, "p1", map[string]int{trustack.QuotaNetwork: 7}))
	must(t, s.SetNetworkQuotas(ctx, "p2", map[string]int{trustack.QuotaRouter: 1}))
	got, err = s.NetworkQuotas(ctx, "p1")
	must(t, err)
	equal(t, got, map[string]int{trustack.QuotaNetwork: 7, trustack.QuotaPort: -1})
	all, err := s.AllNetworkQuotas(ctx)
	must(t, err)
	equal(t, all, map[string]map[string]int{"p1": {trustack.QuotaNetwork: 7, trustack.QuotaPort: -1}, "p2": {trustack.QuotaRouter: 1}})
	must(t, s.DeleteNetworkQuotas(ctx, "p1"))
	all, err = s.AllNetworkQuotas(ctx)
	must(t, err)
	equal(t, all, map[string]map[string]int{"p2": {trustack.QuotaRouter: 1}})

	f := newNets(t, s, 13)
	f.external("ext", "203.0.113.0/24")
	f.network("n1", "p1")
	f.network("n2", "p1")
	f.subnet("s", "n1", "10.0.0.0/24")
	f.port("a", "n1", ip("s", ""))
	f.port("b", "n1", ip("s", ""))
	f.group("g", "p1")
	r := rule("r", "g", "p1", 22, start)
	must(t, s.CreateSecurityGroupRule(ctx, &r, -1))
	must(t, s.CreateRouter(ctx, newRouter("r", "p1", ""), nil, f.alloc, -1))
	must(t, s.CreateFloatingIP(ctx, &trustack.FloatingIP{ID: "fip", ProjectID: "p1", NetworkID: "ext", Standard: std()}, gatewayPort("fip-port", "ext"), f.alloc, -1))
	usage, err := s.NetworkUsage(ctx, "p1")
	must(t, err)
	equal(t, usage, map[string]int{trustack.QuotaNetwork: 2, trustack.QuotaSubnet: 1, trustack.QuotaPort: 2, trustack.QuotaRouter: 1,
		trustack.QuotaFloatingIP: 1, trustack.QuotaSecurityGroup: 1, trustack.QuotaSecurityGroupRule: 1})
	usage, err = s.NetworkUsage(ctx, "nobody")
	must(t, err)
	equal(t, usage[trustack.QuotaNetwork], 0)
}

// testNetworkQuotaUnderConcurrency races network creations against a
// quota: exactly the limit of them is created.
func testNetworkQuotaUnderConcurrency(t *testing.T, s Store) {
	const limit = 5
	created := race(t, 20, trustack.EOVERQUOTA, "OverQuota", func(i int) error {
		return s.CreateNetwork(ctx, &trustack.Network{ID: fmt.Sprintf("n%02d", i), ProjectID: "p", Type: trustack.NetworkLocal, Standard: std()}, limit)
	})
	list, err := s.Networks(ctx, trustack.NetworkFilter{})
	must(t, err)
	if created != limit || len(list) != limit {
		t.Errorf("got %d networks created and %d stored, want %d of each", created, len(list), limit)
	}
}

// testSecurityGroupMembersAndHosts checks what hosts are told of groups:
// the addresses of each group's ports (fixed IPs and allowed address
// pairs) and the hosts its ports are bound to.
func testSecurityGroupMembersAndHosts(t *testing.T, s Store) {
	f := newNets(t, s, 21)
	f.network("mn", "p1")
	f.subnet("ms", "mn", "10.9.0.0/24")
	f.group("ga", "p1")
	f.group("gb", "p1")
	for _, p := range []struct {
		id, addr, host string
		groups         []string
		pairs          []trustack.AddressPair
	}{
		{"a1", "10.9.0.10", "h1", []string{"ga"}, nil},
		{"a2", "10.9.0.11", "h2", []string{"ga", "gb"}, []trustack.AddressPair{{IPAddress: "10.9.0.128/25"}}},
		{"b1", "10.9.0.12", "", []string{"gb"}, nil},
	} {
		port := newPort(p.id, "mn", "p1", ip("ms", p.addr))
		port.HostID, port.SecurityGroups, port.AllowedAddressPairs = p.host, p.groups, p.pairs
		must(t, s.CreatePort(ctx, port, f.alloc, -1))
	}
	members, err := s.SecurityGroupMembers(ctx, []string{"ga", "gb", "nobody"})
	must(t, err)
	for _, list := range members {
		slices.Sort(list)
	}
	equal(t, members, map[string][]string{
		"ga": {"10.9.0.10", "10.9.0.11", "10.9.0.128/25"},
		"gb": {"10.9.0.11", "10.9.0.12", "10.9.0.128/25"},
	})
	hosts, err := s.SecurityGroupHosts(ctx, []string{"ga", "gb", "nobody"})
	must(t, err)
	equal(t, hosts, map[string][]string{"ga": {"h1", "h2"}, "gb": {"h2"}})
}
