// Package controller assembles trustack's controller from its parts: the
// store, the identity, image and compute services, the scheduler, the
// message bus that reaches compute agents, the policy engine and the
// OpenStack front doors on one listener. It is what `trustack server` and
// `trustack up` run.
package controller

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/acaas"
	"github.com/trustack/trustack/api/openstack"
	computeapi "github.com/trustack/trustack/api/openstack/compute"
	identityapi "github.com/trustack/trustack/api/openstack/identity"
	imageapi "github.com/trustack/trustack/api/openstack/image"
	networkapi "github.com/trustack/trustack/api/openstack/network"
	trustapi "github.com/trustack/trustack/api/openstack/trust"
	volumeapi "github.com/trustack/trustack/api/openstack/volume"
	"github.com/trustack/trustack/attest"
	"github.com/trustack/trustack/bus"
	"github.com/trustack/trustack/cluster"
	"github.com/trustack/trustack/compute"
	"github.com/trustack/trustack/config"
	"github.com/trustack/trustack/identity"
	"github.com/trustack/trustack/images"
	"github.com/trustack/trustack/network"
	"github.com/trustack/trustack/objectstore"
	"github.com/trustack/trustack/objectstore/proxy"
	"github.com/trustack/trustack/objectstore/s3"
	"github.com/trustack/trustack/objectstore/storage"
	"github.com/trustack/trustack/policy"
	"github.com/trustack/trustack/scheduler"
	"github.com/trustack/trustack/sqlstore"
	"github.com/trustack/trustack/volume"
	"github.com/trustack/trustack/wire"
)

// Controller is a running controller's parts.
type Controller struct {
	Config   *config.Config
	Store    *sqlstore.DB
	Identity *identity.Service
	Images   *images.Service
	Compute  *compute.Service
	Network  *network.Service
	Volume   *volume.Service
	// ObjectStore is the object store's Swift API; nil when the
	// controller serves none ([object_store] enabled).
	ObjectStore *proxy.Proxy
	// S3 is the S3 API on the object store's data, served on
	// [object_store] s3_listen; nil when that is empty.
	S3    http.Handler
	ACaaS *acaas.Service
	// Attest is the attestation verifier; nil when hosts do not attest
	// ([attestation] enabled = no).
	Attest    *attest.Service
	Scheduler *scheduler.Scheduler
	// Policies holds each API's policy engine, by API name.
	Policies map[string]*policy.Enforcer
	Handler  http.Handler
	// Bus is the embedded NATS server, nil with an external one; Conn is
	// the controller's connection.
	Bus  *bus.Server
	Conn *bus.Conn
	// Members are the controllers sharing the store, this one among them:
	// each carries out its own builds and actions, takes over those of
	// controllers gone, and attests and checks its share of the hosts.
	Members *cluster.Membership
	log     *slog.Logger
	// level is log's level, which the volume API's set-log changes; nil
	// if it cannot be.
	level *slog.LevelVar
}

