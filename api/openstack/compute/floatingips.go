package compute

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/netip"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/api/openstack"
	"github.com/trustack/trustack/compute"
	"github.com/trustack/trustack/network"
)

// Nova's 2.1 proxy of Neutron's floating IPs: os-floating-ips, the pools
// they come from (the external networks), and the server actions that
// associate them.

// poolName names a network as a pool of floating IPs: by its name, or its
// ID if it has none.
func poolName(n *trustack.Network) string {
	if n.Name != "" {
		return n.Name
	}
	return n.ID
}

// renderFloatingIPs renders floating IPs as Nova's proxy does: the pool
// each comes from, and the fixed address and server (instance_id) of the
// port it maps to, null while it maps to none.
func (h *handler) renderFloatingIPs(ctx context.Context, c network.Caller, fips []*trustack.FloatingIP) ([]object, error) {
	nets, err := h.net.Networks(ctx, c)
	if err != nil {
		return nil, err
	}
	pools := map[string]string{}
	for _, n := range nets {
		pools[n.ID] = poolName(n)
	}
	var portIDs []string
	for _, f := range fips {
		if f.PortID != "" {
			portIDs = append(portIDs, f.PortID)
		}
	}
	servers := map[string]string{}
	if len(portIDs) > 0 {
		ports, err := h.net.Ports(ctx, c, trustack.PortFilter{IDs: portIDs})
		if err != nil {
			return nil, err
		}
		for _, p := range ports {
			servers[p.ID] = p.DeviceID
		}
	}
	out := make([]object, len(fips))
	for i, f := range fips {
		o := object{"id": f.ID, "ip": f.Address.String(), "pool": nullIfEmpty(pools[f.NetworkID]), "fixed_ip": nil, "instance_id": nil}
		if f.PortID != "" {
			o["fixed_ip"], o["instance_id"] = f.FixedAddress.String(), nullIfEmpty(servers[f.PortID])
		}
		out[i] = o
	}
	return out, nil
}

// renderFloatingIP answers with one floating IP.
func (h *handler) renderFloatingIP(w http.ResponseWriter, r *http.Request, c network.Caller, f *trustack.FloatingIP) error {
	out, err := h.renderFloatingIPs(r.Context(), c, []*trustack.FloatingIP{f})
	if err != nil {
		return err
	}
	return ok(w, object{"floating_ip": out[0]})
}

// listFloatingIPs lists the floating IPs of the caller's project alone,
// whoever the caller is, as Nova's proxy does.
func (h *handler) listFloatingIPs(w http.ResponseWriter, r *http.Request) error {
	c, err := h.netCallerFor(r, "os_compute_api:os-floating-ips:list")
	if err != nil {
		return err
	}
	c.Admin = false
	fips, err := h.net.FloatingIPs(r.Context(), c)
	if err != nil {
		return err
	}
	out, err := h.renderFloatingIPs(r.Context(), c, fips)
	if err != nil {
		return err
	}
	return collection(w, "floating_ips", out)
}

// floatingIP returns the floating IP of the request's path, after
// checking rule.
func (h *handler) floatingIP(r *http.Request, rule string) (network.Caller, *trustack.FloatingIP, error) {
	c, err := h.netCallerFor(r, rule)
	if err != nil {
		return c, nil, err
	}
	id := r.PathValue("id")
	var f *trustack.FloatingIP
	if openstack.IsUUIDHex(id) {
		f, err = h.net.FloatingIP(r.Context(), c, id)
	}
	if f == nil && (err == nil || trustack.ErrorCode(err) == trustack.ENOTFOUND) {
		err = trustack.Errorf(trustack.ENOTFOUND, "Floating IP not found for ID %s", id)
	}
	return c, f, err
}

func (h *handler) showFloatingIP(w http.ResponseWriter, r *http.Request) error {
	c, f, err := h.floatingIP(r, "os_compute_api:os-floating-ips:show")
	if err != nil {
		return err
	}
	return h.renderFloatingIP(w, r, c, f)
}

