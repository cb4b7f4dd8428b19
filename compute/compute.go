// Package compute is trustack's conductor: it creates servers within the
// project's quota, drives each through its lifecycle (building,
// active, paused, suspended, stopped, error, deleted) by asking the agent
// of its compute host, keeps track of compute hosts from their
// registrations and heartbeats, and records every action. Every state
// change is written to the store before anyone is told of it, and a
// controller that restarts picks up whatever was in progress.
package compute

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/network"
	"github.com/trustack/trustack/scheduler"
	"github.com/trustack/trustack/wire"
)

// Store keeps compute state. Update methods read, change with fn and
// write back in one transaction; fn may read through the Store but not
// write through it. UpdateServer and UpdateServerWithEvent also bring
// the server's ports (those whose device is the server) in line with it in
// the same transaction: bound to its host (none while it has none), owned
// by "compute:" and its availability zone, and ACTIVE while it is active
// or paused on a host, DOWN otherwise.
type Store interface {
	scheduler.Hosts

	CreateFlavor(ctx context.Context, f *trustack.Flavor) error
	Flavor(ctx context.Context, id string) (*trustack.Flavor, error)
	Flavors(ctx context.Context, f trustack.FlavorFilter) ([]*trustack.Flavor, error)
	UpdateFlavor(ctx context.Context, id string, fn func(*trustack.Flavor) error) (*trustack.Flavor, error)
	DeleteFlavor(ctx context.Context, id string) error
	FlavorAccess(ctx context.Context, flavorID string) ([]string, error)
	AddFlavorAccess(ctx context.Context, flavorID, projectID string) error
	RemoveFlavorAccess(ctx context.Context, flavorID, projectID string) error

	CreateKeypair(ctx context.Context, k *trustack.Keypair, limit int) error
	Keypair(ctx context.Context, userID, name string) (*trustack.Keypair, error)
	Keypairs(ctx context.Context, userID string) ([]*trustack.Keypair, error)
	DeleteKeypair(ctx context.Context, userID, name string) error

	RegisterHost(ctx context.Context, h *trustack.Host) (*trustack.Host, error)
	HostByName(ctx context.Context, name string) (*trustack.Host, error)
	UpdateHost(ctx context.Context, id string, fn func(*trustack.Host) error) (*trustack.Host, error)
	DeleteHost(ctx context.Context, id string) error
	SetLastSeen(ctx context.Context, seen map[string]time.Time) error
	Release(ctx context.Context, serverID string) (*trustack.Host, error)
	Claims(ctx context.Context, hostID string) ([]trustack.Claim, error)

	CreateServers(ctx context.Context, servers []*trustack.Server, ports trustack.NewPorts, limits map[string]int, action *trustack.InstanceAction) error
	Server(ctx context.Context, id string) (*trustack.Server, error)
	Servers(ctx context.Context, f trustack.ServerFilter) ([]*trustack.Server, error)
	UpdateServer(ctx context.Context, id string, fn func(*trustack.Server) error) (*trustack.Server, error)
	UpdateServerWithEvent(ctx context.Context, id, requestID string, e trustack.ActionEvent, fn func(*trustack.Server) error) (*trustack.Server, error)

	CreateServerGroup(ctx context.Context, g *trustack.ServerGroup, limit int) error
	ServerGroup(ctx context.Context, id string) (*trustack.ServerGroup, error)
	ServerGroups(ctx context.Context, projectID string) ([]*trustack.ServerGroup, error)
	DeleteServerGroup(ctx context.Context, id string) error

	AddAction(ctx context.Context, a trustack.InstanceAction) error
	AddEvent(ctx context.Context, serverID, requestID string, e trustack.ActionEvent) error
	Actions(ctx context.Context, serverID string) ([]trustack.InstanceAction, error)
	Action(ctx context.Context, serverID, requestID string) (*trustack.InstanceAction, error)

	Quotas(ctx context.Context, projectID string) (map[string]int, error)
	SetQuotas(ctx context.Context, projectID string, limits map[string]int) error
	DeleteQuotas(ctx context.Context, projectID string) error
	Usage(ctx context.Context, projectID string) (map[string]int, error)

	Aggregates(ctx context.Context) ([]*trustack.Aggregate, error)
	Aggregate(ctx context.Context, id int) (*trustack.Aggregate, error)
	CreateAggregate(ctx context.Context, a *trustack.Aggregate) error
	UpdateAggregate(ctx context.Context, id int, fn func(*trustack.Aggregate) error) (*trustack.Aggregate, error)
	DeleteAggregate(ctx context.Context, id int) error
	// CreateConsoleToken keeps a console token; ConsoleToken returns one
	// by its hash unless it expired by at, TakeConsoleToken likewise but
	// deletes it, so that only one caller gets it (both ENOTFOUND
	// otherwise); PurgeConsoleTokens deletes those expired by before and
	// says how many.
	CreateConsoleToken(ctx context.Context, t *trustack.ConsoleToken) error
	ConsoleToken(ctx context.Context, tokenHash string, at time.Time) (*trustack.ConsoleToken, error)
	TakeConsoleToken(ctx context.Context, tokenHash string, at time.Time) (*trustack.ConsoleToken, error)
	PurgeConsoleTokens(ctx context.Context, before time.Time) (int64, error)
}