// New opens the store (migrating it), the key repository, the bus and the
// policy, and builds the services and APIs, logging to log, whose level
// administrators may change through the API (nil: they may not). Close
// releases them.
func New(ctx context.Context, cfg *config.Config, log *slog.Logger, level *slog.LevelVar) (_ *Controller, err error) {
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	c := &Controller{Config: cfg, log: log, level: level}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	if c.Policies, err = newPolicies(cfg, log); err != nil {
		return nil, err
	}
	if c.Store, err = sqlstore.Open(ctx, cfg.DatabaseDSN()); err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	keys, err := identity.OpenKeyRepository(cfg.KeyRepositoryDir())
	if err != nil {
		return nil, err
	}
	credentialKeys, err := identity.OpenKeyRepository(cfg.CredentialKeyRepositoryDir())
	if err != nil {
		return nil, err
	}
	if c.Identity, err = identity.New(c.Store, keys, identity.Options{
		TokenExpiration:    cfg.Auth.TokenExpiration,
		CacheTime:          cfg.Auth.CacheTime,
		PasswordHashRounds: cfg.Auth.PasswordHashRounds,
		CredentialKeys:     credentialKeys,
	}); err != nil {
		return nil, err
	}
	if c.ObjectStore, err = newObjectStore(cfg, c.Identity, log); err != nil {
		return nil, err
	}
	if oc := cfg.ObjectStore; oc.S3Listen != "" {
		if c.ObjectStore == nil {
			return nil, fmt.Errorf("object store: s3_listen is set but the controller serves no object store ([object_store] enabled, and rings in ring_dir)")
		}
		c.S3 = openstack.Middleware(log, s3.New(c.ObjectStore, c.Identity, s3.Options{Region: oc.S3Region, Domain: oc.S3Domain, Log: log}))
	}
	data, err := c.imageData()
	if err != nil {
		return nil, err
	}
	c.Images = images.New(c.Store, data, images.Options{SizeCap: cfg.Image.SizeCap})
	if err := c.connectBus(); err != nil {
		return nil, err
	}
	if err := c.newMembers(); err != nil {
		return nil, err
	}
	multiplier := cfg.Scheduler.RAMWeightMultiplier
	if c.Scheduler, err = scheduler.New(c.Store, scheduler.Options{
		Driver:              cfg.Scheduler.Driver,
		RAMWeightMultiplier: &multiplier,
		HostSubsetSize:      cfg.Scheduler.HostSubsetSize,
		Alive:               func(h *trustack.Host) bool { return c.Compute.Alive(h) },
	}); err != nil {
		return nil, err
	}
	c.ACaaS = acaas.New(c.Store, nil, acaas.Options{Attested: c.attesting()})
	if c.Network, err = newNetwork(cfg, c.Store, func(h *trustack.Host) bool { return c.Compute.Alive(h) }, log); err != nil {
		return nil, err
	}
	c.Network.SetAgents(wire.NewHosts(c.Conn))
	c.Volume = volume.New(c.Store, c.Store, wire.NewHosts(c.Conn), volume.Options{
		AvailabilityZone: cfg.Compute.DefaultAvailabilityZone,
		Images:           c.Images,
		ImageURL:         cfg.BaseURL() + imageapi.Prefix,
		ImageTokens:      c.Identity,
		Requirements:     c.ACaaS,
		Alive:            func(h *trustack.Host) bool { return c.Compute.Alive(h) },
		Controllers:      c.Members,
		TakeoverInterval: c.Members.TTL() / 3,
		Log:              log.With("component", "volume"),
	})
	c.Compute = compute.New(c.Store, c.Images, wire.NewHosts(c.Conn), c.Scheduler, compute.Options{
		Requirements:            c.ACaaS,
		Network:                 c.Network,
		Volumes:                 c.Volume,
		Workers:                 cfg.Compute.Workers,
		ServiceDownTime:         cfg.Compute.ServiceDownTime,
		ConsoleTokenTTL:         cfg.Compute.ConsoleTokenTTL,
		MaxAttempts:             cfg.Scheduler.MaxAttempts,
		ImageURL:                cfg.BaseURL() + imageapi.Prefix,
		ImageTokens:             c.Identity,
		DefaultAvailabilityZone: cfg.Compute.DefaultAvailabilityZone,
		Controllers:             c.Members,
		TakeoverInterval:        c.Members.TTL() / 3,
		Log:                     log,
	})
	c.ACaaS.SetEnforcer(c.Compute)
	c.Volume.SetServers(c.Compute)
	if c.attesting() {
		if err := c.newVerifier(); err != nil {
			return nil, err
		}
	}
	c.Handler = c.routes()
	return c, nil
}

// objectStorePrefix is where the object store's Swift API is mounted;
// its catalog URL is objectStorePrefix + "/v1/AUTH_$(project_id)s".
const objectStorePrefix = "/object-store"

