// Package agent is trustack's compute host agent: it registers its host
// with the controllers over the bus, keeps it alive with heartbeats, and
// carries out the controllers' requests (spawn, destroy, power, console,
// snapshot; plug and unplug ports, security groups, DHCP, routers)
// through a Hypervisor and a HostNetwork, which this package declares and
// drivers implement (hypervisor/fake, hypervisor/qemu, hostnet/fake). The
// conversations themselves, subjects and messages, are package wire's.
package agent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/bus"
	"github.com/trustack/trustack/volume/nbd"
	"github.com/trustack/trustack/wire"
)

// Hypervisor runs servers on one host. Every method is safe for concurrent
// use; the agent never runs two operations on the same server at once.
type Hypervisor interface {
	// Describe returns the host's capacity and hypervisor.
	Describe(ctx context.Context) (Resources, error)
	// Spawn starts a server from spec, with volumes plugged in as
	// AttachVolume plugs them (the one at wire.RootDevice, if any, is its
	// root disk). Spawning a server that exists already succeeds without
	// starting another.
	Spawn(ctx context.Context, spec wire.Spec, volumes []Disk) error
	// Destroy stops a server and removes all it has on the host; a server
	// that does not exist is not an error.
	Destroy(ctx context.Context, serverID string) error
	// Power carries out a power operation; ENOTFOUND for a missing server,
	// ECONFLICT if the server's state does not allow it.
	Power(ctx context.Context, serverID string, op wire.PowerOp) error
	// State returns a server's power state, or ENOTFOUND.
	State(ctx context.Context, serverID string) (trustack.PowerState, error)
	// List returns the power state of every server on the host.
	List(ctx context.Context) (map[string]trustack.PowerState, error)
	// Console returns the last lines of a server's console, all if 0.
	Console(ctx context.Context, serverID string, lines int) (string, error)
	// Snapshot writes a copy of the server's disk to w.
	Snapshot(ctx context.Context, serverID string, w io.Writer) error
	// AttachVolume plugs a volume into a server as disk.Device, running or
	// not, and keeps it there across the server's restarts; plugging one
	// that is there succeeds. One there but opened otherwise (served anew
	// by its storage host) is opened so from the stopped server's next
	// start, ECONFLICT if it runs. ENOTFOUND for a missing server.
	AttachVolume(ctx context.Context, serverID string, disk Disk) error
	// DetachVolume unplugs the volume at a server's device once the guest
	// lets it go (EUNAVAILABLE if it does not in time: the volume stays);
	// a device not there is no error.
	DetachVolume(ctx context.Context, serverID, device string) error
	// GrowVolume has a server see the volume at its device at its new
	// size, in bytes, which its storage host has grown it to: a running
	// guest is told at once (its QEMU opens the volume's export anew, or
	// grows the file it holds, to that size); a stopped one sees it when
	// it starts. Growing it to the size it has succeeds. ENOTFOUND for a
	// missing server or device.
	GrowVolume(ctx context.Context, serverID, device string, size int64) error
	// Diagnostics returns what the hypervisor measures of a server, named
	// as Nova's libvirt driver names it at microversion 2.1: cpuN_time
	// (nanoseconds of CPU N), memory (KiB given), memory-rss (KiB used),
	// and per disk vda_read, vda_write (bytes), vda_read_req, vda_write_req.
	// A driver reports what it can measure; memory always. ENOTFOUND for a
	// missing server.
	Diagnostics(ctx context.Context, serverID string) (map[string]int64, error)
}

// Disk is a volume as the hypervisor plugs it into a server: the device
// the guest sees ("vdb"), and a file of this host's (Path, in Format raw
// or qcow2) or else an NBD export of its storage host's.
type Disk struct {
	VolumeID string
	Device   string
	Path     string
	Format   string
	NBD      *wire.NBDExport
	ReadOnly bool
}

// Resources describe a host.
type Resources struct {
	VCPUs              int
	MemoryMB           int
	DiskGB             int
	HypervisorType     string
	HypervisorVersion  int
	HypervisorHostname string
}

