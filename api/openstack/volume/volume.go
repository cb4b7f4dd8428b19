// Package volume serves Cinder's v3 API over trustack's block storage
// service, as python-openstackclient, cinderclient, openstacksdk,
// gophercloud and Tempest speak it: version discovery and microversions
// (3.0 to the maximum in versions, each change honoured where it touches what trustack
// serves), volumes with their metadata, actions and summary, snapshots,
// attachments (Cinder's actions, and the attachments API), user
// messages, volume types with their extra specs, quota sets, limits,
// availability zones, the volume services and the controller's log
// level, resource filters; and trustack's own os-trustack-image-copy,
// the progress of a volume made from an image. Paths may name the
// caller's project after the version (/v3/{project_id}/volumes, as
// catalogs do) or not. Bodies follow the schemas Tempest checks; every
// operation asks the policy engine with Cinder's rule names and defaults;
// errors are Cinder's bodies ({"itemNotFound": {"code", "message"}}),
// quota errors 413.
package volume

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/api/openstack"
	"github.com/trustack/trustack/policy"
	"github.com/trustack/trustack/volume"
)

// Prefix is where the volume API is mounted; its catalog URL is
// Prefix + "/v3/$(project_id)s".
const Prefix = "/volume"

// v3 is the prefix of the API's one version.
const v3 = Prefix + "/v3"

// versions are the microversions trustack implements: each change Cinder
// made up to the maximum is honoured on every API trustack serves (the
// APIs it does not serve, such as backups, groups and transfers, answer
// 404 at every version).
var versions = openstack.VersionRange{Min: openstack.Microversion{Major: 3, Minor: 0}, Max: openstack.Microversion{Major: 3, Minor: 44}}

// Config is what the volume API needs to know of its deployment.
type Config struct {
	// PublicURL is the cloud's public base URL ("http://host:port"), for
	// links; "" for the address each request was sent to.
	PublicURL string
	// AuthURL is the identity endpoint, advertised on 401 responses.
	AuthURL string
	// MaxBodySize bounds request bodies, in bytes.
	MaxBodySize int64
	// LogLevel is the level of the process's log, which administrators
	// read and change with Cinder's get-log and set-log; nil if they
	// cannot (both then answer 501).
	LogLevel *slog.LevelVar
	// Hostname is the host the API runs on, as get-log names it.
	Hostname string
}

// handler serves the volume API.
type handler struct {
	api  *openstack.API
	svc  *volume.Service
	dec  openstack.Decoder
	cfg  Config
	root openstack.VersionRoot
}

// New returns the volume API's handler, to mount at Prefix. Its policy
// rules are Policy's, with an operator's volume policy file on top.
func New(svc *volume.Service, v openstack.Validator, enforcer *policy.Enforcer, cfg Config, log *slog.Logger) http.Handler {
	api := openstack.NewAPI(openstack.FaultBody, v, enforcer, cfg.AuthURL, log)
	api.SetStatus(cinderStatus)
	h := &handler{api: api, svc: svc, dec: openstack.Decoder{MaxBodySize: cfg.MaxBodySize}, cfg: cfg,
		root: openstack.VersionRoot{Prefixes: []string{v3 + "/"}, IsCollection: func(s string) bool { return collections[s] }}}
	h.routes()
	return http.HandlerFunc(h.serve)
}

// collections are the first path segments of the API; anything else in
// that place is a project ID.
var collections = map[string]bool{
	"volumes": true, "snapshots": true, "types": true, "os-quota-sets": true, "limits": true, "os-availability-zone": true, "os-services": true, "messages": true,
	"attachments": true, "resource_filters": true,
}

// cinderStatus is Cinder's status where it is not the shared table's:
// quota errors are 413 (overLimit).
func cinderStatus(err error) int {
	if trustack.ErrorCode(err) == trustack.EOVERQUOTA {
		return http.StatusRequestEntityTooLarge
	}
	return 0
}

func (h *handler) routes() {
	a := h.api
	a.Public("GET "+Prefix, h.versions(http.StatusMultipleChoices))
	a.Public("GET "+Prefix+"/{$}", h.versions(http.StatusMultipleChoices))
	a.Public("GET "+v3, h.versions(http.StatusOK))
	a.Public("GET "+v3+"/{$}", h.versions(http.StatusOK))
	h.volumeRoutes()
	h.snapshotRoutes()
	h.typeRoutes()
	h.quotaRoutes()
	h.serviceRoutes()
	h.messageRoutes()
	h.attachmentRoutes()
}

// versionDocuments are the paths of version discovery.
var versionDocuments = map[string]bool{Prefix: true, v3: true}

