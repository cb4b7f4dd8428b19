package object

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/trustack/trustack/objectstore"
	"github.com/trustack/trustack/objectstore/node"
)

// The files of a partition's directory that replication keeps beside its
// suffixes, as Swift's hashes.pkl and hashes.invalid: the suffixes'
// hashes as last computed, the suffixes changed since (one per line,
// appended by every write), and the lock of the recalculation.
const (
	hashesFile  = "hashes.json"
	invalidFile = "hashes.invalid"
	lockFile    = ".lock"
)

// reclaimAge is how long a tombstone is kept, Swift's reclaim_age: long
// enough for replication to carry it to every replica, including one
// down for days. A replica down longer may bring the object back.
const reclaimAge = 7 * 24 * time.Hour

// invalidate marks the suffix of an object's directory as changed, so
// that the next recalculation of its partition's hashes hashes it again.
// It is an append under a lock, cheap enough for every write.
func invalidate(objDir string) error {
	suffixDir := filepath.Dir(objDir)
	return appendInvalid(filepath.Dir(suffixDir), filepath.Base(suffixDir))
}

func appendInvalid(partDir string, suffixes ...string) error {
	if len(suffixes) == 0 {
		return nil
	}
	f, err := os.OpenFile(filepath.Join(partDir, invalidFile), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	_, err = f.WriteString(strings.Join(suffixes, "\n") + "\n")
	return err
}

// takeInvalid returns the suffixes marked changed and clears the marks.
func takeInvalid(partDir string) ([]string, error) {
	f, err := os.OpenFile(filepath.Join(partDir, invalidFile), os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(f)
	if err == nil {
		err = f.Truncate(0)
	}
	return strings.Fields(string(b)), err
}

func (s *Server) invalidate(o location) {
	if err := invalidate(o.dir); err != nil {
		s.log.Warn("invalidate suffix hash", "dir", o.dir, "err", err)
	}
}

// validSuffix reports whether s names a suffix directory: three
// lowercase hexadecimal digits.
func validSuffix(s string) bool {
	return len(s) == 3 && strings.Trim(s, "0123456789abcdef") == ""
}

// hashFiles is a suffix's hash: the MD5 of its object directories' names
// and, under each, the names of its files, all sorted. Replicas holding
// the same versions of the same objects have the same hash.
func hashFiles(objs map[string][]string) string {
	h := md5.New()
	for _, obj := range slices.Sorted(maps.Keys(objs)) {
		io.WriteString(h, obj+"\n")
		for _, name := range slices.Sorted(slices.Values(objs[obj])) {
			io.WriteString(h, " "+name+"\n")
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// listSuffix returns the files of each object directory of a suffix
// directory, by the object's hash. With clean, it first removes what is
// obsolete, as cleanup does, and tombstones older than reclaimAge, and
// removes the directories left empty. An empty suffix lists nothing.
func listSuffix(dir string, clean bool, now time.Time) (map[string][]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	objs := map[string][]string{}
	for _, e := range entries {
		if h, err := objectstore.ParseHash(e.Name()); err != nil || h.String() != e.Name() || !e.IsDir() {
			continue
		}
		objDir := filepath.Join(dir, e.Name())
		if clean {
			if err := cleanup(objDir); err != nil {
				return nil, err
			}
		}
		f, err := listFiles(objDir)
		if err != nil {
			return nil, err
		}
		if clean && f.deleted() && now.Sub(f.tomb.Time()) > reclaimAge {
			if err := os.Remove(filepath.Join(objDir, f.tomb.String()+extTomb)); err != nil {
				return nil, err
			}
			f.names = nil
		}
		if len(f.names) == 0 {
			if clean {
				os.Remove(objDir) // fails, as it should, if a write just made a file
			}
			continue
		}
		objs[e.Name()] = f.names
	}
	if clean && len(objs) == 0 {
		os.Remove(dir)
	}
	return objs, nil
}

// partitionHashes returns the hashes of a partition's suffixes, by
// suffix, computing again those named, those marked changed and, the
// first time, all; it keeps them in the partition's hashes.json. A
// partition not there has none. Concurrent callers take turns.
func partitionHashes(partDir string, recalc []string, now time.Time) (map[string]string, error) {
	lock, err := os.OpenFile(filepath.Join(partDir, lockFile), os.O_RDONLY|os.O_CREATE, 0o640)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return nil, err
	}
	invalid, err := takeInvalid(partDir)
	if err != nil {
		return nil, err
	}
	recalc = append(recalc, invalid...)
	hashes := map[string]string{}
	b, err := os.ReadFile(filepath.Join(partDir, hashesFile))
	if err != nil || json.Unmarshal(b, &hashes) != nil {
		// First time, or a file lost: hash every suffix.
		hashes = map[string]string{}
		entries, err := os.ReadDir(partDir)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			recalc = append(recalc, e.Name())
		}
	}
	for _, suffix := range recalc {
		if !validSuffix(suffix) {
			continue
		}
		objs, err := listSuffix(filepath.Join(partDir, suffix), true, now)
		if err != nil {
			// Keep the marks, so that the next recalculation tries again.
			return nil, errors.Join(err, appendInvalid(partDir, recalc...))
		}
		delete(hashes, suffix)
		if len(objs) > 0 {
			hashes[suffix] = hashFiles(objs)
		}
	}
	if len(recalc) > 0 {
		if b, err = json.Marshal(hashes); err == nil {
			err = node.WriteFile(partDir, hashesFile, b)
		}
		if err != nil {
			return nil, errors.Join(err, appendInvalid(partDir, recalc...))
		}
	}
	return hashes, nil
}

// splitPath splits a replication request's path into its device and
// partition and n more parts (or n-1 if optional), each unescaped and
// none empty, a dot or dot-dot, or holding a slash or NUL: none leads out
// of the device. An error is a 400's message.
func splitPath(r *http.Request, n int, optional bool) (dev string, part int, rest []string, err error) {
	parts := strings.Split(strings.TrimPrefix(r.URL.EscapedPath(), "/"), "/")
	if len(parts) != 2+n && !(optional && len(parts) == 1+n) {
		return "", 0, nil, fmt.Errorf("invalid path %q", r.URL.Path)
	}
	for i, p := range parts {
		u, err := url.PathUnescape(p)
		if err != nil || u == "" || u == "." || u == ".." || strings.ContainsAny(u, "/\\\x00") {
			return "", 0, nil, fmt.Errorf("invalid path %q", r.URL.Path)
		}
		parts[i] = u
	}
	part, err = strconv.Atoi(parts[1])
	if err != nil || part < 0 {
		return "", 0, nil, fmt.Errorf("invalid partition %q", parts[1])
	}
	return parts[0], part, parts[2:], nil
}

// replicate serves REPLICATE /device/partition[/suffix-suffix...]: it
// computes again the hashes of the suffixes named and of those changed
// since last asked, and answers all the partition's, as a JSON object of
// suffix to hash. A partition not there has none: {}.
func (s *Server) replicate(w http.ResponseWriter, r *http.Request) error {
	dev, part, rest, err := splitPath(r, 1, true)
	if err != nil {
		return errorf(http.StatusBadRequest, "%v", err)
	}
	var suffixes []string
	if len(rest) == 1 {
		suffixes = strings.Split(rest[0], "-")
		for _, suffix := range suffixes {
			if !validSuffix(suffix) {
				return errorf(http.StatusBadRequest, "invalid suffix %q", suffix)
			}
		}
	}
	if _, err := node.Device(s.root, dev); err != nil {
		return err
	}
	hashes, err := partitionHashes(objectstore.PartitionDir(s.root, dev, objectstore.Objects, part), suffixes, s.now())
	if err != nil {
		return err
	}
	node.WriteJSON(w, hashes)
	return nil
}

// sync serves SYNC /device/partition/hash/<timestamp>.<data|meta|ts>:
// a replicator's copy of one file of an object's directory, its body the
// file as it is on disk. It answers 201 once the file is on disk, 409
// (with X-Backend-Timestamp) without reading the body if the file is
// there already or obsolete by what is, 400 for a name that is not a
// file of the format's, a hash not of 32 lowercase hexadecimal digits, or
// a file that fails its checks: a .data must be well formed, of an object
// whose name has the hash, with the timestamp of its name and content
// that matches its ETag; a .meta a JSON object; a .ts empty.
func (s *Server) sync(w http.ResponseWriter, r *http.Request) error {
	dev, part, rest, err := splitPath(r, 2, false)
	if err != nil {
		return errorf(http.StatusBadRequest, "%v", err)
	}
	h, err := objectstore.ParseHash(rest[0])
	if err != nil || h.String() != rest[0] {
		return errorf(http.StatusBadRequest, "invalid hash %q", rest[0])
	}
	name := rest[1]
	ts, ext, ok := parseName(name)
	if !ok || name != ts.String()+ext {
		return errorf(http.StatusBadRequest, "invalid file name %q", name)
	}
	switch {
	case r.ContentLength < 0:
		return errorf(http.StatusLengthRequired, "missing Content-Length")
	case ext == extTomb && r.ContentLength != 0, ext == extMeta && r.ContentLength > maxTrailer,
		r.ContentLength > objectstore.MaxFileSize+int64(maxTrailer+footerSize):
		return errorf(http.StatusBadRequest, "a %s file of %d bytes", ext, r.ContentLength)
	}
	devDir, err := node.Device(s.root, dev)
	if err != nil {
		return err
	}
	o := location{devDir: devDir, hash: h, dir: objectstore.Dir(s.root, dev, objectstore.Objects, part, h)}
	f, err := listFiles(o.dir)
	if err != nil {
		return err
	}
	if slices.Contains(f.names, name) || obsolete(f, ts, ext) {
		return &statusError{http.StatusConflict, "the file or a newer one is there", max(f.latest(), f.meta)}
	}
	switch ext {
	case extData:
		err = s.syncData(r, o, ts)
	case extMeta:
		var b []byte
		var meta map[string]string
		if b, err = io.ReadAll(io.LimitReader(r.Body, r.ContentLength)); err == nil && json.Unmarshal(b, &meta) != nil {
			err = errorf(http.StatusBadRequest, "a .meta file that is not a JSON object of strings")
		}
		if err == nil {
			err = node.WriteFile(o.dir, name, b)
		}
	case extTomb:
		err = node.WriteFile(o.dir, name, nil)
	}
	if err != nil {
		return err
	}
	s.cleanup(o)
	w.WriteHeader(http.StatusCreated)
	return nil
}

// syncData receives a .data file into the device's tmp directory, checks
// it and renames it into place.
func (s *Server) syncData(r *http.Request, o location, ts objectstore.Timestamp) error {
	tmp := filepath.Join(o.devDir, "tmp")
	if err := node.MkdirAll(tmp); err != nil {
		return err
	}
	f, err := os.CreateTemp(tmp, "sync-*")
	if err != nil {
		return err
	}
	renamed := false
	defer func() {
		if f.Close(); !renamed {
			os.Remove(f.Name())
		}
	}()
	n, err := io.Copy(f, io.LimitReader(r.Body, r.ContentLength))
	if err != nil || n != r.ContentLength {
		return errorf(499, "got %d bytes of %d: %v", n, r.ContentLength, err)
	}
	meta, err := ReadMetadata(f.Name())
	if err == nil {
		err = Verify(f.Name())
	}
	if err != nil {
		return errorf(http.StatusBadRequest, "%v", err)
	}
	acct, rest, _ := strings.Cut(strings.TrimPrefix(meta["name"], "/"), "/")
	cont, obj, _ := strings.Cut(rest, "/")
	if s.hasher.Path(acct, cont, obj) != o.hash || meta["X-Timestamp"] != ts.String() {
		return errorf(http.StatusBadRequest, "a .data file of object %q at %s, not of hash %s at %s", meta["name"], meta["X-Timestamp"], o.hash, ts)
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := node.Publish(f.Name(), o.dir, ts.String()+extData); err != nil {
		return err
	}
	renamed = true
	return nil
}

// obsolete reports whether a file of timestamp ts and extension ext
// would be removed at once by cleanup from a directory holding f.
func obsolete(f files, ts objectstore.Timestamp, ext string) bool {
	switch ext {
	case extData:
		f.data = max(f.data, ts)
		return f.deleted() || f.data != ts
	case extTomb:
		f.tomb = max(f.tomb, ts)
		return !f.deleted() || f.tomb != ts
	}
	f.meta = max(f.meta, ts)
	return f.meta != ts || ts <= f.data || f.deleted()
}
