package network

import (
	"cmp"
	"context"
	"encoding/json"
	"slices"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/network"
	"github.com/trustack/trustack/policy"
)

type portSpec = network.PortSpec

// portFields are the attributes of ports, with those of the binding,
// security-group, port-security and allowed-address-pairs extensions.
// trustack keeps no binding profile: binding:profile may only be empty.
var portFields = slices.Concat(
	described(func(s *portSpec) **string { return &s.Name }, func(s *portSpec) **string { return &s.Description },
		func(s *portSpec) **[]string { return &s.Tags }),
	ownedFields(func(s *portSpec) *string { return &s.ProjectID }),
	readOnly[portSpec]("status", "binding:vif_type", "binding:vif_details"),
	[]field[portSpec]{
		{name: "network_id", post: true, required: true, set: func(s *portSpec, v json.RawMessage) (err error) {
			s.NetworkID, err = parseUUID("network_id", v)
			return err
		}},
		boolean("admin_state_up", func(s *portSpec) **bool { return &s.AdminStateUp }),
		enforced(str("mac_address", maxName, func(s *portSpec) **string { return &s.MACAddress }), ""),
		{name: "fixed_ips", post: true, put: true, policy: true, subRules: true, set: func(s *portSpec, v json.RawMessage) error {
			ips, err := parseFixedIPs("fixed_ips", v)
			s.FixedIPs = &ips
			return err
		}},
		str("device_id", maxID, func(s *portSpec) **string { return &s.DeviceID }),
		enforced(str("device_owner", maxID, func(s *portSpec) **string { return &s.DeviceOwner }), `""`),
		{name: "security_groups", post: true, put: true, set: func(s *portSpec, v json.RawMessage) error {
			groups, err := parseStrings("security_groups", v)
			for _, g := range groups {
				err = cmp.Or(err, checkUUID("security_groups", g))
			}
			s.SecurityGroups = &groups
			return err
		}},
		enforced(boolean("port_security_enabled", func(s *portSpec) **bool { return &s.PortSecurity }), ""),
		{name: "allowed_address_pairs", post: true, put: true, policy: true, subRules: true, set: func(s *portSpec, v json.RawMessage) error {
			pairs, err := parseAddressPairs(v)
			s.AllowedAddressPairs = &pairs
			return err
		}},
		enforced(str("binding:host_id", maxID, func(s *portSpec) **string { return &s.HostID }), ""),
		enforced(str("binding:vnic_type", maxName, func(s *portSpec) **string { return &s.VNICType }), `"normal"`),
		{name: "binding:profile", post: true, put: true, policy: true, set: func(_ *portSpec, v json.RawMessage) error {
			var profile map[string]any
			if json.Unmarshal(v, &profile) != nil || len(profile) > 0 {
				return invalidFor("binding:profile", "'%s' is not an empty dictionary: trustack keeps no binding profile", shown(v))
			}
			return nil
		}},
	})

// parseAddressPairs returns allowed address pairs; null is none.
func parseAddressPairs(v json.RawMessage) ([]trustack.AddressPair, error) {
	const attr = "allowed_address_pairs"
	out := []trustack.AddressPair{}
	if isNull(v) {
		return out, nil
	}
	items, err := parseObjects(attr, v, []string{"ip_address", "mac_address"}, "Unrecognized attribute(s) in '%s'")
	if err != nil {
		return nil, err
	}
	for _, item := range items {
		ip, ok := item["ip_address"]
		if !ok {
			return nil, trustack.Reasonf(trustack.EINVALID, "AllowedAddressPairsMissingIP", "AllowedAddressPair must contain ip_address")
		}
		var pair trustack.AddressPair
		if pair.IPAddress, err = parseString(attr, ip, maxName); err != nil {
			return nil, err
		}
		if mac, ok := item["mac_address"]; ok && !isNull(mac) {
			if pair.MACAddress, err = parseString(attr, mac, maxName); err != nil {
				return nil, err
			}
		}
		out = append(out, pair)
	}
	return out, nil
}

// ports is the ports collection; the policy checks the owner of a
// port's network.
func (h *handler) ports() *collection[portSpec, trustack.Port] {
	svc := h.svc
	return &collection[portSpec, trustack.Port]{
		name: "port", plural: "ports", path: "ports", tag: network.TagPorts, fields: portFields,
		absent: notFound("PortNotFound", "Port %s could not be found."),
		get:    svc.Port,
		list: func(ctx context.Context, c network.Caller) ([]*trustack.Port, error) {
			return svc.Ports(ctx, c, trustack.PortFilter{})
		},
		create: svc.CreatePort, update: svc.UpdatePort, delete: svc.DeletePort,
		relate: func(ctx context.Context, c network.Caller, items []*trustack.Port) (*related, error) {
			ids := make([]string, len(items))
			for i, p := range items {
				ids[i] = p.NetworkID
			}
			networks, err := h.networksOf(ctx, c, ids)
			return &related{networks: networks}, err
		},
		render: renderPort,
		parentOf: func(p *trustack.Port, rel *related) policy.Target {
			return networkParent(rel.networks[p.NetworkID])
		},
		parentOfSpec: specNetwork(h, func(s *portSpec) string { return s.NetworkID }),
	}
}

// renderPort renders a port as Neutron with ML2 and Open vSwitch does: a
// port wired to a host is bound (binding:vif_type ovs, its traffic
// filtered there), any other unbound. It has no extra DHCP options.
func renderPort(p *trustack.Port, _ *related) object {
	ips := make([]object, len(p.FixedIPs))
	for i, ip := range p.FixedIPs {
		ips[i] = object{"subnet_id": ip.SubnetID, "ip_address": ip.Address.String()}
	}
	pairs := make([]object, len(p.AllowedAddressPairs))
	for i, pair := range p.AllowedAddressPairs {
		pairs[i] = object{"ip_address": pair.IPAddress, "mac_address": cmp.Or(pair.MACAddress, p.MACAddress)}
	}
	vifType, vifDetails := "unbound", object{}
	if p.HostID != "" {
		vifType, vifDetails = "ovs", object{"port_filter": true}
	}
	return owned(object{
		"id": p.ID, "name": p.Name, "network_id": p.NetworkID, "mac_address": p.MACAddress, "admin_state_up": p.AdminStateUp,
		"status": p.Status, "device_id": p.DeviceID, "device_owner": p.DeviceOwner, "fixed_ips": ips,
		"allowed_address_pairs": pairs, "extra_dhcp_opts": []object{}, "security_groups": texts(p.SecurityGroups),
		"port_security_enabled": p.PortSecurity, "binding:host_id": p.HostID, "binding:vnic_type": p.VNICType,
		"binding:vif_type": vifType, "binding:vif_details": vifDetails, "binding:profile": object{}, "tags": texts(p.Tags),
	}, p.ProjectID, p.Standard)
}
