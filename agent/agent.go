package agent

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"velo/agent/attempts"
	"velo/agent/audit"
	"velo/agent/config"
	"velo/agent/console"
	"velo/agent/event"
	"velo/agent/retention"
	"velo/agent/telemetry"
	"velo/masking"
	"velo/masking/relay"
	"velo/onvif"
)

// Options are the agent's settings beyond the site config.
type Options struct {
	// Version is reported in the MQTT status and the audit log.
	Version string
	// Clock is the one time source of the time-dependent parts: schedules,
	// the PTZ lock, retention and audit pruning (default the system clock).
	Clock retention.Clock
	// ScheduleTick is how often a camera's schedule is checked (default 1 s).
	ScheduleTick time.Duration
	// SweepInterval is how often expired segments are deleted (default 30 s).
	SweepInterval time.Duration
	// Attempts bounds how refused logins and unconfigured devices are
	// summarised per source and minute (default: the package's).
	Attempts attempts.Options
	// RelayMaxPause caps the pause a source earns by failed live logins
	// (default: the relay's, 2 s); tests that hammer the relay shorten it.
	RelayMaxPause time.Duration
	// RecordingSocket is where velo recording reaches the recordings
	// (outputs.recording_socket; velo run sets it). Empty: not served.
	RecordingSocket string
}

// Agent runs one gateway: per camera, connect (ONVIF), check identity,
// lock PTZ, mask and serve; telemetry and commands over MQTT; reload of the
// site config. A camera failing never stops the others. Run owns every
// goroutine and returns after all have stopped; the other methods are safe
// from any goroutine.
type Agent struct {
	opts Options
	cfg  atomic.Pointer[config.Config]
	log  zerolog.Logger

	mu      sync.Mutex
	states  map[string]*CameraState
	events  []event.Event
	run     *running // nil outside Run
	workers map[string]*worker
	recs    map[string]bool  // cameras whose recorder is running
	views   approvalBaseline // the ER-4.7 baseline (approvals.go)

	cmds     chan rawCommand
	reloadMu sync.Mutex
	ready    chan struct{}
	beat     atomic.Int64 // unix nanos of the last stats loop round
	// stuck counts capture calls abandoned at their deadline (Health).
	stuck *masking.Stuck
	// consoleURL is where the installer console listens ("" when off).
	consoleURL string

	started  time.Time
	totalsMu sync.Mutex
	totals   map[string]*camTotals // counters since start (stats.go)
}

// running is what Run opened, for the workers and loops.
type running struct {
	ctx      context.Context
	rel      *relay.Server
	tel      *telemetry.Telemetry
	outbox   *telemetry.Outbox
	audit    *audit.Log
	store    *retention.Store // nil when nothing is recorded
	recorder [2]string        // the recorder's relay user and password
	serving  bool             // cameras started: reloads may act
	camWG    sync.WaitGroup
	// attempts summarises refused logins and unconfigured devices per
	// source and minute.
	attempts *attempts.Aggregator
	console  *console.Server // nil when console.listen is not set
}

type rawCommand struct {
	verb    string
	payload []byte
	release func() // gives the sender's queue slot back (admission)
}

// CameraState is what the agent knows about a camera, published retained
// on cameras/<id>/state.
type CameraState struct {
	ID string `json:"id"`
	// Status: starting, streaming, blank (off its approved view),
	// video-lost (connected, no frame coming), offline (not reachable or
	// failing: see error), scheduled-off.
	Status string `json:"status"`
	// Since is when Status last changed (the state is published on
	// change only: the frame counters and rates are on the stats topic).
	Since      time.Time         `json:"since"`
	Online     bool              `json:"online"`
	Approved   bool              `json:"approved"`
	Preset     string            `json:"preset,omitempty"`
	Profile    string            `json:"profile,omitempty"`
	Position   *event.Position   `json:"position,omitempty"`
	Generation uint64            `json:"mask_generation"`
	LastDrift  *time.Time        `json:"last_drift,omitempty"`
	Stream     string            `json:"stream,omitempty"`
	Error      string            `json:"error,omitempty"`
	Identity   *onvif.DeviceInfo `json:"identity,omitempty"`
	// Video is how the camera's video is decoded and encoded.
	Video *VideoState `json:"video,omitempty"`
	// ScheduledOff: outside the active hours (G-4.3), the camera is not
	// read at all; NextOn is when it resumes.
	ScheduledOff bool       `json:"-"`
	NextOn       *time.Time `json:"next_on,omitempty"`
	// VideoLost: connected, but no frame captured for a while (status
	// video-lost); the capture keeps reconnecting.
	VideoLost bool `json:"-"`
}

// VideoState is a camera's video path (masking.VideoPath, published).
type VideoState struct {
	Codec    string `json:"codec,omitempty"`
	Decoder  string `json:"decoder,omitempty"`
	Backend  string `json:"backend,omitempty"`
	Encoder  string `json:"encoder,omitempty"`
	OutCodec string `json:"out_codec,omitempty"`
	Fallback string `json:"fallback,omitempty"`
}

