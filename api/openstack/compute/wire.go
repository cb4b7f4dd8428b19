package compute

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/compute"
)

// object is a JSON object in a response.
type object = map[string]any

// Nova's time formats.
const (
	isoSeconds = "2006-01-02T15:04:05Z"
	isoMicros  = "2006-01-02T15:04:05.000000"
)

func stamp(t time.Time) string { return t.UTC().Format(isoSeconds) }

// stampOrNull renders an optional time with microseconds, null when zero.
func stampOrNull(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(isoMicros)
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// links are a resource's self and bookmark links, as Nova gives them.
func (h *handler) links(collection, id string) []object {
	return []object{
		{"rel": "self", "href": h.base + "/v2.1/" + collection + "/" + id},
		{"rel": "bookmark", "href": h.base + "/" + collection + "/" + id},
	}
}

func (h *handler) bookmark(collection, id string) []object {
	return []object{{"rel": "bookmark", "href": h.base + "/" + collection + "/" + id}}
}

// hostID hides the host's name behind a hash that differs per project, as
// Nova's hostId does: a project can tell whether two of its servers share a
// host, but not which host, nor match hosts with another project.
func hostID(projectID, host string) string {
	if host == "" {
		return ""
	}
	sum := sha256.Sum224([]byte(projectID + host))
	return hex.EncodeToString(sum[:])
}

// serverImage is the image a server was made from, as Nova shows it: ""
// for a server booted from a volume.
func (h *handler) serverImage(s *trustack.Server) any {
	if s.ImageID == "" {
		return ""
	}
	return object{"id": s.ImageID, "links": h.bookmark("images", s.ImageID)}
}

// server renders a server at the request's microversion, with its
// networking and volumes n: the basic fields (those of PUT
// /servers/{id}), and with detail those of GET /servers/{id}; admin adds
// the extended server attributes.
func (h *handler) server(r *http.Request, s *trustack.Server, n serverParts, detail, admin bool) object {
	status := compute.Status(s)
	o := object{
		"id":                s.ID,
		"name":              s.Name,
		"status":            status,
		"image":             h.serverImage(s),
		"flavor":            object{"id": s.Flavor.ID, "links": h.bookmark("flavors", s.Flavor.ID)},
		"user_id":           s.UserID,
		"tenant_id":         s.ProjectID,
		"created":           stamp(s.CreatedAt),
		"updated":           stamp(s.UpdatedAt),
		"metadata":          metadata(s.Metadata),
		"links":             h.links("servers", s.ID),
		"addresses":         addresses(n.addresses, detail),
		"hostId":            hostID(s.ProjectID, s.Host),
		"OS-DCF:diskConfig": diskConfig(s.DiskConfig),
		"accessIPv4":        s.AccessIPv4,
		"accessIPv6":        s.AccessIPv6,
	}
	switch status {
	case "ACTIVE":
		o["progress"] = 100
	case "BUILD":
		o["progress"] = 0
	case "ERROR", "DELETED":
		if f := s.Fault; f != nil {
			fault := object{"code": f.Code, "created": stamp(f.Created), "message": f.Message}
			if f.Details != "" {
				fault["details"] = f.Details
			}
			o["fault"] = fault
		}
	}
	if atLeast(r, 9) {
		o["locked"] = s.Locked
	}
	if atLeast(r, 19) {
		o["description"] = s.Description
	}
	if !detail {
		return o
	}
	o["key_name"] = nullIfEmpty(s.KeyName)
	// As Nova: a server without ports is in no group, and says nothing.
	if len(n.groups) > 0 {
		groups := make([]object, len(n.groups))
		for i, g := range n.groups {
			groups[i] = object{"name": g}
		}
		o["security_groups"] = groups
	}
	o["OS-SRV-USG:launched_at"] = stampOrNull(s.LaunchedAt)
	o["OS-SRV-USG:terminated_at"] = stampOrNull(s.TerminatedAt)
	o["OS-EXT-AZ:availability_zone"] = s.AvailabilityZone
	o["config_drive"] = ""
	if s.ConfigDrive {
		o["config_drive"] = "True"
	}
	o["OS-EXT-STS:task_state"] = nullIfEmpty(s.TaskState)
	o["OS-EXT-STS:vm_state"] = s.VMState
	o["OS-EXT-STS:power_state"] = int(s.PowerState)
	attached := make([]object, len(n.volumes))
	for i, id := range n.volumes {
		attached[i] = object{"id": id}
		if atLeast(r, 3) {
			attached[i]["delete_on_termination"] = deletedWith(s, id)
		}
	}
	o["os-extended-volumes:volumes_attached"] = attached
	if admin {
		o["OS-EXT-SRV-ATTR:host"] = nullIfEmpty(s.Host)
		o["OS-EXT-SRV-ATTR:hypervisor_hostname"] = nullIfEmpty(s.Node)
		o["OS-EXT-SRV-ATTR:instance_name"] = "instance-" + strings.ReplaceAll(s.ID, "-", "")[:8]
	}
	if n.hostStatus != nil {
		o["host_status"] = *n.hostStatus
	}
	if admin && atLeast(r, 3) {
		o["OS-EXT-SRV-ATTR:reservation_id"] = s.ReservationID
		o["OS-EXT-SRV-ATTR:launch_index"] = s.LaunchIndex
		// trustack boots images whole, never a separate kernel and ramdisk.
		o["OS-EXT-SRV-ATTR:kernel_id"] = ""
		o["OS-EXT-SRV-ATTR:ramdisk_id"] = ""
		o["OS-EXT-SRV-ATTR:hostname"] = compute.Hostname(s.Name)
		o["OS-EXT-SRV-ATTR:root_device_name"] = compute.RootDevice
		o["OS-EXT-SRV-ATTR:user_data"] = nullIfEmpty(s.UserData)
	}
	return o
}

// deletedWith reports whether a server's volume is deleted with it: a
// volume it was made with that asked to be; never one attached later.
func deletedWith(s *trustack.Server, volumeID string) bool {
	for _, b := range s.BlockDevices {
		if b.VolumeID == volumeID {
			return b.DeleteOnTermination
		}
	}
	return false
}

func metadata(md map[string]string) map[string]string {
	if md == nil {
		return map[string]string{}
	}
	return md
}

func diskConfig(d string) string {
	if d == "" {
		return "AUTO"
	}
	return d
}

// flavor renders a flavor's detail.
func (h *handler) flavor(f *trustack.Flavor) object {
	var swap any = ""
	if f.Swap > 0 {
		swap = f.Swap
	}
	return object{
		"id": f.ID, "name": f.Name, "ram": f.RAM, "vcpus": f.VCPUs, "disk": f.Disk, "swap": swap,
		"links":                      h.links("flavors", f.ID),
		"OS-FLV-DISABLED:disabled":   f.Disabled,
		"os-flavor-access:is_public": f.Public,
		"rxtx_factor":                f.RXTXFactor,
		"OS-FLV-EXT-DATA:ephemeral":  f.Ephemeral,
	}
}

// action renders an instance action, with its events when asked for.
func action(a trustack.InstanceAction, events bool) object {
	var message any
	if a.Message != "" {
		message = a.Message
	}
	o := object{
		"action": a.Action, "request_id": a.RequestID, "user_id": a.UserID, "project_id": a.ProjectID,
		"start_time": a.StartTime.UTC().Format(isoMicros), "message": message, "instance_uuid": a.ServerID,
	}
	if events {
		list := []object{}
		for _, e := range a.Events {
			var result any
			if e.Result != "" {
				result = e.Result
			}
			list = append(list, object{"event": e.Event, "start_time": e.StartTime.UTC().Format(isoMicros),
				"finish_time": stampOrNull(e.FinishTime), "result": result})
		}
		o["events"] = list
	}
	return o
}

// proxyStatus is how Nova's image proxy shows a Glance status, with the
// progress it gives it.
func proxyStatus(status string) (string, int) {
	switch status {
	case trustack.ImageQueued:
		return "SAVING", 25
	case trustack.ImageSaving:
		return "SAVING", 50
	case trustack.ImageActive:
		return "ACTIVE", 100
	case trustack.ImageKilled:
		return "ERROR", 0
	case trustack.ImageDeleted:
		return "DELETED", 0
	}
	return "UNKNOWN", 0
}

// image renders an image as Nova's image proxy does.
func (h *handler) image(img *trustack.Image, detail bool) object {
	o := object{"id": img.ID, "name": img.Name, "links": []object{
		{"rel": "self", "href": h.base + "/v2.1/images/" + img.ID},
		{"rel": "bookmark", "href": h.base + "/images/" + img.ID},
		{"rel": "alternate", "type": "application/vnd.openstack.image", "href": h.cfg.ImageURL + "/v2/images/" + img.ID},
	}}
	if !detail {
		return o
	}
	status, progress := proxyStatus(img.Status)
	md := map[string]string{}
	for k, v := range img.Properties {
		md[k] = v
	}
	o["status"], o["progress"] = status, progress
	o["created"], o["updated"] = stamp(img.CreatedAt), stamp(img.UpdatedAt)
	o["minDisk"], o["minRam"] = img.MinDisk, img.MinRAM
	o["metadata"] = md
	o["OS-EXT-IMG-SIZE:size"] = img.Size
	if id := img.Properties["instance_uuid"]; id != "" {
		o["server"] = object{"id": id, "links": h.links("servers", id)}
	}
	return o
}

// collection writes a list with its key.
func collection(w http.ResponseWriter, key string, items []object) error {
	if items == nil {
		items = []object{}
	}
	return ok(w, object{key: items})
}
