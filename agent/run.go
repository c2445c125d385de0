package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"velo/masking"
	"velo/masking/relay"
	"velo/onvif"
)

// Agent runs one gateway: per camera, connect (ONVIF), check identity,
// lock PTZ, mask and serve. A camera failing never stops the others.
// Run owns every goroutine and returns after all have stopped.
type Agent struct {
	cfg *Config
	log zerolog.Logger

	mu     sync.Mutex
	states map[string]*CameraState
	events []Event
	rel    *relay.Server
}

// CameraState is what the agent knows about a camera (later: MQTT state).
type CameraState struct {
	ID         string            `json:"id"`
	Online     bool              `json:"online"`
	Approved   bool              `json:"approved"`
	Position   *Position         `json:"position,omitempty"`
	Generation uint64            `json:"mask_generation"`
	Stream     string            `json:"stream,omitempty"`
	Error      string            `json:"error,omitempty"`
	Identity   *onvif.DeviceInfo `json:"identity,omitempty"`
}

// New builds an agent from a loaded config (no I/O).
func New(cfg *Config, log zerolog.Logger) *Agent {
	return &Agent{cfg: cfg, log: log, states: map[string]*CameraState{}}
}

// State returns a copy of a camera's state.
func (a *Agent) State(id string) (CameraState, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s, ok := a.states[id]
	if !ok {
		return CameraState{}, false
	}
	return *s, true
}

// Events returns the events so far.
func (a *Agent) Events() []Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]Event(nil), a.events...)
}

// StreamURL is where operators read a camera's masked stream.
func (a *Agent) StreamURL(id string) string {
	return fmt.Sprintf("rtsp://%s/%s", a.cfg.Outputs.RTSPListen, id)
}

func (a *Agent) update(id string, f func(*CameraState)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.states[id]
	if s == nil {
		s = &CameraState{ID: id}
		a.states[id] = s
	}
	f(s)
}

func (a *Agent) event(ev Event) {
	a.mu.Lock()
	a.events = append(a.events, ev)
	if len(a.events) > 1000 {
		a.events = a.events[len(a.events)-1000:]
	}
	a.mu.Unlock()
	l := a.log.Info()
	if ev.Kind == EventDrift || ev.Kind == EventTamperSuspected || ev.Kind == EventPositionUnknown {
		l = a.log.Warn()
	}
	l = l.Str("camera", ev.Camera).Str("preset", ev.Preset).Str("event", string(ev.Kind))
	if ev.Position != nil {
		l = l.Float64("pan", ev.Position.Pan).Float64("tilt", ev.Position.Tilt).Float64("zoom", ev.Position.Zoom)
	}
	if ev.Detail != "" {
		l = l.Str("detail", ev.Detail)
	}
	l.Msg("ptz lock")
}

// Run serves until ctx ends, then stops every camera and the relay.
func (a *Agent) Run(ctx context.Context) error {
	recUser, recPass := "velo-recorder", randomSecret()
	ops := a.cfg.Operators
	rel, err := relay.New(a.cfg.Outputs.RTSPListen, "velo", func(user, name string) (string, bool) {
		if user == recUser {
			return recPass, true
		}
		for _, op := range ops {
			if op.Name == user {
				for _, c := range op.Cameras {
					if c == name {
						return op.password, true
					}
				}
			}
		}
		return "", false
	})
	if err != nil {
		return err
	}
	if err := rel.Start(); err != nil {
		return err
	}
	defer rel.Close()
	a.mu.Lock()
	a.rel = rel
	a.mu.Unlock()
	a.log.Info().Str("listen", a.cfg.Outputs.RTSPListen).Msg("masked rtsp relay up")
	var wg sync.WaitGroup
	for i := range a.cfg.Cameras {
		cam := &a.cfg.Cameras[i]
		a.update(cam.ID, func(s *CameraState) { s.Stream = a.StreamURL(cam.ID) })
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.superviseCamera(ctx, cam, rel, recUser, recPass)
		}()
	}
	<-ctx.Done()
	wg.Wait()
	a.log.Info().Msg("stopped")
	return nil
}

