package account_test

import (
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trustack/trustack/objectstore"
	"github.com/trustack/trustack/objectstore/account"
	"github.com/trustack/trustack/objectstore/node/nodetest"
)

var hasher = objectstore.Hasher{Prefix: "pre", Suffix: "suf"}

// newServer serves an account server over a node with one device, sda,
// and returns its URL and root.
func newServer(tb testing.TB, key, root string) string {
	tb.Helper()
	if root == "" {
		root = tb.TempDir()
		if err := os.Mkdir(filepath.Join(root, "sda"), 0o750); err != nil {
			tb.Fatal(err)
		}
	}
	s := account.New(root, hasher, account.Options{Key: key, Log: slog.New(slog.DiscardHandler)})
	ts := httptest.NewServer(s)
	tb.Cleanup(func() { ts.Close(); s.Close() })
	return ts.URL
}

// do sends a request with headers given as name, value pairs.
func do(tb testing.TB, url, method, path string, headers ...string) nodetest.Reply {
	tb.Helper()
	return nodetest.Do(tb, method, url+path, nil, headers...)
}

// report is a container server's report of container c.
func report(put, del, objects, bytes string) []string {
	return []string{"X-Put-Timestamp", put, "X-Delete-Timestamp", del, "X-Object-Count", objects, "X-Bytes-Used", bytes}
}

func TestAccountLifecycle(t *testing.T) {
	u := newServer(t, "", "")
	const a = "/sda/2/AUTH_a"
	steps := []struct {
		name       string
		method     string
		path       string
		headers    []string
		wantStatus int
		wantHeader map[string]string // "" for absent
	}{
		{"HEAD of a missing account", "HEAD", a, nil, 404, nil},
		{"container report to a missing account", "PUT", a + "/c", report("10", "0", "1", "1"), 404, nil},
		{"PUT without a timestamp", "PUT", a, nil, 400, nil},
		{"PUT creates", "PUT", a, []string{"X-Timestamp", "5", "X-Account-Meta-Temp-Url-Key", "k1", "X-Account-Meta-Quota-Bytes", "100"}, 201, nil},
		{"PUT again", "PUT", a, []string{"X-Timestamp", "6", "X-Account-Sysmeta-Project", "p"}, 202, nil},
		{"HEAD", "HEAD", a, nil, 204, map[string]string{
			"X-Account-Container-Count": "0", "X-Account-Object-Count": "0", "X-Account-Bytes-Used": "0",
			"X-Timestamp": "0000000005.00000", "X-Put-Timestamp": "0000000006.00000",
			"X-Account-Meta-Temp-Url-Key": "k1", "X-Account-Meta-Quota-Bytes": "100", "X-Account-Sysmeta-Project": "p"}},
		{"POST changes and removes metadata", "POST", a, []string{"X-Timestamp", "7", "X-Account-Meta-Temp-Url-Key", "k2", "X-Account-Meta-Quota-Bytes", ""}, 204, nil},
		{"POST of older metadata", "POST", a, []string{"X-Timestamp", "6.5", "X-Account-Meta-Temp-Url-Key", "k0"}, 204, nil},
		{"HEAD after POSTs", "HEAD", a, nil, 204, map[string]string{"X-Account-Meta-Temp-Url-Key": "k2", "X-Account-Meta-Quota-Bytes": ""}},
		{"container report", "PUT", a + "/c1", report("10", "0", "3", "30"), 201, nil},
		{"another container's report", "PUT", a + "/c2", report("11", "0", "1", "5"), 201, nil},
		{"report without counts", "PUT", a + "/c2", []string{"X-Put-Timestamp", "12", "X-Delete-Timestamp", "0"}, 400, nil},
		{"report without timestamps", "PUT", a + "/c2", []string{"X-Object-Count", "1", "X-Bytes-Used", "1"}, 400, nil},
		{"HEAD counts containers", "HEAD", a, nil, 204, map[string]string{
			"X-Account-Container-Count": "2", "X-Account-Object-Count": "4", "X-Account-Bytes-Used": "35"}},
		{"report of a deletion", "PUT", a + "/c1", report("10", "20", "0", "0"), 204, nil},
		{"HEAD after the deletion", "HEAD", a, nil, 204, map[string]string{
			"X-Account-Container-Count": "1", "X-Account-Object-Count": "1", "X-Account-Bytes-Used": "5"}},
		{"DELETE of a container's row", "DELETE", a + "/c2", []string{"X-Timestamp", "30"}, 405, nil},
		{"DELETE without a timestamp", "DELETE", a, nil, 400, nil},
		{"DELETE", "DELETE", a, []string{"X-Timestamp", "40"}, 204, nil},
		{"HEAD of a deleted account", "HEAD", a, nil, 404, map[string]string{
			"X-Account-Status": "Deleted", "X-Backend-Put-Timestamp": "0000000006.00000",
			"X-Backend-Delete-Timestamp": "0000000040.00000", "X-Backend-Status-Changed-At": "0000000040.00000"}},
		{"GET of a deleted account", "GET", a, nil, 404, nil},
		{"PUT of a deleted account", "PUT", a, []string{"X-Timestamp", "50"}, 403, nil},
		{"POST to a deleted account", "POST", a, []string{"X-Timestamp", "50"}, 404, nil},
		{"DELETE again", "DELETE", a, []string{"X-Timestamp", "50"}, 404, nil},
		{"container report to a deleted account", "PUT", a + "/c3", report("60", "0", "0", "0"), 404, nil},
	}
	for _, st := range steps {
		got := do(t, u, st.method, st.path, st.headers...)
		if got.Status != st.wantStatus {
			t.Errorf("%s: got %d, want %d (%s)", st.name, got.Status, st.wantStatus, strings.TrimSpace(got.Body))
		}
		for name, want := range st.wantHeader {
			if v := got.Header.Get(name); v != want {
				t.Errorf("%s: %s: got %q, want %q", st.name, name, v, want)
			}
		}
	}
}

