// Package openstack holds what trustack's OpenStack front doors share: a
// router whose handlers return errors, the one table from error codes to
// HTTP statuses, strict JSON decoding with messages that name the field at
// fault, token authentication, and the middleware that gives every request
// an ID, an access-log line and protection from panics. Each service
// (identity, compute, image, ...) is an API in a package of its own that
// chooses its error body format.
package openstack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/policy"
)

// statuses is the one mapping from error codes to HTTP statuses.
var statuses = map[string]int{
	trustack.EINVALID:      http.StatusBadRequest,
	trustack.EUNAUTHORIZED: http.StatusUnauthorized,
	trustack.EFORBIDDEN:    http.StatusForbidden,
	trustack.ENOTFOUND:     http.StatusNotFound,
	trustack.ECONFLICT:     http.StatusConflict,
	trustack.EOVERQUOTA:    http.StatusForbidden, // as Nova: quota errors are 403
	trustack.EUNAVAILABLE:  http.StatusServiceUnavailable,
	trustack.EINTERNAL:     http.StatusInternalServerError,
}

// HTTPError is an error of the HTTP layer itself, with its status: a body
// too large, a media type not supported, a method not allowed.
type HTTPError struct {
	Status  int
	Message string
}

func (e *HTTPError) Error() string { return e.Message }

// StatusOf returns the HTTP status and user-facing message for err.
func StatusOf(err error) (int, string) {
	var h *HTTPError
	if errors.As(err, &h) {
		return h.Status, h.Message
	}
	return statuses[trustack.ErrorCode(err)], trustack.ErrorMessage(err)
}

// ErrorFormat renders an error body in a service's format.
type ErrorFormat func(status int, message string) any

// ReasonFormat renders an error body that also names the error's reason
// (trustack.ErrorReason; "" for an error that has none), as Neutron's
// bodies name its exception types.
type ReasonFormat func(status int, reason, message string) any

// TitledError is Keystone's error format, the code, title and message
// under "error", which glanceclient and openstacksdk read from Glance too.
func TitledError(status int, message string) any {
	return map[string]any{"error": map[string]any{
		"code":    status,
		"title":   http.StatusText(status),
		"message": message,
	}}
}

// Handler serves a request, or returns an error for the API to render.
// It must not have written anything when it returns an error.
type Handler func(w http.ResponseWriter, r *http.Request) error

// Validator validates tokens; identity.Service is one.
type Validator interface {
	Validate(ctx context.Context, token string) (*trustack.Token, error)
}

// API is one service's front door: its routes, error format, token
// validation and policy.
type API struct {
	mux       *http.ServeMux
	format    ReasonFormat
	status    func(err error) int // nil, or 0 for the table's status
	validator Validator
	policy    *policy.Enforcer
	// authURL is advertised in WWW-Authenticate on 401 responses.
	authURL string
	log     *slog.Logger
}

// NewAPI returns an API with no routes.
func NewAPI(format ErrorFormat, v Validator, p *policy.Enforcer, authURL string, log *slog.Logger) *API {
	reasonless := func(status int, _, message string) any { return format(status, message) }
	return &API{mux: http.NewServeMux(), format: reasonless, validator: v, policy: p, authURL: authURL, log: log}
}

// SetReasonFormat has the API render error bodies with f instead of its
// ErrorFormat. Call it before the API serves.
func (a *API) SetReasonFormat(f ReasonFormat) { a.format = f }

// SetStatus has the API answer an error with status(err) where that is
// not 0, and with the shared table's status elsewhere, for a service
// whose clients expect otherwise: Neutron answers quota errors with 409
// where Nova answers 403. Call it before the API serves.
func (a *API) SetStatus(status func(err error) int) { a.status = status }

// Public routes a pattern ("GET /identity/v3") to h without
// authentication.
func (a *API) Public(pattern string, h Handler) {
	a.mux.Handle(pattern, a.serve(h))
}

