package client

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/flavors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/keypairs"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"

	"github.com/trustack/trustack"
)

// ServerCreate is a request for servers.
type ServerCreate struct {
	Name   string
	Image  string // name or ID
	Flavor string // name or ID
	// KeyName, AvailabilityZone: none if empty.
	KeyName          string
	AvailabilityZone string
	// UserDataFile is a file to pass to the server as user data; none if
	// empty.
	UserDataFile string
	// Properties are metadata, Hints scheduler hints, as KEY=VALUE; a hint
	// given several times is a list.
	Properties []string
	Hints      []string
	// NICs are the server's network interfaces, in order; none for the
	// cloud's choice (a port on the project's one network).
	NICs []NIC
	// SecurityGroups are the names or IDs of the groups its ports go in;
	// none for the project's default group.
	SecurityGroups []string
	// Min and Max are how many servers to create: at least Min (default
	// 1), at most Max (default Min). Several are named NAME-1, NAME-2, ...
	Min, Max int
	// Wait waits until the servers are ACTIVE, and fails if one goes to
	// ERROR.
	Wait bool
}

// NIC is a network interface a new server asks for, as the OpenStack
// CLI's --nic, --network and --port say it: a new port on a network, at
// a fixed IP if not empty, or a port made beforehand; or, alone, Mode
// "auto" or "none" for Nova's networks "auto" (the cloud's choice) and
// "none" (no interface).
type NIC struct {
	Network string // name or ID
	FixedIP string
	Port    string // name or ID
	Mode    string
}

// ParseNIC parses a --nic argument: net-id=NET (a name or ID) with
// v4-fixed-ip=IP or v6-fixed-ip=IP, port-id=PORT, auto or none. It
// returns EINVALID for anything else, for both a network and a port, and
// for an address with a port (which has its own) or of the other IP
// version.
func ParseNIC(arg string) (NIC, error) {
	if arg == "auto" || arg == "none" {
		return NIC{Mode: arg}, nil
	}
	const form = "net-id=NET[,v4-fixed-ip=IP|,v6-fixed-ip=IP], port-id=PORT, auto or none"
	o, err := options("--nic", arg, form, "net-id", "port-id", "v4-fixed-ip", "v6-fixed-ip")
	if err != nil {
		return NIC{}, err
	}
	nic := NIC{Network: o["net-id"], Port: o["port-id"]}
	v4, v6 := o["v4-fixed-ip"], o["v6-fixed-ip"]
	switch {
	case (nic.Network == "") == (nic.Port == ""):
		return NIC{}, trustack.Errorf(trustack.EINVALID, "--nic %q: give net-id or port-id, one of them", arg)
	case v4 != "" && v6 != "":
		return NIC{}, trustack.Errorf(trustack.EINVALID, "--nic %q: give v4-fixed-ip or v6-fixed-ip, not both", arg)
	case nic.Port != "" && v4+v6 != "":
		return NIC{}, trustack.Errorf(trustack.EINVALID, "--nic %q: a fixed IP goes with net-id; a port has its own", arg)
	}
	for _, ip := range []struct {
		key, addr string
		version   int
	}{{"v4-fixed-ip", v4, 4}, {"v6-fixed-ip", v6, 6}} {
		if ip.addr == "" {
			continue
		}
		if a, err := netip.ParseAddr(ip.addr); err != nil || ipVersion(a) != ip.version {
			return NIC{}, trustack.Errorf(trustack.EINVALID, "--nic %q: %s %q is not an IPv%d address", arg, ip.key, ip.addr, ip.version)
		}
		nic.FixedIP = ip.addr
	}
	return nic, nil
}

// nicMode returns the Mode of nics that are one NIC of Mode auto or
// none, and "" for NICs without one. It returns EINVALID for a Mode among
// other NICs.
func nicMode(nics []NIC) (string, error) {
	for _, nic := range nics {
		if nic.Mode != "" && len(nics) > 1 {
			return "", trustack.Errorf(trustack.EINVALID, "--nic %s cannot go with any other --nic, --network or --port", nic.Mode)
		}
	}
	if len(nics) == 1 {
		return nics[0].Mode, nil
	}
	return "", nil
}

