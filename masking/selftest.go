package masking

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"time"
	"velo/masking/codec"
	"velo/masking/maskspec"

	"gocv.io/x/gocv"
)

// SelfTestReport is the result of SelfTest: every check, whether it passed,
// and what it measured.
type SelfTestReport struct {
	OK      bool        `json:"ok"`
	Arch    string      `json:"arch"`
	OpenCV  string      `json:"opencv"`
	Width   int         `json:"width"`
	Height  int         `json:"height"`
	TookMS  float64     `json:"took_ms"`
	Checks  []CheckItem `json:"checks"`
	Failed  int         `json:"failed"`
	Skipped []string    `json:"skipped,omitempty"`
	// Codecs: every codec element of the table, as probed here.
	Codecs *Elements `json:"codecs,omitempty"`
}

// CheckItem is one self-test check.
type CheckItem struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

func (r *SelfTestReport) add(name string, ok bool, format string, a ...any) {
	r.Checks = append(r.Checks, CheckItem{Name: name, OK: ok, Detail: fmt.Sprintf(format, a...)})
	if !ok {
		r.Failed++
	}
}

// SelfTestSets is the built-in mask set of the self-test: one mask of each
// partial style, far enough apart that each can be checked exactly.
func SelfTestSets() []maskspec.MaskSet {
	return []maskspec.MaskSet{{Camera: "selftest", Preset: "", Masks: []maskspec.Mask{
		{Name: "badge reader", Style: maskspec.StyleFill, Color: maskspec.RGBToYUV(0xFF, 0x80, 0x00),
			Polygon: []maskspec.Point{{X: 0.05, Y: 0.10}, {X: 0.30, Y: 0.08}, {X: 0.33, Y: 0.40}, {X: 0.15, Y: 0.50}, {X: 0.04, Y: 0.35}}},
		{Name: "time clock", Style: maskspec.StylePixelate, Block: 16,
			Polygon: []maskspec.Point{{X: 0.40, Y: 0.10}, {X: 0.60, Y: 0.10}, {X: 0.62, Y: 0.45}, {X: 0.38, Y: 0.42}}},
		{Name: "street", Style: maskspec.StyleBlur, Strength: 12,
			Polygon: []maskspec.Point{{X: 0.70, Y: 0.55}, {X: 0.95, Y: 0.55}, {X: 0.95, Y: 0.95}, {X: 0.70, Y: 0.90}}},
	}}}
}

// SelfTest masks a generated high-entropy frame with the built-in sets
// (SelfTestSets, checked exactly, sample by sample) and with siteSets (a
// site's own masks, which may overlap: checked by style), converts and
// encodes each result with OpenCV and checks it, then checks that the
// masker fails closed. It needs no camera: it proves, on the machine it
// runs on (an arm64 gateway, or qemu), that the masking code and the OpenCV
// it links do what they should.
func SelfTest(w, h int, siteSets []maskspec.MaskSet) *SelfTestReport {
	return selfTester{}.run(w, h, siteSets)
}

// selfTester runs SelfTest. Only tests set corrupt: it alters every masked
// frame before it is checked, to prove the checks catch a bad mask.
type selfTester struct {
	corrupt func(f *Frame)
}

func (st selfTester) run(w, h int, siteSets []maskspec.MaskSet) *SelfTestReport {
	t0 := time.Now()
	rep := &SelfTestReport{Arch: runtime.GOARCH, OpenCV: gocv.OpenCVVersion(), Width: w, Height: h}
	rep.add("opencv-linked", rep.OpenCV != "", "OpenCV %q, gocv %s", rep.OpenCV, gocv.Version())
	if w <= 0 || h <= 0 || w%2 != 0 || h%2 != 0 {
		rep.add("frame-size", false, "%dx%d: width and height must be positive and even", w, h)
		rep.finish(t0)
		return rep
	}
	orig := noiseFrame(w, h, 0x9E3779B9)
	for _, set := range SelfTestSets() {
		st.checkSet(rep, set, orig, true)
	}
	for _, set := range siteSets {
		st.checkSet(rep, set, orig, false)
	}
	selfTestFailClosed(rep, orig)
	selfTestCodecs(rep)
	rep.finish(t0)
	return rep
}

