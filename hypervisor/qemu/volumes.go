package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/agent"
	"github.com/trustack/trustack/internal/qemuimg"
	"github.com/trustack/trustack/internal/qmp"
	"github.com/trustack/trustack/volume/nbd"
	"github.com/trustack/trustack/wire"
)

// volumesFile lists the volumes plugged into a server, by device, so
// that QEMU started again has them as it had them.
const volumesFile = "volumes.json"

// nbdReconnectDelay is how long, in seconds, a guest's requests to a
// volume served over NBD wait for the connection to come back when it
// drops: when its storage host serves it anew at a larger size, say.
const nbdReconnectDelay = 10

// detachTimeout is how long a guest has to let a volume go, asked again
// every detachRetry.
const (
	detachTimeout = time.Minute
	detachRetry   = 5 * time.Second
)

// readVolumes returns the volumes of the server in dir.
func readVolumes(dir string) (map[string]agent.Disk, error) {
	b, err := os.ReadFile(filepath.Join(dir, volumesFile))
	if errors.Is(err, os.ErrNotExist) {
		return map[string]agent.Disk{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("qemu: %w", err)
	}
	vols := map[string]agent.Disk{}
	if err := json.Unmarshal(b, &vols); err != nil {
		return nil, fmt.Errorf("qemu: %s: %w", filepath.Join(dir, volumesFile), err)
	}
	return vols, nil
}

func writeVolumes(dir string, vols map[string]agent.Disk) error {
	b, err := json.Marshal(vols)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, volumesFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("qemu: %w", err)
	}
	return os.Rename(tmp, filepath.Join(dir, volumesFile))
}

// Names of a volume's objects in QEMU, by the guest's device; and of the
// drives of the server's own disk and config drive.
func nodeName(device string) string { return "vol-" + device }
func driveID(device string) string  { return "drive-" + device }
func fileNode(device string) string { return "file-" + device }
func swapNode(device string) string { return "swap-" + device }
func deviceID(device string) string { return "dev-" + device }
func tlsID(device string) string    { return "tls-" + device }
func keyDir(dir, device string) string {
	return filepath.Join(dir, "psk-"+device)
}

// pciSlot is the PCI slot of a volume's device, by its name: vdc is in
// slot 0x10, vdd in 0x11, up to vdr in 0x1f, after the slots QEMU gives
// the server's own disk, its config drive and its NICs, so that a guest
// started with volumes still finds its own disk first (vda). ok is false
// for a name outside that range.
func pciSlot(device string) (slot string, ok bool) {
	if len(device) != 3 || device[:2] != "vd" || device[2] < 'c' || device[2] > 'r' {
		return "", false
	}
	return fmt.Sprintf("0x%x", 0x10+int(device[2]-'c')), true
}

// serial is what the guest reads as the disk's serial number
// (/dev/disk/by-id/virtio-...): the volume's ID, as far as it fits.
func serial(volumeID string) string { return volumeID[:min(len(volumeID), 20)] }

// diskArgs are QEMU's options for a volume of the server's: in its PCI
// slot, or, as its root disk (vda), in the first free one, which a guest
// finds first. A volume is a format node (nodeName) over a protocol node
// (fileNode): a file or block device of this host's, or an NBD client,
// under a raw node that lets the connection be replaced (GrowVolume).
func diskArgs(dir string, d agent.Disk) []string {
	dev := d.Device
	ro := ""
	if d.ReadOnly {
		ro = ",read-only=on"
	}
	var args []string
	if d.NBD != nil {
		args = append(args,
			"-object", fmt.Sprintf("tls-creds-psk,id=%s,endpoint=client,priority=%s,dir=%s,username=%s", tlsID(dev), nbd.TLSPriority, keyDir(dir, dev), d.NBD.Key.Identity),
			"-blockdev", fmt.Sprintf("driver=nbd,node-name=%s,server.type=inet,server.host=%s,server.port=%d,export=%s,tls-creds=%s,reconnect-delay=%d%s",
				fileNode(dev), d.NBD.Host, d.NBD.Port, d.NBD.Name, tlsID(dev), nbdReconnectDelay, ro),
			"-blockdev", fmt.Sprintf("driver=raw,node-name=%s,file=%s%s", nodeName(dev), fileNode(dev), ro))
	} else {
		args = append(args,
			"-blockdev", fmt.Sprintf("driver=%s,node-name=%s,filename=%s%s", qemuimg.ProtocolDriver(d.Path), fileNode(dev), d.Path, ro),
			"-blockdev", fmt.Sprintf("driver=%s,node-name=%s,file=%s%s", d.Format, nodeName(dev), fileNode(dev), ro))
	}
	device := fmt.Sprintf("virtio-blk-pci,id=%s,drive=%s,serial=%s", deviceID(dev), nodeName(dev), serial(d.VolumeID))
	if slot, ok := pciSlot(dev); ok {
		device += ",bus=pci.0,addr=" + slot
	}
	return append(args, "-device", device)
}

