// Package node holds what the storage nodes' servers (object, container,
// account) share as they speak Swift's backend protocol: the paths
// /device/partition/account[/container[/object]] and their checks, the
// timestamps and metadata carried in headers, the key that keeps anyone
// but the cluster's proxies and nodes out, error replies, and writing
// files so that a reply of success means they are on disk.
package node

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/trustack/trustack/objectstore"
	"github.com/trustack/trustack/objectstore/ring"
)

// KeyHeader carries the cluster's backend key on every request to a node.
const KeyHeader = "X-Backend-Key"

// Guard refuses, with 401, the requests that do not carry key in
// KeyHeader, compared in constant time, and serves the others with h. An
// empty key lets every request through: the nodes' network is then their
// only protection.
func Guard(key string, h http.Handler) http.Handler {
	if key == "" {
		return h
	}
	want := []byte(key)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get(KeyHeader)), want) != 1 {
			Error(w, http.StatusUnauthorized, "wrong or missing backend key")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// ReplicaHeaders sets in h the X-<kind>-Host, -Device and -Partition
// headers that tell replica i of a thing which replica of another (ring
// r, partition part) to update, as Swift pairs them: kind "Container"
// for an object's container listing, "Delete-At" for its entry in the
// expirer's queue, "Account" for a container's account.
func ReplicaHeaders(h http.Header, kind string, r *ring.Ring, part, i int) {
	nodes := r.Nodes(part)
	n := nodes[i%len(nodes)]
	h.Set("X-"+kind+"-Host", n.Addr())
	h.Set("X-"+kind+"-Device", n.Device)
	h.Set("X-"+kind+"-Partition", strconv.Itoa(part))
}

// Error replies with status and a plain-text message, as Swift's servers
// do.
func Error(w http.ResponseWriter, status int, message string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	fmt.Fprintln(w, message)
}

// Path is a backend request's path: /device/partition/account, then the
// container and the object as deep as the request goes.
type Path struct {
	Device    string
	Partition int
	Account   string
	Container string
	Object    string
}

// ParsePath parses the path of r, which names at least min and at most
// max of account, container and object (1 to 3). The object may hold
// slashes; every part is unescaped. An error is a 400's message.
func ParsePath(r *http.Request, min, max int) (Path, error) {
	raw := strings.TrimPrefix(r.URL.EscapedPath(), "/")
	parts := strings.SplitN(raw, "/", 5)
	var p Path
	if len(parts) < 2+min || len(parts) > 2+max {
		return p, fmt.Errorf("invalid path %q: want /device/partition/account%s", r.URL.Path, [...]string{"", "", "/container", "/container/object"}[max])
	}
	for i, s := range parts {
		u, err := url.PathUnescape(s)
		if err != nil || u == "" {
			return p, fmt.Errorf("invalid path %q: empty or badly escaped part", r.URL.Path)
		}
		parts[i] = u
	}
	p.Device = parts[0]
	if !validDevice(p.Device) {
		return p, fmt.Errorf("invalid device %q", p.Device)
	}
	part, err := strconv.Atoi(parts[1])
	if err != nil || part < 0 {
		return p, fmt.Errorf("invalid partition %q", parts[1])
	}
	p.Partition = part
	p.Account = parts[2]
	if len(parts) > 3 {
		p.Container = parts[3]
	}
	if strings.Contains(p.Account, "/") || strings.Contains(p.Container, "/") {
		return p, fmt.Errorf("invalid path %q: an account or container name holds a slash", r.URL.Path)
	}
	if len(parts) > 4 {
		p.Object = parts[4]
	}
	return p, nil
}

// validDevice reports whether name can name a device: a single directory
// under the node's root, never a way out of it.
func validDevice(name string) bool {
	return name != "." && name != ".." && !strings.ContainsAny(name, "/\\\x00") && len(name) <= 255
}

// ErrUnmounted is Device's error for a device that is not there: the
// node answers 507 Insufficient Storage, and the proxy goes to another.
var ErrUnmounted = errors.New("device not mounted")

// Device returns the directory of a device of a node whose devices are
// directories under root; ErrUnmounted if it does not exist, as when its
// disk failed or was taken out.
func Device(root, device string) (string, error) {
	dir := filepath.Join(root, device)
	st, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && !st.IsDir()) {
		return "", ErrUnmounted
	}
	if err != nil {
		return "", err
	}
	return dir, nil
}

// Timestamp returns the timestamp a request carries in header (most
// often X-Timestamp). An error is a 400's message.
func Timestamp(r *http.Request, header string) (objectstore.Timestamp, error) {
	v := r.Header.Get(header)
	if v == "" {
		return 0, fmt.Errorf("missing %s", header)
	}
	ts, err := objectstore.ParseTimestamp(v)
	if err != nil {
		return 0, fmt.Errorf("%s: %v", header, err)
	}
	return ts, nil
}

// Metadata returns the headers of h whose names start with one of
// prefixes (canonical forms such as "X-Object-Meta-"), by canonical name.
func Metadata(h http.Header, prefixes ...string) map[string]string {
	out := map[string]string{}
	for name, values := range h {
		for _, p := range prefixes {
			if strings.HasPrefix(name, p) && len(name) > len(p) && len(values) > 0 {
				out[name] = values[0]
				break
			}
		}
	}
	return out
}

// WriteFile writes data to dir/name so that it is on disk when WriteFile
// returns: written under a temporary name in the same directory,
// fsynced, renamed, and the directory fsynced. A crash leaves the old
// file or the new one, never part of either. dir is made if missing,
// with its parents synced, and made again if a cleanup removed it
// meanwhile (see Publish).
func WriteFile(dir, name string, data []byte) error {
	var err error
	for attempt := 0; attempt < maxRemade; attempt++ {
		if err = writeFile(dir, name, data); !errors.Is(err, fs.ErrNotExist) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Join(dir, name), err)
	}
	return nil
}

func writeFile(dir, name string, data []byte) error {
	if err := MkdirAll(dir); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err == nil {
		err = SyncDir(dir)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// maxRemade is how many times a directory removed under a write is made
// again before the write fails.
const maxRemade = 4

// Publish renames file, written and synced, into dir as name, and syncs
// dir, making dir first. A directory that a concurrent cleanup removed
// between its making and the rename (the replicator removes object
// directories it finds empty) is made again.
func Publish(file, dir, name string) error {
	var err error
	for attempt := 0; attempt < maxRemade; attempt++ {
		if err = MkdirAll(dir); err == nil {
			err = os.Rename(file, filepath.Join(dir, name))
		}
		if !errors.Is(err, fs.ErrNotExist) {
			break
		}
	}
	if err != nil {
		return err
	}
	return SyncDir(dir)
}

// MkdirAll makes dir and its missing parents, and syncs the parent of
// each directory made, so that a file renamed into dir and synced is
// found after a crash.
func MkdirAll(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := MkdirAll(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o750); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return SyncDir(parent)
}

// Every calls pass at once and then every interval, until ctx ends: the
// loop of a node's background jobs.
func Every(ctx context.Context, interval time.Duration, pass func(context.Context)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		pass(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// SyncDir fsyncs a directory: the names created, renamed or removed in it
// are then on disk.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// WriteJSON answers 200 with v in JSON, HTML's characters unescaped, as
// Swift's listings are. v must be of what JSON can always encode.
func WriteJSON(w http.ResponseWriter, v any) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
	w.Write(b.Bytes())
}
