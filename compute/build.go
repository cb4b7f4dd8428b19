package compute

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/metadata"
	"github.com/trustack/trustack/scheduler"
	"github.com/trustack/trustack/wire"
)

// Start starts the service's background work, until ctx ends: it first
// picks up what a previous run left in progress, then records heartbeats,
// checks servers against their requirements and, among several
// controllers, takes over the tasks of those gone.
// Call it before serving requests; Wait waits for work in flight after ctx
// ends.
func (s *Service) Start(ctx context.Context) error {
	s.runCtx = ctx
	s.sem = make(chan struct{}, s.opts.Workers)
	if err := s.recover(ctx, true); err != nil {
		return fmt.Errorf("recover tasks in progress: %w", err)
	}
	if s.opts.Controllers != nil {
		s.running.Add(1)
		go func() {
			defer s.running.Done()
			s.takeOverLoop(ctx)
		}()
	}
	s.running.Add(2)
	go func() {
		defer s.running.Done()
		s.flushHeartbeats(ctx)
	}()
	go func() {
		defer s.running.Done()
		s.enforceLoop(ctx)
	}()
	return nil
}

// Wait waits for the work in flight to end.
func (s *Service) Wait() { s.running.Wait() }

// enqueue runs fn in the background, at most Workers at a time. Its
// context ends when the service stops; what it left undone is in the
// store, and recovered at the next start.
func (s *Service) enqueue(fn func(ctx context.Context)) {
	s.running.Add(1)
	go func() {
		defer s.running.Done()
		select {
		case s.sem <- struct{}{}:
		case <-s.runCtx.Done():
			return
		}
		defer func() { <-s.sem }()
		fn(s.runCtx)
	}()
}

// build places a server and has its host's agent spawn it, trying up to
// MaxAttempts hosts; a server it cannot build goes to ERROR with a fault
// that says why. failed are hosts already tried.
func (s *Service) build(ctx context.Context, id, requestID string, failed []string) {
	srv, err := s.store.Server(ctx, id)
	if err != nil || srv.TaskState != trustack.TaskScheduling {
		return // deleted meanwhile, or built by a previous run
	}
	start := s.opts.Now().UTC()
	host, err := s.place(ctx, srv, failed)
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		s.finishEvent(ctx, id, requestID, "compute_build_and_run_instance", "", start, err)
		s.fail(ctx, id, trustack.TaskScheduling, err)
		return
	}
	moved := false
	srv, err = s.store.UpdateServer(ctx, id, func(cur *trustack.Server) error {
		if cur.TaskState != trustack.TaskScheduling {
			moved = true
			return errMoved
		}
		cur.Host, cur.Node, cur.TaskState = host.Name, host.HypervisorHostname, trustack.TaskSpawning
		cur.AvailabilityZone, cur.RCoT = host.AvailabilityZone, host.RCoT()
		cur.UpdatedAt = s.opts.Now().UTC()
		return nil
	})
	if err != nil {
		if h, rerr := s.store.Release(ctx, id); rerr == nil {
			s.placer.Forget(h)
		}
		if !moved {
			s.opts.Log.Error("record placement", "server", id, "error", err)
		}
		return
	}
	s.spawn(ctx, srv, requestID, start, append(failed, host.ID))
}

// place asks the placer for a host, with the server's group and hints.
func (s *Service) place(ctx context.Context, srv *trustack.Server, failed []string) (*trustack.Host, error) {
	req := scheduler.Request{Server: srv, Zone: askedZone(srv), Exclude: failed}
	if props, err := s.bootProperties(ctx, srv); err == nil {
		req.ImageProperties = props
	}
	var err error
	if req.PhysicalNetworks, err = s.physicalNetworks(ctx, srv); err != nil {
		return nil, err
	}
	if srv.GroupID != "" {
		g, err := s.store.ServerGroup(ctx, srv.GroupID)
		if err != nil {
			return nil, fmt.Errorf("read server group %s: %w", srv.GroupID, err)
		}
		req.Group = g
	}
	for hint, dst := range map[string]*[]string{"same_host": &req.SameHost, "different_host": &req.DifferentHost} {
		for _, other := range srv.Hints[hint] {
			o, err := s.store.Server(ctx, other)
			if err != nil || o.Host == "" {
				continue
			}
			if h, err := s.store.HostByName(ctx, o.Host); err == nil {
				*dst = append(*dst, h.ID)
			}
		}
	}
	return s.placer.Place(ctx, req)
}

