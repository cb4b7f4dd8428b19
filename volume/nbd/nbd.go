// Package nbd serves a storage host's volumes to compute hosts over NBD
// with qemu-storage-daemon: one daemon per export, listening on the
// host's address with TLS and a pre-shared key of the export's own, so
// that only the compute host given the key can open the volume. Daemons
// outlive the agent that started them, as guests do; a restarted agent
// finds its exports in its directory.
package nbd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/internal/qemuimg"
	"github.com/trustack/trustack/internal/qmp"
)

// TLSPriority is the GnuTLS priority of both ends of an export's TLS
// session (tls-creds-psk's priority): AES-128-GCM first, which runs on
// the CPU's AES instructions, then ChaCha20-Poly1305. GnuTLS's default
// order puts AES-256-GCM first, which TLS 1.3 cannot pair with a
// pre-shared key hashed with SHA-256, and so ChaCha20 is chosen: it
// halves the throughput of a volume (make bench-volume).
const TLSPriority = "NORMAL:-CIPHER-ALL:+AES-128-GCM:+CHACHA20-POLY1305"

// daemonMalloc is the GLIBC_TUNABLES of an export's daemon. Its NBD
// server allocates a buffer of each request's size and frees it once
// answered; glibc serves blocks of a MiB and more with mmap, so each
// request faulted in and zeroed fresh pages. Blocks up to NBD's largest
// request (32 MiB) come from the heap instead, which keeps up to 32 MiB
// free before giving it back: 13-15% more throughput both ways (make
// bench-volume), for at most that much memory a daemon.
const daemonMalloc = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=33554432"

// dhParams is RFC 7919's ffdhe2048 group (PKCS #3, PEM), which an
// export's daemon reads from its directory (dh-params.pem). Without it,
// QEMU's TLS server makes Diffie-Hellman parameters of its own each time
// it starts, searching for a prime: 0.1-1 s on a host, and seconds in a
// storage host under TCG, for each export. TLS 1.3 with a pre-shared key
// uses the group it negotiates instead; TLS 1.2's DHE-PSK uses these,
// and RFC 7919 asks for a published safe prime such as this one.
const dhParams = `-----BEGIN DH PARAMETERS-----
MIIBCAKCAQEA//////////+t+FRYortKmq/cViAnPTzx2LnFg84tNpWp4TZBFGQz
+8yTnc4kmz75fS/jY2MMddj2gbICrsRhetPfHtXV/WVhJDP1H18GbtCFY2VVPe0a
87VXE15/V8k1mE8McODmi3fipona8+/och3xWKE2rec1MKzKT0g6eXq8CrGCsyT7
YdEIqUuyyOP7uWrat2DX9GgdT0Kj3jlN9K5W7edjcrsZCwenyO4KbXCeAvzhzffi
7MA0BM0oNC9hkXL+nOmFg/+OTxIy7vKBg8P+OxtMb61zO7X8vC7CIAXFjvGDfRaD
ssbzSibBsu/6iGtCOGEoXJf//////////wIBAg==
-----END DH PARAMETERS-----
`

// Key is an export's TLS pre-shared key: an identity and a secret of 32
// bytes in hexadecimal, as QEMU's tls-creds-psk reads them.
type Key struct {
	Identity string `json:"identity"`
	Secret   string `json:"secret"`
}

// NewKey returns a random key for identity.
func NewKey(identity string) Key {
	b := make([]byte, 32)
	rand.Read(b)
	return Key{Identity: identity, Secret: hex.EncodeToString(b)}
}

// WriteKeyDir writes a directory holding k as QEMU's tls-creds-psk reads
// it (keys.psk), readable by its owner only.
func WriteKeyDir(dir string, k Key) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "keys.psk"), []byte(keyLine(k)), 0o600)
}

// keyLine is a key as QEMU's tls-creds-psk reads it from keys.psk.
func keyLine(k Key) string { return k.Identity + ":" + k.Secret + "\n" }

// Export is a volume served over NBD: where a client connects, and the
// export's name there.
type Export struct {
	Host string `json:"host"`
	Port int    `json:"port"`
	Name string `json:"name"`
}

// Exporter runs the exports of a host, each in a directory of its own
// under dir, listening on address (the host's).
type Exporter struct {
	dir     string
	address string
	binary  string
}

// NewExporter returns an exporter keeping its exports under dir.
func NewExporter(dir, address string) (*Exporter, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("nbd: %w", err)
	}
	bin, err := exec.LookPath("qemu-storage-daemon")
	if err != nil {
		return nil, trustack.Errorf(trustack.EUNAVAILABLE, "nbd: qemu-storage-daemon is not installed (scripts/install-deps installs it)")
	}
	return &Exporter{dir: dir, address: address, binary: bin}, nil
}

