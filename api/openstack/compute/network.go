package compute

import (
	"context"
	"encoding/json"
	"net/http"
	"net/netip"
	"slices"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/api/openstack"
	"github.com/trustack/trustack/compute"
	"github.com/trustack/trustack/network"
)

// Network is what the compute API needs of the networking service: the
// addresses and security groups that servers show, and what Nova's 2.1
// proxies of Neutron reach (security groups and their rules, floating
// IPs, networks). network.Service is one; its errors carry the codes and
// Neutron reasons the handlers answer with.
type Network interface {
	Addresses(ctx context.Context, ports map[string][]*trustack.Port) (map[string][]network.Address, error)
	SecurityGroupNames(ctx context.Context, ids []string) (map[string]string, error)
	Ports(ctx context.Context, c network.Caller, f trustack.PortFilter) ([]*trustack.Port, error)

	Network(ctx context.Context, c network.Caller, id string) (*trustack.Network, error)
	Networks(ctx context.Context, c network.Caller) ([]*trustack.Network, error)

	SecurityGroup(ctx context.Context, c network.Caller, id string) (*trustack.SecurityGroup, error)
	SecurityGroups(ctx context.Context, c network.Caller) ([]*trustack.SecurityGroup, error)
	CreateSecurityGroup(ctx context.Context, c network.Caller, spec network.SecurityGroupSpec) (*trustack.SecurityGroup, error)
	UpdateSecurityGroup(ctx context.Context, c network.Caller, id string, spec network.SecurityGroupSpec) (*trustack.SecurityGroup, error)
	DeleteSecurityGroup(ctx context.Context, c network.Caller, id string) error
	CreateSecurityGroupRule(ctx context.Context, c network.Caller, spec network.RuleSpec) (*trustack.SecurityGroupRule, error)
	DeleteSecurityGroupRule(ctx context.Context, c network.Caller, id string) error

	FloatingIP(ctx context.Context, c network.Caller, id string) (*trustack.FloatingIP, error)
	FloatingIPs(ctx context.Context, c network.Caller) ([]*trustack.FloatingIP, error)
	CreateFloatingIP(ctx context.Context, c network.Caller, spec network.FloatingIPSpec) (*trustack.FloatingIP, error)
	UpdateFloatingIP(ctx context.Context, c network.Caller, id string, spec network.FloatingIPSpec) (*trustack.FloatingIP, error)
	DeleteFloatingIP(ctx context.Context, c network.Caller, id string) error
}

// netCaller is the caller as the networking service knows callers.
func netCaller(c compute.Caller) network.Caller {
	return network.Caller{ProjectID: c.ProjectID, Admin: c.Admin}
}

// netCallerFor returns the caller as the networking service knows it,
// after checking rule against the caller's project.
func (h *handler) netCallerFor(r *http.Request, rule string) (network.Caller, error) {
	c, err := h.caller(r)
	if err != nil {
		return network.Caller{}, err
	}
	return netCaller(c), h.authorize(r, rule, "")
}

// recode gives err the code instead of its own if its Neutron reason is
// one of reasons, for the calls where Nova answers a networking error
// with another status than Neutron does.
func recode(err error, code string, reasons ...string) error {
	if err != nil && slices.Contains(reasons, trustack.ErrorReason(err)) {
		return &trustack.Error{Code: code, Message: trustack.ErrorMessage(err)}
	}
	return err
}

// serverParts is what a server shows of its networking: its addresses, in
// the order of its NICs, and the names of its ports' security groups,
// each once, sorted.
type serverParts struct {
	addresses []network.Address
	groups    []string
	volumes   []string // the IDs of its volumes, by device
	// hostStatus is the state of the server's host, as host_status
	// shows it; nil where it is not shown (see withHostStatus).
	hostStatus *string
}

