package qemu

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/trustack/trustack"

	"github.com/trustack/trustack/internal/qmp"
)

// Console files in an instance's directory: QEMU serves the serial port on
// consoleSocket, and the driver copies what it says into consoleLog, which
// it rotates into consoleLog+".0" when it reaches the size limit, as
// libvirt's virtlogd does.
const (
	consoleSocket = "console.sock"
	consoleLog    = "console.log"
)

// copyConsole copies the serial console of the QEMU in dir into its log,
// and to the remote consoles attached, until QEMU closes the socket. What
// the guest prints while no copier is connected (the agent restarting) is
// lost: QEMU does not buffer it. It returns the serial port, to close when
// the driver closes.
func copyConsole(ctx context.Context, dir string, maxSize int64) (*serialPort, error) {
	conn, err := qmp.DialUnix(ctx, dir, consoleSocket)
	if err != nil {
		return nil, err
	}
	p := &serialPort{conn: conn, taps: map[*serialTap]bool{}}
	go func() {
		defer p.Close()
		w := &rotatingLog{path: filepath.Join(dir, consoleLog), max: maxSize}
		defer w.close()
		io.Copy(io.MultiWriter(p, w), conn)
	}()
	return p, nil
}

// serialPort is a guest's serial port as the driver holds it: QEMU admits
// one connection to it, whose output goes to the console log and to every
// remote console attached, and whose input comes from them. It is safe for
// concurrent use.
type serialPort struct {
	conn net.Conn

	mu     sync.Mutex
	taps   map[*serialTap]bool
	closed bool
}

// tapBacklog is how many of the guest's writes a remote console may fall
// behind before it is cut off, so that a slow one never holds up the
// guest's console.
const tapBacklog = 256

// attach returns a remote console on the port.
func (p *serialPort) attach() (*serialTap, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, trustack.Errorf(trustack.ECONFLICT, "qemu: the serial console is closed")
	}
	t := &serialTap{port: p, out: make(chan []byte, tapBacklog)}
	p.taps[t] = true
	return t, nil
}

// Write hands what the guest printed to the remote consoles; it never
// fails.
func (p *serialPort) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for t := range p.taps {
		select {
		case t.out <- bytes.Clone(b):
		default:
			p.detach(t)
		}
	}
	return len(b), nil
}

// detach ends a remote console; p.mu is held.
func (p *serialPort) detach(t *serialTap) {
	if p.taps[t] {
		delete(p.taps, t)
		close(t.out)
	}
}

// Close closes QEMU's connection and ends the remote consoles.
func (p *serialPort) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for t := range p.taps {
		p.detach(t)
	}
	return p.conn.Close()
}

// serialTap is a remote console on a serial port: it reads what the
// guest prints from the moment it attached, and writes to the guest.
type serialTap struct {
	port *serialPort
	out  chan []byte
	rest []byte
}

func (t *serialTap) Read(b []byte) (int, error) {
	if len(t.rest) == 0 {
		next, ok := <-t.out
		if !ok {
			return 0, io.EOF
		}
		t.rest = next
	}
	n := copy(b, t.rest)
	t.rest = t.rest[n:]
	return n, nil
}

func (t *serialTap) Write(b []byte) (int, error) { return t.port.conn.Write(b) }

func (t *serialTap) Close() error {
	t.port.mu.Lock()
	defer t.port.mu.Unlock()
	t.port.detach(t)
	return nil
}

// rotatingLog is a file that moves to path.0 when it reaches max bytes.
type rotatingLog struct {
	path string
	max  int64
	f    *os.File
	size int64
}

func (l *rotatingLog) Write(p []byte) (int, error) {
	if l.f == nil {
		f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return 0, err
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return 0, err
		}
		l.f, l.size = f, st.Size()
	}
	n, err := l.f.Write(p)
	l.size += int64(n)
	if err == nil && l.size >= l.max {
		l.close()
		err = os.Rename(l.path, l.path+".0")
	}
	return n, err
}

func (l *rotatingLog) close() {
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
}

// readConsole returns the last lines of the console log in dir, all that
// is kept if lines is 0.
func readConsole(dir string, lines int) (string, error) {
	var all []byte
	for _, name := range []string{consoleLog + ".0", consoleLog} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil && !os.IsNotExist(err) {
			return "", err
		}
		all = append(all, b...)
	}
	// Serial consoles end lines with CR LF.
	text := strings.ReplaceAll(string(bytes.ToValidUTF8(all, []byte("?"))), "\r\n", "\n")
	if lines <= 0 {
		return text, nil
	}
	split := strings.SplitAfter(text, "\n")
	if split[len(split)-1] == "" {
		split = split[:len(split)-1]
	}
	if len(split) > lines {
		split = split[len(split)-lines:]
	}
	return strings.Join(split, ""), nil
}
