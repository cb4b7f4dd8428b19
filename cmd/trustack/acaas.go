package main

import (
	"context"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/client"
)

// acaasManageCommands are the operator's ACaaS and attestation commands
// under `manage`: host, location, domain and requirement-entry, whitelist
// and ek. They talk to the cloud's API as the OS_* variables say (an
// admin's openrc).
func acaasManageCommands() []*cobra.Command {
	host := &cobra.Command{Use: "host", Short: "Manage compute hosts' properties (ACaaS) and see their attestation"}
	host.AddCommand(hostCommands()...)
	host.AddCommand(hostAttestationCommands()...)
	location := &cobra.Command{Use: "location", Short: "Manage locations and the distances between them (ACaaS)"}
	location.AddCommand(locationCommands()...)
	domain := &cobra.Command{Use: "domain", Short: "Manage physical domains, their hosts and collaborators (ACaaS)"}
	domain.AddCommand(domainCommands()...)
	entry := &cobra.Command{Use: "requirement-entry", Short: "Manage the requirement entries users may state (ACaaS)"}
	entry.AddCommand(entryCommands()...)
	groups := append([]*cobra.Command{host, location, domain, entry}, attestationManageCommands()...)
	for _, g := range groups {
		// These talk to the API, so manage's --config, for the commands
		// that open the controller's state, means nothing here: hide it.
		g.PersistentFlags().String("config", "", "")
		g.PersistentFlags().MarkHidden("config")
	}
	return groups
}

func hostCommands() []*cobra.Command {
	var addSecurity, removeSecurity bool
	add := formatted(clientCommand("add-properties HOST KEY=VALUE...", "Add or change a host's properties", cobra.MinimumNArgs(2),
		func(ctx context.Context, c *client.Client, args []string) error {
			return c.AddHostProperties(ctx, args[0], args[1:], addSecurity)
		}))
	add.Flags().BoolVar(&addSecurity, "security", false, "set security properties (the chain of trust is \"trust\") rather than infrastructure ones")
	remove := formatted(clientCommand("remove-properties HOST KEY...", "Remove a host's properties", cobra.MinimumNArgs(2),
		func(ctx context.Context, c *client.Client, args []string) error {
			return c.RemoveHostProperties(ctx, args[0], args[1:], removeSecurity)
		}))
	remove.Flags().BoolVar(&removeSecurity, "security", false, "remove security properties rather than infrastructure ones")
	return []*cobra.Command{
		add, remove,
		formatted(clientCommand("get-properties HOST", "Show a host's infrastructure and security properties", cobra.ExactArgs(1),
			func(ctx context.Context, c *client.Client, args []string) error {
				return c.HostProperties(ctx, args[0])
			})),
	}
}

func locationCommands() []*cobra.Command {
	var country string
	create := formatted(clientCommand("create NAME --country CC", "Create a location", cobra.ExactArgs(1),
		func(ctx context.Context, c *client.Client, args []string) error {
			return c.CreateLocation(ctx, args[0], country)
		}))
	create.Flags().StringVar(&country, "country", "", "the location's country or region code (ISO 3166-1 alpha-2, such as DE)")
	create.MarkFlagRequired("country")

	distance := &cobra.Command{Use: "distance", Short: "Manage the distances between locations"}
	distance.AddCommand(
		formatted(clientCommand("set A B KM", "Record the distance between two locations, in kilometres", cobra.ExactArgs(3),
			func(ctx context.Context, c *client.Client, args []string) error {
				km, err := strconv.Atoi(args[2])
				if err != nil {
					return trustack.Errorf(trustack.EINVALID, "distance %q: want a whole number of kilometres", args[2])
				}
				return c.SetDistance(ctx, args[0], args[1], km)
			})),
		formatted(clientCommand("list", "List the distances between locations", cobra.NoArgs, func(ctx context.Context, c *client.Client, _ []string) error {
			return c.ListDistances(ctx)
		})),
	)
	return []*cobra.Command{
		create, distance,
		formatted(clientCommand("list", "List locations", cobra.NoArgs, func(ctx context.Context, c *client.Client, _ []string) error {
			return c.ListLocations(ctx)
		})),
		clientCommand("delete NAME...", "Delete locations (with their distances)", cobra.MinimumNArgs(1), func(ctx context.Context, c *client.Client, args []string) error {
			return c.DeleteLocations(ctx, args)
		}),
	}
}

