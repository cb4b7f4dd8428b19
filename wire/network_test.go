package wire

import (
	"reflect"
	"testing"
)

func TestSecurityGroupUpdate(t *testing.T) {
	ssh := []Rule{{Direction: "ingress", EtherType: "IPv4", Protocol: "tcp"}}
	web := []Rule{{Direction: "ingress", EtherType: "IPv4", Protocol: "tcp"}, {Direction: "egress", EtherType: "IPv4"}}
	have := SecurityGroup{ID: "g", Revision: 3, Stateful: true, Rules: ssh, Members: []string{"10.0.0.5"}}
	for _, tc := range []struct {
		name       string
		have, sent SecurityGroup
		want       SecurityGroup
	}{
		{"a new group, whole", SecurityGroup{}, SecurityGroup{ID: "g", Revision: 1, Rules: web, Members: []string{"10.0.0.7"}},
			SecurityGroup{ID: "g", Revision: 1, Rules: web, Members: []string{"10.0.0.7"}}},
		{"a new group, rules only: no members yet", SecurityGroup{}, SecurityGroup{ID: "g", Revision: 1, Rules: web, Members: []string{}, RulesOnly: true},
			SecurityGroup{ID: "g", Revision: 1, Rules: web}},
		{"later rules, members kept", have, SecurityGroup{ID: "g", Revision: 4, Rules: web, Members: []string{}, RulesOnly: true},
			SecurityGroup{ID: "g", Revision: 4, Rules: web, Members: []string{"10.0.0.5"}}},
		{"earlier rules from a slow spawn: the host's kept", have, SecurityGroup{ID: "g", Revision: 2, Rules: web, RulesOnly: true},
			have},
		{"earlier rules, new members: the host's rules, the members sent", have, SecurityGroup{ID: "g", Revision: 2, Rules: web, Members: []string{"10.0.0.5", "10.0.0.9"}},
			SecurityGroup{ID: "g", Revision: 3, Stateful: true, Rules: ssh, Members: []string{"10.0.0.5", "10.0.0.9"}}},
		{"the last member gone", have, SecurityGroup{ID: "g", Revision: 3, Stateful: true, Rules: ssh, Members: []string{}},
			SecurityGroup{ID: "g", Revision: 3, Stateful: true, Rules: ssh, Members: []string{}}},
	} {
		if got := tc.have.Update(tc.sent); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s:\n got  %+v\n want %+v", tc.name, got, tc.want)
		}
	}
}

func TestDHCPApply(t *testing.T) {
	a := DHCPHost{PortID: "a", SubnetID: "s", MAC: "fa:16:3e:00:00:0a", Address: "10.0.0.10"}
	b := DHCPHost{PortID: "b", SubnetID: "s", MAC: "fa:16:3e:00:00:0b", Address: "10.0.0.11"}
	have := DHCP{SubnetID: "s", NetworkID: "n", Leases: []DHCPHost{a, b}}
	moved := DHCPHost{PortID: "b", SubnetID: "s", MAC: "fa:16:3e:00:00:0b", Address: "10.0.0.99"}
	for _, tc := range []struct {
		name   string
		change DHCPLeases
		want   []DHCPHost
	}{
		{"a new port", DHCPLeases{NetworkID: "n", PortIDs: []string{"c"}, Leases: []DHCPHost{{PortID: "c", SubnetID: "s", Address: "10.0.0.12"}}},
			[]DHCPHost{a, b, {PortID: "c", SubnetID: "s", Address: "10.0.0.12"}}},
		{"a port gone", DHCPLeases{NetworkID: "n", PortIDs: []string{"a"}}, []DHCPHost{b}},
		{"a port's address changed", DHCPLeases{NetworkID: "n", PortIDs: []string{"b"}, Leases: []DHCPHost{moved}}, []DHCPHost{a, moved}},
		{"a lease on another subnet of the network", DHCPLeases{NetworkID: "n", PortIDs: []string{"a"}, Leases: []DHCPHost{{PortID: "a", SubnetID: "v6", Address: "fd00::5"}}},
			[]DHCPHost{b}},
		{"another network's change", DHCPLeases{NetworkID: "m", PortIDs: []string{"a", "b"}}, []DHCPHost{a, b}},
		{"a lease of a port not named", DHCPLeases{NetworkID: "n", PortIDs: []string{}, Leases: []DHCPHost{{PortID: "c", SubnetID: "s", Address: "10.0.0.12"}}},
			[]DHCPHost{a, b}},
	} {
		got := have.Apply(tc.change)
		if !reflect.DeepEqual(got.Leases, tc.want) {
			t.Errorf("%s:\n got  %+v\n want %+v", tc.name, got.Leases, tc.want)
		}
		if !reflect.DeepEqual(have.Leases, []DHCPHost{a, b}) {
			t.Fatalf("%s: Apply changed the DHCP it was called on", tc.name)
		}
	}
}
