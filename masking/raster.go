package masking

import (
	"fmt"
	"image"
	"math"
	"sort"
	"sync"
	"time"
	"velo/masking/maskspec"
)

// Frame is an I420 image: the Y plane (W×H), then U and V ((W/2)×(H/2)),
// contiguous in Data. W and H are even. Generation is the mask-set
// generation the frame was masked with (0: not masked).
type Frame struct {
	W, H       int
	Data       []byte
	Seq        uint64
	Generation uint64
	// Captured is when the capture stage received the frame.
	Captured time.Time
	// Masked is set by the masker when the frame went through Apply (or
	// was blanked); encoders refuse frames without it.
	Masked bool
	// View is the approved view (preset token, "" for a fixed camera) the
	// masker masked the frame for: the later stages (dynamic masking) use
	// that view's settings. Meaningless unless Masked.
	View string
}

// NewFrame allocates an I420 frame.
func NewFrame(w, h int) *Frame { return &Frame{W: w, H: h, Data: make([]byte, w*h*3/2)} }

// Planes returns the Y, U and V planes.
func (f *Frame) Planes() (y, u, v []byte) {
	ys := f.W * f.H
	cs := (f.W / 2) * (f.H / 2)
	return f.Data[:ys], f.Data[ys : ys+cs], f.Data[ys+cs : ys+2*cs]
}

// Span is a run of pixels [X0, X1) on one row.
type Span struct{ X0, X1 int32 }

// spanRows is a flat list of spans with per-row offsets.
type spanRows struct {
	start []int32 // len rows+1
	spans []Span
}

func (s *spanRows) row(y int) []Span { return s.spans[s.start[y]:s.start[y+1]] }

// region is one rasterised mask.
type region struct {
	mask   maskspec.Mask
	luma   spanRows
	chroma spanRows
	lbox   image.Rectangle // bounding box of luma spans
	cbox   image.Rectangle
	// scratch for blur/pixelate, reused across frames
	integral []uint32
	acc      []uint32
	out      []byte
}

// Raster is a mask set rasterised for one resolution: per mask, the row
// spans of the pixels whose centres lie inside the polygon (even-odd rule),
// and the chroma spans of every chroma sample that covers any of them (so
// masking errs towards covering more). Build once per (mask set,
// resolution); Apply is not safe for concurrent use (it reuses scratch
// buffers).
type Raster struct {
	W, H    int
	regions []*region
	full    *maskspec.Mask
	// Raised lists the masks whose strength was raised to the floor for
	// this frame width (G-4.5).
	Raised []string
}

// Rasterize builds the raster of a validated mask set at w×h.
func Rasterize(set *maskspec.MaskSet, w, h int) (*Raster, error) {
	if w <= 0 || h <= 0 || w%2 != 0 || h%2 != 0 || w*h > 4096*4096 {
		return nil, fmt.Errorf("masking: rasterize camera %q preset %q: bad size %dx%d (even, positive)", set.Camera, set.Preset, w, h)
	}
	r := &Raster{W: w, H: h}
	for i := range set.Masks {
		m := set.Masks[i]
		if m.Style == maskspec.StyleFull {
			mm := m
			r.full = &mm
			continue
		}
		if len(m.Polygon) < 3 {
			return nil, fmt.Errorf("masking: camera %q preset %q mask %q: not validated", set.Camera, set.Preset, m.Name)
		}
		r.raiseToFloor(&m)
		r.regions = append(r.regions, rasterPolygon(m, w, h))
	}
	return r, nil
}

// raiseToFloor raises a pixelate block or blur radius below the floor for
// the raster's width (maskspec.FloorBlock, FloorStrength; G-4.5) and
// notes it in Raised.
func (r *Raster) raiseToFloor(m *maskspec.Mask) {
	switch {
	case m.Style == maskspec.StylePixelate && m.Block < maskspec.FloorBlock(r.W):
		r.Raised = append(r.Raised, fmt.Sprintf("mask %q: pixelate block %d raised to %d for a %d-pixel-wide frame (G-4.5)", m.Name, m.Block, maskspec.FloorBlock(r.W), r.W))
		m.Block = maskspec.FloorBlock(r.W)
	case m.Style == maskspec.StyleBlur && m.Strength < maskspec.FloorStrength(r.W):
		r.Raised = append(r.Raised, fmt.Sprintf("mask %q: blur strength %d raised to %d for a %d-pixel-wide frame (G-4.5)", m.Name, m.Strength, maskspec.FloorStrength(r.W), r.W))
		m.Strength = maskspec.FloorStrength(r.W)
	}
}

