package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// splitCloud is a cloud as operators run it on several machines: a
// controller (`trustack server`) and hosts, each a `trustack agent`
// process of its own that can be killed and started again.
type splitCloud struct {
	t        testing.TB
	dir      string
	ctl      *cloud
	api, bus string // the controller's API and bus addresses
	// buses are the bus addresses of every controller, when there are
	// several; agents list them all.
	buses  []string
	admin  map[string]string
	agents map[string]*cloud
	tpms   map[string]string // by host, the address of its swtpm, for hosts that attest
}

// startSplit starts a controller, bootstrapped, with conf added to its
// configuration; it has no hosts yet.
func startSplit(t testing.TB, conf string) *splitCloud {
	t.Helper()
	return startSplitOn(t, "127.0.0.1", conf)
}

// startSplitOn is startSplit with the controller's API and bus on an
// address of this machine's.
func startSplitOn(t testing.TB, ip, conf string) *splitCloud {
	t.Helper()
	s := &splitCloud{t: t, dir: t.TempDir(), api: freeAddrOn(t, ip), bus: freeAddrOn(t, ip), agents: map[string]*cloud{}}
	file := writeConfig(t, filepath.Join(s.dir, "controller.conf"), testConfig+
		"[DEFAULT]\ndata_dir = "+filepath.Join(s.dir, "controller")+"\n"+
		"[api]\nlisten = "+s.api+"\n"+
		"[bus]\nlisten = "+s.bus+"\n"+
		// Separate agent processes have no TPM here: TestAttestation
		// covers attesting hosts.
		"[attestation]\nenabled = no\n"+conf)
	if out, err := runTrustack("manage", "bootstrap", "--admin-password", "s3cret", "--config", file); err != nil {
		t.Fatalf("trustack manage bootstrap: %v\n%s", err, out)
	}
	s.ctl = &cloud{t: t, dir: s.dir, addr: s.api, args: []string{"server", "--config", file}}
	s.ctl.start("trustack server ready")
	s.admin = map[string]string{
		"OS_AUTH_URL": "http://" + s.api + "/identity/v3", "OS_USERNAME": "admin", "OS_PASSWORD": "s3cret",
		"OS_PROJECT_NAME": "admin", "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default",
		"OS_IDENTITY_API_VERSION": "3",
	}
	return s
}

// startAgent starts the agent of the host named name, with conf added to
// its configuration (its [compute] and [volume] sections), and returns
// it; it keeps its state in hostDir(name).
func (s *splitCloud) startAgent(name, conf string) *cloud {
	s.t.Helper()
	dir := filepath.Join(s.dir, name)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		s.t.Fatal(err)
	}
	attestation := "[attestation]\nenabled = no\n"
	if addr, ok := s.tpms[name]; ok {
		attestation = "[attestation]\nenabled = yes\ntpm = " + addr + "\n"
	}
	file := writeConfig(s.t, filepath.Join(s.dir, name+".conf"), "[DEFAULT]\ndata_dir = "+dir+"\n"+
		attestation+
		"[bus]\nurl = "+s.busURL()+"\n"+
		"[agent]\nhost = "+name+"\n"+conf)
	a := &cloud{t: s.t, dir: dir, args: []string{"agent", "--config", file}}
	a.start("trustack agent ready")
	s.agents[name] = a
	return a
}

// busURL is where agents find the bus: every controller's address.
func (s *splitCloud) busURL() string {
	buses := s.buses
	if len(buses) == 0 {
		buses = []string{s.bus}
	}
	urls := make([]string, len(buses))
	for i, b := range buses {
		urls[i] = "nats://" + b
	}
	return strings.Join(urls, ",")
}

// hostDir is the directory of a host's state: its volumes are in
// volumes/ there, its guests in qemu/.
func (s *splitCloud) hostDir(name string) string { return filepath.Join(s.dir, name, "host") }

// volumeURL is the block storage API's root.
func (s *splitCloud) volumeURL() string { return "http://" + s.api + "/volume/v3" }

