package camsim

import (
	"crypto/sha1"
	"fmt"
	"math"
	"sort"
	"strconv"
	"sync"
	"time"
)

// Position is a PTZ position in generic spaces (pan, tilt −1..1; zoom 0..1).
type Position struct {
	Pan, Tilt, Zoom float64
}

// Range is a closed interval; ±Inf disables a bound.
type Range struct{ Min, Max float64 }

func (r Range) clamp(v float64) float64 { return math.Max(r.Min, math.Min(r.Max, v)) }

// Mask is a Media2 mask stored by the camera (ONVIF coordinates).
type Mask struct {
	Token   string
	Config  string
	Points  [][2]float64
	Type    string
	Color   [3]float64
	HasCol  bool
	Enabled bool
}

type preset struct {
	token, name string
	pos         Position
}

// Camera is one simulated camera's state. Methods are safe for concurrent use.
type Camera struct {
	cfg   CameraConfig
	start time.Time // sim start (for ClockStart)
	logf  func(string, ...any)

	mu        sync.Mutex
	skew      time.Duration
	clockBase *time.Time
	// PTZ motor: moves from `from` (at t0) toward `target` at finite speed.
	from, target Position
	t0           time.Time
	panLim       Range
	tiltLim      Range
	zoomLim      Range
	presets      []preset
	nextPreset   int
	masks        []Mask
	nextMask     int
	view         Tamper            // what was done to the picture on site
	faults       map[string]string // action → subcode
	nonces       map[string]time.Time
	dnonces      map[string]time.Time
	calls        map[string]int
	ev           eventHub // Events service (events.go)
}

func newCamera(cfg CameraConfig, now time.Time, logf func(string, ...any)) *Camera {
	c := &Camera{
		cfg: cfg, start: now, logf: logf, skew: time.Duration(cfg.ClockSkew),
		panLim: Range{-1, 1}, tiltLim: Range{-1, 1}, zoomLim: Range{0, 1},
		faults: map[string]string{}, nonces: map[string]time.Time{}, dnonces: map[string]time.Time{}, calls: map[string]int{},
		nextPreset: 1, nextMask: 1, t0: now,
	}
	if cfg.ClockStart != "" {
		t, _ := time.Parse(time.RFC3339, cfg.ClockStart) // validated
		c.clockBase = &t
	}
	if p := cfg.PTZ; p != nil {
		home := Position{p.Home.Pan, p.Home.Tilt, p.Home.Zoom}
		c.from, c.target = home, home
		for _, pr := range p.Presets {
			c.presets = append(c.presets, preset{token: pr.Token, name: pr.Name, pos: Position{pr.Pan, pr.Tilt, pr.Zoom}})
			if n, err := strconv.Atoi(pr.Token); err == nil && n >= c.nextPreset {
				c.nextPreset = n + 1
			}
		}
	}
	return c
}

// ID returns the camera id.
func (c *Camera) ID() string { return c.cfg.ID }

// Config returns the camera's (validated) config.
func (c *Camera) Config() CameraConfig { return c.cfg }

// Clock returns the camera's idea of UTC now.
func (c *Camera) Clock() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.clockLocked(time.Now())
}

func (c *Camera) clockLocked(now time.Time) time.Time {
	if c.clockBase != nil {
		return c.clockBase.Add(now.Sub(c.start)).Add(c.skew).UTC()
	}
	return now.Add(c.skew).UTC()
}

// SetClockSkew changes the camera clock offset at run time.
func (c *Camera) SetClockSkew(d time.Duration) {
	c.mu.Lock()
	c.skew = d
	c.mu.Unlock()
}

// SetFault makes every call of action (e.g. "GetPresets") answer with a SOAP
// fault carrying subcode (e.g. "ter:InvalidArgVal/ter:NoProfile",
// "ter:ActionNotSupported", "ter:NotAuthorized"). Empty subcode clears it.
func (c *Camera) SetFault(action, subcode string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if subcode == "" {
		delete(c.faults, action)
		return
	}
	c.faults[action] = subcode
}

func (c *Camera) fault(action string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls[action]++
	return c.faults[action]
}

// Calls returns how many times action was requested.
func (c *Camera) Calls(action string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[action]
}

