package qemu

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"

	"github.com/trustack/trustack/wire"
)

// metaData is openstack/latest/meta_data.json of a config drive, with the
// fields cloud-init reads, as Nova writes them.
type metaData struct {
	UUID       string            `json:"uuid"`
	Name       string            `json:"name"`
	Hostname   string            `json:"hostname"`
	ProjectID  string            `json:"project_id"`
	Meta       map[string]string `json:"meta"`
	PublicKeys map[string]string `json:"public_keys,omitempty"`
	Keys       []metaKey         `json:"keys,omitempty"`
}

type metaKey struct {
	Name string `json:"name"`
	Type string `json:"type"`
	Data string `json:"data"`
}

// networkData is openstack/latest/network_data.json, as Nova writes it:
// a link per NIC, a network per address of each (DHCP-served ones by
// their type only), and the name servers.
type networkData struct {
	Links    []ndLink    `json:"links"`
	Networks []ndNetwork `json:"networks"`
	Services []ndService `json:"services"`
}

type ndLink struct {
	ID    string `json:"id"`
	VIFID string `json:"vif_id"`
	Type  string `json:"type"`
	MTU   int    `json:"mtu"`
	MAC   string `json:"ethernet_mac_address"`
}

type ndNetwork struct {
	ID        string      `json:"id"`
	Type      string      `json:"type"`
	Link      string      `json:"link"`
	NetworkID string      `json:"network_id"`
	Address   string      `json:"ip_address,omitempty"`
	Netmask   string      `json:"netmask,omitempty"`
	Routes    []ndRoute   `json:"routes,omitempty"`
	Services  []ndService `json:"services,omitempty"`
}

type ndRoute struct {
	Network string `json:"network"`
	Netmask string `json:"netmask"`
	Gateway string `json:"gateway"`
}

type ndService struct {
	Type    string `json:"type"`
	Address string `json:"address"`
}

// newNetworkData describes a server's ports for cloud-init.
func newNetworkData(ports []wire.Port) networkData {
	nd := networkData{Links: []ndLink{}, Networks: []ndNetwork{}, Services: []ndService{}}
	for _, p := range ports {
		link := wire.TapName(p.ID)
		nd.Links = append(nd.Links, ndLink{ID: link, VIFID: p.ID, Type: "tap", MTU: p.Segment.MTU, MAC: p.MAC})
		for _, a := range p.Addresses {
			n := ndNetwork{ID: fmt.Sprintf("network%d", len(nd.Networks)), Link: link, NetworkID: p.NetworkID}
			addr, err := netip.ParseAddr(a.Address)
			prefix, perr := netip.ParsePrefix(a.CIDR)
			if err != nil || perr != nil {
				continue
			}
			version := "ipv4"
			if addr.Is6() {
				version = "ipv6"
			}
			if a.DHCP && addr.Is4() {
				n.Type = version + "_dhcp"
				nd.Networks = append(nd.Networks, n)
				continue
			}
			n.Type, n.Address, n.Netmask = version, addr.String(), netmask(prefix)
			if a.Gateway != "" {
				any := "0.0.0.0"
				if addr.Is6() {
					any = "::"
				}
				n.Routes = append(n.Routes, ndRoute{Network: any, Netmask: any, Gateway: a.Gateway})
			}
			for _, r := range a.HostRoutes {
				if dst, err := netip.ParsePrefix(r.Destination); err == nil {
					n.Routes = append(n.Routes, ndRoute{Network: dst.Addr().String(), Netmask: netmask(dst), Gateway: r.NextHop})
				}
			}
			for _, d := range a.DNS {
				n.Services = append(n.Services, ndService{Type: "dns", Address: d})
				if !slices.Contains(nd.Services, ndService{Type: "dns", Address: d}) {
					nd.Services = append(nd.Services, ndService{Type: "dns", Address: d})
				}
			}
			nd.Networks = append(nd.Networks, n)
		}
	}
	return nd
}

// netmask renders a prefix's mask as an address.
func netmask(p netip.Prefix) string {
	b := make([]byte, p.Addr().BitLen()/8)
	for i := 0; i < p.Bits(); i++ {
		b[i/8] |= 1 << (7 - i%8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a.String()
}

// writeConfigDrive makes the server's config drive at path: an ISO 9660
// image labelled config-2 holding openstack/latest/meta_data.json,
// network_data.json and, if the server has any, user_data, built with
// genisoimage as Nova does.
func writeConfigDrive(ctx context.Context, spec wire.Spec, path string) error {
	root, err := os.MkdirTemp(filepath.Dir(path), ".configdrive-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	latest := filepath.Join(root, "openstack", "latest")
	if err := os.MkdirAll(latest, 0o755); err != nil {
		return err
	}
	md := metaData{UUID: spec.ServerID, Name: spec.Name, Hostname: spec.Hostname, ProjectID: spec.ProjectID, Meta: spec.Metadata}
	if md.Meta == nil {
		md.Meta = map[string]string{}
	}
	if spec.KeyData != "" {
		md.PublicKeys = map[string]string{spec.KeyName: spec.KeyData}
		md.Keys = []metaKey{{Name: spec.KeyName, Type: "ssh", Data: spec.KeyData}}
	}
	b, err := json.Marshal(md)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(latest, "meta_data.json"), b, 0o644); err != nil {
		return err
	}
	if b, err = json.Marshal(newNetworkData(spec.Ports)); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(latest, "network_data.json"), b, 0o644); err != nil {
		return err
	}
	if spec.UserData != "" {
		data, err := base64.StdEncoding.DecodeString(spec.UserData)
		if err != nil {
			return fmt.Errorf("user data: %w", err)
		}
		if err := os.WriteFile(filepath.Join(latest, "user_data"), data, 0o644); err != nil {
			return err
		}
	}
	out, err := exec.CommandContext(ctx, "genisoimage", "-o", path, "-V", "config-2", "-J", "-r", "-quiet", root).CombinedOutput()
	if err != nil {
		return fmt.Errorf("genisoimage: %v: %s", err, out)
	}
	return nil
}
