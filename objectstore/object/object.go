// Package object is the object server of a storage node: it keeps the
// objects of the partitions that the ring puts on the node's devices and
// speaks Swift's object server backend protocol to the proxies: PUT, GET,
// HEAD, POST and DELETE of /device/partition/account/container/object.
//
// Every version of an object is a file in the object's directory named by
// its timestamp, as in Swift's diskfile: <ts>.data holds content and
// metadata, <ts>.meta the metadata of a later POST, <ts>.ts a deletion.
// The newest wins, whatever order they arrive in, so the server takes no
// locks and replicas converge. A reply of success means the change is on
// disk. After a PUT or a DELETE the server tells the container's nodes,
// keeping what they did not take for RunUpdater to retry. A write that
// changes an object's X-Delete-At moves its entry in the expirer's queue
// (the hidden account objectstore.ExpiringObjectsAccount) the same way.
//
// Replicas are kept alike by a Replicator on each node, which compares
// partitions by the hashes of their suffixes (REPLICATE) and pushes the
// files that differ (SYNC), and kept sound by an Auditor, which
// quarantines the objects whose content rotted.
package object

import (
	"cmp"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/trustack/trustack/objectstore"
	"github.com/trustack/trustack/objectstore/node"
	"github.com/trustack/trustack/objectstore/ring"
)

// Options configure a Server; the zero value is no key, the system clock
// and a 3 s wait for container nodes.
type Options struct {
	Key           string           // the backend key every request must carry, sent with container updates; "" for none
	Now           func() time.Time // the clock that decides expiry (X-Delete-At); nil for time.Now
	Log           *slog.Logger     // what goes wrong that no reply tells; nil discards it
	UpdateTimeout time.Duration    // the wait for the container nodes on each update; 0 for 3 s
	Client        *http.Client     // sends container updates; nil for a client of its own
	// ContainerRing places the expirer's queue containers, from which
	// the server removes an object's entry when its X-Delete-At changes;
	// nil leaves old entries for the expirer to drop.
	ContainerRing *ring.Ring
}

// Server is the object server of a node whose devices are directories
// under its root. It is an http.Handler, safe for concurrent use.
type Server struct {
	root          string
	hasher        objectstore.Hasher
	key           string
	now           func() time.Time
	log           *slog.Logger
	updateTimeout time.Duration
	client        *http.Client
	containerRing *ring.Ring
	handler       http.Handler
}

// New returns the object server of the devices under root, placing
// objects with hasher.
func New(root string, hasher objectstore.Hasher, opts Options) *Server {
	s := &Server{root: root, hasher: hasher, key: opts.Key, now: opts.Now, containerRing: opts.ContainerRing,
		log:           cmp.Or(opts.Log, slog.New(slog.DiscardHandler)),
		updateTimeout: cmp.Or(opts.UpdateTimeout, 3*time.Second),
		client:        cmp.Or(opts.Client, &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second}})}
	if s.now == nil {
		s.now = time.Now
	}
	s.handler = node.Guard(opts.Key, http.HandlerFunc(s.serve))
	return s
}

// ServeHTTP serves a backend request. Errors are plain text: 400 for a
// malformed request, 401 without the key, 404, 405 for methods other
// than GET, HEAD, PUT, POST, DELETE and the replicator's REPLICATE and
// SYNC (see replicate.go), 409 for a timestamp not newer than what is
// stored (with X-Backend-Timestamp), 507 for a missing device.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// location is where a request's object lives.
type location struct {
	path   node.Path
	name   string // /account/container/object, as metadata keeps it
	devDir string
	hash   objectstore.Hash
	dir    string
}

// statusError is a reply other than success, with the X-Backend-Timestamp
// of what is stored (0 for none) that tells a proxy, say, deleted from
// never there.
type statusError struct {
	status int
	msg    string
	ts     objectstore.Timestamp
}

func (e *statusError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) error {
	return &statusError{status: status, msg: fmt.Sprintf(format, args...)}
}

func notFound(ts objectstore.Timestamp) error {
	return &statusError{http.StatusNotFound, "not found", ts}
}

func conflict(ts objectstore.Timestamp) error {
	return &statusError{http.StatusConflict, "a version as new is stored", ts}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	var se *statusError
	switch err := s.route(w, r); {
	case err == nil:
	case errors.As(err, &se):
		if se.ts != 0 {
			w.Header().Set("X-Backend-Timestamp", se.ts.String())
		}
		node.Error(w, se.status, se.msg)
	case errors.Is(err, node.ErrUnmounted) || errors.Is(err, syscall.ENOSPC):
		node.Error(w, http.StatusInsufficientStorage, "insufficient storage")
	default:
		s.log.Error("object server", "method", r.Method, "path", r.URL.Path, "err", err)
		node.Error(w, http.StatusInternalServerError, "internal error")
	}
}

