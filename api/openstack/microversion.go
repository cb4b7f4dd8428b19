package openstack

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/trustack/trustack"
)

// Microversion is an OpenStack API microversion, MAJOR.MINOR (Nova's 2.x,
// Cinder's 3.x). The zero value is 0.0, older than any version an API
// serves.
type Microversion struct{ Major, Minor int }

func (v Microversion) String() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

// Less reports whether v is older than o.
func (v Microversion) Less(o Microversion) bool {
	return v.Major < o.Major || v.Major == o.Major && v.Minor < o.Minor
}

// ParseMicroversion parses "MAJOR.MINOR"; anything else is EINVALID.
func ParseMicroversion(s string) (Microversion, error) {
	major, minor, ok := strings.Cut(s, ".")
	v := Microversion{}
	var errMajor, errMinor error
	v.Major, errMajor = strconv.Atoi(major)
	v.Minor, errMinor = strconv.Atoi(minor)
	if !ok || errMajor != nil || errMinor != nil || v.Major < 0 || v.Minor < 0 {
		return Microversion{}, trustack.Errorf(trustack.EINVALID,
			"API Version String %s is of invalid format. Must be of format MajorNum.MinorNum.", s)
	}
	return v, nil
}

// VersionRange is the microversions an API serves, Min to Max.
type VersionRange struct{ Min, Max Microversion }

// Negotiate returns the microversion a client asks for with s, the value
// of its version header: Min when s is "" (a client that names none),
// Max for "latest". A malformed version is EINVALID (400), one out of the
// range an HTTPError with 406, as every OpenStack API answers.
func (vr VersionRange) Negotiate(s string) (Microversion, error) {
	s = strings.TrimSpace(s)
	switch strings.ToLower(s) {
	case "":
		return vr.Min, nil
	case "latest":
		return vr.Max, nil
	}
	v, err := ParseMicroversion(s)
	if err != nil {
		return v, err
	}
	if v.Less(vr.Min) || vr.Max.Less(v) {
		return v, &HTTPError{Status: http.StatusNotAcceptable,
			Message: fmt.Sprintf("Version %s is not supported by the API. Minimum is %s and maximum is %s.", v, vr.Min, vr.Max)}
	}
	return v, nil
}

// RequestedVersion returns the version a request names for service in
// its OpenStack-API-Version headers ("OpenStack-API-Version: compute
// 2.19"), or else in its legacy header (X-OpenStack-Nova-API-Version,
// "" for an API without one); "" if it names none.
func RequestedVersion(r *http.Request, service, legacy string) string {
	for _, header := range r.Header.Values("OpenStack-API-Version") {
		name, version, _ := strings.Cut(strings.TrimSpace(header), " ")
		if strings.EqualFold(name, service) {
			return strings.TrimSpace(version)
		}
	}
	if legacy == "" {
		return ""
	}
	return strings.TrimSpace(r.Header.Get(legacy))
}

type microversionKey struct{}

// WithMicroversion returns a request context that holds the request's
// negotiated microversion, for MicroversionOf.
func WithMicroversion(ctx context.Context, v Microversion) context.Context {
	return context.WithValue(ctx, microversionKey{}, v)
}

// MicroversionOf returns the microversion negotiated for r, the zero
// Microversion if none was.
func MicroversionOf(r *http.Request) Microversion {
	v, _ := r.Context().Value(microversionKey{}).(Microversion)
	return v
}
