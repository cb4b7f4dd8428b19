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
