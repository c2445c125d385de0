package masking

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"velo/masking/maskspec"

	"gopkg.in/yaml.v3"
)

func randomFrame(w, h int, seed uint64) *Frame {
	f := NewFrame(w, h)
	r := rand.New(rand.NewPCG(seed, 7))
	for i := range f.Data {
		f.Data[i] = byte(r.UintN(256))
	}
	return f
}

// insideRef is an independent crossing-number test on the pixel centre.
func insideRef(poly []maskspec.Point, w, h, x, y int) bool {
	px, py := (float64(x)+0.5)/float64(w), (float64(y)+0.5)/float64(h)
	in := false
	n := len(poly)
	for i, j := 0, n-1; i < n; j, i = i, i+1 {
		a, b := poly[i], poly[j]
		if (a.Y <= py) != (b.Y <= py) {
			xc := a.X + (py-a.Y)*(b.X-a.X)/(b.Y-a.Y)
			if px < xc {
				in = !in
			}
		}
	}
	return in
}

var testPolys = map[string][]maskspec.Point{
	"triangle":           {{X: 0.1, Y: 0.1}, {X: 0.6, Y: 0.2}, {X: 0.3, Y: 0.7}},
	"concave L":          {{X: 0.5, Y: 0.3}, {X: 0.95, Y: 0.3}, {X: 0.95, Y: 0.45}, {X: 0.65, Y: 0.45}, {X: 0.65, Y: 0.9}, {X: 0.5, Y: 0.9}},
	"touches every edge": {{X: 0, Y: 0}, {X: 1, Y: 0}, {X: 1, Y: 0.08}, {X: 0.02, Y: 0.08}, {X: 0.02, Y: 1}, {X: 0, Y: 1}},
}

var testSizes = []struct {
	name string
	w, h int
	step int // sample step for the expensive checks
}{
	{"tiny odd 66x34", 66, 34, 1},
	{"odd 642x482", 642, 482, 1},
	{"1K 1280x720", 1280, 720, 3},
	{"2K 1920x1080", 1920, 1080, 5},
	{"4K 3840x2160", 3840, 2160, 11},
}

