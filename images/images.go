// Package images is trustack's Glance: it registers images, keeps their
// data in a DataStore (files in a directory, or objects in the object
// store), and enforces Glance's rules on both: the status machine
// (queued, saving, active or killed, deactivated, deleted), who sees an
// image (its owner, everyone for public and community images, the
// members of a shared one) and who may change it (its owner and admins),
// protected images, disk and container formats, reserved attributes,
// tags, properties and members, and their quotas. The wire format lives in
// api/openstack/image, which asks the policy engine before calling here;
// the records live in a Store.
package images

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/trustack/trustack"
)

// Store keeps image records. Lookups of missing things give ENOTFOUND;
// duplicates and dangling references give ECONFLICT. Each Update method
// reads a thing, lets fn change it and writes it back in one
// transaction; fn may read through the Store but must not write through
// it.
type Store interface {
	CreateImage(ctx context.Context, img *trustack.Image) error
	Image(ctx context.Context, id string) (*trustack.Image, error)
	Images(ctx context.Context, f trustack.ImageFilter) ([]*trustack.Image, error)
	UpdateImage(ctx context.Context, id string, fn func(*trustack.Image) error) (*trustack.Image, error)
	DeleteImage(ctx context.Context, id string) error

	CreateImageMember(ctx context.Context, m *trustack.ImageMember) error
	ImageMember(ctx context.Context, imageID, memberID string) (*trustack.ImageMember, error)
	ImageMembers(ctx context.Context, imageID string) ([]*trustack.ImageMember, error)
	UpdateImageMember(ctx context.Context, imageID, memberID string, fn func(*trustack.ImageMember) error) (*trustack.ImageMember, error)
	DeleteImageMember(ctx context.Context, imageID, memberID string) error
}

// Glance's default quotas: image_property_quota, image_tag_quota and
// image_member_quota.
const (
	MaxProperties = 128
	MaxTags       = 128
	MaxMembers    = 128
)

// DefaultSizeCap is Glance's image_size_cap: 1 TiB.
const DefaultSizeCap = 1 << 40

// ErrLimitExceeded is in the chain of errors for data over the size cap,
// a full disk, or more properties, tags or members than allowed: the
// requests Glance answers with 413.
var ErrLimitExceeded = errors.New("limit exceeded")

func limitExceeded(format string, args ...any) error {
	return fmt.Errorf("%w%w", trustack.Errorf(trustack.EOVERQUOTA, format, args...), ErrLimitExceeded)
}

// Options tune a Service; zero values take the defaults.
type Options struct {
	// SizeCap bounds the data of one image, in bytes (default
	// DefaultSizeCap).
	SizeCap int64
	// Now returns the current time (default time.Now).
	Now func() time.Time
	// NewID returns a new image ID (default NewID).
	NewID func() string
}

// Service is the image service. It is safe for concurrent use.
type Service struct {
	store Store
	data  DataStore
	opts  Options
}

