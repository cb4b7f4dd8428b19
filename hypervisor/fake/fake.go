// Package fake is a hypervisor that runs no VMs: it keeps its servers in
// memory, honours every power operation with the states a real driver
// would report, writes a plausible console, and can be told to fail or to
// be slow. Tests use it to exercise the whole cloud without QEMU, and
// `trustack up` uses it to simulate thousands of hosts in one process. It
// may keep its state in a file, so that a restarted agent finds its
// servers again as a real host would.
package fake

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/agent"
	"github.com/trustack/trustack/wire"
)

var (
	_ agent.Hypervisor = (*Driver)(nil)
	_ agent.Consoles   = (*Driver)(nil)
)

// Options describe the simulated host; zero values take the defaults.
type Options struct {
	Hostname string // default "fake-host"
	VCPUs    int    // default 8
	MemoryMB int    // default 16384
	DiskGB   int    // default 200
	// RAMAllocationRatio is how far spawns may overcommit memory (default
	// 1.0), as the agent tells the scheduler.
	RAMAllocationRatio float64
	// StateFile, if set, keeps the servers across restarts of the driver.
	StateFile string
	// SnapshotTime is how long a snapshot takes, as a real one takes a
	// while (clients watch it in progress); default none.
	SnapshotTime time.Duration
	// Delay is how long every operation takes at least (SetDelay changes
	// it); default none.
	Delay time.Duration
	// Now returns the current time (default time.Now).
	Now func() time.Time
}

// Driver is the fake hypervisor. It is safe for concurrent use.
type Driver struct {
	opts Options

	mu       sync.Mutex
	servers  map[string]*server
	failures map[string][]error // by operation, consumed in order
	delay    time.Duration
}

// server is a simulated VM.
type server struct {
	Spec    wire.Spec           `json:"spec"`
	Power   trustack.PowerState `json:"power"`
	Console []string            `json:"console"`
	Boots   int                 `json:"boots"`
	Booted  time.Time           `json:"booted"`
	// Volumes are the disks plugged in, by device.
	Volumes map[string]agent.Disk `json:"volumes,omitempty"`
}

// New returns a driver with the given host, reading its state file if it
// has one.
func New(opts Options) (*Driver, error) {
	if opts.Hostname == "" {
		opts.Hostname = "fake-host"
	}
	if opts.VCPUs == 0 {
		opts.VCPUs = 8
	}
	if opts.MemoryMB == 0 {
		opts.MemoryMB = 16384
	}
	if opts.DiskGB == 0 {
		opts.DiskGB = 200
	}
	if opts.RAMAllocationRatio == 0 {
		opts.RAMAllocationRatio = 1.0
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	d := &Driver{opts: opts, servers: map[string]*server{}, failures: map[string][]error{}}
	if opts.StateFile != "" {
		b, err := os.ReadFile(opts.StateFile)
		switch {
		case err == nil:
			if err := json.Unmarshal(b, &d.servers); err != nil {
				return nil, fmt.Errorf("fake hypervisor state %s: %w", opts.StateFile, err)
			}
		case !os.IsNotExist(err):
			return nil, fmt.Errorf("fake hypervisor state: %w", err)
		}
	}
	d.delay = opts.Delay
	return d, nil
}

// Fail makes the next call of op ("spawn", "destroy", "power", "snapshot",
// "console") fail with err; several calls queue several failures.
func (d *Driver) Fail(op string, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.failures[op] = append(d.failures[op], err)
}

// SetDelay makes every operation take at least delay.
func (d *Driver) SetDelay(delay time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.delay = delay
}

// Crash makes a server stop as if its VM died.
func (d *Driver) Crash(serverID string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if s := d.servers[serverID]; s != nil {
		s.Power = trustack.PowerShutdown
		s.log(d.now(), "Kernel panic - not syncing: simulated crash")
		d.save()
	}
}

// begin waits for the configured delay and returns the queued failure of
// op, if any.
func (d *Driver) begin(ctx context.Context, op string) error {
	d.mu.Lock()
	delay := d.delay
	var err error
	if q := d.failures[op]; len(q) > 0 {
		err, d.failures[op] = q[0], q[1:]
	}
	d.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return trustack.Errorf(trustack.EUNAVAILABLE, "fake hypervisor: %v", ctx.Err())
		}
	}
	return err
}

func (d *Driver) now() time.Time { return d.opts.Now() }

