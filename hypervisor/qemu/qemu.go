// Package qemu is the hypervisor driver that runs each server as a QEMU
// virtual machine, driven over QMP on a unix socket. A server's disk is a
// qcow2 overlay on its image, which the host downloads once and checks
// against the image service's checksums; its metadata reaches the guest on
// a config drive; its serial console is kept in a rotating log. KVM is used
// where a canary guest boots under it, and TCG emulation elsewhere.
//
// Everything of a server is in its directory, instances/ID under the
// driver's directory, and QEMU runs in it, so that its sockets and files
// have short relative names. QEMU processes outlive the agent, as libvirt's
// domains do: a restarted driver finds them again through their sockets.
package qemu

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/agent"
	"github.com/trustack/trustack/internal/namespace"
	"github.com/trustack/trustack/internal/qemuimg"
	"github.com/trustack/trustack/internal/qmp"
	"github.com/trustack/trustack/wire"
)

var (
	_ agent.Hypervisor = (*Driver)(nil)
	_ agent.Consoles   = (*Driver)(nil)
)

// Options configure the driver; zero values take the defaults.
type Options struct {
	// Dir holds the instances and the image cache (required).
	Dir string
	// Binary is QEMU's emulator (default qemu-system-x86_64); its image
	// tool is qemu-img.
	Binary string
	// Accel is auto, kvm or tcg (default auto: KVM where a canary guest
	// boots under it within CanaryTimeout, default 10 s).
	Accel         string
	CanaryTimeout time.Duration
	// Hostname names the host (default the machine's hostname).
	Hostname string
	// VCPUs, MemoryMB and DiskGB are what the host offers (defaults: the
	// machine's CPUs, memory and the size of Dir's file system).
	VCPUs, MemoryMB, DiskGB int
	// RAMAllocationRatio is how far spawns may overcommit memory (default
	// 1.0), as the agent tells the scheduler.
	RAMAllocationRatio float64
	// PowerOffTimeout is how long a guest has to power off after an ACPI
	// request before it is forced off (default 60 s, as Nova's
	// shutdown_timeout).
	PowerOffTimeout time.Duration
	// ConsoleLogSize is the size at which a console log is rotated (default
	// 1 MiB; one rotated log is kept).
	ConsoleLogSize int64
	// Namespace is the network namespace the guests run in, whose host
	// network made their taps: a name under /run/netns, or "" for the
	// agent's own.
	Namespace string
	// HTTPClient downloads images (default http.DefaultClient).
	HTTPClient *http.Client
	// Log receives what the driver does (default: discarded).
	Log *slog.Logger
}

// Driver runs servers as QEMU virtual machines. It is safe for concurrent
// use.
type Driver struct {
	opts    Options
	accel   string
	version int
	images  *imageCache

	mu      sync.Mutex
	servers map[string]*instance
}

// instance is a server on this host.
type instance struct {
	spec wire.Spec // without its image token
	dir  string
	vm   *vm // the running QEMU, nil when none; guarded by Driver.mu
}

// vm is a QEMU process.
type vm struct {
	mon     *qmp.Monitor
	console *serialPort // the console copier's, nil if it could not connect
	pid     int
}

// Files in an instance's directory, besides the console's.
const (
	specFile    = "spec.json"
	diskFile    = "disk.qcow2"
	configDrive = "config.iso"
	qmpSocket   = "qmp.sock"
	vncSocket   = "vnc.sock" // the guest's display, an RFB server
	// displayFile marks a server made with a display device, which its
	// VNC console shows; servers made before it keep the hardware they
	// were made with, so that their saved state still restores.
	displayFile = "display"
	pidFile     = "qemu.pid"
	qemuLog     = "qemu.log"
	savedState  = "suspended.state" // memory and devices of a suspended server
)

