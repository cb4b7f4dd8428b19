package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/trustack/trustack/internal/stats"
)

// guestDir is where scripts/build-test-image puts the test guest, relative
// to the repository root: where `make bench` runs, and where `trustack up`,
// started in the same directory, looks for the guest to offer as "tiny".
const guestDir = "build/test-image"

// guestReady is what the test guest prints on its serial console once its
// init has read the config drive.
const guestReady = "trustack-guest ready"

// guestTimeout bounds one boot, through trustack or bare.
const guestTimeout = 2 * time.Minute

// guest measures how long the test guest takes under QEMU TCG from a boot
// request to its ready line on the serial console: runs times through
// trustack (POST /servers, on one qemu host, to the line in the console
// output), alternating with as many boots by a bare QEMU command line like
// the driver's (exec to the line on stdout). It reports each boot, the
// medians and trustack's overhead over bare QEMU.
func guest(binary string, runs int) error {
	if runs < 1 {
		return fmt.Errorf("-guest-runs %d: want at least 1", runs)
	}
	dir, err := filepath.Abs(guestDir)
	if err != nil {
		return err
	}
	for _, name := range []string{"vmlinuz", "initrd.img", "tiny.qcow2"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("no test guest: %w; run scripts/build-test-image from the repository root", err)
		}
	}
	version, err := exec.Command("qemu-system-x86_64", "--version").Output()
	if err != nil {
		return fmt.Errorf("qemu-system-x86_64 --version: %w", err)
	}
	version, _, _ = bytes.Cut(version, []byte("\n"))
	fmt.Printf("test guest of %s, %s, TCG, m1.tiny (-m 512 -smp 1); trustack up --nodes 1, driver qemu; %d boots each, one at a time, alternating; console polled every 100 ms\n",
		guestDir, version, runs)
	return withCloud(binary, "sqlite", 1, "[compute]\ndriver = qemu\naccel = tcg\n", func(openrc string) error {
		defer killGuests(filepath.Dir(openrc))
		c, err := newGuestCloud(openrc)
		if err != nil {
			return err
		}
		var ours, bare []time.Duration
		for i := range runs {
			t, err := c.boot(fmt.Sprintf("bench-%d", i+1))
			if err != nil {
				return fmt.Errorf("boot %d through trustack: %w", i+1, err)
			}
			b, err := bareBoot(dir)
			if err != nil {
				return fmt.Errorf("boot %d with bare QEMU: %w", i+1, err)
			}
			fmt.Printf("  boot %d: trustack %.2f s, bare QEMU %.2f s\n", i+1, t.Seconds(), b.Seconds())
			ours, bare = append(ours, t), append(bare, b)
		}
		mo, mb := stats.Median(ours), stats.Median(bare)
		fmt.Printf("median: trustack %.2f s, bare QEMU %.2f s: trustack's overhead %+.1f%% (target ≤ 15%%)\n",
			mo.Seconds(), mb.Seconds(), 100*(mo.Seconds()-mb.Seconds())/mb.Seconds())
		fmt.Println("  trustack's time includes its API, scheduling, the image download to the host (first boot only), and the overlay and config drive the driver makes during the spawn; bare QEMU's does not include its overlay and config drive, made before exec")
		return nil
	})
}

// guestCloud boots the test guest through the compute API of a cloud.
type guestCloud struct {
	s       session
	client  *http.Client
	compute string // the compute endpoint
	image   string // ID of the image tiny
}

// newGuestCloud logs in with openrc, finds the image tiny, which `trustack
// up` offers, and creates the key pair bench to boot with.
func newGuestCloud(openrc string) (*guestCloud, error) {
	s, err := openSession(openrc)
	if err != nil {
		return nil, err
	}
	c := &guestCloud{s: s, client: &http.Client{Timeout: time.Minute}, compute: s.base + "/compute/v2.1"}
	var images struct{ Images []struct{ ID string } }
	if err := s.call(c.client, "GET", s.base+"/image/v2/images?name=tiny", nil, &images); err != nil {
		return nil, err
	}
	if len(images.Images) == 0 {
		return nil, fmt.Errorf("trustack up offers no image tiny: is %s in its working directory?", guestDir)
	}
	c.image = images.Images[0].ID
	return c, s.call(c.client, "POST", c.compute+"/os-keypairs", map[string]any{"keypair": map[string]string{"name": "bench"}}, nil)
}

// boot boots a server of flavor m1.tiny (ID 1) from the image tiny with the
// key pair bench, and returns the time from its POST until its console
// output shows the guest ready. Then, or on an error once it exists, it
// deletes the server and waits until it is gone.
func (c *guestCloud) boot(name string) (took time.Duration, err error) {
	start := time.Now()
	url, err := c.create(name, nil)
	if err != nil {
		return 0, err
	}
	defer func() {
		if derr := c.remove(url); err == nil {
			err = derr
		}
	}()
	times, err := c.await(url, name, start, guestReady)
	if err != nil {
		return 0, err
	}
	return times[0], nil
}

