package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/trustack/trustack"
)

const (
	// readyTimeout bounds how long Serve waits for the server to accept
	// clients.
	readyTimeout = 10 * time.Second

	// defaultClusterName is the name of a cluster whose ClusterConfig names
	// none.
	defaultClusterName = "trustack"
	// routeUser is the user name with which the nodes of a cluster
	// authenticate their routes to each other; the secret is the password.
	routeUser = "trustack-route"
	// minClusterSecret is the length, in bytes, of the shortest
	// ClusterConfig.Secret that Serve accepts.
	minClusterSecret = 16
)

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
	// Cluster, if not nil, makes the server one node of a NATS cluster:
	// nodes pass each other what their clients publish, so that a client
	// of any node reaches the subscribers of every node. Nil is a lone
	// server.
	Cluster *ClusterConfig
}

// ClusterConfig makes embedded servers, usually one per controller, one
// NATS cluster, joined by NATS routes. Each node authenticates its own
// clients with its own ServerConfig.Authenticate, which should therefore
// decide alike on every node; a client's grant is enforced by the node it
// is connected to, and what it publishes reaches the others only if that
// node let it.
type ClusterConfig struct {
	// Name is the cluster's name, the same on every node; "" means
	// "trustack". It may not contain spaces.
	Name string
	// Host and Port are where this node listens for the routes of the
	// others; an empty Host means every interface, and Port 0 picks a free
	// port, which ClusterAddr then reports.
	Host string
	Port int
	// Routes are the host:port addresses where other nodes listen for
	// routes. Listing this node itself, or nodes not up yet, is fine: a
	// node ignores a route to itself and keeps trying the others, every
	// second, for as long as it runs. A node learns of the nodes that its
	// routes know, so every node need not list every other; but a node
	// that lists none is found only by those that list it.
	Routes []string
	// Secret authenticates the routes: nodes accept a route only from a
	// node with the same secret, and nodes with different secrets do not
	// exchange messages. It must be at least 16 bytes long.
	Secret string
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
// because a port is taken, and with EINVALID for a cfg.Cluster whose
// Secret is shorter than 16 bytes, whose Name has spaces or one of whose
// Routes is not host:port. A node of a cluster returns without
// waiting for its routes.
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
	if cfg.Cluster != nil {
		if err := clusterOptions(opts, cfg.Cluster); err != nil {
			return nil, err
		}
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
	// Start listens for clients before it returns, and for routes soon
	// after; it reports a failure to listen only through the logger's
	// Fatalf.
	ns.Start()
	for deadline := time.Now().Add(readyTimeout); ; {
		if err := nlog.fatal(); err != nil {
			ns.Shutdown()
			return nil, fmt.Errorf("start nats server: %w", err)
		}
		if ns.ReadyForConnections(readyPoll) {
			break
		}
		if time.Now().After(deadline) {
			ns.Shutdown()
			return nil, fmt.Errorf("start nats server: not ready after %s", readyTimeout)
		}
	}
	addr, ok := ns.Addr().(*net.TCPAddr)
	if !ok {
		ns.Shutdown()
		return nil, fmt.Errorf("start nats server: listening on %v, want a TCP address", ns.Addr())
	}
	return &Server{ns: ns, url: "nats://" + localAddr(addr), auth: a}, nil
}

// readyPoll is how long Serve waits for the listeners between two looks
// for an error: nats-server reports a failure to listen for routes only
// after Start returns, and would let Serve wait for readyTimeout.
const readyPoll = 50 * time.Millisecond

// clusterOptions sets opts to make the server a node of the cluster c.
func clusterOptions(opts *server.Options, c *ClusterConfig) error {
	name := c.Name
	if name == "" {
		name = defaultClusterName
	}
	if strings.ContainsFunc(name, unicode.IsSpace) {
		return trustack.Errorf(trustack.EINVALID, "message bus cluster name %q: want no spaces", name)
	}
	if len(c.Secret) < minClusterSecret {
		return trustack.Errorf(trustack.EINVALID, "message bus cluster secret: %d bytes: want at least %d", len(c.Secret), minClusterSecret)
	}
	port := c.Port
	if port == 0 {
		port = server.RANDOM_PORT // for nats-server, 0 means no cluster
	}
	opts.Cluster = server.ClusterOpts{
		Name: name,
		Host: c.Host,
		Port: port,
		// Routes, unlike clients, are not for the Authenticator:
		// nats-server checks them against this user and password, and
		// uses them on the routes it learns of from its peers.
		Username: routeUser,
		Password: c.Secret,
	}
	// A node that is down is tried every second; say so once a minute,
	// not every time.
	opts.ReconnectErrorReports = 60
	for _, r := range c.Routes {
		host, p, err := net.SplitHostPort(r)
		n, perr := strconv.Atoi(p)
		if err != nil || perr != nil || n < 1 || n > 65535 || host == "" || strings.ContainsAny(host, "/@?# \t") {
			return trustack.Errorf(trustack.EINVALID, "message bus cluster route %q: want host:port", r)
		}
		// nats-server sends the credentials of a route it is told of
		// from its URL's user information.
		opts.Routes = append(opts.Routes, &url.URL{Scheme: "nats-route", User: url.UserPassword(routeUser, c.Secret), Host: r})
	}
	return nil
}

// localAddr returns addr as host:port, naming the loopback address for
// the wildcard one: Go's wildcard listeners accept IPv4 too, so loopback
// always works.
func localAddr(addr *net.TCPAddr) string {
	ip := addr.IP
	if ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1)
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(addr.Port))
}

// ClientURL returns the URL that clients on this machine connect to, such
// as nats://127.0.0.1:4222. When the server listens on every interface, the
// URL names the loopback address.
func (s *Server) ClientURL() string { return s.url }

// ClusterAddr returns the host:port where the server listens for the
// routes of the other nodes of its cluster, such as 127.0.0.1:6222, with
// the port it picked if ClusterConfig.Port was 0 and the loopback address
// if it listens on every interface; "" for a server without
// ServerConfig.Cluster.
func (s *Server) ClusterAddr() string {
	addr := s.ns.ClusterAddr()
	if addr == nil {
		return ""
	}
	return localAddr(addr)
}

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
