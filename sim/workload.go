package sim

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/trustack/trustack"
)

// Workload mixes: what the requests of a workload require.
const (
	// MixPlain requests require nothing.
	MixPlain = "plain"
	// MixRequirements requests require a location (a location's name or a
	// country) and an isolation: shared mostly, some exclusive, some
	// excluding another project; what the bench measures.
	MixRequirements = "requirements"
	// MixRandom requests require any of the requirement kinds, or none,
	// from their project's specification and their own hints; what the
	// property test draws.
	MixRandom = "random"
)

// Mixes are the workload mixes.
var Mixes = []string{MixPlain, MixRequirements, MixRandom}

// WorkloadConfig describes a workload to generate; zero values take the
// defaults.
type WorkloadConfig struct {
	Seed     uint64
	Requests int    // default 2 per host
	Mix      string // default MixPlain
	Projects int    // how many projects ask; default one per 50 requests, 2 to 500
}

// Flavors are the sizes requests draw from, as Nova's defaults, with how
// often each is drawn (per cent).
var Flavors = []struct {
	trustack.Flavor
	Weight int
}{
	{trustack.Flavor{ID: "1", Name: "m1.tiny", VCPUs: 1, RAM: 512, Disk: 1}, 20},
	{trustack.Flavor{ID: "2", Name: "m1.small", VCPUs: 1, RAM: 2048, Disk: 20}, 35},
	{trustack.Flavor{ID: "3", Name: "m1.medium", VCPUs: 2, RAM: 4096, Disk: 40}, 30},
	{trustack.Flavor{ID: "4", Name: "m1.large", VCPUs: 4, RAM: 8192, Disk: 80}, 15},
}

// NewWorkload generates the servers to place on the cluster, in the order
// to ask for them, the same for the same cluster and cfg. Requirements are
// drawn from the cluster's vocabulary (its locations, countries, trust
// level and capabilities), so most can be met somewhere; some cannot. A
// project's specification (FromProject) holds for all its servers; hints
// (FromHint) are per server.
func NewWorkload(c *Cluster, cfg WorkloadConfig) ([]*trustack.Server, error) {
	if cfg.Requests <= 0 {
		cfg.Requests = 2 * len(c.Hosts)
	}
	if cfg.Mix == "" {
		cfg.Mix = MixPlain
	}
	if !slices.Contains(Mixes, cfg.Mix) {
		return nil, trustack.Errorf(trustack.EINVALID, "unknown workload mix %q: want one of %s", cfg.Mix, strings.Join(Mixes, ", "))
	}
	if cfg.Projects <= 0 {
		cfg.Projects = min(max(2, cfg.Requests/50), 500)
	}
	r := rand.New(rand.NewPCG(cfg.Seed, 0x3017104d))
	g := &drawer{r: r, c: c}
	for i := range cfg.Projects {
		g.projects = append(g.projects, fmt.Sprintf("proj-%03d", i))
	}
	specs := make([]trustack.Requirements, cfg.Projects)
	for i, p := range g.projects {
		specs[i] = g.projectSpec(cfg.Mix, p)
	}
	out := make([]*trustack.Server, cfg.Requests)
	for i := range out {
		pi := r.IntN(len(g.projects))
		reqs := slices.Clone(specs[pi])
		reqs = append(reqs, g.hints(cfg.Mix, g.projects[pi], reqs)...)
		if len(reqs) == 0 {
			reqs = nil
		}
		out[i] = &trustack.Server{ID: fmt.Sprintf("srv-%06d", i), Name: fmt.Sprintf("vm-%d", i), ProjectID: g.projects[pi],
			UserID: "user-" + g.projects[pi], ImageID: "cirros", Flavor: g.flavor(), VMState: trustack.VMBuilding,
			TaskState: trustack.TaskScheduling, Requirements: reqs, CreatedAt: epoch, UpdatedAt: epoch}
	}
	return out, nil
}

// drawer draws requirements from a cluster's vocabulary.
type drawer struct {
	r        *rand.Rand
	c        *Cluster
	projects []string
}

func (g *drawer) chance(p float64) bool { return g.r.Float64() < p }

func (g *drawer) flavor() trustack.Flavor {
	n := g.r.IntN(100)
	for _, f := range Flavors {
		if n < f.Weight {
			return f.Flavor
		}
		n -= f.Weight
	}
	return Flavors[0].Flavor
}

