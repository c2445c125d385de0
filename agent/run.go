package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"velo/agent/audit"
	"velo/agent/retention"
	"velo/masking"
	"velo/masking/maskspec"
	"velo/masking/relay"
	"velo/onvif"
)

// Agent runs one gateway: per camera, connect (ONVIF), check identity,
// lock PTZ, mask and serve; telemetry and commands over MQTT; reload of the
// site config. A camera failing never stops the others. Run owns every
// goroutine and returns after all have stopped.
type Agent struct {
	// Version is reported in the MQTT status.
	Version string

	cfg atomic.Pointer[Config]
	log zerolog.Logger

	mu      sync.Mutex
	states  map[string]*CameraState
	events  []Event
	rel     *relay.Server
	tel     *Telemetry
	outbox  *Outbox
	broker  string
	workers map[string]*worker
	runCtx  context.Context
	camWG   sync.WaitGroup
	cmds    chan rawCommand
	rec     [2]string // recorder's relay user and password
	audit   *audit.Log
	store   *retention.Store
	recs    map[string]bool // cameras whose recorder is running

	reloadMu sync.Mutex
	ready    chan struct{}
	// schedNow is the clock schedules are read with (nil: time.Now); a
	// test sets it before Run.
	schedNow func() time.Time
	beat     atomic.Int64 // unix nanos of the last stats loop round
}

type worker struct {
	cam    *CameraConfig
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	lock    *Lock
	pl      *masking.Pipeline
	lastIn  uint64
	lastOut uint64
	lastAt  time.Time
}

type rawCommand struct {
	verb    string
	payload []byte
}

// CameraState is what the agent knows about a camera, published retained
// on cameras/<id>/state.
type CameraState struct {
	ID string `json:"id"`
	// Status: starting, streaming, blank (off its approved view),
	// offline (not reachable or failing: see error).
	Status     string            `json:"status"`
	Online     bool              `json:"online"`
	Approved   bool              `json:"approved"`
	Preset     string            `json:"preset,omitempty"`
	Profile    string            `json:"profile,omitempty"`
	Position   *Position         `json:"position,omitempty"`
	Generation uint64            `json:"mask_generation"`
	FPSIn      float64           `json:"fps_in"`
	FPSOut     float64           `json:"fps_out"`
	Dropped    uint64            `json:"dropped"`
	Blanked    uint64            `json:"blanked"`
	LastDrift  *time.Time        `json:"last_drift,omitempty"`
	Stream     string            `json:"stream,omitempty"`
	Error      string            `json:"error,omitempty"`
	Identity   *onvif.DeviceInfo `json:"identity,omitempty"`
	// ScheduledOff: outside the active hours (G-4.3), the camera is not
	// read at all; NextOn is when it resumes.
	ScheduledOff bool       `json:"-"`
	NextOn       *time.Time `json:"next_on,omitempty"`
}

// Agent-level event kinds (the PTZ lock's are in ptzlock.go).
const (
	EventCommandRefused   EventKind = "command_refused"
	EventCommandExecuted  EventKind = "command_executed"
	EventCommandDuplicate EventKind = "command_duplicate"
	EventConfigApplied    EventKind = "config_applied"
	EventConfigRejected   EventKind = "config_rejected"
	EventCameraOffline    EventKind = "camera_offline"
	EventCameraOnline     EventKind = "camera_online"
)

// New builds an agent from a loaded config (no I/O).
func New(cfg *Config, log zerolog.Logger) *Agent {
	a := &Agent{log: log, states: map[string]*CameraState{}, workers: map[string]*worker{}, recs: map[string]bool{}, cmds: make(chan rawCommand, 64), ready: make(chan struct{})}
	a.cfg.Store(cfg)
	return a
}

// Ready is closed once Run has its outbox, broker connection attempt,
// relay and camera workers started (systemd READY=1).
func (a *Agent) Ready() <-chan struct{} { return a.ready }

// Healthy reports whether the agent's housekeeping loop ran within the
// last 30 s (the systemd watchdog pings only while it does).
func (a *Agent) Healthy() bool {
	return time.Since(time.Unix(0, a.beat.Load())) < 30*time.Second
}

// Config returns the config in force.
func (a *Agent) Config() *Config { return a.cfg.Load() }

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

// Events returns the last 1000 events.
func (a *Agent) Events() []Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]Event(nil), a.events...)
}

// BrokerURL is the broker in use (the embedded one's when none is
// configured); empty before Run connected it.
func (a *Agent) BrokerURL() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.broker
}

