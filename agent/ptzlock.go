package agent

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"velo/onvif"
)

// ptzDevice is what the lock needs from a camera (onvif.*Client has it).
type ptzDevice interface {
	GotoPreset(ctx context.Context, profile, preset string) error
	GetStatus(ctx context.Context, profile string) (onvif.PTZStatus, error)
}

// ptzLimiter is a camera that can limit its PTZ range (onvif.*Client).
type ptzLimiter interface {
	SetLimits(ctx context.Context, configToken string, panTilt, zoom *onvif.Limits) (onvif.PTZConfiguration, error)
}

// viewGate is what the lock needs from the video path (masking.*Masker):
// approved=false makes the output blank at once.
type viewGate interface {
	SetView(preset string, approved bool) uint64
}

// ApprovedPreset is a view approved for a camera (ER-3.2, ER-4.7).
type ApprovedPreset struct {
	Token string
	// Expected position in the configuration's default spaces (generic:
	// pan/tilt −1..1, zoom 0..1) and the tolerance on each axis.
	Pan, Tilt, Zoom float64
	Tolerance       float64
}

// EventKind names a PTZ lock event.
type EventKind string

// Lock events.
const (
	EventDrift           EventKind = "drift"            // left the approved view: output blanked
	EventSnapBack        EventKind = "snap_back"        // back inside tolerance: output restored
	EventTamperSuspected EventKind = "tamper_suspected" // repeated drift
	EventPositionUnknown EventKind = "position_unknown" // status unreadable: output blanked
	EventLocked          EventKind = "locked"           // first confirmation at start or after preset/apply
	EventLimitsSet       EventKind = "limits_set"       // PTZ limits set to the approved views and read back
	EventLimitsFailed    EventKind = "limits_failed"    // the camera refused or did not keep the limits
	EventPresetApplying  EventKind = "preset_applying"  // an approved preset/apply: output blank until locked
)

// Event is reported for every lock transition.
type Event struct {
	Kind     EventKind `json:"kind"`
	Camera   string    `json:"camera,omitempty"`
	Preset   string    `json:"preset,omitempty"`
	Position *Position `json:"position,omitempty"`
	Detail   string    `json:"detail,omitempty"`
	// Operator, Verb and RequestID are set on command events.
	Operator  string `json:"operator,omitempty"`
	Verb      string `json:"verb,omitempty"`
	RequestID string `json:"request_id,omitempty"`
	// Reason and Ref: a recording access's reason (ER-4.4) and its
	// reference (judicial, request); a hold's reference.
	Reason string `json:"reason,omitempty"`
	Ref    string `json:"ref,omitempty"`
	// AuditSeq and AuditHash are the audit chain head (audit_head).
	AuditSeq  uint64    `json:"audit_seq,omitempty"`
	AuditHash string    `json:"audit_hash,omitempty"`
	Time      time.Time `json:"event_time"`
}

// Position is a PTZ position in generic spaces.
type Position struct {
	Pan  float64 `json:"pan"`
	Tilt float64 `json:"tilt"`
	Zoom float64 `json:"zoom"`
}

// LockConfig configures a Lock.
type LockConfig struct {
	Camera  string
	Profile string
	Preset  ApprovedPreset
	// Presets are all the approved views (Preset among them): Apply moves
	// only to one of these, and the PTZ limits cover them all.
	Presets []ApprovedPreset
	// PTZConfig is the PTZ configuration token whose limits are set once
	// the camera is first locked (empty: limits are not touched).
	PTZConfig string
	// ApplyTimeout bounds how long Apply waits for the new view to be
	// confirmed. Default 30 s.
	ApplyTimeout time.Duration
	// Interval between GetStatus polls. Default 1 s.
	Interval time.Duration
	// Escalation: EscalateAfter drifts within EscalateWindow raise
	// tamper_suspected. Defaults 3 and 10 min.
	EscalateAfter  int
	EscalateWindow time.Duration
	// RetryMove re-sends GotoPreset while still off the view. Default 10 s.
	RetryMove time.Duration
}

// Lock keeps a PTZ camera on its approved preset: a reconcile loop that
// polls the position, blanks the output the moment the camera is off the
// approved view (or its position is unknown), moves it back, and restores
// the output only once the position is confirmed inside tolerance.
// Run owns the loop; the lock holds no other goroutine.
type Lock struct {
	cfg    LockConfig
	dev    ptzDevice
	gate   viewGate
	report func(Event)
	now    func() time.Time

	applyCh chan applyReq

	mu       sync.Mutex
	approved bool
	current  string
	last     *Position
	drifts   []time.Time
}

type applyReq struct {
	preset ApprovedPreset
	done   chan error
}

