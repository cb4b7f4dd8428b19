package e2e

import (
	"fmt"
	"path/filepath"
	"testing"
)

// TestTempestNetwork runs Tempest 33's network API tests against
// `trustack up` with two compute hosts, with dynamic credentials, and
// with what trustack serves of Neutron switched on: exactly the
// extensions it lists, floating IPs on its network public, IPv6 with its
// address modes, and port security. Tempest skips the tests of the
// extensions trustack does not list; testdata/tempest-network-exclude.txt
// names, with reasons, the few that run and cannot pass all the same.
func TestTempestNetwork(t *testing.T) {
	need(t, "tempest", "openstack")
	c := startUp(t, "--nodes", "2")
	admin := c.openrc("openrc")
	extra := fmt.Sprintf(`[auth]
use_dynamic_credentials = true
admin_username = admin
admin_password = %s
admin_project_name = admin
admin_domain_name = Default

[network]
project_network_v6_cidr = 2001:db8::/48
project_network_v6_mask_bits = 64

[network-feature-enabled]
ipv6 = true
ipv6_subnet_attributes = true
port_security = true
`, admin["OS_PASSWORD"]) + neutronConf(t, admin)
	ws := tempestWorkspace(t, admin["OS_AUTH_URL"], "", extra)
	exclude, err := filepath.Abs("testdata/tempest-network-exclude.txt")
	if err != nil {
		t.Fatal(err)
	}
	tempest(t, ws, "--regex", `^tempest\.api\.network\.`, "--exclude-list", exclude, "--concurrency", "4")
}
