package openstack

import (
	"context"
	"net/http"
	"strings"

	"github.com/trustack/trustack"
)

// VersionRoot is where an API's version begins in paths: a prefix such as
// "/compute/v2.1/", after which paths may name a project first (older
// catalogs put the project in the URL: /v2.1/{project_id}/servers).
type VersionRoot struct {
	Prefixes []string
	// IsCollection says whether a first segment after a prefix is one of
	// the API's own; any other is a project ID.
	IsCollection func(segment string) bool
}

type urlProjectKey struct{}

// CutProject returns r with a project ID taken out of its path after a
// prefix, the project remembered for CheckURLProject, or r itself if its
// path names none.
func (v VersionRoot) CutProject(r *http.Request) *http.Request {
	for _, prefix := range v.Prefixes {
		after, found := strings.CutPrefix(r.URL.Path, prefix)
		if !found {
			continue
		}
		first, tail, _ := strings.Cut(after, "/")
		if first == "" || v.IsCollection(first) {
			return r
		}
		r = r.Clone(context.WithValue(r.Context(), urlProjectKey{}, first))
		r.URL.Path, r.URL.RawPath = prefix+tail, ""
		return r
	}
	return r
}

// Collection returns the first segment of a path after a prefix, "" for
// none.
func (v VersionRoot) Collection(path string) string {
	for _, prefix := range v.Prefixes {
		if after, found := strings.CutPrefix(path, prefix); found {
			first, _, _ := strings.Cut(after, "/")
			return first
		}
	}
	return ""
}

// CheckURLProject returns EINVALID if the request's path named a project
// other than projectID, the caller's.
func CheckURLProject(r *http.Request, projectID string) error {
	if p, _ := r.Context().Value(urlProjectKey{}).(string); p != "" && p != projectID {
		return trustack.Errorf(trustack.EINVALID, "Malformed request URL: URL's project_id '%s' doesn't match Context's project_id '%s'", p, projectID)
	}
	return nil
}

// faultNames are the names Nova's and Cinder's error bodies give each
// status.
var faultNames = map[int]string{
	400: "badRequest", 401: "unauthorized", 403: "forbidden", 404: "itemNotFound", 405: "badMethod",
	409: "conflictingRequest", 413: "overLimit", 415: "badMediaType", 429: "overLimit", 501: "notImplemented", 503: "serviceUnavailable",
}

// FaultBody is Nova's and Cinder's error format: {"itemNotFound":
// {"code", "message"}}, computeFault for a status without a name.
func FaultBody(status int, message string) any {
	name, ok := faultNames[status]
	if !ok {
		name = "computeFault"
	}
	return map[string]any{name: map[string]any{"code": status, "message": message}}
}