// New returns a driver, finding the servers and QEMU processes a previous
// one left in opts.Dir.
func New(ctx context.Context, opts Options) (*Driver, error) {
	if opts.Dir == "" {
		return nil, errors.New("qemu: a directory is required")
	}
	if opts.Binary == "" {
		opts.Binary = "qemu-system-x86_64"
	}
	if opts.Accel == "" {
		opts.Accel = "auto"
	}
	if opts.CanaryTimeout == 0 {
		opts.CanaryTimeout = 10 * time.Second
	}
	if opts.Hostname == "" {
		opts.Hostname, _ = os.Hostname()
	}
	if opts.RAMAllocationRatio == 0 {
		opts.RAMAllocationRatio = 1.0
	}
	if opts.PowerOffTimeout == 0 {
		opts.PowerOffTimeout = 60 * time.Second
	}
	if opts.ConsoleLogSize == 0 {
		opts.ConsoleLogSize = 1 << 20
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = http.DefaultClient
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if err := fillCapacity(&opts); err != nil {
		return nil, err
	}
	version, err := qemuVersion(ctx, opts.Binary)
	if err != nil {
		return nil, err
	}
	d := &Driver{opts: opts, version: version, servers: map[string]*instance{},
		images: &imageCache{dir: filepath.Join(opts.Dir, "images"), client: opts.HTTPClient, loading: map[string]*sync.Mutex{}}}
	var why string
	d.accel, why = chooseAccel(ctx, opts.Binary, opts.Accel, opts.CanaryTimeout)
	opts.Log.Info("QEMU acceleration", "accel", d.accel, "why", why)
	if err := os.MkdirAll(filepath.Join(opts.Dir, "instances"), 0o750); err != nil {
		return nil, err
	}
	if err := d.findServers(ctx); err != nil {
		return nil, err
	}
	return d, nil
}

// Accel returns the acceleration guests run with: kvm or tcg.
func (d *Driver) Accel() string { return d.accel }

// Patterns of what QEMU and /proc say.
var (
	memTotal      = regexp.MustCompile(`MemTotal:\s+(\d+) kB`)
	vmRSS         = regexp.MustCompile(`VmRSS:\s+(\d+) kB`)
	versionNumber = regexp.MustCompile(`version (\d+)\.(\d+)\.(\d+)`)
)

// fillCapacity sets what the host offers from the machine, where the
// options leave it out.
func fillCapacity(opts *Options) error {
	if opts.VCPUs == 0 {
		opts.VCPUs = runtime.NumCPU()
	}
	if opts.MemoryMB == 0 {
		b, err := os.ReadFile("/proc/meminfo")
		if err != nil {
			return fmt.Errorf("qemu: host memory: %w", err)
		}
		m := memTotal.FindSubmatch(b)
		if m == nil {
			return errors.New("qemu: no MemTotal in /proc/meminfo")
		}
		kb, _ := strconv.Atoi(string(m[1]))
		opts.MemoryMB = kb / 1024
	}
	if opts.DiskGB == 0 {
		if err := os.MkdirAll(opts.Dir, 0o750); err != nil {
			return err
		}
		var st syscall.Statfs_t
		if err := syscall.Statfs(opts.Dir, &st); err != nil {
			return fmt.Errorf("qemu: size of %s: %w", opts.Dir, err)
		}
		opts.DiskGB = int(st.Blocks * uint64(st.Bsize) >> 30)
	}
	return nil
}

// qemuVersion returns QEMU's version as Nova reports it: 7.2.1 is 7002001.
func qemuVersion(ctx context.Context, binary string) (int, error) {
	out, err := exec.CommandContext(ctx, binary, "--version").Output()
	if err != nil {
		return 0, fmt.Errorf("qemu: %s --version: %w", binary, err)
	}
	m := versionNumber.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("qemu: no version in %q", out)
	}
	v := 0
	for _, part := range m[1:] {
		n, _ := strconv.Atoi(string(part))
		v = v*1000 + n
	}
	return v, nil
}

// findServers loads the servers in the instances directory and connects
// to those whose QEMU still runs.
func (d *Driver) findServers(ctx context.Context) error {
	entries, err := os.ReadDir(filepath.Join(d.opts.Dir, "instances"))
	if err != nil {
		return err
	}
	for _, e := range entries {
		dir := filepath.Join(d.opts.Dir, "instances", e.Name())
		b, err := os.ReadFile(filepath.Join(dir, specFile))
		if err != nil {
			d.opts.Log.Warn("an instance directory without a spec", "dir", dir, "error", err)
			continue
		}
		inst := &instance{dir: dir}
		if err := json.Unmarshal(b, &inst.spec); err != nil {
			return fmt.Errorf("qemu: %s: %w", filepath.Join(dir, specFile), err)
		}
		inst.vm = d.reconnect(ctx, dir)
		d.servers[inst.spec.ServerID] = inst
	}
	return nil
}

// reconnect connects to a QEMU left running in dir, or returns nil.
func (d *Driver) reconnect(ctx context.Context, dir string) *vm {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	mon, err := qmp.Dial(ctx, dir, qmpSocket)
	if err != nil {
		return nil
	}
	b, _ := os.ReadFile(filepath.Join(dir, pidFile))
	v := &vm{mon: mon}
	v.pid, _ = strconv.Atoi(string(bytes.TrimSpace(b)))
	if v.console, err = copyConsole(ctx, dir, d.opts.ConsoleLogSize); err != nil {
		d.opts.Log.Warn("reconnect to a console", "dir", dir, "error", err)
	}
	return v
}