// spawn has the agent start a placed server and records the outcome; if
// the agent fails, the build moves to another host while attempts remain.
func (s *Service) spawn(ctx context.Context, srv *trustack.Server, requestID string, start time.Time, tried []string) {
	err := s.makeVolumes(ctx, srv)
	var spec wire.Spec
	if err == nil {
		spec, err = s.spec(ctx, srv)
	}
	var volumes []pluggedVolume
	if err == nil {
		volumes, err = s.volumeDisks(ctx, srv, srv.Host)
		for _, p := range volumes {
			spec.Volumes = append(spec.Volumes, p.disk)
		}
	}
	var state trustack.PowerState
	if err == nil {
		err = s.reach(ctx, srv.Host, func(ctx context.Context) (err error) {
			actx, cancel := context.WithTimeout(ctx, s.opts.AgentTimeout)
			defer cancel()
			state, err = s.agents.Spawn(actx, srv.Host, spec)
			return err
		})
	}
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		s.opts.Log.Warn("spawn failed", "server", srv.ID, "host", srv.Host, "error", err)
		s.unexportAll(ctx, srv.Host, volumes)
		if unanswered(err) && s.hostAlive(ctx, srv.Host) {
			s.finishEvent(ctx, srv.ID, requestID, "compute_build_and_run_instance", srv.Host, start, err)
			s.strand(ctx, srv.ID, err)
			return
		}
		// The agent said the spawn failed, and left nothing; or the host
		// is down, and its agent destroys the server when it comes back,
		// as no longer expected there.
		if h, rerr := s.store.Release(ctx, srv.ID); rerr == nil {
			s.placer.Forget(h)
		}
		if len(tried) < s.opts.MaxAttempts {
			// Back to scheduling, on another host.
			if _, uerr := s.store.UpdateServer(ctx, srv.ID, func(cur *trustack.Server) error {
				if cur.TaskState != trustack.TaskSpawning {
					return errMoved
				}
				cur.Host, cur.Node, cur.TaskState = "", "", trustack.TaskScheduling
				cur.AvailabilityZone = askedZone(cur)
				return nil
			}); uerr == nil {
				s.build(ctx, srv.ID, requestID, tried)
			}
			return
		}
		s.finishEvent(ctx, srv.ID, requestID, "compute_build_and_run_instance", srv.Host, start, err)
		s.fail(ctx, srv.ID, trustack.TaskSpawning, trustack.Errorf(trustack.EINTERNAL,
			"Build of instance %s failed on %d hosts; the last said: %s", srv.ID, len(tried), trustack.ErrorMessage(err)))
		return
	}
	if err := s.attachBootVolumes(ctx, srv); err != nil {
		s.opts.Log.Error("record the volumes of a built server", "server", srv.ID, "error", err)
	}
	s.portsBound(ctx, spec.Ports)
	built := s.event("compute_build_and_run_instance", srv.Host, start, nil)
	activate := func(cur *trustack.Server) error {
		if cur.TaskState != trustack.TaskSpawning {
			return errMoved
		}
		now := s.opts.Now().UTC()
		cur.VMState, cur.TaskState, cur.PowerState = trustack.VMActive, "", state
		cur.LaunchedAt, cur.UpdatedAt = now, now
		return nil
	}
	if requestID == "" {
		_, err = s.store.UpdateServer(ctx, srv.ID, activate)
	} else {
		_, err = s.store.UpdateServerWithEvent(ctx, srv.ID, requestID, built, activate)
	}
	switch {
	case err == errMoved:
		s.addEvent(ctx, srv.ID, requestID, built)
		// Deleted while it spawned: make sure it does not live on.
		if cur, gerr := s.store.Server(ctx, srv.ID); gerr == nil && cur.TaskState == trustack.TaskDeleting {
			s.destroy(ctx, cur, requestID)
		}
	case err != nil:
		s.opts.Log.Error("record a built server", "server", srv.ID, "error", err)
	}
}