// create POSTs a server of flavor m1.tiny (ID 1) from the image tiny with
// the key pair bench, and the request's more members (user_data,
// os:scheduler_hints), and returns its URL.
func (c *guestCloud) create(name string, more map[string]any) (url string, err error) {
	req := map[string]any{"server": map[string]any{"name": name, "imageRef": c.image, "flavorRef": "1", "key_name": "bench"}}
	for k, v := range more {
		if k == "os:scheduler_hints" {
			req[k] = v
		} else {
			req["server"].(map[string]any)[k] = v
		}
	}
	var created struct{ Server struct{ ID string } }
	if err := c.s.call(c.client, "POST", c.compute+"/servers", req, &created); err != nil {
		return "", err
	}
	return c.compute + "/servers/" + created.Server.ID, nil
}

// await polls the console output of the server at url every 100 ms until
// it holds each of lines, and returns the time from start until each was
// first seen.
func (c *guestCloud) await(url, name string, start time.Time, lines ...string) ([]time.Duration, error) {
	times := make([]time.Duration, len(lines))
	for seen := 0; seen < len(lines); {
		var console struct{ Output string }
		err := c.s.call(c.client, "POST", url+"/action", map[string]any{"os-getConsoleOutput": map[string]int{"length": 100}}, &console)
		switch {
		case err == nil:
			for i, line := range lines {
				if times[i] == 0 && strings.Contains(console.Output, line) {
					times[i], seen = time.Since(start), seen+1
				}
			}
		case !isStatus(err, http.StatusConflict): // 409 until the server is on its host
			return nil, err
		}
		if seen < len(lines) && time.Since(start) > guestTimeout {
			var s struct {
				Server struct {
					Status string
					Fault  struct{ Message string }
				}
			}
			c.s.call(c.client, "GET", url, nil, &s)
			return nil, fmt.Errorf("server %s (%s %s): not all of %q on its console within %v", name, s.Server.Status, s.Server.Fault.Message, lines, guestTimeout)
		}
		if seen < len(lines) {
			time.Sleep(100 * time.Millisecond)
		}
	}
	return times, nil
}

// remove deletes the server at url and waits until a GET of it answers 404.
func (c *guestCloud) remove(url string) error {
	if err := c.s.call(c.client, "DELETE", url, nil, nil); err != nil {
		return err
	}
	for start := time.Now(); time.Since(start) < guestTimeout; time.Sleep(100 * time.Millisecond) {
		if err := c.s.call(c.client, "GET", url, nil, nil); isStatus(err, http.StatusNotFound) {
			return nil
		} else if err != nil {
			return err
		}
	}
	return fmt.Errorf("%s still there %v after its DELETE", url, guestTimeout)
}

// killGuests kills the QEMUs still running for servers of the cloud whose
// data directory is dataDir: the driver leaves guests running when trustack
// stops, so a measurement cut short must not leave its server behind. It
// kills a process only if it is still the server's QEMU, named for it.
func killGuests(dataDir string) {
	pidFiles, _ := filepath.Glob(filepath.Join(dataDir, "hosts", "*", "qemu", "instances", "*", "qemu.pid"))
	for _, f := range pidFiles {
		b, _ := os.ReadFile(f)
		pid, err := strconv.Atoi(string(bytes.TrimSpace(b)))
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err == nil && bytes.Contains(cmdline, []byte("trustack-"+filepath.Base(filepath.Dir(f)))) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// bareBoot boots the test guest of dir by a bare QEMU command line like the
// driver's, on an overlay and a config drive made before the clock starts,
// and returns the time from exec until the guest's ready line on its serial
// port (stdout). It kills QEMU and removes its files before it returns.
func bareBoot(dir string) (time.Duration, error) {
	tmp, err := os.MkdirTemp("", "trustack-bench-bare-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)
	overlay, iso, drive := filepath.Join(tmp, "overlay.qcow2"), filepath.Join(tmp, "config.iso"), filepath.Join(tmp, "drive")
	latest := filepath.Join(drive, "openstack", "latest")
	if err := os.MkdirAll(latest, 0o755); err != nil {
		return 0, err
	}
	md := fmt.Sprintf(`{"uuid":%q,"name":"bare","hostname":"bare","project_id":"bench","meta":{}}`, uuid.NewString())
	if err := os.WriteFile(filepath.Join(latest, "meta_data.json"), []byte(md), 0o644); err != nil {
		return 0, err
	}
	for _, args := range [][]string{
		{"qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", filepath.Join(dir, "tiny.qcow2"), overlay, "1G"},
		{"genisoimage", "-o", iso, "-V", "config-2", "-J", "-r", "-quiet", drive},
	} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			return 0, fmt.Errorf("%s: %v: %s", args[0], err, out)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), guestTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", "-machine", "pc,accel=tcg", "-m", "512", "-smp", "1",
		"-nodefaults", "-no-user-config", "-display", "none",
		"-kernel", filepath.Join(dir, "vmlinuz"), "-initrd", filepath.Join(dir, "initrd.img"),
		"-append", "console=ttyS0 root=/dev/vda rw quiet",
		"-drive", "file="+overlay+",if=virtio,format=qcow2",
		"-drive", "file="+iso+",if=virtio,format=raw,readonly=on",
		"-serial", "stdio")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	var took time.Duration
	for sc := bufio.NewScanner(stdout); took == 0 && sc.Scan(); {
		if strings.Contains(sc.Text(), guestReady) {
			took = time.Since(start)
		}
	}
	cmd.Process.Kill()
	err = cmd.Wait()
	if took == 0 {
		return 0, fmt.Errorf("QEMU ended (%v) without %q within %v: %s", err, guestReady, guestTimeout, bytes.TrimSpace(stderr.Bytes()))
	}
	return took, nil
}
