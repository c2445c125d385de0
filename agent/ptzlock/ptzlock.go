// Package ptzlock keeps a PTZ camera on its approved views (ER-3.2): a
// reconcile loop that polls the position, blanks the output the moment the
// camera is off the approved view or its position is unknown, moves it
// back, restores the output only once the position is confirmed, limits the
// camera's range to the approved views, and reports every transition.
package ptzlock

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"velo/agent/event"
	"velo/onvif"
)

// ptzDevice is what the lock needs from a camera (onvif.*Client has it).
type ptzDevice interface {
	GotoPreset(ctx context.Context, profile, preset string) error
	GetStatus(ctx context.Context, profile string) (onvif.PTZStatus, error)
}

// absoluteMover is a camera that moves to a position (onvif.*Client): the
// lock of a fixed view, which has no preset token.
type absoluteMover interface {
	AbsoluteMove(ctx context.Context, profile string, pos onvif.PTZVector) error
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
	// Fixed: the view of a camera configured as fixed that has PTZ (Token
	// ""): held at the position recorded with its reference, moved back
	// with AbsoluteMove.
	Fixed bool
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
	// Now is the clock the lock times moves, escalation and applies with
	// (default time.Now).
	Now func() time.Time
	// With a camera that offers ONVIF events (events.go): MotionInterval
	// is the status read interval for MotionWatch after each PTZ motion
	// event (defaults 100 ms, capped at Interval, and 2 s); EventRetry is
	// how long after the subscription failed it is tried again (default
	// 1 min; polling goes on meanwhile).
	MotionInterval time.Duration
	MotionWatch    time.Duration
	EventRetry     time.Duration
	// Log receives the loss (once) and return of the camera's events
	// (zero value: discarded).
	Log zerolog.Logger
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
	report func(event.Event)
	now    func() time.Time

	applyCh chan applyReq
	holdCh  chan holdReq
	stopped chan struct{} // closed when Run returns
	holdMu  sync.Mutex    // a commissioning move or save against a release

	mu       sync.Mutex
	held     bool            // commissioning hold (hold.go)
	target   *event.Position // where the hold's last move sent the camera
	approved bool
	current  string
	last     *event.Position
	drifts   []time.Time
}

type applyReq struct {
	preset ApprovedPreset
	done   chan error
}

