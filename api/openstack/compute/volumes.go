package compute

import (
	"net/http"
	"regexp"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/api/openstack"
)

// os-volume_attachments: a server's volumes, attached and detached
// through the block storage service.

func (h *handler) volumeRoutes(v string) {
	a := h.api
	a.Private("GET "+v+"/servers/{id}/os-volume_attachments", h.listVolumeAttachments)
	a.Private("POST "+v+"/servers/{id}/os-volume_attachments", h.attachVolume)
	a.Private("GET "+v+"/servers/{id}/os-volume_attachments/{volume}", h.showVolumeAttachment)
	a.Private("DELETE "+v+"/servers/{id}/os-volume_attachments/{volume}", h.detachVolume)
}

// volumeAttachment is a volume attached to a server as Nova shows it at
// 2.1: the attachment's ID is the volume's.
func volumeAttachment(v *trustack.Volume) object {
	return object{"id": v.ID, "volumeId": v.ID, "serverId": v.Attachment.ServerID, "device": nullIfEmpty(v.Attachment.Device)}
}

func (h *handler) listVolumeAttachments(w http.ResponseWriter, r *http.Request) error {
	c, s, err := h.serverFor(r, "os_compute_api:os-volumes-attachments:index")
	if err != nil {
		return err
	}
	list, err := h.svc.Volumes(r.Context(), c, s.ID)
	if err != nil {
		return err
	}
	out := make([]object, len(list))
	for i, v := range list {
		out[i] = volumeAttachment(v)
	}
	return collection(w, "volumeAttachments", out)
}

func (h *handler) showVolumeAttachment(w http.ResponseWriter, r *http.Request) error {
	c, s, err := h.serverFor(r, "os_compute_api:os-volumes-attachments:show")
	if err != nil {
		return err
	}
	list, err := h.svc.Volumes(r.Context(), c, s.ID)
	if err != nil {
		return err
	}
	for _, v := range list {
		if v.ID == r.PathValue("volume") {
			return ok(w, object{"volumeAttachment": volumeAttachment(v)})
		}
	}
	return noAttachment(s.ID, r.PathValue("volume"))
}

func noAttachment(server, volume string) error {
	return trustack.Errorf(trustack.ENOTFOUND, "Volume %s is not attached to server %s.", volume, server)
}

// devicePattern is Nova's of a device a client asks for.
var devicePattern = regexp.MustCompile(`^(/dev/x{0,1}[a-z]{0,1}d{0,1})([a-z]+)[0-9]*$`)

func (h *handler) attachVolume(w http.ResponseWriter, r *http.Request) error {
	c, s, err := h.serverFor(r, "os_compute_api:os-volumes-attachments:create")
	if err != nil {
		return err
	}
	var body struct {
		Attachment *struct {
			VolumeID string  `json:"volumeId"`
			Device   *string `json:"device"`
		} `json:"volumeAttachment"`
	}
	if err := h.dec.Decode(r, &body); err != nil {
		return err
	}
	switch {
	case body.Attachment == nil:
		return trustack.Errorf(trustack.EINVALID, "Invalid input for field/attribute volumeAttachment. Value: None. 'volumeAttachment' is a required property")
	case !openstack.IsUUIDHex(body.Attachment.VolumeID):
		return trustack.Errorf(trustack.EINVALID, "Invalid input for field/attribute volumeId. Value: %s. '%s' is not a 'uuid'", body.Attachment.VolumeID, body.Attachment.VolumeID)
	case body.Attachment.Device != nil && !devicePattern.MatchString(*body.Attachment.Device):
		return trustack.Errorf(trustack.EINVALID, "Invalid input for field/attribute device. Value: %s. It is not a device name such as /dev/vdb.", *body.Attachment.Device)
	}
	v, err := h.svc.AttachVolume(r.Context(), c, s.ID, body.Attachment.VolumeID)
	if err != nil {
		return err
	}
	return ok(w, object{"volumeAttachment": volumeAttachment(v)})
}

func (h *handler) detachVolume(w http.ResponseWriter, r *http.Request) error {
	c, s, err := h.serverFor(r, "os_compute_api:os-volumes-attachments:delete")
	if err != nil {
		return err
	}
	if !openstack.IsUUIDHex(r.PathValue("volume")) {
		return noAttachment(s.ID, r.PathValue("volume"))
	}
	if err := h.svc.DetachVolume(r.Context(), c, s.ID, r.PathValue("volume")); err != nil {
		return err
	}
	return accepted(w)
}