// status derives the published status from the flags.
func (s *CameraState) status() string {
	switch {
	case s.ScheduledOff:
		return "scheduled-off"
	case !s.Online:
		return "offline"
	case s.VideoLost:
		return "video-lost"
	case !s.Approved:
		return "blank"
	}
	return "streaming"
}

// New builds an agent from a loaded config (no I/O).
func New(cfg *config.Config, log zerolog.Logger, opts Options) *Agent {
	if opts.Clock == nil {
		opts.Clock = retention.NewSystemClock()
	}
	if opts.ScheduleTick <= 0 {
		opts.ScheduleTick = time.Second
	}
	if opts.SweepInterval <= 0 {
		opts.SweepInterval = 30 * time.Second
	}
	a := &Agent{opts: opts, log: log, states: map[string]*CameraState{}, workers: map[string]*worker{}, recs: map[string]bool{},
		cmds: make(chan rawCommand, 64), ready: make(chan struct{}), stuck: masking.NewStuck(0, 0),
		started: time.Now(), totals: map[string]*camTotals{}}
	a.cfg.Store(cfg)
	return a
}

// Ready is closed once Run has its outbox, broker connection attempt,
// relay and camera workers started (systemd READY=1).
func (a *Agent) Ready() <-chan struct{} { return a.ready }

// Healthy reports whether Health finds nothing wrong.
func (a *Agent) Healthy() bool { return a.Health() == nil }

// Health says what is wrong, if anything: the housekeeping loop has not
// run in the last 30 s; a camera's frame path is blocked (neither
// streaming nor lost and retrying: a call past its deadline, an encoder
// that stopped taking frames); or hung capture calls have piled up to
// their bound, which only a restart clears. The systemd watchdog pings
// only while it is nil, so systemd restarts a velo that is wedged.
func (a *Agent) Health() error {
	if d := time.Since(time.Unix(0, a.beat.Load())); d >= 30*time.Second {
		return fmt.Errorf("housekeeping loop last ran %v ago", d.Round(time.Second))
	}
	if err := a.stuck.Full(); err != nil {
		return err
	}
	for _, w := range a.workerList() {
		w.mu.Lock()
		pl := w.pl
		w.mu.Unlock()
		if pl != nil && !pl.Alive() {
			return fmt.Errorf("camera %q: frame path blocked", w.cam.ID)
		}
	}
	return nil
}

// Config returns the config in force.
func (a *Agent) Config() *config.Config { return a.cfg.Load() }

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
func (a *Agent) Events() []event.Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]event.Event(nil), a.events...)
}

// StreamURL is where operators read a camera's masked stream.
func (a *Agent) StreamURL(id string) string {
	return fmt.Sprintf("rtsp://%s/%s", a.cfg.Load().Outputs.RTSPListen, id)
}

// telemetry is the MQTT side while Run runs (nil otherwise).
func (a *Agent) telemetry() *telemetry.Telemetry {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.run == nil {
		return nil
	}
	return a.run.tel
}

// update changes a camera's state and publishes it.
func (a *Agent) update(id string, f func(*CameraState)) {
	a.mu.Lock()
	s := a.states[id]
	if s == nil {
		s = &CameraState{ID: id, Status: "starting"}
		a.states[id] = s
	}
	prev := s.Status
	f(s)
	s.Status = s.status()
	if s.Status != prev || s.Since.IsZero() {
		s.Since = a.opts.Clock.Now().UTC()
	}
	c := *s
	a.mu.Unlock()
	if tel := a.telemetry(); tel != nil {
		tel.SetState(id, c)
	}
}

// emit is the event funnel: every event is kept (the last 1000), logged,
// written to the audit log and queued for MQTT.
func (a *Agent) emit(ev event.Event) { _ = a.emitAudited(ev) }

// emitAudited is emit returning the audit log's error (already logged
// and published): for an event that must be on record before what it
// records is done.
func (a *Agent) emitAudited(ev event.Event) error {
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	a.mu.Lock()
	a.events = append(a.events, ev)
	if len(a.events) > 1000 {
		a.events = a.events[len(a.events)-1000:]
	}
	a.mu.Unlock()
	a.countEvent(ev)
	a.logEvent(ev)
	aerr := a.auditEvent(ev)
	if tel := a.telemetry(); tel != nil {
		if _, err := tel.Event(ev); err != nil {
			a.log.Error().Err(err).Str("event", string(ev.Kind)).Msg("event not saved to the outbox")
		}
	}
	return aerr
}

func (a *Agent) logEvent(ev event.Event) {
	l := a.log.Info()
	if ev.Kind.Warning() {
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
}

// workerList is a snapshot of the running workers.
func (a *Agent) workerList() []*worker {
	a.mu.Lock()
	defer a.mu.Unlock()
	ws := make([]*worker, 0, len(a.workers))
	for _, w := range a.workers {
		ws = append(ws, w)
	}
	return ws
}
