package viewcheck

import (
	"image"

	"gocv.io/x/gocv"
)

// downscaler shrinks a luma plane to reference size: OpenCV's vectorised
// INTER_AREA halving while the picture is at least twice the target,
// then one last INTER_AREA step for a whole ratio, or INTER_LINEAR for
// the rest, under 2× (1080p: 1920 → 960 → 480 → 320; a direct INTER_AREA
// by 6 costs three times as much). Each halving reads its source where it
// is, in bands small enough that OpenCV runs each in the calling thread:
// split into parallel stripes, its worker threads' spinning cost a third
// more CPU than the work. Its buffers are reused.
type downscaler struct {
	steps []plane // the halvings
}

// plane is an 8-bit picture in Go memory and a Mat over it.
type plane struct {
	w, h int
	data []byte
	mat  gocv.Mat
}

func (d *downscaler) close() {
	for i := range d.steps {
		_ = d.steps[i].mat.Close()
	}
	d.steps = nil
}

// parallelPixels is the output size from which OpenCV's resize splits
// the work over threads (one stripe per 2^16 pixels).
const parallelPixels = 1 << 16

// luma resizes the W×H plane y to w×h into dst.
func (d *downscaler) luma(y []byte, W, H int, dst *gocv.Mat, w, h int) error {
	cur := plane{w: W, h: H, data: y[:W*H]}
	for i := 0; cur.w >= 2*w && cur.h >= 2*h && cur.w%2 == 0 && cur.h%2 == 0; i++ {
		next, err := d.step(i, cur.w/2, cur.h/2)
		if err != nil {
			return err
		}
		if err := halveInBands(cur, next); err != nil {
			return err
		}
		cur = *next
	}
	src := cur.mat
	if cur.w == W { // no halving: a Mat over the plane
		m, err := gocv.NewMatFromBytes(H, W, gocv.MatTypeCV8U, cur.data)
		if err != nil {
			return err
		}
		defer m.Close()
		src = m
	}
	switch {
	case cur.w == w && cur.h == h:
		src.CopyTo(dst)
	case cur.w%w == 0 && cur.h%h == 0:
		gocv.Resize(src, dst, image.Pt(w, h), 0, 0, gocv.InterpolationArea)
	default:
		gocv.Resize(src, dst, image.Pt(w, h), 0, 0, gocv.InterpolationLinear)
	}
	return nil
}

// step returns halving i's buffer at w×h, made on first use.
func (d *downscaler) step(i, w, h int) (*plane, error) {
	if i < len(d.steps) && d.steps[i].w == w && d.steps[i].h == h {
		return &d.steps[i], nil
	}
	for _, p := range d.steps[i:] {
		_ = p.mat.Close()
	}
	d.steps = d.steps[:i]
	p, err := newPlane(w, h)
	if err != nil {
		return nil, err
	}
	d.steps = append(d.steps, p)
	return &d.steps[i], nil
}

// newPlane allocates a w×h plane; the caller closes its mat.
func newPlane(w, h int) (plane, error) {
	p := plane{w: w, h: h, data: make([]byte, w*h)}
	m, err := gocv.NewMatFromBytes(h, w, gocv.MatTypeCV8U, p.data)
	p.mat = m
	return p, err
}

// halfLuma halves the w×h luma into dst, (w/2)×(h/2), with INTER_AREA.
func halfLuma(dst *plane, luma []byte, w, h int) ([]byte, error) {
	err := halveInBands(plane{w: w, h: h, data: luma[:w*h]}, dst)
	return dst.data, err
}

// halveInBands halves src into dst band by band (Mats over the bytes, no
// copy).
func halveInBands(src plane, dst *plane) error {
	band := max(2, 2*((parallelPixels-1)/dst.w)) // source rows, even
	for r0 := 0; r0+1 < src.h; r0 += band {
		r1 := min(src.h&^1, r0+band)
		in, err := gocv.NewMatFromBytes(r1-r0, src.w, gocv.MatTypeCV8U, src.data[r0*src.w:r1*src.w])
		if err != nil {
			return err
		}
		out, err := gocv.NewMatFromBytes((r1-r0)/2, dst.w, gocv.MatTypeCV8U, dst.data[r0/2*dst.w:r1/2*dst.w])
		if err != nil {
			_ = in.Close()
			return err
		}
		gocv.Resize(in, &out, image.Pt(dst.w, (r1-r0)/2), 0, 0, gocv.InterpolationArea)
		_ = in.Close()
		_ = out.Close()
	}
	return nil
}
