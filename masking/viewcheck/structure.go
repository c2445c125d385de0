package viewcheck

import (
	"math"
)

// blockSize is the side in pixels (at reference size) of the blocks the
// obstruction check compares.
const blockSize = 16

// minTexture is the gradient energy (log luma, per pixel) below which a
// block is flat: about 1 % contrast per pixel.
const minTexture = 1e-4

// logLUT maps luma to its log; the offset keeps the sensor noise of dark
// pictures from dominating.
func logLUT() (t [256]float32) {
	for v := range t {
		t[v] = float32(math.Log(float64(v) + 16))
	}
	return t
}

// structure holds an image's log luma and its gradient.
type structure struct {
	w, h   int
	lut    [256]float32
	L      []float32 // log luma
	DX, DY []float32 // gradient of L (central differences); 0 on the border
	G      []float32 // its magnitude (full size only: phase correlation)
	noG    bool
}

func newStructure(w, h int) *structure {
	n := w * h
	return &structure{w: w, h: h, lut: logLUT(), L: make([]float32, n), DX: make([]float32, n), DY: make([]float32, n), G: make([]float32, n)}
}

// newHalfStructure is a structure without G, for the per-frame score.
func newHalfStructure(w, h int) *structure {
	n := w * h
	return &structure{w: w, h: h, lut: logLUT(), L: make([]float32, n), DX: make([]float32, n), DY: make([]float32, n), noG: true}
}

// compute fills the structure from a w×h luma image.
func (s *structure) compute(luma []byte) {
	w, h := s.w, s.h
	L := s.L
	for i, v := range luma[:w*h] {
		L[i] = s.lut[v]
	}
	for _, d := range [][]float32{s.DX, s.DY} {
		clear(d[:w])
		clear(d[(h-1)*w:])
	}
	for y := 1; y < h-1; y++ {
		row := y * w
		up, cur, down := L[row-w:row], L[row:row+w], L[row+w:row+2*w]
		dx, dy := s.DX[row:row+w], s.DY[row:row+w]
		dx[0], dy[0], dx[w-1], dy[w-1] = 0, 0, 0, 0
		for x := 1; x < w-1; x++ {
			dx[x] = 0.5 * (cur[x+1] - cur[x-1])
			dy[x] = 0.5 * (down[x] - up[x])
		}
	}
	if s.noG {
		return
	}
	for i, gx := range s.DX {
		gy := s.DY[i]
		s.G[i] = float32(math.Sqrt(float64(gx*gx + gy*gy)))
	}
}

// validity marks the pixels the checks use: not on the border and with no
// excluded pixel in their 3×3 neighbourhood (the gradient's support).
func validity(excl []byte, w, h int) []bool {
	v := make([]bool, w*h)
	for y := 1; y < h-1; y++ {
		for x := 1; x < w-1; x++ {
			ok := true
			for dy := -1; dy <= 1 && ok; dy++ {
				r := (y+dy)*w + x
				ok = excl[r-1] == 0 && excl[r] == 0 && excl[r+1] == 0
			}
			v[y*w+x] = ok
		}
	}
	return v
}

// sharpness is the ratio of Laplacian to gradient energy of L over the
// valid pixels: a gain or gamma change of the picture leaves it alone,
// blur lowers it.
func (s *structure) sharpness(runs [][][2]int) float64 {
	w, L := s.w, s.L
	var lap2, grad2 float64
	for y, rr := range runs {
		if y == 0 || y == s.h-1 {
			continue // valid pixels are never on the border; be safe
		}
		var rl, rg float32 // a row's sums: float32 is exact enough
		for _, r := range rr {
			i0, i1 := y*w+max(r[0], 1), y*w+min(r[1], w-1)
			if i0 >= i1 {
				continue
			}
			cur := L[i0-1 : i1+1]
			up, down := L[i0-w:i1-w], L[i0+w:i1+w]
			dx, dy := s.DX[i0:i1], s.DY[i0:i1]
			up, down, dy = up[:len(dx)], down[:len(dx)], dy[:len(dx)]
			for x, gx := range dx {
				l := cur[x] + cur[x+2] + up[x] + down[x] - 4*cur[x+1]
				rl += l * l
				rg += 4 * (gx*gx + dy[x]*dy[x])
			}
		}
		lap2 += float64(rl)
		grad2 += float64(rg)
	}
	if grad2 == 0 {
		return 0
	}
	return lap2 / grad2
}

