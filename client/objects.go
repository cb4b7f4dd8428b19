package client

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/objectstorage/v1/containers"
	"github.com/gophercloud/gophercloud/v2/openstack/objectstorage/v1/objects"

	"github.com/trustack/trustack"
)

// ObjectStorage is a Client whose cloud has an object store (Swift's
// API); its methods are the commands of containers and objects.
type ObjectStorage struct{ *Client }

// ObjectStorage returns the client's session with the object store. It
// returns ENOTFOUND if the catalog has no object-store endpoint.
func (c *Client) ObjectStorage() (*ObjectStorage, error) {
	if c.objectStorage == nil {
		return nil, c.noObjectStorage
	}
	return &ObjectStorage{c}, nil
}

// DefaultSegmentSize is the size of the segments of a file uploaded as a
// static large object, and the size above which a file is one: 1 GiB.
const DefaultSegmentSize = 1 << 30

// checkName returns EINVALID for a name Swift cannot take: an empty one,
// or a container's with a slash.
func checkName(kind, name string) error {
	switch {
	case name == "":
		return trustack.Errorf(trustack.EINVALID, "a %s name cannot be empty", kind)
	case kind == "container" && strings.Contains(name, "/"):
		return trustack.Errorf(trustack.EINVALID, "container name %q: a container name cannot contain a slash", name)
	}
	return nil
}

// swiftPage is Swift's page of an error:
// <html><h1>Not Found</h1><p>The resource could not be found.</p></html>.
var swiftPage = regexp.MustCompile(`(?s)^\s*<html><h1>[^<]*</h1><p>(.*)</p></html>\s*$`)

// objectError is apiError for the object store, whose errors are HTML
// pages rather than JSON: their paragraph is the message.
func objectError(err error) error {
	var resp gophercloud.ErrUnexpectedResponseCode
	if !errors.As(err, &resp) {
		return err
	}
	m := swiftPage.FindSubmatch(resp.Body)
	if m == nil {
		return apiError(err)
	}
	code, ok := statusCodes[resp.Actual]
	if !ok {
		code = trustack.EINTERNAL
	}
	text := strings.Join(strings.Fields(html.UnescapeString(string(m[1]))), " ")
	msg := fmt.Sprintf("%s (HTTP %d)", or(text, http.StatusText(resp.Actual)), resp.Actual)
	for _, h := range []string{"X-Openstack-Request-Id", "X-Trans-Id"} {
		if id := resp.ResponseHeader.Get(h); id != "" {
			msg += " (Request-ID: " + id + ")"
			break
		}
	}
	return &trustack.Error{Code: code, Message: msg}
}

// trimQuotes is an ETag without the quotes Swift puts around those of
// large objects.
func trimQuotes(etag string) string { return strings.Trim(etag, `"`) }

// missing is objectError for an error of a request about the object
// container/name (a container's if name is ""), which says for a 404
// whether the container or the object is missing: Swift's answer does
// not (nor does a HEAD's have a message).
func (s *ObjectStorage) missing(ctx context.Context, err error, container, name string) error {
	if !notFound(err) {
		return objectError(err)
	}
	if name != "" {
		if cerr := containers.Get(ctx, s.objectStorage, container, nil).Err; cerr == nil {
			return trustack.Errorf(trustack.ENOTFOUND, "container %s has no object %s (HTTP 404)", container, name)
		} else if !notFound(cerr) {
			return objectError(err)
		}
	}
	return trustack.Errorf(trustack.ENOTFOUND, "container %s does not exist (HTTP 404)", container)
}

// abandon ends the report of a transfer that failed: the line of its bar
// on a terminal, nothing elsewhere (where the report is of what was
// done).
func (p *progress) abandon() {
	if p.w != nil && p.terminal {
		fmt.Fprintln(p.w)
	}
}