// selfTestCodecs probes the codec elements (ProbeElements) and reports
// what the frame path would use: an H.264 decoder and encoder are
// required (H.264 cameras, the default output); H.265 is reported, and
// its absence fails only the H.265 cameras and outputs that need it.
func selfTestCodecs(rep *SelfTestReport) {
	els := ProbeElements()
	rep.Codecs = els
	found := 0
	for _, s := range els.List {
		if s.OK {
			found++
		}
	}
	for _, c := range codec.All {
		dec, dok := els.Decoder(c)
		enc, eok := els.Encoder(c)
		detail := fmt.Sprintf("decoder %s, encoder %s", elementName(dec, dok), elementName(enc, eok))
		if sk := strings.Trim(els.Skipped(c, "decoder")+", "+els.Skipped(c, "encoder"), ", "); sk != "" {
			detail += "; failed: " + sk
		}
		if c == codec.H264 {
			rep.add("codecs: H264 would use", dok && eok, "%s (%d of %d elements of the table work here, probed in %.0f ms)", detail, found, len(els.List), els.TookMS)
		} else if dok && eok {
			rep.add("codecs: "+string(c)+" would use", true, "%s", detail)
		} else {
			rep.Skipped = append(rep.Skipped, "codecs: "+string(c)+": "+detail+" (needed only by "+string(c)+" cameras or outputs.codec "+string(c)+")")
		}
	}
}

func elementName(e codec.Element, ok bool) string {
	if !ok {
		return "none working"
	}
	if e.Hardware() {
		return e.Name + " (" + e.Family + ")"
	}
	return e.Name + " (software)"
}

func (r *SelfTestReport) finish(t0 time.Time) {
	r.TookMS = float64(time.Since(t0).Microseconds()) / 1000
	r.OK = r.Failed == 0 && len(r.Checks) > 0
}

// noiseFrame is a deterministic I420 frame of uniform noise (luma 16–235,
// chroma 16–240): no two neighbours are alike, so a mask that leaves any
// original pixel shows.
func noiseFrame(w, h int, seed uint32) *Frame {
	f := NewFrame(w, h)
	s := seed
	next := func() uint32 { s ^= s << 13; s ^= s >> 17; s ^= s << 5; return s }
	y, u, v := f.Planes()
	for i := range y {
		y[i] = byte(16 + next()%220)
	}
	for i := range u {
		u[i] = byte(16 + next()%225)
		v[i] = byte(16 + next()%225)
	}
	f.Captured = time.Now()
	return f
}

func cloneFrame(f *Frame) *Frame {
	g := *f
	g.Data = append([]byte(nil), f.Data...)
	return &g
}

// checkSet masks orig with set and checks the result (exact: sample by
// sample, for sets whose masks do not overlap).
func (st selfTester) checkSet(rep *SelfTestReport, set maskspec.MaskSet, orig *Frame, exact bool) {
	tag := set.Camera + "/" + set.Preset
	if set.Preset == "" {
		tag = set.Camera
	}
	m, err := NewMasker(set.Camera, maskspec.FailDrop)
	if err == nil {
		m.SetSettle(0)
		_, err = m.SetMaskSets([]maskspec.MaskSet{set})
	}
	if err != nil {
		rep.add(tag+": mask-set-valid", false, "%v", err)
		return
	}
	m.SetView(set.Preset, true)
	f := cloneFrame(orig)
	f.Captured = time.Now()
	verdict, why := m.Process(f)
	rep.add(tag+": masked", verdict == Masked && m.Admit(f), "verdict %d %s", verdict, why)
	if verdict != Masked {
		return
	}
	if st.corrupt != nil {
		st.corrupt(f)
	}
	vs := set
	vs.Masks = append([]maskspec.Mask(nil), set.Masks...)
	err = vs.Validate()
	var ras *Raster
	if err == nil {
		ras, err = Rasterize(&vs, f.W, f.H)
	}
	if err != nil {
		rep.add(tag+": rasterize", false, "%v", err)
		return
	}
	if ras.full != nil {
		checkFull(rep, tag, ras.full, f)
	} else {
		checkRegions(rep, tag, ras, orig, f, exact)
	}
	checkOpenCV(rep, tag, ras, f)
}