func (h *handler) deleteFloatingIP(w http.ResponseWriter, r *http.Request) error {
	c, f, err := h.floatingIP(r, "os_compute_api:os-floating-ips:delete")
	if err != nil {
		return err
	}
	if err := h.net.DeleteFloatingIP(r.Context(), c, f.ID); err != nil {
		return err
	}
	return accepted(w)
}

// pools returns the external networks the caller sees named pool (by
// name or ID), or all of them for "".
func (h *handler) pools(ctx context.Context, c network.Caller, pool string) ([]*trustack.Network, error) {
	nets, err := h.net.Networks(ctx, c)
	if err != nil {
		return nil, err
	}
	var out []*trustack.Network
	for _, n := range nets {
		if n.External && (pool == "" || n.ID == pool || n.Name == pool) {
			out = append(out, n)
		}
	}
	return out, nil
}

// createFloatingIP allocates a floating IP from the pool named, or from
// the cloud's only one if none is.
func (h *handler) createFloatingIP(w http.ResponseWriter, r *http.Request) error {
	c, err := h.netCallerFor(r, "os_compute_api:os-floating-ips:create")
	if err != nil {
		return err
	}
	raw, err := h.dec.Body(r)
	if err != nil {
		return err
	}
	var body struct {
		Pool *string `json:"pool"`
	}
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := openstack.Unmarshal(raw, &body); err != nil {
			return err
		}
	}
	pool := ""
	if body.Pool != nil {
		pool = *body.Pool
	}
	pools, err := h.pools(r.Context(), c, pool)
	switch {
	case err != nil:
		return err
	case len(pools) == 0:
		return trustack.Errorf(trustack.ENOTFOUND, "Floating IP pool not found.")
	case len(pools) > 1:
		return trustack.Errorf(trustack.ECONFLICT, "Multiple floating IP pools matches found for name '%s'", pool)
	}
	f, err := h.net.CreateFloatingIP(r.Context(), c, network.FloatingIPSpec{NetworkID: pools[0].ID})
	if trustack.ErrorReason(err) == "IpAddressGenerationFailure" {
		return trustack.Errorf(trustack.ENOTFOUND, "No more floating IPs in pool %s.", poolName(pools[0]))
	}
	if err != nil {
		return err
	}
	return h.renderFloatingIP(w, r, c, f)
}

func (h *handler) listFloatingIPPools(w http.ResponseWriter, r *http.Request) error {
	c, err := h.netCallerFor(r, "os_compute_api:os-floating-ip-pools")
	if err != nil {
		return err
	}
	pools, err := h.pools(r.Context(), c, "")
	if err != nil {
		return err
	}
	out := make([]object, len(pools))
	for i, n := range pools {
		out[i] = object{"name": poolName(n)}
	}
	return collection(w, "floating_ip_pools", out)
}

// addressArgs reads the arguments of addFloatingIp and removeFloatingIp:
// the floating address, and for addFloatingIp optionally the fixed one.
func addressArgs(action string, raw json.RawMessage) (floating, fixed netip.Addr, err error) {
	var a struct {
		Address      *string `json:"address"`
		FixedAddress *string `json:"fixed_address"`
	}
	if err := openstack.UnmarshalField(raw, action, &a); err != nil {
		return floating, fixed, err
	}
	if a.Address == nil {
		return floating, fixed, invalid("address", "'address' is a required property.")
	}
	for _, f := range []struct {
		name string
		v    *string
		dst  *netip.Addr
	}{{"address", a.Address, &floating}, {"fixed_address", a.FixedAddress, &fixed}} {
		if f.v == nil {
			continue
		}
		if *f.dst, err = netip.ParseAddr(*f.v); err != nil {
			return floating, fixed, invalid(f.name, "Value: %s. %q is not a 'ip-address'", *f.v, *f.v)
		}
	}
	return floating, fixed, nil
}

