package linux

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/internal/nettest"
	"github.com/trustack/trustack/wire"
)

var public = wire.Segment{Type: trustack.NetworkFlat, PhysicalNetwork: "physnet1", MTU: 1500}

// TestRoutersJoinTenantsToTheOutside: a guest reaches the outside through
// its router, sourced from the router's gateway address; the outside
// reaches the guest through its floating address, and no longer once it
// is removed; removing the router removes its namespace.
func TestRoutersJoinTenantsToTheOutside(t *testing.T) {
	f := newFabric(t)
	ns := f.host()
	n := newSwitchedNetwork(t, ns, t.TempDir())
	// The outside: the internet's side of the external network.
	run(t, "ip", "-n", f.ns, "addr", "add", "172.24.4.1/24", "dev", "phys")

	a := port("aaaaaaaa-0000-4000-8000-0000000000a4", "net-1", local, "fa:16:3e:00:04:01")
	a.Addresses = []wire.Address{{SubnetID: "subnet-1", Address: "10.4.0.10", CIDR: "10.4.0.0/24", Gateway: "10.4.0.1"}}
	plugAll(t, n, a)
	ga := newGuest(t, ns, a, "10.4.0.10/24")
	run(t, "ip", "-n", ga.ns, "route", "add", "default", "via", "10.4.0.1")

	inside := port("11111111-0000-4000-8000-000000000001", "net-1", local, "fa:16:3e:00:04:11")
	inside.Addresses = []wire.Address{{SubnetID: "subnet-1", Address: "10.4.0.1", CIDR: "10.4.0.0/24"}}
	gateway := port("22222222-0000-4000-8000-000000000002", "public", public, "fa:16:3e:00:04:22")
	gateway.Addresses = []wire.Address{{SubnetID: "public-v4", Address: "172.24.4.10", CIDR: "172.24.4.0/24", Gateway: "172.24.4.1"}}
	n.SetMetadataSource(func(_ context.Context, routerID, address, path string) ([]byte, error) {
		if path != "/latest/meta-data/instance-id" {
			return nil, trustack.Errorf(trustack.ENOTFOUND, "no %s", path)
		}
		return []byte("asked " + routerID + " for " + address), nil
	})
	r := wire.Router{ID: "router-1", Interfaces: []wire.Port{inside}, Gateway: &gateway, SNAT: true}
	if err := n.SetRouter(ctx, r); err != nil {
		t.Fatal(err)
	}
	fetch := func(path string) string {
		out, _ := exec.Command("ip", "netns", "exec", ga.ns, "curl", "-s", "-m", "3", "-w", " %{http_code}", "http://169.254.169.254"+path).Output()
		return string(out)
	}
	if got := fetch("/latest/meta-data/instance-id"); got != "asked router-1 for 10.4.0.10 200" {
		t.Errorf("the guest's metadata request got %q, want the source's answer for its router and address", got)
	}
	if got := fetch("/nothing"); !strings.HasSuffix(got, " 404") {
		t.Errorf("a metadata request for nothing got %q, want 404", got)
	}
	seen := nettest.Capture(t, f.ns, "phys", "icmp")
	if !ga.pings("172.24.4.1") {
		t.Errorf("the guest cannot reach the outside through its router")
	}
	if got := seen(); !strings.Contains(got, "172.24.4.10 > 172.24.4.1") {
		t.Errorf("the guest's ping did not leave from the router's gateway address; tcpdump saw:\n%s", got)
	}
	outside := &guest{ns: f.ns}
	if outside.pings("172.24.4.20") {
		t.Errorf("the outside reaches a floating address not yet given")
	}
	r.FloatingIPs = []wire.FloatingIP{{Address: "172.24.4.20", FixedAddress: "10.4.0.10", PortID: a.ID}}
	if err := n.SetRouter(ctx, r); err != nil {
		t.Fatal(err)
	}
	if !outside.pings("172.24.4.20") {
		t.Errorf("the outside cannot reach the guest through its floating address")
	}
	seen = nettest.Capture(t, f.ns, "phys", "icmp")
	ga.pings("172.24.4.1")
	if got := seen(); !strings.Contains(got, "172.24.4.20 > 172.24.4.1") {
		t.Errorf("the guest's ping did not leave from its floating address; tcpdump saw:\n%s", got)
	}
	r.FloatingIPs = nil
	if err := n.SetRouter(ctx, r); err != nil {
		t.Fatal(err)
	}
	if outside.pings("172.24.4.20") {
		t.Errorf("the outside still reaches the guest after its floating address was removed")
	}
	if err := n.RemoveRouter(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/run/netns/" + n.routerNamespace(r.ID)); !os.IsNotExist(err) {
		t.Errorf("the router's namespace is still there after it was removed (%v)", err)
	}
	if ga.pings("172.24.4.1") {
		t.Errorf("the guest reaches the outside after its router was removed")
	}
}
