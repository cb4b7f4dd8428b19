package compute

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/scheduler"
	"github.com/trustack/trustack/volume"
	"github.com/trustack/trustack/wire"
)

// Requirements keep holding after placement: when hosts' properties or
// domains, the topology or a project's requirements change, and every
// EnforceInterval, each placed server is checked against its requirements
// on the host it runs on. One that no longer meets them is migrated, cold,
// to a host that does, or, if its host is down, evacuated (rebuilt there,
// see evacuateVM); if none does, it goes to ERROR with a fault that says
// why, and stays where it is. Either way its instance actions record it.

// RequirementsChanged tells the service that something placement depends
// on changed: the scheduler reads hosts and topology anew, and placed
// servers are checked again soon.
func (s *Service) RequirementsChanged() {
	s.placer.Invalidate()
	select {
	case s.recheck <- struct{}{}:
	default: // a check is due already, and will see this change
	}
}

// enforceLoop checks placed servers when asked to and on a timer, until
// ctx ends.
func (s *Service) enforceLoop(ctx context.Context) {
	tick := time.NewTicker(s.opts.EnforceInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.recheck:
		case <-tick.C:
		}
		if err := s.enforce(ctx); err != nil && ctx.Err() == nil {
			s.opts.Log.Error("check servers against their requirements", "error", err)
		}
	}
}

// enforce checks every placed, idle server on this controller's share of
// the hosts against its requirements (the project's as they are now, with
// those its flavor and hints added) and starts migrating those that no
// longer meet them.
func (s *Service) enforce(ctx context.Context) error {
	hosts, err := s.store.Hosts(ctx)
	if err != nil {
		return err
	}
	byName := make(map[string]*trustack.Host, len(hosts))
	for _, h := range hosts {
		byName[h.Name] = h
	}
	topology, err := s.store.Topology(ctx)
	if err != nil {
		return err
	}
	servers, err := s.store.Servers(ctx, trustack.ServerFilter{})
	if err != nil {
		return err
	}
	var stored map[string]trustack.Requirements
	if s.opts.Requirements != nil {
		if stored, err = s.opts.Requirements.Stored(ctx); err != nil {
			return fmt.Errorf("read requirements of projects: %w", err)
		}
	}
	for _, srv := range servers {
		h := byName[srv.Host]
		if h == nil || srv.TaskState != "" || srv.VMState == trustack.VMError || !s.owns(h.Name) {
			continue
		}
		reqs := currentRequirements(srv, stored)
		why := violation(reqs, h, topology, srv.ProjectID)
		if why == "" {
			if !slices.Equal(reqs, srv.Requirements) {
				s.store.UpdateServer(ctx, srv.ID, func(cur *trustack.Server) error {
					cur.Requirements = reqs
					return nil
				})
			}
			continue
		}
		m := move{from: h.Name, reqs: reqs, why: why, evacuate: !s.Alive(h)}
		s.opts.Log.Info("server no longer meets its requirements; moving it", "server", srv.ID, "host", h.Name, "why", why, "evacuate", m.evacuate)
		s.enqueue(func(ctx context.Context) { s.migrate(ctx, srv.ID, m) })
	}
	return nil
}

// currentRequirements are the server's requirements with its project's as
// they are now (stored, by project; nil without a requirements model).
func currentRequirements(srv *trustack.Server, stored map[string]trustack.Requirements) trustack.Requirements {
	if stored == nil {
		return srv.Requirements
	}
	out := slices.Clone(stored[srv.ProjectID])
	for _, r := range srv.Requirements {
		if r.Source != trustack.FromProject {
			out = append(out, r)
		}
	}
	return out
}