func TestAccountListing(t *testing.T) {
	u := newServer(t, "", "")
	const a = "/sda/0/AUTH_a"
	do(t, u, "PUT", a, "X-Timestamp", "1")
	if got := do(t, u, "GET", a); got.Status != 200 || strings.TrimSpace(got.Body) != "[]" {
		t.Errorf("empty listing: got %d %q, want 200 []", got.Status, got.Body)
	}
	for _, c := range []string{"logs-2024", "logs-2025", "photos", "x-1-a", "x-1-b"} {
		do(t, u, "PUT", a+"/"+c, report("1704164645.12345", "0", "2", "20")...)
	}
	do(t, u, "PUT", a+"/gone", report("1", "2", "0", "0")...)
	got := do(t, u, "GET", a+"?prefix=p")
	want := `[{"name":"photos","count":2,"bytes":20,"last_modified":"2024-01-02T03:04:05.123450"}]`
	if strings.TrimSpace(got.Body) != want {
		t.Errorf("got %s, want %s", got.Body, want)
	}
	tests := []struct {
		query      string
		wantStatus int
		want       string
	}{
		{"", 200, "logs-2024 logs-2025 photos x-1-a x-1-b"},
		{"?delimiter=-", 200, "[logs-] photos [x-]"},
		{"?prefix=x-&delimiter=-", 200, "[x-1-]"},
		{"?marker=logs-2025&end_marker=x-1-b", 200, "photos x-1-a"},
		{"?reverse=yes&limit=2", 200, "x-1-b x-1-a"},
		{"?limit=10001", 412, ""},
	}
	for _, tt := range tests {
		got := do(t, u, "GET", a+tt.query)
		if got.Status != tt.wantStatus {
			t.Errorf("GET %s: got %d, want %d", tt.query, got.Status, tt.wantStatus)
			continue
		}
		if got.Status != 200 {
			continue
		}
		var entries []struct{ Name, Subdir string }
		if err := json.Unmarshal([]byte(got.Body), &entries); err != nil {
			t.Fatalf("GET %s: %q: %v", tt.query, got.Body, err)
		}
		var names []string
		for _, e := range entries {
			if e.Subdir != "" {
				names = append(names, "["+e.Subdir+"]")
			} else {
				names = append(names, e.Name)
			}
		}
		if s := strings.Join(names, " "); s != tt.want {
			t.Errorf("GET %s: got %q, want %q", tt.query, s, tt.want)
		}
	}
}