// PortsOf returns the ports of servers, by server ID, each server's in
// the order of its NICs, in one read of the networking service however
// many servers there are; a server without ports has no entry.
func (s *Service) PortsOf(ctx context.Context, servers ...*trustack.Server) (map[string][]*trustack.Port, error) {
	out := map[string][]*trustack.Port{}
	var ids []string
	for _, srv := range servers {
		if len(srv.Ports) > 0 {
			ids = append(ids, srv.ID)
		}
	}
	if s.opts.Network == nil || len(ids) == 0 {
		return out, nil
	}
	byServer, err := s.opts.Network.ServerPortsOf(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("read the ports of servers %v: %w", ids, err)
	}
	for _, srv := range servers {
		for _, id := range srv.Ports {
			if i := slices.IndexFunc(byServer[srv.ID], func(p *trustack.Port) bool { return p.ID == id }); i >= 0 {
				out[srv.ID] = append(out[srv.ID], byServer[srv.ID][i])
			}
		}
	}
	return out, nil
}

// ports returns a server's ports, in the order of its NICs.
func (s *Service) ports(ctx context.Context, srv *trustack.Server) ([]*trustack.Port, error) {
	byServer, err := s.PortsOf(ctx, srv)
	return byServer[srv.ID], err
}

// portsBound has the host that a server's ports, wired as ports, were
// bound to (with the server, placed or moved) learn the members of their
// security groups, which the spawn does not bring.
func (s *Service) portsBound(ctx context.Context, ports []wire.Port) {
	var groups []string
	for _, p := range ports {
		groups = append(groups, p.SecurityGroups...)
	}
	if len(groups) > 0 {
		s.opts.Network.PortsBound(ctx, groups)
	}
}

// physicalNetworks returns the physical networks a host must be wired to
// for the server's ports.
func (s *Service) physicalNetworks(ctx context.Context, srv *trustack.Server) ([]string, error) {
	if s.opts.Network == nil || len(srv.Ports) == 0 {
		return nil, nil
	}
	return s.opts.Network.PhysicalNetworks(ctx, srv.ID)
}

// spec is what the agent needs to spawn a server: what its guest is told
// of itself (guestSpec), its image, and a direct kernel boot's kernel and
// ramdisk, each with where to download it and a token of the server's
// owner to download them with, and its ports' security groups.
func (s *Service) spec(ctx context.Context, srv *trustack.Server) (wire.Spec, error) {
	spec, ports, err := s.guestSpec(ctx, srv)
	if err != nil {
		return wire.Spec{}, err
	}
	if srv.ImageID != "" {
		img, err := s.imageRef(ctx, srv.ProjectID, srv.ImageID)
		if err != nil {
			return wire.Spec{}, err
		}
		spec.Image = *img
	} else if spec.Image.Properties, err = s.bootProperties(ctx, srv); err != nil {
		return wire.Spec{}, err
	}
	if id := spec.Image.Properties["kernel_id"]; id != "" {
		if spec.Kernel, err = s.imageRef(ctx, srv.ProjectID, id); err != nil {
			return wire.Spec{}, err
		}
	}
	if id := spec.Image.Properties["ramdisk_id"]; id != "" {
		if spec.Ramdisk, err = s.imageRef(ctx, srv.ProjectID, id); err != nil {
			return wire.Spec{}, err
		}
	}
	if s.opts.ImageTokens != nil {
		if spec.ImageToken, err = s.opts.ImageTokens.IssueToken(ctx, srv.UserID, srv.ProjectID); err != nil {
			return wire.Spec{}, fmt.Errorf("a token to download image %s: %w", srv.ImageID, err)
		}
	}
	if len(ports) > 0 {
		if spec.SecurityGroups, err = s.opts.Network.WireGroupRules(ctx, ports); err != nil {
			return wire.Spec{}, err
		}
	}
	return spec, nil
}

