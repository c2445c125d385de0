package cameramask

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"velo/masking/maskspec"
	"velo/onvif"
)

// Mask types of tr2:Mask.
const (
	typeColor     = "Color"
	typePixelated = "Pixelated"
	typeBlurred   = "Blurred"
)

// colorspaceYCbCr is ONVIF's YCbCr colour space; maskspec colours are
// BT.601 limited-range YCbCr already.
const colorspaceYCbCr = "http://www.onvif.org/ver10/colorspace/YCbCr"

// rectangleFill is how much of its bounding rectangle a polygon must fill
// to be taken as that rectangle by a RectangleOnly camera (1 % more masked
// at most, the bound used for every comparison here).
const rectangleFill = 0.99

// planner adapts the view's masks to one camera's mask options.
type planner struct {
	source string
	opt    onvif.MaskOptions
	// single is the colour every Color mask shares on a SingleColorOnly
	// camera (the first one planned).
	single *onvif.Color
}

// plan returns the view's masks as the camera should hold them, in the
// configuration's order, and the masks the camera cannot take.
func plan(masks []maskspec.Mask, source string, opt onvif.MaskOptions) ([]Expected, []Unsupported) {
	p := &planner{source: source, opt: opt}
	var exp []Expected
	var uns []Unsupported
	for i, m := range masks {
		name := m.Name
		if name == "" {
			name = fmt.Sprintf("#%d", i+1)
		}
		e, reason := p.expected(m)
		if reason == "" && opt.MaxMasks > 0 && len(exp) >= opt.MaxMasks {
			reason = fmt.Sprintf("the camera holds at most %d masks", opt.MaxMasks)
		}
		if reason != "" {
			uns = append(uns, Unsupported{Name: name, Reason: reason})
			continue
		}
		e.Name, e.index = name, i
		exp = append(exp, e)
	}
	return exp, uns
}

// expected converts one view mask, or says why the camera cannot take it.
func (p *planner) expected(m maskspec.Mask) (Expected, string) {
	poly, reason := p.polygon(m)
	if reason != "" {
		return Expected{}, reason
	}
	typ, note, reason := p.maskType(m.Style)
	if reason != "" {
		return Expected{}, reason
	}
	mask := onvif.Mask{ConfigurationToken: p.source, Polygon: poly, Type: typ, Enabled: true}
	if typ == typeColor {
		c, colourNote := p.colour(m.Color)
		mask.Color = &c
		note = joinNotes(note, colourNote)
	}
	return Expected{Mask: mask, Note: note}, ""
}

// polygon returns the mask's polygon in ONVIF coordinates within the
// camera's limits.
func (p *planner) polygon(m maskspec.Mask) ([]onvif.Point, string) {
	pts := m.Polygon
	if m.Style == maskspec.StyleFull {
		pts = []maskspec.Point{{X: 0, Y: 0}, {X: 1, Y: 0}, {X: 1, Y: 1}, {X: 0, Y: 1}}
	}
	if p.opt.RectangleOnly {
		r, ok := asRectangle(pts)
		if !ok {
			return nil, "the camera takes rectangles only and this polygon is not one (its bounding rectangle would hide more than was approved)"
		}
		pts = r
	}
	if len(pts) < 3 {
		return nil, fmt.Sprintf("the polygon has %d points, a mask needs at least 3", len(pts))
	}
	if p.opt.MaxPoints > 0 && len(pts) > p.opt.MaxPoints {
		return nil, fmt.Sprintf("the polygon has %d points, the camera takes at most %d", len(pts), p.opt.MaxPoints)
	}
	out := make([]onvif.Point, len(pts))
	for i, q := range pts {
		out[i] = onvif.ImagePoint{X: q.X, Y: q.Y}.ToONVIF()
	}
	return out, ""
}