// StreamURL is where operators read a camera's masked stream.
func (a *Agent) StreamURL(id string) string {
	return fmt.Sprintf("rtsp://%s/%s", a.cfg.Load().Outputs.RTSPListen, id)
}

func (a *Agent) update(id string, f func(*CameraState)) {
	a.mu.Lock()
	s := a.states[id]
	if s == nil {
		s = &CameraState{ID: id, Status: "starting"}
		a.states[id] = s
	}
	f(s)
	switch {
	case s.ScheduledOff:
		s.Status = "scheduled-off"
	case !s.Online:
		s.Status = "offline"
	case !s.Approved:
		s.Status = "blank"
	default:
		s.Status = "streaming"
	}
	c := *s
	tel := a.tel
	a.mu.Unlock()
	if tel != nil {
		tel.SetState(id, c)
	}
}

func (a *Agent) event(ev Event) {
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	a.mu.Lock()
	a.events = append(a.events, ev)
	if len(a.events) > 1000 {
		a.events = a.events[len(a.events)-1000:]
	}
	tel := a.tel
	a.mu.Unlock()
	l := a.log.Info()
	switch ev.Kind {
	case EventDrift, EventTamperSuspected, EventPositionUnknown, EventCommandRefused, EventConfigRejected, EventLimitsFailed, EventCameraOffline:
		l = a.log.Warn()
	}
	l = l.Str("event", string(ev.Kind))
	for k, v := range map[string]string{"camera": ev.Camera, "preset": ev.Preset, "detail": ev.Detail, "operator": ev.Operator, "verb": ev.Verb, "request_id": ev.RequestID} {
		if v != "" {
			l = l.Str(k, v)
		}
	}
	if ev.Position != nil {
		l = l.Float64("pan", ev.Position.Pan).Float64("tilt", ev.Position.Tilt).Float64("zoom", ev.Position.Zoom)
	}
	l.Msg("event")
	a.auditEvent(ev)
	if tel != nil {
		if _, err := tel.Event(ev); err != nil {
			a.log.Error().Err(err).Str("event", string(ev.Kind)).Msg("event not saved to the outbox")
		}
	}
}

// Run serves until ctx ends, then stops every camera, publishes an offline
// status and closes the relay, the broker connection and the outbox.
func (a *Agent) Run(ctx context.Context) error {
	cfg := a.cfg.Load()
	ob, err := OpenOutbox(filepath.Join(cfg.StateDir, "outbox.db"), int64(cfg.Broker.OutboxMaxMB)<<20)
	if err != nil {
		return err
	}
	defer ob.Close()
	al, err := OpenAudit(cfg)
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.audit = al
	a.mu.Unlock()
	a.auditStart(cfg)
	if err := a.openRetention(cfg); err != nil {
		return err
	}
	brokerURL := cfg.Broker.URL
	if brokerURL == "" {
		br, err := StartEmbeddedBroker(cfg.Broker.EmbeddedListen)
		if err != nil {
			return err
		}
		defer br.Close()
		brokerURL = br.URL()
		a.log.Info().Str("broker", brokerURL).Msg("no broker configured: embedded MQTT broker started on loopback")
	}
	tlsConf, err := cfg.TLSConfig()
	if err != nil {
		return err
	}
	tel, err := NewTelemetry(TelemetryConfig{Site: cfg.Site.ID, Gateway: cfg.Gateway, URL: brokerURL, TLS: tlsConf,
		Username: cfg.Broker.Username, Password: cfg.Broker.password, ClientID: cfg.Broker.ClientID, Version: a.Version,
		KeepAlive: time.Duration(cfg.Broker.KeepAlive), AckTimeout: time.Duration(cfg.Broker.AckTimeout),
		BackoffMax: time.Duration(cfg.Broker.BackoffMax), Outbox: ob, Log: a.log,
		OnCommand: func(verb string, payload []byte) {
			select {
			case a.cmds <- rawCommand{verb, payload}:
			default:
				a.log.Warn().Str("verb", verb).Msg("command queue full: dropped")
			}
		}})
	if err != nil {
		return err
	}

	recUser, recPass := "velo-recorder", randomSecret()
	rel, err := relay.New(cfg.Outputs.RTSPListen, RTSPRealm, func(user, name string) (relay.Secret, bool) {
		if user == recUser {
			if !a.scheduleActive(name) {
				return relay.Secret{}, false // G-4.3: nothing recorded outside the schedule
			}
			return relay.Password(recPass), true
		}
		return a.liveAllowed(user, name)
	})
	if err != nil {
		return err
	}
	rel.OnAccess = func(user, name, remote string, ok bool) {
		if user != recUser {
			a.auditAccess(user, name, remote, ok)
		}
	}
	if err := rel.Start(); err != nil {
		return err
	}
	defer rel.Close()
	a.mu.Lock()
	a.rel, a.tel, a.outbox, a.broker, a.runCtx = rel, tel, ob, brokerURL, ctx
	a.rec = [2]string{recUser, recPass}
	a.mu.Unlock()
	a.log.Info().Str("listen", cfg.Outputs.RTSPListen).Msg("masked rtsp relay up")

	telCtx, telStop := context.WithCancel(context.Background())
	var bg sync.WaitGroup
	bg.Add(1)
	go func() { defer bg.Done(); _ = tel.Run(telCtx) }()
	bg.Add(5)
	go func() { defer bg.Done(); a.auditLoop(ctx) }()
	go func() { defer bg.Done(); a.retentionLoop(ctx) }()
	go func() { defer bg.Done(); a.discoveryLoop(ctx) }()
	go func() { defer bg.Done(); a.commandLoop(ctx) }()
	go func() { defer bg.Done(); a.statsLoop(ctx) }()

	a.mu.Lock()
	for i := range cfg.Cameras {
		a.startWorkerLocked(&cfg.Cameras[i])
	}
	a.mu.Unlock()
	a.beat.Store(time.Now().UnixNano())
	close(a.ready)
	<-ctx.Done()
	a.reloadMu.Lock() // no reload while stopping
	a.camWG.Wait()
	a.reloadMu.Unlock()
	a.sealPending() // no recorder runs now: nothing stays in plaintext
	// Let the last events reach the broker, briefly, then say offline.
	deadline := time.Now().Add(3 * time.Second)
	for tel.Connected() && ob.Stats().Pending > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	telStop()
	bg.Wait()
	a.mu.Lock()
	a.tel = nil
	a.mu.Unlock()
	a.log.Info().Msg("stopped")
	return nil
}