// bootProperties are the properties of what a server boots: its image's,
// or its root volume's image metadata (those of the image it was made
// from).
func (s *Service) bootProperties(ctx context.Context, srv *trustack.Server) (map[string]string, error) {
	root := srv.Root()
	if root == nil || (root.VolumeID == "" && root.Source == SourceImage) {
		id := srv.ImageID
		if root != nil {
			id = root.SourceID // the volume is not made yet
		}
		img, err := s.images.BootImage(ctx, srv.ProjectID, id)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", id, err)
		}
		return img.Properties, nil
	}
	v, err := s.opts.Volumes.Get(ctx, system, root.VolumeID)
	if err != nil {
		return nil, fmt.Errorf("root volume %s: %w", root.VolumeID, err)
	}
	return v.ImageMetadata, nil
}

// guestSpec is what a server's guest is told of itself, on its config
// drive and by the metadata service: its names, size, key, user data,
// metadata and ports; with the ports it has.
func (s *Service) guestSpec(ctx context.Context, srv *trustack.Server) (wire.Spec, []*trustack.Port, error) {
	spec := wire.Spec{
		ServerID: srv.ID, Name: srv.Name, Hostname: Hostname(srv.Name), VCPUs: srv.Flavor.VCPUs, MemoryMB: srv.Flavor.RAM, DiskGB: srv.Flavor.Disk,
		KeyName: srv.KeyName, KeyData: srv.KeyData, UserData: srv.UserData, Metadata: srv.Metadata, ProjectID: srv.ProjectID, ConfigDrive: srv.ConfigDrive,
	}
	ports, err := s.ports(ctx, srv)
	if err == nil && len(ports) > 0 {
		spec.Ports, err = s.opts.Network.WirePorts(ctx, ports)
	}
	if err != nil {
		return wire.Spec{}, nil, err
	}
	return spec, ports, nil
}

// Metadata answers a guest's request to the metadata service, as the
// network node running its router forwards it: from the spec of the
// server whose port has the guest's address behind that router, and of
// no other.
func (s *Service) Metadata(ctx context.Context, r wire.MetadataRequest) ([]byte, error) {
	if s.opts.Network == nil {
		return nil, trustack.Errorf(trustack.ENOTFOUND, "no networks, no metadata service")
	}
	id, err := s.opts.Network.InstanceAt(ctx, r.Host, r.RouterID, r.Address)
	if err != nil {
		return nil, err
	}
	srv, err := s.store.Server(ctx, id)
	if err != nil {
		return nil, err
	}
	spec, _, err := s.guestSpec(ctx, srv)
	if err != nil {
		return nil, err
	}
	return metadata.Lookup(spec, r.Path)
}

// imageRef describes an image the project boots from to a host.
func (s *Service) imageRef(ctx context.Context, projectID, id string) (*wire.ImageRef, error) {
	img, err := s.images.BootImage(ctx, projectID, id)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", id, err)
	}
	ref := wire.NewImageRef(img, s.opts.ImageURL)
	return &ref, nil
}

// RootDevice is the device of a server's root disk in its guest, the
// first virtio disk, whether of its image or of a volume.
const RootDevice = "/dev/vda"

// Hostname makes a valid hostname of a server name, as Nova does: letters,
// digits and dashes, at most 63 characters.
func Hostname(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-':
			b.WriteRune(r)
		case r == ' ' || r == '_' || r == '.':
			b.WriteRune('-')
		}
	}
	h := strings.Trim(b.String(), "-")
	if len(h) > 63 {
		h = strings.Trim(h[:63], "-")
	}
	if h == "" {
		h = "server"
	}
	return h
}

// fail puts a server that was in the given task into ERROR with a fault.
func (s *Service) fail(ctx context.Context, id, task string, cause error) {
	_, err := s.store.UpdateServer(ctx, id, func(cur *trustack.Server) error {
		if cur.TaskState != task {
			return errMoved
		}
		cur.VMState, cur.TaskState = trustack.VMError, ""
		cur.Host, cur.Node, cur.AvailabilityZone = "", "", askedZone(cur)
		cur.Fault = s.fault(cause)
		cur.UpdatedAt = s.opts.Now().UTC()
		return nil
	})
	if err != nil && err != errMoved {
		s.opts.Log.Error("record failure", "server", id, "error", err)
	}
}

