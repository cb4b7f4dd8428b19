package network

import (
	"context"
	"slices"

	"github.com/google/uuid"

	"github.com/trustack/trustack"
)

// NetworkSpec is what a caller asks of a network, on creation or update;
// nil fields are left as they are (on creation, to their defaults).
type NetworkSpec struct {
	// ProjectID is the owner of a new network, "" for the caller's
	// project; ignored on update.
	ProjectID    string
	Name         *string
	Description  *string
	AdminStateUp *bool
	Shared       *bool
	External     *bool
	PortSecurity *bool
	MTU          *int
	Tags         *[]string
	// Type, PhysicalNetwork and SegmentationID are the provider segment,
	// set on creation only; a network that names none gets a tenant
	// segment of the configured type.
	Type            *string
	PhysicalNetwork *string
	SegmentationID  *int
}

// vxlanOverhead is what VXLAN's encapsulation takes of the physical MTU.
const vxlanOverhead = 50

// CreateNetwork creates a network. A network that names no segment gets
// one of the tenant network type, with a free segmentation ID; one that
// names its segment is checked against the physical networks and ranges
// (EINVALID), and a segment already taken gives ECONFLICT. EOVERQUOTA
// when the project has all the networks its quota allows.
func (s *Service) CreateNetwork(ctx context.Context, c Caller, spec NetworkSpec) (*trustack.Network, error) {
	project, err := s.owner(c, spec.ProjectID)
	if err != nil {
		return nil, err
	}
	now := s.now()
	n := &trustack.Network{ID: uuid.NewString(), ProjectID: project, AdminStateUp: true, Status: trustack.StatusActive, PortSecurity: true,
		Standard: trustack.Standard{CreatedAt: now, UpdatedAt: now, Revision: 1}}
	if err := s.segment(ctx, n, spec); err != nil {
		return nil, err
	}
	if err := applyNetwork(n, spec, s.maxMTU(n)); err != nil {
		return nil, err
	}
	limit, err := s.limit(ctx, project, trustack.QuotaNetwork)
	if err != nil {
		return nil, err
	}
	if err := s.ensureDefaultGroup(ctx, project); err != nil {
		return nil, err
	}
	// A tenant segment chosen at random may have been taken meanwhile:
	// choose again.
	for attempt := 0; ; attempt++ {
		err = s.store.CreateNetwork(ctx, n, limit)
		if trustack.ErrorReason(err) != reasonSegmentInUse || spec.segmentGiven() || attempt == 8 {
			break
		}
		if err := s.segment(ctx, n, spec); err != nil {
			return nil, err
		}
	}
	if err != nil {
		return nil, err
	}
	s.opts.Log.Info("network created", "network", n.ID, "project", project, "type", n.Type, "segment", n.SegmentationID)
	return n, nil
}

// segmentGiven reports whether the spec names a segmentation ID, which is
// then not chosen again when taken.
func (spec NetworkSpec) segmentGiven() bool { return spec.SegmentationID != nil }

