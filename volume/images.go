package volume

import (
	"context"
	"maps"
	"strconv"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/wire"
)

// Volumes made from images: the image's data converted into the volume
// by its storage host, which downloads it from the image service.

const gib = 1 << 30

// image returns the image a volume is made from, if the caller's project
// may use it and the volume holds it (of its size if r.Size is 0).
func (s *Service) image(ctx context.Context, c Caller, r *CreateRequest) (*trustack.Image, error) {
	if s.opts.Images == nil {
		return nil, trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Invalid input received: this cloud makes no volumes from images.")
	}
	img, err := s.opts.Images.BootImage(ctx, c.ProjectID, r.ImageID)
	if trustack.ErrorCode(err) == trustack.ENOTFOUND {
		return nil, trustack.Reasonf(trustack.ENOTFOUND, "ImageNotFound", "Image %s could not be found.", r.ImageID)
	}
	if err != nil {
		return nil, err
	}
	need := max(int((img.Size+gib-1)/gib), img.MinDisk, 1)
	if r.Size == 0 {
		r.Size = need
	}
	if r.Size < need {
		return nil, trustack.Reasonf(trustack.EINVALID, "InvalidInput",
			"Invalid input received: Image %s needs a volume of at least %d GiB (its size, %d bytes, and its min_disk, %d GiB), not %d.", img.ID, need, img.Size, img.MinDisk, r.Size)
	}
	return img, nil
}

// imageMetadata is what a volume made from an image keeps of it (Cinder's
// volume_image_metadata): its properties, and what describes its data.
func imageMetadata(img *trustack.Image) map[string]string {
	md := maps.Clone(img.Properties)
	if md == nil {
		md = map[string]string{}
	}
	md["image_id"], md["image_name"] = img.ID, img.Name
	md["disk_format"], md["container_format"] = img.DiskFormat, img.ContainerFormat
	md["checksum"], md["size"] = img.Checksum, strconv.FormatInt(img.Size, 10)
	md["min_disk"], md["min_ram"] = strconv.Itoa(img.MinDisk), strconv.Itoa(img.MinRAM)
	return md
}

// imageRef describes a volume's image to its storage host, with a token
// of the volume's user to download it.
func (s *Service) imageRef(ctx context.Context, v *trustack.Volume) (wire.ImageRef, string, error) {
	if s.opts.Images == nil {
		return wire.ImageRef{}, "", trustack.Errorf(trustack.EINVALID, "this cloud makes no volumes from images")
	}
	img, err := s.opts.Images.BootImage(ctx, v.ProjectID, v.ImageID)
	if err != nil {
		return wire.ImageRef{}, "", err
	}
	token := ""
	if s.opts.ImageTokens != nil {
		if token, err = s.opts.ImageTokens.IssueToken(ctx, v.UserID, v.ProjectID); err != nil {
			return wire.ImageRef{}, "", err
		}
	}
	return wire.NewImageRef(img, s.opts.ImageURL), token, nil
}

var _ wire.VolumeController = (*Service)(nil)

// ImageCopied records how much of its image the storage host of a volume
// being made from one reports it has copied. ENOTFOUND (VolumeNotFound)
// for a missing volume, EFORBIDDEN for a report from another host than
// the volume's, ECONFLICT for a volume not being made from an image (a
// report that comes after the volume is made changes nothing), EINVALID
// for a count below 0.
func (s *Service) ImageCopied(ctx context.Context, e wire.ImageCopied) error {
	if e.Bytes < 0 {
		return trustack.Errorf(trustack.EINVALID, "host %s copied %d bytes of the image of volume %s: a count is at least 0", e.Host, e.Bytes, e.VolumeID)
	}
	_, err := s.store.UpdateVolume(ctx, e.VolumeID, nil, func(v *trustack.Volume) error {
		if host, _ := hostAndBackend(v); host != e.Host {
			return trustack.Errorf(trustack.EFORBIDDEN, "host %s reports the copy of the image of volume %s, which is on %q", e.Host, v.ID, host)
		}
		if v.Status != trustack.VolumeCreating || v.ImageID == "" {
			return trustack.Errorf(trustack.ECONFLICT, "volume %s is %s, not being made from an image", v.ID, v.Status)
		}
		v.ImageBytesCopied = e.Bytes
		return nil
	})
	return err
}