// waitStorageUp waits until the volume services of the named hosts are
// up, as an administrator lists them.
func (s *splitCloud) waitStorageUp(tok string, hosts ...string) {
	s.t.Helper()
	eventually(s.t, time.Minute, func() (bool, string) {
		var l struct {
			Services []struct{ Host, State string }
		}
		if code, err := getJSON(s.volumeURL()+"/os-services", tok, &l); err != nil || code != http.StatusOK {
			return false, fmt.Sprint(code, err)
		}
		up := 0
		for _, svc := range l.Services {
			host, _, _ := strings.Cut(svc.Host, "@")
			if slices.Contains(hosts, host) && svc.State == "up" {
				up++
			}
		}
		return up == len(hosts), fmt.Sprint(l.Services)
	}, "the volume services of %v up", hosts)
}

// storageHost is the configuration of a host that keeps volumes as
// files and runs no real guests, beating every second.
const storageHost = "[volume]\nbackends = file\n[compute]\ndriver = fake\nheartbeat_interval = 1\n"

// volumeDetail is what the tests read of a volume, as an administrator
// sees it.
type volumeDetail struct {
	ID, Name, Status string
	Size             int
	Host             string `json:"os-vol-host-attr:host"`
}

// volumes returns the volumes of every project, by ID.
func (s *splitCloud) volumes(tok string) (map[string]volumeDetail, error) {
	var l struct{ Volumes []volumeDetail }
	code, err := getJSON(s.volumeURL()+"/volumes/detail?all_tenants=1", tok, &l)
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("GET /volumes/detail: status %d", code)
	}
	out := map[string]volumeDetail{}
	for _, v := range l.Volumes {
		out[v.ID] = v
	}
	return out, err
}

// createVolume asks for a volume of 1 GiB, from an image unless image is
// "", and returns its ID.
func (s *splitCloud) createVolume(tok, name, image string) string {
	s.t.Helper()
	body := map[string]any{"size": 1, "name": name}
	if image != "" {
		body["imageRef"] = image
	}
	var created struct{ Volume volumeDetail }
	if resp := api(s.t, "POST", s.volumeURL()+"/volumes", tok, map[string]any{"volume": body}, &created); resp.StatusCode != http.StatusAccepted {
		s.t.Fatalf("create volume %s: status %d", name, resp.StatusCode)
	}
	return created.Volume.ID
}

