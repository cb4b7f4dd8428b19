package image

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/api/openstack"
	"github.com/trustack/trustack/images"
)

// Glance's timestamps: seconds and a Z.
const timeFormat = "2006-01-02T15:04:05Z"

func stamp(t time.Time) string { return t.UTC().Format(timeFormat) }

// nullable returns nil for "" so that it renders as null.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// imageView renders an image as Glance does: its properties, then its
// attributes. Size and digests are null until it has data.
func imageView(img *trustack.Image) object {
	o := make(object, len(img.Properties)+24)
	for k, v := range img.Properties {
		o[k] = v
	}
	var size, virtualSize any
	if img.HashValue != "" {
		size = img.Size
		if img.VirtualSize > 0 {
			virtualSize = img.VirtualSize
		}
	}
	tags := img.Tags
	if tags == nil {
		tags = []string{}
	}
	maps.Copy(o, object{
		"id": img.ID, "name": nullable(img.Name), "status": img.Status, "visibility": img.Visibility,
		"protected": img.Protected, "os_hidden": img.Hidden, "owner": nullable(img.Owner),
		"disk_format": nullable(img.DiskFormat), "container_format": nullable(img.ContainerFormat),
		"size": size, "virtual_size": virtualSize, "checksum": nullable(img.Checksum),
		"os_hash_algo": nullable(img.HashAlgo), "os_hash_value": nullable(img.HashValue),
		"min_ram": img.MinRAM, "min_disk": img.MinDisk, "tags": tags,
		"created_at": stamp(img.CreatedAt), "updated_at": stamp(img.UpdatedAt),
		"self": "/v2/images/" + img.ID, "file": "/v2/images/" + img.ID + "/file", "schema": "/v2/schemas/image",
	})
	return o
}

func memberView(m *trustack.ImageMember) object {
	return object{
		"image_id": m.ImageID, "member_id": m.MemberID, "status": m.Status,
		"created_at": stamp(m.CreatedAt), "updated_at": stamp(m.UpdatedAt), "schema": "/v2/schemas/member",
	}
}

func invalid(format string, args ...any) error {
	return trustack.Errorf(trustack.EINVALID, format, args...)
}

func readOnly(name string) error {
	return trustack.Errorf(trustack.EFORBIDDEN, "Attribute '%s' is read-only.", name)
}

func reservedAttr(name string) error {
	return trustack.Errorf(trustack.EFORBIDDEN, "Attribute '%s' is reserved.", name)
}

// value is a checked request value of an attribute or property.
type value struct {
	null bool
	s    string
	n    int64
	b    bool
	list []string
}

// jsonKind names the kind of a raw JSON value as JSON Schema does.
func jsonKind(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	case '[':
		return "array"
	case '{':
		return "object"
	}
	return "number"
}

// check decodes raw as the value of the schema attribute a, or of a
// property (a nil a: a string).
func check(name string, a *attribute, raw json.RawMessage) (value, error) {
	if a == nil {
		a = &attribute{typ: "string"}
	}
	kind := jsonKind(raw)
	wrongType := invalid("Invalid input for field '%s': %s is not of type '%s'.", name, kind, a.typ)
	var v value
	switch {
	case kind == "null":
		if !a.nullable {
			return v, wrongType
		}
		v.null = true
		return v, nil
	case a.typ == "string":
		if kind != "string" || json.Unmarshal(raw, &v.s) != nil {
			return v, wrongType
		}
		if a.maxLength > 0 && utf8.RuneCountInString(v.s) > a.maxLength {
			return v, invalid("Invalid input for field '%s': it is longer than %d characters.", name, a.maxLength)
		}
		if a.enum != nil && !slices.Contains(a.enum, v.s) {
			return v, invalid("Invalid input for field '%s': %q is not one of %s.", name, v.s, strings.Join(a.enum, ", "))
		}
		if a.pattern != nil && !a.pattern.MatchString(v.s) {
			return v, invalid("Invalid input for field '%s': %q does not match %s.", name, v.s, a.pattern)
		}
	case a.typ == "integer":
		var num json.Number
		if kind != "number" || json.Unmarshal(raw, &num) != nil {
			return v, wrongType
		}
		n, err := strconv.ParseInt(num.String(), 10, 64)
		if err != nil || n > math.MaxInt32 || n < math.MinInt32 {
			return v, invalid("Invalid input for field '%s': %s is not an integer of 32 bits.", name, num)
		}
		v.n = n
	case a.typ == "boolean":
		if kind != "boolean" || json.Unmarshal(raw, &v.b) != nil {
			return v, wrongType
		}
	case a.typ == "array":
		if kind != "array" || json.Unmarshal(raw, &v.list) != nil {
			return v, invalid("Invalid input for field '%s': expected an array of strings.", name)
		}
		for _, s := range v.list {
			if utf8.RuneCountInString(s) > a.maxLength {
				return v, invalid("Invalid input for field '%s': an item is longer than %d characters.", name, a.maxLength)
			}
		}
	}
	return v, nil
}

