// Package lvm keeps volumes as logical volumes of an LVM volume group, as
// nova-volume did and Cinder's LVM driver does: the backend of storage
// hosts with disks of their own. The operator makes the group (vgcreate);
// New makes a thin pool in it, trustack-pool, that holds every volume.
//
// A volume is a thin logical volume named volume-ID: it takes the space
// its data does, and reads as zeros where it was never written (the pool
// zeroes the blocks it hands out, so no volume reads a deleted one's
// data). A snapshot, _snapshot-ID (LVM reserves names that start with
// "snapshot"), is a thin snapshot of its volume, and a volume made from
// it a thin snapshot of the snapshot, grown to its size: neither copies
// data, and each stands on its own, so that deleting one changes no
// other. A volume being made from an image or a snapshot is named
// partial-ID until it is whole; New removes what such a creation cut
// short left. A volume reverted to a snapshot is replaced by a new thin
// snapshot of the snapshot, made as reverting-ID and given the volume's
// name (see Revert). QEMU opens a volume's device, /dev/GROUP/volume-ID,
// as raw.
//
// It runs lvm2's commands (lvcreate, lvs, ... with JSON reports) and
// qemu-img, as root. A Backend is safe for concurrent use: LVM locks the
// group for each command.
package lvm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/agent"
	"github.com/trustack/trustack/internal/qemuimg"
)

var _ agent.VolumeBackend = (*Backend)(nil)

// DefaultGroup is the volume group of the backend unless configured
// otherwise ([volume] volume_group).
const DefaultGroup = "trustack-volumes"

// Pool is the thin pool, in the group, that holds the volumes.
const Pool = "trustack-pool"

// Logical volumes' names: a prefix, then the ID.
const (
	volumePrefix    = "volume-"
	snapshotPrefix  = "_snapshot-"
	partialPrefix   = "partial-"
	revertingPrefix = "reverting-"
)

const gib = 1 << 30