// serverNetworks returns the networks of servers.CreateOpts for nics,
// with their networks and ports found by name or ID: nil for none, the
// mode for one NIC of Mode auto or none, else a []servers.Network.
func (c *Client) serverNetworks(ctx context.Context, nics []NIC) (any, error) {
	mode, err := nicMode(nics)
	switch {
	case err != nil:
		return nil, err
	case mode != "":
		return mode, nil
	case len(nics) == 0:
		return nil, nil
	}
	n, err := c.Networking()
	if err != nil {
		return nil, err
	}
	out := make([]servers.Network, len(nics))
	for i, nic := range nics {
		if nic.Port != "" {
			p, err := n.findPort(ctx, nic.Port)
			if err != nil {
				return nil, err
			}
			out[i].Port = p.ID
			continue
		}
		net, err := n.findNetwork(ctx, nic.Network)
		if err != nil {
			return nil, err
		}
		out[i] = servers.Network{UUID: net.ID, FixedIP: nic.FixedIP}
	}
	return out, nil
}

// serverGroups returns the IDs of the security groups refs name, as the
// OpenStack CLI sends them (a name may be the project's and another's);
// nil for none.
func (c *Client) serverGroups(ctx context.Context, refs []string) ([]string, error) {
	if len(refs) == 0 {
		return nil, nil
	}
	n, err := c.Networking()
	if err != nil {
		return nil, err
	}
	return n.groupIDs(ctx, refs)
}

// reservationOpts asks Nova for the reservation ID of a multiple create,
// to find its servers by.
type reservationOpts struct{ servers.CreateOptsBuilder }

func (o reservationOpts) ToServerCreateMap() (map[string]any, error) {
	m, err := o.CreateOptsBuilder.ToServerCreateMap()
	if err == nil {
		m["server"].(map[string]any)["return_reservation_id"] = true
	}
	return m, err
}

// reservationQuery lists the servers of a multiple create, a filter
// gophercloud's ListOpts lacks.
type reservationQuery string

func (q reservationQuery) ToServerListQuery() (string, error) {
	return "?" + url.Values{"reservation_id": {string(q)}}.Encode(), nil
}

// CreateServer creates the servers req asks for and shows the server (or
// lists the servers, if several), once ACTIVE if req.Wait. It returns
// EINVALID for a bad request, ENOTFOUND for an unknown image, flavor,
// network, port or security group, and the code of the compute API's
// refusal.
func (c *Client) CreateServer(ctx context.Context, req ServerCreate) error {
	minCount, maxCount := max(req.Min, 1), req.Max
	if maxCount == 0 {
		maxCount = minCount
	}
	if minCount > maxCount {
		return trustack.Errorf(trustack.EINVALID, "--min %d is more than --max %d", req.Min, req.Max)
	}
	props, err := keyValues("--property", req.Properties)
	if err != nil {
		return err
	}
	hints, err := keyValues("--hint", req.Hints)
	if err != nil {
		return err
	}
	var userData []byte
	if req.UserDataFile != "" {
		b, err := os.ReadFile(req.UserDataFile)
		if err != nil {
			return trustack.Errorf(trustack.EINVALID, "--user-data: %v", err)
		}
		// Encoded here: gophercloud would send a file that happens to be
		// valid base64 as it is, and the server would decode it.
		userData = []byte(base64.StdEncoding.EncodeToString(b))
	}
	img, err := c.findImage(ctx, req.Image)
	if err != nil {
		return err
	}
	flavor, err := c.findFlavor(ctx, req.Flavor)
	if err != nil {
		return err
	}
	nets, err := c.serverNetworks(ctx, req.NICs)
	if err != nil {
		return err
	}
	groupIDs, err := c.serverGroups(ctx, req.SecurityGroups)
	if err != nil {
		return err
	}
	opts := servers.CreateOpts{
		Name: req.Name, ImageRef: img.ID, FlavorRef: flavor.ID, AvailabilityZone: req.AvailabilityZone,
		UserData: userData, Metadata: last(props), Networks: nets, SecurityGroups: groupIDs,
	}
	if minCount > 1 || maxCount > 1 {
		opts.Min, opts.Max = minCount, maxCount
	}
	var build servers.CreateOptsBuilder = keypairs.CreateOptsExt{CreateOptsBuilder: opts, KeyName: req.KeyName}
	if maxCount > 1 {
		build = reservationOpts{build}
	}
	hintOpts := servers.SchedulerHintOpts{AdditionalProperties: map[string]any{}}
	for k, v := range hints {
		if len(v) == 1 {
			hintOpts.AdditionalProperties[k] = v[0]
		} else {
			hintOpts.AdditionalProperties[k] = v
		}
	}
	res := servers.Create(ctx, c.compute, build, hintOpts)
	if res.Err != nil {
		return apiError(res.Err)
	}
	var body struct {
		ReservationID string `json:"reservation_id"`
		Server        struct {
			ID        string `json:"id"`
			AdminPass string `json:"adminPass"`
		} `json:"server"`
	}
	if err := res.Result.ExtractInto(&body); err != nil { // the whole body: server or reservation_id
		return fmt.Errorf("read the created server: %w", err)
	}
	var ids []string
	if body.ReservationID == "" {
		ids = []string{body.Server.ID}
	} else if ids, err = c.reservation(ctx, body.ReservationID); err != nil {
		return err
	}
	if req.Wait {
		for _, id := range ids {
			if err := c.waitActive(ctx, id); err != nil {
				return err
			}
		}
	}
	if len(ids) != 1 {
		return c.listServers(ctx, reservationQuery(body.ReservationID))
	}
	s, err := c.server(ctx, ids[0])
	if err != nil {
		return err
	}
	r := c.serverRecord(ctx, s)
	if body.Server.AdminPass != "" {
		r = append(r, field{"admin_pass", body.Server.AdminPass})
	}
	return c.show(r)
}

