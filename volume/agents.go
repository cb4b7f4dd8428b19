package volume

import (
	"context"
	"errors"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/wire"
)

// Requests to storage hosts' agents. Every request of the volume
// conversation is idempotent on the agent (agent.VolumeBackend's
// contract), so that one whose outcome is unknown, because its agent
// went down before it answered, can be asked again: a volume is made
// once its storage host is back, rather than left creating, or failed
// for a restart of the agent.

// unanswered reports whether err is that of a request to an agent that
// got no answer (the bus's errors say so with a NoReply method), as
// opposed to an error the agent answered: whether the agent did what
// was asked is then unknown.
func unanswered(err error) bool {
	var e interface{ NoReply() bool }
	return errors.As(err, &e) && e.NoReply()
}

// onHost has the agent of the storage host named host do what do asks of
// it, and returns the agent's answer. A request nobody serves (the agent
// is down, or starting) is asked again every RetryInterval for as long
// as the host counts as alive; one whose agent restarts while it waits
// for the answer (the host registers again: the agent that had the
// request is gone, and with it the request) is asked again at once, up
// to wire.MaxRejoins times. EUNAVAILABLE when the host counts as down, when
// an answer takes longer than AgentTimeout, or when the agent restarts
// more often than that.
func (s *Service) onHost(ctx context.Context, host string, do func(context.Context) error) error {
	for down, restarts := false, 0; ; {
		h, err := s.host(ctx, host)
		if err != nil {
			return err
		}
		if !s.opts.Alive(h) {
			return trustack.Errorf(trustack.EUNAVAILABLE, "storage host %s is down: its agent has not been heard from since %s",
				host, h.LastSeen.UTC().Format(time.RFC3339))
		}
		restarted, err := s.attempt(ctx, h, do)
		switch {
		case err == nil || !unanswered(err):
			return err
		case restarted && restarts == wire.MaxRejoins:
			return trustack.Errorf(trustack.EUNAVAILABLE, "storage host %s restarted %d times before it answered", host, restarts+1)
		case restarted:
			restarts++
			s.opts.Log.Info("a storage host's agent restarted before it answered: asking it again", "host", host)
			continue
		case ctx.Err() != nil:
			return err
		case errors.Is(err, context.DeadlineExceeded):
			return trustack.Errorf(trustack.EUNAVAILABLE, "storage host %s did not answer within %v", host, s.opts.AgentTimeout)
		}
		// Nobody serves the host: its agent is down, or not serving yet.
		if !down {
			down = true
			s.opts.Log.Info("a storage host's agent is down: asking it again until it is back or the host counts as down", "host", host, "error", err)
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(s.opts.RetryInterval):
		}
	}
}

// attempt asks the agent of h once, for AgentTimeout at most, looking at
// the host every RetryInterval meanwhile; it stops waiting when the host
// registered again (its agent restarted, which restarted reports).
func (s *Service) attempt(ctx context.Context, h *trustack.Host, do func(context.Context) error) (restarted bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.AgentTimeout)
	defer cancel()
	return wire.AskWhileJoined(ctx, s.opts.RetryInterval, func(ctx context.Context) (*trustack.Host, error) { return s.host(ctx, h.Name) }, do)
}

// host returns the host of a name; ENOTFOUND if there is none.
func (s *Service) host(ctx context.Context, name string) (*trustack.Host, error) {
	if n, ok := s.hosts.(HostNamer); ok {
		return n.HostByName(ctx, name)
	}
	hosts, err := s.hosts.Hosts(ctx)
	if err != nil {
		return nil, err
	}
	for _, h := range hosts {
		if h.Name == name {
			return h, nil
		}
	}
	return nil, trustack.Errorf(trustack.ENOTFOUND, "there is no host %s", name)
}
