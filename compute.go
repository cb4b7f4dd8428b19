package trustack

import "time"

// VM states, as Nova names them: where a server stands.
const (
	VMBuilding  = "building"
	VMActive    = "active"
	VMPaused    = "paused"
	VMSuspended = "suspended"
	VMStopped   = "stopped"
	VMError     = "error"
	VMDeleted   = "deleted"
)

// Task states, as Nova names them: what is being done to a server; "" when
// nothing is.
const (
	TaskScheduling     = "scheduling"
	TaskSpawning       = "spawning"
	TaskPausing        = "pausing"
	TaskUnpausing      = "unpausing"
	TaskSuspending     = "suspending"
	TaskResuming       = "resuming"
	TaskPoweringOff    = "powering-off"
	TaskPoweringOn     = "powering-on"
	TaskRebooting      = "rebooting"
	TaskRebootingHard  = "rebooting_hard"
	TaskImageSnapshot  = "image_snapshot"
	TaskImageUploading = "image_uploading"
	TaskDeleting       = "deleting"
	TaskMigrating      = "migrating"
)

// PowerState is what the hypervisor reports of a server, with Nova's
// numbers.
type PowerState int

const (
	PowerNoState   PowerState = 0
	PowerRunning   PowerState = 1
	PowerPaused    PowerState = 3
	PowerShutdown  PowerState = 4
	PowerCrashed   PowerState = 6
	PowerSuspended PowerState = 7
)

// Flavor is a size of server: vCPUs, memory and disk, with extra specs
// that schedulers and drivers read.
type Flavor struct {
	ID          string
	Name        string
	VCPUs       int
	RAM         int // MiB
	Disk        int // GiB, root disk
	Ephemeral   int // GiB
	Swap        int // MiB
	RXTXFactor  float64
	Public      bool
	Disabled    bool
	Description string
	ExtraSpecs  map[string]string
}

// Keypair is an SSH public key a user may inject into servers.
type Keypair struct {
	Name        string
	UserID      string
	Type        string // KeypairSSH or KeypairX509
	PublicKey   string
	Fingerprint string // MD5, colon-separated hex, as Nova shows it
	CreatedAt   time.Time
}

// The types of keypairs: an SSH public key, or an X.509 certificate (as
// Windows guests take for WinRM).
const (
	KeypairSSH  = "ssh"
	KeypairX509 = "x509"
)

// Fault is why a server is in error, for the user to read.
type Fault struct {
	Code    int // an HTTP-like status: 500 for a failure, 400 for a bad request
	Message string
	Details string
	Created time.Time
}

// Server is a virtual machine and everything known of it. Flavor is the
// flavor as it was when the server was created.
type Server struct {
	ID   string
	Name string
	// Description is what its user says of it; nil for none.
	Description      *string
	ProjectID        string
	UserID           string
	ImageID          string
	Flavor           Flavor
	KeyName          string
	KeyData          string // the key's public part, as it was at creation
	Metadata         map[string]string
	AvailabilityZone string // asked for, then where it landed
	UserData         string // base64, as given
	Host             string // the compute host it runs on; "" before it is placed
	Node             string // the hypervisor's hostname on that host
	VMState          string
	TaskState        string
	// TaskOwner is the controller carrying out TaskState ("" with no
	// task): the one that started it, or took it over from a controller
	// that died.
	TaskOwner  string
	PowerState PowerState
	Fault      *Fault
	Locked     bool
	LockedBy   string // "owner" or "admin"
	GroupID    string // server group, "" for none
	Hints      map[string][]string
	// Requirements are what the server requires of its host, as it was
	// last placed (or checked) under them.
	Requirements Requirements
	// RCoT is the chain of trust of the host the server was placed on, at
	// the time; "" for none.
	RCoT          string
	ReservationID string
	LaunchIndex   int
	AccessIPv4    string
	AccessIPv6    string
	ConfigDrive   bool
	DiskConfig    string // "AUTO" or "MANUAL", as Nova's OS-DCF:diskConfig
	// Ports are the server's ports, in the order of its NICs; UserPorts
	// those of them its user made and gave it, which outlive it (the
	// others are deleted with it).
	Ports     []string
	UserPorts []string
	// BlockDevices are the volumes the server was made with, as its block
	// device mapping asked; one of BootIndex 0 is its root disk, and the
	// server then has no image (ImageID "").
	BlockDevices []BlockDevice
	CreatedAt    time.Time
	UpdatedAt    time.Time
	LaunchedAt   time.Time // zero until first active
	TerminatedAt time.Time // zero until deleted
}

