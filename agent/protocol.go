package agent

import (
	"github.com/trustack/trustack"
	"github.com/trustack/trustack/bus"
)

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
}

// Expected is a server the controller expects on a host, as a registering
// agent learns it.
type Expected struct {
	ServerID string              `json:"server_id"`
	Power    trustack.PowerState `json:"power_state"`
}

// Subjects on the bus. Controllers serve the first three in a queue group,
// so that one of them answers each request; each agent serves its own
// host's subjects.
const (
	subjectRegister  = "trustack.hosts.register"
	subjectPower     = "trustack.hosts.power"
	subjectHeartbeat = "trustack.hosts.heartbeat"
	controllersQueue = "controllers"
)

// hostSubject is the subject a host's agent serves: one subject, with the
// operation in the request, so that simulating thousands of hosts costs
// one subscription each. Host names may hold dots, which separate subject
// tokens, so they are escaped.
func hostSubject(host string) string {
	return "trustack.host." + bus.Token(host)
}

// Messages.

type registerRequest struct {
	Host trustack.Host `json:"host"`
}

type registerReply struct {
	Host     trustack.Host `json:"host"`
	Expected []Expected    `json:"expected"`
}

type heartbeat struct {
	Host string `json:"host"`
}

type powerEvent struct {
	Host     string              `json:"host"`
	ServerID string              `json:"server_id"`
	Power    trustack.PowerState `json:"power_state"`
	Reason   string              `json:"reason"`
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
)

// hostRequest asks a host's agent for one operation.
type hostRequest struct {
	Op       string  `json:"op"`
	Spec     *Spec   `json:"spec,omitempty"`
	ServerID string  `json:"server_id,omitempty"`
	Power    PowerOp `json:"power,omitempty"`
	Lines    int     `json:"lines,omitempty"`
	Upload   *Upload `json:"upload,omitempty"`
}

// hostReply is what an operation answers: a power state, console output
// or diagnostics.
type hostReply struct {
	Power       trustack.PowerState `json:"power_state"`
	Output      string              `json:"output,omitempty"`
	Diagnostics map[string]int64    `json:"diagnostics,omitempty"`
}

type empty struct{}

// HostSubjects are the subjects a host's agent publishes to and
// subscribes to, for the bus's grant to a registered host: the
// controllers' subjects, and its own host's.
func HostSubjects(host string) (publish, subscribe []string) {
	return []string{subjectRegister, subjectPower, subjectHeartbeat}, []string{hostSubject(host)}
}
