// Command trustack is trustack's one binary: the controller (server), the
// all-in-one cloud (up), and the operator's tools (manage, config,
// policy). It parses flags and configuration and wires the packages that
// do the work; it holds no logic of its own.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/bus"
	"github.com/trustack/trustack/config"
	"github.com/trustack/trustack/controller"
	"github.com/trustack/trustack/identity"
	"github.com/trustack/trustack/policy"
	"github.com/trustack/trustack/sqlstore"
	"github.com/trustack/trustack/up"
)

func main() {
	// A controller's live heap is a few megabytes, so Go's default target
	// (collect when the heap doubles, at least 4 MB) means dozens of
	// collections a second under load, each taking one of the few cores
	// for a while; fewer, larger cycles cost megabytes and cut the latency
	// tail. The GOGC environment variable still decides when set.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := root().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "trustack:", err)
		os.Exit(1)
	}
}

func root() *cobra.Command {
	cmd := &cobra.Command{
		Use:           "trustack",
		Short:         "A trustworthy IaaS cloud that speaks OpenStack's APIs",
		Version:       trustack.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	cmd.AddCommand(upCommand(), serverCommand(), agentCommand(), storageCommand(), manageCommand(), configCommand(), policyCommand(), simCommand())
	addClientCommands(cmd)
	return cmd
}

// logger returns the logger the configuration asks for, on stderr, and
// its level, which an administrator may change while trustack runs
// (Cinder's set-log).
func logger(cfg *config.Config) (*slog.Logger, *slog.LevelVar) {
	level := new(slog.LevelVar)
	level.Set(map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}[cfg.Log.Level])
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), level
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts)), level
}

func upCommand() *cobra.Command {
	var configFile, dataDir, listen, s3Listen, driver, network, testImage, attestation string
	var nodes int
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run a whole cloud in this process, with embedded defaults",
		Long: `up runs the controller, an embedded NATS server and --nodes compute hosts in
one process, with state in the data directory, and writes DATA_DIR/openrc
(admin) and DATA_DIR/demo-openrc (a member of the demo project) for the
OpenStack CLIs. It reads a configuration file only when --config names one;
flags override it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := config.Default()
			cfg.DataDir, cfg.API.Listen, cfg.Compute.Driver, cfg.Network.Driver = dataDir, listen, driver, network
			cfg.Bus.Listen = "127.0.0.1:0" // the hosts are in this process
			cfg.ObjectStore.S3Listen = s3Listen
			if configFile != "" {
				var err error
				if cfg, err = config.LoadOver(cfg, configFile); err != nil {
					return err
				}
				// Flags given override the file.
				if cmd.Flags().Changed("data-dir") {
					cfg.DataDir = dataDir
				}
				if cmd.Flags().Changed("listen") {
					cfg.API.Listen = listen
				}
				if cmd.Flags().Changed("s3-listen") {
					cfg.ObjectStore.S3Listen = s3Listen
				}
				if cmd.Flags().Changed("driver") {
					cfg.Compute.Driver = driver
				}
				if cmd.Flags().Changed("network") {
					cfg.Network.Driver = network
				}
			}
			if cmd.Flags().Changed("attestation") {
				cfg.Attestation.Enabled = attestation
			}
			abs, err := filepath.Abs(cfg.DataDir)
			if err != nil {
				return err
			}
			cfg.DataDir = abs
			log, level := logger(cfg)
			return up.Run(cmd.Context(), cfg, nodes, testImage, log, level, cmd.OutOrStdout())
		},
	}
	home, _ := os.UserHomeDir()
	cmd.Flags().IntVar(&nodes, "nodes", 1, "compute hosts to run in this process")
	cmd.Flags().StringVar(&driver, "driver", "fake", "hypervisor driver of the compute hosts: fake or qemu")
	cmd.Flags().StringVar(&network, "network", "fake", "network driver of the compute hosts: fake, or linux (each host in a network namespace of its own, as a cloud of several machines on this one; needs root)")
	cmd.Flags().StringVar(&attestation, "attestation", "auto", "whether the compute hosts attest, each with its own swtpm: yes, no, or auto (if swtpm is installed)")
	cmd.Flags().StringVar(&testImage, "test-image", "build/test-image", "directory of the test guest (scripts/build-test-image), offered as the public image tiny if there")
	cmd.Flags().StringVar(&configFile, "config", "", "configuration file (default: none, embedded defaults)")
	cmd.Flags().StringVar(&dataDir, "data-dir", filepath.Join(home, ".local", "share", "trustack"), "directory for the cloud's state")
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:5000", "address and port of the APIs")
	cmd.Flags().StringVar(&s3Listen, "s3-listen", "127.0.0.1:8080", "address and port of the S3 API on the object store (empty: none)")
	return cmd
}

func serverCommand() *cobra.Command {
	var configFile string
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the controller (with no subcommand), or manage servers (create, list, show, ...)",
		Long: `server, with no subcommand, runs the controller: the APIs, against the
configured database, with the embedded bus unless [bus] url names another.

Its subcommands are the client's: they manage servers through the compute
API, with the credentials of the OS_* environment, as the OpenStack CLIs do.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(configFile)
			if err != nil {
				return err
			}
			log, level := logger(cfg)
			ls, err := controller.Listen(cfg)
			if err != nil {
				return err
			}
			defer ls.Close()
			c, err := controller.New(cmd.Context(), cfg, log, level)
			if err != nil {
				return err
			}
			defer c.Close()
			if err := c.Bootstrap(cmd.Context()); err != nil {
				return err
			}
			log.Info("trustack server ready", "listen", ls.API.Addr().String(), "auth_url", controller.AuthURL(cfg))
			return c.Serve(cmd.Context(), ls)
		},
	}
	cmd.Flags().StringVar(&configFile, "config", "", "configuration file (default: "+config.DefaultPath+" if it exists)")
	return cmd
}

