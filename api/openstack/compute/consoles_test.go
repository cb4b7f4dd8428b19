package compute_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestRemoteConsoleRequests checks what Nova answers for console URLs:
// the 2.1 actions and remote-consoles, their shapes, and their refusals.
func TestRemoteConsoleRequests(t *testing.T) {
	c := newCloud(t)
	vm := c.boot(t, "alice", "vm", nil)
	action := func(name string, args obj) obj { return obj{name: args} }
	remote := func(protocol, typ string) obj {
		return obj{"remote_console": obj{"protocol": protocol, "type": typ}}
	}
	novnc := c.URL + "/compute/console/vnc_lite.html?path=compute%2Fconsole%2Fwebsocket%3Ftoken%3D"
	serial := "ws://" + c.Listener.Addr().String() + "/compute/console/websocket?token="

	got := c.must(t, http.StatusOK, "alice", "POST", "/servers/"+vm+"/action", action("os-getVNCConsole", obj{"type": "novnc"}))["console"].(obj)
	if got["type"] != "novnc" || !strings.HasPrefix(got["url"].(string), novnc) || len(got) != 2 {
		t.Errorf("os-getVNCConsole: got %v, want type novnc and a URL of %s...", got, novnc)
	}
	got = c.must(t, http.StatusOK, "alice", "POST", "/servers/"+vm+"/action", action("os-getSerialConsole", obj{"type": "serial"}))["console"].(obj)
	if got["type"] != "serial" || !strings.HasPrefix(got["url"].(string), serial) {
		t.Errorf("os-getSerialConsole: got %v, want type serial and a URL of %s...", got, serial)
	}
	got = c.at("2.6").must(t, http.StatusOK, "alice", "POST", "/servers/"+vm+"/remote-consoles", remote("vnc", "novnc"))["remote_console"].(obj)
	if got["protocol"] != "vnc" || got["type"] != "novnc" || !strings.HasPrefix(got["url"].(string), novnc) || len(got) != 3 {
		t.Errorf("remote-consoles vnc: got %v, want protocol vnc, type novnc and a URL of %s...", got, novnc)
	}
	if status, body := c.at("2.5").do(t, "alice", "POST", "/servers/"+vm+"/remote-consoles", remote("vnc", "novnc")); status != http.StatusNotFound {
		t.Errorf("remote-consoles at 2.5: %d %v, want 404 (Nova added it at 2.6)", status, body)
	}

	stopped := c.boot(t, "alice", "stopped", nil)
	c.must(t, http.StatusAccepted, "alice", "POST", "/servers/"+stopped+"/action", action("os-stop", nil))
	c.waitStatus(t, "alice", stopped, "SHUTOFF")
	for _, tc := range []struct {
		name, token, path string
		body              obj
		status            int
		says              string
	}{
		{"SPICE", "alice", vm + "/action", action("os-getSPICEConsole", obj{"type": "spice-html5"}), http.StatusBadRequest, "Unavailable console type spice-html5"},
		{"RDP", "alice", vm + "/action", action("os-getRDPConsole", obj{"type": "rdp-html5"}), http.StatusBadRequest, "Unavailable console type rdp-html5"},
		{"xvpvnc", "alice", vm + "/action", action("os-getVNCConsole", obj{"type": "xvpvnc"}), http.StatusBadRequest, "Unavailable console type xvpvnc"},
		{"a VNC type for serial", "alice", vm + "/remote-consoles", remote("serial", "novnc"), http.StatusBadRequest, "Invalid console type novnc"},
		{"an unknown protocol", "alice", vm + "/remote-consoles", remote("telnet", "novnc"), http.StatusBadRequest, "protocol"},
		{"no type", "alice", vm + "/action", action("os-getVNCConsole", obj{}), http.StatusBadRequest, "type"},
		{"no remote_console", "alice", vm + "/remote-consoles", obj{}, http.StatusBadRequest, "remote_console"},
		{"an unknown field", "alice", vm + "/remote-consoles", obj{"remote_console": obj{"protocol": "vnc", "type": "novnc", "port": 1}}, http.StatusBadRequest, "port"},
		{"another project's server", "bob", vm + "/remote-consoles", remote("vnc", "novnc"), http.StatusNotFound, vm},
		{"a missing server", "alice", "nope/action", action("os-getVNCConsole", obj{"type": "novnc"}), http.StatusNotFound, "nope"},
		{"a stopped server", "alice", stopped + "/remote-consoles", remote("vnc", "novnc"), http.StatusConflict, "not ready"},
	} {
		status, body := c.at("2.6").do(t, tc.token, "POST", "/servers/"+tc.path, tc.body)
		if status != tc.status || !strings.Contains(fmt.Sprint(body), tc.says) {
			t.Errorf("%s: %d %v, want %d saying %q", tc.name, status, body, tc.status, tc.says)
		}
	}
}

// consoleURL asks for a console of the server and returns its websocket's
// URL, taken from noVNC's path for novnc.
func (c *cloud) consoleURL(t testing.TB, server, protocol, typ string) string {
	t.Helper()
	u := c.at("2.6").must(t, http.StatusOK, "alice", "POST", "/servers/"+server+"/remote-consoles",
		obj{"remote_console": obj{"protocol": protocol, "type": typ}})["remote_console"].(obj)["url"].(string)
	if typ == "serial" {
		return u
	}
	page, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return "ws://" + page.Host + "/" + page.Query().Get("path")
}