// TestVolumeAgentKilledDuringCreations kills a storage host's agent
// (SIGKILL) while it makes volumes, some of them from an image, and
// starts it again: every volume ends available, with its data in its
// file on the storage host, or in error with the reason in the
// controller's log; none stays creating. The agent back before its host
// counts as down, the creations it cut off and those asked for while it
// was down are made; a host that stays down long enough to count as
// down fails those it had with a reason that says so. Deleted, the
// volumes leave nothing on the storage host.
func TestVolumeAgentKilledDuringCreations(t *testing.T) {
	need(t, "openstack", "qemu-img")
	// A host counts as down 5 s after its last heartbeat.
	s := startSplit(t, "[compute]\nservice_down_time = 5\n")
	agent := s.startAgent("storage-1", storageHost)
	tok := token(t, s.admin)
	must(t, s.admin, "quota", "set", "--volumes", "-1", "--gigabytes", "-1", "admin")
	// Large enough that its volumes take a while: downloaded from the
	// image API, then converted.
	imagePath, _ := imageFile(t, 96<<20)
	image := must(t, s.admin, "image", "create", "--disk-format", "raw", "--container-format", "bare", "--file", imagePath, "-f", "value", "-c", "id", "big")
	s.waitStorageUp(tok, "storage-1")
	dir := filepath.Join(s.hostDir("storage-1"), "volumes")

	// Twenty creations, every other one from the image: the agent is
	// killed once some are made and some are being made, and the last
	// ten are asked for while it is down.
	const n = 20
	var ids []string
	fromImage := map[string]bool{}
	create := func(name string, fromImg bool) {
		img := ""
		if fromImg {
			img = image
		}
		id := s.createVolume(tok, name, img)
		ids = append(ids, id)
		fromImage[id] = fromImg
	}
	start := time.Now()
	for i := range n / 2 {
		create(fmt.Sprintf("vol-%02d", i), i%2 == 0)
	}
	var atKill map[string]int
	eventually(t, time.Minute, func() (bool, string) {
		vols, err := s.volumes(tok)
		if err != nil {
			return false, err.Error()
		}
		atKill = map[string]int{}
		for _, v := range vols {
			atKill[v.Status]++
		}
		return atKill["available"] > 0 && atKill["creating"] > 0, fmt.Sprint(atKill)
	}, "some volumes made and some being made")
	agent.signal(syscall.SIGKILL)
	t.Logf("agent killed %v after the first request, with volumes %v", time.Since(start).Round(time.Millisecond), atKill)
	for i := n / 2; i < n; i++ {
		create(fmt.Sprintf("vol-%02d", i), i%2 == 0)
	}
	agent.start("trustack agent ready")
	t.Logf("agent started again %v after the first request", time.Since(start).Round(time.Millisecond))

	vols := s.settledVolumes(tok)
	t.Logf("every creation ended %v after the first request", time.Since(start).Round(time.Millisecond))
	s.checkVolumes(ids, vols, dir, imagePath, fromImage)
	log := s.ctl.log()
	asked := strings.Count(log, "agent restarted before it answered") + strings.Count(log, "agent is down: asking it again")
	if asked == 0 {
		t.Errorf("the controller's log shows no request asked again of the agent: the kill cut nothing off")
	}
	for _, id := range ids {
		if v := vols[id]; v.Status != "available" {
			t.Errorf("volume %s (%s) is %s; its agent was back before its host counted as down, want available", v.Name, id, v.Status)
		}
	}
	t.Logf("the controller asked %d creations again", asked)

	// Down for longer than service_down_time: the creations it had fail,
	// saying so, and stay failed when it is back.
	agent.signal(syscall.SIGKILL)
	failedIDs := []string{s.createVolume(tok, "late-empty", ""), s.createVolume(tok, "late-image", image)}
	ids = append(ids, failedIDs...)
	vols = s.settledVolumes(tok)
	agent.start("trustack agent ready")
	s.waitStorageUp(tok, "storage-1")
	log = s.ctl.log()
	for _, id := range failedIDs {
		if v := vols[id]; v.Status != "error" || !strings.Contains(failure(log, id), "storage host storage-1 is down") {
			t.Errorf("volume %s (%s) of a host that went down: %s, reason %q; want error, the host down", v.Name, id, v.Status, failure(log, id))
		}
		if _, err := os.Stat(filepath.Join(dir, "volume-"+id+".qcow2")); !os.IsNotExist(err) {
			t.Errorf("the failed volume %s has a file on the storage host: %v", id, err)
		}
	}
	if vols, err := s.volumes(tok); err != nil || vols[failedIDs[0]].Status != "error" || vols[failedIDs[1]].Status != "error" {
		t.Errorf("the failed volumes once their host is back: %v (%v), want still error", vols, err)
	}

	// Deleted, every volume leaves nothing on the storage host.
	for _, id := range ids {
		if resp := api(t, "DELETE", s.volumeURL()+"/volumes/"+id, tok, nil, nil); resp.StatusCode != http.StatusAccepted {
			t.Errorf("delete volume %s: status %d", id, resp.StatusCode)
		}
	}
	eventually(t, time.Minute, func() (bool, string) {
		vols, err := s.volumes(tok)
		return err == nil && len(vols) == 0, fmt.Sprint(vols, err)
	}, "every volume deleted")
	if files, _ := os.ReadDir(dir); len(files) > 0 {
		var names []string
		for _, f := range files {
			names = append(names, f.Name())
		}
		t.Errorf("files left on the storage host after every volume was deleted: %v", names)
	}
	if scratch, _ := os.ReadDir(filepath.Join(s.hostDir("storage-1"), "scratch")); len(scratch) > 0 {
		t.Errorf("downloaded images left in the storage host's scratch directory: %d", len(scratch))
	}
}

