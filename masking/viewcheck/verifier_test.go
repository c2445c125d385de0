package viewcheck_test

import (
	"math"
	"testing"

	"velo/masking"
	"velo/masking/maskspec"
	"velo/masking/viewcheck"
)

// siteMasks are the fixed view's masks: a neighbour's window top left and
// a badge reader bottom right (the farthest vertex sets the rotation and
// scale limits: about 1.1° and 1.9 %).
func siteMasks() maskspec.MaskSet {
	return maskspec.MaskSet{Camera: "cam1", Masks: []maskspec.Mask{
		{Name: "window", Polygon: []maskspec.Point{{X: 0.05, Y: 0.05}, {X: 0.25, Y: 0.05}, {X: 0.25, Y: 0.3}, {X: 0.05, Y: 0.3}}},
		{Name: "badge", Polygon: []maskspec.Point{{X: 0.7, Y: 0.6}, {X: 0.95, Y: 0.62}, {X: 0.93, Y: 0.95}, {X: 0.72, Y: 0.9}}},
	}}
}

// newVerifier builds a verifier from the untouched view of sc (and, with
// withNight, a night reference of it) and shows it good frames first, as
// a running camera would have.
func newVerifier(t *testing.T, sc *scene, withNight bool) *viewcheck.Verifier {
	t.Helper()
	refs := []*viewcheck.Reference{mustRef(t, sc.frame(t, view{}), false)}
	if withNight {
		nf := sc.frame(t, view{})
		night(nf)
		refs = append(refs, mustRef(t, nf, true))
	}
	v, err := viewcheck.New(refs, viewcheck.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	for i := range 3 {
		f := sc.frame(t, view{})
		noise(2, uint64(100+i))(f)
		if got := v.Check(f, ""); !got.OK {
			t.Fatalf("good frame %d: %+v", i, got)
		}
	}
	return v
}

func mustRef(t *testing.T, f *masking.Frame, isNight bool) *viewcheck.Reference {
	t.Helper()
	r, err := viewcheck.NewReference(f, siteMasks(), isNight, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// What a real site does all day must never be a mismatch, on the frame
// itself nor on the deep checks that follow.
func TestVerifierPassesWhatSitesDo(t *testing.T) {
	sc := newScene(t, 1)
	cases := []struct {
		name   string
		view   view
		alter  []func(*masking.Frame)
		nightR bool
	}{
		{name: "unchanged"},
		{name: "shift 0.5% of the width", view: view{DX: 0.005 * frameW}},
		{name: "brightness x0.5", alter: []func(*masking.Frame){brightness(0.5)}},
		{name: "brightness x1.6", alter: []func(*masking.Frame){brightness(1.6)}},
		{name: "gamma 0.6", alter: []func(*masking.Frame){gamma(0.6)}},
		{name: "gamma 1.8", alter: []func(*masking.Frame){gamma(1.8)}},
		{name: "additive noise sigma 8", alter: []func(*masking.Frame){noise(8, 7)}},
		{name: "moving car covering 10%", alter: []func(*masking.Frame){fillRect(0.35, 0.55, 0.35+0.316, 0.55+0.316, 200)}},
		{name: "shadow band across 30%", alter: []func(*masking.Frame){shadow(0.3, 0.45)}},
		{name: "headlights", alter: []func(*masking.Frame){brightness(0.6), headlights(t)}},
		{name: "floodlight switched on", alter: []func(*masking.Frame){brightness(0.5), lightsOn(0.1, 0.4, 0.6, 1, 2.2)}},
		{name: "rain", alter: []func(*masking.Frame){rain(t, 3)}},
		{name: "monochrome night with a night reference", alter: []func(*masking.Frame){night, noise(3, 9)}, nightR: true},
		{name: "night with headlights", alter: []func(*masking.Frame){night, headlights(t)}, nightR: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := newVerifier(t, sc, c.nightR)
			var frames []*masking.Frame // three, with their own sensor noise
			for i := range 3 {
				f := sc.frame(t, c.view)
				for _, a := range c.alter {
					a(f)
				}
				noise(2, uint64(i))(f)
				frames = append(frames, f)
			}
			for i := range 27 { // covers a deep check (every 25th frame)
				got := v.Check(frames[i%len(frames)], "")
				if !got.OK {
					t.Fatalf("frame %d: mismatch %+v", i, got)
				}
				t.Logf("frame %d: %+v", i, got)
			}
		})
	}
}

// A moved, covered or defocused camera is flagged on the first frame that
// shows it, with the right reason.
func TestVerifierFlagsMovedCamera(t *testing.T) {
	sc := newScene(t, 2)
	cases := []struct {
		name   string
		view   view
		alter  []func(*masking.Frame)
		reason string
		check  func(t *testing.T, got masking.ViewVerdict)
	}{
		{name: "shift 1.5% of the width", view: view{DX: 0.015 * frameW}, reason: viewcheck.ReasonShift,
			check: func(t *testing.T, got masking.ViewVerdict) { near(t, "ShiftX", got.ShiftX, 0.015*frameW, 3) }},
		{name: "shift 5% of the width", view: view{DX: -0.04 * frameW, DY: 0.03 * frameW}, reason: viewcheck.ReasonShift,
			check: func(t *testing.T, got masking.ViewVerdict) {
				near(t, "ShiftX", got.ShiftX, -0.04*frameW, 4)
				near(t, "ShiftY", got.ShiftY, 0.03*frameW, 4)
			}},
		{name: "rotation 2 degrees", view: view{Rot: 2}, reason: viewcheck.ReasonRotation,
			check: func(t *testing.T, got masking.ViewVerdict) { near(t, "|Rotation|", math.Abs(got.Rotation), 2, 0.4) }},
		{name: "rotation 5 degrees", view: view{Rot: 5}, reason: viewcheck.ReasonRotation,
			check: func(t *testing.T, got masking.ViewVerdict) { near(t, "|Rotation|", math.Abs(got.Rotation), 5, 0.8) }},
		{name: "zoom 1.1x", view: view{Zoom: 1.1}, reason: viewcheck.ReasonScale,
			check: func(t *testing.T, got masking.ViewVerdict) { near(t, "Scale", got.Scale, 1.1, 0.03) }},
		{name: "horizontal flip", alter: []func(*masking.Frame){flip(t)}, reason: viewcheck.ReasonScene},
		{name: "covered lens", alter: []func(*masking.Frame){fillRect(0, 0, 1, 1, 40)}, reason: viewcheck.ReasonObstruction},
		{name: "covered lens with sensor noise", alter: []func(*masking.Frame){fillRect(0, 0, 1, 1, 24), noise(3, 5)}, reason: viewcheck.ReasonObstruction},
		{name: "defocus sigma 6", alter: []func(*masking.Frame){blur(t, 6)}, reason: viewcheck.ReasonDefocus},
		{name: "another place", view: view{DX: 0.3 * frameW, DY: 0.25 * frameH, Rot: 30}, reason: viewcheck.ReasonScene},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := newVerifier(t, sc, false)
			f := sc.frame(t, c.view)
			for _, a := range c.alter {
				a(f)
			}
			noise(2, 3)(f)
			got := v.Check(f, "")
			t.Logf("%+v", got)
			if got.OK || got.Reason != c.reason {
				t.Fatalf("verdict %+v, want a mismatch for %q", got, c.reason)
			}
			if c.check != nil {
				c.check(t, got)
			}
		})
	}
}

