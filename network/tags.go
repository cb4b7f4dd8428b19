package network

import (
	"context"
	"slices"

	"github.com/trustack/trustack"
)

// Resources that carry tags, by the collection names of Neutron's tag API
// (/v2.0/{resource}/{id}/tags).
const (
	TagNetworks       = "networks"
	TagSubnets        = "subnets"
	TagPorts          = "ports"
	TagRouters        = "routers"
	TagFloatingIPs    = "floatingips"
	TagSecurityGroups = "security-groups"
)

// maxTag is the longest tag Neutron takes.
const maxTag = 255

// checkTags returns tags without duplicates, in their order, or EINVALID
// for an empty or too long tag.
func checkTags(tags []string) ([]string, error) {
	out := make([]string, 0, len(tags))
	for _, t := range tags {
		if t == "" || len(t) > maxTag {
			return nil, invalid("Invalid input for operation: '%s' is not a valid tag: 1 to %d characters.", t, maxTag)
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out, nil
}

// Tags returns the tags of a resource the caller may see.
func (s *Service) Tags(ctx context.Context, c Caller, resource, id string) ([]string, error) {
	var tags []string
	err := s.tagged(ctx, c, resource, id, false, func(std *trustack.Standard) error {
		tags = std.Tags
		return nil
	})
	return tags, err
}

// SetTags sets a resource's tags to what fn makes of them, and returns
// them.
func (s *Service) SetTags(ctx context.Context, c Caller, resource, id string, fn func(tags []string) ([]string, error)) ([]string, error) {
	var tags []string
	err := s.tagged(ctx, c, resource, id, true, func(std *trustack.Standard) error {
		next, err := fn(slices.Clone(std.Tags))
		if err != nil {
			return err
		}
		if next, err = checkTags(next); err != nil {
			return err
		}
		std.Tags, std.UpdatedAt = next, s.now()
		tags = next
		return nil
	})
	return tags, err
}

// tagged runs fn on the standard attributes of a resource the caller may
// see, in an update that writes them when write is set.
func (s *Service) tagged(ctx context.Context, c Caller, resource, id string, write bool, fn func(*trustack.Standard) error) error {
	switch resource {
	case TagNetworks:
		return tag(write, fn, func() (*trustack.Network, error) { return s.Network(ctx, c, id) },
			func(n *trustack.Network) *trustack.Standard { return &n.Standard },
			func(up func(*trustack.Network) error) error {
				_, err := s.store.UpdateNetwork(ctx, id, up)
				return err
			})
	case TagSubnets:
		return tag(write, fn, func() (*trustack.Subnet, error) { return s.Subnet(ctx, c, id) },
			func(sn *trustack.Subnet) *trustack.Standard { return &sn.Standard },
			func(up func(*trustack.Subnet) error) error {
				_, err := s.store.UpdateSubnet(ctx, id, up)
				return err
			})
	case TagPorts:
		return tag(write, fn, func() (*trustack.Port, error) { return s.Port(ctx, c, id) },
			func(p *trustack.Port) *trustack.Standard { return &p.Standard },
			func(up func(*trustack.Port) error) error {
				_, err := s.store.UpdatePort(ctx, id, s.allocator(), up)
				return err
			})
	case TagRouters:
		return tag(write, fn, func() (*trustack.Router, error) { return s.Router(ctx, c, id) },
			func(r *trustack.Router) *trustack.Standard { return &r.Standard },
			func(up func(*trustack.Router) error) error {
				_, err := s.store.UpdateRouter(ctx, id, nil, s.allocator(), up)
				return err
			})
	case TagFloatingIPs:
		return tag(write, fn, func() (*trustack.FloatingIP, error) { return s.FloatingIP(ctx, c, id) },
			func(f *trustack.FloatingIP) *trustack.Standard { return &f.Standard },
			func(up func(*trustack.FloatingIP) error) error {
				_, err := s.store.UpdateFloatingIP(ctx, id, up)
				return err
			})
	case TagSecurityGroups:
		return tag(write, fn, func() (*trustack.SecurityGroup, error) { return s.SecurityGroup(ctx, c, id) },
			func(g *trustack.SecurityGroup) *trustack.Standard { return &g.Standard },
			func(up func(*trustack.SecurityGroup) error) error {
				_, err := s.store.UpdateSecurityGroup(ctx, id, up)
				return err
			})
	}
	return notFound("NotFound", "The resource %s does not support tags.", resource)
}

// tag reads a resource with get and runs fn on its standard attributes,
// in an update through update if write is set.
func tag[T any](write bool, fn func(*trustack.Standard) error, get func() (*T, error), std func(*T) *trustack.Standard, update func(func(*T) error) error) error {
	v, err := get()
	if err != nil {
		return err
	}
	if !write {
		return fn(std(v))
	}
	return update(func(v *T) error { return fn(std(v)) })
}