func checkFull(rep *SelfTestReport, tag string, mk *maskspec.Mask, f *Frame) {
	y, u, v := f.Planes()
	bad := countNot(y, mk.Color.Y) + countNot(u, mk.Color.U) + countNot(v, mk.Color.V)
	rep.add(tag+": full "+mk.Name, bad == 0, "%d of %d samples differ from the fill colour", bad, len(f.Data))
}

func countNot(p []byte, v byte) int {
	n := 0
	for _, b := range p {
		if b != v {
			n++
		}
	}
	return n
}

// plane is one of the three planes of a frame with its geometry.
type plane struct {
	o, m   []byte
	w, h   int
	inside func(i, x, y int) bool
	chroma bool
}

// checkRegions checks a masked frame against its original plane by plane:
// nothing outside the masks changed, and the samples each mask alone
// covers carry its style (exact: the values the style must produce).
func checkRegions(rep *SelfTestReport, tag string, ras *Raster, orig, f *Frame, exact bool) {
	oy, ou, ov := orig.Planes()
	my, mu, mv := f.Planes()
	planes := []plane{
		{oy, my, f.W, f.H, ras.Inside, false},
		{ou, mu, f.W / 2, f.H / 2, ras.InsideChroma, true},
		{ov, mv, f.W / 2, f.H / 2, ras.InsideChroma, true},
	}
	cover := make([][]int, len(planes))
	for pi, p := range planes {
		cover[pi] = coverage(p, len(ras.regions))
	}
	checkOutside(rep, tag, planes, cover)
	for i, rg := range ras.regions {
		mk := rg.mask
		name := fmt.Sprintf("%s: %s %q", tag, mk.Style, mk.Name)
		count, same := coveredSamples(planes, cover, i)
		if count == 0 {
			rep.add(name, false, "covers no pixel at %dx%d", f.W, f.H)
			continue
		}
		switch mk.Style {
		case maskspec.StyleFill:
			bad := fillMismatches(planes, cover, i, mk.Color)
			rep.add(name, bad == 0, "%d of %d covered samples differ from the fill colour", bad, count)
		case maskspec.StylePixelate:
			checkPixelated(rep, name, planes, cover, i, mk.Block, count, same, exact)
		case maskspec.StyleBlur:
			checkBlurred(rep, name, planes, cover, i, mk.Strength, count, same, exact)
		}
	}
}

// coverage maps each sample of p to the index of the only one of n masks
// covering it, -1 for none, -2 for several.
func coverage(p plane, n int) []int {
	c := make([]int, p.w*p.h)
	for y := 0; y < p.h; y++ {
		for x := 0; x < p.w; x++ {
			k := -1
			for i := 0; i < n; i++ {
				if !p.inside(i, x, y) {
					continue
				}
				if k == -1 {
					k = i
				} else {
					k = -2
				}
			}
			c[y*p.w+x] = k
		}
	}
	return c
}

// checkOutside checks that no sample outside every mask changed.
func checkOutside(rep *SelfTestReport, tag string, planes []plane, cover [][]int) {
	outsideBad, outside := 0, 0
	for pi, p := range planes {
		for j, k := range cover[pi] {
			if k != -1 {
				continue
			}
			outside++
			if p.m[j] != p.o[j] {
				outsideBad++
			}
		}
	}
	rep.add(tag+": outside-unchanged", outsideBad == 0, "%d of %d samples outside every mask changed", outsideBad, outside)
}

// coveredSamples counts the samples only mask i covers, and how many of
// them masking left unchanged.
func coveredSamples(planes []plane, cover [][]int, i int) (count, same int) {
	for pi, p := range planes {
		for j, k := range cover[pi] {
			if k == i {
				count++
				if p.m[j] == p.o[j] {
					same++
				}
			}
		}
	}
	return count, same
}

