package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/trustack/trustack"
)

// defaultVolumeType is the type every store starts with.
func defaultVolumeType(t testing.TB, s Store) *trustack.VolumeType {
	t.Helper()
	vt, err := s.VolumeTypeByName(ctx, trustack.DefaultVolumeType)
	must(t, err)
	return vt
}

func newVolume(id, project, typeID string, size int) *trustack.Volume {
	return &trustack.Volume{ID: id, ProjectID: project, UserID: "u-" + project, Name: "name-" + id, Size: size, Status: trustack.VolumeCreating,
		TypeID: typeID, AvailabilityZone: "nova", CreatedAt: start, UpdatedAt: start}
}

// testVolumeTypes: the default type is there from the start; names are
// unique, on creation and on update; a type in use cannot be deleted.
func testVolumeTypes(t *testing.T, s Store) {
	def := defaultVolumeType(t, s)
	if !def.Public || len(def.ExtraSpecs) != 0 {
		t.Errorf("the default type %+v is not public with empty extra specs", def)
	}
	fast := &trustack.VolumeType{ID: "t-fast", Name: "fast", Description: "SSDs", Public: true,
		ExtraSpecs: map[string]string{"volume_backend_name": "lvm"}, CreatedAt: start, UpdatedAt: start}
	must(t, s.CreateVolumeType(ctx, fast))
	got, err := s.VolumeType(ctx, "t-fast")
	must(t, err)
	equal(t, got, fast)
	reason(t, s.CreateVolumeType(ctx, &trustack.VolumeType{ID: "t-other", Name: "fast", ExtraSpecs: map[string]string{}}), trustack.ECONFLICT, "VolumeTypeExists")
	code(t, s.CreateVolumeType(ctx, &trustack.VolumeType{ID: "t-fast", Name: "faster", ExtraSpecs: map[string]string{}}), trustack.ECONFLICT)
	must(t, s.CreateVolumeType(ctx, &trustack.VolumeType{ID: "t-slow", Name: "slow", CreatedAt: start, UpdatedAt: start}))

	_, err = s.UpdateVolumeType(ctx, "t-slow", func(vt *trustack.VolumeType) error { vt.Name = "fast"; return nil })
	reason(t, err, trustack.ECONFLICT, "VolumeTypeExists")
	updated, err := s.UpdateVolumeType(ctx, "t-slow", func(vt *trustack.VolumeType) error {
		vt.Name, vt.Public, vt.ExtraSpecs = "archive", false, map[string]string{"volume_backend_name": "file"}
		return nil
	})
	must(t, err)
	got, err = s.VolumeType(ctx, "t-slow")
	must(t, err)
	equal(t, got, updated)
	if got.Name != "archive" || got.Public || got.ExtraSpecs["volume_backend_name"] != "file" {
		t.Errorf("after an update, got %+v", got)
	}
	list, err := s.VolumeTypes(ctx)
	must(t, err)
	var names []string
	for _, vt := range list {
		names = append(names, vt.Name)
	}
	equal(t, names, []string{trustack.DefaultVolumeType, "archive", "fast"})
	_, err = s.VolumeTypeByName(ctx, "slow")
	reason(t, err, trustack.ENOTFOUND, "VolumeTypeNotFoundByName")
	_, err = s.VolumeType(ctx, "t-none")
	reason(t, err, trustack.ENOTFOUND, "VolumeTypeNotFound")

	// Shared with projects, each once; the shares go with the type.
	must(t, s.AddVolumeTypeAccess(ctx, "t-fast", "p2"))
	must(t, s.AddVolumeTypeAccess(ctx, "t-fast", "p1"))
	reason(t, s.AddVolumeTypeAccess(ctx, "t-fast", "p1"), trustack.ECONFLICT, "VolumeTypeAccessExists")
	reason(t, s.AddVolumeTypeAccess(ctx, "t-none", "p1"), trustack.ENOTFOUND, "VolumeTypeNotFound")
	access, err := s.VolumeTypeAccess(ctx, "t-fast")
	must(t, err)
	equal(t, access, []string{"p1", "p2"})
	must(t, s.RemoveVolumeTypeAccess(ctx, "t-fast", "p2"))
	reason(t, s.RemoveVolumeTypeAccess(ctx, "t-fast", "p2"), trustack.ENOTFOUND, "VolumeTypeAccessNotFound")

	must(t, s.CreateVolume(ctx, newVolume("v1", "p1", "t-fast", 1), nil))
	reason(t, s.DeleteVolumeType(ctx, "t-fast"), trustack.ECONFLICT, "VolumeTypeInUse")
	must(t, s.DeleteVolume(ctx, "v1"))
	must(t, s.DeleteVolumeType(ctx, "t-fast"))
	reason(t, s.DeleteVolumeType(ctx, "t-fast"), trustack.ENOTFOUND, "VolumeTypeNotFound")
	access, err = s.VolumeTypeAccess(ctx, "t-fast")
	must(t, err)
	equal(t, len(access), 0)
}

