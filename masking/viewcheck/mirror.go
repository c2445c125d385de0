package viewcheck

import "math"

// mirror is a reference's half-size structure mirrored as a camera's own
// flip setting would show it (left-right, top-bottom, or both: turned by
// 180°), for the per-frame flip test.
type mirror struct {
	flipX, flipY bool
	st           *structure // gradients only
	valid        []bool
	runs         [][][2]int
}

// newMirrors mirrors the half-size structure s (valid where valid) the
// three ways a camera can flip its picture.
func newMirrors(s *structure, valid []bool) []mirror {
	var out []mirror
	for _, f := range [][2]bool{{true, false}, {false, true}, {true, true}} {
		m := mirror{flipX: f[0], flipY: f[1], st: newHalfStructure(s.w, s.h), valid: make([]bool, len(valid))}
		sx, sy := float32(1), float32(1)
		if m.flipX {
			sx = -1
		}
		if m.flipY {
			sy = -1
		}
		for y := range s.h {
			for x := range s.w {
				i, j := y*s.w+x, m.source(x, y, s.w, s.h)
				m.st.DX[i], m.st.DY[i], m.valid[i] = sx*s.DX[j], sy*s.DY[j], valid[j]
			}
		}
		m.runs = validRuns(m.valid, s.w, s.h)
		out = append(out, m)
	}
	return out
}

// source is the index of the pixel of the w×h original that the mirror
// shows at (x, y).
func (m *mirror) source(x, y, w, h int) int {
	if m.flipX {
		x = w - 1 - x
	}
	if m.flipY {
		y = h - 1 - y
	}
	return y*w + x
}

// mirroredScore is the best structural score of the prepared frame
// against the reference's mirrors, each where a flipped picture of the
// camera at t would be (whole half-size pixels), over every step-th row.
func (rm *refModel) mirroredScore(ws *workspace, t similarity, step int) float64 {
	dx, dy := int(math.Round(t.tx/2)), int(math.Round(t.ty/2))
	best := 0.0
	for i := range rm.mirrors {
		m := &rm.mirrors[i]
		mx, my := dx, dy
		if m.flipX {
			mx = -dx
		}
		if m.flipY {
			my = -dy
		}
		var s float64
		if mx == 0 && my == 0 {
			s = runScore(m.st, ws.half, m.runs, 0, step)
		} else {
			s = shiftScore(m.st, ws.half, m.valid, mx, my)
		}
		best = max(best, s)
	}
	return best
}