// Private routes a pattern to h for requests with a valid X-Auth-Token;
// h finds the token with TokenOf.
func (a *API) Private(pattern string, h Handler) {
	a.mux.Handle(pattern, a.serve(func(w http.ResponseWriter, r *http.Request) error {
		header := r.Header.Get("X-Auth-Token")
		if header == "" {
			return trustack.Errorf(trustack.EUNAUTHORIZED, "The request you have made requires authentication.")
		}
		tok, err := a.validator.Validate(r.Context(), header)
		if err != nil {
			return err
		}
		if rec, ok := w.(*recorder); ok {
			rec.userID = tok.User.ID
		}
		return h(w, r.WithContext(context.WithValue(r.Context(), tokenKey{}, tok)))
	}))
}

type tokenKey struct{}

// TokenOf returns the validated token of a request to a Private route.
func TokenOf(r *http.Request) *trustack.Token {
	tok, _ := r.Context().Value(tokenKey{}).(*trustack.Token)
	return tok
}

// Authorize asks the policy whether the request's caller may apply rule
// to target, and returns EFORBIDDEN if not.
func (a *API) Authorize(r *http.Request, rule string, target policy.Target) error {
	tok := TokenOf(r)
	if tok == nil {
		return fmt.Errorf("authorize %s: no token in the request", rule)
	}
	return a.policy.Authorize(rule, policy.CredentialsOf(tok), target)
}

// Allowed reports whether the policy lets the request's caller apply rule
// to target, for handlers that filter what they show.
func (a *API) Allowed(r *http.Request, rule string, target policy.Target) bool {
	tok := TokenOf(r)
	return tok != nil && a.policy.Allowed(rule, policy.CredentialsOf(tok), target)
}

func (a *API) serve(h Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			a.Error(w, r, err)
		}
	})
}

// Error writes err in the API's format. Internal errors are logged in full
// and shown as a generic message.
func (a *API) Error(w http.ResponseWriter, r *http.Request, err error) {
	status, message := StatusOf(err)
	if a.status != nil {
		if s := a.status(err); s != 0 {
			status = s
		}
	}
	if status == http.StatusInternalServerError {
		a.log.Error("internal error", "request_id", RequestID(r.Context()), "method", r.Method, "path", r.URL.Path, "error", err)
	}
	if status == http.StatusUnauthorized && a.authURL != "" {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf("Keystone uri=%q", a.authURL))
	}
	JSON(w, status, a.format(status, trustack.ErrorReason(err), message))
}

// ServeHTTP routes the request; a path or method with no route gets a 404
// or 405 in the API's format.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h, pattern := a.mux.Handler(r)
	if pattern != "" {
		a.mux.ServeHTTP(w, r) // which also sets the request's path values
		return
	}
	// The mux's own handler for this request writes a plain-text 404 or
	// 405; learn which, then answer in JSON.
	probe := &statusProbe{header: http.Header{}}
	h.ServeHTTP(probe, r)
	if allow := probe.header.Get("Allow"); allow != "" {
		w.Header().Set("Allow", allow)
	}
	switch probe.status {
	case http.StatusMethodNotAllowed:
		a.Error(w, r, &HTTPError{Status: http.StatusMethodNotAllowed, Message: fmt.Sprintf("The method %s is not allowed on %s.", r.Method, r.URL.Path)})
	default:
		a.Error(w, r, trustack.Errorf(trustack.ENOTFOUND, "The resource could not be found."))
	}
}

// statusProbe is a ResponseWriter that only remembers the status.
type statusProbe struct {
	header http.Header
	status int
}

func (p *statusProbe) Header() http.Header { return p.header }
func (p *statusProbe) Write(b []byte) (int, error) {
	if p.status == 0 {
		p.status = http.StatusOK
	}
	return len(b), nil
}
func (p *statusProbe) WriteHeader(status int) {
	if p.status == 0 {
		p.status = status
	}
}

// JSON writes v as a JSON response with the given status.
func JSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// BaseURL returns the scheme and host the request was addressed to, for
// links when no public URL is configured.
func BaseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// IsUUIDHex reports whether s looks like an ID trustack generates (32 hex
// digits, or a UUID with dashes). Handlers use it to answer 404 at once for
// names in ID positions, which the OpenStack clients then look up by name.
func IsUUIDHex(s string) bool {
	s = strings.ReplaceAll(s, "-", "")
	if len(s) != 32 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
