package e2e

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// The fields of the network commands' JSON that the test reads.
type (
	clientFixedIP struct {
		SubnetID  string `json:"subnet_id"`
		IPAddress string `json:"ip_address"`
	}
	clientNetwork struct {
		ID, Name, Status, Description string
		Shared                        bool
		External                      bool `json:"router:external"`
		Subnets                       []string
	}
	clientSubnet struct {
		ID              string
		NetworkID       string `json:"network_id"`
		CIDR            string
		GatewayIP       string                        `json:"gateway_ip"`
		AllocationPools []struct{ Start, End string } `json:"allocation_pools"`
		DNSNameservers  []string                      `json:"dns_nameservers"`
		EnableDHCP      bool                          `json:"enable_dhcp"`
	}
	clientRouter struct {
		ID               string
		GatewayNetworkID string          `json:"external_gateway_network_id"`
		EnableSNAT       *bool           `json:"enable_snat"`
		ExternalFixedIPs []clientFixedIP `json:"external_fixed_ips"`
		Interfaces       []clientFixedIP
	}
	clientRule struct {
		ID, Direction, Protocol string
		GroupID                 string `json:"security_group_id"`
		EtherType               string `json:"ethertype"`
		PortRange               string `json:"port_range"`
		RemoteIPPrefix          string `json:"remote_ip_prefix"`
	}
	clientPort struct {
		ID               string
		NetworkID        string          `json:"network_id"`
		DeviceID         string          `json:"device_id"`
		FixedIPs         []clientFixedIP `json:"fixed_ips"`
		SecurityGroupIDs []string        `json:"security_group_ids"`
	}
	clientFloatingIP struct {
		ID        string
		Address   string `json:"floating_ip_address"`
		FixedIP   string `json:"fixed_ip_address"`
		PortID    string `json:"port_id"`
		NetworkID string `json:"floating_network_id"`
	}
	clientAddressed struct {
		ID, Status string
		Addresses  map[string][]string
	}
)

