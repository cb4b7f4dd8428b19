package compute

import (
	"cmp"
	"context"
	"encoding/base64"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/network"
	"github.com/trustack/trustack/volume"
	"github.com/trustack/trustack/wire"
)

// Caller is who asks for something, as the API authenticated them.
type Caller struct {
	UserID    string
	ProjectID string
	// Admin may act on locked servers and unlock what an admin locked.
	Admin bool
	// RequestID names the request in instance actions.
	RequestID string
	// Token is the caller's token, for uploads made on their behalf.
	Token string
}

// CreateRequest describes servers to create, as POST /servers does.
type CreateRequest struct {
	Name string
	// Description is the servers' description, nil for none.
	Description      *string
	ImageID          string
	FlavorID         string
	KeyName          string
	Metadata         map[string]string
	AvailabilityZone string
	UserData         string // base64
	MinCount         int
	MaxCount         int
	// Hints are the scheduler hints; "group" names a server group, and
	// "same_host" and "different_host" name servers.
	Hints       map[string][]string
	AccessIPv4  string
	AccessIPv6  string
	ConfigDrive bool
	DiskConfig  string // "AUTO" (the default) or "MANUAL"
	// NICs are the servers' network interfaces, in order; with none,
	// NICMode says what they get: network.NoNICs none,
	// network.AutoNICs or "" (Nova's 2.1) the project's only network.
	NICs    []network.NIC
	NICMode string
	// SecurityGroups name the groups the servers' ports go in, by name
	// or ID (the project's default group if none).
	SecurityGroups []string
	// BlockDevices are the volumes the servers are made with; with one
	// of boot index 0, they boot from it and ImageID is "".
	BlockDevices []trustack.BlockDevice
}

// maxUserData is the largest user data Nova accepts, base64 encoded.
const maxUserData = 65535

// zoneHint keeps the availability zone a server was asked for among its
// scheduler hints.
const zoneHint = "availability_zone"

// askedZone returns the availability zone a server was asked for.
func askedZone(srv *trustack.Server) string {
	if z := srv.Hints[zoneHint]; len(z) > 0 {
		return z[0]
	}
	return ""
}

