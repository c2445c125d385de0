package ptzlock

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"velo/agent/event"
	"velo/masking"
	"velo/masking/maskspec"
	"velo/onvif"
	"velo/onvif/camsim"
)

// syncBuffer is a log sink the lock's goroutines and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) count(sub string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Count(s.b.String(), sub)
}

// eventsRig is a camsim PTZ camera (preset "1" at pan 0.1, zoom 0.2) and a
// running lock on it.
type eventsRig struct {
	cam    *camsim.Camera
	lock   *Lock
	masker *masking.Masker
	log    *eventLog
	logs   *syncBuffer
	done   chan error
	cancel context.CancelFunc
}

// eventStyles are the camera kinds the event tests run on: ONVIF-style
// events (motion with position, PTZPresets/Left) and Axis-style (motion
// flag only: the lock must read the status to judge).
var eventStyles = []struct {
	name string
	cam  func(*camsim.CameraConfig)
}{
	{"position-and-presets", func(c *camsim.CameraConfig) { c.Events = true }},
	{"move-flag-only", func(c *camsim.CameraConfig) { c.Events, c.Quirk.EventsMoveOnly = true, true }},
}

func startEventsRig(t *testing.T, id, addr string, style func(*camsim.CameraConfig), cfg LockConfig, prep func(*camsim.Camera)) *eventsRig {
	t.Helper()
	cc := camsim.CameraConfig{ID: id, Address: addr, NoVideo: true, Username: "op", Password: "pw-" + id, Scene: "ptz",
		PTZ: &camsim.PTZConfig{PanTiltSpeed: 1, ZoomSpeed: 1, Presets: []camsim.PresetConfig{{Token: "1", Name: "entrance", Pan: 0.1, Zoom: 0.2}}}}
	if style != nil {
		style(&cc)
	}
	sim := camsim.StartForTest(t, cc)
	r := &eventsRig{cam: sim.Camera(id), log: &eventLog{ch: make(chan event.Event, 64)}, logs: &syncBuffer{}, done: make(chan error, 1)}
	if prep != nil {
		prep(r.cam)
	}
	c, err := onvif.NewClient(onvif.Config{XAddr: r.cam.XAddr(), Username: "op", Password: "pw-" + id})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	r.cancel = cancel
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	r.masker, _ = masking.NewMasker(id, maskspec.FailBlank)
	r.masker.SetSettle(0)
	if _, err := r.masker.SetMaskSets([]maskspec.MaskSet{{Preset: "1"}}); err != nil {
		t.Fatal(err)
	}
	cfg.Camera, cfg.Profile = id, "main"
	cfg.Preset = ApprovedPreset{Token: "1", Pan: 0.1, Zoom: 0.2, Tolerance: 0.01}
	cfg.Log = zerolog.New(r.logs)
	if r.lock, err = NewLock(cfg, c, r.masker, r.log.add); err != nil {
		t.Fatal(err)
	}
	go func() { r.done <- r.lock.Run(ctx) }()
	t.Cleanup(r.stop)
	r.log.wait(t, event.Locked, 10*time.Second)
	return r
}

// stop ends Run and waits for it (and so for its pull loop). Idempotent.
func (r *eventsRig) stop() {
	r.cancel()
	if r.done != nil {
		<-r.done
		r.done = nil
	}
}

// With events, a hand move on the camera's web page blanks the output
// within one pull, long before the next poll (Interval 5 s); the camera is
// moved back and the output restored. The subscription ends with Run.
func TestPTZLockEventsSeeHandMoveWithinOnePull(t *testing.T) {
	for i, style := range eventStyles {
		t.Run(style.name, func(t *testing.T) {
			testHandMoveWithinOnePull(t, fmt.Sprintf("127.0.96.%d", 11+i), style.cam)
		})
	}
}

func testHandMoveWithinOnePull(t *testing.T, addr string, style func(*camsim.CameraConfig)) {
	r := startEventsRig(t, "evlock", addr, style, LockConfig{Interval: 5 * time.Second, RetryMove: time.Second}, nil)
	if n := r.cam.Subscriptions(); n != 1 {
		t.Fatalf("%d subscriptions on the camera, want 1", n)
	}
	for round := 1; round <= 2; round++ {
		time.Sleep(300 * time.Millisecond) // mid-way between polls
		tampered := time.Now()
		r.cam.Tamper(camsim.Position{Pan: 0.6, Tilt: 0.2, Zoom: 0.5})
		ev := r.log.wait(t, event.Drift, 5*time.Second)
		detect := time.Since(tampered)
		if detect > 500*time.Millisecond {
			t.Errorf("round %d: drift after %v with events (poll interval 5 s)", round, detect)
		}
		if v, why := frameVerdict(r.masker); v != masking.Blanked || why != masking.ReasonNotApproved {
			t.Fatalf("round %d: after drift frames are %v (%s)", round, v, why)
		}
		if ev.Position == nil {
			t.Error("drift without position")
		}
		r.log.wait(t, event.SnapBack, 5*time.Second)
		if v, _ := frameVerdict(r.masker); v != masking.Masked {
			t.Fatalf("round %d: after snap-back frames are %v", round, v)
		}
		t.Logf("round %d: drift after %v", round, detect)
	}
	r.stop()
	if n := r.cam.Subscriptions(); n != 0 {
		t.Errorf("%d subscriptions left after Run returned", n)
	}
}