func rasterPolygon(m maskspec.Mask, w, h int) *region {
	rg := &region{mask: m}
	rg.luma.start = make([]int32, h+1)
	xs := make([]float64, 0, 16)
	minX, minY, maxX, maxY := w, h, 0, 0
	n := len(m.Polygon)
	for y := 0; y < h; y++ {
		rg.luma.start[y] = int32(len(rg.luma.spans))
		yc := (float64(y) + 0.5) / float64(h)
		xs = xs[:0]
		for i := 0; i < n; i++ {
			a, b := m.Polygon[i], m.Polygon[(i+1)%n]
			if (a.Y <= yc && yc < b.Y) || (b.Y <= yc && yc < a.Y) {
				xs = append(xs, a.X+(yc-a.Y)*(b.X-a.X)/(b.Y-a.Y))
			}
		}
		sort.Float64s(xs)
		for i := 0; i+1 < len(xs); i += 2 {
			// pixel x is inside if xa ≤ (x+0.5)/w < xb
			x0 := int(math.Ceil(xs[i]*float64(w) - 0.5))
			x1 := int(math.Ceil(xs[i+1]*float64(w) - 0.5))
			x0, x1 = max(x0, 0), min(x1, w)
			if x1 <= x0 {
				continue
			}
			rg.luma.spans = append(rg.luma.spans, Span{int32(x0), int32(x1)})
			minX, maxX = min(minX, x0), max(maxX, x1)
			minY, maxY = min(minY, y), max(maxY, y+1)
		}
	}
	rg.luma.start[h] = int32(len(rg.luma.spans))
	if maxX > minX {
		rg.lbox = image.Rect(minX, minY, maxX, maxY)
	}
	// Chroma: union of the two luma rows, widened to whole chroma samples.
	cw, ch := w/2, h/2
	rg.chroma.start = make([]int32, ch+1)
	var tmp []Span
	cminX, cminY, cmaxX, cmaxY := cw, ch, 0, 0
	for cy := 0; cy < ch; cy++ {
		rg.chroma.start[cy] = int32(len(rg.chroma.spans))
		tmp = tmp[:0]
		for _, s := range rg.luma.row(2 * cy) {
			tmp = append(tmp, Span{s.X0 / 2, (s.X1 + 1) / 2})
		}
		for _, s := range rg.luma.row(2*cy + 1) {
			tmp = append(tmp, Span{s.X0 / 2, (s.X1 + 1) / 2})
		}
		sort.Slice(tmp, func(i, j int) bool { return tmp[i].X0 < tmp[j].X0 })
		for _, s := range tmp {
			k := len(rg.chroma.spans)
			if k > int(rg.chroma.start[cy]) && rg.chroma.spans[k-1].X1 >= s.X0 {
				if s.X1 > rg.chroma.spans[k-1].X1 {
					rg.chroma.spans[k-1].X1 = s.X1
				}
				continue
			}
			rg.chroma.spans = append(rg.chroma.spans, s)
		}
		for _, s := range rg.chroma.spans[rg.chroma.start[cy]:] {
			cminX, cmaxX = min(cminX, int(s.X0)), max(cmaxX, int(s.X1))
			cminY, cmaxY = min(cminY, cy), max(cmaxY, cy+1)
		}
	}
	rg.chroma.start[ch] = int32(len(rg.chroma.spans))
	if cmaxX > cminX {
		rg.cbox = image.Rect(cminX, cminY, cmaxX, cmaxY)
	}
	return rg
}

// Covered returns the fraction of luma pixels covered by some mask.
func (r *Raster) Covered() float64 {
	if r.full != nil {
		return 1
	}
	seen := make([]bool, r.W)
	var n int
	for y := 0; y < r.H; y++ {
		for i := range seen {
			seen[i] = false
		}
		for _, rg := range r.regions {
			for _, s := range rg.luma.row(y) {
				for x := s.X0; x < s.X1; x++ {
					if !seen[x] {
						seen[x] = true
						n++
					}
				}
			}
		}
	}
	return float64(n) / float64(r.W*r.H)
}

// Inside reports whether luma pixel (x, y) is covered by mask i.
func (r *Raster) Inside(i, x, y int) bool {
	for _, s := range r.regions[i].luma.row(y) {
		if int(s.X0) <= x && x < int(s.X1) {
			return true
		}
	}
	return false
}

// InsideChroma reports whether chroma sample (x, y) is covered by mask i.
func (r *Raster) InsideChroma(i, x, y int) bool {
	for _, s := range r.regions[i].chroma.row(y) {
		if int(s.X0) <= x && x < int(s.X1) {
			return true
		}
	}
	return false
}

