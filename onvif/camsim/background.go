package camsim

import "math"

// The static street front: brick and plaster with grain, windows with frames
// and mullions, a panelled door, a sign, lamp posts, a drainpipe, a car park
// with bay lines. Structure at several scales (grain, bricks, frames,
// storeys), drawn in world coordinates so it moves with the view; nothing
// here depends on time or light.

var (
	colBrick    = yuv{118, 112, 152}
	colPlinth   = yuv{96, 124, 130}
	colFrame    = yuv{190, 126, 130}
	colSill     = yuv{150, 126, 129}
	colDoorDark = yuv{70, 118, 142}
	colPanel    = yuv{104, 110, 148}
	colMetal    = yuv{200, 128, 128}
	colHousing  = yuv{128, 128, 128}
	colSign     = yuv{225, 128, 128}
	colInk      = yuv{50, 165, 115}
	colPole     = yuv{62, 128, 126}
	colAsphalt  = yuv{95, 126, 130}
	colKerb     = yuv{150, 126, 128}
	colPaint    = yuv{215, 128, 128}
)

var (
	worldPanel    = WorldRect{-0.05, -0.08, 1.15, 0.85} // rendered entrance surround
	worldPlinth   = WorldRect{-3.5, -0.22, 3.5, -0.08}
	worldSign     = WorldRect{0.92, 0.12, 1.06, 0.28}
	worldDoorLamp = WorldRect{0.24, 0.56, 0.34, 0.62}
)

// lampPosts are the world x of the street lamps (in the gaps between
// windows, clear of the entrance).
func lampPosts() []float64 { return []float64{-2.4, -1.4, -0.4, 1.6, 2.6} }

// windowRects lists the windows' outer frames (two storeys,
// none over the door and badge reader).
func windowRects() []WorldRect {
	var out []WorldRect
	for wx := -3.3; wx < 3.3; wx += 0.5 {
		for _, wy := range []float64{0.2, 0.55} {
			if wx > 0.0 && wx < 0.8 {
				continue
			}
			out = append(out, WorldRect{wx, wy, wx + 0.3, wy + 0.25})
		}
	}
	return out
}

// drawStatic draws everything that does not move, markers last so that they
// are exactly where Regions says.
func drawStatic(f *Frame, v view) {
	drawSky(f)
	drawGround(f, v)
	f.paint(v, worldWall, colBrick, brickTexture(0.028, 0.07))
	f.paint(v, worldPanel, colWall, plasterTexture)
	f.paint(v, worldPlinth, colPlinth, brickTexture(0.055, 0.16))
	f.paint(v, worldRoof, colRoof, roofTexture)
	for _, w := range windowRects() {
		drawWindow(f, v, w)
	}
	drawDoor(f, v)
	drawFixtures(f, v)
	// Badge reader: a housing, then the marker pattern.
	f.paint(v, grow(worldBadge, 0.012), colHousing, func(wx, wy float64) float64 { return grain(wx, wy, 400, 3) })
	br := v.toImage(worldBadge, f.W, f.H)
	f.checker(br, br.Min, colMarkerA, colMarkerB)
	st := v.toImage(worldStreet, f.W, f.H)
	f.checker(st, st.Min, colMarkerC, colMarkerD)
}

// drawSky is a vertical gradient over the whole frame (what no surface
// covers is sky).
func drawSky(f *Frame) {
	img := f.YCbCr()
	for y := 0; y < f.H; y++ {
		k := float64(y) / float64(f.H)
		c := yuv{lerp(colSkyTop.y, colSkyBot.y, k), lerp(colSkyTop.u, colSkyBot.u, k), lerp(colSkyTop.v, colSkyBot.v, k)}
		fillBytes(img.Y[y*f.W:(y+1)*f.W], c.y)
		if y&1 == 0 {
			fillBytes(img.Cb[(y/2)*img.CStride:(y/2+1)*img.CStride], c.u)
			fillBytes(img.Cr[(y/2)*img.CStride:(y/2+1)*img.CStride], c.v)
		}
	}
}

