package volume

import (
	"cmp"
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/api/openstack"
	"github.com/trustack/trustack/policy"
	"github.com/trustack/trustack/volume"
)

func (h *handler) volumeRoutes() {
	a := h.api
	base := v3 + "/volumes"
	a.Private("GET "+base, h.listVolumes(false))
	a.Private("GET "+base+"/detail", h.listVolumes(true))
	a.Private("GET "+base+"/summary", h.volumeSummary)
	a.Private("POST "+base, h.createVolume)
	a.Private("GET "+base+"/{id}", h.showVolume)
	a.Private("PUT "+base+"/{id}", h.updateVolume)
	a.Private("DELETE "+base+"/{id}", h.deleteVolume)
	a.Private("POST "+base+"/{id}/action", h.volumeAction)
	a.Private("GET "+base+"/{id}/os-trustack-image-copy", h.showImageCopy)
	h.metadataRoutes(base+"/{id}/metadata", h.volumeMetadata())
}

// views renders volumes as the caller may see them: the names of their
// types, and the attributes of Cinder's extensions its policy shows.
type views struct {
	h        *handler
	r        *http.Request
	types    map[string]string
	base     string // the links' base: ".../volume/v3/{project}"
	bookmark string // ".../volume/{project}"
}

func (h *handler) views(r *http.Request) (*views, error) {
	types, err := h.svc.TypeNames(r.Context())
	if err != nil {
		return nil, err
	}
	project := h.projectOf(r)
	if project != "" {
		project = "/" + project
	}
	base := h.baseURL(r)
	return &views{h: h, r: r, types: types, base: base + v3 + project, bookmark: base + Prefix + project}, nil
}

// links are a volume's self and bookmark links, as Cinder gives them.
func (vs *views) links(id string) []object {
	return []object{
		{"rel": "self", "href": vs.base + "/volumes/" + id},
		{"rel": "bookmark", "href": vs.bookmark + "/volumes/" + id},
	}
}

// summary is a volume in a list without details.
func (vs *views) summary(v *trustack.Volume) object {
	return object{"id": v.ID, "name": v.Name, "links": vs.links(v.ID)}
}

// detail is a volume as Cinder's create and update answer it.
func (vs *views) detail(v *trustack.Volume) object {
	o := object{
		"id": v.ID, "name": v.Name, "description": nullIfEmpty(v.Description), "size": v.Size, "status": v.Status,
		"availability_zone": v.AvailabilityZone, "created_at": stamp(v.CreatedAt), "updated_at": stampOrNull(v.UpdatedAt),
		"attachments": vs.attachments(v), "links": vs.links(v.ID), "user_id": v.UserID,
		"volume_type": nullIfEmpty(vs.types[v.TypeID]), "snapshot_id": nullIfEmpty(v.SnapshotID),
		"source_volid": nullIfEmpty(v.SourceVolumeID), "metadata": visibleMetadata(v),
		"bootable": strconv.FormatBool(v.Bootable), "encrypted": false, "multiattach": false,
		"replication_status": "disabled", "consistencygroup_id": nil,
	}
	admin := vs.h.api.Allowed(vs.r, "context_is_admin", policy.Target{})
	if admin {
		o["migration_status"] = nil
	}
	if atLeast(vs.r, 13) {
		o["group_id"] = nil // trustack has no groups
	}
	if admin && atLeast(vs.r, 21) {
		o["provider_id"] = nil // no backend of trustack's names its volumes otherwise
	}
	return o
}

// attachments are a volume's attachment as Cinder lists them: the
// attachment's own ID in attachment_id and the volume's in id; the
// server's host only to administrators, as everywhere in trustack.
func (vs *views) attachments(v *trustack.Volume) []object {
	a := v.Attachment
	if a.ID == "" || a.Status != trustack.AttachAttached { // Cinder lists attached ones only
		return []object{}
	}
	var host any
	if vs.h.api.Allowed(vs.r, "context_is_admin", policy.Target{}) {
		host = nullIfEmpty(a.Host)
	}
	return []object{{"id": v.ID, "attachment_id": a.ID, "volume_id": v.ID, "server_id": a.ServerID, "host_name": host,
		"device": nullIfEmpty(a.Device), "attached_at": stampOrNull(a.AttachedAt)}}
}

