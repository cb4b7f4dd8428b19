package volume

import (
	"maps"
	"net/http"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/volume"
)

// metadataOf is a kind of resource with metadata (volumes, snapshots):
// its policy rules, and how to read the metadata of the one a request's
// path names and to change it.
type metadataOf struct {
	show, create, update, delete string // rules
	get                          func(r *http.Request, rule string) (map[string]string, error)
	change                       func(r *http.Request, rule string, fn func(map[string]string) (map[string]string, error)) (map[string]string, error)
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
		return reply(w, http.StatusOK, object{"metadata": metadata(md)})
	})
	change := func(rule string, replace bool) func(w http.ResponseWriter, r *http.Request) error {
		return func(w http.ResponseWriter, r *http.Request) error {
			var body map[string]string
			if err := h.decode(r, "metadata", &body); err != nil {
				return err
			}
			md, err := m.change(r, rule, func(have map[string]string) (map[string]string, error) {
				if replace {
					return body, nil
				}
				maps.Copy(have, body)
				return have, nil
			})
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
			have[key] = body[key]
			return have, nil
		})
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
		update: "volume:update_volume_metadata", delete: "volume:delete_volume_metadata",
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
