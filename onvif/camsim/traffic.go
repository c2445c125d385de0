package camsim

import (
	"math"
	"time"
)

// What moves: cars on the street, walkers on the pavement in front of the
// wall, and the shadow of the building opposite. Every position is a
// function of the scene clock, so a frame is determined by its SceneState.

var (
	colTyre     = yuv{30, 128, 128}
	colTrousers = yuv{48, 128, 130}
	colSkin     = yuv{150, 112, 142}
)

const (
	carLength = 0.45
	carHeight = 0.1
	carCount  = 4
)

// carAt is car i's body at scene time t; cars drive right.
func carAt(i int, t time.Duration) WorldRect {
	speed := 0.6 + 0.2*float64(i)
	x := math.Mod(t.Seconds()*speed+float64(i)*1.7, 7) - 3.5
	lane := -0.5 + 0.12*float64(i%2)
	return WorldRect{x, lane, x + carLength, lane + carHeight}
}

// drawCars draws the cars: body, cabin glass, tyres.
func drawCars(f *Frame, v view, t time.Duration) {
	for i := 0; i < carCount; i++ {
		c := carAt(i, t)
		f.fillWorld(v, c, yuv{uint8(60 + 40*i), uint8(90 + 20*i), uint8(170 - 25*i)})
		f.fillWorld(v, WorldRect{c.X0 + 0.1, c.Y0 + 0.055, c.X0 + 0.34, c.Y1 - 0.008}, colWindow)
		for _, wx := range []float64{c.X0 + 0.06, c.X0 + 0.32} {
			f.fillWorld(v, WorldRect{wx, c.Y0 - 0.012, wx + 0.065, c.Y0 + 0.02}, colTyre)
		}
	}
}

// walker is one pedestrian: walking speed (world units/s, negative: to the
// left), where it starts, and its coat.
type walker struct {
	speed, start float64
	coat         yuv
}

func walkers() []walker {
	return []walker{
		{0.11, -3.0, yuv{70, 150, 110}},
		{-0.09, 2.2, yuv{120, 100, 160}},
		{0.14, 0.4, yuv{160, 128, 120}},
		{-0.12, -1.1, yuv{55, 110, 140}},
		{0.08, 1.6, yuv{95, 160, 100}},
	}
}

// walkerX is where a walker's centre is at scene time t: it crosses the
// 7.6-unit-wide scene and comes back in from the other side.
func walkerX(w walker, t time.Duration) float64 {
	x := math.Mod(w.start+w.speed*t.Seconds()+3.8, 7.6)
	if x < 0 {
		x += 7.6
	}
	return x - 3.8
}

// drawWalkers draws the pedestrians: striding legs, coat, head.
func drawWalkers(f *Frame, v view, t time.Duration) {
	const feet = -0.245
	for _, w := range walkers() {
		x := walkerX(w, t)
		stride := 0.022 * math.Sin(2*math.Pi*t.Seconds()*math.Abs(w.speed)*5)
		for _, d := range []float64{stride, -stride} {
			f.fillWorld(v, WorldRect{x + d - 0.012, feet, x + d + 0.012, -0.02}, colTrousers)
		}
		f.fillWorld(v, WorldRect{x - 0.045, -0.03, x + 0.045, 0.2}, w.coat)
		f.fillWorld(v, WorldRect{x - 0.025, 0.2, x + 0.025, 0.27}, colSkin)
	}
}

// shadowEdge is the world x of the shadow's edge at height y and scene time
// t: a slanted edge that enters from the left at t = 0, sweeps across the
// whole front in 2 min and back in the next 2.
func shadowEdge(y float64, t time.Duration) float64 {
	const period = 240.0
	ph := math.Mod(t.Seconds(), period) / period
	tri := 1 - math.Abs(2*ph-1) // 0 → 1 → 0
	return -4.5 + 9*tri + 0.6*y
}

// drawShadow darkens what lies left of the shadow edge (with a soft
// penumbra), below the roof line; its depth follows the daylight.
func drawShadow(f *Frame, v view, st SceneState) {
	depth := 0.45 * st.Light
	if depth <= 0 {
		return
	}
	pen := 0.03 / v.fw * float64(f.W) / 2 // penumbra width in pixels
	img := f.YCbCr()
	for y := 0; y < f.H; y++ {
		wy := v.worldY(y, f.H)
		if wy > worldRoof.Y1 {
			continue
		}
		ex := v.imageX(shadowEdge(wy, st.T), f.W)
		full := int(math.Min(math.Max(ex-pen, 0), float64(f.W)))
		end := int(math.Min(math.Max(ex, 0), float64(f.W)))
		row := img.Y[y*f.W : (y+1)*f.W]
		darken(row[:full], 1-depth)
		for x := full; x < end; x++ {
			k := 1 - depth*(ex-float64(x))/pen
			row[x] = uint8(16 + (float64(row[x])-16)*k)
		}
		if y&1 == 0 {
			c := img.CStride * (y / 2)
			desaturate(img.Cb[c:c+full/2], 1-depth/2)
			desaturate(img.Cr[c:c+full/2], 1-depth/2)
		}
	}
}

// darken scales luma above black by k.
func darken(row []byte, k float64) {
	q := int(k * 256)
	for i, y := range row {
		row[i] = byte(16 + (int(y)-16)*q>>8)
	}
}

// desaturate scales chroma towards grey (128) by k.
func desaturate(row []byte, k float64) {
	q := int(k * 256)
	for i, c := range row {
		row[i] = byte(128 + (int(c)-128)*q>>8)
	}
}
