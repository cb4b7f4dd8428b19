package volume

import (
	"maps"
	"net/http"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/volume"
)

// metadataRoutes serves a volume's metadata under base: all of it (GET;
// POST merges, PUT replaces) and one key at a time ({"meta": {k: v}}).
func (h *handler) metadataRoutes(base string) {
	a := h.api
	a.Private("GET "+base, h.showMetadata)
	a.Private("POST "+base, h.changeMetadata("volume:create_volume_metadata", false))
	a.Private("PUT "+base, h.changeMetadata("volume:update_volume_metadata", true))
	a.Private("GET "+base+"/{key}", h.showMetadataItem)
	a.Private("PUT "+base+"/{key}", h.setMetadataItem)
	a.Private("DELETE "+base+"/{key}", h.deleteMetadataItem)
}

func (h *handler) showMetadata(w http.ResponseWriter, r *http.Request) error {
	_, v, err := h.volume(r, "volume:get_volume_metadata")
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, object{"metadata": metadata(v.Metadata)})
}

// changeMetadata merges the body's metadata into the volume's, or with
// replace puts it in their place, and answers all of it.
func (h *handler) changeMetadata(rule string, replace bool) func(w http.ResponseWriter, r *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		c, v, err := h.volume(r, rule)
		if err != nil {
			return err
		}
		var body map[string]string
		if err := h.decode(r, "metadata", &body); err != nil {
			return err
		}
		v, err = h.svc.Update(r.Context(), c, v.ID, volume.Update{Metadata: func(have map[string]string) (map[string]string, error) {
			if replace {
				return body, nil
			}
			maps.Copy(have, body)
			return have, nil
		}})
		if err != nil {
			return err
		}
		return reply(w, http.StatusOK, object{"metadata": metadata(v.Metadata)})
	}
}

func (h *handler) showMetadataItem(w http.ResponseWriter, r *http.Request) error {
	_, v, err := h.volume(r, "volume:get_volume_metadata")
	if err != nil {
		return err
	}
	key := r.PathValue("key")
	value, ok := v.Metadata[key]
	if !ok {
		return noMetadata(v.ID, key)
	}
	return reply(w, http.StatusOK, object{"meta": object{key: value}})
}

func noMetadata(id, key string) error {
	return trustack.Reasonf(trustack.ENOTFOUND, "VolumeMetadataNotFound", "Volume %s has no metadata with key %s.", id, key)
}

// setMetadataItem sets one key, which the body ({"meta": {key: value}})
// names alone, as the path does.
func (h *handler) setMetadataItem(w http.ResponseWriter, r *http.Request) error {
	c, v, err := h.volume(r, "volume:update_volume_metadata")
	if err != nil {
		return err
	}
	key := r.PathValue("key")
	var body map[string]string
	if err := h.decode(r, "meta", &body); err != nil {
		return err
	}
	if _, ok := body[key]; !ok || len(body) != 1 {
		return trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Invalid input received: the body's meta must have exactly one key, the path's %s.", key)
	}
	_, err = h.svc.Update(r.Context(), c, v.ID, volume.Update{Metadata: func(have map[string]string) (map[string]string, error) {
		have[key] = body[key]
		return have, nil
	}})
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, object{"meta": body})
}

func (h *handler) deleteMetadataItem(w http.ResponseWriter, r *http.Request) error {
	c, v, err := h.volume(r, "volume:delete_volume_metadata")
	if err != nil {
		return err
	}
	key := r.PathValue("key")
	_, err = h.svc.Update(r.Context(), c, v.ID, volume.Update{Metadata: func(have map[string]string) (map[string]string, error) {
		if _, ok := have[key]; !ok {
			return nil, noMetadata(v.ID, key)
		}
		delete(have, key)
		return have, nil
	}})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}