// violation says how a server of the project breaks its requirements on
// host h, "" if it does not. Another project's isolation that excludes
// this one is that project's to keep: only the server's own count.
func violation(reqs trustack.Requirements, h *trustack.Host, t *trustack.Topology, project string) string {
	if h.HeldByAttestation() {
		return fmt.Sprintf("Host %s is out of scheduling: %s.", h.Name, strings.TrimPrefix(h.DisabledReason, trustack.AttestationHold))
	}
	if r, unmet := reqs.Unmet(h, t); unmet {
		return fmt.Sprintf("Host %s no longer meets the requirement %s.", h.Name, r)
	}
	if iso := reqs.Isolation(); iso.Shuns(h.Tenants, project) {
		return fmt.Sprintf("Host %s runs servers of a project that the isolation %s excludes.", h.Name, iso)
	}
	return ""
}

// move is a server's move off its host: a cold migration while the
// host's agent answers, an evacuation once the host is lost.
type move struct {
	from      string                // the host it leaves
	onto      string                // the host an operator named; "" for the scheduler's choice
	reqs      trustack.Requirements // its requirements, as they are now
	why       string                // a sentence for the action and, on failure, the fault
	evacuate  bool                  // the host's agent does not answer: rebuild the server elsewhere
	requestID string                // of the move's instance action
	start     time.Time
}

// kind is the move's instance action and event.
func (m move) kind() (action, event string) {
	if m.evacuate {
		return "evacuate", "compute_rebuild_instance"
	}
	return "migrate", "compute_migrate_instance"
}

