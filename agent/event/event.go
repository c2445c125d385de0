// Package event declares what the agent reports: every event kind, in one
// place, and the Event payload published on velo/<site>/<gateway>/events
// (docs/schemas/event.schema.json), logged, and written to the audit log.
package event

import "time"

// Kind names an event.
type Kind string

// PTZ lock (agent/ptzlock).
const (
	Drift           Kind = "drift"            // left the approved view: output blanked
	SnapBack        Kind = "snap_back"        // back inside tolerance: output restored
	TamperSuspected Kind = "tamper_suspected" // repeated drift
	PositionUnknown Kind = "position_unknown" // status unreadable: output blanked
	Locked          Kind = "locked"           // first confirmation at start or after preset/apply
	LimitsSet       Kind = "limits_set"       // PTZ limits set to the approved views and read back
	LimitsFailed    Kind = "limits_failed"    // the camera refused or did not keep the limits
	PresetApplying  Kind = "preset_applying"  // an approved preset/apply: output blank until locked
)

// The view verified from the pixels (masking/viewcheck).
const (
	ViewMismatch   Kind = "view_mismatch"   // the picture is not the approved view: no frame out
	ViewRestored   Kind = "view_restored"   // the picture matches again for enough frames
	ViewUnverified Kind = "view_unverified" // the view has no reference picture
	// CameraMasksMissing / CameraMasksChanged: the masks Velo pushed to the
	// camera (defence in depth) are gone or altered on the camera.
	CameraMasksMissing Kind = "camera_masks_missing"
	CameraMasksChanged Kind = "camera_masks_changed"
)

// Commands and configuration.
const (
	CommandRefused   Kind = "command_refused"
	CommandExecuted  Kind = "command_executed"
	CommandDuplicate Kind = "command_duplicate"
	ConfigApplied    Kind = "config_applied"
	ConfigRejected   Kind = "config_rejected"
	// ViewChanged records an approved view (a preset, or a fixed camera's
	// view) added, changed or removed by a reload, with its approval
	// (ER-4.7: a repositioning is filed beforehand and recorded).
	ViewChanged Kind = "view_changed"
)

// Cameras.
const (
	CameraOffline      Kind = "camera_offline"
	CameraOnline       Kind = "camera_online"
	CameraUnconfigured Kind = "camera_unconfigured" // found on the network, not in the config: never streamed
	ScheduledOff       Kind = "scheduled_off"       // outside the active hours (G-4.3): not read at all
	ScheduledOn        Kind = "scheduled_on"
	// StreamRefused: the camera's stream URI names another host than the
	// configured camera, or its RTSP server offers only Basic over
	// plaintext; the credentials are not sent and the camera does not
	// stream (Stream says which).
	StreamRefused Kind = "stream_refused"
	// VideoLost: no frame captured for capture.video_lost_after (a camera
	// whose stream hangs or stopped): nothing goes out, the capture keeps
	// reconnecting. VideoRestored: frames come again.
	VideoLost     Kind = "video_lost"
	VideoRestored Kind = "video_restored"
)

// Compliance: audit, access, retention.
const (
	AuditHead      Kind = "audit_head"
	AuditFailed    Kind = "audit_failed"
	AccessDenied   Kind = "access_denied"
	LiveView       Kind = "live_view"
	RetentionDel   Kind = "retention_deleted"
	RetentionError Kind = "retention_error"
	HoldSet        Kind = "hold_set"
	HoldReleased   Kind = "hold_released"
	RecordingRead  Kind = "recording_access"
	Export         Kind = "export"
	// ClockUntrusted: the downtime since the last run was not counted by
	// the retention clock (an implausible wall clock without NTP).
	ClockUntrusted Kind = "clock_untrusted"
)

// The masked RTSP relay (masking/relay).
const (
	// RelayStopped: a relay listener failed for good (not a temporary
	// error such as running out of file descriptors, which is retried).
	RelayStopped Kind = "relay_stopped"
)

// The video path (masking: codecs).
const (
	// VideoFallback: a camera's video is not decoded the preferred way
	// (a preferred decoder failed, or GStreamer did not open and OpenCV's
	// FFmpeg backend decodes); detail names the path and why. Once per
	// path change, not at every reconnect.
	VideoFallback Kind = "video_fallback"
)