// partsOf returns the networking and the volumes of servers, by server
// ID, in the same four reads however many servers there are: their ports,
// their addresses, their groups' names and their volumes.
func (h *handler) partsOf(ctx context.Context, servers ...*trustack.Server) (map[string]serverParts, error) {
	out := map[string]serverParts{}
	volumes, err := h.svc.VolumesOf(ctx, servers...)
	if err != nil {
		return nil, err
	}
	for id, list := range volumes {
		out[id] = serverParts{volumes: list}
	}
	ports, err := h.svc.PortsOf(ctx, servers...)
	if err != nil || len(ports) == 0 {
		return out, err
	}
	addrs, err := h.net.Addresses(ctx, ports)
	if err != nil {
		return nil, err
	}
	var groupIDs []string
	for _, list := range ports {
		for _, p := range list {
			groupIDs = append(groupIDs, p.SecurityGroups...)
		}
	}
	slices.Sort(groupIDs)
	names, err := h.net.SecurityGroupNames(ctx, slices.Compact(groupIDs))
	if err != nil {
		return nil, err
	}
	for id, list := range ports {
		n := serverParts{addresses: addrs[id], volumes: volumes[id]}
		for _, p := range list {
			for _, g := range p.SecurityGroups {
				if name, ok := names[g]; ok {
					n.groups = append(n.groups, name)
				}
			}
		}
		slices.Sort(n.groups)
		n.groups = slices.Compact(n.groups)
		out[id] = n
	}
	return out, nil
}

// addresses renders a server's addresses as Nova does, by network name,
// each network's fixed addresses before its floating ones. extended adds
// each address's type and MAC (OS-EXT-IPS, OS-EXT-IPS-MAC), as a server's
// details show them but /ips and the answer to an update do not.
func addresses(list []network.Address, extended bool) object {
	out := object{}
	for _, floating := range []bool{false, true} {
		for _, a := range list {
			if a.Floating != floating {
				continue
			}
			item := object{"version": a.Version, "addr": a.Address.String()}
			if extended {
				item["OS-EXT-IPS:type"] = "fixed"
				if a.Floating {
					item["OS-EXT-IPS:type"] = "floating"
				}
				item["OS-EXT-IPS-MAC:mac_addr"] = a.MAC
			}
			items, _ := out[a.Network].([]object)
			out[a.Network] = append(items, item)
		}
	}
	return out
}

// serverAddresses returns the addresses of the request's server, after
// checking rule.
func (h *handler) serverAddresses(r *http.Request, rule string) (object, error) {
	_, s, err := h.serverFor(r, rule)
	if err != nil {
		return nil, err
	}
	nets, err := h.partsOf(r.Context(), s)
	if err != nil {
		return nil, err
	}
	return addresses(nets[s.ID].addresses, false), nil
}

func (h *handler) listIPs(w http.ResponseWriter, r *http.Request) error {
	addrs, err := h.serverAddresses(r, "os_compute_api:ips:index")
	if err != nil {
		return err
	}
	return ok(w, object{"addresses": addrs})
}

func (h *handler) showIPs(w http.ResponseWriter, r *http.Request) error {
	addrs, err := h.serverAddresses(r, "os_compute_api:ips:show")
	if err != nil {
		return err
	}
	label := r.PathValue("label")
	list, found := addrs[label]
	if !found {
		return trustack.Errorf(trustack.ENOTFOUND, "Instance is not a member of specified network")
	}
	return ok(w, object{label: list})
}

// interfaceAttachment renders a server's port as os-interface does.
func interfaceAttachment(p *trustack.Port) object {
	ips := make([]object, len(p.FixedIPs))
	for i, ip := range p.FixedIPs {
		ips[i] = object{"subnet_id": ip.SubnetID, "ip_address": ip.Address.String()}
	}
	return object{"net_id": p.NetworkID, "port_id": p.ID, "mac_addr": p.MACAddress, "port_state": p.Status, "fixed_ips": ips}
}

