package trustack

import (
	"crypto/sha1"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The vocabulary of ACaaS, trustack's requirement-aware placement: where
// hosts are (locations, the distances between them, the physical domains
// that group hosts of one capability set), what users require of the
// hosts their servers run on, and whether a host meets it.

// Location is a place hosts can be, with the country or region it is in.
type Location struct {
	Name    string
	Country string // an ISO 3166-1 alpha-2 code or a region code, upper case
}

// Distance is how far apart two locations are.
type Distance struct {
	A, B string // location names
	KM   int
}

// Domain sources: this cloud's own, or a federated cloud's, used only for
// servers whose requirements allow federation.
const (
	SourceLocal     = "local"
	SourceEmergency = "emergency"
)

// PhysicalDomain is a physical-layer domain: compute hosts of the same
// capabilities at one location, held to one chain of trust.
type PhysicalDomain struct {
	Name         string
	Location     string            // a location's name
	Capabilities map[string]string // what every member host offers
	// DCoT is the domain's chain of trust: the trust level every member
	// is held to; "" for none.
	DCoT   string
	Source string // SourceLocal or SourceEmergency
	// Collaborators are the domains that take this domain's load in a
	// maintenance window, an emergency or when it is full, by ascending
	// priority; each has the domain's capabilities and DCoT.
	Collaborators []Collaborator
	CreatedAt     time.Time
}

// Collaborator is a backup domain and its priority: lower goes first.
type Collaborator struct {
	Domain   string
	Priority int
}

// Requirement kinds: what a requirement entry asks of a host.
const (
	// KindLocation: the host's domain is at the named location, or in
	// the named country.
	KindLocation = "location"
	// KindDistance: the host's domain is at most KM kilometres from a
	// location, written "LOCATION:KM".
	KindDistance = "distance"
	// KindIsolation: whom the server may share a host with: "shared" (the
	// default), "exclusive" (no other project) or "exclude:P1,P2" (never
	// these projects).
	KindIsolation = "isolation"
	// KindTrust: the host's chain of trust is the named trust level.
	KindTrust = "trust"
	// KindCapability: the host's domain capability, or host property, of
	// the entry's name has the value.
	KindCapability = "capability"
	// KindFederation: "allowed" lets the server run in an emergency
	// domain of a federated cloud; "denied" is the default.
	KindFederation = "federation"
)

// RequirementKinds are the kinds of requirement entries.
var RequirementKinds = []string{KindLocation, KindDistance, KindIsolation, KindTrust, KindCapability, KindFederation}

// RequirementEntry is a kind of requirement users may state, defined by
// operators: its name is the key users write ("location", "gpu").
type RequirementEntry struct {
	Name        string
	Kind        string
	Description string
}

// Where a server's requirement came from.
const (
	FromProject = "project" // the project's stored specification
	FromFlavor  = "flavor"  // the flavor's extra specs
	FromHint    = "hint"    // a scheduler hint of the request
)

// ProjectRequirement is one value of a project's requirement
// specification.
type ProjectRequirement struct {
	ProjectID string
	Entry     string
	Value     string
	// Locked is set when an operator stated the requirement: the
	// project's members can neither change nor unset it.
	Locked    bool
	UpdatedAt time.Time
}

// Requirement is one requirement a server is placed under.
type Requirement struct {
	Entry  string
	Kind   string
	Value  string
	Source string // FromProject, FromFlavor or FromHint
}

// String is the requirement as users write it, with where it came from:
// "location=DE (hint)".
func (r Requirement) String() string {
	return fmt.Sprintf("%s=%s (%s)", r.Entry, r.Value, r.Source)
}

// CheckRequirementValue reports whether value is a valid value for a
// requirement of the kind: EINVALID, saying why, if not.
func CheckRequirementValue(kind, value string) error {
	bad := func(want string) error {
		return Errorf(EINVALID, "Invalid value %q for a %s requirement: want %s.", value, kind, want)
	}
	switch kind {
	case KindLocation, KindTrust, KindCapability:
		if strings.TrimSpace(value) == "" {
			return bad("a non-empty value")
		}
	case KindDistance:
		if _, _, ok := parseDistance(value); !ok {
			return bad("LOCATION:KM, with KM a positive whole number")
		}
	case KindIsolation:
		if _, err := ParseIsolation(value); err != nil {
			return err
		}
	case KindFederation:
		if value != "allowed" && value != "denied" {
			return bad(`"allowed" or "denied"`)
		}
	default:
		return Errorf(EINVALID, "Unknown requirement kind %q: want one of %s.", kind, strings.Join(RequirementKinds, ", "))
	}
	return nil
}

func parseDistance(v string) (location string, km int, ok bool) {
	i := strings.LastIndexByte(v, ':')
	if i <= 0 {
		return "", 0, false
	}
	km, err := strconv.Atoi(v[i+1:])
	return v[:i], km, err == nil && km > 0
}

// Isolation is whom a server may share its host with: no one of another
// project when Exclusive, else anyone but the projects in Exclude.
type Isolation struct {
	Exclusive bool
	Exclude   []string // project IDs, sorted; empty when Exclusive
}

// ParseIsolation reads an isolation requirement's value: "shared" (or ""),
// "exclusive" or "exclude:P1,P2".
func ParseIsolation(v string) (Isolation, error) {
	switch {
	case v == "" || v == "shared":
		return Isolation{}, nil
	case v == "exclusive":
		return Isolation{Exclusive: true}, nil
	case strings.HasPrefix(v, "exclude:"):
		var iso Isolation
		for p := range strings.SplitSeq(strings.TrimPrefix(v, "exclude:"), ",") {
			if p = strings.TrimSpace(p); p != "" {
				iso = iso.With(Isolation{Exclude: []string{p}})
			}
		}
		if len(iso.Exclude) == 0 {
			return Isolation{}, Errorf(EINVALID, "Invalid isolation %q: exclude: names no project.", v)
		}
		return iso, nil
	}
	return Isolation{}, Errorf(EINVALID, `Invalid isolation %q: want "shared", "exclusive" or "exclude:PROJECT,...".`, v)
}

// String is the isolation as ParseIsolation reads it.
func (i Isolation) String() string {
	switch {
	case i.Exclusive:
		return "exclusive"
	case len(i.Exclude) > 0:
		return "exclude:" + strings.Join(i.Exclude, ",")
	}
	return "shared"
}

// With is the isolation that keeps both i and o: the stricter of the two.
func (i Isolation) With(o Isolation) Isolation {
	if i.Exclusive || o.Exclusive {
		return Isolation{Exclusive: true}
	}
	ex := slices.Concat(i.Exclude, o.Exclude)
	slices.Sort(ex)
	return Isolation{Exclude: slices.Compact(ex)}
}

// Tenant is a project with servers on a host, and the isolation those
// servers asked for, together.
type Tenant struct {
	ProjectID string
	Isolation Isolation
	Servers   int
}

// Admits reports whether a host whose tenants are these may take a server
// of the project asking for iso: neither side's isolation may exclude the
// other. Isolation is a hard constraint, checked in the claim itself.
func Admits(tenants []Tenant, project string, iso Isolation) bool {
	for _, t := range tenants {
		if t.ProjectID == project || t.Servers == 0 {
			continue
		}
		if iso.excludes(t.ProjectID) || t.Isolation.excludes(project) {
			return false
		}
	}
	return true
}

// Shuns reports whether a server of the project, asking for i, may not
// share a host with these tenants by its own isolation (whatever theirs).
func (i Isolation) Shuns(tenants []Tenant, project string) bool {
	for _, t := range tenants {
		if t.ProjectID != project && t.Servers > 0 && i.excludes(t.ProjectID) {
			return true
		}
	}
	return false
}

// excludes reports whether i keeps the server away from another project.
func (i Isolation) excludes(other string) bool {
	return i.Exclusive || slices.Contains(i.Exclude, other)
}

// WithTenant returns tenants with one more server of the project, asking
// for iso; tenants is not changed.
func WithTenant(tenants []Tenant, project string, iso Isolation) []Tenant {
	out := slices.Clone(tenants)
	for i := range out {
		if out[i].ProjectID == project {
			out[i].Isolation = out[i].Isolation.With(iso)
			out[i].Servers++
			return out
		}
	}
	return append(out, Tenant{ProjectID: project, Isolation: iso, Servers: 1})
}

// Topology is what placement knows of where hosts are: locations, the
// distances between them, the physical domains, and the host aggregates
// operators made.
type Topology struct {
	Locations map[string]Location        // by name
	Domains   map[string]*PhysicalDomain // by name
	// Distances are in kilometres, keyed by the two locations' names in
	// ascending order.
	Distances map[[2]string]int
	// Aggregates are the operators' host aggregates, by ID; those that
	// show physical domains are not among them (see DomainAggregate).
	Aggregates []*Aggregate
}

// HasChainOfTrust reports whether a physical domain's chain of trust is the trust
// level level.
func (t *Topology) HasChainOfTrust(level string) bool {
	if t == nil {
		return false
	}
	for _, d := range t.Domains {
		if d.DCoT == level {
			return true
		}
	}
	return false
}

// Distance returns how far apart two locations are, and whether that is
// known; a location is 0 km from itself.
func (t *Topology) Distance(a, b string) (int, bool) {
	if a == b {
		return 0, true
	}
	km, ok := t.Distances[DistanceKey(a, b)]
	return km, ok
}

// DistanceKey is the key of the distance between two locations.
func DistanceKey(a, b string) [2]string {
	if a > b {
		a, b = b, a
	}
	return [2]string{a, b}
}

// Requirements are all a server requires of its host, together: every one
// must hold. A hint or a flavor can add requirements to the project's, so
// it can narrow what the project stated but never loosen it.
type Requirements []Requirement

// Isolation is the isolation the requirements ask for: the strictest.
func (rs Requirements) Isolation() Isolation {
	var iso Isolation
	for _, r := range rs {
		if r.Kind == KindIsolation {
			o, _ := ParseIsolation(r.Value)
			iso = iso.With(o)
		}
	}
	return iso
}

// federationAllowed reports whether some requirement allows federation and
// none denies it.
func (rs Requirements) federationAllowed() bool {
	allowed := false
	for _, r := range rs {
		if r.Kind == KindFederation {
			if r.Value != "allowed" {
				return false
			}
			allowed = true
		}
	}
	return allowed
}

// NoFederation is the requirement every server has unless its own
// requirements allow federation: no emergency domains.
var NoFederation = Requirement{Entry: "federation", Kind: KindFederation, Value: "denied", Source: "default"}

// Unmet returns the first requirement the host does not meet, isolation
// aside (it depends on the host's tenants: see Admits), and whether there
// is one. A host in no domain is at no location and has no domain
// capabilities.
func (rs Requirements) Unmet(h *Host, t *Topology) (Requirement, bool) {
	d := t.Domains[h.Domain]
	if d != nil && d.Source == SourceEmergency && !rs.federationAllowed() {
		return NoFederation, true
	}
	for _, r := range rs {
		if !r.metBy(h, d, t) {
			return r, true
		}
	}
	return Requirement{}, false
}

// DomainFit reports whether hosts of domain d (nil for none) can meet the
// requirements that depend on the domain alone (location, distance,
// federation), and how many of the others the domain meets by itself: a
// trust level that is its DCoT, a capability it offers. Placement prefers
// the domains that fit best.
func (rs Requirements) DomainFit(d *PhysicalDomain, t *Topology) (ok bool, score int) {
	if d != nil && d.Source == SourceEmergency && !rs.federationAllowed() {
		return false, 0
	}
	var none Host
	for _, r := range rs {
		switch r.Kind {
		case KindLocation, KindDistance:
			if !r.metBy(&none, d, t) {
				return false, 0
			}
		case KindTrust:
			if d != nil && d.DCoT == r.Value {
				score++
			}
		case KindCapability:
			if d != nil && d.Capabilities[r.Entry] == r.Value {
				score++
			}
		}
	}
	return true, score
}

// metBy reports whether the host, in domain d (nil for none), meets r.
func (r Requirement) metBy(h *Host, d *PhysicalDomain, t *Topology) bool {
	switch r.Kind {
	case KindLocation:
		if d == nil {
			return false
		}
		loc, ok := t.Locations[d.Location]
		return ok && (loc.Name == r.Value || strings.EqualFold(loc.Country, r.Value))
	case KindDistance:
		to, km, ok := parseDistance(r.Value)
		if d == nil || !ok {
			return false
		}
		dist, known := t.Distance(d.Location, to)
		return known && dist <= km
	case KindTrust:
		return h.RCoT() == r.Value
	case KindCapability:
		return (d != nil && d.Capabilities[r.Entry] == r.Value) || h.Properties[r.Entry] == r.Value
	}
	return true // isolation and federation are checked elsewhere
}

// RCoT is the host's chain of trust: the trust level it has proved, kept
// as its security property "trust"; "" for none.
func (h *Host) RCoT() string { return h.Security[SecurityTrust] }

// SecurityTrust is the security property that holds a host's chain of
// trust.
const SecurityTrust = "trust"

// DomainAggregatePrefix begins the name of the aggregate that shows a
// physical domain; operators' aggregates may not take such a name.
const DomainAggregatePrefix = "domain:"

// DomainAggregate is how os-aggregates shows the physical domain d, with
// its hosts (names, sorted): an aggregate named "domain:NAME", read only,
// whose metadata is the domain's capabilities and, under keys that begin
// with "acaas:", its location (and the location's country, if t knows
// it), its chain of trust and its source. Its ID is negative and derived
// from the name, so that it stays the same and is never a stored
// aggregate's; so is its UUID. The scheduler's aggregate filters read its
// metadata as they read an operator's aggregate's.
func DomainAggregate(d *PhysicalDomain, t *Topology, hosts []string) *Aggregate {
	name := DomainAggregatePrefix + d.Name
	h := fnv.New32a()
	h.Write([]byte(name))
	sum := sha1.Sum([]byte("trustack aggregate " + name))
	sum[6] = sum[6]&0x0f | 0x50 // version 5: name-based, SHA-1
	sum[8] = sum[8]&0x3f | 0x80 // RFC 4122 variant
	meta := maps.Clone(d.Capabilities)
	if meta == nil {
		meta = map[string]string{}
	}
	meta["acaas:location"], meta["acaas:source"] = d.Location, d.Source
	if loc, ok := t.Locations[d.Location]; ok {
		meta["acaas:country"] = loc.Country
	}
	if d.DCoT != "" {
		meta["acaas:dcot"] = d.DCoT
	}
	return &Aggregate{
		ID:        -1 - int(h.Sum32()&0x7fffffff),
		UUID:      fmt.Sprintf("%x-%x-%x-%x-%x", sum[0:4], sum[4:6], sum[6:8], sum[8:10], sum[10:16]),
		Name:      name,
		Hosts:     hosts,
		Metadata:  meta,
		Domain:    d.Name,
		CreatedAt: d.CreatedAt,
	}
}