// liveAllowed is the relay's check: the operator's stream secret if user may
// view camera live now (role, assignment, schedule).
func (a *Agent) liveAllowed(user, camera string) (relay.Secret, bool) {
	if !a.scheduleActive(camera) {
		return relay.Secret{}, false // G-4.3: no video at all outside the schedule
	}
	op := a.cfg.Load().Operator(user)
	if op == nil || op.May(ActLiveView, camera) != nil {
		return relay.Secret{}, false
	}
	return op.streamSecret(), true
}

// startWorkerLocked starts a camera's supervisor (a.mu held).
func (a *Agent) startWorkerLocked(cam *CameraConfig) {
	ctx, cancel := context.WithCancel(a.runCtx)
	w := &worker{cam: cam, cancel: cancel, done: make(chan struct{})}
	a.workers[cam.ID] = w
	a.camWG.Add(1)
	go func() {
		defer a.camWG.Done()
		defer close(w.done)
		a.update(cam.ID, func(s *CameraState) { s.Stream = a.StreamURL(cam.ID) })
		a.superviseCamera(ctx, w)
	}()
}

// stopWorker stops a camera's supervisor and waits for it.
func (a *Agent) stopWorker(id string) {
	a.mu.Lock()
	w := a.workers[id]
	delete(a.workers, id)
	a.mu.Unlock()
	if w != nil {
		w.cancel()
		<-w.done
	}
}

