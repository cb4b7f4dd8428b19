package e2e

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// checkRemoteConsoles checks, on a running QEMU guest, that the console
// URLs the OpenStack client shows lead through trustack's console proxy
// to the guest: noVNC's page, served; QEMU's VNC server, greeting in RFB
// 3.8; the serial port, relaying what the guest prints; and that a URL
// opens one connection only, and none after the cloud's console token TTL.
func checkRemoteConsoles(t *testing.T, env map[string]string, server string, ttl time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	expiring := strings.TrimSpace(must(t, env, "console", "url", "show", "--serial", server, "-f", "value", "-c", "url"))
	expires := time.Now().Add(ttl)
	page := strings.TrimSpace(must(t, env, "--os-compute-api-version", "2.6", "console", "url", "show", "--novnc", server, "-f", "value", "-c", "url"))
	u, err := url.Parse(page)
	if err != nil || !strings.HasSuffix(u.Path, "/compute/console/vnc_lite.html") {
		t.Fatalf("openstack console url show --novnc: got %q, want noVNC's vnc_lite.html", page)
	}
	resp, err := http.Get(page)
	if err != nil {
		t.Fatal(err)
	}
	html, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(html), "noVNC") {
		t.Errorf("GET %s: %d, want noVNC's page", page, resp.StatusCode)
	}
	socket := "ws://" + u.Host + "/" + u.Query().Get("path")
	conn, _, err := websocket.Dial(ctx, socket, &websocket.DialOptions{Subprotocols: []string{"binary"}})
	if err != nil {
		t.Fatalf("connect to %s: %v", socket, err)
	}
	typ, greeting, err := conn.Read(ctx)
	if err != nil || typ != websocket.MessageBinary || string(greeting) != "RFB 003.008\n" {
		t.Errorf("the VNC console's first message: got %v %q (%v), want QEMU's binary RFB 003.008 greeting", typ, greeting, err)
	}
	conn.Close(websocket.StatusNormalClosure, "")
	if _, resp, err := websocket.Dial(ctx, socket, nil); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a console URL used again: got %v (%v), want 401", resp, err)
	}

	serial := strings.TrimSpace(must(t, env, "console", "url", "show", "--serial", server, "-f", "value", "-c", "url"))
	conn, _, err = websocket.Dial(ctx, serial, &websocket.DialOptions{Subprotocols: []string{"binary"}})
	if err != nil {
		t.Fatalf("connect to %s: %v", serial, err)
	}
	defer conn.Close(websocket.StatusNormalClosure, "")
	// The guest says its uptime every 5 s.
	var seen strings.Builder
	for !strings.Contains(seen.String(), "trustack-guest uptime:") {
		_, b, err := conn.Read(ctx)
		if err != nil {
			t.Fatalf("the serial console: %v, after %q", err, seen.String())
		}
		seen.Write(b)
	}

	time.Sleep(time.Until(expires) + time.Second)
	if _, resp, err := websocket.Dial(ctx, expiring, nil); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a console URL past its TTL: got %v (%v), want 401", resp, err)
	}
}
