package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/trustack/trustack/client"
)

// volumeCommand is the client's command of the block storage service:
// volume, with the snapshot commands under `volume snapshot`.
func volumeCommand() *cobra.Command {
	volume := &cobra.Command{Use: "volume", Short: "Manage volumes: block devices that outlive the servers they serve"}
	snapshot := &cobra.Command{Use: "snapshot", Short: "Manage volume snapshots: a volume's data at a moment"}
	snapshot.AddCommand(volumeSnapshotCommands()...)
	volume.AddCommand(append(volumeResourceCommands(), snapshot)...)
	return volume
}

// blockStorageCommand is a command that connects to the cloud's block
// storage service and runs run.
func blockStorageCommand(use, short string, args cobra.PositionalArgs, run func(context.Context, *client.BlockStorage, []string) error) *cobra.Command {
	return serviceCommand(use, short, args, (*client.Client).BlockStorage, run)
}

func volumeResourceCommands() []*cobra.Command {
	var req client.VolumeCreate
	create := formatted(blockStorageCommand("create NAME --size GIB", "Create a volume: empty, or from an image or a snapshot", cobra.ExactArgs(1),
		func(ctx context.Context, b *client.BlockStorage, args []string) error {
			req.Name = args[0]
			return b.CreateVolume(ctx, req)
		}))
	fl := create.Flags()
	fl.IntVar(&req.Size, "size", 0, "size in GiB (default: the image's or the snapshot's)")
	fl.StringVar(&req.Image, "image", "", "make the volume from this image, by name or ID (it is then bootable)")
	fl.StringVar(&req.Snapshot, "snapshot", "", "make the volume from this snapshot, by name or ID")
	fl.StringVar(&req.Type, "type", "", "volume type, by name or ID (default: the cloud's)")
	fl.StringVar(&req.AvailabilityZone, "availability-zone", "", "availability zone to make the volume in")
	fl.StringVar(&req.Description, "description", "", "a description")
	fl.StringArrayVar(&req.Properties, "property", nil, "metadata KEY=VALUE (repeat for more)")
	fl.BoolVar(&req.Wait, "wait", false, "wait until the volume is available, with a progress bar of the copy of its image")
	create.MarkFlagsMutuallyExclusive("image", "snapshot")

	return append([]*cobra.Command{
		create,
		formatted(blockStorageCommand("attach SERVER VOLUME", "Attach a volume to a server", cobra.ExactArgs(2), func(ctx context.Context, b *client.BlockStorage, args []string) error {
			return b.AttachVolume(ctx, args[0], args[1])
		})),
		blockStorageCommand("detach SERVER VOLUME", "Detach a volume from a server", cobra.ExactArgs(2), func(ctx context.Context, b *client.BlockStorage, args []string) error {
			return b.DetachVolume(ctx, args[0], args[1])
		}),
	}, listShowDelete("volume", (*client.BlockStorage).ListVolumes, (*client.BlockStorage).ShowVolume, (*client.BlockStorage).DeleteVolumes)...)
}

// listShowDelete are the list, show and delete commands of a kind of
// block storage resource, named on the command line by name or ID.
func listShowDelete(noun string, list func(*client.BlockStorage, context.Context) error, show func(*client.BlockStorage, context.Context, string) error,
	del func(*client.BlockStorage, context.Context, []string, bool) error) []*cobra.Command {
	var wait bool
	deleteCmd := blockStorageCommand("delete NAME|ID...", "Delete "+noun+"s", cobra.MinimumNArgs(1), func(ctx context.Context, b *client.BlockStorage, args []string) error {
		return del(b, ctx, args, wait)
	})
	deleteCmd.Flags().BoolVar(&wait, "wait", false, "wait until the "+noun+"s are gone")
	return []*cobra.Command{
		formatted(blockStorageCommand("list", "List "+noun+"s", cobra.NoArgs, func(ctx context.Context, b *client.BlockStorage, _ []string) error {
			return list(b, ctx)
		})),
		formatted(blockStorageCommand("show NAME|ID", "Show a "+noun, cobra.ExactArgs(1), func(ctx context.Context, b *client.BlockStorage, args []string) error {
			return show(b, ctx, args[0])
		})),
		deleteCmd,
	}
}

func volumeSnapshotCommands() []*cobra.Command {
	var req client.SnapshotCreate
	create := formatted(blockStorageCommand("create NAME --volume VOLUME", "Take a snapshot of a volume", cobra.ExactArgs(1),
		func(ctx context.Context, b *client.BlockStorage, args []string) error {
			req.Name = args[0]
			return b.CreateSnapshot(ctx, req)
		}))
	create.Flags().StringVar(&req.Volume, "volume", "", "the volume, by name or ID")
	create.Flags().StringVar(&req.Description, "description", "", "a description")
	create.Flags().BoolVar(&req.Wait, "wait", false, "wait until the snapshot is available")
	create.MarkFlagRequired("volume")

	return append([]*cobra.Command{create},
		listShowDelete("snapshot", (*client.BlockStorage).ListSnapshots, (*client.BlockStorage).ShowSnapshot, (*client.BlockStorage).DeleteSnapshots)...)
}