// A move-and-return shorter than the poll interval (the camera is back
// before the next poll) is reported as drift with events. Without events it
// is not seen at all: make style nil below (no events) and the test fails.
func TestPTZLockEventsSeeMoveAndReturn(t *testing.T) {
	for i, style := range eventStyles {
		t.Run(style.name, func(t *testing.T) {
			r := startEventsRig(t, "evret", fmt.Sprintf("127.0.96.%d", 21+i), style.cam, LockConfig{Interval: 5 * time.Second, RetryMove: time.Second}, nil)
			time.Sleep(300 * time.Millisecond)
			r.cam.Tamper(camsim.Position{Pan: 0.4, Tilt: 0, Zoom: 0.2})
			time.Sleep(150 * time.Millisecond)
			r.cam.Tamper(camsim.Position{Pan: 0.1, Tilt: 0, Zoom: 0.2}) // back within 0.3 s
			ev := r.log.wait(t, event.Drift, 2*time.Second)
			t.Logf("move-and-return reported: %s", ev.Detail)
			r.log.wait(t, event.SnapBack, 5*time.Second)
		})
	}
}

// Events failing (the pulls refused) are reported once; polling goes on and
// still sees a hand move; the subscription is retried, and its return is
// reported. A camera refusing subscriptions from the start is the same.
func TestPTZLockEventsLostFallsBackToPolling(t *testing.T) {
	const interval = 100 * time.Millisecond
	r := startEventsRig(t, "evlost", "127.0.96.31", eventStyles[0].cam, LockConfig{Interval: interval, RetryMove: time.Second, EventRetry: 100 * time.Millisecond}, nil)
	r.cam.SetFault("PullMessages", "ter:Receiver/ter:Action")
	r.cam.Tamper(camsim.Position{Pan: 0.3, Tilt: 0, Zoom: 0.2}) // wakes the pending pull into the fault
	r.log.wait(t, event.Drift, 2*time.Second)
	r.log.wait(t, event.SnapBack, 5*time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for r.cam.Calls("CreatePullPointSubscription") < 4 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := r.logs.count("PTZ events lost"); n != 1 {
		t.Errorf("events lost reported %d times, want once (%d subscription attempts)", n, r.cam.Calls("CreatePullPointSubscription"))
	}
	// Polling alone (events failing) still blanks within a poll.
	tampered := time.Now()
	r.cam.Tamper(camsim.Position{Pan: 0.6, Tilt: 0.2, Zoom: 0.5})
	r.log.wait(t, event.Drift, 2*time.Second)
	if d := time.Since(tampered); d > 2*interval+100*time.Millisecond {
		t.Errorf("drift after %v while polling every %v", d, interval)
	}
	r.log.wait(t, event.SnapBack, 5*time.Second)
	r.cam.SetFault("PullMessages", "")
	deadline = time.Now().Add(5 * time.Second)
	for r.logs.count("PTZ events restored") == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if r.logs.count("PTZ events restored") != 1 {
		t.Error("return of the events not reported")
	}

	refused := startEventsRig(t, "evrefused", "127.0.96.32", eventStyles[0].cam, LockConfig{Interval: interval, EventRetry: time.Minute},
		func(c *camsim.Camera) { c.SetFault("CreatePullPointSubscription", "ter:Receiver/ter:Action") })
	refused.cam.Tamper(camsim.Position{Pan: 0.6, Tilt: 0.2, Zoom: 0.5})
	refused.log.wait(t, event.Drift, 2*time.Second)
	if n := refused.logs.count("PTZ events lost"); n != 1 {
		t.Errorf("refused subscription reported %d times, want once", n)
	}
}

// A camera without events: no subscription is attempted, polling as before.
func TestPTZLockWithoutEventsPollsOnly(t *testing.T) {
	r := startEventsRig(t, "evnone", "127.0.96.33", nil, LockConfig{Interval: 100 * time.Millisecond}, nil)
	r.cam.Tamper(camsim.Position{Pan: 0.6, Tilt: 0.2, Zoom: 0.5})
	r.log.wait(t, event.Drift, 2*time.Second)
	if n := r.cam.Calls("CreatePullPointSubscription"); n != 0 {
		t.Errorf("%d subscriptions attempted on a camera without events", n)
	}
	if r.logs.count("PTZ events") != 0 {
		t.Error("events reported lost on a camera that has none")
	}
}
