package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"velo/agent/attempts"
	"velo/agent/audit"
	"velo/agent/config"
	"velo/agent/console"
	"velo/agent/event"
	"velo/masking"
	"velo/masking/maskspec"
	"velo/masking/viewcheck"
)

// consoleGateway is the agent as the installer console sees it
// (console.Gateway).
type consoleGateway struct{ a *Agent }

var _ console.Gateway = consoleGateway{}

// startConsole binds the console when the config asks for one (an
// address that cannot be bound stops velo run).
func (a *Agent) startConsole(cfg *config.Config) (*console.Server, error) {
	if cfg.Console.Listen == "" {
		return nil, nil
	}
	s, err := console.New(console.Options{Config: cfg.Console, StateDir: cfg.StateDir, Gateway: consoleGateway{a},
		Log: a.log.With().Str("component", "console").Logger(), Now: a.opts.Clock.Now})
	if err != nil {
		return nil, err
	}
	if err := s.Listen(); err != nil {
		return nil, err
	}
	a.mu.Lock()
	a.consoleURL = s.URL()
	a.mu.Unlock()
	return s, nil
}

// ConsoleURL is where the installer console is served ("" when off).
func (a *Agent) ConsoleURL() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.consoleURL
}

func (g consoleGateway) Config() *config.Config { return g.a.Config() }
func (g consoleGateway) Emit(ev event.Event)    { g.a.emit(ev) }
func (g consoleGateway) Audit(ev event.Event) error {
	// No audit log (the agent stopping): nothing the console shows
	// unaudited.
	if al, _, _ := g.a.compliance(); al == nil {
		return errors.New("audit log: not open")
	}
	if err := g.a.emitAudited(ev); err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	return nil
}

func (g consoleGateway) Reload() error {
	_, err := g.a.Reload()
	return err
}

// ConsoleStates: every camera's state with its last event.
func (g consoleGateway) ConsoleStates() []console.CameraState {
	a := g.a
	cfg := a.Config()
	a.mu.Lock()
	defer a.mu.Unlock()
	last := map[string]event.Event{}
	for _, ev := range a.events {
		if ev.Camera != "" {
			last[ev.Camera] = ev
		}
	}
	out := make([]console.CameraState, 0, len(a.states))
	for id, s := range a.states {
		cs := console.CameraState{ID: id, Status: s.Status, Online: s.Online, Locked: s.Approved, Blank: s.Status == "blank",
			Preset: s.Preset, Error: s.Error}
		cs.FPSIn, cs.FPSOut = a.cameraRates(id)
		// Streaming with a reference: every frame out passed the view check.
		cs.ViewVerified = s.Status == "streaming" && hasReference(cfg, id, s.Preset)
		if ev, ok := last[id]; ok {
			cs.LastEvent, cs.LastEventAt = string(ev.Kind), ev.Time
		}
		out = append(out, cs)
	}
	return out
}

// hasReference: the view has a day or night reference picture.
func hasReference(cfg *config.Config, camera, preset string) bool {
	for _, night := range []bool{false, true} {
		if _, err := os.Stat(cfg.ReferencePath(camera, preset, night)); err == nil {
			return true
		}
	}
	return false
}

// LoginRefused reports a refused console login: the first of a burst from
// its source at once, the rest in one summary (agent/attempts), so 100
// wrong logins are not 100 fsynced audit entries.
func (g consoleGateway) LoginRefused(user, remote, why string) {
	a := g.a
	user = audit.Clean(user, audit.MaxFieldLen)
	at := attempts.Attempt{Kind: string(event.ConsoleLoginRefused), Source: attempts.Source(remote), Name: user}
	if !a.bursts().Observe(a.opts.Clock.Now(), at) {
		return
	}
	a.emit(event.Event{Kind: event.ConsoleLoginRefused, Operator: user, Detail: "console login refused to " + remote + ": " + why})
}

// pipeline is the camera's running frame path.
func (a *Agent) pipeline(camera string) (*masking.Pipeline, error) {
	a.mu.Lock()
	w := a.workers[camera]
	a.mu.Unlock()
	if w == nil {
		return nil, fmt.Errorf("camera %q is not running", camera)
	}
	w.mu.Lock()
	pl := w.pl
	w.mu.Unlock()
	if pl == nil {
		return nil, fmt.Errorf("camera %q has no frame path now (offline, starting or outside its schedule)", camera)
	}
	return pl, nil
}

// MaskedSnapshot is a copy of the next frame the camera's stream encodes.
func (g consoleGateway) MaskedSnapshot(ctx context.Context, camera string) ([]byte, error) {
	pl, err := g.a.pipeline(camera)
	if err != nil {
		return nil, err
	}
	f, err := pl.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	return masking.JPEG(f, 85)
}

// Preview draws the proposed masks, by Velo's masker (the code the stream
// runs), on a picture of the camera. Without a watermark (outside
// commissioning) the picture is a frame the stream encoded, so the
// approved static and dynamic masks and the view checks are already
// applied, and only while the camera is streaming at the view. With a
// watermark (commissioning) it is the next captured frame, encoded by
// CommissioningJPEG.
func (g consoleGateway) Preview(ctx context.Context, camera, preset string, masks []maskspec.Mask, watermark []string) ([]byte, error) {
	pl, err := g.a.pipeline(camera)
	if err != nil {
		return nil, err
	}
	if watermark == nil {
		return g.a.streamPreview(ctx, pl, camera, preset, masks)
	}
	f, err := pl.UnmaskedStill(ctx)
	if err != nil {
		return nil, err
	}
	if err := drawMasks(f, camera, preset, masks); err != nil {
		return nil, err
	}
	return masking.CommissioningJPEG(f, watermark, 85)
}

