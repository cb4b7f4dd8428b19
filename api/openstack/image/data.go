package image

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"mime"
	"net/http"
	"time"

	"github.com/trustack/trustack/api/openstack"
	"github.com/trustack/trustack/images"
)

// upload serves PUT /v2/images/{id}/file: the body, often chunked, is the
// image data, streamed to the image store and not bounded by the JSON
// body size. A Content-MD5 header (hex, as Glance's downloads send it,
// or base64), and a Content-Length, are checked against the data.
func (h *handler) upload(w http.ResponseWriter, r *http.Request) error {
	c := h.caller(r)
	img, err := h.image(r, c, "upload_image")
	if err != nil {
		return err
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, _ := mime.ParseMediaType(ct); mt != "application/octet-stream" {
			return &openstack.HTTPError{Status: http.StatusUnsupportedMediaType, Message: fmt.Sprintf("Image data must be application/octet-stream, not %q.", ct)}
		}
	}
	// The size, when the client says it, lets the object store keep a
	// small image as one object.
	want := images.Expect{Size: max(r.ContentLength, 0)}
	if sum := r.Header.Get("Content-MD5"); sum != "" {
		if want.MD5, err = md5Header(sum); err != nil {
			return err
		}
	}
	if limit := h.svc.SizeCap(); r.ContentLength > limit {
		return &openstack.HTTPError{Status: http.StatusRequestEntityTooLarge, Message: fmt.Sprintf("The incoming image is too large: the limit is %d bytes.", limit)}
	}
	_, err = h.svc.Upload(r.Context(), c, img.ID, r.Body, want)
	return noContent(w, err)
}

// md5Header returns the hex digest of a Content-MD5 header in hex or in
// base64.
func md5Header(v string) (string, error) {
	if b, err := hex.DecodeString(v); err == nil && len(b) == 16 {
		return hex.EncodeToString(b), nil
	}
	if b, err := base64.StdEncoding.DecodeString(v); err == nil && len(b) == 16 {
		return hex.EncodeToString(b), nil
	}
	return "", invalid("Content-MD5 must be an MD5 digest in hex or base64, not %q.", v)
}

// download serves GET /v2/images/{id}/file: 200 with the data and its
// Content-MD5, 206 for a range, 204 if the image has no data yet.
func (h *handler) download(w http.ResponseWriter, r *http.Request) error {
	c := h.caller(r)
	img, err := h.image(r, c, "download_image")
	if err != nil {
		return err
	}
	img, f, err := h.svc.Download(r.Context(), c, img.ID)
	if err != nil {
		return err
	}
	if f == nil {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	if r.Header.Get("Range") == "" {
		w.Header().Set("Content-MD5", img.Checksum)
	}
	// ServeContent sends Content-Length and answers ranges; a zero time
	// leaves out Last-Modified and its conditions.
	http.ServeContent(w, r, "", time.Time{}, f)
	return nil
}
