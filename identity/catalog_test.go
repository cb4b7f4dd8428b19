package identity

import "testing"

func TestEndpointURL(t *testing.T) {
	for _, tc := range []struct {
		raw, project, want string
		listed             bool
	}{
		{"http://h/volume/v3/$(project_id)s", "p1", "http://h/volume/v3/p1", true},
		{"http://h/v1/AUTH_%(tenant_id)s", "p1", "http://h/v1/AUTH_p1", true},
		{"http://h/u/$(user_id)s/p/%(project_id)s", "p1", "http://h/u/u1/p/p1", true},
		{"http://h/compute/v2.1", "", "http://h/compute/v2.1", true},
		{"http://h/a%20b/$x", "p1", "http://h/a%20b/$x", true},
		{"http://h/volume/v3/$(project_id)s", "", "", false}, // a domain-scoped token
		{"http://h/$(region)s", "p1", "", false},             // no such substitution
	} {
		got, listed := EndpointURL(tc.raw, tc.project, "u1")
		if got != tc.want || listed != tc.listed {
			t.Errorf("EndpointURL(%q, %q): %q, %v; want %q, %v", tc.raw, tc.project, got, listed, tc.want, tc.listed)
		}
	}
}
