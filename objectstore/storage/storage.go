// Package storage runs storage nodes of the object store: the object,
// container and account servers over one directory of devices, each
// server on the listener its ring names, with the updaters that carry
// what could not be sent at once. It also makes a local cluster (nodes
// in directories of one machine, and their rings), as `trustack up` runs
// and tests use.
package storage

import (
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
	"github.com/trustack/trustack/objectstore/object"
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
	// UpdaterInterval is the time between two passes of the updaters.
	UpdaterInterval time.Duration
	// Log receives the servers' errors (default: discarded).
	Log *slog.Logger
}

// Node is a running storage node.
type Node struct {
	servers []*http.Server
	closers []interface{ Close() } // the role servers that hold open databases
	cancel  context.CancelFunc
	work    sync.WaitGroup
}

// updater is a server that also sends, in passes, what it could not at
// once.
type updater interface {
	RunUpdater(ctx context.Context, interval time.Duration)
}

// Start listens on the addresses of cfg's roles and serves them until
// Close; an address in use fails at once.
func Start(cfg Config) (*Node, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &Node{cancel: cancel}
	roles := []struct {
		name, addr string
		server     func() http.Handler
	}{
		{"object", cfg.Object, func() http.Handler {
			return object.New(cfg.Devices, cfg.Hasher, object.Options{Key: cfg.Key, Log: cfg.Log})
		}},
		{"container", cfg.Container, func() http.Handler {
			return container.New(cfg.Devices, cfg.Hasher, container.Options{Key: cfg.Key, Log: cfg.Log})
		}},
		{"account", cfg.Account, func() http.Handler {
			return account.New(cfg.Devices, cfg.Hasher, account.Options{Key: cfg.Key, Log: cfg.Log})
		}},
	}
	for _, role := range roles {
		if role.addr == "" {
			continue
		}
		l, err := net.Listen("tcp", role.addr)
		if err != nil {
			n.Close()
			return nil, fmt.Errorf("object store %s server: %w", role.name, err)
		}
		s := role.server()
		srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
			ErrorLog: slog.NewLogLogger(cfg.Log.Handler(), slog.LevelWarn)}
		n.servers = append(n.servers, srv)
		n.work.Go(func() {
			if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				cfg.Log.Error("object store server stopped", "role", role.name, "error", err)
			}
		})
		if u, ok := s.(updater); ok {
			n.work.Go(func() { u.RunUpdater(ctx, cfg.UpdaterInterval) })
		}
		if c, ok := s.(interface{ Close() }); ok {
			n.closers = append(n.closers, c)
		}
	}
	return n, nil
}

// Close stops the servers and their updaters, letting requests in flight
// end for up to five seconds, and closes their databases.
func (n *Node) Close() {
	n.cancel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range n.servers {
		s.Shutdown(ctx)
	}
	n.work.Wait()
	for _, c := range n.closers {
		c.Close()
	}
}