// Images is what compute needs of the image service.
type Images interface {
	// BootImage returns the image if the project may boot from it: it is
	// visible to the project and active. ENOTFOUND otherwise.
	BootImage(ctx context.Context, projectID, imageID string) (*trustack.Image, error)
	// CreateSnapshot registers a queued image for a snapshot of a server,
	// owned by the project.
	CreateSnapshot(ctx context.Context, projectID string, img *trustack.Image) error
	// SnapshotFailed marks a snapshot image whose data never came.
	SnapshotFailed(ctx context.Context, imageID string) error
	// KillCutOffSnapshots marks the snapshot images of a server still
	// waiting for their data as failed, and returns how many.
	KillCutOffSnapshots(ctx context.Context, serverID string) (int, error)
	// DeleteImage deletes an image compute created.
	DeleteImage(ctx context.Context, imageID string) error
}

// Tokens issues tokens on a user's behalf.
type Tokens interface {
	// IssueToken returns a new token of the user scoped to the project, or
	// EUNAUTHORIZED if the user may no longer use the project.
	IssueToken(ctx context.Context, userID, projectID string) (string, error)
}

// Agents is how compute reaches the agents of compute hosts; wire.Hosts
// is its client over the bus. Every method names the host by name and
// gives EUNAVAILABLE when its agent cannot be reached; the error of a
// request that got no answer, whose agent may or may not have done what
// was asked, has a NoReply method that reports true (see unanswered).
type Agents interface {
	// Spawn starts a server; spawning one that runs already succeeds. An
	// agent that answers that a spawn failed left nothing of the server.
	Spawn(ctx context.Context, host string, spec wire.Spec) (trustack.PowerState, error)
	// Destroy stops a server and deletes its disks; a missing one is fine.
	Destroy(ctx context.Context, host, serverID string) error
	// Power carries out a power operation and returns the new power state.
	Power(ctx context.Context, host, serverID string, op wire.PowerOp) (trustack.PowerState, error)
	// State returns a server's power state, ENOTFOUND if the host has none.
	State(ctx context.Context, host, serverID string) (trustack.PowerState, error)
	// ConsoleOutput returns the last lines of a server's console (all if
	// lines is 0).
	ConsoleOutput(ctx context.Context, host, serverID string, lines int) (string, error)
	// Diagnostics returns what the host's hypervisor measures of a server.
	Diagnostics(ctx context.Context, host, serverID string) (map[string]int64, error)
	// RemoteConsole has the host's agent admit one connection to a
	// server's console of protocol ("vnc", "serial") within ttl, and
	// returns where and with what secret; EINVALID if its hypervisor
	// offers no such console.
	RemoteConsole(ctx context.Context, host, serverID, protocol string, ttl time.Duration) (wire.ConsoleEndpoint, error)
	// Snapshot uploads a copy of a server's disk to the image service.
	Snapshot(ctx context.Context, host, serverID string, upload wire.Upload) error
	// Plug wires a port on a host, or brings its wiring up to date;
	// Unplug removes it; SecurityGroups enforces groups on a host.
	Plug(ctx context.Context, host string, p wire.Port) error
	Unplug(ctx context.Context, host, portID string) error
	SecurityGroups(ctx context.Context, host string, groups []wire.SecurityGroup) error
	// ExportVolume has a storage host serve a volume over NBD to the
	// holder of key, UnexportVolume stop; AttachVolume plugs a volume into
	// a server, DetachVolume unplugs it once the guest lets it go;
	// GrowVolume has a server see a volume grown to size GiB.
	ExportVolume(ctx context.Context, host, backend, volumeID string, key wire.PSK) (wire.NBDExport, error)
	UnexportVolume(ctx context.Context, host, volumeID string) error
	AttachVolume(ctx context.Context, host, serverID string, disk wire.VolumeDisk) error
	DetachVolume(ctx context.Context, host, serverID, device string) error
	GrowVolume(ctx context.Context, host, serverID, device string, size int) error
}

