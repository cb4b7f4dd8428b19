package openstack

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/trustack/trustack"
)

// DefaultMaxBodySize is the largest JSON request body accepted, in bytes,
// as oslo.middleware's default.
const DefaultMaxBodySize = 114688

// Decoder decodes JSON request bodies.
type Decoder struct {
	// MaxBodySize bounds a body, in bytes; larger ones get 413.
	MaxBodySize int64
}

// Decode reads the request's JSON body into v. A body that is too large
// gives 413; one that is not JSON gives 415; malformed JSON, a value of
// the wrong type, or trailing data gives EINVALID saying where.
func (d Decoder) Decode(r *http.Request, v any) error {
	body, err := d.Body(r)
	if err != nil {
		return err
	}
	return Unmarshal(body, v)
}

// Body reads the request's JSON body whole, with the checks of Decode on
// its media type and size, for callers that decode it more than once.
func (d Decoder) Body(r *http.Request) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" && !strings.HasSuffix(mt, "+json") {
			return nil, &HTTPError{Status: http.StatusUnsupportedMediaType, Message: fmt.Sprintf("The request body must be application/json, not %q.", ct)}
		}
	}
	limit := d.MaxBodySize
	if limit <= 0 {
		limit = DefaultMaxBodySize
	}
	if r.ContentLength > limit {
		return nil, tooLarge(limit)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, trustack.Errorf(trustack.EINVALID, "The request body could not be read: %v.", err)
	}
	if int64(len(body)) > limit {
		return nil, tooLarge(limit)
	}
	return body, nil
}

func tooLarge(limit int64) error {
	return &HTTPError{Status: http.StatusRequestEntityTooLarge, Message: fmt.Sprintf("Request is too large: the body may have at most %d bytes.", limit)}
}

// Unmarshal decodes one JSON value from body into v, with the messages of
// Decode.
func Unmarshal(body []byte, v any) error {
	return UnmarshalField(body, "", v)
}

// UnmarshalField is Unmarshal for the value of a field taken out of a
// larger body: error messages name fields from there ("user.enabled").
func UnmarshalField(body []byte, field string, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return trustack.Errorf(trustack.EINVALID, "The request body is empty; a JSON object is required.")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return decodeError(err, field)
	}
	if dec.More() {
		return trustack.Errorf(trustack.EINVALID, "Malformed request body: unexpected data after the JSON value.")
	}
	return nil
}

func decodeError(err error, prefix string) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return trustack.Errorf(trustack.EINVALID, "Malformed request body: %v (at byte %d).", syntax, syntax.Offset)
	case errors.As(err, &typ):
		field := strings.Trim(prefix+"."+typ.Field, ".")
		if field == "" {
			return trustack.Errorf(trustack.EINVALID, "Malformed request body: expected %s, got %s.", jsonType(typ.Type.Kind().String()), typ.Value)
		}
		return trustack.Errorf(trustack.EINVALID, "Invalid input for field '%s': expected %s, got %s.", field, jsonType(typ.Type.Kind().String()), typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return trustack.Errorf(trustack.EINVALID, "Malformed request body: the JSON ends too soon.")
	default:
		return trustack.Errorf(trustack.EINVALID, "Malformed request body: %v.", err)
	}
}

// jsonType names a Go kind as JSON calls it.
func jsonType(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "map", "struct":
		return "an object"
	case "slice", "array":
		return "an array"
	case "interface":
		return "a value"
	default:
		return "a number"
	}
}

// Optional is a JSON field that may be absent, null or a value: Set says
// whether the key was present, and Value is nil when it was null.
type Optional[T any] struct {
	Set   bool
	Value *T
}

// UnmarshalJSON records that the field was present.
func (o *Optional[T]) UnmarshalJSON(b []byte) error {
	o.Set = true
	if string(b) == "null" {
		o.Value = nil
		return nil
	}
	o.Value = new(T)
	return json.Unmarshal(b, o.Value)
}

// Apply stores a present, non-null value in dst. A null gives an error
// naming the field, since dst cannot be null.
func (o Optional[T]) Apply(dst *T, field string) error {
	if !o.Set {
		return nil
	}
	if o.Value == nil {
		return trustack.Errorf(trustack.EINVALID, "Invalid input for field '%s': it may not be null.", field)
	}
	*dst = *o.Value
	return nil
}

// ApplyNullable stores a present value in dst, and T's zero value for a
// null.
func (o Optional[T]) ApplyNullable(dst *T) {
	if !o.Set {
		return
	}
	var zero T
	if o.Value == nil {
		*dst = zero
	} else {
		*dst = *o.Value
	}
}