// visibleMetadata is a volume's metadata with the administrative keys
// Cinder shows its owner (readonly, attached_mode).
func visibleMetadata(v *trustack.Volume) map[string]string {
	m := maps.Clone(metadata(v.Metadata))
	for _, k := range []string{"readonly", "attached_mode"} {
		if val, ok := v.AdminMetadata[k]; ok {
			m[k] = val
		}
	}
	return m
}

// extended is detail with what Cinder's extensions add to a volume
// shown or listed in detail, as far as the policy lets the caller see.
func (vs *views) extended(v *trustack.Volume) object {
	o := vs.detail(v)
	target := policy.Target{"project_id": v.ProjectID}
	if vs.h.api.Allowed(vs.r, "volume_extension:volume_tenant_attribute", target) {
		o["os-vol-tenant-attr:tenant_id"] = v.ProjectID
	}
	if vs.h.api.Allowed(vs.r, "volume_extension:volume_host_attribute", target) {
		o["os-vol-host-attr:host"] = nullIfEmpty(v.Host)
	}
	if vs.h.api.Allowed(vs.r, "volume_extension:volume_mig_status_attribute", target) {
		o["os-vol-mig-status-attr:migstat"], o["os-vol-mig-status-attr:name_id"] = nil, nil
	}
	if len(v.ImageMetadata) > 0 && vs.h.api.Allowed(vs.r, "volume_extension:volume_image_metadata:show", target) {
		o["volume_image_metadata"] = metadata(v.ImageMetadata)
	}
	return o
}

// metadata is a map shown as a JSON object, {} for none.
func metadata(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// volume returns the volume of the request's path, after rule.
func (h *handler) volume(r *http.Request, rule string) (volume.Caller, *trustack.Volume, error) {
	return pathResource(h, r, rule, "Volume", h.svc.Get, func(v *trustack.Volume) string { return v.ProjectID })
}

// pathResource returns the resource of a kind ("Volume") that the
// request's path names, as the caller may see it (a name in its ID's
// place is ENOTFOUND, kind+"NotFound", for clients to look it up by
// name), after rule checked against its project.
func pathResource[T any](h *handler, r *http.Request, rule, kind string, get func(context.Context, volume.Caller, string) (*T, error),
	project func(*T) string) (volume.Caller, *T, error) {
	c, err := h.caller(r)
	if err != nil {
		return c, nil, err
	}
	id := r.PathValue("id")
	if !openstack.IsUUIDHex(id) {
		return c, nil, trustack.Reasonf(trustack.ENOTFOUND, kind+"NotFound", "%s %s could not be found.", kind, id)
	}
	x, err := get(r.Context(), c, id)
	if err != nil {
		return c, nil, err
	}
	return c, x, h.authorize(r, rule, project(x))
}

func (h *handler) showVolume(w http.ResponseWriter, r *http.Request) error {
	_, v, err := h.volume(r, "volume:get")
	if err != nil {
		return err
	}
	vs, err := h.views(r)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, object{"volume": vs.extended(v)})
}

// createBody is what a volume create may say; the fields of ways to make
// a volume trustack does not have yet are there to be refused.
type createBody struct {
	Size               json.RawMessage   `json:"size"`
	Name               *string           `json:"name"`
	DisplayName        *string           `json:"display_name"`
	Description        *string           `json:"description"`
	DisplayDescription *string           `json:"display_description"`
	VolumeType         *string           `json:"volume_type"`
	AvailabilityZone   *string           `json:"availability_zone"`
	Metadata           map[string]string `json:"metadata"`
	ImageRef           *string           `json:"imageRef"`
	SnapshotID         *string           `json:"snapshot_id"`
	SourceVolID        *string           `json:"source_volid"`
	BackupID           *string           `json:"backup_id"`
	ConsistencyGroupID *string           `json:"consistencygroup_id"`
	GroupID            *string           `json:"group_id"` // from 3.13
	Multiattach        bool              `json:"multiattach"`
}

