package e2e

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trustack/trustack/tpm"
)

// ovmf is the UEFI firmware of Debian's ovmf package that the measured
// host guest boots with: it measures what it boots into the guest's TPM.
const (
	ovmfCode = "/usr/share/OVMF/OVMF_CODE_4M.fd"
	ovmfVars = "/usr/share/OVMF/OVMF_VARS_4M.fd"
)

// measuredHostInit is the /init of the measured compute host guest, over
// the test guest's initramfs: it mounts what IMA and the agent need,
// brings the NIC up on QEMU's user network, mounts the test guest's root
// disk at /mnt (ext4, which IMA's tcb policy measures, unlike the
// initramfs), starts `trustack agent` and then runs each line the console
// sends it.
const measuredHostInit = `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t securityfs securityfs /sys/kernel/security
exec </dev/console >/dev/console 2>&1
/lib/modules/load || echo "measured-host: cannot load the modules"
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
i=0
while [ ! -b /dev/vda ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
mkdir -p /mnt /var/lib/trustack
mount -t ext4 /dev/vda /mnt || echo "measured-host: cannot mount the disk"
/trustack agent --config /agent.conf &
echo "measured-host: ready"
while read -r cmd; do
  echo "measured-host: running $cmd"
  sh -c "$cmd"
  echo "measured-host: ran, status $?"
done
`

// measuredHost is a compute host run as a QEMU guest (TCG) that boots
// with UEFI firmware and a TPM of its own, the Debian kernel measuring
// what it runs (IMA, tcb policy), and `trustack agent` measuring in the
// kernel's mode.
type measuredHost struct {
	t       *testing.T
	stdin   io.Writer
	mu      sync.Mutex
	console bytes.Buffer
}

// startMeasuredHost boots the measured host guest named name, whose TPM
// tpm.Manufacture made in dir, its agent on the bus of s (on an address
// of this machine's that the guest reaches through QEMU's user network).
func startMeasuredHost(t *testing.T, s *splitCloud, name, dir string) *measuredHost {
	t.Helper()
	for _, f := range []string{ovmfCode, ovmfVars} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("the UEFI firmware is missing (run scripts/install-deps; make test does): %v", err)
		}
	}
	sock := filepath.Join(dir, "swtpm.sock")
	swtpm := exec.Command("swtpm", "socket", "--tpm2", "--tpmstate", "dir="+tpm.StateDir(dir),
		"--ctrl", "type=unixio,path="+sock, "--log", "file="+filepath.Join(dir, "swtpm.log"))
	if err := swtpm.Start(); err != nil {
		t.Fatalf("swtpm: %v", err)
	}
	t.Cleanup(func() { swtpm.Process.Kill(); swtpm.Wait() })
	for i := 0; i < 50; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}

	// The guest has no C library: trustack built without cgo (and so
	// without the race detector, which needs it).
	static := filepath.Join(dir, "trustack")
	build := exec.Command("go", "build", "-o", static, "../cmd/trustack")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build trustack without cgo: %v\n%s", err, out)
	}
	images := testImage(t)
	initrd := filepath.Join(dir, "initrd.img")
	conf := fmt.Sprintf("[DEFAULT]\ndata_dir = /var/lib/trustack\n[bus]\nurl = nats://%s\n[agent]\nhost = %s\n"+
		"[attestation]\nenabled = yes\ntpm = /dev/tpm0\n[compute]\ndriver = fake\nheartbeat_interval = 1\n", s.bus, name)
	appendToInitramfs(t, filepath.Join(images, "initrd.img"), initrd, map[string]string{
		"init": measuredHostInit, "agent.conf": conf, "trustack": "@" + static})
	vars := filepath.Join(dir, "vars.fd")
	if b, err := os.ReadFile(ovmfVars); err != nil || os.WriteFile(vars, b, 0o600) != nil {
		t.Fatalf("copy the firmware's variables: %v", err)
	}
	h := &measuredHost{t: t}
	qemu := exec.Command("qemu-system-x86_64", "-accel", "tcg", "-machine", "q35", "-m", "1024",
		"-nodefaults", "-display", "none", "-serial", "stdio", "-no-reboot",
		"-drive", "if=pflash,format=raw,readonly=on,file="+ovmfCode, "-drive", "if=pflash,format=raw,file="+vars,
		"-chardev", "socket,id=chrtpm,path="+sock, "-tpmdev", "emulator,id=tpm0,chardev=chrtpm", "-device", "tpm-crb,tpmdev=tpm0",
		"-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0",
		"-drive", "file="+filepath.Join(images, "tiny.qcow2")+",if=virtio,format=qcow2,snapshot=on",
		"-kernel", filepath.Join(images, "vmlinuz"), "-initrd", initrd,
		"-append", "console=ttyS0 ima_policy=tcb quiet")
	var err error
	if h.stdin, err = qemu.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	qemu.Stdout, qemu.Stderr = h, h
	if err := qemu.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		qemu.Process.Kill()
		qemu.Wait()
		if t.Failed() {
			t.Logf("the measured host's console:\n%s", h.output())
		}
	})
	return h
}