func TestAccountRequestChecks(t *testing.T) {
	u := newServer(t, "secret", "")
	tests := []struct {
		name, method, path string
		headers            []string
		want               int
	}{
		{"no key", "HEAD", "/sda/0/a", nil, 401},
		{"key", "HEAD", "/sda/0/a", []string{"X-Backend-Key", "secret"}, 404},
		{"missing device", "PUT", "/sdb/0/a", []string{"X-Backend-Key", "secret", "X-Timestamp", "1"}, 507},
		{"no account", "HEAD", "/sda/0", []string{"X-Backend-Key", "secret"}, 400},
		{"an object's path", "HEAD", "/sda/0/a/c/o", []string{"X-Backend-Key", "secret"}, 400},
		{"bad partition", "HEAD", "/sda/-1/a", []string{"X-Backend-Key", "secret"}, 400},
		{"unknown method", "PATCH", "/sda/0/a", []string{"X-Backend-Key", "secret"}, 405},
	}
	for _, tt := range tests {
		if got := do(t, u, tt.method, tt.path, tt.headers...); got.Status != tt.want {
			t.Errorf("%s: got %d, want %d", tt.name, got.Status, tt.want)
		}
	}
}

func TestAccountSurvivesRestart(t *testing.T) {
	root := t.TempDir()
	os.Mkdir(filepath.Join(root, "sda"), 0o750)
	u := newServer(t, "", root)
	do(t, u, "PUT", "/sda/0/AUTH_a", "X-Timestamp", "1", "X-Account-Meta-A", "b")
	do(t, u, "PUT", "/sda/0/AUTH_a/c", report("2", "0", "4", "40")...)

	got := do(t, newServer(t, "", root), "HEAD", "/sda/0/AUTH_a")
	if got.Status != 204 || got.Header.Get("X-Account-Object-Count") != "4" || got.Header.Get("X-Account-Meta-A") != "b" {
		t.Errorf("another server over the same devices: got %d, %s objects, meta %q; want 204, 4, b",
			got.Status, got.Header.Get("X-Account-Object-Count"), got.Header.Get("X-Account-Meta-A"))
	}
}

// TestHiddenAccountMadeByReports: a container's report makes a hidden
// account, such as the expirer's queue's, which nothing PUTs, as Swift
// makes its auto-created accounts; a user's account it does not.
func TestHiddenAccountMadeByReports(t *testing.T) {
	u := newServer(t, "", "")
	const a = "/sda/2/" + objectstore.ExpiringObjectsAccount
	if got := do(t, u, "PUT", a+"/0000086400", report("10", "0", "1", "0")...); got.Status != 201 {
		t.Fatalf("report to a missing hidden account: got %d, want 201 (%s)", got.Status, strings.TrimSpace(got.Body))
	}
	got := do(t, u, "GET", a)
	var rows []struct{ Name string }
	if err := json.Unmarshal([]byte(got.Body), &rows); err != nil || got.Status != 200 || len(rows) != 1 || rows[0].Name != "0000086400" {
		t.Errorf("GET of the hidden account: got %d %s, want 200 and the container 0000086400", got.Status, got.Body)
	}
	if got := do(t, u, "PUT", "/sda/2/AUTH_a/c", report("10", "0", "1", "0")...); got.Status != 404 {
		t.Errorf("report to a missing user's account: got %d, want 404", got.Status)
	}
}
