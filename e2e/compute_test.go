package e2e

import (
	"bytes"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// TestComputeCLI is the compute session of the issue, in today's syntax,
// with the Debian nova, glance and openstack clients against `trustack up`
// with three compute hosts: an image, a keypair, a server through its
// power states and its deletion, another with the OpenStack client, the
// flavors, the hypervisors and the console.
func TestComputeCLI(t *testing.T) {
	need(t, "nova", "glance", "openstack")
	c := startUp(t, "--nodes", "3")
	admin := c.openrc("openrc")
	home := t.TempDir()
	cli := func(name string, args ...string) (string, string, error) {
		t.Helper()
		return run(t, admin, home, nil, name, args...)
	}

	// glance image-create --name cirros ... < FILE
	path, data := imageFile(t, 1<<20)
	stdin, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	out := glance(t, admin, home, stdin, "image-create", "--name", "cirros", "--disk-format", "qcow2", "--container-format", "ovf", "--visibility", "public")
	imageID := field(out, "id")
	if field(out, "status") != "active" || field(out, "size") != fmt.Sprint(len(data)) || field(out, "visibility") != "public" {
		t.Fatalf("glance image-create < FILE: want an active public image of %d bytes, got\n%s", len(data), out)
	}
	if out := must(t, admin, "image", "list", "-f", "value", "-c", "ID", "-c", "Name", "-c", "Status"); out != imageID+" cirros active" {
		t.Errorf("openstack image list: got %q, want %q", out, imageID+" cirros active")
	}

	// nova keypair-add mykey > mykey.pem: the private key is the pair of
	// the public key kept.
	pem, stderr, err := cli("nova", "keypair-add", "mykey")
	if err != nil {
		t.Fatalf("nova keypair-add mykey: %v\n%s%s", err, pem, stderr)
	}
	if err := os.WriteFile(filepath.Join(home, "mykey.pem"), []byte(pem), 0o600); err != nil {
		t.Fatal(err)
	}
	priv, err := ssh.ParseRawPrivateKey([]byte(pem))
	if err != nil {
		t.Fatalf("nova keypair-add mykey > mykey.pem: not a private key (%v):\n%s", err, pem)
	}
	signer, ok := priv.(crypto.Signer)
	if !ok {
		t.Fatalf("nova keypair-add: private key of type %T", priv)
	}
	pub, err := ssh.NewPublicKey(signer.Public())
	if err != nil {
		t.Fatal(err)
	}
	kept := must(t, admin, "keypair", "show", "--public-key", "mykey")
	if f := strings.Fields(kept); len(f) < 2 || f[1] != strings.Fields(string(ssh.MarshalAuthorizedKey(pub)))[1] {
		t.Errorf("openstack keypair show --public-key mykey: got %q, want the public key of mykey.pem", kept)
	}

	// nova boot, and the power states, polled with nova show.
	novaShow := func(name string) (string, error) {
		out, stderr, err := cli("nova", "show", name)
		if err != nil {
			return stderr, err
		}
		return out, nil
	}
	waitStatus := func(name, want string) {
		t.Helper()
		eventually(t, 2*time.Minute, func() (bool, string) {
			out, err := novaShow(name)
			if err != nil {
				return false, out
			}
			return field(out, "status") == want && field(out, "OS-EXT-STS:task_state") == "-", out
		}, "nova show %s: want status %s and no task", name, want)
	}
	nova := func(args ...string) {
		t.Helper()
		if out, stderr, err := cli("nova", args...); err != nil {
			t.Fatalf("nova %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
		}
	}
	nova("boot", "--image", "cirros", "--flavor", "m1.small", "--key-name", "mykey", "vm1")
	waitStatus("vm1", "ACTIVE")
	out, _ = novaShow("vm1")
	if field(out, "flavor") != "m1.small (2)" || field(out, "image") != "cirros ("+imageID+")" || field(out, "key_name") != "mykey" {
		t.Errorf("nova show vm1: want flavor m1.small (2), image cirros (%s) and key mykey, got\n%s", imageID, out)
	}
	nova("pause", "vm1")
	waitStatus("vm1", "PAUSED")

	// An action the state does not allow is refused with 409 and says why.
	_, stderr, err = cli("nova", "pause", "vm1")
	if err == nil || !strings.Contains(stderr, "(HTTP 409)") || !strings.Contains(stderr, "while it is in vm_state paused") {
		t.Errorf("nova pause of a paused server: got %v %q, want a 409 that says it is paused", err, stderr)
	}
	waitStatus("vm1", "PAUSED")
	nova("unpause", "vm1")
	waitStatus("vm1", "ACTIVE")
	nova("suspend", "vm1")
	waitStatus("vm1", "SUSPENDED")
	nova("resume", "vm1")
	waitStatus("vm1", "ACTIVE")
	nova("delete", "vm1")
	eventually(t, 2*time.Minute, func() (bool, string) {
		out, err := novaShow("vm1")
		return err != nil && strings.Contains(out, "No server with a name or ID of 'vm1' exists"), out
	}, "nova show vm1 after nova delete: want no such server")
	if out, _, err := cli("nova", "list"); err != nil || strings.Contains(out, "vm1") {
		t.Errorf("nova list after nova delete vm1: %v\n%s", err, out)
	}

	// The same with the OpenStack client.
	var server map[string]any
	if err := json.Unmarshal([]byte(must(t, admin, "server", "create", "--image", "cirros", "--flavor", "m1.tiny", "--key-name", "mykey", "--wait", "vm2", "-f", "json")), &server); err != nil {
		t.Fatal(err)
	}
	if server["status"] != "ACTIVE" {
		t.Fatalf("openstack server create --wait vm2: status %v, want ACTIVE", server["status"])
	}
	var list []map[string]any
	if err := json.Unmarshal([]byte(must(t, admin, "server", "list", "-f", "json")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0]["Name"] != "vm2" || list[0]["Status"] != "ACTIVE" || list[0]["Image"] != "cirros" || list[0]["Flavor"] != "m1.tiny" {
		t.Errorf("openstack server list: got %v, want vm2 alone, ACTIVE, from cirros with m1.tiny", list)
	}
	if err := json.Unmarshal([]byte(must(t, admin, "server", "show", "vm2", "-f", "json")), &server); err != nil {
		t.Fatal(err)
	}
	if server["flavor"] != "m1.tiny (1)" || server["image"] != "cirros ("+imageID+")" || server["key_name"] != "mykey" ||
		!strings.HasPrefix(fmt.Sprint(server["OS-EXT-SRV-ATTR:host"]), "compute-") {
		t.Errorf("openstack server show vm2: want flavor m1.tiny (1), image cirros (%s), key mykey and a compute host, got %v", imageID, server)
	}

	// The console shows the guest booted, with mykey.
	console := must(t, admin, "console", "log", "show", "vm2")
	if !strings.Contains(console, "trustack-guest ready") || !strings.Contains(console, "trustack-guest key mykey: "+ssh.FingerprintLegacyMD5(pub)) {
		t.Errorf("openstack console log show vm2: want the guest ready with mykey (%s), got\n%s", ssh.FingerprintLegacyMD5(pub), console)
	}
	must(t, admin, "server", "delete", "--wait", "vm2")
	if out := must(t, admin, "server", "list", "-f", "value"); out != "" {
		t.Errorf("openstack server list after openstack server delete --wait vm2: got %q, want nothing", out)
	}

	// The project's usage over the last four weeks counts both servers,
	// deleted by now.
	var usage []map[string]any
	if err := json.Unmarshal([]byte(must(t, admin, "usage", "list", "-f", "json")), &usage); err != nil {
		t.Fatal(err)
	}
	project := must(t, admin, "project", "show", "admin", "-f", "value", "-c", "id")
	var names []string
	if len(usage) == 1 {
		servers, _ := usage[0]["Servers"].([]any) // -f json gives them as the API does
		for _, s := range servers {
			if s, _ := s.(map[string]any); s["state"] == "terminated" {
				names = append(names, fmt.Sprint(s["name"]))
			}
		}
	}
	slices.Sort(names)
	if len(usage) != 1 || usage[0]["Project"] != project || !slices.Equal(names, []string{"vm1", "vm2"}) {
		t.Errorf("openstack usage list: got %v, want project admin (%s) with vm1 and vm2, terminated", usage, project)
	}

	// Nova's five classic flavors.
	type flavor struct {
		ID, Name         string
		RAM, Disk, VCPUs int
		Ephemeral        int
		Public           bool `json:"Is Public"`
	}
	var flavors []flavor
	if err := json.Unmarshal([]byte(must(t, admin, "flavor", "list", "-f", "json")), &flavors); err != nil {
		t.Fatal(err)
	}
	want := []flavor{
		{"1", "m1.tiny", 512, 1, 1, 0, true},
		{"2", "m1.small", 2048, 20, 1, 0, true},
		{"3", "m1.medium", 4096, 40, 2, 0, true},
		{"4", "m1.large", 8192, 80, 4, 0, true},
		{"5", "m1.xlarge", 16384, 160, 8, 0, true},
	}
	if !slices.Equal(flavors, want) {
		t.Errorf("openstack flavor list:\n got %+v\nwant %+v", flavors, want)
	}

	// Hypervisors: the admin sees the three hosts up, a member may not look.
	var hypervisors []struct {
		Hostname string `json:"Hypervisor Hostname"`
		State    string
	}
	if err := json.Unmarshal([]byte(must(t, admin, "hypervisor", "list", "-f", "json")), &hypervisors); err != nil {
		t.Fatal(err)
	}
	var up []string
	for _, h := range hypervisors {
		if h.State == "up" {
			up = append(up, h.Hostname)
		}
	}
	slices.Sort(up)
	if !slices.Equal(up, []string{"compute-1", "compute-2", "compute-3"}) || len(hypervisors) != 3 {
		t.Errorf("openstack hypervisor list: got %+v, want compute-1 to compute-3, up", hypervisors)
	}
	if out, err := openstack(t, c.openrc("demo-openrc"), "hypervisor", "list"); err == nil || !strings.Contains(out, "(HTTP 403)") {
		t.Errorf("openstack hypervisor list as a member: got %v %q, want refused with 403", err, out)
	}
}

// TestTempestCompute runs Tempest 33's compute and image tests listed in
// testdata/tempest-compute-include.txt against `trustack up` with two
// compute hosts, with dynamic credentials (Tempest makes its projects and
// users as the admin, and each project's network, subnet and router with
// a gateway on the external network public), booting from two public
// images uploaded first. The configuration switches on what trustack
// serves and off what it does not, so that Tempest skips those tests for a
// stated reason.
func TestTempestCompute(t *testing.T) {
	need(t, "tempest", "openstack")
	c := startUp(t, "--nodes", "2")
	admin := c.openrc("openrc")
	path, _ := imageFile(t, 1<<20)
	var images []string
	for _, name := range []string{"cirros", "cirros-alt"} {
		images = append(images, must(t, admin, "image", "create", "--public", "--disk-format", "qcow2", "--container-format", "bare",
			"--file", path, "-f", "value", "-c", "id", name))
	}
	extra := fmt.Sprintf(`[auth]
use_dynamic_credentials = true
admin_username = admin
admin_password = %s
admin_project_name = admin
admin_domain_name = Default

[service_available]
cinder = false

[compute]
image_ref = %s
image_ref_alt = %s
flavor_ref = 1
flavor_ref_alt = 2
min_microversion = 2.1
max_microversion = 2.1
min_compute_nodes = 2
build_interval = 1

[compute-feature-enabled]
console_output = true
vnc_console = true
disk_config = true
enable_instance_password = true
pause = true
suspend = true
snapshot = true
# Tempest's name for "server metadata is writable"
xenapi_apis = true
# trustack's scheduler honours same_host and different_host hints
scheduler_enabled_filters = AvailabilityZoneFilter,ComputeFilter,ComputeCapabilitiesFilter,ImagePropertiesFilter,ServerGroupAntiAffinityFilter,ServerGroupAffinityFilter,SameHostFilter,DifferentHostFilter

[validation]
run_validation = false

[image-feature-enabled]
# trustack reserves os_glance_* as Glance does
os_glance_reserved = true
`, admin["OS_PASSWORD"], images[0], images[1]) + neutronConf(t, admin)
	ws := tempestWorkspace(t, admin["OS_AUTH_URL"], "", extra)
	include, err := filepath.Abs("testdata/tempest-compute-include.txt")
	if err != nil {
		t.Fatal(err)
	}
	tempest(t, ws, "--include-list", include, "--concurrency", "4")
}

// TestControllerRestartDuringBuilds kills the controller while it builds
// 100 servers on three compute hosts, each a `trustack agent` process of
// its own, and starts it again: every server ends ACTIVE or ERROR with a
// fault, none twice, and every ACTIVE server runs on exactly one host,
// the one the API names.
func TestControllerRestartDuringBuilds(t *testing.T) {
	need(t, "openstack")
	dir := t.TempDir()
	apiAddr, busAddr := freeAddr(t), freeAddr(t)
	conf := writeConfig(t, filepath.Join(dir, "controller.conf"), testConfig+
		"[DEFAULT]\ndata_dir = "+filepath.Join(dir, "controller")+"\n"+
		"[api]\nlisten = "+apiAddr+"\n"+
		"[bus]\nlisten = "+busAddr+"\n"+
		// Separate agent processes have no TPM here: TestAttestation
		// covers attesting hosts.
		"[attestation]\nenabled = no\n")
	if out, err := runTrustack("manage", "bootstrap", "--admin-password", "s3cret", "--config", conf); err != nil {
		t.Fatalf("trustack manage bootstrap: %v\n%s", err, out)
	}
	ctl := &cloud{t: t, dir: dir, addr: apiAddr, args: []string{"server", "--config", conf}}
	ctl.start("trustack server ready")
	hosts := []string{"host-1", "host-2", "host-3"}
	for _, h := range hosts {
		hdir := filepath.Join(dir, h)
		// Room for 100 m1.tiny servers on any two hosts.
		aconf := writeConfig(t, filepath.Join(dir, h+".conf"), "[DEFAULT]\ndata_dir = "+hdir+"\n"+"[attestation]\nenabled = no\n"+
			"[bus]\nurl = nats://"+busAddr+"\n"+
			"[agent]\nhost = "+h+"\n"+
			"[compute]\ndriver = fake\nheartbeat_interval = 1\nfake_vcpus = 64\nfake_memory_mb = 65536\n")
		if err := os.MkdirAll(hdir, 0o750); err != nil {
			t.Fatal(err)
		}
		a := &cloud{t: t, dir: hdir, args: []string{"agent", "--config", aconf}}
		a.start("trustack agent ready")
	}

	admin := map[string]string{
		"OS_AUTH_URL": "http://" + apiAddr + "/identity/v3", "OS_USERNAME": "admin", "OS_PASSWORD": "s3cret",
		"OS_PROJECT_NAME": "admin", "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default",
		"OS_IDENTITY_API_VERSION": "3",
	}
	compute := "http://" + apiAddr + "/compute/v2.1"
	tok := token(t, admin)
	liftQuotas(t, admin, compute, tok)
	path, _ := imageFile(t, 1<<20)
	image := must(t, admin, "image", "create", "--disk-format", "raw", "--container-format", "bare", "--file", path, "-f", "value", "-c", "id", "cirros")
	eventually(t, time.Minute, func() (bool, string) {
		hs := hypervisors(t, compute, tok)
		return len(hs) == 3 && hs["host-1"].State == "up" && hs["host-2"].State == "up" && hs["host-3"].State == "up", fmt.Sprint(hs)
	}, "os-hypervisors: want the three hosts up")

	// 100 builds at once, each a request of its own; the controller is
	// killed once some are ACTIVE. A request cut off by the kill is made
	// again after the restart, unless its server was made after all.
	const n = 100
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("build-%03d", i)
	}
	start := time.Now()
	var mu sync.Mutex
	var cutOff []string
	var wg sync.WaitGroup
	for _, name := range names {
		wg.Go(func() {
			status, _, err := createServer(compute, tok, tinyServer(name, image))
			if err != nil || status != http.StatusAccepted {
				mu.Lock()
				cutOff = append(cutOff, name)
				mu.Unlock()
			}
		})
	}
	var activeAtKill int
	for activeAtKill < 20 {
		if time.Since(start) > 2*time.Minute {
			t.Fatalf("only %d servers ACTIVE after 2 minutes", activeAtKill)
		}
		var l struct{ Servers []struct{ ID string } }
		if resp, err := getJSON(compute+"/servers?status=ACTIVE", tok, &l); err == nil && resp == http.StatusOK {
			activeAtKill = len(l.Servers)
		}
		time.Sleep(20 * time.Millisecond)
	}
	ctl.signal(syscall.SIGKILL)
	killed := time.Since(start)
	wg.Wait()
	ctl.start("trustack server ready")
	restarted := time.Since(start)
	t.Logf("controller killed %v after the first request, with %d servers ACTIVE and %d requests cut off; serving again after %v",
		killed.Round(time.Millisecond), activeAtKill, len(cutOff), restarted.Round(time.Millisecond))

	tok = token(t, admin)
	for _, name := range cutOff {
		var l struct{ Servers []struct{ ID string } }
		if resp, err := getJSON(compute+"/servers?name="+url.QueryEscape("^"+name+"$"), tok, &l); err != nil || resp != http.StatusOK {
			t.Fatalf("look for %s: %v %d", name, err, resp)
		}
		if len(l.Servers) == 0 {
			if status, _, err := createServer(compute, tok, tinyServer(name, image)); err != nil || status != http.StatusAccepted {
				t.Fatalf("create %s again: %v %d", name, err, status)
			}
		}
	}

	// Every build ends, ACTIVE or ERROR with a fault.
	servers := waitBuilds(t, compute, tok, 3*time.Minute)
	t.Logf("all builds ended %v after the first request", time.Since(start).Round(time.Millisecond))
	recovered := strings.Count(ctl.log(), "recovering server task")
	if recovered == 0 {
		t.Logf("the restarted controller found no build in progress: the kill came too late to test recovery")
	}

	var got []string
	active, failed := map[string]serverDetail{}, 0
	onHost := map[string]int{}
	for _, s := range servers {
		got = append(got, s.Name)
		if s.Host != nil && *s.Host != "" {
			onHost[*s.Host]++
		}
		switch s.Status {
		case "ACTIVE":
			active[s.ID] = s
			if s.Host == nil || !slices.Contains(hosts, *s.Host) {
				t.Errorf("server %s (%s) is ACTIVE on host %v, want one of %v", s.Name, s.ID, s.Host, hosts)
			}
		case "ERROR":
			failed++
			if s.Fault == nil || s.Fault.Message == "" {
				t.Errorf("server %s (%s) is ERROR without a fault message", s.Name, s.ID)
			} else {
				t.Logf("server %s (%s) is ERROR: %s", s.Name, s.ID, s.Fault.Message)
			}
		default:
			t.Errorf("server %s (%s) is %s, want ACTIVE or ERROR", s.Name, s.ID, s.Status)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, names) {
		t.Errorf("servers after the restart: got %d named %v, want %d named build-000 to build-%03d, each once", len(got), got, n, n-1)
	}
	t.Logf("%d servers ACTIVE, %d ERROR; the restarted controller recovered %d tasks in progress", len(active), failed, recovered)

	// The controller's accounts of each host agree with its servers.
	hs := hypervisors(t, compute, tok)
	running := 0
	for _, h := range hosts {
		running += hs[h].RunningVMs
		if hs[h].RunningVMs != onHost[h] {
			t.Errorf("os-hypervisors: %s runs %d servers, but %d servers are placed on it", h, hs[h].RunningVMs, onHost[h])
		}
	}
	if running != len(active) {
		t.Errorf("os-hypervisors: %d servers running in all, want the %d ACTIVE", running, len(active))
	}

	// And so do the hosts themselves.
	stateFiles := map[string]string{}
	for _, h := range hosts {
		stateFiles[h] = filepath.Join(dir, h, "host", "fake-hypervisor.json")
	}
	checkHypervisors(t, stateFiles, active)
}

// checkHypervisors checks what the fake hypervisors run, by the state file
// each keeps (as `virsh list` would show on a real host) by host name: each
// ACTIVE server on exactly one host, the one the API names, and nothing
// else.
func checkHypervisors(t testing.TB, stateFiles map[string]string, active map[string]serverDetail) {
	t.Helper()
	runs := map[string][]string{}
	for h, path := range stateFiles {
		b, err := os.ReadFile(path)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		var vms map[string]json.RawMessage
		if len(b) > 0 {
			if err := json.Unmarshal(b, &vms); err != nil {
				t.Fatalf("%s's state: %v", h, err)
			}
		}
		for id := range vms {
			runs[id] = append(runs[id], h)
		}
	}
	for id, s := range active {
		if where := runs[id]; len(where) != 1 || where[0] != *s.Host {
			t.Errorf("ACTIVE server %s (%s) runs on %v, want on %s alone", s.Name, id, where, *s.Host)
		}
	}
	for id, where := range runs {
		if _, ok := active[id]; !ok {
			t.Errorf("server %s runs on %v but is not ACTIVE", id, where)
		}
	}
}

// liftQuotas lifts the quotas of the admin's project that bound how many
// servers it may have.
func liftQuotas(t testing.TB, admin map[string]string, compute, tok string) {
	t.Helper()
	var projects struct{ Projects []struct{ ID string } }
	api(t, "GET", admin["OS_AUTH_URL"]+"/projects?name="+admin["OS_PROJECT_NAME"], tok, nil, &projects)
	if len(projects.Projects) != 1 {
		t.Fatalf("project %s: got %v", admin["OS_PROJECT_NAME"], projects)
	}
	if resp := api(t, "PUT", compute+"/os-quota-sets/"+projects.Projects[0].ID, tok, map[string]any{"quota_set": map[string]any{
		"instances": -1, "cores": -1, "ram": -1, "server_groups": -1, "server_group_members": -1}}, nil); resp.StatusCode != 200 {
		t.Fatalf("lift the quotas of project %s: status %d", admin["OS_PROJECT_NAME"], resp.StatusCode)
	}
	// Each server has a port, which Neutron's quota counts too.
	network := strings.Replace(compute, "/compute/v2.1", "/network/v2.0", 1)
	if resp := api(t, "PUT", network+"/quotas/"+projects.Projects[0].ID, tok, map[string]any{"quota": map[string]any{"port": -1}}, nil); resp.StatusCode != 200 {
		t.Fatalf("lift the port quota of project %s: status %d", admin["OS_PROJECT_NAME"], resp.StatusCode)
	}
}

// waitBuilds waits until the servers the admin sees have all ended their
// builds and tasks, and returns them.
func waitBuilds(t testing.TB, compute, tok string, timeout time.Duration) []serverDetail {
	t.Helper()
	var servers []serverDetail
	eventually(t, timeout, func() (bool, string) {
		var l struct{ Servers []serverDetail }
		if resp, err := getJSON(compute+"/servers/detail", tok, &l); err != nil || resp != http.StatusOK {
			return false, fmt.Sprint(resp, err)
		}
		servers = l.Servers
		var busy []string
		for _, s := range servers {
			if s.Status == "BUILD" || s.TaskState != nil {
				busy = append(busy, fmt.Sprintf("%s (%s) %s, task %s, on %s", s.Name, s.ID, s.Status, deref(s.TaskState), deref(s.Host)))
			}
		}
		return len(busy) == 0, fmt.Sprintf("%d of %d servers still building or in a task: %s", len(busy), len(servers), strings.Join(busy[:min(len(busy), 10)], "; "))
	}, "servers: want every build ended")
	return servers
}

// serverDetail is what the tests read of a server, as the admin sees it.
type serverDetail struct {
	ID, Name, Status string
	TaskState        *string `json:"OS-EXT-STS:task_state"`
	Host             *string `json:"OS-EXT-SRV-ATTR:host"`
	Fault            *struct{ Message string }
	Flavor           struct{ ID string }
}

// hypervisor is what the tests read of os-hypervisors/detail.
type hypervisor struct {
	State        string
	RunningVMs   int `json:"running_vms"`
	VCPUs        int
	VCPUsUsed    int `json:"vcpus_used"`
	MemoryMB     int `json:"memory_mb"`
	MemoryMBUsed int `json:"memory_mb_used"`
	LocalGB      int `json:"local_gb"`
	LocalGBUsed  int `json:"local_gb_used"`
}

// hypervisors returns os-hypervisors/detail by hostname.
func hypervisors(t testing.TB, compute, tok string) map[string]hypervisor {
	t.Helper()
	var l struct {
		Hypervisors []struct {
			Hostname string `json:"hypervisor_hostname"`
			hypervisor
		}
	}
	if resp := api(t, "GET", compute+"/os-hypervisors/detail", tok, nil, &l); resp.StatusCode != 200 {
		t.Fatalf("os-hypervisors/detail: status %d", resp.StatusCode)
	}
	out := map[string]hypervisor{}
	for _, h := range l.Hypervisors {
		out[h.Hostname] = h.hypervisor
	}
	return out
}

// tinyServer is the request body of an m1.tiny server.
func tinyServer(name, image string) map[string]any {
	return map[string]any{"server": map[string]any{"name": name, "imageRef": image, "flavorRef": "1"}}
}

// createServer posts body to /servers and returns the status and the new
// server's ID; unlike api, it may run in any goroutine and returns network
// errors.
func createServer(compute, tok string, body map[string]any) (int, string, error) {
	b, _ := json.Marshal(body)
	req, err := http.NewRequest("POST", compute+"/servers", bytes.NewReader(b))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Auth-Token", tok)
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var created struct{ Server struct{ ID string } }
	err = json.NewDecoder(resp.Body).Decode(&created)
	if resp.StatusCode != http.StatusAccepted {
		err = nil // the body is an error message
	}
	return resp.StatusCode, created.Server.ID, err
}

// getJSON is a GET that returns network errors, for use against a
// controller that may be down.
func getJSON(u, tok string, out any) (int, error) {
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("X-Auth-Token", tok)
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode == http.StatusOK {
		return resp.StatusCode, json.Unmarshal(b, out)
	}
	return resp.StatusCode, nil
}

var httpClient = &http.Client{Timeout: time.Minute}

// writeConfig writes a configuration file and returns its path.
func writeConfig(t testing.TB, path, text string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// run runs a command-line client with env's OS_ variables, its home in
// home and stdin as its standard input (nil for none), and returns its
// standard output and its error output.
func run(t testing.TB, env map[string]string, home string, stdin io.Reader, name string, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(environ(env), "HOME="+home)
	cmd.Stdin = stdin
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	err := cmd.Run()
	return out.String(), stderr.String(), err
}

// eventually calls cond until it holds, failing the test with what cond
// last said if it does not within timeout.
func eventually(t testing.TB, timeout time.Duration, cond func() (bool, string), format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v; last:\n%s", fmt.Sprintf(format, args...), timeout, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// deref is *p, "" for nil.
func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
