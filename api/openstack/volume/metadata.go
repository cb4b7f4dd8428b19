package volume

import (
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"unicode/utf16"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/api/openstack"
	"github.com/trustack/trustack/volume"
)

// metadataOf is a kind of resource with metadata (volumes, snapshots):
// its policy rules, and how to read the metadata of the one a request's
// path names and to change it.
type metadataOf struct {
	show, create, update, delete string // rules
	// etags is whether, from 3.15, reads answer an ETag and writes
	// honour If-Match (volumes' metadata, not snapshots').
	etags  bool
	get    func(r *http.Request, rule string) (map[string]string, error)
	change func(r *http.Request, rule string, fn func(map[string]string) (map[string]string, error)) (map[string]string, error)
}

// metadataRoutes serves the metadata of a kind of resource under base:
// all of it (GET; POST merges, PUT replaces) and one key at a time
// ({"meta": {k: v}}).
func (h *handler) metadataRoutes(base string, m metadataOf) {
	a := h.api
	a.Private("GET "+base, func(w http.ResponseWriter, r *http.Request) error {
		md, err := m.get(r, m.show)
		if err != nil {
			return err
		}
		if m.etags && atLeast(r, 15) {
			w.Header().Set("ETag", metadataETag(md))
		}
		return reply(w, http.StatusOK, object{"metadata": metadata(md)})
	})
	change := func(rule string, replace bool) func(w http.ResponseWriter, r *http.Request) error {
		return func(w http.ResponseWriter, r *http.Request) error {
			var body map[string]string
			if err := h.decode(r, "metadata", &body); err != nil {
				return err
			}
			md, err := m.change(r, rule, func(have map[string]string) (map[string]string, error) {
				if replace && m.etags {
					if err := checkIfMatch(r, have); err != nil {
						return nil, err
					}
				}
				if replace {
					return body, nil
				}
				maps.Copy(have, body)
				return have, nil
			})
			if errors.Is(err, errPreconditionFailed) {
				w.WriteHeader(http.StatusPreconditionFailed) // with no body, as Cinder's
				return nil
			}
			if err != nil {
				return err
			}
			return reply(w, http.StatusOK, object{"metadata": metadata(md)})
		}
	}
	a.Private("POST "+base, change(m.create, false))
	a.Private("PUT "+base, change(m.update, true))
	a.Private("GET "+base+"/{key}", func(w http.ResponseWriter, r *http.Request) error {
		md, err := m.get(r, m.show)
		if err != nil {
			return err
		}
		key := r.PathValue("key")
		value, ok := md[key]
		if !ok {
			return noMetadata(key)
		}
		return reply(w, http.StatusOK, object{"meta": object{key: value}})
	})
	// One key, which the body ({"meta": {key: value}}) names alone, as
	// the path does.
	a.Private("PUT "+base+"/{key}", func(w http.ResponseWriter, r *http.Request) error {
		key := r.PathValue("key")
		var body map[string]string
		if err := h.decode(r, "meta", &body); err != nil {
			return err
		}
		if _, ok := body[key]; !ok || len(body) != 1 {
			return trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Invalid input received: the body's meta must have exactly one key, the path's %s.", key)
		}
		_, err := m.change(r, m.update, func(have map[string]string) (map[string]string, error) {
			if m.etags {
				if err := checkIfMatch(r, have); err != nil {
					return nil, err
				}
			}
			have[key] = body[key]
			return have, nil
		})
		if errors.Is(err, errPreconditionFailed) {
			w.WriteHeader(http.StatusPreconditionFailed)
			return nil
		}
		if err != nil {
			return err
		}
		return reply(w, http.StatusOK, object{"meta": body})
	})
	a.Private("DELETE "+base+"/{key}", func(w http.ResponseWriter, r *http.Request) error {
		key := r.PathValue("key")
		_, err := m.change(r, m.delete, func(have map[string]string) (map[string]string, error) {
			if _, ok := have[key]; !ok {
				return nil, noMetadata(key)
			}
			delete(have, key)
			return have, nil
		})
		if err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
		return nil
	})
}

func noMetadata(key string) error {
	return trustack.Reasonf(trustack.ENOTFOUND, "MetadataNotFound", "There is no metadata with key %s.", key)
}

// volumeMetadata is a volume's metadata, as Cinder's rules guard it.
func (h *handler) volumeMetadata() metadataOf {
	return metadataOf{
		show: "volume:get_volume_metadata", create: "volume:create_volume_metadata",
		update: "volume:update_volume_metadata", delete: "volume:delete_volume_metadata", etags: true,
		get: func(r *http.Request, rule string) (map[string]string, error) {
			_, v, err := h.volume(r, rule)
			if err != nil {
				return nil, err
			}
			return v.Metadata, nil
		},
		change: func(r *http.Request, rule string, fn func(map[string]string) (map[string]string, error)) (map[string]string, error) {
			c, v, err := h.volume(r, rule)
			if err != nil {
				return nil, err
			}
			if v, err = h.svc.Update(r.Context(), c, v.ID, volume.Update{Metadata: fn}); err != nil {
				return nil, err
			}
			return v.Metadata, nil
		},
	}
}

// metadataETag is the entity tag of metadata as Cinder makes it (3.15):
// the MD5 of the JSON body {"metadata": {...}} that Python's json.dumps
// writes, its keys here sorted.
func metadataETag(md map[string]string) string {
	var b strings.Builder
	b.WriteString(`{"metadata": {`)
	for i, k := range slices.Sorted(maps.Keys(md)) {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(pythonJSONString(k) + ": " + pythonJSONString(md[k]))
	}
	b.WriteString("}}")
	sum := md5.Sum([]byte(b.String()))
	return hex.EncodeToString(sum[:])
}

// pythonJSONString is s as a JSON string the way Python's json.dumps
// writes it: every character outside ASCII escaped (\uXXXX, in UTF-16),
// and only quotes, backslashes and control characters besides.
func pythonJSONString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteRune(c)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\r':
			b.WriteString(`\r`)
		case c == '\t':
			b.WriteString(`\t`)
		case c == '\b':
			b.WriteString(`\b`)
		case c == '\f':
			b.WriteString(`\f`)
		case c < 0x20 || c > 0x7e && c < 0x10000:
			fmt.Fprintf(&b, `\u%04x`, c)
		case c >= 0x10000:
			r1, r2 := utf16.EncodeRune(c)
			fmt.Fprintf(&b, `\u%04x\u%04x`, r1, r2)
		default:
			b.WriteRune(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// errPreconditionFailed is the error of a write whose If-Match names
// none of the metadata's entity tags; it is answered 412 Precondition
// Failed with no body, as Cinder answers it.
var errPreconditionFailed = &openstack.HTTPError{Status: http.StatusPreconditionFailed,
	Message: "The metadata changed since it was read: If-Match names none of its entity tags."}

// checkIfMatch checks a write's If-Match header (from 3.15) against the
// entity tag of the metadata it would change: errPreconditionFailed if
// it names other tags. No header, or *, matches anything.
func checkIfMatch(r *http.Request, have map[string]string) error {
	header := r.Header.Values("If-Match")
	if !atLeast(r, 15) || len(header) == 0 {
		return nil
	}
	tag := metadataETag(have)
	for _, value := range header {
		for _, t := range strings.Split(value, ",") {
			t = strings.Trim(strings.TrimPrefix(strings.TrimSpace(t), "W/"), `"`)
			if t == "*" || t == tag {
				return nil
			}
		}
	}
	return errPreconditionFailed
}