// Requests returns how many SOAP requests the camera has received.
func (c *Camera) Requests() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.calls {
		n += v
	}
	return n
}

// --- PTZ motor -------------------------------------------------------------

// Position returns the current position and whether the motor is moving.
func (c *Camera) Position() (Position, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.posLocked(time.Now())
}

func (c *Camera) posLocked(now time.Time) (Position, bool) {
	p := c.cfg.PTZ
	if p == nil {
		return Position{}, false
	}
	dt := now.Sub(c.t0).Seconds()
	step := func(a, b, speed float64) (float64, bool) {
		d := b - a
		max := speed * dt
		if math.Abs(d) <= max {
			return b, false
		}
		return a + math.Copysign(max, d), true
	}
	var m1, m2, m3 bool
	var cur Position
	cur.Pan, m1 = step(c.from.Pan, c.target.Pan, p.PanTiltSpeed)
	cur.Tilt, m2 = step(c.from.Tilt, c.target.Tilt, p.PanTiltSpeed)
	cur.Zoom, m3 = step(c.from.Zoom, c.target.Zoom, p.ZoomSpeed)
	return cur, m1 || m2 || m3
}

// moveLocked starts a move to target, clamped by the limits when limited.
func (c *Camera) moveLocked(target Position, limited bool) {
	now := time.Now()
	cur, _ := c.posLocked(now)
	if limited {
		target.Pan = c.panLim.clamp(target.Pan)
		target.Tilt = c.tiltLim.clamp(target.Tilt)
		target.Zoom = c.zoomLim.clamp(target.Zoom)
	}
	target.Pan = Range{-1, 1}.clamp(target.Pan)
	target.Tilt = Range{-1, 1}.clamp(target.Tilt)
	target.Zoom = Range{0, 1}.clamp(target.Zoom)
	c.from, c.target, c.t0 = cur, target, now
	c.motionLocked(cur, now)
}

// Tamper moves the camera as a person on the camera's own web page would:
// directly, at motor speed, ignoring ONVIF PTZ limits (web UIs of many
// cameras are not bound by them).
func (c *Camera) Tamper(p Position) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.moveLocked(p, false)
}

// TamperView changes the camera's picture as a person on site would (a
// bump, the camera's own menu, something on the lens): t replaces the
// previous view tamper, and Tamper{} restores the view. It works on fixed
// and PTZ cameras alike and does not move the PTZ motor.
func (c *Camera) TamperView(t Tamper) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.view = t
}

// ViewTamper returns the view tamper in force.
func (c *Camera) ViewTamper() Tamper {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.view
}

// SceneState is what the camera films at now besides its position: the
// scene clock (time since the simulator started), the light of its day
// cycle, its traffic and its view tamper. RenderI420 with it and Position
// gives the frame the camera streams.
func (c *Camera) SceneState(now time.Time) SceneState {
	st := DayCycle(now.Sub(c.start), time.Duration(c.cfg.DayCycle))
	st.Traffic = c.cfg.Traffic
	st.Tamper = c.ViewTamper()
	return st
}

// Limits returns the pan, tilt and zoom limits.
func (c *Camera) Limits() (pan, tilt, zoom Range) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.panLim, c.tiltLim, c.zoomLim
}

func (c *Camera) presetLocked(token string) (int, bool) {
	for i, p := range c.presets {
		if p.token == token {
			return i, true
		}
	}
	return -1, false
}

// Presets returns the presets sorted by token order of creation.
func (c *Camera) Presets() []PresetConfig {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]PresetConfig, 0, len(c.presets))
	for _, p := range c.presets {
		out = append(out, PresetConfig{Token: p.token, Name: p.name, Pan: p.pos.Pan, Tilt: p.pos.Tilt, Zoom: p.pos.Zoom})
	}
	return out
}

// Masks returns a copy of the camera's masks sorted by token.
func (c *Camera) Masks() []Mask {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := append([]Mask(nil), c.masks...)
	sort.Slice(out, func(i, j int) bool { return out[i].Token < out[j].Token })
	return out
}

// stableUUID derives a UUID from a string (so endpoints stay the same across
// restarts, like a real camera's).
func stableUUID(s string) string {
	h := sha1.Sum([]byte("velo-camsim:" + s))
	h[6] = h[6]&0x0f | 0x50
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}