// floatingIPByAddress returns the floating IP of an address the caller
// sees.
func (h *handler) floatingIPByAddress(ctx context.Context, c network.Caller, addr netip.Addr) (*trustack.FloatingIP, error) {
	fips, err := h.net.FloatingIPs(ctx, c)
	if err != nil {
		return nil, err
	}
	for _, f := range fips {
		if f.Address == addr {
			return f, nil
		}
	}
	return nil, trustack.Errorf(trustack.ENOTFOUND, "floating IP not found")
}

// addFloatingIP associates a floating IP with the server, as Nova's 2.1
// proxy does: with the fixed address asked for, or with the first IPv4
// address of the first of the server's ports that a router joins to the
// floating IP's network.
func (h *handler) addFloatingIP(w http.ResponseWriter, r *http.Request, c compute.Caller, s *trustack.Server, args json.RawMessage) error {
	floating, fixed, err := addressArgs("addFloatingIp", args)
	if err != nil {
		return err
	}
	ports, err := h.portsOf(r.Context(), s)
	if err != nil {
		return err
	}
	type target struct {
		port string
		addr netip.Addr
	}
	var targets []target
	for _, p := range ports {
		for _, ip := range p.FixedIPs {
			if fixed.IsValid() && ip.Address == fixed || !fixed.IsValid() && ip.Address.Is4() {
				targets = append(targets, target{p.ID, ip.Address})
				break
			}
		}
	}
	if len(targets) == 0 {
		switch {
		case len(ports) == 0:
			return trustack.Errorf(trustack.EINVALID, "No fixed IPs associated to instance")
		case fixed.IsValid():
			return trustack.Errorf(trustack.EINVALID, "Specified fixed address not assigned to instance")
		}
		return trustack.Errorf(trustack.EINVALID, "Unable to associate floating IP %s to any fixed IPs for instance %s. Instance has no fixed IPv4 addresses to associate.", floating, s.ID)
	}
	nc := netCaller(c)
	f, err := h.floatingIPByAddress(r.Context(), nc, floating)
	if err != nil {
		return err
	}
	var t target
	for _, t = range targets {
		_, err = h.net.UpdateFloatingIP(r.Context(), nc, f.ID, network.FloatingIPSpec{PortID: &t.port, FixedAddress: t.addr})
		if trustack.ErrorReason(err) != "ExternalGatewayForFloatingIPNotFound" {
			break
		}
	}
	switch trustack.ErrorCode(err) {
	case "":
		return accepted(w)
	case trustack.EFORBIDDEN, trustack.EINTERNAL, trustack.EUNAVAILABLE:
		return err
	}
	// As Nova: whatever the networking service refuses is a bad request.
	return trustack.Errorf(trustack.EINVALID, "Unable to associate floating IP %s to fixed IP %s for instance %s. Error: %s",
		floating, t.addr, s.ID, trustack.ErrorMessage(err))
}

// removeFloatingIP disassociates a floating IP from the server; one that
// maps to another server's port, or to none, is ECONFLICT.
func (h *handler) removeFloatingIP(w http.ResponseWriter, r *http.Request, c compute.Caller, s *trustack.Server, args json.RawMessage) error {
	floating, _, err := addressArgs("removeFloatingIp", args)
	if err != nil {
		return err
	}
	ports, err := h.portsOf(r.Context(), s)
	if err != nil {
		return err
	}
	nc := netCaller(c)
	f, err := h.floatingIPByAddress(r.Context(), nc, floating)
	if err != nil {
		return err
	}
	mine := false
	for _, p := range ports {
		mine = mine || p.ID == f.PortID
	}
	if !mine {
		return trustack.Errorf(trustack.ECONFLICT, "Floating IP %s is not associated with instance %s.", floating, s.ID)
	}
	none := ""
	if _, err := h.net.UpdateFloatingIP(r.Context(), nc, f.ID, network.FloatingIPSpec{PortID: &none}); err != nil {
		return err
	}
	return accepted(w)
}