// CreateContainer creates a container, with properties (KEY=VALUE) as
// its metadata, and shows it. Creating a container that exists updates
// its metadata, as Swift's PUT does.
func (s *ObjectStorage) CreateContainer(ctx context.Context, name string, properties []string) error {
	if err := checkName("container", name); err != nil {
		return err
	}
	props, err := keyValues("--property", properties)
	if err != nil {
		return err
	}
	if err := containers.Create(ctx, s.objectStorage, name, containers.CreateOpts{Metadata: last(props)}).Err; err != nil {
		return objectError(err)
	}
	return s.ShowContainer(ctx, name)
}

// ListContainers lists the project's containers, with how many objects
// and bytes each holds.
func (s *ObjectStorage) ListContainers(ctx context.Context) error {
	list, err := all(ctx, "containers", containers.List(s.objectStorage, containers.ListOpts{Format: "json"}), containers.ExtractInfo)
	if err != nil {
		return objectError(err)
	}
	t := &table{columns: []string{"Name", "Objects", "Bytes"}}
	for _, c := range list {
		t.add(c.Name, c.Count, c.Bytes)
	}
	return s.list(t)
}

// ShowContainer shows a container: how many objects and bytes it holds,
// its metadata and its ACLs (which only the project's own users see).
// It returns ENOTFOUND for a container that does not exist.
func (s *ObjectStorage) ShowContainer(ctx context.Context, name string) error {
	if err := checkName("container", name); err != nil {
		return err
	}
	res := containers.Get(ctx, s.objectStorage, name, nil)
	h, err := res.Extract()
	if err != nil {
		return s.missing(ctx, err, name, "")
	}
	meta, _ := res.ExtractMetadata()
	return s.show(record{
		{"name", name},
		{"object_count", h.ObjectCount},
		{"bytes_used", h.BytesUsed},
		{"read_acl", nullable(res.Header.Get("X-Container-Read"))},
		{"write_acl", nullable(res.Header.Get("X-Container-Write"))},
		{"storage_policy", nullable(h.StoragePolicy)},
		{"properties", meta},
	})
}

// DeleteContainers deletes the containers names name. Swift refuses
// (ECONFLICT) to delete a container that holds objects, unless recursive:
// then their objects go first, static large objects with their segments.
// It tries every container and returns the errors of those it could not
// delete.
func (s *ObjectStorage) DeleteContainers(ctx context.Context, names []string, recursive bool) error {
	return eachOf("delete container", names, func(name string) error {
		if err := checkName("container", name); err != nil {
			return err
		}
		if !recursive {
			if err := containers.Delete(ctx, s.objectStorage, name).Err; err != nil {
				return s.missing(ctx, err, name, "")
			}
			return nil
		}
		list, err := s.objects(ctx, name, "")
		if err != nil {
			return err
		}
		var errs []error
		for _, o := range list {
			if err := s.deleteObject(ctx, name, o.Name); err != nil {
				errs = append(errs, fmt.Errorf("delete object %s: %w", o.Name, err))
			}
		}
		if err := errors.Join(errs...); err != nil {
			return err
		}
		// A node that missed an object's deletion tells the container
		// a moment later: until then, Swift finds the container not
		// empty.
		tries := 0
		return s.wait(ctx, func() (bool, error) {
			err := containers.Delete(ctx, s.objectStorage, name).Err
			if tries++; gophercloud.ResponseCodeIs(err, http.StatusConflict) && tries < 20 {
				return false, nil
			}
			return true, objectError(err)
		})
	})
}

// objects returns the objects of a container whose names begin with
// prefix.
func (s *ObjectStorage) objects(ctx context.Context, container, prefix string) ([]objects.Object, error) {
	if err := checkName("container", container); err != nil {
		return nil, err
	}
	list, err := all(ctx, "objects", objects.List(s.objectStorage, container, objects.ListOpts{Format: "json", Prefix: prefix}), objects.ExtractInfo)
	if err != nil {
		return nil, s.missing(ctx, err, container, "")
	}
	return list, nil
}

