package agent

import (
	"context"
	"fmt"
	"time"

	"velo/agent/console"
	"velo/agent/event"
	"velo/agent/ptzlock"
	"velo/masking/maskspec"
)

// The installer console's PTZ in commissioning goes through the camera's
// PTZ lock (agent/ptzlock hold.go): the console never calls ONVIF itself.

// ptzLock is a connected PTZ camera's lock.
func (a *Agent) ptzLock(camera string) (*ptzlock.Lock, error) {
	cam := a.Config().Camera(camera)
	if cam == nil || len(cam.Presets) == 0 {
		return nil, fmt.Errorf("camera %q has no presets: not moved from the console", camera)
	}
	a.mu.Lock()
	w := a.workers[camera]
	a.mu.Unlock()
	if w != nil {
		w.mu.Lock()
		lock := w.lock
		w.mu.Unlock()
		if lock != nil {
			return lock, nil
		}
	}
	return nil, fmt.Errorf("camera %q is not connected", camera)
}

// PTZMove holds the camera's lock for commissioning (no snap-back, output
// blank; until the session's end at the latest) and moves it: to m, or by m from where its last move sent it.
func (g consoleGateway) PTZMove(ctx context.Context, camera string, m console.PTZMove, until time.Time) (event.Position, error) {
	lock, err := g.a.ptzLock(camera)
	if err != nil {
		return event.Position{}, err
	}
	if err := lock.Hold(ctx, "console commissioning", until); err != nil {
		return event.Position{}, err
	}
	to := event.Position{Pan: m.Pan, Tilt: m.Tilt, Zoom: m.Zoom}
	if m.Relative {
		return lock.MoveBy(ctx, to)
	}
	return lock.Move(ctx, to)
}

// PTZSavePreset stores the held camera's position as a new camera preset.
func (g consoleGateway) PTZSavePreset(ctx context.Context, camera, name string) (string, event.Position, error) {
	lock, err := g.a.ptzLock(camera)
	if err != nil {
		return "", event.Position{}, err
	}
	return lock.SavePreset(ctx, name)
}

// PTZRelease ends the camera's commissioning hold: it snaps back to its
// approved view. A camera not connected has no hold to end (its lock
// starts afresh, at its preset).
func (g consoleGateway) PTZRelease(ctx context.Context, camera, why string) error {
	lock, err := g.a.ptzLock(camera)
	if err != nil {
		return err
	}
	return lock.Release(ctx, why)
}

// CapturePresetReference records the reference of a preset an approval
// just added: once the reload has the camera back, its lock applies the
// preset (now approved), the reference is taken there like any console
// capture (CaptureReference, audited view_capture), and the camera is
// restarted so that its view check loads it (the lock then goes back to
// the camera's first preset).
func (g consoleGateway) CapturePresetReference(ctx context.Context, camera, preset string, masks []maskspec.Mask, operator string) (string, error) {
	a := g.a
	var lock *ptzlock.Lock
	for { // the reload restarted the camera
		l, err := a.ptzLock(camera)
		if err == nil {
			lock = l
			break
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("camera %q not back after the reload: %w", camera, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
	if err := lock.Apply(ctx, preset); err != nil {
		return "", err
	}
	sum, _, err := g.CaptureReference(ctx, camera, preset, masks, operator)
	if err != nil {
		return "", err
	}
	a.restartCamera(camera)
	return sum, nil
}