// newObjectStore returns the object store's proxy as [object_store]
// says: nil when disabled, or when left to auto and ring_dir holds no
// rings.
func newObjectStore(cfg *config.Config, v openstack.Validator, log *slog.Logger) (*proxy.Proxy, error) {
	oc := cfg.ObjectStore
	if oc.Enabled == "no" {
		return nil, nil
	}
	rings, err := storage.LoadRings(cfg.RingDir())
	if errors.Is(err, fs.ErrNotExist) && oc.Enabled == "auto" {
		log.Info("no object store: no rings", "ring_dir", cfg.RingDir())
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("object store: %w", err)
	}
	if oc.HashPathPrefix == "" && oc.HashPathSuffix == "" {
		return nil, fmt.Errorf("object store: set [object_store] hash_path_prefix and hash_path_suffix, the secrets that place names on the rings, the same as the storage nodes'")
	}
	return proxy.New(rings, v, proxy.Options{
		Key:    oc.BackendKey,
		Hasher: objectstore.Hasher{Prefix: oc.HashPathPrefix, Suffix: oc.HashPathSuffix},
		Log:    log.With("component", "object-store"),
	}), nil
}

// imageProject is the project in whose object store account the images
// are kept with [image] store = object: Glance's single-tenant store uses
// its service project's; trustack's controllers have no service project,
// and the admin project is the one every cloud is bootstrapped with.
const imageProject = "admin"

// imageData returns where image data is kept, as [image] store says: in
// the image directory, or in the object store, which must then be
// served.
func (c *Controller) imageData() (images.DataStore, error) {
	cfg := c.Config
	if cfg.Image.Store != "object" {
		return images.OpenFiles(cfg.ImageDir(), time.Now())
	}
	if c.ObjectStore == nil {
		return nil, fmt.Errorf("config: [image] store = object, but this controller serves no object store: set [object_store] enabled = yes and give it rings in ring_dir")
	}
	return images.Objects(images.ObjectStore{
		Handler:   c.ObjectStore,
		Access:    c.imageAccess,
		Container: cfg.Image.Container,
		ChunkSize: cfg.Image.ChunkSize,
	}), nil
}

// imageAccess is the image service's access to the object store: the
// account of the admin project, as a user of its own holding the admin
// role there. The proxy takes the token as it is (proxy.AsCaller), so it
// is made here rather than issued; the admin role lets it do anything in
// that one account, and nothing elsewhere, which ResellerAdmin would.
// The project is looked up at the first request: `trustack up`
// bootstraps it after the controller is built.
func (c *Controller) imageAccess(ctx context.Context) (images.ObjectAccess, error) {
	ps, err := c.Store.Projects(ctx, trustack.ProjectFilter{DomainID: trustack.DefaultDomainID, Name: imageProject})
	if err != nil {
		return images.ObjectAccess{}, err
	}
	if len(ps) == 0 {
		return images.ObjectAccess{}, trustack.Errorf(trustack.EUNAVAILABLE, "The image store's project %s does not exist yet: bootstrap the cloud.", imageProject)
	}
	tok := &trustack.Token{
		User:    trustack.User{ID: "glance", Name: "glance", DomainID: trustack.DefaultDomainID},
		Project: ps[0],
		Roles:   []trustack.Role{{Name: "admin"}},
	}
	return images.ObjectAccess{
		Account:  "AUTH_" + ps[0].ID,
		AsCaller: func(ctx context.Context) context.Context { return proxy.AsCaller(ctx, tok) },
	}, nil
}

// newNetwork builds the networking service as [network] says.
func newNetwork(cfg *config.Config, store network.Store, alive func(*trustack.Host) bool, log *slog.Logger) (*network.Service, error) {
	vlans, err := cfg.VLANRanges()
	if err != nil {
		return nil, err
	}
	vnis, err := cfg.VNIRange()
	if err != nil {
		return nil, err
	}
	mac, err := cfg.BaseMAC()
	if err != nil {
		return nil, err
	}
	return network.New(store, network.Options{
		MACPrefix: mac, TenantNetworkType: cfg.Network.TenantNetworkType, VLANRanges: vlans, VXLANRange: vnis,
		PhysicalNetworks: cfg.Network.PhysicalNetworks, MTU: cfg.Network.MTU, Alive: alive, Log: log.With("component", "network"),
	}), nil
}