// superviseCamera restarts a camera's worker with backoff until ctx ends.
func (a *Agent) superviseCamera(ctx context.Context, cam *CameraConfig, rel *relay.Server, recUser, recPass string) {
	log := a.log.With().Str("camera", cam.ID).Logger()
	backoff := time.Second
	for ctx.Err() == nil {
		start := time.Now()
		err := a.runCamera(ctx, cam, rel, recUser, recPass, log)
		if ctx.Err() != nil {
			return
		}
		a.update(cam.ID, func(s *CameraState) { s.Online, s.Approved, s.Error = false, false, errString(err) })
		log.Error().Err(err).Dur("retry_in", backoff).Msg("camera stopped")
		if time.Since(start) > time.Minute {
			backoff = time.Second
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, time.Minute)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// runCamera is one connection: identity check, stream URI, masker, PTZ
// lock, pipeline, recorder. It returns when any of them fails.
func (a *Agent) runCamera(ctx context.Context, cam *CameraConfig, rel *relay.Server, recUser, recPass string, log zerolog.Logger) error {
	cl, info, err := cam.Connect(ctx)
	if err != nil {
		return err
	}
	defer cl.CloseIdleConnections()
	a.update(cam.ID, func(s *CameraState) { s.Identity = &info; s.Online = true; s.Error = "" })
	log.Info().Str("model", info.Model).Str("firmware", info.FirmwareVersion).Msg("camera connected")

	uri, prof, err := ResolveStream(ctx, cl, cam.ID, cam.Profile)
	if err != nil {
		return err
	}

	masker, err := masking.NewMasker(cam.ID, masking.FailMode(cam.FailMode))
	if err != nil {
		return err
	}
	gen, err := masker.SetMaskSets(cam.MaskSets())
	if err != nil {
		return err
	}
	a.update(cam.ID, func(s *CameraState) { s.Generation = gen })

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 3)
	goRun := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && ctx.Err() == nil {
				errc <- fmt.Errorf("%s: %w", name, err)
			}
			cancel()
		}()
	}

	if len(cam.Presets) > 0 {
		if prof.PTZ == nil || !cl.HasService(onvif.NSPTZ) {
			return fmt.Errorf("camera %q: presets configured but profile %q has no PTZ", cam.ID, prof.Token)
		}
		p := cam.Presets[0] // the approved view it is locked to
		lock, err := NewLock(LockConfig{Camera: cam.ID, Profile: prof.Token, Interval: time.Duration(cam.PTZLock.Interval),
			Preset: ApprovedPreset{Token: p.Token, Pan: p.Position.Pan, Tilt: p.Position.Tilt, Zoom: p.Position.Zoom, Tolerance: p.Tolerance}},
			cl, masker, func(ev Event) {
				a.event(ev)
				a.update(cam.ID, func(s *CameraState) {
					s.Approved = ev.Kind == EventLocked || ev.Kind == EventSnapBack
					s.Position = ev.Position
				})
			})
		if err != nil {
			return err
		}
		goRun("ptz lock", lock.Run)
	} else {
		masker.SetView("", true)
		a.update(cam.ID, func(s *CameraState) { s.Approved = true })
	}

	open, err := cam.Capture(uri).Opener()
	if err != nil {
		return err
	}
	pl, err := masking.NewPipeline(masking.PipelineConfig{Camera: cam.ID, Masker: masker, Open: open,
		Logf: func(f string, args ...any) { log.Info().Msg(fmt.Sprintf(f, args...)) },
		Sink: masking.NewLazyEncoder(masking.EncoderConfig{Camera: cam.ID, FPS: cam.Encoder.FPS, BitrateKbps: cam.Encoder.BitrateKbps,
			Element: cam.Encoder.Element, Relay: rel})})
	if err != nil {
		return err
	}
	goRun("pipeline", pl.Run)
	if cam.Record.Enabled {
		rec, err := masking.NewRecorder(masking.RecorderConfig{Camera: cam.ID, Source: rel.ReadURL(cam.ID), Username: recUser, Password: recPass,
			Dir: a.cfg.Outputs.RecordDir, SegmentLength: time.Duration(cam.Record.Segment),
			Logf: func(f string, args ...any) { log.Debug().Msg(fmt.Sprintf(f, args...)) }})
		if err != nil {
			cancel()
			wg.Wait()
			return err
		}
		goRun("recorder", rec.Run)
	}
	log.Info().Str("stream", a.StreamURL(cam.ID)).Str("profile", prof.Token).Msg("masked stream serving")
	wg.Wait()
	close(errc)
	var errs []string
	for e := range errc {
		errs = append(errs, e.Error())
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return ctx.Err()
}

