package cameramask

import (
	"time"

	"velo/onvif"
)

// CheckInterval is how often the agent reads a camera's masks back.
const CheckInterval = 10 * time.Minute

// Actions Sync reports for a pushed mask.
const (
	ActionCreated   = "created"
	ActionUpdated   = "updated"
	ActionUnchanged = "unchanged"
)

// Report is what Sync or Check found on one camera.
type Report struct {
	Camera  string `json:"camera"`
	Profile string `json:"profile"`
	// Source is the video source configuration the masks belong to.
	Source string `json:"source,omitempty"`
	// CameraUnsupported says why camera-side masks are not used on this
	// camera at all (no Media2 masks; a camera with presets); empty when
	// they are. The lists below are then empty.
	CameraUnsupported string `json:"camera_unsupported,omitempty"`
	// Options are the camera's mask abilities.
	Options *onvif.MaskOptions `json:"options,omitempty"`
	// Pushed are the view's masks the camera holds as expected (Action is
	// set by Sync, empty after Check).
	Pushed []Pushed `json:"pushed,omitempty"`
	// Unsupported are the view's masks the camera cannot take or refused;
	// they are not on the camera and are not reported as missing.
	Unsupported []Unsupported `json:"unsupported,omitempty"`
	// Removed are masks that were not the view's and that Sync deleted.
	Removed []onvif.Mask `json:"removed,omitempty"`
	// Missing are expected masks the camera does not hold.
	Missing []Expected `json:"missing,omitempty"`
	// Changed are camera masks standing where an expected one should, but
	// different from it.
	Changed []Changed `json:"changed,omitempty"`
	// Extra are camera masks that are not the view's.
	Extra []onvif.Mask `json:"extra,omitempty"`
}

// Drift reports whether the camera's masks differ from the view's
// (missing, changed or extra masks).
func (r Report) Drift() bool { return len(r.Missing)+len(r.Changed)+len(r.Extra) > 0 }

// Expected is one of the view's masks as the camera should hold it.
type Expected struct {
	// Name is the mask's name in the configuration, or "#n" (1-based).
	Name string `json:"name"`
	// Mask is the polygon (ONVIF coordinates), type, colour and state
	// pushed; its Token is empty.
	Mask onvif.Mask `json:"mask"`
	// Note says how it was adapted to the camera (style, colour); empty
	// when it is the view's mask as configured.
	Note string `json:"note,omitempty"`

	index int // position in the view's masks
}

// Pushed is an expected mask the camera holds under Token.
type Pushed struct {
	Expected
	Token string `json:"token"`
	// Action is what Sync did: created, updated or unchanged.
	Action string `json:"action,omitempty"`
}

// Unsupported is a view mask that is not on the camera, and why.
type Unsupported struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// Changed is a camera mask that differs from the expected one it stands
// for.
type Changed struct {
	Expected
	Got onvif.Mask `json:"got"`
	// What differs: "polygon", "type", "colour", "enabled".
	What []string `json:"what"`
}
