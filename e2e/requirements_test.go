package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// TestRequirementsFollowTheServer is the ACaaS session of the issue: an
// operator describes where the hosts are with `trustack manage`, a member
// of project demo states location=DE, `openstack server create` lands in
// Germany, and when the operator moves that host's domain to France the
// server is migrated to the other German host by itself. A hint that asks
// for what no host offers gets a server in ERROR that says which
// requirement no host met.
func TestRequirementsFollowTheServer(t *testing.T) {
	need(t, "openstack")
	// The operator sets the hosts' trust by hand here: without
	// attestation, which would own it (TestAttestation has it).
	c := startUp(t, "--nodes", "3", "--attestation", "no")
	admin, demo := c.openrc("openrc"), c.openrc("demo-openrc")
	manage := func(args ...string) string {
		t.Helper()
		return trustackOK(t, admin, append([]string{"manage"}, args...)...)
	}

	manage("location", "create", "Berlin", "--country", "DE")
	manage("location", "create", "Frankfurt", "--country", "DE")
	manage("location", "create", "Paris", "--country", "FR")
	manage("location", "distance", "set", "Berlin", "Frankfurt", "424")
	for i, d := range []struct{ name, location string }{{"de-north", "Berlin"}, {"de-south", "Frankfurt"}, {"fr", "Paris"}} {
		manage("domain", "create", d.name, "--location", d.location, "--dcot", "baseline")
		manage("domain", "add-host", d.name, fmt.Sprintf("compute-%d", i+1))
		manage("host", "add-properties", fmt.Sprintf("compute-%d", i+1), "rack=r"+fmt.Sprint(i+1))
		manage("host", "add-properties", "--security", fmt.Sprintf("compute-%d", i+1), "trust=baseline")
	}
	if out := manage("host", "get-properties", "compute-2"); !strings.Contains(out, "rack") || !strings.Contains(out, "r2") || !strings.Contains(out, "baseline") {
		t.Errorf("trustack manage host get-properties compute-2: want rack=r2 and trust=baseline, got\n%s", out)
	}

	// The member states the project's requirement.
	trustackOK(t, demo, "requirement", "set", "location=DE")
	if out := trustackOK(t, demo, "requirement", "list"); !strings.Contains(out, "location") || !strings.Contains(out, "DE") {
		t.Errorf("trustack requirement list: want location DE, got\n%s", out)
	}

	path, _ := imageFile(t, 4096)
	must(t, admin, "image", "create", "--file", path, "--disk-format", "qcow2", "--container-format", "bare", "--public", "cirros")
	var server map[string]any
	if err := json.Unmarshal([]byte(must(t, demo, "server", "create", "--image", "cirros", "--flavor", "m1.tiny", "--hint", "trust=baseline", "--wait", "vm1", "-f", "json")), &server); err != nil {
		t.Fatal(err)
	}
	id, _ := server["id"].(string)
	host := hostOf(t, admin, id)
	// The member learns nothing of where vm1 runs: no host fields, and a
	// hostId that is a hash of the host with the project.
	for _, key := range []string{"OS-EXT-SRV-ATTR:host", "OS-EXT-SRV-ATTR:hypervisor_hostname", "OS-EXT-SRV-ATTR:instance_name"} {
		if v, ok := server[key]; ok && v != nil && v != "" {
			t.Errorf("openstack server create as a member shows %s = %v, want it hidden", key, v)
		}
	}
	if hid, _ := server["hostId"].(string); len(hid) != 56 || strings.Contains(hid, "compute") {
		t.Errorf("hostId %q, want a 56-digit hash", hid)
	}
	other := map[string]string{"compute-1": "compute-2", "compute-2": "compute-1"}[host]
	if other == "" {
		t.Fatalf("vm1, requiring location=DE, is on %s: want compute-1 or compute-2, the German hosts", host)
	}

	// The operator moves vm1's domain to Paris: vm1 moves to the other
	// German host, and says so in its actions.
	domain := map[string]string{"compute-1": "de-north", "compute-2": "de-south"}[host]
	manage("domain", "set", domain, "--location", "Paris")
	eventually(t, 60*time.Second, func() (bool, string) {
		s, err := sdkOf(t, admin).server(id)
		return err == nil && s.Host == other && s.Status == "ACTIVE", fmt.Sprint(s, err)
	}, "vm1 to be migrated to %s and ACTIVE", other)
	actions := must(t, demo, "server", "event", "list", "vm1", "-f", "value", "-c", "Action")
	if !strings.Contains(actions, "migrate") {
		t.Errorf("openstack server event list vm1: want a migrate action, got\n%s", actions)
	}

	// A hint narrows what the project requires; no host offers it, and
	// the server says which requirement it was.
	out, _ := openstack(t, demo, "server", "create", "--image", "cirros", "--flavor", "m1.tiny", "--hint", "location=Paris", "--wait", "vm2")
	if status := must(t, demo, "server", "show", "vm2", "-f", "value", "-c", "status"); status != "ERROR" {
		t.Fatalf("openstack server create --hint location=Paris with location=DE required: vm2 is %s, want ERROR\n%s", status, out)
	}
	fault := must(t, demo, "server", "show", "vm2", "-f", "value", "-c", "fault")
	for _, want := range []string{"No valid host was found.", "location=DE (project)", "location=Paris (hint)"} {
		if !strings.Contains(fault, want) {
			t.Errorf("openstack server show vm2: fault %q, want it to contain %q", fault, want)
		}
	}
}