// Network is what compute needs of the networking service;
// network.Service is one.
type Network interface {
	// ResolveNICs returns the NICs a new server gets for those it asks
	// for and the mode (network.AutoNICs, network.NoNICs or "").
	ResolveNICs(ctx context.Context, c network.Caller, nics []network.NIC, mode string) ([]network.NIC, error)
	// ServerPorts makes, or takes over, a server's ports for its NICs,
	// in the security groups named (the default one if none), all or
	// none.
	ServerPorts(ctx context.Context, c network.Caller, serverID, zone string, nics []network.NIC, groups []string) ([]*trustack.Port, error)
	// PrepareServerPorts readies the ports of new servers likewise, for
	// the store to make with them; then ServerPortsMade, or, if they are
	// not made, AbandonServerPorts.
	PrepareServerPorts(ctx context.Context, c network.Caller, servers []network.NewServer, nics []network.NIC, groups []string) (*network.PreparedPorts, error)
	ServerPortsMade(ctx context.Context, p *network.PreparedPorts)
	AbandonServerPorts(ctx context.Context, p *network.PreparedPorts)
	// ReleaseServerPorts deletes ports, but lets those of keep go.
	ReleaseServerPorts(ctx context.Context, ports []*trustack.Port, keep []string) error
	// ServerPortsOf returns the ports of servers, by server ID.
	ServerPortsOf(ctx context.Context, serverIDs []string) (map[string][]*trustack.Port, error)
	// WirePorts returns ports as hosts wire them, and WireGroupRules
	// their security groups' rules, as hosts enforce them.
	WirePorts(ctx context.Context, ports []*trustack.Port) ([]wire.Port, error)
	WireGroupRules(ctx context.Context, ports []*trustack.Port) ([]wire.SecurityGroup, error)
	// PhysicalNetworks returns the physical networks a host must be
	// wired to for a server's ports.
	PhysicalNetworks(ctx context.Context, serverID string) ([]string, error)
	// PortsBound tells the hosts of security groups that ports in them
	// were bound to a host along with their server (as the store binds
	// them, telling nobody): that host learns the groups' members.
	PortsBound(ctx context.Context, groups []string)
	// HostNetwork returns the network state a host should have.
	HostNetwork(ctx context.Context, h *trustack.Host) (wire.HostNetwork, error)
	// SetServerGroups adds a security group to ports, or removes it.
	SetServerGroups(ctx context.Context, c network.Caller, ports []*trustack.Port, group string, add bool) error
	// InstanceAt returns the server whose port has an address on a
	// subnet of a router, as the network node running the router asks.
	InstanceAt(ctx context.Context, host, routerID, address string) (string, error)
}

// unanswered reports whether err is that of a request to an agent that got
// no answer, as opposed to an error the agent answered: then whether the
// agent did what was asked is unknown.
func unanswered(err error) bool {
	var e interface{ NoReply() bool }
	return errors.As(err, &e) && e.NoReply()
}

// Requirements is where compute learns what servers require of their
// hosts.
type Requirements interface {
	// Effective returns the requirements a new server of the project is
	// placed under, from the project's stored requirements, the flavor's
	// extra specs and the scheduler hints; EINVALID for a bad value.
	Effective(ctx context.Context, projectID string, f *trustack.Flavor, hints map[string][]string) (trustack.Requirements, error)
	// Stored returns every project's stored requirements, by project.
	Stored(ctx context.Context) (map[string]trustack.Requirements, error)
}

// Placer chooses and claims a host for a server.
type Placer interface {
	Place(ctx context.Context, req scheduler.Request) (*trustack.Host, error)
	// Forget tells the placer that a claim on the host was released.
	Forget(h *trustack.Host)
	// Invalidate tells the placer that hosts' domains or properties, or
	// the topology, changed.
	Invalidate()
}

