package object

import (
	"crypto/md5"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/trustack/trustack/objectstore"
	"github.com/trustack/trustack/objectstore/node"
)

// The files of an object's directory, named <timestamp><extension>.
//
// A .data file is the object's content followed by its metadata, so that
// one rename publishes both:
//
//	content | trailer: metadata as a JSON object | footer (16 bytes)
//
// and the footer is the trailer's length and its CRC-32C, both uint32
// big-endian, then the magic "TSOBJ01\n". The metadata's Content-Length
// must be the content's length and its ETag the content's MD5.
//
// A .meta file is a JSON object: the metadata of a POST newer than the
// data. A .ts file (tombstone) is empty: the object was deleted then.
const (
	extData = ".data"
	extMeta = ".meta"
	extTomb = ".ts"

	magic      = "TSOBJ01\n"
	footerSize = 8 + len(magic)
	maxTrailer = 1 << 20
)

// ErrCorrupt is the error of a data or meta file that fails its checks:
// a bad footer or trailer, a length that does not add up, or content
// whose MD5 is not its ETag.
var ErrCorrupt = errors.New("corrupt object file")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// dataWriter writes a new data file in a device's tmp directory, hashing
// the content as it goes, until commit renames it into place.
type dataWriter struct {
	f   *os.File
	md5 hash.Hash
	n   int64
}

func createData(tmpDir string) (*dataWriter, error) {
	if err := node.MkdirAll(tmpDir); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(tmpDir, "put-*")
	if err != nil {
		return nil, err
	}
	return &dataWriter{f: f, md5: md5.New()}, nil
}

func (d *dataWriter) Write(p []byte) (int, error) {
	n, err := d.f.Write(p)
	d.md5.Write(p[:n])
	d.n += int64(n)
	return n, err
}

func (d *dataWriter) etag() string { return hex.EncodeToString(d.md5.Sum(nil)) }

// commit appends meta, syncs the file and renames it to dir/<ts>.data,
// then syncs dir: the object is on disk when commit returns nil.
func (d *dataWriter) commit(dir string, ts objectstore.Timestamp, meta map[string]string) error {
	trailer, err := json.Marshal(meta)
	if err == nil && len(trailer) > maxTrailer {
		err = fmt.Errorf("metadata of %d bytes: over %d", len(trailer), maxTrailer)
	}
	if err == nil {
		trailer = binary.BigEndian.AppendUint32(trailer, uint32(len(trailer)))
		trailer = binary.BigEndian.AppendUint32(trailer, crc32.Checksum(trailer[:len(trailer)-4], castagnoli))
		_, err = d.f.Write(append(trailer, magic...))
	}
	if err == nil {
		err = d.f.Sync()
	}
	if err == nil {
		err = node.Publish(d.f.Name(), dir, ts.String()+extData)
	}
	return err
}

// abort closes the file and removes it unless commit renamed it.
func (d *dataWriter) abort() {
	d.f.Close()
	os.Remove(d.f.Name())
}

// openData opens a data file and reads its metadata. The content is the
// file's first size bytes. An error wraps ErrCorrupt if the file fails
// the format's checks.
func openData(path string) (f *os.File, size int64, meta map[string]string, err error) {
	if f, err = os.Open(path); err != nil {
		return nil, 0, nil, err
	}
	if size, meta, err = readTrailer(f); err != nil {
		f.Close()
		return nil, 0, nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, size, meta, nil
}

func readTrailer(f *os.File) (size int64, meta map[string]string, err error) {
	st, err := f.Stat()
	if err != nil {
		return 0, nil, err
	}
	footer := make([]byte, footerSize)
	if _, err := f.ReadAt(footer, st.Size()-int64(footerSize)); err != nil || string(footer[8:]) != magic {
		return 0, nil, fmt.Errorf("%w: no footer", ErrCorrupt)
	}
	n := int64(binary.BigEndian.Uint32(footer))
	if size = st.Size() - int64(footerSize) - n; n > maxTrailer || size < 0 {
		return 0, nil, fmt.Errorf("%w: bad footer", ErrCorrupt)
	}
	trailer := make([]byte, n)
	if _, err := f.ReadAt(trailer, size); err != nil {
		return 0, nil, err
	}
	if crc32.Checksum(trailer, castagnoli) != binary.BigEndian.Uint32(footer[4:]) || json.Unmarshal(trailer, &meta) != nil {
		return 0, nil, fmt.Errorf("%w: bad metadata", ErrCorrupt)
	}
	if meta["Content-Length"] != strconv.FormatInt(size, 10) {
		return 0, nil, fmt.Errorf("%w: %d bytes of content, metadata says %q", ErrCorrupt, size, meta["Content-Length"])
	}
	return size, meta, nil
}

// ReadMetadata returns the metadata of the data file at path: name
// (/account/container/object), X-Timestamp, Content-Length, Content-Type,
// ETag and the object's other headers. An error wraps ErrCorrupt if the
// file is not a well-formed data file; the content is not checked.
func ReadMetadata(path string) (map[string]string, error) {
	f, _, meta, err := openData(path)
	if err != nil {
		return nil, err
	}
	f.Close()
	return meta, nil
}

// Verify reads the data file at path and checks that its content's MD5
// is the ETag of its metadata; an error wraps ErrCorrupt if not, or if
// the file is not well formed.
func Verify(path string) error {
	f, size, meta, err := openData(path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := md5.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, size)); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if hex.EncodeToString(h.Sum(nil)) != meta["ETag"] {
		return fmt.Errorf("%s: %w: content does not match its ETag", path, ErrCorrupt)
	}
	return nil
}

