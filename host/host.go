// Package host runs a host: its hypervisor driver, its volume backends
// (a storage host's), the DC-C that registers its TPM and answers the
// verifier (when the host attests), and the agent that serves it on the
// bus. Package up chooses its drivers;
// `trustack agent` runs one host, `trustack up` several in one process.
package host

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/trustack/trustack/agent"
	"github.com/trustack/trustack/config"
	"github.com/trustack/trustack/dcc"
	"github.com/trustack/trustack/volume/nbd"
)

// Host is a compute host's drivers, DC-C and agent.
type Host struct {
	Name    string
	Driver  agent.Hypervisor
	Network agent.HostNetwork
	// DCC is the host's DC-C; nil for a host that does not attest.
	DCC *dcc.DCC

	dial  dcc.Dial
	agent agent.Config
	log   *slog.Logger
}

// New builds the host named name on the hypervisor driver hv, the network
// net and the volume backends (by name; none for a host that keeps no
// volumes), keeping its state in dir (which must exist), with the
// configuration's [compute], [agent] and [attestation] sections. It reaches the bus with dial. With
// tpm, the address of its TPM (a device, or swtpm's), the host attests:
// its agent joins only once its TPM registered, and takes work only while
// the verifier trusts it; with "" it does not.
func New(cfg *config.Config, dial dcc.Dial, name, dir, tpm string, hv agent.Hypervisor, net agent.HostNetwork, volumes map[string]agent.VolumeBackend,
	log *slog.Logger) (*Host, error) {
	h := &Host{Name: name, Driver: hv, Network: net, dial: dial, log: log.With("host", name), agent: agent.Config{
		Name: name, AvailabilityZone: cfg.Agent.AvailabilityZone, HostIP: cfg.Agent.HostIP, NetworkNode: cfg.Agent.NetworkNode, Volumes: volumes,
		CPUAllocationRatio: cfg.Compute.CPUAllocationRatio, RAMAllocationRatio: cfg.Compute.RAMAllocationRatio,
		DiskAllocationRatio: cfg.Compute.DiskAllocationRatio, HeartbeatInterval: cfg.Compute.HeartbeatInterval,
		ConsoleListen: consoleListen(cfg),
		Log:           log.With("host", name),
	}}
	if len(volumes) > 0 {
		// A storage host serves its volumes to other hosts' servers on its
		// address.
		var err error
		if h.agent.Exports, err = nbd.NewExporter(filepath.Join(dir, "exports"), cmp.Or(cfg.Agent.HostIP, "127.0.0.1")); err != nil {
			return nil, err
		}
		// What is in the scratch directory is an agent's that was killed
		// (a download of the image a volume was being made from): no
		// agent of the host uses it now.
		h.agent.ScratchDir = filepath.Join(dir, "scratch")
		if err := os.RemoveAll(h.agent.ScratchDir); err != nil {
			return nil, fmt.Errorf("host %s: empty the scratch directory: %w", name, err)
		}
		if err := os.MkdirAll(h.agent.ScratchDir, 0o700); err != nil {
			return nil, err
		}
	}
	if tpm == "" {
		return h, nil
	}
	files, err := measured(cfg, dir)
	if err != nil {
		return nil, err
	}
	h.DCC, err = dcc.Open(dcc.Config{
		Host: name, Dir: dir, TPM: tpm, KernelLog: cfg.Attestation.IMALog,
		Files: files, MeasureInterval: cfg.Attestation.MeasureInterval, Log: h.log,
	})
	if err != nil {
		return nil, err
	}
	h.agent.Refusal = h.DCC.Refusal
	return h, nil
}

// consoleListen is where the host's agent serves remote consoles: as
// configured, else on the host's address (loopback when it names none),
// on a free port.
func consoleListen(cfg *config.Config) string {
	if cfg.Agent.ConsoleListen != "" {
		return cfg.Agent.ConsoleListen
	}
	return net.JoinHostPort(cmp.Or(cfg.Agent.HostIP, "127.0.0.1"), "0")
}

// measured returns the files the userspace measurer measures: the
// trustack binary and the configured ones, {host_dir} replaced.
func measured(cfg *config.Config, dir string) ([]string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find the trustack binary to measure: %w", err)
	}
	files := []string{self}
	for _, f := range cfg.Attestation.MeasureFiles {
		files = append(files, strings.ReplaceAll(f, "{host_dir}", dir))
	}
	return files, nil
}

// Run serves the host until ctx ends. An attesting host first registers
// its TPM, and registers again whenever the bus refuses it (the verifier
// revoked it, which it lets back once an operator forgets it, or its boot
// state changed).
func (h *Host) Run(ctx context.Context) error {
	if h.DCC == nil {
		conn, err := h.dial()
		if err != nil {
			return err
		}
		defer conn.Close()
		return agent.New(conn, h.Driver, h.Network, h.agent).Run(ctx)
	}
	defer h.DCC.Close()
	for {
		refused, err := h.runAttested(ctx)
		if refused == nil || ctx.Err() != nil {
			return err
		}
		h.log.Error("the bus refused this host: it registers again, which the verifier allows once an operator forgets a revoked host", "error", refused)
	}
}

// runAttested registers the host's TPM, then serves the host until ctx
// ends or the bus refuses its credentials, which it returns as refused.
func (h *Host) runAttested(ctx context.Context) (refused, err error) {
	conn, err := h.DCC.Join(ctx, h.dial)
	if err != nil {
		return nil, fmt.Errorf("host %s: join: %w", h.Name, err)
	}
	defer conn.Close()
	sub, err := h.DCC.Serve(conn)
	if err != nil {
		return nil, err
	}
	defer sub.Unsubscribe()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go h.DCC.Run(ctx, conn)
	go func() {
		select {
		case <-conn.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	err = agent.New(conn, h.Driver, h.Network, h.agent).Run(ctx)
	select {
	case <-conn.Done():
		if refused := conn.Err(); refused != nil {
			return refused, fmt.Errorf("host %s: %w", h.Name, refused)
		}
	default:
	}
	return nil, err
}