// startMove has a server, idle and on host m.from, start moving, and
// records the move as an instance action: of the operator c, or of
// trustack itself if c is nil. It returns the server as it then is and
// its VM state before; errMoved if it is no longer on m.from, the
// conflict of invalidState if it is not idle there.
func (s *Service) startMove(ctx context.Context, c *Caller, id string, m *move) (srv *trustack.Server, was string, err error) {
	m.start = s.opts.Now().UTC()
	srv, err = s.store.UpdateServer(ctx, id, func(cur *trustack.Server) error {
		if cur.Host != m.from {
			return errMoved
		}
		if cur.TaskState != "" || !slices.Contains(movableFrom, cur.VMState) || !m.evacuate && cur.VMState == trustack.VMError {
			return invalidState(cur, "evacuate")
		}
		was = cur.VMState
		cur.TaskState, cur.Requirements, cur.UpdatedAt = trustack.TaskMigrating, m.reqs, m.start
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	action, _ := m.kind()
	a := trustack.InstanceAction{ServerID: id, Action: action, RequestID: "req-" + uuid.NewString(), ProjectID: srv.ProjectID, StartTime: m.start}
	if c != nil {
		a = s.actionOf(*c, id, action)
	}
	a.Message, m.requestID = m.why, a.RequestID
	if err := s.store.AddAction(ctx, a); err != nil {
		s.opts.Log.Error("record instance action", "server", id, "action", action, "error", err)
	}
	return srv, was, nil
}

// movableFrom are the VM states a server may be moved in: an evacuation
// also moves one in ERROR, as Nova's.
var movableFrom = []string{trustack.VMActive, trustack.VMStopped, trustack.VMPaused, trustack.VMSuspended, trustack.VMError}

// migrate moves a server off a host that no longer meets its requirements
// (see move), once enforce found it so.
func (s *Service) migrate(ctx context.Context, id string, m move) {
	srv, was, err := s.startMove(ctx, nil, id, &m)
	if err != nil {
		return // changed meanwhile; the next check looks again
	}
	s.moveServer(ctx, srv, was, m)
}

// moveServer moves a server, started moving by startMove, to the host the
// scheduler chooses (m.onto, if named, must be it). A migration stops the
// server, copies its disk to the new host through the image service and
// starts it there (moveVM); an evacuation rebuilds it there (evacuateVM).
// The claim moves to the new host before anything runs there; if the
// move fails the server stays on its host, in ERROR with a fault.
func (s *Service) moveServer(ctx context.Context, srv *trustack.Server, was string, m move) {
	_, event := m.kind()
	failed := func(err error) { s.migrationFailed(ctx, srv, m, err) }
	old, err := s.store.HostByName(ctx, m.from)
	if err != nil {
		failed(fmt.Errorf("%s %w", m.why, err))
		return
	}
	req := scheduler.Request{Server: srv, Zone: askedZone(srv), Exclude: []string{old.ID}, Move: true, PreferDomain: old.Domain}
	if m.onto != "" {
		onto, err := s.store.HostByName(ctx, m.onto)
		if err != nil {
			failed(fmt.Errorf("%s %w", m.why, err))
			return
		}
		req.Only = onto.ID
	}
	if req.PhysicalNetworks, err = s.physicalNetworks(ctx, srv); err != nil {
		failed(err)
		return
	}
	if srv.GroupID != "" {
		if req.Group, err = s.store.ServerGroup(ctx, srv.GroupID); err != nil {
			failed(err)
			return
		}
	}
	to, err := s.placer.Place(ctx, req)
	if err != nil {
		failed(trustack.Errorf(trustack.EOVERQUOTA, "%s It could not be moved: %s", m.why, trustack.ErrorMessage(err)))
		return
	}
	moveVM := s.moveVM
	if m.evacuate {
		moveVM = s.evacuateVM
	}
	ports, err := moveVM(ctx, srv, to, was)
	if err != nil {
		s.moveClaimBack(ctx, srv, old)
		failed(fmt.Errorf("%s Moving it to host %s failed: %w", m.why, to.Name, err))
		return
	}
	moved := s.event(event, to.Name, m.start, nil)
	moved.Details = m.why
	_, err = s.store.UpdateServerWithEvent(ctx, srv.ID, m.requestID, moved, func(cur *trustack.Server) error {
		if cur.TaskState != trustack.TaskMigrating {
			return errMoved
		}
		cur.Host, cur.Node, cur.AvailabilityZone, cur.RCoT = to.Name, to.HypervisorHostname, to.AvailabilityZone, to.RCoT()
		cur.TaskState, cur.Fault, cur.UpdatedAt = "", nil, s.opts.Now().UTC()
		if was == trustack.VMStopped {
			cur.VMState, cur.PowerState = trustack.VMStopped, trustack.PowerShutdown
		} else {
			cur.VMState, cur.PowerState = trustack.VMActive, trustack.PowerRunning
		}
		return nil
	})
	if err != nil {
		s.opts.Log.Error("record a moved server", "server", srv.ID, "error", err)
	}
	s.portsBound(ctx, ports)
	if m.evacuate {
		return // the lost host's agent destroys its copy when it comes back, no longer expected there
	}
	// What is left on the old host goes; the server lives on the new one.
	if err := s.reach(ctx, m.from, func(ctx context.Context) error { return s.agents.Destroy(ctx, m.from, srv.ID) }); err != nil {
		s.opts.Log.Warn("destroy a migrated server on its old host", "server", srv.ID, "host", m.from, "error", err)
	}
}

// moveVM stops the server on its host, copies its disk to a transient
// image of its project (unless it boots from a volume), and starts it
// from there on host to with its volumes, stopped again if it was
// stopped. A guest that was paused or suspended runs after the move: a
// cold migration boots it again. On failure the server runs on its old
// host as it did. It returns the server's ports as the new host wired
// them.
func (s *Service) moveVM(ctx context.Context, srv *trustack.Server, to *trustack.Host, was string) ([]wire.Port, error) {
	actx, cancel := context.WithTimeout(ctx, s.opts.AgentTimeout)
	defer cancel()
	if _, err := s.agents.Power(actx, srv.Host, srv.ID, wire.OpStop); err != nil {
		return nil, fmt.Errorf("stop the server on host %s: %w", srv.Host, err)
	}
	var volumes []pluggedVolume
	restart := func() {
		if len(volumes) > 0 {
			// Its volumes were served to host to, and are again to it.
			s.replugVolumes(actx, srv)
		}
		if was != trustack.VMStopped {
			if _, err := s.agents.Power(actx, srv.Host, srv.ID, wire.OpStart); err != nil {
				s.opts.Log.Error("restart a server whose migration failed", "server", srv.ID, "error", err)
			}
		}
	}
	spec, err := s.spec(actx, srv)
	if err == nil && srv.Root() == nil {
		var disk *wire.ImageRef
		if disk, err = s.copyDisk(actx, srv); err == nil {
			defer func() {
				if err := s.images.DeleteImage(ctx, disk.ID); err != nil {
					s.opts.Log.Warn("delete the transient image of a migration", "image", disk.ID, "error", err)
				}
			}()
			spec.Image = *disk
		}
	}
	if err != nil {
		restart()
		return nil, err
	}
	if volumes, err = s.startOn(actx, srv, to, spec, was); err != nil {
		restart()
		return nil, err
	}
	for _, p := range volumes {
		if err := s.opts.Volumes.MoveAttachment(actx, system, p.v.ID, p.v.Attachment.ID, to.Name); err != nil {
			s.opts.Log.Error("record a migrated server's volume on its new host", "server", srv.ID, "volume", p.v.ID, "error", err)
		}
		if storage, _ := volume.Location(p.v); storage == to.Name {
			s.unexport(actx, srv.Host, p.v) // served to the old host no more
		}
	}
	return spec.Ports, nil
}

// startOn starts a moved server from spec on host to, with its volumes
// served there, and stops it again if it was stopped; it returns the
// volumes. If it cannot, what it started there is destroyed (its volumes
// may still be served there).
func (s *Service) startOn(ctx context.Context, srv *trustack.Server, to *trustack.Host, spec wire.Spec, was string) ([]pluggedVolume, error) {
	volumes, err := s.volumeDisks(ctx, srv, to.Name)
	if err != nil {
		return nil, fmt.Errorf("serve the server's volumes to host %s: %w", to.Name, err)
	}
	for _, p := range volumes {
		spec.Volumes = append(spec.Volumes, p.disk)
	}
	_, err = s.agents.Spawn(ctx, to.Name, spec)
	if err == nil && was == trustack.VMStopped {
		_, err = s.agents.Power(ctx, to.Name, srv.ID, wire.OpStop)
	}
	if err != nil {
		if derr := s.agents.Destroy(ctx, to.Name, srv.ID); derr != nil {
			s.opts.Log.Warn("clean up a failed move", "server", srv.ID, "host", to.Name, "error", derr)
		}
		return volumes, fmt.Errorf("start the server on host %s: %w", to.Name, err)
	}
	return volumes, nil
}

// replugVolumes serves a stopped server's volumes to its host again, with
// new keys, and has its host plug them in as they now are.
func (s *Service) replugVolumes(ctx context.Context, srv *trustack.Server) {
	volumes, err := s.volumeDisks(ctx, srv, srv.Host)
	for _, p := range volumes {
		if err == nil && p.disk.NBD != nil {
			err = s.agents.AttachVolume(ctx, srv.Host, srv.ID, p.disk)
		}
	}
	if err != nil {
		s.opts.Log.Error("serve its volumes again to a server whose migration failed", "server", srv.ID, "error", err)
	}
}

// copyDisk uploads the stopped server's disk as a private image of its
// project and returns how a host downloads it.
func (s *Service) copyDisk(ctx context.Context, srv *trustack.Server) (*wire.ImageRef, error) {
	base, err := s.images.BootImage(ctx, srv.ProjectID, srv.ImageID)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", srv.ImageID, err)
	}
	img := &trustack.Image{Name: "migration of " + srv.ID, Visibility: trustack.VisibilityPrivate, DiskFormat: base.DiskFormat,
		ContainerFormat: base.ContainerFormat, MinDisk: srv.Flavor.Disk, Properties: map[string]string{"image_type": "migration", "instance_uuid": srv.ID}}
	if err := s.images.CreateSnapshot(ctx, srv.ProjectID, img); err != nil {
		return nil, fmt.Errorf("an image to migrate the disk through: %w", err)
	}
	upload := wire.Upload{ImageID: img.ID, URL: s.opts.ImageURL + "/v2/images/" + img.ID + "/file"}
	if s.opts.ImageTokens != nil {
		if upload.Token, err = s.opts.ImageTokens.IssueToken(ctx, srv.UserID, srv.ProjectID); err != nil {
			return nil, fmt.Errorf("a token to upload the disk with: %w", err)
		}
	}
	if err := s.agents.Snapshot(ctx, srv.Host, srv.ID, upload); err != nil {
		if derr := s.images.DeleteImage(ctx, img.ID); derr != nil {
			s.opts.Log.Warn("delete the transient image of a migration", "image", img.ID, "error", derr)
		}
		return nil, fmt.Errorf("copy the disk from host %s: %w", srv.Host, err)
	}
	return s.imageRef(ctx, srv.ProjectID, img.ID)
}

// moveClaimBack returns the claim of a server whose migration failed to
// its old host, where it still is.
func (s *Service) moveClaimBack(ctx context.Context, srv *trustack.Server, old *trustack.Host) {
	f := srv.Flavor
	c := trustack.Claim{ServerID: srv.ID, HostID: old.ID, VCPUs: f.VCPUs, MemoryMB: f.RAM, DiskGB: srv.LocalDiskGB(),
		ProjectID: srv.ProjectID, Isolation: srv.Requirements.Isolation()}
	for attempt := 0; attempt < maxClaimBack; attempt++ {
		h, err := s.store.HostByName(ctx, old.Name)
		if err != nil {
			break
		}
		from, to, err := s.store.MoveClaim(ctx, c, h.Generation, nil)
		if err == nil {
			s.placer.Forget(from)
			s.placer.Forget(to)
			return
		}
		if trustack.ErrorCode(err) != trustack.ECONFLICT {
			break
		}
	}
	s.opts.Log.Error("give a server whose migration failed its claim back", "server", srv.ID, "host", old.Name)
}

// maxClaimBack bounds the tries of moveClaimBack, which races only other
// claims on the old host.
const maxClaimBack = 10

// migrationFailed ends a migration that did not happen: the server stays
// on its host, in ERROR, with the fault saying why.
func (s *Service) migrationFailed(ctx context.Context, srv *trustack.Server, m move, cause error) {
	s.opts.Log.Warn("move failed", "server", srv.ID, "error", cause)
	_, event := m.kind()
	_, err := s.store.UpdateServerWithEvent(ctx, srv.ID, m.requestID, s.event(event, srv.Host, m.start, cause), func(cur *trustack.Server) error {
		if cur.TaskState != trustack.TaskMigrating {
			return errMoved
		}
		cur.VMState, cur.TaskState = trustack.VMError, ""
		cur.Fault = s.fault(cause)
		cur.UpdatedAt = s.opts.Now().UTC()
		return nil
	})
	if err != nil && err != errMoved {
		s.opts.Log.Error("record a failed migration", "server", srv.ID, "error", err)
	}
}

// abandonMigration ends a migration a restart cut off: the server is where
// its record says, whose agent tells its state, and its claim goes back
// there if it had moved. A copy the new host may have started is destroyed
// when that host's agent next registers, as one not expected there; the
// next check of requirements migrates the server again.
func (s *Service) abandonMigration(ctx context.Context, srv *trustack.Server) {
	if old, err := s.store.HostByName(ctx, srv.Host); err == nil {
		// A migrating server holds a claim: on its old host, or on the
		// one it was moving to.
		claims, err := s.store.Claims(ctx, old.ID)
		if err == nil && !slices.ContainsFunc(claims, func(c trustack.Claim) bool { return c.ServerID == srv.ID }) {
			s.moveClaimBack(ctx, srv, old)
		}
	}
	s.resync(ctx, srv)
}
