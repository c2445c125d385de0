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

// structure holds an image's log luma and the gradient magnitude of it,
// at reference size.
type structure struct {
	w, h int
	lut  [256]float32
	L    []float32 // log luma
	G    []float32 // gradient magnitude of L; 0 on the border
}

func newStructure(w, h int) *structure {
	return &structure{w: w, h: h, lut: logLUT(), L: make([]float32, w*h), G: make([]float32, w*h)}
}

// compute fills L and G from a w×h luma image.
func (s *structure) compute(luma []byte) {
	w, h := s.w, s.h
	L, G := s.L, s.G
	for i, v := range luma[:w*h] {
		L[i] = s.lut[v]
	}
	clear(G[:w])
	clear(G[(h-1)*w:])
	for y := 1; y < h-1; y++ {
		row := y * w
		G[row], G[row+w-1] = 0, 0
		up, cur, down := L[row-w:row], L[row:row+w], L[row+w:row+2*w]
		g := G[row : row+w]
		for x := 1; x < w-1; x++ {
			gx := cur[x+1] - cur[x-1]
			gy := down[x] - up[x]
			g[x] = 0.5 * float32(math.Sqrt(float64(gx*gx+gy*gy)))
		}
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
func (s *structure) sharpness(valid []bool) float64 {
	w, h, L := s.w, s.h, s.L
	var lap2, grad2 float64
	for y := 1; y < h-1; y++ {
		for x := 1; x < w-1; x++ {
			i := y*w + x
			if !valid[i] {
				continue
			}
			l := float64(L[i-1] + L[i+1] + L[i-w] + L[i+w] - 4*L[i])
			g := float64(s.G[i])
			lap2 += l * l
			grad2 += 4 * g * g
		}
	}
	if grad2 == 0 {
		return 0
	}
	return lap2 / grad2
}

// blockEnergy is the mean squared gradient of each block over its valid
// pixels, row-major over ceil(w/blockSize) × ceil(h/blockSize) blocks; -1
// for a block less than half valid.
func (s *structure) blockEnergy(valid []bool, out []float64) []float64 {
	bw, bh := blocksAcross(s.w), blocksAcross(s.h)
	out = append(out[:0], make([]float64, bw*bh)...)
	count := make([]int, bw*bh)
	for y := 0; y < s.h; y++ {
		brow := (y / blockSize) * bw
		for x := 0; x < s.w; x++ {
			i := y*s.w + x
			if valid[i] {
				b := brow + x/blockSize
				g := float64(s.G[i])
				out[b] += g * g
				count[b]++
			}
		}
	}
	for b := range out {
		if count[b] < blockSize*blockSize/2 {
			out[b] = -1
			continue
		}
		out[b] /= float64(count[b])
	}
	return out
}

func blocksAcross(n int) int { return (n + blockSize - 1) / blockSize }

// texturedFraction is the fraction of usable blocks with structure.
func texturedFraction(s *structure, valid []bool) float64 {
	var textured, usable int
	for _, e := range s.blockEnergy(valid, nil) {
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

// score is the normalised correlation of the reference's G with the
// frame's G sampled where t maps each valid reference pixel (nearest
// pixel), over the pixels valid in both; 0 when fewer than a tenth
// overlap.
func score(ref, frame []float32, valid []bool, w, h int, t similarity) float64 {
	cx, cy := float64(w-1)/2, float64(h-1)/2
	var acc nccSums
	for y := 0; y < h; y++ {
		v := float64(y) - cy
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
			acc.add(float64(ref[i]), float64(frame[qy*w+qx]))
		}
	}
	return acc.ncc(w * h / 10)
}

// shiftScore is score for a whole-pixel translation, the per-frame case.
func shiftScore(ref, frame []float32, valid []bool, w, h, dx, dy int) float64 {
	var acc nccSums
	for y := max(0, -dy); y < min(h, h-dy); y++ {
		r, q := y*w, (y+dy)*w+dx
		for x := max(0, -dx); x < min(w, w-dx); x++ {
			if valid[r+x] && valid[q+x] {
				acc.add(float64(ref[r+x]), float64(frame[q+x]))
			}
		}
	}
	return acc.ncc(w * h / 10)
}

type nccSums struct {
	n                     int
	sa, sb, saa, sbb, sab float64
}

func (s *nccSums) add(a, b float64) {
	s.n++
	s.sa += a
	s.sb += b
	s.saa += a * a
	s.sbb += b * b
	s.sab += a * b
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