// connectBus starts the embedded NATS server, unless an external one is
// configured, and connects to it.
func (c *Controller) connectBus() error {
	cfg := c.Config
	var err error
	if cfg.Bus.URL != "" {
		c.Conn, err = bus.Connect(cfg.Bus.URL, "trustack-controller", bus.Logger(c.log))
		return err
	}
	sc := bus.ServerConfig{Logger: c.log}
	if sc.Host, sc.Port, err = hostPort("listen", cfg.Bus.Listen); err != nil {
		return err
	}
	if cfg.Bus.ClusterListen != "" {
		// The controllers' embedded servers form one cluster, so that an
		// agent connected to any reaches them all.
		sc.Cluster = &bus.ClusterConfig{Routes: cfg.Bus.Routes, Secret: cfg.Bus.ClusterSecret}
		if sc.Cluster.Host, sc.Cluster.Port, err = hostPort("cluster_listen", cfg.Bus.ClusterListen); err != nil {
			return err
		}
	}
	if c.attesting() {
		// Agents are admitted as the verifier says; it exists once the
		// services are built, before the bus serves agents.
		sc.Authenticate = func(cred bus.Credentials) (bus.Grant, bool) {
			if c.Attest == nil {
				return bus.Grant{}, false
			}
			return c.Attest.Authenticate(cred)
		}
	}
	if c.Bus, err = bus.Serve(sc); err != nil {
		return err
	}
	c.Conn, err = bus.Connect(c.Bus.ClientURL(), "trustack-controller", bus.Trusted(c.Bus), bus.Logger(c.log))
	return err
}

// hostPort splits the [bus] option's address.
func hostPort(option, addr string) (string, int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, trustack.Errorf(trustack.EINVALID, "config: [bus] %s %q: want host:port", option, addr)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return "", 0, trustack.Errorf(trustack.EINVALID, "config: [bus] %s %q: bad port", option, addr)
	}
	return host, p, nil
}

// newMembers makes this controller's membership among those sharing the
// store, under [controller] name or the machine's hostname; it takes its
// lease when it serves.
func (c *Controller) newMembers() error {
	name := c.Config.Controller.Name
	if name == "" {
		var err error
		if name, err = os.Hostname(); err != nil {
			return fmt.Errorf("name the controller: %w", err)
		}
	}
	// Its lease runs 15 s after each renewal; with attestation, a
	// controller that dies leaves its hosts to the others within an
	// interval: its lease expires within half of one, they read the
	// members a third of that later at most, and attest the hosts they
	// took at once.
	opts := cluster.Options{TTL: 15 * time.Second, Log: c.log, Changed: func() {
		if c.Attest != nil {
			c.Attest.Reshard()
		}
	}}
	if c.attesting() {
		opts.TTL = c.Config.Attestation.Interval / 2
	}
	c.Members = cluster.New(c.Store, name, opts)
	return nil
}

// attesting reports whether hosts must pass attestation: unless
// [attestation] enabled is no (`trustack up` decides auto beforehand).
func (c *Controller) attesting() bool { return c.Config.Attestation.Enabled != "no" }

// newVerifier builds the attestation verifier, trusting the configured
// TPM manufacturer CAs.
func (c *Controller) newVerifier() error {
	roots, intermediates, err := readCABundles(c.Config.Attestation.CABundles)
	if err != nil {
		return err
	}
	opts := attest.Options{
		Interval: c.Config.Attestation.Interval, Grace: c.Config.Attestation.GracePeriod,
		Roots: roots, Intermediates: intermediates,
		Log: c.log.With("component", "verifier"), Shard: c.Members, Name: c.Members.ID(),
	}
	if c.Bus != nil {
		opts.Disconnect = func(user string) { c.Bus.Disconnect(user) }
	}
	c.Attest = attest.New(c.Store, c.Store, c.Compute, c.Conn, opts)
	c.Compute.SetVerifier(c.Attest)
	// A host's domain decides its white-list: changes to domains have
	// hosts attested again at once.
	c.ACaaS.SetEnforcer(enforcers{c.Compute, c.Attest})
	return nil
}

