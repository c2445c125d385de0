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
	EventLocked          EventKind = "locked"           // first confirmation at start
)

// Event is reported for every lock transition.
type Event struct {
	Kind     EventKind `json:"kind"`
	Camera   string    `json:"camera"`
	Preset   string    `json:"preset"`
	Position *Position `json:"position,omitempty"`
	Detail   string    `json:"detail,omitempty"`
	Time     time.Time `json:"time"`
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

	mu       sync.Mutex
	approved bool
	last     *Position
	drifts   []time.Time
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
	return &Lock{cfg: cfg, dev: dev, gate: gate, report: report, now: time.Now}, nil
}

// Approved reports whether the camera is currently confirmed on its view.
func (l *Lock) Approved() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.approved
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
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
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
