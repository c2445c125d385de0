package viewcheck

import (
	"image"
	"maps"
	"slices"
	"testing"
	"time"

	"velo/masking"
	"velo/masking/maskspec"
	"velo/onvif/camsim"
)

// The simulator's scenes, rendered offline (no RTSP): what a site does all
// day must never be a mismatch, and what a person does to a camera must
// always be one. Frames at 960×540, masks as the demo's badge camera.
const simW, simH = 960, 540

func simFrame(scene string, st camsim.SceneState) *masking.Frame {
	return &masking.Frame{W: simW, H: simH, Data: camsim.RenderI420(scene, simW, simH, camsim.Position{}, st), Captured: time.Now()}
}

// simRenderer renders a scene's frames fast (it keeps the static
// background between frames): the same bytes as RenderI420.
type simRenderer struct {
	r camsim.Renderer
	f camsim.Frame
}

func (s *simRenderer) frame(scene string, st camsim.SceneState) *masking.Frame {
	if s.f.Data == nil {
		s.f = *camsim.NewFrame(simW, simH)
	}
	s.r.Render(&s.f, scene, camsim.Position{}, st)
	return &masking.Frame{W: simW, H: simH, Data: s.f.Data, Captured: time.Now()}
}

func clamp01(v float64) float64 { return min(1, max(0, v)) }

func simSet(scene string) maskspec.MaskSet {
	set := maskspec.MaskSet{Camera: scene}
	for name, r := range camsim.Regions(camsim.CameraConfig{Scene: scene, Width: simW, Height: simH}, camsim.Position{}) {
		set.Masks = append(set.Masks, maskspec.Mask{Name: name, Polygon: []maskspec.Point{
			{X: clamp01(r.X0 - 0.01), Y: clamp01(r.Y0 - 0.01)}, {X: clamp01(r.X1 + 0.01), Y: clamp01(r.Y0 - 0.01)},
			{X: clamp01(r.X1 + 0.01), Y: clamp01(r.Y1 + 0.01)}, {X: clamp01(r.X0 - 0.01), Y: clamp01(r.Y1 + 0.01)}}})
	}
	if err := set.Validate(); err != nil {
		panic(err)
	}
	return set
}

// simVerifier has a day and a night reference of scene's view, captured
// at commissioning (noon, and deep in the IR night) with traffic on.
func simVerifier(t *testing.T, scene string, period time.Duration) *Verifier {
	t.Helper()
	set := simSet(scene)
	var refs []*Reference
	for _, at := range []time.Duration{0, period * 7 / 10} {
		st := camsim.DayCycle(at, period)
		st.Traffic = true
		ref, err := NewReference(simFrame(scene, st), set, st.IR, nil)
		if err != nil {
			t.Fatal(err)
		}
		refs = append(refs, ref)
	}
	v, err := New(refs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	return v
}

// False positives: 10 minutes at 10 fps of each fixed scene with cars and
// walkers, then a compressed day (daylight → shadows → dusk → IR night
// with headlights → dawn) of the same length: 0 mismatches.
func TestNoMismatchOverADayOfTheSimulatedSite(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("12 000 frames per scene: run without -race (make test's matprofile run)")
	}
	const fps, frames = 10, 6000
	period := time.Duration(frames/fps) * time.Second
	for _, scene := range []string{"badge", "street"} {
		t.Run(scene, func(t *testing.T) {
			v := simVerifier(t, scene, period)
			var sr simRenderer
			var mismatches int
			var worst masking.ViewVerdict
			worst.Score = 1
			for i := 0; i < 2*frames; i++ {
				at := time.Duration(i) * time.Second / fps
				st := camsim.DayCycle(0, 0) // first half: daylight, traffic
				if i >= frames {
					st = camsim.DayCycle(at-period, period) // second half: a compressed day
				}
				st.T, st.Traffic = at, true
				vd := v.Check(sr.frame(scene, st), "")
				if !vd.OK {
					mismatches++
					if mismatches <= 5 {
						t.Errorf("frame %d (t %v, light %.2f, IR %v): %+v", i, at, st.Light, st.IR, vd)
					}
				}
				if vd.Score < worst.Score {
					worst = vd
				}
			}
			t.Logf("FIGURES %s: %d frames (10 min of traffic + a compressed day): %d view_mismatch; lowest score %.3f", scene, 2*frames, mismatches, worst.Score)
		})
	}
}

// Every tamper the simulator can do to a fixed camera is a mismatch on
// the first tampered frame, by day and by night.
func TestEveryTamperIsAMismatch(t *testing.T) {
	period := 10 * time.Minute
	tampers := simTampers()
	for _, scene := range []string{"badge", "street"} {
		v := simVerifier(t, scene, period)
		for name, tp := range tampers {
			for _, at := range []time.Duration{period / 10, period * 7 / 10} {
				st := camsim.DayCycle(at, period)
				st.Traffic, st.Tamper = true, tp
				if vd := v.Check(simFrame(scene, st), ""); vd.OK {
					t.Errorf("%s %s (IR %v): not flagged: %+v", scene, name, st.IR, vd)
				}
			}
		}
	}
}

