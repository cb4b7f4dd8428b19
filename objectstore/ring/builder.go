package ring

import (
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/trustack/trustack"
)

// Builder holds what making a ring needs: the devices and their weights,
// the assignment, and when each partition last moved. The zero value is
// not usable: make one with NewBuilder or LoadBuilder. It is not safe for
// concurrent use.
type Builder struct {
	partPower    uint
	replicas     int
	minPartHours int
	nextID       int
	devs         []Device     // by ID
	removed      map[int]bool // devices removed whose partitions have yet to move
	assign       [][]uint16   // [replica][partition] → device ID; nil before the first rebalance
	lastMoved    []uint32     // per partition, the minute since the Unix epoch it last moved
}

// NewBuilder returns a builder of rings of 2^partPower partitions, each on
// replicas devices, that moves no partition twice within minPartHours. Its
// errors have code EINVALID.
func NewBuilder(partPower uint, replicas int, minPartHours int) (*Builder, error) {
	switch {
	case partPower < 1 || partPower > MaxPartPower:
		return nil, trustack.Errorf(trustack.EINVALID, "partition power %d: want 1 to %d", partPower, MaxPartPower)
	case replicas < 1:
		return nil, trustack.Errorf(trustack.EINVALID, "replicas %d: want at least 1", replicas)
	case minPartHours < 0:
		return nil, trustack.Errorf(trustack.EINVALID, "min_part_hours %d: want at least 0", minPartHours)
	}
	return &Builder{partPower: partPower, replicas: replicas, minPartHours: minPartHours}, nil
}

// checkDevice returns an error with code EINVALID if d cannot be a ring's
// device.
func checkDevice(d Device) error {
	switch {
	case math.IsNaN(d.Weight) || math.IsInf(d.Weight, 0) || d.Weight < 0:
		return trustack.Errorf(trustack.EINVALID, "device weight %v: want a number at least 0", d.Weight)
	case d.Device == "" || d.Device == "." || d.Device == ".." || strings.ContainsAny(d.Device, "/\\\x00"):
		return trustack.Errorf(trustack.EINVALID, "device name %q: want one path element", d.Device)
	case d.IP == "":
		return trustack.Errorf(trustack.EINVALID, "device %q: no IP", d.Device)
	case d.Port < 1 || d.Port > 65535:
		return trustack.Errorf(trustack.EINVALID, "device %q: port %d: want 1 to 65535", d.Device, d.Port)
	case d.Region < 0 || d.Zone < 0:
		return trustack.Errorf(trustack.EINVALID, "device %q: region %d, zone %d: want at least 0", d.Device, d.Region, d.Zone)
	}
	return nil
}

// AddDevice adds a device with the next ID, whatever d.ID says, and
// returns that ID. The device gets partitions at the next rebalance. Its
// errors have code EINVALID for a device that is not valid, ECONFLICT for
// one whose IP, port and name another has, and EOVERQUOTA when the IDs,
// of which there are 65535, are used up.
func (b *Builder) AddDevice(d Device) (id int, err error) {
	if err := checkDevice(d); err != nil {
		return 0, err
	}
	for _, o := range b.devs {
		if o.IP == d.IP && o.Port == d.Port && o.Device == d.Device {
			return 0, trustack.Errorf(trustack.ECONFLICT, "device %s/%s: already device %d", d.Addr(), d.Device, o.ID)
		}
	}
	if b.nextID >= none {
		return 0, trustack.Errorf(trustack.EOVERQUOTA, "no device IDs left")
	}
	d.ID = b.nextID
	b.nextID++
	b.devs = append(b.devs, d)
	return d.ID, nil
}

// device returns the device of an ID, not removed, or an error with code
// ENOTFOUND.
func (b *Builder) device(id int) (*Device, error) {
	i, ok := slices.BinarySearchFunc(b.devs, id, func(d Device, id int) int { return d.ID - id })
	if !ok || b.removed[id] {
		return nil, trustack.Errorf(trustack.ENOTFOUND, "no device %d", id)
	}
	return &b.devs[i], nil
}

// SetWeight changes a device's weight; its share of partitions changes at
// the next rebalance. Its errors have code ENOTFOUND or EINVALID.
func (b *Builder) SetWeight(id int, w float64) error {
	d, err := b.device(id)
	if err != nil {
		return err
	}
	c := *d
	c.Weight = w
	if err := checkDevice(c); err != nil {
		return err
	}
	d.Weight = w
	return nil
}