func (s *Server) route(w http.ResponseWriter, r *http.Request) error {
	switch r.Method {
	case "REPLICATE":
		return s.replicate(w, r)
	case "SYNC":
		return s.sync(w, r)
	}
	handle, ok := map[string]func(http.ResponseWriter, *http.Request, location) error{
		"GET": s.get, "HEAD": s.get, "PUT": s.put, "POST": s.post, "DELETE": s.delete}[r.Method]
	if !ok {
		w.Header().Set("Allow", "GET, HEAD, PUT, POST, DELETE")
		return errorf(http.StatusMethodNotAllowed, "method not allowed")
	}
	p, err := node.ParsePath(r, 3, 3)
	if err == nil {
		err = checkName(p)
	}
	if err != nil {
		return errorf(http.StatusBadRequest, "%v", err)
	}
	devDir, err := node.Device(s.root, p.Device)
	if err != nil {
		return err
	}
	h := s.hasher.Path(p.Account, p.Container, p.Object)
	return handle(w, r, location{path: p, name: "/" + p.Account + "/" + p.Container + "/" + p.Object,
		devDir: devDir, hash: h, dir: objectstore.Dir(s.root, p.Device, objectstore.Objects, p.Partition, h)})
}

// checkName refuses what Swift refuses: names too long, not UTF-8 or
// holding NUL, and a slash (escaped) in an account or container, which
// would make /account/container/object ambiguous.
func checkName(p node.Path) error {
	if len(p.Object) > objectstore.MaxObjectNameLength {
		return fmt.Errorf("object name of %d bytes: over %d", len(p.Object), objectstore.MaxObjectNameLength)
	}
	for _, s := range []string{p.Account, p.Container, p.Object} {
		if !utf8.ValidString(s) || strings.Contains(s, "\x00") {
			return fmt.Errorf("invalid name %q: want UTF-8 without NUL", s)
		}
	}
	if strings.Contains(p.Account+p.Container, "/") {
		return errors.New("invalid path: slash in account or container")
	}
	return nil
}

// object is the newest version of an object, open for reading: its
// content is the first size bytes of f.
type object struct {
	f       *os.File
	size    int64
	meta    map[string]string // the data's, with a newer POST's applied
	post    map[string]string // the newer POST's alone
	data    objectstore.Timestamp
	ts      objectstore.Timestamp // of the data or of a newer POST
	expired bool
}

// open opens the newest version of o's object. It returns nil and the
// directory's files if there is none: deleted, never there, or corrupt,
// when open quarantines it.
func (s *Server) open(o location) (*object, files, error) {
	for try := 0; ; try++ {
		f, err := listFiles(o.dir)
		if err != nil || f.deleted() || f.data == 0 {
			return nil, f, err
		}
		obj, err := openObject(o.dir, f)
		switch {
		case errors.Is(err, os.ErrNotExist) && try < 3:
			continue // a newer version replaced it meanwhile
		case errors.Is(err, ErrCorrupt):
			s.quarantine(o, err)
			return nil, files{}, nil
		case err != nil:
			return nil, f, err
		case obj.meta["name"] != o.name: // a hash collision or a misplaced file
			s.log.Error("object of another name in its directory", "object", o.name, "found", obj.meta["name"])
			obj.f.Close()
			return nil, files{}, nil
		}
		at, err := strconv.ParseInt(obj.meta["X-Delete-At"], 10, 64)
		obj.expired = err == nil && at <= s.now().Unix()
		return obj, f, nil
	}
}

// live returns o's object if it is there and not expired, else a 404.
func (s *Server) live(o location) (*object, error) {
	obj, f, err := s.open(o)
	switch {
	case err != nil:
		return nil, err
	case obj == nil:
		return nil, notFound(f.tomb)
	case obj.expired:
		obj.f.Close()
		return nil, notFound(obj.ts)
	}
	return obj, nil
}

func openObject(dir string, f files) (*object, error) {
	file, size, meta, err := openData(filepath.Join(dir, f.data.String()+extData))
	if err != nil {
		return nil, err
	}
	obj := &object{f: file, size: size, meta: meta, data: f.data, ts: f.data}
	if f.meta > f.data {
		post, err := readMeta(filepath.Join(dir, f.meta.String()+extMeta))
		if err != nil {
			file.Close()
			return nil, err
		}
		obj.meta, obj.post, obj.ts = mergeMeta(meta, post), post, f.meta
	}
	return obj, nil
}

