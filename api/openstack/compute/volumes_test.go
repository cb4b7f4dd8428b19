package compute_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/internal/apitest"
	"github.com/trustack/trustack/volume"
)

// volumeOf makes a volume of size GiB in alice's project, bootable if
// asked, and waits for it to be available.
func (c *cloud) volumeOf(t testing.TB, size int, bootable bool) string {
	t.Helper()
	alice := volume.Caller{UserID: "u-alice", ProjectID: apitest.P1}
	v, err := c.vol.Create(ctx, alice, volume.CreateRequest{Size: size})
	if err != nil {
		t.Fatal(err)
	}
	c.waitVolume(t, v.ID, trustack.VolumeAvailable)
	if bootable {
		if _, err := c.vol.Update(ctx, alice, v.ID, volume.Update{Bootable: &bootable}); err != nil {
			t.Fatal(err)
		}
	}
	return v.ID
}

// waitVolume waits for a volume to have status.
func (c *cloud) waitVolume(t testing.TB, id, status string) *trustack.Volume {
	t.Helper()
	var v *trustack.Volume
	waitFor(t, "volume "+id+" "+status, func() bool {
		var err error
		v, err = c.vol.Get(ctx, volume.Caller{Admin: true}, id)
		return err == nil && v.Status == status
	})
	return v
}

// rootVolume is a block device mapping that boots from a volume.
func rootVolume(id string, deleteOnTermination bool) obj {
	return obj{"uuid": id, "source_type": "volume", "destination_type": "volume", "boot_index": "0", "delete_on_termination": deleteOnTermination}
}

// TestBootFromVolume boots servers from volumes as Nova's clients ask
// (block_device_mapping_v2, with no image): the volume is the server's
// vda, in use by it, shown attached and with no image, and it takes no
// disk of its host; it cannot be detached nor given to a second server, and the server cannot be
// snapshotted as an image. A blank volume made for the server at boot
// goes with it when asked to, the root volume it was given stays, as
// volumes_attached says from 2.3.
func TestBootFromVolume(t *testing.T) {
	c := newCloud(t)
	plain := c.volumeOf(t, 1, false)
	status, body := c.do(t, "alice", "POST", "/servers", obj{"server": obj{"name": "x", "imageRef": "", "flavorRef": "1",
		"block_device_mapping_v2": []obj{rootVolume(plain, false)}}})
	if status != http.StatusBadRequest || !strings.Contains(body["badRequest"].(obj)["message"].(string), "is not bootable") {
		t.Errorf("booting from a volume that is not bootable: %d %v, want 400", status, body)
	}
	c.waitVolume(t, plain, trustack.VolumeAvailable)

	root := c.volumeOf(t, 1, true)
	vm := c.boot(t, "alice", "vm", obj{"imageRef": "", "block_device_mapping_v2": []obj{
		rootVolume(root, false),
		{"source_type": "blank", "destination_type": "volume", "volume_size": 1, "delete_on_termination": true},
	}})
	srv := c.must(t, http.StatusOK, "alice", "GET", "/servers/"+vm, nil)["server"].(obj)
	if srv["image"] != "" {
		t.Errorf("image of a server booted from a volume: %v, want \"\"", srv["image"])
	}
	attached := srv["os-extended-volumes:volumes_attached"].([]any)
	if len(attached) != 2 {
		t.Fatalf("volumes_attached: %v, want the root volume and the blank one", attached)
	}
	disks := c.hv.Volumes(vm)
	if disks["vda"].VolumeID != root || disks["vdc"].VolumeID == "" {
		t.Errorf("the server's disks on its host: %+v, want %s at vda and the blank volume at vdc", disks, root)
	}
	blank := disks["vdc"].VolumeID
	// From 2.3 each attached volume says whether it goes with the server.
	if _, has := item(attached, 0)["delete_on_termination"]; has {
		t.Errorf("volumes_attached at 2.1: %v, want no delete_on_termination", attached)
	}
	for _, a := range c.at("2.3").must(t, http.StatusOK, "alice", "GET", "/servers/"+vm, nil)["server"].(obj)["os-extended-volumes:volumes_attached"].([]any) {
		if got, want := a.(obj)["delete_on_termination"], a.(obj)["id"] == blank; got != want {
			t.Errorf("volume %v at 2.3: delete_on_termination %v, want %v", a.(obj)["id"], got, want)
		}
	}
	hv := item(c.must(t, http.StatusOK, "admin", "GET", "/os-hypervisors/detail", nil)["hypervisors"], 0)
	if hv["local_gb_used"] != 0.0 || hv["memory_mb_used"] == 0.0 {
		t.Errorf("the host's use with a server booted from a volume: %v GiB of disk, %v MiB of memory; want no disk, its memory",
			hv["local_gb_used"], hv["memory_mb_used"])
	}
	if v := c.waitVolume(t, root, trustack.VolumeInUse); v.Attachment.ServerID != vm || v.Attachment.Device != "/dev/vda" {
		t.Errorf("the root volume's attachment: %+v, want server %s at /dev/vda", v.Attachment, vm)
	}

	for _, tc := range []struct {
		name, method, path string
		body               any
	}{
		{"detach the root volume", "DELETE", "/servers/" + vm + "/os-volume_attachments/" + root, nil},
		{"snapshot the server as an image", "POST", "/servers/" + vm + "/action", obj{"createImage": obj{"name": "snap"}}},
		{"boot a second server from the volume in use", "POST", "/servers", obj{"server": obj{"name": "y", "imageRef": "", "flavorRef": "1",
			"block_device_mapping_v2": []obj{rootVolume(root, false)}}}},
	} {
		if status, body := c.do(t, "alice", tc.method, tc.path, tc.body); status != http.StatusBadRequest {
			t.Errorf("%s: %d %v, want 400", tc.name, status, body)
		}
	}

	c.must(t, http.StatusNoContent, "alice", "DELETE", "/servers/"+vm, nil)
	c.waitVolume(t, root, trustack.VolumeAvailable)
	waitFor(t, "the blank volume deleted with its server", func() bool {
		_, err := c.vol.Get(ctx, volume.Caller{Admin: true}, blank)
		return trustack.ErrorCode(err) == trustack.ENOTFOUND
	})
}

