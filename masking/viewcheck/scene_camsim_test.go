package viewcheck

import (
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
	if testing.Short() {
		t.Skip("12 000 frames per scene")
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
	tampers := map[string]camsim.Tamper{
		"bumped 1.5%": {ShiftX: 0.015}, "bumped 5%": {ShiftX: 0.05, ShiftY: 0.03}, "rotated 3°": {RotateDeg: 3},
		"zoomed 1.1×": {Zoom: 1.1}, "flipped": {FlipH: true}, "flipped v": {FlipV: true}, "covered": {Cover: 1},
		"half covered": {Cover: 0.6}, "defocused": {Blur: 8},
	}
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
