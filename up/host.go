package up

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/trustack/trustack/agent"
	"github.com/trustack/trustack/config"
	"github.com/trustack/trustack/dcc"
	"github.com/trustack/trustack/host"
	fakenet "github.com/trustack/trustack/hostnet/fake"
	"github.com/trustack/trustack/hostnet/linux"
	"github.com/trustack/trustack/hypervisor/fake"
	"github.com/trustack/trustack/hypervisor/qemu"
	"github.com/trustack/trustack/volume/file"
	"github.com/trustack/trustack/volume/lvm"
)

// NewHost builds the compute host named name, keeping its state in dir,
// on the hypervisor driver [compute] driver names and the network
// [network] driver names (see host.New for dial and tpm).
func NewHost(ctx context.Context, cfg *config.Config, dial dcc.Dial, name, dir, tpm string, log *slog.Logger) (*host.Host, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create host directory: %w", err)
	}
	hv, err := hypervisor(ctx, cfg, name, dir, log)
	if err != nil {
		return nil, err
	}
	net, err := hostNetwork(cfg, dir)
	if err != nil {
		return nil, err
	}
	volumes, err := volumeBackends(ctx, cfg, dir)
	if err != nil {
		return nil, err
	}
	return host.New(cfg, dial, name, dir, tpm, hv, net, volumes, log)
}

// volumeBackends returns the volume backends [volume] backends names,
// with their state in the host's directory dir unless configured
// elsewhere.
func volumeBackends(ctx context.Context, cfg *config.Config, dir string) (map[string]agent.VolumeBackend, error) {
	out := map[string]agent.VolumeBackend{}
	for _, name := range cfg.Volume.Backends {
		switch name {
		case "file":
			b, err := file.New(strings.ReplaceAll(cfg.Volume.FileDir, "{host_dir}", dir), cfg.Volume.FileFormat)
			if err != nil {
				return nil, err
			}
			out[name] = b
		case "lvm":
			b, err := lvm.New(ctx, cfg.Volume.VolumeGroup)
			if err != nil {
				return nil, err
			}
			out[name] = b
		default:
			return nil, fmt.Errorf("unknown volume backend %q", name)
		}
	}
	return out, nil
}

// hostNetwork returns the host network [network] driver names, with its
// state in the host's directory dir.
func hostNetwork(cfg *config.Config, dir string) (agent.HostNetwork, error) {
	physnets, err := cfg.HostPhysicalNetworks()
	if err != nil {
		return nil, err
	}
	switch cfg.Network.Driver {
	case "fake":
		return fakenet.New(slices.Sorted(maps.Keys(physnets))), nil
	case "linux":
		group, err := cfg.VXLANGroup()
		if err != nil {
			return nil, err
		}
		datapath := cfg.Network.OVSDatapath
		if datapath == "auto" {
			datapath = ""
		}
		return linux.New(linux.Config{Namespace: cfg.Agent.Namespace, PhysicalNetworks: physnets, OverlayInterface: cfg.Agent.OverlayInterface,
			VXLANGroup: group, OVSDB: cfg.Network.OVSDB, OVSDatapath: datapath, StateDir: filepath.Join(dir, "network")})
	default:
		return nil, fmt.Errorf("unknown network driver %q", cfg.Network.Driver)
	}
}

// hypervisor returns the driver [compute] driver names, for the host
// named name with its state in dir.
func hypervisor(ctx context.Context, cfg *config.Config, name, dir string, log *slog.Logger) (agent.Hypervisor, error) {
	var hv agent.Hypervisor
	var err error
	switch cfg.Compute.Driver {
	case "fake":
		hv, err = fake.New(fake.Options{
			Hostname: name, VCPUs: cfg.Compute.FakeVCPUs, MemoryMB: cfg.Compute.FakeMemoryMB, DiskGB: cfg.Compute.FakeDiskGB,
			RAMAllocationRatio: cfg.Compute.RAMAllocationRatio, StateFile: filepath.Join(dir, "fake-hypervisor.json"),
			SnapshotTime: cfg.Compute.FakeSnapshotTime, Delay: cfg.Compute.FakeDelay,
		})
	case "qemu":
		hv, err = qemu.New(ctx, qemu.Options{
			Dir: filepath.Join(dir, "qemu"), Hostname: name, Accel: cfg.Compute.Accel, Namespace: cfg.Agent.Namespace,
			RAMAllocationRatio: cfg.Compute.RAMAllocationRatio, PowerOffTimeout: cfg.Compute.ShutdownTimeout, Log: log.With("host", name),
		})
	default:
		err = fmt.Errorf("unknown hypervisor driver %q", cfg.Compute.Driver)
	}
	if err != nil {
		return nil, err
	}
	return hv, nil
}