func (h *handler) createVolume(w http.ResponseWriter, r *http.Request) error {
	c, err := h.caller(r)
	if err != nil {
		return err
	}
	if err := h.authorize(r, "volume:create", c.ProjectID); err != nil {
		return err
	}
	var b createBody
	if err := h.decode(r, "volume", &b); err != nil {
		return err
	}
	if err := h.checkSource(r, c, b); err != nil {
		return err
	}
	if b.Multiattach {
		return trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Invalid input received: trustack attaches a volume to one server at a time; multiattach is not offered.")
	}
	if (b.Size == nil || string(b.Size) == "null") && deref(b.SnapshotID) == "" && deref(b.ImageRef) == "" {
		return trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Invalid input received: a volume needs a size in GiB.")
	}
	size := 0 // a snapshot's or an image's, for a volume made from one
	if b.Size != nil && string(b.Size) != "null" || deref(b.SnapshotID) == "" && deref(b.ImageRef) == "" {
		if size, err = wholeNumber(b.Size, "size", 1); err != nil {
			return err
		}
	}
	if id := deref(b.SnapshotID); id != "" && !openstack.IsUUIDHex(id) {
		return trustack.Reasonf(trustack.ENOTFOUND, "SnapshotNotFound", "Snapshot %s could not be found.", id)
	}
	v, err := h.svc.Create(r.Context(), c, volume.CreateRequest{
		Name: deref(cmp.Or(b.Name, b.DisplayName)), Description: deref(cmp.Or(b.Description, b.DisplayDescription)),
		Size: size, Type: deref(b.VolumeType), AvailabilityZone: deref(b.AvailabilityZone), Metadata: b.Metadata,
		SnapshotID: deref(b.SnapshotID), ImageID: deref(b.ImageRef),
	})
	if err != nil {
		return err
	}
	vs, err := h.views(r)
	if err != nil {
		return err
	}
	return reply(w, http.StatusAccepted, object{"volume": vs.detail(v)})
}

// checkSource refuses a volume made from what trustack does not make
// volumes from yet: from a backup (none exists: 404) or from another
// volume (404 if it does not exist).
func (h *handler) checkSource(r *http.Request, c volume.Caller, b createBody) error {
	if id := deref(b.BackupID); id != "" {
		return trustack.Reasonf(trustack.ENOTFOUND, "BackupNotFound", "Backup %s could not be found.", id)
	}
	if id := deref(b.SourceVolID); id != "" {
		if _, err := h.svc.Get(r.Context(), c, id); err != nil {
			return err
		}
		return trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Invalid input received: trustack does not clone volumes yet.")
	}
	if deref(b.ConsistencyGroupID) != "" {
		return trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Invalid input received: trustack has no consistency groups.")
	}
	// From 3.13 a volume may be made in a group; trustack has none, so
	// every group is one that cannot be found. Below, Cinder ignores it.
	if id := deref(b.GroupID); id != "" && atLeast(r, 13) {
		return trustack.Reasonf(trustack.ENOTFOUND, "GroupNotFound", "Group %s could not be found.", id)
	}
	return nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func (h *handler) updateVolume(w http.ResponseWriter, r *http.Request) error {
	c, v, err := h.volume(r, "volume:update")
	if err != nil {
		return err
	}
	var b struct {
		Name               *string           `json:"name"`
		DisplayName        *string           `json:"display_name"`
		Description        *string           `json:"description"`
		DisplayDescription *string           `json:"display_description"`
		Metadata           map[string]string `json:"metadata"`
	}
	if err := h.decode(r, "volume", &b); err != nil {
		return err
	}
	u := volume.Update{Name: cmp.Or(b.Name, b.DisplayName), Description: cmp.Or(b.Description, b.DisplayDescription)}
	if b.Metadata != nil {
		u.Metadata = func(map[string]string) (map[string]string, error) { return b.Metadata, nil }
	}
	if v, err = h.svc.Update(r.Context(), c, v.ID, u); err != nil {
		return err
	}
	vs, err := h.views(r)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, object{"volume": vs.detail(v)})
}

func (h *handler) deleteVolume(w http.ResponseWriter, r *http.Request) error {
	c, v, err := h.volume(r, "volume:delete")
	if err != nil {
		return err
	}
	for k := range r.URL.Query() {
		if k != "cascade" && k != "force" {
			return trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Invalid input received: unknown parameter %s (there are cascade and force).", k)
		}
	}
	// force is a parameter from 3.23; Cinder ignores it below.
	if force, _ := strconv.ParseBool(r.URL.Query().Get("force")); force && atLeast(r, 23) {
		if err := h.authorize(r, "volume:force_delete", v.ProjectID); err != nil {
			return err
		}
		err = h.svc.ForceDelete(r.Context(), c, v.ID)
	} else {
		cascade, _ := strconv.ParseBool(r.URL.Query().Get("cascade"))
		err = h.svc.Delete(r.Context(), c, v.ID, cascade)
	}
	if err != nil {
		return err
	}
	return accepted(w)
}

