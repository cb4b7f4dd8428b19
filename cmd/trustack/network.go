package main

import (
	"context"
	"strings"

	"github.com/spf13/cobra"

	"github.com/trustack/trustack/client"
)

// networkCommands are the client's commands of the network service:
// network, subnet, port, router, floating-ip and security-group.
func networkCommands() []*cobra.Command {
	network := &cobra.Command{Use: "network", Short: "Manage networks"}
	network.AddCommand(networkResourceCommands()...)
	subnet := &cobra.Command{Use: "subnet", Short: "Manage subnets: blocks of addresses on networks"}
	subnet.AddCommand(subnetCommands()...)
	port := &cobra.Command{Use: "port", Short: "Manage ports: interfaces on networks"}
	port.AddCommand(portCommands()...)
	router := &cobra.Command{Use: "router", Short: "Manage routers between subnets and to external networks"}
	router.AddCommand(routerCommands()...)
	fip := &cobra.Command{Use: "floating-ip", Short: "Manage floating IPs: external networks' addresses that reach ports"}
	fip.AddCommand(floatingIPCommands()...)
	group := &cobra.Command{Use: "security-group", Short: "Manage security groups and their rules"}
	group.AddCommand(securityGroupCommands()...)
	return []*cobra.Command{network, subnet, port, router, fip, group}
}

// networkCommand is a command that connects to the cloud's network
// service and runs run.
func networkCommand(use, short string, args cobra.PositionalArgs, run func(context.Context, *client.Networking, []string) error) *cobra.Command {
	return serviceCommand(use, short, args, (*client.Client).Networking, run)
}

// showDelete are the show and delete commands of a kind of resource,
// named on the command line as ref says ("NAME|ID").
func showDelete(noun, ref string, show func(*client.Networking, context.Context, string) error, del func(*client.Networking, context.Context, []string) error) []*cobra.Command {
	return []*cobra.Command{
		formatted(networkCommand("show "+ref, "Show a "+noun, cobra.ExactArgs(1), func(ctx context.Context, n *client.Networking, args []string) error {
			return show(n, ctx, args[0])
		})),
		networkCommand("delete "+ref+"...", "Delete "+noun+"s", cobra.MinimumNArgs(1), func(ctx context.Context, n *client.Networking, args []string) error {
			return del(n, ctx, args)
		}),
	}
}

// listCommand is the list command of a kind of resource that takes no
// filters.
func listCommand(short string, list func(*client.Networking, context.Context) error) *cobra.Command {
	return formatted(networkCommand("list", short, cobra.NoArgs, func(ctx context.Context, n *client.Networking, _ []string) error {
		return list(n, ctx)
	}))
}

// toggle gives cmd a pair of flags that turn something on and off; give
// at most one.
func toggle(cmd *cobra.Command, on, onUsage, off, offUsage string) {
	cmd.Flags().Bool(on, false, onUsage)
	cmd.Flags().Bool(off, false, offUsage)
	cmd.MarkFlagsMutuallyExclusive(on, off)
}

// choice reads a toggle: true for on, false for off, nil for neither.
func choice(cmd *cobra.Command, on, off string) *bool {
	for _, f := range []struct {
		name string
		on   bool
	}{{on, true}, {off, false}} {
		if cmd.Flags().Changed(f.name) {
			v, _ := cmd.Flags().GetBool(f.name)
			v = v == f.on
			return &v
		}
	}
	return nil
}

// ifChanged returns v if cmd's flag name was given, nil if not.
func ifChanged[T any](cmd *cobra.Command, name string, v *T) *T {
	if cmd.Flags().Changed(name) {
		return v
	}
	return nil
}

