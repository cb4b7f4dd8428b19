package volume_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/trustack/trustack/internal/apitest"
)

// messageClient asks for a microversion of the volume API.
type messageClient string

func (v messageClient) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("OpenStack-API-Version", "volume "+string(v))
	return http.DefaultTransport.RoundTrip(r)
}

// messagesAt is a caller of s's volume API at a microversion.
type messagesAt struct {
	s       *server
	version string
}

func (m messagesAt) do(t *testing.T, token, method, path string) (int, obj) {
	t.Helper()
	return apitest.Do(t, &http.Client{Transport: messageClient(m.version)}, token, method, m.s.URL+path, nil)
}

func (m messagesAt) must(t *testing.T, status int, token, method, path string) obj {
	t.Helper()
	return apitest.Must(t, &http.Client{Transport: messageClient(m.version)}, status, token, method, m.s.URL+path, nil)
}

// Tempest's schema of a message (tempest/lib/api_schema/response/volume/
// messages.py).
var (
	messageKeys     = []string{"request_id", "message_level", "event_id", "created_at", "id", "user_message"}
	messageOptional = []string{"links", "guaranteed_until", "resource_uuid", "resource_type"}
)

// failVolume makes a volume of a type whose vendor and protocol no
// backend has, as Tempest's test_user_messages does: it goes to error,
// which leaves a message.
func failVolume(t *testing.T, s *server, token string) string {
	t.Helper()
	code, _ := s.do(t, "admin", "POST", "/volume/v3/types", obj{"volume_type": obj{"name": "bogus",
		"extra_specs": obj{"storage_protocol": "bogus-protocol", "vendor_name": "bogus-vendor"}}})
	if code != http.StatusOK && code != http.StatusConflict { // made by an earlier call
		t.Fatalf("POST /types: %d", code)
	}
	v := s.create(t, token, obj{"size": 1, "volume_type": "bogus"})
	got := s.must(t, http.StatusOK, token, "GET", "/volume/v3/volumes/"+v["id"].(string), nil)["volume"].(obj)
	if got["status"] != "error" {
		t.Fatalf("a volume of a type no backend offers: %v, want error", got["status"])
	}
	return v["id"].(string)
}

// messageList returns the messages of a list body, checking it against
// Tempest's schema (and messages_links, which Cinder adds to pages).
func messageList(t *testing.T, body obj) []obj {
	t.Helper()
	for k := range body {
		if k != "messages" && k != "messages_links" {
			t.Errorf("list: %s is not in Tempest's schema", k)
		}
	}
	var out []obj
	for _, item := range body["messages"].([]any) {
		m := item.(obj)
		checkKeys(t, "listed message", m, messageKeys, messageOptional)
		out = append(out, m)
	}
	return out
}

// TestMessagesAPI: Tempest's test_user_messages against trustack: a
// volume that goes to error leaves a message its project lists, shows and
// deletes (204), with the bodies Tempest's schema has; other projects do
// not see it; readers may not delete it; below 3.3 there is no such API.
func TestMessagesAPI(t *testing.T) {
	s := newServer(t)
	volumeID := failVolume(t, s, "alice")

	for _, version := range []string{"3.0", "3.2"} {
		code, body := messagesAt{s, version}.do(t, "alice", "GET", "/volume/v3/messages")
		if code != http.StatusNotFound {
			t.Errorf("GET /messages at %s: %d, want 404", version, code)
		}
		fault(t, body, "itemNotFound")
	}

	at := messagesAt{s, "3.3"}
	list := messageList(t, at.must(t, http.StatusOK, "alice", "GET", "/volume/v3/messages"))
	if len(list) != 1 || list[0]["resource_uuid"] != volumeID {
		t.Fatalf("alice's messages: %v, want one about %s", list, volumeID)
	}
	id := list[0]["id"].(string)
	shown := at.must(t, http.StatusOK, "alice", "GET", "/volume/v3/messages/"+id)
	if len(shown) != 1 {
		t.Errorf("show: %v, want only message", shown)
	}
	m := shown["message"].(obj)
	checkKeys(t, "shown message", m, messageKeys, messageOptional)
	want := obj{"id": id, "event_id": "VOLUME_VOLUME_001_003", "message_level": "ERROR", "resource_type": "VOLUME", "resource_uuid": volumeID,
		"user_message": "schedule allocate volume:Could not find any available weighted backend."}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("message %s: %v, want %v", k, m[k], v)
		}
	}
	if !strings.HasPrefix(m["request_id"].(string), "req-") || m["created_at"] == "" || m["guaranteed_until"] == "" {
		t.Errorf("message: %v, want a request ID, created_at and guaranteed_until", m)
	}
	if links := m["links"].([]any); len(links) != 2 || !strings.HasSuffix(links[0].(obj)["href"].(string), "/messages/"+id) {
		t.Errorf("links: %v", links)
	}

	if got := messageList(t, at.must(t, http.StatusOK, "bob", "GET", "/volume/v3/messages")); len(got) != 0 {
		t.Errorf("bob sees alice's messages: %v", got)
	}
	at.must(t, http.StatusNotFound, "bob", "GET", "/volume/v3/messages/"+id)
	at.must(t, http.StatusNotFound, "bob", "DELETE", "/volume/v3/messages/"+id)
	at.must(t, http.StatusForbidden, "rita", "DELETE", "/volume/v3/messages/"+id)
	if got := messageList(t, at.must(t, http.StatusOK, "admin", "GET", "/volume/v3/messages")); len(got) != 1 {
		t.Errorf("an administrator sees %d messages, want 1", len(got))
	}
	at.must(t, http.StatusOK, "rita", "GET", "/volume/v3/messages/"+id)

	if code, body := at.do(t, "alice", "DELETE", "/volume/v3/messages/"+id); code != http.StatusNoContent || body != nil {
		t.Errorf("DELETE: %d %v, want 204 and no body", code, body)
	}
	at.must(t, http.StatusNotFound, "alice", "GET", "/volume/v3/messages/"+id)
	at.must(t, http.StatusNotFound, "alice", "DELETE", "/volume/v3/messages/"+id)
	// A project in the path is the token's.
	at.must(t, http.StatusOK, "alice", "GET", "/volume/v3/"+apitest.P1+"/messages")
}