// Describe returns the simulated host.
func (d *Driver) Describe(context.Context) (agent.Resources, error) {
	return agent.Resources{VCPUs: d.opts.VCPUs, MemoryMB: d.opts.MemoryMB, DiskGB: d.opts.DiskGB,
		HypervisorType: "fake", HypervisorVersion: 1000, HypervisorHostname: d.opts.Hostname}, nil
}

// Spawn "boots" a server with its volumes: it runs at once, and its
// console says what a trustack guest would.
func (d *Driver) Spawn(ctx context.Context, spec wire.Spec, volumes []agent.Disk) error {
	if err := d.begin(ctx, "spawn"); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.servers[spec.ServerID]; ok {
		return nil
	}
	var used int
	for _, s := range d.servers {
		used += s.Spec.MemoryMB
	}
	if float64(used+spec.MemoryMB) > float64(d.opts.MemoryMB)*d.opts.RAMAllocationRatio {
		return trustack.Errorf(trustack.EOVERQUOTA, "fake hypervisor: %d MiB more would overcommit the host's %d MiB beyond the allocation ratio %g",
			spec.MemoryMB, d.opts.MemoryMB, d.opts.RAMAllocationRatio)
	}
	s := &server{Spec: spec}
	for _, v := range volumes {
		if s.Volumes == nil {
			s.Volumes = map[string]agent.Disk{}
		}
		s.Volumes[v.Device] = v
	}
	d.servers[spec.ServerID] = s
	s.boot(d.now())
	d.save()
	return nil
}

// boot writes what a booting trustack guest prints and makes it run.
func (s *server) boot(now time.Time) {
	s.Boots++
	s.Booted = now
	s.Power = trustack.PowerRunning
	s.log(now, "Linux version 6.1.0-fake (trustack fake hypervisor)")
	s.log(now, "Run /init as init process")
	s.log(now, "trustack-guest ready")
	s.log(now, "trustack-guest hostname: "+s.Spec.Hostname)
	if s.Spec.KeyData != "" {
		s.log(now, "trustack-guest key "+s.Spec.KeyName+": "+fingerprint(s.Spec.KeyData))
	}
}

// fingerprint is the MD5 fingerprint of an authorized_keys line, as the
// trustack guest prints it and the compute API shows keypairs'.
func fingerprint(key string) string {
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(key))
	if err != nil {
		return "none"
	}
	return ssh.FingerprintLegacyMD5(pub)
}

// maxConsole bounds the console lines kept per server.
const maxConsole = 1000

func (s *server) log(now time.Time, line string) {
	s.Console = append(s.Console, fmt.Sprintf("[%s] %s", now.UTC().Format("15:04:05.000"), line))
	if len(s.Console) > maxConsole {
		s.Console = s.Console[len(s.Console)-maxConsole:]
	}
}

// Destroy forgets a server.
func (d *Driver) Destroy(ctx context.Context, serverID string) error {
	if err := d.begin(ctx, "destroy"); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.servers, serverID)
	d.save()
	return nil
}

// powerResults give, per operation, the power state it leaves and what
// the console says of it.
var powerResults = map[wire.PowerOp]struct {
	to   trustack.PowerState
	line string
}{
	wire.OpPause:      {trustack.PowerPaused, "paused"},
	wire.OpUnpause:    {trustack.PowerRunning, "unpaused"},
	wire.OpSuspend:    {trustack.PowerSuspended, "suspended to disk"},
	wire.OpResume:     {trustack.PowerRunning, "resumed"},
	wire.OpStop:       {trustack.PowerShutdown, "trustack-guest powering off"},
	wire.OpStart:      {trustack.PowerRunning, ""},
	wire.OpRebootSoft: {trustack.PowerRunning, "trustack-guest powering off"},
	wire.OpRebootHard: {trustack.PowerRunning, ""},
	wire.OpCrashDump:  {trustack.PowerRunning, NMILine},
}

// NMILine is what a fake server's console says when it is sent a
// non-maskable interrupt (wire.OpCrashDump), as a Linux guest logs one.
const NMILine = "NMI received for unknown reason"