// superviseCamera restarts a camera's worker with jittered backoff until
// ctx ends.
func (a *Agent) superviseCamera(ctx context.Context, w *worker) {
	cam := w.cam
	log := a.log.With().Str("camera", cam.ID).Logger()
	backoff := time.Second
	for ctx.Err() == nil {
		if !a.waitSchedule(ctx, cam) {
			return
		}
		start := time.Now()
		runCtx, stopRun := context.WithCancel(ctx)
		off := make(chan struct{})
		go func() { // G-4.3: stop reading the camera when its hours end
			t := time.NewTicker(scheduleTick)
			defer t.Stop()
			for {
				select {
				case <-runCtx.Done():
					return
				case <-t.C:
					if !a.scheduleActive(cam.ID) {
						close(off)
						stopRun()
						return
					}
				}
			}
		}()
		err := a.runCamera(runCtx, w, log)
		stopRun()
		if ctx.Err() != nil {
			return
		}
		select {
		case <-off:
			continue // scheduled off, not a failure
		default:
		}
		a.update(cam.ID, func(s *CameraState) {
			s.Online, s.Approved, s.Error = false, false, errString(err)
			s.FPSIn, s.FPSOut = 0, 0
		})
		a.event(Event{Kind: EventCameraOffline, Camera: cam.ID, Detail: errString(err)})
		if time.Since(start) > time.Minute {
			backoff = time.Second
		}
		d := backoff/2 + mrand.N(backoff/2+1)
		log.Error().Err(err).Dur("retry_in", d).Msg("camera stopped")
		t := time.NewTimer(d)
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
func (a *Agent) runCamera(ctx context.Context, w *worker, log zerolog.Logger) error {
	cam := w.cam
	a.mu.Lock()
	rel, recUser, recPass := a.rel, a.rec[0], a.rec[1]
	a.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.lock, w.pl = nil, nil
		w.mu.Unlock()
	}()
	cl, info, err := cam.Connect(ctx)
	if err != nil {
		return err
	}
	defer cl.CloseIdleConnections()
	a.update(cam.ID, func(s *CameraState) { s.Identity = &info; s.Online = true; s.Error = "" })
	log.Info().Str("model", info.Model).Str("firmware", info.FirmwareVersion).Msg("camera connected")
	a.event(Event{Kind: EventCameraOnline, Camera: cam.ID, Detail: fmt.Sprintf("%s %s firmware %s", info.Manufacturer, info.Model, info.FirmwareVersion)})

	uri, prof, err := ResolveStream(ctx, cl, cam.ID, cam.Profile)
	if err != nil {
		return err
	}

	masker, err := masking.NewMasker(cam.ID, maskspec.FailMode(cam.FailMode))
	if err != nil {
		return err
	}
	gen, err := masker.SetMaskSets(cam.MaskSets())
	if err != nil {
		return err
	}
	a.update(cam.ID, func(s *CameraState) { s.Generation = gen; s.Profile = prof.Token })

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
		var approved []ApprovedPreset
		for _, p := range cam.Presets {
			approved = append(approved, ApprovedPreset{Token: p.Token, Pan: p.Position.Pan, Tilt: p.Position.Tilt, Zoom: p.Position.Zoom, Tolerance: p.Tolerance})
		}
		lock, err := NewLock(LockConfig{Camera: cam.ID, Profile: prof.Token, Interval: time.Duration(cam.PTZLock.Interval),
			Preset: approved[0], Presets: approved, PTZConfig: prof.PTZ.Token},
			cl, masker, func(ev Event) {
				a.update(cam.ID, func(s *CameraState) {
					switch ev.Kind {
					case EventLimitsSet, EventLimitsFailed:
						return
					case EventDrift, EventTamperSuspected:
						t := ev.Time
						s.LastDrift = &t
					}
					s.Approved = ev.Kind == EventLocked || ev.Kind == EventSnapBack
					s.Preset = ev.Preset
					if ev.Position != nil {
						s.Position = ev.Position
					}
				})
				a.event(ev)
			})
		if err != nil {
			return err
		}
		w.mu.Lock()
		w.lock = lock
		w.mu.Unlock()
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
	w.mu.Lock()
	w.pl, w.lastIn, w.lastOut, w.lastAt = pl, 0, 0, time.Now()
	w.mu.Unlock()
	goRun("pipeline", pl.Run)
	if cam.Record.Enabled {
		rec, err := masking.NewRecorder(masking.RecorderConfig{Camera: cam.ID, Source: rel.ReadURL(cam.ID), Username: recUser, Password: recPass,
			Dir: a.cfg.Load().Outputs.RecordDir, SegmentLength: time.Duration(cam.Record.Segment),
			Logf: func(f string, args ...any) { log.Debug().Msg(fmt.Sprintf(f, args...)) }})
		if err != nil {
			cancel()
			wg.Wait()
			return err
		}
		a.mu.Lock()
		a.recs[cam.ID] = true
		a.mu.Unlock()
		goRun("recorder", func(ctx context.Context) error {
			defer func() {
				a.mu.Lock()
				delete(a.recs, cam.ID)
				a.mu.Unlock()
			}()
			return rec.Run(ctx)
		})
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
func (c *CameraConfig) MaskSets() []maskspec.MaskSet {
	if len(c.Presets) == 0 {
		return []maskspec.MaskSet{{Camera: c.ID, Masks: c.Masks}}
	}
	var sets []maskspec.MaskSet
	for _, p := range c.Presets {
		sets = append(sets, maskspec.MaskSet{Camera: c.ID, Preset: p.Token, Masks: p.Masks})
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
