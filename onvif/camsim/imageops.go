package camsim

import (
	"image"
	"math"
)

// What a tamper does to the picture after the world is drawn: a turned
// camera (rotateInto), something in front of the lens (coverLens), a lens
// out of focus (defocus), the camera's mirror settings (flip). Shift and
// zoom change the view itself (view.tampered).

// rotateInto cuts dst out of the larger canvas src turned by deg
// (counter-clockwise as seen), about both centres, nearest pixel.
func rotateInto(dst, src *Frame, deg float64) {
	s, c := math.Sincos(deg * math.Pi / 180)
	sy, su, sv := src.planes()
	dy, du, dv := dst.planes()
	rotatePlane(dy, dst.W, dst.H, sy, src.W, src.H, s, c)
	rotatePlane(du, dst.W/2, dst.H/2, su, src.W/2, src.H/2, s, c)
	rotatePlane(dv, dst.W/2, dst.H/2, sv, src.W/2, src.H/2, s, c)
}

// rotatePlane samples plane dst (dw×dh) from src (sw×sh): the source of
// output pixel (x, y), relative to the centres, is (c·x − s·y, s·x + c·y).
func rotatePlane(dst []byte, dw, dh int, src []byte, sw, sh int, s, c float64) {
	for y := 0; y < dh; y++ {
		ry := float64(y) + 0.5 - float64(dh)/2
		row := dst[y*dw : (y+1)*dw]
		for x := range row {
			rx := float64(x) + 0.5 - float64(dw)/2
			u := int(math.Floor(c*rx - s*ry + float64(sw)/2))
			v := int(math.Floor(s*rx + c*ry + float64(sh)/2))
			u = min(max(u, 0), sw-1)
			v = min(max(v, 0), sh-1)
			row[x] = src[v*sw+u]
		}
	}
}

// coverLens hides the left fraction of the frame behind a dark uniform
// object (the whole frame when fraction ≥ 1).
func coverLens(f *Frame, fraction float64) {
	if fraction <= 0 {
		return
	}
	n := int(math.Round(math.Min(fraction, 1) * float64(f.W)))
	if n <= 0 {
		return
	}
	n += n & 1 // whole chroma samples
	f.fill(image.Rect(0, 0, min(n, f.W), f.H), yuv{24, 128, 128})
}

// defocus blurs every plane with a box filter of the given radius, twice
// (close to a Gaussian); chroma with half the radius.
func defocus(f *Frame, radius int) {
	if radius <= 0 {
		return
	}
	y, u, v := f.planes()
	tmp := make([]byte, len(y))
	for pass := 0; pass < 2; pass++ {
		boxBlur(y, tmp, f.W, f.H, radius)
		boxBlur(u, tmp, f.W/2, f.H/2, max(radius/2, 1))
		boxBlur(v, tmp, f.W/2, f.H/2, max(radius/2, 1))
	}
}

// boxBlur blurs plane p (w×h) with a window of 2r+1 pixels, edges
// repeated: rows into tmp (≥ w·h bytes), then columns back into p through
// running column sums, so that both passes read memory in order.
func boxBlur(p, tmp []byte, w, h, r int) {
	for y := 0; y < h; y++ {
		blurRow(p[y*w:(y+1)*w], tmp[y*w:(y+1)*w], r)
	}
	avg := averager(2*r + 1)
	sums := make([]int, w)
	row := func(i int) []byte { i = min(max(i, 0), h-1); return tmp[i*w : (i+1)*w] }
	for i := -r; i <= r; i++ {
		for x, v := range row(i) {
			sums[x] += int(v)
		}
	}
	for y := 0; y < h; y++ {
		out := p[y*w : (y+1)*w]
		add, sub := row(y+r+1), row(y-r)
		for x := range out {
			out[x] = avg(sums[x])
			sums[x] += int(add[x]) - int(sub[x])
		}
	}
}

// blurRow averages src into dst over a sliding window of 2r+1, edges
// repeated.
func blurRow(src, dst []byte, r int) {
	n := len(src)
	at := func(i int) int { return int(src[min(max(i, 0), n-1)]) }
	sum := 0
	for i := -r; i <= r; i++ {
		sum += at(i)
	}
	avg := averager(2*r + 1)
	i := 0
	for ; i < n && (i-r < 0 || i+r+1 >= n); i++ { // left edge (and short rows)
		dst[i] = avg(sum)
		sum += at(i+r+1) - at(i-r)
	}
	for ; i+r+1 < n; i++ { // middle: the window inside the row
		dst[i] = avg(sum)
		sum += int(src[i+r+1]) - int(src[i-r])
	}
	for ; i < n; i++ { // right edge
		dst[i] = avg(sum)
		sum += at(i+r+1) - at(i-r)
	}
}

// averager divides a sum of n bytes by n, rounded, by a multiplication.
func averager(n int) func(sum int) byte {
	inv := (1<<24 + n - 1) / n
	return func(sum int) byte { return byte((sum*inv + 1<<23) >> 24) }
}

// flip mirrors the picture left-right (h) and/or top-bottom (v).
func flip(f *Frame, h, v bool) {
	if !h && !v {
		return
	}
	y, u, cv := f.planes()
	for _, p := range []struct {
		b    []byte
		w, h int
	}{{y, f.W, f.H}, {u, f.W / 2, f.H / 2}, {cv, f.W / 2, f.H / 2}} {
		if h {
			for r := 0; r < p.h; r++ {
				reverse(p.b[r*p.w : (r+1)*p.w])
			}
		}
		if v {
			for a, b := 0, p.h-1; a < b; a, b = a+1, b-1 {
				ra, rb := p.b[a*p.w:(a+1)*p.w], p.b[b*p.w:(b+1)*p.w]
				for i := range ra {
					ra[i], rb[i] = rb[i], ra[i]
				}
			}
		}
	}
}

func reverse(b []byte) {
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
}

// planes returns the Y, U and V planes of the frame.
func (f *Frame) planes() (y, u, v []byte) {
	ys, cs := f.W*f.H, (f.W/2)*(f.H/2)
	return f.Data[:ys], f.Data[ys : ys+cs], f.Data[ys+cs : ys+2*cs]
}