// testVolumes: a volume keeps what it was given; lists filter; an update
// that fails, or would move the volume to another project, changes
// nothing.
func testVolumes(t *testing.T, s Store) {
	def := defaultVolumeType(t, s)
	v := newVolume("v1", "p1", def.ID, 2)
	v.Description, v.Bootable, v.ImageID = "a disk", true, "img-1"
	v.Metadata, v.ImageMetadata = map[string]string{"purpose": "db"}, map[string]string{"os_distro": "debian"}
	v.TaskOwner = "controller-1"
	must(t, s.CreateVolume(ctx, v, nil))
	got, err := s.Volume(ctx, "v1")
	must(t, err)
	equal(t, got, v)
	code(t, s.CreateVolume(ctx, newVolume("v1", "p1", def.ID, 1), nil), trustack.ECONFLICT)
	reason(t, s.CreateVolume(ctx, newVolume("v2", "p1", "t-none", 1), nil), trustack.ENOTFOUND, "VolumeTypeNotFound")
	later := newVolume("v2", "p1", def.ID, 1)
	later.CreatedAt = start.Add(time.Second)
	must(t, s.CreateVolume(ctx, later, nil))
	must(t, s.CreateVolume(ctx, newVolume("v3", "p2", def.ID, 1), nil))

	listed := func(f trustack.VolumeFilter) []string {
		t.Helper()
		list, err := s.Volumes(ctx, f)
		must(t, err)
		return ids(list, func(v *trustack.Volume) string { return v.ID })
	}
	bootable := true
	equal(t, listed(trustack.VolumeFilter{}), []string{"v1", "v3", "v2"}) // oldest first
	equal(t, listed(trustack.VolumeFilter{ProjectID: "p1"}), []string{"v1", "v2"})
	equal(t, listed(trustack.VolumeFilter{Name: "name-v2"}), []string{"v2"})
	equal(t, listed(trustack.VolumeFilter{Bootable: &bootable}), []string{"v1"})
	equal(t, listed(trustack.VolumeFilter{IDs: []string{"v3", "v1"}}), []string{"v1", "v3"})
	equal(t, listed(trustack.VolumeFilter{IDs: []string{}}), []string{})
	equal(t, listed(trustack.VolumeFilter{TypeID: def.ID, Status: trustack.VolumeCreating}), []string{"v1", "v3", "v2"})

	updated, err := s.UpdateVolume(ctx, "v2", nil, func(v *trustack.Volume) error {
		v.Status, v.Host, v.UpdatedAt = trustack.VolumeAvailable, "storage-1@file#file", start.Add(time.Minute)
		v.ImageBytesCopied = 5 << 30 // past 32 bits
		return nil
	})
	must(t, err)
	got, err = s.Volume(ctx, "v2")
	must(t, err)
	equal(t, got, updated)
	equal(t, listed(trustack.VolumeFilter{Status: trustack.VolumeAvailable}), []string{"v2"})

	// An attachment keeps its status, its connection and its times, and
	// finds its volume.
	attached, err := s.UpdateVolume(ctx, "v1", nil, func(v *trustack.Volume) error {
		v.Status = trustack.VolumeAttaching
		v.Attachment = trustack.VolumeAttachment{ID: "a1", ServerID: "s1", Host: "compute-1", Device: "/dev/vdc",
			Status: trustack.AttachAttaching, CreatedAt: start.Add(2 * time.Second),
			Connection: &trustack.VolumeConnection{Host: "10.0.0.5", Port: 10809, Name: "v1", PSKIdentity: "trustack-v1", PSKSecret: "00ff"}}
		return nil
	})
	must(t, err)
	got, err = s.Volume(ctx, "v1")
	must(t, err)
	equal(t, got, attached)
	equal(t, listed(trustack.VolumeFilter{AttachmentID: "a1"}), []string{"v1"})
	equal(t, listed(trustack.VolumeFilter{AttachmentID: "a9"}), []string{})
	detached, err := s.UpdateVolume(ctx, "v1", nil, func(v *trustack.Volume) error {
		v.Status, v.Attachment = trustack.VolumeAvailable, trustack.VolumeAttachment{}
		return nil
	})
	must(t, err)
	got, err = s.Volume(ctx, "v1")
	must(t, err)
	equal(t, got, detached)
	if got.Attachment.Connection != nil {
		t.Errorf("a volume let go keeps the connection %+v", got.Attachment.Connection)
	}

	refused := errors.New("refused")
	_, err = s.UpdateVolume(ctx, "v2", nil, func(v *trustack.Volume) error { v.Status = trustack.VolumeError; return refused })
	if err != refused {
		t.Fatalf("got %v, want fn's error as it is", err)
	}
	_, err = s.UpdateVolume(ctx, "v2", nil, func(v *trustack.Volume) error { v.ProjectID = "p2"; return nil })
	code(t, err, trustack.EINVALID)
	_, err = s.UpdateVolume(ctx, "v2", nil, func(v *trustack.Volume) error { v.ID = "v9"; return nil })
	code(t, err, trustack.EINVALID)
	got, err = s.Volume(ctx, "v2")
	must(t, err)
	equal(t, got, updated)

	must(t, s.DeleteVolume(ctx, "v2"))
	_, err = s.Volume(ctx, "v2")
	reason(t, err, trustack.ENOTFOUND, "VolumeNotFound")
	reason(t, s.DeleteVolume(ctx, "v2"), trustack.ENOTFOUND, "VolumeNotFound")
	_, err = s.UpdateVolume(ctx, "v2", nil, func(*trustack.Volume) error { return nil })
	reason(t, err, trustack.ENOTFOUND, "VolumeNotFound")
}

