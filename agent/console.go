package agent

import (
	"context"
	"crypto/rand"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/wire"
)

// Consoles is what a Hypervisor that offers remote consoles does besides.
type Consoles interface {
	// OpenConsole connects to a running server's console of protocol:
	// "vnc", its RFB server; "serial", its serial port, whose output the
	// connection reads and whose input it writes, while the console log
	// goes on. EINVALID for a protocol the driver does not offer,
	// ENOTFOUND for a missing server, ECONFLICT for one not running.
	OpenConsole(ctx context.Context, serverID, protocol string) (io.ReadWriteCloser, error)
}

// admission is a console the agent admits one connection to.
type admission struct {
	serverID, protocol string
	expires            time.Time
}

// RemoteConsole admits one connection to a server's console within ttl:
// it returns the agent's console address and a secret for that console
// alone. EINVALID if the host offers no remote consoles (its hypervisor
// does not, or the agent has no console listener) or none of protocol,
// ENOTFOUND for a missing server.
func (a *Agent) RemoteConsole(ctx context.Context, serverID, protocol string, ttl time.Duration) (wire.ConsoleEndpoint, error) {
	_, offered := a.hv.(Consoles)
	a.mu.Lock()
	addr := a.consoles
	a.mu.Unlock()
	if !offered || addr == "" || protocol != "vnc" && protocol != "serial" {
		return wire.ConsoleEndpoint{}, trustack.Errorf(trustack.EINVALID, "Unavailable console type %s.", protocol)
	}
	if _, err := a.hv.State(ctx, serverID); err != nil {
		return wire.ConsoleEndpoint{}, err
	}
	secret := rand.Text()
	now := time.Now()
	a.mu.Lock()
	for s, ad := range a.admitted {
		if now.After(ad.expires) {
			delete(a.admitted, s)
		}
	}
	a.admitted[secret] = admission{serverID: serverID, protocol: protocol, expires: now.Add(ttl)}
	a.mu.Unlock()
	return wire.ConsoleEndpoint{Address: addr, Secret: secret}, nil
}

// openConsole opens the console a secret was given for, once.
func (a *Agent) openConsole(ctx context.Context, secret string) (io.ReadWriteCloser, error) {
	a.mu.Lock()
	ad, ok := a.admitted[secret]
	delete(a.admitted, secret)
	a.mu.Unlock()
	if !ok || time.Now().After(ad.expires) {
		return nil, trustack.Errorf(trustack.EUNAUTHORIZED, "no console admitted for this secret")
	}
	return a.hv.(Consoles).OpenConsole(ctx, ad.serverID, ad.protocol)
}

// serveConsoles serves the console listener l until the function it
// returns is called.
func (a *Agent) serveConsoles(l net.Listener) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	addr := l.Addr().String()
	if tcp, ok := l.Addr().(*net.TCPAddr); ok && tcp.IP.IsUnspecified() && a.cfg.HostIP != "" {
		// Listening on every address: proxies reach the host's.
		addr = net.JoinHostPort(a.cfg.HostIP, strconv.Itoa(tcp.Port))
	}
	a.mu.Lock()
	a.consoles = addr
	a.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := wire.ServeConsoles(l, func(secret string) (io.ReadWriteCloser, error) { return a.openConsole(ctx, secret) })
		if ctx.Err() == nil {
			a.cfg.Log.Error("serve consoles", "error", err)
		}
	}()
	return func() {
		a.mu.Lock()
		a.consoles = ""
		a.mu.Unlock()
		cancel()
		l.Close()
		<-done
	}
}
