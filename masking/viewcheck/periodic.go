package viewcheck

import "math"

// Repeating texture (a fence, tiles, a brick wall, a chequered pavement)
// matches itself shifted by a multiple of its period, and a region that
// looks the same wherever the camera points matches at any shift: with a
// strong contrast it dominates the gradient correlation, and a camera
// moved by hand keeps a fair score with the unique structures of the view
// (a door, windows, edges) in the wrong place. So the blocks whose
// structure repeats (a secondary peak of their autocorrelation, separated
// from the centre by a valley) are told apart from the distinctive ones:
//
//   - the score is the lower of the score over every valid pixel (the
//     repeating texture tells small shifts apart well) and the score over
//     the distinctive pixels alone (large shifts, which the texture
//     aliases);
//   - the global shift is measured by phase correlation of the distinctive
//     structure alone, and the deep check keeps the last transform instead
//     of the tiles' only when its distinctive blocks match better.
//
// A view with too little distinctive structure (less than
// minDistinctPixels of its valid pixels, or fewer than minDistinctBlocks
// textured blocks) is scored on every valid pixel only.

const (
	// periodicReach is the largest shift, in reference pixels, at which
	// a block's autocorrelation is looked at.
	periodicReach = 8
	// periodicPeak: a secondary peak of a block's autocorrelation at
	// least this high, with a valley at most periodicValley between it
	// and the centre, makes the block periodic.
	periodicPeak   = 0.6
	periodicValley = 0.3
	// minDistinctPixels is the fraction of the valid pixels, and
	// minDistinctBlocks the number of textured blocks, that the
	// distinctive part of a view needs to be scored on its own.
	minDistinctPixels = 0.2
	minDistinctBlocks = 6
)

// distinctive is valid less the blocks (blockSize, reference pixels) of
// st whose structure repeats within periodicReach; enough reports whether
// it holds enough structure to be scored alone.
func distinctive(st *structure, valid []bool) (distinct []bool, enough bool) {
	w, h := st.w, st.h
	distinct = append([]bool(nil), valid...)
	for by := 0; by < h; by += blockSize {
		for bx := 0; bx < w; bx += blockSize {
			if !st.periodicBlock(valid, bx, by) {
				continue
			}
			for y := by; y < min(h, by+blockSize); y++ {
				clear(distinct[y*w+bx : y*w+min(w, bx+blockSize)])
			}
		}
	}
	var nv, nd, textured int
	for i, ok := range valid {
		if ok {
			nv++
		}
		if distinct[i] {
			nd++
		}
	}
	energy, _ := st.blockEnergy(distinct, blockSize, nil, nil)
	for _, e := range energy {
		if e >= 10*minTexture {
			textured++
		}
	}
	return distinct, float64(nd) >= minDistinctPixels*float64(nv) && textured >= minDistinctBlocks
}

// splitDistinct finds the distinctive part of the reference (its
// full-size structure st) and splits the half-size valid pixels into it
// and the rest.
func (rm *refModel) splitDistinct(st *structure) {
	w, h := rm.ref.Width, rm.ref.Height
	var enough bool
	rm.distinct, enough = distinctive(st, rm.valid)
	if !enough {
		rm.distinct = rm.valid
		return
	}
	rm.split = true
	rm.distinctH = validity(halveExclusion(excludedBut(rm.distinct), w, h), w/2, h/2)
	rm.periodicH = without(rm.validH, rm.distinctH)
	rm.distinctRunsH = validRuns(rm.distinctH, w/2, h/2)
	rm.periodicRunsH = validRuns(rm.periodicH, w/2, h/2)
	for _, ok := range rm.distinctH {
		if ok {
			rm.minDistinctN++ // samples: half the distinctive pixels' two
		}
	}
}

// without is the pixels valid in valid but not in less.
func without(valid, less []bool) []bool {
	out := make([]bool, len(valid))
	for i, ok := range valid {
		out[i] = ok && !less[i]
	}
	return out
}

// excludedBut is the exclusion mask (1: excluded) of the pixels outside
// keep.
func excludedBut(keep []bool) []byte {
	out := make([]byte, len(keep))
	for i, ok := range keep {
		if !ok {
			out[i] = 1
		}
	}
	return out
}

// periodicBlock: the block at (bx, by) is textured and its
// autocorrelation has a secondary peak separated from the centre by a
// valley.
func (st *structure) periodicBlock(valid []bool, bx, by int) bool {
	const side = 2*periodicReach + 1
	var ac [side * side]float64
	at := func(sx, sy int) float64 { return ac[(sy+periodicReach)*side+sx+periodicReach] }
	for sy := -periodicReach; sy <= periodicReach; sy++ {
		for sx := -periodicReach; sx <= periodicReach; sx++ {
			c, ok := st.blockAutocorrelation(valid, bx, by, sx, sy)
			if !ok && sx == 0 && sy == 0 {
				return false // flat, or mostly masked
			}
			if !ok {
				c = math.NaN() // too little overlap: neither peak nor valley
			}
			ac[(sy+periodicReach)*side+sx+periodicReach] = c
		}
	}
	for sy := -periodicReach; sy <= periodicReach; sy++ {
		for sx := -periodicReach; sx <= periodicReach; sx++ {
			steps := max(abs(sx), abs(sy))
			if steps < 2 || !(at(sx, sy) >= periodicPeak) {
				continue
			}
			for k := 1; k < steps; k++ {
				tx := int(math.Round(float64(sx*k) / float64(steps)))
				ty := int(math.Round(float64(sy*k) / float64(steps)))
				if at(tx, ty) <= periodicValley {
					return true
				}
			}
		}
	}
	return false
}

// blockAutocorrelation is the normalised correlation of the block's
// gradients with those sx, sy away, over the pixels valid at both ends;
// ok is false for a block too little valid or flat.
func (st *structure) blockAutocorrelation(valid []bool, bx, by, sx, sy int) (c float64, ok bool) {
	w, h := st.w, st.h
	var saa, sbb, sab float64
	n := 0
	for y := by; y < min(h, by+blockSize); y++ {
		qy := y + sy
		if qy < 0 || qy >= h {
			continue
		}
		for x := bx; x < min(w, bx+blockSize); x++ {
			qx := x + sx
			i, q := y*w+x, qy*w+qx
			if qx < 0 || qx >= w || !valid[i] || !valid[q] {
				continue
			}
			ax, ay, bxv, byv := float64(st.DX[i]), float64(st.DY[i]), float64(st.DX[q]), float64(st.DY[q])
			saa += ax*ax + ay*ay
			sbb += bxv*bxv + byv*byv
			sab += ax*bxv + ay*byv
			n++
		}
	}
	if n < blockSize*blockSize/2 || saa < minTexture*float64(n) || sbb <= 0 {
		return 0, false
	}
	return sab / math.Sqrt(saa*sbb), true
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}
