package ptzlock

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"velo/agent/event"
	"velo/onvif"
)

// A commissioning hold (the installer console): while an installer moves
// a PTZ camera to frame a new view, the lock stops moving it back. The
// output stays blank for the whole hold (fail closed: no picture leaves
// while the camera is somewhere no one approved), the position is still
// read, and the camera's PTZ limits are opened to its full range so the
// moves are not clamped to the approved box. When the hold ends (Release,
// for any reason) the limits are set again, the camera is moved back to
// the held preset and the output is restored only once that is confirmed
// (snap_back).

// ErrNotHeld: a commissioning move or preset save on a lock not held.
var ErrNotHeld = errors.New("PTZ lock is not held for commissioning")

// ErrHeld: a preset/apply while the lock is held for commissioning.
var ErrHeld = errors.New("PTZ lock is held for commissioning: no preset/apply until the session ends")

// presetSaver stores the current position as a camera preset (onvif.*Client).
type presetSaver interface {
	SetPreset(ctx context.Context, profile, name, token string) (string, error)
}

type holdReq struct {
	hold  bool
	why   string
	until time.Time // the lock's clock: the hold ends by itself then
	done  chan error
}

// Hold suspends the lock for commissioning (see above) until the lock's
// clock reaches until, when it ends by itself as if released (the session
// that took it cannot leave the camera held if its release is lost).
// Holding a held lock sets the new end. It returns once the lock has
// taken it.
func (l *Lock) Hold(ctx context.Context, why string, until time.Time) error {
	if _, ok := l.dev.(absoluteMover); !ok {
		return fmt.Errorf("camera %q: no AbsoluteMove: it cannot be moved from the console", l.cfg.Camera)
	}
	return l.sendHold(ctx, holdReq{hold: true, why: why, until: until, done: make(chan error, 1)})
}

// holdExpired ends a hold whose time is up (in the reconcile loop).
func (l *Lock) holdExpired(ctx context.Context, lp *loop) {
	if l.Held() && !lp.holdUntil.IsZero() && !l.now().Before(lp.holdUntil) {
		l.setHold(ctx, lp, holdReq{why: "its time is up", done: make(chan error, 1)})
	}
}

// Release ends a commissioning hold: limits set again, the camera moved
// back to the held preset, the output restored once it is confirmed there.
// Releasing a lock that is not held does nothing.
func (l *Lock) Release(ctx context.Context, why string) error {
	return l.sendHold(ctx, holdReq{hold: false, why: why, done: make(chan error, 1)})
}