// streamPreview draws masks over the stream's next encoded frame, taken
// while the camera is streaming at the approved view preset (checked
// before and after), else console.ErrNotAtView.
func (a *Agent) streamPreview(ctx context.Context, pl *masking.Pipeline, camera, preset string, masks []maskspec.Mask) ([]byte, error) {
	cam := a.Config().Camera(camera)
	if cam == nil {
		return nil, fmt.Errorf("no camera %q", camera)
	}
	atView := func() bool {
		s, ok := a.State(camera)
		return ok && s.Online && s.Status == "streaming" && (len(cam.Presets) == 0 || s.Approved && s.Preset == preset)
	}
	if !atView() {
		return nil, fmt.Errorf("camera %q: %w %q", camera, console.ErrNotAtView, preset)
	}
	f, err := pl.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	if !atView() {
		return nil, fmt.Errorf("camera %q: %w %q", camera, console.ErrNotAtView, preset)
	}
	if err := drawMasks(f, camera, preset, masks); err != nil {
		return nil, err
	}
	return masking.JPEG(f, 85)
}

// drawMasks masks f with masks by a masker of their own (none: f as is).
func drawMasks(f *masking.Frame, camera, preset string, masks []maskspec.Mask) error {
	if len(masks) == 0 {
		return nil
	}
	m, err := masking.NewMasker(camera, maskspec.FailDrop)
	if err != nil {
		return err
	}
	m.SetSettle(0)
	if _, err := m.SetMaskSets([]maskspec.MaskSet{{Camera: camera, Preset: preset, Masks: masks}}); err != nil {
		return err
	}
	m.SetView(preset, true)
	f.Captured = time.Now()
	if v, why := m.Process(f); v != masking.Masked {
		return fmt.Errorf("camera %q: preview frame not masked (%s)", camera, why)
	}
	return nil
}

// UnmaskedStill is the camera's next frame before masking, with the
// watermark burned in (commissioning only: the console checks).
func (g consoleGateway) UnmaskedStill(ctx context.Context, camera string, watermark []string) ([]byte, error) {
	pl, err := g.a.pipeline(camera)
	if err != nil {
		return nil, err
	}
	f, err := pl.UnmaskedStill(ctx)
	if err != nil {
		return nil, err
	}
	return masking.CommissioningJPEG(f, watermark, 85)
}

// CaptureReference records the day reference of a view about to be
// approved in the console, from the camera's next captured frame, with
// the view's new masks excluded (as velo view capture does), and audits
// it; the reload that applies the approval restarts the camera onto it.
// A view that has a reference must be streaming (verified against it)
// when the frame is taken, and a PTZ camera locked at the preset: the new
// reference never records another view. undo puts the old reference
// back (the reload was refused).
func (g consoleGateway) CaptureReference(ctx context.Context, camera, preset string, masks []maskspec.Mask, operator string) (string, func(), error) {
	a := g.a
	cfg := a.Config()
	cam := cfg.Camera(camera)
	if cam == nil {
		return "", nil, fmt.Errorf("no camera %q", camera)
	}
	if _, ok := viewSet(cam, preset); !ok {
		return "", nil, fmt.Errorf("camera %q has no view %q", camera, preset)
	}
	path := cfg.ReferencePath(camera, preset, false)
	old, oldErr := viewcheck.Load(path)
	f, err := a.viewFrame(ctx, cam, preset, oldErr == nil)
	if err != nil {
		return "", nil, err
	}
	var pos *viewcheck.Position
	if oldErr == nil {
		pos = old.Position
	}
	ref, err := viewcheck.NewReference(f, maskspec.MaskSet{Camera: camera, Preset: preset, Masks: masks}, false, pos)
	if err != nil {
		return "", nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return "", nil, err
	}
	if err := ref.Save(path); err != nil {
		return "", nil, err
	}
	fields := map[string]string{"preset": preset, "sha256": ref.SHA256(), "file": path, "light": "day", "via": "console approval"}
	undo := func() {
		if oldErr == nil {
			_ = old.Save(path)
		} else {
			_ = os.Remove(path)
		}
		a.auditAppend(audit.Entry{Actor: operator, Action: "view_capture", Camera: camera, Outcome: "reverted", Fields: fields,
			Detail: "the approval's reload was refused: the earlier reference is back"})
	}
	if oldErr == nil {
		fields["replaced_sha256"] = old.SHA256()
	}
	a.auditAppend(audit.Entry{Actor: operator, Action: "view_capture", Camera: camera, Outcome: "ok", Fields: fields})
	return ref.SHA256(), undo, nil
}

func viewSet(cam *config.CameraConfig, preset string) (maskspec.MaskSet, bool) {
	for _, s := range cam.MaskSets() {
		if s.Preset == preset {
			return s, true
		}
	}
	return maskspec.MaskSet{}, false
}

// viewFrame waits (until ctx ends) for the camera to be at the view —
// locked at the preset for a PTZ camera; streaming, i.e. verified, when
// the view has a reference — and returns its next captured frame, taken
// while that still holds.
func (a *Agent) viewFrame(ctx context.Context, cam *config.CameraConfig, preset string, verified bool) (*masking.Frame, error) {
	atView := func() bool {
		s, ok := a.State(cam.ID)
		return ok && s.Online && (len(cam.Presets) == 0 || s.Approved && s.Preset == preset) && (!verified || s.Status == "streaming")
	}
	for {
		if atView() {
			if pl, err := a.pipeline(cam.ID); err == nil {
				fctx, cancel := context.WithTimeout(ctx, 3*time.Second) // a pipeline being replaced answers no more
				f, err := pl.UnmaskedStill(fctx)
				cancel()
				if err == nil && atView() {
					return f, nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("camera %q is not at its approved view %q (or not verified) now: %w", cam.ID, preset, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
