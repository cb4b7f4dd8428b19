package sim

import (
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"time"

	"github.com/trustack/trustack"
)

// ClusterConfig describes a cluster to generate; zero values take the
// defaults.
type ClusterConfig struct {
	Seed      uint64
	Hosts     int // default 1000
	Domains   int // default one per 100 hosts, at least 1 and at most Hosts
	Locations int // default a third of Domains, 1 to 8
	// Emergency is the share of domains, other than the first, that are
	// federated clouds' emergency domains (default 0.15; negative for
	// none).
	Emergency float64
	// Loose is the share of hosts in no domain (default 0.02; negative
	// for none).
	Loose float64
	// HostVCPUs is every host's vCPUs (default: 8, 16 or 32 at random;
	// memory is 4 GiB a vCPU, disk 60 GB a vCPU).
	HostVCPUs int
}

// Cluster is a generated cloud: hosts, the physical domains they are in,
// the locations of those and the distance between every two locations.
type Cluster struct {
	Hosts     []*trustack.Host
	Domains   []*trustack.PhysicalDomain
	Locations []trustack.Location
	Distances []trustack.Distance
}

// Trust levels and capabilities a generated cluster uses; a workload
// draws its requirements from them.
const (
	TrustBaseline = "baseline"
	CapabilityGPU = "gpu"
	PropertySSD   = "ssd"
)

// cities are where locations are, with rough coordinates in km on a plane,
// so that distances between them obey the triangle inequality.
var cities = []struct {
	name, country string
	x, y          float64
}{
	{"Berlin", "DE", 800, 600}, {"Paris", "FR", 0, 0}, {"Amsterdam", "NL", 300, 450},
	{"Munich", "DE", 700, 100}, {"Madrid", "ES", -700, -900}, {"Milan", "IT", 450, -350},
	{"Warsaw", "PL", 1300, 600}, {"Frankfurt", "DE", 500, 300}, {"Stockholm", "SE", 1000, 1500},
	{"Dublin", "IE", -800, 700}, {"Vienna", "AT", 1000, 100}, {"Lyon", "FR", 100, -350},
}

