// Package volume is trustack's block storage service, Cinder's
// counterpart: volumes of a project's that outlive its servers, made,
// grown and deleted by the backends of their types on storage hosts,
// whose agents it asks over the bus. The file backend is in file;
// backendtest is the suite every backend passes.
package volume

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/trustack/trustack"
	"github.com/trustack/trustack/cluster"
	"github.com/trustack/trustack/wire"
)

// Caller is who asks the service.
type Caller struct {
	UserID    string
	ProjectID string
	// Admin sees and may act on every project's volumes.
	Admin bool
}

// Storage is the storage hosts' side of the conversation: their agents,
// over the bus (wire.Hosts).
type Storage interface {
	CreateVolume(ctx context.Context, host, backend, volumeID string, size int) error
	CreateVolumeFromImage(ctx context.Context, host, backend, volumeID string, size int, image wire.ImageRef, token string) error
	CreateVolumeFromSnapshot(ctx context.Context, host, backend, volumeID, snapshotID string, size int) error
	SnapshotVolume(ctx context.Context, host, backend, volumeID, snapshotID string) error
	DeleteSnapshot(ctx context.Context, host, backend, snapshotID string) error
	ExtendVolume(ctx context.Context, host, backend, volumeID string, size int, attachedHere bool) error
	DeleteVolume(ctx context.Context, host, backend, volumeID string) error
	UploadVolume(ctx context.Context, host, backend, volumeID string, upload wire.Upload, diskFormat string) error
	RevertVolume(ctx context.Context, host, backend, volumeID, snapshotID string) error
}

// Servers is what the service needs of the compute service
// (compute.Service is one): to have the server an extended volume is
// attached to see it at its new size, as Cinder tells Nova with a
// volume-extended event.
type Servers interface {
	VolumeExtended(ctx context.Context, v *trustack.Volume) error
}

// Images is what volumes made from images need of the image service
// (images.Service is one): an image a project may use, if it is active.
type Images interface {
	BootImage(ctx context.Context, projectID, imageID string) (*trustack.Image, error)
}

// Tokens issues the tokens storage hosts download images with
// (identity.Service is one).
type Tokens interface {
	IssueToken(ctx context.Context, userID, projectID string) (string, error)
}

// Hosts lists the hosts, storage hosts among them (the compute store).
type Hosts interface {
	Hosts(ctx context.Context) ([]*trustack.Host, error)
}

// Requirements says what a project requires of the hosts that keep its
// resources: its location, isolation and trust requirements, as the
// requirements service (acaas.Service) states them for its servers.
type Requirements interface {
	Effective(ctx context.Context, projectID string, f *trustack.Flavor, hints map[string][]string) (trustack.Requirements, error)
}

// TopologyReader is what Hosts may offer besides (the compute store
// does): the physical domains and locations that requirements are met
// in. Without it, hosts are in no domain.
type TopologyReader interface {
	Topology(ctx context.Context) (*trustack.Topology, error)
}

// HostNamer is what Hosts may offer besides (the compute store does): the
// host of a name, ENOTFOUND if there is none. Without it, the service
// looks for the host among them all.
type HostNamer interface {
	HostByName(ctx context.Context, name string) (*trustack.Host, error)
}

// Options tune the Service; zero values take the defaults.
type Options struct {
	// AvailabilityZone is the zone of volumes that name none (default
	// nova, as Cinder's storage_availability_zone).
	AvailabilityZone string
	// Requirements, if set, holds each project's volumes to the hosts
	// that meet its requirements.
	Requirements Requirements
	// Alive reports whether a host's agent is up; nil means every host
	// is.
	Alive func(*trustack.Host) bool
	// Images, ImageURL (the image API's, "http://host:port/image") and
	// ImageTokens let volumes be made from images; without Images they
	// are refused.
	Images      Images
	ImageURL    string
	ImageTokens Tokens
	// AgentTimeout bounds a request to a storage host's agent (default
	// 2 minutes: a volume made from an image copies it).
	AgentTimeout time.Duration
	// RetryInterval is how often a request to a storage host whose agent
	// is down is made again while the host counts as alive, and how often
	// a request waiting for its answer looks for a restart of the agent,
	// after which it is made again (default 2 s).
	RetryInterval time.Duration
	// Controllers are the controllers sharing the store, this one among
	// them: each carries out the volumes' and snapshots' operations it
	// started, and takes over those of controllers gone. Nil: this
	// controller is alone.
	Controllers cluster.Peers
	// TakeoverInterval is how often a controller among several looks for
	// the operations of controllers gone (default 5 s).
	TakeoverInterval time.Duration
	// Now returns the current time (default time.Now).
	Now func() time.Time
	// Log receives what the service does (default: discarded).
	Log *slog.Logger
}

