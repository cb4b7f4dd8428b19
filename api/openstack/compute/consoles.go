package compute

import (
	"cmp"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/coder/websocket"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/api/openstack"
	"github.com/trustack/trustack/compute"
	"github.com/trustack/trustack/wire"
)

// ConsolePath is where the console proxy is mounted, on the API's own
// listener: its websocket at ConsolePath+"/websocket?token=...", noVNC's
// pages beside it.
const ConsolePath = Prefix + "/console"

// consoleActions are the 2.1 server actions that ask for a console, with
// the protocol each stands for.
var consoleActions = map[string]string{
	"os-getVNCConsole":    "vnc",
	"os-getSerialConsole": "serial",
	"os-getSPICEConsole":  "spice",
	"os-getRDPConsole":    "rdp",
}

// consoleAction answers the 2.1 actions os-getVNCConsole and its kin:
// {"console": {"type", "url"}}.
func (h *handler) consoleAction(w http.ResponseWriter, r *http.Request, c compute.Caller, s *trustack.Server, action string, args json.RawMessage) error {
	a, err := consoleRequest(args, action, "type")
	if err != nil {
		return err
	}
	u, err := h.remoteConsole(r, c, s.ID, consoleActions[action], a["type"])
	if err != nil {
		return err
	}
	return ok(w, object{"console": object{"type": a["type"], "url": u}})
}

// createRemoteConsole answers POST /servers/{id}/remote-consoles, which
// Nova serves from microversion 2.6: below it, the route is not found.
func (h *handler) createRemoteConsole(w http.ResponseWriter, r *http.Request) error {
	if !atLeast(r, 6) {
		return trustack.Errorf(trustack.ENOTFOUND, "API version %s does not have remote-consoles.", openstack.MicroversionOf(r))
	}
	c, s, err := h.serverFor(r, "os_compute_api:os-remote-consoles")
	if err != nil {
		return err
	}
	var body struct {
		Console json.RawMessage `json:"remote_console"`
	}
	if err := h.dec.Decode(r, &body); err != nil {
		return err
	}
	if !nonEmpty(body.Console) {
		return invalid("remote_console", "'remote_console' is a required property")
	}
	p, err := consoleRequest(body.Console, "remote_console", "protocol", "type")
	if err != nil {
		return err
	}
	u, err := h.remoteConsole(r, c, s.ID, p["protocol"], p["type"])
	if err != nil {
		return err
	}
	return ok(w, object{"remote_console": object{"protocol": p["protocol"], "type": p["type"], "url": u}})
}

// consoleRequest reads the object of a console request's field, whose
// keys must be the strings named, as Nova's schemas require.
func consoleRequest(raw json.RawMessage, field string, keys ...string) (map[string]string, error) {
	var m map[string]json.RawMessage
	if err := openstack.UnmarshalField(raw, field, &m); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for k, v := range m {
		if !slices.Contains(keys, k) {
			return nil, invalid(field, "Additional properties are not allowed ('%s' was unexpected).", k)
		}
		var s string
		if err := openstack.UnmarshalField(v, field+"."+k, &s); err != nil {
			return nil, err
		}
		out[k] = s
	}
	for _, k := range keys {
		if _, ok := out[k]; !ok {
			return nil, invalid(field, "'%s' is a required property", k)
		}
	}
	return out, nil
}

// remoteConsole issues a console token and returns its URL: noVNC's page
// for novnc, which connects to the proxy's websocket, or the websocket
// itself for serial (ws:, or wss: behind https), as Nova's proxies give.
func (h *handler) remoteConsole(r *http.Request, c compute.Caller, id, protocol, typ string) (string, error) {
	token, err := h.svc.RemoteConsole(r.Context(), c, id, protocol, typ)
	if err != nil {
		return "", err
	}
	base, err := url.Parse(cmp.Or(h.cfg.ConsoleURL, h.cfg.PublicURL))
	if err != nil {
		return "", err
	}
	socket := strings.TrimSuffix(base.Path, "/") + ConsolePath + "/websocket?token=" + url.QueryEscape(token)
	if typ == "serial" {
		base.Scheme = strings.Replace(base.Scheme, "http", "ws", 1)
		return base.Scheme + "://" + base.Host + socket, nil
	}
	// noVNC's path is relative to the host's root.
	page := strings.TrimSuffix(base.Path, "/") + ConsolePath + "/vnc_lite.html"
	return base.Scheme + "://" + base.Host + page + "?path=" + url.QueryEscape(strings.TrimPrefix(socket, "/")), nil
}

