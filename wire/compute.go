package wire

import (
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/bus"
)

// The compute conversation. Controllers serve registrations, power
// changes and metadata requests in a queue group, so that one of them
// answers each request, and every controller hears the heartbeats; each
// agent serves its own host's subject, one subject with the operation in
// the request, so that simulating thousands of hosts costs one
// subscription each.
const (
	sentRegister     = "register"
	sentPower        = "power"
	sentHeartbeat    = "heartbeat"
	sentMetadata     = "metadata"
	controllersQueue = "controllers"
)

// hostSubject is the subject a host's agent serves.
func hostSubject(host string) string { return "trustack.host." + token(host) }

// Spec is what an agent needs to spawn a server.
type Spec struct {
	ServerID    string            `json:"server_id"`
	Name        string            `json:"name"`
	Hostname    string            `json:"hostname"`
	VCPUs       int               `json:"vcpus"`
	MemoryMB    int               `json:"memory_mb"`
	DiskGB      int               `json:"disk_gb"`
	Image       ImageRef          `json:"image"`
	KeyName     string            `json:"key_name,omitempty"`
	KeyData     string            `json:"key_data,omitempty"`
	UserData    string            `json:"user_data,omitempty"` // base64
	Metadata    map[string]string `json:"metadata,omitempty"`
	ProjectID   string            `json:"project_id"`
	ConfigDrive bool              `json:"config_drive"`
	// Kernel and Ramdisk are the images of a direct kernel boot, as the
	// image's kernel_id and ramdisk_id properties name them.
	Kernel  *ImageRef `json:"kernel,omitempty"`
	Ramdisk *ImageRef `json:"ramdisk,omitempty"`
	// ImageToken authorizes the image downloads, on behalf of the server's
	// owner; a driver must not keep it.
	ImageToken string `json:"image_token,omitempty"`
	// Ports are the server's NICs, in order: the agent plugs them before
	// the guest starts, held to SecurityGroups, and unplugs them when it is
	// destroyed.
	Ports          []Port          `json:"ports,omitempty"`
	SecurityGroups []SecurityGroup `json:"security_groups,omitempty"`
	// Volumes are plugged into the server before its guest first starts.
	// One at device vda is its root disk, in place of a disk made from
	// Image, whose ID is then "" and whose properties are the volume's
	// image metadata (a direct kernel boot's os_command_line).
	Volumes []VolumeDisk `json:"volumes,omitempty"`
}

// RootDevice is the device of a server's root disk.
const RootDevice = "vda"

// BootsFromVolume reports whether the server's root disk is a volume.
func (s Spec) BootsFromVolume() bool {
	return slices.ContainsFunc(s.Volumes, func(d VolumeDisk) bool { return d.Device == RootDevice })
}

// ImageRef names the image a server boots from, with what a host needs to
// fetch and check it.
type ImageRef struct {
	ID              string            `json:"id"`
	Checksum        string            `json:"checksum,omitempty"`
	HashAlgo        string            `json:"os_hash_algo,omitempty"`
	HashValue       string            `json:"os_hash_value,omitempty"`
	Size            int64             `json:"size"`
	DiskFormat      string            `json:"disk_format"`
	ContainerFormat string            `json:"container_format"`
	Properties      map[string]string `json:"properties,omitempty"`
	// URL is where a host downloads the image's data, with the spec's
	// ImageToken in X-Auth-Token (the image API's GET /v2/images/ID/file).
	URL string `json:"url,omitempty"`
}

// NewImageRef describes an image to hosts that download it from the
// image API at imageURL ("http://host:port/image").
func NewImageRef(img *trustack.Image, imageURL string) ImageRef {
	return ImageRef{ID: img.ID, Checksum: img.Checksum, HashAlgo: img.HashAlgo, HashValue: img.HashValue, Size: img.Size,
		DiskFormat: img.DiskFormat, ContainerFormat: img.ContainerFormat, Properties: img.Properties,
		URL: imageURL + "/v2/images/" + img.ID + "/file"}
}

// Upload says where an agent puts snapshot data: an HTTP PUT of the data
// to URL with the token in X-Auth-Token.
type Upload struct {
	ImageID string `json:"image_id"`
	URL     string `json:"url"`
	Token   string `json:"token"`
}

// PowerOp is a power operation an agent carries out.
type PowerOp string