// Config configures an agent; zero values take the defaults.
type Config struct {
	// Name is the host's name, unique among compute hosts.
	Name string
	// AvailabilityZone is the host's zone ("" for the controller's default).
	AvailabilityZone string
	// HostIP is the host's address, for operators.
	HostIP string
	// NetworkNode says the host runs DHCP servers and routers.
	NetworkNode bool
	// Volumes are the volume backends the host runs, by name (what
	// volume types' volume_backend_name names): a storage host has some.
	Volumes map[string]VolumeBackend
	// Exports serves the host's volumes to other hosts' servers; a
	// storage host has one.
	Exports *nbd.Exporter
	// ScratchDir holds what the agent needs for a while, such as the
	// images volumes are made from (default: the system's temporary
	// directory).
	ScratchDir string
	// Allocation ratios: how far the scheduler may overcommit this host
	// (defaults 4.0 for vCPUs, 1.0 for memory and disk, as Nova's).
	CPUAllocationRatio  float64
	RAMAllocationRatio  float64
	DiskAllocationRatio float64
	// HeartbeatInterval is how often the agent says it is alive (default
	// 10 s, as Nova's report_interval).
	HeartbeatInterval time.Duration
	// SyncInterval is how often the agent compares the hypervisor's servers
	// with what it last reported (default 10 s).
	SyncInterval time.Duration
	// Refusal, if set, says why the host takes no new servers (its TPM
	// failed attestation), nil while it does: spawns are refused with its
	// error, while the controllers move the host's servers away.
	Refusal func() error
	// ConsoleListen is the address (host:port, port 0 for a free one) on
	// which the agent accepts, while it runs, the console proxies'
	// connections to its servers' remote consoles (wire.ServeConsoles);
	// "": the host offers no remote consoles. Proxies are told to dial
	// it, or HostIP for an unspecified address (0.0.0.0).
	ConsoleListen string
	// HTTPClient uploads snapshots (default http.DefaultClient).
	HTTPClient *http.Client
	// Log receives what the agent does (default: discarded).
	Log *slog.Logger
}

// Agent serves one host: a compute host, and a storage host if it runs
// volume backends. It is the host's side of the compute and volume
// conversations (wire.Host).
type Agent struct {
	conn        *bus.Conn
	controllers *wire.Controllers
	hv          Hypervisor
	net         HostNetwork
	cfg         Config

	locks sync.Map // server ID → *sync.Mutex

	mu       sync.Mutex
	known    map[string]trustack.PowerState // last power states reported or caused
	admitted map[string]admission           // consoles admitted, by secret
	consoles string                         // where proxies reach the consoles, "" when not served
}

// New returns an agent for the host, on conn, with its hypervisor and its
// network.
func New(conn *bus.Conn, hv Hypervisor, net HostNetwork, cfg Config) *Agent {
	if cfg.CPUAllocationRatio == 0 {
		cfg.CPUAllocationRatio = 4.0
	}
	if cfg.RAMAllocationRatio == 0 {
		cfg.RAMAllocationRatio = 1.0
	}
	if cfg.DiskAllocationRatio == 0 {
		cfg.DiskAllocationRatio = 1.0
	}
	if cfg.HeartbeatInterval == 0 {
		cfg.HeartbeatInterval = 10 * time.Second
	}
	if cfg.SyncInterval == 0 {
		cfg.SyncInterval = 10 * time.Second
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	a := &Agent{conn: conn, controllers: wire.NewControllers(conn), hv: hv, net: net, cfg: cfg, known: map[string]trustack.PowerState{},
		admitted: map[string]admission{}}
	net.SetMetadataSource(a.metadata)
	return a
}

var _ wire.Host = (*Agent)(nil)

// Run serves the host until ctx ends. It first serves its host's subjects,
// then joins the controllers, and from then on sends heartbeats and
// reports servers whose power state changed by itself. It joins again
// whenever the bus comes back after a loss, as the controllers may have
// moved this host's servers elsewhere meanwhile.
func (a *Agent) Run(ctx context.Context) error {
	sub, err := wire.ServeHost(a.conn, a.cfg.Name, a)
	if err != nil {
		return fmt.Errorf("serve host %s: %w", a.cfg.Name, err)
	}
	defer sub.Unsubscribe()
	if a.cfg.ConsoleListen != "" {
		l, err := net.Listen("tcp", a.cfg.ConsoleListen)
		if err != nil {
			return fmt.Errorf("serve consoles: %w", err)
		}
		defer a.serveConsoles(l)()
	}
	regained := a.conn.Reconnected()
	if err := a.join(ctx); err != nil {
		return err
	}
	beat := time.NewTicker(a.cfg.HeartbeatInterval)
	defer beat.Stop()
	resync := time.NewTicker(a.cfg.SyncInterval)
	defer resync.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-regained:
			regained = a.conn.Reconnected()
			if err := a.join(ctx); err != nil {
				return err
			}
		case <-beat.C:
			if err := a.controllers.Heartbeat(a.cfg.Name); err != nil {
				a.cfg.Log.Warn("heartbeat", "error", err)
			}
		case <-resync.C:
			a.sync(ctx)
			if err := a.net.Reconcile(ctx); err != nil {
				a.cfg.Log.Error("repair the host's network", "error", err)
			}
		}
	}
}