// testVolumeQuotas: a project's volumes stay within its limits of count
// and GiB, on creation and when one grows; limits set apart from the
// defaults are kept per project.
func testVolumeQuotas(t *testing.T, s Store) {
	got, err := s.VolumeQuotas(ctx, "p1")
	must(t, err)
	equal(t, got, map[string]int{})
	must(t, s.SetVolumeQuotas(ctx, "p1", map[string]int{trustack.QuotaVolumes: 2, trustack.QuotaGigabytes: -1}))
	must(t, s.SetVolumeQuotas(ctx, "p1", map[string]int{trustack.QuotaGigabytes: 5}))
	got, err = s.VolumeQuotas(ctx, "p1")
	must(t, err)
	equal(t, got, map[string]int{trustack.QuotaVolumes: 2, trustack.QuotaGigabytes: 5})
	must(t, s.DeleteVolumeQuotas(ctx, "p1"))
	got, err = s.VolumeQuotas(ctx, "p1")
	must(t, err)
	equal(t, got, map[string]int{})

	def := defaultVolumeType(t, s).ID
	limits := map[string]int{trustack.QuotaVolumes: 2, trustack.QuotaGigabytes: 5}
	must(t, s.CreateVolume(ctx, newVolume("v1", "p1", def, 1), limits))
	reason(t, s.CreateVolume(ctx, newVolume("v2", "p1", def, 5), limits), trustack.EOVERQUOTA, "VolumeSizeExceedsAvailableQuota")
	must(t, s.CreateVolume(ctx, newVolume("v2", "p1", def, 3), limits))
	reason(t, s.CreateVolume(ctx, newVolume("v3", "p1", def, 1), limits), trustack.EOVERQUOTA, "VolumeLimitExceeded")
	must(t, s.CreateVolume(ctx, newVolume("v3", "p2", def, 5), limits)) // another project's

	grow := func(size int) func(*trustack.Volume) error {
		return func(v *trustack.Volume) error { v.Size = size; return nil }
	}
	_, err = s.UpdateVolume(ctx, "v2", limits, grow(5))
	reason(t, err, trustack.EOVERQUOTA, "VolumeSizeExceedsAvailableQuota")
	_, err = s.UpdateVolume(ctx, "v2", limits, grow(4))
	must(t, err)
	usage, err := s.VolumeUsage(ctx, "p1")
	must(t, err)
	equal(t, usage, map[string]int{trustack.QuotaVolumes: 2, trustack.QuotaSnapshots: 0, trustack.QuotaGigabytes: 5})
	// At its limit, a project's volumes still change in other ways.
	_, err = s.UpdateVolume(ctx, "v2", limits, func(v *trustack.Volume) error { v.Status = trustack.VolumeAvailable; return nil })
	must(t, err)
	_, err = s.UpdateVolume(ctx, "v2", nil, grow(9)) // no limit
	must(t, err)
}