// checkDisk refuses a volume the server cannot take: at a device other
// than vdc to vdr (or, when it spawns, its root disk vda), or of a format
// other than raw or qcow2.
func checkDisk(disk agent.Disk, root bool) error {
	if _, ok := pciSlot(disk.Device); !ok && !(root && disk.Device == wire.RootDevice) {
		return trustack.Errorf(trustack.EINVALID, "qemu: device %q: want vdc to vdr", disk.Device)
	}
	if disk.NBD == nil && disk.Format != "raw" && disk.Format != "qcow2" {
		return trustack.Errorf(trustack.EINVALID, "qemu: volume %s: format %q, want raw or qcow2", disk.VolumeID, disk.Format)
	}
	return nil
}

// writeKey writes the key of a volume served over NBD where the server's
// QEMU reads it.
func writeKey(dir string, disk agent.Disk) error {
	if disk.NBD == nil {
		return nil
	}
	if err := nbd.WriteKeyDir(keyDir(dir, disk.Device), nbd.Key{Identity: disk.NBD.Key.Identity, Secret: disk.NBD.Key.Secret}); err != nil {
		return fmt.Errorf("qemu: %w", err)
	}
	return nil
}

// AttachVolume plugs a volume into a server: into its running QEMU over
// QMP, and into its volumes for every later start. A suspended server
// takes none, as its saved devices must stay as they are (ECONFLICT).
// A volume the server has, served anew, replaces the one it had if the
// server is stopped (ECONFLICT if it runs).
func (d *Driver) AttachVolume(ctx context.Context, serverID string, disk agent.Disk) error {
	inst, v, err := d.get(serverID)
	if err != nil {
		return err
	}
	vols, err := readVolumes(inst.dir)
	if err != nil {
		return err
	}
	if have, ok := vols[disk.Device]; ok {
		switch {
		case have.VolumeID != disk.VolumeID:
			return trustack.Errorf(trustack.ECONFLICT, "qemu: server %s has volume %s at %s", serverID, have.VolumeID, disk.Device)
		case reflect.DeepEqual(have, disk):
			return nil
		case v != nil && !v.mon.Gone():
			return trustack.Errorf(trustack.ECONFLICT, "qemu: server %s runs with volume %s as it was served: stop it to plug the volume in anew", serverID, disk.VolumeID)
		}
		// Served anew (by another export): the stopped server opens it so
		// from its next start.
		if err := writeKey(inst.dir, disk); err != nil {
			return err
		}
		vols[disk.Device] = disk
		return writeVolumes(inst.dir, vols)
	}
	if err := checkDisk(disk, false); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(inst.dir, savedState)); err == nil {
		return trustack.Errorf(trustack.ECONFLICT, "qemu: server %s is suspended: resume it before attaching a volume", serverID)
	}
	if err := writeKey(inst.dir, disk); err != nil {
		return err
	}
	if v != nil && !v.mon.Gone() {
		if err := hotPlug(ctx, v.mon, inst.dir, disk); err != nil {
			os.RemoveAll(keyDir(inst.dir, disk.Device))
			return err
		}
	}
	vols[disk.Device] = disk
	return writeVolumes(inst.dir, vols)
}

// hotPlug adds a volume's objects to a running QEMU, taking back those
// it added if a later one fails.
func hotPlug(ctx context.Context, mon *qmp.Monitor, dir string, disk agent.Disk) (err error) {
	dev := disk.Device
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	do := func(command string, args map[string]any, reverse string, reverseArgs map[string]any) error {
		if _, err := mon.Run(ctx, command, args); err != nil {
			return trustack.Errorf(trustack.EUNAVAILABLE, "qemu: attach volume %s: %v", disk.VolumeID, err)
		}
		undo = append(undo, func() { mon.Run(context.Background(), reverse, reverseArgs) })
		return nil
	}
	if disk.NBD != nil {
		if err := do("object-add", map[string]any{"qom-type": "tls-creds-psk", "id": tlsID(dev), "endpoint": "client", "priority": nbd.TLSPriority,
			"dir": keyDir(dir, dev), "username": disk.NBD.Key.Identity}, "object-del", map[string]any{"id": tlsID(dev)}); err != nil {
			return err
		}
		if err := do("blockdev-add", nbdNode(fileNode(dev), disk), "blockdev-del", map[string]any{"node-name": fileNode(dev)}); err != nil {
			return err
		}
	} else {
		if err := do("blockdev-add", map[string]any{"driver": qemuimg.ProtocolDriver(disk.Path), "node-name": fileNode(dev), "filename": disk.Path, "read-only": disk.ReadOnly},
			"blockdev-del", map[string]any{"node-name": fileNode(dev)}); err != nil {
			return err
		}
	}
	if err := do("blockdev-add", formatNode(fileNode(dev), disk), "blockdev-del", map[string]any{"node-name": nodeName(dev)}); err != nil {
		return err
	}
	slot, _ := pciSlot(dev)
	return do("device_add", map[string]any{"driver": "virtio-blk-pci", "id": deviceID(dev), "drive": nodeName(dev), "serial": serial(disk.VolumeID),
		"bus": "pci.0", "addr": slot}, "device_del", map[string]any{"id": deviceID(dev)})
}