// volumeAction serves POST /volumes/{id}/action: one action, named by the
// body's one key.
func (h *handler) volumeAction(w http.ResponseWriter, r *http.Request) error {
	body, err := h.dec.Body(r)
	if err != nil {
		return err
	}
	var actions map[string]json.RawMessage
	if err := openstack.Unmarshal(body, &actions); err != nil {
		return err
	}
	if len(actions) != 1 {
		return trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Invalid input received: an action body names one action.")
	}
	for name, args := range actions {
		action, ok := volumeActions[name]
		if !ok {
			return trustack.Reasonf(trustack.EINVALID, "InvalidInput", "There is no such action: %s", name)
		}
		c, v, err := h.volume(r, action.rule)
		if err != nil {
			return err
		}
		return action.do(h, w, r, c, v, args)
	}
	return nil
}

// volumeAction is an action on a volume: its policy rule, and what it
// does with its arguments.
type volumeAction struct {
	rule string
	do   func(h *handler, w http.ResponseWriter, r *http.Request, c volume.Caller, v *trustack.Volume, args json.RawMessage) error
}

var volumeActions = map[string]volumeAction{
	"os-extend": {"volume:extend", func(h *handler, w http.ResponseWriter, r *http.Request, c volume.Caller, v *trustack.Volume, args json.RawMessage) error {
		var a struct {
			NewSize json.RawMessage `json:"new_size"`
		}
		if err := openstack.UnmarshalField(args, "os-extend", &a); err != nil {
			return err
		}
		size, err := wholeNumber(a.NewSize, "new_size", 1)
		if err != nil {
			return err
		}
		// From 3.42 a volume in use grows too, where the policy allows.
		inUse := atLeast(r, 42) && v.Status == trustack.VolumeInUse
		if inUse {
			if err := h.authorize(r, "volume:extend_attached_volume", v.ProjectID); err != nil {
				return err
			}
		}
		if err := h.svc.Extend(r.Context(), c, v.ID, size, inUse); err != nil {
			return err
		}
		return accepted(w)
	}},
	"os-set_bootable": {"volume:update", func(h *handler, w http.ResponseWriter, r *http.Request, c volume.Caller, v *trustack.Volume, args json.RawMessage) error {
		var a struct {
			Bootable json.RawMessage `json:"bootable"`
		}
		if err := openstack.UnmarshalField(args, "os-set_bootable", &a); err != nil {
			return err
		}
		bootable, err := strconv.ParseBool(strings.Trim(string(a.Bootable), `"`))
		if err != nil {
			return trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Invalid input received: bootable must be true or false, not %s.", a.Bootable)
		}
		if _, err := h.svc.Update(r.Context(), c, v.ID, volume.Update{Bootable: &bootable}); err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
		return nil
	}},
	"os-reset_status": {"volume_extension:volume_admin_actions:reset_status", func(h *handler, w http.ResponseWriter, r *http.Request, c volume.Caller, v *trustack.Volume, args json.RawMessage) error {
		var a struct {
			Status string `json:"status"`
		}
		if err := openstack.UnmarshalField(args, "os-reset_status", &a); err != nil {
			return err
		}
		if err := h.svc.ResetStatus(r.Context(), c, v.ID, a.Status); err != nil {
			return err
		}
		return accepted(w)
	}},
	"os-retype": {"volume:retype", func(h *handler, w http.ResponseWriter, r *http.Request, c volume.Caller, v *trustack.Volume, args json.RawMessage) error {
		var a struct {
			NewType         string `json:"new_type"`
			MigrationPolicy string `json:"migration_policy"`
		}
		if err := openstack.UnmarshalField(args, "os-retype", &a); err != nil {
			return err
		}
		if a.NewType == "" {
			return trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Invalid input received: os-retype needs a new_type.")
		}
		if p := a.MigrationPolicy; p != "" && p != "never" && p != "on-demand" {
			return trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Invalid input received: migration_policy must be never or on-demand, not %q.", p)
		}
		if err := h.svc.Retype(r.Context(), c, v.ID, a.NewType); err != nil {
			return err
		}
		return accepted(w)
	}},
	"revert": {"volume:revert_to_snapshot", func(h *handler, w http.ResponseWriter, r *http.Request, c volume.Caller, v *trustack.Volume, args json.RawMessage) error {
		if !atLeast(r, 40) { // Cinder's revert came with 3.40
			return trustack.Reasonf(trustack.EINVALID, "InvalidInput", "There is no such action: revert")
		}
		var a struct {
			SnapshotID string `json:"snapshot_id"`
		}
		if err := openstack.UnmarshalField(args, "revert", &a); err != nil {
			return err
		}
		return acceptedIf(w, h.svc.Revert(r.Context(), c, v.ID, a.SnapshotID))
	}},
	"os-reserve": {"volume_extension:volume_actions:reserve", func(h *handler, w http.ResponseWriter, r *http.Request, c volume.Caller, v *trustack.Volume, _ json.RawMessage) error {
		return acceptedIf(w, h.svc.Reserve(r.Context(), c, v.ID))
	}},
	"os-unreserve": {"volume_extension:volume_actions:unreserve", func(h *handler, w http.ResponseWriter, r *http.Request, c volume.Caller, v *trustack.Volume, _ json.RawMessage) error {
		return acceptedIf(w, h.svc.Unreserve(r.Context(), c, v.ID))
	}},
	"os-attach": {"volume_extension:volume_actions:attach", func(h *handler, w http.ResponseWriter, r *http.Request, c volume.Caller, v *trustack.Volume, args json.RawMessage) error {
		var a struct {
			InstanceUUID string `json:"instance_uuid"`
			HostName     string `json:"host_name"`
			Mountpoint   string `json:"mountpoint"`
			Mode         string `json:"mode"`
		}
		if err := openstack.UnmarshalField(args, "os-attach", &a); err != nil {
			return err
		}
		switch {
		case (a.InstanceUUID == "") == (a.HostName == ""):
			return trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Invalid request to attach volume: give an instance_uuid or a host_name, not both.")
		case a.InstanceUUID != "" && !openstack.IsUUIDHex(a.InstanceUUID):
			return trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Invalid request to attach volume: instance_uuid %q is not a UUID.", a.InstanceUUID)
		case a.Mountpoint == "":
			return trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Invalid request to attach volume: a mountpoint is needed.")
		case a.Mode != "" && a.Mode != "rw" && a.Mode != "ro":
			return trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Invalid request to attach volume: mode must be rw or ro, not %q.", a.Mode)
		}
		_, err := h.svc.Attach(r.Context(), c, v.ID, volume.AttachRequest{ServerID: a.InstanceUUID, Host: a.HostName, Device: a.Mountpoint, ReadOnly: a.Mode == "ro"})
		return acceptedIf(w, err)
	}},
	"os-begin_detaching": {"volume_extension:volume_actions:begin_detaching", func(h *handler, w http.ResponseWriter, r *http.Request, c volume.Caller, v *trustack.Volume, _ json.RawMessage) error {
		return acceptedIf(w, h.svc.BeginDetaching(r.Context(), c, v.ID))
	}},
	"os-roll_detaching": {"volume_extension:volume_actions:roll_detaching", func(h *handler, w http.ResponseWriter, r *http.Request, c volume.Caller, v *trustack.Volume, _ json.RawMessage) error {
		return acceptedIf(w, h.svc.RollDetaching(r.Context(), c, v.ID))
	}},
	"os-detach": {"volume_extension:volume_actions:detach", func(h *handler, w http.ResponseWriter, r *http.Request, c volume.Caller, v *trustack.Volume, args json.RawMessage) error {
		id, err := attachmentID(args, "os-detach")
		if err != nil {
			return err
		}
		return acceptedIf(w, h.svc.Detach(r.Context(), c, v.ID, id))
	}},
	"os-force_detach": {"volume_extension:volume_admin_actions:force_detach", func(h *handler, w http.ResponseWriter, r *http.Request, c volume.Caller, v *trustack.Volume, args json.RawMessage) error {
		id, err := attachmentID(args, "os-force_detach")
		if err != nil {
			return err
		}
		return acceptedIf(w, h.svc.ForceDetach(r.Context(), c, v.ID, id))
	}},
	"os-update_readonly_flag": {"volume:update_readonly_flag", func(h *handler, w http.ResponseWriter, r *http.Request, c volume.Caller, v *trustack.Volume, args json.RawMessage) error {
		var a struct {
			ReadOnly json.RawMessage `json:"readonly"`
		}
		if err := openstack.UnmarshalField(args, "os-update_readonly_flag", &a); err != nil {
			return err
		}
		readOnly, err := strconv.ParseBool(strings.Trim(string(a.ReadOnly), `"`))
		if err != nil {
			return trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Invalid input received: readonly must be true or false, not %s.", a.ReadOnly)
		}
		return acceptedIf(w, h.svc.SetReadOnly(r.Context(), c, v.ID, readOnly))
	}},
	"os-set_image_metadata": {"volume_extension:volume_image_metadata:set", func(h *handler, w http.ResponseWriter, r *http.Request, c volume.Caller, v *trustack.Volume, args json.RawMessage) error {
		var a struct {
			Metadata map[string]string `json:"metadata"`
		}
		if err := openstack.UnmarshalField(args, "os-set_image_metadata", &a); err != nil {
			return err
		}
		v, err := h.svc.Update(r.Context(), c, v.ID, volume.Update{ImageMetadata: func(have map[string]string) (map[string]string, error) {
			maps.Copy(have, a.Metadata)
			return have, nil
		}})
		if err != nil {
			return err
		}
		return reply(w, http.StatusOK, object{"metadata": metadata(v.ImageMetadata)})
	}},
	"os-unset_image_metadata": {"volume_extension:volume_image_metadata:remove", func(h *handler, w http.ResponseWriter, r *http.Request, c volume.Caller, v *trustack.Volume, args json.RawMessage) error {
		var a struct {
			Key string `json:"key"`
		}
		if err := openstack.UnmarshalField(args, "os-unset_image_metadata", &a); err != nil {
			return err
		}
		_, err := h.svc.Update(r.Context(), c, v.ID, volume.Update{ImageMetadata: func(have map[string]string) (map[string]string, error) {
			if _, ok := have[a.Key]; !ok {
				return nil, noMetadata(a.Key)
			}
			delete(have, a.Key)
			return have, nil
		}})
		if err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
		return nil
	}},
	"os-show_image_metadata": {"volume:get_volume_metadata", func(h *handler, w http.ResponseWriter, r *http.Request, c volume.Caller, v *trustack.Volume, _ json.RawMessage) error {
		return reply(w, http.StatusOK, object{"metadata": metadata(v.ImageMetadata)})
	}},
	"os-volume_upload_image": {"volume_extension:volume_actions:upload_image", uploadImage},
	"os-force_delete": {"volume_extension:volume_admin_actions:force_delete", func(h *handler, w http.ResponseWriter, r *http.Request, c volume.Caller, v *trustack.Volume, _ json.RawMessage) error {
		if err := h.svc.ForceDelete(r.Context(), c, v.ID); err != nil {
			return err
		}
		return accepted(w)
	}},
}

