package viewcheck_test

import (
	"image"
	"image/color"
	"math"
	"math/rand/v2"
	"testing"

	"gocv.io/x/gocv"

	"velo/masking"
)

// Test frames are 1080p pictures of a synthetic site: a static background
// with buildings, windows, poles and fine texture, seen by a camera that
// can be moved (shift, rotation, zoom) and whose picture can be altered
// the ways real sites alter it.
const frameW, frameH = 1920, 1080

// scene is the site's static background, larger than the frame so that a
// moved camera still sees it.
type scene struct {
	base gocv.Mat // 8-bit luma
}

// newScene renders the background with a fixed seed; closed at cleanup.
func newScene(t testing.TB, seed uint64) *scene {
	const bw, bh = 2400, 1500
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	base := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(90, 0, 0, 0), bh, bw, gocv.MatTypeCV8U)
	grey := func(lo, hi int) color.RGBA { v := uint8(lo + rng.IntN(hi-lo)); return color.RGBA{v, v, v, 255} }
	for range 140 { // buildings and their windows
		x, y := rng.IntN(bw), rng.IntN(bh)
		r := image.Rect(x, y, x+40+rng.IntN(260), y+40+rng.IntN(220))
		gocv.Rectangle(&base, r, grey(40, 150), -1)
		for range rng.IntN(8) {
			wx, wy := r.Min.X+rng.IntN(max(1, r.Dx()-20)), r.Min.Y+rng.IntN(max(1, r.Dy()-20))
			gocv.Rectangle(&base, image.Rect(wx, wy, wx+8+rng.IntN(20), wy+8+rng.IntN(20)), grey(30, 160), -1)
		}
	}
	for range 60 { // poles, wires, kerbs
		gocv.Line(&base, image.Pt(rng.IntN(bw), rng.IntN(bh)), image.Pt(rng.IntN(bw), rng.IntN(bh)), grey(30, 160), 2+rng.IntN(6))
	}
	for range 80 {
		gocv.Circle(&base, image.Pt(rng.IntN(bw), rng.IntN(bh)), 6+rng.IntN(50), grey(40, 150), -1)
	}
	// Fine texture (foliage, gravel): blobs of a few pixels.
	small := gocv.NewMatWithSize(bh/6, bw/6, gocv.MatTypeCV8U)
	d, _ := small.DataPtrUint8()
	for i := range d {
		d[i] = uint8(rng.IntN(256))
	}
	tex := gocv.NewMat()
	gocv.Resize(small, &tex, image.Pt(bw, bh), 0, 0, gocv.InterpolationCubic)
	gocv.AddWeighted(base, 0.8, tex, 0.2, -8, &base)
	small.Close()
	tex.Close()
	t.Cleanup(func() { base.Close() })
	return &scene{base: base}
}

// view is how the camera sees the scene: its content displaced by
// (DX, DY) pixels, rotated by Rot degrees and zoomed by Zoom about the
// frame's centre.
type view struct {
	DX, DY, Rot, Zoom float64
}

// frame renders the view as an I420 frame with colour (U, V away from
// 128).
func (s *scene) frame(t testing.TB, v view) *masking.Frame {
	if v.Zoom == 0 {
		v.Zoom = 1
	}
	// Frame pixel p shows base pixel cb + R(−rot)·(p − cf − d)/zoom.
	cfx, cfy := float64(frameW-1)/2, float64(frameH-1)/2
	cbx, cby := float64(s.base.Cols()-1)/2, float64(s.base.Rows()-1)/2
	th := -v.Rot * math.Pi / 180
	c, sn := math.Cos(th)/v.Zoom, math.Sin(th)/v.Zoom
	m := gocv.NewMatWithSize(2, 3, gocv.MatTypeCV64F)
	defer m.Close()
	ox, oy := -cfx-v.DX, -cfy-v.DY
	m.SetDoubleAt(0, 0, c)
	m.SetDoubleAt(0, 1, -sn)
	m.SetDoubleAt(0, 2, cbx+c*ox-sn*oy)
	m.SetDoubleAt(1, 0, sn)
	m.SetDoubleAt(1, 1, c)
	m.SetDoubleAt(1, 2, cby+sn*ox+c*oy)
	dst := gocv.NewMat()
	defer dst.Close()
	gocv.WarpAffineWithParams(s.base, &dst, m, image.Pt(frameW, frameH), gocv.InterpolationLinear|gocv.WarpInverseMap, gocv.BorderReflect, color.RGBA{})
	f := masking.NewFrame(frameW, frameH)
	y, u, vv := f.Planes()
	copy(y, dst.ToBytes())
	for i := range u {
		u[i], vv[i] = 112, 141
	}
	return f
}

// Alterations of a rendered frame, in place.

func withLuma(t testing.TB, f *masking.Frame, fn func(m *gocv.Mat)) {
	y, _, _ := f.Planes()
	m, err := gocv.NewMatFromBytes(f.H, f.W, gocv.MatTypeCV8U, y)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	fn(&m)
}

func mapLuma(f *masking.Frame, fn func(v float64) float64) {
	var lut [256]byte
	for i := range lut {
		lut[i] = uint8(math.Max(0, math.Min(255, math.Round(fn(float64(i))))))
	}
	y, _, _ := f.Planes()
	for i, v := range y {
		y[i] = lut[v]
	}
}

