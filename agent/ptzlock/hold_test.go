package ptzlock

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"velo/agent/event"
	"velo/masking"
	"velo/masking/maskspec"
	"velo/onvif"
	"velo/onvif/camsim"
)

// A commissioning hold against the simulator: held, the lock lets the
// camera be moved outside its approved box (limits opened) with the
// output blank and no snap-back; a preset is stored at the new position;
// preset/apply is refused meanwhile; released, the camera goes back to the
// approved view and the output comes back only then (snap_back).
func TestPTZLockCommissioningHold(t *testing.T) {
	cfg := camsim.CameraConfig{ID: "hold", Address: "127.0.96.41", NoVideo: true, Username: "op", Password: "pw-hold", Scene: "ptz",
		PTZ: &camsim.PTZConfig{PanTiltSpeed: 2, ZoomSpeed: 2, Presets: []camsim.PresetConfig{{Token: "1", Name: "entrance", Pan: 0.1}}}}
	cam := camsim.StartForTest(t, cfg).Camera("hold")
	c, err := onvif.NewClient(onvif.Config{XAddr: cam.XAddr(), Username: "op", Password: "pw-hold"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	m, _ := masking.NewMasker("hold", maskspec.FailBlank)
	m.SetSettle(0)
	if _, err := m.SetMaskSets([]maskspec.MaskSet{{Preset: "1"}}); err != nil {
		t.Fatal(err)
	}
	log := &eventLog{ch: make(chan event.Event, 64)}
	lock, err := NewLock(LockConfig{Camera: "hold", Profile: "main", Interval: 100 * time.Millisecond, PTZConfig: "ptzcfg0",
		Preset: ApprovedPreset{Token: "1", Pan: 0.1, Tolerance: 0.02}}, c, m, log.add)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- lock.Run(ctx) }()
	log.wait(t, event.Locked, 10*time.Second)
	if _, err := lock.Move(ctx, event.Position{Pan: 0.7}); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("a move without a hold: %v", err)
	}
	if err := lock.Hold(ctx, "test", time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	log.wait(t, event.PTZHeld, 2*time.Second)
	target := event.Position{Pan: 0.7, Tilt: -0.3, Zoom: 0.4} // far outside the approved box
	if _, err := lock.Move(ctx, event.Position{Pan: 0.5, Tilt: -0.3, Zoom: 0.4}); err != nil {
		t.Fatal(err)
	}
	for range 2 { // quicker than the motor: the steps add up
		if _, err := lock.MoveBy(ctx, event.Position{Pan: 0.1}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if p, moving := cam.Position(); !moving && math.Abs(p.Pan-target.Pan) < 0.01 && math.Abs(p.Tilt-target.Tilt) < 0.01 {
			break
		}
		if time.Now().After(deadline) {
			p, _ := cam.Position()
			t.Fatalf("held camera not at the target (limits not opened, or moved back?): %+v", p)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // several polls: no move back while held
	if p, _ := cam.Position(); math.Abs(p.Pan-target.Pan) > 0.01 {
		t.Fatalf("the lock moved a held camera back: %+v", p)
	}
	if v, why := frameVerdict(m); v != masking.Blanked || why != masking.ReasonNotApproved {
		t.Fatalf("held off the view: frames %v (%s), want blanked", v, why)
	}
	if err := lock.Apply(ctx, "1"); !errors.Is(err, ErrHeld) {
		t.Fatalf("preset/apply while held: %v", err)
	}
	tok, pos, err := lock.SavePreset(ctx, "gate")
	if err != nil || tok == "" || math.Abs(pos.Pan-target.Pan) > 0.01 {
		t.Fatalf("SavePreset: %q %+v %v", tok, pos, err)
	}
	if err := lock.Release(ctx, "test over"); err != nil {
		t.Fatal(err)
	}
	log.wait(t, event.PTZReleased, 2*time.Second)
	log.wait(t, event.SnapBack, 10*time.Second)
	if p, _ := cam.Position(); math.Abs(p.Pan-0.1) > 0.02 {
		t.Errorf("snap_back at pan %.3f", p.Pan)
	}
	if v, _ := frameVerdict(m); v != masking.Masked {
		t.Fatalf("after the snap-back frames are %v", v)
	}
	if _, _, err := lock.SavePreset(ctx, "late"); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("SavePreset after release: %v", err)
	}
	// A hold whose release never comes ends by itself at its time.
	if err := lock.Hold(ctx, "lost release", time.Now().Add(300*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if _, err := lock.MoveBy(ctx, event.Position{Pan: 0.3}); err != nil {
		t.Fatal(err)
	}
	log.wait(t, event.PTZReleased, 5*time.Second)
	log.wait(t, event.SnapBack, 10*time.Second)
	if lock.Held() {
		t.Fatal("still held after its time")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
