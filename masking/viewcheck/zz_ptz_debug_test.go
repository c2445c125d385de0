package viewcheck

import (
	"math"
	"testing"
	"time"

	"velo/masking"
	"velo/masking/maskspec"
	"velo/onvif/camsim"
)

// A PTZ camera moved off its preset by hand: every position whose picture
// moves a mask edge by more than the limit (1 % of the width) is flagged,
// on the first frame, also when the view holds strong repeating texture
// (the street's fine checkerboard is left unmasked here, as a fence or
// tiles would be), moving slowly through small steps or jumping far.
func TestPTZMovesAreFlagged(t *testing.T) {
	cfg := camsim.CameraConfig{Scene: "ptz", Width: 640, Height: 360}
	b := camsim.Regions(cfg, camsim.Position{})[camsim.RegionBadgeReader]
	set := maskspec.MaskSet{Camera: "h", Preset: "1", Masks: []maskspec.Mask{{Name: "badge", Polygon: []maskspec.Point{
		{X: b.X0 - 0.01, Y: b.Y0 - 0.01}, {X: b.X1 + 0.01, Y: b.Y0 - 0.01}, {X: b.X1 + 0.01, Y: b.Y1 + 0.01}, {X: b.X0 - 0.01, Y: b.Y1 + 0.01}}}}}
	if err := set.Validate(); err != nil {
		t.Fatal(err)
	}
	frame := func(p camsim.Position) *masking.Frame {
		return &masking.Frame{W: 640, H: 360, Data: camsim.RenderI420("ptz", 640, 360, p, camsim.DayCycle(0, 0)), Captured: time.Now()}
	}
	ref, err := NewReference(frame(camsim.Position{}), set, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := New([]*Reference{ref}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	for i := 0; i < 30; i++ {
		if vd := v.Check(frame(camsim.Position{}), "1"); !vd.OK {
			t.Fatalf("the approved view itself: %+v", vd)
		}
	}
	// The ptz scene: the picture moves by pan·2/fw·W/2 pixels, fw = 1 at
	// zoom 0: pan 0.01 moves it by 1 % of the width.
	for _, pan := range []float64{0.004, 0.015, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.3, 0.1, 0.05, 0.015, 0} {
		vd := v.Check(frame(camsim.Position{Pan: pan}), "1")
		over := math.Abs(pan) > 0.012
		if vd.OK == over {
			t.Errorf("pan %.3f (%.1f %% of the width): %+v", pan, pan*100, vd)
		}
	}
}