// Close lets go of the servers' QEMU processes, which go on running: a
// driver started later on the same directory finds them again.
func (d *Driver) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, inst := range d.servers {
		if v := inst.vm; v != nil {
			v.mon.Close()
			if v.console != nil {
				v.console.Close()
			}
			inst.vm = nil
		}
	}
}

// Describe returns the host.
func (d *Driver) Describe(context.Context) (agent.Resources, error) {
	return agent.Resources{VCPUs: d.opts.VCPUs, MemoryMB: d.opts.MemoryMB, DiskGB: d.opts.DiskGB,
		HypervisorType: "QEMU", HypervisorVersion: d.version, HypervisorHostname: d.opts.Hostname}, nil
}

// get returns the server, or ENOTFOUND.
func (d *Driver) get(id string) (*instance, *vm, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	inst := d.servers[id]
	if inst == nil {
		return nil, nil, trustack.Errorf(trustack.ENOTFOUND, "qemu: no server %s on this host", id)
	}
	return inst, inst.vm, nil
}

func (d *Driver) setVM(inst *instance, v *vm) {
	d.mu.Lock()
	defer d.mu.Unlock()
	inst.vm = v
}

// Spawn downloads the server's images if the host lacks them, makes its
// disk and config drive, and starts it.
func (d *Driver) Spawn(ctx context.Context, spec wire.Spec, volumes []agent.Disk) error {
	for _, disk := range volumes {
		if err := checkDisk(disk, true); err != nil {
			return err
		}
	}
	inst, err := d.reserve(spec)
	if inst == nil || err != nil {
		return err
	}
	token := spec.ImageToken
	inst.spec.ImageToken = ""
	if err := os.MkdirAll(inst.dir, 0o750); err != nil {
		return err
	}
	b, err := json.Marshal(inst.spec)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(inst.dir, specFile), b, 0o600); err != nil {
		return err
	}
	vols := map[string]agent.Disk{}
	for _, disk := range volumes {
		if err := writeKey(inst.dir, disk); err != nil {
			return err
		}
		vols[disk.Device] = disk
	}
	if err := writeVolumes(inst.dir, vols); err != nil {
		return err
	}
	if err := d.makeDisk(ctx, inst, token); err != nil {
		return err
	}
	if err := writeConfigDrive(ctx, inst.spec, filepath.Join(inst.dir, configDrive)); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(inst.dir, displayFile), nil, 0o600); err != nil {
		return err
	}
	return d.start(ctx, inst, false)
}

// reserve adds the server, or returns nil if it exists already. It
// refuses a server that would overcommit the host's memory beyond the
// allocation ratio, counting every server on the host, running or not.
func (d *Driver) reserve(spec wire.Spec) (*instance, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.servers[spec.ServerID]; ok {
		return nil, nil
	}
	used := 0
	for _, s := range d.servers {
		used += s.spec.MemoryMB
	}
	if limit := float64(d.opts.MemoryMB) * d.opts.RAMAllocationRatio; float64(used+spec.MemoryMB) > limit {
		return nil, trustack.Errorf(trustack.EOVERQUOTA, "qemu: %d MiB more would overcommit the host's %d MiB beyond the allocation ratio %g (%d MiB in use)",
			spec.MemoryMB, d.opts.MemoryMB, d.opts.RAMAllocationRatio, used)
	}
	inst := &instance{spec: spec, dir: filepath.Join(d.opts.Dir, "instances", spec.ServerID)}
	d.servers[spec.ServerID] = inst
	return inst, nil
}

// diskFormats are the image disk formats a server's disk may be an overlay
// on, with QEMU's name for each; snapshots are written in the same format,
// as the image service records them with the server's image's.
var diskFormats = map[string]string{"qcow2": "qcow2", "raw": "raw", "ami": "raw", "vmdk": "vmdk", "vdi": "vdi"}

// makeDisk fetches a direct kernel boot's kernel and ramdisk and, unless
// the server boots from a volume, makes its disk: a qcow2 overlay on its
// image, grown to the flavor's disk size.
func (d *Driver) makeDisk(ctx context.Context, inst *instance, token string) error {
	for _, ref := range []*wire.ImageRef{inst.spec.Kernel, inst.spec.Ramdisk} {
		if ref != nil {
			if _, err := d.images.path(ctx, ref, token); err != nil {
				return err
			}
		}
	}
	if inst.spec.BootsFromVolume() {
		return nil
	}
	img := &inst.spec.Image
	format, ok := diskFormats[img.DiskFormat]
	if !ok {
		return trustack.Errorf(trustack.EINVALID, "qemu: cannot boot from an image of disk format %q", img.DiskFormat)
	}
	base, err := d.images.path(ctx, img, token)
	if err != nil {
		return err
	}
	virtual, err := qemuimg.VirtualSize(ctx, base, format)
	if err != nil {
		return trustack.Errorf(trustack.EINVALID, "qemu: image %s is not a valid %s disk: %v", img.ID, img.DiskFormat, err)
	}
	size := int64(inst.spec.DiskGB) << 30
	if size > 0 && size < virtual {
		return trustack.Errorf(trustack.EINVALID, "qemu: the flavor's disk (%d GiB) is smaller than image %s (%d bytes)", inst.spec.DiskGB, img.ID, virtual)
	}
	return qemuimg.Create(ctx, filepath.Join(inst.dir, diskFile), "qcow2", size, base, format)
}