// uploadImage makes an image of a volume (os-volume_upload_image); a
// public one only if the policy lets the caller publish images.
func uploadImage(h *handler, w http.ResponseWriter, r *http.Request, c volume.Caller, v *trustack.Volume, args json.RawMessage) error {
	var a struct {
		ImageName       string          `json:"image_name"`
		Force           json.RawMessage `json:"force"`
		DiskFormat      string          `json:"disk_format"`
		ContainerFormat string          `json:"container_format"`
		Visibility      string          `json:"visibility"`
		Protected       json.RawMessage `json:"protected"`
	}
	if err := openstack.UnmarshalField(args, "os-volume_upload_image", &a); err != nil {
		return err
	}
	if !atLeast(r, 1) {
		// protected and visibility are parameters from 3.1; Cinder
		// ignores them below: the image is private and unprotected.
		a.Visibility, a.Protected = "", nil
	}
	req := volume.UploadRequest{ImageName: a.ImageName, DiskFormat: a.DiskFormat, ContainerFormat: a.ContainerFormat, Visibility: a.Visibility}
	var err error
	if req.Force, err = flag(a.Force, "force"); err != nil {
		return err
	}
	if req.Protected, err = flag(a.Protected, "protected"); err != nil {
		return err
	}
	switch a.Visibility {
	case "", trustack.VisibilityPrivate, trustack.VisibilityShared, trustack.VisibilityCommunity:
	case trustack.VisibilityPublic:
		if err := h.api.Authorize(r, "volume_extension:volume_actions:upload_public", policy.Target{"project_id": v.ProjectID}); err != nil {
			return err
		}
	default:
		return trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Invalid input received: visibility must be public, private, shared or community, not %q.", a.Visibility)
	}
	img, err := h.svc.UploadImage(r.Context(), c, v.ID, req)
	if err != nil {
		return err
	}
	vt, err := h.svc.Type(r.Context(), volume.Caller{Admin: true}, v.TypeID)
	if err != nil {
		return err
	}
	return reply(w, http.StatusAccepted, object{"os-volume_upload_image": object{
		"id": v.ID, "updated_at": stamp(img.CreatedAt), "status": trustack.VolumeUploading, "display_description": nullIfEmpty(v.Description),
		"size": v.Size, "volume_type": h.typeView(r, vt, false), "image_id": img.ID, "image_name": img.Name,
		"container_format": img.ContainerFormat, "disk_format": img.DiskFormat, "visibility": img.Visibility, "protected": img.Protected,
	}})
}

