package masking

import (
	"testing"
	"velo/masking/maskspec"
)

// Blur, with OpenCV's box filter inside the plane and Go near its edges:
// every masked luma pixel (not a sample) equals the rounded integer mean of
// its clipped window, from an independent summed-area table, at radii on
// both sides of cvMaxRadius and with masks touching every edge.
func TestBlurEveryPixelMatchesIntegerMean(t *testing.T) {
	for _, sz := range [][2]int{{642, 482}, {1920, 1080}} {
		for _, rad := range []int{6, 15, 30, 60, 128} {
			w, h := sz[0], sz[1]
			m := maskspec.Mask{Name: "x", Style: maskspec.StyleBlur, Strength: rad, Polygon: testPolys["touches every edge"]}
			if rad == 15 || rad == 128 {
				m.Polygon = []maskspec.Point{{X: 0.1, Y: 0.1}, {X: 0.9, Y: 0.2}, {X: 0.5, Y: 0.95}}
			}
			r := buildOne(t, m, w, h)
			rr := r.regions[0].mask.Strength
			in := randomFrame(w, h, uint64(rad))
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
				t.Errorf("%v r=%d: %d wrong", sz, rr, bad)
			}
		}
	}
}