// BlockDevice is a volume a server was made with, as Nova's block device
// mapping with destination "volume" names it: an existing volume (Source
// "volume"), or one made for the server, empty ("blank"), from an image
// or from a snapshot (SourceID names it), of Size GiB and of VolumeType.
type BlockDevice struct {
	BootIndex  int    `json:"boot_index"` // 0 for the root disk, -1 for a disk not booted from
	Source     string `json:"source"`
	SourceID   string `json:"source_id,omitempty"`
	Size       int    `json:"size,omitempty"`
	VolumeType string `json:"volume_type,omitempty"`
	// VolumeID is the volume: the source's own, or the one made, once
	// it is.
	VolumeID string `json:"volume_id,omitempty"`
	// DeleteOnTermination deletes the volume with the server.
	DeleteOnTermination bool `json:"delete_on_termination"`
}

// Root returns the block device a server boots from, nil for a server
// booted from its image.
func (s *Server) Root() *BlockDevice {
	for i := range s.BlockDevices {
		if s.BlockDevices[i].BootIndex == 0 {
			return &s.BlockDevices[i]
		}
	}
	return nil
}

// LocalDiskGB is the disk the server takes on its compute host: its
// flavor's, none if it boots from a volume (as Nova claims it).
func (s *Server) LocalDiskGB() int {
	if s.Root() != nil {
		return 0
	}
	return s.Flavor.Disk
}

// ServerFilter selects servers; empty fields match everything.
type ServerFilter struct {
	ProjectID      string
	Name           string // a regular expression, as Nova's
	Host           string
	Status         []string // vm states
	ImageID        string
	FlavorID       string
	IncludeDeleted bool
	InTask         bool // only servers with a task in progress
	ChangesSince   time.Time
	IDs            []string
	ReservationID  string
	Limit          int    // at most this many, 0 for all
	Marker         string // the ID after which to start, in creation order
}

// Server group policies.
const (
	PolicyAffinity         = "affinity"
	PolicyAntiAffinity     = "anti-affinity"
	PolicySoftAffinity     = "soft-affinity"
	PolicySoftAntiAffinity = "soft-anti-affinity"
)

// ServerGroup asks that its members share a host (affinity) or that no two
// of them do (anti-affinity).
type ServerGroup struct {
	ID        string
	Name      string
	ProjectID string
	UserID    string
	Policy    string
	Members   []string // server IDs
	CreatedAt time.Time
}

// Host is a compute host: its capacity, what is claimed of it, and its
// service's state. Generation changes with every claim, so that a claim
// based on a stale view of the host fails instead of oversubscribing it.
type Host struct {
	ID                  string
	Number              int // a small integer, stable for the host's life, as Nova's service IDs
	Name                string
	AvailabilityZone    string
	HypervisorType      string
	HypervisorVersion   int
	HypervisorHostname  string
	HostIP              string
	VCPUs               int
	MemoryMB            int
	DiskGB              int
	CPUAllocationRatio  float64
	RAMAllocationRatio  float64
	DiskAllocationRatio float64
	UsedVCPUs           int
	UsedMemoryMB        int
	UsedDiskGB          int
	RunningVMs          int
	Generation          int64
	Enabled             bool
	DisabledReason      string
	ForcedDown          bool
	LastSeen            time.Time // the latest heartbeat
	// Domain is the physical domain the host belongs to, "" for none.
	Domain string
	// Properties are the host's free-form infrastructure properties, and
	// Security its security properties (among them its chain of trust,
	// see RCoT); both set by operators.
	Properties map[string]string
	Security   map[string]string
	// PhysicalNetworks are the physical networks the host is wired to, as
	// its agent registers them: flat and VLAN networks on one reach only
	// the hosts wired to it.
	PhysicalNetworks []string
	// NetworkNode says the host runs DHCP servers and routers.
	NetworkNode bool
	// Storage are the volume backends the host runs, as its agent
	// registers them: a storage host has some.
	Storage []StorageBackend
	// Tenants are the projects with servers on the host, as the claims
	// on it say; read only.
	Tenants   []Tenant
	CreatedAt time.Time
	UpdatedAt time.Time
}

// JoinedSince reports whether the host, as it is now, registered since it
// was as before: its agent joined again (as it does when it starts, and
// when its bus connection comes back), or it is another host of the same
// name. Other changes of the host (an operator's, attestation's) count
// too: whoever asks its agent again finds out.
func (h *Host) JoinedSince(before *Host) bool {
	return h.ID != before.ID || !h.UpdatedAt.Equal(before.UpdatedAt)
}

// Free reports whether the host can take a further vcpus, memoryMB and
// diskGB within its allocation ratios.
func (h *Host) Free(vcpus, memoryMB, diskGB int) bool {
	fits := func(used, want, total int, ratio float64) bool {
		return float64(used+want) <= float64(total)*ratio
	}
	return fits(h.UsedVCPUs, vcpus, h.VCPUs, h.CPUAllocationRatio) &&
		fits(h.UsedMemoryMB, memoryMB, h.MemoryMB, h.RAMAllocationRatio) &&
		fits(h.UsedDiskGB, diskGB, h.DiskGB, h.DiskAllocationRatio)
}

