package viewcheck

import (
	"math"
	"slices"

	"gocv.io/x/gocv"
)

// Tiles of the deep check: tileCols × tileRows tiles of tileSize pixels
// (at reference size), spread evenly over the picture.
const (
	tileSize = 64
	tileCols = 4
	tileRows = 3
	// minTileResponse is the phase-correlation peak below which a tile's
	// shift is noise.
	minTileResponse = 0.08
	// minInliers is how many tiles must agree on one transform.
	minInliers = 5
	// consensusRadius (reference pixels) is how far from a transform a
	// tile's displacement may be to agree with it.
	consensusRadius = 1.5
)

// tile is one of a reference's deep-check tiles.
type tile struct {
	cx, cy int      // centre, reference pixels
	ref    gocv.Mat // its spectrum (see correlator)
	usable bool     // enough valid, textured pixels to measure a shift
}

// newTiles cuts the tiles out of the reference's zero-mean structure P.
func newTiles(P, G []float32, valid []bool, w, h int, pc *correlator) []tile {
	var tiles []tile
	buf := make([]float32, tileSize*tileSize)
	for r := range tileRows {
		for c := range tileCols {
			t := tile{
				cx: tileSize/2 + int(math.Round(float64(c*(w-tileSize))/float64(tileCols-1))),
				cy: tileSize/2 + int(math.Round(float64(r*(h-tileSize))/float64(tileRows-1))),
			}
			cut(buf, P, w, h, t.cx, t.cy)
			t.ref = pc.reference(buf)
			t.usable = tileTexture(G, valid, w, h, t.cx, t.cy)
			tiles = append(tiles, t)
		}
	}
	return tiles
}

// tileTexture: at least half the tile's pixels valid, and textured.
func tileTexture(G []float32, valid []bool, w, h, cx, cy int) bool {
	var n int
	var e float64
	for y := cy - tileSize/2; y < cy+tileSize/2; y++ {
		for x := cx - tileSize/2; x < cx+tileSize/2; x++ {
			if x >= 0 && y >= 0 && x < w && y < h && valid[y*w+x] {
				n++
				e += float64(G[y*w+x]) * float64(G[y*w+x])
			}
		}
	}
	return n >= tileSize*tileSize/2 && e/float64(n) >= minTexture
}

// cut copies the tileSize square of src centred at (cx, cy) into dst, 0
// outside src, less its mean.
func cut(dst, src []float32, w, h, cx, cy int) {
	var sum float64
	x0, y0 := cx-tileSize/2, cy-tileSize/2
	for ty := range tileSize {
		y := y0 + ty
		for tx := range tileSize {
			x := x0 + tx
			v := float32(0)
			if x >= 0 && y >= 0 && x < w && y < h {
				v = src[y*w+x]
			}
			dst[ty*tileSize+tx] = v
			sum += float64(v)
		}
	}
	mean := float32(sum / float64(tileSize*tileSize))
	for i := range dst {
		dst[i] -= mean
	}
}

// tileShift is one tile's measured displacement.
type tileShift struct {
	u, v   float64 // tile centre less the picture's centre
	dx, dy float64
	weight float64
}

// measureTiles measures each usable tile's displacement in the frame's
// zero-mean structure P, looking where guess maps the tile's centre.
func measureTiles(tiles []tile, P []float32, w, h int, pc *correlator, guess similarity) []tileShift {
	cx, cy := float64(w-1)/2, float64(h-1)/2
	buf := pc.input()
	var out []tileShift
	for _, t := range tiles {
		if !t.usable {
			continue
		}
		u, v := float64(t.cx)-cx, float64(t.cy)-cy
		ox := int(math.Round(guess.a*u - guess.b*v + guess.tx))
		oy := int(math.Round(guess.b*u + guess.a*v + guess.ty))
		cut(buf, P, w, h, t.cx+ox, t.cy+oy)
		dx, dy, resp := pc.displacement(t.ref)
		if resp < minTileResponse || math.IsNaN(dx) || math.IsNaN(dy) {
			continue
		}
		out = append(out, tileShift{u: u, v: v, dx: float64(ox) + dx, dy: float64(oy) + dy, weight: resp})
	}
	return out
}

