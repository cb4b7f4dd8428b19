package volume

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/api/openstack"
	"github.com/trustack/trustack/volume"
)

// Cinder's attachments API: from microversion 3.27 (os-complete from
// 3.44), as another cloud's Nova attaches volumes; below, /attachments is
// not there (404), as in Cinder.

// Microversions of the attachments API.
const (
	attachmentsVersion = 27 // /attachments
	completeVersion    = 44 // os-complete
)

func (h *handler) attachmentRoutes() {
	a := h.api
	base := v3 + "/attachments"
	a.Private("GET "+base, h.listAttachments(false))
	a.Private("GET "+base+"/detail", h.listAttachments(true))
	a.Private("POST "+base, h.createAttachment)
	a.Private("GET "+base+"/{id}", h.showAttachment)
	a.Private("PUT "+base+"/{id}", h.updateAttachment)
	a.Private("DELETE "+base+"/{id}", h.deleteAttachment)
	a.Private("POST "+base+"/{id}/action", h.attachmentAction)
}

// notThere is Cinder's answer to a method its microversion lacks.
var notThere = trustack.Errorf(trustack.ENOTFOUND, "The resource could not be found.")

// attachmentCaller is caller, for a request at 3.minor or later.
func (h *handler) attachmentCaller(r *http.Request, minor int) (volume.Caller, error) {
	if !atLeast(r, minor) {
		return volume.Caller{}, notThere
	}
	return h.caller(r)
}

// attachmentSortKeys are what attachment lists sort by.
var attachmentSortKeys = map[string]func(a, b *volume.Attachment) int{
	"id":            func(a, b *volume.Attachment) int { return strings.Compare(a.ID, b.ID) },
	"created_at":    func(a, b *volume.Attachment) int { return a.CreatedAt.Compare(b.CreatedAt) },
	"attach_status": func(a, b *volume.Attachment) int { return strings.Compare(a.Status, b.Status) },
	"volume_id":     func(a, b *volume.Attachment) int { return strings.Compare(a.VolumeID, b.VolumeID) },
	"instance_uuid": func(a, b *volume.Attachment) int { return strings.Compare(a.ServerID, b.ServerID) },
}

func (h *handler) listAttachments(detail bool) openstack.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		c, err := h.attachmentCaller(r, attachmentsVersion)
		if err != nil {
			return err
		}
		q, like, err := listQuery(r, "attachment")
		if err != nil {
			return err
		}
		f := volume.AttachmentFilter{ProjectID: c.ProjectID, VolumeID: q.Get("volume_id"), ServerID: q.Get("instance_id"),
			Status: q.Get("status")}
		if f.Status == "" {
			f.Status = q.Get("attach_status")
		}
		if err := h.projectFilter(c, q, &f.ProjectID); err != nil {
			return err
		}
		list, err := h.svc.Attachments(r.Context(), c, f)
		if err != nil {
			return err
		}
		list = slices.DeleteFunc(list, func(a *volume.Attachment) bool {
			return !matchesLike(like, func(key string) string {
				return map[string]string{"volume_id": a.VolumeID, "instance_id": a.ServerID, "status": a.Status, "attach_status": a.Status}[key]
			})
		})
		vs, err := h.views(r)
		if err != nil {
			return err
		}
		return answerList(w, r, vs, "attachments", detail, list, q, attachmentSortKeys, func(a *volume.Attachment) string { return a.ID },
			func(a *volume.Attachment) object {
				if detail {
					return attachmentDetail(a, nil)
				}
				return attachmentSummary(a)
			})
	}
}

func (h *handler) showAttachment(w http.ResponseWriter, r *http.Request) error {
	c, err := h.attachmentCaller(r, attachmentsVersion)
	if err != nil {
		return err
	}
	a, err := h.svc.GetAttachment(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, object{"attachment": attachmentDetail(a, nil)})
}

func (h *handler) createAttachment(w http.ResponseWriter, r *http.Request) error {
	c, err := h.attachmentCaller(r, attachmentsVersion)
	if err != nil {
		return err
	}
	var body map[string]json.RawMessage
	if err := h.decode(r, "attachment", &body); err != nil {
		return err
	}
	var volumeID, serverID string
	var conn *volume.Connector
	for k, raw := range body {
		switch k {
		case "volume_uuid":
			err = uuidField(raw, k, &volumeID)
		case "instance_uuid":
			err = uuidField(raw, k, &serverID)
		case "connector":
			conn, err = connector(raw)
		default:
			err = trustack.Reasonf(trustack.EINVALID, "ValidationError", "Invalid input for field/attribute attachment. Additional properties are not allowed ('%s' was unexpected).", k)
		}
		if err != nil {
			return err
		}
	}
	if volumeID == "" {
		return trustack.Reasonf(trustack.EINVALID, "ValidationError", "Invalid input for field/attribute attachment. 'volume_uuid' is a required property.")
	}
	if serverID == "" {
		return trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Must specify 'instance_uuid' to create attachment.")
	}
	v, err := h.svc.Get(r.Context(), c, volumeID)
	if err != nil {
		return err
	}
	if err := h.authorize(r, "volume:attachment_create", v.ProjectID); err != nil {
		return err
	}
	a, err := h.svc.CreateAttachment(r.Context(), c, v.ID, serverID, conn)
	if err != nil {
		return err
	}
	// Cinder's creation answers {} for a connection it has not made.
	return reply(w, http.StatusOK, object{"attachment": attachmentDetail(a, object{})})
}

