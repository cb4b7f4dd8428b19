package volume

import (
	"cmp"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/api/openstack"
	"github.com/trustack/trustack/policy"
	"github.com/trustack/trustack/volume"
)

func (h *handler) snapshotRoutes() {
	a := h.api
	base := v3 + "/snapshots"
	a.Private("GET "+base, h.listSnapshots(false))
	a.Private("GET "+base+"/detail", h.listSnapshots(true))
	a.Private("POST "+base, h.createSnapshot)
	a.Private("GET "+base+"/{id}", h.showSnapshot)
	a.Private("PUT "+base+"/{id}", h.updateSnapshot)
	a.Private("DELETE "+base+"/{id}", h.deleteSnapshot)
	a.Private("POST "+base+"/{id}/action", h.snapshotAction)
	h.metadataRoutes(base+"/{id}/metadata", h.snapshotMetadata())
}

// snapshotView is a snapshot as Cinder lists it without details.
func snapshotView(s *trustack.VolumeSnapshot) object {
	return object{"id": s.ID, "volume_id": s.VolumeID, "name": s.Name, "description": nullIfEmpty(s.Description), "size": s.Size,
		"status": s.Status, "metadata": metadata(s.Metadata), "created_at": stamp(s.CreatedAt), "updated_at": stampOrNull(s.UpdatedAt)}
}

// snapshotDetail is a snapshot as Cinder's create and update answer it:
// from 3.14 with its group snapshot (none: trustack has no groups), from
// 3.41 with the user who took it.
func snapshotDetail(r *http.Request, s *trustack.VolumeSnapshot) object {
	o := snapshotView(s)
	if atLeast(r, 14) {
		o["group_snapshot_id"] = nil
	}
	if atLeast(r, 41) {
		o["user_id"] = s.UserID
	}
	return o
}

// extendedSnapshot is a snapshot shown or listed in detail: with its
// progress and project, if the policy shows them.
func (h *handler) extendedSnapshot(r *http.Request, s *trustack.VolumeSnapshot) object {
	o := snapshotDetail(r, s)
	if h.api.Allowed(r, "volume_extension:extended_snapshot_attributes", policy.Target{"project_id": s.ProjectID}) {
		progress := s.Progress
		switch {
		case progress != "":
		case s.Status == trustack.SnapshotAvailable:
			progress = "100%"
		default:
			progress = "0%"
		}
		o["os-extended-snapshot-attributes:progress"] = progress
		o["os-extended-snapshot-attributes:project_id"] = s.ProjectID
	}
	return o
}

// snapshot returns the snapshot of the request's path, after rule.
func (h *handler) snapshot(r *http.Request, rule string) (volume.Caller, *trustack.VolumeSnapshot, error) {
	return pathResource(h, r, rule, "Snapshot", h.svc.GetSnapshot, func(s *trustack.VolumeSnapshot) string { return s.ProjectID })
}

func (h *handler) showSnapshot(w http.ResponseWriter, r *http.Request) error {
	_, s, err := h.snapshot(r, "volume:get_snapshot")
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, object{"snapshot": h.extendedSnapshot(r, s)})
}

func (h *handler) createSnapshot(w http.ResponseWriter, r *http.Request) error {
	c, err := h.caller(r)
	if err != nil {
		return err
	}
	var b struct {
		VolumeID           string            `json:"volume_id"`
		Name               *string           `json:"name"`
		DisplayName        *string           `json:"display_name"`
		Description        *string           `json:"description"`
		DisplayDescription *string           `json:"display_description"`
		Force              json.RawMessage   `json:"force"`
		Metadata           map[string]string `json:"metadata"`
	}
	if err := h.decode(r, "snapshot", &b); err != nil {
		return err
	}
	if b.Force != nil {
		if _, err := strconv.ParseBool(strings.Trim(string(b.Force), `"`)); err != nil {
			return trustack.Reasonf(trustack.EINVALID, "InvalidParameterValue", "Invalid value for force: %s.", b.Force)
		}
	}
	if !openstack.IsUUIDHex(b.VolumeID) {
		return trustack.Reasonf(trustack.ENOTFOUND, "VolumeNotFound", "Volume %s could not be found.", b.VolumeID)
	}
	v, err := h.svc.Get(r.Context(), c, b.VolumeID)
	if err != nil {
		return err
	}
	if err := h.authorize(r, "volume:create_snapshot", v.ProjectID); err != nil {
		return err
	}
	s, err := h.svc.CreateSnapshot(r.Context(), c, volume.SnapshotRequest{VolumeID: v.ID, Name: deref(cmp.Or(b.Name, b.DisplayName)),
		Description: deref(cmp.Or(b.Description, b.DisplayDescription)), Metadata: b.Metadata})
	if err != nil {
		return err
	}
	return reply(w, http.StatusAccepted, object{"snapshot": snapshotDetail(r, s)})
}