// drawGround is the car park in front of the street: asphalt, a kerb and
// painted bay lines.
func drawGround(f *Frame, v view) {
	f.paint(v, worldGround, colAsphalt, func(wx, wy float64) float64 { return grain(wx, wy, 250, 4) })
	f.fill(v.toImage(WorldRect{-3.5, -0.59, 3.5, -0.55}, f.W, f.H), colKerb)
	for x := -3.4; x < 3.5; x += 0.5 {
		f.fill(v.toImage(WorldRect{x, -1.25, x + 0.015, -0.62}, f.W, f.H), colPaint)
	}
	f.fill(v.toImage(WorldRect{-3.5, -1.27, 3.5, -1.25}, f.W, f.H), colPaint)
}

// drawWindow draws a window: sill, light frame, glass with a reflection,
// mullion and transom.
func drawWindow(f *Frame, v view, w WorldRect) {
	f.fill(v.toImage(WorldRect{w.X0 - 0.015, w.Y0 - 0.025, w.X1 + 0.015, w.Y0}, f.W, f.H), colSill)
	f.fill(v.toImage(w, f.W, f.H), colFrame)
	f.paint(v, grow(w, -0.02), colWindow, glassTexture(grow(w, -0.02)))
	mx := (w.X0 + w.X1) / 2
	f.fill(v.toImage(WorldRect{mx - 0.006, w.Y0, mx + 0.006, w.Y1}, f.W, f.H), colFrame)
	ty := w.Y0 + 0.6*(w.Y1-w.Y0)
	f.fill(v.toImage(WorldRect{w.X0, ty - 0.006, w.X1, ty + 0.006}, f.W, f.H), colFrame)
}

// drawDoor draws the entrance door: frame, leaf, panel, glass and handle.
func drawDoor(f *Frame, v view) {
	f.fill(v.toImage(worldDoor, f.W, f.H), colDoorDark)
	f.paint(v, grow(worldDoor, -0.015), colDoor, woodTexture)
	f.paint(v, WorldRect{0.15, -0.17, 0.43, 0.12}, colPanel, woodTexture)
	glass := WorldRect{0.16, 0.2, 0.42, 0.44}
	f.paint(v, glass, colWindow, glassTexture(glass))
	f.fill(v.toImage(WorldRect{0.415, 0.1, 0.455, 0.135}, f.W, f.H), colMetal)
}

// drawFixtures draws the sign, lamp posts, drainpipe and the lamp above the
// door.
func drawFixtures(f *Frame, v view) {
	f.fill(v.toImage(grow(worldSign, 0.006), f.W, f.H), colInk)
	f.fill(v.toImage(worldSign, f.W, f.H), colSign)
	for row := 0; row < 3; row++ {
		y0 := worldSign.Y1 - 0.035 - 0.045*float64(row)
		for x := worldSign.X0 + 0.012; x < worldSign.X1-0.02; x += 0.016 {
			if hash2(int64(x*1000), int64(row))%5 == 0 {
				continue // a space between words
			}
			f.fill(v.toImage(WorldRect{x, y0, x + 0.011, y0 + 0.022}, f.W, f.H), colInk)
		}
	}
	for _, x := range lampPosts() {
		f.fill(v.toImage(WorldRect{x - 0.012, -0.22, x + 0.012, 0.62}, f.W, f.H), colPole)
		f.fill(v.toImage(WorldRect{x - 0.06, 0.6, x + 0.06, 0.64}, f.W, f.H), colPole)
	}
	f.fill(v.toImage(WorldRect{1.12, -0.22, 1.14, 0.9}, f.W, f.H), colPole)
	f.fill(v.toImage(worldDoorLamp, f.W, f.H), colPole)
}

// brickTexture lays bricks of course height ch and length bw in stretcher
// bond: light mortar joints, a tone per brick, grain.
func brickTexture(ch, bw float64) func(wx, wy float64) float64 {
	return func(wx, wy float64) float64 {
		cy := wy / ch
		course := math.Floor(cy)
		if cy-course < 0.14 {
			return 28 + grain(wx, wy, 300, 2)
		}
		bx := wx/bw + 0.5*float64(int64(course)&1)
		b := math.Floor(bx)
		if bx-b < 0.05 {
			return 28 + grain(wx, wy, 300, 2)
		}
		return float64(int(hash2(int64(b), int64(course))%21)-10) + grain(wx, wy, 300, 3)
	}
}