// New returns a Service over store that keeps image data in data.
// Controllers sharing a database must share the data store too.
func New(store Store, data DataStore, opts Options) *Service {
	if opts.SizeCap <= 0 {
		opts.SizeCap = DefaultSizeCap
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.NewID == nil {
		opts.NewID = NewID
	}
	return &Service{store: store, data: data, opts: opts}
}

// NewID returns a random UUID (version 4) in its canonical form with
// dashes, as Glance's image IDs.
func NewID() string { return uuid.NewString() }

var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// Caller is who asks: the project of the token and whether it is an
// admin (Glance's context_is_admin), who sees and may change every image.
type Caller struct {
	ProjectID string
	Admin     bool
}

// owns reports whether the caller may change img.
func (c Caller) owns(img *trustack.Image) bool {
	return c.Admin || c.ProjectID != "" && img.Owner == c.ProjectID
}

// check refuses callers that are neither admins nor in a project: images
// belong to projects.
func (c Caller) check() error {
	if !c.Admin && c.ProjectID == "" {
		return trustack.Errorf(trustack.EFORBIDDEN, "A token scoped to a project is required.")
	}
	return nil
}

// SizeCap returns the largest image data accepted, in bytes.
func (s *Service) SizeCap() int64 { return s.opts.SizeCap }

func (s *Service) now() time.Time { return s.opts.Now().UTC().Truncate(time.Microsecond) }

func notFound(id string) error {
	return trustack.Errorf(trustack.ENOTFOUND, "No image found with ID %s.", id)
}

// visible reports whether the caller may see img: admins see every
// image, everyone sees public and community ones, a project its own, and
// the members of a shared image (pending, accepted or rejected) see it.
func (s *Service) visible(ctx context.Context, c Caller, img *trustack.Image) (bool, error) {
	switch {
	case img.Status == trustack.ImageDeleted:
		return false, nil
	case c.Admin, img.Visibility == trustack.VisibilityPublic, img.Visibility == trustack.VisibilityCommunity, img.Owner == c.ProjectID:
		return true, nil
	case img.Visibility == trustack.VisibilityShared:
		_, err := s.store.ImageMember(ctx, img.ID, c.ProjectID)
		if trustack.ErrorCode(err) == trustack.ENOTFOUND {
			return false, nil
		}
		return err == nil, err
	}
	return false, nil
}

// Image returns the image if the caller may see it, and ENOTFOUND if not.
func (s *Service) Image(ctx context.Context, c Caller, id string) (*trustack.Image, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	img, err := s.store.Image(ctx, id)
	if trustack.ErrorCode(err) == trustack.ENOTFOUND {
		return nil, notFound(id)
	} else if err != nil {
		return nil, err
	}
	if ok, err := s.visible(ctx, c, img); err != nil {
		return nil, err
	} else if !ok {
		return nil, notFound(id)
	}
	return img, nil
}

// IsMember reports whether the caller's project is a member of the image,
// whatever the status of its membership.
func (s *Service) IsMember(ctx context.Context, c Caller, imageID string) (bool, error) {
	_, err := s.store.ImageMember(ctx, imageID, c.ProjectID)
	if trustack.ErrorCode(err) == trustack.ENOTFOUND {
		return false, nil
	}
	return err == nil, err
}

// Images lists the images the caller may see that match f, as Glance
// lists them: killed images never, hidden ones only when f.Hidden asks,
// community images of other projects only when f.Visibility is
// community, shared images of other projects when the caller's membership
// has f.MemberStatus (default accepted; "all" for any). A visibility of
// "all" lifts the visibility filter.
func (s *Service) Images(ctx context.Context, c Caller, f trustack.ImageFilter) ([]*trustack.Image, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	f.ExcludeKilled = true
	if f.MemberStatus == "" {
		f.MemberStatus = trustack.MemberAccepted
	}
	if !c.Admin {
		f.Viewer = c.ProjectID
	}
	switch f.Visibility {
	case "":
		f.HideCommunity, f.CommunityOwner = true, c.ProjectID
	case "all":
		f.Visibility = ""
	}
	if f.Hidden == nil {
		f.Hidden = new(bool)
	}
	return s.store.Images(ctx, f)
}

// Create registers an image, queued until its data is uploaded. It gets
// an ID unless it has one (which must be a UUID), the caller's project as
// owner unless it names one (only admins may name another), and shared
// visibility unless it has one.
func (s *Service) Create(ctx context.Context, c Caller, img *trustack.Image) error {
	if err := c.check(); err != nil {
		return err
	}
	if img.Owner == "" {
		img.Owner = c.ProjectID
	}
	if !c.Admin && img.Owner != c.ProjectID {
		return trustack.Errorf(trustack.EFORBIDDEN, "You are not permitted to create images owned by '%s'.", img.Owner)
	}
	if img.ID == "" {
		img.ID = s.opts.NewID()
	} else if !uuidPattern.MatchString(img.ID) {
		return trustack.Errorf(trustack.EINVALID, "Invalid input for field 'id': %q is not a UUID.", img.ID)
	}
	if img.Visibility == "" {
		img.Visibility = trustack.VisibilityShared
	}
	img.Status = trustack.ImageQueued
	img.Size, img.VirtualSize, img.Checksum, img.HashAlgo, img.HashValue = 0, 0, "", "", ""
	img.CreatedAt = s.now()
	img.UpdatedAt = img.CreatedAt
	img.Tags = normalTags(img.Tags)
	if err := validate(img); err != nil {
		return err
	}
	err := s.store.CreateImage(ctx, img)
	if trustack.ErrorCode(err) == trustack.ECONFLICT {
		return trustack.Errorf(trustack.ECONFLICT, "Image with identifier %s already exists!", img.ID)
	}
	return err
}

// normalTags returns the tags without duplicates, sorted: Glance's tags
// are a set.
func normalTags(tags []string) []string {
	if len(tags) == 0 {
		return nil
	}
	out := slices.Clone(tags)
	slices.Sort(out)
	return slices.Compact(out)
}

// reserved are attribute names that are not properties and cannot be set.
var reserved = map[string]bool{
	"location": true, "locations": true, "deleted": true, "deleted_at": true, "direct_url": true,
	"self": true, "file": true, "schema": true, "stores": true,
}

// IsReserved reports whether name may not be a property: Glance reserves
// some names, and the os_glance namespace.
func IsReserved(name string) bool {
	return reserved[name] || strings.HasPrefix(name, "os_glance")
}

// validate checks an image's attributes against Glance's schema and
// quotas.
func validate(img *trustack.Image) error {
	if utf8.RuneCountInString(img.Name) > 255 {
		return trustack.Errorf(trustack.EINVALID, "Invalid input for field 'name': at most 255 characters are allowed.")
	}
	switch img.Visibility {
	case trustack.VisibilityPublic, trustack.VisibilityPrivate, trustack.VisibilityShared, trustack.VisibilityCommunity:
	default:
		return trustack.Errorf(trustack.EINVALID, "Invalid input for field 'visibility': %q is not one of community, public, private, shared.", img.Visibility)
	}
	if img.DiskFormat != "" && !slices.Contains(trustack.DiskFormats, img.DiskFormat) {
		return trustack.Errorf(trustack.EINVALID, "Invalid input for field 'disk_format': %q is not one of %s.", img.DiskFormat, strings.Join(trustack.DiskFormats, ", "))
	}
	if img.ContainerFormat != "" && !slices.Contains(trustack.ContainerFormats, img.ContainerFormat) {
		return trustack.Errorf(trustack.EINVALID, "Invalid input for field 'container_format': %q is not one of %s.", img.ContainerFormat, strings.Join(trustack.ContainerFormats, ", "))
	}
	if img.MinDisk < 0 || img.MinRAM < 0 {
		return trustack.Errorf(trustack.EINVALID, "Invalid input for fields 'min_disk' and 'min_ram': they cannot be negative.")
	}
	if len(img.Tags) > MaxTags {
		return limitExceeded("Maximum number of tags exceeded: at most %d are allowed.", MaxTags)
	}
	for _, t := range img.Tags {
		if err := checkTag(t); err != nil {
			return err
		}
	}
	if len(img.Properties) > MaxProperties {
		return limitExceeded("Maximum number of properties exceeded: at most %d are allowed.", MaxProperties)
	}
	for k, v := range img.Properties {
		switch {
		case k == "" || utf8.RuneCountInString(k) > 255:
			return trustack.Errorf(trustack.EINVALID, "Property names must have 1 to 255 characters.")
		case IsReserved(k):
			return trustack.Errorf(trustack.EFORBIDDEN, "Attribute '%s' is reserved.", k)
		case len(v) > 65535:
			return trustack.Errorf(trustack.EINVALID, "Invalid input for property '%s': at most 65535 bytes are allowed.", k)
		}
	}
	return nil
}

func checkTag(t string) error {
	if n := utf8.RuneCountInString(t); n == 0 || n > 255 {
		return trustack.Errorf(trustack.EINVALID, "Invalid input for field 'tags': tags must have 1 to 255 characters.")
	}
	return nil
}

// mutable returns the image if the caller may see it (ENOTFOUND if not)
// and change it (EFORBIDDEN if not).
func (s *Service) mutable(ctx context.Context, c Caller, id string) (*trustack.Image, error) {
	img, err := s.Image(ctx, c, id)
	if err != nil {
		return nil, err
	}
	if !c.owns(img) {
		return nil, trustack.Errorf(trustack.EFORBIDDEN, "You do not own this image.")
	}
	return img, nil
}

// Update changes an image the caller owns. fn may change the name,
// visibility, protection, hiding, formats (only while the image is
// queued), minimums, properties and tags; the owner only for admins; the
// status, data attributes and times never.
func (s *Service) Update(ctx context.Context, c Caller, id string, fn func(*trustack.Image) error) (*trustack.Image, error) {
	if _, err := s.mutable(ctx, c, id); err != nil {
		return nil, err
	}
	return s.store.UpdateImage(ctx, id, func(img *trustack.Image) error {
		if img.Status == trustack.ImageDeleted {
			return notFound(id)
		}
		before := *img
		before.Properties = maps.Clone(img.Properties)
		before.Tags = slices.Clone(img.Tags)
		if err := fn(img); err != nil {
			return err
		}
		if err := checkChange(c, &before, img); err != nil {
			return err
		}
		img.Tags = normalTags(img.Tags)
		if len(img.Properties) == 0 {
			img.Properties = nil
		}
		img.UpdatedAt = s.now()
		return validate(img)
	})
}

// checkChange refuses changes to what users may not change.
func checkChange(c Caller, before, after *trustack.Image) error {
	for _, ro := range []struct {
		name    string
		changed bool
	}{
		{"id", before.ID != after.ID},
		{"status", before.Status != after.Status},
		{"size", before.Size != after.Size},
		{"virtual_size", before.VirtualSize != after.VirtualSize},
		{"checksum", before.Checksum != after.Checksum},
		{"os_hash_algo", before.HashAlgo != after.HashAlgo},
		{"os_hash_value", before.HashValue != after.HashValue},
		{"created_at", !before.CreatedAt.Equal(after.CreatedAt)},
		{"updated_at", !before.UpdatedAt.Equal(after.UpdatedAt)},
	} {
		if ro.changed {
			return trustack.Errorf(trustack.EFORBIDDEN, "Attribute '%s' is read-only.", ro.name)
		}
	}
	if after.Owner != before.Owner && !c.Admin {
		return trustack.Errorf(trustack.EFORBIDDEN, "Owner can't be updated by non admin.")
	}
	if before.Status != trustack.ImageQueued {
		if after.DiskFormat != before.DiskFormat {
			return trustack.Errorf(trustack.EFORBIDDEN, "Attribute disk_format can be only replaced for a queued image.")
		}
		if after.ContainerFormat != before.ContainerFormat {
			return trustack.Errorf(trustack.EFORBIDDEN, "Attribute container_format can be only replaced for a queued image.")
		}
	}
	return nil
}

// AddTag tags an image the caller owns; a tag it has already is no
// change.
func (s *Service) AddTag(ctx context.Context, c Caller, id, tag string) error {
	if err := checkTag(tag); err != nil {
		return err
	}
	_, err := s.Update(ctx, c, id, func(img *trustack.Image) error {
		if !slices.Contains(img.Tags, tag) {
			img.Tags = append(img.Tags, tag)
		}
		return nil
	})
	return err
}

// DeleteTag removes a tag from an image the caller owns; ENOTFOUND if it
// has no such tag.
func (s *Service) DeleteTag(ctx context.Context, c Caller, id, tag string) error {
	_, err := s.Update(ctx, c, id, func(img *trustack.Image) error {
		i := slices.Index(img.Tags, tag)
		if i < 0 {
			return trustack.Errorf(trustack.ENOTFOUND, "Tag %s not found on image %s.", tag, id)
		}
		img.Tags = slices.Delete(img.Tags, i, i+1)
		return nil
	})
	return err
}

// Delete deletes an image the caller owns, with its data; a protected
// image gives EFORBIDDEN. An upload in progress fails rather than
// bringing the image back.
func (s *Service) Delete(ctx context.Context, c Caller, id string) error {
	if _, err := s.mutable(ctx, c, id); err != nil {
		return err
	}
	// Mark it deleted first, atomically with the protection check, so
	// that an upload finishing meanwhile finds it gone.
	_, err := s.store.UpdateImage(ctx, id, func(img *trustack.Image) error {
		switch {
		case img.Status == trustack.ImageDeleted:
			return notFound(id)
		case img.Protected:
			return trustack.Errorf(trustack.EFORBIDDEN, "Image %s is protected and cannot be deleted.", id)
		}
		img.Status = trustack.ImageDeleted
		img.UpdatedAt = s.now()
		return nil
	})
	if err != nil {
		return err
	}
	if err := s.store.DeleteImage(ctx, id); err != nil {
		return err
	}
	// The record is gone: its data must go too, client there or not.
	return s.data.remove(context.WithoutCancel(ctx), id)
}

// Deactivate makes an active image the caller owns unavailable for
// download (admins still may download it); a deactivated image stays so.
func (s *Service) Deactivate(ctx context.Context, c Caller, id string) error {
	return s.setActivation(ctx, c, id, trustack.ImageActive, trustack.ImageDeactivated, "deactivate")
}

// Reactivate makes a deactivated image the caller owns active again; an
// active image stays so.
func (s *Service) Reactivate(ctx context.Context, c Caller, id string) error {
	return s.setActivation(ctx, c, id, trustack.ImageDeactivated, trustack.ImageActive, "reactivate")
}

func (s *Service) setActivation(ctx context.Context, c Caller, id, from, to, verb string) error {
	if _, err := s.mutable(ctx, c, id); err != nil {
		return err
	}
	_, err := s.store.UpdateImage(ctx, id, func(img *trustack.Image) error {
		switch img.Status {
		case to:
			return nil
		case from:
			img.Status = to
			img.UpdatedAt = s.now()
			return nil
		case trustack.ImageDeleted:
			return notFound(id)
		}
		return trustack.Errorf(trustack.EFORBIDDEN, "Not allowed to %s image in status '%s'.", verb, img.Status)
	})
	return err
}
