package compute_test

import (
	"net/http"
	"strconv"
	"testing"

	computeapi "github.com/trustack/trustack/api/openstack/compute"
	"github.com/trustack/trustack/internal/apitest"
)

// versioned is a client of the compute API that sends header with every
// request (a microversion header) and keeps the headers of the last
// response.
type versioned struct {
	c      *cloud
	header http.Header
	last   http.Header
}

// at returns a client of c that asks for microversion version ("2.9")
// with the header Nova has had since 2.1.
func (c *cloud) at(version string) *versioned {
	return &versioned{c: c, header: http.Header{"X-Openstack-Nova-Api-Version": {version}}}
}

// RoundTrip sends a request with the headers.
func (v *versioned) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, vals := range v.header {
		r.Header[k] = vals
	}
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil {
		v.last = resp.Header
	}
	return resp, err
}

func (v *versioned) do(t testing.TB, token, method, path string, body any) (int, obj) {
	t.Helper()
	return apitest.Do(t, &http.Client{Transport: v}, token, method, v.c.URL+computeapi.Prefix+"/v2.1"+path, body)
}

func (v *versioned) must(t testing.TB, status int, token, method, path string, body any) obj {
	t.Helper()
	return apitest.Must(t, &http.Client{Transport: v}, status, token, method, v.c.URL+computeapi.Prefix+"/v2.1"+path, body)
}

// TestMicroversionNegotiation: the version a client asks for, in either
// header, is the one used and echoed; none is 2.1, latest the maximum; a
// version out of range is refused with 406 and a malformed one with 400.
func TestMicroversionNegotiation(t *testing.T) {
	c := newCloud(t)
	max := "2." + strconv.Itoa(computeapi.MaxMinor)
	for _, tt := range []struct {
		name   string
		header http.Header
		status int
		echo   string
	}{
		{"none", http.Header{}, http.StatusOK, "2.1"},
		{"legacy header", http.Header{"X-Openstack-Nova-Api-Version": {"2.2"}}, http.StatusOK, "2.2"},
		{"new header", http.Header{"Openstack-Api-Version": {"compute 2.3"}}, http.StatusOK, "2.3"},
		{"new header wins", http.Header{"Openstack-Api-Version": {"compute 2.2"}, "X-Openstack-Nova-Api-Version": {"2.4"}}, http.StatusOK, "2.2"},
		{"another service's version", http.Header{"Openstack-Api-Version": {"volume 3.9"}, "X-Openstack-Nova-Api-Version": {"2.4"}}, http.StatusOK, "2.4"},
		{"latest", http.Header{"X-Openstack-Nova-Api-Version": {"latest"}}, http.StatusOK, max},
		{"latest in the new header", http.Header{"Openstack-Api-Version": {"compute latest"}}, http.StatusOK, max},
		{"below the minimum", http.Header{"X-Openstack-Nova-Api-Version": {"2.0"}}, http.StatusNotAcceptable, ""},
		{"above the maximum", http.Header{"X-Openstack-Nova-Api-Version": {"2.1000"}}, http.StatusNotAcceptable, ""},
		{"another major version", http.Header{"Openstack-Api-Version": {"compute 3.1"}}, http.StatusNotAcceptable, ""},
		{"malformed", http.Header{"X-Openstack-Nova-Api-Version": {"2.x"}}, http.StatusBadRequest, ""},
		{"no minor", http.Header{"Openstack-Api-Version": {"compute 2"}}, http.StatusBadRequest, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := &versioned{c: c, header: tt.header}
			status, body := v.do(t, "alice", "GET", "/flavors", nil)
			if status != tt.status {
				t.Fatalf("status %d, want %d: %v", status, tt.status, body)
			}
			if tt.echo == "" {
				return
			}
			if got := v.last.Get("X-Openstack-Nova-Api-Version"); got != tt.echo {
				t.Errorf("X-OpenStack-Nova-API-Version: %q, want %q", got, tt.echo)
			}
			if got, want := v.last.Get("Openstack-Api-Version"), "compute "+tt.echo; got != want {
				t.Errorf("OpenStack-API-Version: %q, want %q", got, want)
			}
			if got, want := v.last.Get("Vary"), "OpenStack-API-Version, X-OpenStack-Nova-API-Version"; got != want {
				t.Errorf("Vary: %q, want %q", got, want)
			}
		})
	}
}

// TestVersionDiscovery: the version documents advertise the range served,
// whatever version the client asks for.
func TestVersionDiscovery(t *testing.T) {
	c := newCloud(t)
	max := "2." + strconv.Itoa(computeapi.MaxMinor)
	for _, path := range []string{"/compute", "/compute/v2.1", "/compute/v2.1/"} {
		status, body := apitest.Do(t, &http.Client{Transport: &versioned{c: c, header: http.Header{"X-Openstack-Nova-Api-Version": {"2.999"}}}},
			"", "GET", c.URL+path, nil)
		if status != http.StatusOK {
			t.Fatalf("GET %s: status %d", path, status)
		}
		var doc obj
		if list, ok := body["versions"].([]any); ok {
			doc = item(list, 1)
		} else {
			doc = body["version"].(obj)
		}
		if doc["version"] != max || doc["min_version"] != "2.1" {
			t.Errorf("GET %s: version %v, min_version %v, want %s and 2.1", path, doc["version"], doc["min_version"], max)
		}
	}
}

// TestProjectInURLOptional: paths name the project after the version or
// not, at 2.18 (when Nova made it optional) as at every other version.
func TestProjectInURLOptional(t *testing.T) {
	c := newCloud(t)
	for _, version := range []string{"2.1", "2.18"} {
		for _, path := range []string{"/os-keypairs", "/" + apitest.P1 + "/os-keypairs"} {
			c.at(version).must(t, http.StatusOK, "alice", "GET", path, nil)
		}
		// A project named must be the caller's.
		c.at(version).must(t, http.StatusBadRequest, "alice", "GET", "/"+apitest.P2+"/servers", nil)
		c.at(version).must(t, http.StatusOK, "alice", "GET", "/"+apitest.P1+"/servers", nil)
	}
}
