// Package metadata makes the documents a guest learns about itself from,
// as Nova serves them on a config drive and from its metadata service at
// 169.254.169.254: OpenStack's openstack/latest/meta_data.json,
// network_data.json, vendor_data.json and user_data, and the instance ID,
// host name, addresses and keys in EC2's latest/meta-data, all made from
// the spec a server's host gets (wire.Spec), so that both say the same.
package metadata

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/trustack/trustack"
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

// OpenStack returns the files of a config drive's openstack/latest, by
// name: meta_data.json, network_data.json, vendor_data.json and, if the
// server has any, user_data.
func OpenStack(spec wire.Spec) (map[string][]byte, error) {
	md := metaData{UUID: spec.ServerID, Name: spec.Name, Hostname: spec.Hostname, ProjectID: spec.ProjectID, Meta: spec.Metadata}
	if md.Meta == nil {
		md.Meta = map[string]string{}
	}
	if spec.KeyData != "" {
		md.PublicKeys = map[string]string{spec.KeyName: spec.KeyData}
		md.Keys = []metaKey{{Name: spec.KeyName, Type: "ssh", Data: spec.KeyData}}
	}
	files := map[string][]byte{"vendor_data.json": []byte("{}")}
	var err error
	if files["meta_data.json"], err = json.Marshal(md); err != nil {
		return nil, err
	}
	if files["network_data.json"], err = json.Marshal(newNetworkData(spec.Ports)); err != nil {
		return nil, err
	}
	if spec.UserData != "" {
		if files["user_data"], err = base64.StdEncoding.DecodeString(spec.UserData); err != nil {
			return nil, fmt.Errorf("user data: %w", err)
		}
	}
	return files, nil
}

// Lookup answers a guest's request to the metadata service for path, as
// Nova's does: the OpenStack tree (/openstack, /openstack/latest and its
// files) and EC2's (/latest/meta-data/ and its keys, /latest/user-data);
// a directory lists what it holds, one name a line. ENOTFOUND for any
// other path.
func Lookup(spec wire.Spec, path string) ([]byte, error) {
	files, err := OpenStack(spec)
	if err != nil {
		return nil, err
	}
	ec2 := map[string]string{"instance-id": spec.ServerID, "hostname": spec.Hostname, "local-hostname": spec.Hostname,
		"public-hostname": spec.Hostname}
	for _, p := range spec.Ports {
		for _, a := range p.Addresses {
			if addr, err := netip.ParseAddr(a.Address); err == nil && addr.Is4() && ec2["local-ipv4"] == "" {
				ec2["local-ipv4"] = a.Address
			}
		}
	}
	if spec.KeyData != "" {
		ec2["public-keys/"] = "0=" + spec.KeyName
		ec2["public-keys/0/"] = "openssh-key"
		ec2["public-keys/0/openssh-key"] = spec.KeyData
	}
	path = "/" + strings.Trim(path, "/")
	switch {
	case path == "/":
		return []byte("latest\nopenstack\n"), nil
	case path == "/openstack":
		return []byte("latest\n"), nil
	case path == "/openstack/latest":
		return listing(files), nil
	case strings.HasPrefix(path, "/openstack/latest/"):
		if b, ok := files[strings.TrimPrefix(path, "/openstack/latest/")]; ok {
			return b, nil
		}
	case path == "/latest":
		return []byte("meta-data/\nuser-data\n"), nil
	case path == "/latest/user-data":
		if b, ok := files["user_data"]; ok {
			return b, nil
		}
	case path == "/latest/meta-data":
		var names []string
		for k := range ec2 {
			if !strings.Contains(strings.TrimSuffix(k, "/"), "/") {
				names = append(names, k)
			}
		}
		sort.Strings(names)
		return []byte(strings.Join(names, "\n") + "\n"), nil
	case strings.HasPrefix(path, "/latest/meta-data/"):
		key := strings.TrimPrefix(path, "/latest/meta-data/")
		if v, ok := ec2[key]; ok {
			return []byte(v), nil
		}
		if v, ok := ec2[key+"/"]; ok {
			return []byte(v + "\n"), nil
		}
	}
	return nil, trustack.Errorf(trustack.ENOTFOUND, "no metadata at %s", path)
}

// listing lists a directory's files, one a line, in order.
func listing(files map[string][]byte) []byte {
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	return []byte(strings.Join(names, "\n") + "\n")
}