// glassTexture is a pane reflecting the sky: brighter towards the top, a
// diagonal highlight, the grain of the street's reflection.
func glassTexture(g WorldRect) func(wx, wy float64) float64 {
	return func(wx, wy float64) float64 {
		l := 14*(wy-g.Y0)/(g.Y1-g.Y0) + grain(wx, wy, 120, 3)
		if d := (wx - g.X0) - (wy - g.Y0); d > 0.04 && d < 0.09 {
			l += 22
		}
		return l
	}
}

// woodTexture is painted wood: stripes of grain along the boards.
func woodTexture(wx, wy float64) float64 {
	return 2.5*fastSin(wx*180+2*fastSin(wy*13)) + grain(wx, wy*0.2, 300, 2)
}

// plasterTexture is a rendered wall: fine grain over slow blotches, faint
// enough that a patch of it reads as plain wall.
func plasterTexture(wx, wy float64) float64 {
	blotch := 1.6 * fastSin(wx*9.1+1.7*fastSin(wy*5.3)) * fastSin(wy*7.7+wx*2.1+math.Pi/2)
	return blotch + grain(wx, wy, 220, 2.2)
}

// roofTexture is rows of tiles with a dark gap between rows.
func roofTexture(wx, wy float64) float64 {
	r := wy / 0.025
	row := math.Floor(r)
	if r-row < 0.2 {
		return -22
	}
	tile := math.Floor(wx/0.04 + 0.5*float64(int64(row)&1))
	return float64(int(hash2(int64(tile), int64(row))%13)-6) + grain(wx, wy, 300, 2)
}

// fastSin is sin to within 0.001 (textures need smooth, not exact).
func fastSin(x float64) float64 {
	x -= 2 * math.Pi * math.Floor(x/(2*math.Pi)+0.5) // −π..π
	y := 4/math.Pi*x - 4/(math.Pi*math.Pi)*x*math.Abs(x)
	return 0.225*(y*math.Abs(y)-y) + y
}

// grain is deterministic noise of amplitude amp in cells of 1/density
// world units.
func grain(wx, wy, density, amp float64) float64 {
	n := hash2(int64(math.Floor(wx*density)), int64(math.Floor(wy*density)))
	return (float64(n&0xff)/127.5 - 1) * amp
}

// hash2 mixes two integers into 32 well-spread bits.
func hash2(a, b int64) uint32 {
	h := uint64(a)*0x9E3779B97F4A7C15 ^ uint64(b)*0xC2B2AE3D27D4EB4F
	h ^= h >> 29
	h *= 0xBF58476D1CE4E5B9
	h ^= h >> 32
	return uint32(h)
}

// grow enlarges a world rect by d on every side (shrinks when d < 0).
func grow(r WorldRect, d float64) WorldRect { return WorldRect{r.X0 - d, r.Y0 - d, r.X1 + d, r.Y1 + d} }

// paint fills world rect wr with colour c, the luma varied by tex (a
// function of the world position, so the texture moves with the view).
func (f *Frame) paint(v view, wr WorldRect, c yuv, tex func(wx, wy float64) float64) {
	r := v.toImage(wr, f.W, f.H)
	if r.Empty() {
		return
	}
	f.fill(r, c)
	xs := make([]float64, r.Dx())
	for i := range xs {
		xs[i] = v.worldX(r.Min.X+i, f.W)
	}
	for y := r.Min.Y; y < r.Max.Y; y++ {
		wy := v.worldY(y, f.H)
		row := f.Data[y*f.W+r.Min.X : y*f.W+r.Max.X]
		for i, wx := range xs {
			row[i] = clampY(float64(c.y) + tex(wx, wy))
		}
	}
}

// fillWorld fills a world rect with a colour.
func (f *Frame) fillWorld(v view, wr WorldRect, c yuv) { f.fill(v.toImage(wr, f.W, f.H), c) }

// clampY rounds a luma value into the limited range 16..235.
func clampY(y float64) uint8 {
	switch v := int(y + 0.5); {
	case v < 16:
		return 16
	case v > 235:
		return 235
	default:
		return uint8(v)
	}
}

func fillBytes(b []byte, v byte) {
	for i := range b {
		b[i] = v
	}
}