func (l *Lock) sendHold(ctx context.Context, req holdReq) error {
	select {
	case l.holdCh <- req:
	case <-l.stopped:
		return fmt.Errorf("camera %q: PTZ lock stopped (the camera reconnects, locked afresh)", l.cfg.Camera)
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

// Held reports whether the lock is held for commissioning.
func (l *Lock) Held() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.held
}

// Move moves a held camera to pos (generic spaces, clamped to pan/tilt
// −1..1, zoom 0..1); ErrNotHeld otherwise.
func (l *Lock) Move(ctx context.Context, pos event.Position) (event.Position, error) {
	l.holdMu.Lock()
	defer l.holdMu.Unlock()
	return l.moveHeld(ctx, pos)
}

// MoveBy moves a held camera by d from where its last commissioning move
// sent it (the position read now before the first): steps sent quicker
// than the motor add up, as the installer meant.
func (l *Lock) MoveBy(ctx context.Context, d event.Position) (event.Position, error) {
	l.holdMu.Lock()
	defer l.holdMu.Unlock()
	l.mu.Lock()
	base := l.target
	l.mu.Unlock()
	if base == nil {
		at, err := l.Position(ctx)
		if err != nil {
			return event.Position{}, err
		}
		base = &at
	}
	return l.moveHeld(ctx, event.Position{Pan: base.Pan + d.Pan, Tilt: base.Tilt + d.Tilt, Zoom: base.Zoom + d.Zoom})
}

// moveHeld is Move with l.holdMu held.
func (l *Lock) moveHeld(ctx context.Context, pos event.Position) (event.Position, error) {
	if !l.Held() {
		return event.Position{}, fmt.Errorf("camera %q: %w", l.cfg.Camera, ErrNotHeld)
	}
	clamp := func(v, lo, hi float64) float64 {
		if math.IsNaN(v) {
			return lo
		}
		return math.Max(lo, math.Min(hi, v))
	}
	pos = event.Position{Pan: clamp(pos.Pan, -1, 1), Tilt: clamp(pos.Tilt, -1, 1), Zoom: clamp(pos.Zoom, 0, 1)}
	err := l.dev.(absoluteMover).AbsoluteMove(ctx, l.cfg.Profile, onvif.PTZVector{
		PanTilt: &onvif.Vector2D{X: onvif.Float(pos.Pan), Y: onvif.Float(pos.Tilt)}, Zoom: &onvif.Vector1D{X: onvif.Float(pos.Zoom)}})
	if err != nil {
		return event.Position{}, fmt.Errorf("camera %q: %w", l.cfg.Camera, err)
	}
	l.mu.Lock()
	l.target = &pos
	l.mu.Unlock()
	return pos, nil
}

// Position reads the camera's position now.
func (l *Lock) Position(ctx context.Context) (event.Position, error) {
	st, err := l.dev.GetStatus(ctx, l.cfg.Profile)
	if err != nil {
		return event.Position{}, fmt.Errorf("camera %q: %w", l.cfg.Camera, err)
	}
	pos, ok := position(st)
	if !ok {
		return event.Position{}, fmt.Errorf("camera %q: the PTZ status has no position", l.cfg.Camera)
	}
	return pos, nil
}

// SavePreset stores a held camera's current position as a new camera
// preset named name and returns its token and the position read just
// before; ErrNotHeld otherwise. Storing it approves nothing: the lock
// moves only to the presets of its config.
func (l *Lock) SavePreset(ctx context.Context, name string) (string, event.Position, error) {
	l.holdMu.Lock()
	defer l.holdMu.Unlock()
	if !l.Held() {
		return "", event.Position{}, fmt.Errorf("camera %q: %w", l.cfg.Camera, ErrNotHeld)
	}
	ps, ok := l.dev.(presetSaver)
	if !ok {
		return "", event.Position{}, fmt.Errorf("camera %q: presets cannot be stored on this device", l.cfg.Camera)
	}
	pos, err := l.Position(ctx)
	if err != nil {
		return "", event.Position{}, err
	}
	tok, err := ps.SetPreset(ctx, l.cfg.Profile, name, "")
	if err != nil {
		return "", event.Position{}, fmt.Errorf("camera %q: %w", l.cfg.Camera, err)
	}
	if tok == "" {
		return "", event.Position{}, fmt.Errorf("camera %q: SetPreset returned no token", l.cfg.Camera)
	}
	return tok, pos, nil
}

// setHold applies a hold or a release in the reconcile loop.
func (l *Lock) setHold(ctx context.Context, lp *loop, req holdReq) {
	lp.holdUntil = req.until
	if req.hold == l.Held() {
		req.done <- nil
		return
	}
	l.holdMu.Lock() // no commissioning move in flight
	l.mu.Lock()
	l.held, l.target = req.hold, nil
	l.mu.Unlock()
	l.holdMu.Unlock()
	l.setApproved(false) // blank: held, or not yet back at the view
	if req.hold {
		lp.answer(ErrHeld)
		l.emit(event.PTZHeld, l.LastPosition(), "commissioning hold ("+req.why+"): no snap-back, output blank until it ends")
		l.openLimits(ctx)
		req.done <- nil
		return
	}
	l.emit(event.PTZReleased, l.LastPosition(), "commissioning hold ended ("+req.why+"): back to the approved view")
	l.setLimits(ctx)
	l.move(ctx, lp)
	req.done <- nil
}

// openLimits widens the camera's PTZ limits to its full range for a
// commissioning hold (where the camera has limits).
func (l *Lock) openLimits(ctx context.Context) {
	lim, ok := l.dev.(ptzLimiter)
	if !ok || l.cfg.PTZConfig == "" {
		return
	}
	_, err := lim.SetLimits(ctx, l.cfg.PTZConfig, &onvif.Limits{XRange: onvif.FloatRange{Min: -1, Max: 1}, YRange: &onvif.FloatRange{Min: -1, Max: 1}},
		&onvif.Limits{XRange: onvif.FloatRange{Min: 0, Max: 1}})
	if err != nil && ctx.Err() == nil {
		l.emit(event.LimitsFailed, nil, "opening the limits for commissioning: "+err.Error())
	}
}