// fitSimilarity fits a similarity to the tiles' displacements by weighted
// least squares, starting from the largest consensus and dropping the
// tiles that disagree (moving objects, changed parts of the scene); ok is
// false when too few tiles agree.
func fitSimilarity(ts []tileShift) (t similarity, ok bool) {
	in := consensus(ts)
	for range 3 {
		if len(in) < minInliers {
			return similarity{}, false
		}
		var solved bool
		t, solved = solveSimilarity(in)
		if !solved {
			return similarity{}, false
		}
		res := make([]float64, len(in))
		for i, s := range in {
			res[i] = t.residual(s)
		}
		sorted := slices.Clone(res)
		slices.Sort(sorted)
		limit := math.Max(1.0, 2.5*sorted[len(sorted)/2])
		kept := in[:0:0]
		for i, s := range in {
			if res[i] <= limit {
				kept = append(kept, s)
			}
		}
		if len(kept) == len(in) {
			return t, len(in)*2 >= len(ts)
		}
		in = kept
	}
	return t, len(in) >= minInliers && len(in)*2 >= len(ts)
}

// consensus is the largest set of tiles (the heaviest of equal size) that
// agree within consensusRadius with the similarity through two of them:
// the tiles of the view's motion when part of the picture stayed (a
// static overlay, a region that looks the same wherever the camera
// points) or moved otherwise, which a least-squares start would average
// with it.
func consensus(ts []tileShift) []tileShift {
	var best []tileShift
	bestW := 0.0
	for i := range ts {
		for j := i + 1; j < len(ts); j++ {
			t, ok := solveSimilarity([]tileShift{ts[i], ts[j]})
			if !ok {
				continue
			}
			var in []tileShift
			w := 0.0
			for _, s := range ts {
				if t.residual(s) <= consensusRadius {
					in = append(in, s)
					w += s.weight
				}
			}
			if len(in) > len(best) || (len(in) == len(best) && w > bestW) {
				best, bestW = in, w
			}
		}
	}
	if len(best) < minInliers {
		return slices.Clone(ts)
	}
	return best
}

// residual is how far s's displacement is from what t predicts.
func (t similarity) residual(s tileShift) float64 {
	return math.Hypot(t.a*s.u-t.b*s.v+t.tx-s.dx, t.b*s.u+t.a*s.v+t.ty-s.dy)
}

// solveSimilarity solves the weighted normal equations of
// dx = a·u − b·v + tx, dy = b·u + a·v + ty.
func solveSimilarity(ts []tileShift) (similarity, bool) {
	var A [4][5]float64
	add := func(row [4]float64, rhs, w float64) {
		for i := range 4 {
			for j := range 4 {
				A[i][j] += w * row[i] * row[j]
			}
			A[i][4] += w * row[i] * rhs
		}
	}
	for _, s := range ts {
		add([4]float64{s.u, -s.v, 1, 0}, s.dx, s.weight)
		add([4]float64{s.v, s.u, 0, 1}, s.dy, s.weight)
	}
	for c := range 4 {
		p := c
		for r := c + 1; r < 4; r++ {
			if math.Abs(A[r][c]) > math.Abs(A[p][c]) {
				p = r
			}
		}
		if math.Abs(A[p][c]) < 1e-9 {
			return similarity{}, false
		}
		A[c], A[p] = A[p], A[c]
		for r := range 4 {
			if r != c {
				f := A[r][c] / A[c][c]
				for k := c; k < 5; k++ {
					A[r][k] -= f * A[c][k]
				}
			}
		}
	}
	return similarity{a: A[0][4] / A[0][0], b: A[1][4] / A[1][1], tx: A[2][4] / A[2][2], ty: A[3][4] / A[3][3]}, true
}