// fillMismatches counts the samples of mask i that are not the fill colour.
func fillMismatches(planes []plane, cover [][]int, i int, c maskspec.YUV) int {
	want := []byte{c.Y, c.U, c.V}
	bad := 0
	for pi, p := range planes {
		for j, k := range cover[pi] {
			if k == i && p.m[j] != want[pi] {
				bad++
			}
		}
	}
	return bad
}

// checkPixelated checks mask i's blocks of block×block luma samples (half
// that in chroma) are uniform (exact: equal to the block's mean) and that
// almost no sample kept its original value.
func checkPixelated(rep *SelfTestReport, name string, planes []plane, cover [][]int, i, block, count, same int, exact bool) {
	bad := 0
	for pi, p := range planes {
		b := block
		if p.chroma {
			b = max(b/2, 1)
		}
		bad += checkBlocks(p, cover[pi], i, b, exact)
	}
	what := "block-uniform"
	if exact {
		what = "equal to their block's mean"
	}
	rep.add(name, bad == 0 && same*20 < count, "%d of %d covered samples not %s; %d unchanged", bad, count, what, same)
}

// checkBlurred checks mask i's luma lost most of its horizontal gradient
// energy (exact: every sample is the mean of its box of radius strength,
// half that in chroma) and that few samples kept their original value.
func checkBlurred(rep *SelfTestReport, name string, planes []plane, cover [][]int, i, strength, count, same int, exact bool) {
	ratio, pairs := gradientRatio(planes[0], cover[0], i)
	bad := 0
	if exact {
		for pi, p := range planes {
			r := strength
			if p.chroma {
				r = max(r/2, 1)
			}
			bad += checkBlur(p, cover[pi], i, r)
		}
	}
	rep.add(name, pairs > 0 && ratio < 0.25 && bad == 0 && same*10 < count,
		"gradient energy %.3f of the original; %d samples off the box mean; %d of %d unchanged", ratio, bad, same, count)
}

// gradientRatio is the horizontal gradient energy of mask i's samples in p
// after masking over that before, and over how many neighbour pairs.
func gradientRatio(p plane, cover []int, i int) (ratio float64, pairs int) {
	var before, after float64
	for y := 0; y < p.h; y++ {
		for x := 0; x+1 < p.w; x++ {
			j := y*p.w + x
			if cover[j] == i && cover[j+1] == i {
				before += math.Abs(float64(p.o[j]) - float64(p.o[j+1]))
				after += math.Abs(float64(p.m[j]) - float64(p.m[j+1]))
				pairs++
			}
		}
	}
	return after / math.Max(before, 1), pairs
}

// checkBlocks counts the samples of mask i that are not equal to the rest
// of their b×b block (exact: not equal to the rounded mean of the block's
// original covered samples).
func checkBlocks(p plane, cover []int, i, b int, exact bool) int {
	bad := 0
	for by := 0; by < p.h; by += b {
		for bx := 0; bx < p.w; bx += b {
			var sum, cnt int
			first := -1
			for y := by; y < min(by+b, p.h); y++ {
				for x := bx; x < min(bx+b, p.w); x++ {
					j := y*p.w + x
					if cover[j] != i {
						continue
					}
					sum += int(p.o[j])
					cnt++
					if first < 0 {
						first = int(p.m[j])
					}
				}
			}
			if cnt == 0 {
				continue
			}
			want := first
			if exact {
				want = (sum + cnt/2) / cnt
			}
			for y := by; y < min(by+b, p.h); y++ {
				for x := bx; x < min(bx+b, p.w); x++ {
					j := y*p.w + x
					if cover[j] == i && int(p.m[j]) != want {
						bad++
					}
				}
			}
		}
	}
	return bad
}

// checkBlur counts the samples of mask i that differ from the rounded mean
// of the original (2r+1)² box around them, clipped to the plane.
func checkBlur(p plane, cover []int, i, r int) int {
	bad := 0
	for y := 0; y < p.h; y++ {
		for x := 0; x < p.w; x++ {
			j := y*p.w + x
			if cover[j] != i {
				continue
			}
			var sum, cnt int
			for yy := max(y-r, 0); yy <= min(y+r, p.h-1); yy++ {
				for xx := max(x-r, 0); xx <= min(x+r, p.w-1); xx++ {
					sum += int(p.o[yy*p.w+xx])
					cnt++
				}
			}
			if want := (sum + cnt/2) / cnt; int(p.m[j]) != want {
				bad++
			}
		}
	}
	return bad
}

