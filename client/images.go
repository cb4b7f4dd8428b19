package client

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"slices"

	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/imagedata"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"

	"github.com/trustack/trustack"
)

// ImageUpload is a request to upload a file as a new image.
type ImageUpload struct {
	File string
	Name string
	// DiskFormat and ContainerFormat default to qcow2 and bare.
	DiskFormat      string
	ContainerFormat string
	// Public makes the image visible to every project; otherwise Glance's
	// default (shared) holds.
	Public bool
	// Properties are the image's properties, as KEY=VALUE.
	Properties []string
}

// UploadImage creates an image and streams the file into it, reporting
// progress, then checks that the image's checksum is the file's and shows
// the image. It removes the image if the upload fails. It returns
// EINVALID for a file it cannot read, and the image API's refusals.
func (c *Client) UploadImage(ctx context.Context, req ImageUpload) error {
	props, err := keyValues("--property", req.Properties)
	if err != nil {
		return err
	}
	f, err := os.Open(req.File)
	if err != nil {
		return trustack.Errorf(trustack.EINVALID, "image upload: %v", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return trustack.Errorf(trustack.EINVALID, "image upload: %v", err)
	}
	if !info.Mode().IsRegular() {
		return trustack.Errorf(trustack.EINVALID, "image upload: %s is not a regular file", req.File)
	}
	opts := images.CreateOpts{Name: req.Name, DiskFormat: or(req.DiskFormat, "qcow2"), ContainerFormat: or(req.ContainerFormat, "bare"), Properties: last(props)}
	if req.Public {
		v := images.ImageVisibilityPublic
		opts.Visibility = &v
	}
	img, err := images.Create(ctx, c.image, opts).Extract()
	if err != nil {
		return apiError(err)
	}
	sum := md5.New()
	p := c.progress("uploaded", info.Size())
	// The reader is not an io.Seeker, so net/http sends it chunked, as it
	// reads it: the file is never in memory whole.
	err = imagedata.Upload(ctx, c.image, img.ID, io.TeeReader(f, io.MultiWriter(sum, p))).ExtractErr()
	if err != nil {
		err = fmt.Errorf("upload %s into image %s: %w", req.File, img.ID, apiError(err))
		if derr := images.Delete(context.WithoutCancel(ctx), c.image, img.ID).ExtractErr(); derr != nil {
			err = errors.Join(err, fmt.Errorf("remove image %s: %w", img.ID, apiError(derr)))
		}
		return err
	}
	p.finish()
	if img, err = images.Get(ctx, c.image, img.ID).Extract(); err != nil {
		return apiError(err)
	}
	if err := sameSum(img, sum); err != nil {
		return err
	}
	return c.show(imageRecord(img))
}

// sameSum checks that an image's checksum is the MD5 digest of the bytes
// sent or received.
func sameSum(img *images.Image, sum hash.Hash) error {
	if got := hex.EncodeToString(sum.Sum(nil)); img.Checksum != "" && img.Checksum != got {
		return trustack.Errorf(trustack.EINTERNAL, "image %s has checksum %s, but the data transferred has %s", img.ID, img.Checksum, got)
	}
	return nil
}

// findImage returns the image ref names, by ID or else by name.
func (c *Client) findImage(ctx context.Context, ref string) (*images.Image, error) {
	img, err := images.Get(ctx, c.image, ref).Extract()
	if !notFound(err) {
		return img, apiError(err)
	}
	page, err := images.List(c.image, images.ListOpts{Name: ref}).AllPages(ctx)
	if err != nil {
		return nil, apiError(err)
	}
	list, err := images.ExtractImages(page)
	if err != nil {
		return nil, fmt.Errorf("read images: %w", err)
	}
	return pick("image", ref, list)
}

// ShowImage shows the image named (or with the ID) ref.
func (c *Client) ShowImage(ctx context.Context, ref string) error {
	img, err := c.findImage(ctx, ref)
	if err != nil {
		return err
	}
	return c.show(imageRecord(img))
}

// baseAttributes are the attributes of Glance's images that are not
// properties, beyond those gophercloud's Image has.
var baseAttributes = []string{"os_hash_algo", "os_hash_value", "direct_url", "locations", "stores"}

// imageRecord is what `image show` shows.
func imageRecord(img *images.Image) record {
	props := map[string]string{}
	for k, v := range img.Properties {
		if slices.Contains(baseAttributes, k) {
			continue
		}
		if s, ok := v.(string); ok {
			props[k] = s
		} else {
			b, _ := json.Marshal(v)
			props[k] = string(b)
		}
	}
	var size any
	if img.Status != images.ImageStatusQueued {
		size = img.SizeBytes
	}
	tags := img.Tags
	if tags == nil {
		tags = []string{}
	}
	return record{
		{"id", img.ID},
		{"name", img.Name},
		{"status", string(img.Status)},
		{"size", size},
		{"checksum", nullable(img.Checksum)},
		{"disk_format", img.DiskFormat},
		{"container_format", img.ContainerFormat},
		{"visibility", string(img.Visibility)},
		{"protected", img.Protected},
		{"min_disk", img.MinDiskGigabytes},
		{"min_ram", img.MinRAMMegabytes},
		{"owner", img.Owner},
		{"tags", tags},
		{"properties", props},
		{"created_at", stamp(img.CreatedAt)},
		{"updated_at", stamp(img.UpdatedAt)},
	}
}

// listImages returns the images the project sees.
func (c *Client) listImages(ctx context.Context) ([]images.Image, error) {
	page, err := images.List(c.image, images.ListOpts{}).AllPages(ctx)
	if err != nil {
		return nil, apiError(err)
	}
	list, err := images.ExtractImages(page)
	if err != nil {
		return nil, fmt.Errorf("read images: %w", err)
	}
	return list, nil
}

// ListImages lists the images the project sees.
func (c *Client) ListImages(ctx context.Context) error {
	list, err := c.listImages(ctx)
	if err != nil {
		return err
	}
	t := &table{columns: []string{"ID", "Name", "Status", "Size", "Visibility"}}
	for _, img := range list {
		t.add(img.ID, img.Name, string(img.Status), img.SizeBytes, string(img.Visibility))
	}
	return c.list(t)
}

// imageNames maps the IDs of the images the project sees to their names.
func (c *Client) imageNames(ctx context.Context) (map[string]string, error) {
	list, err := c.listImages(ctx)
	if err != nil {
		return nil, err
	}
	names := make(map[string]string, len(list))
	for _, img := range list {
		names[img.ID] = img.Name
	}
	return names, nil
}

// DeleteImages deletes the images refs name. It tries every image and
// returns the errors of those it could not delete.
func (c *Client) DeleteImages(ctx context.Context, refs []string) error {
	return eachOf("delete image", refs, func(ref string) error {
		img, err := c.findImage(ctx, ref)
		if err != nil {
			return err
		}
		return apiError(images.Delete(ctx, c.image, img.ID).ExtractErr())
	})
}

// DownloadImage writes the data of the image ref names to the file at
// path ("-" for Out), and checks it against the image's checksum. It
// removes the file if the download fails.
func (c *Client) DownloadImage(ctx context.Context, ref, path string) (err error) {
	img, err := c.findImage(ctx, ref)
	if err != nil {
		return err
	}
	if img.Status != images.ImageStatusActive {
		return trustack.Errorf(trustack.ECONFLICT, "image %s is %s: only an active image has data to download", ref, img.Status)
	}
	data, err := imagedata.Download(ctx, c.image, img.ID).Extract()
	if err != nil {
		return apiError(err)
	}
	defer data.Close()
	out, done, err := c.downloadTo(path)
	if err != nil {
		return err
	}
	defer done(&err)
	sum := md5.New()
	if _, err := io.Copy(io.MultiWriter(out, sum), data); err != nil {
		return fmt.Errorf("download image %s: %w", img.ID, err)
	}
	return sameSum(img, sum)
}

// downloadTo opens the file at path for a download ("-": Out instead),
// and returns the function to defer with the download's result, which
// closes the file and removes it if the download failed.
func (c *Client) downloadTo(path string) (io.Writer, func(*error), error) {
	if path == "-" {
		return c.out.Out, func(*error) {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, nil, trustack.Errorf(trustack.EINVALID, "download: %v", err)
	}
	return f, func(result *error) {
		if err := f.Close(); *result == nil {
			*result = err
		}
		if *result != nil {
			os.Remove(path)
		}
	}, nil
}
