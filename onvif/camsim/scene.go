package camsim

import (
	"image"
	"math"
)

// The world the cameras film, in world units: x right, y up. A PTZ camera
// looks at a window of it centred on (pan·2 + ox, tilt·1 + oy) with half-width
// 1/(1+3·zoom); fixed cameras use a fixed window.
//
// Two regions carry a *marker pattern* (an 8×8-pixel checkerboard of
// saturated colours) that no other part of the scene has: the badge reader
// and the street. Tests use it to prove masks hide them. Everything else has
// the texture and structure of a real street front (background.go), may
// move (traffic.go) and changes with the light (light.go).

// WorldRect is an axis-aligned rectangle in world units.
type WorldRect struct{ X0, Y0, X1, Y1 float64 }

// Region names.
const (
	RegionBadgeReader = "badge_reader"
	RegionStreet      = "street"
)

var (
	worldBadge  = WorldRect{0.55, 0.05, 0.75, 0.35}
	worldStreet = WorldRect{-3.5, -0.55, 3.5, -0.22}
	worldWall   = WorldRect{-3.5, -0.22, 3.5, 0.9}
	worldDoor   = WorldRect{0.1, -0.22, 0.48, 0.5}
	worldRoof   = WorldRect{-3.5, 0.9, 3.5, 1.0}
	worldGround = WorldRect{-3.5, -2, 3.5, -0.55}
)

// Colours in YUV (BT.601 limited range).
type yuv struct{ y, u, v uint8 }

var (
	colSkyTop  = yuv{200, 150, 110}
	colSkyBot  = yuv{225, 140, 118}
	colWall    = yuv{170, 120, 132}
	colRoof    = yuv{80, 118, 150}
	colDoor    = yuv{90, 110, 150}
	colWindow  = yuv{60, 150, 120}
	colGround  = yuv{110, 110, 120}
	colMarkerA = yuv{105, 212, 234} // magenta
	colMarkerB = yuv{145, 54, 34}   // green
	colMarkerC = yuv{210, 16, 146}  // yellow
	colMarkerD = yuv{41, 240, 110}  // blue
)

type view struct {
	cx, cy, fw, fh float64
}

// viewFor returns the camera's world window for a position.
func viewFor(scene string, w, h int, p Position) view {
	switch scene {
	case "badge":
		return view{cx: 0.62, cy: 0.15, fw: 0.45, fh: 0.45 * float64(h) / float64(w)}
	case "street":
		return view{cx: -1.4, cy: -0.3, fw: 0.9, fh: 0.9 * float64(h) / float64(w)}
	}
	fw := 1 / (1 + 3*p.Zoom)
	return view{cx: p.Pan * 2, cy: p.Tilt, fw: fw, fh: fw * float64(h) / float64(w)}
}

// worldX is the world x at the centre of pixel column x of a w-wide image.
func (v view) worldX(x, w int) float64 {
	return v.cx + (float64(x)+0.5-float64(w)/2)*2*v.fw/float64(w)
}

// worldY is the world y at the centre of pixel row y of an h-high image.
func (v view) worldY(y, h int) float64 {
	return v.cy - (float64(y)+0.5-float64(h)/2)*2*v.fh/float64(h)
}

// imageX is the pixel column of world x (not clipped).
func (v view) imageX(x float64, w int) float64 { return (x-v.cx)/v.fw*float64(w)/2 + float64(w)/2 }

// imageY is the pixel row of world y (not clipped).
func (v view) imageY(y float64, h int) float64 { return (v.cy-y)/v.fh*float64(h)/2 + float64(h)/2 }

