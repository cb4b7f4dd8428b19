// Package controller assembles trustack's controller from its parts: the
// store, the identity service with its keys, the policy engine and the
// OpenStack front doors on one listener. It is what `trustack server` and
// `trustack up` run.
package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/api/openstack"
	identityapi "github.com/trustack/trustack/api/openstack/identity"
	"github.com/trustack/trustack/config"
	"github.com/trustack/trustack/identity"
	"github.com/trustack/trustack/policy"
	"github.com/trustack/trustack/sqlstore"
)

// Controller is a running controller's parts.
type Controller struct {
	Config   *config.Config
	Store    *sqlstore.DB
	Identity *identity.Service
	Policy   *policy.Enforcer
	Handler  http.Handler
	log      *slog.Logger
}

// New opens the store (migrating it), the key repository and the policy,
// and builds the APIs. Close releases them.
func New(ctx context.Context, cfg *config.Config, log *slog.Logger) (*Controller, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	enforcer, err := newPolicy(cfg, log)
	if err != nil {
		return nil, err
	}
	store, err := sqlstore.Open(ctx, cfg.DatabaseDSN())
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	keys, err := identity.OpenKeyRepository(cfg.KeyRepositoryDir())
	if err != nil {
		store.Close()
		return nil, err
	}
	svc, err := identity.New(store, keys, identity.Options{
		TokenExpiration:    cfg.Auth.TokenExpiration,
		CacheTime:          cfg.Auth.CacheTime,
		PasswordHashRounds: cfg.Auth.PasswordHashRounds,
	})
	if err != nil {
		store.Close()
		return nil, err
	}
	c := &Controller{Config: cfg, Store: store, Identity: svc, Policy: enforcer, log: log}
	c.Handler = c.routes()
	return c, nil
}

// newPolicy builds the policy engine from every API's defaults and the
// operator's policy file, if there is one.
func newPolicy(cfg *config.Config, log *slog.Logger) (*policy.Enforcer, error) {
	var overrides map[string]string
	if cfg.Policy.File != "" {
		if _, err := os.Stat(cfg.Policy.File); err == nil {
			if overrides, err = policy.LoadFile(cfg.Policy.File); err != nil {
				return nil, err
			}
			log.Info("policy overrides loaded", "file", cfg.Policy.File, "rules", len(overrides))
		}
	}
	return policy.New(DefaultPolicy(), overrides)
}

// DefaultPolicy returns the default rules of every API.
func DefaultPolicy() []policy.Rule {
	return identityapi.Policy()
}

func (c *Controller) routes() http.Handler {
	mux := http.NewServeMux()
	identityHandler := identityapi.New(c.Identity, c.Policy, identityapi.Config{
		PublicURL:   c.Config.BaseURL(),
		MaxBodySize: c.Config.API.MaxBodySize,
	}, c.log)
	mux.Handle(identityapi.Prefix, identityHandler)
	mux.Handle(identityapi.Prefix+"/", identityHandler)
	// Paths outside every API get a JSON 404.
	mux.Handle("/", openstack.NewAPI(identityapi.ErrorBody, nil, nil, "", c.log))
	return openstack.Middleware(c.log, mux)
}

// Endpoints returns the catalog entries of the APIs this controller serves.
func (c *Controller) Endpoints() []identity.BootstrapEndpoint {
	base := c.Config.BaseURL()
	return []identity.BootstrapEndpoint{
		{Type: "identity", Name: "keystone", URL: base + identityapi.Prefix + "/v3"},
	}
}

// Bootstrap makes sure the default domain, roles, region and catalog exist,
// with the given accounts.
func (c *Controller) Bootstrap(ctx context.Context, accounts ...identity.BootstrapAccount) error {
	return c.Identity.Bootstrap(ctx, identity.BootstrapConfig{
		Region:    c.Config.Region,
		Accounts:  accounts,
		Endpoints: c.Endpoints(),
	})
}

// Listen opens the API listener.
func (c *Controller) Listen() (net.Listener, error) {
	l, err := net.Listen("tcp", c.Config.API.Listen)
	if err != nil {
		return nil, trustack.Errorf(trustack.EUNAVAILABLE, "listen on %s: %v", c.Config.API.Listen, err)
	}
	return l, nil
}

// Serve serves the APIs on l until ctx ends, then lets requests in flight
// finish for up to ten seconds.
func (c *Controller) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{
		Handler:           c.Handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(c.log.Handler(), slog.LevelWarn),
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := srv.Shutdown(shutdown)
	if e := <-done; !errors.Is(e, http.ErrServerClosed) {
		err = errors.Join(err, e)
	}
	return err
}

// Close releases the store.
func (c *Controller) Close() error {
	return c.Store.Close()
}