// NewLock validates cfg (no I/O).
func NewLock(cfg LockConfig, dev ptzDevice, gate viewGate, report func(event.Event)) (*Lock, error) {
	if (cfg.Preset.Token == "" && !cfg.Preset.Fixed) || cfg.Profile == "" {
		return nil, fmt.Errorf("ptzlock: camera %q: PTZ lock needs a profile and an approved preset", cfg.Camera)
	}
	if _, ok := dev.(absoluteMover); cfg.Preset.Fixed && !ok {
		return nil, fmt.Errorf("ptzlock: camera %q: a fixed view is held with AbsoluteMove, which the device lacks", cfg.Camera)
	}
	if cfg.Preset.Tolerance <= 0 || cfg.Preset.Tolerance > 0.5 {
		return nil, fmt.Errorf("ptzlock: camera %q preset %q: tolerance %g out of (0, 0.5]", cfg.Camera, cfg.Preset.Token, cfg.Preset.Tolerance)
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
		report = func(event.Event) {}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ApplyTimeout <= 0 {
		cfg.ApplyTimeout = 30 * time.Second
	}
	cfg.applyEventDefaults()
	found := false
	for _, p := range cfg.Presets {
		found = found || p.Token == cfg.Preset.Token
		if p.Tolerance <= 0 || p.Tolerance > 0.5 {
			return nil, fmt.Errorf("ptzlock: camera %q preset %q: tolerance %g out of (0, 0.5]", cfg.Camera, p.Token, p.Tolerance)
		}
	}
	if !found {
		cfg.Presets = append([]ApprovedPreset{cfg.Preset}, cfg.Presets...)
	}
	return &Lock{cfg: cfg, dev: dev, gate: gate, report: report, now: cfg.Now, applyCh: make(chan applyReq), holdCh: make(chan holdReq), stopped: make(chan struct{}), current: cfg.Preset.Token}, nil
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
func (l *Lock) LastPosition() *event.Position {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil {
		return nil
	}
	p := *l.last
	return &p
}

func (l *Lock) emit(kind event.Kind, pos *event.Position, detail string) {
	l.report(event.Event{Kind: kind, Camera: l.cfg.Camera, Preset: l.cfg.Preset.Token, Position: pos, Detail: detail, Time: l.now().UTC()})
}

// loop is the reconcile loop's memory between polls.
type loop struct {
	lastMove     time.Time
	first        bool // not confirmed yet since the start or the last apply
	unknown      bool // the last poll gave no position
	limitsDone   bool
	pending      *applyReq
	pendingSince time.Time
	// watchUntil: status is read every MotionInterval until then (set by
	// PTZ motion events; monotonic time, not the lock's clock).
	watchUntil time.Time
	// holdUntil: a commissioning hold ends by itself then (lock's clock).
	holdUntil time.Time
}

// answer tells a waiting Apply how it ended.
func (lp *loop) answer(err error) {
	if lp.pending != nil {
		lp.pending.done <- err
		lp.pending = nil
	}
}

// Run keeps the lock until ctx ends. It returns nil on cancellation. With
// a camera that offers events, Run also owns the event pull loop (a
// goroutine it joins before returning).
func (l *Lock) Run(ctx context.Context) error {
	defer close(l.stopped)
	l.setApproved(false) // nothing is trusted until confirmed
	lp := &loop{first: true}
	var wg sync.WaitGroup
	evCtx, stopEvents := context.WithCancel(ctx)
	defer wg.Wait()
	defer stopEvents()
	news := l.startEvents(evCtx, &wg)
	l.move(ctx, lp)
	defer func() { lp.answer(errors.New("PTZ lock stopped before the view was confirmed")) }()
	tick := time.NewTicker(l.cfg.Interval)
	defer tick.Stop()
	for {
		st, err := l.dev.GetStatus(ctx, l.cfg.Profile)
		if ctx.Err() != nil {
			return nil
		}
		l.reconcile(ctx, lp, st, err)
		l.holdExpired(ctx, lp)
		if lp.pending != nil && l.now().Sub(lp.pendingSince) > l.cfg.ApplyTimeout {
			lp.answer(fmt.Errorf("camera %q: preset %q not confirmed within %v (output stays blank; still trying)", l.cfg.Camera, l.cfg.Preset.Token, l.cfg.ApplyTimeout))
		}
		if !l.next(ctx, lp, tick.C, news) {
			return nil
		}
	}
}

// next waits for what calls for the next status read: the poll tick, an
// apply, a PTZ motion event, or (while watching a motion) MotionInterval.
// It returns false when ctx ends.
func (l *Lock) next(ctx context.Context, lp *loop, tick <-chan time.Time, news <-chan motionNews) bool {
	var fast <-chan time.Time
	if time.Now().Before(lp.watchUntil) {
		t := time.NewTimer(l.cfg.MotionInterval)
		defer t.Stop()
		fast = t.C
	}
	select {
	case <-ctx.Done():
		return false
	case <-tick:
	case <-fast:
	case req := <-l.applyCh:
		l.startApply(ctx, lp, req)
	case req := <-l.holdCh:
		l.setHold(ctx, lp, req)
	case n := <-news:
		l.onMotion(ctx, lp, n)
	}
	return true
}

// move sends the camera to the held preset.
func (l *Lock) move(ctx context.Context, lp *loop) {
	p := l.cfg.Preset
	op, err := "GotoPreset", error(nil)
	if p.Fixed {
		op = "AbsoluteMove"
		err = l.dev.(absoluteMover).AbsoluteMove(ctx, l.cfg.Profile, onvif.PTZVector{
			PanTilt: &onvif.Vector2D{X: onvif.Float(p.Pan), Y: onvif.Float(p.Tilt)}, Zoom: &onvif.Vector1D{X: onvif.Float(p.Zoom)}})
	} else {
		err = l.dev.GotoPreset(ctx, l.cfg.Profile, p.Token)
	}
	if err != nil && ctx.Err() == nil {
		l.emit(event.Drift, nil, op+" failed: "+err.Error())
	}
	lp.lastMove = l.now()
}

// reconcile acts on one status read: unknown, inside or outside the view.
func (l *Lock) reconcile(ctx context.Context, lp *loop, st onvif.PTZStatus, err error) {
	pos, ok := position(st)
	if l.Held() { // commissioning: blank, no move back, no drift
		if err == nil && ok {
			l.setLast(pos)
		}
		l.setApproved(false)
		return
	}
	switch {
	case err != nil || !ok:
		l.onUnknown(lp, err)
	case l.inside(pos):
		lp.unknown = false
		l.setLast(pos)
		l.onInside(ctx, lp, pos)
	default:
		lp.unknown = false
		l.setLast(pos)
		l.onOutside(ctx, lp, pos)
	}
}

// onUnknown: an unknown position is not approved.
func (l *Lock) onUnknown(lp *loop, err error) {
	wasApproved := l.setApproved(false)
	if wasApproved || !lp.unknown {
		detail := "no position in status"
		if err != nil {
			detail = err.Error()
		}
		l.emit(event.PositionUnknown, nil, detail)
	}
	lp.unknown = true
}

// onInside confirms the view: locked (first time, then limits are set) or
// snapped back.
func (l *Lock) onInside(ctx context.Context, lp *loop, pos event.Position) {
	if l.setApproved(true) {
		return
	}
	if !lp.first {
		l.emit(event.SnapBack, &pos, "")
		return
	}
	lp.first = false
	l.emit(event.Locked, &pos, "")
	lp.answer(nil)
	if !lp.limitsDone {
		lp.limitsDone = true
		l.setLimits(ctx)
	}
}

// onOutside blanks (in setApproved), reports the drift and moves back; while
// still off the view it re-sends the move every RetryMove.
func (l *Lock) onOutside(ctx context.Context, lp *loop, pos event.Position) {
	if !l.setApproved(false) {
		if l.now().Sub(lp.lastMove) >= l.cfg.RetryMove {
			l.move(ctx, lp)
		}
		return
	}
	l.drifted(ctx, lp, &pos, fmt.Sprintf("off preset by %.3f (tolerance %.3f)", l.distance(pos), l.cfg.Preset.Tolerance))
}

// drifted reports a drift (the output is already blank), escalates
// repeated drifts, and moves back.
func (l *Lock) drifted(ctx context.Context, lp *loop, pos *event.Position, detail string) {
	l.emit(event.Drift, pos, detail)
	if l.countDrift() {
		l.emit(event.TamperSuspected, pos, fmt.Sprintf("%d drifts within %v", l.cfg.EscalateAfter, l.cfg.EscalateWindow))
	}
	l.move(ctx, lp)
}

// startApply switches to another approved preset: blank first, then move.
func (l *Lock) startApply(ctx context.Context, lp *loop, req applyReq) {
	if l.Held() {
		req.done <- fmt.Errorf("camera %q: %w", l.cfg.Camera, ErrHeld)
		return
	}
	lp.answer(errors.New("superseded by another preset/apply"))
	l.setApproved(false) // blank under the old view first
	l.cfg.Preset = req.preset
	l.mu.Lock()
	l.current = req.preset.Token
	l.mu.Unlock()
	l.setApproved(false)
	l.emit(event.PresetApplying, l.LastPosition(), "")
	lp.pending, lp.pendingSince = &req, l.now()
	lp.first = true
	l.move(ctx, lp)
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
			l.emit(event.LimitsFailed, nil, err.Error())
		}
		return
	}
	l.emit(event.LimitsSet, nil, fmt.Sprintf("pan %.3f..%.3f tilt %.3f..%.3f zoom %.3f..%.3f (read back)", pan.Min, pan.Max, tilt.Min, tilt.Max, zoom.Min, zoom.Max))
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

func (l *Lock) setLast(p event.Position) {
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

func (l *Lock) distance(p event.Position) float64 {
	e := l.cfg.Preset
	return math.Max(math.Abs(p.Pan-e.Pan), math.Max(math.Abs(p.Tilt-e.Tilt), math.Abs(p.Zoom-e.Zoom)))
}

func (l *Lock) inside(p event.Position) bool { return l.distance(p) <= l.cfg.Preset.Tolerance }

// position extracts pan/tilt/zoom; a missing pan/tilt is unknown (a camera
// without zoom reports zoom 0).
func position(st onvif.PTZStatus) (event.Position, bool) {
	v := st.Position
	if v == nil || v.PanTilt == nil {
		return event.Position{}, false
	}
	p := event.Position{Pan: float64(v.PanTilt.X), Tilt: float64(v.PanTilt.Y)}
	if v.Zoom != nil {
		p.Zoom = float64(v.Zoom.X)
	}
	if math.IsNaN(p.Pan) || math.IsNaN(p.Tilt) || math.IsNaN(p.Zoom) {
		return event.Position{}, false
	}
	return p, true
}

// ErrNotApproved is returned for a move to a preset that is not approved.
var ErrNotApproved = errors.New("preset not approved")

// StatusPosition is a PTZ status's position (false if the camera gave
// none, or NaN).
func StatusPosition(st onvif.PTZStatus) (event.Position, bool) { return position(st) }