func (s *Server) quarantine(o location, err error) {
	s.log.Error("object quarantined", "object", o.name, "dir", o.dir, "err", err)
	if err := quarantine(o.devDir, o.dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.log.Error("quarantine object", "object", o.name, "err", err)
	}
	s.invalidate(o)
}

// The headers an object keeps: those of userPrefixes and postable, which
// a POST replaces all of, and those of dataPrefixes and dataHeaders,
// which stay with the data unless a POST sets new ones. A POST's
// Content-Type stays until a newer one, as in Swift: each .meta carries
// it on with its time, typeTimestamp, and it yields to newer data.
var (
	userPrefixes  = []string{"X-Object-Meta-", "X-Object-Transient-Sysmeta-"}
	postable      = []string{"Content-Type", "Content-Encoding", "Content-Disposition", "X-Object-Manifest", "X-Delete-At"}
	dataPrefixes  = []string{"X-Object-Sysmeta-"}
	dataHeaders   = []string{"X-Static-Large-Object"}
	typeTimestamp = "X-Content-Type-Timestamp"
)

func mergeMeta(data, post map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range data {
		if k == "Content-Type" || !slices.Contains(postable, k) && !slices.ContainsFunc(userPrefixes, func(p string) bool { return strings.HasPrefix(k, p) }) {
			out[k] = v
		}
	}
	for k, v := range post {
		if k != "Content-Type" || post[typeTimestamp] > data["X-Timestamp"] { // timestamps sort as strings
			out[k] = v
		}
	}
	return out
}

// requestMeta returns r's X-Timestamp and the metadata of its headers
// that match prefixes or are named in names, with X-Delete-At checked.
func (s *Server) requestMeta(r *http.Request, prefixes, names []string) (objectstore.Timestamp, map[string]string, error) {
	ts, err := node.Timestamp(r, "X-Timestamp")
	if err != nil {
		return 0, nil, errorf(http.StatusBadRequest, "%v", err)
	}
	meta := node.Metadata(r.Header, prefixes...)
	for _, k := range names {
		if v := r.Header.Get(k); v != "" {
			meta[k] = v
		}
	}
	meta["X-Timestamp"] = ts.String()
	if v, ok := meta["X-Delete-At"]; ok {
		at, err := strconv.ParseInt(v, 10, 64)
		if err != nil || at <= s.now().Unix() {
			return 0, nil, errorf(http.StatusBadRequest, "X-Delete-At %q: want an integer time in the future", v)
		}
		meta["X-Delete-At"] = strconv.FormatInt(at, 10)
	}
	return ts, meta, nil
}

// get serves GET and HEAD with http.ServeContent, which answers ranges
// and conditional requests. A whole GET is checked against the ETag: an
// object of up to wholeHold bytes is held back whole until the check
// passes, so that none of a bad copy leaves; a larger one as it streams,
// its last streamHold bytes held back. A mismatch quarantines the object
// and aborts the reply (the proxy then reads from another replica), so
// that no client gets all of bad content. Ranges are not checked; the
// auditor finds what they miss. A HEAD reads no content.
func (s *Server) get(w http.ResponseWriter, r *http.Request, o location) error {
	obj, err := s.live(o)
	if err != nil {
		return err
	}
	defer obj.f.Close()
	h := w.Header()
	for k, v := range obj.meta {
		if !slices.Contains([]string{"name", "Content-Length", "ETag", "X-Timestamp", typeTimestamp, "Content-Encoding"}, k) {
			h.Set(k, v)
		}
	}
	h["Content-Type"] = []string{obj.meta["Content-Type"]} // set even if empty: ServeContent would sniff
	h.Set("ETag", `"`+obj.meta["ETag"]+`"`)
	h.Set("X-Timestamp", obj.ts.String())
	h.Set("X-Backend-Timestamp", obj.ts.String())
	h.Set("X-Backend-Data-Timestamp", obj.data.String())
	// Last-Modified is the timestamp rounded up to the second, as in
	// Swift, so that it is never earlier than the change.
	modified := obj.ts.Time()
	if t := modified.Truncate(time.Second); !t.Equal(modified) {
		modified = t.Add(time.Second)
	}
	hw := &holdWriter{ResponseWriter: w, get: r.Method == http.MethodGet, encoding: obj.meta["Content-Encoding"], hold: streamHold}
	if obj.size <= wholeHold {
		hw.hold = int(obj.size) + 1 // never reached: all of it waits
	}
	http.ServeContent(hw, r, "", modified, io.NewSectionReader(obj.f, 0, obj.size))
	if hw.md5 == nil || hw.n != obj.size {
		return nil // not a whole GET, or the reply broke off
	}
	if hex.EncodeToString(hw.md5.Sum(nil)) != obj.meta["ETag"] {
		s.quarantine(o, fmt.Errorf("%w: content does not match its ETag", ErrCorrupt))
		panic(http.ErrAbortHandler)
	}
	_, err = w.Write(hw.held)
	return err
}

