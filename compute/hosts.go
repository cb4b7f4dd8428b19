package compute

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/wire"
)

// heartbeats remembers when each host was last heard from; they are
// written to the store in batches.
type heartbeats struct {
	mu      sync.Mutex
	seen    map[string]time.Time
	pending map[string]time.Time
}

func (h *heartbeats) beat(name string, t time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seen[name] = t
	if h.pending == nil {
		h.pending = map[string]time.Time{}
	}
	h.pending[name] = t
}

func (h *heartbeats) last(name string) time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.seen[name]
}

func (h *heartbeats) take() map[string]time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.pending
	h.pending = nil
	return p
}

// heartbeatFlush is how often heartbeats reach the store, where other
// controllers and restarts see them.
const heartbeatFlush = 5 * time.Second

func (s *Service) flushHeartbeats(ctx context.Context) {
	t := time.NewTicker(heartbeatFlush)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if p := s.heartbeats.take(); len(p) > 0 {
				s.store.SetLastSeen(context.WithoutCancel(ctx), p)
			}
			return
		case <-t.C:
			if p := s.heartbeats.take(); len(p) > 0 {
				if err := s.store.SetLastSeen(ctx, p); err != nil {
					s.opts.Log.Error("record heartbeats", "hosts", len(p), "error", err)
				}
			}
		}
	}
}

// Heartbeat records that a host's agent was heard from now.
func (s *Service) Heartbeat(name string) {
	s.heartbeats.beat(name, s.opts.Now().UTC())
}

// Register records a host as its agent describes it (a new one, or one
// back with the same name) and returns it with the servers it should run:
// the agent destroys any other, and reports those it lacks.
func (s *Service) Register(ctx context.Context, h *trustack.Host) (wire.Registration, error) {
	now := s.opts.Now().UTC()
	if h.ID == "" {
		h.ID = uuid.NewString()
	}
	if h.AvailabilityZone == "" {
		h.AvailabilityZone = s.opts.DefaultAvailabilityZone
	}
	h.Enabled, h.CreatedAt, h.UpdatedAt, h.LastSeen = true, now, now, now
	if s.verifier != nil {
		// Kept if the host is known already.
		h.Enabled, h.DisabledReason = false, trustack.AttestationHold+"waiting for its first attestation"
	}
	stored, err := s.store.RegisterHost(ctx, h)
	if err != nil {
		return wire.Registration{}, err
	}
	s.placer.Forget(stored)
	s.heartbeats.beat(stored.Name, now)
	list, err := s.store.Servers(ctx, trustack.ServerFilter{Host: stored.Name})
	if err != nil {
		return wire.Registration{}, err
	}
	expected := []wire.Expected{}
	for _, srv := range list {
		if srv.VMState != trustack.VMBuilding || srv.TaskState == trustack.TaskSpawning {
			expected = append(expected, wire.Expected{ServerID: srv.ID, Power: srv.PowerState})
		}
	}
	reg := wire.Registration{Host: *stored, Expected: expected}
	if s.opts.Network != nil {
		if reg.Network, err = s.opts.Network.HostNetwork(ctx, stored); err != nil {
			return wire.Registration{}, fmt.Errorf("the network state of host %s: %w", stored.Name, err)
		}
	}
	if s.verifier != nil {
		s.verifier.AttestSoon(stored.Name)
	}
	s.opts.Log.Info("compute host registered", "host", stored.Name, "id", stored.ID, "vcpus", stored.VCPUs, "memory_mb", stored.MemoryMB, "servers", len(expected), "ports", len(reg.Network.Ports), "volume_backends", len(stored.Storage))
	return reg, nil
}

// PowerChanged records what an agent found: a server whose power state
// changed without being asked (its VM stopped or crashed), or that is
// missing from its host. A running server that stopped becomes SHUTOFF
// with a fault that says why.
func (s *Service) PowerChanged(ctx context.Context, e wire.PowerEvent) error {
	state := e.Power
	_, err := s.store.UpdateServer(ctx, e.ServerID, func(cur *trustack.Server) error {
		if cur.Host != e.Host || cur.TaskState != "" || cur.VMState == trustack.VMDeleted || cur.PowerState == state {
			return errMoved
		}
		cur.PowerState = state
		cur.UpdatedAt = s.opts.Now().UTC()
		if state == trustack.PowerShutdown || state == trustack.PowerCrashed || state == trustack.PowerNoState {
			if cur.VMState == trustack.VMActive || cur.VMState == trustack.VMPaused || cur.VMState == trustack.VMSuspended {
				cur.VMState = trustack.VMStopped
			}
			cur.Fault = &trustack.Fault{Code: 500, Message: e.Reason, Created: s.opts.Now().UTC()}
		}
		return nil
	})
	if err == errMoved {
		return nil
	}
	return err
}