func agentCommand() *cobra.Command {
	var configFile string
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run a compute host's agent: it registers with the controllers over the bus and runs their servers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(configFile)
			if err != nil {
				return err
			}
			log, _ := logger(cfg)
			name := cfg.Agent.Host
			if name == "" {
				if name, err = os.Hostname(); err != nil {
					return err
				}
			}
			url := cfg.Bus.URL
			if url == "" {
				url = "nats://" + cfg.Bus.Listen
			}
			dial := func(opts ...bus.Option) (*bus.Conn, error) {
				return bus.Connect(url, "trustack-agent-"+name, append(opts, bus.Logger(log))...)
			}
			tpm := cfg.Attestation.TPM
			if cfg.Attestation.Enabled == "no" {
				tpm = ""
			}
			h, err := up.NewHost(cmd.Context(), cfg, dial, name, filepath.Join(cfg.DataDir, "host"), tpm, log)
			if err != nil {
				return err
			}
			log.Info("trustack agent ready", "host", name, "bus", url)
			return h.Run(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&configFile, "config", "", "configuration file (default: "+config.DefaultPath+" if it exists); [bus] url or listen says where the controllers are")
	return cmd
}

func manageCommand() *cobra.Command {
	var configFile string
	load := func() (*config.Config, error) { return config.Load(configFile) }
	cmd := &cobra.Command{
		Use:   "manage",
		Short: "Operator tasks: the controller's state (fernet, db, bootstrap), and, through the API, ACaaS and attestation (host, location, domain, requirement-entry, whitelist, ek)",
	}
	cmd.PersistentFlags().StringVar(&configFile, "config", "", "configuration file (default: "+config.DefaultPath+" if it exists)")

	fernet := &cobra.Command{Use: "fernet", Short: "Manage the Fernet keys that sign tokens"}
	fernet.AddCommand(&cobra.Command{
		Use:   "rotate",
		Short: "Promote the staged key to primary, make a new staged key and prune old ones",
		Long: `rotate promotes the staged key to primary, makes a new staged key and removes
the oldest keys beyond [auth] max_active_keys. Tokens signed by a key that
remains keep validating; running controllers pick the new keys up within a
second. Copy the repository to every controller after rotating.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := load()
			if err != nil {
				return err
			}
			primary, err := identity.RotateKeys(cfg.KeyRepositoryDir(), cfg.Auth.MaxActiveKeys)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "rotated %s: key %d is now the primary\n", cfg.KeyRepositoryDir(), primary)
			return nil
		},
	})

	db := &cobra.Command{Use: "db", Short: "Manage the database"}
	db.AddCommand(&cobra.Command{
		Use:   "upgrade",
		Short: "Apply the schema migrations this binary carries (controllers also do at start)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := load()
			if err != nil {
				return err
			}
			store, err := sqlstore.Open(cmd.Context(), cfg.DatabaseDSN())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "database schema at version %d\n", sqlstore.SchemaVersion())
			return store.Close()
		},
	})

	var password string
	bootstrap := &cobra.Command{
		Use:   "bootstrap",
		Short: "Create the admin account (project admin, user admin with role admin) and the catalog",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if password == "" {
				return trustack.Errorf(trustack.EINVALID, "--admin-password is required")
			}
			cfg, err := load()
			if err != nil {
				return err
			}
			log, level := logger(cfg)
			c, err := controller.New(cmd.Context(), cfg, log, level)
			if err != nil {
				return err
			}
			defer c.Close()
			return c.Bootstrap(cmd.Context(), identity.BootstrapAccount{Project: "admin", User: "admin", Role: "admin", Password: password, ResetPassword: true})
		},
	}
	bootstrap.Flags().StringVar(&password, "admin-password", "", "password of the admin user (set even if the user exists)")

	cmd.AddCommand(fernet, db, bootstrap, ringCommand(load))
	cmd.AddCommand(acaasManageCommands()...)
	return cmd
}

func configCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Configuration"}
	cmd.AddCommand(&cobra.Command{
		Use:   "defaults",
		Short: "Print the annotated default configuration file",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprint(cmd.OutOrStdout(), config.Defaults())
			return err
		},
	})
	return cmd
}

func policyCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "Authorization policy"}
	cmd.AddCommand(&cobra.Command{
		Use:       "defaults identity|image|compute|network|volume",
		Short:     "Print an API's default policy rules as a policy file, each commented out",
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"identity", "image", "compute", "network", "volume"},
		RunE: func(cmd *cobra.Command, args []string) error {
			defaults, ok := controller.DefaultPolicies()[args[0]]
			if !ok {
				return trustack.Errorf(trustack.EINVALID, "unknown API %q: want identity, image, compute, network or volume", args[0])
			}
			e, err := policy.New(defaults, nil)
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(cmd.OutOrStdout(), policy.YAML(e.Rules()))
			return err
		},
	})
	return cmd
}