// NewCluster generates a cluster from cfg, the same for the same cfg.
//
// Domains are at random locations; about a third offer gpu=yes, half hold
// their hosts to the baseline DCoT. Emergency domains come after the
// local ones. Each local domain gets up to two collaborators by ascending
// priority, chosen among the domains with its capabilities and DCoT (a
// backup must offer what its source does). Most hosts prove the baseline
// trust level (Security["trust"]), all but a few in a baseline domain;
// half have the property ssd=yes.
func NewCluster(cfg ClusterConfig) *Cluster {
	if cfg.Hosts <= 0 {
		cfg.Hosts = 1000
	}
	if cfg.Domains <= 0 {
		cfg.Domains = max(1, cfg.Hosts/100)
	}
	cfg.Domains = min(cfg.Domains, cfg.Hosts)
	if cfg.Locations <= 0 {
		cfg.Locations = min(max(1, cfg.Domains/3), 8)
	}
	if cfg.Emergency == 0 {
		cfg.Emergency = 0.15
	}
	if cfg.Loose == 0 {
		cfg.Loose = 0.02
	}
	r := rand.New(rand.NewPCG(cfg.Seed, 0x5ca1ab1e))
	c := &Cluster{}

	for i := range cfg.Locations {
		city := cities[i%len(cities)]
		name := city.name
		if i >= len(cities) {
			name = fmt.Sprintf("%s-%d", city.name, i/len(cities)+1)
		}
		c.Locations = append(c.Locations, trustack.Location{Name: name, Country: city.country})
	}
	for i := range c.Locations {
		a := cities[i%len(cities)]
		for j := i + 1; j < len(c.Locations); j++ {
			b := cities[j%len(cities)]
			km := max(1, int(math.Hypot(a.x-b.x, a.y-b.y))) // two sites of one city are 1 km apart
			c.Distances = append(c.Distances, trustack.Distance{A: c.Locations[i].Name, B: c.Locations[j].Name, KM: km})
		}
	}

	emergency := 0
	if cfg.Emergency > 0 {
		emergency = min(int(math.Round(float64(cfg.Domains-1)*cfg.Emergency)), cfg.Domains-1)
	}
	for i := range cfg.Domains {
		loc := c.Locations[r.IntN(len(c.Locations))]
		d := &trustack.PhysicalDomain{Name: fmt.Sprintf("dom-%03d", i), Location: loc.Name, Capabilities: map[string]string{},
			Source: trustack.SourceLocal, CreatedAt: epoch}
		if i >= cfg.Domains-emergency {
			d.Name, d.Source = fmt.Sprintf("emg-%03d", i), trustack.SourceEmergency
		}
		if r.IntN(3) == 0 {
			d.Capabilities[CapabilityGPU] = "yes"
		}
		if r.IntN(2) == 0 {
			d.DCoT = TrustBaseline
		}
		c.Domains = append(c.Domains, d)
	}
	for _, d := range c.Domains {
		if d.Source != trustack.SourceLocal {
			continue
		}
		var peers []string
		for _, o := range c.Domains {
			if o != d && o.DCoT == d.DCoT && maps.Equal(o.Capabilities, d.Capabilities) {
				peers = append(peers, o.Name)
			}
		}
		r.Shuffle(len(peers), func(i, j int) { peers[i], peers[j] = peers[j], peers[i] })
		for i, name := range peers[:min(len(peers), r.IntN(3))] {
			d.Collaborators = append(d.Collaborators, trustack.Collaborator{Domain: name, Priority: i + 1})
		}
	}

	for i := range cfg.Hosts {
		vcpus := cfg.HostVCPUs
		if vcpus <= 0 {
			vcpus = []int{8, 16, 32}[r.IntN(3)]
		}
		name := fmt.Sprintf("host-%05d", i)
		h := &trustack.Host{ID: name, Number: i + 1, Name: name, AvailabilityZone: "nova", HypervisorType: "qemu",
			HypervisorHostname: name, HostIP: fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255),
			VCPUs: vcpus, MemoryMB: vcpus * 4096, DiskGB: vcpus * 60,
			CPUAllocationRatio: 1, RAMAllocationRatio: 1, DiskAllocationRatio: 1, Enabled: true,
			Properties: map[string]string{"rack": fmt.Sprintf("r%02d", i/40)}, Security: map[string]string{},
			LastSeen: epoch, CreatedAt: epoch, UpdatedAt: epoch}
		var d *trustack.PhysicalDomain
		switch {
		case i < len(c.Domains):
			d = c.Domains[i] // every domain has a host
		case r.Float64() >= cfg.Loose:
			d = c.Domains[r.IntN(len(c.Domains))]
		}
		trusted := 0.75
		if d != nil {
			h.Domain = d.Name
			if d.DCoT == TrustBaseline {
				trusted = 0.95
			}
		}
		if r.Float64() < trusted {
			h.Security[trustack.SecurityTrust] = TrustBaseline
		}
		if r.IntN(2) == 0 {
			h.Properties[PropertySSD] = "yes"
		}
		c.Hosts = append(c.Hosts, h)
	}
	return c
}

// epoch is the time generated things were created at.
var epoch = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// Topology returns the cluster's locations, distances and domains as
// placement sees them; it shares the domains with the cluster.
func (c *Cluster) Topology() *trustack.Topology {
	t := &trustack.Topology{Locations: map[string]trustack.Location{}, Domains: map[string]*trustack.PhysicalDomain{},
		Distances: map[[2]string]int{}}
	for _, l := range c.Locations {
		t.Locations[l.Name] = l
	}
	for _, d := range c.Domains {
		t.Domains[d.Name] = d
	}
	for _, d := range c.Distances {
		t.Distances[trustack.DistanceKey(d.A, d.B)] = d.KM
	}
	return t
}

// Capacity is the cluster's vCPUs and memory (MiB), within allocation
// ratios.
func (c *Cluster) Capacity() (vcpus, memoryMB float64) {
	for _, h := range c.Hosts {
		vcpus += float64(h.VCPUs) * h.CPUAllocationRatio
		memoryMB += float64(h.MemoryMB) * h.RAMAllocationRatio
	}
	return vcpus, memoryMB
}
