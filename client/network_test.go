package client

import (
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"

	"github.com/trustack/trustack"
)

// wantInvalid checks that err is an EINVALID that quotes the argument at
// fault, or that there is no error if bad is false.
func wantInvalid(t *testing.T, arg string, err error, bad bool) {
	t.Helper()
	switch {
	case !bad && err != nil:
		t.Fatalf("%q: got %v, want no error", arg, err)
	case bad && trustack.ErrorCode(err) != trustack.EINVALID:
		t.Fatalf("%q: got %v, want %s", arg, err, trustack.EINVALID)
	case bad && !strings.Contains(trustack.ErrorMessage(err), arg):
		t.Errorf("%q: the message %q does not quote the argument", arg, trustack.ErrorMessage(err))
	}
}

func TestParseNIC(t *testing.T) {
	for _, tc := range []struct {
		arg  string
		want NIC
		bad  bool
	}{
		{arg: "net-id=private", want: NIC{Network: "private"}},
		{arg: "net-id=private,v4-fixed-ip=10.0.0.5", want: NIC{Network: "private", FixedIP: "10.0.0.5"}},
		{arg: "v6-fixed-ip=fd00::5,net-id=n1", want: NIC{Network: "n1", FixedIP: "fd00::5"}},
		{arg: "port-id=p1", want: NIC{Port: "p1"}},
		{arg: "auto", want: NIC{Mode: "auto"}},
		{arg: "none", want: NIC{Mode: "none"}},
		{arg: "net-id=n1,port-id=p1", bad: true},
		{arg: "v4-fixed-ip=10.0.0.5", bad: true},
		{arg: "port-id=p1,v4-fixed-ip=10.0.0.5", bad: true},
		{arg: "net-id=n1,v4-fixed-ip=fd00::5", bad: true},
		{arg: "net-id=n1,v6-fixed-ip=10.0.0.5", bad: true},
		{arg: "net-id=n1,v4-fixed-ip=10.0.0.300", bad: true},
		{arg: "net-id=n1,v4-fixed-ip=10.0.0.5,v6-fixed-ip=fd00::5", bad: true},
		{arg: "net-id=n1,tag=web", bad: true},
		{arg: "net-id=n1,net-id=n2", bad: true},
		{arg: "net-id=", bad: true},
		{arg: "private", bad: true},
		{arg: "", bad: true},
	} {
		t.Run(tc.arg, func(t *testing.T) {
			got, err := ParseNIC(tc.arg)
			wantInvalid(t, tc.arg, err, tc.bad)
			if got != tc.want {
				t.Errorf("ParseNIC(%q) = %+v, want %+v", tc.arg, got, tc.want)
			}
		})
	}
}