// CreateServers creates between MinCount and MaxCount servers (as many as
// the quota allows, at least MinCount), all BUILD and scheduling, and
// starts building them. A request that names things that do not exist or
// break the rules gets EINVALID; one over quota gets EOVERQUOTA. Nothing
// is created when it fails.
func (s *Service) CreateServers(ctx context.Context, c Caller, req CreateRequest) ([]*trustack.Server, error) {
	name := strings.TrimSpace(req.Name)
	if name == "" || utf8.RuneCountInString(name) > 255 {
		return nil, trustack.Errorf(trustack.EINVALID, "Invalid input for field/attribute name. The name must have 1 to 255 characters and not only spaces.")
	}
	if err := checkDescription(req.Description); err != nil {
		return nil, err
	}
	if req.MinCount == 0 {
		req.MinCount = 1
	}
	if req.DiskConfig == "" {
		req.DiskConfig = "AUTO"
	}
	if req.MaxCount == 0 {
		req.MaxCount = req.MinCount
	}
	if req.MinCount < 1 || req.MaxCount < req.MinCount {
		return nil, trustack.Errorf(trustack.EINVALID, "min_count must be at least 1 and max_count no less than min_count.")
	}
	flavor, err := s.usableFlavor(ctx, c, req.FlavorID)
	if err != nil {
		return nil, err
	}
	for i, bd := range req.BlockDevices {
		if bd.Source == SourceVolume {
			req.BlockDevices[i].VolumeID = bd.SourceID
		}
		if bd.BootIndex == 0 {
			req.ImageID = "" // booted from the volume
		}
	}
	if err := s.checkBlockDevices(ctx, c, req); err != nil {
		return nil, err
	}
	if req.ImageID != "" {
		image, err := s.images.BootImage(ctx, c.ProjectID, req.ImageID)
		if trustack.ErrorCode(err) == trustack.ENOTFOUND {
			return nil, trustack.Errorf(trustack.EINVALID, "Can not find requested image")
		}
		if err != nil {
			return nil, err
		}
		if image.MinRAM > flavor.RAM {
			return nil, trustack.Errorf(trustack.EINVALID, "Flavor's memory is too small for requested image.")
		}
		if image.MinDisk > flavor.Disk && flavor.Disk > 0 {
			return nil, trustack.Errorf(trustack.EINVALID, "Flavor's disk is too small for requested image.")
		}
		req.ImageID = image.ID
	}
	var key *trustack.Keypair
	if req.KeyName != "" {
		if key, err = s.store.Keypair(ctx, c.UserID, req.KeyName); trustack.ErrorCode(err) == trustack.ENOTFOUND {
			return nil, trustack.Errorf(trustack.EINVALID, "Invalid key_name provided.")
		} else if err != nil {
			return nil, err
		}
	}
	limits, err := s.Limits(ctx, c.ProjectID)
	if err != nil {
		return nil, err
	}
	if err := checkMetadata(req.Metadata, limits[trustack.QuotaMetadataItems]); err != nil {
		return nil, err
	}
	if len(req.UserData) > maxUserData {
		return nil, trustack.Errorf(trustack.EINVALID, "User data too large. User data must be no larger than %d bytes once base64 encoded.", maxUserData)
	}
	if _, err := base64.StdEncoding.DecodeString(req.UserData); err != nil {
		return nil, trustack.Errorf(trustack.EINVALID, "User data needs to be valid base 64.")
	}
	if err := s.checkZone(ctx, req.AvailabilityZone); err != nil {
		return nil, err
	}
	groupID, err := s.checkHints(ctx, c, req.Hints)
	if err != nil {
		return nil, err
	}
	nics, err := s.resolveNICs(ctx, c, req)
	if err != nil {
		return nil, err
	}
	var reqs trustack.Requirements
	if s.opts.Requirements != nil {
		if reqs, err = s.opts.Requirements.Effective(ctx, c.ProjectID, flavor, req.Hints); err != nil {
			return nil, err
		}
	}
	hints := maps.Clone(req.Hints)
	if req.AvailabilityZone != "" {
		// Kept with the hints: the server's zone becomes its host's once
		// placed, but a build moved to another host keeps what was asked.
		if hints == nil {
			hints = map[string][]string{}
		}
		hints[zoneHint] = []string{req.AvailabilityZone}
	}

	reservation := "r-" + uuid.NewString()[:8]
	now := s.opts.Now().UTC()
	make := func(n int) []*trustack.Server {
		list := make([]*trustack.Server, n)
		for i := range list {
			srv := &trustack.Server{
				ID: uuid.NewString(), Name: name, Description: req.Description, ProjectID: c.ProjectID, UserID: c.UserID, ImageID: req.ImageID, Flavor: *flavor,
				KeyName: req.KeyName, Metadata: req.Metadata, AvailabilityZone: req.AvailabilityZone, UserData: req.UserData,
				VMState: trustack.VMBuilding, TaskState: trustack.TaskScheduling, GroupID: groupID, Hints: hints,
				ReservationID: reservation, LaunchIndex: i, AccessIPv4: req.AccessIPv4, AccessIPv6: req.AccessIPv6,
				ConfigDrive: req.ConfigDrive, DiskConfig: req.DiskConfig, Requirements: reqs, CreatedAt: now, UpdatedAt: now,
				BlockDevices: slices.Clone(req.BlockDevices),
			}
			if key != nil {
				srv.KeyData = key.PublicKey
			}
			if n > 1 {
				srv.Name = fmt.Sprintf("%s-%d", name, i+1)
			}
			list[i] = srv
		}
		return list
	}
	if err := s.reserveVolumes(ctx, c, req.BlockDevices); err != nil {
		return nil, err
	}
	// As many as the quota allows, from MaxCount down to MinCount.
	var created []*trustack.Server
	action := s.actionOf(c, "", "create")
	for n := req.MaxCount; n >= req.MinCount; n-- {
		created = make(n)
		if err = s.storeServers(ctx, c, created, nics, req.SecurityGroups, limits, &action); trustack.ErrorCode(err) != trustack.EOVERQUOTA {
			break
		}
	}
	if err != nil {
		s.unreserveVolumes(ctx, req.BlockDevices)
		return nil, err
	}
	for _, srv := range created {
		s.enqueue(func(ctx context.Context) { s.build(ctx, srv.ID, c.RequestID, nil) })
	}
	return created, nil
}

