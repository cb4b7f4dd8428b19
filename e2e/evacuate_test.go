package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trustack/trustack/tpm"
)

// startAttestedSplit is startSplitOn with hosts that attest: each of
// those named gets an swtpm of its own, manufactured now by the local CA
// of caDir (a directory of the test's), which the controller trusts, and
// started for the test's length. There is at least one host.
func startAttestedSplit(t *testing.T, ip, caDir, conf string, hosts ...string) *splitCloud {
	t.Helper()
	tpms, ca := startTPMs(t, caDir, hosts...)
	s := startSplitOn(t, ip, "[attestation]\nenabled = yes\nca_bundles = "+ca.Root+","+ca.Issuer+"\n"+conf)
	s.tpms = tpms
	return s
}

// startTPMs gives each host named an swtpm of its own, manufactured now
// by the local CA of caDir and started for the test's length, and returns
// their addresses by host, and the CA.
func startTPMs(t *testing.T, caDir string, hosts ...string) (map[string]string, tpm.LocalCA) {
	t.Helper()
	dir := t.TempDir()
	tpms := map[string]string{}
	var ca tpm.LocalCA
	for _, h := range hosts {
		swtpm := filepath.Join(dir, h)
		ca = manufacture(t, swtpm, caDir)
		addr, stop, err := tpm.Start(context.Background(), swtpm)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { stop() })
		tpms[h] = addr
	}
	return tpms, ca
}

// manufacture makes a TPM's state in dir, its EK certified by the local
// CA of caDir, and returns the CA.
func manufacture(t *testing.T, dir, caDir string) tpm.LocalCA {
	t.Helper()
	ca, err := tpm.Manufacture(context.Background(), dir, caDir)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// TestEvacuationOfALostHost stops the agent of a host that runs two
// servers booted from volumes: once attestation's grace period is over
// and the controller counts the host down, both are rebuilt on another
// trusted host, with their volumes' data, their storage host serving them
// there and no longer to the lost host. The lost host's agent, started
// again, registers, destroys its stale copies and is let back in once
// trusted.
func TestEvacuationOfALostHost(t *testing.T) {
	need(t, "openstack", "swtpm", "swtpm_setup", "qemu-io")
	hosts := []string{"storage", "lost", "spare"}
	s := startAttestedSplit(t, "127.0.0.1", t.TempDir(), "[attestation]\ninterval = 2\ngrace_period = 4\n[compute]\nservice_down_time = 3\n", hosts...)
	compute := "[compute]\ndriver = fake\nheartbeat_interval = 1\n"
	s.startAgent("storage", storageHost)
	s.startAgent("lost", compute)
	s.startAgent("spare", compute)
	admin := s.admin
	manage := func(args ...string) string { return trustackOK(t, admin, append([]string{"manage"}, args...)...) }
	trusted := func(host string) func() (bool, string) {
		return func() (bool, string) {
			out := manage("host", "show", host)
			return strings.Contains(out, "trusted") && !strings.Contains(out, "untrusted"), out
		}
	}
	for _, h := range hosts {
		eventually(t, time.Minute, trusted(h), "host %s trusted", h)
	}
	tok := token(t, admin)
	s.waitStorageUp(tok, "storage")

	// Two volumes with a marker each, two servers booted from them on
	// host lost (the other hosts' compute services disabled meanwhile).
	path, _ := imageFile(t, 1<<20)
	image := strings.TrimSpace(must(t, admin, "image", "create", "--disk-format", "raw", "--container-format", "bare", "--file", path, "-f", "value", "-c", "id", "cirros"))
	var vols []string
	for i := range 2 {
		vol := s.createVolume(tok, fmt.Sprintf("root-%d", i), image)
		eventually(t, time.Minute, func() (bool, string) {
			v, err := s.volumes(tok)
			return err == nil && v[vol].Status == "available", fmt.Sprint(v[vol], err)
		}, "volume %s available", vol)
		marker(t, s.volumeFile(vol), "write")
		vols = append(vols, vol)
	}
	for _, h := range []string{"storage", "spare"} {
		must(t, admin, "compute", "service", "set", "--disable", h, "nova-compute")
	}
	servers := map[string]string{} // volume by server
	for i, vol := range vols {
		id := strings.TrimSpace(must(t, admin, "server", "create", "--volume", vol, "--flavor", "m1.tiny", "--wait", "-f", "value", "-c", "id", fmt.Sprintf("vm-%d", i)))
		if h := hostOf(t, admin, id); h != "lost" {
			t.Fatalf("server %s on %s, want on host lost", id, h)
		}
		servers[id] = vol
	}
	for _, h := range []string{"storage", "spare"} {
		must(t, admin, "compute", "service", "set", "--enable", h, "nova-compute")
	}

	s.agents["lost"].signal(syscall.SIGKILL)
	lostAt := time.Now()
	for id, vol := range servers {
		eventually(t, 2*time.Minute, func() (bool, string) {
			s, err := sdkOf(t, admin).server(id)
			return err == nil && s.Host != "lost" && s.Status == "ACTIVE", fmt.Sprint(s, err)
		}, "server %s evacuated, ACTIVE", id)
		out := must(t, admin, "server", "event", "list", id, "-f", "value", "-c", "Action")
		if !strings.Contains(out, "evacuate") {
			t.Errorf("actions of server %s: %q, want an evacuate", id, out)
		}
		att := must(t, admin, "volume", "show", vol, "-f", "value", "-c", "attachments")
		if h := hostOf(t, admin, id); !strings.Contains(att, id) || !strings.Contains(att, h) {
			t.Errorf("volume %s attachments %s, want to server %s on %s", vol, att, id, h)
		}
		marker(t, s.volumeFile(vol), "read")
	}
	t.Logf("both servers evacuated %s after the lost host's agent was killed (grace period 4 s, down after 3 s)", time.Since(lostAt).Round(100*time.Millisecond))

	// Back: it registers again, destroys both stale copies as it joins,
	// and is let in once trusted.
	s.agents["lost"].start("trustack agent ready")
	eventually(t, time.Minute, func() (bool, string) {
		return strings.Count(s.agents["lost"].log(), "destroying a server the controllers do not know") == 2, s.agents["lost"].log()
	}, "host lost destroying its two stale copies")
	eventually(t, time.Minute, trusted("lost"), "host lost trusted again")
	eventually(t, 30*time.Second, func() (bool, string) {
		out := must(t, admin, "compute", "service", "list", "--host", "lost", "-f", "value", "-c", "Status")
		return strings.TrimSpace(out) == "enabled", out
	}, "host lost enabled again")
	for id := range servers {
		if h := hostOf(t, admin, id); h == "lost" {
			t.Errorf("server %s back on host lost", id)
		}
	}
}

// volumeFile is where the file backend of host storage keeps a volume.
func (s *splitCloud) volumeFile(id string) string {
	return filepath.Join(s.hostDir("storage"), "volumes", "volume-"+id+".qcow2")
}

// marker writes a pattern into the first 64 KiB of a volume's file, or
// checks that it is there (read, sharing the file with whoever has it
// open).
func marker(t *testing.T, file, op string) {
	t.Helper()
	args := []string{"-f", "qcow2", "-c", op + " -P 0x5a 0 64k", file}
	if op == "read" {
		args = append([]string{"-U", "-r"}, args...)
	}
	out, err := exec.Command("qemu-io", args...).CombinedOutput()
	if err != nil || strings.Contains(string(out), "Pattern verification failed") || strings.Contains(string(out), "error") {
		t.Errorf("qemu-io %s on %s: %v\n%s", op, file, err, out)
	}
}
