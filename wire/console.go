package wire

import (
	"bufio"
	"context"
	"io"
	"net"
	"strings"
	"time"

	"github.com/trustack/trustack"
)

// The console conversation. A controller asks a host's agent, over the
// bus, to admit one connection to a server's console; the agent answers
// with the address of its console endpoint and a secret good for that
// console alone. The controller's console proxy then dials the address
// over TCP, sends the secret and a newline, and from then on the
// connection carries the console's bytes both ways (RFB for vnc, the
// serial port's for serial). Nothing is said back on a refusal: the agent
// closes the connection.

// ConsoleEndpoint is where a console proxy reaches an admitted console.
type ConsoleEndpoint struct {
	Address string `json:"address"` // host:port
	Secret  string `json:"secret"`
}

// RemoteConsole asks the host's agent to admit one connection to a
// server's console of protocol within ttl.
func (c *Hosts) RemoteConsole(ctx context.Context, host, serverID, protocol string, ttl time.Duration) (ConsoleEndpoint, error) {
	r, err := c.call(ctx, host, hostRequest{Op: opRemoteConsole, ServerID: serverID, Protocol: protocol, TTL: ttl})
	if err == nil && r.Console == nil {
		err = trustack.Errorf(trustack.EINTERNAL, "host %s admitted a console without saying where", host)
	}
	if err != nil {
		return ConsoleEndpoint{}, err
	}
	return *r.Console, nil
}

// DialConsole connects to an admitted console.
func DialConsole(ctx context.Context, end ConsoleEndpoint) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", end.Address)
	if err != nil {
		return nil, trustack.Errorf(trustack.EUNAVAILABLE, "console at %s: %v", end.Address, err)
	}
	if _, err := io.WriteString(conn, end.Secret+"\n"); err != nil {
		conn.Close()
		return nil, trustack.Errorf(trustack.EUNAVAILABLE, "console at %s: %v", end.Address, err)
	}
	return conn, nil
}

// ServeConsoles accepts console proxies' connections on l until it is
// closed: each connection's first line is a secret, which open turns into
// the console it was given for, or refuses; the connection then carries
// the console's bytes until either side closes.
func ServeConsoles(l net.Listener, open func(secret string) (io.ReadWriteCloser, error)) error {
	for {
		conn, err := l.Accept()
		if err != nil {
			return err
		}
		go serveConsole(conn, open)
	}
}

// consoleHandshakeTimeout bounds how long a proxy may take to send its
// secret.
const consoleHandshakeTimeout = 10 * time.Second

func serveConsole(conn net.Conn, open func(secret string) (io.ReadWriteCloser, error)) {
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(consoleHandshakeTimeout))
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	if err != nil {
		return
	}
	console, err := open(strings.TrimSuffix(line, "\n"))
	if err != nil {
		return
	}
	defer console.Close()
	conn.SetReadDeadline(time.Time{})
	done := make(chan struct{})
	go func() {
		io.Copy(conn, console)
		conn.Close() // ends the copy below
		close(done)
	}()
	io.Copy(console, r)
	console.Close() // ends the copy above
	<-done
}
