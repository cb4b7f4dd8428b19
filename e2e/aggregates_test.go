package e2e

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// aggregateCLI is an operator's host aggregates session with the
// OpenStack client, on the cloud of TestManageCLI once it is done: the
// physical domain d-fra, holding host domainHost, is listed as an
// aggregate that os-aggregates does not change; an aggregate in a new
// availability zone takes host free, gets a property, and a server
// created in its zone lands on that host.
func aggregateCLI(t *testing.T, admin map[string]string, domainHost, free string) {
	t.Helper()
	type aggregate struct {
		ID               int               `json:"id"`
		Name             string            `json:"name"`
		AvailabilityZone *string           `json:"availability_zone"`
		Hosts            []string          `json:"hosts"`
		Properties       map[string]string `json:"properties"`
	}
	show := func(args ...string) aggregate {
		t.Helper()
		var a aggregate
		out := must(t, admin, append(args, "-f", "json")...)
		if err := json.Unmarshal([]byte(out), &a); err != nil {
			t.Fatalf("openstack %s -f json: %v\n%s", strings.Join(args, " "), err, out)
		}
		return a
	}

	if a := show("aggregate", "show", "domain:d-fra"); !slices.Equal(a.Hosts, []string{domainHost}) || a.Properties["gpu"] != "a100" ||
		a.Properties["acaas:location"] != "ams1" || a.Properties["acaas:dcot"] != "gold" {
		t.Errorf("aggregate show domain:d-fra: got %+v, want host %s, gpu=a100, location ams1, DCoT gold", a, domainHost)
	}
	if out, err := openstack(t, admin, "aggregate", "set", "--property", "gpu=h100", "domain:d-fra"); err == nil ||
		!strings.Contains(out, "trustack manage domain") || !strings.Contains(out, "409") {
		t.Errorf("aggregate set --property on a domain's aggregate: %v\n%s\nwant a 409 saying to change the domain", err, out)
	}

	a := show("aggregate", "create", "--zone", "az-agg", "agg1")
	if a.Name != "agg1" || a.AvailabilityZone == nil || *a.AvailabilityZone != "az-agg" {
		t.Errorf("aggregate create --zone az-agg agg1: got %+v", a)
	}
	if a = show("aggregate", "add", "host", "agg1", free); !slices.Equal(a.Hosts, []string{free}) {
		t.Errorf("aggregate add host agg1 %s: got hosts %v", free, a.Hosts)
	}
	if out, err := openstack(t, admin, "aggregate", "add", "host", "agg1", "compute-99"); err == nil || !strings.Contains(out, "404") {
		t.Errorf("aggregate add host agg1 compute-99: %v\n%s\nwant a 404", err, out)
	}
	must(t, admin, "aggregate", "set", "--property", "ssd=true", "agg1")
	a = show("aggregate", "show", "agg1")
	if !slices.Equal(a.Hosts, []string{free}) || a.Properties["ssd"] != "true" || a.AvailabilityZone == nil || *a.AvailabilityZone != "az-agg" {
		t.Errorf("aggregate show agg1: got %+v, want %s, ssd=true, zone az-agg", a, free)
	}

	var zones []struct {
		Name  string `json:"Zone Name"`
		State string `json:"Zone Status"`
	}
	if err := json.Unmarshal([]byte(must(t, admin, "availability", "zone", "list", "--compute", "-f", "json")), &zones); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(zones, func(z struct {
		Name  string `json:"Zone Name"`
		State string `json:"Zone Status"`
	}) bool {
		return z.Name == "az-agg" && z.State == "available"
	}) {
		t.Errorf("availability zone list --compute: got %+v, want az-agg available", zones)
	}

	path, _ := imageFile(t, 1<<20)
	must(t, admin, "image", "create", "--disk-format", "raw", "--container-format", "bare", "--file", path, "agg-image")
	var vm map[string]any
	out := must(t, admin, "server", "create", "--image", "agg-image", "--flavor", "m1.tiny", "--availability-zone", "az-agg", "--wait", "-f", "json", "in-agg")
	if err := json.Unmarshal([]byte(out), &vm); err != nil {
		t.Fatalf("server create -f json: %v\n%s", err, out)
	}
	if vm["OS-EXT-SRV-ATTR:host"] != free || vm["OS-EXT-AZ:availability_zone"] != "az-agg" || vm["status"] != "ACTIVE" {
		t.Errorf("server create --availability-zone az-agg: on %v in %v (%v), want ACTIVE on %s in az-agg",
			vm["OS-EXT-SRV-ATTR:host"], vm["OS-EXT-AZ:availability_zone"], vm["status"], free)
	}
}
