package volume

import (
	"net/http"

	"github.com/trustack/trustack"
)

// showImageCopy serves trustack's GET /volumes/{id}/os-trustack-image-copy:
// how many bytes of its image the storage host of a volume made from one
// has copied, as the host last reported, for a client to draw the copy.
// It is a resource of its own rather than an attribute of the volume,
// since Tempest's schemas allow a volume no attribute beyond Cinder's.
// 404 for a volume not made from an image.
func (h *handler) showImageCopy(w http.ResponseWriter, r *http.Request) error {
	_, v, err := h.volume(r, "volume:get")
	if err != nil {
		return err
	}
	if v.ImageID == "" {
		return trustack.Errorf(trustack.ENOTFOUND, "Volume %s was not made from an image.", v.ID)
	}
	return reply(w, http.StatusOK, object{"image_copy": object{
		"volume_id": v.ID, "image_id": v.ImageID, "status": v.Status, "bytes_copied": v.ImageBytesCopied,
	}})
}
