package openstack

import (
	"net/http"
	"testing"

	"github.com/trustack/trustack"
)

// TestNegotiate: the version a client names, none (the minimum) or
// latest (the maximum); 400 for one malformed, 406 for one out of range,
// compared by number and not as text (2.10 is above 2.9).
func TestNegotiate(t *testing.T) {
	vr := VersionRange{Min: Microversion{2, 1}, Max: Microversion{2, 10}}
	for _, tt := range []struct {
		header string
		want   Microversion
		status int
	}{
		{"", Microversion{2, 1}, 0},
		{"latest", Microversion{2, 10}, 0},
		{" LATEST ", Microversion{2, 10}, 0},
		{"2.9", Microversion{2, 9}, 0},
		{"2.10", Microversion{2, 10}, 0},
		{"2.11", Microversion{}, http.StatusNotAcceptable},
		{"2.0", Microversion{}, http.StatusNotAcceptable},
		{"3.1", Microversion{}, http.StatusNotAcceptable},
		{"2", Microversion{}, http.StatusBadRequest},
		{"2.a", Microversion{}, http.StatusBadRequest},
		{"2.-1", Microversion{}, http.StatusBadRequest},
		{"two.one", Microversion{}, http.StatusBadRequest},
	} {
		got, err := vr.Negotiate(tt.header)
		status := 0
		if err != nil {
			status, _ = StatusOf(err)
		}
		if status != tt.status || err == nil && got != tt.want {
			t.Errorf("Negotiate(%q) = %v, status %d; want %v, status %d", tt.header, got, status, tt.want, tt.status)
		}
	}
	if _, err := vr.Negotiate("x"); trustack.ErrorCode(err) != trustack.EINVALID {
		t.Errorf("a malformed version: code %q, want EINVALID", trustack.ErrorCode(err))
	}
}

// TestRequestedVersion: the service's OpenStack-API-Version wins over the
// legacy header; another service's is ignored.
func TestRequestedVersion(t *testing.T) {
	for _, tt := range []struct {
		header http.Header
		want   string
	}{
		{http.Header{}, ""},
		{http.Header{"X-Openstack-Nova-Api-Version": {"2.3"}}, "2.3"},
		{http.Header{"Openstack-Api-Version": {"compute 2.5"}, "X-Openstack-Nova-Api-Version": {"2.3"}}, "2.5"},
		{http.Header{"Openstack-Api-Version": {"volume 3.5", "Compute 2.7"}}, "2.7"},
		{http.Header{"Openstack-Api-Version": {"volume 3.5"}}, ""},
	} {
		r := &http.Request{Header: tt.header}
		if got := RequestedVersion(r, "compute", "X-OpenStack-Nova-API-Version"); got != tt.want {
			t.Errorf("RequestedVersion(%v) = %q, want %q", tt.header, got, tt.want)
		}
	}
}
