package camsim

import (
	"math"
	"time"
)

// SceneState is everything about one instant of the scene besides where the
// camera points: the scene clock, the light, what moves, and what was done
// to the camera. A zero Light is night: start from DayCycle(t, 0) for
// constant daylight.
type SceneState struct {
	// T is the scene clock: it drives the cars, the walkers and the
	// shadows, deterministically.
	T time.Duration
	// Light is the daylight level, 1 (full day) .. 0 (night).
	Light float64
	// IR is the camera's night mode: IR cut filter out, monochrome picture
	// (U = V = 128) with the IR illuminator's contrast.
	IR bool
	// Shadows draws the sweeping shadow of the building opposite.
	Shadows bool
	// Traffic draws cars on the street and walkers in front of the wall.
	// Without it nothing in the scene moves.
	Traffic bool
	// Tamper is what was done to the camera's view on site.
	Tamper Tamper
}

// Tamper is a change of a camera's view made on site (a bump, the camera's
// own menu, something on the lens). The zero value is no tamper.
type Tamper struct {
	// ShiftX, ShiftY move the picture's content right and down by these
	// fractions of the frame width and height (a bumped camera).
	ShiftX float64 `json:"shift_x"`
	ShiftY float64 `json:"shift_y"`
	// RotateDeg turns the picture's content counter-clockwise about the
	// frame centre, in degrees.
	RotateDeg float64 `json:"rotate_deg"`
	// Zoom magnifies the content about the frame centre (2: twice as
	// large, 0.5: wider view); 0 or 1 is none.
	Zoom float64 `json:"zoom"`
	// FlipH, FlipV mirror the picture left-right and top-bottom.
	FlipH bool `json:"flip_h"`
	FlipV bool `json:"flip_v"`
	// Cover is the fraction of the frame, from the left edge, hidden by a
	// dark uniform object in front of the lens; 1 is a covered lens.
	Cover float64 `json:"cover"`
	// Blur is the defocus radius in pixels (0: sharp).
	Blur int `json:"blur"`
}

// zoom is the magnification (1 when unset).
func (t Tamper) zoom() float64 {
	if t.Zoom <= 0 {
		return 1
	}
	return t.Zoom
}

// RenderI420 renders one full I420 frame (w×h luma, then the two w/2×h/2
// chroma planes) of scene ("ptz", "badge" or "street") filmed from
// position p in state st. It is deterministic: the same arguments give the
// same bytes. The live cameras render through it (with a Renderer).
func RenderI420(scene string, w, h int, p Position, st SceneState) []byte {
	f := NewFrame(w, h)
	var r Renderer
	r.Render(f, scene, p, st)
	return f.Data
}

// Renderer renders frames exactly as RenderI420 does, into f (f.W×f.H),
// keeping the static background of the last view between calls: while the
// view does not change it redraws only what moves and the light, which is
// what makes thousands of frames cheap. The zero value is ready; not for
// concurrent use.
type Renderer struct {
	bgKey  bgKey
	bg     *Frame
	canvas *Frame // rotation: the wider picture the output is cut from
}

type bgKey struct {
	scene string
	w, h  int
	v     view
}

// Render draws scene into f: the world seen through the (tampered) view,
// then what the light and the camera do to the picture.
func (r *Renderer) Render(f *Frame, scene string, p Position, st SceneState) {
	t := st.Tamper
	v := viewFor(scene, f.W, f.H, p).tampered(t)
	canvas := f
	if t.RotateDeg != 0 {
		bw, bh := rotatedBounds(f.W, f.H, t.RotateDeg)
		v = v.widened(float64(bw)/float64(f.W), float64(bh)/float64(f.H))
		if r.canvas == nil || r.canvas.W != bw || r.canvas.H != bh {
			r.canvas = NewFrame(bw, bh)
		}
		canvas = r.canvas
	}
	r.background(canvas, scene, v)
	if st.Traffic {
		drawWalkers(canvas, v, st.T)
		drawCars(canvas, v, st.T)
	}
	if st.Shadows {
		drawShadow(canvas, v, st)
	}
	applyLight(canvas, v, st)
	drawLightSources(canvas, v, st)
	if t.RotateDeg != 0 {
		rotateInto(f, canvas, t.RotateDeg)
	}
	coverLens(f, t.Cover)
	defocus(f, t.Blur)
	flip(f, t.FlipH, t.FlipV)
}

// background copies the static scene for view v into f, drawing it only
// when the view changed since the last frame.
func (r *Renderer) background(f *Frame, scene string, v view) {
	key := bgKey{scene: scene, w: f.W, h: f.H, v: v}
	if r.bg == nil || r.bgKey != key {
		if r.bg == nil || r.bg.W != f.W || r.bg.H != f.H {
			r.bg = NewFrame(f.W, f.H)
		}
		drawStatic(r.bg, v)
		r.bgKey = key
	}
	copy(f.Data, r.bg.Data)
}

// tampered is the view after a shift and a zoom of the picture.
func (v view) tampered(t Tamper) view {
	z := t.zoom()
	v.fw /= z
	v.fh /= z
	v.cx -= 2 * t.ShiftX * v.fw
	v.cy += 2 * t.ShiftY * v.fh
	return v
}

// widened is the same view on a canvas kx, ky times larger (same scale).
func (v view) widened(kx, ky float64) view {
	v.fw *= kx
	v.fh *= ky
	return v
}

// rotatedBounds is the (even) size of a canvas that holds every pixel of a
// w×h frame turned by deg.
func rotatedBounds(w, h int, deg float64) (int, int) {
	s, c := math.Abs(math.Sin(deg*math.Pi/180)), math.Abs(math.Cos(deg*math.Pi/180))
	bw := int(math.Ceil(float64(w)*c+float64(h)*s)) + 2
	bh := int(math.Ceil(float64(w)*s+float64(h)*c)) + 2
	return bw + bw&1, bh + bh&1
}
