package masking

import (
	"encoding/binary"
	"fmt"
	"image"
	"runtime"

	"gocv.io/x/gocv"
)

// The mask kernels for pixelate and blur. Blur runs OpenCV's box filter
// (gocv) on zero-copy Mats over the I420 plane and a scratch buffer, then
// copies the masked spans back, so pixels outside the polygon are never
// written. Pixelate stays in Go: OpenCV's area resize rounds halves to even
// (the raster rounds them up) and averages whole blocks, where a block on
// the polygon's edge must average its masked pixels only; summing 8 bytes a
// step (SWAR) makes it faster than resize down + resize up on the same box.

// cvMaxRadius is the largest blur radius given to OpenCV. Its box filter
// scales the window's integer sum by a float32 1/n and rounds; the error
// (< 2.3e-5 for a mean ≤ 255) stays below the distance from any true mean
// sum/n to the nearest half (≥ 1/2n) while n = (2r+1)² < 21,700, so up to
// r = 64 its result equals the raster's rounded integer mean bit for bit.
// Larger radii (up to maskspec's 128) are computed in Go.
const cvMaxRadius = 64

// boxMeanCV writes into out (laid out as box, box.Dx() bytes a row) the
// rounded mean of the (2r+1)² window around every pixel of inner, a part of
// box whose windows lie inside the plane (h rows of stride bytes). The
// Mats are headers over p and out (no copy), closed before it returns.
func boxMeanCV(p []byte, stride, h int, out []byte, box, inner image.Rectangle, r int) error {
	var pin runtime.Pinner
	pin.Pin(&p[0])
	pin.Pin(&out[0])
	defer pin.Unpin()
	src, err := gocv.NewMatFromBytes(h, stride, gocv.MatTypeCV8UC1, p)
	if err != nil {
		return fmt.Errorf("masking: blur: plane Mat: %w", err)
	}
	defer src.Close()
	dst, err := gocv.NewMatFromBytes(box.Dy(), box.Dx(), gocv.MatTypeCV8UC1, out[:box.Dx()*box.Dy()])
	if err != nil {
		return fmt.Errorf("masking: blur: scratch Mat: %w", err)
	}
	defer dst.Close()
	sroi := src.Region(inner)
	defer sroi.Close()
	droi := dst.Region(inner.Sub(box.Min))
	defer droi.Close()
	// The source is a view inside the plane: OpenCV reads the real
	// neighbours around it, and inner keeps every window inside the plane.
	gocv.Blur(sroi, &droi, image.Pt(2*r+1, 2*r+1))
	if droi.Cols() != inner.Dx() || droi.Rows() != inner.Dy() {
		return fmt.Errorf("masking: blur: OpenCV reallocated its output (%dx%d)", droi.Cols(), droi.Rows())
	}
	return nil
}

// stripsAround returns the parts of box outside inner (all of box when
// inner is empty): at most four rectangles.
func stripsAround(box, inner image.Rectangle) []image.Rectangle {
	if inner.Empty() {
		return []image.Rectangle{box}
	}
	var s []image.Rectangle
	for _, r := range []image.Rectangle{
		image.Rect(box.Min.X, box.Min.Y, box.Max.X, inner.Min.Y),
		image.Rect(box.Min.X, inner.Max.Y, box.Max.X, box.Max.Y),
		image.Rect(box.Min.X, inner.Min.Y, inner.Min.X, inner.Max.Y),
		image.Rect(inner.Max.X, inner.Min.Y, box.Max.X, inner.Max.Y),
	} {
		if !r.Empty() {
			s = append(s, r)
		}
	}
	return s
}

// sumBytes returns the sum of b (len(b) ≤ 1024): eight bytes a step in
// four 16-bit lanes.
func sumBytes(b []byte) uint32 {
	var lanes uint64
	const m = 0x00FF00FF00FF00FF
	for len(b) >= 8 {
		x := binary.LittleEndian.Uint64(b)
		lanes += x&m + (x>>8)&m
		b = b[8:]
	}
	// Each lane holds at most 128·510 < 2^16; fold the four lanes.
	lanes = (lanes & 0x0000FFFF0000FFFF) + (lanes>>16)&0x0000FFFF0000FFFF
	s := uint32(lanes) + uint32(lanes>>32)
	for _, v := range b {
		s += uint32(v)
	}
	return s
}

// setBytes sets every byte of b to v, eight a step.
func setBytes(b []byte, v byte) {
	w := uint64(v) * 0x0101010101010101
	for len(b) >= 8 {
		binary.LittleEndian.PutUint64(b, w)
		b = b[8:]
	}
	for i := range b {
		b[i] = v
	}
}