var (
	// validID is what a volume's or snapshot's ID may be: letters,
	// digits and dashes, short enough for LVM's names (127 characters).
	validID = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z-]{0,99}$`)
	// validGroup is what LVM takes as a volume group's name.
	validGroup = regexp.MustCompile(`^[0-9A-Za-z+_.][0-9A-Za-z+_.-]{0,126}$`)
)

// Backend is a volume group's thin pool of volumes.
type Backend struct {
	group string
}

// New opens the backend on the volume group named group (DefaultGroup if
// ""), makes its thin pool if missing and removes the logical volumes of
// creations cut short. It fails if the group is missing, or if the pool is
// there but does not zero the blocks it hands out.
func New(ctx context.Context, group string) (*Backend, error) {
	if group == "" {
		group = DefaultGroup
	}
	if !validGroup.MatchString(group) || group == "." || group == ".." {
		return nil, trustack.Errorf(trustack.EINVALID, "lvm volumes: bad volume group name %q", group)
	}
	b := &Backend{group: group}
	var groups report
	if err := lvmReport(ctx, &groups, "vgs", "-o", "vg_name"); err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(groups.vgs(), func(g vg) bool { return g.Name == group }) {
		return nil, trustack.Errorf(trustack.EUNAVAILABLE, "lvm volumes: there is no volume group %s (make it: vgcreate %s DEVICE...)", group, group)
	}
	lvs, err := b.list(ctx)
	if err != nil {
		return nil, err
	}
	pool, ok := lvs[Pool]
	switch {
	case !ok:
		// Most of the group's free space: the pool's metadata and its
		// spare take some, and the rest leaves the metadata room to grow.
		if err := lvm(ctx, "lvcreate", "-q", "--type", "thin-pool", "--zero", "y", "-l", "95%FREE", "-n", Pool, group); err != nil {
			return nil, fmt.Errorf("lvm volumes: make the thin pool: %w", err)
		}
	case !pool.thinPool():
		return nil, fmt.Errorf("lvm volumes: %s/%s is not a thin pool", group, Pool)
	case !pool.zeroes():
		return nil, fmt.Errorf("lvm volumes: thin pool %s/%s does not zero new blocks, so a volume could read a deleted one's data (lvchange --zero y %s/%s)", group, Pool, group, Pool)
	}
	for lv := range lvs {
		if strings.HasPrefix(lv, partialPrefix) {
			if err := b.remove(ctx, lv); err != nil {
				return nil, fmt.Errorf("lvm volumes: remove an unfinished volume: %w", err)
			}
		}
		if id, ok := strings.CutPrefix(lv, revertingPrefix); ok {
			if err := b.finishRevert(ctx, id, lvs); err != nil {
				return nil, err
			}
		}
	}
	return b, nil
}

// name returns the logical volume's name of the volume or snapshot
// (kind) id, after prefix; EINVALID for an ID that is no name.
func name(prefix, kind, id string) (string, error) {
	if !validID.MatchString(id) {
		return "", trustack.Errorf(trustack.EINVALID, "lvm volumes: bad %s ID %q", kind, id)
	}
	return prefix + id, nil
}

// names are the logical volumes of a volume and of a snapshot.
func names(volumeID, snapshotID string) (lv, snap string, err error) {
	if lv, err = name(volumePrefix, "volume", volumeID); err == nil {
		snap, err = name(snapshotPrefix, "snapshot", snapshotID)
	}
	return lv, snap, err
}

// path is the device of the group's logical volume lv.
func (b *Backend) path(lv string) string {
	return "/dev/" + b.group + "/" + lv
}

// Capacity returns the GiB of the volume group, and those of its thin
// pool that no volume's data takes.
func (b *Backend) Capacity(ctx context.Context) (total, free int, err error) {
	var groups report
	if err := lvmReport(ctx, &groups, "vgs", "-o", "vg_name,vg_size", b.group); err != nil {
		return 0, 0, err
	}
	lvs, err := b.list(ctx)
	if err != nil {
		return 0, 0, err
	}
	pool, ok := lvs[Pool]
	if len(groups.vgs()) != 1 || !ok {
		return 0, 0, trustack.Errorf(trustack.EUNAVAILABLE, "lvm volumes: volume group %s or its thin pool %s is gone", b.group, Pool)
	}
	unused := float64(pool.Size) * (100 - float64(pool.DataPercent)) / 100
	return int(groups.vgs()[0].Size / gib), int(unused / gib), nil
}

// Create makes an empty volume of size GiB: a thin volume of the pool.
func (b *Backend) Create(ctx context.Context, id string, size int) error {
	lv, err := name(volumePrefix, "volume", id)
	if err != nil {
		return err
	}
	if size < 1 {
		return trustack.Errorf(trustack.EINVALID, "lvm volumes: volume %s: size %d GiB, want at least 1", id, size)
	}
	err = b.createThin(ctx, lv, size)
	if err == nil {
		return nil
	}
	if have, ok, lerr := b.find(ctx, lv); lerr != nil {
		return lerr
	} else if ok {
		return sameSize(id, have, size)
	}
	return fmt.Errorf("lvm volumes: create volume %s: %w", id, err)
}

// createThin makes the thin volume lv of size GiB in the pool.
func (b *Backend) createThin(ctx context.Context, lv string, size int) error {
	return lvm(ctx, "lvcreate", "-q", "--type", "thin", "--thinpool", Pool, "-V", gibs(size), "-n", lv, b.group)
}

// sameSize returns nil if the volume id there already, have, is of size
// GiB, ECONFLICT if not.
func sameSize(id string, have logicalVolume, size int) error {
	if have.Size != int64(size)*gib {
		return trustack.Errorf(trustack.ECONFLICT, "lvm volumes: volume %s is there already, of %d GiB", id, have.Size/gib)
	}
	return nil
}

// gibs is size GiB as LVM's commands take it ("g" is GiB).
func gibs(size int) string {
	return strconv.Itoa(size) + "g"
}

// CreateFromImage makes a volume of size GiB with an image's data,
// converted from its format onto the new thin volume's device.
func (b *Backend) CreateFromImage(ctx context.Context, id string, size int, image, format string) error {
	lv, err := name(volumePrefix, "volume", id)
	if err != nil {
		return err
	}
	lvs, err := b.list(ctx)
	if err != nil {
		return err
	}
	if have, ok := lvs[lv]; ok {
		return sameSize(id, have, size)
	}
	virtual, err := qemuimg.VirtualSize(ctx, image, format)
	if err != nil {
		return trustack.Errorf(trustack.EINVALID, "lvm volumes: the image is not a valid %s disk: %v", format, err)
	}
	if virtual > int64(size)*gib {
		return trustack.Errorf(trustack.EINVALID, "lvm volumes: the image's disk (%d bytes) is larger than volume %s of %d GiB", virtual, id, size)
	}
	err = b.build(ctx, id, lvs, func(partial string) error {
		if err := b.createThin(ctx, partial, size); err != nil {
			return err
		}
		return qemuimg.ConvertOnto(ctx, image, format, b.path(partial))
	})
	if err != nil {
		return fmt.Errorf("lvm volumes: create volume %s from an image: %w", id, err)
	}
	return nil
}

// build makes the volume id under its partial name with fill, then gives
// it the volume's name; a build that fails leaves nothing. lvs are the
// group's logical volumes, as they were before.
func (b *Backend) build(ctx context.Context, id string, lvs map[string]logicalVolume, fill func(partial string) error) error {
	partial := partialPrefix + id
	if _, ok := lvs[partial]; ok {
		if err := b.remove(ctx, partial); err != nil {
			return err
		}
	}
	err := fill(partial)
	if err == nil {
		err = lvm(ctx, "lvrename", "-q", b.group, partial, volumePrefix+id)
	}
	if err != nil {
		// With a context of its own: the one given may be what ended the
		// build.
		if lvs, lerr := b.list(context.WithoutCancel(ctx)); lerr == nil {
			if _, ok := lvs[partial]; ok {
				b.remove(context.WithoutCancel(ctx), partial)
			}
		}
		return err
	}
	return nil
}

// Extend grows a volume to size GiB.
func (b *Backend) Extend(ctx context.Context, id string, size int) error {
	lv, err := name(volumePrefix, "volume", id)
	if err != nil {
		return err
	}
	// lvextend refuses a size that is not larger.
	err = lvm(ctx, "lvextend", "-q", "-L", gibs(size), b.group+"/"+lv)
	if err == nil {
		return nil
	}
	have, ok, lerr := b.find(ctx, lv)
	switch {
	case lerr != nil:
		return lerr
	case !ok:
		return trustack.Errorf(trustack.ENOTFOUND, "lvm volumes: no volume %s", id)
	case int64(size)*gib < have.Size:
		return trustack.Errorf(trustack.EINVALID, "lvm volumes: volume %s has %d GiB, more than %d", id, have.Size/gib, size)
	case int64(size)*gib == have.Size:
		return nil
	}
	return fmt.Errorf("lvm volumes: extend volume %s: %w", id, err)
}

// Delete removes a volume, its blocks returned to the pool; ECONFLICT
// while a process has its device open. (lvremove would refuse too, but
// only after retrying for seconds, as for a device udev has open a
// moment.)
func (b *Backend) Delete(ctx context.Context, id string) error {
	lv, err := name(volumePrefix, "volume", id)
	if err != nil {
		return err
	}
	have, ok, err := b.find(ctx, lv)
	switch {
	case err != nil:
		return err
	case !ok:
		return nil
	case have.open():
		return trustack.Errorf(trustack.ECONFLICT, "lvm volumes: volume %s is open", id)
	}
	if err := b.remove(ctx, lv); err != nil {
		return fmt.Errorf("lvm volumes: delete volume %s: %w", id, err)
	}
	return nil
}

// remove removes the group's logical volume lv.
func (b *Backend) remove(ctx context.Context, lv string) error {
	return lvm(ctx, "lvremove", "-q", "-f", b.group+"/"+lv)
}

// Volumes returns the group's volumes, with their sizes.
func (b *Backend) Volumes(ctx context.Context) (map[string]int, error) {
	lvs, err := b.list(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for lv, v := range lvs {
		if id, ok := strings.CutPrefix(lv, volumePrefix); ok && validID.MatchString(id) {
			out[id] = int(v.Size / gib)
		}
	}
	return out, nil
}

// Locate returns a volume's device, raw, activating the volume if it is
// not (as after a restart that activated only the pool).
func (b *Backend) Locate(ctx context.Context, id string) (path, format string, err error) {
	lv, err := name(volumePrefix, "volume", id)
	if err != nil {
		return "", "", err
	}
	// LVM makes an active volume's device, and only an active one's.
	path = b.path(lv)
	if st, err := os.Stat(path); err == nil && st.Mode()&fs.ModeDevice != 0 {
		return path, "raw", nil
	}
	have, ok, err := b.find(ctx, lv)
	switch {
	case err != nil:
		return "", "", err
	case !ok:
		return "", "", trustack.Errorf(trustack.ENOTFOUND, "lvm volumes: no volume %s", id)
	case !have.active():
		if err := lvm(ctx, "lvchange", "-q", "-ay", b.group+"/"+lv); err != nil {
			return "", "", fmt.Errorf("lvm volumes: activate volume %s: %w", id, err)
		}
	}
	return path, "raw", nil
}

// Snapshot keeps a volume's present data as a thin snapshot of it, which
// LVM leaves inactive (no device) until a volume is made from it.
func (b *Backend) Snapshot(ctx context.Context, volumeID, snapshotID string) error {
	lv, snap, err := names(volumeID, snapshotID)
	if err != nil {
		return err
	}
	lvs, err := b.list(ctx)
	if err != nil {
		return err
	}
	if _, ok := lvs[snap]; ok {
		return nil
	}
	have, ok := lvs[lv]
	switch {
	case !ok:
		return trustack.Errorf(trustack.ENOTFOUND, "lvm volumes: no volume %s", volumeID)
	case have.open():
		return trustack.Errorf(trustack.ECONFLICT, "lvm volumes: volume %s is open, its data changing", volumeID)
	}
	if err := lvm(ctx, "lvcreate", "-q", "--snapshot", "-n", snap, b.group+"/"+lv); err != nil {
		return fmt.Errorf("lvm volumes: snapshot volume %s: %w", volumeID, err)
	}
	return nil
}

// CreateFromSnapshot makes a volume with a snapshot's data: a thin
// snapshot of it, active, grown to size GiB.
func (b *Backend) CreateFromSnapshot(ctx context.Context, id, snapshotID string, size int) error {
	lv, snap, err := names(id, snapshotID)
	if err != nil {
		return err
	}
	lvs, err := b.list(ctx)
	if err != nil {
		return err
	}
	from, ok := lvs[snap]
	if !ok {
		return trustack.Errorf(trustack.ENOTFOUND, "lvm volumes: no snapshot %s", snapshotID)
	}
	if have, ok := lvs[lv]; ok {
		return sameSize(id, have, size)
	}
	if int64(size)*gib < from.Size {
		return trustack.Errorf(trustack.EINVALID, "lvm volumes: volume %s of %d GiB cannot hold snapshot %s of %d GiB", id, size, snapshotID, from.Size/gib)
	}
	err = b.build(ctx, id, lvs, func(partial string) error {
		// -kn: the new volume is activated as volumes are, unlike the
		// snapshots LVM skips.
		if err := lvm(ctx, "lvcreate", "-q", "--snapshot", "-kn", "-ay", "-n", partial, b.group+"/"+snap); err != nil {
			return err
		}
		if int64(size)*gib == from.Size {
			return nil
		}
		return lvm(ctx, "lvextend", "-q", "-L", gibs(size), b.group+"/"+partial)
	})
	if err != nil {
		return fmt.Errorf("lvm volumes: create volume %s from snapshot %s: %w", id, snapshotID, err)
	}
	return nil
}

// DeleteSnapshot removes a snapshot. The volumes made from it keep their
// data: thin snapshots share blocks, and none depends on another.
func (b *Backend) DeleteSnapshot(ctx context.Context, snapshotID string) error {
	snap, err := name(snapshotPrefix, "snapshot", snapshotID)
	if err != nil {
		return err
	}
	err = b.remove(ctx, snap)
	if err == nil {
		return nil
	}
	if _, ok, lerr := b.find(ctx, snap); lerr != nil || !ok {
		return lerr
	}
	return fmt.Errorf("lvm volumes: delete snapshot %s: %w", snapshotID, err)
}

// Revert puts a volume's data back as a snapshot kept it: a new thin
// snapshot of the snapshot, active, grown to the volume's size, made as
// reverting-ID, then given the volume's name once the volume's logical
// volume is removed. Neither step copies data, and the snapshot stays as
// it was. (Cinder's LVM driver merges the snapshot into the volume
// instead, with lvconvert --merge, and takes it again after: the merge
// uses the snapshot up, and one cut short leaves none to revert to
// again.) A revert cut short between the removal and the rename is
// finished by the next, or by New.
func (b *Backend) Revert(ctx context.Context, volumeID, snapshotID string) error {
	lv, snap, err := names(volumeID, snapshotID)
	if err != nil {
		return err
	}
	reverting := revertingPrefix + volumeID
	lvs, err := b.list(ctx)
	if err != nil {
		return err
	}
	if err := b.finishRevert(ctx, volumeID, lvs); err != nil {
		return err
	}
	if lvs, err = b.list(ctx); err != nil {
		return err
	}
	from, ok := lvs[snap]
	if !ok {
		return trustack.Errorf(trustack.ENOTFOUND, "lvm volumes: no snapshot %s", snapshotID)
	}
	have, ok := lvs[lv]
	switch {
	case !ok:
		return trustack.Errorf(trustack.ENOTFOUND, "lvm volumes: no volume %s", volumeID)
	case have.open():
		return trustack.Errorf(trustack.ECONFLICT, "lvm volumes: volume %s is open", volumeID)
	case from.Size > have.Size:
		return trustack.Errorf(trustack.EINVALID, "lvm volumes: snapshot %s of %d GiB is larger than volume %s of %d GiB", snapshotID, from.Size/gib, volumeID, have.Size/gib)
	}
	// -kn: the new volume is activated as volumes are, unlike the
	// snapshots LVM skips.
	err = lvm(ctx, "lvcreate", "-q", "--snapshot", "-kn", "-ay", "-n", reverting, b.group+"/"+snap)
	if err == nil && from.Size < have.Size {
		err = lvm(ctx, "lvextend", "-q", "-L", strconv.FormatInt(have.Size, 10)+"b", b.group+"/"+reverting)
	}
	if err == nil {
		err = b.remove(ctx, lv)
	}
	if err == nil {
		err = lvm(ctx, "lvrename", "-q", b.group, reverting, lv)
	}
	if err != nil {
		// With a context of its own: the one given may be what ended the
		// revert.
		b.finishRevert(context.WithoutCancel(ctx), volumeID, nil)
		return fmt.Errorf("lvm volumes: revert volume %s to snapshot %s: %w", volumeID, snapshotID, err)
	}
	return nil
}

// finishRevert settles what a revert of the volume id cut short left,
// its reverting-ID logical volume: made whole, it takes the volume's name
// if the volume's was removed, and is removed otherwise. lvs are the
// group's logical volumes, nil to list them.
func (b *Backend) finishRevert(ctx context.Context, id string, lvs map[string]logicalVolume) error {
	if lvs == nil {
		var err error
		if lvs, err = b.list(ctx); err != nil {
			return err
		}
	}
	reverting := revertingPrefix + id
	if _, ok := lvs[reverting]; !ok {
		return nil
	}
	var err error
	if _, ok := lvs[volumePrefix+id]; ok {
		err = b.remove(ctx, reverting)
	} else {
		err = lvm(ctx, "lvrename", "-q", b.group, reverting, volumePrefix+id)
	}
	if err != nil {
		return fmt.Errorf("lvm volumes: finish the revert of volume %s: %w", id, err)
	}
	return nil
}

// logicalVolume is a logical volume as lvs reports it.
type logicalVolume struct {
	Name        string  `json:"lv_name"`
	Size        int64   `json:"lv_size,string"`
	Attr        string  `json:"lv_attr"`
	DataPercent percent `json:"data_percent"`
}

// The lv_attr characters used, by position: see lvs(8).
func (v logicalVolume) thinPool() bool { return v.attr(0) == 't' }
func (v logicalVolume) active() bool   { return v.attr(4) == 'a' }
func (v logicalVolume) open() bool     { return v.attr(5) == 'o' }
func (v logicalVolume) zeroes() bool   { return v.attr(7) == 'z' }

func (v logicalVolume) attr(i int) byte {
	if i < len(v.Attr) {
		return v.Attr[i]
	}
	return 0
}

// percent is a percentage as lvs reports it: "12.34", or "" for none.
type percent float64

func (p *percent) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	if s == "" {
		*p = 0
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	*p = percent(f)
	return err
}

// vg is a volume group as vgs reports it.
type vg struct {
	Name string `json:"vg_name"`
	Size int64  `json:"vg_size,string"`
}

// report is what lvs and vgs print with --reportformat json.
type report struct {
	Report []struct {
		LV []logicalVolume `json:"lv"`
		VG []vg            `json:"vg"`
	} `json:"report"`
}

func (r report) lvs() []logicalVolume {
	var out []logicalVolume
	for _, part := range r.Report {
		out = append(out, part.LV...)
	}
	return out
}

func (r report) vgs() []vg {
	var out []vg
	for _, part := range r.Report {
		out = append(out, part.VG...)
	}
	return out
}

// list returns the group's logical volumes (hidden ones aside, such as the
// pool's data and metadata), by name.
func (b *Backend) list(ctx context.Context) (map[string]logicalVolume, error) {
	var r report
	if err := lvmReport(ctx, &r, "lvs", "-o", "lv_name,lv_size,lv_attr,data_percent", b.group); err != nil {
		return nil, err
	}
	out := map[string]logicalVolume{}
	for _, v := range r.lvs() {
		out[v.Name] = v
	}
	return out, nil
}

// find returns the group's logical volume named lv, and whether it is
// there.
func (b *Backend) find(ctx context.Context, lv string) (logicalVolume, bool, error) {
	lvs, err := b.list(ctx)
	v, ok := lvs[lv]
	return v, ok, err
}

// lvmReport runs an LVM reporting command (lvs, vgs) with sizes in bytes
// and decodes its JSON report into r.
func lvmReport(ctx context.Context, r *report, command string, args ...string) error {
	args = append([]string{"--reportformat", "json", "--units", "b", "--nosuffix"}, args...)
	out, err := run(ctx, command, args...)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(out, r); err != nil {
		return fmt.Errorf("lvm volumes: %s's report: %w", command, err)
	}
	return nil
}

// lvm runs an LVM command that changes the group.
func lvm(ctx context.Context, command string, args ...string) error {
	_, err := run(ctx, command, args...)
	return err
}

// run runs an LVM command and returns what it printed. A command is
// never killed once started, whatever ctx says: each is short, and LVM
// commits its metadata and the kernel's device tables in steps that one
// killed halfway would leave out of step.
func run(ctx context.Context, command string, args ...string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cmd := exec.Command(command, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if errors.Is(err, exec.ErrNotFound) {
		return nil, trustack.Errorf(trustack.EUNAVAILABLE, "lvm volumes: %s is not installed (scripts/install-deps installs lvm2)", command)
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w: %s", command, strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out, nil
}
