package compute

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/compute"
)

// bdmV2 is an item of block_device_mapping_v2, as Nova 2.1's schema has
// it (which also takes the legacy mapping's keys); a key it does not
// know is a bad request, as there.
type bdmV2 struct {
	SourceType          string          `json:"source_type"`
	DestinationType     string          `json:"destination_type"`
	UUID                string          `json:"uuid"`
	BootIndex           json.RawMessage `json:"boot_index"`
	VolumeSize          json.RawMessage `json:"volume_size"`
	DeleteOnTermination json.RawMessage `json:"delete_on_termination"`
	DeviceName          string          `json:"device_name"`
	DiskBus             string          `json:"disk_bus"`
	DeviceType          string          `json:"device_type"`
	GuestFormat         string          `json:"guest_format"`
	NoDevice            json.RawMessage `json:"no_device"`
	// The legacy mapping's.
	VolumeID    string `json:"volume_id"`
	SnapshotID  string `json:"snapshot_id"`
	VirtualName string `json:"virtual_name"`
}

// bdmKeys are the keys an item of a block device mapping may have.
var bdmKeys = []string{"source_type", "destination_type", "uuid", "boot_index", "volume_size", "delete_on_termination", "device_name",
	"disk_bus", "device_type", "guest_format", "no_device", "volume_id", "snapshot_id", "virtual_name", "image_id", "connection_info"}

// bdmUUID is what Nova's schema takes as a block device's source.
var bdmUUID = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,255}$`)

// blockDevices reads the block device mapping of POST /servers, v2 or
// else the legacy one, as the volumes the server is made with. A mapping
// of the server's image to its local disk (destination "local", boot
// index 0) is its image: imageID takes it if empty, and must name the
// same image otherwise. trustack makes no other local disks (ephemeral
// or swap): those are refused.
func blockDevices(v2, legacy json.RawMessage, imageID *string) ([]trustack.BlockDevice, error) {
	field, raw := "block_device_mapping_v2", v2
	if !nonEmpty(v2) {
		field, raw = "block_device_mapping", legacy
	}
	if !nonEmpty(raw) {
		return nil, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, invalid(field, "It must be a list of block devices.")
	}
	var out []trustack.BlockDevice
	for _, item := range items {
		var keys map[string]json.RawMessage
		var m bdmV2
		if json.Unmarshal(item, &keys) != nil || json.Unmarshal(item, &m) != nil {
			return nil, invalid(field, "Value: %s. Each block device must be an object of its documented keys.", item)
		}
		for k := range keys {
			if !slices.Contains(bdmKeys, k) {
				return nil, invalid(field, "Additional properties are not allowed ('%s' was unexpected).", k)
			}
		}
		var bd *trustack.BlockDevice
		var err error
		if field == "block_device_mapping_v2" {
			bd, err = readV2(field, m, imageID)
		} else {
			bd, err = readLegacy(field, m)
		}
		if err != nil {
			return nil, err
		}
		if bd != nil {
			out = append(out, *bd)
		}
	}
	return out, nil
}

// readV2 reads an item of block_device_mapping_v2; nil for the server's
// image.
func readV2(field string, m bdmV2, imageID *string) (*trustack.BlockDevice, error) {
	bd := &trustack.BlockDevice{BootIndex: -1, Source: m.SourceType}
	if !slices.Contains([]string{compute.SourceVolume, compute.SourceImage, compute.SourceSnapshot, compute.SourceBlank}, bd.Source) {
		return nil, invalid(field, "source_type %q is not one of volume, image, snapshot, blank.", bd.Source)
	}
	dest := m.DestinationType
	if dest == "" {
		dest = "volume"
		if bd.Source == compute.SourceImage || bd.Source == compute.SourceBlank {
			dest = "local"
		}
	}
	if dest != "local" && dest != "volume" {
		return nil, invalid(field, "destination_type %q is not one of local, volume.", dest)
	}
	if bd.Source != compute.SourceBlank {
		bd.SourceID = m.UUID
		if !bdmUUID.MatchString(bd.SourceID) {
			return nil, invalid(field, "uuid %q is not a valid ID.", bd.SourceID)
		}
	}
	var err error
	if nonEmpty(m.BootIndex) {
		if bd.BootIndex, err = intParam(field+".boot_index", m.BootIndex, false); err != nil {
			return nil, err
		}
	}
	if bd.Size, err = intParam(field+".volume_size", m.VolumeSize, false); err != nil {
		return nil, err
	}
	if bd.DeleteOnTermination, err = boolParam(field+".delete_on_termination", m.DeleteOnTermination); err != nil {
		return nil, err
	}
	if dest == "volume" {
		return bd, nil
	}
	if bd.Source != compute.SourceImage || bd.BootIndex != 0 {
		return nil, compute.InvalidBDM("trustack makes no local disks but a server's image disk (no ephemeral or swap disks): give such a block device destination_type volume.")
	}
	switch {
	case *imageID == "":
		*imageID = bd.SourceID
	case *imageID != bd.SourceID:
		return nil, compute.InvalidBDM("the image of the local root disk, %s, is not imageRef, %s.", bd.SourceID, *imageID)
	}
	return nil, nil
}

// readLegacy reads an item of the legacy block_device_mapping: a volume
// or a snapshot's new volume, the root disk if at vda.
func readLegacy(field string, m bdmV2) (*trustack.BlockDevice, error) {
	if nonEmpty(m.NoDevice) {
		return nil, nil
	}
	bd := &trustack.BlockDevice{BootIndex: -1}
	switch {
	case m.VolumeID != "":
		bd.Source, bd.SourceID = compute.SourceVolume, m.VolumeID
	case m.SnapshotID != "":
		bd.Source, bd.SourceID = compute.SourceSnapshot, m.SnapshotID
	default:
		return nil, compute.InvalidBDM("trustack makes no local disks but a server's image disk (no ephemeral or swap disks): map a volume_id or a snapshot_id.")
	}
	if strings.TrimPrefix(m.DeviceName, "/dev/") == "vda" {
		bd.BootIndex = 0
	}
	var err error
	if bd.Size, err = intParam(field+".volume_size", m.VolumeSize, false); err != nil {
		return nil, err
	}
	if bd.DeleteOnTermination, err = boolParam(field+".delete_on_termination", m.DeleteOnTermination); err != nil {
		return nil, err
	}
	return bd, nil
}

// boolParam reads a boolean as Nova's schema takes it: true or false, or
// a string that oslo reads as one; absent or null is false.
func boolParam(field string, raw json.RawMessage) (bool, error) {
	if !nonEmpty(raw) {
		return false, nil
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		s = string(raw)
	}
	switch strings.ToLower(s) {
	case "true", "1", "t", "on", "y", "yes":
		return true, nil
	case "false", "0", "f", "off", "n", "no":
		return false, nil
	}
	return false, invalid(field, "Value %s is not a boolean.", raw)
}
