package sim

import (
	"fmt"
	"slices"
	"strings"

	"github.com/trustack/trustack"
)

// Placement is the outcome of one request: the host the server was
// placed on, or the error that said why it was not.
type Placement struct {
	Server *trustack.Server
	Host   string // the host's ID; "" if the placement failed
	Err    error
}

// State is a store's state after placements: its hosts, its claims and
// the topology, as read from it.
type State struct {
	Topology *trustack.Topology
	Hosts    []*trustack.Host
	Claims   []trustack.Claim
}

// NoValidHost is how every placement that finds no host explains itself.
const NoValidHost = "No valid host was found."

// Violation is a guarantee a placement broke: which kind, and how.
type Violation struct {
	Kind    string
	Message string
}

func (v Violation) String() string { return v.Kind + ": " + v.Message }

// Kinds of violations.
const (
	// ViolationClaim: a placed server holds no claim, or one unlike its
	// flavor, project or isolation, or a claim holds for no placed server.
	ViolationClaim = "claim"
	// ViolationCapacity: a host holds more than its capacity, or its usage
	// is not the sum of its claims.
	ViolationCapacity = "capacity"
	// ViolationRequirement: a server's host does not meet a requirement.
	ViolationRequirement = "requirement"
	// ViolationIsolation: a host runs two projects either's isolation
	// keeps apart.
	ViolationIsolation = "isolation"
	// ViolationReason: a failed placement does not say "No valid host
	// was found.", or holds a claim.
	ViolationReason = "reason"
	// ViolationMissed: a failed placement had a host that could take it.
	ViolationMissed = "missed"
)

// Verify re-checks every placement against the final state and returns
// the violations found, each a sentence; none if all is well. It does not
// trust the scheduler's bookkeeping nor the hosts' usage and tenants: it
// recounts them from the placements and the store's claims. It checks
//
//   - that each placed server holds a claim of its flavor, project and
//     isolation on its host, and no other server holds one;
//   - that no host is over capacity, and the store's usage is the sum of
//     its claims;
//   - that each placed server's host meets its requirements
//     (Requirements.Unmet against the topology);
//   - that no two projects share a host that either's isolation excludes;
//   - that each failed placement says "No valid host was found." and
//     that indeed no host could take the server at the end, with the
//     requirements, room and isolation of the final state among the hosts
//     the driver looks at (see Reachable). That holds only when nothing
//     was released or moved while placing: the hosts only filled up.
func Verify(st State, placements []Placement, driver string) []Violation {
	var v []Violation
	bad := func(kind, format string, args ...any) { v = append(v, Violation{kind, fmt.Sprintf(format, args...)}) }

	hosts := make(map[string]*trustack.Host, len(st.Hosts))
	for _, h := range st.Hosts {
		hosts[h.ID] = h
	}
	claims := make(map[string]trustack.Claim, len(st.Claims))
	for _, c := range st.Claims {
		claims[c.ServerID] = c
	}
	// What each host holds, by the placements alone.
	type load struct {
		vcpus, ram, disk int
		projects         map[string]trustack.Isolation
	}
	loads := map[string]*load{}
	placed := map[string]bool{}
	for _, p := range placements {
		srv := p.Server
		if p.Host == "" {
			if msg := trustack.ErrorMessage(p.Err); p.Err == nil || !strings.HasPrefix(msg, NoValidHost) {
				bad(ViolationReason, "server %s failed with %q, want it to start with %q", srv.ID, msg, NoValidHost)
			}
			if c, ok := claims[srv.ID]; ok {
				bad(ViolationReason, "server %s failed but holds a claim on %s", srv.ID, c.HostID)
			}
			continue
		}
		placed[srv.ID] = true
		iso := srv.Requirements.Isolation()
		c, ok := claims[srv.ID]
		switch {
		case !ok:
			bad(ViolationClaim, "server %s placed on %s holds no claim", srv.ID, p.Host)
		case c.HostID != p.Host:
			bad(ViolationClaim, "server %s placed on %s holds its claim on %s", srv.ID, p.Host, c.HostID)
		case c.VCPUs != srv.Flavor.VCPUs || c.MemoryMB != srv.Flavor.RAM || c.DiskGB != srv.Flavor.Disk:
			bad(ViolationClaim, "server %s of flavor %s claims %d vCPUs, %d MiB, %d GB", srv.ID, srv.Flavor.Name, c.VCPUs, c.MemoryMB, c.DiskGB)
		case c.ProjectID != srv.ProjectID || c.Isolation.String() != iso.String():
			bad(ViolationClaim, "server %s of project %s, isolation %s, claims as project %s, isolation %s", srv.ID, srv.ProjectID, iso, c.ProjectID, c.Isolation)
		}
		h := hosts[p.Host]
		if h == nil {
			bad(ViolationClaim, "server %s placed on unknown host %s", srv.ID, p.Host)
			continue
		}
		if r, unmet := srv.Requirements.Unmet(h, st.Topology); unmet {
			bad(ViolationRequirement, "server %s on %s (domain %q), which does not meet %s", srv.ID, h.Name, h.Domain, r)
		}
		l := loads[p.Host]
		if l == nil {
			l = &load{projects: map[string]trustack.Isolation{}}
			loads[p.Host] = l
		}
		l.vcpus, l.ram, l.disk = l.vcpus+srv.Flavor.VCPUs, l.ram+srv.Flavor.RAM, l.disk+srv.Flavor.Disk
		l.projects[srv.ProjectID] = l.projects[srv.ProjectID].With(iso)
	}
	for _, c := range st.Claims {
		if !placed[c.ServerID] {
			bad(ViolationClaim, "server %s holds a claim on %s but was not placed", c.ServerID, c.HostID)
		}
	}
	for _, h := range st.Hosts {
		l := loads[h.ID]
		if l == nil {
			l = &load{}
		}
		if over(l.vcpus, h.VCPUs, h.CPUAllocationRatio) || over(l.ram, h.MemoryMB, h.RAMAllocationRatio) || over(l.disk, h.DiskGB, h.DiskAllocationRatio) {
			bad(ViolationCapacity, "host %s holds %d vCPUs, %d MiB, %d GB of %d, %d, %d", h.Name, l.vcpus, l.ram, l.disk, h.VCPUs, h.MemoryMB, h.DiskGB)
		}
		if l.vcpus != h.UsedVCPUs || l.ram != h.UsedMemoryMB || l.disk != h.UsedDiskGB {
			bad(ViolationCapacity, "host %s says it uses %d vCPUs, %d MiB, %d GB; its servers take %d, %d, %d", h.Name,
				h.UsedVCPUs, h.UsedMemoryMB, h.UsedDiskGB, l.vcpus, l.ram, l.disk)
		}
		projects := sortedKeys(l.projects)
		for i, p := range projects {
			for _, q := range projects[i+1:] {
				if excludes(l.projects[p], q) || excludes(l.projects[q], p) {
					bad(ViolationIsolation, "host %s runs projects %s (isolation %s) and %s (isolation %s)", h.Name, p, l.projects[p], q, l.projects[q])
				}
			}
		}
	}

	// A failed request must have had no host: none can take it now.
	for _, p := range placements {
		if p.Host != "" {
			continue
		}
		srv := p.Server
		reach := Reachable(st.Topology, st.Hosts, srv.Requirements, driver)
		iso := srv.Requirements.Isolation()
		for _, h := range st.Hosts {
			if !reach[h.Domain] || !h.Enabled || h.ForcedDown {
				continue
			}
			if _, unmet := srv.Requirements.Unmet(h, st.Topology); unmet {
				continue
			}
			l := loads[h.ID]
			if l == nil {
				l = &load{}
			}
			f := srv.Flavor
			if over(l.vcpus+f.VCPUs, h.VCPUs, h.CPUAllocationRatio) || over(l.ram+f.RAM, h.MemoryMB, h.RAMAllocationRatio) ||
				over(l.disk+f.Disk, h.DiskGB, h.DiskAllocationRatio) {
				continue
			}
			if shunned(l.projects, srv.ProjectID, iso) {
				continue
			}
			bad(ViolationMissed, "server %s failed (%s), yet host %s could take it", srv.ID, trustack.ErrorMessage(p.Err), h.Name)
			break
		}
	}
	return v
}