// flag reads an optional boolean that Cinder also takes as a string.
func flag(raw json.RawMessage, field string) (bool, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return false, nil
	}
	b, err := strconv.ParseBool(strings.Trim(string(raw), `"`))
	if err != nil {
		return false, trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Invalid input received: %s must be true or false, not %s.", field, raw)
	}
	return b, nil
}

// acceptedIf answers 202 unless err.
func acceptedIf(w http.ResponseWriter, err error) error {
	if err != nil {
		return err
	}
	return accepted(w)
}

// attachmentID reads the optional attachment_id of a detach action.
func attachmentID(args json.RawMessage, action string) (string, error) {
	var a struct {
		AttachmentID string `json:"attachment_id"`
	}
	if len(args) == 0 || string(args) == "null" || string(args) == "{}" {
		return "", nil
	}
	err := openstack.UnmarshalField(args, action, &a)
	return a.AttachmentID, err
}

// volumeSortKeys are the keys volume lists sort by; their filters are
// resourceFilters["volume"].
var (
	volumeSortKeys = map[string]func(a, b *trustack.Volume) int{
		"id":                func(a, b *trustack.Volume) int { return strings.Compare(a.ID, b.ID) },
		"name":              func(a, b *trustack.Volume) int { return strings.Compare(a.Name, b.Name) },
		"status":            func(a, b *trustack.Volume) int { return strings.Compare(a.Status, b.Status) },
		"size":              func(a, b *trustack.Volume) int { return cmp.Compare(a.Size, b.Size) },
		"availability_zone": func(a, b *trustack.Volume) int { return strings.Compare(a.AvailabilityZone, b.AvailabilityZone) },
		"created_at":        func(a, b *trustack.Volume) int { return a.CreatedAt.Compare(b.CreatedAt) },
		"updated_at":        func(a, b *trustack.Volume) int { return a.UpdatedAt.Compare(b.UpdatedAt) },
		"user_id":           func(a, b *trustack.Volume) int { return strings.Compare(a.UserID, b.UserID) },
		"project_id":        func(a, b *trustack.Volume) int { return strings.Compare(a.ProjectID, b.ProjectID) },
		"bootable": func(a, b *trustack.Volume) int {
			return cmp.Compare(strconv.FormatBool(a.Bootable), strconv.FormatBool(b.Bootable))
		},
	}
)

