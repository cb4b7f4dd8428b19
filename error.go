package trustack

import (
	"errors"
	"fmt"
)

// Error codes. Every error that crosses a package boundary carries one of
// these; the HTTP layer maps them to statuses in one table and the message
// bus carries them as they are. Any other error is internal.
const (
	EINVALID      = "invalid"      // the request is malformed or breaks a rule
	ENOTFOUND     = "not_found"    // the thing does not exist, or is not visible to the caller
	ECONFLICT     = "conflict"     // the request clashes with the current state
	EUNAUTHORIZED = "unauthorized" // the caller could not be authenticated
	EFORBIDDEN    = "forbidden"    // the caller is known but may not do this
	EOVERQUOTA    = "over_quota"   // the request would exceed a quota or a capacity
	EUNAVAILABLE  = "unavailable"  // a dependency is down; retrying later may help
	EINTERNAL     = "internal"     // a bug or an unexpected failure; details are logged, not shown
)

// Error is an error the user may see: a code and a message written for a
// person. Wrap it with fmt.Errorf and %w to add context for the logs; the
// code and message survive the wrapping.
type Error struct {
	Code    string
	Message string
	// Reason names the error more finely than Code does, for the APIs
	// whose error bodies say it, as Neutron's type
	// ("IpAddressGenerationFailure"); "" for none. What the error means
	// to a caller is its Code's.
	Reason string
}

// Error returns the message, prefixed by the code for logs.
func (e *Error) Error() string {
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Reasonf returns an *Error with the given code, reason and formatted
// message.
func Reasonf(code, reason, format string, args ...any) *Error {
	return &Error{Code: code, Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// ErrorReason returns the reason of the *Error in err's chain, "" if it
// has none or err has no *Error.
func ErrorReason(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

// ErrorCode returns the code of the *Error in err's chain, "" for a nil
// error and EINTERNAL for any other error.
func ErrorCode(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Code
	default:
		return EINTERNAL
	}
}

// ErrorMessage returns the message of the *Error in err's chain, or a
// generic message for any other error, whose details are not for users.
func ErrorMessage(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Message
	default:
		return "An unexpected error prevented the server from fulfilling your request."
	}
}
