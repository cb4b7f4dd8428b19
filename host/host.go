// Package host assembles a compute host: the hypervisor driver its
// configuration names, and the agent that serves it on the bus. `trustack
// agent` runs one; `trustack up` runs several in one process.
package host

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/trustack/trustack/agent"
	"github.com/trustack/trustack/bus"
	"github.com/trustack/trustack/config"
	"github.com/trustack/trustack/hypervisor/fake"
	"github.com/trustack/trustack/hypervisor/qemu"
)

// Host is a compute host's agent and driver.
type Host struct {
	Name   string
	Agent  *agent.Agent
	Driver agent.Hypervisor
}

// New builds the host named name, keeping its state in dir, with the
// configuration's [compute] and [agent] sections.
func New(ctx context.Context, cfg *config.Config, conn *bus.Conn, name, dir string, log *slog.Logger) (*Host, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create host directory: %w", err)
	}
	var hv agent.Hypervisor
	switch cfg.Compute.Driver {
	case "fake":
		d, err := fake.New(fake.Options{
			Hostname: name, VCPUs: cfg.Compute.FakeVCPUs, MemoryMB: cfg.Compute.FakeMemoryMB, DiskGB: cfg.Compute.FakeDiskGB,
			RAMAllocationRatio: cfg.Compute.RAMAllocationRatio, StateFile: filepath.Join(dir, "fake-hypervisor.json"),
			SnapshotTime: cfg.Compute.FakeSnapshotTime,
		})
		if err != nil {
			return nil, err
		}
		hv = d
	case "qemu":
		d, err := qemu.New(ctx, qemu.Options{
			Dir: filepath.Join(dir, "qemu"), Hostname: name, Accel: cfg.Compute.Accel,
			RAMAllocationRatio: cfg.Compute.RAMAllocationRatio, PowerOffTimeout: cfg.Compute.ShutdownTimeout, Log: log.With("host", name),
		})
		if err != nil {
			return nil, err
		}
		hv = d
	default:
		return nil, fmt.Errorf("unknown hypervisor driver %q", cfg.Compute.Driver)
	}
	a := agent.New(conn, hv, agent.Config{
		Name: name, AvailabilityZone: cfg.Agent.AvailabilityZone, HostIP: cfg.Agent.HostIP,
		CPUAllocationRatio: cfg.Compute.CPUAllocationRatio, RAMAllocationRatio: cfg.Compute.RAMAllocationRatio,
		DiskAllocationRatio: cfg.Compute.DiskAllocationRatio, HeartbeatInterval: cfg.Compute.HeartbeatInterval,
		Log: log.With("host", name),
	})
	return &Host{Name: name, Agent: a, Driver: hv}, nil
}

// Run serves the host until ctx ends.
func (h *Host) Run(ctx context.Context) error { return h.Agent.Run(ctx) }
