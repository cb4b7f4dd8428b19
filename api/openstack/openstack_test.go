package openstack_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/api/openstack"
)

// TestErrorOverrides checks that an API may answer some errors with a
// status of its own and name their reasons in its bodies, while the
// others keep the shared table's status.
func TestErrorOverrides(t *testing.T) {
	a := openstack.NewAPI(openstack.TitledError, nil, nil, "", slog.New(slog.DiscardHandler))
	a.SetStatus(func(err error) int {
		if trustack.ErrorCode(err) == trustack.EOVERQUOTA {
			return http.StatusConflict
		}
		return 0
	})
	a.SetReasonFormat(func(status int, reason, message string) any {
		return map[string]any{"status": status, "type": reason, "message": message}
	})
	tests := []struct {
		err        error
		status     int
		reason     string
		message    string
		overridden bool // the status is not the shared table's
	}{
		{trustack.Reasonf(trustack.EOVERQUOTA, "OverQuota", "Quota exceeded for resources: ['network']."), http.StatusConflict, "OverQuota", "Quota exceeded for resources: ['network'].", true},
		{trustack.Reasonf(trustack.ENOTFOUND, "NetworkNotFound", "Network n1 could not be found."), http.StatusNotFound, "NetworkNotFound", "Network n1 could not be found.", false},
		{trustack.Errorf(trustack.EFORBIDDEN, "No."), http.StatusForbidden, "", "No.", false},
		{errors.New("disk on fire"), http.StatusInternalServerError, "", trustack.ErrorMessage(errors.New("")), false},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		a.Error(rec, httptest.NewRequest("GET", "/", nil), tt.err)
		if rec.Code != tt.status {
			t.Errorf("%v: status %d, want %d", tt.err, rec.Code, tt.status)
		}
		if shared, _ := openstack.StatusOf(tt.err); (shared != tt.status) != tt.overridden {
			t.Errorf("%v: the shared table says %d, the API %d", tt.err, shared, tt.status)
		}
		var body struct {
			Status  int
			Type    string
			Message string
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatal(err)
		}
		if body.Type != tt.reason || body.Message != tt.message || body.Status != tt.status {
			t.Errorf("%v: body %+v, want type %q, message %q, status %d", tt.err, body, tt.reason, tt.message, tt.status)
		}
	}
}

// TestErrorFormatWithoutReasons checks that an API made with an
// ErrorFormat renders its errors with it.
func TestErrorFormatWithoutReasons(t *testing.T) {
	a := openstack.NewAPI(openstack.TitledError, nil, nil, "", slog.New(slog.DiscardHandler))
	rec := httptest.NewRecorder()
	a.Error(rec, httptest.NewRequest("GET", "/", nil), trustack.Reasonf(trustack.EOVERQUOTA, "OverQuota", "Too many."))
	var body struct{ Error struct{ Code int } }
	json.Unmarshal(rec.Body.Bytes(), &body)
	if rec.Code != http.StatusForbidden || body.Error.Code != http.StatusForbidden {
		t.Errorf("over quota: status %d, body code %d, want 403 for both", rec.Code, body.Error.Code)
	}
}

// TestAccessLogHidesSignatures checks that the access log never holds a
// signature that grants access by itself: a TempURL's, a presigned S3
// URL's or a console URL's token.
func TestAccessLogHidesSignatures(t *testing.T) {
	var logged bytes.Buffer
	h := openstack.Middleware(slog.New(slog.NewTextHandler(&logged, nil)), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for _, target := range []string{
		"/v1/AUTH_p/c/o?temp_url_sig=deadbeef00&temp_url_expires=1",
		"/bucket/key?X-Amz-Credential=AK%2F20261207&X-Amz-Signature=deadbeef00",
		"/compute/console/websocket?token=deadbeef00",
	} {
		logged.Reset()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, target, nil))
		if strings.Contains(logged.String(), "deadbeef00") || !strings.Contains(logged.String(), "REDACTED") {
			t.Errorf("%s logged as %s", target, logged.String())
		}
	}
}