func networkResourceCommands() []*cobra.Command {
	var req client.NetworkCreate
	var segment int
	var create *cobra.Command
	create = formatted(networkCommand("create NAME", "Create a network", cobra.ExactArgs(1), func(ctx context.Context, n *client.Networking, args []string) error {
		req.Name, req.ProviderSegment = args[0], ifChanged(create, "provider-segment", &segment)
		return n.CreateNetwork(ctx, req)
	}))
	fl := create.Flags()
	fl.BoolVar(&req.Shared, "shared", false, "let every project use the network (admins only)")
	fl.BoolVar(&req.External, "external", false, "make the network external: for floating IPs and routers' gateways (admins only)")
	fl.StringVar(&req.ProviderType, "provider-network-type", "", "the network's segment type: flat, vlan, vxlan or local (admins only)")
	fl.StringVar(&req.ProviderPhysicalNetwork, "provider-physical-network", "", "the hosts' physical network a flat or VLAN network is on (admins only)")
	fl.IntVar(&segment, "provider-segment", 0, "the VLAN ID or VXLAN VNI (admins only)")
	fl.IntVar(&req.MTU, "mtu", 0, "the network's MTU (default: the largest the cloud allows)")
	fl.StringVar(&req.Description, "description", "", "a description")

	var name, description string
	var mtu int
	var set *cobra.Command
	set = formatted(networkCommand("set NAME|ID", "Change a network", cobra.ExactArgs(1), func(ctx context.Context, n *client.Networking, args []string) error {
		return n.SetNetwork(ctx, args[0], client.NetworkSet{
			Name: ifChanged(set, "name", &name), Description: ifChanged(set, "description", &description),
			Shared: choice(set, "shared", "no-shared"), External: choice(set, "external", "internal"), MTU: ifChanged(set, "mtu", &mtu),
		})
	}))
	set.Flags().StringVar(&name, "name", "", "a new name")
	set.Flags().StringVar(&description, "description", "", "a new description")
	toggle(set, "shared", "let every project use the network", "no-shared", "let only the network's project use it")
	toggle(set, "external", "make the network external", "internal", "make the network internal")
	set.Flags().IntVar(&mtu, "mtu", 0, "a new MTU")

	return append([]*cobra.Command{create, set, listCommand("List networks", (*client.Networking).ListNetworks)},
		showDelete("network", "NAME|ID", (*client.Networking).ShowNetwork, (*client.Networking).DeleteNetworks)...)
}

func subnetCommands() []*cobra.Command {
	var req client.SubnetCreate
	var create *cobra.Command
	create = formatted(networkCommand("create NAME --network NET --subnet-range CIDR", "Create a subnet", cobra.ExactArgs(1),
		func(ctx context.Context, n *client.Networking, args []string) error {
			req.Name, req.DHCP = args[0], choice(create, "dhcp", "no-dhcp")
			return n.CreateSubnet(ctx, req)
		}))
	fl := create.Flags()
	fl.StringVar(&req.Network, "network", "", "the network, by name or ID")
	fl.StringVar(&req.Range, "subnet-range", "", "the subnet's addresses, as a CIDR")
	fl.IntVar(&req.IPVersion, "ip-version", 0, "4 or 6 (default: the subnet range's)")
	fl.StringVar(&req.Gateway, "gateway", "", "the gateway's address, or none (default: the range's first address)")
	fl.StringArrayVar(&req.AllocationPools, "allocation-pool", nil, "addresses for ports, start=IP,end=IP (repeat for more; default: the whole range)")
	fl.StringArrayVar(&req.DNSNameservers, "dns-nameserver", nil, "a DNS server for the subnet's hosts (repeat for more)")
	fl.StringArrayVar(&req.HostRoutes, "host-route", nil, "a route for the subnet's hosts, destination=CIDR,gateway=IP (repeat for more)")
	toggle(create, "dhcp", "serve the subnet's addresses by DHCP (default)", "no-dhcp", "do not serve DHCP")
	create.MarkFlagRequired("network")
	create.MarkFlagRequired("subnet-range")

	var network string
	list := formatted(networkCommand("list", "List subnets", cobra.NoArgs, func(ctx context.Context, n *client.Networking, _ []string) error {
		return n.ListSubnets(ctx, network)
	}))
	list.Flags().StringVar(&network, "network", "", "list the subnets of this network only")

	var change client.SubnetSet
	var name, gateway string
	var set *cobra.Command
	set = formatted(networkCommand("set NAME|ID", "Change a subnet", cobra.ExactArgs(1), func(ctx context.Context, n *client.Networking, args []string) error {
		change.Name, change.Gateway, change.DHCP = ifChanged(set, "name", &name), ifChanged(set, "gateway", &gateway), choice(set, "dhcp", "no-dhcp")
		return n.SetSubnet(ctx, args[0], change)
	}))
	set.Flags().StringVar(&name, "name", "", "a new name")
	set.Flags().StringVar(&gateway, "gateway", "", "a new gateway address, or none")
	toggle(set, "dhcp", "serve the subnet's addresses by DHCP", "no-dhcp", "stop serving DHCP")
	set.Flags().StringArrayVar(&change.DNSNameservers, "dns-nameserver", nil, "add a DNS server (repeat for more)")
	set.Flags().BoolVar(&change.NoDNSNameservers, "no-dns-nameservers", false, "remove the subnet's DNS servers (before adding those of --dns-nameserver)")

	return append([]*cobra.Command{create, list, set}, showDelete("subnet", "NAME|ID", (*client.Networking).ShowSubnet, (*client.Networking).DeleteSubnets)...)
}