// Power carries out a power operation.
func (d *Driver) Power(ctx context.Context, serverID string, op wire.PowerOp) error {
	if err := d.begin(ctx, "power"); err != nil {
		return err
	}
	rule, ok := powerResults[op]
	if !ok {
		return trustack.Errorf(trustack.EINVALID, "fake hypervisor: unknown power operation %q", op)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.servers[serverID]
	if s == nil {
		return trustack.Errorf(trustack.ENOTFOUND, "fake hypervisor: no server %s", serverID)
	}
	if !slices.Contains(wire.PowerFrom[op], s.Power) {
		return trustack.Errorf(trustack.ECONFLICT, "fake hypervisor: cannot %s a server in power state %d", op, s.Power)
	}
	if rule.line != "" {
		s.log(d.now(), rule.line)
	}
	if rule.to == trustack.PowerRunning && (op == wire.OpStart || op == wire.OpRebootSoft || op == wire.OpRebootHard) {
		s.boot(d.now())
	}
	s.Power = rule.to
	d.save()
	return nil
}

// State returns a server's power state.
func (d *Driver) State(_ context.Context, serverID string) (trustack.PowerState, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.servers[serverID]
	if s == nil {
		return trustack.PowerNoState, trustack.Errorf(trustack.ENOTFOUND, "fake hypervisor: no server %s", serverID)
	}
	return s.Power, nil
}

// List returns every server's power state.
func (d *Driver) List(context.Context) (map[string]trustack.PowerState, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string]trustack.PowerState, len(d.servers))
	for id, s := range d.servers {
		out[id] = s.Power
	}
	return out, nil
}