// nbdNode is the blockdev-add of a volume's NBD client, named name.
func nbdNode(name string, disk agent.Disk) map[string]any {
	return map[string]any{"driver": "nbd", "node-name": name, "read-only": disk.ReadOnly,
		"server": map[string]any{"type": "inet", "host": disk.NBD.Host, "port": fmt.Sprint(disk.NBD.Port)},
		"export": disk.NBD.Name, "tls-creds": tlsID(disk.Device), "reconnect-delay": nbdReconnectDelay}
}

// formatNode is the blockdev-add (and blockdev-reopen) of a volume's
// format node over the protocol node file: raw over an NBD client, whose
// server reads the volume's format.
func formatNode(file string, disk agent.Disk) map[string]any {
	format := disk.Format
	if disk.NBD != nil {
		format = "raw"
	}
	return map[string]any{"driver": format, "node-name": nodeName(disk.Device), "file": file, "read-only": disk.ReadOnly}
}

// GrowVolume has a server see the volume at a device grown to size
// bytes. A running QEMU first connects anew to a volume served over NBD,
// as a client learns an export's size when it connects (reconnect); then
// it resizes the volume's format node, which grows a file of this host's
// that it holds, and tells the guest. A stopped server sees the size
// when it starts.
func (d *Driver) GrowVolume(ctx context.Context, serverID, device string, size int64) error {
	inst, v, err := d.get(serverID)
	if err != nil {
		return err
	}
	vols, err := readVolumes(inst.dir)
	if err != nil {
		return err
	}
	disk, ok := vols[device]
	if !ok {
		return trustack.Errorf(trustack.ENOTFOUND, "qemu: server %s has no volume at %s", serverID, device)
	}
	if v == nil || v.mon.Gone() {
		return nil
	}
	if disk.NBD != nil {
		if err := reconnect(ctx, v.mon, disk); err != nil {
			return err
		}
	}
	if _, err := v.mon.Run(ctx, "block_resize", map[string]any{"node-name": nodeName(device), "size": size}); err != nil {
		return trustack.Errorf(trustack.EUNAVAILABLE, "qemu: grow volume %s: %v", disk.VolumeID, err)
	}
	return nil
}

// reconnect puts a new connection to a volume's NBD export under its
// format node in place of the one there, while the guest runs: a second
// connection (swapNode) takes the first's place, then a third the
// second's, under the first's name, which the server's later starts
// give it. A reconnect cut short after the first swap goes on from
// there.
func reconnect(ctx context.Context, mon *qmp.Monitor, disk agent.Disk) error {
	dev := disk.Device
	swaps := [][2]string{{fileNode(dev), swapNode(dev)}, {swapNode(dev), fileNode(dev)}}
	if nodes, err := blockNodes(ctx, mon); err != nil {
		return err
	} else if nodes[swapNode(dev)] {
		if nodes[fileNode(dev)] {
			// The second connection was made but not put in place.
			if err := drop(ctx, mon, "blockdev-del", map[string]any{"node-name": swapNode(dev)}); err != nil {
				return err
			}
		} else {
			swaps = swaps[1:]
		}
	}
	for _, swap := range swaps {
		from, to := swap[0], swap[1]
		if _, err := mon.Run(ctx, "blockdev-add", nbdNode(to, disk)); err != nil {
			return trustack.Errorf(trustack.EUNAVAILABLE, "qemu: connect anew to volume %s: %v", disk.VolumeID, err)
		}
		if _, err := mon.Run(ctx, "blockdev-reopen", map[string]any{"options": []any{formatNode(to, disk)}}); err != nil {
			mon.Run(context.WithoutCancel(ctx), "blockdev-del", map[string]any{"node-name": to})
			return trustack.Errorf(trustack.EUNAVAILABLE, "qemu: connect anew to volume %s: %v", disk.VolumeID, err)
		}
		if err := drop(ctx, mon, "blockdev-del", map[string]any{"node-name": from}); err != nil {
			return err
		}
	}
	return nil
}