func near(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if math.Abs(got-want) > tol {
		t.Errorf("%s = %.3f, want %.3f ± %.3f", what, got, want, tol)
	}
}

// A camera bumped for a few frames and back: every moved frame is flagged
// (none slips through between deep checks), the frames after its return
// pass at once; an exposure swing over many frames never flags.
func TestVerifierSequences(t *testing.T) {
	sc := newScene(t, 9)
	v := newVerifier(t, sc, false)
	type step struct {
		view  view
		alter func(*masking.Frame)
		ok    bool
	}
	var steps []step
	for i := range 40 { // auto-exposure swinging between x0.55 and x1.45
		steps = append(steps, step{alter: brightness(1 + 0.45*math.Sin(float64(i)/3)), ok: true})
	}
	for range 5 {
		steps = append(steps, step{view: view{DX: 0.02 * frameW, DY: -0.01 * frameW}})
	}
	for range 5 {
		steps = append(steps, step{ok: true})
	}
	for range 3 {
		steps = append(steps, step{view: view{Rot: 1.6}})
	}
	for range 30 {
		steps = append(steps, step{ok: true})
	}
	for i, s := range steps {
		f := sc.frame(t, s.view)
		if s.alter != nil {
			s.alter(f)
		}
		noise(2, uint64(i))(f)
		if got := v.Check(f, ""); got.OK != s.ok {
			t.Fatalf("frame %d (%+v): verdict %+v, want OK %v", i, s.view, got, s.ok)
		}
	}
}