// serverPorts returns the request's server and its ports, after checking
// rule.
func (h *handler) serverPorts(r *http.Request, rule string) (compute.Caller, *trustack.Server, []*trustack.Port, error) {
	c, s, err := h.serverFor(r, rule)
	if err != nil {
		return c, nil, nil, err
	}
	ports, err := h.portsOf(r.Context(), s)
	return c, s, ports, err
}

// portsOf returns a server's ports, in the order of its NICs.
func (h *handler) portsOf(ctx context.Context, s *trustack.Server) ([]*trustack.Port, error) {
	byServer, err := h.svc.PortsOf(ctx, s)
	return byServer[s.ID], err
}

func (h *handler) listInterfaces(w http.ResponseWriter, r *http.Request) error {
	_, _, ports, err := h.serverPorts(r, "os_compute_api:os-attach-interfaces:list")
	if err != nil {
		return err
	}
	out := make([]object, len(ports))
	for i, p := range ports {
		out[i] = interfaceAttachment(p)
	}
	return collection(w, "interfaceAttachments", out)
}

func (h *handler) showInterface(w http.ResponseWriter, r *http.Request) error {
	_, s, ports, err := h.serverPorts(r, "os_compute_api:os-attach-interfaces:show")
	if err != nil {
		return err
	}
	id := r.PathValue("port")
	i := slices.IndexFunc(ports, func(p *trustack.Port) bool { return p.ID == id })
	if i < 0 {
		return trustack.Errorf(trustack.ENOTFOUND, "Instance %s does not have a port with id %s", s.ID, id)
	}
	return ok(w, object{"interfaceAttachment": interfaceAttachment(ports[i])})
}

// attachBody is the body of POST /servers/{id}/os-interface.
type attachBody struct {
	Attachment *struct {
		NetID    *string           `json:"net_id"`
		PortID   *string           `json:"port_id"`
		FixedIPs []json.RawMessage `json:"fixed_ips"`
	} `json:"interfaceAttachment"`
}

// nic reads what an attachment asks for, with Nova's checks: IDs that are
// UUIDs, one fixed IP at most and only with a network, a network or a
// port but not both. Asking for nothing is asking for a port on the
// project's network.
func (b attachBody) nic() (network.NIC, error) {
	var nic network.NIC
	a := b.Attachment
	if a == nil {
		return nic, nil
	}
	for _, f := range []struct {
		name string
		v    *string
		dst  *string
	}{{"net_id", a.NetID, &nic.NetworkID}, {"port_id", a.PortID, &nic.PortID}} {
		if f.v != nil {
			if !uuidRE.MatchString(*f.v) {
				return nic, invalid(f.name, "Value: %s. %q is not a 'uuid'", *f.v, *f.v)
			}
			*f.dst = *f.v
		}
	}
	if a.FixedIPs != nil {
		if len(a.FixedIPs) != 1 {
			return nic, invalid("fixed_ips", "It must have exactly one item.")
		}
		var ip struct {
			IPAddress *string `json:"ip_address"`
		}
		if err := openstack.UnmarshalField(a.FixedIPs[0], "interfaceAttachment.fixed_ips", &ip); err != nil {
			return nic, err
		}
		if ip.IPAddress == nil {
			return nic, invalid("fixed_ips", "'ip_address' is a required property.")
		}
		addr, err := netip.ParseAddr(*ip.IPAddress)
		if err != nil {
			return nic, invalid("ip_address", "Value: %s. %q is not a 'ip-address'", *ip.IPAddress, *ip.IPAddress)
		}
		nic.FixedIP = addr
	}
	switch {
	case nic.NetworkID != "" && nic.PortID != "":
		return nic, trustack.Errorf(trustack.EINVALID, "Must not input both network_id and port_id")
	case nic.FixedIP.IsValid() && nic.NetworkID == "":
		return nic, trustack.Errorf(trustack.EINVALID, "Must input network_id when request IP address")
	}
	return nic, nil
}