// Export serves the volume whose blocks are at path, in format (raw or
// qcow2), as the export name, to the holder of key. Exporting a name that
// is served already with the same key returns where it is; with another
// key, it is served anew to that key's holder alone (the old one's
// connection closed).
func (e *Exporter) Export(ctx context.Context, name, path, format string, key Key) (Export, error) {
	if format != "raw" && format != "qcow2" {
		return Export{}, trustack.Errorf(trustack.EINVALID, "nbd: format %q: want raw or qcow2", format)
	}
	dir := filepath.Join(e.dir, name)
	if ex, ok := e.running(name); ok {
		if held, err := os.ReadFile(filepath.Join(dir, "keys.psk")); err == nil && string(held) == keyLine(key) {
			return ex, nil
		}
		// Served to the holder of another key: a client that is gone,
		// as a volume serves one server.
		if err := e.Unexport(ctx, name); err != nil {
			return Export{}, err
		}
	}
	os.RemoveAll(dir)
	if err := WriteKeyDir(dir, key); err != nil {
		return Export{}, fmt.Errorf("nbd: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "dh-params.pem"), []byte(dhParams), 0o600); err != nil {
		return Export{}, fmt.Errorf("nbd: %w", err)
	}
	var last error
	for range 5 { // a port found free may be taken before the daemon binds it
		port, err := freePort(e.address)
		if err != nil {
			return Export{}, err
		}
		if last = e.start(ctx, dir, name, path, format, port); last == nil {
			ex := Export{Host: e.address, Port: port, Name: name}
			return ex, os.WriteFile(filepath.Join(dir, "port"), []byte(strconv.Itoa(port)), 0o600)
		}
	}
	os.RemoveAll(dir)
	return Export{}, last
}

// start runs the daemon of an export and waits for it to serve.
func (e *Exporter) start(ctx context.Context, dir, name, path, format string, port int) error {
	cmd := exec.CommandContext(ctx, e.binary,
		"--object", "tls-creds-psk,id=tls0,endpoint=server,priority="+TLSPriority+",dir="+dir,
		"--blockdev", "driver="+qemuimg.ProtocolDriver(path)+",node-name=file0,filename="+path,
		"--blockdev", "driver="+format+",node-name=disk0,file=file0",
		"--nbd-server", fmt.Sprintf("addr.type=inet,addr.host=%s,addr.port=%d,tls-creds=tls0", e.address, port),
		"--export", "type=nbd,id=export0,node-name=disk0,name="+name+",writable=on",
		// Relative to the export's directory: socket paths are short.
		"--chardev", "socket,id=monitor0,path=qmp.sock,server=on,wait=off",
		"--monitor", "chardev=monitor0",
		"--pidfile", filepath.Join(dir, "pid"),
		"--daemonize")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GLIBC_TUNABLES="+daemonMalloc)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return trustack.Errorf(trustack.EUNAVAILABLE, "nbd: export %s: qemu-storage-daemon: %v: %s", name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// running returns the export of a name whose daemon is alive.
func (e *Exporter) running(name string) (Export, bool) {
	dir := filepath.Join(e.dir, name)
	pid, ok := readInt(filepath.Join(dir, "pid"))
	if !ok || syscall.Kill(pid, 0) != nil {
		return Export{}, false
	}
	port, ok := readInt(filepath.Join(dir, "port"))
	if !ok {
		return Export{}, false
	}
	return Export{Host: e.address, Port: port, Name: name}, true
}

// Grow has the daemon serving a name see its volume grown to size bytes,
// and serve it anew at that size: NBD tells a client the size of an
// export only when it connects, and QEMU's export will not let its volume
// be resized under it. The export is taken down, the volume resized
// (the daemon grows a file itself; a block device must have grown
// already), and the export put back under the same name; the client
// reconnects within its reconnect-delay, its requests meanwhile waiting,
// and must connect anew to see the new size. Growing to the size the
// volume has puts back an export that a cut-short Grow left down.
// ENOTFOUND for a name not served.
func (e *Exporter) Grow(ctx context.Context, name string, size int64) error {
	if _, ok := e.running(name); !ok {
		return trustack.Errorf(trustack.ENOTFOUND, "nbd: %s is not served", name)
	}
	mon, err := qmp.Dial(ctx, filepath.Join(e.dir, name), "qmp.sock")
	if err != nil {
		return trustack.Errorf(trustack.EUNAVAILABLE, "nbd: grow %s: %v", name, err)
	}
	defer mon.Close()
	have, err := nodeSize(ctx, mon, "disk0")
	if err != nil {
		return err
	}
	exports, err := exportIDs(ctx, mon)
	if err != nil {
		return err
	}
	if have < size {
		for _, id := range exports {
			if _, err := mon.Run(ctx, "block-export-del", map[string]any{"id": id, "mode": "hard"}); err != nil {
				return trustack.Errorf(trustack.EUNAVAILABLE, "nbd: grow %s: %v", name, err)
			}
		}
		for len(exports) > 0 {
			select {
			case <-ctx.Done():
				return trustack.Errorf(trustack.EUNAVAILABLE, "nbd: grow %s: the export did not go: %v", name, ctx.Err())
			case <-time.After(5 * time.Millisecond):
			}
			if exports, err = exportIDs(ctx, mon); err != nil {
				return err
			}
		}
		_, err = mon.Run(ctx, "block_resize", map[string]any{"node-name": "disk0", "size": size})
		if err != nil {
			err = trustack.Errorf(trustack.EUNAVAILABLE, "nbd: grow %s: %v", name, err)
		}
	}
	if len(exports) == 0 { // served again even if the resize failed
		if _, aerr := mon.Run(ctx, "block-export-add", map[string]any{"type": "nbd", "id": "export0", "node-name": "disk0", "name": name, "writable": true}); aerr != nil {
			return trustack.Errorf(trustack.EUNAVAILABLE, "nbd: serve %s again: %v", name, aerr)
		}
	}
	return err
}

// nodeSize returns the size in bytes of a block node of a daemon.
func nodeSize(ctx context.Context, mon *qmp.Monitor, node string) (int64, error) {
	out, err := mon.Run(ctx, "query-named-block-nodes", map[string]any{"flat": true})
	if err != nil {
		return 0, trustack.Errorf(trustack.EUNAVAILABLE, "nbd: %v", err)
	}
	var nodes []struct {
		NodeName string `json:"node-name"`
		Image    struct {
			VirtualSize int64 `json:"virtual-size"`
		} `json:"image"`
	}
	if err := json.Unmarshal(out, &nodes); err != nil {
		return 0, fmt.Errorf("nbd: query-named-block-nodes: %w", err)
	}
	for _, n := range nodes {
		if n.NodeName == node {
			return n.Image.VirtualSize, nil
		}
	}
	return 0, trustack.Errorf(trustack.EINTERNAL, "nbd: the daemon has no node %s", node)
}

// exportIDs returns the IDs of a daemon's exports.
func exportIDs(ctx context.Context, mon *qmp.Monitor) ([]string, error) {
	out, err := mon.Run(ctx, "query-block-exports", nil)
	if err != nil {
		return nil, trustack.Errorf(trustack.EUNAVAILABLE, "nbd: %v", err)
	}
	var exports []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(out, &exports); err != nil {
		return nil, fmt.Errorf("nbd: query-block-exports: %w", err)
	}
	ids := make([]string, len(exports))
	for i, x := range exports {
		ids[i] = x.ID
	}
	return ids, nil
}

// Unexport stops serving a name, closing its clients' connections; a
// name not served is no error.
func (e *Exporter) Unexport(ctx context.Context, name string) error {
	dir := filepath.Join(e.dir, name)
	if pid, ok := readInt(filepath.Join(dir, "pid")); ok && syscall.Kill(pid, syscall.SIGTERM) == nil {
		for syscall.Kill(pid, 0) == nil {
			select {
			case <-ctx.Done():
				syscall.Kill(pid, syscall.SIGKILL)
				return fmt.Errorf("nbd: unexport %s: %w", name, ctx.Err())
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	if err := os.RemoveAll(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("nbd: %w", err)
	}
	return nil
}

// Exports returns the names served now.
func (e *Exporter) Exports() ([]string, error) {
	entries, err := os.ReadDir(e.dir)
	if err != nil {
		return nil, fmt.Errorf("nbd: %w", err)
	}
	var names []string
	for _, entry := range entries {
		if _, ok := e.running(entry.Name()); ok {
			names = append(names, entry.Name())
		}
	}
	return names, nil
}

func readInt(path string) (int, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return n, err == nil
}

// freePort returns a TCP port free on address now.
func freePort(address string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(address, "0"))
	if err != nil {
		return 0, trustack.Errorf(trustack.EUNAVAILABLE, "nbd: no free port on %s: %v", address, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