// holdWriter is the ResponseWriter of a GET. The content of a whole
// reply (200) goes through md5, and its last hold bytes (at least) wait
// in held until the caller checks the sum. Content-Encoding is set only as the
// header of a success is written: ServeContent, seeing it, would send no
// Content-Length.
type holdWriter struct {
	http.ResponseWriter
	get      bool
	encoding string
	md5      hash.Hash
	n        int64
	hold     int
	held     []byte
}

// wholeHold is the largest object held back whole until checked;
// streamHold is how much of a larger one is.
const (
	wholeHold  = 4 << 20
	streamHold = 64 << 10
)

func (w *holdWriter) WriteHeader(code int) {
	if w.encoding != "" && code < 300 {
		w.Header().Set("Content-Encoding", w.encoding)
	}
	if w.get && code == http.StatusOK {
		w.md5 = md5.New()
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *holdWriter) Write(p []byte) (int, error) {
	if w.md5 == nil {
		return w.ResponseWriter.Write(p)
	}
	w.md5.Write(p)
	w.n += int64(len(p))
	w.held = append(w.held, p...)
	if len(w.held) >= 2*w.hold {
		n := len(w.held) - w.hold
		if _, err := w.ResponseWriter.Write(w.held[:n]); err != nil {
			return 0, err
		}
		w.held = append(w.held[:0], w.held[n:]...)
	}
	return len(p), nil
}

// put stores an object: the body streamed into a temporary file, checked
// against a given ETag and length, then published with one rename. A 201
// means the object is on disk.
func (s *Server) put(w http.ResponseWriter, r *http.Request, o location) error {
	ts, meta, err := s.requestMeta(r, slices.Concat(userPrefixes, dataPrefixes), slices.Concat(postable, dataHeaders))
	switch {
	case err != nil:
		return err
	case meta["Content-Type"] == "":
		return errorf(http.StatusBadRequest, "missing Content-Type")
	case !slices.Contains(r.TransferEncoding, "chunked") && r.Header.Get("Content-Length") == "":
		return errorf(http.StatusLengthRequired, "missing Content-Length or chunked transfer encoding")
	case r.ContentLength > objectstore.MaxFileSize:
		return errorf(http.StatusRequestEntityTooLarge, "object too large")
	}
	old, f, err := s.open(o)
	if err != nil {
		return err
	}
	var oldDeleteAt string
	if old != nil {
		old.f.Close()
		oldDeleteAt = old.meta["X-Delete-At"]
	}
	if f.latest() >= ts {
		return conflict(f.latest())
	}

	d, err := createData(filepath.Join(o.devDir, "tmp"))
	if err != nil {
		return err
	}
	defer d.abort()
	body := &bodyReader{r: r.Body}
	_, err = io.Copy(d, io.LimitReader(body, objectstore.MaxFileSize+1))
	switch {
	case errors.Is(body.err, io.ErrUnexpectedEOF):
		return errorf(499, "fewer bytes came than promised") // Swift's Client Disconnect
	case body.err != nil:
		return errorf(http.StatusBadRequest, "reading the body: %v", body.err)
	case err != nil:
		return err
	case d.n > objectstore.MaxFileSize:
		return errorf(http.StatusRequestEntityTooLarge, "object too large")
	case r.ContentLength >= 0 && d.n != r.ContentLength:
		return errorf(499, "got %d bytes of %d", d.n, r.ContentLength)
	}
	etag := d.etag()
	if want := strings.Trim(r.Header.Get("ETag"), `"`); want != "" && !strings.EqualFold(want, etag) {
		return errorf(http.StatusUnprocessableEntity, "content does not match its ETag")
	}
	meta["name"], meta["Content-Length"], meta["ETag"] = o.name, strconv.FormatInt(d.n, 10), etag
	if err := d.commit(o.dir, ts, meta); err != nil {
		return err
	}
	s.cleanup(o)
	u := update{Op: http.MethodPut, Headers: map[string]string{
		"X-Size": meta["Content-Length"], "X-Content-Type": meta["Content-Type"], "X-Etag": etag}}
	// A large object's manifest is listed as the object it stands for:
	// the proxy says its size and ETag.
	for header, field := range map[string]string{"X-Backend-Container-Update-Override-Size": "X-Size", "X-Backend-Container-Update-Override-Etag": "X-Etag"} {
		if v := r.Header.Get(header); v != "" {
			u.Headers[field] = v
		}
	}
	if err := errors.Join(s.updateContainers(r, o, ts, u), s.updateExpiringQueue(r, o, ts, oldDeleteAt, meta["X-Delete-At"])); err != nil {
		return err
	}
	w.Header().Set("ETag", etag)
	w.WriteHeader(http.StatusCreated)
	return nil
}

// bodyReader keeps the error of reading a request's body, to tell it from
// an error writing the disk.
type bodyReader struct {
	r   io.Reader
	err error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

func (s *Server) cleanup(o location) {
	s.invalidate(o)
	if err := cleanup(o.dir); err != nil {
		s.log.Warn("remove obsolete object files", "dir", o.dir, "err", err)
	}
}

// post replaces the object's user metadata (userPrefixes and postable)
// with the request's in a .meta file, keeping its content and the rest.
func (s *Server) post(w http.ResponseWriter, r *http.Request, o location) error {
	ts, meta, err := s.requestMeta(r, slices.Concat(userPrefixes, dataPrefixes), postable)
	if err != nil {
		return err
	}
	obj, err := s.live(o)
	if err != nil {
		return err
	}
	obj.f.Close()
	if obj.ts >= ts {
		return conflict(obj.ts)
	}
	if meta["Content-Type"] != "" {
		meta[typeTimestamp] = ts.String()
	} else if obj.post[typeTimestamp] != "" {
		meta["Content-Type"], meta[typeTimestamp] = obj.post["Content-Type"], obj.post[typeTimestamp]
	}
	b, err := json.Marshal(meta)
	if err == nil {
		err = node.WriteFile(o.dir, ts.String()+extMeta, b)
	}
	if err != nil {
		return err
	}
	s.cleanup(o)
	if err := s.updateExpiringQueue(r, o, ts, obj.meta["X-Delete-At"], meta["X-Delete-At"]); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// delete writes a tombstone newer than the object, as Swift does: 204 if
// a live object was there, 404 if not (the tombstone is written all the
// same, so that a replica still holding the object learns it is gone),
// 409 if the live object's data is as new as the request. With
// X-If-Delete-At (the expirer's), it deletes only an object whose
// X-Delete-At is that, else 412.
func (s *Server) delete(w http.ResponseWriter, r *http.Request, o location) error {
	ts, err := node.Timestamp(r, "X-Timestamp")
	if err != nil {
		return errorf(http.StatusBadRequest, "%v", err)
	}
	ifDeleteAt := r.Header.Get("X-If-Delete-At")
	want, err := strconv.ParseInt(ifDeleteAt, 10, 64)
	if ifDeleteAt != "" && err != nil {
		return errorf(http.StatusBadRequest, "X-If-Delete-At: want an integer")
	}
	obj, f, err := s.open(o)
	if err != nil {
		return err
	}
	orig, deleteAt, live := f.tomb, "", false
	if obj != nil {
		obj.f.Close()
		orig, deleteAt, live = obj.data, obj.meta["X-Delete-At"], !obj.expired
	}
	if ifDeleteAt != "" {
		have, _ := strconv.ParseInt(deleteAt, 10, 64)
		switch {
		case orig == 0:
			return notFound(0)
		case orig >= ts:
			return conflict(orig)
		case have != want:
			return errorf(http.StatusPreconditionFailed, "X-If-Delete-At is not the object's X-Delete-At")
		}
	}
	if live && orig >= ts {
		return conflict(orig)
	}
	if orig < ts {
		if err := node.WriteFile(o.dir, ts.String()+extTomb, nil); err != nil {
			return err
		}
		s.cleanup(o)
		err := s.updateContainers(r, o, ts, update{Op: http.MethodDelete, Headers: map[string]string{}})
		if ifDeleteAt == "" { // the expirer removes its queue's entry itself
			err = errors.Join(err, s.updateExpiringQueue(r, o, ts, deleteAt, ""))
		}
		if err != nil {
			return err
		}
	}
	if !live {
		return notFound(max(orig, ts))
	}
	w.Header().Set("X-Backend-Timestamp", ts.String())
	w.WriteHeader(http.StatusNoContent)
	return nil
}
