package volume

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/volume"
)

// User messages (3.3 and later): why a volume or snapshot a project asked
// for went to error. Lists take filters, sorting and pages from 3.5, and
// key~ filters from 3.34 (resourceFilters' "message" row); below 3.5 they
// ignore their query, as Cinder's do.

// messagesVersion and messagePagesVersion are the microversions of the
// messages API and of its lists' filters and pages.
const (
	messagesVersion     = 3
	messagePagesVersion = 5
)

// messageAttrs are a message's attributes by filter and sort key.
var messageAttrs = map[string]func(m *trustack.VolumeMessage) string{
	"id":               func(m *trustack.VolumeMessage) string { return m.ID },
	"resource_uuid":    func(m *trustack.VolumeMessage) string { return m.ResourceID },
	"resource_type":    func(m *trustack.VolumeMessage) string { return m.ResourceType },
	"event_id":         func(m *trustack.VolumeMessage) string { return m.EventID },
	"request_id":       func(m *trustack.VolumeMessage) string { return m.RequestID },
	"message_level":    func(m *trustack.VolumeMessage) string { return m.Level },
	"created_at":       func(m *trustack.VolumeMessage) string { return stamp(m.CreatedAt) },
	"guaranteed_until": func(m *trustack.VolumeMessage) string { return stamp(m.ExpiresAt) },
}

// messageSortKeys are the keys message lists sort by: the attributes,
// and expires_at, Cinder's column of guaranteed_until.
var messageSortKeys = func() map[string]func(a, b *trustack.VolumeMessage) int {
	keys := map[string]func(a, b *trustack.VolumeMessage) int{}
	for key, attr := range messageAttrs {
		keys[key] = func(a, b *trustack.VolumeMessage) int { return strings.Compare(attr(a), attr(b)) }
	}
	keys["expires_at"] = keys["guaranteed_until"]
	return keys
}()

func (h *handler) messageRoutes() {
	a := h.api
	base := v3 + "/messages"
	a.Private("GET "+base, h.listMessages)
	a.Private("GET "+base+"/{id}", h.showMessage)
	a.Private("DELETE "+base+"/{id}", h.deleteMessage)
}

// messageView is a message as Cinder shows it; resource_type and
// resource_uuid only for a message about a resource.
func (vs *views) messageView(m *trustack.VolumeMessage) object {
	o := object{
		"id": m.ID, "event_id": m.EventID, "user_message": m.UserMessage(), "message_level": m.Level,
		"created_at": stamp(m.CreatedAt), "guaranteed_until": stamp(m.ExpiresAt), "request_id": m.RequestID,
		"links": []object{
			{"rel": "self", "href": vs.base + "/messages/" + m.ID},
			{"rel": "bookmark", "href": vs.bookmark + "/messages/" + m.ID},
		},
	}
	if m.ResourceType != "" {
		o["resource_type"] = m.ResourceType
	}
	if m.ResourceID != "" {
		o["resource_uuid"] = m.ResourceID
	}
	return o
}

func (h *handler) listMessages(w http.ResponseWriter, r *http.Request) error {
	if !atLeast(r, messagesVersion) {
		return noSuchAPI(r)
	}
	c, err := h.caller(r)
	if err != nil {
		return err
	}
	if err := h.authorize(r, "message:get_all", c.ProjectID); err != nil {
		return err
	}
	// Cinder reads no parameter of a list before 3.5.
	var q url.Values
	var like map[string]string
	if atLeast(r, messagePagesVersion) {
		if q, like, err = listQuery(r, "message"); err != nil {
			return err
		}
	}
	f := trustack.VolumeMessageFilter{ResourceID: q.Get("resource_uuid"), ResourceType: q.Get("resource_type"),
		EventID: q.Get("event_id"), RequestID: q.Get("request_id"), Level: q.Get("message_level")}
	list, err := h.svc.Messages(r.Context(), c, f)
	if err != nil {
		return err
	}
	if len(like) > 0 {
		kept := list[:0]
		for _, m := range list {
			if matchesLike(like, func(key string) string { return messageAttrs[key](m) }) {
				kept = append(kept, m)
			}
		}
		list = kept
	}
	vs, err := h.views(r)
	if err != nil {
		return err
	}
	return answerList(w, r, vs, "messages", false, list, q, messageSortKeys, func(m *trustack.VolumeMessage) string { return m.ID }, vs.messageView)
}

// message returns the caller and the message the request names, once
// rule allows the caller it; ENOTFOUND (MessageNotFound) for one the
// caller may not see.
func (h *handler) message(r *http.Request, rule string) (volume.Caller, *trustack.VolumeMessage, error) {
	if !atLeast(r, messagesVersion) {
		return volume.Caller{}, nil, noSuchAPI(r)
	}
	c, err := h.caller(r)
	if err != nil {
		return c, nil, err
	}
	m, err := h.svc.Message(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return c, nil, err
	}
	return c, m, h.authorize(r, rule, m.ProjectID)
}

func (h *handler) showMessage(w http.ResponseWriter, r *http.Request) error {
	_, m, err := h.message(r, "message:get")
	if err != nil {
		return err
	}
	vs, err := h.views(r)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, object{"message": vs.messageView(m)})
}

func (h *handler) deleteMessage(w http.ResponseWriter, r *http.Request) error {
	c, m, err := h.message(r, "message:delete")
	if err != nil {
		return err
	}
	if err := h.svc.DeleteMessage(r.Context(), c, m.ID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
