package compute_test

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"strings"
	"testing"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/compute"
	"github.com/trustack/trustack/images"
)

// TestSnapshotUploadsThroughTheImageAPI has the agent upload a server's
// disk to the image API over HTTP, with the user's token.
func TestSnapshotUploadsThroughTheImageAPI(t *testing.T) {
	t.Parallel()
	c := newCloud(t, cloudOptions{Hosts: 1, ImageAPI: true})
	srv := c.boot(t, "source")
	caller := c.as(c.user)
	id, err := c.ctl.svc.CreateImage(ctx, caller, srv.ID, "backup", map[string]string{"purpose": "nightly"})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.waitServer(t, srv.ID, "the snapshot to end", func(s *trustack.Server) bool { return true }); got.VMState != trustack.VMActive || got.Fault != nil {
		t.Errorf("after the snapshot: %s with fault %+v, want ACTIVE without one", compute.Status(got), got.Fault)
	}

	owner := images.Caller{ProjectID: c.user.ProjectID}
	img, f, err := c.images.Download(ctx, owner, id)
	if err != nil {
		t.Fatal(err)
	}
	if f == nil {
		t.Fatalf("image %s (%s) has no data", id, img.Status)
	}
	data, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("trustack fake disk of server %s (source), from image %s, taken at ", srv.ID, c.imageID); !strings.HasPrefix(string(data), want) {
		t.Errorf("image data %q, want it to start %q", data, want)
	}
	sum := md5.Sum(data)
	if img.Status != trustack.ImageActive || img.Size != int64(len(data)) || img.Checksum != hex.EncodeToString(sum[:]) {
		t.Errorf("image %s, %d bytes, checksum %s; want active, %d bytes, %x", img.Status, img.Size, img.Checksum, len(data), sum)
	}
	if img.Name != "backup" || img.Owner != c.user.ProjectID || img.Visibility != trustack.VisibilityPrivate ||
		img.DiskFormat != "raw" || img.ContainerFormat != "bare" || img.MinDisk != srv.Flavor.Disk {
		t.Errorf("image %+v: want backup, owned by %s, private, raw, bare, min_disk %d", img, c.user.ProjectID, srv.Flavor.Disk)
	}
	wantProps := map[string]string{"image_type": "snapshot", "instance_uuid": srv.ID, "base_image_ref": c.imageID, "user_id": c.user.UserID, "purpose": "nightly"}
	if !maps.Equal(img.Properties, wantProps) {
		t.Errorf("image properties %v, want %v", img.Properties, wantProps)
	}
	a := c.action(t, srv.ID, caller.RequestID)
	if a.Action != "createImage" {
		t.Errorf("action %q, want createImage", a.Action)
	}
	wantEvent(t, a, "compute_snapshot_instance", "Success")
}

func TestFailedSnapshotKillsTheImage(t *testing.T) {
	t.Parallel()
	c := newCloud(t, cloudOptions{Hosts: 1, ImageAPI: true})
	srv := c.boot(t, "source")
	for _, tc := range []struct {
		name  string
		setup func(caller *compute.Caller)
		fault string // in the server's fault
	}{
		{"the hypervisor fails", func(*compute.Caller) {
			c.host(t, srv.Host).hv.Fail("snapshot", trustack.Errorf(trustack.EUNAVAILABLE, "the disk is busy"))
		}, "the disk is busy"},
		{"the image API refuses the token", func(caller *compute.Caller) { caller.Token = "not-a-token" },
			"the image service answered 401 Unauthorized"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			caller := c.as(c.user)
			tc.setup(&caller)
			id, err := c.ctl.svc.CreateImage(ctx, caller, srv.ID, "backup", nil)
			if err != nil {
				t.Fatal(err)
			}
			got := c.waitServer(t, srv.ID, "the snapshot to end", func(s *trustack.Server) bool { return true })
			if got.VMState != trustack.VMActive || got.Fault == nil || !strings.Contains(got.Fault.Message, "snapshot of "+srv.ID) || !strings.Contains(got.Fault.Message, tc.fault) {
				t.Errorf("after a failed snapshot: %s with fault %+v, want ACTIVE with a fault about the snapshot that says %q", compute.Status(got), got.Fault, tc.fault)
			}
			img, err := c.images.Image(ctx, images.Caller{ProjectID: c.user.ProjectID}, id)
			if err != nil {
				t.Fatal(err)
			}
			if img.Status != trustack.ImageKilled {
				t.Errorf("image %s, want killed", img.Status)
			}
			wantEvent(t, c.action(t, srv.ID, caller.RequestID), "compute_snapshot_instance", "Error")
		})
	}
}

// TestSnapshotCutOffByARestart restarts the controller while a server's
// snapshot is under way: once after its data arrived, and the snapshot
// is done; once before, and it fails, its image killed.
func TestSnapshotCutOffByARestart(t *testing.T) {
	t.Parallel()
	c := newCloud(t, cloudOptions{Hosts: 1, ImageAPI: true})
	srv := c.boot(t, "source")
	owner := images.Caller{ProjectID: c.user.ProjectID}
	done, err := c.ctl.svc.CreateImage(ctx, c.as(c.user), srv.ID, "done", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.waitServer(t, srv.ID, "the snapshot to end", func(s *trustack.Server) bool { return true })
	restartDuringSnapshot := func(cutOff *trustack.Image) *trustack.Server {
		t.Helper()
		c.ctl.stop()
		if cutOff != nil {
			if err := c.images.CreateSnapshot(ctx, c.user.ProjectID, cutOff); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := c.store.UpdateServer(ctx, srv.ID, func(cur *trustack.Server) error {
			cur.TaskState = trustack.TaskImageSnapshot
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		c.ctl = c.startController(t)
		return c.waitServer(t, srv.ID, "the snapshot task to end", func(s *trustack.Server) bool { return s.TaskState == "" })
	}

	if got := restartDuringSnapshot(nil); got.VMState != trustack.VMActive || got.Fault != nil {
		t.Errorf("restarted once the snapshot's data arrived: %s with fault %+v, want ACTIVE without one", compute.Status(got), got.Fault)
	}
	cutOff := &trustack.Image{Name: "cut off", DiskFormat: "raw", ContainerFormat: "bare", Visibility: trustack.VisibilityPrivate,
		Properties: map[string]string{"image_type": "snapshot", "instance_uuid": srv.ID}}
	if got := restartDuringSnapshot(cutOff); got.VMState != trustack.VMActive || got.Fault == nil || !strings.Contains(got.Fault.Message, "cut off by a restart") {
		t.Errorf("restarted before the snapshot's data arrived: %s with fault %+v, want ACTIVE with a fault saying so", compute.Status(got), got.Fault)
	}
	for id, want := range map[string]string{done: trustack.ImageActive, cutOff.ID: trustack.ImageKilled} {
		if img, err := c.images.Image(ctx, owner, id); err != nil || img.Status != want {
			t.Errorf("image %s: %v, status %v, want %s", id, err, img, want)
		}
	}
}
