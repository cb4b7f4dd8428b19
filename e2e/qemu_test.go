package e2e

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// TestQEMUCLI boots a real VM, the test guest under QEMU, on `trustack up
// --nodes 2 --driver qemu` with the Debian OpenStack client, and takes it
// through every power action: the guest's console says what it booted
// with, its remote consoles lead to its display and its serial port, a
// resumed guest's uptime goes on, and a deleted server leaves no
// QEMU process and no file.
func TestQEMUCLI(t *testing.T) {
	need(t, "openstack", "qemu-system-x86_64")
	const consoleTTL = 15 * time.Second
	c := startUpWith(t, fmt.Sprintf("[compute]\nconsole_token_ttl = %d\n", int(consoleTTL.Seconds())),
		"--nodes", "2", "--driver", "qemu", "--test-image", testImage(t))
	t.Cleanup(func() { killQEMUs(t, c.dir) })
	admin := c.openrc("openrc")

	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "k.pub")
	if err := os.WriteFile(keyFile, ssh.MarshalAuthorizedKey(key), 0o600); err != nil {
		t.Fatal(err)
	}
	must(t, admin, "keypair", "create", "--public-key", keyFile, "k")

	out := must(t, admin, "server", "create", "--image", "tiny", "--flavor", "m1.tiny", "--key-name", "k", "--wait", "-f", "value", "-c", "id", "-c", "status", "vm1")
	fields := strings.Fields(out)
	if len(fields) != 2 || fields[1] != "ACTIVE" {
		t.Fatalf("openstack server create --wait vm1: got %q, want its ID and ACTIVE", out)
	}
	id := fields[0]
	console := func() string { return sdkOf(t, admin).consoleLog(id) }
	// boots waits until the guest has said it was ready n times.
	boots := func(n int, after string) {
		t.Helper()
		eventually(t, 2*time.Minute, func() (bool, string) {
			out := console()
			return strings.Count(out, "trustack-guest ready") == n, out
		}, "the guest ready %d times, after %s", n, after)
	}
	boots(1, "create")
	checkRemoteConsoles(t, admin, "vm1", consoleTTL)
	log := must(t, admin, "console", "log", "show", "vm1")
	for _, want := range []string{"trustack-guest hostname: vm1", "trustack-guest key k: " + ssh.FingerprintLegacyMD5(key)} {
		if !strings.Contains(log, want) {
			t.Errorf("openstack console log show vm1: no line %q in\n%s", want, log)
		}
	}

	// The hypervisor's measures of the guest, for admins.
	var diag map[string]any
	if err := json.Unmarshal([]byte(must(t, admin, "server", "show", "--diagnostics", "vm1", "-f", "json")), &diag); err != nil {
		t.Fatal(err)
	}
	if cpu, _ := diag["cpu0_time"].(float64); cpu <= 0 || diag["memory"] != float64(512*1024) || diag["vda_read"] == nil {
		t.Errorf("openstack server show --diagnostics vm1: want CPU time, 512 MiB and the disk's reads, got %v", diag)
	}

	status := func(want string) {
		t.Helper()
		eventually(t, time.Minute, func() (bool, string) {
			s, err := sdkOf(t, admin).server(id)
			return err == nil && s.Status == want && s.TaskState == nil, fmt.Sprint(s, err)
		}, "server vm1 %s", want)
	}
	must(t, admin, "server", "pause", "vm1")
	status("PAUSED")
	must(t, admin, "server", "unpause", "vm1")
	status("ACTIVE")

	// Suspended and resumed, the guest goes on where it was: its uptime
	// grows past what it was, and it does not boot again.
	before := lastUptime(console())
	must(t, admin, "server", "suspend", "vm1")
	status("SUSPENDED")
	must(t, admin, "server", "resume", "vm1")
	status("ACTIVE")
	eventually(t, 30*time.Second, func() (bool, string) {
		out := console()
		return lastUptime(out) > before, out
	}, "the guest's uptime beyond %.2f s after resume", before)
	boots(1, "suspend and resume")

	must(t, admin, "server", "stop", "vm1")
	status("SHUTOFF")
	must(t, admin, "server", "start", "vm1")
	status("ACTIVE")
	boots(2, "stop and start")
	must(t, admin, "server", "reboot", "--wait", "vm1")
	boots(3, "a soft reboot")
	if !strings.Contains(console(), "trustack-guest powering off") {
		t.Error("the guest never said it was powering off (stop and soft reboot press its power button)")
	}
	must(t, admin, "server", "reboot", "--hard", "--wait", "vm1")
	boots(4, "a hard reboot")

	must(t, admin, "server", "delete", "--wait", "vm1")
	if pids := qemuProcesses(c.dir); len(pids) > 0 {
		t.Errorf("QEMU processes left after delete: %v", pids)
	}
	if left, _ := filepath.Glob(filepath.Join(c.dir, "data", "hosts", "*", "qemu", "instances", id)); len(left) > 0 {
		t.Errorf("files of the deleted server left: %v", left)
	}
}

var uptimeLine = regexp.MustCompile(`trustack-guest uptime: ([0-9.]+)`)

// lastUptime returns the guest's uptime in its last uptime line.
func lastUptime(console string) float64 {
	m := uptimeLine.FindAllStringSubmatch(console, -1)
	if len(m) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(m[len(m)-1][1], 64)
	return v
}

// qemuProcesses returns the PIDs of the QEMU processes of the cloud in
// dir: their command lines name a kernel in its hosts' image caches.
func qemuProcesses(dir string) []int { return processes(dir, "qemu-system") }

// processes returns the PIDs of the processes of a program whose command
// lines name something in dir.
func processes(dir, program string) []int {
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	var pids []int
	for _, path := range cmdlines {
		b, err := os.ReadFile(path)
		if err != nil || !strings.Contains(string(b), program) || !strings.Contains(string(b), dir) {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(path))); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// killQEMUs kills what QEMU processes the cloud in dir left, guests and
// the storage daemons serving volumes: they outlive trustack, as VMs
// outlive a restarted agent.
func killQEMUs(t testing.TB, dir string) {
	for _, program := range []string{"qemu-system", "qemu-storage-daemon"} {
		for _, pid := range processes(dir, program) {
			t.Logf("killing %s process %d", program, pid)
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}
