package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/client"
)

// attestationManageCommands are the operator's attestation groups under
// `manage`: whitelist and ek. The host group's attestation commands are
// hostAttestationCommands.
func attestationManageCommands() []*cobra.Command {
	whitelist := &cobra.Command{Use: "whitelist", Short: "Manage the white-lists of files hosts may run (attestation)"}
	whitelist.AddCommand(whitelistCommands()...)
	ek := &cobra.Command{Use: "ek", Short: "Approve TPMs that no configured manufacturer CA vouches for (attestation)"}
	ek.AddCommand(ekCommands()...)
	return []*cobra.Command{whitelist, ek}
}

func whitelistCommands() []*cobra.Command {
	var fromHost, file string
	create := formatted(clientCommand("create NAME --from-host HOST | --file FILE", "Create a white-list of what a known-good host runs, or from a file",
		cobra.ExactArgs(1), func(ctx context.Context, c *client.Client, args []string) error {
			switch {
			case fromHost != "" && file != "":
				return trustack.Errorf(trustack.EINVALID, "give --from-host or --file, not both")
			case fromHost != "":
				return c.CreateWhitelistFromHost(ctx, args[0], fromHost)
			case file != "":
				return c.CreateWhitelistFromFile(ctx, args[0], file)
			}
			return trustack.Errorf(trustack.EINVALID, "give --from-host HOST or --file FILE")
		}))
	create.Flags().StringVar(&fromHost, "from-host", "", "a registered, known-good host: allow every file it ran, with the digests it measured, and its boot aggregate")
	create.Flags().StringVar(&file, "file", "", "a JSON file in the format export writes (- for standard input); its name, if any, is replaced by NAME")

	var importName string
	imp := formatted(clientCommand("import FILE", "Create a white-list from a file, or replace the one of its name", cobra.ExactArgs(1),
		func(ctx context.Context, c *client.Client, args []string) error {
			return c.ImportWhitelist(ctx, args[0], importName)
		}))
	imp.Flags().StringVar(&importName, "name", "", "the white-list's name (default: the file's)")

	var output string
	export := clientCommand("export NAME", "Write a white-list as JSON, in the format import reads", cobra.ExactArgs(1),
		func(ctx context.Context, c *client.Client, args []string) error {
			return c.ExportWhitelist(ctx, args[0], output)
		})
	export.Flags().StringVarP(&output, "output", "o", "", "file to write (default: standard output)")

	return []*cobra.Command{
		create, imp, export,
		formatted(clientCommand("list", "List white-lists", cobra.NoArgs, func(ctx context.Context, c *client.Client, _ []string) error {
			return c.ListWhitelists(ctx)
		})),
		formatted(clientCommand("show NAME", "Show a white-list, with every file it allows and their digests", cobra.ExactArgs(1),
			func(ctx context.Context, c *client.Client, args []string) error {
				return c.ShowWhitelist(ctx, args[0])
			})),
		clientCommand("delete NAME...", "Delete white-lists (hosts held to one are no longer trusted from their next attestation)", cobra.MinimumNArgs(1),
			func(ctx context.Context, c *client.Client, args []string) error {
				return c.DeleteWhitelists(ctx, args)
			}),
	}
}

// hostAttestationCommands are the host group's attestation commands:
// list, show, events and forget.
func hostAttestationCommands() []*cobra.Command {
	var limit int
	events := formatted(clientCommand("events HOST", "List a host's attestation events, oldest first", cobra.ExactArgs(1),
		func(ctx context.Context, c *client.Client, args []string) error {
			if limit < 0 {
				return trustack.Errorf(trustack.EINVALID, "--limit %d: want a number of events, 0 for all", limit)
			}
			return c.HostEvents(ctx, args[0], limit)
		}))
	events.Flags().IntVar(&limit, "limit", 0, "show the last N events only (default: all)")
	return []*cobra.Command{
		formatted(clientCommand("list", "List hosts' attestation states", cobra.NoArgs, func(ctx context.Context, c *client.Client, _ []string) error {
			return c.ListHostAttestations(ctx)
		})),
		formatted(clientCommand("show HOST", "Show what the verifier knows of a host, with every reason of its latest verdict", cobra.ExactArgs(1),
			func(ctx context.Context, c *client.Client, args []string) error {
				return c.ShowHostAttestation(ctx, args[0])
			})),
		events,
		clientCommand("forget HOST...", "Forget hosts' TPMs and attestation records, so that another TPM may register under the name", cobra.MinimumNArgs(1),
			func(ctx context.Context, c *client.Client, args []string) error {
				return c.ForgetHosts(ctx, args)
			}),
	}
}

func ekCommands() []*cobra.Command {
	var comment string
	approve := formatted(clientCommand("approve FINGERPRINT", "Let a TPM register by its EK certificate's SHA-256 fingerprint, as a refused registration names it", cobra.ExactArgs(1),
		func(ctx context.Context, c *client.Client, args []string) error {
			return c.ApproveEK(ctx, args[0], comment)
		}))
	approve.Flags().StringVar(&comment, "comment", "", "why, or whose TPM it is")
	return []*cobra.Command{
		approve,
		formatted(clientCommand("list", "List approved EKs", cobra.NoArgs, func(ctx context.Context, c *client.Client, _ []string) error {
			return c.ListApprovedEKs(ctx)
		})),
		clientCommand("revoke FINGERPRINT...", "Withdraw approvals (hosts registered with those TPMs stay until they register again)", cobra.MinimumNArgs(1),
			func(ctx context.Context, c *client.Client, args []string) error {
				return c.RevokeEKs(ctx, args)
			}),
	}
}
