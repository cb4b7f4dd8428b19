package main

import (
	"context"
	"errors"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/client"
)

// addClientCommands adds the client commands, which talk to a cloud as
// the OS_* variables say: image, keypair, flavor, requirement, network,
// subnet, port, router, floating-ip, security-group, volume, container
// and object, and the server commands under `server`. That is the
// controller's command, which takes no arguments, so `trustack server`
// alone still runs the controller.
func addClientCommands(root *cobra.Command) {
	for _, c := range root.Commands() {
		if c.Name() == "server" {
			c.AddCommand(serverClientCommands()...)
		}
	}
	image := &cobra.Command{Use: "image", Short: "Manage images"}
	image.AddCommand(imageCommands()...)
	keypair := &cobra.Command{Use: "keypair", Short: "Manage SSH keypairs"}
	keypair.AddCommand(keypairCommands()...)
	flavor := &cobra.Command{Use: "flavor", Short: "Show the flavors of servers"}
	flavor.AddCommand(formatted(clientCommand("list", "List flavors", cobra.NoArgs, func(ctx context.Context, c *client.Client, _ []string) error {
		return c.ListFlavors(ctx)
	})))
	root.AddCommand(image, keypair, flavor, requirementCommand())
	root.AddCommand(networkCommands()...)
	root.AddCommand(volumeCommand(), containerCommand(), objectCommand())
}

// clientCommand is a command that connects to the cloud and runs run.
func clientCommand(use, short string, args cobra.PositionalArgs, run func(context.Context, *client.Client, []string) error) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  args,
		RunE: func(cmd *cobra.Command, args []string) error {
			format := client.FormatTable
			if f := cmd.Flags().Lookup("format"); f != nil {
				var err error
				if format, err = client.ParseFormat(f.Value.String()); err != nil {
					return err
				}
			}
			cfg, err := client.ConfigFromEnv(os.Getenv)
			if err != nil {
				return err
			}
			c, err := client.Dial(cmd.Context(), cfg, client.Output{
				Out: cmd.OutOrStdout(), Format: format,
				Progress: cmd.ErrOrStderr(), Terminal: term.IsTerminal(int(os.Stderr.Fd())),
			})
			if err != nil {
				return err
			}
			return run(cmd.Context(), c, args)
		},
	}
}

// serviceCommand is a command that connects to the cloud, opens with
// session its session with one of the cloud's services (Networking,
// say), and runs run in it.
func serviceCommand[S any](use, short string, args cobra.PositionalArgs, session func(*client.Client) (S, error), run func(context.Context, S, []string) error) *cobra.Command {
	return clientCommand(use, short, args, func(ctx context.Context, c *client.Client, args []string) error {
		s, err := session(c)
		if err != nil {
			return err
		}
		return run(ctx, s, args)
	})
}

// formatted gives a command the --format flag.
func formatted(cmd *cobra.Command) *cobra.Command {
	cmd.Flags().StringP("format", "f", string(client.FormatTable), "output format: table or json")
	return cmd
}