// ListObjects lists the objects of a container whose names begin with
// prefix ("" for all).
func (s *ObjectStorage) ListObjects(ctx context.Context, container, prefix string) error {
	list, err := s.objects(ctx, container, prefix)
	if err != nil {
		return err
	}
	t := &table{columns: []string{"Name", "Bytes", "ETag", "Content Type", "Last Modified"}}
	for _, o := range list {
		t.add(o.Name, o.Bytes, o.Hash, o.ContentType, stamp(o.LastModified))
	}
	return s.list(t)
}

// ShowObject shows an object: its size, ETag, content type, when it was
// last modified, its metadata, and whether it is a large object (for a
// static one, of how many segments). It returns ENOTFOUND for an object
// that does not exist.
func (s *ObjectStorage) ShowObject(ctx context.Context, container, name string) error {
	if err := checkNames(container, name); err != nil {
		return err
	}
	res := objects.Get(ctx, s.objectStorage, container, name, nil)
	h, err := res.Extract()
	if err != nil {
		return s.missing(ctx, err, container, name)
	}
	meta, _ := res.ExtractMetadata()
	var large, segments any
	switch {
	case h.StaticLargeObject:
		large = "static"
		segs, err := s.manifest(ctx, container, name)
		if err != nil {
			return err
		}
		segments = len(segs)
	case h.ObjectManifest != "":
		large = "dynamic"
	}
	return s.show(record{
		{"container", container},
		{"name", name},
		{"bytes", h.ContentLength},
		{"etag", trimQuotes(h.ETag)},
		{"content_type", h.ContentType},
		{"last_modified", stamp(h.LastModified)},
		{"large_object", large},
		{"segments", segments},
		{"manifest", nullable(h.ObjectManifest)},
		{"properties", meta},
	})
}

// sloSegment is a segment of a static large object, as its manifest
// lists it when read with ?multipart-manifest=get.
type sloSegment struct {
	Name  string `json:"name"` // /container/object
	Hash  string `json:"hash"`
	Bytes int64  `json:"bytes"`
}

// manifest returns the segments of a static large object.
func (s *ObjectStorage) manifest(ctx context.Context, container, name string) ([]sloSegment, error) {
	res := objects.Download(ctx, s.objectStorage, container, name, objects.DownloadOpts{MultipartManifest: "get"})
	if res.Err != nil {
		return nil, fmt.Errorf("read the manifest of %s/%s: %w", container, name, objectError(res.Err))
	}
	defer res.Body.Close()
	var segs []sloSegment
	if err := json.NewDecoder(io.LimitReader(res.Body, 16<<20)).Decode(&segs); err != nil {
		return nil, fmt.Errorf("read the manifest of %s/%s: %w", container, name, err)
	}
	return segs, nil
}

// checkNames checks a container's and an object's names.
func checkNames(container, object string) error {
	if err := checkName("container", container); err != nil {
		return err
	}
	return checkName("object", object)
}

// ObjectUpload is a request to upload files as objects.
type ObjectUpload struct {
	Container string
	Files     []string
	// Name is the object's name, for one file; "" names each object
	// by its file's path as given.
	Name string
	// SegmentSize: a file of more bytes is uploaded as a static large
	// object, in segments of SegmentSize bytes; 0 never segments.
	SegmentSize int64
}