func portCommands() []*cobra.Command {
	var req client.PortCreate
	create := formatted(networkCommand("create NAME --network NET", "Create a port", cobra.ExactArgs(1), func(ctx context.Context, n *client.Networking, args []string) error {
		req.Name = args[0]
		return n.CreatePort(ctx, req)
	}))
	fl := create.Flags()
	fl.StringVar(&req.Network, "network", "", "the network, by name or ID")
	fl.StringArrayVar(&req.FixedIPs, "fixed-ip", nil, "an address, subnet=SUBNET,ip-address=IP, either or both (repeat for more; default: one of each subnet)")
	fl.StringArrayVar(&req.SecurityGroups, "security-group", nil, "a security group, by name or ID (repeat for more; default: the project's default group)")
	fl.BoolVar(&req.NoSecurityGroup, "no-security-group", false, "put the port in no security group")
	fl.BoolVar(&req.DisablePortSecurity, "disable-port-security", false, "let the port send from any address, with no security group")
	fl.StringVar(&req.MACAddress, "mac-address", "", "the port's MAC address (default: the cloud's choice)")
	create.MarkFlagRequired("network")
	create.MarkFlagsMutuallyExclusive("security-group", "no-security-group")

	var network, server string
	list := formatted(networkCommand("list", "List ports", cobra.NoArgs, func(ctx context.Context, n *client.Networking, _ []string) error {
		return n.ListPorts(ctx, network, server)
	}))
	list.Flags().StringVar(&network, "network", "", "list the ports on this network only")
	list.Flags().StringVar(&server, "server", "", "list the ports of this server only")

	var change client.PortSet
	var name string
	var set *cobra.Command
	set = formatted(networkCommand("set NAME|ID", "Change a port", cobra.ExactArgs(1), func(ctx context.Context, n *client.Networking, args []string) error {
		change.Name = ifChanged(set, "name", &name)
		return n.SetPort(ctx, args[0], change)
	}))
	set.Flags().StringVar(&name, "name", "", "a new name")
	set.Flags().StringArrayVar(&change.SecurityGroups, "security-group", nil, "add the port to a security group (repeat for more)")
	set.Flags().BoolVar(&change.NoSecurityGroup, "no-security-group", false, "take the port out of its security groups (before adding those of --security-group)")
	set.Flags().StringArrayVar(&change.FixedIPs, "fixed-ip", nil, "add an address, subnet=SUBNET,ip-address=IP (repeat for more)")
	set.Flags().BoolVar(&change.NoFixedIP, "no-fixed-ip", false, "remove the port's addresses (before adding those of --fixed-ip)")

	return append([]*cobra.Command{create, list, set}, showDelete("port", "NAME|ID", (*client.Networking).ShowPort, (*client.Networking).DeletePorts)...)
}