func (h *handler) listVolumes(detail bool) openstack.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		list, q, err := h.listedVolumes(r)
		if err != nil {
			return err
		}
		vs, err := h.views(r)
		if err != nil {
			return err
		}
		render := vs.summary
		if detail {
			render = vs.extended
		}
		return answerList(w, r, vs, "volumes", detail, list, q, volumeSortKeys, func(v *trustack.Volume) string { return v.ID }, render)
	}
}

// listedVolumes returns the volumes a list (or its summary) answers, as
// volume:get_all lets the caller see them and the query's filters select
// them, and the query left to sort and page them.
func (h *handler) listedVolumes(r *http.Request) ([]*trustack.Volume, url.Values, error) {
	c, err := h.caller(r)
	if err != nil {
		return nil, nil, err
	}
	if err := h.authorize(r, "volume:get_all", c.ProjectID); err != nil {
		return nil, nil, err
	}
	q, like, err := listQuery(r, "volume")
	if err != nil {
		return nil, nil, err
	}
	list, err := h.filteredVolumes(r, c, q, like)
	return list, q, err
}

// filteredVolumes returns the volumes a list's filters (q, checked by
// listQuery, and its key~ filters, like) select: the caller's project's,
// or with all_tenants an administrator's choice.
func (h *handler) filteredVolumes(r *http.Request, c volume.Caller, q url.Values, like map[string]string) ([]*trustack.Volume, error) {
	f := trustack.VolumeFilter{ProjectID: c.ProjectID, Name: q.Get("name"), Status: q.Get("status")}
	if err := h.projectFilter(c, q, &f.ProjectID); err != nil {
		return nil, err
	}
	if q.Has("group_id") {
		// A volume is in no group (trustack has none), so a group_id
		// filter selects nothing.
		return []*trustack.Volume{}, nil
	}
	if q.Has("bootable") {
		b, err := bootableFilter(r, q.Get("bootable"))
		if err != nil {
			return nil, err
		}
		f.Bootable = &b
	}
	if t := q.Get("volume_type"); t != "" {
		vt, err := h.svc.Type(r.Context(), c, t)
		if err != nil {
			return nil, err
		}
		f.TypeID = vt.ID
	}
	want, err := metadataFilter(q.Get("metadata"))
	if err != nil {
		return nil, err
	}
	wantImage, err := metadataFilter(q.Get("glance_metadata"))
	if err != nil {
		return nil, err
	}
	list, err := h.svc.List(r.Context(), volume.Caller{ProjectID: f.ProjectID, Admin: f.ProjectID == ""}, f)
	if err != nil {
		return nil, err
	}
	zone := q.Get("availability_zone")
	return slices.DeleteFunc(list, func(v *trustack.Volume) bool {
		if zone != "" && v.AvailabilityZone != zone {
			return true
		}
		if !hasMetadata(v.Metadata, want) || !hasMetadata(v.ImageMetadata, wantImage) {
			return true
		}
		return !matchesLike(like, func(key string) string {
			return map[string]string{"name": v.Name, "status": v.Status, "availability_zone": v.AvailabilityZone}[key]
		})
	}), nil
}