// UploadObjects uploads files into a container, drawing the progress of
// each, and lists the objects made. A file larger than the segment size
// becomes a static large object: its segments go to the container
// <container>_segments, each checked against the ETag the object store
// answers, then its manifest to the container. A smaller file is one
// object, whose MD5 the object store checks. It tries every file and
// returns the errors of those it could not upload (with their segments
// removed): EINVALID for a file it cannot read, and the object store's
// refusals (ENOTFOUND for a container that does not exist).
func (s *ObjectStorage) UploadObjects(ctx context.Context, req ObjectUpload) error {
	switch {
	case req.Name != "" && len(req.Files) != 1:
		return trustack.Errorf(trustack.EINVALID, "--name names the object of one file: give one file, not %d", len(req.Files))
	case req.SegmentSize < 0:
		return trustack.Errorf(trustack.EINVALID, "--segment-size %d: want a number of bytes, or 0 for no segments", req.SegmentSize)
	}
	if err := checkName("container", req.Container); err != nil {
		return err
	}
	// The container first, to name a missing one rather than send the
	// files and be told.
	if err := containers.Get(ctx, s.objectStorage, req.Container, nil).Err; err != nil {
		return s.missing(ctx, err, req.Container, "")
	}
	t := &table{columns: []string{"Name", "Container", "Bytes", "ETag", "Segments"}}
	err := eachOf("upload", req.Files, func(file string) error {
		name := req.Name
		if name == "" {
			name = strings.TrimLeft(filepath.ToSlash(filepath.Clean(file)), "/")
			for strings.HasPrefix(name, "../") {
				name = name[3:]
			}
		}
		if err := checkName("object", name); err != nil {
			return err
		}
		up, err := s.upload(ctx, req.Container, name, file, req.SegmentSize)
		if err != nil {
			return err
		}
		t.add(name, req.Container, up.size, up.etag, up.segments)
		return nil
	})
	if len(t.rows) > 0 {
		if lerr := s.list(t); lerr != nil {
			return errors.Join(err, lerr)
		}
	}
	return err
}

// uploaded is what an upload made: an object of size bytes with an
// ETag, in segments (0 for a plain object).
type uploaded struct {
	size     int64
	etag     string
	segments int
}