func routerCommands() []*cobra.Command {
	var gateway string
	var disableSNAT bool
	create := formatted(networkCommand("create NAME", "Create a router", cobra.ExactArgs(1), func(ctx context.Context, n *client.Networking, args []string) error {
		return n.CreateRouter(ctx, args[0], gateway, disableSNAT)
	}))
	create.Flags().StringVar(&gateway, "external-gateway", "", "give the router a gateway on this external network")
	create.Flags().BoolVar(&disableSNAT, "disable-snat", false, "do not translate the source addresses of traffic out of the gateway (admins only)")

	var change client.RouterSet
	var name string
	var set *cobra.Command
	set = formatted(networkCommand("set NAME|ID", "Change a router's name or gateway", cobra.ExactArgs(1), func(ctx context.Context, n *client.Networking, args []string) error {
		change.Name = ifChanged(set, "name", &name)
		return n.SetRouter(ctx, args[0], change)
	}))
	set.Flags().StringVar(&name, "name", "", "a new name")
	set.Flags().StringVar(&change.ExternalGateway, "external-gateway", "", "give the router a gateway on this external network")
	set.Flags().BoolVar(&change.DisableSNAT, "disable-snat", false, "with --external-gateway: do not translate source addresses (admins only)")
	set.Flags().BoolVar(&change.NoExternalGateway, "no-external-gateway", false, "take the router's gateway away")
	set.MarkFlagsMutuallyExclusive("external-gateway", "no-external-gateway")

	add := &cobra.Command{Use: "add", Short: "Give a router an interface on a subnet or a port"}
	remove := &cobra.Command{Use: "remove", Short: "Take a router's interface on a subnet or a port away"}
	for _, kind := range []struct {
		noun  string
		iface func(ref string) client.Interface
	}{
		{"subnet", func(ref string) client.Interface { return client.Interface{Subnet: ref} }},
		{"port", func(ref string) client.Interface { return client.Interface{Port: ref} }},
	} {
		add.AddCommand(formatted(networkCommand(kind.noun+" ROUTER "+strings.ToUpper(kind.noun), "Give a router an interface on a "+kind.noun, cobra.ExactArgs(2),
			func(ctx context.Context, n *client.Networking, args []string) error {
				return n.AddRouterInterface(ctx, args[0], kind.iface(args[1]))
			})))
		remove.AddCommand(formatted(networkCommand(kind.noun+" ROUTER "+strings.ToUpper(kind.noun), "Take a router's interface on a "+kind.noun+" away", cobra.ExactArgs(2),
			func(ctx context.Context, n *client.Networking, args []string) error {
				return n.RemoveRouterInterface(ctx, args[0], kind.iface(args[1]))
			})))
	}
	return append([]*cobra.Command{create, set, add, remove, listCommand("List routers", (*client.Networking).ListRouters)},
		showDelete("router", "NAME|ID", (*client.Networking).ShowRouter, (*client.Networking).DeleteRouters)...)
}