// network is the caller as the networking service knows callers.
func (c Caller) network() network.Caller {
	return network.Caller{ProjectID: c.ProjectID, Admin: c.Admin}
}

// resolveNICs returns the NICs each server of req gets. A port or an
// address cannot go to several servers (EINVALID).
func (s *Service) resolveNICs(ctx context.Context, c Caller, req CreateRequest) ([]network.NIC, error) {
	if s.opts.Network == nil {
		if len(req.NICs) > 0 || len(req.SecurityGroups) > 0 {
			return nil, trustack.Errorf(trustack.EINVALID, "This cloud has no networking service: servers get no network interfaces.")
		}
		return nil, nil
	}
	nics, err := s.opts.Network.ResolveNICs(ctx, c.network(), req.NICs, req.NICMode)
	if err != nil {
		return nil, err
	}
	if req.MaxCount > 1 && slices.ContainsFunc(nics, func(n network.NIC) bool { return n.PortID != "" || n.FixedIP.IsValid() }) {
		return nil, trustack.Errorf(trustack.EINVALID, "Unable to launch multiple instances with a single configured port ID or fixed IP. Please launch your instance one by one with different ports.")
	}
	return nics, nil
}

// macAttempts is how many times new servers' ports are made ready before
// their creation gives up on MAC addresses taken meanwhile by other ports
// (each a chance in millions).
const macAttempts = 3

// storeServers stores new servers, all or none, with their ports for
// nics, in the security groups named: new ones made in the servers'
// transaction, the users' ports named taken over.
func (s *Service) storeServers(ctx context.Context, c Caller, servers []*trustack.Server, nics []network.NIC, groups []string, limits map[string]int, action *trustack.InstanceAction) error {
	if len(nics) == 0 {
		return s.store.CreateServers(ctx, servers, trustack.NewPorts{}, limits, action)
	}
	news := make([]network.NewServer, len(servers))
	for i, srv := range servers {
		news[i] = network.NewServer{ID: srv.ID, Zone: cmp.Or(srv.AvailabilityZone, s.opts.DefaultAvailabilityZone)}
	}
	for attempt := 1; ; attempt++ {
		ports, err := s.opts.Network.PrepareServerPorts(ctx, c.network(), news, nics, groups)
		if err != nil {
			return err
		}
		for _, srv := range servers {
			srv.Ports, srv.UserPorts = nil, nil
			for j, p := range ports.Of[srv.ID] {
				srv.Ports = append(srv.Ports, p.ID)
				if nics[j].PortID != "" {
					srv.UserPorts = append(srv.UserPorts, p.ID)
				}
			}
		}
		err = s.store.CreateServers(ctx, servers, ports.New, limits, action)
		if err == nil {
			s.opts.Network.ServerPortsMade(ctx, ports)
			return nil
		}
		s.opts.Network.AbandonServerPorts(ctx, ports)
		if trustack.ErrorReason(err) != "MacAddressInUse" || attempt == macAttempts {
			return err
		}
	}
}

// releasePorts ends servers' use of their ports: those their users gave
// them are let go, the others deleted. A failure is logged: the ports
// stay, owned by servers that are gone, for an operator to delete.
func (s *Service) releasePorts(ctx context.Context, servers ...*trustack.Server) {
	if s.opts.Network == nil {
		return
	}
	ids := make([]string, len(servers))
	for i, srv := range servers {
		ids[i] = srv.ID
	}
	ports, err := s.opts.Network.ServerPortsOf(ctx, ids)
	for i := 0; err == nil && i < len(servers); i++ {
		err = s.opts.Network.ReleaseServerPorts(ctx, ports[servers[i].ID], servers[i].UserPorts)
	}
	if err != nil {
		s.opts.Log.Error("release the ports of servers", "servers", ids, "error", err)
	}
}

// usableFlavor returns the flavor if the caller may use it.
func (s *Service) usableFlavor(ctx context.Context, c Caller, id string) (*trustack.Flavor, error) {
	f, err := s.store.Flavor(ctx, id)
	if trustack.ErrorCode(err) == trustack.ENOTFOUND {
		return nil, trustack.Errorf(trustack.EINVALID, "Flavor %s could not be found.", id)
	}
	if err != nil {
		return nil, err
	}
	if f.Disabled {
		return nil, trustack.Errorf(trustack.EINVALID, "Flavor %s is disabled.", id)
	}
	if !f.Public && !c.Admin {
		access, err := s.store.FlavorAccess(ctx, f.ID)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(access, c.ProjectID) {
			return nil, trustack.Errorf(trustack.EINVALID, "Flavor %s could not be found.", id)
		}
	}
	return f, nil
}

