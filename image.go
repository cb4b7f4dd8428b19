package trustack

import "time"

// Image statuses, as Glance names them.
const (
	ImageQueued      = "queued"      // registered, no data yet
	ImageSaving      = "saving"      // data being uploaded
	ImageActive      = "active"      // data complete and verified
	ImageKilled      = "killed"      // an upload failed; the image holds no data
	ImageDeleted     = "deleted"     // gone; kept only while something may still name it
	ImageDeactivated = "deactivated" // data kept but not downloadable
)

// Image visibilities, as Glance names them.
const (
	VisibilityPublic    = "public"    // every project sees it
	VisibilityPrivate   = "private"   // only the owner's project
	VisibilityShared    = "shared"    // the owner and the projects it is shared with
	VisibilityCommunity = "community" // anyone may use it; it is not listed by default
)

// DiskFormats and ContainerFormats are the formats Glance accepts.
var (
	DiskFormats      = []string{"raw", "qcow2", "vmdk", "vdi", "iso", "vhd", "vhdx", "ploop", "aki", "ari", "ami"}
	ContainerFormats = []string{"bare", "ovf", "ova", "aki", "ari", "ami", "docker", "compressed"}
)

// Image is a disk image that servers boot from, with Glance's attributes.
// Size and checksums are known once the data is uploaded (Status active).
type Image struct {
	ID              string
	Name            string
	Status          string
	Visibility      string
	Protected       bool   // may not be deleted
	Hidden          bool   // os_hidden: left out of lists unless asked for
	Owner           string // the owning project's ID
	DiskFormat      string // "" until set
	ContainerFormat string // "" until set
	Size            int64  // bytes of data
	VirtualSize     int64  // bytes of the disk the data describes; 0 if unknown
	Checksum        string // MD5 of the data, hex, as Glance's legacy checksum
	HashAlgo        string // os_hash_algo: "sha512"
	HashValue       string // os_hash_value: the data's hash with HashAlgo, hex
	MinDisk         int    // GiB a server needs to boot it
	MinRAM          int    // MiB a server needs to boot it
	Properties      map[string]string
	Tags            []string
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// ImageMember shares an image whose visibility is shared with a project,
// which accepts or rejects it.
type ImageMember struct {
	ImageID   string
	MemberID  string // a project ID
	Status    string // "pending", "accepted" or "rejected"
	CreatedAt time.Time
	UpdatedAt time.Time
}

// ImageFilter selects images. Empty fields match everything.
type ImageFilter struct {
	Name            string
	Status          string
	Visibility      string
	Owner           string
	IDs             []string // when non-nil, only these images
	DiskFormat      string
	ContainerFormat string
	Checksum        string
	HashValue       string
	Tags            []string          // images with every one of these tags
	Properties      map[string]string // images with every one of these properties
	SizeMin         *int64            // images of at least this many bytes
	SizeMax         *int64            // images of at most this many bytes
	Hidden          *bool
	Protected       *bool
	ExcludeKilled   bool // leave out killed and deleted images, as Glance's lists do

	// Viewer, when set, keeps only the images that project may list: its
	// own, public and community ones, and shared ones of which it is a
	// member whose status is MemberStatus ("" or "all" for any status).
	Viewer       string
	MemberStatus string
	// HideCommunity leaves out community images but those CommunityOwner
	// (when set) owns: Glance lists the others only when asked for
	// community images.
	HideCommunity  bool
	CommunityOwner string

	// Sort orders the images (by creation, newest first, if empty); ties
	// are broken by creation time and ID in the direction of the last key.
	Sort []ImageSort
	// Marker, when set, starts the list after the image with this ID in
	// that order.
	Marker string
	// Limit, when positive, bounds the number of images.
	Limit int
}

// ImageSort is a sort key of image lists: one of name, status,
// container_format, disk_format, size, id, created_at, updated_at; and a
// direction.
type ImageSort struct {
	Key  string
	Desc bool
}

// Image member statuses: a project an image is shared with accepts or
// rejects it; until then it is pending.
const (
	MemberPending  = "pending"
	MemberAccepted = "accepted"
	MemberRejected = "rejected"
)