func (h *measuredHost) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.console.Write(p)
}

func (h *measuredHost) output() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.console.String()
}

// run has the guest's shell run a command line and waits until it has.
func (h *measuredHost) run(cmd string) {
	h.t.Helper()
	before := strings.Count(h.output(), "measured-host: ran")
	if _, err := io.WriteString(h.stdin, cmd+"\n"); err != nil {
		h.t.Fatal(err)
	}
	eventually(h.t, time.Minute, func() (bool, string) { return strings.Count(h.output(), "measured-host: ran") > before, "" },
		"the measured host to run %q", cmd)
}

// appendToInitramfs writes to out the initramfs in, then a cpio archive
// of files (by name, their content, or "@path" for a file's), which the
// kernel unpacks over it.
func appendToInitramfs(t *testing.T, in, out string, files map[string]string) {
	t.Helper()
	stage := t.TempDir()
	var names []string
	for name, content := range files {
		var b []byte
		var err error
		if path, ok := strings.CutPrefix(content, "@"); ok {
			b, err = os.ReadFile(path)
		} else {
			b = []byte(content)
		}
		if err == nil {
			err = os.WriteFile(filepath.Join(stage, name), b, 0o755)
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	cpio := exec.Command("cpio", "-o", "-H", "newc", "--quiet")
	cpio.Dir, cpio.Stdin = stage, strings.NewReader(strings.Join(names, "\n")+"\n")
	archive, err := cpio.Output()
	if err != nil {
		t.Fatalf("cpio: %v", err)
	}
	image, err := os.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	image = append(image, make([]byte, (4-len(image)%4)%4)...) // archives start 4-byte aligned
	if err := os.WriteFile(out, append(image, archive...), 0o600); err != nil {
		t.Fatal(err)
	}
}

// machineIP returns an IPv4 address of this machine other than loopback,
// which a QEMU guest on the user network reaches, as this machine's own
// programs do.
func machineIP(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
			return n.IP.String()
		}
	}
	t.Fatal("this machine has no IPv4 address but loopback, which a QEMU guest could reach its controller at")
	return ""
}