func req(kind, entry, value, source string) trustack.Requirement {
	return trustack.Requirement{Entry: entry, Kind: kind, Value: value, Source: source}
}

// projectSpec is what a project requires of all its servers.
func (g *drawer) projectSpec(mix, project string) trustack.Requirements {
	var rs trustack.Requirements
	switch mix {
	case MixRequirements:
		rs = append(rs, req(trustack.KindIsolation, "isolation", g.isolation(project, 0.08, 0.12), trustack.FromProject))
		if g.chance(0.5) {
			rs = append(rs, g.location(trustack.FromProject))
		}
	case MixRandom:
		if g.chance(0.4) {
			rs = append(rs, req(trustack.KindIsolation, "isolation", g.isolation(project, 0.25, 0.35), trustack.FromProject))
		}
		if g.chance(0.3) {
			rs = append(rs, g.location(trustack.FromProject))
		}
		if g.chance(0.3) {
			rs = append(rs, req(trustack.KindTrust, "trust", TrustBaseline, trustack.FromProject))
		}
		if g.chance(0.15) {
			rs = append(rs, req(trustack.KindFederation, "federation", "allowed", trustack.FromProject))
		}
	}
	return rs
}

// hints are what one server requires beside its project's spec.
func (g *drawer) hints(mix, project string, spec trustack.Requirements) trustack.Requirements {
	var rs trustack.Requirements
	switch mix {
	case MixRequirements:
		if !slices.ContainsFunc(spec, func(r trustack.Requirement) bool { return r.Kind == trustack.KindLocation }) {
			rs = append(rs, g.location(trustack.FromHint))
		}
	case MixRandom:
		if g.chance(0.2) {
			return nil // a plain request, as far as hints go
		}
		if g.chance(0.2) {
			rs = append(rs, g.location(trustack.FromHint))
		}
		if g.chance(0.15) {
			l := g.c.Locations[g.r.IntN(len(g.c.Locations))]
			km := []int{1, 300, 600, 1000, 2000}[g.r.IntN(5)]
			rs = append(rs, req(trustack.KindDistance, "max_distance", fmt.Sprintf("%s:%d", l.Name, km), trustack.FromHint))
		}
		if g.chance(0.15) {
			rs = append(rs, req(trustack.KindCapability, CapabilityGPU, "yes", trustack.FromHint))
		}
		if g.chance(0.1) {
			rs = append(rs, req(trustack.KindCapability, PropertySSD, "yes", trustack.FromHint))
		}
		if g.chance(0.1) {
			rs = append(rs, req(trustack.KindTrust, "trust", TrustBaseline, trustack.FromHint))
		}
		if g.chance(0.1) {
			rs = append(rs, req(trustack.KindIsolation, "isolation", g.isolation(project, 0.3, 0.7), trustack.FromHint))
		}
		if g.chance(0.1) {
			rs = append(rs, req(trustack.KindFederation, "federation", "allowed", trustack.FromHint))
		}
	}
	return rs
}

// location requires a location by name or a country: mostly one with a
// domain, as users ask for where the cloud is, sometimes any.
func (g *drawer) location(source string) trustack.Requirement {
	l := g.c.Locations[g.r.IntN(len(g.c.Locations))]
	if d := g.c.Domains; g.chance(0.9) {
		name := d[g.r.IntN(len(d))].Location
		l = g.c.Locations[slices.IndexFunc(g.c.Locations, func(l trustack.Location) bool { return l.Name == name })]
	}
	if g.chance(0.5) {
		return req(trustack.KindLocation, "location", l.Country, source)
	}
	return req(trustack.KindLocation, "location", l.Name, source)
}

// isolation is "exclusive" with probability exclusive, "exclude:" one or
// two other projects with probability exclude, else "shared".
func (g *drawer) isolation(project string, exclusive, exclude float64) string {
	x := g.r.Float64()
	switch {
	case x < exclusive:
		return "exclusive"
	case x < exclusive+exclude && len(g.projects) > 1:
		var others []string
		for range 1 + g.r.IntN(2) {
			if o := g.projects[g.r.IntN(len(g.projects))]; o != project && !slices.Contains(others, o) {
				others = append(others, o)
			}
		}
		if len(others) > 0 {
			return "exclude:" + strings.Join(others, ",")
		}
	}
	return "shared"
}