// enforcers tells several services that placement's model changed.
type enforcers []acaas.Enforcer

func (e enforcers) RequirementsChanged() {
	for _, x := range e {
		x.RequirementsChanged()
	}
}

// readCABundles reads PEM files of CA certificates: the self-signed ones
// are roots, the others intermediates.
func readCABundles(files []string) (roots, intermediates *x509.CertPool, err error) {
	roots, intermediates = x509.NewCertPool(), x509.NewCertPool()
	for _, f := range files {
		rest, err := os.ReadFile(f)
		if err != nil {
			return nil, nil, fmt.Errorf("config: [attestation] ca_bundles: %w", err)
		}
		n := 0
		for {
			var block *pem.Block
			if block, rest = pem.Decode(rest); block == nil {
				break
			}
			if block.Type != "CERTIFICATE" {
				continue
			}
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, nil, fmt.Errorf("config: [attestation] ca_bundles: %s: %w", f, err)
			}
			if bytes.Equal(cert.RawIssuer, cert.RawSubject) && cert.CheckSignatureFrom(cert) == nil {
				roots.AddCert(cert)
			} else {
				intermediates.AddCert(cert)
			}
			n++
		}
		if n == 0 {
			return nil, nil, fmt.Errorf("config: [attestation] ca_bundles: %s holds no PEM certificate", f)
		}
	}
	return roots, intermediates, nil
}

// DefaultPolicies returns each API's default rules, by API name: the name
// of its policy file in [policy] dir.
func DefaultPolicies() map[string][]policy.Rule {
	return map[string][]policy.Rule{
		"identity": identityapi.Policy(),
		"image":    imageapi.Policy(),
		"compute":  append(computeapi.Policy(), trustapi.Policy()...),
		"network":  networkapi.Policy(),
		"volume":   volumeapi.Policy(),
	}
}

// newPolicies builds each API's policy engine from its defaults and the
// operator's policy file for it, if there is one.
func newPolicies(cfg *config.Config, log *slog.Logger) (map[string]*policy.Enforcer, error) {
	out := map[string]*policy.Enforcer{}
	for name, defaults := range DefaultPolicies() {
		var overrides map[string]string
		for _, ext := range []string{".yaml", ".yml", ".json"} {
			file := filepath.Join(cfg.Policy.Dir, name+ext)
			if _, err := os.Stat(file); err != nil {
				continue
			}
			var err error
			if overrides, err = policy.LoadFile(file); err != nil {
				return nil, err
			}
			log.Info("policy overrides loaded", "api", name, "file", file, "rules", len(overrides))
			break
		}
		e, err := policy.New(defaults, overrides)
		if err != nil {
			return nil, fmt.Errorf("%s policy: %w", name, err)
		}
		out[name] = e
	}
	return out, nil
}