// TestMessagePagesAndFilters: from 3.5 lists take Cinder's filters,
// sorting and pages, key~ filters from 3.34; below 3.5 they ignore their
// query.
func TestMessagePagesAndFilters(t *testing.T) {
	s := newServer(t)
	var volumes []string
	for range 3 {
		volumes = append(volumes, failVolume(t, s, "alice"))
	}
	ids := func(list []obj) []string {
		var out []string
		for _, m := range list {
			out = append(out, m["resource_uuid"].(string))
		}
		return out
	}

	if got := messageList(t, messagesAt{s, "3.3"}.must(t, http.StatusOK, "alice", "GET", "/volume/v3/messages?limit=1&bogus=1")); len(got) != 3 {
		t.Errorf("at 3.3 with limit=1: %d messages, want all 3", len(got))
	}

	at := messagesAt{s, "3.5"}
	body := at.must(t, http.StatusOK, "alice", "GET", "/volume/v3/messages?limit=2&sort=created_at:asc")
	first := messageList(t, body)
	if got := ids(first); len(got) != 2 || got[0] != volumes[0] || got[1] != volumes[1] {
		t.Errorf("first page: %v, want the first two of %v", got, volumes)
	}
	links, _ := body["messages_links"].([]any)
	if len(links) != 1 {
		t.Fatalf("first page: links %v, want a next link", body["messages_links"])
	}
	next, err := url.Parse(links[0].(obj)["href"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(next.Path, "/messages") || next.Query().Get("marker") != first[1]["id"] {
		t.Errorf("next link %s, want /messages with marker %s", next, first[1]["id"])
	}
	second := messageList(t, at.must(t, http.StatusOK, "alice", "GET", "/volume/v3/messages?"+next.RawQuery))
	if got := ids(second); len(got) != 1 || got[0] != volumes[2] {
		t.Errorf("second page: %v, want %s", got, volumes[2])
	}
	// Newest first by default.
	if got := ids(messageList(t, at.must(t, http.StatusOK, "alice", "GET", "/volume/v3/messages"))); len(got) != 3 || got[0] != volumes[2] {
		t.Errorf("default order: %v, want newest first", got)
	}

	for _, tt := range []struct {
		version, query string
		want           int
	}{
		{"3.5", "resource_uuid=" + volumes[1], 1},
		{"3.5", "event_id=VOLUME_VOLUME_001_003", 3},
		{"3.5", "message_level=INFO", 0},
		{"3.34", "resource_uuid~=" + volumes[0][:8], 1},
		{"3.34", "event_id~=001_003", 3},
	} {
		got := messageList(t, messagesAt{s, tt.version}.must(t, http.StatusOK, "alice", "GET", "/volume/v3/messages?"+tt.query))
		if len(got) != tt.want {
			t.Errorf("at %s, ?%s: %d messages, want %d", tt.version, tt.query, len(got), tt.want)
		}
	}
	for _, q := range []string{"bogus=1", "limit=x", "sort=size:asc", "marker=nope"} {
		if code, _ := at.do(t, "alice", "GET", "/volume/v3/messages?"+q); code != http.StatusBadRequest && code != http.StatusNotFound {
			t.Errorf("?%s: %d, want 400 (404 for a marker)", q, code)
		}
	}
	if code, _ := at.do(t, "alice", "GET", "/volume/v3/messages?resource_uuid~=x"); code != http.StatusBadRequest {
		t.Errorf("a like filter at 3.5: %d, want 400", code)
	}
}