// Power operations.
const (
	OpPause      PowerOp = "pause"
	OpUnpause    PowerOp = "unpause"
	OpSuspend    PowerOp = "suspend"
	OpResume     PowerOp = "resume"
	OpStop       PowerOp = "stop"
	OpStart      PowerOp = "start"
	OpRebootSoft PowerOp = "reboot_soft"
	OpRebootHard PowerOp = "reboot_hard"
	// OpCrashDump injects a non-maskable interrupt, which a guest set up
	// for it answers with a crash dump (a kernel's kdump); the power
	// state stays as it was.
	OpCrashDump PowerOp = "crash_dump"
)

// PowerFrom gives, per power operation, the power states a server may be
// in for it; in any other, a driver refuses it with ECONFLICT.
var PowerFrom = map[PowerOp][]trustack.PowerState{
	OpPause:      {trustack.PowerRunning},
	OpUnpause:    {trustack.PowerPaused},
	OpSuspend:    {trustack.PowerRunning},
	OpResume:     {trustack.PowerSuspended},
	OpStop:       {trustack.PowerRunning, trustack.PowerPaused, trustack.PowerSuspended, trustack.PowerShutdown},
	OpStart:      {trustack.PowerShutdown},
	OpRebootSoft: {trustack.PowerRunning},
	OpRebootHard: {trustack.PowerRunning, trustack.PowerPaused, trustack.PowerSuspended, trustack.PowerShutdown, trustack.PowerCrashed},
	OpCrashDump:  {trustack.PowerRunning},
}

// Expected is a server the controller expects on a host, as a registering
// agent learns it.
type Expected struct {
	ServerID string              `json:"server_id"`
	Power    trustack.PowerState `json:"power_state"`
}

// Registration is a controller's answer to a registering agent: its host
// as stored, the servers it should run, and the network its ports and,
// on a network node, its DHCP servers and routers should have.
type Registration struct {
	Host     trustack.Host `json:"host"`
	Expected []Expected    `json:"expected"`
	Network  HostNetwork   `json:"network"`
}

// PowerEvent reports a server whose power state an agent found changed
// without being asked, or missing, with why.
type PowerEvent struct {
	Host     string              `json:"host"`
	ServerID string              `json:"server_id"`
	Power    trustack.PowerState `json:"power_state"`
	Reason   string              `json:"reason"`
}

type registerRequest struct {
	Host trustack.Host `json:"host"`
}

type heartbeat struct {
	Host string `json:"host"`
}

// Operations on a host's agent.
const (
	opSpawn       = "spawn"
	opDestroy     = "destroy"
	opPower       = "power"
	opState       = "state"
	opConsole     = "console"
	opSnapshot    = "snapshot"
	opDiagnostics = "diagnostics"
	// opRemoteConsole admits a connection to a console (console.go).
	opRemoteConsole = "remote_console"
)

// hostRequest asks a host's agent for one operation, of the compute, the
// network or the volume conversation.
type hostRequest struct {
	Op       string  `json:"op"`
	Spec     *Spec   `json:"spec,omitempty"`
	ServerID string  `json:"server_id,omitempty"`
	Power    PowerOp `json:"power,omitempty"`
	Lines    int     `json:"lines,omitempty"`
	Upload   *Upload `json:"upload,omitempty"`
	// Protocol and TTL say which console to admit, and for how long.
	Protocol string        `json:"protocol,omitempty"`
	TTL      time.Duration `json:"ttl,omitempty"`
	networkRequest
	volumeRequest
}

// hostReply is what an operation answers: a power state, console output,
// diagnostics, an export or a console endpoint.
type hostReply struct {
	Power       trustack.PowerState `json:"power_state"`
	Output      string              `json:"output,omitempty"`
	Diagnostics map[string]int64    `json:"diagnostics,omitempty"`
	Export      *NBDExport          `json:"export,omitempty"`
	Console     *ConsoleEndpoint    `json:"console,omitempty"`
}

type empty struct{}

// Hosts is the controllers' client of the hosts' agents. It is safe for
// concurrent use. Every method names the host and gives EUNAVAILABLE when
// its agent cannot be reached.
type Hosts struct {
	conn *bus.Conn
}

// NewHosts returns a client of the agents on conn.
func NewHosts(conn *bus.Conn) *Hosts { return &Hosts{conn: conn} }

func (c *Hosts) call(ctx context.Context, host string, req hostRequest) (hostReply, error) {
	var r hostReply
	err := c.conn.Request(ctx, hostSubject(host), req, &r)
	return r, err
}