// settleSnapshot ends the snapshot task of a server that a restart cut
// off: failed, its image killed, if its data had not all arrived; done
// otherwise.
func (s *Service) settleSnapshot(ctx context.Context, srv *trustack.Server) {
	killed, err := s.images.KillCutOffSnapshots(ctx, srv.ID)
	if err != nil {
		s.opts.Log.Error("kill the snapshots cut off by a restart", "server", srv.ID, "error", err)
	}
	var failed error
	if killed > 0 || err != nil {
		failed = trustack.Errorf(trustack.EUNAVAILABLE, "The snapshot was cut off by a restart of the controller.")
	}
	s.clearTask(ctx, srv.ID, srv.TaskState, failed)
}

// strand puts a server whose host's agent stopped answering during its
// build into ERROR, still placed on the host: the server may run there,
// so it may not go elsewhere. Deleting it destroys what the host has.
func (s *Service) strand(ctx context.Context, id string, cause error) {
	_, err := s.store.UpdateServer(ctx, id, func(cur *trustack.Server) error {
		if cur.TaskState != trustack.TaskSpawning {
			return errMoved
		}
		cur.VMState, cur.TaskState = trustack.VMError, ""
		cur.Fault = s.fault(trustack.Errorf(trustack.EUNAVAILABLE, "Host %s stopped answering while it built the server: %s", cur.Host, trustack.ErrorMessage(cause)))
		cur.UpdatedAt = s.opts.Now().UTC()
		return nil
	})
	if err != nil && err != errMoved {
		s.opts.Log.Error("record failure", "server", id, "error", err)
	}
}

// respawn finishes a build cut off while spawning: it asks the agent
// whether the server runs, and spawns it if it does not.
func (s *Service) respawn(ctx context.Context, srv *trustack.Server) {
	state, err := s.askState(ctx, srv)
	switch {
	case err == nil && state == trustack.PowerRunning:
		if err := s.attachBootVolumes(ctx, srv); err != nil {
			s.opts.Log.Error("record the volumes of a server found running", "server", srv.ID, "error", err)
		}
		s.store.UpdateServer(ctx, srv.ID, func(cur *trustack.Server) error {
			if cur.TaskState != trustack.TaskSpawning {
				return errMoved
			}
			now := s.opts.Now().UTC()
			cur.VMState, cur.TaskState, cur.PowerState, cur.LaunchedAt, cur.UpdatedAt = trustack.VMActive, "", state, now, now
			return nil
		})
		return
	case unanswered(err) && s.hostAlive(ctx, srv.Host):
		s.strand(ctx, srv.ID, err)
		return
	}
	h, herr := s.store.HostByName(ctx, srv.Host)
	var tried []string
	if herr == nil {
		tried = []string{h.ID}
	}
	s.spawn(ctx, srv, "", s.opts.Now().UTC(), tried)
}

// resync ends a power action cut off by a restart with the state the
// agent reports, or ERROR if the agent cannot say.
func (s *Service) resync(ctx context.Context, srv *trustack.Server) {
	state, err := s.askState(ctx, srv)
	s.store.UpdateServer(ctx, srv.ID, func(cur *trustack.Server) error {
		if cur.TaskState != srv.TaskState {
			return errMoved
		}
		cur.TaskState = ""
		cur.UpdatedAt = s.opts.Now().UTC()
		if err != nil {
			cur.VMState = trustack.VMError
			cur.Fault = s.fault(fmt.Errorf("after a controller restart, host %s could not say the state of the server: %w", srv.Host, err))
			return nil
		}
		cur.PowerState = state
		cur.VMState = vmStateOf(state)
		return nil
	})
}

// stateTimeout bounds asking an agent for a server's state: it needs no
// work on the host, so an agent that does not answer soon is not there.
const stateTimeout = 30 * time.Second

// askState asks a server's agent for its power state, through reach.
func (s *Service) askState(ctx context.Context, srv *trustack.Server) (state trustack.PowerState, err error) {
	err = s.reach(ctx, srv.Host, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, stateTimeout)
		defer cancel()
		state, err = s.agents.State(ctx, srv.Host, srv.ID)
		return err
	})
	return state, err
}

