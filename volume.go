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
	CreatedAt        time.Time
	UpdatedAt        time.Time
}

// VolumeAttachment is a volume's tie to the server it serves: Cinder's
// attachment, Nova's volume attachment. A volume has one at most.
type VolumeAttachment struct {
	ID       string
	ServerID string
	// Host is the compute host of the server.
	Host string
	// Device is the volume's device as the guest sees it ("/dev/vdb").
	Device     string
	AttachedAt time.Time
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
	Reason    string
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
