package e2e

import (
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// TestNetworkOpenStackCLI is the networking session with the
// Debian OpenStack CLI (python-openstackclient 6.0) against `trustack up
// --nodes 3`: first what a newcomer gets with no step of their own (a
// server with an address on the project's network), then a network of
// their own joined to the external network by a router, a security group,
// a port, a server on them with a floating IP, and the refusal to delete
// a network while ports are on it.
func TestNetworkOpenStackCLI(t *testing.T) {
	need(t, "openstack")
	c := startUp(t, "--nodes", "3", "--attestation", "no", "--test-image", testImage(t))
	demo := c.openrc("demo-openrc")

	// A newcomer's server has an address on the project's network private.
	var vm1 struct{ Addresses map[string][]string }
	showJSON(t, demo, &vm1, "server", "create", "--image", "tiny", "--flavor", "m1.tiny", "--wait", "vm1")
	if a := vm1.Addresses["private"]; len(a) != 1 || !inCIDR(a[0], "10.0.0.0/20") {
		t.Errorf("vm1's addresses: got %v, want one on private (10.0.0.0/20)", vm1.Addresses)
	}

	must(t, demo, "network", "create", "net1")
	must(t, demo, "subnet", "create", "--network", "net1", "--subnet-range", "10.1.0.0/24", "sub1")
	must(t, demo, "router", "create", "r1")
	must(t, demo, "router", "set", "--external-gateway", "public", "r1")
	must(t, demo, "router", "add", "subnet", "r1", "sub1")
	var r1 struct {
		Gateway struct {
			ExternalFixedIPs []struct {
				IPAddress string `json:"ip_address"`
			} `json:"external_fixed_ips"`
		} `json:"external_gateway_info"`
	}
	showJSON(t, demo, &r1, "router", "show", "r1")
	if ips := r1.Gateway.ExternalFixedIPs; len(ips) != 1 || !inCIDR(ips[0].IPAddress, "172.24.4.0/24") {
		t.Errorf("r1's gateway: got %+v, want an address of public (172.24.4.0/24)", r1.Gateway)
	}

	must(t, demo, "security", "group", "create", "ssh")
	must(t, demo, "security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "22", "ssh")
	rules := must(t, demo, "security", "group", "rule", "list", "ssh", "-f", "value", "-c", "IP Protocol", "-c", "Port Range")
	if !strings.Contains(rules, "tcp 22:22") {
		t.Errorf("the rules of ssh: got %q, want tcp 22:22 among them", rules)
	}

	port := must(t, demo, "port", "create", "--network", "net1", "-f", "value", "-c", "id", "p1")
	server := must(t, demo, "server", "create", "--image", "tiny", "--flavor", "m1.tiny", "--network", "net1", "--security-group", "ssh", "--wait",
		"-f", "value", "-c", "id", "vm2")
	addresses := func() []string {
		var vm2 struct{ Addresses map[string][]string }
		showJSON(t, demo, &vm2, "server", "show", "vm2")
		return vm2.Addresses["net1"]
	}
	fixed := addresses()[0]
	if !inCIDR(fixed, "10.1.0.0/24") {
		t.Fatalf("vm2's address on net1: got %q, want one of 10.1.0.0/24", fixed)
	}
	var vm2Port struct {
		Groups []string `json:"security_group_ids"`
	}
	showJSON(t, demo, &vm2Port, "port", "show", must(t, demo, "port", "list", "--server", server, "-f", "value", "-c", "ID"))
	sshID := must(t, demo, "security", "group", "show", "ssh", "-f", "value", "-c", "id")
	if !slices.Equal(vm2Port.Groups, []string{sshID}) {
		t.Errorf("vm2's port is in groups %v, want ssh (%s) alone", vm2Port.Groups, sshID)
	}

	floating := must(t, demo, "floating", "ip", "create", "public", "-f", "value", "-c", "floating_ip_address")
	if !inCIDR(floating, "172.24.4.0/24") {
		t.Fatalf("floating IP %q, want one of public (172.24.4.0/24)", floating)
	}
	must(t, demo, "server", "add", "floating", "ip", "vm2", floating)
	list := must(t, demo, "floating", "ip", "list", "-f", "value", "-c", "Floating IP Address", "-c", "Fixed IP Address")
	if !strings.Contains(list, floating+" "+fixed) {
		t.Errorf("floating ip list: got %q, want %s mapped to %s", list, floating, fixed)
	}
	if shown := addresses(); !slices.Equal(shown, []string{fixed, floating}) {
		t.Errorf("vm2's addresses on net1: got %v, want %s and %s", shown, fixed, floating)
	}
	must(t, demo, "server", "remove", "floating", "ip", "vm2", floating)
	if shown := addresses(); !slices.Equal(shown, []string{fixed}) {
		t.Errorf("vm2's addresses on net1 after the floating IP was removed: got %v, want %s", shown, fixed)
	}

	must(t, demo, "port", "delete", port)
	out, err := openstack(t, demo, "network", "delete", "net1")
	if err == nil || !strings.Contains(out, "in use") {
		t.Errorf("network delete while vm2 has a port on it: got %v, %q; want it refused as in use", err, out)
	}
	must(t, demo, "server", "delete", "--wait", "vm2")
	must(t, demo, "router", "remove", "subnet", "r1", "sub1")
	must(t, demo, "network", "delete", "net1")
	if out, err := openstack(t, demo, "network", "show", "net1"); err == nil {
		t.Errorf("net1 after its delete: %s", out)
	}
}

// showJSON runs an OpenStack CLI command with JSON output into out.
func showJSON(t testing.TB, env map[string]string, out any, args ...string) {
	t.Helper()
	if err := json.Unmarshal([]byte(must(t, env, append(args, "-f", "json")...)), out); err != nil {
		t.Fatalf("openstack %s: %v", strings.Join(args, " "), err)
	}
}

// inCIDR reports whether addr is an address of the prefix.
func inCIDR(addr, cidr string) bool {
	a, err := netip.ParseAddr(addr)
	return err == nil && netip.MustParsePrefix(cidr).Contains(a)
}
