package e2e

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
)

// clientDomain is `trustack manage domain show -f json`.
type clientDomain struct {
	Name          string            `json:"name"`
	Location      string            `json:"location"`
	Source        string            `json:"source"`
	DCoT          string            `json:"dcot"`
	Capabilities  map[string]string `json:"capabilities"`
	Hosts         []string          `json:"hosts"`
	Collaborators []string          `json:"collaborators"`
}

// clientRequirement is a row of `trustack requirement list -f json`.
type clientRequirement struct {
	Entry, Value, Project string
	Locked                bool
}

// trustackFails runs a trustack command that must fail, and checks that
// it exits 1 with a message on stderr that contains each of words.
func trustackFails(t testing.TB, env map[string]string, words []string, args ...string) {
	t.Helper()
	out, errOut, code := trustackRun(t, env, args...)
	if code != 1 {
		t.Errorf("trustack %s: got exit status %d, want 1\n%s%s", strings.Join(args, " "), code, out, errOut)
		return
	}
	for _, w := range words {
		if !strings.Contains(errOut, w) {
			t.Errorf("trustack %s: got message %q, want it to say %q", strings.Join(args, " "), errOut, w)
		}
	}
}

// TestManageCLI is the operator's and the user's ACaaS session: an
// operator describes where the hosts of `trustack up` are (locations,
// distances, physical domains with hosts and collaborators, host
// properties) and which requirements users may state, with `trustack
// manage`; a member of the demo project may not, but states its
// project's requirements with `trustack requirement`, except those an
// operator locked. The operator then sees the domains as host aggregates
// beside one of its own (aggregateCLI).
func TestManageCLI(t *testing.T) {
	need(t, "openstack")
	// Operators set the hosts' trust by hand here: without attestation,
	// which would own it.
	c := startUp(t, "--nodes", "3", "--attestation", "no")
	admin, demo := c.openrc("openrc"), c.openrc("demo-openrc")

	var hypervisors []struct {
		Hostname string `json:"Hypervisor Hostname"`
	}
	if err := json.Unmarshal([]byte(must(t, admin, "hypervisor", "list", "-f", "json")), &hypervisors); err != nil {
		t.Fatal(err)
	}
	var hosts []string
	for _, h := range hypervisors {
		hosts = append(hosts, h.Hostname)
	}
	slices.Sort(hosts)
	if len(hosts) != 3 {
		t.Fatalf("openstack hypervisor list: got %v, want 3 hosts", hosts)
	}
	h1, h2, h3 := hosts[0], hosts[1], hosts[2]

	// Locations and the distances between them.
	var loc struct{ Name, Country string }
	trustackJSON(t, admin, &loc, "manage", "location", "create", "fra1", "--country", "de")
	if loc.Name != "fra1" || loc.Country != "DE" {
		t.Errorf("location create fra1 --country de: got %+v, want fra1 in DE", loc)
	}
	trustackOK(t, admin, "manage", "location", "create", "ber1", "--country", "DE")
	trustackOK(t, admin, "manage", "location", "create", "ams1", "--country", "NL")
	trustackFails(t, admin, []string{"already exists", "(HTTP 409)"}, "manage", "location", "create", "fra1", "--country", "DE")
	trustackFails(t, admin, []string{"country", "(HTTP 400)"}, "manage", "location", "create", "x", "--country", "Germany1")
	if out := trustackOK(t, admin, "manage", "location", "list"); !strings.Contains(out, "ams1") || !strings.Contains(out, "ber1") || !strings.Contains(out, "fra1") {
		t.Errorf("location list: got\n%s\nwant ams1, ber1 and fra1", out)
	}
	trustackOK(t, admin, "manage", "location", "distance", "set", "fra1", "ber1", "420")
	trustackOK(t, admin, "manage", "location", "distance", "set", "fra1", "ams1", "360")
	trustackFails(t, admin, []string{"nowhere", "(HTTP 404)"}, "manage", "location", "distance", "set", "fra1", "nowhere", "1")
	var dists []struct {
		A, B string
		KM   int
	}
	trustackJSON(t, admin, &dists, "manage", "location", "distance", "list")
	if len(dists) != 2 || dists[0].A != "ams1" || dists[0].B != "fra1" || dists[0].KM != 360 || dists[1].A != "ber1" || dists[1].KM != 420 {
		t.Errorf("location distance list: got %+v, want ams1-fra1 360 km and ber1-fra1 420 km", dists)
	}

	// Physical domains, their hosts and collaborators.
	var d clientDomain
	trustackJSON(t, admin, &d, "manage", "domain", "create", "d-fra", "--location", "fra1", "--capability", "gpu=a100", "--dcot", "gold")
	if d.Name != "d-fra" || d.Location != "fra1" || d.Source != "local" || d.DCoT != "gold" || !maps.Equal(d.Capabilities, map[string]string{"gpu": "a100"}) {
		t.Errorf("domain create d-fra: got %+v", d)
	}
	trustackOK(t, admin, "manage", "domain", "create", "d-ams", "--location", "ams1", "--capability", "gpu=a100", "--dcot", "gold")
	trustackOK(t, admin, "manage", "domain", "create", "d-plain", "--location", "ber1", "--source", "emergency")
	trustackFails(t, admin, []string{"nowhere", "(HTTP 400)"}, "manage", "domain", "create", "d-x", "--location", "nowhere")
	trustackOK(t, admin, "manage", "domain", "add-host", "d-fra", h1)
	trustackOK(t, admin, "manage", "domain", "add-host", "d-fra", h2)
	trustackJSON(t, admin, &d, "manage", "domain", "add-host", "d-ams", h2) // moves h2
	if !slices.Equal(d.Hosts, []string{h2}) {
		t.Errorf("domain add-host d-ams %s: got hosts %v, want [%s]", h2, d.Hosts, h2)
	}
	trustackJSON(t, admin, &d, "manage", "domain", "show", "d-fra")
	if !slices.Equal(d.Hosts, []string{h1}) {
		t.Errorf("domain show d-fra after %s moved: got hosts %v, want [%s]", h2, d.Hosts, h1)
	}
	trustackFails(t, admin, []string{"not a member", "(HTTP 404)"}, "manage", "domain", "remove-host", "d-fra", h3)
	trustackFails(t, admin, []string{"compute-99", "(HTTP 404)"}, "manage", "domain", "add-host", "d-fra", "compute-99")
	trustackJSON(t, admin, &d, "manage", "domain", "add-collaborator", "d-fra", "d-ams", "--priority", "1")
	if !slices.Equal(d.Collaborators, []string{"d-ams (1)"}) {
		t.Errorf("domain add-collaborator d-fra d-ams: got collaborators %v, want [d-ams (1)]", d.Collaborators)
	}
	trustackFails(t, admin, []string{"capabilities differ", "(HTTP 400)"}, "manage", "domain", "add-collaborator", "d-fra", "d-plain", "--priority", "2")
	trustackFails(t, admin, []string{"d-ams", "(HTTP 409)"}, "manage", "domain", "set", "d-fra", "--dcot", "silver")
	trustackJSON(t, admin, &d, "manage", "domain", "set", "d-fra", "--location", "ams1")
	if d.Location != "ams1" || d.DCoT != "gold" || !slices.Equal(d.Hosts, []string{h1}) {
		t.Errorf("domain set d-fra --location ams1: got %+v, want d-fra at ams1, DCoT gold, with %s", d, h1)
	}
	trustackJSON(t, admin, &d, "manage", "domain", "set", "d-plain", "--capability", "ssd=yes", "--capability", "nvme=yes")
	d = clientDomain{} // json.Unmarshal would add to the maps there
	trustackJSON(t, admin, &d, "manage", "domain", "set", "d-plain", "--capability", "nvme=")
	if !maps.Equal(d.Capabilities, map[string]string{"ssd": "yes"}) || d.Source != "emergency" {
		t.Errorf("domain set d-plain --capability: got %+v, want capabilities ssd=yes (merged, nvme removed), source emergency", d)
	}
	var domains []struct {
		Name, Location string
		Hosts          []string
	}
	trustackJSON(t, admin, &domains, "manage", "domain", "list")
	if len(domains) != 3 || domains[0].Name != "d-ams" || domains[1].Name != "d-fra" || domains[1].Location != "ams1" || domains[2].Name != "d-plain" {
		t.Errorf("domain list: got %+v, want d-ams, d-fra (at ams1), d-plain", domains)
	}

	// Host properties.
	trustackOK(t, admin, "manage", "host", "add-properties", h1, "rack=r1", "ssd=yes")
	trustackOK(t, admin, "manage", "host", "add-properties", h1, "trust=gold", "--security")
	var props struct {
		Host                 string
		Properties, Security map[string]string
	}
	trustackJSON(t, admin, &props, "manage", "host", "get-properties", h1)
	if !maps.Equal(props.Properties, map[string]string{"rack": "r1", "ssd": "yes"}) || !maps.Equal(props.Security, map[string]string{"trust": "gold"}) {
		t.Errorf("host get-properties %s: got %+v", h1, props)
	}
	trustackFails(t, admin, []string{"nope"}, "manage", "host", "remove-properties", h1, "rack", "nope")
	props.Properties = nil
	trustackJSON(t, admin, &props, "manage", "host", "remove-properties", h1, "rack")
	if !maps.Equal(props.Properties, map[string]string{"ssd": "yes"}) {
		t.Errorf("host remove-properties %s rack: got %+v, want ssd=yes left", h1, props.Properties)
	}
	trustackFails(t, admin, []string{"KEY=VALUE"}, "manage", "host", "add-properties", h1, "novalue")

	// Requirement entries.
	trustackOK(t, admin, "manage", "requirement-entry", "create", "gpu", "--kind", "capability", "--description", "GPU model")
	trustackFails(t, admin, []string{"Nova", "(HTTP 400)"}, "manage", "requirement-entry", "create", "same_host", "--kind", "capability")
	trustackFails(t, admin, []string{"colour", "(HTTP 400)"}, "manage", "requirement-entry", "create", "paint", "--kind", "colour")
	var entries []struct{ Name, Kind string }
	trustackJSON(t, demo, &entries, "requirement", "entries")
	var names []string
	for _, e := range entries {
		names = append(names, e.Name+":"+e.Kind)
	}
	for _, want := range []string{"gpu:capability", "location:location", "isolation:isolation", "trust:trust"} {
		if !slices.Contains(names, want) {
			t.Errorf("requirement entries as a member: got %v, want %s among them", names, want)
		}
	}

	// A member may not manage ACaaS...
	for _, args := range [][]string{
		{"manage", "location", "create", "x", "--country", "DE"},
		{"manage", "domain", "list"},
		{"manage", "host", "get-properties", h1},
		{"manage", "requirement-entry", "create", "x", "--kind", "capability"},
	} {
		trustackFails(t, demo, []string{"not authorized to manage ACaaS", "(HTTP 403)"}, args...)
	}

	// ... but states its project's requirements.
	var reqs []clientRequirement
	trustackJSON(t, demo, &reqs, "requirement", "set", "location=DE", "gpu=a100")
	if len(reqs) != 2 || reqs[0].Entry != "gpu" || reqs[1].Entry != "location" || reqs[1].Value != "DE" || reqs[1].Locked {
		t.Fatalf("requirement set location=DE gpu=a100: got %+v, want both, unlocked", reqs)
	}
	project := reqs[0].Project
	trustackFails(t, demo, []string{"use change", "(HTTP 409)"}, "requirement", "set", "location=FR")
	trustackFails(t, demo, []string{"max_distance", "(HTTP 400)"}, "requirement", "set", "max_distance=fra1")
	trustackFails(t, demo, []string{"(HTTP 403)"}, "requirement", "list", "--project", "someone-else")
	trustackOK(t, demo, "requirement", "change", "location=NL")
	trustackOK(t, demo, "requirement", "unset", "gpu")

	// An operator's requirement is locked against the members.
	trustackJSON(t, admin, &reqs, "requirement", "set", "trust=gold", "--project", project)
	if len(reqs) != 2 || reqs[1].Entry != "trust" || !reqs[1].Locked || reqs[1].Project != project {
		t.Errorf("requirement set trust=gold --project %s as an operator: got %+v, want trust=gold locked", project, reqs)
	}
	locked := "Requirement trust of project " + project + " was set by an operator; only an operator can change it."
	trustackFails(t, demo, []string{locked, "(HTTP 403)"}, "requirement", "change", "trust=silver")
	trustackFails(t, demo, []string{locked, "(HTTP 403)"}, "requirement", "unset", "trust")
	trustackJSON(t, demo, &reqs, "requirement", "list")
	if len(reqs) != 2 || reqs[0].Entry != "location" || reqs[0].Value != "NL" || reqs[1].Entry != "trust" || reqs[1].Value != "gold" {
		t.Errorf("requirement list as a member: got %+v, want location=NL and trust=gold", reqs)
	}

	// Taking it all down again: what is in use cannot go first.
	trustackFails(t, admin, []string{project, "(HTTP 409)"}, "manage", "requirement-entry", "delete", "location")
	trustackOK(t, admin, "manage", "requirement-entry", "delete", "gpu")
	trustackFails(t, admin, []string{h2, "(HTTP 409)"}, "manage", "domain", "delete", "d-ams")
	trustackOK(t, admin, "manage", "domain", "remove-host", "d-ams", h2)
	trustackFails(t, admin, []string{"collaborator of d-fra", "(HTTP 409)"}, "manage", "domain", "delete", "d-ams")
	trustackOK(t, admin, "manage", "domain", "remove-collaborator", "d-fra", "d-ams")
	trustackOK(t, admin, "manage", "domain", "delete", "d-ams", "d-plain")
	trustackFails(t, admin, []string{"d-fra", "(HTTP 409)"}, "manage", "location", "delete", "ams1")
	trustackOK(t, admin, "manage", "location", "delete", "ber1", "fra1")
	trustackJSON(t, admin, &dists, "manage", "location", "distance", "list")
	if len(dists) != 0 {
		t.Errorf("location distance list after deleting ber1 and fra1: got %+v, want none, gone with them", dists)
	}

	aggregateCLI(t, admin, h1, h3)
}