// segment gives n the segment spec asks for, or a tenant segment.
func (s *Service) segment(ctx context.Context, n *trustack.Network, spec NetworkSpec) error {
	typ := s.opts.TenantNetworkType
	if spec.Type != nil {
		typ = *spec.Type
	} else if spec.PhysicalNetwork != nil || spec.SegmentationID != nil {
		return invalid("provider:network_type is required with provider:physical_network or provider:segmentation_id.")
	}
	n.Type, n.PhysicalNetwork, n.SegmentationID = typ, "", 0
	physnet := ""
	if spec.PhysicalNetwork != nil {
		physnet = *spec.PhysicalNetwork
	}
	switch typ {
	case trustack.NetworkLocal:
		if physnet != "" || spec.SegmentationID != nil {
			return invalid("A local network has no physical network and no segmentation ID.")
		}
		return nil
	case trustack.NetworkFlat:
		if spec.SegmentationID != nil {
			return invalid("A flat network has no segmentation ID.")
		}
		if err := s.knownPhysnet(physnet); err != nil {
			return err
		}
		n.PhysicalNetwork = physnet
		return nil
	case trustack.NetworkVLAN:
		if physnet == "" {
			// A tenant VLAN network: any physical network with a range.
			for p := range s.opts.VLANRanges {
				if physnet == "" || p < physnet {
					physnet = p
				}
			}
			if physnet == "" {
				return invalid("No VLAN ranges are configured for tenant networks: name provider:physical_network and provider:segmentation_id.")
			}
		} else if err := s.knownPhysnet(physnet); err != nil {
			return err
		}
		n.PhysicalNetwork = physnet
		if spec.SegmentationID != nil {
			if id := *spec.SegmentationID; id < 1 || id > 4094 {
				return invalid("Invalid input for operation: provider:segmentation_id %d is not a VLAN ID (1 to 4094).", id)
			}
			n.SegmentationID = *spec.SegmentationID
			return nil
		}
		r, ok := s.opts.VLANRanges[physnet]
		if !ok {
			return invalid("No VLAN range is configured on physical network %s: name provider:segmentation_id.", physnet)
		}
		return s.freeSegment(ctx, n, r)
	case trustack.NetworkVXLAN:
		if physnet != "" {
			return invalid("A vxlan network has no physical network.")
		}
		if spec.SegmentationID != nil {
			if id := *spec.SegmentationID; id < 1 || id > 1<<24-1 {
				return invalid("Invalid input for operation: provider:segmentation_id %d is not a VXLAN VNI (1 to 16777215).", id)
			}
			n.SegmentationID = *spec.SegmentationID
			return nil
		}
		return s.freeSegment(ctx, n, s.opts.VXLANRange)
	}
	return invalid("Invalid input for operation: network_type value '%s' not supported (flat, vlan, vxlan or local).", typ)
}

// knownPhysnet returns EINVALID unless p is a configured physical network.
func (s *Service) knownPhysnet(p string) error {
	if p == "" {
		return invalid("Invalid input for operation: physical_network is required for flat and vlan provider networks.")
	}
	if !slices.Contains(s.opts.PhysicalNetworks, p) {
		return invalid("Invalid input for operation: physical_network '%s' unknown for this provider network (known: %v).", p, s.opts.PhysicalNetworks)
	}
	return nil
}

// freeSegment gives n a random segmentation ID of the range [lo, hi] that
// no network of its type and physical network uses.
func (s *Service) freeSegment(ctx context.Context, n *trustack.Network, r [2]int) error {
	used, err := s.store.SegmentationIDs(ctx, n.Type, n.PhysicalNetwork)
	if err != nil {
		return err
	}
	taken := map[int]bool{}
	for _, id := range used {
		taken[id] = true
	}
	size := r[1] - r[0] + 1
	if len(taken) < size/2 {
		for range probes {
			if id := r[0] + s.intN(size); !taken[id] {
				n.SegmentationID = id
				return nil
			}
		}
	}
	var free []int
	for id := r[0]; id <= r[1]; id++ {
		if !taken[id] {
			free = append(free, id)
		}
	}
	if len(free) == 0 {
		return trustack.Reasonf(trustack.EUNAVAILABLE, "NoNetworkAvailable", "Unable to create the network. No tenant network is available for allocation.")
	}
	n.SegmentationID = free[s.intN(len(free))]
	return nil
}

// maxMTU is the largest MTU a network's segment carries.
func (s *Service) maxMTU(n *trustack.Network) int {
	if n.Type == trustack.NetworkVXLAN {
		return s.opts.MTU - vxlanOverhead
	}
	return s.opts.MTU
}