// TestMeasuredBoot runs a compute host as a QEMU guest that boots with
// UEFI firmware measuring into its TPM (swtpm, tpm-crb) and the Debian
// kernel measuring what it runs (IMA, ima_policy=tcb), and `trustack
// agent` in it: it registers, its quote over PCRs 0-7 and 10 and its
// kernel's IMA log verify, a white-list is taken from it, and a server
// booted there (the fake driver) runs. Running a binary the white-list
// does not have makes the host untrusted within an interval, and the
// server moves to the other host.
func TestMeasuredBoot(t *testing.T) {
	need(t, "openstack", "swtpm", "swtpm_setup", "qemu-system-x86_64", "cpio")
	caDir := t.TempDir()
	guestTPM := t.TempDir()
	manufacture(t, guestTPM, caDir) // before the controller, which trusts the CA it makes
	s := startAttestedSplit(t, machineIP(t), caDir, "[attestation]\ninterval = 3\n", "spare")
	s.startAgent("spare", "[compute]\ndriver = fake\nheartbeat_interval = 1\n")
	guest := startMeasuredHost(t, s, "measured", guestTPM)
	admin := s.admin
	manage := func(args ...string) string { return trustackOK(t, admin, append([]string{"manage"}, args...)...) }
	state := func(host string) string {
		var list []attestation
		trustackJSON(t, admin, &list, "manage", "host", "list", "-f", "json")
		for _, a := range list {
			if a.Host == host {
				return fmt.Sprintf("%s %s %s %s", a.State, a.Mode, a.Whitelist, a.Reason)
			}
		}
		return ""
	}
	booted := time.Now()
	eventually(t, 4*time.Minute, func() (bool, string) {
		st := state("measured")
		return strings.HasPrefix(st, "trusted kernel"), st + "\n" + guest.output()
	}, "the measured host registered and trusted, measured by its kernel")
	t.Logf("the measured host booted (UEFI, TCG), registered and was trusted in %s", time.Since(booted).Round(100*time.Millisecond))
	eventually(t, time.Minute, func() (bool, string) { st := state("spare"); return strings.HasPrefix(st, "trusted"), st }, "host spare trusted")

	manage("whitelist", "create", "baseline", "--from-host", "measured")
	var wl struct {
		BootAggregate string `json:"boot_aggregate"`
	}
	if err := json.Unmarshal([]byte(manage("whitelist", "export", "baseline")), &wl); err != nil {
		t.Fatal(err)
	}
	// The firmware measured the boot: PCRs 0-9 are not as they start.
	if zero := "sha256:" + hex.EncodeToString(make([]byte, 32)); !strings.HasPrefix(wl.BootAggregate, "sha256:") || wl.BootAggregate == zero {
		t.Errorf("the white-list's boot aggregate %q, want a SHA-256 of measured PCRs", wl.BootAggregate)
	}
	manage("location", "create", "Lab", "--country", "DE")
	manage("domain", "create", "lab", "--location", "Lab", "--dcot", "baseline")
	manage("domain", "add-host", "lab", "measured")
	eventually(t, 30*time.Second, func() (bool, string) {
		st := state("measured")
		return strings.HasPrefix(st, "trusted kernel baseline"), st
	}, "the measured host trusted against the white-list taken from it")

	path, _ := imageFile(t, 1<<20)
	must(t, admin, "image", "create", "--disk-format", "raw", "--container-format", "bare", "--file", path, "cirros")
	must(t, admin, "compute", "service", "set", "--disable", "spare", "nova-compute")
	id := strings.TrimSpace(must(t, admin, "server", "create", "--image", "cirros", "--flavor", "m1.tiny", "--wait", "-f", "value", "-c", "id", "vm1"))
	must(t, admin, "compute", "service", "set", "--enable", "spare", "nova-compute")
	if h := hostOf(t, admin, id); h != "measured" {
		t.Fatalf("server vm1 on %s, want on the measured host", h)
	}

	// A binary the white-list does not have, run from the disk.
	guest.run("cp /bin/busybox /mnt/intruder && echo x >> /mnt/intruder && /mnt/intruder true")
	ran := time.Now()
	eventually(t, 30*time.Second, func() (bool, string) {
		st := state("measured")
		return strings.HasPrefix(st, "revoked") && strings.Contains(st, "/mnt/intruder"), st
	}, "the measured host revoked for running /mnt/intruder")
	t.Logf("the measured host found untrusted %s after running a binary its white-list lacks (interval 3 s)", time.Since(ran).Round(100*time.Millisecond))
	eventually(t, 2*time.Minute, func() (bool, string) {
		s, err := sdkOf(t, admin).server(id)
		return err == nil && s.Host == "spare" && s.Status == "ACTIVE", fmt.Sprint(s, err)
	}, "server vm1 moved to host spare, ACTIVE")
}