// SetAddress changes where a device's server listens, as Swift's
// set_info: its partitions stay where they are. Its errors have code
// ENOTFOUND, EINVALID, or ECONFLICT for an address and name another
// device has.
func (b *Builder) SetAddress(id int, ip string, port int) error {
	d, err := b.device(id)
	if err != nil {
		return err
	}
	c := *d
	c.IP, c.Port = ip, port
	if err := checkDevice(c); err != nil {
		return err
	}
	for _, o := range b.devs {
		if o.ID != id && o.IP == ip && o.Port == port && o.Device == d.Device {
			return trustack.Errorf(trustack.ECONFLICT, "device %s/%s: already device %d", c.Addr(), d.Device, o.ID)
		}
	}
	d.IP, d.Port = ip, port
	return nil
}

// RemoveDevice removes a device. Its partitions move at the next
// rebalance, whatever min_part_hours says, and the rings made until then
// still have it. Its errors have code ENOTFOUND.
func (b *Builder) RemoveDevice(id int) error {
	if _, err := b.device(id); err != nil {
		return err
	}
	if b.removed == nil {
		b.removed = map[int]bool{}
	}
	b.removed[id] = true
	return nil
}

// Devices returns the devices, by ID, but those removed.
func (b *Builder) Devices() []Device {
	return slices.DeleteFunc(slices.Clone(b.devs), func(d Device) bool { return b.removed[d.ID] })
}

// Ring returns the ring of the last rebalance, with the devices added
// since, which hold nothing yet, and those removed since, which still do.
// It returns an error with code ECONFLICT before the first rebalance.
func (b *Builder) Ring() (*Ring, error) {
	if b.assign == nil {
		return nil, trustack.Errorf(trustack.ECONFLICT, "ring not yet rebalanced")
	}
	// The ring shares the assignment: Rebalance replaces it, never
	// changes it.
	return newRing(b.partPower, b.devs, b.assign)
}

// Save writes the builder to path atomically, as Ring.Save does.
func (b *Builder) Save(path string) error {
	f := &file{
		Version: formatVersion, PartPower: b.partPower, Replicas: b.replicas, Devices: b.devs,
		MinPartHours: b.minPartHours, NextID: b.nextID, Removed: slices.Sorted(maps.Keys(b.removed)),
	}
	if b.assign != nil {
		f.Assignment = pack(b.assign)
		f.LastMoved, _ = binary.Append(nil, binary.LittleEndian, b.lastMoved)
	}
	return writeFile(path, f)
}

// LoadBuilder reads a builder file written by Builder.Save. Its errors
// name the file.
func LoadBuilder(path string) (*Builder, error) {
	var f file
	err := readFile(path, &f)
	var b *Builder
	if err == nil {
		b, err = f.builder()
	}
	if err != nil {
		return nil, fmt.Errorf("load builder %s: %w", path, err)
	}
	return b, nil
}

// builder checks a builder's file and makes a builder of it.
func (f *file) builder() (*Builder, error) {
	if f.Version != formatVersion {
		return nil, fmt.Errorf("version %d: want %d", f.Version, formatVersion)
	}
	b, err := NewBuilder(f.PartPower, f.Replicas, f.MinPartHours)
	if err != nil {
		return nil, err
	}
	b.devs, b.nextID = f.Devices, f.NextID
	for i, d := range b.devs {
		if d.ID < 0 || d.ID >= f.NextID || i > 0 && d.ID <= b.devs[i-1].ID {
			return nil, fmt.Errorf("device ID %d: out of order or range", d.ID)
		}
		if err := checkDevice(d); err != nil {
			return nil, err
		}
	}
	for _, id := range f.Removed {
		if err := b.RemoveDevice(id); err != nil {
			return nil, err
		}
	}
	if f.Assignment == nil && f.LastMoved == nil {
		return b, nil
	}
	r, err := f.layout()
	if err != nil {
		return nil, err
	}
	if len(f.LastMoved) != 4*r.Partitions() {
		return nil, fmt.Errorf("last moved: %d bytes, want %d", len(f.LastMoved), 4*r.Partitions())
	}
	b.assign, b.lastMoved = r.assign, make([]uint32, r.Partitions())
	_, err = binary.Decode(f.LastMoved, binary.LittleEndian, b.lastMoved)
	return b, err
}
