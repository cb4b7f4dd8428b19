package client

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/portsecurity"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"

	"github.com/trustack/trustack"
)

// neutronPort is a port with its port_security_enabled.
type neutronPort struct {
	ports.Port
	portsecurity.PortSecurityExt
}

// PortCreate is a request for a port.
type PortCreate struct {
	Name    string
	Network string // name or ID
	// FixedIPs are the addresses asked for, subnet=SUBNET,ip-address=IP
	// (either or both) as the OpenStack CLI takes them; none for one of
	// each of the network's subnets.
	FixedIPs []string
	// SecurityGroups are names or IDs; none for the project's default
	// group, or no group at all if NoSecurityGroup.
	SecurityGroups  []string
	NoSecurityGroup bool
	// DisablePortSecurity lets the port send from any address, with no
	// security group.
	DisablePortSecurity bool
	// MACAddress is "" for one the cloud chooses.
	MACAddress string
}

// CreatePort creates a port and shows it. It returns EINVALID for a
// malformed --fixed-ip, ENOTFOUND for an unknown network, subnet or
// security group, and the network API's refusals (an address in use).
func (n *Networking) CreatePort(ctx context.Context, req PortCreate) error {
	net, err := n.findNetwork(ctx, req.Network)
	if err != nil {
		return err
	}
	ips, err := n.fixedIPs(ctx, req.FixedIPs)
	if err != nil {
		return err
	}
	opts := ports.CreateOpts{NetworkID: net.ID, Name: req.Name, MACAddress: req.MACAddress}
	if len(ips) > 0 {
		opts.FixedIPs = ips
	}
	if opts.SecurityGroups, err = n.portGroups(ctx, nil, req.SecurityGroups, req.NoSecurityGroup); err != nil {
		return err
	}
	var build ports.CreateOptsBuilder = opts
	if req.DisablePortSecurity {
		build = portsecurity.PortCreateOptsExt{CreateOptsBuilder: opts, PortSecurityEnabled: new(bool)}
	}
	var p neutronPort
	if err := ports.Create(ctx, n.networking, build).ExtractInto(&p); err != nil {
		return apiError(err)
	}
	return n.show(portRecord(&p))
}

// portGroups is the security_groups to send for a port that is in the
// groups have (IDs): none if neither add nor reset, else those named in
// add, after have unless reset.
func (n *Networking) portGroups(ctx context.Context, have, add []string, reset bool) (*[]string, error) {
	if len(add) == 0 && !reset {
		return nil, nil
	}
	added, err := n.groupIDs(ctx, add)
	if err != nil {
		return nil, err
	}
	ids := []string{}
	if !reset {
		ids = append(ids, have...)
	}
	ids = append(ids, added...)
	return &ids, nil
}

// fixedIPArg is a --fixed-ip: a subnet (name or ID), an address, or both.
type fixedIPArg struct{ subnet, address string }

// parseFixedIP parses --fixed-ip subnet=SUBNET,ip-address=IP, either or
// both. It returns EINVALID for anything else.
func parseFixedIP(arg string) (fixedIPArg, error) {
	const flag, form = "--fixed-ip", "subnet=SUBNET,ip-address=IP (either or both)"
	o, err := options(flag, arg, form, "subnet", "ip-address")
	if err != nil {
		return fixedIPArg{}, err
	}
	if ip, ok := o["ip-address"]; ok {
		if _, err := netip.ParseAddr(ip); err != nil {
			return fixedIPArg{}, trustack.Errorf(trustack.EINVALID, "%s %q: %q is not an IP address", flag, arg, ip)
		}
	}
	return fixedIPArg{subnet: o["subnet"], address: o["ip-address"]}, nil
}

// fixedIPs parses --fixed-ip arguments and finds their subnets.
func (n *Networking) fixedIPs(ctx context.Context, args []string) ([]ports.IP, error) {
	var out []ports.IP
	for _, arg := range args {
		f, err := parseFixedIP(arg)
		if err != nil {
			return nil, err
		}
		ip := ports.IP{IPAddress: f.address}
		if f.subnet != "" {
			sn, err := n.findSubnet(ctx, f.subnet)
			if err != nil {
				return nil, err
			}
			ip.SubnetID = sn.ID
		}
		out = append(out, ip)
	}
	return out, nil
}

// fixedIP shows an address of a port as the OpenStack CLI does.
type fixedIP ports.IP

func (f fixedIP) String() string {
	return fmt.Sprintf("ip_address='%s', subnet_id='%s'", f.IPAddress, f.SubnetID)
}

func fixedIPsOf(ips []ports.IP) []fixedIP {
	out := make([]fixedIP, len(ips))
	for i, ip := range ips {
		out[i] = fixedIP(ip)
	}
	return out
}

