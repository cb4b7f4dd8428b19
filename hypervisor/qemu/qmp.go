package qemu

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

// monitor is a connection to one QEMU's QMP socket. Commands may run from
// several goroutines; replies are matched to them by ID. The connection
// ends when QEMU exits, which closes done.
type monitor struct {
	conn net.Conn
	enc  *json.Encoder

	mu      sync.Mutex // guards enc, next and waiting
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

// errGone is what commands return once QEMU has exited.
var errGone = errors.New("QEMU has exited")

// dialMonitor connects to the QMP socket in dir and negotiates
// capabilities.
func dialMonitor(ctx context.Context, dir, socket string) (*monitor, error) {
	conn, err := dialUnix(ctx, dir, socket)
	if err != nil {
		return nil, err
	}
	m := &monitor{conn: conn, enc: json.NewEncoder(conn), waiting: map[string]chan qmpReply{}, done: make(chan struct{})}
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
	if _, err := m.run(ctx, "qmp_capabilities", nil); err != nil {
		m.close()
		return nil, err
	}
	return m, nil
}

// dialUnix connects to the unix socket name in dir. Socket paths are
// limited to about 100 bytes, which instance directories may exceed, so
// it goes through the directory's file descriptor.
func dialUnix(ctx context.Context, dir, name string) (net.Conn, error) {
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
func (m *monitor) read(r *bufio.Reader) {
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

// run executes a QMP command and returns its result.
func (m *monitor) run(ctx context.Context, command string, args any) (json.RawMessage, error) {
	ch := make(chan qmpReply, 1)
	m.mu.Lock()
	select {
	case <-m.done:
		m.mu.Unlock()
		return nil, errGone
	default:
	}
	m.next++
	id := strconv.Itoa(m.next)
	m.waiting[id] = ch
	err := m.enc.Encode(struct {
		Execute   string `json:"execute"`
		Arguments any    `json:"arguments,omitempty"`
		ID        string `json:"id"`
	}{command, args, id})
	m.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("QMP %s: %w", command, err)
	}
	select {
	case rep := <-ch:
		if rep.Error != nil {
			return nil, fmt.Errorf("QMP %s: %s: %s", command, rep.Error.Class, rep.Error.Desc)
		}
		return rep.Return, nil
	case <-m.done:
		return nil, errGone
	case <-ctx.Done():
		m.mu.Lock()
		delete(m.waiting, id)
		m.mu.Unlock()
		return nil, fmt.Errorf("QMP %s: %w", command, ctx.Err())
	}
}

// status returns QEMU's run state (query-status), such as "running".
func (m *monitor) status(ctx context.Context) (string, error) {
	out, err := m.run(ctx, "query-status", nil)
	if err != nil {
		return "", err
	}
	var st struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		return "", fmt.Errorf("QMP query-status: %w", err)
	}
	return st.Status, nil
}

// gone reports whether QEMU has exited.
func (m *monitor) gone() bool {
	select {
	case <-m.done:
		return true
	default:
		return false
	}
}

func (m *monitor) close() { m.conn.Close() }
