package volume

import (
	"cmp"
	"context"
	"maps"
	"slices"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/wire"
)

// ImageMaker makes the images of volumes (images.Service is one): an
// image of a project's, queued for the data a storage host uploads, and
// one whose data will not come, killed. Options.Images offers it, or no
// images are made of volumes.
type ImageMaker interface {
	CreateSnapshot(ctx context.Context, projectID string, img *trustack.Image) error
	SnapshotFailed(ctx context.Context, imageID string) error
}

// UploadRequest is an image to make of a volume's data, as Cinder's
// os-volume_upload_image asks: its name, disk format (default raw),
// container format (default bare), visibility (default private) and
// whether it is protected. Force asks to upload a volume in use, which
// trustack refuses, as Cinder does unless enable_force_upload is set.
type UploadRequest struct {
	ImageName, DiskFormat, ContainerFormat, Visibility string
	Protected, Force                                   bool
}

// uploadDiskFormats are the disk formats images of volumes are made in.
var uploadDiskFormats = []string{"raw", "qcow2", "vmdk", "vdi", "vhd", "vhdx"}

// Administrative metadata of a volume: the image it is (or was last)
// uploaded as, and in which disk format.
const (
	uploadImageKey  = "upload_image_id"
	uploadFormatKey = "upload_disk_format"
)

// UploadImage accepts making an image of an available volume's data: the
// image is made in the volume's project, queued, with the properties of
// the image the volume was made from, and the volume is uploading until
// its storage host has uploaded the data, then available again (and the
// image killed if the upload failed). EINVALID for a volume in another
// status, a disk format images are not made in, or a cloud that makes no
// images of volumes.
func (s *Service) UploadImage(ctx context.Context, c Caller, id string, r UploadRequest) (*trustack.Image, error) {
	maker, ok := s.opts.Images.(ImageMaker)
	if !ok {
		return nil, trustack.Errorf(trustack.EINVALID, "This cloud makes no images of volumes.")
	}
	if r.ImageName == "" {
		return nil, trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Invalid input received: an image needs a name (image_name).")
	}
	r.DiskFormat = cmp.Or(r.DiskFormat, "raw")
	if !slices.Contains(uploadDiskFormats, r.DiskFormat) {
		return nil, trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Invalid disk-format '%s' specified. Allowed disk-formats are %v.", r.DiskFormat, uploadDiskFormats)
	}
	v, err := s.Get(ctx, c, id)
	if err != nil {
		return nil, err
	}
	if err := uploadable(v, r.Force); err != nil {
		return nil, err
	}
	img := &trustack.Image{Name: r.ImageName, DiskFormat: r.DiskFormat, ContainerFormat: cmp.Or(r.ContainerFormat, "bare"),
		Visibility: cmp.Or(r.Visibility, trustack.VisibilityPrivate), Protected: r.Protected, MinDisk: v.Size, Properties: imageProperties(v)}
	if err := maker.CreateSnapshot(ctx, v.ProjectID, img); err != nil {
		return nil, err
	}
	err = s.transition(ctx, c, id, func(cur *trustack.Volume) error {
		if err := uploadable(cur, r.Force); err != nil {
			return err
		}
		cur.Status = trustack.VolumeUploading
		setAdmin(cur, uploadImageKey, img.ID)
		setAdmin(cur, uploadFormatKey, r.DiskFormat)
		return nil
	})
	if err != nil {
		if kerr := maker.SnapshotFailed(context.WithoutCancel(ctx), img.ID); kerr != nil {
			s.opts.Log.Warn("kill the image of a volume that is not uploaded", "image", img.ID, "error", kerr)
		}
		return nil, err
	}
	s.background(id, trustack.VolumeUploading, nil)
	return img, nil
}

// uploadable refuses to upload a volume that is not available.
func uploadable(v *trustack.Volume, force bool) error {
	switch {
	case v.Status == trustack.VolumeAvailable:
		return nil
	case force && v.Status == trustack.VolumeInUse:
		return trustack.Reasonf(trustack.EINVALID, "InvalidVolume", "Invalid volume: Unable to force upload an in-use volume: detach volume %s first.", v.ID)
	}
	return trustack.Reasonf(trustack.EINVALID, "InvalidVolume", "Invalid volume: Volume %s status must be available, but current status is: %s.", v.ID, v.Status)
}

// imageProperties are the properties of an image made of a volume: those
// of the image the volume was made from, without what described that
// image's data.
func imageProperties(v *trustack.Volume) map[string]string {
	props := maps.Clone(v.ImageMetadata)
	for _, k := range []string{"image_id", "image_name", "disk_format", "container_format", "checksum", "size", "min_disk", "min_ram"} {
		delete(props, k)
	}
	return props
}

// upload has an uploading volume's storage host upload its data as the
// image's, with a token of the volume's user. An image active already
// (an upload a restart cut off after it was done) is done.
func (s *Service) upload(ctx context.Context, host, backend string, v *trustack.Volume) error {
	imageID := v.AdminMetadata[uploadImageKey]
	if s.opts.Images == nil {
		return trustack.Errorf(trustack.EINVALID, "This cloud makes no images of volumes.")
	}
	if _, err := s.opts.Images.BootImage(ctx, v.ProjectID, imageID); err == nil {
		return nil
	}
	upload := wire.Upload{ImageID: imageID, URL: s.opts.ImageURL + "/v2/images/" + imageID + "/file"}
	if s.opts.ImageTokens != nil {
		var err error
		if upload.Token, err = s.opts.ImageTokens.IssueToken(ctx, v.UserID, v.ProjectID); err != nil {
			return err
		}
	}
	return s.storage.UploadVolume(ctx, host, backend, v.ID, upload, v.AdminMetadata[uploadFormatKey])
}

// uploadFailed kills the image a volume's upload failed to fill.
func (s *Service) uploadFailed(ctx context.Context, v *trustack.Volume) {
	maker, ok := s.opts.Images.(ImageMaker)
	if !ok {
		return
	}
	if err := maker.SnapshotFailed(ctx, v.AdminMetadata[uploadImageKey]); err != nil {
		s.opts.Log.Warn("kill the image of a volume whose upload failed", "volume", v.ID, "error", err)
	}
}
