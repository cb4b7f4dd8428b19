// Package qmp speaks QEMU's machine protocol (QMP) to a QEMU or a
// qemu-storage-daemon over its unix socket: one connection, commands from
// several goroutines, replies matched to them by ID.
package qmp

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// Monitor is a connection to one QEMU's QMP socket. Commands may run from
// several goroutines; replies are matched to them by ID. The connection
// ends when QEMU exits, which closes done.
type Monitor struct {
	conn net.Conn

	mu      sync.Mutex // guards writes, next and waiting
	next    int
	waiting map[string]chan qmpReply

	done chan struct{} // closed when the connection ends
}

type qmpReply struct {
	Return json.RawMessage `json:"return"`
	Error  *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error"`
	ID    string `json:"id"`
	Event string `json:"event"`
}

// ErrGone is what commands return once QEMU has exited.
var ErrGone = errors.New("QEMU has exited")

// Dial connects to the QMP socket in dir and negotiates capabilities.
func Dial(ctx context.Context, dir, socket string) (*Monitor, error) {
	conn, err := DialUnix(ctx, dir, socket)
	if err != nil {
		return nil, err
	}
	m := &Monitor{conn: conn, waiting: map[string]chan qmpReply{}, done: make(chan struct{})}
	r := bufio.NewReader(conn)
	// The greeting comes first, then replies and events, one per line.
	// QEMU greets one client at a time: another may hold the monitor.
	if deadline, ok := ctx.Deadline(); ok {
		conn.SetReadDeadline(deadline)
	}
	_, err = r.ReadBytes('\n')
	conn.SetReadDeadline(time.Time{})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("QMP greeting: %w", err)
	}
	go m.read(r)
	if _, err := m.Run(ctx, "qmp_capabilities", nil); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// DialUnix connects to the unix socket name in dir (QEMU's monitor, or
// its serial console). Socket paths are
// limited to about 100 bytes, which instance directories may exceed, so
// it goes through the directory's file descriptor.
func DialUnix(ctx context.Context, dir, name string) (net.Conn, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var d net.Dialer
	return d.DialContext(ctx, "unix", filepath.Join("/proc/self/fd", strconv.Itoa(int(f.Fd())), name))
}

// read dispatches replies until the connection ends; events are dropped,
// as the driver asks for the state it needs.
func (m *Monitor) read(r *bufio.Reader) {
	defer func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		close(m.done)
		m.conn.Close()
	}()
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return
		}
		var rep qmpReply
		if json.Unmarshal(line, &rep) != nil || rep.Event != "" {
			continue
		}
		m.mu.Lock()
		ch := m.waiting[rep.ID]
		delete(m.waiting, rep.ID)
		m.mu.Unlock()
		if ch != nil {
			ch <- rep
		}
	}
}

// Run executes a QMP command and returns its result; ErrGone once QEMU
// has exited.
func (m *Monitor) Run(ctx context.Context, command string, args any) (json.RawMessage, error) {
	ch := make(chan qmpReply, 1)
	m.mu.Lock()
	select {
	case <-m.done:
		m.mu.Unlock()
		return nil, ErrGone
	default:
	}
	m.next++
	id := strconv.Itoa(m.next)
	line, err := json.Marshal(struct {
		Execute   string `json:"execute"`
		Arguments any    `json:"arguments,omitempty"`
		ID        string `json:"id"`
	}{command, args, id})
	if err != nil {
		m.mu.Unlock()
		return nil, fmt.Errorf("QMP %s: %w", command, err)
	}
	m.waiting[id] = ch
	_, err = m.conn.Write(append(line, '\n'))
	m.mu.Unlock()
	if err != nil {
		// The connection is over (QEMU exited before the reader saw
		// it): it is closed, and the reader closes done.
		m.conn.Close()
		<-m.done
		return nil, ErrGone
	}
	select {
	case rep := <-ch:
		if rep.Error != nil {
			return nil, fmt.Errorf("QMP %s: %s: %s", command, rep.Error.Class, rep.Error.Desc)
		}
		return rep.Return, nil
	case <-m.done:
		return nil, ErrGone
	case <-ctx.Done():
		m.mu.Lock()
		delete(m.waiting, id)
		m.mu.Unlock()
		return nil, fmt.Errorf("QMP %s: %w", command, ctx.Err())
	}
}

// Gone reports whether QEMU has exited.
func (m *Monitor) Gone() bool {
	select {
	case <-m.done:
		return true
	default:
		return false
	}
}

// Done is closed when the connection ends: QEMU exited, or Close.
func (m *Monitor) Done() <-chan struct{} { return m.done }

// Close ends the connection.
func (m *Monitor) Close() { m.conn.Close() }
