package viewcheck

import (
	"image"
	"math"

	"gocv.io/x/gocv"
)

// correlator measures shifts by phase correlation at one size, with the
// reference's spectrum computed once (gocv.PhaseCorrelate would transform
// both images every time, and OpenCV 4.6 multiplies its inputs by the
// window in place). Its Mats are reused across frames.
type correlator struct {
	w, h   int
	window []float32
	in     floatMat // windowed input
	spec   gocv.Mat // spectrum of in
	cross  gocv.Mat // normalised cross-power spectrum
	corr   gocv.Mat // correlation surface
}

func newCorrelator(w, h int) *correlator {
	return &correlator{
		w: w, h: h, window: hanning(w, h), in: newFloatMat(w, h),
		spec: gocv.NewMat(), cross: gocv.NewMat(), corr: gocv.NewMat(),
	}
}

func (c *correlator) close() {
	c.in.close()
	_ = c.spec.Close()
	_ = c.cross.Close()
	_ = c.corr.Close()
}

// input is the buffer displacement reads, w×h row-major: fill it with the
// zero-mean image to measure.
func (c *correlator) input() []float32 { return c.in.d }

// reference returns the conjugate spectrum of the windowed image; the
// caller closes it.
func (c *correlator) reference(img []float32) gocv.Mat {
	copy(c.in.d, img)
	c.transform()
	ref := c.spec.Clone()
	d, _ := ref.DataPtrFloat32()
	for i := 1; i < len(d); i += 2 {
		d[i] = -d[i]
	}
	return ref
}

// transform windows the input and computes its spectrum.
func (c *correlator) transform() {
	for i, k := range c.window {
		c.in.d[i] *= k
	}
	gocv.DFT(c.in.m, &c.spec, gocv.DftComplexOutput)
}

// displacement is how far the input's picture moved against the
// reference whose conjugate spectrum is ref, in pixels, and the peak of
// the correlation (1 = certain, near 0 = no match).
func (c *correlator) displacement(ref gocv.Mat) (dx, dy, response float64) {
	c.transform()
	gocv.MulSpectrums(c.spec, ref, &c.cross, 0)
	d, _ := c.cross.DataPtrFloat32()
	for i := 0; i+1 < len(d); i += 2 {
		m := float32(math.Sqrt(float64(d[i]*d[i] + d[i+1]*d[i+1])))
		if m > 1e-12 {
			d[i] /= m
			d[i+1] /= m
		}
	}
	gocv.DFT(c.cross, &c.corr, gocv.DftInverse|gocv.DftRealOutput|gocv.DftScale)
	_, _, _, peak := gocv.MinMaxLoc(c.corr)
	return c.centroid(peak)
}

// centroid refines the peak to a fraction of a pixel over its 3×3
// neighbourhood (the surface wraps around) and returns it as a signed
// shift with the neighbourhood's sum as the response.
func (c *correlator) centroid(peak image.Point) (dx, dy, response float64) {
	d, _ := c.corr.DataPtrFloat32()
	var sx, sy, sum float64
	for oy := -1; oy <= 1; oy++ {
		for ox := -1; ox <= 1; ox++ {
			x, y := (peak.X+ox+c.w)%c.w, (peak.Y+oy+c.h)%c.h
			v := math.Max(0, float64(d[y*c.w+x]))
			sx += v * float64(ox)
			sy += v * float64(oy)
			sum += v
		}
	}
	dx, dy = float64(peak.X), float64(peak.Y)
	if sum > 0 {
		dx += sx / sum
		dy += sy / sum
	}
	if dx > float64(c.w)/2 {
		dx -= float64(c.w)
	}
	if dy > float64(c.h)/2 {
		dy -= float64(c.h)
	}
	return dx, dy, sum
}

// hanning returns a w×h Hanning window, row-major, as OpenCV's
// createHanningWindow makes it.
func hanning(w, h int) []float32 {
	data := make([]float32, w*h)
	wx, wy := hann1(w), hann1(h)
	for y := range h {
		for x := range w {
			data[y*w+x] = float32(wy[y] * wx[x])
		}
	}
	return data
}

func hann1(n int) []float64 {
	out := make([]float64, n)
	for i := range n {
		out[i] = 0.5 * (1 - math.Cos(2*math.Pi*float64(i)/float64(n-1)))
	}
	return out
}

// floatMat is a CV_32F Mat and its data as a Go slice.
type floatMat struct {
	m gocv.Mat
	d []float32
}

func newFloatMat(w, h int) floatMat {
	m := gocv.NewMatWithSize(h, w, gocv.MatTypeCV32F)
	d, _ := m.DataPtrFloat32()
	clear(d)
	return floatMat{m: m, d: d}
}

func (f *floatMat) close() { _ = f.m.Close() }

// halve writes the 2×2 means of the w×h src into the (w/2)×(h/2) dst.
func halve(dst, src []float32, w, h int) {
	hw := w / 2
	for y := range h / 2 {
		r0, r1 := src[2*y*w:], src[(2*y+1)*w:]
		out := dst[y*hw : (y+1)*hw]
		for x := range out {
			out[x] = 0.25 * (r0[2*x] + r0[2*x+1] + r1[2*x] + r1[2*x+1])
		}
	}
}

// zeroMean writes G less its mean over the valid pixels into dst, and 0
// on the others: what phase correlation compares.
func zeroMean(dst, G []float32, valid []bool) {
	var sum float64
	var n int
	for i, ok := range valid {
		if ok {
			sum += float64(G[i])
			n++
		}
	}
	mean := float32(0)
	if n > 0 {
		mean = float32(sum / float64(n))
	}
	for i, ok := range valid {
		if ok {
			dst[i] = G[i] - mean
		} else {
			dst[i] = 0
		}
	}
}

// halveExclusion: a half-size pixel is excluded when any of its four is.
func halveExclusion(excl []byte, w, h int) []byte {
	hw := w / 2
	out := make([]byte, hw*(h/2))
	for y := range h / 2 {
		for x := range hw {
			i := 2*y*w + 2*x
			out[y*hw+x] = excl[i] | excl[i+1] | excl[i+w] | excl[i+w+1]
		}
	}
	return out
}
