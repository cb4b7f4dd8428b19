package compute

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/api/openstack"
)

// Host aggregates (os-aggregates), as Nova shows them at 2.1: without
// their uuid, which Nova adds at 2.41.

// aggregateFields renders what an aggregate's creation shows of it.
func aggregateFields(a *trustack.Aggregate) object {
	var zone any
	if z := a.AvailabilityZone(); z != "" {
		zone = z
	}
	return object{"id": a.ID, "name": a.Name, "availability_zone": zone, "created_at": a.CreatedAt.UTC().Format(isoMicros),
		"updated_at": stampOrNull(a.UpdatedAt), "deleted": false, "deleted_at": nil}
}

// aggregate renders an aggregate with its hosts and metadata.
func aggregate(a *trustack.Aggregate) object {
	o := aggregateFields(a)
	hosts, meta := a.Hosts, a.Metadata
	if hosts == nil {
		hosts = []string{}
	}
	if meta == nil {
		meta = map[string]string{}
	}
	o["hosts"], o["metadata"] = hosts, meta
	return o
}

// aggregateID reads the aggregate ID of the path: anything but an integer
// names no aggregate (so that clients go on to look for it by name).
func aggregateID(r *http.Request) (int, error) {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil {
		return 0, trustack.Errorf(trustack.ENOTFOUND, "Aggregate %s could not be found.", r.PathValue("id"))
	}
	return id, nil
}

// refusedAs gives an aggregate change that Nova refuses as an
// InvalidAggregateAction the status Nova gives it for this operation.
func refusedAs(status int, err error) error {
	if trustack.ErrorReason(err) == trustack.ReasonAggregateAction {
		return &openstack.HTTPError{Status: status, Message: trustack.ErrorMessage(err)}
	}
	return err
}

func (h *handler) listAggregates(w http.ResponseWriter, r *http.Request) error {
	if err := h.api.Authorize(r, "os_compute_api:os-aggregates:index", nil); err != nil {
		return err
	}
	list, err := h.svc.Aggregates(r.Context())
	if err != nil {
		return err
	}
	out := make([]object, len(list))
	for i, a := range list {
		out[i] = aggregate(a)
	}
	return collection(w, "aggregates", out)
}

// aggregateBody is the body of a create or an update.
type aggregateBody struct {
	Aggregate *struct {
		Name *string `json:"name"`
		// Zone is nil when the body has no availability_zone, and
		// "null" for a null one.
		Zone json.RawMessage `json:"availability_zone"`
	} `json:"aggregate"`
}

// zone reads the body's availability zone: nil for none or null.
func (b *aggregateBody) zone() (*string, error) {
	var z *string
	if b.Aggregate.Zone != nil && json.Unmarshal(b.Aggregate.Zone, &z) != nil {
		return nil, invalid("availability_zone", "%s is not of type 'string', 'null'.", b.Aggregate.Zone)
	}
	return z, nil
}

func (h *handler) createAggregate(w http.ResponseWriter, r *http.Request) error {
	if err := h.api.Authorize(r, "os_compute_api:os-aggregates:create", nil); err != nil {
		return err
	}
	var body aggregateBody
	if err := h.dec.Decode(r, &body); err != nil {
		return err
	}
	if body.Aggregate == nil || body.Aggregate.Name == nil {
		return invalid("aggregate", "'name' is a required property.")
	}
	zone, err := body.zone()
	if err != nil {
		return err
	}
	if zone == nil {
		zone = new(string)
	}
	a, err := h.svc.CreateAggregate(r.Context(), *body.Aggregate.Name, *zone)
	if err != nil {
		return err
	}
	return ok(w, object{"aggregate": aggregateFields(a)})
}