// Apply masks f in place. f must have the raster's size.
func (r *Raster) Apply(f *Frame) error {
	if f.W != r.W || f.H != r.H || len(f.Data) != f.W*f.H*3/2 {
		return fmt.Errorf("masking: frame %dx%d (%d bytes) does not match raster %dx%d", f.W, f.H, len(f.Data), r.W, r.H)
	}
	yp, up, vp := f.Planes()
	if r.full != nil {
		fillPlane(yp, r.full.Color.Y)
		fillPlane(up, r.full.Color.U)
		fillPlane(vp, r.full.Color.V)
		return nil
	}
	cw := r.W / 2
	for _, rg := range r.regions {
		switch rg.mask.Style {
		case maskspec.StyleFill:
			fillSpans(yp, r.W, &rg.luma, rg.lbox, rg.mask.Color.Y)
			fillSpans(up, cw, &rg.chroma, rg.cbox, rg.mask.Color.U)
			fillSpans(vp, cw, &rg.chroma, rg.cbox, rg.mask.Color.V)
		case maskspec.StylePixelate:
			b := rg.mask.Block
			cb := max(b/2, 1)
			rg.pixelate(yp, r.W, &rg.luma, rg.lbox, b)
			rg.pixelate(up, cw, &rg.chroma, rg.cbox, cb)
			rg.pixelate(vp, cw, &rg.chroma, rg.cbox, cb)
		case maskspec.StyleBlur:
			s := rg.mask.Strength
			cs := max(s/2, 1)
			if err := rg.blur(yp, r.W, r.H, &rg.luma, rg.lbox, s); err != nil {
				return err
			}
			if err := rg.blur(up, cw, r.H/2, &rg.chroma, rg.cbox, cs); err != nil {
				return err
			}
			if err := rg.blur(vp, cw, r.H/2, &rg.chroma, rg.cbox, cs); err != nil {
				return err
			}
		default:
			return fmt.Errorf("masking: mask %q: unknown style %q", rg.mask.Name, rg.mask.Style)
		}
	}
	return nil
}

func fillPlane(p []byte, v byte) {
	if len(p) == 0 {
		return
	}
	p[0] = v
	for n := 1; n < len(p); n *= 2 {
		copy(p[n:], p[:n])
	}
}

func fillSpans(p []byte, stride int, rows *spanRows, box image.Rectangle, v byte) {
	if box.Empty() {
		return
	}
	// One row of the colour, then memmove per span (vectorised copy).
	tmpl := colorRow(v, box.Dx())
	for y := box.Min.Y; y < box.Max.Y; y++ {
		off := y * stride
		for _, s := range rows.row(y) {
			copy(p[off+int(s.X0):off+int(s.X1)], tmpl)
		}
	}
}

// colorRow returns n bytes of v (shared, read-only).
func colorRow(v byte, n int) []byte {
	rowCache.Lock()
	defer rowCache.Unlock()
	r := rowCache.m[v]
	if len(r) < n {
		r = make([]byte, max(n, 4096))
		fillPlane(r, v)
		rowCache.m[v] = r
	}
	return r[:n]
}

var rowCache = struct {
	sync.Mutex
	m map[byte][]byte
}{m: map[byte][]byte{}}

// pixelate replaces the masked pixels of each b×b block (aligned to the
// plane's origin) by their average.
func (rg *region) pixelate(p []byte, stride int, rows *spanRows, box image.Rectangle, b int) {
	if box.Empty() {
		return
	}
	bx0 := box.Min.X / b
	nb := (box.Max.X+b-1)/b - bx0
	if cap(rg.acc) < 2*nb {
		rg.acc = make([]uint32, 2*nb)
	}
	sum, cnt := rg.acc[:nb], rg.acc[nb:2*nb]
	for by := (box.Min.Y / b) * b; by < box.Max.Y; by += b {
		clear(sum)
		clear(cnt)
		yStart, yEnd := max(by, box.Min.Y), min(by+b, box.Max.Y)
		for y := yStart; y < yEnd; y++ {
			off := y * stride
			for _, s := range rows.row(y) {
				for x := int(s.X0); x < int(s.X1); {
					end := min((x/b+1)*b, int(s.X1))
					k := x/b - bx0
					sum[k] += sumBytes(p[off+x : off+end])
					cnt[k] += uint32(end - x)
					x = end
				}
			}
		}
		for k := range sum {
			if cnt[k] > 0 {
				sum[k] = (sum[k] + cnt[k]/2) / cnt[k]
			}
		}
		for y := yStart; y < yEnd; y++ {
			off := y * stride
			for _, s := range rows.row(y) {
				for x := int(s.X0); x < int(s.X1); {
					end := min((x/b+1)*b, int(s.X1))
					setBytes(p[off+x:off+end], byte(sum[x/b-bx0]))
					x = end
				}
			}
		}
	}
}