// settledVolumes waits until no volume is creating, and returns them
// all.
func (s *splitCloud) settledVolumes(tok string) map[string]volumeDetail {
	s.t.Helper()
	var vols map[string]volumeDetail
	eventually(s.t, 3*time.Minute, func() (bool, string) {
		var err error
		if vols, err = s.volumes(tok); err != nil {
			return false, err.Error()
		}
		creating := 0
		for _, v := range vols {
			if v.Status == "creating" {
				creating++
			}
		}
		return creating == 0, fmt.Sprintf("%d of %d volumes creating", creating, len(vols))
	}, "no volume creating")
	return vols
}

// checkVolumes checks the volumes of ids, of 1 GiB each, as listed in
// vols: each available, with its file in dir on its storage host (with
// the data of the image at imagePath, whole, if fromImage says it is
// made from it), or in error with the reason in the controller's log.
// No unfinished file is left in dir.
func (s *splitCloud) checkVolumes(ids []string, vols map[string]volumeDetail, dir, imagePath string, fromImage map[string]bool) {
	t := s.t
	t.Helper()
	log := s.ctl.log()
	counts := map[string]int{}
	for _, id := range ids {
		v, ok := vols[id]
		if !ok {
			t.Errorf("volume %s is missing", id)
			continue
		}
		counts[v.Status]++
		switch v.Status {
		case "available":
			file := filepath.Join(dir, "volume-"+id+".qcow2")
			out, _, err := run(t, nil, t.TempDir(), nil, "qemu-img", "info", "-U", file)
			if err != nil || !strings.Contains(out, "virtual size: 1 GiB") {
				t.Errorf("available volume %s (%s): its file on the storage host: %v\n%s", v.Name, id, err, out)
				continue
			}
			if fromImage[id] {
				// Not cut short by the kill: compare reads the image's
				// size of both, and the rest of the volume as zeros.
				if out, errOut, err := run(t, nil, t.TempDir(), nil, "qemu-img", "compare", "-U", "-f", "raw", "-F", "qcow2", imagePath, file); err != nil {
					t.Errorf("available volume %s (%s) made from the image: %v\n%s%s", v.Name, id, err, out, errOut)
				}
			}
		case "error":
			if why := failure(log, id); why == "" {
				t.Errorf("volume %s (%s) is in error, and the controller's log does not say why", v.Name, id)
			} else {
				t.Logf("volume %s (%s) is in error: %s", v.Name, id, why)
			}
		default:
			t.Errorf("volume %s (%s) is %s, want available or error", v.Name, id, v.Status)
		}
	}
	t.Logf("volumes: %v", counts)
	if leftovers, _ := filepath.Glob(filepath.Join(dir, "*.partial")); len(leftovers) > 0 {
		t.Errorf("unfinished volume files left on the storage host: %v", leftovers)
	}
}

// failure returns the line of a controller's log that says why a storage
// host failed a volume, "" if there is none.
func failure(log, id string) string {
	for line := range strings.Lines(log) {
		if strings.Contains(line, "a storage host failed a volume") && strings.Contains(line, id) {
			return strings.TrimSpace(line)
		}
	}
	return ""
}

// uploadTestImage offers the test guest as the public image tiny, booted
// from its kernel and ramdisk, as `trustack up --test-image` does.
func (s *splitCloud) uploadTestImage() {
	s.t.Helper()
	dir := testImage(s.t)
	kernel := must(s.t, s.admin, "image", "create", "--public", "--disk-format", "aki", "--container-format", "aki",
		"--file", filepath.Join(dir, "vmlinuz"), "-f", "value", "-c", "id", "tiny-kernel")
	ramdisk := must(s.t, s.admin, "image", "create", "--public", "--disk-format", "ari", "--container-format", "ari",
		"--file", filepath.Join(dir, "initrd.img"), "-f", "value", "-c", "id", "tiny-ramdisk")
	must(s.t, s.admin, "image", "create", "--public", "--disk-format", "qcow2", "--container-format", "bare",
		"--file", filepath.Join(dir, "tiny.qcow2"), "--property", "kernel_id="+kernel, "--property", "ramdisk_id="+ramdisk,
		"--property", "os_command_line=console=ttyS0 root=/dev/vda rw quiet", "tiny")
}

