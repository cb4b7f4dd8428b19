// Package image serves Glance's v2 API over trustack's image service, as
// python-glanceclient, openstacksdk, gophercloud and Tempest speak it:
// version discovery, the JSON schemas glanceclient builds its commands
// from, images with JSON-patch updates, streamed uploads and downloads,
// tags, members and (de)activation. Every operation asks the policy
// engine, with Glance's rule names and default rules. The catalog URL is
// unversioned (http://host:port/image); clients append /v2/...
package image

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/api/openstack"
	"github.com/trustack/trustack/images"
	"github.com/trustack/trustack/policy"
)

// Prefix is where the image API is mounted.
const Prefix = "/image"

// Config is what the image API needs to know of its deployment.
type Config struct {
	// PublicURL is the cloud's public base URL ("http://host:5000"), for
	// links in responses.
	PublicURL string
	// AuthURL is the identity endpoint, advertised on 401 responses.
	AuthURL string
	// MaxBodySize bounds JSON request bodies, in bytes; image data is not
	// bounded by it.
	MaxBodySize int64
}

// handler serves the image API.
type handler struct {
	api  *openstack.API
	svc  *images.Service
	dec  openstack.Decoder
	base string // PublicURL + Prefix
}

// New returns the image API's handler, to mount at Prefix.
func New(svc *images.Service, v openstack.Validator, enforcer *policy.Enforcer, cfg Config, log *slog.Logger) http.Handler {
	h := &handler{
		api:  openstack.NewAPI(openstack.TitledError, v, enforcer, cfg.AuthURL, log),
		svc:  svc,
		dec:  openstack.Decoder{MaxBodySize: cfg.MaxBodySize},
		base: cfg.PublicURL + Prefix,
	}
	h.routes()
	return h.api
}

func (h *handler) routes() {
	a := h.api
	v2 := Prefix + "/v2"
	a.Public("GET "+Prefix, h.versions(http.StatusMultipleChoices))
	a.Public("GET "+Prefix+"/{$}", h.versions(http.StatusMultipleChoices))
	a.Public("GET "+Prefix+"/versions", h.versions(http.StatusOK))

	a.Private("GET "+v2+"/schemas/image", h.schema(imageSchema))
	a.Private("GET "+v2+"/schemas/images", h.schema(imagesSchema))
	a.Private("GET "+v2+"/schemas/member", h.schema(memberSchema))
	a.Private("GET "+v2+"/schemas/members", h.schema(membersSchema))

	a.Private("GET "+v2+"/images", h.listImages)
	a.Private("POST "+v2+"/images", h.createImage)
	a.Private("GET "+v2+"/images/{image_id}", h.showImage)
	a.Private("PATCH "+v2+"/images/{image_id}", h.updateImage)
	a.Private("DELETE "+v2+"/images/{image_id}", h.deleteImage)
	a.Private("PUT "+v2+"/images/{image_id}/file", h.upload)
	a.Private("GET "+v2+"/images/{image_id}/file", h.download)
	a.Private("PUT "+v2+"/images/{image_id}/tags/{tag}", h.addTag)
	a.Private("DELETE "+v2+"/images/{image_id}/tags/{tag}", h.deleteTag)
	a.Private("POST "+v2+"/images/{image_id}/actions/deactivate", h.action("deactivate", h.svc.Deactivate))
	a.Private("POST "+v2+"/images/{image_id}/actions/reactivate", h.action("reactivate", h.svc.Reactivate))

	a.Private("GET "+v2+"/images/{image_id}/members", h.listMembers)
	a.Private("POST "+v2+"/images/{image_id}/members", h.addMember)
	a.Private("GET "+v2+"/images/{image_id}/members/{member_id}", h.showMember)
	a.Private("PUT "+v2+"/images/{image_id}/members/{member_id}", h.updateMember)
	a.Private("DELETE "+v2+"/images/{image_id}/members/{member_id}", h.deleteMember)
}