func (h *handler) attachInterface(w http.ResponseWriter, r *http.Request) error {
	c, s, err := h.serverFor(r, "os_compute_api:os-attach-interfaces:create")
	if err != nil {
		return err
	}
	var body attachBody
	if err := h.dec.Decode(r, &body); err != nil {
		return err
	}
	nic, err := body.nic()
	if err != nil {
		return err
	}
	p, err := h.svc.AttachInterface(r.Context(), c, s.ID, nic)
	if err != nil {
		// As Nova: a network to choose, or no address left, is the
		// request's fault.
		return recode(err, trustack.EINVALID, "NetworkAmbiguous", "IpAddressGenerationFailure")
	}
	return ok(w, object{"interfaceAttachment": interfaceAttachment(p)})
}

func (h *handler) detachInterface(w http.ResponseWriter, r *http.Request) error {
	c, s, err := h.serverFor(r, "os_compute_api:os-attach-interfaces:delete")
	if err != nil {
		return err
	}
	if err := h.svc.DetachInterface(r.Context(), c, s.ID, r.PathValue("port")); err != nil {
		return err
	}
	return accepted(w)
}

// listVirtualInterfaces answers as Nova with Neutron does: interfaces are
// ports, which os-interface lists.
func (h *handler) listVirtualInterfaces(w http.ResponseWriter, r *http.Request) error {
	if _, _, err := h.serverFor(r, "os_compute_api:os-virtual-interfaces:list"); err != nil {
		return err
	}
	return trustack.Errorf(trustack.EINVALID, "Listing virtual interfaces is not supported by this cloud.")
}

// novaNetwork renders a network as Nova's os-networks does with Neutron:
// its ID and name (label), and null for the nova-network fields it no
// longer has, of which an administrator sees more.
func novaNetwork(n *trustack.Network, admin bool) object {
	o := object{"id": n.ID, "label": n.Name}
	fields := []string{"cidr", "netmask", "gateway", "broadcast", "dns1", "dns2", "cidr_v6", "gateway_v6", "netmask_v6"}
	if admin {
		fields = append(fields, "created_at", "updated_at", "deleted_at", "deleted", "injected", "bridge", "vlan",
			"vpn_public_address", "vpn_public_port", "vpn_private_address", "dhcp_start", "project_id", "host",
			"bridge_interface", "multi_host", "priority", "rxtx_base", "mtu", "dhcp_server", "enable_dhcp", "share_address")
	}
	for _, f := range fields {
		o[f] = nil
	}
	return o
}

// tenantNetwork renders a network as Nova's os-tenant-networks does with
// Neutron, whose cidr has always been the string "None".
func tenantNetwork(n *trustack.Network, _ bool) object {
	return object{"id": n.ID, "cidr": "None", "label": n.Name}
}

// listNetworks serves GET /os-networks and /os-tenant-networks: the
// networks the caller sees, rendered by render.
func (h *handler) listNetworks(render func(*trustack.Network, bool) object, rule string) openstack.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		c, err := h.netCallerFor(r, rule)
		if err != nil {
			return err
		}
		nets, err := h.net.Networks(r.Context(), c)
		if err != nil {
			return err
		}
		out := make([]object, len(nets))
		for i, n := range nets {
			out[i] = render(n, c.Admin)
		}
		return collection(w, "networks", out)
	}
}

// showNetwork serves GET /os-networks/{id} and /os-tenant-networks/{id}.
func (h *handler) showNetwork(render func(*trustack.Network, bool) object, rule string) openstack.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		c, err := h.netCallerFor(r, rule)
		if err != nil {
			return err
		}
		n, err := h.net.Network(r.Context(), c, r.PathValue("id"))
		if trustack.ErrorCode(err) == trustack.ENOTFOUND {
			return trustack.Errorf(trustack.ENOTFOUND, "Network not found")
		}
		if err != nil {
			return err
		}
		return ok(w, object{"network": render(n, c.Admin)})
	}
}
