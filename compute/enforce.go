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
// to a host that does; if none does, it goes to ERROR with a fault that
// says why, and stays where it is. Either way its instance actions record
// it.

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

// enforce checks every placed, idle server against its requirements (the
// project's as they are now, with those its flavor and hints added) and
// starts migrating those that no longer meet them.
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
		if h == nil || srv.TaskState != "" || srv.VMState == trustack.VMError {
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
		s.opts.Log.Info("server no longer meets its requirements; migrating it", "server", srv.ID, "host", h.Name, "why", why)
		s.enqueue(func(ctx context.Context) { s.migrate(ctx, srv.ID, h.Name, reqs, why) })
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

// migrate moves a server off a host that no longer meets its requirements,
// as a cold migration: the server stops, its disk is copied through the
// image service, the new host starts it from the copy (stopped again if it
// was stopped) and the old host deletes it. The claim moves to the new
// host before anything runs there; if the move fails the server stays on
// its host, in ERROR with a fault.
func (s *Service) migrate(ctx context.Context, id, from string, reqs trustack.Requirements, why string) {
	requestID := "req-" + uuid.NewString()
	start := s.opts.Now().UTC()
	var was string
	srv, err := s.store.UpdateServer(ctx, id, func(cur *trustack.Server) error {
		if cur.TaskState != "" || cur.Host != from || cur.VMState == trustack.VMError {
			return errMoved
		}
		was = cur.VMState
		cur.TaskState, cur.Requirements, cur.UpdatedAt = trustack.TaskMigrating, reqs, start
		return nil
	})
	if err != nil {
		return // changed meanwhile; the next check looks again
	}
	action := trustack.InstanceAction{ServerID: id, Action: "migrate", RequestID: requestID, ProjectID: srv.ProjectID, StartTime: start, Message: why}
	if err := s.store.AddAction(ctx, action); err != nil {
		s.opts.Log.Error("record instance action", "server", id, "action", "migrate", "error", err)
	}
	old, err := s.store.HostByName(ctx, from)
	if err != nil {
		s.migrationFailed(ctx, srv, requestID, start, fmt.Errorf("%s %w", why, err))
		return
	}
	req := scheduler.Request{Server: srv, Zone: askedZone(srv), Exclude: []string{old.ID}, Move: true, PreferDomain: old.Domain}
	if req.PhysicalNetworks, err = s.physicalNetworks(ctx, srv); err != nil {
		s.migrationFailed(ctx, srv, requestID, start, err)
		return
	}
	if srv.GroupID != "" {
		if req.Group, err = s.store.ServerGroup(ctx, srv.GroupID); err != nil {
			s.migrationFailed(ctx, srv, requestID, start, err)
			return
		}
	}
	to, err := s.placer.Place(ctx, req)
	if err != nil {
		s.migrationFailed(ctx, srv, requestID, start, trustack.Errorf(trustack.EOVERQUOTA, "%s It could not be migrated: %s", why, trustack.ErrorMessage(err)))
		return
	}
	if err := s.moveVM(ctx, srv, to, was); err != nil {
		s.moveClaimBack(ctx, srv, old)
		s.migrationFailed(ctx, srv, requestID, start, fmt.Errorf("%s Migrating it to host %s failed: %w", why, to.Name, err))
		return
	}
	moved := s.event("compute_migrate_instance", to.Name, start, nil)
	moved.Details = why
	_, err = s.store.UpdateServerWithEvent(ctx, id, requestID, moved, func(cur *trustack.Server) error {
		if cur.TaskState != trustack.TaskMigrating {
			return errMoved
		}
		cur.Host, cur.Node, cur.AvailabilityZone, cur.RCoT = to.Name, to.HypervisorHostname, to.AvailabilityZone, to.RCoT()
		cur.TaskState, cur.UpdatedAt = "", s.opts.Now().UTC()
		if was == trustack.VMStopped {
			cur.PowerState = trustack.PowerShutdown
		} else {
			cur.VMState, cur.PowerState = trustack.VMActive, trustack.PowerRunning
		}
		return nil
	})
	if err != nil {
		s.opts.Log.Error("record a migrated server", "server", id, "error", err)
	}
	// What is left on the old host goes; the server lives on the new one.
	if err := s.reach(ctx, from, func(ctx context.Context) error { return s.agents.Destroy(ctx, from, id) }); err != nil {
		s.opts.Log.Warn("destroy a migrated server on its old host", "server", id, "host", from, "error", err)
	}
}

// moveVM stops the server on its host, copies its disk to a transient
// image of its project (unless it boots from a volume), and starts it
// from there on host to with its volumes, stopped again if it was
// stopped. A guest that was paused or suspended runs after the move: a
// cold migration boots it again. On failure the server runs on its old
// host as it did.
func (s *Service) moveVM(ctx context.Context, srv *trustack.Server, to *trustack.Host, was string) error {
	actx, cancel := context.WithTimeout(ctx, s.opts.AgentTimeout)
	defer cancel()
	if _, err := s.agents.Power(actx, srv.Host, srv.ID, wire.OpStop); err != nil {
		return fmt.Errorf("stop the server on host %s: %w", srv.Host, err)
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
		return err
	}
	if volumes, err = s.volumeDisks(actx, srv, to.Name); err != nil {
		restart()
		return fmt.Errorf("serve the server's volumes to host %s: %w", to.Name, err)
	}
	for _, p := range volumes {
		spec.Volumes = append(spec.Volumes, p.disk)
	}
	_, err = s.agents.Spawn(actx, to.Name, spec)
	if err == nil && was == trustack.VMStopped {
		_, err = s.agents.Power(actx, to.Name, srv.ID, wire.OpStop)
	}
	if err != nil {
		if derr := s.agents.Destroy(actx, to.Name, srv.ID); derr != nil {
			s.opts.Log.Warn("clean up a failed migration", "server", srv.ID, "host", to.Name, "error", derr)
		}
		restart()
		return fmt.Errorf("start the server on host %s: %w", to.Name, err)
	}
	for _, p := range volumes {
		if err := s.opts.Volumes.MoveAttachment(actx, system, p.v.ID, p.v.Attachment.ID, to.Name); err != nil {
			s.opts.Log.Error("record a migrated server's volume on its new host", "server", srv.ID, "volume", p.v.ID, "error", err)
		}
		if storage, _ := volume.Location(p.v); storage == to.Name {
			s.unexport(actx, srv.Host, p.v) // served to the old host no more
		}
	}
	return nil
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
func (s *Service) migrationFailed(ctx context.Context, srv *trustack.Server, requestID string, start time.Time, cause error) {
	s.opts.Log.Warn("migration failed", "server", srv.ID, "error", cause)
	_, err := s.store.UpdateServerWithEvent(ctx, srv.ID, requestID, s.event("compute_migrate_instance", srv.Host, start, cause), func(cur *trustack.Server) error {
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
