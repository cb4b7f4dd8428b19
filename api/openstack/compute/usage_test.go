package compute_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/trustack/trustack/internal/apitest"
)

// TestSimpleTenantUsage checks os-simple-tenant-usage: a project's hours
// of each server active in the period, until its deletion or the
// period's end, times its flavor's vCPUs, memory and disk; every
// project's for administrators only; and its refusals.
func TestSimpleTenantUsage(t *testing.T) {
	c := newCloud(t)
	kept := c.boot(t, "alice", "kept", nil)
	gone := c.boot(t, "alice", "gone", nil)
	c.must(t, http.StatusNoContent, "alice", "DELETE", "/servers/"+gone, nil)
	waitFor(t, "server gone to be deleted", func() bool {
		status, _ := c.do(t, "alice", "GET", "/servers/"+gone, nil)
		return status == http.StatusNotFound
	})
	now := time.Now().UTC()
	period := func(from, to time.Time) string {
		return "start=" + url.QueryEscape(from.Format("2006-01-02T15:04:05.000000")) + "&end=" + url.QueryEscape(to.Format("2006-01-02T15:04:05"))
	}
	// From an hour ago to an hour ahead: kept counts until the end, gone
	// until its deletion.
	end := now.Add(time.Hour).Truncate(time.Second)
	window := period(now.Add(-time.Hour), end)
	u := c.must(t, http.StatusOK, "alice", "GET", "/os-simple-tenant-usage/"+apitest.P1+"?"+window, nil)["tenant_usage"].(obj)
	servers := map[string]obj{}
	for _, s := range u["server_usages"].([]any) {
		servers[s.(obj)["instance_id"].(string)] = s.(obj)
	}
	k, g := servers[kept], servers[gone]
	if len(servers) != 2 || k == nil || g == nil {
		t.Fatalf("server_usages: got %v, want kept and gone", u["server_usages"])
	}
	launched, err := time.Parse("2006-01-02T15:04:05.000000", k["started_at"].(string))
	if err != nil {
		t.Fatalf("kept's started_at: %v", err)
	}
	if got, want := k["hours"].(float64), end.Sub(launched).Hours(); fmt.Sprintf("%.6f", got) != fmt.Sprintf("%.6f", want) {
		t.Errorf("kept: %v hours, want %v, from its launch to the period's end", got, want)
	}
	if h := g["hours"].(float64); h <= 0 || h > 0.05 || g["state"] != "terminated" || g["ended_at"] == nil {
		t.Errorf("gone: %v hours, state %v, ended_at %v; want a few seconds' worth, terminated, a time", h, g["state"], g["ended_at"])
	}
	if k["state"] != "active" || k["ended_at"] != nil || k["flavor"] != "m1.tiny" || k["vcpus"] != float64(1) || k["memory_mb"] != float64(512) || k["local_gb"] != float64(1) {
		t.Errorf("kept: got %v, want active, no end, and m1.tiny's 1 vCPU, 512 MiB and 1 GiB", k)
	}
	hours := k["hours"].(float64) + g["hours"].(float64)
	for field, want := range map[string]float64{"total_hours": hours, "total_vcpus_usage": hours, "total_memory_mb_usage": 512 * hours, "total_local_gb_usage": hours} {
		if got := u[field].(float64); fmt.Sprintf("%.6f", got) != fmt.Sprintf("%.6f", want) {
			t.Errorf("%s: got %v, want %v", field, got, want)
		}
	}

	// Every project's, for administrators; servers' only if detailed.
	list := c.must(t, http.StatusOK, "admin", "GET", "/os-simple-tenant-usage?"+window, nil)["tenant_usages"].([]any)
	if len(list) != 1 || list[0].(obj)["tenant_id"] != apitest.P1 || list[0].(obj)["server_usages"] != nil {
		t.Errorf("GET /os-simple-tenant-usage: got %v, want alice's project's totals alone", list)
	}
	list = c.must(t, http.StatusOK, "admin", "GET", "/os-simple-tenant-usage?detailed=1&"+window, nil)["tenant_usages"].([]any)
	if len(list) != 1 || len(list[0].(obj)["server_usages"].([]any)) != 2 {
		t.Errorf("GET /os-simple-tenant-usage?detailed=1: got %v, want alice's two servers", list)
	}

	// Before the servers were launched: nothing, as Nova says it.
	before := period(now.Add(-3*time.Hour), now.Add(-2*time.Hour))
	if u := c.must(t, http.StatusOK, "alice", "GET", "/os-simple-tenant-usage/"+apitest.P1+"?"+before, nil)["tenant_usage"].(obj); len(u) != 0 {
		t.Errorf("usage before any server: got %v, want {}", u)
	}

	for _, tc := range []struct {
		name, token, path string
		status            int
		says              string
	}{
		{"every project's, for a member", "alice", "/os-simple-tenant-usage?" + window, http.StatusForbidden, "os-simple-tenant-usage:list"},
		{"another project's", "bob", "/os-simple-tenant-usage/" + apitest.P1 + "?" + window, http.StatusForbidden, "os-simple-tenant-usage:show"},
		{"an end before the start", "alice", "/os-simple-tenant-usage/" + apitest.P1 + "?" + period(now, now.Add(-time.Hour)), http.StatusBadRequest, "start time"},
		{"a malformed start", "alice", "/os-simple-tenant-usage/" + apitest.P1 + "?start=yesterday", http.StatusBadRequest, "yesterday"},
	} {
		status, body := c.do(t, tc.token, "GET", tc.path, nil)
		if status != tc.status || !strings.Contains(fmt.Sprint(body), tc.says) {
			t.Errorf("%s: %d %v, want %d saying %q", tc.name, status, body, tc.status, tc.says)
		}
	}
}
