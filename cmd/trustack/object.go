package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/trustack/trustack/client"
)

// objectStorageCommand is a command that connects to the cloud's object
// store and runs run.
func objectStorageCommand(use, short string, args cobra.PositionalArgs, run func(context.Context, *client.ObjectStorage, []string) error) *cobra.Command {
	return serviceCommand(use, short, args, (*client.Client).ObjectStorage, run)
}

// containerCommand is the client's command of the object store's
// containers.
func containerCommand() *cobra.Command {
	container := &cobra.Command{Use: "container", Short: "Manage object store containers"}

	var props []string
	create := formatted(objectStorageCommand("create NAME", "Create a container", cobra.ExactArgs(1), func(ctx context.Context, s *client.ObjectStorage, args []string) error {
		return s.CreateContainer(ctx, args[0], props)
	}))
	create.Flags().StringArrayVar(&props, "property", nil, "metadata KEY=VALUE (repeat for more)")

	var recursive bool
	del := objectStorageCommand("delete NAME...", "Delete containers", cobra.MinimumNArgs(1), func(ctx context.Context, s *client.ObjectStorage, args []string) error {
		return s.DeleteContainers(ctx, args, recursive)
	})
	del.Flags().BoolVarP(&recursive, "recursive", "r", false, "delete the containers' objects first (static large objects with their segments)")

	container.AddCommand(create, del,
		formatted(objectStorageCommand("list", "List containers", cobra.NoArgs, func(ctx context.Context, s *client.ObjectStorage, _ []string) error {
			return s.ListContainers(ctx)
		})),
		formatted(objectStorageCommand("show NAME", "Show a container: its objects, bytes, metadata and ACLs", cobra.ExactArgs(1), func(ctx context.Context, s *client.ObjectStorage, args []string) error {
			return s.ShowContainer(ctx, args[0])
		})),
	)
	return container
}

// objectCommand is the client's command of the object store's objects.
func objectCommand() *cobra.Command {
	object := &cobra.Command{Use: "object", Short: "Manage objects in object store containers"}

	req := client.ObjectUpload{SegmentSize: client.DefaultSegmentSize}
	upload := formatted(objectStorageCommand("upload CONTAINER FILE...", "Upload files as objects, large ones as static large objects", cobra.MinimumNArgs(2),
		func(ctx context.Context, s *client.ObjectStorage, args []string) error {
			req.Container, req.Files = args[0], args[1:]
			return s.UploadObjects(ctx, req)
		}))
	upload.Flags().StringVar(&req.Name, "name", "", "name of the object, for one file (default: the file's path as given)")
	upload.Flags().Int64Var(&req.SegmentSize, "segment-size", client.DefaultSegmentSize, "upload a larger file as a static large object in segments of this many bytes (0: never)")

	var prefix string
	list := formatted(objectStorageCommand("list CONTAINER", "List a container's objects", cobra.ExactArgs(1), func(ctx context.Context, s *client.ObjectStorage, args []string) error {
		return s.ListObjects(ctx, args[0], prefix)
	}))
	list.Flags().StringVar(&prefix, "prefix", "", "only the objects whose names begin with this")

	var file string
	download := objectStorageCommand("download CONTAINER NAME", "Download an object", cobra.ExactArgs(2), func(ctx context.Context, s *client.ObjectStorage, args []string) error {
		return s.DownloadObject(ctx, args[0], args[1], file)
	})
	download.Flags().StringVar(&file, "file", "", "file to write (- for standard output; default: the object's name)")

	object.AddCommand(upload, list, download,
		formatted(objectStorageCommand("show CONTAINER NAME", "Show an object", cobra.ExactArgs(2), func(ctx context.Context, s *client.ObjectStorage, args []string) error {
			return s.ShowObject(ctx, args[0], args[1])
		})),
		objectStorageCommand("delete CONTAINER NAME...", "Delete objects, static large objects with their segments", cobra.MinimumNArgs(2), func(ctx context.Context, s *client.ObjectStorage, args []string) error {
			return s.DeleteObjects(ctx, args[0], args[1:])
		}),
	)
	return object
}
