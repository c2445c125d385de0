package anonymise

import "velo/masking/maskspec"

// inPolygon reports whether (x, y) lies inside poly (even-odd rule).
func inPolygon(poly []maskspec.Point, x, y float64) bool {
	in := false
	for i, j := 0, len(poly)-1; i < len(poly); j, i = i, i+1 {
		a, b := poly[i], poly[j]
		if (a.Y > y) != (b.Y > y) && x < (b.X-a.X)*(y-a.Y)/(b.Y-a.Y)+a.X {
			in = !in
		}
	}
	return in
}

// boxInZone: a detection counts when any of its centre or corners lies
// in the zone (a person half inside is still masked).
func boxInZone(b Box, zone []maskspec.Point) bool {
	cx, cy := b.center()
	for _, p := range [][2]float64{{cx, cy}, {b.X0, b.Y0}, {b.X1, b.Y0}, {b.X0, b.Y1}, {b.X1, b.Y1}} {
		if inPolygon(zone, p[0], p[1]) {
			return true
		}
	}
	return false
}

// zoneLuma is the mean luma of the zone, sampled on a grid of about 64×64
// points; 255 when no sample falls in the zone.
func zoneLuma(y []byte, w, h int, zone []maskspec.Point) float64 {
	sx, sy := max(1, w/64), max(1, h/64)
	var sum, n float64
	for yy := sy / 2; yy < h; yy += sy {
		for xx := sx / 2; xx < w; xx += sx {
			if inPolygon(zone, (float64(xx)+0.5)/float64(w), (float64(yy)+0.5)/float64(h)) {
				sum += float64(y[yy*w+xx])
				n++
			}
		}
	}
	if n == 0 {
		return 255
	}
	return sum / n
}