func buildOne(t *testing.T, m maskspec.Mask, w, h int) *Raster {
	t.Helper()
	set := &maskspec.MaskSet{Camera: "cam", Preset: "1", Masks: []maskspec.Mask{m}}
	if err := set.Validate(); err != nil {
		t.Fatal(err)
	}
	r, err := Rasterize(set, w, h)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// checkOutside: every pixel outside the mask is bit-identical to the input.
func checkPlanes(t *testing.T, r *Raster, before, after *Frame, inside func(plane, x, y int, got, orig []byte, stride int) string) {
	t.Helper()
	by, bu, bv := before.Planes()
	ay, au, av := after.Planes()
	planes := []struct {
		b, a   []byte
		w, h   int
		chroma bool
	}{{by, ay, r.W, r.H, false}, {bu, au, r.W / 2, r.H / 2, true}, {bv, av, r.W / 2, r.H / 2, true}}
	bad := 0
	for pi, p := range planes {
		for y := 0; y < p.h; y++ {
			for x := 0; x < p.w; x++ {
				var in bool
				if p.chroma {
					in = r.InsideChroma(0, x, y)
				} else {
					in = r.Inside(0, x, y)
				}
				i := y*p.w + x
				if !in {
					if p.a[i] != p.b[i] {
						bad++
						if bad < 5 {
							t.Errorf("plane %d (%d,%d) outside the mask changed %d → %d", pi, x, y, p.b[i], p.a[i])
						}
					}
					continue
				}
				if msg := inside(pi, x, y, p.a, p.b, p.w); msg != "" {
					bad++
					if bad < 5 {
						t.Errorf("plane %d (%d,%d): %s", pi, x, y, msg)
					}
				}
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d wrong pixels", bad)
	}
}

func TestRasterMatchesReference(t *testing.T) {
	for _, sz := range testSizes[:4] {
		for name, poly := range testPolys {
			t.Run(sz.name+"/"+name, func(t *testing.T) {
				r := buildOne(t, maskspec.Mask{Name: name, Polygon: poly}, sz.w, sz.h)
				for y := 0; y < sz.h; y++ {
					for x := 0; x < sz.w; x++ {
						if got, want := r.Inside(0, x, y), insideRef(poly, sz.w, sz.h, x, y); got != want {
							t.Fatalf("pixel (%d,%d): raster %t, reference %t", x, y, got, want)
						}
					}
				}
				// Every chroma sample over a masked luma pixel is masked.
				for y := 0; y < sz.h; y++ {
					for x := 0; x < sz.w; x++ {
						if r.Inside(0, x, y) && !r.InsideChroma(0, x/2, y/2) {
							t.Fatalf("chroma (%d,%d) not masked over luma (%d,%d)", x/2, y/2, x, y)
						}
					}
				}
			})
		}
	}
}

func TestStyleFill(t *testing.T) {
	col := maskspec.YUV{Y: 20, U: 100, V: 200}
	for _, sz := range testSizes {
		for name, poly := range testPolys {
			t.Run(sz.name+"/"+name, func(t *testing.T) {
				r := buildOne(t, maskspec.Mask{Name: name, Polygon: poly, Style: maskspec.StyleFill, Color: col}, sz.w, sz.h)
				in := randomFrame(sz.w, sz.h, 1)
				out := &Frame{W: in.W, H: in.H, Data: append([]byte(nil), in.Data...)}
				if err := r.Apply(out); err != nil {
					t.Fatal(err)
				}
				want := []byte{col.Y, col.U, col.V}
				checkPlanes(t, r, in, out, func(pl, x, y int, got, _ []byte, stride int) string {
					if v := got[y*stride+x]; v != want[pl] {
						return fmt.Sprintf("got %d, want fill %d", v, want[pl])
					}
					return ""
				})
			})
		}
	}
}

func TestStylePixelate(t *testing.T) {
	for _, sz := range testSizes {
		for name, poly := range testPolys {
			t.Run(sz.name+"/"+name, func(t *testing.T) {
				r := buildOne(t, maskspec.Mask{Name: name, Polygon: poly, Style: maskspec.StylePixelate, Block: 16}, sz.w, sz.h)
				block := r.regions[0].mask.Block // 16, or the floor for the width
				in := randomFrame(sz.w, sz.h, 2)
				out := &Frame{W: in.W, H: in.H, Data: append([]byte(nil), in.Data...)}
				if err := r.Apply(out); err != nil {
					t.Fatal(err)
				}
				// Expected: per block, the rounded mean of the masked pixels.
				type key struct{ pl, bx, by int }
				sum, cnt := map[key]int{}, map[key]int{}
				by, bu, bv := in.Planes()
				for pl, p := range [][]byte{by, bu, bv} {
					w, h, b := sz.w, sz.h, block
					if pl > 0 {
						w, h, b = sz.w/2, sz.h/2, block/2
					}
					for y := 0; y < h; y++ {
						for x := 0; x < w; x++ {
							if (pl == 0 && r.Inside(0, x, y)) || (pl > 0 && r.InsideChroma(0, x, y)) {
								k := key{pl, x / b, y / b}
								sum[k] += int(p[y*w+x])
								cnt[k]++
							}
						}
					}
				}
				checkPlanes(t, r, in, out, func(pl, x, y int, got, _ []byte, stride int) string {
					b := block
					if pl > 0 {
						b = block / 2
					}
					k := key{pl, x / b, y / b}
					want := (sum[k] + cnt[k]/2) / cnt[k]
					if v := int(got[y*stride+x]); v != want {
						return fmt.Sprintf("got %d, want block mean %d", v, want)
					}
					return ""
				})
			})
		}
	}
}

func TestStyleBlur(t *testing.T) {
	for _, sz := range testSizes {
		for name, poly := range testPolys {
			t.Run(sz.name+"/"+name, func(t *testing.T) {
				r := buildOne(t, maskspec.Mask{Name: name, Polygon: poly, Style: maskspec.StyleBlur, Strength: 6}, sz.w, sz.h)
				radius := r.regions[0].mask.Strength // 6, or the floor for the width
				in := randomFrame(sz.w, sz.h, 3)
				out := &Frame{W: in.W, H: in.H, Data: append([]byte(nil), in.Data...)}
				if err := r.Apply(out); err != nil {
					t.Fatal(err)
				}
				by, bu, bv := in.Planes()
				orig := [][]byte{by, bu, bv}
				sums := [3]*boxSums{}
				n := 0
				checkPlanes(t, r, in, out, func(pl, x, y int, got, _ []byte, stride int) string {
					n++
					if n%sz.step != 0 {
						return ""
					}
					rad, h := radius, sz.h
					if pl > 0 {
						rad, h = radius/2, sz.h/2
					}
					if sums[pl] == nil {
						sums[pl] = newBoxSums(orig[pl], stride, h)
					}
					s, c := sums[pl].box(max(x-rad, 0), max(y-rad, 0), min(x+rad+1, stride), min(y+rad+1, h))
					if v, want := int(got[y*stride+x]), (s+c/2)/c; v != want {
						return fmt.Sprintf("got %d, want box mean %d", v, want)
					}
					return ""
				})
			})
		}
	}
}

// boxSums is a plane's integral image: the reference box mean of any
// window in four lookups, so the blur check stays exact at 4K without
// summing every window pixel by pixel.
type boxSums struct {
	stride int
	sum    []int64 // (stride+1) × (h+1)
}

func newBoxSums(plane []byte, stride, h int) *boxSums {
	b := &boxSums{stride: stride, sum: make([]int64, (stride+1)*(h+1))}
	for y := 0; y < h; y++ {
		var row int64
		for x := 0; x < stride; x++ {
			row += int64(plane[y*stride+x])
			b.sum[(y+1)*(stride+1)+x+1] = b.sum[y*(stride+1)+x+1] + row
		}
	}
	return b
}

// box returns the sum and the count of the pixels in [x0,x1) × [y0,y1).
func (b *boxSums) box(x0, y0, x1, y1 int) (int, int) {
	w := b.stride + 1
	s := b.sum[y1*w+x1] - b.sum[y0*w+x1] - b.sum[y1*w+x0] + b.sum[y0*w+x0]
	return int(s), (x1 - x0) * (y1 - y0)
}

func TestStyleFull(t *testing.T) {
	set := &maskspec.MaskSet{Camera: "c", Preset: "p", Masks: []maskspec.Mask{{Name: "all", Style: maskspec.StyleFull}}}
	if err := set.Validate(); err != nil {
		t.Fatal(err)
	}
	r, err := Rasterize(set, 640, 360)
	if err != nil {
		t.Fatal(err)
	}
	f := randomFrame(640, 360, 4)
	if err := r.Apply(f); err != nil {
		t.Fatal(err)
	}
	y, u, v := f.Planes()
	for i, p := range [][]byte{y, u, v} {
		want := []byte{maskspec.Black().Y, maskspec.Black().U, maskspec.Black().V}[i]
		for j, b := range p {
			if b != want {
				t.Fatalf("plane %d byte %d = %d", i, j, b)
			}
		}
	}
}

func TestApplyRejectsWrongSize(t *testing.T) {
	r := buildOne(t, maskspec.Mask{Name: "m", Polygon: testPolys["triangle"]}, 640, 360)
	if err := r.Apply(NewFrame(642, 360)); err == nil {
		t.Fatal("frame of another size masked")
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name string
		mask maskspec.Mask
		want string
	}{
		{"two points", maskspec.Mask{Name: "m", Polygon: []maskspec.Point{{X: 0, Y: 0}, {X: 1, Y: 1}}}, "need at least 3"},
		{"out of range", maskspec.Mask{Name: "m", Polygon: []maskspec.Point{{X: 0, Y: 0}, {X: 1.2, Y: 0}, {X: 0, Y: 1}}}, "outside [0,1]"},
		{"negative", maskspec.Mask{Name: "m", Polygon: []maskspec.Point{{X: 0, Y: -0.1}, {X: 1, Y: 0}, {X: 0, Y: 1}}}, "outside [0,1]"},
		{"bow tie", maskspec.Mask{Name: "m", Polygon: []maskspec.Point{{X: 0.1, Y: 0.1}, {X: 0.9, Y: 0.9}, {X: 0.9, Y: 0.1}, {X: 0.1, Y: 0.9}}}, "self-intersecting"},
		{"folds back", maskspec.Mask{Name: "m", Polygon: []maskspec.Point{{X: 0.1, Y: 0.1}, {X: 0.5, Y: 0.1}, {X: 0.3, Y: 0.1}, {X: 0.3, Y: 0.5}}}, "self-intersecting"},
		{"collinear", maskspec.Mask{Name: "m", Polygon: []maskspec.Point{{X: 0.1, Y: 0.1}, {X: 0.2, Y: 0.2}, {X: 0.3, Y: 0.3}}}, ""},
		{"bad style", maskspec.Mask{Name: "m", Style: "smudge", Polygon: testPolys["triangle"]}, "style \"smudge\""},
		{"bad block", maskspec.Mask{Name: "m", Style: maskspec.StylePixelate, Block: 1, Polygon: testPolys["triangle"]}, "block 1"},
		{"bad strength", maskspec.Mask{Name: "m", Style: maskspec.StyleBlur, Strength: 999, Polygon: testPolys["triangle"]}, "strength 999"},
		{"G-4.5 2-pixel blocks", maskspec.Mask{Name: "m", Style: maskspec.StylePixelate, Block: 2, Polygon: testPolys["triangle"]}, "block 2 out of 8..256 (G-4.5"},
		{"G-4.5 radius-1 blur", maskspec.Mask{Name: "m", Style: maskspec.StyleBlur, Strength: 1, Polygon: testPolys["triangle"]}, "strength 1 out of 6..128 (G-4.5"},
		{"ok concave", maskspec.Mask{Name: "m", Polygon: testPolys["concave L"]}, "ok"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			set := &maskspec.MaskSet{Camera: "gate-cam", Preset: "p7", Masks: []maskspec.Mask{tc.mask}}
			err := set.Validate()
			if tc.want == "ok" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !errors.Is(err, maskspec.ErrInvalidMask) {
				t.Fatalf("err = %v", err)
			}
			for _, s := range []string{`camera "gate-cam"`, `preset "p7"`, `mask "m"`, tc.want} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q lacks %q", err, s)
				}
			}
		})
	}
}

