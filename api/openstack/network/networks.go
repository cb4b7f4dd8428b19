package network

import (
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/network"
	"github.com/trustack/trustack/policy"
)

type networkSpec = network.NetworkSpec

// networkFields are the attributes of networks, with those of the
// external-net, port-security, net-mtu-writable, provider and
// standard-attr extensions.
var networkFields = slices.Concat(
	described(func(s *networkSpec) **string { return &s.Name }, func(s *networkSpec) **string { return &s.Description },
		func(s *networkSpec) **[]string { return &s.Tags }),
	ownedFields(func(s *networkSpec) *string { return &s.ProjectID }),
	readOnly[networkSpec]("status", "subnets"),
	[]field[networkSpec]{
		boolean("admin_state_up", func(s *networkSpec) **bool { return &s.AdminStateUp }),
		enforced(boolean("shared", func(s *networkSpec) **bool { return &s.Shared }), "false"),
		enforced(boolean("router:external", func(s *networkSpec) **bool { return &s.External }), "false"),
		enforced(boolean("port_security_enabled", func(s *networkSpec) **bool { return &s.PortSecurity }), "true"),
		{name: "mtu", post: true, put: true, set: func(s *networkSpec, v json.RawMessage) error {
			n, err := parseInt(v)
			s.MTU = &n
			return err
		}},
		provider("provider:network_type", func(s *networkSpec, v json.RawMessage) error {
			t, err := parseString("provider:network_type", v, maxName)
			s.Type = &t
			return err
		}),
		provider("provider:physical_network", func(s *networkSpec, v json.RawMessage) error {
			p, err := parseString("provider:physical_network", v, 64)
			s.PhysicalNetwork = &p
			return err
		}),
		provider("provider:segmentation_id", func(s *networkSpec, v json.RawMessage) error {
			id, err := parseInt(v)
			s.SegmentationID = &id
			return err
		}),
	})

// enforced has setting f ask the policy's rule for it, unless a create
// sets it to dflt (JSON; "" for none).
func enforced[S any](f field[S], dflt string) field[S] {
	f.policy, f.dflt = true, dflt
	return f
}

// provider is a provider:* attribute, which null leaves unset and which
// the policy's rules guard.
func provider(name string, set func(s *networkSpec, v json.RawMessage) error) field[networkSpec] {
	return field[networkSpec]{name: name, post: true, put: true, policy: true, set: func(s *networkSpec, v json.RawMessage) error {
		if isNull(v) {
			return nil
		}
		return set(s, v)
	}}
}

// networks is the networks collection; a network shows the IDs of its
// subnets.
func (h *handler) networks() *collection[networkSpec, trustack.Network] {
	svc := h.svc
	return &collection[networkSpec, trustack.Network]{
		name: "network", plural: "networks", path: "networks", tag: network.TagNetworks, fields: networkFields,
		absent: notFound("NetworkNotFound", "Network %s could not be found."),
		get:    svc.Network, list: svc.Networks, create: svc.CreateNetwork, update: svc.UpdateNetwork, delete: svc.DeleteNetwork,
		relate: func(ctx context.Context, c network.Caller, items []*trustack.Network) (*related, error) {
			rel := &related{subnets: map[string][]string{}}
			if len(items) == 0 {
				return rel, nil
			}
			ids := make([]string, len(items))
			for i, n := range items {
				ids[i] = n.ID
			}
			subnets, err := svc.Subnets(ctx, c, ids)
			for _, sn := range subnets {
				rel.subnets[sn.NetworkID] = append(rel.subnets[sn.NetworkID], sn.ID)
			}
			return rel, err
		},
		render: renderNetwork,
	}
}

// renderNetwork renders a network as Neutron with ML2 does. It is in no
// availability zone and no address scope, which trustack has not.
func renderNetwork(n *trustack.Network, rel *related) object {
	var segment any
	if n.Type == trustack.NetworkVLAN || n.Type == trustack.NetworkVXLAN {
		segment = n.SegmentationID
	}
	return owned(object{
		"id": n.ID, "name": n.Name, "admin_state_up": n.AdminStateUp, "status": n.Status,
		"subnets": texts(rel.subnets[n.ID]), "shared": n.Shared, "router:external": n.External,
		"mtu": n.MTU, "port_security_enabled": n.PortSecurity, "tags": texts(n.Tags),
		"availability_zone_hints": []string{}, "availability_zones": []string{},
		"ipv4_address_scope": nil, "ipv6_address_scope": nil,
		"provider:network_type": n.Type, "provider:physical_network": textOrNil(n.PhysicalNetwork),
		"provider:segmentation_id": segment,
	}, n.ProjectID, n.Standard)
}

// networkParent is what the policy checks of the network of a subnet or
// a port: its owner (network:tenant_id), and whether it is shared, which
// rule:shared reads through the network_id of a subnet or a port as
// Neutron's field check does.
func networkParent(n *trustack.Network) policy.Target {
	if n == nil {
		return nil
	}
	return policy.Target{"network:tenant_id": n.ProjectID, "network:project_id": n.ProjectID, "shared": pyBool(n.Shared)}
}

// networksOf reads the networks of ids that the caller may see, by ID.
func (h *handler) networksOf(ctx context.Context, c network.Caller, ids []string) (map[string]*trustack.Network, error) {
	out := map[string]*trustack.Network{}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	if len(ids) == 1 {
		n, err := h.svc.Network(ctx, c, ids[0])
		if trustack.ErrorCode(err) == trustack.ENOTFOUND {
			return out, nil
		}
		out[ids[0]] = n
		return out, err
	}
	all, err := h.svc.Networks(ctx, c)
	for _, n := range all {
		if _, found := slices.BinarySearch(ids, n.ID); found {
			out[n.ID] = n
		}
	}
	return out, err
}

// notFound returns the error for an ID of a collection that the caller
// may not see, with Neutron's type.
func notFound(reason, format string) func(id string) error {
	return func(id string) error { return trustack.Reasonf(trustack.ENOTFOUND, reason, format, id) }
}

// owned adds the attributes every resource has to obj: its owner, and
// its standard attributes but tags.
func owned(obj object, project string, std trustack.Standard) object {
	obj["tenant_id"], obj["project_id"] = project, project
	obj["description"] = std.Description
	obj["created_at"], obj["updated_at"] = timestamp(std.CreatedAt), timestamp(std.UpdatedAt)
	obj["revision_number"] = int(std.Revision)
	return obj
}

// timestamp writes a time as Neutron's standard attributes do.
func timestamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

// texts returns a list of strings that renders as [] when empty.
func texts(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// textOrNil renders "" as null.
func textOrNil(s string) any {
	if s == "" {
		return nil
	}
	return s
}