// onVolume is a guest's user-data script that waits for the disk of a
// volume (found by its serial, the volume's ID as far as it fits: names
// follow the order disks come in), says where it is, then runs body
// with the device in $dev.
func onVolume(t testing.TB, volumeID, body string) string {
	return script(t, fmt.Sprintf(`
i=0; dev=
while [ $i -lt 240 ]; do
  for d in /sys/block/vd*; do [ "$(cat $d/serial 2>/dev/null)" = "%s" ] && dev=/dev/${d##*/}; done
  [ -n "$dev" ] && break; sleep 0.5; i=$((i+1))
done
echo "volume at $dev"
`, volumeID[:min(len(volumeID), 20)])+body)
}

// remoteVolumeGuest is a guest on compute host compute-1 that writes to
// a volume of storage host storage-1 twice a second, over NBD.
type remoteVolumeGuest struct {
	*splitCloud
	storage *cloud // storage-1's agent
	tok     string // an administrator's token
	server  string // the guest's server ID
	volume  string // the volume's ID
}

// startRemoteVolumeGuest starts a controller, a storage host and a
// compute host running QEMU guests (TCG), and one guest there writing to
// a volume of the storage host.
func startRemoteVolumeGuest(t *testing.T) *remoteVolumeGuest {
	t.Helper()
	need(t, "openstack", "qemu-system-x86_64", "qemu-storage-daemon")
	g := &remoteVolumeGuest{splitCloud: startSplit(t, "[compute]\nservice_down_time = 5\n")}
	t.Cleanup(func() { killQEMUs(t, g.dir) })
	// The storage host has no room for a server: the guest goes to
	// compute-1, which reaches the volume over NBD.
	g.storage = g.startAgent("storage-1", storageHost+"fake_memory_mb = 256\n")
	g.startAgent("compute-1", "[compute]\ndriver = qemu\naccel = tcg\nheartbeat_interval = 1\n")
	g.uploadTestImage()
	g.tok = token(t, g.admin)
	g.waitStorageUp(g.tok, "storage-1")

	g.volume = must(t, g.admin, "volume", "create", "--size", "1", "-f", "value", "-c", "id", "vol1")
	eventually(t, time.Minute, func() (bool, string) {
		status := sdkOf(t, g.admin).volumeStatus("vol1")
		return status == "available", status
	}, "vol1 available")
	g.server = boot(t, g.admin, "vm1", "--user-data", onVolume(t, g.volume, `
echo "writing to $dev"
n=0; failed=
while true; do
  if ! echo "block $n" | dd of=$dev bs=512 count=1 conv=sync,fsync 2>/dev/null; then
    [ -z "$failed" ] && echo "a write failed"; failed=1
  fi
  n=$((n+1)); sleep 0.5
done
`))
	if host := hostOf(t, g.admin, g.server); host != "compute-1" {
		t.Fatalf("vm1 on %s, want compute-1", host)
	}
	waitConsole(t, g.admin, "vm1", "trustack-guest ready")
	must(t, g.admin, "server", "add", "volume", "vm1", "vol1")
	waitConsole(t, g.admin, "vm1", "trustack-guest script: writing to /dev/vd")
	return g
}

// storageDaemons signals the storage host's NBD servers.
func (g *remoteVolumeGuest) storageDaemons(sig syscall.Signal) {
	pids := processes(g.storage.dir, "qemu-storage-daemon")
	if len(pids) == 0 {
		g.t.Fatal("the storage host serves the volume with no qemu-storage-daemon")
	}
	for _, pid := range pids {
		syscall.Kill(pid, sig)
	}
}

// storageDown waits until the storage host counts as down.
func (g *remoteVolumeGuest) storageDown() {
	g.t.Helper()
	eventually(g.t, time.Minute, func() (bool, string) {
		var l struct {
			Services []struct{ Host, State string }
		}
		getJSON(g.volumeURL()+"/os-services", g.tok, &l)
		return len(l.Services) == 1 && l.Services[0].State == "down", fmt.Sprint(l.Services)
	}, "the storage host counted as down")
}

