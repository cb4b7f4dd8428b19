package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// readyTimeout bounds how long Serve waits for the server to accept clients.
const readyTimeout = 10 * time.Second

// ServerConfig configures an embedded NATS server. The zero value listens
// on a free port on every interface and logs nothing.
type ServerConfig struct {
	// Host is the address to listen on; empty means every interface.
	Host string
	// Port is the TCP port to listen on; 0 picks a free one, which
	// ClientURL then reports.
	Port int
	// Logger receives the server's errors and warnings. Its notices and
	// debug messages go at slog.LevelDebug, so the server is quiet unless
	// the logger's level is debug. Nil discards everything.
	Logger *slog.Logger
	// Authenticate, if not nil, decides who may connect and what each
	// client may do; connections made with the Trusted option may do
	// anything without asking it. Nil lets anyone connect and do anything,
	// whatever credentials they present.
	Authenticate Authenticator
}

// Server is an embedded NATS server: the message broker inside the trustack
// process, for clouds that do not run a NATS cluster of their own. It keeps
// nothing on disk (no JetStream): messages in flight when it stops are
// lost, and clients reconnect to whatever listens on the same address next.
// Its methods are safe for concurrent use.
type Server struct {
	ns   *server.Server
	url  string
	auth *auth // nil without ServerConfig.Authenticate
}

// Serve starts a NATS server in this process, listening on cfg.Host and
// cfg.Port, and returns once it accepts clients. Clients in the same
// process can skip TCP with the InProcess option, and those that must be
// able to do anything, whatever cfg.Authenticate says, connect with the
// Trusted option. Serve fails if the server cannot listen, for instance
// because the port is taken.
func Serve(cfg ServerConfig) (*Server, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	port := cfg.Port
	if port == 0 {
		port = server.RANDOM_PORT // for nats-server, 0 means its default port 4222
	}
	opts := &server.Options{
		Host:   cfg.Host,
		Port:   port,
		NoSigs: true, // the process that embeds the server handles its own signals
		// Without a system account the server publishes no $SYS event per
		// connection, which matters with thousands of simulated hosts.
		NoSystemAccount: true,
		// Clients with SignedNonce sign it to prove that they hold their
		// key. nats.go refuses to connect with a key to a server that
		// presents none, so even a server that lets anyone in presents
		// one, to which they can connect alike.
		AlwaysEnableNonce: true,
	}
	var a *auth
	if cfg.Authenticate != nil {
		a = newAuth(cfg.Authenticate, log.With("component", "bus-auth"))
		opts.CustomClientAuthentication = a
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("configure nats server: %w", err)
	}
	if a != nil {
		a.ns = ns
	}
	nlog := &serverLog{log: log.With("component", "nats-server")}
	ns.SetLoggerV2(nlog, log.Enabled(context.Background(), slog.LevelDebug), false, false)
	// Start listens before it returns, and reports a failure to listen only
	// through the logger's Fatalf.
	ns.Start()
	if err := nlog.fatal(); err != nil {
		ns.Shutdown()
		return nil, fmt.Errorf("start nats server: %w", err)
	}
	if !ns.ReadyForConnections(readyTimeout) {
		ns.Shutdown()
		return nil, fmt.Errorf("start nats server: not ready after %s", readyTimeout)
	}
	addr, ok := ns.Addr().(*net.TCPAddr)
	if !ok {
		ns.Shutdown()
		return nil, fmt.Errorf("start nats server: listening on %v, want a TCP address", ns.Addr())
	}
	ip := addr.IP
	if ip.IsUnspecified() {
		// Go's wildcard listeners accept IPv4 too, so loopback always works.
		ip = net.IPv4(127, 0, 0, 1)
	}
	return &Server{ns: ns, url: "nats://" + net.JoinHostPort(ip.String(), strconv.Itoa(addr.Port)), auth: a}, nil
}

// ClientURL returns the URL that clients on this machine connect to, such
// as nats://127.0.0.1:4222. When the server listens on every interface, the
// URL names the loopback address.
func (s *Server) ClientURL() string { return s.url }

// Shutdown closes every client connection and stops the server, returning
// once it has stopped. Its clients keep trying to reconnect. Calling
// Shutdown again does nothing.
func (s *Server) Shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}

// serverLog passes nats-server's log to slog, keeping its chatter at debug
// level, and remembers the first fatal error, which nats-server reports
// only by logging it.
type serverLog struct {
	log *slog.Logger

	mu  sync.Mutex
	err error
}

func (l *serverLog) Noticef(format string, v ...any) { l.logf(slog.LevelDebug, format, v) }
func (l *serverLog) Warnf(format string, v ...any)   { l.logf(slog.LevelWarn, format, v) }
func (l *serverLog) Errorf(format string, v ...any)  { l.logf(slog.LevelError, format, v) }
func (l *serverLog) Debugf(format string, v ...any)  { l.logf(slog.LevelDebug, format, v) }
func (l *serverLog) Tracef(format string, v ...any)  { l.logf(slog.LevelDebug, format, v) }

// Fatalf records the error for Serve instead of exiting, as nats-server's
// own logger would.
func (l *serverLog) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.log.Error(msg)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == nil {
		l.err = errors.New(msg)
	}
}

func (l *serverLog) fatal() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

func (l *serverLog) logf(level slog.Level, format string, v []any) {
	ctx := context.Background()
	if l.log.Enabled(ctx, level) {
		l.log.Log(ctx, level, fmt.Sprintf(format, v...))
	}
}