// checkMetadata applies Nova's rules to server metadata.
func checkMetadata(md map[string]string, limit int) error {
	if limit >= 0 && len(md) > limit {
		return trustack.Errorf(trustack.EOVERQUOTA, "Quota exceeded for metadata_items: Requested %d, but already used 0 of %d metadata_items", len(md), limit)
	}
	for k, v := range md {
		if k == "" || utf8.RuneCountInString(k) > 255 {
			return trustack.Errorf(trustack.EINVALID, "Invalid input for field/attribute metadata. A metadata key must have 1 to 255 characters.")
		}
		if utf8.RuneCountInString(v) > 255 {
			return trustack.Errorf(trustack.EINVALID, "Invalid input for field/attribute metadata. A metadata value must have at most 255 characters.")
		}
	}
	return nil
}

// checkZone returns EINVALID unless zone is "" or the zone of some host.
func (s *Service) checkZone(ctx context.Context, zone string) error {
	if zone == "" {
		return nil
	}
	zones, err := s.Zones(ctx)
	if err != nil {
		return err
	}
	for _, z := range zones {
		if z.Name == zone {
			return nil
		}
	}
	return trustack.Errorf(trustack.EINVALID, "The requested availability zone is not available")
}

// checkHints returns the server group named by the hints, checking that
// it and the servers named exist and are the caller's.
func (s *Service) checkHints(ctx context.Context, c Caller, hints map[string][]string) (string, error) {
	var groupID string
	if g := hints["group"]; len(g) > 0 {
		group, err := s.store.ServerGroup(ctx, g[0])
		if err != nil || (group.ProjectID != c.ProjectID && !c.Admin) {
			return "", trustack.Errorf(trustack.EINVALID, "Invalid server group %s", g[0])
		}
		groupID = group.ID
	}
	for _, hint := range []string{"same_host", "different_host"} {
		for _, id := range hints[hint] {
			srv, err := s.store.Server(ctx, id)
			if err != nil || (srv.ProjectID != c.ProjectID && !c.Admin) {
				return "", trustack.Errorf(trustack.EINVALID, "Invalid %s hint: server %s not found.", hint, id)
			}
		}
	}
	return groupID, nil
}

// Server returns a server the caller may see: the project's own, or any
// for an admin. Another project's server is not found.
func (s *Service) Server(ctx context.Context, c Caller, id string) (*trustack.Server, error) {
	srv, err := s.store.Server(ctx, id)
	if err != nil {
		return nil, err
	}
	if srv.ProjectID != c.ProjectID && !c.Admin {
		return nil, trustack.Errorf(trustack.ENOTFOUND, "Instance %s could not be found.", id)
	}
	return srv, nil
}

// Servers lists servers.
func (s *Service) Servers(ctx context.Context, f trustack.ServerFilter) ([]*trustack.Server, error) {
	return s.store.Servers(ctx, f)
}

// update changes a live server with fn under the caller's rights: a
// deleted server is not found, a locked one refuses non-admins.
func (s *Service) update(ctx context.Context, c Caller, id string, fn func(*trustack.Server) error) (*trustack.Server, error) {
	return s.store.UpdateServer(ctx, id, func(srv *trustack.Server) error {
		switch {
		case srv.ProjectID != c.ProjectID && !c.Admin, srv.VMState == trustack.VMDeleted:
			return trustack.Errorf(trustack.ENOTFOUND, "Instance %s could not be found.", id)
		case srv.Locked && !c.Admin:
			return trustack.Errorf(trustack.ECONFLICT, "Instance %s is locked", id)
		}
		srv.UpdatedAt = s.opts.Now().UTC()
		return fn(srv)
	})
}