// checkOpenCV converts the masked frame to BGR with OpenCV, round-trips it
// through PNG (lossless: must come back identical) and JPEG, and checks the
// fill masks' colour in the decoded image.
func checkOpenCV(rep *SelfTestReport, tag string, ras *Raster, f *Frame) {
	src, err := gocv.NewMatFromBytes(f.H*3/2, f.W, gocv.MatTypeCV8UC1, f.Data)
	if err != nil {
		rep.add(tag+": opencv-convert", false, "%v", err)
		return
	}
	defer src.Close()
	bgr := gocv.NewMat()
	defer bgr.Close()
	gocv.CvtColor(src, &bgr, gocv.ColorYUVToBGRIYUV) // IYUV is I420
	if bgr.Cols() != f.W || bgr.Rows() != f.H || bgr.Channels() != 3 {
		rep.add(tag+": opencv-convert", false, "I420 to BGR gave %dx%dx%d", bgr.Cols(), bgr.Rows(), bgr.Channels())
		return
	}
	rep.add(tag+": opencv-convert", true, "I420 %dx%d to BGR", f.W, f.H)
	want, _ := bgr.DataPtrUint8()
	for _, ext := range []gocv.FileExt{gocv.PNGFileExt, gocv.JPEGFileExt} {
		buf, err := gocv.IMEncode(ext, bgr)
		if err != nil {
			rep.add(tag+": opencv-encode "+string(ext), false, "%v", err)
			continue
		}
		dec, err := gocv.IMDecode(buf.GetBytes(), gocv.IMReadColor)
		n := buf.Len()
		buf.Close()
		if err != nil || dec.Empty() {
			rep.add(tag+": opencv-decode "+string(ext), false, "%v", err)
			dec.Close()
			continue
		}
		got, _ := dec.DataPtrUint8()
		if ext == gocv.PNGFileExt {
			diff := 0
			for i := range want {
				if i >= len(got) || got[i] != want[i] {
					diff++
				}
			}
			rep.add(tag+": opencv-png-roundtrip", diff == 0 && len(got) == len(want), "%d bytes encoded, %d of %d bytes differ after decoding", n, diff, len(want))
		} else {
			rep.add(tag+": opencv-jpeg", len(got) == len(want), "%d bytes encoded, decoded %dx%d", n, dec.Cols(), dec.Rows())
		}
		if ext == gocv.JPEGFileExt {
			checkFillColour(rep, tag, ras, f, got, 12)
		} else {
			checkFillColour(rep, tag+" png", ras, f, got, 3)
		}
		dec.Close()
	}
}

// checkFillColour: the mean colour of each fill mask's interior (pixels
// whose 5×5 neighbourhood is inside, so chroma and JPEG blocks at the edge
// do not count) in a decoded BGR image is the fill colour within tol.
func checkFillColour(rep *SelfTestReport, tag string, ras *Raster, f *Frame, bgr []byte, tol float64) {
	for i, rg := range ras.regions {
		if rg.mask.Style != maskspec.StyleFill {
			continue
		}
		var s [3]float64
		n := 0
		for y := 8; y < f.H-8; y++ {
			for x := 8; x < f.W-8; x++ {
				if !ras.Inside(i, x-8, y-8) || !ras.Inside(i, x+8, y+8) || !ras.Inside(i, x-8, y+8) || !ras.Inside(i, x+8, y-8) || !ras.Inside(i, x, y) {
					continue
				}
				o := (y*f.W + x) * 3
				s[0] += float64(bgr[o])
				s[1] += float64(bgr[o+1])
				s[2] += float64(bgr[o+2])
				n++
			}
		}
		name := fmt.Sprintf("%s: encoded fill %q", tag, rg.mask.Name)
		if n == 0 {
			continue
		}
		r, g, b := yuvToRGB(rg.mask.Color)
		d := math.Max(math.Abs(s[2]/float64(n)-r), math.Max(math.Abs(s[1]/float64(n)-g), math.Abs(s[0]/float64(n)-b)))
		rep.add(name, d <= tol, "mean colour off by %.1f (tolerance %.0f) over %d interior pixels", d, tol, n)
	}
}

