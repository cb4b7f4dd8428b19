package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/config"
	"github.com/trustack/trustack/objectstore"
	"github.com/trustack/trustack/objectstore/ring"
	"github.com/trustack/trustack/objectstore/storage"
)

// storageCommand runs a storage node of the object store.
func storageCommand() *cobra.Command {
	var configFile string
	var roles []string
	cmd := &cobra.Command{
		Use:   "storage",
		Short: "Run a storage node of the object store: its object, container and account servers",
		Long: `storage runs the object store's servers of --roles over the devices of
[object_store] devices (each a directory named as the rings name it), on
[object_store] bind_ip and the ports of each role, until interrupted. The
proxies (trustack server) reach it through the rings in ring_dir.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(configFile)
			if err != nil {
				return err
			}
			oc := cfg.ObjectStore
			if oc.HashPathPrefix == "" && oc.HashPathSuffix == "" {
				return trustack.Errorf(trustack.EINVALID, "set [object_store] hash_path_prefix and hash_path_suffix, the same as the proxies'")
			}
			log, _ := logger(cfg)
			rings, err := storage.LoadRings(cfg.RingDir())
			if err != nil {
				return err
			}
			sc := storage.Config{
				Devices:            cfg.DevicesDir(),
				Hasher:             objectstore.Hasher{Prefix: oc.HashPathPrefix, Suffix: oc.HashPathSuffix},
				Key:                oc.BackendKey,
				Rings:              &rings,
				RingIP:             oc.RingIP,
				UpdaterInterval:    oc.UpdaterInterval,
				ReplicatorInterval: oc.ReplicatorInterval,
				ExpirerInterval:    oc.ExpirerInterval,
				AuditRate:          oc.AuditorRate,
				Log:                log,
			}
			for _, r := range roles {
				addr := func(port int) string { return net.JoinHostPort(oc.BindIP, strconv.Itoa(port)) }
				switch r {
				case "object":
					sc.Object = addr(oc.ObjectPort)
				case "container":
					sc.Container = addr(oc.ContainerPort)
				case "account":
					sc.Account = addr(oc.AccountPort)
				default:
					return trustack.Errorf(trustack.EINVALID, "--roles: unknown role %q (there are object, container and account)", r)
				}
			}
			node, err := storage.Start(sc)
			if err != nil {
				return err
			}
			log.Info("trustack storage ready", "roles", roles, "devices", sc.Devices)
			<-cmd.Context().Done()
			node.Close()
			return nil
		},
	}
	cmd.Flags().StringVar(&configFile, "config", "", "configuration file (default: "+config.DefaultPath+" if it exists)")
	cmd.Flags().StringSliceVar(&roles, "roles", []string{"object", "container", "account"}, "the servers to run: object, container, account")
	return cmd
}

// ringCommand manages the object store's rings.
func ringCommand(load func() (*config.Config, error)) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ring",
		Short: "Build the object store's rings: which devices hold which partitions",
		Long: `ring manages the builders of the account, container and object rings in
[object_store] ring_dir. Devices are added to a builder, then rebalance
writes the ring file that proxies and storage nodes read: copy it to each
of them. A rebalance moves no more partitions than the change needs, and
none that moved less than min-part-hours ago.`,
	}
	ringFile := func(name string) (string, error) {
		cfg, err := load()
		if err != nil {
			return "", err
		}
		a, c, o := storage.RingFiles(cfg.RingDir())
		files := map[string]string{"account": a, "container": c, "object": o}
		if files[name] == "" {
			return "", trustack.Errorf(trustack.EINVALID, "unknown ring %q: there are account, container and object", name)
		}
		return files[name], nil
	}
	// edit loads a ring's builder, changes it and saves it.
	edit := func(name string, change func(*ring.Builder) error) error {
		file, err := ringFile(name)
		if err != nil {
			return err
		}
		b, err := ring.LoadBuilder(storage.BuilderFile(file))
		if err != nil {
			return err
		}
		if err := change(b); err != nil {
			return err
		}
		return b.Save(storage.BuilderFile(file))
	}

	var partPower uint
	var replicas, minPartHours int
	create := &cobra.Command{
		Use:   "create RING",
		Short: "Start the builder of a ring (account, container or object)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file, err := ringFile(args[0])
			if err != nil {
				return err
			}
			if _, err := os.Stat(storage.BuilderFile(file)); err == nil {
				return trustack.Errorf(trustack.ECONFLICT, "the %s ring's builder exists already: %s", args[0], storage.BuilderFile(file))
			}
			b, err := ring.NewBuilder(partPower, replicas, minPartHours)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Dir(file), 0o750); err != nil {
				return err
			}
			return b.Save(storage.BuilderFile(file))
		},
	}
	create.Flags().UintVar(&partPower, "part-power", 10, "the ring has 2^part-power partitions, fixed for its life: about 100 per device at the largest size the cluster will grow to")
	create.Flags().IntVar(&replicas, "replicas", 3, "copies of everything")
	create.Flags().IntVar(&minPartHours, "min-part-hours", 1, "hours a partition stays put after it moved, so that replication catches up before it moves again")

	var dev ring.Device
	add := &cobra.Command{
		Use:   "add RING",
		Short: "Add a device to a ring's builder (it takes partitions at the next rebalance)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return edit(args[0], func(b *ring.Builder) error {
				id, err := b.AddDevice(dev)
				if err == nil {
					fmt.Fprintf(cmd.OutOrStdout(), "device %d added: %s/%s in region %d zone %d, weight %g\n", id, dev.Addr(), dev.Device, dev.Region, dev.Zone, dev.Weight)
				}
				return err
			})
		},
	}
	add.Flags().IntVar(&dev.Region, "region", 1, "region of the device")
	add.Flags().IntVar(&dev.Zone, "zone", 1, "zone of the device: replicas go to as many zones as they can")
	add.Flags().StringVar(&dev.IP, "ip", "", "address of the device's storage node")
	add.Flags().IntVar(&dev.Port, "port", 0, "port of the ring's server on the node (object_port, container_port or account_port)")
	add.Flags().StringVar(&dev.Device, "device", "", "name of the device: its directory under the node's [object_store] devices")
	add.Flags().Float64Var(&dev.Weight, "weight", 100, "share of partitions, relative to the other devices' (their sizes, say)")

	remove := &cobra.Command{
		Use:   "remove RING DEVICE-ID",
		Short: "Remove a device from a ring's builder (its partitions move at the next rebalance)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.Atoi(args[1])
			if err != nil {
				return trustack.Errorf(trustack.EINVALID, "device ID %q: want a number", args[1])
			}
			return edit(args[0], func(b *ring.Builder) error { return b.RemoveDevice(id) })
		},
	}
	setWeight := &cobra.Command{
		Use:   "set-weight RING DEVICE-ID WEIGHT",
		Short: "Change a device's share of partitions (applied at the next rebalance)",
		Args:  cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.Atoi(args[1])
			if err != nil {
				return trustack.Errorf(trustack.EINVALID, "device ID %q: want a number", args[1])
			}
			w, err := strconv.ParseFloat(args[2], 64)
			if err != nil {
				return trustack.Errorf(trustack.EINVALID, "weight %q: want a number", args[2])
			}
			return edit(args[0], func(b *ring.Builder) error { return b.SetWeight(id, w) })
		},
	}
	rebalance := &cobra.Command{
		Use:   "rebalance RING",
		Short: "Assign partitions to the devices by their weights, moving as few as it can, and write the ring",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file, err := ringFile(args[0])
			if err != nil {
				return err
			}
			return edit(args[0], func(b *ring.Builder) error {
				moved, balance, err := b.Rebalance(time.Now(), nil)
				if err != nil {
					return err
				}
				r, err := b.Ring()
				if err != nil {
					return err
				}
				if err := r.Save(file); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%d partition replicas moved, balance %.2f%%: %s written, copy it to every proxy and storage node\n", moved, balance, file)
				return nil
			})
		},
	}
	show := &cobra.Command{
		Use:   "show RING",
		Short: "Show a ring's devices and how many partitions each holds",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file, err := ringFile(args[0])
			if err != nil {
				return err
			}
			b, err := ring.LoadBuilder(storage.BuilderFile(file))
			if err != nil {
				return err
			}
			counts := map[int]int{}
			if r, err := b.Ring(); err == nil {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %d partitions, %d replicas\n", args[0], r.Partitions(), r.Replicas())
				for _, d := range r.Devices() {
					counts[d.ID] = len(r.PartitionsOf(d.ID))
				}
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: not rebalanced yet\n", args[0])
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 8, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tREGION\tZONE\tADDRESS\tDEVICE\tWEIGHT\tPARTITIONS")
			devs := b.Devices()
			slices.SortFunc(devs, func(a, b ring.Device) int { return a.ID - b.ID })
			for _, d := range devs {
				fmt.Fprintf(w, "%d\t%d\t%d\t%s\t%s\t%g\t%d\n", d.ID, d.Region, d.Zone, d.Addr(), d.Device, d.Weight, counts[d.ID])
			}
			return w.Flush()
		},
	}
	cmd.AddCommand(create, add, remove, setWeight, rebalance, show)
	return cmd
}
