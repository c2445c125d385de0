package anonymise_test

import (
	"testing"
	"time"

	"velo/masking"
	"velo/masking/anonymise"
	"velo/masking/maskspec"
)

// TestG45_PTZZoneFollowsTheView: a PTZ camera has a dynamic_zone per
// preset; the stage masks with the zone of the view each frame was masked
// for. Right after the camera reaches another preset, the new zone is
// masked whole until a detection made on that view is back (nothing from
// the previous view's tracks or background is trusted); a frame of a view
// without a zone is refused; a preset it comes back to is compared with
// its own background model.
func TestG45_PTZZoneFollowsTheView(t *testing.T) {
	const w, h = 320, 240
	left := []maskspec.Point{{X: 0, Y: 0}, {X: 0.5, Y: 0}, {X: 0.5, Y: 1}, {X: 0, Y: 1}}
	right := []maskspec.Point{{X: 0.5, Y: 0}, {X: 1, Y: 0}, {X: 1, Y: 1}, {X: 0.5, Y: 1}}
	st, err := anonymise.New(anonymise.Config{Camera: "ptz", Detectors: []anonymise.Detector{anonymise.Motion},
		Zones: map[string][]maskspec.Point{"1": left, "2": right}, Style: maskspec.StyleFill, Color: magenta,
		Every: 5, Deadline: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// Two still scenes, one per preset (textured, bright enough).
	scene := map[string]*masking.Frame{"1": masking.NewFrame(w, h), "2": masking.NewFrame(w, h)}
	for v, k := range map[string]int{"1": 7, "2": 13} {
		y, u, c := scene[v].Planes()
		for j := range y {
			y[j] = byte(60 + (j*k)%120)
		}
		for j := range u {
			u[j], c[j] = 128, 128
		}
	}
	f := masking.NewFrame(w, h)
	apply := func(view string) (why bool) {
		t.Helper()
		before := st.Stats().Reasons[anonymise.WhyView]
		copy(f.Data, scene[view].Data)
		f.View, f.Masked = view, true
		if err := st.Apply(f); err != nil {
			t.Fatalf("view %s: %v", view, err)
		}
		return st.Stats().Reasons[anonymise.WhyView] > before
	}
	masked := func() (l, r bool) { return isMasked(f, w/4, h/2), isMasked(f, 3*w/4, h/2) }
	// Preset 1, long enough for its background to be learnt and the
	// first detection's box (everything is new to a fresh model) to expire.
	for i := 0; i < 32; i++ {
		apply("1")
	}
	if l, r := masked(); l || r {
		t.Fatalf("preset 1, still scene: masked left %v right %v, want nothing", l, r)
	}
	// The camera is at preset 2 (frame 33: no detection due before 36).
	if !apply("2") {
		t.Fatal("first frame at preset 2 not counted as a view fallback")
	}
	if l, r := masked(); l || !r {
		t.Fatalf("first frame at preset 2: masked left %v right %v, want its zone (right) whole and only it", l, r)
	}
	n := 1
	for apply("2") {
		n++
	}
	t.Logf("preset 2: its zone masked whole for %d frames, until its first detection", n)
	// A frame masked for a view without a zone is refused.
	copy(f.Data, scene["1"].Data)
	f.View = "3"
	if err := st.Apply(f); err == nil || !contains(err.Error(), `"3"`) {
		t.Fatalf("view without a zone: %v, want an error naming it", err)
	}
	// Back at preset 1: its zone whole until a detection; then its own
	// model sees nothing new (a fresh model would see the whole frame).
	for apply("1") {
	}
	if l, r := masked(); l || r {
		t.Fatalf("back at preset 1 after its first detection: masked left %v right %v, want nothing", l, r)
	}
}
