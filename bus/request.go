package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/trustack/trustack"
)

// timeoutHeader carries the time a requester has left, in milliseconds, so
// that the handler's context ends when the requester stops waiting. A
// duration, unlike a deadline, does not depend on the two clocks agreeing.
const timeoutHeader = "Trustack-Timeout"

// noReplyError is the error of a request that got no reply.
type noReplyError struct{ err error }

func (e noReplyError) Error() string { return e.err.Error() }
func (e noReplyError) Unwrap() error { return e.err }

// NoReply reports true: the request got no reply, as opposed to an error
// its handler answered, so whether the handler ran, or still runs, is
// unknown. Callers that must tell the two apart declare an interface of
// this method and look for it in the error's chain with errors.As.
func (e noReplyError) NoReply() bool { return true }

// reply is the envelope of every reply: a result or an error, never both.
type reply struct {
	Result json.RawMessage `json:"result,omitempty"`
	Error  *replyError     `json:"error,omitempty"`
}

type replyError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Request sends req, encoded as JSON, to whoever handles subject, waits
// for the reply until ctx is done, and decodes its result into resp unless
// resp is nil.
//
// An error the handler returned comes back as a *trustack.Error with its
// code and message (EINTERNAL and a generic message for errors without a
// code), wrapped with the subject. Request returns EUNAVAILABLE at once when
// nobody handles subject, and EUNAVAILABLE wrapping ctx.Err() when ctx ends
// before the reply: a request has no timeout of its own, so give ctx a
// deadline. The handler's context ends at that deadline too. Failures of
// the connection are EUNAVAILABLE; failing to encode req or decode the
// reply is an internal error. The errors of requests that got no reply
// have a NoReply method, which those that handlers answered lack.
func (c *Conn) Request(ctx context.Context, subject string, req, resp any) error {
	data, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("request %s: encode: %w", subject, err)
	}
	msg := &nats.Msg{Subject: subject, Data: data}
	if deadline, ok := ctx.Deadline(); ok {
		// Rounded up, so that the handler's context never ends before the
		// requester stops waiting: its error would arrive instead of the
		// timeout.
		ms := (time.Until(deadline) + time.Millisecond - 1) / time.Millisecond
		msg.Header = nats.Header{timeoutHeader: {strconv.FormatInt(int64(ms), 10)}}
	}
	m, err := c.nc.RequestMsgWithContext(ctx, msg)
	if deadline, ok := ctx.Deadline(); ok && err == nil && !time.Now().Before(deadline) {
		// A reply after the deadline counts as none. ctx's timer may fire
		// late, and then the handler, whose context ends no sooner, may
		// have answered that it ran out of time.
		err = context.DeadlineExceeded
	}
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return noReplyError{fmt.Errorf("request %s: %w: %w", subject, trustack.Errorf(trustack.EUNAVAILABLE, "nobody serves %s", subject), err)}
	case errors.Is(err, context.DeadlineExceeded):
		return noReplyError{fmt.Errorf("request %s: %w: %w", subject, trustack.Errorf(trustack.EUNAVAILABLE, "timeout: no reply from %s before the deadline", subject), err)}
	case errors.Is(err, context.Canceled):
		return noReplyError{fmt.Errorf("request %s: %w: %w", subject, trustack.Errorf(trustack.EUNAVAILABLE, "request to %s canceled", subject), err)}
	case err != nil:
		return noReplyError{fmt.Errorf("request %s: %w", subject, translate(err))}
	}

	var r reply
	if err := json.Unmarshal(m.Data, &r); err != nil {
		return fmt.Errorf("request %s: decode reply: %w", subject, err)
	}
	if r.Error != nil {
		e := &trustack.Error{Code: r.Error.Code, Message: r.Error.Message}
		if e.Code == "" {
			e.Code = trustack.EINTERNAL
		}
		return fmt.Errorf("request %s: %w", subject, e)
	}
	if resp != nil && len(r.Result) > 0 {
		if err := json.Unmarshal(r.Result, resp); err != nil {
			return fmt.Errorf("request %s: decode result: %w", subject, err)
		}
	}
	return nil
}

// HandlerFunc answers a request whose payload is data. Handler makes one
// from a function of a typed request.
type HandlerFunc func(ctx context.Context, data []byte) (any, error)

// Handler returns a HandlerFunc that decodes the JSON payload into a Req
// and calls fn with it. A payload that does not decode is answered with
// EINVALID, without calling fn.
func Handler[Req, Resp any](fn func(context.Context, Req) (Resp, error)) HandlerFunc {
	return func(ctx context.Context, data []byte) (any, error) {
		var req Req
		if err := json.Unmarshal(data, &req); err != nil {
			return nil, trustack.Errorf(trustack.EINVALID, "malformed request: %v", err)
		}
		return fn(ctx, req)
	}
}