// Service is the block storage service. It is safe for concurrent use.
// A request that a storage host carries out (a volume made, grown or
// deleted) is accepted once its volume's new status is stored, and goes
// on in the background, asked again of a storage host whose agent was
// down or restarted before it answered (see onHost); Recover takes up,
// after a restart, what was going on. Among several controllers, each
// carries out the operations it started (tasks.go).
type Service struct {
	store   Store  // an ownedStore
	self    string // this controller's name; "" when alone
	hosts   Hosts
	storage Storage
	servers Servers
	opts    Options
	work    sync.WaitGroup
	// running is the look for the operations of controllers gone.
	running sync.WaitGroup
}

// New returns the service over the store, the hosts and their agents.
func New(store Store, hosts Hosts, storage Storage, opts Options) *Service {
	if opts.AvailabilityZone == "" {
		opts.AvailabilityZone = "nova"
	}
	if opts.Alive == nil {
		opts.Alive = func(*trustack.Host) bool { return true }
	}
	if opts.AgentTimeout == 0 {
		opts.AgentTimeout = 2 * time.Minute
	}
	if opts.RetryInterval == 0 {
		opts.RetryInterval = 2 * time.Second
	}
	if opts.TakeoverInterval == 0 {
		opts.TakeoverInterval = 5 * time.Second
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
	return &Service{store: ownedStore{store, self}, self: self, hosts: hosts, storage: storage, opts: opts}
}

// SetServers gives the service the compute service, which comes to be
// after it (it needs volumes); until it is set, volumes in use are not
// extended. Set it before the service serves.
func (s *Service) SetServers(servers Servers) { s.servers = servers }

// Wait waits for the work going on in the background: among several
// controllers, once the context given to Recover ended, which ends the
// look for the operations of controllers gone.
func (s *Service) Wait() {
	s.running.Wait()
	s.work.Wait()
}

// CreateRequest asks for a new, empty volume.
type CreateRequest struct {
	Name        string
	Description string
	Size        int    // GiB
	Type        string // a volume type's name or ID; "" for the default
	// AvailabilityZone is the zone to make the volume in; "" for the
	// default.
	AvailabilityZone string
	Metadata         map[string]string
	// SnapshotID names a snapshot whose data the volume starts with; it
	// is then made where the snapshot is, of its size if Size is 0, and
	// of its volume's type if Type is "".
	SnapshotID string
	// ImageID names an image whose data the volume starts with, and
	// whose properties it keeps; it is then bootable.
	ImageID string
}

// Create accepts a volume: stored as creating on a backend the type asks
// for, with room for it, then made by its storage host; EOVERQUOTA beyond
// the project's quota. With no backend that can take it, the volume is in
// error with the reason, as Cinder leaves it.
func (s *Service) Create(ctx context.Context, c Caller, r CreateRequest) (*trustack.Volume, error) {
	var source *trustack.Volume // the snapshot's volume
	if r.SnapshotID != "" {
		var err error
		if source, err = s.fromSnapshot(ctx, c, &r); err != nil {
			return nil, err
		}
	}
	var img *trustack.Image
	if r.ImageID != "" {
		var err error
		if img, err = s.image(ctx, c, &r); err != nil {
			return nil, err
		}
	}
	if r.Size < 1 {
		return nil, trustack.Errorf(trustack.EINVALID, "Invalid input received: 'size' parameter must be an integer greater than 0, got %d.", r.Size)
	}
	if err := checkText(r.Name, r.Description, r.Metadata); err != nil {
		return nil, err
	}
	vt, err := s.Type(ctx, c, cmp.Or(r.Type, trustack.DefaultVolumeType))
	if err != nil {
		return nil, err
	}
	zone := cmp.Or(r.AvailabilityZone, s.opts.AvailabilityZone)
	limits, err := s.Quotas(ctx, c.ProjectID)
	if err != nil {
		return nil, err
	}
	if err := checkPerVolume(limits, r.Size); err != nil {
		return nil, err
	}
	now := s.opts.Now().UTC()
	v := &trustack.Volume{ID: uuid.NewString(), ProjectID: c.ProjectID, UserID: c.UserID, Name: r.Name, Description: r.Description,
		Size: r.Size, Status: trustack.VolumeCreating, TypeID: vt.ID, AvailabilityZone: zone, Metadata: r.Metadata,
		CreatedAt: now, UpdatedAt: now}
	if img != nil {
		v.ImageID, v.Bootable, v.ImageMetadata = img.ID, true, imageMetadata(img)
	}
	host, backend, refused, err := s.place(ctx, c.ProjectID, vt, zone, r.Size)
	if source != nil {
		// A snapshot's data is where the snapshot is.
		host, backend = hostAndBackend(source)
		v.AvailabilityZone, v.SnapshotID = source.AvailabilityZone, r.SnapshotID
	}
	if err != nil {
		return nil, err
	}
	if host == "" {
		v.Status, v.Reason = trustack.VolumeError, noBackend(vt, zone, r.Size, refused)
	} else {
		v.Host = location(host, backend)
	}
	if err := s.store.CreateVolume(ctx, v, limits); err != nil {
		return nil, err
	}
	s.noteUnplaced(ctx, v)
	if v.Status == trustack.VolumeCreating {
		s.background(v.ID, trustack.VolumeCreating, nil)
	}
	return v, nil
}

// checkText refuses names, descriptions and metadata past Cinder's
// limits.
func checkText(name, description string, metadata map[string]string) error {
	if len(name) > 255 {
		return trustack.Errorf(trustack.EINVALID, "Invalid input received: name has more than 255 characters.")
	}
	if len(description) > 255 {
		return trustack.Errorf(trustack.EINVALID, "Invalid input received: description has more than 255 characters.")
	}
	for k, v := range metadata {
		if k == "" || len(k) > 255 || len(v) > 255 {
			return trustack.Errorf(trustack.EINVALID, "Invalid input received: metadata keys must be 1 to 255 characters, values at most 255.")
		}
	}
	return nil
}

// volumeType finds a type by ID or name; "" is the default type.
func (s *Service) volumeType(ctx context.Context, ref string) (*trustack.VolumeType, error) {
	if ref == "" {
		return s.store.VolumeTypeByName(ctx, trustack.DefaultVolumeType)
	}
	vt, err := s.store.VolumeType(ctx, ref)
	if trustack.ErrorCode(err) == trustack.ENOTFOUND {
		vt, err = s.store.VolumeTypeByName(ctx, ref)
	}
	if trustack.ErrorCode(err) == trustack.ENOTFOUND {
		return nil, trustack.Reasonf(trustack.ENOTFOUND, "VolumeTypeNotFoundByName", "Volume type with name %s could not be found.", ref)
	}
	return vt, err
}

// place chooses the storage host and backend of a new volume of the
// project's, of the type in the zone: among the backends of the hosts
// that are up and enabled and that the type names (any, if it names
// none), on a host that meets the project's requirements, the one with
// the most GiB free, as Cinder's capacity weigher; "" if none has room,
// with the requirements that kept those with room out.
func (s *Service) place(ctx context.Context, projectID string, vt *trustack.VolumeType, zone string, size int) (host, backend string, refused []string, err error) {
	hosts, err := s.hosts.Hosts(ctx)
	if err != nil {
		return "", "", nil, err
	}
	meets, err := s.meetsRequirements(ctx, projectID)
	if err != nil {
		return "", "", nil, err
	}
	want := vt.ExtraSpecs["volume_backend_name"]
	takes := func(b trustack.StorageBackend) bool {
		return (want == "" || b.Name == want) && offers(vt, b) && b.FreeGB >= size
	}
	free := -1
	for _, h := range hosts {
		if !h.Enabled || !s.opts.Alive(h) || h.AvailabilityZone != zone || !slices.ContainsFunc(h.Storage, takes) {
			continue
		}
		if why := meets(h); why != "" {
			if !slices.Contains(refused, why) {
				refused = append(refused, why)
			}
			continue
		}
		for _, b := range h.Storage {
			if takes(b) && b.FreeGB > free {
				host, backend, free = h.Name, b.Name, b.FreeGB
			}
		}
	}
	return host, backend, refused, nil
}

// meetsRequirements returns whether a host meets the project's
// requirements: "" if it does, else the requirement it does not meet.
// Isolation counts the projects with servers on the host and those with
// volumes there.
func (s *Service) meetsRequirements(ctx context.Context, projectID string) (func(*trustack.Host) string, error) {
	none := func(*trustack.Host) string { return "" }
	if s.opts.Requirements == nil {
		return none, nil
	}
	reqs, err := s.opts.Requirements.Effective(ctx, projectID, nil, nil)
	if err != nil || len(reqs) == 0 {
		return none, err
	}
	topology := &trustack.Topology{}
	if tr, ok := s.hosts.(TopologyReader); ok {
		if topology, err = tr.Topology(ctx); err != nil {
			return nil, err
		}
	}
	iso := reqs.Isolation()
	volumeTenants := map[string][]trustack.Tenant{} // by host
	if iso.Exclusive || len(iso.Exclude) > 0 {
		all, err := s.store.Volumes(ctx, trustack.VolumeFilter{})
		if err != nil {
			return nil, err
		}
		for _, v := range all {
			host, _ := hostAndBackend(v)
			volumeTenants[host] = append(volumeTenants[host], trustack.Tenant{ProjectID: v.ProjectID, Servers: 1})
		}
	}
	return func(h *trustack.Host) string {
		if r, unmet := reqs.Unmet(h, topology); unmet {
			return r.String()
		}
		if iso.Shuns(h.Tenants, projectID) || iso.Shuns(volumeTenants[h.Name], projectID) {
			return "isolation=" + iso.String()
		}
		return ""
	}, nil
}

// noBackend says why no backend takes a volume: none has room, or those
// with room are on hosts that do not meet the requirements refused.
func noBackend(vt *trustack.VolumeType, zone string, size int, refused []string) string {
	if len(refused) > 0 {
		return fmt.Sprintf("No valid backend was found: the storage hosts in zone %s with a backend %s with %d GiB free do not meet the requirements %s.",
			zone, cmp.Or(vt.ExtraSpecs["volume_backend_name"], "of any name"), size, strings.Join(refused, ", "))
	}
	return fmt.Sprintf("No valid backend was found: no storage host up in zone %s has a backend %s with %d GiB free.",
		zone, cmp.Or(vt.ExtraSpecs["volume_backend_name"], "of any name"), size)
}

// location is where a volume lives, as Cinder writes it.
func location(host, backend string) string { return host + "@" + backend + "#" + backend }

// Location returns the storage host and the backend a volume is on, ""
// for a volume no backend has.
func Location(v *trustack.Volume) (host, backend string) { return hostAndBackend(v) }

// hostAndBackend reads a volume's location back.
func hostAndBackend(v *trustack.Volume) (host, backend string) {
	host, rest, _ := strings.Cut(v.Host, "@")
	backend, _, _ = strings.Cut(rest, "#")
	return host, backend
}

// background has the volume's storage host carry out what its status
// says is going on, then records the outcome: the volume available (or,
// deleted, gone), or in the error status that follows from the status it
// was in, with the reason, after undo (nil for nothing) puts back what
// the request changed.
func (s *Service) background(id, status string, undo func(*trustack.Volume)) {
	s.work.Add(1)
	go func() {
		defer s.work.Done()
		s.carryOut(context.Background(), id, status, undo)
	}()
}

func (s *Service) carryOut(ctx context.Context, id, status string, undo func(*trustack.Volume)) {
	v, err := s.store.Volume(ctx, id)
	if err != nil || v.Status != status {
		return // deleted or moved on meanwhile
	}
	err = nil
	if host, _ := hostAndBackend(v); host != "" {
		err = s.onHost(ctx, host, func(ctx context.Context) error { return s.ask(ctx, v) })
	}
	_, uerr := s.store.UpdateVolume(ctx, id, nil, func(cur *trustack.Volume) error {
		if cur.Status != status {
			return errMoved
		}
		cur.UpdatedAt = s.opts.Now().UTC()
		switch {
		case err == nil && status == trustack.VolumeDeleting:
			return errGone
		case err == nil:
			cur.Status, cur.Reason = settled(cur), ""
		default:
			cur.Status, cur.Reason = failed[status], err.Error()
			if undo != nil {
				undo(cur)
			}
		}
		return nil
	})
	switch {
	case uerr == errGone:
		if derr := s.store.DeleteVolume(ctx, id); derr != nil && trustack.ErrorCode(derr) != trustack.ENOTFOUND {
			s.opts.Log.Error("forget a deleted volume", "volume", id, "error", derr)
		}
	case uerr != nil && uerr != errMoved:
		s.opts.Log.Error("record a volume's status", "volume", id, "error", uerr)
	}
	if err != nil {
		s.opts.Log.Warn("a storage host failed a volume", "volume", id, "status", status, "error", err)
		s.noteFailure(ctx, v, status)
		if status == trustack.VolumeUploading {
			s.uploadFailed(ctx, v)
		}
	}
}

// ask has a volume's storage host do what the volume's status says is
// going on, at the volume's size.
func (s *Service) ask(ctx context.Context, v *trustack.Volume) error {
	host, backend := hostAndBackend(v)
	switch v.Status {
	case trustack.VolumeCreating:
		switch {
		case v.SnapshotID != "":
			return s.storage.CreateVolumeFromSnapshot(ctx, host, backend, v.ID, v.SnapshotID, v.Size)
		case v.ImageID != "":
			ref, token, err := s.imageRef(ctx, v)
			if err != nil {
				return err
			}
			return s.storage.CreateVolumeFromImage(ctx, host, backend, v.ID, v.Size, ref, token)
		}
		return s.storage.CreateVolume(ctx, host, backend, v.ID, v.Size)
	case trustack.VolumeExtending:
		a := v.Attachment
		if err := s.storage.ExtendVolume(ctx, host, backend, v.ID, v.Size, a.ID != "" && a.Host == host); err != nil {
			return err
		}
		// As Cinder's, the volume is grown once its storage host has
		// grown it; its server's failure to see it is the server's
		// (an extend_volume action in error), seen again when it starts.
		if a.ID != "" && s.servers != nil {
			if err := s.servers.VolumeExtended(ctx, v); err != nil {
				s.opts.Log.Warn("a server did not see its volume grow", "volume", v.ID, "server", a.ServerID, "error", err)
			}
		}
		return nil
	case trustack.VolumeUploading:
		return s.upload(ctx, host, backend, v)
	case trustack.VolumeReverting:
		return s.revert(ctx, v)
	default:
		return s.storage.DeleteVolume(ctx, host, backend, v.ID)
	}
}

var (
	errMoved = fmt.Errorf("the volume moved on")
	errGone  = fmt.Errorf("the volume is gone")
)

// settled is the status of a volume its storage host is done with:
// in-use if it is attached, else available.
func settled(v *trustack.Volume) string {
	if v.Attachment.ID != "" {
		return trustack.VolumeInUse
	}
	return trustack.VolumeAvailable
}

// failed is the status a volume is left in when its storage host fails
// what its status says is going on.
var failed = map[string]string{
	trustack.VolumeCreating:  trustack.VolumeError,
	trustack.VolumeDeleting:  trustack.VolumeErrorDeleting,
	trustack.VolumeExtending: trustack.VolumeErrorExtending,
	trustack.VolumeReverting: trustack.VolumeError,
	// As Cinder's: the image is killed, the volume as it was.
	trustack.VolumeUploading: trustack.VolumeAvailable,
}

// Get returns a volume the caller may see; ENOTFOUND (VolumeNotFound)
// for one of another project's, unless the caller is an administrator.
func (s *Service) Get(ctx context.Context, c Caller, id string) (*trustack.Volume, error) {
	v, err := s.store.Volume(ctx, id)
	if err != nil {
		return nil, err
	}
	if !c.Admin && v.ProjectID != c.ProjectID {
		return nil, trustack.Reasonf(trustack.ENOTFOUND, "VolumeNotFound", "Volume %s could not be found.", id)
	}
	return v, nil
}

// List returns the volumes matching f, oldest first: the caller's
// project's, or for an administrator every project's unless f names one.
func (s *Service) List(ctx context.Context, c Caller, f trustack.VolumeFilter) ([]*trustack.Volume, error) {
	if !c.Admin {
		f.ProjectID = c.ProjectID
	}
	return s.store.Volumes(ctx, f)
}

// Update is a change of what a volume is called and says of itself; nil
// fields are left as they are.
type Update struct {
	Name, Description *string
	Bootable          *bool
	// Metadata, if not nil, returns the volume's new metadata from its
	// present metadata (a copy it may change), or an error that leaves
	// the volume as it was; ImageMetadata likewise for what it keeps of
	// its image.
	Metadata      func(map[string]string) (map[string]string, error)
	ImageMetadata func(map[string]string) (map[string]string, error)
}

// Update changes a volume as u says and returns it.
func (s *Service) Update(ctx context.Context, c Caller, id string, u Update) (*trustack.Volume, error) {
	if _, err := s.Get(ctx, c, id); err != nil {
		return nil, err
	}
	if err := checkText(deref(u.Name), deref(u.Description), nil); err != nil {
		return nil, err
	}
	return s.store.UpdateVolume(ctx, id, nil, func(v *trustack.Volume) error {
		if err := changeMetadata(&v.Metadata, u.Metadata); err != nil {
			return err
		}
		if err := changeMetadata(&v.ImageMetadata, u.ImageMetadata); err != nil {
			return err
		}
		if u.Name != nil {
			v.Name = *u.Name
		}
		if u.Description != nil {
			v.Description = *u.Description
		}
		if u.Bootable != nil {
			v.Bootable = *u.Bootable
		}
		v.UpdatedAt = s.opts.Now().UTC()
		return nil
	})
}

// changeMetadata sets *m to what change (if not nil) makes of a copy of
// it, within Cinder's limits; an error leaves *m as it was.
func changeMetadata(m *map[string]string, change func(map[string]string) (map[string]string, error)) error {
	if change == nil {
		return nil
	}
	have := maps.Clone(*m)
	if have == nil {
		have = map[string]string{}
	}
	changed, err := change(have)
	if err != nil {
		return err
	}
	if err := checkText("", "", changed); err != nil {
		return err
	}
	*m = changed
	return nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// Delete accepts the deletion of a volume that is available or in error:
// its storage host deletes it, then it is gone (error_deleting, with the
// reason, if the host fails). EINVALID (InvalidVolume) for a volume in
// use or busy, or with snapshots unless cascade, which deletes its
// snapshots first (each available or in error), as Cinder's.
func (s *Service) Delete(ctx context.Context, c Caller, id string, cascade bool) error {
	return s.delete(ctx, c, id, cascade, func(v *trustack.Volume) error {
		switch v.Status {
		case trustack.VolumeAvailable, trustack.VolumeError, trustack.VolumeErrorDeleting, trustack.VolumeErrorExtending:
			return nil
		}
		return trustack.Reasonf(trustack.EINVALID, "InvalidVolume",
			"Invalid volume: Volume status must be available or error or error_restoring or error_extending or error_managing and must not be migrating, attached, belong to a group, have snapshots or be disassociated from snapshots after volume transfer.")
	})
}

// ForceDelete is Delete for a volume in any status but attached to a
// server (in-use, detaching), as an administrator's os-force_delete: for
// one a failure left creating, extending, deleting or attaching.
func (s *Service) ForceDelete(ctx context.Context, c Caller, id string) error {
	return s.delete(ctx, c, id, false, func(v *trustack.Volume) error {
		switch v.Status {
		case trustack.VolumeInUse, trustack.VolumeDetaching:
			return trustack.Reasonf(trustack.EINVALID, "InvalidVolume", "Invalid volume: Volume %s is attached (%s); detach it first.", id, v.Status)
		}
		return nil
	})
}

// delete has a volume's storage host delete it if deletable says it may,
// after its snapshots if cascade.
func (s *Service) delete(ctx context.Context, c Caller, id string, cascade bool, deletable func(*trustack.Volume) error) error {
	if _, err := s.Get(ctx, c, id); err != nil {
		return err
	}
	snaps, err := s.store.Snapshots(ctx, trustack.SnapshotFilter{VolumeID: id})
	if err != nil {
		return err
	}
	if len(snaps) > 0 && !cascade {
		return trustack.Reasonf(trustack.EINVALID, "InvalidVolume", "Invalid volume: Volume %s still has %d dependent snapshots.", id, len(snaps))
	}
	for _, snap := range snaps {
		if snap.Status != trustack.SnapshotAvailable && snap.Status != trustack.SnapshotError {
			return trustack.Reasonf(trustack.EINVALID, "InvalidVolume", "Invalid volume: Snapshot %s of volume %s is %s, not available or error.", snap.ID, id, snap.Status)
		}
	}
	_, err = s.store.UpdateVolume(ctx, id, nil, func(v *trustack.Volume) error {
		if err := deletable(v); err != nil {
			return err
		}
		v.Status, v.UpdatedAt = trustack.VolumeDeleting, s.opts.Now().UTC()
		return nil
	})
	if err != nil {
		return err
	}
	for _, snap := range snaps {
		if _, err := s.store.UpdateSnapshot(ctx, snap.ID, func(cur *trustack.VolumeSnapshot) error {
			cur.Status, cur.UpdatedAt = trustack.SnapshotDeleting, s.opts.Now().UTC()
			return nil
		}); err != nil {
			return err
		}
	}
	s.work.Add(1)
	go func() {
		defer s.work.Done()
		ctx := context.Background()
		for _, snap := range snaps {
			s.carryOutSnapshot(ctx, snap.ID, trustack.SnapshotDeleting)
		}
		if left, err := s.store.Snapshots(ctx, trustack.SnapshotFilter{VolumeID: id}); err != nil || len(left) > 0 {
			// The volume stays with what is left of its snapshots.
			s.store.UpdateVolume(ctx, id, nil, func(v *trustack.Volume) error {
				v.Status, v.Reason = trustack.VolumeErrorDeleting, fmt.Sprintf("%d of its snapshots could not be deleted", len(left))
				return nil
			})
			return
		}
		s.carryOut(ctx, id, trustack.VolumeDeleting, nil)
	}()
	return nil
}

// ResetStatus sets a volume's status, as an administrator's
// os-reset_status does to put right what a failure left; nothing is asked
// of its storage host. EINVALID for a status Cinder does not name.
func (s *Service) ResetStatus(ctx context.Context, c Caller, id, status string) error {
	if !slices.Contains(statuses, status) {
		return trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Invalid input received: %q is not a volume status (%s).", status, strings.Join(statuses, ", "))
	}
	return s.transition(ctx, c, id, func(v *trustack.Volume) error {
		v.Status = status
		if !strings.HasPrefix(status, trustack.VolumeError) {
			v.Reason = ""
		}
		return nil
	})
}

// statuses are the volume statuses Cinder names.
var statuses = []string{trustack.VolumeCreating, trustack.VolumeAvailable, trustack.VolumeReserved, trustack.VolumeAttaching,
	trustack.VolumeInUse, trustack.VolumeDetaching, trustack.VolumeExtending, trustack.VolumeDeleting, trustack.VolumeError,
	trustack.VolumeErrorDeleting, trustack.VolumeErrorExtending, trustack.VolumeMaintenance, trustack.VolumeReverting}

// Extend accepts the growth of an available volume to size GiB, within
// the project's quota (EOVERQUOTA): its storage host grows it
// (error_extending, at its former size, if the host fails). With inUse
// (Cinder's 3.42, where the policy allows it), a volume in use too: its
// server then sees it grow. EINVALID (InvalidInput) for a size not above
// the volume's, EINVALID (InvalidVolume) for a volume in another status.
func (s *Service) Extend(ctx context.Context, c Caller, id string, size int, inUse bool) error {
	v, err := s.Get(ctx, c, id)
	if err != nil {
		return err
	}
	limits, err := s.Quotas(ctx, v.ProjectID)
	if err != nil {
		return err
	}
	if err := checkPerVolume(limits, size); err != nil {
		return err
	}
	var before int
	_, err = s.store.UpdateVolume(ctx, id, limits, func(v *trustack.Volume) error {
		switch {
		case v.Status == trustack.VolumeAvailable, inUse && v.Status == trustack.VolumeInUse:
		case inUse:
			return trustack.Reasonf(trustack.EINVALID, "InvalidVolume", "Invalid volume: Volume %s status must be available or in-use to extend, but current status is: %s.", id, v.Status)
		case v.Status != trustack.VolumeAvailable:
			return trustack.Reasonf(trustack.EINVALID, "InvalidVolume", "Invalid volume: Volume %s status must be available to extend, but current status is: %s.", id, v.Status)
		}
		if size <= v.Size {
			return trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Invalid input received: New size for extend must be greater than current size. (current: %d, extended: %d).", v.Size, size)
		}
		before = v.Size
		v.Status, v.Size, v.UpdatedAt = trustack.VolumeExtending, size, s.opts.Now().UTC()
		return nil
	})
	if err != nil {
		return err
	}
	s.background(id, trustack.VolumeExtending, func(v *trustack.Volume) { v.Size = before })
	return nil
}

// Retype gives a volume that is available or in use another type (its
// ID or name) whose backend is the volume's own, so that nothing moves:
// EINVALID (InvalidInput) for a type of another backend, since trustack
// does not migrate volumes, whatever the policy asks.
func (s *Service) Retype(ctx context.Context, c Caller, id, typeRef string) error {
	vt, err := s.Type(ctx, c, typeRef)
	if err != nil {
		return err
	}
	return s.transition(ctx, c, id, func(v *trustack.Volume) error {
		if v.Status != trustack.VolumeAvailable && v.Status != trustack.VolumeInUse {
			return trustack.Reasonf(trustack.EINVALID, "InvalidVolume", "Invalid volume: Volume %s status must be available or in-use to retype, but current status is: %s.", id, v.Status)
		}
		if v.TypeID == vt.ID {
			return trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Invalid input received: volume %s is of type %s already.", id, vt.Name)
		}
		if want := vt.ExtraSpecs["volume_backend_name"]; want != "" {
			if _, backend := hostAndBackend(v); backend != want {
				return trustack.Reasonf(trustack.EINVALID, "InvalidInput",
					"Invalid input received: type %s keeps its volumes on backend %s, and volume %s is on %s; trustack does not migrate volumes between backends.", vt.Name, want, id, backend)
			}
		}
		v.TypeID = vt.ID
		return nil
	})
}

// Recover takes up what was going on when the service last stopped: the
// volumes left creating, extending, uploading or deleting are made,
// grown, uploaded or deleted again, the snapshots left creating or
// deleting taken or deleted again (each idempotent on their storage
// hosts), the volumes left reverting reverted again (which their storage
// hosts may do twice), and the snapshots left restoring whose volumes
// were reverted made available. A volume whose growth fails now keeps the
// size asked for, its former one unknown.
//
// Among several controllers (Options.Controllers), it takes up only the
// operations this controller started, leaves those of live controllers,
// and takes over those of controllers whose leases expired; then, until
// ctx ends, it looks for those every TakeoverInterval (Wait waits for
// that to end). Call it once, before serving requests.
func (s *Service) Recover(ctx context.Context) error {
	if err := s.recover(ctx, true); err != nil {
		return fmt.Errorf("recover volume operations in progress: %w", err)
	}
	if s.opts.Controllers != nil {
		s.running.Go(func() { s.takeOverLoop(ctx) })
	}
	return nil
}
