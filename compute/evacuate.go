package compute

import (
	"context"
	"fmt"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/volume"
	"github.com/trustack/trustack/wire"
)

// Evacuate rebuilds a server of a lost host on another, as Nova's
// evacuate: an operator's move (c must be an administrator) of a server
// whose host's agent has stopped answering (EINVALID while it answers, as
// Nova's "still in use"), to the host named, or the scheduler's choice
// if onto is "". The server is rebuilt from its image, or from its
// volumes, which their storage hosts stop serving to the lost host first;
// the lost host's agent destroys its copy when it comes back. The move
// runs in the background: the server is migrating until it ends, ACTIVE
// (or SHUTOFF, as it was) on the new host, or in ERROR on the old one.
func (s *Service) Evacuate(ctx context.Context, c Caller, id, onto string) error {
	if !c.Admin {
		return trustack.Errorf(trustack.EFORBIDDEN, "Policy doesn't allow os_compute_api:os-evacuate to be performed.")
	}
	srv, err := s.Server(ctx, c, id)
	if err != nil {
		return err
	}
	if srv.Host == "" {
		return invalidState(srv, "evacuate")
	}
	if onto == srv.Host {
		return trustack.Errorf(trustack.EINVALID, "The target host can't be the same one.")
	}
	if onto != "" {
		if _, err := s.store.HostByName(ctx, onto); trustack.ErrorCode(err) == trustack.ENOTFOUND {
			return trustack.Errorf(trustack.ENOTFOUND, "Compute host %s not found.", onto)
		} else if err != nil {
			return err
		}
	}
	if s.hostAlive(ctx, srv.Host) {
		return trustack.Errorf(trustack.EINVALID, "Compute service of %s is still in use.", srv.Host)
	}
	m := move{from: srv.Host, onto: onto, reqs: srv.Requirements, evacuate: true,
		why: fmt.Sprintf("An operator evacuated it from host %s, whose agent does not answer.", srv.Host)}
	srv, was, err := s.startMove(ctx, &c, id, &m)
	if err == errMoved {
		return trustack.Errorf(trustack.ECONFLICT, "Cannot 'evacuate' instance %s: it moved meanwhile.", id)
	}
	if err != nil {
		return err
	}
	s.enqueue(func(ctx context.Context) { s.moveServer(ctx, srv, was, m) })
	return nil
}

// evacuateVM rebuilds a server of a lost host on host to, stopped if it
// was stopped: from its image (its disk on the lost host is out of
// reach, as after Nova's evacuate without shared storage), or from its
// volumes. Each volume's storage host first stops serving it to the lost
// host, so that a copy still running there cannot write to it; a volume
// kept on the lost host itself cannot be reached, and the server stays.
// It returns the server's ports as the new host wired them.
func (s *Service) evacuateVM(ctx context.Context, srv *trustack.Server, to *trustack.Host, was string) ([]wire.Port, error) {
	actx, cancel := context.WithTimeout(ctx, s.opts.AgentTimeout)
	defer cancel()
	if s.opts.Volumes != nil {
		attached, err := s.attached(actx, srv.ID)
		if err != nil {
			return nil, err
		}
		for _, v := range attached {
			storage, _ := volume.Location(v)
			if storage == srv.Host {
				return nil, trustack.Errorf(trustack.EUNAVAILABLE, "Volume %s is kept on host %s, which is lost.", v.ID, srv.Host)
			}
			if err := s.agents.UnexportVolume(actx, storage, v.ID); err != nil {
				return nil, fmt.Errorf("fence volume %s off host %s: %w", v.ID, srv.Host, err)
			}
		}
	}
	spec, err := s.spec(actx, srv)
	if err != nil {
		return nil, err
	}
	volumes, err := s.startOn(actx, srv, to, spec, was)
	if err != nil {
		s.unexportAll(actx, to.Name, volumes)
		return nil, err
	}
	for _, p := range volumes {
		if err := s.opts.Volumes.MoveAttachment(actx, system, p.v.ID, p.v.Attachment.ID, to.Name); err != nil {
			s.opts.Log.Error("record an evacuated server's volume on its new host", "server", srv.ID, "volume", p.v.ID, "error", err)
		}
	}
	return spec.Ports, nil
}
