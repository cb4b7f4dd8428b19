package scheduler

import (
	"fmt"
	"slices"
	"strings"

	"github.com/trustack/trustack"
)

// Nova's aggregate filters, over the operators' host aggregates and the
// aggregates that show physical domains (trustack.DomainAggregate), whose
// metadata they read alike.

// aggregateSpec is a flavor extra spec aggregate_instance_extra_specs:KEY
// with its value.
type aggregateSpec struct{ key, value string }

// String is the spec as the flavor has it.
func (a aggregateSpec) String() string {
	return fmt.Sprintf("%s%s=%s", trustack.AggregateSpecScope, a.key, a.value)
}

// aggregateSpecs returns the flavor's aggregate extra specs, by key. Nova
// also matches extra specs without a scope; trustack does not, as its
// other extra specs (trust:, hw:, ...) are scoped and the filter is always
// on here, where Nova's operators enable it.
func aggregateSpecs(f trustack.Flavor) []aggregateSpec {
	var out []aggregateSpec
	for k, v := range f.ExtraSpecs {
		if key, ok := strings.CutPrefix(k, trustack.AggregateSpecScope); ok {
			out = append(out, aggregateSpec{key, v})
		}
	}
	slices.SortFunc(out, func(a, b aggregateSpec) int { return strings.Compare(a.key, b.key) })
	return out
}

// aggregatesOf calls fn with each aggregate the host is in, its domain's
// last, until fn returns false; the caller holds s.mu.
func (s *Scheduler) aggregatesOf(h *trustack.Host, fn func(*trustack.Aggregate) bool) {
	for _, a := range s.aggregates[h.Name] {
		if !fn(a) {
			return
		}
	}
	if a := s.domainAggregates[h.Domain]; a != nil {
		fn(a)
	}
}

// unmatchedSpec is Nova's AggregateInstanceExtraSpecsFilter: it returns
// the first of the request's aggregate specs that none of the host's
// aggregates has in its metadata (whose values may be lists, comma
// separated), and whether there is one; the caller holds s.mu.
func (s *Scheduler) unmatchedSpec(req Request, h *trustack.Host) (aggregateSpec, bool) {
	for _, spec := range req.aggregateSpecs {
		found := false
		s.aggregatesOf(h, func(a *trustack.Aggregate) bool {
			v, ok := a.Metadata[spec.key]
			found = ok && listHas(v, spec.value)
			return !found
		})
		if !found {
			return spec, true
		}
	}
	return aggregateSpec{}, false
}

// reservedFor is Nova's AggregateMultiTenancyIsolation filter: it
// reports whether the host is in aggregates whose filter_tenant_id keys
// (filter_tenant_id, filter_tenant_id2, ...) name projects, none of them
// the project, and names the first such aggregate; the caller holds
// s.mu.
func (s *Scheduler) reservedFor(project string, h *trustack.Host) (string, bool) {
	reserved, admitted := "", false
	s.aggregatesOf(h, func(a *trustack.Aggregate) bool {
		for k, v := range a.Metadata {
			if !strings.HasPrefix(k, trustack.AggregateTenantKey) {
				continue
			}
			if reserved == "" {
				reserved = a.Name
			}
			if listHas(v, project) {
				admitted = true
				return false
			}
		}
		return true
	})
	return reserved, reserved != "" && !admitted
}

// listHas reports whether a comma-separated list has the value, spaces
// around items aside.
func listHas(list, value string) bool {
	for item := range strings.SplitSeq(list, ",") {
		if strings.TrimSpace(item) == value {
			return true
		}
	}
	return false
}