// Act carries out a power action ("pause", "unpause", "suspend", "resume",
// "stop", "start", "reboot", "reboot_hard", "trigger_crash_dump"). It checks and records the
// action, returns, and lets the agent do it; an action the server's state
// does not allow gives ECONFLICT and changes nothing.
func (s *Service) Act(ctx context.Context, c Caller, id, action string) error {
	t, ok := transitions[action]
	if !ok {
		return trustack.Errorf(trustack.EINVALID, "Unknown action %s.", action)
	}
	srv, err := s.update(ctx, c, id, func(srv *trustack.Server) error {
		if srv.TaskState != "" || !slices.Contains(t.from, srv.VMState) {
			return invalidState(srv, action)
		}
		if t.running && srv.PowerState != trustack.PowerRunning {
			return trustack.Errorf(trustack.ECONFLICT, "Instance %s is not running.", srv.ID)
		}
		srv.TaskState = t.task
		return nil
	})
	if err != nil {
		return err
	}
	name := action
	if action == "reboot_hard" {
		name = "reboot"
	}
	s.record(ctx, c, id, name)
	s.enqueue(func(ctx context.Context) { s.power(ctx, srv, t, c.RequestID) })
	return nil
}

func invalidState(srv *trustack.Server, action string) error {
	state := srv.VMState
	if srv.TaskState != "" {
		return trustack.Errorf(trustack.ECONFLICT, "Cannot '%s' instance %s while it is in task_state %s", action, srv.ID, srv.TaskState)
	}
	return trustack.Errorf(trustack.ECONFLICT, "Cannot '%s' instance %s while it is in vm_state %s", action, srv.ID, state)
}

// power asks the agent for a power operation and records the outcome.
func (s *Service) power(ctx context.Context, srv *trustack.Server, t transition, requestID string) {
	start := s.opts.Now().UTC()
	actx, cancel := context.WithTimeout(ctx, s.opts.AgentTimeout)
	state, err := s.agents.Power(actx, srv.Host, srv.ID, t.op)
	cancel()
	if ctx.Err() != nil {
		return // shutting down: the next start picks the task up
	}
	s.finishEvent(ctx, srv.ID, requestID, t.event, srv.Host, start, err)
	_, uerr := s.store.UpdateServer(ctx, srv.ID, func(cur *trustack.Server) error {
		if cur.TaskState != t.task {
			return errMoved
		}
		cur.TaskState = ""
		cur.UpdatedAt = s.opts.Now().UTC()
		if err != nil {
			cur.Fault = s.fault(err)
			if trustack.ErrorCode(err) == trustack.ENOTFOUND {
				cur.VMState, cur.PowerState = trustack.VMError, trustack.PowerNoState
			}
			return nil
		}
		if t.vm != "" {
			cur.VMState = t.vm
		}
		cur.PowerState = state
		return nil
	})
	if uerr != nil && uerr != errMoved {
		s.opts.Log.Error("record power action", "server", srv.ID, "op", t.op, "error", uerr)
	}
}

// errMoved aborts an update because the server moved on meanwhile (it was
// deleted while a task ran, say).
var errMoved = trustack.Errorf(trustack.ECONFLICT, "the server changed meanwhile")

// fault turns an error into a fault for the user to read.
func (s *Service) fault(err error) *trustack.Fault {
	code := 500
	if trustack.ErrorCode(err) == trustack.EINVALID {
		code = 400
	}
	return &trustack.Fault{Code: code, Message: trustack.ErrorMessage(err), Created: s.opts.Now().UTC()}
}

// Lock locks or unlocks a server. Unlocking what an admin locked takes an
// admin.
func (s *Service) Lock(ctx context.Context, c Caller, id string, lock bool) error {
	_, err := s.store.UpdateServer(ctx, id, func(srv *trustack.Server) error {
		switch {
		case srv.ProjectID != c.ProjectID && !c.Admin, srv.VMState == trustack.VMDeleted:
			return trustack.Errorf(trustack.ENOTFOUND, "Instance %s could not be found.", id)
		case !lock && srv.LockedBy == "admin" && !c.Admin:
			return trustack.Errorf(trustack.EFORBIDDEN, "Instance %s was locked by an administrator.", id)
		}
		srv.Locked, srv.LockedBy = lock, ""
		if lock {
			srv.LockedBy = "owner"
			if c.Admin && srv.ProjectID != c.ProjectID {
				srv.LockedBy = "admin"
			}
		}
		srv.UpdatedAt = s.opts.Now().UTC()
		return nil
	})
	if err != nil {
		return err
	}
	action := "unlock"
	if lock {
		action = "lock"
	}
	s.record(ctx, c, id, action)
	return nil
}