// set applies a checked value of a base attribute to img.
func set(img *trustack.Image, name string, v value) {
	switch name {
	case "id":
		img.ID = v.s
	case "name":
		img.Name = v.s
	case "visibility":
		img.Visibility = v.s
	case "protected":
		img.Protected = v.b
	case "os_hidden":
		img.Hidden = v.b
	case "owner":
		img.Owner = v.s
	case "container_format":
		img.ContainerFormat = v.s
	case "disk_format":
		img.DiskFormat = v.s
	case "tags":
		img.Tags = v.list
	case "min_ram":
		img.MinRAM = int(v.n)
	case "min_disk":
		img.MinDisk = int(v.n)
	}
}

// decodeCreate reads the body of POST /v2/images: an object of base
// attributes and string properties. Read-only and reserved attributes
// give 403, values that break the schema 400.
func decodeCreate(body []byte) (*trustack.Image, error) {
	var raw map[string]json.RawMessage
	if err := openstack.Unmarshal(body, &raw); err != nil {
		return nil, err
	}
	img := &trustack.Image{}
	for _, name := range slices.Sorted(maps.Keys(raw)) {
		a := attributeNamed(name)
		switch {
		case a != nil && a.readOnly:
			return nil, readOnly(name)
		case a == nil && images.IsReserved(name):
			return nil, reservedAttr(name)
		case a == nil && (name == "" || utf8.RuneCountInString(name) > 255):
			return nil, invalid("Custom property should not be greater than 255 characters.")
		}
		v, err := check(name, a, raw[name])
		if err != nil {
			return nil, err
		}
		switch {
		case a != nil && a.base:
			set(img, name, v)
		case !v.null:
			if img.Properties == nil {
				img.Properties = map[string]string{}
			}
			img.Properties[name] = v.s
		}
	}
	return img, nil
}

// patchTypes are the media types of image updates, with the JSON-patch
// draft each follows: Glance's v2.0 (draft 4 of JSON Schema's patches)
// and v2.1 (draft 10, RFC 6902's form).
var patchTypes = map[string]int{
	"application/openstack-images-v2.0-json-patch": 4,
	"application/openstack-images-v2.1-json-patch": 10,
}

// patchOp is one checked operation of an update.
type patchOp struct {
	op    string // add, remove or replace
	name  string // the attribute or property
	attr  *attribute
	value value
	draft int
}

// decodePatch reads an update: a JSON array of operations on one
// attribute or property each. A media type other than the two patch
// types gives 415, a read-only or reserved path 403, and anything
// malformed 400.
func decodePatch(contentType string, body []byte) ([]patchOp, error) {
	mt, _, _ := mime.ParseMediaType(contentType)
	draft, ok := patchTypes[mt]
	if !ok {
		return nil, &openstack.HTTPError{Status: http.StatusUnsupportedMediaType,
			Message: fmt.Sprintf("The request body must be one of %s, not %q.", acceptPatch, contentType)}
	}
	var raws []json.RawMessage
	if kind := jsonKind(body); kind != "array" && kind != "nothing" && json.Valid(body) {
		return nil, invalid("Request body must be a JSON array of operation objects.")
	}
	if err := openstack.Unmarshal(body, &raws); err != nil {
		return nil, err
	}
	ops := make([]patchOp, 0, len(raws))
	for _, raw := range raws {
		var change map[string]json.RawMessage
		if jsonKind(raw) != "object" || json.Unmarshal(raw, &change) != nil {
			return nil, invalid("Operations must be JSON objects.")
		}
		op, pointer, err := operation(change, draft)
		if err != nil {
			return nil, err
		}
		path, err := decodePointer(pointer)
		if err != nil {
			return nil, err
		}
		name := path[0]
		if name == "locations" {
			return nil, trustack.Errorf(trustack.EFORBIDDEN, "It's not allowed to update locations if locations are invisible.")
		}
		if len(path) != 1 {
			return nil, invalid("Invalid JSON pointer for this resource: '/%s'", strings.Join(path, "/"))
		}
		a := attributeNamed(name)
		switch {
		case a != nil && (a.readOnly || name == "id"):
			return nil, readOnly(name)
		case a == nil && images.IsReserved(name):
			return nil, reservedAttr(name)
		case a == nil && (name == "" || utf8.RuneCountInString(name) > 255):
			return nil, invalid("Custom property should not be greater than 255 characters.")
		}
		p := patchOp{op: op, name: name, attr: a, draft: draft}
		if op != "remove" {
			rawValue, ok := change["value"]
			if !ok {
				return nil, invalid("Operation %q requires a member named \"value\".", op)
			}
			if p.value, err = check(name, a, rawValue); err != nil {
				return nil, err
			}
		}
		ops = append(ops, p)
	}
	return ops, nil
}