func (c *Controller) routes() http.Handler {
	mux := http.NewServeMux()
	base := c.Config.BaseURL()
	mount := func(prefix string, h http.Handler) {
		mux.Handle(prefix, h)
		mux.Handle(prefix+"/", h)
	}
	mount(identityapi.Prefix, identityapi.New(c.Identity, c.Policies["identity"], identityapi.Config{
		PublicURL:   base,
		MaxBodySize: c.Config.API.MaxBodySize,
	}, c.log))
	mount(imageapi.Prefix, imageapi.New(c.Images, c.Identity, c.Policies["image"], imageapi.Config{
		PublicURL:   base,
		AuthURL:     AuthURL(c.Config),
		MaxBodySize: c.Config.API.MaxBodySize,
	}, c.log))
	var verifier trustapi.Attestation // nil, not a nil *attest.Service, when hosts do not attest
	if c.Attest != nil {
		verifier = c.Attest
	}
	trust := trustapi.New(c.ACaaS, c.Identity, c.Policies["compute"], trustapi.Config{
		AuthURL:     AuthURL(c.Config),
		MaxBodySize: c.Config.API.MaxBodySize,
		Attestation: verifier,
	}, c.log)
	mount(computeapi.Prefix, computeapi.New(c.Compute, c.Images, c.Network, c.Identity, c.Policies["compute"], computeapi.Config{
		PublicURL:   base,
		ConsoleURL:  c.Config.Compute.ConsoleURL,
		AuthURL:     AuthURL(c.Config),
		MaxBodySize: c.Config.API.MaxBodySize,
		ImageURL:    base + imageapi.Prefix,
		Extensions:  trustapi.Extensions(trust),
	}, c.log))
	mux.Handle(computeapi.ConsolePath+"/", computeapi.NewConsoleProxy(c.Compute, computeapi.NoVNCDir, c.log))
	mount(networkapi.Prefix, networkapi.New(c.Network, c.Identity, c.Policies["network"], networkapi.Config{
		PublicURL:   base,
		AuthURL:     AuthURL(c.Config),
		MaxBodySize: c.Config.API.MaxBodySize,
	}, c.log))
	hostname, _ := os.Hostname()
	mount(volumeapi.Prefix, volumeapi.New(c.Volume, c.Identity, c.Policies["volume"], volumeapi.Config{
		PublicURL:   base,
		AuthURL:     AuthURL(c.Config),
		MaxBodySize: c.Config.API.MaxBodySize,
		LogLevel:    c.level,
		Hostname:    hostname,
	}, c.log))
	if c.ObjectStore != nil {
		mount(objectStorePrefix, http.StripPrefix(objectStorePrefix, c.ObjectStore))
	}
	// Paths outside every API get a JSON 404.
	mux.Handle("/", openstack.NewAPI(openstack.TitledError, nil, nil, "", c.log))
	return openstack.Middleware(c.log, mux)
}

// AuthURL is the identity endpoint clients authenticate against.
func AuthURL(cfg *config.Config) string {
	return cfg.BaseURL() + identityapi.Prefix + "/v3"
}

// Endpoints returns the catalog entries of the APIs this controller serves.
func (c *Controller) Endpoints() []identity.BootstrapEndpoint {
	base := c.Config.BaseURL()
	var objectStore []identity.BootstrapEndpoint
	if c.ObjectStore != nil {
		objectStore = append(objectStore, identity.BootstrapEndpoint{Type: "object-store", Name: "swift", URL: base + objectStorePrefix + "/v1/AUTH_$(project_id)s"})
	}
	if c.S3 != nil {
		objectStore = append(objectStore, identity.BootstrapEndpoint{Type: "s3", Name: "s3", URL: c.Config.S3URL()})
	}
	return append(objectStore, []identity.BootstrapEndpoint{
		{Type: "identity", Name: "keystone", URL: base + identityapi.Prefix + "/v3"},
		{Type: "image", Name: "glance", URL: base + imageapi.Prefix},
		{Type: "compute", Name: "nova", URL: base + computeapi.Prefix + "/v2.1"},
		{Type: "network", Name: "neutron", URL: base + networkapi.Prefix},
		{Type: "volumev3", Name: "cinderv3", URL: base + volumeapi.Prefix + "/v3/$(project_id)s"},
		{Type: "block-storage", Name: "cinder", URL: base + volumeapi.Prefix + "/v3/$(project_id)s"},
	}...)
}

// Bootstrap makes sure the default domain, roles, region, catalog and
// flavors exist, with the given accounts.
func (c *Controller) Bootstrap(ctx context.Context, accounts ...identity.BootstrapAccount) error {
	err := c.Identity.Bootstrap(ctx, identity.BootstrapConfig{
		Region:    c.Config.Region,
		Accounts:  accounts,
		Endpoints: c.Endpoints(),
	})
	if err != nil {
		return err
	}
	if err := c.Compute.EnsureFlavors(ctx, compute.DefaultFlavors); err != nil {
		return err
	}
	return c.ACaaS.EnsureEntries(ctx, acaas.DefaultEntries)
}

// Listeners are where a controller serves: its APIs, and the S3 API
// when [object_store] s3_listen names an address (else S3 is nil).
type Listeners struct {
	API, S3 net.Listener
}