func (h *handler) updateAttachment(w http.ResponseWriter, r *http.Request) error {
	c, a, err := h.attachment(r, attachmentsVersion, "volume:attachment_update")
	if err != nil {
		return err
	}
	var body map[string]json.RawMessage
	if err := h.decode(r, "attachment", &body); err != nil {
		return err
	}
	for k := range body {
		if k != "connector" {
			return trustack.Reasonf(trustack.EINVALID, "ValidationError", "Invalid input for field/attribute attachment. Additional properties are not allowed ('%s' was unexpected).", k)
		}
	}
	conn, err := connector(body["connector"])
	if err != nil {
		return err
	}
	if conn == nil {
		return trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Must specify 'connector' to update attachment.")
	}
	a, err = h.svc.ConnectAttachment(r.Context(), c, a.ID, *conn)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, object{"attachment": attachmentDetail(a, nil)})
}

func (h *handler) deleteAttachment(w http.ResponseWriter, r *http.Request) error {
	c, a, err := h.attachment(r, attachmentsVersion, "volume:attachment_delete")
	if err != nil {
		return err
	}
	if err := h.svc.DeleteAttachment(r.Context(), c, a.ID); err != nil {
		return err
	}
	// The attachments left sharing the connection: none, as a volume
	// has one attachment at most.
	return reply(w, http.StatusOK, object{"attachments": []object{}})
}

func (h *handler) attachmentAction(w http.ResponseWriter, r *http.Request) error {
	if !atLeast(r, completeVersion) {
		return notThere
	}
	body, err := h.dec.Body(r)
	if err != nil {
		return err
	}
	var actions map[string]json.RawMessage
	if err := openstack.Unmarshal(body, &actions); err != nil {
		return err
	}
	if _, ok := actions["os-complete"]; !ok || len(actions) != 1 {
		return trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Invalid input received: the one action on an attachment is os-complete.")
	}
	c, a, err := h.attachment(r, completeVersion, "volume:attachment_complete")
	if err != nil {
		return err
	}
	if err := h.svc.CompleteAttachment(r.Context(), c, a.ID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// attachment returns the caller and the attachment the path names, if
// the request is at 3.minor or later and rule lets the caller act on it.
func (h *handler) attachment(r *http.Request, minor int, rule string) (volume.Caller, *volume.Attachment, error) {
	c, err := h.attachmentCaller(r, minor)
	if err != nil {
		return c, nil, err
	}
	a, err := h.svc.GetAttachment(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return c, nil, err
	}
	return c, a, h.authorize(r, rule, a.ProjectID)
}

// uuidField reads a field that is a UUID, as Cinder's schema checks.
func uuidField(raw json.RawMessage, field string, out *string) error {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil || !openstack.IsUUIDHex(s) {
		return trustack.Reasonf(trustack.EINVALID, "ValidationError", "Invalid input for field/attribute %s. Value: %s. It is not a UUID.", field, raw)
	}
	*out = s
	return nil
}

// connector reads a connector, nil for none (absent, null or {}, as
// Cinder takes them).
func connector(raw json.RawMessage) (*volume.Connector, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, trustack.Reasonf(trustack.EINVALID, "ValidationError", "Invalid input for field/attribute connector. Value: %s. It is not of type 'object', 'null'.", raw)
	}
	if len(m) == 0 {
		return nil, nil
	}
	text := func(key string) (string, error) {
		switch v := m[key].(type) {
		case nil:
			return "", nil
		case string:
			return v, nil
		}
		return "", trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Invalid input received: the connector's %s must be a string.", key)
	}
	var c volume.Connector
	var err error
	for key, p := range map[string]*string{"host": &c.Host, "mountpoint": &c.Mountpoint, "mode": &c.Mode} {
		if *p, err = text(key); err != nil {
			return nil, err
		}
	}
	return &c, nil
}

// attachmentSummary is an attachment as Cinder lists it.
func attachmentSummary(a *volume.Attachment) object {
	return object{"id": a.ID, "status": a.Status, "instance": nullIfEmpty(a.ServerID), "volume_id": a.VolumeID}
}

// attachmentDetail is an attachment as Cinder shows it: with its times
// ("" for none), its mode ("null" before it has one, as Cinder's) and
// its connection_info, or none (null for nil).
func attachmentDetail(a *volume.Attachment, none object) object {
	out := attachmentSummary(a)
	out["attached_at"], out["detached_at"] = "", ""
	if !a.AttachedAt.IsZero() {
		out["attached_at"] = stamp(a.AttachedAt)
	}
	out["attach_mode"] = "null"
	if a.Mode != "" {
		out["attach_mode"] = a.Mode
	}
	out["connection_info"] = none
	if ci := a.Connection; ci != nil && ci.Host != "" {
		out["connection_info"] = object{
			"driver_volume_type": "nbd",
			"data": object{"host": ci.Host, "port": ci.Port, "name": ci.Name, "tls_psk_identity": ci.PSKIdentity, "tls_psk_secret": ci.PSKSecret,
				"volume_id": a.VolumeID, "access_mode": a.Mode},
			"attachment_id": a.ID,
		}
	}
	return out
}