// Spawn asks the host's agent to start a server, its ports wired, and
// returns its power state; spawning one that runs already succeeds. When
// the agent answers with an error, it left nothing of the server on the
// host; when it does not answer, the server may be there or not.
func (c *Hosts) Spawn(ctx context.Context, host string, spec Spec) (trustack.PowerState, error) {
	r, err := c.call(ctx, host, hostRequest{Op: opSpawn, Spec: &spec})
	return r.Power, err
}

// Destroy asks the host's agent to stop a server, unplug its ports and
// delete its disks.
func (c *Hosts) Destroy(ctx context.Context, host, serverID string) error {
	_, err := c.call(ctx, host, hostRequest{Op: opDestroy, ServerID: serverID})
	return err
}

// Power asks the host's agent for a power operation.
func (c *Hosts) Power(ctx context.Context, host, serverID string, op PowerOp) (trustack.PowerState, error) {
	r, err := c.call(ctx, host, hostRequest{Op: opPower, ServerID: serverID, Power: op})
	return r.Power, err
}

// State asks the host's agent for a server's power state; ENOTFOUND if
// the host has no such server.
func (c *Hosts) State(ctx context.Context, host, serverID string) (trustack.PowerState, error) {
	r, err := c.call(ctx, host, hostRequest{Op: opState, ServerID: serverID})
	return r.Power, err
}

// ConsoleOutput asks the host's agent for the end of a server's console.
func (c *Hosts) ConsoleOutput(ctx context.Context, host, serverID string, lines int) (string, error) {
	r, err := c.call(ctx, host, hostRequest{Op: opConsole, ServerID: serverID, Lines: lines})
	return r.Output, err
}

// Diagnostics asks the host's agent what its hypervisor measures of a
// server.
func (c *Hosts) Diagnostics(ctx context.Context, host, serverID string) (map[string]int64, error) {
	r, err := c.call(ctx, host, hostRequest{Op: opDiagnostics, ServerID: serverID})
	return r.Diagnostics, err
}

// Snapshot asks the host's agent to upload a copy of a server's disk.
func (c *Hosts) Snapshot(ctx context.Context, host, serverID string, upload Upload) error {
	_, err := c.call(ctx, host, hostRequest{Op: opSnapshot, ServerID: serverID, Upload: &upload})
	return err
}

// Host is what a host's agent does for the controllers. ServeHost hands
// it their requests, each in a goroutine of its own.
type Host interface {
	Spawn(ctx context.Context, spec Spec) (trustack.PowerState, error)
	Destroy(ctx context.Context, serverID string) error
	Power(ctx context.Context, serverID string, op PowerOp) (trustack.PowerState, error)
	State(ctx context.Context, serverID string) (trustack.PowerState, error)
	Console(ctx context.Context, serverID string, lines int) (string, error)
	Diagnostics(ctx context.Context, serverID string) (map[string]int64, error)
	Snapshot(ctx context.Context, serverID string, upload Upload) error
	RemoteConsole(ctx context.Context, serverID, protocol string, ttl time.Duration) (ConsoleEndpoint, error)
	NetworkHost
	VolumeHost
}

// ServeHost answers the requests to the named host on conn with h, until
// the subscription is removed.
func ServeHost(conn *bus.Conn, host string, h Host) (bus.Subscription, error) {
	return conn.Handle(hostSubject(host), bus.Handler(func(ctx context.Context, req hostRequest) (hostReply, error) {
		var r hostReply
		var err error
		switch req.Op {
		case opSpawn:
			if req.Spec == nil {
				return r, trustack.Errorf(trustack.EINVALID, "spawn needs a spec")
			}
			r.Power, err = h.Spawn(ctx, *req.Spec)
		case opDestroy:
			err = h.Destroy(ctx, req.ServerID)
		case opPower:
			r.Power, err = h.Power(ctx, req.ServerID, req.Power)
		case opState:
			r.Power, err = h.State(ctx, req.ServerID)
		case opConsole:
			r.Output, err = h.Console(ctx, req.ServerID, req.Lines)
		case opDiagnostics:
			r.Diagnostics, err = h.Diagnostics(ctx, req.ServerID)
		case opRemoteConsole:
			var end ConsoleEndpoint
			if end, err = h.RemoteConsole(ctx, req.ServerID, req.Protocol, req.TTL); err == nil {
				r.Console = &end
			}
		case opSnapshot:
			if req.Upload == nil {
				return r, trustack.Errorf(trustack.EINVALID, "a snapshot needs an upload")
			}
			err = h.Snapshot(ctx, req.ServerID, *req.Upload)
		default:
			if handled, err := serveVolume(ctx, h, req, &r); handled {
				return r, err
			}
			return r, serveNetwork(ctx, h, req)
		}
		return r, err
	}))
}