func domainCommands() []*cobra.Command {
	var req client.DomainCreate
	create := formatted(clientCommand("create NAME --location LOCATION", "Create a physical domain", cobra.ExactArgs(1),
		func(ctx context.Context, c *client.Client, args []string) error {
			req.Name = args[0]
			return c.CreateDomain(ctx, req)
		}))
	fl := create.Flags()
	fl.StringVar(&req.Location, "location", "", "the location of the domain's hosts")
	fl.StringArrayVar(&req.Capabilities, "capability", nil, "a capability every member host offers, KEY=VALUE (repeat for more)")
	fl.StringVar(&req.DCoT, "dcot", "", "the domain's chain of trust: the trust level its hosts are held to")
	fl.StringVar(&req.Source, "source", "local", "local, or emergency for a federated cloud's domain")
	create.MarkFlagRequired("location")

	var location, dcot string
	var caps []string
	var set *cobra.Command
	set = formatted(clientCommand("set NAME", "Change a physical domain's location, capabilities or chain of trust", cobra.ExactArgs(1),
		func(ctx context.Context, c *client.Client, args []string) error {
			ch := client.DomainSet{Capabilities: caps}
			if set.Flags().Changed("location") {
				ch.Location = &location
			}
			if set.Flags().Changed("dcot") {
				ch.DCoT = &dcot
			}
			return c.SetDomain(ctx, args[0], ch)
		}))
	set.Flags().StringVar(&location, "location", "", "move the domain to this location")
	set.Flags().StringArrayVar(&caps, "capability", nil, "add or change a capability KEY=VALUE, or remove one with KEY= (repeat for more)")
	set.Flags().StringVar(&dcot, "dcot", "", "the domain's new chain of trust (\"\" for none)")

	var priority int
	addCollaborator := formatted(clientCommand("add-collaborator DOMAIN BACKUP --priority N",
		"Make BACKUP take DOMAIN's load when it is down or full (lower priorities go first)", cobra.ExactArgs(2),
		func(ctx context.Context, c *client.Client, args []string) error {
			return c.AddCollaborator(ctx, args[0], args[1], priority)
		}))
	addCollaborator.Flags().IntVar(&priority, "priority", 0, "the collaborator's priority: lower goes first")
	addCollaborator.MarkFlagRequired("priority")

	return []*cobra.Command{
		create, set, addCollaborator,
		formatted(clientCommand("list", "List physical domains", cobra.NoArgs, func(ctx context.Context, c *client.Client, _ []string) error {
			return c.ListDomains(ctx)
		})),
		formatted(clientCommand("show NAME", "Show a physical domain, with its hosts and collaborators, and whether its DCoT and CDCoT hold", cobra.ExactArgs(1),
			func(ctx context.Context, c *client.Client, args []string) error {
				return c.ShowDomain(ctx, args[0])
			})),
		clientCommand("delete NAME...", "Delete physical domains (they must have no hosts)", cobra.MinimumNArgs(1),
			func(ctx context.Context, c *client.Client, args []string) error {
				return c.DeleteDomains(ctx, args)
			}),
		formatted(clientCommand("add-host DOMAIN HOST", "Make a compute host a member of a domain (moving it from another)", cobra.ExactArgs(2),
			func(ctx context.Context, c *client.Client, args []string) error {
				return c.AddDomainHost(ctx, args[0], args[1])
			})),
		formatted(clientCommand("remove-host DOMAIN HOST", "Take a compute host out of a domain", cobra.ExactArgs(2),
			func(ctx context.Context, c *client.Client, args []string) error {
				return c.RemoveDomainHost(ctx, args[0], args[1])
			})),
		formatted(clientCommand("remove-collaborator DOMAIN BACKUP", "Make BACKUP no longer a collaborator of DOMAIN", cobra.ExactArgs(2),
			func(ctx context.Context, c *client.Client, args []string) error {
				return c.RemoveCollaborator(ctx, args[0], args[1])
			})),
	}
}

func entryCommands() []*cobra.Command {
	var kind, description string
	create := formatted(clientCommand("create NAME --kind KIND", "Create a requirement entry", cobra.ExactArgs(1),
		func(ctx context.Context, c *client.Client, args []string) error {
			return c.CreateEntry(ctx, args[0], kind, description)
		}))
	create.Flags().StringVar(&kind, "kind", "", "what the entry asks of hosts: "+strings.Join(trustack.RequirementKinds, ", "))
	create.Flags().StringVar(&description, "description", "", "what the entry means, for users")
	create.MarkFlagRequired("kind")
	return []*cobra.Command{
		create,
		formatted(clientCommand("list", "List requirement entries", cobra.NoArgs, func(ctx context.Context, c *client.Client, _ []string) error {
			return c.ListEntries(ctx)
		})),
		clientCommand("delete NAME...", "Delete requirement entries (no project may state them)", cobra.MinimumNArgs(1),
			func(ctx context.Context, c *client.Client, args []string) error {
				return c.DeleteEntries(ctx, args)
			}),
	}
}

// requirementCommand is the users' `requirement`: their project's
// requirements of the hosts its servers run on.
func requirementCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "requirement", Short: "State what your project's servers require of their hosts (ACaaS)"}
	var project string
	cmd.PersistentFlags().StringVar(&project, "project", "", "the project's ID (default: your own; another's for operators)")
	cmd.AddCommand(
		formatted(clientCommand("set ENTRY=VALUE...", "State new requirements (requirement-entry list shows the entries)", cobra.MinimumNArgs(1),
			func(ctx context.Context, c *client.Client, args []string) error {
				return c.SetRequirements(ctx, project, args, false)
			})),
		formatted(clientCommand("change ENTRY=VALUE...", "Change requirements", cobra.MinimumNArgs(1),
			func(ctx context.Context, c *client.Client, args []string) error {
				return c.SetRequirements(ctx, project, args, true)
			})),
		clientCommand("unset ENTRY...", "Remove requirements", cobra.MinimumNArgs(1),
			func(ctx context.Context, c *client.Client, args []string) error {
				return c.UnsetRequirements(ctx, project, args)
			}),
		formatted(clientCommand("list", "List the project's requirements", cobra.NoArgs, func(ctx context.Context, c *client.Client, _ []string) error {
			return c.ListRequirements(ctx, project)
		})),
		formatted(clientCommand("entries", "List the requirement entries there are, with their kinds", cobra.NoArgs, func(ctx context.Context, c *client.Client, _ []string) error {
			return c.ListEntries(ctx)
		})),
	)
	return cmd
}