// blockEnergy is the mean squared gradient of each block of size×size
// pixels over its valid pixels, row-major over ceil(w/size) ×
// ceil(h/size) blocks; -1 for a block less than half valid. count is
// scratch space, reused when large enough.
func (s *structure) blockEnergy(valid []bool, size int, out []float64, count []int) ([]float64, []int) {
	bw, bh := blocksAcross(s.w, size), blocksAcross(s.h, size)
	out = append(out[:0], make([]float64, bw*bh)...)
	count = append(count[:0], make([]int, bw*bh)...)
	for y := 0; y < s.h; y++ {
		brow := (y / size) * bw
		dx, dy, vr := s.DX[y*s.w:(y+1)*s.w], s.DY[y*s.w:(y+1)*s.w], valid[y*s.w:(y+1)*s.w]
		for x, ok := range vr {
			if ok {
				b := brow + x/size
				out[b] += float64(dx[x]*dx[x] + dy[x]*dy[x])
				count[b]++
			}
		}
	}
	for b := range out {
		if count[b] < size*size/2 {
			out[b] = -1
			continue
		}
		out[b] /= float64(count[b])
	}
	return out, count
}

// runBlockEnergy is blockEnergy over the valid runs (the per-frame,
// half-size case).
func (s *structure) runBlockEnergy(runs [][][2]int, size int, out []float64, count []int) ([]float64, []int) {
	bw, bh := blocksAcross(s.w, size), blocksAcross(s.h, size)
	out = append(out[:0], make([]float64, bw*bh)...)
	count = append(count[:0], make([]int, bw*bh)...)
	for y, rr := range runs {
		brow := (y / size) * bw
		for _, r := range rr {
			for x0 := r[0]; x0 < r[1]; {
				x1 := min(r[1], (x0/size+1)*size)
				dx, dy := s.DX[y*s.w+x0:y*s.w+x1], s.DY[y*s.w+x0:y*s.w+x1]
				dy = dy[:len(dx)]
				var e float32 // a block row's sum: float32 is exact enough
				for x, gx := range dx {
					e += gx*gx + dy[x]*dy[x]
				}
				out[brow+x0/size] += float64(e)
				count[brow+x0/size] += x1 - x0
				x0 = x1
			}
		}
	}
	for b := range out {
		if count[b] < size*size/2 {
			out[b] = -1
			continue
		}
		out[b] /= float64(count[b])
	}
	return out, count
}

func blocksAcross(n, size int) int { return (n + size - 1) / size }

// texturedFraction is the fraction of usable blocks with structure.
func texturedFraction(s *structure, valid []bool) float64 {
	var textured, usable int
	blocks, _ := s.blockEnergy(valid, blockSize, nil, nil)
	for _, e := range blocks {
		if e < 0 {
			continue
		}
		usable++
		if e >= minTexture {
			textured++
		}
	}
	if usable == 0 {
		return 0
	}
	return float64(textured) / float64(usable)
}

// flatFraction is the fraction of the blocks textured in ref that are
// flat in frame: below flat × their energy in ref, or below minTexture.
func flatFraction(ref, frame []float64, flat float64) float64 {
	var n, gone int
	for b, e := range ref {
		if e < minTexture || frame[b] < 0 {
			continue
		}
		n++
		if frame[b] < flat*e || frame[b] < minTexture {
			gone++
		}
	}
	if n == 0 {
		return 0
	}
	return float64(gone) / float64(n)
}