// Zone is an availability zone and whether any of its hosts is up.
type Zone struct {
	Name      string
	Available bool
	Hosts     []*trustack.Host
}

// Zones returns the availability zones of the compute hosts, by name.
func (s *Service) Zones(ctx context.Context) ([]Zone, error) {
	hosts, err := s.store.Hosts(ctx)
	if err != nil {
		return nil, err
	}
	byName := map[string]*Zone{}
	for _, h := range hosts {
		z := byName[h.AvailabilityZone]
		if z == nil {
			z = &Zone{Name: h.AvailabilityZone}
			byName[h.AvailabilityZone] = z
		}
		z.Hosts = append(z.Hosts, h)
		z.Available = z.Available || h.Enabled && s.Alive(h)
	}
	out := make([]Zone, 0, len(byName))
	for _, z := range byName {
		out = append(out, *z)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Hosts returns every compute host.
func (s *Service) Hosts(ctx context.Context) ([]*trustack.Host, error) {
	return s.store.Hosts(ctx)
}

// Host returns one compute host.
func (s *Service) Host(ctx context.Context, id string) (*trustack.Host, error) {
	return s.store.Host(ctx, id)
}

// SetHostEnabled enables or disables a host's compute service; a disabled
// host gets no new servers.
func (s *Service) SetHostEnabled(ctx context.Context, id string, enabled bool, reason string) (*trustack.Host, error) {
	h, err := s.store.UpdateHost(ctx, id, func(h *trustack.Host) error {
		h.Enabled, h.DisabledReason = enabled, ""
		if !enabled {
			h.DisabledReason = reason
		}
		h.UpdatedAt = s.opts.Now().UTC()
		return nil
	})
	if err == nil {
		s.placer.Forget(h)
	}
	return h, err
}

// SetHostForcedDown marks a host's service down whatever its heartbeats
// say, or lets them decide again, as Nova's forced_down: an operator who
// knows a host is lost (fenced) can then evacuate its servers at once,
// and the scheduler places nothing on it.
func (s *Service) SetHostForcedDown(ctx context.Context, id string, forced bool) (*trustack.Host, error) {
	h, err := s.store.UpdateHost(ctx, id, func(h *trustack.Host) error {
		h.ForcedDown = forced
		h.UpdatedAt = s.opts.Now().UTC()
		return nil
	})
	if err == nil {
		s.placer.Forget(h)
	}
	return h, err
}

// DeleteHost forgets a host that runs no servers.
func (s *Service) DeleteHost(ctx context.Context, id string) error {
	return s.store.DeleteHost(ctx, id)
}

var _ wire.Controller = (*Service)(nil)

// ApplyAttestation sets what the verifier concluded of a host: its chain
// of trust (the security property trust; "" removes it) and whether
// attestation keeps it out of scheduling (hold, a sentence; "" lets back
// a host that attestation held, never one an operator disabled). A change
// moves the host's generation and has placed servers checked again, so
// that those on a held host, or that needed its trust, are migrated.
// ENOTFOUND for a host that never joined.
func (s *Service) ApplyAttestation(ctx context.Context, name, rcot, hold string) error {
	h, err := s.store.HostByName(ctx, name)
	if err != nil {
		return err
	}
	if enabled, reason := held(h, hold); h.RCoT() != rcot || h.Enabled != enabled || h.DisabledReason != reason {
		h, err = s.store.UpdateHost(ctx, h.ID, func(cur *trustack.Host) error {
			if rcot == "" {
				delete(cur.Security, trustack.SecurityTrust)
			} else {
				if cur.Security == nil {
					cur.Security = map[string]string{}
				}
				cur.Security[trustack.SecurityTrust] = rcot
			}
			cur.Enabled, cur.DisabledReason = held(cur, hold)
			cur.UpdatedAt = s.opts.Now().UTC()
			return nil
		})
		if err != nil {
			return err
		}
		s.opts.Log.Info("attestation changed a host", "host", name, "trust", rcot, "held", hold)
		s.placer.Forget(h)
		s.RequirementsChanged()
	}
	return nil
}

// HostServers returns how many servers a host has, of every state.
func (s *Service) HostServers(ctx context.Context, name string) (int, error) {
	servers, err := s.store.Servers(ctx, trustack.ServerFilter{Host: name})
	return len(servers), err
}

// held returns whether host h should be enabled, and its disabled reason,
// for attestation's hold ("" for none): a host an operator disabled stays
// as the operator left it.
func held(h *trustack.Host, hold string) (enabled bool, reason string) {
	switch {
	case !h.Enabled && !h.HeldByAttestation():
		return false, h.DisabledReason
	case hold == "":
		return true, ""
	}
	return false, trustack.AttestationHold + hold
}
