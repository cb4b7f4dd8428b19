package network

import (
	"encoding/json"
	"slices"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/network"
)

type floatingIPSpec = network.FloatingIPSpec

// floatingIPFields are the attributes of floating IPs.
var floatingIPFields = slices.Concat(
	ownedFields(func(s *floatingIPSpec) *string { return &s.ProjectID }),
	readOnly[floatingIPSpec]("status", "router_id"),
	[]field[floatingIPSpec]{
		str("description", maxName, func(s *floatingIPSpec) **string { return &s.Description }),
		tags(func(s *floatingIPSpec) **[]string { return &s.Tags }),
		{name: "floating_network_id", post: true, required: true, set: func(s *floatingIPSpec, v json.RawMessage) (err error) {
			s.NetworkID, err = parseUUID("floating_network_id", v)
			return err
		}},
		{name: "floating_ip_address", post: true, policy: true, dflt: "null", set: func(s *floatingIPSpec, v json.RawMessage) (err error) {
			s.Address, err = parseAddrOrNone("floating_ip_address", v)
			return err
		}},
		{name: "subnet_id", post: true, set: func(s *floatingIPSpec, v json.RawMessage) (err error) {
			s.SubnetID, err = parseUUIDOrNone("subnet_id", v)
			return err
		}},
		{name: "port_id", post: true, put: true, set: func(s *floatingIPSpec, v json.RawMessage) error {
			port, err := parseUUIDOrNone("port_id", v)
			s.PortID = &port
			return err
		}},
		{name: "fixed_ip_address", post: true, put: true, set: func(s *floatingIPSpec, v json.RawMessage) (err error) {
			s.FixedAddress, err = parseAddrOrNone("fixed_ip_address", v)
			return err
		}},
	})

// floatingIPs is the floatingips collection.
func (h *handler) floatingIPs() *collection[floatingIPSpec, trustack.FloatingIP] {
	svc := h.svc
	return &collection[floatingIPSpec, trustack.FloatingIP]{
		name: "floatingip", plural: "floatingips", path: "floatingips", tag: network.TagFloatingIPs, fields: floatingIPFields,
		absent: notFound("FloatingIPNotFound", "Floating IP %s could not be found"),
		get:    svc.FloatingIP, list: svc.FloatingIPs, create: svc.CreateFloatingIP, update: svc.UpdateFloatingIP, delete: svc.DeleteFloatingIP,
		render: renderFloatingIP,
	}
}

// renderFloatingIP renders a floating IP as Neutron does; one that is
// not associated has null port, fixed address and router.
func renderFloatingIP(f *trustack.FloatingIP, _ *related) object {
	return owned(object{
		"id": f.ID, "floating_ip_address": addrOrNil(f.Address), "floating_network_id": f.NetworkID,
		"port_id": textOrNil(f.PortID), "fixed_ip_address": addrOrNil(f.FixedAddress), "router_id": textOrNil(f.RouterID),
		"status": f.Status, "tags": texts(f.Tags),
	}, f.ProjectID, f.Standard)
}