// testVolumeQuotaUnderConcurrency: racing creations in one project stop
// at its limit, however they interleave.
func testVolumeQuotaUnderConcurrency(t *testing.T, s Store) {
	const limit = 5
	def := defaultVolumeType(t, s).ID
	created := race(t, 20, trustack.EOVERQUOTA, "VolumeLimitExceeded", func(i int) error {
		return s.CreateVolume(ctx, newVolume(fmt.Sprintf("v%02d", i), "p", def, 1), map[string]int{trustack.QuotaVolumes: limit})
	})
	list, err := s.Volumes(ctx, trustack.VolumeFilter{})
	must(t, err)
	if created != limit || len(list) != limit {
		t.Errorf("got %d volumes created and %d stored, want %d of each", created, len(list), limit)
	}
}

// testSnapshots: a snapshot is of a volume in a status the caller names,
// within its project's snapshots and gigabytes, which count it; it is
// found, listed, changed and deleted as volumes are.
func testSnapshots(t *testing.T, s Store) {
	def := defaultVolumeType(t, s).ID
	must(t, s.CreateVolume(ctx, newVolume("v1", "p1", def, 2), nil))
	snap := func(id string) *trustack.VolumeSnapshot {
		return &trustack.VolumeSnapshot{ID: id, ProjectID: "p1", VolumeID: "v1", Name: "name-" + id, Size: 2,
			Status: trustack.SnapshotCreating, Metadata: map[string]string{"k": id}, CreatedAt: start, UpdatedAt: start}
	}
	available := []string{trustack.VolumeAvailable}
	reason(t, s.CreateSnapshot(ctx, snap("s1"), available, nil), trustack.EINVALID, "InvalidVolume") // v1 is creating
	_, err := s.UpdateVolume(ctx, "v1", nil, func(v *trustack.Volume) error { v.Status = trustack.VolumeAvailable; return nil })
	must(t, err)
	limits := map[string]int{trustack.QuotaSnapshots: 1, trustack.QuotaGigabytes: 10}
	must(t, s.CreateSnapshot(ctx, snap("s1"), available, limits))
	reason(t, s.CreateSnapshot(ctx, snap("s2"), available, limits), trustack.EOVERQUOTA, "SnapshotLimitExceeded")
	reason(t, s.CreateSnapshot(ctx, snap("s2"), available, map[string]int{trustack.QuotaGigabytes: 5}), trustack.EOVERQUOTA, "VolumeSizeExceedsAvailableQuota")
	missing := snap("s3")
	missing.VolumeID = "v9"
	reason(t, s.CreateSnapshot(ctx, missing, available, nil), trustack.ENOTFOUND, "VolumeNotFound")
	usage, err := s.VolumeUsage(ctx, "p1")
	must(t, err)
	equal(t, usage, map[string]int{trustack.QuotaVolumes: 1, trustack.QuotaSnapshots: 1, trustack.QuotaGigabytes: 4})

	got, err := s.Snapshot(ctx, "s1")
	must(t, err)
	equal(t, got, snap("s1"))
	list, err := s.Snapshots(ctx, trustack.SnapshotFilter{VolumeID: "v1", Status: trustack.SnapshotCreating})
	must(t, err)
	equal(t, len(list), 1)
	updated, err := s.UpdateSnapshot(ctx, "s1", func(x *trustack.VolumeSnapshot) error {
		x.Status, x.Progress, x.TaskOwner = trustack.SnapshotDeleting, "80%", "controller-1"
		return nil
	})
	must(t, err)
	got, err = s.Snapshot(ctx, "s1")
	must(t, err)
	equal(t, got, updated)
	_, err = s.UpdateSnapshot(ctx, "s1", func(x *trustack.VolumeSnapshot) error { x.Size = 9; return nil })
	code(t, err, trustack.EINVALID)
	must(t, s.DeleteSnapshot(ctx, "s1"))
	_, err = s.Snapshot(ctx, "s1")
	reason(t, err, trustack.ENOTFOUND, "SnapshotNotFound")
}