// hostOf returns the compute host a server runs on, as an admin sees it.
func hostOf(t testing.TB, admin map[string]string, id string) string {
	t.Helper()
	return strings.TrimSpace(must(t, admin, "server", "show", id, "-f", "value", "-c", "OS-EXT-SRV-ATTR:host"))
}

// TestColdMigrationOfARealVM moves a QEMU guest between hosts the way
// ACaaS does when a host stops meeting a server's requirements: the guest
// stops, its disk goes through the image service, and it boots on the
// other host, where its QEMU process alone runs.
func TestColdMigrationOfARealVM(t *testing.T) {
	need(t, "openstack", "qemu-system-x86_64")
	c := startUp(t, "--nodes", "2", "--driver", "qemu", "--test-image", testImage(t))
	t.Cleanup(func() { killQEMUs(t, c.dir) })
	admin := c.openrc("openrc")
	manage := func(args ...string) { t.Helper(); trustackOK(t, admin, append([]string{"manage"}, args...)...) }
	manage("location", "create", "Berlin", "--country", "DE")
	manage("location", "create", "Paris", "--country", "FR")
	manage("domain", "create", "a", "--location", "Berlin")
	manage("domain", "create", "b", "--location", "Berlin")
	manage("domain", "add-host", "a", "compute-1")
	manage("domain", "add-host", "b", "compute-2")
	trustackOK(t, admin, "requirement", "set", "location=DE")

	id := must(t, admin, "server", "create", "--image", "tiny", "--flavor", "m1.tiny", "--wait", "-f", "value", "-c", "id", "vm1")
	ready := func(after string) {
		t.Helper()
		eventually(t, 2*time.Minute, func() (bool, string) {
			out := sdkOf(t, admin).consoleLog(id)
			return strings.Contains(out, "trustack-guest ready") && strings.Contains(out, "trustack-guest hostname: vm1"), out
		}, "the guest ready, after %s", after)
	}
	ready("create")
	host := hostOf(t, admin, id)
	other := map[string]string{"compute-1": "compute-2", "compute-2": "compute-1"}[host]
	manage("domain", "set", map[string]string{"compute-1": "a", "compute-2": "b"}[host], "--location", "Paris")
	eventually(t, 3*time.Minute, func() (bool, string) {
		s, err := sdkOf(t, admin).server(id)
		return err == nil && s.Host == other && s.Status == "ACTIVE", fmt.Sprint(s, err)
	}, "vm1 to be migrated to %s and ACTIVE", other)
	ready("the migration")
	eventually(t, time.Minute, func() (bool, string) {
		pids := qemuProcesses(c.dir)
		if len(pids) != 1 {
			return false, fmt.Sprintf("%d QEMU processes", len(pids))
		}
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pids[0]))
		return strings.Contains(string(cmdline), other), string(cmdline)
	}, "one QEMU process, on %s", other)
	if images := must(t, admin, "image", "list", "-f", "value", "-c", "Name"); strings.Contains(images, "migration of") {
		t.Errorf("openstack image list: the migration's transient image is left:\n%s", images)
	}
}