// yuvToRGB is BT.601 limited range, as OpenCV's I420 conversion.
func yuvToRGB(c maskspec.YUV) (r, g, b float64) {
	y, u, v := 1.164*(float64(c.Y)-16), float64(c.U)-128, float64(c.V)-128
	cl := func(x float64) float64 { return math.Max(0, math.Min(255, x)) }
	return cl(y + 1.596*v), cl(y - 0.391*u - 0.813*v), cl(y + 2.018*u)
}

// selfTestFailClosed checks that no raw frame gets out when it cannot be
// masked.
func selfTestFailClosed(rep *SelfTestReport, orig *Frame) {
	sets := SelfTestSets()
	m, err := NewMasker("selftest", maskspec.FailDrop)
	if err != nil {
		rep.add("fail-closed", false, "%v", err)
		return
	}
	m.SetSettle(0)
	if _, err := m.SetMaskSets(sets); err != nil {
		rep.add("fail-closed", false, "%v", err)
		return
	}
	try := func(name string, want Reason, f *Frame) {
		v, why := m.Process(f)
		_, jerr := JPEG(f, 80)
		rep.add("fail-closed: "+name, v == Dropped && why == want && !f.Masked && !m.Admit(f) && jerr != nil,
			"verdict %d reason %q; encodable %v", v, why, jerr == nil)
	}
	// The view is not approved (PTZ moving, drifted, outside schedule).
	m.SetView("", false)
	f := cloneFrame(orig)
	f.Captured = time.Now()
	try("view not approved", ReasonNotApproved, f)
	// An approved view with no mask set.
	m.SetView("no-such-preset", true)
	f = cloneFrame(orig)
	f.Captured = time.Now()
	try("no mask set", ReasonNoMaskSet, f)
	// A frame the raster does not fit (a corrupt decoder output).
	m.SetView("", true)
	f = cloneFrame(orig)
	f.Data = f.Data[:len(f.Data)-1]
	f.Captured = time.Now()
	try("corrupt frame", ReasonMaskError, f)
	// A frame captured before the approval (settling).
	m.SetSettle(time.Hour)
	m.SetView("", false)
	m.SetView("", true)
	f = cloneFrame(orig)
	f.Captured = time.Now()
	try("captured while settling", ReasonNotApproved, f)
	m.SetSettle(0)
	// An invalid mask set is refused and the old one stays in force.
	gen := m.Generation()
	bad := []maskspec.MaskSet{{Preset: "", Masks: []maskspec.Mask{{Name: "broken", Polygon: []maskspec.Point{{X: 0.1, Y: 0.1}, {X: 2, Y: 0.1}}}}}}
	_, err = m.SetMaskSets(bad)
	rep.add("fail-closed: invalid mask set refused", errors.Is(err, maskspec.ErrInvalidMask) && m.Generation() == gen, "%v", err)
	// A frame masked under an older generation is not admitted.
	m.SetView("", false)
	m.SetView("", true)
	f = cloneFrame(orig)
	f.Captured = time.Now()
	v, _ := m.Process(f)
	_, _ = m.SetMaskSets(sets)
	rep.add("fail-closed: stale generation refused", v == Masked && !m.Admit(f), "masked under generation %d, now %d", f.Generation, m.Generation())
	// Blank mode: the whole frame is the blank colour.
	mb, _ := NewMasker("selftest", maskspec.FailBlank)
	f = cloneFrame(orig)
	f.Captured = time.Now()
	v, _ = mb.Process(f)
	y, u, vv := f.Planes()
	left := countNot(y, maskspec.Black().Y) + countNot(u, maskspec.Black().U) + countNot(vv, maskspec.Black().V)
	rep.add("fail-closed: blank mode", v == Blanked && left == 0, "verdict %d, %d samples not blank", v, left)
}
