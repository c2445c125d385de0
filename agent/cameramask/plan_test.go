package cameramask

import (
	"strings"
	"testing"

	"velo/masking/maskspec"
	"velo/onvif"
)

// The simulator offers every type and two colours; cameras in the field
// offer less. These cases check the adaptation to such options.
func TestPlanAdaptsToTheCameraOptions(t *testing.T) {
	tri := []maskspec.Point{{X: 0.1, Y: 0.1}, {X: 0.3, Y: 0.1}, {X: 0.2, Y: 0.3}}
	masks := []maskspec.Mask{
		{Name: "fill-red", Style: maskspec.StyleFill, Polygon: tri, Color: maskspec.RGBToYUV(255, 0, 0)},
		{Name: "pix", Style: maskspec.StylePixelate, Polygon: tri},
		{Name: "fill-white", Style: maskspec.StyleFill, Polygon: tri, Color: maskspec.RGBToYUV(255, 255, 255)},
		{Name: "all", Style: maskspec.StyleFull},
	}
	red := onvif.Color{X: 255, Y: 0, Z: 0, Colorspace: "http://www.onvif.org/ver10/colorspace/RGB"}
	opt := onvif.MaskOptions{Types: []string{"Color"}, SingleColorOnly: true, Colors: []onvif.Color{{X: 16, Y: 128, Z: 128}, red}}
	exp, uns := plan(masks, "vsc9", opt)
	if len(uns) != 0 || len(exp) != 4 {
		t.Fatalf("plan = %+v, unsupported %+v", exp, uns)
	}
	// Red is offered in RGB: chosen as is, no note.
	if c := exp[0].Mask.Color; c == nil || *c != red || exp[0].Note != "" {
		t.Errorf("fill-red = %+v note %q", exp[0].Mask.Color, exp[0].Note)
	}
	if exp[1].Mask.Type != "Color" || !strings.Contains(exp[1].Note, "no Pixelated masks") {
		t.Errorf("pix = %+v", exp[1])
	}
	// One colour for all: white becomes the first mask's red, said so.
	if c := exp[2].Mask.Color; c == nil || *c != red || !strings.Contains(exp[2].Note, "one colour for all") {
		t.Errorf("fill-white = %+v note %q", exp[2].Mask.Color, exp[2].Note)
	}
	full := exp[3].Mask.Polygon
	if len(full) != 4 || full[0] != (onvif.Point{X: -1, Y: 1}) || full[2] != (onvif.Point{X: 1, Y: -1}) || exp[3].Mask.ConfigurationToken != "vsc9" {
		t.Errorf("full = %+v", exp[3].Mask)
	}

	// A camera with only Pixelated masks: a fill is not weakened.
	exp, uns = plan(masks[:2], "vsc9", onvif.MaskOptions{Types: []string{"Pixelated"}})
	if len(exp) != 1 || exp[0].Name != "pix" || exp[0].Mask.Type != "Pixelated" || exp[0].Mask.Color != nil {
		t.Errorf("pixelated-only plan = %+v", exp)
	}
	if len(uns) != 1 || uns[0].Name != "fill-red" || !strings.Contains(uns[0].Reason, "no Color mask") {
		t.Errorf("pixelated-only unsupported = %+v", uns)
	}
}

func TestSamePolygonIgnoresStartAndDirection(t *testing.T) {
	p := func(xy ...float64) []onvif.Point {
		var out []onvif.Point
		for i := 0; i+1 < len(xy); i += 2 {
			out = append(out, onvif.Point{X: onvif.Float(xy[i]), Y: onvif.Float(xy[i+1])})
		}
		return out
	}
	a := p(0, 0, 0.5, 0, 0.5, 0.5, 0, 0.5)
	for _, tc := range []struct {
		b    []onvif.Point
		same bool
	}{
		{p(0.5, 0.5, 0, 0.5, 0, 0, 0.5, 0), true},                 // other start
		{p(0, 0.5, 0.5, 0.5, 0.5, 0, 0, 0), true},                 // other direction
		{p(0, 0, 0.5, 0, 0.5, 0.5, 0, 0.5, 0, 0), true},           // closed ring
		{p(0, 0, 0.5, 0, 0.5, 0.5, 0.05, 0.5), false},             // a vertex 2.5 % of the frame away
		{p(0, 0, 0.5, 0, 0.5, 0.5), false},                        // a vertex missing
		{p(0.5, 0, 0, 0, 0.5, 0.5, 0, 0.5), false},                // same vertices, crossed
		{p(0.01, 0.01, 0.51, 0.01, 0.51, 0.51, 0.01, 0.51), true}, // 0.5 % rounding
	} {
		if got := samePolygon(a, tc.b); got != tc.same {
			t.Errorf("samePolygon(%v, %v) = %v, want %v", a, tc.b, got, tc.same)
		}
	}
}
