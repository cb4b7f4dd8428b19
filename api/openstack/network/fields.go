package network

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/api/openstack"
	"github.com/trustack/trustack/network"
)

// field is an attribute a request body may set on a resource whose spec
// is S, as Neutron's attribute map declares it: whether a create (POST)
// or an update (PUT) takes it, whether a create needs it, and whether
// setting it asks the policy's rule for the attribute as well
// (create_network:shared), as Neutron's enforce_policy.
type field[S any] struct {
	name      string
	post, put bool
	required  bool
	policy    bool
	// dflt is the JSON of the attribute's default, "" for none: a create
	// that sets an attribute to its default does not ask its rule.
	dflt string
	// subRules asks the rules of the keys of the attribute's value too
	// (create_port:fixed_ips:ip_address), for an object or a list of
	// objects.
	subRules bool
	// set parses a value into the spec, or returns a 400 in Neutron's
	// words.
	set func(s *S, v json.RawMessage) error
}

// decode parses a request's attributes into a spec for a create or an
// update, as Neutron does: an unknown attribute, one the operation does
// not take, a missing required one or a bad value is a 400. It returns
// the policy's rules for the attributes the request sets, besides the
// operation's own (create_network:shared).
func decode[S any](fields []field[S], action string, attrs map[string]json.RawMessage, create bool) (S, []string, error) {
	var spec S
	var unknown []string
	for name := range attrs {
		if !slices.ContainsFunc(fields, func(f field[S]) bool { return f.name == name }) {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return spec, nil, badRequest("Unrecognized attribute(s) '%s'", strings.Join(unknown, ", "))
	}
	var rules []string
	for _, f := range fields {
		v, given := attrs[f.name]
		switch {
		case !given && create && f.required:
			return spec, nil, badRequest("Failed to parse request. Required attribute '%s' not specified", f.name)
		case !given:
			continue
		case create && !f.post:
			return spec, nil, badRequest("Attribute '%s' not allowed in POST", f.name)
		case !create && !f.put:
			return spec, nil, badRequest("Cannot update read-only attribute %s", f.name)
		}
		if err := f.set(&spec, v); err != nil {
			return spec, nil, err
		}
		if f.policy && (!create || f.dflt == "" || !sameJSON(v, f.dflt)) {
			rules = append(rules, action+":"+f.name)
			if f.subRules {
				for _, key := range subKeys(v) {
					rules = append(rules, action+":"+f.name+":"+key)
				}
			}
		}
	}
	return spec, rules, nil
}

// sameJSON reports whether two JSON texts hold the same value.
func sameJSON(a json.RawMessage, b string) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal([]byte(b), &y) == nil && reflect.DeepEqual(x, y)
}

// subKeys returns the keys of a JSON object, or of the objects of a JSON
// list, sorted.
func subKeys(v json.RawMessage) []string {
	var objects []map[string]json.RawMessage
	var one map[string]json.RawMessage
	if json.Unmarshal(v, &one) == nil {
		objects = append(objects, one)
	} else {
		json.Unmarshal(v, &objects)
	}
	var keys []string
	for _, o := range objects {
		for k := range o {
			if !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
	}
	sort.Strings(keys)
	return keys
}

// Neutron's types of the errors the API itself finds in a request.
const (
	reasonBadRequest   = "HTTPBadRequest"
	reasonInvalidInput = "InvalidInput"
)

// badRequest is a 400 of the API layer, as webob's HTTPBadRequest.
func badRequest(format string, args ...any) error {
	return trustack.Reasonf(trustack.EINVALID, reasonBadRequest, format, args...)
}

// invalidFor is Neutron's 400 for a value an attribute's validator
// refuses.
func invalidFor(attr, format string, args ...any) error {
	return badRequest("Invalid input for %s. Reason: %s.", attr, fmt.Sprintf(format, args...))
}

// invalidInput is Neutron's 400 for a value its converters refuse.
func invalidInput(format string, args ...any) error {
	return trustack.Reasonf(trustack.EINVALID, reasonInvalidInput, "Invalid input for operation: %s.", fmt.Sprintf(format, args...))
}

// shown writes a JSON value for a message as Neutron's messages show
// Python's: a string as it is, null, true and false as None, True and
// False, anything else as its JSON.
func shown(v json.RawMessage) string {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s
	}
	var b bytes.Buffer
	if json.Compact(&b, v) != nil {
		return string(v)
	}
	switch b.String() {
	case "null":
		return "None"
	case "true", "false":
		var t bool
		json.Unmarshal(v, &t)
		return pyBool(t)
	}
	return b.String()
}