// last keeps the last value of each key.
func last(m map[string][]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v[len(v)-1]
	}
	return out
}

// reservation returns the IDs of the servers of a multiple create.
func (c *Client) reservation(ctx context.Context, id string) ([]string, error) {
	page, err := servers.ListSimple(c.compute, reservationQuery(id)).AllPages(ctx)
	if err != nil {
		return nil, apiError(err)
	}
	list, err := servers.ExtractServers(page)
	if err != nil {
		return nil, fmt.Errorf("read the servers of reservation %s: %w", id, err)
	}
	ids := make([]string, len(list))
	for i, s := range list {
		ids[i] = s.ID
	}
	return ids, nil
}

// server returns the server with an ID.
func (c *Client) server(ctx context.Context, id string) (*servers.Server, error) {
	s, err := servers.Get(ctx, c.compute, id).Extract()
	return s, apiError(err)
}

// findServer returns the server ref names, by ID or else by name.
func (c *Client) findServer(ctx context.Context, ref string) (*servers.Server, error) {
	s, err := servers.Get(ctx, c.compute, ref).Extract()
	if !notFound(err) {
		return s, apiError(err)
	}
	page, err := servers.List(c.compute, servers.ListOpts{Name: exactName(ref)}).AllPages(ctx)
	if err != nil {
		return nil, apiError(err)
	}
	list, err := servers.ExtractServers(page)
	if err != nil {
		return nil, fmt.Errorf("read servers: %w", err)
	}
	list = slices.DeleteFunc(list, func(s servers.Server) bool { return s.Name != ref })
	return pick("server", ref, list)
}

// serverNames maps the IDs of the project's servers to their names.
func (c *Client) serverNames(ctx context.Context) (map[string]string, error) {
	list, err := all(ctx, "servers", servers.ListSimple(c.compute, nil), servers.ExtractServers)
	if err != nil {
		return nil, err
	}
	names := make(map[string]string, len(list))
	for _, s := range list {
		names[s.ID] = s.Name
	}
	return names, nil
}

// waitActive waits until a server is ACTIVE, and fails with its fault if
// it goes to ERROR.
func (c *Client) waitActive(ctx context.Context, id string) error {
	return c.wait(ctx, func() (bool, error) {
		s, err := c.server(ctx, id)
		if err != nil {
			return false, err
		}
		switch s.Status {
		case "ACTIVE":
			return true, nil
		case "ERROR":
			return false, faultError(s, "is in ERROR")
		}
		return false, nil
	})
}

