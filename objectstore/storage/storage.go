// Package storage runs storage nodes of the object store: the object,
// container and account servers over one directory of devices, each
// server on the listener its ring names, with their background work (the
// updaters that carry what could not be sent at once, the replicators
// that keep every replica alike, the auditor that finds rotten copies,
// the expirer that deletes expired objects).
// It also makes a local cluster (nodes in directories of one machine, and
// their rings), as `trustack up` runs and tests use.
package storage

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/trustack/trustack/objectstore"
	"github.com/trustack/trustack/objectstore/account"
	"github.com/trustack/trustack/objectstore/container"
	"github.com/trustack/trustack/objectstore/dbserver"
	"github.com/trustack/trustack/objectstore/expirer"
	"github.com/trustack/trustack/objectstore/object"
	"github.com/trustack/trustack/objectstore/proxy"
)

// Config is a storage node's.
type Config struct {
	// Devices is the directory of the node's devices.
	Devices string
	// Hasher and Key are the cluster's secrets.
	Hasher objectstore.Hasher
	Key    string
	// Object, Container and Account are the addresses the servers of
	// those roles listen on; "" for a role the node does not run.
	Object, Container, Account string
	// Rings are the cluster's rings, by which the replicators find the
	// other replicas of what the node holds, and the expirer and the
	// servers its queue; nil: the node neither replicates nor expires
	// objects.
	Rings *proxy.Rings
	// RingIP is the address the rings name the node by ("": the host of
	// its listen addresses).
	RingIP string
	// UpdaterInterval is the time between two passes of the updaters,
	// ReplicatorInterval of the replicators (default 30 s each).
	UpdaterInterval, ReplicatorInterval time.Duration
	// ExpirerInterval is the time between two passes of the object
	// expirer, which runs beside the container server; zero runs none.
	ExpirerInterval time.Duration
	// Now is the clock that decides when an object expires, for the
	// object server and the expirer (default time.Now).
	Now func() time.Time
	// AuditRate bounds the bytes per second the auditor reads (default
	// 10 MiB/s).
	AuditRate int64
	// Log receives the servers' errors (default: discarded).
	Log *slog.Logger

	// held are the listeners Local opened for the servers, which Start
	// serves rather than listening again.
	held *listeners
}

// Node is a running storage node.
type Node struct {
	servers []*http.Server
	closers []func() // the role servers' databases
	cancel  context.CancelFunc
	work    sync.WaitGroup
}

// Start listens on the addresses of cfg's roles and serves them, with
// their background work, until Close; an address in use fails at once.
func Start(cfg Config) (*Node, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	cfg.UpdaterInterval = cmp.Or(cfg.UpdaterInterval, 30*time.Second)
	cfg.ReplicatorInterval = cmp.Or(cfg.ReplicatorInterval, 30*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	n := &Node{cancel: cancel}
	fail := func(err error) (*Node, error) {
		n.Close()
		return nil, err
	}
	dbOpts := dbserver.Options{Key: cfg.Key, Interval: cfg.ReplicatorInterval}
	objectOpts, containerOpts := object.Options{Key: cfg.Key, Now: cfg.Now, Log: cfg.Log}, container.Options{Key: cfg.Key, Log: cfg.Log}
	if cfg.Rings != nil {
		objectOpts.ContainerRing, containerOpts.AccountRing = cfg.Rings.Container, cfg.Rings.Account
	}
	if cfg.Object != "" {
		s := object.New(cfg.Devices, cfg.Hasher, objectOpts)
		if err := n.serve(cfg.held, "object", cfg.Object, s, cfg.Log); err != nil {
			return fail(err)
		}
		n.background(ctx, func(ctx context.Context) { s.RunUpdater(ctx, cfg.UpdaterInterval) })
		n.background(ctx, object.NewAuditor(s, object.AuditorOptions{BytesPerSecond: cfg.AuditRate, Log: cfg.Log}).Run)
		if cfg.Rings != nil {
			n.background(ctx, object.NewReplicator(s, cfg.Rings.Object, cfg.ringAddr(cfg.Object), object.ReplicatorOptions{Interval: cfg.ReplicatorInterval, Log: cfg.Log}).Run)
		}
	}
	if cfg.Container != "" {
		s := container.New(cfg.Devices, cfg.Hasher, containerOpts)
		n.closers = append(n.closers, s.Close)
		if err := n.serve(cfg.held, "container", cfg.Container, s, cfg.Log); err != nil {
			return fail(err)
		}
		n.background(ctx, func(ctx context.Context) { s.RunUpdater(ctx, cfg.UpdaterInterval) })
		if cfg.Rings != nil {
			n.background(ctx, s.NewReplicator(cfg.Rings.Container, cfg.ringAddr(cfg.Container), dbOpts).Run)
			if cfg.ExpirerInterval > 0 {
				// The expirer works on the queue containers whose first
				// primary is this container server.
				n.background(ctx, expirer.New(cfg.Hasher, expirer.Rings(*cfg.Rings), cfg.ringAddr(cfg.Container),
					expirer.Options{Key: cfg.Key, Interval: cfg.ExpirerInterval, Now: cfg.Now, Log: cfg.Log}).Run)
			}
		}
	}
	if cfg.Account != "" {
		s := account.New(cfg.Devices, cfg.Hasher, account.Options{Key: cfg.Key, Log: cfg.Log})
		n.closers = append(n.closers, s.Close)
		if err := n.serve(cfg.held, "account", cfg.Account, s, cfg.Log); err != nil {
			return fail(err)
		}
		if cfg.Rings != nil {
			n.background(ctx, s.NewReplicator(cfg.Rings.Account, cfg.ringAddr(cfg.Account), dbOpts).Run)
		}
	}
	return n, nil
}

// ringAddr is the address the rings name the server listening on listen
// by.
func (cfg Config) ringAddr(listen string) string {
	host, port, _ := net.SplitHostPort(listen)
	if cfg.RingIP != "" {
		host = cfg.RingIP
	}
	return net.JoinHostPort(host, port)
}

// serve serves h on addr until Close, on the listener held for addr if
// there is one.
func (n *Node) serve(held *listeners, role, addr string, h http.Handler, log *slog.Logger) error {
	l := held.take(addr)
	if l == nil {
		var err error
		if l, err = net.Listen("tcp", addr); err != nil {
			return fmt.Errorf("object store %s server: %w", role, err)
		}
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	n.servers = append(n.servers, srv)
	n.work.Go(func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("object store server stopped", "role", role, "error", err)
		}
	})
	return nil
}

// background runs work until Close.
func (n *Node) background(ctx context.Context, work func(context.Context)) {
	n.work.Go(func() { work(ctx) })
}

// Close stops the servers and their background work, letting requests
// in flight end for up to five seconds, and closes their databases.
func (n *Node) Close() {
	n.cancel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range n.servers {
		s.Shutdown(ctx)
	}
	n.work.Wait()
	for _, c := range n.closers {
		c()
	}
}
