package network

import (
	"net/http"
	"slices"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/api/openstack"
)

// tagRoutes serves a collection's tags at base (.../{id}/tags): list,
// replace and remove all, and check, add and remove one. Reading them
// asks the resource's get rule, changing them its update rule too.
func (k *collection[S, T]) tagRoutes(h *handler, base string) {
	a := h.api
	a.Private("GET "+base, k.readTags(h, func(w http.ResponseWriter, _ *http.Request, tags []string) error {
		return reply(w, http.StatusOK, object{"tags": tags})
	}))
	a.Private("GET "+base+"/{tag}", k.readTags(h, func(w http.ResponseWriter, r *http.Request, tags []string) error {
		if !slices.Contains(tags, r.PathValue("tag")) {
			return k.tagNotFound(r)
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}))
	a.Private("PUT "+base, k.writeTags(h, http.StatusOK, func(r *http.Request) (tagChange, error) {
		body, err := h.jsonObject(r)
		if err != nil {
			return nil, err
		}
		v, ok := body["tags"]
		if !ok {
			return nil, badRequest("Unable to find 'tags' in request body")
		}
		tags, err := parseStrings("tags", v)
		return func([]string) ([]string, error) { return tags, nil }, err
	}))
	a.Private("PUT "+base+"/{tag}", k.writeTags(h, http.StatusCreated, func(r *http.Request) (tagChange, error) {
		return func(tags []string) ([]string, error) {
			if tag := r.PathValue("tag"); !slices.Contains(tags, tag) {
				tags = append(tags, tag)
			}
			return tags, nil
		}, nil
	}))
	a.Private("DELETE "+base, k.writeTags(h, http.StatusNoContent, func(*http.Request) (tagChange, error) {
		return func([]string) ([]string, error) { return []string{}, nil }, nil
	}))
	a.Private("DELETE "+base+"/{tag}", k.writeTags(h, http.StatusNoContent, func(r *http.Request) (tagChange, error) {
		return func(tags []string) ([]string, error) {
			i := slices.Index(tags, r.PathValue("tag"))
			if i < 0 {
				return nil, k.tagNotFound(r)
			}
			return slices.Delete(tags, i, i+1), nil
		}, nil
	}))
}

// tagChange returns what a resource's tags become.
type tagChange func(tags []string) ([]string, error)

// readTags answers with answer from the tags of the resource of the
// request's path.
func (k *collection[S, T]) readTags(h *handler, answer func(w http.ResponseWriter, r *http.Request, tags []string) error) openstack.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		c := h.caller(r)
		if _, _, err := k.one(h, r, c); err != nil {
			return err
		}
		tags, err := h.svc.Tags(r.Context(), c, k.tag, r.PathValue("id"))
		if err != nil {
			return err
		}
		return answer(w, r, texts(tags))
	}
}

// writeTags changes the tags of the resource of the request's path as
// the change the request asks for says, and answers with status: with
// the tags for 200, with no body otherwise.
func (k *collection[S, T]) writeTags(h *handler, status int, request func(r *http.Request) (tagChange, error)) openstack.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		c := h.caller(r)
		_, v, err := k.one(h, r, c)
		if err != nil {
			return err
		}
		if err := h.authorize(r, []string{"update_" + k.name}, v.target); err != nil {
			return err
		}
		change, err := request(r)
		if err != nil {
			return err
		}
		tags, err := h.svc.SetTags(r.Context(), c, k.tag, r.PathValue("id"), change)
		if err != nil {
			return err
		}
		if status != http.StatusOK {
			w.WriteHeader(status)
			return nil
		}
		return reply(w, status, object{"tags": texts(tags)})
	}
}

// tagNotFound is Neutron's 404 for a tag a resource has not.
func (k *collection[S, T]) tagNotFound(r *http.Request) error {
	return trustack.Reasonf(trustack.ENOTFOUND, "TagNotFound", "Tag %s could not be found for %s %s.", r.PathValue("tag"), k.name, r.PathValue("id"))
}