// Listen opens the listeners of cfg. Opening them before a controller
// starts fails at once on a port in use, and keeps the ports from being
// taken meanwhile.
func Listen(cfg *config.Config) (*Listeners, error) {
	api, err := listen(cfg.API.Listen)
	if err != nil {
		return nil, err
	}
	ls := &Listeners{API: api}
	if cfg.ObjectStore.S3Listen != "" {
		if ls.S3, err = listen(cfg.ObjectStore.S3Listen); err != nil {
			api.Close()
			return nil, err
		}
	}
	return ls, nil
}

func listen(addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, trustack.Errorf(trustack.EUNAVAILABLE, "listen on %s: %v", addr, err)
	}
	return l, nil
}

// Close closes the listeners.
func (ls *Listeners) Close() {
	ls.API.Close()
	if ls.S3 != nil {
		ls.S3.Close()
	}
}

// Serve runs the controller until ctx ends: the compute service (first
// finishing what a previous run left in progress), the answers to agents,
// and the APIs on ls. Then it lets requests in flight finish for up to
// ten seconds, and waits for the compute work in flight.
func (c *Controller) Serve(ctx context.Context, ls *Listeners) error {
	if err := c.Members.Renew(ctx); err != nil {
		return fmt.Errorf("join the controllers: %w", err)
	}
	members := make(chan struct{})
	go func() { c.Members.Run(ctx); close(members) }()
	// Last, once its work stopped: the lease goes.
	defer func() { <-members; c.Members.Leave(context.WithoutCancel(ctx)) }()
	if err := c.Compute.Start(ctx); err != nil {
		return err
	}
	defer c.Compute.Wait()
	if err := c.Volume.Recover(ctx); err != nil {
		return err
	}
	defer c.Volume.Wait()
	if c.Attest != nil {
		if err := c.Attest.Start(ctx); err != nil {
			return err
		}
		defer c.Attest.Wait()
	}
	stopAgents, err := wire.ServeControllers(c.Conn, c.Compute, c.witness)
	defer stopAgents()
	if err != nil {
		return err
	}
	storageHosts, err := wire.ServeVolumeControllers(c.Conn, c.Volume, c.witness)
	if err != nil {
		return err
	}
	defer storageHosts.Unsubscribe()
	endpoints := []endpoint{{ls.API, c.Handler}}
	if ls.S3 != nil {
		endpoints = append(endpoints, endpoint{ls.S3, c.S3})
	}
	return serveHTTP(ctx, c.log, endpoints)
}

// endpoint is a handler and the listener it is served on.
type endpoint struct {
	l net.Listener
	h http.Handler
}

// serveHTTP serves the endpoints until ctx ends or one of them fails;
// then it lets requests in flight finish for up to ten seconds.
func serveHTTP(ctx context.Context, log *slog.Logger, endpoints []endpoint) error {
	servers := make([]*http.Server, len(endpoints))
	done := make(chan error, len(endpoints))
	for i, e := range endpoints {
		servers[i] = &http.Server{
			Handler:           e.h,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
		go func() { done <- servers[i].Serve(e.l) }()
	}
	var err error
	running := len(servers)
	select {
	case err = <-done:
		running--
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, srv := range servers {
		err = errors.Join(err, srv.Shutdown(shutdown))
	}
	for ; running > 0; running-- {
		if e := <-done; !errors.Is(e, http.ErrServerClosed) {
			err = errors.Join(err, e)
		}
	}
	return err
}

// witness hears of the messages hosts sent about other hosts: the
// verifier records them as the senders' events; without one, they are
// logged.
func (c *Controller) witness(ctx context.Context, sp wire.Spoof) {
	if c.Attest != nil {
		c.Attest.Spoofed(ctx, sp)
		return
	}
	c.log.Warn("dropped a host's message about another host", "sender", sp.Sender, "named", sp.Named, "message", sp.What)
}

// Close releases the bus and the store.
func (c *Controller) Close() error {
	if c.Conn != nil {
		c.Conn.Close()
	}
	if c.Bus != nil {
		c.Bus.Shutdown()
	}
	if c.Store != nil {
		return c.Store.Close()
	}
	return nil
}