// blur replaces each masked pixel by the rounded mean of the original
// pixels in the (2r+1)² box around it, clipped to the plane. OpenCV's box
// filter computes the pixels whose box lies inside the plane into a
// scratch copy of the bounding box (from the plane as it was), Go the
// clipped ones near the plane's edges; then the masked spans are copied
// back, so nothing outside the polygon is written.
func (rg *region) blur(p []byte, stride, h int, rows *spanRows, box image.Rectangle, r int) error {
	if box.Empty() {
		return nil
	}
	bw := box.Dx()
	need := bw * box.Dy()
	if cap(rg.out) < need {
		rg.out = make([]byte, need)
	}
	out := rg.out[:need]
	inner := image.Rect(r, r, stride-r, h-r).Intersect(box)
	if r > cvMaxRadius {
		inner = image.Rectangle{}
	}
	if !inner.Empty() {
		if err := boxMeanCV(p, stride, h, out, box, inner, r); err != nil {
			return err
		}
	}
	for _, s := range stripsAround(box, inner) {
		rg.blurEdge(p, stride, h, rows, s, r, out, box)
	}
	for y := box.Min.Y; y < box.Max.Y; y++ {
		o, off := (y-box.Min.Y)*bw-box.Min.X, y*stride
		for _, s := range rows.row(y) {
			copy(p[off+int(s.X0):off+int(s.X1)], out[o+int(s.X0):o+int(s.X1)])
		}
	}
	return nil
}

// blurEdge computes into out (laid out as box) the clipped box mean of the
// masked pixels inside rect, from an integral image of rect widened by r.
func (rg *region) blurEdge(p []byte, stride, h int, rows *spanRows, rect image.Rectangle, r int, out []byte, box image.Rectangle) {
	x0, y0 := max(rect.Min.X-r, 0), max(rect.Min.Y-r, 0)
	x1, y1 := min(rect.Max.X+r, stride), min(rect.Max.Y+r, h)
	iw := x1 - x0 + 1
	need := iw * (y1 - y0 + 1)
	if cap(rg.integral) < need {
		rg.integral = make([]uint32, need)
	}
	I := rg.integral[:need]
	clear(I[:iw])
	for y := y0; y < y1; y++ {
		row := (y - y0 + 1) * iw
		prev := row - iw
		I[row] = 0
		var acc uint32
		for i, v := range p[y*stride+x0 : y*stride+x1] {
			acc += uint32(v)
			I[row+i+1] = I[prev+i+1] + acc
		}
	}
	for y := rect.Min.Y; y < rect.Max.Y; y++ {
		wy0, wy1 := max(y-r, 0), min(y+r+1, h)
		ra, rb := (wy0-y0)*iw, (wy1-y0)*iw
		o := (y-box.Min.Y)*box.Dx() - box.Min.X
		for _, s := range rows.row(y) {
			for x := max(int(s.X0), rect.Min.X); x < min(int(s.X1), rect.Max.X); x++ {
				out[o+x] = blurAt(I, ra, rb, uint32(wy1-wy0), x, x0, r, stride)
			}
		}
	}
}

// blurAt is the general (clipped-window) box mean at x.
func blurAt(I []uint32, ra, rb int, dy uint32, x, x0, r, stride int) byte {
	wx0, wx1 := max(x-r, 0), min(x+r+1, stride)
	ca, cb := wx0-x0, wx1-x0
	sum := I[rb+cb] - I[rb+ca] - I[ra+cb] + I[ra+ca]
	n := dy * uint32(wx1-wx0)
	return byte((sum + n/2) / n)
}

// Footprint returns the bounding boxes of all masks on the luma and on the
// chroma planes, and how many bytes of an I420 frame Apply writes (luma
// plus both chroma planes; masks overlapping count once).
func (r *Raster) Footprint() (luma, chroma image.Rectangle, bytes int) {
	if r.full != nil {
		return image.Rect(0, 0, r.W, r.H), image.Rect(0, 0, r.W/2, r.H/2), r.W * r.H * 3 / 2
	}
	count := func(w, h int, rows func(*region) *spanRows) int {
		seen, n := make([]bool, w), 0
		for y := 0; y < h; y++ {
			clear(seen)
			for _, rg := range r.regions {
				for _, s := range rows(rg).row(y) {
					for x := s.X0; x < s.X1; x++ {
						if !seen[x] {
							seen[x] = true
							n++
						}
					}
				}
			}
		}
		return n
	}
	for _, rg := range r.regions {
		luma, chroma = luma.Union(rg.lbox), chroma.Union(rg.cbox)
	}
	bytes = count(r.W, r.H, func(rg *region) *spanRows { return &rg.luma }) +
		2*count(r.W/2, r.H/2, func(rg *region) *spanRows { return &rg.chroma })
	return luma, chroma, bytes
}
