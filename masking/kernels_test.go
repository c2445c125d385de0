package masking

import (
	"testing"
	"velo/masking/maskspec"
)

// Blur, with OpenCV's box filter inside the plane and Go near its edges:
// every masked luma pixel (not a sample) equals the rounded integer mean of
// its clipped window, from an independent summed-area table, at radii on
// both sides of cvMaxRadius (64: OpenCV inside, 65: Go) and with masks
// touching every edge.
func TestBlurEveryPixelMatchesIntegerMean(t *testing.T) {
	cases := []struct{ w, h, rad int }{
		{642, 482, 6}, {642, 482, 15}, {642, 482, 64}, {642, 482, 65}, {642, 482, 128}, {1920, 1080, 30},
	}
	for _, tc := range cases {
		w, h := tc.w, tc.h
		m := maskspec.Mask{Name: "x", Style: maskspec.StyleBlur, Strength: tc.rad, Polygon: testPolys["touches every edge"]}
		if tc.rad == 15 || tc.rad == 65 {
			m.Polygon = []maskspec.Point{{X: 0.1, Y: 0.1}, {X: 0.9, Y: 0.2}, {X: 0.5, Y: 0.95}}
		}
		r := buildOne(t, m, w, h)
		rr := r.regions[0].mask.Strength // raised to the floor for the width
		in := randomFrame(w, h, uint64(tc.rad))
		out := &Frame{W: w, H: h, Data: append([]byte(nil), in.Data...)}
		if err := r.Apply(out); err != nil {
			t.Fatal(err)
		}
		yp, _, _ := in.Planes()
		I := make([]int, (w+1)*(h+1))
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				I[(y+1)*(w+1)+x+1] = int(yp[y*w+x]) + I[y*(w+1)+x+1] + I[(y+1)*(w+1)+x] - I[y*(w+1)+x]
			}
		}
		bad := 0
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				if !r.Inside(0, x, y) {
					continue
				}
				ax, bx, ay, by := max(x-rr, 0), min(x+rr+1, w), max(y-rr, 0), min(y+rr+1, h)
				s := I[by*(w+1)+bx] - I[ay*(w+1)+bx] - I[by*(w+1)+ax] + I[ay*(w+1)+ax]
				c := (bx - ax) * (by - ay)
				if want := (s + c/2) / c; int(out.Data[y*w+x]) != want {
					bad++
				}
			}
		}
		if bad > 0 {
			t.Errorf("%dx%d r=%d: %d masked pixels differ from the integer mean", w, h, rr, bad)
		}
	}
}
