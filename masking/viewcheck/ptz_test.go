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
// moves a mask edge by more than the limit (1 % of the width) is flagged
// on its first frame, also when the view holds strong repeating texture
// (the street's fine checkerboard left unmasked, as a fence or tiles would
// be), moving slowly through small steps or jumping far, in pan, tilt and
// zoom; positions well within the limit, and the preset itself, pass.
func TestPTZMovesAreFlagged(t *testing.T) {
	cfg := camsim.CameraConfig{Scene: "ptz", Width: 640, Height: 360}
	regions := camsim.Regions(cfg, camsim.Position{})
	for _, c := range []struct {
		name   string
		masked []string
	}{
		{"street unmasked", []string{camsim.RegionBadgeReader}},
		{"street masked", []string{camsim.RegionBadgeReader, camsim.RegionStreet}},
	} {
		t.Run(c.name, func(t *testing.T) {
			set := maskspec.MaskSet{Camera: "h", Preset: "1"}
			for _, name := range c.masked {
				set.Masks = append(set.Masks, boxMask(name, regions[name]))
			}
			if err := set.Validate(); err != nil {
				t.Fatal(err)
			}
			ptzSweeps(t, set)
		})
	}
}

func boxMask(name string, b camsim.NormRect) maskspec.Mask {
	return maskspec.Mask{Name: name, Polygon: []maskspec.Point{
		{X: clamp01(b.X0 - 0.01), Y: clamp01(b.Y0 - 0.01)}, {X: clamp01(b.X1 + 0.01), Y: clamp01(b.Y0 - 0.01)},
		{X: clamp01(b.X1 + 0.01), Y: clamp01(b.Y1 + 0.01)}, {X: clamp01(b.X0 - 0.01), Y: clamp01(b.Y1 + 0.01)}}}
}

// ptzSweeps moves the camera of the ptz scene, masked by set, through
// pan, tilt and zoom sweeps, each back to the preset.
func ptzSweeps(t *testing.T, set maskspec.MaskSet) {
	const w, h = 640, 360
	frame := func(p camsim.Position) *masking.Frame {
		return &masking.Frame{W: w, H: h, Data: camsim.RenderI420("ptz", w, h, p, camsim.DayCycle(0, 0)), Captured: time.Now()}
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
	for range 30 {
		if vd := v.Check(frame(camsim.Position{}), "1"); !vd.OK {
			t.Fatalf("the approved view itself: %+v", vd)
		}
	}
	// The ptz scene at zoom 0 moves the picture by pan × the width, by
	// tilt / 2 × the width, and zooms by 1 + 3·zoom: a mask vertex at
	// Radius from the centre moves by 3·zoom·Radius of the width.
	var sweep []camsim.Position
	for _, pan := range []float64{0.004, 0.015, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.3, 0.1, 0.05, 0.015, 0, -0.015, -0.05, -0.2, 0} {
		sweep = append(sweep, camsim.Position{Pan: pan})
	}
	for _, tilt := range []float64{0.008, 0.03, 0.06, 0.1, 0.2, 0.4, 0.1, 0.03, 0, -0.03, -0.1, -0.3, 0} {
		sweep = append(sweep, camsim.Position{Tilt: tilt})
	}
	for _, zoom := range []float64{0.001, 0.01, 0.02, 0.05, 0.1, 0.3, 0.6, 0.1, 0.02, 0} {
		sweep = append(sweep, camsim.Position{Zoom: zoom})
	}
	sweep = append(sweep, camsim.Position{Pan: 0.03, Tilt: 0.03, Zoom: 0.03}, camsim.Position{})
	for _, p := range sweep {
		moved := math.Max(math.Max(math.Abs(p.Pan), math.Abs(p.Tilt)/2), 3*p.Zoom*ref.Basis.Radius)
		vd := v.Check(frame(p), "1")
		switch {
		case moved > 0.012 && vd.OK:
			t.Errorf("%+v (a mask edge moved by %.1f %% of the width) passed: %+v", p, moved*100, vd)
		case moved < 0.008 && !vd.OK:
			t.Errorf("%+v (a mask edge moved by %.1f %% of the width) flagged: %+v", p, moved*100, vd)
		}
	}
}