// ServerUpdate changes a server's name, description, access addresses or
// disk config; nil fields stay as they are.
type ServerUpdate struct {
	Name *string
	// Description, when not nil, is the new description: none when it
	// points to nil.
	Description **string
	AccessIPv4  *string
	AccessIPv6  *string
	DiskConfig  *string
}

// checkDescription applies Nova's rule to a server's description: at most
// 255 printable characters.
func checkDescription(d *string) error {
	if d == nil {
		return nil
	}
	ok := utf8.RuneCountInString(*d) <= 255
	for _, r := range *d {
		ok = ok && unicode.IsPrint(r)
	}
	if !ok {
		return trustack.Errorf(trustack.EINVALID, "Invalid input for field/attribute description. A description has at most 255 printable characters.")
	}
	return nil
}

// Update changes what a user may change of a server.
func (s *Service) Update(ctx context.Context, c Caller, id string, u ServerUpdate) (*trustack.Server, error) {
	if u.Name != nil {
		n := strings.TrimSpace(*u.Name)
		if n == "" || utf8.RuneCountInString(n) > 255 {
			return nil, trustack.Errorf(trustack.EINVALID, "Invalid input for field/attribute name. The name must have 1 to 255 characters and not only spaces.")
		}
		u.Name = &n
	}
	if u.Description != nil {
		if err := checkDescription(*u.Description); err != nil {
			return nil, err
		}
	}
	return s.store.UpdateServer(ctx, id, func(srv *trustack.Server) error {
		if srv.ProjectID != c.ProjectID && !c.Admin || srv.VMState == trustack.VMDeleted {
			return trustack.Errorf(trustack.ENOTFOUND, "Instance %s could not be found.", id)
		}
		for _, f := range []struct {
			v   *string
			dst *string
		}{{u.Name, &srv.Name}, {u.AccessIPv4, &srv.AccessIPv4}, {u.AccessIPv6, &srv.AccessIPv6}, {u.DiskConfig, &srv.DiskConfig}} {
			if f.v != nil {
				*f.dst = *f.v
			}
		}
		if u.Description != nil {
			srv.Description = *u.Description
		}
		srv.UpdatedAt = s.opts.Now().UTC()
		return nil
	})
}

// SetMetadata replaces a server's metadata (replace) or merges into it.
func (s *Service) SetMetadata(ctx context.Context, c Caller, id string, md map[string]string, replace bool) (map[string]string, error) {
	limits, err := s.Limits(ctx, c.ProjectID)
	if err != nil {
		return nil, err
	}
	srv, err := s.update(ctx, c, id, func(srv *trustack.Server) error {
		next := map[string]string{}
		if !replace {
			for k, v := range srv.Metadata {
				next[k] = v
			}
		}
		for k, v := range md {
			next[k] = v
		}
		if err := checkMetadata(next, limits[trustack.QuotaMetadataItems]); err != nil {
			return err
		}
		srv.Metadata = next
		return nil
	})
	if err != nil {
		return nil, err
	}
	return srv.Metadata, nil
}

// DeleteMetadata removes one metadata key, or gives ENOTFOUND.
func (s *Service) DeleteMetadata(ctx context.Context, c Caller, id, key string) error {
	_, err := s.update(ctx, c, id, func(srv *trustack.Server) error {
		if _, ok := srv.Metadata[key]; !ok {
			return trustack.Errorf(trustack.ENOTFOUND, "Metadata item was not found")
		}
		delete(srv.Metadata, key)
		return nil
	})
	return err
}

// Delete deletes a server: at once if it was never placed or its host is
// down, otherwise once its agent has destroyed it. Deleting a server that
// is being deleted succeeds.
func (s *Service) Delete(ctx context.Context, c Caller, id string) error {
	already := false
	srv, err := s.update(ctx, c, id, func(srv *trustack.Server) error {
		if srv.TaskState == trustack.TaskDeleting {
			already = true
			return nil
		}
		srv.TaskState = trustack.TaskDeleting
		return nil
	})
	if err != nil || already {
		return err
	}
	s.record(ctx, c, id, "delete")
	s.enqueue(func(ctx context.Context) { s.destroy(ctx, srv, c.RequestID) })
	return nil
}