func readMeta(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var meta map[string]string
	if err := json.Unmarshal(b, &meta); err != nil {
		return nil, fmt.Errorf("%s: %w: %v", path, ErrCorrupt, err)
	}
	return meta, nil
}

// files is what an object's directory holds: the newest timestamp of
// each kind of file, 0 for none. Other names, such as the temporary
// files of a write a crash interrupted, are ignored.
type files struct {
	data, meta, tomb objectstore.Timestamp
	names            []string
}

func listFiles(dir string) (files, error) {
	var f files
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return f, err
	}
	for _, e := range entries {
		ts, ext, ok := parseName(e.Name())
		if !ok {
			continue
		}
		f.names = append(f.names, e.Name())
		switch ext {
		case extData:
			f.data = max(f.data, ts)
		case extMeta:
			f.meta = max(f.meta, ts)
		case extTomb:
			f.tomb = max(f.tomb, ts)
		}
	}
	return f, nil
}

func parseName(name string) (objectstore.Timestamp, string, bool) {
	ext := filepath.Ext(name)
	if ext != extData && ext != extMeta && ext != extTomb || strings.HasPrefix(name, ".") {
		return 0, "", false
	}
	ts, err := objectstore.ParseTimestamp(strings.TrimSuffix(name, ext))
	return ts, ext, err == nil
}

// latest is the timestamp of the newest data or tombstone: a write not
// newer than it is stale.
func (f files) latest() objectstore.Timestamp { return max(f.data, f.tomb) }

// deleted reports whether the newest of data and tombstone is the
// tombstone; a tombstone wins a tie.
func (f files) deleted() bool { return f.tomb != 0 && f.tomb >= f.data }

// cleanup removes the files of dir that the newest make obsolete: all
// but the newest data or tombstone, and the newest meta if newer than
// that data. A file removed concurrently is no error; a newer file is
// never removed, so concurrent writers need no lock.
func cleanup(dir string) error {
	f, err := listFiles(dir)
	if err != nil {
		return err
	}
	keep := f.latest().String() + extData
	if f.deleted() {
		keep = f.tomb.String() + extTomb
	}
	var errs []error
	for _, name := range f.names {
		ts, ext, _ := parseName(name)
		if name == keep || ext == extMeta && ts == f.meta && ts > f.data && !f.deleted() {
			continue
		}
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// quarantine moves dir, an object's directory on the device at devDir,
// out of the way to devDir/quarantined/objects, where an operator or the
// auditor may look at it and replication restores a good copy.
func quarantine(devDir, dir string) error {
	qdir := filepath.Join(devDir, "quarantined", "objects")
	if err := node.MkdirAll(qdir); err != nil {
		return err
	}
	to := filepath.Join(qdir, filepath.Base(dir))
	if _, err := os.Lstat(to); err == nil {
		to += "-" + rand.Text()
	}
	if err := os.Rename(dir, to); err != nil {
		return fmt.Errorf("quarantine %s: %w", dir, err)
	}
	return node.SyncDir(qdir)
}