// faultError is the error of a server that did not do what was asked,
// with the code and message of its fault if it has one (ECONFLICT if not).
func faultError(s *servers.Server, what string) error {
	msg := fmt.Sprintf("server %s (%s) %s", s.Name, s.ID, what)
	if s.Fault.Message == "" {
		return trustack.Errorf(trustack.ECONFLICT, "%s", msg)
	}
	code, ok := statusCodes[s.Fault.Code]
	if !ok {
		code = trustack.EINTERNAL
	}
	return trustack.Errorf(code, "%s: %s", msg, s.Fault.Message)
}

// ShowServer shows the server named (or with the ID) ref.
func (c *Client) ShowServer(ctx context.Context, ref string) error {
	s, err := c.findServer(ctx, ref)
	if err != nil {
		return err
	}
	return c.show(c.serverRecord(ctx, s))
}

// powerStates are the OpenStack CLI's names of Nova's power states.
var powerStates = map[servers.PowerState]string{
	servers.NOSTATE: "NOSTATE", servers.RUNNING: "Running", servers.PAUSED: "Paused",
	servers.SHUTDOWN: "Shutdown", servers.CRASHED: "Crashed", servers.SUSPENDED: "Suspended",
}

// serverRecord is what `server show` shows; it looks up the names of the
// flavor and the image (just the ID of one that cannot be found).
func (c *Client) serverRecord(ctx context.Context, s *servers.Server) record {
	flavorRef := named{ID: fmt.Sprint(s.Flavor["id"])}
	if f, err := flavors.Get(ctx, c.compute, flavorRef.ID).Extract(); err == nil {
		flavorRef.Name = f.Name
	}
	var imageRef any
	if id, ok := s.Image["id"].(string); ok {
		ref := named{ID: id}
		if img, err := images.Get(ctx, c.image, id).Extract(); err == nil {
			ref.Name = img.Name
		}
		imageRef = ref
	}
	r := record{
		{"id", s.ID},
		{"name", s.Name},
		{"status", s.Status},
		{"task_state", nullable(s.TaskState)},
		{"vm_state", s.VmState},
		{"power_state", powerStates[s.PowerState]},
		{"flavor", flavorRef},
		{"image", imageRef},
		{"key_name", nullable(s.KeyName)},
		{"availability_zone", s.AvailabilityZone},
	}
	if s.Host != "" { // shown to admins only
		r = append(r, field{"host", s.Host})
	}
	r = append(r, record{
		{"addresses", addressesOf(s.Addresses)},
		{"properties", s.Metadata},
		{"created", stamp(s.Created)},
		{"updated", stamp(s.Updated)},
		{"launched_at", stamp(s.LaunchedAt)},
		{"project_id", s.TenantID},
		{"user_id", s.UserID},
		{"host_id", s.HostID},
	}...)
	if s.Fault.Message != "" {
		r = append(r, field{"fault", s.Fault.Message})
	}
	return r
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func stamp(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(time.RFC3339)
}

// addresses are a server's addresses by network name, fixed before
// floating as Nova lists them. They show as the OpenStack CLI shows them:
// in tables "net1=10.0.0.3, 172.24.4.9; net2=...", in JSON an object of
// lists.
type addresses map[string][]string

func (a addresses) String() string {
	var parts []string
	for _, net := range slices.Sorted(maps.Keys(a)) {
		parts = append(parts, net+"="+strings.Join(a[net], ", "))
	}
	return strings.Join(parts, "; ")
}

// addressesOf reads Nova's addresses of a server: {"net1": [{"addr"}, ...]}.
func addressesOf(nova map[string]any) addresses {
	out := addresses{}
	for net, v := range nova {
		list, _ := v.([]any)
		ips := []string{}
		for _, a := range list {
			if m, ok := a.(map[string]any); ok {
				ips = append(ips, fmt.Sprint(m["addr"]))
			}
		}
		out[net] = ips
	}
	return out
}

// ListServers lists the project's servers.
func (c *Client) ListServers(ctx context.Context) error {
	return c.listServers(ctx, servers.ListOpts{})
}

func (c *Client) listServers(ctx context.Context, q servers.ListOptsBuilder) error {
	page, err := servers.List(c.compute, q).AllPages(ctx)
	if err != nil {
		return apiError(err)
	}
	list, err := servers.ExtractServers(page)
	if err != nil {
		return fmt.Errorf("read servers: %w", err)
	}
	flavorNames, imageNames := map[string]string{}, map[string]string{}
	if len(list) > 0 {
		if flavorNames, err = c.flavorNames(ctx); err != nil {
			return err
		}
		if imageNames, err = c.imageNames(ctx); err != nil {
			return err
		}
	}
	t := &table{columns: []string{"ID", "Name", "Status", "Networks", "Image", "Flavor"}}
	for _, s := range list {
		imageID, _ := s.Image["id"].(string)
		flavorID := fmt.Sprint(s.Flavor["id"])
		t.add(s.ID, s.Name, s.Status, addressesOf(s.Addresses), or(imageNames[imageID], imageID), or(flavorNames[flavorID], flavorID))
	}
	return c.list(t)
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// DeleteServers deletes the servers refs name, and waits until they are
// gone if wait. It tries every server and returns the errors of those it
// could not delete.
func (c *Client) DeleteServers(ctx context.Context, refs []string, wait bool) error {
	var errs []error
	var deleted []string
	for _, ref := range refs {
		s, err := c.findServer(ctx, ref)
		if err == nil {
			err = apiError(servers.Delete(ctx, c.compute, s.ID).ExtractErr())
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("delete server %s: %w", ref, err))
			continue
		}
		deleted = append(deleted, s.ID)
	}
	if wait {
		for _, id := range deleted {
			err := c.wait(ctx, func() (bool, error) {
				s, err := servers.Get(ctx, c.compute, id).Extract()
				switch {
				case notFound(err):
					return true, nil
				case err != nil:
					return false, apiError(err)
				case s.Status == "ERROR":
					return false, faultError(s, "is in ERROR")
				}
				return false, nil
			})
			if err != nil {
				errs = append(errs, fmt.Errorf("wait for server %s to go: %w", id, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Action is a server action.
type Action string

// Server actions.
const (
	Pause      Action = "pause"
	Unpause    Action = "unpause"
	Suspend    Action = "suspend"
	Resume     Action = "resume"
	Stop       Action = "stop"
	Start      Action = "start"
	Lock       Action = "lock"
	Unlock     Action = "unlock"
	Reboot     Action = "reboot"
	HardReboot Action = "reboot --hard"
)

// actions are what each action calls and the status it leads to.
var actions = map[Action]struct {
	do     func(context.Context, *gophercloud.ServiceClient, string) error
	status string // "" for an action done at once
}{
	Pause: {func(ctx context.Context, sc *gophercloud.ServiceClient, id string) error {
		return servers.Pause(ctx, sc, id).ExtractErr()
	}, "PAUSED"},
	Unpause: {func(ctx context.Context, sc *gophercloud.ServiceClient, id string) error {
		return servers.Unpause(ctx, sc, id).ExtractErr()
	}, "ACTIVE"},
	Suspend: {func(ctx context.Context, sc *gophercloud.ServiceClient, id string) error {
		return servers.Suspend(ctx, sc, id).ExtractErr()
	}, "SUSPENDED"},
	Resume: {func(ctx context.Context, sc *gophercloud.ServiceClient, id string) error {
		return servers.Resume(ctx, sc, id).ExtractErr()
	}, "ACTIVE"},
	Stop: {func(ctx context.Context, sc *gophercloud.ServiceClient, id string) error {
		return servers.Stop(ctx, sc, id).ExtractErr()
	}, "SHUTOFF"},
	Start: {func(ctx context.Context, sc *gophercloud.ServiceClient, id string) error {
		return servers.Start(ctx, sc, id).ExtractErr()
	}, "ACTIVE"},
	Lock: {func(ctx context.Context, sc *gophercloud.ServiceClient, id string) error {
		return servers.Lock(ctx, sc, id).ExtractErr()
	}, ""},
	Unlock: {func(ctx context.Context, sc *gophercloud.ServiceClient, id string) error {
		return servers.Unlock(ctx, sc, id).ExtractErr()
	}, ""},
	Reboot: {func(ctx context.Context, sc *gophercloud.ServiceClient, id string) error {
		return servers.Reboot(ctx, sc, id, servers.RebootOpts{Type: servers.SoftReboot}).ExtractErr()
	}, "ACTIVE"},
	HardReboot: {func(ctx context.Context, sc *gophercloud.ServiceClient, id string) error {
		return servers.Reboot(ctx, sc, id, servers.RebootOpts{Type: servers.HardReboot}).ExtractErr()
	}, "ACTIVE"},
}

// Act does an action on the server ref names, and if wait, waits until
// the server has done it; it fails if the server did not reach the
// action's status. Nova refuses an action the server's state does not
// allow with ECONFLICT.
func (c *Client) Act(ctx context.Context, a Action, ref string, wait bool) error {
	act, ok := actions[a]
	if !ok {
		return trustack.Errorf(trustack.EINVALID, "unknown server action %q", a)
	}
	s, err := c.findServer(ctx, ref)
	if err != nil {
		return err
	}
	if err := act.do(ctx, c.compute, s.ID); err != nil {
		return apiError(err)
	}
	if !wait || act.status == "" {
		return nil
	}
	return c.wait(ctx, func() (bool, error) {
		cur, err := c.server(ctx, s.ID)
		switch {
		case err != nil:
			return false, err
		case cur.TaskState != "":
			return false, nil
		case cur.Status == act.status:
			return true, nil
		}
		return false, faultError(cur, fmt.Sprintf("is %s after %s, not %s", cur.Status, a, act.status))
	})
}

// ConsoleOutput writes the console of the server ref names: its last
// lines, or all of it if lines is 0.
func (c *Client) ConsoleOutput(ctx context.Context, ref string, lines int) error {
	if lines < 0 {
		return trustack.Errorf(trustack.EINVALID, "--lines %d: want a positive number", lines)
	}
	s, err := c.findServer(ctx, ref)
	if err != nil {
		return err
	}
	// Nova splits the log at newlines and counts the empty string after
	// the last one as a line: ask for one more, and count here.
	length := 0
	if lines > 0 {
		length = lines + 1
	}
	out, err := servers.ShowConsoleOutput(ctx, c.compute, s.ID, servers.ShowConsoleOutputOpts{Length: length}).Extract()
	if err != nil {
		return apiError(err)
	}
	if out == "" {
		return nil
	}
	list := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if lines > 0 && len(list) > lines {
		list = list[len(list)-lines:]
	}
	_, err = fmt.Fprintln(c.out.Out, strings.Join(list, "\n"))
	return err
}

// SnapshotServer makes an image of the server ref names and shows it,
// once active if wait.
func (c *Client) SnapshotServer(ctx context.Context, ref, name string, wait bool) error {
	s, err := c.findServer(ctx, ref)
	if err != nil {
		return err
	}
	id, err := servers.CreateImage(ctx, c.compute, s.ID, servers.CreateImageOpts{Name: name}).ExtractImageID()
	if err != nil {
		return apiError(err)
	}
	if wait {
		err := c.wait(ctx, func() (bool, error) {
			img, err := images.Get(ctx, c.image, id).Extract()
			switch {
			case notFound(err):
				return false, trustack.Errorf(trustack.ECONFLICT, "the snapshot of server %s failed: its image %s is gone", s.Name, id)
			case err != nil:
				return false, apiError(err)
			case img.Status == images.ImageStatusActive:
				return true, nil
			case img.Status == images.ImageStatusKilled || img.Status == images.ImageStatusDeleted:
				return false, trustack.Errorf(trustack.ECONFLICT, "the snapshot of server %s failed: its image %s is %s", s.Name, id, img.Status)
			}
			return false, nil
		})
		if err != nil {
			return err
		}
	}
	return c.ShowImage(ctx, id)
}
