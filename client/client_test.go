package client

import (
	"net/http"
	"testing"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/trustack/trustack"
)

// TestAPIError checks what a user reads of each API's error bodies: the
// API's own message, the status and the request ID, under trustack's code
// for the status, with Neutron's type as the reason.
func TestAPIError(t *testing.T) {
	for _, tc := range []struct {
		name    string
		status  int
		body    string
		code    string
		reason  string
		message string
	}{
		{
			name:   "Neutron",
			status: http.StatusConflict,
			body:   `{"NeutronError": {"type": "NetworkInUse", "message": "Unable to complete operation on network n1. There are one or more ports still in use on the network.", "detail": ""}}`,
			code:   trustack.ECONFLICT, reason: "NetworkInUse",
			message: "Unable to complete operation on network n1. There are one or more ports still in use on the network. (HTTP 409)",
		},
		{
			name:   "Neutron with a detail",
			status: http.StatusBadRequest,
			body:   `{"NeutronError": {"type": "HTTPBadRequest", "message": "Invalid input", "detail": "cidr is not a valid IP subnet"}}`,
			code:   trustack.EINVALID, reason: "HTTPBadRequest",
			message: "Invalid input: cidr is not a valid IP subnet (HTTP 400)",
		},
		{
			name:    "older Neutron",
			status:  http.StatusNotFound,
			body:    `{"NeutronError": "Network n1 could not be found."}`,
			code:    trustack.ENOTFOUND,
			message: "Network n1 could not be found. (HTTP 404)",
		},
		{
			name:    "Nova",
			status:  http.StatusNotFound,
			body:    `{"itemNotFound": {"code": 404, "message": "Instance s1 could not be found."}}`,
			code:    trustack.ENOTFOUND,
			message: "Instance s1 could not be found. (HTTP 404)",
		},
		{
			name:    "Keystone",
			status:  http.StatusUnauthorized,
			body:    `{"error": {"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}}`,
			code:    trustack.EUNAUTHORIZED,
			message: "The request you have made requires authentication. (HTTP 401)",
		},
		{
			name:    "plain text",
			status:  http.StatusConflict,
			body:    "Image i1 is in use",
			code:    trustack.ECONFLICT,
			message: "Image i1 is in use (HTTP 409)",
		},
		{
			name:    "an HTML page",
			status:  http.StatusServiceUnavailable,
			body:    "<html><body>down</body></html>",
			code:    trustack.EUNAVAILABLE,
			message: "Service Unavailable (HTTP 503)",
		},
		{
			name:   "an unknown status",
			status: http.StatusTeapot,
			body:   `{"NeutronError": {"type": "Teapot", "message": "short and stout", "detail": ""}}`,
			code:   trustack.EINTERNAL, reason: "Teapot",
			message: "short and stout (HTTP 418)",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := gophercloud.ErrUnexpectedResponseCode{Actual: tc.status, Body: []byte(tc.body),
				ResponseHeader: http.Header{"X-Openstack-Request-Id": {"req-1"}}}
			err := apiError(resp)
			if got := trustack.ErrorCode(err); got != tc.code {
				t.Errorf("code: got %s, want %s", got, tc.code)
			}
			if got := trustack.ErrorReason(err); got != tc.reason {
				t.Errorf("reason: got %q, want %q", got, tc.reason)
			}
			if got, want := trustack.ErrorMessage(err), tc.message+" (Request-ID: req-1)"; got != want {
				t.Errorf("message:\n got %q\nwant %q", got, want)
			}
		})
	}
}