// Options tune the Service; zero values take the defaults.
type Options struct {
	// Workers is how many builds and actions run at once (default 64).
	Workers int
	// ServiceDownTime is how long a host may go without a heartbeat before
	// it counts as down (default 60 s, as Nova's service_down_time).
	ServiceDownTime time.Duration
	// MaxAttempts is how many hosts a build tries before the server goes
	// to ERROR (default 3, as Nova's [scheduler] max_attempts).
	MaxAttempts int
	// AgentTimeout bounds each request to an agent (default 5 minutes).
	AgentTimeout time.Duration
	// ImageURL is the image API's base URL, such as http://host:5000/image,
	// where hosts download the images they boot and upload snapshots.
	ImageURL string
	// ImageTokens issues the tokens hosts download images with; without
	// it, downloads go without a token (hosts that fetch no images).
	ImageTokens Tokens
	// Requirements states what servers require of hosts; nil for
	// nothing.
	Requirements Requirements
	// Network makes servers' ports; nil for servers without NICs.
	Network Network
	// Volumes holds the volumes servers attach; nil for a cloud without
	// block storage.
	Volumes Volumes
	// EnforceInterval is how often placed servers are checked against
	// their requirements besides after every change (default 60 s).
	EnforceInterval time.Duration
	// DefaultAvailabilityZone is where hosts that name none are (default
	// "nova", as Nova's).
	DefaultAvailabilityZone string
	// Controllers are the controllers sharing the store, this one among
	// them: each carries out the tasks it started, takes over those of
	// controllers gone, and checks the servers of its share of the hosts.
	// Nil: this controller is alone.
	Controllers Controllers
	// TakeoverInterval is how often a controller among several looks for
	// the tasks of controllers gone (default 5 s).
	TakeoverInterval time.Duration
	// ConsoleTokenTTL is how long a remote console's token may be used
	// (default 600 s, as Nova's [consoleauth] token_ttl).
	ConsoleTokenTTL time.Duration
	// Now returns the current time (default time.Now).
	Now func() time.Time
	// Log receives what the service does (default: discarded).
	Log *slog.Logger
}

// Verifier attests compute hosts.
type Verifier interface {
	// AttestSoon has the host attested now rather than at its next
	// round.
	AttestSoon(host string)
}

// Service is the compute service. It is safe for concurrent use.
type Service struct {
	store  Store  // an ownedStore
	self   string // this controller's name; "" when alone
	images Images
	agents Agents
	placer Placer
	opts   Options

	runCtx  context.Context
	sem     chan struct{} // a slot per worker
	running sync.WaitGroup

	heartbeats heartbeats
	recheck    chan struct{} // a check of placed servers is due
	verifier   Verifier      // nil when hosts do not attest
}

// SetVerifier has hosts attested before they get servers: a new host
// joins held by attestation, and v is asked to attest a host whenever its
// agent joins. Call it before Start.
func (s *Service) SetVerifier(v Verifier) { s.verifier = v }

// New returns a Service; Run starts its workers.
func New(store Store, images Images, agents Agents, placer Placer, opts Options) *Service {
	if opts.Workers == 0 {
		opts.Workers = 64
	}
	if opts.ServiceDownTime == 0 {
		opts.ServiceDownTime = 60 * time.Second
	}
	if opts.MaxAttempts == 0 {
		opts.MaxAttempts = 3
	}
	if opts.AgentTimeout == 0 {
		opts.AgentTimeout = 5 * time.Minute
	}
	if opts.EnforceInterval == 0 {
		opts.EnforceInterval = 60 * time.Second
	}
	if opts.DefaultAvailabilityZone == "" {
		opts.DefaultAvailabilityZone = "nova"
	}
	if opts.TakeoverInterval == 0 {
		opts.TakeoverInterval = 5 * time.Second
	}
	if opts.ConsoleTokenTTL == 0 {
		opts.ConsoleTokenTTL = 600 * time.Second
	}
	var self string
	if opts.Controllers != nil {
		self = opts.Controllers.ID()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Service{
		store: ownedStore{store, self}, self: self, images: images, agents: agents, placer: placer, opts: opts,
		heartbeats: heartbeats{seen: map[string]time.Time{}},
		recheck:    make(chan struct{}, 1),
	}
}

// Alive reports whether a host's service is up: it was heard from within
// ServiceDownTime, by this controller or, as recorded in the store, by
// another, and an operator has not forced it down.
func (s *Service) Alive(h *trustack.Host) bool {
	if h.ForcedDown {
		return false
	}
	last := s.heartbeats.last(h.Name)
	if h.LastSeen.After(last) {
		last = h.LastSeen
	}
	return s.opts.Now().Sub(last) < s.opts.ServiceDownTime
}