// serve checks the requested microversion and echoes it, takes a project
// ID out of the path, then routes.
func (h *handler) serve(w http.ResponseWriter, r *http.Request) {
	if versionDocuments[strings.TrimSuffix(r.URL.Path, "/")] {
		// Clients discover the versions asking for theirs, before they
		// know what the server has.
		h.api.ServeHTTP(w, r)
		return
	}
	v, err := versions.Negotiate(openstack.RequestedVersion(r, "volume", ""))
	if err != nil {
		h.api.Error(w, r, err)
		return
	}
	hd := w.Header()
	hd.Set("OpenStack-API-Version", "volume "+v.String())
	hd.Add("Vary", "OpenStack-API-Version")
	r = r.WithContext(volume.WithRequestID(openstack.WithMicroversion(r.Context(), v), openstack.RequestID(r.Context())))
	h.api.ServeHTTP(w, h.root.CutProject(r))
}

// atLeast reports whether a request asked for microversion 3.minor or a
// later one.
func atLeast(r *http.Request, minor int) bool {
	return !openstack.MicroversionOf(r).Less(openstack.Microversion{Major: 3, Minor: minor})
}

// versions answers version discovery with Cinder's one version: 300 at
// the root, 200 at /v3.
func (h *handler) versions(status int) openstack.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		openstack.JSON(w, status, object{"versions": []object{{
			"id": "v3.0", "status": "CURRENT", "version": versions.Max.String(), "min_version": versions.Min.String(),
			"updated": "2023-08-31T00:00:00Z",
			"links": []object{
				{"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"},
				{"rel": "self", "href": h.baseURL(r) + v3 + "/"},
			},
			"media-types": []object{{"base": "application/json", "type": "application/vnd.openstack.volume+json;version=3"}},
		}}})
		return nil
	}
}

// object is a JSON object in a request or response.
type object = map[string]any

// Cinder's time format: microseconds, no zone (UTC).
const isoMicros = "2006-01-02T15:04:05.000000"

func stamp(t time.Time) string { return t.UTC().Format(isoMicros) }

// stampOrNull is stamp, null for the zero time.
func stampOrNull(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return stamp(t)
}

// nullIfEmpty is s, or null for "".
func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// reply writes v as JSON with status.
func reply(w http.ResponseWriter, status int, v any) error {
	openstack.JSON(w, status, v)
	return nil
}

// accepted answers 202 with no body.
func accepted(w http.ResponseWriter) error {
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// baseURL is the scheme and host of links.
func (h *handler) baseURL(r *http.Request) string {
	if h.cfg.PublicURL != "" {
		return strings.TrimSuffix(h.cfg.PublicURL, "/")
	}
	return openstack.BaseURL(r)
}

// caller returns who asks, for the block storage service; it checks that
// a project named in the URL is the token's.
func (h *handler) caller(r *http.Request) (volume.Caller, error) {
	c := volume.Caller{UserID: openstack.TokenOf(r).User.ID, ProjectID: h.projectOf(r), Admin: h.api.Allowed(r, "context_is_admin", policy.Target{})}
	return c, openstack.CheckURLProject(r, c.ProjectID)
}

// projectOf is the project of the request's token, "" for none.
func (h *handler) projectOf(r *http.Request) string {
	if p := openstack.TokenOf(r).Project; p != nil {
		return p.ID
	}
	return ""
}

// authorize checks rule against a project's thing.
func (h *handler) authorize(r *http.Request, rule, project string) error {
	return h.api.Authorize(r, rule, policy.Target{"project_id": project})
}

// decode reads a request body of the form {key: {...}} into v.
func (h *handler) decode(r *http.Request, key string, v any) error {
	body, err := h.dec.Body(r)
	if err != nil {
		return err
	}
	var outer map[string]json.RawMessage
	if err := openstack.Unmarshal(body, &outer); err != nil {
		return err
	}
	inner, ok := outer[key]
	if !ok {
		return trustack.Errorf(trustack.EINVALID, "Missing required element '%s' in request body.", key)
	}
	if string(inner) == "null" {
		return trustack.Errorf(trustack.EINVALID, "Invalid input for field '%s': it must be an object.", key)
	}
	return openstack.UnmarshalField(inner, key, v)
}

// wholeNumber reads an integer a body gives as a number or as a string
// of one, as Cinder takes them: EINVALID naming field otherwise, or if
// it is below min.
func wholeNumber(raw json.RawMessage, field string, min int) (int, error) {
	text := strings.Trim(string(raw), `"`)
	n, err := strconv.Atoi(text)
	if err != nil || n < min {
		return 0, trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Invalid input received: %s must be an integer of at least %d, not %s.", field, min, raw)
	}
	return n, nil
}