// isNull reports whether a JSON value is null.
func isNull(v json.RawMessage) bool { return string(bytes.TrimSpace(v)) == "null" }

// parseString returns a string of at most max bytes.
func parseString(attr string, v json.RawMessage, max int) (string, error) {
	var s string
	if json.Unmarshal(v, &s) != nil {
		return "", invalidFor(attr, "'%s' is not a valid string", shown(v))
	}
	if len(s) > max {
		return "", invalidFor(attr, "'%s' exceeds maximum length of %d", s, max)
	}
	return s, nil
}

// parseBool converts a boolean as Neutron's convert_to_boolean: true,
// false, their names in any case, 1 and 0.
func parseBool(v json.RawMessage) (bool, error) {
	var b bool
	if json.Unmarshal(v, &b) == nil {
		return b, nil
	}
	if b, ok := boolOf(shown(v)); ok {
		return b, nil
	}
	return false, invalidInput("'%s' cannot be converted to boolean", shown(v))
}

// boolOf reads a boolean written as text, as convert_to_boolean does.
func boolOf(s string) (bool, bool) {
	switch strings.ToLower(s) {
	case "true", "1":
		return true, true
	case "false", "0":
		return false, true
	}
	return false, false
}

// parseInt converts an integer, or a string of one, as convert_to_int.
func parseInt(v json.RawMessage) (int, error) {
	n, err := strconv.Atoi(shown(v))
	if err != nil {
		return 0, invalidInput("'%s' is not an integer", shown(v))
	}
	return n, nil
}

// parseUUID returns an ID in the form Neutron generates.
func parseUUID(attr string, v json.RawMessage) (string, error) {
	var s string
	if json.Unmarshal(v, &s) != nil {
		return "", invalidFor(attr, "'%s' is not a valid UUID", shown(v))
	}
	return s, checkUUID(attr, s)
}

// checkUUID returns a 400 unless s is an ID in the form Neutron
// generates.
func checkUUID(attr, s string) error {
	if !openstack.IsUUIDHex(s) {
		return invalidFor(attr, "'%s' is not a valid UUID", s)
	}
	return nil
}

// parseUUIDOrNone returns an ID, or "" for null.
func parseUUIDOrNone(attr string, v json.RawMessage) (string, error) {
	if isNull(v) {
		return "", nil
	}
	return parseUUID(attr, v)
}

// parseAddr returns an IP address.
func parseAddr(attr string, v json.RawMessage) (netip.Addr, error) {
	var s string
	if json.Unmarshal(v, &s) == nil {
		if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
			return a, nil
		}
	}
	return netip.Addr{}, invalidFor(attr, "'%s' is not a valid IP address", shown(v))
}

// parseAddrOrNone returns an IP address, or the zero Addr for null.
func parseAddrOrNone(attr string, v json.RawMessage) (netip.Addr, error) {
	if isNull(v) {
		return netip.Addr{}, nil
	}
	return parseAddr(attr, v)
}

// parseCIDR returns an IP subnet in CIDR notation; whether it is the
// subnet's network address is the service's to say.
func parseCIDR(attr string, v json.RawMessage) (netip.Prefix, error) {
	var s string
	if json.Unmarshal(v, &s) == nil {
		if p, err := netip.ParsePrefix(s); err == nil {
			return p, nil
		}
	}
	return netip.Prefix{}, invalidFor(attr, "'%s' is not a valid IP subnet", shown(v))
}

// parseObjects returns a list of objects, each with only the keys
// allowed; bad gives the message of a list or an item that is not.
func parseObjects(attr string, v json.RawMessage, allowed []string, bad string) ([]map[string]json.RawMessage, error) {
	var items []json.RawMessage
	if json.Unmarshal(v, &items) != nil {
		return nil, invalidFor(attr, "'%s' is not a list", shown(v))
	}
	out := make([]map[string]json.RawMessage, len(items))
	for i, item := range items {
		if json.Unmarshal(item, &out[i]) != nil || out[i] == nil {
			return nil, invalidFor(attr, bad, shown(item))
		}
		for k := range out[i] {
			if !slices.Contains(allowed, k) {
				return nil, invalidFor(attr, bad, shown(item))
			}
		}
	}
	return out, nil
}