func (h *handler) updateSnapshot(w http.ResponseWriter, r *http.Request) error {
	c, s, err := h.snapshot(r, "volume:update_snapshot")
	if err != nil {
		return err
	}
	var b struct {
		Name               *string `json:"name"`
		DisplayName        *string `json:"display_name"`
		Description        *string `json:"description"`
		DisplayDescription *string `json:"display_description"`
	}
	if err := h.decode(r, "snapshot", &b); err != nil {
		return err
	}
	s, err = h.svc.UpdateSnapshot(r.Context(), c, s.ID, volume.SnapshotUpdate{Name: cmp.Or(b.Name, b.DisplayName),
		Description: cmp.Or(b.Description, b.DisplayDescription)})
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, object{"snapshot": snapshotDetail(r, s)})
}

func (h *handler) deleteSnapshot(w http.ResponseWriter, r *http.Request) error {
	c, s, err := h.snapshot(r, "volume:delete_snapshot")
	if err != nil {
		return err
	}
	return acceptedIf(w, h.svc.DeleteSnapshot(r.Context(), c, s.ID, false))
}

// snapshotAction serves POST /snapshots/{id}/action: an administrator's
// os-reset_status or os-force_delete, or a service's
// os-update_snapshot_status.
func (h *handler) snapshotAction(w http.ResponseWriter, r *http.Request) error {
	body, err := h.dec.Body(r)
	if err != nil {
		return err
	}
	var actions map[string]json.RawMessage
	if err := openstack.Unmarshal(body, &actions); err != nil {
		return err
	}
	switch {
	case len(actions) != 1:
		return trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Invalid input received: an action body names one action.")
	case actions["os-reset_status"] != nil:
		c, s, err := h.snapshot(r, "volume_extension:snapshot_admin_actions:reset_status")
		if err != nil {
			return err
		}
		var a struct {
			Status string `json:"status"`
		}
		if err := openstack.UnmarshalField(actions["os-reset_status"], "os-reset_status", &a); err != nil {
			return err
		}
		return acceptedIf(w, h.svc.ResetSnapshotStatus(r.Context(), c, s.ID, a.Status))
	case actions["os-update_snapshot_status"] != nil:
		c, s, err := h.snapshot(r, "snapshot_extension:snapshot_actions:update_snapshot_status")
		if err != nil {
			return err
		}
		var a struct {
			Status   string `json:"status"`
			Progress string `json:"progress"`
		}
		if err := openstack.UnmarshalField(actions["os-update_snapshot_status"], "os-update_snapshot_status", &a); err != nil {
			return err
		}
		return acceptedIf(w, h.svc.UpdateSnapshotStatus(r.Context(), c, s.ID, a.Status, a.Progress))
	case actions["os-force_delete"] != nil:
		c, s, err := h.snapshot(r, "volume_extension:snapshot_admin_actions:force_delete")
		if err != nil {
			return err
		}
		return acceptedIf(w, h.svc.DeleteSnapshot(r.Context(), c, s.ID, true))
	}
	for name := range actions {
		return trustack.Reasonf(trustack.EINVALID, "InvalidInput", "There is no such action: %s", name)
	}
	return nil
}