// upload uploads a file as the object container/name, in segments of
// segSize if it has more bytes.
func (s *ObjectStorage) upload(ctx context.Context, container, name, file string, segSize int64) (uploaded, error) {
	f, err := os.Open(file)
	if err != nil {
		return uploaded{}, trustack.Errorf(trustack.EINVALID, "%v", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return uploaded{}, trustack.Errorf(trustack.EINVALID, "%v", err)
	}
	if !info.Mode().IsRegular() {
		return uploaded{}, trustack.Errorf(trustack.EINVALID, "%s is not a regular file", file)
	}
	size := info.Size()
	if segSize > 0 && size > segSize {
		return s.uploadLarge(ctx, container, name, f, size, segSize)
	}
	// The MD5 first, so that the object store checks what it receives
	// against it; the file is read twice rather than held in memory.
	sum := md5.New()
	if _, err := io.Copy(sum, f); err != nil {
		return uploaded{}, trustack.Errorf(trustack.EINVALID, "%v", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return uploaded{}, trustack.Errorf(trustack.EINVALID, "%v", err)
	}
	etag := hex.EncodeToString(sum.Sum(nil))
	p := s.progress("uploaded", size)
	h, err := objects.Create(ctx, s.objectStorage, container, name, objects.CreateOpts{Content: io.TeeReader(f, p), ETag: etag}).Extract()
	if err != nil {
		p.abandon()
		return uploaded{}, fmt.Errorf("to %s/%s: %w", container, name, s.missing(ctx, err, container, ""))
	}
	p.finish()
	if got := trimQuotes(h.ETag); got != etag {
		return uploaded{}, trustack.Errorf(trustack.EINTERNAL, "the object store stored %s/%s with ETag %s, but the file's MD5 is %s", container, name, got, etag)
	}
	return uploaded{size, etag, 0}, nil
}

// uploadLarge uploads the size bytes of f as the static large object
// container/name: segments of segSize bytes to the container
// <container>_segments, named <name>/slo/<size>/<segSize>/<index>, then
// the manifest. It removes the segments it uploaded if it fails.
func (s *ObjectStorage) uploadLarge(ctx context.Context, container, name string, f *os.File, size, segSize int64) (_ uploaded, err error) {
	segContainer := container + "_segments"
	if err := containers.Create(ctx, s.objectStorage, segContainer, nil).Err; err != nil {
		return uploaded{}, fmt.Errorf("create container %s: %w", segContainer, objectError(err))
	}
	var put []string
	defer func() {
		if err != nil && len(put) > 0 {
			var errs []error
			for _, seg := range put {
				if derr := objects.Delete(context.WithoutCancel(ctx), s.objectStorage, segContainer, seg, nil).Err; derr != nil && !notFound(derr) {
					errs = append(errs, fmt.Errorf("remove segment %s/%s: %w", segContainer, seg, objectError(derr)))
				}
			}
			err = errors.Join(append([]error{err}, errs...)...)
		}
	}()
	type item struct {
		Path      string `json:"path"`
		ETag      string `json:"etag"`
		SizeBytes int64  `json:"size_bytes"`
	}
	var manifest []item
	sloSum := md5.New() // of the segments' ETags: the large object's
	p := s.progress("uploaded", size)
	for i, off := 0, int64(0); off < size; i, off = i+1, off+segSize {
		n := min(segSize, size-off)
		seg := fmt.Sprintf("%s/slo/%d/%d/%08d", name, size, segSize, i)
		sum := md5.New()
		body := io.TeeReader(io.NewSectionReader(f, off, n), io.MultiWriter(sum, p))
		h, err := objects.Create(ctx, s.objectStorage, segContainer, seg, objects.CreateOpts{Content: body, NoETag: true}).Extract()
		if err != nil {
			p.abandon()
			return uploaded{}, fmt.Errorf("segment %s/%s: %w", segContainer, seg, objectError(err))
		}
		put = append(put, seg)
		etag := hex.EncodeToString(sum.Sum(nil))
		if got := trimQuotes(h.ETag); got != etag {
			p.abandon()
			return uploaded{}, trustack.Errorf(trustack.EINTERNAL, "the object store stored segment %s/%s with ETag %s, but the data sent has MD5 %s", segContainer, seg, got, etag)
		}
		manifest = append(manifest, item{"/" + segContainer + "/" + seg, etag, n})
		sloSum.Write([]byte(etag))
	}
	p.finish()
	body, err := json.Marshal(manifest)
	if err != nil {
		return uploaded{}, err
	}
	// The ETag of a static large object is the MD5 of its segments'
	// ETags, which the object store checks as it stores the manifest.
	etag := hex.EncodeToString(sloSum.Sum(nil))
	h, err := objects.Create(ctx, s.objectStorage, container, name, objects.CreateOpts{
		Content: bytes.NewReader(body), ETag: etag, MultipartManifest: "put"}).Extract()
	if err != nil {
		return uploaded{}, fmt.Errorf("the manifest %s/%s: %w", container, name, objectError(err))
	}
	if got := trimQuotes(h.ETag); got != etag {
		return uploaded{}, trustack.Errorf(trustack.EINTERNAL, "the object store stored the manifest %s/%s with ETag %s, but its segments' make %s", container, name, got, etag)
	}
	return uploaded{size, etag, len(manifest)}, nil
}

// DownloadObject writes the content of the object container/name to the
// file at path ("-" for Out; "" for the object's name, as a path under
// the current directory), drawing its progress. It checks a plain
// object's content against its ETag (that of a large object is not its
// content's MD5) and removes the file if the download fails. It returns
// ENOTFOUND for an object that does not exist, EINTERNAL for content that
// is not the object's.
func (s *ObjectStorage) DownloadObject(ctx context.Context, container, name, path string) (err error) {
	if err := checkNames(container, name); err != nil {
		return err
	}
	if path == "" {
		if path = filepath.FromSlash(name); !filepath.IsLocal(path) {
			return trustack.Errorf(trustack.EINVALID, "object name %q is no path under the current directory: give --file", name)
		}
	}
	res := objects.Download(ctx, s.objectStorage, container, name, nil)
	if res.Err != nil {
		return fmt.Errorf("download %s/%s: %w", container, name, s.missing(ctx, res.Err, container, name))
	}
	defer res.Body.Close()
	h, err := res.Extract()
	if err != nil {
		return fmt.Errorf("download %s/%s: %w", container, name, err)
	}
	if dir := filepath.Dir(path); path != "-" && dir != "." {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return trustack.Errorf(trustack.EINVALID, "%v", err)
		}
	}
	out, done, err := s.downloadTo(path)
	if err != nil {
		return err
	}
	defer done(&err)
	sum := md5.New()
	p := s.progress("downloaded", h.ContentLength)
	n, err := io.Copy(io.MultiWriter(out, sum, p), res.Body)
	if err != nil {
		p.abandon()
		return fmt.Errorf("download %s/%s: %w", container, name, err)
	}
	p.finish()
	if res.Header.Get("Content-Length") != "" && n != h.ContentLength {
		return trustack.Errorf(trustack.EINTERNAL, "download %s/%s: %d bytes received of %d", container, name, n, h.ContentLength)
	}
	etag := trimQuotes(h.ETag)
	if got := hex.EncodeToString(sum.Sum(nil)); !h.StaticLargeObject && h.ObjectManifest == "" && etag != "" && got != etag {
		return trustack.Errorf(trustack.EINTERNAL, "download %s/%s: its ETag is %s, but the content received has MD5 %s", container, name, etag, got)
	}
	return nil
}

// DeleteObjects deletes the objects of a container that names name,
// static large objects with their segments. It tries every object and
// returns the errors of those it could not delete.
func (s *ObjectStorage) DeleteObjects(ctx context.Context, container string, names []string) error {
	if err := checkName("container", container); err != nil {
		return err
	}
	return eachOf("delete object", names, func(name string) error {
		if err := checkName("object", name); err != nil {
			return err
		}
		return s.deleteObject(ctx, container, name)
	})
}

// deleteObject deletes the object container/name; a static large object
// with its segments.
func (s *ObjectStorage) deleteObject(ctx context.Context, container, name string) error {
	h, err := objects.Get(ctx, s.objectStorage, container, name, nil).Extract()
	if err != nil {
		return s.missing(ctx, err, container, name)
	}
	if !h.StaticLargeObject {
		return objectError(objects.Delete(ctx, s.objectStorage, container, name, nil).Err)
	}
	// Swift answers ?multipart-manifest=delete as its bulk delete: 200
	// whatever happened, with what did in the body.
	var result struct {
		Status string     `json:"Response Status"`
		Body   string     `json:"Response Body"`
		Errors [][]string `json:"Errors"`
	}
	u := s.objectStorage.ServiceURL(url.PathEscape(container), url.PathEscape(name)) + "?multipart-manifest=delete"
	_, err = s.objectStorage.Delete(ctx, u, &gophercloud.RequestOpts{OkCodes: []int{http.StatusOK}, JSONResponse: &result,
		MoreHeaders: map[string]string{"Accept": "application/json"}})
	var resp gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &resp) && json.Unmarshal(resp.Body, &result) == nil && result.Status != "" {
		err = nil
	}
	if err != nil {
		return objectError(err)
	}
	status, _, _ := strings.Cut(result.Status, " ")
	code, _ := strconv.Atoi(status)
	if code/100 == 2 && len(result.Errors) == 0 {
		return nil
	}
	problems := []string{}
	for _, e := range result.Errors {
		problems = append(problems, strings.Join(e, ": "))
	}
	if result.Body != "" {
		problems = append(problems, result.Body)
	}
	ecode, ok := statusCodes[code]
	if !ok {
		ecode = trustack.EINTERNAL
	}
	return trustack.Errorf(ecode, "the static large object and its segments: %s (%s)", result.Status, strings.Join(problems, "; "))
}