// Claim is what a server takes of a host, and whom it lets share it.
type Claim struct {
	ServerID  string
	HostID    string
	VCPUs     int
	MemoryMB  int
	DiskGB    int
	ProjectID string
	Isolation Isolation
}

// InstanceAction records something done to a server, with the events of
// carrying it out, for os-instance-actions.
type InstanceAction struct {
	ServerID  string
	Action    string // "create", "pause", "reboot", ...
	RequestID string
	UserID    string
	ProjectID string
	StartTime time.Time
	Message   string // set when the action failed
	Events    []ActionEvent
}

// ActionEvent is a step of an instance action.
type ActionEvent struct {
	Event      string // "compute_pause_instance", ...
	StartTime  time.Time
	FinishTime time.Time // zero while running
	Result     string    // "Success" or "Error"; "" while running
	Host       string
	Details    string
}

// Quota resources, as Nova names them.
const (
	QuotaInstances          = "instances"
	QuotaCores              = "cores"
	QuotaRAM                = "ram"
	QuotaKeyPairs           = "key_pairs"
	QuotaMetadataItems      = "metadata_items"
	QuotaServerGroups       = "server_groups"
	QuotaServerGroupMembers = "server_group_members"
)

// DefaultQuotas are Nova's defaults; -1 means unlimited.
var DefaultQuotas = map[string]int{
	QuotaInstances:          10,
	QuotaCores:              20,
	QuotaRAM:                51200,
	QuotaKeyPairs:           100,
	QuotaMetadataItems:      128,
	QuotaServerGroups:       10,
	QuotaServerGroupMembers: 10,
}

// FlavorFilter selects flavors; empty fields match everything.
type FlavorFilter struct {
	Name      string
	Public    *bool  // only public (true) or only private (false) flavors
	VisibleTo string // only flavors this project may use: public, or shared with it
	MinRAM    int
	MinDisk   int
}

// Aggregate is a host aggregate, as Nova's os-aggregates has it: compute
// hosts an operator groups under a name, with metadata that the
// scheduler's aggregate filters read. Its availability zone, if any, is
// the zone of its hosts and is kept in its metadata, under
// AggregateZoneKey, as Nova keeps it.
type Aggregate struct {
	ID   int // Nova's integer ID, never reused
	UUID string
	Name string
	// Hosts are the names of its compute hosts, sorted, each at most once.
	Hosts    []string
	Metadata map[string]string
	// Domain is the physical domain the aggregate shows ("" for an
	// operator's aggregate): such an aggregate is read only, and changes
	// with its domain (see DomainAggregate).
	Domain    string
	CreatedAt time.Time
	UpdatedAt time.Time // zero until it changes
}

// Aggregate metadata keys with a meaning.
const (
	// AggregateZoneKey holds the availability zone of the aggregate's
	// hosts.
	AggregateZoneKey = "availability_zone"
	// AggregateTenantKey, and any key that begins with it, holds the
	// projects (comma-separated IDs) that alone may use the aggregate's
	// hosts, as Nova's AggregateMultiTenancyIsolation filter reads it.
	AggregateTenantKey = "filter_tenant_id"
	// AggregateSpecScope scopes the flavor extra specs that Nova's
	// AggregateInstanceExtraSpecsFilter matches against the metadata of
	// the host's aggregates: aggregate_instance_extra_specs:KEY=VALUE.
	AggregateSpecScope = "aggregate_instance_extra_specs:"
)

// ReasonAggregateAction is the Reason of an aggregate change refused for
// what it would do to availability zones or to a non-empty aggregate
// (Nova's InvalidAggregateAction), whose status Nova chooses by the
// operation: 409 for adding or removing a host, 400 otherwise.
const ReasonAggregateAction = "InvalidAggregateAction"

// AvailabilityZone returns the aggregate's availability zone, "" for
// none.
func (a *Aggregate) AvailabilityZone() string { return a.Metadata[AggregateZoneKey] }

// ConsoleToken authorizes one connection to a server's remote console, as
// the console's URL carries it: the console proxy takes it once, before
// ExpiresAt, and dials the console at Address on the server's Host,
// presenting Secret, which that host's agent gave for this console alone.
// Stores keep only the token's hash (TokenHash), as Nova keeps token_hash.
type ConsoleToken struct {
	TokenHash string
	ServerID  string
	Host      string
	Protocol  string // vnc or serial
	Type      string // novnc or serial
	Address   string // host:port of the host's console endpoint
	Secret    string
	ExpiresAt time.Time
}