// similarity maps a reference pixel p to the frame pixel that shows it:
// T(p) = p + (a·u − b·v + tx, b·u + a·v + ty) with (u, v) = p − centre;
// scale = |(1+a, b)|, rotation = atan2(b, 1+a).
type similarity struct{ a, b, tx, ty float64 }

func (t similarity) scale() float64    { return math.Hypot(1+t.a, t.b) }
func (t similarity) rotation() float64 { return math.Atan2(t.b, 1+t.a) * 180 / math.Pi }

// score is the structural match of a frame with the reference: the
// normalised correlation of their gradients (both components, signed: a
// gain, gamma or exposure change of the picture leaves it alone, noise
// adds no bias), the frame's sampled where t maps each valid reference
// pixel (nearest pixel) and turned back by t's rotation, over the pixels
// valid in both; 0 when fewer than a tenth overlap.
func score(ref, frame *structure, valid []bool, t similarity) float64 {
	acc := scoreSums(ref, frame, valid, t)
	return acc.ncc(ref.w * ref.h / 5)
}

// scoreSums are score's sums.
func scoreSums(ref, frame *structure, valid []bool, t similarity) nccSums {
	w, h := ref.w, ref.h
	cx, cy := float64(w-1)/2, float64(h-1)/2
	s := t.scale()
	c, sn := float32((1+t.a)/s), float32(t.b/s)
	var acc nccSums
	for y := 0; y < h; y++ {
		v := float64(y) - cy
		var row rowSums
		for x := 0; x < w; x++ {
			i := y*w + x
			if !valid[i] {
				continue
			}
			u := float64(x) - cx
			qx := int(math.Round(float64(x) + t.a*u - t.b*v + t.tx))
			qy := int(math.Round(float64(y) + t.b*u + t.a*v + t.ty))
			if qx < 0 || qy < 0 || qx >= w || qy >= h || !valid[qy*w+qx] {
				continue
			}
			q := qy*w + qx
			row.add(ref.DX[i], c*frame.DX[q]+sn*frame.DY[q])
			row.add(ref.DY[i], -sn*frame.DX[q]+c*frame.DY[q])
		}
		acc.addRow(&row)
	}
	return acc
}

// shiftScore is score for a whole-pixel translation, the per-frame case.
func shiftScore(ref, frame *structure, valid []bool, dx, dy int) float64 {
	acc := shiftSums(ref, frame, valid, dx, dy)
	return acc.ncc(ref.w * ref.h / 5)
}

// shiftSums are shiftScore's sums.
func shiftSums(ref, frame *structure, valid []bool, dx, dy int) nccSums {
	w, h := ref.w, ref.h
	var acc nccSums
	x0, x1 := max(0, -dx), min(w, w-dx)
	if x0 >= x1 {
		return acc
	}
	for y := max(0, -dy); y < min(h, h-dy); y++ {
		r, q := y*w, (y+dy)*w+dx
		rv, ax, ay := valid[r+x0:r+x1], ref.DX[r+x0:r+x1], ref.DY[r+x0:r+x1]
		qv, bx, by := valid[q+x0:q+x1], frame.DX[q+x0:q+x1], frame.DY[q+x0:q+x1]
		rv, ay, qv, bx, by = rv[:len(ax)], ay[:len(ax)], qv[:len(ax)], bx[:len(ax)], by[:len(ax)]
		var sa, sb, saa, sbb, sab float32 // the row's sums, in registers
		n := 0
		for x, a := range ax {
			if !rv[x] || !qv[x] {
				continue
			}
			b, c, d := bx[x], ay[x], by[x]
			sa += a + c
			sb += b + d
			saa += a*a + c*c
			sbb += b*b + d*d
			sab += a*b + c*d
			n += 2
		}
		acc.addRow(&rowSums{n: n, sa: sa, sb: sb, saa: saa, sbb: sbb, sab: sab})
	}
	return acc
}