// Console returns the last lines of a server's console.
func (d *Driver) Console(ctx context.Context, serverID string, lines int) (string, error) {
	if err := d.begin(ctx, "console"); err != nil {
		return "", err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.servers[serverID]
	if s == nil {
		return "", trustack.Errorf(trustack.ENOTFOUND, "fake hypervisor: no server %s", serverID)
	}
	out := s.Console
	if lines > 0 && len(out) > lines {
		out = out[len(out)-lines:]
	}
	return strings.Join(out, "\n") + "\n", nil
}

// OpenConsole connects to a running server's console: its "vnc" console
// is an RFB server without a display (fakeRFB); its "serial"
// console echoes what is typed, as a terminal line whose guest echoes
// does. Either lets the console proxy be tested without a hypervisor.
func (d *Driver) OpenConsole(ctx context.Context, serverID, protocol string) (io.ReadWriteCloser, error) {
	if err := d.begin(ctx, "open console"); err != nil {
		return nil, err
	}
	d.mu.Lock()
	s := d.servers[serverID]
	d.mu.Unlock()
	switch {
	case s == nil:
		return nil, trustack.Errorf(trustack.ENOTFOUND, "fake hypervisor: no server %s", serverID)
	case s.Power != trustack.PowerRunning:
		return nil, trustack.Errorf(trustack.ECONFLICT, "fake hypervisor: server %s is not running", serverID)
	case protocol != "vnc" && protocol != "serial":
		return nil, trustack.Errorf(trustack.EINVALID, "fake hypervisor: no %s console", protocol)
	}
	ours, theirs := net.Pipe()
	go func() {
		defer ours.Close()
		if protocol == "vnc" {
			fakeRFB(ours, "trustack-"+serverID)
			return
		}
		io.Copy(ours, ours)
	}()
	return theirs, nil
}

// fakeRFB is an RFB 3.8 server without a display: it takes a client
// through the handshake (security type None) to its ServerInit, a 640x480
// true-colour desktop called name, as Tempest's test_novnc does, then
// ignores what the client sends.
func fakeRFB(conn io.ReadWriter, name string) {
	step := func(send []byte, receive int) bool {
		if _, err := conn.Write(send); err != nil {
			return false
		}
		_, err := io.ReadFull(conn, make([]byte, receive))
		return err == nil
	}
	init := []byte{2, 128, 1, 224, // 640x480
		32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0} // 32 bits, depth 24, true colour, RGB at 16, 8, 0
	init = binary.BigEndian.AppendUint32(init, uint32(len(name)))
	if step([]byte("RFB 003.008\n"), 12) && // the client's version
		step([]byte{1, 1}, 1) && // one security type, None; the client's choice
		step([]byte{0, 0, 0, 0}, 1) && // security passed; ClientInit
		step(append(init, name...), 0) {
		io.Copy(io.Discard, conn)
	}
}

// Snapshot writes a small disk image that names the server and its image.
func (d *Driver) Snapshot(ctx context.Context, serverID string, w io.Writer) error {
	if err := d.begin(ctx, "snapshot"); err != nil {
		return err
	}
	d.mu.Lock()
	s := d.servers[serverID]
	var spec wire.Spec
	if s != nil {
		spec = s.Spec
	}
	d.mu.Unlock()
	if s == nil {
		return trustack.Errorf(trustack.ENOTFOUND, "fake hypervisor: no server %s", serverID)
	}
	select {
	case <-time.After(d.opts.SnapshotTime):
	case <-ctx.Done():
		return trustack.Errorf(trustack.EUNAVAILABLE, "fake hypervisor: snapshot cut off: %v", ctx.Err())
	}
	_, err := fmt.Fprintf(w, "trustack fake disk of server %s (%s), from image %s, taken at %s\n",
		spec.ServerID, spec.Name, spec.Image.ID, d.now().UTC().Format(time.RFC3339Nano))
	return err
}

// bootCPUTime is the CPU time a simulated boot takes.
const bootCPUTime = time.Second

// Diagnostics reports the server's memory, and while it runs, as its CPU
// time, that of its boot and the time since, as if its vCPU were busy.
func (d *Driver) Diagnostics(_ context.Context, serverID string) (map[string]int64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.servers[serverID]
	if s == nil {
		return nil, trustack.Errorf(trustack.ENOTFOUND, "fake hypervisor: no server %s", serverID)
	}
	out := map[string]int64{"memory": int64(s.Spec.MemoryMB) * 1024}
	if s.Power == trustack.PowerRunning {
		out["cpu0_time"] = int64(bootCPUTime + d.now().Sub(s.Booted))
	}
	return out, nil
}

// AttachVolume plugs a volume in; the guest's console says so.
func (d *Driver) AttachVolume(ctx context.Context, serverID string, disk agent.Disk) error {
	if err := d.begin(ctx, "attach_volume"); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.servers[serverID]
	if s == nil {
		return trustack.Errorf(trustack.ENOTFOUND, "fake hypervisor: no server %s", serverID)
	}
	if have, ok := s.Volumes[disk.Device]; ok {
		switch {
		case have.VolumeID != disk.VolumeID:
			return trustack.Errorf(trustack.ECONFLICT, "fake hypervisor: server %s has volume %s at %s", serverID, have.VolumeID, disk.Device)
		case reflect.DeepEqual(have, disk):
			return nil
		case s.Power == trustack.PowerRunning:
			return trustack.Errorf(trustack.ECONFLICT, "fake hypervisor: server %s runs with volume %s as it was served", serverID, disk.VolumeID)
		}
		s.Volumes[disk.Device] = disk
		d.save()
		return nil
	}
	if s.Volumes == nil {
		s.Volumes = map[string]agent.Disk{}
	}
	s.Volumes[disk.Device] = disk
	s.log(d.now(), fmt.Sprintf("virtio_blk virtio2: [%s] attached volume %s", disk.Device, disk.VolumeID))
	d.save()
	return nil
}

// DetachVolume unplugs the volume at a device.
func (d *Driver) DetachVolume(ctx context.Context, serverID, device string) error {
	if err := d.begin(ctx, "detach_volume"); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if s := d.servers[serverID]; s != nil {
		delete(s.Volumes, device)
		d.save()
	}
	return nil
}

// GrowVolume has a running guest see a volume grown; its console says so
// as Linux's virtio_blk does.
func (d *Driver) GrowVolume(ctx context.Context, serverID, device string, size int64) error {
	if err := d.begin(ctx, "grow_volume"); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.servers[serverID]
	if s == nil {
		return trustack.Errorf(trustack.ENOTFOUND, "fake hypervisor: no server %s", serverID)
	}
	if _, ok := s.Volumes[device]; !ok {
		return trustack.Errorf(trustack.ENOTFOUND, "fake hypervisor: server %s has no volume at %s", serverID, device)
	}
	if s.Power == trustack.PowerRunning {
		s.log(d.now(), fmt.Sprintf("virtio_blk virtio2: [%s] new size: %d 512-byte logical blocks", device, size/512))
		d.save()
	}
	return nil
}

// Volumes returns the volumes plugged into a server, by device.
func (d *Driver) Volumes(serverID string) map[string]agent.Disk {
	d.mu.Lock()
	defer d.mu.Unlock()
	if s := d.servers[serverID]; s != nil {
		return maps.Clone(s.Volumes)
	}
	return nil
}

// save writes the state file, if there is one; the caller holds d.mu.
func (d *Driver) save() {
	if d.opts.StateFile == "" {
		return
	}
	b, err := json.Marshal(d.servers)
	if err != nil {
		return
	}
	tmp := d.opts.StateFile + ".tmp"
	if err := os.MkdirAll(filepath.Dir(tmp), 0o750); err != nil {
		return
	}
	if os.WriteFile(tmp, b, 0o600) == nil {
		os.Rename(tmp, d.opts.StateFile)
	}
}
