package compute

import (
	"net/http"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/api/openstack"
	"github.com/trustack/trustack/images"
)

// The image proxy Nova keeps at 2.1: images as the compute API showed
// them before Glance's own API, authorized by the image service.

func (h *handler) imageCaller(r *http.Request) (images.Caller, error) {
	c, err := h.caller(r)
	return images.Caller{ProjectID: c.ProjectID, Admin: c.Admin}, err
}

func (h *handler) listImages(detail bool) openstack.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		c, err := h.imageCaller(r)
		if err != nil {
			return err
		}
		q := r.URL.Query()
		list, err := h.images.Images(r.Context(), c, trustack.ImageFilter{Name: q.Get("name"), Status: q.Get("status")})
		if err != nil {
			return err
		}
		if list, err = page(list, q.Get("marker"), q.Get("limit"), func(i *trustack.Image) string { return i.ID }); err != nil {
			return err
		}
		out := make([]object, len(list))
		for i, img := range list {
			out[i] = h.image(img, detail)
		}
		return collection(w, "images", out)
	}
}

func (h *handler) showImage(w http.ResponseWriter, r *http.Request) error {
	c, err := h.imageCaller(r)
	if err != nil {
		return err
	}
	img, err := h.images.Image(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return trustack.Errorf(trustack.ENOTFOUND, "Image not found.")
	}
	return ok(w, object{"image": h.image(img, true)})
}

func (h *handler) deleteImage(w http.ResponseWriter, r *http.Request) error {
	c, err := h.imageCaller(r)
	if err != nil {
		return err
	}
	if err := h.images.Delete(r.Context(), c, r.PathValue("id")); err != nil {
		if trustack.ErrorCode(err) == trustack.ENOTFOUND {
			return trustack.Errorf(trustack.ENOTFOUND, "Image not found.")
		}
		return err
	}
	return noContent(w)
}
