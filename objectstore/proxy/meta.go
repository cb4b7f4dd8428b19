package proxy

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/trustack/trustack/objectstore"
)

// headerName is the canonical form of a header's name as Swift's WSGI
// servers read it: underscores are dashes.
func headerName(name string) string {
	return http.CanonicalHeaderKey(strings.ReplaceAll(name, "_", "-"))
}

// userMeta returns the metadata headers a client set for a thing of kind
// ("Account", "Container", "Object") and the other headers of kind
// clients may set (extra, canonical names), with X-Remove-<kind>-Meta-*
// turned into an empty X-<kind>-Meta-* (which removes it), checked
// against Swift's limits. An error is a 400's message.
func userMeta(h http.Header, kind string, extra ...string) (http.Header, error) {
	prefix := "X-" + kind + "-Meta-"
	remove := "X-Remove-" + kind + "-Meta-"
	out := http.Header{}
	count, size := 0, 0
	for name, values := range h {
		name = headerName(name)
		var key, value string
		switch {
		case strings.HasPrefix(name, prefix):
			key, value = name, values[0]
		case strings.HasPrefix(name, remove):
			key = prefix + name[len(remove):]
		default:
			for _, e := range extra {
				if name == e {
					out.Set(name, values[0])
				} else if r := "X-Remove-" + strings.TrimPrefix(e, "X-"); name == r {
					out.Set(e, "")
				}
			}
			continue
		}
		short := key[len(prefix):]
		switch {
		case short == "":
			return nil, fmt.Errorf("metadata name cannot be empty")
		case len(short) > objectstore.MaxMetaNameLength:
			return nil, fmt.Errorf("metadata name too long: %s; max %d", key, objectstore.MaxMetaNameLength)
		case len(value) > objectstore.MaxMetaValueLength:
			return nil, fmt.Errorf("metadata value longer than %d: %s", objectstore.MaxMetaValueLength, key)
		}
		count++
		size += len(short) + len(value)
		out.Set(key, value)
	}
	switch {
	case count > objectstore.MaxMetaCount:
		return nil, fmt.Errorf("too many metadata items; max %d", objectstore.MaxMetaCount)
	case size > objectstore.MaxMetaOverallSize:
		return nil, fmt.Errorf("total metadata too large; max %d", objectstore.MaxMetaOverallSize)
	}
	return out, nil
}

// clientHeaders copies to w the headers of a node's answer that a client
// may see: none of the backend's own, nor system metadata unless the
// client is in-process (sysmeta).
func clientHeaders(w http.Header, from http.Header, sysmeta bool) {
	for name, values := range from {
		switch {
		case strings.HasPrefix(name, "X-Backend-"),
			strings.Contains(name, "-Sysmeta-") && !sysmeta,
			name == "Date", name == "Server", name == "Connection", name == "Transfer-Encoding", name == "Keep-Alive":
			continue
		}
		w[name] = values
	}
}