func (h *handler) showAggregate(w http.ResponseWriter, r *http.Request) error {
	if err := h.api.Authorize(r, "os_compute_api:os-aggregates:show", nil); err != nil {
		return err
	}
	id, err := aggregateID(r)
	if err != nil {
		return err
	}
	a, err := h.svc.Aggregate(r.Context(), id)
	if err != nil {
		return err
	}
	return ok(w, object{"aggregate": aggregate(a)})
}

func (h *handler) updateAggregate(w http.ResponseWriter, r *http.Request) error {
	if err := h.api.Authorize(r, "os_compute_api:os-aggregates:update", nil); err != nil {
		return err
	}
	id, err := aggregateID(r)
	if err != nil {
		return err
	}
	var body aggregateBody
	if err := h.dec.Decode(r, &body); err != nil {
		return err
	}
	if body.Aggregate == nil || body.Aggregate.Name == nil && body.Aggregate.Zone == nil {
		return invalid("aggregate", "Give name or availability_zone, or both.")
	}
	zone, err := body.zone()
	switch {
	case err != nil:
		return err
	case body.Aggregate.Zone != nil && zone == nil:
		return invalid("availability_zone", "Aggregate %d does not support empty named availability zone.", id)
	}
	a, err := h.svc.UpdateAggregate(r.Context(), id, body.Aggregate.Name, zone)
	if err != nil {
		return refusedAs(http.StatusBadRequest, err)
	}
	return ok(w, object{"aggregate": aggregate(a)})
}

func (h *handler) deleteAggregate(w http.ResponseWriter, r *http.Request) error {
	if err := h.api.Authorize(r, "os_compute_api:os-aggregates:delete", nil); err != nil {
		return err
	}
	id, err := aggregateID(r)
	if err != nil {
		return err
	}
	if err := h.svc.DeleteAggregate(r.Context(), id); err != nil {
		return refusedAs(http.StatusBadRequest, err)
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// aggregateAction serves add_host, remove_host and set_metadata.
func (h *handler) aggregateAction(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Add *struct {
			Host *string `json:"host"`
		} `json:"add_host"`
		Remove *struct {
			Host *string `json:"host"`
		} `json:"remove_host"`
		Set *struct {
			Metadata map[string]*string `json:"metadata"`
		} `json:"set_metadata"`
	}
	if err := h.dec.Decode(r, &body); err != nil {
		return err
	}
	id, err := aggregateID(r)
	if err != nil {
		return err
	}
	var a *trustack.Aggregate
	switch {
	case body.Add != nil && body.Remove == nil && body.Set == nil:
		if err := h.api.Authorize(r, "os_compute_api:os-aggregates:add_host", nil); err != nil {
			return err
		}
		if body.Add.Host == nil {
			return invalid("add_host", "'host' is a required property.")
		}
		a, err = h.svc.AddAggregateHost(r.Context(), id, *body.Add.Host)
		err = refusedAs(http.StatusConflict, err)
	case body.Remove != nil && body.Add == nil && body.Set == nil:
		if err := h.api.Authorize(r, "os_compute_api:os-aggregates:remove_host", nil); err != nil {
			return err
		}
		if body.Remove.Host == nil {
			return invalid("remove_host", "'host' is a required property.")
		}
		a, err = h.svc.RemoveAggregateHost(r.Context(), id, *body.Remove.Host)
		err = refusedAs(http.StatusConflict, err)
	case body.Set != nil && body.Add == nil && body.Remove == nil:
		if err := h.api.Authorize(r, "os_compute_api:os-aggregates:set_metadata", nil); err != nil {
			return err
		}
		if body.Set.Metadata == nil {
			return invalid("set_metadata", "'metadata' is a required property.")
		}
		a, err = h.svc.SetAggregateMetadata(r.Context(), id, body.Set.Metadata)
		err = refusedAs(http.StatusBadRequest, err)
	default:
		return trustack.Errorf(trustack.EINVALID, "The action body must be one of add_host, remove_host and set_metadata.")
	}
	if err != nil {
		return err
	}
	return ok(w, object{"aggregate": aggregate(a)})
}
