package image

import (
	"regexp"

	"github.com/trustack/trustack"
)

// object is a JSON object in a response.
type object = map[string]any

// attribute is one property of Glance's image schema: what it looks like
// on the wire, for the schema document and for checking requests.
type attribute struct {
	name        string
	typ         string // "string", "integer", "boolean" or "array" (of strings)
	nullable    bool
	maxLength   int
	enum        []string
	pattern     *regexp.Regexp
	readOnly    bool
	base        bool // a base attribute rather than a property from schema-image.json
	description string
}

var uuidPattern = regexp.MustCompile(`^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$`)

// attributes are the properties of Glance's image schema: the base
// attributes (glance/api/v2/images.py) and the properties of its default
// schema-image.json, in the order of Glance's schema document.
var attributes = []attribute{
	{name: "id", typ: "string", pattern: uuidPattern, base: true, description: "An identifier for the image"},
	{name: "name", typ: "string", nullable: true, maxLength: 255, base: true, description: "Descriptive name for the image"},
	{name: "status", typ: "string", readOnly: true, base: true, description: "Status of the image",
		enum: []string{"queued", "saving", "active", "killed", "deleted", "uploading", "importing", "pending_delete", "deactivated"}},
	{name: "visibility", typ: "string", base: true, description: "Scope of image accessibility",
		enum: []string{trustack.VisibilityCommunity, trustack.VisibilityPublic, trustack.VisibilityPrivate, trustack.VisibilityShared}},
	{name: "protected", typ: "boolean", base: true, description: "If true, image will not be deletable."},
	{name: "os_hidden", typ: "boolean", base: true, description: "If true, image will not appear in default image list response."},
	{name: "checksum", typ: "string", nullable: true, maxLength: 32, readOnly: true, base: true, description: "md5 hash of image contents."},
	{name: "os_hash_algo", typ: "string", nullable: true, maxLength: 64, readOnly: true, base: true, description: "Algorithm to calculate the os_hash_value"},
	{name: "os_hash_value", typ: "string", nullable: true, maxLength: 128, readOnly: true, base: true,
		description: "Hexdigest of the image contents using the algorithm specified by the os_hash_algo"},
	{name: "owner", typ: "string", nullable: true, maxLength: 255, base: true, description: "Owner of the image"},
	{name: "size", typ: "integer", nullable: true, readOnly: true, base: true, description: "Size of image file in bytes"},
	{name: "virtual_size", typ: "integer", nullable: true, readOnly: true, base: true, description: "Virtual size of image in bytes"},
	{name: "container_format", typ: "string", nullable: true, enum: trustack.ContainerFormats, base: true, description: "Format of the container"},
	{name: "disk_format", typ: "string", nullable: true, enum: trustack.DiskFormats, base: true, description: "Format of the disk"},
	{name: "created_at", typ: "string", readOnly: true, base: true, description: "Date and time of image registration"},
	{name: "updated_at", typ: "string", readOnly: true, base: true, description: "Date and time of the last image modification"},
	{name: "tags", typ: "array", maxLength: 255, base: true, description: "List of strings related to the image"},
	{name: "direct_url", typ: "string", readOnly: true, base: true, description: "URL to access the image file kept in external store"},
	{name: "min_ram", typ: "integer", base: true, description: "Amount of ram (in MB) required to boot image."},
	{name: "min_disk", typ: "integer", base: true, description: "Amount of disk space (in GB) required to boot image."},
	{name: "self", typ: "string", readOnly: true, base: true, description: "An image self url"},
	{name: "file", typ: "string", readOnly: true, base: true, description: "An image file url"},
	{name: "stores", typ: "string", readOnly: true, base: true,
		description: "Store in which image data resides.  Only present when the operator has enabled multiple stores.  May be a comma-separated list of store identifiers."},
	{name: "schema", typ: "string", readOnly: true, base: true, description: "An image schema url"},
	{name: "kernel_id", typ: "string", nullable: true, pattern: uuidPattern,
		description: "ID of image stored in Glance that should be used as the kernel when booting an AMI-style image."},
	{name: "ramdisk_id", typ: "string", nullable: true, pattern: uuidPattern,
		description: "ID of image stored in Glance that should be used as the ramdisk when booting an AMI-style image."},
	{name: "instance_uuid", typ: "string",
		description: "Metadata which can be used to record which instance this image is associated with. (Informational only, does not create an instance snapshot.)"},
	{name: "architecture", typ: "string",
		description: "Operating system architecture as specified in https://docs.openstack.org/python-glanceclient/latest/cli/property-keys.html"},
	{name: "os_distro", typ: "string",
		description: "Common name of operating system distribution as specified in https://docs.openstack.org/python-glanceclient/latest/cli/property-keys.html"},
	{name: "os_version", typ: "string", description: "Operating system version as specified by the distributor."},
	{name: "description", typ: "string", description: "A human-readable string describing this image."},
}