// parseStrings returns a list of strings; null is the empty list, as
// Neutron's convert_none_to_empty_list.
func parseStrings(attr string, v json.RawMessage) ([]string, error) {
	out := []string{}
	if !isNull(v) && json.Unmarshal(v, &out) != nil {
		return nil, invalidFor(attr, "'%s' is not a list of strings", shown(v))
	}
	return out, nil
}

// parseFixedIPs returns the fixed IPs a port or a gateway asks for.
func parseFixedIPs(attr string, v json.RawMessage) ([]network.FixedIPSpec, error) {
	items, err := parseObjects(attr, v, []string{"subnet_id", "ip_address"}, "Invalid data format for fixed IP: '%s'")
	if err != nil {
		return nil, err
	}
	out := make([]network.FixedIPSpec, len(items))
	for i, item := range items {
		if s, ok := item["subnet_id"]; ok {
			if out[i].SubnetID, err = parseUUID(attr, s); err != nil {
				return nil, err
			}
		}
		if a, ok := item["ip_address"]; ok {
			if out[i].Address, err = parseAddr(attr, a); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// parseRoutes returns host routes or a router's routes; null is none.
func parseRoutes(attr string, v json.RawMessage) ([]trustack.HostRoute, error) {
	out := []trustack.HostRoute{}
	if isNull(v) {
		return out, nil
	}
	items, err := parseObjects(attr, v, []string{"destination", "nexthop"}, "Invalid data format for hostroute: '%s'")
	if err != nil {
		return nil, err
	}
	for _, item := range items {
		d, hasDest := item["destination"]
		n, hasHop := item["nexthop"]
		if !hasDest || !hasHop {
			return nil, invalidFor(attr, "Invalid data format for hostroute: '%s'", shown(v))
		}
		var route trustack.HostRoute
		if route.Destination, err = parseCIDR(attr, d); err != nil {
			return nil, err
		}
		if route.NextHop, err = parseAddr(attr, n); err != nil {
			return nil, err
		}
		out = append(out, route)
	}
	return out, nil
}

// parseProject returns the project a create names, in project_id or
// tenant_id; naming two is a 400.
func parseProject(attr string, v json.RawMessage, have string) (string, error) {
	p, err := parseString(attr, v, 255)
	if err == nil && have != "" && have != p {
		err = badRequest("'project_id' and 'tenant_id' do not match")
	}
	return p, err
}

// ownedFields are the attributes every resource has: tenant_id and
// project_id, the owner of a new resource, which only an administrator
// may name for another project, and those no request sets.
func ownedFields[S any](owner func(*S) *string) []field[S] {
	f := func(name string) field[S] {
		return field[S]{name: name, post: true, set: func(s *S, v json.RawMessage) (err error) {
			*owner(s), err = parseProject(name, v, *owner(s))
			return err
		}}
	}
	return append([]field[S]{f("tenant_id"), f("project_id")}, readOnly[S]("id", "created_at", "updated_at", "revision_number")...)
}

// readOnly are attributes that no request sets: setting one is the 400
// of an attribute that the operation does not take, as Neutron's.
func readOnly[S any](names ...string) []field[S] {
	out := make([]field[S], len(names))
	for i, n := range names {
		out[i] = field[S]{name: n}
	}
	return out
}

// Limits of Neutron's string attributes.
const (
	maxName = 255
	maxID   = 255
)

// str is a string attribute of at most max bytes, set to *dst(s).
func str[S any](name string, max int, dst func(*S) **string) field[S] {
	return field[S]{name: name, post: true, put: true, set: func(s *S, v json.RawMessage) error {
		str, err := parseString(name, v, max)
		*dst(s) = &str
		return err
	}}
}

// boolean is a boolean attribute, set to *dst(s).
func boolean[S any](name string, dst func(*S) **bool) field[S] {
	return field[S]{name: name, post: true, put: true, set: func(s *S, v json.RawMessage) error {
		b, err := parseBool(v)
		*dst(s) = &b
		return err
	}}
}

// tags are the tags a create may set, as the tag-creation extension.
func tags[S any](dst func(*S) **[]string) field[S] {
	return field[S]{name: "tags", post: true, set: func(s *S, v json.RawMessage) error {
		t, err := parseStrings("tags", v)
		*dst(s) = &t
		return err
	}}
}

// described are the name and description of a resource, and the tags
// it may be made with.
func described[S any](name func(*S) **string, description func(*S) **string, t func(*S) **[]string) []field[S] {
	return []field[S]{str("name", maxName, name), str("description", maxName, description), tags(t)}
}