const acceptPatch = "application/openstack-images-v2.0-json-patch, application/openstack-images-v2.1-json-patch"

// operation returns the operation and path of a change in its draft's
// form: {"op": "replace", "path": "/name"} or {"replace": "/name"}.
func operation(change map[string]json.RawMessage, draft int) (op, path string, err error) {
	ops := []string{"add", "remove", "replace"}
	str := func(raw json.RawMessage, what string) (string, error) {
		var s string
		if jsonKind(raw) != "string" || json.Unmarshal(raw, &s) != nil {
			return "", invalid("The %s of an operation must be a string.", what)
		}
		return s, nil
	}
	if draft == 4 {
		for _, o := range ops {
			if raw, ok := change[o]; ok {
				if op != "" {
					return "", "", invalid(`Operation objects must contain only one member named "add", "remove", or "replace".`)
				}
				op = o
				if path, err = str(raw, "path"); err != nil {
					return "", "", err
				}
			}
		}
		if op == "" {
			return "", "", invalid(`Operation objects must contain exactly one member named "add", "remove", or "replace".`)
		}
		return op, path, nil
	}
	rawOp, ok := change["op"]
	if !ok {
		return "", "", invalid("Unable to find `op` in JSON Schema change. It must be one of the following: add, remove, replace.")
	}
	if op, err = str(rawOp, "op"); err != nil {
		return "", "", err
	}
	if !slices.Contains(ops, op) {
		return "", "", invalid("Invalid operation: `%s`. It must be one of the following: add, remove, replace.", op)
	}
	rawPath, ok := change["path"]
	if !ok {
		return "", "", invalid("Unable to find 'path' in JSON Schema change")
	}
	path, err = str(rawPath, "path")
	return op, path, err
}

// decodePointer splits a JSON pointer into its tokens, in the limited
// form Glance accepts.
func decodePointer(pointer string) ([]string, error) {
	switch {
	case !strings.HasPrefix(pointer, "/"):
		return nil, invalid("Pointer `%s` does not start with \"/\".", pointer)
	case len(pointer) > 1 && strings.HasSuffix(pointer, "/"):
		return nil, invalid("Pointer `%s` end with \"/\".", pointer)
	}
	parts := strings.Split(pointer[1:], "/")
	for i, p := range parts {
		if strings.TrimSpace(p) == "" {
			if len(parts) == 1 {
				return nil, invalid("Pointer `%s` does not contain a valid token.", pointer)
			}
			return nil, invalid("Pointer `%s` contains adjacent \"/\".", pointer)
		}
		for j := 0; j < len(p); j++ {
			if p[j] == '~' && (j+1 == len(p) || p[j+1] != '0' && p[j+1] != '1') {
				return nil, invalid("Pointer `%s` contains \"~\" not part of a recognized escape sequence.", pointer)
			}
		}
		parts[i] = strings.TrimSpace(strings.NewReplacer("~1", "/", "~0", "~").Replace(p))
	}
	return parts, nil
}

// applyPatch applies checked operations to an image, as Glance does:
// base attributes are set by add and replace and cannot be removed;
// properties must exist to be replaced or removed, and (in draft 4) must
// not to be added.
func applyPatch(img *trustack.Image, ops []patchOp) error {
	for _, p := range ops {
		if p.attr != nil && p.attr.base {
			switch {
			case p.op == "remove":
				return trustack.Errorf(trustack.EFORBIDDEN, "Property %s may not be removed.", p.name)
			case p.op == "add" && p.draft == 4:
				return trustack.Errorf(trustack.ECONFLICT, "Property %s already present.", p.name)
			}
			set(img, p.name, p.value)
			continue
		}
		_, exists := img.Properties[p.name]
		switch {
		case p.op == "add" && exists && p.draft == 4:
			return trustack.Errorf(trustack.ECONFLICT, "Property %s already present.", p.name)
		case p.op != "add" && !exists:
			return trustack.Errorf(trustack.ECONFLICT, "Property %s does not exist.", p.name)
		case p.op == "remove" || p.value.null:
			delete(img.Properties, p.name)
		default:
			if img.Properties == nil {
				img.Properties = map[string]string{}
			}
			img.Properties[p.name] = p.value.s
		}
	}
	return nil
}
