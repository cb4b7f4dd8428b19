package agent

import (
	"context"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/bus"
)

// Client reaches agents over the bus, for the controller. It is safe for
// concurrent use.
type Client struct {
	conn *bus.Conn
}

// NewClient returns a Client on conn.
func NewClient(conn *bus.Conn) *Client { return &Client{conn: conn} }

func (c *Client) call(ctx context.Context, host string, req hostRequest) (hostReply, error) {
	var r hostReply
	err := c.conn.Request(ctx, hostSubject(host), req, &r)
	return r, err
}

// Spawn asks the host's agent to start a server and returns its power
// state; spawning one that runs already succeeds. When the agent answers
// with an error, it left nothing of the server on the host; when it does
// not answer (bus.NoReply), the server may be there or not.
func (c *Client) Spawn(ctx context.Context, host string, spec Spec) (trustack.PowerState, error) {
	r, err := c.call(ctx, host, hostRequest{Op: opSpawn, Spec: &spec})
	return r.Power, err
}

// Destroy asks the host's agent to stop a server and delete its disks.
func (c *Client) Destroy(ctx context.Context, host, serverID string) error {
	_, err := c.call(ctx, host, hostRequest{Op: opDestroy, ServerID: serverID})
	return err
}

// Power asks the host's agent for a power operation.
func (c *Client) Power(ctx context.Context, host, serverID string, op PowerOp) (trustack.PowerState, error) {
	r, err := c.call(ctx, host, hostRequest{Op: opPower, ServerID: serverID, Power: op})
	return r.Power, err
}

// State asks the host's agent for a server's power state; ENOTFOUND if
// the host has no such server.
func (c *Client) State(ctx context.Context, host, serverID string) (trustack.PowerState, error) {
	r, err := c.call(ctx, host, hostRequest{Op: opState, ServerID: serverID})
	return r.Power, err
}

// ConsoleOutput asks the host's agent for the end of a server's console.
func (c *Client) ConsoleOutput(ctx context.Context, host, serverID string, lines int) (string, error) {
	r, err := c.call(ctx, host, hostRequest{Op: opConsole, ServerID: serverID, Lines: lines})
	return r.Output, err
}

// Diagnostics asks the host's agent what its hypervisor measures of a
// server.
func (c *Client) Diagnostics(ctx context.Context, host, serverID string) (map[string]int64, error) {
	r, err := c.call(ctx, host, hostRequest{Op: opDiagnostics, ServerID: serverID})
	return r.Diagnostics, err
}

// Snapshot asks the host's agent to upload a copy of a server's disk.
func (c *Client) Snapshot(ctx context.Context, host, serverID string, upload Upload) error {
	_, err := c.call(ctx, host, hostRequest{Op: opSnapshot, ServerID: serverID, Upload: &upload})
	return err
}

// Controller is what a controller does with what agents tell it.
type Controller interface {
	// Register records a host as its agent describes it, and returns it as
	// stored with the servers it should run.
	Register(ctx context.Context, h *trustack.Host) (*trustack.Host, []Expected, error)
	// Heartbeat records that the named host's agent is alive.
	Heartbeat(host string)
	// PowerChanged records a server's power state found by its host's
	// agent without being asked, with the reason.
	PowerChanged(ctx context.Context, host, serverID string, state trustack.PowerState, reason string) error
}

// Serve has the controller answer agents on conn until the returned
// function is called: registrations and power changes in the controllers'
// queue group (one controller answers each), heartbeats to every
// controller.
func Serve(conn *bus.Conn, ctl Controller) (stop func(), err error) {
	var subs []bus.Subscription
	stop = func() {
		for _, s := range subs {
			s.Unsubscribe()
		}
	}
	sub, err := conn.HandleQueue(subjectRegister, controllersQueue, bus.Handler(func(ctx context.Context, r registerRequest) (registerReply, error) {
		h, expected, err := ctl.Register(ctx, &r.Host)
		if err != nil {
			return registerReply{}, err
		}
		return registerReply{Host: *h, Expected: expected}, nil
	}))
	if err != nil {
		return stop, err
	}
	subs = append(subs, sub)
	sub, err = conn.HandleQueue(subjectPower, controllersQueue, bus.Handler(func(ctx context.Context, e powerEvent) (empty, error) {
		return empty{}, ctl.PowerChanged(ctx, e.Host, e.ServerID, e.Power, e.Reason)
	}))
	if err != nil {
		stop()
		return stop, err
	}
	subs = append(subs, sub)
	sub, err = conn.Subscribe(subjectHeartbeat, func(_ string, data []byte) {
		var hb heartbeat
		if unmarshal(data, &hb) == nil && hb.Host != "" {
			ctl.Heartbeat(hb.Host)
		}
	})
	if err != nil {
		stop()
		return stop, err
	}
	subs = append(subs, sub)
	return stop, nil
}