func TestMaskColourFromYAML(t *testing.T) {
	var m maskspec.Mask
	if err := yaml.Unmarshal([]byte("name: x\ncolor: \"#FFFFFF\"\npolygon: [{x: 0, y: 0}, {x: 1, y: 0}, {x: 0, y: 1}]\n"), &m); err != nil {
		t.Fatal(err)
	}
	if m.Color != (maskspec.YUV{Y: 235, U: 128, V: 128}) {
		t.Errorf("white = %+v", m.Color)
	}
	if err := yaml.Unmarshal([]byte("color: \"#12\"\n"), &m); err == nil || !strings.Contains(err.Error(), "#RRGGBB") {
		t.Errorf("bad colour: %v", err)
	}
}

// G-4.5: a pixelate block or a blur radius weaker than the floor for the
// frame's width is raised to it (1/48 and 1/64 of the width), and the
// raster says so; at 640 pixels the defaults stand.
func TestG45_MaskStrengthFloorsFollowTheFrame(t *testing.T) {
	set := &maskspec.MaskSet{Camera: "c", Masks: []maskspec.Mask{
		{Name: "px", Style: maskspec.StylePixelate, Block: 16, Polygon: []maskspec.Point{{X: 0.1, Y: 0.1}, {X: 0.45, Y: 0.1}, {X: 0.45, Y: 0.9}, {X: 0.1, Y: 0.9}}},
		{Name: "bl", Style: maskspec.StyleBlur, Strength: 12, Polygon: []maskspec.Point{{X: 0.55, Y: 0.1}, {X: 0.9, Y: 0.1}, {X: 0.9, Y: 0.9}, {X: 0.55, Y: 0.9}}},
	}}
	if err := set.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		w, h, block, strength int
		raised                int
	}{{640, 360, 16, 12, 0}, {1280, 720, 27, 20, 2}, {1920, 1080, 40, 30, 2}, {3840, 2160, 80, 60, 2}} {
		r, err := Rasterize(set, tc.w, tc.h)
		if err != nil {
			t.Fatal(err)
		}
		if b, s := r.regions[0].mask.Block, r.regions[1].mask.Strength; b != tc.block || s != tc.strength || len(r.Raised) != tc.raised {
			t.Errorf("%dx%d: block %d strength %d raised %q; want %d %d, %d raised", tc.w, tc.h, b, s, r.Raised, tc.block, tc.strength, tc.raised)
		}
		// The frame shows it: along a row of noise inside the pixelated
		// region, no run of equal luma is shorter than a block (but at
		// the region's edges).
		f := NewFrame(tc.w, tc.h)
		for i := range f.Data {
			f.Data[i] = byte(i*7919 + i/tc.w*104729)
		}
		if err := r.Apply(f); err != nil {
			t.Fatal(err)
		}
		row := f.Data[tc.h/2*tc.w : tc.h/2*tc.w+tc.w]
		box := r.regions[0].lbox
		runs, start := 0, box.Min.X
		for x := box.Min.X + 1; x <= box.Max.X; x++ {
			if x == box.Max.X || row[x] != row[x-1] {
				if start != box.Min.X && x != box.Max.X && x-start < tc.block {
					t.Errorf("%dx%d: a run of %d pixels at x=%d, blocks are %d", tc.w, tc.h, x-start, start, tc.block)
					break
				}
				runs++
				start = x
			}
		}
		if want := box.Dx()/tc.block + 2; runs > want {
			t.Errorf("%dx%d: %d runs across the region, at most %d", tc.w, tc.h, runs, want)
		}
	}
}
