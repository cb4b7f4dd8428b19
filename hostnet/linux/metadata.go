package linux

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/agent"
	"github.com/trustack/trustack/internal/namespace"
	"github.com/vishvananda/netlink"
)

// Each router answers its guests' requests to the metadata service, as
// Neutron's metadata proxy does: 169.254.169.254 is an address of its
// namespace's loopback, where an HTTP server of the driver's, listening in
// the namespace, hands each request to the metadata source with the
// router's ID and the guest's address, which say whose metadata it is.
const metadataAddress = "169.254.169.254"

// SetMetadataSource has the routers answer guests from source.
func (n *Network) SetMetadataSource(source agent.MetadataSource) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.metadata = source
}

// serveMetadata runs a router's metadata server, unless it runs; the
// caller holds n.mu.
func (n *Network) serveMetadata(routerID string, ns namespace.NS) error {
	if n.metadata == nil || n.proxies[routerID] != nil {
		return nil
	}
	h, err := netlink.NewHandleAt(ns.Handle)
	if err != nil {
		return err
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		return err
	}
	addr, _ := netlink.ParseAddr(metadataAddress + "/32")
	if err := h.AddrReplace(lo, addr); err != nil {
		return fmt.Errorf("router %s: the metadata address: %w", routerID, err)
	}
	var l net.Listener
	err = ns.Do(func() (err error) {
		l, err = net.Listen("tcp", metadataAddress+":80")
		return err
	})
	if err != nil {
		return fmt.Errorf("router %s: listen for metadata requests: %w", routerID, err)
	}
	srv := &http.Server{Handler: metadataHandler(routerID, n.metadata), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l)
	n.proxies[routerID] = srv
	return nil
}

// stopMetadata stops a router's metadata server; the caller holds n.mu.
func (n *Network) stopMetadata(routerID string) {
	if srv := n.proxies[routerID]; srv != nil {
		srv.Close()
		delete(n.proxies, routerID)
	}
}

// metadataHandler answers a guest behind the router from source.
func metadataHandler(routerID string, source agent.MetadataSource) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "only GET", http.StatusMethodNotAllowed)
			return
		}
		guest, _, _ := net.SplitHostPort(r.RemoteAddr)
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		body, err := source(ctx, routerID, guest, r.URL.Path)
		switch {
		case trustack.ErrorCode(err) == trustack.ENOTFOUND:
			http.NotFound(w, r)
			return
		case err != nil:
			if !errors.Is(err, context.Canceled) {
				slog.Warn("metadata request", "router", routerID, "guest", guest, "path", r.URL.Path, "error", err)
			}
			http.Error(w, "the metadata service is unavailable", http.StatusInternalServerError)
			return
		}
		if strings.HasSuffix(r.URL.Path, ".json") {
			w.Header().Set("Content-Type", "application/json")
		} else {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		}
		w.Write(body)
	})
}
