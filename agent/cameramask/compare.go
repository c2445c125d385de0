package cameramask

import (
	"math"
	"strings"

	"velo/onvif"
)

// pointTolerance is how far (in image units, 1 = the frame's width or
// height) a vertex read back may stand from the one pushed: 1 % of the
// frame, the bound the view check uses for a mask edge. Cameras round
// coordinates to their own grid.
const pointTolerance = 0.01

// colourTolerance is the colour difference (code values) taken as equal.
const colourTolerance = 1.0

// pair is an expected mask and the camera mask standing for it.
type pair struct {
	exp  Expected
	got  onvif.Mask
	what []string
}

// matching is the comparison of expected masks with the camera's.
type matching struct {
	same    []pair
	changed []pair
	missing []Expected
	extra   []onvif.Mask
}

// match pairs each expected mask with an equal camera mask; those left
// with the unclaimed camera mask their bounding box overlaps most
// (changed); the rest are missing, and unclaimed camera masks extra.
func match(exp []Expected, have []onvif.Mask) matching {
	var m matching
	claimed := make([]bool, len(have))
	var pending []Expected
	for _, e := range exp {
		j := -1
		for i, h := range have {
			if !claimed[i] && len(differences(e.Mask, h)) == 0 {
				j = i
				break
			}
		}
		if j < 0 {
			pending = append(pending, e)
			continue
		}
		claimed[j] = true
		m.same = append(m.same, pair{exp: e, got: have[j]})
	}
	for _, e := range pending {
		j, best := -1, 0.0
		for i, h := range have {
			if o := overlap(e.Mask.Polygon, h.Polygon); !claimed[i] && o > best {
				j, best = i, o
			}
		}
		if j < 0 {
			m.missing = append(m.missing, e)
			continue
		}
		claimed[j] = true
		m.changed = append(m.changed, pair{exp: e, got: have[j], what: differences(e.Mask, have[j])})
	}
	for i, h := range have {
		if !claimed[i] {
			m.extra = append(m.extra, h)
		}
	}
	return m
}

// differences lists what differs between the pushed mask and one read
// back: "polygon", "type", "colour", "enabled".
func differences(want, got onvif.Mask) []string {
	var d []string
	if !samePolygon(want.Polygon, got.Polygon) {
		d = append(d, "polygon")
	}
	if !strings.EqualFold(want.Type, got.Type) {
		d = append(d, "type")
	} else if want.Color != nil && (got.Color == nil || colourDistance(*want.Color, *got.Color) > colourTolerance) {
		d = append(d, "colour")
	}
	if want.Enabled != got.Enabled {
		d = append(d, "enabled")
	}
	return d
}

// samePolygon reports whether b has a's vertices within pointTolerance,
// starting anywhere and in either direction (a camera may store a
// polygon from another vertex, or a rectangle in its own order).
func samePolygon(a, b []onvif.Point) bool {
	a, b = openRing(a), openRing(b)
	n := len(a)
	if n == 0 || n != len(b) {
		return false
	}
	for start := range n {
		for _, dir := range []int{1, -1} {
			ok := true
			for i := 0; i < n && ok; i++ {
				ok = near(a[i], b[((start+dir*i)%n+n)%n])
			}
			if ok {
				return true
			}
		}
	}
	return false
}

// openRing drops a closing vertex equal to the first.
func openRing(p []onvif.Point) []onvif.Point {
	if len(p) > 1 && near(p[0], p[len(p)-1]) {
		return p[:len(p)-1]
	}
	return p
}

func near(p, q onvif.Point) bool {
	a, b := p.ToImage(), q.ToImage()
	return math.Abs(a.X-b.X) <= pointTolerance && math.Abs(a.Y-b.Y) <= pointTolerance
}

// overlap is the intersection over union of two polygons' bounding boxes.
func overlap(a, b []onvif.Point) float64 {
	ax0, ay0, ax1, ay1 := bounds(a)
	bx0, by0, bx1, by1 := bounds(b)
	w := math.Min(ax1, bx1) - math.Max(ax0, bx0)
	h := math.Min(ay1, by1) - math.Max(ay0, by0)
	if w <= 0 || h <= 0 {
		return 0
	}
	inter := w * h
	return inter / ((ax1-ax0)*(ay1-ay0) + (bx1-bx0)*(by1-by0) - inter)
}

func bounds(p []onvif.Point) (x0, y0, x1, y1 float64) {
	if len(p) == 0 {
		return 0, 0, 0, 0
	}
	x0, y0, x1, y1 = float64(p[0].X), float64(p[0].Y), float64(p[0].X), float64(p[0].Y)
	for _, q := range p[1:] {
		x0, x1 = math.Min(x0, float64(q.X)), math.Max(x1, float64(q.X))
		y0, y1 = math.Min(y0, float64(q.Y)), math.Max(y1, float64(q.Y))
	}
	return x0, y0, x1, y1
}
