package bus

import (
	"bytes"
	"io"
	"net"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// asyncPipes makes the in-process connections of clients that the server
// may refuse: through asyncPipe instead of a bare net.Pipe.
type asyncPipes struct{ ns *server.Server }

func (p asyncPipes) InProcessConn() (net.Conn, error) {
	conn, err := p.ns.InProcessConn()
	if err != nil {
		return nil, err
	}
	a := &asyncPipe{Conn: conn, queue: make(chan pipeWrite), result: make(chan error, 1)}
	go a.pump()
	return a, nil
}

// asyncPipe is the client's end of an in-process connection whose Write
// returns once the previous write has been read, without waiting for its
// own data to be. A net.Pipe's writes wait for the reader, which deadlocks
// when the server refuses a client: nats.go writes CONNECT and then PING,
// while the server, having read CONNECT, stops reading and writes its
// refusal, so both wait until the server's write deadline (10 seconds),
// after which the client sees a closed pipe instead of the refusal.
type asyncPipe struct {
	net.Conn

	mu       sync.Mutex // serializes Write and Close
	deadline time.Time  // of the next write
	busy     bool       // a write is in progress: result will tell
	err      error      // the first write error, or io.ErrClosedPipe after Close
	closed   bool
	queue    chan pipeWrite
	result   chan error
}

type pipeWrite struct {
	data     []byte
	deadline time.Time
}

// pump writes what Write queues, one write at a time.
func (p *asyncPipe) pump() {
	for w := range p.queue {
		err := p.Conn.SetWriteDeadline(w.deadline)
		if err == nil {
			_, err = p.Conn.Write(w.data)
		}
		p.result <- err
	}
}

// wait waits for the write in progress and returns the error that ends
// writing, if any. p.mu must be held.
func (p *asyncPipe) wait() error {
	if p.busy {
		p.busy = false
		if err := <-p.result; err != nil && p.err == nil {
			p.err = err
		}
	}
	return p.err
}

func (p *asyncPipe) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.wait(); err != nil {
		return 0, err
	}
	p.busy = true
	p.queue <- pipeWrite{data: bytes.Clone(b), deadline: p.deadline}
	return len(b), nil
}

// Close closes the pipe once the write in progress is done: nats.go
// flushes what it has left before closing.
func (p *asyncPipe) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	_ = p.wait() // its error no longer matters
	p.closed, p.err = true, io.ErrClosedPipe
	close(p.queue)
	return p.Conn.Close()
}

// SetDeadline sets the read deadline and that of the writes to come.
func (p *asyncPipe) SetDeadline(t time.Time) error {
	_ = p.SetWriteDeadline(t)
	return p.Conn.SetReadDeadline(t)
}

// SetWriteDeadline sets the deadline of the writes to come.
func (p *asyncPipe) SetWriteDeadline(t time.Time) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.deadline = t
	return nil
}
