package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/trustack/trustack/objectstore/proxy"
	"github.com/trustack/trustack/objectstore/ring"
)

// RingFiles are the files of the three rings in a ring directory, by
// ring, and of their builders.
func RingFiles(dir string) (account, container, object string) {
	return filepath.Join(dir, "account.ring.gz"), filepath.Join(dir, "container.ring.gz"), filepath.Join(dir, "object.ring.gz")
}

// BuilderFile is the builder file of a ring file.
func BuilderFile(ringFile string) string {
	return ringFile[:len(ringFile)-len(".ring.gz")] + ".builder"
}

// LoadRings loads the three rings of a ring directory; fs.ErrNotExist
// when it has none.
func LoadRings(dir string) (proxy.Rings, error) {
	a, c, o := RingFiles(dir)
	var rings proxy.Rings
	var err error
	if rings.Account, err = ring.Load(a); err != nil {
		return rings, err
	}
	if rings.Container, err = ring.Load(c); err != nil {
		return rings, err
	}
	rings.Object, err = ring.Load(o)
	return rings, err
}

// localPartPower is the partition power of a local cluster's rings: 256
// partitions, plenty for a few devices on one machine.
const localPartPower = 8

// Local returns the nodes of a local cluster of n storage nodes under
// dir, each with one device (dir/node-I/dI) in a zone of its own, their
// servers on 127.0.0.1, with three replicas (fewer with fewer nodes). The
// first call makes the rings in ringDir, on free ports; later ones read
// the nodes' ports from them, so that the data stays where the rings say
// it is, and move to a free port any server whose port another process
// took meanwhile. It listens on every server's port itself, so that no
// other process can take one between the rings naming it and the server
// serving it: Start serves each node's listeners (a node never started
// holds its ports until the process ends). None of the cluster's nodes
// may be running. Start the nodes with Start, cfg giving the secrets.
func Local(dir, ringDir string, n int, cfg Config) (_ []Config, err error) {
	held := &listeners{byAddr: map[string]net.Listener{}}
	defer func() {
		if err != nil {
			held.close()
		}
	}()
	accountFile, _, _ := RingFiles(ringDir)
	if _, err := os.Stat(accountFile); errors.Is(err, fs.ErrNotExist) {
		if err := makeLocalRings(ringDir, n, held); err != nil {
			return nil, err
		}
	} else if err := listenOnRingPorts(ringDir, held); err != nil {
		return nil, err
	}
	rings, err := LoadRings(ringDir)
	if err != nil {
		return nil, err
	}
	cfg.held = held
	byDevice := map[string]*Config{}
	var out []*Config
	for i := 1; i <= n; i++ {
		c := cfg
		c.Devices = filepath.Join(dir, "node-"+strconv.Itoa(i))
		if err := os.MkdirAll(filepath.Join(c.Devices, "d"+strconv.Itoa(i)), 0o750); err != nil {
			return nil, err
		}
		byDevice["d"+strconv.Itoa(i)] = &c
		out = append(out, &c)
	}
	for _, set := range []struct {
		r    *ring.Ring
		addr func(*Config) *string
	}{
		{rings.Object, func(c *Config) *string { return &c.Object }},
		{rings.Container, func(c *Config) *string { return &c.Container }},
		{rings.Account, func(c *Config) *string { return &c.Account }},
	} {
		for _, d := range set.r.Devices() {
			if c := byDevice[d.Device]; c != nil {
				*set.addr(c) = d.Addr()
			}
		}
	}
	configs := make([]Config, len(out))
	for i, c := range out {
		c.Rings = &rings
		if c.Object == "" || c.Container == "" || c.Account == "" {
			return nil, fmt.Errorf("the rings in %s do not name device d%d of local node %d: they are not this cluster's", ringDir, i+1, i+1)
		}
		configs[i] = *c
	}
	return configs, nil
}

// makeLocalRings makes the rings of a local cluster of n nodes, each
// server of each node on a free port of 127.0.0.1, which it listens on
// and adds to held.
func makeLocalRings(dir string, n int, held *listeners) error {
	if n < 1 {
		return fmt.Errorf("a local object store needs at least one node")
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	replicas := min(3, n)
	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	a, c, o := RingFiles(dir)
	for _, file := range []string{o, c, a} {
		b, err := ring.NewBuilder(localPartPower, replicas, 1)
		if err != nil {
			return err
		}
		for i := 1; i <= n; i++ {
			port, err := held.listenFree("127.0.0.1")
			if err != nil {
				return err
			}
			if _, err := b.AddDevice(ring.Device{Region: 1, Zone: i, IP: "127.0.0.1", Port: port, Device: "d" + strconv.Itoa(i), Weight: 1}); err != nil {
				return err
			}
		}
		if _, _, err := b.Rebalance(time.Now(), rnd); err != nil {
			return err
		}
		r, err := b.Ring()
		if err != nil {
			return err
		}
		if err := b.Save(BuilderFile(file)); err != nil {
			return err
		}
		if err := r.Save(file); err != nil {
			return err
		}
	}
	return nil
}

// listenOnRingPorts listens on the address of each device of a local
// cluster's rings, adding the listeners to held, and moves each device
// whose port cannot be listened on to a free port, rewriting the
// builders and rings it changes; the partitions stay.
func listenOnRingPorts(dir string, held *listeners) error {
	a, c, o := RingFiles(dir)
	for _, file := range []string{a, c, o} {
		b, err := ring.LoadBuilder(BuilderFile(file))
		if err != nil {
			return err
		}
		changed := false
		for _, d := range b.Devices() {
			if held.listen(d.Addr()) == nil {
				continue
			}
			port, err := held.listenFree(d.IP)
			if err == nil {
				err = b.SetAddress(d.ID, d.IP, port)
			}
			if err != nil {
				return fmt.Errorf("move device %s of %s off its taken port: %w", d.Device, file, err)
			}
			changed = true
		}
		if !changed {
			continue
		}
		r, err := b.Ring()
		if err == nil {
			err = b.Save(BuilderFile(file))
		}
		if err == nil {
			err = r.Save(file)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// listeners are those a local cluster opened for its servers, by
// address, until Start takes them; safe for concurrent use.
type listeners struct {
	mu     sync.Mutex
	byAddr map[string]net.Listener
}

// listen listens on addr and holds the listener.
func (h *listeners) listen(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.byAddr[l.Addr().String()] = l
	return nil
}

// listenFree listens on a free port of ip, holds the listener and returns
// the port.
func (h *listeners) listenFree(ip string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return 0, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.byAddr[l.Addr().String()] = l
	return l.Addr().(*net.TCPAddr).Port, nil
}

// take returns the listener held for addr, which the caller then owns,
// and nil if there is none (or it was taken).
func (h *listeners) take(addr string) net.Listener {
	if h == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	l := h.byAddr[addr]
	delete(h.byAddr, addr)
	return l
}

// close closes the listeners still held.
func (h *listeners) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for addr, l := range h.byAddr {
		l.Close()
		delete(h.byAddr, addr)
	}
}