// The installer console (agent/console): logins, commissioning sessions,
// view proposals and their approval (ER-4.7).
const (
	ConsoleLogin        Kind = "console_login"
	ConsoleLoginRefused Kind = "console_login_refused" // first of a burst on its own, the rest summarised
	ConsoleLogout       Kind = "console_logout"
	ConsoleRefused      Kind = "console_refused" // an action refused to a logged-in operator
	ConsoleSnapshot     Kind = "console_snapshot"
	CommissioningOpened Kind = "commissioning_opened"
	CommissioningStill  Kind = "commissioning_still" // an unmasked, watermarked still shown
	CommissioningClosed Kind = "commissioning_closed"
	ViewProposed        Kind = "view_proposed"
	ViewApproved        Kind = "view_approved" // written to the managed views file and reloaded, with a diff
	// A PTZ camera moved in commissioning: each move (audited before it
	// is made), and the lock held (no snap-back, output blank) and released.
	CommissioningMove Kind = "commissioning_move"
	PTZHeld           Kind = "ptz_held"
	PTZReleased       Kind = "ptz_released"
)

// Event is one thing that happened on the gateway.
type Event struct {
	Kind     Kind      `json:"kind"`
	Camera   string    `json:"camera,omitempty"`
	Preset   string    `json:"preset,omitempty"`
	Position *Position `json:"position,omitempty"`
	Detail   string    `json:"detail,omitempty"`
	// Operator, Verb and RequestID are set on command events.
	Operator  string `json:"operator,omitempty"`
	Verb      string `json:"verb,omitempty"`
	RequestID string `json:"request_id,omitempty"`
	// Reason and Ref: a recording access's reason (ER-4.4) and its
	// reference (judicial, request); a hold's reference; an approval's
	// document.
	Reason string `json:"reason,omitempty"`
	Ref    string `json:"ref,omitempty"`
	// View is what the view check found (view_mismatch, view_restored,
	// view_unverified).
	View *ViewFinding `json:"view,omitempty"`
	// Stream is why a camera's stream was refused (stream_refused).
	Stream *StreamRefusal `json:"stream,omitempty"`
	// Burst is set on an access_denied or camera_unconfigured event that
	// summarises a source's repeated attempts after the first.
	Burst *Burst `json:"burst,omitempty"`
	// AuditSeq and AuditHash are the audit chain head (audit_head).
	AuditSeq  uint64    `json:"audit_seq,omitempty"`
	AuditHash string    `json:"audit_hash,omitempty"`
	Time      time.Time `json:"event_time"`

	// AuditKey is the gateway's audit checkpoint public key (hex) that
	// signed the head, for the centre to pin (audit_head).
	AuditKey string `json:"audit_key,omitempty"`
}

// Burst counts what one source tried after its first attempt (which has
// an event of its own): a flood is summarised, not reported one by one.
type Burst struct {
	Source string    `json:"source"` // an IP, an IPv6 /64, or "other sources"
	Count  int       `json:"count"`  // attempts summarised
	First  time.Time `json:"first"`
	Last   time.Time `json:"last"`
	// Names (users, devices), Targets (cameras) and, for "other sources",
	// Sources: a few distinct values; More says some did not fit.
	Names   []string `json:"names,omitempty"`
	Targets []string `json:"targets,omitempty"`
	Sources []string `json:"sources,omitempty"`
	More    bool     `json:"more,omitempty"`
}

// ViewFinding is a view check's measure of a frame against the approved
// view's reference.
type ViewFinding struct {
	Reason   string  `json:"reason,omitempty"` // shift, scale, rotation, obstruction, defocus, scene, no_reference
	ShiftX   float64 `json:"shift_x_px"`
	ShiftY   float64 `json:"shift_y_px"`
	Scale    float64 `json:"scale,omitempty"`
	Rotation float64 `json:"rotation_deg"`
	Score    float64 `json:"score"`
	// Frames: on view_restored, the frames withheld during the mismatch.
	Frames uint64 `json:"frames,omitempty"`
}

// StreamRefusal names the hosts of a refused stream URI, never its
// credentials.
type StreamRefusal struct {
	Reason     string `json:"reason"`      // host_mismatch, basic_only
	NamedHost  string `json:"named_host"`  // host[:port] the camera's stream URI names
	PinnedHost string `json:"pinned_host"` // the configured camera's host
}

// Position is a PTZ position in the generic spaces (pan and tilt −1..1,
// zoom 0..1).
type Position struct {
	Pan  float64 `json:"pan"`
	Tilt float64 `json:"tilt"`
	Zoom float64 `json:"zoom"`
}

// Warning reports whether an event is logged as a warning: the view is
// lost, or something was refused or failed.
func (k Kind) Warning() bool {
	switch k {
	case Drift, TamperSuspected, PositionUnknown, CommandRefused, ConfigRejected, LimitsFailed, CameraOffline,
		ViewMismatch, ViewUnverified, CameraMasksMissing, CameraMasksChanged, StreamRefused, VideoLost:
		return true
	case RelayStopped, VideoFallback, ConsoleLoginRefused, ConsoleRefused:
		return true
	}
	return false
}