func serverClientCommands() []*cobra.Command {
	var req client.ServerCreate
	create := formatted(clientCommand("create NAME --image IMAGE --flavor FLAVOR", "Create a server", cobra.ExactArgs(1),
		func(ctx context.Context, c *client.Client, args []string) error {
			req.Name = args[0]
			return c.CreateServer(ctx, req)
		}))
	fl := create.Flags()
	fl.StringVar(&req.Image, "image", "", "image to boot, by name or ID")
	fl.StringVar(&req.Flavor, "flavor", "", "flavor, by name or ID")
	fl.StringVar(&req.KeyName, "key-name", "", "keypair to inject")
	fl.StringVar(&req.AvailabilityZone, "availability-zone", "", "availability zone to boot in")
	fl.StringVar(&req.UserDataFile, "user-data", "", "file to pass to the server as user data")
	fl.StringArrayVar(&req.Properties, "property", nil, "metadata KEY=VALUE (repeat for more)")
	fl.StringArrayVar(&req.Hints, "hint", nil, "scheduler hint KEY=VALUE (repeat for more, or for a list)")
	for _, f := range []struct {
		name, usage string
		parse       func(string) (client.NIC, error)
	}{
		{"network", "a NIC on this network, by name or ID (repeat for more)", func(s string) (client.NIC, error) { return client.NIC{Network: s}, nil }},
		{"port", "a NIC that is this port, by name or ID (repeat for more)", func(s string) (client.NIC, error) { return client.NIC{Port: s}, nil }},
		{"nic", "a NIC: net-id=NET[,v4-fixed-ip=IP|,v6-fixed-ip=IP], port-id=PORT, or alone auto or none (repeat for more)", client.ParseNIC},
	} {
		fl.Var(nicFlag{&req.NICs, f.parse}, f.name, f.usage)
	}
	fl.StringArrayVar(&req.SecurityGroups, "security-group", nil, "a security group for the server's ports, by name or ID (repeat for more; default: the project's default group)")
	fl.IntVar(&req.Min, "min", 1, "create at least this many servers")
	fl.IntVar(&req.Max, "max", 0, "create at most this many servers (default: --min)")
	fl.BoolVar(&req.Wait, "wait", false, "wait until the servers are ACTIVE")
	create.MarkFlagRequired("image")
	create.MarkFlagRequired("flavor")

	var waitDelete bool
	del := clientCommand("delete NAME|ID...", "Delete servers", cobra.MinimumNArgs(1), func(ctx context.Context, c *client.Client, args []string) error {
		return c.DeleteServers(ctx, args, waitDelete)
	})
	del.Flags().BoolVar(&waitDelete, "wait", false, "wait until the servers are gone")

	var lines int
	console := clientCommand("console NAME|ID", "Show a server's console output", cobra.ExactArgs(1), func(ctx context.Context, c *client.Client, args []string) error {
		return c.ConsoleOutput(ctx, args[0], lines)
	})
	console.Flags().IntVar(&lines, "lines", 0, "show the last N lines only (default: all)")

	var waitImage bool
	snapshot := formatted(clientCommand("image NAME|ID SNAPSHOT-NAME", "Make an image of a server", cobra.ExactArgs(2), func(ctx context.Context, c *client.Client, args []string) error {
		return c.SnapshotServer(ctx, args[0], args[1], waitImage)
	}))
	snapshot.Flags().BoolVar(&waitImage, "wait", false, "wait until the image is active")

	var hard, waitReboot bool
	reboot := clientCommand("reboot NAME|ID", "Reboot a server", cobra.ExactArgs(1), func(ctx context.Context, c *client.Client, args []string) error {
		a := client.Reboot
		if hard {
			a = client.HardReboot
		}
		return c.Act(ctx, a, args[0], waitReboot)
	})
	reboot.Flags().BoolVar(&hard, "hard", false, "power the server off and on rather than ask its OS to restart")
	reboot.Flags().BoolVar(&waitReboot, "wait", false, "wait until the server is ACTIVE again")

	cmds := []*cobra.Command{
		create, del, console, snapshot, reboot,
		formatted(clientCommand("list", "List servers", cobra.NoArgs, func(ctx context.Context, c *client.Client, _ []string) error {
			return c.ListServers(ctx)
		})),
		formatted(clientCommand("show NAME|ID", "Show a server", cobra.ExactArgs(1), func(ctx context.Context, c *client.Client, args []string) error {
			return c.ShowServer(ctx, args[0])
		})),
	}
	for _, a := range []struct {
		action client.Action
		short  string
	}{
		{client.Pause, "Pause a server (keep it in memory, stopped)"},
		{client.Unpause, "Unpause a server"},
		{client.Suspend, "Suspend a server (save its memory to disk)"},
		{client.Resume, "Resume a suspended server"},
		{client.Stop, "Stop a server"},
		{client.Start, "Start a stopped server"},
		{client.Lock, "Lock a server against changes by non-admins"},
		{client.Unlock, "Unlock a server"},
	} {
		var wait bool
		cmd := clientCommand(string(a.action)+" NAME|ID", a.short, cobra.ExactArgs(1), func(ctx context.Context, c *client.Client, args []string) error {
			return c.Act(ctx, a.action, args[0], wait)
		})
		if a.action != client.Lock && a.action != client.Unlock {
			cmd.Flags().BoolVar(&wait, "wait", false, "wait until the server has done it")
		}
		cmds = append(cmds, cmd)
	}
	return cmds
}

