package qemu

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"

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

// copyConsole copies the serial console of the QEMU in dir into its log
// until QEMU closes the socket. What the guest prints while no copier is
// connected (the agent restarting) is lost: QEMU does not buffer it.
// It returns the connection, to close when the driver closes.
func copyConsole(ctx context.Context, dir string, maxSize int64) (io.Closer, error) {
	conn, err := qmp.DialUnix(ctx, dir, consoleSocket)
	if err != nil {
		return nil, err
	}
	go func() {
		defer conn.Close()
		w := &rotatingLog{path: filepath.Join(dir, consoleLog), max: maxSize}
		defer w.close()
		io.Copy(w, conn)
	}()
	return conn, nil
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
