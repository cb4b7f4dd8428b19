package qemu

import (
	"encoding/json"
	"testing"

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