// NewLock validates cfg (no I/O).
func NewLock(cfg LockConfig, dev ptzDevice, gate viewGate, report func(Event)) (*Lock, error) {
	if cfg.Preset.Token == "" || cfg.Profile == "" {
		return nil, fmt.Errorf("agent: camera %q: PTZ lock needs a profile and an approved preset", cfg.Camera)
	}
	if cfg.Preset.Tolerance <= 0 || cfg.Preset.Tolerance > 0.5 {
		return nil, fmt.Errorf("agent: camera %q preset %q: tolerance %g out of (0, 0.5]", cfg.Camera, cfg.Preset.Token, cfg.Preset.Tolerance)
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.EscalateAfter <= 0 {
		cfg.EscalateAfter = 3
	}
	if cfg.EscalateWindow <= 0 {
		cfg.EscalateWindow = 10 * time.Minute
	}
	if cfg.RetryMove <= 0 {
		cfg.RetryMove = 10 * time.Second
	}
	if report == nil {
		report = func(Event) {}
	}
	if cfg.ApplyTimeout <= 0 {
		cfg.ApplyTimeout = 30 * time.Second
	}
	found := false
	for _, p := range cfg.Presets {
		found = found || p.Token == cfg.Preset.Token
		if p.Tolerance <= 0 || p.Tolerance > 0.5 {
			return nil, fmt.Errorf("agent: camera %q preset %q: tolerance %g out of (0, 0.5]", cfg.Camera, p.Token, p.Tolerance)
		}
	}
	if !found {
		cfg.Presets = append([]ApprovedPreset{cfg.Preset}, cfg.Presets...)
	}
	return &Lock{cfg: cfg, dev: dev, gate: gate, report: report, now: time.Now, applyCh: make(chan applyReq), current: cfg.Preset.Token}, nil
}

// Approved reports whether the camera is currently confirmed on its view.
func (l *Lock) Approved() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.approved
}

// Preset returns the token of the view the lock holds (or moves to).
func (l *Lock) Preset() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.current
}