// dialConsole connects to a console's websocket as noVNC does.
func dialConsole(ctx context.Context, u string) (*websocket.Conn, int, error) {
	conn, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{Subprotocols: []string{"binary"}})
	if resp != nil {
		return conn, resp.StatusCode, err
	}
	return conn, 0, err
}

// TestConsoleProxy checks that a console URL leads, once, through the
// proxy to the server's console, in binary messages.
func TestConsoleProxy(t *testing.T) {
	c := newCloud(t)
	vm := c.boot(t, "alice", "vm", nil)
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()

	vnc := c.consoleURL(t, vm, "vnc", "novnc")
	conn, _, err := dialConsole(ctx, vnc)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	if conn.Subprotocol() != "binary" {
		t.Errorf("subprotocol: got %q, want binary", conn.Subprotocol())
	}
	// The RFB handshake as Tempest's test_novnc makes it, through the
	// proxy to the fake hypervisor's VNC server.
	for _, step := range []struct{ send, want string }{
		{"", "RFB 003.008\n"},
		{"RFB 003.008\n", "\x01\x01"}, // security types: None
		{"\x01", "\x00\x00\x00\x00"},  // None chosen: passed
	} {
		if step.send != "" {
			if err := conn.Write(ctx, websocket.MessageBinary, []byte(step.send)); err != nil {
				t.Fatal(err)
			}
		}
		typ, got, err := conn.Read(ctx)
		if err != nil || typ != websocket.MessageBinary || string(got) != step.want {
			t.Fatalf("after %q: got %v %q (%v), want a binary message %q", step.send, typ, got, err, step.want)
		}
	}
	if err := conn.Write(ctx, websocket.MessageBinary, []byte{1}); err != nil { // ClientInit, shared
		t.Fatal(err)
	}
	if _, init, err := conn.Read(ctx); err != nil || len(init) < 24 || string(init[24:]) != "trustack-"+vm {
		t.Errorf("ServerInit: got %q (%v), want a desktop named trustack-%s", init, err, vm)
	}
	conn.Close(websocket.StatusNormalClosure, "")

	serial := c.consoleURL(t, vm, "serial", "serial")
	conn, _, err = dialConsole(ctx, serial)
	if err != nil {
		t.Fatal(err)
	}
	nc := websocket.NetConn(ctx, conn, websocket.MessageBinary)
	if _, err := io.WriteString(nc, "uptime\r"); err != nil {
		t.Fatal(err)
	}
	echo := make([]byte, len("uptime\r"))
	if _, err := io.ReadFull(nc, echo); err != nil || string(echo) != "uptime\r" {
		t.Errorf("serial echo: got %q (%v), want %q", echo, err, "uptime\r")
	}
	nc.Close()

	gone := c.boot(t, "alice", "gone", nil)
	ofGone := c.consoleURL(t, gone, "vnc", "novnc")
	c.must(t, http.StatusNoContent, "alice", "DELETE", "/servers/"+gone, nil)
	waitFor(t, "server gone to be deleted", func() bool {
		status, _ := c.do(t, "alice", "GET", "/servers/"+gone, nil)
		return status == http.StatusNotFound
	})
	expired := c.consoleURL(t, vm, "vnc", "novnc")
	tokenless, _, _ := strings.Cut(vnc, "?")
	for _, tc := range []struct{ name, url string }{
		{"used once already", vnc},
		{"a token never issued", tokenless + "?token=NOTATOKEN"},
		{"no token", tokenless},
		{"its server deleted", ofGone},
	} {
		if _, status, err := dialConsole(ctx, tc.url); err == nil || status != http.StatusUnauthorized {
			t.Errorf("console URL %s: got %d (%v), want 401", tc.name, status, err)
		}
	}
	c.skew.Store(int64(601 * time.Second))
	if _, status, err := dialConsole(ctx, expired); err == nil || status != http.StatusUnauthorized {
		t.Errorf("console URL after 601 s: got %d (%v), want 401", status, err)
	}
}

// TestConsoleAuthTokens checks that operators see what a token opens.
func TestConsoleAuthTokens(t *testing.T) {
	c := newCloud(t)
	vm := c.boot(t, "alice", "vm", nil)
	u, err := url.Parse(c.consoleURL(t, vm, "serial", "serial"))
	if err != nil {
		t.Fatal(err)
	}
	token := u.Query().Get("token")
	got := c.must(t, http.StatusOK, "admin", "GET", "/os-console-auth-tokens/"+token, nil)["console"].(obj)
	if got["instance_uuid"] != vm || got["host"] != "127.0.0.1" || got["port"].(float64) == 0 || got["internal_access_path"] != nil {
		t.Errorf("token: got %v, want the console of %s at 127.0.0.1", got, vm)
	}
	c.must(t, http.StatusForbidden, "alice", "GET", "/os-console-auth-tokens/"+token, nil)
	c.must(t, http.StatusNotFound, "admin", "GET", "/os-console-auth-tokens/NOTATOKEN", nil)
}
