package identity

import (
	"context"
	"net/http"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/api/openstack"
	"github.com/trustack/trustack/policy"
)

// Targets of policy checks, flattened as Keystone's.

func domainTarget(d *trustack.Domain) policy.Target {
	return policy.Target{"target.domain.id": d.ID}
}

func projectTarget(p *trustack.Project) policy.Target {
	return policy.Target{"target.project.id": p.ID, "target.project.domain_id": p.DomainID}
}

func userTarget(u *trustack.User) policy.Target {
	return policy.Target{"target.user.id": u.ID, "target.user.domain_id": u.DomainID}
}

func groupTarget(g *trustack.Group) policy.Target {
	return policy.Target{"target.group.id": g.ID, "target.group.domain_id": g.DomainID}
}

func roleTarget(r *trustack.Role) policy.Target {
	return policy.Target{"target.role.id": r.ID, "target.role.name": r.Name, "target.role.domain_id": "None"}
}

// merge returns the union of targets.
func merge(ts ...policy.Target) policy.Target {
	out := policy.Target{}
	for _, t := range ts {
		for k, v := range t {
			out[k] = v
		}
	}
	return out
}

// listScope returns, for a domain-scoped token, its domain: lists are
// limited to it, and policy sees it as the target's domain (key).
func listScope(r *http.Request, key string) (string, policy.Target) {
	if d := openstack.TokenOf(r).Domain; d != nil {
		return d.ID, policy.Target{key: d.ID}
	}
	return "", policy.Target{}
}

// created and deleted write the usual responses.
func created(w http.ResponseWriter, key string, v object) error {
	openstack.JSON(w, http.StatusCreated, object{key: v})
	return nil
}

func ok(w http.ResponseWriter, key string, v object) error {
	openstack.JSON(w, http.StatusOK, object{key: v})
	return nil
}

func noContent(w http.ResponseWriter, err error) error {
	if err == nil {
		w.WriteHeader(http.StatusNoContent)
	}
	return err
}

// render lists things with a renderer.
func render[T any](list []*T, fn func(*T) object) []object {
	out := make([]object, len(list))
	for i, v := range list {
		out[i] = fn(v)
	}
	return out
}

// patcher is a request body's fields, which apply to a T.
type patcher[T any] interface{ apply(*T) error }

// show serves GET of one T whose rule needs no target.
func show[T any](h *handler, rule, key, param string, get func(context.Context, string) (*T, error), render func(*T) object) openstack.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := h.api.Authorize(r, rule, nil); err != nil {
			return err
		}
		v, err := get(r.Context(), r.PathValue(param))
		if err != nil {
			return err
		}
		return ok(w, key, render(v))
	}
}

// change serves PATCH of one T whose rule needs no target: the body's
// fields (a PF) and its extra attributes apply to the T in one update.
func change[T, F any, PF interface {
	*F
	patcher[T]
}](h *handler, rule, key, param string, update func(context.Context, string, func(*T) error) (*T, error), extra func(*T) *trustack.Extra, render func(*T) object) openstack.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := h.api.Authorize(r, rule, nil); err != nil {
			return err
		}
		var f F
		ex, err := h.decodeEntity(r, key, &f)
		if err != nil {
			return err
		}
		v, err := update(r.Context(), r.PathValue(param), func(v *T) error {
			mergeExtra(extra(v), ex)
			return PF(&f).apply(v)
		})
		if err != nil {
			return err
		}
		return ok(w, key, render(v))
	}
}

// remove serves DELETE of a thing whose rule needs no target.
func remove(h *handler, rule, param string, del func(context.Context, string) error) openstack.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := h.api.Authorize(r, rule, nil); err != nil {
			return err
		}
		return noContent(w, del(r.Context(), r.PathValue(param)))
	}
}