// Handle answers the requests sent to subject, which may hold wildcards as
// in Subscribe, with fn. Every handler on a matching subject gets each
// request and the requester takes the first reply; to share the work, use
// HandleQueue.
//
// Each request runs fn in a goroutine of its own, so fn must be safe for
// concurrent use, and a slow request holds up no other, on this subject or
// another. At most MaxHandlers run at once on a Conn; beyond that, requests
// wait in memory until one returns, so a handler that waits for a request
// handled on its own Conn can starve when all are busy. fn's context ends
// at the requester's deadline or when Close is called.
//
// fn's result is sent back as JSON. Its error is sent back as its code and
// message (trustack.ErrorCode and trustack.ErrorMessage): an error without
// a code reaches the requester as EINTERNAL with a generic message and is
// logged here in full, and so is a panic in fn. The exception is an error
// without a code that wraps the error of fn's ended context: it becomes
// EUNAVAILABLE, since fn stopped because the requester gave up or Close was
// called, which is no bug.
//
// Handle confirms the subscription and returns errors as Subscribe does.
func (c *Conn) Handle(subject string, fn HandlerFunc) (Subscription, error) {
	return c.HandleQueue(subject, "", fn)
}

// HandleQueue is Handle in the queue group queue: the server gives each
// request to one handler of the group, picked at random among those on
// the subject across all connections, so that several controllers share
// the work. An empty queue makes it Handle.
func (c *Conn) HandleQueue(subject, queue string, fn HandlerFunc) (Subscription, error) {
	return c.subscribe(subject, queue, func(msg *nats.Msg) { c.dispatch(msg, fn) })
}

// dispatch starts fn on msg in a goroutine of its own once a slot is free.
// It runs on the subscription's delivery goroutine, so while it waits for a
// slot, the subscription's next messages wait in its queue.
func (c *Conn) dispatch(msg *nats.Msg, fn HandlerFunc) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.running.Add(1)
	c.mu.Unlock()
	c.slots <- struct{}{}
	go func() {
		defer func() {
			<-c.slots
			c.running.Done()
		}()
		c.serve(msg, fn)
	}()
}

// serve calls fn on msg and sends the reply, if msg asks for one.
func (c *Conn) serve(msg *nats.Msg, fn HandlerFunc) {
	ctx, cancel := c.handlerContext(msg)
	defer cancel()
	ctx = context.WithValue(ctx, subjectKey{}, msg.Subject)
	result, err := call(ctx, fn, msg.Data)
	if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) && trustack.ErrorCode(err) == trustack.EINTERNAL {
		// fn gave up because the requester did or the Conn is closing:
		// not a bug to log, and retrying may help.
		err = fmt.Errorf("%w: %w", trustack.Errorf(trustack.EUNAVAILABLE, "the handler of %s stopped before finishing", msg.Subject), err)
	}
	if trustack.ErrorCode(err) == trustack.EINTERNAL {
		c.log.Error("internal error", "subject", msg.Subject, "error", err)
	}
	if msg.Reply == "" {
		return
	}
	var data []byte
	if err == nil {
		data, err = resultReply(result)
		if err != nil {
			c.log.Error("internal error", "subject", msg.Subject, "error", fmt.Errorf("encode result: %w", err))
		}
	}
	if err != nil {
		data = errorReply(err)
	}
	if err := msg.Respond(data); err != nil {
		c.log.Warn("send reply", "subject", msg.Subject, "error", err)
	}
}

type subjectKey struct{}

// RequestSubject returns the subject that the request a handler's context
// is for was sent to: with a wildcard subscription, the subject as the
// requester named it. "" for a context that is no handler's.
func RequestSubject(ctx context.Context) string {
	s, _ := ctx.Value(subjectKey{}).(string)
	return s
}

// handlerContext returns the context of a handler for msg: Close cancels
// it, and it ends when the requester stops waiting.
func (c *Conn) handlerContext(msg *nats.Msg) (context.Context, context.CancelFunc) {
	// A request without a valid timeout, which NATS clients other than
	// Conn send, has no deadline.
	ms, err := strconv.ParseInt(msg.Header.Get(timeoutHeader), 10, 64)
	if err != nil {
		// No context of its own: one would only cost the shared parent
		// a lock on every request.
		return c.ctx, func() {}
	}
	return context.WithTimeout(c.ctx, time.Duration(ms)*time.Millisecond)
}

// call calls fn, turning a panic into an error.
func call(ctx context.Context, fn HandlerFunc, data []byte) (result any, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("handler panicked: %v\n%s", p, debug.Stack())
		}
	}()
	return fn(ctx, data)
}

// resultReply encodes a reply carrying result.
func resultReply(result any) ([]byte, error) {
	data, err := json.Marshal(result)
	if err != nil {
		return nil, err
	}
	// Assembled by hand: marshalling a reply with a RawMessage would
	// validate data again, which json.Marshal just wrote.
	b := make([]byte, 0, len(`{"result":}`)+len(data))
	b = append(b, `{"result":`...)
	b = append(b, data...)
	return append(b, '}'), nil
}

// errorReply encodes a reply carrying err's code and message.
func errorReply(err error) []byte {
	// Marshalling two strings cannot fail.
	data, _ := json.Marshal(reply{Error: &replyError{Code: trustack.ErrorCode(err), Message: trustack.ErrorMessage(err)}})
	return data
}