// TestBlockDeviceMappingRefusals checks that block device mappings that
// cannot be are bad requests that make nothing, as Nova's.
func TestBlockDeviceMappingRefusals(t *testing.T) {
	c := newCloud(t)
	vol := c.volumeOf(t, 1, true)
	for _, tc := range []struct {
		name     string
		imageRef string
		bdm      []obj
	}{
		{"no image and no root volume", "", nil},
		{"no root", "", []obj{{"uuid": vol, "source_type": "volume", "destination_type": "volume"}}},
		{"two roots", "", []obj{rootVolume(vol, false), {"uuid": c.image, "source_type": "image", "destination_type": "volume", "boot_index": 0, "volume_size": 1}}},
		{"unknown source", "", []obj{{"uuid": vol, "source_type": "cd", "destination_type": "volume", "boot_index": 0}}},
		{"unknown destination", c.image, []obj{
			{"uuid": c.image, "source_type": "image", "destination_type": "local", "boot_index": 0, "delete_on_termination": true},
			{"uuid": vol, "source_type": "volume", "destination_type": "invalid"}}},
		{"unknown key", "", []obj{{"uuid": vol, "source_type": "volume", "destination_type": "volume", "boot_index": 0, "color": "red"}}},
		{"volume not found", "", []obj{rootVolume("6d4c0b6e-7d3c-4b38-9a55-0c8d9d1e2f3a", false)}},
		{"image to volume without a size", "", []obj{{"uuid": c.image, "source_type": "image", "destination_type": "volume", "boot_index": 0}}},
		{"a swap disk", c.image, []obj{{"source_type": "blank", "destination_type": "local", "guest_format": "swap", "volume_size": 1, "boot_index": -1}}},
		{"local image other than imageRef", c.image, []obj{{"uuid": vol, "source_type": "image", "destination_type": "local", "boot_index": 0}}},
		{"delete_on_termination not a boolean", "", []obj{{"uuid": vol, "source_type": "volume", "destination_type": "volume", "boot_index": 0, "delete_on_termination": "maybe"}}},
	} {
		server := obj{"name": "x", "imageRef": tc.imageRef, "flavorRef": "1"}
		if tc.bdm != nil {
			server["block_device_mapping_v2"] = tc.bdm
		}
		if status, body := c.do(t, "alice", "POST", "/servers", obj{"server": server}); status != http.StatusBadRequest {
			t.Errorf("%s: %d %v, want 400", tc.name, status, body)
		}
	}
	if v := c.waitVolume(t, vol, trustack.VolumeAvailable); v.Attachment.ID != "" {
		t.Errorf("the volume after the refusals: %+v, want available and attached to nothing", v)
	}
	if list := c.must(t, http.StatusOK, "alice", "GET", "/servers", nil)["servers"].([]any); len(list) != 0 {
		t.Errorf("servers after the refusals: %v, want none", list)
	}
}
