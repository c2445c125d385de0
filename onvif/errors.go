package onvif

import (
	"errors"
	"fmt"
	"strings"
)

// Error categories that callers branch on. A *FaultError unwraps to one of
// them, so errors.Is(err, onvif.ErrUnauthorized) works whatever HTTP status
// the camera used.
var (
	// ErrUnauthorized: the camera refused our credentials (SOAP
	// ter:NotAuthorized, wsse:FailedAuthentication, or HTTP 401 after auth).
	ErrUnauthorized = errors.New("not authorised")
	// ErrNotSupported: the camera does not implement the operation or service
	// (ter:ActionNotSupported, "Optional Action Not Implemented", no Media2…).
	ErrNotSupported = errors.New("not supported")
	// ErrInvalidArgument: the camera refused an argument (ter:InvalidArgVal,
	// ter:InvalidArgs and their subcodes such as ter:NoToken).
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrDevice: any other SOAP fault.
	ErrDevice = errors.New("device fault")
	// ErrTooLarge: the reply exceeded the configured body limit.
	ErrTooLarge = errors.New("reply too large")
	// ErrMalformed: the reply was not a well-formed SOAP envelope we accept
	// (e.g. it carried a DOCTYPE, or the expected element was missing).
	ErrMalformed = errors.New("malformed reply")
)

// FaultError is a SOAP fault returned by a camera. Code is the top-level
// fault code (Sender/Receiver, local name); Subcodes are the nested subcode
// values, outermost first, as local names (e.g. ["ActionNotSupported"] or
// ["InvalidArgVal","NoToken"]). Reason is the camera's text, truncated.
type FaultError struct {
	Action     string
	Code       string
	Subcodes   []string
	Reason     string
	HTTPStatus int
}

func (e *FaultError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "SOAP fault %s", e.Code)
	for _, s := range e.Subcodes {
		b.WriteString("/")
		b.WriteString(s)
	}
	if e.Reason != "" {
		fmt.Fprintf(&b, ": %q", e.Reason)
	}
	return b.String()
}

// Is reports whether the fault has the given subcode (local name), so callers
// can test errors.Is(err, onvif.Subcode("PresetExist")).
func (e *FaultError) Is(target error) bool {
	if sc, ok := target.(subcodeError); ok {
		for _, s := range e.Subcodes {
			if strings.EqualFold(s, string(sc)) {
				return true
			}
		}
	}
	return false
}

// Unwrap returns the category of the fault.
func (e *FaultError) Unwrap() error { return e.category() }

func (e *FaultError) category() error {
	all := append([]string{e.Code}, e.Subcodes...)
	for _, s := range all {
		switch strings.ToLower(s) {
		case "notauthorized", "failedauthentication", "invalidsecurity", "invalidsecuritytoken",
			"failedcheck", "securitytokenunavailable", "messageexpired":
			return ErrUnauthorized
		}
	}
	for _, s := range all {
		switch strings.ToLower(s) {
		case "actionnotsupported", "notsupported", "optionalactionnotimplemented", "noimagingforsource",
			"nosuchservice", "actionnotimplemented":
			return ErrNotSupported
		}
	}
	for _, s := range all {
		switch strings.ToLower(s) {
		case "invalidargval", "invalidargs", "invalidargument", "invalidargvalue", "notoken", "noprofile",
			"noconfig", "invalidpolygon", "spacenotsupported", "invalidposition", "invalidpresetname",
			"invalidtranslation", "invalidspeed", "invalidvelocity":
			return ErrInvalidArgument
		}
	}
	// Some cameras put "Optional Action Not Implemented" only in the reason.
	if strings.Contains(strings.ToLower(e.Reason), "not implemented") {
		return ErrNotSupported
	}
	return ErrDevice
}

type subcodeError string

func (s subcodeError) Error() string { return "subcode " + string(s) }

// Subcode returns a target for errors.Is that matches a fault carrying the
// given subcode local name, e.g. errors.Is(err, onvif.Subcode("MaxMasks")).
func Subcode(name string) error { return subcodeError(name) }