// versionIDs are the API versions advertised, newest first: up to 2.7,
// which brought hidden images and os_hash_*; the import (2.6), multiple
// store and task APIs of later versions are not served.
var versionIDs = []string{"v2.7", "v2.6", "v2.5", "v2.4", "v2.3", "v2.2", "v2.1", "v2.0"}

// versions answers version discovery: 300 at the root, as Glance, and
// 200 at /versions.
func (h *handler) versions(status int) openstack.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		list := make([]any, len(versionIDs))
		for i, id := range versionIDs {
			s := "SUPPORTED"
			if i == 0 {
				s = "CURRENT"
			}
			list[i] = object{"id": id, "status": s, "links": []any{object{"rel": "self", "href": h.base + "/v2/"}}}
		}
		openstack.JSON(w, status, object{"versions": list})
		return nil
	}
}

func (h *handler) schema(s func() object) openstack.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		openstack.JSON(w, http.StatusOK, s())
		return nil
	}
}

// caller returns who asks, for the image service.
func (h *handler) caller(r *http.Request) images.Caller {
	c := images.Caller{Admin: h.api.Allowed(r, "context_is_admin", policy.Target{})}
	if p := openstack.TokenOf(r).Project; p != nil {
		c.ProjectID = p.ID
	}
	return c
}

// target describes an image to the policy, as Glance's ImageTarget: its
// properties and attributes, with project_id for its owner, and member_id
// for the member concerned ("" for none).
func target(img *trustack.Image, memberID string) policy.Target {
	t := policy.Target{}
	for k, v := range img.Properties {
		t[k] = v
	}
	t["id"], t["name"], t["status"] = img.ID, img.Name, img.Status
	t["owner"], t["project_id"], t["visibility"] = img.Owner, img.Owner, img.Visibility
	t["protected"] = boolString(img.Protected)
	if memberID != "" {
		t["member_id"] = memberID
	}
	return t
}

func boolString(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

// callerMembership returns the caller's project if it is a member of the
// shared image, for member_id in policy targets.
func (h *handler) callerMembership(r *http.Request, c images.Caller, img *trustack.Image) (string, error) {
	if img.Visibility != trustack.VisibilityShared || img.Owner == c.ProjectID || c.ProjectID == "" {
		return "", nil
	}
	ok, err := h.svc.IsMember(r.Context(), c, img.ID)
	if !ok || err != nil {
		return "", err
	}
	return c.ProjectID, nil
}

// image returns the image of the request's path that the caller may see,
// after asking the policy for rule: as in Glance, a refusal of a caller
// who may not even get the image is a 404, so that nothing leaks.
func (h *handler) image(r *http.Request, c images.Caller, rule string) (*trustack.Image, error) {
	id := r.PathValue("image_id")
	img, err := h.svc.Image(r.Context(), c, id)
	if err != nil {
		return nil, err
	}
	member, err := h.callerMembership(r, c, img)
	if err != nil {
		return nil, err
	}
	return img, h.authorize(r, rule, img, member)
}

func (h *handler) authorize(r *http.Request, rule string, img *trustack.Image, member string) error {
	t := target(img, member)
	err := h.api.Authorize(r, rule, t)
	if err != nil && trustack.ErrorCode(err) == trustack.EFORBIDDEN && (rule == "get_image" || !h.api.Allowed(r, "get_image", t)) {
		return trustack.Errorf(trustack.ENOTFOUND, "No image found with ID %s.", img.ID)
	}
	return err
}

// limitError turns the image service's limit errors into 413s.
func limitError(err error) error {
	if errors.Is(err, images.ErrLimitExceeded) {
		return &openstack.HTTPError{Status: http.StatusRequestEntityTooLarge, Message: trustack.ErrorMessage(err)}
	}
	return err
}

func noContent(w http.ResponseWriter, err error) error {
	if err != nil {
		return limitError(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *handler) action(rule string, do func(ctx context.Context, c images.Caller, id string) error) openstack.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		c := h.caller(r)
		img, err := h.image(r, c, rule)
		if err != nil {
			return err
		}
		return noContent(w, do(r.Context(), c, img.ID))
	}
}
