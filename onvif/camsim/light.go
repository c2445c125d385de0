package camsim

import (
	"math"
	"time"
)

// The light: a compressed day (DayCycle), what falling light does to the
// picture (applyLight: darker, paler; at night the IR picture), and the
// lights that come on (drawLightSources: windows, lamps, headlights).

// Phases of the compressed day, as fractions of the period.
const (
	duskStart = 0.45 // daylight (shadows sweeping) until here
	nightFrom = 0.55 // dusk: light falls to 0, the camera switches to IR
	dawnStart = 0.85 // IR night with headlights until here
	dayFrom   = 0.95 // dawn: light rises to 1
	irBelow   = 0.2  // the camera's IR cut filter switches below this light
)

// DayCycle is the state of a compressed day of the given period at scene
// time t: daylight with sweeping shadows until 45 % of the period, dusk
// (the light ramps down, the camera switches to IR below 0.2), IR night
// with headlights from 55 %, dawn from 85 %, daylight again from 95 %.
// A period ≤ 0 is constant daylight without shadows. Traffic and Tamper
// are left for the caller.
func DayCycle(t, period time.Duration) SceneState {
	st := SceneState{T: t, Light: 1}
	if period <= 0 {
		return st
	}
	ph := float64(t%period) / float64(period)
	switch {
	case ph < duskStart:
	case ph < nightFrom:
		st.Light = smooth(1 - (ph-duskStart)/(nightFrom-duskStart))
	case ph < dawnStart:
		st.Light = 0
	case ph < dayFrom:
		st.Light = smooth((ph - dawnStart) / (dayFrom - dawnStart))
	}
	st.IR = st.Light < irBelow
	st.Shadows = st.Light > 0
	return st
}

// smooth eases 0..1 in and out.
func smooth(x float64) float64 { return x * x * (3 - 2*x) }

// applyLight turns the daylight picture into what the camera sees at
// st.Light: darker and paler at dusk (auto-exposure makes up part of it),
// or the IR night picture.
func applyLight(f *Frame, v view, st SceneState) {
	switch {
	case st.IR:
		irPicture(f, v)
	case st.Light < 1:
		img := f.YCbCr()
		darken(img.Y, 0.3+0.7*st.Light)
		desaturate(img.Cb, 0.35+0.65*st.Light)
		desaturate(img.Cr, 0.35+0.65*st.Light)
	}
}

// irPicture is the night picture with the IR cut filter out: no colour,
// a flatter contrast (paint and plaster reflect IR alike), a dark sky, and
// the illuminator's hot spot falling off towards the corners.
func irPicture(f *Frame, v view) {
	img := f.YCbCr()
	fillBytes(img.Cb, 128)
	fillBytes(img.Cr, 128)
	var lut [256]int
	for i := range lut {
		lut[i] = int(36 + (float64(i)-16)*0.6)
	}
	gx := falloff(f.W)
	gy := falloff(f.H)
	for y := 0; y < f.H; y++ {
		row := img.Y[y*f.W : (y+1)*f.W]
		if v.worldY(y, f.H) > worldRoof.Y1 {
			fillBytes(row, 22)
			continue
		}
		for x, p := range row {
			row[x] = byte(16 + (lut[p]-16)*gx[x]*gy[y]>>16)
		}
	}
}

// falloff is the illuminator's fall-off along an axis of n pixels, in
// 1/256: 256 in the centre, about 70 % at the edges.
func falloff(n int) []int {
	g := make([]int, n)
	for i := range g {
		d := (float64(i)+0.5)/float64(n)*2 - 1
		g[i] = int(256 * (1 - 0.3*d*d))
	}
	return g
}

// drawLightSources draws what shines after dark: lit windows (each switches
// on at its own light level), the door and street lamps, headlights and
// tail lights with the beam on the road.
func drawLightSources(f *Frame, v view, st SceneState) {
	if st.Light >= 0.5 {
		return
	}
	lit, dark := yuv{185, 100, 150}, yuv{60, 128, 128}
	if st.IR {
		lit = yuv{175, 128, 128}
	}
	for i, w := range windowRects() {
		h := hash2(int64(i), 77)
		if h%3 == 0 || st.Light > 0.05+0.4*float64(h%100)/100 {
			continue
		}
		f.fillWorld(v, grow(w, -0.02), lit)
		mx, ty := (w.X0+w.X1)/2, w.Y0+0.6*(w.Y1-w.Y0)
		f.fillWorld(v, WorldRect{mx - 0.006, w.Y0, mx + 0.006, w.Y1}, dark)
		f.fillWorld(v, WorldRect{w.X0, ty - 0.006, w.X1, ty + 0.006}, dark)
	}
	if st.Light < 0.4 {
		lamp := yuv{232, 118, 136}
		if st.IR {
			lamp = yuv{232, 128, 128}
		}
		f.fillWorld(v, worldDoorLamp, lamp)
		for _, x := range lampPosts() {
			f.fillWorld(v, WorldRect{x - 0.05, 0.6, x + 0.05, 0.625}, lamp)
		}
	}
	if st.Traffic {
		drawHeadlights(f, v, st)
	}
}

// drawHeadlights lights each car's lamps and the road ahead of it.
func drawHeadlights(f *Frame, v view, st SceneState) {
	tail := yuv{82, 100, 220}
	if st.IR {
		tail = yuv{120, 128, 128}
	}
	for i := 0; i < carCount; i++ {
		c := carAt(i, st.T)
		beam := WorldRect{c.X1, c.Y0 - 0.005, c.X1 + 0.6, c.Y0 + 0.06}
		brighten(f, v, beam, 80)
		f.fillWorld(v, WorldRect{c.X1 - 0.025, c.Y0 + 0.03, c.X1, c.Y0 + 0.055}, yuv{235, 128, 128})
		f.fillWorld(v, WorldRect{c.X0, c.Y0 + 0.03, c.X0 + 0.015, c.Y0 + 0.055}, tail)
	}
}

// brighten adds light to a world rect, amount at its left edge fading to
// nothing at its right edge (a beam pointing right).
func brighten(f *Frame, v view, wr WorldRect, amount float64) {
	r := v.toImage(wr, f.W, f.H)
	if r.Empty() {
		return
	}
	x0, x1 := v.imageX(wr.X0, f.W), v.imageX(wr.X1, f.W)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		row := f.Data[y*f.W : (y+1)*f.W]
		for x := r.Min.X; x < r.Max.X; x++ {
			k := 1 - (float64(x)-x0)/(x1-x0)
			row[x] = byte(math.Min(235, float64(row[x])+amount*math.Max(k, 0)))
		}
	}
}