// diagnosticsLimit is how long the diagnostics of a server may take, at
// most, whatever its volumes' storage hosts do.
const diagnosticsLimit = 30 * time.Second

// diagnostics checks that the server's diagnostics answer within
// diagnosticsLimit: with what the hypervisor measures (its memory at
// least), or with an error that names the volume or its storage host.
func (g *remoteVolumeGuest) diagnostics(when string) {
	t := g.t
	t.Helper()
	req, err := http.NewRequest("GET", "http://"+g.api+"/compute/v2.1/servers/"+g.server+"/diagnostics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Auth-Token", g.tok)
	start := time.Now()
	resp, err := (&http.Client{Timeout: diagnosticsLimit + 15*time.Second}).Do(req)
	var body []byte
	if err == nil {
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	took := time.Since(start).Round(time.Millisecond)
	if err != nil {
		t.Errorf("diagnostics %s: %v after %v; want an answer within %v", when, err, took, diagnosticsLimit)
		return
	}
	t.Logf("diagnostics %s: %d after %v: %s", when, resp.StatusCode, took, body)
	var d map[string]any
	switch {
	case took > diagnosticsLimit:
		t.Errorf("diagnostics %s: answered %d after %v, want within %v", when, resp.StatusCode, took, diagnosticsLimit)
	case resp.StatusCode == http.StatusOK:
		if json.Unmarshal(body, &d) != nil || d["memory"] == nil {
			t.Errorf("diagnostics %s: %s, want at least the memory", when, body)
		}
	case !strings.Contains(string(body), g.volume) && !strings.Contains(string(body), "storage-1"):
		t.Errorf("diagnostics %s: %d %s after %v; want an error that names volume %s or storage host storage-1", when, resp.StatusCode, body, took, g.volume)
	}
}

// TestDiagnosticsWithStorageHostDown: a server on one host uses a volume
// of a storage host on another, over NBD, writing to it all the while;
// the storage host goes down, its agent and its NBD server killed. The
// guest's writes fail, and the server's diagnostics still answer within
// a bounded time, with what the hypervisor measures or an error that
// names the volume or its storage host, before and after the host
// counts as down: the API never hangs.
func TestDiagnosticsWithStorageHostDown(t *testing.T) {
	g := startRemoteVolumeGuest(t)
	g.diagnostics("with the storage host up")
	g.storage.signal(syscall.SIGKILL)
	g.storageDaemons(syscall.SIGKILL)
	g.diagnostics("just after the storage host went down")
	waitConsole(t, g.admin, "vm1", "trustack-guest script: a write failed")
	g.storageDown()
	g.diagnostics("once the storage host counts as down")
}

// TestDiagnosticsWithStorageHostHung: as TestDiagnosticsWithStorageHostDown,
// but the storage host stops answering without closing its connections,
// as one that loses its power or its network does (its NBD server
// stopped, SIGSTOP): the guest's writes to the volume wait, and a stop
// of the server, whose QEMU then drains its disks, waits for them. The
// server's diagnostics still answer within a bounded time.
//
// With QEMU 7.2 this needs the hypervisor and compute to bound the
// question: QEMU's NBD client has no timeout, and its main loop, with
// its QMP monitor, blocks for as long as a drain waits.
func TestDiagnosticsWithStorageHostHung(t *testing.T) {
	g := startRemoteVolumeGuest(t)
	g.storage.signal(syscall.SIGKILL)
	g.storageDaemons(syscall.SIGSTOP)
	g.diagnostics("just after the storage host hung")
	must(t, g.admin, "server", "stop", "vm1")
	// QEMU asks the guest to power off, then forces it off; meanwhile
	// the diagnostics keep answering.
	for i := range 3 {
		g.diagnostics(fmt.Sprintf("during the stop (%d)", i+1))
		if t.Failed() {
			break // each further question would wait as long
		}
	}
	g.storageDown()
	g.diagnostics("once the storage host counts as down")
}