func TestNICMode(t *testing.T) {
	net, port := NIC{Network: "n1"}, NIC{Port: "p1"}
	auto, none := NIC{Mode: "auto"}, NIC{Mode: "none"}
	for _, tc := range []struct {
		name string
		nics []NIC
		want string
		bad  bool
	}{
		{name: "no NIC: the cloud's choice", nics: nil, want: ""},
		{name: "auto alone", nics: []NIC{auto}, want: "auto"},
		{name: "none alone", nics: []NIC{none}, want: "none"},
		{name: "networks and ports", nics: []NIC{net, port, net}, want: ""},
		{name: "auto with a network", nics: []NIC{auto, net}, bad: true},
		{name: "none after a port", nics: []NIC{port, none}, bad: true},
		{name: "auto twice", nics: []NIC{auto, auto}, bad: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := nicMode(tc.nics)
			switch {
			case tc.bad && trustack.ErrorCode(err) != trustack.EINVALID:
				t.Fatalf("got %q, %v; want %s", got, err, trustack.EINVALID)
			case !tc.bad && (err != nil || got != tc.want):
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestParseAllocationPool(t *testing.T) {
	for _, tc := range []struct {
		arg  string
		want subnets.AllocationPool
		bad  bool
	}{
		{arg: "start=10.0.0.10,end=10.0.0.100", want: subnets.AllocationPool{Start: "10.0.0.10", End: "10.0.0.100"}},
		{arg: "end=10.0.0.100,start=10.0.0.10", want: subnets.AllocationPool{Start: "10.0.0.10", End: "10.0.0.100"}},
		{arg: "start=10.0.0.7,end=10.0.0.7", want: subnets.AllocationPool{Start: "10.0.0.7", End: "10.0.0.7"}},
		{arg: "start=fd00::10,end=fd00::ff", want: subnets.AllocationPool{Start: "fd00::10", End: "fd00::ff"}},
		{arg: "start=10.0.0.100,end=10.0.0.10", bad: true},
		{arg: "start=10.0.0.10,end=fd00::ff", bad: true},
		{arg: "start=10.0.0.10", bad: true},
		{arg: "start=10.0.0.10,end=10.0.0", bad: true},
		{arg: "start=10.0.0.10,end=10.0.0.100,step=2", bad: true},
		{arg: "10.0.0.10-10.0.0.100", bad: true},
	} {
		t.Run(tc.arg, func(t *testing.T) {
			got, err := parseAllocationPool(tc.arg)
			wantInvalid(t, tc.arg, err, tc.bad)
			if got != tc.want {
				t.Errorf("parseAllocationPool(%q) = %+v, want %+v", tc.arg, got, tc.want)
			}
		})
	}
}

func TestParseHostRoute(t *testing.T) {
	for _, tc := range []struct {
		arg  string
		want subnets.HostRoute
		bad  bool
	}{
		{arg: "destination=10.20.0.0/16,gateway=10.0.0.254", want: subnets.HostRoute{DestinationCIDR: "10.20.0.0/16", NextHop: "10.0.0.254"}},
		{arg: "gateway=fd00::1,destination=::/0", want: subnets.HostRoute{DestinationCIDR: "::/0", NextHop: "fd00::1"}},
		{arg: "destination=10.20.0.0/16,gateway=fd00::1", bad: true},
		{arg: "destination=10.20.0.0,gateway=10.0.0.254", bad: true},
		{arg: "destination=10.20.0.0/16", bad: true},
		{arg: "destination=10.20.0.0/16,nexthop=10.0.0.254", bad: true},
	} {
		t.Run(tc.arg, func(t *testing.T) {
			got, err := parseHostRoute(tc.arg)
			wantInvalid(t, tc.arg, err, tc.bad)
			if got != tc.want {
				t.Errorf("parseHostRoute(%q) = %+v, want %+v", tc.arg, got, tc.want)
			}
		})
	}
}

func TestParsePortRange(t *testing.T) {
	for _, tc := range []struct {
		arg    string
		lo, hi int
		bad    bool
	}{
		{arg: "22", lo: 22, hi: 22},
		{arg: "8000:8080", lo: 8000, hi: 8080},
		{arg: "1:65535", lo: 1, hi: 65535},
		{arg: "443:443", lo: 443, hi: 443},
		{arg: "0", bad: true},
		{arg: "65536", bad: true},
		{arg: "8080:8000", bad: true},
		{arg: "22:", bad: true},
		{arg: ":22", bad: true},
		{arg: "1:2:3", bad: true},
		{arg: "ssh", bad: true},
		{arg: "-1", bad: true},
	} {
		t.Run(tc.arg, func(t *testing.T) {
			lo, hi, err := parsePortRange("--dst-port", tc.arg)
			wantInvalid(t, tc.arg, err, tc.bad)
			if lo != tc.lo || hi != tc.hi {
				t.Errorf("parsePortRange(%q) = %d, %d; want %d, %d", tc.arg, lo, hi, tc.lo, tc.hi)
			}
		})
	}
}

func TestParseFixedIP(t *testing.T) {
	for _, tc := range []struct {
		arg  string
		want fixedIPArg
		bad  bool
	}{
		{arg: "subnet=private-subnet", want: fixedIPArg{subnet: "private-subnet"}},
		{arg: "ip-address=10.0.0.5", want: fixedIPArg{address: "10.0.0.5"}},
		{arg: "subnet=s1,ip-address=fd00::5", want: fixedIPArg{subnet: "s1", address: "fd00::5"}},
		{arg: "ip-address=10.0.0", bad: true},
		{arg: "subnet=", bad: true},
		{arg: "subnet-id=s1", bad: true},
		{arg: "10.0.0.5", bad: true},
	} {
		t.Run(tc.arg, func(t *testing.T) {
			got, err := parseFixedIP(tc.arg)
			wantInvalid(t, tc.arg, err, tc.bad)
			if got != tc.want {
				t.Errorf("parseFixedIP(%q) = %+v, want %+v", tc.arg, got, tc.want)
			}
		})
	}
}

// TestAddresses checks that a server's addresses show as the OpenStack
// CLI shows them, fixed then floating, networks by name.
func TestAddresses(t *testing.T) {
	nova := map[string]any{
		"private": []any{
			map[string]any{"addr": "10.0.0.5", "version": 4.0, "OS-EXT-IPS:type": "fixed"},
			map[string]any{"addr": "172.24.4.9", "version": 4.0, "OS-EXT-IPS:type": "floating"},
		},
		"backend": []any{map[string]any{"addr": "192.168.1.7", "version": 4.0}},
	}
	if got, want := cell(addressesOf(nova)), "backend=192.168.1.7; private=10.0.0.5, 172.24.4.9"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := cell(addressesOf(nil)); got != "" {
		t.Errorf("no addresses: got %q, want nothing", got)
	}
}
