package trustack

import "time"

// Volume statuses, as Cinder names them: where a volume stands. A volume
// is made (creating), waits (available), is held for an attachment
// (reserved, attaching), serves a server (in-use), is let go (detaching),
// grows (extending), is copied into an image (uploading) and goes
// (deleting); error, error_deleting and
// error_extending say its storage host failed it; maintenance is an
// operator's hold on it.
const (
	VolumeCreating       = "creating"
	VolumeAvailable      = "available"
	VolumeReserved       = "reserved"
	VolumeAttaching      = "attaching"
	VolumeInUse          = "in-use"
	VolumeDetaching      = "detaching"
	VolumeExtending      = "extending"
	VolumeUploading      = "uploading"
	VolumeDeleting       = "deleting"
	VolumeError          = "error"
	VolumeErrorDeleting  = "error_deleting"
	VolumeErrorExtending = "error_extending"
	VolumeReverting      = "reverting" // to its latest snapshot
	VolumeMaintenance    = "maintenance"
)

// Volume is a block device of a project's that outlives the servers it
// serves: Cinder's volume. It is made empty, or from an image, a snapshot
// or another volume, by the backend of its type on a storage host.
type Volume struct {
	ID               string
	ProjectID        string
	UserID           string
	Name             string
	Description      string
	Size             int // GiB
	Status           string
	TypeID           string
	AvailabilityZone string
	Bootable         bool
	// What it was made from, "" for none.
	ImageID        string
	SnapshotID     string
	SourceVolumeID string
	Metadata       map[string]string
	// ImageMetadata is the image's properties a volume made from it keeps
	// (Cinder's volume_image_metadata), for a server booted from it.
	ImageMetadata map[string]string
	// Host is where the volume lives, as Cinder writes it:
	// "host@backend#pool"; "" until a backend has it.
	Host string
	// Reason says why the volume is in error, for operators.
	Reason string
	// Attachment ties the volume to the server it serves; its ID is ""
	// while it serves none.
	Attachment VolumeAttachment
	// AdminMetadata is what the service and administrators note of the
	// volume, out of its owner's reach: readonly, attached_mode.
	AdminMetadata map[string]string
	// ImageBytesCopied is how many bytes of its image the storage host
	// of a volume made from one has copied, as the host last reported
	// while making it: 0 before its first report, the image's size once
	// it has copied all of it.
	ImageBytesCopied int64
	// TaskOwner is the controller carrying out the volume's operation in
	// progress ("" when it has none: its status is not creating,
	// extending, uploading, deleting or reverting): the one that started
	// it, or took it over from a controller that died.
	TaskOwner string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// VolumeAttachment is a volume's tie to the server it serves: Cinder's
// attachment, Nova's volume attachment. A volume has one at most.
type VolumeAttachment struct {
	ID       string
	ServerID string
	// Host is the compute host of the server ("" for an attachment
	// reserved before its host is known).
	Host string
	// Device is the volume's device as the guest sees it ("/dev/vdb").
	Device string
	// Status is where the attachment stands (AttachReserved, ...).
	Status string
	// Connection is how a compute host reaches the volume, given to the
	// caller of the attachments API; nil for none, as for an attachment
	// reserved, or made by trustack's own compute service, which
	// connects its hosts itself.
	Connection *VolumeConnection
	// CreatedAt is when the attachment was made, AttachedAt when it was
	// complete (zero before).
	CreatedAt  time.Time
	AttachedAt time.Time
}

// Attachment statuses, as Cinder names them: held for a server that has
// no connection yet (reserved), connected by its compute host
// (attaching), serving the server (attached), being let go (detaching).
const (
	AttachReserved  = "reserved"
	AttachAttaching = "attaching"
	AttachAttached  = "attached"
	AttachDetaching = "detaching"
)

// VolumeConnection is a volume a storage host serves over NBD with TLS
// to the compute host of one attachment: where to connect, the export's
// name and the attachment's own pre-shared key, which the store keeps
// as Cinder keeps an attachment's connection_info.
type VolumeConnection struct {
	Host        string `json:"host"`
	Port        int    `json:"port"`
	Name        string `json:"name"`
	PSKIdentity string `json:"psk_identity"`
	PSKSecret   string `json:"psk_secret"`
}

// VolumeFilter selects volumes; empty fields match everything.
type VolumeFilter struct {
	IDs       []string
	ProjectID string
	Name      string
	Status    string
	Bootable  *bool
	TypeID    string
	// ServerIDs selects the volumes attached to these servers.
	ServerIDs []string
	// AttachmentID selects the volume of this attachment.
	AttachmentID string
}

// VolumeMessage tells a project's users why something they asked of the
// block storage service, and were told was accepted, failed afterwards:
// Cinder's user message. It names the resource, what was being done
// (the action) and what went wrong (the detail) by Cinder's IDs
// (cinder/message/message_field.py), never by the error itself, which
// may say what users should not see.
type VolumeMessage struct {
	ID        string
	ProjectID string
	// RequestID is the ID of the API request that started what failed,
	// or one of the service's own for work it took up by itself.
	RequestID string
	// ResourceType is VolumeResource or SnapshotResource; ResourceID
	// is the resource's ID.
	ResourceType string
	ResourceID   string
	// ActionID and DetailID are Cinder's: "001" (schedule allocate
	// volume) and "003" (no backend), say.
	ActionID string
	DetailID string
	// EventID is "VOLUME_" + ResourceType + "_" + ActionID + "_" +
	// DetailID, as Cinder's: "VOLUME_VOLUME_001_003".
	EventID string
	// Level is MessageError, the one level Cinder writes.
	Level     string
	CreatedAt time.Time
	// ExpiresAt is when the message goes (Cinder's guaranteed_until):
	// it is kept until then, and not shown after.
	ExpiresAt time.Time
}

// Resources a volume message is about, and the level of its messages, as
// Cinder names them.
const (
	VolumeResource   = "VOLUME"
	SnapshotResource = "VOLUME_SNAPSHOT"
	MessageError     = "ERROR"
)

// VolumeMessageTTL is how long a volume message is kept: Cinder's
// default message_ttl, 2,592,000 seconds.
const VolumeMessageTTL = 30 * 24 * time.Hour

// NewVolumeMessage returns an error message about a resource of a
// project's, made at now, with its event ID and expiry.
func NewVolumeMessage(id, projectID, requestID, resourceType, resourceID, actionID, detailID string, now time.Time) *VolumeMessage {
	return &VolumeMessage{ID: id, ProjectID: projectID, RequestID: requestID, ResourceType: resourceType, ResourceID: resourceID,
		ActionID: actionID, DetailID: detailID, EventID: "VOLUME_" + resourceType + "_" + actionID + "_" + detailID,
		Level: MessageError, CreatedAt: now, ExpiresAt: now.Add(VolumeMessageTTL)}
}

// UserMessage is the message's text as Cinder writes it: the action,
// a colon and the detail ("schedule allocate volume:Could not find any
// available weighted backend."), "unknown action" for an action it does
// not know and the unknown error for such a detail.
func (m *VolumeMessage) UserMessage() string {
	action, ok := MessageActions[m.ActionID]
	if !ok {
		action = "unknown action"
	}
	detail, ok := MessageDetails[m.DetailID]
	if !ok {
		detail = MessageDetails["001"]
	}
	return action + ":" + detail
}

// MessageActions are Cinder's actions of volume messages, by ID.
var MessageActions = map[string]string{
	"001": "schedule allocate volume",
	"002": "attach volume",
	"003": "copy volume to image",
	"004": "update attachment",
	"005": "copy image to volume",
	"006": "unmanage volume",
	"007": "extend volume",
	"008": "create volume from backend storage",
	"009": "create snapshot",
	"010": "delete snapshot",
	"011": "update snapshot",
	"012": "update snapshot metadata",
	"013": "create backup",
	"014": "delete backup",
	"015": "restore backup",
}

// MessageDetails are Cinder's details of volume messages, by ID.
var MessageDetails = map[string]string{
	"001": "An unknown error occurred.",
	"002": "Driver is not initialized at present.",
	"003": "Could not find any available weighted backend.",
	"004": "Failed to upload volume to image at backend.",
	"005": "Volume's attach mode is invalid.",
	"006": "Not enough quota resource for operation.",
	"007": "Image used for creating volume exceeds available space.",
	"008": "Unmanaging encrypted volumes is not supported.",
	"009": "Compute service failed to extend volume.",
	"010": "Volume Driver failed to extend volume.",
	"011": "Image signature verification failed.",
	"012": "Driver failed to create the volume.",
	"013": "Snapshot failed to create.",
	"014": "Volume snapshot update metadata failed.",
	"015": "Snapshot is busy.",
	"016": "Snapshot failed to delete.",
	"017": "Backup status is invalid.",
	"018": "Backup service is down.",
	"019": "Failed to get backup device from the volume service.",
	"020": "Backup driver failed to create backup.",
	"021": "Failed to attach volume.",
	"022": "Failed to detach volume.",
	"023": "Cleanup of temporary volume/snapshot failed.",
	"024": "Backup failed to schedule. Service not found for creating backup.",
	"025": "Backup driver failed to delete backup.",
	"026": "Backup driver failed to restore backup.",
	"027": "Volume status is invalid.",
}

// VolumeMessageFilter selects volume messages; empty fields match
// everything.
type VolumeMessageFilter struct {
	ProjectID    string
	ResourceType string
	ResourceID   string
	EventID      string
	RequestID    string
	Level        string
}

// VolumeType is a kind of volume a project may ask for: which backend
// makes it and how, as its extra specs say (volume_backend_name). A type
// that is not public is for the projects given access to it.
type VolumeType struct {
	ID          string
	Name        string
	Description string
	Public      bool
	ExtraSpecs  map[string]string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// StorageBackend is a volume backend a host runs, as its agent registers
// it: its name (what volume types' volume_backend_name names) and its
// capacity in GiB.
type StorageBackend struct {
	Name    string `json:"name"`
	TotalGB int    `json:"total_gb"`
	FreeGB  int    `json:"free_gb"`
}

// DefaultVolumeType is the name of the type a volume gets when it names
// none, as Cinder's; it cannot be deleted.
const DefaultVolumeType = "__DEFAULT__"

// Volume quota resources, as Cinder names them: how many volumes and
// snapshots a project has, their total size in GiB, and the largest one
// volume may be; backups and groups, which trustack does not make, have
// limits clients may set and read, and nothing counts against them.
const (
	QuotaVolumes            = "volumes"
	QuotaGigabytes          = "gigabytes"
	QuotaSnapshots          = "snapshots"
	QuotaPerVolumeGigabytes = "per_volume_gigabytes"
	QuotaBackups            = "backups"
	QuotaBackupGigabytes    = "backup_gigabytes"
	QuotaGroups             = "groups"
)

// DefaultVolumeQuotas are Cinder's defaults; -1 means unlimited.
var DefaultVolumeQuotas = map[string]int{
	QuotaVolumes:            10,
	QuotaGigabytes:          1000,
	QuotaSnapshots:          10,
	QuotaPerVolumeGigabytes: -1,
	QuotaBackups:            10,
	QuotaBackupGigabytes:    1000,
	QuotaGroups:             10,
}

// Snapshot statuses, as Cinder names them.
const (
	SnapshotCreating      = "creating"
	SnapshotAvailable     = "available"
	SnapshotRestoring     = "restoring" // its volume reverting to it
	SnapshotDeleting      = "deleting"
	SnapshotError         = "error"
	SnapshotErrorDeleting = "error_deleting"
)

// VolumeSnapshot is a volume's data at a moment, kept by the volume's
// backend on its storage host: Cinder's snapshot. Volumes are made from
// it; it counts against its project's snapshots and gigabytes quotas.
type VolumeSnapshot struct {
	ID          string
	ProjectID   string
	UserID      string
	VolumeID    string
	Name        string
	Description string
	Size        int // GiB, the volume's when taken
	Status      string
	Metadata    map[string]string
	// Progress is what a service taking the snapshot itself reported
	// ("80%"); "" for one its storage host takes.
	Progress string
	// Reason says why the snapshot is in error, for operators.
	Reason string
	// TaskOwner is the controller carrying out the snapshot's operation
	// in progress ("" when it has none: its status is not creating,
	// deleting or restoring): the one that started it, or took it over
	// from a controller that died. A snapshot restoring is its reverting
	// volume's owner's.
	TaskOwner string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// SnapshotFilter selects snapshots; empty fields match everything.
type SnapshotFilter struct {
	ProjectID string
	VolumeID  string
	Name      string
	Status    string
}