// snapshotSortKeys are the keys snapshot lists sort by (name from 3.30);
// their filters are resourceFilters["snapshot"].
var (
	snapshotSortKeys = map[string]func(a, b *trustack.VolumeSnapshot) int{
		"id":         func(a, b *trustack.VolumeSnapshot) int { return strings.Compare(a.ID, b.ID) },
		"name":       func(a, b *trustack.VolumeSnapshot) int { return strings.Compare(a.Name, b.Name) },
		"status":     func(a, b *trustack.VolumeSnapshot) int { return strings.Compare(a.Status, b.Status) },
		"size":       func(a, b *trustack.VolumeSnapshot) int { return cmp.Compare(a.Size, b.Size) },
		"volume_id":  func(a, b *trustack.VolumeSnapshot) int { return strings.Compare(a.VolumeID, b.VolumeID) },
		"created_at": func(a, b *trustack.VolumeSnapshot) int { return a.CreatedAt.Compare(b.CreatedAt) },
		"updated_at": func(a, b *trustack.VolumeSnapshot) int { return a.UpdatedAt.Compare(b.UpdatedAt) },
	}
)

func (h *handler) listSnapshots(detail bool) openstack.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		c, err := h.caller(r)
		if err != nil {
			return err
		}
		if err := h.authorize(r, "volume:get_all_snapshots", c.ProjectID); err != nil {
			return err
		}
		q, like, err := listQuery(r, "snapshot")
		if err != nil {
			return err
		}
		f := trustack.SnapshotFilter{ProjectID: c.ProjectID, Name: q.Get("name"), Status: q.Get("status"), VolumeID: q.Get("volume_id")}
		if err := h.projectFilter(c, q, &f.ProjectID); err != nil {
			return err
		}
		want, err := metadataFilter(q.Get("metadata"))
		if err != nil {
			return err
		}
		list, err := h.svc.ListSnapshots(r.Context(), volume.Caller{ProjectID: f.ProjectID, Admin: f.ProjectID == ""}, f)
		if err != nil {
			return err
		}
		list = slices.DeleteFunc(list, func(s *trustack.VolumeSnapshot) bool {
			return !hasMetadata(s.Metadata, want) ||
				!matchesLike(like, func(key string) string { return map[string]string{"name": s.Name, "status": s.Status}[key] })
		})
		keys := snapshotSortKeys
		if !atLeast(r, 30) {
			// Below 3.30 Cinder sorts snapshots by display_name, not
			// name.
			keys = maps.Clone(keys)
			keys["display_name"] = keys["name"]
			delete(keys, "name")
		}
		vs, err := h.views(r)
		if err != nil {
			return err
		}
		return answerList(w, r, vs, "snapshots", detail, list, q, keys, func(s *trustack.VolumeSnapshot) string { return s.ID },
			func(s *trustack.VolumeSnapshot) object {
				if detail {
					return h.extendedSnapshot(r, s)
				}
				return snapshotView(s)
			})
	}
}

// snapshotMetadata is a snapshot's metadata, as Cinder's rules guard it.
func (h *handler) snapshotMetadata() metadataOf {
	return metadataOf{
		show: "volume:get_snapshot_metadata", create: "volume:update_snapshot_metadata",
		update: "volume:update_snapshot_metadata", delete: "volume:delete_snapshot_metadata",
		get: func(r *http.Request, rule string) (map[string]string, error) {
			_, s, err := h.snapshot(r, rule)
			if err != nil {
				return nil, err
			}
			return s.Metadata, nil
		},
		change: func(r *http.Request, rule string, fn func(map[string]string) (map[string]string, error)) (map[string]string, error) {
			c, s, err := h.snapshot(r, rule)
			if err != nil {
				return nil, err
			}
			if s, err = h.svc.UpdateSnapshot(r.Context(), c, s.ID, volume.SnapshotUpdate{Metadata: fn}); err != nil {
				return nil, err
			}
			return s.Metadata, nil
		},
	}
}