// defaultCommandLine is the kernel command line of a direct kernel boot
// whose image sets no os_command_line, as Nova's.
const defaultCommandLine = "root=/dev/vda console=tty0 console=ttyS0"

// args returns QEMU's command line for the server, its volumes included;
// restore starts it waiting for its saved state.
func (d *Driver) args(inst *instance, restore bool) ([]string, error) {
	s := inst.spec
	args := []string{
		"-name", "trustack-" + s.ServerID,
		"-machine", "pc,accel=" + d.accel,
		"-m", strconv.Itoa(s.MemoryMB), "-smp", strconv.Itoa(max(s.VCPUs, 1)),
		"-nodefaults", "-no-user-config", "-display", "none",
		"-S", // paused until the console is connected
		"-qmp", "unix:" + qmpSocket + ",server=on,wait=off",
		"-chardev", "socket,id=console,path=" + consoleSocket + ",server=on,wait=off",
		"-serial", "chardev:console",
		"-vnc", "unix:" + vncSocket,
		"-pidfile", pidFile,
	}
	// The root disk, then the config drive, in the first PCI slots, in
	// that order: the guest finds them as vda and vdb.
	vols, err := readVolumes(inst.dir)
	if err != nil {
		return nil, err
	}
	if root, ok := vols[wire.RootDevice]; ok {
		args = append(args, diskArgs(inst.dir, root)...)
	} else {
		args = append(args, "-drive", "file="+diskFile+",if=virtio,format=qcow2,id="+driveID(wire.RootDevice))
	}
	args = append(args, "-drive", "file="+configDrive+",if=virtio,format=raw,readonly=on,id="+driveID("vdb"))
	if d.accel == "kvm" {
		args = append(args, "-cpu", "host")
	}
	// A virtio-net NIC for each port, in order, on the tap the host's
	// network made for it (or, on a host whose network is simulated, one
	// QEMU makes and that leads nowhere).
	for i, p := range s.Ports {
		args = append(args, "-netdev", fmt.Sprintf("tap,id=nic%d,ifname=%s,script=no,downscript=no", i, wire.TapName(p.ID)),
			"-device", fmt.Sprintf("virtio-net-pci,netdev=nic%d,mac=%s", i, p.MAC))
	}
	if s.Kernel != nil {
		cmdline := s.Image.Properties["os_command_line"]
		if cmdline == "" {
			cmdline = defaultCommandLine
		}
		args = append(args, "-kernel", filepath.Join(d.images.dir, s.Kernel.ID), "-append", cmdline)
		if s.Ramdisk != nil {
			args = append(args, "-initrd", filepath.Join(d.images.dir, s.Ramdisk.ID))
		}
	}
	for _, dev := range slices.Sorted(maps.Keys(vols)) {
		if dev != wire.RootDevice {
			args = append(args, diskArgs(inst.dir, vols[dev])...)
		}
	}
	if _, err := os.Stat(filepath.Join(inst.dir, displayFile)); err == nil {
		// Last, so that the disks and NICs keep their PCI slots.
		args = append(args, "-device", "VGA")
	}
	if restore {
		args = append(args, "-incoming", "defer")
	}
	return args, nil
}