// portRecord is what `port show` shows.
func portRecord(p *neutronPort) record {
	return record{
		{"id", p.ID},
		{"name", p.Name},
		{"description", p.Description},
		{"network_id", p.NetworkID},
		{"mac_address", p.MACAddress},
		{"fixed_ips", fixedIPsOf(p.FixedIPs)},
		{"security_group_ids", texts(p.SecurityGroups)},
		{"port_security_enabled", p.PortSecurityEnabled},
		{"status", p.Status},
		{"admin_state_up", p.AdminStateUp},
		{"device_id", p.DeviceID},
		{"device_owner", p.DeviceOwner},
		{"project_id", p.ProjectID},
		{"created_at", stamp(p.CreatedAt)},
		{"updated_at", stamp(p.UpdatedAt)},
	}
}

// ports returns the ports the project sees that opts select.
func (n *Networking) ports(ctx context.Context, opts ports.ListOpts) ([]neutronPort, error) {
	page, err := ports.List(n.networking, opts).AllPages(ctx)
	if err != nil {
		return nil, apiError(err)
	}
	var list []neutronPort
	if err := ports.ExtractPortsInto(page, &list); err != nil {
		return nil, fmt.Errorf("read ports: %w", err)
	}
	return list, nil
}

// findPort returns the port ref names, by ID or else by name.
func (n *Networking) findPort(ctx context.Context, ref string) (*neutronPort, error) {
	return find("port", ref, func(id string) (*neutronPort, error) {
		var p neutronPort
		return &p, ports.Get(ctx, n.networking, id).ExtractInto(&p)
	}, func(name string) ([]neutronPort, error) {
		return n.ports(ctx, ports.ListOpts{Name: name})
	})
}

// ShowPort shows the port ref names.
func (n *Networking) ShowPort(ctx context.Context, ref string) error {
	p, err := n.findPort(ctx, ref)
	if err != nil {
		return err
	}
	return n.show(portRecord(p))
}

// ListPorts lists the ports the project sees: those on the network
// named, if network is not empty, and those of the server named, if
// server is not empty.
func (n *Networking) ListPorts(ctx context.Context, network, server string) error {
	var opts ports.ListOpts
	if network != "" {
		net, err := n.findNetwork(ctx, network)
		if err != nil {
			return err
		}
		opts.NetworkID = net.ID
	}
	if server != "" {
		s, err := n.findServer(ctx, server)
		if err != nil {
			return err
		}
		opts.DeviceID = s.ID
	}
	list, err := n.ports(ctx, opts)
	if err != nil {
		return err
	}
	t := &table{columns: []string{"ID", "Name", "MAC Address", "Fixed IP Addresses", "Status"}}
	for _, p := range list {
		t.add(p.ID, p.Name, p.MACAddress, fixedIPsOf(p.FixedIPs), p.Status)
	}
	return n.list(t)
}

// PortSet is a change of a port; the zero PortSet changes nothing.
type PortSet struct {
	Name *string
	// SecurityGroups (names or IDs) are added to the port's groups, after
	// all are removed if NoSecurityGroup.
	SecurityGroups  []string
	NoSecurityGroup bool
	// FixedIPs (as PortCreate's) are added to the port's addresses, after
	// all are removed if NoFixedIP.
	FixedIPs  []string
	NoFixedIP bool
}

// SetPort changes the port ref names and shows it. It returns EINVALID
// if req changes nothing.
func (n *Networking) SetPort(ctx context.Context, ref string, req PortSet) error {
	if req.Name == nil && len(req.SecurityGroups) == 0 && !req.NoSecurityGroup && len(req.FixedIPs) == 0 && !req.NoFixedIP {
		return trustack.Errorf(trustack.EINVALID, "nothing to change: give --name, --security-group or --no-security-group, --fixed-ip or --no-fixed-ip")
	}
	p, err := n.findPort(ctx, ref)
	if err != nil {
		return err
	}
	opts := ports.UpdateOpts{Name: req.Name}
	if opts.SecurityGroups, err = n.portGroups(ctx, p.SecurityGroups, req.SecurityGroups, req.NoSecurityGroup); err != nil {
		return err
	}
	if len(req.FixedIPs) > 0 || req.NoFixedIP {
		add, err := n.fixedIPs(ctx, req.FixedIPs)
		if err != nil {
			return err
		}
		ips := []ports.IP{}
		if !req.NoFixedIP {
			ips = append(ips, p.FixedIPs...)
		}
		opts.FixedIPs = append(ips, add...)
	}
	var updated neutronPort
	if err := ports.Update(ctx, n.networking, p.ID, opts).ExtractInto(&updated); err != nil {
		return apiError(err)
	}
	return n.show(portRecord(&updated))
}

// DeletePorts deletes the ports refs name. The network API refuses
// (ECONFLICT) to delete a router's. It tries every port and returns the
// errors of those it could not delete.
func (n *Networking) DeletePorts(ctx context.Context, refs []string) error {
	return eachOf("delete port", refs, func(ref string) error {
		p, err := n.findPort(ctx, ref)
		if err != nil {
			return err
		}
		return apiError(ports.Delete(ctx, n.networking, p.ID).ExtractErr())
	})
}