// Reachable returns the domains ("" for hosts in none) whose hosts a
// driver considers for a server with these requirements. The acaas driver
// looks at every local domain and at hosts in no domain, but at an
// emergency domain only as the collaborator of a local domain that has
// hosts and fits the requirements (Requirements.DomainFit): a federated
// cloud takes load only for a domain of ours. Other drivers look at every
// domain. Either way the host must still meet the requirements.
func Reachable(t *trustack.Topology, hosts []*trustack.Host, reqs trustack.Requirements, driver string) map[string]bool {
	out := map[string]bool{"": true}
	inUse := map[string]bool{}
	for _, h := range hosts {
		inUse[h.Domain] = true
	}
	for name, d := range t.Domains {
		if d.Source == trustack.SourceLocal || (driver != "" && driver != "acaas") {
			out[name] = true
		}
	}
	if driver == "" || driver == "acaas" {
		for _, d := range t.Domains {
			if d.Source != trustack.SourceLocal || !inUse[d.Name] {
				continue
			}
			if ok, _ := reqs.DomainFit(d, t); !ok {
				continue
			}
			for _, c := range d.Collaborators {
				out[c.Domain] = true
			}
		}
	}
	return out
}

// excludes reports whether a server of isolation iso may not share a
// host with one of project other: the rule stated here again, apart from
// trustack.Admits, which the claims under test apply.
func excludes(iso trustack.Isolation, other string) bool {
	return iso.Exclusive || slices.Contains(iso.Exclude, other)
}

// shunned reports whether a server of the project, with isolation iso,
// may not join a host whose projects ask for these isolations.
func shunned(projects map[string]trustack.Isolation, project string, iso trustack.Isolation) bool {
	for p, piso := range projects {
		if p != project && (excludes(iso, p) || excludes(piso, project)) {
			return true
		}
	}
	return false
}

// over reports whether used exceeds total within ratio.
func over(used, total int, ratio float64) bool { return float64(used) > float64(total)*ratio }

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