// destroy removes a server from its host, gives back its claim, ends its
// use of its ports and volumes and marks it deleted.
func (s *Service) destroy(ctx context.Context, srv *trustack.Server, requestID string) {
	start := s.opts.Now().UTC()
	var err error
	if srv.Host != "" && s.hostAlive(ctx, srv.Host) {
		// A host down destroys the server when its agent comes back, as no
		// longer expected there.
		err = s.reach(ctx, srv.Host, func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, s.opts.AgentTimeout)
			defer cancel()
			return s.agents.Destroy(ctx, srv.Host, srv.ID)
		})
	}
	if ctx.Err() != nil {
		return
	}
	s.finishEvent(ctx, srv.ID, requestID, "compute_terminate_instance", srv.Host, start, err)
	if err != nil {
		// Leave it deleting with a fault: the next start tries again.
		s.store.UpdateServer(ctx, srv.ID, func(cur *trustack.Server) error { cur.Fault = s.fault(err); return nil })
		return
	}
	host, rerr := s.store.Release(ctx, srv.ID)
	if rerr != nil {
		s.opts.Log.Error("release claim", "server", srv.ID, "error", rerr)
		return
	}
	s.placer.Forget(host)
	s.releasePorts(ctx, srv)
	s.releaseVolumes(ctx, srv)
	s.store.UpdateServer(ctx, srv.ID, func(cur *trustack.Server) error {
		now := s.opts.Now().UTC()
		cur.VMState, cur.TaskState, cur.PowerState = trustack.VMDeleted, "", trustack.PowerNoState
		cur.TerminatedAt, cur.UpdatedAt = now, now
		return nil
	})
}

// hostAlive reports whether the named host's service is up.
func (s *Service) hostAlive(ctx context.Context, name string) bool {
	h, err := s.store.HostByName(ctx, name)
	return err == nil && s.Alive(h)
}

// CreateImage snapshots a server into a new image owned by its project and
// returns the image's ID at once; the data follows.
func (s *Service) CreateImage(ctx context.Context, c Caller, id, name string, md map[string]string) (string, error) {
	if strings.TrimSpace(name) == "" {
		return "", trustack.Errorf(trustack.EINVALID, "Invalid input for field/attribute name. The image name is required.")
	}
	cur, err := s.Server(ctx, c, id)
	if err != nil {
		return "", err
	}
	if cur.TaskState != "" || !slices.Contains(snapshotFrom, cur.VMState) {
		return "", invalidState(cur, "createImage")
	}
	if cur.Root() != nil {
		return "", trustack.Errorf(trustack.EINVALID, "Server %s boots from a volume: snapshot the volume instead (openstack volume snapshot create).", id)
	}
	base, err := s.images.BootImage(ctx, cur.ProjectID, cur.ImageID)
	if err != nil {
		base = &trustack.Image{DiskFormat: "qcow2", ContainerFormat: "bare"}
	}
	// As Nova's, a snapshot keeps its base image's properties, so that it
	// boots as the base did (a direct kernel boot's kernel_id, say).
	props := maps.Clone(base.Properties)
	if props == nil {
		props = map[string]string{}
	}
	maps.Copy(props, map[string]string{"image_type": "snapshot", "instance_uuid": cur.ID, "base_image_ref": cur.ImageID, "user_id": c.UserID})
	for k, v := range md {
		props[k] = v
	}
	img := &trustack.Image{Name: name, Visibility: trustack.VisibilityPrivate, DiskFormat: base.DiskFormat, ContainerFormat: base.ContainerFormat,
		MinDisk: cur.Flavor.Disk, MinRAM: base.MinRAM, Properties: props}
	srv, err := s.update(ctx, c, id, func(srv *trustack.Server) error {
		if srv.TaskState != "" || !slices.Contains(snapshotFrom, srv.VMState) {
			return invalidState(srv, "createImage")
		}
		srv.TaskState = trustack.TaskImageSnapshot
		return nil
	})
	if err != nil {
		return "", err
	}
	if err := s.images.CreateSnapshot(ctx, cur.ProjectID, img); err != nil {
		s.clearTask(ctx, id, trustack.TaskImageSnapshot, nil)
		return "", err
	}
	s.record(ctx, c, id, "createImage")
	upload := wire.Upload{ImageID: img.ID, URL: s.opts.ImageURL + "/v2/images/" + img.ID + "/file", Token: c.Token}
	s.enqueue(func(ctx context.Context) { s.snapshot(ctx, srv, upload, c.RequestID) })
	return img.ID, nil
}

