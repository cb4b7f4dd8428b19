package network

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"slices"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/api/openstack"
	"github.com/trustack/trustack/network"
)

type routerSpec = network.RouterSpec

// routerFields are the attributes of routers, with those of the
// ext-gw-mode and extraroute extensions; routes are set on update only.
var routerFields = slices.Concat(
	described(func(s *routerSpec) **string { return &s.Name }, func(s *routerSpec) **string { return &s.Description },
		func(s *routerSpec) **[]string { return &s.Tags }),
	ownedFields(func(s *routerSpec) *string { return &s.ProjectID }),
	readOnly[routerSpec]("status"),
	[]field[routerSpec]{
		boolean("admin_state_up", func(s *routerSpec) **bool { return &s.AdminStateUp }),
		{name: "external_gateway_info", post: true, put: true, policy: true, dflt: "null", subRules: true,
			set: func(s *routerSpec, v json.RawMessage) (err error) {
				s.Gateway, err = parseGateway(v)
				return err
			}},
		{name: "routes", put: true, set: func(s *routerSpec, v json.RawMessage) error {
			routes, err := parseRoutes("routes", v)
			s.Routes = &routes
			return err
		}},
	})

// parseGateway returns a router's gateway: a network, with or without
// source NAT and with the addresses asked for there; null and {} are
// none.
func parseGateway(v json.RawMessage) (*network.GatewaySpec, error) {
	const attr = "external_gateway_info"
	gw := &network.GatewaySpec{}
	var info map[string]json.RawMessage
	if json.Unmarshal(v, &info) != nil {
		return nil, invalidFor(attr, "'%s' is not a dictionary", shown(v))
	}
	if len(info) == 0 {
		return gw, nil
	}
	keys := slices.Sorted(maps.Keys(info))
	_, named := info["network_id"]
	if !named || slices.ContainsFunc(keys, func(k string) bool { return k != "network_id" && k != "enable_snat" && k != "external_fixed_ips" }) {
		return nil, invalidFor(attr, "Validation of dictionary's keys failed. Expected keys: ['network_id'] Provided keys: %s", pyList(keys))
	}
	var err error
	if gw.NetworkID, err = parseUUID(attr, info["network_id"]); err != nil {
		return nil, err
	}
	if snat, ok := info["enable_snat"]; ok {
		b, err := parseBool(snat)
		if err != nil {
			return nil, err
		}
		gw.EnableSNAT = &b
	}
	if ips, ok := info["external_fixed_ips"]; ok {
		if gw.FixedIPs, err = parseFixedIPs(attr, ips); err != nil {
			return nil, err
		}
	}
	return gw, nil
}

// routers is the routers collection.
func (h *handler) routers() *collection[routerSpec, trustack.Router] {
	svc := h.svc
	return &collection[routerSpec, trustack.Router]{
		name: "router", plural: "routers", path: "routers", tag: network.TagRouters, fields: routerFields,
		absent: notFound("RouterNotFound", "Router %s could not be found"),
		get:    svc.Router, list: svc.Routers, create: svc.CreateRouter, update: svc.UpdateRouter, delete: svc.DeleteRouter,
		render: renderRouter,
	}
}

// renderRouter renders a router as Neutron does.
func renderRouter(r *trustack.Router, _ *related) object {
	var gateway object // null, and an object to filters and sorting
	if gw := r.Gateway; gw != nil {
		ips := make([]object, len(gw.FixedIPs))
		for i, ip := range gw.FixedIPs {
			ips[i] = object{"subnet_id": ip.SubnetID, "ip_address": ip.Address.String()}
		}
		gateway = object{"network_id": gw.NetworkID, "enable_snat": gw.EnableSNAT, "external_fixed_ips": ips}
	}
	return owned(object{
		"id": r.ID, "name": r.Name, "admin_state_up": r.AdminStateUp, "status": r.Status,
		"external_gateway_info": gateway, "routes": renderRoutes(r.Routes), "tags": texts(r.Tags),
	}, r.ProjectID, r.Standard)
}

// interfaceAction is the service's add or remove of a router interface.
type interfaceAction func(ctx context.Context, c network.Caller, routerID, subnetID, portID string) (*trustack.Port, error)

// routerInterface serves PUT /routers/{id}/add_router_interface and
// remove_router_interface, whose body names a subnet or a port, under
// the policy's rule of that name; the answer is Neutron's interface
// info: the router, and the port and subnets of the interface.
func (h *handler) routerInterface(routers *collection[routerSpec, trustack.Router], rule string, do interfaceAction) openstack.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		body, err := h.jsonObject(r)
		if err != nil {
			return err
		}
		var ids [2]string // the subnet's and the port's
		for i, key := range []string{"subnet_id", "port_id"} {
			v, ok := body[key]
			if !ok {
				continue
			}
			if json.Unmarshal(v, &ids[i]) != nil || !openstack.IsUUIDHex(ids[i]) {
				return trustack.Reasonf(trustack.EINVALID, "BadRequest", "Bad router request: '%s' is not a valid UUID.", shown(v))
			}
		}
		c := h.caller(r)
		router, v, err := routers.one(h, r, c)
		if err != nil {
			return err
		}
		if err := h.authorize(r, []string{rule}, v.target); err != nil {
			return err
		}
		p, err := do(r.Context(), c, router.ID, ids[0], ids[1])
		if err != nil {
			return err
		}
		subnets := []string{}
		for _, ip := range p.FixedIPs {
			subnets = append(subnets, ip.SubnetID)
		}
		info := object{"id": router.ID, "tenant_id": router.ProjectID, "project_id": router.ProjectID,
			"port_id": p.ID, "network_id": p.NetworkID, "subnet_ids": subnets, "subnet_id": nil}
		if len(p.FixedIPs) > 0 {
			info["subnet_id"] = p.FixedIPs[0].SubnetID
		}
		return reply(w, http.StatusOK, info)
	}
}