// join registers the host, trying again until a controller answers, and
// settles its servers with what the controller expects. The servers are
// listed before registering: one spawned after the controller answered
// is expected, though not named in the answer.
func (a *Agent) join(ctx context.Context) error {
	have, err := a.hv.List(ctx)
	if err != nil {
		return fmt.Errorf("list servers: %w", err)
	}
	reg, err := a.register(ctx)
	if err != nil {
		return err
	}
	a.settle(ctx, have, reg.Expected)
	if err := a.net.Sync(ctx, reg.Network); err != nil {
		a.cfg.Log.Error("bring the host's network up to date", "error", err)
	}
	return nil
}

// register describes the host to a controller and returns what it
// expects here, trying again with backoff until one answers.
func (a *Agent) register(ctx context.Context) (wire.Registration, error) {
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 10*time.Second) {
		reg, err := a.registerOnce(ctx)
		if err == nil {
			return reg, nil
		}
		a.cfg.Log.Warn("register with a controller", "error", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return wire.Registration{}, ctx.Err()
		case <-time.After(wait):
		}
	}
}

func (a *Agent) registerOnce(ctx context.Context) (wire.Registration, error) {
	res, err := a.hv.Describe(ctx)
	if err != nil {
		return wire.Registration{}, fmt.Errorf("describe host: %w", err)
	}
	storage, err := a.storage(ctx)
	if err != nil {
		return wire.Registration{}, err
	}
	host := trustack.Host{
		Name: a.cfg.Name, AvailabilityZone: a.cfg.AvailabilityZone, HostIP: a.cfg.HostIP,
		HypervisorType: res.HypervisorType, HypervisorVersion: res.HypervisorVersion, HypervisorHostname: res.HypervisorHostname,
		VCPUs: res.VCPUs, MemoryMB: res.MemoryMB, DiskGB: res.DiskGB,
		CPUAllocationRatio: a.cfg.CPUAllocationRatio, RAMAllocationRatio: a.cfg.RAMAllocationRatio, DiskAllocationRatio: a.cfg.DiskAllocationRatio,
		PhysicalNetworks: a.net.PhysicalNetworks(), NetworkNode: a.cfg.NetworkNode, Storage: storage,
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	reg, err := a.controllers.Register(rctx, host)
	if err != nil {
		return wire.Registration{}, err
	}
	a.cfg.Log.Info("registered", "id", reg.Host.ID, "expected_servers", len(reg.Expected), "ports", len(reg.Network.Ports))
	return reg, nil
}

// settle makes the host match what the controller expects: servers it had
// before registering that the controller does not expect are destroyed,
// and those it expects but the host lacks, or whose power state differs,
// are reported.
func (a *Agent) settle(ctx context.Context, have map[string]trustack.PowerState, expected []wire.Expected) {
	want := map[string]trustack.PowerState{}
	for _, e := range expected {
		want[e.ServerID] = e.Power
	}
	for id := range have {
		if _, ok := want[id]; !ok {
			a.cfg.Log.Info("destroying a server the controllers do not know", "server", id)
			if err := a.locked(id, func() error { return a.hv.Destroy(ctx, id) }); err != nil {
				a.cfg.Log.Error("destroy server", "server", id, "error", err)
				continue
			}
			a.settled(id, 0, true)
		}
	}
	for id, power := range want {
		// Under the server's lock, as an operation may be changing it.
		a.locked(id, func() error {
			state, err := a.hv.State(ctx, id)
			switch {
			case trustack.ErrorCode(err) == trustack.ENOTFOUND:
				a.report(ctx, id, trustack.PowerNoState, fmt.Sprintf("The server is no longer on host %s.", a.cfg.Name))
			case err != nil:
				a.cfg.Log.Error("server state", "server", id, "error", err)
			default:
				a.settled(id, state, false)
				if state != power {
					a.report(ctx, id, state, fmt.Sprintf("Host %s found the server in power state %d.", a.cfg.Name, state))
				}
			}
			return nil
		})
	}
}

// sync reports servers whose power state changed since last seen.
func (a *Agent) sync(ctx context.Context) {
	have, err := a.hv.List(ctx)
	if err != nil {
		a.cfg.Log.Error("list servers", "error", err)
		return
	}
	a.mu.Lock()
	var changed []string
	for id, state := range have {
		if old, ok := a.known[id]; ok && old != state {
			changed = append(changed, id)
		}
	}
	a.mu.Unlock()
	for _, id := range changed {
		// Look again under the server's lock: an operation may have been
		// changing it on purpose.
		a.locked(id, func() error {
			state, err := a.hv.State(ctx, id)
			if err != nil {
				return err
			}
			a.mu.Lock()
			old, ok := a.known[id]
			a.known[id] = state
			a.mu.Unlock()
			if ok && old != state {
				a.report(ctx, id, state, fmt.Sprintf("The server's power state changed to %d on host %s without a request: it may have crashed or been shut down from inside.", state, a.cfg.Name))
			}
			return nil
		})
	}
}

// report tells a controller about a server's power state.
func (a *Agent) report(ctx context.Context, serverID string, state trustack.PowerState, reason string) {
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err := a.controllers.PowerChanged(rctx, wire.PowerEvent{Host: a.cfg.Name, ServerID: serverID, Power: state, Reason: reason})
	if err != nil {
		a.cfg.Log.Warn("report power state", "server", serverID, "error", err)
	}
}

// locked runs fn holding the server's lock.
func (a *Agent) locked(serverID string, fn func() error) error {
	m, _ := a.locks.LoadOrStore(serverID, new(sync.Mutex))
	mu := m.(*sync.Mutex)
	mu.Lock()
	defer mu.Unlock()
	return fn()
}

// settled records the power state an operation left a server in.
func (a *Agent) settled(serverID string, state trustack.PowerState, gone bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if gone {
		delete(a.known, serverID)
		return
	}
	a.known[serverID] = state
}

// Spawn starts a server unless the host refuses new work, and leaves
// nothing of it behind if it fails: the controller takes a failed spawn as
// a server not here, and tries another host.
func (a *Agent) Spawn(ctx context.Context, spec wire.Spec) (state trustack.PowerState, err error) {
	if a.cfg.Refusal != nil {
		if err := a.cfg.Refusal(); err != nil {
			return 0, err
		}
	}
	err = a.locked(spec.ServerID, func() error {
		volumes, err := a.disks(ctx, spec.Volumes)
		if err == nil {
			err = a.plugAll(ctx, spec.Ports, spec.SecurityGroups)
		}
		if err == nil {
			// The groups are the network's; the hypervisor needs the ports.
			guest := spec
			guest.SecurityGroups = nil
			err = a.hv.Spawn(ctx, guest, volumes)
		}
		if err == nil {
			state, err = a.observe(ctx, spec.ServerID)
		}
		if err != nil {
			a.cleanUp(ctx, spec.ServerID)
		}
		return err
	})
	return state, err
}

// Destroy stops a server and removes all it has on the host, its ports'
// wiring included.
func (a *Agent) Destroy(ctx context.Context, serverID string) error {
	return a.locked(serverID, func() error {
		if err := a.hv.Destroy(ctx, serverID); err != nil {
			return err
		}
		a.settled(serverID, 0, true)
		return a.unplugServer(ctx, serverID)
	})
}

// Power carries out a power operation and returns the state it left.
func (a *Agent) Power(ctx context.Context, serverID string, op wire.PowerOp) (state trustack.PowerState, err error) {
	err = a.locked(serverID, func() error {
		if err := a.hv.Power(ctx, serverID, op); err != nil {
			return err
		}
		state, err = a.observe(ctx, serverID)
		return err
	})
	return state, err
}

// State returns a server's power state.
func (a *Agent) State(ctx context.Context, serverID string) (trustack.PowerState, error) {
	return a.hv.State(ctx, serverID)
}

// Console returns the end of a server's console.
func (a *Agent) Console(ctx context.Context, serverID string, lines int) (string, error) {
	return a.hv.Console(ctx, serverID, lines)
}

// Diagnostics returns what the hypervisor measures of a server.
func (a *Agent) Diagnostics(ctx context.Context, serverID string) (map[string]int64, error) {
	return a.hv.Diagnostics(ctx, serverID)
}

// cleanUp destroys what a failed spawn left, its ports' wiring included,
// even after its request's context ended.
func (a *Agent) cleanUp(ctx context.Context, serverID string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if err := a.hv.Destroy(ctx, serverID); err != nil {
		a.cfg.Log.Error("clean up after a failed spawn", "server", serverID, "error", err)
	}
	a.settled(serverID, 0, true)
	if err := a.unplugServer(ctx, serverID); err != nil {
		a.cfg.Log.Error("clean up after a failed spawn", "server", serverID, "error", err)
	}
}

// observe reads a server's power state after an operation and remembers
// it, so that sync does not report it as a change.
func (a *Agent) observe(ctx context.Context, serverID string) (trustack.PowerState, error) {
	state, err := a.hv.State(ctx, serverID)
	if err != nil {
		return 0, err
	}
	a.settled(serverID, state, false)
	return state, nil
}

// Snapshot streams the server's disk to the image service.
func (a *Agent) Snapshot(ctx context.Context, serverID string, upload wire.Upload) error {
	return a.locked(serverID, func() error {
		pr, pw := io.Pipe()
		copied := make(chan error, 1)
		go func() {
			err := a.hv.Snapshot(ctx, serverID, pw)
			pw.CloseWithError(err)
			copied <- err
		}()
		uploadErr := a.upload(ctx, "The snapshot of "+serverID, upload, pr)
		pr.Close() // unblocks the hypervisor if the upload stopped reading
		// A failed snapshot is the cause of the failed upload.
		if err := <-copied; err != nil {
			a.cfg.Log.Error("snapshot", "server", serverID, "error", err)
			return trustack.Errorf(trustack.ErrorCode(err), "The snapshot of %s failed: %s", serverID, trustack.ErrorMessage(err))
		}
		return uploadErr
	})
}

// upload sends an image's data to the image service; what names the
// data in errors ("The snapshot of ID").
func (a *Agent) upload(ctx context.Context, what string, upload wire.Upload, body io.Reader) error {
	put, err := http.NewRequestWithContext(ctx, http.MethodPut, upload.URL, body)
	if err != nil {
		return err
	}
	put.Header.Set("Content-Type", "application/octet-stream")
	put.Header.Set("X-Auth-Token", upload.Token)
	resp, err := a.cfg.HTTPClient.Do(put)
	if err != nil {
		a.cfg.Log.Error("upload an image", "image", upload.ImageID, "error", err)
		return trustack.Errorf(trustack.EUNAVAILABLE, "%s could not reach the image service.", what)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return trustack.Errorf(trustack.EUNAVAILABLE, "%s could not be uploaded: the image service answered %s: %s", what, resp.Status, body)
	}
	return nil
}