func randomSecret() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Client returns an ONVIF client for the camera (no I/O).
func (c *CameraConfig) Client() (*onvif.Client, error) {
	return onvif.NewClient(onvif.Config{XAddr: c.XAddr, Username: c.Username, Password: c.password, Timeout: 10 * time.Second})
}

// Connect opens the camera over ONVIF and checks it is the configured
// device: a serial that does not match is an error, so nothing of another
// device is ever streamed or previewed.
func (c *CameraConfig) Connect(ctx context.Context) (*onvif.Client, onvif.DeviceInfo, error) {
	cl, err := c.Client()
	if err != nil {
		return nil, onvif.DeviceInfo{}, err
	}
	fail := func(err error) (*onvif.Client, onvif.DeviceInfo, error) {
		cl.CloseIdleConnections()
		return nil, onvif.DeviceInfo{}, err
	}
	if err := cl.Connect(ctx); err != nil {
		return fail(err)
	}
	info, err := cl.GetDeviceInformation(ctx)
	if err != nil {
		return fail(err)
	}
	if m := c.Match.Serial; m != "" && info.SerialNumber != m {
		return fail(fmt.Errorf("camera %q: serial %q at %s, config expects %q: not streaming", c.ID, info.SerialNumber, redactURL(c.XAddr), m))
	}
	return cl, info, nil
}

// Capture returns the capture settings for the camera's stream uri.
func (c *CameraConfig) Capture(uri string) masking.CaptureConfig {
	return masking.CaptureConfig{URL: uri, Username: c.Username, Password: c.password}
}

// MaskSets returns the camera's mask sets: one per approved preset, or one
// camera-wide set (preset "") for a fixed camera.
func (c *CameraConfig) MaskSets() []masking.MaskSet {
	if len(c.Presets) == 0 {
		return []masking.MaskSet{{Camera: c.ID, Masks: c.Masks}}
	}
	var sets []masking.MaskSet
	for _, p := range c.Presets {
		sets = append(sets, masking.MaskSet{Camera: c.ID, Preset: p.Token, Masks: p.Masks})
	}
	return sets
}

// ResolveStream finds the profile (token, or the first when empty) and its
// RTSP URI.
func ResolveStream(ctx context.Context, cl *onvif.Client, camera, profile string) (string, *onvif.Profile, error) {
	profiles, err := cl.GetProfiles(ctx)
	if err != nil {
		return "", nil, err
	}
	for i := range profiles {
		if profile == "" || profiles[i].Token == profile {
			uri, err := cl.GetStreamURI(ctx, profiles[i].Token)
			if err != nil {
				return "", nil, err
			}
			return uri, &profiles[i], nil
		}
	}
	return "", nil, fmt.Errorf("camera %q: profile %q not found", camera, profile)
}

// Camera returns the configured camera with id, or nil.
func (c *Config) Camera(id string) *CameraConfig {
	for i := range c.Cameras {
		if c.Cameras[i].ID == id {
			return &c.Cameras[i]
		}
	}
	return nil
}