// showConsoleToken answers GET /os-console-auth-tokens/{token} for
// operators, in the shape of microversion 2.31, which covers every
// console type.
func (h *handler) showConsoleToken(w http.ResponseWriter, r *http.Request) error {
	if err := h.authorize(r, "os_compute_api:os-console-auth-tokens", ""); err != nil {
		return err
	}
	t, err := h.svc.ConsoleToken(r.Context(), r.PathValue("token"))
	if err != nil {
		return trustack.Errorf(trustack.ENOTFOUND, "The token %s is invalid or has expired.", r.PathValue("token"))
	}
	host, port, err := net.SplitHostPort(t.Address)
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		return err
	}
	return ok(w, object{"console": object{"instance_uuid": t.ServerID, "host": host, "port": n, "internal_access_path": nil}})
}

// ConsoleProxy is the console proxy: Nova's novncproxy and serialproxy in
// one handler, to mount at ConsolePath+"/". Its websocket spends the token
// in its query, dials the console the token was issued for on the
// server's host, and relays the console's bytes both ways in binary
// messages (subprotocol "binary", as noVNC asks). Other paths are noVNC's
// files, when noVNC is installed.
type ConsoleProxy struct {
	svc   *compute.Service
	novnc http.Handler // nil without noVNC
	log   *slog.Logger
}

// NoVNCDir is where Debian's novnc package puts noVNC.
const NoVNCDir = "/usr/share/novnc"

// NewConsoleProxy returns the console proxy over svc, serving noVNC's
// files from novncDir if it exists.
func NewConsoleProxy(svc *compute.Service, novncDir string, log *slog.Logger) *ConsoleProxy {
	p := &ConsoleProxy{svc: svc, log: log}
	if _, err := os.Stat(filepath.Join(novncDir, "vnc_lite.html")); err == nil {
		p.novnc = http.StripPrefix(ConsolePath+"/", http.FileServer(http.Dir(novncDir)))
	}
	return p
}

func (p *ConsoleProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == ConsolePath+"/websocket":
		p.relay(w, r)
	case p.novnc != nil:
		p.novnc.ServeHTTP(w, r)
	default:
		http.Error(w, "noVNC is not installed on this controller (Debian package novnc)", http.StatusNotFound)
	}
}

// refuse answers a websocket request with status, no body, and closes the
// connection, so that a client that reads on as if upgraded (Tempest's
// test_novnc_bad_token does, as websockify upgrades before it checks the
// token) reads nothing.
func refuse(w http.ResponseWriter, status int) {
	w.Header().Set("Connection", "close")
	w.WriteHeader(status)
}

// relay serves the websocket: 401 for a token that is not good (never
// issued, spent, expired, or its server moved), 503 if the console cannot
// be reached.
func (p *ConsoleProxy) relay(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	t, err := p.svc.TakeConsoleToken(ctx, r.URL.Query().Get("token"))
	if err != nil {
		status, _ := openstack.StatusOf(err)
		refuse(w, status)
		return
	}
	console, err := wire.DialConsole(ctx, wire.ConsoleEndpoint{Address: t.Address, Secret: t.Secret})
	if err != nil {
		p.log.Warn("console proxy: dial", "server", t.ServerID, "host", t.Host, "error", err)
		refuse(w, http.StatusServiceUnavailable)
		return
	}
	defer console.Close()
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"binary"}})
	if err != nil {
		return // Accept answered the client
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	client := websocket.NetConn(ctx, ws, websocket.MessageBinary)
	defer client.Close()
	p.log.Info("console proxy: connected", "server", t.ServerID, "host", t.Host, "protocol", t.Protocol)
	done := make(chan struct{})
	go func() {
		io.Copy(client, console)
		cancel() // the console ended: end the client's side too
		close(done)
	}()
	io.Copy(console, client)
	console.Close() // the client left: end the console's side too
	<-done
}