// hasMetadata reports whether metadata has every key and value of want.
func hasMetadata(metadata, want map[string]string) bool {
	for k, val := range want {
		if have, ok := metadata[k]; !ok || have != val {
			return false
		}
	}
	return true
}

// bootableFilter reads a bootable filter as Cinder does: from 3.2 a
// boolean (true, t, 1, yes, on, y and their negations, in any case) or
// EINVALID; below, false for "false", "False", "FALSE" and "", true for
// anything else.
func bootableFilter(r *http.Request, s string) (bool, error) {
	if !atLeast(r, 2) {
		return s != "" && s != "false" && s != "False" && s != "FALSE", nil
	}
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "t", "true", "on", "y", "yes":
		return true, nil
	case "0", "f", "false", "off", "n", "no":
		return false, nil
	}
	return false, trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Invalid input received: 'bootable = %s'", s)
}

// projectFilter sets the project a list is of: with all_tenants, every
// project's (""), or project_id's, to an administrator; to others their
// own, as Cinder ignores all_tenants for them (and clients send it when
// they look a name up).
func (h *handler) projectFilter(c volume.Caller, q url.Values, project *string) error {
	all, _ := strconv.ParseBool(q.Get("all_tenants"))
	switch {
	case c.Admin && all:
		*project = q.Get("project_id")
	case q.Has("project_id") && q.Get("project_id") != c.ProjectID:
		return trustack.Reasonf(trustack.EFORBIDDEN, "PolicyNotAuthorized", "Only administrators may list other projects' volumes and snapshots.")
	}
	return nil
}

// metadataFilter reads a metadata filter as clients send it: a JSON
// object, or Python's rendering of a dict ({'key': 'value'}).
func metadataFilter(s string) (map[string]string, error) {
	if s == "" {
		return nil, nil
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(strings.ReplaceAll(s, "'", `"`)), &m); err != nil {
		return nil, trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Invalid input received: the metadata filter must be an object of strings, such as {\"key\": \"value\"}, not %q.", s)
	}
	return m, nil
}