// Apply switches the lock to another approved preset: the output is
// blanked at once, the camera moved, and the output restored only when the
// new position is confirmed. It returns when confirmed, or an error
// (ErrNotApproved for a token that is not approved; a timeout after
// ApplyTimeout, while the lock keeps trying and the output stays blank).
func (l *Lock) Apply(ctx context.Context, token string) error {
	var p *ApprovedPreset
	for i := range l.cfg.Presets {
		if l.cfg.Presets[i].Token == token {
			p = &l.cfg.Presets[i]
		}
	}
	if p == nil {
		return fmt.Errorf("camera %q preset %q: %w", l.cfg.Camera, token, ErrNotApproved)
	}
	req := applyReq{preset: *p, done: make(chan error, 1)}
	select {
	case l.applyCh <- req:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// LastPosition returns the last position read (nil if none).
func (l *Lock) LastPosition() *Position {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil {
		return nil
	}
	p := *l.last
	return &p
}

func (l *Lock) emit(kind EventKind, pos *Position, detail string) {
	l.report(Event{Kind: kind, Camera: l.cfg.Camera, Preset: l.cfg.Preset.Token, Position: pos, Detail: detail, Time: l.now().UTC()})
}

// Run keeps the lock until ctx ends. It returns nil on cancellation.
func (l *Lock) Run(ctx context.Context) error {
	l.setApproved(false) // nothing is trusted until confirmed
	var lastMove time.Time
	move := func() {
		if err := l.dev.GotoPreset(ctx, l.cfg.Profile, l.cfg.Preset.Token); err != nil && ctx.Err() == nil {
			l.emit(EventDrift, nil, "GotoPreset failed: "+err.Error())
		}
		lastMove = l.now()
	}
	move()
	first := true
	unknown := false
	limitsDone := false
	var pending *applyReq
	var pendingSince time.Time
	answer := func(err error) {
		if pending != nil {
			pending.done <- err
			pending = nil
		}
	}
	defer func() { answer(errors.New("PTZ lock stopped before the view was confirmed")) }()
	tick := time.NewTicker(l.cfg.Interval)
	defer tick.Stop()
	for {
		st, err := l.dev.GetStatus(ctx, l.cfg.Profile)
		if ctx.Err() != nil {
			return nil
		}
		pos, ok := position(st)
		switch {
		case err != nil || !ok:
			// Unknown position = not approved.
			wasApproved := l.setApproved(false)
			if wasApproved || !unknown {
				detail := "no position in status"
				if err != nil {
					detail = err.Error()
				}
				l.emit(EventPositionUnknown, nil, detail)
			}
			unknown = true
		case l.inside(pos):
			unknown = false
			l.setLast(pos)
			if !l.setApproved(true) {
				if first {
					l.emit(EventLocked, &pos, "")
					answer(nil)
					if !limitsDone {
						limitsDone = true
						l.setLimits(ctx)
					}
				} else {
					l.emit(EventSnapBack, &pos, "")
				}
				first = false
			}
		default:
			unknown = false
			l.setLast(pos)
			if l.setApproved(false) {
				// Just left the view: blanked above, now report and move back.
				l.emit(EventDrift, &pos, fmt.Sprintf("off preset by %.3f (tolerance %.3f)", l.distance(pos), l.cfg.Preset.Tolerance))
				if l.countDrift() {
					l.emit(EventTamperSuspected, &pos, fmt.Sprintf("%d drifts within %v", l.cfg.EscalateAfter, l.cfg.EscalateWindow))
				}
				move()
			} else if l.now().Sub(lastMove) >= l.cfg.RetryMove {
				move()
			}
		}
		if pending != nil && l.now().Sub(pendingSince) > l.cfg.ApplyTimeout {
			answer(fmt.Errorf("camera %q: preset %q not confirmed within %v (output stays blank; still trying)", l.cfg.Camera, l.cfg.Preset.Token, l.cfg.ApplyTimeout))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case req := <-l.applyCh:
			answer(errors.New("superseded by another preset/apply"))
			l.setApproved(false) // blank under the old view first
			l.cfg.Preset = req.preset
			l.mu.Lock()
			l.current = req.preset.Token
			l.mu.Unlock()
			l.setApproved(false)
			l.emit(EventPresetApplying, l.LastPosition(), "")
			pending, pendingSince = &req, l.now()
			first = true
			move()
		}
	}
}

// setLimits limits the camera's PTZ range to the box around the approved
// views (each ± its tolerance), where the camera supports limits, and
// reads them back (onvif.Client.SetLimits checks the camera kept them).
func (l *Lock) setLimits(ctx context.Context) {
	lim, ok := l.dev.(ptzLimiter)
	if !ok || l.cfg.PTZConfig == "" {
		return
	}
	pan := onvif.FloatRange{Min: 1, Max: -1}
	tilt := onvif.FloatRange{Min: 1, Max: -1}
	zoom := onvif.FloatRange{Min: 1, Max: 0}
	for _, p := range l.cfg.Presets {
		pan.Min, pan.Max = min(pan.Min, onvif.Float(p.Pan-p.Tolerance)), max(pan.Max, onvif.Float(p.Pan+p.Tolerance))
		tilt.Min, tilt.Max = min(tilt.Min, onvif.Float(p.Tilt-p.Tolerance)), max(tilt.Max, onvif.Float(p.Tilt+p.Tolerance))
		zoom.Min, zoom.Max = min(zoom.Min, onvif.Float(p.Zoom-p.Tolerance)), max(zoom.Max, onvif.Float(p.Zoom+p.Tolerance))
	}
	clamp := func(r *onvif.FloatRange, lo, hi onvif.Float) { r.Min, r.Max = max(r.Min, lo), min(r.Max, hi) }
	clamp(&pan, -1, 1)
	clamp(&tilt, -1, 1)
	clamp(&zoom, 0, 1)
	_, err := lim.SetLimits(ctx, l.cfg.PTZConfig, &onvif.Limits{XRange: pan, YRange: &tilt}, &onvif.Limits{XRange: zoom})
	if err != nil {
		if ctx.Err() == nil {
			l.emit(EventLimitsFailed, nil, err.Error())
		}
		return
	}
	l.emit(EventLimitsSet, nil, fmt.Sprintf("pan %.3f..%.3f tilt %.3f..%.3f zoom %.3f..%.3f (read back)", pan.Min, pan.Max, tilt.Min, tilt.Max, zoom.Min, zoom.Max))
}

// setApproved updates the gate when the state changes and returns the
// previous state. Blanking happens here, before any event is reported.
func (l *Lock) setApproved(v bool) bool {
	l.mu.Lock()
	prev := l.approved
	l.approved = v
	l.mu.Unlock()
	if prev != v || !v {
		l.gate.SetView(l.cfg.Preset.Token, v)
	}
	return prev
}

func (l *Lock) setLast(p Position) {
	l.mu.Lock()
	l.last = &p
	l.mu.Unlock()
}

func (l *Lock) countDrift() bool {
	now := l.now()
	keep := l.drifts[:0]
	for _, t := range l.drifts {
		if now.Sub(t) < l.cfg.EscalateWindow {
			keep = append(keep, t)
		}
	}
	l.drifts = append(keep, now)
	return len(l.drifts) >= l.cfg.EscalateAfter
}

func (l *Lock) distance(p Position) float64 {
	e := l.cfg.Preset
	return math.Max(math.Abs(p.Pan-e.Pan), math.Max(math.Abs(p.Tilt-e.Tilt), math.Abs(p.Zoom-e.Zoom)))
}

func (l *Lock) inside(p Position) bool { return l.distance(p) <= l.cfg.Preset.Tolerance }

// position extracts pan/tilt/zoom; a missing pan/tilt is unknown (a camera
// without zoom reports zoom 0).
func position(st onvif.PTZStatus) (Position, bool) {
	v := st.Position
	if v == nil || v.PanTilt == nil {
		return Position{}, false
	}
	p := Position{Pan: float64(v.PanTilt.X), Tilt: float64(v.PanTilt.Y)}
	if v.Zoom != nil {
		p.Zoom = float64(v.Zoom.X)
	}
	if math.IsNaN(p.Pan) || math.IsNaN(p.Tilt) || math.IsNaN(p.Zoom) {
		return Position{}, false
	}
	return p, true
}

// ErrNotApproved is returned for a move to a preset that is not approved.
var ErrNotApproved = errors.New("preset not approved")

// StatusPosition is a PTZ status's position (false if the camera gave
// none, or NaN).
func StatusPosition(st onvif.PTZStatus) (Position, bool) { return position(st) }