// attributeNamed returns the schema's attribute of that name, or nil.
func attributeNamed(name string) *attribute {
	for i := range attributes {
		if attributes[i].name == name {
			return &attributes[i]
		}
	}
	return nil
}

// doc renders the attribute as a JSON schema property.
func (a *attribute) doc() object {
	o := object{"description": a.description}
	o["type"] = a.typ
	if a.nullable {
		o["type"] = []any{"null", a.typ}
	}
	if a.typ == "array" {
		o["items"] = object{"type": "string", "maxLength": a.maxLength}
	} else if a.maxLength > 0 {
		o["maxLength"] = a.maxLength
	}
	if a.enum != nil {
		enum := make([]any, 0, len(a.enum)+1)
		if a.nullable {
			enum = append(enum, nil)
		}
		for _, e := range a.enum {
			enum = append(enum, e)
		}
		o["enum"] = enum
	}
	if a.pattern != nil {
		o["pattern"] = a.pattern.String()
	}
	if a.readOnly {
		o["readOnly"] = true
	}
	if !a.base {
		o["is_base"] = false
	}
	return o
}

// imageSchema is Glance's image schema, a permissive one: properties
// beyond the listed ones are strings.
func imageSchema() object {
	props := object{}
	for i := range attributes {
		props[attributes[i].name] = attributes[i].doc()
	}
	props["locations"] = object{
		"type":        "array",
		"description": "A set of URLs to access the image file kept in external store",
		"items": object{
			"type":     "object",
			"required": []any{"url", "metadata"},
			"properties": object{
				"url":      object{"type": "string", "maxLength": 255},
				"metadata": object{"type": "object"},
				"validation_data": object{
					"description":          "Values to be used to populate the corresponding image properties. If the image status is not 'queued', values must exactly match those already contained in the image properties.",
					"type":                 "object",
					"writeOnly":            true,
					"additionalProperties": false,
					"properties": object{
						"checksum":      object{"type": "string", "minLength": 32, "maxLength": 32},
						"os_hash_algo":  object{"type": "string", "maxLength": 64},
						"os_hash_value": object{"type": "string", "maxLength": 128},
					},
					"required": []any{"os_hash_algo", "os_hash_value"},
				},
			},
		},
	}
	return object{
		"name":                 "image",
		"properties":           props,
		"additionalProperties": object{"type": "string"},
		"links": []any{
			object{"rel": "self", "href": "{self}"},
			object{"rel": "enclosure", "href": "{file}"},
			object{"rel": "describedby", "href": "{schema}"},
		},
	}
}

// collection is Glance's schema of a list of items.
func collection(name string, item object) object {
	return object{
		"name": name,
		"properties": object{
			name:     object{"type": "array", "items": item},
			"first":  object{"type": "string"},
			"next":   object{"type": "string"},
			"schema": object{"type": "string"},
		},
		"links": []any{
			object{"rel": "first", "href": "{first}"},
			object{"rel": "next", "href": "{next}"},
			object{"rel": "describedby", "href": "{schema}"},
		},
	}
}

func imagesSchema() object { return collection("images", imageSchema()) }

func memberSchema() object {
	return object{
		"name": "member",
		"properties": object{
			"member_id":  object{"type": "string", "description": "An identifier for the image member (tenantId)"},
			"image_id":   object{"type": "string", "description": "An identifier for the image", "pattern": uuidPattern.String()},
			"created_at": object{"type": "string", "description": "Date and time of image member creation"},
			"updated_at": object{"type": "string", "description": "Date and time of last modification of image member"},
			"status": object{"type": "string", "description": "The status of this image member",
				"enum": []any{trustack.MemberPending, trustack.MemberAccepted, trustack.MemberRejected}},
			"schema": object{"type": "string", "readOnly": true},
		},
		"additionalProperties": false,
	}
}

func membersSchema() object { return collection("members", memberSchema()) }