// Trying an agent that does not answer again: the pause doubles from
// reachPause up to reachMaxPause, for at most reachAttempts tries in all.
const (
	reachPause    = 200 * time.Millisecond
	reachMaxPause = 5 * time.Second
	reachAttempts = 8
)

// reach calls op, a request to a host's agent, until the agent answers
// (op returns nil or the agent's error), the host is down, or attempts
// run out. An agent of a host still up that does not answer may be
// reconnecting to the bus, as after a restart of the controller that
// embeds the bus; whether it carried out a request it did not answer is
// unknown. An agent that joins again while a request waits (it
// reconnected, to another node of the bus or after a blip, and the
// request may have been lost on the way) is asked again at once, up to
// wire.MaxRejoins times, rather than when the request times out.
func (s *Service) reach(ctx context.Context, host string, op func(context.Context) error) error {
	pause := reachPause
	for attempt, rejoins := 1, 0; ; attempt++ {
		rejoined, err := wire.AskWhileJoined(ctx, wire.RejoinLook, func(ctx context.Context) (*trustack.Host, error) { return s.store.HostByName(ctx, host) }, op)
		if rejoined && unanswered(err) && rejoins < wire.MaxRejoins && ctx.Err() == nil {
			rejoins++
			attempt--
			s.opts.Log.Info("a host's agent joined again while a request waited: asking it again", "host", host)
			continue
		}
		if !unanswered(err) || attempt == reachAttempts || ctx.Err() != nil || !s.hostAlive(ctx, host) {
			return err
		}
		s.opts.Log.Warn("no answer from host; trying again", "host", host, "error", err, "retry_in", pause)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(pause):
		}
		pause = min(2*pause, reachMaxPause)
	}
}

// vmStateOf is the VM state a power state means for a placed server.
func vmStateOf(p trustack.PowerState) string {
	switch p {
	case trustack.PowerRunning:
		return trustack.VMActive
	case trustack.PowerPaused:
		return trustack.VMPaused
	case trustack.PowerSuspended:
		return trustack.VMSuspended
	case trustack.PowerShutdown, trustack.PowerCrashed:
		return trustack.VMStopped
	}
	return trustack.VMError
}

// actionOf is the record of an action a caller starts on a server.
func (s *Service) actionOf(c Caller, serverID, action string) trustack.InstanceAction {
	return trustack.InstanceAction{ServerID: serverID, Action: action, RequestID: c.RequestID,
		UserID: c.UserID, ProjectID: c.ProjectID, StartTime: s.opts.Now().UTC()}
}

// record starts an instance action.
func (s *Service) record(ctx context.Context, c Caller, serverID, action string) {
	if err := s.store.AddAction(ctx, s.actionOf(c, serverID, action)); err != nil {
		s.opts.Log.Error("record instance action", "server", serverID, "action", action, "error", err)
	}
}

// event is the record of an event of an action that started at start and
// ends now, done or failed.
func (s *Service) event(event, host string, start time.Time, err error) trustack.ActionEvent {
	e := trustack.ActionEvent{Event: event, StartTime: start, FinishTime: s.opts.Now().UTC(), Result: "Success", Host: host}
	if err != nil {
		e.Result, e.Details = "Error", trustack.ErrorMessage(err)
	}
	return e
}

// finishEvent records an event of an action, done or failed.
func (s *Service) finishEvent(ctx context.Context, serverID, requestID, event, host string, start time.Time, err error) {
	s.addEvent(ctx, serverID, requestID, s.event(event, host, start, err))
}

// addEvent records an event of the action requestID, if there is one: work
// recovered after a restart has none.
func (s *Service) addEvent(ctx context.Context, serverID, requestID string, e trustack.ActionEvent) {
	if requestID == "" {
		return
	}
	if err := s.store.AddEvent(ctx, serverID, requestID, e); err != nil {
		s.opts.Log.Error("record action event", "server", serverID, "event", e.Event, "error", err)
	}
}