func brightness(k float64) func(*masking.Frame) {
	return func(f *masking.Frame) { mapLuma(f, func(v float64) float64 { return v * k }) }
}

func gamma(g float64) func(*masking.Frame) {
	return func(f *masking.Frame) { mapLuma(f, func(v float64) float64 { return 255 * math.Pow(v/255, g) }) }
}

// noise adds Gaussian sensor noise (OpenCV's generator, seeded: in C, so
// that the race detector does not slow the tests down).
func noise(sigma float64, seed uint64) func(*masking.Frame) {
	return func(f *masking.Frame) {
		y, _, _ := f.Planes()
		y8, err := gocv.NewMatFromBytes(f.H, f.W, gocv.MatTypeCV8U, y)
		if err != nil {
			panic(err)
		}
		defer y8.Close()
		n, y16 := gocv.NewMatWithSize(f.H, f.W, gocv.MatTypeCV16S), gocv.NewMat()
		defer n.Close()
		defer y16.Close()
		gocv.SetRNGSeed(int(seed) + 1)
		gocv.RandN(&n, gocv.NewScalar(0, 0, 0, 0), gocv.NewScalar(sigma, 0, 0, 0))
		y8.ConvertTo(&y16, gocv.MatTypeCV16S)
		gocv.Add(y16, n, &y16)
		y16.ConvertTo(&y8, gocv.MatTypeCV8U) // saturates, in place
	}
}

// fillRect paints the rectangle (fractions of the frame) with luma v.
func fillRect(x0, y0, x1, y1 float64, v uint8) func(*masking.Frame) {
	return func(f *masking.Frame) {
		y, _, _ := f.Planes()
		for r := int(y0 * float64(f.H)); r < int(y1*float64(f.H)); r++ {
			for c := int(x0 * float64(f.W)); c < int(x1*float64(f.W)); c++ {
				y[r*f.W+c] = v
			}
		}
	}
}

// shadow darkens a diagonal band covering about cover of the frame to k,
// with soft edges.
func shadow(cover, k float64) func(*masking.Frame) {
	return func(f *masking.Frame) {
		y, _, _ := f.Planes()
		w := cover * float64(f.W)
		for r := 0; r < f.H; r++ {
			for c := 0; c < f.W; c++ {
				d := float64(c) - 0.3*float64(f.W) - 0.4*float64(r) // distance along the band
				a := math.Min(1, math.Max(0, math.Min(d+20, w+20-d)/40))
				y[r*f.W+c] = uint8(float64(y[r*f.W+c]) * (1 - a*(1-k)))
			}
		}
	}
}

// headlights adds two saturated discs.
func headlights(t testing.TB) func(*masking.Frame) {
	return func(f *masking.Frame) {
		withLuma(t, f, func(m *gocv.Mat) {
			for _, p := range []image.Point{{700, 820}, {880, 820}} {
				gocv.Circle(m, p, 45, color.RGBA{255, 255, 255, 255}, -1)
				gocv.Circle(m, p, 90, color.RGBA{235, 235, 235, 255}, 20)
			}
		})
	}
}

func flip(t testing.TB) func(*masking.Frame) {
	return func(f *masking.Frame) {
		withLuma(t, f, func(m *gocv.Mat) {
			flipped := gocv.NewMat()
			defer flipped.Close()
			gocv.Flip(*m, &flipped, 1)
			flipped.CopyTo(m)
		})
	}
}

func blur(t testing.TB, sigma float64) func(*masking.Frame) {
	return func(f *masking.Frame) {
		withLuma(t, f, func(m *gocv.Mat) { gocv.GaussianBlur(*m, m, image.Point{}, sigma, sigma, gocv.BorderReflect101) })
	}
}

// night turns the frame into an IR picture: monochrome, other contrast.
func night(f *masking.Frame) {
	mapLuma(f, func(v float64) float64 { return 20 + 1.3*math.Pow(v/255, 1.4)*255 })
	_, u, v := f.Planes()
	for i := range u {
		u[i], v[i] = 128, 128
	}
}

// lightsOn brightens a region (a floodlight switched on) to k, with a
// soft edge.
func lightsOn(x0, y0, x1, y1, k float64) func(*masking.Frame) {
	return func(f *masking.Frame) {
		y, _, _ := f.Planes()
		for r := int(y0 * float64(f.H)); r < int(y1*float64(f.H)); r++ {
			for c := int(x0 * float64(f.W)); c < int(x1*float64(f.W)); c++ {
				y[r*f.W+c] = uint8(math.Min(255, float64(y[r*f.W+c])*k))
			}
		}
	}
}

// rain draws short bright streaks all over the frame.
func rain(t testing.TB, seed uint64) func(*masking.Frame) {
	return func(f *masking.Frame) {
		rng := rand.New(rand.NewPCG(seed, 2))
		withLuma(t, f, func(m *gocv.Mat) {
			for range 1500 {
				x, y := rng.IntN(f.W), rng.IntN(f.H)
				gocv.Line(m, image.Pt(x, y), image.Pt(x+4, y+30), color.RGBA{200, 200, 200, 255}, 1)
			}
		})
	}
}