// nicFlag is a flag of `server create` that adds a NIC to the list that
// --network, --port and --nic share, so that the server's NICs are in the
// order the flags are given.
type nicFlag struct {
	nics  *[]client.NIC
	parse func(string) (client.NIC, error)
}

func (f nicFlag) Set(s string) error {
	nic, err := f.parse(s)
	if err != nil {
		return errors.New(trustack.ErrorMessage(err))
	}
	*f.nics = append(*f.nics, nic)
	return nil
}

func (f nicFlag) String() string { return "" }
func (f nicFlag) Type() string   { return "string" }

func imageCommands() []*cobra.Command {
	var req client.ImageUpload
	upload := formatted(clientCommand("upload FILE --name NAME", "Upload a file as a new image", cobra.ExactArgs(1), func(ctx context.Context, c *client.Client, args []string) error {
		req.File = args[0]
		return c.UploadImage(ctx, req)
	}))
	fl := upload.Flags()
	fl.StringVar(&req.Name, "name", "", "name of the image")
	fl.StringVar(&req.DiskFormat, "disk-format", "qcow2", "disk format: raw, qcow2, vmdk, vdi, iso, ...")
	fl.StringVar(&req.ContainerFormat, "container-format", "bare", "container format: bare, ovf, ...")
	fl.BoolVar(&req.Public, "public", false, "make the image visible to every project")
	fl.StringArrayVar(&req.Properties, "property", nil, "image property KEY=VALUE (repeat for more)")
	upload.MarkFlagRequired("name")

	var output string
	download := clientCommand("download ID|NAME -o FILE", "Download an image's data", cobra.ExactArgs(1), func(ctx context.Context, c *client.Client, args []string) error {
		return c.DownloadImage(ctx, args[0], output)
	})
	download.Flags().StringVarP(&output, "output", "o", "", "file to write (- for standard output)")
	download.MarkFlagRequired("output")

	return []*cobra.Command{
		upload, download,
		formatted(clientCommand("list", "List images", cobra.NoArgs, func(ctx context.Context, c *client.Client, _ []string) error {
			return c.ListImages(ctx)
		})),
		formatted(clientCommand("show ID|NAME", "Show an image", cobra.ExactArgs(1), func(ctx context.Context, c *client.Client, args []string) error {
			return c.ShowImage(ctx, args[0])
		})),
		clientCommand("delete ID|NAME...", "Delete images", cobra.MinimumNArgs(1), func(ctx context.Context, c *client.Client, args []string) error {
			return c.DeleteImages(ctx, args)
		}),
	}
}

func keypairCommands() []*cobra.Command {
	var publicKey string
	create := formatted(clientCommand("create NAME", "Create a keypair, or import a public key", cobra.ExactArgs(1), func(ctx context.Context, c *client.Client, args []string) error {
		return c.CreateKeypair(ctx, args[0], publicKey)
	}))
	create.Flags().StringVar(&publicKey, "public-key", "", "file with the public key to import (default: make a keypair and print its private key)")
	return []*cobra.Command{
		create,
		formatted(clientCommand("list", "List keypairs", cobra.NoArgs, func(ctx context.Context, c *client.Client, _ []string) error {
			return c.ListKeypairs(ctx)
		})),
		clientCommand("delete NAME...", "Delete keypairs", cobra.MinimumNArgs(1), func(ctx context.Context, c *client.Client, args []string) error {
			return c.DeleteKeypairs(ctx, args)
		}),
	}
}
