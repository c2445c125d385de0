package ptzlock

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"velo/agent/event"
	"velo/masking"
	"velo/masking/maskspec"
	"velo/onvif"
	"velo/onvif/camsim"
)

type eventLog struct {
	mu sync.Mutex
	ev []event.Event
	ch chan event.Event
}

func (e *eventLog) add(ev event.Event) {
	e.mu.Lock()
	e.ev = append(e.ev, ev)
	e.mu.Unlock()
	e.ch <- ev
}

func (e *eventLog) wait(t *testing.T, kind event.Kind, within time.Duration) event.Event {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case ev := <-e.ch:
			if ev.Kind == kind {
				return ev
			}
		case <-deadline:
			t.Fatalf("no %s event within %v", kind, within)
		}
	}
}

// frameVerdict pushes one frame through the masker as the pipeline would.
func frameVerdict(m *masking.Masker) (masking.Verdict, masking.Reason) {
	f := masking.NewFrame(64, 36)
	f.Captured = time.Now()
	return m.Process(f)
}

func TestPTZLockAgainstSimulator(t *testing.T) {
	cfg := camsim.CameraConfig{ID: "lock", Address: "127.0.96.1", NoVideo: true, Username: "op", Password: "pw-lock", Scene: "ptz",
		PTZ: &camsim.PTZConfig{PanTiltSpeed: 1, ZoomSpeed: 1, Presets: []camsim.PresetConfig{
			{Token: "1", Name: "entrance", Pan: 0.1, Tilt: 0, Zoom: 0.2}, {Token: "2", Name: "street", Pan: -0.5, Tilt: -0.3, Zoom: 0}}}}
	sim := camsim.StartForTest(t, cfg)
	cam := sim.Camera("lock")
	c, err := onvif.NewClient(onvif.Config{XAddr: cam.XAddr(), Username: "op", Password: "pw-lock"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	m, _ := masking.NewMasker("lock", maskspec.FailBlank)
	m.SetSettle(0)
	if _, err := m.SetMaskSets([]maskspec.MaskSet{{Preset: "1", Masks: []maskspec.Mask{{Name: "door", Polygon: []maskspec.Point{{X: 0.1, Y: 0.1}, {X: 0.3, Y: 0.1}, {X: 0.3, Y: 0.4}}}}}}); err != nil {
		t.Fatal(err)
	}
	log := &eventLog{ch: make(chan event.Event, 64)}
	const interval = 100 * time.Millisecond
	lock, err := NewLock(LockConfig{Camera: "lock", Profile: "main", Interval: interval, EscalateAfter: 2, RetryMove: time.Second,
		Preset: ApprovedPreset{Token: "1", Pan: 0.1, Tilt: 0, Zoom: 0.2, Tolerance: 0.01}}, c, m, log.add)
	if err != nil {
		t.Fatal(err)
	}
	if v, why := frameVerdict(m); v != masking.Blanked || why != masking.ReasonNotApproved {
		t.Fatalf("before the lock runs: %v %s", v, why)
	}
	done := make(chan error, 1)
	go func() { done <- lock.Run(ctx) }()

	// Start: goes to the approved preset, output stays blank until there.
	log.wait(t, event.Locked, 10*time.Second)
	if v, _ := frameVerdict(m); v != masking.Masked {
		t.Fatalf("locked but frames not masked normally: %v", v)
	}
	for round := 1; round <= 2; round++ {
		// Someone moves the camera from its web page.
		tampered := time.Now()
		cam.Tamper(camsim.Position{Pan: 0.6, Tilt: 0.2, Zoom: 0.5})
		ev := log.wait(t, event.Drift, 5*time.Second)
		detect := time.Since(tampered)
		// Blank within one poll interval (plus the status round trip).
		if detect > 2*interval+100*time.Millisecond {
			t.Errorf("round %d: drift detected after %v, poll interval %v", round, detect, interval)
		}
		if v, why := frameVerdict(m); v != masking.Blanked || why != masking.ReasonNotApproved {
			t.Fatalf("round %d: after drift frames are %v (%s), want blanked", round, v, why)
		}
		if ev.Position == nil {
			t.Errorf("drift event without position")
		}
		if round == 2 {
			log.wait(t, event.TamperSuspected, time.Second)
		}
		// While the camera moves back, frames stay blank.
		if p, moving := cam.Position(); moving || p.Pan != 0.1 {
			if v, _ := frameVerdict(m); v != masking.Blanked {
				t.Fatal("output restored while the camera is still off its view")
			}
		}
		log.wait(t, event.SnapBack, 10*time.Second)
		p, _ := cam.Position()
		if d := p.Pan - 0.1; d > 0.01 || d < -0.01 {
			t.Errorf("snap-back reported at pan %.3f", p.Pan)
		}
		if v, _ := frameVerdict(m); v != masking.Masked {
			t.Fatalf("round %d: after snap-back frames are %v", round, v)
		}
		t.Logf("round %d: drift detected after %v", round, detect)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestPTZLockUnknownPositionIsNotApproved(t *testing.T) {
	cfg := camsim.CameraConfig{ID: "unk", Address: "127.0.96.2", NoVideo: true, Username: "op", Password: "pw", Scene: "ptz",
		PTZ: &camsim.PTZConfig{PanTiltSpeed: 4, Presets: []camsim.PresetConfig{{Token: "1", Name: "a"}}}}
	sim := camsim.StartForTest(t, cfg)
	cam := sim.Camera("unk")
	c, _ := onvif.NewClient(onvif.Config{XAddr: cam.XAddr(), Username: "op", Password: "pw"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, _ := masking.NewMasker("unk", maskspec.FailDrop)
	m.SetSettle(0)
	_, _ = m.SetMaskSets([]maskspec.MaskSet{{Preset: "1"}})
	log := &eventLog{ch: make(chan event.Event, 64)}
	lock, _ := NewLock(LockConfig{Camera: "unk", Profile: "main", Interval: 50 * time.Millisecond,
		Preset: ApprovedPreset{Token: "1", Tolerance: 0.01}}, c, m, log.add)
	go func() { _ = lock.Run(ctx) }()
	log.wait(t, event.Locked, 5*time.Second)
	cam.SetFault("GetStatus", "ter:Action/ter:Busy")
	log.wait(t, event.PositionUnknown, 2*time.Second)
	if v, why := frameVerdict(m); v != masking.Dropped || why != masking.ReasonNotApproved {
		t.Fatalf("unknown position: frames %v (%s)", v, why)
	}
	cam.SetFault("GetStatus", "")
	log.wait(t, event.SnapBack, 2*time.Second)
	if v, _ := frameVerdict(m); v != masking.Masked {
		t.Fatalf("position known again: %v", v)
	}
}

func TestNewLockValidates(t *testing.T) {
	for _, tc := range []LockConfig{
		{Camera: "c", Profile: "main", Preset: ApprovedPreset{Token: "", Tolerance: 0.01}},
		{Camera: "c", Profile: "", Preset: ApprovedPreset{Token: "1", Tolerance: 0.01}},
		{Camera: "c", Profile: "main", Preset: ApprovedPreset{Token: "1", Tolerance: 0}},
		{Camera: "c", Profile: "main", Preset: ApprovedPreset{Token: "1", Tolerance: 0.9}},
	} {
		if _, err := NewLock(tc, nil, nil, nil); err == nil {
			t.Errorf("%+v accepted", tc)
		}
	}
}

// Once locked, the lock sets the camera's PTZ limits to the box around the
// approved presets and reads them back; Apply refuses an unapproved token,
// and for an approved one blanks first and restores only when the camera is
// confirmed at the new view. A camera that cannot limit is reported.
func TestPTZLockApplyAndLimits(t *testing.T) {
	presets := []camsim.PresetConfig{{Token: "1", Name: "a", Pan: 0.1, Zoom: 0.2}, {Token: "2", Name: "b", Pan: -0.5, Tilt: -0.3}, {Token: "3", Name: "c", Pan: 0.9}}
	sim := camsim.StartForTest(t,
		camsim.CameraConfig{ID: "lim", Address: "127.0.96.2", NoVideo: true, Username: "op", Password: "pw", Scene: "ptz",
			PTZ: &camsim.PTZConfig{PanTiltSpeed: 2, ZoomSpeed: 2, Presets: presets}},
		camsim.CameraConfig{ID: "nolim", Address: "127.0.96.3", NoVideo: true, Username: "op", Password: "pw", Scene: "ptz",
			PTZ: &camsim.PTZConfig{PanTiltSpeed: 2, ZoomSpeed: 2, Presets: presets, NoLimits: true}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	approved := []ApprovedPreset{{Token: "1", Pan: 0.1, Zoom: 0.2, Tolerance: 0.01}, {Token: "2", Pan: -0.5, Tilt: -0.3, Tolerance: 0.01}}
	start := func(id string) (*Lock, *masking.Masker, *eventLog) {
		c, err := onvif.NewClient(onvif.Config{XAddr: sim.Camera(id).XAddr(), Username: "op", Password: "pw"})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		m, _ := masking.NewMasker(id, maskspec.FailBlank)
		m.SetSettle(0)
		if _, err := m.SetMaskSets([]maskspec.MaskSet{{Preset: "1"}, {Preset: "2"}}); err != nil {
			t.Fatal(err)
		}
		log := &eventLog{ch: make(chan event.Event, 64)}
		lock, err := NewLock(LockConfig{Camera: id, Profile: "main", Interval: 50 * time.Millisecond, Preset: approved[0], Presets: approved, PTZConfig: "ptzcfg0"}, c, m, log.add)
		if err != nil {
			t.Fatal(err)
		}
		go lock.Run(ctx)
		return lock, m, log
	}
	lock, m, log := start("lim")
	log.wait(t, event.Locked, 10*time.Second)
	ev := log.wait(t, event.LimitsSet, 5*time.Second)
	pan, tilt, zoom := sim.Camera("lim").Limits()
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	if !near(pan.Min, -0.51) || !near(pan.Max, 0.11) || !near(tilt.Min, -0.31) || !near(tilt.Max, 0.01) || !near(zoom.Min, 0) || !near(zoom.Max, 0.21) {
		t.Errorf("limits on the camera: pan %v tilt %v zoom %v (event %q)", pan, tilt, zoom, ev.Detail)
	}
	if err := lock.Apply(ctx, "3"); !errors.Is(err, ErrNotApproved) {
		t.Errorf("unapproved preset: %v", err)
	}
	applied := make(chan error, 1)
	go func() { applied <- lock.Apply(ctx, "2") }()
	log.wait(t, event.PresetApplying, 5*time.Second)
	if v, why := frameVerdict(m); v != masking.Blanked || why != masking.ReasonNotApproved {
		t.Errorf("during preset/apply frames are %v (%s), want blanked", v, why)
	}
	if err := <-applied; err != nil {
		t.Fatal(err)
	}
	// Apply returns once the position is confirmed inside the preset's
	// tolerance (the motor may still be finishing its last hundredth).
	if p, _ := sim.Camera("lim").Position(); math.Abs(p.Pan+0.5) > 0.01 || math.Abs(p.Tilt+0.3) > 0.01 {
		t.Errorf("Apply returned with the camera at %+v, outside preset 2's tolerance", p)
	}
	if v, _ := frameVerdict(m); v != masking.Masked || lock.Preset() != "2" {
		t.Errorf("after Apply: %v, preset %s", v, lock.Preset())
	}
	_, _, nlog := start("nolim")
	if ev := nlog.wait(t, event.LimitsFailed, 10*time.Second); !strings.Contains(ev.Detail, "not supported") {
		t.Errorf("limits_failed detail %q", ev.Detail)
	}
}

// A camera configured as fixed that has PTZ is held at the position
// recorded for its view: a hand move blanks it and AbsoluteMove brings it
// back (there is no preset token to go to).
func TestPTZLockHoldsAFixedViewByPosition(t *testing.T) {
	cfg := camsim.CameraConfig{ID: "fx", Address: "127.0.96.4", NoVideo: true, Username: "op", Password: "pw", Scene: "ptz",
		PTZ: &camsim.PTZConfig{PanTiltSpeed: 4, ZoomSpeed: 4}}
	sim := camsim.StartForTest(t, cfg)
	cam := sim.Camera("fx")
	c, err := onvif.NewClient(onvif.Config{XAddr: cam.XAddr(), Username: "op", Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	m, _ := masking.NewMasker("fx", maskspec.FailDrop)
	m.SetSettle(0)
	_, _ = m.SetMaskSets([]maskspec.MaskSet{{Preset: ""}})
	log := &eventLog{ch: make(chan event.Event, 64)}
	lock, err := NewLock(LockConfig{Camera: "fx", Profile: "main", Interval: 50 * time.Millisecond,
		Preset: ApprovedPreset{Fixed: true, Pan: 0.2, Tilt: 0.1, Zoom: 0.3, Tolerance: 0.01}}, c, m, log.add)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = lock.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	log.wait(t, event.Locked, 10*time.Second)
	if v, _ := frameVerdict(m); v != masking.Masked {
		t.Fatalf("locked fixed view: frames %v", v)
	}
	cam.Tamper(camsim.Position{Pan: -0.4, Tilt: 0.1, Zoom: 0.3})
	log.wait(t, event.Drift, 5*time.Second)
	log.wait(t, event.SnapBack, 10*time.Second)
	if p, _ := cam.Position(); math.Abs(p.Pan-0.2) > 0.01 || math.Abs(p.Zoom-0.3) > 0.01 {
		t.Errorf("not moved back to the recorded position: %+v", p)
	}
}