// validRuns lists, row by row, the runs [x0, x1) of valid pixels.
func validRuns(valid []bool, w, h int) [][][2]int {
	runs := make([][][2]int, h)
	for y := range h {
		row := valid[y*w : (y+1)*w]
		for x := 0; x < w; {
			for x < w && !row[x] {
				x++
			}
			x0 := x
			for x < w && row[x] {
				x++
			}
			if x > x0 {
				runs[y] = append(runs[y], [2]int{x0, x})
			}
		}
	}
	return runs
}

// unshiftedScore is shiftScore with no shift, over the valid runs: the
// usual per-frame case, without a test per pixel.
func unshiftedScore(ref, frame *structure, runs [][][2]int) float64 {
	return runScore(ref, frame, runs, 0, 1)
}

// runScore is the structural score of the reference pixels in runs (every
// step-th row) against the frame's pixels off indices further (a shift
// of dy·w + dx), over the valid runs: runs must hold only pixels whose
// shifted pixel is valid too.
func runScore(ref, frame *structure, runs [][][2]int, off, step int) float64 {
	acc := runSums(ref, frame, runs, off, step)
	return acc.ncc(ref.w * ref.h / 5 / step)
}

// runSums are runScore's sums.
func runSums(ref, frame *structure, runs [][][2]int, off, step int) nccSums {
	w := ref.w
	var acc nccSums
	for y := 0; y < len(runs); y += step {
		var sa, sb, saa, sbb, sab float32 // the row's sums, in registers
		n := 0
		for _, r := range runs[y] {
			i0, i1 := y*w+r[0], y*w+r[1]
			ax, ay := ref.DX[i0:i1], ref.DY[i0:i1]
			bx, by := frame.DX[i0+off:i1+off], frame.DY[i0+off:i1+off]
			bx, ay, by = bx[:len(ax)], ay[:len(ax)], by[:len(ax)]
			for x, a := range ax {
				b, c, d := bx[x], ay[x], by[x]
				sa += a + c
				sb += b + d
				saa += a*a + c*c
				sbb += b*b + d*d
				sab += a*b + c*d
			}
			n += 2 * len(ax)
		}
		acc.addRow(&rowSums{n: n, sa: sa, sb: sb, saa: saa, sbb: sbb, sab: sab})
	}
	return acc
}

// rowSums are one row's sums in float32 (exact enough for a row).
type rowSums struct {
	n                     int
	sa, sb, saa, sbb, sab float32
}

func (s *rowSums) add(a, b float32) {
	s.n++
	s.sa += a
	s.sb += b
	s.saa += a * a
	s.sbb += b * b
	s.sab += a * b
}

func (s *nccSums) addRow(r *rowSums) {
	s.n += r.n
	s.sa += float64(r.sa)
	s.sb += float64(r.sb)
	s.saa += float64(r.saa)
	s.sbb += float64(r.sbb)
	s.sab += float64(r.sab)
}

type nccSums struct {
	n                     int
	sa, sb, saa, sbb, sab float64
}

// plus is the sums over both sets of samples.
func (s nccSums) plus(o nccSums) nccSums {
	return nccSums{n: s.n + o.n, sa: s.sa + o.sa, sb: s.sb + o.sb, saa: s.saa + o.saa, sbb: s.sbb + o.sbb, sab: s.sab + o.sab}
}

// ncc is the correlation in [0, 1] (negative counts as 0); 0 with fewer
// than minN samples or no variance.
func (s *nccSums) ncc(minN int) float64 {
	if s.n < max(minN, 2) {
		return 0
	}
	n := float64(s.n)
	cov := s.sab - s.sa*s.sb/n
	va := s.saa - s.sa*s.sa/n
	vb := s.sbb - s.sb*s.sb/n
	if va <= 0 || vb <= 0 {
		return 0
	}
	return math.Max(0, cov/math.Sqrt(va*vb))
}