// simTampers is what a person can do to a fixed camera's picture.
func simTampers() map[string]camsim.Tamper {
	return map[string]camsim.Tamper{
		"bumped 1.5%": {ShiftX: 0.015}, "bumped 5%": {ShiftX: 0.05, ShiftY: 0.03}, "rotated 3°": {RotateDeg: 3},
		"zoomed 1.1×": {Zoom: 1.1}, "flipped": {FlipH: true}, "flipped v": {FlipV: true}, "covered": {Cover: 1},
		"half covered": {Cover: 0.6}, "defocused": {Blur: 8},
		// Just over the 1 % limit, where the score stays fair on coarse
		// textures, and on to where a neighbouring pixel matches no better.
		"bumped 1.2%": {ShiftX: 0.012}, "bumped 1.2% left": {ShiftX: -0.012}, "bumped 1.2% down": {ShiftY: 0.012 * simW / simH},
		"bumped 1.5% up": {ShiftY: -0.015 * simW / simH}, "bumped 2%": {ShiftX: 0.02}, "bumped 2.5% down": {ShiftY: 0.025 * simW / simH},
		"bumped 3%": {ShiftX: -0.03}, "bumped 3% down": {ShiftY: 0.03 * simW / simH}, "flipped both": {FlipH: true, FlipV: true},
	}
}

// A running camera (its references verified, the view's usual score
// known) tampered with: the first tampered frame and every one after it
// is a mismatch, wherever it falls between the scheduled deep checks; the
// restored view passes again. By day and in the IR night.
func TestEveryTamperOfARunningCameraIsAMismatch(t *testing.T) {
	if raceEnabled {
		t.Skip("thousands of rendered frames, one goroutine: run without -race (make test's matprofile run)")
	}
	period := 10 * time.Minute
	tampers := simTampers()
	names := slices.Sorted(maps.Keys(tampers))
	for _, scene := range []string{"badge", "street"} {
		for _, at := range []time.Duration{period / 10, period * 7 / 10} {
			v := simVerifier(t, scene, period)
			var sr simRenderer
			frame := 0
			check := func(tp camsim.Tamper) masking.ViewVerdict {
				st := camsim.DayCycle(at, period)
				st.T, st.Traffic, st.Tamper = time.Duration(frame)*time.Second/10, true, tp
				frame++
				return v.Check(sr.frame(scene, st), "")
			}
			for k, name := range names {
				// Good frames, at least 30 (a scheduled deep check among
				// them), until the tamper starts k·7 frames after one.
				for good := 0; good < 30 || frame%25 != (k*7)%23+1; good++ {
					if vd := check(camsim.Tamper{}); !vd.OK && good >= 5 {
						t.Fatalf("%s at %v: untampered frame %d (%d after %s): %+v", scene, at, frame, good, name, vd)
					}
				}
				for i := range 5 {
					if vd := check(tampers[name]); vd.OK {
						t.Errorf("%s at %v: %s: tampered frame %d (frame %d) not flagged: %+v", scene, at, name, i+1, frame, vd)
					}
				}
			}
		}
	}
}

// The per-frame tests alone (no score alarm, no deep check) raise the
// alarm on the tampers the score can miss, and never over good frames.
func TestPerFrameTestsSuspectTampers(t *testing.T) {
	if raceEnabled {
		t.Skip("thousands of rendered frames, one goroutine: run without -race (make test's matprofile run)")
	}
	period := 10 * time.Minute
	for _, scene := range []string{"badge", "street"} {
		for _, at := range []time.Duration{period / 10, period * 7 / 10} {
			v := simVerifier(t, scene, period)
			var sr simRenderer
			suspect := func(tp camsim.Tamper, frame int) bool {
				st := camsim.DayCycle(at, period)
				st.T, st.Traffic, st.Tamper = time.Duration(frame)*time.Second/10, true, tp
				f := sr.frame(scene, st)
				vs := v.views[""]
				rm := vs.candidates(vs.mixed && monochrome(f))[0]
				ws := v.work[image.Pt(rm.ref.Width, rm.ref.Height)]
				if err := ws.prepare(f); err != nil {
					t.Fatal(err)
				}
				return rm.suspect(ws, v.opts)
			}
			for i := range 300 {
				if suspect(camsim.Tamper{}, i) {
					t.Fatalf("%s at %v: good frame %d suspect", scene, at, i)
				}
			}
			for _, name := range []string{"bumped 1.2%", "bumped 1.2% left", "bumped 1.2% down", "bumped 1.5%", "bumped 1.5% up", "flipped", "half covered"} {
				if !suspect(simTampers()[name], 300) {
					t.Errorf("%s at %v: %s not suspect", scene, at, name)
				}
			}
		}
	}
}