// asRectangle returns the bounding rectangle of pts (image coordinates)
// when pts fill it, i.e. the polygon is an axis-aligned rectangle.
func asRectangle(pts []maskspec.Point) ([]maskspec.Point, bool) {
	if len(pts) < 3 {
		return nil, false
	}
	x0, y0, x1, y1 := pts[0].X, pts[0].Y, pts[0].X, pts[0].Y
	var area float64
	for i, q := range pts {
		x0, x1 = math.Min(x0, q.X), math.Max(x1, q.X)
		y0, y1 = math.Min(y0, q.Y), math.Max(y1, q.Y)
		n := pts[(i+1)%len(pts)]
		area += q.X*n.Y - n.X*q.Y
	}
	box := (x1 - x0) * (y1 - y0)
	if box <= 0 || math.Abs(area)/2 < rectangleFill*box {
		return nil, false
	}
	return []maskspec.Point{{X: x0, Y: y0}, {X: x1, Y: y0}, {X: x1, Y: y1}, {X: x0, Y: y1}}, true
}

// maskType maps a style to a type the camera offers: pixelate and blur
// fall back to Color (hides more), fill never falls back to a weaker type.
func (p *planner) maskType(s maskspec.Style) (typ, note, reason string) {
	want := typeColor
	switch s {
	case maskspec.StylePixelate:
		want = typePixelated
	case maskspec.StyleBlur:
		want = typeBlurred
	}
	if p.offers(want) {
		return want, "", ""
	}
	if want != typeColor && p.offers(typeColor) {
		return typeColor, fmt.Sprintf("the camera has no %s masks: Color instead", want), ""
	}
	return "", "", fmt.Sprintf("the camera offers no %s mask (types: %s)", want, strings.Join(p.opt.Types, ", "))
}

// offers reports whether the camera offers mask type t; a camera that
// lists no types is taken to offer Color alone.
func (p *planner) offers(t string) bool {
	if len(p.opt.Types) == 0 {
		return t == typeColor
	}
	return slices.ContainsFunc(p.opt.Types, func(s string) bool { return strings.EqualFold(s, t) })
}

// colour returns the colour to push for c: c itself, or the nearest of
// the camera's list, or the shared colour of a SingleColorOnly camera.
func (p *planner) colour(c maskspec.YUV) (onvif.Color, string) {
	if c == (maskspec.YUV{}) {
		c = maskspec.Black()
	}
	want := onvif.Color{X: onvif.Float(c.Y), Y: onvif.Float(c.U), Z: onvif.Float(c.V), Colorspace: colorspaceYCbCr}
	if p.single != nil {
		if colourDistance(want, *p.single) > colourTolerance {
			return *p.single, fmt.Sprintf("the camera takes one colour for all masks: %s instead of %s", colourString(*p.single), colourString(want))
		}
		return *p.single, ""
	}
	got, note := want, ""
	if len(p.opt.Colors) > 0 {
		got = p.opt.Colors[0]
		for _, o := range p.opt.Colors[1:] {
			if colourDistance(want, o) < colourDistance(want, got) {
				got = o
			}
		}
		if colourDistance(want, got) > colourTolerance {
			note = fmt.Sprintf("colour %s is not among the camera's: nearest %s", colourString(want), colourString(got))
		}
	}
	if p.opt.SingleColorOnly {
		p.single = &got
	}
	return got, note
}

// ycbcr returns c as BT.601 limited-range Y, Cb, Cr (a colour in an RGB
// colour space is converted; any other is taken as YCbCr).
func ycbcr(c onvif.Color) [3]float64 {
	if strings.Contains(strings.ToLower(c.Colorspace), "rgb") {
		u8 := func(v onvif.Float) uint8 { return uint8(math.Max(0, math.Min(255, math.Round(float64(v))))) }
		yuv := maskspec.RGBToYUV(u8(c.X), u8(c.Y), u8(c.Z))
		return [3]float64{float64(yuv.Y), float64(yuv.U), float64(yuv.V)}
	}
	return [3]float64{float64(c.X), float64(c.Y), float64(c.Z)}
}

func colourDistance(a, b onvif.Color) float64 {
	p, q := ycbcr(a), ycbcr(b)
	return math.Sqrt((p[0]-q[0])*(p[0]-q[0]) + (p[1]-q[1])*(p[1]-q[1]) + (p[2]-q[2])*(p[2]-q[2]))
}

func colourString(c onvif.Color) string {
	v := ycbcr(c)
	return fmt.Sprintf("YCbCr(%g,%g,%g)", v[0], v[1], v[2])
}

func joinNotes(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; " + b
}
