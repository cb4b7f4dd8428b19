package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/bus"
	"github.com/trustack/trustack/dcc"
	"github.com/trustack/trustack/tpm"
	"github.com/trustack/trustack/wire"
)

// attestation is a host's line of `trustack manage host list -f json`.
type attestation struct {
	Host      string `json:"Host"`
	State     string `json:"State"`
	Whitelist string `json:"White-list"`
	Mode      string `json:"Mode"`
	Reason    string `json:"Reason"` // the first, if not trusted
}

// TestAttestation runs `trustack up --nodes 3` with a real swtpm per host,
// each measuring in userspace a file of its own directory: every host
// registers its TPM and is attested. The operator takes the white-list
// baseline from a known-good host, puts the hosts in a domain whose DCoT
// it is, and a member's server that requires trust=baseline boots on one
// of them. When the file measured on that host changes, the host is found
// untrusted within an attestation interval, leaves scheduling, and the
// server runs on another trusted host of the domain; putting the file
// back does not bring the host back.
//
// Meanwhile an agent holding the credentials of another host speaks for
// the server's host (see spoof).
func TestAttestation(t *testing.T) {
	need(t, "openstack", "swtpm", "swtpm_setup")
	busAddr := freeAddr(t)
	c := startUpWith(t, "[attestation]\ninterval = 3\nmeasure_interval = 1\nmeasure_files = {host_dir}/app.bin\n[bus]\nlisten = "+busAddr+"\n", "--nodes", "3")
	admin, demo := c.openrc("openrc"), c.openrc("demo-openrc")
	manage := func(args ...string) string {
		t.Helper()
		return trustackOK(t, admin, append([]string{"manage"}, args...)...)
	}
	hosts := func() map[string]attestation {
		t.Helper()
		var list []attestation
		if err := json.Unmarshal([]byte(manage("host", "list", "-f", "json")), &list); err != nil {
			t.Fatal(err)
		}
		out := map[string]attestation{}
		for _, a := range list {
			out[a.Host] = a
		}
		return out
	}
	all := []string{"compute-1", "compute-2", "compute-3"}
	allAre := func(state, whitelist string) func() (bool, string) {
		return func() (bool, string) {
			got := hosts()
			for _, h := range all {
				if got[h].State != state || got[h].Whitelist != whitelist || got[h].Mode != "userspace" {
					return false, fmt.Sprintf("%+v", got)
				}
			}
			return true, ""
		}
	}
	eventually(t, 30*time.Second, allAre("trusted", ""), "all hosts registered and trusted, measured in userspace")

	// Each host runs the same application; the measurer sees it within
	// a second and has the host attested again at once.
	app := func(host string) string { return filepath.Join(c.dir, "data", "hosts", host, "app.bin") }
	for _, h := range all {
		if err := os.WriteFile(app(h), []byte("application v1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// The white-list, from compute-1 once it measured its file; the
	// other hosts' copies added to it through export and import.
	var wl struct {
		Name          string              `json:"name"`
		Files         map[string][]string `json:"files"`
		BootAggregate string              `json:"boot_aggregate"`
	}
	eventually(t, 20*time.Second, func() (bool, string) {
		manage("whitelist", "create", "baseline", "--from-host", "compute-1")
		if err := json.Unmarshal([]byte(manage("whitelist", "export", "baseline")), &wl); err != nil {
			t.Fatal(err)
		}
		if len(wl.Files[app("compute-1")]) == 1 {
			return true, ""
		}
		manage("whitelist", "delete", "baseline")
		return false, fmt.Sprintf("%+v", wl)
	}, "a white-list taken from compute-1 allows its application")
	if !strings.HasPrefix(wl.BootAggregate, "sha256:") || len(wl.Files) < 2 {
		t.Errorf("white-list from compute-1: got %+v, want its boot aggregate, the trustack binary and app.bin", wl)
	}
	digest := wl.Files[app("compute-1")]
	for _, h := range all[1:] {
		wl.Files[app(h)] = digest
	}
	b, _ := json.Marshal(wl)
	file := filepath.Join(c.dir, "baseline.json")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	manage("whitelist", "import", file)

	manage("location", "create", "Berlin", "--country", "DE")
	manage("domain", "create", "de", "--location", "Berlin", "--dcot", "baseline")
	for _, h := range all {
		manage("domain", "add-host", "de", h)
	}
	eventually(t, 30*time.Second, allAre("trusted", "baseline"), "all hosts trusted against white-list baseline")
	eventually(t, 10*time.Second, func() (bool, string) {
		out := manage("domain", "show", "de")
		return strings.Contains(out, "held by 3 of 3 hosts"), out
	}, "domain de's DCoT held by its three hosts")

	path, _ := imageFile(t, 4096)
	must(t, admin, "image", "create", "--file", path, "--disk-format", "qcow2", "--container-format", "bare", "--public", "cirros")
	out := must(t, demo, "server", "create", "--image", "cirros", "--flavor", "m1.tiny", "--hint", "trust=baseline", "--wait", "vm1", "-f", "value", "-c", "id")
	id := strings.TrimSpace(out)
	victim := hostOf(t, admin, id)
	spoof(t, c, busAddr, victim, id)
	var shown struct {
		Status string `json:"status"`
		Power  any    `json:"OS-EXT-STS:power_state"`
	}
	if err := json.Unmarshal([]byte(must(t, admin, "server", "show", id, "-f", "json")), &shown); err != nil {
		t.Fatal(err)
	}
	if power := fmt.Sprint(shown.Power); shown.Status != "ACTIVE" || power != "1" && power != "Running" {
		t.Errorf("server %s after another host said its host stopped it: got %+v, want ACTIVE and running", id, shown)
	}
	if events := manage("host", "events", victim); strings.Contains(events, "spoofed") {
		t.Errorf("events of host %s: want none spoofed, the spoofs are the sender's:\n%s", victim, events)
	}

	// The application on the server's host changes.
	if err := os.WriteFile(app(victim), []byte("application v1, patched by an intruder\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	changed := time.Now()
	eventually(t, 20*time.Second, func() (bool, string) {
		a := hosts()[victim]
		return a.State == "revoked" && strings.Contains(a.Reason, app(victim)), fmt.Sprintf("%+v", a)
	}, "host %s untrusted, naming its changed file", victim)
	t.Logf("host %s found untrusted %s after its file changed (interval 3 s)", victim, time.Since(changed).Round(100*time.Millisecond))
	services := must(t, admin, "compute", "service", "list", "--host", victim, "-f", "value", "-c", "Status")
	if strings.TrimSpace(services) != "disabled" {
		t.Errorf("compute service of untrusted host %s: got %q, want disabled", victim, services)
	}
	eventually(t, 60*time.Second, func() (bool, string) {
		s, err := sdkOf(t, admin).server(id)
		return err == nil && s.Host != victim && s.Status == "ACTIVE", fmt.Sprint(s, err)
	}, "server %s migrated off host %s, ACTIVE", id, victim)
	if h := hostOf(t, admin, id); !slices.Contains(all, h) {
		t.Errorf("server %s on host %q, want a host of domain de", id, h)
	}
	events := manage("host", "events", victim)
	for _, want := range []string{"registered", "untrusted", "revoked"} {
		if !strings.Contains(events, want) {
			t.Errorf("events of host %s: want %s in\n%s", victim, want, events)
		}
	}

	// The file put back: its old measurement is in the log already, so
	// nothing new is measured, and the log still holds the intruder's.
	if err := os.WriteFile(app(victim), []byte("application v1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(4 * 3 * time.Second)
	if a := hosts()[victim]; a.State == "trusted" {
		t.Errorf("host %s trusted again after its file was put back, without registering again: %+v", victim, a)
	}
	services = must(t, admin, "compute", "service", "list", "--host", victim, "-f", "value", "-c", "Status")
	if strings.TrimSpace(services) != "disabled" {
		t.Errorf("compute service of host %s after its file was put back: got %q, want disabled", victim, services)
	}
	out = must(t, demo, "server", "create", "--image", "cirros", "--flavor", "m1.tiny", "--wait", "vm2", "-f", "value", "-c", "id")
	if h := hostOf(t, admin, strings.TrimSpace(out)); h == victim {
		t.Errorf("a new server landed on revoked host %s", victim)
	}
	// With no server left, its agent is off the bus. It tries to register
	// again, refused while the host is revoked, until an operator forgets
	// the host; then it registers by itself. Its log still holds the
	// intruder's measurement (a reboot would clear it), so it stays out.
	eventually(t, 30*time.Second, func() (bool, string) {
		return strings.Contains(c.log(), "the bus refused this host"), ""
	}, "revoked host %s's agent refused by the bus", victim)
	eventually(t, 30*time.Second, func() (bool, string) {
		events := manage("host", "events", victim)
		return strings.Contains(events, "was revoked for failing attestation; once it is fixed, an operator forgets it"), events
	}, "revoked host %s's new registration refused", victim)
	manage("host", "forget", victim)
	eventually(t, 90*time.Second, func() (bool, string) {
		events := manage("host", "events", victim)
		return strings.Contains(events, "registered its TPM"), events
	}, "host %s registered again by itself once forgotten", victim)
	eventually(t, 30*time.Second, func() (bool, string) {
		a := hosts()[victim]
		return a.State == "untrusted" || a.State == "revoked", fmt.Sprintf("%+v", a)
	}, "host %s, registered again, untrusted for the intruder's measurement in its log", victim)
}

// spoof registers a host "impostor" with a TPM of the cloud's
// manufacturer, and has its agent, on the bus with its credentials,
// speak for host victim, whose server is serverID: on its own subjects,
// crafted by hand, it says that victim stopped the server, beats for
// victim and says that victim measured something new; on victim's
// subjects, through the agents' client, it says the same. The first are
// dropped (the power change answered forbidden) and recorded as the
// impostor's events, each naming victim; the bus refuses the others.
func spoof(t *testing.T, c *cloud, busAddr, victim, serverID string) {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := tpm.Manufacture(ctx, filepath.Join(dir, "swtpm"), filepath.Join(c.dir, "data", "swtpm-ca")); err != nil {
		t.Fatal(err)
	}
	addr, stop, err := tpm.Start(context.Background(), filepath.Join(dir, "swtpm"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop() })
	d, err := dcc.Open(dcc.Config{Host: "impostor", Dir: dir, TPM: addr, KernelLog: filepath.Join(dir, "no-kernel-log")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	conn, err := d.Join(ctx, func(opts ...bus.Option) (*bus.Conn, error) {
		return bus.Connect("nats://"+busAddr, "impostor", opts...)
	})
	if err != nil {
		t.Fatalf("the impostor registers: %v", err)
	}
	t.Cleanup(conn.Close)
	if _, err := d.Serve(conn); err != nil {
		t.Fatal(err)
	}

	stopped := wire.PowerEvent{Host: victim, ServerID: serverID, Power: trustack.PowerShutdown, Reason: "spoofed"}
	own := "trustack.from.impostor."
	for what, event := range map[string]any{"heartbeat": map[string]string{"host": victim}, "measured": map[string]string{"host": victim}} {
		if err := conn.Publish(own+what, event); err != nil {
			t.Fatal(err)
		}
	}
	if err := conn.Request(ctx, own+"power", stopped, nil); trustack.ErrorCode(err) != trustack.EFORBIDDEN {
		t.Errorf("the impostor's power change of %s's server: got %v, want %s", victim, err, trustack.EFORBIDDEN)
	}
	short, cancelShort := context.WithTimeout(ctx, time.Second)
	defer cancelShort()
	if err := wire.NewControllers(conn).PowerChanged(short, stopped); trustack.ErrorCode(err) != trustack.EUNAVAILABLE {
		t.Errorf("the impostor's power change on %s's subject: got %v, want no answer (%s)", victim, err, trustack.EUNAVAILABLE)
	}
	if err := wire.NewControllers(conn).Heartbeat(victim); err != nil {
		t.Fatal(err)
	}
	if err := wire.NewVerifiers(conn).Measured(victim); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() (bool, string) {
		events := trustackOK(t, c.openrc("openrc"), "manage", "host", "events", "impostor")
		for _, what := range []string{"heartbeat", "power", "measured"} {
			if !strings.Contains(events, "Host impostor sent a "+what+" naming host "+victim) {
				return false, events
			}
		}
		return strings.Count(events, "spoofed") == 3, events
	}, "three spoofed events of the impostor, naming %s", victim)
}