// applyNetwork sets what spec changes of n, other than its segment.
func applyNetwork(n *trustack.Network, spec NetworkSpec, maxMTU int) error {
	set(&n.Name, spec.Name)
	set(&n.Description, spec.Description)
	set(&n.AdminStateUp, spec.AdminStateUp)
	set(&n.Shared, spec.Shared)
	set(&n.External, spec.External)
	set(&n.PortSecurity, spec.PortSecurity)
	if n.MTU == 0 {
		n.MTU = maxMTU
	}
	if spec.MTU != nil {
		if m := *spec.MTU; m < 68 || m > maxMTU {
			return invalid("Invalid input for operation: Requested MTU is too big, maximum is %d.", maxMTU)
		}
		n.MTU = *spec.MTU
	}
	if spec.Tags != nil {
		tags, err := checkTags(*spec.Tags)
		if err != nil {
			return err
		}
		n.Tags = tags
	}
	return checkName(n.Name, n.Description)
}

// Network returns a network the caller may see.
func (s *Service) Network(ctx context.Context, c Caller, id string) (*trustack.Network, error) {
	n, err := s.store.Network(ctx, id)
	if err != nil || !c.seesNetwork(n) {
		return nil, notFound("NetworkNotFound", "Network %s could not be found.", id)
	}
	return n, nil
}

// Networks returns the networks the caller may see.
func (s *Service) Networks(ctx context.Context, c Caller) ([]*trustack.Network, error) {
	f := trustack.NetworkFilter{}
	if !c.Admin {
		f.VisibleTo = c.ProjectID
	}
	return s.store.Networks(ctx, f)
}

// UpdateNetwork changes a network. Its segment cannot change (EINVALID);
// a network other projects have ports on cannot stop being shared, nor
// one with floating IPs or routers' gateways stop being external
// (ECONFLICT).
func (s *Service) UpdateNetwork(ctx context.Context, c Caller, id string, spec NetworkSpec) (*trustack.Network, error) {
	if spec.Type != nil || spec.PhysicalNetwork != nil || spec.SegmentationID != nil {
		return nil, invalid("Invalid input for operation: Plugin does not support updating provider attributes.")
	}
	cur, err := s.Network(ctx, c, id)
	if err != nil {
		return nil, err
	}
	if spec.Shared != nil && !*spec.Shared && cur.Shared {
		ports, err := s.store.Ports(ctx, trustack.PortFilter{NetworkID: id})
		if err != nil {
			return nil, err
		}
		for _, p := range ports {
			if p.ProjectID != cur.ProjectID && p.ProjectID != "" && p.DeviceOwner != trustack.OwnerDHCP {
				return nil, conflict("InvalidSharedSetting", "Unable to reconfigure sharing settings for network %s. Multiple tenants are using it.", id)
			}
		}
	}
	if spec.External != nil && !*spec.External && cur.External {
		ports, err := s.store.Ports(ctx, trustack.PortFilter{NetworkID: id})
		if err != nil {
			return nil, err
		}
		for _, p := range ports {
			if p.DeviceOwner == trustack.OwnerFloatingIP || p.DeviceOwner == trustack.OwnerRouterGateway {
				return nil, conflict("NetworkInUse", "Unable to complete operation on network %s. There are one or more floating IPs or routers' gateways on it.", id)
			}
		}
	}
	n, err := s.store.UpdateNetwork(ctx, id, func(n *trustack.Network) error {
		n.UpdatedAt = s.now()
		return applyNetwork(n, spec, s.maxMTU(n))
	})
	if err != nil {
		return nil, err
	}
	s.networkChanged(ctx, n.ID)
	return n, nil
}

// DeleteNetwork deletes a network with its subnets; ECONFLICT while ports
// other than its DHCP servers' are on it.
func (s *Service) DeleteNetwork(ctx context.Context, c Caller, id string) error {
	n, err := s.Network(ctx, c, id)
	if err != nil {
		return err
	}
	subnets, err := s.store.Subnets(ctx, trustack.SubnetFilter{NetworkIDs: []string{id}})
	if err != nil {
		return err
	}
	if err := s.store.DeleteNetwork(ctx, id); err != nil {
		return err
	}
	for _, sn := range subnets {
		s.dhcpRemoved(ctx, sn.ID)
	}
	s.opts.Log.Info("network deleted", "network", n.ID)
	return nil
}
