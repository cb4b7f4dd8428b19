package compute

import (
	"context"
	"slices"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/network"
)

// A server's network interfaces: its ports, in the order of its NICs.

// errNoNetwork answers the network calls of a cloud without networking.
var errNoNetwork = trustack.Errorf(trustack.EINVALID, "This cloud has no networking service: servers have no network interfaces.")

// Interfaces returns a server's ports, in the order of its NICs.
func (s *Service) Interfaces(ctx context.Context, c Caller, id string) ([]*trustack.Port, error) {
	srv, err := s.Server(ctx, c, id)
	if err != nil {
		return nil, err
	}
	return s.ports(ctx, srv)
}

// AttachInterface gives a server on a host a new NIC: a port made on a
// network, or one the caller made, plugged on the server's host before it
// returns; a NIC that names neither gets a port on the project's only
// usable network, as a new server does (none is EINVALID). A server being
// built, moved or deleted is ECONFLICT.
func (s *Service) AttachInterface(ctx context.Context, c Caller, id string, nic network.NIC) (*trustack.Port, error) {
	if s.opts.Network == nil {
		return nil, errNoNetwork
	}
	srv, err := s.placed(ctx, c, id)
	if err != nil {
		return nil, err
	}
	if srv.TaskState != "" || !slices.Contains([]string{trustack.VMActive, trustack.VMPaused, trustack.VMStopped}, srv.VMState) {
		return nil, invalidState(srv, "attach_interface")
	}
	var asked []network.NIC
	if nic != (network.NIC{}) {
		asked = []network.NIC{nic}
	}
	nics, err := s.opts.Network.ResolveNICs(ctx, c.network(), asked, "")
	if err != nil {
		return nil, err
	}
	if len(nics) == 0 {
		return nil, trustack.Errorf(trustack.EINVALID, "No specific network was requested and none are available for project '%s'.", c.ProjectID)
	}
	ports, err := s.opts.Network.ServerPorts(ctx, c.network(), srv.ID, srv.AvailabilityZone, nics, nil)
	if err != nil {
		return nil, err
	}
	p := ports[0]
	// Recorded with the server, which binds the port to its host in the
	// same transaction.
	srv, err = s.update(ctx, c, id, func(cur *trustack.Server) error {
		if cur.Host != srv.Host || cur.TaskState != "" {
			return invalidState(cur, "attach_interface")
		}
		cur.Ports = append(cur.Ports, p.ID)
		if nic.PortID != "" {
			cur.UserPorts = append(cur.UserPorts, p.ID)
		}
		return nil
	})
	if err != nil {
		s.releaseAttached(ctx, p, nic)
		return nil, err
	}
	err = s.plug(ctx, srv.Host, p)
	if err != nil {
		s.opts.Log.Warn("plug an attached interface", "server", id, "port", p.ID, "error", err)
		s.forgetPort(ctx, c, id, p.ID)
		s.releaseAttached(ctx, p, nic)
		return nil, err
	}
	s.record(ctx, c, id, "attach_interface")
	byServer, err := s.opts.Network.ServerPortsOf(ctx, []string{srv.ID})
	if err != nil {
		return nil, err
	}
	for _, q := range byServer[srv.ID] {
		if q.ID == p.ID {
			return q, nil
		}
	}
	return p, nil
}

// plug wires a port on a host, held to its security groups.
func (s *Service) plug(ctx context.Context, host string, p *trustack.Port) error {
	ports := []*trustack.Port{p}
	wp, err := s.opts.Network.WirePorts(ctx, ports)
	if err != nil {
		return err
	}
	groups, err := s.opts.Network.WireGroupRules(ctx, ports)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.AgentTimeout)
	defer cancel()
	if len(groups) > 0 {
		if err := s.agents.SecurityGroups(ctx, host, groups); err != nil {
			return err
		}
	}
	return s.agents.Plug(ctx, host, wp[0])
}

// releaseAttached lets go of a port made or taken for an interface that
// could not be attached.
func (s *Service) releaseAttached(ctx context.Context, p *trustack.Port, nic network.NIC) {
	var keep []string
	if nic.PortID != "" {
		keep = []string{p.ID}
	}
	if err := s.opts.Network.ReleaseServerPorts(context.WithoutCancel(ctx), []*trustack.Port{p}, keep); err != nil {
		s.opts.Log.Error("release the port of an interface not attached", "port", p.ID, "error", err)
	}
}

// forgetPort removes a port from a server's record.
func (s *Service) forgetPort(ctx context.Context, c Caller, id, portID string) error {
	_, err := s.update(ctx, c, id, func(cur *trustack.Server) error {
		cur.Ports = slices.DeleteFunc(cur.Ports, func(p string) bool { return p == portID })
		cur.UserPorts = slices.DeleteFunc(cur.UserPorts, func(p string) bool { return p == portID })
		return nil
	})
	return err
}

// DetachInterface takes a port off a server: unplugged on its host, then
// deleted, or let go if the caller had made it. A port the server does
// not have is ENOTFOUND.
func (s *Service) DetachInterface(ctx context.Context, c Caller, id, portID string) error {
	if s.opts.Network == nil {
		return errNoNetwork
	}
	srv, err := s.placed(ctx, c, id)
	if err != nil {
		return err
	}
	if srv.TaskState != "" {
		return invalidState(srv, "detach_interface")
	}
	ports, err := s.ports(ctx, srv)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(ports, func(p *trustack.Port) bool { return p.ID == portID })
	if i < 0 {
		return trustack.Reasonf(trustack.ENOTFOUND, "PortNotFound", "Port %s is not attached", portID)
	}
	actx, cancel := context.WithTimeout(ctx, s.opts.AgentTimeout)
	err = s.reach(actx, srv.Host, func(ctx context.Context) error { return s.agents.Unplug(ctx, srv.Host, portID) })
	cancel()
	if err != nil {
		return err
	}
	if err := s.forgetPort(ctx, c, id, portID); err != nil {
		return err
	}
	s.record(ctx, c, id, "detach_interface")
	return s.opts.Network.ReleaseServerPorts(ctx, ports[i:i+1], srv.UserPorts)
}

// SetSecurityGroup adds a security group, by name or ID, to every port
// of a server, or removes it.
func (s *Service) SetSecurityGroup(ctx context.Context, c Caller, id, group string, add bool) error {
	if s.opts.Network == nil {
		return errNoNetwork
	}
	srv, err := s.Server(ctx, c, id)
	if err != nil {
		return err
	}
	ports, err := s.ports(ctx, srv)
	if err != nil {
		return err
	}
	return s.opts.Network.SetServerGroups(ctx, c.network(), ports, group, add)
}