func (s *Service) snapshot(ctx context.Context, srv *trustack.Server, upload wire.Upload, requestID string) {
	start := s.opts.Now().UTC()
	actx, cancel := context.WithTimeout(ctx, s.opts.AgentTimeout)
	err := s.agents.Snapshot(actx, srv.Host, srv.ID, upload)
	cancel()
	if ctx.Err() != nil {
		return
	}
	s.finishEvent(ctx, srv.ID, requestID, "compute_snapshot_instance", srv.Host, start, err)
	if err != nil {
		if ierr := s.images.SnapshotFailed(ctx, upload.ImageID); ierr != nil {
			s.opts.Log.Error("mark failed snapshot", "image", upload.ImageID, "error", ierr)
		}
	}
	s.clearTask(ctx, srv.ID, trustack.TaskImageSnapshot, err)
}

// clearTask ends a task that leaves the VM state as it was, with a fault
// if it failed.
func (s *Service) clearTask(ctx context.Context, id, task string, failed error) {
	s.store.UpdateServer(ctx, id, func(cur *trustack.Server) error {
		if cur.TaskState != task {
			return errMoved
		}
		cur.TaskState = ""
		if failed != nil {
			cur.Fault = s.fault(failed)
		}
		cur.UpdatedAt = s.opts.Now().UTC()
		return nil
	})
}

// ConsoleOutput returns the last lines of a server's console.
func (s *Service) ConsoleOutput(ctx context.Context, c Caller, id string, lines int) (string, error) {
	srv, err := s.placed(ctx, c, id)
	if err != nil {
		return "", err
	}
	actx, cancel := context.WithTimeout(ctx, s.opts.AgentTimeout)
	defer cancel()
	return s.agents.ConsoleOutput(actx, srv.Host, srv.ID, lines)
}

// Diagnostics returns what the server's hypervisor measures of it.
func (s *Service) Diagnostics(ctx context.Context, c Caller, id string) (map[string]int64, error) {
	srv, err := s.placed(ctx, c, id)
	if err != nil {
		return nil, err
	}
	actx, cancel := context.WithTimeout(ctx, min(s.opts.AgentTimeout, diagnosticsTimeout))
	defer cancel()
	d, err := s.agents.Diagnostics(actx, srv.Host, srv.ID)
	if err != nil && (unanswered(err) || trustack.ErrorCode(err) == trustack.EUNAVAILABLE) {
		if down := s.storageDown(ctx, srv); down != "" {
			return nil, trustack.Errorf(trustack.EUNAVAILABLE, "Diagnostics of server %s are unavailable: %s (%v)", srv.ID, down, err)
		}
	}
	return d, err
}

// diagnosticsTimeout bounds a question for a server's diagnostics: its
// host answers at once, unless it or its hypervisor is stuck.
const diagnosticsTimeout = 30 * time.Second

// storageDown says which of a server's volumes are on storage hosts that
// are down, "" if none is.
func (s *Service) storageDown(ctx context.Context, srv *trustack.Server) string {
	if s.opts.Volumes == nil {
		return ""
	}
	vols, err := s.opts.Volumes.List(ctx, system, trustack.VolumeFilter{ServerIDs: []string{srv.ID}})
	if err != nil {
		return ""
	}
	var down []string
	for _, v := range vols {
		name, _ := volume.Location(v)
		if h, err := s.store.HostByName(ctx, name); err == nil && !s.Alive(h) {
			down = append(down, fmt.Sprintf("volume %s is on storage host %s, which is down", v.ID, name))
		}
	}
	return strings.Join(down, "; ")
}

// placed returns the server if it is on a host, and ECONFLICT otherwise.
func (s *Service) placed(ctx context.Context, c Caller, id string) (*trustack.Server, error) {
	srv, err := s.Server(ctx, c, id)
	if err != nil {
		return nil, err
	}
	if srv.Host == "" || srv.VMState == trustack.VMBuilding || srv.VMState == trustack.VMDeleted {
		return nil, trustack.Errorf(trustack.ECONFLICT, "Instance %s has not been placed on a host yet, or is gone.", id)
	}
	return srv, nil
}
