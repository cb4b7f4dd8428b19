package metadata

import (
	"encoding/json"
	"testing"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/wire"
)

// TestNetworkData checks network_data.json as cloud-init reads it: a link
// per port with its MAC, a static network with its address, mask, default
// route, host routes and name servers where there is no DHCP, and only the
// type where DHCP serves the address.
func TestNetworkData(t *testing.T) {
	ports := []wire.Port{
		{ID: "0123456789abcdef", NetworkID: "net-a", MAC: "fa:16:3e:00:00:01", Segment: wire.Segment{MTU: 1450}, Addresses: []wire.Address{
			{SubnetID: "sub-a", Address: "10.1.0.7", CIDR: "10.1.0.0/24", Gateway: "10.1.0.1", DNS: []string{"192.0.2.53"},
				HostRoutes: []wire.Route{{Destination: "172.16.0.0/12", NextHop: "10.1.0.254"}}},
			{SubnetID: "sub-b", Address: "2001:db8::7", CIDR: "2001:db8::/64"},
		}},
		{ID: "fedcba9876543210", NetworkID: "net-b", MAC: "fa:16:3e:00:00:02", Segment: wire.Segment{MTU: 1500}, Addresses: []wire.Address{
			{SubnetID: "sub-c", Address: "10.2.0.9", CIDR: "10.2.0.0/24", Gateway: "10.2.0.1", DHCP: true},
		}},
	}
	got, err := json.Marshal(newNetworkData(ports))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"links":[{"id":"tap0123456789a","vif_id":"0123456789abcdef","type":"tap","mtu":1450,"ethernet_mac_address":"fa:16:3e:00:00:01"},` +
		`{"id":"tapfedcba98765","vif_id":"fedcba9876543210","type":"tap","mtu":1500,"ethernet_mac_address":"fa:16:3e:00:00:02"}],` +
		`"networks":[{"id":"network0","type":"ipv4","link":"tap0123456789a","network_id":"net-a","ip_address":"10.1.0.7","netmask":"255.255.255.0",` +
		`"routes":[{"network":"0.0.0.0","netmask":"0.0.0.0","gateway":"10.1.0.1"},{"network":"172.16.0.0","netmask":"255.240.0.0","gateway":"10.1.0.254"}],` +
		`"services":[{"type":"dns","address":"192.0.2.53"}]},` +
		`{"id":"network1","type":"ipv6","link":"tap0123456789a","network_id":"net-a","ip_address":"2001:db8::7","netmask":"ffff:ffff:ffff:ffff::"},` +
		`{"id":"network2","type":"ipv4_dhcp","link":"tapfedcba98765","network_id":"net-b"}],` +
		`"services":[{"type":"dns","address":"192.0.2.53"}]}`
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// TestLookup answers the metadata service's paths from a server's spec.
func TestLookup(t *testing.T) {
	spec := wire.Spec{ServerID: "5e1f0a3c-0000-4000-8000-000000000001", Name: "vm1", Hostname: "vm1", KeyName: "k",
		KeyData: "ssh-ed25519 AAAA k", UserData: "IyEvYmluL3NoCg==", // "#!/bin/sh\n"
		Ports: []wire.Port{{ID: "p1", MAC: "fa:16:3e:00:00:01", Addresses: []wire.Address{{Address: "10.0.0.5", CIDR: "10.0.0.0/24", DHCP: true}}}}}
	for path, want := range map[string]string{
		"/latest/meta-data/instance-id":               spec.ServerID,
		"/latest/meta-data/local-ipv4":                "10.0.0.5",
		"/latest/meta-data/public-keys/0/openssh-key": "ssh-ed25519 AAAA k",
		"/latest/user-data":                           "#!/bin/sh\n",
		"/openstack/latest/user_data":                 "#!/bin/sh\n",
		"/openstack/latest":                           "meta_data.json\nnetwork_data.json\nuser_data\nvendor_data.json\n",
	} {
		got, err := Lookup(spec, path)
		if err != nil || string(got) != want {
			t.Errorf("Lookup(%s) = %q, %v; want %q", path, got, err, want)
		}
	}
	var md struct{ UUID string }
	b, err := Lookup(spec, "/openstack/latest/meta_data.json")
	if err != nil || json.Unmarshal(b, &md) != nil || md.UUID != spec.ServerID {
		t.Errorf("meta_data.json: %s, %v; want the server's UUID", b, err)
	}
	if _, err := Lookup(spec, "/openstack/latest/secrets"); trustack.ErrorCode(err) != trustack.ENOTFOUND {
		t.Errorf("Lookup of an unknown path: %v, want ENOTFOUND", err)
	}
}