// Controllers is an agent's client of the controllers.
type Controllers struct {
	conn *bus.Conn
}

// NewControllers returns a client of the controllers on conn.
func NewControllers(conn *bus.Conn) *Controllers { return &Controllers{conn: conn} }

// Register describes the host to a controller and returns what the
// controller expects of it.
func (c *Controllers) Register(ctx context.Context, h trustack.Host) (Registration, error) {
	var r Registration
	err := c.conn.Request(ctx, fromSubject(h.Name, sentRegister), registerRequest{Host: h}, &r)
	return r, err
}

// Heartbeat tells every controller that the named host's agent is alive.
func (c *Controllers) Heartbeat(host string) error {
	return c.conn.Publish(fromSubject(host, sentHeartbeat), heartbeat{Host: host})
}

// PowerChanged reports a server's power state to a controller.
func (c *Controllers) PowerChanged(ctx context.Context, e PowerEvent) error {
	return c.conn.Request(ctx, fromSubject(e.Host, sentPower), e, &empty{})
}

// MetadataRequest is a guest's request to the metadata service as the
// network node that runs its router forwards it: the guest is the server
// with Address on a subnet of RouterID.
type MetadataRequest struct {
	Host     string `json:"host"` // the network node's name
	RouterID string `json:"router_id"`
	Address  string `json:"address"`
	Path     string `json:"path"`
}

type metadataReply struct {
	Body []byte `json:"body"`
}

// Metadata asks a controller what the metadata service answers a guest.
func (c *Controllers) Metadata(ctx context.Context, r MetadataRequest) ([]byte, error) {
	var reply metadataReply
	err := c.conn.Request(ctx, fromSubject(r.Host, sentMetadata), r, &reply)
	return reply.Body, err
}

// Controller is what a controller does with what agents tell it.
type Controller interface {
	// Register records a host as its agent describes it, and returns it
	// as stored with what it should run.
	Register(ctx context.Context, h *trustack.Host) (Registration, error)
	// Heartbeat records that the named host's agent is alive.
	Heartbeat(host string)
	// PowerChanged records a server's power state found by its host's
	// agent without being asked, with the reason.
	PowerChanged(ctx context.Context, e PowerEvent) error
	// Metadata answers a guest's request to the metadata service.
	Metadata(ctx context.Context, r MetadataRequest) ([]byte, error)
}

// ServeControllers has ctl answer agents on conn until the returned
// function is called: registrations, power changes and metadata requests
// in the controllers' queue group (one controller answers each),
// heartbeats to every controller. Witness hears of the spoofs, which ctl
// does not see.
func ServeControllers(conn *bus.Conn, ctl Controller, witness Witness) (stop func(), err error) {
	var subs []bus.Subscription
	stop = func() {
		for _, s := range subs {
			s.Unsubscribe()
		}
	}
	for what, fn := range map[string]bus.HandlerFunc{
		sentRegister: fromHosts(sentRegister, witness, func(r registerRequest) string { return r.Host.Name },
			func(ctx context.Context, r registerRequest) (Registration, error) { return ctl.Register(ctx, &r.Host) }),
		sentPower: fromHosts(sentPower, witness, func(e PowerEvent) string { return e.Host },
			func(ctx context.Context, e PowerEvent) (empty, error) { return empty{}, ctl.PowerChanged(ctx, e) }),
		sentMetadata: fromHosts(sentMetadata, witness, func(r MetadataRequest) string { return r.Host },
			func(ctx context.Context, r MetadataRequest) (metadataReply, error) {
				body, err := ctl.Metadata(ctx, r)
				return metadataReply{Body: body}, err
			}),
	} {
		sub, err := conn.HandleQueue(fromEveryHost(what), controllersQueue, fn)
		if err != nil {
			stop()
			return stop, err
		}
		subs = append(subs, sub)
	}
	sub, err := conn.Subscribe(fromEveryHost(sentHeartbeat), func(subject string, data []byte) {
		var hb heartbeat
		if json.Unmarshal(data, &hb) == nil && vouch(context.Background(), subject, sentHeartbeat, hb.Host, witness) == nil {
			ctl.Heartbeat(hb.Host)
		}
	})
	if err != nil {
		stop()
		return stop, err
	}
	subs = append(subs, sub)
	return stop, nil
}