func floatingIPCommands() []*cobra.Command {
	var port, fixedIP string
	create := formatted(networkCommand("create NETWORK", "Take an address of an external network as a floating IP", cobra.ExactArgs(1),
		func(ctx context.Context, n *client.Networking, args []string) error {
			return n.CreateFloatingIP(ctx, args[0], port, fixedIP)
		}))
	create.Flags().StringVar(&port, "port", "", "have the floating IP reach this port")
	create.Flags().StringVar(&fixedIP, "fixed-ip-address", "", "with --port: the port's address to reach (default: its first)")

	var setPort, setFixedIP string
	set := formatted(networkCommand("set IP|ID --port PORT", "Have a floating IP reach a port", cobra.ExactArgs(1),
		func(ctx context.Context, n *client.Networking, args []string) error {
			return n.SetFloatingIP(ctx, args[0], setPort, setFixedIP)
		}))
	set.Flags().StringVar(&setPort, "port", "", "the port, by name or ID")
	set.Flags().StringVar(&setFixedIP, "fixed-ip-address", "", "the port's address to reach (default: its first)")
	set.MarkFlagRequired("port")

	unset := formatted(networkCommand("unset IP|ID --port", "Have a floating IP reach no port", cobra.ExactArgs(1),
		func(ctx context.Context, n *client.Networking, args []string) error {
			return n.SetFloatingIP(ctx, args[0], "", "")
		}))
	unset.Flags().Bool("port", false, "take the floating IP off its port")
	unset.MarkFlagRequired("port")

	return append([]*cobra.Command{create, set, unset, listCommand("List floating IPs", (*client.Networking).ListFloatingIPs)},
		showDelete("floating IP", "IP|ID", (*client.Networking).ShowFloatingIP, (*client.Networking).DeleteFloatingIPs)...)
}

func securityGroupCommands() []*cobra.Command {
	var description string
	create := formatted(networkCommand("create NAME", "Create a security group: it lets all traffic out, and none in", cobra.ExactArgs(1),
		func(ctx context.Context, n *client.Networking, args []string) error {
			return n.CreateSecurityGroup(ctx, args[0], description)
		}))
	create.Flags().StringVar(&description, "description", "", "a description")

	rule := &cobra.Command{Use: "rule", Short: "Manage security group rules: what traffic the group lets through"}
	rule.AddCommand(ruleCommands()...)
	return append([]*cobra.Command{create, rule, listCommand("List security groups", (*client.Networking).ListSecurityGroups)},
		showDelete("security group", "NAME|ID", (*client.Networking).ShowSecurityGroup, (*client.Networking).DeleteSecurityGroups)...)
}

func ruleCommands() []*cobra.Command {
	var req client.RuleCreate
	var create *cobra.Command
	create = formatted(networkCommand("create GROUP", "Let traffic into (or out of) a security group's ports", cobra.ExactArgs(1),
		func(ctx context.Context, n *client.Networking, args []string) error {
			req.Group = args[0]
			if egress := choice(create, "egress", "ingress"); egress != nil {
				req.Egress = *egress
			}
			return n.CreateRule(ctx, req)
		}))
	fl := create.Flags()
	toggle(create, "ingress", "a rule for traffic in (default)", "egress", "a rule for traffic out")
	fl.StringVar(&req.EtherType, "ethertype", "", "IPv4 or IPv6 (default: --remote-ip's, or IPv4)")
	fl.StringVar(&req.Protocol, "protocol", "", "tcp, udp, icmp, ..., a protocol number, or any (default)")
	fl.StringVar(&req.DstPort, "dst-port", "", "the destination port, or a range N:M (default: any)")
	fl.StringVar(&req.RemoteIP, "remote-ip", "", "the CIDR traffic comes from or goes to (default: anywhere)")
	fl.StringVar(&req.RemoteGroup, "remote-group", "", "a security group whose ports traffic comes from or goes to")
	create.MarkFlagsMutuallyExclusive("remote-ip", "remote-group")

	return []*cobra.Command{
		create,
		formatted(networkCommand("list [GROUP]", "List security group rules, of one group or all", cobra.MaximumNArgs(1),
			func(ctx context.Context, n *client.Networking, args []string) error {
				var group string
				if len(args) == 1 {
					group = args[0]
				}
				return n.ListRules(ctx, group)
			})),
		networkCommand("delete ID...", "Delete security group rules", cobra.MinimumNArgs(1), func(ctx context.Context, n *client.Networking, args []string) error {
			return n.DeleteRules(ctx, args)
		}),
	}
}