// toImage maps a world rect to a pixel rect (clipped, may be empty).
func (v view) toImage(r WorldRect, w, h int) image.Rectangle {
	x0 := (r.X0-v.cx)/v.fw*float64(w)/2 + float64(w)/2
	x1 := (r.X1-v.cx)/v.fw*float64(w)/2 + float64(w)/2
	y0 := (v.cy-r.Y1)/v.fh*float64(h)/2 + float64(h)/2
	y1 := (v.cy-r.Y0)/v.fh*float64(h)/2 + float64(h)/2
	rect := image.Rect(int(math.Floor(x0)), int(math.Floor(y0)), int(math.Ceil(x1)), int(math.Ceil(y1)))
	return rect.Intersect(image.Rect(0, 0, w, h))
}

// NormRect is a rectangle in normalized image coordinates [0,1], y down.
type NormRect struct{ X0, Y0, X1, Y1 float64 }

// Regions returns where the marked regions appear in the image of a camera
// with the given config at position p (normalized, clipped; absent when
// out of view).
func Regions(cfg CameraConfig, p Position) map[string]NormRect {
	v := viewFor(cfg.Scene, cfg.Width, cfg.Height, p)
	out := map[string]NormRect{}
	for name, wr := range map[string]WorldRect{RegionBadgeReader: worldBadge, RegionStreet: worldStreet} {
		r := v.toImage(wr, cfg.Width, cfg.Height)
		if r.Empty() {
			continue
		}
		out[name] = NormRect{float64(r.Min.X) / float64(cfg.Width), float64(r.Min.Y) / float64(cfg.Height),
			float64(r.Max.X) / float64(cfg.Width), float64(r.Max.Y) / float64(cfg.Height)}
	}
	return out
}

// Frame is an I420 image: Y plane W×H, then U and V planes (W/2)×(H/2).
type Frame struct {
	W, H int
	Data []byte
}

// NewFrame allocates an I420 frame.
func NewFrame(w, h int) *Frame { return &Frame{W: w, H: h, Data: make([]byte, w*h*3/2)} }

// YCbCr views the frame as an image.YCbCr (4:2:0), sharing memory.
func (f *Frame) YCbCr() *image.YCbCr {
	ys := f.W * f.H
	cs := (f.W / 2) * (f.H / 2)
	return &image.YCbCr{Y: f.Data[:ys], Cb: f.Data[ys : ys+cs], Cr: f.Data[ys+cs : ys+2*cs],
		YStride: f.W, CStride: f.W / 2, SubsampleRatio: image.YCbCrSubsampleRatio420, Rect: image.Rect(0, 0, f.W, f.H)}
}

func (f *Frame) fill(r image.Rectangle, c yuv) {
	if r.Empty() {
		return
	}
	img := f.YCbCr()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		row := img.Y[y*f.W+r.Min.X : y*f.W+r.Max.X]
		for i := range row {
			row[i] = c.y
		}
	}
	cr := image.Rect(r.Min.X/2, r.Min.Y/2, (r.Max.X+1)/2, (r.Max.Y+1)/2)
	for y := cr.Min.Y; y < cr.Max.Y; y++ {
		u := img.Cb[y*img.CStride+cr.Min.X : y*img.CStride+cr.Max.X]
		v := img.Cr[y*img.CStride+cr.Min.X : y*img.CStride+cr.Max.X]
		for i := range u {
			u[i], v[i] = c.u, c.v
		}
	}
}

// checker draws an 8×8-pixel two-colour checkerboard anchored at origin.
func (f *Frame) checker(r image.Rectangle, origin image.Point, a, b yuv) {
	if r.Empty() {
		return
	}
	img := f.YCbCr()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		ry := ((y - origin.Y) >> 3) & 1
		for x := r.Min.X; x < r.Max.X; x++ {
			c := a
			if ((x-origin.X)>>3)&1 != ry {
				c = b
			}
			img.Y[y*f.W+x] = c.y
			if x&1 == 0 && y&1 == 0 {
				img.Cb[(y/2)*img.CStride+x/2] = c.u
				img.Cr[(y/2)*img.CStride+x/2] = c.v
			}
		}
	}
}

func lerp(a, b uint8, k float64) uint8 { return uint8(float64(a) + (float64(b)-float64(a))*k) }