// blockNodes returns the names of a QEMU's block nodes.
func blockNodes(ctx context.Context, mon *qmp.Monitor) (map[string]bool, error) {
	out, err := mon.Run(ctx, "query-named-block-nodes", map[string]any{"flat": true})
	if err != nil {
		return nil, trustack.Errorf(trustack.EUNAVAILABLE, "qemu: %v", err)
	}
	var nodes []struct {
		NodeName string `json:"node-name"`
	}
	if err := json.Unmarshal(out, &nodes); err != nil {
		return nil, fmt.Errorf("qemu: query-named-block-nodes: %w", err)
	}
	names := map[string]bool{}
	for _, n := range nodes {
		names[n.NodeName] = true
	}
	return names, nil
}

// DetachVolume unplugs the volume at a server's device: the guest is
// asked to let it go and given detachTimeout to, then its objects are
// removed from QEMU and from the server's volumes. A server or device not
// there is no error.
func (d *Driver) DetachVolume(ctx context.Context, serverID, device string) error {
	inst, v, err := d.get(serverID)
	if trustack.ErrorCode(err) == trustack.ENOTFOUND {
		return nil
	}
	if err != nil {
		return err
	}
	vols, err := readVolumes(inst.dir)
	if err != nil {
		return err
	}
	disk, ok := vols[device]
	if !ok {
		return nil
	}
	if v != nil && !v.mon.Gone() {
		if err := unplug(ctx, v.mon, disk); err != nil {
			return err
		}
	}
	delete(vols, device)
	if err := writeVolumes(inst.dir, vols); err != nil {
		return err
	}
	return os.RemoveAll(keyDir(inst.dir, device))
}

// unplug removes a volume's objects from a running QEMU once the guest
// has let its device go.
func unplug(ctx context.Context, mon *qmp.Monitor, disk agent.Disk) error {
	dev := disk.Device
	// A guest that is still booting misses the request (as Nova's libvirt
	// driver finds): it is made again every few seconds until the device
	// is gone.
	deadline := time.Now().Add(detachTimeout)
	var asked time.Time
	for present(ctx, mon, deviceID(dev)) {
		if time.Since(asked) >= detachRetry {
			if _, err := mon.Run(ctx, "device_del", map[string]any{"id": deviceID(dev)}); err != nil &&
				!strings.Contains(err.Error(), "DeviceNotFound") && !strings.Contains(err.Error(), "in process of unplug") {
				return trustack.Errorf(trustack.EUNAVAILABLE, "qemu: detach volume %s: %v", disk.VolumeID, err)
			}
			asked = time.Now()
		}
		if time.Now().After(deadline) {
			return trustack.Errorf(trustack.EUNAVAILABLE, "qemu: the guest did not let volume %s go within %v", disk.VolumeID, detachTimeout)
		}
		select {
		case <-ctx.Done():
			return trustack.Errorf(trustack.EUNAVAILABLE, "qemu: detach volume %s: %v", disk.VolumeID, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	// Then the nodes under the device, top first, and the key.
	for _, node := range []string{nodeName(dev), fileNode(dev)} {
		if err := drop(ctx, mon, "blockdev-del", map[string]any{"node-name": node}); err != nil {
			return err
		}
	}
	if disk.NBD != nil {
		return drop(ctx, mon, "object-del", map[string]any{"id": tlsID(dev)})
	}
	return nil
}

// drop deletes a block node or an object, given QEMU a few seconds to let
// go of it after its device went; one not there is no error.
func drop(ctx context.Context, mon *qmp.Monitor, command string, args map[string]any) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := mon.Run(ctx, command, args)
		if err == nil || strings.Contains(err.Error(), "Failed to find") || strings.Contains(err.Error(), "not found") {
			return nil
		}
		if time.Now().After(deadline) {
			return trustack.Errorf(trustack.EUNAVAILABLE, "qemu: %v", err)
		}
		select {
		case <-ctx.Done():
			return trustack.Errorf(trustack.EUNAVAILABLE, "qemu: %v", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// present reports whether a device of an ID is in the machine.
func present(ctx context.Context, mon *qmp.Monitor, id string) bool {
	out, err := mon.Run(ctx, "qom-list", map[string]any{"path": "/machine/peripheral"})
	if err != nil {
		return false
	}
	var props []struct{ Name string }
	json.Unmarshal(out, &props)
	return slices.ContainsFunc(props, func(p struct{ Name string }) bool { return p.Name == id })
}
