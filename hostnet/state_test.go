package hostnet

import (
	"testing"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/wire"
)

var local = wire.Segment{Type: trustack.NetworkLocal}

// TestBadInputChangesNothing: what does not check is refused whole.
func TestBadInputChangesNothing(t *testing.T) {
	s := NewState([]string{"physnet1"})
	good := wire.Port{ID: "p1", NetworkID: "n1", MAC: "fa:16:3e:00:00:01", Segment: local}
	if err := s.Plug(good); err != nil {
		t.Fatal(err)
	}
	elsewhere := wire.Port{ID: "p2", NetworkID: "n2", MAC: "fa:16:3e:00:00:02",
		Segment: wire.Segment{Type: trustack.NetworkVLAN, PhysicalNetwork: "physnet9", SegmentationID: 7}}
	if err := s.Replace(wire.HostNetwork{Ports: []wire.Port{elsewhere}}); trustack.ErrorCode(err) != trustack.EINVALID {
		t.Errorf("Replace with a port on a physical network the host is not wired to: %v, want EINVALID", err)
	}
	if err := s.UpdateGroups([]wire.SecurityGroup{{ID: "g1", Rules: []wire.Rule{{Direction: "sideways"}}}}); trustack.ErrorCode(err) != trustack.EINVALID {
		t.Errorf("UpdateGroups with a bad direction: %v, want EINVALID", err)
	}
	if got := s.PortList(); len(got) != 1 || got[0].ID != "p1" || len(s.Groups) != 0 {
		t.Errorf("after refusals, ports %v and groups %v; want p1 alone and no group", got, s.Groups)
	}
	served, err := s.SetLeases(wire.DHCPLeases{NetworkID: "n1", PortIDs: []string{"p1"}})
	if err != nil || served {
		t.Errorf("SetLeases for a network the host serves no DHCP for: %v, %v; want false, nil", served, err)
	}
}