// start starts the server's QEMU, from its saved state if restore, and
// returns once the guest runs.
func (d *Driver) start(ctx context.Context, inst *instance, restore bool) (err error) {
	logf, err := os.OpenFile(filepath.Join(inst.dir, qemuLog), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	args, err := d.args(inst, restore)
	if err != nil {
		return err
	}
	// Not bound to ctx: the VM outlives the request, and the agent.
	cmd := exec.Command(d.opts.Binary, args...)
	cmd.Dir = inst.dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // not killed with the agent's terminal
	ns, err := namespace.Open(d.opts.Namespace)
	if err != nil {
		return fmt.Errorf("qemu: %w", err)
	}
	defer ns.Close()
	if err := ns.Do(cmd.Start); err != nil {
		return fmt.Errorf("qemu: start: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	v := &vm{pid: cmd.Process.Pid}
	defer func() {
		if err != nil {
			cmd.Process.Kill()
			<-exited
			if v.mon != nil {
				v.mon.Close()
			}
		}
	}()
	if v.mon, err = d.connect(ctx, inst.dir, exited); err != nil {
		return err
	}
	if v.console, err = copyConsole(ctx, inst.dir, d.opts.ConsoleLogSize); err != nil {
		return fmt.Errorf("qemu: console: %w", err)
	}
	if restore {
		if err := d.restore(ctx, v.mon); err != nil {
			return err
		}
	}
	if _, err := v.mon.Run(ctx, "cont", nil); err != nil {
		return err
	}
	d.setVM(inst, v)
	return nil
}

// connect waits for the QMP socket of the QEMU starting in dir.
func (d *Driver) connect(ctx context.Context, dir string, exited <-chan struct{}) (*qmp.Monitor, error) {
	for {
		mon, err := qmp.Dial(ctx, dir, qmpSocket)
		if err == nil {
			return mon, nil
		}
		select {
		case <-exited:
			out, _ := os.ReadFile(filepath.Join(dir, qemuLog))
			return nil, fmt.Errorf("qemu: QEMU exited at start: %s", bytes.TrimSpace(out))
		case <-ctx.Done():
			return nil, fmt.Errorf("qemu: no QMP socket: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// restore loads the saved state into a QEMU started with -incoming defer.
func (d *Driver) restore(ctx context.Context, mon *qmp.Monitor) error {
	if _, err := mon.Run(ctx, "migrate-incoming", map[string]string{"uri": "exec:cat " + savedState}); err != nil {
		return err
	}
	return waitMigration(ctx, mon)
}

// waitMigration waits for the migration under way, either way, to end.
func waitMigration(ctx context.Context, mon *qmp.Monitor) error {
	for {
		out, err := mon.Run(ctx, "query-migrate", nil)
		if err != nil {
			return err
		}
		var st struct {
			Status    string `json:"status"`
			ErrorDesc string `json:"error-desc"`
		}
		if err := json.Unmarshal(out, &st); err != nil {
			return fmt.Errorf("query-migrate: %w", err)
		}
		switch st.Status {
		case "completed":
			return nil
		case "failed", "cancelled":
			return fmt.Errorf("qemu: saving or restoring the server's state %s: %s", st.Status, st.ErrorDesc)
		}
		// An incoming migration reports nothing until it ends; its status
		// is then the VM's.
		if st.Status == "" {
			status, err := runState(ctx, mon)
			if err != nil {
				return err
			}
			if status != "inmigrate" {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Destroy stops the server's QEMU and removes its directory.
func (d *Driver) Destroy(ctx context.Context, serverID string) error {
	d.mu.Lock()
	inst := d.servers[serverID]
	d.mu.Unlock()
	dir := filepath.Join(d.opts.Dir, "instances", serverID)
	if inst == nil {
		// A spawn cut off by a crash may have left a QEMU running.
		inst = &instance{dir: dir, vm: d.reconnect(ctx, dir)}
	}
	if err := d.halt(ctx, inst, false); err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("qemu: remove %s: %w", dir, err)
	}
	d.mu.Lock()
	delete(d.servers, serverID)
	d.mu.Unlock()
	return nil
}

// quitTimeout bounds the wait for a QEMU to quit before it is killed.
const quitTimeout = 10 * time.Second

// halt ends the server's QEMU: if graceful, it asks the guest to power off
// (ACPI) and waits PowerOffTimeout; then it quits QEMU, and kills it if it
// does not go within quitTimeout. A QEMU whose volumes' NBD servers are
// gone neither answers nor quits until it has waited for each to come
// back, which the kill cuts short, even once ctx has ended.
func (d *Driver) halt(ctx context.Context, inst *instance, graceful bool) error {
	d.mu.Lock()
	v := inst.vm
	d.mu.Unlock()
	if v == nil {
		return nil
	}
	if graceful {
		d.powerDown(ctx, v)
	}
	if !v.mon.Gone() {
		quit, cancel := context.WithTimeout(ctx, quitTimeout)
		v.mon.Run(quit, "quit", nil) // QEMU may exit before it answers
		v.wait(quit, quitTimeout)
		cancel()
	}
	if !v.mon.Gone() && v.pid > 0 {
		syscall.Kill(v.pid, syscall.SIGKILL)
		v.wait(context.WithoutCancel(ctx), quitTimeout)
	}
	if !v.mon.Gone() {
		return trustack.Errorf(trustack.EUNAVAILABLE, "qemu: QEMU of server %s (pid %d) does not exit", inst.spec.ServerID, v.pid)
	}
	d.setVM(inst, nil)
	return nil
}

// powerDownRetry is how often the ACPI power button is pressed again: a
// guest that is still booting misses a press, as Nova's libvirt driver
// knows (it presses every 10 s).
const powerDownRetry = 5 * time.Second

// powerDown asks the guest to power off, again and again, until QEMU exits
// or PowerOffTimeout passes.
func (d *Driver) powerDown(ctx context.Context, v *vm) {
	deadline := time.Now().Add(d.opts.PowerOffTimeout)
	for !v.mon.Gone() && time.Now().Before(deadline) {
		if _, err := v.mon.Run(ctx, "system_powerdown", nil); err != nil {
			return
		}
		v.wait(ctx, min(powerDownRetry, time.Until(deadline)))
		if ctx.Err() != nil {
			return
		}
	}
}

// wait waits up to timeout for the QEMU to exit.
func (v *vm) wait(ctx context.Context, timeout time.Duration) {
	select {
	case <-v.mon.Done():
	case <-time.After(timeout):
	case <-ctx.Done():
	}
}

// powerOf maps QEMU's run states to power states.
func powerOf(status string) trustack.PowerState {
	switch status {
	case "running":
		return trustack.PowerRunning
	case "paused", "suspended", "debug", "finish-migrate", "restore-vm", "save-vm", "watchdog", "colo":
		return trustack.PowerPaused
	case "shutdown":
		return trustack.PowerShutdown
	case "internal-error", "io-error", "guest-panicked":
		return trustack.PowerCrashed
	case "postmigrate":
		return trustack.PowerSuspended
	}
	return trustack.PowerNoState
}

// State returns the server's power state: QEMU's run state while it runs,
// and otherwise suspended if its state is saved, shut down if not.
func (d *Driver) State(ctx context.Context, serverID string) (trustack.PowerState, error) {
	inst, v, err := d.get(serverID)
	if err != nil {
		return trustack.PowerNoState, err
	}
	return d.state(ctx, inst, v)
}

func (d *Driver) state(ctx context.Context, inst *instance, v *vm) (trustack.PowerState, error) {
	if v != nil && !v.mon.Gone() {
		status, err := runState(ctx, v.mon)
		if err == nil {
			return powerOf(status), nil
		}
		if !v.mon.Gone() {
			return trustack.PowerNoState, err
		}
	}
	if _, err := os.Stat(filepath.Join(inst.dir, savedState)); err == nil {
		return trustack.PowerSuspended, nil
	}
	return trustack.PowerShutdown, nil
}

// List returns every server's power state.
func (d *Driver) List(ctx context.Context) (map[string]trustack.PowerState, error) {
	d.mu.Lock()
	type entry struct {
		inst *instance
		vm   *vm
	}
	all := make([]entry, 0, len(d.servers))
	for _, inst := range d.servers {
		all = append(all, entry{inst, inst.vm})
	}
	d.mu.Unlock()
	out := make(map[string]trustack.PowerState, len(all))
	for _, e := range all {
		state, err := d.state(ctx, e.inst, e.vm)
		if err != nil {
			return nil, err
		}
		out[e.inst.spec.ServerID] = state
	}
	return out, nil
}

// Power carries out a power operation.
func (d *Driver) Power(ctx context.Context, serverID string, op wire.PowerOp) error {
	from, ok := wire.PowerFrom[op]
	if !ok {
		return trustack.Errorf(trustack.EINVALID, "qemu: unknown power operation %q", op)
	}
	inst, v, err := d.get(serverID)
	if err != nil {
		return err
	}
	state, err := d.state(ctx, inst, v)
	if err != nil {
		return err
	}
	if !slices.Contains(from, state) {
		return trustack.Errorf(trustack.ECONFLICT, "qemu: cannot %s a server in power state %d", op, state)
	}
	switch op {
	case wire.OpPause:
		_, err = v.mon.Run(ctx, "stop", nil)
	case wire.OpUnpause:
		_, err = v.mon.Run(ctx, "cont", nil)
	case wire.OpSuspend:
		err = d.suspend(ctx, inst, v)
	case wire.OpResume:
		if err = d.start(ctx, inst, true); err == nil {
			err = os.Remove(filepath.Join(inst.dir, savedState))
		}
	case wire.OpStop:
		err = d.halt(ctx, inst, state == trustack.PowerRunning)
		if err == nil {
			err = removeSavedState(inst)
		}
	case wire.OpStart:
		err = d.start(ctx, inst, false)
	case wire.OpRebootSoft:
		if err = d.halt(ctx, inst, true); err == nil {
			err = d.start(ctx, inst, false)
		}
	case wire.OpRebootHard:
		err = d.reset(ctx, inst, v)
	case wire.OpCrashDump:
		_, err = v.mon.Run(ctx, "inject-nmi", nil)
	}
	return err
}

// suspend saves the server's memory and devices to a file, as libvirt's
// managed save does, and ends its QEMU.
func (d *Driver) suspend(ctx context.Context, inst *instance, v *vm) error {
	if _, err := v.mon.Run(ctx, "stop", nil); err != nil {
		return err
	}
	saved := false
	defer func() {
		if !saved {
			v.mon.Run(context.WithoutCancel(ctx), "cont", nil)
		}
	}()
	// Save at disk speed rather than at a network's pace.
	if _, err := v.mon.Run(ctx, "migrate-set-parameters", map[string]any{"max-bandwidth": int64(1) << 40}); err != nil {
		return err
	}
	tmp := savedState + ".tmp"
	if _, err := v.mon.Run(ctx, "migrate", map[string]string{"uri": "exec:cat > " + tmp}); err != nil {
		return err
	}
	if err := waitMigration(ctx, v.mon); err != nil {
		os.Remove(filepath.Join(inst.dir, tmp))
		return err
	}
	if err := os.Rename(filepath.Join(inst.dir, tmp), filepath.Join(inst.dir, savedState)); err != nil {
		return err
	}
	saved = true
	return d.halt(ctx, inst, false)
}

// reset is a hard reboot: a reset of the running QEMU, or a fresh start
// of one where none runs, dropping any saved state.
func (d *Driver) reset(ctx context.Context, inst *instance, v *vm) error {
	if v != nil && !v.mon.Gone() {
		if _, err := v.mon.Run(ctx, "system_reset", nil); err != nil {
			return err
		}
		_, err := v.mon.Run(ctx, "cont", nil)
		return err
	}
	if err := removeSavedState(inst); err != nil {
		return err
	}
	return d.start(ctx, inst, false)
}

func removeSavedState(inst *instance) error {
	if err := os.Remove(filepath.Join(inst.dir, savedState)); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}

// Console returns the last lines of the server's serial console.
func (d *Driver) Console(_ context.Context, serverID string, lines int) (string, error) {
	inst, _, err := d.get(serverID)
	if err != nil {
		return "", err
	}
	return readConsole(inst.dir, lines)
}

// OpenConsole connects to a running server's VNC server or serial port.
func (d *Driver) OpenConsole(ctx context.Context, serverID, protocol string) (io.ReadWriteCloser, error) {
	inst, v, err := d.get(serverID)
	if err != nil {
		return nil, err
	}
	if v == nil {
		return nil, trustack.Errorf(trustack.ECONFLICT, "qemu: server %s is not running", serverID)
	}
	switch protocol {
	case "vnc":
		conn, err := qmp.DialUnix(ctx, inst.dir, vncSocket)
		if err != nil {
			return nil, trustack.Errorf(trustack.EUNAVAILABLE, "qemu: server %s's display: %v", serverID, err)
		}
		return conn, nil
	case "serial":
		if v.console == nil {
			return nil, trustack.Errorf(trustack.EUNAVAILABLE, "qemu: server %s's serial console is not connected", serverID)
		}
		return v.console.attach()
	}
	return nil, trustack.Errorf(trustack.EINVALID, "qemu: no %s console", protocol)
}

// Snapshot writes a copy of the server's disk, in its image's disk
// format, pausing a running guest while the copy is made.
func (d *Driver) Snapshot(ctx context.Context, serverID string, w io.Writer) error {
	inst, v, err := d.get(serverID)
	if err != nil {
		return err
	}
	if inst.spec.BootsFromVolume() {
		return trustack.Errorf(trustack.EINVALID, "qemu: server %s boots from a volume, and has no disk of its own to copy", serverID)
	}
	format := diskFormats[inst.spec.Image.DiskFormat]
	if format == "" {
		format = "qcow2"
	}
	state, err := d.state(ctx, inst, v)
	if err != nil {
		return err
	}
	if state == trustack.PowerRunning {
		if _, err := v.mon.Run(ctx, "stop", nil); err != nil {
			return err
		}
	}
	tmp := filepath.Join(inst.dir, "snapshot.tmp")
	defer os.Remove(tmp)
	err = qemuimg.Convert(ctx, filepath.Join(inst.dir, diskFile), "qcow2", tmp, format)
	if state == trustack.PowerRunning {
		if _, cerr := v.mon.Run(context.WithoutCancel(ctx), "cont", nil); cerr != nil && err == nil {
			return cerr
		}
	}
	if err != nil {
		return err
	}
	f, err := os.Open(tmp)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}

// clockTicks is the unit of CPU times in /proc (USER_HZ, 100 on Linux).
const clockTicks = 100

// Diagnostics reports the server's memory and, while QEMU runs, the CPU
// time of each vCPU thread, QEMU's resident memory and its disks' I/O.
func (d *Driver) Diagnostics(ctx context.Context, serverID string) (map[string]int64, error) {
	inst, v, err := d.get(serverID)
	if err != nil {
		return nil, err
	}
	out := map[string]int64{"memory": int64(inst.spec.MemoryMB) * 1024}
	if v == nil || v.mon.Gone() {
		return out, nil
	}
	// QEMU answers these queries at once from what it holds, unless its
	// main loop is blocked: draining its disks (a stop, a detach) while a
	// volume's NBD server does not answer, which QEMU waits for without
	// end.
	ctx, cancel := context.WithTimeout(ctx, diagnosticsTimeout)
	defer cancel()
	raw, err := v.mon.Run(ctx, "query-cpus-fast", nil)
	if err != nil {
		return nil, unresponsive(inst, err)
	}
	var cpus []struct {
		Index  int `json:"cpu-index"`
		Thread int `json:"thread-id"`
	}
	if err := json.Unmarshal(raw, &cpus); err != nil {
		return nil, fmt.Errorf("query-cpus-fast: %w", err)
	}
	for _, c := range cpus {
		if ticks, err := cpuTicks(v.pid, c.Thread); err == nil {
			out[fmt.Sprintf("cpu%d_time", c.Index)] = ticks * int64(time.Second/clockTicks)
		}
	}
	if rss, err := residentKiB(v.pid); err == nil {
		out["memory-rss"] = rss
	}
	if raw, err = v.mon.Run(ctx, "query-blockstats", nil); err != nil {
		return nil, unresponsive(inst, err)
	}
	var disks []struct {
		Device   string `json:"device"`
		NodeName string `json:"node-name"`
		Stats    struct {
			ReadBytes  int64 `json:"rd_bytes"`
			WriteBytes int64 `json:"wr_bytes"`
			Reads      int64 `json:"rd_operations"`
			Writes     int64 `json:"wr_operations"`
		} `json:"stats"`
	}
	if err := json.Unmarshal(raw, &disks); err != nil {
		return nil, fmt.Errorf("query-blockstats: %w", err)
	}
	// Each disk by the device the guest sees: the server's own disk and
	// config drive by their drive's ID, volumes by their node's name.
	for _, disk := range disks {
		name, ok := strings.CutPrefix(disk.Device, driveID(""))
		if !ok {
			if name, ok = strings.CutPrefix(disk.NodeName, nodeName("")); !ok {
				continue
			}
		}
		out[name+"_read"], out[name+"_write"] = disk.Stats.ReadBytes, disk.Stats.WriteBytes
		out[name+"_read_req"], out[name+"_write_req"] = disk.Stats.Reads, disk.Stats.Writes
	}
	return out, nil
}

// diagnosticsTimeout bounds the QMP queries of Diagnostics.
const diagnosticsTimeout = 10 * time.Second

// unresponsive is the error of a QMP query of a server's QEMU that got
// no answer: ECONFLICT if QEMU has exited, EUNAVAILABLE if it did not
// answer in time, naming the volumes it reaches over NBD, whose storage
// hosts it may be waiting for.
func unresponsive(inst *instance, err error) error {
	if errors.Is(err, qmp.ErrGone) {
		return trustack.Errorf(trustack.ECONFLICT, "qemu: the QEMU of server %s has exited", inst.spec.ServerID)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	msg := fmt.Sprintf("qemu: the QEMU of server %s did not answer within %v", inst.spec.ServerID, diagnosticsTimeout)
	vols, _ := readVolumes(inst.dir)
	var remote []string
	for _, dev := range slices.Sorted(maps.Keys(vols)) {
		if d := vols[dev]; d.NBD != nil {
			remote = append(remote, fmt.Sprintf("volume %s (%s) from %s:%d", d.VolumeID, dev, d.NBD.Host, d.NBD.Port))
		}
	}
	if len(remote) > 0 {
		msg += "; it may be waiting for the storage host of " + strings.Join(remote, ", ") + ", which does not answer"
	}
	return trustack.Errorf(trustack.EUNAVAILABLE, "%s", msg)
}

// cpuTicks returns the CPU time (user and system) of a thread of a
// process, in clock ticks.
func cpuTicks(pid, tid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/stat", pid, tid))
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces: count fields
	// after it. utime and stime are fields 14 and 15 of the line.
	i := strings.LastIndexByte(string(b), ')')
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 13 {
		return 0, fmt.Errorf("short stat of thread %d", tid)
	}
	user, err1 := strconv.ParseInt(fields[11], 10, 64)
	system, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return user + system, nil
}

// residentKiB returns the resident memory of a process.
func residentKiB(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	m := vmRSS.FindSubmatch(b)
	if m == nil {
		return 0, fmt.Errorf("no VmRSS for process %d", pid)
	}
	return strconv.ParseInt(string(m[1]), 10, 64)
}