// TestClientNetwork is the network session of the issue: a member of the
// demo project builds a network with trustack's own client against
// `trustack up` (a subnet, a router to the external network public, a
// security group that lets SSH in, a port), boots a server on it, gives
// the server a floating IP and takes it back, and tears it all down; the
// network cannot go while the server's port is on it. Each step's output
// says what a user relies on.
func TestClientNetwork(t *testing.T) {
	c := startUp(t, "--nodes", "2", "--attestation", "no")
	demo := c.openrc("demo-openrc")
	path, _ := imageFile(t, 1<<20)
	trustackOK(t, demo, "image", "upload", path, "--name", "cirros")
	var public clientNetwork
	trustackJSON(t, demo, &public, "network", "show", "public")
	publicRange := netip.MustParsePrefix("172.24.4.0/24")

	var net clientNetwork
	trustackJSON(t, demo, &net, "network", "create", "net1", "--description", "the app's network")
	if net.Name != "net1" || net.Status != "ACTIVE" || net.Description != "the app's network" || net.Shared || net.External {
		t.Errorf("network create: got %+v, want ACTIVE net1, described, neither shared nor external", net)
	}

	var sn clientSubnet
	trustackJSON(t, demo, &sn, "subnet", "create", "subnet1", "--network", "net1", "--subnet-range", "192.168.10.0/24",
		"--allocation-pool", "start=192.168.10.10,end=192.168.10.99", "--dns-nameserver", "192.168.10.2")
	if sn.NetworkID != net.ID || sn.CIDR != "192.168.10.0/24" || sn.GatewayIP != "192.168.10.1" || !sn.EnableDHCP ||
		len(sn.AllocationPools) != 1 || sn.AllocationPools[0].Start != "192.168.10.10" || sn.AllocationPools[0].End != "192.168.10.99" ||
		!slices.Equal(sn.DNSNameservers, []string{"192.168.10.2"}) {
		t.Errorf("subnet create: got %+v, want 192.168.10.0/24 on net1, gateway .1, DHCP, pool .10-.99, DNS .2", sn)
	}
	var withSubnet clientNetwork
	trustackJSON(t, demo, &withSubnet, "network", "show", "net1")
	if !slices.Equal(withSubnet.Subnets, []string{sn.ID}) {
		t.Errorf("network show net1: subnets %v, want [%s]", withSubnet.Subnets, sn.ID)
	}

	var router clientRouter
	trustackJSON(t, demo, &router, "router", "create", "r1", "--external-gateway", "public")
	if router.GatewayNetworkID != public.ID || router.EnableSNAT == nil || !*router.EnableSNAT ||
		len(router.ExternalFixedIPs) != 1 || !inPrefix(publicRange, router.ExternalFixedIPs[0].IPAddress) {
		t.Errorf("router create --external-gateway public: got %+v, want a gateway on public (%s) with SNAT and an address of %s", router, public.ID, publicRange)
	}
	var joined clientRouter
	trustackJSON(t, demo, &joined, "router", "add", "subnet", "r1", "subnet1")
	if want := []clientFixedIP{{sn.ID, "192.168.10.1"}}; !slices.Equal(joined.Interfaces, want) {
		t.Errorf("router add subnet: interfaces %v, want %v: the subnet's gateway", joined.Interfaces, want)
	}

	var group struct{ ID, Name string }
	trustackJSON(t, demo, &group, "security-group", "create", "ssh", "--description", "lets SSH in")
	var rule clientRule
	trustackJSON(t, demo, &rule, "security-group", "rule", "create", "ssh", "--protocol", "tcp", "--dst-port", "22")
	if want := (clientRule{ID: rule.ID, Direction: "ingress", Protocol: "tcp", GroupID: group.ID, EtherType: "IPv4", PortRange: "22:22",
		RemoteIPPrefix: "0.0.0.0/0"}); rule != want {
		t.Errorf("security-group rule create: got %+v, want %+v", rule, want)
	}
	var rules []map[string]any
	trustackJSON(t, demo, &rules, "security-group", "rule", "list", "ssh")
	if !slices.ContainsFunc(rules, func(r map[string]any) bool { return r["ID"] == rule.ID && r["Port Range"] == "22:22" }) {
		t.Errorf("security-group rule list ssh: got %v, want rule %s for 22:22", rules, rule.ID)
	}

	// An address outside the allocation pool: the cloud gives it to no
	// other port.
	var port clientPort
	trustackJSON(t, demo, &port, "port", "create", "port1", "--network", "net1",
		"--fixed-ip", "subnet=subnet1,ip-address=192.168.10.200", "--security-group", "ssh")
	if port.NetworkID != net.ID || !slices.Equal(port.FixedIPs, []clientFixedIP{{sn.ID, "192.168.10.200"}}) ||
		!slices.Equal(port.SecurityGroupIDs, []string{group.ID}) {
		t.Errorf("port create: got %+v, want 192.168.10.200 on subnet1, in group ssh", port)
	}

	var vm clientAddressed
	trustackJSON(t, demo, &vm, "server", "create", "vm1", "--image", "cirros", "--flavor", "m1.tiny",
		"--network", "net1", "--security-group", "ssh", "--wait")
	if vm.Status != "ACTIVE" || len(vm.Addresses["net1"]) != 1 || !inPool(vm.Addresses["net1"][0], "192.168.10.10", "192.168.10.99") {
		t.Fatalf("server create --network net1 --wait: got %+v, want ACTIVE with one address of net1's pool", vm)
	}
	fixed := vm.Addresses["net1"][0]
	var serverPorts []struct {
		ID       string
		FixedIPs []clientFixedIP `json:"Fixed IP Addresses"`
	}
	trustackJSON(t, demo, &serverPorts, "port", "list", "--server", "vm1")
	if len(serverPorts) != 1 || !slices.Equal(serverPorts[0].FixedIPs, []clientFixedIP{{sn.ID, fixed}}) {
		t.Fatalf("port list --server vm1: got %+v, want the one port at %s", serverPorts, fixed)
	}
	var serverPort clientPort
	trustackJSON(t, demo, &serverPort, "port", "show", serverPorts[0].ID)
	if serverPort.DeviceID != vm.ID || !slices.Equal(serverPort.SecurityGroupIDs, []string{group.ID}) {
		t.Errorf("port show of the server's port: got %+v, want server %s's, in group ssh only", serverPort, vm.ID)
	}

	var fip clientFloatingIP
	trustackJSON(t, demo, &fip, "floating-ip", "create", "public")
	if fip.NetworkID != public.ID || !inPrefix(publicRange, fip.Address) || fip.PortID != "" || fip.FixedIP != "" {
		t.Errorf("floating-ip create public: got %+v, want an address of %s on no port", fip, publicRange)
	}
	var set clientFloatingIP
	trustackJSON(t, demo, &set, "floating-ip", "set", fip.Address, "--port", serverPort.ID)
	if set.ID != fip.ID || set.PortID != serverPort.ID || set.FixedIP != fixed {
		t.Errorf("floating-ip set --port: got %+v, want %s on port %s at %s", set, fip.ID, serverPort.ID, fixed)
	}
	var fips []map[string]any
	trustackJSON(t, demo, &fips, "floating-ip", "list")
	if len(fips) != 1 || fips[0]["Floating IP Address"] != fip.Address || fips[0]["Fixed IP Address"] != fixed || fips[0]["Port"] != serverPort.ID {
		t.Errorf("floating-ip list: got %v, want %s reaching %s on port %s", fips, fip.Address, fixed, serverPort.ID)
	}
	if out := trustackOK(t, demo, "floating-ip", "list"); !hasLine(out, fip.Address, fixed) {
		t.Errorf("floating-ip list: want a line with %s and %s:\n%s", fip.Address, fixed, out)
	}
	var shown clientFloatingIP
	trustackJSON(t, demo, &shown, "floating-ip", "show", fip.Address)
	if shown != set {
		t.Errorf("floating-ip show %s: got %+v, want %+v", fip.Address, shown, set)
	}

	var floating clientAddressed
	trustackJSON(t, demo, &floating, "server", "show", "vm1")
	if want := []string{fixed, fip.Address}; !slices.Equal(floating.Addresses["net1"], want) {
		t.Errorf("server show with a floating IP: addresses %v, want net1=%v", floating.Addresses, want)
	}
	if out, want := trustackOK(t, demo, "server", "show", "vm1"), "net1="+fixed+", "+fip.Address; !hasLine(out, "addresses", want) {
		t.Errorf("server show: want the line \"addresses  %s\":\n%s", want, out)
	}

	var unset clientFloatingIP
	trustackJSON(t, demo, &unset, "floating-ip", "unset", fip.Address, "--port")
	if unset.ID != fip.ID || unset.PortID != "" || unset.FixedIP != "" {
		t.Errorf("floating-ip unset --port: got %+v, want %s on no port", unset, fip.ID)
	}
	var fixedOnly clientAddressed
	trustackJSON(t, demo, &fixedOnly, "server", "show", "vm1")
	if want := []string{fixed}; !slices.Equal(fixedOnly.Addresses["net1"], want) {
		t.Errorf("server show without the floating IP: addresses %v, want net1=%v", fixedOnly.Addresses, want)
	}

	trustackOK(t, demo, "port", "delete", "port1")
	if _, errOut, code := trustackRun(t, demo, "port", "show", "port1"); code != 1 || !strings.Contains(errOut, "No port with a name or ID of 'port1' exists.") {
		t.Errorf("port show of the deleted port: exit status %d, %q; want 1 and not found", code, errOut)
	}

	// The server's port keeps the network; the server's going takes it.
	if out, errOut, code := trustackRun(t, demo, "network", "delete", "net1"); code != 1 || out != "" ||
		!strings.Contains(errOut, "in use") || !strings.Contains(errOut, "(HTTP 409)") {
		t.Errorf("network delete with a server on it: exit status %d, stdout %q, stderr %q; want 1 and the network in use", code, out, errOut)
	}
	trustackOK(t, demo, "network", "show", "net1")
	trustackOK(t, demo, "server", "delete", "vm1", "--wait")
	var left []struct{ ID string }
	trustackJSON(t, demo, &left, "port", "list", "--network", "net1")
	if slices.ContainsFunc(left, func(p struct{ ID string }) bool { return p.ID == serverPort.ID }) {
		t.Errorf("port list --network net1 after the server's delete: its port %s is still there", serverPort.ID)
	}
	var parted clientRouter
	trustackJSON(t, demo, &parted, "router", "remove", "subnet", "r1", "subnet1")
	if parted.ID != router.ID || len(parted.Interfaces) != 0 {
		t.Errorf("router remove subnet: got %+v, want router %s with no interface", parted, router.ID)
	}
	trustackOK(t, demo, "network", "delete", "net1")
	trustackOK(t, demo, "floating-ip", "delete", fip.Address)
	trustackOK(t, demo, "router", "delete", "r1")
	trustackOK(t, demo, "security-group", "delete", "ssh")
	for _, list := range []struct {
		args []string
		gone string
	}{
		{[]string{"network", "list"}, "net1"},
		{[]string{"subnet", "list"}, "subnet1"},
		{[]string{"router", "list"}, "r1"},
		{[]string{"security-group", "list"}, "ssh"},
	} {
		var rows []struct{ Name string }
		trustackJSON(t, demo, &rows, list.args...)
		if slices.ContainsFunc(rows, func(r struct{ Name string }) bool { return r.Name == list.gone }) {
			t.Errorf("trustack %s after the deletes: %s is still there", strings.Join(list.args, " "), list.gone)
		}
	}
	var noFIPs []map[string]any
	trustackJSON(t, demo, &noFIPs, "floating-ip", "list")
	if len(noFIPs) != 0 {
		t.Errorf("floating-ip list after the delete: got %v, want none", noFIPs)
	}

	// Mistakes: each exits with status 1, says what is wrong on stderr and
	// leaves nothing behind.
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown network", []string{"server", "create", "x", "--image", "cirros", "--flavor", "m1.tiny", "--network", "nope"},
			"No network with a name or ID of 'nope' exists."},
		{"auto with a network", []string{"server", "create", "x", "--image", "cirros", "--flavor", "m1.tiny", "--nic", "auto", "--network", "private"},
			"--nic auto cannot go with any other --nic, --network or --port"},
		{"a pool upside down", []string{"subnet", "create", "x", "--network", "private", "--subnet-range", "10.9.0.0/24",
			"--allocation-pool", "start=10.9.0.99,end=10.9.0.10"}, "the start is after the end"},
		{"an overlapping range", []string{"subnet", "create", "x", "--network", "private", "--subnet-range", "10.0.0.0/24"}, "overlaps"},
		{"port 0", []string{"security-group", "rule", "create", "default", "--protocol", "tcp", "--dst-port", "0"}, "want a port (1 to 65535)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := trustackRun(t, demo, tc.args...)
			if code != 1 || !strings.Contains(errOut, tc.want) || out != "" {
				t.Errorf("trustack %s: exit status %d, stdout %q, stderr %q; want 1, nothing, and %q",
					strings.Join(tc.args, " "), code, out, errOut, tc.want)
			}
		})
	}
	var servers, subnets []struct{ Name string }
	trustackJSON(t, demo, &servers, "server", "list")
	trustackJSON(t, demo, &subnets, "subnet", "list")
	if len(servers) != 0 || slices.ContainsFunc(subnets, func(s struct{ Name string }) bool { return s.Name == "x" }) {
		t.Errorf("after the mistakes: servers %v, subnets %v; want no server and no subnet x", servers, subnets)
	}
}

// inPrefix reports whether addr is an address of p.
func inPrefix(p netip.Prefix, addr string) bool {
	a, err := netip.ParseAddr(addr)
	return err == nil && p.Contains(a)
}

// inPool reports whether addr is an address from start to end.
func inPool(addr, start, end string) bool {
	a, err := netip.ParseAddr(addr)
	return err == nil && netip.MustParseAddr(start).Compare(a) <= 0 && a.Compare(netip.MustParseAddr(end)) <= 0
}

// hasLine reports whether a line of a table has each of the texts.
func hasLine(table string, texts ...string) bool {
	for _, line := range strings.Split(table, "\n") {
		if !slices.ContainsFunc(texts, func(s string) bool { return !strings.Contains(line, s) }) {
			return true
		}
	}
	return false
}
